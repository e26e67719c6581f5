//! `ConcurrentPager`: one writer at a time, readers that never wait for it,
//! and a lock error that tells a poisoned lock from a busy one.

use std::sync::mpsc;
use std::time::Duration;

use mappedpages::{ConcurrentError, ConcurrentPager, Pager};

const PS: usize = 4096;

fn shared() -> (tempfile::TempDir, ConcurrentPager<PS>) {
    let dir = tempfile::tempdir().unwrap();
    let pager = Pager::<PS>::create(dir.path().join("c.pages")).unwrap();
    (dir, ConcurrentPager::new(pager).unwrap())
}

fn assert_traits<T: Clone + Send + Sync>() {}

#[test]
fn it_is_clone_send_sync() {
    assert_traits::<ConcurrentPager<PS>>();
}

#[test]
fn readers_read_the_last_published_commit_while_a_writer_holds_the_pager() {
    let (_dir, shared) = shared();
    let id = {
        let mut writer = shared.write().unwrap();
        let mut txn = writer.transaction().unwrap();
        let id = txn.alloc().unwrap();
        txn.get_mut(id).unwrap().as_bytes_mut()[0] = 1;
        txn.commit().unwrap();
        id
    };
    let mut writer = shared.write().unwrap();
    // A second writer is refused, not queued.
    assert!(matches!(
        shared.try_write(),
        Err(ConcurrentError::WouldBlock)
    ));
    let mut txn = writer.transaction().unwrap();
    txn.free(id).unwrap();
    let again = txn.alloc().unwrap();
    txn.get_mut(again).unwrap().as_bytes_mut()[0] = 2;
    txn.commit().unwrap();

    // The writer still holds the pager: a reader on another thread gets the
    // published state at once (a reader that waited would never answer).
    let (tx, rx) = mpsc::channel();
    let reader = shared.clone();
    std::thread::spawn(move || {
        let snapshot = reader.read().unwrap();
        let value = snapshot.get(id).map(|p| p.as_bytes()[0]).ok();
        tx.send((value, snapshot.allocated_page_count())).unwrap();
    });
    let seen = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a reader waited for the writer");
    assert_eq!(seen, (Some(1), 1));
    assert_ne!(again, id, "a page a published snapshot reads is not reused");
    drop(writer);
    let snapshot = shared.read().unwrap();
    assert!(snapshot.get(id).is_err());
    assert_eq!(snapshot.get(again).unwrap().as_bytes()[0], 2);
    assert!(shared.try_read().is_ok());
}

#[test]
fn a_writer_that_panics_poisons_the_writer_side_only() {
    let (_dir, shared) = shared();
    {
        let mut writer = shared.write().unwrap();
        writer.alloc().unwrap();
    }
    let panicking = shared.clone();
    let result = std::thread::spawn(move || {
        let mut writer = panicking.write().unwrap();
        writer.alloc().unwrap();
        panic!("the engine above had a bug");
    })
    .join();
    assert!(result.is_err());
    assert!(matches!(shared.write(), Err(ConcurrentError::Poisoned)));
    assert!(matches!(shared.try_write(), Err(ConcurrentError::Poisoned)));
    // Readers go on with the last published state (the guard published on
    // its way out).
    assert_eq!(shared.read().unwrap().allocated_page_count(), 2);

    let other = shared.clone();
    let shared = match shared.into_inner() {
        Err(shared) => shared,
        Ok(_) => panic!("into_inner with a clone alive"),
    };
    drop(other);
    let pager = shared.into_inner().expect("the last handle");
    assert_eq!(pager.allocated_page_count(), 2);
}

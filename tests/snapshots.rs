//! Snapshots: a read view of one committed state that stays as it was while
//! the writer goes on, on this thread and on others.

use std::sync::{Arc, Mutex};

use mappedpages::{Durability, MappedPageError, PageId, Pager, Snapshot};

const PS: usize = 4096;
type P = Pager<PS>;

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("snap.pages");
    (dir, path)
}

fn assert_send_sync<T: Send + Sync + Clone>() {}

#[test]
fn snapshots_are_send_sync_and_clone() {
    assert_send_sync::<Snapshot<PS>>();
}

/// Writes `page`'s own id and `tag` over the whole page, so that any page
/// read later tells whether it holds what was written to it.
fn stamp(bytes: &mut [u8], page: u64, tag: u64) {
    for (i, chunk) in bytes.chunks_exact_mut(16).enumerate() {
        chunk[..8].copy_from_slice(&page.to_le_bytes());
        chunk[8..].copy_from_slice(&(tag ^ i as u64).to_le_bytes());
    }
}

fn stamped(bytes: &[u8], page: u64) -> Option<u64> {
    let tag = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    bytes
        .chunks_exact(16)
        .enumerate()
        .all(|(i, chunk)| {
            chunk[..8] == page.to_le_bytes() && chunk[8..] == (tag ^ i as u64).to_le_bytes()
        })
        .then_some(tag)
}

#[test]
fn a_snapshot_keeps_its_pages_while_the_writer_frees_rewrites_and_grows() {
    for durability in [Durability::Immediate, Durability::Deferred] {
        let (_dir, path) = temp();
        let mut pager = P::options().durability(durability).create(&path).unwrap();
        let root = pager.alloc_protected().unwrap();
        let mut txn = pager.transaction().unwrap();
        let old: Vec<_> = txn.alloc_bulk(8).unwrap();
        for &id in &old {
            stamp(txn.get_mut(id).unwrap().as_bytes_mut(), id.0, 1);
        }
        txn.write_protected(root).unwrap().as_bytes_mut()[0] = 1;
        txn.commit().unwrap();
        let snapshot = pager.snapshot().unwrap();
        let generation = snapshot.generation();

        // Free everything it reads, commit the root again twice, and grow.
        for round in 2..=3u8 {
            let mut txn = pager.transaction().unwrap();
            txn.write_protected(root).unwrap().as_bytes_mut()[0] = round;
            if round == 2 {
                txn.free_bulk(old.clone()).unwrap();
            }
            let fresh = txn.alloc_bulk(3000).unwrap();
            for &id in fresh.iter().take(16) {
                stamp(txn.get_mut(id).unwrap().as_bytes_mut(), id.0, 9);
            }
            assert!(
                fresh.iter().all(|id| !old.contains(id)),
                "{durability:?}: a page a live snapshot reads was reused"
            );
            txn.commit().unwrap();
        }
        assert!(pager.page_count() > snapshot.page_count());
        assert_eq!(snapshot.generation(), generation);
        assert_eq!(snapshot.iter_allocated_pages().collect::<Vec<_>>(), old);
        for &id in &old {
            assert_eq!(stamped(snapshot.get(id).unwrap().as_bytes(), id.0), Some(1));
            assert!(matches!(
                id.get(&pager),
                Err(MappedPageError::NotAllocated { .. })
            ));
        }
        assert_eq!(snapshot.get_protected(root).unwrap().as_bytes()[0], 1);
        assert_eq!(root.get(&pager).unwrap().as_bytes()[0], 3);

        // Once it is gone, its pages come back at the next commit.
        drop(snapshot);
        pager.sync().unwrap();
        let mut txn = pager.transaction().unwrap();
        // The lowest free pages: the snapshot's, and the protected copy a
        // commit had to stage past while the snapshot named it.
        let again = txn.alloc_bulk(old.len() + 1).unwrap();
        txn.commit().unwrap();
        assert!(
            old.iter().all(|id| again.contains(id)),
            "{durability:?}: {again:?} does not reuse {old:?}"
        );
    }
}

#[test]
fn a_page_a_snapshot_reads_cannot_be_written_in_place() {
    let (_dir, path) = temp();
    let mut pager = P::create(&path).unwrap();
    let id = pager.alloc().unwrap();
    let snapshot = pager.snapshot().unwrap();
    assert!(matches!(
        id.get_mut(&mut pager),
        Err(MappedPageError::InUseBySnapshot { page }) if page == id.0
    ));
    // A page allocated after the snapshot is the writer's own.
    let later = pager.alloc().unwrap();
    later.get_mut(&mut pager).unwrap().as_bytes_mut()[0] = 5;
    assert!(matches!(
        snapshot.get(later),
        Err(MappedPageError::NotAllocated { .. })
    ));
    let clone = snapshot.clone();
    drop(snapshot);
    assert!(id.get_mut(&mut pager).is_err(), "a clone still reads it");
    drop(clone);
    id.get_mut(&mut pager).unwrap().as_bytes_mut()[0] = 6;
}

#[test]
fn snapshots_between_commits_share_one_state() {
    let (_dir, path) = temp();
    let mut pager = P::create(&path).unwrap();
    pager.alloc().unwrap();
    let a = pager.snapshot().unwrap();
    let b = pager.snapshot().unwrap();
    assert_eq!(a.generation(), b.generation());
    pager.alloc().unwrap();
    let c = pager.snapshot().unwrap();
    assert_eq!(c.generation(), a.generation() + 1);
    assert_eq!((a.allocated_page_count(), c.allocated_page_count()), (1, 2));
}

/// Reader threads check, in every snapshot they take, that each page holds
/// what was written to it before that commit and that the protected root
/// lists exactly the allocated pages, while the writer commits one
/// transaction after another: new pages written, old ones freed, the root
/// rewritten.
#[test]
fn readers_on_threads_see_every_snapshot_whole_while_the_writer_commits() {
    for durability in [Durability::Immediate, Durability::Deferred] {
        let (_dir, path) = temp();
        let mut pager = P::options().durability(durability).create(&path).unwrap();
        let root = pager.alloc_protected().unwrap();
        let published: Arc<Mutex<Option<Snapshot<PS>>>> = Arc::new(Mutex::new(None));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (published, stop) = (Arc::clone(&published), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut checked = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let Some(snapshot) = published.lock().unwrap().clone() else {
                            continue;
                        };
                        let listed = snapshot.get_protected(root).unwrap().as_bytes();
                        let count = u64::from_le_bytes(listed[..8].try_into().unwrap()) as usize;
                        let ids: Vec<u64> = listed[8..8 + 8 * count]
                            .chunks_exact(8)
                            .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
                            .collect();
                        let allocated: Vec<u64> =
                            snapshot.iter_allocated_pages().map(|id| id.0).collect();
                        assert_eq!(ids, allocated, "root and bitmap disagree");
                        for &page in &ids {
                            let tag = stamped(snapshot.get(PageId(page)).unwrap().as_bytes(), page);
                            assert_eq!(tag, Some(snapshot.generation()), "page {page} changed");
                        }
                        checked += 1;
                    }
                    checked
                })
            })
            .collect();

        let mut live: Vec<PageId<PS>> = Vec::new();
        for _ in 0..300 {
            let generation = pager.generation() + 1;
            let mut txn = pager.transaction().unwrap();
            let fresh = txn.alloc_bulk(4).unwrap();
            for &id in &fresh {
                stamp(txn.get_mut(id).unwrap().as_bytes_mut(), id.0, generation);
            }
            // The older pages are replaced: copy-on-write of the whole set.
            txn.free_bulk(live.drain(..)).unwrap();
            live.extend(&fresh);
            live.sort();
            let listed = txn.write_protected(root).unwrap().as_bytes_mut();
            listed[..8].copy_from_slice(&(live.len() as u64).to_le_bytes());
            for (i, id) in live.iter().enumerate() {
                listed[8 + 8 * i..16 + 8 * i].copy_from_slice(&id.0.to_le_bytes());
            }
            txn.commit().unwrap();
            assert_eq!(pager.generation(), generation);
            *published.lock().unwrap() = Some(pager.snapshot().unwrap());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let checked: u64 = readers.into_iter().map(|r| r.join().unwrap()).sum();
        assert!(checked > 0, "{durability:?}: no reader checked a snapshot");
        // Held pages come back once the snapshots are gone: the file stays small.
        *published.lock().unwrap() = None;
        pager.sync().unwrap();
        assert!(
            pager.page_count() < 2048,
            "{durability:?}: {}",
            pager.page_count()
        );
    }
}

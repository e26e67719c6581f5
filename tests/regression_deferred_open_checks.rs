//! After a sync or a clean close, a Deferred file's newest root checks no
//! page: open then verifies nothing, instead of every page written since the
//! sync before (60 000 pages took open 50 ms and more). Only what a power
//! loss could still tear is checked.

use mappedpages::inspect::{Inspector, RootCopy, RootInfo};
use mappedpages::{Durability, Pager};

type P = Pager<4096>;

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deferred.pages");
    (dir, path)
}

/// Deferred transactions enough to need check pages (more checks than a
/// root holds), each page tagged with its transaction.
fn write_unsynced(pager: &mut P, transactions: u64) {
    for round in 0..transactions {
        let mut txn = pager.transaction().unwrap();
        for id in txn.alloc_bulk(30).unwrap() {
            txn.get_mut(id).unwrap().as_bytes_mut()[..8].copy_from_slice(&round.to_le_bytes());
        }
        txn.commit().unwrap();
    }
}

fn newest_root(path: &std::path::Path) -> RootInfo {
    let file = Inspector::open(path).unwrap();
    file.copies()
        .iter()
        .filter_map(|copy| match copy {
            RootCopy::Decoded(root) => Some(root.clone()),
            _ => None,
        })
        .max_by_key(|root| root.generation)
        .unwrap()
}

fn checks_nothing(root: &RootInfo) -> bool {
    root.page_checks.is_empty() && root.check_page == 0 && root.check_pages_len == 0
}

fn deferred(path: &std::path::Path) -> P {
    P::options()
        .durability(Durability::Deferred)
        .initial_pages(8192)
        .create(path)
        .unwrap()
}

#[test]
fn a_sync_leaves_a_root_that_checks_no_page() {
    let (_dir, path) = temp();
    let mut pager = deferred(&path);
    write_unsynced(&mut pager, 100);
    // Before the sync the newest root checks what it must.
    let before = newest_root(&path);
    assert!(before.check_pages_len >= 3000, "{before:?}");
    let syncs = pager.sync_count();
    pager.sync().unwrap();
    assert_eq!(pager.sync_count(), syncs + 1, "still one sync");
    assert!(checks_nothing(&newest_root(&path)));
    // And the state is whole: every page reads back after a reopen.
    let allocated = pager.allocated_page_count();
    drop(pager);
    let pager = P::open(&path).unwrap();
    assert_eq!(pager.allocated_page_count(), allocated);
    assert!(!pager.recovery().fell_back);
}

#[test]
fn a_clean_close_leaves_a_root_that_checks_no_page() {
    let (_dir, path) = temp();
    let mut pager = deferred(&path);
    write_unsynced(&mut pager, 100);
    let allocated = pager.allocated_page_count();
    drop(pager);
    assert!(checks_nothing(&newest_root(&path)));
    let mut pager = P::open(&path).unwrap();
    assert_eq!(pager.allocated_page_count(), allocated);
    // The pager goes on from there, and the next unsynced commits are
    // checked again.
    write_unsynced(&mut pager, 1);
    assert!(!checks_nothing(&newest_root(&path)));
}

#[test]
fn a_sync_with_nothing_unsynced_writes_no_root() {
    let (_dir, path) = temp();
    let mut pager = deferred(&path);
    write_unsynced(&mut pager, 3);
    pager.sync().unwrap();
    let generation = pager.generation();
    pager.sync().unwrap();
    pager.sync().unwrap();
    assert_eq!(pager.generation(), generation);
}

//! Protected pages' copies placed high in the file (a transaction's staged
//! copy goes beside the pages it wrote) must not keep the free space behind
//! them: a shrink moves them down and gives the space back.

use mappedpages::{Durability, PageId, Pager, ProtectedPageId};

type P = Pager<4096>;

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pinned.pages");
    (dir, path)
}

/// A churn of transactions, each writing fresh pages and every protected
/// page, and freeing what the one before wrote; then everything regular
/// freed. Returns the protected pages and the byte each holds.
fn churn(pager: &mut P, protected: usize, rounds: u8) -> Vec<(ProtectedPageId<4096>, u8)> {
    let ids = pager.alloc_protected_bulk(protected).unwrap();
    let mut previous: Vec<PageId<4096>> = Vec::new();
    for round in 0..rounds {
        let mut txn = pager.transaction().unwrap();
        let fresh = txn.alloc_bulk(40).unwrap();
        for &id in &fresh {
            txn.get_mut(id).unwrap().as_bytes_mut()[0] = round;
        }
        for (i, &id) in ids.iter().enumerate() {
            txn.write_protected(id).unwrap().as_bytes_mut()[0] = round ^ i as u8;
        }
        for id in previous.drain(..) {
            txn.free(id).unwrap();
        }
        txn.commit().unwrap();
        previous = fresh;
    }
    pager.free_bulk(previous).unwrap();
    let last = rounds - 1;
    ids.iter()
        .enumerate()
        .map(|(i, &id)| (id, last ^ i as u8))
        .collect()
}

fn shrink_gives_everything_back(durability: Durability) {
    let (_dir, path) = temp();
    let mut pager = P::options()
        .durability(durability)
        .shrink_threshold(None)
        .create(&path)
        .unwrap();
    let held = churn(&mut pager, 4, 120);
    assert_eq!(pager.allocated_page_count(), 0);
    let before = pager.page_count();
    pager.shrink().unwrap();
    // What stays: the format's own pages, the protected pages' two copies,
    // and the few pages of the free-space trees.
    assert!(
        pager.page_count() <= 3 + 2 * held.len() as u64 + 8,
        "{durability:?}: {} of {before} pages left after the shrink",
        pager.page_count()
    );
    for &(id, byte) in &held {
        assert_eq!(id.get(&pager).unwrap().as_bytes()[0], byte);
    }
    drop(pager);
    let pager = P::open(&path).unwrap();
    for &(id, byte) in &held {
        assert_eq!(id.get(&pager).unwrap().as_bytes()[0], byte);
    }
}

#[test]
fn protected_copies_do_not_pin_the_tail_immediate() {
    shrink_gives_everything_back(Durability::Immediate);
}

#[test]
fn protected_copies_do_not_pin_the_tail_deferred() {
    shrink_gives_everything_back(Durability::Deferred);
}

#[test]
fn a_snapshot_still_reads_the_copies_a_shrink_moved() {
    let (_dir, path) = temp();
    // Deferred: staged copies go to fresh pages beside each transaction's.
    let mut pager = P::options()
        .durability(Durability::Deferred)
        .shrink_threshold(None)
        .create(&path)
        .unwrap();
    let held = churn(&mut pager, 2, 60);
    let snapshot = pager.snapshot().unwrap();
    pager.shrink().unwrap();
    for &(id, byte) in &held {
        assert_eq!(snapshot.get_protected(id).unwrap().as_bytes()[0], byte);
        assert_eq!(id.get(&pager).unwrap().as_bytes()[0], byte);
    }
    drop(snapshot);
    // Once the snapshot is gone, the space it held is given back too.
    pager.shrink().unwrap();
    assert!(pager.page_count() <= 3 + 4 + 8, "{}", pager.page_count());
}

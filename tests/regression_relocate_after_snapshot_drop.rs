//! Found by the shared model (a snapshot held across a commit, then
//! `Step::Relocate`): pages a dropped snapshot held are free again, and an
//! `alloc` hands them out, but `relocate` answers `None`, "no lower page
//! is free", while they lie below. An engine compacting its file stops too
//! early, and `None` does not mean what it is documented to mean. Fixed:
//! `relocate` first gives back what dropped snapshots held, as an
//! allocation does.

use mappedpages::{Durability, Pager};

#[test]
fn relocate_sees_pages_a_dropped_snapshot_held() {
    for durability in [Durability::Immediate, Durability::Deferred] {
        let dir = tempfile::tempdir().unwrap();
        let mut pager = Pager::<1024>::options()
            .durability(durability)
            .create(dir.path().join("relocate.pages"))
            .unwrap();
        let free = pager.free_page_count() as usize;
        let ids = pager.alloc_bulk(free).unwrap();
        let snapshot = pager.snapshot().unwrap();
        pager.free(ids[0]).unwrap();
        drop(snapshot);
        let high = *ids.last().unwrap();
        let mut txn = pager.transaction().unwrap();
        let moved = txn.relocate(high).unwrap();
        let probe = txn.alloc().unwrap();
        assert!(
            moved.is_some() || probe.0 > high.0,
            "{durability:?}: relocate({}) found no lower free page, then alloc gave {}",
            high.0,
            probe.0
        );
    }
}

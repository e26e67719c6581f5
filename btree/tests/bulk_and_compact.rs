//! Removals of many pairs on a tree four levels deep (what they remove,
//! and that they rewrite only the nodes on their edges), compaction, and
//! the `Deferred` mode.

#[path = "../../tests/support/crash/mod.rs"]
mod crash_support;
#[path = "support/store.rs"]
mod store;

use std::collections::BTreeSet;
use std::ops::Bound;
use std::path::Path;

use crash_support::{temp_dir, Rng};
use mappedpages_btree::{Db, Durability};
use store::{assert_committed, Model};

/// Keys with a long common prefix, so that branches hold few of them and
/// a few thousand pairs make a tree four levels deep.
fn key(i: u64) -> Vec<u8> {
    format!("{}{i:08}", "p".repeat(300)).into_bytes()
}

fn value(i: u64) -> Vec<u8> {
    vec![i as u8; 20]
}

/// A store of `pairs` pairs, committed, and its model.
fn loaded(path: &Path, pairs: u64) -> (Db, Model) {
    let mut db = Db::create(path).unwrap();
    let mut model = Model::new();
    let mut txn = db.write().unwrap();
    for i in 0..pairs {
        txn.insert(&key(i), &value(i)).unwrap();
        model.insert(key(i), value(i));
    }
    txn.commit().unwrap();
    (db, model)
}

/// The pages of the last commit's tree.
fn tree_pages(db: &Db) -> BTreeSet<u64> {
    db.read().unwrap().check().unwrap().into_iter().collect()
}

/// Runs `change` in one committed write transaction; returns how many
/// pages of the new tree the old one did not have: the pages it wrote.
fn pages_written(db: &mut Db, change: impl FnOnce(&mut mappedpages_btree::WriteTxn)) -> usize {
    let before = tree_pages(db);
    let mut txn = db.write().unwrap();
    change(&mut txn);
    txn.commit().unwrap();
    tree_pages(db).difference(&before).count()
}

#[test]
fn range_removals_drop_whole_subtrees_and_rewrite_their_edges() {
    let dir = temp_dir();
    let (mut db, mut model) = loaded(&dir.path().join("tree.db"), 6000);
    let height = db.read().unwrap().height();
    assert!(height >= 4, "height {height}");
    let pages = db.pager().allocated_page_count();
    // The middle two thirds: most of the tree's pages go, and only the
    // nodes on the paths to the range's two ends (and neighbours merged
    // into them) are written.
    let written = pages_written(&mut db, |txn| {
        assert_eq!(txn.remove_range(key(1000)..key(5000)).unwrap(), 4000);
    });
    model.retain(|k, _| *k < key(1000) || *k >= key(5000));
    assert_committed(&db, &model, "after the middle");
    assert!(
        written <= 4 * height as usize,
        "{written} pages written for a tree of height {height}"
    );
    let left = db.pager().allocated_page_count();
    assert!(left * 2 < pages, "{left} of {pages} pages left");

    // Bounds of every kind, wide and narrow, seeded.
    let mut rng = Rng::new(7);
    for round in 0..40 {
        let (a, b) = (rng.below(6000), rng.below(6000));
        let (low, high) = (a.min(b), a.max(b) + rng.below(3));
        let start = match rng.below(3) {
            0 => Bound::Unbounded,
            1 => Bound::Included(key(low)),
            _ => Bound::Excluded(key(low)),
        };
        let end = match rng.below(4) {
            0 if round % 8 == 0 => Bound::Unbounded,
            0 | 1 => Bound::Included(key(high)),
            _ => Bound::Excluded(key(high)),
        };
        let bounds = (start, end);
        let expected: Vec<Vec<u8>> = model.range(bounds.clone()).map(|p| p.0.clone()).collect();
        let mut txn = db.write().unwrap();
        assert_eq!(
            txn.remove_range(bounds.clone()).unwrap(),
            expected.len() as u64
        );
        // Refill part of what went, so that the next rounds find pairs.
        for i in (low..high.min(6000)).step_by(3) {
            txn.insert(&key(i), &value(i)).unwrap();
        }
        txn.commit().unwrap();
        for k in expected {
            model.remove(&k);
        }
        for i in (low..high.min(6000)).step_by(3) {
            model.insert(key(i), value(i));
        }
        assert_committed(&db, &model, &format!("round {round}, {bounds:?}"));
    }
}

#[test]
fn pops_walk_one_edge_and_retain_of_everything_writes_nothing() {
    let dir = temp_dir();
    let (mut db, mut model) = loaded(&dir.path().join("tree.db"), 3000);
    let height = db.read().unwrap().height() as usize;
    let written = pages_written(&mut db, |txn| {
        assert_eq!(txn.pop_first().unwrap(), model.pop_first());
    });
    assert!(written <= 2 * height, "{written} pages for one pop");
    let written = pages_written(&mut db, |txn| {
        for _ in 0..500 {
            assert_eq!(txn.pop_first().unwrap(), model.pop_first());
            assert_eq!(txn.pop_last().unwrap(), model.pop_last());
        }
    });
    assert!(written <= 4 * height, "{written} pages for 1000 pops");
    assert_committed(&db, &model, "after the pops");

    let written = pages_written(&mut db, |txn| {
        assert_eq!(txn.retain(|_, _| true).unwrap(), 0);
        assert!(txn
            .extract_if::<&[u8]>(.., |_, _| false)
            .unwrap()
            .is_empty());
    });
    assert_eq!(written, 0, "nothing removed, nothing copied");

    // Everything: the tree is empty, and its pages are all free.
    let mut txn = db.write().unwrap();
    let taken = txn.extract_if::<&[u8]>(.., |_, _| true).unwrap();
    assert_eq!(taken, model.into_iter().collect::<Vec<_>>());
    assert!(txn.is_empty());
    assert_eq!(txn.pop_first().unwrap(), None);
    txn.commit().unwrap();
    assert_eq!(db.pager().allocated_page_count(), 0);
    assert_committed(&db, &Model::new(), "emptied");
}

#[test]
fn compaction_gives_back_the_space_of_removed_pairs() {
    let dir = temp_dir();
    let path = dir.path().join("tree.db");
    let (mut db, mut model) = loaded(&path, 8000);
    // Values in overflow chains too (one to four pages), so that chains
    // move; half of them stay.
    let mut txn = db.write().unwrap();
    for i in (0..8000).step_by(125) {
        let long = vec![i as u8; 3000 + i as usize];
        txn.insert(&key(i), &long).unwrap();
        model.insert(key(i), long);
    }
    txn.commit().unwrap();
    let mut txn = db.write().unwrap();
    // One pair in ten stays, spread over the whole file.
    assert!(txn.retain(|k, _| k.ends_with(b"0")).unwrap() > 7000);
    txn.commit().unwrap();
    model.retain(|k, _| k.ends_with(b"0"));
    let before = db.pager().page_count();

    let compaction = db.compact().unwrap();
    assert_eq!(compaction.file_pages_before, before);
    assert!(compaction.rounds >= 1 && compaction.pages_moved > 0);
    assert!(
        compaction.file_pages_after * 4 < before,
        "{compaction:?}: the file should shrink to under a quarter"
    );
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(len, compaction.file_bytes_after());
    // The live pages and the pager's own fill the compacted file.
    let live = db.pager().allocated_page_count();
    assert!(
        compaction.file_pages_after <= live + live / 8 + 16,
        "{compaction:?} for {live} live pages"
    );
    assert_committed(&db, &model, "after compaction");
    // Compacting again moves nothing.
    let again = db.compact().unwrap();
    assert_eq!((again.rounds, again.pages_moved), (0, 0), "{again:?}");
    drop(db);
    let db = Db::open(&path).unwrap();
    assert_eq!(db.pager().page_count(), compaction.file_pages_after);
    assert_committed(&db, &model, "after compaction and a reopen");
}

#[test]
fn deferred_commits_sync_only_when_asked() {
    let dir = temp_dir();
    let path = dir.path().join("tree.db");
    let mut db = Db::options()
        .durability(Durability::Deferred)
        .create(&path)
        .unwrap();
    assert_eq!(db.durability(), Durability::Deferred);
    let mut model = Model::new();
    let mut unsynced = 0;
    for round in 0..20u64 {
        let (syncs, pages) = (db.pager().sync_count(), db.pager().page_count());
        let mut txn = db.write().unwrap();
        for i in round * 10..round * 10 + 10 {
            txn.insert(&key(i), &value(i)).unwrap();
            model.insert(key(i), value(i));
        }
        txn.commit().unwrap();
        // The pager syncs in every mode for the first write after the
        // file's creation and when the file grows, and may for its own
        // upkeep now and then; the commits themselves make no sync.
        if round > 0 && db.pager().page_count() == pages && db.pager().sync_count() == syncs {
            unsynced += 1;
        }
    }
    assert!(unsynced >= 15, "{unsynced} of 19 commits without a sync");
    let syncs = db.pager().sync_count();
    db.sync().unwrap();
    assert!(db.pager().sync_count() > syncs);
    assert_committed(&db, &model, "synced");
    drop(db);
    let db = Db::options()
        .durability(Durability::Deferred)
        .open(&path)
        .unwrap();
    assert_committed(&db, &model, "reopened");
}

/// A transaction that changes far more pages than its memory holds writes
/// them out early and copies back the ones it changes again: what it
/// commits, and what a reopen finds, is what it wrote.
#[test]
fn a_transaction_larger_than_its_memory_commits_whole() {
    let dir = temp_dir();
    let path = dir.path().join("tree.db");
    let options = Db::options().transaction_memory(16 * 4096);
    let mut db = options.create(&path).unwrap();
    let (mut model, mut rng) = (Model::new(), Rng::new(7));
    let mut txn = db.write().unwrap();
    for _ in 0..3000 {
        let i = rng.below(2000);
        if rng.below(4) == 0 {
            assert_eq!(txn.remove(&key(i)).unwrap(), model.remove(&key(i)));
        } else {
            let value = vec![rng.below(256) as u8; rng.below(300) as usize];
            assert_eq!(
                txn.insert(&key(i), &value).unwrap(),
                model.insert(key(i), value)
            );
        }
    }
    txn.commit().unwrap();
    assert!(
        db.pager().allocated_page_count() > 64,
        "more pages than it held"
    );
    assert_committed(&db, &model, "after the commit");
    drop(db);
    let db = options.open(&path).unwrap();
    assert_committed(&db, &model, "reopened");
}

//! What the tree's suites check a store against: a `BTreeMap` of the pairs
//! its last commit holds.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use mappedpages_btree::{Db, Entry, Result};

/// The pairs a store should hold.
pub type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// The pairs of `model` within `bounds`.
pub fn expected_range(
    model: &Model,
    bounds: &(Bound<Vec<u8>>, Bound<Vec<u8>>),
) -> Vec<(Vec<u8>, Vec<u8>)> {
    model
        .range(bounds.clone())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The pairs a scan gives, copied out; panics on an error.
pub fn collect<'a>(scan: impl Iterator<Item = Result<Entry<'a>>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    scan.map(|entry| entry.map(|(k, v)| (k.to_vec(), v.into_owned())).unwrap())
        .collect()
}

/// The last commit is `model`, its tree is well formed, and every page the
/// file holds is one the tree reaches.
pub fn assert_committed(db: &Db, model: &Model, when: &str) {
    let read = db.read().unwrap();
    assert_eq!(read.len(), model.len() as u64, "{when}: length");
    assert_eq!(
        collect(read.iter().unwrap()),
        expected_range(model, &(Bound::Unbounded, Bound::Unbounded)),
        "{when}"
    );
    let reached = read.check().unwrap();
    let reached_set: BTreeSet<u64> = reached.iter().copied().collect();
    assert_eq!(
        reached_set.len(),
        reached.len(),
        "{when}: a page reached twice"
    );
    let allocated: BTreeSet<u64> = db.pager().iter_allocated_pages().map(|p| p.0).collect();
    assert_eq!(
        allocated, reached_set,
        "{when}: allocated pages against pages of the tree"
    );
}

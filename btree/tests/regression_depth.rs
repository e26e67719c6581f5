//! The B+tree never follows child pointers for ever: a damaged page whose
//! child points back up the tree makes lookups, scans, writes, removals and
//! the shape check return an error, bounded by the tree's height.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use mappedpages::{PageId, Pager, ProtectedPageId};
use mappedpages_btree::node::{Kind, Node, NodeRef, PAGE};
use mappedpages_btree::{Db, Error};

fn key(i: u32) -> Vec<u8> {
    format!("key{i:05}").into_bytes()
}

/// A tree of a root branch over leaves; returns the root's page.
fn two_level_tree(path: &Path) -> u64 {
    let mut db = Db::create(path).unwrap();
    let mut txn = db.write().unwrap();
    for i in 0..600 {
        txn.insert(&key(i), &[i as u8; 100]).unwrap();
    }
    txn.commit().unwrap();
    drop(db);
    let pager = Pager::<PAGE>::open(path).unwrap();
    let meta = ProtectedPageId::<PAGE>(0).get(&pager).unwrap().as_bytes();
    let root = u64::from_le_bytes(meta[8..16].try_into().unwrap());
    let node = NodeRef::new(PageId::<PAGE>(root).get(&pager).unwrap().as_bytes()).unwrap();
    assert_eq!(
        node.kind(),
        Kind::Branch,
        "the tree has one level of leaves"
    );
    root
}

/// Overwrites page `page` with a branch whose one child is `child`.
fn make_branch_to(path: &Path, page: u64, child: u64) {
    let mut pager = Pager::<PAGE>::open(path).unwrap();
    let bytes = PageId::<PAGE>(page).get_mut(&mut pager).unwrap();
    Node::branch(vec![(Vec::new(), child)]).encode(bytes.as_bytes_mut());
    pager.sync().unwrap();
}

/// Runs every walk down the tree of the file at `path`, each on a thread
/// of its own, and asserts each ends in `Corrupt` within a few seconds.
fn assert_every_walk_is_refused(path: &Path) {
    type Walk = fn(&Path) -> Result<(), Error>;
    let walks: [(&str, Walk); 12] = [
        ("get", |p| Db::open(p)?.read()?.get(&key(0)).map(drop)),
        ("iter", |p| {
            Db::open(p)?.read()?.iter()?.try_for_each(|e| e.map(drop))
        }),
        ("range from a key", |p| {
            let db = Db::open(p)?;
            let read = db.read()?;
            let mut scan = read.range(key(1).as_slice()..)?;
            scan.try_for_each(|e| e.map(drop))
        }),
        ("check", |p| Db::open(p)?.read()?.check().map(drop)),
        ("insert", |p| {
            let mut db = Db::open(p)?;
            let inserted = db.write()?.insert(&key(0), b"new").map(drop);
            inserted
        }),
        ("remove", |p| {
            let mut db = Db::open(p)?;
            let removed = db.write()?.remove(&key(0)).map(drop);
            removed
        }),
        ("pop_first", |p| {
            let mut db = Db::open(p)?;
            let popped = db.write()?.pop_first().map(drop);
            popped
        }),
        ("pop_last", |p| {
            let mut db = Db::open(p)?;
            let popped = db.write()?.pop_last().map(drop);
            popped
        }),
        ("remove_range", |p| {
            let mut db = Db::open(p)?;
            let removed = db.write()?.remove_range(key(1)..key(500)).map(drop);
            removed
        }),
        ("retain", |p| {
            let mut db = Db::open(p)?;
            let removed = db.write()?.retain(|_, _| true).map(drop);
            removed
        }),
        ("extract_if", |p| {
            let mut db = Db::open(p)?;
            let taken = db.write()?.extract_if::<&[u8]>(.., |_, _| false).map(drop);
            taken
        }),
        ("compact", |p| Db::open(p)?.compact().map(drop)),
    ];
    for (name, walk) in walks {
        let (tx, rx) = mpsc::channel();
        let owned = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(walk(&owned));
        });
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Err(Error::Corrupt(_))) => {}
            Ok(other) => panic!("{name}: {other:?}"),
            Err(_) => panic!("{name} did not return: it follows the loop"),
        }
    }
}

/// The first and the last leaf (so that the walks down either edge meet
/// one) made branches whose child is the root.
#[test]
fn leaves_made_branches_to_the_root_are_an_error_not_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.pages");
    let root = two_level_tree(&path);
    let edges = {
        let pager = Pager::<PAGE>::open(&path).unwrap();
        let node = NodeRef::new(PageId::<PAGE>(root).get(&pager).unwrap().as_bytes()).unwrap();
        [node.child(0).unwrap(), node.child(node.len() - 1).unwrap()]
    };
    for leaf in edges {
        make_branch_to(&path, leaf, root);
    }
    assert_every_walk_is_refused(&path);
}

#[test]
fn a_root_that_is_its_own_child_is_an_error_not_a_loop() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.pages");
    let root = two_level_tree(&path);
    make_branch_to(&path, root, root);
    assert_every_walk_is_refused(&path);
}

/// A leaf whose offsets all name its largest entry (so its entries, read
/// one by one, add up to more than a page) makes a removal of several of
/// its pairs an error, not a write past the page.
#[test]
fn a_leaf_of_overlapping_entries_is_an_error_for_retain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree.db");
    let mut db = Db::create(&path).unwrap();
    let mut txn = db.write().unwrap();
    // Small pairs, and a last one of 1 500 bytes.
    for i in 0..20 {
        let len = if i == 19 { 1500 } else { 20 };
        txn.insert(&key(i), &vec![i as u8; len]).unwrap();
    }
    txn.commit().unwrap();
    drop(db);
    let mut pager = Pager::<PAGE>::open(&path).unwrap();
    let meta = ProtectedPageId::<PAGE>(0).get(&pager).unwrap().as_bytes();
    let root = u64::from_le_bytes(meta[8..16].try_into().unwrap());
    let page = PageId::<PAGE>(root).get_mut(&mut pager).unwrap();
    let bytes = page.as_bytes_mut();
    let leaf = NodeRef::new(bytes).unwrap();
    assert_eq!((leaf.kind(), leaf.len()), (Kind::Leaf, 20), "one leaf");
    // Every offset (a u16 after the 4-byte header) names the last entry.
    let last = [bytes[4 + 2 * 19], bytes[4 + 2 * 19 + 1]];
    for i in 0..20 {
        bytes[4 + 2 * i..4 + 2 * i + 2].copy_from_slice(&last);
    }
    pager.sync().unwrap();
    drop(pager);
    let mut db = Db::open(&path).unwrap();
    let mut txn = db.write().unwrap();
    let mut n = 0;
    let removed = txn.retain(|_, _| {
        n += 1;
        n % 4 != 0
    });
    assert!(matches!(removed, Err(Error::Corrupt(_))), "{removed:?}");
}

//! The B+tree store: it matches a `BTreeMap` through inserts, removes,
//! pops, range removals, `retain` and `extract_if`, scans, commits, dropped
//! transactions, compactions and reopening, never holds a page its tree
//! does not reach, commits with one sync, and its read transactions show
//! one commit on other threads while the writer goes on.

// The page crate's test support: in-memory temporary directories, the
// seeded generator, and what a killed process looks like on each OS.
#[path = "../../tests/support/crash/mod.rs"]
mod crash_support;
#[path = "../../tests/support/os/mod.rs"]
mod os_support;
#[path = "support/store.rs"]
mod store;

use std::ops::Bound;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crash_support::{temp_dir, Rng};
use mappedpages_btree::node::{ENTRY_OVERHEAD, HEADER, PAGE};
use mappedpages_btree::{Db, Durability, Error, ReadTxn, WriteTxn, MAX_INLINE, MAX_KEY, MAX_VALUE};
use proptest::prelude::*;
use store::{assert_committed, collect, expected_range, Model};

/// How long a child is given to start before the kill window opens: a
/// process starts in milliseconds, except under Wine, where it takes most
/// of a second (the children would otherwise die before their first batch).
const CHILD_START_MS: u64 = if cfg!(mappedpages_wine) { 1500 } else { 20 };

/// Key `n` of a small key space of varied lengths, up to the largest:
/// keys `2m` and `2m + 1` share a prefix, one being the prefix of the
/// other, and every seventh key is long, so nodes split after a few.
fn key(n: u16) -> Vec<u8> {
    let mut key = format!("{:04}", n / 2).into_bytes();
    if n % 2 == 1 {
        let len = if n.is_multiple_of(7) {
            MAX_KEY
        } else {
            5 + usize::from(n) * 13 % 200
        };
        key.resize(len, b'a' + (n % 26) as u8);
    }
    key
}

fn value(n: u16, len: usize, stamp: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8) ^ stamp ^ (n as u8)).collect()
}

#[derive(Clone, Debug)]
enum Op {
    Insert {
        key: u16,
        len: usize,
        stamp: u8,
    },
    Remove(u16),
    Get(u16),
    Range(Bound<u16>, Bound<u16>),
    PopFirst,
    PopLast,
    RemoveRange(Bound<u16>, Bound<u16>),
    /// Keeps the pairs [`picked`] does not pick with this salt.
    Retain(u8),
    /// Takes the pairs [`picked`] picks with this salt.
    ExtractIf(Bound<u16>, Bound<u16>, u8),
}

#[derive(Clone, Debug)]
enum Step {
    /// A write transaction, committed or dropped.
    Write {
        ops: Vec<Op>,
        commit: bool,
    },
    Reopen,
    /// A compaction of the file, after which it is no longer.
    Compact,
}

const KEYS: u16 = 300;

fn bound() -> impl Strategy<Value = Bound<u16>> {
    prop_oneof![
        Just(Bound::Unbounded),
        (0..KEYS).prop_map(Bound::Included),
        (0..KEYS).prop_map(Bound::Excluded),
    ]
}

/// Value lengths: short, up to the longest inline one and just past it,
/// and in overflow pages, a few of them or many.
fn value_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0..64usize,
        4 => 0..=MAX_INLINE + 1,
        2 => MAX_INLINE..4 * PAGE,
        1 => 4 * PAGE..40 * PAGE,
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..KEYS, value_len(), any::<u8>())
            .prop_map(|(key, len, stamp)| Op::Insert { key, len, stamp }),
        3 => (0..KEYS).prop_map(Op::Remove),
        1 => (0..KEYS).prop_map(Op::Get),
        1 => (bound(), bound()).prop_map(|(a, b)| Op::Range(a, b)),
        1 => Just(Op::PopFirst),
        1 => Just(Op::PopLast),
        1 => (bound(), bound()).prop_map(|(a, b)| Op::RemoveRange(a, b)),
        1 => any::<u8>().prop_map(Op::Retain),
        1 => (bound(), bound(), any::<u8>()).prop_map(|(a, b, salt)| Op::ExtractIf(a, b, salt)),
    ]
}

/// Mostly pops from both ends, with the changes that may move the leaves
/// at the ends between them: pops take most pairs in the end leaf alone
/// (see `WriteTxn::pop_from_edge_leaf`), which any other change must not
/// leave stale.
fn pop_heavy_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::PopFirst),
        6 => Just(Op::PopLast),
        3 => (0..KEYS, 0..=MAX_INLINE + 1, any::<u8>())
            .prop_map(|(key, len, stamp)| Op::Insert { key, len, stamp }),
        1 => (0..KEYS).prop_map(Op::Remove),
        1 => (bound(), bound()).prop_map(|(a, b)| Op::RemoveRange(a, b)),
        1 => (bound(), bound(), any::<u8>()).prop_map(|(a, b, salt)| Op::ExtractIf(a, b, salt)),
    ]
}

/// Whether a `retain` or `extract_if` with `salt` picks the pair: about a
/// third of the pairs, by their key and value.
fn picked(key: &[u8], value: &[u8], salt: u8) -> bool {
    let sum = key.iter().map(|&b| u32::from(b)).sum::<u32>();
    (sum + value.len() as u32 + u32::from(salt)).is_multiple_of(3)
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (prop::collection::vec(op(), 0..60), prop::bool::weighted(0.8))
            .prop_map(|(ops, commit)| Step::Write { ops, commit }),
        1 => Just(Step::Reopen),
        1 => Just(Step::Compact),
    ]
}

/// The bounds as keys, ordered so that `BTreeMap::range` accepts them.
fn key_bounds(a: Bound<u16>, b: Bound<u16>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let (a, b) = (a.map(key), b.map(key));
    let inner = |b: &Bound<Vec<u8>>| match b {
        Bound::Included(k) | Bound::Excluded(k) => Some(k.clone()),
        Bound::Unbounded => None,
    };
    match (inner(&a), inner(&b)) {
        (Some(x), Some(y)) if x > y => (b, a),
        (Some(x), Some(y)) if x == y => (Bound::Included(x), Bound::Included(y)),
        _ => (a, b),
    }
}

fn run_op(txn: &mut WriteTxn, model: &mut Model, op: &Op) {
    match *op {
        Op::Insert { key: n, len, stamp } => {
            let (k, v) = (key(n), value(n, len, stamp));
            assert_eq!(txn.insert(&k, &v).unwrap(), model.insert(k, v), "{op:?}");
        }
        Op::Remove(n) => assert_eq!(
            txn.remove(&key(n)).unwrap(),
            model.remove(&key(n)),
            "{op:?}"
        ),
        Op::Get(n) => assert_eq!(
            txn.get(&key(n)).unwrap().as_deref(),
            model.get(&key(n)).map(|v| &v[..]),
            "{op:?}"
        ),
        Op::Range(a, b) => {
            let bounds = key_bounds(a, b);
            assert_eq!(
                collect(txn.range(bounds.clone()).unwrap()),
                expected_range(model, &bounds),
                "{op:?}"
            );
        }
        Op::PopFirst => assert_eq!(txn.pop_first().unwrap(), model.pop_first(), "{op:?}"),
        Op::PopLast => assert_eq!(txn.pop_last().unwrap(), model.pop_last(), "{op:?}"),
        Op::RemoveRange(a, b) => {
            let bounds = key_bounds(a, b);
            let expected = expected_range(model, &bounds);
            for (k, _) in &expected {
                model.remove(k);
            }
            let removed = txn.remove_range(bounds).unwrap();
            assert_eq!(removed, expected.len() as u64, "{op:?}");
        }
        Op::Retain(salt) => {
            let before = model.len();
            model.retain(|k, v| !picked(k, v, salt));
            let removed = txn.retain(|k, v| !picked(k, v, salt)).unwrap();
            assert_eq!(removed, (before - model.len()) as u64, "{op:?}");
        }
        Op::ExtractIf(a, b, salt) => {
            let bounds = key_bounds(a, b);
            let mut expected = expected_range(model, &bounds);
            expected.retain(|(k, v)| picked(k, v, salt));
            for (k, _) in &expected {
                model.remove(k);
            }
            let taken = txn.extract_if(bounds, |k, v| picked(k, v, salt)).unwrap();
            assert_eq!(taken, expected, "{op:?}");
        }
    }
    assert_eq!(txn.len(), model.len() as u64, "after {op:?}");
}

fn run(path: &Path, steps: &[Step]) {
    let mut db = Db::create(path).unwrap();
    let mut committed = Model::new();
    for (n, step) in steps.iter().enumerate() {
        match step {
            Step::Write { ops, commit } => {
                let (syncs, pages) = (db.pager().sync_count(), db.pager().page_count());
                let mut pending = committed.clone();
                let mut txn = db.write().unwrap();
                for op in ops {
                    run_op(&mut txn, &mut pending, op);
                }
                if *commit {
                    txn.commit().unwrap();
                    committed = pending;
                    let grew = db.pager().page_count() > pages;
                    let first_after_open = syncs == 0;
                    assert_eq!(
                        db.pager().sync_count() - syncs,
                        1 + u64::from(grew) + u64::from(first_after_open),
                        "syncs of step {n} (file grew: {grew}, first after open: {first_after_open})"
                    );
                }
            }
            Step::Reopen => {
                drop(db);
                db = Db::open(path).unwrap();
            }
            Step::Compact => {
                let pages = db.pager().page_count();
                let compaction = db.compact().unwrap();
                assert_eq!(compaction.file_pages_before, pages);
                assert_eq!(compaction.file_pages_after, db.pager().page_count());
                assert!(compaction.file_pages_after <= pages, "{compaction:?}");
            }
        }
        assert_committed(&db, &committed, &format!("after step {n}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn matches_a_btreemap(steps in prop::collection::vec(step(), 1..20)) {
        let dir = temp_dir();
        run(&dir.path().join("tree.db"), &steps);
    }

    /// A committed tree of many leaves, then transactions of runs of pops
    /// from both ends among inserts, removals and range removals.
    #[test]
    fn pops_match_a_btreemap(
        load in prop::collection::vec((0..KEYS, 0..=MAX_INLINE + 1, any::<u8>()), 100..300),
        runs in prop::collection::vec(prop::collection::vec(pop_heavy_op(), 1..200), 1..4),
    ) {
        let ops = load
            .into_iter()
            .map(|(key, len, stamp)| Op::Insert { key, len, stamp })
            .collect();
        let mut steps = vec![Step::Write { ops, commit: true }];
        steps.extend(runs.into_iter().map(|ops| Step::Write { ops, commit: true }));
        let dir = temp_dir();
        run(&dir.path().join("tree.db"), &steps);
    }
}

/// Pops alternating between the ends drain a tree three levels deep in one
/// transaction, each pair in order, and leave no page behind.
#[test]
fn pops_from_both_ends_drain_a_deep_tree() {
    let dir = temp_dir();
    let path = dir.path().join("tree.db");
    let mut db = Db::create(&path).unwrap();
    let mut model = Model::new();
    let mut txn = db.write().unwrap();
    for i in 0..6000u32 {
        let (k, v) = (
            format!("{:08}", i.wrapping_mul(2_654_435_761) % 100_000).into_bytes(),
            vec![i as u8; 150],
        );
        txn.insert(&k, &v).unwrap();
        model.insert(k, v);
    }
    txn.commit().unwrap();
    let mut txn = db.write().unwrap();
    for n in 0..model.len() {
        if n % 2 == 0 {
            assert_eq!(txn.pop_first().unwrap(), model.pop_first(), "pop {n}");
        } else {
            assert_eq!(txn.pop_last().unwrap(), model.pop_last(), "pop {n}");
        }
    }
    assert_eq!(
        (txn.pop_first().unwrap(), txn.pop_last().unwrap()),
        (None, None)
    );
    txn.commit().unwrap();
    assert_committed(&db, &model, "after draining");
    let left = db.pager().allocated_page_count();
    assert!(left <= 2, "{left} pages for an empty tree");
}

/// Enough pairs in few transactions for a tree three levels deep, then
/// removals of nearly all of them: the tree shrinks back without a leak.
#[test]
fn grows_deep_and_shrinks_back() {
    let dir = temp_dir();
    let path = dir.path().join("tree.db");
    let mut db = Db::create(&path).unwrap();
    let mut model = Model::new();
    let pair = |i: u32| {
        (
            format!("{:08}", i.wrapping_mul(2_654_435_761) % 100_000).into_bytes(),
            vec![i as u8; 200],
        )
    };
    for batch in 0..4u32 {
        let mut txn = db.write().unwrap();
        for i in batch * 1500..(batch + 1) * 1500 {
            let (k, v) = pair(i);
            txn.insert(&k, &v).unwrap();
            model.insert(k, v);
        }
        txn.commit().unwrap();
    }
    let loaded = db.pager().allocated_page_count();
    assert!(loaded > 300, "{loaded} pages for 6000 pairs");
    assert_committed(&db, &model, "after loading");
    let mut txn = db.write().unwrap();
    for i in (0..6000).filter(|i| i % 1000 != 0) {
        let (k, _) = pair(i);
        assert!(txn.remove(&k).unwrap().is_some());
        model.remove(&k);
    }
    txn.commit().unwrap();
    assert_committed(&db, &model, "after removing");
    let left = db.pager().allocated_page_count();
    assert!(left <= 3, "{left} pages for 6 pairs");
    drop(db);
    assert_committed(&Db::open(&path).unwrap(), &model, "reopened");
}

/// Keys in ascending order fill each leaf before starting the next: the
/// load takes at most 60% of the leaves that splitting full leaves in half
/// would leave, each holding half a page's entries and one more.
#[test]
fn an_ascending_load_fills_its_leaves() {
    const PAIRS: usize = 6000;
    let dir = temp_dir();
    let mut db = Db::create(dir.path().join("tree.db")).unwrap();
    let mut model = Model::new();
    let pair = |i: usize| (format!("{i:016}").into_bytes(), vec![i as u8; 100]);
    for batch in (0..PAIRS).collect::<Vec<_>>().chunks(PAIRS / 4) {
        let mut txn = db.write().unwrap();
        for &i in batch {
            let (k, v) = pair(i);
            txn.insert(&k, &v).unwrap();
            model.insert(k, v);
        }
        txn.commit().unwrap();
    }
    assert_committed(&db, &model, "after the load");
    let (k, v) = pair(0);
    let entry = ENTRY_OVERHEAD + k.len() + v.len();
    let halved = PAIRS / ((PAGE - HEADER) / 2 / entry + 1);
    let pages = db.pager().allocated_page_count() as usize;
    assert!(
        pages * 10 <= halved * 6,
        "{pages} pages, where half-full leaves would be {halved}"
    );
}

#[test]
fn rejects_keys_and_values_past_the_limits() {
    let dir = temp_dir();
    let mut db = Db::create(dir.path().join("tree.db")).unwrap();
    let mut txn = db.write().unwrap();
    assert!(matches!(
        txn.insert(&[1; MAX_KEY + 1], b"v"),
        Err(Error::KeyTooLarge(_))
    ));
    let longest: Vec<u8> = (0..MAX_VALUE).map(|i| (i % 251) as u8).collect();
    assert!(matches!(
        txn.insert(b"k", &[&longest[..], b"!"].concat()),
        Err(Error::ValueTooLarge(_))
    ));
    txn.insert(&[1; MAX_KEY], &longest).unwrap();
    assert_eq!(
        txn.get(&[1; MAX_KEY]).unwrap().as_deref(),
        Some(&longest[..])
    );
}

/// Readers on other threads, each given the read transaction of one commit
/// while the writer goes on changing and removing what they read, see
/// exactly that commit every time they look.
#[test]
fn a_read_transaction_never_changes_under_its_reader() {
    let dir = temp_dir();
    let mut db = Db::create(dir.path().join("tree.db")).unwrap();
    let (send, receive) = mpsc::channel::<(ReadTxn, Model)>();
    let reader = thread::spawn(move || {
        let mut held: Vec<(ReadTxn, Model)> = Vec::new();
        let mut looks = 0;
        loop {
            match receive.try_recv() {
                Ok(pair) => held.push(pair),
                Err(mpsc::TryRecvError::Disconnected) => break,
                Err(mpsc::TryRecvError::Empty) => {}
            }
            // Each look goes over every snapshot held, the oldest first.
            for (read, model) in &held {
                let seen = collect(read.iter().unwrap());
                assert!(
                    seen.into_iter().eq(model.clone()),
                    "version {}",
                    read.version()
                );
                assert_eq!(read.len(), model.len() as u64);
                looks += 1;
            }
        }
        (looks, held.len())
    });
    let mut model = Model::new();
    for round in 0..40u32 {
        let mut txn = db.write().unwrap();
        for i in 0..100u32 {
            let n = (round * 37 + i * 11) % 500;
            let k = format!("{n:05}").into_bytes();
            if (round + i) % 3 == 0 {
                assert_eq!(txn.remove(&k).unwrap(), model.remove(&k));
            } else {
                let v = format!("{round} {i}")
                    .repeat(1 + (n % 20) as usize)
                    .into_bytes();
                assert_eq!(txn.insert(&k, &v).unwrap(), model.insert(k, v));
            }
        }
        txn.commit().unwrap();
        send.send((db.read().unwrap(), model.clone())).unwrap();
    }
    drop(send);
    let (looks, held) = reader.join().unwrap();
    assert_eq!(held, 40);
    assert!(looks >= 40, "{looks} looks");
    assert_committed(&db, &model, "after the readers");
}

/// Where the killed-process test records the last batch it committed; after
/// every key of [`key`].
const BATCH_KEY: &[u8] = b"~batch";

/// Batch `i` of the killed-process workload.
fn batch(i: u64) -> Vec<Op> {
    let mut rng = Rng::new(i);
    (0..40)
        .map(|_| {
            let key = rng.below(u64::from(KEYS)) as u16;
            if rng.chance(30) {
                Op::Remove(key)
            } else {
                // One value in ten lies in overflow pages.
                let len = match rng.chance(10) {
                    true => MAX_INLINE + rng.below(6 * PAGE as u64) as usize,
                    false => rng.below(700) as usize,
                };
                Op::Insert {
                    key,
                    len,
                    stamp: i as u8,
                }
            }
        })
        .collect()
}

fn apply_to_model(model: &mut Model, i: u64) {
    for op in batch(i) {
        match op {
            Op::Insert { key: n, len, stamp } => model.insert(key(n), value(n, len, stamp)),
            Op::Remove(n) => model.remove(&key(n)),
            _ => unreachable!("a batch only inserts and removes"),
        };
    }
    model.insert(BATCH_KEY.to_vec(), i.to_le_bytes().to_vec());
}

fn last_batch(db: &Db) -> u64 {
    let read = db.read().unwrap();
    read.get(BATCH_KEY)
        .unwrap()
        .map_or(0, |v| u64::from_le_bytes(v.as_ref().try_into().unwrap()))
}

/// The child: commits batches after the last committed one until killed.
#[test]
#[ignore = "run by survives_being_killed_at_any_moment as a child process"]
fn killed_child() {
    let Some(path) = std::env::var_os("BTREE_KILLED_PATH") else {
        return;
    };
    let durability = match std::env::var("BTREE_KILLED_DEFERRED").as_deref() {
        Ok("1") => Durability::Deferred,
        _ => Durability::Immediate,
    };
    let mut db = Db::options()
        .durability(durability)
        .open(Path::new(&path))
        .unwrap();
    let mut model: Model = collect(db.read().unwrap().iter().unwrap())
        .into_iter()
        .collect();
    for i in last_batch(&db) + 1.. {
        let mut txn = db.write().unwrap();
        for op in batch(i) {
            run_op(&mut txn, &mut model, &op);
        }
        let stamp = i.to_le_bytes().to_vec();
        assert_eq!(
            txn.insert(BATCH_KEY, &stamp).unwrap(),
            model.insert(BATCH_KEY.to_vec(), stamp)
        );
        txn.commit().unwrap();
    }
}

/// A process killed at any moment leaves its last commit, well formed, and
/// no page outside the tree.
#[test]
fn survives_being_killed_at_any_moment() {
    survives_kills(Durability::Immediate);
}

/// The same with commits that make no sync: a killed process loses none
/// of them either (the page cache keeps them).
#[test]
fn survives_being_killed_at_any_moment_with_deferred_commits() {
    survives_kills(Durability::Deferred);
}

fn survives_kills(durability: Durability) {
    // Under Wine, where a child takes over a second to start, half the
    // rounds: the Windows kill and reopen are the same in each, and the
    // native run kills at 16 moments.
    const ROUNDS: usize = if cfg!(mappedpages_wine) { 8 } else { 16 };
    let dir = temp_dir();
    let path = dir.path().join("killed.db");
    drop(Db::create(&path).unwrap());
    let mut rng = Rng::new(0x6274);
    let (mut model, mut modeled, mut progressed) = (Model::new(), 0, 0);
    for round in 0..ROUNDS {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["killed_child", "--exact", "--ignored", "--nocapture"])
            .env("BTREE_KILLED_PATH", &path)
            .env(
                "BTREE_KILLED_DEFERRED",
                if durability == Durability::Deferred {
                    "1"
                } else {
                    ""
                },
            )
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(CHILD_START_MS + rng.below(100)));
        child.kill().unwrap(); // SIGKILL: no destructor, no final sync
        let child = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&child.stderr);
        assert!(!stderr.contains("panicked"), "round {round}: {stderr}");
        assert!(os_support::killed(&child.status), "round {round}");

        let db = Db::open(&path).unwrap();
        let reached = last_batch(&db);
        assert!(reached >= modeled, "round {round}: went back in time");
        progressed += usize::from(reached > modeled);
        for i in modeled + 1..=reached {
            apply_to_model(&mut model, i);
        }
        modeled = reached;
        assert_committed(&db, &model, &format!("round {round}, batch {reached}"));
    }
    assert!(
        progressed >= ROUNDS / 2,
        "only {progressed} of {ROUNDS} children committed a batch"
    );
}

/// Durable write transactions from six threads through the shared store
/// (the pager's group commit): each returns once durable, a failing one
/// commits nothing, and after a reopen every returned write is there.
#[test]
fn write_transactions_from_many_threads_are_durable_when_they_return() {
    let dir = temp_dir();
    let path = dir.path().join("shared.db");
    let shared = Db::create(&path).unwrap().into_shared().unwrap();
    let (threads, each) = (6u16, 25u16);
    let writers: Vec<_> = (0..threads)
        .map(|t| {
            let shared = shared.clone();
            thread::spawn(move || {
                for i in 0..each {
                    let n = t * each + i;
                    shared
                        .write_durably(|txn| txn.insert(&key(n), &value(n, 40, 1)).map(drop))
                        .unwrap();
                    // A key past the limit fails inside the transaction,
                    // which then commits nothing.
                    let failed = shared.write_durably(|txn| {
                        txn.insert(&key(n + 1000), b"never")?;
                        txn.insert(&vec![0; MAX_KEY + 1], b"too long").map(drop)
                    });
                    assert!(matches!(failed, Err(Error::KeyTooLarge(_))));
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let total = u64::from(threads * each);
    assert_eq!(shared.read().unwrap().len(), total);
    drop(shared);
    let db = Db::open(&path).unwrap();
    let read = db.read().unwrap();
    assert_eq!(read.len(), total);
    for n in 0..threads * each {
        assert_eq!(
            read.get(&key(n)).unwrap().as_deref(),
            Some(&value(n, 40, 1)[..])
        );
        assert_eq!(read.get(&key(n + 1000)).unwrap(), None);
    }
}

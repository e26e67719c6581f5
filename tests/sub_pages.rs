//! Durable sub-pages (`SubPage`): allocated, written and freed inside
//! transactions, committed with them, read through snapshots, and found
//! again on reopen with nothing to rebuild. A property test runs random
//! transactions, reopens, snapshots and writes in place against a model;
//! directed tests cover bad ids, space and readers on other threads.

use std::collections::{BTreeMap, BTreeSet};

use mappedpages::inspect::{Inspector, PageKind};
use mappedpages::{Durability, MappedPageError, Pager, Snapshot, SubPage};
use proptest::prelude::*;

#[path = "support/model/mod.rs"]
mod model_support;

// The API is generic over the size; the tests pick it at run time, through
// the shared model's calls by size.
use model_support::sub::{self, SubKey as Key};

const PS: usize = 4096;
type P = Pager<PS>;

/// The size of sub-pages of class `class`: 64, 512 or 2048 bytes.
fn size_of(class: usize) -> usize {
    sub::sizes(PS)[class % 3]
}

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub.pages");
    (dir, path)
}

/// What reading `key` must give where `live` is the state: its bytes, or
/// `InvalidSubPage` for an id that names nothing.
fn check_reads(
    live: &BTreeMap<Key, Vec<u8>>,
    ever: &BTreeSet<Key>,
    read: impl Fn(Key) -> Result<Vec<u8>, MappedPageError>,
    ctx: &str,
) {
    for (&key, bytes) in live {
        match read(key) {
            Ok(got) => assert!(got == *bytes, "{ctx}: sub-page {key:?} holds other bytes"),
            Err(err) => panic!("{ctx}: live sub-page {key:?} unreadable: {err}"),
        }
    }
    for key in ever.iter().filter(|k| !live.contains_key(k)) {
        match read(*key) {
            Err(MappedPageError::InvalidSubPage { id }) => assert_eq!(id, key.1),
            other => panic!("{ctx}: dead sub-page {key:?} read as {other:?}"),
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// Allocate `n` sub-pages of a class, each written with a seed.
    Alloc(usize, usize, u64),
    /// Free the `i`th live sub-page (committed or fresh).
    Free(usize),
    /// Free the `i`th live sub-page twice in one call: `DoubleFree`, nothing changes.
    FreeTwice(usize),
    /// Copy-on-write the `i`th live sub-page: allocate, write, free the old.
    Rewrite(usize, u64),
    /// A committed sub-page written in the transaction: `CommittedSubPage`.
    WriteCommitted(usize),
    /// A made-up id: an error unless it happens to name a live sub-page.
    Forged(u64),
}

#[derive(Clone, Debug)]
enum Op {
    Txn(Vec<Step>, bool),
    Reopen(bool),
    TakeSnapshot,
    DropSnapshot(usize),
    /// Write the `i`th live sub-page in place, outside a transaction.
    InPlace(usize, u64),
    Sync,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..3usize, 1..6usize, any::<u64>()).prop_map(|(c, n, s)| Step::Alloc(c, n, s)),
        3 => any::<usize>().prop_map(Step::Free),
        1 => any::<usize>().prop_map(Step::FreeTwice),
        2 => (any::<usize>(), any::<u64>()).prop_map(|(i, s)| Step::Rewrite(i, s)),
        1 => any::<usize>().prop_map(Step::WriteCommitted),
        1 => any::<u64>().prop_map(Step::Forged),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (prop::collection::vec(step(), 1..8), prop::bool::weighted(0.8))
            .prop_map(|(s, c)| Op::Txn(s, c)),
        1 => any::<bool>().prop_map(Op::Reopen),
        1 => Just(Op::TakeSnapshot),
        1 => any::<usize>().prop_map(Op::DropSnapshot),
        1 => (any::<usize>(), any::<u64>()).prop_map(|(i, s)| Op::InPlace(i, s)),
        1 => Just(Op::Sync),
    ]
}

/// A snapshot held, with the sub-pages of its state and their births.
type Held = (Snapshot<PS>, BTreeMap<Key, Vec<u8>>, BTreeMap<Key, u64>);

struct Run {
    path: std::path::PathBuf,
    durability: Durability,
    pager: Option<P>,
    live: BTreeMap<Key, Vec<u8>>,
    /// Every sub-page ever allocated, with the number of its newest
    /// allocation: an id freed and allocated again names another object.
    born: BTreeMap<Key, u64>,
    births: u64,
    /// Each snapshot held, with the sub-pages of its state and their births.
    snapshots: Vec<Held>,
}

impl Run {
    fn pager(&mut self) -> &mut P {
        self.pager.as_mut().unwrap()
    }

    fn nth_live(&self, i: usize) -> Option<Key> {
        let n = self.live.len();
        (n > 0).then(|| *self.live.keys().nth(i % n).unwrap())
    }

    fn txn(&mut self, steps: &[Step], commit: bool) {
        let before = self.live.clone();
        let mut next = self.live.clone();
        let mut fresh: BTreeSet<Key> = BTreeSet::new();
        let mut born = self.born.clone();
        let mut births = self.births;
        let pager = self.pager.as_mut().unwrap();
        let mut txn = pager.transaction().unwrap();
        let nth = |next: &BTreeMap<Key, Vec<u8>>, i: usize| {
            let n = next.len();
            (n > 0).then(|| *next.keys().nth(i % n).unwrap())
        };
        for step in steps {
            match *step {
                Step::Alloc(class, n, seed) => {
                    let size = size_of(class);
                    let ids = sub::alloc(&mut txn, size, n).unwrap();
                    assert_eq!(ids.len(), n);
                    for (k, raw) in ids.into_iter().enumerate() {
                        let key = (size, raw);
                        assert!(!next.contains_key(&key), "{key:?} handed out while live");
                        assert!(
                            sub::read_in(&txn, key).unwrap().iter().all(|&b| b == 0),
                            "a new sub-page does not read as zeros"
                        );
                        let bytes = sub::pattern(seed.wrapping_add(k as u64), size);
                        sub::write(&mut txn, key).unwrap().copy_from_slice(&bytes);
                        next.insert(key, bytes);
                        fresh.insert(key);
                        births += 1;
                        born.insert(key, births);
                    }
                }
                Step::Free(i) => {
                    if let Some(key) = nth(&next, i) {
                        sub::free(&mut txn, key.0, &[key.1]).unwrap();
                        next.remove(&key);
                        fresh.remove(&key);
                    }
                }
                Step::FreeTwice(i) => {
                    if let Some(key) = nth(&next, i) {
                        let err = sub::free(&mut txn, key.0, &[key.1, key.1]).unwrap_err();
                        assert!(matches!(err, MappedPageError::DoubleFree), "{err:?}");
                        assert_eq!(sub::read_in(&txn, key).unwrap(), &next[&key][..]);
                    }
                }
                Step::Rewrite(i, seed) => {
                    if let Some(old) = nth(&next, i) {
                        let raw = sub::alloc(&mut txn, old.0, 1).unwrap()[0];
                        let key = (old.0, raw);
                        let mut bytes = next[&old].clone();
                        bytes[..8].copy_from_slice(&seed.to_le_bytes());
                        sub::write(&mut txn, key).unwrap().copy_from_slice(&bytes);
                        sub::free(&mut txn, old.0, &[old.1]).unwrap();
                        next.remove(&old);
                        fresh.remove(&old);
                        next.insert(key, bytes);
                        fresh.insert(key);
                        births += 1;
                        born.insert(key, births);
                    }
                }
                Step::WriteCommitted(i) => {
                    let committed: Vec<Key> = next
                        .keys()
                        .filter(|k| !fresh.contains(k))
                        .copied()
                        .collect();
                    if !committed.is_empty() {
                        let key = committed[i % committed.len()];
                        let err = sub::write(&mut txn, key).unwrap_err();
                        assert!(
                            matches!(err, MappedPageError::CommittedSubPage { id } if id == key.1),
                            "{err:?}"
                        );
                    }
                }
                Step::Forged(raw) => {
                    for size in sub::sizes(PS) {
                        let key = (size, raw);
                        match (sub::read_in(&txn, key), next.get(&key)) {
                            (Ok(got), Some(bytes)) => assert_eq!(got, &bytes[..]),
                            (Err(MappedPageError::InvalidSubPage { .. }), None) => {}
                            (got, want) => panic!("forged {key:?}: {got:?}, model {want:?}"),
                        }
                        if !next.contains_key(&key) {
                            let err = sub::free(&mut txn, size, &[raw]).unwrap_err();
                            assert!(
                                matches!(
                                    err,
                                    MappedPageError::InvalidSubPage { .. }
                                        | MappedPageError::DoubleFree
                                ),
                                "{err:?}"
                            );
                        }
                    }
                }
            }
        }
        check_reads(
            &next,
            &BTreeSet::new(),
            |key| sub::read_in(&txn, key).map(<[u8]>::to_vec),
            "inside the transaction",
        );
        if commit {
            txn.commit().unwrap();
            self.live = next;
            self.born = born;
        } else {
            drop(txn);
            assert_eq!(self.live, before);
            // The objects a dropped transaction freed and allocated again
            // under the same id are still the ones born before it (a
            // snapshot reads them): found by proptest, a model error. Ids it
            // allocated new are remembered, as ids that must read as none.
            for (key, birth) in born {
                self.born.entry(key).or_insert(birth);
            }
        }
        // Births stay counted, so that no later object takes one's number.
        self.births = births;
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Txn(steps, commit) => self.txn(steps, *commit),
            Op::Reopen(switch) => {
                drop(self.pager.take());
                self.snapshots.clear();
                if *switch {
                    self.durability = match self.durability {
                        Durability::Immediate => Durability::Deferred,
                        _ => Durability::Immediate,
                    };
                }
                self.pager = Some(
                    P::options()
                        .durability(self.durability)
                        .open(&self.path)
                        .unwrap(),
                );
            }
            Op::TakeSnapshot => {
                let snapshot = self.pager().snapshot().unwrap();
                let born = self.live.keys().map(|key| (*key, self.born[key])).collect();
                self.snapshots.push((snapshot, self.live.clone(), born));
            }
            Op::DropSnapshot(i) => {
                if !self.snapshots.is_empty() {
                    let n = self.snapshots.len();
                    self.snapshots.remove(i % n);
                }
            }
            Op::InPlace(i, seed) => {
                let Some(key) = self.nth_live(*i) else {
                    return;
                };
                // A snapshot reads this very object, not an earlier one
                // that had its id.
                let read_by_snapshot = self
                    .snapshots
                    .iter()
                    .any(|(_, _, born)| born.get(&key) == self.born.get(&key));
                let bytes = sub::pattern(*seed, key.0);
                match sub::write_in_place(self.pager(), key) {
                    Ok(target) => {
                        assert!(
                            !read_by_snapshot,
                            "{key:?} written in place under a snapshot"
                        );
                        target.copy_from_slice(&bytes);
                        self.live.insert(key, bytes);
                    }
                    Err(MappedPageError::InUseBySnapshot { .. }) => assert!(read_by_snapshot),
                    Err(err) => panic!("write in place of {key:?}: {err}"),
                }
            }
            Op::Sync => self.pager().sync().unwrap(),
        }
    }

    fn check(&self, ctx: &str) {
        let pager = self.pager.as_ref().unwrap();
        let ever: BTreeSet<Key> = self.born.keys().copied().collect();
        assert!(
            sub::list(pager).iter().eq(self.live.keys()),
            "{ctx}: sub-pages listed"
        );
        assert_eq!(pager.iter_allocated_protected_pages().count(), 0, "{ctx}");
        check_reads(
            &self.live,
            &ever,
            |key| sub::read(pager, key).map(<[u8]>::to_vec),
            ctx,
        );
        for (snapshot, live, _) in &self.snapshots {
            assert!(sub::list_snapshot(snapshot).iter().eq(live.keys()), "{ctx}");
            assert_eq!(snapshot.iter_allocated_protected_pages().count(), 0);
            check_reads(
                live,
                &ever,
                |key| sub::read_snapshot(snapshot, key).map(<[u8]>::to_vec),
                ctx,
            );
        }
    }
}

fn sub_page_parents(path: &std::path::Path) -> u64 {
    Inspector::open(path)
        .unwrap()
        .page_runs()
        .unwrap()
        .iter()
        .filter(|run| matches!(run.kind, PageKind::SubPageParent { .. }))
        .map(|run| run.count)
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: if std::env::var_os("MAPPEDPAGES_DEEP_TESTS").is_some() { 256 } else { 48 },
        ..ProptestConfig::default()
    })]

    #[test]
    fn sub_pages_follow_the_model(
        ops in prop::collection::vec(op(), 1..40),
        deferred in any::<bool>(),
    ) {
        let (_dir, path) = temp();
        let durability = if deferred { Durability::Deferred } else { Durability::Immediate };
        let pager = P::options().durability(durability).create(&path).unwrap();
        let mut run = Run {
            path: path.clone(),
            durability,
            pager: Some(pager),
            live: BTreeMap::new(),
            born: BTreeMap::new(),
            births: 0,
            snapshots: Vec::new(),
        };
        for (i, op) in ops.iter().enumerate() {
            run.apply(op);
            run.check(&format!("after op {i}: {op:?}"));
        }
        // Everything freed and no snapshot left: no parent page stays.
        run.snapshots.clear();
        let mut by_size: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for &(size, raw) in run.live.keys() {
            by_size.entry(size).or_default().push(raw);
        }
        let pager = run.pager.as_mut().unwrap();
        let mut txn = pager.transaction().unwrap();
        for (&size, raws) in &by_size {
            sub::free(&mut txn, size, raws).unwrap();
        }
        txn.commit().unwrap();
        pager.sync().unwrap();
        drop(run.pager.take());
        prop_assert_eq!(sub_page_parents(&path), 0);
        let pager = P::open(&path).unwrap();
        for key in run.born.keys() {
            prop_assert!(sub::read(&pager, *key).is_err());
        }
    }
}

#[test]
fn bad_ids_are_typed_errors_and_change_nothing() {
    let (_dir, path) = temp();
    let mut pager = P::create(&path).unwrap();
    let protected = pager.alloc_protected().unwrap();
    let mut txn = pager.transaction().unwrap();
    let small = txn.alloc_sub_pages::<64>(3).unwrap();
    let big = txn.alloc_sub_page::<2048>().unwrap();
    txn.commit().unwrap();
    let generation = pager.generation();
    for raw in [
        u64::MAX,
        1 << 63,
        small[2].0 + 1,
        big.0 + 1,
        protected.0 << 6,
    ] {
        let id = SubPage::<64>(raw);
        assert!(
            matches!(pager.sub_page(id), Err(MappedPageError::InvalidSubPage { id }) if id == raw),
            "{raw:#x}"
        );
        let mut txn = pager.transaction().unwrap();
        assert!(matches!(
            txn.free_sub_page(id),
            Err(MappedPageError::InvalidSubPage { .. } | MappedPageError::DoubleFree)
        ));
        drop(txn);
    }
    // The same raw id read as another size names nothing.
    assert!(matches!(
        pager.sub_page(SubPage::<2048>(small[0].0)),
        Err(MappedPageError::InvalidSubPage { .. })
    ));
    assert!(matches!(
        pager.sub_page(SubPage::<64>(big.0)),
        Err(MappedPageError::InvalidSubPage { .. })
    ));
    // A sub-page parent is not a protected page, whatever its slot.
    let parent_slot = small[0].0 >> 6;
    assert!(pager
        .snapshot()
        .unwrap()
        .get_protected(mappedpages::ProtectedPageId(parent_slot))
        .is_err());
    assert!(pager
        .free_protected(mappedpages::ProtectedPageId(parent_slot))
        .is_err());
    // A bulk free with one bad id frees none of the good ones.
    let mut txn = pager.transaction().unwrap();
    let err = txn
        .free_sub_pages(&[small[0], SubPage(u64::MAX), small[1]])
        .unwrap_err();
    assert!(matches!(
        err,
        MappedPageError::InvalidSubPage { id: u64::MAX }
    ));
    let err = txn.free_sub_pages(&[small[0], small[0]]).unwrap_err();
    assert!(matches!(err, MappedPageError::DoubleFree));
    txn.commit().unwrap();
    assert_eq!(pager.generation(), generation, "nothing to commit");
    for id in &small {
        assert!(pager.sub_page(*id).is_ok());
    }
}

#[test]
fn a_parent_goes_back_when_its_last_sub_page_is_freed_and_no_snapshot_reads_it() {
    let (_dir, path) = temp();
    let mut pager = P::create(&path).unwrap();
    let free_at_start = pager.free_page_count();
    let mut txn = pager.transaction().unwrap();
    let ids = txn.alloc_sub_pages::<512>(8).unwrap(); // one parent
    txn.commit().unwrap();
    assert_eq!(pager.free_page_count(), free_at_start - 1);

    let snapshot = pager.snapshot().unwrap();
    let mut txn = pager.transaction().unwrap();
    txn.free_sub_pages(&ids).unwrap();
    txn.commit().unwrap();
    // The snapshot still reads them: the parent waits.
    assert!(snapshot.sub_page(ids[3]).is_ok());
    assert_eq!(pager.free_page_count(), free_at_start - 1);
    drop(snapshot);
    // The next allocation takes the page back, not a new one.
    let mut txn = pager.transaction().unwrap();
    txn.alloc().unwrap();
    txn.commit().unwrap();
    assert_eq!(pager.free_page_count(), free_at_start - 1);
}

#[test]
fn sub_pages_freed_under_a_snapshot_are_not_handed_out_until_it_is_dropped() {
    let (_dir, path) = temp();
    let mut pager = P::create(&path).unwrap();
    let mut txn = pager.transaction().unwrap();
    let ids = txn.alloc_sub_pages::<1024>(4).unwrap(); // a full parent
    for (i, id) in ids.iter().enumerate() {
        txn.sub_page_mut(*id).unwrap().fill(i as u8 + 1);
    }
    let keep = txn.alloc_sub_page::<1024>().unwrap(); // a second parent
    txn.commit().unwrap();
    let snapshot = pager.snapshot().unwrap();
    let mut txn = pager.transaction().unwrap();
    txn.free_sub_pages(&ids[..2]).unwrap();
    txn.commit().unwrap();
    // Two slots free in the first parent, three in the second: the new
    // ones must not be the freed ones while the snapshot lives.
    let mut txn = pager.transaction().unwrap();
    let new = txn.alloc_sub_pages::<1024>(5).unwrap();
    for id in &new {
        txn.sub_page_mut(*id).unwrap().fill(0xEE);
    }
    assert!(!new.contains(&ids[0]) && !new.contains(&ids[1]));
    txn.commit().unwrap();
    for (i, id) in ids.iter().enumerate() {
        assert!(snapshot
            .sub_page(*id)
            .unwrap()
            .iter()
            .all(|&b| b == i as u8 + 1));
    }
    drop(snapshot);
    let mut txn = pager.transaction().unwrap();
    let again = txn.alloc_sub_pages::<1024>(2).unwrap();
    assert!(
        again.contains(&ids[0]) && again.contains(&ids[1]),
        "{again:?}"
    );
    drop(txn);
    assert!(pager.sub_page(keep).is_ok());
}

#[test]
fn readers_on_other_threads_see_their_state_while_the_writer_churns() {
    let (_dir, path) = temp();
    let mut pager = P::options()
        .durability(Durability::Deferred)
        .create(&path)
        .unwrap();
    let stamp = |bytes: &mut [u8], id: u64, round: u64| {
        for chunk in bytes.chunks_exact_mut(16) {
            chunk[..8].copy_from_slice(&id.to_le_bytes());
            chunk[8..].copy_from_slice(&round.to_le_bytes());
        }
    };
    let mut live: Vec<SubPage<128>> = Vec::new();
    let (tx, rx) = std::sync::mpsc::channel::<(Snapshot<PS>, Vec<(SubPage<128>, u64)>)>();
    let rx = std::sync::Mutex::new(rx);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| loop {
                let next = rx.lock().unwrap().recv();
                let Ok((snapshot, expected)) = next else {
                    return;
                };
                for _ in 0..3 {
                    for (id, round) in &expected {
                        let bytes = snapshot.sub_page(*id).unwrap();
                        for chunk in bytes.chunks_exact(16) {
                            assert_eq!(chunk[..8], id.0.to_le_bytes());
                            assert_eq!(chunk[8..], round.to_le_bytes());
                        }
                    }
                }
            });
        }
        let mut rounds: BTreeMap<u64, u64> = BTreeMap::new();
        for round in 0..300u64 {
            let mut txn = pager.transaction().unwrap();
            // Rewrite a few, free a few, add a few.
            let mut next = Vec::new();
            for (i, id) in live.iter().enumerate() {
                match (i as u64 + round) % 5 {
                    0 => txn.free_sub_page(*id).unwrap(),
                    1 => {
                        let new = txn.alloc_sub_page::<128>().unwrap();
                        stamp(txn.sub_page_mut(new).unwrap(), new.0, round);
                        txn.free_sub_page(*id).unwrap();
                        rounds.insert(new.0, round);
                        next.push(new);
                    }
                    _ => next.push(*id),
                }
            }
            for _ in 0..4 {
                let new = txn.alloc_sub_page::<128>().unwrap();
                stamp(txn.sub_page_mut(new).unwrap(), new.0, round);
                rounds.insert(new.0, round);
                next.push(new);
            }
            txn.commit().unwrap();
            live = next;
            if round % 10 == 0 {
                pager.sync().unwrap();
            }
            let expected = live.iter().map(|id| (*id, rounds[&id.0])).collect();
            tx.send((pager.snapshot().unwrap(), expected)).unwrap();
        }
        drop(tx);
    });
}

/// The format version of the newest root of the file at `path`: read from
/// pages 1 and 2 (generation at byte 24, version at byte 8).
fn newest_root_version(path: &std::path::Path) -> u32 {
    let bytes = std::fs::read(path).unwrap();
    let field = |page: usize, at: usize, len: usize| {
        let start = page * PS + at;
        let mut word = [0u8; 8];
        word[..len].copy_from_slice(&bytes[start..start + len]);
        u64::from_le_bytes(word)
    };
    let newest = if field(1, 24, 8) > field(2, 24, 8) {
        1
    } else {
        2
    };
    field(newest, 8, 4) as u32
}

#[test]
fn roots_are_format_4_while_the_directory_may_hold_parents() {
    let (_dir, path) = temp();
    let mut pager = P::create(&path).unwrap();
    pager.alloc().unwrap();
    assert_eq!(newest_root_version(&path), 1);
    let mut txn = pager.transaction().unwrap();
    let ids = txn.alloc_sub_pages::<256>(3).unwrap();
    txn.commit().unwrap();
    assert_eq!(newest_root_version(&path), 4);
    let mut txn = pager.transaction().unwrap();
    txn.free_sub_pages(&ids).unwrap();
    txn.commit().unwrap();
    // The log still names the parent: older builds must not read it.
    assert_eq!(newest_root_version(&path), 4);
    // Enough commits to fill the log: the checkpoint after it writes the
    // directory without parents, and the roots go back to format 1.
    for _ in 0..400 {
        let id = pager.alloc().unwrap();
        pager.free(id).unwrap();
    }
    assert_eq!(newest_root_version(&path), 1);
    drop(pager);
    assert!(P::open(&path).is_ok());
}

#[test]
fn sizes_the_pages_cannot_be_cut_into_are_typed_errors() {
    let (_dir, path) = temp();
    let mut pager = P::create(&path).unwrap();
    let mut txn = pager.transaction().unwrap();
    let bad = |r: Result<(), MappedPageError>, size| {
        assert!(
            matches!(r, Err(MappedPageError::InvalidSubPageSize { size: s }) if s == size),
            "{size}: {r:?}"
        );
    };
    bad(txn.alloc_sub_page::<32>().map(drop), 32);
    bad(txn.alloc_sub_page::<4096>().map(drop), 4096);
    bad(txn.alloc_sub_page::<96>().map(drop), 96);
    bad(txn.alloc_sub_page::<0>().map(drop), 0);
    bad(txn.free_sub_page(SubPage::<3>(0)), 3);
    txn.commit().unwrap();
    assert_eq!(pager.iter_sub_pages::<32>().count(), 0);
    bad(pager.sub_page(SubPage::<8192>(0)).map(drop), 8192);
}

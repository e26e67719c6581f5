//! Model-based property test of `Pager`: random sequences of regular and
//! protected allocations, frees, bulk calls, writes, transactions (with
//! relocations of the highest pages), shrinks, syncs, reopens and copies of
//! the file as a killed process leaves it run against
//! a plain in-memory model, and the pager must match the model after every
//! step, and a transaction must match it after every call inside it.
//!
//! The default run keeps to a few cases per configuration, more with
//! `MAPPEDPAGES_DEEP_TESTS=1` (see `depth_support`); `PROPTEST_CASES`
//! overrides both.

mod depth_support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use depth_support::depth;
use mappedpages::{
    Durability, MappedPage, MappedPageError, PageId, Pager, ProtectedPageId, Transaction,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// A few cases per configuration by default; `PROPTEST_CASES` overrides.
fn config(default_cases: u32) -> Config {
    let mut config = Config {
        max_shrink_iters: 400,
        // Regressions found here are kept as named tests below, not as files.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = default_cases;
    }
    config
}

/// An id that is wrong for `free`/`get`, and how it is wrong.
#[derive(Clone, Copy, Debug)]
enum BadId {
    /// Pages 0 to 2: `ReservedPage`.
    Reserved(u64),
    /// `page_count() + k`: `OutOfBounds`.
    PastEnd(u64),
    /// `u64::MAX`: `OutOfBounds`.
    Huge,
    /// An id this test freed earlier (picked by index): free or internal now.
    Stale(usize),
}

#[derive(Clone, Copy, Debug)]
enum BulkFlaw {
    None,
    /// The id at this index of the chosen ids is named twice.
    Duplicate(usize),
    /// One bad id is added.
    Bad(BadId),
}

/// A range of bytes in a page, as fractions so it fits every page size, and
/// the seed of the bytes written there.
#[derive(Clone, Copy, Debug)]
struct Patch {
    start: u16,
    len: u16,
    seed: u64,
}

#[derive(Clone, Debug)]
enum Op {
    Alloc,
    Free(usize),
    /// Free a live page, then free it again at once: `DoubleFree`.
    FreeTwice(usize),
    FreeBad(BadId),
    GetBad(BadId),
    AllocBulk(usize),
    FreeBulk(Vec<usize>, BulkFlaw),
    /// Free a run of the live pages: from a fraction of the list, this many.
    FreeRun(u16, usize),
    /// `alloc_bulk(0)`, `free_bulk([])` and their protected twins do
    /// nothing (no commit, no sync); `alloc_bulk(usize::MAX)` and its
    /// protected twin are `InvalidCount`.
    BadCounts,
    Write(usize, Patch),
    AllocProtected,
    AllocProtectedBulk(usize),
    FreeProtected(usize),
    FreeProtectedBulk(Vec<usize>, BulkFlaw),
    /// A protected id not in use: a freed one or one past the directory.
    ProtectedBad(Option<usize>),
    /// Partial write of a protected page, committed or dropped.
    ProtectedWrite(usize, Patch, bool),
    Sync,
    /// Drop and open again, optionally in the other durability mode.
    Reopen(bool),
    /// Open a copy of the file taken while the pager is open, as a killed
    /// process leaves it: it must show every commit, in both modes.
    KillCopy,
    /// Calls inside one transaction, then its end.
    Txn(Vec<TxnOp>, End),
    /// `shrink()`, then a reopen if set.
    Shrink(bool),
}

#[derive(Clone, Copy, Debug)]
enum End {
    Commit,
    Drop,
    Rollback,
}

/// One call inside a transaction. Indexes pick among what the transaction
/// shows at that point.
#[derive(Clone, Debug)]
enum TxnOp {
    Alloc,
    AllocBulk(usize),
    /// `alloc_bulk` of this many pages, then a patch written into each:
    /// enough of them overflow the root's list of page checks.
    AllocWrite(usize, Patch),
    /// Free any allocated page, committed or allocated in the transaction.
    Free(usize),
    /// Free a page, then again: `DoubleFree`.
    FreeTwice(usize),
    FreeBulk(Vec<usize>, BulkFlaw),
    FreeBad(BadId),
    GetBad(BadId),
    /// Patch a page the transaction allocated.
    Write(usize, Patch),
    /// `get_mut` of a page committed before: `CommittedPage`.
    WriteCommitted(usize),
    /// `get_mut` of a page the transaction freed: `NotAllocated`.
    WriteFreed(usize),
    BadCounts,
    AllocProtected,
    FreeProtected(usize),
    WriteProtected(usize, Patch),
    /// A protected id not in use: freed (perhaps in this transaction) or
    /// past the directory.
    ProtectedBad(Option<usize>),
    /// Several pages lent at once: fresh pages (picked by the first index)
    /// written from committed or fresh pages read beside them; with `true`,
    /// lending conflicts and bad ids are tried while they are out.
    Pages(Vec<(usize, Patch)>, Vec<usize>, bool),
    /// A copy of the file taken in the middle of the transaction shows the
    /// state before it.
    KillCopy,
    /// `relocate` of this many of the highest allocated pages, top down.
    Relocate(usize),
}

fn bad_id() -> impl Strategy<Value = BadId> {
    prop_oneof![
        (0u64..3).prop_map(BadId::Reserved),
        (0u64..5).prop_map(BadId::PastEnd),
        Just(BadId::Huge),
        any::<usize>().prop_map(BadId::Stale),
    ]
}

fn flaw() -> impl Strategy<Value = BulkFlaw> {
    prop_oneof![
        4 => Just(BulkFlaw::None),
        1 => any::<usize>().prop_map(BulkFlaw::Duplicate),
        1 => bad_id().prop_map(BulkFlaw::Bad),
    ]
}

fn patch() -> impl Strategy<Value = Patch> {
    (any::<u16>(), any::<u16>(), any::<u64>()).prop_map(|(start, len, seed)| Patch {
        start,
        len,
        seed,
    })
}

fn op() -> impl Strategy<Value = Op> {
    let picks = || proptest::collection::vec(any::<usize>(), 1..12);
    prop_oneof![
        8 => Just(Op::Alloc),
        4 => any::<usize>().prop_map(Op::Free),
        1 => any::<usize>().prop_map(Op::FreeTwice),
        2 => bad_id().prop_map(Op::FreeBad),
        1 => bad_id().prop_map(Op::GetBad),
        3 => prop_oneof![4 => 1usize..40, 1 => 40usize..400].prop_map(Op::AllocBulk),
        3 => (picks(), flaw()).prop_map(|(p, f)| Op::FreeBulk(p, f)),
        1 => (any::<u16>(), 1usize..300).prop_map(|(s, n)| Op::FreeRun(s, n)),
        1 => Just(Op::BadCounts),
        6 => (any::<usize>(), patch()).prop_map(|(i, p)| Op::Write(i, p)),
        4 => Just(Op::AllocProtected),
        2 => (1usize..24).prop_map(Op::AllocProtectedBulk),
        3 => any::<usize>().prop_map(Op::FreeProtected),
        2 => (picks(), flaw()).prop_map(|(p, f)| Op::FreeProtectedBulk(p, f)),
        1 => proptest::option::of(any::<usize>()).prop_map(Op::ProtectedBad),
        8 => (any::<usize>(), patch(), prop::bool::weighted(0.7))
            .prop_map(|(i, p, c)| Op::ProtectedWrite(i, p, c)),
        2 => Just(Op::Sync),
        2 => prop::bool::weighted(0.2).prop_map(Op::Reopen),
        1 => Just(Op::KillCopy),
        8 => (proptest::collection::vec(txn_op(), 0..14), end())
            .prop_map(|(ops, end)| Op::Txn(ops, end)),
        2 => prop::bool::weighted(0.3).prop_map(Op::Shrink),
    ]
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        6 => Just(End::Commit),
        2 => Just(End::Drop),
        1 => Just(End::Rollback),
    ]
}

fn txn_op() -> impl Strategy<Value = TxnOp> {
    let picks = || proptest::collection::vec(any::<usize>(), 1..12);
    // 170 and more written pages overflow a 4 KiB root's check list, 40 and
    // more a 1 KiB root's.
    let written = prop_oneof![12 => 1usize..6, 2 => 40usize..60, 1 => 170usize..240];
    prop_oneof![
        6 => Just(TxnOp::Alloc),
        2 => (1usize..24).prop_map(TxnOp::AllocBulk),
        3 => (written, patch()).prop_map(|(n, p)| TxnOp::AllocWrite(n, p)),
        4 => any::<usize>().prop_map(TxnOp::Free),
        1 => any::<usize>().prop_map(TxnOp::FreeTwice),
        2 => (picks(), flaw()).prop_map(|(p, f)| TxnOp::FreeBulk(p, f)),
        2 => bad_id().prop_map(TxnOp::FreeBad),
        1 => bad_id().prop_map(TxnOp::GetBad),
        6 => (any::<usize>(), patch()).prop_map(|(i, p)| TxnOp::Write(i, p)),
        1 => any::<usize>().prop_map(TxnOp::WriteCommitted),
        1 => any::<usize>().prop_map(TxnOp::WriteFreed),
        1 => Just(TxnOp::BadCounts),
        3 => Just(TxnOp::AllocProtected),
        2 => any::<usize>().prop_map(TxnOp::FreeProtected),
        5 => (any::<usize>(), patch()).prop_map(|(i, p)| TxnOp::WriteProtected(i, p)),
        1 => proptest::option::of(any::<usize>()).prop_map(TxnOp::ProtectedBad),
        3 => (
            proptest::collection::vec((any::<usize>(), patch()), 1..5),
            proptest::collection::vec(any::<usize>(), 0..4),
            prop::bool::weighted(0.4),
        )
            .prop_map(|(w, r, c)| TxnOp::Pages(w, r, c)),
        1 => Just(TxnOp::KillCopy),
        2 => (1usize..5).prop_map(TxnOp::Relocate),
    ]
}

/// Deterministic bytes from a seed (splitmix64).
fn fill(bytes: &mut [u8], mut seed: u64) {
    for chunk in bytes.chunks_mut(8) {
        seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        chunk.copy_from_slice(&z.to_le_bytes()[..chunk.len()]);
    }
}

/// The byte range a patch covers in a page of `page_size` bytes (never empty).
fn span(patch: Patch, page_size: usize) -> std::ops::Range<usize> {
    let start = patch.start as usize * page_size / 65536;
    let max_len = page_size - start;
    let len = 1 + patch.len as usize * max_len / 65536;
    start..start + len.min(max_len)
}

fn pick<T: Copy>(items: &BTreeSet<T>, index: usize) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        items.iter().nth(index % items.len()).copied()
    }
}

fn pick_key<T: Copy, V>(items: &BTreeMap<T, V>, index: usize) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        items.keys().nth(index % items.len()).copied()
    }
}

/// What the pager must look like.
#[derive(Clone, Default)]
struct Model {
    /// Live regular pages and their bytes (as found at allocation, then as
    /// written).
    regular: BTreeMap<u64, Vec<u8>>,
    /// Protected pages in use and their committed bytes.
    protected: BTreeMap<u64, Vec<u8>>,
    /// Regular ids freed and not handed out again.
    freed: BTreeSet<u64>,
    /// Protected ids freed and not handed out again.
    freed_protected: BTreeSet<u64>,
    /// Generation of the newest commit: one per committing call.
    generation: u64,
}

struct Harness<'p, const N: usize> {
    path: &'p Path,
    pager: Option<Pager<N>>,
    durability: Durability,
    model: Model,
    syncs: Syncs,
    /// The pager cuts its free tail by itself after commits and syncs
    /// past this many free pages (a small `shrink_threshold`, with small
    /// growth steps so that the slack it keeps is small): those cuts add
    /// commits of their own.
    auto_shrink: Option<u64>,
    /// Steps other than `Shrink` after which the file was shorter.
    auto_cuts: u64,
    /// Pages `Shrink` steps gave back.
    given_back: u64,
}

/// What the model knows of the pager's syncs, to check what waits for one
/// and how many a transaction's commit makes.
#[derive(Default)]
struct Syncs {
    /// Regular pages freed by commits since the last sync (Deferred mode):
    /// none may be handed out again before one.
    awaiting: BTreeSet<u64>,
    /// Regular pages freed by the step being run.
    freed_now: Vec<u64>,
    /// Pages a committed transaction wrote. Writing one in place may first
    /// commit a root that checks none (one more generation).
    txn_written: BTreeSet<u64>,
    /// A page was written in place since the last sync: the next commit
    /// syncs it first.
    dirty: bool,
    /// Opened, and no sync since: the first transaction syncs.
    unsettled: bool,
}

/// The id `bad` stands for in a file of `end` pages, `None` if there is no
/// freed page to name below `pages` (the file's length: a shrink may have
/// cut those above).
fn resolve_bad(bad: BadId, end: u64, freed: &BTreeSet<u64>, pages: u64) -> Option<u64> {
    match bad {
        BadId::Reserved(p) => Some(p),
        BadId::PastEnd(k) => Some(end + k),
        BadId::Huge => Some(u64::MAX),
        BadId::Stale(i) => {
            let below: Vec<u64> = freed.range(..pages).copied().collect();
            (!below.is_empty()).then(|| below[i % below.len()])
        }
    }
}

/// Checks that `err` is the error `bad` deserves from `get` or `get_mut`.
fn check_get_error(bad: BadId, page: u64, err: &MappedPageError) {
    let ok = match bad {
        BadId::Reserved(_) => matches!(err, MappedPageError::ReservedPage),
        BadId::PastEnd(_) | BadId::Huge => matches!(err, MappedPageError::OutOfBounds),
        BadId::Stale(_) => matches!(err, MappedPageError::NotAllocated { .. }),
    };
    assert!(ok, "get of {bad:?} (page {page}) gave {err:?}");
}

/// What a `free_bulk` call is given and must answer.
enum BulkPlan {
    Skip,
    Free(Vec<u64>),
    /// The ids, and the one named twice: `DoubleFree`.
    Twice(Vec<u64>, u64),
    /// The ids, and the bad one among them.
    Bad(Vec<u64>, BadId, u64),
}

fn plan_free_bulk(
    regular: &BTreeMap<u64, Vec<u8>>,
    picks: &[usize],
    flaw: BulkFlaw,
    raw_bad: impl Fn(BadId) -> Option<u64>,
) -> BulkPlan {
    let mut chosen: Vec<u64> = picks.iter().filter_map(|&i| pick_key(regular, i)).collect();
    chosen.sort_unstable();
    chosen.dedup();
    match flaw {
        BulkFlaw::None if chosen.is_empty() => BulkPlan::Skip,
        BulkFlaw::None => BulkPlan::Free(chosen),
        BulkFlaw::Duplicate(i) => {
            let Some(&dup) = chosen.get(i % chosen.len().max(1)) else {
                return BulkPlan::Skip;
            };
            let mut ids = chosen;
            ids.insert(i % (ids.len() + 1), dup);
            BulkPlan::Twice(ids, dup)
        }
        BulkFlaw::Bad(bad) => {
            let Some(page) = raw_bad(bad) else {
                return BulkPlan::Skip;
            };
            let half = chosen.len() / 2;
            let mut ids = chosen;
            ids.push(page);
            ids.rotate_right(half);
            BulkPlan::Bad(ids, bad, page)
        }
    }
}

fn ids<const N: usize>(pages: &[u64]) -> Vec<PageId<N>> {
    pages.iter().map(|&p| PageId(p)).collect()
}

fn is_free_or_internal(err: &MappedPageError) -> bool {
    matches!(
        err,
        MappedPageError::DoubleFree | MappedPageError::NotAllocated { .. }
    )
}

impl<const N: usize> Harness<'_, N> {
    fn pager(&mut self) -> &mut Pager<N> {
        self.pager.as_mut().unwrap()
    }

    fn page(&self) -> &Pager<N> {
        self.pager.as_ref().unwrap()
    }

    /// Resolves a bad id to a raw page number; `None` if there is no stale id.
    fn raw_bad(&self, bad: BadId) -> Option<u64> {
        let pages = self.page().page_count();
        resolve_bad(bad, pages, &self.model.freed, pages)
    }

    /// Checks that `err` is the error `bad` deserves from `free`.
    fn check_free_error(&self, bad: BadId, page: u64, err: &MappedPageError) {
        let ok = match bad {
            BadId::Reserved(_) => {
                matches!(err, MappedPageError::ReservedPage)
            }
            BadId::PastEnd(_) | BadId::Huge => {
                matches!(err, MappedPageError::OutOfBounds)
            }
            BadId::Stale(_) => is_free_or_internal(err),
        };
        assert!(ok, "free of bad id {bad:?} (page {page}) gave {err:?}");
    }

    fn snapshot(&self, page: u64) -> Vec<u8> {
        PageId::<N>(page)
            .get(self.page())
            .unwrap()
            .as_bytes()
            .to_vec()
    }

    fn note_alloc(&mut self, pages: &[PageId<N>]) {
        for id in pages {
            assert!(
                !self.model.regular.contains_key(&id.0),
                "{id:?} handed out twice"
            );
            let bytes = self.snapshot(id.0);
            self.model.freed.remove(&id.0);
            self.model.regular.insert(id.0, bytes);
        }
        self.model.generation += 1;
    }

    fn note_free(&mut self, pages: &[u64]) {
        for page in pages {
            self.model.regular.remove(page).unwrap();
            self.model.freed.insert(*page);
        }
        self.syncs.freed_now.extend(pages);
        self.model.generation += 1;
    }

    /// Pages handed out by a call that made no sync must not be ones a
    /// commit not yet durable freed.
    fn check_not_awaiting(&self, pages: &[u64], syncs_before: u64) {
        if self.page().sync_count() == syncs_before {
            for page in pages {
                assert!(
                    !self.syncs.awaiting.contains(page),
                    "page {page}, freed by a commit not yet durable, was handed out again"
                );
            }
        }
    }

    /// Runs one step and keeps the model of syncs up to date.
    fn step(&mut self, op: &Op) {
        let syncs = self.page().sync_count();
        let (generation, pages) = (self.model.generation, self.page().page_count());
        let writes_in_place = matches!(op, Op::Write(..)) && !self.model.regular.is_empty();
        self.apply(op);
        if self.auto_shrink.is_some() && !matches!(op, Op::Shrink(_) | Op::Reopen(_)) {
            // A commit or a sync may be followed by a cut, which commits.
            let now = self.page().generation();
            let may_cut = generation != self.model.generation || matches!(op, Op::Sync);
            if may_cut && now > self.model.generation {
                self.model.generation = now;
            }
            if self.page().page_count() < pages {
                assert!(may_cut, "{op:?} cut the file");
                self.auto_cuts += 1;
            }
        }
        let len = std::fs::metadata(self.path).unwrap().len();
        assert!(
            len >= self.page().page_count() * N as u64,
            "file of {len} bytes, {} pages counted on, after {op:?}",
            self.page().page_count()
        );
        let freed = std::mem::take(&mut self.syncs.freed_now);
        if let Op::Reopen(_) | Op::Shrink(true) = op {
            // Dropping the pager synced everything; the new one counts anew.
            self.syncs.awaiting.clear();
            self.syncs.dirty = false;
            self.syncs.unsettled = true;
            return;
        }
        if self.page().sync_count() > syncs {
            self.syncs.awaiting.clear();
            self.syncs.dirty = false;
            self.syncs.unsettled = false;
        }
        // A step's syncs all come before its commit publishes its frees.
        if self.durability == Durability::Deferred {
            self.syncs.awaiting.extend(freed);
        }
        if writes_in_place {
            self.syncs.dirty = true;
        }
    }

    fn note_alloc_protected(&mut self, ids: &[ProtectedPageId<N>]) {
        for id in ids {
            assert!(
                !self.model.protected.contains_key(&id.0),
                "{id:?} handed out twice"
            );
            self.model.freed_protected.remove(&id.0);
            self.model.protected.insert(id.0, vec![0; N]);
        }
        self.model.generation += 1;
    }

    fn note_free_protected(&mut self, slots: &[u64]) {
        for slot in slots {
            self.model.protected.remove(slot).unwrap();
            self.model.freed_protected.insert(*slot);
        }
        self.model.generation += 1;
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Alloc => {
                let syncs = self.page().sync_count();
                let id = self.pager().alloc().unwrap();
                self.check_not_awaiting(&[id.0], syncs);
                self.note_alloc(&[id]);
            }
            Op::Free(i) => {
                if let Some(page) = pick_key(&self.model.regular, *i) {
                    self.pager().free(PageId(page)).unwrap();
                    self.note_free(&[page]);
                }
            }
            Op::FreeTwice(i) => {
                if let Some(page) = pick_key(&self.model.regular, *i) {
                    self.pager().free(PageId(page)).unwrap();
                    self.note_free(&[page]);
                    let err = self.pager().free(PageId(page)).unwrap_err();
                    assert!(
                        matches!(err, MappedPageError::DoubleFree),
                        "second free of page {page} gave {err:?}, expected DoubleFree"
                    );
                }
            }
            Op::FreeBad(bad) => {
                if let Some(page) = self.raw_bad(*bad) {
                    let err = self.pager().free(PageId(page)).unwrap_err();
                    self.check_free_error(*bad, page, &err);
                    let err = self.pager().free_bulk(vec![PageId(page)]).unwrap_err();
                    self.check_free_error(*bad, page, &err);
                }
            }
            Op::GetBad(bad) => {
                if let Some(page) = self.raw_bad(*bad) {
                    let id = PageId::<N>(page);
                    for err in [
                        id.get(self.page()).unwrap_err(),
                        id.get_mut(self.pager()).unwrap_err(),
                    ] {
                        check_get_error(*bad, page, &err);
                    }
                }
            }
            Op::AllocBulk(n) => {
                let syncs = self.page().sync_count();
                let ids = self.pager().alloc_bulk(*n).unwrap();
                assert_eq!(ids.len(), *n);
                let pages: Vec<u64> = ids.iter().map(|id| id.0).collect();
                self.check_not_awaiting(&pages, syncs);
                assert!(ids.windows(2).all(|w| w[0] < w[1]), "not ascending");
                self.note_alloc(&ids);
            }
            Op::FreeBulk(picks, flaw) => self.free_bulk(picks, *flaw),
            Op::FreeRun(start, n) => {
                let live: Vec<u64> = self.model.regular.keys().copied().collect();
                if !live.is_empty() {
                    let from = *start as usize * live.len() / 65536;
                    let run: Vec<u64> = live[from..].iter().take(*n).copied().collect();
                    self.pager()
                        .free_bulk(run.iter().map(|&p| PageId(p)).collect())
                        .unwrap();
                    self.note_free(&run);
                }
            }
            Op::BadCounts => {
                let p = self.pager();
                let invalid =
                    |e: MappedPageError| matches!(e, MappedPageError::InvalidCount { .. });
                let (syncs, generation) = (p.sync_count(), p.generation());
                assert!(p.alloc_bulk(0).unwrap().is_empty());
                assert!(invalid(p.alloc_bulk(usize::MAX).unwrap_err()));
                p.free_bulk(Vec::new()).unwrap();
                assert!(p.alloc_protected_bulk(0).unwrap().is_empty());
                assert!(invalid(p.alloc_protected_bulk(usize::MAX).unwrap_err()));
                p.free_protected_bulk(Vec::new()).unwrap();
                assert_eq!((p.sync_count(), p.generation()), (syncs, generation));
            }
            Op::Write(i, patch) => {
                if let Some(page) = pick_key(&self.model.regular, *i) {
                    let range = span(*patch, N);
                    let mut data = vec![0u8; range.len()];
                    fill(&mut data, patch.seed);
                    let generation = self.page().generation();
                    PageId::<N>(page)
                        .get_mut(self.pager())
                        .unwrap()
                        .as_bytes_mut()[range.clone()]
                    .copy_from_slice(&data);
                    self.model.regular.get_mut(&page).unwrap()[range].copy_from_slice(&data);
                    let now = self.page().generation();
                    if now != generation {
                        // A root that checks this page may still be needed:
                        // the pager first commits one that checks nothing.
                        if self.auto_shrink.is_some() {
                            assert!(now > generation, "write in place of page {page}");
                        } else {
                            assert_eq!(now, generation + 1, "write in place of page {page}");
                        }
                        assert!(
                            self.syncs.txn_written.contains(&page),
                            "write in place of page {page}, never written by a \
                             transaction, committed"
                        );
                        self.model.generation = now;
                    }
                }
            }
            Op::AllocProtected => {
                let id = self.pager().alloc_protected().unwrap();
                self.note_alloc_protected(&[id]);
            }
            Op::AllocProtectedBulk(n) => {
                let ids = self.pager().alloc_protected_bulk(*n).unwrap();
                assert_eq!(ids.len(), *n);
                self.note_alloc_protected(&ids);
            }
            Op::FreeProtected(i) => {
                if let Some(slot) = pick_key(&self.model.protected, *i) {
                    self.pager().free_protected(ProtectedPageId(slot)).unwrap();
                    self.note_free_protected(&[slot]);
                    let err = self
                        .pager()
                        .free_protected(ProtectedPageId(slot))
                        .unwrap_err();
                    assert!(
                        matches!(err, MappedPageError::DoubleFree),
                        "second free of protected {slot} gave {err:?}"
                    );
                }
            }
            Op::FreeProtectedBulk(picks, flaw) => self.free_protected_bulk(picks, *flaw),
            Op::ProtectedBad(stale) => {
                let slot = match stale {
                    Some(i) => pick(&self.model.freed_protected, *i),
                    None => Some(
                        self.model
                            .protected
                            .keys()
                            .chain(&self.model.freed_protected)
                            .max()
                            .map_or(0, |m| m + 1)
                            + 1000,
                    ),
                };
                if let Some(slot) = slot {
                    let id = ProtectedPageId::<N>(slot);
                    let oob = |e: &MappedPageError| matches!(e, MappedPageError::OutOfBounds);
                    let err = id.get(self.page()).unwrap_err();
                    assert!(oob(&err), "get of protected {slot}: {err:?}");
                    let err = id.get_mut(self.pager()).unwrap_err();
                    assert!(oob(&err), "get_mut of protected {slot}: {err:?}");
                    // Freeing a freed slot is a double free; one past the
                    // directory is out of bounds.
                    let err = self.pager().free_protected(id).unwrap_err();
                    let expected = match stale {
                        Some(_) => matches!(err, MappedPageError::DoubleFree),
                        None => oob(&err),
                    };
                    assert!(expected, "free of protected {slot}: {err:?}");
                }
            }
            Op::ProtectedWrite(i, patch, commit) => {
                if let Some(slot) = pick_key(&self.model.protected, *i) {
                    let committed = self.model.protected[&slot].clone();
                    let range = span(*patch, N);
                    let mut data = vec![0u8; range.len()];
                    fill(&mut data, patch.seed);
                    let mut writer = ProtectedPageId::<N>(slot).get_mut(self.pager()).unwrap();
                    assert!(
                        writer.page().as_bytes() == committed.as_slice(),
                        "writer of protected {slot} does not start from the committed bytes"
                    );
                    writer.page_mut().as_bytes_mut()[range.clone()].copy_from_slice(&data);
                    if *commit {
                        writer.commit().unwrap();
                        let bytes = self.model.protected.get_mut(&slot).unwrap();
                        bytes[range].copy_from_slice(&data);
                        self.model.generation += 1;
                    }
                    // Otherwise the writer goes out of scope uncommitted: a
                    // dropped write must change nothing (checked next step).
                }
            }
            Op::Sync => {
                let before = self.page().generation();
                self.pager().sync().unwrap();
                let now = self.page().generation();
                if now != before && self.auto_shrink.is_none() {
                    // A Deferred sync leaves a root that checks no page.
                    assert_eq!(self.durability, Durability::Deferred, "sync committed");
                    assert_eq!(now, before + 1, "sync committed more than once");
                    self.model.generation = now;
                }
            }
            Op::KillCopy => kill_copy::<N>(self.path, self.durability, &self.model, &|| {
                "between steps".to_string()
            }),
            Op::Txn(ops, end) => self.transaction(ops, *end),
            Op::Shrink(reopen) => {
                self.shrink();
                if *reopen {
                    self.apply(&Op::Reopen(false));
                }
            }
            Op::Reopen(switch) => {
                let generation = self.page().generation();
                let closed_deferred = self.durability == Durability::Deferred;
                drop(self.pager.take());
                if *switch {
                    self.durability = match self.durability {
                        Durability::Immediate => Durability::Deferred,
                        _ => Durability::Immediate,
                    };
                }
                let pager = options::<N>(self.durability, self.auto_shrink)
                    .open(self.path)
                    .unwrap();
                let report = pager.recovery();
                // A Deferred pager's clean close may commit once more: a root
                // that checks no page.
                let close_commits = report.generation - generation.min(report.generation);
                assert!(
                    report.generation == generation || (closed_deferred && close_commits == 1),
                    "{report:?} after generation {generation}"
                );
                self.model.generation = report.generation;
                assert!(!report.fell_back, "clean reopen fell back: {report:?}");
                assert_eq!(report.other_copy_problem, None, "{report:?}");
                assert_eq!(pager.durability(), self.durability);
                self.pager = Some(pager);
            }
        }
    }

    /// `shrink()` changes nothing the API shows but the page count (checked
    /// by the next step's comparison with the model): the file is cut to the
    /// pages it counts on, none of them past the new end allocated.
    fn shrink(&mut self) {
        let (pages, generation) = (self.page().page_count(), self.page().generation());
        let given = self.pager().shrink().unwrap();
        let pager = self.page();
        let now = pager.page_count();
        assert_eq!(now, pages - given, "page count after a shrink of {given}");
        let len = std::fs::metadata(self.path).unwrap().len();
        assert_eq!(
            len,
            now * N as u64,
            "file length after a shrink to {now} pages"
        );
        if let Some(&last) = self.model.regular.keys().next_back() {
            assert!(last < now, "page {last} allocated past the new end {now}");
        }
        assert!(matches!(
            PageId::<N>(now).get(pager).unwrap_err(),
            MappedPageError::OutOfBounds
        ));
        let after = pager.generation();
        assert!(after >= generation, "generation went back in a shrink");
        if given > 0 {
            assert!(after > generation, "a shrink cut the file without a commit");
        }
        self.model.generation = after;
        self.given_back += given;
    }

    fn free_bulk(&mut self, picks: &[usize], flaw: BulkFlaw) {
        match plan_free_bulk(&self.model.regular, picks, flaw, |b| self.raw_bad(b)) {
            BulkPlan::Skip => {}
            BulkPlan::Free(chosen) => {
                self.pager().free_bulk(ids(&chosen)).unwrap();
                self.note_free(&chosen);
            }
            BulkPlan::Twice(pages, dup) => {
                let err = self.pager().free_bulk(ids(&pages)).unwrap_err();
                assert!(
                    matches!(err, MappedPageError::DoubleFree),
                    "free_bulk naming {dup} twice gave {err:?}"
                );
            }
            BulkPlan::Bad(pages, bad, page) => {
                let err = self.pager().free_bulk(ids(&pages)).unwrap_err();
                self.check_free_error(bad, page, &err);
            }
        }
    }

    fn free_protected_bulk(&mut self, picks: &[usize], flaw: BulkFlaw) {
        let mut chosen: Vec<u64> = picks
            .iter()
            .filter_map(|&i| pick_key(&self.model.protected, i))
            .collect();
        chosen.sort_unstable();
        chosen.dedup();
        let ids = |slots: &[u64]| -> Vec<ProtectedPageId<N>> {
            slots.iter().map(|&s| ProtectedPageId(s)).collect()
        };
        match flaw {
            BulkFlaw::None => {
                if chosen.is_empty() {
                    return;
                }
                self.pager().free_protected_bulk(ids(&chosen)).unwrap();
                self.note_free_protected(&chosen);
            }
            BulkFlaw::Duplicate(i) => {
                let Some(&dup) = chosen.get(i % chosen.len().max(1)) else {
                    return;
                };
                let mut list = ids(&chosen);
                list.insert(i % (list.len() + 1), ProtectedPageId(dup));
                let err = self.pager().free_protected_bulk(list).unwrap_err();
                assert!(
                    matches!(err, MappedPageError::DoubleFree),
                    "free_protected_bulk naming {dup} twice gave {err:?}"
                );
            }
            BulkFlaw::Bad(_) => {
                // A slot that is not in use: freed earlier, or far past the end.
                let bad = pick(&self.model.freed_protected, picks.len()).unwrap_or(1 << 40);
                let mut list = ids(&chosen);
                list.push(ProtectedPageId(bad));
                list.rotate_right(chosen.len() / 2);
                let err = self.pager().free_protected_bulk(list).unwrap_err();
                let expected = if self.model.freed_protected.contains(&bad) {
                    matches!(err, MappedPageError::DoubleFree)
                } else {
                    matches!(err, MappedPageError::OutOfBounds)
                };
                assert!(
                    expected,
                    "free_protected_bulk with unused slot {bad} gave {err:?}"
                );
            }
        }
    }

    /// Compares everything the public API shows with the model.
    fn check(&self, step: usize, op: &Op) {
        check_pager(self.page(), &self.model, &|| {
            format!("after step {step}: {op:?}")
        });
    }

    /// Runs `ops` in one transaction, checking what it shows after each,
    /// then ends it and checks what the pager shows and how many syncs the
    /// end made.
    fn transaction(&mut self, ops: &[TxnOp], end: End) {
        let Harness {
            path,
            pager,
            durability,
            model,
            ..
        } = self;
        let pager = pager.as_mut().unwrap();
        let (syncs, pages, free) = (
            pager.sync_count(),
            pager.page_count(),
            pager.free_page_count(),
        );
        let mut t = TxnModel::new(model, pages, free);
        let mut txn = pager.transaction().unwrap();
        for (i, op) in ops.iter().enumerate() {
            let ctx = || format!("after call {i} of a transaction: {op:?}");
            match op {
                TxnOp::KillCopy => kill_copy::<N>(path, *durability, model, &ctx),
                _ => t.apply(&mut txn, op),
            }
            t.check(&txn, &ctx);
        }
        let published = t.changed && matches!(end, End::Commit);
        match end {
            End::Commit => txn.commit().unwrap(),
            End::Drop => drop(txn),
            End::Rollback => txn.rollback(),
        }
        let pager = self.pager.as_ref().unwrap();
        let made = pager.sync_count() - syncs;
        let settle = u64::from(self.syncs.unsettled);
        let ctx = || format!("{end:?} of a transaction of {} calls", ops.len());
        if published {
            // Open's root settles at the first transaction; pages written in
            // place are synced before the root; Immediate syncs the root.
            let dirty = u64::from(self.syncs.dirty && !self.syncs.unsettled);
            let own = u64::from(self.durability == Durability::Immediate);
            let least = settle + dirty + own;
            // A growth syncs the new length; a Deferred pager short of free
            // pages syncs to reuse those that wait (freed copies, check and
            // tree pages too). Neither happens with plenty of pages free.
            let plenty = free >= t.taken + 256;
            // A cut after the commit syncs too.
            let no_cut = self.auto_shrink.is_none();
            let no_relocation_sync = !(t.relocated && self.durability == Durability::Deferred);
            if pager.page_count() == pages && plenty && no_cut && no_relocation_sync {
                assert_eq!(made, least, "syncs of a commit, {}", ctx());
            } else {
                assert!(made >= least, "syncs of a commit: {made}, {}", ctx());
            }
            if made == 0 {
                for page in &t.allocated {
                    assert!(
                        !self.syncs.awaiting.contains(page),
                        "page {page}, freed by a commit not yet durable, was reused, {}",
                        ctx()
                    );
                }
            }
            self.syncs.txn_written.extend(&t.written);
            self.syncs.freed_now.extend(&t.freed);
            self.model = t.next;
            self.model.generation += 1;
        } else {
            assert_eq!(pager.page_count(), pages, "growth kept, {}", ctx());
            if !t.may_grow {
                assert_eq!(made, settle, "syncs, {}", ctx());
            }
            if made == settle {
                assert_eq!(pager.free_page_count(), free, "{}", ctx());
            }
        }
    }
}

/// Compares everything the public API of `pager` shows with `model`.
fn check_pager<const N: usize>(pager: &Pager<N>, model: &Model, ctx: &dyn Fn() -> String) {
    let regular: Vec<u64> = pager.iter_allocated_pages().map(|id| id.0).collect();
    let expected: Vec<u64> = model.regular.keys().copied().collect();
    assert_eq!(regular, expected, "regular pages differ {}", ctx());
    let protected: Vec<u64> = pager
        .iter_allocated_protected_pages()
        .map(|id| id.0)
        .collect();
    let expected: Vec<u64> = model.protected.keys().copied().collect();
    assert_eq!(protected, expected, "protected pages differ {}", ctx());
    assert_eq!(
        pager.allocated_page_count(),
        model.regular.len() as u64,
        "{}",
        ctx()
    );
    assert_eq!(pager.generation(), model.generation, "{}", ctx());
    let used = 3 + model.regular.len() as u64 + 2 * model.protected.len() as u64;
    assert!(
        pager.page_count() >= used + pager.free_page_count(),
        "page accounting: {} pages, {} used, {} free {}",
        pager.page_count(),
        used,
        pager.free_page_count(),
        ctx()
    );
    for (&page, bytes) in &model.regular {
        let got = PageId::<N>(page).get(pager).unwrap();
        assert_eq!(got.len(), N);
        assert!(
            got.as_bytes() == bytes.as_slice(),
            "bytes of regular page {page} differ {}",
            ctx()
        );
    }
    for (&slot, bytes) in &model.protected {
        let got = ProtectedPageId::<N>(slot).get(pager).unwrap();
        assert!(
            got.as_bytes() == bytes.as_slice(),
            "bytes of protected page {slot} differ {}",
            ctx()
        );
    }
    for &page in model.freed.iter().take(16) {
        let err = PageId::<N>(page).get(pager).unwrap_err();
        // Cut off by a shrink, if it was at the end.
        let ok = if page < pager.page_count() {
            matches!(err, MappedPageError::NotAllocated { .. })
        } else {
            matches!(err, MappedPageError::OutOfBounds)
        };
        assert!(ok, "get of freed page {page} gave {err:?} {}", ctx());
    }
    for &slot in model.freed_protected.iter().take(16) {
        let err = ProtectedPageId::<N>(slot).get(pager).unwrap_err();
        assert!(
            matches!(err, MappedPageError::OutOfBounds),
            "get of freed protected page {slot} gave {err:?} {}",
            ctx()
        );
    }
}

/// Opens a copy of the file taken now, as a process killed now leaves it,
/// and checks that it shows `model`, the newest commit.
fn kill_copy<const N: usize>(
    path: &Path,
    durability: Durability,
    model: &Model,
    ctx: &dyn Fn() -> String,
) {
    let copy = path.with_extension("killed");
    std::fs::copy(path, &copy).unwrap();
    let pager = Pager::<N>::options()
        .durability(durability)
        .open(&copy)
        .unwrap();
    let report = pager.recovery();
    assert_eq!(report.generation, model.generation, "{report:?} {}", ctx());
    assert!(
        !report.fell_back,
        "a kill lost a commit: {report:?} {}",
        ctx()
    );
    check_pager(&pager, model, &|| {
        format!("in a copy of the file {}", ctx())
    });
    drop(pager);
    std::fs::remove_file(&copy).unwrap();
}

/// A transaction as the model says it must look.
struct TxnModel<const N: usize> {
    /// Everything as the transaction shows it; the new state if it commits.
    next: Model,
    /// Regular pages it allocated and has not freed: the writable ones.
    fresh: BTreeSet<u64>,
    /// Regular pages it freed (fresh ones too).
    freed: BTreeSet<u64>,
    /// Fresh pages it wrote.
    written: BTreeSet<u64>,
    /// Every regular page it was handed.
    allocated: Vec<u64>,
    /// At most how many free pages its calls took.
    taken: u64,
    /// Whether a commit publishes anything.
    changed: bool,
    /// Whether it may have grown the file, whose length it cannot see.
    may_grow: bool,
    /// Whether it relocated a page, which syncs first when no page below is
    /// free but some wait for a sync (Deferred mode).
    relocated: bool,
    /// The file's length in pages when it began.
    page_count: u64,
    /// Free pages when it began.
    free: u64,
}

impl<const N: usize> TxnModel<N> {
    fn new(model: &Model, page_count: u64, free: u64) -> Self {
        TxnModel {
            next: model.clone(),
            fresh: BTreeSet::new(),
            freed: BTreeSet::new(),
            written: BTreeSet::new(),
            allocated: Vec::new(),
            taken: 0,
            changed: false,
            may_grow: false,
            relocated: false,
            page_count,
            free,
        }
    }

    fn raw_bad(&self, bad: BadId) -> Option<u64> {
        // Once the file may have grown, an id far past any growth here.
        let end = if self.may_grow {
            self.page_count + (1 << 24)
        } else {
            self.page_count
        };
        resolve_bad(bad, end, &self.next.freed, self.page_count)
    }

    /// Checks that `err` is what a free of `bad` deserves: a page freed in
    /// this transaction is a double free.
    fn check_free_error(&self, bad: BadId, page: u64, err: &MappedPageError) {
        let ok = match bad {
            BadId::Reserved(_) => matches!(err, MappedPageError::ReservedPage),
            BadId::PastEnd(_) | BadId::Huge => matches!(err, MappedPageError::OutOfBounds),
            BadId::Stale(_) if self.freed.contains(&page) => {
                matches!(err, MappedPageError::DoubleFree)
            }
            BadId::Stale(_) => is_free_or_internal(err),
        };
        assert!(
            ok,
            "free in a transaction of {bad:?} (page {page}) gave {err:?}"
        );
    }

    fn note_alloc(&mut self, txn: &Transaction<'_, N>, pages: &[PageId<N>]) {
        self.may_grow = true;
        self.taken += pages.len() as u64;
        for id in pages {
            assert!(
                !self.next.regular.contains_key(&id.0),
                "{id:?} handed out twice"
            );
            assert!(
                !self.freed.contains(&id.0),
                "{id:?}, freed in this transaction, was handed out again in it"
            );
            let bytes = txn.get(*id).unwrap().as_bytes().to_vec();
            self.next.freed.remove(&id.0);
            self.next.regular.insert(id.0, bytes);
            self.fresh.insert(id.0);
            self.allocated.push(id.0);
            self.changed = true;
        }
    }

    fn note_free(&mut self, pages: &[u64]) {
        for &page in pages {
            self.next.regular.remove(&page).unwrap();
            self.next.freed.insert(page);
            self.freed.insert(page);
            self.fresh.remove(&page);
            self.changed = true;
        }
    }

    fn write(&mut self, txn: &mut Transaction<'_, N>, page: u64, patch: Patch) {
        let range = span(patch, N);
        let mut data = vec![0u8; range.len()];
        fill(&mut data, patch.seed);
        txn.get_mut(PageId(page)).unwrap().as_bytes_mut()[range.clone()].copy_from_slice(&data);
        self.next.regular.get_mut(&page).unwrap()[range].copy_from_slice(&data);
        self.written.insert(page);
    }

    fn apply(&mut self, txn: &mut Transaction<'_, N>, op: &TxnOp) {
        match op {
            TxnOp::Alloc => {
                let id = txn.alloc().unwrap();
                self.note_alloc(txn, &[id]);
            }
            TxnOp::AllocBulk(n) | TxnOp::AllocWrite(n, _) => {
                let ids = txn.alloc_bulk(*n).unwrap();
                assert_eq!(ids.len(), *n);
                assert!(ids.windows(2).all(|w| w[0] < w[1]), "not ascending");
                self.note_alloc(txn, &ids);
                if let TxnOp::AllocWrite(_, patch) = op {
                    for (k, id) in ids.iter().enumerate() {
                        let seed = patch.seed.wrapping_add(k as u64);
                        self.write(txn, id.0, Patch { seed, ..*patch });
                    }
                }
            }
            TxnOp::Free(i) | TxnOp::FreeTwice(i) => {
                if let Some(page) = pick_key(&self.next.regular, *i) {
                    txn.free(PageId(page)).unwrap();
                    self.note_free(&[page]);
                    if let TxnOp::FreeTwice(_) = op {
                        for err in [
                            txn.free(PageId(page)).unwrap_err(),
                            txn.free_bulk([PageId(page)]).unwrap_err(),
                        ] {
                            assert!(
                                matches!(err, MappedPageError::DoubleFree),
                                "page {page} freed twice in a transaction gave {err:?}"
                            );
                        }
                    }
                }
            }
            TxnOp::FreeBulk(picks, flaw) => {
                match plan_free_bulk(&self.next.regular, picks, *flaw, |b| self.raw_bad(b)) {
                    BulkPlan::Skip => {}
                    BulkPlan::Free(chosen) => {
                        txn.free_bulk(ids::<N>(&chosen)).unwrap();
                        self.note_free(&chosen);
                    }
                    BulkPlan::Twice(pages, dup) => {
                        let err = txn.free_bulk(ids::<N>(&pages)).unwrap_err();
                        assert!(
                            matches!(err, MappedPageError::DoubleFree),
                            "free_bulk in a transaction naming {dup} twice gave {err:?}"
                        );
                    }
                    BulkPlan::Bad(pages, bad, page) => {
                        let err = txn.free_bulk(ids::<N>(&pages)).unwrap_err();
                        self.check_free_error(bad, page, &err);
                    }
                }
            }
            TxnOp::FreeBad(bad) => {
                if let Some(page) = self.raw_bad(*bad) {
                    let err = txn.free(PageId(page)).unwrap_err();
                    self.check_free_error(*bad, page, &err);
                    let err = txn.free_bulk([PageId(page)]).unwrap_err();
                    self.check_free_error(*bad, page, &err);
                }
            }
            TxnOp::GetBad(bad) => {
                if let Some(page) = self.raw_bad(*bad) {
                    let id = PageId::<N>(page);
                    let err = txn.get(id).map(|_| ()).unwrap_err();
                    check_get_error(*bad, page, &err);
                    let err = txn.get_mut(id).map(|_| ()).unwrap_err();
                    check_get_error(*bad, page, &err);
                    let set = txn.pages();
                    check_get_error(*bad, page, &set.get(id).map(|_| ()).unwrap_err());
                    check_get_error(*bad, page, &set.get_mut(id).map(|_| ()).unwrap_err());
                }
            }
            TxnOp::Write(i, patch) => {
                if let Some(page) = pick(&self.fresh, *i) {
                    self.write(txn, page, *patch);
                }
            }
            TxnOp::WriteCommitted(i) => {
                let committed: Vec<u64> = self
                    .next
                    .regular
                    .keys()
                    .filter(|p| !self.fresh.contains(p))
                    .copied()
                    .collect();
                if !committed.is_empty() {
                    let page = committed[i % committed.len()];
                    let id = PageId::<N>(page);
                    let refused = |err: MappedPageError| matches!(err, MappedPageError::CommittedPage { page: p } if p == page);
                    assert!(refused(txn.get_mut(id).map(|_| ()).unwrap_err()));
                    assert!(refused(txn.pages().get_mut(id).map(|_| ()).unwrap_err()));
                }
            }
            TxnOp::WriteFreed(i) => {
                if let Some(page) = pick(&self.freed, *i) {
                    let id = PageId::<N>(page);
                    let refused = |err: MappedPageError| matches!(err, MappedPageError::NotAllocated { page: p } if p == page);
                    assert!(refused(txn.get_mut(id).map(|_| ()).unwrap_err()));
                    assert!(refused(txn.pages().get_mut(id).map(|_| ()).unwrap_err()));
                }
            }
            TxnOp::BadCounts => {
                assert!(txn.alloc_bulk(0).unwrap().is_empty());
                let err = txn.alloc_bulk(usize::MAX).unwrap_err();
                assert!(
                    matches!(err, MappedPageError::InvalidCount { .. }),
                    "alloc_bulk(usize::MAX) in a transaction gave {err:?}"
                );
                txn.free_bulk([]).unwrap();
            }
            TxnOp::AllocProtected => {
                self.may_grow = true;
                self.taken += 2;
                let id = txn.alloc_protected().unwrap();
                assert!(
                    !self.next.protected.contains_key(&id.0),
                    "{id:?} handed out twice"
                );
                self.next.freed_protected.remove(&id.0);
                self.next.protected.insert(id.0, vec![0; N]);
                self.changed = true;
            }
            TxnOp::FreeProtected(i) => {
                if let Some(slot) = pick_key(&self.next.protected, *i) {
                    txn.free_protected(ProtectedPageId(slot)).unwrap();
                    self.next.protected.remove(&slot);
                    self.next.freed_protected.insert(slot);
                    self.changed = true;
                    let err = txn.free_protected(ProtectedPageId(slot)).unwrap_err();
                    assert!(
                        matches!(err, MappedPageError::DoubleFree),
                        "second free in a transaction of protected {slot} gave {err:?}"
                    );
                }
            }
            TxnOp::WriteProtected(i, patch) => {
                if let Some(slot) = pick_key(&self.next.protected, *i) {
                    // Staging may take a fresh page.
                    self.may_grow = true;
                    self.taken += 1;
                    let range = span(*patch, N);
                    let mut data = vec![0u8; range.len()];
                    fill(&mut data, patch.seed);
                    let bytes = self.next.protected.get_mut(&slot).unwrap();
                    let page = txn.write_protected(ProtectedPageId(slot)).unwrap();
                    assert!(
                        page.as_bytes() == bytes.as_slice(),
                        "write_protected of {slot} does not start from what the transaction shows"
                    );
                    page.as_bytes_mut()[range.clone()].copy_from_slice(&data);
                    bytes[range].copy_from_slice(&data);
                    self.changed = true;
                }
            }
            TxnOp::ProtectedBad(stale) => {
                let slot = match stale {
                    Some(i) => pick(&self.next.freed_protected, *i),
                    None => Some(
                        self.next
                            .protected
                            .keys()
                            .chain(&self.next.freed_protected)
                            .max()
                            .map_or(0, |m| m + 1)
                            + 1000,
                    ),
                };
                if let Some(slot) = slot {
                    let id = ProtectedPageId::<N>(slot);
                    let oob = |e: MappedPageError| matches!(e, MappedPageError::OutOfBounds);
                    assert!(oob(txn.write_protected(id).map(|_| ()).unwrap_err()));
                    assert!(oob(txn.get_protected(id).map(|_| ()).unwrap_err()));
                    let err = txn.free_protected(id).unwrap_err();
                    match stale {
                        Some(_) => assert!(matches!(err, MappedPageError::DoubleFree)),
                        None => assert!(oob(err)),
                    }
                }
            }
            TxnOp::Pages(writes, reads, conflicts) => self.pages(txn, writes, reads, *conflicts),
            TxnOp::KillCopy => unreachable!("run by the harness"),
            TxnOp::Relocate(n) => self.relocate(txn, *n),
        }
    }

    /// Moves the `n` highest allocated pages down, top first, with their
    /// bytes; `None` only if no page below is free, which an allocation
    /// then shows. (The new ids need not ascend: a sync that an allocation
    /// makes when free pages run short frees waiting pages below.)
    fn relocate(&mut self, txn: &mut Transaction<'_, N>, n: usize) {
        let reserved = txn.relocate(PageId(0)).unwrap_err();
        assert!(
            matches!(reserved, MappedPageError::ReservedPage),
            "{reserved:?}"
        );
        if let Some(&page) = self.freed.first() {
            let err = txn.relocate(PageId(page)).unwrap_err();
            assert!(
                matches!(err, MappedPageError::NotAllocated { .. }),
                "relocate of page {page}, freed in the transaction: {err:?}"
            );
        }
        let top: Vec<u64> = self.next.regular.keys().rev().take(n).copied().collect();
        self.relocated |= !top.is_empty();
        for page in top {
            let bytes = self.next.regular[&page].clone();
            match txn.relocate(PageId(page)).unwrap() {
                Some(to) => {
                    assert!(to.0 < page, "page {page} relocated up to {}", to.0);
                    self.note_free(&[page]);
                    self.note_alloc(txn, &[to]);
                    assert!(
                        self.next.regular[&to.0] == bytes,
                        "page {page} relocated to {} with other bytes",
                        to.0
                    );
                    self.written.insert(to.0);
                }
                None => {
                    // Nothing changed, and the lowest free page is above.
                    // Pages waiting for a sync were made free first
                    // (`regression_relocate_with_pages_waiting_for_a_sync`);
                    // once no page is free, an alloc may still grow or sync
                    // and get a lower page that waited for a durable root.
                    let none_free = self.taken >= self.free;
                    let probe = txn.alloc().unwrap();
                    assert!(
                        probe.0 > page || none_free,
                        "relocate of page {page} found no lower free page, alloc gave {}",
                        probe.0
                    );
                    self.note_alloc(txn, &[probe]);
                }
            }
        }
    }

    /// Lends fresh pages writable and other pages readable together, and
    /// writes into each fresh page a patch mixed with the bytes of one read
    /// beside it.
    fn pages(
        &mut self,
        txn: &mut Transaction<'_, N>,
        writes: &[(usize, Patch)],
        reads: &[usize],
        conflicts: bool,
    ) {
        let mut targets: Vec<(u64, Patch)> = Vec::new();
        for &(i, patch) in writes {
            if let Some(page) = pick(&self.fresh, i) {
                if targets.iter().all(|t| t.0 != page) {
                    targets.push((page, patch));
                }
            }
        }
        // Repeats stay: a page may be lent readable more than once.
        let sources: Vec<u64> = reads
            .iter()
            .filter_map(|&i| pick_key(&self.next.regular, i))
            .filter(|&p| targets.iter().all(|t| t.0 != p))
            .collect();
        if targets.is_empty() && sources.is_empty() {
            return;
        }
        let freed_here = self.freed.first().copied();
        let set = txn.pages();
        let read: Vec<&MappedPage> = sources
            .iter()
            .map(|&p| set.get(PageId(p)).unwrap())
            .collect();
        let mut out: Vec<&mut MappedPage> = targets
            .iter()
            .map(|&(p, _)| set.get_mut(PageId(p)).unwrap())
            .collect();
        for (p, page) in sources.iter().zip(&read) {
            assert!(
                page.as_bytes() == self.next.regular[p].as_slice(),
                "page {p} lent readable differs"
            );
        }
        if conflicts {
            let lent = |r: Result<&MappedPage, MappedPageError>, page: u64| matches!(r, Err(MappedPageError::AlreadyBorrowed { page: p }) if p == page);
            let lent_mut = |r: Result<&mut MappedPage, MappedPageError>, page: u64| matches!(r, Err(MappedPageError::AlreadyBorrowed { page: p }) if p == page);
            if let Some(&(p, _)) = targets.first() {
                assert!(
                    lent(set.get(PageId(p)), p),
                    "page {p} lent writable, then readable"
                );
                assert!(
                    lent_mut(set.get_mut(PageId(p)), p),
                    "page {p} lent writable twice"
                );
            }
            if let Some(&p) = sources.first() {
                let err = set.get_mut(PageId(p)).map(|_| ()).unwrap_err();
                let ok = if self.fresh.contains(&p) {
                    matches!(err, MappedPageError::AlreadyBorrowed { page } if page == p)
                } else {
                    matches!(err, MappedPageError::CommittedPage { page } if page == p)
                };
                assert!(ok, "page {p} lent readable, then writable: {err:?}");
            }
            if let Some(p) = freed_here {
                let id = PageId::<N>(p);
                for err in [
                    set.get(id).map(|_| ()).unwrap_err(),
                    set.get_mut(id).map(|_| ()).unwrap_err(),
                ] {
                    assert!(
                        matches!(err, MappedPageError::NotAllocated { page } if page == p),
                        "page {p} freed in the transaction, lent: {err:?}"
                    );
                }
            }
            for (page, reserved) in [(0, true), (2, true), (u64::MAX, false)] {
                let id = PageId::<N>(page);
                for err in [
                    set.get(id).map(|_| ()).unwrap_err(),
                    set.get_mut(id).map(|_| ()).unwrap_err(),
                ] {
                    let ok = if reserved {
                        matches!(err, MappedPageError::ReservedPage)
                    } else {
                        matches!(err, MappedPageError::OutOfBounds)
                    };
                    assert!(ok, "page {page} lent: {err:?}");
                }
            }
        }
        for (k, (&(page, patch), bytes)) in targets.iter().zip(out.iter_mut()).enumerate() {
            let range = span(patch, N);
            let mut data = vec![0u8; range.len()];
            fill(&mut data, patch.seed);
            if !read.is_empty() {
                let from = &read[k % read.len()].as_bytes()[range.clone()];
                data.iter_mut().zip(from).for_each(|(d, s)| *d ^= s);
            }
            bytes.as_bytes_mut()[range.clone()].copy_from_slice(&data);
            self.next.regular.get_mut(&page).unwrap()[range].copy_from_slice(&data);
            self.written.insert(page);
        }
    }

    /// Compares everything the transaction shows with the model.
    fn check(&self, txn: &Transaction<'_, N>, ctx: &dyn Fn() -> String) {
        for (&page, bytes) in &self.next.regular {
            let id = PageId::<N>(page);
            let got = txn
                .get(id)
                .unwrap_or_else(|e| panic!("get of page {page}: {e:?} {}", ctx()));
            assert!(
                got.as_bytes() == bytes.as_slice(),
                "bytes of page {page} in the transaction differ {}",
                ctx()
            );
            assert_eq!(
                txn.is_writable(id),
                self.fresh.contains(&page),
                "is_writable({page}) {}",
                ctx()
            );
        }
        for (&slot, bytes) in &self.next.protected {
            let got = txn
                .get_protected(ProtectedPageId(slot))
                .unwrap_or_else(|e| panic!("get_protected of {slot}: {e:?} {}", ctx()));
            assert!(
                got.as_bytes() == bytes.as_slice(),
                "bytes of protected page {slot} in the transaction differ {}",
                ctx()
            );
        }
        for &page in self.freed.iter().take(16) {
            let err = txn.get(PageId(page)).map(|_| ()).unwrap_err();
            assert!(
                matches!(err, MappedPageError::NotAllocated { .. }),
                "get of page {page} freed in the transaction gave {err:?} {}",
                ctx()
            );
            assert!(!txn.is_writable(PageId(page)), "{}", ctx());
        }
        for &slot in self.next.freed_protected.iter().take(16) {
            let err = txn
                .get_protected(ProtectedPageId(slot))
                .map(|_| ())
                .unwrap_err();
            assert!(
                matches!(err, MappedPageError::OutOfBounds),
                "get_protected of freed {slot} in the transaction gave {err:?} {}",
                ctx()
            );
        }
    }
}

/// The options of the pager under test: the defaults, or with the pager
/// cutting its free tail past `auto_shrink` pages (and growing by as many).
fn options<const N: usize>(
    durability: Durability,
    auto_shrink: Option<u64>,
) -> mappedpages::PagerOptions<N> {
    let options = Pager::<N>::options().durability(durability);
    match auto_shrink {
        Some(pages) => options
            .shrink_threshold(Some(pages * N as u64))
            .max_growth_step(pages * N as u64),
        None => options,
    }
}

fn run<const N: usize>(durability: Durability, initial_pages: u64, ops: &[Op]) {
    run_with::<N>(durability, initial_pages, None, ops);
}

/// Runs `ops` and returns how many pages the `Shrink` steps gave back and
/// how many other steps cut the file.
fn run_with<const N: usize>(
    durability: Durability,
    initial_pages: u64,
    auto_shrink: Option<u64>,
    ops: &[Op],
) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.pages");
    let pager = options::<N>(durability, auto_shrink)
        .initial_pages(initial_pages)
        .create(&path)
        .unwrap();
    let generation = pager.generation();
    let mut harness = Harness {
        path: &path,
        pager: Some(pager),
        durability,
        model: Model {
            generation,
            ..Model::default()
        },
        syncs: Syncs::default(),
        auto_shrink,
        auto_cuts: 0,
        given_back: 0,
    };
    for (step, op) in ops.iter().enumerate() {
        harness.step(op);
        harness.check(step, op);
    }
    harness.step(&Op::Reopen(false));
    harness.check(ops.len(), &Op::Reopen(false));
    (harness.given_back, harness.auto_cuts)
}

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..max)
}

proptest! {
    #![proptest_config(config(depth(24, 96)))]

    #[test]
    fn model_1k_immediate(initial in 4u64..24, ops in ops(240)) {
        run::<1024>(Durability::Immediate, initial, &ops);
    }

    #[test]
    fn model_1k_deferred(initial in 4u64..24, ops in ops(240)) {
        run::<1024>(Durability::Deferred, initial, &ops);
    }

    #[test]
    fn model_4k_immediate(initial in 4u64..24, ops in ops(180)) {
        run::<4096>(Durability::Immediate, initial, &ops);
    }

    #[test]
    fn model_4k_deferred(initial in 4u64..24, ops in ops(180)) {
        run::<4096>(Durability::Deferred, initial, &ops);
    }
}

proptest! {
    #![proptest_config(config(depth(8, 24)))]

    /// The pager cuts its free tail by itself past 64 free pages.
    #[test]
    fn model_1k_auto_shrink(deferred: bool, initial in 4u64..24, ops in ops(200)) {
        let durability = if deferred { Durability::Deferred } else { Durability::Immediate };
        run_with::<1024>(durability, initial, Some(64), &ops);
    }
}

/// A churned file compacted as an engine would: the highest pages moved
/// down into the holes a free left, then the tail cut, with and without a
/// reopen between.
#[test]
fn model_relocate_then_shrink() {
    let patch = |i: u64| Patch {
        start: (i * 7919) as u16,
        len: (i * 104_729) as u16,
        seed: i,
    };
    let ops = vec![
        Op::AllocBulk(600),
        Op::AllocProtectedBulk(4),
        Op::Write(599, patch(1)),
        Op::ProtectedWrite(1, patch(2), true),
        Op::FreeRun(0, 300),
        Op::Sync,
        Op::Shrink(false),
        Op::Txn(vec![TxnOp::Relocate(150), TxnOp::Relocate(4)], End::Drop),
        Op::Txn(
            vec![TxnOp::Relocate(150), TxnOp::KillCopy, TxnOp::Relocate(140)],
            End::Commit,
        ),
        Op::Shrink(true),
        Op::Sync,
        Op::Shrink(false),
        Op::Txn(vec![TxnOp::Relocate(4)], End::Commit),
        Op::Shrink(true),
    ];
    for durability in [Durability::Immediate, Durability::Deferred] {
        let (given_back, _) = run_with::<1024>(durability, 8, None, &ops);
        assert!(
            given_back > 1000,
            "{durability:?}: {given_back} pages given back"
        );
    }
}

/// Frees at the top of the file leave a free tail past the threshold: the
/// commit (Immediate) or the next sync (Deferred) cuts it.
#[test]
fn model_auto_shrink_cuts() {
    let mut ops = Vec::new();
    for i in 0..6u16 {
        ops.extend([
            // Protected pages first: copies above the freed pages would
            // hold the tail.
            Op::AllocProtected,
            Op::AllocBulk(300),
            Op::FreeRun(u16::MAX / 3 + i * 1000, 400),
            Op::Txn(
                vec![TxnOp::AllocWrite(
                    20,
                    Patch {
                        start: i,
                        len: i,
                        seed: u64::from(i),
                    },
                )],
                End::Commit,
            ),
            Op::Sync,
            Op::Reopen(i % 3 == 2),
        ]);
    }
    for durability in [Durability::Immediate, Durability::Deferred] {
        let (_, cuts) = run_with::<1024>(durability, 8, Some(64), &ops);
        assert!(cuts > 0, "{durability:?}: no step cut the file");
    }
}

/// Many protected pages (several directory leaves) and a bitmap of more than
/// one leaf (past 8192 pages at 1 KiB), so checkpoints write interior pages.
#[test]
fn model_1k_multi_leaf_trees() {
    let mut ops = vec![Op::AllocBulk(8300), Op::AllocProtectedBulk(150)];
    for i in 0..120usize {
        let patch = Patch {
            start: (i * 997) as u16,
            len: (i * 331) as u16,
            seed: i as u64,
        };
        ops.push(match i % 8 {
            0 => Op::FreeRun((i * 541) as u16, 200),
            1 => Op::ProtectedWrite(i * 13, patch, true),
            2 => Op::AllocBulk(150),
            3 => Op::FreeProtected(i * 7),
            4 => Op::Write(i * 31, patch),
            5 => Op::AllocProtectedBulk(3),
            6 => Op::Free(i * 17),
            _ => Op::Reopen(i % 16 == 7),
        });
    }
    run::<1024>(Durability::Immediate, 4, &ops);
    run::<1024>(Durability::Deferred, 4, &ops);
}

/// Contract A5: a page freed twice is `DoubleFree`, in every durability mode.
/// In Deferred mode a page freed since the last sync waits, internally, for
/// that commit to become durable, and the second free reports `NotAllocated`.
#[test]
fn regression_deferred_double_free_is_double_free() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<4096>::options()
        .durability(Durability::Deferred)
        .create(dir.path().join("double.pages"))
        .unwrap();
    let id = pager.alloc().unwrap();
    pager.free(id).unwrap();
    let err = pager.free(id).unwrap_err();
    assert!(
        matches!(err, MappedPageError::DoubleFree),
        "second free gave {err:?}"
    );
    let err = pager.free_bulk(vec![id]).unwrap_err();
    assert!(
        matches!(err, MappedPageError::DoubleFree),
        "free_bulk of a freed page gave {err:?}"
    );
}

/// Transactions that write more pages than a root's check list holds
/// (about 165 in 4 KiB pages, 40 in 1 KiB pages), committed one after the
/// other, dropped, copied as a kill leaves them and reopened, with pages
/// they wrote written in place after.
fn overflowing_transactions(written: usize) -> Vec<Op> {
    let patch = |i: usize| Patch {
        start: (i * 7919) as u16,
        len: (i * 104_729) as u16,
        seed: i as u64,
    };
    let mut ops = vec![Op::AllocBulk(written), Op::AllocProtectedBulk(4)];
    for i in 0..8 {
        let calls = vec![
            TxnOp::AllocWrite(written + 10 * i, patch(i)),
            TxnOp::FreeBulk((0..8).map(|k| k * 31 + i).collect(), BulkFlaw::None),
            TxnOp::WriteProtected(i, patch(i + 100)),
            TxnOp::Pages(
                vec![(i, patch(i + 200)), (i + 7, patch(i + 201))],
                vec![i * 3],
                true,
            ),
            TxnOp::KillCopy,
            TxnOp::Write(i * 5, patch(i + 300)),
        ];
        ops.push(Op::Txn(
            calls,
            if i % 4 == 2 { End::Drop } else { End::Commit },
        ));
        ops.push(match i % 4 {
            0 => Op::KillCopy,
            1 => Op::Write(i * 13, patch(i + 400)),
            2 => Op::FreeRun((i * 4001) as u16, 20),
            _ => Op::Reopen(i == 7),
        });
    }
    ops
}

#[test]
fn model_transactions_overflow_check_lists() {
    run::<1024>(Durability::Immediate, 8, &overflowing_transactions(60));
    run::<1024>(Durability::Deferred, 8, &overflowing_transactions(60));
    run::<4096>(Durability::Immediate, 8, &overflowing_transactions(200));
    run::<4096>(Durability::Deferred, 8, &overflowing_transactions(200));
}

/// Found by the model (`TxnOp::Relocate`): with no page free, `relocate`
/// returns `None` although a page below waits for a sync (freed by a
/// Deferred commit not yet durable), and an `alloc` in the same
/// transaction, which syncs to reuse waiting pages when none is free, then
/// hands out that lower page. An engine compacting stops too early, and
/// `None` does not mean "no lower page" as documented.
#[test]
fn regression_relocate_with_pages_waiting_for_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<1024>::options()
        .durability(Durability::Deferred)
        .create(dir.path().join("relocate.pages"))
        .unwrap();
    let free = pager.free_page_count() as usize;
    let ids = pager.alloc_bulk(free).unwrap();
    pager.free(ids[0]).unwrap();
    assert_eq!(pager.free_page_count(), 0);
    let high = *ids.last().unwrap();
    let mut txn = pager.transaction().unwrap();
    let moved = txn.relocate(high).unwrap();
    let probe = txn.alloc().unwrap();
    assert!(
        moved.is_some() || probe.0 > high.0,
        "relocate({}) found no lower free page, then alloc gave {}",
        high.0,
        probe.0
    );
}

/// Found by the model in CI: a Deferred transaction writes more pages than
/// the root lists (a check page holds the rest), a later unsynced commit
/// frees one of them, and the pager is reopened. The chain of the root open
/// took still checks that page, but open counted it free: the next
/// transaction wrote it (even one rolled back), and a kill then lost every
/// commit since the last sync, the root failing its checks.
#[test]
fn regression_reopen_withholds_pages_the_chain_checks() {
    let ops = vec![
        Op::Txn(
            vec![TxnOp::AllocWrite(
                40,
                Patch {
                    start: 0,
                    len: 0,
                    seed: 0,
                },
            )],
            End::Commit,
        ),
        Op::Free(0),
        Op::Reopen(false),
        Op::Txn(
            vec![TxnOp::AllocWrite(
                1,
                Patch {
                    start: 0,
                    len: 0,
                    seed: 987_553_864_434_687,
                },
            )],
            End::Rollback,
        ),
        Op::KillCopy,
    ];
    run::<1024>(Durability::Deferred, 4, &ops);
    run::<1024>(Durability::Immediate, 4, &ops);
}

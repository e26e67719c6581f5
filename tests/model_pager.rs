//! Model-based property test of `Pager`: random sequences of regular and
//! protected allocations, frees, bulk calls, writes, syncs and reopens run
//! against a plain in-memory model, and the pager must match the model after
//! every step.
//!
//! The default run keeps to a few cases per configuration; set
//! `PROPTEST_CASES` for a longer run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mappedpages::{Durability, MappedPageError, PageId, Pager, ProtectedPageId};
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
#[derive(Default)]
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
        match bad {
            BadId::Reserved(p) => Some(p),
            BadId::PastEnd(k) => Some(self.page().page_count() + k),
            BadId::Huge => Some(u64::MAX),
            BadId::Stale(i) => pick(&self.model.freed, i),
        }
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
        self.model.generation += 1;
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
                let id = self.pager().alloc().unwrap();
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
                        let ok = match bad {
                            BadId::Reserved(_) => {
                                matches!(err, MappedPageError::ReservedPage)
                            }
                            BadId::PastEnd(_) | BadId::Huge => {
                                matches!(err, MappedPageError::OutOfBounds)
                            }
                            BadId::Stale(_) => {
                                matches!(err, MappedPageError::NotAllocated { .. })
                            }
                        };
                        assert!(ok, "get of {bad:?} (page {page}) gave {err:?}");
                    }
                }
            }
            Op::AllocBulk(n) => {
                let ids = self.pager().alloc_bulk(*n).unwrap();
                assert_eq!(ids.len(), *n);
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
                    PageId::<N>(page)
                        .get_mut(self.pager())
                        .unwrap()
                        .as_bytes_mut()[range.clone()]
                    .copy_from_slice(&data);
                    self.model.regular.get_mut(&page).unwrap()[range].copy_from_slice(&data);
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
                        matches!(err, MappedPageError::OutOfBounds),
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
                    let err = self.pager().free_protected(id).unwrap_err();
                    assert!(oob(&err), "free of protected {slot}: {err:?}");
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
            Op::Sync => self.pager().sync().unwrap(),
            Op::Reopen(switch) => {
                let generation = self.page().generation();
                drop(self.pager.take());
                if *switch {
                    self.durability = match self.durability {
                        Durability::Immediate => Durability::Deferred,
                        _ => Durability::Immediate,
                    };
                }
                let pager = Pager::<N>::options()
                    .durability(self.durability)
                    .open(self.path)
                    .unwrap();
                let report = pager.recovery();
                assert_eq!(report.generation, generation, "{report:?}");
                assert!(!report.fell_back, "clean reopen fell back: {report:?}");
                assert_eq!(report.other_copy_problem, None, "{report:?}");
                assert_eq!(pager.durability(), self.durability);
                self.pager = Some(pager);
            }
        }
    }

    fn free_bulk(&mut self, picks: &[usize], flaw: BulkFlaw) {
        let mut chosen: Vec<u64> = picks
            .iter()
            .filter_map(|&i| pick_key(&self.model.regular, i))
            .collect();
        chosen.sort_unstable();
        chosen.dedup();
        match flaw {
            BulkFlaw::None => {
                if chosen.is_empty() {
                    return;
                }
                self.pager()
                    .free_bulk(chosen.iter().map(|&p| PageId(p)).collect())
                    .unwrap();
                self.note_free(&chosen);
            }
            BulkFlaw::Duplicate(i) => {
                let Some(&dup) = chosen.get(i % chosen.len().max(1)) else {
                    return;
                };
                let mut ids: Vec<PageId<N>> = chosen.iter().map(|&p| PageId(p)).collect();
                ids.insert(i % (ids.len() + 1), PageId(dup));
                let err = self.pager().free_bulk(ids).unwrap_err();
                assert!(
                    matches!(err, MappedPageError::DoubleFree),
                    "free_bulk naming {dup} twice gave {err:?}"
                );
            }
            BulkFlaw::Bad(bad) => {
                let Some(page) = self.raw_bad(bad) else {
                    return;
                };
                let mut ids: Vec<PageId<N>> = chosen.iter().map(|&p| PageId(p)).collect();
                ids.push(PageId(page));
                ids.rotate_right(chosen.len() / 2);
                let err = self.pager().free_bulk(ids).unwrap_err();
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
                assert!(
                    matches!(err, MappedPageError::OutOfBounds),
                    "free_protected_bulk with unused slot {bad} gave {err:?}"
                );
            }
        }
    }

    /// Compares everything the public API shows with the model.
    fn check(&self, step: usize, op: &Op) {
        let pager = self.page();
        let ctx = || format!("after step {step}: {op:?}");
        let regular: Vec<u64> = pager.iter_allocated_pages().map(|id| id.0).collect();
        let expected: Vec<u64> = self.model.regular.keys().copied().collect();
        assert_eq!(regular, expected, "regular pages differ {}", ctx());
        let protected: Vec<u64> = pager
            .iter_allocated_protected_pages()
            .map(|id| id.0)
            .collect();
        let expected: Vec<u64> = self.model.protected.keys().copied().collect();
        assert_eq!(protected, expected, "protected pages differ {}", ctx());
        assert_eq!(
            pager.allocated_page_count(),
            self.model.regular.len() as u64,
            "{}",
            ctx()
        );
        assert_eq!(pager.generation(), self.model.generation, "{}", ctx());
        let used = 3 + self.model.regular.len() as u64 + 2 * self.model.protected.len() as u64;
        assert!(
            pager.page_count() >= used + pager.free_page_count(),
            "page accounting: {} pages, {} used, {} free {}",
            pager.page_count(),
            used,
            pager.free_page_count(),
            ctx()
        );
        for (&page, bytes) in &self.model.regular {
            let got = PageId::<N>(page).get(pager).unwrap();
            assert_eq!(got.len(), N);
            assert!(
                got.as_bytes() == bytes.as_slice(),
                "bytes of regular page {page} differ {}",
                ctx()
            );
        }
        for (&slot, bytes) in &self.model.protected {
            let got = ProtectedPageId::<N>(slot).get(pager).unwrap();
            assert!(
                got.as_bytes() == bytes.as_slice(),
                "bytes of protected page {slot} differ {}",
                ctx()
            );
        }
        for &page in self.model.freed.iter().take(16) {
            let err = PageId::<N>(page).get(pager).unwrap_err();
            assert!(
                matches!(err, MappedPageError::NotAllocated { .. }),
                "get of freed page {page} gave {err:?} {}",
                ctx()
            );
        }
        for &slot in self.model.freed_protected.iter().take(16) {
            let err = ProtectedPageId::<N>(slot).get(pager).unwrap_err();
            assert!(
                matches!(err, MappedPageError::OutOfBounds),
                "get of freed protected page {slot} gave {err:?} {}",
                ctx()
            );
        }
    }
}

fn run<const N: usize>(durability: Durability, initial_pages: u64, ops: &[Op]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.pages");
    let pager = Pager::<N>::options()
        .durability(durability)
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
    };
    for (step, op) in ops.iter().enumerate() {
        harness.apply(op);
        harness.check(step, op);
    }
    harness.apply(&Op::Reopen(false));
    harness.check(ops.len(), &Op::Reopen(false));
}

fn ops(max: usize) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op(), 1..max)
}

proptest! {
    #![proptest_config(config(96))]

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

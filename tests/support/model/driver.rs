//! Runs ops ([`super::ops`]) against a real `Pager` and the [`Model`] side
//! by side: every result, every typed error a bad input deserves, and, with
//! [`Driver::strict`], every commit and sync the pager makes are checked
//! against what the model says; after each op the pager, every snapshot
//! held and every copy made must show the model.
//!
//! An I/O error from the pager is returned, with the model left at the
//! state before the op (the pager must have rolled back or become
//! `Unavailable`); anything else that disagrees with the model panics.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mappedpages::{
    Durability, MappedPage, MappedPageError, PageId, Pager, PagerOptions, ProtectedPageId,
    Snapshot, Transaction,
};

use super::model::{ids, pick, plan_free_bulk, resolve_bad, BulkPlan, Model};
use super::ops::{describe, BadId, BulkFlaw, End, Op, Patch, Slot, Step, Target};
use super::sub::{self as sub_pages, SubKey};

type Result<T> = std::result::Result<T, MappedPageError>;

/// What an op did, as far as the model cannot foresee it: the ids the
/// pager chose. Two runs of one seed must agree on it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Regular pages handed out, in order (relocation targets included).
    pub pages: Vec<u64>,
    /// Protected slots handed out, in order.
    pub slots: Vec<u64>,
    /// Whole-page fills (`Patch::Fill`), in order: a crash check holds a
    /// page's bytes to them.
    pub fills: Vec<(u64, u8)>,
    /// Pages relocated, and where to (`None`: no lower page was free).
    pub moved: Vec<(u64, Option<u64>)>,
    /// A transaction that committed.
    pub committed: bool,
}

/// A snapshot held across ops, with the model of the state it was taken in.
struct Held<const N: usize> {
    snapshot: Snapshot<N>,
    model: Model,
}

/// What the driver knows of the pager's syncs, to check what waits for one
/// and how many a transaction's commit makes.
#[derive(Default)]
struct Syncs {
    /// Regular pages freed by commits since the last sync (Deferred mode):
    /// none may be handed out again before one.
    awaiting: BTreeSet<u64>,
    /// Regular pages committed since the last sync (Deferred mode): freed
    /// by a later commit, one may be handed out again at once, as the
    /// durable root never used it (the pager may keep it waiting anyway,
    /// when a check page lists it).
    born: BTreeSet<u64>,
    /// Regular pages freed by the op being run.
    freed_now: Vec<u64>,
    /// Regular pages the op being run committed.
    born_now: Vec<u64>,
    /// The op being run wrote a page in place.
    wrote_now: bool,
    /// Pages a committed transaction wrote. Writing one in place may first
    /// commit a root that checks none (one more generation).
    txn_written: BTreeSet<u64>,
    /// A page was written in place since the last sync: the next commit
    /// syncs it first.
    dirty: bool,
    /// Opened, and no sync since: the first transaction syncs.
    unsettled: bool,
    /// A snapshot was dropped since the pager was opened: the pages it
    /// held come back free when the pager next looks for them, not at once.
    released: bool,
}

/// A pager, the model of what it must show, and the snapshots held.
pub struct Driver<const N: usize> {
    path: PathBuf,
    pager: Option<Pager<N>>,
    /// How the pager is opened again (its durability aside).
    options: PagerOptions<N>,
    pub durability: Durability,
    pub model: Model,
    /// Check generations, sync counts and what waits for a sync exactly
    /// (the property test); the crash tests, whose files start deep, cut
    /// themselves while snapshots hold pages, or see calls fail half way
    /// (injected I/O errors), check states and bytes only.
    pub strict: bool,
    /// The pager cuts its free tail by itself (a `shrink_threshold`): those
    /// cuts add commits of their own.
    pub auto_shrink: bool,
    /// Ops other than `Shrink` after which the file was shorter.
    pub auto_cuts: u64,
    /// Pages `Shrink` ops gave back.
    pub given_back: u64,
    /// Copies made and checked.
    pub copies: u64,
    /// Compare all the pager shows with the model after every op (the
    /// snapshots held, the copies and the kill copies always are). The
    /// crash tests, which run thousands of workloads, check the pager's
    /// state through the crash images and reopens instead.
    pub check_pager: bool,
    syncs: Syncs,
    held: Vec<Held<N>>,
}

/// Is `err` what a free or get of a page free or internal gives?
fn is_free_or_internal(err: &MappedPageError) -> bool {
    matches!(
        err,
        MappedPageError::DoubleFree | MappedPageError::NotAllocated { .. }
    )
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

/// A protected slot no one uses: one freed (picked by index) or far past
/// the directory.
fn unused_slot(model: &Model, stale: Option<usize>) -> Option<u64> {
    match stale {
        Some(i) => pick(model.freed_protected.iter(), i),
        None => Some(
            model
                .protected
                .keys()
                .chain(&model.freed_protected)
                .max()
                .map_or(0, |m| m + 1)
                // Past every slot sub-page parents may take too.
                + (1 << 32),
        ),
    }
}

impl<const N: usize> Driver<N> {
    /// Drives `pager`, open on `path` with `options` (used again to reopen
    /// it), which shows `model`.
    pub fn new(path: &Path, pager: Pager<N>, options: PagerOptions<N>, model: Model) -> Self {
        Driver {
            path: path.to_path_buf(),
            durability: pager.durability(),
            pager: Some(pager),
            options,
            model,
            strict: true,
            auto_shrink: false,
            auto_cuts: 0,
            given_back: 0,
            copies: 0,
            check_pager: true,
            syncs: Syncs::default(),
            held: Vec::new(),
        }
    }

    /// Creates the file at `path` with `options` and drives it.
    pub fn create(path: &Path, options: PagerOptions<N>) -> Self {
        let pager = options.clone().create(path).unwrap();
        let model = Model::observe(&pager);
        Driver::new(path, pager, options, model)
    }

    pub fn pager(&self) -> &Pager<N> {
        self.pager.as_ref().unwrap()
    }

    pub fn pager_mut(&mut self) -> &mut Pager<N> {
        self.pager.as_mut().unwrap()
    }

    /// Closes the pager (dropping the snapshots held first).
    pub fn into_pager(mut self) -> Pager<N> {
        self.held.clear();
        self.pager.take().unwrap()
    }

    /// How many snapshots are held.
    pub fn held(&self) -> usize {
        self.held.len()
    }

    /// Runs `op`, checks the pager, the snapshots held and any copy against
    /// the model. On an I/O error the model stays as it was before `op`.
    pub fn apply(&mut self, op: &Op) -> Result<Outcome> {
        let mut outcome = Outcome::default();
        self.step(op, &mut outcome)?;
        self.check(&|| format!("after {}", describe(op)));
        Ok(outcome)
    }

    /// Runs one op and keeps the model of syncs up to date.
    fn step(&mut self, op: &Op, outcome: &mut Outcome) -> Result<()> {
        let syncs = self.pager().sync_count();
        let (generation, pages) = (self.model.generation, self.pager().page_count());
        self.syncs.freed_now.clear();
        self.syncs.born_now.clear();
        self.syncs.wrote_now = false;
        self.run(op, outcome)?;
        if self.auto_shrink && !matches!(op, Op::Shrink(_) | Op::Reopen(_)) {
            // A commit or a sync may be followed by a cut, which commits.
            let now = self.pager().generation();
            let may_cut = generation != self.model.generation || matches!(op, Op::Sync);
            if may_cut && now > self.model.generation {
                self.model.generation = now;
            }
            if self.pager().page_count() < pages {
                assert!(may_cut, "{} cut the file", describe(op));
                self.auto_cuts += 1;
            }
        }
        let len = std::fs::metadata(&self.path).unwrap().len();
        assert!(
            len >= self.pager().page_count() * N as u64,
            "file of {len} bytes, {} pages counted on, after {}",
            self.pager().page_count(),
            describe(op)
        );
        let freed = std::mem::take(&mut self.syncs.freed_now);
        let born = std::mem::take(&mut self.syncs.born_now);
        if let Op::Reopen(_) | Op::Shrink(true) = op {
            // Dropping the pager synced everything; the new one counts anew.
            self.syncs.awaiting.clear();
            self.syncs.born.clear();
            self.syncs.dirty = false;
            self.syncs.unsettled = true;
            return Ok(());
        }
        if self.pager().sync_count() > syncs {
            self.syncs.awaiting.clear();
            self.syncs.born.clear();
            self.syncs.dirty = false;
            self.syncs.unsettled = false;
        }
        // An op's syncs all come before its commit publishes its frees.
        // Its pages count as made since the sync even if its own commit
        // synced: the model only says which pages may come back early.
        if self.durability == Durability::Deferred {
            for page in freed {
                if !self.syncs.born.remove(&page) {
                    self.syncs.awaiting.insert(page);
                }
            }
            self.syncs.born.extend(born);
        }
        if self.syncs.wrote_now {
            self.syncs.dirty = true;
        }
        Ok(())
    }

    /// Resolves a bad id to a raw page number; `None` if there is no stale id.
    fn raw_bad(&self, bad: BadId) -> Option<u64> {
        let pages = self.pager().page_count();
        resolve_bad(bad, pages, &self.model.freed, pages)
    }

    /// Checks that `err` is the error `bad` deserves from `free`.
    fn check_free_error(bad: BadId, page: u64, err: &MappedPageError) {
        let ok = match bad {
            BadId::Reserved(_) => matches!(err, MappedPageError::ReservedPage),
            BadId::PastEnd(_) | BadId::Huge => matches!(err, MappedPageError::OutOfBounds),
            BadId::Stale(_) => is_free_or_internal(err),
        };
        assert!(ok, "free of bad id {bad:?} (page {page}) gave {err:?}");
    }

    fn note_alloc(&mut self, pages: &[PageId<N>], outcome: &mut Outcome) {
        for id in pages {
            let bytes = id.get(self.pager()).unwrap().as_bytes().to_vec();
            self.model.alloc(id.0, bytes);
            outcome.pages.push(id.0);
            self.syncs.born_now.push(id.0);
        }
        self.model.generation += 1;
    }

    fn note_free(&mut self, pages: &[u64]) {
        for &page in pages {
            self.model.free(page);
        }
        self.syncs.freed_now.extend(pages);
        self.model.generation += 1;
    }

    fn note_alloc_protected(&mut self, ids: &[ProtectedPageId<N>], outcome: &mut Outcome) {
        for id in ids {
            self.model.alloc_protected(id.0, N);
            outcome.slots.push(id.0);
        }
        self.model.generation += 1;
    }

    fn note_free_protected(&mut self, slots: &[u64]) {
        for &slot in slots {
            self.model.free_protected(slot);
        }
        self.model.generation += 1;
    }

    /// Pages handed out by a call that made no sync must not be ones a
    /// commit not yet durable freed.
    fn check_not_awaiting(&self, pages: &[PageId<N>], syncs_before: u64) {
        if self.strict && self.pager().sync_count() == syncs_before {
            for page in pages {
                assert!(
                    !self.syncs.awaiting.contains(&page.0),
                    "page {}, freed by a commit not yet durable, was handed out again",
                    page.0
                );
            }
        }
    }

    /// Regular pages a snapshot held reads: not writable in place.
    fn held_pages(&self) -> BTreeSet<u64> {
        self.held
            .iter()
            .flat_map(|h| h.model.regular.keys().copied())
            .collect()
    }

    fn run(&mut self, op: &Op, outcome: &mut Outcome) -> Result<()> {
        match op {
            Op::Alloc => {
                let syncs = self.pager().sync_count();
                let id = self.pager_mut().alloc()?;
                self.check_not_awaiting(&[id], syncs);
                self.note_alloc(&[id], outcome);
            }
            Op::AllocBulk(n) => {
                let syncs = self.pager().sync_count();
                let ids = self.pager_mut().alloc_bulk(*n)?;
                assert_eq!(ids.len(), *n);
                self.check_not_awaiting(&ids, syncs);
                assert!(ids.windows(2).all(|w| w[0] < w[1]), "not ascending");
                self.note_alloc(&ids, outcome);
            }
            Op::Free(target) | Op::FreeTwice(target) => {
                let Some(page) = self.live_target(*target) else {
                    return Ok(());
                };
                self.pager_mut().free(PageId(page))?;
                self.note_free(&[page]);
                if let Op::FreeTwice(_) = op {
                    let err = self.pager_mut().free(PageId(page)).unwrap_err();
                    assert!(
                        matches!(err, MappedPageError::DoubleFree),
                        "second free of page {page} gave {err:?}, expected DoubleFree"
                    );
                }
            }
            Op::FreeBad(bad) => {
                if let Some(page) = self.raw_bad(*bad) {
                    let err = self.pager_mut().free(PageId(page)).unwrap_err();
                    Self::check_free_error(*bad, page, &err);
                    let err = self.pager_mut().free_bulk(vec![PageId(page)]).unwrap_err();
                    Self::check_free_error(*bad, page, &err);
                }
            }
            Op::GetBad(bad) => {
                if let Some(page) = self.raw_bad(*bad) {
                    let id = PageId::<N>(page);
                    check_get_error(*bad, page, &id.get(self.pager()).unwrap_err());
                    check_get_error(*bad, page, &id.get_mut(self.pager_mut()).unwrap_err());
                }
            }
            Op::FreeBulk(targets, flaw) => {
                let chosen = targets
                    .iter()
                    .filter_map(|&t| self.live_target(t))
                    .collect();
                match plan_free_bulk(chosen, *flaw, |b| self.raw_bad(b)) {
                    BulkPlan::Skip => {}
                    BulkPlan::Free(chosen) => {
                        self.pager_mut().free_bulk(ids(&chosen))?;
                        self.note_free(&chosen);
                    }
                    BulkPlan::Twice(pages, dup) => {
                        let err = self.pager_mut().free_bulk(ids(&pages)).unwrap_err();
                        assert!(
                            matches!(err, MappedPageError::DoubleFree),
                            "free_bulk naming {dup} twice gave {err:?}"
                        );
                    }
                    BulkPlan::Bad(pages, bad, page) => {
                        let err = self.pager_mut().free_bulk(ids(&pages)).unwrap_err();
                        Self::check_free_error(bad, page, &err);
                    }
                }
            }
            Op::FreeRun(start, n) => {
                let live: Vec<u64> = self.model.regular.keys().copied().collect();
                if !live.is_empty() {
                    let from = *start as usize * live.len() / 65536;
                    let run: Vec<u64> = live[from..].iter().take(*n).copied().collect();
                    self.pager_mut().free_bulk(ids(&run))?;
                    self.note_free(&run);
                }
            }
            Op::BadCounts => {
                let p = self.pager_mut();
                let invalid =
                    |e: MappedPageError| matches!(e, MappedPageError::InvalidCount { .. });
                let (syncs, generation) = (p.sync_count(), p.generation());
                assert!(p.alloc_bulk(0)?.is_empty());
                assert!(invalid(p.alloc_bulk(usize::MAX).unwrap_err()));
                p.free_bulk(Vec::new())?;
                assert!(p.alloc_protected_bulk(0)?.is_empty());
                assert!(invalid(p.alloc_protected_bulk(usize::MAX).unwrap_err()));
                p.free_protected_bulk(Vec::new())?;
                assert_eq!((p.sync_count(), p.generation()), (syncs, generation));
            }
            Op::Write(target, patch) => {
                if let Some(page) = self.live_target(*target) {
                    self.write_in_place(page, patch, outcome)?;
                }
            }
            Op::AllocProtected => {
                let id = self.pager_mut().alloc_protected()?;
                self.note_alloc_protected(&[id], outcome);
            }
            Op::AllocProtectedBulk(n) => {
                let ids = self.pager_mut().alloc_protected_bulk(*n)?;
                assert_eq!(ids.len(), *n);
                self.note_alloc_protected(&ids, outcome);
            }
            Op::FreeProtected(slot) => {
                if let Some(slot) = self.live_slot(*slot) {
                    self.pager_mut().free_protected(ProtectedPageId(slot))?;
                    self.note_free_protected(&[slot]);
                    let err = self
                        .pager_mut()
                        .free_protected(ProtectedPageId(slot))
                        .unwrap_err();
                    assert!(
                        matches!(err, MappedPageError::DoubleFree),
                        "second free of protected {slot} gave {err:?}"
                    );
                }
            }
            Op::FreeProtectedBulk(slots, flaw) => self.free_protected_bulk(slots, *flaw)?,
            Op::ProtectedBad(stale) => {
                if let Some(slot) = unused_slot(&self.model, *stale) {
                    let id = ProtectedPageId::<N>(slot);
                    let oob = |e: &MappedPageError| matches!(e, MappedPageError::OutOfBounds);
                    let err = id.get(self.pager()).unwrap_err();
                    assert!(oob(&err), "get of protected {slot}: {err:?}");
                    let err = id.get_mut(self.pager_mut()).unwrap_err();
                    assert!(oob(&err), "get_mut of protected {slot}: {err:?}");
                    // Freeing a freed slot is a double free; one past the
                    // directory is out of bounds.
                    let err = self.pager_mut().free_protected(id).unwrap_err();
                    let expected = match stale {
                        Some(_) => matches!(err, MappedPageError::DoubleFree),
                        None => oob(&err),
                    };
                    assert!(expected, "free of protected {slot}: {err:?}");
                }
            }
            Op::ProtectedWrite(slot, patch, commit) => {
                if let Some(slot) = self.live_slot(*slot) {
                    let committed = Arc::clone(&self.model.protected[&slot]);
                    let mut writer = ProtectedPageId::<N>(slot).get_mut(self.pager_mut())?;
                    assert!(
                        writer.page().as_bytes() == committed.as_slice(),
                        "writer of protected {slot} does not start from the committed bytes"
                    );
                    let mut after = committed.to_vec();
                    patch.apply(&mut after, None);
                    writer.page_mut().as_bytes_mut().copy_from_slice(&after);
                    if *commit {
                        writer.commit()?;
                        self.model.protected.insert(slot, Arc::new(after));
                        self.model.generation += 1;
                    }
                    // Otherwise the writer goes out of scope uncommitted: a
                    // dropped write must change nothing (checked after it).
                }
            }
            Op::Sync => {
                let before = self.pager().generation();
                self.pager_mut().sync()?;
                let now = self.pager().generation();
                if now != before && !self.auto_shrink {
                    // A Deferred sync leaves a root that checks no page.
                    if self.strict {
                        assert_eq!(self.durability, Durability::Deferred, "sync committed");
                        assert_eq!(now, before + 1, "sync committed more than once");
                    }
                    self.model.generation = now;
                }
            }
            Op::KillCopy => self
                .view()
                .kill_copy::<N>(&self.model, &|| "between ops".to_string()),
            Op::Txn(steps, end) => self.transaction(steps, *end, outcome)?,
            Op::Shrink(reopen) => {
                self.shrink()?;
                if *reopen {
                    self.run(&Op::Reopen(false), outcome)?;
                }
            }
            Op::Reopen(switch) => self.reopen(*switch),
            Op::TakeSnapshot => {
                let snapshot = self.pager().snapshot()?;
                let model = self.model.clone();
                self.held.push(Held { snapshot, model });
            }
            Op::DropSnapshot(i) => {
                if !self.held.is_empty() {
                    let i = i % self.held.len();
                    self.held.remove(i);
                    self.syncs.released = true;
                }
            }
            Op::Copy(from) => self.copy(*from)?,
        }
        Ok(())
    }

    /// The live page `target` names, if any.
    fn live_target(&self, target: Target) -> Option<u64> {
        self.model
            .target(target, &[])
            .filter(|p| self.model.regular.contains_key(p))
    }

    /// The slot in use `slot` names, if any.
    fn live_slot(&self, slot: Slot) -> Option<u64> {
        self.model
            .slot(slot, &[])
            .filter(|s| self.model.protected.contains_key(s))
    }

    /// Writes `patch` into `page` in place: refused while a snapshot held
    /// reads it.
    fn write_in_place(&mut self, page: u64, patch: &Patch, outcome: &mut Outcome) -> Result<()> {
        let generation = self.pager().generation();
        if self.held_pages().contains(&page) {
            let err = PageId::<N>(page).get_mut(self.pager_mut()).unwrap_err();
            assert!(
                matches!(err, MappedPageError::InUseBySnapshot { page: p } if p == page),
                "write in place of page {page}, which a snapshot reads, gave {err:?}"
            );
            return Ok(());
        }
        let mut after = self.model.regular[&page].to_vec();
        patch.apply(&mut after, None);
        let bytes = PageId::<N>(page).get_mut(self.pager_mut())?.as_bytes_mut();
        bytes.copy_from_slice(&after);
        self.syncs.wrote_now = true;
        self.model.regular.insert(page, Arc::new(after));
        if let Patch::Fill(value) = patch {
            outcome.fills.push((page, *value));
        }
        let now = self.pager().generation();
        if now != generation {
            // A root that checks this page may still be needed: the pager
            // first commits one that checks nothing.
            if self.strict {
                if self.auto_shrink {
                    assert!(now > generation, "write in place of page {page}");
                } else {
                    assert_eq!(now, generation + 1, "write in place of page {page}");
                }
                assert!(
                    self.syncs.txn_written.contains(&page),
                    "write in place of page {page}, never written by a transaction, committed"
                );
            }
            self.model.generation = now;
        }
        Ok(())
    }

    fn free_protected_bulk(&mut self, slots: &[Slot], flaw: BulkFlaw) -> Result<()> {
        let mut chosen: Vec<u64> = slots.iter().filter_map(|&s| self.live_slot(s)).collect();
        chosen.sort_unstable();
        chosen.dedup();
        let ids = |slots: &[u64]| -> Vec<ProtectedPageId<N>> {
            slots.iter().map(|&s| ProtectedPageId(s)).collect()
        };
        match flaw {
            BulkFlaw::None => {
                if !chosen.is_empty() {
                    self.pager_mut().free_protected_bulk(ids(&chosen))?;
                    self.note_free_protected(&chosen);
                }
            }
            BulkFlaw::Duplicate(i) => {
                let Some(&dup) = chosen.get(i % chosen.len().max(1)) else {
                    return Ok(());
                };
                let mut list = ids(&chosen);
                list.insert(i % (list.len() + 1), ProtectedPageId(dup));
                let err = self.pager_mut().free_protected_bulk(list).unwrap_err();
                assert!(
                    matches!(err, MappedPageError::DoubleFree),
                    "free_protected_bulk naming {dup} twice gave {err:?}"
                );
            }
            BulkFlaw::Bad(_) => {
                // A slot that is not in use: freed earlier, or far past the end.
                let bad = pick(self.model.freed_protected.iter(), slots.len()).unwrap_or(1 << 40);
                let mut list = ids(&chosen);
                list.push(ProtectedPageId(bad));
                list.rotate_right(chosen.len() / 2);
                let err = self.pager_mut().free_protected_bulk(list).unwrap_err();
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
        Ok(())
    }

    fn reopen(&mut self, switch: bool) {
        // The snapshots of a pager end with it.
        self.held.clear();
        let generation = self.pager().generation();
        let closed_deferred = self.durability == Durability::Deferred;
        drop(self.pager.take());
        if switch {
            self.durability = match self.durability {
                Durability::Immediate => Durability::Deferred,
                _ => Durability::Immediate,
            };
        }
        let pager = self
            .options
            .clone()
            .durability(self.durability)
            .open(&self.path)
            .unwrap();
        let report = pager.recovery();
        // A Deferred pager's clean close may commit once more: a root that
        // checks no page.
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

    /// `shrink()` changes nothing the API shows but the page count: the
    /// file is cut to the pages it counts on, none of them past the new end
    /// allocated.
    fn shrink(&mut self) -> Result<()> {
        let (pages, generation) = (self.pager().page_count(), self.pager().generation());
        let given = self.pager_mut().shrink()?;
        let pager = self.pager();
        let now = pager.page_count();
        assert_eq!(now, pages - given, "page count after a shrink of {given}");
        let len = std::fs::metadata(&self.path).unwrap().len();
        // Where a mapped file cannot be cut (Windows), a cut that a held
        // snapshot's view blocks waits for a sync after it is dropped: the
        // file is then longer than the root counts on, never shorter.
        let deferred_cut = cfg!(windows) && !self.held.is_empty() && len > now * N as u64;
        assert!(
            len == now * N as u64 || deferred_cut,
            "file of {len} bytes after a shrink to {now} pages"
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
        Ok(())
    }

    /// Copies a new snapshot (or one held) to a new file, which must open
    /// to exactly the state the snapshot was taken in.
    fn copy(&mut self, from: Option<usize>) -> Result<()> {
        let dest = self.path.with_extension(format!("copy{}", self.copies));
        let model = match from {
            None => {
                self.pager().snapshot()?.copy_to(&dest)?;
                self.model.clone()
            }
            Some(_) if self.held.is_empty() => return Ok(()),
            Some(i) => {
                let held = &self.held[i % self.held.len()];
                held.snapshot.copy_to(&dest)?;
                held.model.clone()
            }
        };
        self.copies += 1;
        let copy = Pager::<N>::open(&dest).unwrap();
        check_shows(&copy, &model, false, &|| {
            format!("in a copy of snapshot {from:?}")
        });
        drop(copy);
        std::fs::remove_file(&dest).unwrap();
        Ok(())
    }

    /// What a kill copy needs of the driver, apart from the pager.
    fn view(&self) -> DriverView<'_> {
        DriverView {
            path: &self.path,
            durability: self.durability,
            strict: self.strict,
        }
    }

    /// Compares everything the pager and the snapshots held show with the
    /// model.
    pub fn check(&self, ctx: &dyn Fn() -> String) {
        if self.check_pager {
            check_shows(self.pager(), &self.model, self.strict, ctx);
        }
        for (i, held) in self.held.iter().enumerate() {
            check_snapshot(&held.snapshot, &held.model, &|| {
                format!("snapshot {i} held, {}", ctx())
            });
        }
    }

    /// Runs `steps` in one transaction, checking what it shows after each,
    /// then ends it and checks what the pager shows and how many syncs the
    /// end made.
    fn transaction(&mut self, steps: &[Step], end: End, outcome: &mut Outcome) -> Result<()> {
        let pager = self.pager.as_mut().unwrap();
        let (syncs, pages, free) = (
            pager.sync_count(),
            pager.page_count(),
            pager.free_page_count(),
        );
        let mut t = TxnModel::new(&self.model, pages, free);
        t.released = self.syncs.released;
        let mut txn = pager.transaction()?;
        for (i, step) in steps.iter().enumerate() {
            let ctx = || format!("after call {i} of a transaction: {step:?}");
            match step {
                Step::KillCopy => DriverView {
                    path: &self.path,
                    durability: self.durability,
                    strict: self.strict,
                }
                .kill_copy::<N>(&self.model, &ctx),
                _ => t.apply(&mut txn, step, outcome)?,
            }
            // The crash workloads' transactions write hundreds of pages one
            // step each: checking every page after every step would take
            // most of their time, so they check before the end only.
            if self.strict || i + 1 == steps.len() {
                t.check(&txn, &ctx);
            }
        }
        let published = t.changed && matches!(end, End::Commit);
        match end {
            End::Commit => txn.commit()?,
            End::Drop => drop(txn),
            End::Rollback => txn.rollback(),
        }
        outcome.committed = end == End::Commit;
        let pager = self.pager.as_ref().unwrap();
        let made = pager.sync_count() - syncs;
        let settle = u64::from(self.syncs.unsettled);
        let ctx = || format!("{end:?} of a transaction of {} calls", steps.len());
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
            let no_cut = !self.auto_shrink;
            let no_relocation_sync = !(t.relocated && self.durability == Durability::Deferred);
            if self.strict {
                if pager.page_count() == pages && plenty && no_cut && no_relocation_sync {
                    assert_eq!(made, least, "syncs of a commit, {}", ctx());
                } else {
                    assert!(made >= least, "syncs of a commit: {made}, {}", ctx());
                }
            }
            if self.strict && made == 0 {
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
            self.syncs.born_now.extend(&t.fresh);
            self.model = t.next;
            self.model.generation += 1;
        } else {
            if !self.strict {
                return Ok(());
            }
            assert_eq!(pager.page_count(), pages, "growth kept, {}", ctx());
            if !t.may_grow {
                assert_eq!(made, settle, "syncs, {}", ctx());
            }
            if made == settle && !self.syncs.released {
                assert_eq!(pager.free_page_count(), free, "{}", ctx());
            }
        }
        Ok(())
    }
}

/// What a kill copy needs of the driver while its pager is lent to a
/// transaction.
struct DriverView<'a> {
    path: &'a Path,
    durability: Durability,
    strict: bool,
}

impl DriverView<'_> {
    /// Opens a copy of the file taken now, as a process killed now leaves
    /// it, and checks that it shows `model`, the newest commit.
    fn kill_copy<const N: usize>(&self, model: &Model, ctx: &dyn Fn() -> String) {
        let copy = self.path.with_extension("killed");
        std::fs::copy(self.path, &copy).unwrap();
        let pager = Pager::<N>::options()
            .durability(self.durability)
            .open(&copy)
            .unwrap();
        let report = pager.recovery();
        if self.strict {
            assert_eq!(report.generation, model.generation, "{report:?} {}", ctx());
        }
        assert!(
            !report.fell_back,
            "a kill lost a commit: {report:?} {}",
            ctx()
        );
        check_shows(&pager, model, self.strict, &|| {
            format!("in a copy of the file {}", ctx())
        });
        drop(pager);
        std::fs::remove_file(&copy).unwrap();
    }
}

/// Compares everything the public API of `pager` shows with `model`
/// (its generation too if `generation`).
pub fn check_shows<const N: usize>(
    pager: &Pager<N>,
    model: &Model,
    generation: bool,
    ctx: &dyn Fn() -> String,
) {
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
    if generation {
        assert_eq!(pager.generation(), model.generation, "{}", ctx());
    }
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
    check_sub_pages(
        &sub_pages::list(pager),
        |key| sub_pages::read(pager, key),
        model,
        ctx,
    );
    for &key in model.freed_sub_pages.iter().take(16) {
        let err = sub_pages::read(pager, key).map(|_| ()).unwrap_err();
        assert!(
            matches!(err, MappedPageError::InvalidSubPage { .. }),
            "freed sub-page {key:?} gave {err:?} {}",
            ctx()
        );
    }
}

/// A snapshot held must go on reading exactly the state it was taken in
/// (contract R2, R3): its pages, their bytes, its protected pages.
fn check_snapshot<const N: usize>(snap: &Snapshot<N>, model: &Model, ctx: &dyn Fn() -> String) {
    let regular: Vec<u64> = snap.iter_allocated_pages().map(|id| id.0).collect();
    let expected: Vec<u64> = model.regular.keys().copied().collect();
    assert_eq!(regular, expected, "regular pages differ {}", ctx());
    for (&page, bytes) in &model.regular {
        let now = snap.get(PageId::<N>(page)).unwrap();
        assert!(
            now.as_bytes() == bytes.as_slice(),
            "page {page} changed under it {}",
            ctx()
        );
    }
    let protected: Vec<u64> = snap
        .iter_allocated_protected_pages()
        .map(|id| id.0)
        .collect();
    let expected: Vec<u64> = model.protected.keys().copied().collect();
    assert_eq!(protected, expected, "protected pages differ {}", ctx());
    for (&slot, bytes) in &model.protected {
        let now = snap.get_protected(ProtectedPageId::<N>(slot)).unwrap();
        assert!(
            now.as_bytes() == bytes.as_slice(),
            "protected {slot} changed under it {}",
            ctx()
        );
    }
    check_sub_pages(
        &sub_pages::list_snapshot(snap),
        |key| sub_pages::read_snapshot(snap, key),
        model,
        ctx,
    );
}

/// The sub-pages `listed` and read through `read` are the model's, byte for
/// byte.
fn check_sub_pages<'a>(
    listed: &[SubKey],
    read: impl Fn(SubKey) -> Result<&'a [u8]>,
    model: &Model,
    ctx: &dyn Fn() -> String,
) {
    assert!(
        listed.iter().eq(model.sub_pages.keys()),
        "sub-pages differ: {listed:?} {}",
        ctx()
    );
    for (&key, bytes) in &model.sub_pages {
        let got = read(key).unwrap_or_else(|e| panic!("sub-page {key:?}: {e:?} {}", ctx()));
        assert!(
            got == bytes.as_slice(),
            "bytes of sub-page {key:?} differ {}",
            ctx()
        );
    }
}

/// A transaction as the model says it must look.
struct TxnModel {
    /// Everything as the transaction shows it; the new state if it commits.
    next: Model,
    /// Regular pages it allocated and has not freed, in the order it got
    /// them: the writable ones.
    fresh: Vec<u64>,
    /// Slots it allocated, in order.
    fresh_slots: Vec<u64>,
    /// Sub-pages it allocated and holds: the writable ones.
    fresh_sub_pages: BTreeSet<SubKey>,
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
    /// A snapshot dropped before it began may have held pages below.
    released: bool,
}

impl TxnModel {
    fn new(model: &Model, page_count: u64, free: u64) -> Self {
        TxnModel {
            next: model.clone(),
            fresh: Vec::new(),
            fresh_slots: Vec::new(),
            fresh_sub_pages: BTreeSet::new(),
            freed: BTreeSet::new(),
            written: BTreeSet::new(),
            allocated: Vec::new(),
            taken: 0,
            changed: false,
            may_grow: false,
            relocated: false,
            page_count,
            free,
            released: false,
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

    /// The live page `target` names, if any.
    fn live(&self, target: Target) -> Option<u64> {
        self.next
            .target(target, &self.fresh)
            .filter(|p| self.next.regular.contains_key(p))
    }

    fn live_slot(&self, slot: Slot) -> Option<u64> {
        self.next
            .slot(slot, &self.fresh_slots)
            .filter(|s| self.next.protected.contains_key(s))
    }

    fn note_alloc<const N: usize>(
        &mut self,
        txn: &Transaction<'_, N>,
        pages: &[PageId<N>],
        outcome: &mut Outcome,
    ) {
        self.may_grow = true;
        self.taken += pages.len() as u64;
        for id in pages {
            assert!(
                !self.freed.contains(&id.0),
                "{id:?}, freed in this transaction, was handed out again in it"
            );
            let bytes = txn.get(*id).unwrap().as_bytes().to_vec();
            self.next.alloc(id.0, bytes);
            self.fresh.push(id.0);
            self.allocated.push(id.0);
            outcome.pages.push(id.0);
            self.changed = true;
        }
    }

    fn note_free(&mut self, pages: &[u64]) {
        for &page in pages {
            self.next.free(page);
            self.freed.insert(page);
            self.fresh.retain(|&p| p != page);
            self.changed = true;
        }
    }

    fn write<const N: usize>(
        &mut self,
        txn: &mut Transaction<'_, N>,
        page: u64,
        patch: &Patch,
        outcome: &mut Outcome,
    ) -> Result<()> {
        let mut after = self.next.regular[&page].to_vec();
        patch.apply(&mut after, None);
        txn.get_mut(PageId(page))?
            .as_bytes_mut()
            .copy_from_slice(&after);
        self.next.regular.insert(page, Arc::new(after));
        self.written.insert(page);
        if let Patch::Fill(value) = patch {
            outcome.fills.push((page, *value));
        }
        Ok(())
    }

    fn apply<const N: usize>(
        &mut self,
        txn: &mut Transaction<'_, N>,
        step: &Step,
        outcome: &mut Outcome,
    ) -> Result<()> {
        match step {
            Step::SubAlloc(..) | Step::SubFree(_) | Step::SubRewrite(..) | Step::SubBad(..) => {
                return self.apply_sub(txn, step);
            }
            Step::Alloc => {
                let id = txn.alloc()?;
                self.note_alloc(txn, &[id], outcome);
            }
            Step::AllocBulk(n) | Step::AllocWrite(n, _) => {
                let ids = txn.alloc_bulk(*n)?;
                assert_eq!(ids.len(), *n);
                assert!(ids.windows(2).all(|w| w[0] < w[1]), "not ascending");
                self.note_alloc(txn, &ids, outcome);
                if let Step::AllocWrite(_, patch) = step {
                    for (k, id) in ids.iter().enumerate() {
                        self.write(txn, id.0, &patch.nth(k), outcome)?;
                    }
                }
            }
            Step::Free(target) | Step::FreeTwice(target) => {
                if let Some(page) = self.live(*target) {
                    txn.free(PageId(page))?;
                    self.note_free(&[page]);
                    if let Step::FreeTwice(_) = step {
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
            Step::FreeBulk(targets, flaw) => {
                let chosen = targets.iter().filter_map(|&t| self.live(t)).collect();
                match plan_free_bulk(chosen, *flaw, |b| self.raw_bad(b)) {
                    BulkPlan::Skip => {}
                    BulkPlan::Free(chosen) => {
                        txn.free_bulk(ids::<N>(&chosen))?;
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
            Step::FreeBad(bad) => {
                if let Some(page) = self.raw_bad(*bad) {
                    let err = txn.free(PageId(page)).unwrap_err();
                    self.check_free_error(*bad, page, &err);
                    let err = txn.free_bulk([PageId(page)]).unwrap_err();
                    self.check_free_error(*bad, page, &err);
                }
            }
            Step::GetBad(bad) => {
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
            Step::Write(target, patch) => {
                let page = self.live(*target).filter(|p| self.fresh.contains(p));
                if let Some(page) = page {
                    self.write(txn, page, patch, outcome)?;
                }
            }
            Step::WriteCommitted(i) => {
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
            Step::WriteFreed(i) => {
                if let Some(page) = pick(self.freed.iter(), *i) {
                    let id = PageId::<N>(page);
                    let refused = |err: MappedPageError| matches!(err, MappedPageError::NotAllocated { page: p } if p == page);
                    assert!(refused(txn.get_mut(id).map(|_| ()).unwrap_err()));
                    assert!(refused(txn.pages().get_mut(id).map(|_| ()).unwrap_err()));
                }
            }
            Step::BadCounts => {
                assert!(txn.alloc_bulk(0)?.is_empty());
                let err = txn.alloc_bulk(usize::MAX).unwrap_err();
                assert!(
                    matches!(err, MappedPageError::InvalidCount { .. }),
                    "alloc_bulk(usize::MAX) in a transaction gave {err:?}"
                );
                txn.free_bulk([])?;
            }
            Step::AllocProtected => {
                self.may_grow = true;
                self.taken += 2;
                let id = txn.alloc_protected()?;
                self.next.alloc_protected(id.0, N);
                self.fresh_slots.push(id.0);
                outcome.slots.push(id.0);
                self.changed = true;
            }
            Step::FreeProtected(slot) => {
                if let Some(slot) = self.live_slot(*slot) {
                    txn.free_protected(ProtectedPageId(slot))?;
                    self.next.free_protected(slot);
                    self.changed = true;
                    let err = txn.free_protected(ProtectedPageId(slot)).unwrap_err();
                    assert!(
                        matches!(err, MappedPageError::DoubleFree),
                        "second free in a transaction of protected {slot} gave {err:?}"
                    );
                }
            }
            Step::WriteProtected(slot, patch) => {
                if let Some(slot) = self.live_slot(*slot) {
                    // Staging may take a fresh page.
                    self.may_grow = true;
                    self.taken += 1;
                    let mut after = self.next.protected[&slot].to_vec();
                    let page = txn.write_protected(ProtectedPageId(slot))?;
                    assert!(
                        page.as_bytes() == after.as_slice(),
                        "write_protected of {slot} does not start from what the transaction shows"
                    );
                    patch.apply(&mut after, None);
                    page.as_bytes_mut().copy_from_slice(&after);
                    self.next.protected.insert(slot, Arc::new(after));
                    self.changed = true;
                }
            }
            Step::ProtectedBad(stale) => {
                if let Some(slot) = unused_slot(&self.next, *stale) {
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
            Step::Pages(writes, reads, conflicts) => {
                self.pages(txn, writes, reads, *conflicts, outcome)?
            }
            Step::KillCopy => unreachable!("run by the driver"),
            Step::Relocate(targets) => self.relocate(txn, targets, outcome)?,
        }
        Ok(())
    }

    /// Moves pages down with their bytes; `None` only if no page below is
    /// free, which an allocation then shows. (The new ids need not ascend: a
    /// sync that an allocation makes when free pages run short frees
    /// waiting pages below.)
    fn relocate<const N: usize>(
        &mut self,
        txn: &mut Transaction<'_, N>,
        targets: &[Target],
        outcome: &mut Outcome,
    ) -> Result<()> {
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
        let mut pages: Vec<u64> = targets.iter().filter_map(|&t| self.live(t)).collect();
        let mut seen = BTreeSet::new();
        pages.retain(|p| seen.insert(*p));
        self.relocated |= !pages.is_empty();
        for page in pages {
            let bytes = Arc::clone(&self.next.regular[&page]);
            let moved = txn.relocate(PageId(page))?;
            outcome.moved.push((page, moved.map(|id| id.0)));
            match moved {
                Some(to) => {
                    assert!(to.0 < page, "page {page} relocated up to {}", to.0);
                    self.note_free(&[page]);
                    self.note_alloc(txn, &[to], outcome);
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
                    // Pages a dropped snapshot held count as free
                    // (`regression_relocate_after_snapshot_drop`).
                    let none_free = self.taken >= self.free;
                    let probe = txn.alloc()?;
                    assert!(
                        probe.0 > page || none_free,
                        "relocate of page {page} found no lower free page, alloc gave {}",
                        probe.0
                    );
                    self.note_alloc(txn, &[probe], outcome);
                }
            }
        }
        Ok(())
    }

    /// Lends fresh pages writable and other pages readable together, and
    /// writes into each fresh page its patch mixed with the bytes of one
    /// read beside it.
    fn pages<const N: usize>(
        &mut self,
        txn: &mut Transaction<'_, N>,
        writes: &[(Target, Patch)],
        reads: &[Target],
        conflicts: bool,
        outcome: &mut Outcome,
    ) -> Result<()> {
        let mut targets: Vec<(u64, &Patch)> = Vec::new();
        for (target, patch) in writes {
            let page = self.live(*target).filter(|p| self.fresh.contains(p));
            if let Some(page) = page {
                if targets.iter().all(|t| t.0 != page) {
                    targets.push((page, patch));
                }
            }
        }
        // Repeats stay: a page may be lent readable more than once.
        let sources: Vec<u64> = reads
            .iter()
            .filter_map(|&t| self.live(t))
            .filter(|&p| targets.iter().all(|t| t.0 != p))
            .collect();
        if targets.is_empty() && sources.is_empty() {
            return Ok(());
        }
        let freed_here = self.freed.first().copied();
        let set = txn.pages();
        let read: Vec<&MappedPage> = sources
            .iter()
            .map(|&p| set.get(PageId(p)))
            .collect::<Result<_>>()?;
        let mut out: Vec<&mut MappedPage> = targets
            .iter()
            .map(|&(p, _)| set.get_mut(PageId(p)))
            .collect::<Result<_>>()?;
        for (p, page) in sources.iter().zip(&read) {
            assert!(
                page.as_bytes() == self.next.regular[p].as_slice(),
                "page {p} lent readable differs"
            );
        }
        if conflicts {
            let lent = |r: Result<&MappedPage>, page: u64| matches!(r, Err(MappedPageError::AlreadyBorrowed { page: p }) if p == page);
            let lent_mut = |r: Result<&mut MappedPage>, page: u64| matches!(r, Err(MappedPageError::AlreadyBorrowed { page: p }) if p == page);
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
            let mut after = self.next.regular[&page].to_vec();
            let mix = (!read.is_empty()).then(|| read[k % read.len()].as_bytes());
            patch.apply(&mut after, mix);
            bytes.as_bytes_mut().copy_from_slice(&after);
            if let (Patch::Fill(value), None) = (patch, mix) {
                outcome.fills.push((page, *value));
            }
            self.next.regular.insert(page, Arc::new(after));
            self.written.insert(page);
        }
        Ok(())
    }

    /// The sub-page steps.
    fn apply_sub<const N: usize>(
        &mut self,
        txn: &mut Transaction<'_, N>,
        step: &Step,
    ) -> Result<()> {
        match *step {
            Step::SubAlloc(class, count, seed) => {
                let size = sub_pages::sizes(N)[class % 3];
                let raws = sub_pages::alloc(txn, size, count)?;
                assert_eq!(raws.len(), count);
                self.may_grow = true;
                self.taken += count as u64;
                for (k, raw) in raws.into_iter().enumerate() {
                    let key = (size, raw);
                    assert!(
                        sub_pages::read_in(txn, key)?.iter().all(|&b| b == 0),
                        "new sub-page {key:?} does not read as zeros"
                    );
                    let bytes = sub_pages::pattern(seed.wrapping_add(k as u64), size);
                    sub_pages::write(txn, key)?.copy_from_slice(&bytes);
                    self.next.alloc_sub_page(key, bytes);
                    self.fresh_sub_pages.insert(key);
                    self.changed = true;
                }
            }
            Step::SubFree(i) => {
                if let Some(key) = self.next.sub_page_at(i) {
                    sub_pages::free(txn, key.0, &[key.1])?;
                    self.next.free_sub_page(key);
                    self.fresh_sub_pages.remove(&key);
                    self.changed = true;
                }
            }
            Step::SubRewrite(i, seed) => {
                if let Some(old) = self.next.sub_page_at(i) {
                    let raw = sub_pages::alloc(txn, old.0, 1)?[0];
                    let key = (old.0, raw);
                    let mut bytes = self.next.sub_pages[&old].to_vec();
                    bytes[..8].copy_from_slice(&seed.to_le_bytes());
                    sub_pages::write(txn, key)?.copy_from_slice(&bytes);
                    sub_pages::free(txn, old.0, &[old.1])?;
                    self.next.free_sub_page(old);
                    self.fresh_sub_pages.remove(&old);
                    self.next.alloc_sub_page(key, bytes);
                    self.fresh_sub_pages.insert(key);
                    self.may_grow = true;
                    self.taken += 1;
                    self.changed = true;
                }
            }
            Step::SubBad(i, raw) => {
                if let Some(key) = self.next.sub_page_at(i) {
                    let err = sub_pages::free(txn, key.0, &[key.1, key.1]).unwrap_err();
                    assert!(matches!(err, MappedPageError::DoubleFree), "{err:?}");
                    if !self.fresh_sub_pages.contains(&key) {
                        let err = sub_pages::write(txn, key).map(|_| ()).unwrap_err();
                        assert!(
                            matches!(err, MappedPageError::CommittedSubPage { id } if id == key.1),
                            "write of committed sub-page {key:?} gave {err:?}"
                        );
                    }
                }
                for size in sub_pages::sizes(N) {
                    let key = (size, raw);
                    match (sub_pages::read_in(txn, key), self.next.sub_pages.get(&key)) {
                        (Ok(got), Some(bytes)) => assert!(got == bytes.as_slice()),
                        (Err(MappedPageError::InvalidSubPage { id }), None) => assert_eq!(id, raw),
                        (got, want) => panic!("made-up sub-page {key:?}: {got:?}, model {want:?}"),
                    }
                }
            }
            _ => unreachable!("not a sub-page step"),
        }
        Ok(())
    }

    /// Compares everything the transaction shows with the model.
    fn check<const N: usize>(&self, txn: &Transaction<'_, N>, ctx: &dyn Fn() -> String) {
        for (&key, bytes) in &self.next.sub_pages {
            let got = sub_pages::read_in(txn, key)
                .unwrap_or_else(|e| panic!("sub-page {key:?}: {e:?} {}", ctx()));
            assert!(
                got == bytes.as_slice(),
                "bytes of sub-page {key:?} in the transaction differ {}",
                ctx()
            );
        }
        for &key in self.next.freed_sub_pages.iter().take(16) {
            let err = sub_pages::read_in(txn, key).map(|_| ()).unwrap_err();
            assert!(
                matches!(err, MappedPageError::InvalidSubPage { .. }),
                "freed sub-page {key:?} in the transaction gave {err:?} {}",
                ctx()
            );
        }
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

//! Transactions, engine side: changes gathered in memory and published by
//! one commit (contract T1–T3, T6).
//!
//! Each operation changes the free map as it goes and notes how to undo
//! itself. [`Core::commit_txn`] hands what was gathered to the commit
//! protocol (`commit.rs`) as one [`Change`]; [`Core::rollback_txn`] undoes
//! everything, newest first. Every committing call of the single-call API is
//! a one-operation transaction ([`Core::one_op`]), so there is one path to
//! the disk.
//!
//! # What a transaction writes, and why one sync is enough
//! A transaction writes two kinds of page, neither of which any committed
//! state reads:
//! - regular pages it allocated itself (fresh pages); until the commit they
//!   are free in every root, so a crash leaves them as free pages holding
//!   whatever landed;
//! - staged copies of protected pages: the copy the newest and the durable
//!   root do not name, or, when the durable root still names it (a commit
//!   since the last sync flipped the page), a fresh page.
//!
//! Fresh pages and staged copies are written into buffers the transaction
//! holds ([`PageBuffers`]), not through the map, and the commit writes them
//! with positional writes, runs of adjacent pages in one write, before it
//! computes their checks (over the bytes it wrote) and writes the root. The
//! first write to a page through a shared map costs a write fault, which is
//! most of a small commit's time, and a page dirtied through the map can
//! make the commit's sync ten times slower on ext4 (a transaction that
//! wrote a protected root through the map: 2.5 ms; held: 0.22 ms). A buffer
//! starts as the page's bytes in the file, so what the transaction reads is
//! what a write through the map would have left. Past the pager's
//! transaction memory held ([`DEFAULT_TRANSACTION_MEMORY`] unless set), the
//! buffers are written out early (a `PageSet`, which cannot, lends from the
//! map instead), so a transaction that writes many pages holds a bounded
//! amount of memory; a page written out and written again is held again
//! from the file. The bound is large because an engine that rewrites its
//! pages at random (a B+tree loading unsorted keys) pays a copy and a write
//! per page for every round past it: a million random pairs loaded into
//! the B+tree example in one transaction took 1.7 times as long under an
//! 8 MiB bound as under one that held them all. A rollback drops the
//! buffers unwritten.
//!
//! The commit's root lists every such page with its CRC-32C. Open rejects a
//! root whose pages did not all land and falls back to the one before, so
//! the pages and the root share one sync. Pages a transaction frees stay
//! unavailable until the commit that freed them is durable, so nothing
//! inside the transaction, and nothing after it before that, overwrites a
//! page the durable root uses.

use std::collections::{BTreeMap, HashMap};

use crate::engine::core::Core;
use crate::engine::durability::Durability;
use crate::engine::freemap::{FreeMap, PageUse};
use crate::engine::journal::{runs, Change};
use crate::engine::placement::{Use, MAX_RUN};
use crate::engine::sub_pages::TxnSubPages;
use crate::engine::sub_slots::FreedSubPages;
use crate::error::{MappedPageError, Result};
use crate::format::checksum;
use crate::format::record::{DirEntry, EntryState, Record};
use crate::io::{DisjointPages, PageBuffers};
use crate::page_hash::PageSet;

/// How many bytes of pages a transaction holds in memory by default before
/// it writes them to the file early (256 MiB); see
/// [`PagerOptions::transaction_memory`](crate::PagerOptions::transaction_memory).
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::{Pager, DEFAULT_TRANSACTION_MEMORY};
/// // A process that runs many writers at once may hold less each.
/// let options = Pager::<4096>::options().transaction_memory(DEFAULT_TRANSACTION_MEMORY / 8);
/// # drop(options.create(&path)?);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub const DEFAULT_TRANSACTION_MEMORY: usize = 256 << 20;

/// A transaction in progress: what it changed, and how to undo it.
#[derive(Debug, Default)]
pub(crate) struct TxnState {
    records: Vec<Record>,
    pub(super) undo: Vec<Undo>,
    /// Pages the transaction stops using; reusable once its commit is durable.
    pub(super) freed: Vec<u64>,
    /// What it did with sub-pages.
    pub(super) sub: TxnSubPages,
    fresh: FreshPages,
    /// Fresh pages written, held in memory until the commit writes them.
    buffers: PageBuffers,
    /// Protected pages written by this transaction, by directory slot.
    staged: BTreeMap<u64, Staged>,
    /// Each directory slot's entry before this transaction first changed it.
    slots_before: BTreeMap<u64, DirEntry>,
    dir_len_before: u64,
}

/// The regular pages a transaction allocated, and those of them it wrote.
#[derive(Debug, Default)]
pub(crate) struct FreshPages {
    /// Pages this transaction allocated one at a time, as an engine
    /// copying a tree allocates: looked up on every write, so by hash.
    single: PageSet,
    /// Longer runs of regular pages it allocated: start -> count.
    runs: BTreeMap<u64, u64>,
    /// Fresh pages handed out writable: their CRCs go into the root.
    written: PageSet,
}

impl FreshPages {
    /// Whether `page` was allocated by this transaction.
    pub(crate) fn is_fresh(&self, page: u64) -> bool {
        self.single.contains(&page)
            || self
                .runs
                .range(..=page)
                .next_back()
                .is_some_and(|(&start, &count)| page - start < count)
    }

    /// Notes that this transaction allocated `count` pages from `start`.
    fn allocated(&mut self, start: u64, count: u64) {
        if count == 1 {
            self.single.insert(start);
        } else {
            self.runs.insert(start, count);
        }
    }

    /// Notes that `page`, a fresh page, was handed out writable.
    pub(crate) fn note_written(&mut self, page: u64) {
        self.written.insert(page);
    }
}

/// A protected page's staged write.
#[derive(Debug)]
struct Staged {
    /// The page holding the new bytes.
    page: u64,
    /// The entry the commit publishes: `page` as the active copy.
    entry: DirEntry,
    /// The copy `page` replaces, when the durable root still names it.
    replaced: Option<u64>,
    /// The copy that was active before: no longer checked after the commit.
    was_active: Option<u64>,
}

/// How to undo one operation.
#[derive(Debug)]
pub(super) enum Undo {
    /// Regular pages allocated, as runs.
    Alloc(Vec<(u64, u64)>),
    /// Regular pages freed, as runs.
    Free(Vec<(u64, u64)>),
    /// A directory slot changed; `taken` are pages taken for it.
    Slot {
        slot: u64,
        before: DirEntry,
        taken: [u64; 2],
    },
    /// A directory entry changed.
    Entry { slot: u64, before: DirEntry },
    /// A page taken for a staged protected write or a sub-page parent.
    Internal(u64),
    /// Committed sub-pages freed, held since.
    HeldSubPages(FreedSubPages),
}

/// Where a call inside a transaction started, to undo just that call.
pub(super) struct UndoMark {
    undo_len: usize,
    directory_len: u64,
}

/// What the commit protocol needs to undo a transaction it could not publish.
pub(crate) struct Rollback {
    undo: Vec<Undo>,
    dir_len_before: u64,
    /// The whole transaction is undone: `dir_len_before` is the directory
    /// length the newest root records, which the directory's slots grown
    /// since (none committed) go back to.
    whole: bool,
}

impl TxnState {
    pub(crate) fn new(core: &mut Core) -> TxnState {
        TxnState {
            dir_len_before: core.map.dir_len(),
            buffers: core.take_buffers(),
            ..TxnState::default()
        }
    }

    /// Whether `page` was allocated by this transaction.
    pub(crate) fn is_fresh(&self, page: u64) -> bool {
        self.fresh.is_fresh(page)
    }

    /// What a `PageSet` lends from: the fresh pages, to tell which are
    /// writable and note those written, and the buffers they are held in.
    pub(crate) fn lending(&mut self) -> (&mut FreshPages, &mut PageBuffers) {
        (&mut self.fresh, &mut self.buffers)
    }

    /// The page holding `slot`'s staged bytes, if this transaction wrote it.
    pub(crate) fn staged_page(&self, slot: u64) -> Option<u64> {
        self.staged.get(&slot).map(|staged| staged.page)
    }

    /// Whether committing would change nothing.
    pub(super) fn is_empty(&self) -> bool {
        self.records.is_empty() && self.staged.is_empty() && self.sub.is_empty()
    }

    /// The point to undo a call back to, if it fails half way.
    pub(super) fn undo_mark(&self, core: &Core) -> UndoMark {
        UndoMark {
            undo_len: self.undo.len(),
            directory_len: core.map.directory().len() as u64,
        }
    }

    fn note_slot(&mut self, slot: u64, before: DirEntry) {
        self.slots_before.entry(slot).or_insert(before);
    }
}

impl Core {
    /// Runs `op` as a transaction of its own: committed if it succeeds,
    /// rolled back if it fails.
    pub(super) fn one_op<T>(
        &mut self,
        op: impl FnOnce(&mut Core, &mut TxnState) -> Result<T>,
    ) -> Result<T> {
        self.check_usable()?;
        let mut txn = TxnState::new(self);
        match op(self, &mut txn) {
            Ok(value) => {
                self.commit_txn(txn)?;
                Ok(value)
            }
            Err(err) => {
                self.rollback_txn(txn);
                Err(err)
            }
        }
    }

    /// Takes `count` free pages placed (see `placement.rs`) for `usage`;
    /// `None`, changing nothing, if fewer are free.
    pub(super) fn place_pages(&mut self, count: u64, usage: Use) -> Option<Vec<u64>> {
        let pages = self.placement.take(&mut self.map, count, usage)?;
        // Until the root open took is durable, the older root may still use
        // pages that look free (see `Core::settle_open`).
        if self.preallocate && !self.open_unsettled {
            if let Some(&last) = pages.last() {
                let (map, store) = (&self.map, &mut self.store);
                self.placement
                    .zero_ahead(map, store, self.page_size, last, usage);
            }
        }
        Some(pages)
    }

    /// Starts a transaction of the public `Transaction` type.
    pub(crate) fn begin_transaction(&mut self) -> Result<TxnState> {
        self.check_usable()?;
        self.check_reader_bounds(true)?;
        // A transaction writes fresh pages through the map without a write
        // call; make the root open found durable first, as any write does.
        self.settle_open()?;
        let txn = TxnState::new(self);
        self.placement.begin_transaction(self.grouped);
        Ok(txn)
    }

    /// The bytes of an allocated regular page as this transaction sees
    /// them: those it holds for a fresh page it wrote, else the file's.
    pub(crate) fn txn_page<'a>(&'a self, txn: &'a TxnState, page: u64) -> Result<&'a [u8]> {
        self.check_regular(page)?;
        match txn.buffers.get(page) {
            Some(bytes) => Ok(bytes),
            None => self.regular_page(page),
        }
    }

    /// The bytes of `page`, writable, if this transaction allocated it:
    /// pages committed before it are written copy-on-write. They are held
    /// in memory until the commit (see the module docs).
    pub(crate) fn txn_page_mut<'a>(
        &'a mut self,
        txn: &'a mut TxnState,
        page: u64,
    ) -> Result<&'a mut [u8]> {
        self.check_regular(page)?;
        if !txn.is_fresh(page) {
            return Err(MappedPageError::CommittedPage { page });
        }
        txn.fresh.note_written(page);
        self.held_mut(txn, page)
    }

    /// The bytes `txn` holds for `page`, writable; held first, as the file
    /// has them, if they are not (never written, or written out early by
    /// [`Core::room_to_hold`]).
    fn held_mut<'a>(&'a mut self, txn: &'a mut TxnState, page: u64) -> Result<&'a mut [u8]> {
        if txn.buffers.get(page).is_none() {
            self.room_to_hold(txn)?;
            if self.store.reads_zeros(self.page_range(page)) {
                // No need to read what is known: a page the file grew over.
                txn.buffers.insert(page, &self.zero_page);
            } else {
                txn.buffers.insert(page, self.page_bytes(page)?);
            }
        }
        txn.buffers
            .get_mut(page)
            .ok_or(MappedPageError::Unavailable)
    }

    /// The bytes of `page` as `txn` sees them: those it holds, else the
    /// file's.
    pub(crate) fn txn_held_or_file<'a>(&'a self, txn: &'a TxnState, page: u64) -> Result<&'a [u8]> {
        match txn.buffers.get(page) {
            Some(bytes) => Ok(bytes),
            None => self.page_bytes(page),
        }
    }

    /// Writes the pages `txn` holds out early when no more fit, and forgets
    /// them: they are fresh pages, which no root uses, so the file may hold
    /// them before the commit (their checks are computed at the commit,
    /// from the file). On error they stay held and nothing changed.
    fn room_to_hold(&mut self, txn: &mut TxnState) -> Result<()> {
        if !txn.buffers.has_room(self.page_size) {
            self.write_buffers(txn)?;
            txn.buffers.clear();
        }
        Ok(())
    }

    /// Writes the pages `txn` holds to the file, at the commit; returns the
    /// CRC-32C of each, over the bytes written.
    fn write_held(&mut self, txn: &mut TxnState) -> Result<HashMap<u64, u32>> {
        if txn.buffers.is_empty() {
            return Ok(HashMap::new());
        }
        self.write_buffers(txn)?;
        let crcs = txn
            .buffers
            .iter()
            .map(|(page, bytes)| (page, checksum(bytes)))
            .collect();
        txn.buffers.clear();
        Ok(crcs)
    }

    /// Writes the pages `txn` holds. Pages it allocated and freed again
    /// that lie between them may be written as zeros (see
    /// `Storage::write_pages`), where the file preallocates its growth: no
    /// root names them, no snapshot reads them, and none is handed out
    /// again before the commit is durable, so before the sync that covers
    /// the zeros too.
    fn write_buffers(&mut self, txn: &TxnState) -> Result<()> {
        let (map, fill) = (&self.map, self.preallocate);
        // A fresh page stops being regular only when the transaction frees it.
        self.store
            .write_pages(&txn.buffers, self.page_size, |page| {
                fill && txn.is_fresh(page) && !map.is_regular(page)
            })?;
        Ok(())
    }

    /// Moves `page` to the lowest free page below it, with its bytes, and
    /// frees it; `None`, changing nothing, if no free page lies below.
    pub(crate) fn txn_relocate(&mut self, txn: &mut TxnState, page: u64) -> Result<Option<u64>> {
        self.check_regular(page)?;
        // Pages held for snapshots dropped since the last commit are free
        // again: an allocation would take them.
        self.release_unpinned();
        let none_below = |core: &Core| core.map.lowest_free().is_none_or(|free| free >= page);
        if none_below(self) && self.journal.root_since_sync && self.journal.reclaim.awaits_sync() {
            // Pages freed by commits not yet durable may lie below: a sync
            // makes them free, as an allocation would when none is free.
            self.sync_everything()?;
        }
        if none_below(self) {
            return Ok(None);
        }
        // The bytes to move, as this transaction sees them, and room to
        // hold them, before anything changes.
        let bytes = self.txn_page(txn, page)?.to_vec();
        self.room_to_hold(txn)?;
        let low = self.txn_alloc_regular_at(txn, 1, false)?;
        let Some(&to) = low.first() else {
            return Ok(None);
        };
        if txn.buffers.insert(to, &bytes).is_none() {
            return Err(MappedPageError::Unavailable);
        }
        txn.fresh.note_written(to);
        self.txn_free_regular(txn, &[page])?;
        Ok(Some(to))
    }

    /// What a `PageSet` lends pages from: the free map, to tell allocated
    /// pages, and the map's pages, each lent once, with `buffers`, where
    /// fresh pages are held while they have room.
    pub(crate) fn lend_pages<'a>(
        &'a mut self,
        page_size: usize,
        buffers: Option<&'a mut PageBuffers>,
    ) -> (&'a FreeMap, DisjointPages<'a>) {
        (&self.map, self.store.disjoint_pages(page_size, buffers))
    }

    /// Allocates `count` regular pages, placed (see `placement.rs`).
    pub(crate) fn txn_alloc_regular(&mut self, txn: &mut TxnState, count: u64) -> Result<Vec<u64>> {
        self.txn_alloc_regular_at(txn, count, true)
    }

    /// Allocates `count` regular pages, placed, or else the lowest free
    /// ones (what `relocate` moves a page down to).
    pub(super) fn txn_alloc_regular_at(
        &mut self,
        txn: &mut TxnState,
        count: u64,
        placed: bool,
    ) -> Result<Vec<u64>> {
        self.check_usable()?;
        if count == 0 {
            return Ok(Vec::new());
        }
        self.check_room(count, count)?;
        self.ensure_free(count)?;
        let pages = if placed && count <= MAX_RUN {
            self.place_pages(count, Use::Regular)
        } else {
            self.map.alloc_regular(count)
        }
        .ok_or(MappedPageError::Unavailable)?;
        self.touch_pages(pages.iter().copied());
        let runs = runs(&pages);
        for &(start, count) in &runs {
            txn.records.push(Record::Alloc { start, count });
            txn.fresh.allocated(start, count);
        }
        txn.undo.push(Undo::Alloc(runs));
        Ok(pages)
    }

    /// Frees regular pages, after checking every one of them.
    pub(crate) fn txn_free_regular(&mut self, txn: &mut TxnState, pages: &[u64]) -> Result<()> {
        self.check_usable()?;
        if pages.is_empty() {
            return Ok(());
        }
        let mut sorted = pages.to_vec();
        sorted.sort_unstable();
        for (i, &page) in sorted.iter().enumerate() {
            if i > 0 && sorted[i - 1] == page {
                return Err(MappedPageError::DoubleFree);
            }
            match self.map.classify(page) {
                PageUse::Regular => {}
                PageUse::Free => return Err(MappedPageError::DoubleFree),
                PageUse::Reserved => return Err(MappedPageError::ReservedPage),
                PageUse::OutOfBounds => return Err(MappedPageError::OutOfBounds),
                // Freed by this transaction, or by a commit not yet durable:
                // free to the caller, so a second free is a double free.
                PageUse::Internal if txn.freed.contains(&page) || self.is_waiting(page) => {
                    return Err(MappedPageError::DoubleFree)
                }
                PageUse::Internal => return Err(MappedPageError::NotAllocated { page }),
            }
        }
        self.map.retire_regular(&sorted);
        for &page in &sorted {
            // A fresh page freed again: its bytes need not be written.
            txn.buffers.remove(page);
        }
        self.touch_pages(sorted.iter().copied());
        let runs = runs(&sorted);
        txn.records.extend(
            runs.iter()
                .map(|&(start, count)| Record::Free { start, count }),
        );
        txn.undo.push(Undo::Free(runs));
        txn.freed.extend(sorted);
        Ok(())
    }

    /// Allocates `count` protected pages.
    pub(crate) fn txn_alloc_protected(
        &mut self,
        txn: &mut TxnState,
        count: u64,
    ) -> Result<Vec<u64>> {
        self.check_usable()?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let pages_needed = count
            .checked_mul(2)
            .ok_or(MappedPageError::InvalidCount { count })?;
        self.check_room(pages_needed, count)?;
        self.ensure_free_for_slots(pages_needed, count)?;
        let mut slots = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let slot = self.map.free_slot();
            let Some(&[a, b]) = self.place_pages(2, Use::Internal).as_deref() else {
                self.poisoned = true;
                return Err(MappedPageError::Unavailable);
            };
            let entry = DirEntry {
                copies: [a, b],
                state: EntryState::Fresh,
            };
            txn.note_slot(slot, DirEntry::FREE);
            txn.undo.push(Undo::Slot {
                slot,
                before: DirEntry::FREE,
                taken: [a, b],
            });
            self.map.set_entry(slot, entry);
            self.touch_slot(slot);
            txn.records.push(Record::Entry { slot, entry });
            slots.push(slot);
        }
        Ok(slots)
    }

    /// Frees protected pages and their copies, after checking every one.
    /// A write staged to one of them in this transaction is dropped.
    pub(crate) fn txn_free_protected(&mut self, txn: &mut TxnState, slots: &[u64]) -> Result<()> {
        self.check_usable()?;
        let mut sorted = slots.to_vec();
        sorted.sort_unstable();
        for (i, &slot) in sorted.iter().enumerate() {
            if i > 0 && sorted[i - 1] == slot {
                return Err(MappedPageError::DoubleFree);
            }
            self.freeable_entry(slot)?;
        }
        for &slot in &sorted {
            let Some(before) = self.map.entry(slot).copied() else {
                continue;
            };
            txn.freed.extend(before.copies);
            if let Some(staged) = txn.staged.remove(&slot) {
                txn.buffers.remove(staged.page);
                if staged.replaced.is_some() {
                    // Taken for the staging; its undo gives it back.
                    txn.freed.push(staged.page);
                }
            }
            self.txn_set_entry(txn, slot, DirEntry::FREE);
            txn.records.push(Record::Entry {
                slot,
                entry: DirEntry::FREE,
            });
        }
        Ok(())
    }

    /// Sets directory slot `slot` to `after` inside `txn`: its entry before
    /// is noted for the commit and put back by a rollback.
    pub(super) fn txn_set_entry(&mut self, txn: &mut TxnState, slot: u64, after: DirEntry) {
        let before = self.map.entry(slot).copied().unwrap_or(DirEntry::FREE);
        txn.note_slot(slot, before);
        txn.undo.push(Undo::Entry { slot, before });
        self.map.set_entry(slot, after);
        self.touch_slot(slot);
    }

    /// The page that holds `slot`'s bytes as this transaction writes them,
    /// staged first if this is the transaction's first write to it: a copy
    /// of the committed bytes (contract A3), in a page no root that may be
    /// read after a crash names.
    pub(crate) fn txn_stage_protected(&mut self, txn: &mut TxnState, slot: u64) -> Result<u64> {
        if let Some(page) = txn.staged_page(slot) {
            self.check_usable()?;
            return Ok(page);
        }
        let entry = self.live_entry(slot)?;
        self.settle_open()?;
        let (target, source) = match entry.state {
            EntryState::Active(copy) => (1 - copy, Some(entry.copies[usize::from(copy)])),
            _ => (0, None),
        };
        let mut page = entry.copies[usize::from(target)];
        let mut staged_entry = DirEntry {
            state: EntryState::Active(target),
            ..entry
        };
        let mut replaced = None;
        // The copy may also be one an unsynced root checks (Deferred mode):
        // then staging over it would fail that root.
        if self.durable_root_names(slot, page)
            || self.snapshot_names(slot, page)
            || self.is_guarded(page)
        {
            self.ensure_free(1)?;
            let fresh = self
                .place_pages(1, Use::Internal)
                .and_then(|pages| pages.first().copied())
                .ok_or(MappedPageError::Unavailable)?;
            txn.undo.push(Undo::Internal(fresh));
            staged_entry.copies[usize::from(target)] = fresh;
            replaced = Some(page);
            page = fresh;
        }
        // Held in the transaction's buffers like a fresh page, and written
        // with the rest at the commit: a page written through the map
        // before a sync costs a write fault and makes the sync write back
        // through the map as well.
        self.room_to_hold(txn)?;
        let bytes = match source {
            Some(source) => self.page_bytes(source)?,
            None => &self.zero_page,
        };
        if txn.buffers.insert(page, bytes).is_none() {
            return Err(MappedPageError::Unavailable);
        }
        txn.staged.insert(
            slot,
            Staged {
                page,
                entry: staged_entry,
                replaced,
                was_active: source,
            },
        );
        Ok(page)
    }

    /// The staged bytes of protected slot `slot`, writable, staged first
    /// if this is the transaction's first write to it.
    pub(crate) fn txn_protected_mut<'a>(
        &'a mut self,
        txn: &'a mut TxnState,
        slot: u64,
    ) -> Result<&'a mut [u8]> {
        let page = self.txn_stage_protected(txn, slot)?;
        self.held_mut(txn, page)
    }

    /// Whether the durable root names `page` as the committed copy of
    /// `slot`. Only a slot changed since the last sync can differ from the
    /// newest entry, whose committed copy is never the staging target.
    fn durable_root_names(&self, slot: u64, page: u64) -> bool {
        self.sealed_root_names(slot, page)
            || self
                .journal
                .durable_entries
                .get(&slot)
                .is_some_and(|entry| match entry.state {
                    EntryState::Active(copy) => entry.copies[usize::from(copy)] == page,
                    _ => false,
                })
    }

    /// Publishes everything `txn` did in one commit. On error the
    /// transaction is rolled back (or the pager is unavailable, see
    /// [`Core::commit`]).
    pub(crate) fn commit_txn(&mut self, txn: TxnState) -> Result<()> {
        self.placement.end_transaction();
        if txn.is_empty() {
            self.rollback_txn(txn);
            return self.check_usable();
        }
        self.check_usable()?;
        // The pages held first: a failure publishes nothing, and the pages
        // written are fresh, which no root uses.
        let mut txn = txn;
        let crcs = match self.write_held(&mut txn) {
            Ok(crcs) => crcs,
            Err(err) => {
                self.rollback_txn(txn);
                return Err(err);
            }
        };
        let subs = self.sub_page_commit(&mut txn);
        let TxnState {
            mut records,
            mut undo,
            mut freed,
            fresh,
            staged,
            mut slots_before,
            dir_len_before,
            buffers,
            sub: _,
        } = txn;
        self.keep_buffers(buffers);
        records.extend(subs.records);
        let FreshPages {
            single, written, ..
        } = fresh;
        // Only a commit that may not sync makes pages a later one can free
        // before the next sync (an `Immediate` one syncs at once); grouped
        // commits are synced by another caller, later, and their pages wait
        // for that sync as any other.
        let born = match self.durability == Durability::Deferred && !self.grouped {
            true => single
                .into_iter()
                .filter(|&page| self.map.is_regular(page))
                .collect(),
            false => Vec::new(),
        };
        let mut checked: Vec<(u64, Option<u32>)> = written
            .into_iter()
            .filter(|&page| self.map.is_regular(page))
            .map(|page| (page, crcs.get(&page).copied()))
            .collect();
        let mut stale = Vec::new();
        for (slot, staged) in staged {
            let before = self.map.entry(slot).copied().unwrap_or(DirEntry::FREE);
            slots_before.entry(slot).or_insert(before);
            undo.push(Undo::Entry { slot, before });
            self.map.set_entry(slot, staged.entry);
            self.touch_slot(slot);
            records.push(Record::Entry {
                slot,
                entry: staged.entry,
            });
            checked.push((staged.page, crcs.get(&staged.page).copied()));
            stale.extend(staged.was_active);
            freed.extend(staged.replaced);
        }
        checked.extend(subs.written.into_iter().map(|page| (page, None)));
        checked.sort_unstable();
        let change = Change {
            records,
            freed,
            written: checked,
            stale,
            slots_before: slots_before.into_iter().collect(),
            freed_sub_pages: subs.freed,
            born,
            ..Change::default()
        };
        let rollback = Rollback {
            undo,
            dir_len_before,
            whole: true,
        };
        self.commit(change, move |core| core.undo(rollback))?;
        if self.durability == Durability::Immediate {
            // A Deferred commit makes no sync; its pager shrinks at `sync`.
            self.maybe_shrink();
        }
        Ok(())
    }

    /// Undoes everything `txn` did and gives back what it grew the file by.
    pub(crate) fn rollback_txn(&mut self, mut txn: TxnState) {
        self.placement.end_transaction();
        self.keep_buffers(std::mem::take(&mut txn.buffers));
        if self.poisoned {
            return;
        }
        self.undo(Rollback {
            undo: txn.undo,
            dir_len_before: txn.dir_len_before,
            whole: true,
        });
        self.give_back_growth();
    }

    /// The page buffers the last transaction left, for a new one.
    fn take_buffers(&mut self) -> PageBuffers {
        let fresh = PageBuffers::new(self.transaction_memory);
        std::mem::replace(&mut self.idle_buffers, fresh)
    }

    /// Keeps the page buffers of a transaction that ended for the next one.
    fn keep_buffers(&mut self, buffers: PageBuffers) {
        self.idle_buffers = buffers.reuse(self.transaction_memory);
    }

    fn undo(&mut self, rollback: Rollback) {
        let pages = |runs: Vec<(u64, u64)>| {
            runs.into_iter()
                .flat_map(|(start, count)| start..start + count)
                .collect::<Vec<u64>>()
        };
        for step in rollback.undo.into_iter().rev() {
            match step {
                Undo::Alloc(runs) => self.map.unalloc_regular(&pages(runs)),
                Undo::Free(runs) => self.map.unretire_regular(&pages(runs)),
                Undo::Slot {
                    slot,
                    before,
                    taken,
                } => {
                    self.map.set_entry(slot, before);
                    self.map.release(&taken);
                }
                Undo::Entry { slot, before } => self.map.set_entry(slot, before),
                Undo::Internal(page) => self.map.release(&[page]),
                Undo::HeldSubPages(freed) => self.map.release_sub_pages(&[freed]),
            }
        }
        self.map.truncate_directory(rollback.dir_len_before);
        if rollback.whole {
            // Else the next root would record slots no commit made, past
            // the end of a file whose growth the rollback gave back.
            self.map.uncommitted_slots_gone(rollback.dir_len_before);
        }
    }

    /// Undoes what `txn` did since `mark`: a call that failed half way.
    pub(super) fn undo_to(&mut self, txn: &mut TxnState, mark: UndoMark) {
        let undo = txn.undo.split_off(mark.undo_len.min(txn.undo.len()));
        self.undo(Rollback {
            undo,
            dir_len_before: mark.directory_len,
            whole: false,
        });
    }
}

//! The commit protocol: one [`Change`] -> one atomic commit.
//!
//! A transaction (`engine/transaction.rs`) changes the in-memory [`FreeMap`], describes the
//! change as log [`Record`]s and the pages it wrote, and calls
//! [`Core::commit`]. A commit:
//!
//! 1. syncs first if regular pages were written in place through
//!    `get_mut`: write-before ordering, D3. Pages a transaction wrote are
//!    not synced first: the root lists their CRC-32C, and open rejects a
//!    root whose listed pages did not land, so a commit is one sync;
//! 2. appends the records to the log carried in the root; when the log is
//!    full, checkpoints instead: the changed leaves of the page trees and
//!    their ancestors go to fresh pages, and the log starts empty;
//! 3. writes the new root, generation + 1, into the root slot that does not
//!    hold the newest durable root, with the page checks of every page
//!    written since the last sync (in check pages when the root is full);
//! 4. syncs ([`Durability::Immediate`]), which is the commit point.
//!
//! Pages the commit stops using (replaced tree pages, freed pages) are reused
//! only once the commit is durable, so the durable root and everything it
//! references are never overwritten. `FORMAT.md` gives the argument in full.
//!
//! Before step 2 writes anything, the commit finds the pages it will take
//! (growing the file if it must). With blocks reserved as the file grows,
//! that is the only step a full disk can fail, and nothing is published
//! yet: the caller's change is undone in memory, the file is cut back to
//! what the newest root counts on, and the pager goes on at its last commit.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::engine::core::Core;
use crate::engine::page_tree::PageTree;
use crate::engine::reclaim::Reclamation;
use crate::error::{MappedPageError, Result};
use crate::format::check_list;
use crate::format::record::{DirEntry, PageCheck, Record, DIR_ENTRY_LEN};
use crate::format::root::{log_capacity, root_len, Root, FLAG_SYNCED};
use crate::format::tree_node::NodeRef;
use crate::format::{checksum, ROOT_PAGES};
use crate::options::{Durability, GROWTH_DIVISOR, MIN_GROWTH_STEP};

/// Commit-side state: the log, the page trees and what awaits durability.
#[derive(Debug)]
pub(crate) struct Journal {
    /// Generation of the newest root written.
    pub(super) generation: u64,
    /// Changes since the last checkpoint; every root carries all of them.
    pub(super) log: Vec<Record>,
    pub(super) bitmap_tree: PageTree,
    pub(super) dir_tree: PageTree,
    /// Root slot (0 or 1) of the newest root written.
    pub(super) last_slot: usize,
    /// Root slot of the newest root known durable; never overwritten.
    pub(super) durable_slot: usize,
    /// The file length, in pages, that the newest root counts on: what a
    /// failed call gives the file back to.
    pub(super) root_total: u64,
    /// Pages commits stopped using, until they may be reused.
    pub(super) reclaim: Reclamation,
    /// The checks of pages written without a sync by the commits since the
    /// durable root, for every page still in use, so that a root whose
    /// earlier unsynced pages were lost to a power loss is rejected too
    /// ("never a mix"): those not yet in check pages (each root lists them
    /// itself) and the chain of check pages written since the sync (each
    /// root names its head). A commit writes only its own checks, in the
    /// root or, when that is full, in one more check page linked to the
    /// chain: its cost does not grow with the commits before it.
    pub(super) unsynced_checks: Vec<PageCheck>,
    pub(super) chain: CheckChain,
    /// Pages the durable root checks: not to be written in place while it
    /// may be needed (see [`Core::is_guarded`]).
    pub(super) durable_checked: HashSet<u64>,
    /// Check pages of a chain a sync made unneeded: the next commit frees
    /// them (the newest root still names them until then).
    pub(super) stale_check_pages: Vec<u64>,
    /// A root was written since the last sync (which then makes it the
    /// durable one).
    pub(super) root_since_sync: bool,
    /// The entry the durable root holds, for each directory slot a commit
    /// since the last sync changed: the copy it names must not be staged
    /// over (see `engine/transaction.rs`).
    pub(super) durable_entries: HashMap<u64, DirEntry>,
}

impl Journal {
    /// The journal of a file just created: generation 1 in root slot 0,
    /// durable, with empty page trees, counting on `total` pages.
    pub(super) fn new(page_size: usize, total: u64) -> Journal {
        Journal {
            generation: 1,
            log: Vec::new(),
            bitmap_tree: PageTree::empty(page_size, 1),
            dir_tree: PageTree::empty(page_size, 1),
            last_slot: 0,
            durable_slot: 0,
            root_total: total,
            reclaim: Reclamation::default(),
            unsynced_checks: Vec::new(),
            chain: CheckChain::default(),
            durable_checked: HashSet::new(),
            stale_check_pages: Vec::new(),
            root_since_sync: false,
            durable_entries: HashMap::new(),
        }
    }

    /// The journal of a file opened at `root`, found in root slot `slot`
    /// with its trees loaded; taken as the durable root (open makes it so
    /// before the first write). The pages it checks stay guarded, and its
    /// check pages are freed by the next commit, which no longer names them.
    pub(super) fn opened(
        root: &Root,
        slot: usize,
        bitmap_tree: PageTree,
        dir_tree: PageTree,
        reclaim: Reclamation,
        checked: &[u64],
        check_pages: Vec<u64>,
    ) -> Journal {
        Journal {
            generation: root.generation,
            log: root.log.clone(),
            bitmap_tree,
            dir_tree,
            last_slot: slot,
            durable_slot: slot,
            root_total: root.total_pages,
            reclaim,
            unsynced_checks: Vec::new(),
            chain: CheckChain::default(),
            durable_checked: checked.iter().copied().collect(),
            stale_check_pages: check_pages,
            root_since_sync: false,
            durable_entries: HashMap::new(),
        }
    }
}

/// The chain of check pages written since the last sync.
#[derive(Debug, Default)]
pub(crate) struct CheckChain {
    pub(super) head: NodeRef,
    /// Checks the chain holds.
    pub(super) len: u64,
    pub(super) pages: Vec<u64>,
    /// The pages the chain's checks name.
    pub(super) checked: HashSet<u64>,
}

/// Checks past which a Deferred pager syncs before the next commit, so that
/// what open verifies stays bounded (contract T5): 2^16 pages, 256 MiB of
/// 4 KiB pages, written since the last sync.
pub(crate) const MAX_UNSYNCED_CHECKS: u64 = 1 << 16;

/// One commit's worth of change, already applied to the free map.
#[derive(Debug, Default)]
pub(crate) struct Change {
    pub(super) records: Vec<Record>,
    /// Pages the change stops using; reusable once the commit is durable.
    pub(super) freed: Vec<u64>,
    /// Pages written for this commit without a sync, ascending: the root
    /// lists their CRCs.
    pub(super) written: Vec<u64>,
    /// Pages whose earlier checks no longer describe the state (protected
    /// copies that stopped being the committed one); `freed` pages too.
    pub(super) stale: Vec<u64>,
    /// Each directory slot the change touched, with its entry before.
    pub(super) slots_before: Vec<(u64, DirEntry)>,
    /// Sync the commit whatever the durability mode.
    pub(super) force_sync: bool,
    /// Checkpoint both page trees, whether or not the log is full (a
    /// shrink: no log record or tree of its root may name a page past the
    /// new end).
    pub(super) checkpoint: bool,
}

/// `last` and `next` as one record, when they are adjacent runs of one kind.
fn merged(last: &Record, next: &Record) -> Option<Record> {
    match (*last, *next) {
        (Record::Alloc { start, count }, Record::Alloc { start: s, count: c })
            if start + count == s =>
        {
            Some(Record::Alloc {
                start,
                count: count + c,
            })
        }
        (Record::Free { start, count }, Record::Free { start: s, count: c })
            if start + count == s =>
        {
            Some(Record::Free {
                start,
                count: count + c,
            })
        }
        _ => None,
    }
}

/// Appends `record`, merging it into the last one when they are adjacent runs.
fn push_merged(log: &mut Vec<Record>, record: Record) {
    match log.last_mut() {
        Some(last) => match merged(last, &record) {
            Some(both) => *last = both,
            None => log.push(record),
        },
        None => log.push(record),
    }
}

/// The length of `log` after [`push_merged`] of each of `records`.
fn merged_len(log: &[Record], records: &[Record]) -> usize {
    let mut len = log.len();
    let mut last = log.last().copied();
    for record in records {
        last = match last.and_then(|l| merged(&l, record)) {
            Some(both) => Some(both),
            None => {
                len += 1;
                Some(*record)
            }
        };
    }
    len
}

/// Turns ascending page numbers into runs of `(start, count)`.
pub(crate) fn runs(sorted_pages: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &page in sorted_pages {
        match out.last_mut() {
            Some((start, count)) if *start + *count == page => *count += 1,
            _ => out.push((page, 1)),
        }
    }
    out
}

/// Copies the prepared bytes of `leaf` into the start of `buf`.
fn fill_leaf(leaves: &BTreeMap<u64, Vec<u8>>, leaf: u64, buf: &mut [u8]) {
    if let Some(bytes) = leaves.get(&leaf) {
        if let Some(dst) = buf.get_mut(..bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
}

impl Core {
    pub(super) fn bits_per_leaf(&self) -> u64 {
        self.page_size as u64 * 8
    }

    pub(super) fn entries_per_leaf(&self) -> u64 {
        (self.page_size / DIR_ENTRY_LEN) as u64
    }

    /// Marks the bitmap leaves holding `pages` as changed.
    pub(super) fn touch_pages(&mut self, pages: impl IntoIterator<Item = u64>) {
        let per_leaf = self.bits_per_leaf();
        let mut last = None;
        for page in pages {
            let leaf = page / per_leaf;
            if last != Some(leaf) {
                self.journal.bitmap_tree.mark_dirty(leaf);
                last = Some(leaf);
            }
        }
    }

    /// Marks the directory leaf holding `slot` as changed.
    pub(super) fn touch_slot(&mut self, slot: u64) {
        let per_leaf = self.entries_per_leaf();
        self.journal.dir_tree.mark_dirty(slot / per_leaf);
    }

    /// Makes at least `count` pages free, growing the file if needed. On
    /// error nothing in memory has changed and the file has its old length.
    pub(super) fn ensure_free(&mut self, count: u64) -> Result<()> {
        self.make_room(&|_: &Core, _: u64| count, 0)
    }

    /// [`Core::ensure_free`] for a call that also takes up to `new_slots`
    /// more directory slots: a growth leaves room for the checkpoint of the
    /// directory they lengthen too.
    pub(super) fn ensure_free_for_slots(&mut self, count: u64, new_slots: u64) -> Result<()> {
        self.make_room(&|_: &Core, _: u64| count, new_slots)
    }

    /// Whether `page` was freed by a commit and is not reusable yet: free to
    /// the caller, so freeing it again is a double free.
    pub(super) fn is_waiting(&self, page: u64) -> bool {
        self.journal.reclaim.contains(page)
    }

    /// Fails with `InvalidCount` if `pages` more pages in use could not fit
    /// in any file this pager can have (the format's page numbers, the
    /// largest file the OS and the address space allow): checked before
    /// anything is touched.
    pub(super) fn check_room(&self, pages: u64, count: u64) -> Result<()> {
        let in_use = (self.map.total_pages() - self.map.free_pages())
            .saturating_sub(self.journal.reclaim.count());
        match in_use.checked_add(pages) {
            Some(total) if total <= self.max_total_pages => Ok(()),
            _ => Err(MappedPageError::InvalidCount { count }),
        }
    }

    /// Makes `need(total)` pages free, `total` being the file's length in
    /// pages (what a checkpoint writes depends on it). Grows by a whole step
    /// (see [`Core::growth_step`]) or by what the call needs and room for a
    /// checkpoint, whichever is more, if that fits; else by the least that
    /// does. On error nothing in memory has changed and the file has its old
    /// length.
    fn make_room(&mut self, need: &dyn Fn(&Core, u64) -> u64, new_slots: u64) -> Result<()> {
        // Snapshots dropped since the last commit give their pages back.
        self.release_unpinned();
        if self.map.free_pages() < need(self, self.map.total_pages())
            && self.journal.reclaim.awaits_sync()
        {
            // Pages freed since the last sync become reusable once it is
            // made: cheaper than growing the file (Deferred mode only; in
            // Immediate mode nothing waits after a commit returns).
            self.sync_everything()?;
        }
        let total = self.map.total_pages();
        let free = self.map.free_pages();
        let wanted = need(self, total);
        if free >= wanted {
            return Ok(());
        }
        let too_large = || MappedPageError::Io(std::io::ErrorKind::FileTooLarge.into());
        // The least growth that does: more pages can make a tree taller, so
        // look for the fixed point (a few rounds at most).
        let mut grow_by = wanted - free;
        let mut rounds = 0;
        loop {
            let new_total = total
                .checked_add(grow_by)
                .filter(|&t| t <= self.max_total_pages)
                .ok_or_else(too_large)?;
            let wanted = need(self, new_total);
            if free + grow_by >= wanted {
                break;
            }
            rounds += 1;
            if rounds > 64 {
                return Err(too_large());
            }
            grow_by = wanted - free;
        }
        let minimum = total + grow_by;
        // A whole step when the call needs less; else what it needs and the
        // most one checkpoint of the grown file takes, so that the commit
        // after a large growth (a free after a bulk load) need not grow the
        // file again by a whole step.
        let least_and_checkpoint =
            grow_by.saturating_add(self.full_checkpoint_pages(minimum, new_slots));
        let mut preferred = total
            .saturating_add(self.growth_step(total).max(least_and_checkpoint))
            .min(self.max_total_pages);
        if free + (preferred - total) < need(self, preferred) {
            preferred = minimum;
        }
        self.grow_file(minimum, preferred)
    }

    /// One growth step for a file of `total` pages: an eighth of it, at
    /// least [`MIN_GROWTH_STEP`] and at most the `max_growth_step` option,
    /// which wins over the minimum (contract C1, S5).
    pub(super) fn growth_step(&self, total: u64) -> u64 {
        let min_pages = (MIN_GROWTH_STEP / self.page_size as u64).max(1);
        (total / GROWTH_DIVISOR)
            .max(min_pages)
            .min(self.max_growth_pages)
    }

    /// The most pages one checkpoint can take in a file of `total` pages
    /// and a directory up to `new_slots` slots longer: every node of both
    /// page trees rewritten.
    pub(super) fn full_checkpoint_pages(&self, total: u64, new_slots: u64) -> u64 {
        let (bitmap_leaves, dir_leaves) = self.tree_leaves(total, new_slots);
        self.journal
            .bitmap_tree
            .full_checkpoint_pages(bitmap_leaves)
            .saturating_add(self.journal.dir_tree.full_checkpoint_pages(dir_leaves))
    }

    /// Grows the file to `preferred` pages, or, if that fails, to `minimum`.
    /// The new length is durable before this returns, so a root that counts
    /// on it can be written (contract D6). A failed growth gives back what it
    /// took: the file keeps its old length.
    fn grow_file(&mut self, minimum: u64, preferred: u64) -> Result<()> {
        let page_size = self.page_size as u64;
        let mut target = preferred;
        loop {
            // Both are at most `max_total_pages`, whose bytes fit in a u64.
            let new_len = target.saturating_mul(page_size);
            match self.store.grow(new_len, self.preallocate) {
                Ok(()) => break,
                // A step that does not fit (disk full, quota, file size or
                // address space) may leave room for the least that does.
                Err(_) if target > minimum => target = minimum,
                Err(err) => return Err(err.into()),
            }
        }
        let old_len = self.map.total_pages() * page_size;
        // Everything written so far becomes durable with the new length.
        if let Err(err) = self.sync_everything() {
            let _ = self.store.give_back(old_len);
            return Err(err);
        }
        self.map.grow(target);
        Ok(())
    }

    /// After a failure that published nothing: cuts the file back to the
    /// length the newest root counts on, giving back what the failed call
    /// grew. Best effort: a file longer than its roots count on is valid.
    pub(super) fn give_back_growth(&mut self) {
        let keep = self.journal.root_total;
        if self.map.total_pages() <= keep || !self.map.can_shrink(keep) {
            return;
        }
        if self.store.give_back(keep * self.page_size as u64).is_ok() {
            self.map.shrink(keep);
            self.placement.cut(keep);
        }
    }

    /// The leaves a checkpoint gives the bitmap tree, in a file of `total`
    /// pages, and the directory tree, with `new_slots` more slots than are
    /// held now. The slots held in memory, not `dir_len`: the slots past them
    /// are free, their leaves null, and a tree sized to a long `dir_len` read
    /// from the file would take memory for leaves that hold nothing. The one
    /// count for the checkpoint and for the space reserved for it.
    pub(super) fn tree_leaves(&self, total: u64, new_slots: u64) -> (u64, u64) {
        let slots = (self.map.directory().len() as u64).saturating_add(new_slots);
        (
            total.div_ceil(self.bits_per_leaf()),
            slots.div_ceil(self.entries_per_leaf()),
        )
    }

    /// Pages a checkpoint writes, in a file of `total` pages.
    pub(super) fn checkpoint_pages(&self, total: u64) -> u64 {
        let (bitmap_leaves, dir_leaves) = self.tree_leaves(total, 0);
        self.journal.bitmap_tree.checkpoint_pages(bitmap_leaves)
            + self.journal.dir_tree.checkpoint_pages(dir_leaves)
    }

    /// Whether committing `records` now makes a checkpoint: the log would
    /// not fit in the root.
    fn will_checkpoint(&self, records: &[Record]) -> bool {
        merged_len(&self.journal.log, records) > log_capacity(self.page_size)
    }

    /// Whether `page` may not be written in place: the newest root or the
    /// durable one checks it, and a crash before a newer root not checking
    /// it is durable would find that root rejected.
    pub(super) fn is_guarded(&self, page: u64) -> bool {
        let journal = &self.journal;
        journal.durable_checked.contains(&page)
            || journal.chain.checked.contains(&page)
            || journal
                .unsynced_checks
                .iter()
                .any(|check| check.page == page)
    }

    /// Whether any page is guarded (the fast path of writes in place).
    #[inline]
    pub(super) fn any_guarded(&self) -> bool {
        let journal = &self.journal;
        !(journal.durable_checked.is_empty()
            && journal.chain.checked.is_empty()
            && journal.unsynced_checks.is_empty())
    }

    /// Makes a root that checks no page durable, so that pages earlier
    /// roots checked can be written in place (a `get_mut` outside a
    /// transaction of a page a transaction wrote). Two syncs: the first
    /// makes the pages the newest root checks durable, so the root after it
    /// need not list them.
    pub(super) fn release_guards(&mut self) -> Result<()> {
        self.sync_everything()?;
        let change = Change {
            force_sync: true,
            ..Change::default()
        };
        self.commit(change, |_| {})
    }

    /// Publishes `change` (already applied to the free map) atomically.
    ///
    /// The space the commit needs is found first. If that fails (the file
    /// cannot grow), nothing is published: `undo` reverts the caller's
    /// change in memory, the file gives back what the call grew, and the
    /// pager stays usable at its last commit. On any other I/O error the
    /// pager becomes unavailable: the file still holds the last committed
    /// state, or the new one.
    pub(super) fn commit(&mut self, change: Change, undo: impl FnOnce(&mut Core)) -> Result<()> {
        let synced = self.durability == Durability::Immediate || change.force_sync;
        if let Err(err) = self.reserve(&change) {
            if !self.poisoned {
                undo(self);
                self.give_back_growth();
            }
            return Err(err);
        }
        let result = self.try_commit(change, synced);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    /// Everything before the first write of a commit: the write-before sync
    /// and the pages a checkpoint and check pages will take.
    fn reserve(&mut self, change: &Change) -> Result<()> {
        // Regular pages written in place through the map must be durable
        // before a root that follows them can be seen (D3), and so must the
        // root open took (see `settle_open`).
        if self.data_dirty || self.open_unsettled || self.journal.chain.len > MAX_UNSYNCED_CHECKS {
            self.sync_everything()?;
        }
        let checkpoint = change.checkpoint || self.will_checkpoint(&change.records);
        let log_len = if checkpoint {
            0
        } else {
            merged_len(&self.journal.log, &change.records)
        };
        // At most this many checks go to new check pages; fewer if some
        // went stale.
        let checks = self.journal.unsynced_checks.len() + change.written.len();
        let check_pages = if log_len + checks > log_capacity(self.page_size) {
            check_list::pages_for(self.page_size, checks)
        } else {
            0
        };
        if checkpoint || check_pages > 0 {
            self.make_room(
                &|core: &Core, total: u64| {
                    let tree = if checkpoint {
                        core.checkpoint_pages(total)
                    } else {
                        0
                    };
                    tree + check_pages
                },
                0,
            )?;
        }
        Ok(())
    }

    fn try_commit(&mut self, change: Change, synced: bool) -> Result<()> {
        let Change {
            records,
            mut freed,
            written,
            stale,
            slots_before,
            force_sync: _,
            checkpoint,
        } = change;
        for record in records {
            push_merged(&mut self.journal.log, record);
        }
        let capacity = log_capacity(self.page_size);
        if checkpoint || self.journal.log.len() > capacity {
            self.checkpoint(&mut freed)?;
        }
        let mut checks = self.gather_checks(&written, &stale, &freed);
        if self.journal.log.len() + checks.len() > capacity {
            self.extend_chain(&checks)?;
            checks.clear();
            self.journal.unsynced_checks.clear();
        }
        freed.append(&mut self.journal.stale_check_pages);
        self.journal.generation += 1;
        let chain = &self.journal.chain;
        let root = Root {
            generation: self.journal.generation,
            total_pages: self.map.total_pages(),
            regular_count: self.map.regular_count(),
            bitmap: self.journal.bitmap_tree.top(),
            dir_len: self.map.dir_len(),
            directory: self.journal.dir_tree.top(),
            flags: if synced { FLAG_SYNCED } else { 0 },
            log: self.journal.log.clone(),
            checks,
            check_pages: chain.head,
            check_pages_len: chain.len,
        };
        // Only the root's own bytes, at most one OS page: a kill cannot tear
        // that write, and an unsynced commit rewrites the one slot that
        // holds the newest commits that returned (see `FORMAT.md`).
        let mut page = vec![0u8; root_len(self.page_size)];
        root.encode_area(self.page_size, &mut page);
        let slot = 1 - self.journal.durable_slot;
        self.store
            .write_at(ROOT_PAGES[slot] * self.page_size as u64, &page)?;
        self.journal.last_slot = slot;
        self.journal.root_since_sync = true;
        self.journal.root_total = root.total_pages;
        let generation = self.journal.generation;
        self.journal.reclaim.freed(generation, freed);
        for (slot, before) in slots_before {
            self.journal.durable_entries.entry(slot).or_insert(before);
        }
        if synced {
            self.sync_everything()?;
        }
        Ok(())
    }

    /// The checks the new root lists itself: those of earlier unsynced
    /// commits not yet in check pages that still describe the state, and
    /// the pages this commit wrote.
    fn gather_checks(&mut self, written: &[u64], stale: &[u64], freed: &[u64]) -> Vec<PageCheck> {
        let checks = &mut self.journal.unsynced_checks;
        if !checks.is_empty() {
            let mut gone: Vec<u64> = stale.iter().chain(freed).copied().collect();
            gone.sort_unstable();
            checks.retain(|check| gone.binary_search(&check.page).is_err());
        }
        let bytes = self.store.bytes();
        let page_size = self.page_size;
        checks.extend(written.iter().map(|&page| {
            let start = page as usize * page_size;
            PageCheck {
                page,
                crc: checksum(bytes.get(start..start + page_size).unwrap_or_default()),
            }
        }));
        checks.clone()
    }

    /// Writes `checks` to new check pages (room was made by
    /// [`Core::reserve`]) linked in front of the chain, last page first so
    /// that each page can hold the CRC of the one after it.
    fn extend_chain(&mut self, checks: &[PageCheck]) -> Result<()> {
        let per_page = check_list::checks_per_page(self.page_size);
        let chunks: Vec<&[PageCheck]> = checks.chunks(per_page).collect();
        let mut pages = Vec::with_capacity(chunks.len());
        for _ in &chunks {
            pages.push(
                self.map
                    .alloc_internal()
                    .ok_or(MappedPageError::Unavailable)?,
            );
        }
        let mut next = self.journal.chain.head;
        let mut buf = vec![0u8; self.page_size];
        for (chunk, &page) in chunks.iter().zip(&pages).rev() {
            check_list::encode(&mut buf, chunk, next);
            self.store.write_at(page * self.page_size as u64, &buf)?;
            next = NodeRef::to_page(page, &buf);
        }
        let chain = &mut self.journal.chain;
        chain.head = next;
        chain.len += checks.len() as u64;
        chain.pages.extend(pages);
        chain.checked.extend(checks.iter().map(|check| check.page));
        Ok(())
    }

    /// Makes the root `open` took durable, once, before the first write to
    /// the file. Open may have found that root only in the page cache (a
    /// process crash before its commit synced); until it is durable the
    /// older root in the other slot is the only durable one, and writing over
    /// pages it uses, or over that slot, could leave a power loss with
    /// neither. The pages open believes free include pages that older root
    /// still uses (its frees were waiting for durability in the process that
    /// crashed), and a protected page's uncommitted copy may be its committed
    /// one. So every path that writes the file calls this first: a commit
    /// (through `reserve`), a growth (its sync), and a staged protected write.
    pub(super) fn settle_open(&mut self) -> Result<()> {
        if self.open_unsettled {
            self.sync_everything()?;
        }
        Ok(())
    }

    /// One sync: everything written so far, the newest root included, is
    /// durable afterwards, so what waited for durability is released.
    /// A failed sync leaves the page cache in an unknown state, so the pager
    /// becomes unavailable (reopening reads what the disk really holds).
    pub(super) fn sync_everything(&mut self) -> Result<()> {
        if let Err(err) = self.store.sync() {
            self.poisoned = true;
            return Err(err.into());
        }
        self.data_dirty = false;
        self.open_unsettled = false;
        // The newest root is durable now: what it checks is guarded until a
        // newer durable root does not, and the chain starts over.
        let journal = &mut self.journal;
        if std::mem::take(&mut journal.root_since_sync) {
            journal.durable_checked = std::mem::take(&mut journal.chain.checked);
            journal
                .durable_checked
                .extend(journal.unsynced_checks.drain(..).map(|check| check.page));
            journal.stale_check_pages.append(&mut journal.chain.pages);
            journal.chain = CheckChain::default();
        }
        journal.durable_entries.clear();
        self.journal.durable_slot = self.journal.last_slot;
        let journal = &mut self.journal;
        // A page freed while check pages list it (Deferred mode) is still
        // checked by the root now durable: reusable only once a root that
        // does not check it is durable.
        let checked = &journal.durable_checked;
        journal.reclaim.synced(|page| checked.contains(&page));
        self.release_unpinned();
        Ok(())
    }

    /// Writes the changed leaves of both page trees, and their ancestors, to
    /// fresh pages and empties the log.
    /// [`Core::reserve`] made room for every page it takes.
    fn checkpoint(&mut self, freed: &mut Vec<u64>) -> Result<()> {
        let words_per_leaf = self.page_size / 8;
        let bitmap_leaves: BTreeMap<u64, Vec<u8>> = self
            .journal
            .bitmap_tree
            .dirty_leaves()
            .map(|leaf| {
                let words = self.map.regular_bits().words();
                let start = (leaf as usize)
                    .saturating_mul(words_per_leaf)
                    .min(words.len());
                let end = start.saturating_add(words_per_leaf).min(words.len());
                let bytes = words[start..end]
                    .iter()
                    .flat_map(|w| w.to_le_bytes())
                    .collect();
                (leaf, bytes)
            })
            .collect();
        let per_leaf = self.entries_per_leaf() as usize;
        let dir_leaves: BTreeMap<u64, Vec<u8>> = self
            .journal
            .dir_tree
            .dirty_leaves()
            .map(|leaf| {
                let entries = self.map.directory();
                let start = (leaf as usize).saturating_mul(per_leaf).min(entries.len());
                let end = start.saturating_add(per_leaf).min(entries.len());
                let mut bytes = vec![0u8; (end - start) * DIR_ENTRY_LEN];
                for (i, entry) in entries[start..end].iter().enumerate() {
                    entry.encode(&mut bytes[i * DIR_ENTRY_LEN..(i + 1) * DIR_ENTRY_LEN]);
                }
                (leaf, bytes)
            })
            .collect();

        let (bitmap_leaf_count, dir_leaf_count) = self.tree_leaves(self.map.total_pages(), 0);
        let mut writes = Vec::new();
        let map = &mut self.map;
        let mut alloc = || map.alloc_internal().ok_or(MappedPageError::Unavailable);
        self.journal.bitmap_tree.checkpoint(
            bitmap_leaf_count,
            |leaf, buf| fill_leaf(&bitmap_leaves, leaf, buf),
            &mut alloc,
            &mut writes,
            freed,
        )?;
        self.journal.dir_tree.checkpoint(
            dir_leaf_count,
            |leaf, buf| fill_leaf(&dir_leaves, leaf, buf),
            &mut alloc,
            &mut writes,
            freed,
        )?;
        for write in writes {
            self.store
                .write_at(write.page * self.page_size as u64, &write.bytes)?;
        }
        self.journal.log.clear();
        Ok(())
    }
}

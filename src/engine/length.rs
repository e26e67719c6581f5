//! The file's length: the one place that decides it. A file grows when a
//! commit needs more free pages than it has (by a step of an eighth of the
//! file, between [`crate::MIN_GROWTH_STEP`] and the `max_growth_step`
//! option, contract C1, S5), gives back what a failed call grew, and
//! shrinks when its free tail is cut off (contract C2): on request
//! ([`crate::Pager::shrink`]) and, past a threshold, after a commit.
//!
//! # Growth
//! A growth reserves the new blocks (where the platform can), maps the
//! longer file and makes the new length durable before any root counts on
//! it (contract D6). A call that fails after growing gives the growth back:
//! the file keeps the length the newest root counts on.
//!
//! # Shrink
//! What an engine needs to move its highest pages down so that the tail
//! frees up (`Transaction::relocate`, `iter_allocated_pages().rev()`). The
//! pager moves its own pages down itself: protected copies (placed beside a
//! transaction's pages, so possibly high) and page-tree pages, before it
//! computes the tail.
//!
//! # Why a cut is crash-safe
//! A shrink is a commit whose root counts on fewer pages, followed by the
//! cut. The commit checkpoints both page trees (so neither the log nor a
//! tree of the new root names a page past the new end) into pages below the
//! new end, and is synced whatever the durability mode; only once that root
//! is durable is the file cut. A crash before that sync leaves the old root,
//! and a file as long as it counts on; a crash after it leaves the new root,
//! and a file at least as long as it counts on (longer if the cut did not
//! happen yet), which open accepts.

use std::collections::BTreeMap;

use crate::engine::core::Core;
use crate::engine::journal::Change;
use crate::engine::limits::{GROWTH_DIVISOR, MIN_FILE_PAGES, MIN_GROWTH_STEP};
use crate::error::{MappedPageError, Result};
use crate::format::record::Record;
use crate::format::FIRST_DATA_PAGE;

impl Core {
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
    pub(super) fn make_room(
        &mut self,
        need: &dyn Fn(&Core, u64) -> u64,
        new_slots: u64,
    ) -> Result<()> {
        // Snapshots dropped since the last commit give their pages back.
        self.release_unpinned();
        let short = need(self, self.map.total_pages()).saturating_sub(self.map.free_pages());
        if short > 0 && self.sync_makes_room(short) {
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

    /// Whether a sync is how to find `short` more free pages: it makes the
    /// pages freed since the last sync reusable (Deferred mode only; in
    /// Immediate mode nothing waits after a commit returns). A growth syncs
    /// too, so a sync is the better buy only when enough pages wait: one
    /// that frees a handful buys a handful of commits before the next
    /// (four-page commits in a file with 20 free pages synced every third
    /// commit so). Past an eighth of a growth step (or what the call needs, if
    /// more) a sync; else the file grows, once: by the time its step is
    /// used, a step's worth of pages waits for the sync after.
    fn sync_makes_room(&self, short: u64) -> bool {
        let worth = (self.growth_step(self.map.total_pages()) / GROWTH_DIVISOR).max(short);
        self.journal.reclaim.awaiting_sync_count() >= worth
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
        // A directory of `n` slots needs a file of `n` pages.
        let keep = self.journal.root_total.max(self.map.dir_len());
        if self.map.total_pages() <= keep || !self.map.can_shrink(keep) {
            return;
        }
        if self.store.give_back(keep * self.page_size as u64).is_ok() {
            self.map.shrink(keep);
            self.placement.cut(keep);
        }
    }

    /// The first page of the free tail: every page from it to the end of
    /// the file is free, and it is as low as the format allows (a directory
    /// of `n` slots needs a file of `n` pages).
    fn tail_start(&self) -> u64 {
        let used_end = self
            .map
            .last_used()
            .map_or(FIRST_DATA_PAGE, |page| page + 1);
        used_end.max(MIN_FILE_PAGES).max(self.map.dir_len())
    }

    /// Commits the whole state with both page trees written anew into free
    /// pages (growing the file if too few are free), synced in every mode.
    pub(super) fn commit_trees_whole(&mut self) -> Result<()> {
        let (bitmap_leaves, dir_leaves) = self.tree_leaves(self.map.total_pages(), 0);
        self.journal
            .bitmap_tree
            .mark_dirty_range(0, bitmap_leaves.saturating_sub(1));
        if dir_leaves > 0 {
            self.journal.dir_tree.mark_dirty_range(0, dir_leaves - 1);
        }
        let change = Change {
            force_sync: true,
            checkpoint: true,
            ..Change::default()
        };
        self.commit(change, |_| {})
    }

    /// Whether the last page in use holds metadata of the pager's own (a
    /// page-tree or check page), not a caller's page or a protected copy.
    fn trees_at_the_end(&self) -> bool {
        let Some(last) = self.map.last_used() else {
            return false;
        };
        let protected_copy = || {
            self.map
                .directory()
                .iter()
                .any(|entry| entry.pages().contains(&last))
        };
        !self.map.is_regular(last) && !self.is_waiting(last) && !protected_copy()
    }

    /// Whether the free pages below the free tail can hold both trees
    /// rewritten whole (else rewriting them would only grow the file).
    fn room_below_for_trees(&self) -> bool {
        let free_below = self.map.free_pages().saturating_sub(self.free_tail());
        free_below >= self.full_checkpoint_pages(self.map.total_pages(), 0)
    }

    /// Pages at the end of the file that a shrink could give back now.
    pub(super) fn free_tail(&self) -> u64 {
        self.map.total_pages().saturating_sub(self.tail_start())
    }

    /// Cuts the free tail off the file, keeping `slack` free pages past the
    /// last page in use, and returns how many pages were given back. Moving
    /// the page trees down can open a hole below them that a second round
    /// gives back too; a few rounds at most.
    pub(crate) fn shrink(&mut self, slack: u64, floor: u64) -> Result<u64> {
        let before = self.map.total_pages();
        for _ in 0..3 {
            if !self.shrink_round(slack, floor)? {
                break;
            }
        }
        self.cut_past_counted_pages();
        Ok(before.saturating_sub(self.map.total_pages()))
    }

    /// Cuts the bytes past the pages the pager counts on, which a file can
    /// hold with no tail to give back: after a cut that failed, or one a
    /// snapshot's view deferred (where a mapped file cannot be cut) and the
    /// pager closed before it was made, or after a crash that followed a
    /// growth. Never below the newest durable root's pages.
    fn cut_past_counted_pages(&mut self) {
        let page_size = self.page_size as u64;
        let counted = self.map.total_pages().max(self.journal.root_total) * page_size;
        if self.store.file_len() > counted {
            // Best effort, as every cut: a longer file is valid.
            let _ = self.store.give_back(counted);
        }
    }

    /// One round of [`Core::shrink`]; whether it gave back pages.
    fn shrink_round(&mut self, slack: u64, floor: u64) -> Result<bool> {
        self.check_usable()?;
        self.settle_open()?;
        if self.journal.reclaim.awaits_sync() {
            // Pages freed since the last sync are still in use until it.
            self.sync_everything()?;
        }
        // And those held for snapshots dropped since.
        self.release_unpinned();
        self.move_protected_down()?;
        if self.trees_at_the_end() && self.room_below_for_trees() {
            // The last checkpoint put page-tree pages at the end (when it
            // had no lower page free): rewrite both trees whole into the
            // lowest free pages first, so that they do not hold the tail.
            self.commit_trees_whole()?;
        }
        let total = self.map.total_pages();
        // Readers in other processes read as far as their states count.
        let keep = self
            .shrink_end(slack)
            .max(floor)
            .max(self.process_readers_pages());
        if keep >= total || !self.map.shrink(keep) {
            return Ok(false);
        }
        self.placement.cut(keep);
        let change = Change {
            force_sync: true,
            checkpoint: true,
            ..Change::default()
        };
        self.commit(change, |core| core.map.grow(total))?;
        // The durable root counts on `root_total` pages: never cut below
        // it. It is `keep` unless the checkpoint needed more room than was
        // computed and grew the file back (then nothing below its end is
        // free to give: the next shrink finds the tail again).
        let end = self.journal.root_total.max(keep);
        if end >= total {
            return Ok(false);
        }
        // That root is durable: cut. A cut that fails leaves the file longer
        // than the root counts on, which is valid; the next growth finds the
        // length it needs.
        let _ = self
            .store
            .give_back(end.saturating_mul(self.page_size as u64));
        Ok(true)
    }

    /// The end a shrink cuts the file at: the free tail's start and `slack`
    /// free pages, and as many more free pages as the shrink's checkpoint
    /// needs beyond the free pages below that. The checkpoint's size depends
    /// on the end (an end past a bitmap leaf, or past the leaves one tree
    /// node covers, adds nodes), so the two are computed together until they
    /// agree; the end only grows, and the tree's size with it, so this stops.
    fn shrink_end(&self, slack: u64) -> u64 {
        let total = self.map.total_pages();
        let base = self.tail_start().saturating_add(slack).min(total);
        // Free pages below `base`: every page from `base` on is free.
        let free_below = self.map.free_pages().saturating_sub(total - base);
        let mut keep = base;
        loop {
            let need = self.checkpoint_pages(keep);
            let next = base.saturating_add(need.saturating_sub(free_below));
            if next <= keep {
                return keep;
            }
            keep = next;
        }
    }

    /// Moves the copies of protected pages that lie past every page the
    /// pager cannot move (regular pages, and pages waiting to be reused)
    /// down to the lowest free pages, in one synced commit. A transaction
    /// places a staged copy beside the pages it wrote, which can be high in
    /// the file, and such a copy would keep the free space behind it. The
    /// active copy's bytes are copied to its new page, checked by the
    /// commit's root like any staged copy; the inactive copy's bytes are
    /// never read, so it only gets a new page. The old pages are freed by
    /// the commit: a snapshot that still reads them keeps them until it is
    /// gone.
    fn move_protected_down(&mut self) -> Result<()> {
        let total = self.map.total_pages();
        let last_regular = self.map.regular_bits().prev_one(total);
        let last_waiting = self.journal.reclaim.pages().max();
        let fixed_end = last_regular.max(last_waiting).map_or(0, |page| page + 1);
        let mut copies: Vec<(u64, u64, usize)> = self
            .map
            .directory()
            .iter()
            .enumerate()
            .flat_map(|(slot, entry)| {
                entry
                    .pages()
                    .iter()
                    .enumerate()
                    .map(move |(which, &page)| (page, slot as u64, which))
            })
            .filter(|&(page, _, _)| page >= fixed_end)
            .collect();
        // Highest first, each to the lowest free page while that is lower.
        copies.sort_unstable_by(|a, b| b.cmp(a));
        let mut moved = BTreeMap::new();
        let mut taken = Vec::new();
        let mut freed = Vec::new();
        let mut written = Vec::new();
        for (page, slot, which) in copies {
            let Some(low) = self.map.lowest_free().filter(|&low| low < page) else {
                break;
            };
            let Some(&before) = self.map.entry(slot) else {
                continue;
            };
            let (_, entry) = moved.entry(slot).or_insert((before, before));
            if entry.holds_bytes(which) {
                let (from, to) = (self.page_range(page), self.page_range(low).start);
                if !self.store.copy_within(from, to) {
                    self.map.release(&taken);
                    return Err(MappedPageError::OutOfBounds);
                }
                written.push((low, None));
            }
            self.map.take_internal(low);
            taken.push(low);
            entry.copies[which] = low;
            freed.push(page);
        }
        if moved.is_empty() {
            return Ok(());
        }
        let mut records = Vec::with_capacity(moved.len());
        let mut slots_before = Vec::with_capacity(moved.len());
        for (&slot, &(before, after)) in &moved {
            self.map.set_entry(slot, after);
            self.touch_slot(slot);
            records.push(Record::Entry { slot, entry: after });
            slots_before.push((slot, before));
        }
        written.sort_unstable();
        let change = Change {
            records,
            freed,
            written,
            slots_before: slots_before.clone(),
            force_sync: true,
            ..Change::default()
        };
        self.commit(change, |core| {
            for (slot, before) in slots_before {
                core.map.set_entry(slot, before);
            }
            core.map.release(&taken);
        })
    }

    /// After a commit: cuts the free tail if it passed the threshold the
    /// pager was opened with, keeping a growth step of slack so that a file
    /// that grows again soon does not grow at once, and never below the
    /// initial size the pager was opened with (a file made large on purpose
    /// stays so). Best effort: a shrink that cannot be made leaves the file
    /// as it is.
    pub(super) fn maybe_shrink(&mut self) {
        let Some(threshold_pages) = self.shrink_threshold_pages else {
            return;
        };
        let total = self.map.total_pages();
        let tail = self.free_tail();
        if tail <= threshold_pages.max(total / 4) || total <= self.initial_pages {
            return;
        }
        // The step a file of the size left would grow by.
        let slack = self.growth_step(total - tail);
        let _ = self.shrink(slack, self.initial_pages);
    }
}

//! Free-space tracking: which pages are regular, internal or free, and which
//! protected-directory slots are in use. Pure bookkeeping, no I/O.
//!
//! Memory: two bits per page (`used`, `regular`) plus a summary of one bit per
//! 64 pages, and one entry per protected slot up to the last one in use.

use crate::engine::bitmap::{BitVec, SummaryBitVec};
use crate::engine::page_tree::LoadFault;
use crate::engine::sub_slots::{FreedSubPages, SubSlots};
use crate::error::MappedPageError;
use crate::format::record::DirEntry;
use crate::format::FIRST_DATA_PAGE;

/// How a page is used, as far as a caller's id is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PageUse {
    /// Superblock or metadata root.
    Reserved,
    /// Past the end of the file.
    OutOfBounds,
    /// Allocated regular page.
    Regular,
    /// Used by the pager itself (page trees, protected copies) or waiting for
    /// the commit that freed it to become durable.
    Internal,
    /// Free.
    Free,
}

/// The error for a page id that names no allocated regular page in a file
/// of `total_pages` pages: the one rule behind every read or write of a
/// regular page, the pager's, a transaction's and a snapshot's.
#[cold]
pub(crate) fn not_regular(page: u64, total_pages: u64) -> MappedPageError {
    if page < FIRST_DATA_PAGE {
        MappedPageError::ReservedPage
    } else if page >= total_pages {
        MappedPageError::OutOfBounds
    } else {
        MappedPageError::NotAllocated { page }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct FreeMap {
    /// One bit per page: not available for allocation.
    used: SummaryBitVec,
    /// One bit per page: an allocated regular page.
    regular: BitVec,
    regular_count: u64,
    /// The protected-page directory, one entry per slot, up to the last slot
    /// in use (or beyond); slots from here to `dir_len` are free.
    directory: Vec<DirEntry>,
    /// The directory's length as the roots record it. Never shrinks below
    /// what a root recorded, so the trees and logs of earlier roots stay in
    /// range (slots a transaction grew and then undid go away with it).
    /// Read from a file, it sizes no memory: a file may claim many slots it
    /// never used.
    dir_len: u64,
    /// One bit per entry of `directory`: in use.
    slots: SummaryBitVec,
    /// The parents with a sub-page to give, and the sub-pages held.
    subs: SubSlots,
}

impl FreeMap {
    /// The map of a new file of `total_pages` pages with nothing allocated.
    pub(super) fn new(total_pages: u64) -> FreeMap {
        let mut used = SummaryBitVec::new(total_pages);
        for page in 0..FIRST_DATA_PAGE.min(total_pages) {
            used.set(page);
        }
        FreeMap {
            used,
            regular: BitVec::new(total_pages),
            regular_count: 0,
            directory: Vec::new(),
            dir_len: 0,
            slots: SummaryBitVec::new(0),
            subs: SubSlots::default(),
        }
    }

    /// Builds the map from loaded state: `directory` holds the first slots
    /// of a directory of `dir_len` (the rest are free). `internal` lists every
    /// page the pager uses itself; returns `Err` if two owners claim one page.
    pub(super) fn from_parts(
        regular: BitVec,
        directory: Vec<DirEntry>,
        dir_len: u64,
        internal: impl IntoIterator<Item = u64>,
    ) -> Result<FreeMap, LoadFault> {
        let total = regular.len();
        if (0..FIRST_DATA_PAGE).any(|p| regular.get(p)) {
            return Err("a reserved page is marked allocated".into());
        }
        if directory.len() as u64 > dir_len {
            return Err("directory entry past its length".into());
        }
        let mut regular_count = 0u64;
        let mut used_words = Vec::new();
        used_words
            .try_reserve_exact(regular.words().len())
            .map_err(|_| LoadFault::NoMemory)?;
        used_words.extend(regular.words().iter().map(|&w| {
            regular_count += u64::from(w.count_ones());
            w
        }));
        let mut used = SummaryBitVec::from_words(used_words, total).ok_or(LoadFault::NoMemory)?;
        for page in 0..FIRST_DATA_PAGE.min(total) {
            used.set(page);
        }
        let copies = directory.iter().flat_map(|e| e.pages().iter().copied());
        for page in internal.into_iter().chain(copies) {
            if page < FIRST_DATA_PAGE || page >= total {
                return Err("an internal page is out of range".into());
            }
            if !used.set(page) {
                return Err("a page has two owners".into());
            }
        }
        let mut slots = SummaryBitVec::new(directory.len() as u64);
        let mut subs = SubSlots::default();
        for (slot, entry) in directory.iter().enumerate() {
            if entry.in_use() {
                slots.set(slot as u64);
            }
            subs.changed(slot as u64, &DirEntry::FREE, entry);
        }
        Ok(FreeMap {
            used,
            regular,
            regular_count,
            directory,
            dir_len,
            slots,
            subs,
        })
    }

    pub(super) fn total_pages(&self) -> u64 {
        self.used.len()
    }

    /// The lowest free page, if any: the next one an allocation takes.
    pub(super) fn lowest_free(&self) -> Option<u64> {
        self.used.first_zero()
    }

    /// The highest page in use (allocated, internal or waiting to be
    /// reused), if any; its cost grows with the free run at the end.
    pub(super) fn last_used(&self) -> Option<u64> {
        self.used.last_one()
    }

    pub(crate) fn free_pages(&self) -> u64 {
        self.used.zeros()
    }

    pub(crate) fn regular_count(&self) -> u64 {
        self.regular_count
    }

    pub(super) fn regular_bits(&self) -> &BitVec {
        &self.regular
    }

    pub(crate) fn directory(&self) -> &[DirEntry] {
        &self.directory
    }

    pub(super) fn entry(&self, slot: u64) -> Option<&DirEntry> {
        usize::try_from(slot)
            .ok()
            .and_then(|s| self.directory.get(s))
    }

    /// Extends the file to `total_pages` pages, all new ones free.
    pub(super) fn grow(&mut self, total_pages: u64) {
        self.used.grow(total_pages);
        self.regular.grow(total_pages);
    }

    /// Whether the file can be cut back to `total_pages` pages: every page
    /// past that is free (a growth no commit counted on).
    pub(super) fn can_shrink(&self, total_pages: u64) -> bool {
        total_pages >= FIRST_DATA_PAGE
            && total_pages <= self.total_pages()
            && (total_pages..self.total_pages()).all(|page| !self.used.get(page))
            && self.directory.len() as u64 <= total_pages
    }

    /// Cuts the file back to `total_pages` pages (see [`FreeMap::can_shrink`]).
    /// Returns false, changing nothing, if it cannot be.
    pub(super) fn shrink(&mut self, total_pages: u64) -> bool {
        if !self.can_shrink(total_pages) {
            return false;
        }
        self.used.truncate(total_pages);
        self.regular.truncate(total_pages);
        true
    }

    pub(crate) fn classify(&self, page: u64) -> PageUse {
        if page < FIRST_DATA_PAGE {
            PageUse::Reserved
        } else if page >= self.total_pages() {
            PageUse::OutOfBounds
        } else if self.regular.get(page) {
            PageUse::Regular
        } else if self.used.get(page) {
            PageUse::Internal
        } else {
            PageUse::Free
        }
    }

    /// Whether `page` is an allocated regular page (the check behind `get`).
    #[inline]
    pub(super) fn is_regular(&self, page: u64) -> bool {
        self.regular.get(page)
    }

    /// `Ok` for an allocated regular page, else the error that says why not.
    #[inline]
    pub(crate) fn check_regular(&self, page: u64) -> Result<(), MappedPageError> {
        if self.is_regular(page) {
            Ok(())
        } else {
            Err(not_regular(page, self.total_pages()))
        }
    }

    /// Allocates the `count` lowest free pages as regular pages, or `None`
    /// (changing nothing) if fewer are free.
    pub(super) fn alloc_regular(&mut self, count: u64) -> Option<Vec<u64>> {
        let pages = self.used.take_lowest_zeros(count)?;
        for &page in &pages {
            self.regular.set(page, true);
        }
        self.regular_count += count;
        Some(pages)
    }

    /// Undoes [`FreeMap::alloc_regular`]: the pages are free again.
    pub(super) fn unalloc_regular(&mut self, pages: &[u64]) {
        for &page in pages {
            if self.regular.get(page) {
                self.regular.set(page, false);
                self.regular_count -= 1;
                self.used.clear(page);
            }
        }
    }

    /// Undoes [`FreeMap::retire_regular`]: the pages are allocated again.
    pub(super) fn unretire_regular(&mut self, pages: &[u64]) {
        for &page in pages {
            if !self.regular.get(page) && self.used.get(page) {
                self.regular.set(page, true);
                self.regular_count += 1;
            }
        }
    }

    /// Whether `page` is free for allocation.
    pub(super) fn is_free(&self, page: u64) -> bool {
        page < self.total_pages() && !self.used.get(page)
    }

    /// The lowest start of `len` free pages in a row (1 to 64), looked for
    /// in `max_words` words of 64 pages from the lowest free page, and else
    /// in the free pages at the end of the file.
    pub(super) fn free_run(&self, len: u64, max_words: usize) -> Option<u64> {
        self.used.first_zero_run(len, max_words).or_else(|| {
            let tail = self.used.last_one().map_or(0, |last| last + 1);
            (self.total_pages().saturating_sub(tail) >= len).then_some(tail)
        })
    }

    /// Takes free `page` for the pager's own use; false if it is not free
    /// (or past the end).
    pub(super) fn take_internal(&mut self, page: u64) -> bool {
        self.used.set(page)
    }

    /// Takes free `page` as a regular page; false if it is not free.
    pub(super) fn take_regular(&mut self, page: u64) -> bool {
        if !self.take_internal(page) {
            return false;
        }
        self.regular.set(page, true);
        self.regular_count += 1;
        true
    }

    /// Allocates one free page for the pager's own use.
    pub(super) fn alloc_internal(&mut self) -> Option<u64> {
        let page = self.used.first_zero()?;
        self.used.set(page);
        Some(page)
    }

    /// Turns allocated regular pages into internal ones: no longer visible,
    /// not yet reusable (see [`FreeMap::release`]).
    pub(super) fn retire_regular(&mut self, pages: &[u64]) {
        for &page in pages {
            if self.regular.get(page) {
                self.regular.set(page, false);
                self.regular_count -= 1;
            }
        }
    }

    /// Takes those of `pages` that are free out of allocation, as internal
    /// pages, and returns them: pages a root still checks although no
    /// commit uses them any more (see `Core::open`).
    pub(super) fn withhold(&mut self, pages: &[u64]) -> Vec<u64> {
        pages
            .iter()
            .copied()
            .filter(|&page| self.take_internal(page))
            .collect()
    }

    /// Makes internal pages free for allocation again.
    pub(super) fn release(&mut self, pages: &[u64]) {
        for &page in pages {
            if !self.regular.get(page) {
                self.used.clear(page);
            }
        }
    }

    /// The lowest free directory slot, growing the directory if all are in use.
    /// Slots past `directory` are all free, so the lowest is the same whether
    /// or not they are held in memory.
    pub(super) fn free_slot(&mut self) -> u64 {
        match self.slots.first_zero() {
            Some(slot) => slot,
            None => {
                let slot = self.directory.len() as u64;
                self.directory.push(DirEntry::FREE);
                self.slots.grow(slot + 1);
                self.dir_len = self.dir_len.max(slot + 1);
                slot
            }
        }
    }

    /// Cuts the directory back to `len` slots (the undo of
    /// [`FreeMap::free_slot`]); the slots cut must be free.
    pub(super) fn truncate_directory(&mut self, len: u64) {
        let Ok(keep) = usize::try_from(len) else {
            return;
        };
        if keep < self.directory.len() && self.directory[keep..].iter().all(|e| !e.in_use()) {
            self.directory.truncate(keep);
            self.slots.truncate(len);
        }
    }

    /// After a whole transaction was undone: the directory's length goes
    /// back to `committed`, the length the newest root records, if the
    /// slots past it are gone (the only time it shrinks: no root names
    /// those slots).
    pub(super) fn uncommitted_slots_gone(&mut self, committed: u64) {
        if self.directory.len() as u64 <= committed {
            self.dir_len = self.dir_len.min(committed);
        }
    }

    /// Sets directory slot `slot` (which must exist) to `entry`.
    pub(super) fn set_entry(&mut self, slot: u64, entry: DirEntry) {
        if let Some(e) = usize::try_from(slot)
            .ok()
            .and_then(|s| self.directory.get_mut(s))
        {
            let before = std::mem::replace(e, entry);
            self.subs.changed(slot, &before, &entry);
            if entry.in_use() {
                self.slots.set(slot);
            } else {
                self.slots.clear(slot);
            }
        }
    }

    pub(super) fn dir_len(&self) -> u64 {
        self.dir_len
    }

    /// The sub-pages of the parent in directory slot `slot` that may be
    /// handed out (none if it holds no parent).
    pub(super) fn sub_pages_available(&self, slot: u64) -> u64 {
        self.entry(slot)
            .map_or(0, |entry| self.subs.available(slot, entry))
    }

    /// Whether any directory slot holds a sub-page parent.
    pub(super) fn has_sub_pages(&self) -> bool {
        self.subs.any_parent()
    }

    /// The directory slots of parents cut `1 << shift` ways with a sub-page
    /// to give, lowest first.
    pub(super) fn open_parents(&self, shift: u8) -> impl Iterator<Item = u64> + '_ {
        self.subs.open_parents(shift)
    }

    /// Holds sub-pages of the parent in `slot` that a commit frees, until
    /// [`FreeMap::release_sub_pages`].
    pub(super) fn hold_sub_pages(&mut self, freed: &FreedSubPages) {
        let entry = usize::try_from(freed.slot)
            .ok()
            .and_then(|s| self.directory.get(s));
        self.subs.hold(freed, entry);
    }

    /// Makes held sub-pages reusable.
    pub(super) fn release_sub_pages(&mut self, freed: &[FreedSubPages]) {
        for one in freed {
            let entry = usize::try_from(one.slot)
                .ok()
                .and_then(|s| self.directory.get(s));
            self.subs.release(one, entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_pages_are_never_handed_out_and_release_recycles() {
        let mut map = FreeMap::new(8);
        assert_eq!(map.free_pages(), 5);
        assert_eq!(map.alloc_regular(2), Some(vec![3, 4]));
        assert_eq!(map.alloc_internal(), Some(5));
        assert_eq!(map.classify(4), PageUse::Regular);
        assert_eq!(map.classify(5), PageUse::Internal);
        assert_eq!(map.classify(1), PageUse::Reserved);
        assert_eq!(map.classify(8), PageUse::OutOfBounds);
        map.retire_regular(&[3]);
        assert_eq!(map.classify(3), PageUse::Internal);
        assert_eq!(map.alloc_regular(3), None);
        map.release(&[3]);
        assert_eq!(map.alloc_regular(3), Some(vec![3, 6, 7]));
        map.grow(10);
        assert_eq!(map.alloc_regular(2), Some(vec![8, 9]));

        // Undo: what was allocated is free again, what was freed is back.
        map.unalloc_regular(&[8, 9]);
        map.retire_regular(&[4]);
        map.unretire_regular(&[4]);
        assert_eq!(
            (map.classify(4), map.classify(9)),
            (PageUse::Regular, PageUse::Free)
        );
        assert_eq!(map.regular_count(), 4);
        assert!(map.shrink(8));
        assert_eq!((map.total_pages(), map.free_pages()), (8, 0));
        assert!(!map.shrink(5), "a page in use past the new end");
        assert_eq!(map.total_pages(), 8);
    }

    #[test]
    fn two_owners_of_one_page_are_rejected() {
        let mut regular = BitVec::new(10);
        regular.set(4, true);
        assert!(FreeMap::from_parts(regular.clone(), Vec::new(), 0, [4]).is_err());
        assert!(FreeMap::from_parts(regular.clone(), Vec::new(), 0, [5, 5]).is_err());
        assert!(FreeMap::from_parts(regular, Vec::new(), 0, [12]).is_err());
    }
}

//! Protected pages: crash-consistent copy-on-write pages backed by two
//! physical copies.
//!
//! Each protected page is a directory slot naming two internal pages and which
//! of them holds the committed bytes. A write is staged in the other copy
//! (which starts as a copy of the committed bytes, contract A3); `commit`
//! publishes the flipped slot in one metadata commit whose root carries the
//! staged copy's CRC-32C, so one sync covers both and a crash leaves either
//! the old or the new bytes (D2). A slot that
//! was never committed reads as zeros without touching its copies.

use std::fmt;

use crate::core::Core;
use crate::error::{MappedPageError, Result};
use crate::format::record::{DirEntry, EntryState, Record};
use crate::page::MappedPage;
use crate::pager::Pager;

impl Core {
    fn live_entry(&self, slot: u64) -> Result<DirEntry> {
        self.check_usable()?;
        self.map
            .entry(slot)
            .copied()
            .filter(DirEntry::in_use)
            .ok_or(MappedPageError::OutOfBounds)
    }

    /// Allocates `count` protected pages in one commit.
    pub(crate) fn alloc_protected(&mut self, count: u64) -> Result<Vec<u64>> {
        self.check_usable()?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let pages_needed = count
            .checked_mul(2)
            .ok_or(MappedPageError::InvalidCount { count })?;
        self.check_room(pages_needed, count)?;
        self.ensure_free_for_slots(pages_needed, count)?;
        let old_dir_len = self.map.dir_len();
        let mut slots = Vec::with_capacity(count as usize);
        let mut records = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let slot = self.map.free_slot();
            let (Some(a), Some(b)) = (self.map.alloc_internal(), self.map.alloc_internal()) else {
                self.poisoned = true;
                return Err(MappedPageError::Unavailable);
            };
            let entry = DirEntry {
                copies: [a, b],
                state: EntryState::Fresh,
            };
            self.map.set_entry(slot, entry);
            self.touch_slot(slot);
            records.push(Record::Entry { slot, entry });
            slots.push(slot);
        }
        self.commit(records, Vec::new(), |core, _| {
            for &slot in &slots {
                if let Some(entry) = core.map.entry(slot).copied() {
                    core.map.release(&entry.copies);
                    core.map.set_entry(slot, DirEntry::FREE);
                }
            }
            core.map.truncate_directory(old_dir_len);
        })?;
        Ok(slots)
    }

    /// Frees protected pages in one commit, after checking every one.
    pub(crate) fn free_protected(&mut self, slots: &[u64]) -> Result<()> {
        self.check_usable()?;
        if slots.is_empty() {
            return Ok(());
        }
        let mut sorted = slots.to_vec();
        sorted.sort_unstable();
        for (i, &slot) in sorted.iter().enumerate() {
            if i > 0 && sorted[i - 1] == slot {
                return Err(MappedPageError::DoubleFree);
            }
            self.live_entry(slot)?;
        }
        let mut freed = Vec::with_capacity(sorted.len() * 2);
        let mut records = Vec::with_capacity(sorted.len());
        let mut old = Vec::with_capacity(sorted.len());
        for &slot in &sorted {
            if let Some(entry) = self.map.entry(slot) {
                freed.extend(entry.copies);
                old.push((slot, *entry));
            }
            self.map.set_entry(slot, DirEntry::FREE);
            self.touch_slot(slot);
            records.push(Record::Entry {
                slot,
                entry: DirEntry::FREE,
            });
        }
        self.commit(records, freed, |core, _| {
            for (slot, entry) in old {
                core.map.set_entry(slot, entry);
            }
        })
    }

    /// The committed bytes of a protected page.
    pub(crate) fn protected_page(&self, slot: u64) -> Result<&[u8]> {
        let entry = self.live_entry(slot)?;
        match entry.state {
            EntryState::Active(copy) => {
                let range = self.page_range(entry.copies[usize::from(copy)]);
                self.store
                    .bytes()
                    .get(range)
                    .ok_or(MappedPageError::OutOfBounds)
            }
            _ => Ok(&self.zero_page),
        }
    }

    /// Prepares the staging copy of `slot` with the committed bytes and
    /// returns which copy it is and its page.
    fn begin_protected_write(&mut self, slot: u64) -> Result<(u8, u64)> {
        let entry = self.live_entry(slot)?;
        self.settle_open()?;
        // Every protected commit is synced (see `commit.rs`), so the copy the
        // newest root does not name is not named by the durable root either:
        // it is safe to overwrite.
        let (target, source) = match entry.state {
            EntryState::Active(copy) => (1 - copy, Some(entry.copies[usize::from(copy)])),
            _ => (0, None),
        };
        let target_page = entry.copies[usize::from(target)];
        let dst = self.page_range(target_page);
        if self.store.bytes().get(dst.clone()).is_none() {
            return Err(MappedPageError::OutOfBounds);
        }
        match source {
            Some(page) => {
                let src = self.page_range(page);
                self.store.bytes_mut().copy_within(src, dst.start);
            }
            None => self.store.bytes_mut()[dst].fill(0),
        }
        Ok((target, target_page))
    }

    /// Publishes the staged copy of `slot`: sync it, then commit the flip.
    fn commit_protected_write(&mut self, slot: u64, target: u8) -> Result<()> {
        let old = self.live_entry(slot)?;
        let mut entry = old;
        entry.state = EntryState::Active(target);
        let staged = entry.copies[usize::from(target)];
        self.staged.push(staged);
        self.map.set_entry(slot, entry);
        self.touch_slot(slot);
        self.commit(
            vec![Record::Entry { slot, entry }],
            Vec::new(),
            |core, _| {
                core.map.set_entry(slot, old);
                core.staged.retain(|&page| page != staged);
            },
        )
    }
}

/// The handle of a protected page: its slot in the protected-page directory,
/// as `.0`. Cheap to copy, typed by page size like [`crate::PageId`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtectedPageId<const PAGE_SIZE: usize>(pub u64);

impl<const PAGE_SIZE: usize> fmt::Debug for ProtectedPageId<PAGE_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProtectedPageId<{PAGE_SIZE}>({})", self.0)
    }
}

impl<const PAGE_SIZE: usize> ProtectedPageId<PAGE_SIZE> {
    /// Borrows the committed bytes of the page. A page never committed reads
    /// as zeros.
    ///
    /// # Errors
    /// `OutOfBounds` when the id names no protected page in use.
    pub fn get<'a>(&self, pager: &'a Pager<PAGE_SIZE>) -> Result<&'a MappedPage> {
        pager
            .core()
            .protected_page(self.0)
            .map(MappedPage::from_bytes)
    }

    /// Starts a staged write. The writer's page starts as the committed
    /// bytes; nothing is visible until [`ProtectedPageWriter::commit`], and
    /// dropping the writer discards the write.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// use mappedpages::Pager;
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let id = pager.alloc_protected()?;
    /// let mut writer = id.get_mut(&mut pager)?;
    /// writer.page_mut().as_bytes_mut()[..5].copy_from_slice(b"hello");
    /// writer.commit()?;
    /// {
    ///     let mut writer = id.get_mut(&mut pager)?;
    ///     writer.page_mut().as_bytes_mut()[0] = b'j';
    /// } // dropped: discarded
    /// assert_eq!(&id.get(&pager)?.as_bytes()[..5], b"hello");
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// `OutOfBounds` when the id names no protected page in use.
    pub fn get_mut<'a>(
        &self,
        pager: &'a mut Pager<PAGE_SIZE>,
    ) -> Result<ProtectedPageWriter<'a, PAGE_SIZE>> {
        let (target, page) = pager.core_mut().begin_protected_write(self.0)?;
        Ok(ProtectedPageWriter {
            pager,
            slot: self.0,
            target,
            page,
        })
    }
}

/// A staged write to a protected page. Dropping it without
/// [`commit`](ProtectedPageWriter::commit) leaves the page unchanged.
///
/// If a crash happens before `commit` returns, the page reads as its old
/// bytes or its new bytes after reopening, never a mix.
pub struct ProtectedPageWriter<'a, const PAGE_SIZE: usize> {
    pager: &'a mut Pager<PAGE_SIZE>,
    slot: u64,
    target: u8,
    page: u64,
}

impl<const PAGE_SIZE: usize> fmt::Debug for ProtectedPageWriter<'_, PAGE_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedPageWriter")
            .field("id", &self.slot)
            .finish_non_exhaustive()
    }
}

impl<const PAGE_SIZE: usize> ProtectedPageWriter<'_, PAGE_SIZE> {
    /// The staged bytes, writable.
    pub fn page_mut(&mut self) -> &mut MappedPage {
        let core = self.pager.core_mut();
        let range = core.page_range(self.page);
        // The range was checked when the writer was made, and the map cannot
        // change while the writer borrows the pager.
        MappedPage::from_bytes_mut(core.store.bytes_mut().get_mut(range).unwrap_or_default())
    }

    /// The staged bytes.
    pub fn page(&self) -> &MappedPage {
        let core = self.pager.core();
        let range = core.page_range(self.page);
        MappedPage::from_bytes(core.store.bytes().get(range).unwrap_or_default())
    }

    /// Makes the staged bytes the page's committed bytes, atomically. With
    /// [`crate::Durability::Immediate`] this is one sync (two if regular
    /// pages were written through `get_mut` since the last sync: those are
    /// made durable first).
    ///
    /// # Errors
    /// An I/O error. If the file could not grow for the commit (`Io` of kind
    /// `StorageFull`, for example), nothing was published: the page keeps its
    /// old bytes and the pager stays usable. After any other I/O error the
    /// pager is unavailable and the file reopens with the old or the new
    /// bytes.
    pub fn commit(self) -> Result<()> {
        self.pager
            .core_mut()
            .commit_protected_write(self.slot, self.target)
    }
}

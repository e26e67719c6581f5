//! The commit protocol: pending changes -> one atomic commit.
//!
//! An operation changes the in-memory [`FreeMap`], describes the change as
//! log [`Record`]s, and calls [`Core::commit`]. A commit:
//!
//! 1. syncs first if regular pages were written through `get_mut`:
//!    write-before ordering, D3. Staged protected pages are not synced
//!    first: the root lists their CRC-32C, and open rejects a root whose
//!    listed pages did not land, so a protected commit is one sync;
//! 2. appends the records to the log carried in the root; when the log is
//!    full, checkpoints instead: the changed leaves of the page trees and
//!    their ancestors go to fresh pages, and the log starts empty;
//! 3. writes the new root, generation + 1, into the root slot that does not
//!    hold the newest durable root;
//! 4. syncs ([`Durability::Immediate`], or any commit of a protected page),
//!    which is the commit point.
//!
//! Pages the commit stops using (replaced tree pages, freed pages) are reused
//! only once the commit is durable, so the durable root and everything it
//! references are never overwritten. `FORMAT.md` gives the argument in full.

use std::collections::BTreeMap;

use crate::core::Core;
use crate::error::{MappedPageError, Result};
use crate::format::record::{PageCheck, Record, DIR_ENTRY_LEN};
use crate::format::root::{log_capacity, root_len, Root, FLAG_SYNCED, MAX_TREE_HEIGHT};
use crate::format::{checksum, MAX_PAGES, ROOT_PAGES};
use crate::options::Durability;
use crate::page_tree::PageTree;

/// Commit-side state: the log, the page trees and what awaits durability.
#[derive(Debug)]
pub(crate) struct Journal {
    /// Generation of the newest root written.
    pub generation: u64,
    /// Changes since the last checkpoint; every root carries all of them.
    pub log: Vec<Record>,
    pub bitmap_tree: PageTree,
    pub dir_tree: PageTree,
    /// Root slot (0 or 1) of the newest root written.
    pub last_slot: usize,
    /// Root slot of the newest root known durable; never overwritten.
    pub durable_slot: usize,
    /// Pages no root since the durable one references; reusable once durable.
    pub awaiting_durable: Vec<u64>,
}

/// Appends `record`, merging it into the last one when they are adjacent runs.
fn push_merged(log: &mut Vec<Record>, record: Record) {
    match (log.last_mut(), record) {
        (Some(Record::Alloc { start, count }), Record::Alloc { start: s, count: c })
        | (Some(Record::Free { start, count }), Record::Free { start: s, count: c })
            if *start + *count == s =>
        {
            *count += c;
        }
        _ => log.push(record),
    }
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

/// Pages a checkpoint of `tree` may need at most.
fn checkpoint_bound(tree: &PageTree) -> u64 {
    let levels = u64::from(MAX_TREE_HEIGHT) + 1;
    (tree.dirty_count() as u64 + 1) * levels + levels
}

impl Core {
    pub(crate) fn bits_per_leaf(&self) -> u64 {
        self.page_size as u64 * 8
    }

    pub(crate) fn entries_per_leaf(&self) -> u64 {
        (self.page_size / DIR_ENTRY_LEN) as u64
    }

    /// Marks the bitmap leaves holding `pages` as changed.
    pub(crate) fn touch_pages(&mut self, pages: impl IntoIterator<Item = u64>) {
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
    pub(crate) fn touch_slot(&mut self, slot: u64) {
        let per_leaf = self.entries_per_leaf();
        self.journal.dir_tree.mark_dirty(slot / per_leaf);
    }

    /// Grows the file until at least `count` pages are free. On error nothing
    /// in memory has changed.
    pub(crate) fn ensure_free(&mut self, count: u64) -> Result<()> {
        if self.map.free_pages() < count && !self.journal.awaiting_durable.is_empty() {
            // Pages freed since the last sync become reusable once it is
            // made: cheaper than growing the file (Deferred mode only; in
            // Immediate mode nothing waits after a commit returns).
            self.sync_everything()?;
        }
        let free = self.map.free_pages();
        if free >= count {
            return Ok(());
        }
        let total = self.map.total_pages();
        let step = total.max(16).min(self.max_growth_pages);
        let new_total = total
            .checked_add((count - free).max(step))
            .filter(|&t| t <= MAX_PAGES)
            .ok_or(MappedPageError::InvalidCount { count })?;
        let new_len = new_total
            .checked_mul(self.page_size as u64)
            .ok_or(MappedPageError::InvalidCount { count })?;
        self.store.extend_to(new_len, self.preallocate)?;
        // Everything written so far becomes durable with the new length.
        self.sync_everything()?;
        self.store.remap()?;
        self.map.grow(new_total);
        Ok(())
    }

    /// Publishes `records` (already applied to the free map) atomically.
    /// `freed` are pages the change stopped using. On an I/O error the pager
    /// becomes unavailable: the file still holds the last committed state.
    pub(crate) fn commit(&mut self, records: Vec<Record>, freed: Vec<u64>) -> Result<()> {
        let result = self.try_commit(records, freed);
        if result.is_err() {
            self.poisoned = true;
        }
        result
    }

    fn try_commit(&mut self, records: Vec<Record>, mut freed: Vec<u64>) -> Result<()> {
        // A commit that publishes a staged protected copy is synced in every
        // mode: the root lists the copy's CRC, one sync covers both, and open
        // rejects the root if the copy did not land (P2). Were it left
        // unsynced in Deferred mode, the next write to that page would have
        // to sync first anyway, to spare the copy the durable root names.
        let synced = self.durability == Durability::Immediate || !self.staged.is_empty();
        // Regular pages written through the map must be durable before a
        // root that follows them can be seen (D3).
        if self.data_dirty {
            self.sync_everything()?;
        }
        for record in records {
            push_merged(&mut self.journal.log, record);
        }
        let capacity = log_capacity(self.page_size);
        if self.journal.log.len() + self.staged.len() > capacity {
            self.checkpoint(&mut freed)?;
            if self.staged.len() > capacity {
                self.sync_everything()?;
            }
        }
        let checks = self
            .staged
            .iter()
            .map(|&page| PageCheck {
                page,
                crc: checksum(
                    self.store
                        .bytes()
                        .get(self.page_range(page))
                        .unwrap_or_default(),
                ),
            })
            .collect();
        self.journal.generation += 1;
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
        };
        // Only the root's own bytes, at most one OS page: a kill cannot tear
        // that write, and a Deferred commit rewrites the one slot that holds
        // the newest commits that returned (see `FORMAT.md`).
        let mut page = vec![0u8; root_len(self.page_size)];
        root.encode_area(self.page_size, &mut page);
        let slot = 1 - self.journal.durable_slot;
        self.store
            .write_at(ROOT_PAGES[slot] * self.page_size as u64, &page)?;
        self.journal.last_slot = slot;
        self.journal.awaiting_durable.extend(freed);
        if synced {
            self.sync_everything()?;
        }
        Ok(())
    }

    /// One sync: everything written so far, the newest root included, is
    /// durable afterwards, so what waited for durability is released.
    /// A failed sync leaves the page cache in an unknown state, so the pager
    /// becomes unavailable (reopening reads what the disk really holds).
    pub(crate) fn sync_everything(&mut self) -> Result<()> {
        if let Err(err) = self.store.sync() {
            self.poisoned = true;
            return Err(err.into());
        }
        self.data_dirty = false;
        self.staged.clear();
        self.journal.durable_slot = self.journal.last_slot;
        let released = std::mem::take(&mut self.journal.awaiting_durable);
        self.map.release(&released);
        Ok(())
    }

    /// Writes the changed leaves of both page trees, and their ancestors, to
    /// fresh pages and empties the log.
    fn checkpoint(&mut self, freed: &mut Vec<u64>) -> Result<()> {
        let bound =
            checkpoint_bound(&self.journal.bitmap_tree) + checkpoint_bound(&self.journal.dir_tree);
        self.ensure_free(bound)?;

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

        let bitmap_leaf_count = self.map.total_pages().div_ceil(self.bits_per_leaf());
        // The slots held in memory, not `dir_len`: the slots past them are
        // free, their leaves null, and a tree sized to a long `dir_len` read
        // from the file would take memory for leaves that hold nothing.
        let dir_leaf_count = (self.map.directory().len() as u64).div_ceil(self.entries_per_leaf());
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

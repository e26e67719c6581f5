//! The commit protocol: one [`Change`] -> one atomic commit.
//!
//! A transaction (`engine/transaction.rs`) changes the in-memory [`FreeMap`](crate::engine::FreeMap), describes the
//! change as log [`Record`]s and the pages it wrote, and calls
//! [`Core::commit`]. A commit:
//!
//! 1. syncs first if regular pages were written in place through
//!    `get_mut`: write-before ordering, D3. Pages a transaction wrote
//!    (written to the file by `commit_txn` just before, see
//!    `transaction.rs`) are not synced first: the root lists their CRC-32C,
//!    and open rejects a root whose listed pages did not land, so a commit
//!    is one sync;
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

use std::collections::BTreeMap;

use crate::engine::core::Core;
use crate::engine::durability::Durability;
use crate::engine::journal::{merged_len, push_merged, Change, CheckPages, MAX_UNSYNCED_CHECKS};
use crate::error::{MappedPageError, Result};
use crate::format::check_page;
use crate::format::record::{PageCheck, Record, DIR_ENTRY_LEN};
use crate::format::root::{log_capacity, root_len, Root, FLAG_SYNCED};
use crate::format::tree_node::NodeRef;
use crate::format::{checksum, ROOT_PAGES};

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

    /// Whether `page` was freed by a commit and is not reusable yet: free to
    /// the caller, so freeing it again is a double free.
    pub(super) fn is_waiting(&self, page: u64) -> bool {
        self.journal.reclaim.contains(page)
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
            || self.sealed_checks(page)
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
            && !self.in_flight()
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
        let synced =
            (self.durability == Durability::Immediate && !self.grouped) || change.force_sync;
        if synced || !self.grouped || !self.flight_running() {
            // Only a grouped commit goes on while a group sync runs; once
            // it has ended, its outcome is applied first.
            self.settle_flight()?;
        }
        let frees = !change.records.is_empty() || !change.freed_sub_pages.is_empty();
        let allowed = self.check_reader_bounds(frees);
        if let Err(err) = allowed.and_then(|()| self.reserve(&change)) {
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
            check_page::pages_for(self.page_size, checks)
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
            freed_sub_pages,
            born,
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
        self.journal.sub_pages |= self.map.has_sub_pages();
        let checks = self.gather_checks(&written, &stale, &freed);
        if self.journal.log.len() + checks.len() > capacity {
            self.extend_chain(&checks)?;
            self.journal.unsynced_checks.clear();
        }
        freed.append(&mut self.journal.stale_check_pages);
        self.journal.generation += 1;
        let generation = self.journal.generation;
        let journal = &mut self.journal;
        let listed = &journal.chain.checked;
        let early = journal
            .reclaim
            .freed_by_commit(generation, freed, |page| listed.contains(&page));
        journal.reclaim.freed_sub_pages(generation, freed_sub_pages);
        // Before the root: a sync this commit makes covers them.
        journal.reclaim.born(born);
        for (slot, before) in slots_before {
            self.journal.durable_entries.entry(slot).or_insert(before);
        }
        if self.grouped && self.in_flight() {
            // The slot this root would go to holds the root a running sync
            // makes durable (see `engine/group.rs`): the next leader writes
            // this one.
            self.journal.pending_root = Some(self.newest_root(false));
            return Ok(());
        }
        self.write_root(synced)?;
        if early {
            // Pages it freed that no sync need make reusable are free now,
            // as a synced commit's are (see `engine/reclaim.rs`).
            self.release_unpinned();
        }
        Ok(())
    }

    /// The root of the newest commit, from the journal and the map: made
    /// at the commit, when the map holds exactly what it committed.
    fn newest_root(&self, synced: bool) -> Root {
        let journal = &self.journal;
        let chain = &journal.chain;
        Root {
            generation: journal.generation,
            total_pages: self.map.total_pages(),
            regular_count: self.map.regular_count(),
            bitmap: journal.bitmap_tree.top(),
            dir_len: self.map.dir_len(),
            directory: journal.dir_tree.top(),
            flags: if synced { FLAG_SYNCED } else { 0 },
            log: journal.log.clone(),
            checks: journal.unsynced_checks.clone(),
            check_pages: chain.head,
            check_pages_len: chain.len,
            sub_pages: journal.sub_pages || self.map.has_sub_pages(),
        }
    }

    /// Writes the root of the newest commit, which was just made, into the
    /// slot that does not hold the durable root, and syncs if `synced`.
    pub(super) fn write_root(&mut self, synced: bool) -> Result<()> {
        let root = self.newest_root(synced);
        self.put_root(&root, synced)
    }

    /// Writes the root a commit made during a group sync left pending, if
    /// any (see `engine/group.rs`).
    pub(super) fn write_pending_root(&mut self) -> Result<()> {
        match self.journal.pending_root.take() {
            Some(root) => self.put_root(&root, false),
            None => Ok(()),
        }
    }

    /// Writes `root` into the slot that does not hold the durable root, and
    /// syncs if `synced`.
    fn put_root(&mut self, root: &Root, synced: bool) -> Result<()> {
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
        self.journal.pending_root = None;
        self.journal.root_total = root.total_pages;
        if synced {
            self.sync_everything()?;
        }
        Ok(())
    }

    /// The checks the new root lists itself: those of earlier unsynced
    /// commits not yet in check pages that still describe the state, and
    /// the pages this commit wrote.
    fn gather_checks(
        &mut self,
        written: &[(u64, Option<u32>)],
        stale: &[u64],
        freed: &[u64],
    ) -> Vec<PageCheck> {
        let checks = &mut self.journal.unsynced_checks;
        if !checks.is_empty() {
            let mut gone: Vec<u64> = stale.iter().chain(freed).copied().collect();
            gone.sort_unstable();
            checks.retain(|check| gone.binary_search(&check.page).is_err());
        }
        let bytes = self.store.bytes();
        let page_size = self.page_size;
        checks.extend(written.iter().map(|&(page, crc)| {
            let start = page as usize * page_size;
            PageCheck {
                page,
                crc: crc.unwrap_or_else(|| {
                    checksum(bytes.get(start..start + page_size).unwrap_or_default())
                }),
            }
        }));
        checks.clone()
    }

    /// Writes `checks` to new check pages (room was made by
    /// [`Core::reserve`]) linked in front of the chain, last page first so
    /// that each page can hold the CRC of the one after it.
    fn extend_chain(&mut self, checks: &[PageCheck]) -> Result<()> {
        let per_page = check_page::checks_per_page(self.page_size);
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
            check_page::encode(&mut buf, chunk, next);
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
        self.settle_flight()?;
        self.write_pending_root()?;
        self.placement.sync_started();
        self.journal.reclaim.sync_started();
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
            journal.chain = CheckPages::default();
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
        self.note_durable();
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
        // The trees now hold the whole directory and the log nothing.
        self.journal.sub_pages = self.map.has_sub_pages();
        Ok(())
    }
}

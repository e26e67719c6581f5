//! Sub-pages, engine side: parent pages cut into `2^shift` equal parts,
//! allocated, written and freed inside transactions (the public face is
//! `crate::sub_pages`).
//!
//! # Where the allocation state lives
//! A parent page has an entry in the protected directory, of a kind of its
//! own (`EntryState::Parent`): its page, how many ways it is cut, and one
//! bit per sub-page in use. So a sub-page allocation or free is a change of
//! one directory entry, committed by the same root as the rest of its
//! transaction, with nothing to rebuild on open; a snapshot's copy of the
//! directory tells which sub-pages it may read. A sub-page's id is its
//! directory slot and its index in the parent (`slot << 6 | index`), so a
//! parent page can move (a shrink) without changing any id.
//!
//! # What a transaction writes, and why one sync is enough
//! A transaction writes only sub-pages it allocated itself. Each was free
//! in every root a crash may reopen and in every live snapshot: a freed
//! sub-page is held, like a freed page, until the commit that freed it is
//! durable and no older snapshot lives (`reclaim.rs`, `sub_slots.rs`). Its
//! bytes are written in place, through the map, into a parent page that no
//! root which may be needed checks (such parents are passed over: a write
//! would make that root's check fail). The commit lists every parent it
//! wrote into with its CRC-32C, as it does fresh pages, so the parent's
//! bytes and the root share the commit's one sync: a root whose parents did
//! not all land is rejected on open, and the one before it knows none of
//! the new sub-pages.
//!
//! Writing a committed sub-page is copy-on-write, as for pages: allocate a
//! new one, write it, free the old one. Staging (as protected pages do)
//! would need a second copy of every parent, doubling the space of the very
//! objects that are small to save space; copy-on-write costs a new id,
//! which the caller stores in place of the old one in the page that named
//! it, a page it writes in the same transaction anyway.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use crate::engine::core::Core;
use crate::engine::placement::Use;
use crate::engine::snapshots::Frozen;
use crate::engine::sub_slots::FreedSubPages;
use crate::engine::transaction::{TxnState, Undo};
use crate::error::{MappedPageError, Result};
use crate::format::record::{DirEntry, Record, MAX_SUB_SHIFT};

/// Bits of a sub-page id below its directory slot: the index in the parent.
pub(crate) const INDEX_BITS: u32 = MAX_SUB_SHIFT as u32;

/// The id of sub-page `index` of the parent in directory slot `slot`.
pub(crate) fn sub_page_id(slot: u64, index: u32) -> u64 {
    (slot << INDEX_BITS) | u64::from(index)
}

/// The directory slot and index an id names.
fn split(id: u64) -> (u64, u32) {
    (id >> INDEX_BITS, (id & ((1 << INDEX_BITS) - 1)) as u32)
}

/// The bytes of sub-page `index` within a `page_size` parent cut
/// `1 << shift` ways.
#[inline]
fn within_parent(page_size: usize, shift: u8, index: u32) -> std::ops::Range<usize> {
    let size = page_size >> shift;
    let start = index as usize * size;
    start..start + size
}

/// The ids of the allocated sub-pages of parents cut `1 << shift` ways in
/// `directory`, ascending.
pub(crate) fn sub_page_ids(directory: &[DirEntry], shift: u8) -> impl Iterator<Item = u64> + '_ {
    directory
        .iter()
        .enumerate()
        .filter_map(move |(slot, entry)| match entry.as_parent() {
            Some((_, s, used)) if s == shift => Some((slot as u64, used)),
            _ => None,
        })
        .flat_map(|(slot, used)| {
            (0..64u32)
                .filter(move |index| used & (1 << index) != 0)
                .map(move |index| sub_page_id(slot, index))
        })
}

/// The sub-page changes of one transaction.
#[derive(Debug, Default)]
pub(crate) struct TxnSubPages {
    /// Directory slots of the parents changed: their final entries go into
    /// the commit's log, one record each.
    touched: BTreeSet<u64>,
    /// Sub-pages allocated by this transaction: the ones it may write.
    fresh: HashSet<u64>,
    /// Parent pages written into: the commit lists their checks.
    written: BTreeSet<u64>,
    /// Committed sub-pages freed, held from now on.
    freed: Vec<FreedSubPages>,
}

impl TxnSubPages {
    pub(super) fn is_empty(&self) -> bool {
        // Every parent written into holds a sub-page allocated here, whose
        // slot was touched.
        self.touched.is_empty()
    }

    /// Whether this transaction allocated sub-page `id`.
    pub(crate) fn is_fresh(&self, id: u64) -> bool {
        self.fresh.contains(&id)
    }
}

/// What the commit of a transaction's sub-page changes adds to its change.
pub(super) struct SubPageCommit {
    pub records: Vec<Record>,
    pub written: Vec<u64>,
    pub freed: Vec<FreedSubPages>,
}

impl Core {
    /// The parent page, directory entry and byte range in the file of an
    /// allocated sub-page of a parent cut `1 << shift` ways; `InvalidSubPage`
    /// for any id that names none (forged, stale, freed, of another size).
    fn sub_page_at(&self, shift: u8, id: u64) -> Result<(u64, std::ops::Range<usize>)> {
        self.check_usable()?;
        let (slot, index) = split(id);
        match self
            .map
            .entry(slot)
            .and_then(|e| e.sub_page_parent(shift, index))
        {
            Some(page) => {
                let base = self.page_range(page).start;
                let within = within_parent(self.page_size, shift, index);
                Ok((page, base + within.start..base + within.end))
            }
            None => Err(MappedPageError::InvalidSubPage { id }),
        }
    }

    /// The committed bytes of a sub-page.
    pub(crate) fn sub_page(&self, shift: u8, id: u64) -> Result<&[u8]> {
        let (_, range) = self.sub_page_at(shift, id)?;
        self.store
            .bytes()
            .get(range)
            .ok_or(MappedPageError::OutOfBounds)
    }

    /// The bytes of a committed sub-page, writable in place, outside any
    /// transaction: like `PageId::get_mut`, durable after the next sync, and
    /// refused while a live snapshot may read the sub-page.
    pub(crate) fn sub_page_mut(&mut self, shift: u8, id: u64) -> Result<&mut [u8]> {
        let (page, range) = self.sub_page_at(shift, id)?;
        self.check_sub_page_not_in_snapshot(page, shift, id)?;
        self.settle_open()?;
        if self.is_guarded(page) {
            self.release_guards()?;
        }
        self.data_dirty = true;
        self.store
            .range_mut(range)
            .ok_or(MappedPageError::OutOfBounds)
    }

    /// Fails with `InUseBySnapshot` if the newest live snapshot counts
    /// sub-page `id`, in parent `page`, as allocated (rule 3 of
    /// `snapshots.rs`, for sub-pages). The newest is enough, as for pages: a
    /// sub-page an older snapshot reads and the newest does not was freed
    /// in between, and is held, so it is not allocated now. Its directory
    /// slot may name another parent in a snapshot, whose bytes are not
    /// these.
    fn check_sub_page_not_in_snapshot(&self, page: u64, shift: u8, id: u64) -> Result<()> {
        if self.process_reader_reads() {
            return Err(MappedPageError::InUseBySnapshot { page });
        }
        let Some(newest) = self.snapshots.newest() else {
            return Ok(());
        };
        let (slot, index) = split(id);
        match newest
            .entry(slot)
            .and_then(|e| e.sub_page_parent(shift, index))
        {
            Some(p) if p == page => Err(MappedPageError::InUseBySnapshot { page }),
            _ => Ok(()),
        }
    }

    /// Allocates `count` sub-pages of parents cut `1 << shift` ways; each
    /// reads as zeros.
    pub(crate) fn txn_alloc_sub_pages(
        &mut self,
        txn: &mut TxnState,
        shift: u8,
        count: u64,
    ) -> Result<Vec<u64>> {
        self.check_usable()?;
        if count == 0 {
            return Ok(Vec::new());
        }
        let per_parent = 1u64 << shift;
        let new_parents = count.div_ceil(per_parent);
        self.check_room(new_parents, count)?;
        // Writes in place follow: the root open took must be durable first.
        self.settle_open()?;
        self.release_unpinned();
        let mark = txn.undo_mark(self);
        let mut ids = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
        while (ids.len() as u64) < count {
            let slot = match self.open_parent(shift) {
                Some(slot) => slot,
                None => match self.txn_new_parent(txn, shift) {
                    Ok(slot) => slot,
                    Err(err) => {
                        // A call that fails changes nothing.
                        self.undo_to(txn, mark);
                        return Err(err);
                    }
                },
            };
            let Some((page, _, used)) = self.map.entry(slot).and_then(DirEntry::as_parent) else {
                return Err(MappedPageError::Unavailable);
            };
            let mut available = self.map.sub_pages_available(slot);
            let mut taken = 0u64;
            while available != 0 && (ids.len() as u64) < count {
                let index = available.trailing_zeros();
                available &= available - 1;
                taken |= 1 << index;
                ids.push(sub_page_id(slot, index));
            }
            self.txn_set_entry(txn, slot, DirEntry::parent(page, shift, used | taken));
            txn.sub.touched.insert(slot);
            // New sub-pages read as zeros, whatever a freed one left.
            let base = self.page_range(page).start;
            let mut bits = taken;
            while bits != 0 {
                let within = within_parent(self.page_size, shift, bits.trailing_zeros());
                bits &= bits - 1;
                if let Some(bytes) = self.store.range_mut(base + within.start..base + within.end) {
                    bytes.fill(0);
                }
            }
            txn.sub.written.insert(page);
        }
        txn.sub.fresh.extend(&ids);
        Ok(ids)
    }

    /// A parent cut `1 << shift` ways with a sub-page to give, that no root
    /// which may still be needed checks.
    fn open_parent(&self, shift: u8) -> Option<u64> {
        self.map.open_parents(shift).find(|&slot| {
            self.map
                .entry(slot)
                .and_then(DirEntry::as_parent)
                .is_some_and(|(page, _, _)| !self.is_guarded(page))
        })
    }

    /// Takes a page and a directory slot for a new parent, with no sub-page
    /// used yet (an entry only a transaction in progress holds).
    fn txn_new_parent(&mut self, txn: &mut TxnState, shift: u8) -> Result<u64> {
        self.ensure_free_for_slots(1, 1)?;
        let page = self
            .place_pages(1, Use::Internal)
            .and_then(|pages| pages.first().copied())
            .ok_or(MappedPageError::Unavailable)?;
        txn.undo.push(Undo::Internal(page));
        let slot = self.map.free_slot();
        self.txn_set_entry(txn, slot, DirEntry::parent(page, shift, 0));
        Ok(slot)
    }

    /// Frees sub-pages of parents cut `1 << shift` ways, after checking
    /// every one. A parent whose last sub-page goes leaves the directory,
    /// and its page waits like a freed page.
    pub(crate) fn txn_free_sub_pages(
        &mut self,
        txn: &mut TxnState,
        shift: u8,
        ids: &[u64],
    ) -> Result<()> {
        self.check_usable()?;
        let mut by_slot: BTreeMap<u64, u64> = BTreeMap::new();
        for &id in ids {
            let (slot, index) = split(id);
            let bit = 1u64 << index;
            let named = by_slot.entry(slot).or_insert(0);
            match self.map.entry(slot).and_then(DirEntry::as_parent) {
                Some((_, s, used)) if s == shift && index < (1 << shift) => {
                    if used & bit == 0 || *named & bit != 0 {
                        return Err(MappedPageError::DoubleFree);
                    }
                }
                _ => return Err(MappedPageError::InvalidSubPage { id }),
            }
            *named |= bit;
        }
        for (slot, bits) in by_slot {
            let Some((page, _, used)) = self.map.entry(slot).and_then(DirEntry::as_parent) else {
                continue;
            };
            let mut committed = 0;
            for index in 0..64 {
                if bits & (1 << index) != 0 && !txn.sub.fresh.remove(&sub_page_id(slot, index)) {
                    committed |= 1 << index;
                }
            }
            let left = used & !bits;
            let after = if left == 0 {
                txn.freed.push(page);
                DirEntry::FREE
            } else {
                DirEntry::parent(page, shift, left)
            };
            self.txn_set_entry(txn, slot, after);
            if committed != 0 {
                let freed = FreedSubPages {
                    slot,
                    page,
                    bits: committed,
                };
                self.map.hold_sub_pages(&freed);
                txn.undo.push(Undo::HeldSubPages(freed));
                txn.sub.freed.push(freed);
            }
            txn.sub.touched.insert(slot);
        }
        Ok(())
    }

    /// The bytes of a sub-page this transaction allocated, writable;
    /// `CommittedSubPage` for one committed before it (written
    /// copy-on-write, see the module docs).
    pub(crate) fn txn_sub_page_mut<'a>(
        &'a mut self,
        txn: &'a mut TxnState,
        shift: u8,
        id: u64,
    ) -> Result<&'a mut [u8]> {
        let (page, range) = self.sub_page_at(shift, id)?;
        if !txn.sub.is_fresh(id) {
            return Err(MappedPageError::CommittedSubPage { id });
        }
        txn.sub.written.insert(page);
        self.store
            .range_mut(range)
            .ok_or(MappedPageError::OutOfBounds)
    }

    /// What committing `txn` adds for its sub-pages: a record of each
    /// changed parent's final entry, the parents written into (those still
    /// parents), and the committed sub-pages freed.
    pub(super) fn sub_page_commit(&self, txn: &mut TxnState) -> SubPageCommit {
        let sub = std::mem::take(&mut txn.sub);
        let records = sub
            .touched
            .iter()
            .filter_map(|&slot| {
                let entry = *self.map.entry(slot)?;
                Some(Record::Entry { slot, entry })
            })
            .collect();
        let parents: HashSet<u64> = sub
            .touched
            .iter()
            .filter_map(|&slot| self.map.entry(slot)?.as_parent())
            .map(|(page, _, _)| page)
            .collect();
        let written = sub
            .written
            .into_iter()
            .filter(|page| parents.contains(page))
            .collect();
        SubPageCommit {
            records,
            written,
            freed: sub.freed,
        }
    }
}

impl Frozen {
    /// The bytes of a sub-page allocated in this state.
    #[inline]
    pub(crate) fn sub_page(&self, shift: u8, id: u64) -> Result<&[u8]> {
        let (slot, index) = split(id);
        let parent = usize::try_from(slot)
            .ok()
            .and_then(|slot| self.directory().get(slot))
            .and_then(|e| e.sub_page_parent(shift, index));
        let Some(page) = parent else {
            return Err(MappedPageError::InvalidSubPage { id });
        };
        // A `match`, not `ok_or`: an error built eagerly is dropped on
        // every read.
        match self
            .page(page)?
            .get(within_parent(self.page_size(), shift, index))
        {
            Some(bytes) => Ok(bytes),
            None => Err(MappedPageError::OutOfBounds),
        }
    }
}

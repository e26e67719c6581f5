//! The engine's side of snapshots: the committed states given out, which
//! any number of threads read while the writer goes on (the public face is
//! `crate::snapshot`).
//!
//! A snapshot is an `Arc` of a [`Frozen`] state: a copy of the allocation
//! bitmap (one bit per page) and of the protected directory as of a commit,
//! and the mapping of the file at that time. Taking the first snapshot after
//! a commit makes the copy; every later one until the next commit shares it.
//!
//! # Why reading from other threads is sound
//! A snapshot reads only three kinds of bytes: regular pages allocated in
//! its state, the committed copy of each protected page in its state, and
//! the sub-pages allocated in its state (a byte range of a parent page).
//! The writer is the only one who writes the file, and it never writes any
//! of them:
//!
//! 1. **Freed pages wait.** A page freed by the commit of generation `g` is
//!    not handed out again while a snapshot of a generation before `g`
//!    lives (`Core::release_unpinned` in `engine/freeze.rs`), so a page a snapshot counts as
//!    allocated is never reallocated, hence never fresh, under it.
//! 2. **Transactions write only fresh pages** (`engine/transaction.rs`): pages allocated by
//!    the transaction itself, which were free in the newest state, and by
//!    rule 1 in every live snapshot too.
//! 3. **Writes in place are refused** for a page the newest live snapshot
//!    counts as allocated (`PageId::get_mut` and everything built on it
//!    return [`MappedPageError::InUseBySnapshot`]). The newest is enough: a
//!    page allocated now and in an older live snapshot stayed allocated
//!    from then on (rule 1), so the newest one counts it too.
//! 4. **Protected writes are staged elsewhere.** A staged write goes to the
//!    copy of the pair that the newest state does not name; if a live
//!    snapshot (or the durable root) names it, to a fresh page instead, and
//!    the old copy is freed under rule 1.
//! 6. **Sub-pages are written only where no snapshot reads.** Rules 1 to 3
//!    hold for sub-pages too: a freed sub-page is held, not handed out,
//!    while a snapshot older than the commit that freed it lives
//!    (`engine/reclaim.rs`, `engine/sub_slots.rs`); a transaction writes
//!    only sub-pages it allocated; a write in place is refused for a
//!    sub-page the newest live snapshot counts as allocated. The writer's
//!    `&mut` covers the sub-page's bytes only, never the rest of its parent
//!    page, which readers may be reading: the two borrows are disjoint. A
//!    parent page that moves (a shrink) is copied to a new page; the old
//!    one is freed under rule 1.
//! 7. **Mappings outlive growth.** Growing the file maps it anew; the older
//!    mapping, which a snapshot holds by `Arc`, stays mapped, and the file
//!    stays locked, until the last snapshot holding it is dropped. The file
//!    is never cut below a length a snapshot's state counts on.
//! 8. **Readers of other processes are snapshots too.** A `LiveReader`'s
//!    state is registered in the reader table (`io/reader_table.rs`) before
//!    any of its pages is read through the map, and the writer (of any
//!    process) treats every registered generation as a live snapshot for
//!    rule 1, and as one that may count every page for rules 3 and 4
//!    (`engine/readers.rs`); the file is not cut below its pages. The pages
//!    the writer may be writing meanwhile (the roots) are copied with a
//!    read call, never borrowed from the map.
//!
//! So no byte a snapshot can read is written while it lives: there is no
//! data race and no torn read, on any thread. The writer's own metadata
//! writes (roots, page trees, check pages) go to pages snapshots never read.

#![allow(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::engine::bitmap::BitVec;
use crate::engine::freemap::{not_regular, FreeMap};
use crate::error::{MappedPageError, Result};
use crate::format::record::{DirEntry, EntryState};
use crate::io::reader_table::ReaderSlot;
use crate::io::{MapRegion, View};

/// The committed state a snapshot reads.
pub(crate) struct Frozen {
    generation: u64,
    page_size: usize,
    total_pages: u64,
    regular: BitVec,
    regular_count: u64,
    directory: Vec<DirEntry>,
    map: Arc<MapRegion>,
    /// `map`'s address and length, read without going through the `Arc`.
    view: View,
    zero_page: Arc<[u8]>,
    alive: Arc<AtomicUsize>,
    /// For a state read by a reader that follows a writer of another
    /// process (`LiveReader`): its registration in the reader table, which
    /// keeps the writer off its pages until the state is dropped.
    _registration: Option<ReaderSlot>,
}

impl Drop for Frozen {
    fn drop(&mut self) {
        self.alive.fetch_sub(1, Ordering::Release);
    }
}

impl Frozen {
    /// The state `map` describes, at `generation`, read through `region`;
    /// counted in `alive` while it lives.
    pub(crate) fn new(
        generation: u64,
        map: &FreeMap,
        region: Arc<MapRegion>,
        zero_page: Arc<[u8]>,
        alive: &Arc<AtomicUsize>,
    ) -> Frozen {
        alive.fetch_add(1, Ordering::AcqRel);
        Frozen {
            generation,
            page_size: zero_page.len(),
            total_pages: map.total_pages(),
            regular: map.regular_bits().clone(),
            regular_count: map.regular_count(),
            directory: map.directory().to_vec(),
            view: View::of(&region),
            map: region,
            zero_page,
            alive: Arc::clone(alive),
            _registration: None,
        }
    }

    /// This state, read under `registration` in the reader table: the
    /// registration lasts as long as the state.
    pub(crate) fn registered_by(mut self, registration: ReaderSlot) -> Frozen {
        self._registration = Some(registration);
        self
    }

    #[inline]
    pub(super) fn page(&self, page: u64) -> Result<&[u8]> {
        self.page_sized(page, self.page_size)
    }

    /// [`Frozen::page`] with the page size given by a caller that knows it
    /// at compile time (`Snapshot::get`): the offset is then a shift.
    #[inline]
    pub(super) fn page_sized(&self, page: u64, page_size: usize) -> Result<&[u8]> {
        let range = usize::try_from(page)
            .ok()
            .and_then(|p| p.checked_mul(page_size))
            .and_then(|start| Some(start..start.checked_add(page_size)?));
        // SAFETY: a page this state counts (regular or a committed copy);
        // the writer writes none of those while this state lives (module
        // docs), and `view` is of `self.map`, which lives as long as `self`.
        let bytes = range.and_then(|range| unsafe { self.view.range(range) });
        // A `match`, not `ok_or`: an error built eagerly is dropped on every
        // read (contract R4).
        match bytes {
            Some(bytes) => Ok(bytes),
            None => Err(MappedPageError::OutOfBounds),
        }
    }

    pub(super) fn page_size(&self) -> usize {
        self.page_size
    }

    /// The generation of the commit this state is of.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Pages in the file in this state.
    pub(crate) fn total_pages(&self) -> u64 {
        self.total_pages
    }

    /// Regular pages allocated in this state.
    pub(crate) fn regular_count(&self) -> u64 {
        self.regular_count
    }

    pub(crate) fn regular_bits(&self) -> &BitVec {
        &self.regular
    }

    pub(crate) fn directory(&self) -> &[DirEntry] {
        &self.directory
    }

    /// `count` pages from `first` on, as one slice: pages this state uses.
    pub(super) fn pages(&self, first: u64, count: u64) -> Result<&[u8]> {
        let range = usize::try_from(first)
            .ok()
            .zip(usize::try_from(count).ok())
            .and_then(|(first, count)| {
                let start = first.checked_mul(self.page_size)?;
                Some(start..start.checked_add(count.checked_mul(self.page_size)?)?)
            })
            .ok_or(MappedPageError::OutOfBounds)?;
        // SAFETY: the callers pass runs of pages this state uses (regular
        // pages and committed copies), which the writer does not write
        // while the state lives (module docs).
        unsafe { self.map.range(range) }.ok_or(MappedPageError::OutOfBounds)
    }

    /// The pages whose bytes this state holds, as ascending runs of
    /// `(first, count)`: allocated regular pages and the committed copy of
    /// each protected page.
    pub(super) fn used_pages(&self) -> Vec<(u64, u64)> {
        let mut pages: Vec<(u64, u64)> = Vec::new();
        let mut next = 0;
        while let Some(page) = self.regular.next_one(next) {
            match pages.last_mut() {
                Some((start, count)) if *start + *count == page => *count += 1,
                _ => pages.push((page, 1)),
            }
            next = page + 1;
        }
        for entry in &self.directory {
            for (which, &page) in entry.pages().iter().enumerate() {
                if entry.holds_bytes(which) {
                    pages.push((page, 1));
                }
            }
        }
        pages.sort_unstable();
        pages
    }

    #[inline]
    pub(crate) fn regular_page(&self, page: u64, page_size: usize) -> Result<&[u8]> {
        debug_assert_eq!(page_size, self.page_size);
        if self.regular.get(page) {
            return self.page_sized(page, page_size);
        }
        Err(not_regular(page, self.total_pages))
    }

    pub(super) fn entry(&self, slot: u64) -> Option<DirEntry> {
        let entry = *self.directory.get(usize::try_from(slot).ok()?)?;
        entry.in_use().then_some(entry)
    }

    pub(crate) fn protected_page(&self, slot: u64) -> Result<&[u8]> {
        let entry = self
            .entry(slot)
            .filter(DirEntry::is_protected)
            .ok_or(MappedPageError::OutOfBounds)?;
        match entry.state {
            EntryState::Active(copy) => self.page(entry.copies[usize::from(copy)]),
            _ => Ok(&self.zero_page),
        }
    }

    /// Whether this state names `page` as the committed copy of `slot`.
    pub(super) fn names_copy(&self, slot: u64, page: u64) -> bool {
        self.entry(slot).is_some_and(|entry| match entry.state {
            EntryState::Active(copy) => entry.copies[usize::from(copy)] == page,
            _ => false,
        })
    }
}

/// The writer's record of the snapshots it gave out.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    /// Every state given out that may still live, oldest first; the newest
    /// is also the one the next snapshot shares if nothing was committed.
    states: Mutex<Vec<(u64, Weak<Frozen>)>>,
    /// How many given-out states live: the writer's fast path when none.
    pub(super) alive: Arc<AtomicUsize>,
}

impl Registry {
    pub(super) fn states(&self) -> MutexGuard<'_, Vec<(u64, Weak<Frozen>)>> {
        // A panic while holding this lock leaves the list as valid as before.
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.retain(|(_, state)| state.strong_count() > 0);
        states
    }

    pub(super) fn any_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire) > 0
    }

    /// The live states, oldest first.
    pub(super) fn live(&self) -> Vec<Arc<Frozen>> {
        if !self.any_alive() {
            return Vec::new();
        }
        self.states()
            .iter()
            .filter_map(|(_, state)| state.upgrade())
            .collect()
    }

    /// The newest live state, without collecting the others.
    pub(super) fn newest(&self) -> Option<Arc<Frozen>> {
        if !self.any_alive() {
            return None;
        }
        self.states()
            .iter()
            .rev()
            .find_map(|(_, state)| state.upgrade())
    }

    /// The generation of the oldest live state.
    pub(super) fn oldest_generation(&self) -> Option<u64> {
        if !self.any_alive() {
            return None;
        }
        self.states()
            .iter()
            .find(|(_, state)| state.strong_count() > 0)
            .map(|&(generation, _)| generation)
    }
}

impl fmt::Debug for Frozen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Frozen")
            .field("generation", &self.generation)
            .finish_non_exhaustive()
    }
}

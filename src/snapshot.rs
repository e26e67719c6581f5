//! Snapshots: read views of one committed state that any number of threads
//! read while the writer goes on (contract R1–R3).
//!
//! A snapshot is an `Arc` of a [`Frozen`] state: a copy of the allocation
//! bitmap (one bit per page) and of the protected directory as of a commit,
//! and the mapping of the file at that time. Taking the first snapshot after
//! a commit makes the copy; every later one until the next commit shares it.
//!
//! # Why reading from other threads is sound
//! A snapshot reads only two kinds of page: regular pages allocated in its
//! state, and the committed copy of each protected page in its state. The
//! writer is the only one who writes the file, and it never writes either:
//!
//! 1. **Freed pages wait.** A page freed by the commit of generation `g` is
//!    not handed out again while a snapshot of a generation before `g`
//!    lives ([`Core::release_unpinned`]), so a page a snapshot counts as
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
//! 5. **Mappings outlive growth.** Growing the file maps it anew; the older
//!    mapping, which a snapshot holds by `Arc`, stays mapped, and the file
//!    stays locked, until the last snapshot holding it is dropped. The file
//!    is never cut below a length a snapshot's state counts on.
//!
//! So no byte a snapshot can read is written while it lives: there is no
//! data race and no torn read, on any thread. The writer's own metadata
//! writes (roots, page trees, check pages) go to pages snapshots never read.

#![allow(unsafe_code)]

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::engine::BitVec;
use crate::engine::Core;
use crate::engine::{not_regular, FreeMap};
use crate::error::{MappedPageError, Result};
use crate::format::record::{DirEntry, EntryState};
use crate::io::{MapRegion, View};
use crate::page::{MappedPage, PageId};
use crate::pager::Pager;
use crate::protected::ProtectedPageId;

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
        }
    }

    #[inline]
    fn page(&self, page: u64) -> Result<&[u8]> {
        self.page_sized(page, self.page_size)
    }

    /// [`Frozen::page`] with the page size given by a caller that knows it
    /// at compile time (`Snapshot::get`): the offset is then a shift.
    #[inline]
    fn page_sized(&self, page: u64, page_size: usize) -> Result<&[u8]> {
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

    pub(crate) fn page_size(&self) -> usize {
        self.page_size
    }

    pub(crate) fn regular_bits(&self) -> &BitVec {
        &self.regular
    }

    pub(crate) fn directory(&self) -> &[DirEntry] {
        &self.directory
    }

    /// `count` pages from `first` on, as one slice: pages this state uses.
    pub(crate) fn pages(&self, first: u64, count: u64) -> Result<&[u8]> {
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
    pub(crate) fn used_pages(&self) -> Vec<(u64, u64)> {
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
            if let EntryState::Active(copy) = entry.state {
                pages.push((entry.copies[usize::from(copy)], 1));
            }
        }
        pages.sort_unstable();
        pages
    }

    #[inline]
    fn regular_page(&self, page: u64, page_size: usize) -> Result<&[u8]> {
        debug_assert_eq!(page_size, self.page_size);
        if self.regular.get(page) {
            return self.page_sized(page, page_size);
        }
        Err(not_regular(page, self.total_pages))
    }

    fn entry(&self, slot: u64) -> Option<DirEntry> {
        let entry = *self.directory.get(usize::try_from(slot).ok()?)?;
        entry.in_use().then_some(entry)
    }

    fn protected_page(&self, slot: u64) -> Result<&[u8]> {
        let entry = self.entry(slot).ok_or(MappedPageError::OutOfBounds)?;
        match entry.state {
            EntryState::Active(copy) => self.page(entry.copies[usize::from(copy)]),
            _ => Ok(&self.zero_page),
        }
    }

    /// Whether this state names `page` as the committed copy of `slot`.
    fn names_copy(&self, slot: u64, page: u64) -> bool {
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
    alive: Arc<AtomicUsize>,
}

impl Registry {
    fn states(&self) -> MutexGuard<'_, Vec<(u64, Weak<Frozen>)>> {
        // A panic while holding this lock leaves the list as valid as before.
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        states.retain(|(_, state)| state.strong_count() > 0);
        states
    }

    fn any_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire) > 0
    }

    /// The live states, oldest first.
    fn live(&self) -> Vec<Arc<Frozen>> {
        if !self.any_alive() {
            return Vec::new();
        }
        self.states()
            .iter()
            .filter_map(|(_, state)| state.upgrade())
            .collect()
    }

    /// The newest live state, without collecting the others.
    fn newest(&self) -> Option<Arc<Frozen>> {
        if !self.any_alive() {
            return None;
        }
        self.states()
            .iter()
            .rev()
            .find_map(|(_, state)| state.upgrade())
    }

    /// The generation of the oldest live state.
    fn oldest_generation(&self) -> Option<u64> {
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

impl Core {
    /// The state as of the last commit, shared with earlier snapshots of it.
    pub(crate) fn freeze(&self) -> Result<Arc<Frozen>> {
        self.check_usable()?;
        let generation = self.journal.generation;
        let mut states = self.snapshots.states();
        if let Some(state) = states
            .last()
            .filter(|(g, _)| *g == generation)
            .and_then(|(_, state)| state.upgrade())
        {
            return Ok(state);
        }
        let state = Arc::new(Frozen::new(
            generation,
            &self.map,
            self.store.region(),
            Arc::clone(&self.zero_page),
            &self.snapshots.alive,
        ));
        states.push((generation, Arc::downgrade(&state)));
        Ok(state)
    }

    /// Whether any snapshot given out may still live.
    #[inline]
    pub(crate) fn snapshots_alive(&self) -> bool {
        self.snapshots.any_alive()
    }

    /// Fails with `InUseBySnapshot` if a live snapshot reads `page` (rule 3
    /// of the module docs).
    #[inline]
    pub(crate) fn check_not_in_snapshot(&self, page: u64) -> Result<()> {
        if !self.snapshots.any_alive() {
            return Ok(());
        }
        let newest = self.snapshots.newest();
        if newest.is_some_and(|state| state.regular.get(page)) {
            return Err(MappedPageError::InUseBySnapshot { page });
        }
        Ok(())
    }

    /// Whether a live snapshot names `page` as the committed copy of `slot`
    /// (rule 4).
    pub(crate) fn snapshot_names(&self, slot: u64, page: u64) -> bool {
        self.snapshots
            .live()
            .iter()
            .any(|state| state.names_copy(slot, page))
    }

    /// The generation of the oldest live snapshot, if any.
    fn oldest_snapshot(&self) -> Option<u64> {
        self.snapshots.oldest_generation()
    }

    /// Makes the pages held for snapshots reusable once no live snapshot is
    /// older than the commit that freed them (rule 1).
    pub(crate) fn release_unpinned(&mut self) {
        let oldest = self.oldest_snapshot();
        self.journal.reclaim.release(&mut self.map, oldest);
    }
}

impl<const PAGE_SIZE: usize> Pager<PAGE_SIZE> {
    /// A read view of the last committed state, for this thread or any
    /// other, while this pager goes on. The first snapshot after a commit
    /// copies the allocation bitmap (one bit per page) and the protected
    /// directory; later ones until the next commit share that copy. Cloning
    /// a snapshot is an `Arc` clone.
    ///
    /// While a snapshot lives, the pages it can read are never written: the
    /// pages freed after it are not reused until it is dropped, protected
    /// writes are staged in other pages, and writing in place through
    /// [`PageId::get_mut`] a page it can read fails with
    /// [`MappedPageError::InUseBySnapshot`] (write a fresh page in a
    /// [`Transaction`](crate::Transaction) instead).
    ///
    /// ```
    /// use mappedpages::Pager;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let id = txn.alloc()?;
    /// txn.get_mut(id)?.as_bytes_mut()[0] = 1;
    /// txn.commit()?;
    ///
    /// let snapshot = pager.snapshot()?;
    /// let reader = std::thread::spawn(move || snapshot.get(id).map(|p| p.as_bytes()[0]));
    /// let mut txn = pager.transaction()?; // the writer goes on meanwhile
    /// txn.free(id)?;
    /// txn.commit()?;
    /// assert_eq!(reader.join().unwrap()?, 1);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// `Unavailable` after an earlier I/O failure.
    pub fn snapshot(&self) -> Result<Snapshot<PAGE_SIZE>> {
        Ok(Snapshot {
            state: self.core().freeze()?,
        })
    }
}

/// A read view of one committed state; see [`Pager::snapshot`]. `Send +
/// Sync`, and cheap to clone: share it, or clone it into each thread.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// let id = pager.alloc()?;
/// let snapshot = pager.snapshot()?;
/// let reader = std::thread::spawn(move || snapshot.get(id).map(|page| page.as_bytes()[0]));
/// pager.alloc()?; // the writer goes on
/// assert_eq!(reader.join().expect("reader")?, 0);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Clone)]
pub struct Snapshot<const PAGE_SIZE: usize> {
    pub(crate) state: Arc<Frozen>,
}

impl<const PAGE_SIZE: usize> fmt::Debug for Snapshot<PAGE_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("page_size", &PAGE_SIZE)
            .field("generation", &self.state.generation)
            .finish_non_exhaustive()
    }
}

impl<const PAGE_SIZE: usize> Snapshot<PAGE_SIZE> {
    /// The bytes of a regular page allocated in this state, as committed.
    ///
    /// # Errors
    /// `NotAllocated` for a page not allocated in this state, `ReservedPage`,
    /// `OutOfBounds`.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let id = txn.alloc()?;
    /// txn.get_mut(id)?.as_bytes_mut()[0] = 1;
    /// txn.commit()?;
    /// let snapshot = pager.snapshot()?;
    /// pager.free(id)?; // later commits do not change what the snapshot reads
    /// assert_eq!(snapshot.get(id)?.as_bytes()[0], 1);
    /// assert!(pager.get(id).is_err());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    #[inline]
    pub fn get(&self, id: PageId<PAGE_SIZE>) -> Result<&MappedPage> {
        self.state
            .regular_page(id.0, PAGE_SIZE)
            .map(MappedPage::from_bytes)
    }

    /// The committed bytes of a protected page in this state (zeros if it
    /// was never committed).
    ///
    /// # Errors
    /// `OutOfBounds` if the id names no protected page in use in this state.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let root = pager.alloc_protected()?;
    /// let snapshot = pager.snapshot()?;
    /// let mut writer = root.get_mut(&mut pager)?;
    /// writer.page_mut().as_bytes_mut()[0] = 1;
    /// writer.commit()?;
    /// assert_eq!(snapshot.get_protected(root)?.as_bytes()[0], 0); // as it was
    /// assert_eq!(pager.snapshot()?.get_protected(root)?.as_bytes()[0], 1);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn get_protected(&self, id: ProtectedPageId<PAGE_SIZE>) -> Result<&MappedPage> {
        self.state.protected_page(id.0).map(MappedPage::from_bytes)
    }

    /// The regular pages allocated in this state, ascending.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_bulk(2)?;
    /// let snapshot = pager.snapshot()?;
    /// pager.alloc()?;
    /// assert_eq!(snapshot.iter_allocated_pages().collect::<Vec<_>>(), ids);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn iter_allocated_pages(&self) -> impl Iterator<Item = PageId<PAGE_SIZE>> + '_ {
        let mut next = 0;
        std::iter::from_fn(move || {
            let page = self.state.regular.next_one(next)?;
            next = page + 1;
            Some(PageId(page))
        })
    }

    /// The protected pages in use in this state, ascending.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let root = pager.alloc_protected()?;
    /// let snapshot = pager.snapshot()?;
    /// assert_eq!(snapshot.iter_allocated_protected_pages().collect::<Vec<_>>(), [root]);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn iter_allocated_protected_pages(
        &self,
    ) -> impl Iterator<Item = ProtectedPageId<PAGE_SIZE>> + '_ {
        self.state
            .directory
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.in_use())
            .map(|(slot, _)| ProtectedPageId(slot as u64))
    }

    /// The generation of the commit this snapshot shows.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let snapshot = pager.snapshot()?;
    /// pager.alloc()?;
    /// assert_eq!(snapshot.generation() + 1, pager.generation());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn generation(&self) -> u64 {
        self.state.generation
    }

    /// Writes this state to a new file at `path`, which opens with
    /// [`Pager::open`] to exactly this state: the same page ids and bytes,
    /// free pages left out (a sparse file, cut after its last page in use).
    /// The writer goes on meanwhile. The copy is synced before this returns.
    ///
    /// It is built in a new file beside `path`, under a temporary name of
    /// its own (`path`'s name with the process id, a counter and
    /// `.partial` added), and gets the name `path` only when complete, by
    /// a hard link, which never replaces a file: a crash during a copy
    /// leaves nothing at `path` (perhaps a temporary file, which can be
    /// deleted), and of two copies to one `path` the second to finish is
    /// refused. The file system of `path` must support hard links. No
    /// other file is touched.
    ///
    /// ```
    /// use mappedpages::Pager;
    /// # let dir = tempfile::tempdir()?;
    /// # let (path, copy) = (dir.path().join("data.bin"), dir.path().join("copy.bin"));
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// pager.snapshot()?.copy_to(&copy)?;
    /// let copied = Pager::<4096>::open(&copy)?;
    /// assert_eq!(copied.iter_allocated_pages().collect::<Vec<_>>(), vec![id]);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// `Io`: of kind `AlreadyExists` if a file has the name `path` before
    /// the copy starts or when it is complete (a file made meanwhile, or
    /// another copy that finished first; that file is left as it is),
    /// `InvalidInput` if `path` names no file (such as `..`), `StorageFull`
    /// and the like. On error the temporary file is removed and nothing is
    /// left at `path`, except when only the final sync of the directory
    /// fails: then the complete copy is at `path`, but its name may not
    /// survive a power loss.
    pub fn copy_to(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        self.state.copy_to(path.as_ref(), &mut |_, _| {})
    }

    /// [`Snapshot::copy_to`], telling `progress(done, total)` how many of
    /// the pages to copy are written so far. A panic in `progress` stops
    /// the copy and removes its temporary file as it unwinds.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// # let copy = dir.path().join("copy.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// pager.alloc_bulk(10)?;
    /// let mut last = (0, 0);
    /// pager.snapshot()?.copy_to_with_progress(&copy, |done, total| last = (done, total))?;
    /// assert_eq!(last.0, last.1); // it ends with everything written
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn copy_to_with_progress(
        &self,
        path: impl AsRef<std::path::Path>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<()> {
        self.state.copy_to(path.as_ref(), &mut progress)
    }

    /// Pages in the file in this state, the reserved pages included.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let pager = mappedpages::Pager::<4096>::create(&path)?;
    /// assert_eq!(pager.snapshot()?.page_count(), pager.page_count());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn page_count(&self) -> u64 {
        self.state.total_pages
    }

    /// Allocated regular pages in this state.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// pager.alloc_bulk(3)?;
    /// assert_eq!(pager.snapshot()?.allocated_page_count(), 3);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn allocated_page_count(&self) -> u64 {
        self.state.regular_count
    }
}

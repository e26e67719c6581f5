//! `Pager`: the public face. Thin: every method checks types and delegates
//! to the engine (`engine/core.rs`).

use std::fmt;
use std::path::Path;

use crate::engine::{Core, Settings};
use crate::engine::{Durability, RecoveryReport};
use crate::error::Result;
use crate::options::PagerOptions;
use crate::page::PageId;
use crate::protected::ProtectedPageId;

/// A file of fixed-size pages, memory-mapped, with crash-consistent
/// allocation and protected (copy-on-write) pages.
///
/// `PAGE_SIZE` is a power of two of at least 1024 bytes; anything else is a
/// compile error:
///
/// ```compile_fail,E0080
/// # let dir = tempfile::tempdir().unwrap();
/// let _pager = mappedpages::Pager::<1000>::create(dir.path().join("x"));
/// ```
///
/// ```compile_fail,E0080
/// # let dir = tempfile::tempdir().unwrap();
/// let _pager = mappedpages::Pager::<512>::create(dir.path().join("x"));
/// ```
///
/// Every method that changes allocation state is one atomic commit: after a
/// crash at any instant the file reopens to the state after the last call
/// that returned `Ok`, or after the call in flight, never a mix.
///
/// ```
/// use mappedpages::Pager;
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.bin");
/// let mut pager = Pager::<4096>::create(&path)?;
/// let id = pager.alloc()?;
/// id.get_mut(&mut pager)?.as_bytes_mut().fill(0xAB);
/// pager.sync()?;
/// drop(pager);
///
/// let pager = Pager::<4096>::open(&path)?;
/// assert_eq!(id.get(&pager)?.as_bytes()[0], 0xAB);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub struct Pager<const PAGE_SIZE: usize> {
    core: Core,
}

impl<const PAGE_SIZE: usize> fmt::Debug for Pager<PAGE_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pager")
            .field("page_size", &PAGE_SIZE)
            .field("page_count", &self.page_count())
            .field("free_page_count", &self.free_page_count())
            .field("generation", &self.generation())
            .finish_non_exhaustive()
    }
}

impl<const PAGE_SIZE: usize> Pager<PAGE_SIZE> {
    const VALID_PAGE_SIZE: () = assert!(
        PAGE_SIZE.is_power_of_two() && PAGE_SIZE >= 1024 && PAGE_SIZE <= 1 << 30,
        "PAGE_SIZE must be a power of two from 1024 to 2^30"
    );

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }

    pub(crate) fn core_mut(&mut self) -> &mut Core {
        &mut self.core
    }

    /// Settings for creating or opening a file: durability, growth, initial
    /// size. See [`PagerOptions`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{Durability, Pager};
    /// let pager = Pager::<4096>::options()
    ///     .durability(Durability::Deferred)
    ///     .create(&path)?;
    /// assert_eq!(pager.durability(), Durability::Deferred);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn options() -> PagerOptions<PAGE_SIZE> {
        PagerOptions::new()
    }

    fn settings(options: &PagerOptions<PAGE_SIZE>) -> Settings {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID_PAGE_SIZE;
        Settings {
            page_size: PAGE_SIZE,
            durability: options.durability,
            max_growth_pages: options.max_growth_pages(),
            shrink_threshold_pages: options.shrink_threshold_pages(),
            preallocate: options.preallocate,
            transaction_memory: options.transaction_memory,
            initial_pages: options.initial_pages,
            hook: options.hook.clone(),
            process_readers: options.process_readers,
            reader_bounds: options.reader_bounds,
        }
    }

    pub(crate) fn create_with(path: &Path, options: &PagerOptions<PAGE_SIZE>) -> Result<Self> {
        let core = Core::create(path, Self::settings(options)).map_err(|e| e.with_path(path))?;
        Ok(Pager { core })
    }

    pub(crate) fn open_with(path: &Path, options: &PagerOptions<PAGE_SIZE>) -> Result<Self> {
        let core = Core::open(path, Self::settings(options)).map_err(|e| e.with_path(path))?;
        let pager = Pager { core };
        pager.log_recovery(path);
        Ok(pager)
    }

    /// Reports a fallback through the `log` facade: a program that only
    /// looks at its data would otherwise never learn that the newest commit
    /// in the file was damaged or torn, and that open went back to the one
    /// before it.
    fn log_recovery(&self, path: &Path) {
        let report = self.recovery();
        if !report.fell_back {
            return;
        }
        let copy = if report.root_copy == 0 { 'A' } else { 'B' };
        let other = if report.root_copy == 0 { 'B' } else { 'A' };
        log::warn!(
            "{}: opened generation {} from metadata copy {copy}; copy {other} was not used ({}); the next commit rewrites it",
            path.display(),
            report.generation,
            report.other_copy_problem.as_deref().unwrap_or("damaged"),
        );
    }

    /// Creates a new file with the default options; fails with an `Io` error
    /// of kind `AlreadyExists` if the file exists.
    ///
    /// A `create` that fails removes the file it made, so it can simply be
    /// tried again. A crash (of the process or the machine) in the middle of
    /// `create` can leave a file that was never completely created; `open`
    /// reports it as [`MappedPageError::IncompleteCreate`](crate::MappedPageError::IncompleteCreate).
    /// Such a file holds no data: delete it and create it again.
    ///
    /// # Errors
    /// `Io` (kind `AlreadyExists` if the file exists, `StorageFull` if the
    /// disk cannot hold the initial size), `InvalidCount` if the initial size
    /// is more pages than any file can hold (see [`Pager::alloc_bulk`]).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{MappedPageError, Pager};
    /// let pager = Pager::<4096>::create(&path)?;
    /// assert_eq!(pager.allocated_page_count(), 0);
    /// drop(pager);
    /// // An existing file is never overwritten.
    /// match Pager::<4096>::create(&path) {
    ///     Err(MappedPageError::Io(e)) => assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists),
    ///     other => panic!("expected AlreadyExists, got {other:?}"),
    /// }
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn create(path: impl AsRef<Path>) -> Result<Self> {
        Self::options().create(path)
    }

    /// Opens an existing file with the default options, recovering from an
    /// interrupted commit if there was one (see [`Pager::recovery`]).
    ///
    /// # Errors
    /// `Io` (kind `NotFound` for a missing file), `NotARegularFile` for a
    /// directory, FIFO or device, `Locked` if another `Pager` holds the
    /// file, `InvalidPageSize` for a file of another page size,
    /// `CorruptSuperblock`, `CorruptMetadata`, `UnsupportedVersion`,
    /// `FileTruncated`, `IncompleteCreate` for a file whose `create` was
    /// interrupted (delete it and create it again).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::Pager;
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// drop(pager);
    ///
    /// let pager = Pager::<4096>::open(&path)?;
    /// assert_eq!(pager.iter_allocated_pages().collect::<Vec<_>>(), [id]);
    /// assert!(!pager.recovery().fell_back);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::options().open(path)
    }

    /// Allocates a regular page, growing the file if needed. One commit.
    ///
    /// # Errors
    /// `Io` (kind `StorageFull`, for example) if the file must grow and
    /// cannot: nothing changes, the file keeps its length and the pager
    /// stays usable, so the call can be retried once there is space.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// assert!(id.get(&pager)?.as_bytes().iter().all(|&b| b == 0));
    /// assert_eq!(pager.allocated_page_count(), 1);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn alloc(&mut self) -> Result<PageId<PAGE_SIZE>> {
        let pages = self.core.alloc_regular(1)?;
        Ok(PageId(pages.first().copied().unwrap_or_default()))
    }

    /// Frees a regular page. One commit.
    ///
    /// Freeing needs no more free space than the metadata pages it writes: a
    /// few pages when its commit rewrites the free-space map (once every few
    /// dozen commits), none otherwise.
    ///
    /// # Errors
    /// `DoubleFree` if it is free, `OutOfBounds`, `ReservedPage`,
    /// `NotAllocated` for an internal page. Nothing changes on error; `Io`
    /// when the file cannot grow for the metadata pages, with the pager still
    /// usable and the page still allocated.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::MappedPageError;
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// pager.free(id)?;
    /// assert!(matches!(pager.free(id), Err(MappedPageError::DoubleFree)));
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn free(&mut self, id: PageId<PAGE_SIZE>) -> Result<()> {
        self.core.free_regular(&[id.0])
    }

    /// Allocates `count` regular pages in one commit, lowest page numbers
    /// first.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_bulk(10)?;
    /// assert_eq!(ids.len(), 10);
    /// pager.free_bulk(ids)?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// `InvalidCount` for a count no file could hold: more pages in use than
    /// the format can number, or than fit in the longest file the OS, the
    /// address space (the whole file is mapped) and the process's file-size
    /// limit allow; checked before anything is touched. Zero is no error: an
    /// empty `Vec`, with no commit and no sync. `Io` if the file cannot grow
    /// by what is needed: the pager tries one growth of a whole step (see
    /// [`PagerOptions::max_growth_step`]) or of what the call needs and room
    /// for a checkpoint, whichever is more, then the least growth that does,
    /// and if neither fits returns the error with nothing changed (the file
    /// gives back what it grew).
    pub fn alloc_bulk(&mut self, count: usize) -> Result<Vec<PageId<PAGE_SIZE>>> {
        let pages = self.core.alloc_regular(count as u64)?;
        Ok(pages.into_iter().map(PageId).collect())
    }

    /// Frees regular pages in one commit. Every id is checked first: one bad
    /// id (or one named twice, `DoubleFree`) and nothing changes.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_bulk(3)?;
    /// pager.free_bulk(ids)?; // one commit
    /// assert_eq!(pager.allocated_page_count(), 0);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn free_bulk(&mut self, ids: Vec<PageId<PAGE_SIZE>>) -> Result<()> {
        let pages: Vec<u64> = ids.iter().map(|id| id.0).collect();
        self.core.free_regular(&pages)
    }

    /// Allocates a protected page, which reads as zeros until its first
    /// commit. One commit.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::ProtectedPageId;
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let root = pager.alloc_protected()?;
    /// assert_eq!(root, ProtectedPageId::FIRST); // the first one in a new file
    /// assert!(root.get(&pager)?.as_bytes().iter().all(|&b| b == 0));
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn alloc_protected(&mut self) -> Result<ProtectedPageId<PAGE_SIZE>> {
        let slots = self.core.alloc_protected(1)?;
        Ok(ProtectedPageId(slots.first().copied().unwrap_or_default()))
    }

    /// Frees a protected page and both its copies. One commit.
    ///
    /// # Errors
    /// `DoubleFree` if the page is already free, `OutOfBounds` if the id is
    /// past the protected-page directory (never handed out); `Io` if the
    /// commit fails. Nothing changes on a bad id.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc_protected()?;
    /// pager.free_protected(id)?;
    /// assert!(id.get(&pager).is_err());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn free_protected(&mut self, id: ProtectedPageId<PAGE_SIZE>) -> Result<()> {
        self.core.free_protected(&[id.0])
    }

    /// Allocates `count` protected pages in one commit (all or none).
    ///
    /// # Errors
    /// `InvalidCount` for a count no file could hold (as for
    /// [`Pager::alloc_bulk`], two pages each; zero is no error: an empty
    /// `Vec`, no commit); `Io` if the file cannot grow, with nothing changed.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_protected_bulk(3)?; // one commit
    /// assert_eq!(pager.iter_allocated_protected_pages().count(), 3);
    /// # drop(ids);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn alloc_protected_bulk(
        &mut self,
        count: usize,
    ) -> Result<Vec<ProtectedPageId<PAGE_SIZE>>> {
        let slots = self.core.alloc_protected(count as u64)?;
        Ok(slots.into_iter().map(ProtectedPageId).collect())
    }

    /// Frees protected pages in one commit; every id is checked first.
    ///
    /// # Errors
    /// As [`Pager::free_protected`], and `DoubleFree` for an id named
    /// twice. One bad id and nothing changes; an empty list does nothing.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_protected_bulk(3)?;
    /// pager.free_protected_bulk(ids)?;
    /// assert_eq!(pager.iter_allocated_protected_pages().count(), 0);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn free_protected_bulk(&mut self, ids: Vec<ProtectedPageId<PAGE_SIZE>>) -> Result<()> {
        let slots: Vec<u64> = ids.iter().map(|id| id.0).collect();
        self.core.free_protected(&slots)
    }

    /// Makes every byte written to regular pages, and every commit, durable.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// id.get_mut(&mut pager)?.as_bytes_mut()[0] = 1; // written in place
    /// pager.sync()?; // durable now
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn sync(&mut self) -> Result<()> {
        self.core.sync()
    }

    /// Gives the free pages at the end of the file back to the file system
    /// and returns how many it gave back. One commit, synced in
    /// every durability mode before the file is cut, so a crash at any point
    /// reopens to the state before or after it.
    ///
    /// Allocation takes the lowest free pages, so an engine that writes
    /// copy-on-write drains the end of the file by itself; to move the
    /// pages that stand in the way, see [`Transaction::relocate`](crate::Transaction::relocate).
    /// Pages a live [`Snapshot`](crate::Snapshot) still reads stay.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_bulk(5000)?; // grows the file
    /// let grown = pager.page_count();
    /// pager.free_bulk(ids)?;
    /// let given_back = pager.shrink()?;
    /// assert_eq!(pager.page_count(), grown - given_back);
    /// assert!(pager.page_count() < 100);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// `Io` if the commit cannot be made (nothing changes, or the pager is
    /// unavailable after a failed sync, as for any commit).
    pub fn shrink(&mut self) -> Result<u64> {
        self.core.shrink(0, 0)
    }

    /// The allocated regular pages in ascending order; `.rev()` gives them
    /// from the top down, the order in which an engine that compacts moves
    /// them (see [`Pager::shrink`]). Internal pages and protected pages are
    /// never shown.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_bulk(3)?;
    /// assert_eq!(pager.iter_allocated_pages().collect::<Vec<_>>(), ids);
    /// assert_eq!(pager.iter_allocated_pages().rev().next(), ids.last().copied());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn iter_allocated_pages(&self) -> AllocatedPageIter<'_, PAGE_SIZE> {
        AllocatedPageIter {
            pager: self,
            next: 0,
            end: self.core.total_pages(),
        }
    }

    /// The protected pages in use, in ascending order of id.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_protected_bulk(2)?;
    /// assert_eq!(pager.iter_allocated_protected_pages().collect::<Vec<_>>(), ids);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn iter_allocated_protected_pages(&self) -> AllocatedProtectedPageIter<'_, PAGE_SIZE> {
        AllocatedProtectedPageIter {
            pager: self,
            next: 0,
        }
    }

    /// The page size in bytes: `PAGE_SIZE`.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let pager = mappedpages::Pager::<4096>::create(&path)?;
    /// assert_eq!(pager.page_size(), 4096);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn page_size(&self) -> usize {
        PAGE_SIZE
    }

    /// Pages in the file, the reserved pages 0 to 2 included.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let before = pager.page_count();
    /// pager.alloc_bulk(before as usize)?; // more than is free: the file grows
    /// assert!(pager.page_count() > before);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn page_count(&self) -> u64 {
        self.core.total_pages()
    }

    /// Pages available for allocation without growing the file.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let free = pager.free_page_count();
    /// pager.alloc()?;
    /// assert_eq!(pager.free_page_count(), free - 1);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn free_page_count(&self) -> u64 {
        self.core.free_pages()
    }

    /// Allocated regular pages.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// pager.alloc_bulk(2)?;
    /// pager.alloc_protected()?; // not a regular page
    /// assert_eq!(pager.allocated_page_count(), 2);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn allocated_page_count(&self) -> u64 {
        self.core.regular_count()
    }

    /// The readers that follow this writer from other processes (and the
    /// [`LiveReader`](crate::LiveReader)s of this one), from the file's
    /// reader table: the commit each reads, how many commits it is behind,
    /// the pages its commit counts and the freed pages it keeps from reuse
    /// (`pins`). Empty when the file has no reader table
    /// (see [`PagerOptions::process_readers`](crate::PagerOptions::process_readers)).
    /// Readers found dead on the way are cleared, and what they pinned is
    /// reused.
    ///
    /// # Errors
    /// `Io` if the table cannot be read.
    ///
    /// # Examples
    /// ```
    /// use mappedpages::{LiveReader, Pager};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = Pager::<4096>::options().process_readers(true).create(&path)?;
    /// assert!(pager.readers()?.is_empty());
    /// let reader = LiveReader::<4096>::open(&path)?;
    /// let snapshot = reader.snapshot()?;
    /// pager.alloc()?;
    /// let readers = pager.readers()?;
    /// assert_eq!((readers.len(), readers[0].behind), (1, 1));
    /// assert_eq!(readers[0].pins, Some(0)); // nothing freed since it began
    /// assert_eq!(readers[0].generation, snapshot.generation());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn readers(&self) -> Result<Vec<crate::ReaderInfo>> {
        let entries = self.core.process_readers()?;
        let core = &self.core;
        let pins = |generation| Some(core.pages_pinned_by(generation));
        Ok(crate::ReaderInfo::listed(entries, core.generation(), pins))
    }

    /// The generation of the newest commit (one per committing call).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let before = pager.generation();
    /// pager.alloc()?; // one commit
    /// assert_eq!(pager.generation(), before + 1);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn generation(&self) -> u64 {
        self.core.generation()
    }

    /// The durability mode this pager was opened with.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{Durability, Pager};
    /// let pager = Pager::<4096>::create(&path)?;
    /// assert_eq!(pager.durability(), Durability::Immediate); // the default
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn durability(&self) -> Durability {
        self.core.durability()
    }

    /// What `open` found: the generation it opened and whether it fell back
    /// from a damaged newer metadata copy.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::Pager;
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// pager.alloc()?;
    /// let generation = pager.generation();
    /// drop(pager);
    /// let pager = Pager::<4096>::open(&path)?;
    /// let report = pager.recovery();
    /// assert_eq!(report.generation, generation);
    /// assert!(!report.fell_back && report.other_copy_problem.is_none());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn recovery(&self) -> &RecoveryReport {
        self.core.recovery()
    }

    /// Sync calls this pager has made since it was opened (for tests and
    /// benchmarks of the sync budget).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let before = pager.sync_count();
    /// let mut txn = pager.transaction()?;
    /// let id = txn.alloc()?;
    /// txn.get_mut(id)?.as_bytes_mut()[0] = 1;
    /// txn.commit()?;
    /// assert_eq!(pager.sync_count() - before, 1); // one sync per Immediate commit
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn sync_count(&self) -> u64 {
        self.core.sync_count()
    }
}

/// Finding your root again after a reopen.
impl<const PAGE_SIZE: usize> ProtectedPageId<PAGE_SIZE> {
    /// The id of the first protected page allocated in a new file, by
    /// [`Pager::alloc_protected`], [`Pager::alloc_protected_bulk`] or
    /// [`Transaction::alloc_protected`](crate::Transaction::alloc_protected):
    /// slot 0.
    ///
    /// A storage engine keeps its root (the page numbers of its tree, its
    /// own superblock) in a protected page. Allocating that page first, right
    /// after [`Pager::create`], makes its id this constant, so a program
    /// finds its root after [`Pager::open`] without storing the id anywhere.
    /// (A protected id is the lowest free slot when it is allocated, so the
    /// slot stays `FIRST` as long as it is not freed.)
    ///
    /// ```
    /// use mappedpages::{Pager, ProtectedPageId};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let root = pager.alloc_protected()?;
    /// assert_eq!(root, ProtectedPageId::FIRST);
    /// let mut writer = root.get_mut(&mut pager)?;
    /// writer.page_mut().as_bytes_mut()[..4].copy_from_slice(b"root");
    /// writer.commit()?;
    /// drop(pager);
    ///
    /// let pager = Pager::<4096>::open(&path)?;
    /// assert_eq!(&pager.get_protected(ProtectedPageId::FIRST)?.as_bytes()[..4], b"root");
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub const FIRST: Self = ProtectedPageId(0);
}

/// Iterator over allocated regular pages; see [`Pager::iter_allocated_pages`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// pager.alloc_bulk(4)?;
/// let highest_first: Vec<_> = pager.iter_allocated_pages().rev().collect();
/// assert_eq!(highest_first.len(), 4);
/// assert!(highest_first[0] > highest_first[3]);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Debug)]
pub struct AllocatedPageIter<'a, const PAGE_SIZE: usize> {
    pager: &'a Pager<PAGE_SIZE>,
    /// The pages not yet given out lie in `next..end`.
    next: u64,
    end: u64,
}

impl<const PAGE_SIZE: usize> Iterator for AllocatedPageIter<'_, PAGE_SIZE> {
    type Item = PageId<PAGE_SIZE>;

    fn next(&mut self) -> Option<Self::Item> {
        let page = self
            .pager
            .core
            .next_regular(self.next)
            .filter(|&page| page < self.end)?;
        self.next = page + 1;
        Some(PageId(page))
    }
}

impl<const PAGE_SIZE: usize> DoubleEndedIterator for AllocatedPageIter<'_, PAGE_SIZE> {
    fn next_back(&mut self) -> Option<Self::Item> {
        let page = self
            .pager
            .core
            .prev_regular(self.end)
            .filter(|&page| page >= self.next)?;
        self.end = page;
        Some(PageId(page))
    }
}

/// Iterator over protected pages in use; see
/// [`Pager::iter_allocated_protected_pages`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// let root = pager.alloc_protected()?;
/// assert_eq!(pager.iter_allocated_protected_pages().next(), Some(root));
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Debug)]
pub struct AllocatedProtectedPageIter<'a, const PAGE_SIZE: usize> {
    pager: &'a Pager<PAGE_SIZE>,
    next: u64,
}

impl<const PAGE_SIZE: usize> Iterator for AllocatedProtectedPageIter<'_, PAGE_SIZE> {
    type Item = ProtectedPageId<PAGE_SIZE>;

    fn next(&mut self) -> Option<Self::Item> {
        let slot = self.pager.core.next_protected(self.next)?;
        self.next = slot + 1;
        Some(ProtectedPageId(slot))
    }
}

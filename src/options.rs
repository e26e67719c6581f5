//! How a file is opened: durability, growth, initial size; and what `open`
//! found.

use std::marker::PhantomData;
use std::path::Path;

use crate::engine::{
    Durability, ReaderBounds, DEFAULT_MAX_GROWTH_STEP, DEFAULT_SHRINK_THRESHOLD,
    DEFAULT_TRANSACTION_MEMORY, MIN_FILE_PAGES,
};
use crate::error::Result;
use crate::fault::HookSlot;
use crate::pager::Pager;

/// Settings for creating or opening a file, made with [`Pager::options`].
///
/// ```
/// use mappedpages::{Durability, Pager};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.bin");
/// let pager = Pager::<4096>::options()
///     .durability(Durability::Deferred)
///     .initial_pages(1024)
///     .max_growth_step(64 << 20)
///     .create(&path)?;
/// assert_eq!(pager.page_count(), 1024);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct PagerOptions<const PAGE_SIZE: usize> {
    pub(crate) durability: Durability,
    pub(crate) initial_pages: u64,
    pub(crate) max_growth_step: u64,
    pub(crate) preallocate: bool,
    pub(crate) transaction_memory: usize,
    pub(crate) shrink_threshold: Option<u64>,
    pub(crate) hook: HookSlot,
    pub(crate) process_readers: bool,
    pub(crate) reader_bounds: ReaderBounds,
    _page_size: PhantomData<[u8; PAGE_SIZE]>,
}

/// Default initial size of a new file, in pages (reserved pages included).
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let pager = mappedpages::Pager::<4096>::create(&path)?;
/// assert_eq!(pager.page_count(), mappedpages::DEFAULT_INITIAL_PAGES);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub const DEFAULT_INITIAL_PAGES: u64 = 64;

impl<const PAGE_SIZE: usize> Default for PagerOptions<PAGE_SIZE> {
    fn default() -> Self {
        PagerOptions {
            durability: Durability::Immediate,
            initial_pages: DEFAULT_INITIAL_PAGES,
            max_growth_step: DEFAULT_MAX_GROWTH_STEP,
            preallocate: true,
            transaction_memory: DEFAULT_TRANSACTION_MEMORY,
            shrink_threshold: Some(DEFAULT_SHRINK_THRESHOLD),
            hook: HookSlot::default(),
            process_readers: false,
            reader_bounds: ReaderBounds::default(),
            _page_size: PhantomData,
        }
    }
}

impl<const PAGE_SIZE: usize> PagerOptions<PAGE_SIZE> {
    /// The defaults: [`Durability::Immediate`], 64 initial pages, growth
    /// steps of an eighth of the file (at least 4 MiB, at most 1 GiB), disk
    /// blocks reserved as the file grows.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{Durability, PagerOptions};
    /// let pager = PagerOptions::<4096>::new().create(&path)?;
    /// assert_eq!(pager.durability(), Durability::Immediate);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// When commits become durable. Default [`Durability::Immediate`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{Durability, Pager};
    /// drop(Pager::<4096>::create(&path)?);
    /// // The mode is chosen at every open; the file does not record it.
    /// let pager = Pager::<4096>::options().durability(Durability::Deferred).open(&path)?;
    /// assert_eq!(pager.durability(), Durability::Deferred);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Size of a newly created file in pages, the three reserved pages
    /// included (at least 4; smaller values are raised to 4). Used by
    /// `create` only.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let pager = mappedpages::Pager::<4096>::options().initial_pages(256).create(&path)?;
    /// assert_eq!(pager.page_count(), 256);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn initial_pages(mut self, pages: u64) -> Self {
        self.initial_pages = pages.max(MIN_FILE_PAGES);
        self
    }

    /// The most one growth step adds, in bytes (at least one page; default
    /// [`DEFAULT_MAX_GROWTH_STEP`], 1 GiB).
    ///
    /// When the file has no free page left for a call, it grows by one step:
    /// an eighth of its length, at least [`MIN_GROWTH_STEP`](crate::MIN_GROWTH_STEP) (4 MiB) and at
    /// most this cap, which wins over the minimum when it is lower. So a
    /// growth leaves at most an eighth of the file free (4 MiB in a file
    /// under 32 MiB), a 1 TiB file grows by 1 GiB at a time (not to 2 TiB),
    /// and a small file does not grow page by page (each
    /// growth costs one more sync).
    ///
    /// A call that needs more than a step grows, in one growth, by what it
    /// needs and the few pages one checkpoint of the grown file can take
    /// (about one page per 128 MiB of 4 KiB pages), so that the commit after
    /// it, a free after a bulk load say, need not grow the file again. When
    /// a growth does not fit (a nearly full disk), the file grows by the
    /// least the call needs instead.
    ///
    /// A lower cap trades more growths (one sync each) for less free tail;
    /// [`PagerOptions::initial_pages`] sizes the file up front instead.
    ///
    /// ```
    /// use mappedpages::{Pager, MIN_GROWTH_STEP};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// // Steps of 1 MiB at most: a small file grows by 256 pages of 4 KiB.
    /// let mut pager = Pager::<4096>::options()
    ///     .initial_pages(16)
    ///     .max_growth_step(1 << 20)
    ///     .create(&path)?;
    /// pager.alloc_bulk(13)?; // fills the file (3 pages are reserved)
    /// pager.alloc()?;
    /// assert_eq!(pager.page_count(), 16 + 256);
    ///
    /// // By default the same file grows by the 4 MiB minimum: 1024 pages.
    /// # let path = dir.path().join("default.bin");
    /// let mut pager = Pager::<4096>::options().initial_pages(16).create(&path)?;
    /// pager.alloc_bulk(13)?;
    /// pager.alloc()?;
    /// assert_eq!(pager.page_count(), 16 + MIN_GROWTH_STEP / 4096);
    ///
    /// // A bulk allocation larger than a step grows once, by what it needs
    /// // and a few pages.
    /// pager.alloc_bulk(4000)?;
    /// assert!(pager.free_page_count() < 16);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn max_growth_step(mut self, bytes: u64) -> Self {
        self.max_growth_step = bytes.max(PAGE_SIZE as u64);
        self
    }

    /// Whether growth reserves disk blocks (`fallocate`), default `true`.
    ///
    /// With `false` the file grows sparse: cheaper for huge, mostly empty
    /// files, but a write through [`crate::MappedPage::as_bytes_mut`] into a
    /// page with no block behind it on a full disk makes the kernel raise
    /// `SIGBUS`, which ends the process.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let pager = mappedpages::Pager::<4096>::options().preallocate(false).create(&path)?;
    /// assert_eq!(pager.free_page_count() + 3, pager.page_count());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn preallocate(mut self, preallocate: bool) -> Self {
        self.preallocate = preallocate;
        self
    }

    /// The most bytes of pages one transaction holds in memory, default
    /// [`DEFAULT_TRANSACTION_MEMORY`] (256 MiB); one page at least.
    ///
    /// A [`Transaction`](crate::Transaction) writes the pages it allocated
    /// into memory it holds, and its commit writes them to the file. Past
    /// this many bytes it writes them out early and goes on with empty
    /// buffers: a transaction of any size commits, and memory stays bounded,
    /// but a page written again after that is copied back from the file and
    /// written once more. An engine that writes each page once per
    /// transaction loses little under a small bound; one that rewrites pages
    /// at random (a B+tree loading unsorted keys) wants a bound that holds
    /// its whole working set. Only what a transaction writes is held:
    /// small transactions hold a few pages whatever the bound.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::options()
    ///     .transaction_memory(1 << 20) // 256 pages
    ///     .create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let ids = txn.alloc_bulk(1000)?;
    /// for &id in &ids {
    ///     txn.get_mut(id)?.as_bytes_mut().fill(7); // written out every 256 pages
    /// }
    /// txn.commit()?;
    /// assert!(ids.iter().all(|&id| pager.get(id).is_ok_and(|p| p.as_bytes()[0] == 7)));
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn transaction_memory(mut self, bytes: usize) -> Self {
        self.transaction_memory = bytes;
        self
    }

    /// Whether readers in other processes may follow this writer, default
    /// `false`. With `true`, opening or creating the file makes its reader
    /// table if it has none: a small file beside it, named after it with
    /// `-readers` appended, in which each reader records the committed
    /// state it reads. The writer then reuses no page such a reader may
    /// still read, and cuts the file no shorter than its state, as it does
    /// for its own [`Snapshot`](crate::Snapshot)s; a reader that dies is
    /// found dead by its lock, and what it pinned is reused.
    ///
    /// A file whose reader table exists is written this way whatever this
    /// option says, so that no writer can overlook readers a previous one
    /// accepted. The table is never removed by the crate.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let _pager = mappedpages::Pager::<4096>::options().process_readers(true).create(&path)?;
    /// assert!(dir.path().join("data.pages-readers").exists());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn process_readers(mut self, accept: bool) -> Self {
        self.process_readers = accept;
        self
    }

    /// Bounds the space a slow reader of another process can hold, default
    /// `None` (no bound). A reader keeps from reuse every page freed after
    /// the commit it reads, so one that never moves on makes the file grow
    /// without end. With `Some(pages)`, once the oldest reader keeps more
    /// than `pages` freed pages, every commit that changes something, and
    /// every new transaction, fails with `ReaderPinsTooMany`, which names
    /// the reader (its process id and the commit it reads) and changes
    /// nothing (a transaction's commit that fails so is undone, as one that
    /// cannot get disk space is).
    ///
    /// The reader is never cut off: it reads on, and its snapshots stay
    /// whole. The writer goes on once the reader drops its snapshot, moves
    /// to a newer commit, or dies (ending the process is the caller's
    /// choice: a dead reader is found dead by its lock at the next commit).
    /// [`Pager::sync`], [`Pager::shrink`] and reads keep working.
    ///
    /// # Examples
    /// ```
    /// use mappedpages::{LiveReader, MappedPageError, Pager};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = Pager::<4096>::options()
    ///     .process_readers(true)
    ///     .max_reader_pins(Some(8))
    ///     .create(&path)?;
    /// let ids = pager.alloc_bulk(20)?;
    /// let slow = LiveReader::<4096>::open(&path)?.snapshot()?;
    /// pager.free_bulk(ids)?; // 20 pages the slow reader may read
    /// pager.sync()?;
    /// assert!(matches!(pager.alloc(), Err(MappedPageError::ReaderPinsTooMany { .. })));
    /// drop(slow);
    /// pager.alloc()?; // the pages are reused
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn max_reader_pins(mut self, pages: Option<u64>) -> Self {
        self.reader_bounds.pins = pages;
        self
    }

    /// Bounds how far behind the newest commit a reader of another process
    /// may fall, in commits, default `None` (no bound). With
    /// `Some(commits)`, a commit that would leave the oldest reader more
    /// than `commits` commits behind, and a new transaction once the next
    /// commit would, fails with `ReaderTooFarBehind`, which names the
    /// reader and changes nothing, as [`max_reader_pins`](Self::max_reader_pins)
    /// does. A lag bound holds whatever the commits free, so it also keeps
    /// a reader of a file that mostly grows close to the writer.
    ///
    /// The reader is never cut off: its snapshots stay whole. The writer
    /// goes on once the reader takes a newer snapshot, drops its old one,
    /// or dies. Both bounds may be set; the first one passed is reported.
    ///
    /// # Examples
    /// ```
    /// use mappedpages::{LiveReader, MappedPageError, Pager};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = Pager::<4096>::options()
    ///     .process_readers(true)
    ///     .max_reader_lag(Some(3))
    ///     .create(&path)?;
    /// let reader = LiveReader::<4096>::open(&path)?;
    /// let slow = reader.snapshot()?;
    /// for _ in 0..3 {
    ///     pager.alloc()?; // one commit each
    /// }
    /// let refused = pager.alloc();
    /// assert!(matches!(refused, Err(MappedPageError::ReaderTooFarBehind { behind: 4, .. })));
    /// drop(slow);
    /// let _fresh = reader.snapshot()?; // the reader moves on
    /// pager.alloc()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn max_reader_lag(mut self, commits: Option<u64>) -> Self {
        self.reader_bounds.lag = commits;
        self
    }

    /// When a commit gives the free tail of the file back:
    /// once the free pages at the end are more than `bytes` and more than a
    /// quarter of the file, the commit is followed by a shrink that keeps a
    /// growth step of them (one more commit and sync; a Deferred pager does
    /// it at [`Pager::sync`]), but never below
    /// [`PagerOptions::initial_pages`]. `None` never shrinks by itself;
    /// [`Pager::shrink`] still does on request. Default
    /// [`DEFAULT_SHRINK_THRESHOLD`] (64 MiB).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::options().shrink_threshold(None).create(&path)?;
    /// let ids = pager.alloc_bulk(5000)?;
    /// let grown = pager.page_count();
    /// pager.free_bulk(ids)?;
    /// assert_eq!(pager.page_count(), grown); // kept until shrink() is called
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn shrink_threshold(mut self, bytes: Option<u64>) -> Self {
        self.shrink_threshold = bytes;
        self
    }

    /// Installs a hook told of every metadata write, sync and growth, which
    /// can fail any of them: for crash-consistency tests only (feature
    /// `fault-injection`). See [`crate::fault`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::fault::{IoEvent, IoHook};
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::sync::Arc;
    /// let syncs = Arc::new(AtomicU64::new(0));
    /// let counter = Arc::clone(&syncs);
    /// let hook = IoHook::new(move |event| {
    ///     if let IoEvent::Sync { .. } = event {
    ///         counter.fetch_add(1, Ordering::Relaxed);
    ///     }
    ///     Ok(())
    /// });
    /// let mut pager = mappedpages::Pager::<4096>::options().io_hook(hook).create(&path)?;
    /// let before = syncs.load(Ordering::Relaxed);
    /// pager.alloc()?;
    /// assert_eq!(syncs.load(Ordering::Relaxed), before + 1);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    #[cfg(feature = "fault-injection")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fault-injection")))]
    pub fn io_hook(mut self, hook: crate::fault::IoHook) -> Self {
        self.hook.hook = Some(hook);
        self
    }

    /// Creates a new file with these options; fails if it exists. A failed
    /// `create` removes the file it made; see [`Pager::create`] for a crash
    /// during `create`.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{Durability, Pager};
    /// let options = Pager::<4096>::options().durability(Durability::Deferred);
    /// let pager = options.create(&path)?;
    /// assert_eq!(pager.durability(), Durability::Deferred);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn create(&self, path: impl AsRef<Path>) -> Result<Pager<PAGE_SIZE>> {
        Pager::create_with(path.as_ref(), self)
    }

    /// Opens an existing file with these options.
    ///
    /// # Errors
    /// Those of [`Pager::open`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{Durability, Pager};
    /// drop(Pager::<4096>::create(&path)?);
    /// let pager = Pager::<4096>::options().durability(Durability::Deferred).open(&path)?;
    /// assert_eq!(pager.durability(), Durability::Deferred);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn open(&self, path: impl AsRef<Path>) -> Result<Pager<PAGE_SIZE>> {
        Pager::open_with(path.as_ref(), self)
    }

    pub(crate) fn shrink_threshold_pages(&self) -> Option<u64> {
        self.shrink_threshold.map(|bytes| bytes / PAGE_SIZE as u64)
    }

    pub(crate) fn max_growth_pages(&self) -> u64 {
        (self.max_growth_step / PAGE_SIZE as u64).max(1)
    }
}

//! The one error type of the crate.
//!
//! The variants that version 0.2 had keep its shape (unit variants, matched
//! by path as `Err(MappedPageError::DoubleFree)`), so programs written against
//! 0.2 keep compiling. Variants added since may carry fields.

use std::io;
use std::path::{Path, PathBuf};

/// Every fallible operation of the crate returns this error.
///
/// Variants that describe a bad argument (`OutOfBounds`, `DoubleFree`,
/// `NotAllocated`, `ReservedPage`, `InvalidCount`) are returned before anything
/// changes: the pager and the file are exactly as they were before the call.
///
/// The variants of version 0.2 are unit variants and are matched by path:
///
/// ```
/// use mappedpages::{MappedPageError, Pager};
/// # let dir = tempfile::tempdir()?;
/// let mut pager = Pager::<4096>::create(dir.path().join("data.bin"))?;
/// let id = pager.alloc()?;
/// pager.free(id)?;
/// match pager.free(id) {
///     Err(MappedPageError::DoubleFree) => {} // freed twice
///     other => panic!("expected DoubleFree, got {other:?}"),
/// }
/// # Ok::<(), MappedPageError>(())
/// ```
///
/// Which page was wrong is the id the call was given; for a bulk call, every
/// id is checked before anything changes, so the culprit can be found with
/// the same checks one id at a time. Why a file does not open is told in
/// full by [`Inspector::check`](crate::inspect::Inspector::check) (which
/// metadata check failed in each copy, the page size the file records).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MappedPageError {
    /// An operating-system I/O error, with the OS's error kind (for example
    /// `AlreadyExists` from `create` over an existing file, `NotFound` from
    /// `open` of a missing one, `StorageFull` when the file cannot grow).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),

    /// The file was created with another page size than the `Pager` that
    /// opens it. [`Inspector::info`](crate::inspect::Inspector::info) tells
    /// the page size the file records.
    #[error("the file's page size differs from the PAGE_SIZE of the Pager that opens it")]
    InvalidPageSize,

    /// The superblock (page 0) is not a valid `mappedpages` superblock: the
    /// file is too small, was not made by this crate, or page 0 is damaged.
    /// (A file that a crash left half created is
    /// [`IncompleteCreate`](MappedPageError::IncompleteCreate) instead.)
    #[error("not a mappedpages file: too small, unrecognised magic or damaged superblock")]
    CorruptSuperblock,

    /// Neither metadata copy (pages 1 and 2) passed its checks.
    /// [`Inspector::check`](crate::inspect::Inspector::check) tells what
    /// failed in each copy.
    #[error("both metadata copies are damaged (a check of the file tells what failed in each)")]
    CorruptMetadata,

    /// Never returned by this version: the protected directory is a
    /// checksummed page tree, and its damage is reported as
    /// [`CorruptMetadata`](MappedPageError::CorruptMetadata). Kept so that a
    /// match arm written for 0.2 still compiles.
    #[deprecated(note = "never returned: directory damage is reported as CorruptMetadata")]
    #[error("the protected page directory is damaged")]
    CorruptProtectedDirectory,

    /// Never returned by this version, for the same reason as
    /// [`CorruptProtectedDirectory`](MappedPageError::CorruptProtectedDirectory).
    /// Kept so that a match arm written for 0.2 still compiles.
    #[deprecated(note = "never returned: directory damage is reported as CorruptMetadata")]
    #[error("the protected page directory index is damaged")]
    CorruptDirectoryIndex,

    /// Never returned by this version: the protected directory has no fixed
    /// size and grows with the file. Kept so that a match arm written for 0.2
    /// still compiles.
    #[deprecated(note = "never returned: the protected directory has no size limit")]
    #[error("the protected page directory is full")]
    DirectoryFull,

    /// The file was written by a format version this build does not know.
    #[error("unsupported format version {found} (this build reads version {supported})")]
    UnsupportedVersion {
        /// The version found in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// The file is shorter than its metadata says: it was truncated by
    /// something other than this crate.
    #[error("the file is {actual} bytes long, but its metadata needs {expected} bytes")]
    FileTruncated {
        /// The length the newest valid metadata counts on.
        expected: u64,
        /// The length of the file on disk.
        actual: u64,
    },

    /// The path names something other than a regular file: a directory, a
    /// FIFO, a device, a socket. Every way of opening a file
    /// ([`Pager::open`](crate::Pager::open),
    /// [`ReadOnlyPager::open`](crate::ReadOnlyPager::open),
    /// [`Inspector::open`](crate::inspect::Inspector::open)) refuses it at
    /// once, without reading from it or waiting on it. Nothing changed.
    #[error("not a regular file (a directory, FIFO, device or socket)")]
    NotARegularFile,

    /// Another `Pager` (in this process or another) holds the file's lock.
    #[error("the file is locked by another Pager (in this process or another)")]
    Locked,

    /// A page id past the end of the file; a protected id past the
    /// protected-page directory, or, when reading or writing it, one not in
    /// use. (Freeing a protected page that is already free is
    /// [`DoubleFree`](MappedPageError::DoubleFree).)
    #[error("page id past the end of the file, or a protected page id that is not in use")]
    OutOfBounds,

    /// A page (regular, protected or sub-page) that is already free was
    /// freed again, or named twice in one bulk call.
    #[error("double free: the page is already free, or named twice in one call")]
    DoubleFree,

    /// A page id that names no allocated regular page: a free page, or a page
    /// the pager uses internally (free-space map, protected backing copies).
    #[error("page {page} is not an allocated regular page")]
    NotAllocated {
        /// The offending id.
        page: u64,
    },

    /// Pages 0 to 2 hold the superblock and metadata; they are never handed out.
    #[error("pages 0 to 2 are reserved for the superblock and metadata")]
    ReservedPage,

    /// A bulk call asked for more pages than a file can hold. (A count of
    /// zero is not an error: the call does nothing.)
    #[error("invalid count {count}: more pages than a file can hold")]
    InvalidCount {
        /// The count that was asked for.
        count: u64,
    },

    /// A previous I/O failure left the in-memory state out of step with the
    /// file. Drop the `Pager` and open the file again: it reopens to its last
    /// committed state.
    #[error("the pager is unusable after an earlier I/O failure; reopen the file")]
    Unavailable,

    /// A transaction was asked to write a page it did not allocate. Pages
    /// committed before the transaction hold bytes that a crash (and a
    /// snapshot) may still need, so a transaction writes copy-on-write:
    /// allocate a page, fill it, and free the old one in the same
    /// transaction. Nothing changed; the transaction goes on.
    #[error("page {page} holds committed bytes; a transaction writes only pages it allocated")]
    CommittedPage {
        /// The offending id.
        page: u64,
    },

    /// A write in place ([`PageId::get_mut`](crate::PageId::get_mut)) to a
    /// page a live [`Snapshot`](crate::Snapshot) reads. Snapshots read
    /// committed bytes while the writer goes on, so those bytes do not
    /// change while one lives: write a fresh page in a
    /// [`Transaction`](crate::Transaction), or drop the snapshots first.
    /// Nothing changed.
    #[error("page {page} is read by a live snapshot and cannot be written in place")]
    InUseBySnapshot {
        /// The offending id.
        page: u64,
    },

    /// A page was asked of a [`PageSet`](crate::PageSet) that it has already
    /// lent out in a way that excludes this borrow: a page lent writable is
    /// lent once, and not also readable. Nothing changed.
    #[error("page {page} is already borrowed from this page set")]
    AlreadyBorrowed {
        /// The offending id.
        page: u64,
    },

    /// A sub-page id that names no allocated sub-page of that size: one
    /// never handed out, freed since, of a parent cut into sub-pages of
    /// another size, or made up. Never another object's bytes; nothing
    /// changed.
    #[error("sub-page {id:#x} names no allocated sub-page of this size")]
    InvalidSubPage {
        /// The offending id (its raw value).
        id: u64,
    },

    /// Sub-pages of this size cannot be cut from this file's pages: a
    /// sub-page is a power of two from a sixty-fourth to half of a page (64
    /// bytes to 2 KiB with 4 KiB pages). Nothing changed.
    #[error("sub-pages of {size} bytes cannot be cut from this file's pages")]
    InvalidSubPageSize {
        /// The size asked for.
        size: usize,
    },

    /// A transaction was asked to write a sub-page it did not allocate. As
    /// for pages, a transaction writes copy-on-write: allocate a sub-page,
    /// fill it, free the old one. Nothing changed; the transaction goes on.
    #[error(
        "sub-page {id:#x} holds committed bytes; a transaction writes only sub-pages it allocated"
    )]
    CommittedSubPage {
        /// The offending id (its raw value).
        id: u64,
    },

    /// A [`SubPageAllocator`](crate::SubPageAllocator) free would give back
    /// parent page `page`, which it learned through `restore`, while
    /// sub-pages of it that were in use before the restart may not have
    /// been restored yet: they would be freed with the page. Restore every
    /// sub-page still in use, then call
    /// [`finish_restore`](crate::SubPageAllocator::finish_restore). Nothing
    /// changed.
    #[error("parent page {page} was restored, and may hold sub-pages not restored yet; call finish_restore once all are")]
    IncompleteRestore {
        /// The parent page.
        page: u64,
    },

    /// The file was never completely created: `create` was stopped part way
    /// (the process or the machine crashed during it), so the file has no
    /// superblock and holds no data. Nothing in it can be recovered: delete
    /// the file and create it again.
    #[error("the file was never completely created (create was interrupted); delete it and create it again")]
    IncompleteCreate,

    /// The file beside the data file where readers in other processes
    /// register (its path with `-readers` appended) holds something else;
    /// it is left as it is.
    #[error("{path} is not a reader table")]
    NotAReaderTable {
        /// The file that is not a reader table.
        path: PathBuf,
    },

    /// The file has no reader table, so no reader of another process may
    /// follow its writer: a writer makes one when it opens the file with
    /// `PagerOptions::process_readers(true)`.
    #[error("{path} has no reader table: its writer must open it with process_readers(true)")]
    NoReaderTable {
        /// The data file.
        path: PathBuf,
    },

    /// The oldest reader of another process keeps more freed pages from
    /// reuse than `PagerOptions::max_reader_pins` allows: the commit (or
    /// the new transaction) is refused and nothing changed. It goes through
    /// once that reader drops its snapshot, moves on, or dies.
    #[error("a reader (process {process_id}, reading generation {generation}) keeps {pins} freed pages from reuse, over the limit")]
    ReaderPinsTooMany {
        /// The reader's process id.
        process_id: u64,
        /// The generation of the commit it reads.
        generation: u64,
        /// The freed pages it keeps from reuse.
        pins: u64,
    },

    /// The oldest reader of another process reads a commit further behind
    /// the newest than `PagerOptions::max_reader_lag` allows once the next
    /// commit lands: the commit (or the new transaction) is refused and
    /// nothing changed. It goes through once that reader moves on, drops
    /// its snapshot, or dies.
    #[error("a reader (process {process_id}, reading generation {generation}) would be {behind} commits behind, over the limit")]
    ReaderTooFarBehind {
        /// The reader's process id.
        process_id: u64,
        /// The generation of the commit it reads.
        generation: u64,
        /// How many commits behind the newest it would be after the
        /// refused commit.
        behind: u64,
    },

    /// Every slot of the file's reader table is held by a live reader (126
    /// readers at once, over all processes).
    #[error("every slot of the reader table is held by a live reader")]
    ReaderTableFull,

    /// A lock of a [`ConcurrentPager`](crate::ConcurrentPager) was not taken
    /// (a writer panicked, or a `try_` call found the lock held). This lets
    /// `shared.write()?` work in a function that returns this crate's
    /// [`Result`]:
    ///
    /// ```
    /// use mappedpages::{ConcurrentPager, Pager, Result};
    ///
    /// fn add_page(shared: &ConcurrentPager<4096>) -> Result<u64> {
    ///     let mut writer = shared.write()?; // a ConcurrentError becomes this variant
    ///     Ok(writer.alloc()?.0)
    /// }
    /// # let dir = tempfile::tempdir()?;
    /// let shared = ConcurrentPager::new(Pager::<4096>::create(dir.path().join("data.bin"))?)?;
    /// assert!(add_page(&shared)? >= 3);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    #[error(transparent)]
    Concurrent(#[from] ConcurrentError),
}

impl MappedPageError {
    /// Names `path` in an `Io` error, keeping its [`io::ErrorKind`]: the
    /// error of `create` or `open` then says which file it is about, and a
    /// caller that matches on the kind sees no difference. The OS error is
    /// the wrapped error's [`source`](std::error::Error::source).
    pub(crate) fn with_path(self, path: &Path) -> Self {
        match self {
            MappedPageError::Io(source) => MappedPageError::Io(io::Error::new(
                source.kind(),
                PathError {
                    path: path.to_path_buf(),
                    source,
                },
            )),
            other => other,
        }
    }
}

/// An I/O error on a named file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
struct PathError {
    path: PathBuf,
    source: io::Error,
}

/// `Result` with [`MappedPageError`] as its error.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// fn first_byte(path: &std::path::Path) -> mappedpages::Result<u8> {
///     let pager = mappedpages::Pager::<4096>::open(path)?;
///     let id = pager.iter_allocated_pages().next().ok_or(mappedpages::MappedPageError::OutOfBounds)?;
///     Ok(pager.get(id)?.as_bytes()[0])
/// }
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// pager.alloc()?;
/// drop(pager);
/// assert_eq!(first_byte(&path)?, 0);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub type Result<T, E = MappedPageError> = std::result::Result<T, E>;

/// Why a [`ConcurrentPager`](crate::ConcurrentPager) lock was not taken.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::{ConcurrentError, ConcurrentPager, Pager};
/// let shared = ConcurrentPager::new(Pager::<4096>::create(&path)?)?;
/// let writer = shared.write()?;
/// assert_eq!(shared.try_write().err(), Some(ConcurrentError::WouldBlock));
/// drop(writer);
/// assert!(shared.try_write().is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConcurrentError {
    /// A writer panicked while it held the writer side. The pager's state
    /// may be anywhere between its last commit and what the writer was
    /// doing; readers still get the last published snapshot. Recover the
    /// pager with [`ConcurrentPager::into_inner`](crate::ConcurrentPager::into_inner), or drop it and reopen the
    /// file: it reopens to its last commit.
    #[error("a writer panicked while holding the pager")]
    Poisoned,
    /// `try_write` found another writer, or `try_read` found the snapshot
    /// being replaced at that instant.
    #[error("the lock is held; try again")]
    WouldBlock,
}

//! The one error type of the crate.

use std::io;

/// Every fallible operation of the crate returns this error.
///
/// Variants that describe a bad argument (`OutOfBounds`, `DoubleFree`,
/// `NotAllocated`, `ReservedPage`, `InvalidCount`) are returned before anything
/// changes: the pager and the file are exactly as they were before the call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MappedPageError {
    /// An operating-system I/O error, with the OS's error kind (for example
    /// `AlreadyExists` from `create` over an existing file, `NotFound` from
    /// `open` of a missing one, `StorageFull` when the file cannot grow).
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),

    /// The file was created with another page size than the `Pager` that opens it.
    #[error("the file has {found}-byte pages, but it was opened as a Pager<{expected}>")]
    InvalidPageSize {
        /// The `PAGE_SIZE` of the `Pager` type used to open the file.
        expected: usize,
        /// The page size recorded in the file.
        found: u64,
    },

    /// The superblock (page 0) is not a valid `mappedpages` superblock: the
    /// file is too small, was not made by this crate, or page 0 is damaged.
    #[error("not a mappedpages file or damaged superblock: {reason}")]
    CorruptSuperblock {
        /// What check failed.
        reason: &'static str,
    },

    /// Neither metadata copy (pages 1 and 2) passed its checks.
    #[error("both metadata copies are damaged: {reason}")]
    CorruptMetadata {
        /// What failed for each copy.
        reason: String,
    },

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

    /// Another `Pager` (in this process or another) holds the file's lock.
    #[error("the file is locked by another Pager (in this process or another)")]
    Locked,

    /// A page id past the end of the file, or a protected id that is not in use.
    #[error("page {page} is out of bounds or not in use")]
    OutOfBounds {
        /// The offending id.
        page: u64,
    },

    /// A page that is already free was freed again, or named twice in one bulk call.
    #[error("page {page} is already free (double free)")]
    DoubleFree {
        /// The offending id.
        page: u64,
    },

    /// A page id that names no allocated regular page: a free page, or a page
    /// the pager uses internally (free-space map, protected backing copies).
    #[error("page {page} is not an allocated regular page")]
    NotAllocated {
        /// The offending id.
        page: u64,
    },

    /// Pages 0 to 2 hold the superblock and metadata; they are never handed out.
    #[error("page {page} is reserved for the superblock and metadata")]
    ReservedPage {
        /// The offending id.
        page: u64,
    },

    /// A bulk call asked for zero items or for more pages than a file can hold.
    #[error("invalid count {count}: must be at least 1 and fit in the file's page space")]
    InvalidCount {
        /// The count that was asked for.
        count: u64,
    },

    /// A previous I/O failure left the in-memory state out of step with the
    /// file. Drop the `Pager` and open the file again: it reopens to its last
    /// committed state.
    #[error("the pager is unusable after an earlier I/O failure; reopen the file")]
    Unavailable,

    /// The file was never completely created: `create` was stopped part way
    /// (the process or the machine crashed during it), so the file has no
    /// superblock and holds no data. Nothing in it can be recovered: delete
    /// the file and create it again.
    #[error("the file was never completely created (create was interrupted); delete it and create it again")]
    IncompleteCreate,
}

/// `Result` with [`MappedPageError`] as its error.
pub type Result<T, E = MappedPageError> = std::result::Result<T, E>;

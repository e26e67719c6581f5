//! Read-only inspection of a page file, for tools: what it holds and whether
//! every check holds, without opening a [`Pager`](crate::Pager).
//!
//! An [`Inspector`] opens the file read-only. It takes no lock and writes
//! nothing, so it can look at a file that a running program has open; what it
//! reads is then a snapshot that may catch a commit in flight, so a problem
//! reported for a file in use may be one that the next commit repairs. For a
//! stable answer, inspect a file no `Pager` has open.
//!
//! It decodes with the crate's own codecs and loads the state with the same
//! function as [`Pager::open`](crate::Pager::open), so it applies exactly the
//! rules `open` applies: the newest root whose checksum, page trees, log
//! replay, page checks, page ownership and length all hold. The file is read
//! page by page, only the pages the metadata uses, so inspecting a large file
//! costs what its metadata costs, not what the file weighs.
//!
//! ```
//! use mappedpages::inspect::Inspector;
//! use mappedpages::Pager;
//!
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.pages");
//! let mut pager = Pager::<4096>::create(&path)?;
//! pager.alloc_bulk(10)?;
//! pager.alloc_protected()?;
//! drop(pager);
//!
//! let file = Inspector::open(&path)?;
//! let info = file.info()?;
//! assert_eq!((info.page_size, info.regular_pages, info.protected_pages), (4096, 10, 1));
//! assert!(file.check()?.is_clean());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod reader;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::{File, OpenOptions};
use std::path::Path;

use crate::engine::PageUse;
use crate::engine::RecoveryReport;
use crate::engine::{choose_root, ChooseError, Chosen};
use crate::error::{MappedPageError, Result};
use crate::format::record::{EntryState, Record, DIR_ENTRY_LEN};
use crate::format::root::{Root, RootError, FLAG_SYNCED};
use crate::format::tree_node::NODE_REF_LEN;
use crate::format::{
    check_page, read_u32, superblock, FIRST_DATA_PAGE, FORMAT_VERSION, ROOT_PAGES,
};
use crate::io::{open_regular, read_exact_at};
use reader::PageReader;

/// The smallest and largest page sizes a file can have.
const PAGE_SIZES: std::ops::RangeInclusive<u64> = 1024..=1 << 30;

/// A page file opened read-only for inspection. See the [module docs](self).
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::inspect::Inspector;
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// pager.alloc()?;
/// // No lock: a file in use can be inspected.
/// let report = Inspector::open(&path)?.check()?;
/// assert!(report.is_clean());
/// # drop(pager);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Inspector {
    file: File,
    file_len: u64,
    superblock: SuperblockInfo,
    copies: [RootCopy; 2],
}

/// The decoded superblock (page 0).
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// drop(mappedpages::Pager::<1024>::create(&path)?);
/// let sb = mappedpages::inspect::Inspector::open(&path)?.superblock().clone();
/// assert_eq!(sb.page_size, 1024);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SuperblockInfo {
    /// The format version the file was written in.
    pub format_version: u32,
    /// The page size in bytes.
    pub page_size: u64,
    /// The stored CRC-32C of the superblock (it matched).
    pub checksum: u32,
}

/// One metadata root page (page 1 is copy A, page 2 copy B), decoded on its
/// own: its magic, checksum, version and ranges. Whether the state it
/// describes also verifies is decided by [`Inspector::info`] and
/// [`Inspector::check`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::inspect::{Inspector, RootCopy};
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// pager.alloc()?; // generation 2, written to copy B
/// drop(pager);
/// let file = Inspector::open(&path)?;
/// assert!(matches!(&file.copies()[1], RootCopy::Decoded(root) if root.generation == 2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RootCopy {
    /// All zeros: never written yet (copy B of a new file) or wiped.
    Blank,
    /// Not a valid root (a torn or corrupt write, or foreign bytes): why.
    Damaged(String),
    /// A root written by a format version this build does not read.
    UnsupportedVersion(u32),
    /// A root that passes its own checks.
    Decoded(RootInfo),
}

/// The fields of a metadata root. `FORMAT.md` describes each one.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::inspect::{Inspector, RootCopy};
/// drop(mappedpages::Pager::<4096>::create(&path)?);
/// let file = Inspector::open(&path)?;
/// let RootCopy::Decoded(root) = &file.copies()[0] else {
///     panic!("a new file has root A");
/// };
/// assert_eq!((root.generation, root.regular_count), (1, 0));
/// assert!(root.synced);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RootInfo {
    /// Commit counter, one more per commit.
    pub generation: u64,
    /// File length in pages that this root counts on.
    pub total_pages: u64,
    /// Allocated regular pages, as the root records them.
    pub regular_count: u64,
    /// Whether the commit was synced before it returned (`Immediate`).
    pub synced: bool,
    /// Page of the free-space bitmap tree's top node (0: all free).
    pub bitmap_top: u64,
    /// Levels of interior nodes above the bitmap tree's leaves.
    pub bitmap_height: u32,
    /// Number of protected-directory slots.
    pub directory_slots: u64,
    /// Page of the directory tree's top node (0: empty).
    pub directory_top: u64,
    /// Levels of interior nodes above the directory tree's leaves.
    pub directory_height: u32,
    /// The change log since the trees were last written, in order.
    pub log: Vec<LogEntry>,
    /// Pages the commit wrote without a sync before it, with their CRC-32C,
    /// as far as the root itself holds them.
    pub page_checks: Vec<PageCheckInfo>,
    /// The first of the check pages holding the checks that did not fit in
    /// the root (format 3), or 0 for none.
    pub check_page: u64,
    /// How many checks the check pages hold.
    pub check_pages_len: u64,
    /// How many log records and page checks the root has room for.
    pub log_capacity: usize,
    /// The stored CRC-32C of the root page (it matched).
    pub checksum: u32,
}

/// One record of a root's change log.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::inspect::{Inspector, LogEntry, RootCopy};
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// let id = pager.alloc()?;
/// drop(pager);
/// let file = Inspector::open(&path)?;
/// let RootCopy::Decoded(root) = &file.copies()[1] else { panic!() };
/// assert_eq!(root.log, [LogEntry::Alloc { start: id.0, count: 1 }]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogEntry {
    /// Regular pages `start .. start + count` became allocated.
    Alloc {
        /// First page.
        start: u64,
        /// Number of pages.
        count: u64,
    },
    /// Regular pages `start .. start + count` became free.
    Free {
        /// First page.
        start: u64,
        /// Number of pages.
        count: u64,
    },
    /// A protected-directory slot changed.
    Slot {
        /// The slot.
        slot: u64,
        /// The two backing pages of the slot (0 when free).
        copies: [u64; 2],
        /// What the slot now holds.
        state: SlotState,
    },
}

/// The state of a protected-directory slot.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::inspect::{Inspector, LogEntry, RootCopy, SlotState};
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// pager.alloc_protected()?;
/// drop(pager);
/// let file = Inspector::open(&path)?;
/// let RootCopy::Decoded(root) = &file.copies()[1] else { panic!() };
/// assert!(matches!(root.log[0], LogEntry::Slot { slot: 0, state: SlotState::Fresh, .. }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SlotState {
    /// Not in use.
    Free,
    /// Allocated and never committed: reads as zeros.
    Fresh,
    /// The committed bytes are in this copy (0 or 1).
    Committed(u8),
    /// Not a protected page: the slot holds a parent page cut into
    /// `sub_pages` sub-pages (its page is the entry's copy 0); bit `i` of
    /// `used` set means sub-page `i` is allocated.
    SubPages {
        /// How many sub-pages the parent is cut into (2 to 64).
        sub_pages: u32,
        /// The allocated sub-pages, one bit each.
        used: u64,
    },
}

/// A page the commit wrote without syncing it first, and the CRC-32C it must
/// have for the root to be valid.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::inspect::{Inspector, RootCopy};
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// let mut txn = pager.transaction()?;
/// let id = txn.alloc()?;
/// txn.get_mut(id)?.as_bytes_mut()[0] = 1;
/// txn.commit()?;
/// drop(pager);
/// let file = Inspector::open(&path)?;
/// let RootCopy::Decoded(root) = &file.copies()[1] else { panic!() };
/// assert_eq!(root.page_checks[0].page, id.0); // the page the commit wrote
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageCheckInfo {
    /// The page.
    pub page: u64,
    /// Its expected CRC-32C.
    pub crc: u32,
}

/// What `open` would see: the state of the newest valid root.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// pager.alloc_bulk(3)?;
/// drop(pager);
/// let info = mappedpages::inspect::Inspector::open(&path)?.info()?;
/// assert_eq!((info.page_size, info.regular_pages, info.protected_pages), (4096, 3, 0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileInfo {
    /// Page size in bytes.
    pub page_size: u64,
    /// Format version of the file.
    pub format_version: u32,
    /// File length in bytes (a tail past `total_pages` is ignored).
    pub file_len: u64,
    /// Both root copies, decoded on their own.
    pub copies: [RootCopy; 2],
    /// Which root `open` takes, its generation, whether its commit was
    /// synced, and whether it fell back from a damaged or rejected copy.
    pub recovery: RecoveryReport,
    /// Pages the root counts on, the three reserved pages included.
    pub total_pages: u64,
    /// Allocated regular pages.
    pub regular_pages: u64,
    /// Protected pages in use (each has two backing copies).
    pub protected_pages: u64,
    /// Pages of the free-space bitmap and directory trees.
    pub tree_pages: u64,
    /// Free pages.
    pub free_pages: u64,
    /// Records in the root's change log.
    pub log_len: usize,
    /// Page checks of the root: in the root and in its check pages.
    pub page_checks: u64,
    /// Check pages: pages holding the root's checks that did not fit in it.
    pub check_pages: u64,
    /// Levels of interior nodes of the free-space bitmap tree.
    pub bitmap_height: u32,
    /// Levels of interior nodes of the protected-directory tree.
    pub directory_height: u32,
    /// Slots of the protected directory (in use or not).
    pub directory_slots: u64,
}

/// What a page of the file is used for, in the state `open` would see.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::inspect::{Inspector, PageKind};
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// let root = pager.alloc_protected()?;
/// drop(pager);
/// let runs = Inspector::open(&path)?.page_runs()?;
/// let copies = runs.iter().filter(|r| matches!(r.kind, PageKind::ProtectedCopy { slot, .. } if slot == root.0));
/// assert_eq!(copies.count(), 2);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageKind {
    /// Page 0.
    Superblock,
    /// Page 1 (copy 0, A) or 2 (copy 1, B).
    Root(u8),
    /// An allocated regular page.
    Regular,
    /// A backing copy of a protected page.
    ProtectedCopy {
        /// The protected page's directory slot (its id).
        slot: u64,
        /// Which of its two copies (0 or 1).
        copy: u8,
        /// Whether this copy holds the committed bytes.
        committed: bool,
    },
    /// A parent page of sub-pages.
    SubPageParent {
        /// The directory slot that holds the parent's entry.
        slot: u64,
        /// How many sub-pages it is cut into (2 to 64).
        sub_pages: u32,
        /// How many of them are allocated.
        used: u32,
    },
    /// A page of the free-space bitmap's tree: a leaf of bits or an
    /// interior node.
    BitmapPage,
    /// A page of the protected directory's tree: a leaf of slots or an
    /// interior node.
    DirectoryPage,
    /// A page the metadata marks as in use that none of the structures
    /// above claims; a file that passes [`Inspector::check`] has none.
    Unclaimed,
    /// A check page: a page of checksums of the pages the newest commits
    /// wrote, named by the root (see the format's "Check pages").
    CheckPage,
    /// A free page.
    Free,
    /// Past the pages the root counts on (a tail the file grew into).
    PastEnd,
}

/// A problem [`Inspector::check`] found.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::inspect::{Inspector, Problem};
/// use std::io::{Seek, SeekFrom, Write};
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// pager.alloc()?; // generation 2, in copy B (page 2)
/// drop(pager);
/// let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
/// file.seek(SeekFrom::Start(2 * 4096 + 100))?;
/// file.write_all(b"xx")?; // damage copy B
/// drop(file);
/// let report = Inspector::open(&path)?.check()?;
/// assert!(matches!(&report.problems[..], [Problem::CopyRejected { copy: 1, .. }]));
/// assert!(!report.problems[0].prevents_open()); // opens from copy A
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// One metadata copy is damaged, or was newer and failed its checks; the
    /// file opens from the other copy. After a crash in the middle of a
    /// commit this is the commit that did not complete; otherwise the file
    /// was damaged.
    CopyRejected {
        /// The rejected copy (0 for A, 1 for B).
        copy: u8,
        /// Why it was rejected.
        reason: String,
        /// The generation the file opens at.
        opened_generation: u64,
    },
    /// No metadata copy is valid: `open` fails with `CorruptMetadata`.
    NoValidRoot {
        /// What failed for each copy.
        reason: String,
    },
    /// The file is shorter than its newest metadata needs: `open` fails
    /// with `FileTruncated`.
    Truncated {
        /// The length the metadata counts on, in bytes.
        expected: u64,
        /// The file's length, in bytes.
        actual: u64,
    },
    /// A metadata copy was written by an unknown format version: `open`
    /// fails with `UnsupportedVersion`.
    UnsupportedVersion {
        /// The version found.
        found: u32,
    },
}

/// How far a check has come, given to the callback of
/// [`Inspector::check_with_progress`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// pager.alloc()?;
/// drop(pager);
/// let mut last = None;
/// mappedpages::inspect::Inspector::open(&path)?.check_with_progress(|p| last = Some(p))?;
/// let last = last.expect("at least one report");
/// assert_eq!(last.pages_read, last.pages_expected);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// Metadata pages read and verified so far.
    pub pages_read: u64,
    /// An upper bound of the pages the check reads (subtrees of zeros take
    /// no page, so it usually reads fewer); in the last call, equal to
    /// `pages_read`.
    pub pages_expected: u64,
}

/// The outcome of [`Inspector::check`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// drop(mappedpages::Pager::<4096>::create(&path)?);
/// let report = mappedpages::inspect::Inspector::open(&path)?.check()?;
/// assert!(report.problems.is_empty() && report.info.is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// What `open` would see, or `None` when the file does not open.
    pub info: Option<FileInfo>,
    /// Everything found wrong; empty for a clean file.
    pub problems: Vec<Problem>,
    /// Pages read and verified.
    pub pages_read: u64,
}

impl Inspector {
    /// Opens `path` read-only, checks its superblock and decodes both root
    /// copies.
    ///
    /// # Errors
    /// `Io` if the file cannot be read (`NotFound` for a missing file);
    /// `NotARegularFile` for a directory, FIFO or device;
    /// `CorruptSuperblock` for a file that is not a page file or whose page 0
    /// is damaged; `UnsupportedVersion` for an unknown format version.
    ///
    /// # Examples
    /// ```
    /// use mappedpages::inspect::Inspector;
    /// use mappedpages::MappedPageError;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// drop(mappedpages::Pager::<1024>::create(&path)?);
    /// assert_eq!(Inspector::open(&path)?.superblock().page_size, 1024);
    ///
    /// std::fs::write(&path, b"not a page file")?;
    /// assert!(matches!(
    ///     Inspector::open(&path),
    ///     Err(MappedPageError::CorruptSuperblock)
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Inspector> {
        let file = open_regular(path.as_ref(), OpenOptions::new().read(true))?;
        let file_len = file.metadata()?.len();
        let mut head = vec![0u8; file_len.min(superblock::SUPERBLOCK_LEN as u64) as usize];
        read_exact_at(&file, &mut head, 0)?;
        let page_size = superblock::decode(&head)?;
        if !page_size.is_power_of_two() || !PAGE_SIZES.contains(&page_size) {
            return Err(MappedPageError::CorruptSuperblock);
        }
        let superblock = SuperblockInfo {
            format_version: read_u32(&head, superblock::OFF_VERSION).unwrap_or(FORMAT_VERSION),
            page_size,
            checksum: read_u32(&head, superblock::OFF_CHECKSUM).unwrap_or_default(),
        };
        let mut inspector = Inspector {
            file,
            file_len,
            superblock,
            copies: [RootCopy::Blank, RootCopy::Blank],
        };
        for (copy, page) in ROOT_PAGES.into_iter().enumerate() {
            let decoded = match inspector.read_page(page) {
                Ok(bytes) => decode_copy(&bytes),
                Err(MappedPageError::OutOfBounds) => {
                    RootCopy::Damaged("file too short to hold this root".into())
                }
                Err(err) => return Err(err),
            };
            if let Some(slot) = inspector.copies.get_mut(copy) {
                *slot = decoded;
            }
        }
        Ok(inspector)
    }

    /// The decoded superblock.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// drop(mappedpages::Pager::<4096>::create(&path)?);
    /// let sb = mappedpages::inspect::Inspector::open(&path)?.superblock().clone();
    /// assert_eq!((sb.format_version, sb.page_size), (1, 4096));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn superblock(&self) -> &SuperblockInfo {
        &self.superblock
    }

    /// Both root copies (pages 1 and 2), each decoded on its own.
    ///
    /// # Examples
    /// ```
    /// use mappedpages::inspect::{Inspector, RootCopy};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// drop(mappedpages::Pager::<4096>::create(&path)?);
    /// let file = Inspector::open(&path)?;
    /// // A new file: generation 1 in copy A, copy B not written yet.
    /// assert!(matches!(&file.copies()[0], RootCopy::Decoded(root) if root.generation == 1));
    /// assert_eq!(file.copies()[1], RootCopy::Blank);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn copies(&self) -> &[RootCopy; 2] {
        &self.copies
    }

    /// The file's length in bytes.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let pages = pager.page_count();
    /// drop(pager);
    /// let file = mappedpages::inspect::Inspector::open(&path)?;
    /// assert_eq!(file.file_len(), pages * 4096);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The bytes of page `page`, read from the file.
    ///
    /// # Errors
    /// `OutOfBounds` for a page past the end of the file; `Io` if it cannot
    /// be read.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// drop(mappedpages::Pager::<1024>::create(&path)?);
    /// let file = mappedpages::inspect::Inspector::open(&path)?;
    /// assert_eq!(&file.read_page(0)?[..8], b"MAPPEDPG");
    /// assert!(file.read_page(1 << 40).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_page(&self, page: u64) -> Result<Vec<u8>> {
        let ps = self.superblock.page_size;
        let start = page
            .checked_mul(ps)
            .filter(|start| start.saturating_add(ps) <= self.file_len)
            .ok_or(MappedPageError::OutOfBounds)?;
        let mut bytes = vec![0u8; ps as usize];
        read_exact_at(&self.file, &mut bytes, start)?;
        Ok(bytes)
    }

    /// What `open` would see: the newest valid root and the state it
    /// describes, fully loaded and verified.
    ///
    /// # Errors
    /// What [`Pager::open`](crate::Pager::open) would return:
    /// `CorruptMetadata` when no root is valid, `FileTruncated`,
    /// `UnsupportedVersion`, or `Io`.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// pager.free(id)?;
    /// drop(pager);
    /// let info = mappedpages::inspect::Inspector::open(&path)?.info()?;
    /// assert_eq!(info.recovery.generation, 3);
    /// assert!(info.recovery.last_commit_synced && !info.recovery.fell_back);
    /// assert_eq!((info.regular_pages, info.log_len), (0, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn info(&self) -> Result<FileInfo> {
        self.load(&mut |_| {})
            .map(|(info, _)| info)
            .map_err(MappedPageError::from)
    }

    /// Verifies every checksum and invariant `open` relies on and lists what
    /// is wrong. Errors that stop `open` are reported as problems, not as
    /// `Err`. Only the root `open` would take is loaded: the older copy's
    /// pages may have been reused since, as the commit protocol allows.
    ///
    /// # Errors
    /// `Io` if the file cannot be read.
    ///
    /// # Examples
    /// ```
    /// use mappedpages::inspect::{Inspector, Problem};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// pager.alloc()?;
    /// drop(pager);
    /// assert!(Inspector::open(&path)?.check()?.is_clean());
    ///
    /// // Damage the newest root (copy B, generation 2): open falls back to A.
    /// let mut bytes = std::fs::read(&path)?;
    /// bytes[2 * 4096 + 100] ^= 1;
    /// std::fs::write(&path, &bytes)?;
    /// let report = Inspector::open(&path)?.check()?;
    /// assert!(matches!(report.problems[..], [Problem::CopyRejected { copy: 1, .. }]));
    /// assert_eq!(report.info.map(|i| i.recovery.generation), Some(1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self) -> Result<CheckReport> {
        self.check_with_progress(|_| {})
    }

    /// [`Inspector::check`], calling `progress` after each metadata page it
    /// reads, and once more at the end.
    ///
    /// # Errors
    /// `Io` if the file cannot be read.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// drop(mappedpages::Pager::<4096>::create(&path)?);
    /// let file = mappedpages::inspect::Inspector::open(&path)?;
    /// let mut last = None;
    /// let report = file.check_with_progress(|p| last = Some(p))?;
    /// let last = last.expect("called at least once");
    /// assert_eq!(last.pages_read, last.pages_expected);
    /// assert!(report.is_clean());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check_with_progress(&self, mut progress: impl FnMut(Progress)) -> Result<CheckReport> {
        let expected = self.expected_reads();
        let mut pages_read = 0;
        let mut report = |read: u64| {
            pages_read = read;
            progress(Progress {
                pages_read: read,
                pages_expected: expected.max(read),
            })
        };
        let (info, problems) = match self.load(&mut report) {
            Ok((info, _)) => {
                let problems = match &info.recovery.other_copy_problem {
                    Some(reason) if info.recovery.fell_back => vec![Problem::CopyRejected {
                        copy: 1 - info.recovery.root_copy,
                        reason: reason.clone(),
                        opened_generation: info.recovery.generation,
                    }],
                    _ => Vec::new(),
                };
                (Some(info), problems)
            }
            Err(ChooseError::NoValidRoot(reason)) => (None, vec![Problem::NoValidRoot { reason }]),
            Err(ChooseError::Other(MappedPageError::FileTruncated { expected, actual })) => {
                (None, vec![Problem::Truncated { expected, actual }])
            }
            Err(ChooseError::Other(MappedPageError::UnsupportedVersion { found, .. })) => {
                (None, vec![Problem::UnsupportedVersion { found }])
            }
            Err(ChooseError::Other(err)) => return Err(err),
        };
        progress(Progress {
            pages_read,
            pages_expected: pages_read,
        });
        Ok(CheckReport {
            info,
            problems,
            pages_read,
        })
    }

    /// What page `page` is used for, in the state `open` would see.
    ///
    /// # Errors
    /// As [`Inspector::info`]; `OutOfBounds` for a page past the end of the
    /// file.
    ///
    /// # Examples
    /// ```
    /// use mappedpages::inspect::{Inspector, PageKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// drop(pager);
    /// let file = Inspector::open(&path)?;
    /// assert_eq!(file.page_kind(0)?, PageKind::Superblock);
    /// assert_eq!(file.page_kind(id.0)?, PageKind::Regular);
    /// assert_eq!(file.page_kind(id.0 + 1)?, PageKind::Free);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn page_kind(&self, page: u64) -> Result<PageKind> {
        let ps = self.superblock.page_size;
        if page
            .checked_mul(ps)
            .is_none_or(|s| s.saturating_add(ps) > self.file_len)
        {
            return Err(MappedPageError::OutOfBounds);
        }
        match page {
            0 => return Ok(PageKind::Superblock),
            1 | 2 => return Ok(PageKind::Root(page as u8 - 1)),
            _ => {}
        }
        let chosen = self.choose(&mut |_| {})?.0;
        Ok(Kinds::new(&chosen).of(page))
    }

    /// Every page of the file by what it is used for, as runs of pages of
    /// the same kind in ascending order: one pass over the state `open`
    /// would see, where [`page_kind`](Inspector::page_kind) loads it for
    /// each page. A protected page's copies are runs of their own.
    ///
    /// # Errors
    /// As [`info`](Inspector::info): the file must open.
    ///
    /// # Examples
    /// ```
    /// use mappedpages::inspect::{Inspector, PageKind};
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// pager.alloc_bulk(5)?;
    /// drop(pager);
    /// let runs = Inspector::open(&path)?.page_runs()?;
    /// assert_eq!((runs[0].start, runs[0].count, runs[0].kind), (0, 1, PageKind::Superblock));
    /// let regular: u64 = runs.iter().filter(|r| r.kind == PageKind::Regular).map(|r| r.count).sum();
    /// assert_eq!(regular, 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn page_runs(&self) -> Result<Vec<PageRun>> {
        let chosen = self.choose(&mut |_| {})?.0;
        let kinds = Kinds::new(&chosen);
        let pages = self.file_len / self.superblock.page_size;
        let mut runs: Vec<PageRun> = Vec::new();
        for page in 0..pages {
            let kind = kinds.of(page);
            match runs.last_mut() {
                Some(run)
                    if run.kind == kind && !matches!(kind, PageKind::ProtectedCopy { .. }) =>
                {
                    run.count += 1
                }
                _ => runs.push(PageRun {
                    start: page,
                    count: 1,
                    kind,
                }),
            }
        }
        Ok(runs)
    }

    /// Loads the newest valid root as `open` does, reading pages on demand.
    fn choose(&self, on_read: &mut dyn FnMut(u64)) -> Result<(Chosen, u64), ChooseError> {
        let page_size = self.superblock.page_size as usize;
        let reader = PageReader::new(&self.file, self.file_len, page_size, on_read);
        let chosen = choose_root(self.file_len, page_size, |n| reader.page(n));
        if let Some(err) = reader.take_error() {
            return Err(MappedPageError::from(err).into());
        }
        Ok((chosen?, reader.pages_read()))
    }

    fn load(&self, on_read: &mut dyn FnMut(u64)) -> Result<(FileInfo, u64), ChooseError> {
        let (chosen, pages_read) = self.choose(on_read)?;
        let map = chosen.map();
        let root = chosen.root();
        let protected = map.directory().iter().filter(|e| e.is_protected()).count() as u64;
        let regular = map.regular_count();
        let free = map.free_pages();
        let internal = root
            .total_pages
            .saturating_sub(FIRST_DATA_PAGE + regular + free);
        let info = FileInfo {
            page_size: self.superblock.page_size,
            format_version: self.superblock.format_version,
            file_len: self.file_len,
            copies: self.copies.clone(),
            recovery: chosen.recovery().clone(),
            total_pages: root.total_pages,
            regular_pages: regular,
            protected_pages: protected,
            tree_pages: internal
                .saturating_sub(2 * protected)
                .saturating_sub(chosen.check_pages().len() as u64),
            free_pages: free,
            log_len: root.log.len(),
            page_checks: root.checks.len() as u64 + root.check_pages_len,
            check_pages: chosen.check_pages().len() as u64,
            bitmap_height: root.bitmap.height,
            directory_height: root.directory.height,
            directory_slots: root.dir_len,
        };
        Ok((info, pages_read))
    }

    /// An upper bound of the pages a check reads, from the newest root that
    /// decodes: both roots, every node of both trees, the page checks.
    fn expected_reads(&self) -> u64 {
        let newest = self
            .copies
            .iter()
            .filter_map(|c| match c {
                RootCopy::Decoded(root) => Some(root),
                _ => None,
            })
            .max_by_key(|root| root.generation);
        let Some(root) = newest else {
            return ROOT_PAGES.len() as u64;
        };
        let ps = self.superblock.page_size;
        let fanout = ps / NODE_REF_LEN as u64;
        let total = root.total_pages.min(self.file_len / ps);
        let bitmap_leaves = total.div_ceil(ps * 8);
        let dir_leaves = root
            .directory_slots
            .min(total / 2)
            .div_ceil(ps / DIR_ENTRY_LEN as u64);
        let nodes = tree_nodes(bitmap_leaves, fanout, root.bitmap_height)
            .saturating_add(tree_nodes(dir_leaves, fanout, root.directory_height));
        let check_pages = root
            .check_pages_len
            .div_ceil(check_page::checks_per_page(self.superblock.page_size as usize) as u64);
        nodes
            .saturating_add(root.page_checks.len() as u64)
            .saturating_add(root.check_pages_len)
            .saturating_add(check_pages)
            .saturating_add(ROOT_PAGES.len() as u64)
    }
}

impl CheckReport {
    /// Whether the check found nothing wrong.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// drop(mappedpages::Pager::<4096>::create(&path)?);
    /// let report = mappedpages::inspect::Inspector::open(&path)?.check()?;
    /// assert!(report.is_clean() && report.problems.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

impl Problem {
    /// Whether this problem makes [`Pager::open`](crate::Pager::open) fail.
    ///
    /// # Examples
    /// ```
    /// use mappedpages::inspect::Problem;
    /// let torn = Problem::NoValidRoot { reason: "copy A: blank; copy B: blank".into() };
    /// assert!(torn.prevents_open());
    /// ```
    pub fn prevents_open(&self) -> bool {
        !matches!(self, Problem::CopyRejected { .. })
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::CopyRejected {
                copy,
                reason,
                opened_generation,
            } => write!(
                f,
                "metadata copy {} was rejected ({reason}); the file opens at generation \
                 {opened_generation} from copy {}",
                copy_name(*copy),
                copy_name(1 - copy)
            ),
            Problem::NoValidRoot { reason } => {
                write!(
                    f,
                    "no valid metadata copy, the file does not open: {reason}"
                )
            }
            Problem::Truncated { expected, actual } => write!(
                f,
                "the file is {actual} bytes long but its metadata needs {expected} bytes \
                 (truncated), the file does not open"
            ),
            Problem::UnsupportedVersion { found } => write!(
                f,
                "a metadata copy has format version {found}, which this build does not read"
            ),
        }
    }
}

/// `"A"` for copy 0, `"B"` for copy 1.
fn copy_name(copy: u8) -> &'static str {
    if copy == 0 {
        "A"
    } else {
        "B"
    }
}

/// Nodes of a tree of `leaves` leaves and `height` interior levels, at most.
fn tree_nodes(leaves: u64, fanout: u64, height: u32) -> u64 {
    let mut nodes = 0u64;
    let mut level = leaves.max(1);
    for _ in 0..=height {
        nodes = nodes.saturating_add(level);
        level = level.div_ceil(fanout.max(2));
    }
    nodes
}

/// Decodes one root page on its own.
fn decode_copy(bytes: &[u8]) -> RootCopy {
    match Root::decode(bytes, bytes.len()) {
        Ok(root) => RootCopy::Decoded(root_info(&root, bytes)),
        Err(RootError::Version(found)) => RootCopy::UnsupportedVersion(found),
        Err(RootError::Damaged(_)) if bytes.iter().all(|&b| b == 0) => RootCopy::Blank,
        Err(RootError::Damaged(why)) => RootCopy::Damaged(why.to_string()),
    }
}

fn root_info(root: &Root, bytes: &[u8]) -> RootInfo {
    let end = bytes.len().saturating_sub(4);
    RootInfo {
        generation: root.generation,
        total_pages: root.total_pages,
        regular_count: root.regular_count,
        synced: root.flags & FLAG_SYNCED != 0,
        bitmap_top: root.bitmap.top.page,
        bitmap_height: root.bitmap.height,
        directory_slots: root.dir_len,
        directory_top: root.directory.top.page,
        directory_height: root.directory.height,
        log: root.log.iter().map(log_entry).collect(),
        check_page: root.check_pages.page,
        check_pages_len: root.check_pages_len,
        page_checks: root
            .checks
            .iter()
            .map(|c| PageCheckInfo {
                page: c.page,
                crc: c.crc,
            })
            .collect(),
        log_capacity: crate::format::root::log_capacity(bytes.len()),
        checksum: read_u32(bytes, end).unwrap_or_default(),
    }
}

fn log_entry(record: &Record) -> LogEntry {
    match *record {
        Record::Alloc { start, count } => LogEntry::Alloc { start, count },
        Record::Free { start, count } => LogEntry::Free { start, count },
        Record::Entry { slot, entry } => LogEntry::Slot {
            slot,
            copies: entry.copies,
            state: slot_state(entry.state),
        },
    }
}

fn slot_state(state: EntryState) -> SlotState {
    match state {
        EntryState::Free => SlotState::Free,
        EntryState::Fresh => SlotState::Fresh,
        EntryState::Active(copy) => SlotState::Committed(copy),
        EntryState::Parent { shift, used } => SlotState::SubPages {
            sub_pages: 1 << shift,
            used,
        },
    }
}

/// The protected copy `page` is, if any.
/// Pages in a row of the same [`PageKind`], from [`Inspector::page_runs`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::inspect::{Inspector, PageKind};
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// pager.alloc_bulk(10)?;
/// drop(pager);
/// let runs = Inspector::open(&path)?.page_runs()?;
/// assert!(runs.iter().any(|r| r.kind == PageKind::Regular && r.count == 10));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageRun {
    /// The first page of the run.
    pub start: u64,
    /// Pages in the run (at least 1).
    pub count: u64,
    /// What every page of the run is.
    pub kind: PageKind,
}

/// Tells the kind of any page of one loaded state; the internal pages that
/// are not tree pages are looked up by page, not found by a scan.
struct Kinds<'a> {
    chosen: &'a Chosen,
    /// The pages the directory names: protected copies and sub-page
    /// parents.
    named_by_directory: HashMap<u64, PageKind>,
    check_pages: HashSet<u64>,
    bitmap_pages: HashSet<u64>,
    directory_pages: HashSet<u64>,
}

impl<'a> Kinds<'a> {
    fn new(chosen: &'a Chosen) -> Self {
        let mut named_by_directory = HashMap::new();
        for (slot, entry) in chosen.map().directory().iter().enumerate() {
            if let Some((page, shift, used)) = entry.as_parent() {
                let kind = PageKind::SubPageParent {
                    slot: slot as u64,
                    sub_pages: 1 << shift,
                    used: used.count_ones(),
                };
                named_by_directory.insert(page, kind);
                continue;
            }
            for (copy, &page) in entry.pages().iter().enumerate() {
                let kind = PageKind::ProtectedCopy {
                    slot: slot as u64,
                    copy: copy as u8,
                    committed: entry.state == EntryState::Active(copy as u8),
                };
                named_by_directory.insert(page, kind);
            }
        }
        let check_pages = chosen.check_pages().iter().copied().collect();
        let bitmap_pages = chosen.bitmap_tree_pages().collect();
        let directory_pages = chosen.directory_tree_pages().collect();
        Kinds {
            chosen,
            named_by_directory,
            check_pages,
            bitmap_pages,
            directory_pages,
        }
    }

    fn of(&self, page: u64) -> PageKind {
        match page {
            0 => return PageKind::Superblock,
            1 | 2 => return PageKind::Root(page as u8 - 1),
            _ => {}
        }
        match self.chosen.map().classify(page) {
            PageUse::Reserved => PageKind::Superblock,
            PageUse::OutOfBounds => PageKind::PastEnd,
            PageUse::Regular => PageKind::Regular,
            PageUse::Free => PageKind::Free,
            PageUse::Internal if self.check_pages.contains(&page) => PageKind::CheckPage,
            PageUse::Internal if self.bitmap_pages.contains(&page) => PageKind::BitmapPage,
            PageUse::Internal if self.directory_pages.contains(&page) => PageKind::DirectoryPage,
            PageUse::Internal => self
                .named_by_directory
                .get(&page)
                .copied()
                .unwrap_or(PageKind::Unclaimed),
        }
    }
}

#[cfg(test)]
mod tests;

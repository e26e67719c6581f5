//! `ReadOnlyPager`: a file opened for reading only, from any number of
//! processes at once (contract R5).
//!
//! It holds a shared lock on the file, which a writer's exclusive lock
//! excludes: while any read-only pager has the file open, opening it with
//! [`Pager::open`](crate::Pager::open) fails with `Locked`, and while a `Pager` has it open,
//! [`ReadOnlyPager::open`] does. So a read-only pager never sees a writer's
//! half-done state: it reads the newest valid commit as open would, and that
//! state cannot change under it. To read alongside a live writer instead,
//! see [`LiveReader`](crate::LiveReader).

use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use crate::engine::open_state;
use crate::engine::Frozen;
use crate::error::Result;
use crate::io::MapRegion;
use crate::snapshot::Snapshot;

/// A file opened for reading only: the reads and iterators of a
/// [`Snapshot`] (by `Deref`), of the newest commit the file holds. It opens
/// a file on a read-only mount or without write permission, and never
/// writes it.
///
/// ```
/// use mappedpages::{Pager, ReadOnlyPager};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.bin");
/// let mut pager = Pager::<4096>::create(&path)?;
/// let id = pager.alloc()?;
/// drop(pager);
///
/// let a = ReadOnlyPager::<4096>::open(&path)?;
/// let b = ReadOnlyPager::<4096>::open(&path)?; // readers share the file
/// assert_eq!(a.iter_allocated_pages().collect::<Vec<_>>(), vec![id]);
/// assert!(Pager::<4096>::open(&path).is_err()); // Locked: readers hold it
/// drop((a, b));
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ReadOnlyPager<const PAGE_SIZE: usize> {
    snapshot: Snapshot<PAGE_SIZE>,
}

impl<const PAGE_SIZE: usize> ReadOnlyPager<PAGE_SIZE> {
    /// Opens `path` for reading.
    ///
    /// # Errors
    /// `Locked` while a [`Pager`](crate::Pager) has the file open, and the
    /// errors of [`Pager::open`](crate::Pager::open) for a file that does
    /// not open (`Io`, `NotARegularFile`, `InvalidPageSize`,
    /// `CorruptSuperblock`, `CorruptMetadata`, `UnsupportedVersion`,
    /// `FileTruncated`, `IncompleteCreate`).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{MappedPageError, Pager, ReadOnlyPager};
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// assert!(matches!(ReadOnlyPager::<4096>::open(&path), Err(MappedPageError::Locked)));
    /// drop(pager);
    /// let reader = ReadOnlyPager::<4096>::open(&path)?;
    /// let second = ReadOnlyPager::<4096>::open(&path)?; // readers share the file
    /// assert!(reader.get(id).is_ok() && second.get(id).is_ok());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let region = Arc::new(MapRegion::open_read_only(path.as_ref())?);
        let bytes = region.read_only_bytes().unwrap_or_default();
        let chosen = open_state(bytes, PAGE_SIZE)?;
        let zero_page: Arc<[u8]> = vec![0u8; PAGE_SIZE].into();
        // Nothing but this pager counts its state.
        let alive = Arc::new(AtomicUsize::new(0));
        let state = Frozen::new(
            chosen.root().generation,
            chosen.map(),
            Arc::clone(&region),
            zero_page,
            &alive,
        );
        Ok(ReadOnlyPager {
            snapshot: Snapshot {
                state: Arc::new(state),
            },
        })
    }
}

impl<const PAGE_SIZE: usize> Deref for ReadOnlyPager<PAGE_SIZE> {
    type Target = Snapshot<PAGE_SIZE>;

    fn deref(&self) -> &Snapshot<PAGE_SIZE> {
        &self.snapshot
    }
}

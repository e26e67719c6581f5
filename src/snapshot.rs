//! Snapshots: read views of one committed state that any number of threads
//! read while the writer goes on (contract R1–R3). This is the public face;
//! what a snapshot holds, and why reading it from other threads is sound,
//! is in `engine/snapshots.rs`.

use std::fmt;
use std::sync::Arc;

use crate::engine::Frozen;
use crate::error::Result;
use crate::page::{MappedPage, PageId};
use crate::pager::Pager;
use crate::protected::ProtectedPageId;

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
    /// [`MappedPageError::InUseBySnapshot`](crate::MappedPageError::InUseBySnapshot) (write a fresh page in a
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
            .field("generation", &self.state.generation())
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
            let page = self.state.regular_bits().next_one(next)?;
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
            .directory()
            .iter()
            .enumerate()
            .filter(|(_, entry)| entry.is_protected())
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
        self.state.generation()
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
        crate::copy::copy_state(&self.state, path.as_ref(), &mut |_, _| {})
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
        crate::copy::copy_state(&self.state, path.as_ref(), &mut progress)
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
        self.state.total_pages()
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
        self.state.regular_count()
    }
}

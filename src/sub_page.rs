//! Durable sub-pages: small objects of `SIZE` bytes (a page cut into 2 to 64
//! equal parts) allocated, written and freed inside a [`Transaction`],
//! committed with it and read through [`Snapshot`]s. The engine side is
//! `engine/sub_pages.rs`.

use std::fmt;

use crate::engine::sub_page_ids;
use crate::error::Result;
use crate::pager::Pager;
use crate::snapshot::Snapshot;
use crate::transaction::Transaction;

/// How many ways a `PAGE_SIZE` page is cut for sub-pages of `SIZE` bytes,
/// as a shift; `InvalidSubPageSize` for a size that is not a power of two
/// from a sixty-fourth to half of the page. A check at run time, not a
/// build error, so that code generic over the page size can pick the size
/// of its sub-pages from it (the compiler folds it away).
const fn shift_of<const PAGE_SIZE: usize, const SIZE: usize>() -> Result<u8> {
    if SIZE.is_power_of_two()
        && SIZE <= PAGE_SIZE / 2
        && SIZE >= PAGE_SIZE / 64
        && PAGE_SIZE.is_multiple_of(SIZE)
    {
        Ok((PAGE_SIZE / SIZE).trailing_zeros() as u8)
    } else {
        Err(crate::MappedPageError::InvalidSubPageSize { size: SIZE })
    }
}

/// The id of a durable sub-page of `SIZE` bytes: a part of a page, from a
/// sixty-fourth to a half of it (64 bytes to 2 KiB with 4 KiB pages; any
/// other size is an [`InvalidSubPageSize`](crate::MappedPageError::InvalidSubPageSize)
/// error), allocated in a [`Transaction`] with [`Transaction::alloc_sub_page`].
///
/// Which sub-pages are allocated is recorded in the file and committed with
/// the transaction that changed it, in its one sync: after a crash a reopen
/// shows every sub-page allocation, free and write of a transaction or none
/// of them, and every id that was allocated is valid again with nothing to
/// rebuild. Store `.0` in a page and rebuild the id with `SubPage(raw)`: an
/// id that names no allocated sub-page of this size (made up, freed, of
/// another size) is an [`InvalidSubPage`](crate::MappedPageError::InvalidSubPage)
/// error, never another object's bytes. Like a [`PageId`](crate::PageId),
/// an id kept after its sub-page was freed names whatever is allocated
/// there again later.
///
/// A transaction writes only sub-pages it allocated: a committed one is
/// rewritten copy-on-write (allocate, write, free the old one), as pages
/// are, so a crash or a snapshot never sees it half changed.
///
/// # Examples
/// ```
/// use mappedpages::{Pager, SubPage};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let mut pager = Pager::<4096>::create(&path)?;
/// let mut txn = pager.transaction()?;
/// let id: SubPage<128> = txn.alloc_sub_page()?;
/// txn.sub_page_mut(id)?[..5].copy_from_slice(b"hello");
/// txn.commit()?; // one sync
/// drop(pager);
///
/// let pager = Pager::<4096>::open(&path)?;
/// assert_eq!(&pager.sub_page(id)?[..5], b"hello"); // nothing to rebuild
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubPage<const SIZE: usize>(pub u64);

impl<const SIZE: usize> fmt::Debug for SubPage<SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubPage<{SIZE}>({:#x})", self.0)
    }
}

impl<const PAGE_SIZE: usize> Transaction<'_, PAGE_SIZE> {
    /// Allocates a sub-page of `SIZE` bytes, reading as zeros, in a parent
    /// page that has room, or a new one. Writable through
    /// [`Transaction::sub_page_mut`] until the commit.
    ///
    /// # Errors
    /// `Io` if the file must grow and cannot, `InvalidSubPageSize` for a
    /// size the pages cannot be cut into (nothing changes).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::MappedPageError;
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// assert!(matches!(
    ///     txn.alloc_sub_page::<100>(),
    ///     Err(MappedPageError::InvalidSubPageSize { size: 100 })
    /// ));
    /// let a = txn.alloc_sub_page::<64>()?;
    /// let b = txn.alloc_sub_page::<64>()?;
    /// assert_ne!(a, b);
    /// assert_eq!(txn.sub_page(a)?, &[0u8; 64][..]);
    /// txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn alloc_sub_page<const SIZE: usize>(&mut self) -> Result<SubPage<SIZE>> {
        let mut ids = self.alloc_sub_pages::<SIZE>(1)?;
        ids.pop().ok_or(crate::MappedPageError::Unavailable)
    }

    /// Allocates `count` sub-pages of `SIZE` bytes at once; all or nothing.
    ///
    /// # Errors
    /// `Io` if the file must grow and cannot, `InvalidCount` for a count no
    /// file could hold (nothing changes).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let ids = txn.alloc_sub_pages::<256>(40)?;
    /// assert_eq!(ids.len(), 40);
    /// txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn alloc_sub_pages<const SIZE: usize>(
        &mut self,
        count: usize,
    ) -> Result<Vec<SubPage<SIZE>>> {
        let shift = shift_of::<PAGE_SIZE, SIZE>()?;
        let (core, txn) = self.parts()?;
        let ids = core.txn_alloc_sub_pages(txn, shift, count as u64)?;
        Ok(ids.into_iter().map(SubPage).collect())
    }

    /// Frees a sub-page. Its bytes stay as they were for snapshots taken
    /// before this transaction commits; the slot is reused once none needs
    /// it. A parent page whose last sub-page is freed goes back to the file.
    ///
    /// # Errors
    /// `DoubleFree` for a free sub-page of a parent page still in use,
    /// `InvalidSubPage` for an id that names no sub-page of this size (a
    /// free one whose parent page went back to the file included); nothing
    /// changes.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::MappedPageError;
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let [a, b] = [txn.alloc_sub_page::<512>()?, txn.alloc_sub_page::<512>()?];
    /// txn.free_sub_page(a)?;
    /// assert!(matches!(txn.free_sub_page(a), Err(MappedPageError::DoubleFree)));
    /// txn.free_sub_page(b)?; // the parent's last: the page goes back
    /// assert!(matches!(txn.free_sub_page(b), Err(MappedPageError::InvalidSubPage { .. })));
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn free_sub_page<const SIZE: usize>(&mut self, id: SubPage<SIZE>) -> Result<()> {
        self.free_sub_pages(&[id])
    }

    /// Frees sub-pages, after checking every one: all or nothing.
    ///
    /// # Errors
    /// As [`Transaction::free_sub_page`]; naming one twice is `DoubleFree`.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let ids = txn.alloc_sub_pages::<1024>(3)?;
    /// txn.free_sub_pages(&ids)?;
    /// txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn free_sub_pages<const SIZE: usize>(&mut self, ids: &[SubPage<SIZE>]) -> Result<()> {
        let shift = shift_of::<PAGE_SIZE, SIZE>()?;
        let raw: Vec<u64> = ids.iter().map(|id| id.0).collect();
        let (core, txn) = self.parts()?;
        core.txn_free_sub_pages(txn, shift, &raw)
    }

    /// The bytes of an allocated sub-page, as this transaction sees them.
    ///
    /// # Errors
    /// `InvalidSubPage` for an id that names no allocated sub-page of this
    /// size.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let id = txn.alloc_sub_page::<128>()?;
    /// txn.sub_page_mut(id)?[0] = 7;
    /// assert_eq!(txn.sub_page(id)?[0], 7);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn sub_page<const SIZE: usize>(&self, id: SubPage<SIZE>) -> Result<&[u8]> {
        let shift = shift_of::<PAGE_SIZE, SIZE>()?;
        self.state()?;
        self.pager.core().sub_page(shift, id.0)
    }

    /// The bytes of a sub-page this transaction allocated, writable.
    ///
    /// # Errors
    /// `CommittedSubPage` for a sub-page committed before this transaction
    /// (write a new one and free the old), `InvalidSubPage` for an id that
    /// names no allocated sub-page of this size. Nothing changes.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::MappedPageError;
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let old = txn.alloc_sub_page::<128>()?;
    /// txn.commit()?;
    ///
    /// let mut txn = pager.transaction()?;
    /// assert!(matches!(txn.sub_page_mut(old), Err(MappedPageError::CommittedSubPage { .. })));
    /// let new = txn.alloc_sub_page::<128>()?; // copy-on-write
    /// txn.sub_page_mut(new)?[0] = 1;
    /// txn.free_sub_page(old)?;
    /// txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn sub_page_mut<const SIZE: usize>(&mut self, id: SubPage<SIZE>) -> Result<&mut [u8]> {
        let shift = shift_of::<PAGE_SIZE, SIZE>()?;
        let (core, txn) = self.parts()?;
        core.txn_sub_page_mut(txn, shift, id.0)
    }
}

impl<const PAGE_SIZE: usize> Pager<PAGE_SIZE> {
    /// The committed bytes of a sub-page.
    ///
    /// # Errors
    /// `InvalidSubPage` for an id that names no allocated sub-page of this
    /// size.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let id = txn.alloc_sub_page::<2048>()?;
    /// txn.commit()?;
    /// assert_eq!(pager.sub_page(id)?.len(), 2048);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn sub_page<const SIZE: usize>(&self, id: SubPage<SIZE>) -> Result<&[u8]> {
        let shift = shift_of::<PAGE_SIZE, SIZE>()?;
        self.core().sub_page(shift, id.0)
    }

    /// The bytes of a committed sub-page, writable in place, outside any
    /// transaction: like [`PageId::get_mut`](crate::PageId::get_mut), what
    /// is written is durable after the next sync or commit, and a crash
    /// before it may leave the sub-page half written. Use a transaction for
    /// writes that must be atomic.
    ///
    /// # Errors
    /// `InvalidSubPage` for an id that names no allocated sub-page of this
    /// size; `InUseBySnapshot` while a live snapshot may read it.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let counter = txn.alloc_sub_page::<64>()?;
    /// txn.commit()?;
    /// pager.sub_page_mut(counter)?[0] += 1;
    /// pager.sync()?;
    /// assert_eq!(pager.sub_page(counter)?[0], 1);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn sub_page_mut<const SIZE: usize>(&mut self, id: SubPage<SIZE>) -> Result<&mut [u8]> {
        let shift = shift_of::<PAGE_SIZE, SIZE>()?;
        self.core_mut().sub_page_mut(shift, id.0)
    }

    /// The allocated sub-pages of `SIZE` bytes, ascending: what a reopen
    /// finds, with nothing to rebuild. It walks the parents of every size,
    /// so it costs what the file holds, not what is asked for.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{Pager, SubPage};
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let ids: Vec<SubPage<256>> = txn.alloc_sub_pages(20)?;
    /// txn.alloc_sub_page::<64>()?;
    /// txn.commit()?;
    /// drop(pager);
    /// let pager = Pager::<4096>::open(&path)?;
    /// assert_eq!(pager.iter_sub_pages::<256>().collect::<Vec<_>>(), ids);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn iter_sub_pages<const SIZE: usize>(&self) -> impl Iterator<Item = SubPage<SIZE>> + '_ {
        // No sub-page of a size the pages cannot be cut into exists.
        let shift = shift_of::<PAGE_SIZE, SIZE>().ok();
        shift
            .into_iter()
            .flat_map(|shift| sub_page_ids(self.core().directory(), shift))
            .map(SubPage)
    }
}

impl<const PAGE_SIZE: usize> Snapshot<PAGE_SIZE> {
    /// The bytes of a sub-page as of this snapshot's commit: a sub-page
    /// freed or rewritten later reads as it was, for as long as the
    /// snapshot lives, on any thread.
    ///
    /// # Errors
    /// `InvalidSubPage` for an id that names no allocated sub-page of this
    /// size in this state.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let id = txn.alloc_sub_page::<256>()?;
    /// txn.sub_page_mut(id)?[0] = 9;
    /// txn.commit()?;
    /// let snapshot = pager.snapshot()?;
    /// let mut txn = pager.transaction()?;
    /// txn.free_sub_page(id)?;
    /// txn.commit()?;
    /// assert_eq!(snapshot.sub_page(id)?[0], 9); // as it was
    /// assert!(pager.sub_page(id).is_err());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    #[inline]
    pub fn sub_page<const SIZE: usize>(&self, id: SubPage<SIZE>) -> Result<&[u8]> {
        let shift = shift_of::<PAGE_SIZE, SIZE>()?;
        self.state.sub_page(shift, id.0)
    }

    /// The sub-pages of `SIZE` bytes allocated in this state, ascending.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let id = txn.alloc_sub_page::<128>()?;
    /// txn.commit()?;
    /// let snapshot = pager.snapshot()?;
    /// let mut txn = pager.transaction()?;
    /// txn.free_sub_page(id)?;
    /// txn.commit()?;
    /// assert_eq!(snapshot.iter_sub_pages::<128>().collect::<Vec<_>>(), [id]);
    /// assert_eq!(pager.iter_sub_pages::<128>().count(), 0);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn iter_sub_pages<const SIZE: usize>(&self) -> impl Iterator<Item = SubPage<SIZE>> + '_ {
        // No sub-page of a size the pages cannot be cut into exists.
        let shift = shift_of::<PAGE_SIZE, SIZE>().ok();
        shift
            .into_iter()
            .flat_map(|shift| sub_page_ids(self.state.directory(), shift))
            .map(SubPage)
    }
}

//! Reads and writes by id on the container that holds the page:
//! `pager.get(id)` beside `id.get(&pager)`, in the form a `Snapshot` and a
//! `Transaction` take, and the sub-page allocator's `get`/`get_mut` (its
//! `alloc_mut` was one under a misleading name).

use crate::error::Result;
use crate::page::{MappedPage, PageId};
use crate::pager::Pager;
use crate::protected::ProtectedPageId;
use crate::sub_page_allocator::{SubPageAllocator, SubPageId};
use crate::traits::PageHandle;

impl<const PAGE_SIZE: usize> Pager<PAGE_SIZE> {
    /// Borrows the bytes of the regular page `id`: the same as
    /// [`PageId::get`], spelled as on a [`Snapshot`](crate::Snapshot) and a
    /// [`Transaction`](crate::Transaction).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let mut pager = mappedpages::Pager::<4096>::create(dir.path().join("data.bin"))?;
    /// let id = pager.alloc()?;
    /// pager.get_mut(id)?.as_bytes_mut()[0] = 7;
    /// assert_eq!(pager.get(id)?.as_bytes()[0], 7);
    /// assert_eq!(pager.snapshot()?.get(id)?.as_bytes()[0], 7);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// As [`PageId::get`]: `OutOfBounds`, `ReservedPage` or `NotAllocated`
    /// for an id that names no allocated regular page.
    pub fn get(&self, id: PageId<PAGE_SIZE>) -> Result<&MappedPage> {
        id.get(self)
    }

    /// Borrows the regular page `id` for writing in place: the same as
    /// [`PageId::get_mut`] (see there for when its bytes are durable).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let mut pager = mappedpages::Pager::<4096>::create(dir.path().join("data.bin"))?;
    /// let id = pager.alloc()?;
    /// pager.get_mut(id)?.as_bytes_mut()[..2].copy_from_slice(b"ok");
    /// pager.sync()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// As [`PageId::get_mut`].
    pub fn get_mut(&mut self, id: PageId<PAGE_SIZE>) -> Result<&mut MappedPage> {
        id.get_mut(self)
    }

    /// Borrows the committed bytes of the protected page `id`: the same as
    /// [`ProtectedPageId::get`], spelled as
    /// [`Snapshot::get_protected`](crate::Snapshot::get_protected).
    ///
    /// ```
    /// use mappedpages::Pager;
    /// # let dir = tempfile::tempdir()?;
    /// let mut pager = Pager::<4096>::create(dir.path().join("data.bin"))?;
    /// let root = pager.alloc_protected()?;
    /// assert_eq!(pager.get_protected(root)?.as_bytes(), &[0; 4096][..]);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// `OutOfBounds` when the id names no protected page in use.
    pub fn get_protected(&self, id: ProtectedPageId<PAGE_SIZE>) -> Result<&MappedPage> {
        id.get(self)
    }
}

impl<const PARENT_SIZE: usize, const SUB_SIZE: usize> SubPageAllocator<PARENT_SIZE, SUB_SIZE> {
    /// Borrows the sub-page `id`: the same as `id.get(&allocator)`.
    ///
    /// ```
    /// use mappedpages::{PageAllocator, Pager, SubPageAllocator};
    /// # let dir = tempfile::tempdir()?;
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::create(dir.path().join("data.bin"))?);
    /// let id = sub.alloc()?;
    /// assert_eq!(sub.get(id)?.as_bytes(), &[0; 1024][..]);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// `OutOfBounds` for a handle of another allocator or a sub-page that is
    /// free; `Unavailable` after an I/O failure of the pager.
    pub fn get(&self, id: SubPageId<PARENT_SIZE, SUB_SIZE>) -> Result<&MappedPage> {
        PageHandle::get(&id, self)
    }

    /// Borrows the sub-page `id` for writing: the same as
    /// `id.get_mut(&mut allocator)`. Its bytes are durable like those of any
    /// regular page, after [`Pager::sync`] or the pager's next commit.
    ///
    /// ```
    /// use mappedpages::{PageAllocator, Pager, SubPageAllocator};
    /// # let dir = tempfile::tempdir()?;
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::create(dir.path().join("data.bin"))?);
    /// let id = sub.alloc()?;
    /// sub.get_mut(id)?.as_bytes_mut()[..2].copy_from_slice(b"hi");
    /// assert_eq!(&sub.get(id)?.as_bytes()[..2], b"hi");
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// As [`get`](SubPageAllocator::get).
    pub fn get_mut(&mut self, id: SubPageId<PARENT_SIZE, SUB_SIZE>) -> Result<&mut MappedPage> {
        PageHandle::get_mut(&id, self)
    }
}

//! The handle and allocator traits that let generic code work with any page
//! type: regular pages, protected pages and sub-pages.
//!
//! [`Pager`] implements [`PageAllocator`] and [`BulkPageAllocator`] for both
//! [`PageId`] and [`ProtectedPageId`]; [`crate::SubPageAllocator`] implements
//! them for [`crate::SubPageId`]. The inherent methods of `Pager` keep their
//! names, so `pager.alloc()` is always the inherent, regular-page method; call
//! the trait method as `PageAllocator::alloc(&mut pager)` when the handle type
//! is generic.

use std::fmt;

use crate::error::Result;
use crate::page::{MappedPage, PageId};
use crate::pager::Pager;
use crate::protected::{ProtectedPageId, ProtectedPageWriter};

/// A handle to one page (or sub-page) handed out by an allocator `A`.
///
/// Reading is the same for every kind of page: [`get`](PageHandle::get)
/// borrows the bytes from the allocator. Writing differs: a regular page or a
/// sub-page is written in place through a `&mut MappedPage`, while a protected
/// page is written through a [`ProtectedPageWriter`] that must be committed.
/// [`get_mut`](PageHandle::get_mut) therefore returns the associated type
/// [`Writer`](PageHandle::Writer), which is `&mut MappedPage` for the former
/// and `ProtectedPageWriter` for the latter.
///
/// A handle is a plain value: it does not borrow its allocator, and every
/// access checks that the handle still names a page in use.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.bin");
/// use mappedpages::{MappedPageError, PageAllocator, PageHandle, Pager, PageId, ProtectedPageId};
///
/// /// Reads the first byte of any page, whatever its kind.
/// fn first_byte<A, H: PageHandle<A>>(allocator: &A, id: H) -> Result<u8, MappedPageError> {
///     Ok(id.get(allocator)?.as_bytes()[0])
/// }
///
/// let mut pager = Pager::<4096>::create(&path)?;
/// let page: PageId<4096> = PageAllocator::alloc(&mut pager)?;
/// let protected: ProtectedPageId<4096> = PageAllocator::alloc(&mut pager)?;
/// PageHandle::get_mut(&page, &mut pager)?.as_bytes_mut()[0] = 7;
/// let mut writer = PageHandle::get_mut(&protected, &mut pager)?;
/// writer.page_mut().as_bytes_mut()[0] = 9;
/// writer.commit()?;
/// assert_eq!(first_byte(&pager, page)?, 7);
/// assert_eq!(first_byte(&pager, protected)?, 9);
/// # Ok::<(), MappedPageError>(())
/// ```
pub trait PageHandle<A>: Copy + fmt::Debug {
    /// What [`get_mut`](PageHandle::get_mut) returns: `&'a mut MappedPage`
    /// for pages written in place, [`ProtectedPageWriter`] for protected pages.
    type Writer<'a>
    where
        A: 'a;

    /// Borrows the page's bytes for reading.
    ///
    /// # Errors
    /// An error (never another page's bytes) when the handle names no page in
    /// use in `allocator`: a freed page, a page never handed out, a handle
    /// from another allocator. See the implementing type for the variants.
    fn get<'a>(&self, allocator: &'a A) -> Result<&'a MappedPage>;

    /// Borrows the page for writing.
    ///
    /// # Errors
    /// As [`get`](PageHandle::get), and those of a write: for a page
    /// written in place, `InUseBySnapshot` while a live snapshot reads it.
    /// See the implementing type.
    fn get_mut<'a>(&self, allocator: &'a mut A) -> Result<Self::Writer<'a>>;
}

/// An allocator of pages of handle type `H`.
///
/// The error type is [`crate::MappedPageError`], which implements `Debug` and
/// `std::error::Error`, so generic code may `unwrap` it or box it.
///
/// `Pager` has inherent methods of the same names for regular pages, and the
/// compiler picks those first in `pager.alloc()`. Where the handle type is a
/// type parameter, call the trait method by its path:
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.bin");
/// use mappedpages::{PageAllocator, PageHandle, Pager, PageId, ProtectedPageId};
///
/// fn fill_pages<H, const N: usize>(pager: &mut Pager<N>, n: usize) -> Vec<H>
/// where
///     H: PageHandle<Pager<N>>,
///     Pager<N>: PageAllocator<H>,
/// {
///     (0..n).map(|_| PageAllocator::alloc(pager).unwrap()).collect()
/// }
///
/// let mut pager = Pager::<4096>::create(&path)?;
/// let regular: Vec<PageId<4096>> = fill_pages(&mut pager, 3);
/// let protected: Vec<ProtectedPageId<4096>> = fill_pages(&mut pager, 2);
/// assert_eq!(pager.iter_allocated_pages().count(), 3);
/// assert_eq!(pager.iter_allocated_protected_pages().count(), 2);
/// for id in protected {
///     PageAllocator::free(&mut pager, id)?;
/// }
/// # drop(regular);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub trait PageAllocator<H> {
    /// Allocates one page and returns its handle.
    ///
    /// # Errors
    /// An I/O error while growing the file or committing; see the
    /// implementing type.
    fn alloc(&mut self) -> Result<H>;

    /// Frees the page `handle` names.
    ///
    /// # Errors
    /// `DoubleFree` for a page already free; other variants for a handle
    /// that names no page of this allocator. Nothing changes on error.
    fn free(&mut self, handle: H) -> Result<()>;
}

/// An allocator that also allocates and frees many pages in one call, all or
/// nothing.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.bin");
/// use mappedpages::{BulkPageAllocator, PageHandle, Pager, PageId};
///
/// fn load_bulk<A, H>(allocator: &mut A, n: usize) -> Vec<H>
/// where
///     H: PageHandle<A>,
///     A: BulkPageAllocator<H>,
/// {
///     allocator.alloc_bulk(n).unwrap()
/// }
///
/// let mut pager = Pager::<4096>::create(&path)?;
/// let ids: Vec<PageId<4096>> = load_bulk(&mut pager, 10);
/// assert_eq!(ids.len(), 10);
/// BulkPageAllocator::free_bulk(&mut pager, ids)?;
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub trait BulkPageAllocator<H>: PageAllocator<H> {
    /// Allocates `count` pages. On error nothing is allocated.
    ///
    /// # Errors
    /// `InvalidCount` for a count no file could hold (zero is no error: an
    /// empty `Vec`, no commit); an I/O error while growing the file or
    /// committing.
    fn alloc_bulk(&mut self, count: usize) -> Result<Vec<H>>;

    /// Frees every page in `handles`. Every handle is checked first: one bad
    /// handle, or one named twice (`DoubleFree`), and nothing changes.
    ///
    /// # Errors
    /// As [`PageAllocator::free`]. An empty list does nothing and returns `Ok`.
    fn free_bulk(&mut self, handles: Vec<H>) -> Result<()>;
}

/// Regular pages are written in place.
impl<const N: usize> PageHandle<Pager<N>> for PageId<N> {
    type Writer<'a> = &'a mut MappedPage;

    /// As [`PageId::get`].
    fn get<'a>(&self, allocator: &'a Pager<N>) -> Result<&'a MappedPage> {
        PageId::get(self, allocator)
    }

    /// As [`PageId::get_mut`].
    fn get_mut<'a>(&self, allocator: &'a mut Pager<N>) -> Result<&'a mut MappedPage> {
        PageId::get_mut(self, allocator)
    }
}

/// Protected pages are written through a [`ProtectedPageWriter`].
impl<const N: usize> PageHandle<Pager<N>> for ProtectedPageId<N> {
    type Writer<'a> = ProtectedPageWriter<'a, N>;

    /// As [`ProtectedPageId::get`].
    fn get<'a>(&self, allocator: &'a Pager<N>) -> Result<&'a MappedPage> {
        ProtectedPageId::get(self, allocator)
    }

    /// As [`ProtectedPageId::get_mut`].
    fn get_mut<'a>(&self, allocator: &'a mut Pager<N>) -> Result<ProtectedPageWriter<'a, N>> {
        ProtectedPageId::get_mut(self, allocator)
    }
}

/// As [`Pager::alloc`] and [`Pager::free`].
impl<const N: usize> PageAllocator<PageId<N>> for Pager<N> {
    fn alloc(&mut self) -> Result<PageId<N>> {
        Pager::alloc(self)
    }

    fn free(&mut self, handle: PageId<N>) -> Result<()> {
        Pager::free(self, handle)
    }
}

/// As [`Pager::alloc_bulk`] and [`Pager::free_bulk`].
impl<const N: usize> BulkPageAllocator<PageId<N>> for Pager<N> {
    fn alloc_bulk(&mut self, count: usize) -> Result<Vec<PageId<N>>> {
        Pager::alloc_bulk(self, count)
    }

    fn free_bulk(&mut self, handles: Vec<PageId<N>>) -> Result<()> {
        Pager::free_bulk(self, handles)
    }
}

/// As [`Pager::alloc_protected`] and [`Pager::free_protected`].
impl<const N: usize> PageAllocator<ProtectedPageId<N>> for Pager<N> {
    fn alloc(&mut self) -> Result<ProtectedPageId<N>> {
        self.alloc_protected()
    }

    fn free(&mut self, handle: ProtectedPageId<N>) -> Result<()> {
        self.free_protected(handle)
    }
}

/// As [`Pager::alloc_protected_bulk`] and [`Pager::free_protected_bulk`].
impl<const N: usize> BulkPageAllocator<ProtectedPageId<N>> for Pager<N> {
    fn alloc_bulk(&mut self, count: usize) -> Result<Vec<ProtectedPageId<N>>> {
        self.alloc_protected_bulk(count)
    }

    fn free_bulk(&mut self, handles: Vec<ProtectedPageId<N>>) -> Result<()> {
        self.free_protected_bulk(handles)
    }
}

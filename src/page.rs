//! The view of one page, and the handle of a regular page.

#![allow(unsafe_code)]

use std::fmt;

use crate::error::Result;
use crate::pager::Pager;

/// A view of one page of the file (or of one sub-page), always behind a
/// reference, like `str` or `Path`. Its length is the page size.
///
/// A `&MappedPage` borrows the pager that produced it, so the borrow checker
/// rejects any use of it after a call that may remap the file.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// let id = pager.alloc()?;
/// let page: &mut mappedpages::MappedPage = id.get_mut(&mut pager)?;
/// page.as_bytes_mut()[..2].copy_from_slice(b"hi");
/// assert_eq!(page.len(), 4096);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[repr(transparent)]
pub struct MappedPage([u8]);

impl MappedPage {
    #[inline]
    pub(crate) fn from_bytes(bytes: &[u8]) -> &MappedPage {
        // SAFETY: `MappedPage` is `repr(transparent)` over `[u8]`, so the two
        // fat pointers have the same layout and metadata (the length); the
        // lifetime is carried over unchanged.
        unsafe { &*(bytes as *const [u8] as *const MappedPage) }
    }

    #[inline]
    pub(crate) fn from_bytes_mut(bytes: &mut [u8]) -> &mut MappedPage {
        // SAFETY: as in `from_bytes`; the unique borrow is carried over.
        unsafe { &mut *(bytes as *mut [u8] as *mut MappedPage) }
    }

    /// The page's bytes.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// assert!(id.get(&pager)?.as_bytes().iter().all(|&b| b == 0));
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The page's bytes, writable.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// id.get_mut(&mut pager)?.as_bytes_mut().fill(0xFF);
    /// assert_eq!(id.get(&pager)?.as_bytes()[4095], 0xFF);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    #[inline]
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// The page size in bytes.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<1024>::create(&path)?;
    /// let id = pager.alloc()?;
    /// assert_eq!(id.get(&pager)?.len(), 1024);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    #[inline]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a page is never empty.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<1024>::create(&path)?;
    /// let id = pager.alloc()?;
    /// assert!(!id.get(&pager)?.is_empty());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for MappedPage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedPage")
            .field("len", &self.len())
            .finish()
    }
}

impl AsRef<[u8]> for MappedPage {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl AsMut<[u8]> for MappedPage {
    fn as_mut(&mut self) -> &mut [u8] {
        self.as_bytes_mut()
    }
}

/// The handle of a regular page: its page number in the file, as `.0`.
///
/// Cheap to copy, and typed by page size: a `PageId<1024>` does not compile
/// against a `Pager<4096>`. A storage engine may store `id.0` inside a page and
/// rebuild the handle later with `PageId(raw)`: `get` and `get_mut` check that
/// the page is an allocated regular page and return an error otherwise, never
/// another page's bytes.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::{PageId, Pager};
/// let mut pager = Pager::<4096>::create(&path)?;
/// let id = pager.alloc()?;
/// let raw: u64 = id.0; // what an engine stores in its own pages
/// assert_eq!(PageId::<4096>(raw), id);
/// assert!(PageId::<4096>(raw + 1).get(&pager).is_err()); // not allocated
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageId<const PAGE_SIZE: usize>(pub u64);

impl<const PAGE_SIZE: usize> fmt::Debug for PageId<PAGE_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageId<{PAGE_SIZE}>({})", self.0)
    }
}

impl<const PAGE_SIZE: usize> PageId<PAGE_SIZE> {
    /// Borrows the page for reading.
    ///
    /// # Errors
    /// `OutOfBounds` past the end of the file, `ReservedPage` for pages 0 to
    /// 2, `NotAllocated` for a free or internal page, `Unavailable` after an
    /// I/O failure.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// use mappedpages::{Pager, PageId};
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// assert_eq!(id.get(&pager)?.len(), 4096);
    /// // A forged id is an error, not someone else's bytes.
    /// assert!(PageId::<4096>(1).get(&pager).is_err());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    #[inline]
    pub fn get<'a>(&self, pager: &'a Pager<PAGE_SIZE>) -> Result<&'a MappedPage> {
        pager
            .core()
            .regular_page_sized(self.0, PAGE_SIZE)
            .map(MappedPage::from_bytes)
    }

    /// Borrows the page for writing. The bytes are the caller's: they are
    /// durable after [`Pager::sync`] or after the next commit (any `alloc`,
    /// `free` or protected `commit`), which makes them durable before its own
    /// metadata can be seen.
    ///
    /// # Errors
    /// As [`PageId::get`]; `InUseBySnapshot` while a live
    /// [`Snapshot`](crate::Snapshot) reads the page; `Io` if a sync that
    /// must come first fails (the first write in place after `open`, or to
    /// a page a transaction wrote, first makes the commits so far durable).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::Pager;
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// id.get_mut(&mut pager)?.as_bytes_mut()[0] = 5; // written in place
    /// pager.sync()?;
    /// drop(pager);
    /// assert_eq!(id.get(&Pager::<4096>::open(&path)?)?.as_bytes()[0], 5);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    #[inline]
    pub fn get_mut<'a>(&self, pager: &'a mut Pager<PAGE_SIZE>) -> Result<&'a mut MappedPage> {
        pager
            .core_mut()
            .regular_page_mut(self.0)
            .map(MappedPage::from_bytes_mut)
    }
}

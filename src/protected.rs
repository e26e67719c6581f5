//! Protected pages: crash-consistent copy-on-write pages backed by two
//! physical copies.
//!
//! Each protected page is a directory slot naming two internal pages and which
//! of them holds the committed bytes. A write is staged in the other copy
//! (which starts as a copy of the committed bytes, contract A3); `commit`
//! publishes the flipped slot in one metadata commit whose root carries the
//! staged copy's CRC-32C, so one sync covers both and a crash leaves either
//! the old or the new bytes (D2). A slot that
//! was never committed reads as zeros without touching its copies.

use std::fmt;

use crate::engine::TxnState;
use crate::error::Result;
use crate::page::MappedPage;
use crate::pager::Pager;

/// The handle of a protected page: its slot in the protected-page directory,
/// as `.0`. Cheap to copy, typed by page size like [`crate::PageId`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::{Pager, ProtectedPageId};
/// let mut pager = Pager::<4096>::create(&path)?;
/// let id = pager.alloc_protected()?;
/// let raw = id.0; // store it in a page, rebuild it later
/// assert_eq!(ProtectedPageId::<4096>(raw), id);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ProtectedPageId<const PAGE_SIZE: usize>(pub u64);

impl<const PAGE_SIZE: usize> fmt::Debug for ProtectedPageId<PAGE_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProtectedPageId<{PAGE_SIZE}>({})", self.0)
    }
}

impl<const PAGE_SIZE: usize> ProtectedPageId<PAGE_SIZE> {
    /// Borrows the committed bytes of the page. A page never committed reads
    /// as zeros.
    ///
    /// # Errors
    /// `OutOfBounds` when the id names no protected page in use.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc_protected()?;
    /// assert_eq!(id.get(&pager)?.as_bytes()[0], 0); // never committed: zeros
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn get<'a>(&self, pager: &'a Pager<PAGE_SIZE>) -> Result<&'a MappedPage> {
        pager
            .core()
            .protected_page(self.0)
            .map(MappedPage::from_bytes)
    }

    /// Starts a staged write. The writer's page starts as the committed
    /// bytes; nothing is visible until [`ProtectedPageWriter::commit`], and
    /// dropping the writer discards the write.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// use mappedpages::Pager;
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let id = pager.alloc_protected()?;
    /// let mut writer = id.get_mut(&mut pager)?;
    /// writer.page_mut().as_bytes_mut()[..5].copy_from_slice(b"hello");
    /// writer.commit()?;
    /// {
    ///     let mut writer = id.get_mut(&mut pager)?;
    ///     writer.page_mut().as_bytes_mut()[0] = b'j';
    /// } // dropped: discarded
    /// assert_eq!(&id.get(&pager)?.as_bytes()[..5], b"hello");
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// `OutOfBounds` when the id names no protected page in use.
    pub fn get_mut<'a>(
        &self,
        pager: &'a mut Pager<PAGE_SIZE>,
    ) -> Result<ProtectedPageWriter<'a, PAGE_SIZE>> {
        let core = pager.core_mut();
        let mut txn = TxnState::new(core);
        match core.txn_stage_protected(&mut txn, self.0) {
            Ok(page) => Ok(ProtectedPageWriter {
                pager,
                txn: Some(txn),
                slot: self.0,
                page,
            }),
            Err(err) => {
                core.rollback_txn(txn);
                Err(err)
            }
        }
    }
}

/// A staged write to a protected page. Dropping it without
/// [`commit`](ProtectedPageWriter::commit) leaves the page unchanged.
///
/// If a crash happens before `commit` returns, the page reads as its old
/// bytes or its new bytes after reopening, never a mix.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// let id = pager.alloc_protected()?;
/// let mut writer = id.get_mut(&mut pager)?;
/// writer.page_mut().as_bytes_mut()[0] = 1;
/// writer.commit()?;
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub struct ProtectedPageWriter<'a, const PAGE_SIZE: usize> {
    pager: &'a mut Pager<PAGE_SIZE>,
    /// A transaction of one staged write; `None` once committed.
    txn: Option<TxnState>,
    slot: u64,
    page: u64,
}

impl<const PAGE_SIZE: usize> Drop for ProtectedPageWriter<'_, PAGE_SIZE> {
    fn drop(&mut self) {
        if let Some(txn) = self.txn.take() {
            self.pager.core_mut().rollback_txn(txn);
        }
    }
}

impl<const PAGE_SIZE: usize> fmt::Debug for ProtectedPageWriter<'_, PAGE_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProtectedPageWriter")
            .field("id", &self.slot)
            .finish_non_exhaustive()
    }
}

impl<const PAGE_SIZE: usize> ProtectedPageWriter<'_, PAGE_SIZE> {
    /// The staged bytes, writable.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc_protected()?;
    /// let mut writer = id.get_mut(&mut pager)?;
    /// writer.page_mut().as_bytes_mut()[..2].copy_from_slice(b"ok");
    /// writer.commit()?;
    /// assert_eq!(&id.get(&pager)?.as_bytes()[..2], b"ok");
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn page_mut(&mut self) -> &mut MappedPage {
        let core = self.pager.core_mut();
        // Staged when the writer was made, and held until the commit: only
        // a pager made unavailable meanwhile leaves nothing to return.
        let bytes = match self.txn.as_mut() {
            Some(txn) => core.txn_protected_mut(txn, self.slot).unwrap_or_default(),
            None => Default::default(),
        };
        MappedPage::from_bytes_mut(bytes)
    }

    /// The staged bytes.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc_protected()?;
    /// let mut writer = id.get_mut(&mut pager)?;
    /// writer.page_mut().as_bytes_mut()[0] = 3;
    /// assert_eq!(writer.page().as_bytes()[0], 3); // staged, not committed
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn page(&self) -> &MappedPage {
        let core = self.pager.core();
        let bytes = match self.txn.as_ref() {
            Some(txn) => core.txn_held_or_file(txn, self.page),
            None => core.page_bytes(self.page),
        };
        MappedPage::from_bytes(bytes.unwrap_or_default())
    }

    /// Makes the staged bytes the page's committed bytes, atomically. With
    /// [`crate::Durability::Immediate`] this is one sync (two if regular
    /// pages were written through `get_mut` since the last sync: those are
    /// made durable first).
    ///
    /// # Errors
    /// An I/O error. If the file could not grow for the commit (`Io` of kind
    /// `StorageFull`, for example), nothing was published: the page keeps its
    /// old bytes and the pager stays usable. After any other I/O error the
    /// pager is unavailable and the file reopens with the old or the new
    /// bytes.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::Pager;
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let root = pager.alloc_protected()?;
    /// let mut writer = root.get_mut(&mut pager)?;
    /// writer.page_mut().as_bytes_mut()[..4].copy_from_slice(b"v1.0");
    /// writer.commit()?; // atomic: after a crash the page reads all old or all new
    /// drop(pager);
    /// assert_eq!(&root.get(&Pager::<4096>::open(&path)?)?.as_bytes()[..4], b"v1.0");
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn commit(mut self) -> Result<()> {
        match self.txn.take() {
            Some(txn) => self.pager.core_mut().commit_txn(txn),
            None => Ok(()),
        }
    }
}

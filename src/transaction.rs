//! `Transaction`: many allocations, frees, page writes and protected-page
//! writes made durable together by one commit (contract T1–T3). The engine
//! side is `engine/transaction.rs`; this is the typed face.

use std::cell::RefCell;
use std::fmt;

use crate::engine::{FreeMap, FreshPages, TxnState};
use crate::error::{MappedPageError, Result};
use crate::io::{DisjointPages, LendError};
use crate::page::{MappedPage, PageId};
use crate::pager::Pager;
use crate::protected::ProtectedPageId;

impl<const PAGE_SIZE: usize> Pager<PAGE_SIZE> {
    /// Starts a transaction: every allocation, free and write made through
    /// it becomes visible, and durable, in one atomic commit
    /// ([`Transaction::commit`]); dropping it undoes them all.
    ///
    /// A transaction writes copy-on-write: [`Transaction::get_mut`] hands out
    /// the pages the transaction allocated, never a page committed before it,
    /// so that a crash before the commit leaves every committed page as it
    /// was. A B-tree insert that splits a node:
    ///
    /// ```
    /// use mappedpages::Pager;
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let root = pager.alloc_protected()?;
    /// let old = pager.alloc()?;
    ///
    /// let mut txn = pager.transaction()?;
    /// let [left, right] = [txn.alloc()?, txn.alloc()?];
    /// {
    ///     // The old node and both new ones at once, without a copy.
    ///     let pages = txn.pages();
    ///     let old_node = pages.get(old)?;
    ///     let (l, r) = (pages.get_mut(left)?, pages.get_mut(right)?);
    ///     l.as_bytes_mut()[..2048].copy_from_slice(&old_node.as_bytes()[..2048]);
    ///     r.as_bytes_mut()[..2048].copy_from_slice(&old_node.as_bytes()[2048..]);
    /// }
    /// txn.free(old)?;
    /// let bytes = txn.write_protected(root)?.as_bytes_mut();
    /// bytes[..8].copy_from_slice(&left.0.to_le_bytes());
    /// bytes[8..16].copy_from_slice(&right.0.to_le_bytes());
    /// txn.commit()?; // one sync for all of it
    ///
    /// assert_eq!(pager.allocated_page_count(), 2);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// `Unavailable` after an earlier I/O failure.
    pub fn transaction(&mut self) -> Result<Transaction<'_, PAGE_SIZE>> {
        let txn = self.core_mut().begin_transaction()?;
        Ok(Transaction {
            pager: self,
            txn: Some(txn),
        })
    }
}

/// A set of changes made durable together; see [`Pager::transaction`].
///
/// Errors inside a transaction change nothing and leave it usable: a bad
/// id, a double free, a page freed twice in it, a write to a page it freed
/// or did not allocate, a growth the disk has no room for. After an I/O
/// failure that leaves the pager unavailable, every call returns
/// `Unavailable` and the file reopens to its last commit.
///
/// Pages freed in a transaction are not reused by it, nor by any later one
/// until its commit is durable.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// let mut txn = pager.transaction()?;
/// let id = txn.alloc()?;
/// txn.get_mut(id)?.as_bytes_mut()[0] = 1;
/// txn.commit()?; // published, with one sync
/// let mut txn = pager.transaction()?;
/// txn.free(id)?;
/// drop(txn); // rolled back: the page stays allocated
/// assert_eq!(pager.allocated_page_count(), 1);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub struct Transaction<'a, const PAGE_SIZE: usize> {
    pub(crate) pager: &'a mut Pager<PAGE_SIZE>,
    /// `None` once committed.
    txn: Option<TxnState>,
}

impl<const PAGE_SIZE: usize> fmt::Debug for Transaction<'_, PAGE_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("page_size", &PAGE_SIZE)
            .finish_non_exhaustive()
    }
}

impl<const PAGE_SIZE: usize> Drop for Transaction<'_, PAGE_SIZE> {
    fn drop(&mut self) {
        if let Some(txn) = self.txn.take() {
            self.pager.core_mut().rollback_txn(txn);
        }
    }
}

impl<const PAGE_SIZE: usize> Transaction<'_, PAGE_SIZE> {
    /// The engine and this transaction's state, for one call.
    pub(crate) fn parts(&mut self) -> Result<(&mut crate::engine::Core, &mut TxnState)> {
        match self.txn.as_mut() {
            Some(txn) => Ok((self.pager.core_mut(), txn)),
            None => Err(MappedPageError::Unavailable),
        }
    }

    pub(crate) fn state(&self) -> Result<&TxnState> {
        self.txn.as_ref().ok_or(MappedPageError::Unavailable)
    }

    /// Allocates a regular page, growing the file if needed. The page is
    /// writable through [`Transaction::get_mut`] until the commit.
    ///
    /// # Errors
    /// `Io` if the file must grow and cannot (nothing changes).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let id = txn.alloc()?;
    /// assert!(txn.is_writable(id));
    /// txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn alloc(&mut self) -> Result<PageId<PAGE_SIZE>> {
        let pages = self.alloc_bulk(1)?;
        pages.first().copied().ok_or(MappedPageError::Unavailable)
    }

    /// Allocates `count` regular pages, lowest page numbers first.
    ///
    /// # Errors
    /// As [`Pager::alloc_bulk`]; nothing changes on error.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let ids = txn.alloc_bulk(3)?;
    /// assert!(ids.windows(2).all(|w| w[0] < w[1]));
    /// txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn alloc_bulk(&mut self, count: usize) -> Result<Vec<PageId<PAGE_SIZE>>> {
        let (core, txn) = self.parts()?;
        let pages = core.txn_alloc_regular(txn, count as u64)?;
        Ok(pages.into_iter().map(PageId).collect())
    }

    /// Frees a regular page. It stays readable to nobody: [`Transaction::get`]
    /// fails on it from now on.
    ///
    /// # Errors
    /// `DoubleFree` if it is free or was freed in this transaction,
    /// `OutOfBounds`, `ReservedPage`, `NotAllocated`; nothing changes.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// let mut txn = pager.transaction()?;
    /// txn.free(id)?;
    /// assert!(txn.get(id).is_err());
    /// txn.commit()?;
    /// assert_eq!(pager.allocated_page_count(), 0);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn free(&mut self, id: PageId<PAGE_SIZE>) -> Result<()> {
        let (core, txn) = self.parts()?;
        core.txn_free_regular(txn, &[id.0])
    }

    /// Frees regular pages; every id is checked first, and one bad id (or
    /// one named twice) changes nothing.
    ///
    /// # Errors
    /// As [`Transaction::free`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::MappedPageError;
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_bulk(2)?;
    /// let mut txn = pager.transaction()?;
    /// // One id named twice: nothing is freed, and the transaction goes on.
    /// assert!(matches!(txn.free_bulk([ids[0], ids[0]]), Err(MappedPageError::DoubleFree)));
    /// txn.free_bulk(ids)?;
    /// txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn free_bulk(&mut self, ids: impl IntoIterator<Item = PageId<PAGE_SIZE>>) -> Result<()> {
        let pages: Vec<u64> = ids.into_iter().map(|id| id.0).collect();
        let (core, txn) = self.parts()?;
        core.txn_free_regular(txn, &pages)
    }

    /// Allocates a protected page; it reads as zeros until a commit of a
    /// write to it.
    ///
    /// # Errors
    /// `Io` if the file must grow and cannot (nothing changes).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let root = txn.alloc_protected()?;
    /// txn.write_protected(root)?.as_bytes_mut()[0] = 7;
    /// txn.commit()?;
    /// assert_eq!(root.get(&pager)?.as_bytes()[0], 7);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn alloc_protected(&mut self) -> Result<ProtectedPageId<PAGE_SIZE>> {
        let (core, txn) = self.parts()?;
        let slots = core.txn_alloc_protected(txn, 1)?;
        slots
            .first()
            .copied()
            .map(ProtectedPageId)
            .ok_or(MappedPageError::Unavailable)
    }

    /// Frees a protected page and its copies; a write to it staged in this
    /// transaction is dropped.
    ///
    /// # Errors
    /// `DoubleFree` if the page is free (freed before, or in this
    /// transaction), `OutOfBounds` if the id is past the protected-page
    /// directory. Nothing changes on error; the transaction goes on.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let old = pager.alloc_protected()?;
    /// let mut txn = pager.transaction()?;
    /// txn.free_protected(old)?;
    /// txn.commit()?;
    /// assert!(old.get(&pager).is_err());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn free_protected(&mut self, id: ProtectedPageId<PAGE_SIZE>) -> Result<()> {
        let (core, txn) = self.parts()?;
        core.txn_free_protected(txn, &[id.0])
    }

    /// Borrows an allocated regular page: its committed bytes, or for a
    /// page this transaction allocated, what the transaction wrote.
    ///
    /// # Errors
    /// As [`PageId::get`]: `NotAllocated` for a page freed in this
    /// transaction.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let old = pager.alloc()?;
    /// let mut txn = pager.transaction()?;
    /// let new = txn.alloc()?;
    /// txn.get_mut(new)?.as_bytes_mut()[0] = 9;
    /// assert_eq!(txn.get(new)?.as_bytes()[0], 9); // its own writes
    /// assert_eq!(txn.get(old)?.as_bytes()[0], 0); // committed bytes
    /// # txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn get(&self, id: PageId<PAGE_SIZE>) -> Result<&MappedPage> {
        let txn = self.state()?;
        self.pager
            .core()
            .txn_page(txn, id.0)
            .map(MappedPage::from_bytes)
    }

    /// Borrows a page this transaction allocated, writable. Its bytes are
    /// made durable by the commit, with one sync for everything.
    ///
    /// # Errors
    /// `CommittedPage` for a page committed before this transaction (write
    /// a copy to a fresh page instead), `NotAllocated` for one freed in it,
    /// and the errors of [`PageId::get`]. Nothing changes.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::MappedPageError;
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let committed = pager.alloc()?;
    /// let mut txn = pager.transaction()?;
    /// let fresh = txn.alloc()?;
    /// txn.get_mut(fresh)?.as_bytes_mut()[..5].copy_from_slice(b"hello");
    /// // Pages committed before the transaction are written copy-on-write.
    /// assert!(matches!(txn.get_mut(committed), Err(MappedPageError::CommittedPage { .. })));
    /// txn.commit()?;
    /// assert_eq!(&fresh.get(&pager)?.as_bytes()[..5], b"hello");
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn get_mut(&mut self, id: PageId<PAGE_SIZE>) -> Result<&mut MappedPage> {
        let (core, txn) = self.parts()?;
        core.txn_page_mut(txn, id.0).map(MappedPage::from_bytes_mut)
    }

    /// Moves a regular page down: if a free page lies below `id`, allocates
    /// the lowest one, copies `id`'s bytes into it, frees `id` and returns
    /// the new page, which the caller then points its references at, in
    /// this transaction. `None` when no free page lies below, nothing
    /// changed (pages freed but not reusable yet do not count: those a live
    /// snapshot reads, or that a durable root still checks; pages waiting
    /// for a sync are made free by one first). Moving the highest pages this way (see
    /// [`Pager::iter_allocated_pages`] from the top down), then
    /// [`Pager::shrink`], gives a churned file's free space back.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_bulk(3)?;
    /// pager.free(ids[0])?;
    /// let mut txn = pager.transaction()?;
    /// let moved = txn.relocate(ids[2])?.expect("a lower page is free");
    /// assert_eq!(moved, ids[0]);
    /// txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// The errors of [`Transaction::free`] for `id`; nothing changes.
    pub fn relocate(&mut self, id: PageId<PAGE_SIZE>) -> Result<Option<PageId<PAGE_SIZE>>> {
        let (core, txn) = self.parts()?;
        Ok(core.txn_relocate(txn, id.0)?.map(PageId))
    }

    /// Whether [`Transaction::get_mut`] can write `id`: it was allocated by
    /// this transaction and not freed since.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let committed = pager.alloc()?;
    /// let mut txn = pager.transaction()?;
    /// let fresh = txn.alloc()?;
    /// assert!(txn.is_writable(fresh) && !txn.is_writable(committed));
    /// # txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn is_writable(&self, id: PageId<PAGE_SIZE>) -> bool {
        self.txn.as_ref().is_some_and(|txn| txn.is_fresh(id.0))
            && self.pager.core().is_regular(id.0)
    }

    /// Several pages at once: any number of allocated pages readable and
    /// pages this transaction allocated writable, each lent one way only.
    /// No allocation or free can happen while the set lives, so the file
    /// cannot be remapped under it.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let (a, b) = (txn.alloc()?, txn.alloc()?);
    /// let pages = txn.pages();
    /// let (pa, pb) = (pages.get_mut(a)?, pages.get_mut(b)?);
    /// pa.as_bytes_mut()[0] = 1;
    /// pb.as_bytes_mut()[0] = pa.as_bytes()[0] + 1;
    /// assert!(pages.get(a).is_err(), "lent writable already");
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn pages(&mut self) -> PageSet<'_, PAGE_SIZE> {
        let Transaction { pager, txn } = self;
        let core = pager.core_mut();
        let usable = core.check_usable().is_ok() && txn.is_some();
        let (fresh, buffers) = match txn.as_mut().map(TxnState::lending) {
            Some((fresh, buffers)) => (Some(fresh), Some(buffers)),
            None => (None, None),
        };
        let (map, pages) = core.lend_pages(PAGE_SIZE, buffers);
        PageSet {
            usable,
            map,
            pages,
            fresh: RefCell::new(fresh),
        }
    }

    /// Reads a protected page: the bytes this transaction staged for it, or
    /// its committed bytes (zeros if never committed).
    ///
    /// # Errors
    /// `OutOfBounds` if the id names no protected page in use.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let root = pager.alloc_protected()?;
    /// let mut txn = pager.transaction()?;
    /// txn.write_protected(root)?.as_bytes_mut()[0] = 1;
    /// assert_eq!(txn.get_protected(root)?.as_bytes()[0], 1); // staged
    /// txn.rollback();
    /// assert_eq!(root.get(&pager)?.as_bytes()[0], 0); // never committed
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn get_protected(&self, id: ProtectedPageId<PAGE_SIZE>) -> Result<&MappedPage> {
        let core = self.pager.core();
        let state = self.state()?;
        match state.staged_page(id.0) {
            Some(page) => {
                core.live_entry(id.0)?;
                core.txn_held_or_file(state, page)
                    .map(MappedPage::from_bytes)
            }
            None => core.protected_page(id.0).map(MappedPage::from_bytes),
        }
    }

    /// Writes a protected page: the first call in a transaction stages a
    /// copy of its committed bytes (so a partial write changes only the
    /// bytes it touches), later calls return the
    /// same staged bytes. The commit publishes them atomically with the
    /// rest of the transaction.
    ///
    /// # Errors
    /// `OutOfBounds` if the id names no protected page in use; `Io` if the
    /// staging needs a page and the file cannot grow.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let root = pager.alloc_protected()?;
    /// let mut txn = pager.transaction()?;
    /// txn.write_protected(root)?.as_bytes_mut()[..3].copy_from_slice(b"abc");
    /// txn.commit()?;
    /// let mut txn = pager.transaction()?;
    /// txn.write_protected(root)?.as_bytes_mut()[0] = b'A'; // starts from "abc"
    /// txn.commit()?;
    /// assert_eq!(&root.get(&pager)?.as_bytes()[..3], b"Abc");
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn write_protected(&mut self, id: ProtectedPageId<PAGE_SIZE>) -> Result<&mut MappedPage> {
        let (core, txn) = self.parts()?;
        core.txn_protected_mut(txn, id.0)
            .map(MappedPage::from_bytes_mut)
    }

    /// Publishes everything this transaction did in one atomic commit. With
    /// [`Durability::Immediate`](crate::Durability::Immediate) it is durable
    /// when this returns, after one sync (two if the commit had to grow the
    /// file, if pages were written in place with [`PageId::get_mut`] before
    /// the transaction began, or for the first write after an open: open
    /// cannot tell whether the root it found is durable, so that write makes
    /// it so first); with
    /// [`Durability::Deferred`](crate::Durability::Deferred), no sync. An
    /// empty transaction commits nothing.
    ///
    /// # Errors
    /// `Io` if the file could not grow for the commit's metadata: nothing
    /// was published, the transaction is rolled back and the pager stays
    /// usable. After any other I/O error the pager is unavailable and the
    /// file reopens to the state before the transaction or after it.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::Pager;
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let id = txn.alloc()?;
    /// txn.get_mut(id)?.as_bytes_mut()[0] = 42;
    /// txn.commit()?; // durable now (Immediate), with one sync
    /// drop(pager);
    /// assert_eq!(Pager::<4096>::open(&path)?.get(id)?.as_bytes()[0], 42);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn commit(mut self) -> Result<()> {
        match self.txn.take() {
            Some(txn) => self.pager.core_mut().commit_txn(txn),
            None => Err(MappedPageError::Unavailable),
        }
    }

    /// Undoes everything this transaction did; the same as dropping it.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// txn.alloc_bulk(10)?;
    /// txn.rollback();
    /// assert_eq!(pager.allocated_page_count(), 0);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn rollback(self) {}
}

/// Pages of a transaction lent out together; see [`Transaction::pages`].
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
/// let old = pager.alloc()?;
/// let mut txn = pager.transaction()?;
/// let new = txn.alloc()?;
/// let pages = txn.pages();
/// pages.get_mut(new)?.as_bytes_mut().copy_from_slice(pages.get(old)?.as_bytes());
/// # drop(pages);
/// # txn.commit()?;
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub struct PageSet<'a, const PAGE_SIZE: usize> {
    usable: bool,
    map: &'a FreeMap,
    pages: DisjointPages<'a>,
    fresh: RefCell<Option<&'a mut FreshPages>>,
}

impl<const PAGE_SIZE: usize> fmt::Debug for PageSet<'_, PAGE_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageSet")
            .field("page_size", &PAGE_SIZE)
            .finish_non_exhaustive()
    }
}

impl<'a, const PAGE_SIZE: usize> PageSet<'a, PAGE_SIZE> {
    fn check_regular(&self, page: u64) -> Result<()> {
        if !self.usable {
            return Err(MappedPageError::Unavailable);
        }
        self.map.check_regular(page)
    }

    fn lent(page: u64) -> impl FnOnce(LendError) -> MappedPageError {
        move |err| match err {
            LendError::OutOfBounds => MappedPageError::OutOfBounds,
            LendError::Lent => MappedPageError::AlreadyBorrowed { page },
        }
    }

    /// Borrows an allocated regular page readable, for as long as the set
    /// lives.
    ///
    /// # Errors
    /// `AlreadyBorrowed` if the set lent it writable; the errors of
    /// [`Transaction::get`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let (a, b) = (pager.alloc()?, pager.alloc()?);
    /// let mut txn = pager.transaction()?;
    /// let pages = txn.pages();
    /// let (pa, pb) = (pages.get(a)?, pages.get(b)?); // readable together
    /// assert_eq!(pa.as_bytes(), pb.as_bytes());
    /// # drop(pages);
    /// # txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn get(&self, id: PageId<PAGE_SIZE>) -> Result<&'a MappedPage> {
        self.check_regular(id.0)?;
        let bytes = self.pages.shared(id.0).map_err(Self::lent(id.0))?;
        Ok(MappedPage::from_bytes(bytes))
    }

    /// Borrows a page the transaction allocated writable, for as long as
    /// the set lives.
    ///
    /// # Errors
    /// `AlreadyBorrowed` if the set lent it already; the errors of
    /// [`Transaction::get_mut`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::MappedPageError;
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let id = txn.alloc()?;
    /// let pages = txn.pages();
    /// pages.get_mut(id)?.as_bytes_mut()[0] = 1;
    /// assert!(matches!(pages.get_mut(id), Err(MappedPageError::AlreadyBorrowed { .. })));
    /// # drop(pages);
    /// # txn.commit()?;
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn get_mut(&self, id: PageId<PAGE_SIZE>) -> Result<&'a mut MappedPage> {
        self.check_regular(id.0)?;
        let mut fresh = self.fresh.borrow_mut();
        let fresh = fresh.as_deref_mut().ok_or(MappedPageError::Unavailable)?;
        if !fresh.is_fresh(id.0) {
            return Err(MappedPageError::CommittedPage { page: id.0 });
        }
        let bytes = self.pages.unique(id.0).map_err(Self::lent(id.0))?;
        fresh.note_written(id.0);
        Ok(MappedPage::from_bytes_mut(bytes))
    }
}

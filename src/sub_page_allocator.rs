//! `SubPageAllocator`: cuts the pages of a `Pager` into smaller, uniform
//! sub-pages, with in-memory bookkeeping, as 0.2 did (the durable,
//! transactional sub-pages are `crate::sub_page`).
//!
//! Each checked-out parent page has a 64-bit mask of used slots. The parents
//! that still have a free slot sit in a vector (each parent knows its place in
//! it, so removal is a swap-remove), which makes finding a free sub-page O(1)
//! however many parents are checked out.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{MappedPageError, Result};
use crate::page::{MappedPage, PageId};
use crate::pager::Pager;
use crate::traits::{BulkPageAllocator, PageAllocator, PageHandle};

/// Source of the per-allocator tags carried by every `SubPageId`: unique for
/// the life of the process, so a handle from another allocator is recognised.
static NEXT_TAG: AtomicU64 = AtomicU64::new(1);

/// The handle of one sub-page of `SUB_SIZE` bytes inside a parent page of
/// `PARENT_SIZE` bytes. Cheap to copy.
///
/// Read and write it with [`PageHandle::get`] and [`PageHandle::get_mut`]
/// (`id.get(&sub)`, `id.get_mut(&mut sub)`, with the trait in scope). The
/// handle carries a tag of the allocator that made it: a handle from another
/// allocator, or one whose sub-page has been freed, is an error, never someone
/// else's bytes. Like a [`PageId`], a handle kept after its sub-page was freed
/// names the slot again once the slot is handed out anew.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::{PageAllocator, PageHandle, Pager, SubPageAllocator};
///
/// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::create(&path)?);
/// let id = sub.alloc()?;
/// id.get_mut(&mut sub)?.as_bytes_mut()[0] = 1;
/// assert_eq!(id.get(&sub)?.len(), 1024);
/// sub.free(id)?;
/// assert!(id.get(&sub).is_err()); // a freed handle is an error
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubPageId<const PARENT_SIZE: usize, const SUB_SIZE: usize> {
    parent: u64,
    slot: u32,
    tag: u64,
}

impl<const PARENT_SIZE: usize, const SUB_SIZE: usize> fmt::Debug
    for SubPageId<PARENT_SIZE, SUB_SIZE>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SubPageId<{PARENT_SIZE}, {SUB_SIZE}>(page {}, slot {})",
            self.parent, self.slot
        )
    }
}

impl<const PARENT_SIZE: usize, const SUB_SIZE: usize> SubPageId<PARENT_SIZE, SUB_SIZE> {
    /// The parent page that holds this sub-page. Store it with
    /// [`slot`](SubPageId::slot) to rebuild the handle after a restart with
    /// [`SubPageAllocator::restore`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{PageAllocator, PageHandle, Pager, SubPageAllocator};
    ///
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::create(&path)?);
    /// let (a, b) = (sub.alloc()?, sub.alloc()?);
    /// assert_eq!(a.parent(), b.parent()); // four 1 KiB sub-pages per 4 KiB page
    /// # let _ = (a.get(&sub)?, b.get(&sub)?);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn parent(&self) -> PageId<PARENT_SIZE> {
        PageId(self.parent)
    }

    /// The sub-page's index inside its parent, from 0 to
    /// `PARENT_SIZE / SUB_SIZE - 1`.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{PageAllocator, Pager, SubPageAllocator};
    ///
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::create(&path)?);
    /// let (a, b) = (sub.alloc()?, sub.alloc()?);
    /// assert_ne!(a.slot(), b.slot());
    /// assert!(a.slot() < 4 && b.slot() < 4);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn slot(&self) -> usize {
        self.slot as usize
    }

    /// The sub-page's byte offset inside its parent page.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{PageAllocator, Pager, SubPageAllocator};
    ///
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::create(&path)?);
    /// let id = sub.alloc()?;
    /// assert_eq!(id.offset(), id.slot() * 1024);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn offset(&self) -> usize {
        self.slot as usize * SUB_SIZE
    }
}

/// The bookkeeping of one checked-out parent page.
#[derive(Clone, Copy)]
struct Parent {
    /// Bit `i` set: slot `i` is in use.
    used: u64,
    /// The parent's index in `SubPageAllocator::partial` while it has a free
    /// slot.
    partial_at: Option<usize>,
    /// Learned through `restore` and not yet vouched for by
    /// `finish_restore`: sub-pages of it may be in use that this allocator
    /// was never told about, so it neither hands out its free slots nor
    /// gives the page back.
    restored: bool,
}

/// Divides pages of a [`Pager<PARENT_SIZE>`] into sub-pages of `SUB_SIZE`
/// bytes, so callers need not build a slab allocator of their own.
///
/// It owns the pager. Parent pages are allocated from it when every checked-out
/// parent is full, and given back as soon as all their sub-pages are free.
/// Allocation, freeing, reading and writing go through the traits
/// [`PageAllocator`], [`BulkPageAllocator`] and [`PageHandle`], so the same
/// generic code serves pages and sub-pages. Finding a free sub-page costs
/// O(1), whatever the number of parents. A new sub-page reads as zeros.
///
/// **The sub-allocation state is in memory only.** Sub-pages live in the bytes
/// of ordinary regular pages, which are durable like any regular page, but
/// which slots are in use is not written to the file. After a restart, rebuild
/// the state from your own records with [`SubPageAllocator::restore`], then
/// say it is complete with [`SubPageAllocator::finish_restore`]: until then
/// a restored parent page lends no free slot and is not given back (a free
/// that would give it back is
/// [`IncompleteRestore`](MappedPageError::IncompleteRestore)), since sub-pages
/// of it not restored yet may still be in use.
///
/// For new code, prefer durable sub-pages ([`SubPage`](crate::SubPage)):
/// allocated, written and freed inside a [`Transaction`](crate::Transaction),
/// committed with it, recorded in the file, read through snapshots, with
/// nothing to rebuild after a restart. This allocator keeps 0.2's behaviour
/// for code written against it: a sub-page allocation that fits in a parent
/// already checked out costs no commit, and nothing about it survives a
/// restart but the bytes.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.bin");
/// use mappedpages::{PageAllocator, PageHandle, Pager, SubPageAllocator};
///
/// let pager = Pager::<4096>::create(&path)?;
/// let mut sub = SubPageAllocator::<4096, 512>::new(pager);
/// let a = sub.alloc()?;
/// let b = sub.alloc()?;
/// assert_eq!(a.parent(), b.parent()); // 8 sub-pages share one parent
/// a.get_mut(&mut sub)?.as_bytes_mut().fill(1);
/// assert_eq!(b.get(&sub)?.as_bytes(), &[0u8; 512][..]);
/// sub.free(a)?;
/// sub.free(b)?; // the parent goes back to the pager
/// assert_eq!(sub.pager().allocated_page_count(), 0);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
///
/// The sizes are checked at compile time: `SUB_SIZE` is a power of two,
/// smaller than `PARENT_SIZE`, and at most 64 sub-pages fit in a parent.
///
/// ```compile_fail,E0080
/// # let dir = tempfile::tempdir().unwrap();
/// # let pager = mappedpages::Pager::<4096>::create(dir.path().join("x")).unwrap();
/// // Not a power of two (and does not divide 4096).
/// let _sub = mappedpages::SubPageAllocator::<4096, 1000>::new(pager);
/// ```
///
/// ```compile_fail,E0080
/// # let dir = tempfile::tempdir().unwrap();
/// # let pager = mappedpages::Pager::<4096>::create(dir.path().join("x")).unwrap();
/// // Not smaller than the parent.
/// let _sub = mappedpages::SubPageAllocator::<4096, 4096>::new(pager);
/// ```
///
/// ```compile_fail,E0080
/// # let dir = tempfile::tempdir().unwrap();
/// # let pager = mappedpages::Pager::<4096>::create(dir.path().join("x")).unwrap();
/// // Larger than the parent.
/// let _sub = mappedpages::SubPageAllocator::<4096, 8192>::new(pager);
/// ```
///
/// ```compile_fail,E0080
/// # let dir = tempfile::tempdir().unwrap();
/// # let pager = mappedpages::Pager::<4096>::create(dir.path().join("x")).unwrap();
/// // 128 sub-pages per parent: more than 64.
/// let _sub = mappedpages::SubPageAllocator::<4096, 32>::new(pager);
/// ```
///
/// ```compile_fail,E0080
/// # let dir = tempfile::tempdir().unwrap();
/// # let pager = mappedpages::Pager::<4096>::create(dir.path().join("x")).unwrap();
/// let _sub = mappedpages::SubPageAllocator::<4096, 0>::new(pager);
/// ```
///
/// The smallest and largest legal splits compile:
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let pager = mappedpages::Pager::<4096>::create(dir.path().join("x"))?;
/// let sub = mappedpages::SubPageAllocator::<4096, 64>::new(pager);
/// let pager = sub.into_pager();
/// let sub = mappedpages::SubPageAllocator::<4096, 2048>::new(pager);
/// # drop(sub);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
pub struct SubPageAllocator<const PARENT_SIZE: usize, const SUB_SIZE: usize> {
    pager: Pager<PARENT_SIZE>,
    tag: u64,
    parents: HashMap<u64, Parent>,
    /// Parents with at least one free slot.
    partial: Vec<u64>,
    /// Sub-pages in use.
    allocated: usize,
}

impl<const PARENT_SIZE: usize, const SUB_SIZE: usize> fmt::Debug
    for SubPageAllocator<PARENT_SIZE, SUB_SIZE>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubPageAllocator")
            .field("parent_size", &PARENT_SIZE)
            .field("sub_size", &SUB_SIZE)
            .field("allocated", &self.allocated)
            .field("parent_pages", &self.parents.len())
            .field("pager", &self.pager)
            .finish_non_exhaustive()
    }
}

impl<const PARENT_SIZE: usize, const SUB_SIZE: usize> SubPageAllocator<PARENT_SIZE, SUB_SIZE> {
    const VALID_SIZES: () = assert!(
        SUB_SIZE.is_power_of_two()
            && SUB_SIZE < PARENT_SIZE
            && PARENT_SIZE.is_multiple_of(SUB_SIZE)
            && PARENT_SIZE / SUB_SIZE <= 64,
        "SUB_SIZE must be a power of two smaller than PARENT_SIZE that divides it \
         into at most 64 sub-pages"
    );

    /// How many sub-pages one parent page holds: `PARENT_SIZE / SUB_SIZE`.
    ///
    /// # Examples
    /// ```
    /// assert_eq!(mappedpages::SubPageAllocator::<4096, 512>::SUB_PAGES_PER_PAGE, 8);
    ///
    /// ```
    pub const SUB_PAGES_PER_PAGE: usize = PARENT_SIZE / SUB_SIZE;

    /// The mask of a parent whose slots are all in use.
    const FULL: u64 = if Self::SUB_PAGES_PER_PAGE >= 64 {
        u64::MAX
    } else {
        (1u64 << Self::SUB_PAGES_PER_PAGE) - 1
    };

    /// Wraps `pager`. No parent page is taken from it until the first
    /// allocation.
    ///
    /// The pager's regular pages allocated before are left alone; they are
    /// never used as parents unless handed over with
    /// [`restore`](SubPageAllocator::restore).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{PageAllocator, Pager, SubPageAllocator};
    ///
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let mine = pager.alloc()?; // never used as a parent
    /// let mut sub = SubPageAllocator::<4096, 2048>::new(pager);
    /// let id = sub.alloc()?;
    /// assert_ne!(id.parent(), mine);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn new(pager: Pager<PARENT_SIZE>) -> Self {
        #[allow(clippy::let_unit_value)]
        let () = Self::VALID_SIZES;
        SubPageAllocator {
            pager,
            tag: NEXT_TAG.fetch_add(1, Ordering::Relaxed),
            parents: HashMap::new(),
            partial: Vec::new(),
            allocated: 0,
        }
    }

    /// The inner pager, for reading: `page_count`, iterators, regular pages.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{PageAllocator, Pager, SubPageAllocator};
    ///
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::create(&path)?);
    /// sub.alloc()?;
    /// assert_eq!(sub.pager().allocated_page_count(), 1); // one parent page
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn pager(&self) -> &Pager<PARENT_SIZE> {
        &self.pager
    }

    /// Gives the inner pager back. The parent pages checked out stay
    /// allocated in it, as regular pages.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// use mappedpages::{PageAllocator, Pager, SubPageAllocator};
    /// let mut sub = SubPageAllocator::<4096, 512>::new(Pager::<4096>::create(&path)?);
    /// let id = sub.alloc()?;
    /// let pager: Pager<4096> = sub.into_pager();
    /// assert!(id.parent().get(&pager).is_ok());
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn into_pager(self) -> Pager<PARENT_SIZE> {
        self.pager
    }

    /// Sub-pages in use.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{PageAllocator, Pager, SubPageAllocator};
    ///
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::create(&path)?);
    /// for _ in 0..3 {
    ///     sub.alloc()?;
    /// }
    /// assert_eq!(sub.allocated_count(), 3);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn allocated_count(&self) -> usize {
        self.allocated
    }

    /// Parent pages checked out from the pager.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{PageAllocator, Pager, SubPageAllocator};
    ///
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::create(&path)?);
    /// for _ in 0..5 {
    ///     sub.alloc()?;
    /// }
    /// assert_eq!(sub.parent_page_count(), 2); // 4 sub-pages per parent
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn parent_page_count(&self) -> usize {
        self.parents.len()
    }

    /// The sub-page `id` names, writable: the same as
    /// `id.get_mut(&mut self)`. It allocates nothing; use
    /// [`get_mut`](SubPageAllocator::get_mut), which says what it does.
    ///
    /// # Errors
    /// As [`SubPageId`]'s [`PageHandle::get_mut`]: `OutOfBounds`,
    /// `InUseBySnapshot` while a live snapshot reads the parent page, `Io`,
    /// `Unavailable`.
    #[deprecated(since = "0.3.0", note = "it allocates nothing: use `get_mut`")]
    pub fn alloc_mut(&mut self, id: SubPageId<PARENT_SIZE, SUB_SIZE>) -> Result<&mut MappedPage> {
        PageHandle::get_mut(&id, self)
    }

    /// Marks sub-page `slot` of `parent` as in use and returns its handle,
    /// to rebuild the in-memory state after a restart from the `parent()` and
    /// `slot()` of handles you recorded. The bytes are left as they are.
    ///
    /// `parent` must be an allocated regular page of the pager; from now on
    /// this allocator owns it. Restoring a slot already in use returns its
    /// handle again. Once every sub-page still in use is restored, call
    /// [`finish_restore`](SubPageAllocator::finish_restore): until then the
    /// restored parents lend no free slot to allocations, and a free that
    /// would give one back to the pager fails with
    /// [`IncompleteRestore`](MappedPageError::IncompleteRestore) (sub-pages of
    /// it that you have not restored yet would go with it).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// use mappedpages::{PageAllocator, PageHandle, Pager, SubPageAllocator};
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::<4096>::create(&path)?);
    /// let id = sub.alloc()?;
    /// id.get_mut(&mut sub)?.as_bytes_mut()[..2].copy_from_slice(b"hi");
    /// let (parent, slot) = (id.parent(), id.slot()); // your own records
    /// drop(sub); // the file keeps the page and its bytes
    ///
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::<4096>::open(&path)?);
    /// let id = sub.restore(parent, slot)?;
    /// assert_eq!(&id.get(&sub)?.as_bytes()[..2], b"hi");
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    ///
    /// # Errors
    /// What [`PageId::get`] returns when `parent` is not an allocated regular
    /// page; `OutOfBounds` (naming the parent) when `slot` is not below
    /// [`SUB_PAGES_PER_PAGE`](SubPageAllocator::SUB_PAGES_PER_PAGE).
    pub fn restore(
        &mut self,
        parent: PageId<PARENT_SIZE>,
        slot: usize,
    ) -> Result<SubPageId<PARENT_SIZE, SUB_SIZE>> {
        parent.get(&self.pager)?;
        let slot = match u32::try_from(slot) {
            Ok(s) if slot < Self::SUB_PAGES_PER_PAGE => s,
            _ => return Err(MappedPageError::OutOfBounds),
        };
        // Off the list of parents with room until `finish_restore`.
        self.parents.entry(parent.0).or_insert(Parent {
            used: 0,
            partial_at: None,
            restored: true,
        });
        let id = self.id(parent.0, slot);
        if !self.is_used(parent.0, slot) {
            self.mark_used(parent.0, slot);
        }
        Ok(id)
    }

    fn id(&self, parent: u64, slot: u32) -> SubPageId<PARENT_SIZE, SUB_SIZE> {
        SubPageId {
            parent,
            slot,
            tag: self.tag,
        }
    }

    fn is_used(&self, parent: u64, slot: u32) -> bool {
        self.parents
            .get(&parent)
            .is_some_and(|p| p.used & (1u64 << slot) != 0)
    }

    /// Checks that `id` names a sub-page in use in this allocator.
    fn check_in_use(&self, id: &SubPageId<PARENT_SIZE, SUB_SIZE>) -> Result<()> {
        if id.tag == self.tag && id.slot < 64 && self.is_used(id.parent, id.slot) {
            Ok(())
        } else {
            Err(MappedPageError::OutOfBounds)
        }
    }

    /// Checks that `id` may be freed: `OutOfBounds` for a handle of another
    /// allocator, `DoubleFree` for one of ours whose sub-page is free.
    fn check_freeable(&self, id: &SubPageId<PARENT_SIZE, SUB_SIZE>) -> Result<()> {
        if id.tag != self.tag || id.slot >= 64 {
            return Err(MappedPageError::OutOfBounds);
        }
        if !self.is_used(id.parent, id.slot) {
            return Err(MappedPageError::DoubleFree);
        }
        Ok(())
    }

    /// Registers a newly checked-out parent page with every slot free.
    fn add_parent(&mut self, page: u64) {
        self.parents.insert(
            page,
            Parent {
                used: 0,
                partial_at: Some(self.partial.len()),
                restored: false,
            },
        );
        self.partial.push(page);
    }

    /// Says that every sub-page still in use has been handed back with
    /// [`restore`](SubPageAllocator::restore): the parents restored so far
    /// are known whole from now on, so their free slots are handed out again
    /// and a parent whose last sub-page is freed goes back to the pager.
    ///
    /// Until this is called, a restored parent is neither: sub-pages of it
    /// that were in use before the restart, but not restored yet, would be
    /// handed out over their bytes, or freed with the page. A free that
    /// would give a restored parent back fails with
    /// [`IncompleteRestore`](MappedPageError::IncompleteRestore) instead.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// use mappedpages::{MappedPageError, PageAllocator, Pager, SubPageAllocator};
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::<4096>::create(&path)?);
    /// let (a, b) = (sub.alloc()?, sub.alloc()?);
    /// let records = [(a.parent(), a.slot()), (b.parent(), b.slot())];
    /// drop(sub);
    ///
    /// let mut sub = SubPageAllocator::<4096, 1024>::new(Pager::<4096>::open(&path)?);
    /// let a = sub.restore(records[0].0, records[0].1)?;
    /// // `b` is still in use, but not restored yet: freeing `a` must not
    /// // give their parent back.
    /// assert!(matches!(sub.free(a), Err(MappedPageError::IncompleteRestore { .. })));
    /// let b = sub.restore(records[1].0, records[1].1)?;
    /// sub.finish_restore();
    /// sub.free(a)?;
    /// sub.free(b)?; // the parent goes back to the pager
    /// assert_eq!(sub.parent_page_count(), 0);
    /// # Ok::<(), mappedpages::MappedPageError>(())
    /// ```
    pub fn finish_restore(&mut self) {
        let pages: Vec<u64> = self
            .parents
            .iter()
            .filter(|(_, p)| p.restored)
            .map(|(&page, _)| page)
            .collect();
        for page in pages {
            let Some(p) = self.parents.get_mut(&page) else {
                continue;
            };
            p.restored = false;
            if p.used != Self::FULL && p.partial_at.is_none() {
                p.partial_at = Some(self.partial.len());
                self.partial.push(page);
            }
        }
    }

    /// Fails with `IncompleteRestore` if freeing `bits` of `page` would give
    /// back a parent learned through `restore` before `finish_restore`.
    fn check_release(&self, page: u64, bits: u64) -> Result<()> {
        match self.parents.get(&page) {
            Some(p) if p.restored && p.used & !bits == 0 => {
                Err(MappedPageError::IncompleteRestore { page })
            }
            _ => Ok(()),
        }
    }

    /// Removes `page` from the list of parents with a free slot.
    fn leave_partial(&mut self, page: u64, at: usize) {
        if at >= self.partial.len() {
            return;
        }
        self.partial.swap_remove(at);
        if let Some(&moved) = self.partial.get(at) {
            if let Some(p) = self.parents.get_mut(&moved) {
                p.partial_at = Some(at);
            }
        }
        if let Some(p) = self.parents.get_mut(&page) {
            p.partial_at = None;
        }
    }

    /// Marks a free slot as used and keeps the counters and the partial list
    /// in step.
    fn mark_used(&mut self, page: u64, slot: u32) {
        let Some(p) = self.parents.get_mut(&page) else {
            return;
        };
        p.used |= 1u64 << slot;
        let (full, at) = (p.used == Self::FULL, p.partial_at);
        self.allocated += 1;
        if let (true, Some(at)) = (full, at) {
            self.leave_partial(page, at);
        }
    }

    /// The free slots of checked-out parent `page`.
    fn free_in(&self, page: u64) -> usize {
        self.parents
            .get(&page)
            .map_or(0, |p| (!p.used & Self::FULL).count_ones() as usize)
    }

    /// Whether sub-pages of `page` may be written in place: no live
    /// snapshot reads it (a snapshot's bytes never change while it lives).
    fn writable(&self, page: u64) -> bool {
        self.pager.core().check_not_in_snapshot(page).is_ok()
    }

    /// Takes the lowest free slot of parent `page`, if it has one.
    fn take_slot_in(&mut self, page: u64) -> Option<(u64, u32)> {
        let free = !self.parents.get(&page)?.used & Self::FULL;
        if free == 0 {
            return None;
        }
        let slot = free.trailing_zeros();
        self.mark_used(page, slot);
        Some((page, slot))
    }

    /// Takes `count` zeroed slots, all or nothing: first in the parents
    /// checked out that no live snapshot reads, the latest first (O(1) per
    /// slot while no snapshot lives), then in parents taken from the pager
    /// in one commit. A parent a snapshot reads is passed over, not
    /// written: its slots serve again once the snapshot is gone.
    fn take_zeroed(&mut self, count: usize) -> Result<Vec<(u64, u32)>> {
        let (mut old, mut old_free) = (Vec::new(), 0);
        for &page in self.partial.iter().rev() {
            if old_free >= count {
                break;
            }
            if self.writable(page) {
                old_free += self.free_in(page);
                old.push(page);
            }
        }
        let new_parents = (count - old_free.min(count)).div_ceil(Self::SUB_PAGES_PER_PAGE);
        let fresh = if new_parents > 0 {
            self.pager.alloc_bulk(new_parents)?
        } else {
            Vec::new()
        };
        // Nothing fails from here on (short of a pager that became unusable).
        for page in &fresh {
            self.add_parent(page.0);
        }
        let mut taken = Vec::with_capacity(count);
        for page in old.into_iter().chain(fresh.iter().map(|page| page.0)) {
            while taken.len() < count {
                match self.take_slot_in(page) {
                    Some(slot) => taken.push(slot),
                    None => break,
                }
            }
        }
        if taken.len() < count {
            // Unreachable: the parents above had `count` free slots.
            self.undo(&taken);
            return Err(MappedPageError::Unavailable);
        }
        self.zero_or_undo(&taken)?;
        Ok(taken)
    }

    /// Marks a used slot as free. Returns `true` when its parent became empty
    /// and was dropped from the bookkeeping: the caller gives it back to the
    /// pager.
    fn release_slot(&mut self, page: u64, slot: u32) -> bool {
        let Some(p) = self.parents.get_mut(&page) else {
            return false;
        };
        p.used &= !(1u64 << slot);
        let (empty, at) = (p.used == 0, p.partial_at);
        self.allocated = self.allocated.saturating_sub(1);
        if empty {
            if let Some(at) = at {
                self.leave_partial(page, at);
            }
            self.parents.remove(&page);
            return true;
        }
        let restored = self.parents.get(&page).is_some_and(|p| p.restored);
        if at.is_none() && !restored {
            if let Some(p) = self.parents.get_mut(&page) {
                p.partial_at = Some(self.partial.len());
            }
            self.partial.push(page);
        }
        false
    }

    fn bytes(&self, page: u64, slot: u32) -> Result<&[u8]> {
        let start = slot as usize * SUB_SIZE;
        PageId::<PARENT_SIZE>(page)
            .get(&self.pager)?
            .as_bytes()
            .get(start..start + SUB_SIZE)
            .ok_or(MappedPageError::OutOfBounds)
    }

    fn bytes_mut(&mut self, page: u64, slot: u32) -> Result<&mut [u8]> {
        let start = slot as usize * SUB_SIZE;
        PageId::<PARENT_SIZE>(page)
            .get_mut(&mut self.pager)?
            .as_bytes_mut()
            .get_mut(start..start + SUB_SIZE)
            .ok_or(MappedPageError::OutOfBounds)
    }

    /// Zeroes newly taken slots; on failure gives them all back, so the
    /// allocation is all or nothing.
    fn zero_or_undo(&mut self, taken: &[(u64, u32)]) -> Result<()> {
        for &(page, slot) in taken {
            match self.bytes_mut(page, slot) {
                Ok(bytes) => bytes.fill(0),
                Err(e) => {
                    self.undo(taken);
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// Gives back slots taken by an allocation that fails.
    fn undo(&mut self, taken: &[(u64, u32)]) {
        let mut emptied = Vec::new();
        for &(page, slot) in taken {
            if self.release_slot(page, slot) {
                emptied.push(PageId(page));
            }
        }
        if !emptied.is_empty() {
            // This runs only when the pager has become unusable, so this
            // fails too; the parents then stay allocated in the file, which
            // holds no sub-page state anyway.
            let _ = self.pager.free_bulk(emptied);
        }
    }
}

/// Sub-pages are written in place.
impl<const PARENT_SIZE: usize, const SUB_SIZE: usize>
    PageHandle<SubPageAllocator<PARENT_SIZE, SUB_SIZE>> for SubPageId<PARENT_SIZE, SUB_SIZE>
{
    type Writer<'a> = &'a mut MappedPage;

    /// Borrows the sub-page's `SUB_SIZE` bytes.
    ///
    /// # Errors
    /// `OutOfBounds` (naming the parent page) for a handle of another
    /// allocator or a sub-page that is free; `Unavailable` after an I/O
    /// failure of the pager.
    fn get<'a>(
        &self,
        allocator: &'a SubPageAllocator<PARENT_SIZE, SUB_SIZE>,
    ) -> Result<&'a MappedPage> {
        allocator.check_in_use(self)?;
        allocator
            .bytes(self.parent, self.slot)
            .map(MappedPage::from_bytes)
    }

    /// Borrows the sub-page's `SUB_SIZE` bytes for writing. They are durable
    /// like the bytes of any regular page: after [`Pager::sync`] or the
    /// pager's next commit.
    ///
    /// # Errors
    /// As `get`, and those of [`PageId::get_mut`] on the parent page:
    /// `InUseBySnapshot` (naming the parent page) while a live
    /// [`Snapshot`](crate::Snapshot) reads it, since a snapshot's bytes do
    /// not change while it lives (drop the snapshot first, or move the data
    /// to a newly allocated sub-page, which never lies in such a page);
    /// `Io` if a sync that must come before the write fails. Nothing
    /// changes on error.
    fn get_mut<'a>(
        &self,
        allocator: &'a mut SubPageAllocator<PARENT_SIZE, SUB_SIZE>,
    ) -> Result<&'a mut MappedPage> {
        allocator.check_in_use(self)?;
        allocator
            .bytes_mut(self.parent, self.slot)
            .map(MappedPage::from_bytes_mut)
    }
}

impl<const PARENT_SIZE: usize, const SUB_SIZE: usize>
    PageAllocator<SubPageId<PARENT_SIZE, SUB_SIZE>> for SubPageAllocator<PARENT_SIZE, SUB_SIZE>
{
    /// Allocates a zeroed sub-page, taking a new parent page from the pager
    /// (one commit) only when every parent checked out is full or read by
    /// a live [`Snapshot`](crate::Snapshot) (whose pages are not written).
    ///
    /// # Errors
    /// Those of [`Pager::alloc`]; `Io` or `Unavailable` as for
    /// [`PageId::get_mut`] if zeroing the sub-page fails. Never
    /// `InUseBySnapshot`. Nothing changes on error.
    fn alloc(&mut self) -> Result<SubPageId<PARENT_SIZE, SUB_SIZE>> {
        let taken = self.take_zeroed(1)?;
        let &(page, slot) = taken.first().ok_or(MappedPageError::Unavailable)?;
        Ok(self.id(page, slot))
    }

    /// Frees a sub-page; when it was the last one in use in its parent, the
    /// parent goes back to the pager (one commit).
    ///
    /// # Errors
    /// `DoubleFree` (naming the parent page) for a sub-page already free,
    /// `OutOfBounds` for a handle of another allocator, `IncompleteRestore`
    /// for the last sub-page of a parent restored before
    /// [`finish_restore`](SubPageAllocator::finish_restore), or the errors of
    /// [`Pager::free`]. Nothing changes on error.
    fn free(&mut self, handle: SubPageId<PARENT_SIZE, SUB_SIZE>) -> Result<()> {
        self.check_freeable(&handle)?;
        self.check_release(handle.parent, 1u64 << handle.slot)?;
        let last = self
            .parents
            .get(&handle.parent)
            .is_some_and(|p| p.used == 1u64 << handle.slot);
        if last {
            self.pager.free(PageId(handle.parent))?;
        }
        self.release_slot(handle.parent, handle.slot);
        Ok(())
    }
}

impl<const PARENT_SIZE: usize, const SUB_SIZE: usize>
    BulkPageAllocator<SubPageId<PARENT_SIZE, SUB_SIZE>>
    for SubPageAllocator<PARENT_SIZE, SUB_SIZE>
{
    /// Allocates `count` zeroed sub-pages, filling the parents checked out
    /// first (but those a live [`Snapshot`](crate::Snapshot) reads) and
    /// taking the parents still needed from the pager in one commit. All or
    /// nothing.
    ///
    /// # Errors
    /// `InvalidCount` for an absurd count (zero returns an empty `Vec`); those of
    /// [`Pager::alloc_bulk`]; `Io` or `Unavailable` as for
    /// [`PageId::get_mut`] if zeroing the sub-pages fails. Never
    /// `InUseBySnapshot`. Nothing changes on error.
    fn alloc_bulk(&mut self, count: usize) -> Result<Vec<SubPageId<PARENT_SIZE, SUB_SIZE>>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let taken = self.take_zeroed(count).map_err(|e| match e {
            // The pager's count is of parent pages: name the caller's.
            MappedPageError::InvalidCount { .. } => MappedPageError::InvalidCount {
                count: count as u64,
            },
            other => other,
        })?;
        Ok(taken
            .into_iter()
            .map(|(page, slot)| self.id(page, slot))
            .collect())
    }

    /// Frees every sub-page in `handles` and gives the parents left empty
    /// back to the pager in one commit. Every handle is checked first.
    ///
    /// # Errors
    /// An empty list does nothing. `DoubleFree` for a sub-page already
    /// free or named twice; `OutOfBounds` for a handle of another allocator;
    /// `IncompleteRestore` as for `free`; those of [`Pager::free_bulk`].
    /// Nothing changes on error.
    fn free_bulk(&mut self, handles: Vec<SubPageId<PARENT_SIZE, SUB_SIZE>>) -> Result<()> {
        if handles.is_empty() {
            return Ok(());
        }
        let mut clearing: HashMap<u64, u64> = HashMap::new();
        for id in &handles {
            self.check_freeable(id)?;
            let bits = clearing.entry(id.parent).or_insert(0);
            let bit = 1u64 << id.slot;
            if *bits & bit != 0 {
                return Err(MappedPageError::DoubleFree);
            }
            *bits |= bit;
        }
        for (&page, &bits) in &clearing {
            self.check_release(page, bits)?;
        }
        let emptied: Vec<PageId<PARENT_SIZE>> = clearing
            .iter()
            .filter(|(page, bits)| self.parents.get(page).is_some_and(|p| p.used == **bits))
            .map(|(&page, _)| PageId(page))
            .collect();
        if !emptied.is_empty() {
            self.pager.free_bulk(emptied)?;
        }
        for id in handles {
            self.release_slot(id.parent, id.slot);
        }
        Ok(())
    }
}

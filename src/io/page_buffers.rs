//! The pages a transaction holds in memory until its commit writes them
//! (see the module docs of `engine/transaction.rs`).
//!
//! A transaction may touch one page many times and thousands of pages
//! once: a B+tree loading random keys rewrites the same leaves, and when
//! the buffers are full it writes them out and holds the next pages in the
//! same memory. So a page is found by hash, not by a search, and a buffer
//! whose page was written out or freed is kept for the next page held
//! instead of going back to the allocator: allocating page-sized blocks
//! between the small allocations of the caller's own code is where a
//! general-purpose allocator is slowest.

use crate::page_hash::PageMap;

/// Pages a transaction wrote, held in memory until they are written with
/// [`Storage::write_pages`](super::Storage::write_pages): each page's buffer
/// starts as the page's bytes in the file, so holding a page changes nothing
/// anyone reads. At most its limit is held (one page at least); the engine
/// writes them out early when they are full, and
/// [`DisjointPages`](super::DisjointPages) lends from the map instead.
///
/// Each buffer is a heap allocation of its own, which stays where it is
/// while it is held: adding a page may move the boxes that own the others,
/// never their bytes, so a pointer into a held buffer stays valid until that
/// page is removed or the buffers are cleared.
#[derive(Debug, Default)]
pub(crate) struct PageBuffers {
    held: PageMap<Box<[u8]>>,
    /// Buffers of pages no longer held, for the next pages held.
    spare: Vec<Box<[u8]>>,
    bytes: usize,
    /// The most bytes held at once (one page is held whatever it says).
    limit: usize,
}

impl PageBuffers {
    /// Buffers that hold up to `limit` bytes at once.
    pub fn new(limit: usize) -> PageBuffers {
        PageBuffers {
            limit,
            ..PageBuffers::default()
        }
    }

    /// The longest write [`Storage::write_pages`](super::Storage::write_pages)
    /// makes: 16 KiB, four 4 KiB pages. Not more, because Linux (ext4 since
    /// 6.16) caches a file in folios as large as the writes that filled
    /// them, and a later one-page write into a large folio, or its
    /// writeback, walks every block of the folio: with 1 MiB writes,
    /// batches of 1 000 random B+tree inserts took 24 ms against 22 ms, and
    /// `Deferred` one-insert commits 64 to 74 µs against 58 µs, on a tree
    /// of a million pairs. Longer writes gained nothing measurable where a
    /// transaction writes many adjacent pages (256 pages new to the file:
    /// 0.76× the raw one-page writes in 16 KiB writes, 0.75× in one).
    pub const MAX_WRITE: usize = 16 << 10;

    /// Whether one more page of `page_size` bytes fits.
    pub fn has_room(&self, page_size: usize) -> bool {
        self.bytes == 0 || self.bytes.saturating_add(page_size) <= self.limit
    }

    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// The bytes held for `page`.
    pub fn get(&self, page: u64) -> Option<&[u8]> {
        self.held.get(&page).map(|bytes| &bytes[..])
    }

    /// The bytes held for `page`, writable.
    pub fn get_mut(&mut self, page: u64) -> Option<&mut [u8]> {
        self.held.get_mut(&page).map(|bytes| &mut bytes[..])
    }

    /// Holds `bytes` (a page's bytes in the file) for `page`, which has no
    /// buffer, if there is room; returns the buffer's bytes.
    pub fn insert(&mut self, page: u64, bytes: &[u8]) -> Option<&mut [u8]> {
        self.make(page, bytes).map(|held| &mut held[..])
    }

    /// Forgets `page`'s buffer, if it has one.
    pub fn remove(&mut self, page: u64) {
        if let Some(bytes) = self.held.remove(&page) {
            self.bytes -= bytes.len();
            self.spare.push(bytes);
        }
    }

    /// Forgets every buffer, keeping their memory for the pages held next.
    pub fn clear(&mut self) {
        self.spare.extend(self.held.drain().map(|(_, bytes)| bytes));
        self.bytes = 0;
    }

    /// The most bytes of spare buffers [`PageBuffers::reuse`] keeps for the
    /// next transaction: enough for the pages of a small one (a B+tree
    /// insert rewrites a leaf and its branches), while what a large one
    /// held goes back to the allocator.
    pub const KEPT_BETWEEN_TRANSACTIONS: usize = 256 << 10;

    /// These buffers, emptied, for the next transaction, which may hold up
    /// to `limit` bytes: a transaction of a few pages then takes no page
    /// buffer from the allocator, and gives none back.
    pub fn reuse(mut self, limit: usize) -> PageBuffers {
        self.clear();
        let mut kept = 0;
        self.spare.retain(|spare| {
            kept += spare.len();
            kept <= Self::KEPT_BETWEEN_TRANSACTIONS
        });
        // Nor the table of a large one: walking an emptied table still
        // visits every slot it grew to (a commit walks the held pages).
        let slots = self.spare.len();
        self.held.shrink_to(slots);
        self.spare.shrink_to(slots);
        self.limit = limit;
        self
    }

    /// The pages held, ascending, with their bytes.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> {
        let mut pages: Vec<(u64, &[u8])> = self
            .held
            .iter()
            .map(|(&page, bytes)| (page, &bytes[..]))
            .collect();
        pages.sort_unstable_by_key(|&(page, _)| page);
        pages.into_iter()
    }

    /// Makes `page`'s buffer, a copy of `bytes`, if there is room; a pointer
    /// to it, made without a reference to its bytes.
    pub(super) fn hold(&mut self, page: u64, bytes: &[u8]) -> Option<*mut u8> {
        self.make(page, bytes).map(|held| held.as_mut_ptr())
    }

    fn make(&mut self, page: u64, bytes: &[u8]) -> Option<&mut Box<[u8]>> {
        if !self.has_room(bytes.len()) || self.held.contains_key(&page) {
            return None;
        }
        let buffer = match self.spare.pop() {
            Some(mut spare) if spare.len() == bytes.len() => {
                spare.copy_from_slice(bytes);
                spare
            }
            _ => Box::from(bytes),
        };
        self.bytes += bytes.len();
        Some(self.held.entry(page).or_insert(buffer))
    }

    /// A pointer to `page`'s buffer, if it has one of `len` bytes, made
    /// without a reference to its bytes.
    pub(super) fn ptr(&self, page: u64, len: usize) -> Option<*const u8> {
        let held = self.held.get(&page).filter(|bytes| bytes.len() == len)?;
        Some(held.as_ptr())
    }

    /// As [`PageBuffers::ptr`], through a unique borrow of the buffer.
    pub(super) fn ptr_mut(&mut self, page: u64, len: usize) -> Option<*mut u8> {
        let held = self
            .held
            .get_mut(&page)
            .filter(|bytes| bytes.len() == len)?;
        Some(held.as_mut_ptr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_pages_read_back_in_order_and_buffers_are_reused() {
        let mut buffers = PageBuffers::new(1 << 20);
        for page in [9u64, 3, 7, 1] {
            let bytes = [page as u8; 64];
            assert!(buffers.insert(page, &bytes).is_some());
        }
        assert!(buffers.insert(3, &[0; 64]).is_none(), "held already");
        buffers.get_mut(7).unwrap()[0] = 0xEE;
        let pages: Vec<(u64, u8, u8)> = buffers.iter().map(|(p, b)| (p, b[0], b[63])).collect();
        assert_eq!(pages, [(1, 1, 1), (3, 3, 3), (7, 0xEE, 7), (9, 9, 9)]);

        let first = buffers.ptr(1, 64).unwrap();
        buffers.remove(1);
        assert!(buffers.get(1).is_none());
        // The freed buffer holds the next page, with that page's bytes.
        let again = buffers.hold(5, &[5; 64]).unwrap();
        assert_eq!(again.cast_const(), first);
        assert_eq!(buffers.get(5), Some(&[5u8; 64][..]));

        buffers.clear();
        assert!(buffers.is_empty() && buffers.iter().next().is_none());
        assert_eq!(buffers.spare.len(), 4);
        // A spare of another size is not used for a page of this one.
        assert_eq!(buffers.insert(2, &[2; 128]).map(|b| b.len()), Some(128));
    }

    /// The buffers of one transaction hold the next one's pages, up to the
    /// bytes kept between transactions; the rest are given back, and so is
    /// the table a large transaction grew (found by a B+tree's one-pair
    /// commits after a load of a million pairs: each commit walked the
    /// emptied table of the load, and took a third longer).
    #[test]
    fn a_reused_set_keeps_a_bounded_number_of_buffers() {
        let page = vec![7u8; 4096];
        let mut buffers = PageBuffers::new(1 << 30);
        let many = 16 * PageBuffers::KEPT_BETWEEN_TRANSACTIONS / page.len();
        for i in 0..many as u64 {
            buffers.insert(i, &page).unwrap();
        }
        let grown = buffers.held.capacity();
        let mut next = buffers.reuse(8192);
        assert!(next.is_empty() && next.get(0).is_none());
        assert!(
            next.held.capacity() * 8 < grown,
            "the emptied table keeps {} slots of {grown}",
            next.held.capacity()
        );
        assert_eq!(
            next.spare.len(),
            PageBuffers::KEPT_BETWEEN_TRANSACTIONS / page.len()
        );
        let kept: Vec<*const u8> = next.spare.iter().map(|b| b.as_ptr()).collect();
        // The next pages held take kept buffers, with their own bytes, and
        // the new limit holds: two pages, not more.
        let zeros = vec![0u8; 4096];
        let held = next.hold(5, &zeros).unwrap();
        assert!(kept.contains(&held.cast_const()));
        assert_eq!(next.get(5), Some(&zeros[..]));
        assert!(next.insert(6, &zeros).is_some());
        assert!(!next.has_room(4096));
    }

    #[test]
    fn no_more_than_the_limit_is_held() {
        let mut buffers = PageBuffers::new(40_000);
        let page = vec![1u8; 4096];
        let fit = 9;
        for i in 0..fit as u64 {
            assert!(buffers.insert(i, &page).is_some());
        }
        assert!(!buffers.has_room(4096));
        assert!(buffers.insert(fit as u64, &page).is_none());
        buffers.remove(0);
        assert!(buffers.insert(fit as u64, &page).is_some());

        // One page is held even past a smaller limit: a transaction always
        // has room for the page it writes.
        let mut tiny = PageBuffers::new(100);
        assert!(tiny.has_room(4096));
        assert!(tiny.insert(1, &page).is_some());
        assert!(!tiny.has_room(4096));
    }
}

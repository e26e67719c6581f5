//! A file of 1 KiB pages grown past 2^20 pages (the seed's design stopped near
//! 4096), half of it freed at random, reallocated and reopened. Sparse
//! (`preallocate(false)`) so it stays cheap.

use mappedpages::{PageId, Pager};

const PS: usize = 1024;
const PAGES: usize = (1 << 20) + 4096;

/// xorshift64: deterministic choices without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn stamp(page: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&page.to_le_bytes());
    out[8..].copy_from_slice(&(!page).to_le_bytes());
    out
}

#[test]
fn a_file_past_2_pow_20_pages_frees_reallocates_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.pages");
    let mut pager = Pager::<PS>::options()
        .preallocate(false)
        .create(&path)
        .unwrap();
    let ids = pager.alloc_bulk(PAGES).unwrap();
    assert_eq!(ids.len(), PAGES);
    assert!(pager.page_count() > 1 << 20);
    assert_eq!(pager.allocated_page_count(), PAGES as u64);
    let last = *ids.last().unwrap();
    assert!(last.0 >= 1 << 20);

    // Free a random half in one commit.
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let (mut freed, mut kept) = (Vec::new(), Vec::new());
    for id in ids {
        if rng.next().is_multiple_of(2) {
            freed.push(id);
        } else {
            kept.push(id);
        }
    }
    let freed_count = freed.len();
    pager.free_bulk(freed.clone()).unwrap();
    assert_eq!(pager.allocated_page_count(), kept.len() as u64);
    for id in freed.iter().step_by(997) {
        assert!(id.get(&pager).is_err(), "{id:?} readable after free");
    }

    // Reallocate most of the freed pages: they come from the holes, so the
    // file does not grow.
    let pages_before = pager.page_count();
    let again = pager.alloc_bulk(freed_count - 1000).unwrap();
    assert_eq!(pager.page_count(), pages_before, "grew instead of reusing");
    let mut live: Vec<PageId<PS>> = kept.iter().chain(&again).copied().collect();
    live.sort_unstable();
    let mut unique = live.clone();
    unique.dedup();
    assert_eq!(unique.len(), live.len(), "a page was handed out twice");
    // Single allocations still fill holes below the end.
    for _ in 0..50 {
        let id = pager.alloc().unwrap();
        assert!(id.0 < pages_before);
        live.push(id);
    }
    live.sort_unstable();
    // A plain alloc on a file this size makes one sync (P1 budget).
    let syncs = pager.sync_count();
    live.push(pager.alloc().unwrap());
    assert_eq!(pager.sync_count() - syncs, 1);
    live.sort_unstable();

    // Stamp a sample of pages, the highest included.
    let mut sample: Vec<PageId<PS>> = live.iter().step_by(509).copied().collect();
    sample.push(*live.last().unwrap());
    for id in &sample {
        id.get_mut(&mut pager).unwrap().as_bytes_mut()[PS - 16..].copy_from_slice(&stamp(id.0));
    }
    pager.sync().unwrap();
    let generation = pager.generation();
    let count = pager.allocated_page_count();
    let page_count = pager.page_count();
    drop(pager);

    let mut pager = Pager::<PS>::open(&path).unwrap();
    assert_eq!(pager.recovery().generation, generation);
    assert!(!pager.recovery().fell_back);
    assert_eq!(pager.allocated_page_count(), count);
    assert_eq!(pager.page_count(), page_count);
    let listed: Vec<PageId<PS>> = pager.iter_allocated_pages().collect();
    assert_eq!(listed, live);
    for id in &sample {
        assert_eq!(id.get(&pager).unwrap().as_bytes()[PS - 16..], stamp(id.0));
    }
    // Still works after reopening: free the stamped sample, allocate again.
    pager.free_bulk(sample.clone()).unwrap();
    assert_eq!(pager.allocated_page_count(), count - sample.len() as u64);
    let back = pager.alloc_bulk(sample.len()).unwrap();
    assert_eq!(pager.page_count(), page_count);
    assert_eq!(pager.allocated_page_count(), count);
    drop(pager);
    let pager = Pager::<PS>::open(&path).unwrap();
    assert_eq!(pager.allocated_page_count(), count);
    assert!(back.iter().all(|id| id.get(&pager).is_ok()));
}

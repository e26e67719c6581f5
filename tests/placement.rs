//! Where a transaction's pages go (see the placement notes of the crate's
//! engine): side by side when free pages in a row exist, in the holes when
//! none do, and never by growing the file.

use mappedpages::{PageId, Pager};

/// Allocates `count` pages one `alloc` at a time in one transaction, writes
/// them and commits; returns them.
fn one_at_a_time(pager: &mut Pager<4096>, count: usize) -> Vec<u64> {
    let mut txn = pager.transaction().unwrap();
    let mut pages = Vec::new();
    for i in 0..count {
        let id = txn.alloc().unwrap();
        txn.get_mut(id).unwrap().as_bytes_mut()[0] = i as u8 + 1;
        pages.push(id.0);
    }
    txn.commit().unwrap();
    pages
}

fn contiguous(pages: &[u64]) -> bool {
    let mut sorted = pages.to_vec();
    sorted.sort_unstable();
    sorted.windows(2).all(|w| w[1] == w[0] + 1)
}

/// Frees every other page of `ids`: holes of one page, no two in a row.
fn punch_holes(pager: &mut Pager<4096>, ids: &[PageId<4096>]) {
    let holes: Vec<_> = ids.iter().step_by(2).copied().collect();
    pager.free_bulk(holes).unwrap();
}

#[test]
fn a_transaction_like_the_one_before_gets_pages_in_a_row_past_the_holes() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<4096>::options()
        .initial_pages(512)
        .create(dir.path().join("runs.pages"))
        .unwrap();
    let ids = pager.alloc_bulk(200).unwrap();
    punch_holes(&mut pager, &ids);
    let lowest_hole = ids[0].0;
    // The first transaction of its shape is placed as lowest-free
    // allocation places it; those after it expect five pages.
    one_at_a_time(&mut pager, 5);
    for _ in 0..4 {
        let pages = one_at_a_time(&mut pager, 5);
        assert!(contiguous(&pages), "pages not in a row: {pages:?}");
        assert!(
            pages.iter().all(|&p| p > lowest_hole),
            "{pages:?} went into the one-page holes"
        );
    }
    // A seed call of one page at a time still fills the holes first.
    let low = pager.alloc().unwrap();
    assert!(low.0 < ids[199].0, "alloc gave {low:?}, past the holes");
}

#[test]
fn with_no_pages_in_a_row_the_holes_are_filled_and_the_file_does_not_grow() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<4096>::options()
        .initial_pages(256)
        .create(dir.path().join("holes.pages"))
        .unwrap();
    let all = pager.free_page_count() as usize;
    let ids = pager.alloc_bulk(all).unwrap();
    punch_holes(&mut pager, &ids);
    let length = pager.page_count();
    // Protected pages of the pager's own bookkeeping may take a few holes;
    // what is left must be filled before the file grows.
    let mut taken = 0;
    while pager.free_page_count() >= 10 {
        let pages = one_at_a_time(&mut pager, 4);
        assert!(pages.iter().all(|&p| p < length));
        taken += pages.len();
    }
    assert_eq!(
        pager.page_count(),
        length,
        "the file grew with {taken} holes taken"
    );
    for id in ids.iter().skip(1).step_by(2) {
        assert!(id.get(&pager).is_ok(), "page {id:?} lost");
    }
}

#[test]
fn pages_placed_in_never_written_space_read_as_zeros_and_keep_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("zeros.pages");
    let mut pager = Pager::<4096>::options()
        .initial_pages(64)
        .create(&path)
        .unwrap();
    let mut written = Vec::new();
    for round in 0..40u8 {
        let mut txn = pager.transaction().unwrap();
        for _ in 0..3 {
            let id = txn.alloc().unwrap();
            let page = txn.get_mut(id).unwrap();
            assert!(page.as_bytes().iter().all(|&b| b == 0), "{id:?} not zero");
            page.as_bytes_mut().fill(round + 1);
            written.push((id, round + 1));
        }
        txn.commit().unwrap();
    }
    drop(pager);
    let pager = Pager::<4096>::open(&path).unwrap();
    for (id, value) in written {
        let bytes = id.get(&pager).unwrap().as_bytes();
        assert!(bytes.iter().all(|&b| b == value), "{id:?} lost its bytes");
    }
}

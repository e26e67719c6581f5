//! How much the file grows (contract C1, S5): a file with no free page
//! left grows by one step, an eighth of its length, at least
//! `MIN_GROWTH_STEP` and at most `max_growth_step` (which wins over the
//! minimum); a call that needs more grows once, by what it needs and room
//! for one checkpoint, so that the commit after it does not grow again.
//!
//! With the `fault-injection` feature the tests also count the growths
//! through the I/O hook; without it they check the sizes only.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use mappedpages::{Durability, PageId, Pager, PagerOptions, MIN_GROWTH_STEP};

const PS: usize = 1024;
type P = Pager<PS>;
/// The smallest step, in pages.
const MIN_PAGES: u64 = MIN_GROWTH_STEP / PS as u64;
/// Free pages a large growth leaves for one checkpoint, at most, in a file
/// of `pages` pages with no protected page: a bitmap leaf per `8 * PS`
/// pages, a root above them (the files below need no more levels), and a
/// directory leaf.
fn checkpoint_room(pages: u64) -> u64 {
    pages.div_ceil(8 * PS as u64) + 2
}

/// Options for a sparse file (cheap at these sizes) of `pages` pages, and a
/// count of its growths when the I/O hook is there to count them.
fn options(durability: Durability, pages: u64) -> (PagerOptions<PS>, Option<Arc<AtomicU32>>) {
    let options = P::options()
        .durability(durability)
        .preallocate(false)
        .initial_pages(pages);
    count_growths(options)
}

#[cfg(feature = "fault-injection")]
fn count_growths(options: PagerOptions<PS>) -> (PagerOptions<PS>, Option<Arc<AtomicU32>>) {
    use mappedpages::fault::{IoEvent, IoHook};
    let count = Arc::new(AtomicU32::new(0));
    let seen = Arc::clone(&count);
    let hook = IoHook::new(move |event| {
        if matches!(event, IoEvent::Grow { .. }) {
            seen.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    (options.io_hook(hook), Some(count))
}

#[cfg(not(feature = "fault-injection"))]
fn count_growths(options: PagerOptions<PS>) -> (PagerOptions<PS>, Option<Arc<AtomicU32>>) {
    (options, None)
}

/// Growths counted since the last call (when they can be counted).
fn growths(count: &Option<Arc<AtomicU32>>) -> Option<u32> {
    count.as_ref().map(|c| c.swap(0, Ordering::Relaxed))
}

/// Allocates every free page, without growing the file.
fn fill(pager: &mut P) {
    let pages = pager.page_count();
    let free = pager.free_page_count() as usize;
    pager.alloc_bulk(free).unwrap();
    assert_eq!(pager.free_page_count(), 0);
    assert_eq!(pager.page_count(), pages, "filling grew the file");
}

/// How much one `alloc` grows a full file of `pages` pages.
fn growth_of_a_full_file(pages: u64, max_step: Option<u64>) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let (mut options, count) = options(Durability::Deferred, pages);
    if let Some(bytes) = max_step {
        options = options.max_growth_step(bytes);
    }
    let mut pager = options.create(dir.path().join("f")).unwrap();
    fill(&mut pager);
    growths(&count);
    pager.alloc().unwrap();
    if let Some(n) = growths(&count) {
        assert_eq!(n, 1, "{pages} pages: growths of one alloc");
    }
    pager.page_count() - pages
}

#[test]
fn a_small_full_file_grows_by_the_minimum_step() {
    for pages in [4, 64, 1000, 8 * MIN_PAGES - 8] {
        assert_eq!(
            growth_of_a_full_file(pages, None),
            MIN_PAGES,
            "{pages} pages"
        );
    }
}

#[test]
fn a_large_full_file_grows_by_an_eighth_of_it() {
    for pages in [8 * MIN_PAGES, 100_003, 1 << 18] {
        let growth = growth_of_a_full_file(pages, None);
        assert!(growth <= pages / 8, "{pages} pages grew by {growth}");
        assert!(growth >= MIN_PAGES, "{pages} pages grew by {growth}");
        assert_eq!(growth, pages / 8, "{pages} pages");
    }
}

#[test]
fn max_growth_step_caps_the_step() {
    // Below an eighth of the file.
    assert_eq!(growth_of_a_full_file(1 << 18, Some(8 << 20)), 8 << 10);
    // Below the minimum too: the cap wins.
    assert_eq!(growth_of_a_full_file(1 << 18, Some(1 << 20)), 1 << 10);
    assert_eq!(growth_of_a_full_file(64, Some(64 << 10)), 64);
    // Above an eighth: no effect.
    assert_eq!(growth_of_a_full_file(1 << 18, Some(1 << 30)), 1 << 15);
}

/// A bulk allocation larger than a step grows the file once, by what it
/// needs and room for one checkpoint: never in many small steps.
#[test]
fn a_bulk_allocation_grows_once_by_what_it_needs() {
    for durability in [Durability::Immediate, Durability::Deferred] {
        // A new small file, and a full large one whose step is 2^15 pages.
        for (pages, full, count) in [(64, false, 100_000u64), (1 << 18, true, 100_000)] {
            let what = format!("{durability:?}, {pages} pages, alloc_bulk({count})");
            let dir = tempfile::tempdir().unwrap();
            let (options, growth_count) = options(durability, pages);
            let mut pager = options.create(dir.path().join("f")).unwrap();
            if full {
                fill(&mut pager);
            }
            let (before, free) = (pager.page_count(), pager.free_page_count());
            growths(&growth_count);
            let ids = pager.alloc_bulk(count as usize).unwrap();
            assert_eq!(ids.len() as u64, count);
            if let Some(n) = growths(&growth_count) {
                assert_eq!(n, 1, "{what}: growths");
            }
            let growth = pager.page_count() - before;
            assert!(growth >= count - free, "{what}: grew by {growth}");
            assert!(
                pager.free_page_count() <= checkpoint_room(pager.page_count()),
                "{what}: {} pages left free",
                pager.free_page_count()
            );

            // The commit after it, a free of every other page (its log
            // overflows: a checkpoint), takes that room: no growth.
            let every_other: Vec<PageId<PS>> = ids.iter().copied().step_by(2).collect();
            let pages_now = pager.page_count();
            pager.free_bulk(every_other).unwrap();
            assert_eq!(
                pager.page_count(),
                pages_now,
                "{what}: the free grew the file"
            );
            if let Some(n) = growths(&growth_count) {
                assert_eq!(n, 0, "{what}: growths of the free");
            }
        }
    }
}

/// A bulk allocation smaller than a step grows by the step, once.
#[test]
fn a_small_bulk_allocation_grows_by_one_step() {
    let dir = tempfile::tempdir().unwrap();
    let (options, count) = options(Durability::Immediate, 1 << 18);
    let mut pager = options.create(dir.path().join("f")).unwrap();
    fill(&mut pager);
    growths(&count);
    pager.alloc_bulk(1000).unwrap();
    assert_eq!(pager.page_count(), (1 << 18) + (1 << 15));
    if let Some(n) = growths(&count) {
        assert_eq!(n, 1);
    }
}

/// Protected pages too: the growth leaves room for the checkpoint of the
/// directory the call lengthens.
#[test]
fn a_protected_bulk_allocation_grows_once() {
    let dir = tempfile::tempdir().unwrap();
    let (options, count) = options(Durability::Immediate, 64);
    let mut pager = options.create(dir.path().join("f")).unwrap();
    growths(&count);
    let ids = pager.alloc_protected_bulk(20_000).unwrap();
    assert_eq!(ids.len(), 20_000);
    if let Some(n) = growths(&count) {
        assert_eq!(n, 1, "growths");
    }
    // Two pages each, a step's worth at most besides.
    assert!(pager.page_count() < 64 + 40_000 + MIN_PAGES);
}

/// The compared benchmark's churn (W8), scaled down: n pages written, half
/// of them freed at random, a quarter written again. The file must hold n
/// pages at its peak and nothing moves pages, so the least it can end at
/// is n / (3n / 4) = 4/3 of the live bytes: the growth must add no more
/// than a checkpoint's room on the way (doubling ended at 8/3, steps of an
/// eighth without that room at 3/2).
#[test]
fn churn_leaves_the_file_at_its_peak_size() {
    let n: u64 = 1 << 15;
    for durability in [Durability::Immediate, Durability::Deferred] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut pager = P::options()
            .durability(durability)
            .preallocate(false)
            .create(&path)
            .unwrap();
        let ids = pager.alloc_bulk(n as usize).unwrap();
        // A fixed shuffle (xorshift), as the benchmark's.
        let mut order: Vec<usize> = (0..n as usize).collect();
        let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in (1..order.len()).rev() {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            order.swap(i, (s % (i as u64 + 1)) as usize);
        }
        let freed = order[..(n / 2) as usize].iter().map(|&i| ids[i]).collect();
        pager.free_bulk(freed).unwrap();
        pager.alloc_bulk((n / 4) as usize).unwrap();
        pager.sync().unwrap();
        let live = n - n / 2 + n / 4;
        let ratio = std::fs::metadata(&path).unwrap().len() as f64 / (live * PS as u64) as f64;
        assert!(
            ratio < 4.0 / 3.0 + 0.01,
            "{durability:?}: {ratio:.3} file bytes per live byte"
        );
    }
}

/// A `Deferred` engine that copies a few pages per commit and frees the
/// ones they replace, in a file with only a few free pages left: the pages
/// it frees wait for a sync before they are reused. Syncing whenever the
/// free pages ran out made them reusable a handful at a time, so the file
/// synced every few commits for ever; now the file grows once instead, and
/// from then on a sync makes a step's worth reusable.
#[test]
fn deferred_churn_in_a_nearly_full_file_grows_once_rather_than_syncing_often() {
    let dir = tempfile::tempdir().unwrap();
    let (options, _) = options(Durability::Deferred, 4096);
    let mut pager = options.create(dir.path().join("f")).unwrap();
    let free = pager.free_page_count() as usize;
    drop(pager.alloc_bulk(free - 20).unwrap());
    assert_eq!(pager.free_page_count(), 20);
    let (pages_before, syncs_before) = (pager.page_count(), pager.sync_count());
    let per_commit = 4;
    let commits = 2000;
    let mut older: Vec<PageId<PS>> = Vec::new();
    for round in 0..commits {
        let mut txn = pager.transaction().unwrap();
        let fresh = txn.alloc_bulk(per_commit).unwrap();
        for &id in &fresh {
            txn.get_mut(id).unwrap().as_bytes_mut()[0] = round as u8;
        }
        txn.free_bulk(std::mem::replace(&mut older, fresh)).unwrap();
        txn.commit().unwrap();
    }
    let syncs = pager.sync_count() - syncs_before;
    let grown = pager.page_count() - pages_before;
    // 4 pages per commit, a step of 4 096 pages: about one sync per 1 024
    // commits, and the growth's own. Syncing every time the free pages ran
    // out made 734 syncs here, one every 3 commits.
    assert!(
        syncs <= 2 * (commits as u64 * per_commit as u64 / MIN_PAGES) + 2,
        "{syncs} syncs in {commits} commits"
    );
    assert!(
        grown <= MIN_PAGES + checkpoint_room(pages_before + MIN_PAGES),
        "grew by {grown} pages"
    );
    assert!(older.iter().all(|&id| pager
        .get(id)
        .is_ok_and(|p| p.as_bytes()[0] == (commits - 1) as u8)));
}

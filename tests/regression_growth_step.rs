//! Regression: a growth step smaller than 16 pages (`max_growth_step` below
//! 16 KiB at 1 KiB pages, which the option accepts) panicked on the first
//! growth (`u64::clamp` with min > max), contract E3.

use mappedpages::Pager;

#[test]
fn small_growth_step_grows_without_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<1024>::options()
        .initial_pages(4)
        .max_growth_step(4096)
        .create(dir.path().join("f"))
        .unwrap();
    for _ in 0..40 {
        pager.alloc().unwrap();
    }
    assert_eq!(pager.allocated_page_count(), 40);
    assert!(pager.page_count() >= 43);
}

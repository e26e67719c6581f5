//! The space a snapshot holds (R2, and the C section's space): pages freed
//! while it lives stay out of reuse and read as it saw them; after its drop
//! they are reused and the file stops growing.

use std::path::Path;
use std::time::Instant;

use mappedpages::{Durability, PageId, Pager};

use super::report::{row, yes_no, Row};
use super::support::workloads::{replace_pages, R6_K};
use super::support::{BoxResult, PAGE};
use super::MIB;

/// Pages of the file neither allocated nor free: the pager's metadata and
/// the pages held for snapshots.
fn unavailable(pager: &Pager<PAGE>) -> u64 {
    pager.page_count() - pager.allocated_page_count() - pager.free_page_count()
}

/// The space one snapshot holds: taken after a warm-up, held across 1 000
/// `Immediate` commits that each free the `R6_K` pages the one before
/// wrote and write `R6_K` fresh ones; then dropped, and 1 000 more commits.
pub fn run_space(dir: &Path) -> BoxResult<Vec<Row>> {
    const COMMITS: usize = 1000;
    let path = dir.join("space.pages");
    let mut pager = Pager::<PAGE>::options()
        .durability(Durability::Immediate)
        .create(&path)?;
    let root = pager.alloc_protected()?;
    let mut older: Vec<PageId<PAGE>> = Vec::new();
    let mut commit = |pager: &mut Pager<PAGE>, fill: u8| -> BoxResult<()> {
        let freed = std::mem::take(&mut older);
        older = replace_pages(pager, root, freed, R6_K, |_, bytes| bytes.fill(fill))?;
        Ok(())
    };
    for i in 0..200 {
        commit(&mut pager, i as u8)?;
    }
    let (pages0, free0, held0) = (
        pager.page_count(),
        pager.free_page_count(),
        unavailable(&pager),
    );
    let snapshot = pager.snapshot()?;
    let kept: Vec<PageId<PAGE>> = snapshot.iter_allocated_pages().collect();
    let kept_bytes: Vec<u8> = kept
        .iter()
        .map(|&id| snapshot.get(id).map(|p| p.as_bytes()[0]))
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    for i in 0..COMMITS {
        commit(&mut pager, (i % 200 + 1) as u8)?;
    }
    let held_took = start.elapsed();
    let (pages1, free1, held1) = (
        pager.page_count(),
        pager.free_page_count(),
        unavailable(&pager),
    );
    let intact = kept.iter().zip(&kept_bytes).all(|(&id, &b)| {
        snapshot
            .get(id)
            .is_ok_and(|p| p.as_bytes().iter().all(|&x| x == b))
    });
    drop(snapshot);
    commit(&mut pager, 0xEE)?;
    let (pages2, free2, held2) = (
        pager.page_count(),
        pager.free_page_count(),
        unavailable(&pager),
    );
    for i in 0..COMMITS {
        commit(&mut pager, i as u8)?;
    }
    let (pages3, free3, held3) = (
        pager.page_count(),
        pager.free_page_count(),
        unavailable(&pager),
    );
    drop(pager);
    std::fs::remove_file(&path)?;
    println!(
        "before the snapshot: {pages0} pages in the file, {free0} free, {held0} neither free \
         nor allocated (metadata)"
    );
    println!(
        "after {COMMITS} commits with it held ({:.2} s): {pages1} pages, {free1} free, {held1} \
         neither; its {} pages still read as written: {intact}",
        held_took.as_secs_f64(),
        kept.len()
    );
    println!("dropped, one commit later: {pages2} pages, {free2} free, {held2} neither");
    println!("{COMMITS} commits later: {pages3} pages, {free3} free, {held3} neither");
    let held = held1.saturating_sub(held0);
    let freed = (COMMITS * R6_K) as u64;
    Ok(vec![
        row(
            format!(
                "Space: pages held from reuse by one snapshot across {COMMITS} commits \
                 (each frees {R6_K} pages, writes {R6_K} and the protected root)"
            ),
            format!("{held} pages ({:.1} MiB)", held as f64 * PAGE as f64 / MIB as f64),
            format!("{freed} regular pages freed meanwhile"),
            format!("{:.3}×", held as f64 / freed as f64),
            "pages freed after it, held while it lives",
            yes_no(intact && held >= freed),
        ),
        row(
            format!("Space: file pages before, with the snapshot held, and {COMMITS} commits after its drop"),
            format!("{pages0} → {pages1} → {pages3}"),
            format!("held pages after the drop: {}", held2.saturating_sub(held0)),
            "—",
            "reusable after the drop: no growth",
            yes_no(pages3 == pages2 && held2 <= held0 + R6_K as u64 + 8),
        ),
    ])
}

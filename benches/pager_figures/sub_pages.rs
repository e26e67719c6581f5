//! Durable sub-pages: a transaction of k sub-pages of 128 bytes against the
//! same transaction of k whole pages, reads of a sub-page through a
//! snapshot against reads of a page through one, and the space sub-pages of
//! mixed sizes take after churn against whole pages after the same churn.

use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use mappedpages::inspect::{Inspector, PageKind};
use mappedpages::{Durability, PageId, Pager, Snapshot, SubPage, Transaction};

use super::page_access::{pair_named, LoopPair};
use super::readers::snapshot_head_loop;
use super::report::{describe, describe_syncs, info_ratio_row, median_u64, row, yes_no, Row};
use super::support::stats::{median, ns, Rng};
use super::support::workloads::{head, written_pages};
use super::support::{file_bytes, BoxResult, PAGE};
use super::transactions::T3_KS;
use super::{Config, MIB};

/// The sub-page size of the transaction and read figures.
pub const SUB: usize = 128;

/// One transaction of the shape measured here: `k` fresh sub-pages of
/// `SUB` bytes, each filled with `fill`, the `older` ones freed, committed.
/// Returns the new sub-pages, which the next such transaction frees.
pub fn replace_sub_pages(
    pager: &mut Pager<PAGE>,
    older: &[SubPage<SUB>],
    k: usize,
    fill: u8,
) -> mappedpages::Result<Vec<SubPage<SUB>>> {
    let mut txn = pager.transaction()?;
    let ids = txn.alloc_sub_pages::<SUB>(k)?;
    for &id in &ids {
        txn.sub_page_mut(id)?.fill(fill);
    }
    txn.free_sub_pages(older)?;
    txn.commit()?;
    Ok(ids)
}

/// The same transaction with whole pages.
fn replace_whole_pages(
    pager: &mut Pager<PAGE>,
    older: Vec<PageId<PAGE>>,
    k: usize,
    fill: u8,
) -> mappedpages::Result<Vec<PageId<PAGE>>> {
    let mut txn = pager.transaction()?;
    let ids = txn.alloc_bulk(k)?;
    for &id in &ids {
        txn.get_mut(id)?.as_bytes_mut().fill(fill);
    }
    txn.free_bulk(older)?;
    txn.commit()?;
    Ok(ids)
}

/// What one k measured: per transaction, its time and its sync calls, for
/// sub-pages and for whole pages.
pub struct TxnCase {
    k: usize,
    sub: Vec<f64>,
    page: Vec<f64>,
    sub_syncs: Vec<u64>,
    page_syncs: Vec<u64>,
}

/// Everything the part measured.
pub struct SubPageResults {
    txns: Vec<TxnCase>,
    reads: Vec<LoopPair>,
    space: Vec<Row>,
}

/// Runs `f` on `pager`: its time and the sync calls it made.
fn measure(
    pager: &mut Pager<PAGE>,
    f: impl FnOnce(&mut Pager<PAGE>) -> mappedpages::Result<()>,
) -> BoxResult<(f64, u64)> {
    let before = pager.sync_count();
    let start = Instant::now();
    f(pager)?;
    let t = ns(start.elapsed());
    Ok((t, pager.sync_count() - before))
}

/// Transactions of k sub-pages against transactions of k pages, two
/// `Immediate` pagers side by side, the order swapped every round. Each
/// transaction frees what the one before wrote: the steady state of an
/// engine that writes copy-on-write, with no growth after the first.
fn run_txns(cfg: &Config, dir: &Path) -> BoxResult<Vec<TxnCase>> {
    let mut cases = Vec::new();
    for k in T3_KS {
        let options = Pager::<PAGE>::options()
            .durability(Durability::Immediate)
            .initial_pages((3 * k + 1024) as u64);
        let (sub_path, page_path) = (
            dir.join(format!("sub-txn-{k}.pages")),
            dir.join(format!("page-txn-{k}.pages")),
        );
        let mut subs = options.clone().create(&sub_path)?;
        let mut pages = options.create(&page_path)?;
        let (mut older_subs, mut older_pages) = (Vec::new(), Vec::new());
        let mut case = TxnCase {
            k,
            sub: Vec::new(),
            page: Vec::new(),
            sub_syncs: Vec::new(),
            page_syncs: Vec::new(),
        };
        let rounds = super::transactions::t3_rounds(cfg, k);
        let warmup = (rounds / 10).max(5);
        for round in 0..warmup + rounds {
            let record = round >= warmup;
            let fill = round as u8;
            for which in if round % 2 == 0 { [0, 1] } else { [1, 0] } {
                let (t, syncs) = if which == 0 {
                    measure(&mut subs, |pager| {
                        older_subs = replace_sub_pages(pager, &older_subs, k, fill)?;
                        Ok(())
                    })?
                } else {
                    measure(&mut pages, |pager| {
                        let older = std::mem::take(&mut older_pages);
                        older_pages = replace_whole_pages(pager, older, k, fill)?;
                        Ok(())
                    })?
                };
                if record {
                    let (times, counts) = if which == 0 {
                        (&mut case.sub, &mut case.sub_syncs)
                    } else {
                        (&mut case.page, &mut case.page_syncs)
                    };
                    times.push(t);
                    counts.push(syncs);
                }
            }
        }
        println!(
            "{}",
            describe(
                &format!("k = {k}: transaction of sub-pages of {SUB} bytes"),
                &case.sub
            )
        );
        println!("  syncs per commit: {}", describe_syncs(&case.sub_syncs));
        println!(
            "{}",
            describe(&format!("k = {k}: transaction of 4 KiB pages"), &case.page)
        );
        println!("  syncs per commit: {}", describe_syncs(&case.page_syncs));
        drop((subs, pages));
        std::fs::remove_file(&sub_path)?;
        std::fs::remove_file(&page_path)?;
        cases.push(case);
    }
    Ok(cases)
}

#[inline(never)]
fn snapshot_sub_page_loop(snap: &Snapshot<PAGE>, ids: &[SubPage<SUB>]) -> u64 {
    let mut sum = 0u64;
    for &id in ids {
        let bytes = snap.sub_page(id).expect("a sub-page of the snapshot");
        sum = sum.wrapping_add(head(bytes));
    }
    sum
}

/// Random reads of the first 8 bytes of sub-pages of `SUB` bytes through a
/// snapshot, against the same reads of whole pages through a snapshot of
/// another file: `n` objects each, sub-page `i` starting with what page `i`
/// starts with, so both loops sum the same; hot (1 024 objects read again
/// and again) and over all `n` in one random order.
fn run_reads(cfg: &Config, dir: &Path) -> BoxResult<Vec<LoopPair>> {
    let n = cfg.p4_pages;
    let page_path = dir.join("sub-read-pages.pages");
    let (pages, page_ids) = written_pages(&page_path, n, 64, Durability::Immediate)?;
    let sub_path = dir.join("sub-read-subs.pages");
    let mut subs = Pager::<PAGE>::create(&sub_path)?;
    let mut txn = subs.transaction()?;
    let sub_ids = txn.alloc_sub_pages::<SUB>(n as usize)?;
    for (&id, page) in sub_ids.iter().zip(&page_ids) {
        let bytes = txn.sub_page_mut(id)?;
        bytes.fill(page.0 as u8);
        bytes[..8].copy_from_slice(&page.0.to_le_bytes());
    }
    txn.commit()?;
    let (sub_snap, page_snap) = (subs.snapshot()?, pages.snapshot()?);
    let mut order: Vec<usize> = (0..n as usize).collect();
    Rng(0x9E37_79B9_7F4A_7C15).shuffle(&mut order);
    let sub_order: Vec<SubPage<SUB>> = order.iter().map(|&i| sub_ids[i]).collect();
    let page_order: Vec<PageId<PAGE>> = order.iter().map(|&i| page_ids[i]).collect();
    let hot = 1024.min(order.len());
    let repeat = 200;
    let names = ("sub-page", "page");
    let mut results = vec![pair_named(
        format!("random reads, first 8 bytes, {hot} objects (hot in cache), x{repeat} per pass"),
        names,
        cfg.p4_samples,
        hot * repeat,
        || {
            (0..repeat).fold(0u64, |acc, _| {
                let ids = black_box(&sub_order[..hot]);
                acc.wrapping_add(snapshot_sub_page_loop(black_box(&sub_snap), ids))
            })
        },
        || {
            (0..repeat).fold(0u64, |acc, _| {
                let ids = black_box(&page_order[..hot]);
                acc.wrapping_add(snapshot_head_loop(black_box(&page_snap), ids))
            })
        },
    )?];
    results.push(pair_named(
        format!("random reads, first 8 bytes, all {n} objects in random order"),
        names,
        cfg.p4_samples,
        order.len(),
        || snapshot_sub_page_loop(black_box(&sub_snap), black_box(&sub_order)),
        || snapshot_head_loop(black_box(&page_snap), black_box(&page_order)),
    )?);
    drop((sub_snap, page_snap, subs, pages));
    std::fs::remove_file(&sub_path)?;
    std::fs::remove_file(&page_path)?;
    Ok(results)
}

/// The sub-page sizes of the churn: every size from 64 bytes to 2 KiB.
const CHURN_SIZES: [usize; 6] = [64, 128, 256, 512, 1024, 2048];

/// Objects per transaction of the churn.
const CHURN_BATCH: usize = 4096;

type AllocFn = fn(&mut Transaction<'_, PAGE>, usize) -> mappedpages::Result<Vec<u64>>;
type FreeFn = fn(&mut Transaction<'_, PAGE>, &[u64]) -> mappedpages::Result<()>;

/// Allocates `count` sub-pages of `SIZE` bytes and fills them.
fn alloc_filled<const SIZE: usize>(
    txn: &mut Transaction<'_, PAGE>,
    count: usize,
) -> mappedpages::Result<Vec<u64>> {
    let ids = txn.alloc_sub_pages::<SIZE>(count)?;
    for &id in &ids {
        txn.sub_page_mut(id)?.fill(0xC3);
    }
    Ok(ids.into_iter().map(|id| id.0).collect())
}

fn free_raw<const SIZE: usize>(
    txn: &mut Transaction<'_, PAGE>,
    ids: &[u64],
) -> mappedpages::Result<()> {
    let ids: Vec<SubPage<SIZE>> = ids.iter().map(|&id| SubPage(id)).collect();
    txn.free_sub_pages(&ids)
}

/// `CHURN_SIZES`' allocations and frees: the sizes are const generics, the
/// churn picks them at run time.
const ALLOC: [AllocFn; 6] = [
    alloc_filled::<64>,
    alloc_filled::<128>,
    alloc_filled::<256>,
    alloc_filled::<512>,
    alloc_filled::<1024>,
    alloc_filled::<2048>,
];
const FREE: [FreeFn; 6] = [
    free_raw::<64>,
    free_raw::<128>,
    free_raw::<256>,
    free_raw::<512>,
    free_raw::<1024>,
    free_raw::<2048>,
];

/// One churn object: its size class and, while it lives, its id (a
/// sub-page id, or a page id for the whole-page churn).
type Object = (usize, u64);

/// Writes `classes.len()` objects, one transaction per `CHURN_BATCH`: a
/// sub-page of each object's class or, with `whole_pages`, a page.
fn churn_write(
    pager: &mut Pager<PAGE>,
    classes: &[usize],
    whole_pages: bool,
) -> BoxResult<Vec<Object>> {
    let mut objects = Vec::new();
    for batch in classes.chunks(CHURN_BATCH) {
        let mut txn = pager.transaction()?;
        if whole_pages {
            for id in txn.alloc_bulk(batch.len())? {
                txn.get_mut(id)?.as_bytes_mut().fill(0xC3);
                objects.push((0, id.0));
            }
        } else {
            for (class, alloc) in ALLOC.iter().enumerate() {
                let count = batch.iter().filter(|&&c| c == class).count();
                objects.extend(alloc(&mut txn, count)?.into_iter().map(|id| (class, id)));
            }
        }
        txn.commit()?;
    }
    Ok(objects)
}

/// Frees `objects`, one transaction per `CHURN_BATCH`.
fn churn_free(pager: &mut Pager<PAGE>, objects: &[Object], whole_pages: bool) -> BoxResult<()> {
    for batch in objects.chunks(CHURN_BATCH) {
        let mut txn = pager.transaction()?;
        if whole_pages {
            txn.free_bulk(batch.iter().map(|&(_, id)| PageId(id)))?;
        } else {
            for (class, free) in FREE.iter().enumerate() {
                let ids: Vec<u64> = batch
                    .iter()
                    .filter(|&&(c, _)| c == class)
                    .map(|&(_, id)| id)
                    .collect();
                free(&mut txn, &ids)?;
            }
        }
        txn.commit()?;
    }
    Ok(())
}

/// What a churn left: file bytes, bytes on disk, bytes of the pages that
/// hold objects (parent pages, or the pages themselves), live bytes.
struct ChurnSpace {
    file: u64,
    on_disk: u64,
    holding: u64,
    live: u64,
}

/// W8's churn, with `n` objects: `n` written, a random half freed, a
/// quarter as many written again; each a sub-page of a random size of
/// `CHURN_SIZES` or, with `whole_pages`, a 4 KiB page.
fn churn(path: &Path, n: usize, whole_pages: bool) -> BoxResult<ChurnSpace> {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut classes = |count: usize| -> Vec<usize> {
        (0..count)
            .map(|_| (rng.next() % CHURN_SIZES.len() as u64) as usize)
            .collect()
    };
    let (first, again) = (classes(n), classes(n / 4));
    let mut pager = Pager::<PAGE>::options()
        .durability(Durability::Immediate)
        .create(path)?;
    let mut objects = churn_write(&mut pager, &first, whole_pages)?;
    Rng(0x2545_F491_4F6C_DD1D).shuffle(&mut objects);
    let kept = objects.split_off(n / 2);
    churn_free(&mut pager, &objects, whole_pages)?;
    objects = kept;
    objects.extend(churn_write(&mut pager, &again, whole_pages)?);
    let size = |class: usize| {
        if whole_pages {
            PAGE as u64
        } else {
            CHURN_SIZES[class] as u64
        }
    };
    let live = objects.iter().map(|&(class, _)| size(class)).sum();
    drop(pager);
    let holding_pages: u64 = Inspector::open(path)?
        .page_runs()?
        .iter()
        .filter(|run| match run.kind {
            PageKind::SubPageParent { .. } => !whole_pages,
            PageKind::Regular => whole_pages,
            _ => false,
        })
        .map(|run| run.count)
        .sum();
    let (file, on_disk) = file_bytes(path);
    std::fs::remove_file(path)?;
    Ok(ChurnSpace {
        file,
        on_disk,
        holding: holding_pages * PAGE as u64,
        live,
    })
}

fn run_space(cfg: &Config, dir: &Path) -> BoxResult<Vec<Row>> {
    let n = if cfg.quick { 1 << 13 } else { 1 << 16 };
    let sub = churn(&dir.join("sub-churn.pages"), n, false)?;
    let page = churn(&dir.join("page-churn.pages"), n, true)?;
    let per_live = |bytes: u64, space: &ChurnSpace| bytes as f64 / space.live as f64;
    for (what, space) in [("sub-pages", &sub), ("whole pages", &page)] {
        println!(
            "churn of {what}: file {:.1} MiB, on disk {:.1} MiB, pages holding objects {:.1} MiB, \
             live {:.1} MiB",
            space.file as f64 / MIB as f64,
            space.on_disk as f64 / MIB as f64,
            space.holding as f64 / MIB as f64,
            space.live as f64 / MIB as f64
        );
    }
    let what = format!(
        "2^{} objects written (sub-pages of 64 B to 2 KiB, sizes at random), half freed, \
         a quarter written again",
        n.trailing_zeros()
    );
    let row_of = |name: String, sub_bytes: u64, page_bytes: u64| {
        let (s, p) = (per_live(sub_bytes, &sub), per_live(page_bytes, &page));
        row(
            name,
            format!("{s:.2} B/B"),
            format!("whole pages, same churn: {p:.2} B/B"),
            format!("{:.3}×", s / p),
            "—",
            "—",
        )
    };
    Ok(vec![
        row_of(
            format!("Sub-pages, space after churn: {what}; file bytes per live byte"),
            sub.file,
            page.file,
        ),
        row_of(
            "Sub-pages, space after churn: bytes of the pages holding objects (parent pages) \
             per live byte"
                .to_string(),
            sub.holding,
            page.holding,
        ),
    ])
}

pub fn run_sub_pages(cfg: &Config, dir: &Path) -> BoxResult<SubPageResults> {
    Ok(SubPageResults {
        txns: run_txns(cfg, dir)?,
        reads: run_reads(cfg, dir)?,
        space: run_space(cfg, dir)?,
    })
}

pub fn sub_page_rows(results: SubPageResults) -> Vec<Row> {
    let mut rows = Vec::new();
    for case in &results.txns {
        let k = case.k;
        rows.push(info_ratio_row(
            &format!(
                "Sub-pages k = {k}: alloc {k} sub-pages of {SUB} B, write them, free the {k} \
                 before, commit (Immediate); vs the same with whole 4 KiB pages"
            ),
            median(&case.sub),
            median(&case.page),
            "—",
        ));
        let max = case.sub_syncs.iter().copied().max().unwrap_or(0);
        rows.push(row(
            format!("Sub-pages k = {k}: syncs per commit"),
            format!("{} (max {max})", median_u64(&case.sub_syncs)),
            format!(
                "pages: {} (max {})",
                median_u64(&case.page_syncs),
                case.page_syncs.iter().copied().max().unwrap_or(0)
            ),
            "—",
            "1 sync call",
            yes_no(max <= 1),
        ));
    }
    for pair in &results.reads {
        rows.push(info_ratio_row(
            &format!(
                "Sub-pages: {} (per read), a {SUB} B sub-page through a Snapshot vs a page \
                 through a Snapshot",
                pair.name
            ),
            median(&pair.pager),
            median(&pair.raw),
            "—",
        ));
    }
    rows.extend(results.space);
    rows
}

//! The contract's performance section, P1 to P3: one durable `alloc`,
//! `free` and protected commit against one 4 KiB `pwrite` + `fdatasync`
//! (P1, P2), and the cost of an allocation as the file grows (P3).

use std::path::Path;
use std::time::Instant;

use mappedpages::{Durability, PageId, Pager};

use super::report::{describe, describe_syncs, fmt_bytes, median_u64, ratio_row, row, yes_no, Row};
use super::support::raw::RawWrites;
use super::support::stats::{fmt_ns, median, ns, percentile};
use super::support::{file_bytes, BoxResult};
use super::{Config, GIB};

// P1 and P2: one alloc, one free, one protected commit vs pwrite + fdatasync.

pub struct P1Results {
    base: Vec<f64>,
    alloc: Vec<f64>,
    free: Vec<f64>,
    commit: Vec<f64>,
    alloc_syncs: Vec<u64>,
    free_syncs: Vec<u64>,
    commit_syncs: Vec<u64>,
}

pub fn run_p1(cfg: &Config, dir: &Path) -> BoxResult<P1Results> {
    let mut base_file = RawWrites::create(&dir.join("baseline.bin"))?;
    let mut pager = Pager::<4096>::options()
        .durability(Durability::Immediate)
        .initial_pages(8192)
        .create(dir.join("p1.pages"))?;
    let protected = pager.alloc_protected()?;
    let mut live: std::collections::VecDeque<PageId<4096>> = Default::default();
    live.push_back(pager.alloc()?);

    let mut r = P1Results {
        base: Vec::new(),
        alloc: Vec::new(),
        free: Vec::new(),
        commit: Vec::new(),
        alloc_syncs: Vec::new(),
        free_syncs: Vec::new(),
        commit_syncs: Vec::new(),
    };
    let warmup = 30;
    for round in 0..warmup + cfg.p1_rounds {
        let record = round >= warmup;
        // Rotate the order of the four operations round by round.
        for k in 0..4 {
            match (k + round) % 4 {
                0 => {
                    let t = base_file.write(round as u64, true)?;
                    if record {
                        r.base.push(ns(t));
                    }
                }
                1 => {
                    let before = pager.sync_count();
                    let start = Instant::now();
                    let id = pager.alloc()?;
                    let t = start.elapsed();
                    let syncs = pager.sync_count() - before;
                    live.push_back(id);
                    if record {
                        r.alloc.push(ns(t));
                        r.alloc_syncs.push(syncs);
                    }
                }
                2 => {
                    let Some(id) = live.pop_front() else { continue };
                    let before = pager.sync_count();
                    let start = Instant::now();
                    pager.free(id)?;
                    let t = start.elapsed();
                    let syncs = pager.sync_count() - before;
                    if record {
                        r.free.push(ns(t));
                        r.free_syncs.push(syncs);
                    }
                }
                _ => {
                    let before = pager.sync_count();
                    let start = Instant::now();
                    let mut writer = protected.get_mut(&mut pager)?;
                    writer.page_mut().as_bytes_mut()[0] = round as u8;
                    writer.commit()?;
                    let t = start.elapsed();
                    let syncs = pager.sync_count() - before;
                    if record {
                        r.commit.push(ns(t));
                        r.commit_syncs.push(syncs);
                    }
                }
            }
        }
    }
    if protected.get(&pager)?.as_bytes()[0] != (warmup + cfg.p1_rounds - 1) as u8 {
        return Err("protected page does not hold its last commit".into());
    }
    println!("{}", describe("pwrite 4 KiB + fdatasync", &r.base));
    println!("{}", describe("alloc (Immediate)", &r.alloc));
    println!("{}", describe("free (Immediate)", &r.free));
    println!("{}", describe("protected write 1 byte + commit", &r.commit));
    println!("syncs per alloc: {}", describe_syncs(&r.alloc_syncs));
    println!("syncs per free: {}", describe_syncs(&r.free_syncs));
    println!(
        "syncs per protected commit: {}",
        describe_syncs(&r.commit_syncs)
    );
    Ok(r)
}

pub fn p1_rows(p1: &P1Results) -> Vec<Row> {
    let base = median(&p1.base);
    let mut rows = vec![
        ratio_row(
            "P1 alloc, Immediate, no dirty page",
            median(&p1.alloc),
            base,
            1.15,
            "≤ 1.15× pwrite 4 KiB + fdatasync",
            fmt_ns,
        ),
        ratio_row(
            "P1 free, Immediate, no dirty page",
            median(&p1.free),
            base,
            1.15,
            "≤ 1.15× pwrite 4 KiB + fdatasync",
            fmt_ns,
        ),
    ];
    for (name, counts, limit, target) in [
        ("P1 syncs per alloc", &p1.alloc_syncs, 1, "1 sync call"),
        ("P1 syncs per free", &p1.free_syncs, 1, "1 sync call"),
        (
            "P2 syncs per protected commit",
            &p1.commit_syncs,
            2,
            "≤ 2 sync calls (1 stretch)",
        ),
    ] {
        let max = counts.iter().copied().max().unwrap_or(0);
        rows.push(row(
            name,
            format!("{} (max {max})", median_u64(counts)),
            "—",
            "—",
            target,
            yes_no(max <= limit),
        ));
    }
    let commit = median(&p1.commit);
    rows.push(row(
        "P2 protected write 1 byte + commit",
        fmt_ns(commit),
        fmt_ns(base),
        format!("{:.3}×", commit / base),
        "no time target (sync count above)",
        "—",
    ));
    rows
}

// P3: alloc + commit at 2^10 vs 2^24 allocated pages; alloc_bulk(1 << 20).

pub struct P3Results {
    small_alloc: Vec<f64>,
    large_alloc: Vec<f64>,
    small_free: Vec<f64>,
    large_free: Vec<f64>,
    bulk: Vec<f64>,
    bulk_syncs: Vec<u64>,
    bulk_grow: Vec<f64>,
}

/// Allocates `total` pages in bulk chunks, dropping the returned ids.
pub fn build_allocated<const PS: usize>(
    pager: &mut Pager<PS>,
    total: u64,
    chunk: u64,
) -> BoxResult<Vec<f64>> {
    let mut times = Vec::new();
    let mut done = 0;
    while done < total {
        let n = chunk.min(total - done);
        let start = Instant::now();
        let ids = pager.alloc_bulk(n as usize)?;
        let t = start.elapsed();
        drop(ids);
        times.push(ns(t));
        done += n;
    }
    Ok(times)
}

pub fn run_p3(cfg: &Config, dir: &Path) -> BoxResult<P3Results> {
    let small_path = dir.join("p3-small.pages");
    let large_path = dir.join("p3-large.pages");
    let options = Pager::<4096>::options()
        .durability(Durability::Immediate)
        .preallocate(false);
    let mut small = options.create(&small_path)?;
    small.alloc_bulk(1 << 10)?;
    let mut large = options.create(&large_path)?;
    let build_start = Instant::now();
    let chunks = build_allocated(&mut large, cfg.p3_large, cfg.p3_chunk)?;
    println!(
        "built {} allocated 4 KiB pages in {} bulk calls of {}: {:.2} s \
         (per call: median {}, max {}); file {} GiB apparent, {} on disk",
        large.allocated_page_count(),
        chunks.len(),
        cfg.p3_chunk,
        build_start.elapsed().as_secs_f64(),
        fmt_ns(median(&chunks)),
        fmt_ns(percentile(&chunks, 1.0)),
        large.page_count() * 4096 / GIB,
        fmt_bytes(file_bytes(&large_path).1 as f64),
    );

    let mut r = P3Results {
        small_alloc: Vec::new(),
        large_alloc: Vec::new(),
        small_free: Vec::new(),
        large_free: Vec::new(),
        bulk: Vec::new(),
        bulk_syncs: Vec::new(),
        bulk_grow: Vec::new(),
    };
    // Warm-up also takes the large file through its next growth step.
    let warmup = 30;
    for round in 0..warmup + cfg.p3_rounds {
        let record = round >= warmup;
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let pager = if which == 0 { &mut small } else { &mut large };
            let start = Instant::now();
            let id = pager.alloc()?;
            let t_alloc = start.elapsed();
            let start = Instant::now();
            pager.free(id)?;
            let t_free = start.elapsed();
            if record {
                let (a, f) = if which == 0 {
                    (&mut r.small_alloc, &mut r.small_free)
                } else {
                    (&mut r.large_alloc, &mut r.large_free)
                };
                a.push(ns(t_alloc));
                f.push(ns(t_free));
            }
        }
    }
    println!(
        "{}",
        describe("alloc+commit, 2^10 pages allocated", &r.small_alloc)
    );
    println!(
        "{}",
        describe(
            &format!(
                "alloc+commit, 2^{} pages allocated",
                cfg.p3_large.trailing_zeros()
            ),
            &r.large_alloc
        )
    );
    println!(
        "{}",
        describe("free+commit, 2^10 pages allocated", &r.small_free)
    );
    println!(
        "{}",
        describe(
            &format!(
                "free+commit, 2^{} pages allocated",
                cfg.p3_large.trailing_zeros()
            ),
            &r.large_free
        )
    );
    drop(small);
    drop(large);
    std::fs::remove_file(&small_path)?;
    std::fs::remove_file(&large_path)?;

    // alloc_bulk(1 << 20) on a file that already has room: one commit.
    let bulk_path = dir.join("p3-bulk.pages");
    let mut pager = Pager::<4096>::options()
        .durability(Durability::Immediate)
        .initial_pages((1 << 20) + 4096)
        .create(&bulk_path)?;
    for _ in 0..cfg.bulk_reps {
        let before = pager.sync_count();
        let start = Instant::now();
        let ids = pager.alloc_bulk(1 << 20)?;
        let t = start.elapsed();
        r.bulk_syncs.push(pager.sync_count() - before);
        r.bulk.push(ns(t));
        pager.free_bulk(ids)?;
    }
    drop(pager);
    std::fs::remove_file(&bulk_path)?;
    // The same from a new file of default size: growth included.
    for rep in 0..cfg.bulk_reps.min(3) {
        let path = dir.join(format!("p3-bulk-grow-{rep}.pages"));
        let mut pager = Pager::<4096>::create(&path)?;
        let start = Instant::now();
        let ids = pager.alloc_bulk(1 << 20)?;
        r.bulk_grow.push(ns(start.elapsed()));
        drop(ids);
        drop(pager);
        std::fs::remove_file(&path)?;
    }
    println!(
        "{}",
        describe("alloc_bulk(1 << 20), file already large enough", &r.bulk)
    );
    println!(
        "syncs per alloc_bulk(1 << 20): {}",
        describe_syncs(&r.bulk_syncs)
    );
    println!(
        "{}",
        describe(
            "alloc_bulk(1 << 20) on a new default-size file (growth and fallocate included)",
            &r.bulk_grow
        )
    );
    Ok(r)
}

pub fn p3_rows(cfg: &Config, p3: &P3Results) -> Vec<Row> {
    let large_exp = cfg.p3_large.trailing_zeros();
    let bulk = median(&p3.bulk);
    let bulk_grow = median(&p3.bulk_grow);
    vec![
        ratio_row(
            &format!("P3 alloc+commit at 2^{large_exp} vs 2^10 allocated (4 KiB pages)"),
            median(&p3.large_alloc),
            median(&p3.small_alloc),
            1.2,
            "≤ 1.2×",
            fmt_ns,
        ),
        ratio_row(
            &format!("P3 free+commit at 2^{large_exp} vs 2^10 allocated (info)"),
            median(&p3.large_free),
            median(&p3.small_free),
            1.2,
            "≤ 1.2× (S3; P3 names alloc)",
            fmt_ns,
        ),
        row(
            "P3 alloc_bulk(1 << 20), one commit, file already large enough",
            fmt_ns(bulk),
            "—",
            "—",
            "< 100 ms",
            yes_no(bulk < 100e6),
        ),
        row(
            "P3 alloc_bulk(1 << 20) on a new default file, growth included (info)",
            fmt_ns(bulk_grow),
            "—",
            "—",
            "< 100 ms",
            yes_no(bulk_grow < 100e6),
        ),
    ]
}

//! Group commit: durable commits per second of one-page transactions made by
//! 1 to 64 threads through `ConcurrentPager::write_and_sync`, each call
//! returning once its commit is durable; beside them, the same transaction
//! committed `Immediate` (each paying its own sync) by one thread and by 16,
//! and the raw disk's syncs per second (one 4 KiB pwrite + fdatasync).
//! Beside those, the disk's ceiling for grouped commits: the pages per
//! second it takes in syncs of [`GROUP_CEILING_PAGES`] pages in a row and a
//! root page apart. With 16 threads the commits run in two halves (one
//! half's sync runs while the other half commits), so a sync covers about
//! eight one-page commits; on a disk whose sync time grows with the pages
//! it writes, that ceiling, not one thread's rate, bounds the gain.

use std::path::Path;
use std::time::{Duration, Instant};

use mappedpages::{ConcurrentPager, PageId, Pager};

use super::report::{row, yes_no, Row};
use super::support::raw::{RawT3, RawWrites};
use super::support::stats::{fmt_ns, ns, percentile};
use super::support::{BoxResult, PAGE};
use super::Config;

const THREADS: [usize; 6] = [1, 2, 4, 8, 16, 64];

/// The pages of one sync in the raw ceiling for grouped commits.
const GROUP_CEILING_PAGES: usize = 8;

type P = Pager<PAGE>;

/// One configuration's figures: commits per second, and each call's time.
pub struct Rate {
    label: String,
    threads: usize,
    per_second: f64,
    latencies: Vec<f64>,
}

pub struct GroupResults {
    raw: Rate,
    /// Per second: pages, in syncs of `GROUP_CEILING_PAGES`.
    ceiling: Rate,
    immediate: Vec<Rate>,
    grouped: Vec<Rate>,
}

/// How long each configuration runs in all, in windows spread over rounds.
fn window(cfg: &Config) -> Duration {
    Duration::from_millis(if cfg.quick { 400 } else { 2000 })
}

/// One transaction of one thread: allocate a page, write it, free the
/// page the thread's previous transaction wrote (so the file stays small).
fn one_commit(
    pager: &mut P,
    previous: &mut Option<PageId<PAGE>>,
    stamp: u64,
) -> mappedpages::Result<()> {
    let mut txn = pager.transaction()?;
    let id = txn.alloc()?;
    txn.get_mut(id)?.as_bytes_mut()[..8].copy_from_slice(&stamp.to_le_bytes());
    if let Some(old) = previous.replace(id) {
        txn.free(old)?;
    }
    txn.commit()
}

/// `threads` threads committing for `window`, grouped or each `Immediate`:
/// every call's time, and the window's time until the last call returned.
fn run_threads(
    dir: &Path,
    threads: usize,
    grouped: bool,
    window: Duration,
) -> BoxResult<(Vec<f64>, f64)> {
    let path = dir.join(format!("group-{threads}-{grouped}.pages"));
    let _ = std::fs::remove_file(&path);
    let shared = ConcurrentPager::new(P::create(&path)?)?;
    let start = Instant::now() + Duration::from_millis(20);
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let shared = shared.clone();
            std::thread::spawn(move || -> mappedpages::Result<Vec<f64>> {
                let mut previous = None;
                let mut latencies = Vec::new();
                while Instant::now() < start {
                    std::hint::spin_loop();
                }
                let mut stamp = thread as u64;
                while start.elapsed() < window {
                    let t = Instant::now();
                    if grouped {
                        shared.write_and_sync(|pager| one_commit(pager, &mut previous, stamp))?;
                    } else {
                        let mut writer = shared.write()?;
                        one_commit(&mut writer, &mut previous, stamp)?;
                    }
                    latencies.push(ns(t.elapsed()));
                    stamp += 1 << 16;
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for handle in handles {
        latencies.extend(
            handle
                .join()
                .map_err(|_| "a committing thread panicked")??,
        );
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(shared);
    let _ = std::fs::remove_file(&path);
    Ok((latencies, elapsed))
}

pub fn run_group(cfg: &Config, dir: &Path) -> BoxResult<GroupResults> {
    let window = window(cfg);
    let mut raw_file = RawWrites::create(&dir.join("group-raw.bin"))?;
    let mut raw_latencies = Vec::new();
    let start = Instant::now();
    let mut i = 0;
    while start.elapsed() < window {
        raw_latencies.push(ns(raw_file.write(i, true)?));
        i += 1;
    }
    let raw = Rate {
        label: "raw 4 KiB pwrite + fdatasync, 1 thread".into(),
        threads: 1,
        per_second: raw_latencies.len() as f64 / start.elapsed().as_secs_f64(),
        latencies: raw_latencies,
    };
    let mut ceiling_file = RawT3::create(
        &dir.join("group-ceiling.bin"),
        GROUP_CEILING_PAGES,
        0,
        false,
    )?;
    let mut ceiling_latencies = Vec::new();
    let start = Instant::now();
    while start.elapsed() < window {
        ceiling_latencies.push(ns(ceiling_file.commit()?));
    }
    let ceiling = Rate {
        label: format!(
            "raw {GROUP_CEILING_PAGES} 4 KiB pwrites in a row + a root page's + fdatasync, 1 thread"
        ),
        threads: 1,
        per_second: (GROUP_CEILING_PAGES * ceiling_latencies.len()) as f64
            / start.elapsed().as_secs_f64(),
        latencies: ceiling_latencies,
    };
    println!("{}", describe(&ceiling, "pages/s"));
    // Every configuration runs a window of its own in every round, the
    // order reversed every other round, so that the disk's drift on a
    // shared machine (its syncs per second change by several times within
    // seconds) hits all alike; a configuration's rate pools its windows.
    let configs: Vec<(usize, bool)> = THREADS
        .iter()
        .flat_map(|&threads| {
            let immediate = (threads == 1 || threads == 16).then_some((threads, false));
            immediate.into_iter().chain([(threads, true)])
        })
        .collect();
    let rounds = if cfg.quick { 2 } else { 8 };
    let mut pooled: Vec<(Vec<f64>, f64)> = vec![(Vec::new(), 0.0); configs.len()];
    for round in 0..rounds {
        let mut order: Vec<usize> = (0..configs.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let (threads, grouped) = configs[i];
            let (latencies, seconds) = run_threads(dir, threads, grouped, window / rounds)?;
            pooled[i].0.extend(latencies);
            pooled[i].1 += seconds;
        }
    }
    let mut immediate = Vec::new();
    let mut grouped = Vec::new();
    for (&(threads, is_grouped), (latencies, seconds)) in configs.iter().zip(pooled) {
        let rate = Rate {
            label: if is_grouped {
                format!("write_and_sync, {threads} thread(s)")
            } else {
                format!("Immediate commits through write(), {threads} thread(s)")
            },
            threads,
            per_second: latencies.len() as f64 / seconds,
            latencies,
        };
        println!("{}", describe(&rate, "durable commits/s"));
        if is_grouped {
            grouped.push(rate);
        } else {
            immediate.push(rate);
        }
    }
    Ok(GroupResults {
        raw,
        ceiling,
        immediate,
        grouped,
    })
}

/// A rate's line: `unit` per second, and each call's time.
fn describe(rate: &Rate, unit: &str) -> String {
    format!(
        "{}: {:.0} {unit}, call median {}, p99 {}",
        rate.label,
        rate.per_second,
        fmt_ns(percentile(&rate.latencies, 0.5)),
        fmt_ns(percentile(&rate.latencies, 0.99)),
    )
}

fn latency(rate: &Rate) -> String {
    format!(
        "median {}, p99 {}",
        fmt_ns(percentile(&rate.latencies, 0.5)),
        fmt_ns(percentile(&rate.latencies, 0.99))
    )
}

pub fn group_rows(results: &GroupResults) -> Vec<Row> {
    let mut rows = Vec::new();
    let one = &results.grouped[0];
    let immediate_one = &results.immediate[0];
    rows.push(row(
        format!(
            "G durable commits/s, one-page transactions: {} ({})",
            results.raw.label,
            latency(&results.raw)
        ),
        format!("{:.0}/s", results.raw.per_second),
        "—",
        "—",
        "info: the disk's syncs per second",
        "—",
    ));
    let ratio = immediate_one.per_second / one.per_second;
    rows.push(row(
        format!(
            "G 1 thread: write_and_sync vs an Immediate commit ({} vs {})",
            latency(one),
            latency(immediate_one)
        ),
        format!("{:.0}/s", one.per_second),
        format!("{:.0}/s", immediate_one.per_second),
        format!("{ratio:.3}× the time"),
        "≤ 1.05× an Immediate commit",
        yes_no(ratio <= 1.05),
    ));
    for rate in &results.grouped[1..] {
        let gain = rate.per_second / one.per_second;
        let sixteen = rate.threads == 16;
        rows.push(row(
            format!(
                "G {} threads: write_and_sync vs 1 thread ({})",
                rate.threads,
                latency(rate)
            ),
            format!("{:.0}/s", rate.per_second),
            format!("{:.0}/s", one.per_second),
            format!("{gain:.2}×"),
            if sixteen {
                "≥ 8× one thread"
            } else {
                "info"
            },
            if sixteen {
                yes_no(gain >= 8.0)
            } else {
                "—".into()
            },
        ));
    }
    let Some(sixteen) = results.grouped.iter().find(|r| r.threads == 16) else {
        return rows;
    };
    // 16 threads against another rate, for information.
    let beside = |what: String, baseline: String, per_second: f64, target: &str| {
        row(
            format!("G 16 threads: write_and_sync vs {what}"),
            format!("{:.0}/s", sixteen.per_second),
            baseline,
            format!("{:.2}×", sixteen.per_second / per_second),
            target,
            "—",
        )
    };
    let ceiling = &results.ceiling;
    rows.push(beside(
        format!(
            "the disk's ceiling for groups of {GROUP_CEILING_PAGES}: {} ({})",
            ceiling.label,
            latency(ceiling)
        ),
        format!("{:.0} pages/s", ceiling.per_second),
        ceiling.per_second,
        "info: what the disk allows",
    ));
    if let Some(each) = results.immediate.get(1) {
        rows.push(beside(
            format!("each committing Immediate ({})", latency(each)),
            format!("{:.0}/s", each.per_second),
            each.per_second,
            "info: what the grouping gains",
        ));
    }
    rows
}

//! The contract's readers section: reads through a snapshot against `get`
//! on `&Pager` (R4), and readers on `ConcurrentPager::read` snapshots while
//! a writer commits (R6): their read rate on one and two threads, and the
//! writer's commit time beside them.

use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mappedpages::{ConcurrentPager, Durability, PageId, ProtectedPageId, Snapshot};

use super::page_access::{
    loop_rows, pager_full_loop, pager_head_loop, pair_named, sum_words, LoopPair,
};
use super::report::{describe, info_ratio_row, median_u64, ratio_row, row, yes_no, Row};
use super::support::stats::{fmt_ns, median, ns, percentile, Rng};
use super::support::workloads::{
    check_root, head, read_batch, spin, written_pages, R6Writer, R6_BATCH, R6_CONFIGS, R6_K,
    R6_PAGES, R6_SPINNER,
};
use super::support::{BoxResult, PAGE};
use super::Config;

#[inline(never)]
pub fn snapshot_head_loop<const PS: usize>(snap: &Snapshot<PS>, ids: &[PageId<PS>]) -> u64 {
    let mut sum = 0u64;
    for &id in ids {
        let page = snap.get(id).expect("a page of the snapshot");
        sum = sum.wrapping_add(head(page.as_bytes()));
    }
    sum
}

#[inline(never)]
fn snapshot_full_loop<const PS: usize>(snap: &Snapshot<PS>, ids: &[PageId<PS>]) -> u64 {
    let mut sum = 0u64;
    for &id in ids {
        let page = snap.get(id).expect("a page of the snapshot");
        sum = sum.wrapping_add(sum_words(page.as_bytes()));
    }
    sum
}

/// R4: the same random reads through a snapshot and through `PageId::get`
/// on `&Pager`, on one file, interleaved.
pub fn run_r4(cfg: &Config, dir: &Path) -> BoxResult<Vec<LoopPair>> {
    let n = cfg.p4_pages;
    let path = dir.join("r4.pages");
    let (pager, ids) = written_pages(&path, n, 1024, Durability::Immediate)?;
    let snapshot = pager.snapshot()?;
    let mut shuffled = ids.clone();
    Rng(0x9E37_79B9_7F4A_7C15).shuffle(&mut shuffled);
    let hot_pages = 1024.min(shuffled.len());
    let hot = &shuffled[..hot_pages];
    let hot_repeat = 200;
    let names = ("snapshot", "&Pager get");
    let mut results = Vec::new();
    results.push(pair_named(
        format!(
            "random reads, first 8 bytes, {hot_pages} pages (hot in cache), x{hot_repeat} per pass"
        ),
        names,
        cfg.p4_samples,
        hot_pages * hot_repeat,
        || {
            (0..hot_repeat).fold(0u64, |acc, _| {
                acc.wrapping_add(snapshot_head_loop(black_box(&snapshot), black_box(hot)))
            })
        },
        || {
            (0..hot_repeat).fold(0u64, |acc, _| {
                acc.wrapping_add(pager_head_loop(black_box(&pager), black_box(hot)))
            })
        },
    )?);
    results.push(pair_named(
        format!("random reads, first 8 bytes, all {n} pages in random order"),
        names,
        cfg.p4_samples,
        shuffled.len(),
        || snapshot_head_loop(black_box(&snapshot), black_box(&shuffled)),
        || pager_head_loop(black_box(&pager), black_box(&shuffled)),
    )?);
    results.push(pair_named(
        format!("random reads, full 4 KiB pages, all {n} pages in random order"),
        names,
        cfg.p4_samples.min(21),
        shuffled.len(),
        || snapshot_full_loop(black_box(&snapshot), black_box(&shuffled)),
        || pager_full_loop(black_box(&pager), black_box(&shuffled)),
    )?);
    drop(snapshot);
    drop(pager);
    std::fs::remove_file(&path)?;
    Ok(results)
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    // SAFETY: an all-zero timespec is a valid value of this plain C struct.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: `ts` is valid and writable for the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// System CPU time this thread has used: interrupts taken on its core are
/// charged to it too when the kernel does not account them apart.
fn thread_system_cpu() -> Duration {
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is valid and writable for the call.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        usage.ru_stime.tv_sec as u64,
        usage.ru_stime.tv_usec as u32 * 1000,
    )
}

/// What one reader thread did in a window.
struct ReaderRun {
    reads: u64,
    took: Duration,
    /// CPU time the thread got meanwhile: on a shared machine two threads
    /// may get less than two cores.
    cpu: Duration,
    /// Of which in the kernel.
    system: Duration,
    /// Snapshots of distinct commits it read.
    generations: u64,
}

/// One reader thread: takes the newest snapshot, checks the page its root
/// names (written by that very commit), reads `R6_BATCH` random pages,
/// again until `stop`.
fn r6_reader(
    shared: &ConcurrentPager<PAGE>,
    root: ProtectedPageId<PAGE>,
    ids: &[PageId<PAGE>],
    seed: u64,
    stop: &AtomicBool,
) -> Result<ReaderRun, String> {
    let mut rng = Rng(seed);
    let mut run = ReaderRun {
        reads: 0,
        took: Duration::ZERO,
        cpu: Duration::ZERO,
        system: Duration::ZERO,
        generations: 0,
    };
    let mut last = u64::MAX;
    let mut sum = 0u64;
    let start = Instant::now();
    let cpu_start = thread_cpu();
    let system_start = thread_system_cpu();
    while !stop.load(Ordering::Relaxed) {
        let snap = shared.read().map_err(|e| e.to_string())?;
        if snap.generation() != last {
            last = snap.generation();
            run.generations += 1;
            check_root(&snap, root)?;
        }
        sum = sum.wrapping_add(read_batch(&snap, ids, &mut rng)?);
        run.reads += R6_BATCH;
    }
    run.took = start.elapsed();
    run.cpu = thread_cpu().saturating_sub(cpu_start);
    run.system = thread_system_cpu().saturating_sub(system_start);
    black_box(sum);
    Ok(run)
}

/// What an R6 window measured: the writer's (wall, CPU) time per commit;
/// the readers' reads per second, reads per CPU-second, cores and kernel
/// share of their CPU time; the commits they saw.
type WindowFigures = (Vec<(f64, f64)>, [f64; 4], u64);

/// One R6 window: `readers` reader threads and, if given, the writer,
/// for `window`. Returns the writer's commit times (wall and CPU), the readers' total
/// reads per second, their reads per CPU-second, CPU-seconds per second and
/// share of CPU time in the kernel, and the commits they saw.
fn r6_window(
    shared: &ConcurrentPager<PAGE>,
    writer: Option<&mut R6Writer>,
    readers: usize,
    root: ProtectedPageId<PAGE>,
    ids: &[PageId<PAGE>],
    window: Duration,
    seed: u64,
) -> BoxResult<WindowFigures> {
    let stop = AtomicBool::new(false);
    let (readers, spinner) = if readers == R6_SPINNER {
        (0, true)
    } else {
        (readers, false)
    };
    let (commits, runs) = std::thread::scope(|s| {
        if spinner {
            let stop = &stop;
            s.spawn(move || spin(stop));
        }
        let handles: Vec<_> = (0..readers)
            .map(|r| {
                let stop = &stop;
                s.spawn(move || r6_reader(shared, root, ids, seed + r as u64 * 7919, stop))
            })
            .collect();
        let stop_ref = &stop;
        let writing = writer.map(|w| {
            s.spawn(move || {
                let mut times = Vec::new();
                while !stop_ref.load(Ordering::Relaxed) {
                    let cpu = thread_cpu();
                    let start = Instant::now();
                    w.commit(shared)?;
                    let t = start.elapsed();
                    times.push((ns(t), ns(thread_cpu().saturating_sub(cpu))));
                }
                Ok::<_, String>(times)
            })
        });
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        let commits = match writing {
            Some(h) => h.join().map_err(|_| "the writer panicked".to_string())?,
            None => Ok(Vec::new()),
        };
        let runs: Vec<Result<ReaderRun, String>> = handles
            .into_iter()
            .map(|h| h.join().map_err(|_| "a reader panicked".to_string())?)
            .collect();
        Ok::<_, String>((commits, runs))
    })?;
    let commits = commits?;
    let (mut rate, mut reads, mut cpu, mut cores, mut system) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let mut generations = 0;
    for run in runs {
        let run = run?;
        rate += run.reads as f64 / run.took.as_secs_f64();
        reads += run.reads as f64;
        cpu += run.cpu.as_secs_f64();
        system += run.system.as_secs_f64();
        cores += run.cpu.as_secs_f64() / run.took.as_secs_f64();
        generations += run.generations;
    }
    Ok((
        commits,
        [rate, reads / cpu, cores, system / cpu],
        generations,
    ))
}

pub struct R6Results {
    /// Per configuration: commit times (all windows pooled), total reads
    /// per second per window, commits seen by readers per window.
    commits: [Vec<f64>; 6],
    /// The writer thread's CPU time per commit.
    commit_cpu: [Vec<f64>; 6],
    rates: [Vec<f64>; 6],
    /// Reads per CPU-second of the reader threads, and the cores they got.
    cpu_rates: [Vec<f64>; 6],
    cores: [Vec<f64>; 6],
    /// The share of the readers' CPU time spent in the kernel.
    system: [Vec<f64>; 6],
    seen: [Vec<u64>; 6],
    window: Duration,
}

/// R6: readers on `ConcurrentPager::read` snapshots while a writer commits
/// `Immediate` transactions one after another; the five configurations run
/// in a rotating order, window after window.
pub fn run_r6(cfg: &Config, dir: &Path) -> BoxResult<R6Results> {
    let path = dir.join("r6.pages");
    let (mut pager, ids) = written_pages(&path, R6_PAGES, 1024, Durability::Immediate)?;
    let root = pager.alloc_protected()?;
    let shared = ConcurrentPager::new(pager)?;
    let mut writer = R6Writer::new(root);
    let window = Duration::from_millis(if cfg.quick { 100 } else { 200 });
    let reps = if cfg.quick { 3 } else { 7 };
    let mut r = R6Results {
        commits: Default::default(),
        commit_cpu: Default::default(),
        rates: Default::default(),
        cpu_rates: Default::default(),
        cores: Default::default(),
        system: Default::default(),
        seen: Default::default(),
        window,
    };
    // The first round warms up.
    for rep in 0..=reps {
        for j in 0..R6_CONFIGS.len() {
            let c = (j + rep) % R6_CONFIGS.len();
            let (writes, readers) = R6_CONFIGS[c];
            let (commits, [rate, cpu_rate, cores, system], seen) = r6_window(
                &shared,
                writes.then_some(&mut writer),
                readers,
                root,
                &ids,
                window,
                (rep * 31 + c) as u64 + 1,
            )?;
            if rep > 0 {
                r.commits[c].extend(commits.iter().map(|c| c.0));
                r.commit_cpu[c].extend(commits.iter().map(|c| c.1));
                r.rates[c].push(rate);
                r.cpu_rates[c].push(cpu_rate);
                r.cores[c].push(cores);
                r.system[c].push(system);
                r.seen[c].push(seen);
            }
        }
    }
    let pager = shared
        .into_inner()
        .map_err(|_| "the pager is still shared")?;
    drop(pager);
    std::fs::remove_file(&path)?;
    for (c, (writes, readers)) in R6_CONFIGS.iter().enumerate() {
        let what = if *readers == R6_SPINNER {
            "1 spinning thread that reads nothing, writer committing".to_string()
        } else {
            format!(
                "{readers} reader thread{}, {}",
                if *readers == 1 { "" } else { "s" },
                if *writes {
                    "writer committing"
                } else {
                    "no writer"
                }
            )
        };
        if *readers > 0 && *readers != R6_SPINNER {
            println!(
                "{what}: reads/s median {}, min {}, max {}, n = {} windows of {} ms; \
                 commits seen per window (all readers) median {}; per CPU-second {}, \
                 cores the readers got {:.2} (min {:.2}, max {:.2}), {:.1} % of their CPU \
                 time in the kernel",
                fmt_rate(median(&r.rates[c])),
                fmt_rate(percentile(&r.rates[c], 0.0)),
                fmt_rate(percentile(&r.rates[c], 1.0)),
                r.rates[c].len(),
                window.as_millis(),
                median_u64(&r.seen[c]),
                fmt_rate(median(&r.cpu_rates[c])),
                median(&r.cores[c]),
                percentile(&r.cores[c], 0.0),
                percentile(&r.cores[c], 1.0),
                100.0 * median(&r.system[c]),
            );
        }
        if *writes {
            println!("{}", describe(&format!("  commit, {what}"), &r.commits[c]));
            println!(
                "{}",
                describe(
                    "    the writer thread's CPU time per commit",
                    &r.commit_cpu[c]
                )
            );
        }
    }
    Ok(r)
}

fn fmt_rate(value: f64) -> String {
    format!("{:.1} M reads/s", value / 1e6)
}

/// Per-window ratios of configuration `a` to `b`, windows of one round
/// paired; their minimum and maximum.
fn ratio_range(a: &[f64], b: &[f64]) -> (f64, f64) {
    let ratios: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    (percentile(&ratios, 0.0), percentile(&ratios, 1.0))
}

pub fn r6_rows(r6: &R6Results) -> Vec<Row> {
    let [w0, w1, w2, r1, r2, spin] = [0, 1, 2, 3, 4, 5];
    let mut rows = Vec::new();
    for (two, one, what, target, limit) in [
        (w2, w1, "writer committing", "≥ 1.8× one thread", Some(1.8)),
        (r2, r1, "no writer (info)", "—", None),
    ] {
        let (a, b) = (median(&r6.rates[two]), median(&r6.rates[one]));
        let (lo, hi) = ratio_range(&r6.rates[two], &r6.rates[one]);
        rows.push(row(
            format!(
                "R6 reads through ConcurrentPager::read snapshots, 2 threads vs 1, {what}; \
                 per-round range {lo:.2}–{hi:.2}×"
            ),
            fmt_rate(a),
            fmt_rate(b),
            format!("{:.3}×", a / b),
            target,
            limit.map_or("—".into(), |l| yes_no(a / b >= l)),
        ));
    }
    let (a, b) = (median(&r6.cpu_rates[w2]), median(&r6.cpu_rates[w1]));
    rows.push(row(
        format!(
            "R6 the same per CPU-second of the readers, 2 threads vs 1, writer committing \
             (info: the readers got {:.2} and {:.2} cores, medians)",
            median(&r6.cores[w2]),
            median(&r6.cores[w1])
        ),
        fmt_rate(a),
        fmt_rate(b),
        format!("{:.3}×", a / b),
        "—",
        "—",
    ));
    let (a, b) = (median(&r6.rates[w1]), median(&r6.rates[r1]));
    rows.push(row(
        "R6 reads, 1 thread, writer committing vs no writer (info)",
        fmt_rate(a),
        fmt_rate(b),
        format!("{:.3}×", a / b),
        "—",
        "—",
    ));
    let base = median(&r6.commits[w0]);
    rows.push(ratio_row(
        &format!(
            "R6 writer: Immediate transaction (alloc {R6_K}, write, free {R6_K}, protected root, \
             commit, publish), 1 reader running vs none; n = {} and {}",
            r6.commits[w1].len(),
            r6.commits[w0].len()
        ),
        median(&r6.commits[w1]),
        base,
        1.1,
        "≤ 1.1× without readers",
        fmt_ns,
    ));
    rows.push(info_ratio_row(
        "R6 the same, 1 reader running vs 1 thread spinning without reading (info: the reader's own cost)",
        median(&r6.commits[w1]),
        median(&r6.commits[spin]),
        "—",
    ));
    rows.push(info_ratio_row(
        "R6 the same, 1 thread spinning vs none (info: the cost of a busy core)",
        median(&r6.commits[spin]),
        base,
        "—",
    ));
    rows.push(info_ratio_row(
        "R6 the same, 2 readers running vs none (info; 3 threads on 2 cores)",
        median(&r6.commits[w2]),
        base,
        "—",
    ));
    let seen = median_u64(&r6.seen[w1]);
    rows.push(row(
        format!(
            "R6 commits seen by 1 reader per {} ms window while the writer commits (info)",
            r6.window.as_millis()
        ),
        format!("{seen}"),
        format!(
            "{} commits per window",
            r6.commits[w1].len() / r6.rates[w1].len().max(1)
        ),
        "—",
        "—",
        "—",
    ));
    rows
}

pub fn r4_rows(r4: &[LoopPair]) -> Vec<Row> {
    loop_rows(
        r4,
        |name| format!("R4 {name} (per page), snapshot vs &Pager get"),
        "≤ 1.1× get on &Pager",
    )
}

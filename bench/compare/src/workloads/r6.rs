//! R6: random reads on one and two reader threads while a writer commits
//! durable transactions one after another, and the writer's commit time
//! with a reader running and with none, on this crate (`ConcurrentPager`),
//! LMDB and redb.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::engines::{Engine, LMDB, OURS, REDB};
use crate::report::{time_row, Row, Value};
use crate::support::stats::{fmt_ns, median, ns, percentile, Rng};
use crate::support::workloads::{spin, R6_BATCH, R6_CONFIGS, R6_K, R6_SPINNER};
use crate::{Config, R};

/// The key of the root value, which names the newest commit's first key.
pub const R6_ROOT: u64 = u64::MAX;

/// One engine's store under R6, shared by the writer thread and the reader
/// threads.
pub trait R6Store: Sync {
    fn label(&self) -> &'static str;

    /// One durable transaction: `R6_K` fresh values written, the `R6_K` the
    /// commit before wrote removed, the root pointed at the first new one.
    fn commit(&self) -> Result<(), String>;

    /// One read transaction (a snapshot): the value the root names
    /// checked, then `R6_BATCH` random values read (their first 8 bytes).
    fn read_batch(&self, rng: &mut Rng) -> Result<u64, String>;
}

/// An error as text, which a thread can return.
pub fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// The writer's keys, for the engines keyed by integers: the ones the last
/// commit wrote and the next fresh one. Only the writer thread locks them,
/// so the lock is never contended.
pub struct R6Keys(Mutex<KeyState>);

pub struct KeyState {
    older: Vec<u64>,
    next: u64,
}

impl R6Keys {
    pub fn new() -> R6Keys {
        R6Keys(Mutex::new(KeyState {
            older: Vec::new(),
            next: 1 << 40,
        }))
    }

    pub fn lock(&self) -> Result<MutexGuard<'_, KeyState>, String> {
        self.0.lock().map_err(text)
    }
}

impl KeyState {
    /// The `k` fresh keys of the next commit, and the keys it removes.
    pub fn next_commit(&mut self, k: usize) -> (Vec<u64>, Vec<u64>) {
        let fresh = (self.next..self.next + k as u64).collect();
        (fresh, std::mem::take(&mut self.older))
    }

    /// The commit of `fresh` succeeded.
    pub fn committed(&mut self, fresh: Vec<u64>) {
        self.next += fresh.len() as u64;
        self.older = fresh;
    }
}

/// A reader thread: read batches of `store` (random values from `seed`)
/// until `stop`; its reads per second.
pub fn read_until(store: &dyn R6Store, seed: u64, stop: &AtomicBool) -> Result<f64, String> {
    let mut rng = Rng(seed);
    let (mut reads, mut sum) = (0u64, 0u64);
    let start = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        sum = sum.wrapping_add(store.read_batch(&mut rng)?);
        reads += R6_BATCH;
    }
    std::hint::black_box(sum);
    Ok(reads as f64 / start.elapsed().as_secs_f64())
}

/// One window: `readers` reader threads and, with `writes`, the writer
/// committing one transaction after another, for `window`. Returns the
/// commit times and the readers' total reads per second.
fn r6_window(
    store: &dyn R6Store,
    writes: bool,
    readers: usize,
    window: Duration,
    seed: u64,
) -> R<(Vec<f64>, f64)> {
    let stop = AtomicBool::new(false);
    let stop = &stop;
    let (readers, spinner) = if readers == R6_SPINNER {
        (0, true)
    } else {
        (readers, false)
    };
    let out = std::thread::scope(|s| -> Result<(Vec<f64>, f64), String> {
        if spinner {
            s.spawn(move || spin(stop));
        }
        let handles: Vec<_> = (0..readers)
            .map(|r| {
                let seed = seed.wrapping_mul(31) + r as u64 * 7919 + 1;
                s.spawn(move || read_until(store, seed, stop))
            })
            .collect();
        let writing = writes.then(|| {
            s.spawn(move || -> Result<Vec<f64>, String> {
                let mut times = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    store.commit()?;
                    times.push(ns(start.elapsed()));
                }
                Ok(times)
            })
        });
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        let commits = match writing {
            Some(h) => h.join().map_err(|_| "the writer panicked")??,
            None => Vec::new(),
        };
        let mut rate = 0.0;
        for h in handles {
            rate += h.join().map_err(|_| "a reader panicked")??;
        }
        Ok((commits, rate))
    })?;
    Ok(out)
}

/// Every (engine, configuration) pair runs in a window of its own, all
/// pairs once per round in a new random order.
pub fn run(cfg: &Config, dir: &Path) -> R<Vec<Row>> {
    const ENGINES: [&dyn Engine; 3] = [OURS, LMDB, REDB];
    let window = Duration::from_millis(if cfg.quick { 100 } else { 200 });
    let rounds = if cfg.quick { 3 } else { 7 };
    let mut stores = Vec::new();
    for engine in ENGINES {
        let sub = dir.join(format!("r6-{}", engine.id()));
        std::fs::create_dir_all(&sub)?;
        stores.push(engine.r6(&sub)?);
    }
    let labels: Vec<&str> = stores.iter().map(|s| s.label()).collect();
    let mut commits = vec![vec![Vec::new(); R6_CONFIGS.len()]; ENGINES.len()];
    let mut rates = vec![vec![Vec::new(); R6_CONFIGS.len()]; ENGINES.len()];
    let mut order: Vec<(usize, usize)> = (0..ENGINES.len())
        .flat_map(|s| (0..R6_CONFIGS.len()).map(move |c| (s, c)))
        .collect();
    let mut rng = Rng(0x5851_F42D_4C95_7F2D);
    // The first round warms up.
    for round in 0..=rounds {
        rng.shuffle(&mut order);
        for &(s, c) in &order {
            let (writes, readers) = R6_CONFIGS[c];
            let (times, rate) = r6_window(
                stores[s].as_ref(),
                writes,
                readers,
                window,
                (round * 97 + s * 13 + c) as u64,
            )?;
            if round > 0 {
                commits[s][c].extend(times);
                rates[s][c].push(rate);
            }
        }
    }
    drop(stores);
    let ms = window.as_millis();
    let per_read = |s: usize, c: usize| 1e9 / median(&rates[s][c]);
    let mut rows = Vec::new();
    let groups = [
        (1, format!("R6 reads, 1 thread, writer committing: random 4 KiB values, {R6_BATCH} per read txn, while a writer commits durable transactions (ns per read)")),
        (2, "R6 reads, 2 threads, writer committing: the same (ns per read, both threads together)".to_string()),
        (3, "R6 reads without writer, 1 thread: the same reads, no writer (ns per read)".to_string()),
    ];
    for (c, title) in groups {
        for (s, name) in labels.iter().enumerate() {
            let (lo, hi) = (
                1e9 / percentile(&rates[s][c], 1.0),
                1e9 / percentile(&rates[s][c], 0.0),
            );
            rows.push(time_row(
                &title,
                name,
                per_read(s, c),
                &format!(
                    "{:.1} M reads/s; windows of {ms} ms: {} to {}, n = {}",
                    median(&rates[s][c]) / 1e6,
                    fmt_ns(lo),
                    fmt_ns(hi),
                    rates[s][c].len()
                ),
            ));
        }
    }
    let title =
        "R6 read scaling, writer committing: reads/s of 2 reader threads / 1 (contract: ≥ 1.8)";
    for (s, name) in labels.iter().enumerate() {
        let (two, one) = (median(&rates[s][2]), median(&rates[s][1]));
        let per_round: Vec<f64> = rates[s][2]
            .iter()
            .zip(&rates[s][1])
            .map(|(a, b)| a / b)
            .collect();
        rows.push(Row {
            group: title.into(),
            system: (*name).into(),
            value: Value::Number(two / one, "×".into()),
            syncs: String::new(),
            note: format!(
                "no writer: {:.2}×; per round {:.2}× to {:.2}×",
                median(&rates[s][4]) / median(&rates[s][3]),
                percentile(&per_round, 0.0),
                percentile(&per_round, 1.0)
            ),
        });
    }
    let title = format!("R6 commits, 1 reader running: a durable transaction of the writer ({R6_K} values written, {R6_K} removed, a root value)");
    for (s, name) in labels.iter().enumerate() {
        let (with, without) = (median(&commits[s][1]), median(&commits[s][0]));
        rows.push(time_row(
            &title,
            name,
            with,
            &format!(
                "{:.2}× its {} without readers (contract: ≤ 1.1×); {:.2}× its {} beside a \
                 thread spinning without reading; with 2 readers {}; n = {}, {}",
                with / without,
                fmt_ns(without),
                with / median(&commits[s][5]),
                fmt_ns(median(&commits[s][5])),
                fmt_ns(median(&commits[s][2])),
                commits[s][1].len(),
                commits[s][0].len()
            ),
        ));
    }
    Ok(rows)
}

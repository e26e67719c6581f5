//! G, group commit: durable commits per second of one-value transactions
//! (a 4 KiB value) made by 1, 2, 4, 8, 16 and 64 threads at once, every
//! call returning once its commit is durable, with the median and 99th
//! percentile of a call's time. This crate commits through
//! `ConcurrentPager::write_and_sync` (the commits of many threads share one
//! sync) and, as today, `Immediate` through `ConcurrentPager::write` (a sync
//! each); LMDB, redb and SQLite commit a durable transaction per call from
//! every thread; the raw disk, from one thread, gives its syncs per second.
//!
//! Every (system, thread count) pair runs for a window of its own (250
//! ms), all pairs once per round (full mode: eight rounds, so 2 s a pair;
//! quick mode: two), after an untimed warm-up window of one thread per
//! system. A round takes the thread counts in a new random order, and at
//! each count runs every system back to back in a new random order, so
//! that the systems compared at one count see the disk alike: on a shared
//! machine its syncs per second drift by ten times and more within
//! seconds. The target ratios give their spread round by round beside the
//! pooled figure. A window's threads are made, each sets up what it
//! commits with (SQLite: its connection), and all start together at a
//! barrier; when the window closes each finishes the call it
//! is in, and the window's time runs until the last has. The rows of a
//! thread count are a group; a last group gives the ratios the targets
//! name.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::engines::{Engine, LMDB, OURS, RAW, REDB, SQLITE};
use crate::report::{Row, Value};
use crate::support::stats::{fmt_ns, median, ns, percentile, Rng};
use crate::support::PAGE;
use crate::R;

/// The thread counts, each a group of rows.
pub const THREADS: [usize; 6] = [1, 2, 4, 8, 16, 64];

/// The thread count the targets compare at.
const TARGET_THREADS: usize = 16;

/// One engine's store under G, which every committing thread shares.
pub trait GroupStore: Sync {
    /// Its row label.
    fn label(&self) -> &'static str;

    /// Its name in the target rows.
    fn short(&self) -> &'static str;

    /// The most threads it is measured with (the raw disk: one).
    fn max_threads(&self) -> usize {
        usize::MAX
    }

    /// What thread number `thread` (below 64) commits with, made on that
    /// thread before the window opens.
    fn committer(&self, thread: usize) -> Result<Box<dyn Committer + '_>, String>;
}

/// One thread's side of a store.
pub trait Committer {
    /// One transaction writing one 4 KiB value (this crate: a new page, the
    /// one the thread's transaction before wrote freed; the others: the
    /// thread's own key overwritten), returning once it is durable.
    fn commit(&mut self) -> Result<(), String>;
}

/// A 4 KiB value whose first 8 bytes change at every commit (the thread's
/// number and a count), so that no commit writes the bytes of the one
/// before.
pub struct Stamped {
    value: Vec<u8>,
    next: u64,
}

impl Stamped {
    pub fn new(thread: usize) -> Stamped {
        Stamped {
            value: vec![0xA5; PAGE],
            next: (thread as u64) << 40,
        }
    }

    /// The next commit's value.
    pub fn next(&mut self) -> &[u8] {
        self.value[..8].copy_from_slice(&self.next.to_le_bytes());
        self.next += 1;
        &self.value
    }
}

/// What the windows of one (store, thread count) pair measured.
#[derive(Default)]
struct Tally {
    latencies: Vec<f64>,
    seconds: f64,
    /// Each window's commits per second.
    rates: Vec<f64>,
    /// Why a window failed; the pair runs no more windows.
    failed: Option<String>,
}

impl Tally {
    /// Commits per second; NaN after a failure (the ratios show "—").
    fn per_second(&self) -> f64 {
        if self.failed.is_some() || self.seconds == 0.0 {
            return f64::NAN;
        }
        self.latencies.len() as f64 / self.seconds
    }

    fn note(&self) -> String {
        format!(
            "median {}, p99 {} per call; {} commits in {:.1} s",
            fmt_ns(median(&self.latencies)),
            fmt_ns(percentile(&self.latencies, 0.99)),
            self.latencies.len(),
            self.seconds
        )
    }
}

/// An error as text, which a thread can return.
pub fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// `threads` threads committing on `store` for `window`, started together:
/// every call's time, and the window's time from the start until the last
/// thread has finished its last call.
fn window_run(
    store: &dyn GroupStore,
    threads: usize,
    window: Duration,
) -> Result<(Vec<f64>, f64), String> {
    let stop = AtomicBool::new(false);
    let ready = Barrier::new(threads + 1);
    let (stop, ready) = (&stop, &ready);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                s.spawn(move || -> Result<Vec<f64>, String> {
                    let made = store.committer(thread);
                    // Every thread reaches the barrier, even one that failed.
                    ready.wait();
                    let mut committer = made?;
                    let mut latencies = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let start = Instant::now();
                        committer.commit()?;
                        latencies.push(ns(start.elapsed()));
                    }
                    Ok(latencies)
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        let mut failed = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok(l)) => latencies.extend(l),
                Ok(Err(e)) => failed = Some(e),
                Err(_) => failed = Some("a committing thread panicked".into()),
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        match failed {
            Some(e) => Err(format!("{} with {threads} threads: {e}", store.label())),
            None => Ok((latencies, seconds)),
        }
    })
}

fn number_row(group: &str, system: &str, value: Value, note: String) -> Row {
    Row {
        group: group.into(),
        system: system.into(),
        value,
        syncs: String::new(),
        note,
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "not met"
    }
}

pub fn run(quick: bool, dir: &Path) -> R<Vec<Row>> {
    const ENGINES: [&dyn Engine; 5] = [OURS, LMDB, REDB, SQLITE, RAW];
    let (rounds, window) = if quick {
        (2, Duration::from_millis(250))
    } else {
        (8, Duration::from_millis(250))
    };
    let mut stores: Vec<Box<dyn GroupStore>> = Vec::new();
    for engine in ENGINES {
        let sub = dir.join(format!("group-{}", engine.id()));
        std::fs::create_dir_all(&sub)?;
        stores.extend(engine.group(&sub)?);
    }
    // This crate's two ways come first: write_and_sync, then Immediate.
    if stores.len() != ENGINES.len() + 1 {
        return Err("G expects two stores of this crate and one of every other system".into());
    }
    let mut tallies: Vec<Vec<Tally>> = stores
        .iter()
        .map(|_| THREADS.iter().map(|_| Tally::default()).collect())
        .collect();
    // A round runs every thread count once, in a new random order, as a
    // block: every system at that count, back to back in a new random
    // order, so that the ratios at one count see the disk alike (its syncs
    // per second drift by ten times and more over seconds on a shared
    // machine).
    let mut counts: Vec<usize> = (0..THREADS.len()).collect();
    let mut systems: Vec<usize> = (0..stores.len()).collect();
    for store in &stores {
        window_run(store.as_ref(), 1, window)?;
    }
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..rounds {
        rng.shuffle(&mut counts);
        for &t in &counts {
            rng.shuffle(&mut systems);
            for &s in &systems {
                let tally = &mut tallies[s][t];
                if tally.failed.is_some() || THREADS[t] > stores[s].max_threads() {
                    continue;
                }
                match window_run(stores[s].as_ref(), THREADS[t], window) {
                    Ok((latencies, seconds)) => {
                        tally.rates.push(latencies.len() as f64 / seconds);
                        tally.latencies.extend(latencies);
                        tally.seconds += seconds;
                    }
                    Err(e) => tally.failed = Some(e),
                }
            }
        }
    }

    let mut rows = Vec::new();
    for (t, &threads) in THREADS.iter().enumerate() {
        let title = format!(
            "G group commit, {threads} thread{}: durable commits/s, one 4 KiB value a transaction",
            if threads == 1 { "" } else { "s" }
        );
        for (s, store) in stores.iter().enumerate() {
            let tally = &tallies[s][t];
            if let Some(e) = &tally.failed {
                rows.push(number_row(
                    &title,
                    store.label(),
                    Value::Failed(e.clone()),
                    String::new(),
                ));
            } else if !tally.latencies.is_empty() {
                rows.push(number_row(
                    &title,
                    store.label(),
                    Value::Number(tally.per_second(), "commits/s".into()),
                    tally.note(),
                ));
            }
        }
    }

    let title = "G targets (set for a 2-core machine): ratios of commits per second";
    let (ours, immediate, raw) = (0, 1, stores.len() - 1);
    let mut ratio_row = |system: String, a: &Tally, b: &Tally, target: Option<f64>| {
        let ratio = a.per_second() / b.per_second();
        let rounds: Vec<f64> = a.rates.iter().zip(&b.rates).map(|(x, y)| x / y).collect();
        let verdict = match target {
            Some(t) => format!("target ≥ {t}×: {}", met(ratio >= t)),
            None => "info".into(),
        };
        rows.push(number_row(
            title,
            &system,
            Value::Ratio(ratio),
            format!(
                "{verdict}; round by round {:.2}× to {:.2}×, median {:.2}×",
                percentile(&rounds, 0.0),
                percentile(&rounds, 1.0),
                median(&rounds)
            ),
        ));
    };
    let at = |s: usize, threads: usize| {
        let t = THREADS.iter().position(|&n| n == threads).unwrap();
        &tallies[s][t]
    };
    ratio_row(
        format!("this crate, write_and_sync: {TARGET_THREADS} threads / 1 thread"),
        at(ours, TARGET_THREADS),
        at(ours, 1),
        Some(8.0),
    );
    ratio_row(
        "this crate, write_and_sync: 64 threads / 1 thread".into(),
        at(ours, 64),
        at(ours, 1),
        None,
    );
    for (s, store) in stores.iter().enumerate().skip(2) {
        if store.max_threads() >= TARGET_THREADS {
            ratio_row(
                format!(
                    "this crate, write_and_sync / {}: {TARGET_THREADS} threads each",
                    store.short()
                ),
                at(ours, TARGET_THREADS),
                at(s, TARGET_THREADS),
                Some(8.0),
            );
        }
    }
    ratio_row(
        format!("this crate, {TARGET_THREADS} threads: write_and_sync / Immediate through write()"),
        at(ours, TARGET_THREADS),
        at(immediate, TARGET_THREADS),
        None,
    );
    ratio_row(
        format!(
            "this crate, write_and_sync, {TARGET_THREADS} threads / the raw disk's syncs per \
             second (1 thread)"
        ),
        at(ours, TARGET_THREADS),
        at(raw, 1),
        None,
    );
    // Time per commit, so the target is a ceiling.
    let (grouped_one, immediate_one) = (at(ours, 1), at(immediate, 1));
    let slower = immediate_one.per_second() / grouped_one.per_second();
    let rounds: Vec<f64> = immediate_one
        .rates
        .iter()
        .zip(&grouped_one.rates)
        .map(|(i, g)| i / g)
        .collect();
    rows.push(number_row(
        title,
        "this crate, 1 thread: time per commit, write_and_sync / Immediate through write()",
        Value::Ratio(slower),
        format!(
            "target ≤ 1.05×: {}; round by round {:.2}× to {:.2}×, median {:.2}×; \
             median call {} against {}",
            met(slower <= 1.05),
            percentile(&rounds, 0.0),
            percentile(&rounds, 1.0),
            median(&rounds),
            fmt_ns(median(&grouped_one.latencies)),
            fmt_ns(median(&immediate_one.latencies)),
        ),
    ));
    Ok(rows)
}

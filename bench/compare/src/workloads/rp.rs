//! RP: readers in other processes following a live writer, on this crate
//! (`LiveReader`) and LMDB (an environment opened by each reader process).
//! The writer commits R6's durable transactions in this process; reader
//! processes each begin a read transaction (a snapshot) of the newest
//! commit per batch of `R6_BATCH` random values, checking each value's
//! first bytes. Measured: how long beginning that transaction takes in a
//! reader process while the writer commits; reads per second in 1, 2 and 4
//! reader processes against as many threads in the writer's process; and
//! the writer's commit time with 4 reader processes attached against none,
//! with readers reading without pause and with readers that read a batch
//! every millisecond.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::engines::{engine, Engine, LMDB, OURS};
use crate::report::{time_row, Row};
use crate::support::stats::{fmt_ns, median, ns, Rng};
use crate::support::workloads::R6_BATCH;
use crate::workloads::r6::{read_until, R6Store};
use crate::{Config, R};

/// A reader in a process of its own, following the writer of a store made
/// by `Engine::r6_followed`.
pub trait R6Follower {
    /// One read transaction of the newest commit: `R6_BATCH` random values
    /// read, each checked to start with its key. Returns their sum and how
    /// long beginning the transaction took, in nanoseconds.
    fn read_batch(&mut self, rng: &mut Rng) -> Result<(u64, f64), String>;
}

/// The pause of a paced reader between its batches.
const PACE: Duration = Duration::from_millis(1);

/// How the reader processes of a window read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pace {
    /// Without pause: as many busy processes as readers.
    Busy,
    /// A batch every [`PACE`]: attached and reading, leaving the writer
    /// its cores.
    Paced,
}

impl Pace {
    fn name(self) -> &'static str {
        match self {
            Pace::Busy => "busy",
            Pace::Paced => "paced",
        }
    }
}

/// Child: follows the store of `system` in `dir` for `millis`, reading as
/// `pace` says; prints `READY` once it can read, then
/// `READS <reads> <nanoseconds> <median begin nanoseconds>`.
pub fn child_rp(system: &str, dir: &Path, millis: u64, pace: &str) -> R<()> {
    let mut follower = engine(system)?.r6_follower(dir)?;
    let paced = pace == Pace::Paced.name();
    let mut rng = Rng(u64::from(std::process::id()) | 1);
    follower.read_batch(&mut rng)?;
    println!("READY");
    let (mut reads, mut sum, mut begins) = (0u64, 0u64, Vec::new());
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(millis) {
        let (batch, begin) = follower.read_batch(&mut rng)?;
        sum = sum.wrapping_add(batch);
        begins.push(begin);
        reads += R6_BATCH;
        if paced {
            std::thread::sleep(PACE);
        }
    }
    std::hint::black_box(sum);
    let took = start.elapsed().as_nanos();
    println!("READS {reads} {took} {}", median(&begins));
    Ok(())
}

/// Reader processes started on one store, ready to read.
struct Followers(Vec<(Child, BufReader<ChildStdout>)>);

impl Followers {
    fn start(system: &str, dir: &Path, n: usize, window: Duration, pace: Pace) -> R<Followers> {
        let mut children = Followers(Vec::new());
        for _ in 0..n {
            let mut child = Command::new(std::env::current_exe()?)
                .arg("child-rp")
                .arg(system)
                .arg(dir)
                .arg(window.as_millis().to_string())
                .arg(pace.name())
                .stdout(Stdio::piped())
                .spawn()?;
            let out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
            children.0.push((child, out));
            let mut line = String::new();
            children
                .0
                .last_mut()
                .ok_or("no child")?
                .1
                .read_line(&mut line)?;
            if line.trim() != "READY" {
                return Err(format!("a reader process of {system} said {line:?}").into());
            }
        }
        Ok(children)
    }

    /// Waits for every reader: their reads per second, summed, and the
    /// medians of their transaction begins.
    fn finish(mut self) -> R<(f64, Vec<f64>)> {
        let (mut rate, mut begins) = (0.0, Vec::new());
        for (child, out) in &mut self.0 {
            let mut line = String::new();
            out.read_line(&mut line)?;
            child.wait()?;
            let words: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| format!("a reader process said {line:?}"))?;
            let [reads, nanos, begin] = words[..] else {
                return Err(format!("a reader process said {line:?}").into());
            };
            rate += reads / (nanos / 1e9);
            begins.push(begin);
        }
        self.0.clear();
        Ok((rate, begins))
    }
}

impl Drop for Followers {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The writer's commit times over `window`.
fn commits(store: &dyn R6Store, window: Duration) -> R<Vec<f64>> {
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < window {
        let t = Instant::now();
        store.commit()?;
        times.push(ns(t.elapsed()));
    }
    Ok(times)
}

/// Reads per second of `threads` threads of the writer's process reading
/// as the reader processes do (a read transaction per batch), no writer.
fn thread_reads(store: &dyn R6Store, threads: usize, window: Duration) -> R<f64> {
    let stop = AtomicBool::new(false);
    let rate = std::thread::scope(|s| -> Result<f64, String> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let stop = &stop;
                s.spawn(move || read_until(store, t as u64 * 7919 + 1, stop))
            })
            .collect();
        std::thread::sleep(window);
        stop.store(true, Ordering::Relaxed);
        let mut rate = 0.0;
        for h in handles {
            rate += h.join().map_err(|_| "a reader thread panicked")??;
        }
        Ok(rate)
    })?;
    Ok(rate)
}

/// What one engine's rounds gathered.
#[derive(Default)]
struct Gathered {
    alone: Vec<f64>,
    busy: Vec<f64>,
    paced: Vec<f64>,
    begins: Vec<f64>,
    /// Per reader count (1, 2, 4): reads per second in processes, in threads.
    reads: [(Vec<f64>, Vec<f64>); 3],
}

const READERS: [usize; 3] = [1, 2, 4];

/// One round of every measurement on one engine's store.
fn round(
    engine: &dyn Engine,
    dir: &Path,
    store: &dyn R6Store,
    window: Duration,
    g: &mut Gathered,
) -> R<()> {
    let id = engine.id();
    g.alone.extend(commits(store, window)?);
    for (pace, times) in [(Pace::Busy, &mut g.busy), (Pace::Paced, &mut g.paced)] {
        let followers = Followers::start(id, dir, 4, window, pace)?;
        times.extend(commits(store, window)?);
        let (_, begins) = followers.finish()?;
        if pace == Pace::Paced {
            g.begins.extend(begins);
        }
    }
    for (i, n) in READERS.into_iter().enumerate() {
        let (rate, _) = Followers::start(id, dir, n, window, Pace::Busy)?.finish()?;
        g.reads[i].0.push(rate);
        g.reads[i].1.push(thread_reads(store, n, window)?);
    }
    Ok(())
}

pub fn run(cfg: &Config, dir: &Path) -> R<Vec<Row>> {
    const ENGINES: [&dyn Engine; 2] = [OURS, LMDB];
    let window = Duration::from_millis(if cfg.quick { 150 } else { 400 });
    let rounds = if cfg.quick { 2 } else { 5 };
    let mut stores = Vec::new();
    for engine in ENGINES {
        let sub = dir.join(format!("rp-{}", engine.id()));
        std::fs::create_dir_all(&sub)?;
        stores.push((engine, engine.r6_followed(&sub)?, sub));
    }
    let mut gathered: Vec<Gathered> = ENGINES.iter().map(|_| Gathered::default()).collect();
    let mut order: Vec<usize> = (0..ENGINES.len()).collect();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..rounds {
        rng.shuffle(&mut order);
        for &e in &order {
            let (engine, store, sub) = &stores[e];
            round(*engine, sub, store.as_ref(), window, &mut gathered[e])?;
        }
    }
    let labels: Vec<&str> = stores.iter().map(|(_, s, _)| s.label()).collect();
    let mut rows = Vec::new();
    let title = "RP snapshot in a reader process: beginning a read transaction of the newest commit (`LiveReader::snapshot`, LMDB's `read_txn`) in each of 4 reader processes, while the writer commits";
    for (g, name) in gathered.iter().zip(&labels) {
        rows.push(time_row(
            title,
            name,
            median(&g.begins),
            &format!("median over the readers' medians, n = {}", g.begins.len()),
        ));
    }
    for (i, n) in READERS.into_iter().enumerate() {
        let title = format!("RP reads, {n} reader process(es): random 4 KiB values, {R6_BATCH} per read transaction, no writer (ns per read, the processes together)");
        for (g, name) in gathered.iter().zip(&labels) {
            let (processes, threads) = (median(&g.reads[i].0), median(&g.reads[i].1));
            rows.push(time_row(
                &title,
                name,
                1e9 / processes,
                &format!(
                    "{:.1} M reads/s; {:.2}× the reads/s of {n} thread(s) in the writer's process",
                    processes / 1e6,
                    processes / threads
                ),
            ));
        }
    }
    let title = format!("RP commits, 4 reader processes attached, each reading a batch every {} ms: a durable transaction of the writer (R6's)", PACE.as_millis());
    for (g, name) in gathered.iter().zip(&labels) {
        let (paced, alone, busy) = (median(&g.paced), median(&g.alone), median(&g.busy));
        rows.push(time_row(
            &title,
            name,
            paced,
            &format!(
                "{:.2}× its {} with no reader (contract: ≤ 1.1×); with 4 readers reading without pause {} ({:.2}×); n = {}, {}",
                paced / alone,
                fmt_ns(alone),
                fmt_ns(busy),
                busy / alone,
                g.paced.len(),
                g.alone.len()
            ),
        ));
    }
    Ok(rows)
}

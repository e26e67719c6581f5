//! Readers in other processes (`LiveReader`): the cost of a snapshot of a
//! new commit against an in-process snapshot, random reads per second in 1,
//! 2 and 4 reader processes against as many threads reading in-process
//! snapshots, and the writer's commit time with 4 reader processes attached
//! against none and against 4 processes reading a plain map of the file
//! (the same work on the cores, without the reader table).

use std::hint::black_box;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mappedpages::{Durability, LiveReader, PageId, Pager, Snapshot};

use super::page_access::raw_head_loop;
use super::readers::snapshot_head_loop;
use super::report::{info_ratio_row, ratio_row, row, Row};
use super::support::stats::{fmt_ns, median, ns, thread_cpu_ns, Rng};
use super::support::{BoxResult, PAGE};
use super::Config;

/// Pages of the file the readers read.
const PAGES: u64 = 1 << 14;
/// Reads per batch (each batch on a snapshot of the newest commit).
const BATCH: usize = 4096;

pub struct ProcessReaderFigures {
    snapshot_in_process: Vec<f64>,
    snapshot_live: Vec<f64>,
    snapshot_live_again: Vec<f64>,
    /// (readers, reads per second in processes, reads per second in threads)
    reads: Vec<(usize, f64, f64)>,
    commit_alone: Commits,
    commit_with_readers: Commits,
    commit_with_raw_readers: Commits,
    commit_with_paced_readers: Commits,
    commit_with_paced_plain_readers: Commits,
}

/// The writer's commits of one kind of spell: their times, and the CPU
/// time each took where the platform tells.
#[derive(Default)]
struct Commits {
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

impl Commits {
    /// Commits for `window`.
    fn run(
        &mut self,
        pager: &mut Pager<PAGE>,
        previous: &mut Option<PageId<PAGE>>,
        window: Duration,
    ) -> BoxResult<()> {
        let start = Instant::now();
        while start.elapsed() < window {
            let (wall, cpu) = timed_commit(pager, previous)?;
            self.wall.push(wall);
            self.cpu.extend(cpu);
        }
        Ok(())
    }
}

/// How a reader process reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Through a new `LiveReader` snapshot per batch, without pause.
    Live,
    /// The same, with a pause of [`PACE`] after each batch: readers
    /// attached and reading, without taking the writer's cores.
    Paced,
    /// Through a plain shared map of the file, no reader table.
    Plain,
    /// The same, paced as [`ReadMode::Paced`].
    PacedPlain,
}

/// The pause of a paced reader between its batches.
const PACE: Duration = Duration::from_millis(1);

impl ReadMode {
    const ALL: [ReadMode; 4] = [
        ReadMode::Live,
        ReadMode::Paced,
        ReadMode::Plain,
        ReadMode::PacedPlain,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReadMode::Live => "live",
            ReadMode::Paced => "paced",
            ReadMode::Plain => "plain",
            ReadMode::PacedPlain => "paced-plain",
        }
    }

    fn plain(self) -> bool {
        matches!(self, ReadMode::Plain | ReadMode::PacedPlain)
    }

    fn paced(self) -> bool {
        matches!(self, ReadMode::Paced | ReadMode::PacedPlain)
    }

    pub fn from_name(name: &str) -> Option<ReadMode> {
        ReadMode::ALL.into_iter().find(|mode| mode.name() == name)
    }
}

fn window(cfg: &Config) -> Duration {
    Duration::from_millis(if cfg.quick { 300 } else { 1500 })
}

/// The child: reads batches of random pages from `first` on (pages the
/// writer never frees) as `mode` says, for `millis`, then prints how many
/// pages it read.
pub fn live_reader_child(path: &Path, millis: u64, first: u64, mode: ReadMode) -> BoxResult<()> {
    let reader = LiveReader::<PAGE>::open(path)?;
    let ids = ids_of(&reader.snapshot()?, first);
    let file = std::fs::File::open(path)?;
    // SAFETY: the benchmark's writer never writes the pages from `first`
    // on after the readers start, and never shortens the file below them.
    let plain = unsafe { memmap2::Mmap::map(&file)? };
    println!("READY");
    let mut rng = Rng(u64::from(std::process::id()) | 1);
    let start = Instant::now();
    let mut reads = 0u64;
    while start.elapsed() < Duration::from_millis(millis) {
        let batch: Vec<PageId<PAGE>> = (0..BATCH)
            .map(|_| ids[(rng.next() % ids.len() as u64) as usize])
            .collect();
        if mode.plain() {
            black_box(raw_head_loop(&plain, &batch));
        } else {
            black_box(snapshot_head_loop(&reader.snapshot()?, &batch));
        }
        reads += BATCH as u64;
        if mode.paced() {
            std::thread::sleep(PACE);
        }
    }
    println!("READS {reads} {}", start.elapsed().as_nanos());
    Ok(())
}

/// The pages of `snapshot` from `first` on.
fn ids_of(snapshot: &Snapshot<PAGE>, first: u64) -> Vec<PageId<PAGE>> {
    snapshot
        .iter_allocated_pages()
        .filter(|id| id.0 >= first)
        .collect()
}

/// A reader process and its output.
type Reader = (Child, BufReader<std::process::ChildStdout>);

/// Starts `n` reader processes for `millis`, reading pages from `first` on
/// as `mode` says, and waits until each is ready.
fn start_readers(
    path: &Path,
    n: usize,
    millis: u64,
    first: u64,
    mode: ReadMode,
) -> BoxResult<Vec<Reader>> {
    let mut children = Vec::new();
    for _ in 0..n {
        let mut child = Command::new(std::env::current_exe()?)
            .arg("live-reader-child")
            .arg(path)
            .arg(millis.to_string())
            .arg(first.to_string())
            .arg(mode.name())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.trim() != "READY" {
            return Err(format!("a reader process said {line:?}").into());
        }
        children.push((child, out));
    }
    Ok(children)
}

/// Waits for the reader processes; their reads per second, summed.
fn finish_readers(children: Vec<Reader>) -> BoxResult<f64> {
    let mut rate = 0.0;
    for (mut child, mut out) in children {
        let mut line = String::new();
        out.read_line(&mut line)?;
        child.wait()?;
        let mut words = line.split_whitespace().skip(1);
        let reads: f64 = words.next().ok_or("no READS line")?.parse()?;
        let nanos: f64 = words.next().ok_or("no time")?.parse()?;
        rate += reads / (nanos / 1e9);
    }
    Ok(rate)
}

/// `threads` threads reading like the children, each batch through a
/// snapshot taken from the writer's `Pager` (shared, as nothing writes
/// while they read).
fn thread_reads(pager: &Pager<PAGE>, threads: usize, window: Duration, first: u64) -> f64 {
    let ids = ids_of(&pager.snapshot().expect("a snapshot"), first);
    let start = Instant::now();
    let reads: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let ids = &ids;
                scope.spawn(move || {
                    let mut rng = Rng(t as u64 * 7919 + 1);
                    let mut reads = 0u64;
                    while start.elapsed() < window {
                        let snapshot = pager.snapshot().expect("a snapshot");
                        let batch: Vec<PageId<PAGE>> = (0..BATCH)
                            .map(|_| ids[(rng.next() % ids.len() as u64) as usize])
                            .collect();
                        black_box(snapshot_head_loop(&snapshot, &batch));
                        reads += BATCH as u64;
                    }
                    reads
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or(0)).sum()
    });
    reads as f64 / start.elapsed().as_secs_f64()
}

/// One commit of the writer: a page allocated and written, the previous
/// one freed. Its time, and the CPU time it took where the platform tells.
fn commit(pager: &mut Pager<PAGE>, previous: &mut Option<PageId<PAGE>>) -> BoxResult<f64> {
    Ok(timed_commit(pager, previous)?.0)
}

fn timed_commit(
    pager: &mut Pager<PAGE>,
    previous: &mut Option<PageId<PAGE>>,
) -> BoxResult<(f64, Option<f64>)> {
    let cpu = thread_cpu_ns();
    let start = Instant::now();
    let mut txn = pager.transaction()?;
    let id = txn.alloc()?;
    txn.get_mut(id)?.as_bytes_mut()[..8].copy_from_slice(&id.0.to_le_bytes());
    if let Some(old) = previous.replace(id) {
        txn.free(old)?;
    }
    txn.commit()?;
    let wall = ns(start.elapsed());
    let cpu = cpu
        .zip(thread_cpu_ns())
        .map(|(before, after)| after - before);
    Ok((wall, cpu))
}

pub fn run_process_readers(cfg: &Config, dir: &Path) -> BoxResult<ProcessReaderFigures> {
    let path = dir.join("process-readers.pages");
    let mut pager = Pager::<PAGE>::options()
        .durability(Durability::Immediate)
        .process_readers(true)
        .initial_pages(PAGES + 1024)
        .create(&path)?;
    let ids = pager.alloc_bulk(PAGES as usize)?;
    let mut txn = pager.transaction()?;
    let fresh = txn.alloc_bulk(PAGES as usize)?;
    for id in &fresh {
        txn.get_mut(*id)?.as_bytes_mut()[..8].copy_from_slice(&id.0.to_le_bytes());
    }
    txn.free_bulk(ids)?;
    txn.commit()?;
    // The readers read these; the writer's commits below take and free
    // other pages.
    let first = fresh.iter().map(|id| id.0).min().ok_or("no page")?;
    let live = LiveReader::<PAGE>::open(&path)?;

    // A snapshot of a new commit, both ways, interleaved.
    let rounds = if cfg.quick { 30 } else { 200 };
    let mut previous = None;
    let (mut snapshot_in_process, mut snapshot_live) = (Vec::new(), Vec::new());
    let mut snapshot_live_again = Vec::new();
    for _ in 0..rounds {
        commit(&mut pager, &mut previous)?;
        let start = Instant::now();
        let snapshot = pager.snapshot()?;
        snapshot_in_process.push(ns(start.elapsed()));
        drop(snapshot);
        let start = Instant::now();
        let snapshot = live.snapshot()?;
        snapshot_live.push(ns(start.elapsed()));
        drop(snapshot);
        let start = Instant::now();
        let snapshot = live.snapshot()?;
        snapshot_live_again.push(ns(start.elapsed()));
        drop(snapshot);
    }
    drop(live);

    let window = window(cfg);
    let millis = window.as_millis() as u64;
    let mut reads = Vec::new();
    for n in [1, 2, 4] {
        let children = start_readers(&path, n, millis, first, ReadMode::Live)?;
        let processes = finish_readers(children)?;
        let threads = thread_reads(&pager, n, window, first);
        println!("{n} reader(s): {processes:.0} reads/s in processes, {threads:.0} in threads");
        reads.push((n, processes, threads));
    }

    // The writer's commits, alone, with 4 reader processes reading without
    // pause, with 4 reading in paced batches, and with 4 processes reading
    // a plain map, in turn.
    let mut commit_alone = Commits::default();
    let mut commit_with_readers = Commits::default();
    let mut commit_with_raw_readers = Commits::default();
    let mut commit_with_paced_readers = Commits::default();
    let mut commit_with_paced_plain_readers = Commits::default();
    let spells = if cfg.quick { 2 } else { 4 };
    for _ in 0..spells {
        commit_alone.run(&mut pager, &mut previous, window / 2)?;
        for (mode, times) in [
            (ReadMode::Live, &mut commit_with_readers),
            (ReadMode::Paced, &mut commit_with_paced_readers),
            (ReadMode::Plain, &mut commit_with_raw_readers),
            (ReadMode::PacedPlain, &mut commit_with_paced_plain_readers),
        ] {
            let children = start_readers(&path, 4, millis / 2, first, mode)?;
            times.run(&mut pager, &mut previous, window / 2)?;
            finish_readers(children)?;
        }
    }
    Ok(ProcessReaderFigures {
        snapshot_in_process,
        snapshot_live,
        snapshot_live_again,
        reads,
        commit_alone,
        commit_with_readers,
        commit_with_raw_readers,
        commit_with_paced_readers,
        commit_with_paced_plain_readers,
    })
}

pub fn process_reader_rows(f: &ProcessReaderFigures) -> Vec<Row> {
    let mut rows = vec![info_ratio_row(
        &format!(
            "snapshot of a new commit through a `LiveReader` (a reader process's), {PAGES} pages, vs `Pager::snapshot` in the writer's process"
        ),
        median(&f.snapshot_live),
        median(&f.snapshot_in_process),
        "info: loads the commit's page trees from the file",
    )];
    rows.push(info_ratio_row(
        "snapshot of the same commit again through a `LiveReader`, the earlier one dropped, vs `Pager::snapshot`",
        median(&f.snapshot_live_again),
        median(&f.snapshot_in_process),
        "info: reads the roots, registers, reuses the trees it loaded",
    ));
    for &(n, processes, threads) in &f.reads {
        rows.push(row(
            format!("random 8-byte page reads, {n} reader process(es) (a new snapshot per {BATCH} reads) vs {n} thread(s) in the writer's process"),
            format!("{:.1} M/s", processes / 1e6),
            format!("{:.1} M/s", threads / 1e6),
            format!("{:.2}×", processes / threads),
            "info",
            "—",
        ));
    }
    rows.push(ratio_row(
        "the writer's durable one-page commit with 4 reader processes attached, reading without pause (4 busy processes besides the writer), vs none (R6 across processes)",
        median(&f.commit_with_readers.wall),
        median(&f.commit_alone.wall),
        1.1,
        "≤ 1.1×",
        fmt_ns,
    ));
    rows.push(ratio_row(
        &format!("the same commit with 4 reader processes attached, each reading a batch of {BATCH} pages through a new snapshot every {} ms, vs none (R6 across processes, readers that leave the writer its cores)", PACE.as_millis()),
        median(&f.commit_with_paced_readers.wall),
        median(&f.commit_alone.wall),
        1.1,
        "≤ 1.1×",
        fmt_ns,
    ));
    rows.push(info_ratio_row(
        "the same commit with 4 reader processes attached vs 4 processes doing the same reads through a plain map of the file (no reader table)",
        median(&f.commit_with_readers.wall),
        median(&f.commit_with_raw_readers.wall),
        "info: what the reader table itself costs the writer",
    ));
    if !f.commit_alone.cpu.is_empty() {
        rows.push(info_ratio_row(
            "the writer's CPU time per commit with 4 paced reader processes attached vs none (the writer's own work, apart from waiting for a core or the disk)",
            median(&f.commit_with_paced_readers.cpu),
            median(&f.commit_alone.cpu),
            "info: what the readers cost the writer's work",
        ));
    }
    rows.push(info_ratio_row(
        "the same commit with 4 paced reader processes attached vs 4 processes reading as often through a plain map of the file (no reader table)",
        median(&f.commit_with_paced_readers.wall),
        median(&f.commit_with_paced_plain_readers.wall),
        "info: what the reader table itself costs the writer",
    ));
    rows
}

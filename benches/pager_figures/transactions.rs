//! The contract's transactions section: a durable transaction against the
//! raw `pwrite`s and `fdatasync` of the same pages (T3), a `Deferred` one
//! against a `pwrite` without sync (T4), and the recovery work of `open`
//! after many `Deferred` commits, after a kill and after a clean close (T5).

use std::collections::VecDeque;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use mappedpages::{Durability, PageId, Pager, ProtectedPageId};

use super::open::spawn_open_child_sized;
use super::report::{
    describe, describe_syncs, info_ratio_row, median_u64, ratio_row, row, yes_no, Row,
};
use super::support::raw::{RawT3, RawWrites};
use super::support::stats::{fmt_ns, median, ns};
use super::support::workloads::replace_pages;
use super::support::{BoxResult, PAGE};
use super::Config;

// T3 and T4: transactions against raw writes of the same pages.

/// The transaction sizes of T3.
pub const T3_KS: [usize; 3] = [1, 16, 256];

/// Where a T3 transaction's fresh pages lie.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    /// Pages freed by earlier transactions: overwrites of written blocks,
    /// the steady state of an engine that frees what it replaces.
    Reused,
    /// Pages new to the file, whose blocks the growth reserved
    /// (`fallocate`, an unwritten extent): the pager's growth today.
    Reserved,
    /// Pages new to the file whose blocks hold written zeros: what growth
    /// would leave if it wrote zeros instead of reserving.
    Zeroed,
}

/// One T3 pager: a protected root, the pages the last transaction wrote,
/// and (for pages new to the file) a pool of never-written pages to free.
struct T3Pager {
    pager: Pager<PAGE>,
    root: ProtectedPageId<PAGE>,
    placement: Placement,
    k: usize,
    /// Reused: the pages the previous transaction wrote. New pages: the
    /// never-written pool, freed k at a time from the front.
    older: VecDeque<PageId<PAGE>>,
    fill: u8,
}

impl T3Pager {
    fn create(path: &Path, k: usize, commits: usize, placement: Placement) -> BoxResult<T3Pager> {
        // Room for every commit without growth: a growth would add its own
        // sync and its own cost to the commit that meets it.
        let pool = if placement == Placement::Reused {
            0
        } else {
            k * (commits + 1)
        };
        let mut pager = Pager::<PAGE>::options()
            .durability(Durability::Immediate)
            .initial_pages((pool + 3 * k + 1024) as u64)
            .create(path)?;
        let root = pager.alloc_protected()?;
        let older = if placement == Placement::Reused {
            // The first transaction frees k written pages like every other.
            let mut txn = pager.transaction()?;
            let ids = txn.alloc_bulk(k)?;
            for &id in &ids {
                txn.get_mut(id)?.as_bytes_mut().fill(0x11);
            }
            txn.commit()?;
            ids
        } else {
            let ids = pager.alloc_bulk(pool)?;
            if placement == Placement::Zeroed {
                // These pages are the caller's: writing zeros into them and
                // syncing leaves their blocks as zero-filling growth would.
                for &id in &ids {
                    id.get_mut(&mut pager)?.as_bytes_mut().fill(0);
                }
                pager.sync()?;
            }
            ids
        };
        Ok(T3Pager {
            pager,
            root,
            placement,
            k,
            older: older.into(),
            fill: 0,
        })
    }

    /// One transaction: allocate k pages, write all of each, free k older
    /// pages, point the protected root at the first new page, commit (the
    /// same transaction as `bench/compare`'s T3 on this crate).
    /// Returns the commit's time and sync calls.
    fn commit(&mut self) -> BoxResult<(Duration, u64)> {
        self.fill = self.fill.wrapping_add(1);
        let older: Vec<PageId<PAGE>> = self.older.drain(..self.k).collect();
        let before = self.pager.sync_count();
        let start = Instant::now();
        let fill = self.fill;
        let ids = replace_pages(&mut self.pager, self.root, older, self.k, |_, bytes| {
            bytes.fill(fill)
        })?;
        let t = start.elapsed();
        let syncs = self.pager.sync_count() - before;
        if self.placement == Placement::Reused {
            self.older.extend(ids);
        }
        Ok((t, syncs))
    }
}

pub struct T3Case {
    k: usize,
    base: Vec<f64>,
    raw_fresh: Vec<f64>,
    /// Per placement (Reused, Reserved, Zeroed): times and syncs.
    txn: [Vec<f64>; 3],
    syncs: [Vec<u64>; 3],
}

const PLACEMENTS: [(Placement, &str); 3] = [
    (Placement::Reused, "pages reused (written blocks)"),
    (
        Placement::Reserved,
        "pages new to the file, blocks reserved by fallocate",
    ),
    (
        Placement::Zeroed,
        "pages new to the file, blocks zero-filled",
    ),
];

/// How many transactions of k pages a figure times (the sub-page part times
/// the same counts).
pub(crate) fn t3_rounds(cfg: &Config, k: usize) -> usize {
    let full = match k {
        1 => 300,
        16 => 200,
        _ => 60,
    };
    if cfg.quick {
        full / 3
    } else {
        full
    }
}

pub fn run_t3(cfg: &Config, dir: &Path) -> BoxResult<Vec<T3Case>> {
    let mut cases = Vec::new();
    for k in T3_KS {
        let rounds = t3_rounds(cfg, k);
        let warmup = (rounds / 10).max(5);
        let commits = warmup + rounds;
        let mut base = RawT3::create(&dir.join(format!("t3-raw-{k}.bin")), k, commits, false)?;
        let mut raw_fresh =
            RawT3::create(&dir.join(format!("t3-rawfresh-{k}.bin")), k, commits, true)?;
        let mut pagers = Vec::new();
        for (i, (placement, _)) in PLACEMENTS.iter().enumerate() {
            let path = dir.join(format!("t3-{k}-{i}.pages"));
            pagers.push(T3Pager::create(&path, k, commits, *placement)?);
        }
        let mut case = T3Case {
            k,
            base: Vec::new(),
            raw_fresh: Vec::new(),
            txn: Default::default(),
            syncs: Default::default(),
        };
        for round in 0..commits {
            let record = round >= warmup;
            // Rotate the order of the five round by round.
            for j in 0..5 {
                match (j + round) % 5 {
                    0 => {
                        let t = base.commit()?;
                        if record {
                            case.base.push(ns(t));
                        }
                    }
                    1 => {
                        let t = raw_fresh.commit()?;
                        if record {
                            case.raw_fresh.push(ns(t));
                        }
                    }
                    p => {
                        let (t, syncs) = pagers[p - 2].commit()?;
                        if record {
                            case.txn[p - 2].push(ns(t));
                            case.syncs[p - 2].push(syncs);
                        }
                    }
                }
            }
        }
        println!(
            "{}",
            describe(
                &format!("k = {k}: raw {} pwrites + fdatasync, overwrites", k + 1),
                &case.base
            )
        );
        println!(
            "{}",
            describe(
                &format!(
                    "k = {k}: raw {} pwrites + fdatasync, fresh fallocated blocks",
                    k + 1
                ),
                &case.raw_fresh
            )
        );
        for (i, (_, what)) in PLACEMENTS.iter().enumerate() {
            println!(
                "{}",
                describe(&format!("k = {k}: transaction, {what}"), &case.txn[i])
            );
            println!("  syncs per commit: {}", describe_syncs(&case.syncs[i]));
        }
        drop(pagers);
        for i in 0..PLACEMENTS.len() {
            std::fs::remove_file(dir.join(format!("t3-{k}-{i}.pages")))?;
        }
        drop((base, raw_fresh));
        std::fs::remove_file(dir.join(format!("t3-raw-{k}.bin")))?;
        std::fs::remove_file(dir.join(format!("t3-rawfresh-{k}.bin")))?;
        cases.push(case);
    }
    Ok(cases)
}

pub struct T4Results {
    raw: Vec<f64>,
    /// Per commit: its time and how many commits came after the last sync.
    commit: Vec<(f64, usize)>,
    commit_syncs: Vec<u64>,
    open: Vec<f64>,
    open_syncs: Vec<u64>,
}

/// Commits between two (untimed) `sync()` calls in T4.
const T4_CYCLE: usize = 1000;
/// The first commits after a sync, whose checks all fit in the root.
const T4_EARLY: usize = 128;

impl T4Results {
    fn commit_times(&self, early: bool) -> Vec<f64> {
        self.commit
            .iter()
            .filter(|&&(_, pos)| !early || pos < T4_EARLY)
            .map(|&(t, _)| t)
            .collect()
    }
}

/// T4: a `Deferred` transaction committing one fresh page, written, against
/// one 4 KiB `pwrite` with no sync; and the syncs of opening a small file
/// that was closed cleanly.
///
/// A `Deferred` root lists the checks of every commit since the last sync,
/// so a commit costs more the more commits came before it unsynced: the
/// commits run in cycles of `T4_CYCLE`, each after an untimed `sync()`, and
/// the figure is given for the first `T4_EARLY` of a cycle and for all.
pub fn run_t4(cfg: &Config, dir: &Path) -> BoxResult<T4Results> {
    let cycles = if cfg.quick { 1 } else { 3 };
    let mut raw_file = RawWrites::create(&dir.join("t4-raw.bin"))?;
    let path = dir.join("t4.pages");
    let mut pager = Pager::<PAGE>::options()
        .durability(Durability::Deferred)
        .initial_pages(((cycles + 1) * T4_CYCLE + 4096) as u64)
        .create(&path)?;
    let mut r = T4Results {
        raw: Vec::new(),
        commit: Vec::new(),
        commit_syncs: Vec::new(),
        open: Vec::new(),
        open_syncs: Vec::new(),
    };
    // The first cycle warms up.
    for cycle in 0..=cycles {
        let record = cycle > 0;
        pager.sync()?;
        for pos in 0..T4_CYCLE {
            for which in if pos % 2 == 0 { [0, 1] } else { [1, 0] } {
                if which == 0 {
                    let t = raw_file.write(pos as u64, false)?;
                    if record {
                        r.raw.push(ns(t));
                    }
                } else {
                    let before = pager.sync_count();
                    let start = Instant::now();
                    let mut txn = pager.transaction()?;
                    let id = txn.alloc()?;
                    txn.get_mut(id)?.as_bytes_mut().fill(pos as u8);
                    txn.commit()?;
                    let t = start.elapsed();
                    let syncs = pager.sync_count() - before;
                    if record {
                        r.commit.push((ns(t), pos));
                        r.commit_syncs.push(syncs);
                    }
                }
            }
        }
    }
    drop(pager);
    drop(raw_file);
    std::fs::remove_file(&path)?;
    std::fs::remove_file(dir.join("t4-raw.bin"))?;
    println!("{}", describe("raw 4 KiB pwrite, no sync", &r.raw));
    for (early, what) in [
        (true, format!("the first {T4_EARLY}")),
        (false, format!("all {T4_CYCLE}")),
    ] {
        println!(
            "{}",
            describe(
                &format!("Deferred transaction: alloc, write 4 KiB, commit; {what} after a sync"),
                &r.commit_times(early)
            )
        );
    }
    let span = T4_CYCLE / 4;
    for part in 0..4 {
        let times: Vec<f64> = r
            .commit
            .iter()
            .filter(|&&(_, pos)| pos / span == part)
            .map(|&(t, _)| t)
            .collect();
        println!(
            "  commits {}..{} after a sync: median {}",
            part * span,
            (part + 1) * span,
            fmt_ns(median(&times))
        );
    }

    println!(
        "syncs per Deferred commit: {}",
        describe_syncs(&r.commit_syncs)
    );

    // A small file (2^10 allocated pages of 1 KiB, as bench/compare's W6),
    // closed cleanly, then opened again and again.
    let small = dir.join("t4-open.pages");
    {
        let mut p = Pager::<1024>::create(&small)?;
        p.alloc_bulk(1 << 10)?;
    }
    for _ in 0..21 {
        let start = Instant::now();
        let p = Pager::<1024>::open(&small)?;
        r.open.push(ns(start.elapsed()));
        r.open_syncs.push(p.sync_count());
        drop(p);
    }
    std::fs::remove_file(&small)?;
    println!(
        "{}",
        describe(
            "open of a cleanly closed file, 2^10 pages, in this process",
            &r.open
        )
    );
    println!("syncs per open: {}", describe_syncs(&r.open_syncs));
    Ok(r)
}

pub fn t3_rows(cases: &[T3Case]) -> Vec<Row> {
    let mut rows = Vec::new();
    for case in cases {
        let k = case.k;
        let base = median(&case.base);
        for (i, (placement, what)) in PLACEMENTS.iter().enumerate() {
            let name =
                format!("T3 k = {k}: alloc {k}, write, free {k}, protected root, commit; {what}");
            let value = median(&case.txn[i]);
            rows.push(if *placement == Placement::Zeroed {
                info_ratio_row(&name, value, base, "info: if growth wrote zeros")
            } else {
                ratio_row(&name, value, base, 1.15, "≤ 1.15× raw overwrites", fmt_ns)
            });
        }
        rows.push(info_ratio_row(
            &format!(
                "T3 k = {k}: raw {} pwrites + fdatasync into fresh fallocated blocks (info)",
                k + 1
            ),
            median(&case.raw_fresh),
            base,
            "—",
        ));
        let all: Vec<u64> = case.syncs.iter().flatten().copied().collect();
        let max = all.iter().copied().max().unwrap_or(0);
        rows.push(row(
            format!("T3 k = {k}: syncs per commit, every placement"),
            format!("{} (max {max})", median_u64(&all)),
            "—",
            "—",
            "1 sync call",
            yes_no(max <= 1),
        ));
    }
    rows
}

pub fn t4_rows(t4: &T4Results) -> Vec<Row> {
    let max_commit = t4.commit_syncs.iter().copied().max().unwrap_or(0);
    let max_open = t4.open_syncs.iter().copied().max().unwrap_or(0);
    vec![
        ratio_row(
            &format!("T4 Deferred transaction: alloc 1 page, write 4 KiB, commit; the first {T4_EARLY} commits after a sync()"),
            median(&t4.commit_times(true)),
            median(&t4.raw),
            3.0,
            "≤ 3× one 4 KiB pwrite, no sync",
            fmt_ns,
        ),
        ratio_row(
            &format!("T4 the same, all {T4_CYCLE} commits after a sync() (each root lists the checks of every unsynced commit)"),
            median(&t4.commit_times(false)),
            median(&t4.raw),
            3.0,
            "≤ 3× one 4 KiB pwrite, no sync",
            fmt_ns,
        ),

        row(
            "T4 syncs per Deferred commit",
            format!("{} (max {max_commit})", median_u64(&t4.commit_syncs)),
            "—",
            "—",
            "0",
            yes_no(max_commit == 0),
        ),
        row(
            format!(
                "T4 syncs at open of a cleanly closed file, 2^10 pages, n = {}",
                t4.open_syncs.len()
            ),
            format!("{} (max {max_open})", median_u64(&t4.open_syncs)),
            "—",
            "—",
            "0",
            yes_no(max_open == 0),
        ),
        row(
            "T4 that open's time, repeated in this process (info)",
            fmt_ns(median(&t4.open)),
            "—",
            "—",
            "—",
            "—",
        ),
    ]
}

// T5: open after Deferred commits, after a kill and after a clean close.

/// Deferred transactions written before the kill or the close, and the
/// fresh pages each writes: 60 000 pages written since the last sync.
const T5_TXNS: usize = 2000;
const T5_PAGES: usize = 30;

/// Writes the T5 workload to a new file, then either drops the pager (a
/// clean close) or ends the process without running any destructor, as a
/// kill would: nothing synced since the last sync. Runs in a child process.
pub fn t5_child(path: &Path, clean_close: bool) -> BoxResult<()> {
    let mut pager = Pager::<PAGE>::options()
        .durability(Durability::Deferred)
        .preallocate(false)
        // Large enough that no commit grows the file (a growth syncs).
        .initial_pages((T5_TXNS * T5_PAGES + 8192) as u64)
        .create(path)?;
    pager.sync()?;
    for round in 0..T5_TXNS {
        let mut txn = pager.transaction()?;
        for id in txn.alloc_bulk(T5_PAGES)? {
            txn.get_mut(id)?.as_bytes_mut()[..8].copy_from_slice(&(round as u64).to_le_bytes());
        }
        txn.commit()?;
    }
    if clean_close {
        drop(pager);
        Ok(())
    } else {
        std::process::exit(0);
    }
}

pub struct T5Results {
    after_kill: Vec<f64>,
    after_close: Vec<f64>,
}

pub fn run_t5(dir: &Path) -> BoxResult<T5Results> {
    let mut r = T5Results {
        after_kill: Vec::new(),
        after_close: Vec::new(),
    };
    for (clean_close, times) in [(false, &mut r.after_kill), (true, &mut r.after_close)] {
        let path = dir.join(format!("t5-{clean_close}.pages"));
        // An open that writes nothing leaves the file as it found it, so
        // every open sees the same state.
        let status = Command::new(std::env::current_exe()?)
            .arg("t5-child")
            .arg(&path)
            .arg(if clean_close { "close" } else { "kill" })
            .status()?;
        if !status.success() {
            return Err(format!("T5 child failed: {status}").into());
        }
        for _ in 0..5 {
            times.push(spawn_open_child_sized(&path, false, PAGE)?.open_ns);
        }
        let what = if clean_close { "clean close" } else { "kill" };
        println!("{}", describe(&format!("open after a {what}"), times));
        std::fs::remove_file(&path)?;
    }
    Ok(r)
}

pub fn t5_rows(t5: &T5Results) -> Vec<Row> {
    let pages = T5_TXNS * T5_PAGES;
    [(&t5.after_kill, "kill"), (&t5.after_close, "clean close")]
        .into_iter()
        .map(|(times, what)| {
            row(
                format!(
                    "T5 open after a {what}: {T5_TXNS} Deferred transactions of {T5_PAGES} \
                     pages ({pages} written since the last sync), warm cache, n = {}",
                    times.len()
                ),
                fmt_ns(median(times)),
                "—",
                "—",
                "bounded by what a power loss could tear",
                "—",
            )
        })
        .collect()
}

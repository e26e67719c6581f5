//! Killed processes (contract D1–D4): the test re-executes its own binary as
//! a child that runs a seeded writer workload and reports `begin <call>` and
//! `end <call>` on stdout around every call; the parent kills it with
//! SIGKILL at a random moment, reopens the file and checks it against the
//! model. The page cache survives a process kill, so the file must show the
//! state after the last completed call, or after the call in flight.
//!
//! The model comes from a reference run of the same seed in the parent: the
//! pager is deterministic, and the child reports each call's outcome so the
//! parent can check that both runs agree.
//!
//! It runs at several page sizes, up to pages far larger than an OS page: a
//! kill can stop a long `pwrite` part way, and no commit that returned may
//! depend on such a write (D4).
//!
//! The workload's calls include transactions (contract T1, T2): a kill in
//! one must leave the state before it or, once its commit is in the file,
//! after it, with every page it wrote holding its bytes. At pages of up to
//! 4 KiB some of them write more pages than a root checks, so a kill can
//! land while their check pages are written.
//!
//! Without `MAPPEDPAGES_DEEP_TESTS=1` (see `depth_support`) each workload
//! is killed half as often. `MAPPEDPAGES_SOAK=<n>` multiplies the number of
//! kills by `n`.

#[path = "support/crash/mod.rs"]
mod crash_support;
#[path = "support/depth/mod.rs"]
mod depth_support;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crash_support::{
    check_file_sized, describe as describe_op, drive, options_sized, soak_factor, temp_dir, End,
    Expect, History, Op, Outcome, Rng, Workload,
};
use depth_support::depth;
use mappedpages::Durability;

const CHILD_ENV: &str = "MAPPEDPAGES_KILL_CHILD";
const TEST_NAME: &str = "killed_writer_reopens_to_a_completed_or_in_flight_call";

/// Below, at, and above the OS page, and the largest page a test can afford.
const PAGE_SIZES: [usize; 4] = [1024, 4096, 64 << 10, 4 << 20];

/// Pages of a megabyte or more: a smaller workload, so that the files and
/// every check stay small.
fn is_big(page_size: usize) -> bool {
    page_size >= 1 << 20
}

/// Calls per workload.
fn calls(page_size: usize) -> u64 {
    if is_big(page_size) {
        150
    } else {
        1000
    }
}

/// Workloads per durability mode and page size. Under Wine, where every
/// child takes over a second to start, one: each page size and mode is
/// still killed as often per workload, through the Windows kill, lock and
/// file code; the workloads' logic is the same everywhere, and the native
/// run takes both.
const SEEDS: u64 = if cfg!(mappedpages_wine) { 1 } else { 2 };

/// Kills per durability mode of two workloads: each workload is killed
/// until `kills / 2` were checked.
fn kills(page_size: usize) -> u64 {
    soak_factor()
        * if is_big(page_size) {
            depth(8, 16)
        } else {
            depth(12, 24)
        }
}

fn workload(seed: u64, page_size: usize) -> Workload {
    let mut workload = Workload::sized(seed, page_size);
    // Kills while snapshots hold pages, while relocations are in flight,
    // while copies are made and while sub-pages are written.
    workload.snapshot_percent = 4;
    workload.relocate_percent = 30;
    workload.copy_percent = 2;
    workload.sub_page_percent = 30;
    if page_size > 4096 {
        // A transaction checking more pages than a root holds would write
        // 170 pages or more: megabytes per call.
        workload.big_txn_percent = 0;
    }
    if is_big(page_size) {
        workload.max_regular = 8;
        // Odd seeds without protected pages: every commit is then an
        // unsynced one in Deferred mode (a protected commit is synced), so
        // runs of commits that returned rest on the root slot alone.
        workload.max_protected = if seed.is_multiple_of(2) { 3 } else { 0 };
    }
    workload
}

fn durability_of(name: &str) -> Durability {
    match name {
        "deferred" => Durability::Deferred,
        _ => Durability::Immediate,
    }
}

/// What the child reports of a call: the ids the pager chose. Short, as
/// the timing run reads the child's output only after it exits (the pipe
/// must hold it all).
fn describe(outcome: &Outcome) -> String {
    let Outcome {
        pages,
        slots,
        moved,
        ..
    } = outcome;
    let mut out = String::new();
    for (tag, list) in [("p", pages), ("s", slots)] {
        if !list.is_empty() {
            out += &format!("{tag}{list:?}");
        }
    }
    if !moved.is_empty() {
        out += &format!("m{moved:?}");
    }
    if out.is_empty() {
        out.push('-');
    }
    out.replace(' ', "")
}

/// The model of a workload, and which of its calls were transactions:
/// `txns[c]` is `Some(committed)` for a transaction in call `c`.
struct Reference {
    history: History,
    txns: Vec<Option<bool>>,
}

/// The workload as both the child and the reference run see it. `report` is
/// told of each call before and after it.
fn run_workload<const N: usize>(
    path: &Path,
    durability: Durability,
    seed: u64,
    mut report: impl FnMut(&str),
) -> Reference {
    let options = options_sized::<N>(durability);
    let pager = options.clone().create(path).unwrap();
    let mut driver = drive(path, pager, options);
    let mut history = History::with_page_size(N);
    let mut txns = vec![None];
    let mut workload = workload(seed, N);
    for _ in 0..calls(N) {
        let call = history.last() + 1;
        let op = workload.next_op(history.states.last().unwrap(), call);
        report(&format!("begin {call}"));
        let outcome = driver
            .apply(&op)
            .unwrap_or_else(|e| panic!("call {call} {}: {e}", describe_op(&op)));
        report(&format!("end {call} {}", describe(&outcome)));
        history.push(driver.model.state(), &op, &outcome);
        txns.push(match &op {
            Op::Txn(_, end) => Some(*end == End::Commit),
            _ => None,
        });
    }
    Reference { history, txns }
}

/// [`run_workload`] on a pager of `page_size`-byte pages.
fn run_sized(
    page_size: usize,
    path: &Path,
    durability: Durability,
    seed: u64,
    report: impl FnMut(&str),
) -> Reference {
    match page_size {
        1024 => run_workload::<1024>(path, durability, seed, report),
        4096 => run_workload::<4096>(path, durability, seed, report),
        65536 => run_workload::<65536>(path, durability, seed, report),
        4194304 => run_workload::<4194304>(path, durability, seed, report),
        other => panic!("no pager type for {other}-byte pages in this test"),
    }
}

fn check_sized(page_size: usize, path: &Path, expect: &Expect<'_>) -> Result<u64, String> {
    match page_size {
        1024 => check_file_sized::<1024>(path, expect),
        4096 => check_file_sized::<4096>(path, expect),
        65536 => check_file_sized::<65536>(path, expect),
        4194304 => check_file_sized::<4194304>(path, expect),
        other => panic!("no pager type for {other}-byte pages in this test"),
    }
}

/// The child: runs the workload, reporting every call on stdout unbuffered.
fn child(spec: &str) {
    let mut parts = spec.split(';');
    let path = parts.next().unwrap();
    let durability = durability_of(parts.next().unwrap());
    let seed: u64 = parts.next().unwrap().parse().unwrap();
    let page_size: usize = parts.next().unwrap().parse().unwrap();
    let stdout = std::io::stdout();
    run_sized(page_size, Path::new(path), durability, seed, |line| {
        let mut out = stdout.lock();
        out.write_all(format!("CALL {line}\n").as_bytes()).unwrap();
        out.flush().unwrap();
    });
}

#[derive(Default)]
struct Tally {
    /// Kills that landed before the child's first call: nothing to check
    /// (the file may not exist yet), so reported apart and not counted.
    before_first_call: u64,
    /// Kills whose file was reopened and checked against the model.
    checked: u64,
    mid_workload: u64,
    mid_call: u64,
    /// Kills inside a transaction that commits, and of those the ones whose
    /// file showed it committed.
    mid_txn: u64,
    mid_txn_committed: u64,
    /// Kills right after a transaction's commit returned.
    after_txn: u64,
    violations: Vec<String>,
}

/// The report in a line of the child's output (libtest may print before it
/// on the same line).
fn call_line(line: &str) -> Option<&str> {
    line.find("CALL ").map(|at| line[at + 5..].trim())
}

/// The child's `end` lines must be the reference run's: the reference is
/// then the model of what the child did.
fn check_outcome(line: &str, reference_ends: &[String]) {
    if let Some(rest) = line.strip_prefix("end ") {
        let call: usize = rest.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(
            Some(line),
            reference_ends.get(call - 1).map(String::as_str),
            "the child diverged from the reference run"
        );
    }
}

/// Spawns a child on a fresh file, kills it after it reported `begin
/// target` plus a random delay, and checks the file.
fn spawn_child(path: &Path, mode: &str, seed: u64, page_size: usize) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(
            CHILD_ENV,
            format!("{};{mode};{seed};{page_size}", path.display()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// How long a child takes from spawn to exit when nothing kills it (its
/// output is read only afterwards, as in a killed run).
fn time_full_run(dir: &Path, mode: &str, seed: u64, page_size: usize) -> Duration {
    let path = dir.join("timing.bin");
    let start = Instant::now();
    let status = spawn_child(&path, mode, seed, page_size).wait().unwrap();
    let elapsed = start.elapsed();
    assert!(status.success(), "the child workload failed on its own");
    std::fs::remove_file(&path).unwrap();
    elapsed
}

/// One seed's workload: its reference run and the child's expected reports.
struct Seeded<'a> {
    dir: &'a Path,
    page_size: usize,
    durability: Durability,
    seed: u64,
    reference: &'a Reference,
    reference_ends: &'a [String],
}

fn kill_once(
    run: &Seeded<'_>,
    window: &mut (u64, u64),
    rng: &mut Rng,
    round: u64,
    tally: &mut Tally,
) {
    let Seeded {
        dir,
        page_size,
        durability,
        seed,
        reference,
        reference_ends,
    } = *run;
    let path = dir.join(format!("kill-{round}.bin"));
    let mode = mode_name(durability);
    let mut child = spawn_child(&path, mode, seed, page_size);
    // Kill at a random moment of the window where the child is inside its
    // workload: it starts as a whole run's duration and narrows as kills
    // land before the first call or after the last one. (The child's reports
    // cannot pace the kill: the pipe lets it run ahead of the reader.)
    let (from, to) = *window;
    let delay = from + rng.below(to - from + 1);
    std::thread::sleep(Duration::from_micros(delay));
    let _ = child.kill();
    let _ = child.wait();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut last: Option<String> = None;
    let mut line = String::new();
    // Everything the child wrote before it died.
    loop {
        line.clear();
        if lines.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(call) = call_line(&line) {
            check_outcome(call, reference_ends);
            last = Some(call.to_string());
        }
    }
    let Some(last) = last else {
        // Killed before the first call: the file may not even exist yet.
        tally.before_first_call += 1;
        window.0 = delay.min(window.1.saturating_sub(1));
        return;
    };
    tally.checked += 1;
    let calls = calls(page_size);
    if last.starts_with(&format!("end {calls} ")) {
        window.1 = delay.max(window.0 + 1);
    }
    let mut words = last.split(' ');
    let kind = words.next().unwrap();
    let call: u64 = words.next().unwrap().parse().unwrap();
    let (lo, hi) = match kind {
        "begin" => {
            tally.mid_call += 1;
            (call - 1, call)
        }
        _ => (call, call),
    };
    if call < calls || kind == "begin" {
        tally.mid_workload += 1;
    }
    let txn = reference.txns[call as usize];
    let expect = Expect {
        history: &reference.history,
        lo,
        hi,
        durable_before: lo + 1,
        root_calls: None,
        // Allocating and writing every free page of a file of big pages is
        // slow: every fourth kill there.
        deep: !is_big(page_size) || round.is_multiple_of(4),
    };
    match check_sized(page_size, &path, &expect) {
        Ok(shown) => match (kind, txn) {
            ("begin", Some(true)) => {
                tally.mid_txn += 1;
                tally.mid_txn_committed += u64::from(shown == call);
            }
            ("end", Some(true)) => tally.after_txn += 1,
            _ => {}
        },
        Err(e) => tally.violations.push(format!(
            "{page_size}-byte pages, {mode}, seed {seed}, killed after `{last}`: {e}"
        )),
    }
    let _ = std::fs::remove_file(&path);
}

fn mode_name(durability: Durability) -> &'static str {
    if durability == Durability::Deferred {
        "deferred"
    } else {
        "immediate"
    }
}

#[test]
fn killed_writer_reopens_to_a_completed_or_in_flight_call() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child(&spec);
        return;
    }
    let dir = temp_dir();
    let mut tally = Tally::default();
    let mut rng = Rng::new(0x4B11);
    for page_size in PAGE_SIZES {
        let started = Instant::now();
        let (checked_before, mid_before) = (tally.checked, tally.mid_workload);
        let skipped_before = tally.before_first_call;
        for durability in [Durability::Immediate, Durability::Deferred] {
            for seed in 0..SEEDS {
                // Each workload runs at its own pace: the kill window starts
                // as one whole run of it.
                let full_run = time_full_run(dir.path(), mode_name(durability), seed, page_size);
                let mut window = (0, full_run.as_micros() as u64);
                let reference_path = dir.path().join("reference.bin");
                let mut ends = Vec::new();
                let reference = run_sized(page_size, &reference_path, durability, seed, |line| {
                    if line.starts_with("end") {
                        ends.push(line.to_string());
                    }
                });
                std::fs::remove_file(&reference_path).unwrap();
                let run = Seeded {
                    dir: dir.path(),
                    page_size,
                    durability,
                    seed,
                    reference: &reference,
                    reference_ends: &ends,
                };
                // Kills that land before the first call check nothing, so
                // kill again until this many were checked (or give up after
                // three times as many tries; the floor below then fails).
                let wanted = kills(page_size) / 2;
                let start = tally.checked;
                for round in 0..3 * wanted {
                    if tally.checked - start >= wanted {
                        break;
                    }
                    kill_once(&run, &mut window, &mut rng, round, &mut tally);
                }
            }
        }
        let (checked, mid) = (
            tally.checked - checked_before,
            tally.mid_workload - mid_before,
        );
        println!(
            "{page_size}-byte pages: {checked} kills checked ({mid} mid-workload), \
             {} before the first call (not checked), in {:.1?}",
            tally.before_first_call - skipped_before,
            started.elapsed()
        );
        // Every workload was killed until `kills / 2` kills were checked;
        // most of them land inside the workload (the window narrows onto
        // it). A run where they did not checked too little to count.
        let planned = SEEDS * kills(page_size);
        assert!(
            checked >= planned && mid * 3 >= planned,
            "{page_size}-byte pages: only {checked} of {planned} kills checked, \
             {mid} mid-workload (floor: all checked, 1/3 mid-workload)"
        );
    }
    println!(
        "killed processes: {} kills checked ({} mid-workload, {} inside a call, {} inside a \
         transaction that commits ({} of them reopened to its commit), {} right after a \
         transaction's commit), {} before the first call not checked, {} violations",
        tally.checked,
        tally.mid_workload,
        tally.mid_call,
        tally.mid_txn,
        tally.mid_txn_committed,
        tally.after_txn,
        tally.before_first_call,
        tally.violations.len()
    );
    for v in tally.violations.iter().take(10) {
        println!("  violation: {v}");
    }
    assert!(tally.violations.is_empty(), "killed processes: violations");
    assert!(tally.mid_txn > 0, "no kill landed inside a transaction");
}

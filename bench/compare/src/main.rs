//! Side-by-side comparison of `mappedpages` with its 0.2 release, redb, LMDB
//! (heed), SQLite (rusqlite, bundled, WAL, synchronous=FULL), raw
//! `pwrite`+`fdatasync` and raw `memmap2`, on files in one directory.
//!
//! ```text
//! cd bench/compare
//! QUICK=1 cargo run --release          # quick mode, under two minutes
//! cargo run --release                  # full mode
//! cargo run --release -- DIR           # files in a temporary directory inside DIR
//! ```
//!
//! Workloads: W1-W3 single durable operations; T3 one durable transaction
//! writing k values of one page (k = 1, 16, 256) and removing the k the one
//! before wrote; W4 bulk allocation; W5 random reads; W6 open; W7 W1-W3
//! without sync; T4 one page committed without sync; W8 space after churn;
//! R6 random reads on one and two threads while a writer commits durable
//! transactions, and the writer's commit time with a reader running. RP:
//! readers in other processes following a live writer (`LiveReader`,
//! LMDB's reader table; see `workloads/rp.rs`).
//! KV: redb's own key-value benchmark followed phase for phase at its
//! scale (5 M pairs of 24-byte keys and 150-byte values, its phases, counts
//! and random stream), the peers configured as redb's harness configures
//! them, on the B+tree of `mappedpages-btree` (`btree/`), redb, LMDB and
//! SQLite (see `workloads/kv.rs`, which lists where it still differs). G: group commit, durable commits per second of
//! one-value transactions from 1 to 64 threads (this crate's
//! `ConcurrentPager::write_and_sync` and its `Immediate` commits, LMDB, redb,
//! SQLite, and the raw disk's syncs per second; see `workloads/group.rs`).
//! `ONLY=w1,t3,...` runs some of them (`t3` all three sizes, `t3-16` one,
//! `group` G).
//!
//! Every figure is the median of repeated measurements. For W1-W3, W5, W7,
//! T3 and T4 the systems of a workload are interleaved round by round in
//! this process (a new random order every round), so drift on a busy
//! machine hits all of them alike. For W4 and W6 every timed call runs in a new child process, for
//! both crates alike, the two alternating run by run (the 0.2 crate may
//! panic there). W8 measures space, one system after another. The table
//! gives each median and its ratio to the first row of its group. The table
//! is printed and written to `bench/results/<date>-<machine>.md`; a chart of
//! the ratios goes next to it as an SVG. The file's header says how the run
//! was timed and whether sync calls were counted.
//!
//! Sync points per operation (W1-W3, W7, T3, T4) are counted with `strace` when it
//! is installed: the program runs itself in a child under `strace -f`, once
//! with 0 and once with N operations after the same setup, and divides the
//! difference by N. It counts sync calls (fsync, fdatasync, msync(MS_SYNC),
//! sync_file_range, syncfs, sync) and writes through a descriptor opened
//! with `O_DSYNC`/`O_SYNC` (found from the `openat` flags), which is how
//! LMDB writes its meta page. `SYNCS=0` skips the counting, and the table
//! then says so.
//!
//! Layout: `engines/` holds one `Engine` per system under test, each doing
//! every workload it takes part in; `workloads/` drives them and makes the
//! rows; `report.rs` writes the table and the chart. Statistics, the raw
//! disk baselines and the transactions this crate runs in T3 and R6 are
//! shared with the crate's own `pager_figures` bench, in
//! `benches/support/`.

use std::path::{Path, PathBuf};
use std::time::Instant;

mod engines;
mod report;
#[path = "../../../benches/support/mod.rs"]
mod support;
mod workloads;

use report::{chart, loadavg, machine, slug, table, today, Row};
use support::{fs_type, positional_args, quick_mode};
use workloads::single::{run_group, NOSYNC_GROUPS, SYNC_GROUPS, T3_GROUPS, T4_GROUP};
use workloads::{children, group, kv, r6, rp, single, syncs, w5, w8};

type R<T> = support::BoxResult<T>;
/// One timed operation: returns nanoseconds (or, for read loops, ns/page).
type Op = Box<dyn FnMut(u64) -> R<f64>>;

struct Config {
    quick: bool,
    /// Rounds of the durable single-operation workloads (W1-W3).
    rounds: usize,
    /// Rounds of the no-sync workloads (W7).
    fast_rounds: usize,
    warmup: usize,
    /// W5: pages read, passes.
    read_pages: u64,
    read_passes: usize,
    /// W4: repetitions of each bulk size.
    bulk_reps: usize,
    /// W6: largest file opened (pages of 1 KiB).
    open_max_exp: u32,
    /// W8: values written before the churn.
    churn: u64,
}

impl Config {
    fn new(quick: bool) -> Config {
        Config {
            quick,
            rounds: if quick { 60 } else { 300 },
            fast_rounds: if quick { 300 } else { 2000 },
            warmup: if quick { 10 } else { 30 },
            read_pages: if quick { 1 << 14 } else { 1 << 16 },
            read_passes: if quick { 9 } else { 31 },
            bulk_reps: if quick { 3 } else { 5 },
            open_max_exp: if quick { 22 } else { 28 },
            churn: if quick { 1 << 14 } else { 1 << 18 },
        }
    }
}

fn main() -> R<()> {
    let args = positional_args();
    match args.first().map(String::as_str) {
        Some("child-ops") => {
            let n: usize = args.get(3).ok_or("child-ops W SYS N DIR")?.parse()?;
            return single::child_ops(&args[1], &args[2], n, Path::new(&args[4]));
        }
        Some("child-bulk") => {
            let n: usize = args.get(3).ok_or("child-bulk SYS PATH N")?.parse()?;
            return children::child_bulk(&args[1], Path::new(&args[2]), n);
        }
        Some("child-build") => {
            let n: u64 = args.get(3).ok_or("child-build SYS PATH N")?.parse()?;
            return children::child_build(&args[1], Path::new(&args[2]), n);
        }
        Some("child-rp") => {
            const USAGE: &str = "child-rp SYS DIR MILLIS busy|paced";
            let millis: u64 = args.get(3).ok_or(USAGE)?.parse()?;
            let pace = args.get(4).ok_or(USAGE)?;
            return rp::child_rp(&args[1], Path::new(&args[2]), millis, pace);
        }
        Some("child-open") => {
            let path = args.get(2).ok_or("child-open SYS PATH")?;
            return children::child_open(&args[1], Path::new(path));
        }
        _ => {}
    }
    let quick = quick_mode();
    let cfg = Config::new(quick);
    let base = args
        .first()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    std::fs::create_dir_all(&base)?;
    let tmp = tempfile::Builder::new()
        .prefix("compare-")
        .tempdir_in(&base)?;
    let dir = tmp.path();
    let only: Option<Vec<String>> = std::env::var("ONLY")
        .ok()
        .filter(|s| !s.is_empty())
        .map(|s| s.split(',').map(|x| x.trim().to_lowercase()).collect());
    let on = |w: &str| only.as_ref().is_none_or(|l| l.iter().any(|x| x == w));
    let syncs_off = std::env::var("SYNCS").is_ok_and(|v| v == "0");
    let have_strace = syncs::strace_available();
    let syncs = have_strace && !syncs_off;
    let load_start = loadavg();

    let (cpu, cores) = machine();
    let fs = fs_type(dir);
    let start = Instant::now();
    let mut rows = Vec::new();
    let mut done = Vec::new();
    let step = |name: &str, rows: &mut Vec<Row>, r: R<Vec<Row>>| {
        match r {
            Ok(v) => rows.extend(v),
            Err(e) => eprintln!("{name} failed: {e}"),
        }
        eprintln!("{name} done at {:.1} s", start.elapsed().as_secs_f64());
    };
    for g in SYNC_GROUPS {
        if on(g.workload) {
            step(
                g.workload,
                &mut rows,
                run_group(g, dir, cfg.rounds, cfg.warmup, syncs),
            );
            done.push(g.workload);
        }
    }
    for g in T3_GROUPS {
        if on("t3") || on(g.workload) {
            // A transaction of 256 pages takes milliseconds: fewer rounds.
            let rounds = match single::work(g.workload)? {
                engines::Work::Txn { k } if k > 16 => cfg.rounds / 3,
                _ => cfg.rounds,
            };
            step(
                g.workload,
                &mut rows,
                run_group(g, dir, rounds, cfg.warmup, syncs),
            );
            done.push(g.workload);
        }
    }
    if on("w5") {
        step("w5", &mut rows, w5::run(&cfg, dir));
        done.push("w5");
    }
    if on("r6") {
        step("r6", &mut rows, r6::run(&cfg, dir));
        done.push("r6");
    }
    if on("rp") {
        step("rp", &mut rows, rp::run(&cfg, dir));
        done.push("rp");
    }
    if on("w7") {
        for g in NOSYNC_GROUPS {
            step(
                g.workload,
                &mut rows,
                run_group(g, dir, cfg.fast_rounds, cfg.warmup, syncs),
            );
        }
        done.push("w7");
    }
    if on("t4") {
        step(
            "t4",
            &mut rows,
            run_group(&T4_GROUP, dir, cfg.fast_rounds, cfg.warmup, syncs),
        );
        done.push("t4");
    }
    if on("w4") {
        step("w4", &mut rows, children::run_w4(&cfg, dir));
        done.push("w4");
    }
    if on("w6") {
        step("w6", &mut rows, children::run_w6(&cfg, dir));
        done.push("w6");
    }
    if on("w8") {
        step("w8", &mut rows, w8::run(&cfg, dir));
        done.push("w8");
    }
    if on("kv") {
        let counter = |system: &str| {
            if syncs {
                syncs::count(kv::SYNC_WORKLOAD, system, dir).unwrap_or_else(|e| format!("? ({e})"))
            } else {
                String::new()
            }
        };
        step("kv", &mut rows, kv::run(quick, dir, &counter));
        done.push("kv");
    }
    if on("group") {
        step("group", &mut rows, group::run(quick, dir));
        done.push("group");
    }
    drop(tmp);

    let date = today();
    let ops = syncs::STRACE_OPS;
    let sync_note = if syncs {
        format!(
            "Syncs/op (W1-W3, W7, T3, T4, KV individual writes) counted with `strace -f` in a child process that \
             repeats the workload's setup and then runs 0 or {ops} operations: \
             (count with {ops} − count with 0) / {ops}. Counted: fsync, \
             fdatasync, msync(MS_SYNC), sync_file_range, syncfs and sync calls, and \
             writes through a descriptor opened with O_DSYNC or O_SYNC (or pwritev2 \
             with RWF_DSYNC), which the contract counts as sync calls; where there \
             are such writes the column shows both parts."
        )
    } else if syncs_off {
        "Sync calls were not counted in this run (`SYNCS=0`): the syncs/op column \
         is empty."
            .to_string()
    } else {
        "Sync calls were not counted in this run (strace was not found): the \
         syncs/op column is empty."
            .to_string()
    };
    let mut command = String::from("cd bench/compare && ");
    for var in ["QUICK", "ONLY", "SYNCS"] {
        if let Ok(v) = std::env::var(var) {
            command.push_str(&format!("{var}={v} "));
        }
    }
    command.push_str("cargo run --release");
    let mut md = format!(
        "# mappedpages compared ({} mode, {date})\n\n\
         Command: `{command}`. Machine: {cpu}, {cores} cores; files on {fs}. \
         Workloads run: {}.\n\n\
         How it is timed: medians of repeated runs; ratios are to the first row \
         of each group. W1-W3, W5, W7, T3 and T4: the systems of a group run in this \
         one process, interleaved round by round, in a new random order \
         every round (W5: each timed pass right after an untimed pass of its \
         own, so that no system is timed just after another one swept the \
         caches). W4 and W6: every timed call runs in a new child process, for \
         both crates alike, the two alternating run by run (W6's row \
         \"open repeated in one process\" is the exception, and says so). \
         W8 measures space: one run per system, one after another. R6: every \
         (system, configuration) pair runs for a window of its own (200 ms; 100 \
         in quick mode), all pairs once per round in a new random order, after \
         one round of warm-up; read rates are medians over windows, commit \
         times medians over all commits of the windows. RP: rounds (five; two \
         in quick mode) taking the engines in a new random order, each \
         running on its own store the writer's commits alone, then beside 4 \
         reader processes reading without pause and 4 reading a batch every \
         millisecond, then 1, 2 and 4 reader processes without a writer and \
         as many threads of the writer's process, each for a window of its \
         own (400 ms; 150 in quick mode); figures are medians over all \
         commits, windows or readers. KV: redb's key-value \
         benchmark, phase for phase in its order with its counts (quick \
         mode: about 1/50 of them) and its pairs (fastrand, seed 3), the \
         peers configured as redb's harness configures them (redb: 4 GiB \
         cache; LMDB: 4 GiB map, default flags, NO_SYNC for the no-sync \
         phase, APPEND for sorted inserts; SQLite: its defaults, rollback \
         journal and synchronous=FULL, OFF for the no-sync phase; this \
         crate: a 4 GiB bound on the pages a transaction holds, as redb's \
         cache); this \
         crate's no-sync phase reopens its store Durability::Deferred and \
         syncs after it, untimed. Where it differs from redb's harness: the \
         systems run one phase after another, each on its own store, all \
         open side by side, in a new random order every phase (redb runs \
         each engine's whole benchmark in turn), so that machine drift hits \
         all alike; the figure is the time per operation, with redb's rate \
         (keys/s, txn/s, scan/s) in the note; RocksDB and fjall are not \
         compared; redb is its 2.x release, without the appending cursor \
         redb's newest uses for sorted inserts (this crate's tree takes \
         plain inserts, which fill the right-edge leaf; LMDB appends); SQLite's statements are \
         prepared once, not at every call; every pop is timed (redb \
         extrapolates slow engines from 5 000); \
         compaction's time is a row. Reads and ranges: the median of three \
         passes. Ratios are to this crate's row, whose note gives its ratio \
         to the best peer. The KV sync count's child loads 10 000 pairs \
         before its commits. G: every (system, \
         thread count) pair runs for a window of its own (250 ms), all pairs \
         once per round (eight rounds; two in quick mode), a round taking \
         the thread counts in a new random order and at each count every \
         system back to back in a new random order, the threads of a window \
         starting together; commits per second are the commits of the \
         pair's windows over their time (which runs until the last call of a \
         window returns), latencies are over all its calls.\n\n\
         {sync_note}\n\n\
         The machine may be shared with other work (load average over one \
         minute: {load_start} at the start, {} at the end), so single figures \
         are noisy: compare the ratios within a group, measured side by side \
         in this run, rather than figures across runs.\n\n",
        if quick { "quick" } else { "full" },
        done.join(", "),
        loadavg(),
    );
    md.push_str(&table(&rows));
    md.push_str(&format!(
        "\nTotal run time {:.0} s.\n",
        start.elapsed().as_secs_f64()
    ));
    println!("{md}");

    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    std::fs::create_dir_all(&results)?;
    let name = format!(
        "{date}-{}-{cores}core-{fs}{}",
        slug(&cpu),
        if quick { "-quick" } else { "" }
    );
    let md_path = results.join(format!("{name}.md"));
    std::fs::write(&md_path, &md)?;
    eprintln!("wrote {}", md_path.display());
    let svg = results.join(format!("{name}.svg"));
    match chart(&rows, &svg) {
        Ok(()) => eprintln!("wrote {}", svg.display()),
        Err(e) => eprintln!("no chart: {e}"),
    }
    Ok(())
}

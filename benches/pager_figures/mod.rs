//! The figures of the contract's performance section (P1 to P5), of its
//! transactions (T3, T4, T5) and of its readers (R4, R6, and the pages an
//! old snapshot holds), measured side by side in one run, on files in one
//! directory. One file per contract section: `performance.rs` (P1, P2, P3),
//! `page_access.rs` (P4), `open.rs` (P5), `transactions.rs` (T3, T4, T5),
//! `readers.rs` (R4, R6), `space.rs` (the pages a snapshot holds),
//! `sub_pages.rs` (durable sub-pages against whole pages); `strace.rs` holds the sync-counting modes and `report.rs` the closing
//! table's rows. What `bench/compare` measures the same way (statistics,
//! raw baselines, T3's and R6's transactions) is in `benches/support/`.
//!
//! A plain benchmark binary (no harness): every figure is the median of its
//! own repetitions, and the pager's operations are interleaved with their
//! baselines so that drift on a busy machine hits both alike.
//!
//! ```text
//! cargo bench --bench pager_figures                # full sizes (default)
//! QUICK=1 cargo bench --bench pager_figures        # small sizes, seconds
//! PARTS=t4,p4 cargo bench --bench pager_figures    # some parts only
//! cargo bench --bench pager_figures -- DIR         # files in DIR
//! PAGER_FIGURES_DIR=DIR cargo bench --bench pager_figures
//! ```
//!
//! The files go to a temporary directory made inside DIR (default: the
//! build's scratch directory under `target/`, else the current directory)
//! and are deleted at the end.
//!
//! Two extra modes count the sync system calls of single operations under
//! `strace`, with the page file prepared beforehand so that its creation is
//! not counted:
//!
//! ```text
//! BENCH strace-prep FILE
//! strace -f -c -e trace=msync,fsync,fdatasync BENCH strace-ops FILE PHASE
//! ```
//!
//! where PHASE is `open` (open and drop only), `alloc`, `free` or `commit`
//! (open, then 100 of that operation) or `all` (100 of each). A phase's
//! count minus the `open` count, divided by 100, is the syncs per call.
//! `t3-K` (K = 1, 16, 256, …) runs 100 transactions of T3 (allocate K
//! pages, write them, free K older ones, write the protected root, commit);
//! `t4` opens the file `Deferred` and runs 100 transactions of one fresh
//! page, written (then one more that frees them). `sub-K` runs 100
//! transactions that each allocate K sub-pages of 128 bytes, write them and
//! free the K of the transaction before (then one more that frees the last
//! K). The first write after an
//! open syncs once more (the root open took is made durable first), and
//! dropping a `Deferred` pager syncs: strace's total counts both, the
//! pager's own count printed per phase counts the first.

//!
//! `PARTS` lists the parts to run, comma-separated: p1 (with P2), t3, t4,
//! t5, p3, p4, r4, r6, process_readers, space, sub_pages, group, p5; all by
//! default.

mod group;
mod open;
mod page_access;
mod performance;
mod process_readers;
mod readers;
mod report;
mod space;
mod strace;
mod sub_pages;
#[path = "../support/mod.rs"]
mod support;
mod transactions;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use report::{Parts, Row};
use support::{positional_args, quick_mode, BoxResult};

// ---------------------------------------------------------------------------
// Configuration.

pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;

/// Sizes and repetitions; `QUICK=1` shrinks the big files.
pub struct Config {
    quick: bool,
    /// P1/P2: interleaved rounds of pwrite+fdatasync, alloc, free, commit.
    p1_rounds: usize,
    /// P3: pages allocated in the large file, and the bulk chunk building it.
    p3_large: u64,
    p3_chunk: u64,
    p3_rounds: usize,
    bulk_reps: usize,
    /// P4: pages in the read loops.
    p4_pages: u64,
    p4_samples: usize,
    /// P5: pages allocated (1 KiB pages), build chunk, open repetitions.
    p5_pages: u64,
    p5_chunk: u64,
    p5_warm_opens: usize,
    p5_cold_opens: usize,
}

impl Config {
    fn new(quick: bool) -> Config {
        Config {
            quick,
            p1_rounds: if quick { 150 } else { 500 },
            p3_large: if quick { 1 << 20 } else { 1 << 24 },
            p3_chunk: if quick { 1 << 18 } else { 1 << 20 },
            p3_rounds: if quick { 150 } else { 400 },
            bulk_reps: if quick { 3 } else { 7 },
            p4_pages: if quick { 1 << 14 } else { 1 << 16 },
            p4_samples: if quick { 31 } else { 101 },
            p5_pages: if quick { 1 << 22 } else { 1 << 28 },
            p5_chunk: if quick { 1 << 20 } else { 1 << 24 },
            p5_warm_opens: 5,
            p5_cold_opens: 3,
        }
    }
}

fn base_dir(args: &[String]) -> PathBuf {
    if let Some(dir) = args.first() {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("PAGER_FIGURES_DIR") {
        return PathBuf::from(dir);
    }
    match option_env!("CARGO_TARGET_TMPDIR") {
        Some(dir) if Path::new(dir).is_dir() => PathBuf::from(dir),
        _ => PathBuf::from("."),
    }
}

// ---------------------------------------------------------------------------
// File system checks.

/// Bytes available to this process on the file system of `dir`.
fn fs_available(dir: &Path) -> BoxResult<u64> {
    let c_path = CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: `statvfs` is a plain C struct for which all-zero bytes are a
    // valid value.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated string and `vfs` a valid,
    // writable `statvfs` that outlives the call.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut vfs) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(vfs.f_bavail as u64 * vfs.f_frsize as u64)
}

/// Whether the part named `name` runs: all by default, else those listed in
/// `PARTS` (comma-separated: p1, t3, t4, t5, p3, p4, r4, r6,
/// process_readers, space, sub_pages, group, p5; P2 runs with P1).
fn enabled(name: &str) -> bool {
    match std::env::var("PARTS") {
        Ok(list) if !list.trim().is_empty() => {
            list.split(',').any(|p| p.trim().eq_ignore_ascii_case(name))
        }
        _ => true,
    }
}

// ---------------------------------------------------------------------------
// Main.

pub fn main() -> BoxResult<()> {
    let args = positional_args();
    match args.first().map(String::as_str) {
        Some("open-child") => {
            let path = args.get(1).ok_or("open-child PATH [warm|cold]")?;
            let cold = args.get(2).is_some_and(|m| m == "cold");
            return match args.get(3).map(String::as_str) {
                Some("4096") => open::open_child::<4096>(Path::new(path), cold),
                _ => open::open_child::<1024>(Path::new(path), cold),
            };
        }
        Some("live-reader-child") => {
            const USAGE: &str = "live-reader-child PATH MILLIS FIRST live|paced|plain";
            let path = args.get(1).ok_or(USAGE)?;
            let millis = args.get(2).ok_or(USAGE)?.parse()?;
            let first = args.get(3).ok_or(USAGE)?.parse()?;
            let mode = args
                .get(4)
                .and_then(|m| process_readers::ReadMode::from_name(m));
            let mode = mode.ok_or(USAGE)?;
            return process_readers::live_reader_child(Path::new(path), millis, first, mode);
        }
        Some("t5-child") => {
            let path = args.get(1).ok_or("t5-child PATH kill|close")?;
            let clean_close = args.get(2).is_some_and(|m| m == "close");
            return transactions::t5_child(Path::new(path), clean_close);
        }
        Some("strace-prep") => {
            let path = args.get(1).ok_or("strace-prep FILE")?;
            return strace::prep(Path::new(path));
        }
        Some("strace-ops") => {
            let phase = args.get(2).map(String::as_str).unwrap_or("all");
            return match args.get(1) {
                Some(path) => strace::ops(Path::new(path), phase),
                None => {
                    eprintln!(
                        "no FILE given: preparing one here, so the counts include \
                         its creation (use strace-prep FILE first to leave it out)"
                    );
                    let dir = tempfile::Builder::new()
                        .prefix("pager-strace-")
                        .tempdir_in(base_dir(&[]))?;
                    let path = dir.path().join("strace.pages");
                    strace::prep(&path)?;
                    strace::ops(&path, phase)
                }
            };
        }
        _ => {}
    }

    let cfg = Config::new(quick_mode());
    let base = base_dir(&args);
    std::fs::create_dir_all(&base)?;
    let tmp = tempfile::Builder::new()
        .prefix("pager-figures-")
        .tempdir_in(&base)?;
    let dir = tmp.path();
    let avail = fs_available(dir)?;
    let fs_kind = support::fs_type(dir);
    println!(
        "# mappedpages figures ({} mode)\n\nfiles in one temporary directory on a {fs_kind} \
         file system with {:.1} GiB available; {} CPUs",
        if cfg.quick { "QUICK" } else { "full" },
        avail as f64 / GIB as f64,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    // The big files are sparse; what needs real blocks is the preallocated
    // 4 GiB of the alloc_bulk figure, the read-loop files and metadata.
    let needed = 10 * GIB;
    if avail < needed {
        return Err(format!(
            "{:.1} GiB available, the run needs about {} GiB",
            avail as f64 / GIB as f64,
            needed / GIB
        )
        .into());
    }
    println!(
        "medians of repeated, interleaved measurements; the machine may be shared, \
         so single figures are noisy and the p10/p90 are printed too"
    );

    let run_start = Instant::now();
    let mut parts = Parts(Vec::new());
    // Each part: its name in `PARTS`, its heading, and what measures it
    // and turns the figures into rows, run in this order.
    type Part<'a> = (
        &'a str,
        &'a str,
        Box<dyn FnOnce() -> BoxResult<Vec<Row>> + 'a>,
    );
    let all_parts: Vec<Part> = vec![
        (
            "p1",
            "P1/P2: alloc, free, protected commit vs pwrite+fdatasync",
            Box::new(|| Ok(performance::p1_rows(&performance::run_p1(&cfg, dir)?))),
        ),
        (
            "t3",
            "T3: transactions vs the same raw writes + fdatasync",
            Box::new(|| Ok(transactions::t3_rows(&transactions::run_t3(&cfg, dir)?))),
        ),
        (
            "t4",
            "T4: Deferred commits vs pwrite; open of a small file",
            Box::new(|| Ok(transactions::t4_rows(&transactions::run_t4(&cfg, dir)?))),
        ),
        (
            "t5",
            "T5: open after Deferred commits, after a kill and a clean close",
            Box::new(|| Ok(transactions::t5_rows(&transactions::run_t5(dir)?))),
        ),
        (
            "p3",
            "P3: allocation cost vs file size; alloc_bulk",
            Box::new(|| Ok(performance::p3_rows(&cfg, &performance::run_p3(&cfg, dir)?))),
        ),
        (
            "p4",
            "P4: read loops vs raw memmap2",
            Box::new(|| Ok(page_access::p4_rows(&page_access::run_p4(&cfg, dir)?))),
        ),
        (
            "r4",
            "R4: random reads through a snapshot vs &Pager",
            Box::new(|| Ok(readers::r4_rows(&readers::run_r4(&cfg, dir)?))),
        ),
        (
            "r6",
            "R6: readers while a writer commits",
            Box::new(|| Ok(readers::r6_rows(&readers::run_r6(&cfg, dir)?))),
        ),
        (
            "process_readers",
            "Readers in other processes (LiveReader) beside the writer",
            Box::new(|| {
                Ok(process_readers::process_reader_rows(
                    &process_readers::run_process_readers(&cfg, dir)?,
                ))
            }),
        ),
        (
            "space",
            "Space held by an old snapshot",
            Box::new(|| space::run_space(dir)),
        ),
        (
            "sub_pages",
            "Durable sub-pages vs whole pages: transactions, snapshot reads, space after churn",
            Box::new(|| {
                Ok(sub_pages::sub_page_rows(sub_pages::run_sub_pages(
                    &cfg, dir,
                )?))
            }),
        ),
        (
            "group",
            "Group commit: durable commits from 1 to 64 threads",
            Box::new(|| Ok(group::group_rows(&group::run_group(&cfg, dir)?))),
        ),
        (
            "p5",
            "P5: open of a large file",
            Box::new(|| Ok(open::p5_rows(&cfg, &open::run_p5(&cfg, dir)?))),
        ),
    ];
    let mut rows = Vec::new();
    for (name, heading, run) in all_parts {
        if enabled(name) {
            rows.extend(parts.time(heading, run)?);
        }
    }
    drop(tmp);

    println!("\n## Results\n");
    println!("| measurement | median | baseline median | ratio | contract target | met |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            r.measurement, r.median, r.baseline, r.ratio, r.target, r.met
        );
    }
    println!(
        "\nP1/P2 baseline: one 4 KiB pwrite + fdatasync overwriting a block of a written, \
         preallocated file in the same directory. T3 baseline: the same transaction's \
         k+1 one-page pwrites (k in a row, the root's apart from them) + one fdatasync, overwriting written \
         blocks; its pages are reused (freed by an earlier transaction), new to the file \
         in blocks fallocate reserved (the pager's growth), or new in blocks holding \
         written zeros. T4 baseline: one 4 KiB pwrite, no sync. P4 baseline: the same loop over a raw \
         memmap2 map of the pager's own file (a second mapping of the same pages). Times are medians; the \
         figures above give p10/p90."
    );
    println!("\n## Wall time\n");
    for (name, took) in &parts.0 {
        println!("- {name}: {:.1} s", took.as_secs_f64());
    }
    println!("- total: {:.1} s", run_start.elapsed().as_secs_f64());
    Ok(())
}

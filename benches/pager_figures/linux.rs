//! The figures of the contract's performance section (P1 to P5), of its
//! transactions (T3, T4) and of its readers (R4, R6, and the pages an old
//! snapshot holds), measured side by side in one run, on files in one
//! directory.
//!
//! A plain benchmark binary (no harness): every figure is the median of its
//! own repetitions, and the pager's operations are interleaved with their
//! baselines so that drift on a busy machine hits both alike.
//!
//! ```text
//! cargo bench --bench pager_figures                # full sizes (default)
//! QUICK=1 cargo bench --bench pager_figures        # small sizes, seconds
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
//! page, written (then one more that frees them). The first write after an
//! open syncs once more (the root open took is made durable first), and
//! dropping a `Deferred` pager syncs: strace's total counts both, the
//! pager's own count printed per phase counts the first.

use std::alloc::{GlobalAlloc, Layout, System};
use std::error::Error;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use mappedpages::{ConcurrentPager, Durability, PageId, Pager, ProtectedPageId, Snapshot};

type BoxResult<T> = Result<T, Box<dyn Error>>;

// ---------------------------------------------------------------------------
// Heap accounting: what the pager holds after `open`, and its peak.

struct CountingAlloc;

static HEAP_NOW: AtomicUsize = AtomicUsize::new(0);
static HEAP_PEAK: AtomicUsize = AtomicUsize::new(0);

fn note_alloc(size: usize) {
    let now = HEAP_NOW.fetch_add(size, Ordering::Relaxed) + size;
    HEAP_PEAK.fetch_max(now, Ordering::Relaxed);
}

fn note_free(size: usize) {
    HEAP_NOW.fetch_sub(size, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator, whose
// contract is the one `GlobalAlloc` requires; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded under the caller's guarantees for `layout`.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            note_alloc(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded under the caller's guarantees for `layout`.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            note_alloc(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator with this `layout`.
        unsafe { System.dealloc(ptr, layout) };
        note_free(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with this `layout`; the
        // caller guarantees `new_size` is valid for it.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            note_alloc(new_size);
            note_free(layout.size());
        }
        new
    }
}

#[global_allocator]
static GLOBAL: CountingAlloc = CountingAlloc;

// ---------------------------------------------------------------------------
// Configuration.

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Sizes and repetitions; `QUICK=1` shrinks the big files.
struct Config {
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

/// Positional arguments; the harness flags cargo passes (`--bench`) are
/// ignored.
fn positional_args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
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
// Statistics and formatting.

fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

fn fmt_ns(value: f64) -> String {
    if value >= 1e9 {
        format!("{:.2} s", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.2} ms", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} µs", value / 1e3)
    } else {
        format!("{value:.2} ns")
    }
}

fn fmt_bytes(value: f64) -> String {
    format!("{:.1} MiB", value / MIB as f64)
}

/// One distribution, described in a line.
fn describe(name: &str, values: &[f64]) -> String {
    format!(
        "{name}: median {}, p10 {}, p90 {}, n = {}",
        fmt_ns(median(values)),
        fmt_ns(percentile(values, 0.1)),
        fmt_ns(percentile(values, 0.9)),
        values.len()
    )
}

/// Sync calls per operation, summarised: "1" or "1 (max 2, 3 of 500 > 1)".
fn describe_syncs(counts: &[u64]) -> String {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let med = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    let max = sorted.last().copied().unwrap_or(0);
    if max == med {
        format!("{med} (every call of {})", counts.len())
    } else {
        let above = counts.iter().filter(|&&c| c > med).count();
        format!(
            "median {med}, max {max} ({above} of {} calls above the median)",
            counts.len()
        )
    }
}

fn median_u64(counts: &[u64]) -> u64 {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// One row of the closing table.
struct Row {
    measurement: String,
    median: String,
    baseline: String,
    ratio: String,
    target: String,
    met: String,
}

fn yes_no(ok: bool) -> String {
    if ok { "yes" } else { "no" }.to_string()
}

fn row(
    measurement: impl Into<String>,
    median: impl Into<String>,
    baseline: impl Into<String>,
    ratio: impl Into<String>,
    target: impl Into<String>,
    met: impl Into<String>,
) -> Row {
    Row {
        measurement: measurement.into(),
        median: median.into(),
        baseline: baseline.into(),
        ratio: ratio.into(),
        target: target.into(),
        met: met.into(),
    }
}

fn ratio_row(
    measurement: &str,
    value: f64,
    base: f64,
    limit: f64,
    target: &str,
    unit: fn(f64) -> String,
) -> Row {
    let ratio = value / base;
    row(
        measurement,
        unit(value),
        unit(base),
        format!("{ratio:.3}×"),
        target,
        yes_no(ratio <= limit),
    )
}

/// Wall time of each part of the run.
struct Parts(Vec<(String, Duration)>);

impl Parts {
    fn time<T>(&mut self, name: &str, f: impl FnOnce() -> BoxResult<T>) -> BoxResult<T> {
        println!("\n## {name}");
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        println!("({name} took {:.1} s)", took.as_secs_f64());
        self.0.push((name.to_string(), took));
        out
    }
}

// ---------------------------------------------------------------------------
// File system checks.

fn fs_space(dir: &Path) -> BoxResult<(u64, String)> {
    let c_path = CString::new(dir.as_os_str().as_bytes())?;
    // SAFETY: `statvfs` and `statfs` are plain C structs for which all-zero
    // bytes are a valid value.
    let mut vfs: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a NUL-terminated string and `vfs` a valid,
    // writable `statvfs` that outlives the call.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut vfs) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    // SAFETY: as above.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above, for `statfs`.
    if unsafe { libc::statfs(c_path.as_ptr(), &mut fs) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let avail = vfs.f_bavail as u64 * vfs.f_frsize as u64;
    let kind = match fs.f_type as i64 {
        0xEF53 => "ext2/3/4".to_string(),
        0x5846_5342 => "xfs".to_string(),
        0x9123_683E => "btrfs".to_string(),
        0x0102_1994 => "tmpfs".to_string(),
        0x794C_7630 => "overlayfs".to_string(),
        other => format!("type {other:#x}"),
    };
    Ok((avail, kind))
}

/// Bytes the file really occupies on disk (sparse files: far below its size).
fn allocated_bytes(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path)
        .map(|m| m.blocks() * 512)
        .unwrap_or(0)
}

/// Drops the file's clean pages from the page cache.
fn evict_from_cache(path: &Path) -> BoxResult<()> {
    let file = File::open(path)?;
    // SAFETY: the descriptor is open and owned by `file` for the call; the
    // advice reads no memory of ours.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc).into());
    }
    Ok(())
}

/// A field of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// P1 and P2: one alloc, one free, one protected commit vs pwrite + fdatasync.

struct P1Results {
    base: Vec<f64>,
    alloc: Vec<f64>,
    free: Vec<f64>,
    commit: Vec<f64>,
    alloc_syncs: Vec<u64>,
    free_syncs: Vec<u64>,
    commit_syncs: Vec<u64>,
}

const BASE_BLOCKS: u64 = 256;

/// A file of real (written, synced) blocks, so a 4 KiB overwrite plus
/// `fdatasync` flushes one data block and no allocation metadata.
fn baseline_file(path: &Path) -> BoxResult<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)?;
    let block = vec![0x5Au8; 4096];
    for i in 0..BASE_BLOCKS {
        file.write_at(&block, i * 4096)?;
    }
    file.sync_all()?;
    Ok(file)
}

fn baseline_op(file: &File, i: u64, block: &mut [u8]) -> BoxResult<Duration> {
    block[0] = i as u8;
    let start = Instant::now();
    file.write_at(block, (i % BASE_BLOCKS) * 4096)?;
    file.sync_data()?;
    Ok(start.elapsed())
}

fn run_p1(cfg: &Config, dir: &Path) -> BoxResult<P1Results> {
    let base_file = baseline_file(&dir.join("baseline.bin"))?;
    let mut pager = Pager::<4096>::options()
        .durability(Durability::Immediate)
        .initial_pages(8192)
        .create(dir.join("p1.pages"))?;
    let protected = pager.alloc_protected()?;
    let mut block = vec![0u8; 4096];
    let mut live: std::collections::VecDeque<PageId<4096>> = Default::default();
    live.push_back(pager.alloc()?);

    let mut r = P1Results {
        base: Vec::new(),
        alloc: Vec::new(),
        free: Vec::new(),
        commit: Vec::new(),
        alloc_syncs: Vec::new(),
        free_syncs: Vec::new(),
        commit_syncs: Vec::new(),
    };
    let warmup = 30;
    for round in 0..warmup + cfg.p1_rounds {
        let record = round >= warmup;
        // Rotate the order of the four operations round by round.
        for k in 0..4 {
            match (k + round) % 4 {
                0 => {
                    let t = baseline_op(&base_file, round as u64, &mut block)?;
                    if record {
                        r.base.push(ns(t));
                    }
                }
                1 => {
                    let before = pager.sync_count();
                    let start = Instant::now();
                    let id = pager.alloc()?;
                    let t = start.elapsed();
                    let syncs = pager.sync_count() - before;
                    live.push_back(id);
                    if record {
                        r.alloc.push(ns(t));
                        r.alloc_syncs.push(syncs);
                    }
                }
                2 => {
                    let Some(id) = live.pop_front() else { continue };
                    let before = pager.sync_count();
                    let start = Instant::now();
                    pager.free(id)?;
                    let t = start.elapsed();
                    let syncs = pager.sync_count() - before;
                    if record {
                        r.free.push(ns(t));
                        r.free_syncs.push(syncs);
                    }
                }
                _ => {
                    let before = pager.sync_count();
                    let start = Instant::now();
                    let mut writer = protected.get_mut(&mut pager)?;
                    writer.page_mut().as_bytes_mut()[0] = round as u8;
                    writer.commit()?;
                    let t = start.elapsed();
                    let syncs = pager.sync_count() - before;
                    if record {
                        r.commit.push(ns(t));
                        r.commit_syncs.push(syncs);
                    }
                }
            }
        }
    }
    if protected.get(&pager)?.as_bytes()[0] != (warmup + cfg.p1_rounds - 1) as u8 {
        return Err("protected page does not hold its last commit".into());
    }
    println!("{}", describe("pwrite 4 KiB + fdatasync", &r.base));
    println!("{}", describe("alloc (Immediate)", &r.alloc));
    println!("{}", describe("free (Immediate)", &r.free));
    println!("{}", describe("protected write 1 byte + commit", &r.commit));
    println!("syncs per alloc: {}", describe_syncs(&r.alloc_syncs));
    println!("syncs per free: {}", describe_syncs(&r.free_syncs));
    println!(
        "syncs per protected commit: {}",
        describe_syncs(&r.commit_syncs)
    );
    Ok(r)
}

// ---------------------------------------------------------------------------
// T3 and T4: transactions against raw writes of the same pages.

/// The transaction sizes of T3.
const T3_KS: [usize; 3] = [1, 16, 256];

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
    pager: Pager<4096>,
    root: mappedpages::ProtectedPageId<4096>,
    placement: Placement,
    k: usize,
    /// Reused: the pages the previous transaction wrote. New pages: the
    /// never-written pool, freed k at a time from the front.
    older: std::collections::VecDeque<PageId<4096>>,
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
        let mut pager = Pager::<4096>::options()
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
    /// pages, point the protected root at the first new page, commit.
    /// Returns the commit's time and sync calls.
    fn commit(&mut self) -> BoxResult<(Duration, u64)> {
        self.fill = self.fill.wrapping_add(1);
        let older: Vec<PageId<4096>> = self.older.drain(..self.k).collect();
        let before = self.pager.sync_count();
        let start = Instant::now();
        let mut txn = self.pager.transaction()?;
        let ids = txn.alloc_bulk(self.k)?;
        for &id in &ids {
            txn.get_mut(id)?.as_bytes_mut().fill(self.fill);
        }
        txn.free_bulk(older)?;
        txn.write_protected(self.root)?.as_bytes_mut()[..8]
            .copy_from_slice(&ids[0].0.to_le_bytes());
        txn.commit()?;
        let t = start.elapsed();
        let syncs = self.pager.sync_count() - before;
        if self.placement == Placement::Reused {
            self.older.extend(ids);
        }
        Ok((t, syncs))
    }
}

/// The raw work of a T3 transaction: k+1 one-page `pwrite`s and one
/// `fdatasync`: k pages in a row and one page for the root, the file's
/// first, apart from them (next to the data it would merge with it into
/// one disk write, which the pager's root, in a page of its own, does not).
struct RawT3 {
    file: File,
    k: usize,
    /// Overwrites: regions of written blocks used in turn. Fresh: the next
    /// never-written region of a reserved file.
    fresh: bool,
    next: u64,
    regions: u64,
    block: Vec<u8>,
}

impl RawT3 {
    const REGIONS: u64 = 4;
    /// The root page and a gap page come before the regions.
    const DATA_START: u64 = 2 * 4096;

    fn create(path: &Path, k: usize, commits: usize, fresh: bool) -> BoxResult<RawT3> {
        let region = k as u64 * 4096;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        let regions = if fresh {
            let regions = commits as u64;
            let len = Self::DATA_START + regions * region;
            let len = libc::off64_t::try_from(len)?;
            // SAFETY: fallocate64 reads no memory of ours; the descriptor is
            // open for writing and owned by `file` for the call.
            let rc = unsafe { libc::fallocate64(file.as_raw_fd(), 0, 0, len) };
            if rc != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
            // The root page is overwritten every time: written, like the
            // pager's root pages.
            file.write_at(&[0x5Au8; 4096], 0)?;
            file.sync_all()?;
            regions
        } else {
            let len = Self::DATA_START + Self::REGIONS * region;
            file.write_at(&vec![0x5Au8; len as usize], 0)?;
            file.sync_all()?;
            Self::REGIONS
        };
        Ok(RawT3 {
            file,
            k,
            fresh,
            next: 0,
            regions,
            block: vec![0u8; 4096],
        })
    }

    fn commit(&mut self) -> BoxResult<Duration> {
        if self.fresh && self.next >= self.regions {
            return Err("the fresh raw file is used up".into());
        }
        let region = self.next % self.regions;
        self.next += 1;
        self.block[0] = self.next as u8;
        let base = Self::DATA_START + region * self.k as u64 * 4096;
        let start = Instant::now();
        for i in 0..self.k as u64 {
            self.file.write_at(&self.block, base + i * 4096)?;
        }
        self.file.write_at(&self.block, 0)?;
        self.file.sync_data()?;
        Ok(start.elapsed())
    }
}

struct T3Case {
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

fn t3_rounds(cfg: &Config, k: usize) -> usize {
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

fn run_t3(cfg: &Config, dir: &Path) -> BoxResult<Vec<T3Case>> {
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

struct T4Results {
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
fn run_t4(cfg: &Config, dir: &Path) -> BoxResult<T4Results> {
    let cycles = if cfg.quick { 1 } else { 3 };
    let raw_file = baseline_file(&dir.join("t4-raw.bin"))?;
    let path = dir.join("t4.pages");
    let mut pager = Pager::<4096>::options()
        .durability(Durability::Deferred)
        .initial_pages(((cycles + 1) * T4_CYCLE + 4096) as u64)
        .create(&path)?;
    let mut block = vec![0u8; 4096];
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
                    block[0] = pos as u8;
                    let start = Instant::now();
                    raw_file.write_at(&block, (pos as u64 % BASE_BLOCKS) * 4096)?;
                    let t = start.elapsed();
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

/// A ratio shown with no target to meet.
fn info_ratio_row(measurement: &str, value: f64, base: f64, note: &str) -> Row {
    let mut r = ratio_row(measurement, value, base, f64::INFINITY, note, fmt_ns);
    r.met = "—".into();
    r
}

fn t3_rows(cases: &[T3Case]) -> Vec<Row> {
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

fn t4_rows(t4: &T4Results) -> Vec<Row> {
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

// ---------------------------------------------------------------------------
// P3: alloc + commit at 2^10 vs 2^24 allocated pages; alloc_bulk(1 << 20).

struct P3Results {
    small_alloc: Vec<f64>,
    large_alloc: Vec<f64>,
    small_free: Vec<f64>,
    large_free: Vec<f64>,
    bulk: Vec<f64>,
    bulk_syncs: Vec<u64>,
    bulk_grow: Vec<f64>,
}

/// Allocates `total` pages in bulk chunks, dropping the returned ids.
fn build_allocated<const PS: usize>(
    pager: &mut Pager<PS>,
    total: u64,
    chunk: u64,
) -> BoxResult<Vec<f64>> {
    let mut times = Vec::new();
    let mut done = 0;
    while done < total {
        let n = chunk.min(total - done);
        let start = Instant::now();
        let ids = pager.alloc_bulk(n as usize)?;
        let t = start.elapsed();
        drop(ids);
        times.push(ns(t));
        done += n;
    }
    Ok(times)
}

fn run_p3(cfg: &Config, dir: &Path) -> BoxResult<P3Results> {
    let small_path = dir.join("p3-small.pages");
    let large_path = dir.join("p3-large.pages");
    let options = Pager::<4096>::options()
        .durability(Durability::Immediate)
        .preallocate(false);
    let mut small = options.create(&small_path)?;
    small.alloc_bulk(1 << 10)?;
    let mut large = options.create(&large_path)?;
    let build_start = Instant::now();
    let chunks = build_allocated(&mut large, cfg.p3_large, cfg.p3_chunk)?;
    println!(
        "built {} allocated 4 KiB pages in {} bulk calls of {}: {:.2} s \
         (per call: median {}, max {}); file {} GiB apparent, {} on disk",
        large.allocated_page_count(),
        chunks.len(),
        cfg.p3_chunk,
        build_start.elapsed().as_secs_f64(),
        fmt_ns(median(&chunks)),
        fmt_ns(percentile(&chunks, 1.0)),
        large.page_count() * 4096 / GIB,
        fmt_bytes(allocated_bytes(&large_path) as f64),
    );

    let mut r = P3Results {
        small_alloc: Vec::new(),
        large_alloc: Vec::new(),
        small_free: Vec::new(),
        large_free: Vec::new(),
        bulk: Vec::new(),
        bulk_syncs: Vec::new(),
        bulk_grow: Vec::new(),
    };
    // Warm-up also takes the large file through its next growth step.
    let warmup = 30;
    for round in 0..warmup + cfg.p3_rounds {
        let record = round >= warmup;
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let pager = if which == 0 { &mut small } else { &mut large };
            let start = Instant::now();
            let id = pager.alloc()?;
            let t_alloc = start.elapsed();
            let start = Instant::now();
            pager.free(id)?;
            let t_free = start.elapsed();
            if record {
                let (a, f) = if which == 0 {
                    (&mut r.small_alloc, &mut r.small_free)
                } else {
                    (&mut r.large_alloc, &mut r.large_free)
                };
                a.push(ns(t_alloc));
                f.push(ns(t_free));
            }
        }
    }
    println!(
        "{}",
        describe("alloc+commit, 2^10 pages allocated", &r.small_alloc)
    );
    println!(
        "{}",
        describe(
            &format!(
                "alloc+commit, 2^{} pages allocated",
                cfg.p3_large.trailing_zeros()
            ),
            &r.large_alloc
        )
    );
    println!(
        "{}",
        describe("free+commit, 2^10 pages allocated", &r.small_free)
    );
    println!(
        "{}",
        describe(
            &format!(
                "free+commit, 2^{} pages allocated",
                cfg.p3_large.trailing_zeros()
            ),
            &r.large_free
        )
    );
    drop(small);
    drop(large);
    std::fs::remove_file(&small_path)?;
    std::fs::remove_file(&large_path)?;

    // alloc_bulk(1 << 20) on a file that already has room: one commit.
    let bulk_path = dir.join("p3-bulk.pages");
    let mut pager = Pager::<4096>::options()
        .durability(Durability::Immediate)
        .initial_pages((1 << 20) + 4096)
        .create(&bulk_path)?;
    for _ in 0..cfg.bulk_reps {
        let before = pager.sync_count();
        let start = Instant::now();
        let ids = pager.alloc_bulk(1 << 20)?;
        let t = start.elapsed();
        r.bulk_syncs.push(pager.sync_count() - before);
        r.bulk.push(ns(t));
        pager.free_bulk(ids)?;
    }
    drop(pager);
    std::fs::remove_file(&bulk_path)?;
    // The same from a new file of default size: growth included.
    for rep in 0..cfg.bulk_reps.min(3) {
        let path = dir.join(format!("p3-bulk-grow-{rep}.pages"));
        let mut pager = Pager::<4096>::create(&path)?;
        let start = Instant::now();
        let ids = pager.alloc_bulk(1 << 20)?;
        r.bulk_grow.push(ns(start.elapsed()));
        drop(ids);
        drop(pager);
        std::fs::remove_file(&path)?;
    }
    println!(
        "{}",
        describe("alloc_bulk(1 << 20), file already large enough", &r.bulk)
    );
    println!(
        "syncs per alloc_bulk(1 << 20): {}",
        describe_syncs(&r.bulk_syncs)
    );
    println!(
        "{}",
        describe(
            "alloc_bulk(1 << 20) on a new default-size file (growth and fallocate included)",
            &r.bulk_grow
        )
    );
    Ok(r)
}

// ---------------------------------------------------------------------------
// P4: read loops through `PageId::get` vs a raw memmap2 slice.

#[inline(always)]
fn head(bytes: &[u8]) -> u64 {
    bytes
        .first_chunk::<8>()
        .map_or(0, |c| u64::from_le_bytes(*c))
}

#[inline(always)]
fn sum_words(bytes: &[u8]) -> u64 {
    let (words, _) = bytes.as_chunks::<8>();
    words
        .iter()
        .fold(0u64, |acc, w| acc.wrapping_add(u64::from_le_bytes(*w)))
}

#[inline(never)]
fn pager_head_loop<const PS: usize>(pager: &Pager<PS>, ids: &[PageId<PS>]) -> u64 {
    let mut sum = 0u64;
    for id in ids {
        let page = id.get(pager).expect("an allocated page");
        sum = sum.wrapping_add(head(page.as_bytes()));
    }
    sum
}

#[inline(never)]
fn raw_head_loop<const PS: usize>(map: &[u8], ids: &[PageId<PS>]) -> u64 {
    let mut sum = 0u64;
    for id in ids {
        let start = id.0 as usize * PS;
        let page = &map[start..start + PS];
        sum = sum.wrapping_add(head(page));
    }
    sum
}

#[inline(never)]
fn pager_full_loop<const PS: usize>(pager: &Pager<PS>, ids: &[PageId<PS>]) -> u64 {
    let mut sum = 0u64;
    for id in ids {
        let page = id.get(pager).expect("an allocated page");
        sum = sum.wrapping_add(sum_words(page.as_bytes()));
    }
    sum
}

#[inline(never)]
fn raw_full_loop<const PS: usize>(map: &[u8], ids: &[PageId<PS>]) -> u64 {
    let mut sum = 0u64;
    for id in ids {
        let start = id.0 as usize * PS;
        let page = &map[start..start + PS];
        sum = sum.wrapping_add(sum_words(page));
    }
    sum
}

#[inline(never)]
fn pager_write_loop<const PS: usize>(pager: &mut Pager<PS>, ids: &[PageId<PS>], value: u64) {
    for id in ids {
        let page = id.get_mut(pager).expect("an allocated page");
        page.as_bytes_mut()[..8].copy_from_slice(&value.to_le_bytes());
    }
}

#[inline(never)]
fn raw_write_loop<const PS: usize>(map: &mut [u8], ids: &[PageId<PS>], value: u64) {
    for id in ids {
        let start = id.0 as usize * PS;
        let page = &mut map[start..start + PS];
        page[..8].copy_from_slice(&value.to_le_bytes());
    }
}

struct LoopPair {
    name: String,
    pager: Vec<f64>,
    raw: Vec<f64>,
}

/// Times `pager_pass` and `raw_pass` alternately, `samples` times each, and
/// returns the time per page.
fn pair(
    name: String,
    samples: usize,
    pages_per_pass: usize,
    pager_pass: impl FnMut() -> u64,
    raw_pass: impl FnMut() -> u64,
) -> BoxResult<LoopPair> {
    pair_named(
        name,
        ("pager", "raw memmap2"),
        samples,
        pages_per_pass,
        pager_pass,
        raw_pass,
    )
}

/// [`pair`], the two loops printed under the names in `labels`.
fn pair_named(
    name: String,
    labels: (&str, &str),
    samples: usize,
    pages_per_pass: usize,
    mut pager_pass: impl FnMut() -> u64,
    mut raw_pass: impl FnMut() -> u64,
) -> BoxResult<LoopPair> {
    let mut out = LoopPair {
        name,
        pager: Vec::new(),
        raw: Vec::new(),
    };
    // Warm both (page tables, caches), and check they read the same bytes.
    let (a, b) = (pager_pass(), raw_pass());
    if a != b {
        return Err(format!(
            "{}: {} and {} loops disagree ({a} vs {b})",
            out.name, labels.0, labels.1
        )
        .into());
    }
    for s in 0..samples {
        for which in if s % 2 == 0 { [0, 1] } else { [1, 0] } {
            let start = Instant::now();
            let sum = if which == 0 { pager_pass() } else { raw_pass() };
            let t = ns(start.elapsed()) / pages_per_pass as f64;
            black_box(sum);
            if which == 0 {
                out.pager.push(t);
            } else {
                out.raw.push(t);
            }
        }
    }
    println!(
        "{}: {} {} / page (p10 {}, p90 {}), {} {} / page (p10 {}, p90 {}), \
         {} samples each",
        out.name,
        labels.0,
        fmt_ns(median(&out.pager)),
        fmt_ns(percentile(&out.pager, 0.1)),
        fmt_ns(percentile(&out.pager, 0.9)),
        labels.1,
        fmt_ns(median(&out.raw)),
        fmt_ns(percentile(&out.raw, 0.1)),
        fmt_ns(percentile(&out.raw, 0.9)),
        samples
    );
    Ok(out)
}

fn run_p4(cfg: &Config, dir: &Path) -> BoxResult<Vec<LoopPair>> {
    const PS: usize = 4096;
    let n = cfg.p4_pages;
    let pager_path = dir.join("p4.pages");
    let mut pager = Pager::<PS>::options()
        .initial_pages(n + 64)
        .create(&pager_path)?;
    let ids = pager.alloc_bulk(n as usize)?;
    for id in &ids {
        let bytes = id.get_mut(&mut pager)?.as_bytes_mut();
        bytes.fill(id.0 as u8);
        bytes[..8].copy_from_slice(&id.0.to_le_bytes());
    }
    pager.sync()?;

    // The baseline maps the very same file a second time, so both loops read
    // the same page-cache pages (a separately written file of the same size
    // and bytes can sit in differently sized folios and read faster or
    // slower for that reason alone). Writes through this map touch only the
    // first bytes of allocated regular pages, which belong to the caller.
    let raw_file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pager_path)?;
    // SAFETY: the bench owns this file; the pager never truncates it while
    // open, and neither map is used to change bytes the other one relies on
    // (the pager reads its own metadata pages only).
    let mut raw = unsafe { memmap2::MmapMut::map_mut(&raw_file)? };
    if raw.len() as u64 != pager.page_count() * PS as u64 {
        return Err("the second map does not cover the whole file".into());
    }

    let hot_pages = 1024.min(ids.len());
    let hot = &ids[..hot_pages];
    let hot_repeat = 200;
    let mut results = Vec::new();

    results.push(pair(
        format!("read first 8 bytes, {hot_pages} pages (hot in cache), x{hot_repeat} per pass"),
        cfg.p4_samples,
        hot_pages * hot_repeat,
        || {
            (0..hot_repeat).fold(0u64, |acc, _| {
                acc.wrapping_add(pager_head_loop(black_box(&pager), black_box(hot)))
            })
        },
        || {
            (0..hot_repeat).fold(0u64, |acc, _| {
                acc.wrapping_add(raw_head_loop(black_box(&raw[..]), black_box(hot)))
            })
        },
    )?);
    results.push(pair(
        format!("read first 8 bytes, all {n} pages"),
        cfg.p4_samples,
        ids.len(),
        || pager_head_loop(black_box(&pager), black_box(&ids)),
        || raw_head_loop(black_box(&raw[..]), black_box(&ids)),
    )?);
    results.push(pair(
        format!("read full 4 KiB pages, all {n} pages"),
        cfg.p4_samples.min(21),
        ids.len(),
        || pager_full_loop(black_box(&pager), black_box(&ids)),
        || raw_full_loop(black_box(&raw[..]), black_box(&ids)),
    )?);

    // get_mut: write the first 8 bytes of the hot pages.
    let mut w = LoopPair {
        name: format!(
            "get_mut: write first 8 bytes, {hot_pages} pages (hot in cache), x{hot_repeat} per pass"
        ),
        pager: Vec::new(),
        raw: Vec::new(),
    };
    for s in 0..cfg.p4_samples + 1 {
        for which in if s % 2 == 0 { [0, 1] } else { [1, 0] } {
            let start = Instant::now();
            for r in 0..hot_repeat {
                if which == 0 {
                    pager_write_loop(black_box(&mut pager), black_box(hot), r as u64);
                } else {
                    raw_write_loop(black_box(&mut raw[..]), black_box(hot), r as u64);
                }
            }
            let t = ns(start.elapsed()) / (hot_pages * hot_repeat) as f64;
            if s == 0 {
                continue; // warm-up
            }
            if which == 0 {
                w.pager.push(t);
            } else {
                w.raw.push(t);
            }
        }
    }
    println!(
        "{}: pager {} / page, raw memmap2 {} / page, {} samples each",
        w.name,
        fmt_ns(median(&w.pager)),
        fmt_ns(median(&w.raw)),
        cfg.p4_samples
    );
    results.push(w);

    drop(raw);
    drop(raw_file);
    drop(pager);
    std::fs::remove_file(&pager_path)?;
    Ok(results)
}

// ---------------------------------------------------------------------------
// P5: open of a file with 2^28 allocated 1 KiB pages, in a child process.

#[derive(Clone, Copy, Debug, Default)]
struct OpenFigures {
    open_ns: f64,
    heap_held: f64,
    heap_peak: f64,
    anon_delta: f64,
    hwm_delta: f64,
    pages: u64,
    allocated: u64,
}

fn open_child<const PS: usize>(path: &Path, cold: bool) -> BoxResult<()> {
    if cold {
        evict_from_cache(path)?;
    }
    let rss_before = status_kib("VmRSS");
    let anon_before = status_kib("RssAnon");
    let heap_before = HEAP_NOW.load(Ordering::Relaxed);
    HEAP_PEAK.store(heap_before, Ordering::Relaxed);
    let start = Instant::now();
    let pager = Pager::<PS>::options().preallocate(false).open(path)?;
    let open_ns = ns(start.elapsed());
    let heap_held = HEAP_NOW.load(Ordering::Relaxed) - heap_before;
    let heap_peak = HEAP_PEAK.load(Ordering::Relaxed) - heap_before;
    let anon_after = status_kib("RssAnon");
    let hwm = status_kib("VmHWM");
    println!(
        "OPEN-CHILD open_ns={open_ns} heap_held={heap_held} heap_peak={heap_peak} \
         anon_delta_kib={} hwm_delta_kib={} pages={} allocated={}",
        anon_after.saturating_sub(anon_before),
        hwm.saturating_sub(rss_before),
        pager.page_count(),
        pager.allocated_page_count(),
    );
    Ok(())
}

fn spawn_open_child(path: &Path, cold: bool) -> BoxResult<OpenFigures> {
    spawn_open_child_sized(path, cold, 1024)
}

/// Opens `path` in a child process, with pages of `page_size` bytes (1024
/// or 4096), and reads back what it measured.
fn spawn_open_child_sized(path: &Path, cold: bool, page_size: usize) -> BoxResult<OpenFigures> {
    let out = Command::new(std::env::current_exe()?)
        .arg("open-child")
        .arg(path)
        .arg(if cold { "cold" } else { "warm" })
        .arg(page_size.to_string())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "open child failed ({}): {stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let line = stdout
        .lines()
        .find(|l| l.starts_with("OPEN-CHILD"))
        .ok_or("open child printed no figures")?;
    let mut f = OpenFigures::default();
    for field in line.split_whitespace().skip(1) {
        let (key, value) = field.split_once('=').ok_or("malformed figure")?;
        let v: f64 = value.parse()?;
        match key {
            "open_ns" => f.open_ns = v,
            "heap_held" => f.heap_held = v,
            "heap_peak" => f.heap_peak = v,
            "anon_delta_kib" => f.anon_delta = v * 1024.0,
            "hwm_delta_kib" => f.hwm_delta = v * 1024.0,
            "pages" => f.pages = v as u64,
            "allocated" => f.allocated = v as u64,
            _ => {}
        }
    }
    Ok(f)
}

struct P5Results {
    warm: Vec<OpenFigures>,
    cold: Vec<OpenFigures>,
}

fn run_p5(cfg: &Config, dir: &Path) -> BoxResult<P5Results> {
    let path = dir.join("p5.pages");
    let mut pager = Pager::<1024>::options()
        .durability(Durability::Immediate)
        .preallocate(false)
        .create(&path)?;
    let start = Instant::now();
    let chunks = build_allocated(&mut pager, cfg.p5_pages, cfg.p5_chunk)?;
    let build = start.elapsed();
    println!(
        "built {} allocated 1 KiB pages in {} bulk calls of {}: {:.2} s \
         (per call: median {}, max {}); file {} GiB apparent, {} on disk",
        pager.allocated_page_count(),
        chunks.len(),
        cfg.p5_chunk,
        build.as_secs_f64(),
        fmt_ns(median(&chunks)),
        fmt_ns(percentile(&chunks, 1.0)),
        pager.page_count() * 1024 / GIB,
        fmt_bytes(allocated_bytes(&path) as f64),
    );
    let start = Instant::now();
    drop(pager);
    println!("drop: {}", fmt_ns(ns(start.elapsed())));

    let mut r = P5Results {
        warm: Vec::new(),
        cold: Vec::new(),
    };
    // One untimed open first, so that every warm open sees the same cache.
    let first = spawn_open_child(&path, false)?;
    println!("first open (not counted): {}", fmt_ns(first.open_ns));
    // Far above the target, repetitions only lengthen the run.
    let (warm_opens, cold_opens) = if first.open_ns > 1e9 {
        println!("open takes over a second: 3 warm and 1 cold repetitions only");
        (3, 1)
    } else {
        (cfg.p5_warm_opens, cfg.p5_cold_opens)
    };
    for _ in 0..warm_opens {
        r.warm.push(spawn_open_child(&path, false)?);
    }
    for _ in 0..cold_opens {
        r.cold.push(spawn_open_child(&path, true)?);
    }
    for (name, runs) in [("warm page cache", &r.warm), ("cold (evicted)", &r.cold)] {
        let times: Vec<f64> = runs.iter().map(|f| f.open_ns).collect();
        println!("{}", describe(&format!("open, {name}"), &times));
    }
    if let Some(f) = r.warm.first() {
        println!(
            "open child: {} pages in the file, {} allocated; heap held {} ({:.3} bits/page), \
             heap peak during open {}, RssAnon +{}, VmHWM - VmRSS(before) {}",
            f.pages,
            f.allocated,
            fmt_bytes(f.heap_held),
            f.heap_held * 8.0 / f.pages as f64,
            fmt_bytes(f.heap_peak),
            fmt_bytes(f.anon_delta),
            fmt_bytes(f.hwm_delta),
        );
    }
    std::fs::remove_file(&path)?;
    Ok(r)
}

// ---------------------------------------------------------------------------
// T5: open after Deferred commits, after a kill and after a clean close.

/// Deferred transactions written before the kill or the close, and the
/// fresh pages each writes: 60 000 pages written since the last sync.
const T5_TXNS: usize = 2000;
const T5_PAGES: usize = 30;

/// Writes the T5 workload to a new file, then either drops the pager (a
/// clean close) or ends the process without running any destructor, as a
/// kill would: nothing synced since the last sync. Runs in a child process.
fn t5_child(path: &Path, clean_close: bool) -> BoxResult<()> {
    let mut pager = Pager::<4096>::options()
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

struct T5Results {
    after_kill: Vec<f64>,
    after_close: Vec<f64>,
}

fn run_t5(dir: &Path) -> BoxResult<T5Results> {
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
            times.push(spawn_open_child_sized(&path, false, 4096)?.open_ns);
        }
        let what = if clean_close { "clean close" } else { "kill" };
        println!("{}", describe(&format!("open after a {what}"), times));
        std::fs::remove_file(&path)?;
    }
    Ok(r)
}

fn t5_rows(t5: &T5Results) -> Vec<Row> {
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

// ---------------------------------------------------------------------------
// strace modes.

const STRACE_OPS: usize = 100;

fn strace_options() -> mappedpages::PagerOptions<4096> {
    Pager::<4096>::options()
        .durability(Durability::Immediate)
        .initial_pages(4096)
}

fn strace_prep(path: &Path) -> BoxResult<()> {
    let mut pager = strace_options().create(path)?;
    let protected = pager.alloc_protected()?;
    let mut writer = protected.get_mut(&mut pager)?;
    writer.page_mut().as_bytes_mut()[0] = 1;
    writer.commit()?;
    // Written pages for the T3 phases' first transactions to free.
    let mut txn = pager.transaction()?;
    for id in txn.alloc_bulk(T3_KS[T3_KS.len() - 1])? {
        txn.get_mut(id)?.as_bytes_mut().fill(0x22);
    }
    txn.commit()?;
    eprintln!(
        "prepared a page file: {} pages, one protected page, {} written regular pages",
        pager.page_count(),
        pager.allocated_page_count()
    );
    Ok(())
}

/// The `t3-K` phase: `STRACE_OPS` transactions of T3 with reused pages,
/// each allocating K pages, writing them, freeing K older ones (the
/// previous transaction's; the first frees the oldest allocated pages) and
/// writing the protected root.
fn strace_t3(pager: &mut Pager<4096>, k: usize) -> BoxResult<u64> {
    let root = pager
        .iter_allocated_protected_pages()
        .next()
        .ok_or("no protected page: run strace-prep first")?;
    let mut older: Vec<PageId<4096>> = pager.iter_allocated_pages().take(k).collect();
    if older.len() < k {
        return Err(format!(
            "only {} allocated pages: run strace-prep first",
            older.len()
        )
        .into());
    }
    let before = pager.sync_count();
    for i in 0..STRACE_OPS {
        let mut txn = pager.transaction()?;
        let ids = txn.alloc_bulk(k)?;
        for &id in &ids {
            txn.get_mut(id)?.as_bytes_mut().fill(i as u8);
        }
        txn.free_bulk(std::mem::replace(&mut older, ids))?;
        txn.write_protected(root)?.as_bytes_mut()[0] = i as u8;
        txn.commit()?;
    }
    Ok(pager.sync_count() - before)
}

/// The `t4` phase: `STRACE_OPS` `Deferred` transactions of one fresh page,
/// written; then frees them in one more, so the file can be used again.
fn strace_t4(pager: &mut Pager<4096>) -> BoxResult<u64> {
    let before = pager.sync_count();
    let mut ids = Vec::new();
    for i in 0..STRACE_OPS {
        let mut txn = pager.transaction()?;
        let id = txn.alloc()?;
        txn.get_mut(id)?.as_bytes_mut().fill(i as u8);
        txn.commit()?;
        ids.push(id);
    }
    let syncs = pager.sync_count() - before;
    pager.transaction().and_then(|mut txn| {
        txn.free_bulk(ids)?;
        txn.commit()
    })?;
    Ok(syncs)
}

fn strace_ops(path: &Path, phase: &str) -> BoxResult<()> {
    let options = if phase == "t4" {
        strace_options().durability(Durability::Deferred)
    } else {
        strace_options()
    };
    let mut pager = options.open(path)?;
    let mut report = vec![("open", pager.sync_count())];
    if let Some(k) = phase.strip_prefix("t3-") {
        let k: usize = k
            .parse()
            .map_err(|_| format!("t3-K: K a number, not {k:?}"))?;
        report.push(("t3", strace_t3(&mut pager, k)?));
    }
    if phase == "t4" {
        report.push(("t4", strace_t4(&mut pager)?));
    }
    let mut ids = Vec::new();
    if matches!(phase, "alloc" | "all") {
        let before = pager.sync_count();
        for _ in 0..STRACE_OPS {
            ids.push(pager.alloc()?);
        }
        report.push(("alloc", pager.sync_count() - before));
    }
    if matches!(phase, "free" | "all") {
        if ids.is_empty() {
            ids = pager.iter_allocated_pages().take(STRACE_OPS).collect();
        }
        if ids.len() < STRACE_OPS {
            return Err(format!(
                "only {} allocated pages to free: run the alloc phase first",
                ids.len()
            )
            .into());
        }
        let before = pager.sync_count();
        for id in ids.drain(..) {
            pager.free(id)?;
        }
        report.push(("free", pager.sync_count() - before));
    }
    if matches!(phase, "commit" | "all") {
        let protected = pager
            .iter_allocated_protected_pages()
            .next()
            .ok_or("no protected page: run strace-prep first")?;
        let before = pager.sync_count();
        for i in 0..STRACE_OPS {
            let mut writer = protected.get_mut(&mut pager)?;
            writer.page_mut().as_bytes_mut()[0] = i as u8;
            writer.commit()?;
        }
        report.push(("commit", pager.sync_count() - before));
    }
    if !matches!(phase, "open" | "alloc" | "free" | "commit" | "all" | "t4")
        && !phase.starts_with("t3-")
    {
        return Err(
            format!("unknown phase {phase:?}: open, alloc, free, commit, all, t3-K or t4").into(),
        );
    }
    drop(pager);
    for (name, syncs) in report {
        let per = if name == "open" {
            String::new()
        } else {
            format!(" ({:.2} per call)", syncs as f64 / STRACE_OPS as f64)
        };
        eprintln!("sync_count, {name}: {syncs}{per}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// R4, R6 and the space old snapshots hold.

/// A small deterministic generator (xorshift64*), for random orders.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

#[inline(never)]
fn snapshot_head_loop<const PS: usize>(snap: &Snapshot<PS>, ids: &[PageId<PS>]) -> u64 {
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

/// A file of `n` written 4 KiB pages, each starting with its own id.
fn written_pages(
    path: &Path,
    n: u64,
    durability: Durability,
) -> BoxResult<(Pager<4096>, Vec<PageId<4096>>)> {
    let mut pager = Pager::<4096>::options()
        .durability(durability)
        .initial_pages(n + 1024)
        .create(path)?;
    let ids = pager.alloc_bulk(n as usize)?;
    for id in &ids {
        let bytes = id.get_mut(&mut pager)?.as_bytes_mut();
        bytes.fill(id.0 as u8);
        bytes[..8].copy_from_slice(&id.0.to_le_bytes());
    }
    pager.sync()?;
    Ok((pager, ids))
}

/// R4: the same random reads through a snapshot and through `PageId::get`
/// on `&Pager`, on one file, interleaved.
fn run_r4(cfg: &Config, dir: &Path) -> BoxResult<Vec<LoopPair>> {
    let n = cfg.p4_pages;
    let path = dir.join("r4.pages");
    let (pager, ids) = written_pages(&path, n, Durability::Immediate)?;
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

/// R6's writer: fresh pages per commit, and the pages the commit before
/// wrote freed.
const R6_K: usize = 4;
/// R6's readers read the first 8 bytes of random pages of this many (64 MiB).
const R6_PAGES: u64 = 1 << 14;
/// Reads per snapshot before a reader takes the newest one again.
const R6_BATCH: u64 = 256;

/// R6's writer: each commit allocates `R6_K` pages, writes them (each
/// starting with its id), frees the `R6_K` the commit before wrote and
/// points the protected root at the first new one; the guard's drop
/// publishes the commit to readers.
struct R6Writer {
    root: ProtectedPageId<4096>,
    older: Vec<PageId<4096>>,
    fill: u8,
}

impl R6Writer {
    fn commit(&mut self, shared: &ConcurrentPager<4096>) -> BoxResult<Duration> {
        self.fill = self.fill.wrapping_add(1);
        let start = Instant::now();
        let mut guard = shared.write()?;
        let mut txn = guard.transaction()?;
        let ids = txn.alloc_bulk(R6_K)?;
        for &id in &ids {
            let bytes = txn.get_mut(id)?.as_bytes_mut();
            bytes.fill(self.fill);
            bytes[..8].copy_from_slice(&id.0.to_le_bytes());
        }
        txn.free_bulk(std::mem::take(&mut self.older))?;
        txn.write_protected(self.root)?.as_bytes_mut()[..8]
            .copy_from_slice(&ids[0].0.to_le_bytes());
        txn.commit()?;
        drop(guard);
        let t = start.elapsed();
        self.older = ids;
        Ok(t)
    }
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
    shared: &ConcurrentPager<4096>,
    root: ProtectedPageId<4096>,
    ids: &[PageId<4096>],
    seed: u64,
    stop: &AtomicBool,
) -> Result<ReaderRun, String> {
    let mask = ids.len() as u64 - 1;
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
            let newest = head(
                snap.get_protected(root)
                    .map_err(|e| e.to_string())?
                    .as_bytes(),
            );
            if newest != 0 {
                let page = snap.get(PageId(newest)).map_err(|e| e.to_string())?;
                if head(page.as_bytes()) != newest {
                    return Err(format!(
                        "page {newest} does not read as its commit wrote it"
                    ));
                }
            }
        }
        for _ in 0..R6_BATCH {
            let id = ids[(rng.next() & mask) as usize];
            let page = snap.get(id).map_err(|e| e.to_string())?;
            sum = sum.wrapping_add(head(page.as_bytes()));
        }
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
    shared: &ConcurrentPager<4096>,
    writer: Option<&mut R6Writer>,
    readers: usize,
    root: ProtectedPageId<4096>,
    ids: &[PageId<4096>],
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
            s.spawn(move || {
                let mut spins = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    spins = black_box(spins.wrapping_add(1));
                }
            });
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
                    let t = w.commit(shared).map_err(|e| e.to_string())?;
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

/// The R6 configurations: (writer, reader threads), in the order of the
/// fields of `R6Results`; the last is the writer beside a thread that only
/// spins, touching no page, which tells the reader's own cost to the
/// writer apart from that of a busy core.
const R6_CONFIGS: [(bool, usize); 6] = [
    (true, 0),
    (true, 1),
    (true, 2),
    (false, 1),
    (false, 2),
    (true, R6_SPINNER),
];
/// A reader count that means one thread spinning without reading.
const R6_SPINNER: usize = usize::MAX;

struct R6Results {
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
fn run_r6(cfg: &Config, dir: &Path) -> BoxResult<R6Results> {
    let path = dir.join("r6.pages");
    let (mut pager, ids) = written_pages(&path, R6_PAGES, Durability::Immediate)?;
    let root = pager.alloc_protected()?;
    let shared = ConcurrentPager::new(pager)?;
    let mut writer = R6Writer {
        root,
        older: Vec::new(),
        fill: 0,
    };
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

fn r6_rows(r6: &R6Results) -> Vec<Row> {
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

/// Pages of the file neither allocated nor free: the pager's metadata and
/// the pages held for snapshots.
fn unavailable(pager: &Pager<4096>) -> u64 {
    pager.page_count() - pager.allocated_page_count() - pager.free_page_count()
}

/// The space one snapshot holds: taken after a warm-up, held across 1 000
/// `Immediate` commits that each free the `R6_K` pages the one before
/// wrote and write `R6_K` fresh ones; then dropped, and 1 000 more commits.
fn run_space(dir: &Path) -> BoxResult<Vec<Row>> {
    const COMMITS: usize = 1000;
    let path = dir.join("space.pages");
    let mut pager = Pager::<4096>::options()
        .durability(Durability::Immediate)
        .create(&path)?;
    let root = pager.alloc_protected()?;
    let mut older: Vec<PageId<4096>> = Vec::new();
    let mut commit = |pager: &mut Pager<4096>, fill: u8| -> BoxResult<()> {
        let mut txn = pager.transaction()?;
        let ids = txn.alloc_bulk(R6_K)?;
        for &id in &ids {
            txn.get_mut(id)?.as_bytes_mut().fill(fill);
        }
        txn.free_bulk(std::mem::take(&mut older))?;
        txn.write_protected(root)?.as_bytes_mut()[..8].copy_from_slice(&ids[0].0.to_le_bytes());
        txn.commit()?;
        older = ids;
        Ok(())
    };
    for i in 0..200 {
        commit(&mut pager, i as u8)?;
    }
    let (pages0, free0, held0) = (
        pager.page_count(),
        pager.free_page_count(),
        unavailable(&pager),
    );
    let snapshot = pager.snapshot()?;
    let kept: Vec<PageId<4096>> = snapshot.iter_allocated_pages().collect();
    let kept_bytes: Vec<u8> = kept
        .iter()
        .map(|&id| snapshot.get(id).map(|p| p.as_bytes()[0]))
        .collect::<Result<_, _>>()?;
    let start = Instant::now();
    for i in 0..COMMITS {
        commit(&mut pager, (i % 200 + 1) as u8)?;
    }
    let held_took = start.elapsed();
    let (pages1, free1, held1) = (
        pager.page_count(),
        pager.free_page_count(),
        unavailable(&pager),
    );
    let intact = kept.iter().zip(&kept_bytes).all(|(&id, &b)| {
        snapshot
            .get(id)
            .is_ok_and(|p| p.as_bytes().iter().all(|&x| x == b))
    });
    drop(snapshot);
    commit(&mut pager, 0xEE)?;
    let (pages2, free2, held2) = (
        pager.page_count(),
        pager.free_page_count(),
        unavailable(&pager),
    );
    for i in 0..COMMITS {
        commit(&mut pager, i as u8)?;
    }
    let (pages3, free3, held3) = (
        pager.page_count(),
        pager.free_page_count(),
        unavailable(&pager),
    );
    drop(pager);
    std::fs::remove_file(&path)?;
    println!(
        "before the snapshot: {pages0} pages in the file, {free0} free, {held0} neither free \
         nor allocated (metadata)"
    );
    println!(
        "after {COMMITS} commits with it held ({:.2} s): {pages1} pages, {free1} free, {held1} \
         neither; its {} pages still read as written: {intact}",
        held_took.as_secs_f64(),
        kept.len()
    );
    println!("dropped, one commit later: {pages2} pages, {free2} free, {held2} neither");
    println!("{COMMITS} commits later: {pages3} pages, {free3} free, {held3} neither");
    let held = held1.saturating_sub(held0);
    let freed = (COMMITS * R6_K) as u64;
    Ok(vec![
        row(
            format!(
                "Space: pages held from reuse by one snapshot across {COMMITS} commits \
                 (each frees {R6_K} pages, writes {R6_K} and the protected root)"
            ),
            format!("{held} pages ({:.1} MiB)", held as f64 * 4096.0 / MIB as f64),
            format!("{freed} regular pages freed meanwhile"),
            format!("{:.3}×", held as f64 / freed as f64),
            "pages freed after it, held while it lives",
            yes_no(intact && held >= freed),
        ),
        row(
            format!("Space: file pages before, with the snapshot held, and {COMMITS} commits after its drop"),
            format!("{pages0} → {pages1} → {pages3}"),
            format!("held pages after the drop: {}", held2.saturating_sub(held0)),
            "—",
            "reusable after the drop: no growth",
            yes_no(pages3 == pages2 && held2 <= held0 + R6_K as u64 + 8),
        ),
    ])
}

// ---------------------------------------------------------------------------
// Rows of the closing table.

fn p1_rows(p1: &P1Results) -> Vec<Row> {
    let base = median(&p1.base);
    let mut rows = vec![
        ratio_row(
            "P1 alloc, Immediate, no dirty page",
            median(&p1.alloc),
            base,
            1.15,
            "≤ 1.15× pwrite 4 KiB + fdatasync",
            fmt_ns,
        ),
        ratio_row(
            "P1 free, Immediate, no dirty page",
            median(&p1.free),
            base,
            1.15,
            "≤ 1.15× pwrite 4 KiB + fdatasync",
            fmt_ns,
        ),
    ];
    for (name, counts, limit, target) in [
        ("P1 syncs per alloc", &p1.alloc_syncs, 1, "1 sync call"),
        ("P1 syncs per free", &p1.free_syncs, 1, "1 sync call"),
        (
            "P2 syncs per protected commit",
            &p1.commit_syncs,
            2,
            "≤ 2 sync calls (1 stretch)",
        ),
    ] {
        let max = counts.iter().copied().max().unwrap_or(0);
        rows.push(row(
            name,
            format!("{} (max {max})", median_u64(counts)),
            "—",
            "—",
            target,
            yes_no(max <= limit),
        ));
    }
    let commit = median(&p1.commit);
    rows.push(row(
        "P2 protected write 1 byte + commit",
        fmt_ns(commit),
        fmt_ns(base),
        format!("{:.3}×", commit / base),
        "no time target (sync count above)",
        "—",
    ));
    rows
}

fn p3_rows(cfg: &Config, p3: &P3Results) -> Vec<Row> {
    let large_exp = cfg.p3_large.trailing_zeros();
    let bulk = median(&p3.bulk);
    let bulk_grow = median(&p3.bulk_grow);
    vec![
        ratio_row(
            &format!("P3 alloc+commit at 2^{large_exp} vs 2^10 allocated (4 KiB pages)"),
            median(&p3.large_alloc),
            median(&p3.small_alloc),
            1.2,
            "≤ 1.2×",
            fmt_ns,
        ),
        ratio_row(
            &format!("P3 free+commit at 2^{large_exp} vs 2^10 allocated (info)"),
            median(&p3.large_free),
            median(&p3.small_free),
            1.2,
            "≤ 1.2× (S3; P3 names alloc)",
            fmt_ns,
        ),
        row(
            "P3 alloc_bulk(1 << 20), one commit, file already large enough",
            fmt_ns(bulk),
            "—",
            "—",
            "< 100 ms",
            yes_no(bulk < 100e6),
        ),
        row(
            "P3 alloc_bulk(1 << 20) on a new default file, growth included (info)",
            fmt_ns(bulk_grow),
            "—",
            "—",
            "< 100 ms",
            yes_no(bulk_grow < 100e6),
        ),
    ]
}

/// Rows of loop pairs whose ratio must stay within 1.1× of the baseline
/// loop: `label` names each pair's row from the pair's own name.
fn loop_rows(pairs: &[LoopPair], label: impl Fn(&str) -> String, target: &str) -> Vec<Row> {
    pairs
        .iter()
        .map(|pair| {
            ratio_row(
                &label(&pair.name),
                median(&pair.pager),
                median(&pair.raw),
                1.1,
                target,
                fmt_ns,
            )
        })
        .collect()
}

fn p4_rows(p4: &[LoopPair]) -> Vec<Row> {
    loop_rows(
        p4,
        |name| format!("P4 {name} (per page)"),
        "≤ 1.1× raw memmap2",
    )
}

fn r4_rows(r4: &[LoopPair]) -> Vec<Row> {
    loop_rows(
        r4,
        |name| format!("R4 {name} (per page), snapshot vs &Pager get"),
        "≤ 1.1× get on &Pager",
    )
}

fn p5_rows(cfg: &Config, p5: &P5Results) -> Vec<Row> {
    let p5_exp = cfg.p5_pages.trailing_zeros();
    let mut rows = Vec::new();
    for (runs, what) in [(&p5.warm, "warm cache"), (&p5.cold, "cold cache (info)")] {
        let times: Vec<f64> = runs.iter().map(|f| f.open_ns).collect();
        let med = median(&times);
        rows.push(row(
            format!(
                "P5 open, 2^{p5_exp} allocated 1 KiB pages, {what}, n = {}",
                times.len()
            ),
            fmt_ns(med),
            "—",
            "—",
            "< 100 ms",
            yes_no(med < 100e6),
        ));
    }
    if let Some(f) = p5.warm.first() {
        // "At most 2 bits per page plus a constant": the constant allowed here
        // is 1 MiB.
        let two_bits = f.pages as f64 / 4.0;
        rows.push(row(
            format!("P5 heap held by the pager after open, 2^{p5_exp} pages"),
            format!(
                "{} ({:.3} bits/page)",
                fmt_bytes(f.heap_held),
                f.heap_held * 8.0 / f.pages as f64
            ),
            format!("{} (2 bits/page)", fmt_bytes(two_bits)),
            format!("{:.3}×", f.heap_held / two_bits),
            "≤ 2 bits/page + 1 MiB",
            yes_no(f.heap_held <= two_bits + MIB as f64),
        ));
        rows.push(row(
            "P5 heap peak during open (info)",
            fmt_bytes(f.heap_peak),
            format!("{} (2 bits/page)", fmt_bytes(two_bits)),
            format!("{:.3}×", f.heap_peak / two_bits),
            "—",
            "—",
        ));
        rows.push(row(
            "P5 process VmHWM minus VmRSS before open (info; includes mapped file pages)",
            fmt_bytes(f.hwm_delta),
            "—",
            "—",
            "—",
            "—",
        ));
    }
    rows
}

/// Whether the part named `name` runs: all by default, else those listed in
/// `PARTS` (comma-separated: p1, t3, t4, t5, p3, p4, r4, r6, space, p5; P2 runs
/// with P1).
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
                Some("4096") => open_child::<4096>(Path::new(path), cold),
                _ => open_child::<1024>(Path::new(path), cold),
            };
        }
        Some("t5-child") => {
            let path = args.get(1).ok_or("t5-child PATH kill|close")?;
            let clean_close = args.get(2).is_some_and(|m| m == "close");
            return t5_child(Path::new(path), clean_close);
        }
        Some("strace-prep") => {
            let path = args.get(1).ok_or("strace-prep FILE")?;
            return strace_prep(Path::new(path));
        }
        Some("strace-ops") => {
            let phase = args.get(2).map(String::as_str).unwrap_or("all");
            return match args.get(1) {
                Some(path) => strace_ops(Path::new(path), phase),
                None => {
                    eprintln!(
                        "no FILE given: preparing one here, so the counts include \
                         its creation (use strace-prep FILE first to leave it out)"
                    );
                    let dir = tempfile::Builder::new()
                        .prefix("pager-strace-")
                        .tempdir_in(base_dir(&[]))?;
                    let path = dir.path().join("strace.pages");
                    strace_prep(&path)?;
                    strace_ops(&path, phase)
                }
            };
        }
        _ => {}
    }

    let quick = std::env::var("QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
    let cfg = Config::new(quick);
    let base = base_dir(&args);
    std::fs::create_dir_all(&base)?;
    let tmp = tempfile::Builder::new()
        .prefix("pager-figures-")
        .tempdir_in(&base)?;
    let dir = tmp.path();
    let (avail, fs_kind) = fs_space(dir)?;
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
            Box::new(|| Ok(p1_rows(&run_p1(&cfg, dir)?))),
        ),
        (
            "t3",
            "T3: transactions vs the same raw writes + fdatasync",
            Box::new(|| Ok(t3_rows(&run_t3(&cfg, dir)?))),
        ),
        (
            "t4",
            "T4: Deferred commits vs pwrite; open of a small file",
            Box::new(|| Ok(t4_rows(&run_t4(&cfg, dir)?))),
        ),
        (
            "t5",
            "T5: open after Deferred commits, after a kill and a clean close",
            Box::new(|| Ok(t5_rows(&run_t5(dir)?))),
        ),
        (
            "p3",
            "P3: allocation cost vs file size; alloc_bulk",
            Box::new(|| Ok(p3_rows(&cfg, &run_p3(&cfg, dir)?))),
        ),
        (
            "p4",
            "P4: read loops vs raw memmap2",
            Box::new(|| Ok(p4_rows(&run_p4(&cfg, dir)?))),
        ),
        (
            "r4",
            "R4: random reads through a snapshot vs &Pager",
            Box::new(|| Ok(r4_rows(&run_r4(&cfg, dir)?))),
        ),
        (
            "r6",
            "R6: readers while a writer commits",
            Box::new(|| Ok(r6_rows(&run_r6(&cfg, dir)?))),
        ),
        (
            "space",
            "Space held by an old snapshot",
            Box::new(|| run_space(dir)),
        ),
        (
            "p5",
            "P5: open of a large file",
            Box::new(|| Ok(p5_rows(&cfg, &run_p5(&cfg, dir)?))),
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

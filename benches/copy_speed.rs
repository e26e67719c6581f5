//! The copy figure of contract C3: a consistent copy of a file through
//! `Snapshot::copy_to` (from a `ReadOnlyPager`), beside copies of the same
//! file by `cp --sparse=always`, by `std::fs::copy` and by a plain
//! sequential read and write in 8 MiB chunks (and in the 128 KiB chunks
//! `cp` uses, which leave the buffer in the CPU cache: on a machine with
//! little memory bandwidth, 8 MiB chunks are the slower), measured side by
//! side in one run. Every copy is synced before its time stops (`copy_to` syncs by
//! itself; the others get an `fsync` of the new file).
//!
//! The file: 1 GiB of 4 KiB pages, every page written, then every other run
//! of 64 pages freed, so that half its pages are allocated and the holes
//! are spread over the whole file. `copy_to` writes only the allocated half;
//! the others copy every byte. The table gives both the time per file (the
//! figure the contract's target, at least 0.8 times the speed of a
//! sequential copy, speaks of) and the speed per byte written.
//!
//! ```text
//! cargo bench --bench copy_speed                 # 1 GiB, 3 rounds
//! COPY_SPEED_MIB=256 COPY_SPEED_ROUNDS=3 cargo bench --bench copy_speed
//! cargo bench --bench copy_speed -- DIR          # files in DIR
//! ```
//!
//! Each round runs every method once, in an order that turns from round to
//! round, with the page cache dropped before each copy when the process may
//! do so (root on Linux: cold rounds read the source from the disk), and
//! again with the source in the page cache (warm rounds). Without the right
//! to drop the cache only warm rounds run, and the output says so.

use std::error::Error;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use mappedpages::{Pager, ReadOnlyPager};

type BoxResult<T> = Result<T, Box<dyn Error>>;

const PS: usize = 4096;
/// Pages in one allocated or free run.
const RUN: usize = 64;
/// The chunk of the sequential baseline, and the small one `cp` uses.
const CHUNK: usize = 8 << 20;
const SMALL_CHUNK: usize = 128 << 10;
/// Pages left free for the page trees and the commit's page checks, so
/// that filling the file does not grow it: a few more than one in 128.
fn slack(pages: u64) -> u64 {
    pages / 128 + 64
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    CopyTo,
    Cp,
    FsCopy,
    Sequential(usize),
}

const METHODS: [Method; 5] = [
    Method::CopyTo,
    Method::Cp,
    Method::FsCopy,
    Method::Sequential(CHUNK),
    Method::Sequential(SMALL_CHUNK),
];

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::CopyTo => "Snapshot::copy_to",
            Method::Cp => "cp --sparse=always",
            Method::FsCopy => "std::fs::copy",
            Method::Sequential(CHUNK) => "read+write 8 MiB",
            Method::Sequential(_) => "read+write 128 KiB",
        }
    }

    fn run(self, src: &Path, dst: &Path) -> BoxResult<()> {
        match self {
            Method::CopyTo => ReadOnlyPager::<PS>::open(src)?.copy_to(dst)?,
            Method::Cp => {
                let status = Command::new("cp")
                    .arg("--sparse=always")
                    .arg(src)
                    .arg(dst)
                    .status()?;
                if !status.success() {
                    return Err(format!("cp failed: {status}").into());
                }
                File::open(dst)?.sync_all()?;
            }
            Method::FsCopy => {
                std::fs::copy(src, dst)?;
                File::open(dst)?.sync_all()?;
            }
            Method::Sequential(chunk) => {
                let mut from = File::open(src)?;
                let mut to = File::create_new(dst)?;
                let mut buf = vec![0u8; chunk];
                loop {
                    let n = read_full(&mut from, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    to.write_all(&buf[..n])?;
                }
                to.sync_all()?;
            }
        }
        Ok(())
    }
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut File, buf: &mut [u8]) -> BoxResult<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn base_dir() -> PathBuf {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if let Some(dir) = args.first() {
        return PathBuf::from(dir);
    }
    match option_env!("CARGO_TARGET_TMPDIR") {
        Some(dir) if Path::new(dir).is_dir() => PathBuf::from(dir),
        _ => PathBuf::from("."),
    }
}

/// A file of `pages` pages, every page written, every other run of `RUN`
/// pages freed; returns the allocated pages.
fn make_source(path: &Path, pages: u64) -> BoxResult<u64> {
    let mut pager = Pager::<PS>::options()
        .initial_pages(pages)
        .shrink_threshold(None)
        .create(path)?;
    let mut txn = pager.transaction()?;
    let ids = txn.alloc_bulk((pages - 3 - slack(pages)) as usize)?;
    for &id in &ids {
        let bytes = txn.get_mut(id)?.as_bytes_mut();
        let tag = id.0.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes();
        for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
            chunk.copy_from_slice(&tag);
            chunk[0] = i as u8;
        }
    }
    txn.commit()?;
    let freed = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| (i / RUN) % 2 == 1)
        .map(|(_, &id)| id)
        .collect();
    pager.free_bulk(freed)?;
    let allocated = pager.allocated_page_count();
    if pager.page_count() != pages {
        eprintln!(
            "note: the file grew to {} pages while it was filled",
            pager.page_count()
        );
    }
    drop(pager);
    Ok(allocated)
}

/// Writes dirty pages out and empties the page cache; false when this
/// process may not (only root on Linux may).
fn drop_caches() -> bool {
    write_back_all();
    std::fs::write("/proc/sys/vm/drop_caches", b"3\n").is_ok()
}

/// Writes every dirty page of the system out (`sync`), so that one copy's
/// write-back does not land in the next one's time. Unix only; on other
/// systems the rounds are warm, and the order of methods turns from round to
/// round.
fn write_back_all() {
    // SAFETY: `sync` takes no arguments and cannot fail.
    #[cfg(unix)]
    unsafe {
        libc::sync()
    };
}

/// Bytes of disk blocks the file holds where the OS tells (Unix), else its
/// length.
fn disk_bytes(path: &Path) -> BoxResult<u64> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    let bytes = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
    #[cfg(not(unix))]
    let bytes = meta.len();
    Ok(bytes)
}

fn warm(path: &Path) -> BoxResult<()> {
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; CHUNK];
    while read_full(&mut file, &mut buf)? > 0 {}
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

struct Sample {
    secs: Vec<f64>,
    /// Bytes of disk blocks the copy holds (what was written).
    written: u64,
}

fn measure(src: &Path, dst: &Path, rounds: usize, cold: bool) -> BoxResult<Vec<(Method, Sample)>> {
    let mut samples: Vec<(Method, Sample)> = METHODS
        .iter()
        .map(|&m| {
            (
                m,
                Sample {
                    secs: Vec::new(),
                    written: 0,
                },
            )
        })
        .collect();
    for round in 0..rounds {
        for k in 0..METHODS.len() {
            let (method, sample) = &mut samples[(round + k) % METHODS.len()];
            if cold {
                drop_caches();
            } else {
                write_back_all();
                warm(src)?;
            }
            let start = Instant::now();
            method.run(src, dst)?;
            let elapsed = start.elapsed();
            sample.secs.push(elapsed.as_secs_f64());
            sample.written = disk_bytes(dst)?;
            std::fs::remove_file(dst)?;
        }
    }
    Ok(samples)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn print_table(title: &str, file_len: u64, samples: &mut [(Method, Sample)]) {
    let medians: Vec<f64> = samples
        .iter_mut()
        .map(|(_, s)| median(&mut s.secs))
        .collect();
    let per_byte: Vec<f64> = samples
        .iter()
        .zip(&medians)
        .map(|((_, s), &t)| mib(s.written) / t)
        .collect();
    let at = |m: Method| METHODS.iter().position(|&x| x == m).unwrap_or(0);
    let (cp, seq) = (at(Method::Cp), at(Method::Sequential(CHUNK)));
    // The fastest copy of every byte, whichever it is on this machine.
    let best = (1..samples.len())
        .min_by(|&a, &b| medians[a].total_cmp(&medians[b]))
        .unwrap_or(cp);
    println!("\n{title}");
    println!(
        "{:<20} {:>9} {:>9} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}",
        "method",
        "median",
        "min",
        "written",
        "file MiB/s",
        "write MiB/s",
        "vs cp",
        "vs seq",
        "vs best"
    );
    for (i, (method, sample)) in samples.iter().enumerate() {
        let min = sample.secs.iter().copied().fold(f64::INFINITY, f64::min);
        let t = medians[i];
        println!(
            "{:<20} {:>7.3} s {:>7.3} s {:>7.0} MiB {:>11.0} {:>11.0} {:>5.2}/{:<5.2} {:>5.2}/{:<5.2} {:>5.2}/{:<5.2}",
            method.name(),
            t,
            min,
            mib(sample.written),
            mib(file_len) / t,
            per_byte[i],
            medians[cp] / t,
            per_byte[i] / per_byte[cp],
            medians[seq] / t,
            per_byte[i] / per_byte[seq],
            medians[best] / t,
            per_byte[i] / per_byte[best],
        );
    }
    println!(
        "(vs cp, vs seq (8 MiB), vs best (the fastest copy of every byte, here {}): speed ratio \
         per file / per byte written; the target is a per-file ratio of at least 0.80 against a \
         sequential copy)",
        samples[best].0.name()
    );
}

fn main() -> BoxResult<()> {
    let size_mib = env_u64("COPY_SPEED_MIB", 1024).max(16);
    let rounds = env_u64("COPY_SPEED_ROUNDS", 3).max(1) as usize;
    let dir = tempfile::tempdir_in(base_dir())?;
    let src = dir.path().join("source.pages");
    let dst = dir.path().join("copy.pages");
    let pages = (size_mib << 20) / PS as u64;

    let start = Instant::now();
    let allocated = make_source(&src, pages)?;
    let file_len = std::fs::metadata(&src)?.len();
    println!(
        "source: {} MiB of {PS}-byte pages, {allocated} pages allocated ({:.0} MiB) in runs of {RUN}, made in {:.1} s",
        mib(file_len),
        mib(allocated * PS as u64),
        start.elapsed().as_secs_f64()
    );

    let cold = drop_caches();
    if cold {
        let mut samples = measure(&src, &dst, rounds, true)?;
        print_table(
            &format!("cold page cache (dropped before each copy), {rounds} rounds"),
            file_len,
            &mut samples,
        );
    } else {
        println!("the page cache cannot be dropped here: warm rounds only");
    }
    let mut samples = measure(&src, &dst, rounds, false)?;
    print_table(
        &format!("warm page cache (source read before each copy), {rounds} rounds"),
        file_len,
        &mut samples,
    );
    println!("\nwhole run: {:.0} s", start.elapsed().as_secs_f64());
    Ok(())
}

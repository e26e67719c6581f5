//! What `benches/pager_figures` and `bench/compare` both need: statistics
//! and formatting, the raw-disk baselines, the transactions both run on this
//! crate (T3's and R6's), R6's readers, and a little about the machine.
//!
//! Both programs include this directory as a module
//! (`#[path = ".../benches/support/mod.rs"] mod support;`) rather than
//! depending on a crate: a path dev-dependency would be dropped from the
//! published package, and `pager_figures` ships in it. Everything here is
//! Linux-only, as both programs are; every item is used by both (a bench
//! built with `-D warnings` would reject the rest as dead code).

pub mod raw;
pub mod stats;
pub mod workloads;

use std::error::Error;
use std::path::Path;

/// The page size of every 4 KiB figure.
pub const PAGE: usize = 4096;

pub type BoxResult<T> = Result<T, Box<dyn Error>>;

/// Positional arguments; the harness flags cargo passes (`--bench`) are
/// ignored.
pub fn positional_args() -> Vec<String> {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect()
}

/// `QUICK=1` (anything but empty or `0`): the small sizes.
pub fn quick_mode() -> bool {
    std::env::var("QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The file system `dir` lives on, by name where it is a common one.
pub fn fs_type(dir: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return "unknown".into();
    };
    // SAFETY: an all-zero statfs is a valid value of this plain C struct.
    let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated; `fs` is valid and writable.
    if unsafe { libc::statfs(c.as_ptr(), &mut fs) } != 0 {
        return "unknown".into();
    }
    match fs.f_type as i64 {
        0xEF53 => "ext4".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x0102_1994 => "tmpfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x2FC1_2FC1 => "zfs".into(),
        other => format!("fs-{other:x}"),
    }
}

/// The length of a file, or of the files of a directory, and the bytes they
/// occupy on disk (for a sparse file, far below its length).
pub fn file_bytes(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let mut apparent = 0;
    let mut on_disk = 0;
    let meta = |p: &Path| std::fs::metadata(p).map(|m| (m.len(), m.blocks() * 512));
    if path.is_dir() {
        for e in std::fs::read_dir(path).into_iter().flatten().flatten() {
            if let Ok((a, d)) = meta(&e.path()) {
                apparent += a;
                on_disk += d;
            }
        }
    } else if let Ok((a, d)) = meta(path) {
        apparent += a;
        on_disk += d;
    }
    (apparent, on_disk)
}

//! The figures of the contract's performance section, of its transactions
//! and of its readers: see `pager_figures/mod.rs` for how to run them and
//! which file measures what.
//!
//! They are Linux figures: the sync counts come from `strace`, the cold
//! reads from `posix_fadvise`, the memory from `/proc/self/status`, the
//! thread CPU time from `RUSAGE_THREAD`, and the raw baselines reserve
//! blocks with `fallocate`. Elsewhere the benchmark builds and says that it
//! measured nothing.

#[cfg(target_os = "linux")]
#[path = "pager_figures/mod.rs"]
mod figures;

#[cfg(target_os = "linux")]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    figures::main()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!(
        "pager_figures: skipped, Linux only (strace, posix_fadvise, /proc, \
         RUSAGE_THREAD, fallocate baselines)"
    );
}

//! Says which tests and checks this platform leaves out, and why, as
//! ignored tests with the reason (cargo prints each), so that a run on a
//! platform that cannot do everything never looks like a full one. The
//! suites and checks named here are compiled out where they cannot run; on
//! Linux, where everything runs, the list is empty.
//!
//! Under Wine (the Windows suite on Linux CI, built with
//! `--cfg mappedpages_wine`), the tests that Wine cannot run are ignored in
//! place, with the reason.

#[cfg(not(target_os = "linux"))]
#[test]
#[ignore = "disk_full: a full disk is made with a loop-mounted ext4 image (Linux, root)"]
fn disk_full_suite_skipped() {}

#[cfg(not(target_os = "linux"))]
#[test]
#[ignore = "real_syncs_strace: counts sync system calls under strace (Linux)"]
fn real_syncs_suite_skipped() {}

#[cfg(not(target_os = "linux"))]
#[test]
#[ignore = "read_only_processes::a_file_on_a_read_only_mount_opens_for_reading_only: \
            needs a read-only bind mount (Linux, root); it returns at once here"]
fn read_only_mount_skipped() {}

#[cfg(not(target_os = "linux"))]
#[test]
#[ignore = "crash_simulator: without SEEK_DATA and hole punching (Linux) the crash \
            images are read whole and keep the free pages' blocks: slower, same checks"]
fn crash_simulator_sparse_images_skipped() {}

#[cfg(not(unix))]
#[test]
#[ignore = "copies and fault_injected_io: the checks that free pages and given-back \
            growth hold no disk blocks need st_blocks (Unix)"]
fn disk_block_checks_skipped() {}

#[cfg(not(unix))]
#[test]
#[ignore = "pager_figures benchmark: Linux only (strace, posix_fadvise, /proc)"]
fn pager_figures_skipped() {}

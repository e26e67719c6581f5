//! How much work the long tests do.
//!
//! `cargo test --all-features` runs every test, but the sweeps that take
//! minutes (the crash simulator's full matrix, the killed-process runs, the
//! model and property tests, the stress and scale tests) run a reduced
//! number of seeds, cases or rounds, so that the suite finishes in a few
//! minutes on a small machine. Each reduced run still takes every path its
//! full run takes. Setting `MAPPEDPAGES_DEEP_TESTS=1`, as continuous
//! integration does, runs the full sweeps.
//!
//! This is the one place the variable is read.

#![allow(dead_code)]

/// The environment variable that selects the full sweeps.
pub const DEEP_TESTS_ENV: &str = "MAPPEDPAGES_DEEP_TESTS";

/// Whether the full sweeps run: `MAPPEDPAGES_DEEP_TESTS` set to anything but
/// empty or `0`.
pub fn deep_tests() -> bool {
    std::env::var_os(DEEP_TESTS_ENV).is_some_and(|v| !v.is_empty() && v != "0")
}

/// `full` when the full sweeps run, `quick` otherwise.
pub fn depth<T>(quick: T, full: T) -> T {
    if deep_tests() {
        full
    } else {
        quick
    }
}

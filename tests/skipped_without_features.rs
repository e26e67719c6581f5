//! Says which suites a build without their feature leaves out. The crash
//! simulator, the injected-I/O-failure tests, the async tests and the CLI
//! tests compile only with their features; `cargo test --all-features` (the
//! README's test command, and CI's) runs all of them. A plain `cargo test`
//! lists each suite it skipped here as an ignored test, with the reason, so
//! a run without features never looks like a full one.

#[cfg(not(feature = "fault-injection"))]
#[test]
#[ignore = "crash_simulator, fault_injected_io and the real-sync suite need the \
            `fault-injection` feature: run cargo test --all-features"]
fn crash_and_fault_suites_skipped() {}

#[cfg(not(feature = "async"))]
#[test]
#[ignore = "async_runtimes needs the `async` feature: run cargo test --all-features"]
fn async_suite_skipped() {}

#[cfg(not(feature = "cli"))]
#[test]
#[ignore = "cli_commands needs the `cli` feature: run cargo test --all-features"]
fn cli_suite_skipped() {}

//! The `mappedpages` command-line tool on good, damaged and foreign files:
//! the right exit status, a clear report, one-line errors, never a panic.

#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mappedpages::Pager;

const PS: usize = 4096;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mappedpages"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a clean failure: the status, one line on stderr naming the
/// file, nothing that looks like a panic.
fn assert_one_line_error(out: &Output, code: i32, path: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("mappedpages: {path}: ")),
        "{stderr}"
    );
}

/// A file with regular pages, a committed protected page and a few frees.
fn good_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    let mut pager = Pager::<PS>::create(&path).unwrap();
    let pages = pager.alloc_bulk(40).unwrap();
    pager.free(pages[7]).unwrap();
    pages[0].get_mut(&mut pager).unwrap().as_bytes_mut()[..5].copy_from_slice(b"hello");
    let root = pager.alloc_protected().unwrap();
    let mut writer = root.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut()[..8].copy_from_slice(&pages[0].0.to_le_bytes());
    writer.commit().unwrap();
    path
}

fn flip(path: &Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn info_reports_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_file(dir.path(), "good.pages");
    let out = run(&["info", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("version 1, 4096-byte pages"), "{stdout}");
    assert!(stdout.contains("39 regular, 1 protected"), "{stdout}");
    assert!(
        stdout.contains("synced before it returned (Immediate)"),
        "{stdout}"
    );
    assert!(stdout.contains("<- opened"), "{stdout}");
}

#[test]
fn check_passes_a_good_file_and_shows_progress_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_file(dir.path(), "good.pages");
    let out = run(&["check", "--progress", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("OK "));
    assert!(text(&out.stderr).contains("checking: 100%"));
}

#[test]
fn check_fails_on_a_damaged_newest_copy_but_says_the_file_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_file(dir.path(), "torn.pages");
    let generation = Pager::<PS>::open(&path).unwrap().recovery().clone();
    flip(&path, (1 + generation.root_copy as usize) * PS + 300);
    let out = run(&["check", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("PROBLEM"), "{stdout}");
    assert!(stdout.contains("the file opens"), "{stdout}");
}

#[test]
fn check_fails_on_metadata_that_does_not_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_file(dir.path(), "dead.pages");
    flip(&path, PS + 300);
    flip(&path, 2 * PS + 300);
    let out = run(&["check", path.to_str().unwrap()]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("does not open"), "{stdout}");
    // `info` has nothing to show: a one-line error that says why.
    let arg = path.to_str().unwrap();
    let out = run(&["info", arg]);
    assert_one_line_error(&out, 2, arg);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("copy A") && stderr.contains("copy B"),
        "{stderr}"
    );
}

#[test]
fn dump_shows_hex_and_decoded_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_file(dir.path(), "dump.pages");
    let arg = path.to_str().unwrap();
    let out = run(&["dump", arg, "0"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success());
    assert!(stdout.contains("page size 4096"), "{stdout}");
    assert!(stdout.contains("|MAPPEDPG"), "{stdout}");
    assert!(stdout.trim_end().ends_with("00001000"), "{stdout}");

    for root in ["1", "2"] {
        let out = run(&["dump", arg, root]);
        assert!(out.status.success());
        assert!(text(&out.stdout).contains("generation"));
    }

    let out = run(&["dump", arg, "3"]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("allocated regular page"), "{stdout}");
    assert!(stdout.contains("|hello"), "{stdout}");

    assert_one_line_error(&run(&["dump", arg, "123456789"]), 2, arg);
}

#[test]
fn bad_paths_and_foreign_files_get_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pages");
    let foreign = dir.path().join("foreign.txt");
    std::fs::write(&foreign, "just some text\n".repeat(1000)).unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let directory = dir.path().to_str().unwrap();
    for path in [
        missing.to_str().unwrap(),
        foreign.to_str().unwrap(),
        empty.to_str().unwrap(),
        directory,
    ] {
        for command in [&["info", path][..], &["check", path], &["dump", path, "0"]] {
            assert_one_line_error(&run(command), 2, path);
        }
    }
    let stderr = text(&run(&["info", foreign.to_str().unwrap()]).stderr);
    assert!(stderr.contains("not a mappedpages file"), "{stderr}");
}

#[test]
fn random_damage_never_panics() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_file(dir.path(), "fuzz.pages");
    let good = std::fs::read(&path).unwrap();
    let arg = path.to_str().unwrap();
    for i in 0..12usize {
        let mut bytes = good.clone();
        let at = (i * 7919 + 13) % (4 * PS);
        bytes[at] = bytes[at].wrapping_add(1 + i as u8);
        std::fs::write(&path, &bytes).unwrap();
        for command in [&["info", arg][..], &["check", arg], &["dump", arg, "1"]] {
            let out = run(command);
            assert!(matches!(out.status.code(), Some(0..=2)), "{command:?}");
            assert!(!text(&out.stderr).contains("panicked"));
        }
    }
}

//! The `mappedpages` command-line tool on good, damaged and foreign files:
//! the right exit status, a clear report, one-line errors, never a panic.

#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use mappedpages::{Pager, Snapshot};

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
    // Forced into a pipe: the bar's final state, full, ends the output.
    let stderr = text(&out.stderr);
    assert!(stderr.ends_with('\n'), "{stderr:?}");
    let last = stderr.rsplit('\r').next().unwrap();
    assert!(last.starts_with("checking "), "{stderr:?}");
    assert!(last.trim_end().ends_with("(100%)"), "{stderr:?}");
    // Not forced, and not a terminal: nothing on stderr.
    let out = run(&["check", path.to_str().unwrap()]);
    assert!(out.status.success());
    assert_eq!(text(&out.stderr), "");
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
    // `info` cannot give the state: a one-line error, and on stdout what
    // is wrong with each copy, as `check` shows it.
    let arg = path.to_str().unwrap();
    let out = run(&["info", arg]);
    assert_one_line_error(&out, 2, arg);
    assert!(text(&out.stderr).contains("does not open"));
    let stdout = text(&out.stdout);
    for line in ["copy A      damaged", "copy B      damaged", "PROBLEM"] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    let out = run(&["info", "--json", arg]);
    assert_eq!(out.status.code(), Some(2));
    let json = text(&out.stdout);
    assert!(
        json.starts_with('{') && json.contains(r#""opens":false"#),
        "{json}"
    );
    assert!(
        json.contains(r#""copy":"A","page":1,"state":"damaged""#),
        "{json}"
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
        for command in [&["info", path][..], &["pages", path], &["dump", path, "3"]] {
            assert_one_line_error(&run(command), 2, path);
        }
    }
    let stderr = text(&run(&["info", foreign.to_str().unwrap()]).stderr);
    assert!(stderr.contains("not a mappedpages file"), "{stderr}");
}

/// `check` finds something wrong (exit 1, a PROBLEM line) in every file
/// that is not a sound page file, however little of one it is.
#[test]
fn check_exits_1_on_files_that_are_not_page_files() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pages");
    let empty = dir.path().join("empty.pages");
    std::fs::write(&empty, b"").unwrap();
    let random = dir.path().join("random.pages");
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..4 * PS)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(&random, noise).unwrap();
    let superblock = good_file(dir.path(), "superblock.pages");
    flip(&superblock, 20); // the page size field, under the checksum

    // The OS's own words for a missing file (they differ between systems).
    let not_found = std::fs::File::open(&missing).unwrap_err().to_string();
    let cases = [
        (&missing, not_found.as_str()),
        (&empty, "empty file"),
        (&random, "not a mappedpages file"),
        (&superblock, "not a mappedpages file"),
    ];
    for (path, why) in cases {
        let arg = path.to_str().unwrap();
        let out = run(&["check", arg]);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{arg}: {stdout}");
        assert!(
            stdout.contains("PROBLEM") && stdout.contains(why),
            "{arg}: {stdout}"
        );
        assert!(stdout.contains("does not open"), "{arg}: {stdout}");
        let out = run(&["check", "--json", arg]);
        assert_eq!(out.status.code(), Some(1), "{arg}");
        let json = text(&out.stdout);
        assert!(json.contains(r#""clean":false"#), "{json}");
    }
    let help = text(&run(&["check", "--help"]).stdout);
    assert!(help.contains("Exit 1 if anything is wrong"), "{help}");
}

#[test]
fn dump_of_page_0_shows_the_bytes_of_a_damaged_superblock() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_file(dir.path(), "sb.pages");
    flip(&path, 40); // reserved bytes, under the checksum
    let arg = path.to_str().unwrap();
    let out = run(&["dump", arg, "0"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains("raw: the superblock does not decode"),
        "{stdout}"
    );
    assert!(
        stdout.contains("from the superblock's page size field"),
        "{stdout}"
    );
    assert!(stdout.contains("|MAPPEDPG"), "{stdout}");
    assert!(stdout.trim_end().ends_with("00001000"), "{stdout}");

    // A page size field that is no page size: --page-size decides.
    flip(&path, 17);
    let out = run(&["dump", arg, "1", "--page-size", "1024"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("from --page-size"), "{stdout}");
    assert!(stdout.contains("bytes 1024..2048"), "{stdout}");
}

#[test]
fn page_numbers_are_read_and_shown_in_hex_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_file(dir.path(), "hex.pages");
    let arg = path.to_str().unwrap();
    let decimal = run(&["dump", arg, "17"]);
    let hex = run(&["dump", arg, "0x11"]);
    assert!(hex.status.success(), "{}", text(&hex.stderr));
    assert_eq!(text(&decimal.stdout), text(&hex.stdout));
    assert!(text(&hex.stdout).starts_with("page 17 (0x11) of "));
    let out = run(&["dump", arg, "0xZZ"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a page number"));
}

/// A file whose last commit wrote more pages than its root can check, so
/// that the checks went to check pages.
fn file_with_check_pages(dir: &Path) -> PathBuf {
    let path = dir.join("checks.pages");
    let mut pager = Pager::<PS>::create(&path).unwrap();
    let mut txn = pager.transaction().unwrap();
    for id in txn.alloc_bulk(400).unwrap() {
        txn.get_mut(id).unwrap().as_bytes_mut()[0] = 1;
    }
    txn.commit().unwrap();
    path
}

#[test]
fn pages_lists_every_kind_and_the_protected_slots() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_file(dir.path(), "list.pages");
    let arg = path.to_str().unwrap();
    let out = run(&["pages", arg]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for line in [
        "0 (0x0)                 superblock",
        "1 (0x1)                 metadata root, copy A",
        "2 (0x2)                 metadata root, copy B",
        "allocated regular page",
        "committed bytes",
        "free page",
        "protected slots in use: 1",
        "slot 0 ",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    // `list` is the same command.
    assert_eq!(text(&run(&["list", arg]).stdout), stdout);

    let json = text(&run(&["pages", "--json", arg]).stdout);
    assert!(
        json.contains(r#"{"start":0,"count":1,"kind":"superblock"}"#),
        "{json}"
    );
    assert!(json.contains(r#""kind":"regular""#), "{json}");
    assert!(
        json.contains(r#""protected":[{"slot":0,"copies":["#),
        "{json}"
    );

    let checks = file_with_check_pages(dir.path());
    let arg = checks.to_str().unwrap();
    let page = first_page_of_kind(arg, "check");
    let out = run(&["dump", arg, &page]);
    let stdout = text(&out.stdout);
    assert!(stdout.contains("(check page"), "{stdout}");
    assert!(stdout.contains("|MPCHECK"), "{stdout}");
}

/// The start of the first run of `kind` in the `pages --json` of `path`.
fn first_page_of_kind(path: &str, kind: &str) -> String {
    let json = text(&run(&["pages", "--json", path]).stdout);
    let at = json
        .find(&format!(r#","kind":"{kind}""#))
        .unwrap_or_else(|| panic!("no {kind} page listed: {json}"));
    let start = json[..at].rsplit(r#""start":"#).next().unwrap();
    start.split(',').next().unwrap().to_string()
}

#[test]
fn pages_and_dump_tell_bitmap_pages_from_directory_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trees.pages");
    let mut pager = Pager::<PS>::create(&path).unwrap();
    // More changes than a root's log holds: the commits checkpoint both
    // trees to pages of their own.
    for _ in 0..200 {
        pager.alloc_protected().unwrap();
        pager.alloc().unwrap();
    }
    drop(pager);
    let arg = path.to_str().unwrap();
    for (kind, label) in [
        ("bitmap", "(free-space bitmap page)"),
        ("directory", "(protected directory page)"),
    ] {
        let page = first_page_of_kind(arg, kind);
        let stdout = text(&run(&["dump", arg, &page]).stdout);
        assert!(stdout.contains(label), "{kind}: {stdout}");
    }
    let listing = text(&run(&["pages", arg]).stdout);
    assert!(!listing.contains("claimed by no structure"), "{listing}");
}

#[test]
fn info_and_check_print_json_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = good_file(dir.path(), "json.pages");
    let arg = path.to_str().unwrap();
    let out = run(&["info", "--json", arg]);
    assert!(out.status.success());
    let json = text(&out.stdout);
    assert_eq!(json.lines().count(), 1, "{json}");
    for field in [
        r#""opens":true"#,
        r#""page_size":4096"#,
        r#""regular_pages":39"#,
        r#""protected_pages":1"#,
        r#""fell_back":false"#,
    ] {
        assert!(json.contains(field), "{field}: {json}");
    }
    let out = run(&["check", "--json", arg]);
    assert!(out.status.success());
    let json = text(&out.stdout);
    assert!(json.contains(r#""clean":true"#), "{json}");
    assert!(json.contains(r#""problems":[]"#), "{json}");
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

/// Every allocated page (regular and protected) with its bytes.
fn contents<const P: usize>(snapshot: &Snapshot<P>) -> Vec<(bool, u64, Vec<u8>)> {
    let regular = snapshot
        .iter_allocated_pages()
        .map(|id| (false, id.0, snapshot.get(id).unwrap().as_bytes().to_vec()));
    let protected = snapshot.iter_allocated_protected_pages().map(|id| {
        let bytes = snapshot.get_protected(id).unwrap().as_bytes().to_vec();
        (true, id.0, bytes)
    });
    regular.chain(protected).collect()
}

fn assert_copy_matches<const P: usize>(src: &Path, dst: &Path) {
    let expect = contents(&Pager::<P>::open(src).unwrap().snapshot().unwrap());
    let copied = Pager::<P>::open(dst).unwrap();
    assert_eq!(contents(&copied.snapshot().unwrap()), expect);
    assert!(!expect.is_empty());
    drop(copied);
    let out = run(&["check", dst.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("OK "));
}

#[test]
fn copy_makes_a_file_that_opens_to_the_same_pages() {
    let dir = tempfile::tempdir().unwrap();
    let src = good_file(dir.path(), "good.pages");
    let dst = dir.path().join("copy.pages");
    let before = std::fs::read(&src).unwrap();
    let out = run(&["copy", src.to_str().unwrap(), dst.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("39 allocated pages"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(text(&out.stderr), "");
    assert_eq!(std::fs::read(&src).unwrap(), before);
    assert!(!dir.path().join("copy.pages.partial").exists());
    assert_copy_matches::<PS>(&src, &dst);
}

#[test]
fn copy_reads_the_page_size_from_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let (src, dst) = (
        dir.path().join("small.pages"),
        dir.path().join("copy.pages"),
    );
    let mut pager = Pager::<1024>::create(&src).unwrap();
    for (i, id) in pager.alloc_bulk(300).unwrap().into_iter().enumerate() {
        if i % 4 == 0 {
            pager.free(id).unwrap();
        } else {
            id.get_mut(&mut pager).unwrap().as_bytes_mut().fill(i as u8);
        }
    }
    drop(pager);
    let out = run(&["copy", src.to_str().unwrap(), dst.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_copy_matches::<1024>(&src, &dst);
}

#[test]
fn copy_of_a_damaged_or_missing_source_makes_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let dead = good_file(dir.path(), "dead.pages");
    flip(&dead, PS + 300);
    flip(&dead, 2 * PS + 300);
    let garbage = good_file(dir.path(), "garbage.pages");
    flip(&garbage, 20);
    let missing = dir.path().join("missing.pages");
    let dst = dir.path().join("copy.pages");
    // What the OS says of a missing file, in its own words.
    let not_found = std::io::Error::from_raw_os_error(
        std::fs::File::open(&missing)
            .unwrap_err()
            .raw_os_error()
            .unwrap(),
    )
    .to_string();
    for (src, says) in [
        (&dead, "both metadata copies are damaged"),
        (&garbage, "not a mappedpages file"),
        (&missing, not_found.as_str()),
    ] {
        let before = std::fs::read(src).ok();
        let arg = src.to_str().unwrap();
        let out = run(&["copy", arg, dst.to_str().unwrap()]);
        assert_one_line_error(&out, 2, arg);
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
        assert_eq!(std::fs::read(src).ok(), before);
        assert!(!dst.exists());
        assert!(!dir.path().join("copy.pages.partial").exists());
    }
}

#[test]
fn copy_refuses_an_existing_destination_and_a_locked_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = good_file(dir.path(), "good.pages");
    let dst = dir.path().join("taken.pages");
    std::fs::write(&dst, b"someone's data").unwrap();
    let out = run(&["copy", src.to_str().unwrap(), dst.to_str().unwrap()]);
    assert_one_line_error(&out, 2, dst.to_str().unwrap());
    assert!(
        text(&out.stderr).contains("exists"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&dst).unwrap(), b"someone's data");
    // The source's own name as the destination: refused the same way.
    let arg = src.to_str().unwrap();
    assert_one_line_error(&run(&["copy", arg, arg]), 2, arg);

    let writer = Pager::<PS>::open(&src).unwrap();
    let fresh = dir.path().join("fresh.pages");
    let out = run(&["copy", arg, fresh.to_str().unwrap()]);
    assert_one_line_error(&out, 2, arg);
    assert!(
        text(&out.stderr).contains("locked"),
        "{}",
        text(&out.stderr)
    );
    assert!(!fresh.exists());
    drop(writer);
    let out = run(&["copy", arg, fresh.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn copy_shows_progress_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let src = good_file(dir.path(), "good.pages");
    let dst = dir.path().join("copy.pages");
    let out = run(&[
        "copy",
        "--progress",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.ends_with('\n'), "{stderr:?}");
    let last = stderr.rsplit('\r').next().unwrap();
    // 39 regular pages and the committed copy of the protected page.
    assert!(last.starts_with("copying "), "{stderr:?}");
    assert!(last.contains("160.00 KiB/160.00 KiB"), "{stderr:?}");
}

#[test]
fn copy_reads_beside_a_writer_that_accepts_readers_of_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let src = good_file(dir.path(), "good.pages");
    let mut writer = Pager::<PS>::options()
        .process_readers(true)
        .open(&src)
        .unwrap();
    let expect = contents(&writer.snapshot().unwrap());
    let dst = dir.path().join("copy.pages");
    let out = run(&["copy", src.to_str().unwrap(), dst.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The writer goes on, and the copy holds the commit it read.
    writer.alloc().unwrap();
    let copied = Pager::<PS>::open(&dst).unwrap();
    assert_eq!(contents(&copied.snapshot().unwrap()), expect);
    assert!(
        writer.readers().unwrap().is_empty(),
        "the copy's reader is gone"
    );
}

#[test]
fn readers_lists_the_reader_table() {
    let dir = tempfile::tempdir().unwrap();
    let src = good_file(dir.path(), "good.pages");
    let arg = src.to_str().unwrap();
    // No table yet: a one-line error that says what to do.
    let out = run(&["readers", arg]);
    assert_one_line_error(&out, 2, arg);
    assert!(
        text(&out.stderr).contains("process_readers"),
        "{}",
        text(&out.stderr)
    );

    let mut writer = Pager::<PS>::options()
        .process_readers(true)
        .open(&src)
        .unwrap();
    let out = run(&["readers", arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("readers     0"),
        "{}",
        text(&out.stdout)
    );

    let reader = mappedpages::LiveReader::<PS>::open(&src).unwrap();
    let snapshot = reader.snapshot().unwrap();
    writer.alloc().unwrap();
    writer.alloc().unwrap();
    let out = run(&["readers", "--json", arg]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json = text(&out.stdout);
    assert!(
        json.contains(&format!("\"process_id\":{}", std::process::id())),
        "{json}"
    );
    assert!(
        json.contains(&format!("\"generation\":{}", snapshot.generation())),
        "{json}"
    );
    assert!(json.contains("\"behind\":2"), "{json}");
    let out = run(&["readers", arg]);
    assert!(
        text(&out.stdout).contains("readers     1"),
        "{}",
        text(&out.stdout)
    );
}

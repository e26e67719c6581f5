//! Two writers (contract D7): while one process holds a file through a
//! `Pager`, a second process that opens it gets `MappedPageError::Locked` at
//! once, in both directions; once the holder is gone the file opens again.
//!
//! The test re-executes its own binary as the second process, selected by
//! an environment variable.

use std::io::Write;
use std::path::Path;
use std::process::Child;

#[path = "support/process/mod.rs"]
mod process_support;
use process_support::result_of;

use mappedpages::{Durability, MappedPageError, PageId, Pager};

type P = Pager<1024>;

const ROLE_ENV: &str = "MAPPEDPAGES_LOCK_ROLE";
const PATH_ENV: &str = "MAPPEDPAGES_LOCK_PATH";
const TEST_NAME: &str = "second_process_gets_locked";

/// What the child reports on one line of its stdout.
fn open_outcome(path: &Path, deferred: bool) -> String {
    let durability = if deferred {
        Durability::Deferred
    } else {
        Durability::Immediate
    };
    match P::options().durability(durability).open(path) {
        Ok(_) => "OPENED".to_string(),
        Err(MappedPageError::Locked) => "LOCKED".to_string(),
        Err(e) => format!("ERROR {e}"),
    }
}

/// The child: `try` opens once and reports; `hold` opens, reports, writes a
/// page and keeps the file until its stdin closes.
fn child(role: &str, path: &Path) {
    let mut out = std::io::stdout().lock();
    match role {
        "try" | "try-deferred" => {
            let line = open_outcome(path, role == "try-deferred");
            writeln!(out, "RESULT {line}").unwrap();
        }
        "hold" => {
            let mut pager = P::open(path).unwrap();
            let id = pager.alloc().unwrap();
            id.get_mut(&mut pager).unwrap().as_bytes_mut().fill(0x5A);
            pager.sync().unwrap();
            writeln!(out, "RESULT HELD {}", id.0).unwrap();
            out.flush().unwrap();
            let mut rest = String::new();
            let _ = std::io::stdin().read_line(&mut rest);
            drop(pager);
        }
        other => panic!("unknown role {other}"),
    }
    out.flush().unwrap();
}

fn spawn(role: &str, path: &Path) -> Child {
    process_support::spawn_child(TEST_NAME, ROLE_ENV, role, PATH_ENV, path)
}

fn try_in_child(role: &str, path: &Path) -> String {
    let mut child = spawn(role, path);
    let result = result_of(&mut child);
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    result
}

#[test]
fn second_process_gets_locked() {
    if let (Ok(role), Ok(path)) = (std::env::var(ROLE_ENV), std::env::var(PATH_ENV)) {
        child(&role, Path::new(&path));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.bin");

    // This process holds the file: the other one is refused, in both modes.
    let mut pager = P::create(&path).unwrap();
    let mine = pager.alloc().unwrap();
    assert_eq!(try_in_child("try", &path), "LOCKED");
    assert_eq!(try_in_child("try-deferred", &path), "LOCKED");
    // The refused open changed nothing here.
    mine.get_mut(&mut pager).unwrap().as_bytes_mut().fill(7);
    pager.sync().unwrap();
    drop(pager);
    assert_eq!(try_in_child("try", &path), "OPENED");

    // The other process holds the file: this one is refused.
    let mut holder = spawn("hold", &path);
    let held = result_of(&mut holder);
    let theirs: u64 = held.strip_prefix("HELD ").unwrap().parse().unwrap();
    assert!(matches!(P::open(&path), Err(MappedPageError::Locked)));
    assert!(matches!(
        P::options().durability(Durability::Deferred).open(&path),
        Err(MappedPageError::Locked)
    ));
    // Release it, then this process opens the file and sees both writes.
    drop(holder.stdin.take());
    assert!(holder.wait().unwrap().success());
    let pager = P::open(&path).unwrap();
    assert!(mine.get(&pager).unwrap().as_bytes().iter().all(|&b| b == 7));
    let theirs = PageId::<1024>(theirs);
    assert!(theirs
        .get(&pager)
        .unwrap()
        .as_bytes()
        .iter()
        .all(|&b| b == 0x5A));
}

/// In one process: a second `Pager` on a held file is refused too.
#[test]
fn second_pager_in_one_process_gets_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.bin");
    let pager = P::create(&path).unwrap();
    assert!(matches!(P::open(&path), Err(MappedPageError::Locked)));
    drop(pager);
    assert!(P::open(&path).is_ok());
}

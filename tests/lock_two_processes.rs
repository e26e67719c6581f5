//! Two writers (contract D7): while one process holds a file through a
//! `Pager`, a second process that opens it gets `MappedPageError::Locked` at
//! once, in both directions; once the holder is gone the file opens again.
//!
//! The test re-executes its own binary as the second process, selected by
//! an environment variable.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(ROLE_ENV, role)
        .env(PATH_ENV, path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout up to its `RESULT` line. A child that blocked in
/// `open` instead of failing would never answer: after a generous grace
/// period it is killed and the test fails (a guard against a hang, not a
/// timing assertion).
fn result_of(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        // Read to the end, so that the child never writes into a closed pipe.
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(at) = line.find("RESULT ") {
                let _ = tx.send(line[at + 7..].trim().to_string());
            }
            line.clear();
        }
        let _ = tx.send("NO RESULT".to_string());
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(result) = rx.recv_timeout(Duration::from_millis(100)) {
            return result;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the second process neither opened the file nor failed: it blocked");
        }
    }
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

//! Read-only pagers in several processes (contract R5): any number of
//! processes read one file at once through a `ReadOnlyPager`; a writer in
//! another process gets `Locked` while they do and opens the file once they
//! are gone; a reader gets `Locked` while a writer holds the file; and no
//! reader writes a byte of it. A file on a read-only mount opens too.
//!
//! The tests re-execute this test binary as the other processes, selected
//! by an environment variable (as `lock_two_processes.rs` does).
//!
//! The read-only mount is a bind mount, remounted read-only, which needs
//! root. Where it is not possible, that test prints why on stderr and does
//! nothing else; `MAPPEDPAGES_REQUIRE_READ_ONLY_MOUNT=1` turns that into a
//! failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Child;

#[path = "support/process/mod.rs"]
mod process_support;
use process_support::{result_of, run};

use mappedpages::{MappedPageError, Pager, ProtectedPageId, ReadOnlyPager};

const PS: usize = 1024;
type P = Pager<PS>;
type R = ReadOnlyPager<PS>;

const ROLE_ENV: &str = "MAPPEDPAGES_RO_ROLE";
const PATH_ENV: &str = "MAPPEDPAGES_RO_PATH";
/// The test whose binary run the children are: it hands them to [`child`].
const CHILD_ENTRY: &str = "reader_processes_share_the_file_and_exclude_a_writer";

/// The byte each page of the test file is filled with.
fn fill_of(page: u64) -> u8 {
    (page as u8) ^ 0x5A
}

/// A file with `count` pages filled by [`fill_of`] and one protected page
/// whose first byte is 9; returns its generation.
fn make_file(path: &Path, count: usize) -> u64 {
    let mut pager = P::create(path).unwrap();
    let mut txn = pager.transaction().unwrap();
    for id in txn.alloc_bulk(count).unwrap() {
        txn.get_mut(id).unwrap().as_bytes_mut().fill(fill_of(id.0));
    }
    let root = txn.alloc_protected().unwrap();
    txn.write_protected(root).unwrap().as_bytes_mut()[0] = 9;
    txn.commit().unwrap();
    pager.generation()
}

/// What a read-only pager shows of a file made by [`make_file`]: its
/// generation and page count, or where it differs.
fn read_whole(reader: &R) -> Result<String, String> {
    let mut count = 0;
    for id in reader.iter_allocated_pages() {
        let bytes = reader.get(id).map_err(|e| e.to_string())?.as_bytes();
        if bytes.iter().any(|&b| b != fill_of(id.0)) {
            return Err(format!("page {} reads wrong", id.0));
        }
        count += 1;
    }
    let protected: Vec<_> = reader.iter_allocated_protected_pages().collect();
    let first = reader
        .get_protected(ProtectedPageId(0))
        .map_err(|e| e.to_string())?
        .as_bytes()[0];
    if protected != [ProtectedPageId(0)] || first != 9 {
        return Err(format!("protected pages {protected:?}, first byte {first}"));
    }
    Ok(format!("{} {count}", reader.generation()))
}

fn outcome<T>(result: Result<T, MappedPageError>, then: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => then(value),
        Err(MappedPageError::Locked) => "LOCKED".to_string(),
        Err(e) => format!("ERROR {e}"),
    }
}

/// The child: `read` opens a read-only pager, reports what it reads and
/// holds the file until its stdin closes; `read-once` and `write-once` open
/// (read-only or as a writer), report and exit.
fn child(role: &str, path: &Path) {
    let mut out = std::io::stdout().lock();
    match role {
        "read" | "read-once" => {
            let mut held = None;
            let line = outcome(R::open(path), |reader| {
                let line = match read_whole(&reader) {
                    Ok(seen) => format!("READ {seen}"),
                    Err(why) => format!("WRONG {why}"),
                };
                held = Some(reader);
                line
            });
            writeln!(out, "RESULT {line}").unwrap();
            out.flush().unwrap();
            if role == "read" {
                let mut rest = String::new();
                let _ = std::io::stdin().read_line(&mut rest);
            }
            drop(held);
        }
        "write-once" => {
            let line = outcome(P::open(path), |_| "OPENED".to_string());
            writeln!(out, "RESULT {line}").unwrap();
        }
        other => panic!("unknown role {other}"),
    }
    out.flush().unwrap();
}

fn spawn(role: &str, path: &Path) -> Child {
    process_support::spawn_child(CHILD_ENTRY, ROLE_ENV, role, PATH_ENV, path)
}

/// Closes the child's stdin (a holder lets go) and waits for it to exit.
fn release(mut child: Child) {
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
}

fn once_in_child(role: &str, path: &Path) -> String {
    let mut child = spawn(role, path);
    let result = result_of(&mut child);
    release(child);
    result
}

#[test]
fn reader_processes_share_the_file_and_exclude_a_writer() {
    if let (Ok(role), Ok(path)) = (std::env::var(ROLE_ENV), std::env::var(PATH_ENV)) {
        child(&role, Path::new(&path));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.pages");
    let generation = make_file(&path, 40);
    let before = std::fs::read(&path).unwrap();
    let expected = format!("READ {generation} 40");

    // Three processes hold the file at once, each having read all of it.
    let mut holders: Vec<Child> = (0..3).map(|_| spawn("read", &path)).collect();
    for holder in &mut holders {
        assert_eq!(result_of(holder), expected);
    }
    // A fourth reader joins them, in another process and in this one; a
    // writer is refused, in this process and in another.
    assert_eq!(once_in_child("read-once", &path), expected);
    let mine = R::open(&path).unwrap();
    assert_eq!(read_whole(&mine).unwrap(), expected["READ ".len()..]);
    assert!(matches!(P::open(&path), Err(MappedPageError::Locked)));
    assert_eq!(once_in_child("write-once", &path), "LOCKED");
    drop(mine);
    // One holder left is enough to keep the writer out.
    let last = holders.pop().unwrap();
    for holder in holders {
        release(holder);
    }
    assert_eq!(once_in_child("write-once", &path), "LOCKED");
    release(last);

    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a reader wrote the file"
    );
    assert_eq!(once_in_child("write-once", &path), "OPENED");
    P::open(&path).unwrap();
}

#[test]
fn a_reader_process_is_refused_while_a_writer_holds_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("held.pages");
    make_file(&path, 5);
    let mut pager = P::open(&path).unwrap();
    assert_eq!(once_in_child("read-once", &path), "LOCKED");
    // The writer goes on, untouched by the refused reader, and once it is
    // gone the reader sees its last commit.
    let id = pager.alloc().unwrap();
    id.get_mut(&mut pager)
        .unwrap()
        .as_bytes_mut()
        .fill(fill_of(id.0));
    let generation = pager.generation();
    drop(pager);
    assert_eq!(
        once_in_child("read-once", &path),
        format!("READ {generation} 6")
    );
    assert!(R::open(&path).unwrap().get(id).is_ok());
}

/// A directory seen twice: as itself, writable, and through a read-only
/// bind mount, unmounted when dropped (also when the test fails).
struct ReadOnlyView {
    // Dropped after the mount is gone (fields drop after `Drop::drop`).
    dir: tempfile::TempDir,
    mnt: PathBuf,
}

impl ReadOnlyView {
    fn new() -> Result<ReadOnlyView, String> {
        if !cfg!(target_os = "linux") {
            return Err("bind mounts are Linux only".into());
        }
        let dir = tempfile::tempdir().map_err(|e| format!("no temporary directory: {e}"))?;
        let src = dir.path().join("data");
        let mnt = dir.path().join("ro");
        for d in [&src, &mnt] {
            std::fs::create_dir(d).map_err(|e| e.to_string())?;
        }
        run(
            "mount",
            &["--bind".as_ref(), src.as_os_str(), mnt.as_os_str()],
        )?;
        let view = ReadOnlyView { dir, mnt };
        // Read-only takes a remount: a bind mount starts with the flags of
        // the mount it shows.
        run(
            "mount",
            &[
                "-o".as_ref(),
                "remount,bind,ro".as_ref(),
                view.mnt.as_os_str(),
            ],
        )?;
        Ok(view)
    }

    /// `name` in the writable directory, and through the read-only mount.
    fn paths(&self, name: &str) -> (PathBuf, PathBuf) {
        (self.dir.path().join("data").join(name), self.mnt.join(name))
    }
}

impl Drop for ReadOnlyView {
    fn drop(&mut self) {
        if run("umount", &[self.mnt.as_os_str()]).is_err() {
            // Something still holds it (a test that failed mid-way): detach
            // it now, the kernel frees it when released.
            if let Err(why) = run("umount", &["-l".as_ref(), self.mnt.as_os_str()]) {
                eprintln!(
                    "read_only_processes: could not unmount {}: {why}",
                    self.mnt.display()
                );
            }
        }
    }
}

#[test]
fn a_file_on_a_read_only_mount_opens_for_reading_only() {
    let view = match ReadOnlyView::new() {
        Ok(view) => view,
        Err(why) => {
            let message = format!("read_only_processes: skipping: no read-only mount: {why}");
            if std::env::var_os("MAPPEDPAGES_REQUIRE_READ_ONLY_MOUNT").is_some_and(|v| v == "1") {
                panic!("{message}");
            }
            eprintln!("{message}");
            return;
        }
    };
    let (writable, read_only) = view.paths("mounted.pages");
    let generation = make_file(&writable, 12);
    let expected = format!("READ {generation} 12");
    // The mount is really read-only, for this process too, root or not.
    let write = std::fs::OpenOptions::new().write(true).open(&read_only);
    assert_eq!(
        write.err().map(|e| e.kind()),
        Some(std::io::ErrorKind::ReadOnlyFilesystem)
    );
    assert!(matches!(P::open(&read_only), Err(MappedPageError::Io(_))));

    let mine = R::open(&read_only).unwrap();
    assert_eq!(read_whole(&mine).unwrap(), expected["READ ".len()..]);
    assert_eq!(once_in_child("read-once", &read_only), expected);
    // The lock is the file's, whichever way it was reached: a writer on the
    // writable path is refused while the reader holds the file.
    assert!(matches!(P::open(&writable), Err(MappedPageError::Locked)));
    drop(mine);
    P::open(&writable).unwrap();
}

//! Every way of opening a file refuses anything but a regular file at once,
//! with one error: a directory, and on unix a FIFO, which a read-only
//! open would otherwise wait on for ever for a writer.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use mappedpages::inspect::Inspector;
use mappedpages::{MappedPageError, Pager, ReadOnlyPager};

const PS: usize = 4096;

/// What each open path makes of `path`, each in a thread of its own, so
/// that one that hangs fails the test instead of stopping it.
fn open_every_way(path: &Path) -> Vec<(&'static str, MappedPageError)> {
    type Open = fn(&Path) -> Result<(), MappedPageError>;
    let ways: [(&'static str, Open); 4] = [
        ("Pager::open", |p| Pager::<PS>::open(p).map(drop)),
        ("ReadOnlyPager::open", |p| {
            ReadOnlyPager::<PS>::open(p).map(drop)
        }),
        ("Inspector::open", |p| Inspector::open(p).map(drop)),
        ("PagerOptions::open", |p| {
            Pager::<PS>::options().open(p).map(drop)
        }),
    ];
    ways.into_iter()
        .map(|(name, open)| {
            let (tx, rx) = mpsc::channel();
            let owned = path.to_path_buf();
            std::thread::spawn(move || {
                let _ = tx.send(open(&owned));
            });
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(Err(err)) => (name, err),
                Ok(Ok(())) => panic!("{name} opened {}", path.display()),
                Err(_) => panic!("{name} of {} did not return", path.display()),
            }
        })
        .collect()
}

fn assert_refused(path: &Path) {
    for (name, err) in open_every_way(path) {
        assert!(
            matches!(err, MappedPageError::NotARegularFile),
            "{name} of {}: {err:?}",
            path.display()
        );
    }
}

#[test]
fn a_directory_is_refused_alike_by_every_open() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("a directory");
    std::fs::create_dir(&sub).unwrap();
    assert_refused(&sub);
    assert!(sub.is_dir());
}

#[test]
fn a_missing_file_is_still_not_found() {
    let dir = tempfile::tempdir().unwrap();
    for (name, err) in open_every_way(&dir.path().join("missing")) {
        assert!(
            matches!(&err, MappedPageError::Io(e) if e.kind() == std::io::ErrorKind::NotFound),
            "{name}: {err:?}"
        );
    }
}

#[cfg(unix)]
#[test]
fn a_fifo_is_refused_at_once_by_every_open() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("a fifo");
    let status = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(status.success());
    assert_refused(&fifo);
    // A copy's destination that is a FIFO is a name taken.
    let src = dir.path().join("data.pages");
    let pager = Pager::<PS>::create(&src).unwrap();
    let copied = pager.snapshot().unwrap().copy_to(&fifo);
    assert!(
        matches!(&copied, Err(MappedPageError::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists),
        "{copied:?}"
    );
}

#[cfg(not(unix))]
#[test]
fn a_fifo_is_refused_at_once_by_every_open() {
    eprintln!("skipped: FIFOs are a unix feature");
}

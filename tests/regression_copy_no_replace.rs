//! A copy never replaces a file at its destination, not even one that
//! appears while the copy runs, and leaves no temporary file behind on any
//! path out of it, a panic in its progress callback included.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use mappedpages::{MappedPageError, Pager, Snapshot};

const PS: usize = 4096;

/// A source with enough pages that a copy reports progress.
fn source(dir: &Path) -> Pager<PS> {
    let mut pager = Pager::<PS>::create(dir.join("source.pages")).unwrap();
    for (i, id) in pager.alloc_bulk(64).unwrap().into_iter().enumerate() {
        id.get_mut(&mut pager).unwrap().as_bytes_mut().fill(i as u8);
    }
    pager.sync().unwrap();
    pager
}

fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn set(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn is_already_exists(result: &Result<(), MappedPageError>) -> bool {
    matches!(result, Err(MappedPageError::Io(e)) if e.kind() == ErrorKind::AlreadyExists)
}

fn assert_copy_of(snapshot: &Snapshot<PS>, copy: &Path) {
    let copied = Pager::<PS>::open(copy).unwrap();
    let ids: Vec<_> = snapshot.iter_allocated_pages().collect();
    assert_eq!(copied.iter_allocated_pages().collect::<Vec<_>>(), ids);
    for id in ids {
        assert_eq!(
            id.get(&copied).unwrap().as_bytes(),
            snapshot.get(id).unwrap().as_bytes()
        );
    }
}

#[test]
fn a_file_made_at_the_destination_during_the_copy_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let pager = source(dir.path());
    let dest = dir.path().join("copy.pages");
    let result = pager
        .snapshot()
        .unwrap()
        .copy_to_with_progress(&dest, |_, _| {
            if !dest.exists() {
                std::fs::write(&dest, b"made meanwhile").unwrap();
            }
        });
    assert!(is_already_exists(&result), "{result:?}");
    assert_eq!(std::fs::read(&dest).unwrap(), b"made meanwhile");
    assert_eq!(names(dir.path()), set(&["copy.pages", "source.pages"]));
}

#[test]
fn of_two_copies_to_one_destination_the_one_that_finishes_second_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pager = source(dir.path());
    let snapshot = pager.snapshot().unwrap();
    let dest = dir.path().join("copy.pages");
    let mut inner = None;
    // The second copy starts and finishes while the first is under way.
    let outer = snapshot.copy_to_with_progress(&dest, |_, _| {
        if inner.is_none() {
            inner = Some(snapshot.copy_to(&dest));
        }
    });
    assert!(matches!(inner, Some(Ok(()))), "{inner:?}");
    assert!(is_already_exists(&outer), "{outer:?}");
    assert_copy_of(&snapshot, &dest);
    assert_eq!(names(dir.path()), set(&["copy.pages", "source.pages"]));
}

#[test]
fn copies_racing_from_threads_make_one_complete_file() {
    let dir = tempfile::tempdir().unwrap();
    let pager = source(dir.path());
    let snapshot = pager.snapshot().unwrap();
    for round in 0..8 {
        let dest = dir.path().join(format!("copy{round}.pages"));
        let results: Vec<_> = std::thread::scope(|s| {
            let copiers: Vec<_> = (0..3)
                .map(|_| s.spawn(|| snapshot.copy_to(&dest)))
                .collect();
            copiers.into_iter().map(|c| c.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        assert!(results.iter().all(|r| r.is_ok() || is_already_exists(r)));
        assert_copy_of(&snapshot, &dest);
    }
    let mut expect: Vec<String> = (0..8).map(|r| format!("copy{r}.pages")).collect();
    expect.push("source.pages".into());
    assert_eq!(names(dir.path()), expect.into_iter().collect());
}

#[test]
fn a_panic_in_the_progress_callback_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let pager = source(dir.path());
    let snapshot = pager.snapshot().unwrap();
    let dest = dir.path().join("copy.pages");
    let unwound = catch_unwind(AssertUnwindSafe(|| {
        let _ = snapshot.copy_to_with_progress(&dest, |_, _| panic!("stop the copy"));
    }));
    assert!(unwound.is_err());
    assert_eq!(names(dir.path()), set(&["source.pages"]));
    // And the destination is free for the next copy.
    snapshot.copy_to(&dest).unwrap();
    assert_copy_of(&snapshot, &dest);
}

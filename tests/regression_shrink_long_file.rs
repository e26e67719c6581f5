//! A file can be longer than the pages its roots count on: a crash after a
//! growth, a cut that failed, or (where a mapped file cannot be cut, as on
//! Windows) a cut that a snapshot deferred before the pager was closed. The
//! file opens all the same; a `shrink` must then cut those bytes even when
//! it has no free tail to give back, and a pager closed after its snapshots
//! were dropped must leave no deferred cut behind.
//!
//! Found by the model test under Wine: a shrink under a snapshot deferred
//! its cut, the pager was closed and reopened, and a later shrink left the
//! file 31 pages longer than it counted.

use mappedpages::{PageId, Pager};

const N: usize = 1024;

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.pages");
    (dir, path)
}

fn file_len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Writes `i` into the first bytes of each page, for checking after reopen.
fn write_marks(pager: &mut Pager<N>, ids: &[PageId<N>]) {
    for (i, id) in ids.iter().enumerate() {
        id.get_mut(pager).unwrap().as_bytes_mut()[..8].copy_from_slice(&(i as u64).to_le_bytes());
    }
    pager.sync().unwrap();
}

fn check_marks(pager: &Pager<N>, ids: &[PageId<N>]) {
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(
            id.get(pager).unwrap().as_bytes()[..8],
            (i as u64).to_le_bytes()
        );
    }
}

#[test]
fn a_shrink_cuts_bytes_past_the_counted_pages_with_no_tail_to_give() {
    let (_dir, path) = temp();
    let mut pager = Pager::<N>::options()
        .shrink_threshold(None)
        .create(&path)
        .unwrap();
    let ids = pager.alloc_bulk(40).unwrap();
    write_marks(&mut pager, &ids);
    pager.shrink().unwrap();
    let counted = pager.page_count();
    drop(pager);
    assert_eq!(file_len(&path), counted * N as u64);

    // Bytes past the counted pages, as a crash after a growth leaves them.
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len((counted + 37) * N as u64).unwrap();
    drop(file);

    let mut pager = Pager::<N>::open(&path).unwrap();
    assert_eq!(
        pager.page_count(),
        counted,
        "open counts what the root counts"
    );
    assert_eq!(
        pager.shrink().unwrap(),
        0,
        "no page in the tail to give back"
    );
    assert_eq!(
        file_len(&path),
        counted * N as u64,
        "the extra bytes are cut"
    );
    check_marks(&pager, &ids);
    let more = pager.alloc_bulk(50).unwrap();
    assert!(
        pager.page_count() > counted,
        "the pager grows again after it"
    );
    write_marks(&mut pager, &more);
    drop(pager);

    let pager = Pager::<N>::open(&path).unwrap();
    check_marks(&pager, &ids);
    check_marks(&pager, &more);
}

#[test]
fn a_cut_under_a_snapshot_is_made_by_the_close_after_it_is_dropped() {
    let (_dir, path) = temp();
    let mut pager = Pager::<N>::options()
        .shrink_threshold(None)
        .create(&path)
        .unwrap();
    let kept = pager.alloc_bulk(20).unwrap();
    write_marks(&mut pager, &kept);
    let tail = pager.alloc_bulk(300).unwrap();
    pager.sync().unwrap();
    pager.free_bulk(tail).unwrap();
    pager.sync().unwrap();
    // It reads none of the freed pages, but its view maps them.
    let snapshot = pager.snapshot().unwrap();
    let given = pager.shrink().unwrap();
    assert!(given > 0, "the freed tail is given back");
    let counted = pager.page_count();
    // Where a mapped file can be cut the cut is made at once; where it
    // cannot, the snapshot's view defers it and the file may stay longer.
    assert!(file_len(&path) >= counted * N as u64);
    check_marks(&pager, &kept);
    drop(snapshot);
    drop(pager);
    assert_eq!(
        file_len(&path),
        counted * N as u64,
        "the cut waited for the snapshot, and the close made it"
    );
    let pager = Pager::<N>::open(&path).unwrap();
    assert_eq!(pager.page_count(), counted);
    check_marks(&pager, &kept);
}

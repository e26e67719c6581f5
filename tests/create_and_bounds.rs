//! Counts no file could hold, and `create` that fails or is stopped part
//! way (contract E1, E2).
//!
//! - A count whose pages could not fit in any file this pager can have (the
//!   format's page numbers, the largest file the OS and the address space
//!   allow: the pager maps the whole file) is `InvalidCount` before anything
//!   is touched: the file keeps its length and the pager goes on.
//! - A `create` that fails removes the file it made.
//! - A file left by a `create` that was stopped part way opens as
//!   `IncompleteCreate`, whose advice (delete it, create it again) works; a
//!   file that was used is never reported so.

#[path = "support/os/mod.rs"]
mod os_support;

use os_support::FileExt;
use std::fs::{self, OpenOptions};
use std::path::Path;

use mappedpages::{MappedPageError, Pager};

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

fn assert_invalid_count<T: std::fmt::Debug>(result: Result<T, MappedPageError>, what: &str) {
    match result {
        Err(MappedPageError::InvalidCount { .. }) => {}
        other => panic!("{what}: expected InvalidCount, got {other:?}"),
    }
}

fn absurd_counts_change_nothing<const N: usize>(preallocate: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages");
    let mut pager = Pager::<N>::options()
        .preallocate(preallocate)
        .create(&path)
        .unwrap();
    let kept = pager.alloc_bulk(5).unwrap();
    let (pages, len) = (pager.page_count(), file_len(&path));
    let generation = pager.generation();
    // Past any page number, past any file this process can map, and the
    // largest; on 32-bit targets the first two are halves of the range.
    let huge = |shift: u32, or: usize| usize::try_from(1u64 << shift).unwrap_or(or);
    for count in [
        huge(50, usize::MAX / 2),
        huge(45, usize::MAX / 4),
        usize::MAX,
    ] {
        let what = format!("Pager<{N}> (preallocate {preallocate}), count {count}");
        assert_invalid_count(pager.alloc_bulk(count), &format!("{what}: alloc_bulk"));
        assert_invalid_count(
            pager.alloc_protected_bulk(count),
            &format!("{what}: alloc_protected_bulk"),
        );
        assert_eq!(file_len(&path), len, "{what}: the file changed");
        assert_eq!(pager.page_count(), pages, "{what}: the page count changed");
        assert_eq!(pager.generation(), generation, "{what}: a commit was made");
    }
    // Still usable, and the file reopens as it was.
    let id = pager.alloc().unwrap();
    pager.free(kept[0]).unwrap();
    let allocated = pager.allocated_page_count();
    drop(pager);
    let pager = Pager::<N>::open(&path).unwrap();
    assert_eq!(pager.allocated_page_count(), allocated);
    assert!(id.get(&pager).is_ok());
}

/// `alloc_bulk(1 << 50)` used to be `Io(FileTooLarge)`; with preallocation
/// off, `alloc_bulk(1 << 45)` left a 2^57-byte file that never opened again.
#[test]
fn counts_no_file_could_hold_are_invalid_count_and_change_nothing() {
    for preallocate in [true, false] {
        absurd_counts_change_nothing::<4096>(preallocate);
        absurd_counts_change_nothing::<1024>(preallocate);
    }
}

/// A count that fits next to the pages in use is not refused for being
/// large: the bound is what a file can hold, not a fixed figure.
#[test]
fn a_large_count_that_fits_is_allocated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages");
    let mut pager = Pager::<4096>::options()
        .preallocate(false)
        .create(&path)
        .unwrap();
    // 4 GiB of pages, or 512 MiB where a process maps at most 2 GiB.
    let count = if cfg!(target_pointer_width = "32") {
        1 << 17
    } else {
        1 << 20
    };
    let ids = pager.alloc_bulk(count).unwrap();
    assert_eq!(ids.len(), count);
    assert_eq!(file_len(&path), pager.page_count() * 4096);
}

#[test]
fn a_create_too_large_for_any_file_is_invalid_count_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages");
    for pages in [1u64 << 50, 1 << 45, u64::MAX] {
        let created = Pager::<4096>::options()
            .preallocate(false)
            .initial_pages(pages)
            .create(&path);
        assert_invalid_count(created, &format!("initial_pages({pages})"));
        assert!(
            !path.exists(),
            "initial_pages({pages}): a failed create left a file"
        );
    }
    // So `create` works at once, and the file opens.
    drop(Pager::<4096>::create(&path).unwrap());
    assert_eq!(
        Pager::<4096>::open(&path).unwrap().allocated_page_count(),
        0
    );
}

fn expect_incomplete(path: &Path, what: &str) {
    match Pager::<1024>::open(path) {
        Err(err @ MappedPageError::IncompleteCreate) => {
            assert!(err.to_string().contains("delete it"), "{what}: {err}");
        }
        other => panic!("{what}: expected IncompleteCreate, got {other:?}"),
    }
    // The advice works.
    fs::remove_file(path).unwrap();
    drop(Pager::<1024>::create(path).unwrap());
    Pager::<1024>::open(path).unwrap();
}

/// What a crash in the middle of `create` can leave: `create` extends the
/// new file, writes and syncs the roots, then writes and syncs the
/// superblock. So the file is empty, or zeros, or has its roots but no
/// superblock, or part of one (a torn write).
#[test]
fn a_create_stopped_part_way_is_incomplete_create() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages");

    fs::write(&path, b"").unwrap();
    expect_incomplete(&path, "empty file");

    fs::write(&path, vec![0u8; 64 * 1024]).unwrap();
    expect_incomplete(&path, "zeros");

    let superblock = fs::read(&path).unwrap()[..1024].to_vec();
    for (what, page0) in [
        ("roots without superblock", vec![0u8; 1024]),
        ("first 8 bytes of the superblock", {
            let mut torn = superblock.clone();
            torn[8..].fill(0);
            torn
        }),
        ("superblock without its checksum", {
            let mut torn = superblock.clone();
            torn[60..64].fill(0);
            torn
        }),
    ] {
        fs::remove_file(&path).unwrap();
        drop(Pager::<1024>::create(&path).unwrap());
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&page0, 0).unwrap();
        drop(file);
        expect_incomplete(&path, what);
    }
}

/// A file with commits after `create` holds data: a lost superblock there
/// is damage, reported as such, never as a create to redo.
#[test]
fn a_used_file_without_its_superblock_is_corrupt_superblock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages");
    let mut pager = Pager::<1024>::create(&path).unwrap();
    pager.alloc().unwrap();
    drop(pager);
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0u8; 1024], 0).unwrap();
    drop(file);
    match Pager::<1024>::open(&path) {
        Err(MappedPageError::CorruptSuperblock) => {}
        other => panic!("expected CorruptSuperblock, got {other:?}"),
    }
    // Garbage in page 0 is not a create stopped part way either.
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    file.write_all_at(&[0xA5u8; 1024], 0).unwrap();
    drop(file);
    assert!(matches!(
        Pager::<1024>::open(&path),
        Err(MappedPageError::CorruptSuperblock)
    ));
}

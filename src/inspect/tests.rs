//! The inspector agrees with `Pager::open` on good and damaged files, and
//! never panics on foreign bytes.

use super::*;
use crate::{Durability, Pager};
use std::path::PathBuf;

const PS: usize = 1024;

fn file_with_state(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    let path = dir.path().join(name);
    let mut pager = Pager::<PS>::options()
        .durability(Durability::Deferred)
        .create(&path)
        .unwrap();
    let pages = pager.alloc_bulk(3000).unwrap();
    for id in pages.iter().step_by(3) {
        pager.free(*id).unwrap();
    }
    let protected = pager.alloc_protected_bulk(5).unwrap();
    let mut writer = protected[1].get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut()[0] = 7;
    writer.commit().unwrap();
    // A last commit that Deferred mode leaves unsynced (a protected commit
    // is synced in every mode).
    pager.free(pages[1]).unwrap();
    pager.sync().unwrap();
    path
}

fn rewrite(path: &Path, edit: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    edit(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

/// What the inspector says `open` sees, next to what `open` sees.
fn agrees_with_open(path: &Path) -> Option<RecoveryReport> {
    let inspected = Inspector::open(path).and_then(|i| i.info());
    match Pager::<PS>::open(path) {
        Ok(pager) => {
            let info = inspected.unwrap();
            assert_eq!(&info.recovery, pager.recovery());
            assert_eq!(info.total_pages, pager.page_count());
            assert_eq!(info.regular_pages, pager.allocated_page_count());
            assert_eq!(info.free_pages, pager.free_page_count());
            assert_eq!(
                info.protected_pages,
                pager.iter_allocated_protected_pages().count() as u64
            );
            Some(info.recovery)
        }
        Err(err) => {
            let mine = inspected.unwrap_err();
            assert_eq!(mine.to_string(), err.to_string());
            None
        }
    }
}

#[test]
fn info_matches_the_pager() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with_state(&dir, "good.pages");
    let recovery = agrees_with_open(&path).unwrap();
    assert!(!recovery.fell_back);
    let file = Inspector::open(&path).unwrap();
    let info = file.info().unwrap();
    assert_eq!(info.page_size, PS as u64);
    assert_eq!(info.regular_pages, 1999);
    assert_eq!(info.protected_pages, 5);
    assert!(info.tree_pages > 0, "3000 pages at 1 KiB need a checkpoint");
    assert_eq!(
        info.total_pages,
        3 + info.regular_pages + 2 * info.protected_pages + info.tree_pages + info.free_pages
    );
    assert!(!info.recovery.last_commit_synced, "Deferred");
    let report = file.check().unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.info.as_ref(), Some(&info));
}

#[test]
fn page_kinds_cover_every_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kinds.pages");
    let mut pager = Pager::<PS>::create(&path).unwrap();
    let regular = pager.alloc().unwrap();
    let protected = pager.alloc_protected().unwrap();
    let mut writer = protected.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut()[0] = 1;
    writer.commit().unwrap();
    let total = pager.page_count();
    drop(pager);
    let file = Inspector::open(&path).unwrap();
    assert_eq!(file.page_kind(1).unwrap(), PageKind::Root(0));
    assert_eq!(file.page_kind(regular.0).unwrap(), PageKind::Regular);
    let kinds: Vec<PageKind> = (3..total).map(|p| file.page_kind(p).unwrap()).collect();
    let committed = kinds
        .iter()
        .filter(|k| matches!(k, PageKind::ProtectedCopy { slot, committed: true, .. } if *slot == protected.0))
        .count();
    let copies = kinds
        .iter()
        .filter(|k| matches!(k, PageKind::ProtectedCopy { .. }))
        .count();
    assert_eq!((committed, copies), (1, 2));
    assert!(matches!(
        file.page_kind(total),
        Err(MappedPageError::OutOfBounds)
    ));
}

#[test]
fn a_damaged_newest_copy_is_a_problem_but_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with_state(&dir, "fallback.pages");
    let info = Inspector::open(&path).unwrap().info().unwrap();
    let newest = 1 + info.recovery.root_copy as usize;
    rewrite(&path, |b| b[newest * PS + 200] ^= 0x10);
    let recovery = agrees_with_open(&path).unwrap();
    assert!(recovery.fell_back);
    let file = Inspector::open(&path).unwrap();
    assert!(matches!(file.copies()[newest - 1], RootCopy::Damaged(_)));
    let report = file.check().unwrap();
    assert!(matches!(
        &report.problems[..],
        [Problem::CopyRejected { copy, .. }] if *copy as usize == newest - 1
    ));
    assert!(!report.problems[0].prevents_open());
    assert!(report.problems[0]
        .to_string()
        .contains("opens at generation"));
}

#[test]
fn a_damaged_tree_page_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with_state(&dir, "tree.pages");
    let file = Inspector::open(&path).unwrap();
    let info = file.info().unwrap();
    let RootCopy::Decoded(root) = &info.copies[info.recovery.root_copy as usize] else {
        panic!("the opened copy decodes");
    };
    let top = root.bitmap_top;
    assert!(top >= 3);
    drop(file);
    // Damage the bitmap tree's top page in both roots' view: both copies
    // share it or the older one no longer loads, so nothing opens, or open
    // falls back; either way the inspector agrees and check says so.
    rewrite(&path, |b| b[top as usize * PS + 5] ^= 1);
    agrees_with_open(&path);
    let report = Inspector::open(&path).unwrap().check().unwrap();
    assert!(!report.is_clean());
}

#[test]
fn truncated_and_blank_files_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with_state(&dir, "cut.pages");
    let len = std::fs::metadata(&path).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(len - PS as u64)
        .unwrap();
    assert!(agrees_with_open(&path).is_none());
    let report = Inspector::open(&path).unwrap().check().unwrap();
    assert!(matches!(&report.problems[..], [Problem::Truncated { .. }]));
    assert!(report.problems[0].prevents_open());

    let path = file_with_state(&dir, "blank.pages");
    rewrite(&path, |b| b[PS..3 * PS].fill(0));
    assert!(agrees_with_open(&path).is_none());
    let file = Inspector::open(&path).unwrap();
    assert_eq!(file.copies(), &[RootCopy::Blank, RootCopy::Blank]);
    let report = file.check().unwrap();
    assert!(matches!(
        &report.problems[..],
        [Problem::NoValidRoot { .. }]
    ));
    assert!(report.info.is_none());
}

#[test]
fn foreign_and_short_files_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign");
    for bytes in [&b""[..], b"hello", &[0u8; 8192], &[0xFF; 70]] {
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(
            Inspector::open(&path),
            Err(MappedPageError::CorruptSuperblock)
        ));
    }
    assert!(matches!(
        Inspector::open(dir.path().join("missing")),
        Err(MappedPageError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
    ));
    // A valid superblock alone: the roots are missing.
    let mut page = vec![0u8; PS];
    superblock::encode(&mut page, PS as u64);
    std::fs::write(&path, &page).unwrap();
    let file = Inspector::open(&path).unwrap();
    assert!(matches!(file.copies()[0], RootCopy::Damaged(_)));
    assert!(matches!(file.info(), Err(MappedPageError::CorruptMetadata)));
    assert!(!file.check().unwrap().is_clean());
    // An absurd page size with a valid checksum.
    superblock::encode(&mut page, 24);
    std::fs::write(&path, &page).unwrap();
    assert!(matches!(
        Inspector::open(&path),
        Err(MappedPageError::CorruptSuperblock)
    ));
}

#[test]
fn garbage_anywhere_never_panics_and_agrees_with_open() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(file_with_state(&dir, "seed.pages")).unwrap();
    let path = dir.path().join("fuzzed.pages");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..60 {
        let mut bytes = good.clone();
        for _ in 0..1 + next() % 4 {
            // Mostly the metadata pages, sometimes anywhere.
            let at = if next() % 2 == 0 {
                (PS as u64 + next() % (2 * PS as u64)) as usize
            } else {
                (next() % bytes.len() as u64) as usize
            };
            bytes[at] = next() as u8;
        }
        std::fs::write(&path, &bytes).unwrap();
        agrees_with_open(&path);
        if let Ok(file) = Inspector::open(&path) {
            let _ = file.check().unwrap();
            let _ = file.page_kind(next() % 64);
        }
    }
}

#[test]
fn progress_is_monotonic_and_ends_complete() {
    let dir = tempfile::tempdir().unwrap();
    let path = file_with_state(&dir, "progress.pages");
    let mut calls = Vec::new();
    let report = Inspector::open(&path)
        .unwrap()
        .check_with_progress(|p| calls.push(p))
        .unwrap();
    assert!(calls.len() > 2);
    assert!(calls.windows(2).all(|w| w[0].pages_read <= w[1].pages_read));
    assert!(calls.iter().all(|p| p.pages_read <= p.pages_expected));
    let last = calls.last().unwrap();
    assert_eq!(last.pages_read, last.pages_expected);
    assert_eq!(report.pages_read, last.pages_read);
}

#[test]
fn the_log_decodes_into_public_entries() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.pages");
    let mut pager = Pager::<PS>::create(&path).unwrap();
    let id = pager.alloc().unwrap();
    let protected = pager.alloc_protected().unwrap();
    drop(pager);
    let file = Inspector::open(&path).unwrap();
    // Generation 1 went to copy A, 2 to B, 3 to A.
    let RootCopy::Decoded(root) = &file.copies()[0] else {
        panic!("generation 3 is in copy A");
    };
    assert_eq!(root.generation, 3);
    assert_eq!(
        root.log[0],
        LogEntry::Alloc {
            start: id.0,
            count: 1
        }
    );
    assert!(root.log.iter().any(|entry| matches!(
        entry,
        LogEntry::Slot { slot, state: SlotState::Fresh, .. } if *slot == protected.0
    )));
    assert_eq!(root.log_capacity, 37);
    assert!(root.synced);
}

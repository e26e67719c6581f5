//! Behaviour of the public API on ordinary and bad input.

#[path = "support/os/mod.rs"]
mod os_support;

use mappedpages::{MappedPageError, PageId, Pager, ProtectedPageId};
use std::io::ErrorKind;

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pages.bin");
    (dir, path)
}

#[test]
fn create_refuses_an_existing_file_and_open_a_missing_one() {
    let (_dir, path) = temp();
    drop(Pager::<1024>::create(&path).unwrap());
    match Pager::<1024>::create(&path) {
        Err(MappedPageError::Io(e)) => assert_eq!(e.kind(), ErrorKind::AlreadyExists),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    let missing = path.with_extension("missing");
    match Pager::<1024>::open(&missing) {
        Err(MappedPageError::Io(e)) => assert_eq!(e.kind(), ErrorKind::NotFound),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[test]
fn open_with_another_page_size_is_invalid_page_size() {
    let (_dir, path) = temp();
    drop(Pager::<4096>::create(&path).unwrap());
    assert!(matches!(
        Pager::<1024>::open(&path),
        Err(MappedPageError::InvalidPageSize)
    ));
    assert!(Pager::<4096>::open(&path).is_ok());
}

#[test]
fn a_second_pager_on_a_locked_file_gets_the_lock_error() {
    let (_dir, path) = temp();
    let pager = Pager::<1024>::create(&path).unwrap();
    assert!(matches!(
        Pager::<1024>::open(&path),
        Err(MappedPageError::Locked)
    ));
    drop(pager);
    assert!(Pager::<1024>::open(&path).is_ok());
}

#[test]
fn regular_pages_round_trip_through_reopen() {
    let (_dir, path) = temp();
    let mut pager = Pager::<1024>::create(&path).unwrap();
    let ids = pager.alloc_bulk(5).unwrap();
    for (i, id) in ids.iter().enumerate() {
        id.get_mut(&mut pager)
            .unwrap()
            .as_bytes_mut()
            .fill(i as u8 + 1);
    }
    pager.free(ids[2]).unwrap();
    pager.sync().unwrap();
    drop(pager);
    let pager = Pager::<1024>::open(&path).unwrap();
    let live: Vec<_> = pager.iter_allocated_pages().collect();
    assert_eq!(live, vec![ids[0], ids[1], ids[3], ids[4]]);
    for (i, id) in ids.iter().enumerate() {
        if i == 2 {
            assert!(matches!(
                id.get(&pager),
                Err(MappedPageError::NotAllocated { .. })
            ));
        } else {
            let page = id.get(&pager).unwrap();
            assert_eq!(page.len(), 1024);
            assert!(page.as_bytes().iter().all(|&b| b == i as u8 + 1));
        }
    }
}

#[test]
fn bad_ids_get_typed_errors_and_change_nothing() {
    let (_dir, path) = temp();
    let mut pager = Pager::<1024>::create(&path).unwrap();
    let a = pager.alloc().unwrap();
    let p = pager.alloc_protected().unwrap();
    let generation = pager.generation();
    let free_before = pager.free_page_count();

    assert!(matches!(
        PageId::<1024>(0).get(&pager),
        Err(MappedPageError::ReservedPage)
    ));
    assert!(matches!(
        PageId::<1024>(1 << 40).get(&pager),
        Err(MappedPageError::OutOfBounds)
    ));
    assert!(matches!(
        pager.free(PageId(2)),
        Err(MappedPageError::ReservedPage)
    ));
    assert!(matches!(
        pager.free(PageId(1 << 40)),
        Err(MappedPageError::OutOfBounds)
    ));
    assert!(matches!(
        pager.free_bulk(vec![a, a]),
        Err(MappedPageError::DoubleFree)
    ));
    assert!(pager.alloc_bulk(0).unwrap().is_empty());
    assert!(matches!(
        pager.alloc_bulk(usize::MAX),
        Err(MappedPageError::InvalidCount { .. })
    ));
    assert!(matches!(
        pager.free_protected(ProtectedPageId(99)),
        Err(MappedPageError::OutOfBounds)
    ));
    // Every page that is not a live regular page is refused by get.
    let internal: Vec<u64> = (3..pager.page_count())
        .filter(|&p| p != a.0 && PageId::<1024>(p).get(&pager).is_ok())
        .collect();
    assert!(internal.is_empty(), "internal pages visible: {internal:?}");
    for raw in 3..pager.page_count() {
        if raw != a.0 {
            assert!(pager.free(PageId(raw)).is_err());
        }
    }
    assert_eq!(pager.generation(), generation);
    assert_eq!(pager.free_page_count(), free_before);
    assert!(a.get(&pager).is_ok());
    assert!(p.get(&pager).is_ok());
    pager.free(a).unwrap();
    assert!(matches!(pager.free(a), Err(MappedPageError::DoubleFree)));
}

#[test]
fn protected_pages_start_zero_and_partial_writes_keep_committed_bytes() {
    let (_dir, path) = temp();
    let mut pager = Pager::<1024>::create(&path).unwrap();
    let id = pager.alloc_protected().unwrap();
    assert!(id.get(&pager).unwrap().as_bytes().iter().all(|&b| b == 0));
    for round in 1..=4u8 {
        let mut w = id.get_mut(&mut pager).unwrap();
        w.page_mut().as_bytes_mut()[round as usize] = round;
        w.commit().unwrap();
    }
    // A dropped writer changes nothing, and the next partial write starts
    // from the committed bytes (A3), not from the dropped or older copy.
    {
        let mut w = id.get_mut(&mut pager).unwrap();
        w.page_mut().as_bytes_mut().fill(0xEE);
    }
    let mut w = id.get_mut(&mut pager).unwrap();
    w.page_mut().as_bytes_mut()[10] = 10;
    w.commit().unwrap();
    let expect: Vec<u8> = (0..1024)
        .map(|i| {
            if (1..=4).contains(&i) || i == 10 {
                i as u8
            } else {
                0
            }
        })
        .collect();
    assert_eq!(id.get(&pager).unwrap().as_bytes(), &expect[..]);
    drop(pager);
    let mut pager = Pager::<1024>::open(&path).unwrap();
    assert_eq!(id.get(&pager).unwrap().as_bytes(), &expect[..]);
    assert_eq!(
        pager.iter_allocated_protected_pages().collect::<Vec<_>>(),
        vec![id]
    );
    assert_eq!(pager.iter_allocated_pages().count(), 0);
    pager.free_protected(id).unwrap();
    assert!(matches!(id.get(&pager), Err(MappedPageError::OutOfBounds)));
}

#[test]
fn sync_budget_per_call() {
    let (_dir, path) = temp();
    let mut pager = Pager::<4096>::create(&path).unwrap();
    pager.alloc_bulk(8).unwrap(); // make sure no growth happens below
    let s = pager.sync_count();
    let id = pager.alloc().unwrap();
    assert_eq!(pager.sync_count() - s, 1, "alloc");
    let s = pager.sync_count();
    pager.free(id).unwrap();
    assert_eq!(pager.sync_count() - s, 1, "free");
    let p = pager.alloc_protected().unwrap();
    let s = pager.sync_count();
    let mut w = p.get_mut(&mut pager).unwrap();
    w.page_mut().as_bytes_mut()[0] = 1;
    w.commit().unwrap();
    assert_eq!(pager.sync_count() - s, 1, "protected commit");
    // A regular page written before it must be durable first: one more sync.
    let r = pager.alloc().unwrap();
    r.get_mut(&mut pager).unwrap().as_bytes_mut()[0] = 7;
    let s = pager.sync_count();
    let mut w = p.get_mut(&mut pager).unwrap();
    w.page_mut().as_bytes_mut()[0] = 2;
    w.commit().unwrap();
    assert_eq!(
        pager.sync_count() - s,
        2,
        "protected commit after a regular write"
    );
}

#[test]
fn a_protected_commit_whose_staged_copy_did_not_land_is_rolled_back() {
    use os_support::FileExt;
    let (_dir, path) = temp();
    let mut pager = Pager::<1024>::create(&path).unwrap();
    let p = pager.alloc_protected().unwrap();
    let mut w = p.get_mut(&mut pager).unwrap();
    w.page_mut().as_bytes_mut().fill(1);
    w.commit().unwrap();
    let before = pager.generation();
    let mut w = p.get_mut(&mut pager).unwrap();
    w.page_mut().as_bytes_mut().fill(2);
    w.commit().unwrap();
    drop(pager);
    // Simulate the staged copy never reaching the disk: find the page that
    // holds the new bytes and tear it.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let len = file.metadata().unwrap().len();
    let mut torn = 0;
    for page in 3..len / 1024 {
        let mut buf = vec![0u8; 1024];
        file.read_exact_at(&mut buf, page * 1024).unwrap();
        if buf.iter().all(|&b| b == 2) {
            buf[512..].fill(1);
            file.write_all_at(&buf, page * 1024).unwrap();
            torn += 1;
        }
    }
    assert_eq!(torn, 1);
    let pager = Pager::<1024>::open(&path).unwrap();
    assert_eq!(pager.recovery().generation, before);
    assert!(pager.recovery().fell_back);
    assert!(p.get(&pager).unwrap().as_bytes().iter().all(|&b| b == 1));
}

/// Opening a file makes no sync (contract T4); the first write after it
/// makes one more, so that the root open took is durable before anything is
/// written on top of it. In both modes, for each kind of first write.
#[test]
fn open_syncs_nothing_and_the_first_write_settles_it() {
    use mappedpages::Durability;
    for durability in [Durability::Immediate, Durability::Deferred] {
        let (_dir, path) = temp();
        let mut pager = Pager::<1024>::options()
            .durability(durability)
            .create(&path)
            .unwrap();
        pager.alloc_bulk(4).unwrap(); // no growth below
        let p = pager.alloc_protected().unwrap();
        let r = pager.alloc().unwrap();
        drop(pager);
        // The first write is a commit, a staged protected write, or a sync.
        type FirstWrite = fn(&mut Pager<1024>, ProtectedPageId<1024>, PageId<1024>);
        let first_writes: [(&str, FirstWrite); 4] = [
            ("alloc", |pager, _, _| {
                pager.alloc().unwrap();
            }),
            ("free", |pager, _, r| pager.free(r).unwrap()),
            ("protected write", |pager, p, _| {
                let mut writer = p.get_mut(pager).unwrap();
                writer.page_mut().as_bytes_mut()[0] = 9;
            }),
            ("sync", |pager, _, _| pager.sync().unwrap()),
        ];
        for (what, first_write) in first_writes {
            let mut pager = Pager::<1024>::options()
                .durability(durability)
                .open(&path)
                .unwrap();
            assert_eq!(pager.sync_count(), 0, "{durability:?}: open synced");
            // Reads and regular-page writes are no writes of metadata.
            r.get_mut(&mut pager).unwrap().as_bytes_mut()[1] = 3;
            assert_eq!(p.get(&pager).unwrap().len(), 1024);
            assert_eq!(pager.sync_count(), 0, "{durability:?}: a read synced");
            first_write(&mut pager, p, r);
            let expected = match (what, durability) {
                // The settling sync, then the commit's own.
                ("alloc" | "free", Durability::Immediate) => 2,
                // Settled by the one sync a call makes anyway.
                _ => 1,
            };
            assert_eq!(
                pager.sync_count(),
                expected,
                "{durability:?}: first write {what}"
            );
            drop(pager);
            if what == "free" {
                // Put it back for the next round.
                let mut pager = Pager::<1024>::open(&path).unwrap();
                assert_eq!(pager.alloc().unwrap(), r);
            }
        }
    }
}

#[test]
fn deferred_mode_skips_syncs_and_stays_consistent() {
    let (_dir, path) = temp();
    let mut pager = Pager::<1024>::options()
        .durability(mappedpages::Durability::Deferred)
        .create(&path)
        .unwrap();
    let s = pager.sync_count();
    let ids = pager.alloc_bulk(3).unwrap();
    let id = pager.alloc().unwrap();
    pager.free(ids[0]).unwrap();
    assert_eq!(pager.sync_count(), s, "deferred alloc/free made a sync");
    let p = pager.alloc_protected().unwrap();
    for v in 1..=3u8 {
        let s = pager.sync_count();
        let mut w = p.get_mut(&mut pager).unwrap();
        w.page_mut().as_bytes_mut()[0] = v;
        w.commit().unwrap();
        // The staged copy is checked by the root instead (contract T4).
        assert_eq!(pager.sync_count(), s, "deferred protected commit synced");
    }
    let last = pager.alloc().unwrap(); // an unsynced commit again
    drop(pager);
    let pager = Pager::<1024>::open(&path).unwrap();
    let mut expect = vec![ids[1], ids[2], id, last];
    expect.sort();
    assert_eq!(pager.iter_allocated_pages().collect::<Vec<_>>(), expect);
    assert_eq!(p.get(&pager).unwrap().as_bytes()[0], 3);
    assert!(!pager.recovery().last_commit_synced);
}

#[test]
fn growth_is_capped_by_the_growth_step() {
    let (_dir, path) = temp();
    let mut pager = Pager::<1024>::options()
        .initial_pages(16)
        .max_growth_step(64 * 1024)
        .create(&path)
        .unwrap();
    pager.alloc_bulk(1000).unwrap();
    let before = pager.page_count();
    // Fill what is left (possibly nothing: a zero count is no error).
    pager.alloc_bulk(before as usize - 1000).unwrap();
    while pager.free_page_count() > 0 {
        pager.alloc().unwrap();
    }
    let full = pager.page_count();
    pager.alloc().unwrap();
    // The cap (64 pages) is below the 4 MiB minimum step: the cap wins.
    assert_eq!(pager.page_count() - full, 64);
}

//! Pages a transaction allocates are written into memory it holds and
//! reach the file with positional writes at the commit. What the caller
//! sees must not change: reads inside the transaction see its writes, a
//! `PageSet` lends them, `relocate` moves them, a transaction past the
//! memory it may hold (set to 1 MiB here) still sees and commits every
//! byte, a rollback
//! leaves the file's bytes as they were, and after the commit the pager,
//! a snapshot and a reopen all read the bytes written.

use std::path::Path;

use mappedpages::{Durability, MappedPageError, PageId, Pager};

const PS: usize = 4096;
type P = Pager<PS>;

/// The byte pattern page `page` gets in round `round`.
fn pattern(page: u64, round: u8) -> Vec<u8> {
    (0..PS)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(page * 7) as u8 ^ round)
        .collect()
}

/// The page's bytes as the file holds them (read, not mapped).
fn file_page(path: &Path, page: u64) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let start = page as usize * PS;
    bytes[start..start + PS].to_vec()
}

/// The transaction memory these tests set: small, so that a few thousand
/// pages pass it several times.
const CAP: usize = 1 << 20;

fn create(path: &Path, durability: Durability) -> P {
    P::options()
        .durability(durability)
        .transaction_memory(CAP)
        .initial_pages(256)
        .create(path)
        .unwrap()
}

#[test]
fn reads_in_a_transaction_see_its_writes() {
    for durability in [Durability::Immediate, Durability::Deferred] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut pager = create(&path, durability);
        let committed = pager.alloc().unwrap();
        committed
            .get_mut(&mut pager)
            .unwrap()
            .as_bytes_mut()
            .copy_from_slice(&pattern(committed.0, 1));
        pager.sync().unwrap();

        let mut txn = pager.transaction().unwrap();
        let ids = txn.alloc_bulk(3).unwrap();
        // Unwritten, a fresh page reads as the file holds it.
        for &id in &ids {
            assert_eq!(txn.get(id).unwrap().as_bytes(), file_page(&path, id.0));
        }
        for &id in &ids {
            txn.get_mut(id)
                .unwrap()
                .as_bytes_mut()
                .copy_from_slice(&pattern(id.0, 2));
        }
        // A second write changes only what it touches.
        txn.get_mut(ids[1]).unwrap().as_bytes_mut()[100..108].fill(0xEE);
        let mut expected: Vec<Vec<u8>> = ids.iter().map(|id| pattern(id.0, 2)).collect();
        expected[1][100..108].fill(0xEE);
        for (id, want) in ids.iter().zip(&expected) {
            assert_eq!(txn.get(*id).unwrap().as_bytes(), want.as_slice());
            assert_eq!(txn.get_mut(*id).unwrap().as_bytes(), want.as_slice());
        }
        assert_eq!(
            txn.get(committed).unwrap().as_bytes(),
            pattern(committed.0, 1)
        );
        txn.commit().unwrap();

        for (id, want) in ids.iter().zip(&expected) {
            assert_eq!(pager.get(*id).unwrap().as_bytes(), want.as_slice());
            assert_eq!(file_page(&path, id.0), *want, "the file holds the bytes");
        }
        drop(pager);
        let pager = P::open(&path).unwrap();
        for (id, want) in ids.iter().zip(&expected) {
            assert_eq!(pager.get(*id).unwrap().as_bytes(), want.as_slice());
        }
    }
}

#[test]
fn a_page_set_lends_held_pages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut pager = create(&path, Durability::Deferred);
    let old = pager.alloc().unwrap();
    old.get_mut(&mut pager)
        .unwrap()
        .as_bytes_mut()
        .copy_from_slice(&pattern(old.0, 3));
    pager.sync().unwrap();

    let mut txn = pager.transaction().unwrap();
    let [a, b, c] = [
        txn.alloc().unwrap(),
        txn.alloc().unwrap(),
        txn.alloc().unwrap(),
    ];
    // `a` is written before the set: the set lends what was written.
    txn.get_mut(a)
        .unwrap()
        .as_bytes_mut()
        .copy_from_slice(&pattern(a.0, 4));
    {
        let pages = txn.pages();
        let pa = pages.get_mut(a).unwrap();
        assert_eq!(pa.as_bytes(), pattern(a.0, 4));
        let pb = pages.get_mut(b).unwrap();
        let pold = pages.get(old).unwrap();
        pb.as_bytes_mut().copy_from_slice(pold.as_bytes());
        pa.as_bytes_mut()[0] = 0x5A;
        // Each page lent one way only.
        assert!(matches!(
            pages.get_mut(a),
            Err(MappedPageError::AlreadyBorrowed { .. })
        ));
        assert!(matches!(
            pages.get(b),
            Err(MappedPageError::AlreadyBorrowed { .. })
        ));
        assert!(matches!(
            pages.get_mut(old),
            Err(MappedPageError::CommittedPage { .. })
        ));
        // Readable twice, then never writable.
        let pc1 = pages.get(c).unwrap();
        let pc2 = pages.get(c).unwrap();
        assert_eq!(pc1.as_bytes(), pc2.as_bytes());
        assert!(matches!(
            pages.get_mut(c),
            Err(MappedPageError::AlreadyBorrowed { .. })
        ));
    }
    let mut want_a = pattern(a.0, 4);
    want_a[0] = 0x5A;
    assert_eq!(txn.get(a).unwrap().as_bytes(), want_a);
    assert_eq!(txn.get(b).unwrap().as_bytes(), pattern(old.0, 3));
    // A second set lends the bytes the first one wrote.
    {
        let pages = txn.pages();
        assert_eq!(pages.get(b).unwrap().as_bytes(), pattern(old.0, 3));
        pages.get_mut(c).unwrap().as_bytes_mut().fill(0xC3);
    }
    txn.commit().unwrap();
    let snapshot = pager.snapshot().unwrap();
    assert_eq!(snapshot.get(a).unwrap().as_bytes(), want_a);
    assert_eq!(snapshot.get(b).unwrap().as_bytes(), pattern(old.0, 3));
    assert!(snapshot
        .get(c)
        .unwrap()
        .as_bytes()
        .iter()
        .all(|&x| x == 0xC3));
    drop(snapshot);
    drop(pager);
    let pager = P::open(&path).unwrap();
    assert_eq!(pager.get(a).unwrap().as_bytes(), want_a);
    assert_eq!(pager.get(b).unwrap().as_bytes(), pattern(old.0, 3));
    assert!(pager.get(c).unwrap().as_bytes().iter().all(|&x| x == 0xC3));
}

#[test]
fn relocate_moves_committed_and_held_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut pager = create(&path, Durability::Immediate);
    let ids = pager.alloc_bulk(6).unwrap();
    for &id in &ids {
        id.get_mut(&mut pager)
            .unwrap()
            .as_bytes_mut()
            .copy_from_slice(&pattern(id.0, 5));
    }
    pager.free(ids[0]).unwrap();
    pager.free(ids[1]).unwrap();

    let mut txn = pager.transaction().unwrap();
    // A committed page moves down with its bytes.
    let moved = txn.relocate(ids[5]).unwrap().expect("a lower page is free");
    assert!(moved.0 < ids[5].0);
    assert_eq!(txn.get(moved).unwrap().as_bytes(), pattern(ids[5].0, 5));
    assert!(txn.get(ids[5]).is_err(), "the old page is freed");
    // Pages this transaction allocates and writes (three: no free run that
    // long lies below, so they go past the last page in use), one moved
    // down: its held bytes move.
    let fresh = txn.alloc_bulk(3).unwrap();
    assert!(fresh[0].0 > ids[5].0);
    let mut want = pattern(fresh[2].0, 9);
    txn.get_mut(fresh[2])
        .unwrap()
        .as_bytes_mut()
        .copy_from_slice(&want);
    txn.get_mut(fresh[2]).unwrap().as_bytes_mut()[..4].copy_from_slice(b"held");
    want[..4].copy_from_slice(b"held");
    let again = txn.relocate(fresh[2]).unwrap().expect("ids[1] is free");
    assert_eq!(again, ids[1]);
    assert_eq!(txn.get(again).unwrap().as_bytes(), want);
    assert!(txn.get(fresh[2]).is_err());
    txn.commit().unwrap();
    assert_eq!(pager.get(moved).unwrap().as_bytes(), pattern(ids[5].0, 5));
    assert_eq!(pager.get(again).unwrap().as_bytes(), want);
    assert_eq!(file_page(&path, again.0), want);
    drop(pager);
    let pager = P::open(&path).unwrap();
    assert_eq!(pager.get(moved).unwrap().as_bytes(), pattern(ids[5].0, 5));
    assert_eq!(pager.get(again).unwrap().as_bytes(), want);
    assert!(pager.get(fresh[2]).is_err() && pager.get(ids[5]).is_err());
}

#[test]
fn a_rollback_leaves_the_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut pager = create(&path, Durability::Immediate);
    // Pages with bytes of their own, most freed: the transaction takes
    // those (a run of 16), and one can be moved down to the lowest.
    let old = pager.alloc_bulk(24).unwrap();
    for &id in &old {
        id.get_mut(&mut pager)
            .unwrap()
            .as_bytes_mut()
            .copy_from_slice(&pattern(id.0, 6));
    }
    pager
        .free_bulk(
            old[..4]
                .iter()
                .chain(&old[8..])
                .copied()
                .collect::<Vec<_>>(),
        )
        .unwrap();
    pager.sync().unwrap();
    let before = std::fs::read(&path).unwrap();

    let mut txn = pager.transaction().unwrap();
    let ids = txn.alloc_bulk(16).unwrap();
    for &id in &ids {
        txn.get_mut(id).unwrap().as_bytes_mut().fill(0xAB);
    }
    {
        let pages = txn.pages();
        for &id in &ids[..4] {
            pages.get_mut(id).unwrap().as_bytes_mut().fill(0xCD);
        }
    }
    assert_eq!(ids, old[8..]);
    let moved = txn.relocate(old[5]).unwrap();
    assert_eq!(moved, Some(old[0]));
    txn.rollback();
    let after = std::fs::read(&path).unwrap();
    assert_eq!(before.len(), after.len());
    assert!(before == after, "a rolled back transaction wrote the file");
    assert_eq!(pager.allocated_page_count(), 4);

    // Dropping is the same.
    let mut txn = pager.transaction().unwrap();
    let id = txn.alloc().unwrap();
    txn.get_mut(id).unwrap().as_bytes_mut().fill(0xEF);
    drop(txn);
    assert!(std::fs::read(&path).unwrap() == before);

    // A page written and freed again in one transaction is not written.
    let mut txn = pager.transaction().unwrap();
    let [keep, gone] = [txn.alloc().unwrap(), txn.alloc().unwrap()];
    let gone_before = file_page(&path, gone.0);
    txn.get_mut(keep).unwrap().as_bytes_mut().fill(0x11);
    txn.get_mut(gone).unwrap().as_bytes_mut().fill(0x22);
    txn.free(gone).unwrap();
    txn.commit().unwrap();
    assert_eq!(file_page(&path, gone.0), gone_before);
    assert!(file_page(&path, keep.0).iter().all(|&x| x == 0x11));
}

/// 3000 pages of 4 KiB: 12 MiB, eleven times the 1 MiB the buffers hold.
const PAST_CAP: usize = 3000;

/// A protected page's staged bytes are held like a fresh page's: reads in
/// the transaction (or through a `ProtectedPageWriter`) see them, the file
/// does not until the commit, a rollback leaves it as it was, and bytes
/// held past the cap and written out early are held again for the next
/// write.
#[test]
fn protected_writes_are_held_until_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut pager = create(&path, Durability::Immediate);
    let root = pager.alloc_protected().unwrap();
    let mut writer = root.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut()[..2].copy_from_slice(b"v1");
    writer.commit().unwrap();
    pager.sync().unwrap();
    let before = std::fs::read(&path).unwrap();

    let mut txn = pager.transaction().unwrap();
    txn.write_protected(root).unwrap().as_bytes_mut()[..2].copy_from_slice(b"v2");
    assert_eq!(&txn.get_protected(root).unwrap().as_bytes()[..2], b"v2");
    assert!(
        std::fs::read(&path).unwrap() == before,
        "staged bytes in the file"
    );
    txn.rollback();
    let mut writer = root.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut()[..2].copy_from_slice(b"w2");
    assert_eq!(&writer.page().as_bytes()[..2], b"w2");
    drop(writer);
    assert!(
        std::fs::read(&path).unwrap() == before,
        "a dropped writer wrote"
    );
    assert_eq!(&root.get(&pager).unwrap().as_bytes()[..2], b"v1");

    // Staged, written out early with fresh pages past the cap, written again.
    let mut txn = pager.transaction().unwrap();
    txn.write_protected(root).unwrap().as_bytes_mut()[..2].copy_from_slice(b"v3");
    for id in txn.alloc_bulk(PAST_CAP).unwrap() {
        txn.get_mut(id).unwrap().as_bytes_mut().fill(0x33);
    }
    assert_eq!(&txn.get_protected(root).unwrap().as_bytes()[..2], b"v3");
    txn.write_protected(root).unwrap().as_bytes_mut()[2] = b'!';
    txn.commit().unwrap();
    assert_eq!(&root.get(&pager).unwrap().as_bytes()[..3], b"v3!");
    drop(pager);
    let pager = P::open(&path).unwrap();
    assert_eq!(&root.get(&pager).unwrap().as_bytes()[..3], b"v3!");
}

#[test]
fn a_transaction_past_the_cap_keeps_every_byte() {
    for durability in [Durability::Immediate, Durability::Deferred] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut pager = create(&path, durability);
        let mut txn = pager.transaction().unwrap();
        let ids = txn.alloc_bulk(PAST_CAP).unwrap();
        for &id in &ids {
            txn.get_mut(id)
                .unwrap()
                .as_bytes_mut()
                .copy_from_slice(&pattern(id.0, 7));
        }
        // Written out early or still held, every page reads as written,
        // and writes to either kind land.
        for &id in &ids {
            assert_eq!(txn.get(id).unwrap().as_bytes(), pattern(id.0, 7));
        }
        for &id in [ids[0], ids[PAST_CAP / 2], ids[PAST_CAP - 1]].iter() {
            txn.get_mut(id).unwrap().as_bytes_mut()[..5].copy_from_slice(b"again");
        }
        txn.commit().unwrap();
        let want = |id: PageId<PS>| {
            let mut bytes = pattern(id.0, 7);
            if [ids[0], ids[PAST_CAP / 2], ids[PAST_CAP - 1]].contains(&id) {
                bytes[..5].copy_from_slice(b"again");
            }
            bytes
        };
        for &id in &ids {
            assert_eq!(pager.get(id).unwrap().as_bytes(), want(id));
        }
        drop(pager);
        let pager = P::open(&path).unwrap();
        for &id in &ids {
            assert_eq!(pager.get(id).unwrap().as_bytes(), want(id), "{id:?}");
        }
    }
}

#[test]
fn a_page_set_past_the_cap_lends_every_page() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut pager = create(&path, Durability::Deferred);
    let mut txn = pager.transaction().unwrap();
    let ids = txn.alloc_bulk(PAST_CAP).unwrap();
    {
        // All lent writable at once: the first are held, the rest come
        // from the map.
        let pages = txn.pages();
        let lent: Vec<_> = ids.iter().map(|&id| pages.get_mut(id).unwrap()).collect();
        for (page, id) in lent.into_iter().zip(&ids) {
            page.as_bytes_mut().copy_from_slice(&pattern(id.0, 8));
        }
    }
    for &id in &ids {
        assert_eq!(txn.get(id).unwrap().as_bytes(), pattern(id.0, 8));
    }
    txn.commit().unwrap();
    let snapshot = pager.snapshot().unwrap();
    for &id in &ids {
        assert_eq!(snapshot.get(id).unwrap().as_bytes(), pattern(id.0, 8));
    }
    drop(snapshot);
    drop(pager);
    let pager = P::open(&path).unwrap();
    for &id in &ids {
        assert_eq!(pager.get(id).unwrap().as_bytes(), pattern(id.0, 8));
    }
}

#[test]
fn snapshots_and_later_transactions_see_committed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f");
    let mut pager = create(&path, Durability::Deferred);
    let mut all = Vec::new();
    for round in 0..20u8 {
        let mut txn = pager.transaction().unwrap();
        let ids = txn.alloc_bulk(1 + round as usize % 5).unwrap();
        for &id in &ids {
            txn.get_mut(id)
                .unwrap()
                .as_bytes_mut()
                .copy_from_slice(&pattern(id.0, round));
        }
        txn.commit().unwrap();
        let snapshot = pager.snapshot().unwrap();
        all.extend(ids.iter().map(|&id| (id, round)));
        for &(id, r) in &all {
            assert_eq!(snapshot.get(id).unwrap().as_bytes(), pattern(id.0, r));
        }
        // A later transaction reads them as committed, from the file.
        let txn = pager.transaction().unwrap();
        for &(id, r) in &all {
            assert_eq!(txn.get(id).unwrap().as_bytes(), pattern(id.0, r));
        }
    }
    drop(pager);
    let pager = P::open(&path).unwrap();
    for &(id, r) in &all {
        assert_eq!(pager.get(id).unwrap().as_bytes(), pattern(id.0, r));
    }
}

#[cfg(feature = "fault-injection")]
mod with_hook {
    use super::*;
    use mappedpages::fault::{IoEvent, IoHook};
    use mappedpages::PagerOptions;
    use std::sync::{Arc, Mutex};

    /// Records the writes announced, and fails those at or past `fail_from`
    /// (a byte offset) while `failing`.
    #[derive(Default)]
    struct Writes {
        seen: Vec<(u64, usize)>,
        fail_from: Option<u64>,
    }

    fn hooked(path: &Path, durability: Durability) -> (P, Arc<Mutex<Writes>>) {
        hooked_with(
            path,
            P::options().durability(durability).transaction_memory(CAP),
        )
    }

    /// A pager of 256 pages created with `options` and the recording hook.
    fn hooked_with(path: &Path, options: PagerOptions<PS>) -> (P, Arc<Mutex<Writes>>) {
        let writes = Arc::new(Mutex::new(Writes::default()));
        let seen = Arc::clone(&writes);
        let hook = IoHook::new(move |event| {
            if let IoEvent::Write { offset, len } = event {
                let mut w = seen.lock().unwrap();
                w.seen.push((offset, len));
                if w.fail_from.is_some_and(|from| offset >= from) {
                    return Err(std::io::Error::other("injected"));
                }
            }
            Ok(())
        });
        let pager = options
            .initial_pages(256)
            .io_hook(hook)
            .create(path)
            .unwrap();
        writes.lock().unwrap().seen.clear();
        (pager, writes)
    }

    #[test]
    fn the_commit_writes_held_pages_in_runs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let (mut pager, writes) = hooked(&path, Durability::Deferred);
        let mut txn = pager.transaction().unwrap();
        let ids = txn.alloc_bulk(16).unwrap();
        for &id in &ids {
            txn.get_mut(id).unwrap().as_bytes_mut().fill(id.0 as u8);
        }
        assert!(
            writes.lock().unwrap().seen.is_empty(),
            "nothing is written before the commit"
        );
        txn.commit().unwrap();
        let seen = writes.lock().unwrap().seen.clone();
        let first = ids[0].0 * PS as u64;
        assert!(ids.windows(2).all(|w| w[1].0 == w[0].0 + 1));
        // Runs of adjacent pages, cut at the longest write: 16 KiB.
        let run = 16 * 1024;
        for n in 0..(16 * PS / run) as u64 {
            let write = (first + n * run as u64, run);
            assert!(seen.contains(&write), "16 pages in 4 writes: {seen:?}");
        }
        assert_eq!(seen.len(), 16 * PS / run + 1, "and the root: {seen:?}");
    }

    #[test]
    fn pages_between_held_ones_that_read_zeros_join_their_writes() {
        for preallocate in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            let (mut pager, writes) = hooked_with(&path, P::options().preallocate(preallocate));
            let mut txn = pager.transaction().unwrap();
            let ids = txn.alloc_bulk(16).unwrap();
            assert!(ids.windows(2).all(|w| w[1].0 == w[0].0 + 1));
            // Pages 4 and 6 of the run are freed again, 9 to 11 allocated
            // but never written: only free pages may be written as zeros.
            let skipped = |i: usize| matches!(i, 4 | 6 | 9..=11);
            for (i, &id) in ids.iter().enumerate() {
                match i {
                    4 | 6 => txn.free(id).unwrap(),
                    9..=11 => {}
                    _ => txn.get_mut(id).unwrap().as_bytes_mut().fill(i as u8 + 1),
                }
            }
            writes.lock().unwrap().seen.clear();
            txn.commit().unwrap();
            let seen = writes.lock().unwrap().seen.clone();
            let first = ids[0].0 * PS as u64;
            let at = |page: usize, pages: usize| (first + (page * PS) as u64, pages * PS);
            let expected = if preallocate {
                // Free pages between held ones are written as the zeros
                // they read, the first of them starting a write when the
                // one before is full; allocated ones are not.
                vec![at(0, 4), at(4, 4), at(8, 1), at(12, 4)]
            } else {
                // A sparse file keeps its holes.
                vec![at(0, 4), at(5, 1), at(7, 2), at(12, 4)]
            };
            for write in &expected {
                assert!(seen.contains(write), "{preallocate}: {write:?} in {seen:?}");
            }
            assert_eq!(seen.len(), expected.len() + 1, "and the root: {seen:?}");
            drop(pager);
            for (i, &id) in ids.iter().enumerate() {
                let want = if skipped(i) { 0 } else { i as u8 + 1 };
                assert!(
                    file_page(&path, id.0).iter().all(|&x| x == want),
                    "page {i}"
                );
            }
        }
    }

    #[test]
    fn past_the_cap_pages_are_written_out_early() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let (mut pager, writes) = hooked(&path, Durability::Deferred);
        let mut txn = pager.transaction().unwrap();
        let ids = txn.alloc_bulk(PAST_CAP).unwrap();
        writes.lock().unwrap().seen.clear();
        let mut early = None;
        for (i, &id) in ids.iter().enumerate() {
            txn.get_mut(id).unwrap().as_bytes_mut().fill(i as u8);
            if early.is_none() && !writes.lock().unwrap().seen.is_empty() {
                early = Some(i);
            }
        }
        let early = early.expect("pages written out before the commit");
        assert_eq!(early, CAP / PS, "written out when the limit is held");
        txn.commit().unwrap();
        for (i, &id) in ids.iter().enumerate() {
            assert!(pager
                .get(id)
                .unwrap()
                .as_bytes()
                .iter()
                .all(|&x| x == i as u8));
        }
    }

    #[test]
    fn a_failed_write_of_held_pages_rolls_the_commit_back() {
        for durability in [Durability::Immediate, Durability::Deferred] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("f");
            let (mut pager, writes) = hooked(&path, durability);
            let kept = pager.alloc().unwrap();
            pager.sync().unwrap();
            let mut txn = pager.transaction().unwrap();
            let ids = txn.alloc_bulk(4).unwrap();
            for &id in &ids {
                txn.get_mut(id).unwrap().as_bytes_mut().fill(0x77);
            }
            // Fail the writes of the held pages (root pages lie below).
            writes.lock().unwrap().fail_from = Some(ids[0].0 * PS as u64);
            let err = txn.commit().unwrap_err();
            assert!(matches!(err, MappedPageError::Io(_)), "{err:?}");
            writes.lock().unwrap().fail_from = None;
            // Rolled back, and usable.
            assert_eq!(pager.allocated_page_count(), 1);
            assert!(ids.iter().all(|&id| pager.get(id).is_err()));
            let id = pager.alloc().unwrap();
            drop(pager);
            let pager = P::open(&path).unwrap();
            assert!(pager.get(kept).is_ok() && pager.get(id).is_ok());
            assert_eq!(pager.allocated_page_count(), 2);
        }
    }
}

//! Transactions: what a commit publishes, what a drop undoes, how many syncs
//! a commit takes, and what a transaction refuses.

use mappedpages::{Durability, MappedPageError, PageId, Pager};

const PS: usize = 4096;
type P = Pager<PS>;

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("txn.pages");
    (dir, path)
}

fn fill(txn: &mut mappedpages::Transaction<'_, PS>, id: PageId<PS>, byte: u8) {
    txn.get_mut(id).unwrap().as_bytes_mut().fill(byte);
}

#[test]
fn a_commit_publishes_everything_with_one_sync_and_reopens_to_it() {
    for k in [1usize, 16, 256, 1000] {
        let (_dir, path) = temp();
        let mut pager = P::options().initial_pages(4096).create(&path).unwrap();
        let root = pager.alloc_protected().unwrap();
        let old = pager.alloc_bulk(k).unwrap();
        let before = pager.sync_count();
        let mut txn = pager.transaction().unwrap();
        let fresh = txn.alloc_bulk(k).unwrap();
        for (i, &id) in fresh.iter().enumerate() {
            fill(&mut txn, id, i as u8 ^ 0x5A);
        }
        txn.free_bulk(old.clone()).unwrap();
        txn.write_protected(root).unwrap().as_bytes_mut()[..8]
            .copy_from_slice(&(k as u64).to_le_bytes());
        txn.commit().unwrap();
        assert_eq!(pager.sync_count() - before, 1, "k = {k}");
        drop(pager);

        let pager = P::open(&path).unwrap();
        let mut expect = fresh.clone();
        expect.sort();
        assert_eq!(pager.iter_allocated_pages().collect::<Vec<_>>(), expect);
        for (i, &id) in fresh.iter().enumerate() {
            let bytes = id.get(&pager).unwrap().as_bytes();
            assert!(
                bytes.iter().all(|&b| b == i as u8 ^ 0x5A),
                "k = {k}, page {i}"
            );
        }
        assert_eq!(
            &root.get(&pager).unwrap().as_bytes()[..8],
            &(k as u64).to_le_bytes()
        );
    }
}

#[test]
fn dropping_a_transaction_undoes_it_and_the_file_never_sees_it() {
    let (_dir, path) = temp();
    let mut pager = P::create(&path).unwrap();
    let keep = pager.alloc().unwrap();
    let root = pager.alloc_protected().unwrap();
    {
        let mut w = root.get_mut(&mut pager).unwrap();
        w.page_mut().as_bytes_mut()[0] = 7;
        w.commit().unwrap();
    }
    let (pages, free, generation) = (
        pager.page_count(),
        pager.free_page_count(),
        pager.generation(),
    );
    let syncs = pager.sync_count();
    {
        let mut txn = pager.transaction().unwrap();
        let a = txn.alloc_bulk(5000).unwrap(); // grows the file
        fill(&mut txn, a[0], 1);
        txn.free(keep).unwrap();
        txn.write_protected(root).unwrap().as_bytes_mut()[0] = 8;
        let p2 = txn.alloc_protected().unwrap();
        txn.write_protected(p2).unwrap().as_bytes_mut()[0] = 3;
        assert_eq!(txn.get_protected(root).unwrap().as_bytes()[0], 8);
    }
    assert_eq!(pager.page_count(), pages, "the growth was given back");
    assert_eq!(pager.free_page_count(), free);
    assert_eq!(pager.generation(), generation);
    assert_eq!(pager.iter_allocated_pages().collect::<Vec<_>>(), vec![keep]);
    assert_eq!(pager.iter_allocated_protected_pages().count(), 1);
    assert_eq!(root.get(&pager).unwrap().as_bytes()[0], 7);
    // Only the growth synced, nothing was committed.
    assert!(pager.sync_count() - syncs <= 1);
    drop(pager);
    let pager = P::open(&path).unwrap();
    assert_eq!(pager.generation(), generation);
    assert_eq!(pager.iter_allocated_pages().collect::<Vec<_>>(), vec![keep]);
    assert_eq!(root.get(&pager).unwrap().as_bytes()[0], 7);
}

#[test]
fn bad_input_is_refused_and_leaves_the_transaction_usable() {
    let (_dir, path) = temp();
    let mut pager = P::create(&path).unwrap();
    let committed = pager.alloc().unwrap();
    let mut txn = pager.transaction().unwrap();
    let fresh = txn.alloc().unwrap();
    assert!(matches!(
        txn.get_mut(committed),
        Err(MappedPageError::CommittedPage { page }) if page == committed.0
    ));
    txn.free(fresh).unwrap();
    assert!(matches!(txn.free(fresh), Err(MappedPageError::DoubleFree)));
    assert!(matches!(
        txn.get_mut(fresh),
        Err(MappedPageError::NotAllocated { .. })
    ));
    assert!(matches!(
        txn.free(PageId(1 << 40)),
        Err(MappedPageError::OutOfBounds)
    ));
    assert!(matches!(
        txn.free(PageId(1)),
        Err(MappedPageError::ReservedPage)
    ));
    assert!(matches!(
        txn.free_bulk([committed, committed]),
        Err(MappedPageError::DoubleFree)
    ));
    let other = txn.alloc().unwrap();
    assert_ne!(
        other, fresh,
        "a page freed in a transaction is not reused in it"
    );
    {
        let pages = txn.pages();
        let a = pages.get_mut(other).unwrap();
        assert!(matches!(
            pages.get(other),
            Err(MappedPageError::AlreadyBorrowed { .. })
        ));
        assert!(matches!(
            pages.get_mut(committed),
            Err(MappedPageError::CommittedPage { .. })
        ));
        let c = pages.get(committed).unwrap();
        a.as_bytes_mut()[0] = c.as_bytes()[0].wrapping_add(1);
    }
    txn.commit().unwrap();
    assert_eq!(pager.allocated_page_count(), 2);
}

#[test]
fn deferred_commits_make_no_sync_and_a_kill_loses_none_of_them() {
    let (_dir, path) = temp();
    let mut pager = P::options()
        .durability(Durability::Deferred)
        .initial_pages(1024)
        .create(&path)
        .unwrap();
    let root = pager.alloc_protected().unwrap();
    pager.sync().unwrap();
    let syncs = pager.sync_count();
    let mut ids = Vec::new();
    for round in 0..300u32 {
        let mut txn = pager.transaction().unwrap();
        let id = txn.alloc().unwrap();
        txn.get_mut(id).unwrap().as_bytes_mut()[..4].copy_from_slice(&round.to_le_bytes());
        txn.write_protected(root).unwrap().as_bytes_mut()[..4]
            .copy_from_slice(&round.to_le_bytes());
        txn.commit().unwrap();
        ids.push(id);
    }
    assert_eq!(pager.sync_count(), syncs, "a deferred commit synced");
    // What a killed process leaves: the page cache, with no drop and no
    // sync. A copy of the file taken now reads exactly that.
    let killed = path.with_extension("killed");
    std::fs::copy(&path, &killed).unwrap();
    drop(pager);
    let pager = P::open(&killed).unwrap();
    assert!(!pager.recovery().last_commit_synced);
    assert_eq!(pager.allocated_page_count(), 300);
    for (round, id) in ids.iter().enumerate() {
        assert_eq!(
            &id.get(&pager).unwrap().as_bytes()[..4],
            &(round as u32).to_le_bytes()
        );
    }
    assert_eq!(
        &root.get(&pager).unwrap().as_bytes()[..4],
        &299u32.to_le_bytes()
    );
}

#[test]
fn a_page_a_transaction_wrote_can_then_be_written_in_place() {
    let (_dir, path) = temp();
    let mut pager = P::create(&path).unwrap();
    let mut txn = pager.transaction().unwrap();
    let id = txn.alloc().unwrap();
    fill(&mut txn, id, 1);
    txn.commit().unwrap();
    // The newest root checks `id`: writing it in place first makes a root
    // that does not, so a crash cannot leave both roots rejected.
    id.get_mut(&mut pager).unwrap().as_bytes_mut().fill(2);
    pager.alloc().unwrap();
    drop(pager);
    let pager = P::open(&path).unwrap();
    assert!(id.get(&pager).unwrap().as_bytes().iter().all(|&b| b == 2));
}

/// A commit of 1000 written pages lists its checks in check pages; the
/// inspector counts them, and damage to a check page or to a page the
/// transaction wrote makes open fall back to the commit before.
#[test]
fn checks_that_overflow_the_root_go_to_check_pages_that_open_verifies() {
    use mappedpages::inspect::Inspector;
    use std::os::unix::fs::FileExt;

    let (_dir, path) = temp();
    let mut pager = P::options().initial_pages(4096).create(&path).unwrap();
    pager.alloc().unwrap();
    let before = pager.generation();
    let mut txn = pager.transaction().unwrap();
    let fresh = txn.alloc_bulk(1000).unwrap();
    for &id in &fresh {
        fill(&mut txn, id, 0xC3);
    }
    txn.commit().unwrap();
    drop(pager);

    let info = Inspector::open(&path).unwrap().info().unwrap();
    assert_eq!(info.page_checks, 1000);
    assert_eq!(info.check_pages, 1000u64.div_ceil(169));
    assert!(Inspector::open(&path).unwrap().check().unwrap().is_clean());

    // Which pages are check pages: the inspector's page map tells internal
    // pages apart; the first one the newest root names is enough here.
    let copies = Inspector::open(&path).unwrap();
    let newest = copies
        .copies()
        .iter()
        .filter_map(|c| match c {
            mappedpages::inspect::RootCopy::Decoded(root) => Some(root.clone()),
            _ => None,
        })
        .max_by_key(|root| root.generation)
        .unwrap();
    assert_eq!(newest.check_pages_len, 1000);
    let damaged = |page: u64, name: &str| {
        let copy = path.with_extension(name);
        std::fs::copy(&path, &copy).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&copy).unwrap();
        file.write_at(&[0xEE], page * PS as u64 + 100).unwrap();
        drop(file);
        let pager = P::open(&copy).unwrap();
        assert!(pager.recovery().fell_back, "{name}");
        assert_eq!(pager.generation(), before, "{name}");
        assert_eq!(pager.allocated_page_count(), 1, "{name}");
    };
    damaged(newest.check_page, "check-page");
    damaged(fresh[999].0, "data-page");
}

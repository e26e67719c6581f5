//! Transactions: what a commit publishes, what a drop undoes, how many syncs
//! a commit takes, and what a transaction refuses.

#[path = "support/os/mod.rs"]
mod os_support;

use mappedpages::{Durability, MappedPageError, PageId, Pager, ProtectedPageId};

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
    use os_support::FileExt;

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

/// What a transaction shows of `pages` and `protected`: bytes or error, and
/// whether each regular page is writable.
fn view(
    txn: &mappedpages::Transaction<'_, PS>,
    pages: &[PageId<PS>],
    protected: &[ProtectedPageId<PS>],
) -> Vec<String> {
    let regular = pages.iter().map(|&id| {
        let bytes = txn.get(id).map(|p| p.as_bytes().to_vec());
        format!("{id:?} {} {bytes:?}", txn.is_writable(id))
    });
    let protected = protected.iter().map(|&id| {
        let bytes = txn.get_protected(id).map(|p| p.as_bytes().to_vec());
        format!("{id:?} {bytes:?}")
    });
    regular.chain(protected).collect()
}

type Refusal = (
    &'static str,
    Box<dyn Fn(&mut mappedpages::Transaction<'_, PS>) -> MappedPageError>,
    fn(&MappedPageError) -> bool,
);

/// Every refused call inside a transaction has its own typed error, changes
/// nothing the transaction shows, and the transaction then commits exactly
/// what it did before and after, in both durability modes.
#[test]
fn every_bad_input_in_a_transaction_is_typed_and_changes_nothing() {
    use MappedPageError as E;
    for durability in [Durability::Immediate, Durability::Deferred] {
        let (_dir, path) = temp();
        let mut pager = P::options()
            .durability(durability)
            .initial_pages(64)
            .create(&path)
            .unwrap();
        let root = pager.alloc_protected().unwrap();
        let dead = pager.alloc_protected().unwrap();
        pager.free_protected(dead).unwrap();
        let kept: [PageId<PS>; 3] = pager.alloc_bulk(3).unwrap().try_into().unwrap();
        let gone = pager.alloc().unwrap();
        pager.free(gone).unwrap();
        let (end, generation) = (pager.page_count(), pager.generation());

        let mut txn = pager.transaction().unwrap();
        // Before anything in the transaction can take it again.
        assert!(matches!(txn.free(gone), Err(MappedPageError::DoubleFree)));
        assert!(matches!(
            txn.free_bulk([kept[1], gone]),
            Err(MappedPageError::DoubleFree)
        ));
        assert!(txn.get(kept[1]).is_ok());
        let fresh: [PageId<PS>; 2] = txn.alloc_bulk(2).unwrap().try_into().unwrap();
        fill(&mut txn, fresh[0], 0xA1);
        txn.free(kept[0]).unwrap();
        txn.free(fresh[1]).unwrap();
        txn.write_protected(root).unwrap().as_bytes_mut()[0] = 9;
        let short_lived = txn.alloc_protected().unwrap();
        txn.free_protected(short_lived).unwrap();
        let pages = [kept[0], kept[1], kept[2], fresh[0], fresh[1]];
        let protected = [root, dead, short_lived];
        let before = view(&txn, &pages, &protected);

        let reserved: fn(&E) -> bool = |e| matches!(e, E::ReservedPage);
        let oob: fn(&E) -> bool = |e| matches!(e, E::OutOfBounds);
        let double: fn(&E) -> bool = |e| matches!(e, E::DoubleFree);
        let mut refusals: Vec<Refusal> = Vec::new();
        // Foreign ids: reserved, past the end, huge; through every call.
        for (id, expect) in [
            (PageId(0), reserved),
            (PageId(2), reserved),
            (PageId(end), oob),
            (PageId(end + 5), oob),
            (PageId(u64::MAX), oob),
        ] {
            refusals.push(("free", Box::new(move |t| t.free(id).unwrap_err()), expect));
            refusals.push((
                "free_bulk with a good id",
                Box::new(move |t| t.free_bulk([kept[1], id]).unwrap_err()),
                expect,
            ));
            refusals.push((
                "get",
                Box::new(move |t| t.get(id).map(|_| ()).unwrap_err()),
                expect,
            ));
            refusals.push((
                "get_mut",
                Box::new(move |t| t.get_mut(id).map(|_| ()).unwrap_err()),
                expect,
            ));
            refusals.push((
                "PageSet::get",
                Box::new(move |t| t.pages().get(id).map(|_| ()).unwrap_err()),
                expect,
            ));
            refusals.push((
                "PageSet::get_mut",
                Box::new(move |t| t.pages().get_mut(id).map(|_| ()).unwrap_err()),
                expect,
            ));
        }
        // Double frees: freed in the transaction (a committed page and a
        // fresh one), named twice in one call.
        refusals.push((
            "free of a committed page freed in it",
            Box::new(move |t| t.free(kept[0]).unwrap_err()),
            double,
        ));
        refusals.push((
            "free of a fresh page freed in it",
            Box::new(move |t| t.free(fresh[1]).unwrap_err()),
            double,
        ));
        refusals.push((
            "free_bulk naming a page twice",
            Box::new(move |t| t.free_bulk([kept[1], kept[1]]).unwrap_err()),
            double,
        ));
        refusals.push((
            "free_bulk with a page freed in it",
            Box::new(move |t| t.free_bulk([kept[2], kept[0]]).unwrap_err()),
            double,
        ));
        // Writes to pages the transaction freed, or did not allocate.
        for id in [kept[0], fresh[1]] {
            refusals.push((
                "get_mut of a page freed in it",
                Box::new(move |t| t.get_mut(id).map(|_| ()).unwrap_err()),
                |e| matches!(e, E::NotAllocated { .. }),
            ));
            refusals.push((
                "PageSet::get_mut of a page freed in it",
                Box::new(move |t| t.pages().get_mut(id).map(|_| ()).unwrap_err()),
                |e| matches!(e, E::NotAllocated { .. }),
            ));
        }
        refusals.push((
            "get_mut of a committed page",
            Box::new(move |t| t.get_mut(kept[1]).map(|_| ()).unwrap_err()),
            |e| matches!(e, E::CommittedPage { .. }),
        ));
        refusals.push((
            "PageSet::get_mut of a committed page",
            Box::new(move |t| t.pages().get_mut(kept[2]).map(|_| ()).unwrap_err()),
            |e| matches!(e, E::CommittedPage { .. }),
        ));
        // Protected ids not in use: freed before, freed in it, never used.
        // Freeing one is `DoubleFree` for a slot of the directory, as in
        // 0.2, and `OutOfBounds` past it.
        for (id, free_error) in [
            (dead, double),
            (short_lived, double),
            (ProtectedPageId(1 << 40), oob),
        ] {
            refusals.push((
                "write_protected",
                Box::new(move |t| t.write_protected(id).map(|_| ()).unwrap_err()),
                oob,
            ));
            refusals.push((
                "get_protected",
                Box::new(move |t| t.get_protected(id).map(|_| ()).unwrap_err()),
                oob,
            ));
            refusals.push((
                "free_protected",
                Box::new(move |t| t.free_protected(id).unwrap_err()),
                free_error,
            ));
        }
        refusals.push((
            "alloc_bulk(usize::MAX)",
            Box::new(|t| t.alloc_bulk(usize::MAX).unwrap_err()),
            |e| matches!(e, E::InvalidCount { .. }),
        ));
        // Lending conflicts while pages are out.
        refusals.push((
            "PageSet lending a page writable, then readable",
            Box::new(move |t| {
                let set = t.pages();
                let _w = set.get_mut(fresh[0]).unwrap();
                let _r = set.get(kept[1]).unwrap();
                let _again = set.get(kept[1]).unwrap();
                set.get(fresh[0]).map(|_| ()).unwrap_err()
            }),
            |e| matches!(e, E::AlreadyBorrowed { .. }),
        ));
        refusals.push((
            "PageSet lending a page writable twice",
            Box::new(move |t| {
                let set = t.pages();
                let _w = set.get_mut(fresh[0]).unwrap();
                set.get_mut(fresh[0]).map(|_| ()).unwrap_err()
            }),
            |e| matches!(e, E::AlreadyBorrowed { .. }),
        ));
        refusals.push((
            "PageSet lending a page readable, then writable",
            Box::new(move |t| {
                let set = t.pages();
                let _r = set.get(fresh[0]).unwrap();
                set.get_mut(fresh[0]).map(|_| ()).unwrap_err()
            }),
            |e| matches!(e, E::AlreadyBorrowed { .. }),
        ));

        for (what, call, expect) in &refusals {
            let err = call(&mut txn);
            assert!(expect(&err), "{durability:?}: {what} gave {err:?}");
            assert_eq!(
                view(&txn, &pages, &protected),
                before,
                "{durability:?}: {what} changed the transaction"
            );
        }
        // Still usable: a write after all of that lands with the rest.
        assert_eq!(txn.pages().get_mut(fresh[0]).unwrap().as_bytes()[0], 0xA1);
        txn.get_mut(fresh[0]).unwrap().as_bytes_mut()[1] = 0xB2;
        txn.commit().unwrap();

        let check = |pager: &P, ctx: &str, closes: u64| {
            assert_eq!(pager.generation(), generation + 1 + closes, "{ctx}");
            let mut expect = vec![kept[1], kept[2], fresh[0]];
            expect.sort();
            assert_eq!(
                pager.iter_allocated_pages().collect::<Vec<_>>(),
                expect,
                "{ctx}"
            );
            let bytes = fresh[0].get(pager).unwrap().as_bytes();
            assert_eq!(bytes[..2], [0xA1, 0xB2], "{ctx}");
            assert!(bytes[2..].iter().all(|&b| b == 0xA1), "{ctx}");
            assert_eq!(
                pager.iter_allocated_protected_pages().collect::<Vec<_>>(),
                vec![root],
                "{ctx}"
            );
            assert_eq!(root.get(pager).unwrap().as_bytes()[0], 9, "{ctx}");
        };
        check(&pager, &format!("{durability:?}"), 0);
        drop(pager);
        let pager = P::options().durability(durability).open(&path).unwrap();
        // A Deferred pager's clean close commits once more: a root that
        // checks no page, so that this open verifies none.
        let closes = u64::from(durability == Durability::Deferred);
        check(&pager, &format!("{durability:?}, reopened"), closes);
    }
}

//! Code written the way a user of version 0.2 writes it keeps compiling and
//! behaving the same (contract A5, E1): errors matched by path as unit
//! variants, zero counts that do nothing, ids that sort and dedup.
//!
//! Nothing here uses `{ .. }` patterns or any API added after 0.2, except
//! `sync_count()`, which is how the test sees that nothing was synced.

#[path = "support/os/mod.rs"]
mod os_support;

use os_support::FileExt;
use std::collections::{BTreeSet, HashSet};
use std::fs::OpenOptions;
use std::io::ErrorKind;

use mappedpages::{
    BulkPageAllocator, MappedPageError, PageAllocator, PageHandle, PageId, Pager, ProtectedPageId,
    SubPageAllocator, SubPageId,
};

/// A 0.2 program's error handler: every variant 0.2 had, by path. Written
/// with the deprecated variants too, as a 0.2 program that names them is.
#[allow(deprecated)]
fn describe(err: &MappedPageError) -> &'static str {
    match err {
        MappedPageError::Io(_) => "io",
        MappedPageError::InvalidPageSize => "page size",
        MappedPageError::CorruptSuperblock => "superblock",
        MappedPageError::CorruptMetadata => "metadata",
        MappedPageError::CorruptProtectedDirectory => "directory",
        MappedPageError::CorruptDirectoryIndex => "directory index",
        MappedPageError::DirectoryFull => "directory full",
        MappedPageError::OutOfBounds => "out of bounds",
        MappedPageError::ReservedPage => "reserved",
        MappedPageError::DoubleFree => "double free",
        MappedPageError::Unavailable => "unavailable",
        _ => "other",
    }
}

fn expect_err<T: std::fmt::Debug>(result: Result<T, MappedPageError>, want: &str) {
    match result {
        Err(err) => {
            assert_eq!(describe(&err), want, "got {err:?}");
            // Still a real error: Display, Debug and std::error::Error.
            assert!(!err.to_string().is_empty());
            let _: &dyn std::error::Error = &err;
        }
        Ok(value) => panic!("expected the {want} error, got Ok({value:?})"),
    }
}

#[test]
fn open_errors_are_the_0_2_variants() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.bin");
    let pager = Pager::<4096>::create(&path).unwrap();
    let id = {
        let mut pager = pager;
        let id = pager.alloc().unwrap();
        drop(pager);
        id
    };

    // Wrong page size.
    match Pager::<1024>::open(&path) {
        Err(MappedPageError::InvalidPageSize) => {}
        other => panic!("expected InvalidPageSize, got {other:?}"),
    }

    // create over an existing file, open of a missing one: Io with the OS's kind.
    match Pager::<4096>::create(&path) {
        Err(MappedPageError::Io(e)) => assert_eq!(e.kind(), ErrorKind::AlreadyExists),
        other => panic!("expected Io(AlreadyExists), got {other:?}"),
    }
    match Pager::<4096>::open(dir.path().join("missing.bin")) {
        Err(MappedPageError::Io(e)) => assert_eq!(e.kind(), ErrorKind::NotFound),
        other => panic!("expected Io(NotFound), got {other:?}"),
    }

    // A foreign file and a file too small for a superblock.
    let foreign = dir.path().join("foreign.bin");
    std::fs::write(&foreign, vec![0x5Au8; 64 * 1024]).unwrap();
    expect_err(Pager::<4096>::open(&foreign), "superblock");
    let tiny = dir.path().join("tiny.bin");
    std::fs::write(&tiny, b"MAPPED").unwrap();
    expect_err(Pager::<4096>::open(&tiny), "superblock");
    // A file cut short, past its superblock.
    let cut = dir.path().join("cut.bin");
    std::fs::write(&cut, &std::fs::read(&path).unwrap()[..40]).unwrap();
    expect_err(Pager::<4096>::open(&cut), "superblock");

    // The file still opens, then both metadata copies are damaged.
    {
        let pager = Pager::<4096>::open(&path).unwrap();
        assert!(id.get(&pager).is_ok());
    }
    let file = OpenOptions::new().write(true).open(&path).unwrap();
    for copy in [1u64, 2] {
        file.write_all_at(&[0xEE; 512], copy * 4096 + 64).unwrap();
    }
    file.sync_all().unwrap();
    match Pager::<4096>::open(&path) {
        Err(MappedPageError::CorruptMetadata) => {}
        other => panic!("expected CorruptMetadata, got {other:?}"),
    }
}

#[test]
fn bad_ids_are_the_0_2_variants() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<4096>::create(dir.path().join("data.bin")).unwrap();
    let a = pager.alloc().unwrap();
    let b = pager.alloc().unwrap();

    // An id past the end of the file.
    let past = PageId::<4096>(1 << 40);
    assert!(matches!(
        past.get(&pager),
        Err(MappedPageError::OutOfBounds)
    ));
    assert!(matches!(
        past.get_mut(&mut pager),
        Err(MappedPageError::OutOfBounds)
    ));
    assert!(matches!(
        pager.free(past),
        Err(MappedPageError::OutOfBounds)
    ));

    // Reserved pages: the superblock and the metadata copies.
    for reserved in [0u64, 1, 2] {
        assert!(matches!(
            pager.free(PageId(reserved)),
            Err(MappedPageError::ReservedPage)
        ));
        assert!(matches!(
            PageId::<4096>(reserved).get(&pager),
            Err(MappedPageError::ReservedPage)
        ));
    }

    // A double free, and one page named twice in one free_bulk.
    pager.free(a).unwrap();
    match pager.free(a) {
        Err(MappedPageError::DoubleFree) => {}
        other => panic!("expected DoubleFree, got {other:?}"),
    }
    assert!(matches!(
        pager.free_bulk(vec![b, b]),
        Err(MappedPageError::DoubleFree)
    ));
    assert!(matches!(
        pager.free_bulk(vec![b, a]),
        Err(MappedPageError::DoubleFree)
    ));
    // Nothing changed: b is still allocated and frees once.
    assert!(b.get(&pager).is_ok());
    pager.free_bulk(vec![b]).unwrap();

    // A protected id past the directory (none was ever allocated).
    let unused = ProtectedPageId::<4096>(7);
    assert!(matches!(
        unused.get(&pager),
        Err(MappedPageError::OutOfBounds)
    ));
    assert!(matches!(
        unused.get_mut(&mut pager).map(|_| ()),
        Err(MappedPageError::OutOfBounds)
    ));
    assert!(matches!(
        pager.free_protected(unused),
        Err(MappedPageError::OutOfBounds)
    ));
    let p = pager.alloc_protected().unwrap();
    // A newly allocated protected page reads as zeros.
    assert!(p.get(&pager).unwrap().as_bytes().iter().all(|&x| x == 0));
    assert!(matches!(
        pager.free_protected_bulk(vec![p, p]),
        Err(MappedPageError::DoubleFree)
    ));
    pager.free_protected(p).unwrap();
    assert!(matches!(
        pager.free_protected(p),
        Err(MappedPageError::DoubleFree)
    ));
}

#[test]
fn zero_counts_do_nothing_and_sync_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<4096>::create(dir.path().join("data.bin")).unwrap();
    let kept = pager.alloc().unwrap();
    let before = (
        pager.sync_count(),
        pager.page_count(),
        pager.free_page_count(),
    );

    let none: Vec<PageId<4096>> = pager.alloc_bulk(0).unwrap();
    assert!(none.is_empty());
    pager.free_bulk(vec![]).unwrap();
    let none: Vec<ProtectedPageId<4096>> = pager.alloc_protected_bulk(0).unwrap();
    assert!(none.is_empty());
    pager.free_protected_bulk(vec![]).unwrap();

    // The same through the traits, for both handle types.
    let none: Vec<PageId<4096>> = BulkPageAllocator::alloc_bulk(&mut pager, 0).unwrap();
    assert!(none.is_empty());
    BulkPageAllocator::<PageId<4096>>::free_bulk(&mut pager, vec![]).unwrap();
    let none: Vec<ProtectedPageId<4096>> = BulkPageAllocator::alloc_bulk(&mut pager, 0).unwrap();
    assert!(none.is_empty());
    BulkPageAllocator::<ProtectedPageId<4096>>::free_bulk(&mut pager, vec![]).unwrap();

    let after = (
        pager.sync_count(),
        pager.page_count(),
        pager.free_page_count(),
    );
    assert_eq!(before, after, "a zero count must not commit, write or sync");
    assert!(kept.get(&pager).is_ok());

    // An absurd count is still an error that changes nothing.
    assert!(matches!(
        pager.alloc_bulk(usize::MAX),
        Err(MappedPageError::InvalidCount { .. })
    ));
    assert!(matches!(
        pager.alloc_protected_bulk(usize::MAX),
        Err(MappedPageError::InvalidCount { .. })
    ));
    assert_eq!(
        (
            pager.sync_count(),
            pager.page_count(),
            pager.free_page_count()
        ),
        after
    );

    // Sub-pages: the bulk calls do nothing either.
    let mut sub = SubPageAllocator::<4096, 512>::new(pager);
    let one = sub.alloc().unwrap();
    let syncs = sub.pager().sync_count();
    let none: Vec<SubPageId<4096, 512>> = sub.alloc_bulk(0).unwrap();
    assert!(none.is_empty());
    sub.free_bulk(vec![]).unwrap();
    assert_eq!(sub.pager().sync_count(), syncs);
    assert_eq!(sub.allocated_count(), 1);
    sub.free(one).unwrap();
}

#[cfg(feature = "async")]
#[test]
fn async_zero_counts_do_nothing_and_sync_nothing() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let mut pager = Pager::<4096>::create(dir.path().join("data.bin")).unwrap();
        let syncs = pager.sync_count();
        assert!(pager.alloc_bulk_async(0).await.unwrap().is_empty());
        pager.free_bulk_async(vec![]).await.unwrap();
        assert!(pager
            .alloc_protected_bulk_async(0)
            .await
            .unwrap()
            .is_empty());
        pager.free_protected_bulk_async(vec![]).await.unwrap();
        assert_eq!(pager.sync_count(), syncs);
    });
}

#[test]
fn every_kind_of_id_sorts_dedups_and_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<4096>::create(dir.path().join("data.bin")).unwrap();

    let mut pages = pager.alloc_bulk(5).unwrap();
    pages.reverse();
    pages.extend(pages.clone());
    pages.sort();
    pages.dedup();
    assert_eq!(pages.len(), 5);
    assert!(pages.windows(2).all(|w| w[0] < w[1] && w[0].0 < w[1].0));
    assert_eq!(pages.iter().collect::<HashSet<_>>().len(), 5);
    assert_eq!(pages.iter().copied().max(), pages.last().copied());

    let mut protected = pager.alloc_protected_bulk(4).unwrap();
    protected.reverse();
    protected.push(protected[0]);
    protected.sort_unstable();
    protected.dedup();
    assert_eq!(protected.len(), 4);
    assert!(protected.windows(2).all(|w| w[0].0 < w[1].0));
    assert_eq!(protected.iter().collect::<BTreeSet<_>>().len(), 4);

    let mut sub = SubPageAllocator::<4096, 1024>::new(pager);
    let mut subs: Vec<SubPageId<4096, 1024>> = (0..6).map(|_| sub.alloc().unwrap()).collect();
    let copy = subs.clone();
    subs.reverse();
    subs.extend(copy);
    subs.sort();
    subs.dedup();
    assert_eq!(subs.len(), 6);
    // Ordered by parent page, then by slot inside it.
    assert!(subs
        .windows(2)
        .all(|w| (w[0].parent(), w[0].slot()) < (w[1].parent(), w[1].slot())));
    assert_eq!(subs.iter().collect::<HashSet<_>>().len(), 6);
    assert_eq!(subs.iter().collect::<BTreeSet<_>>().len(), 6);
    let _ = format!("{:?} {:?}", subs[0], protected[0]);
}

/// The seed's generic helpers, as 0.2 users wrote them (the trait call by
/// path where the inherent method would win).
fn fill_pages<H, const N: usize>(pager: &mut Pager<N>, n: usize) -> Vec<H>
where
    H: PageHandle<Pager<N>>,
    Pager<N>: PageAllocator<H>,
{
    (0..n)
        .map(|_| PageAllocator::alloc(pager).unwrap())
        .collect()
}

fn load_bulk<A, H>(allocator: &mut A, n: usize) -> Vec<H>
where
    H: PageHandle<A>,
    A: BulkPageAllocator<H>,
{
    allocator.alloc_bulk(n).unwrap()
}

#[test]
fn generic_code_over_the_traits_compiles_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<4096>::create(dir.path().join("data.bin")).unwrap();
    let pages: Vec<PageId<4096>> = fill_pages(&mut pager, 3);
    let protected: Vec<ProtectedPageId<4096>> = load_bulk(&mut pager, 2);
    let none: Vec<PageId<4096>> = load_bulk(&mut pager, 0);
    assert_eq!((pages.len(), protected.len(), none.len()), (3, 2, 0));
    let mut sub = SubPageAllocator::<4096, 512>::new(pager);
    let subs: Vec<SubPageId<4096, 512>> = load_bulk(&mut sub, 9);
    assert_eq!(subs.len(), 9);
    let id = subs[0];
    id.get_mut(&mut sub).unwrap().as_bytes_mut().fill(0xAB);
    assert_eq!(id.get(&sub).unwrap().len(), 512);
    sub.free_bulk(subs).unwrap();
    let mut pager = sub.into_pager();
    pager.free_bulk(pages).unwrap();
    assert_eq!(pager.iter_allocated_pages().count(), 0);
}

//! A live snapshot that reads a parent page does not make sub-page
//! allocation fail: `alloc` and `alloc_bulk` take a fresh parent page
//! instead of zeroing a slot in a page the snapshot reads, and a write in
//! place to such a page is the documented `InUseBySnapshot`.

use mappedpages::{
    BulkPageAllocator, MappedPageError, PageAllocator, PageHandle, Pager, SubPageAllocator,
};

type Sub = SubPageAllocator<4096, 512>;

fn allocator() -> (tempfile::TempDir, Sub) {
    let dir = tempfile::tempdir().unwrap();
    let pager = Pager::<4096>::create(dir.path().join("data.pages")).unwrap();
    (dir, Sub::new(pager))
}

#[test]
fn alloc_takes_a_fresh_parent_while_a_snapshot_reads_the_partial_one() {
    let (_dir, mut sub) = allocator();
    let a = sub.alloc().unwrap();
    a.get_mut(&mut sub).unwrap().as_bytes_mut().fill(0xaa);
    let snapshot = sub.pager().snapshot().unwrap();
    let seen = snapshot.get(a.parent()).unwrap().as_bytes().to_vec();

    let b = sub.alloc().unwrap();
    assert_ne!(b.parent(), a.parent());
    assert_eq!(b.get(&sub).unwrap().as_bytes(), &[0u8; 512][..]);
    b.get_mut(&mut sub).unwrap().as_bytes_mut().fill(0xbb);
    let more = sub.alloc_bulk(20).unwrap();
    assert!(more.iter().all(|id| id.parent() != a.parent()));
    assert!(more
        .iter()
        .all(|id| id.get(&sub).unwrap().as_bytes() == [0u8; 512]));

    // The page the snapshot reads is not written in place.
    assert!(matches!(
        a.get_mut(&mut sub),
        Err(MappedPageError::InUseBySnapshot { page }) if page == a.parent().0
    ));
    // The deprecated 0.2.0 name documents the same error.
    #[allow(deprecated)]
    let by_old_name = sub.alloc_mut(a);
    assert!(matches!(
        by_old_name,
        Err(MappedPageError::InUseBySnapshot { .. })
    ));
    assert_eq!(snapshot.get(a.parent()).unwrap().as_bytes(), &seen[..]);
    assert_eq!(a.get(&sub).unwrap().as_bytes(), &[0xaa; 512][..]);

    // Once the snapshot is gone, its page takes sub-pages again.
    drop(snapshot);
    a.get_mut(&mut sub).unwrap().as_bytes_mut()[0] = 1;
    let parents_before = sub.parent_page_count();
    let mut next = Vec::new();
    while sub.parent_page_count() == parents_before && next.len() < 64 {
        next.push(sub.alloc().unwrap());
        if next.last().unwrap().parent() == a.parent() {
            break;
        }
    }
    assert_eq!(next.last().unwrap().parent(), a.parent());
    assert_eq!(sub.parent_page_count(), parents_before);
}

//! Regression: after a reopen, `SubPageAllocator::restore` of some of the
//! sub-pages still in use, then a free of one of them, gave back the whole
//! parent page, the live sub-pages not restored yet included: the page
//! became free in the file, and every later use of the caller's records
//! failed (`NotAllocated`) or read another object. Allocations could also
//! hand out a slot of a restored parent over a sub-page not restored yet.
//! Now a restored parent is neither handed out nor given back until
//! `finish_restore` says every sub-page in use was restored, and the free
//! is `IncompleteRestore`, changing nothing.

use mappedpages::{
    BulkPageAllocator, MappedPageError, PageAllocator, PageHandle, PageId, Pager, SubPageAllocator,
};

type Sub = SubPageAllocator<4096, 1024>;

#[test]
fn a_partial_restore_cannot_free_or_reuse_sub_pages_it_was_not_told_about() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub.pages");
    let mut sub = Sub::new(Pager::create(&path).unwrap());
    let ids = sub.alloc_bulk(3).unwrap(); // one parent, three of four slots
    for (i, id) in ids.iter().enumerate() {
        id.get_mut(&mut sub)
            .unwrap()
            .as_bytes_mut()
            .fill(i as u8 + 1);
    }
    let parent = ids[0].parent();
    assert!(ids.iter().all(|id| id.parent() == parent));
    let records: Vec<(PageId<4096>, usize)> =
        ids.iter().map(|id| (id.parent(), id.slot())).collect();
    let mut pager = sub.into_pager();
    pager.sync().unwrap();
    drop(pager);

    let mut sub = Sub::new(Pager::open(&path).unwrap());
    let first = sub.restore(records[0].0, records[0].1).unwrap();
    // The free would give the parent back: refused, nothing changes.
    let err = sub.free(first).unwrap_err();
    assert!(
        matches!(err, MappedPageError::IncompleteRestore { page } if page == parent.0),
        "{err:?}"
    );
    let err = sub.free_bulk(vec![first]).unwrap_err();
    assert!(
        matches!(err, MappedPageError::IncompleteRestore { .. }),
        "{err:?}"
    );
    assert_eq!(sub.allocated_count(), 1);
    assert!(sub.pager().iter_allocated_pages().any(|p| p == parent));
    // A new sub-page does not land on the slots not restored yet.
    let new = sub.alloc().unwrap();
    assert_ne!(new.parent(), parent);
    // The bytes of the sub-pages not restored are intact.
    for (i, &(page, slot)) in records.iter().enumerate() {
        let bytes = page.get(sub.pager()).unwrap().as_bytes();
        assert!(bytes[slot * 1024..(slot + 1) * 1024]
            .iter()
            .all(|&b| b == i as u8 + 1));
    }

    // Restored whole: frees work, and the last gives the parent back.
    let rest: Vec<_> = records[1..]
        .iter()
        .map(|&(page, slot)| sub.restore(page, slot).unwrap())
        .collect();
    sub.finish_restore();
    sub.free(first).unwrap();
    sub.free_bulk(rest).unwrap();
    assert!(!sub.pager().iter_allocated_pages().any(|p| p == parent));
    sub.free(new).unwrap();
    assert_eq!(sub.parent_page_count(), 0);
}

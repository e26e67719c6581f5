//! A protected page freed twice is `DoubleFree`, as in 0.2.0, whichever
//! call frees it; `OutOfBounds` is for a slot past the directory.

use mappedpages::{MappedPageError, PageAllocator, Pager, ProtectedPageId};

const PS: usize = 4096;

fn pager_with_protected(count: usize) -> (tempfile::TempDir, Pager<PS>, Vec<ProtectedPageId<PS>>) {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<PS>::create(dir.path().join("data.pages")).unwrap();
    let ids = pager.alloc_protected_bulk(count).unwrap();
    (dir, pager, ids)
}

#[test]
fn free_protected_of_a_freed_slot_is_double_free() {
    let (_dir, mut pager, ids) = pager_with_protected(3);
    // The first slot, and the last (the directory's end) too.
    for id in [ids[0], ids[2]] {
        pager.free_protected(id).unwrap();
        assert!(matches!(
            pager.free_protected(id),
            Err(MappedPageError::DoubleFree)
        ));
        assert!(matches!(
            PageAllocator::free(&mut pager, id),
            Err(MappedPageError::DoubleFree)
        ));
    }
    assert_eq!(
        pager.iter_allocated_protected_pages().collect::<Vec<_>>(),
        vec![ids[1]]
    );
}

#[test]
fn free_protected_bulk_naming_a_freed_slot_is_double_free_and_frees_nothing() {
    let (_dir, mut pager, ids) = pager_with_protected(3);
    pager.free_protected(ids[1]).unwrap();
    assert!(matches!(
        pager.free_protected_bulk(vec![ids[0], ids[1]]),
        Err(MappedPageError::DoubleFree)
    ));
    assert!(matches!(
        pager.free_protected_bulk(vec![ids[0], ids[0]]),
        Err(MappedPageError::DoubleFree)
    ));
    assert_eq!(
        pager.iter_allocated_protected_pages().collect::<Vec<_>>(),
        vec![ids[0], ids[2]]
    );
}

#[test]
fn a_transaction_freeing_a_freed_slot_gets_double_free() {
    let (_dir, mut pager, ids) = pager_with_protected(2);
    let mut txn = pager.transaction().unwrap();
    txn.free_protected(ids[0]).unwrap();
    assert!(matches!(
        txn.free_protected(ids[0]),
        Err(MappedPageError::DoubleFree)
    ));
    txn.commit().unwrap();
    assert_eq!(
        pager.iter_allocated_protected_pages().collect::<Vec<_>>(),
        vec![ids[1]]
    );
}

#[test]
fn a_slot_past_the_directory_is_out_of_bounds() {
    let (_dir, mut pager, ids) = pager_with_protected(2);
    for raw in [ids[1].0 + 1, 1 << 20, u64::MAX] {
        let id = ProtectedPageId::<PS>(raw);
        assert!(matches!(
            pager.free_protected(id),
            Err(MappedPageError::OutOfBounds)
        ));
        assert!(matches!(
            pager.free_protected_bulk(vec![id]),
            Err(MappedPageError::OutOfBounds)
        ));
    }
    assert_eq!(pager.iter_allocated_protected_pages().count(), 2);
}

//! A dropped transaction that had allocated sub-pages (and so made
//! directory slots for their parent pages) must leave nothing of them in
//! the next commit's root: that root once recorded a directory longer than
//! the file, and the file then reopened to the commit before it.
//!
//! Found by the model test: a file of 6 pages, a transaction allocating 1
//! sub-page of 64 B and 11 of 2 KiB, dropped; then `alloc_bulk(1)` and a
//! protected write; a copy of the file as a kill leaves it fell back to
//! generation 1 ("directory longer than the file can back").

use mappedpages::{Durability, Pager, SubPage};

#[test]
fn a_dropped_transaction_of_sub_pages_leaves_no_directory_behind() {
    for durability in [Durability::Immediate, Durability::Deferred] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dropped.pages");
        let mut pager = Pager::<4096>::options()
            .durability(durability)
            .initial_pages(6)
            .create(&path)
            .unwrap();
        {
            let mut txn = pager.transaction().unwrap();
            txn.alloc_sub_pages::<64>(1).unwrap();
            txn.alloc_sub_pages::<2048>(11).unwrap();
            // Dropped: undone.
        }
        let id = pager.alloc_bulk(1).unwrap()[0];
        let generation = pager.generation();
        let pages = pager.page_count();
        // The file as a killed process leaves it, and as a clean close does.
        let copy = dir.path().join("killed.pages");
        std::fs::copy(&path, &copy).unwrap();
        for file in [&copy, &path] {
            if file == &path {
                drop(std::mem::replace(
                    &mut pager,
                    Pager::<4096>::options()
                        .create(dir.path().join("other"))
                        .unwrap(),
                ));
            }
            let reopened = Pager::<4096>::options()
                .durability(durability)
                .open(file)
                .unwrap();
            let report = reopened.recovery();
            assert!(!report.fell_back, "{durability:?}: {report:?}");
            assert!(
                report.generation >= generation,
                "{durability:?}: {report:?}"
            );
            assert!(reopened.page_count() >= pages.min(reopened.page_count()));
            assert!(id.get(&reopened).is_ok());
            assert_eq!(reopened.iter_sub_pages::<64>().count(), 0);
            assert_eq!(reopened.iter_sub_pages::<2048>().count(), 0);
        }
        let _ = SubPage::<64>(0);
    }
}

//! Consistent copies of a live file: a snapshot written to a new file while
//! the writer goes on opens to exactly that state.

#[path = "support/os/mod.rs"]
mod os_support;

use mappedpages::{MappedPageError, PageId, Pager, ProtectedPageId, ReadOnlyPager, Snapshot};

const PS: usize = 4096;
type P = Pager<PS>;

/// Page ids with their bytes.
type Pages = Vec<(u64, Vec<u8>)>;

/// Every regular page's bytes and every protected page's bytes.
fn contents_of(snapshot: &Snapshot<PS>) -> (Pages, Pages) {
    let regular = snapshot
        .iter_allocated_pages()
        .map(|id| (id.0, snapshot.get(id).unwrap().as_bytes().to_vec()))
        .collect();
    let protected = snapshot
        .iter_allocated_protected_pages()
        .map(|id| {
            (
                id.0,
                snapshot.get_protected(id).unwrap().as_bytes().to_vec(),
            )
        })
        .collect();
    (regular, protected)
}

fn fill(pager: &mut P, count: usize, tag: u8) -> Vec<PageId<PS>> {
    let mut txn = pager.transaction().unwrap();
    let ids = txn.alloc_bulk(count).unwrap();
    for &id in &ids {
        let bytes = txn.get_mut(id).unwrap().as_bytes_mut();
        bytes.fill(tag);
        bytes[..8].copy_from_slice(&id.0.to_le_bytes());
    }
    txn.commit().unwrap();
    ids
}

#[test]
fn a_copy_opens_to_the_snapshot_with_the_same_ids_and_leaves_free_pages_out() {
    let dir = tempfile::tempdir().unwrap();
    let (path, copy) = (dir.path().join("a.pages"), dir.path().join("b.pages"));
    let mut pager = P::create(&path).unwrap();
    let ids = fill(&mut pager, 6000, 1);
    let roots: Vec<ProtectedPageId<PS>> =
        (0..3).map(|_| pager.alloc_protected().unwrap()).collect();
    for (i, &root) in roots.iter().enumerate().take(2) {
        let mut w = root.get_mut(&mut pager).unwrap();
        w.page_mut().as_bytes_mut().fill(i as u8 + 10);
        w.commit().unwrap();
    }
    // Holes: every third page freed.
    pager
        .free_bulk(ids.iter().copied().filter(|id| id.0 % 3 == 0).collect())
        .unwrap();
    let snapshot = pager.snapshot().unwrap();
    let expect = contents_of(&snapshot);
    snapshot.copy_to(&copy).unwrap();
    assert!(!dir.path().join("b.pages.partial").exists());

    let copied = P::open(&copy).unwrap();
    let copied_snapshot = copied.snapshot().unwrap();
    assert_eq!(contents_of(&copied_snapshot), expect);
    assert_eq!(
        copied.allocated_page_count(),
        snapshot.allocated_page_count()
    );
    // Cut after its last page in use (and its trees), not the source's
    // growth; holes take no blocks.
    let meta = std::fs::metadata(&copy).unwrap();
    let last = ids
        .last()
        .unwrap()
        .0
        .max(roots.iter().map(|r| r.0).max().unwrap());
    assert!(meta.len() / (PS as u64) < snapshot.page_count(), "not cut");
    assert!(meta.len() / (PS as u64) > last);
    if let Some(disk) = os_support::disk_bytes(&meta) {
        assert!(disk < meta.len(), "the free pages took blocks");
    }
    assert_eq!(
        roots[2].get(&copied).unwrap().as_bytes(),
        &[0u8; PS][..],
        "never committed: zeros"
    );
    assert!(mappedpages::inspect::Inspector::open(&copy)
        .unwrap()
        .check()
        .unwrap()
        .is_clean());
}

#[test]
fn a_copy_taken_while_a_writer_thread_commits_is_a_state_it_committed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.pages");
    let mut pager = P::create(&path).unwrap();
    fill(&mut pager, 2000, 1);
    let mut copies = Vec::new();
    for round in 0..4u8 {
        let snapshot = pager.snapshot().unwrap();
        let expect = contents_of(&snapshot);
        let target = dir.path().join(format!("copy{round}.pages"));
        let copier = {
            let target = target.clone();
            std::thread::spawn(move || snapshot.copy_to(&target))
        };
        // The writer goes on while the copy is made: frees, new pages, growth.
        for tag in 0..5u8 {
            let ids: Vec<_> = pager.iter_allocated_pages().take(50).collect();
            pager.free_bulk(ids).unwrap();
            fill(&mut pager, 300, round * 10 + tag + 2);
        }
        copier.join().unwrap().unwrap();
        copies.push((target, expect));
    }
    for (target, expect) in copies {
        let copied = P::open(&target).unwrap();
        assert_eq!(contents_of(&copied.snapshot().unwrap()), expect);
    }
}

#[test]
fn a_copy_onto_an_existing_file_or_of_a_locked_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, copy) = (dir.path().join("a.pages"), dir.path().join("b.pages"));
    let mut pager = P::create(&path).unwrap();
    fill(&mut pager, 10, 1);
    std::fs::write(&copy, b"keep me").unwrap();
    assert!(matches!(
        pager.snapshot().unwrap().copy_to(&copy),
        Err(MappedPageError::Io(e)) if e.kind() == std::io::ErrorKind::AlreadyExists
    ));
    assert_eq!(std::fs::read(&copy).unwrap(), b"keep me");
    // Another writer holds the file: a read-only open (what a copy of a
    // file by path uses) is refused; once it is closed the copy is made.
    assert!(matches!(
        ReadOnlyPager::<PS>::open(&path),
        Err(MappedPageError::Locked)
    ));
    drop(pager);
    std::fs::remove_file(&copy).unwrap();
    ReadOnlyPager::<PS>::open(&path)
        .unwrap()
        .copy_to(&copy)
        .unwrap();
    assert_eq!(P::open(&copy).unwrap().allocated_page_count(), 10);
}

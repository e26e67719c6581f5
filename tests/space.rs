//! Space given back: `shrink` cuts the free tail, a commit does so past a
//! threshold, and relocating the highest pages lets a churned file shrink.

use mappedpages::{PageId, Pager};

const PS: usize = 4096;
type P = Pager<PS>;

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("space.pages");
    (dir, path)
}

fn file_pages(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).unwrap().len() / PS as u64
}

fn write(pager: &mut P, count: usize, tag: u8) -> Vec<PageId<PS>> {
    let mut txn = pager.transaction().unwrap();
    let ids = txn.alloc_bulk(count).unwrap();
    for &id in &ids {
        let bytes = txn.get_mut(id).unwrap().as_bytes_mut();
        bytes[..8].copy_from_slice(&id.0.to_le_bytes());
        bytes[8] = tag;
    }
    txn.commit().unwrap();
    ids
}

fn assert_holds(pager: &P, ids: &[PageId<PS>], tag: u8) {
    for &id in ids {
        let bytes = id.get(pager).unwrap().as_bytes();
        assert_eq!(&bytes[..8], &id.0.to_le_bytes());
        assert_eq!(bytes[8], tag);
    }
}

#[test]
fn shrink_gives_the_free_tail_back_and_the_file_reopens_to_it() {
    let (_dir, path) = temp();
    let mut pager = P::options().shrink_threshold(None).create(&path).unwrap();
    let keep = write(&mut pager, 100, 1);
    let tail = write(&mut pager, 20_000, 2);
    // What the last growth left free past the last page is given back, and
    // the check pages of the big commit with it: the file ends within a few
    // metadata pages of the last page in use.
    let last = tail.last().unwrap().0;
    pager.shrink().unwrap();
    assert!(
        pager.page_count() <= last + 1 + 8,
        "{} pages",
        pager.page_count()
    );
    assert!(pager.shrink().unwrap() <= 8, "a second shrink finds little");
    let grown = pager.page_count();
    pager.free_bulk(tail).unwrap();
    let given = pager.shrink().unwrap();
    assert!(given > 19_000, "gave back {given} of {grown}");
    assert_eq!(pager.page_count(), grown - given);
    assert_eq!(file_pages(&path), pager.page_count());
    assert_holds(&pager, &keep, 1);
    // It goes on: allocation grows the file again as needed.
    let more = write(&mut pager, 3000, 3);
    drop(pager);
    let pager = P::open(&path).unwrap();
    assert_holds(&pager, &keep, 1);
    assert_holds(&pager, &more, 3);
    assert_eq!(pager.allocated_page_count(), 3100);
}

#[test]
fn a_commit_past_the_threshold_shrinks_by_itself_and_none_never_does() {
    for threshold in [Some(1 << 20), None] {
        let (_dir, path) = temp();
        let mut pager = P::options()
            .shrink_threshold(threshold)
            .create(&path)
            .unwrap();
        write(&mut pager, 10, 1);
        let tail = write(&mut pager, 30_000, 2);
        let grown = pager.page_count();
        pager.free_bulk(tail).unwrap();
        match threshold {
            Some(_) => {
                // Cut, keeping a growth step (4 MiB) of slack.
                let (pages, free) = (pager.page_count(), pager.free_page_count());
                assert!(pages < 2100 && free >= 1000, "{pages} pages, {free} free");
            }
            None => assert_eq!(pager.page_count(), grown),
        }
        assert_eq!(file_pages(&path), pager.page_count());
    }
}

#[test]
fn pages_a_snapshot_reads_are_not_cut() {
    let (_dir, path) = temp();
    let mut pager = P::options().shrink_threshold(None).create(&path).unwrap();
    let tail = write(&mut pager, 5000, 7);
    let snapshot = pager.snapshot().unwrap();
    pager.free_bulk(tail.clone()).unwrap();
    let given = pager.shrink().unwrap();
    assert!(
        pager.page_count() > tail.last().unwrap().0,
        "gave back {given}, {} pages left, last {:?}",
        pager.page_count(),
        tail.last()
    );
    for &id in &tail {
        assert_eq!(snapshot.get(id).unwrap().as_bytes()[8], 7);
    }
    drop(snapshot);
    assert!(pager.shrink().unwrap() >= 5000);
}

/// A snapshot's map may keep the file from being cut (Windows cannot cut a
/// file while any view of it is mapped): the shrink still succeeds and the
/// pager counts the shorter file at once; the file itself is cut by the
/// first sync once the snapshot is gone, and reopens either way.
#[test]
fn a_cut_a_snapshot_blocks_is_made_by_a_later_sync() {
    let (_dir, path) = temp();
    let mut pager = P::options().shrink_threshold(None).create(&path).unwrap();
    let keep = write(&mut pager, 100, 1);
    let tail = write(&mut pager, 5000, 2);
    pager.free_bulk(tail).unwrap();
    let snapshot = pager.snapshot().unwrap();
    let given = pager.shrink().unwrap();
    assert!(given >= 5000, "gave back {given}");
    assert!(file_pages(&path) >= pager.page_count());
    for &id in &keep {
        assert_eq!(snapshot.get(id).unwrap().as_bytes()[8], 1);
    }
    assert_holds(&pager, &keep, 1);
    drop(snapshot);
    let more = write(&mut pager, 1, 3);
    assert_eq!(file_pages(&path), pager.page_count());
    drop(pager);
    let pager = P::open(&path).unwrap();
    assert_holds(&pager, &keep, 1);
    assert_holds(&pager, &more, 3);
}

#[test]
fn relocating_the_highest_pages_down_lets_a_churned_file_shrink() {
    let (_dir, path) = temp();
    let mut pager = P::options().shrink_threshold(None).create(&path).unwrap();
    let ids = write(&mut pager, 8192, 5);
    // Free every other page: half the file is holes, none of it a tail.
    let (gone, mut live): (Vec<_>, Vec<_>) = ids.iter().partition(|id| id.0 % 2 == 0);
    pager.free_bulk(gone).unwrap();
    pager.shrink().unwrap(); // the growth's slack only
    assert_eq!(pager.shrink().unwrap(), 0, "the holes are not a tail");
    // Move the highest pages down, one transaction per batch, as an engine
    // repoints its references.
    loop {
        let top: Vec<_> = pager.iter_allocated_pages().rev().take(256).collect();
        let mut txn = pager.transaction().unwrap();
        let mut moved = 0;
        for id in top {
            let Some(to) = txn.relocate(id).unwrap() else {
                break;
            };
            let bytes = txn.get_mut(to).unwrap().as_bytes_mut();
            bytes[..8].copy_from_slice(&to.0.to_le_bytes());
            let at = live.iter().position(|&l| l == id).unwrap();
            live[at] = to;
            moved += 1;
        }
        txn.commit().unwrap();
        if moved == 0 {
            break;
        }
    }
    pager.shrink().unwrap();
    let live_pages = pager.allocated_page_count() + 3;
    assert!(
        (pager.page_count() as f64) <= live_pages as f64 * 1.1,
        "{} pages for {live_pages} live",
        pager.page_count()
    );
    assert_holds(&pager, &live, 5);
    drop(pager);
    assert_holds(&P::open(&path).unwrap(), &live, 5);
}

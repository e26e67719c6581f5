//! A shrink whose new end sits at a boundary of the free-space tree (the end
//! of a bitmap leaf, or of the leaves one tree node above covers) must leave
//! a file that opens again: the end and the room its checkpoint needs are
//! computed together, and nothing is cut below what the durable root counts
//! on.

use mappedpages::{Durability, PageId, Pager};

fn temp() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("boundary.pages");
    (dir, path)
}

/// Fills the file densely so that the free tail starts at `tail_start`
/// (the first page past the last page in use), with one more page allocated
/// and freed past it so that the file is longer, shrinks, and checks that
/// the file reopens to the same pages.
fn shrink_with_tail_at<const PS: usize>(tail_start: u64, durability: Durability) {
    let (_dir, path) = temp();
    // Sparse: the big page sizes make files of gigabytes that hold little.
    let mut pager = Pager::<PS>::options()
        .durability(durability)
        .shrink_threshold(None)
        .preallocate(false)
        .create(&path)
        .unwrap();
    // Pages 0..3 are the format's own; a transaction places pages lowest
    // first in a fresh file, so allocating `tail_start - 3` pages reaches
    // the end asked for, metadata pages aside.
    let mut txn = pager.transaction().unwrap();
    let want = tail_start.saturating_sub(3) as usize;
    let ids = txn.alloc_bulk(want).unwrap();
    txn.commit().unwrap();
    let extra = pager.alloc().unwrap();
    pager.free(extra).unwrap();
    pager.sync().unwrap();
    let last_before: Vec<PageId<PS>> = pager.iter_allocated_pages().collect();
    pager.shrink().unwrap();
    // The pager goes on working after the shrink...
    let after = pager.alloc().unwrap();
    pager.free(after).unwrap();
    pager.sync().unwrap();
    let count = pager.page_count();
    drop(pager);
    // ...and the file opens again, with every page in use still in use.
    let pager = Pager::<PS>::open(&path).unwrap_or_else(|err| {
        panic!("tail at {tail_start} ({durability:?}, {PS}-byte pages): reopen failed: {err}")
    });
    assert!(pager.page_count() >= count.min(pager.page_count()));
    let reopened: Vec<PageId<PS>> = pager.iter_allocated_pages().collect();
    assert_eq!(reopened, last_before);
    assert_eq!(reopened.len(), ids.len());
}

/// Tail starts at, just before and just after each bitmap leaf end, for the
/// first leaves and the first boundary one tree level up.
fn boundaries<const PS: usize>() -> Vec<u64> {
    let per_leaf = PS as u64 * 8;
    let mut ends = vec![per_leaf, 2 * per_leaf];
    // One level up: the leaves a branch of the tree covers.
    let fanout = (PS as u64 - 16) / 16;
    if PS <= 1024 {
        ends.push(per_leaf * fanout);
    }
    let mut tails = Vec::new();
    for end in ends {
        for delta in [-2i64, -1, 0, 1, 2] {
            tails.push(end.saturating_add_signed(delta));
        }
    }
    tails
}

#[test]
fn shrink_at_bitmap_leaf_boundaries_reopens_1k() {
    for durability in [Durability::Immediate, Durability::Deferred] {
        for tail in boundaries::<1024>() {
            shrink_with_tail_at::<1024>(tail, durability);
        }
    }
}

#[test]
fn shrink_at_bitmap_leaf_boundaries_reopens_4k() {
    for durability in [Durability::Immediate, Durability::Deferred] {
        for tail in boundaries::<4096>() {
            shrink_with_tail_at::<4096>(tail, durability);
        }
    }
}

#[test]
fn the_case_the_review_found() {
    // Every page from 3 to the end of the first bitmap leaf, one more
    // allocated and freed past it.
    shrink_with_tail_at::<1024>(8 * 1024, Durability::Immediate);
    shrink_with_tail_at::<1024>(8 * 1024, Durability::Deferred);
}

/// 64 KiB pages: a bitmap leaf covers 2^19 pages, a 32 GiB file (sparse).
#[cfg(target_pointer_width = "64")]
#[test]
fn shrink_at_bitmap_leaf_boundaries_reopens_64k() {
    if cfg!(mappedpages_wine) {
        eprintln!("skipped under Wine: it refuses a 32 GiB map ('Not enough memory')");
        return;
    }
    let per_leaf = 64 * 1024 * 8;
    for tail in [per_leaf - 1, per_leaf, per_leaf + 1] {
        shrink_with_tail_at::<65536>(tail, Durability::Immediate);
    }
}

#[cfg(not(target_pointer_width = "64"))]
#[test]
fn shrink_at_bitmap_leaf_boundaries_reopens_64k() {
    eprintln!("skipped: a 64 KiB-page bitmap leaf spans 32 GiB, past a 32-bit address space");
}

/// Protected slots filling the directory up to, just before and just past
/// the end of a directory leaf, the highest of them freed, then a shrink:
/// the directory's length bounds the file (two pages per slot) and its tree
/// gets a new leaf at the boundary.
fn shrink_with_slots<const PS: usize>(slots: usize, freed: usize, durability: Durability) {
    let (_dir, path) = temp();
    let mut pager = Pager::<PS>::options()
        .durability(durability)
        .shrink_threshold(None)
        .create(&path)
        .unwrap();
    let ids = pager.alloc_protected_bulk(slots).unwrap();
    for (i, &id) in ids.iter().enumerate() {
        let mut writer = id.get_mut(&mut pager).unwrap();
        writer.page_mut().as_bytes_mut()[..8].copy_from_slice(&(i as u64).to_le_bytes());
        writer.commit().unwrap();
    }
    let (kept, gone) = ids.split_at(slots - freed);
    pager.free_protected_bulk(gone.to_vec()).unwrap();
    pager.shrink().unwrap();
    drop(pager);
    let pager = Pager::<PS>::open(&path).unwrap_or_else(|err| {
        panic!("{slots} slots, {freed} freed ({durability:?}, {PS}-byte pages): {err}")
    });
    for (i, id) in kept.iter().enumerate() {
        assert_eq!(
            id.get(&pager).unwrap().as_bytes()[..8],
            (i as u64).to_le_bytes()
        );
    }
    assert_eq!(pager.iter_allocated_protected_pages().count(), kept.len());
}

#[test]
fn shrink_at_directory_leaf_boundaries_reopens() {
    // A directory leaf holds a page's worth of 16-byte entries.
    let per_leaf = 1024 / 16;
    for durability in [Durability::Immediate, Durability::Deferred] {
        for slots in [per_leaf - 1, per_leaf, per_leaf + 1, 2 * per_leaf + 1] {
            for freed in [0, 1, 2, slots / 2] {
                shrink_with_slots::<1024>(slots, freed, durability);
            }
        }
    }
}

//! The journal: what the commit protocol (`engine/commit.rs`) keeps
//! between commits. The log of changes since the last checkpoint, the page
//! trees, the root slots, the checks of pages written since the last sync
//! and the pages that wait to be reused; and [`Change`], what one commit
//! publishes.

use std::collections::{HashMap, HashSet};

use crate::engine::page_tree::PageTree;
use crate::engine::reclaim::Reclamation;
use crate::engine::sub_slots::FreedSubPages;
use crate::format::record::{DirEntry, PageCheck, Record};
use crate::format::root::Root;
use crate::format::tree_node::NodeRef;

/// Commit-side state: the log, the page trees and what awaits durability.
#[derive(Debug)]
pub(crate) struct Journal {
    /// Generation of the newest root written.
    pub(super) generation: u64,
    /// Changes since the last checkpoint; every root carries all of them.
    pub(super) log: Vec<Record>,
    pub(super) bitmap_tree: PageTree,
    pub(super) dir_tree: PageTree,
    /// Root slot (0 or 1) of the newest root written.
    pub(super) last_slot: usize,
    /// Root slot of the newest root known durable; never overwritten.
    pub(super) durable_slot: usize,
    /// The file length, in pages, that the newest root counts on: what a
    /// failed call gives the file back to.
    pub(super) root_total: u64,
    /// Pages commits stopped using, until they may be reused.
    pub(super) reclaim: Reclamation,
    /// The checks of pages written without a sync by the commits since the
    /// durable root, for every page still in use, so that a root whose
    /// earlier unsynced pages were lost to a power loss is rejected too
    /// ("never a mix"): those not yet in check pages (each root lists them
    /// itself) and the chain of check pages written since the sync (each
    /// root names its head). A commit writes only its own checks, in the
    /// root or, when that is full, in one more check page linked to the
    /// chain: its cost does not grow with the commits before it.
    pub(super) unsynced_checks: Vec<PageCheck>,
    pub(super) chain: CheckPages,
    /// Pages the durable root checks: not to be written in place while it
    /// may be needed (see `Core::is_guarded`).
    pub(super) durable_checked: HashSet<u64>,
    /// Check pages of a chain a sync made unneeded: the next commit frees
    /// them (the newest root still names them until then).
    pub(super) stale_check_pages: Vec<u64>,
    /// A root was written since the last sync (which then makes it the
    /// durable one).
    pub(super) root_since_sync: bool,
    /// The root of the newest commit, not written yet: it was made while
    /// a group sync ran (see `engine/group.rs`). Made at that commit, as a
    /// transaction open when it is written may have taken pages and slots
    /// since.
    pub(super) pending_root: Option<Root>,
    /// A root since the last checkpoint may hold sub-page parents, in its
    /// trees or its log: roots are written as format 4 until the next
    /// checkpoint finds none.
    pub(super) sub_pages: bool,
    /// The entry the durable root holds, for each directory slot a commit
    /// since the last sync changed: the copy it names must not be staged
    /// over (see `engine/transaction.rs`).
    pub(super) durable_entries: HashMap<u64, DirEntry>,
}

impl Journal {
    /// The journal of a file just created: generation 1 in root slot 0,
    /// durable, with empty page trees, counting on `total` pages.
    pub(super) fn new(page_size: usize, total: u64) -> Journal {
        Journal {
            generation: 1,
            log: Vec::new(),
            bitmap_tree: PageTree::empty(page_size, 1),
            dir_tree: PageTree::empty(page_size, 1),
            last_slot: 0,
            durable_slot: 0,
            root_total: total,
            reclaim: Reclamation::default(),
            unsynced_checks: Vec::new(),
            chain: CheckPages::default(),
            durable_checked: HashSet::new(),
            stale_check_pages: Vec::new(),
            root_since_sync: false,
            pending_root: None,
            durable_entries: HashMap::new(),
            sub_pages: false,
        }
    }

    /// The journal of a file opened at `root`, found in root slot `slot`
    /// with its trees loaded; taken as the durable root (open makes it so
    /// before the first write). The pages it checks stay guarded, and its
    /// check pages are freed by the next commit, which no longer names them.
    pub(super) fn opened(
        root: &Root,
        slot: usize,
        bitmap_tree: PageTree,
        dir_tree: PageTree,
        reclaim: Reclamation,
        checked: &[u64],
        check_pages: Vec<u64>,
    ) -> Journal {
        Journal {
            generation: root.generation,
            log: root.log.clone(),
            bitmap_tree,
            dir_tree,
            last_slot: slot,
            durable_slot: slot,
            root_total: root.total_pages,
            reclaim,
            unsynced_checks: Vec::new(),
            chain: CheckPages::default(),
            durable_checked: checked.iter().copied().collect(),
            stale_check_pages: check_pages,
            root_since_sync: false,
            pending_root: None,
            durable_entries: HashMap::new(),
            sub_pages: root.sub_pages,
        }
    }
}

/// The chain of check pages written since the last sync (`FORMAT.md`,
/// "Check pages").
#[derive(Debug, Default)]
pub(crate) struct CheckPages {
    pub(super) head: NodeRef,
    /// Checks the chain holds.
    pub(super) len: u64,
    pub(super) pages: Vec<u64>,
    /// The pages the chain's checks name.
    pub(super) checked: HashSet<u64>,
}

/// Checks past which a Deferred pager syncs before the next commit, so that
/// what open verifies stays bounded (contract T5): 2^16 pages, 256 MiB of
/// 4 KiB pages, written since the last sync.
pub(crate) const MAX_UNSYNCED_CHECKS: u64 = 1 << 16;

/// One commit's worth of change, already applied to the free map.
#[derive(Debug, Default)]
pub(crate) struct Change {
    pub(super) records: Vec<Record>,
    /// Pages the change stops using; reusable once the commit is durable.
    pub(super) freed: Vec<u64>,
    /// Pages written for this commit without a sync, ascending: the root
    /// lists their CRCs. With each, its CRC when the commit computed it
    /// from the bytes it wrote; the others are read from the file.
    pub(super) written: Vec<(u64, Option<u32>)>,
    /// Pages whose earlier checks no longer describe the state (protected
    /// copies that stopped being the committed one); `freed` pages too.
    pub(super) stale: Vec<u64>,
    /// Each directory slot the change touched, with its entry before.
    pub(super) slots_before: Vec<(u64, DirEntry)>,
    /// Committed sub-pages the change frees (held in the free map).
    pub(super) freed_sub_pages: Vec<FreedSubPages>,
    /// Regular pages the change allocated and uses: if no sync covers the
    /// commit, a later one may free them without waiting for a sync (see
    /// `engine/reclaim.rs`).
    pub(super) born: Vec<u64>,
    /// Sync the commit whatever the durability mode.
    pub(super) force_sync: bool,
    /// Checkpoint both page trees, whether or not the log is full (a
    /// shrink: no log record or tree of its root may name a page past the
    /// new end).
    pub(super) checkpoint: bool,
}

/// `last` and `next` as one record, when they are adjacent runs of one kind.
fn merged(last: &Record, next: &Record) -> Option<Record> {
    match (*last, *next) {
        (Record::Alloc { start, count }, Record::Alloc { start: s, count: c })
            if start + count == s =>
        {
            Some(Record::Alloc {
                start,
                count: count + c,
            })
        }
        (Record::Free { start, count }, Record::Free { start: s, count: c })
            if start + count == s =>
        {
            Some(Record::Free {
                start,
                count: count + c,
            })
        }
        _ => None,
    }
}

/// Appends `record`, merging it into the last one when they are adjacent runs.
pub(super) fn push_merged(log: &mut Vec<Record>, record: Record) {
    match log.last_mut() {
        Some(last) => match merged(last, &record) {
            Some(both) => *last = both,
            None => log.push(record),
        },
        None => log.push(record),
    }
}

/// The length of `log` after [`push_merged`] of each of `records`.
pub(super) fn merged_len(log: &[Record], records: &[Record]) -> usize {
    let mut len = log.len();
    let mut last = log.last().copied();
    for record in records {
        last = match last.and_then(|l| merged(&l, record)) {
            Some(both) => Some(both),
            None => {
                len += 1;
                Some(*record)
            }
        };
    }
    len
}

/// Turns ascending page numbers into runs of `(start, count)`.
pub(crate) fn runs(sorted_pages: &[u64]) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &page in sorted_pages {
        match out.last_mut() {
            Some((start, count)) if *start + *count == page => *count += 1,
            _ => out.push((page, 1)),
        }
    }
    out
}

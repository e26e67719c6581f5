//! Where a transaction's pages go in the file.
//!
//! A commit's cost on a disk is mostly its `fdatasync`, and that grows with
//! the number of separate places it writes, not with the bytes: on ext4 four
//! 4 KiB pages and the root written at four scattered places and synced take
//! about twice as long as the same four pages side by side. Lowest-free
//! allocation scatters a copy-on-write engine's pages over the holes its
//! earlier commits freed, so small allocations are placed instead:
//!
//! - a page goes right after the one the transaction took before, when that
//!   one is free;
//! - else at the lowest run of free pages as long as what the transaction is
//!   expected to take, judged by the one before it (an engine's transactions
//!   are alike), searched in a bounded window;
//! - else at the lowest free page, as before: placement never grows the file
//!   (growth is decided by counts alone), so a file fragmented past any run
//!   is filled hole by hole and gets no longer than lowest-free would make it.
//!
//! Grouped commits (`group.rs`) are synced together, so their pages go side
//! by side too: a grouped transaction's first page goes right after the
//! last page the grouped commits since the last sync took, when that one
//! is free. Other commits start afresh: an `Immediate` commit is synced
//! alone, and a `Deferred` run keeps filling the lowest holes.
//!
//! Only a [`Transaction`](crate::Transaction) is placed so: a seed call
//! (`alloc`, `alloc_bulk`, a protected commit) takes the lowest free pages,
//! as it always did, and its pages do not change what a transaction is
//! expected to take.
//!
//! Blocks the file system has reserved but never written (the tail a growth
//! `fallocate`d, or a hole) cost more still: the first sync after writing
//! one must also commit the change of its extent, up to twice the time of
//! an overwrite. So when a transaction takes such a page to write it, the
//! free pages after it are written with zeros, 256 KiB in one sequential
//! write: that sync converts them all at once, and the commits after it find
//! written blocks. Zeros go only into free pages, which no reader, snapshot
//! or root can see, and only in a file that preallocates its growth: one
//! created sparse (`preallocate(false)`) asked to keep its holes. A
//! transaction writes zeros ahead once: the pages it takes after them are
//! converted by the same sync as its first, and zeros written ahead of each
//! of them would double what a large transaction writes. `Deferred`
//! commits write them too, though no sync follows each: their pages are
//! then already in the page cache, and a one-page commit into a written
//! cache page took 2.1 µs against 3.4 µs into a new one.

use crate::engine::freemap::FreeMap;
use crate::io::Storage;

/// The longest run looked for: past it, a transaction writes enough that
/// one more place costs little.
pub(crate) const MAX_RUN: u64 = 64;

/// Words of the free map (64 pages each) a run is looked for in, from the
/// lowest free page: bounds the search in a fragmented file.
const SEARCH_WORDS: usize = 1024;

/// Bytes of zeros written ahead into never-written free pages.
const ZERO_AHEAD_BYTES: usize = 256 * 1024;

/// Placement state: the transaction's last page, what it took so far and
/// what the one before it took.
#[derive(Debug)]
pub(crate) struct Placement {
    /// A [`Transaction`](crate::Transaction) is open (not a seed call).
    active: bool,
    /// It is grouped.
    grouped: bool,
    last: Option<u64>,
    /// The last page grouped commits took since the last sync started.
    grouped_last: Option<u64>,
    /// The pages grouped commits took since the last sync started, and
    /// in the sync period before: what the next period is expected to take.
    grouped_taken: u64,
    grouped_expected: u64,
    taken: u64,
    expected: u64,
    /// Pages from here to the end may never have been written (a guess for
    /// a file opened: the pages after the last one in use).
    unwritten_from: u64,
    /// The open transaction wrote zeros ahead already.
    zeroed: bool,
    /// A run search of this transaction that found nothing: the run's
    /// length, and the page past the window it looked in.
    no_run: Option<NoRun>,
    /// Run searches made.
    #[cfg(test)]
    run_searches: u64,
}

/// What a run search that found nothing learnt: no `len` free pages in a
/// row lie before page `until` (from the lowest free page). It stays true
/// while the transaction only takes pages, and a fragmented file without a
/// free tail would otherwise make every page of a large transaction search
/// the whole window again (a fifth of a batch of 1 000 B+tree inserts).
/// Shorter runs are looked for again only once the length wanted halved,
/// so a transaction searches a few times, not once a page, as it nears
/// the end of what it was expected to take.
#[derive(Clone, Copy, Debug)]
struct NoRun {
    len: u64,
    until: u64,
}

impl Placement {
    pub(super) fn new(unwritten_from: u64) -> Placement {
        Placement {
            active: false,
            grouped: false,
            last: None,
            grouped_last: None,
            grouped_taken: 0,
            grouped_expected: 1,
            taken: 0,
            expected: 1,
            unwritten_from,
            zeroed: false,
            no_run: None,
            #[cfg(test)]
            run_searches: 0,
        }
    }

    /// The free page the transaction's next page goes to, when the call
    /// wants `remaining` more.
    fn choose(&mut self, map: &FreeMap, remaining: u64) -> Option<u64> {
        if !self.active {
            return map.lowest_free();
        }
        if let Some(next) = self.last.and_then(|last| last.checked_add(1)) {
            if map.is_free(next) {
                return Some(next);
            }
        }
        // At least what the call wants, so that its pages stay ascending;
        // the first grouped commit after a sync, what its period will take.
        let expected = if self.grouped && self.grouped_last.is_none() && self.taken == 0 {
            self.grouped_expected.max(self.expected)
        } else {
            self.expected
        };
        let want = expected
            .saturating_sub(self.taken)
            .max(remaining)
            .clamp(1, MAX_RUN);
        let lowest = map.lowest_free()?;
        let known_absent = self
            .no_run
            .is_some_and(|no_run| want > no_run.len / 2 && lowest < no_run.until);
        if want > 1 && !known_absent {
            #[cfg(test)]
            {
                self.run_searches += 1;
            }
            if let Some(start) = map.free_run(want, SEARCH_WORDS) {
                return Some(start);
            }
            let window = SEARCH_WORDS as u64 * 64;
            self.no_run = Some(NoRun {
                len: want,
                until: lowest.saturating_add(window),
            });
        }
        Some(lowest)
    }

    /// A [`Transaction`](crate::Transaction) begins; a `grouped` one goes
    /// on after the grouped commits before it.
    pub(super) fn begin_transaction(&mut self, grouped: bool) {
        self.active = true;
        self.zeroed = false;
        self.no_run = None;
        self.grouped = grouped;
        self.last = if grouped { self.grouped_last } else { None };
    }

    /// The transaction ended (committed or not): the next one is expected
    /// to take as many pages, and a grouped one goes on after it.
    pub(super) fn end_transaction(&mut self) {
        if self.active && self.taken > 0 {
            self.expected = self.taken;
        }
        if self.grouped && self.active {
            self.grouped_last = self.last.or(self.grouped_last);
            self.grouped_taken += self.taken;
        }
        self.active = false;
        self.taken = 0;
        self.last = None;
    }

    /// A sync started: the pages taken from now on are synced by the next.
    pub(super) fn sync_started(&mut self) {
        self.grouped_last = None;
        if self.grouped_taken > 0 {
            self.grouped_expected = std::mem::take(&mut self.grouped_taken);
        }
    }

    /// The file was cut to `total` pages.
    pub(super) fn cut(&mut self, total: u64) {
        self.unwritten_from = self.unwritten_from.min(total);
    }
}

/// What the pages taken are for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Use {
    /// Regular pages handed to the caller.
    Regular,
    /// Pages the pager writes itself (protected copies, tree and check pages).
    Internal,
}

impl Placement {
    /// Takes `count` free pages of `map` (at most [`MAX_RUN`]) placed as the
    /// module docs say, for `usage`; `None`, changing nothing, if fewer are
    /// free. Ascending.
    pub(super) fn take(&mut self, map: &mut FreeMap, count: u64, usage: Use) -> Option<Vec<u64>> {
        if count > map.free_pages() {
            return None;
        }
        let mut pages = Vec::with_capacity(count as usize);
        for remaining in (1..=count).rev() {
            let page = self.choose(map, remaining)?;
            let taken = match usage {
                Use::Internal => map.take_internal(page),
                Use::Regular => map.take_regular(page),
            };
            debug_assert!(taken, "placement chose page {page}, which is not free");
            self.last = Some(page);
            self.taken += 1;
            pages.push(page);
        }
        // A run found below the page continued first: callers get them in order.
        pages.sort_unstable();
        Some(pages)
    }

    /// Writes zeros into the free pages of `map` after `page`, the last of
    /// pages just taken for `usage`, when they may never have been written
    /// (see the module docs). Best effort: a failed write of a free page
    /// loses nothing, so its error is dropped; a later write that matters
    /// reports its own.
    pub(super) fn zero_ahead(
        &mut self,
        map: &FreeMap,
        store: &mut Storage,
        page_size: usize,
        page: u64,
        usage: Use,
    ) {
        // A seed `alloc` may never write its pages (and should cost what it
        // did); a transaction's and the pager's own pages get written.
        if !(self.active || usage == Use::Internal)
            || (self.active && self.zeroed)
            || page + 1 < self.unwritten_from
        {
            return;
        }
        static ZEROS: [u8; ZERO_AHEAD_BYTES] = [0; ZERO_AHEAD_BYTES];
        let pages = (ZERO_AHEAD_BYTES / page_size).max(1) as u64;
        let end = (page + 1 + pages).min(map.total_pages());
        let mut at = page + 1;
        while at < end {
            if !map.is_free(at) {
                at += 1;
                continue;
            }
            let run_end = (at..end).find(|&p| !map.is_free(p)).unwrap_or(end);
            let (mut offset, run_bytes) =
                (at * page_size as u64, (run_end - at) * page_size as u64);
            let run_stop = offset + run_bytes;
            while offset < run_stop {
                let len = (run_stop - offset).min(ZEROS.len() as u64) as usize;
                let _ = store.write_unused_zeros(offset, &ZEROS[..len]);
                offset += len as u64;
            }
            at = run_end;
        }
        self.unwritten_from = self.unwritten_from.max(end);
        self.zeroed = self.active;
    }
}

#[cfg(test)]
mod tests {
    use crate::engine::core::{Core, Settings};
    use crate::engine::durability::Durability;
    use crate::engine::freemap::FreeMap;

    use super::{Placement, Use, ZERO_AHEAD_BYTES};

    const PS: usize = 1024;

    fn core(path: &std::path::Path, durability: Durability) -> Core {
        let settings = Settings {
            durability,
            max_growth_pages: 1 << 20,
            initial_pages: 4096,
            ..Settings::for_tests(PS)
        };
        Core::create(path, settings).unwrap()
    }

    /// One transaction taking `pages` pages one call at a time, each
    /// written, then committed; the bytes of zeros written ahead meanwhile.
    fn zeros_of_a_transaction(core: &mut Core, pages: usize) -> u64 {
        let before = core.store.unused_zeros_written();
        let mut txn = core.begin_transaction().unwrap();
        for _ in 0..pages {
            let page = core.txn_alloc_regular(&mut txn, 1).unwrap()[0];
            core.txn_page_mut(&mut txn, page).unwrap().fill(0xAB);
        }
        core.commit_txn(txn).unwrap();
        core.store.unused_zeros_written() - before
    }

    /// A transaction whose pages reach never-written blocks writes zeros
    /// ahead of them once, however many pages it takes past them; the next
    /// transaction there does again, in either durability mode.
    #[test]
    fn zeros_go_ahead_once_per_synced_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let mut synced = core(&dir.path().join("immediate"), Durability::Immediate);
        let run = ZERO_AHEAD_BYTES as u64;
        let first = zeros_of_a_transaction(&mut synced, 1000);
        assert!(first > 0 && first <= run, "{first} bytes of zeros");
        let next = zeros_of_a_transaction(&mut synced, 1);
        assert!(next > 0 && next <= run, "{next} bytes of zeros");
        // Its page was among those zeroed: the one after needs none.
        assert_eq!(zeros_of_a_transaction(&mut synced, 1), 0);

        let mut deferred = core(&dir.path().join("deferred"), Durability::Deferred);
        let first = zeros_of_a_transaction(&mut deferred, 1000);
        assert!(first > 0 && first <= run, "{first} bytes of zeros");
    }

    /// In a file whose free pages are single holes, with no free end, a
    /// transaction taking many pages one at a time looks for a run a few
    /// times, not once a page, and takes the holes lowest first.
    #[test]
    fn a_file_of_holes_is_searched_for_runs_a_few_times_per_transaction() {
        let total = 64 * 4096;
        let mut map = FreeMap::new(total);
        let all = map.alloc_regular(map.free_pages()).unwrap();
        let holes: Vec<u64> = all.into_iter().step_by(2).collect();
        map.unalloc_regular(&holes);
        let mut placement = Placement::new(total);
        let mut taken = Vec::new();
        for _ in 0..3 {
            placement.begin_transaction(false);
            let before = placement.run_searches;
            for _ in 0..300 {
                taken.extend(placement.take(&mut map, 1, Use::Regular).unwrap());
            }
            placement.end_transaction();
            // The first transaction expects one page: it looks for no run;
            // the others for 64, then 32, ... 2 at their end.
            let searches = placement.run_searches - before;
            assert!(searches <= 6, "{searches} searches");
        }
        assert!(placement.run_searches >= 1, "the later ones expect runs");
        assert_eq!(taken, holes[..900], "the lowest holes, in order");
    }
}

//! Page reclamation: the one place that decides when a freed page may be
//! handed out again.
//!
//! A page a commit stops using (a page the caller freed, a protected copy
//! replaced, a tree or check page rewritten) is not free at once. It waits
//! for up to three things, in this order:
//!
//! 1. **A durable root that does not use it.** Until the commit that freed
//!    it is durable, the durable root may still be the one a crash reopens,
//!    and it may use the page. A sync ends this wait ([`Reclamation::synced`]).
//! 2. **A durable root that does not check it.** In Deferred mode a root
//!    lists the CRC of every page written since the last sync; a page freed
//!    while the root made durable by that sync still checks it must not be
//!    written, or a crash would find that root rejected. It waits for the
//!    next sync, whose root no longer checks it. Open withholds such pages
//!    the same way ([`Reclamation::opened`]): the root it opened may check
//!    pages that its own state counts as free.
//! 3. **No live snapshot older than the commit that freed it** (see
//!    `snapshot.rs`, rule 1): a snapshot reads the state it was taken in,
//!    where the page may still be in use. Dropping the snapshot ends this
//!    wait ([`Reclamation::release`]). Readers in other processes count
//!    as snapshots (`readers.rs`).
//!
//! A regular page that a commit since the last sync made (allocated, in
//! use when that commit ended) and a later commit frees skips waits 1 and
//! 2 ([`Reclamation::born`]): the durable root, the one a power loss may
//! fall back to, neither uses nor checks a page that was free in its
//! state. A newer root that used it checks the page's CRC (every root in
//! Deferred mode lists the checks of the pages written since the last
//! sync), so a crash image showing that root beside the page rewritten by
//! its next owner is rejected, and open falls back to the durable root, as
//! it does for any unsynced commit a power loss cut short. Not a page whose
//! check a check page still lists, though: the root of the freeing commit
//! names that chain too, and a process crash must reopen it. A page the
//! commit that made it never wrote holds no bytes of the caller's to lose.
//! Such pages wait only for snapshots. Pages a transaction allocated and
//! freed again are not among them (the commit never used them, and the
//! engine may have written them through the map), nor are pages made while
//! a group sync seals its root (see `engine/group.rs`): the set starts over
//! when a sync starts.
//!
//! Every waiting page stays marked in use in the free map, so nothing else
//! can take it; this type only says which pages wait and gives them back.
//!
//! A sub-page a commit frees waits for the same things but the second (a
//! transaction never writes into a parent page a root checks), and is held
//! in the free map the same way (see `sub_slots.rs`).

use crate::engine::freemap::FreeMap;
use crate::engine::sub_slots::FreedSubPages;
use crate::page_hash::PageSet;

/// The most pages [`Reclamation::born`] remembers between two syncs: a
/// bound on its memory (16 MiB or so) in a long run of `Deferred` commits;
/// pages made past it wait for a sync as any other.
const MAX_BORN: usize = 1 << 20;

/// Pages and sub-pages freed by commits and not reusable yet, by the
/// generation of the commit that freed them.
#[derive(Debug, Default)]
pub(crate) struct Reclamation {
    /// Waiting for a durable root that neither uses nor checks them
    /// (waits 1 and 2).
    awaiting_sync: Vec<(u64, Vec<u64>)>,
    /// Freed by durable commits; waiting for the snapshots older than the
    /// commit that freed them (wait 3).
    held: Vec<(u64, Vec<u64>)>,
    /// Sub-pages freed by commits not yet durable (wait 1).
    sub_pages_awaiting_sync: Vec<(u64, Vec<FreedSubPages>)>,
    /// Sub-pages freed by durable commits (wait 3).
    sub_pages_held: Vec<(u64, Vec<FreedSubPages>)>,
    /// Regular pages committed since the last sync started (module docs).
    born: PageSet,
}

impl Reclamation {
    /// The pages waiting when a file is opened at generation `generation`:
    /// those its root checks although its state counts them as free, which
    /// open took out of the free map (see [`FreeMap::withhold`]).
    pub(super) fn opened(generation: u64, withheld: Vec<u64>) -> Reclamation {
        let mut reclaim = Reclamation::default();
        reclaim.freed(generation, withheld);
        reclaim
    }

    /// The commit of `generation` stopped using `pages`.
    pub(super) fn freed(&mut self, generation: u64, pages: Vec<u64>) {
        if !pages.is_empty() {
            self.awaiting_sync.push((generation, pages));
        }
    }

    /// [`Reclamation::freed`] for a commit about to write its root: of
    /// `pages`, those committed since the last sync started wait only for
    /// snapshots, unless `listed` says that check pages the new root names
    /// still hold their checks (written there by the commit that made
    /// them): that root would be rejected once they are rewritten. Returns
    /// whether any page waits only for snapshots: once the root is written,
    /// [`Reclamation::release`] may give them back.
    pub(super) fn freed_by_commit(
        &mut self,
        generation: u64,
        mut pages: Vec<u64>,
        listed: impl Fn(u64) -> bool,
    ) -> bool {
        let mut unsynced = Vec::new();
        if !self.born.is_empty() {
            pages.retain(|&page| {
                let early = !listed(page) && self.born.remove(&page);
                if early {
                    unsynced.push(page);
                }
                !early
            });
        }
        self.freed(generation, pages);
        let early = !unsynced.is_empty();
        if early {
            self.held.push((generation, unsynced));
        }
        early
    }

    /// A commit that no sync has started to cover made `pages` (regular
    /// pages it allocated and still uses): freed before the next sync
    /// starts, they need not wait for it (module docs).
    pub(super) fn born(&mut self, pages: impl IntoIterator<Item = u64>) {
        for page in pages {
            if self.born.len() >= MAX_BORN {
                return;
            }
            self.born.insert(page);
        }
    }

    /// A sync starts: the root it makes durable may use every page made so
    /// far.
    pub(super) fn sync_started(&mut self) {
        self.born.clear();
    }

    /// The commit of `generation` freed sub-pages (held in the free map).
    pub(super) fn freed_sub_pages(&mut self, generation: u64, freed: Vec<FreedSubPages>) {
        if !freed.is_empty() {
            self.sub_pages_awaiting_sync.push((generation, freed));
        }
    }

    /// Whether some page waits for a sync: one would make it reusable
    /// sooner than growing the file.
    pub(super) fn awaits_sync(&self) -> bool {
        !self.awaiting_sync.is_empty()
    }

    /// How many pages wait for a sync.
    pub(super) fn awaiting_sync_count(&self) -> u64 {
        self.awaiting_sync
            .iter()
            .map(|(_, pages)| pages.len() as u64)
            .sum()
    }

    /// How many pages wait, for anything.
    pub(super) fn count(&self) -> u64 {
        self.lists().map(|pages| pages.len() as u64).sum()
    }

    /// Every page that waits, for anything.
    pub(super) fn pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.lists().flat_map(|pages| pages.iter().copied())
    }

    /// Whether `page` waits: freed by a commit, not reusable yet, so free
    /// to the caller (freeing it again is a double free).
    pub(super) fn contains(&self, page: u64) -> bool {
        self.lists().any(|pages| pages.contains(&page))
    }

    fn lists(&self) -> impl Iterator<Item = &Vec<u64>> + '_ {
        self.awaiting_sync
            .iter()
            .chain(&self.held)
            .map(|(_, pages)| pages)
    }

    /// A sync made every root written so far durable. Pages the durable
    /// root still checks (`checked`) wait for the next sync; the others
    /// wait only for the snapshots older than the commit that freed them.
    pub(super) fn synced(&mut self, checked: impl Fn(u64) -> bool) {
        self.synced_through(u64::MAX, checked);
    }

    /// [`Reclamation::synced`] for a sync that made durable the roots up to
    /// `generation` only (a group sync, while later commits went on): pages
    /// freed after it go on waiting.
    pub(super) fn synced_through(&mut self, generation: u64, checked: impl Fn(u64) -> bool) {
        let through = take_through(&mut self.awaiting_sync, generation);
        let through_subs = take_through(&mut self.sub_pages_awaiting_sync, generation);
        self.sub_pages_held.extend(through_subs);
        for (generation, pages) in through {
            let (still_checked, unused): (Vec<u64>, Vec<u64>) =
                pages.into_iter().partition(|&page| checked(page));
            if !still_checked.is_empty() {
                self.awaiting_sync.push((generation, still_checked));
            }
            if !unused.is_empty() {
                self.held.push((generation, unused));
            }
        }
    }

    /// How many pages wait only for snapshots (or readers) older than the
    /// commits that freed them, among those freed after `generation`.
    pub(super) fn held_after(&self, generation: u64) -> u64 {
        self.held
            .iter()
            .filter(|(freed_by, _)| *freed_by > generation)
            .map(|(_, pages)| pages.len() as u64)
            .sum()
    }

    /// The newest generation whose freed pages or sub-pages wait only for
    /// snapshots: the most a [`Reclamation::release`] may give back.
    pub(super) fn newest_releasable(&self) -> Option<u64> {
        self.held
            .iter()
            .map(|(generation, _)| *generation)
            .chain(
                self.sub_pages_held
                    .iter()
                    .map(|(generation, _)| *generation),
            )
            .max()
    }

    /// Gives back to `map` the pages no live snapshot may read: those freed
    /// by a commit no newer than `oldest_snapshot`, the generation of the
    /// oldest live snapshot (`None`: none lives).
    pub(super) fn release(&mut self, map: &mut FreeMap, oldest_snapshot: Option<u64>) {
        let oldest = oldest_snapshot.unwrap_or(u64::MAX);
        give_back_through(&mut self.sub_pages_held, oldest, |freed| {
            map.release_sub_pages(freed)
        });
        give_back_through(&mut self.held, oldest, |pages| map.release(pages));
    }
}

/// Takes out of `lists` those freed by commits up to `generation`.
fn take_through<T>(lists: &mut Vec<(u64, Vec<T>)>, generation: u64) -> Vec<(u64, Vec<T>)> {
    let (through, later) = std::mem::take(lists)
        .into_iter()
        .partition(|&(freed_by, _)| freed_by <= generation);
    *lists = later;
    through
}

/// Hands to `give_back`, and drops from `lists`, those freed by commits no
/// newer than `oldest`.
fn give_back_through<T>(
    lists: &mut Vec<(u64, Vec<T>)>,
    oldest: u64,
    mut give_back: impl FnMut(&[T]),
) {
    lists.retain(|(freed_by, items)| {
        let unpinned = *freed_by <= oldest;
        if unpinned {
            give_back(items);
        }
        !unpinned
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_waits_for_a_sync_then_for_older_snapshots() {
        let mut map = FreeMap::new(16);
        for page in [5, 6, 7] {
            assert!(map.take_internal(page));
        }
        let mut reclaim = Reclamation::default();
        reclaim.freed(10, vec![5, 6]);
        reclaim.freed(11, vec![7]);
        assert!(reclaim.awaits_sync());
        assert_eq!(reclaim.count(), 3);
        assert!(reclaim.contains(6) && !reclaim.contains(8));
        // No sync yet: nothing is given back, snapshots or not.
        reclaim.release(&mut map, None);
        assert!(!map.is_free(5));
        // Page 6 is still checked by the root the sync made durable.
        reclaim.synced(|page| page == 6);
        assert!(reclaim.awaits_sync());
        // A snapshot of generation 10 may read what commit 11 freed.
        reclaim.release(&mut map, Some(10));
        assert!(map.is_free(5) && !map.is_free(7) && !map.is_free(6));
        reclaim.release(&mut map, None);
        assert!(map.is_free(7) && !map.is_free(6));
        reclaim.synced(|_| false);
        reclaim.release(&mut map, None);
        assert!(map.is_free(6));
        assert_eq!(reclaim.count(), 0);
        assert!(!reclaim.awaits_sync());
    }

    /// Of the pages a commit frees, one made since the last sync started
    /// waits only for snapshots; one made before, one a check page lists,
    /// and one never recorded as made wait for a sync, as before.
    #[test]
    fn a_page_made_since_the_last_sync_waits_only_for_snapshots() {
        let mut map = FreeMap::new(16);
        for page in [4, 5, 6, 7] {
            assert!(map.take_internal(page));
        }
        let mut reclaim = Reclamation::default();
        reclaim.born([4]);
        reclaim.sync_started();
        reclaim.born([5, 6]);
        reclaim.freed_by_commit(10, vec![4, 5, 6, 7], |page| page == 6);
        assert_eq!(reclaim.awaiting_sync_count(), 3, "4, 6 and 7");
        // A snapshot of generation 9 may still read page 5.
        reclaim.release(&mut map, Some(9));
        assert!(!map.is_free(5));
        reclaim.release(&mut map, None);
        assert!(map.is_free(5));
        assert!([4, 6, 7]
            .iter()
            .all(|&page| !map.is_free(page) && reclaim.contains(page)));
        // Made once, reusable early once: taken again without being made
        // by a commit, it waits for a sync.
        assert!(map.take_internal(5));
        reclaim.freed_by_commit(11, vec![5], |_| false);
        reclaim.release(&mut map, None);
        assert!(!map.is_free(5));
        reclaim.synced(|_| false);
        reclaim.release(&mut map, None);
        assert!([4, 5, 6, 7].iter().all(|&page| map.is_free(page)));
    }

    /// A `Deferred` pager hands out again, without a sync, a page a commit
    /// made and a later one freed; a page made before a sync waits for the
    /// next one when it is freed.
    #[test]
    fn a_deferred_pager_reuses_a_page_made_and_freed_since_the_last_sync() {
        use crate::engine::core::{Core, Settings};
        use crate::engine::Durability;
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings {
            durability: Durability::Deferred,
            ..Settings::for_tests(1024)
        };
        let mut core = Core::create(&dir.path().join("deferred.pages"), settings).unwrap();
        core.sync().unwrap();
        let one_page = |core: &mut Core| {
            let mut txn = core.begin_transaction().unwrap();
            let page = core.txn_alloc_regular(&mut txn, 1).unwrap()[0];
            core.commit_txn(txn).unwrap();
            page
        };
        let syncs = core.sync_count();
        let made = one_page(&mut core);
        core.free_regular(&[made]).unwrap();
        assert_eq!(one_page(&mut core), made, "handed out again");
        assert_eq!(core.sync_count(), syncs, "without a sync");
        // A page made before the last sync waits for the next one.
        core.sync().unwrap();
        core.free_regular(&[made]).unwrap();
        assert_ne!(one_page(&mut core), made);
        assert!(core.journal.reclaim.contains(made));
    }

    #[test]
    fn open_withholds_pages_until_a_sync() {
        let mut map = FreeMap::new(16);
        let withheld = map.withhold(&[4, 9]);
        let mut reclaim = Reclamation::opened(3, withheld);
        assert!(reclaim.contains(4) && reclaim.contains(9));
        reclaim.release(&mut map, None);
        assert!(!map.is_free(4));
        reclaim.synced(|_| false);
        reclaim.release(&mut map, None);
        assert!(map.is_free(4) && map.is_free(9));
    }
}

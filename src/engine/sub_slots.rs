//! Free-space tracking for sub-pages: which parent pages have a sub-page
//! that may be handed out, found without a scan, and which sub-pages wait
//! to be reusable. Pure bookkeeping, no I/O; the free map keeps it in step
//! with the directory (every change of an entry goes through
//! `FreeMap::set_entry`).
//!
//! A sub-page freed by a commit is not free at once, for the same reasons
//! as a page (see `reclaim.rs`): the durable root or a live snapshot may
//! still read it. Until then its bit is *held*: clear in the parent's
//! entry, but not handed out. A held bit belongs to the parent page it was
//! freed in, not to the directory slot: when the slot stops naming that
//! page (its last sub-page freed, or the parent moved by a shrink) the bit
//! holds nothing, as the page itself then waits, or the bytes a reader may
//! read stay in the old page; and an undo that names the page again finds
//! it held as before.
//!
//! Memory: one entry per size class and parent with a sub-page to give, and
//! one per parent with held sub-pages; nothing per sub-page.

use std::collections::{BTreeSet, HashMap};

use crate::format::record::{sub_mask, DirEntry, MAX_SUB_SHIFT, MIN_SUB_SHIFT};

const CLASSES: usize = (MAX_SUB_SHIFT - MIN_SUB_SHIFT + 1) as usize;

/// Sub-pages freed from one parent page, named by its directory slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FreedSubPages {
    pub slot: u64,
    pub page: u64,
    pub bits: u64,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct SubSlots {
    /// Per size class (shift minus `MIN_SUB_SHIFT`), the directory slots of
    /// the parents with a sub-page to give.
    open: [BTreeSet<u64>; CLASSES],
    /// Per directory slot and parent page, the held sub-pages.
    held: HashMap<(u64, u64), u64>,
    /// Parent entries in the directory.
    parents: u64,
}

fn class(shift: u8) -> Option<usize> {
    shift
        .checked_sub(MIN_SUB_SHIFT)
        .map(usize::from)
        .filter(|&class| class < CLASSES)
}

impl SubSlots {
    /// The sub-pages of the parent in `slot` that may be handed out.
    pub(super) fn available(&self, slot: u64, entry: &DirEntry) -> u64 {
        let Some((page, shift, used)) = entry.as_parent() else {
            return 0;
        };
        let held = self.held.get(&(slot, page)).copied().unwrap_or(0);
        sub_mask(shift) & !used & !held
    }

    /// Directory slot `slot` changed from `before` to `after`.
    pub(super) fn changed(&mut self, slot: u64, before: &DirEntry, after: &DirEntry) {
        if let Some((_, shift, _)) = before.as_parent() {
            self.parents = self.parents.saturating_sub(1);
            if let Some(class) = class(shift) {
                self.open[class].remove(&slot);
            }
        }
        if after.as_parent().is_some() {
            self.parents += 1;
        }
        self.refile(slot, after);
    }

    fn refile(&mut self, slot: u64, entry: &DirEntry) {
        let Some((_, shift, _)) = entry.as_parent() else {
            return;
        };
        let Some(class) = class(shift) else {
            return;
        };
        if self.available(slot, entry) != 0 {
            self.open[class].insert(slot);
        } else {
            self.open[class].remove(&slot);
        }
    }

    /// Holds sub-pages freed by a commit until [`SubSlots::release`];
    /// `entry` is what the slot holds now.
    pub(super) fn hold(&mut self, freed: &FreedSubPages, entry: Option<&DirEntry>) {
        *self.held.entry((freed.slot, freed.page)).or_insert(0) |= freed.bits;
        if let Some(entry) = entry {
            self.refile(freed.slot, entry);
        }
    }

    /// Gives back held sub-pages; `entry` is what the slot holds now.
    pub(super) fn release(&mut self, freed: &FreedSubPages, entry: Option<&DirEntry>) {
        let key = (freed.slot, freed.page);
        let Some(held) = self.held.get_mut(&key) else {
            return;
        };
        *held &= !freed.bits;
        if *held == 0 {
            self.held.remove(&key);
        }
        if let Some(entry) = entry {
            self.refile(freed.slot, entry);
        }
    }

    /// Whether the directory holds any parent.
    pub(super) fn any_parent(&self) -> bool {
        self.parents > 0
    }

    /// The directory slots of parents cut `1 << shift` ways with a sub-page
    /// to give, lowest first.
    pub(super) fn open_parents(&self, shift: u8) -> impl Iterator<Item = u64> + '_ {
        class(shift)
            .map(|class| self.open[class].iter().copied())
            .into_iter()
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_is_open_while_a_sub_page_is_neither_used_nor_held() {
        let mut subs = SubSlots::default();
        let entry = DirEntry::parent(10, 1, 0b01);
        subs.changed(4, &DirEntry::FREE, &entry);
        assert_eq!(subs.open_parents(1).collect::<Vec<_>>(), [4]);
        assert_eq!(subs.available(4, &entry), 0b10);
        let full = DirEntry::parent(10, 1, 0b11);
        subs.changed(4, &entry, &full);
        assert_eq!(subs.open_parents(1).count(), 0);
        // Sub-page 0 freed: held, so still not open.
        let after_free = DirEntry::parent(10, 1, 0b10);
        subs.changed(4, &full, &after_free);
        let freed = FreedSubPages {
            slot: 4,
            page: 10,
            bits: 0b01,
        };
        subs.hold(&freed, Some(&after_free));
        assert_eq!(subs.open_parents(1).count(), 0);
        subs.release(
            &FreedSubPages {
                slot: 4,
                page: 10,
                bits: 0b01,
            },
            Some(&after_free),
        );
        assert_eq!(subs.open_parents(1).collect::<Vec<_>>(), [4]);
        assert_eq!(subs.available(4, &after_free), 0b01);
    }

    #[test]
    fn held_bits_belong_to_their_parent_page() {
        let mut subs = SubSlots::default();
        let old = DirEntry::parent(10, 2, 0b0110);
        subs.changed(7, &DirEntry::FREE, &old);
        let hold = |subs: &mut SubSlots, page, bits, entry: &DirEntry| {
            subs.hold(
                &FreedSubPages {
                    slot: 7,
                    page,
                    bits,
                },
                Some(entry),
            );
        };
        hold(&mut subs, 10, 0b0001, &old);
        // The parent moves to page 3 (a shrink): the bits held in page 10
        // are not held in page 3.
        let moved = DirEntry::parent(3, 2, 0b0110);
        subs.changed(7, &old, &moved);
        assert_eq!(subs.available(7, &moved), 0b1001);
        // A release for page 10 changes nothing of page 3.
        hold(&mut subs, 3, 0b1000, &moved);
        subs.release(
            &FreedSubPages {
                slot: 7,
                page: 10,
                bits: 0b1000,
            },
            Some(&moved),
        );
        assert_eq!(subs.available(7, &moved), 0b0001);
        // An undo that names page 10 again finds its bit held.
        subs.changed(7, &moved, &old);
        assert_eq!(subs.available(7, &old), 0b1000);
        subs.changed(7, &old, &moved);
        // The slot freed: not open in any class.
        subs.changed(7, &moved, &DirEntry::FREE);
        assert_eq!(subs.open_parents(2).count(), 0);
        assert_eq!(subs.available(7, &DirEntry::FREE), 0);
    }
}

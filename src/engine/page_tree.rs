//! A copy-on-write tree of pages with checksums in the parents.
//!
//! Both the free-space bitmap and the protected-page directory are long byte
//! arrays cut into leaf pages. Interior pages hold [`NodeRef`]s (page number
//! and CRC-32C of the child), the metadata root holds the top reference, so one
//! checksum chain covers every byte the root depends on. A leaf or subtree of
//! zeros is a null reference and takes no page. A checkpoint writes only the
//! leaves that changed and their ancestors (contract S2) to fresh pages; the
//! pages it replaces are handed back to be freed once the new root is durable.
//!
//! The in-memory part is the references of every node up to the last non-null
//! one (16 bytes per leaf page, a fraction of a bit per data page); leaf bytes
//! belong to the caller.

use std::collections::BTreeSet;

use crate::engine::bitmap::BitVec;
use crate::format::root::{TreeTop, MAX_TREE_HEIGHT};
use crate::format::tree_node::{NodeRef, NODE_REF_LEN};

/// A page the checkpoint wants written.
pub(crate) struct PageWrite {
    pub(super) page: u64,
    pub(super) bytes: Vec<u8>,
}

/// What loading a tree found wrong.
pub(crate) type TreeDamage = &'static str;

/// Why state read from a file could not be loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoadFault {
    /// The bytes break a rule of the format: the root that led here is invalid.
    Damaged(TreeDamage),
    /// The state is well formed but needs more memory than can be had. Not
    /// damage: a caller must not fall back to an older root because of it.
    NoMemory,
}

impl From<TreeDamage> for LoadFault {
    fn from(reason: TreeDamage) -> Self {
        LoadFault::Damaged(reason)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct PageTree {
    page_size: usize,
    /// `levels[0]` are the leaf references; the last level is the single top.
    levels: Vec<Vec<NodeRef>>,
    /// Leaves changed since the last checkpoint, one bit each.
    dirty: BitVec,
    dirty_count: usize,
}

impl PageTree {
    fn fanout(&self) -> u64 {
        (self.page_size / NODE_REF_LEN) as u64
    }

    /// An empty tree (every leaf null) for `leaf_count` leaves.
    pub(super) fn empty(page_size: usize, leaf_count: u64) -> PageTree {
        let mut tree = PageTree {
            page_size,
            levels: vec![vec![NodeRef::NULL]],
            dirty: BitVec::new(0),
            dirty_count: 0,
        };
        tree.resize(leaf_count);
        tree
    }

    pub(super) fn top(&self) -> TreeTop {
        TreeTop {
            top: self
                .levels
                .last()
                .and_then(|l| l.first())
                .copied()
                .unwrap_or_default(),
            height: (self.levels.len() - 1) as u32,
        }
    }

    pub(super) fn leaf_count(&self) -> u64 {
        self.levels[0].len() as u64
    }

    /// Every page the tree occupies.
    pub(super) fn node_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.levels
            .iter()
            .flatten()
            .filter(|r| !r.is_null())
            .map(|r| r.page)
    }

    /// Marks a leaf as changed; the next checkpoint rewrites it.
    pub(super) fn mark_dirty(&mut self, leaf: u64) {
        self.mark_dirty_range(leaf, leaf);
    }

    /// Marks leaves `first..=last` as changed.
    pub(super) fn mark_dirty_range(&mut self, first: u64, last: u64) {
        if last >= self.dirty.len() {
            self.dirty.grow(last + 1);
        }
        for leaf in first..=last {
            if !self.dirty.get(leaf) {
                self.dirty.set(leaf, true);
                self.dirty_count += 1;
            }
        }
    }

    pub(super) fn dirty_leaves(&self) -> impl Iterator<Item = u64> + '_ {
        let mut next = 0;
        std::iter::from_fn(move || {
            let leaf = self.dirty.next_one(next)?;
            next = leaf + 1;
            Some(leaf)
        })
    }

    /// Number of nodes on `level` for `leaf_count` leaves.
    fn nodes_on_level(&self, leaf_count: u64, level: usize) -> usize {
        let span = self.fanout().saturating_pow(level as u32);
        leaf_count.div_ceil(span).max(1) as usize
    }

    /// The shape of the tree once it addresses `leaf_count` leaves (it never
    /// shrinks): its height and the leaves it then addresses.
    fn shape_for(&self, leaf_count: u64) -> (usize, u64) {
        let old_height = self.levels.len() - 1;
        let leaf_count = leaf_count.max(self.leaf_count()).max(1);
        let mut height = 0usize;
        while self.fanout().saturating_pow(height as u32) < leaf_count {
            height += 1;
        }
        (height.max(old_height), leaf_count)
    }

    /// The most pages one checkpoint for `leaf_count` leaves can take: every
    /// node of the tree rewritten (its height counted as for
    /// [`PageTree::checkpoint_pages`]). An upper bound of that figure, whatever
    /// is dirty.
    pub(super) fn full_checkpoint_pages(&self, leaf_count: u64) -> u64 {
        let (height, leaf_count) = self.shape_for(leaf_count);
        (0..=height)
            .map(|level| self.nodes_on_level(leaf_count, level) as u64)
            .sum()
    }

    /// How many pages [`PageTree::checkpoint`] for `leaf_count` leaves takes
    /// at most: one per node it rewrites (a node of zeros takes none). Exact
    /// up to such zero nodes, so a commit asks for no more space than it
    /// writes.
    pub(super) fn checkpoint_pages(&self, leaf_count: u64) -> u64 {
        let old_height = self.levels.len() - 1;
        let (height, leaf_count) = self.shape_for(leaf_count);
        let grew_over_content = height > old_height && !self.levels[old_height][0].is_null();
        let first_dirty = self.dirty_leaves().next().filter(|&l| l < leaf_count);
        let mut pages = 0u64;
        for level in 0..=height {
            let span = self.fanout().saturating_pow(level as u32);
            // Dirty leaves come in ascending order, so equal ancestors are
            // adjacent.
            let mut last = None;
            let mut nodes = 0u64;
            for leaf in self.dirty_leaves().take_while(|&l| l < leaf_count) {
                let node = leaf / span;
                if last != Some(node) {
                    nodes += 1;
                    last = Some(node);
                }
            }
            // A raised tree rewrites the old top's ancestors on the leftmost
            // path; the dirty leaves count them already when one lies there.
            let leftmost_counted = first_dirty.is_some_and(|l| l / span == 0);
            if grew_over_content && level > old_height && !leftmost_counted {
                nodes += 1;
            }
            pages += nodes;
        }
        pages
    }

    /// Grows the tree to address `leaf_count` leaves (never shrinks). Returns
    /// the old height, so the checkpoint can write the new upper nodes.
    fn resize(&mut self, leaf_count: u64) -> usize {
        let old_height = self.levels.len() - 1;
        let (height, leaf_count) = self.shape_for(leaf_count);
        self.levels.resize_with(height + 1, Vec::new);
        for level in 0..=height {
            let n = self.nodes_on_level(leaf_count, level);
            self.levels[level].resize(n, NodeRef::NULL);
        }
        old_height
    }

    /// Loads and verifies the tree under `top`. `read` returns the bytes of a
    /// page, or `None` for a page that does not exist; `visit_leaf` gets each
    /// non-null leaf's index and verified bytes; `visit_node` every page the
    /// tree occupies. Nothing is trusted before its checksum is checked.
    pub(super) fn load<'a>(
        page_size: usize,
        top: TreeTop,
        leaf_count: u64,
        read: impl Fn(u64) -> Option<&'a [u8]>,
        mut visit_leaf: impl FnMut(u64, &'a [u8]) -> Result<(), LoadFault>,
        mut visit_node: impl FnMut(u64) -> Result<(), LoadFault>,
    ) -> Result<PageTree, LoadFault> {
        if top.height > MAX_TREE_HEIGHT {
            return Err("page tree too deep".into());
        }
        let mut tree = PageTree::empty(page_size, 1);
        let height = top.height as usize;
        let fanout = tree.fanout();
        // Each level holds references only up to its last non-null one, so
        // memory follows the pages read and verified, not `leaf_count`, which
        // comes from the file (a root may claim a long array it never filled).
        tree.levels = vec![Vec::new(); height + 1];
        tree.levels[height] = vec![top.top];
        // The lowest leaf count that keeps every non-null reference in place.
        let mut reach = 1u64;
        for level in (0..=height).rev() {
            // A file that grew since the last checkpoint has more leaves than
            // the tree reaches; those leaves are null until the next
            // checkpoint raises the tree.
            let limit = tree.nodes_on_level(leaf_count, level) as u64;
            for index in 0..tree.levels[level].len() {
                let node = tree.levels[level][index];
                if node.is_null() {
                    continue;
                }
                if index as u64 >= limit {
                    return Err("page tree reference past its length".into());
                }
                let span = fanout.saturating_pow(level as u32);
                reach = reach.max((index as u64).saturating_mul(span).saturating_add(1));
                let bytes = read(node.page).ok_or("page tree points past the end")?;
                if !node.matches(bytes) {
                    return Err("page tree checksum mismatch".into());
                }
                visit_node(node.page)?;
                if level == 0 {
                    visit_leaf(index as u64, bytes)?;
                    continue;
                }
                let below = &mut tree.levels[level - 1];
                for child in 0..fanout as usize {
                    let r = NodeRef::decode(bytes, child).ok_or("short interior page")?;
                    if r.is_null() {
                        continue;
                    }
                    let at = index * fanout as usize + child;
                    if below.len() <= at {
                        below
                            .try_reserve(at + 1 - below.len())
                            .map_err(|_| LoadFault::NoMemory)?;
                        below.resize(at + 1, NodeRef::NULL);
                    }
                    below[at] = r;
                }
            }
        }
        // Every level as long as `reach` leaves need: the shape `resize`
        // and `checkpoint` expect. The height stays the one on disk, since
        // `reach` is within it. Reserved first, so that `resize` cannot abort.
        for level in 0..=height {
            let n = tree.nodes_on_level(reach, level);
            let have = tree.levels[level].len();
            tree.levels[level]
                .try_reserve(n.saturating_sub(have))
                .map_err(|_| LoadFault::NoMemory)?;
        }
        tree.resize(reach);
        Ok(tree)
    }

    /// Writes every dirty leaf (bytes from `leaf_bytes`) and its ancestors to
    /// pages from `alloc`, for a tree of `leaf_count` leaves. Pages it replaces
    /// go to `freed`; they stay readable until the caller frees them.
    pub(super) fn checkpoint<E>(
        &mut self,
        leaf_count: u64,
        mut leaf_bytes: impl FnMut(u64, &mut [u8]),
        mut alloc: impl FnMut() -> Result<u64, E>,
        writes: &mut Vec<PageWrite>,
        freed: &mut Vec<u64>,
    ) -> Result<(), E> {
        let old_height = self.resize(leaf_count);
        let height = self.levels.len() - 1;
        let fanout = self.fanout();
        let leaf_count = self.leaf_count();
        let mut dirty: BTreeSet<u64> = self.dirty_leaves().filter(|&l| l < leaf_count).collect();
        self.dirty = BitVec::new(0);
        self.dirty_count = 0;
        let grew_over_content = height > old_height && !self.levels[old_height][0].is_null();
        for level in 0..=height {
            if grew_over_content && level > old_height {
                dirty.insert(0);
            }
            for &index in &dirty {
                let mut buf = vec![0u8; self.page_size];
                if level == 0 {
                    leaf_bytes(index, &mut buf);
                } else {
                    let start = (index * fanout) as usize;
                    let children = self.levels[level - 1]
                        .iter()
                        .skip(start)
                        .take(fanout as usize);
                    for (i, child) in children.enumerate() {
                        child.encode(&mut buf[i * NODE_REF_LEN..(i + 1) * NODE_REF_LEN]);
                    }
                }
                let slot = &mut self.levels[level][index as usize];
                if !slot.is_null() {
                    freed.push(slot.page);
                }
                *slot = if buf.iter().all(|&b| b == 0) {
                    NodeRef::NULL
                } else {
                    let page = alloc()?;
                    let r = NodeRef::to_page(page, &buf);
                    writes.push(PageWrite { page, bytes: buf });
                    r
                };
            }
            dirty = dirty.iter().map(|&index| index / fanout).collect();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Checkpoints `leaves` (index -> fill byte) into a fake disk, reloads.
    #[test]
    fn checkpoint_then_load_round_trips_and_rewrites_only_the_path() {
        const PS: usize = 1024; // fanout 64
        let mut disk: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut next = 3u64;
        let mut tree = PageTree::empty(PS, 1);
        let leaves: HashMap<u64, u8> = [(0, 1), (5, 2), (4000, 3)].into();
        for &leaf in leaves.keys() {
            tree.mark_dirty(leaf);
        }
        let mut writes = Vec::new();
        let mut freed = Vec::new();
        tree.checkpoint(
            4001,
            |i, buf| buf.fill(leaves[&i]),
            || -> Result<u64, ()> {
                next += 1;
                Ok(next)
            },
            &mut writes,
            &mut freed,
        )
        .unwrap();
        assert_eq!(tree.top().height, 2);
        assert!(freed.is_empty());
        // 3 leaves, 2 level-1 nodes, 1 top.
        assert_eq!(writes.len(), 6);
        for w in writes.drain(..) {
            disk.insert(w.page, w.bytes);
        }
        let mut seen = HashMap::new();
        let loaded = PageTree::load(
            PS,
            tree.top(),
            4001,
            |p| disk.get(&p).map(Vec::as_slice),
            |i, bytes| {
                seen.insert(i, bytes[0]);
                Ok(())
            },
            |_| Ok(()),
        )
        .unwrap();
        assert_eq!(seen, leaves);
        assert_eq!(loaded.node_pages().count(), 6);

        // Change one leaf: exactly the leaf and its two ancestors are rewritten.
        let mut tree = loaded;
        tree.mark_dirty(5);
        tree.checkpoint(
            4001,
            |_, buf| buf.fill(9),
            || -> Result<u64, ()> {
                next += 1;
                Ok(next)
            },
            &mut writes,
            &mut freed,
        )
        .unwrap();
        assert_eq!((writes.len(), freed.len()), (3, 3));

        // A damaged page is caught.
        let top = tree.top();
        for w in writes.drain(..) {
            disk.insert(w.page, w.bytes);
        }
        disk.get_mut(&next).unwrap()[0] ^= 1; // the new top
        let result = PageTree::load(
            PS,
            top,
            4001,
            |p| disk.get(&p).map(Vec::as_slice),
            |_, _| Ok(()),
            |_| Ok(()),
        );
        assert!(result.is_err());
    }

    /// Checkpoints `tree` (every leaf non-zero) and counts the pages written.
    fn pages_written(
        tree: &mut PageTree,
        leaf_count: u64,
        alloc: &mut impl FnMut() -> Result<u64, ()>,
    ) -> u64 {
        let (mut writes, mut freed) = (Vec::new(), Vec::new());
        tree.checkpoint(
            leaf_count,
            |_, buf| buf.fill(1),
            alloc,
            &mut writes,
            &mut freed,
        )
        .unwrap();
        writes.len() as u64
    }

    /// The space a checkpoint asks for is exactly what it writes when no
    /// node is all zeros, including when the tree grows taller.
    #[test]
    fn checkpoint_pages_is_what_the_checkpoint_writes() {
        const PS: usize = 1024; // fanout 64
        let mut next = 3u64;
        let mut alloc = || -> Result<u64, ()> {
            next += 1;
            Ok(next)
        };
        let mut tree = PageTree::empty(PS, 1);
        let rounds: [(u64, &[u64]); 5] = [
            (1, &[0]),
            (70, &[3, 65, 69]),
            (70, &[]),
            (5000, &[4999]),
            (300_000, &[1, 2, 64, 128, 4095, 4096, 299_999]),
        ];
        for (leaf_count, leaves) in rounds {
            for &leaf in leaves {
                tree.mark_dirty(leaf);
            }
            let expected = tree.checkpoint_pages(leaf_count);
            assert!(
                expected <= tree.full_checkpoint_pages(leaf_count),
                "{leaf_count} leaves: the bound is below the checkpoint"
            );
            assert_eq!(
                pages_written(&mut tree, leaf_count, &mut alloc),
                expected,
                "{leaf_count} leaves, dirty {leaves:?}"
            );
        }
    }

    /// With every leaf dirty, a checkpoint takes exactly the bound.
    #[test]
    fn a_full_checkpoint_takes_the_bound() {
        const PS: usize = 1024; // fanout 64
        let mut next = 3u64;
        let mut alloc = || -> Result<u64, ()> {
            next += 1;
            Ok(next)
        };
        let mut tree = PageTree::empty(PS, 1);
        for leaf_count in [1u64, 64, 65, 4096, 4097, 5000] {
            tree.mark_dirty_range(0, leaf_count - 1);
            let bound = tree.full_checkpoint_pages(leaf_count);
            assert_eq!(
                tree.checkpoint_pages(leaf_count),
                bound,
                "{leaf_count} leaves"
            );
            assert_eq!(
                pages_written(&mut tree, leaf_count, &mut alloc),
                bound,
                "{leaf_count} leaves"
            );
        }
    }

    #[test]
    fn zero_leaves_take_no_page() {
        let mut tree = PageTree::empty(1024, 10);
        tree.mark_dirty(3);
        let mut writes = Vec::new();
        let mut freed = Vec::new();
        tree.checkpoint(
            10,
            |_, _| {},
            || -> Result<u64, ()> { Ok(99) },
            &mut writes,
            &mut freed,
        )
        .unwrap();
        assert!(writes.is_empty());
        assert!(tree.top().top.is_null());
    }
}

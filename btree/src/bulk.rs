//! Removals of many pairs in one walk: a range of keys, or the pairs a
//! predicate picks.
//!
//! The walk goes down only into the subtrees that may hold a pair to
//! remove. A subtree whose whole key span lies in a removed range is
//! dropped as it is: its pages (nodes and overflow chains) are freed, its
//! leaves are read for their pair counts but nothing is copied. A leaf
//! that loses some pairs is rewritten once, a branch once after all its
//! children, merging the children that became small; nodes that lose
//! nothing are neither copied nor written.

use std::ops::{Bound, RangeBounds};

use mappedpages::PageId;

use crate::error::{Error, Result};
use crate::node::{encode_entries, node_size, Edit, Kind, NodeRef, PAGE};
use crate::pages::{chain, read_value, Pages};
use crate::range::{above_start, below_end};
use crate::write::WriteTxn;

/// A removal predicate: the pair's key and value.
type Predicate<'f> = &'f mut dyn FnMut(&[u8], &[u8]) -> bool;

/// What a walk removes: the pairs in `range` that `predicate` picks (all of
/// them without one), kept in `taken` if it is there.
struct Prune<'f> {
    start: Bound<Vec<u8>>,
    end: Bound<Vec<u8>>,
    predicate: Option<Predicate<'f>>,
    taken: Option<Vec<(Vec<u8>, Vec<u8>)>>,
}

/// How much of a subtree a walk removes.
enum Cover {
    Nothing,
    Part,
    All,
}

impl Prune<'_> {
    fn in_range(&self, key: &[u8]) -> bool {
        above_start(&self.start, key) && below_end(&self.end, key)
    }

    /// What the walk does to a subtree whose keys lie in `[low, high)`
    /// (`high` `None`: no upper bound).
    fn cover(&self, low: &[u8], high: Option<&[u8]>) -> Cover {
        let past_end = !below_end(&self.end, low);
        let before_start = match (&self.start, high) {
            (Bound::Included(s) | Bound::Excluded(s), Some(high)) => high <= s.as_slice(),
            _ => false,
        };
        if past_end || before_start {
            return Cover::Nothing;
        }
        let from_start = above_start(&self.start, low);
        let to_end = match (&self.end, high) {
            (Bound::Unbounded, _) => true,
            (Bound::Included(e) | Bound::Excluded(e), Some(high)) => high <= e.as_slice(),
            (_, None) => false,
        };
        // Picked pairs and kept pairs need the leaves read one by one.
        let whole = self.predicate.is_none() && self.taken.is_none();
        match from_start && to_end && whole {
            true => Cover::All,
            false => Cover::Part,
        }
    }
}

/// A bound of a caller's range, with its key copied.
fn owned<K: AsRef<[u8]>>(bound: Bound<&K>) -> Bound<Vec<u8>> {
    bound.map(|key| key.as_ref().to_vec())
}

/// A child of a branch met by the walk, with the key span of its subtree.
struct Child {
    id: u64,
    low: Vec<u8>,
    high: Option<Vec<u8>>,
}

impl WriteTxn<'_> {
    /// Removes every pair whose key lies in `range`; returns how many. Whole
    /// subtrees inside the range are freed without being copied; only the
    /// nodes on the range's two edges are rewritten.
    ///
    /// ```
    /// use mappedpages_btree::Db;
    /// # let dir = tempfile::tempdir()?;
    /// let mut db = Db::create(dir.path().join("store.db"))?;
    /// let mut txn = db.write()?;
    /// for i in 0..1000u32 {
    ///     txn.insert(&i.to_be_bytes(), b"value")?;
    /// }
    /// let removed = txn.remove_range(&100u32.to_be_bytes()[..]..&900u32.to_be_bytes()[..])?;
    /// assert_eq!((removed, txn.len()), (800, 200));
    /// assert!(txn.get(&500u32.to_be_bytes())?.is_none());
    /// assert!(txn.get(&900u32.to_be_bytes())?.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn remove_range<K: AsRef<[u8]>>(&mut self, range: impl RangeBounds<K>) -> Result<u64> {
        let mut prune = Prune {
            start: owned(range.start_bound()),
            end: owned(range.end_bound()),
            predicate: None,
            taken: None,
        };
        self.prune(&mut prune)
    }

    /// Keeps only the pairs for which `keep` returns `true`, in one walk over
    /// the tree; returns how many it removed. Leaves that keep all their
    /// pairs are not copied.
    ///
    /// ```
    /// use mappedpages_btree::Db;
    /// # let dir = tempfile::tempdir()?;
    /// let mut db = Db::create(dir.path().join("store.db"))?;
    /// let mut txn = db.write()?;
    /// for i in 0..100u8 {
    ///     txn.insert(&[i], &[i % 3])?;
    /// }
    /// assert_eq!(txn.retain(|_key, value| value[0] == 0)?, 66);
    /// assert_eq!(txn.len(), 34);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn retain(&mut self, mut keep: impl FnMut(&[u8], &[u8]) -> bool) -> Result<u64> {
        let mut remove = |key: &[u8], value: &[u8]| !keep(key, value);
        let mut prune = Prune {
            start: Bound::Unbounded,
            end: Bound::Unbounded,
            predicate: Some(&mut remove),
            taken: None,
        };
        self.prune(&mut prune)
    }

    /// Removes the pairs with a key in `range` for which `pick` returns
    /// `true`, and returns them in key order, from one walk over the part
    /// of the tree that holds the range (as std's `BTreeMap::extract_if`
    /// takes a range). For every pair, `..` with the key type named:
    /// `extract_if::<&[u8]>(.., pick)`.
    ///
    /// They come as a `Vec`, not as a lazy iterator like std's
    /// `extract_if`: a lazy one would have to hold the leaf it is changing
    /// across calls, or rewrite the path to it once per pair, where the
    /// walk rewrites each changed node once. The pairs are copied out
    /// either way, since the pages they lie in are freed.
    ///
    /// ```
    /// use mappedpages_btree::Db;
    /// # let dir = tempfile::tempdir()?;
    /// let mut db = Db::create(dir.path().join("store.db"))?;
    /// let mut txn = db.write()?;
    /// for key in [&b"apple"[..], b"bread", b"avocado", b"cherry"] {
    ///     txn.insert(key, b"")?;
    /// }
    /// let taken = txn.extract_if::<&[u8]>(.., |key, _value| key.starts_with(b"a"))?;
    /// let keys: Vec<&[u8]> = taken.iter().map(|(key, _)| key.as_slice()).collect();
    /// assert_eq!(keys, [&b"apple"[..], b"avocado"]);
    /// // Only the keys from "b" up to "c" are looked at.
    /// let taken = txn.extract_if(&b"b"[..]..&b"c"[..], |_key, _value| true)?;
    /// assert_eq!(taken, [(b"bread".to_vec(), Vec::new())]);
    /// assert_eq!(txn.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn extract_if<K: AsRef<[u8]>>(
        &mut self,
        range: impl RangeBounds<K>,
        mut pick: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut prune = Prune {
            start: owned(range.start_bound()),
            end: owned(range.end_bound()),
            predicate: Some(&mut pick),
            taken: Some(Vec::new()),
        };
        self.prune(&mut prune)?;
        Ok(prune.taken.unwrap_or_default())
    }

    fn prune(&mut self, prune: &mut Prune) -> Result<u64> {
        self.forget_edge_leaves();
        if self.meta.root == 0 {
            return Ok(0);
        }
        let (removed, root) = self.prune_at(self.meta.root, 0, &[], None, prune)?;
        if removed > 0 {
            self.set_root_after_removal(root)?;
            self.meta.len -= removed;
        }
        Ok(removed)
    }

    /// Removes what `prune` picks from the subtree of node `id` at `depth`,
    /// whose keys lie in `[low, high)`. Returns how many pairs it removed and
    /// the node's page (0: gone; `id` if nothing was removed).
    fn prune_at(
        &mut self,
        id: u64,
        depth: usize,
        low: &[u8],
        high: Option<&[u8]>,
        prune: &mut Prune,
    ) -> Result<(u64, u64)> {
        let node = self.txn.node(id)?;
        self.meta.check_depth(node.kind(), depth)?;
        if node.kind() == Kind::Leaf {
            return self.prune_leaf(id, prune);
        }
        let mut children = Vec::with_capacity(node.len());
        for i in 0..node.len() {
            let child_low = match i {
                0 => low.to_vec(),
                _ => node.key(i)?.to_vec(),
            };
            if !below_end(&prune.end, &child_low) {
                break;
            }
            let child_high = match i + 1 < node.len() {
                true => Some(node.key(i + 1)?.to_vec()),
                false => high.map(<[u8]>::to_vec),
            };
            children.push(Child {
                id: node.child(i)?,
                low: child_low,
                high: child_high,
            });
        }
        let mut removed = 0;
        let mut changed = Vec::new();
        for (i, child) in children.iter().enumerate() {
            let (gone, page) = match prune.cover(&child.low, child.high.as_deref()) {
                Cover::Nothing => continue,
                Cover::All => (self.drop_subtree(child.id, depth + 1)?, 0),
                Cover::Part => {
                    let high = child.high.as_deref();
                    self.prune_at(child.id, depth + 1, &child.low, high, prune)?
                }
            };
            if gone > 0 {
                removed += gone;
                changed.push((i, page));
            }
        }
        if removed == 0 {
            return Ok((0, id));
        }
        let mut node = self.txn.node(id)?.decode()?;
        // From the last change back, so that each index still holds.
        for &(i, page) in changed.iter().rev() {
            match page {
                0 => node.remove_child(i),
                _ => node.set_child(i, page),
            }
        }
        // The children that changed, where they now lie: each may have
        // become small enough to merge into a neighbour.
        let mut at: Vec<usize> = Vec::new();
        for (n, &(i, page)) in changed.iter().enumerate() {
            let gone_before = changed[..n].iter().filter(|c| c.1 == 0).count();
            if page != 0 {
                at.push(i - gone_before);
            }
        }
        for &i in at.iter().rev() {
            // A merge takes child `i` into `i - 1` (or `i + 1` into `i` for
            // the first), so every index below `i` still holds.
            if i < node.entries.len() {
                self.merge(&mut node, i)?;
            }
        }
        Ok((removed, self.store_shrunk(id, node)?))
    }

    /// Removes what `prune` picks from leaf `id`.
    fn prune_leaf(&mut self, id: u64, prune: &mut Prune) -> Result<(u64, u64)> {
        let node = self.txn.node(id)?;
        let mut picked = Vec::new();
        for i in 0..node.len() {
            let (key, payload) = node.entry(i)?;
            if !prune.in_range(key) {
                continue;
            }
            if prune.predicate.is_none() && prune.taken.is_none() {
                picked.push(i);
                continue;
            }
            let value = read_value(&self.txn, payload)?;
            if let Some(predicate) = prune.predicate.as_mut() {
                if !predicate(key, &value) {
                    continue;
                }
            }
            if let Some(taken) = prune.taken.as_mut() {
                taken.push((key.to_vec(), value.into_owned()));
            }
            picked.push(i);
        }
        let len = node.len();
        for &i in &picked {
            self.take_value(id, i, false)?;
        }
        let page = match picked.as_slice() {
            [] => id,
            _ if picked.len() == len => {
                self.txn.free(PageId(id))?;
                0
            }
            &[i] => self.change(id, Edit::Remove(i), false)?[0].1,
            _ => self.write_leaf_without(id, &picked)?,
        };
        Ok((picked.len() as u64, page))
    }

    /// Writes leaf `id` without its entries `picked` (ascending, not all of
    /// them): where it lies if this transaction wrote it already, else into
    /// a fresh page. The kept entries are copied from the page as they are,
    /// none decoded. Returns the leaf's page.
    fn write_leaf_without(&mut self, id: u64, picked: &[usize]) -> Result<u64> {
        let mut source = [0u8; PAGE];
        source.copy_from_slice(self.txn.get(PageId(id))?.as_bytes());
        let leaf = NodeRef::new(&source)?;
        let mut kept = Vec::with_capacity(leaf.len() - picked.len());
        let mut picked = picked.iter().peekable();
        for i in 0..leaf.len() {
            match picked.peek() {
                Some(&&next) if next == i => drop(picked.next()),
                _ => kept.push(leaf.entry(i)?),
            }
        }
        // Entries of a damaged page may overlap: only a sound one's fit.
        if node_size(kept.iter().copied()) > PAGE {
            return Err(Error::Corrupt("a node grew by losing entries"));
        }
        let target = self.rewritable(id)?;
        let page = self.txn.get_mut(PageId(target))?.as_bytes_mut();
        encode_entries(page, leaf.kind(), kept.into_iter());
        Ok(target)
    }

    /// Frees the subtree of node `id` at `depth`, nodes and overflow pages,
    /// reading each leaf for its pair count and its values' chains but
    /// copying nothing. Returns the pairs it held.
    fn drop_subtree(&mut self, id: u64, depth: usize) -> Result<u64> {
        let (mut pairs, mut pages) = (0, Vec::new());
        let mut todo = vec![(id, depth)];
        while let Some((id, depth)) = todo.pop() {
            let node = self.txn.node(id)?;
            self.meta.check_depth(node.kind(), depth)?;
            pages.push(PageId(id));
            match node.kind() {
                Kind::Branch => {
                    for i in 0..node.len() {
                        todo.push((node.child(i)?, depth + 1));
                    }
                }
                Kind::Leaf => {
                    pairs += node.len() as u64;
                    for i in 0..node.len() {
                        for part in chain(&self.txn, node.value(i)?) {
                            pages.push(PageId(part?.0));
                        }
                    }
                }
            }
        }
        self.txn.free_bulk(pages)?;
        Ok(pairs)
    }
}

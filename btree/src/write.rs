//! Write transactions: inserts and removals of one key, copy-on-write.
//!
//! A change copies the path from the root to the changed leaf into pages
//! allocated in the transaction and frees the pages they replace (a page
//! this transaction wrote already is simply written again, in place). The
//! commit repoints the root record at the new root and publishes it all
//! atomically. Removals of many keys at once are in `bulk.rs`.

use std::borrow::Cow;
use std::ops::RangeBounds;

use mappedpages::{PageId, Pager, Transaction};

use crate::error::{Error, Result};
use crate::meta::{Meta, META};
use crate::node::{
    encode_entries, node_size, separator, set_next_overflow_page, Edit, Kind, LeafValue, Node,
    NodeRef, HEADER, INLINE_TAG, MAX_INLINE, MAX_KEY, MAX_VALUE, OVERFLOW_DATA, OVERFLOW_HEADER,
    OVERFLOW_PAYLOAD, PAGE,
};
use crate::pages::{chain, Pages};
use crate::range::{lookup, Range};

/// A write transaction: one pager transaction, published by
/// [`WriteTxn::commit`] with one sync (none with
/// [`Durability::Deferred`](crate::Durability::Deferred)), undone if dropped.
/// It reads its own changes.
///
/// After an error other than [`Error::KeyTooLarge`] and
/// [`Error::ValueTooLarge`] (which change nothing) the transaction may
/// hold part of a change: drop it.
///
/// ```
/// use mappedpages_btree::Db;
/// # let dir = tempfile::tempdir()?;
/// let mut db = Db::create(dir.path().join("store.db"))?;
/// let mut txn = db.write()?;
/// assert_eq!(txn.insert(b"a", b"1")?, None);
/// assert_eq!(txn.insert(b"a", b"2")?, Some(b"1".to_vec()));
/// drop(txn); // undone
/// assert_eq!(db.read()?.get(b"a")?, None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WriteTxn<'a> {
    pub(crate) txn: Transaction<'a, PAGE>,
    pub(crate) meta: Meta,
    /// The first and the last leaf, as the last pop from that end left
    /// them; `None` once anything else changed the tree (see
    /// [`WriteTxn::pop_from_edge_leaf`]).
    edge_leaves: [Option<EdgeLeaf>; 2],
}

/// A leaf at one end of the tree, and what a removal from it needs to know
/// to tell whether the walk from the root would merge it.
#[derive(Clone, Copy, Debug)]
struct EdgeLeaf {
    id: u64,
    /// The leaf the walk would merge it with (its parent's next child, or
    /// the one before at the last end) and the bytes that one uses; `None`
    /// for the root or an only child, which no walk merges.
    neighbour: Option<(u64, usize)>,
}

/// The bytes a node uses at most to be merged into a neighbour.
const SMALL: usize = PAGE / 4;

/// A node as stored after a change: the pages it now fills, each with the
/// lower bound its parent files it under (empty for the first).
pub(crate) type Pieces = Vec<(Vec<u8>, u64)>;

/// The pair a removal of one entry takes.
#[derive(Clone, Copy)]
enum Target<'k> {
    Key(&'k [u8]),
    First,
    Last,
}

impl Target<'_> {
    /// Which end of the tree a pop takes from: 0 the first, 1 the last.
    fn end(self) -> Option<usize> {
        match self {
            Target::Key(_) => None,
            Target::First => Some(0),
            Target::Last => Some(1),
        }
    }

    /// The child of a branch whose subtree holds the target.
    fn child(self, node: &NodeRef) -> Result<usize> {
        match self {
            Target::Key(key) => node.child_for(key),
            Target::First => Ok(0),
            Target::Last => Ok(node.len() - 1),
        }
    }

    /// The entry of a leaf that is the target, if any.
    fn entry(self, leaf: &NodeRef) -> Result<Option<usize>> {
        match self {
            Target::Key(key) => Ok(leaf.search(key)?.ok()),
            Target::First => Ok(Some(0)),
            Target::Last => Ok(Some(leaf.len() - 1)),
        }
    }
}

/// A pair a removal took, and the page that replaces the node it was
/// taken below (0 if that node is gone).
struct Taken {
    key: Vec<u8>,
    value: Vec<u8>,
    node: u64,
}

impl<'a> WriteTxn<'a> {
    pub(crate) fn begin(pager: &'a mut Pager<PAGE>) -> Result<WriteTxn<'a>> {
        let pages = pager.page_count();
        let txn = pager.transaction()?;
        let meta = Meta::read(txn.get_protected(META)?.as_bytes(), pages)?;
        Ok(WriteTxn {
            txn,
            meta,
            edge_leaves: [None; 2],
        })
    }

    /// The value of `key`, as this transaction left it.
    pub fn get(&self, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        lookup(&self.txn, self.meta, key)
    }

    /// The pairs with keys in `range`, in order, as this transaction left
    /// them.
    pub fn range<K: AsRef<[u8]>>(
        &self,
        range: impl RangeBounds<K>,
    ) -> Result<Range<'_, Transaction<'a, PAGE>>> {
        Range::new(&self.txn, self.meta, range)
    }

    /// Every pair, in order.
    pub fn iter(&self) -> Result<Range<'_, Transaction<'a, PAGE>>> {
        self.range::<&[u8]>(..)
    }

    /// The number of pairs, kept in the root record and by every change
    /// (no walk).
    pub fn len(&self) -> u64 {
        self.meta.len
    }

    /// Whether the tree holds no pair.
    pub fn is_empty(&self) -> bool {
        self.meta.len == 0
    }

    /// Sets `key` to `value`; returns the value it replaces.
    ///
    /// # Errors
    /// [`Error::KeyTooLarge`] past [`MAX_KEY`] bytes,
    /// [`Error::ValueTooLarge`] past [`MAX_VALUE`]: nothing changes.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        if key.len() > MAX_KEY {
            return Err(Error::KeyTooLarge(key.len()));
        }
        if value.len() > MAX_VALUE {
            return Err(Error::ValueTooLarge(value.len()));
        }
        self.forget_edge_leaves();
        let overflow = match value.len() > MAX_INLINE {
            true => Some(self.write_overflow(value)?),
            false => None,
        };
        let payload: [&[u8]; 2] = match &overflow {
            Some(payload) => [payload, &[]],
            None => [&[INLINE_TAG], value],
        };
        let (mut pieces, old) = if self.meta.root == 0 {
            self.meta.height = 1;
            (self.store_new(Node::leaf(key, payload.concat()))?, None)
        } else {
            self.insert_at(self.meta.root, 0, key, payload, true)?
        };
        // A root that split gets a new root above its pieces.
        while pieces.len() > 1 {
            pieces = self.store_new(Node::branch(pieces))?;
            self.meta.height += 1;
        }
        self.meta.root = pieces[0].1;
        self.meta.len += u64::from(old.is_none());
        Ok(old)
    }

    /// Inserts into the subtree of node `id`, at `depth` of the tree.
    fn insert_at(
        &mut self,
        id: u64,
        depth: usize,
        key: &[u8],
        payload: [&[u8]; 2],
        rightmost: bool,
    ) -> Result<(Pieces, Option<Vec<u8>>)> {
        let page = self.txn.node(id)?;
        self.meta.check_depth(page.kind(), depth)?;
        // On the tree's right edge, growth at the end of a node is what an
        // ascending load makes: such a node splits leaving its left part full.
        if page.kind() == Kind::Branch {
            let i = page.child_for(key)?;
            let (child, fill) = (page.child(i)?, rightmost && i + 1 == page.len());
            let (pieces, old) = self.insert_at(child, depth + 1, key, payload, fill)?;
            // A child rewritten where it was (a page this transaction wrote
            // already) that did not split leaves this node as it is; one
            // moved to a fresh page changes one child id.
            match pieces.as_slice() {
                [(_, same)] if *same == child => return Ok((vec![(Vec::new(), id)], old)),
                [(_, moved)] => {
                    let moved = moved.to_le_bytes();
                    let edit = Edit::Replace(i, [&moved, &[]]);
                    return Ok((self.change(id, edit, false)?, old));
                }
                // A child that split where it was (a page this transaction
                // wrote already, or a full node that an append left as it
                // was) adds one child after it: an edit of this node's page,
                // not a decode of all its children.
                [(_, same), (bound, second)] if *same == child => {
                    let second = second.to_le_bytes();
                    let edit = Edit::Insert(i + 1, bound, [&second, &[]]);
                    return Ok((self.change(id, edit, fill)?, old));
                }
                _ => {}
            }
            let mut node = self.txn.node(id)?.decode()?;
            node.replace_child(i, pieces);
            return Ok((self.store(id, node, fill)?, old));
        }
        let len = page.len();
        let (old, edit) = match page.search(key)? {
            Ok(i) => (
                Some(self.take_value(id, i, true)?),
                Edit::Replace(i, payload),
            ),
            Err(i) => (None, Edit::Insert(i, key, payload)),
        };
        let fill = rightmost && matches!(edit, Edit::Insert(i, ..) if i == len);
        Ok((self.change(id, edit, fill)?, old))
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.remove_one(Target::Key(key))?.map(|(_, value)| value))
    }

    /// Removes the pair of the smallest key and returns it: one walk down
    /// the tree's left edge.
    ///
    /// ```
    /// use mappedpages_btree::Db;
    /// # let dir = tempfile::tempdir()?;
    /// let mut db = Db::create(dir.path().join("store.db"))?;
    /// let mut txn = db.write()?;
    /// for key in [b"b", b"a", b"c"] {
    ///     txn.insert(key, b"v")?;
    /// }
    /// assert_eq!(txn.pop_first()?, Some((b"a".to_vec(), b"v".to_vec())));
    /// assert_eq!(txn.pop_last()?, Some((b"c".to_vec(), b"v".to_vec())));
    /// assert_eq!(txn.len(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pop_first(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.remove_one(Target::First)
    }

    /// Removes the pair of the largest key and returns it: one walk down
    /// the tree's right edge.
    pub fn pop_last(&mut self) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.remove_one(Target::Last)
    }

    fn remove_one(&mut self, target: Target) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.meta.root == 0 {
            return Ok(None);
        }
        if let Some(end) = target.end() {
            if let Some(pair) = self.pop_from_edge_leaf(end)? {
                self.meta.len -= 1;
                return Ok(Some(pair));
            }
        }
        self.forget_edge_leaves();
        let Some(taken) = self.remove_at(self.meta.root, 0, target)? else {
            return Ok(None);
        };
        self.set_root_after_removal(taken.node)?;
        self.meta.len -= 1;
        if target.end().is_some() {
            // Both ends, for pops that alternate between them. A cache: a
            // walk that fails leaves it empty, and the next operation meets
            // the fault itself.
            self.edge_leaves = [0, 1].map(|end| self.edge_leaf(end).ok().flatten());
        }
        Ok(Some((taken.key, taken.value)))
    }

    /// A pop from `end` (0 first, 1 last) done in the leaf at that end
    /// alone, when the removal changes nothing above it: the leaf is one
    /// this transaction wrote already (rewritten in place, its parent keeps
    /// its id), keeps more than its last pair, and is not left small enough
    /// to merge with its neighbour. Then the walk from the root would read
    /// every node down the edge only to leave each as it was; `None`
    /// (nothing done) when it would not. Pops from one end take most pairs
    /// this way, as LMDB's cursor does, instead of one walk each.
    fn pop_from_edge_leaf(&mut self, end: usize) -> Result<Option<(Vec<u8>, Vec<u8>)>> {
        let Some(edge) = self.edge_leaves[end] else {
            return Ok(None);
        };
        if !self.txn.is_writable(PageId(edge.id)) {
            return Ok(None);
        }
        let page = self.txn.node(edge.id)?;
        if page.kind() != Kind::Leaf || page.len() < 2 {
            return Ok(None);
        }
        let i = if end == 0 { 0 } else { page.len() - 1 };
        let edit = Edit::Remove(i);
        let plan = page.plan(&edit)?;
        let used = plan.used_after();
        // `can_merge`'s test, with the neighbour as the walk would read it
        // (leaves: no bound comes down from the parent).
        let merges = used <= SMALL
            && edge
                .neighbour
                .is_some_and(|(_, neighbour)| fit_together(used, neighbour, 0));
        if merges {
            return Ok(None);
        }
        let key = page.key(i)?.to_vec();
        let value = self.take_value(edge.id, i, true)?;
        plan.write(
            None,
            self.txn.get_mut(PageId(edge.id))?.as_bytes_mut(),
            &edit,
        )?;
        // The other end's leaf may have this one as its neighbour.
        if let Some(other) = &mut self.edge_leaves[1 - end] {
            if let Some((id, neighbour)) = &mut other.neighbour {
                if *id == edge.id {
                    *neighbour = used;
                }
            }
        }
        Ok(Some((key, value)))
    }

    /// The leaf at `end` of the tree (0 first, 1 last), `None` if empty.
    fn edge_leaf(&self, end: usize) -> Result<Option<EdgeLeaf>> {
        let (mut id, mut parent) = (self.meta.root, None);
        let mut depth = 0;
        while id != 0 {
            let page = self.txn.node(id)?;
            self.meta.check_depth(page.kind(), depth)?;
            if page.kind() == Kind::Leaf {
                let neighbour = match parent {
                    Some(parent) => self.neighbour(&parent, end)?,
                    None => None,
                };
                return Ok(Some(EdgeLeaf { id, neighbour }));
            }
            let child = page.child(if end == 0 { 0 } else { page.len() - 1 })?;
            (id, parent, depth) = (child, Some(page), depth + 1);
        }
        Ok(None)
    }

    /// The neighbour `update_child` would merge the child at `end` of
    /// `parent` with, and the bytes it uses; none with a single child.
    fn neighbour(&self, parent: &NodeRef<'_>, end: usize) -> Result<Option<(u64, usize)>> {
        if parent.len() < 2 {
            return Ok(None);
        }
        let id = parent.child(if end == 0 { 1 } else { parent.len() - 2 })?;
        Ok(Some((id, self.txn.node(id)?.used()?)))
    }

    /// Any change but a pop from one end may move the leaves at the ends.
    pub(crate) fn forget_edge_leaves(&mut self) {
        self.edge_leaves = [None; 2];
    }

    /// Makes `root` the tree's root after removals: a root branch left
    /// with one child hands the tree down to it, level by level.
    pub(crate) fn set_root_after_removal(&mut self, mut root: u64) -> Result<()> {
        if root == 0 {
            self.meta.height = 0;
        }
        while root != 0 {
            let page = self.txn.node(root)?;
            self.meta.check_depth(page.kind(), 0)?;
            if page.kind() == Kind::Leaf || page.len() > 1 {
                break;
            }
            let child = page.child(0)?;
            self.txn.free(PageId(root))?;
            root = child;
            self.meta.height -= 1;
        }
        self.meta.root = root;
        Ok(())
    }

    /// Removes `target` from the subtree of node `id`, at `depth` of the
    /// tree. `None` if it is absent (nothing was copied).
    fn remove_at(&mut self, id: u64, depth: usize, target: Target) -> Result<Option<Taken>> {
        let page = self.txn.node(id)?;
        self.meta.check_depth(page.kind(), depth)?;
        if page.kind() == Kind::Branch {
            let i = target.child(&page)?;
            let before = page.child(i)?;
            let Some(mut taken) = self.remove_at(before, depth + 1, target)? else {
                return Ok(None);
            };
            taken.node = self.update_child(id, i, before, taken.node)?;
            return Ok(Some(taken));
        }
        let Some(i) = target.entry(&page)? else {
            return Ok(None);
        };
        let (key, len) = (page.key(i)?.to_vec(), page.len());
        let value = self.take_value(id, i, true)?;
        let node = if len == 1 {
            self.txn.free(PageId(id))?;
            0
        } else {
            self.change(id, Edit::Remove(i), false)?[0].1
        };
        Ok(Some(Taken { key, value, node }))
    }

    /// Files child `i` of branch `id`, which was page `before`, as page
    /// `child` (0: gone); merges it into a neighbour if it became small.
    /// Returns the branch's page (0: gone).
    fn update_child(&mut self, id: u64, i: usize, before: u64, child: u64) -> Result<u64> {
        let small = child != 0 && self.can_merge(&self.txn.node(id)?, i, child)?;
        let child_bytes = child.to_le_bytes();
        let edit = match (child, small) {
            // A child rewritten where it was and not small enough to merge
            // leaves this node as it is.
            (same, false) if same == before => return Ok(id),
            (0, _) if i > 0 => Some(Edit::Remove(i)),
            (0, _) | (_, true) => None,
            (_, false) => Some(Edit::Replace(i, [&child_bytes, &[]])),
        };
        if let Some(edit) = edit {
            return Ok(self.change(id, edit, false)?[0].1);
        }
        if small {
            return self.merge_child(id, i, child);
        }
        // The first child gone: the next one's key becomes the empty one.
        let mut node = self.txn.node(id)?.decode()?;
        node.remove_child(i);
        self.store_shrunk(id, node)
    }

    /// Folds child `i` of branch `id`, now page `child`, into the neighbour
    /// [`WriteTxn::can_merge`] found it fits one page with. The branch's page
    /// is edited (one child fewer, the merged one's page filed), not
    /// decoded: a branch holds hundreds of children, and pops from one end
    /// merge every few dozen removals. Returns the branch's page.
    fn merge_child(&mut self, id: u64, i: usize, child: u64) -> Result<u64> {
        let parent = self.txn.node(id)?;
        let (left, left_id, right_id) = merge_pair(&parent, i, child)?;
        let bound = parent.key(left + 1)?.to_vec();
        let Some(merged) = self.merge_pages(left_id, right_id, &bound)? else {
            return Err(Error::Corrupt("nodes that fit one page do not"));
        };
        let merged = merged.to_le_bytes();
        let id = self.change(id, Edit::Remove(left + 1), false)?[0].1;
        Ok(self.change(id, Edit::Replace(left, [&merged, &[]]), false)?[0].1)
    }

    /// Writes nodes `left_id` and `right_id`, neighbours filed apart by
    /// `bound` in their parent, as one node in the left one's page (a fresh
    /// one if this transaction did not write it) and frees the right one's;
    /// returns the merged node's page. `None`, changing nothing, if they do
    /// not fit one page. The entries are copied from page to page, not
    /// decoded one by one into allocations of their own.
    fn merge_pages(&mut self, left_id: u64, right_id: u64, bound: &[u8]) -> Result<Option<u64>> {
        let mut merged = [0u8; PAGE];
        {
            let (left, right) = (self.txn.node(left_id)?, self.txn.node(right_id)?);
            if left.kind() != right.kind() {
                return Err(Error::Corrupt("neighbours of different kinds"));
            }
            let branch = left.kind() == Kind::Branch;
            let mut entries = Vec::with_capacity(left.len() + right.len());
            for i in 0..left.len() {
                entries.push(left.entry(i)?);
            }
            for i in 0..right.len() {
                let (key, payload) = right.entry(i)?;
                // A branch's first key is held empty: the right node's lower
                // bound comes back from the parent.
                entries.push((if i == 0 && branch { bound } else { key }, payload));
            }
            if node_size(entries.iter().copied()) > PAGE {
                return Ok(None);
            }
            encode_entries(&mut merged, left.kind(), entries.into_iter());
        }
        self.txn.free(PageId(right_id))?;
        let target = self.rewritable(left_id)?;
        self.txn
            .get_mut(PageId(target))?
            .as_bytes_mut()
            .copy_from_slice(&merged);
        Ok(Some(target))
    }

    /// Whether node `id` uses little enough of its page to be merged.
    pub(crate) fn is_small(&self, id: u64) -> Result<bool> {
        Ok(self.txn.node(id)?.used()? <= SMALL)
    }

    /// Whether child `i` of the branch `parent`, now page `child`, is small
    /// and fits in one page with the neighbour [`WriteTxn::merge`] folds it
    /// into. Read from the pages, without decoding them: a small node next
    /// to a full one cannot merge, and pops from one end of the tree meet
    /// that case at every removal until the node has shrunk enough.
    fn can_merge(&self, parent: &NodeRef<'_>, i: usize, child: u64) -> Result<bool> {
        if parent.len() < 2 || !self.is_small(child)? {
            return Ok(false);
        }
        let (left, left_id, right_id) = merge_pair(parent, i, child)?;
        self.merged_fits(left_id, right_id, parent.key(left + 1)?)
    }

    /// Whether nodes `left_id` and `right_id`, neighbours filed apart by
    /// `bound` in their parent, fit in one page together
    /// ([`fit_together`]).
    fn merged_fits(&self, left_id: u64, right_id: u64, bound: &[u8]) -> Result<bool> {
        let (left, right) = (self.txn.node(left_id)?, self.txn.node(right_id)?);
        let bound = match left.kind() {
            Kind::Branch => bound.len(),
            Kind::Leaf => 0,
        };
        Ok(fit_together(left.used()?, right.used()?, bound))
    }

    /// Folds child `i` of `node` into a neighbour when it is small and both
    /// fit in one page, so that removals leave no trail of near-empty nodes.
    /// Returns whether it did; child `i`, or `i - 1`, is then the merged one.
    pub(crate) fn merge(&mut self, node: &mut Node, i: usize) -> Result<bool> {
        if node.entries.len() < 2 || !self.is_small(node.child(i)?)? {
            return Ok(false);
        }
        let left = i.saturating_sub(1);
        let (left_id, right_id) = (node.child(left)?, node.child(left + 1)?);
        if !self.merged_fits(left_id, right_id, &node.entries[left + 1].0)? {
            return Ok(false);
        }
        let Some(id) = self.merge_pages(left_id, right_id, &node.entries[left + 1].0)? else {
            return Ok(false);
        };
        node.set_child(left, id);
        node.entries.remove(left + 1);
        Ok(true)
    }

    /// Stores `node`, which replaces page `id` and lost entries (so it fits
    /// one page), or frees `id` if it has none left. Returns its page (0:
    /// gone).
    pub(crate) fn store_shrunk(&mut self, id: u64, node: Node) -> Result<u64> {
        if node.entries.is_empty() {
            self.txn.free(PageId(id))?;
            return Ok(0);
        }
        match self.store(id, node, false)?.as_slice() {
            [(_, stored)] => Ok(*stored),
            _ => Err(Error::Corrupt("a node grew by losing entries")),
        }
    }

    /// The value of entry `i` of leaf `id`, which is being replaced or
    /// removed: its overflow pages are freed. Without `gather`, the pages
    /// are freed and the value is not read (an empty one is returned).
    pub(crate) fn take_value(&mut self, id: u64, i: usize, gather: bool) -> Result<Vec<u8>> {
        let value = self.txn.node(id)?.value(i)?;
        if let LeafValue::Inline(value) = value {
            return Ok(if gather { value.to_vec() } else { Vec::new() });
        }
        // One walk of the chain gathers the value and the pages to free.
        let (mut bytes, mut pages) = (Vec::new(), Vec::new());
        for part in chain(&self.txn, value) {
            let (page, part) = part?;
            if gather {
                bytes.extend_from_slice(part);
            }
            pages.push(PageId(page));
        }
        self.txn.free_bulk(pages)?;
        Ok(bytes)
    }

    /// Writes a value too long for a leaf into a chain of fresh pages, in
    /// one allocation so that they tend to lie together; returns the leaf
    /// payload naming it.
    fn write_overflow(&mut self, value: &[u8]) -> Result<[u8; OVERFLOW_PAYLOAD]> {
        let ids = self.txn.alloc_bulk(value.len().div_ceil(OVERFLOW_DATA))?;
        for (n, part) in value.chunks(OVERFLOW_DATA).enumerate() {
            let next = ids.get(n + 1).map_or(0, |id| id.0);
            let page = self.txn.get_mut(ids[n])?.as_bytes_mut();
            set_next_overflow_page(page, next);
            let data = &mut page[OVERFLOW_HEADER..];
            data[..part.len()].copy_from_slice(part);
            data[part.len()..].fill(0);
        }
        Ok(LeafValue::overflow_payload(value.len(), ids[0].0))
    }

    /// Makes `edit` to node `id` where it lies if this transaction wrote it
    /// already, else while copying it to a fresh page; decodes and stores it
    /// ([`WriteTxn::store`]) only if the result does not fit a page.
    pub(crate) fn change(&mut self, id: u64, edit: Edit, fill: bool) -> Result<Pieces> {
        let page = self.txn.node(id)?;
        let (plan, len) = (page.plan(&edit)?, page.len());
        if !plan.fits() {
            if let (true, Edit::Insert(i, key, payload)) = (fill, edit) {
                if i == len {
                    return self.append_split(id, key, payload);
                }
            }
            let mut node = page.decode()?;
            node.apply(&edit);
            return self.store(id, node, fill);
        }
        let new = if self.txn.is_writable(PageId(id)) {
            plan.write(None, self.txn.get_mut(PageId(id))?.as_bytes_mut(), &edit)?;
            id
        } else {
            let new = self.txn.alloc()?;
            let pages = self.txn.pages();
            let src = pages.get(PageId(id))?.as_bytes();
            plan.write(Some(src), pages.get_mut(new)?.as_bytes_mut(), &edit)?;
            drop(pages);
            self.txn.free(PageId(id))?;
            new.0
        };
        Ok(vec![(Vec::new(), new)])
    }

    /// Splits node `id`, full, for an entry appended to it on the tree's
    /// right edge, as [`Node::split`] with `fill` would, without decoding
    /// it: the node stays as it is, and the entry starts a new node after it.
    fn append_split(&mut self, id: u64, key: &[u8], payload: [&[u8]; 2]) -> Result<Pieces> {
        let full = self.txn.node(id)?;
        let kind = full.kind();
        let bound = separator(kind, full.key(full.len() - 1)?, key);
        let first_key = match kind {
            Kind::Branch => Vec::new(),
            Kind::Leaf => key.to_vec(),
        };
        let node = Node {
            kind,
            entries: vec![(first_key, payload.concat())],
        };
        if node.size() > PAGE {
            return Err(Error::Corrupt("an entry larger than a page"));
        }
        let new = self.txn.alloc()?;
        node.encode(self.txn.get_mut(new)?.as_bytes_mut());
        Ok(vec![(Vec::new(), id), (bound, new.0)])
    }

    /// Writes `node`, which replaces page `id`: into `id` itself if this
    /// transaction wrote it already, else into a fresh page, freeing `id`.
    pub(crate) fn store(&mut self, id: u64, node: Node, fill: bool) -> Result<Pieces> {
        let target = self.rewritable(id)?;
        self.write_pieces(target, node, fill)
    }

    /// The page a node that replaces page `id` is written into: `id`
    /// itself if this transaction wrote it already, else a fresh page, `id`
    /// being freed.
    pub(crate) fn rewritable(&mut self, id: u64) -> Result<u64> {
        if self.txn.is_writable(PageId(id)) {
            return Ok(id);
        }
        self.txn.free(PageId(id))?;
        Ok(self.txn.alloc()?.0)
    }

    fn store_new(&mut self, node: Node) -> Result<Pieces> {
        let id = self.txn.alloc()?.0;
        self.write_pieces(id, node, false)
    }

    fn write_pieces(&mut self, first: u64, node: Node, fill: bool) -> Result<Pieces> {
        let mut stored = Vec::new();
        for (n, (bound, piece)) in node.split(fill)?.into_iter().enumerate() {
            let id = if n == 0 { first } else { self.txn.alloc()?.0 };
            piece.encode(self.txn.get_mut(PageId(id))?.as_bytes_mut());
            stored.push((bound, id));
        }
        Ok(stored)
    }

    /// Publishes the transaction: one sync with
    /// [`Durability::Immediate`](crate::Durability::Immediate), none with
    /// `Deferred`.
    pub fn commit(mut self) -> Result<()> {
        self.meta.version += 1;
        self.meta
            .write(self.txn.write_protected(META)?.as_bytes_mut());
        Ok(self.txn.commit()?)
    }
}

/// Whether two neighbour nodes using `left` and `right` bytes fit in one
/// page together: a merged node takes what both take, but one header, and
/// a branch gains the `bound` bytes of the key its parent filed the right
/// one under (the right node's first key is held empty).
fn fit_together(left: usize, right: usize, bound: usize) -> bool {
    left + right - HEADER + bound <= PAGE
}

/// The neighbours a merge of child `i` of `parent` (now page `child`)
/// joins: the index of the left one and both pages. The first child joins
/// the second; any other, the one before it.
fn merge_pair(parent: &NodeRef<'_>, i: usize, child: u64) -> Result<(usize, u64, u64)> {
    Ok(match i {
        0 => (0, child, parent.child(1)?),
        _ => (i - 1, parent.child(i - 1)?, child),
    })
}

#[cfg(test)]
mod tests {
    use mappedpages::PageId;

    use crate::node::{Kind, NodeRef, PAGE};
    use crate::pages::Pages;
    use crate::Db;

    fn key(i: u32) -> Vec<u8> {
        format!("{i:06}").into_bytes()
    }

    /// The kinds and entry counts of the root's children.
    fn children_of_root(db: &Db) -> Vec<(Kind, usize)> {
        let read = db.pager().snapshot().unwrap();
        let meta = db.read().unwrap().meta_for_tests();
        let root = read.node(meta.root).unwrap();
        (0..root.len())
            .map(|i| {
                let child: NodeRef = read.node(root.child(i).unwrap()).unwrap();
                (child.kind(), child.len())
            })
            .collect()
    }

    #[test]
    fn a_full_leaf_splits_under_a_new_root() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::create(dir.path().join("tree.db")).unwrap();
        let mut txn = db.write().unwrap();
        // Entries of about 120 bytes: 33 fill a page.
        let mut i = 0;
        while txn.meta.height == 1 || i == 0 {
            txn.insert(&key(i), &[1; 110]).unwrap();
            i += 1;
        }
        assert!(i > 30, "split after {i} pairs");
        assert_eq!(txn.meta.height, 2);
        txn.commit().unwrap();
        // Ascending keys: the left leaf is left full, the right one holds the last.
        assert_eq!(
            children_of_root(&db),
            [(Kind::Leaf, i as usize - 1), (Kind::Leaf, 1)]
        );
    }

    #[test]
    fn a_small_leaf_merges_into_its_neighbour() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::create(dir.path().join("tree.db")).unwrap();
        let mut txn = db.write().unwrap();
        for i in (0..90).rev() {
            txn.insert(&key(i), &[1; 110]).unwrap();
        }
        txn.commit().unwrap();
        let leaves = children_of_root(&db).len();
        assert!(leaves >= 3, "{leaves} leaves");
        let mut txn = db.write().unwrap();
        // Emptying the first leaf but for a few pairs makes it small: it
        // goes into its neighbour, if both fit a page.
        let first_len = {
            let root = txn.txn.node(txn.meta.root).unwrap();
            txn.txn.node(root.child(0).unwrap()).unwrap().len() as u32
        };
        for i in 0..first_len - 2 {
            txn.remove(&key(i)).unwrap();
        }
        txn.commit().unwrap();
        let after = children_of_root(&db);
        assert_eq!(after.len(), leaves - 1, "{after:?}");
        assert!(after[0].1 * 120 <= PAGE);
    }

    /// The leaves down the tree's right edge, root first.
    fn right_edge(db: &Db) -> Vec<u64> {
        let read = db.pager().snapshot().unwrap();
        let mut edge = vec![db.read().unwrap().meta_for_tests().root];
        loop {
            let node = read.node(*edge.last().unwrap()).unwrap();
            if node.kind() == Kind::Leaf {
                return edge;
            }
            edge.push(node.child(node.len() - 1).unwrap());
        }
    }

    /// An ascending key that a full committed leaf on the right edge has no
    /// room for leaves that leaf where and as it is, and starts a new leaf
    /// holding the key alone, filed after it in the same parent.
    #[test]
    fn an_append_to_a_full_leaf_leaves_it_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::create(dir.path().join("tree.db")).unwrap();
        let mut txn = db.write().unwrap();
        let mut i = 0;
        while txn.meta.height < 3 {
            txn.insert(&key(i), &[1; 110]).unwrap();
            i += 1;
        }
        txn.commit().unwrap();
        // Fill the last leaf, one commit a pair (each copies it to a new
        // page), until the next pair finds it full.
        loop {
            let leaf = *right_edge(&db).last().unwrap();
            let before = db
                .pager()
                .snapshot()
                .unwrap()
                .get(PageId(leaf))
                .unwrap()
                .as_bytes()
                .to_vec();
            let mut txn = db.write().unwrap();
            txn.insert(&key(i), &[2; 110]).unwrap();
            txn.commit().unwrap();
            let now = right_edge(&db);
            let read = db.pager().snapshot().unwrap();
            let last = read.node(*now.last().unwrap()).unwrap();
            if last.len() == 1 {
                let parent = read.node(now[now.len() - 2]).unwrap();
                let n = parent.len();
                assert!(n >= 2, "the leaf and the new one share a parent");
                assert_eq!(parent.child(n - 2).unwrap(), leaf, "the full leaf stays");
                assert_eq!(read.get(PageId(leaf)).unwrap().as_bytes(), &before[..]);
                assert_eq!(last.key(0).unwrap(), &key(i)[..]);
                break;
            }
            i += 1;
        }
        db.read().unwrap().check().unwrap();
    }

    /// The check made on pages, without decoding, agrees with the size of
    /// the merged node, for every pair of neighbours in a tree of mixed
    /// entry sizes, leaves and branches alike.
    #[test]
    fn merged_fits_agrees_with_the_decoded_merge() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::create(dir.path().join("tree.db")).unwrap();
        let mut txn = db.write().unwrap();
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |below: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % below
        };
        for i in 0..4000 {
            let key = [vec![b'k'; next(300) as usize], key(i)].concat();
            txn.insert(&key, &vec![7; next(400) as usize]).unwrap();
            if next(3) == 0 {
                txn.pop_first().unwrap();
            }
        }
        let (mut fits, mut apart) = (0, 0);
        let mut branches = vec![txn.meta.root];
        while let Some(id) = branches.pop() {
            let branch = txn.txn.node(id).unwrap();
            if branch.kind() == Kind::Leaf {
                continue;
            }
            for i in 0..branch.len() {
                branches.push(branch.child(i).unwrap());
            }
            for i in 1..branch.len() {
                let (left, right) = (branch.child(i - 1).unwrap(), branch.child(i).unwrap());
                let bound = branch.key(i).unwrap();
                let mut merged = txn.txn.node(left).unwrap().decode().unwrap();
                let mut entries = txn.txn.node(right).unwrap().decode().unwrap().entries;
                if merged.kind == Kind::Branch {
                    entries[0].0 = bound.to_vec();
                }
                merged.entries.extend(entries);
                let decoded = merged.size() <= PAGE;
                assert_eq!(txn.merged_fits(left, right, bound).unwrap(), decoded);
                *if decoded { &mut fits } else { &mut apart } += 1;
            }
        }
        assert!(txn.meta.height >= 3, "branches merged too");
        assert!(fits > 0 && apart > 0, "{fits} pairs fit, {apart} do not");
    }

    #[test]
    fn a_small_branch_merges_into_its_neighbour() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::create(dir.path().join("tree.db")).unwrap();
        let long = |i: u32| [vec![b'k'; 600], key(i)].concat();
        let mut txn = db.write().unwrap();
        // Six pairs to a leaf, six children to a branch: three levels.
        for i in 0..150 {
            txn.insert(&long(i), b"v").unwrap();
        }
        assert_eq!(txn.meta.height, 3);
        txn.commit().unwrap();
        let branches = children_of_root(&db);
        assert!(branches.len() >= 3 && branches.iter().all(|b| b.0 == Kind::Branch));
        // Leave three pairs in the first branch's subtree, and the last
        // three children of the second: the first becomes small and is
        // folded into the second, which now has room for it.
        let mut txn = db.write().unwrap();
        let root = txn.txn.node(txn.meta.root).unwrap();
        let second = txn.txn.node(root.child(1).unwrap()).unwrap();
        let end = second.key(second.len() - 3).unwrap().to_vec();
        assert!(txn.remove_range(long(3)..end).unwrap() > 0);
        txn.commit().unwrap();
        let after = children_of_root(&db);
        assert!(after.len() < branches.len(), "{branches:?} then {after:?}");
        db.read().unwrap().check().unwrap();
    }
}

//! A copy-on-write B+tree key-value store on `mappedpages`.
//!
//! The tree's pages are regular pages ([`crate::node`] gives their format);
//! a protected page, the first of the file, names the root page and holds
//! the entry count and a commit counter. A write transaction is one pager
//! transaction:
//!
//! - a change copies the path from the root to the changed leaf into pages
//!   allocated in the transaction and frees the pages they replace (a page
//!   this transaction wrote already is simply written again, in place);
//! - the commit repoints the protected page at the new root and publishes it
//!   all atomically, with one sync.
//!
//! Committed pages are never written, so a crash at any moment leaves the
//! last commit, and every page the file holds is reachable from its root:
//! there is nothing to repair or collect on open. Readers work on a
//! [`Snapshot`]: the pages it shows are neither written nor reused while it
//! lives, so a [`ReadTxn`] reads, from any thread, one commit while the
//! writer goes on.
//!
//! The protected page also records the tree's height, and every walk down
//! the tree checks each node against it (branches above the last level,
//! leaves on it): a damaged page whose child points back up the tree is an
//! error, never a walk that goes on for ever.

use std::borrow::Cow;
use std::ops::{Bound, RangeBounds};
use std::path::Path;

use crate::node::{Edit, Kind, Node, NodeRef, Value, INLINE, OVERFLOW_DATA, PAGE};
pub use crate::node::{Error, Result, MAX_INLINE, MAX_KEY, MAX_VALUE};
use mappedpages::{
    ConcurrentPager, MappedPageError, PageId, Pager, ProtectedPageId, Snapshot, Transaction,
};

/// The protected page naming the root: the first one of a new file.
const META: ProtectedPageId<PAGE> = ProtectedPageId(0);
/// Version 2 added the height.
const MAGIC: &[u8; 8] = b"BTREEKV2";

/// What the protected page holds: magic, root page (0 for an empty tree:
/// page 0 is the pager's own), entry count, commits, height (levels of
/// nodes, 0 for an empty tree).
#[derive(Clone, Copy, Debug)]
struct Meta {
    root: u64,
    len: u64,
    version: u64,
    height: u64,
}

impl Meta {
    /// Reads the meta of a file of `pages` pages: a path down a tree
    /// visits each page at most once, so no valid height is larger.
    fn read(page: &[u8], pages: u64) -> Result<Meta> {
        if &page[..8] != MAGIC {
            return Err(Error::Corrupt("no tree in the first protected page"));
        }
        let at = |i: usize| u64::from_le_bytes(page[8 * i..8 * i + 8].try_into().expect("8"));
        let meta = Meta {
            root: at(1),
            len: at(2),
            version: at(3),
            height: at(4),
        };
        if (meta.root == 0) != (meta.height == 0) || meta.height > pages {
            return Err(Error::Corrupt("the tree's height does not fit its root"));
        }
        Ok(meta)
    }

    fn write(&self, page: &mut [u8]) {
        page[..8].copy_from_slice(MAGIC);
        let fields = [self.root, self.len, self.version, self.height];
        for (i, v) in fields.into_iter().enumerate() {
            page[8 * (i + 1)..8 * (i + 2)].copy_from_slice(&v.to_le_bytes());
        }
    }
}

/// Checks that a node of `kind` may lie at `depth` (0 for the root) of a
/// tree of `height` levels: branches above the last level, leaves on it.
/// Every walk down the tree checks each node it reaches, so a damaged
/// child pointer (one pointing back up, say) stops the walk within
/// `height` steps.
fn check_depth(kind: Kind, depth: usize, height: u64) -> Result<()> {
    let depth = depth as u64;
    match kind {
        Kind::Branch if depth + 1 < height => Ok(()),
        Kind::Leaf if depth + 1 == height => Ok(()),
        _ => Err(Error::Corrupt(
            "a node at another depth than the tree's height",
        )),
    }
}

/// Where tree pages are read from: a snapshot, or a write transaction
/// (which sees its own changes).
pub trait Pages {
    fn page(&self, id: u64) -> Result<&[u8]>;

    fn node(&self, id: u64) -> Result<NodeRef<'_>> {
        NodeRef::new(self.page(id)?)
    }
}

impl Pages for Snapshot<PAGE> {
    fn page(&self, id: u64) -> Result<&[u8]> {
        Ok(self.get(PageId(id))?.as_bytes())
    }
}

impl Pages for Transaction<'_, PAGE> {
    fn page(&self, id: u64) -> Result<&[u8]> {
        Ok(self.get(PageId(id))?.as_bytes())
    }
}

/// The overflow pages of a leaf payload (none for an inline value), each
/// with the part of the value it holds.
fn chain<'a, P: Pages>(
    pages: &'a P,
    payload: &[u8],
) -> Result<impl Iterator<Item = Result<(u64, &'a [u8])>> + 'a> {
    let (mut left, mut id) = match Value::parse(payload)? {
        Value::Inline(_) => (0, 0),
        Value::Overflow { len, first } => (len, first),
    };
    Ok(std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let (here, part) = (id, left.min(OVERFLOW_DATA));
        let page = match pages.page(here) {
            Ok(page) => page,
            Err(e) => {
                left = 0;
                return Some(Err(e));
            }
        };
        id = u64::from_le_bytes(page[..8].try_into().expect("8"));
        left -= part;
        Some(Ok((here, &page[8..8 + part])))
    }))
}

/// A leaf payload's value: where it lies if inline, else gathered from its
/// overflow pages.
fn value<'a, P: Pages>(pages: &'a P, payload: &'a [u8]) -> Result<Cow<'a, [u8]>> {
    if let Value::Inline(value) = Value::parse(payload)? {
        return Ok(Cow::Borrowed(value));
    }
    let mut value = Vec::new();
    for part in chain(pages, payload)? {
        value.extend_from_slice(part?.1);
    }
    Ok(Cow::Owned(value))
}

pub struct Db {
    pager: Pager<PAGE>,
}

impl Db {
    /// A new, empty store in a new file.
    pub fn create(path: impl AsRef<Path>) -> Result<Db> {
        let mut pager = Pager::<PAGE>::create(path)?;
        let mut txn = pager.transaction()?;
        if txn.alloc_protected()? != META {
            return Err(Error::Corrupt(
                "the new file's first protected page is not slot 0",
            ));
        }
        let meta = Meta {
            root: 0,
            len: 0,
            version: 0,
            height: 0,
        };
        meta.write(txn.write_protected(META)?.as_bytes_mut());
        txn.commit()?;
        Ok(Db { pager })
    }

    /// Opens a store as its last commit left it.
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        let pager = Pager::<PAGE>::open(path)?;
        Meta::read(META.get(&pager)?.as_bytes(), pager.page_count())?;
        Ok(Db { pager })
    }

    /// Starts a write transaction; dropping it undoes it.
    pub fn write(&mut self) -> Result<WriteTxn<'_>> {
        WriteTxn::begin(&mut self.pager)
    }

    /// A read transaction on the last commit, for any thread.
    pub fn read(&self) -> Result<ReadTxn> {
        ReadTxn::of(self.pager.snapshot()?)
    }

    pub fn pager(&self) -> &Pager<PAGE> {
        &self.pager
    }

    /// The store shared between threads.
    pub fn into_shared(self) -> Result<SharedDb> {
        Ok(SharedDb {
            pager: ConcurrentPager::new(self.pager)?,
        })
    }
}

/// A store shared between threads (`Clone`): one write transaction at a
/// time, readers that never wait for it, and durable writes from many
/// threads that share their syncs.
#[derive(Clone)]
pub struct SharedDb {
    pager: ConcurrentPager<PAGE>,
}

impl SharedDb {
    /// Runs `work` in one write transaction, commits it, and returns once
    /// the commit is durable. Write transactions of many threads share a
    /// sync: while one sync runs, the transactions of the others are
    /// applied, and the next sync covers them all (the pager's group
    /// commit). A failing `work` commits nothing.
    pub fn write_durably<T>(&self, work: impl FnOnce(&mut WriteTxn<'_>) -> Result<T>) -> Result<T> {
        let mut failure = None;
        let done = self.pager.write_and_sync(|pager| {
            let outcome = WriteTxn::begin(pager).and_then(|mut txn| {
                let value = work(&mut txn)?;
                txn.commit()?;
                Ok(value)
            });
            match outcome {
                Ok(value) => Ok(Some(value)),
                Err(Error::Pager(err)) => Err(err),
                // Not the pager's error: kept here, the transaction undone.
                Err(other) => {
                    failure = Some(other);
                    Ok(None)
                }
            }
        })?;
        done.ok_or_else(|| failure.unwrap_or(Error::Corrupt("a write failed without an error")))
    }

    /// A read transaction on the last published commit; never waits for a
    /// writer.
    pub fn read(&self) -> Result<ReadTxn> {
        ReadTxn::of(self.pager.read().map_err(MappedPageError::from)?)
    }

    /// Syncs of the file so far.
    pub fn sync_count(&self) -> Result<u64> {
        let writer = self.pager.write().map_err(MappedPageError::from)?;
        Ok(writer.sync_count())
    }
}

pub struct WriteTxn<'a> {
    txn: Transaction<'a, PAGE>,
    meta: Meta,
}

/// A node as stored after a change: the pages it now fills, each with the
/// lower bound its parent files it under (empty for the first).
type Pieces = Vec<(Vec<u8>, u64)>;

impl<'a> WriteTxn<'a> {
    fn begin(pager: &'a mut Pager<PAGE>) -> Result<WriteTxn<'a>> {
        let pages = pager.page_count();
        let txn = pager.transaction()?;
        let meta = Meta::read(txn.get_protected(META)?.as_bytes(), pages)?;
        Ok(WriteTxn { txn, meta })
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        lookup(&self.txn, self.meta, key)
    }

    pub fn range<K: AsRef<[u8]>>(
        &self,
        range: impl RangeBounds<K>,
    ) -> Result<Range<'_, Transaction<'a, PAGE>>> {
        Range::new(&self.txn, self.meta, range)
    }

    pub fn len(&self) -> u64 {
        self.meta.len
    }

    /// Sets `key` to `value`; returns the value it replaces.
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>> {
        if key.len() > MAX_KEY {
            return Err(Error::KeyTooLarge(key.len()));
        }
        if value.len() > MAX_VALUE {
            return Err(Error::ValueTooLarge(value.len()));
        }
        let overflow = match value.len() > MAX_INLINE {
            true => Some(self.write_overflow(value)?),
            false => None,
        };
        let payload: [&[u8]; 2] = match &overflow {
            Some(payload) => [payload, &[]],
            None => [INLINE, value],
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
        check_depth(page.kind(), depth, self.meta.height)?;
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
                _ => {}
            }
            let mut node = self.txn.node(id)?.decode()?;
            node.replace_child(i, pieces);
            return Ok((self.store(id, node, fill)?, old));
        }
        let len = page.len();
        let (old, edit) = match page.search(key)? {
            Ok(i) => (Some(self.take_value(id, i)?), Edit::Replace(i, payload)),
            Err(i) => (None, Edit::Insert(i, key, payload)),
        };
        let fill = rightmost && matches!(edit, Edit::Insert(i, ..) if i == len);
        Ok((self.change(id, edit, fill)?, old))
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        if self.meta.root == 0 {
            return Ok(None);
        }
        let Some((old, mut root)) = self.remove_at(self.meta.root, 0, key)? else {
            return Ok(None);
        };
        if root == 0 {
            self.meta.height = 0;
        }
        // A root branch left with one child hands the tree down to it.
        while root != 0 {
            let page = self.txn.node(root)?;
            check_depth(page.kind(), 0, self.meta.height)?;
            if page.kind() == Kind::Leaf || page.len() > 1 {
                break;
            }
            let child = page.child(0)?;
            self.txn.free(PageId(root))?;
            root = child;
            self.meta.height -= 1;
        }
        self.meta.root = root;
        self.meta.len -= 1;
        Ok(Some(old))
    }

    /// Removes `key` from the subtree of node `id`, at `depth` of the
    /// tree. `None` if the key is absent (nothing was copied); else the
    /// value and the node's new page, 0 if the node is gone.
    fn remove_at(&mut self, id: u64, depth: usize, key: &[u8]) -> Result<Option<(Vec<u8>, u64)>> {
        let page = self.txn.node(id)?;
        check_depth(page.kind(), depth, self.meta.height)?;
        let (old, edit) = match page.kind() {
            Kind::Leaf => match page.search(key)? {
                Ok(i) => (self.take_value(id, i)?, Edit::Remove(i)),
                Err(_) => return Ok(None),
            },
            Kind::Branch => {
                let i = page.child_for(key)?;
                let before = page.child(i)?;
                let Some((old, child)) = self.remove_at(before, depth + 1, key)? else {
                    return Ok(None);
                };
                let small = child != 0 && self.txn.node(child)?.used()? <= PAGE / 4;
                let child_bytes = child.to_le_bytes();
                let edit = match (child, small) {
                    // A child rewritten where it was and not small enough
                    // to merge leaves this node as it is.
                    (same, false) if same == before => return Ok(Some((old, id))),
                    (0, _) if i > 0 => Some(Edit::Remove(i)),
                    (0, _) | (_, true) => None,
                    (_, false) => Some(Edit::Replace(i, [&child_bytes, &[]])),
                };
                if let Some(edit) = edit {
                    return Ok(Some((old, self.change(id, edit, false)?[0].1)));
                }
                let mut node = self.txn.node(id)?.decode()?;
                if child == 0 {
                    node.entries.remove(i);
                    if let Some(first) = node.entries.first_mut() {
                        first.0.clear();
                    }
                } else {
                    node.set_child(i, child);
                    self.merge(&mut node, i)?;
                }
                if node.entries.is_empty() {
                    self.txn.free(PageId(id))?;
                    return Ok(Some((old, 0)));
                }
                return Ok(Some((old, self.store(id, node, false)?[0].1)));
            }
        };
        if self.txn.node(id)?.len() == 1 {
            self.txn.free(PageId(id))?;
            return Ok(Some((old, 0)));
        }
        Ok(Some((old, self.change(id, edit, false)?[0].1)))
    }

    /// Folds child `i` of `node` into a neighbour when it is small and both
    /// fit in one page, so that removals leave no trail of near-empty nodes.
    fn merge(&mut self, node: &mut Node, i: usize) -> Result<()> {
        if node.entries.len() < 2 || self.txn.node(node.child(i))?.used()? > PAGE / 4 {
            return Ok(());
        }
        let left = i.saturating_sub(1);
        let (left_id, right_id) = (node.child(left), node.child(left + 1));
        let mut merged = self.txn.node(left_id)?.decode()?;
        let mut right = self.txn.node(right_id)?.decode()?.entries;
        if merged.kind == Kind::Branch {
            // The right node's lower bound, dropped from it, comes back from the parent.
            right[0].0 = node.entries[left + 1].0.clone();
        }
        merged.entries.extend(right);
        if merged.size() > PAGE {
            return Ok(());
        }
        self.txn.free(PageId(right_id))?;
        let id = self.store(left_id, merged, false)?[0].1;
        node.set_child(left, id);
        node.entries.remove(left + 1);
        Ok(())
    }

    /// The value of entry `i` of leaf `id`, which is being replaced or
    /// removed: its overflow pages are freed.
    fn take_value(&mut self, id: u64, i: usize) -> Result<Vec<u8>> {
        let payload = self.txn.node(id)?.entry(i)?.1;
        if let Value::Inline(value) = Value::parse(payload)? {
            return Ok(value.to_vec());
        }
        // One walk of the chain gathers the value and the pages to free.
        let (mut value, mut pages) = (Vec::new(), Vec::new());
        for part in chain(&self.txn, payload)? {
            let (page, bytes) = part?;
            value.extend_from_slice(bytes);
            pages.push(PageId(page));
        }
        self.txn.free_bulk(pages)?;
        Ok(value)
    }

    /// Writes a value too long for a leaf into a chain of fresh pages, in
    /// one allocation so that they tend to lie together; returns the leaf
    /// payload naming it.
    fn write_overflow(&mut self, value: &[u8]) -> Result<[u8; 13]> {
        let ids = self.txn.alloc_bulk(value.len().div_ceil(OVERFLOW_DATA))?;
        for (n, part) in value.chunks(OVERFLOW_DATA).enumerate() {
            let next = ids.get(n + 1).map_or(0, |id| id.0);
            let page = self.txn.get_mut(ids[n])?.as_bytes_mut();
            page[..8].copy_from_slice(&next.to_le_bytes());
            page[8..8 + part.len()].copy_from_slice(part);
            page[8 + part.len()..].fill(0);
        }
        Ok(Value::overflow(value.len(), ids[0].0))
    }

    /// Makes `edit` to node `id` where it lies if this transaction wrote it
    /// already, else while copying it to a fresh page; decodes and stores it
    /// ([`WriteTxn::store`]) only if the result does not fit a page.
    fn change(&mut self, id: u64, edit: Edit, fill: bool) -> Result<Pieces> {
        let plan = self.txn.node(id)?.plan(&edit)?;
        if !plan.fits() {
            let mut node = self.txn.node(id)?.decode()?;
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

    /// Writes `node`, which replaces page `id`: into `id` itself if this
    /// transaction wrote it already, else into a fresh page, freeing `id`.
    fn store(&mut self, id: u64, node: Node, fill: bool) -> Result<Pieces> {
        let target = if self.txn.is_writable(PageId(id)) {
            id
        } else {
            self.txn.free(PageId(id))?;
            self.txn.alloc()?.0
        };
        self.write_pieces(target, node, fill)
    }

    fn store_new(&mut self, node: Node) -> Result<Pieces> {
        let id = self.txn.alloc()?.0;
        self.write_pieces(id, node, false)
    }

    fn write_pieces(&mut self, first: u64, node: Node, fill: bool) -> Result<Pieces> {
        let mut stored = Vec::new();
        for (n, (bound, piece)) in node.split(fill).into_iter().enumerate() {
            let id = if n == 0 { first } else { self.txn.alloc()?.0 };
            piece.encode(self.txn.get_mut(PageId(id))?.as_bytes_mut());
            stored.push((bound, id));
        }
        Ok(stored)
    }

    /// Publishes the transaction: one sync.
    pub fn commit(mut self) -> Result<()> {
        self.meta.version += 1;
        self.meta
            .write(self.txn.write_protected(META)?.as_bytes_mut());
        Ok(self.txn.commit()?)
    }
}

/// A read transaction: one commit, unchanged while it lives. `Send + Sync`
/// and cheap to clone.
#[derive(Clone)]
pub struct ReadTxn {
    snapshot: Snapshot<PAGE>,
    meta: Meta,
}

impl ReadTxn {
    fn of(snapshot: Snapshot<PAGE>) -> Result<ReadTxn> {
        let meta = Meta::read(
            snapshot.get_protected(META)?.as_bytes(),
            snapshot.page_count(),
        )?;
        Ok(ReadTxn { snapshot, meta })
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        lookup(&self.snapshot, self.meta, key)
    }

    /// The entries with keys in `range`, in order, as they lie in the map
    /// (values in overflow pages gathered into a buffer of their own).
    pub fn range<K: AsRef<[u8]>>(
        &self,
        range: impl RangeBounds<K>,
    ) -> Result<Range<'_, Snapshot<PAGE>>> {
        Range::new(&self.snapshot, self.meta, range)
    }

    pub fn iter(&self) -> Result<Range<'_, Snapshot<PAGE>>> {
        self.range::<&[u8]>(..)
    }

    pub fn len(&self) -> u64 {
        self.meta.len
    }

    /// The commits made before this one's state.
    pub fn version(&self) -> u64 {
        self.meta.version
    }

    /// Checks the tree's shape (keys in order and within their parent's
    /// bounds, every leaf at the depth the height puts it, the entry count)
    /// and returns every page it reaches, to compare with the pages the
    /// file holds.
    pub fn check(&self) -> Result<Vec<u64>> {
        let (mut pages, mut len) = (Vec::new(), 0);
        if self.meta.root != 0 {
            let mut todo = vec![(self.meta.root, 0, Vec::new(), None::<Vec<u8>>)];
            while let Some((id, depth, low, high)) = todo.pop() {
                pages.push(id);
                let node = self.snapshot.node(id)?;
                check_depth(node.kind(), depth, self.meta.height)?;
                let keys = (0..node.len()).map(|i| node.entry(i).map(|e| e.0));
                let keys = keys.collect::<Result<Vec<_>>>()?;
                let within = |k: &&[u8]| {
                    *k >= low.as_slice() && high.as_ref().is_none_or(|h| *k < h.as_slice())
                };
                let sorted = keys.windows(2).all(|w| w[0] < w[1]);
                match node.kind() {
                    Kind::Leaf => {
                        if !sorted || !keys.iter().all(within) {
                            return Err(Error::Corrupt("leaf out of order"));
                        }
                        len += node.len() as u64;
                        for i in 0..node.len() {
                            for part in chain(&self.snapshot, node.entry(i)?.1)? {
                                pages.push(part?.0);
                            }
                        }
                    }
                    Kind::Branch => {
                        if !keys[0].is_empty() || !sorted || !keys[1..].iter().all(within) {
                            return Err(Error::Corrupt("branch keys out of order"));
                        }
                        for i in 0..node.len() {
                            let child_low = if i == 0 {
                                low.clone()
                            } else {
                                keys[i].to_vec()
                            };
                            let child_high = keys.get(i + 1).map(|k| k.to_vec()).or(high.clone());
                            todo.push((node.child(i)?, depth + 1, child_low, child_high));
                        }
                    }
                }
            }
        }
        if len != self.meta.len {
            return Err(Error::Corrupt("entry count differs from the leaves"));
        }
        Ok(pages)
    }
}

fn lookup<'a, P: Pages>(pages: &'a P, meta: Meta, key: &[u8]) -> Result<Option<Cow<'a, [u8]>>> {
    let mut id = meta.root;
    if id == 0 {
        return Ok(None);
    }
    let mut depth = 0;
    loop {
        let node = pages.node(id)?;
        check_depth(node.kind(), depth, meta.height)?;
        match node.kind() {
            Kind::Branch => {
                id = node.child(node.child_for(key)?)?;
                depth += 1;
            }
            Kind::Leaf => {
                return match node.search(key)? {
                    Ok(i) => Ok(Some(value(pages, node.entry(i)?.1)?)),
                    Err(_) => Ok(None),
                }
            }
        }
    }
}

/// A key and its value, as a scan gives them.
pub type Entry<'a> = (&'a [u8], Cow<'a, [u8]>);

/// An ordered scan: the path from the root to the current leaf entry.
pub struct Range<'a, P> {
    pages: &'a P,
    /// Each node on the path with the entry it is at; below the top, that
    /// entry's child is the next node on the stack.
    path: Vec<(NodeRef<'a>, usize)>,
    end: Bound<Vec<u8>>,
    /// The tree's height: the path's bound.
    height: u64,
}

impl<'a, P: Pages> Range<'a, P> {
    fn new<K: AsRef<[u8]>>(pages: &'a P, meta: Meta, range: impl RangeBounds<K>) -> Result<Self> {
        let own = |b: Bound<&K>| b.map(|k| k.as_ref().to_vec());
        let (start, end) = (own(range.start_bound()), own(range.end_bound()));
        let mut scan = Range {
            pages,
            path: Vec::new(),
            end,
            height: meta.height,
        };
        let mut id = meta.root;
        while id != 0 {
            let node = pages.node(id)?;
            check_depth(node.kind(), scan.path.len(), scan.height)?;
            let (at, child) = match (&start, node.kind()) {
                (Bound::Unbounded, Kind::Branch) => (0, node.child(0)?),
                (Bound::Unbounded, Kind::Leaf) => (0, 0),
                (Bound::Included(k) | Bound::Excluded(k), Kind::Branch) => {
                    let i = node.child_for(k)?;
                    (i, node.child(i)?)
                }
                (Bound::Included(k) | Bound::Excluded(k), Kind::Leaf) => match node.search(k)? {
                    Ok(i) if matches!(start, Bound::Excluded(_)) => (i + 1, 0),
                    Ok(i) | Err(i) => (i, 0),
                },
            };
            scan.path.push((node, at));
            id = child;
        }
        Ok(scan)
    }

    fn step(&mut self) -> Result<Option<Entry<'a>>> {
        while let Some((node, at)) = self.path.last_mut() {
            let (node, i) = (*node, *at);
            if i >= node.len() {
                self.path.pop();
                if let Some((_, parent_at)) = self.path.last_mut() {
                    *parent_at += 1;
                }
                continue;
            }
            if node.kind() == Kind::Branch {
                let child = self.pages.node(node.child(i)?)?;
                check_depth(child.kind(), self.path.len(), self.height)?;
                self.path.push((child, 0));
                continue;
            }
            *at += 1;
            let (key, payload) = node.entry(i)?;
            let inside = match &self.end {
                Bound::Included(end) => key <= end.as_slice(),
                Bound::Excluded(end) => key < end.as_slice(),
                Bound::Unbounded => true,
            };
            if !inside {
                self.path.clear();
                return Ok(None);
            }
            return Ok(Some((key, value(self.pages, payload)?)));
        }
        Ok(None)
    }
}

impl<'a, P: Pages> Iterator for Range<'a, P> {
    type Item = Result<Entry<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.step() {
            Ok(entry) => entry.map(Ok),
            Err(e) => {
                self.path.clear();
                Some(Err(e))
            }
        }
    }
}

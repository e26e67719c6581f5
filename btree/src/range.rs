//! Ordered scans, and the one-key lookup.

use std::borrow::Cow;
use std::ops::{Bound, RangeBounds};

use crate::error::Result;
use crate::meta::Meta;
use crate::node::{Kind, NodeRef};
use crate::pages::{read_value, Pages};

/// A key and its value, as a scan gives them: the key where it lies in the
/// map, the value too unless it lies in overflow pages.
pub type Entry<'a> = (&'a [u8], Cow<'a, [u8]>);

/// The value of `key`, one walk from the root to a leaf.
pub(crate) fn lookup<'a, P: Pages>(
    pages: &'a P,
    meta: Meta,
    key: &[u8],
) -> Result<Option<Cow<'a, [u8]>>> {
    let mut id = meta.root;
    if id == 0 {
        return Ok(None);
    }
    let mut depth = 0;
    loop {
        let node = pages.node(id)?;
        meta.check_depth(node.kind(), depth)?;
        match node.kind() {
            Kind::Branch => {
                id = node.child(node.child_for(key)?)?;
                depth += 1;
            }
            Kind::Leaf => {
                return match node.search(key)? {
                    Ok(i) => Ok(Some(read_value(pages, node.entry(i)?.1)?)),
                    Err(_) => Ok(None),
                }
            }
        }
    }
}

/// An ordered scan over the pairs of a range of keys, made by
/// [`ReadTxn::range`](crate::ReadTxn::range) or
/// [`WriteTxn::range`](crate::WriteTxn::range).
///
/// It holds the path from the root to the current leaf entry, so each step
/// reads at most the pages of one path. An error ends the scan.
///
/// ```
/// use mappedpages_btree::Db;
/// # let dir = tempfile::tempdir()?;
/// let mut db = Db::create(dir.path().join("store.db"))?;
/// let mut txn = db.write()?;
/// for key in [b"a", b"b", b"c", b"d"] {
///     txn.insert(key, b"value")?;
/// }
/// let keys: Vec<Vec<u8>> = txn
///     .range(&b"b"[..]..=&b"c"[..])?
///     .map(|entry| entry.map(|(key, _)| key.to_vec()))
///     .collect::<Result<_, _>>()?;
/// assert_eq!(keys, [b"b", b"c"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Range<'a, P> {
    pages: &'a P,
    /// Each node on the path with the entry it is at; below the top, that
    /// entry's child is the next node on the stack.
    path: Vec<(NodeRef<'a>, usize)>,
    end: Bound<Vec<u8>>,
    meta: Meta,
}

impl<'a, P: Pages> Range<'a, P> {
    pub(crate) fn new<K: AsRef<[u8]>>(
        pages: &'a P,
        meta: Meta,
        range: impl RangeBounds<K>,
    ) -> Result<Self> {
        let own = |b: Bound<&K>| b.map(|k| k.as_ref().to_vec());
        let (start, end) = (own(range.start_bound()), own(range.end_bound()));
        let mut scan = Range {
            pages,
            path: Vec::new(),
            end,
            meta,
        };
        let mut id = meta.root;
        while id != 0 {
            let node = pages.node(id)?;
            meta.check_depth(node.kind(), scan.path.len())?;
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
                self.meta.check_depth(child.kind(), self.path.len())?;
                self.path.push((child, 0));
                continue;
            }
            *at += 1;
            let (key, payload) = node.entry(i)?;
            if !below_end(&self.end, key) {
                self.path.clear();
                return Ok(None);
            }
            return Ok(Some((key, read_value(self.pages, payload)?)));
        }
        Ok(None)
    }
}

/// Whether `key` lies before the end bound `end`.
pub(crate) fn below_end(end: &Bound<Vec<u8>>, key: &[u8]) -> bool {
    match end {
        Bound::Included(end) => key <= end.as_slice(),
        Bound::Excluded(end) => key < end.as_slice(),
        Bound::Unbounded => true,
    }
}

/// Whether `key` lies after the start bound `start`.
pub(crate) fn above_start(start: &Bound<Vec<u8>>, key: &[u8]) -> bool {
    match start {
        Bound::Included(start) => key >= start.as_slice(),
        Bound::Excluded(start) => key > start.as_slice(),
        Bound::Unbounded => true,
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

//! Read transactions: one commit, read from any thread.

use std::borrow::Cow;
use std::ops::RangeBounds;

use mappedpages::Snapshot;

use crate::error::{Error, Result};
use crate::meta::{Meta, META};
use crate::node::{Kind, PAGE};
use crate::pages::{chain, Pages};
use crate::range::{lookup, Range};

/// A read transaction: one commit, unchanged while it lives, whatever the
/// writer does meanwhile. `Send + Sync` and cheap to clone.
///
/// The pages it reads are neither written nor reused while it lives (it
/// holds a pager [`Snapshot`]), so a long-lived one keeps the file from
/// reusing the pages freed since.
///
/// ```
/// use mappedpages_btree::Db;
/// # let dir = tempfile::tempdir()?;
/// let mut db = Db::create(dir.path().join("store.db"))?;
/// let mut txn = db.write()?;
/// txn.insert(b"key", b"old")?;
/// txn.commit()?;
/// let read = db.read()?;
/// let mut txn = db.write()?;
/// txn.insert(b"key", b"new")?;
/// txn.commit()?;
/// assert_eq!(read.get(b"key")?.as_deref(), Some(&b"old"[..]));
/// assert_eq!(db.read()?.get(b"key")?.as_deref(), Some(&b"new"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct ReadTxn {
    snapshot: Snapshot<PAGE>,
    meta: Meta,
}

impl ReadTxn {
    pub(crate) fn of(snapshot: Snapshot<PAGE>) -> Result<ReadTxn> {
        let meta = Meta::read(
            snapshot.get_protected(META)?.as_bytes(),
            snapshot.page_count(),
        )?;
        Ok(ReadTxn { snapshot, meta })
    }

    /// The value of `key`: where it lies in the map, or gathered from its
    /// overflow pages.
    pub fn get(&self, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        lookup(&self.snapshot, self.meta, key)
    }

    /// The pairs with keys in `range`, in order.
    pub fn range<K: AsRef<[u8]>>(
        &self,
        range: impl RangeBounds<K>,
    ) -> Result<Range<'_, Snapshot<PAGE>>> {
        Range::new(&self.snapshot, self.meta, range)
    }

    /// Every pair, in order.
    pub fn iter(&self) -> Result<Range<'_, Snapshot<PAGE>>> {
        self.range::<&[u8]>(..)
    }

    /// The number of pairs, kept in the root record (no walk).
    pub fn len(&self) -> u64 {
        self.meta.len
    }

    /// Whether the tree holds no pair.
    pub fn is_empty(&self) -> bool {
        self.meta.len == 0
    }

    /// The commits made before this one's state.
    pub fn version(&self) -> u64 {
        self.meta.version
    }

    #[cfg(test)]
    pub(crate) fn meta_for_tests(&self) -> Meta {
        self.meta
    }

    /// The levels of nodes from the root to the leaves (0 when empty).
    pub fn height(&self) -> u64 {
        self.meta.height
    }

    /// Checks the tree's shape (keys in order and within their parent's
    /// bounds, every leaf at the depth the height puts it, the pair count)
    /// and returns every page it reaches (nodes and overflow pages), to
    /// compare with the pages the file holds.
    ///
    /// ```
    /// use mappedpages_btree::Db;
    /// # let dir = tempfile::tempdir()?;
    /// let mut db = Db::create(dir.path().join("store.db"))?;
    /// let mut txn = db.write()?;
    /// txn.insert(b"key", &[1; 10_000])?; // three overflow pages
    /// txn.commit()?;
    /// assert_eq!(db.read()?.check()?.len(), 4);
    /// assert_eq!(db.pager().allocated_page_count(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the first thing found wrong.
    pub fn check(&self) -> Result<Vec<u64>> {
        let (mut pages, mut len) = (Vec::new(), 0);
        if self.meta.root != 0 {
            let mut todo = vec![(self.meta.root, 0, Vec::new(), None::<Vec<u8>>)];
            while let Some((id, depth, low, high)) = todo.pop() {
                pages.push(id);
                let node = self.snapshot.node(id)?;
                self.meta.check_depth(node.kind(), depth)?;
                let keys = (0..node.len()).map(|i| node.key(i));
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
                            for part in chain(&self.snapshot, node.value(i)?) {
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

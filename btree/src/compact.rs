//! Compaction: moves the tree's pages to the start of the file and gives
//! the free end back.
//!
//! A file whose pairs were mostly removed keeps its length: its free pages
//! are holes among the live ones, and the pager can only give back a free
//! *tail*. Compaction moves every tree page that lies at or past the size
//! the live pages need (the goal) into a free page below it
//! (`Transaction::relocate`), and points what named it (the parent node,
//! the leaf or the previous overflow page, or the root record) at the new
//! place. What names a moved page must be rewritten too, which is
//! copy-on-write: it moves to a fresh page, and so on up to the root.
//!
//! Pages freed by a transaction are reused only after its commit, so one
//! round (one transaction) may run out of free pages below the goal for the
//! last nodes it rewrites, which then land past it; the next round moves
//! them. The walk rewrites the nodes near the root last, so such leftovers
//! are few. When a round finds nothing past the goal to move,
//! [`Pager::shrink`](mappedpages::Pager::shrink) cuts the file; the rounds
//! stop when the cut gives nothing back.

use mappedpages::PageId;

use crate::db::Db;
use crate::error::Result;
use crate::node::{set_next_overflow_page, set_page_ref, Kind, LeafValue};
use crate::pages::{chain, Pages};
use crate::write::WriteTxn;

/// The most rounds a compaction makes: each one past the first moves only
/// what the one before could not, the nodes nearest the root.
const MAX_ROUNDS: u32 = 16;

/// What [`Db::compact`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Compaction {
    /// Transactions committed to move pages (one sync each with
    /// [`Durability::Immediate`](crate::Durability::Immediate)).
    pub rounds: u32,
    /// Pages written to another place: moved down, or copied because a
    /// page they name moved.
    pub pages_moved: u64,
    /// The file's length in pages before.
    pub file_pages_before: u64,
    /// The file's length in pages after: the compacted size.
    pub file_pages_after: u64,
}

impl Compaction {
    /// The compacted size: the file's length after, in bytes.
    pub fn file_bytes_after(&self) -> u64 {
        self.file_pages_after * crate::node::PAGE as u64
    }
}

/// Pages a walk moved: all of them, and those that lay at or past the goal.
#[derive(Default)]
struct Moved {
    pages: u64,
    from_past_goal: u64,
}

impl Db {
    /// Moves the tree's pages to the start of the file and gives the free
    /// end back to the file system; returns what it did. Each round is one
    /// commit; a crash leaves the last one (the tree is the same in all of
    /// them). Pages a live [`ReadTxn`](crate::ReadTxn) reads are not reused
    /// while it lives, so compact with none open to get all the space back.
    ///
    /// ```
    /// use mappedpages_btree::Db;
    /// # let dir = tempfile::tempdir()?;
    /// let mut db = Db::create(dir.path().join("store.db"))?;
    /// let mut txn = db.write()?;
    /// for i in 0..20_000u32 {
    ///     txn.insert(&i.to_be_bytes(), &[7; 100])?;
    /// }
    /// txn.commit()?;
    /// let mut txn = db.write()?;
    /// txn.retain(|key, _| key[3] == 0)?; // one pair in 256
    /// txn.commit()?;
    /// let compaction = db.compact()?;
    /// assert!(compaction.file_pages_after < compaction.file_pages_before / 4);
    /// assert_eq!(db.read()?.len(), 79);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compact(&mut self) -> Result<Compaction> {
        let file_pages_before = self.pager.page_count();
        let (mut rounds, mut pages_moved) = (0, 0);
        while rounds < MAX_ROUNDS {
            // The pages in use, all of them at the start of the file.
            let goal = self.pager.page_count() - self.pager.free_page_count();
            let mut txn = self.write()?;
            let moved = txn.move_below(goal)?;
            if moved.from_past_goal == 0 {
                drop(txn);
                // Cutting the file can free pages of the pager's own (those
                // that described the part cut off), which lowers the goal:
                // then there may be more to move.
                if self.pager.shrink()? == 0 {
                    break;
                }
                continue;
            }
            txn.commit()?;
            rounds += 1;
            pages_moved += moved.pages;
        }
        Ok(Compaction {
            rounds,
            pages_moved,
            file_pages_before,
            file_pages_after: self.pager.page_count(),
        })
    }
}

impl WriteTxn<'_> {
    /// Moves the tree's pages at or past `goal` down, and rewrites what
    /// names them.
    fn move_below(&mut self, goal: u64) -> Result<Moved> {
        self.forget_edge_leaves();
        let mut moved = Moved::default();
        if self.meta.root != 0 {
            self.meta.root = self.move_node(self.meta.root, 0, goal, &mut moved)?;
        }
        Ok(moved)
    }

    /// Moves the subtree of node `id` at `depth`: its children first, then
    /// the node if it lies past `goal` or names a page that moved. Returns
    /// the node's page.
    fn move_node(&mut self, id: u64, depth: usize, goal: u64, moved: &mut Moved) -> Result<u64> {
        let node = self.txn.node(id)?;
        self.meta.check_depth(node.kind(), depth)?;
        // The pages the node names: children, or the first overflow page
        // and length of each value held in a chain.
        let mut named = Vec::new();
        for i in 0..node.len() {
            match node.kind() {
                Kind::Branch => named.push((i, node.child(i)?, None)),
                Kind::Leaf => {
                    if let LeafValue::Overflow { len, first } = node.value(i)? {
                        named.push((i, first, Some(len)));
                    }
                }
            }
        }
        let mut repoint = Vec::new();
        for (i, page, chain_len) in named {
            let new = match chain_len {
                None => self.move_node(page, depth + 1, goal, moved)?,
                Some(len) => self.move_chain(page, len, goal, moved)?,
            };
            if new != page {
                repoint.push((i, new));
            }
        }
        let new = self.move_page(id, goal, !repoint.is_empty(), moved)?;
        if !repoint.is_empty() {
            let page = self.txn.get_mut(PageId(new))?.as_bytes_mut();
            for (i, to) in repoint {
                set_page_ref(page, i, to)?;
            }
        }
        Ok(new)
    }

    /// Moves the overflow chain of a value of `len` bytes that starts at
    /// `first`, from its last page back; returns its first page.
    fn move_chain(&mut self, first: u64, len: usize, goal: u64, moved: &mut Moved) -> Result<u64> {
        let pages = chain(&self.txn, LeafValue::Overflow { len, first })
            .map(|part| part.map(|(id, _)| id))
            .collect::<Result<Vec<_>>>()?;
        // Where the page after the current one went, if it moved.
        let mut next_moved = None;
        for &id in pages.iter().rev() {
            let new = self.move_page(id, goal, next_moved.is_some(), moved)?;
            if let Some(next) = next_moved {
                set_next_overflow_page(self.txn.get_mut(PageId(new))?.as_bytes_mut(), next);
            }
            next_moved = (new != id).then_some(new);
        }
        Ok(next_moved.unwrap_or(first))
    }

    /// Page `id` where it can be written, when `rewrite` says it must be;
    /// else moved down if it lies at or past `goal` and a page below it is
    /// free. Returns its page, which is writable if it changed.
    fn move_page(&mut self, id: u64, goal: u64, rewrite: bool, moved: &mut Moved) -> Result<u64> {
        if self.txn.is_writable(PageId(id)) || (!rewrite && id < goal) {
            return Ok(id);
        }
        let new = match self.txn.relocate(PageId(id))? {
            Some(new) => new.0,
            None if rewrite => {
                // No free page below: copied where allocation puts it.
                let new = self.txn.alloc()?;
                let pages = self.txn.pages();
                let bytes = pages.get(PageId(id))?.as_bytes();
                pages.get_mut(new)?.as_bytes_mut().copy_from_slice(bytes);
                drop(pages);
                self.txn.free(PageId(id))?;
                new.0
            }
            None => return Ok(id),
        };
        moved.pages += 1;
        if id >= goal && new < goal {
            moved.from_past_goal += 1;
        }
        Ok(new)
    }
}

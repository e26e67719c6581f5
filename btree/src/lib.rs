//! A copy-on-write B+tree key-value store on [`mappedpages`].
//!
//! Keys (up to [`MAX_KEY`] bytes) map to values (up to [`MAX_VALUE`]), kept
//! in order in one file of 4 KiB pages. The page crate does the page and
//! crash work; this crate is the tree:
//!
//! - a write transaction ([`WriteTxn`]) is one pager transaction, committed
//!   with one sync ([`Durability::Immediate`], the default) or none
//!   ([`Durability::Deferred`], then [`Db::sync`]);
//! - a change copies the path from the root to the changed leaf into pages
//!   allocated in the transaction and frees the pages they replace; the
//!   commit repoints the root record (a protected page of the pager, written
//!   atomically) at the new root. Committed pages are never written, so a
//!   crash at any moment leaves the last commit, and every page the file
//!   holds is reachable from its root: there is nothing to repair or collect
//!   on open;
//! - readers work on a snapshot ([`ReadTxn`]): the pages it shows are
//!   neither written nor reused while it lives, so it reads one commit from
//!   any thread while the writer goes on;
//! - durable write transactions from many threads share their syncs
//!   ([`SharedDb::write_durably`], the pager's group commit);
//! - removals of many pairs work on whole subtrees
//!   ([`WriteTxn::remove_range`], [`WriteTxn::retain`],
//!   [`WriteTxn::extract_if`]), and [`Db::compact`] moves the tree to the
//!   start of its file and gives the rest back.
//!
//! The root record holds the tree's height, and every walk down the tree
//! checks each node against it: a damaged page whose child points back up
//! the tree is an [`Error::Corrupt`], never a walk that goes on for ever.
//! [`node`] documents the page format.
//!
//! ```
//! use mappedpages_btree::Db;
//! # let dir = tempfile::tempdir()?;
//! let mut db = Db::create(dir.path().join("store.db"))?;
//! let mut txn = db.write()?;
//! txn.insert(b"apple", b"red")?;
//! txn.insert(b"banana", b"yellow")?;
//! txn.commit()?;
//!
//! let read = db.read()?;
//! assert_eq!(read.get(b"apple")?.as_deref(), Some(&b"red"[..]));
//! for pair in read.range(&b"b"[..]..)? {
//!     let (key, value) = pair?;
//!     assert_eq!((key, &*value), (&b"banana"[..], &b"yellow"[..]));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod bulk;
mod compact;
mod db;
mod error;
mod meta;
pub mod node;
mod pages;
mod range;
mod read;
mod write;

pub use compact::Compaction;
pub use db::{Db, DbOptions, SharedDb};
pub use error::{Error, Result};
pub use mappedpages::Durability;
pub use node::{MAX_INLINE, MAX_KEY, MAX_VALUE, PAGE};
pub use pages::Pages;
pub use range::{Entry, Range};
pub use read::ReadTxn;
pub use write::WriteTxn;

//! The engine: the state of an open file and the rules that keep it safe.
//!
//! The public types ([`Pager`](crate::Pager), [`Transaction`](crate::Transaction),
//! snapshots, protected writers, copies) are faces over one [`Core`]; what
//! they may ask of it is what this module re-exports. Inside, one file per
//! concept:
//!
//! - `core`: the open file's state, and the calls the public types make;
//! - `commit`: the commit protocol (a change becomes one atomic root), the
//!   journal, growth of the file;
//! - `transaction`: a transaction's changes gathered in memory and undone
//!   on drop;
//! - `reclaim`: when a freed page may be handed out again;
//! - `shrink`: the free tail given back;
//! - `open`: picking the newest valid root of a file and loading it;
//! - `placement`: where a transaction's pages go;
//! - `freemap`, `page_tree`, `bitmap`: the in-memory free-space map, the
//!   page trees that hold it on disk, and the bit vectors under both.
//!
//! Below the engine sit the on-disk format (`crate::format`) and the I/O
//! seam (`crate::io`); nothing here names an operating system.

mod bitmap;
mod commit;
mod copy;
mod core;
mod freemap;
mod open;
mod page_tree;
mod placement;
mod protected;
mod reclaim;
mod shrink;
mod snapshots;
mod transaction;

pub(crate) use self::core::{Core, Settings};
pub(crate) use freemap::{FreeMap, PageUse};
pub(crate) use open::{choose_root, open_state, ChooseError, Chosen};
pub(crate) use snapshots::Frozen;
pub(crate) use transaction::TxnState;

//! The engine: the state of an open file and the rules that keep it safe.
//!
//! The public types ([`Pager`](crate::Pager), [`Transaction`](crate::Transaction),
//! snapshots, protected writers, copies) are faces over one [`Core`]; what
//! they may ask of it is what this module re-exports. Inside, one file per
//! concept:
//!
//! - `core`: the open file's state, made by create and open, and the
//!   calls the public types make;
//! - `commit`: the commit protocol (a change becomes one atomic root);
//! - `durability`: the modes a commit is made durable in;
//! - `journal`: what the commit protocol keeps between commits (the log,
//!   the page trees, the root slots, the checks not yet synced);
//! - `transaction`: a transaction's changes gathered in memory and undone
//!   on drop;
//! - `group`, `flight`: group commit (the commits of many threads made
//!   durable by one sync, run without the writer's lock) and the state its
//!   waiters share;
//! - `reclaim`: when a freed page may be handed out again;
//! - `readers`: the writer's side of readers in other processes (the
//!   reader table it honours when it reuses pages or cuts the file);
//! - `snapshots`: the committed states given out to readers, and why
//!   reading them from other threads is sound;
//! - `freeze`: the writer's side of snapshots (freezing a state, and what
//!   live snapshots forbid it);
//! - `protected`: the directory of protected pages and their copies;
//! - `sub_pages`, `sub_slots`: sub-pages, parent pages cut into equal
//!   parts whose allocation the directory records, and which of their parts
//!   may be handed out;
//! - `copy`: a state written into a new file;
//! - `length`: the file's length, grown and cut (the one place that
//!   decides it), within the bounds of `limits`;
//! - `open`: picking the newest valid root of a file and loading it (what
//!   open found is reported as a `RecoveryReport`);
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
mod durability;
mod flight;
mod freemap;
mod freeze;
mod group;
mod journal;
mod length;
mod limits;
mod open;
mod page_tree;
mod placement;
mod protected;
mod readers;
mod reclaim;
mod snapshots;
mod sub_pages;
mod sub_slots;
mod transaction;

pub use durability::Durability;
pub use limits::{DEFAULT_MAX_GROWTH_STEP, DEFAULT_SHRINK_THRESHOLD, MIN_GROWTH_STEP};
pub use open::RecoveryReport;
pub use transaction::DEFAULT_TRANSACTION_MEMORY;

pub(crate) use self::core::{Core, Settings};
pub(crate) use flight::{Flight, GroupSync, Wait};
pub(crate) use freemap::{FreeMap, PageUse};
pub(crate) use limits::MIN_FILE_PAGES;
pub(crate) use open::{choose_root, load_state_of_root, open_state, ChooseError, Chosen};
pub(crate) use readers::{table_error, ReaderBounds};
pub(crate) use snapshots::Frozen;
pub(crate) use sub_pages::sub_page_ids;
pub(crate) use transaction::{FreshPages, TxnState};

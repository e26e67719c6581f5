//! A crash-consistent, memory-mapped, file-backed provider of fixed-size
//! pages, for storage engines: B-trees, key-value stores, caches and
//! allocators.
//!
//! A [`Pager`] manages one file cut into pages of `PAGE_SIZE` bytes. Regular
//! pages ([`PageId`]) are plain memory the caller reads and writes through the
//! map; their bytes are durable after [`Pager::sync`] or the next commit.
//! Protected pages ([`ProtectedPageId`]) are copy-on-write: a write is staged
//! and published atomically by [`ProtectedPageWriter::commit`], so a crash
//! leaves the old bytes or the new ones. Allocation state changes atomically
//! with each call, and reopening after a crash shows the state after the last
//! call that returned `Ok` (or after the call in flight).
//!
//! A [`Transaction`] ([`Pager::transaction`]) is the unit a storage engine
//! works in: any number of allocations, frees, writes to the pages it
//! allocated and protected-page writes, published by one commit with one
//! sync ([`Durability::Immediate`]) or none ([`Durability::Deferred`]), and
//! undone by dropping it. After a crash the file reopens to the state before
//! the transaction or after it, never a part.
//!
//! Readers never wait for the writer. A [`Snapshot`] ([`Pager::snapshot`])
//! is a read view of one committed state, `Send + Sync` and cheap to clone,
//! that any number of threads read while the writer goes on committing; a
//! [`ConcurrentPager`] shares a pager between one writer at a time and any
//! number of such readers; a [`ReadOnlyPager`] opens a file for reading only,
//! from several processes at once. What makes reading from other threads
//! sound, in short: while a snapshot lives, no byte it can read is written
//! (pages freed after it are not reused, transactions write only fresh
//! pages, writes in place to its pages are refused with
//! [`MappedPageError::InUseBySnapshot`], protected writes go to other
//! pages), and no mapping it reads is unmapped (a growth maps the file anew
//! and the old mapping stays with the snapshots). The full argument is in
//! the source of the `snapshot` module. For async code nothing more is
//! needed: a snapshot is `Send + Sync + 'static`, so it moves into tasks as
//! it is.
//!
//! The on-disk format and the commit protocol are specified in `FORMAT.md`.
//!
//! # Safety of the memory map
//! The pager maps the file and hands out references into the map. It locks
//! the file exclusively (`flock`) while open, so a second `Pager`, in this
//! process or another, gets [`MappedPageError::Locked`]. The lock is advisory:
//! a program that ignores it and writes or truncates the file while a `Pager`
//! has it open can change bytes under a live reference or make an access fault
//! (`SIGBUS`). Do not share the file with such programs.

#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::unwrap_used, clippy::expect_used)]
#![doc(test(attr(deny(warnings))))]

mod bitmap;
mod by_id;
mod commit;
mod concurrent;
mod copy;
mod core;
mod error;
#[cfg(feature = "fault-injection")]
pub mod fault;
#[cfg(not(feature = "fault-injection"))]
mod fault;
mod format;
mod freemap;
pub mod guide;
pub mod inspect;
mod io;
mod options;
mod page;
mod page_tree;
mod pager;
mod placement;
mod protected;
mod read_only;
mod recovery;
mod snapshot;
mod space;
mod sub_page;
mod traits;
mod transaction;
mod txn;
// Last, so that rustdoc lists the `*_async` methods after `create` and `open`.
#[cfg(feature = "async")]
mod nonblocking;

pub use crate::concurrent::{ConcurrentError, ConcurrentPager, WriteGuard};
pub use crate::error::{MappedPageError, Result};
pub use crate::options::{
    Durability, PagerOptions, RecoveryReport, DEFAULT_INITIAL_PAGES, DEFAULT_MAX_GROWTH_STEP,
    DEFAULT_SHRINK_THRESHOLD, MIN_GROWTH_STEP,
};
pub use crate::page::{MappedPage, PageId};
pub use crate::pager::{AllocatedPageIter, AllocatedProtectedPageIter, Pager};
pub use crate::protected::{ProtectedPageId, ProtectedPageWriter};
pub use crate::read_only::ReadOnlyPager;
pub use crate::snapshot::Snapshot;
pub use crate::sub_page::{SubPageAllocator, SubPageId};
pub use crate::traits::{BulkPageAllocator, PageAllocator, PageHandle};
pub use crate::transaction::{PageSet, Transaction};

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

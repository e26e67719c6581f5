//! A crash-consistent, memory-mapped, file-backed provider of fixed-size
//! pages, for storage engines: B-trees, key-value stores, caches and
//! allocators.
//!
//! ```
//! use mappedpages::{PageId, Pager, ProtectedPageId};
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.pages");
//!
//! let mut pager = Pager::<4096>::create(&path)?;
//! let root = pager.alloc_protected()?; // your root: ProtectedPageId::FIRST
//!
//! let mut txn = pager.transaction()?; // one atomic change, one sync
//! let page = txn.alloc()?;
//! txn.get_mut(page)?.as_bytes_mut()[..5].copy_from_slice(b"hello");
//! txn.write_protected(root)?.as_bytes_mut()[..8].copy_from_slice(&page.0.to_le_bytes());
//! txn.commit()?;
//! drop(pager);
//!
//! let pager = Pager::<4096>::open(&path)?; // after a crash too
//! let raw = pager.get_protected(ProtectedPageId::FIRST)?.as_bytes()[..8].try_into()?;
//! let page = PageId::<4096>(u64::from_le_bytes(raw));
//! assert_eq!(&pager.get(page)?.as_bytes()[..5], b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A [`Pager`] manages one file cut into pages of `PAGE_SIZE` bytes. Regular
//! pages ([`PageId`]) are plain memory the caller reads and writes through the
//! map; their bytes are durable after [`Pager::sync`] or the next commit.
//! Protected pages ([`ProtectedPageId`]) are copy-on-write: a write is staged
//! and published atomically by [`ProtectedPageWriter::commit`], so a crash
//! leaves the old bytes or the new ones. Allocation state changes atomically
//! with each call, and reopening after a crash shows the state after the last
//! call that returned `Ok` (or after the call in flight). The first protected
//! page of a new file is always [`ProtectedPageId::FIRST`]: keep your root
//! there and find it again after a reopen.
//!
//! A [`Transaction`] ([`Pager::transaction`]) is the unit a storage engine
//! works in: any number of allocations, frees, writes to the pages it
//! allocated and protected-page writes, published by one commit with one
//! sync ([`Durability::Immediate`]) or none ([`Durability::Deferred`]), and
//! undone by dropping it. After a crash the file reopens to the state before
//! the transaction or after it, never a part. Small objects live in durable
//! sub-pages ([`SubPage`], a page cut into 2 to 64 parts), allocated, written
//! and freed in the same transactions, recorded in the file (nothing to
//! rebuild after a restart) and read through snapshots like pages.
//!
//! Readers never wait for the writer. A [`Snapshot`] ([`Pager::snapshot`])
//! is a read view of one committed state, `Send + Sync` and cheap to clone,
//! that any number of threads read while the writer goes on committing; a
//! [`ConcurrentPager`] shares a pager between one writer at a time and any
//! number of such readers, and lets many threads commit durably through
//! [`ConcurrentPager::write_and_sync`], where the commits made while one
//! sync runs share the next (group commit); a [`ReadOnlyPager`] opens a
//! file for reading only,
//! from several processes at once. Reading from other threads is sound
//! because, while a snapshot lives, no byte it can read is written (pages
//! freed after it are not reused, transactions write only fresh pages,
//! writes in place to its pages are refused with
//! [`MappedPageError::InUseBySnapshot`], protected writes go to other
//! pages), and no mapping it reads is unmapped (a growth maps the file anew
//! and the old mapping stays with the snapshots). For async code nothing
//! more is needed: a snapshot is `Send + Sync + 'static`, so it moves into
//! tasks as it is.
//!
//! # What is checked, and when
//! Every structure the crate keeps in the file (the superblock, both
//! metadata roots, the free-space map and the protected directory) is
//! checksummed (CRC-32C) and verified at every open. The pages a transaction
//! wrote (its fresh regular pages and protected-page copies) are checked at
//! open only while the root of its commit is the newest, or in `Deferred`
//! mode until a commit after the next sync: that is what lets a commit need
//! one sync. After that nothing checks your bytes again, and pages written
//! in place ([`PageId::get_mut`]) are never checked: keep a checksum in your
//! own pages if you need one.
//!
//! The on-disk format and the commit protocol are specified in
//! [FORMAT.md](https://github.com/mappedpages/mappedpages/blob/main/FORMAT.md).
//!
//! # Logging
//! An open that falls back to an older commit (the newest was torn by a
//! crash or damaged) logs a warning through the [`log`](https://docs.rs/log)
//! facade, besides saying so in [`Pager::recovery`].
//!
//! # Features
//! - `async`: `*_async` versions of the committing methods, for Tokio.
//! - `cli`: the `mappedpages` command-line tool (`info`, `check`, `dump`,
//!   `pages`, `copy`).
//! - `fault-injection`: the `fault` module, a hook at the I/O seam, for
//!   crash-consistency tests.
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
// docs.rs builds with every feature; each feature-gated item says which it needs.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod concurrent;
mod copy;
mod engine;
mod error;
#[cfg(feature = "fault-injection")]
#[cfg_attr(docsrs, doc(cfg(feature = "fault-injection")))]
pub mod fault;
#[cfg(not(feature = "fault-injection"))]
mod fault;
mod format;
pub mod guide;
pub mod inspect;
mod io;
mod live_reader;
mod options;
mod page;
mod page_hash;
mod pager;
mod protected;
mod read_only;
mod snapshot;
mod sub_page;
mod sub_page_allocator;
mod traits;
mod transaction;
// After `pager`, so that rustdoc lists `create` and `open` first on the
// `Pager` page, then the reads by id, then the `*_async` methods.
mod by_id;
#[cfg(feature = "async")]
mod nonblocking;

pub use crate::concurrent::{ConcurrentPager, WriteGuard};
pub use crate::engine::{
    Durability, RecoveryReport, DEFAULT_MAX_GROWTH_STEP, DEFAULT_SHRINK_THRESHOLD,
    DEFAULT_TRANSACTION_MEMORY, MIN_GROWTH_STEP,
};
pub use crate::error::{ConcurrentError, MappedPageError, Result};
pub use crate::live_reader::{LiveReader, ReaderInfo};
pub use crate::options::{PagerOptions, DEFAULT_INITIAL_PAGES};
pub use crate::page::{MappedPage, PageId};
pub use crate::pager::{AllocatedPageIter, AllocatedProtectedPageIter, Pager};
pub use crate::protected::{ProtectedPageId, ProtectedPageWriter};
pub use crate::read_only::ReadOnlyPager;
pub use crate::snapshot::Snapshot;
pub use crate::sub_page::SubPage;
pub use crate::sub_page_allocator::{SubPageAllocator, SubPageId};
pub use crate::traits::{BulkPageAllocator, PageAllocator, PageHandle};
pub use crate::transaction::{PageSet, Transaction};

/// The README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

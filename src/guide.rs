//! A guided tour of the API, one runnable example per topic.
//!
//! Every example here is compiled and run as a test. They are the examples
//! of the 0.2 documentation of this crate, kept as they were apart from a
//! temporary file instead of `data.bin` (behind hidden `# ` lines) and a
//! `main` where an `.await` needs one, so code written for 0.2 keeps working.
//! The section on transactions is new in 0.3.
//!
//! # File layout
//!
//! ```text
//! Page 0  — Superblock  (magic, format version, page size, checksum; written
//!                        once by create, never rewritten)
//! Page 1  — Root A      (generation, file length, the tops of the free-space
//!                        bitmap tree and the protected-directory tree, a log
//!                        of the changes since their last checkpoint, checksum)
//! Page 2  — Root B      (same layout: each commit writes the copy that does
//!                        not hold the newest durable root)
//! Page 3+ — Data pages  (regular pages, the two copies of every protected
//!                        page, the pages of both trees, free pages)
//! ```
//!
//! The free-space bitmap and the protected-page directory do not live in the
//! root pages: each is a tree of ordinary pages whose parents hold their
//! checksums, so the root's own checksum covers every byte it depends on. A
//! commit appends its change to the log in the root and writes that root with
//! one write (and, in [`Durability::Immediate`](crate::Durability), one sync);
//! when the log is full, the commit first writes the changed leaves of the
//! trees and their ancestors to free pages. Open takes the newest root whose
//! checks all hold, and falls back to the other one otherwise.
//!
//! The page size is a permanent property of the file: it is written when the
//! file is created and checked on every open. The byte-level format and the
//! commit protocol are specified in `FORMAT.md`.
//!
//! # Running out of disk space
//!
//! The file grows in steps as pages are allocated: an eighth of its length,
//! at least 4 MiB, at most `PagerOptions::max_growth_step` (1 GiB by
//! default); a call that needs more grows once, by what it needs. When a
//! step does not fit
//! on the disk, the pager grows by the least the call needs; when that does
//! not fit either, the call returns an `Io` error (kind `StorageFull`) and
//! changes nothing: the file keeps its length, the pager stays usable, and
//! the same call works once there is space. Freeing pages never needs more
//! free space than the few metadata pages its commit writes, so a full disk
//! does not stop a program from freeing what it no longer uses.
//!
//! # Installation
//!
//! ```toml
//! [dependencies]
//! mappedpages = "0.3"
//! ```
//!
//! # Creating and opening a pager
//!
//! The page size is a const generic of [`Pager`](crate::Pager): a power of two of at least
//! 1024, both checked at compile time. A pager locks its file, so the first
//! pager is dropped before the file is opened again.
//!
//! ```
//! # #![allow(unused_mut)]
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.bin");
//! use mappedpages::Pager;
//!
//! // Create a new file with 4096-byte pages.
//! let mut pager = Pager::<4096>::create(&path)?;
//! # drop(pager);
//!
//! // Open an existing file — returns InvalidPageSize if the on-disk size differs.
//! let mut pager = Pager::<4096>::open(&path)?;
//! # assert_eq!(pager.page_size(), 4096);
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! # Allocating and accessing pages
//!
//! [`PageId<PAGE_SIZE>`](crate::PageId) is a handle typed by the page size of
//! the pager that made it.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.bin");
//! use mappedpages::{Pager, PageId};
//!
//! let mut pager = Pager::<4096>::create(&path)?;
//!
//! // Allocate a new page.
//! let id: PageId<4096> = pager.alloc()?;
//!
//! // Write to the page — requires &mut Pager.
//! {
//!     let page = id.get_mut(&mut pager)?;
//!     page.as_bytes_mut().fill(0xAB);
//! } // mutable borrow released here
//!
//! // Read from the page — requires &Pager.
//! {
//!     let page = id.get(&pager)?;
//!     println!("{:?}", &page.as_bytes()[..4]);
//! }
//!
//! // Free the page when done.
//! pager.free(id)?;
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! # Protected (crash-consistent) pages
//!
//! A write to a protected page is staged and becomes visible only on
//! [`commit`](crate::ProtectedPageWriter::commit); dropping the writer
//! discards it.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.bin");
//! use mappedpages::{Pager, ProtectedPageId};
//!
//! let mut pager = Pager::<4096>::create(&path)?;
//!
//! // Allocate a protected page.
//! let id: ProtectedPageId<4096> = pager.alloc_protected()?;
//!
//! // Stage a write.
//! {
//!     let mut writer = id.get_mut(&mut pager)?;
//!     writer.page_mut().as_bytes_mut().fill(0xFF);
//!     writer.commit()?; // atomically makes the write durable
//! }
//!
//! // Read the active copy.
//! {
//!     let page = id.get(&pager)?;
//!     assert_eq!(page.as_bytes()[0], 0xFF);
//! }
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! # Transactions
//!
//! A [`Transaction`](crate::Transaction), from
//! [`Pager::transaction`](crate::Pager::transaction), groups any number of
//! allocations, frees, page writes and protected-page writes into one atomic
//! commit: after a crash, a reopen shows all of it or none of it.
//!
//! - **Copy-on-write.** [`get_mut`](crate::Transaction::get_mut) writes only
//!   pages the transaction allocated; a committed page gives
//!   `CommittedPage`, so a crash can never leave one half rewritten. Write
//!   the new version to a fresh page, free the old one, and repoint your
//!   root with [`write_protected`](crate::Transaction::write_protected),
//!   which starts from the root's committed bytes.
//! - **One sync per commit** with `Durability::Immediate`: the commit lists
//!   every page the transaction wrote with its checksum, so those pages and
//!   the commit's root reach the disk with the same sync. (One more when the
//!   file must grow for the commit, and for the first commit after `open`,
//!   which first makes the root that `open` found durable.)
//! - **Rollback on drop.** A transaction dropped without
//!   [`commit`](crate::Transaction::commit) (or given to `rollback`) undoes
//!   everything it did; an error inside it changes nothing and leaves it
//!   usable.
//! - **Several pages at once.** [`pages`](crate::Transaction::pages) returns
//!   a [`PageSet`](crate::PageSet) that lends any allocated page readable and
//!   pages of this transaction writable, together, each one way only: read
//!   the old version while filling the new one, without a copy.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.bin");
//! use mappedpages::{MappedPageError, Pager};
//!
//! let mut pager = Pager::<4096>::create(&path)?;
//! let root = pager.alloc_protected()?;
//! let old = pager.alloc()?;
//! old.get_mut(&mut pager)?.as_bytes_mut().fill(1);
//! pager.sync()?;
//!
//! let syncs = pager.sync_count();
//! let mut txn = pager.transaction()?;
//! assert!(matches!(txn.get_mut(old), Err(MappedPageError::CommittedPage { .. })));
//! let new = txn.alloc()?;
//! {
//!     let pages = txn.pages();
//!     let (from, to) = (pages.get(old)?, pages.get_mut(new)?);
//!     to.as_bytes_mut().copy_from_slice(from.as_bytes());
//!     to.as_bytes_mut()[0] = 2;
//! }
//! txn.free(old)?;
//! txn.write_protected(root)?.as_bytes_mut()[..8].copy_from_slice(&new.0.to_le_bytes());
//! txn.commit()?;
//! assert_eq!(pager.sync_count() - syncs, 1); // the page, the free and the root
//!
//! {
//!     let mut txn = pager.transaction()?;
//!     txn.free(new)?;
//!     txn.write_protected(root)?.as_bytes_mut().fill(0);
//! } // dropped: rolled back
//! assert_eq!(new.get(&pager)?.as_bytes()[..2], [2, 1]);
//! assert_eq!(root.get(&pager)?.as_bytes()[..8], new.0.to_le_bytes());
//! assert!(old.get(&pager).is_err());
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! **The no-sync mode.** With `Durability::Deferred` a commit makes no sync
//! at all. It is still atomic, and a killed process loses nothing (the page
//! cache keeps it); a power loss may take back the commits since the last
//! sync, never part of one. [`Pager::sync`](crate::Pager::sync) makes
//! everything before it durable, and so does dropping the pager.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.bin");
//! use mappedpages::{Durability, Pager};
//!
//! let mut pager = Pager::<4096>::options()
//!     .durability(Durability::Deferred)
//!     .create(&path)?;
//! let syncs = pager.sync_count();
//! for byte in 0..10 {
//!     let mut txn = pager.transaction()?;
//!     let id = txn.alloc()?;
//!     txn.get_mut(id)?.as_bytes_mut().fill(byte);
//!     txn.commit()?;
//! }
//! assert_eq!(pager.sync_count(), syncs); // ten commits, no sync
//! pager.sync()?; // all ten are durable now
//! # assert_eq!(pager.allocated_page_count(), 10);
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! `examples/kv_store.rs` applies every batch of a small key-value store as
//! one such transaction.
//!
//! # `PageAllocator` and `BulkPageAllocator` traits
//!
//! [`PageId`](crate::PageId), [`ProtectedPageId`](crate::ProtectedPageId)
//! and [`SubPageId`](crate::SubPageId) implement
//! [`PageHandle`](crate::PageHandle) for their allocators; [`Pager`](crate::Pager)
//! implements [`PageAllocator`](crate::PageAllocator) for the first two and
//! [`SubPageAllocator`](crate::SubPageAllocator) for the third. Reading is
//! `PageHandle::get`; writing is `PageHandle::get_mut`, whose return type
//! [`PageHandle::Writer`](crate::PageHandle::Writer) is `&mut MappedPage`
//! for pages written in place and a `ProtectedPageWriter` for protected
//! pages.
//!
//! `Pager`'s inherent `alloc` (regular pages) wins over the trait method in
//! `pager.alloc()`, so generic code calls the trait by its path:
//!
//! ```
//! use mappedpages::{PageAllocator, PageHandle, Pager, PageId};
//!
//! fn fill_pages<H, const N: usize>(pager: &mut Pager<N>, n: usize) -> Vec<H>
//! where
//!     H: PageHandle<Pager<N>>,
//!     Pager<N>: PageAllocator<H>,
//! {
//!     (0..n).map(|_| PageAllocator::alloc(pager).unwrap()).collect()
//! }
//! # let dir = tempfile::tempdir()?;
//! # let mut pager = Pager::<4096>::create(dir.path().join("data.bin"))?;
//! # let regular: Vec<PageId<4096>> = fill_pages(&mut pager, 3);
//! # let protected: Vec<mappedpages::ProtectedPageId<4096>> = fill_pages(&mut pager, 2);
//! # assert_eq!(pager.iter_allocated_pages().collect::<Vec<_>>(), regular);
//! # assert_eq!(pager.iter_allocated_protected_pages().collect::<Vec<_>>(), protected);
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! [`BulkPageAllocator<H>`](crate::BulkPageAllocator) extends
//! `PageAllocator<H>` with all-or-nothing batch calls; `Pager` implements it
//! for both handle types and `SubPageAllocator` for sub-pages:
//!
//! ```
//! use mappedpages::{BulkPageAllocator, PageHandle};
//!
//! fn load_bulk<A, H>(allocator: &mut A, n: usize) -> Vec<H>
//! where
//!     H: PageHandle<A>,
//!     A: BulkPageAllocator<H>,
//! {
//!     allocator.alloc_bulk(n).unwrap()
//! }
//! # use mappedpages::{Pager, PageId, ProtectedPageId, SubPageAllocator, SubPageId};
//! # let dir = tempfile::tempdir()?;
//! # let mut pager = Pager::<4096>::create(dir.path().join("data.bin"))?;
//! # let regular: Vec<PageId<4096>> = load_bulk(&mut pager, 10);
//! # let protected: Vec<ProtectedPageId<4096>> = load_bulk(&mut pager, 3);
//! # assert_eq!((regular.len(), protected.len()), (10, 3));
//! # let mut sub = SubPageAllocator::<4096, 512>::new(pager);
//! # let subs: Vec<SubPageId<4096, 512>> = load_bulk(&mut sub, 20);
//! # assert_eq!(subs.len(), 20);
//! # assert_eq!(sub.parent_page_count(), 3);
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! # Sub-page allocation
//!
//! **Durable sub-pages** ([`SubPage<SIZE>`](crate::SubPage)) are the ones to
//! build on: allocated, written and freed inside a transaction, committed
//! with it, recorded in the file and read through snapshots. A committed
//! sub-page is rewritten copy-on-write, as a page is:
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.bin");
//! use mappedpages::{Pager, SubPage};
//!
//! let mut pager = Pager::<4096>::create(&path)?;
//! let mut txn = pager.transaction()?;
//! let v1: SubPage<512> = txn.alloc_sub_page()?;
//! txn.sub_page_mut(v1)?.fill(1);
//! txn.commit()?;
//!
//! let mut txn = pager.transaction()?;
//! let v2 = txn.alloc_sub_page::<512>()?;
//! let old = txn.sub_page(v1)?.to_vec();
//! txn.sub_page_mut(v2)?.copy_from_slice(&old);
//! txn.sub_page_mut(v2)?[0] = 2;
//! txn.free_sub_page(v1)?;
//! txn.commit()?; // both, or neither, after a crash
//! drop(pager);
//!
//! let pager = Pager::<4096>::open(&path)?;
//! assert_eq!(pager.iter_sub_pages::<512>().collect::<Vec<_>>(), [v2]);
//! assert_eq!(pager.sub_page(v2)?[..2], [2, 1]);
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! The 0.2 allocator stays for code written against it:
//! [`SubPageAllocator<PARENT_SIZE, SUB_SIZE>`](crate::SubPageAllocator) wraps
//! a `Pager<PARENT_SIZE>`, cuts each page it checks out into
//! `PARENT_SIZE / SUB_SIZE` sub-pages (at most 64), and hands them out as
//! [`SubPageId`](crate::SubPageId)s through the same traits. A free sub-page
//! is found in O(1). A handle from another allocator, or one whose sub-page
//! was freed, is an error.
//!
//! **The sub-allocation state is in memory only.** The sub-pages' bytes live
//! in ordinary regular pages, but which slots are used is not written to the
//! file: after a restart, rebuild it from your own records with
//! [`SubPageAllocator::restore`](crate::SubPageAllocator::restore), then
//! [`finish_restore`](crate::SubPageAllocator::finish_restore).
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.bin");
//! use mappedpages::{PageAllocator, PageHandle, Pager, SubPageAllocator};
//!
//! // Wrap a pager; no big pages are checked out yet.
//! let pager = Pager::<4096>::create(&path)?;
//! let mut sub = SubPageAllocator::<4096, 512>::new(pager);
//!
//! // Each sub-page is 512 bytes; 8 fit in one 4096-byte big page.
//! let id = sub.alloc()?;                                   // SubPageId<4096, 512>
//! sub.get_mut(id)?.as_bytes_mut().fill(0xAB);             // write 512 bytes
//! assert_eq!(id.get(&sub)?.len(), 512);
//!
//! sub.free(id)?;   // when all 8 sub-slots in a big page are freed,
//!                  // the big page is returned to the inner pager
//! # assert_eq!(sub.pager().allocated_page_count(), 0);
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! `sub.get_mut(id)` is the same as `id.get_mut(&mut sub)` (and as
//! `sub.alloc_mut(id)`, its 0.2 name, deprecated because it allocates
//! nothing). Recover the
//! inner pager when you are done:
//!
//! ```
//! # use mappedpages::{Pager, SubPageAllocator};
//! # let dir = tempfile::tempdir()?;
//! # let sub = SubPageAllocator::<4096, 512>::new(Pager::<4096>::create(dir.path().join("data.bin"))?);
//! let pager: Pager<4096> = sub.into_pager();
//! # drop(pager);
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! # Async I/O Support
//!
//! With the `async` feature, `Pager` has an `*_async` twin of every
//! committing method: `alloc_async`, `free_async`, `alloc_bulk_async`,
//! `free_bulk_async`, `alloc_protected_async`, `free_protected_async`,
//! `alloc_protected_bulk_async`, `free_protected_bulk_async`, and
//! `sync_async`; and a transaction has `commit_async`.
//!
//! ```toml
//! [dependencies]
//! mappedpages = { version = "0.3", features = ["async"] }
//! tokio = { version = "1", features = ["full"] }
//! ```
//!
#![cfg_attr(feature = "async", doc = "```")]
#![cfg_attr(not(feature = "async"), doc = "```ignore")]
//! use mappedpages::Pager;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! #   let dir = tempfile::tempdir()?;
//! #   let path = dir.path().join("data.bin");
//!     let mut pager = Pager::<4096>::create(&path)?;
//!
//!     // Allocate asynchronously
//!     let id = pager.alloc_async().await?;
//!
//!     // Use the page (synchronous access)
//!     {
//!         let page = id.get_mut(&mut pager)?;
//!         page.as_bytes_mut().fill(0xAB);
//!     }
//!
//!     // Free asynchronously
//!     pager.free_async(id).await?;
//!
//!     Ok(())
//! }
//! ```
//!
//! **Where the blocking work runs.** Growing the file and syncing it block
//! the calling thread. Each `*_async` method calls its synchronous twin
//! through one helper that keeps this work off the async worker where the
//! runtime allows it:
//!
//! - On a tokio **multi-thread** runtime it runs the call inside
//!   `tokio::task::block_in_place`: the worker hands its queue to a new
//!   worker thread before blocking, so the runtime's other tasks keep
//!   running while the call syncs.
//! - On a tokio **current-thread** runtime (where `block_in_place` panics),
//!   or outside any tokio runtime, it runs the call inline. Such a runtime
//!   has a single thread, so its other tasks wait for the call to finish.
//!   Use the multi-thread runtime if that matters.
//!
//! The methods borrow the pager (`&mut self`), so the call cannot be sent to
//! `spawn_blocking`, which takes only `'static` work: it would need to own
//! the pager. `block_in_place` keeps the borrow and the familiar signatures.
//! One limit remains: if code running inside a current-thread runtime has
//! entered the handle of a *multi-thread* runtime (`Handle::enter`), tokio
//! reports a multi-thread runtime but `block_in_place` panics; do not call
//! these methods there.
//!
//! **Dropping the future.** The whole call runs during the future's first
//! poll; the future has no await point inside the call. A future dropped
//! before it is polled does nothing. Once polled it completes: `select!` or a
//! timeout cannot stop it halfway, and the allocation commit it makes is
//! atomic in any case (a crash leaves the state before or after it).
//!
//! # Bulk operations
//!
//! `alloc_bulk` and `free_bulk` allocate or free many regular pages in one
//! commit. `free_bulk` checks every id first: one bad id and nothing changes.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.bin");
//! use mappedpages::Pager;
//!
//! let mut pager = Pager::<4096>::create(&path)?;
//!
//! // Allocate 10 pages in one commit.
//! let ids = pager.alloc_bulk(10)?;
//! assert_eq!(ids.len(), 10);
//!
//! // Free all 10 pages in one commit.
//! pager.free_bulk(ids)?;
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! `alloc_protected_bulk` and `free_protected_bulk` do the same for protected
//! pages, also in one commit each.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let mut pager = mappedpages::Pager::<4096>::create(dir.path().join("data.bin"))?;
//! let pids = pager.alloc_protected_bulk(5)?;
//! pager.free_protected_bulk(pids)?;
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```
//!
//! Their async twins, with the `async` feature:
//!
#![cfg_attr(feature = "async", doc = "```")]
#![cfg_attr(not(feature = "async"), doc = "```ignore")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), mappedpages::MappedPageError> {
//! # let dir = tempfile::tempdir()?;
//! # let mut pager = mappedpages::Pager::<4096>::create(dir.path().join("data.bin"))?;
//! let ids = pager.alloc_bulk_async(10).await?;
//! pager.free_bulk_async(ids).await?;
//!
//! let pids = pager.alloc_protected_bulk_async(5).await?;
//! pager.free_protected_bulk_async(pids).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Iterating allocated pages
//!
//! `iter_allocated_pages` yields the allocated regular pages;
//! `iter_allocated_protected_pages` yields the protected pages in use. The
//! two never overlap, and neither shows the reserved or internal pages.
//!
//! ```
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("data.bin");
//! use mappedpages::Pager;
//!
//! let mut pager = Pager::<4096>::create(&path)?;
//! let _reg  = pager.alloc_bulk(3)?;
//! let _prot = pager.alloc_protected_bulk(2)?;
//!
//! // Iterate regular pages only.
//! for id in pager.iter_allocated_pages() {
//!     let page = id.get(&pager)?;
//!     println!("regular page {}: first byte = {}", id.0, page.as_bytes()[0]);
//! }
//!
//! // Iterate protected pages only.
//! for pid in pager.iter_allocated_protected_pages() {
//!     let page = pid.get(&pager)?;
//!     println!("protected page {}: first byte = {}", pid.0, page.as_bytes()[0]);
//! }
//! # Ok::<(), mappedpages::MappedPageError>(())
//! ```

//! `ConcurrentPager`: one writer at a time, and readers that never wait for
//! it (contract R1, R6).
//!
//! The writer side is a mutex around the [`Pager`]; the reader side is the
//! [`Snapshot`] of the state the last writer left, which a reader clones
//! (an `Arc` clone) under a lock that is only ever held for that clone or
//! for the writer to put a newer snapshot in its place. A reader therefore
//! waits for no commit, no sync and no growth: it reads the last published
//! state while the writer works on the next.
//!
//! In async code, `read` can be called from any task (it never waits on the
//! writer's work, and the snapshot it returns is `Send + Sync + 'static`);
//! `write` waits for the current writer, so call it where blocking is fine
//! (`spawn_blocking`, `block_in_place`) or use `try_write`.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, TryLockError};

use crate::engine::{Flight, GroupSync, Wait};
use crate::error::{ConcurrentError, MappedPageError, Result};
use crate::pager::Pager;
use crate::snapshot::Snapshot;

struct Shared<const PAGE_SIZE: usize> {
    writer: Mutex<Pager<PAGE_SIZE>>,
    latest: RwLock<Snapshot<PAGE_SIZE>>,
}

/// What a grouped write left to wait for: its outcome, the generation its
/// commits reached, and the group syncs to wait on.
pub(crate) struct Grouped<T> {
    outcome: Result<T>,
    pub(crate) generation: u64,
    pub(crate) flight: Arc<Flight>,
    /// The sync to run, when the write found none running.
    pub(crate) sync: Option<GroupSync>,
}

impl<T> Grouped<T> {
    /// The outcome of the write, once the wait for its sync ended with
    /// `end` (its commits are durable, or the sync failed).
    pub(crate) fn outcome_after(self, end: Wait) -> Result<T> {
        match end {
            Wait::Failed => Err(MappedPageError::Unavailable),
            _ => self.outcome,
        }
    }
}

/// A [`Pager`] shared between threads: one writer at a time, and any number
/// of readers that read the last published commit without waiting for the
/// writer. `Clone + Send + Sync`; clones share the one pager.
///
/// ```
/// use mappedpages::{ConcurrentPager, Pager};
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.bin");
/// let shared = ConcurrentPager::new(Pager::<4096>::create(&path)?)?;
/// let id = {
///     let mut writer = shared.write()?;
///     let mut txn = writer.transaction()?;
///     let id = txn.alloc()?;
///     txn.get_mut(id)?.as_bytes_mut()[0] = 42;
///     txn.commit()?;
///     id
/// }; // the writer's commits are published when the guard is dropped
///
/// let reader = {
///     let shared = shared.clone();
///     std::thread::spawn(move || shared.read().map(|s| s.get(id).map(|p| p.as_bytes()[0])))
/// };
/// assert_eq!(reader.join().unwrap()??, 42);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ConcurrentPager<const PAGE_SIZE: usize> {
    shared: Arc<Shared<PAGE_SIZE>>,
}

impl<const PAGE_SIZE: usize> Clone for ConcurrentPager<PAGE_SIZE> {
    fn clone(&self) -> Self {
        ConcurrentPager {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<const PAGE_SIZE: usize> fmt::Debug for ConcurrentPager<PAGE_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConcurrentPager")
            .field("page_size", &PAGE_SIZE)
            .finish_non_exhaustive()
    }
}

fn lock_error<T>(err: TryLockError<T>) -> ConcurrentError {
    match err {
        TryLockError::Poisoned(_) => ConcurrentError::Poisoned,
        TryLockError::WouldBlock => ConcurrentError::WouldBlock,
    }
}

impl<const PAGE_SIZE: usize> ConcurrentPager<PAGE_SIZE> {
    /// Shares `pager`; readers start at its last commit.
    ///
    /// # Errors
    /// `Unavailable` if the pager is, after an earlier I/O failure.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{ConcurrentPager, Pager};
    /// let mut pager = Pager::<4096>::create(&path)?;
    /// let id = pager.alloc()?;
    /// let shared = ConcurrentPager::new(pager)?;
    /// assert!(shared.read()?.get(id).is_ok()); // readers start at the last commit
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn new(pager: Pager<PAGE_SIZE>) -> Result<Self> {
        let latest = RwLock::new(pager.snapshot()?);
        Ok(ConcurrentPager {
            shared: Arc::new(Shared {
                writer: Mutex::new(pager),
                latest,
            }),
        })
    }

    /// The pager back, if this is the last clone; else this handle back.
    /// A pager whose writer panicked is returned too (see
    /// [`ConcurrentError::Poisoned`]).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{ConcurrentPager, Pager};
    /// let shared = ConcurrentPager::new(Pager::<4096>::create(&path)?)?;
    /// let other = shared.clone();
    /// let shared = shared.into_inner().expect_err("another handle is alive");
    /// drop(other);
    /// let pager: Pager<4096> = shared.into_inner().expect("the last handle");
    /// # drop(pager);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_inner(self) -> std::result::Result<Pager<PAGE_SIZE>, Self> {
        match Arc::try_unwrap(self.shared) {
            Ok(shared) => {
                let Shared { writer, latest } = shared;
                drop(latest);
                let mut pager = writer.into_inner().unwrap_or_else(|p| p.into_inner());
                // A writer that panicked inside `write_and_sync` left it set.
                pager.core_mut().set_grouped(false);
                Ok(pager)
            }
            Err(shared) => Err(ConcurrentPager { shared }),
        }
    }

    /// The writer side, waiting for the writer before (not for readers).
    /// Commits made through the guard are published to readers when it is
    /// dropped.
    ///
    /// # Errors
    /// `Poisoned` if a writer panicked while holding it.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{ConcurrentPager, Pager};
    /// let shared = ConcurrentPager::new(Pager::<4096>::create(&path)?)?;
    /// let id = shared.write()?.alloc()?; // published when the guard drops
    /// assert!(shared.read()?.get(id).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write(&self) -> std::result::Result<WriteGuard<'_, PAGE_SIZE>, ConcurrentError> {
        let pager = self
            .shared
            .writer
            .lock()
            .map_err(|_| ConcurrentError::Poisoned)?;
        Ok(self.guard(pager))
    }

    /// The writer side, if no other writer holds it.
    ///
    /// # Errors
    /// `WouldBlock` if another writer holds it, `Poisoned` as for
    /// [`ConcurrentPager::write`].
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{ConcurrentPager, Pager};
    /// let shared = ConcurrentPager::new(Pager::<4096>::create(&path)?)?;
    /// if let Ok(mut writer) = shared.try_write() {
    ///     writer.alloc()?;
    /// }
    /// assert_eq!(shared.read()?.allocated_page_count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_write(&self) -> std::result::Result<WriteGuard<'_, PAGE_SIZE>, ConcurrentError> {
        let pager = self.shared.writer.try_lock().map_err(lock_error)?;
        Ok(self.guard(pager))
    }

    /// Runs `f` with the writer side, then returns once everything `f`
    /// committed is durable, waiting without the writer side: commits of
    /// many threads share one sync. While one sync runs, the next threads'
    /// commits are applied (and published to readers); the next sync makes
    /// them all durable at once. Commits become durable in the order they
    /// were made; a call that returned `Ok` is in every crash image taken
    /// after it returned. One thread alone pays what an
    /// [`Immediate`](crate::Durability::Immediate) commit costs: one sync.
    ///
    /// Inside `f` commits do not sync, whatever the pager's durability; if
    /// `f` fails after committing, what it committed is made durable before
    /// its error is returned.
    ///
    /// # Errors
    /// The error of `f`; `Concurrent` as for [`ConcurrentPager::write`];
    /// `Unavailable` if the sync that would have covered the commits failed
    /// (the pager is then unavailable: reopen the file, which holds every
    /// commit a call returned `Ok` for).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{ConcurrentPager, Pager};
    /// let shared = ConcurrentPager::new(Pager::<4096>::create(&path)?)?;
    /// let threads: Vec<_> = (0..4u8)
    ///     .map(|i| {
    ///         let shared = shared.clone();
    ///         std::thread::spawn(move || {
    ///             shared.write_and_sync(|pager| {
    ///                 let mut txn = pager.transaction()?;
    ///                 let id = txn.alloc()?;
    ///                 txn.get_mut(id)?.as_bytes_mut()[0] = i;
    ///                 txn.commit()?;
    ///                 Ok(id)
    ///             }) // durable when it returns
    ///         })
    ///     })
    ///     .collect();
    /// for thread in threads {
    ///     thread.join().unwrap()?;
    /// }
    /// assert_eq!(shared.read()?.allocated_page_count(), 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_and_sync<T>(
        &self,
        f: impl FnOnce(&mut Pager<PAGE_SIZE>) -> Result<T>,
    ) -> Result<T> {
        let mut grouped = self.apply_grouped(f)?;
        if let Some(sync) = grouped.sync.take() {
            sync.run();
        }
        loop {
            match grouped.flight.wait_for(grouped.generation) {
                Wait::Lead => {
                    if let Some(sync) = self.start_group_sync(grouped.generation)? {
                        sync.run();
                    }
                }
                end => return grouped.outcome_after(end),
            }
        }
    }

    /// Runs `f` with the writer side, its commits grouped (see
    /// `engine/group.rs`); the first half of
    /// [`ConcurrentPager::write_and_sync`] and of its async twin.
    pub(crate) fn apply_grouped<T>(
        &self,
        f: impl FnOnce(&mut Pager<PAGE_SIZE>) -> Result<T>,
    ) -> Result<Grouped<T>> {
        let mut writer = self.write()?;
        writer.core_mut().set_grouped(true);
        let outcome = f(&mut writer);
        let core = writer.core_mut();
        core.set_grouped(false);
        let generation = core.generation();
        // With no sync running, this call leads the next one, started under
        // the lock it holds already.
        let sync = match core.start_group_sync(generation) {
            Ok(sync) => sync,
            // A pager `f` left unavailable: `f`'s own error says why.
            Err(err) => return Err(outcome.err().unwrap_or(err)),
        };
        Ok(Grouped {
            outcome,
            generation,
            flight: core.flight(),
            sync,
        })
    }

    /// Starts the group sync that makes the commit of `generation` durable,
    /// if it is not and none runs.
    pub(crate) fn start_group_sync(&self, generation: u64) -> Result<Option<GroupSync>> {
        self.write()?.core_mut().start_group_sync(generation)
    }

    fn guard<'a>(&'a self, pager: MutexGuard<'a, Pager<PAGE_SIZE>>) -> WriteGuard<'a, PAGE_SIZE> {
        WriteGuard {
            pager,
            latest: &self.shared.latest,
        }
    }

    /// A snapshot of the last published commit. Never waits for the writer.
    ///
    /// # Errors
    /// `Poisoned` only if a thread panicked while replacing the snapshot,
    /// which no code of this crate does.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{ConcurrentPager, Pager};
    /// let shared = ConcurrentPager::new(Pager::<4096>::create(&path)?)?;
    /// let before = shared.read()?;
    /// let mut writer = shared.write()?;
    /// writer.alloc()?;
    /// writer.publish();
    /// assert_eq!(before.allocated_page_count(), 0); // a snapshot never changes
    /// assert_eq!(shared.read()?.allocated_page_count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read(&self) -> std::result::Result<Snapshot<PAGE_SIZE>, ConcurrentError> {
        self.shared
            .latest
            .read()
            .map(|latest| latest.clone())
            .map_err(|_| ConcurrentError::Poisoned)
    }

    /// [`ConcurrentPager::read`], without waiting even for the instant the
    /// writer replaces the snapshot.
    ///
    /// # Errors
    /// `WouldBlock` at that instant; `Poisoned` as for `read`.
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{ConcurrentPager, Pager};
    /// let shared = ConcurrentPager::new(Pager::<4096>::create(&path)?)?;
    /// let snapshot = shared.try_read().or_else(|_| shared.read())?;
    /// assert_eq!(snapshot.allocated_page_count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_read(&self) -> std::result::Result<Snapshot<PAGE_SIZE>, ConcurrentError> {
        self.shared
            .latest
            .try_read()
            .map(|latest| latest.clone())
            .map_err(lock_error)
    }
}

/// The writer side of a [`ConcurrentPager`]: the [`Pager`], by `Deref`.
/// Dropping it publishes the state it leaves to readers.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::{ConcurrentPager, Pager};
/// let shared = ConcurrentPager::new(Pager::<4096>::create(&path)?)?;
/// let mut writer = shared.write()?;
/// let mut txn = writer.transaction()?; // any Pager method, through Deref
/// txn.alloc()?;
/// txn.commit()?;
/// drop(writer); // publishes
/// assert_eq!(shared.read()?.allocated_page_count(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct WriteGuard<'a, const PAGE_SIZE: usize> {
    pager: MutexGuard<'a, Pager<PAGE_SIZE>>,
    latest: &'a RwLock<Snapshot<PAGE_SIZE>>,
}

impl<const PAGE_SIZE: usize> fmt::Debug for WriteGuard<'_, PAGE_SIZE> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteGuard").finish_non_exhaustive()
    }
}

impl<const PAGE_SIZE: usize> Deref for WriteGuard<'_, PAGE_SIZE> {
    type Target = Pager<PAGE_SIZE>;

    fn deref(&self) -> &Pager<PAGE_SIZE> {
        &self.pager
    }
}

impl<const PAGE_SIZE: usize> DerefMut for WriteGuard<'_, PAGE_SIZE> {
    fn deref_mut(&mut self) -> &mut Pager<PAGE_SIZE> {
        &mut self.pager
    }
}

impl<const PAGE_SIZE: usize> WriteGuard<'_, PAGE_SIZE> {
    /// Publishes the pager's last commit to readers now, without dropping
    /// the guard (dropping it does the same).
    ///
    /// # Examples
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{ConcurrentPager, Pager};
    /// let shared = ConcurrentPager::new(Pager::<4096>::create(&path)?)?;
    /// let mut writer = shared.write()?;
    /// writer.alloc()?;
    /// assert_eq!(shared.read()?.allocated_page_count(), 0); // not yet published
    /// writer.publish();
    /// assert_eq!(shared.read()?.allocated_page_count(), 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn publish(&mut self) {
        let Ok(snapshot) = self.pager.snapshot() else {
            // An unavailable pager has nothing newer to show.
            return;
        };
        let replaced = match self.latest.write() {
            Ok(mut latest) if latest.generation() != snapshot.generation() => {
                Some(std::mem::replace(&mut *latest, snapshot))
            }
            _ => None,
        };
        // The old state is freed, if this was its last holder, after the
        // lock is released: readers wait for the swap only.
        drop(replaced);
    }
}

impl<const PAGE_SIZE: usize> Drop for WriteGuard<'_, PAGE_SIZE> {
    fn drop(&mut self) {
        self.publish();
    }
}

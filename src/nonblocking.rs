//! The `async` feature: `*_async` twins of the committing `Pager` methods,
//! of [`Transaction::commit`] and of
//! [`ConcurrentPager::write_and_sync`].
//!
//! Every method is one line: it hands its synchronous twin to [`off_worker`],
//! which keeps the blocking work (file growth, `msync`/`fsync`) off the tokio
//! worker thread where it can. See the crate's [guide](crate::guide#async-io-support)
//! for the strategy, its limits, and what dropping such a future does.

use tokio::runtime::{Handle, RuntimeFlavor};

use crate::concurrent::ConcurrentPager;
use crate::engine::{GroupSync, Wait};
use crate::error::Result;
use crate::page::PageId;
use crate::pager::Pager;
use crate::protected::ProtectedPageId;
use crate::transaction::Transaction;

/// Runs blocking `job` without holding up a tokio worker thread when that is
/// possible, and returns its result.
///
/// - On a multi-thread runtime, through `tokio::task::block_in_place`: the
///   worker hands its queued tasks to a fresh worker thread and becomes a
///   blocking-pool thread for the duration of `job`, so other tasks keep
///   running.
/// - On a current-thread runtime, where `block_in_place` panics, and outside
///   any tokio runtime: inline. A current-thread runtime has one thread, so
///   nothing could run on it during `job` anyway; the caller chose a runtime
///   that cannot overlap blocking work, and the future still completes.
///
/// `job` borrows the pager mutably, so it cannot go to `spawn_blocking`,
/// which needs `'static` work: that would take the pager by value.
fn off_worker<T>(job: impl FnOnce() -> T) -> T {
    match Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(job)
        }
        _ => job(),
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl<const PAGE_SIZE: usize> Pager<PAGE_SIZE> {
    /// [`Pager::alloc`], without blocking a multi-thread runtime's worker
    /// (see the [guide](crate::guide#async-io-support)). The whole call runs
    /// in the future's first poll: it is never left half done.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc_async().await?;
    /// pager.free_async(id).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Pager::alloc`].
    pub async fn alloc_async(&mut self) -> Result<PageId<PAGE_SIZE>> {
        off_worker(|| self.alloc())
    }

    /// [`Pager::free`], without blocking a multi-thread runtime's worker.
    ///
    /// # Errors
    /// As [`Pager::free`]: `DoubleFree`, `OutOfBounds`, `ReservedPage`,
    /// `NotAllocated`; nothing changes on error.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc_async().await?;
    /// pager.free_async(id).await?;
    /// assert_eq!(pager.allocated_page_count(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn free_async(&mut self, id: PageId<PAGE_SIZE>) -> Result<()> {
        off_worker(|| self.free(id))
    }

    /// [`Pager::alloc_bulk`], without blocking a multi-thread runtime's
    /// worker.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_bulk_async(10).await?;
    /// pager.free_bulk_async(ids).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Pager::alloc_bulk`].
    pub async fn alloc_bulk_async(&mut self, count: usize) -> Result<Vec<PageId<PAGE_SIZE>>> {
        off_worker(|| self.alloc_bulk(count))
    }

    /// [`Pager::free_bulk`], without blocking a multi-thread runtime's
    /// worker.
    ///
    /// # Errors
    /// As [`Pager::free_bulk`]; nothing changes on error.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_bulk_async(3).await?;
    /// pager.free_bulk_async(ids).await?;
    /// assert_eq!(pager.allocated_page_count(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn free_bulk_async(&mut self, ids: Vec<PageId<PAGE_SIZE>>) -> Result<()> {
        off_worker(|| self.free_bulk(ids))
    }

    /// [`Pager::alloc_protected`], without blocking a multi-thread runtime's
    /// worker.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc_protected_async().await?;
    /// assert_eq!(id.get(&pager)?.as_bytes()[0], 0);
    /// pager.free_protected_async(id).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Pager::alloc_protected`].
    pub async fn alloc_protected_async(&mut self) -> Result<ProtectedPageId<PAGE_SIZE>> {
        off_worker(|| self.alloc_protected())
    }

    /// [`Pager::free_protected`], without blocking a multi-thread runtime's
    /// worker.
    ///
    /// # Errors
    /// As [`Pager::free_protected`]; nothing changes on error.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc_protected_async().await?;
    /// pager.free_protected_async(id).await?;
    /// assert!(id.get(&pager).is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn free_protected_async(&mut self, id: ProtectedPageId<PAGE_SIZE>) -> Result<()> {
        off_worker(|| self.free_protected(id))
    }

    /// [`Pager::alloc_protected_bulk`], without blocking a multi-thread
    /// runtime's worker.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let pids = pager.alloc_protected_bulk_async(5).await?;
    /// pager.free_protected_bulk_async(pids).await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Pager::alloc_protected_bulk`].
    pub async fn alloc_protected_bulk_async(
        &mut self,
        count: usize,
    ) -> Result<Vec<ProtectedPageId<PAGE_SIZE>>> {
        off_worker(|| self.alloc_protected_bulk(count))
    }

    /// [`Pager::free_protected_bulk`], without blocking a multi-thread
    /// runtime's worker.
    ///
    /// # Errors
    /// As [`Pager::free_protected_bulk`]; nothing changes on error.
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let ids = pager.alloc_protected_bulk_async(2).await?;
    /// pager.free_protected_bulk_async(ids).await?;
    /// assert_eq!(pager.iter_allocated_protected_pages().count(), 0);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn free_protected_bulk_async(
        &mut self,
        ids: Vec<ProtectedPageId<PAGE_SIZE>>,
    ) -> Result<()> {
        off_worker(|| self.free_protected_bulk(ids))
    }

    /// [`Pager::sync`], without blocking a multi-thread runtime's worker.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let id = pager.alloc_async().await?;
    /// id.get_mut(&mut pager)?.as_bytes_mut().fill(0xAB);
    /// pager.sync_async().await?; // the bytes are durable now
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Pager::sync`].
    pub async fn sync_async(&mut self) -> Result<()> {
        off_worker(|| self.sync())
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl<const PAGE_SIZE: usize> Transaction<'_, PAGE_SIZE> {
    /// [`Transaction::commit`], without blocking a multi-thread runtime's
    /// worker. The whole commit runs in the future's first poll: a future
    /// dropped before it is polled drops the transaction, which rolls it
    /// back.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.bin");
    /// let mut pager = mappedpages::Pager::<4096>::create(&path)?;
    /// let mut txn = pager.transaction()?;
    /// let id = txn.alloc()?;
    /// txn.get_mut(id)?.as_bytes_mut().fill(0xAB);
    /// txn.commit_async().await?; // one sync for the page and its allocation
    /// assert_eq!(id.get(&pager)?.as_bytes()[0], 0xAB);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Transaction::commit`].
    pub async fn commit_async(self) -> Result<()> {
        off_worker(|| self.commit())
    }
}

/// Runs a group sync on tokio's blocking pool, or inline outside a runtime.
/// No await comes between starting a sync and this call, so a dropped
/// future cannot leave it unrun (and a `GroupSync` dropped unrun runs as it
/// drops); the blocking task runs to its end even if the future is dropped.
async fn run_group_sync(sync: GroupSync) {
    match Handle::try_current() {
        // `run` cannot panic: the join error is not possible.
        Ok(handle) => drop(handle.spawn_blocking(move || sync.run()).await),
        Err(_) => sync.run(),
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
impl<const PAGE_SIZE: usize> ConcurrentPager<PAGE_SIZE> {
    /// [`ConcurrentPager::write_and_sync`], awaiting the sync that covers
    /// its commits without blocking the runtime's threads: a waiter is woken
    /// when another call's sync ends, and a call that leads a sync runs it
    /// on tokio's blocking pool. `f` runs with the writer side, as in the
    /// synchronous twin, off the worker thread where it can (see the
    /// [guide](crate::guide#async-io-support)).
    ///
    /// Dropping the future after `f` ran leaves its commits made; they
    /// become durable with the next sync any caller leads.
    ///
    /// # Errors
    /// As [`ConcurrentPager::write_and_sync`].
    ///
    /// # Examples
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("data.pages");
    /// use mappedpages::{ConcurrentPager, Pager};
    /// let shared = ConcurrentPager::new(Pager::<4096>::create(&path)?)?;
    /// let id = shared
    ///     .write_and_sync_async(|pager| {
    ///         let mut txn = pager.transaction()?;
    ///         let id = txn.alloc()?;
    ///         txn.commit()?;
    ///         Ok(id)
    ///     })
    ///     .await?; // durable here
    /// assert!(shared.read()?.get(id).is_ok());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn write_and_sync_async<T>(
        &self,
        f: impl FnOnce(&mut Pager<PAGE_SIZE>) -> Result<T>,
    ) -> Result<T> {
        let mut grouped = off_worker(|| self.apply_grouped(f))?;
        if let Some(sync) = grouped.sync.take() {
            run_group_sync(sync).await;
        }
        loop {
            match grouped.flight.wait_for_async(grouped.generation).await {
                Wait::Lead => {
                    if let Some(sync) = off_worker(|| self.start_group_sync(grouped.generation))? {
                        run_group_sync(sync).await;
                    }
                }
                end => return grouped.outcome_after(end),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::off_worker;
    use std::sync::mpsc;
    use std::thread;
    use std::time::Duration;

    /// On a multi-thread runtime with a single worker, the job runs while
    /// another task makes progress: the worker was handed off, so the job is
    /// not holding it. Run inline, the job would wait in vain for that task.
    #[test]
    fn on_a_multi_thread_runtime_the_job_does_not_hold_the_worker() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        let ran_on = runtime.block_on(async move {
            let task = tokio::spawn(async move {
                let task_thread = thread::current().id();
                let job_thread = off_worker(|| {
                    let (tx, rx) = mpsc::channel();
                    handle.spawn(async move { tx.send(thread::current().id()).unwrap() });
                    let other = rx
                        .recv_timeout(Duration::from_secs(30))
                        .expect("another task ran while the job blocked");
                    (thread::current().id(), other)
                });
                (task_thread, job_thread)
            });
            task.await.unwrap()
        });
        let (task_thread, (job_thread, other_task_thread)) = ran_on;
        // The job ran on the task's own thread, which had stopped being a
        // worker: the other task ran on the replacement worker.
        assert_eq!(task_thread, job_thread);
        assert_ne!(job_thread, other_task_thread);
    }

    /// On a current-thread runtime the job runs inline, on the runtime's
    /// thread (`block_in_place` would panic there).
    #[test]
    fn on_a_current_thread_runtime_the_job_runs_inline() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let here = thread::current().id();
        let ran_on = runtime.block_on(async { off_worker(|| thread::current().id()) });
        assert_eq!(ran_on, here);
    }

    /// Outside any runtime the job runs inline.
    #[test]
    fn outside_a_runtime_the_job_runs_inline() {
        assert_eq!(
            off_worker(|| thread::current().id()),
            thread::current().id()
        );
    }
}

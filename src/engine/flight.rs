//! The state of group syncs (see `engine/group.rs`), shared by the pager
//! and the threads that wait on it: which commits are durable, whether a
//! sync runs, and what it makes durable.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::format::record::DirEntry;
use crate::io::DetachedSync;

#[derive(Debug, Default)]
pub(crate) struct Flight {
    pub(super) state: Mutex<FlightState>,
    pub(super) changed: Condvar,
    /// Wakes the waiters of `ConcurrentPager::write_and_sync_async`.
    #[cfg(feature = "async")]
    pub(super) notify: tokio::sync::Notify,
}

#[derive(Debug, Default)]
pub(super) struct FlightState {
    /// A leader is syncing now.
    pub(super) in_flight: bool,
    /// Every commit up to this generation is durable.
    pub(super) durable: u64,
    /// A group sync failed: nothing after `durable` will be.
    pub(super) failed: bool,
    /// A sync that ended and whose bookkeeping the pager has not applied
    /// yet: `Ok(())` or its error.
    pub(super) ended: Option<std::result::Result<(), String>>,
}

impl FlightState {
    /// What a waiter for the commit of `generation` does now; `None`:
    /// waits on.
    fn end_of_wait(&self, generation: u64) -> Option<Wait> {
        if self.durable >= generation {
            Some(Wait::Durable)
        } else if self.failed {
            Some(Wait::Failed)
        } else if !self.in_flight {
            Some(Wait::Lead)
        } else {
            None
        }
    }
}

/// What a waiter found.
pub(crate) enum Wait {
    /// Its commit is durable.
    Durable,
    /// A sync failed before reaching it.
    Failed,
    /// No sync runs and its commit is not durable: it should lead one.
    Lead,
}

impl Flight {
    pub(super) fn lock(&self) -> MutexGuard<'_, FlightState> {
        // The state is a few flags, valid after any panic.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the commit of `generation` is durable, a sync failed,
    /// or no sync runs (then the caller leads one).
    pub(crate) fn wait_for(&self, generation: u64) -> Wait {
        let mut state = self.lock();
        loop {
            if let Some(end) = state.end_of_wait(generation) {
                return end;
            }
            state = self.changed.wait(state).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// [`Flight::wait_for`] as a future, which waits without blocking its
    /// thread.
    #[cfg(feature = "async")]
    pub(crate) async fn wait_for_async(&self, generation: u64) -> Wait {
        loop {
            // Registered before the state is read, so that no change made
            // after the read is missed.
            let mut notified = std::pin::pin!(self.notify.notified());
            notified.as_mut().enable();
            if let Some(end) = self.lock().end_of_wait(generation) {
                return end;
            }
            notified.await;
        }
    }

    /// Every commit up to `generation` is durable (a sync made with the
    /// writer's lock held).
    pub(super) fn durable_through(&self, generation: u64) {
        let mut state = self.lock();
        state.durable = state.durable.max(generation);
        drop(state);
        self.wake_all();
    }

    pub(super) fn wake_all(&self) {
        self.changed.notify_all();
        #[cfg(feature = "async")]
        self.notify.notify_waiters();
    }
}

/// A sync started by [`Core::start_group_sync`], run without the writer's
/// lock.
#[must_use = "a group sync must be run, or the pager waits for it for ever"]
pub(crate) struct GroupSync {
    /// Taken by [`GroupSync::run`]; a group sync dropped without running
    /// runs as it is dropped, so that no waiter waits for ever.
    pub(super) sync: Option<DetachedSync>,
    pub(super) generation: u64,
    pub(super) flight: Arc<Flight>,
}

impl GroupSync {
    /// Syncs, and tells every waiter how it went.
    pub(crate) fn run(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        let Some(sync) = self.sync.take() else {
            return;
        };
        let outcome = sync.sync().map_err(|err| err.to_string());
        let mut state = self.flight.lock();
        state.in_flight = false;
        match &outcome {
            Ok(()) => state.durable = state.durable.max(self.generation),
            Err(_) => state.failed = true,
        }
        state.ended = Some(outcome);
        drop(state);
        self.flight.wake_all();
    }
}

impl Drop for GroupSync {
    fn drop(&mut self) {
        self.finish();
    }
}

/// What a running group sync makes durable, taken out of the journal when
/// it started.
#[derive(Debug)]
pub(super) struct Sealed {
    /// The generation of the root the sync makes durable.
    pub(super) generation: u64,
    /// The root slot that holds it.
    pub(super) slot: usize,
    /// The pages that root checks.
    pub(super) checked: HashSet<u64>,
    /// The check pages it names: stale once it is durable.
    pub(super) check_pages: Vec<u64>,
    /// The entries the durable root before it holds, for the slots changed
    /// since: a staged write must not overwrite their copies either until
    /// the sync is over.
    pub(super) entries: HashMap<u64, DirEntry>,
}

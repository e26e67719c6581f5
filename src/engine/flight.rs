//! The state of group syncs (see `engine/group.rs`), shared by the pager
//! and the threads that wait on it: which commits are durable, whether a
//! sync runs, and what it makes durable.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::Thread;

use crate::format::record::DirEntry;
use crate::io::DetachedSync;

#[derive(Debug, Default)]
pub(crate) struct Flight {
    pub(super) state: Mutex<FlightState>,
    /// Wakes the writer waiting in `Core::settle_flight` for a sync to end.
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
    /// The threads parked in [`Flight::wait_for`]. Each change wakes only
    /// those it concerns: the waiters whose commit it made durable, and one
    /// to lead the next sync; waking every waiter at every sync cost more
    /// than the commits themselves once many threads commit.
    waiters: Vec<Waiter>,
    /// The token of the next waiter registered.
    next_token: u64,
    /// The writer waits in `Core::settle_flight` for the sync to end.
    pub(super) writer_waiting: bool,
}

/// A thread parked until its commit is durable.
#[derive(Debug)]
struct Waiter {
    generation: u64,
    token: u64,
    thread: Thread,
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

    /// Registers the calling thread as waiting for `generation`; its token.
    fn register(&mut self, generation: u64) -> u64 {
        let token = self.next_token;
        self.next_token += 1;
        self.waiters.push(Waiter {
            generation,
            token,
            thread: std::thread::current(),
        });
        token
    }

    fn is_registered(&self, token: u64) -> bool {
        self.waiters.iter().any(|waiter| waiter.token == token)
    }

    /// Takes out of the list the waiters the state now concerns: every one
    /// after a failure, else those whose commit is durable and, with no
    /// sync running, the one with the oldest commit left, to lead the next.
    /// The leader comes first, so that the next sync starts as soon as it
    /// can: the disk waits for nothing else.
    fn take_concerned(&mut self) -> Vec<Thread> {
        let mut woken = Vec::new();
        let durable = self.durable;
        if !self.in_flight && !self.failed {
            let oldest = (0..self.waiters.len())
                .filter(|&i| self.waiters[i].generation > durable)
                .min_by_key(|&i| self.waiters[i].generation);
            if let Some(leader) = oldest {
                woken.push(self.waiters.swap_remove(leader).thread);
            }
        }
        let all = self.failed;
        self.waiters.retain(|waiter| {
            let concerned = all || waiter.generation <= durable;
            if concerned {
                woken.push(waiter.thread.clone());
            }
            !concerned
        });
        woken
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
        let mut token = None;
        loop {
            let mut state = self.lock();
            if let Some(end) = state.end_of_wait(generation) {
                if let Some(token) = token {
                    state.waiters.retain(|waiter| waiter.token != token);
                }
                return end;
            }
            // Taken out of the list when woken; a wake that did not end the
            // wait (a sync started by another thread before this one could
            // lead) registers it again.
            if !token.is_some_and(|token| state.is_registered(token)) {
                token = Some(state.register(generation));
            }
            drop(state);
            // An unpark made since the lock was dropped makes this return
            // at once, so no change is missed.
            std::thread::park();
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
        self.wake();
    }

    /// Tells the waiters a change concerns (see
    /// `FlightState::take_concerned`), the writer waiting for a sync to end
    /// and every async waiter.
    pub(super) fn wake(&self) {
        let (woken, writer_waiting) = {
            let mut state = self.lock();
            (state.take_concerned(), state.writer_waiting)
        };
        for thread in woken {
            thread.unpark();
        }
        if writer_waiting {
            self.changed.notify_all();
        }
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
        self.flight.wake();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A state with waiters for `generations`, all the calling thread
    /// (thread handles are compared by id below, so one thread will do).
    fn state_with(generations: &[u64], durable: u64, in_flight: bool) -> FlightState {
        let mut state = FlightState {
            durable,
            in_flight,
            ..FlightState::default()
        };
        for &generation in generations {
            state.register(generation);
        }
        state
    }

    fn left(state: &FlightState) -> Vec<u64> {
        let mut generations: Vec<u64> = state.waiters.iter().map(|w| w.generation).collect();
        generations.sort_unstable();
        generations
    }

    /// A sync that ended wakes the waiters it made durable and one to lead
    /// the next (woken first); the rest sleep on.
    #[test]
    fn an_ended_sync_wakes_its_waiters_and_one_leader_only() {
        let mut state = state_with(&[9, 3, 7, 5, 8], 5, false);
        let woken = state.take_concerned();
        assert_eq!(woken.len(), 3, "3 and 5 made durable, one leader");
        assert_eq!(left(&state), [8, 9], "7, the oldest left, leads");
        assert!(woken.iter().all(|t| t.id() == std::thread::current().id()));
        // Nothing changed since: nobody else is woken.
        assert_eq!(state.take_concerned().len(), 1, "a leader again: 8");
        assert_eq!(left(&state), [9]);
    }

    /// While a sync runs nobody is asked to lead, and a failure wakes all.
    #[test]
    fn a_running_sync_wakes_no_leader_and_a_failure_wakes_everyone() {
        let mut state = state_with(&[4, 6, 8], 4, true);
        assert_eq!(state.take_concerned().len(), 1, "only 4 is durable");
        assert_eq!(left(&state), [6, 8]);
        state.failed = true;
        assert_eq!(state.take_concerned().len(), 2);
        assert!(state.waiters.is_empty());
    }

    /// A waiter woken to lead who finds a sync started meanwhile registers
    /// again and is woken when that sync makes its commit durable.
    #[test]
    fn a_waiter_is_woken_once_its_commit_is_durable() {
        let flight = Arc::new(Flight::default());
        flight.lock().in_flight = true;
        let waiter = {
            let flight = Arc::clone(&flight);
            // As `write_and_sync` does: a waiter asked to lead that finds a
            // sync running (here: no sync to start) waits again.
            std::thread::spawn(move || loop {
                match flight.wait_for(2) {
                    Wait::Lead => continue,
                    end => break matches!(end, Wait::Durable),
                }
            })
        };
        while flight.lock().waiters.is_empty() {
            std::thread::yield_now();
        }
        // A sync that ends with generation 1 durable asks it to lead, but
        // another sync starts first: it must wait on, registered again.
        {
            let mut state = flight.lock();
            state.durable = 1;
            state.in_flight = false;
        }
        flight.wake();
        flight.lock().in_flight = true;
        // It registers again (at once, or after finding no sync to lead).
        while flight.lock().waiters.is_empty() {
            std::thread::yield_now();
        }
        {
            let mut state = flight.lock();
            state.durable = 2;
            state.in_flight = false;
        }
        flight.wake();
        assert!(waiter.join().unwrap());
        assert!(flight.lock().waiters.is_empty());
    }
}

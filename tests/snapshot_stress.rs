//! Snapshots under stress (contract R1–R3): reader threads hold snapshots
//! for different spans, from one check to the whole run, while the writer
//! commits transactions that free pages, reallocate them, grow the file,
//! roll back growths, rewrite, allocate and free protected pages, and write
//! fresh pages in place. Every reader checks, each time, that every page of
//! its snapshot holds exactly the bytes the writer's model says were
//! committed at that generation, and that nothing else is allocated.
//!
//! The byte checks catch a page rewritten under a snapshot by any means
//! (through the map, by `pwrite`, through another mapping of the file); a
//! data race on the map itself is what ThreadSanitizer adds. To run this
//! file and the other reader tests under it (nightly toolchain with the
//! `rust-src` component; std is rebuilt instrumented, so only this crate's
//! and std's own code is checked, with no false reports from an
//! uninstrumented std):
//!
//! ```text
//! RUSTFLAGS="-Zsanitizer=thread" RUSTDOCFLAGS="-Zsanitizer=thread" \
//! TSAN_OPTIONS="halt_on_error=1" \
//! cargo +nightly test -Zbuild-std --target x86_64-unknown-linux-gnu \
//!     --all-features --test snapshot_stress --test snapshots --test concurrent_pager
//! ```
//!
//! Use a target directory of its own: the instrumented build does not share
//! artifacts with the normal one. `MAPPEDPAGES_SOAK=<n>` runs `n` times as
//! many commits.

#[path = "support/crash/mod.rs"]
mod crash_support;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crash_support::{options, soak_factor, temp_dir, Rng, PS};
use mappedpages::{
    ConcurrentPager, Durability, MappedPageError, PageId, Pager, ProtectedPageId, Snapshot,
};

/// Commits per run, before the soak factor.
const COMMITS: u64 = 300;
const READERS: usize = 4;

/// What the writer committed at one generation: each allocated regular page
/// with the tag its bytes carry, and each protected page in use with the
/// tag of its last committed write (`None`: never written, reads as zeros).
#[derive(Clone, Debug, Default)]
struct Model {
    generation: u64,
    pages: BTreeMap<u64, u64>,
    protected: BTreeMap<u64, Option<u64>>,
}

/// Protected pages are stamped with their slot in a key space apart from
/// regular pages, so that a regular page's bytes never pass for them.
const PROTECTED_KEY: u64 = 1 << 63;

/// Fills `bytes` with `key` and `tag`, different in every 16-byte chunk, so
/// that a page torn, moved or written over reads as something else.
fn stamp(bytes: &mut [u8], key: u64, tag: u64) {
    for (i, chunk) in bytes.chunks_exact_mut(16).enumerate() {
        chunk[..8].copy_from_slice(&key.to_le_bytes());
        chunk[8..].copy_from_slice(&(tag ^ (i as u64).rotate_left(40)).to_le_bytes());
    }
}

fn holds_stamp(bytes: &[u8], key: u64, tag: u64) -> bool {
    bytes.chunks_exact(16).enumerate().all(|(i, chunk)| {
        chunk[..8] == key.to_le_bytes()
            && chunk[8..] == (tag ^ (i as u64).rotate_left(40)).to_le_bytes()
    })
}

/// Whether `snapshot` shows exactly `model`; the error says where not.
fn check(snapshot: &Snapshot<PS>, model: &Model) -> Result<(), String> {
    let at = snapshot.generation();
    if at != model.generation {
        return Err(format!("generation {at}, model {}", model.generation));
    }
    if !snapshot
        .iter_allocated_pages()
        .map(|id| id.0)
        .eq(model.pages.keys().copied())
    {
        return Err(format!("generation {at}: allocated pages differ"));
    }
    if snapshot.allocated_page_count() != model.pages.len() as u64 {
        return Err(format!("generation {at}: allocated page count"));
    }
    for (&page, &tag) in &model.pages {
        let bytes = snapshot
            .get(PageId(page))
            .map_err(|e| format!("generation {at}: page {page}: {e}"))?
            .as_bytes();
        if !holds_stamp(bytes, page, tag) {
            return Err(format!("generation {at}: page {page} changed"));
        }
    }
    if !snapshot
        .iter_allocated_protected_pages()
        .map(|id| id.0)
        .eq(model.protected.keys().copied())
    {
        return Err(format!("generation {at}: protected pages differ"));
    }
    for (&slot, &tag) in &model.protected {
        let bytes = snapshot
            .get_protected(ProtectedPageId(slot))
            .map_err(|e| format!("generation {at}: protected {slot}: {e}"))?
            .as_bytes();
        let whole = match tag {
            Some(tag) => holds_stamp(bytes, PROTECTED_KEY | slot, tag),
            None => bytes.iter().all(|&b| b == 0),
        };
        if !whole {
            return Err(format!("generation {at}: protected page {slot} changed"));
        }
    }
    // The first page past the model's is not readable through it.
    let next = model.pages.keys().next_back().map_or(3, |&p| p + 1);
    if snapshot.get(PageId(next)).is_ok() {
        return Err(format!("generation {at}: page {next} reads as allocated"));
    }
    Ok(())
}

/// One writer transaction, committed or (sometimes, after growing the file)
/// rolled back, then a few in-place writes; `model` follows what was
/// committed. Returns whether it committed.
fn write_round(pager: &mut Pager<PS>, model: &mut Model, rng: &mut Rng) -> bool {
    let generation = pager.generation() + 1;
    let rollback = rng.chance(4);
    let mut next = model.clone();
    next.generation = generation;
    let mut txn = pager.transaction().unwrap();

    let free_percent = rng.below(40);
    let freed: Vec<PageId<PS>> = next
        .pages
        .keys()
        .filter(|_| rng.chance(free_percent))
        .map(|&p| PageId(p))
        .collect();
    for id in &freed {
        next.pages.remove(&id.0);
    }
    txn.free_bulk(freed).unwrap();

    let count = if rollback || rng.chance(8) {
        200 + rng.index(400)
    } else {
        rng.index(40)
    };
    for id in txn.alloc_bulk(count).unwrap() {
        stamp(txn.get_mut(id).unwrap().as_bytes_mut(), id.0, generation);
        assert!(next.pages.insert(id.0, generation).is_none());
    }
    // A page allocated and freed in the same transaction is never seen.
    if rng.chance(20) {
        let id = txn.alloc().unwrap();
        txn.get_mut(id).unwrap().as_bytes_mut().fill(0xEE);
        txn.free(id).unwrap();
    }

    let slots: Vec<u64> = next.protected.keys().copied().collect();
    for slot in slots {
        if rng.chance(30) {
            let bytes = txn
                .write_protected(ProtectedPageId(slot))
                .unwrap()
                .as_bytes_mut();
            stamp(bytes, PROTECTED_KEY | slot, generation);
            next.protected.insert(slot, Some(generation));
        }
    }
    if next.protected.len() < 24 && rng.chance(15) {
        let id = txn.alloc_protected().unwrap();
        let tag = rng.chance(50).then_some(generation);
        if tag.is_some() {
            let bytes = txn.write_protected(id).unwrap().as_bytes_mut();
            stamp(bytes, PROTECTED_KEY | id.0, generation);
        }
        assert!(next.protected.insert(id.0, tag).is_none());
    }
    if !next.protected.is_empty() && rng.chance(5) {
        let slots: Vec<u64> = next.protected.keys().copied().collect();
        let slot = slots[rng.index(slots.len())];
        txn.free_protected(ProtectedPageId(slot)).unwrap();
        next.protected.remove(&slot);
    }

    if rollback {
        txn.rollback();
        assert_eq!(pager.generation(), generation - 1);
    } else {
        txn.commit().unwrap();
        assert_eq!(pager.generation(), generation);
        *model = next;
    }

    // In place, outside a transaction: allowed only for a page no live
    // snapshot reads, which the published snapshot (a generation older
    // than the model, or the same) decides.
    let pages: Vec<u64> = model.pages.keys().copied().collect();
    for _ in 0..rng.index(4) {
        if pages.is_empty() {
            break;
        }
        let page = pages[rng.index(pages.len())];
        let tag = model.generation | (1 << 40) | (rng.below(1 << 20) << 41);
        match PageId::<PS>(page).get_mut(pager) {
            Ok(bytes) => {
                stamp(bytes.as_bytes_mut(), page, tag);
                model.pages.insert(page, tag);
            }
            Err(MappedPageError::InUseBySnapshot { page: refused }) => assert_eq!(refused, page),
            Err(e) => panic!("in-place write of page {page}: {e}"),
        }
    }
    // Writing over a page the last root checks commits a root first that
    // no longer checks it: a generation with the same pages.
    model.generation = pager.generation();
    !rollback
}

/// Where readers take their snapshots from, with the model of each.
trait Source: Sync {
    fn take(&self) -> Option<(Snapshot<PS>, Arc<Model>)>;
}

/// A `Pager`'s snapshots, handed from the writer's thread through a mutex.
#[derive(Default)]
struct Published(Mutex<Option<(Snapshot<PS>, Arc<Model>)>>);

impl Source for Published {
    fn take(&self) -> Option<(Snapshot<PS>, Arc<Model>)> {
        self.0.lock().unwrap().clone()
    }
}

/// A `ConcurrentPager`'s reader side, and the models of the commits its
/// writer publishes (recorded before they are published).
struct Shared {
    pager: ConcurrentPager<PS>,
    models: Mutex<HashMap<u64, Arc<Model>>>,
}

impl Source for Shared {
    fn take(&self) -> Option<(Snapshot<PS>, Arc<Model>)> {
        let snapshot = self.pager.read().unwrap();
        let model = self
            .models
            .lock()
            .unwrap()
            .get(&snapshot.generation())?
            .clone();
        Some((snapshot, model))
    }
}

/// What a reader did: checks made, and the most commits a snapshot it
/// checked was behind the writer.
#[derive(Debug, Default)]
struct Tally {
    checks: u64,
    most_behind: u64,
}

/// A reader thread's loop. Reader 0 checks the newest snapshot and drops
/// it; reader 1 holds each for a random number of checks; reader 2 keeps
/// the first it took for the whole run and up to three more, replaced now
/// and then;
/// reader 3 keeps a window of up to 8 of different ages and checks one at
/// random. Every snapshot still held is checked once more after the writer
/// has finished.
fn reader(
    which: usize,
    source: &dyn Source,
    writer_at: &AtomicU64,
    started: &AtomicUsize,
    stop: &AtomicBool,
) -> Result<Tally, String> {
    let mut rng = Rng::new(1000 + which as u64);
    let mut tally = Tally::default();
    let mut held: VecDeque<(Snapshot<PS>, Arc<Model>)> = VecDeque::new();
    let checked_one = |held: &(Snapshot<PS>, Arc<Model>), tally: &mut Tally| {
        check(&held.0, &held.1)?;
        tally.checks += 1;
        let behind = writer_at
            .load(Ordering::Acquire)
            .saturating_sub(held.0.generation());
        tally.most_behind = tally.most_behind.max(behind);
        Ok::<(), String>(())
    };
    let mut first = true;
    let mut hold_for = 0;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        match which {
            0 => {
                if let Some(newest) = source.take() {
                    checked_one(&newest, &mut tally)?;
                }
            }
            1 => {
                if hold_for == 0 {
                    held.clear();
                    held.extend(source.take());
                    hold_for = 1 + rng.below(40);
                }
                hold_for -= 1;
            }
            2 => {
                if first {
                    held.extend(source.take());
                } else if rng.chance(1) {
                    // The first stays; the others are replaced now and then.
                    if held.len() >= 4 {
                        held.remove(1 + rng.index(held.len() - 1));
                    }
                    held.extend(source.take());
                }
            }
            _ => {
                held.extend(source.take());
                if held.len() > 8 || rng.chance(30) {
                    held.pop_front();
                }
            }
        }
        if which != 0 && !held.is_empty() {
            let one = rng.index(held.len());
            checked_one(&held[one], &mut tally)?;
        }
        if first {
            first = false;
            started.fetch_add(1, Ordering::AcqRel);
        }
        if stopping {
            for one in &held {
                checked_one(one, &mut tally)?;
            }
            return Ok(tally);
        }
    }
}

/// Runs the readers against `source` while `write` commits `commits`
/// rounds, and checks what they saw.
/// `start` is the generation `source` gives before the writer starts.
fn run_readers(source: &dyn Source, start: u64, write: impl FnOnce(&AtomicU64)) -> Vec<Tally> {
    let writer_at = AtomicU64::new(start);
    let started = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let tallies = std::thread::scope(|scope| {
        let readers: Vec<_> = (0..READERS)
            .map(|which| {
                let (writer_at, started, stop) = (&writer_at, &started, &stop);
                scope.spawn(move || reader(which, source, writer_at, started, stop))
            })
            .collect();
        // Every reader holds a first snapshot before the writer starts, so
        // reader 2 keeps one across every commit of the run.
        while started.load(Ordering::Acquire) < READERS {
            std::thread::yield_now();
        }
        write(&writer_at);
        stop.store(true, Ordering::Release);
        readers
            .into_iter()
            .map(|r| r.join().unwrap())
            .collect::<Result<Vec<_>, String>>()
    });
    let tallies = tallies.unwrap_or_else(|e| panic!("a reader saw a changed snapshot: {e}"));
    assert!(tallies.iter().all(|t| t.checks > 0), "{tallies:?}");
    let end = writer_at.load(Ordering::Acquire);
    assert!(
        end > start + 100,
        "the writer committed {} times",
        end - start
    );
    assert_eq!(
        tallies[2].most_behind,
        end - start,
        "the first snapshot was not held across the run: {tallies:?}"
    );
    tallies
}

/// Pages neither allocated nor free: metadata, protected copies, and the
/// pages held back for snapshots.
fn withheld(pager: &Pager<PS>) -> u64 {
    pager.page_count() - pager.free_page_count() - pager.allocated_page_count()
}

/// Once every snapshot is gone, what was held for them is free again.
fn assert_released(pager: &mut Pager<PS>, held_during: u64) {
    pager.sync().unwrap();
    let id = pager.alloc().unwrap();
    pager.free(id).unwrap();
    pager.sync().unwrap();
    let after = withheld(pager);
    assert!(
        held_during > 1000 && after * 10 < held_during,
        "withheld {held_during} pages with snapshots, {after} after"
    );
}

fn setup(durability: Durability) -> (tempfile::TempDir, Pager<PS>, Model, Rng) {
    let dir = temp_dir();
    let pager = options(durability)
        .create(dir.path().join("stress.pages"))
        .unwrap();
    let model = Model {
        generation: pager.generation(),
        ..Model::default()
    };
    let seed = match durability {
        Durability::Immediate => 7,
        _ => 8,
    };
    (dir, pager, model, Rng::new(seed))
}

#[test]
fn readers_holding_snapshots_for_any_span_see_them_whole() {
    let commits = COMMITS * soak_factor();
    for durability in [Durability::Immediate, Durability::Deferred] {
        let (_dir, mut pager, mut model, mut rng) = setup(durability);
        let published = Published::default();
        let publish = |pager: &Pager<PS>, model: &Model| {
            let snapshot = pager.snapshot().unwrap();
            *published.0.lock().unwrap() = Some((snapshot, Arc::new(model.clone())));
        };
        publish(&pager, &model);
        let (mut growths, mut held_during) = (0, 0);
        let tallies = run_readers(&published, model.generation, |writer_at| {
            for _ in 0..commits {
                let pages = pager.page_count();
                write_round(&mut pager, &mut model, &mut rng);
                growths += u64::from(pager.page_count() > pages);
                publish(&pager, &model);
                writer_at.store(pager.generation(), Ordering::Release);
            }
            held_during = withheld(&pager);
        });
        assert!(
            growths >= 10,
            "{durability:?}: the file grew {growths} times"
        );
        *published.0.lock().unwrap() = None;
        assert_released(&mut pager, held_during);
        eprintln!(
            "{durability:?}: {commits} commits, {growths} growths, {} pages, {held_during} withheld, {tallies:?}",
            pager.page_count()
        );
    }
}

#[test]
fn concurrent_pager_readers_see_every_published_commit_whole() {
    let commits = COMMITS * soak_factor();
    let (_dir, pager, mut model, mut rng) = setup(Durability::Deferred);
    let shared = Shared {
        models: Mutex::new(HashMap::from([(model.generation, Arc::new(model.clone()))])),
        pager: ConcurrentPager::new(pager).unwrap(),
    };
    let mut held_during = 0;
    let tallies = run_readers(&shared, model.generation, |writer_at| {
        for _ in 0..commits {
            let mut writer = shared.pager.write().unwrap();
            write_round(&mut writer, &mut model, &mut rng);
            let generation = writer.generation();
            // Published when the guard drops, with the in-place writes.
            shared
                .models
                .lock()
                .unwrap()
                .insert(generation, Arc::new(model.clone()));
            held_during = withheld(&writer);
            drop(writer);
            writer_at.store(generation, Ordering::Release);
        }
    });
    let Shared { pager, models } = shared;
    drop(models);
    let mut pager = pager.into_inner().expect("the only handle");
    assert_released(&mut pager, held_during);
    eprintln!("ConcurrentPager: {commits} commits, {held_during} withheld, {tallies:?}");
}

//! Readers that follow a live writer (`LiveReader`) through the file's
//! reader table: in this process, and in other processes that are killed
//! at random points while a writer (itself killed and restarted) commits.
//!
//! Every page the writer writes holds a pattern derived from its page
//! number and a write number stored in it, so a reader checks each page of
//! a snapshot on its own: a page reused or written under a snapshot shows
//! as a page whose bytes do not follow its header, or whose header changed
//! between two reads of the same snapshot.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

#[path = "support/process/mod.rs"]
mod process_support;
use process_support::spawn_child;

use mappedpages::{Durability, LiveReader, MappedPageError, PageId, Pager, Snapshot};

const PS: usize = 1024;
type P = Pager<PS>;

/// Fills `page` with the pattern of (`id`, `write`).
fn fill(page: &mut [u8], id: u64, write: u64) {
    page[..8].copy_from_slice(&id.to_le_bytes());
    page[8..16].copy_from_slice(&write.to_le_bytes());
    let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ write;
    for chunk in page[16..].chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let n = chunk.len();
        chunk.copy_from_slice(&x.to_le_bytes()[..n]);
    }
}

/// The write number `page` (page `id`) holds, if its bytes follow it.
fn written(page: &[u8], id: u64) -> Result<u64, String> {
    let write = u64::from_le_bytes(page[8..16].try_into().unwrap());
    let mut expected = vec![0u8; page.len()];
    fill(&mut expected, id, write);
    if page == expected.as_slice() {
        Ok(write)
    } else {
        Err(format!(
            "page {id} does not hold its pattern (write {write})"
        ))
    }
}

/// Every allocated page of `snapshot` with the write number it holds.
fn read_all(snapshot: &Snapshot<PS>) -> Result<BTreeMap<u64, u64>, String> {
    let mut pages = BTreeMap::new();
    for id in snapshot.iter_allocated_pages() {
        let page = snapshot
            .get(id)
            .map_err(|e| format!("page {}: {e}", id.0))?;
        pages.insert(id.0, written(page.as_bytes(), id.0)?);
    }
    Ok(pages)
}

/// One commit of the churn: frees `free` of the live pages (chosen by
/// `seed`) and writes `add` new ones.
fn churn(pager: &mut P, live: &mut Vec<PageId<PS>>, seed: u64, free: usize, add: usize) {
    let write = pager.generation() + 1;
    let mut txn = pager.transaction().unwrap();
    for k in 0..free.min(live.len()) {
        let at = (seed as usize).wrapping_mul(31).wrapping_add(k * 17) % live.len();
        txn.free(live.swap_remove(at)).unwrap();
    }
    for _ in 0..add {
        let id = txn.alloc().unwrap();
        fill(txn.get_mut(id).unwrap().as_bytes_mut(), id.0, write);
        live.push(id);
    }
    txn.commit().unwrap();
}

fn temp(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("live.pages")
}

fn writer(path: &Path, durability: Durability) -> P {
    P::options()
        .durability(durability)
        .process_readers(true)
        .create(path)
        .unwrap()
}

#[test]
fn a_snapshot_reads_its_commit_while_the_writer_frees_and_reuses_pages() {
    for durability in [Durability::Immediate, Durability::Deferred] {
        let dir = tempfile::tempdir().unwrap();
        let path = temp(&dir);
        let mut pager = writer(&path, durability);
        let mut live = Vec::new();
        churn(&mut pager, &mut live, 1, 0, 40);
        let reader = LiveReader::<PS>::open(&path).unwrap();
        let first = reader.snapshot().unwrap();
        let seen = read_all(&first).unwrap();
        assert_eq!(seen.len(), 40);
        assert_eq!(first.generation(), pager.generation());
        for round in 0..200 {
            churn(&mut pager, &mut live, round, 5, 5);
            if round % 16 == 0 {
                pager.sync().unwrap();
            }
        }
        // Every page of the first snapshot reads as it did, freed or not.
        assert_eq!(read_all(&first).unwrap(), seen, "{durability:?}");
        // A new snapshot reads the newest commit.
        let now = reader.snapshot().unwrap();
        assert_eq!(now.generation(), pager.generation());
        let newest = read_all(&now).unwrap();
        assert_eq!(newest.len(), live.len());
        assert!(live.iter().all(|id| newest.contains_key(&id.0)));
        // The first snapshot pinned the pages it reads, and the writer
        // says how many: every page freed since, once synced.
        pager.sync().unwrap();
        let listed = pager.readers().unwrap();
        let pins = |generation| {
            listed
                .iter()
                .find(|r| r.generation == generation)
                .and_then(|r| r.pins)
                .unwrap()
        };
        assert!(pins(first.generation()) >= 900, "{listed:?}");
        assert_eq!(pins(now.generation()), 0, "{listed:?}");
        assert!(reader.readers().unwrap().iter().all(|r| r.pins.is_none()));
        let pinned_size = pager.page_count();
        drop((first, now));
        for round in 200..600 {
            churn(&mut pager, &mut live, round, 5, 5);
        }
        pager.sync().unwrap();
        assert!(
            pager.page_count() <= pinned_size,
            "{durability:?}: the pages came back ({} pages, {pinned_size} while pinned)",
            pager.page_count()
        );
    }
}

#[test]
fn writes_in_place_wait_for_the_readers_of_other_processes() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp(&dir);
    let mut pager = writer(&path, Durability::Immediate);
    let id = pager.alloc().unwrap();
    let reader = LiveReader::<PS>::open(&path).unwrap();
    let snapshot = reader.snapshot().unwrap();
    assert!(matches!(
        id.get_mut(&mut pager),
        Err(MappedPageError::InUseBySnapshot { .. })
    ));
    assert_eq!(pager.readers().unwrap().len(), 1);
    drop(snapshot);
    assert!(pager.readers().unwrap().is_empty());
    id.get_mut(&mut pager).unwrap().as_bytes_mut()[0] = 1;
    assert_eq!(reader.snapshot().unwrap().get(id).unwrap().as_bytes()[0], 1);
}

#[test]
fn snapshots_of_one_commit_share_a_slot_and_each_commit_takes_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp(&dir);
    let mut pager = writer(&path, Durability::Deferred);
    let reader = LiveReader::<PS>::open(&path).unwrap();
    let a = reader.snapshot().unwrap();
    let b = reader.snapshot().unwrap();
    assert_eq!(pager.readers().unwrap().len(), 1);
    pager.alloc().unwrap();
    let c = reader.snapshot().unwrap();
    let listed = pager.readers().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|r| r.in_this_process));
    let behind: Vec<u64> = listed.iter().map(|r| r.behind).collect();
    assert!(behind.contains(&1) && behind.contains(&0), "{listed:?}");
    drop((a, b, c));
    assert!(pager.readers().unwrap().is_empty());
}

/// A snapshot of a commit taken again after every earlier one was dropped
/// (the reader keeps what it loaded of that commit) registers it again:
/// the writer then keeps its pages, and the snapshot reads them as
/// committed while the writer frees and rewrites them.
#[test]
fn a_commit_read_again_is_registered_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp(&dir);
    let mut pager = writer(&path, Durability::Immediate);
    let mut live = Vec::new();
    churn(&mut pager, &mut live, 0, 0, 40);
    let reader = LiveReader::<PS>::open(&path).unwrap();
    let first = reader.snapshot().unwrap();
    let expected = read_all(&first).unwrap();
    drop(first);
    assert!(pager.readers().unwrap().is_empty());
    let again = reader.snapshot().unwrap();
    assert_eq!(pager.readers().unwrap().len(), 1);
    for round in 1..30 {
        churn(&mut pager, &mut live, round, 10, 10);
    }
    assert_eq!(read_all(&again), Ok(expected));
}

#[test]
fn a_file_without_a_reader_table_or_with_a_foreign_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp(&dir);
    let pager = P::create(&path).unwrap();
    assert!(matches!(
        LiveReader::<PS>::open(&path),
        Err(MappedPageError::NoReaderTable { .. })
    ));
    drop(pager);
    let table = dir.path().join("live.pages-readers");
    std::fs::write(&table, b"someone else's file").unwrap();
    assert!(matches!(
        P::open(&path),
        Err(MappedPageError::NotAReaderTable { .. })
    ));
    assert!(matches!(
        LiveReader::<PS>::open(&path),
        Err(MappedPageError::NotAReaderTable { .. })
    ));
    assert_eq!(std::fs::read(&table).unwrap(), b"someone else's file");
    std::fs::remove_file(&table).unwrap();
    // Made by a writer that asks for it; the wrong page size is refused.
    drop(P::options().process_readers(true).open(&path).unwrap());
    assert!(LiveReader::<PS>::open(&path).is_ok());
    assert!(matches!(
        LiveReader::<4096>::open(&path),
        Err(MappedPageError::InvalidPageSize)
    ));
}

#[test]
fn a_writer_that_reopens_keeps_the_pages_of_readers_of_the_one_before() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp(&dir);
    let mut pager = writer(&path, Durability::Immediate);
    let mut live = Vec::new();
    churn(&mut pager, &mut live, 1, 0, 30);
    let reader = LiveReader::<PS>::open(&path).unwrap();
    let old = reader.snapshot().unwrap();
    let seen = read_all(&old).unwrap();
    churn(&mut pager, &mut live, 2, 30, 30);
    drop(pager);
    // Opened without the option: the table exists, so it is honoured.
    let mut pager = P::open(&path).unwrap();
    for round in 0..50 {
        churn(&mut pager, &mut live, round, 10, 10);
    }
    assert_eq!(read_all(&old).unwrap(), seen);
    assert_eq!(pager.readers().unwrap()[0].generation, old.generation());
}

// ---- Readers in other processes -------------------------------------------

const ROLE_ENV: &str = "MAPPEDPAGES_PROCESS_READER_ROLE";
const PATH_ENV: &str = "MAPPEDPAGES_PROCESS_READER_PATH";
const CHILD_TEST: &str = "process_child";

/// The child processes: `writer` churns until killed, printing each
/// generation it committed; `reader` takes snapshots, holds each a while
/// and checks every page twice, printing a line per snapshot checked, and
/// `BAD` with the reason if a check fails.
#[test]
fn process_child() {
    let (Ok(role), Some(path)) = (std::env::var(ROLE_ENV), std::env::var_os(PATH_ENV)) else {
        return;
    };
    let path = PathBuf::from(path);
    let mut out = std::io::stdout().lock();
    match role.as_str() {
        "writer" => {
            let mut pager = P::options()
                .durability(Durability::Deferred)
                .process_readers(true)
                .open(&path)
                .unwrap();
            let mut live: Vec<PageId<PS>> = pager.iter_allocated_pages().collect();
            let mut round = pager.generation();
            loop {
                let (free, add) = if live.len() > 200 { (12, 8) } else { (8, 12) };
                churn(&mut pager, &mut live, round, free, add);
                if round % 8 == 0 {
                    pager.sync().unwrap();
                }
                writeln!(out, "COMMITTED {}", pager.generation()).unwrap();
                out.flush().unwrap();
                round += 1;
            }
        }
        "reader" => {
            let reader = LiveReader::<PS>::open(&path).unwrap();
            let mut held: Vec<(Snapshot<PS>, BTreeMap<u64, u64>)> = Vec::new();
            for n in 0u64.. {
                let snapshot = reader.snapshot().unwrap();
                let pages = match read_all(&snapshot) {
                    Ok(pages) => pages,
                    Err(why) => {
                        writeln!(out, "BAD {why}").unwrap();
                        return;
                    }
                };
                held.push((snapshot, pages));
                // Each snapshot is held for a few rounds, then read again.
                if held.len() > 3 {
                    let (old, pages) = held.remove((n % 3) as usize);
                    if read_all(&old).as_ref() != Ok(&pages) {
                        writeln!(out, "BAD snapshot {} changed", old.generation()).unwrap();
                        return;
                    }
                }
                writeln!(out, "CHECKED {}", held.last().unwrap().0.generation()).unwrap();
                out.flush().unwrap();
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        "hold" => {
            let reader = LiveReader::<PS>::open(&path).unwrap();
            let snapshot = reader.snapshot().unwrap();
            writeln!(out, "HELD {}", snapshot.generation()).unwrap();
            out.flush().unwrap();
            std::thread::sleep(Duration::from_secs(600));
        }
        other => panic!("unknown role {other}"),
    }
}

/// A child and the lines it prints, read on a thread of their own.
struct Running {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    fn spawn(role: &str, path: &Path) -> Running {
        let mut child = spawn_child(CHILD_TEST, ROLE_ENV, role, PATH_ENV, path);
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running { child, lines }
    }

    /// Waits until the child printed `count` more lines starting with
    /// `prefix` (failing on a `BAD` line or after a minute).
    fn wait_for(&mut self, prefix: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while seen.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self
                .lines
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {prefix} line from the child in a minute"));
            if let Some(at) = line.find("BAD ") {
                panic!("a reader found {}", &line[at + 4..]);
            }
            if let Some(at) = line.find(prefix) {
                seen.push(line[at..].to_string());
            }
        }
        seen
    }

    /// The generation of the next commit the child (a writer) reports.
    fn generation(&mut self) -> u64 {
        let line = self.wait_for("COMMITTED", 1).remove(0);
        line["COMMITTED ".len()..].trim().parse().unwrap()
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Kills still-running children if the test fails part way.
struct Children(Vec<Running>);

impl Drop for Children {
    fn drop(&mut self) {
        for running in self.0.drain(..) {
            running.kill();
        }
    }
}

/// A writer process and three reader processes, over thousands of commits:
/// readers are killed and started again at random points, the writer is
/// killed and a new one started; every snapshot every reader takes reads
/// every page as its commit wrote it, before and after the writer moved on,
/// and once the readers are gone the file's size stays bounded.
#[test]
fn readers_in_other_processes_follow_a_writer_through_kills() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp(&dir);
    let mut pager = writer(&path, Durability::Deferred);
    let mut live = Vec::new();
    churn(&mut pager, &mut live, 0, 0, 150);
    pager.sync().unwrap();
    drop(pager);

    let rounds = if cfg!(mappedpages_wine) { 4 } else { 12 };
    let mut writer = Running::spawn("writer", &path);
    writer.wait_for("COMMITTED", 5);
    let mut readers = Children((0..3).map(|_| Running::spawn("reader", &path)).collect());
    let mut checked = 0;
    for round in 0..rounds {
        for reader in &mut readers.0 {
            checked += reader.wait_for("CHECKED", 3).len();
        }
        // A reader killed wherever it is: its pins must come back.
        let victim = round % readers.0.len();
        readers.0.remove(victim).kill();
        readers.0.push(Running::spawn("reader", &path));
        if round % 4 == 3 {
            // The writer killed mid-commit; a new one goes on, its readers
            // still reading.
            writer.wait_for("COMMITTED", 3);
            writer.kill();
            writer = Running::spawn("writer", &path);
            writer.wait_for("COMMITTED", 3);
        }
    }
    // Thousands of commits with the readers following them.
    let commits = if cfg!(mappedpages_wine) { 500 } else { 3000 };
    while writer.generation() < commits {}
    for reader in &mut readers.0 {
        checked += reader.wait_for("CHECKED", 3).len();
    }
    drop(readers);
    writer.wait_for("COMMITTED", 3);
    writer.kill();
    assert!(checked >= rounds * 9);

    // With the readers dead, a writer reuses what they pinned: a long churn
    // leaves the file no longer than it was.
    let mut pager = P::open(&path).unwrap();
    assert!(
        pager.readers().unwrap().is_empty(),
        "dead readers are cleared"
    );
    let mut live: Vec<PageId<PS>> = pager.iter_allocated_pages().collect();
    for round in 0..300 {
        churn(&mut pager, &mut live, round, 10, 10);
    }
    pager.sync().unwrap();
    let size = pager.page_count();
    for round in 300..900 {
        churn(&mut pager, &mut live, round, 10, 10);
    }
    pager.sync().unwrap();
    assert!(
        pager.page_count() <= size,
        "the file grew from {size} to {} pages under a steady churn",
        pager.page_count()
    );
}

/// A reader process that never moves on, under a bound on what it may pin:
/// the writer's commits are refused with an error naming it (changing
/// nothing), the reader reads on, and once it is killed the writer goes on
/// and reuses what it pinned.
#[test]
fn a_bound_on_pins_stops_the_writer_not_the_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp(&dir);
    let mut pager = writer(&path, Durability::Immediate);
    let mut live = Vec::new();
    churn(&mut pager, &mut live, 0, 0, 60);
    drop(pager);
    let mut pager = P::options().max_reader_pins(Some(40)).open(&path).unwrap();
    let mut reader = Running::spawn("hold", &path);
    let held: u64 = reader.wait_for("HELD", 1)[0][5..].trim().parse().unwrap();
    let mut refused = None;
    for round in 0..100 {
        let before = (pager.generation(), pager.page_count());
        let mut txn = match pager.transaction() {
            Ok(txn) => txn,
            Err(err) => {
                refused = Some(err);
                break;
            }
        };
        let write = before.0 + 1;
        let old = live.swap_remove((round * 7) % live.len());
        txn.free(old).unwrap();
        let id = txn.alloc().unwrap();
        fill(txn.get_mut(id).unwrap().as_bytes_mut(), id.0, write);
        match txn.commit() {
            Ok(()) => live.push(id),
            Err(err) => {
                // Undone: the pager is as it was.
                assert_eq!((pager.generation(), pager.page_count()), before);
                live.push(old);
                refused = Some(err);
                break;
            }
        }
    }
    match refused {
        Some(MappedPageError::ReaderPinsTooMany {
            process_id,
            generation,
            pins,
        }) => {
            assert_eq!(process_id, u64::from(reader.child.id()));
            assert_eq!(generation, held);
            assert!(pins > 40);
        }
        other => panic!("expected ReaderPinsTooMany, got {other:?}"),
    }
    assert!(
        pager.alloc().is_err(),
        "still refused while the reader lives"
    );
    reader.kill();
    // The dead reader is found dead by its lock; its pins are reused.
    let size = pager.page_count();
    churn(&mut pager, &mut live, 1, 5, 5);
    pager.sync().unwrap();
    assert!(pager.readers().unwrap().is_empty());
    for round in 2..40 {
        churn(&mut pager, &mut live, round, 5, 5);
    }
    assert!(pager.page_count() <= size);
}

/// A reader process that never moves on, under a bound on its lag: exactly
/// the commits that keep it within the bound go through, the next one is
/// refused with an error naming it (changing nothing), and once it is
/// killed the writer goes on.
#[test]
fn a_bound_on_lag_stops_the_writer_at_the_bound() {
    const LAG: u64 = 5;
    let dir = tempfile::tempdir().unwrap();
    let path = temp(&dir);
    let mut pager = writer(&path, Durability::Immediate);
    let mut live = Vec::new();
    churn(&mut pager, &mut live, 0, 0, 20);
    drop(pager);
    let mut pager = P::options().max_reader_lag(Some(LAG)).open(&path).unwrap();
    let mut reader = Running::spawn("hold", &path);
    let held: u64 = reader.wait_for("HELD", 1)[0][5..].trim().parse().unwrap();
    assert_eq!(held, pager.generation());
    for round in 1..=LAG {
        churn(&mut pager, &mut live, round, 1, 1);
        assert_eq!(pager.generation(), held + round);
    }
    let before = (pager.generation(), pager.page_count(), live.clone());
    match pager.alloc() {
        Err(MappedPageError::ReaderTooFarBehind {
            process_id,
            generation,
            behind,
        }) => {
            assert_eq!(process_id, u64::from(reader.child.id()));
            assert_eq!((generation, behind), (held, LAG + 1));
        }
        other => panic!("expected ReaderTooFarBehind, got {other:?}"),
    }
    assert!(matches!(
        pager.transaction(),
        Err(MappedPageError::ReaderTooFarBehind { .. })
    ));
    assert_eq!(
        (pager.generation(), pager.page_count()),
        (before.0, before.1)
    );
    let snapshot = pager.snapshot().unwrap();
    for id in &before.2 {
        assert!(written(snapshot.get(*id).unwrap().as_bytes(), id.0).is_ok());
    }
    drop(snapshot);
    reader.kill();
    churn(&mut pager, &mut live, LAG + 1, 1, 1);
    assert_eq!(pager.generation(), held + LAG + 1);
    assert!(pager.readers().unwrap().is_empty());
}

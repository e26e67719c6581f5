//! Group commit (`ConcurrentPager::write_and_sync`): many threads commit
//! durably and share syncs. Every call that returned `Ok` is in every image
//! of the file taken at a later sync, every image holds a prefix of the
//! commits in the order they were made, a sync that fails fails the calls
//! it would have covered, and a process killed while its threads commit
//! leaves a file with every commit a call returned for.

#[path = "support/process/mod.rs"]
mod process_support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use mappedpages::{ConcurrentPager, MappedPageError, PageId, Pager};

const PS: usize = 1024;
type P = Pager<PS>;

/// One commit of the workload: the page it allocated and what it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Commit {
    page: u64,
    thread: u32,
    seq: u32,
}

impl Commit {
    fn bytes(&self) -> [u8; 8] {
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&self.thread.to_le_bytes());
        bytes[4..].copy_from_slice(&self.seq.to_le_bytes());
        bytes
    }
}

/// What the workload did: each commit by the generation it made, and the
/// generations whose calls returned `Ok`, in the order they returned.
#[derive(Default)]
struct Record {
    made: BTreeMap<u64, Commit>,
    returned: Vec<u64>,
}

/// One transaction that allocates a page and writes `thread` and `seq`
/// into it, made durable by `write_and_sync`; the commit is noted in
/// `record` under the writer's lock (so in commit order), and its
/// generation once the call returned.
fn commit_one(
    shared: &ConcurrentPager<PS>,
    record: &Mutex<Record>,
    thread: u32,
    seq: u32,
) -> mappedpages::Result<u64> {
    let generation = shared.write_and_sync(|pager| one_transaction(pager, record, thread, seq))?;
    record.lock().unwrap().returned.push(generation);
    Ok(generation)
}

/// The workload's transaction: allocates a page and writes `thread` and
/// `seq` into it; the commit is noted in `record` by its generation.
fn one_transaction(
    pager: &mut P,
    record: &Mutex<Record>,
    thread: u32,
    seq: u32,
) -> mappedpages::Result<u64> {
    let mut txn = pager.transaction()?;
    let id = txn.alloc()?;
    let commit = Commit {
        page: id.0,
        thread,
        seq,
    };
    txn.get_mut(id)?.as_bytes_mut()[..8].copy_from_slice(&commit.bytes());
    txn.commit()?;
    let generation = pager.generation();
    record.lock().unwrap().made.insert(generation, commit);
    Ok(generation)
}

/// Runs `threads` threads of `per_thread` commits each; returns how many
/// calls failed.
fn run(
    shared: &ConcurrentPager<PS>,
    record: &Arc<Mutex<Record>>,
    threads: u32,
    per_thread: u32,
) -> usize {
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let shared = shared.clone();
            let record = Arc::clone(record);
            std::thread::spawn(move || {
                (0..per_thread)
                    .filter(|&seq| commit_one(&shared, &record, thread, seq).is_err())
                    .count()
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).sum()
}

/// Checks the file at `path` against the record: it opens, holds every
/// commit up to the generation it opened at (and no later one), and that
/// generation is at least every one in `returned`. Returns that generation.
fn check_file(path: &Path, made: &BTreeMap<u64, Commit>, returned: &[u64]) -> Result<u64, String> {
    let pager = P::open(path).map_err(|e| format!("the file does not open: {e}"))?;
    let opened = pager.generation();
    if let Some(&missing) = returned.iter().find(|&&g| g > opened) {
        return Err(format!(
            "generation {opened} opened, but the call that made {missing} had returned Ok"
        ));
    }
    let expected: Vec<&Commit> = made.range(..=opened).map(|(_, c)| c).collect();
    let allocated: Vec<u64> = pager.iter_allocated_pages().map(|id| id.0).collect();
    if allocated.len() != expected.len() {
        return Err(format!(
            "generation {opened}: {} pages allocated, {} commits made up to it: not a prefix",
            allocated.len(),
            expected.len()
        ));
    }
    for commit in expected {
        let page = PageId::<PS>(commit.page)
            .get(&pager)
            .map_err(|e| format!("{commit:?}: {e}"))?;
        if page.as_bytes()[..8] != commit.bytes() {
            return Err(format!("{commit:?}: its page holds other bytes"));
        }
    }
    Ok(opened)
}

fn temp_file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[test]
fn every_returned_commit_is_there_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "group.pages");
    let shared = ConcurrentPager::new(P::create(&path).unwrap()).unwrap();
    let record = Arc::new(Mutex::new(Record::default()));
    let (threads, per_thread) = (8, 40);
    assert_eq!(run(&shared, &record, threads, per_thread), 0);
    let syncs = shared.write().unwrap().sync_count();
    let commits = u64::from(threads * per_thread);
    // One sync per commit at most (and fewer when commits met a sync).
    assert!(syncs <= commits + 1, "{syncs} syncs for {commits} commits");
    let pager = shared.into_inner().unwrap();
    drop(pager);
    let record = record.lock().unwrap();
    assert_eq!(record.returned.len() as u64, commits);
    let opened = check_file(&path, &record.made, &record.returned).unwrap();
    assert_eq!(opened, *record.made.keys().last().unwrap());
}

#[test]
fn a_failing_closure_still_makes_its_commits_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "group.pages");
    let shared = ConcurrentPager::new(P::create(&path).unwrap()).unwrap();
    let before = shared.write().unwrap().sync_count();
    let result: mappedpages::Result<()> = shared.write_and_sync(|pager| {
        let mut txn = pager.transaction()?;
        txn.alloc()?;
        txn.commit()?;
        Err(MappedPageError::InvalidCount { count: 7 })
    });
    assert!(matches!(
        result,
        Err(MappedPageError::InvalidCount { count: 7 })
    ));
    assert_eq!(shared.write().unwrap().sync_count(), before + 1);
    // Immediate commits outside the group still sync by themselves.
    shared.write().unwrap().alloc().unwrap();
    assert_eq!(shared.write().unwrap().sync_count(), before + 2);
    drop(shared.into_inner().unwrap());
    assert_eq!(P::open(&path).unwrap().allocated_page_count(), 2);
}

#[cfg(feature = "fault-injection")]
mod images {
    use super::*;
    use mappedpages::fault::{IoEvent, IoHook};

    /// The file as the page cache held it at each sync, with the calls that
    /// had returned by then.
    type Images = Arc<Mutex<Vec<(Vec<u8>, Vec<u64>)>>>;

    /// A pager on a new file at `path` whose syncs after its creation are
    /// recorded in `images`; the `fail_at`-th of them fails.
    fn hooked(
        path: &Path,
        record: &Arc<Mutex<Record>>,
        images: &Images,
        fail_at: Option<usize>,
    ) -> ConcurrentPager<PS> {
        let (record, images) = (Arc::clone(record), Arc::clone(images));
        // Counting starts once the file exists (create syncs too).
        let syncs: Arc<Mutex<Option<usize>>> = Arc::default();
        let armed = Arc::clone(&syncs);
        let hook = IoHook::new(move |event| {
            if let IoEvent::Sync { file } = event {
                let mut syncs = syncs.lock().unwrap();
                let Some(n) = syncs.as_mut() else {
                    return Ok(());
                };
                *n += 1;
                if Some(*n) == fail_at {
                    return Err(std::io::Error::other("injected sync failure"));
                }
                let returned = record.lock().unwrap().returned.clone();
                images.lock().unwrap().push((file.to_vec(), returned));
            }
            Ok(())
        });
        let pager = P::options().io_hook(hook).create(path).unwrap();
        *armed.lock().unwrap() = Some(0);
        ConcurrentPager::new(pager).unwrap()
    }

    /// Every image a sync would make durable holds every commit whose call
    /// had returned before the sync started, and a prefix of the commits.
    #[test]
    fn every_sync_image_holds_a_prefix_with_every_returned_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_file(&dir, "group.pages");
        let record = Arc::new(Mutex::new(Record::default()));
        let images: Images = Arc::default();
        let shared = hooked(&path, &record, &images, None);
        assert_eq!(run(&shared, &record, 6, 30), 0);
        drop(shared.into_inner().unwrap());
        let record = record.lock().unwrap();
        let images = images.lock().unwrap();
        assert!(images.len() > 1);
        let image_path = temp_file(&dir, "image.pages");
        let mut last = 0;
        for (n, (bytes, returned)) in images.iter().enumerate() {
            std::fs::write(&image_path, bytes).unwrap();
            let opened = check_file(&image_path, &record.made, returned)
                .unwrap_or_else(|e| panic!("image of sync {n}: {e}"));
            assert!(
                opened >= last,
                "image of sync {n} went back from {last} to {opened}"
            );
            last = opened;
        }
    }

    /// A sync that fails fails every call it would have covered; what
    /// returned `Ok` before is in the reopened file, which holds a prefix.
    #[test]
    fn a_failed_sync_fails_the_commits_it_covered() {
        for fail_at in [2, 5, 11] {
            let dir = tempfile::tempdir().unwrap();
            let path = temp_file(&dir, "group.pages");
            let record = Arc::new(Mutex::new(Record::default()));
            let images: Images = Arc::default();
            let shared = hooked(&path, &record, &images, Some(fail_at));
            let failed = run(&shared, &record, 4, 20);
            assert!(failed > 0, "the sync that failed covered some call");
            // The pager asks to be reopened.
            let after = shared.write_and_sync(|pager| pager.alloc().map(|_| ()));
            assert!(after.is_err());
            drop(shared.into_inner().unwrap());
            let record = record.lock().unwrap();
            let opened = check_file(&path, &record.made, &record.returned).unwrap();
            // No call made after the failure returned Ok.
            assert!(record.returned.iter().all(|&g| g <= opened));
            assert_eq!(record.returned.len() + failed, 80);
        }
    }
}

/// The child: commits from 6 threads until killed, printing the generation
/// of each call that returned.
#[test]
fn killed_child_commits() {
    let Ok(path) = std::env::var("GROUP_CHILD_PATH") else {
        return;
    };
    let shared = ConcurrentPager::new(P::open(&path).unwrap()).unwrap();
    let record = Arc::new(Mutex::new(Record::default()));
    let stdout = Arc::new(Mutex::new(std::io::stdout()));
    let handles: Vec<_> = (0..6u32)
        .map(|thread| {
            let (shared, record, stdout) =
                (shared.clone(), Arc::clone(&record), Arc::clone(&stdout));
            std::thread::spawn(move || {
                for seq in 0.. {
                    let generation = commit_one(&shared, &record, thread, seq).unwrap();
                    let commit = record.lock().unwrap().made[&generation];
                    use std::io::Write;
                    let mut out = stdout.lock().unwrap();
                    writeln!(
                        out,
                        "COMMIT {generation} {} {} {}",
                        commit.page, thread, seq
                    )
                    .unwrap();
                    out.flush().unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
}

/// A process killed while 6 threads commit through `write_and_sync`
/// leaves a file that opens with every commit whose call had returned.
#[test]
fn a_killed_process_keeps_every_returned_commit() {
    if std::env::var("GROUP_CHILD_PATH").is_ok() {
        return;
    }
    for round in 0..4u64 {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_file(&dir, "group.pages");
        drop(P::create(&path).unwrap());
        let mut child = process_support::spawn_child(
            "killed_child_commits",
            "GROUP_CHILD_ROLE",
            "child",
            "GROUP_CHILD_PATH",
            &path,
        );
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut made = BTreeMap::new();
        let mut returned = Vec::new();
        // Kill after a number of returned commits that varies by round.
        let wanted = 20 + round * 37;
        while (returned.len() as u64) < wanted {
            let Some(Ok(line)) = lines.next() else { break };
            let Some(rest) = line.strip_prefix("COMMIT ") else {
                continue;
            };
            let fields: Vec<u64> = rest.split(' ').map(|f| f.parse().unwrap()).collect();
            let commit = Commit {
                page: fields[1],
                thread: fields[2] as u32,
                seq: fields[3] as u32,
            };
            made.insert(fields[0], commit);
            returned.push(fields[0]);
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(returned.len() as u64, wanted, "the child stopped early");
        // Commits the child made but had not printed may be there too: the
        // file must hold every printed one, and be consistent.
        let pager = P::open(&path).unwrap();
        let opened = pager.generation();
        assert!(returned.iter().all(|&g| g <= opened));
        for (generation, commit) in &made {
            let bytes = PageId::<PS>(commit.page).get(&pager).unwrap();
            assert_eq!(
                bytes.as_bytes()[..8],
                commit.bytes(),
                "commit of generation {generation}"
            );
        }
        assert!(pager.allocated_page_count() as usize >= made.len());
    }
}

/// Sixteen tasks commit through the async twin, on a current-thread and on
/// a multi-thread runtime (waiters await a notification, leaders run their
/// sync on the blocking pool): every call returns, and every commit is
/// there after a reopen.
#[cfg(feature = "async")]
#[test]
fn async_callers_share_syncs_on_both_runtimes() {
    // A hang is the failure this guards against: end the test binary
    // rather than wait for ever.
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(120));
        eprintln!("async group commit hung");
        std::process::exit(1);
    });
    for flavor in ["current_thread", "multi_thread"] {
        let dir = tempfile::tempdir().unwrap();
        let path = temp_file(&dir, "group.pages");
        let shared = ConcurrentPager::new(P::create(&path).unwrap()).unwrap();
        let record = Arc::new(Mutex::new(Record::default()));
        let runtime = match flavor {
            "current_thread" => tokio::runtime::Builder::new_current_thread(),
            _ => tokio::runtime::Builder::new_multi_thread(),
        }
        .enable_all()
        .build()
        .unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..16u32)
                .map(|thread| {
                    let (shared, record) = (shared.clone(), Arc::clone(&record));
                    tokio::spawn(async move {
                        for seq in 0..10u32 {
                            let generation = shared
                                .write_and_sync_async(|pager| {
                                    one_transaction(pager, &record, thread, seq)
                                })
                                .await
                                .unwrap();
                            record.lock().unwrap().returned.push(generation);
                        }
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap();
            }
        });
        drop(shared.into_inner().unwrap());
        let record = record.lock().unwrap();
        assert_eq!(record.returned.len(), 160, "{flavor}");
        check_file(&path, &record.made, &record.returned).unwrap();
    }
}

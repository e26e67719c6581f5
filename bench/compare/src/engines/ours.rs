//! This crate, in the ways the single-operation workloads use it (one call
//! per operation, one transaction, a `Deferred` write and `sync()`,
//! `Deferred` transactions with an occasional sync), and the B+tree of
//! `mappedpages-btree` on it for KV.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use mappedpages::{ConcurrentPager, Durability, LiveReader, PageId, Pager, ProtectedPageId};

use super::{Engine, ReadData, Work};
use crate::support::stats::{ns, Rng};
use crate::support::workloads::{
    check_root, head, read_batch, replace_pages, written_pages, R6Writer, R6_BATCH, R6_PAGES,
};
use crate::support::PAGE;
use crate::workloads::group::{text, Committer, GroupStore, Stamped, THREADS};
use crate::workloads::kv::{pop_alternately, KvConnection, KvRead, KvStore, Pair, SortedPair, KEY};
use crate::workloads::r6::R6Store;
use crate::workloads::rp::R6Follower;
use crate::workloads::w8::Churn;
use crate::{Op, R};
use mappedpages_btree::{Db, DbOptions, ReadTxn, WriteTxn};

/// How a single-operation workload drives the pager.
pub enum Mappedpages {
    /// One call per operation (`alloc`, a write then `sync()`, a protected
    /// commit), `Immediate` or, without sync, `Deferred`; T3's transaction.
    Single,
    /// One transaction per operation: alloc + write + commit.
    Txn,
    /// `Deferred` alloc + write, then `sync()`: W2 with the sync apart.
    DeferredThenSync,
    /// A `Deferred` transaction per operation with an untimed `sync()` every
    /// 128: beside the unsynced row, it shows that a `Deferred` commit
    /// writes only its own checks, whatever the commits since the last sync.
    SyncEvery128,
}

fn create(dir: &Path, durability: Durability, pages: u64) -> R<Pager<PAGE>> {
    Ok(Pager::<PAGE>::options()
        .durability(durability)
        .initial_pages(pages)
        .create(dir.join("ours.pages"))?)
}

fn durability(sync: bool) -> Durability {
    if sync {
        Durability::Immediate
    } else {
        Durability::Deferred
    }
}

/// One transaction that allocates a page, fills it with `data` stamped with
/// `i`, and commits: its time in nanoseconds.
fn commit_one_page(p: &mut Pager<PAGE>, data: &[u8], i: u64) -> R<f64> {
    let start = Instant::now();
    let mut txn = p.transaction()?;
    let id = txn.alloc()?;
    let page = txn.get_mut(id)?.as_bytes_mut();
    page.copy_from_slice(data);
    page[0] = i as u8;
    txn.commit()?;
    Ok(ns(start.elapsed()))
}

impl Mappedpages {
    fn write_op(&self, sync: bool, dir: &Path, pages: u64) -> R<Op> {
        let data = vec![0xA5u8; PAGE];
        Ok(match self {
            Mappedpages::Single => {
                let mut p = create(dir, durability(sync), pages)?;
                Box::new(move |i| {
                    let start = Instant::now();
                    let id: PageId<PAGE> = p.alloc()?;
                    let page = id.get_mut(&mut p)?.as_bytes_mut();
                    page.copy_from_slice(&data);
                    page[0] = i as u8;
                    if sync {
                        p.sync()?;
                    }
                    Ok(ns(start.elapsed()))
                })
            }
            Mappedpages::DeferredThenSync => {
                let mut p = create(dir, Durability::Deferred, pages)?;
                Box::new(move |i| {
                    let start = Instant::now();
                    let id: PageId<PAGE> = p.alloc()?;
                    let page = id.get_mut(&mut p)?.as_bytes_mut();
                    page.copy_from_slice(&data);
                    page[0] = i as u8;
                    p.sync()?;
                    Ok(ns(start.elapsed()))
                })
            }
            Mappedpages::Txn => {
                let mut p = create(dir, durability(sync), pages)?;
                Box::new(move |i| commit_one_page(&mut p, &data, i))
            }
            Mappedpages::SyncEvery128 => {
                let mut p = create(dir, Durability::Deferred, pages)?;
                Box::new(move |i| {
                    if i % 128 == 0 {
                        p.sync()?;
                    }
                    commit_one_page(&mut p, &data, i)
                })
            }
        })
    }
}

impl Engine for Mappedpages {
    fn id(&self) -> &'static str {
        match self {
            Mappedpages::Single => "ours",
            Mappedpages::Txn => "ours-txn",
            Mappedpages::DeferredThenSync => "ours-deferred",
            Mappedpages::SyncEvery128 => "ours-sync128",
        }
    }

    fn label(&self, work: Work) -> String {
        let mode = if work.sync() { "Immediate" } else { "Deferred" };
        match self {
            Mappedpages::Single => format!("mappedpages (this crate), {mode}"),
            Mappedpages::Txn => format!(
                "mappedpages (this crate), {mode}, one transaction: alloc + write + commit"
            ),
            Mappedpages::DeferredThenSync => {
                "mappedpages (this crate), Deferred alloc + write, then sync()".into()
            }
            Mappedpages::SyncEvery128 => {
                "mappedpages (this crate), Deferred transaction, an untimed sync() every 128 commits"
                    .into()
            }
        }
    }

    fn name(&self) -> &'static str {
        "mappedpages (this crate)"
    }

    fn op(&self, work: Work, dir: &Path, cap: usize) -> R<Op> {
        let pages = cap as u64 + 1024;
        let data = vec![0xA5u8; PAGE];
        match (self, work) {
            (_, Work::Write { sync }) => self.write_op(sync, dir, pages),
            (Mappedpages::Single, Work::Alloc { sync }) => {
                let mut p = create(dir, durability(sync), pages)?;
                Ok(Box::new(move |_| {
                    let start = Instant::now();
                    let id = p.alloc()?;
                    let t = ns(start.elapsed());
                    std::hint::black_box(id);
                    Ok(t)
                }))
            }
            (Mappedpages::Single, Work::Overwrite { sync }) => {
                let mut p = create(dir, durability(sync), 1024)?;
                let id = p.alloc_protected()?;
                Ok(Box::new(move |i| {
                    let start = Instant::now();
                    let mut w = id.get_mut(&mut p)?;
                    let page = w.page_mut().as_bytes_mut();
                    page.copy_from_slice(&data);
                    page[0] = i as u8;
                    w.commit()?;
                    Ok(ns(start.elapsed()))
                }))
            }
            (Mappedpages::Single, Work::Txn { k }) => {
                // k fresh pages and the protected root; the k pages the
                // transaction before wrote freed.
                let mut p = create(dir, Durability::Immediate, 4 * k as u64 + 1024)?;
                let root = p.alloc_protected()?;
                let mut older: Vec<PageId<PAGE>> = Vec::new();
                Ok(Box::new(move |i| {
                    let start = Instant::now();
                    let freed = std::mem::take(&mut older);
                    older = replace_pages(&mut p, root, freed, k, |_, page| {
                        page.copy_from_slice(&data);
                        page[0] = i as u8;
                    })?;
                    Ok(ns(start.elapsed()))
                }))
            }
            _ => Err(format!("no system {} in {work:?}", self.id()).into()),
        }
    }

    fn reads(&self, _dir: &Path, data: &ReadData) -> R<(String, Op)> {
        let pager = data.pager.clone();
        let ids: Vec<PageId<PAGE>> = data.order.iter().map(|&i| data.ids[i as usize]).collect();
        Ok((
            "mappedpages (this crate) get".into(),
            Box::new(move |_| {
                let start = Instant::now();
                let mut sum = 0u64;
                for id in &ids {
                    sum = sum.wrapping_add(head(id.get(&pager)?.as_bytes()));
                }
                std::hint::black_box(sum);
                Ok(ns(start.elapsed()) / ids.len() as f64)
            }),
        ))
    }

    fn bulk(&self, path: &Path, count: usize) -> R<(f64, usize)> {
        let mut p = Pager::<PAGE>::create(path)?;
        let start = Instant::now();
        let ids = p.alloc_bulk(count)?;
        Ok((ns(start.elapsed()), ids.len()))
    }

    fn build_small_pages(&self, path: &Path, count: u64) -> R<()> {
        let mut p = Pager::<1024>::options()
            .durability(Durability::Deferred)
            .preallocate(false)
            .create(path)?;
        let mut left = count;
        let chunk = 1u64 << 24;
        while left > 0 {
            let c = left.min(chunk);
            let ids = p.alloc_bulk(c as usize)?;
            std::hint::black_box(ids);
            left -= c;
        }
        p.sync()?;
        Ok(())
    }

    fn open_small_pages(&self, path: &Path) -> R<f64> {
        let start = Instant::now();
        let p = Pager::<1024>::open(path)?;
        let t = ns(start.elapsed());
        drop(p);
        Ok(t)
    }

    fn r6(&self, dir: &Path) -> R<Box<dyn R6Store>> {
        Ok(Box::new(OursR6::create(dir, false)?))
    }

    fn r6_followed(&self, dir: &Path) -> R<Box<dyn R6Store>> {
        Ok(Box::new(OursR6::create(dir, true)?))
    }

    fn r6_follower(&self, dir: &Path) -> R<Box<dyn R6Follower>> {
        let reader = LiveReader::<PAGE>::open(dir.join(R6_FILE))?;
        // The pages written first are the lowest, and the writer never
        // frees them.
        let ids = reader
            .snapshot()?
            .iter_allocated_pages()
            .take(R6_PAGES as usize)
            .collect();
        Ok(Box::new(OursFollower { reader, ids }))
    }

    fn churn(&self, dir: &Path, churn: &Churn) -> R<(String, PathBuf)> {
        // Pages are the values.
        let path = dir.join("w8.pages");
        let mut p = Pager::<PAGE>::options()
            .durability(Durability::Deferred)
            .create(&path)?;
        let ids = p.alloc_bulk(churn.n as usize)?;
        for id in &ids {
            id.get_mut(&mut p)?
                .as_bytes_mut()
                .copy_from_slice(&churn.data);
        }
        p.sync()?;
        p.free_bulk(churn.freed.iter().map(|&k| ids[k as usize]).collect())?;
        let more = p.alloc_bulk(churn.again as usize)?;
        for id in &more {
            id.get_mut(&mut p)?
                .as_bytes_mut()
                .copy_from_slice(&churn.data);
        }
        p.sync()?;
        Ok(("mappedpages (this crate)".into(), path))
    }

    fn group(&self, dir: &Path) -> R<Vec<Box<dyn GroupStore>>> {
        let store = |grouped: bool, name: &str| -> R<Box<dyn GroupStore>> {
            // The pager's defaults: Durability::Immediate, which commits
            // inside write_and_sync do not use.
            let pager = Pager::<PAGE>::create(dir.join(name))?;
            let most = THREADS.iter().copied().max().unwrap_or(1);
            Ok(Box::new(OursGroup {
                shared: ConcurrentPager::new(pager)?,
                grouped,
                previous: Mutex::new(vec![None; most]),
            }))
        };
        Ok(vec![
            store(true, "grouped.pages")?,
            store(false, "immediate.pages")?,
        ])
    }

    fn kv(&self, dir: &Path) -> R<Box<dyn KvStore>> {
        // Durability::Immediate, and the memory redb's harness gives redb's
        // cache as the bound on the pages a transaction holds.
        let path = dir.join("kv.pages");
        Ok(Box::new(BtreeKv {
            db: Some(kv_options(Durability::Immediate).create(&path)?),
            path,
        }))
    }
}

/// The KV store's options: `durability`, and a transaction holding up to
/// as many bytes of changed pages as redb's harness gives redb's cache.
fn kv_options(durability: Durability) -> DbOptions {
    Db::options()
        .durability(durability)
        .transaction_memory(KV_TRANSACTION_MEMORY)
}

/// The KV store's bound on a transaction's changed pages: 4 GiB, redb's
/// cache in redb's harness (on 32-bit targets, what an address space allows).
const KV_TRANSACTION_MEMORY: usize = if usize::BITS >= 64 { 4 << 30 } else { 1 << 30 };

/// R6 on a `ConcurrentPager`: readers take snapshots while the writer
/// commits.
struct OursR6 {
    shared: ConcurrentPager<PAGE>,
    root: ProtectedPageId<PAGE>,
    ids: Vec<PageId<PAGE>>,
    /// The writer's state; only the writer thread locks it, so the lock is
    /// never contended.
    writer: Mutex<R6Writer>,
}

/// R6's file in its directory.
const R6_FILE: &str = "r6.pages";

impl OursR6 {
    /// R6's store in `dir`; with `process_readers`, one that readers in
    /// other processes can follow.
    fn create(dir: &Path, process_readers: bool) -> R<OursR6> {
        let path = dir.join(R6_FILE);
        let (mut pager, ids) = written_pages(&path, R6_PAGES, 4096, Durability::Immediate)?;
        if process_readers {
            drop(pager);
            pager = Pager::options().process_readers(true).open(&path)?;
        }
        let root = pager.alloc_protected()?;
        Ok(OursR6 {
            shared: ConcurrentPager::new(pager)?,
            root,
            ids,
            writer: Mutex::new(R6Writer::new(root)),
        })
    }
}

/// RP: a `LiveReader` of R6's file, reading its first pages.
struct OursFollower {
    reader: LiveReader<PAGE>,
    ids: Vec<PageId<PAGE>>,
}

impl R6Follower for OursFollower {
    fn read_batch(&mut self, rng: &mut Rng) -> Result<(u64, f64), String> {
        let start = Instant::now();
        let snap = self.reader.snapshot().map_err(|e| e.to_string())?;
        let begin = ns(start.elapsed());
        let mask = self.ids.len() as u64 - 1;
        let mut sum = 0u64;
        for _ in 0..R6_BATCH {
            let id = self.ids[(rng.next() & mask) as usize];
            let page = snap.get(id).map_err(|e| e.to_string())?;
            let first = head(page.as_bytes());
            if first != id.0 {
                return Err(format!("page {} starts with {first}", id.0));
            }
            sum = sum.wrapping_add(first);
        }
        Ok((sum, begin))
    }
}

impl R6Store for OursR6 {
    fn label(&self) -> &'static str {
        "mappedpages (this crate), ConcurrentPager"
    }

    fn commit(&self) -> Result<(), String> {
        let mut writer = self.writer.lock().map_err(|e| e.to_string())?;
        writer.commit(&self.shared)
    }

    fn read_batch(&self, rng: &mut Rng) -> Result<u64, String> {
        let snap = self.shared.read().map_err(|e| e.to_string())?;
        check_root(&snap, self.root)?;
        read_batch(&snap, &self.ids, rng)
    }
}

/// G on a `ConcurrentPager`: every thread's transaction allocates a page,
/// writes it and frees the page its transaction before wrote.
struct OursGroup {
    shared: ConcurrentPager<PAGE>,
    /// `write_and_sync`, or `Immediate` commits through `write()`.
    grouped: bool,
    /// The page each thread number's last commit wrote, kept from window to
    /// window so that the file does not grow.
    previous: Mutex<Vec<Option<PageId<PAGE>>>>,
}

impl GroupStore for OursGroup {
    fn label(&self) -> &'static str {
        if self.grouped {
            "mappedpages (this crate), ConcurrentPager::write_and_sync"
        } else {
            "mappedpages (this crate), ConcurrentPager::write(), each commit Immediate"
        }
    }

    fn short(&self) -> &'static str {
        "this crate"
    }

    fn committer(&self, thread: usize) -> Result<Box<dyn Committer + '_>, String> {
        let previous = self.previous.lock().map_err(text)?[thread].take();
        Ok(Box::new(OursCommitter {
            store: self,
            thread,
            previous,
            value: Stamped::new(thread),
        }))
    }
}

struct OursCommitter<'a> {
    store: &'a OursGroup,
    thread: usize,
    previous: Option<PageId<PAGE>>,
    value: Stamped,
}

/// One thread's transaction: a new page holding `value`, `previous` freed.
fn group_commit(
    pager: &mut Pager<PAGE>,
    previous: &mut Option<PageId<PAGE>>,
    value: &[u8],
) -> mappedpages::Result<()> {
    let mut txn = pager.transaction()?;
    let id = txn.alloc()?;
    txn.get_mut(id)?.as_bytes_mut().copy_from_slice(value);
    if let Some(old) = *previous {
        txn.free(old)?;
    }
    txn.commit()?;
    *previous = Some(id);
    Ok(())
}

impl Committer for OursCommitter<'_> {
    fn commit(&mut self) -> Result<(), String> {
        let value = self.value.next();
        let previous = &mut self.previous;
        if self.store.grouped {
            self.store
                .shared
                .write_and_sync(|pager| group_commit(pager, previous, value))
                .map_err(text)
        } else {
            let mut writer = self.store.shared.write().map_err(text)?;
            group_commit(&mut writer, previous, value).map_err(text)
        }
    }
}

impl Drop for OursCommitter<'_> {
    fn drop(&mut self) {
        if let Ok(mut previous) = self.store.previous.lock() {
            previous[self.thread] = self.previous.take();
        }
    }
}

/// KV on the B+tree of `mappedpages-btree`.
struct BtreeKv {
    /// None only while it is reopened with another durability.
    db: Option<Db>,
    path: PathBuf,
}

impl BtreeKv {
    fn db(&mut self) -> R<&mut Db> {
        Ok(self.db.as_mut().ok_or("the store is closed")?)
    }

    /// One write transaction doing `work`, committed.
    fn write<T>(&mut self, work: impl FnOnce(&mut WriteTxn<'_>) -> R<T>) -> R<T> {
        let mut w = self.db()?.write()?;
        let done = work(&mut w)?;
        w.commit()?;
        Ok(done)
    }
}

impl KvStore for BtreeKv {
    fn label(&self) -> &'static str {
        "B+tree on mappedpages (this crate, mappedpages-btree), Immediate, 4 GiB transaction memory"
    }

    fn short(&self) -> &'static str {
        "this crate"
    }

    fn insert(&mut self, pairs: &mut dyn Iterator<Item = Pair>) -> R<()> {
        self.write(|w| {
            for (k, v) in pairs {
                w.insert(&k, &v)?;
            }
            Ok(())
        })
    }

    fn insert_sorted(&mut self, pairs: &[SortedPair]) -> R<()> {
        self.write(|w| {
            for (k, v) in pairs {
                w.insert(k, v)?;
            }
            Ok(())
        })
    }

    fn sorted_by(&self) -> &'static str {
        "plain inserts: a key past the last one fills the right-edge leaf and starts the next"
    }

    fn unsynced_by(&self) -> &'static str {
        "Durability::Deferred: the store reopened so, synced and reopened Immediate after (untimed)"
    }

    fn set_sync(&mut self, sync: bool) -> R<()> {
        // The durability is chosen when the store is opened: the no-sync
        // phase reopens it Deferred, and after it syncs what it deferred
        // and reopens it Immediate.
        let durability = if sync {
            self.db()?.sync()?;
            Durability::Immediate
        } else {
            Durability::Deferred
        };
        drop(self.db.take());
        self.db = Some(kv_options(durability).open(&self.path)?);
        Ok(())
    }

    fn remove(&mut self, keys: &mut dyn Iterator<Item = [u8; KEY]>) -> R<u64> {
        self.write(|w| {
            let mut found = 0;
            for k in keys {
                found += u64::from(w.remove(&k)?.is_some());
            }
            Ok(found)
        })
    }

    fn retain(&mut self, keep: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> R<u64> {
        self.write(|w| Ok(w.retain(keep)?))
    }

    fn extract_if(
        &mut self,
        from: &[u8],
        to: &[u8],
        pick: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> R<u64> {
        self.write(|w| {
            let taken = w.extract_if(from..to, |k, v| pick(k, v))?;
            Ok(taken.len() as u64)
        })
    }

    fn pop(&mut self, count: usize) -> R<()> {
        self.write(|w| {
            pop_alternately(count, |first| {
                let popped = if first { w.pop_first()? } else { w.pop_last()? };
                Ok(popped.is_some())
            })
        })
    }

    fn connect(&self) -> R<Box<dyn KvConnection + '_>> {
        // A snapshot of the last commit: what a thread reads from.
        let db = self.db.as_ref().ok_or("the store is closed")?;
        Ok(Box::new(BtreeConnection(db.read()?)))
    }

    fn compact(&mut self) -> R<()> {
        self.db()?.compact()?;
        Ok(())
    }

    fn sync_count(&self) -> Option<u64> {
        self.db.as_ref().map(|db| db.pager().sync_count())
    }
}

/// A read transaction, taken on the thread that connects and read on the
/// one it is sent to.
struct BtreeConnection(ReadTxn);

impl KvConnection for BtreeConnection {
    fn begin(&self) -> R<Box<dyn KvRead + '_>> {
        Ok(Box::new(BtreeRead(&self.0)))
    }
}

struct BtreeRead<'a>(&'a ReadTxn);

impl KvRead for BtreeRead<'_> {
    fn len(&mut self) -> R<u64> {
        Ok(self.0.len())
    }

    fn first_byte(&mut self, key: &[u8]) -> R<Option<u8>> {
        Ok(self.0.get(key)?.map(|v| v[0]))
    }

    fn scan(&mut self, from: &[u8], len: usize) -> R<u64> {
        let mut sum = 0;
        for e in self.0.range(from..)?.take(len) {
            sum += u64::from(e?.1[0]);
        }
        Ok(sum)
    }
}

//! LMDB through heed: a sync at every commit (or `NO_SYNC`), integer keys
//! for the page workloads and byte keys for KV. LMDB writes its meta page
//! through an `O_DSYNC` descriptor, which the sync count includes.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::time::Instant;

use heed::types::{Bytes, U64};
use heed::{
    byteorder::BigEndian, CompactionOption, EnvFlags, EnvOpenOptions, FlagSetMode, PutFlags,
};

use super::{Engine, ReadData, Work};
use crate::support::stats::{ns, Rng};
use crate::support::workloads::{head, R6_BATCH, R6_K, R6_PAGES};
use crate::support::PAGE;
use crate::workloads::group::{Committer, GroupStore, Stamped};
use crate::workloads::kv::{pop_alternately, KvConnection, KvRead, KvStore, Pair, SortedPair, KEY};
use crate::workloads::r6::{text, R6Keys, R6Store, R6_ROOT};
use crate::workloads::rp::R6Follower;
use crate::workloads::w8::{Churn, CHURN_BATCH};
use crate::{Op, R};

pub struct Lmdb;

type Db = heed::Database<U64<BigEndian>, Bytes>;
type KvDb = heed::Database<Bytes, Bytes>;

/// An environment in `dir/lmdb`, with NO_SYNC unless `sync`.
fn create(dir: &Path, sync: bool, map_size: usize) -> R<(heed::Env, Db)> {
    let path = dir.join("lmdb");
    std::fs::create_dir_all(&path)?;
    let mut opts = EnvOpenOptions::new();
    opts.map_size(map_size).max_dbs(1);
    if !sync {
        // SAFETY: NO_SYNC only changes durability on power loss; the
        // environment is used by this process alone.
        unsafe { opts.flags(EnvFlags::NO_SYNC) };
    }
    // SAFETY: the directory is new and opened once, by this process only.
    let env = unsafe { opts.open(&path)? };
    let mut wtxn = env.write_txn()?;
    let db: Db = env.create_database(&mut wtxn, None)?;
    wtxn.commit()?;
    Ok((env.clone(), db))
}

/// An environment of `n` values of one page, each starting with its key,
/// written in one transaction.
fn filled(dir: &Path, n: u64, map_size: usize) -> R<(heed::Env, Db)> {
    let (env, db) = create(dir, true, map_size)?;
    let mut block = vec![0u8; PAGE];
    let mut w = env.write_txn()?;
    for i in 0..n {
        block[..8].copy_from_slice(&i.to_le_bytes());
        db.put(&mut w, &i, &block)?;
    }
    w.commit()?;
    Ok((env, db))
}

impl Engine for Lmdb {
    fn id(&self) -> &'static str {
        "lmdb"
    }

    fn label(&self, work: Work) -> String {
        if work.sync() {
            "LMDB (heed)".into()
        } else {
            "LMDB (heed), NO_SYNC".into()
        }
    }

    fn op(&self, work: Work, dir: &Path, _cap: usize) -> R<Op> {
        let data = vec![0xA5u8; PAGE];
        match work {
            Work::Write { sync } => {
                let (env, db) = create(dir, sync, 1 << 30)?;
                Ok(Box::new(move |i| {
                    let start = Instant::now();
                    let mut w = env.write_txn()?;
                    db.put(&mut w, &i, &data)?;
                    w.commit()?;
                    Ok(ns(start.elapsed()))
                }))
            }
            Work::Overwrite { sync } => {
                let (env, db) = create(dir, sync, 1 << 26)?;
                Ok(Box::new(move |i| {
                    let mut v = data.clone();
                    v[0] = i as u8;
                    let start = Instant::now();
                    let mut w = env.write_txn()?;
                    db.put(&mut w, &0, &v)?;
                    w.commit()?;
                    Ok(ns(start.elapsed()))
                }))
            }
            Work::Txn { k } => {
                let keys = move |i: u64| (i * k as u64)..((i + 1) * k as u64);
                let (env, db) = create(dir, true, 1 << 30)?;
                Ok(Box::new(move |i| {
                    let start = Instant::now();
                    let mut w = env.write_txn()?;
                    for key in keys(i) {
                        db.put(&mut w, &key, &data)?;
                    }
                    if i > 0 {
                        for key in keys(i - 1) {
                            db.delete(&mut w, &key)?;
                        }
                    }
                    w.commit()?;
                    Ok(ns(start.elapsed()))
                }))
            }
            Work::Alloc { .. } => Err(format!("no system lmdb in {work:?}").into()),
        }
    }

    fn reads(&self, dir: &Path, data: &ReadData) -> R<(String, Op)> {
        let n = data.ids.len();
        let (env, db) = filled(dir, n as u64, (n * PAGE * 3).max(1 << 28))?;
        let order = data.order.clone();
        Ok((
            "LMDB (heed) get, one read txn per pass".into(),
            Box::new(move |_| {
                let start = Instant::now();
                let r = env.read_txn()?;
                let mut sum = 0u64;
                for &i in order.iter() {
                    let v = db.get(&r, &i)?.ok_or("missing")?;
                    sum = sum.wrapping_add(head(v));
                }
                std::hint::black_box(sum);
                drop(r);
                Ok(ns(start.elapsed()) / order.len() as f64)
            }),
        ))
    }

    fn r6_followed(&self, dir: &Path) -> R<Box<dyn R6Store>> {
        // LMDB's readers in other processes need nothing more.
        self.r6(dir)
    }

    fn r6_follower(&self, dir: &Path) -> R<Box<dyn R6Follower>> {
        let mut opts = EnvOpenOptions::new();
        opts.map_size(R6_MAP_SIZE).max_dbs(1);
        // SAFETY: the environment's writer is the parent process, which
        // opened it with the same options; LMDB coordinates them through
        // its lock file.
        let env = unsafe { opts.open(dir.join("lmdb"))? };
        let rtxn = env.read_txn()?;
        let db: Db = env.open_database(&rtxn, None)?.ok_or("no database")?;
        drop(rtxn);
        Ok(Box::new(LmdbFollower { env, db }))
    }

    fn r6(&self, dir: &Path) -> R<Box<dyn R6Store>> {
        let (env, db) = filled(dir, R6_PAGES, R6_MAP_SIZE)?;
        Ok(Box::new(LmdbR6 {
            env,
            db,
            keys: R6Keys::new(),
        }))
    }

    fn churn(&self, dir: &Path, churn: &Churn) -> R<(String, PathBuf)> {
        let (n, again) = (churn.n, churn.again);
        let (env, db) = create(dir, true, (n as usize * PAGE * 4).max(1 << 28))?;
        let put = |keys: &mut dyn Iterator<Item = u64>| -> R<()> {
            let mut w = env.write_txn()?;
            for k in keys {
                db.put(&mut w, &k, &churn.data)?;
            }
            w.commit()?;
            Ok(())
        };
        for s in (0..n).step_by(CHURN_BATCH) {
            put(&mut (s..(s + CHURN_BATCH as u64).min(n)))?;
        }
        for c in churn.freed.chunks(CHURN_BATCH) {
            let mut w = env.write_txn()?;
            for &k in c {
                db.delete(&mut w, &k)?;
            }
            w.commit()?;
        }
        for s in (n..n + again).step_by(CHURN_BATCH) {
            put(&mut (s..(s + CHURN_BATCH as u64).min(n + again)))?;
        }
        // data.mdb only: lock.mdb is not data.
        Ok(("LMDB (heed)".into(), dir.join("lmdb").join("data.mdb")))
    }

    fn group(&self, dir: &Path) -> R<Vec<Box<dyn GroupStore>>> {
        // Default flags: a sync at every commit.
        let (env, db) = create(dir, true, 1 << 28)?;
        Ok(vec![Box::new(LmdbGroup { env, db })])
    }

    fn kv(&self, dir: &Path) -> R<Box<dyn KvStore>> {
        // As redb's benchmark opens it: a 4 GiB map, default flags (a sync
        // at every commit), the unnamed database.
        let env = open_kv(dir)?;
        let mut w = env.write_txn()?;
        let db: KvDb = env.create_database(&mut w, None)?;
        w.commit()?;
        Ok(Box::new(LmdbKv { env: Some(env), db }))
    }
}

/// R6's map size.
const R6_MAP_SIZE: usize = 1 << 30;

/// RP: an environment opened in a reader process.
struct LmdbFollower {
    env: heed::Env,
    db: Db,
}

impl R6Follower for LmdbFollower {
    fn read_batch(&mut self, rng: &mut Rng) -> Result<(u64, f64), String> {
        let start = Instant::now();
        let r = self.env.read_txn().map_err(text)?;
        let begin = ns(start.elapsed());
        let mask = R6_PAGES - 1;
        let mut sum = 0u64;
        for _ in 0..R6_BATCH {
            let k = rng.next() & mask;
            let v = self.db.get(&r, &k).map_err(text)?.ok_or("missing")?;
            let first = head(v);
            if first != k {
                return Err(format!("value {k} starts with {first}"));
            }
            sum = sum.wrapping_add(first);
        }
        Ok((sum, begin))
    }
}

struct LmdbR6 {
    env: heed::Env,
    db: Db,
    keys: R6Keys,
}

impl R6Store for LmdbR6 {
    fn label(&self) -> &'static str {
        "LMDB (heed)"
    }

    fn commit(&self) -> Result<(), String> {
        let mut keys = self.keys.lock()?;
        let (fresh, older) = keys.next_commit(R6_K);
        let mut block = vec![0u8; PAGE];
        let mut t = self.env.write_txn().map_err(text)?;
        for &k in &fresh {
            block[..8].copy_from_slice(&k.to_le_bytes());
            self.db.put(&mut t, &k, &block).map_err(text)?;
        }
        for k in older {
            self.db.delete(&mut t, &k).map_err(text)?;
        }
        self.db
            .put(&mut t, &R6_ROOT, &fresh[0].to_le_bytes())
            .map_err(text)?;
        t.commit().map_err(text)?;
        keys.committed(fresh);
        Ok(())
    }

    fn read_batch(&self, rng: &mut Rng) -> Result<u64, String> {
        let mask = R6_PAGES - 1;
        let mut sum = 0u64;
        let r = self.env.read_txn().map_err(text)?;
        if let Some(v) = self.db.get(&r, &R6_ROOT).map_err(text)? {
            let newest = head(v);
            let page = self.db.get(&r, &newest).map_err(text)?.ok_or("missing")?;
            if head(page) != newest {
                return Err("the root's value is not its commit's".into());
            }
        }
        for _ in 0..R6_BATCH {
            let k = rng.next() & mask;
            let v = self.db.get(&r, &k).map_err(text)?.ok_or("missing")?;
            sum = sum.wrapping_add(head(v));
        }
        Ok(sum)
    }
}

/// G: every thread overwrites a key of its own in a write transaction of
/// its own (LMDB runs one at a time).
struct LmdbGroup {
    env: heed::Env,
    db: Db,
}

impl GroupStore for LmdbGroup {
    fn label(&self) -> &'static str {
        "LMDB (heed), default flags, a write transaction per commit"
    }

    fn short(&self) -> &'static str {
        "LMDB"
    }

    fn committer(&self, thread: usize) -> Result<Box<dyn Committer + '_>, String> {
        Ok(Box::new(LmdbCommitter {
            store: self,
            key: thread as u64,
            value: Stamped::new(thread),
        }))
    }
}

struct LmdbCommitter<'a> {
    store: &'a LmdbGroup,
    key: u64,
    value: Stamped,
}

impl Committer for LmdbCommitter<'_> {
    fn commit(&mut self) -> Result<(), String> {
        let mut w = self.store.env.write_txn().map_err(text)?;
        self.store
            .db
            .put(&mut w, &self.key, self.value.next())
            .map_err(text)?;
        w.commit().map_err(text)
    }
}

/// KV's map size, redb's benchmark's.
const KV_MAP_SIZE: usize = 4 << 30;

/// KV's environment in `dir`.
fn open_kv(dir: &Path) -> R<heed::Env> {
    let mut opts = EnvOpenOptions::new();
    opts.map_size(KV_MAP_SIZE);
    // SAFETY: the directory is opened once at a time, by this process only.
    Ok(unsafe { opts.open(dir)? })
}

struct LmdbKv {
    /// None only while compaction replaces its file.
    env: Option<heed::Env>,
    db: KvDb,
}

impl LmdbKv {
    fn env(&self) -> R<&heed::Env> {
        Ok(self.env.as_ref().ok_or("the environment is closed")?)
    }

    /// One write transaction doing `work`, committed.
    fn write<T>(&mut self, work: impl FnOnce(KvDb, &mut heed::RwTxn) -> R<T>) -> R<T> {
        let mut w = self.env()?.write_txn()?;
        let done = work(self.db, &mut w)?;
        w.commit()?;
        Ok(done)
    }
}

/// Removes at a cursor the pairs `take` picks from `pairs`, in order, with
/// `del_current` (how redb's benchmark drives LMDB's pop, retain and
/// extract_if), stopping after `most`: how many it removed.
fn delete_picked<'t>(
    pairs: &mut heed::RwRange<'t, Bytes, Bytes>,
    most: u64,
    take: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> R<u64> {
    let mut removed = 0;
    while removed < most {
        let Some(pair) = pairs.next() else { break };
        let (k, v) = pair?;
        if take(k, v) {
            // SAFETY: nothing borrowed from the cursor's page is held
            // across the delete.
            unsafe { pairs.del_current()? };
            removed += 1;
        }
    }
    Ok(removed)
}

impl KvStore for LmdbKv {
    fn label(&self) -> &'static str {
        "LMDB (heed), default flags (sync at commit), 4 GiB map"
    }

    fn short(&self) -> &'static str {
        "LMDB"
    }

    fn insert(&mut self, pairs: &mut dyn Iterator<Item = Pair>) -> R<()> {
        self.write(|db, w| {
            for (k, v) in pairs {
                db.put(w, &k, &v)?;
            }
            Ok(())
        })
    }

    fn insert_sorted(&mut self, pairs: &[SortedPair]) -> R<()> {
        self.write(|db, w| {
            for (k, v) in pairs {
                db.put_with_flags(w, PutFlags::APPEND, k, v)?;
            }
            Ok(())
        })
    }

    fn sorted_by(&self) -> &'static str {
        "APPEND puts"
    }

    fn unsynced_by(&self) -> &'static str {
        "NO_SYNC set on the environment"
    }

    fn set_sync(&mut self, sync: bool) -> R<()> {
        let mode = if sync {
            FlagSetMode::Disable
        } else {
            FlagSetMode::Enable
        };
        // SAFETY: no other thread uses the environment meanwhile.
        unsafe { self.env()?.set_flags(EnvFlags::NO_SYNC, mode)? };
        Ok(())
    }

    fn remove(&mut self, keys: &mut dyn Iterator<Item = [u8; KEY]>) -> R<u64> {
        self.write(|db, w| {
            let mut found = 0;
            for k in keys {
                found += u64::from(db.delete(w, &k)?);
            }
            Ok(found)
        })
    }

    fn retain(&mut self, keep: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> R<u64> {
        self.write(|db, w| {
            let mut all = db.range_mut(w, &(Bound::<&[u8]>::Unbounded, Bound::Unbounded))?;
            delete_picked(&mut all, u64::MAX, &mut |k, v| !keep(k, v))
        })
    }

    fn extract_if(
        &mut self,
        from: &[u8],
        to: &[u8],
        pick: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> R<u64> {
        self.write(|db, w| {
            let mut range = db.range_mut(w, &(Bound::Included(from), Bound::Excluded(to)))?;
            delete_picked(&mut range, u64::MAX, pick)
        })
    }

    fn pop(&mut self, count: usize) -> R<()> {
        self.write(|db, w| {
            pop_alternately(count, |first| {
                let all = (Bound::<&[u8]>::Unbounded, Bound::Unbounded);
                if first {
                    return Ok(
                        delete_picked(&mut db.range_mut(w, &all)?, 1, &mut |_, _| true)? == 1,
                    );
                }
                let mut last = db.rev_range_mut(w, &all)?;
                let Some(pair) = last.next() else {
                    return Ok(false);
                };
                pair?;
                // SAFETY: nothing borrowed from the cursor's page is held
                // across the delete.
                Ok(unsafe { last.del_current()? })
            })
        })
    }

    fn connect(&self) -> R<Box<dyn KvConnection + '_>> {
        Ok(Box::new(LmdbConnection(self.env()?, self.db)))
    }

    fn compact(&mut self) -> R<()> {
        // As redb's benchmark compacts LMDB: a compacting copy into a new
        // file, which replaces the data file, and the environment reopened.
        let env = self.env.take().ok_or("the environment is closed")?;
        let dir = env.path().to_path_buf();
        let copy = dir.join("data2.mdb");
        let mut file = std::fs::File::create_new(&copy)?;
        env.copy_to_file(&mut file, CompactionOption::Enabled)?;
        file.sync_all()?;
        drop(file);
        env.prepare_for_closing().wait();
        std::fs::rename(&copy, dir.join("data.mdb"))?;
        let env = open_kv(&dir)?;
        let r = env.read_txn()?;
        self.db = env
            .open_database(&r, None)?
            .ok_or("the compacted file has no database")?;
        drop(r);
        self.env = Some(env);
        Ok(())
    }
}

struct LmdbConnection<'a>(&'a heed::Env, KvDb);

impl KvConnection for LmdbConnection<'_> {
    fn begin(&self) -> R<Box<dyn KvRead + '_>> {
        Ok(Box::new(LmdbRead(self.0.read_txn()?, self.1)))
    }
}

struct LmdbRead<'a>(heed::RoTxn<'a, heed::WithTls>, KvDb);

impl KvRead for LmdbRead<'_> {
    fn len(&mut self) -> R<u64> {
        Ok(self.1.len(&self.0)?)
    }

    fn first_byte(&mut self, key: &[u8]) -> R<Option<u8>> {
        Ok(self.1.get(&self.0, key)?.map(|v| v[0]))
    }

    fn scan(&mut self, from: &[u8], len: usize) -> R<u64> {
        let mut sum = 0;
        let range = (Bound::Included(from), Bound::Unbounded);
        for e in self.1.range(&self.0, &range)?.take(len) {
            sum += u64::from(e?.1[0]);
        }
        Ok(sum)
    }
}

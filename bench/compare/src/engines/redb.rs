//! redb 2, `Durability::Immediate` (or `None` without sync), one table of
//! u64 keys for the page workloads and one of byte keys for KV.

use std::path::{Path, PathBuf};
use std::time::Instant;

use redb::{ReadableTableMetadata, TableDefinition};

use super::{Engine, ReadData, Work};
use crate::support::stats::{ns, Rng};
use crate::support::workloads::{head, R6_BATCH, R6_K, R6_PAGES};
use crate::support::PAGE;
use crate::workloads::group::{Committer, GroupStore, Stamped};
use crate::workloads::kv::{pop_alternately, KvConnection, KvRead, KvStore, Pair, SortedPair, KEY};
use crate::workloads::r6::{text, R6Keys, R6Store, R6_ROOT};
use crate::workloads::w8::{Churn, CHURN_BATCH};
use crate::{Op, R};

pub struct Redb;

const TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("t");
const KV_TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");
/// KV's cache, redb's benchmark's.
const KV_CACHE: usize = 4 << 30;

fn create(dir: &Path, sync: bool) -> R<(redb::Database, redb::Durability)> {
    let db = redb::Database::create(dir.join("redb.db"))?;
    let tx = db.begin_write()?;
    tx.open_table(TABLE)?;
    tx.commit()?;
    let durability = if sync {
        redb::Durability::Immediate
    } else {
        redb::Durability::None
    };
    Ok((db, durability))
}

fn put(db: &redb::Database, durability: redb::Durability, key: u64, value: &[u8]) -> R<()> {
    let mut tx = db.begin_write()?;
    tx.set_durability(durability);
    {
        let mut t = tx.open_table(TABLE)?;
        t.insert(key, value)?;
    }
    tx.commit()?;
    Ok(())
}

/// A database of `n` values of one page, each starting with its key, in
/// one transaction.
fn filled(dir: &Path, n: u64) -> R<redb::Database> {
    let (db, _) = create(dir, true)?;
    let mut block = vec![0u8; PAGE];
    let tx = db.begin_write()?;
    {
        let mut t = tx.open_table(TABLE)?;
        for i in 0..n {
            block[..8].copy_from_slice(&i.to_le_bytes());
            t.insert(i, &block[..])?;
        }
    }
    tx.commit()?;
    Ok(db)
}

impl Engine for Redb {
    fn id(&self) -> &'static str {
        "redb"
    }

    fn label(&self, work: Work) -> String {
        if work.sync() {
            "redb, Durability::Immediate".into()
        } else {
            "redb, Durability::None".into()
        }
    }

    fn op(&self, work: Work, dir: &Path, _cap: usize) -> R<Op> {
        let data = vec![0xA5u8; PAGE];
        match work {
            Work::Write { sync } => {
                let (db, d) = create(dir, sync)?;
                Ok(Box::new(move |i| {
                    let start = Instant::now();
                    put(&db, d, i, &data)?;
                    Ok(ns(start.elapsed()))
                }))
            }
            Work::Overwrite { sync } => {
                let (db, d) = create(dir, sync)?;
                Ok(Box::new(move |i| {
                    let mut v = data.clone();
                    v[0] = i as u8;
                    let start = Instant::now();
                    put(&db, d, 0, &v)?;
                    Ok(ns(start.elapsed()))
                }))
            }
            Work::Txn { k } => {
                let keys = move |i: u64| (i * k as u64)..((i + 1) * k as u64);
                let (db, d) = create(dir, true)?;
                Ok(Box::new(move |i| {
                    let start = Instant::now();
                    let mut tx = db.begin_write()?;
                    tx.set_durability(d);
                    {
                        let mut t = tx.open_table(TABLE)?;
                        for key in keys(i) {
                            t.insert(key, &data[..])?;
                        }
                        if i > 0 {
                            for key in keys(i - 1) {
                                t.remove(key)?;
                            }
                        }
                    }
                    tx.commit()?;
                    Ok(ns(start.elapsed()))
                }))
            }
            Work::Alloc { .. } => Err(format!("no system redb in {work:?}").into()),
        }
    }

    fn reads(&self, dir: &Path, data: &ReadData) -> R<(String, Op)> {
        let db = filled(dir, data.ids.len() as u64)?;
        let order = data.order.clone();
        Ok((
            "redb get, one read txn per pass".into(),
            Box::new(move |_| {
                let start = Instant::now();
                let r = db.begin_read()?;
                let t = r.open_table(TABLE)?;
                let mut sum = 0u64;
                for &i in order.iter() {
                    let v = t.get(i)?.ok_or("missing")?;
                    sum = sum.wrapping_add(head(v.value()));
                }
                std::hint::black_box(sum);
                Ok(ns(start.elapsed()) / order.len() as f64)
            }),
        ))
    }

    fn r6(&self, dir: &Path) -> R<Box<dyn R6Store>> {
        Ok(Box::new(RedbR6 {
            db: filled(dir, R6_PAGES)?,
            keys: R6Keys::new(),
        }))
    }

    fn churn(&self, dir: &Path, churn: &Churn) -> R<(String, PathBuf)> {
        let (db, _) = create(dir, true)?;
        let batch_put = |keys: &mut dyn Iterator<Item = u64>| -> R<()> {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(TABLE)?;
                for k in keys {
                    t.insert(k, &churn.data[..])?;
                }
            }
            tx.commit()?;
            Ok(())
        };
        let (n, again) = (churn.n, churn.again);
        for s in (0..n).step_by(CHURN_BATCH) {
            batch_put(&mut (s..(s + CHURN_BATCH as u64).min(n)))?;
        }
        for c in churn.freed.chunks(CHURN_BATCH) {
            let tx = db.begin_write()?;
            {
                let mut t = tx.open_table(TABLE)?;
                for &k in c {
                    t.remove(k)?;
                }
            }
            tx.commit()?;
        }
        for s in (n..n + again).step_by(CHURN_BATCH) {
            batch_put(&mut (s..(s + CHURN_BATCH as u64).min(n + again)))?;
        }
        Ok(("redb".into(), dir.to_path_buf()))
    }

    fn group(&self, dir: &Path) -> R<Vec<Box<dyn GroupStore>>> {
        // One Database, which every thread shares; its default durability,
        // Durability::Immediate, at every commit.
        let (db, _) = create(dir, true)?;
        Ok(vec![Box::new(RedbGroup(db))])
    }

    fn kv(&self, dir: &Path) -> R<Box<dyn KvStore>> {
        // As redb's benchmark makes it: a 4 GiB cache, and its default
        // Durability::Immediate.
        let db = redb::Database::builder()
            .set_cache_size(KV_CACHE)
            .create(dir.join("kv.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(KV_TABLE)?;
        tx.commit()?;
        Ok(Box::new(RedbKv { db, sync: true }))
    }
}

struct RedbR6 {
    db: redb::Database,
    keys: R6Keys,
}

impl R6Store for RedbR6 {
    fn label(&self) -> &'static str {
        "redb"
    }

    fn commit(&self) -> Result<(), String> {
        let mut keys = self.keys.lock()?;
        let (fresh, older) = keys.next_commit(R6_K);
        let mut block = vec![0u8; PAGE];
        let tx = self.db.begin_write().map_err(text)?;
        {
            let mut t = tx.open_table(TABLE).map_err(text)?;
            for &k in &fresh {
                block[..8].copy_from_slice(&k.to_le_bytes());
                t.insert(k, &block[..]).map_err(text)?;
            }
            for k in older {
                t.remove(k).map_err(text)?;
            }
            t.insert(R6_ROOT, &fresh[0].to_le_bytes()[..])
                .map_err(text)?;
        }
        tx.commit().map_err(text)?;
        keys.committed(fresh);
        Ok(())
    }

    fn read_batch(&self, rng: &mut Rng) -> Result<u64, String> {
        let mask = R6_PAGES - 1;
        let mut sum = 0u64;
        let r = self.db.begin_read().map_err(text)?;
        let t = r.open_table(TABLE).map_err(text)?;
        if let Some(v) = t.get(R6_ROOT).map_err(text)? {
            let newest = head(v.value());
            let page = t.get(newest).map_err(text)?.ok_or("missing")?;
            if head(page.value()) != newest {
                return Err("the root's value is not its commit's".into());
            }
        }
        for _ in 0..R6_BATCH {
            let k = rng.next() & mask;
            let v = t.get(k).map_err(text)?.ok_or("missing")?;
            sum = sum.wrapping_add(head(v.value()));
        }
        Ok(sum)
    }
}

/// G: every thread overwrites a key of its own in a write transaction of
/// its own (redb runs one at a time).
struct RedbGroup(redb::Database);

impl GroupStore for RedbGroup {
    fn label(&self) -> &'static str {
        "redb, one Database, default durability (Immediate), a write transaction per commit"
    }

    fn short(&self) -> &'static str {
        "redb"
    }

    fn committer(&self, thread: usize) -> Result<Box<dyn Committer + '_>, String> {
        Ok(Box::new(RedbCommitter {
            db: &self.0,
            key: thread as u64,
            value: Stamped::new(thread),
        }))
    }
}

struct RedbCommitter<'a> {
    db: &'a redb::Database,
    key: u64,
    value: Stamped,
}

impl Committer for RedbCommitter<'_> {
    fn commit(&mut self) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(text)?;
        {
            let mut t = tx.open_table(TABLE).map_err(text)?;
            t.insert(self.key, self.value.next()).map_err(text)?;
        }
        tx.commit().map_err(text)
    }
}

struct RedbKv {
    db: redb::Database,
    /// Off: commits with Durability::None.
    sync: bool,
}

impl RedbKv {
    /// One write transaction doing `work` on the table, committed.
    fn write<T>(&mut self, work: impl FnOnce(&mut redb::Table<&[u8], &[u8]>) -> R<T>) -> R<T> {
        let mut tx = self.db.begin_write()?;
        if !self.sync {
            tx.set_durability(redb::Durability::None);
        }
        let done = work(&mut tx.open_table(KV_TABLE)?)?;
        tx.commit()?;
        Ok(done)
    }
}

impl KvStore for RedbKv {
    fn label(&self) -> &'static str {
        "redb 2, Durability::Immediate, 4 GiB cache"
    }

    fn short(&self) -> &'static str {
        "redb"
    }

    fn insert(&mut self, pairs: &mut dyn Iterator<Item = Pair>) -> R<()> {
        self.write(|t| {
            for (k, v) in pairs {
                t.insert(&k[..], &v[..])?;
            }
            Ok(())
        })
    }

    fn insert_sorted(&mut self, pairs: &[SortedPair]) -> R<()> {
        self.write(|t| {
            for (k, v) in pairs {
                t.insert(&k[..], &v[..])?;
            }
            Ok(())
        })
    }

    fn sorted_by(&self) -> &'static str {
        "plain inserts: redb 2 has no appending cursor"
    }

    fn unsynced_by(&self) -> &'static str {
        "Durability::None"
    }

    fn set_sync(&mut self, sync: bool) -> R<()> {
        self.sync = sync;
        Ok(())
    }

    fn remove(&mut self, keys: &mut dyn Iterator<Item = [u8; KEY]>) -> R<u64> {
        self.write(|t| {
            let mut found = 0;
            for k in keys {
                found += u64::from(t.remove(&k[..])?.is_some());
            }
            Ok(found)
        })
    }

    fn retain(&mut self, keep: &mut dyn FnMut(&[u8], &[u8]) -> bool) -> R<u64> {
        self.write(|t| {
            let mut removed = 0;
            t.retain(|k, v| {
                let kept = keep(k, v);
                removed += u64::from(!kept);
                kept
            })?;
            Ok(removed)
        })
    }

    fn extract_if(
        &mut self,
        from: &[u8],
        to: &[u8],
        pick: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> R<u64> {
        self.write(|t| {
            let mut taken = 0;
            for e in t.extract_from_if(from..to, |k, v| pick(k, v))? {
                e?;
                taken += 1;
            }
            Ok(taken)
        })
    }

    fn pop(&mut self, count: usize) -> R<()> {
        self.write(|t| {
            pop_alternately(count, |first| {
                let popped = if first { t.pop_first()? } else { t.pop_last()? };
                Ok(popped.is_some())
            })
        })
    }

    fn connect(&self) -> R<Box<dyn KvConnection + '_>> {
        Ok(Box::new(RedbConnection(&self.db)))
    }

    fn compact(&mut self) -> R<()> {
        self.db.compact()?;
        Ok(())
    }
}

struct RedbConnection<'a>(&'a redb::Database);

impl KvConnection for RedbConnection<'_> {
    fn begin(&self) -> R<Box<dyn KvRead + '_>> {
        Ok(Box::new(self.0.begin_read()?.open_table(KV_TABLE)?))
    }
}

impl KvRead for redb::ReadOnlyTable<&'static [u8], &'static [u8]> {
    fn len(&mut self) -> R<u64> {
        Ok(ReadableTableMetadata::len(self)?)
    }

    fn first_byte(&mut self, key: &[u8]) -> R<Option<u8>> {
        Ok(self.get(key)?.map(|v| v.value()[0]))
    }

    fn scan(&mut self, from: &[u8], len: usize) -> R<u64> {
        let mut sum = 0;
        for e in self.range(from..)?.take(len) {
            sum += u64::from(e?.1.value()[0]);
        }
        Ok(sum)
    }
}

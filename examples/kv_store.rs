//! A small persistent key-value store on top of `mappedpages`: what the crate
//! is for. It survives a kill at any moment and never leaks a page.
//!
//! The store is a hash table of 256 buckets. Each bucket is a chain of
//! regular pages holding fixed-size records; the table's root (the entry
//! count and every bucket's first page) lives in a protected page. Each batch
//! of changes is one transaction, written copy-on-write:
//!
//! 1. every bucket the batch changes is written to freshly allocated pages,
//!    filled straight from its old pages (which are only read, so the
//!    committed table stays intact until the commit);
//! 2. the old pages are freed and the root is repointed at the new ones;
//! 3. the commit publishes all of it atomically, with one sync.
//!
//! A kill before the commit leaves the table of the batch before, with this
//! batch's allocations undone; a kill after it, the new table with the old
//! pages freed. No page is ever allocated that the table does not reach, so
//! opening has nothing to clean up.
//!
//! Run it with `cargo run --release --example kv_store [PATH]` (default: a
//! file in a temporary directory).

use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::time::Instant;

use mappedpages::{PageId, Pager, ProtectedPageId};

const PAGE: usize = 4096;
const BUCKETS: usize = 256;
const ROOT_MAGIC: &[u8; 8] = b"KVSTORE1";
/// Root page: magic, entry count, then the first page of each bucket (0: empty).
const ROOT_HEADS: usize = 16;
/// Bucket page: next page of the chain (0: last), record count, records.
const NODE_HEADER: usize = 16;
pub const MAX_KEY: usize = 32;
pub const MAX_VALUE: usize = 94;
const RECORD: usize = 2 + MAX_KEY + MAX_VALUE; // key length, value length, bytes
const PER_PAGE: usize = (PAGE - NODE_HEADER) / RECORD;

pub type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// One change of a batch.
#[derive(Clone, Debug)]
pub enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

pub struct KvStore {
    pub pager: Pager<PAGE>,
    root: ProtectedPageId<PAGE>,
}

/// What a batch leaves of each key it names, by bucket: `None` for deleted.
type Changes<'a> = BTreeMap<usize, BTreeMap<&'a [u8], Option<&'a [u8]>>>;

fn bucket_of(key: &[u8]) -> usize {
    // FNV-1a: stable across runs and Rust versions, unlike `DefaultHasher`.
    let hash = key.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % BUCKETS as u64) as usize
}

fn u64_at(bytes: &[u8], at: usize) -> Result<u64> {
    let raw = bytes.get(at..at + 8).ok_or("short page")?;
    Ok(u64::from_le_bytes(raw.try_into()?))
}

/// The record slots in use in a bucket page.
fn records(page: &[u8]) -> impl Iterator<Item = &[u8]> {
    let count = usize::from(u16::from_le_bytes([page[8], page[9]])).min(PER_PAGE);
    page[NODE_HEADER..].chunks_exact(RECORD).take(count)
}

/// A record's key and value.
fn decode(record: &[u8]) -> Result<(&[u8], &[u8])> {
    let (kl, vl) = (usize::from(record[0]), usize::from(record[1]));
    if kl > MAX_KEY || vl > MAX_VALUE {
        return Err("damaged record".into());
    }
    Ok((&record[2..2 + kl], &record[2 + MAX_KEY..2 + MAX_KEY + vl]))
}

fn encode(slot: &mut [u8], key: &[u8], value: &[u8]) {
    slot.fill(0);
    slot[0] = key.len() as u8;
    slot[1] = value.len() as u8;
    slot[2..2 + key.len()].copy_from_slice(key);
    slot[2 + MAX_KEY..2 + MAX_KEY + value.len()].copy_from_slice(value);
}

impl KvStore {
    /// Creates a new, empty store in a new file.
    pub fn create(path: &Path) -> Result<KvStore> {
        let mut pager = Pager::<PAGE>::create(path)?;
        let mut txn = pager.transaction()?;
        let root = txn.alloc_protected()?;
        txn.write_protected(root)?.as_bytes_mut()[..8].copy_from_slice(ROOT_MAGIC);
        txn.commit()?;
        Ok(KvStore { pager, root })
    }

    /// Opens a store. Nothing to repair: every commit is a whole batch.
    pub fn open(path: &Path) -> Result<KvStore> {
        let pager = Pager::<PAGE>::open(path)?;
        let root = pager
            .iter_allocated_protected_pages()
            .next()
            .ok_or("no root page: not a key-value store")?;
        if root.get(&pager)?.as_bytes().get(..8) != Some(&ROOT_MAGIC[..]) {
            return Err("the root page holds no key-value store".into());
        }
        Ok(KvStore { pager, root })
    }

    fn root(&self) -> Result<&[u8]> {
        Ok(self.root.get(&self.pager)?.as_bytes())
    }

    /// Number of entries.
    pub fn len(&self) -> Result<u64> {
        u64_at(self.root()?, 8)
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        for id in self.chain(bucket_of(key))? {
            for record in records(id.get(&self.pager)?.as_bytes()) {
                let (k, v) = decode(record)?;
                if k == key {
                    return Ok(Some(v.to_vec()));
                }
            }
        }
        Ok(None)
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut all = Vec::new();
        for bucket in 0..BUCKETS {
            for id in self.chain(bucket)? {
                for record in records(id.get(&self.pager)?.as_bytes()) {
                    let (k, v) = decode(record)?;
                    all.push((k.to_vec(), v.to_vec()));
                }
            }
        }
        Ok(all)
    }

    /// The pages of `bucket`'s chain.
    pub fn chain(&self, bucket: usize) -> Result<Vec<PageId<PAGE>>> {
        let mut pages = Vec::new();
        let mut next = u64_at(self.root()?, ROOT_HEADS + 8 * bucket)?;
        while next != 0 {
            if pages.len() as u64 > self.pager.page_count() {
                return Err("bucket chain loops".into());
            }
            pages.push(PageId(next));
            next = u64_at(PageId::<PAGE>(next).get(&self.pager)?.as_bytes(), 0)?;
        }
        Ok(pages)
    }

    /// How many pages the table reaches from its root.
    pub fn pages_in_use(&self) -> Result<u64> {
        let mut pages = 0;
        for bucket in 0..BUCKETS {
            pages += self.chain(bucket)?.len() as u64;
        }
        Ok(pages)
    }

    /// Applies `batch` as one transaction: after a crash, all of it or none.
    pub fn apply(&mut self, batch: &[Op]) -> Result<()> {
        let mut changes = Changes::new();
        for op in batch {
            let (key, value) = match op {
                Op::Put(k, v) if k.len() > MAX_KEY || v.len() > MAX_VALUE => {
                    return Err("key or value too long".into())
                }
                Op::Put(k, v) => (&k[..], Some(&v[..])),
                Op::Delete(k) => (&k[..], None),
            };
            changes
                .entry(bucket_of(key))
                .or_default()
                .insert(key, value);
        }

        // Each changed bucket's old pages and record count after the batch,
        // counted first: pages cannot be allocated while some are lent out.
        let mut len = self.len()?;
        let mut plans = Vec::new();
        for (&bucket, changed) in &changes {
            let old = self.chain(bucket)?;
            let (mut before, mut kept) = (0, 0);
            for &id in &old {
                for record in records(id.get(&self.pager)?.as_bytes()) {
                    before += 1;
                    kept += usize::from(!changed.contains_key(decode(record)?.0));
                }
            }
            let count = kept + changed.values().flatten().count();
            len = len + count as u64 - before;
            plans.push((bucket, changed, old, count));
        }

        let mut txn = self.pager.transaction()?;
        let needed = plans
            .iter()
            .map(|(.., count)| count.div_ceil(PER_PAGE))
            .sum();
        let mut fresh = txn.alloc_bulk(needed)?.into_iter();
        let mut heads = Vec::new();
        for (bucket, changed, old, count) in plans {
            let new: Vec<PageId<PAGE>> = fresh.by_ref().take(count.div_ceil(PER_PAGE)).collect();
            // The old pages readable and the new ones writable at once: the
            // kept records go from one to the other without a buffer.
            let pages = txn.pages();
            let mut slots = Vec::new();
            for (i, &id) in new.iter().enumerate() {
                let page = pages.get_mut(id)?.as_bytes_mut();
                page.fill(0);
                page[..8].copy_from_slice(&new.get(i + 1).map_or(0, |p| p.0).to_le_bytes());
                let here = (count - i * PER_PAGE).min(PER_PAGE) as u16;
                page[8..10].copy_from_slice(&here.to_le_bytes());
                slots.extend(
                    page[NODE_HEADER..]
                        .chunks_exact_mut(RECORD)
                        .take(here.into()),
                );
            }
            let mut slots = slots.into_iter();
            for &id in &old {
                for record in records(pages.get(id)?.as_bytes()) {
                    if !changed.contains_key(decode(record)?.0) {
                        slots
                            .next()
                            .ok_or("more records than counted")?
                            .copy_from_slice(record);
                    }
                }
            }
            for (key, value) in changed {
                if let Some(value) = value {
                    encode(slots.next().ok_or("more records than counted")?, key, value);
                }
            }
            txn.free_bulk(old)?;
            heads.push((bucket, new.first().map_or(0, |p| p.0)));
        }
        let root = txn.write_protected(self.root)?.as_bytes_mut();
        root[8..16].copy_from_slice(&len.to_le_bytes());
        for (bucket, head) in heads {
            let at = ROOT_HEADS + 8 * bucket;
            root[at..at + 8].copy_from_slice(&head.to_le_bytes());
        }
        txn.commit()?; // one sync: the new pages, the frees and the root
        Ok(())
    }
}

/// The demo workload's `i`-th key.
pub fn key(i: usize) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

/// Applies `ops` in batches of `batch` and prints what a batch cost.
fn run(store: &mut KvStore, what: &str, ops: &[Op], batch: usize) -> Result<()> {
    let (syncs, started) = (store.pager.sync_count(), Instant::now());
    for ops in ops.chunks(batch) {
        store.apply(ops)?;
    }
    let batches = ops.len().div_ceil(batch);
    let seconds = started.elapsed().as_secs_f64();
    let syncs = store.pager.sync_count() - syncs;
    println!(
        "{what} {} keys in {batches} batches of {batch}: {:.2} syncs per batch, {:.0} batches per second",
        ops.len(),
        syncs as f64 / batches as f64,
        batches as f64 / seconds
    );
    Ok(())
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("kv_store.pages"));
    let _ = std::fs::remove_file(&path);
    const KEYS: usize = 5000;

    let inserts: Vec<Op> = (0..KEYS)
        .map(|i| Op::Put(key(i), format!("value {i}").into_bytes()))
        .collect();
    let updates: Vec<Op> = (0..KEYS)
        .step_by(3)
        .map(|i| Op::Put(key(i), format!("updated {i}").into_bytes()))
        .collect();
    let deletes: Vec<Op> = (0..KEYS).step_by(5).map(|i| Op::Delete(key(i))).collect();
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for op in inserts.iter().chain(&updates).chain(&deletes) {
        match op {
            Op::Put(k, v) => model.insert(k.clone(), v.clone()),
            Op::Delete(k) => model.remove(k),
        };
    }

    let mut store = KvStore::create(&path)?;
    run(&mut store, "inserted", &inserts, 250)?;
    run(&mut store, "updated", &updates, 10)?;
    run(&mut store, "deleted", &deletes, 250)?;
    drop(store);

    let t = Instant::now();
    let store = KvStore::open(&path)?;
    println!("reopened {} in {:?}", path.display(), t.elapsed());
    for i in 0..KEYS {
        let k = key(i);
        if store.get(&k)? != model.get(&k).cloned() {
            return Err(format!("key {i} has the wrong value after reopening").into());
        }
    }
    if store.len()? != model.len() as u64 {
        return Err("wrong entry count after reopening".into());
    }
    let (allocated, reached) = (store.pager.allocated_page_count(), store.pages_in_use()?);
    println!(
        "verified {KEYS} lookups, {} entries; {allocated} pages allocated, {reached} reached by the table",
        store.len()?
    );
    if allocated != reached {
        return Err("pages leaked".into());
    }
    Ok(())
}

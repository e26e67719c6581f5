//! A small persistent key-value store on top of `mappedpages`: what the crate
//! is for. It survives a kill at any moment.
//!
//! The store is a hash table of 256 buckets. Each bucket is a chain of
//! regular pages holding fixed-size records; the table's root (the page of
//! every bucket's first page) lives in a protected page. Changes are applied
//! in batches, copy-on-write:
//!
//! 1. write the changed buckets to freshly allocated pages (the old ones are
//!    never touched, so the committed state stays intact);
//! 2. commit the protected root that points at them: the commit first makes
//!    the new pages durable, then publishes the root atomically;
//! 3. free the pages of the replaced buckets.
//!
//! A kill before step 2 leaves the old root; a kill after it, the new one.
//! Either way some pages may be allocated but unreachable (written in step 1
//! or not yet freed in step 3): `open` walks the table and frees them.
//!
//! Run it with `cargo run --example kv_store [PATH]` (default: a file in a
//! temporary directory).

use std::collections::btree_map::Entry;
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
    heads: Vec<u64>,
    len: u64,
}

type Records = Vec<(Vec<u8>, Vec<u8>)>;

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

impl KvStore {
    /// Creates a new, empty store in a new file.
    pub fn create(path: &Path) -> Result<KvStore> {
        let mut pager = Pager::<PAGE>::create(path)?;
        let root = pager.alloc_protected()?;
        let mut store = KvStore {
            pager,
            root,
            heads: vec![0; BUCKETS],
            len: 0,
        };
        store.write_root()?;
        Ok(store)
    }

    /// Opens a store, and frees the pages a kill left allocated but
    /// unreachable. Returns the store and how many pages it freed.
    pub fn open(path: &Path) -> Result<(KvStore, usize)> {
        let pager = Pager::<PAGE>::open(path)?;
        let root = pager
            .iter_allocated_protected_pages()
            .next()
            .ok_or("no root page: not a key-value store")?;
        let bytes = root.get(&pager)?.as_bytes();
        if bytes.get(..8) != Some(&ROOT_MAGIC[..]) {
            return Err("the root page holds no key-value store".into());
        }
        let len = u64_at(bytes, 8)?;
        let heads = (0..BUCKETS)
            .map(|b| u64_at(bytes, ROOT_HEADS + 8 * b))
            .collect::<Result<Vec<_>>>()?;
        let mut store = KvStore {
            pager,
            root,
            heads,
            len,
        };
        let mut reachable = std::collections::HashSet::new();
        for bucket in 0..BUCKETS {
            reachable.extend(store.chain(bucket)?);
        }
        let leaked: Vec<PageId<PAGE>> = store
            .pager
            .iter_allocated_pages()
            .filter(|id| !reachable.contains(&id.0))
            .collect();
        let freed = leaked.len();
        if freed > 0 {
            store.pager.free_bulk(leaked)?;
        }
        Ok((store, freed))
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of `key`, if any.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let records = self.read_bucket(bucket_of(key))?;
        Ok(records.into_iter().find(|(k, _)| k == key).map(|(_, v)| v))
    }

    /// Every entry, in no particular order.
    pub fn entries(&self) -> Result<Records> {
        let mut all = Vec::new();
        for bucket in 0..BUCKETS {
            all.extend(self.read_bucket(bucket)?);
        }
        Ok(all)
    }

    /// Applies `batch` as one atomic change: after a crash, all of it or none.
    pub fn apply(&mut self, batch: &[Op]) -> Result<()> {
        // The new contents of every bucket the batch touches.
        let mut changed: BTreeMap<usize, Records> = BTreeMap::new();
        for op in batch {
            let key = match op {
                Op::Put(k, v) if k.len() > MAX_KEY || v.len() > MAX_VALUE => {
                    return Err("key or value too long".into())
                }
                Op::Put(k, _) | Op::Delete(k) => k,
            };
            let bucket = bucket_of(key);
            let records = match changed.entry(bucket) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => e.insert(self.read_bucket(bucket)?),
            };
            let before = records.len();
            records.retain(|(k, _)| k != key);
            self.len -= (before - records.len()) as u64;
            if let Op::Put(k, v) = op {
                records.push((k.clone(), v.clone()));
                self.len += 1;
            }
        }

        // 1. Write the changed buckets to new pages, in one allocation.
        let needed: usize = changed.values().map(|r| r.len().div_ceil(PER_PAGE)).sum();
        let mut fresh = if needed > 0 {
            self.pager.alloc_bulk(needed)?.into_iter()
        } else {
            Vec::new().into_iter()
        };
        let mut replaced = Vec::new();
        for (&bucket, records) in &changed {
            replaced.extend(self.chain(bucket)?.into_iter().map(PageId::<PAGE>));
            let pages: Vec<PageId<PAGE>> = fresh
                .by_ref()
                .take(records.len().div_ceil(PER_PAGE))
                .collect();
            for (i, (id, chunk)) in pages.iter().zip(records.chunks(PER_PAGE)).enumerate() {
                let next = pages.get(i + 1).map_or(0, |p| p.0);
                let page = id.get_mut(&mut self.pager)?.as_bytes_mut();
                page.fill(0);
                page[..8].copy_from_slice(&next.to_le_bytes());
                page[8..10].copy_from_slice(&(chunk.len() as u16).to_le_bytes());
                for (slot, (k, v)) in chunk.iter().enumerate() {
                    let at = NODE_HEADER + slot * RECORD;
                    page[at] = k.len() as u8;
                    page[at + 1] = v.len() as u8;
                    page[at + 2..at + 2 + k.len()].copy_from_slice(k);
                    page[at + 2 + MAX_KEY..at + 2 + MAX_KEY + v.len()].copy_from_slice(v);
                }
            }
            self.heads[bucket] = pages.first().map_or(0, |p| p.0);
        }

        // 2. Publish: the commit syncs the pages above before the root.
        self.write_root()?;

        // 3. The old bucket pages are unreachable now.
        if !replaced.is_empty() {
            self.pager.free_bulk(replaced)?;
        }
        Ok(())
    }

    fn write_root(&mut self) -> Result<()> {
        let mut writer = self.root.get_mut(&mut self.pager)?;
        let bytes = writer.page_mut().as_bytes_mut();
        bytes[..8].copy_from_slice(ROOT_MAGIC);
        bytes[8..16].copy_from_slice(&self.len.to_le_bytes());
        for (b, head) in self.heads.iter().enumerate() {
            let at = ROOT_HEADS + 8 * b;
            bytes[at..at + 8].copy_from_slice(&head.to_le_bytes());
        }
        writer.commit()?;
        Ok(())
    }

    /// The pages of `bucket`'s chain.
    fn chain(&self, bucket: usize) -> Result<Vec<u64>> {
        let mut pages = Vec::new();
        let mut next = self.heads[bucket];
        while next != 0 {
            if pages.len() > BUCKETS * 1024 {
                return Err("bucket chain loops".into());
            }
            pages.push(next);
            next = u64_at(PageId::<PAGE>(next).get(&self.pager)?.as_bytes(), 0)?;
        }
        Ok(pages)
    }

    fn read_bucket(&self, bucket: usize) -> Result<Records> {
        let mut records = Vec::new();
        for page in self.chain(bucket)? {
            let bytes = PageId::<PAGE>(page).get(&self.pager)?.as_bytes();
            let count = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
            for slot in 0..count.min(PER_PAGE) {
                let at = NODE_HEADER + slot * RECORD;
                let (kl, vl) = (usize::from(bytes[at]), usize::from(bytes[at + 1]));
                if kl > MAX_KEY || vl > MAX_VALUE {
                    return Err(format!("damaged record in page {page}").into());
                }
                let key = bytes[at + 2..at + 2 + kl].to_vec();
                let value = bytes[at + 2 + MAX_KEY..at + 2 + MAX_KEY + vl].to_vec();
                records.push((key, value));
            }
        }
        Ok(records)
    }
}

/// The demo workload's `i`-th key.
pub fn key(i: usize) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

fn main() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let path = std::env::args_os()
        .nth(1)
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("kv_store.pages"));
    let _ = std::fs::remove_file(&path);
    const KEYS: usize = 5000;
    const BATCH: usize = 250;

    let started = Instant::now();
    let mut store = KvStore::create(&path)?;
    let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    let mut run = |store: &mut KvStore, ops: Vec<Op>| -> Result<()> {
        for batch in ops.chunks(BATCH) {
            store.apply(batch)?;
        }
        for op in ops {
            match op {
                Op::Put(k, v) => model.insert(k, v),
                Op::Delete(k) => model.remove(&k),
            };
        }
        Ok(())
    };
    let t = Instant::now();
    run(
        &mut store,
        (0..KEYS)
            .map(|i| Op::Put(key(i), format!("value {i}").into_bytes()))
            .collect(),
    )?;
    println!(
        "inserted {KEYS} keys in batches of {BATCH}: {:?}",
        t.elapsed()
    );
    let t = Instant::now();
    run(
        &mut store,
        (0..KEYS)
            .step_by(3)
            .map(|i| Op::Put(key(i), format!("updated {i}").into_bytes()))
            .collect(),
    )?;
    println!("updated {} keys: {:?}", KEYS.div_ceil(3), t.elapsed());
    let t = Instant::now();
    run(
        &mut store,
        (0..KEYS).step_by(5).map(|i| Op::Delete(key(i))).collect(),
    )?;
    println!("deleted {} keys: {:?}", KEYS.div_ceil(5), t.elapsed());
    let syncs = store.pager.sync_count();
    drop(store);

    let t = Instant::now();
    let (store, leaked) = KvStore::open(&path)?;
    println!(
        "reopened {} in {:?} (freed {leaked} unreachable pages)",
        path.display(),
        t.elapsed()
    );
    let t = Instant::now();
    for i in 0..KEYS {
        let k = key(i);
        if store.get(&k)? != model.get(&k).cloned() {
            return Err(format!("key {i} has the wrong value after reopening").into());
        }
    }
    if store.len() != model.len() as u64 {
        return Err("wrong entry count after reopening".into());
    }
    println!(
        "verified {KEYS} lookups ({} entries present): {:?}",
        store.len(),
        t.elapsed()
    );
    println!(
        "file: {} pages of {PAGE} bytes, {} in use; {syncs} syncs before reopening; total {:?}",
        store.pager.page_count(),
        store.pager.allocated_page_count(),
        started.elapsed()
    );
    Ok(())
}

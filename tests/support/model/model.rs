//! What the pager must show: the model state the driver keeps up to date
//! op by op, and its projection onto what a crash image can be checked
//! against ([`State`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use mappedpages::{PageId, Pager};

use super::ops::{BadId, BulkFlaw, Slot, Target};
use super::sub::{self as sub_pages, SubKey};

/// What the public API shows of a file: the allocated regular pages, the
/// protected pages in use with their committed bytes and the sub-pages
/// allocated with theirs (a transaction's writes, checked by its commit).
/// Regular bytes are left out: after a crash they are the caller's
/// (contract D3), checked apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    pub regular: BTreeSet<u64>,
    pub protected: BTreeMap<u64, Arc<Vec<u8>>>,
    pub sub_pages: BTreeMap<SubKey, Arc<Vec<u8>>>,
}

impl State {
    /// Reads the state through the public API.
    pub fn observe<const N: usize>(pager: &Pager<N>) -> Result<State, String> {
        let regular: BTreeSet<u64> = pager.iter_allocated_pages().map(|id| id.0).collect();
        let mut protected = BTreeMap::new();
        for id in pager.iter_allocated_protected_pages() {
            let bytes = id
                .get(pager)
                .map_err(|e| format!("protected page {} listed but unreadable: {e}", id.0))?;
            protected.insert(id.0, Arc::new(bytes.as_bytes().to_vec()));
        }
        let mut sub_pages = BTreeMap::new();
        for key in sub_pages::list(pager) {
            let bytes = sub_pages::read(pager, key)
                .map_err(|e| format!("sub-page {key:?} listed but unreadable: {e}"))?;
            sub_pages.insert(key, Arc::new(bytes.to_vec()));
        }
        Ok(State {
            regular,
            protected,
            sub_pages,
        })
    }

    /// A short description of how `self` differs from `other`.
    pub fn diff(&self, other: &State) -> String {
        let extra: Vec<_> = self.regular.difference(&other.regular).collect();
        let missing: Vec<_> = other.regular.difference(&self.regular).collect();
        let pk: Vec<_> = self.protected.keys().collect();
        let ok: Vec<_> = other.protected.keys().collect();
        let differing: Vec<_> = self
            .protected
            .iter()
            .filter(|(k, v)| other.protected.get(k).is_some_and(|o| o != *v))
            .map(|(k, _)| k)
            .collect();
        let sub_pages: Vec<_> = self
            .sub_pages
            .iter()
            .filter(|(k, v)| other.sub_pages.get(k) != Some(*v))
            .map(|(k, _)| k)
            .chain(
                other
                    .sub_pages
                    .keys()
                    .filter(|k| !self.sub_pages.contains_key(k)),
            )
            .collect();
        format!(
            "regular +{extra:?} -{missing:?}; protected {pk:?} vs {ok:?}; bytes differ in {differing:?}; sub-pages differ: {sub_pages:?}"
        )
    }
}

/// The model: everything the pager must show, regular bytes included.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// Live regular pages and their bytes (as found at allocation, then as
    /// written).
    pub regular: BTreeMap<u64, Arc<Vec<u8>>>,
    /// Protected pages in use and their committed bytes.
    pub protected: BTreeMap<u64, Arc<Vec<u8>>>,
    /// Regular ids freed and not handed out again.
    pub freed: BTreeSet<u64>,
    /// Protected ids freed and not handed out again.
    pub freed_protected: BTreeSet<u64>,
    /// Allocated sub-pages and their bytes.
    pub sub_pages: BTreeMap<SubKey, Arc<Vec<u8>>>,
    /// Sub-page ids freed and not handed out again.
    pub freed_sub_pages: BTreeSet<SubKey>,
    /// Generation of the newest commit.
    pub generation: u64,
}

impl Model {
    /// The model of what `pager` shows now (a file set up before the
    /// modelled ops start).
    pub fn observe<const N: usize>(pager: &Pager<N>) -> Model {
        let regular = pager
            .iter_allocated_pages()
            .map(|id| (id.0, Arc::new(id.get(pager).unwrap().as_bytes().to_vec())))
            .collect();
        let protected = pager
            .iter_allocated_protected_pages()
            .map(|id| (id.0, Arc::new(id.get(pager).unwrap().as_bytes().to_vec())))
            .collect();
        let sub_pages = sub_pages::list(pager)
            .into_iter()
            .map(|key| (key, Arc::new(sub_pages::read(pager, key).unwrap().to_vec())))
            .collect();
        Model {
            regular,
            protected,
            freed: BTreeSet::new(),
            freed_protected: BTreeSet::new(),
            sub_pages,
            freed_sub_pages: BTreeSet::new(),
            generation: pager.generation(),
        }
    }

    /// The part a crash image is checked against.
    pub fn state(&self) -> State {
        State {
            regular: self.regular.keys().copied().collect(),
            protected: self.protected.clone(),
            sub_pages: self.sub_pages.clone(),
        }
    }

    /// `pages` were handed out, holding `bytes`.
    pub fn alloc(&mut self, page: u64, bytes: Vec<u8>) {
        assert!(
            !self.regular.contains_key(&page),
            "page {page} handed out twice"
        );
        self.freed.remove(&page);
        self.regular.insert(page, Arc::new(bytes));
    }

    pub fn free(&mut self, page: u64) {
        self.regular
            .remove(&page)
            .unwrap_or_else(|| panic!("page {page} freed but not live in the model"));
        self.freed.insert(page);
    }

    pub fn alloc_protected(&mut self, slot: u64, page_size: usize) {
        assert!(
            !self.protected.contains_key(&slot),
            "protected {slot} handed out twice"
        );
        self.freed_protected.remove(&slot);
        self.protected.insert(slot, Arc::new(vec![0; page_size]));
    }

    pub fn free_protected(&mut self, slot: u64) {
        self.protected.remove(&slot).unwrap();
        self.freed_protected.insert(slot);
    }

    /// Sub-page `key` was handed out, holding `bytes`.
    pub fn alloc_sub_page(&mut self, key: SubKey, bytes: Vec<u8>) {
        assert!(
            !self.sub_pages.contains_key(&key),
            "sub-page {key:?} handed out twice"
        );
        self.freed_sub_pages.remove(&key);
        self.sub_pages.insert(key, Arc::new(bytes));
    }

    pub fn free_sub_page(&mut self, key: SubKey) {
        self.sub_pages
            .remove(&key)
            .unwrap_or_else(|| panic!("sub-page {key:?} freed but not live in the model"));
        self.freed_sub_pages.insert(key);
    }

    /// The `i`th (modulo their number) live sub-page.
    pub fn sub_page_at(&self, i: usize) -> Option<SubKey> {
        let n = self.sub_pages.len();
        (n > 0).then(|| *self.sub_pages.keys().nth(i % n).unwrap())
    }

    /// The page `target` names among the live ones (`fresh`: the pages the
    /// transaction running allocated and holds, in order).
    pub fn target(&self, target: Target, fresh: &[u64]) -> Option<u64> {
        match target {
            Target::Live(i) => pick(self.regular.keys(), i),
            Target::Top(i) => self.regular.keys().rev().nth(i).copied(),
            Target::Fresh(i) => pick(fresh.iter(), i),
            Target::Id(page) => Some(page),
        }
    }

    /// The slot `slot` names (`fresh`: those the transaction allocated).
    pub fn slot(&self, slot: Slot, fresh: &[u64]) -> Option<u64> {
        match slot {
            Slot::Live(i) => pick(self.protected.keys(), i),
            Slot::Fresh(i) => fresh.get(i).copied(),
            Slot::Id(s) => Some(s),
        }
    }
}

/// The `index`th (modulo their number) of `items`, `None` if there are none.
pub fn pick<'a>(items: impl ExactSizeIterator<Item = &'a u64>, index: usize) -> Option<u64> {
    let len = items.len();
    let mut items = items;
    (len > 0).then(|| *items.nth(index % len).unwrap())
}

/// The id `bad` stands for in a file of `end` pages, `None` if there is no
/// freed page to name below `pages` (the file's length: a shrink may have
/// cut those above).
pub fn resolve_bad(bad: BadId, end: u64, freed: &BTreeSet<u64>, pages: u64) -> Option<u64> {
    match bad {
        BadId::Reserved(p) => Some(p),
        BadId::PastEnd(k) => Some(end + k),
        BadId::Huge => Some(u64::MAX),
        BadId::Stale(i) => {
            let below: Vec<u64> = freed.range(..pages).copied().collect();
            pick(below.iter(), i)
        }
    }
}

/// What a `free_bulk` call is given and must answer.
pub enum BulkPlan {
    Skip,
    Free(Vec<u64>),
    /// The ids, and the one named twice: `DoubleFree`.
    Twice(Vec<u64>, u64),
    /// The ids, and the bad one among them.
    Bad(Vec<u64>, BadId, u64),
}

/// The ids a bulk free of `chosen` (live ids) spoiled by `flaw` is given.
pub fn plan_free_bulk(
    mut chosen: Vec<u64>,
    flaw: BulkFlaw,
    raw_bad: impl Fn(BadId) -> Option<u64>,
) -> BulkPlan {
    chosen.sort_unstable();
    chosen.dedup();
    match flaw {
        BulkFlaw::None if chosen.is_empty() => BulkPlan::Skip,
        BulkFlaw::None => BulkPlan::Free(chosen),
        BulkFlaw::Duplicate(i) => {
            let Some(&dup) = chosen.get(i % chosen.len().max(1)) else {
                return BulkPlan::Skip;
            };
            let mut ids = chosen;
            ids.insert(i % (ids.len() + 1), dup);
            BulkPlan::Twice(ids, dup)
        }
        BulkFlaw::Bad(bad) => {
            let Some(page) = raw_bad(bad) else {
                return BulkPlan::Skip;
            };
            let half = chosen.len() / 2;
            let mut ids = chosen;
            ids.push(page);
            ids.rotate_right(half);
            BulkPlan::Bad(ids, bad, page)
        }
    }
}

pub fn ids<const N: usize>(pages: &[u64]) -> Vec<PageId<N>> {
    pages.iter().map(|&p| PageId(p)).collect()
}

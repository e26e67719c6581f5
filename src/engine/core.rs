//! The page-size-independent engine behind [`crate::Pager`]: the file, the
//! free map and the journal, and the regular-page operations. The public
//! `Pager<PAGE_SIZE>` is a thin typed face over it.

use std::path::Path;
use std::sync::Arc;

use crate::engine::durability::Durability;
use crate::engine::flight::{Flight, Sealed};
use crate::engine::freemap::FreeMap;
use crate::engine::journal::{Change, Journal};
use crate::engine::limits::{max_total_pages, new_file_pages};
use crate::engine::open::RecoveryReport;
use crate::engine::open::{file_page, open_state};
use crate::engine::placement::Placement;
use crate::engine::readers::ReaderBounds;
use crate::engine::reclaim::Reclamation;
use crate::engine::snapshots::Registry;
use crate::error::{MappedPageError, Result};
use crate::fault::HookSlot;
use crate::format::record::DirEntry;
use crate::format::root::{Root, FLAG_SYNCED};
use crate::format::{superblock, FIRST_DATA_PAGE, ROOT_PAGES, SUPERBLOCK_PAGE};
use crate::io::reader_table::ReaderTable;
use crate::io::{PageBuffers, Storage};

#[derive(Debug)]
pub(crate) struct Core {
    pub(super) store: Storage,
    pub(super) map: FreeMap,
    pub(super) journal: Journal,
    pub(super) page_size: usize,
    pub(super) durability: Durability,
    pub(super) max_growth_pages: u64,
    /// Cut the free tail after a commit once it is longer than this many
    /// pages (and a quarter of the file); `None`: never (see `length.rs`).
    pub(super) shrink_threshold_pages: Option<u64>,
    /// The initial size of the options the pager was opened with: a commit
    /// does not shrink the file below it.
    pub(super) initial_pages: u64,
    /// The most pages a file can have: the format's page numbers and the
    /// longest file this process can map (see `io::max_file_bytes`).
    pub(super) max_total_pages: u64,
    pub(super) preallocate: bool,
    /// See [`Settings::transaction_memory`].
    pub(super) transaction_memory: usize,
    /// The page buffers of the last transaction, emptied, for the next one
    /// (see `PageBuffers::reuse`).
    pub(super) idle_buffers: PageBuffers,
    /// Regular pages written through the map since the last sync.
    pub(super) data_dirty: bool,
    /// The root `open` took may so far live only in the page cache (after a
    /// process crash). Open does not sync (a file closed cleanly needs none,
    /// contract T4); the first write to the file does, see
    /// [`Core::settle_open`].
    pub(super) open_unsettled: bool,
    /// The root slot open did not take holds a root that checks pages.
    pub(super) other_root_checks: bool,
    /// Set after an I/O failure left memory and file out of step.
    pub(super) poisoned: bool,
    pub(super) recovery: RecoveryReport,
    /// What a protected page that was never committed reads as.
    pub(super) zero_page: Arc<[u8]>,
    /// The snapshots given out (`snapshot.rs`).
    pub(super) snapshots: Registry,
    /// Where small allocations go (`placement.rs`).
    pub(super) placement: Placement,
    /// Group syncs, shared with the threads that wait on them (`group.rs`).
    pub(super) flight: Arc<Flight>,
    /// What the running group sync makes durable, if one runs.
    pub(super) sealed: Option<Sealed>,
    /// Commits are grouped: not synced by the commit (`group.rs`).
    pub(super) grouped: bool,
    /// The table of readers in other processes, if the file has one
    /// (`readers.rs`).
    pub(super) readers: Option<Arc<ReaderTable>>,
    /// See [`Settings::reader_bounds`].
    pub(super) reader_bounds: ReaderBounds,
}

/// Settings the engine needs, independent of the page-size type parameter.
#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub(crate) page_size: usize,
    pub(crate) durability: Durability,
    pub(crate) max_growth_pages: u64,
    pub(crate) shrink_threshold_pages: Option<u64>,
    pub(crate) preallocate: bool,
    /// The most bytes of pages a transaction holds in memory
    /// (`transaction.rs`).
    pub(crate) transaction_memory: usize,
    pub(crate) initial_pages: u64,
    pub(crate) hook: HookSlot,
    /// Make the file's reader table if it has none (`readers.rs`).
    pub(crate) process_readers: bool,
    /// When commits are refused because of a slow reader of another
    /// process (`readers.rs`).
    pub(crate) reader_bounds: ReaderBounds,
}

#[cfg(test)]
impl Settings {
    /// Settings for an engine unit test: `page_size` pages, `Immediate`,
    /// 64 pages grown 64 at a time, no shrink, blocks reserved, the default
    /// transaction memory, no hook, no reader table. A test changes what
    /// it is about with struct update syntax.
    pub(crate) fn for_tests(page_size: usize) -> Settings {
        Settings {
            page_size,
            durability: Durability::Immediate,
            max_growth_pages: 64,
            shrink_threshold_pages: None,
            preallocate: true,
            transaction_memory: crate::engine::DEFAULT_TRANSACTION_MEMORY,
            initial_pages: 64,
            hook: HookSlot::default(),
            process_readers: false,
            reader_bounds: ReaderBounds::default(),
        }
    }
}

impl Core {
    pub(super) fn assemble(
        store: Storage,
        map: FreeMap,
        journal: Journal,
        settings: Settings,
        recovery: RecoveryReport,
    ) -> Core {
        // Pages past the last one in use were most likely never written.
        let unwritten_from = map.last_used().map_or(FIRST_DATA_PAGE, |last| last + 1);
        let core = Core {
            store,
            map,
            journal,
            page_size: settings.page_size,
            durability: settings.durability,
            max_growth_pages: settings.max_growth_pages,
            shrink_threshold_pages: settings.shrink_threshold_pages,
            initial_pages: settings.initial_pages,
            max_total_pages: max_total_pages(settings.page_size),
            preallocate: settings.preallocate,
            transaction_memory: settings.transaction_memory,
            idle_buffers: PageBuffers::new(settings.transaction_memory),
            data_dirty: false,
            open_unsettled: false,
            other_root_checks: false,
            poisoned: false,
            recovery,
            zero_page: vec![0u8; settings.page_size].into(),
            snapshots: Registry::default(),
            placement: Placement::new(unwritten_from),
            flight: Arc::default(),
            sealed: None,
            grouped: false,
            readers: None,
            reader_bounds: settings.reader_bounds,
        };
        // The state open or create found is durable as far as waiters are
        // concerned: a commit made after it is what they wait for.
        core.note_durable();
        core
    }

    /// Creates a new file: root A at generation 1, root B blank, then the
    /// superblock. A file that fails to be created is removed again.
    pub(crate) fn create(path: &Path, settings: Settings) -> Result<Core> {
        let page_size = settings.page_size;
        let total = new_file_pages(settings.initial_pages, page_size)?;
        let len = total * page_size as u64;
        let store = Storage::create(
            path,
            len,
            settings.preallocate,
            settings.hook.clone(),
            |store| Self::write_new_file(store, path, total, page_size),
        )?;
        let map = FreeMap::new(total);
        let journal = Journal::new(page_size, total);
        let recovery = RecoveryReport {
            generation: 1,
            root_copy: 0,
            last_commit_synced: true,
            fell_back: false,
            other_copy_problem: None,
        };
        let make_table = settings.process_readers;
        let mut core = Core::assemble(store, map, journal, settings, recovery);
        if let Err(err) = core.attach_readers(path, make_table) {
            // The file is ours, made just now; nothing counts on it yet.
            drop(core);
            let _ = std::fs::remove_file(path);
            return Err(err);
        }
        Ok(core)
    }

    /// Opens an existing file (see the module docs).
    pub(crate) fn open(path: &Path, settings: Settings) -> Result<Core> {
        let store = Storage::open(path, settings.hook.clone())?;
        let page_size = settings.page_size;
        let chosen = open_state(store.bytes(), page_size)?;
        let page = |n: u64| file_page(store.bytes(), page_size, n);
        // What we opened may so far live only in the page cache (a process
        // crash): it is made durable before the first write on top of it
        // (`Core::settle_open`), not here, so that an open that writes
        // nothing syncs nothing.
        // A page freed by an unsynced commit after an earlier unsynced one
        // wrote it is free in the map, but the chain of check pages of the
        // root we opened still checks it: until a durable root does not,
        // writing it would make this root (and every commit since the last
        // sync) fail its checks after a kill. So it waits like any page
        // freed since the last sync.
        let mut map = chosen.loaded.map;
        let withheld = map.withhold(&chosen.loaded.checked);
        let journal = Journal::opened(
            &chosen.root,
            chosen.slot,
            chosen.loaded.bitmap_tree,
            chosen.loaded.dir_tree,
            Reclamation::opened(chosen.root.generation, withheld),
            &chosen.loaded.checked,
            chosen.loaded.check_pages,
        );
        let chosen_slot = chosen.slot;
        let other_root_checks = page(ROOT_PAGES[1 - chosen_slot])
            .and_then(|bytes| Root::decode(bytes, page_size).ok())
            .is_some_and(|root| !root.checks.is_empty() || !root.check_pages.is_null());
        let make_table = settings.process_readers;
        let mut core = Core::assemble(store, map, journal, settings, chosen.recovery);
        core.open_unsettled = true;
        core.other_root_checks = other_root_checks;
        core.attach_readers(path, make_table)?;
        Ok(core)
    }

    /// Writes the metadata of a new file. The roots are durable before the
    /// superblock is written, so a file with a valid superblock always has a
    /// valid root, and a crash before that leaves a file without one, which
    /// open reports as [`MappedPageError::IncompleteCreate`].
    fn write_new_file(
        store: &mut Storage,
        path: &Path,
        total: u64,
        page_size: usize,
    ) -> Result<()> {
        let mut page = vec![0u8; page_size];
        let root = Root {
            generation: 1,
            total_pages: total,
            regular_count: 0,
            bitmap: Default::default(),
            dir_len: 0,
            directory: Default::default(),
            flags: FLAG_SYNCED,
            log: Vec::new(),
            checks: Vec::new(),
            check_pages: Default::default(),
            check_pages_len: 0,
            sub_pages: false,
        };
        root.encode(&mut page);
        store.write_at(ROOT_PAGES[0] * page_size as u64, &page)?;
        store.write_at(ROOT_PAGES[1] * page_size as u64, &vec![0u8; page_size])?;
        store.sync()?;
        superblock::encode(&mut page, page_size as u64);
        store.write_at(SUPERBLOCK_PAGE * page_size as u64, &page)?;
        store.sync()?;
        Storage::sync_parent_dir(path)?;
        Ok(())
    }

    #[inline]
    pub(crate) fn check_usable(&self) -> Result<()> {
        if self.poisoned {
            Err(MappedPageError::Unavailable)
        } else {
            Ok(())
        }
    }

    /// Byte range of `page` in the file.
    #[inline]
    pub(super) fn page_range(&self, page: u64) -> std::ops::Range<usize> {
        let start = page as usize * self.page_size;
        start..start + self.page_size
    }

    /// The bytes of an allocated regular page.
    #[inline]
    pub(crate) fn regular_page(&self, page: u64) -> Result<&[u8]> {
        self.regular_page_sized(page, self.page_size)
    }

    /// [`Core::regular_page`] with the page size given by the caller, which
    /// knows it at compile time (`PageId::get`): the offset is a shift, not
    /// a multiplication by a field read on every call.
    #[inline]
    pub(crate) fn regular_page_sized(&self, page: u64, page_size: usize) -> Result<&[u8]> {
        debug_assert_eq!(page_size, self.page_size);
        self.check_regular(page)?;
        let start = page as usize * page_size;
        let range = start..start + page_size;
        // A `match`, not `ok_or`: building the error on the hot path costs
        // a destructor call per `get` (contract P4).
        match self.store.bytes().get(range) {
            Some(bytes) => Ok(bytes),
            None => Err(MappedPageError::OutOfBounds),
        }
    }

    /// The bytes of an allocated regular page, writable. Marks data dirty so
    /// the next commit syncs it before its metadata (D3).
    #[inline]
    pub(crate) fn regular_page_mut(&mut self, page: u64) -> Result<&mut [u8]> {
        self.check_regular(page)?;
        if self.open_unsettled
            || self.any_guarded()
            || self.snapshots_alive()
            || self.readers.is_some()
        {
            self.prepare_write_in_place(page)?;
        }
        self.data_dirty = true;
        let range = self.page_range(page);
        match self.store.range_mut(range) {
            Some(bytes) => Ok(bytes),
            None => Err(MappedPageError::OutOfBounds),
        }
    }

    /// The rare checks before a write in place: no live snapshot reads the
    /// page, and no root that may still be needed checks it (a page a
    /// transaction just wrote; before open's root is settled the other root
    /// may be the durable one, and it may check pages too): such a root is
    /// made unneeded first.
    #[cold]
    fn prepare_write_in_place(&mut self, page: u64) -> Result<()> {
        self.check_not_in_snapshot(page)?;
        if self.open_unsettled && self.other_root_checks {
            self.settle_open()?;
        }
        if self.is_guarded(page) {
            self.release_guards()?;
        }
        Ok(())
    }

    #[inline]
    pub(super) fn check_regular(&self, page: u64) -> Result<()> {
        self.check_usable()?;
        self.map.check_regular(page)
    }

    /// Allocates `count` regular pages in one commit; zero pages is no
    /// commit at all.
    pub(crate) fn alloc_regular(&mut self, count: u64) -> Result<Vec<u64>> {
        self.one_op(|core, txn| core.txn_alloc_regular(txn, count))
    }

    /// Frees regular pages in one commit, after checking every one of them;
    /// an empty list is no commit at all.
    pub(crate) fn free_regular(&mut self, pages: &[u64]) -> Result<()> {
        self.one_op(|core, txn| core.txn_free_regular(txn, pages))
    }

    /// Makes every byte written and every commit so far durable.
    pub(crate) fn sync(&mut self) -> Result<()> {
        self.check_usable()?;
        self.sync_and_retire_checks()?;
        self.maybe_shrink();
        Ok(())
    }

    /// One sync, then, in Deferred mode, a root that checks no page when
    /// the root just made durable checks some: what the pages written since
    /// the last sync needed checking for (a power loss before they reached
    /// the disk) cannot happen to them any more, and an open of that root
    /// would read and checksum every one of them. The new root describes
    /// the same state and names only durable pages, so it needs no sync of
    /// its own: a power loss that loses it leaves the one just synced.
    fn sync_and_retire_checks(&mut self) -> Result<()> {
        self.sync_everything()?;
        if self.durability == Durability::Deferred && !self.journal.durable_checked.is_empty() {
            self.commit(Change::default(), |_| {})?;
        }
        Ok(())
    }
}

/// What the public types read of the engine's state: through these, never
/// through its fields.
impl Core {
    /// Pages in the file.
    pub(crate) fn total_pages(&self) -> u64 {
        self.map.total_pages()
    }

    /// Pages free for allocation now.
    pub(crate) fn free_pages(&self) -> u64 {
        self.map.free_pages()
    }

    /// Regular pages allocated.
    pub(crate) fn regular_count(&self) -> u64 {
        self.map.regular_count()
    }

    /// Whether `page` is an allocated regular page.
    pub(crate) fn is_regular(&self, page: u64) -> bool {
        self.map.is_regular(page)
    }

    /// The first allocated regular page at or after `from`.
    pub(crate) fn next_regular(&self, from: u64) -> Option<u64> {
        self.map.regular_bits().next_one(from)
    }

    /// The last allocated regular page before `end`.
    pub(crate) fn prev_regular(&self, end: u64) -> Option<u64> {
        self.map.regular_bits().prev_one(end)
    }

    /// The first protected slot in use at or after `from`.
    pub(crate) fn next_protected(&self, from: u64) -> Option<u64> {
        let directory = self.map.directory();
        let start = usize::try_from(from).ok()?;
        let offset = directory
            .get(start..)?
            .iter()
            .position(|e| e.is_protected())?;
        Some((start + offset) as u64)
    }

    /// The directory: protected pages and sub-page parents, by slot.
    pub(crate) fn directory(&self) -> &[DirEntry] {
        self.map.directory()
    }

    /// The generation of the last commit.
    pub(crate) fn generation(&self) -> u64 {
        self.journal.generation
    }

    pub(crate) fn durability(&self) -> Durability {
        self.durability
    }

    /// What open found.
    pub(crate) fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// Syncs of the file so far.
    pub(crate) fn sync_count(&self) -> u64 {
        self.store.sync_count()
    }

    /// The bytes of any page of the file, for a face that has checked what
    /// the page is (a staged protected copy, a page a transaction wrote).
    pub(crate) fn page_bytes(&self, page: u64) -> Result<&[u8]> {
        match self.store.bytes().get(self.page_range(page)) {
            Some(bytes) => Ok(bytes),
            None => Err(MappedPageError::OutOfBounds),
        }
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        if self.durability == Durability::Deferred && !self.poisoned {
            // Best effort: a failure here leaves the file at an older but
            // consistent commit, which is what Deferred promises anyway.
            let _ = self.sync_and_retire_checks();
        }
        // Where a mapped file cannot be cut, a cut that a snapshot dropped
        // since deferred would otherwise wait for the next writer's sync.
        self.store.finish_deferred_cut();
    }
}

//! The crash simulator (contract D1–D4, D6): a random workload runs with an
//! I/O hook that snapshots the file at every sync; at each sync point the
//! test builds the images a power loss could leave on disk and opens each
//! with the real `Pager::open`, checking it against the model of the
//! workload (see `crash_support`).
//!
//! What the disk may hold when power is lost before sync `k` returns (the
//! model of `FORMAT.md`, "What the format assumes of the disk"): the image
//! made durable by sync `k - 1`, where each page written since holds any
//! version it had since then (its durable bytes, any intermediate version,
//! its newest bytes), or a mix of two of them at 512-byte sector boundaries,
//! and the file length is the durable one or the newer one (a growth whose
//! new length was not yet synced). Versions are seen at every sync, before
//! every metadata write and after every call; user writes and staged
//! protected copies are found by diffing those images.
//!
//! Images checked per sync point: none of the new pages, all of them, each
//! alone, all but each one, each intermediate version, random mixes, and torn
//! pages, at both file lengths when the file grew; where at most
//! `EXHAUSTIVE_PAGES` pages changed, every subset of them. Identical images are
//! checked once. Besides power-loss images the test checks process-crash
//! images (the page cache as it stood before every metadata write and after
//! every call), which must show the last completed call or the one in flight.
//!
//! Two kinds of file are simulated. Small files (1 KiB pages, about a hundred
//! of them) grow from empty, so growth is in flight at many sync points, but
//! both page trees stay a single leaf. Deep files (1 KiB and 4 KiB pages) are
//! set up before recording so that the free-space bitmap and the protected
//! directory both have two levels of interior nodes above the leaves, with a
//! page allocated in every bitmap leaf and a slot in use in every directory
//! leaf; the workload frees and rewrites pages and slots spread over all the
//! leaves, so its checkpoints rewrite leaves and interior nodes while a crash
//! is in flight. A deep file is gigabytes long but holds a few megabytes, so
//! images are sparse: a length and the pages that hold data, read from the
//! file with `SEEK_DATA`/`SEEK_HOLE` and written back the same way. An image
//! of a deep file costs milliseconds to check where a small one costs a
//! fraction of one, so the deep configurations sample (see `DeepLimits`):
//! every sync point with a checkpoint in flight but only a share of the
//! others, and single-page images for a few dozen of the changed pages at
//! most. The small configurations check every image of every point.
//!
//! The workloads include transactions (contract T1, T4): each allocates
//! fresh pages and writes them, frees older pages, allocates, frees and
//! writes protected pages, and commits or is dropped; a share of them write
//! more pages than a root can check, so their checks go to check pages. A
//! crash image must show the state before a transaction or after it, with
//! every page it wrote holding exactly its bytes; in Deferred mode, the state
//! after any commit since the last sync, so that a newer commit never
//! survives without an older one. The runs at 4 KiB pages
//! (`crash_images_transactions_4k_*`) are small files where a quarter of the
//! calls are transactions; a point there with more than 32 changed pages
//! gives single-page images to the root and check pages and a sample of the
//! rest (`pick_singles`). Each run prints how many of the images of points
//! with a pending commit opened to the state before it and after it.
//!
//! The shrink runs (contract C2) free the highest pages and cut the free
//! tail (`Pager::shrink`, and the cut a commit makes by itself past a small
//! threshold): the recorder follows the file's length through the cut, so
//! the sync points of a shrink and the later ones until its length is
//! durable give images at the old length and the new, and every one of them
//! must open to a root no older than the one made durable before the cut
//! and no longer than the file. Each run prints what those images opened to.
//!
//! The group-commit run (`crash_images_group_commit`) has four threads
//! commit through `ConcurrentPager::write_and_sync` (transactions that
//! allocate and fill pages, some more than a root checks, free older pages
//! and write protected pages) on a file where a sync takes real time, so
//! that commits are made while a group sync runs and leave their root to
//! the next one. A group sync runs without the writer's lock and the hook
//! sees only its start, so its crash point stays open while it may run and
//! takes the writes of those commits too (see `GroupRecorder`). Every
//! power-loss image of every sync point, and the page cache before every
//! write and after every commit, must open to a prefix of the commits in
//! the order they were made, holding every commit whose call had returned
//! before the point (and the one the last finished sync made durable), and
//! after the last call returned, every commit.
//!
//! Without `MAPPEDPAGES_DEEP_TESTS=1` (see `depth_support`) each
//! configuration runs a seed or two instead of its full matrix.
//! `MAPPEDPAGES_SOAK=<n>` multiplies the seeds of the default tests by `n`;
//! the ignored test `crash_images_soak` runs a long soak, whose seeds it
//! multiplies too.

#![cfg(feature = "fault-injection")]

#[path = "support/crash/mod.rs"]
mod crash_support;
#[path = "support/depth/mod.rs"]
mod depth_support;
#[path = "support/os/mod.rs"]
mod os_support;
// The format's offsets, from the crate's own source.
#[allow(dead_code)]
#[path = "../src/format/layout.rs"]
mod layout;

use os_support::FileExt;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::File;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crash_support::{
    check_file_sized, describe, drive, options, options_sized, pages_written, root_capacity,
    soak_factor, temp_dir, End, Expect, History, Op, Rng, State, Workload, GROWTH_STEP_PAGES,
    INITIAL_PAGES, P, PS,
};
use depth_support::depth;
use mappedpages::fault::{IoEvent, IoHook};
use mappedpages::{ConcurrentPager, Durability, PageId, Pager, ProtectedPageId};

const SECTOR: usize = 512;

/// The bytes of one page, shared between the images that hold it.
type Page = Arc<[u8]>;

/// A file as a length plus the bytes of every page that is not all zeros; a
/// page left out reads as zeros, like a hole. Keeping zero pages out makes
/// the form unique, so equal images compare and hash equal.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Image {
    page_size: usize,
    len: usize,
    pages: BTreeMap<usize, Page>,
}

impl Image {
    fn get(&self, page: usize) -> Option<&Page> {
        self.pages.get(&page)
    }

    fn set(&mut self, page: usize, bytes: Page) {
        if bytes.iter().all(|&b| b == 0) {
            self.pages.remove(&page);
        } else {
            self.pages.insert(page, bytes);
        }
    }

    /// Cuts or extends the image to `len` bytes (a whole number of pages).
    fn set_len(&mut self, len: usize) {
        self.len = len;
        self.pages.split_off(&len.div_ceil(self.page_size));
    }

    /// Reads the file at `path`, only its data extents (a sparse file of
    /// gigabytes is read in milliseconds). Pages equal to those of `like`
    /// share its buffers.
    fn read(path: &Path, page_size: usize, like: &Image) -> Image {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len() as usize;
        let mut image = Image {
            page_size,
            len,
            pages: BTreeMap::new(),
        };
        // Read in bounded pieces: where the file system cannot find holes,
        // the whole file is one extent.
        const PIECE: usize = 256;
        let pieces = data_extents(&file, len)
            .into_iter()
            .flat_map(|(start, end)| {
                let first = start / page_size;
                let last = end.div_ceil(page_size).min(len / page_size);
                (first..last)
                    .step_by(PIECE)
                    .map(move |p| (p, (p + PIECE).min(last)))
            });
        for (first, last) in pieces {
            let mut buf = vec![0u8; (last - first) * page_size];
            file.read_exact_at(&mut buf, (first * page_size) as u64)
                .unwrap();
            for (i, bytes) in buf.chunks_exact(page_size).enumerate() {
                let page = first + i;
                if bytes.iter().all(|&b| b == 0) {
                    continue;
                }
                let shared = match like.get(page) {
                    Some(old) if old[..] == *bytes => Arc::clone(old),
                    _ => Page::from(bytes),
                };
                image.pages.insert(page, shared);
            }
        }
        image
    }

    /// Writes the image to a new file at `path`: the length, then only the
    /// pages that hold data, so the file is as sparse as the image.
    fn write(&self, path: &Path) {
        let _ = std::fs::remove_file(path);
        let file = File::create_new(path).unwrap();
        file.set_len(self.len as u64).unwrap();
        for (&page, bytes) in &self.pages {
            file.write_all_at(bytes, (page * self.page_size) as u64)
                .unwrap();
        }
    }

    /// A hash of the image's length and of the pages `pages`: every image of
    /// one crash point is the same base with only those pages changed.
    fn key(&self, pages: &[usize]) -> u64 {
        let mut h = DefaultHasher::new();
        self.len.hash(&mut h);
        for &p in pages {
            match self.get(p) {
                Some(bytes) => bytes.hash(&mut h),
                None => 0u8.hash(&mut h),
            }
        }
        h.finish()
    }

    /// The newest metadata root that looks valid (magic only: the image is
    /// the pager's own, freshly synced).
    fn newest_root(&self) -> RootFields {
        use layout::root::*;
        let newest = layout::pages::ROOT_PAGES
            .iter()
            .filter_map(|&p| self.get(p as usize))
            .filter(|page| page.starts_with(&MAGIC))
            .max_by_key(|page| le(page, OFF_GENERATION, 8))
            .expect("no metadata root in the image");
        RootFields {
            generation: le(newest, OFF_GENERATION, 8),
            log_len: le(newest, OFF_LOG_LEN, 4) as usize,
            bitmap: (
                le(newest, OFF_BITMAP_TOP, 8) as usize,
                le(newest, OFF_BITMAP_HEIGHT, 4) as u32,
            ),
            directory: (
                le(newest, OFF_DIR_TOP, 8) as usize,
                le(newest, OFF_DIR_HEIGHT, 4) as u32,
            ),
        }
    }

    /// The pages of the page tree under `top` of height `height` (`FORMAT.md`,
    /// "Page trees": an interior page holds `PAGE_SIZE / 16` references whose
    /// first 8 bytes are the child's page, 0 for none).
    fn tree_pages(&self, (top, height): (usize, u32)) -> Vec<usize> {
        let mut level = vec![top];
        let mut pages = Vec::new();
        for depth in 0..=height {
            level.retain(|&p| p != 0);
            pages.extend(&level);
            if depth == height {
                break;
            }
            level = level
                .iter()
                .flat_map(|&p| {
                    let node = self.get(p).map_or(&[][..], |b| &b[..]);
                    use layout::tree_node::{NODE_REF_LEN, OFF_REF_PAGE};
                    node.chunks_exact(NODE_REF_LEN)
                        .map(|r| le(r, OFF_REF_PAGE, 8) as usize)
                        .collect::<Vec<_>>()
                })
                .collect();
        }
        pages
    }
}

/// The little-endian number of `n` bytes at `at` in `bytes`.
fn le(bytes: &[u8], at: usize, n: usize) -> u64 {
    bytes[at..at + n]
        .iter()
        .rev()
        .fold(0u64, |acc, &b| acc << 8 | u64::from(b))
}

/// What this test reads of a metadata root (offsets from `FORMAT.md`): to
/// check that a configuration reaches the depth it is meant to, and to set
/// one up.
struct RootFields {
    generation: u64,
    log_len: usize,
    /// (top page, height) of the free-space bitmap tree.
    bitmap: (usize, u32),
    /// (top page, height) of the protected-directory tree.
    directory: (usize, u32),
}

/// The `[start, end)` byte ranges of `file` that may hold data. Where the
/// file system cannot tell (no `SEEK_DATA`), the whole file.
#[cfg(target_os = "linux")]
fn data_extents(file: &File, len: usize) -> Vec<(usize, usize)> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    let seek = |offset: usize, whence: libc::c_int| {
        // SAFETY: lseek takes a descriptor `file` keeps open for the whole
        // call and reads no memory of ours.
        let at = unsafe { libc::lseek(fd, offset as libc::off_t, whence) };
        usize::try_from(at).ok()
    };
    let mut extents = Vec::new();
    let mut at = 0;
    while at < len {
        let Some(start) = seek(at, libc::SEEK_DATA) else {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENXIO) {
                break; // only a hole is left
            }
            return vec![(0, len)];
        };
        let end = seek(start, libc::SEEK_HOLE).unwrap_or(len).min(len);
        if start >= end {
            break;
        }
        extents.push((start, end));
        at = end;
    }
    extents
}

/// Gives back the disk blocks of `len` bytes at `offset`, keeping the
/// length; false where the file system cannot.
#[cfg(target_os = "linux")]
fn punch_hole(file: &File, offset: usize, len: usize) -> bool {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(offset),
        libc::off64_t::try_from(len),
    ) else {
        return false;
    };
    // SAFETY: fallocate64 reads no memory of ours; `file` keeps the
    // descriptor open for the call.
    let rc = unsafe {
        libc::fallocate64(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            offset,
            len,
        )
    };
    rc == 0
}

/// Holes are punched on Linux only; elsewhere the free pages keep their
/// blocks, and the images are only larger.
#[cfg(not(target_os = "linux"))]
fn punch_hole(_file: &File, _offset: usize, _len: usize) -> bool {
    false
}

/// Without `SEEK_DATA` (used on Linux only) every byte may hold data: the
/// images read all of the file, which costs time, not coverage.
#[cfg(not(target_os = "linux"))]
fn data_extents(_file: &File, len: usize) -> Vec<(usize, usize)> {
    vec![(0, len)]
}

/// The file as the simulated disk held it at one sync point, and what was
/// written since.
struct CrashPoint {
    /// The durable image (its length is the durable length).
    durable: Image,
    /// The file length once the pending growth is durable.
    current_len: usize,
    /// Every version each page had since the durable image, oldest first,
    /// excluding its durable bytes.
    versions: BTreeMap<usize, Vec<Page>>,
    /// The state is at least the one after this call.
    floor: u64,
    /// The call in flight at this sync.
    call: u64,
    /// Writes by calls before this one are durable.
    durable_before: u64,
    /// Page-tree pages written since the durable image: a checkpoint is in
    /// flight.
    tree_writes: u64,
    /// A cut whose length is not durable yet (the file is shorter than the
    /// durable image): the generation of the root made durable before it,
    /// which every image must open to or past (contract C2).
    cut_root: Option<u64>,
}

/// The page cache at one moment: a process-crash image.
struct CacheImage {
    image: Image,
    lo: u64,
    hi: u64,
    durable_before: u64,
    /// Taken just before a metadata root was written, or after a call: the
    /// deep configurations check all of these and sample the rest.
    always: bool,
}

impl CacheImage {
    /// What the image may show: one of the states from `lo` to `hi`, with
    /// the writes of calls before `durable_before` in it.
    fn expect<'a>(&self, history: &'a History) -> Expect<'a> {
        Expect {
            history,
            lo: self.lo,
            hi: self.hi,
            durable_before: self.durable_before,
            root_calls: None,
            deep: false,
        }
    }
}

struct Recorder {
    page_size: usize,
    zero: Page,
    path: PathBuf,
    active: bool,
    durability: Durability,
    call: u64,
    durable: Image,
    current_len: usize,
    versions: BTreeMap<usize, Vec<Page>>,
    last_seen: Image,
    floor: u64,
    prev_sync_call: u64,
    root_calls: BTreeSet<u64>,
    points: Vec<CrashPoint>,
    cache_images: Vec<CacheImage>,
    /// A root write was announced: (its page, the page before the write).
    root_write: Option<(usize, Page)>,
    /// Page cache images with the root page torn mid-write.
    torn_root_images: Vec<CacheImage>,
    /// The last event was a growth: the sync that follows it is the
    /// growth's own (see `on_event`).
    after_grow: bool,
    tree_writes: u64,
    /// The file was cut (a shrink) during the call being recorded.
    cut: bool,
    /// The generation of the durable root when the file was last cut
    /// right after a sync (a shrink's), which the images at the cut-pending
    /// points must keep; 0 for none.
    cut_root: u64,
    /// Nothing was written or grown since the last sync.
    since_sync: bool,
    /// Set for a group-commit workload (`simulate_group`).
    group: Option<GroupRecorder>,
}

impl Recorder {
    /// The recorder, shared with an I/O hook that shows it every event, and
    /// its page of zeros.
    fn hooked(self) -> (Arc<Mutex<Recorder>>, Page, IoHook) {
        let zero = Arc::clone(&self.zero);
        let recorder = Arc::new(Mutex::new(self));
        let hook_recorder = Arc::clone(&recorder);
        let hook = IoHook::new(move |event| {
            if let Ok(mut r) = hook_recorder.lock() {
                r.on_event(event);
            }
            Ok(())
        });
        (recorder, zero, hook)
    }

    fn new(path: &Path, page_size: usize, durability: Durability) -> Recorder {
        let empty = Image {
            page_size,
            len: 0,
            pages: BTreeMap::new(),
        };
        let start = Image::read(path, page_size, &empty);
        Recorder {
            page_size,
            zero: Page::from(vec![0u8; page_size]),
            path: path.to_path_buf(),
            active: false,
            durability,
            call: 0,
            durable: start.clone(),
            current_len: start.len,
            versions: BTreeMap::new(),
            last_seen: start,
            floor: 0,
            prev_sync_call: 0,
            root_calls: BTreeSet::new(),
            points: Vec::new(),
            cache_images: Vec::new(),
            root_write: None,
            torn_root_images: Vec::new(),
            after_grow: false,
            tree_writes: 0,
            cut: false,
            cut_root: 0,
            since_sync: false,
            group: None,
        }
    }

    fn page<'a>(&'a self, image: &'a Image, page: usize) -> &'a Page {
        image.get(page).unwrap_or(&self.zero)
    }

    /// Notes every page of `snap` that differs from the last snapshot.
    fn observe(&mut self, snap: &Image) {
        let pages = snap.len / self.page_size;
        let candidates: BTreeSet<usize> = snap
            .pages
            .keys()
            .chain(self.last_seen.pages.range(..pages).map(|(p, _)| p))
            .copied()
            .collect();
        for page in candidates {
            let now = self.page(snap, page);
            if now == self.page(&self.last_seen, page) {
                continue;
            }
            let now = Arc::clone(now);
            if let Some(group) = &mut self.group {
                group.saw(page, &now);
            }
            let durable_differs = now != *self.page(&self.durable, page);
            let list = self.versions.entry(page).or_default();
            if durable_differs && !list.contains(&now) {
                list.push(now);
            }
        }
        if let Some((page, old)) = self.root_write.take() {
            let new = Arc::clone(self.page(snap, page));
            let ps = self.page_size;
            for cut in [8, 64, ps / 2, ps - 8] {
                let mut torn = old.to_vec();
                torn[..cut].copy_from_slice(&new[..cut]);
                let mut image = snap.clone();
                image.set(page, Page::from(torn));
                self.torn_root_images.push(CacheImage {
                    image,
                    lo: self.call.saturating_sub(1),
                    hi: self.call,
                    durable_before: self.call,
                    always: true,
                });
            }
        }
        self.last_seen = snap.clone();
    }

    fn read_file(&self) -> Image {
        Image::read(&self.path, self.page_size, &self.last_seen)
    }

    fn on_event(&mut self, event: IoEvent<'_>) {
        let after_grow = std::mem::replace(&mut self.after_grow, false);
        match event {
            IoEvent::Sync { .. } => self.since_sync = true,
            IoEvent::Write { .. } | IoEvent::Grow { .. } => self.since_sync = false,
            _ => {}
        }
        match event {
            IoEvent::Grow { new_len } => {
                self.current_len = new_len as usize;
                self.after_grow = true;
                // A growth made while a group sync may run: a power loss
                // before the sync ends may find the file at either length.
                if let Some(window) = self.group.as_mut().and_then(|g| g.window.as_mut()) {
                    window.current_len = window.current_len.max(self.current_len);
                }
            }
            // A growth's own step, the undo of a failed growth, or a cut after
            // a shrink's root is durable: until the next sync the disk may
            // hold the old length or this one.
            IoEvent::SetLen { len } => {
                let len = len as usize;
                if len < self.current_len && self.active {
                    self.cut = true;
                    // Not what a commit does while a group sync runs: the
                    // sync's point takes no more writes.
                    self.close_window();
                    // A cut straight after a sync follows a shrink's root.
                    // A dropped transaction's growth given back does not
                    // (no root counted on it) and asks nothing new.
                    if self.since_sync {
                        self.cut_root = self.durable.newest_root().generation;
                    }
                }
                self.current_len = len;
            }
            IoEvent::Write { offset, .. } if self.active => {
                let snap = self.read_file();
                self.observe(&snap);
                let page = offset as usize / self.page_size;
                let root = page == 1 || page == 2;
                // The page cache holds a root no older than the one of the
                // last sync started.
                let lo = match &self.group {
                    Some(group) => group.floor(&self.durable),
                    None => self.call - 1,
                };
                if root {
                    self.root_calls.insert(self.call);
                    if let Some(group) = &mut self.group {
                        // The pager writes a root only once it has applied
                        // the outcome of the group sync that ran.
                        group.root_in_commit |= group.in_commit;
                        self.close_window();
                    } else {
                        self.root_write = Some((page, Arc::clone(self.page(&snap, page))));
                    }
                } else {
                    self.tree_writes += 1;
                }
                self.cache_images.push(CacheImage {
                    image: snap,
                    lo,
                    hi: self.call,
                    durable_before: self.call,
                    always: root,
                });
            }
            // The event's own view of the file (the map) is not read: on a
            // deep file that would fault in gigabytes of holes. The file
            // read through the page cache holds the same bytes.
            IoEvent::Sync { .. } if self.active => {
                let mut snap = self.read_file();
                snap.set_len(self.current_len);
                self.observe(&snap);
                // A sync starts only once the one before has ended.
                self.close_window();
                let versions = std::mem::take(&mut self.versions);
                let durable = std::mem::replace(&mut self.durable, snap);
                let cut_root = (self.current_len < durable.len).then_some(self.cut_root);
                let mut point = CrashPoint {
                    durable,
                    current_len: self.current_len,
                    versions,
                    floor: self.floor,
                    call: self.call,
                    durable_before: self.prev_sync_call,
                    tree_writes: std::mem::take(&mut self.tree_writes),
                    cut_root,
                };
                if let Some(group) = &mut self.group {
                    point.floor = group.floor(&point.durable);
                    point.durable_before = point.floor + 1;
                    if group.in_commit {
                        // A sync made with the writer's lock held, inside
                        // a commit: over before the next write.
                        self.points.push(point);
                    } else {
                        // A group sync: the writer goes on while it runs.
                        group.group_syncs += 1;
                        group.window = Some(point);
                        group.window_took = false;
                    }
                    return;
                }
                self.points.push(point);
                // Once this sync returns, every call before this one is
                // durable, and the pager counts on it: the next root goes to
                // the other slot. The sync a growth makes is not counted so:
                // the pager may still overwrite the root it made durable,
                // falling back to the one before (allowed by D4: no sync the
                // caller asked for has returned since).
                if !after_grow {
                    self.floor = self.floor.max(self.call - 1);
                }
                self.prev_sync_call = self.call;
            }
            _ => {}
        }
    }

    /// Call `self.call` returned `Ok`.
    fn call_done(&mut self) {
        let snap = self.read_file();
        self.observe(&snap);
        self.cache_images.push(CacheImage {
            image: snap,
            lo: self.call,
            hi: self.call,
            durable_before: self.call + 1,
            always: true,
        });
        if self.durability == Durability::Immediate {
            self.floor = self.call;
        }
    }

    /// Ends the crash point of a running group sync, if any (see
    /// [`GroupRecorder`]): of the writes made in the commit going on, only
    /// those of its own fresh pages join it.
    fn close_window(&mut self) {
        let Some(group) = &mut self.group else {
            return;
        };
        let Some(mut window) = group.window.take() else {
            return;
        };
        for (page, versions) in std::mem::take(&mut group.tentative) {
            if group.own_pages.contains(&page) {
                for bytes in &versions {
                    group.window_took |= add_version(&mut window, page, bytes);
                }
            }
        }
        group.windows_with_writes += u64::from(group.window_took);
        window.call = self.call;
        self.points.push(window);
    }

    /// A commit of the group workload starts: its thread holds the writer's
    /// lock. What was written before belongs to what came before.
    fn commit_begins(&mut self) {
        let snap = self.read_file();
        self.observe(&snap);
        let group = self.group.as_mut().expect("a group workload");
        group.in_commit = true;
        group.root_in_commit = false;
        group.own_pages.clear();
        group.tentative.clear();
        self.call = group.commits() + 1;
    }

    /// The commit going on wrote these fresh pages, taken before its commit
    /// could apply a group sync's outcome.
    fn commit_writes(&mut self, pages: impl IntoIterator<Item = usize>) {
        let group = self.group.as_mut().expect("a group workload");
        group.own_pages.extend(pages);
    }

    /// The commit going on committed, making `generation`; its thread still
    /// holds the writer's lock. Had it found a group sync running, it wrote
    /// no root, and all it wrote joins that sync's crash point.
    fn commit_ends(&mut self, generation: u64) {
        let snap = self.read_file();
        self.observe(&snap);
        let group = self.group.as_mut().expect("a group workload");
        group.in_commit = false;
        let tentative = std::mem::take(&mut group.tentative);
        if let Some(window) = &mut group.window {
            // A root written, or a sync, would have closed it.
            group.commits_during_sync += 1;
            for (page, versions) in tentative {
                for bytes in &versions {
                    group.window_took |= add_version(window, page, bytes);
                }
            }
        }
        assert!(
            group.generations.last() < Some(&generation),
            "commit {} made generation {generation}, not past the one before",
            self.call
        );
        group.generations.push(generation);
        let lo = group.floor(&self.durable);
        self.cache_images.push(CacheImage {
            image: snap,
            lo,
            hi: self.call,
            durable_before: self.call,
            always: true,
        });
    }

    /// The `write_and_sync` call of commit `commit` has returned `Ok`.
    fn returned(&mut self, commit: u64) {
        let group = self.group.as_mut().expect("a group workload");
        group.returned = group.returned.max(commit);
    }

    /// Every call of the group workload has returned: the crash point of
    /// the last group sync ends, and a power loss now, with what was written
    /// since (nothing a root uses), must keep every commit.
    fn finish(&mut self) {
        self.close_window();
        let mut snap = self.read_file();
        snap.set_len(self.current_len);
        self.observe(&snap);
        let group = self.group.as_ref().expect("a group workload");
        let floor = group.floor(&self.durable);
        assert_eq!(group.returned, group.commits(), "a call did not return");
        self.points.push(CrashPoint {
            durable: self.durable.clone(),
            current_len: self.current_len,
            versions: std::mem::take(&mut self.versions),
            floor,
            call: group.commits(),
            durable_before: floor + 1,
            tree_writes: std::mem::take(&mut self.tree_writes),
            cut_root: None,
        });
    }
}

/// Adds `bytes` to the versions of `page` at `point`, unless they are its
/// durable bytes or one of its versions already; whether it did.
fn add_version(point: &mut CrashPoint, page: usize, bytes: &Page) -> bool {
    let durable = match point.durable.get(page) {
        Some(durable) => durable == bytes,
        None => bytes.iter().all(|&b| b == 0),
    };
    if durable || point.versions.get(&page).is_some_and(|v| v.contains(bytes)) {
        return false;
    }
    point
        .versions
        .entry(page)
        .or_default()
        .push(Arc::clone(bytes));
    true
}

/// What the recorder keeps of a group-commit workload (`simulate_group`).
///
/// A group sync runs without the writer's lock, and the hook sees only its
/// start. Until it ends, a power loss may leave the image the sync before
/// made durable with any of the writes made since, those of the commits
/// made while it runs included (they write fresh pages and leave their root
/// pending). So the crash point of a group sync stays open (`window`) and
/// takes those writes, until the pager shows that the sync is over: it
/// writes a root or starts a sync only once it has applied the sync's
/// outcome. The commit that applies it may, before its root, write pages
/// that outcome made free (tree pages, check pages): what a commit writes
/// goes to `tentative` first, and joins the window whole if the commit
/// wrote no root, else only for the fresh pages it took before (its
/// `own_pages`).
#[derive(Default)]
struct GroupRecorder {
    /// A commit's closure runs (its thread holds the writer's lock).
    in_commit: bool,
    /// The crash point of the group sync started last, while it may run.
    window: Option<CrashPoint>,
    /// The window took writes made after its sync started.
    window_took: bool,
    /// Versions written during the commit going on, while a window is open.
    tentative: BTreeMap<usize, Vec<Page>>,
    /// The fresh pages the commit going on wrote.
    own_pages: BTreeSet<usize>,
    /// The commit going on wrote a root.
    root_in_commit: bool,
    /// The generation of each commit; commit 0 is the file as the workload
    /// found it.
    generations: Vec<u64>,
    /// The newest commit whose call had returned, as its thread noted
    /// after the return.
    returned: u64,
    /// Group syncs started, commits made while one ran (their roots left
    /// pending), and group syncs whose crash point took writes made while
    /// they ran.
    group_syncs: u64,
    commits_during_sync: u64,
    windows_with_writes: u64,
}

impl GroupRecorder {
    fn new(generation: u64) -> GroupRecorder {
        GroupRecorder {
            generations: vec![generation],
            ..GroupRecorder::default()
        }
    }

    /// Commits made so far.
    fn commits(&self) -> u64 {
        self.generations.len() as u64 - 1
    }

    /// The commit that made `generation`, or the last one before it.
    fn commit_of(&self, generation: u64) -> u64 {
        let after = self.generations.partition_point(|&g| g <= generation);
        after.saturating_sub(1) as u64
    }

    /// The oldest commit a power loss on `durable` (the image the last
    /// finished sync made durable, with any later writes) may show: the
    /// one of its newest root, and every commit whose call had returned
    /// (its sync had ended before this sync started).
    fn floor(&self, durable: &Image) -> u64 {
        self.commit_of(durable.newest_root().generation)
            .max(self.returned)
    }

    /// `page` now holds `bytes` (it changed since the last look).
    fn saw(&mut self, page: usize, bytes: &Page) {
        let Some(window) = &mut self.window else {
            return;
        };
        if self.in_commit {
            let versions = self.tentative.entry(page).or_default();
            if !versions.contains(bytes) {
                versions.push(Arc::clone(bytes));
            }
        } else {
            self.window_took |= add_version(window, page, bytes);
        }
    }
}

/// Figures of one run.
#[derive(Default, Debug)]
struct Tally {
    workloads: u64,
    calls: u64,
    sync_points: u64,
    grow_points: u64,
    checkpoint_points: u64,
    power_images: u64,
    cache_images: u64,
    torn_root_images: u64,
    /// Transactions committed, those of them that wrote more pages than a
    /// root can check, and transactions dropped.
    txn_commits: u64,
    big_txn_commits: u64,
    txn_drops: u64,
    /// Sync points with a transaction's commit not yet durable (in flight,
    /// or in Deferred mode any since the last sync), those with two or more,
    /// and those with a check page among the pages written since.
    txn_points: u64,
    multi_txn_points: u64,
    check_page_points: u64,
    /// Power-loss images of those points, by what they opened to: the state
    /// before the oldest pending commit, after the newest, or in between.
    txn_images: u64,
    txn_before: u64,
    txn_after: u64,
    txn_between: u64,
    shrink: ShrinkTally,
    /// Calls made while a snapshot was held, and pages relocated by
    /// committed transactions.
    snapshot_calls: u64,
    relocations: u64,
    /// Copies of the file made (and opened to the model's state) by calls.
    copies: u64,
    group: GroupTally,
    violations: Vec<String>,
}

/// Figures of the group-commit runs.
#[derive(Default, Debug)]
struct GroupTally {
    /// Commits made through `write_and_sync`, group syncs, commits made
    /// while a group sync ran, and group syncs whose crash point took
    /// writes made while they ran.
    commits: u64,
    group_syncs: u64,
    commits_during_sync: u64,
    windows_with_writes: u64,
    /// Power-loss images that opened to the oldest commit they may show,
    /// and to a newer one.
    at_floor: u64,
    newer: u64,
}

/// Figures of the shrinks of one run (contract C2).
#[derive(Default, Debug)]
struct ShrinkTally {
    /// `Pager::shrink` calls, the calls that cut the file (shrinks and
    /// commits followed by an automatic cut), and the pages they gave back.
    calls: u64,
    cut_calls: u64,
    pages_given_back: u64,
    /// Sync points in calls that cut the file or asked to, and sync points
    /// of later calls with a cut whose new length is not yet durable.
    points: u64,
    cut_pending_points: u64,
    /// Power-loss images of those points, by the root they opened to
    /// (`[before the call, between two of its commits, its last]`; all in
    /// the last at a later point) and the file length (`[longer, shorter]`:
    /// the durable one or the pending one; a cut of an earlier call may
    /// still be pending at a point of a call that shrinks).
    images: [[u64; 2]; 3],
}

/// What a call that may cut the file committed: the generations before and
/// after it.
#[derive(Clone, Copy, Debug)]
struct ShrinkCall {
    before: u64,
    after: u64,
}

impl ShrinkTally {
    /// Counts an image of a shrink point that opened to generation `opened`
    /// and checks that it kept the root made durable before a cut whose
    /// length is not durable yet (`cut_root`).
    fn image(
        &mut self,
        opened: u64,
        short: bool,
        call: Option<ShrinkCall>,
        cut_root: Option<u64>,
    ) -> Result<(), String> {
        if let Some(root) = cut_root.filter(|&root| opened < root) {
            return Err(format!(
                "opened generation {opened}, older than the root {root} made durable before \
                 the file was cut (C2)"
            ));
        }
        let root = match call {
            Some(call) if opened <= call.before => 0,
            Some(call) if opened < call.after => 1,
            _ => 2,
        };
        self.images[root][usize::from(short)] += 1;
        Ok(())
    }
}

/// The generation the image opens to, or why it does not open.
fn opened_generation<const N: usize>(image: &Image, scratch: &Path) -> Result<u64, String> {
    image.write(scratch);
    let pager = Pager::<N>::open(scratch).map_err(|e| format!("open failed: {e}"))?;
    if pager.page_count() * N as u64 > image.len as u64 {
        return Err(format!(
            "opened a root of {} pages in a file of {} (C2)",
            pager.page_count(),
            image.len / N
        ));
    }
    Ok(pager.recovery().generation)
}

impl Tally {
    fn violation(&mut self, what: String) {
        if self.violations.len() < 1000 {
            self.violations.push(what);
        }
    }
}

/// Which sector masks of a torn page to try (bit `s` set: sector `s` holds
/// the new bytes). Every proper mix for pages of up to four sectors; for
/// larger pages the write cut after the first, the middle or the last but one
/// sector, from either end (a random tear is added by the random images).
fn torn_masks(sectors: usize) -> Vec<u32> {
    let all = (1u32 << sectors) - 1;
    if sectors <= 4 {
        return (1..all).collect();
    }
    let mut masks: Vec<u32> = [1, sectors / 2, sectors - 1]
        .iter()
        .flat_map(|&k| {
            let prefix = (1u32 << k) - 1;
            [prefix, all & !prefix]
        })
        .collect();
    masks.sort_unstable();
    masks.dedup();
    masks
}

/// Sync points with at most this many changed pages get an image for every
/// subset of their newest versions.
const EXHAUSTIVE_PAGES: usize = 6;

/// The images a power loss at `point` could leave, deduplicated. Pages in
/// `singles` get their own images (each alone, all but it, its intermediate
/// versions, torn); every changed page takes part in the rest.
fn power_images(
    point: &CrashPoint,
    zero: &Page,
    singles: &[usize],
    rng: &mut Rng,
    random_images: usize,
) -> Vec<Image> {
    let ps = point.durable.page_size;
    let durable_len = point.durable.len;
    let mut base = point.durable.clone();
    base.set_len(point.current_len.max(durable_len));
    let pages: Vec<usize> = point.versions.keys().copied().collect();
    let durable_page = |p: usize| Arc::clone(base.get(p).unwrap_or(zero));
    let latest = |p: usize| Arc::clone(point.versions[&p].last().unwrap());
    let compose = |choice: &dyn Fn(usize) -> Option<Page>| {
        let mut image = base.clone();
        for &p in &pages {
            if let Some(bytes) = choice(p) {
                image.set(p, bytes);
            }
        }
        image
    };
    let mut images = vec![compose(&|_| None), compose(&|p| Some(latest(p)))];
    if pages.len() <= EXHAUSTIVE_PAGES {
        // Every subset of the newest versions.
        for subset in 1..(1u32 << pages.len()) - 1 {
            images.push(compose(&|p| {
                let i = pages.iter().position(|&q| q == p).unwrap();
                (subset & 1 << i != 0).then(|| latest(p))
            }));
        }
    }
    let sectors = ps / SECTOR;
    let masks = torn_masks(sectors);
    for &only in singles {
        images.push(compose(&|p| (p == only).then(|| latest(p))));
        images.push(compose(&|p| (p != only).then(|| latest(p))));
        let count = point.versions[&only].len();
        for v in 0..count.saturating_sub(1) {
            let version = Arc::clone(&point.versions[&only][v]);
            images.push(compose(&|p| {
                Some(if p == only {
                    Arc::clone(&version)
                } else {
                    latest(p)
                })
            }));
        }
        // Torn: mixes of durable and newest sectors.
        let old = durable_page(only);
        let new = latest(only);
        for &mask in &masks {
            let mut torn = old.to_vec();
            for s in 0..sectors {
                if mask & (1 << s) != 0 {
                    torn[s * SECTOR..(s + 1) * SECTOR]
                        .copy_from_slice(&new[s * SECTOR..(s + 1) * SECTOR]);
                }
            }
            let torn = Page::from(torn);
            images.push(compose(&|p| {
                Some(if p == only {
                    Arc::clone(&torn)
                } else {
                    latest(p)
                })
            }));
        }
    }
    for _ in 0..random_images {
        let mut chosen: BTreeMap<usize, Page> = BTreeMap::new();
        for &p in &pages {
            let versions = &point.versions[&p];
            let pick = |rng: &mut Rng| {
                let i = rng.index(versions.len() + 1);
                if i == versions.len() {
                    durable_page(p)
                } else {
                    Arc::clone(&versions[i])
                }
            };
            let mut bytes = pick(rng);
            if rng.chance(15) {
                // Tear it against another version.
                let other = pick(rng);
                let s = rng.index(sectors);
                let mut torn = bytes.to_vec();
                torn[s * SECTOR..(s + 1) * SECTOR]
                    .copy_from_slice(&other[s * SECTOR..(s + 1) * SECTOR]);
                bytes = Page::from(torn);
            }
            chosen.insert(p, bytes);
        }
        images.push(compose(&|p| chosen.get(&p).cloned()));
    }
    if point.current_len != durable_len {
        // A growth's new length never reached the disk, or a cut's did:
        // the shorter length, whichever it is (a cut file that has grown
        // again is shorter than the durable one or longer, never both).
        let short_len = point.current_len.min(durable_len);
        let short: Vec<Image> = images
            .iter()
            .map(|i| {
                let mut i = i.clone();
                i.set_len(short_len);
                i
            })
            .collect();
        images.extend(short);
    }
    let mut seen = HashSet::new();
    images.retain(|image| seen.insert(image.key(&pages)));
    images
}

/// Checks one image; returns the call whose state it showed.
fn check_image<const N: usize>(
    image: &Image,
    scratch: &Path,
    expect: &Expect<'_>,
    what: &str,
    tally: &mut Tally,
) -> Option<u64> {
    image.write(scratch);
    match check_file_sized::<N>(scratch, expect) {
        Ok(call) => Some(call),
        Err(e) => {
            tally.violation(format!("{what}: {e}"));
            None
        }
    }
}

/// Whether `page` is a check page (`FORMAT.md`, "Check pages").
fn is_check_page(page: &[u8]) -> bool {
    page.starts_with(b"MPCHECK\0")
}

/// The pages of `point` given their own images: all of them, or at most
/// `limit` where more changed. The root pages and the check pages are
/// always among them; a sample of the rest fills up to the limit.
fn pick_singles(point: &CrashPoint, limit: Option<usize>, rng: &mut Rng) -> Vec<usize> {
    let all: Vec<usize> = point.versions.keys().copied().collect();
    let Some(limit) = limit.filter(|&l| all.len() > l) else {
        return all;
    };
    let (mut kept, mut others): (Vec<usize>, Vec<usize>) = all
        .iter()
        .partition(|&&p| p == 1 || p == 2 || point.versions[&p].iter().any(|v| is_check_page(v)));
    while kept.len() < limit && !others.is_empty() {
        kept.push(others.swap_remove(rng.index(others.len())));
    }
    kept
}

/// A file set up with deep page trees before the workload is recorded.
#[derive(Clone, Copy, Debug)]
struct Deep {
    /// Leaves of each tree: more than an interior node's `PAGE_SIZE / 16`
    /// references, so both trees have two levels of interior nodes.
    leaves: u64,
    limits: DeepLimits,
}

/// How much of a deep file's crash points is checked. Every image of a deep
/// file costs milliseconds to write and open, and a sync point with a
/// checkpoint in flight has a hundred changed pages. The small files check
/// everything at every point; the deep ones are there for the checkpoints.
#[derive(Clone, Copy, Debug)]
struct DeepLimits {
    /// Percentage of the sync points without a checkpoint in flight that are
    /// checked (a random sample), and of the process-crash images of calls
    /// that make no checkpoint.
    share: u64,
    /// Sync points without a checkpoint in flight: pages given single-page
    /// images, at most (a random sample; the root pages always).
    singles: usize,
    /// The same at sync points with a checkpoint in flight.
    checkpoint_singles: usize,
    /// Process-crash images per checkpoint besides those before a root write
    /// and after the call (a random sample of those before tree-page writes).
    cache_samples: usize,
}

struct Config {
    durability: Durability,
    seed: u64,
    calls: u64,
    random_images: usize,
    /// At most this many pages of a sync point get single-page images
    /// (`pick_singles`); every page if `None`.
    max_singles: Option<usize>,
    txns: Option<(u64, u64)>,
    /// Check the cache images with a torn root write (see
    /// `process_crash_mid_root_write_*`).
    torn_roots: bool,
    deep: Option<Deep>,
    /// Percentage of calls that start a shrink (`Workload::shrink_percent`).
    shrink_percent: u64,
    /// The pager's `shrink_threshold` in pages, if not the default (which
    /// the small files never reach).
    auto_shrink: Option<u64>,
    /// Set up a file whose free tail starts at this page (see
    /// [`set_up_tail_at`]); its first call shrinks.
    tail_at: Option<u64>,
}

/// Creates at `path` a file of `N`-byte pages whose pages in use end at
/// `tail_start` (every page before it allocated, so the free-space tree is
/// dense up to there), with the page just past it allocated and freed, so
/// that a shrink cuts at a boundary of the free-space tree when
/// `tail_start` is one. Growth is sparse: the pages nothing wrote stay
/// holes, and so do the images.
fn set_up_tail_at<const N: usize>(path: &Path, tail_start: u64) -> State {
    let mut pager = Pager::<N>::options()
        .durability(Durability::Immediate)
        .preallocate(false)
        .shrink_threshold(None)
        .create(path)
        .unwrap();
    let mut txn = pager.transaction().unwrap();
    txn.alloc_bulk(tail_start.saturating_sub(3) as usize)
        .unwrap();
    txn.commit().unwrap();
    let past = pager.alloc().unwrap();
    pager.free(past).unwrap();
    pager.sync().unwrap();
    let state = State::observe(&pager).unwrap();
    drop(pager);
    state
}

/// Creates at `path` a file of `N`-byte pages whose bitmap and directory
/// trees have `leaves` leaves each, with one page allocated in every bitmap
/// leaf and one slot in use in every directory leaf (everything else free),
/// and returns its state. Its log is left `log_room` records short of full,
/// so that the workload's first checkpoint comes early. Growth is sparse (no
/// preallocation), so pages nothing wrote stay holes.
fn set_up_deep<const N: usize>(path: &Path, leaves: u64, log_room: usize) -> State {
    let pages_per_leaf = 8 * N as u64;
    let slots_per_leaf = (N / 16) as u64;
    let mut pager = Pager::<N>::options()
        .durability(Durability::Deferred)
        .preallocate(false)
        .initial_pages(leaves * pages_per_leaf)
        .create(path)
        .unwrap();
    // The protected copies take the lowest pages, freed again below, so the
    // regular pages kept afterwards spread over every bitmap leaf.
    let slots = pager
        .alloc_protected_bulk((leaves * slots_per_leaf) as usize)
        .unwrap();
    let (_kept, freed): (Vec<_>, Vec<_>) = slots
        .into_iter()
        .partition(|id| id.0 % slots_per_leaf == slots_per_leaf / 2);
    pager.free_protected_bulk(freed).unwrap();
    pager.sync().unwrap();
    // Left free at the end: room for the checkpoints' tree pages, less than
    // half a leaf so that the last leaf keeps a page too.
    let margin = pages_per_leaf / 2;
    let count = pager.free_page_count() - margin;
    let ids = pager.alloc_bulk(count as usize).unwrap();
    const CHUNK: usize = 1 << 20;
    let mut to_free = Vec::with_capacity(CHUNK);
    let mut last_leaf = None;
    for id in ids {
        let leaf = id.0 / pages_per_leaf;
        if last_leaf != Some(leaf) {
            last_leaf = Some(leaf); // the first page of each leaf stays
            continue;
        }
        to_free.push(id);
        if to_free.len() == CHUNK {
            pager.free_bulk(std::mem::take(&mut to_free)).unwrap();
        }
    }
    pager.free_bulk(to_free).unwrap();
    pager.sync().unwrap();
    // Fill the log: an alloc after a free, or a free after an alloc, is one
    // more record (nothing to merge with), and leaves the state as it was.
    let empty = Image {
        page_size: N,
        len: 0,
        pages: BTreeMap::new(),
    };
    let capacity = (N - 132) / 24;
    let target = capacity - log_room;
    let logged = Image::read(path, N, &empty).newest_root().log_len;
    for _ in 0..target.saturating_sub(logged) / 2 {
        let id = pager.alloc().unwrap();
        pager.free(id).unwrap();
    }
    pager.sync().unwrap();
    let state = State::observe(&pager).unwrap();
    drop(pager);
    assert_eq!(state.regular.len() as u64, leaves);
    assert_eq!(state.protected.len() as u64, leaves);

    // The set-up's checkpoints left the pages they replaced full of old tree
    // nodes; every image would carry them. They are free: make them holes.
    let image = Image::read(path, N, &empty);
    let root = image.newest_root();
    assert!(
        root.bitmap.1 >= 2 && root.directory.1 >= 2,
        "deep file set up with tree heights {} and {}",
        root.bitmap.1,
        root.directory.1
    );
    assert!(root.log_len + log_room >= capacity - 1 && root.log_len < capacity);
    let live: BTreeSet<usize> = [0, 1, 2]
        .into_iter()
        .chain(image.tree_pages(root.bitmap))
        .chain(image.tree_pages(root.directory))
        .collect();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for &page in image.pages.keys().filter(|p| !live.contains(p)) {
        if !punch_hole(&file, page * N, N) {
            break; // the file system cannot: the images are only larger
        }
    }
    drop(file);
    // The protected pages in use were never written, so their copies
    // (punched or not) are not read; the reopened file must say the same.
    let reopened = State::observe(&Pager::<N>::open(path).unwrap()).unwrap();
    assert_eq!(reopened, state, "punching the free pages changed the file");
    state
}

/// Runs one workload and checks every crash image; adds to `tally`.
fn simulate<const N: usize>(config: &Config, tally: &mut Tally) {
    let dir = temp_dir();
    let path = dir.path().join("workload.bin");
    let scratch = dir.path().join("image.bin");
    let options = Pager::<N>::options().durability(config.durability);
    let (options, start) = match config.deep {
        _ if config.tail_at.is_some() => (
            options.preallocate(false).shrink_threshold(None),
            set_up_tail_at::<N>(&path, config.tail_at.unwrap_or_default()),
        ),
        Some(deep) => (
            options.preallocate(false),
            set_up_deep::<N>(&path, deep.leaves, 1 + config.seed as usize % 6),
        ),
        None => {
            let mut options = options
                .initial_pages(INITIAL_PAGES)
                .max_growth_step(GROWTH_STEP_PAGES * N as u64);
            if let Some(pages) = config.auto_shrink {
                options = options.shrink_threshold(Some(pages * N as u64));
            }
            drop(options.create(&path).unwrap());
            (options, State::default())
        }
    };

    let (recorder, zero, hook) = Recorder::new(&path, N, config.durability).hooked();
    {
        let mut r = recorder.lock().unwrap();
        r.active = true;
        r.call = 1;
    }
    // Call 1 is the open (it syncs once): its state is the created file's.
    let options = options.io_hook(hook);
    let pager = options.clone().open(&path).unwrap();
    let mut history = History::starting_from(start.clone(), N);
    history.push_same();
    recorder.lock().unwrap().call_done();
    let mut workload = Workload::sized(config.seed, N);
    if let Some((percent, big)) = config.txns {
        workload.txn_percent = percent;
        workload.big_txn_percent = big;
    }
    if config.deep.is_some() || config.tail_at.is_some() {
        workload.max_regular += start.regular.len();
        workload.max_protected += start.protected.len();
    }
    workload.shrink_percent = config.shrink_percent;
    // Snapshots held across calls, transactions that relocate their
    // highest pages, copies of the file and sub-pages: crash images taken
    // while pages are held for a snapshot, while relocated copies are in
    // flight, after copies were made, and while parent pages are written.
    workload.snapshot_percent = 4;
    workload.relocate_percent = 30;
    workload.copy_percent = 2;
    workload.sub_page_percent = 30;
    let mut driver = drive(&path, pager, options);
    let mut rng = Rng::new(config.seed ^ 0xC0FFEE);

    let mut checked_points = 0;
    let mut txn_commits = BTreeSet::new();
    for n in 0..config.calls {
        let call = history.last() + 1;
        let op = if n + 1 == config.calls {
            Op::Sync
        } else if n == 0 && config.tail_at.is_some() {
            Op::Shrink(false)
        } else {
            workload.next_op(history.states.last().unwrap(), call)
        };
        recorder.lock().unwrap().call = call;
        let (generation, pages_before) = (driver.pager().generation(), driver.pager().page_count());
        let outcome = driver
            .apply(&op)
            .unwrap_or_else(|e| panic!("call {call} {}: {e}", describe(&op)));
        history.push(driver.model.state(), &op, &outcome);
        tally.calls += 1;
        tally.snapshot_calls += u64::from(driver.held() > 0);
        tally.copies += u64::from(matches!(op, Op::Copy(_)));
        if outcome.committed {
            tally.relocations += outcome.moved.iter().filter(|m| m.1.is_some()).count() as u64;
        }
        let pager = driver.pager();
        let cut = std::mem::take(&mut recorder.lock().unwrap().cut);
        let shrink_call = ShrinkCall {
            before: generation,
            after: pager.generation(),
        };
        let shrinks = matches!(op, Op::Shrink(_)) || cut;
        if shrinks {
            let shrink = &mut tally.shrink;
            shrink.calls += u64::from(matches!(op, Op::Shrink(_)));
            shrink.cut_calls += u64::from(cut);
            shrink.pages_given_back += pages_before.saturating_sub(pager.page_count());
            let len = std::fs::metadata(&path).unwrap().len();
            let expected = pager.page_count() * N as u64;
            // Where a mapped file cannot be cut (Windows), a cut that a held
            // snapshot's view blocks waits for a sync after it is dropped:
            // the file is then longer than the root counts on, never shorter.
            let deferred_cut = cfg!(windows) && driver.held() > 0 && len > expected;
            if len != expected && !deferred_cut {
                tally.violation(format!(
                    "{:?} seed {} call {call} ({}): the file is {len} bytes after a shrink \
                     to {} pages",
                    config.durability,
                    config.seed,
                    describe(&op),
                    pager.page_count()
                ));
            }
        }
        if let Op::Txn(steps, end) = &op {
            if *end == End::Commit {
                txn_commits.insert(call);
                tally.txn_commits += 1;
                tally.big_txn_commits += u64::from(pages_written(steps) > root_capacity(N));
            } else {
                tally.txn_drops += 1;
            }
        }
        let (points, mut cache, torn, root_calls) = {
            let mut r = recorder.lock().unwrap();
            r.call_done();
            (
                std::mem::take(&mut r.points),
                std::mem::take(&mut r.cache_images),
                std::mem::take(&mut r.torn_root_images),
                r.root_calls.clone(),
            )
        };
        // The process-crash images taken before tree-page writes.
        let checkpoint_call = cache.iter().any(|c| !c.always);
        for point in &points {
            if let Some(deep) = config.deep {
                if point.tree_writes == 0 && !rng.chance(deep.limits.share) {
                    continue;
                }
            }
            tally.sync_points += 1;
            checked_points += 1;
            if point.current_len > point.durable.len {
                tally.grow_points += 1;
            }
            if point.tree_writes > 0 {
                tally.checkpoint_points += 1;
            }
            let limit = match config.deep {
                Some(deep) if point.tree_writes > 0 => Some(deep.limits.checkpoint_singles),
                Some(deep) => Some(deep.limits.singles),
                None => config.max_singles,
            };
            let singles = pick_singles(point, limit, &mut rng);
            // Transaction commits this point may lose: the one in flight, or
            // in Deferred mode any since the last sync.
            let pending: Vec<u64> = txn_commits
                .range(point.floor + 1..=point.call)
                .copied()
                .collect();
            if !pending.is_empty() {
                tally.txn_points += 1;
                tally.multi_txn_points += u64::from(pending.len() > 1);
                let check_pages = point
                    .versions
                    .values()
                    .any(|vs| vs.iter().any(|v| is_check_page(v)));
                tally.check_page_points += u64::from(check_pages);
            }
            let expect = Expect {
                history: &history,
                lo: point.floor,
                hi: point.call,
                durable_before: point.durable_before,
                root_calls: Some(&root_calls),
                deep: true,
            };
            let cut_pending = point.current_len < point.durable.len;
            let shrink_point = shrinks || cut_pending;
            if shrink_point {
                tally.shrink.points += 1;
                tally.shrink.cut_pending_points += u64::from(!shrinks);
            }
            let call_shrinking = shrinks.then_some(shrink_call);
            let short_len = point.current_len.min(point.durable.len);
            for image in power_images(point, &zero, &singles, &mut rng, config.random_images) {
                tally.power_images += 1;
                if shrink_point {
                    let short = image.len == short_len && image.len < point.durable.len;
                    let counted = opened_generation::<N>(&image, &scratch).and_then(|opened| {
                        tally
                            .shrink
                            .image(opened, short, call_shrinking, point.cut_root)
                    });
                    if let Err(e) = counted {
                        tally.violation(format!(
                            "{:?} {N}-byte pages seed {} sync point in call {} ({}), len {}: {e}",
                            config.durability,
                            config.seed,
                            point.call,
                            describe(&op),
                            image.len / N
                        ));
                    }
                }
                let what = format!(
                    "{:?} {N}-byte pages seed {} sync point in call {} ({}), {} pages changed \
                     ({} tree pages written), len {}",
                    config.durability,
                    config.seed,
                    point.call,
                    describe(&op),
                    point.versions.len(),
                    point.tree_writes,
                    image.len / N
                );
                let shown = check_image::<N>(&image, &scratch, &expect, &what, tally);
                if let (Some(shown), Some(&oldest), Some(&newest)) =
                    (shown, pending.first(), pending.last())
                {
                    tally.txn_images += 1;
                    match shown {
                        s if s < oldest => tally.txn_before += 1,
                        s if s >= newest => tally.txn_after += 1,
                        _ => tally.txn_between += 1,
                    }
                }
            }
        }
        if let Some(deep) = config.deep {
            let (always, mut sampled): (Vec<_>, Vec<_>) = cache.into_iter().partition(|c| c.always);
            cache = always;
            if checkpoint_call {
                for _ in 0..deep.limits.cache_samples.min(sampled.len()) {
                    cache.push(sampled.swap_remove(rng.index(sampled.len())));
                }
            } else {
                cache.retain(|_| rng.chance(deep.limits.share));
            }
        }
        let torn = if config.torn_roots { torn } else { Vec::new() };
        let kinds = [
            (&cache, "process crash in call", false),
            (&torn, "process killed mid root write in call", true),
        ];
        for (images, kind, torn_root) in kinds {
            for image in images {
                if torn_root {
                    tally.torn_root_images += 1;
                } else {
                    tally.cache_images += 1;
                }
                let expect = image.expect(&history);
                let what = format!(
                    "{:?} {N}-byte pages seed {} {kind} {call} ({})",
                    config.durability,
                    config.seed,
                    describe(&op)
                );
                check_image::<N>(&image.image, &scratch, &expect, &what, tally);
            }
        }
    }
    recorder.lock().unwrap().active = false;
    drop(driver);
    assert!(checked_points > 0);
    tally.workloads += 1;
}

fn report(name: &str, tally: &Tally, started: Instant) {
    println!(
        "{name}: {} workloads, {} calls, {} sync points ({} with a pending growth, {} with a \
         checkpoint in flight), {} power-loss images, {} process-crash images, {} torn-root \
         process-crash images checked in {:.1} s; {} violations",
        tally.workloads,
        tally.calls,
        tally.sync_points,
        tally.grow_points,
        tally.checkpoint_points,
        tally.power_images,
        tally.cache_images,
        tally.torn_root_images,
        started.elapsed().as_secs_f64(),
        tally.violations.len()
    );
    let group = &tally.group;
    if group.commits > 0 {
        println!(
            "{name}: group commit: {} commits, {} group syncs, {} commits made while one ran, \
             {} group syncs whose crash point took writes made while they ran; power-loss \
             images opened to the oldest commit they may show {} times, to a newer one {}",
            group.commits,
            group.group_syncs,
            group.commits_during_sync,
            group.windows_with_writes,
            group.at_floor,
            group.newer
        );
        report_violations(tally);
        return;
    }
    println!(
        "{name}: transactions: {} committed ({} writing more pages than a root checks), {} \
         dropped; {} sync points with a commit pending ({} with two or more, {} with check \
         pages written); their {} power-loss images opened to the state before it {} times, \
         after it {}, between two pending commits {}",
        tally.txn_commits,
        tally.big_txn_commits,
        tally.txn_drops,
        tally.txn_points,
        tally.multi_txn_points,
        tally.check_page_points,
        tally.txn_images,
        tally.txn_before,
        tally.txn_after,
        tally.txn_between
    );
    println!(
        "{name}: {} calls made while a snapshot was held, {} pages relocated by committed \
         transactions, {} copies made",
        tally.snapshot_calls, tally.relocations, tally.copies
    );
    let shrink = &tally.shrink;
    if shrink.points > 0 {
        let [before, between, after] = shrink.images;
        println!(
            "{name}: shrinks: {} calls, {} calls cut the file, {} pages given back; {} sync \
             points of calls that shrink or cut, {} sync points later with the cut not yet \
             durable; their power-loss images opened to the root before the call \
             {before:?}, between its commits {between:?}, its last root (or later) {after:?} \
             times, [at the old length, at the new]",
            shrink.calls,
            shrink.cut_calls,
            shrink.pages_given_back,
            shrink.points - shrink.cut_pending_points,
            shrink.cut_pending_points,
        );
    }
    report_violations(tally);
}

fn report_violations(tally: &Tally) {
    for v in tally.violations.iter().take(10) {
        println!("  violation: {v}");
    }
}

/// One test's configuration: `seeds` workloads of `calls` calls.
struct Run {
    name: &'static str,
    durability: Durability,
    seeds: u64,
    calls: u64,
    random_images: usize,
    max_singles: Option<usize>,
    /// The workload's share of transactions and of big ones (in percent),
    /// if not its default.
    txns: Option<(u64, u64)>,
    torn_roots: bool,
    deep: Option<Deep>,
    shrink_percent: u64,
    auto_shrink: Option<u64>,
    tail_at: Option<u64>,
}

impl Run {
    /// Small files (see `wine_calls` for `calls` under Wine).
    fn small(name: &'static str, durability: Durability, seeds: u64, calls: u64) -> Run {
        Run {
            name,
            durability,
            seeds,
            calls: wine_calls(calls),
            random_images: 12,
            max_singles: None,
            txns: None,
            torn_roots: false,
            deep: None,
            shrink_percent: 0,
            auto_shrink: None,
            tail_at: None,
        }
    }

    /// The file is set up with its free tail starting at `tail_start`
    /// (see [`set_up_tail_at`]), and its first call shrinks.
    fn tail_at(self, tail_start: u64) -> Run {
        Run {
            tail_at: Some(tail_start),
            ..self
        }
    }

    /// `percent` of the calls start a shrink; with `auto_shrink`, the
    /// pager also cuts by itself past a free tail of that many pages.
    fn shrinks(self, percent: u64, auto_shrink: Option<u64>) -> Run {
        Run {
            shrink_percent: percent,
            auto_shrink,
            ..self
        }
    }

    fn random_images(self, random_images: usize) -> Run {
        Run {
            random_images,
            ..self
        }
    }

    /// `percent` of the calls are transactions, `big` percent of those
    /// writing more pages than a root checks; at most `max_singles` pages of
    /// a sync point get their own images.
    fn transactions(self, percent: u64, big: u64, max_singles: usize) -> Run {
        Run {
            txns: Some((percent, big)),
            max_singles: Some(max_singles),
            ..self
        }
    }

    /// Runs every seed at `N`-byte pages and fails on any violation.
    fn go<const N: usize>(self) {
        let started = Instant::now();
        let mut tally = Tally::default();
        for seed in 0..self.seeds {
            let config = Config {
                durability: self.durability,
                seed: seed
                    + if self.durability == Durability::Deferred {
                        1000
                    } else {
                        0
                    },
                calls: self.calls,
                random_images: self.random_images,
                max_singles: self.max_singles,
                txns: self.txns,
                torn_roots: self.torn_roots,
                deep: self.deep,
                shrink_percent: self.shrink_percent,
                auto_shrink: self.auto_shrink,
                tail_at: self.tail_at,
            };
            simulate::<N>(&config, &mut tally);
        }
        report(self.name, &tally, started);
        if self.deep.is_some() {
            assert!(
                tally.checkpoint_points > 0,
                "{}: no checkpoint was in flight at any sync point",
                self.name
            );
        }
        assert!(
            tally.violations.is_empty(),
            "{}: crash images violate the contract",
            self.name
        );
    }
}

/// The shared state of a group-commit workload, taken under the writer's
/// lock (so in commit order): the model, and the seeded choices.
struct GroupWork {
    history: History,
    rng: Rng,
}

/// Regular pages the group workload keeps at most: it frees what is past.
const GROUP_MAX_REGULAR: usize = 48;

/// One commit of the group workload, made in `write_and_sync`'s closure:
/// a transaction that allocates fresh pages and fills each with a byte
/// (now and then more pages than a root checks, so that check pages are
/// written while a sync runs), frees older pages (which no commit may reuse
/// before a root that no longer uses them is durable), and now and then
/// allocates, writes or frees a protected page. Returns the commit's index
/// in the history.
fn group_commit<const N: usize>(
    pager: &mut Pager<N>,
    work: &Mutex<GroupWork>,
    recorder: &Mutex<Recorder>,
) -> mappedpages::Result<u64> {
    recorder.lock().unwrap().commit_begins();
    let mut work = work.lock().unwrap();
    let GroupWork { history, rng } = &mut *work;
    let before = history.states.last().unwrap().clone();
    let mut txn = pager.transaction()?;
    let count = if rng.chance(6) {
        root_capacity(N) + 4
    } else {
        1 + rng.index(3)
    };
    let mut fills = Vec::new();
    for _ in 0..count {
        let id = txn.alloc()?;
        let value = 1 + rng.below(255) as u8;
        txn.get_mut(id)?.as_bytes_mut().fill(value);
        fills.push((id.0, value));
    }
    let mut older: Vec<u64> = before.regular.iter().copied().collect();
    let excess = (older.len() + count).saturating_sub(GROUP_MAX_REGULAR);
    let frees = excess.max(usize::from(rng.chance(50))).min(older.len());
    for _ in 0..frees {
        let page = older.swap_remove(rng.index(older.len()));
        txn.free(PageId(page))?;
    }
    if rng.chance(25) {
        let slots: Vec<u64> = before.protected.keys().copied().collect();
        let value = 1 + rng.below(255) as u8;
        if slots.len() < 3 || rng.chance(20) {
            let id = txn.alloc_protected()?;
            txn.write_protected(id)?.as_bytes_mut().fill(value);
        } else {
            let id = ProtectedPageId(slots[rng.index(slots.len())]);
            if rng.chance(20) {
                txn.free_protected(id)?;
            } else {
                txn.write_protected(id)?.as_bytes_mut().fill(value);
            }
        }
    }
    recorder
        .lock()
        .unwrap()
        .commit_writes(fills.iter().map(|&(page, _)| page as usize));
    txn.commit()?;
    let state = State::observe(pager).unwrap_or_else(|e| panic!("after a commit: {e}"));
    history.push_commit(state, &fills);
    recorder.lock().unwrap().commit_ends(pager.generation());
    Ok(history.last())
}

/// Runs one group-commit workload (`threads` threads making `commits`
/// commits each through `ConcurrentPager::write_and_sync`) and checks every
/// crash image; adds to `tally`.
fn simulate_group<const N: usize>(run: &GroupRun, seed: u64, tally: &mut Tally) {
    let durability = run.durability;
    // The workload's file is on the system's temporary directory (a disk,
    // where a sync takes long enough for other threads to commit while it
    // runs), the images in memory where the system can.
    let dir = tempfile::tempdir().unwrap();
    let images_dir = temp_dir();
    let path = dir.path().join("group.bin");
    let scratch = images_dir.path().join("image.bin");
    let options = options_sized::<N>(durability);
    drop(options.clone().create(&path).unwrap());

    let mut recorder = Recorder::new(&path, N, durability);
    recorder.group = Some(GroupRecorder::new(
        recorder.durable.newest_root().generation,
    ));
    recorder.active = true;
    let (recorder, zero, hook) = recorder.hooked();
    // Open writes and syncs nothing; the first commit syncs the root it found.
    let shared = ConcurrentPager::new(options.io_hook(hook).open(&path).unwrap()).unwrap();
    let work = Arc::new(Mutex::new(GroupWork {
        history: History::starting_from(State::default(), N),
        rng: Rng::new(seed),
    }));
    let threads: Vec<_> = (0..run.threads)
        .map(|_| {
            let (shared, work, recorder) =
                (shared.clone(), Arc::clone(&work), Arc::clone(&recorder));
            let commits = run.commits;
            std::thread::spawn(move || {
                for _ in 0..commits {
                    let commit = shared
                        .write_and_sync(|pager| group_commit(pager, &work, &recorder))
                        .unwrap_or_else(|e| panic!("{durability:?} seed {seed}: {e}"));
                    recorder.lock().unwrap().returned(commit);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let (points, cache) = {
        let mut r = recorder.lock().unwrap();
        r.finish();
        r.active = false;
        let group = r.group.as_ref().unwrap();
        let figures = &mut tally.group;
        figures.commits += group.commits();
        figures.group_syncs += group.group_syncs;
        figures.commits_during_sync += group.commits_during_sync;
        figures.windows_with_writes += group.windows_with_writes;
        (
            std::mem::take(&mut r.points),
            std::mem::take(&mut r.cache_images),
        )
    };
    drop(shared.into_inner().unwrap());
    let work = work.lock().unwrap();
    let history = &work.history;
    tally.calls += history.last();

    let mut rng = Rng::new(seed ^ 0x6A09_E667);
    for point in &points {
        tally.sync_points += 1;
        tally.grow_points += u64::from(point.current_len > point.durable.len);
        tally.checkpoint_points += u64::from(point.tree_writes > 0);
        let singles = pick_singles(point, Some(run.max_singles), &mut rng);
        let expect = Expect {
            history,
            lo: point.floor,
            hi: point.call,
            durable_before: point.durable_before,
            root_calls: None,
            deep: true,
        };
        for image in power_images(point, &zero, &singles, &mut rng, run.random_images) {
            tally.power_images += 1;
            let what = format!(
                "{durability:?} {N}-byte pages seed {seed} power loss at a sync point \
                 (commits {}..={} may show: {} is durable or its call returned), {} pages \
                 changed, len {}",
                point.floor,
                point.call,
                point.floor,
                point.versions.len(),
                image.len / N
            );
            match check_image::<N>(&image, &scratch, &expect, &what, tally) {
                Some(shown) if shown == point.floor => tally.group.at_floor += 1,
                Some(_) => tally.group.newer += 1,
                None => {}
            }
        }
    }
    for image in &cache {
        tally.cache_images += 1;
        let expect = image.expect(history);
        let what = format!(
            "{durability:?} {N}-byte pages seed {seed} process crash in commit {} \
             (commits {}..={} may show)",
            image.hi, image.lo, image.hi
        );
        check_image::<N>(&image.image, &scratch, &expect, &what, tally);
    }
    tally.workloads += 1;
}

/// A group-commit test's configuration: `seeds` workloads of `threads`
/// threads making `commits` commits each.
struct GroupRun {
    name: &'static str,
    durability: Durability,
    seeds: u64,
    threads: usize,
    commits: u64,
    random_images: usize,
    max_singles: usize,
}

impl GroupRun {
    /// Runs every seed at `N`-byte pages and fails on any violation, or if
    /// no commit was made while a group sync ran.
    fn go<const N: usize>(self) {
        let started = Instant::now();
        let mut tally = Tally::default();
        let offset = if self.durability == Durability::Deferred {
            1000
        } else {
            0
        };
        for seed in 0..self.seeds {
            simulate_group::<N>(&self, seed + offset, &mut tally);
        }
        report(self.name, &tally, started);
        assert!(
            tally.violations.is_empty(),
            "{}: crash images violate the contract",
            self.name
        );
        assert!(
            tally.group.windows_with_writes > 0,
            "{}: no commit was made while a group sync ran",
            self.name
        );
    }
}

/// Shrinks whose new end sits at, just before and just after the end of the
/// first bitmap leaf, where the shrink's checkpoint needs one more tree page
/// than below it: every crash image opens, to a root no older than the one
/// durable before the cut, in a file no shorter than that root counts on.
#[test]
fn crash_images_shrink_at_a_bitmap_leaf_boundary() {
    if cfg!(mappedpages_wine) {
        // Its images are 8 MiB files, which Wine reads and writes whole.
        eprintln!("skipped under Wine: 8 MiB crash images; the native run covers it");
        return;
    }
    let leaf_end = 8 * PS as u64;
    for durability in [Durability::Immediate, Durability::Deferred] {
        for tail_start in [leaf_end - 1, leaf_end, leaf_end + 1] {
            let name = if durability == Durability::Immediate {
                "shrink at a leaf boundary, immediate"
            } else {
                "shrink at a leaf boundary, deferred"
            };
            Run::small(name, durability, 1, 16)
                .shrinks(20, None)
                .tail_at(tail_start)
                .go::<PS>();
        }
    }
}

/// Calls of a small-file workload (and commits per thread of a group-commit
/// one): `n`, and half as many under Wine, where every image opens through
/// the Windows layer and is read whole. Half a workload still grows its
/// file many times, commits transactions, shrinks it and runs group syncs
/// through the Windows code; the images' checks are the same on every
/// platform, and the native run makes every call.
fn wine_calls(n: u64) -> u64 {
    if cfg!(mappedpages_wine) {
        n / 2
    } else {
        n
    }
}

/// Seeds of a default run: `n`, times `MAPPEDPAGES_SOAK`. Under Wine (the
/// Windows suite on Linux CI), where every image opens through the Windows
/// layer and is read whole (no `SEEK_DATA`), a quarter of them (at least
/// one), so that the Windows run stays within CI's time.
fn seeds(n: u64) -> u64 {
    let n = n * soak_factor();
    if cfg!(mappedpages_wine) {
        n.div_ceil(4)
    } else {
        n
    }
}

#[test]
fn crash_images_immediate() {
    Run::small("immediate", Durability::Immediate, seeds(depth(2, 12)), 250).go::<PS>();
}

/// Group commit (`ConcurrentPager::write_and_sync`): threads commit while
/// group syncs run. At every sync point, and while each group sync runs,
/// every power-loss image and every page-cache image opens to a prefix of
/// the commits in the order they were made, holding every commit whose call
/// had returned.
#[test]
fn crash_images_group_commit() {
    for (name, durability) in [
        ("group commit immediate", Durability::Immediate),
        ("group commit deferred", Durability::Deferred),
    ] {
        GroupRun {
            name,
            durability,
            seeds: seeds(depth(1, 4)),
            threads: 4,
            commits: wine_calls(depth(12, 20)),
            random_images: 12,
            max_singles: 24,
        }
        .go::<PS>();
    }
}

#[test]
fn crash_images_deferred() {
    Run::small("deferred", Durability::Deferred, seeds(depth(2, 12)), 250)
        .random_images(16)
        .go::<PS>();
}

/// Shrinks (contract C2), most after frees of the highest pages: every sync
/// point of a shrink, and the later ones until the cut length is durable,
/// at the old file length and the new.
#[test]
fn crash_images_shrink_immediate() {
    Run::small(
        "shrink immediate",
        Durability::Immediate,
        seeds(depth(1, 3)),
        200,
    )
    .shrinks(6, None)
    .go::<PS>();
}

/// In Deferred mode a shrink first syncs the commits since the last sync.
#[test]
fn crash_images_shrink_deferred() {
    Run::small(
        "shrink deferred",
        Durability::Deferred,
        seeds(depth(1, 3)),
        200,
    )
    .random_images(16)
    .shrinks(6, None)
    .go::<PS>();
}

/// Shrinks among transactions at 4 KiB pages, some writing check pages:
/// in Deferred mode several unsynced commits come before a shrink.
#[test]
fn crash_images_shrink_transactions_4k() {
    for (name, durability) in [
        ("shrink transactions 4 KiB immediate", Durability::Immediate),
        ("shrink transactions 4 KiB deferred", Durability::Deferred),
    ] {
        Run::small(name, durability, seeds(1), depth(35, 70))
            .transactions(25, 35, 32)
            .shrinks(8, None)
            .go::<4096>();
    }
}

/// The cut a commit makes by itself past a small threshold: in Immediate
/// mode after the commit, in Deferred mode at `sync`.
#[test]
fn crash_images_auto_shrink() {
    for (name, durability) in [
        ("auto-shrink immediate", Durability::Immediate),
        ("auto-shrink deferred", Durability::Deferred),
    ] {
        Run::small(name, durability, seeds(depth(1, 2)), 200)
            .shrinks(4, Some(8))
            .go::<PS>();
    }
}

/// Small files of 4 KiB pages where a quarter of the calls are
/// transactions, a third of those writing more pages than a root checks
/// (165): their checks go to chains of check pages.
#[test]
fn crash_images_transactions_4k_immediate() {
    Run::small(
        "transactions 4 KiB immediate",
        Durability::Immediate,
        seeds(depth(1, 3)),
        80,
    )
    .transactions(25, 35, 32)
    .go::<4096>();
}

#[test]
fn crash_images_transactions_4k_deferred() {
    Run::small(
        "transactions 4 KiB deferred",
        Durability::Deferred,
        seeds(depth(1, 3)),
        80,
    )
    .transactions(25, 35, 32)
    .go::<4096>();
}

/// A run over a file whose trees both have `leaves` leaves: two levels of
/// interior nodes once that is more than one node's fan-out.
fn deep(
    name: &'static str,
    durability: Durability,
    seeds: u64,
    calls: u64,
    leaves: u64,
    limits: DeepLimits,
) -> Run {
    Run {
        name,
        durability,
        seeds,
        calls,
        random_images: 6,
        max_singles: None,
        txns: None,
        torn_roots: false,
        deep: Some(Deep { leaves, limits }),
        shrink_percent: 0,
        auto_shrink: None,
        tail_at: None,
    }
}

/// Deep trees at 1 KiB pages: 130 leaves each (an interior node holds 64
/// references), so a file of 1 GiB and three nodes on the middle level.
fn deep_1k(name: &'static str, durability: Durability, seeds: u64, calls: u64) -> Run {
    let limits = DeepLimits {
        share: 30,
        singles: 3,
        checkpoint_singles: 24,
        cache_samples: 6,
    };
    deep(name, durability, seeds, calls, 130, limits)
}

/// Deep trees at 4 KiB pages: 260 leaves each (an interior node holds 256
/// references), a sparse file of 34 GiB.
fn deep_4k(name: &'static str, durability: Durability, seeds: u64, calls: u64) -> Run {
    let limits = DeepLimits {
        share: 20,
        singles: 2,
        checkpoint_singles: 16,
        cache_samples: 6,
    };
    deep(name, durability, seeds, calls, 260, limits)
}

#[test]
fn crash_images_deep_trees_1k_immediate() {
    deep_1k(
        "deep 1 KiB immediate",
        Durability::Immediate,
        seeds(depth(1, 6)),
        depth(50, 100),
    )
    .go::<1024>();
}

#[test]
fn crash_images_deep_trees_1k_deferred() {
    deep_1k(
        "deep 1 KiB deferred",
        Durability::Deferred,
        seeds(depth(1, 6)),
        depth(50, 100),
    )
    .go::<1024>();
}

#[test]
fn crash_images_deep_trees_4k_immediate() {
    deep_4k(
        "deep 4 KiB immediate",
        Durability::Immediate,
        seeds(depth(1, 8)),
        depth(40, 60),
    )
    .go::<4096>();
}

#[test]
fn crash_images_deep_trees_4k_deferred() {
    deep_4k(
        "deep 4 KiB deferred",
        Durability::Deferred,
        seeds(depth(1, 8)),
        60,
    )
    .go::<4096>();
}

/// A metadata root torn in the page cache (a write cut short). Immediate mode alternates root
/// slots, so the other slot holds the previous commit.
#[test]
fn process_killed_mid_root_write_immediate() {
    Run {
        random_images: 0,
        torn_roots: true,
        ..Run::small("torn root immediate", Durability::Immediate, seeds(2), 150)
    }
    .go::<PS>();
}

// No Deferred twin of the test above: in Deferred mode every root since the
// last sync goes to the same slot, so a torn root would lose the commits
// since that sync. The pager writes roots with `pwrite`, which the kernel
// finishes once started even if the process is killed, so a kill cannot
// tear a root of at most one OS page; a torn root is a power-loss image,
// where Deferred may lose the commits since the last sync
// (`crash_images_deferred` checks those). Real kills of a Deferred writer
// are in `crash_killed_process.rs`.

/// The long soak: `MAPPEDPAGES_SOAK=<n>` runs `4 n` seeds of 300 calls per
/// durability mode on small files (so `MAPPEDPAGES_SOAK=10` runs 40), and
/// `2 n` seeds of each deep-tree and 4 KiB transaction configuration with
/// twice the default calls; unset, `n` is 1.
#[test]
#[ignore = "soak: long; run with --ignored"]
fn crash_images_soak() {
    let soak = soak_factor();
    Run::small("soak immediate", Durability::Immediate, 4 * soak, 300)
        .random_images(24)
        .go::<PS>();
    Run::small("soak deferred", Durability::Deferred, 4 * soak, 300)
        .random_images(32)
        .go::<PS>();
    let (immediate, deferred) = (Durability::Immediate, Durability::Deferred);
    deep_1k("soak deep 1 KiB immediate", immediate, 2 * soak, 200).go::<1024>();
    deep_1k("soak deep 1 KiB deferred", deferred, 2 * soak, 200).go::<1024>();
    deep_4k("soak deep 4 KiB immediate", immediate, 2 * soak, 120).go::<4096>();
    deep_4k("soak deep 4 KiB deferred", deferred, 2 * soak, 120).go::<4096>();
    Run::small("soak shrink immediate", immediate, 2 * soak, 300)
        .shrinks(6, Some(8))
        .go::<PS>();
    Run::small("soak shrink deferred", deferred, 2 * soak, 300)
        .shrinks(6, Some(8))
        .go::<PS>();
    for (name, durability) in [
        ("soak transactions 4 KiB immediate", immediate),
        ("soak transactions 4 KiB deferred", deferred),
    ] {
        Run::small(name, durability, 2 * soak, 160)
            .transactions(25, 35, 48)
            .go::<4096>();
    }
}

/// A hook that keeps the file as of the last sync (what the disk holds once
/// it returns), and fails every sync while `fail` is set (a crash before it).
fn durable_image_hook(fail: Arc<Mutex<bool>>) -> (IoHook, Arc<Mutex<Vec<u8>>>) {
    let durable = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&durable);
    let hook = IoHook::new(move |event| {
        if let IoEvent::Sync { file } = event {
            if *fail.lock().unwrap() {
                return Err(std::io::Error::other("crash before this sync"));
            }
            *sink.lock().unwrap() = file.to_vec();
        }
        Ok(())
    });
    (hook, durable)
}

/// Regression found by the simulator (fixed since): in Deferred mode a protected commit
/// syncs before writing its root and that sync clears the set of slots
/// "flipped since the durable root", so the slot it flips is forgotten. The
/// next write to that slot stages into the copy that the durable root still
/// names as committed, without syncing first. A power loss then reopens the
/// durable root with uncommitted bytes in its committed copy (D2).
#[test]
fn deferred_second_write_keeps_durable_copy() {
    let dir = temp_dir();
    let path = dir.path().join("f.bin");
    drop(options(Durability::Deferred).create(&path).unwrap());
    let (hook, durable) = durable_image_hook(Arc::default());
    let mut pager = options(Durability::Deferred)
        .io_hook(hook)
        .open(&path)
        .unwrap();
    let id = pager.alloc_protected().unwrap();
    let mut writer = id.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut().fill(b'A');
    writer.commit().unwrap();
    pager.sync().unwrap();
    // Commit B: syncs (A's root becomes durable), then writes B's root unsynced.
    let mut writer = id.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut().fill(b'B');
    writer.commit().unwrap();
    // A write that is never committed: it must not touch A's copy.
    {
        let mut writer = id.get_mut(&mut pager).unwrap();
        writer.page_mut().as_bytes_mut().fill(b'C');
    } // dropped, never committed
      // Power loss: the durable image, plus every page written since (the root
      // of B may or may not have landed; here it did not).
    let durable = durable.lock().unwrap().clone();
    let cache = std::fs::read(&path).unwrap();
    drop(pager);
    let mut image = durable.clone();
    for page in 3..durable.len() / PS {
        image[page * PS..(page + 1) * PS].copy_from_slice(&cache[page * PS..(page + 1) * PS]);
    }
    let scratch = dir.path().join("image.bin");
    std::fs::write(&scratch, &image).unwrap();
    let pager = P::open(&scratch).unwrap();
    let bytes = id.get(&pager).unwrap().as_bytes();
    assert!(
        bytes.iter().all(|&b| b == b'A') || bytes.iter().all(|&b| b == b'B'),
        "protected page reads {:?}..., neither committed A nor B",
        &bytes[..4]
    );
}

/// Open makes no sync, so after a process crash the root it takes may live
/// only in the page cache, and the older root in the other slot is the only
/// durable one until the first write syncs (`Core::settle_open`). Here the
/// crash comes between a protected commit's root write and its sync, so the
/// root open takes names copy 1 of the page as committed while the durable
/// root still names copy 0; a staged write after the reopen goes to copy 0.
/// Were it written before that sync, a power loss would leave the durable
/// root naming a copy full of uncommitted bytes (D2). Every power-loss image
/// of the second session must read the page as one of its commits.
#[test]
fn first_write_after_open_cannot_overwrite_what_the_durable_root_uses() {
    let dir = temp_dir();
    let path = dir.path().join("first.bin");
    drop(options(Durability::Immediate).create(&path).unwrap());
    // Session 1: commit A (durable), then B, whose sync "crashes".
    let fail_next_sync = Arc::new(Mutex::new(false));
    let (hook, durable) = durable_image_hook(Arc::clone(&fail_next_sync));
    let mut pager = options(Durability::Immediate)
        .io_hook(hook)
        .open(&path)
        .unwrap();
    let id = pager.alloc_protected().unwrap();
    let mut writer = id.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut().fill(b'A');
    writer.commit().unwrap();
    let generation_a = pager.generation();
    *fail_next_sync.lock().unwrap() = true;
    let mut writer = id.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut().fill(b'B');
    assert!(writer.commit().is_err());
    // The page cache (what the killed process leaves) and the disk.
    let cache = std::fs::read(&path).unwrap();
    let disk = durable.lock().unwrap().clone();
    drop(pager);
    assert_ne!(cache, disk, "commit B left nothing unsynced");

    // Session 2 on the page cache image, recording every version of every
    // page before each write and sync.
    let second = dir.path().join("second.bin");
    std::fs::write(&second, &cache).unwrap();
    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let (sink, watched) = (Arc::clone(&seen), second.clone());
    let synced = Arc::new(Mutex::new(false));
    let synced_hook = Arc::clone(&synced);
    let hook = IoHook::new(move |event| {
        // Until the first sync returns, the disk is still `disk` plus
        // any subset of what was written since.
        if !*synced_hook.lock().unwrap() {
            sink.lock().unwrap().push(std::fs::read(&watched).unwrap());
        }
        if let IoEvent::Sync { .. } = event {
            *synced_hook.lock().unwrap() = true;
        }
        Ok(())
    });
    let mut pager = options(Durability::Immediate)
        .io_hook(hook)
        .open(&second)
        .unwrap();
    assert!(id
        .get(&pager)
        .unwrap()
        .as_bytes()
        .iter()
        .all(|&b| b == b'B'));
    let mut writer = id.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut().fill(b'C');
    writer.commit().unwrap();
    let generation_c = pager.generation();
    drop(pager);
    // What each commit's root must show.
    let expected = |generation: u64| match generation {
        g if g == generation_a => Some(b'A'),
        g if g == generation_a + 1 => Some(b'B'),
        g if g == generation_c => Some(b'C'),
        _ => None,
    };

    let images = std::mem::take(&mut *seen.lock().unwrap());
    assert!(!images.is_empty(), "no write or sync was seen");
    let scratch = dir.path().join("image.bin");
    let mut checked = 0;
    for cache_now in &images {
        // The worst power loss: every page session 2 changed reached the
        // disk, none of those only session 1's page cache held.
        let mut image = disk.clone();
        image.resize(cache_now.len(), 0);
        for (page, bytes) in cache_now.chunks(PS).enumerate() {
            if cache.get(page * PS..(page + 1) * PS) != Some(bytes) {
                image[page * PS..(page + 1) * PS].copy_from_slice(bytes);
            }
        }
        let _ = std::fs::remove_file(&scratch);
        std::fs::write(&scratch, &image).unwrap();
        let pager = P::open(&scratch).unwrap();
        let generation = pager.recovery().generation;
        let want = expected(generation)
            .unwrap_or_else(|| panic!("opened generation {generation}, no commit of the test"));
        let bytes = id.get(&pager).unwrap().as_bytes();
        assert!(
            bytes.iter().all(|&b| b == want),
            "a power loss after the reopen opens generation {generation}, whose commit wrote \
             {:?}, but the page reads {:?}...",
            want as char,
            &bytes[..8]
        );
        checked += 1;
    }
    assert!(checked > 0);
}

//! Opening a file: pick the newest metadata root whose every check holds,
//! load the state it describes, and say what was found (contract D5, D6).

use crate::engine::bitmap::BitVec;
use crate::engine::freemap::FreeMap;
use crate::engine::page_tree::{LoadFault, PageTree};
use crate::error::{MappedPageError, Result};
use crate::format::check_page;
use crate::format::record::{DirEntry, PageCheck, Record, DIR_ENTRY_LEN};
use crate::format::root::{Root, RootError, FLAG_SYNCED};
use crate::format::{checksum, superblock, FIRST_DATA_PAGE, FORMAT_VERSION, ROOT_PAGES};

/// What `open` found and did: which commit it opened, and whether it had to
/// fall back from a damaged or torn newer one.
///
/// # Examples
/// ```
/// # let dir = tempfile::tempdir()?;
/// # let path = dir.path().join("data.pages");
/// use mappedpages::Pager;
/// let mut pager = Pager::<4096>::create(&path)?;
/// pager.alloc()?;
/// drop(pager);
/// let report = Pager::<4096>::open(&path)?.recovery().clone();
/// assert_eq!(report.generation, 2);
/// assert!(report.last_commit_synced && !report.fell_back);
/// assert_eq!(report.other_copy_problem, None);
/// # Ok::<(), mappedpages::MappedPageError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Generation of the metadata root that was opened (one per commit).
    pub generation: u64,
    /// Which metadata copy was opened: 0 for copy A (page 1), 1 for B (page 2).
    pub root_copy: u8,
    /// Whether the commit that wrote the opened root was synced before it
    /// returned ([`Durability::Immediate`](crate::Durability::Immediate)).
    pub last_commit_synced: bool,
    /// True when the other copy was damaged or was newer but failed its
    /// checks: the file was opened at an older commit than it last tried to
    /// write (the commit in flight at a crash, or corruption).
    pub fell_back: bool,
    /// Why the other copy was not used, when it was damaged or rejected.
    pub other_copy_problem: Option<String>,
}

/// Why a root that passed its own checksum could not be used.
enum LoadError {
    Damaged(String),
    Truncated {
        expected: u64,
        actual: u64,
    },
    /// Well formed, but its state does not fit in memory: an error of its
    /// own, since falling back to an older root would hide newer commits.
    NoMemory,
}

impl From<&'static str> for LoadError {
    fn from(reason: &'static str) -> Self {
        LoadError::Damaged(reason.to_string())
    }
}

impl From<LoadFault> for LoadError {
    fn from(fault: LoadFault) -> Self {
        match fault {
            LoadFault::Damaged(reason) => reason.into(),
            LoadFault::NoMemory => LoadError::NoMemory,
        }
    }
}

/// Makes `directory` at least `len` entries long, the new ones free.
fn extend_directory(directory: &mut Vec<DirEntry>, len: u64) -> Result<(), LoadFault> {
    let len = usize::try_from(len).map_err(|_| LoadFault::NoMemory)?;
    if let Some(more) = len.checked_sub(directory.len()).filter(|&n| n > 0) {
        directory
            .try_reserve(more)
            .map_err(|_| LoadFault::NoMemory)?;
        directory.resize(len, DirEntry::FREE);
    }
    Ok(())
}

/// The state a valid root describes, loaded and checked.
pub(crate) struct Loaded {
    pub(super) map: FreeMap,
    pub(super) bitmap_tree: PageTree,
    pub(super) dir_tree: PageTree,
    /// The root's check pages (see `format::check_page`).
    pub(super) check_pages: Vec<u64>,
    /// The pages the root's checks name, ascending.
    pub(super) checked: Vec<u64>,
}

/// Loads and checks everything `root` references, in a file of `file_len`
/// bytes whose page `n` `page(n)` returns (`None` if it cannot be read).
///
/// Memory sized from the root's counts is bounded before it is taken:
/// `total_pages` by the file's length (one bit per page, P5), the directory
/// by the slots that verified pages or the log show in use (a root may claim
/// up to `total_pages` slots it never used), the log by the root page.
/// What remains is allocated fallibly, so a file whose metadata does not fit
/// in memory is an error, not an abort.
fn load<'a>(
    file_len: u64,
    page_size: usize,
    root: &Root,
    page: &impl Fn(u64) -> Option<&'a [u8]>,
) -> Result<Loaded, LoadError> {
    let ps = page_size as u64;
    let total = root.total_pages;
    let expected = total.checked_mul(ps).ok_or("page count overflows")?;
    if file_len < expected {
        return Err(LoadError::Truncated {
            expected,
            actual: file_len,
        });
    }
    // A slot in use holds at least one page (a sub-page parent; a
    // protected page holds two).
    if root.dir_len > total {
        return Err("directory longer than the file can back".into());
    }
    let read = |n: u64| {
        if (FIRST_DATA_PAGE..total).contains(&n) {
            page(n)
        } else {
            None
        }
    };
    let mut internal = Vec::new();

    let bits_per_leaf = ps * 8;
    let mut regular = BitVec::try_new(total).ok_or(LoadError::NoMemory)?;
    let words_per_leaf = page_size / 8;
    let bitmap_leaves = total.div_ceil(bits_per_leaf);
    let mut bitmap_tree = PageTree::load(
        page_size,
        root.bitmap,
        bitmap_leaves,
        read,
        |leaf, leaf_bytes| {
            let first_word = leaf as usize * words_per_leaf;
            let words = regular.words_mut();
            for (i, chunk) in leaf_bytes.chunks_exact(8).enumerate() {
                let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
                match words.get_mut(first_word + i) {
                    Some(slot) => *slot = word,
                    None if word == 0 => {}
                    None => return Err("bitmap marks pages past the end".into()),
                }
            }
            Ok(())
        },
        |page| {
            internal.push(page);
            Ok(())
        },
    )?;
    if !total.is_multiple_of(64) {
        let last = regular.words().last().copied().unwrap_or_default();
        if last >> (total % 64) != 0 {
            return Err("bitmap marks pages past the end".into());
        }
    }

    let per_leaf = (page_size / DIR_ENTRY_LEN) as u64;
    let dir_len = root.dir_len;
    // Grown only to the last slot in use: free slots past it are implied.
    let mut directory: Vec<DirEntry> = Vec::new();
    let dir_tree = PageTree::load(
        page_size,
        root.directory,
        dir_len.div_ceil(per_leaf),
        read,
        |leaf, leaf_bytes| {
            for (i, chunk) in leaf_bytes.chunks_exact(DIR_ENTRY_LEN).enumerate() {
                let entry = DirEntry::decode(chunk).ok_or("malformed directory entry")?;
                if !entry.in_use() {
                    continue;
                }
                let slot = leaf * per_leaf + i as u64;
                if slot >= dir_len {
                    return Err("directory entry past its length".into());
                }
                extend_directory(&mut directory, slot + 1)?;
                if let Some(target) = directory.get_mut(slot as usize) {
                    *target = entry;
                }
            }
            Ok(())
        },
        |page| {
            internal.push(page);
            Ok(())
        },
    )?;
    let mut dir_tree = dir_tree;

    for record in &root.log {
        match *record {
            Record::Alloc { start, count } | Record::Free { start, count } => {
                let allocate = matches!(record, Record::Alloc { .. });
                let end = start.checked_add(count).ok_or("log range overflows")?;
                if start < FIRST_DATA_PAGE || end > total {
                    return Err("log range out of bounds".into());
                }
                if !regular.range_is(start, end, !allocate) {
                    return Err("log record contradicts the bitmap".into());
                }
                regular.set_range(start, end, allocate);
                bitmap_tree.mark_dirty_range(start / bits_per_leaf, (end - 1) / bits_per_leaf);
            }
            Record::Entry { slot, entry } => {
                if slot >= dir_len {
                    return Err("log names a directory slot past the end".into());
                }
                if entry.in_use() {
                    extend_directory(&mut directory, slot + 1)?;
                }
                if let Some(target) = directory.get_mut(slot as usize) {
                    *target = entry;
                }
                dir_tree.mark_dirty(slot / per_leaf);
            }
        }
    }
    let verify = |check: &PageCheck| -> Result<u64, LoadError> {
        let bytes = read(check.page).ok_or("a page check names a page out of range")?;
        if checksum(bytes) != check.crc {
            return Err("a page the last commit wrote did not reach the disk".into());
        }
        Ok(check.page)
    };
    let mut checked = root
        .checks
        .iter()
        .map(verify)
        .collect::<Result<Vec<_>, _>>()?;
    let check_pages = load_check_pages(root, read, |check| {
        checked.push(verify(check)?);
        Ok(())
    })?;
    internal.extend_from_slice(&check_pages);
    let map = FreeMap::from_parts(regular, directory, dir_len, internal)?;
    if map.regular_count() != root.regular_count {
        return Err("allocated page count does not match the bitmap".into());
    }
    checked.sort_unstable();
    Ok(Loaded {
        map,
        bitmap_tree,
        dir_tree,
        check_pages,
        checked,
    })
}

/// Walks the chain of check pages of `root` (none before format 3), hands
/// each check to `each`, and returns the pages the chain takes. Each page
/// must match the CRC its referrer holds, and the chain must hold exactly
/// the number of checks the root says; a page seen twice is damage, so a
/// crafted cycle ends at its first repeat.
fn load_check_pages<'a>(
    root: &Root,
    read: impl Fn(u64) -> Option<&'a [u8]>,
    mut each: impl FnMut(&PageCheck) -> Result<(), LoadError>,
) -> Result<Vec<u64>, LoadError> {
    let mut pages: Vec<u64> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut remaining = root.check_pages_len;
    let mut next = root.check_pages;
    while !next.is_null() {
        if !seen.insert(next.page) {
            return Err("the check pages form a cycle".into());
        }
        let bytes = read(next.page).ok_or("a check page is out of range")?;
        if !next.matches(bytes) {
            return Err("a check page the last commit wrote did not reach the disk".into());
        }
        let (checks, after) = check_page::decode(bytes)?;
        remaining = remaining
            .checked_sub(checks.len() as u64)
            .ok_or("the check pages hold more checks than the root says")?;
        checks.iter().try_for_each(&mut each)?;
        pages.try_reserve(1).map_err(|_| LoadError::NoMemory)?;
        pages.push(next.page);
        next = after;
    }
    if remaining != 0 {
        return Err("the check pages hold fewer checks than the root says".into());
    }
    Ok(pages)
}

/// Why `choose_root` found no root to open. The reason for a file with no
/// valid root is kept here in full for the inspector; `open` reports it as
/// the unit variant [`MappedPageError::CorruptMetadata`], whose shape 0.2
/// programs match on.
#[derive(Debug)]
pub(crate) enum ChooseError {
    /// Neither copy passed its checks: what failed in each.
    NoValidRoot(String),
    /// Any other reason, as `open` reports it.
    Other(MappedPageError),
}

impl From<ChooseError> for MappedPageError {
    fn from(err: ChooseError) -> Self {
        match err {
            ChooseError::NoValidRoot(_) => MappedPageError::CorruptMetadata,
            ChooseError::Other(err) => err,
        }
    }
}

impl From<MappedPageError> for ChooseError {
    fn from(err: MappedPageError) -> Self {
        ChooseError::Other(err)
    }
}

/// The root `open` takes, with the state it describes and the report of
/// what was found.
pub(crate) struct Chosen {
    pub(super) root: Root,
    pub(super) slot: usize,
    pub(super) loaded: Loaded,
    pub(super) recovery: RecoveryReport,
}

/// What the read-only faces (`ReadOnlyPager`, the inspector) read of the
/// root open picked.
impl Chosen {
    pub(crate) fn root(&self) -> &Root {
        &self.root
    }

    /// The free map the root describes.
    pub(crate) fn map(&self) -> &FreeMap {
        &self.loaded.map
    }

    pub(crate) fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The root's check pages.
    pub(crate) fn check_pages(&self) -> &[u64] {
        &self.loaded.check_pages
    }

    /// The pages of the free-space bitmap's page tree.
    pub(crate) fn bitmap_tree_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.loaded.bitmap_tree.node_pages()
    }

    /// The pages of the protected directory's page tree.
    pub(crate) fn directory_tree_pages(&self) -> impl Iterator<Item = u64> + '_ {
        self.loaded.dir_tree.node_pages()
    }
}

/// Picks the newest metadata root whose every check holds, in a file of
/// `file_len` bytes with `page_size`-byte pages whose page `n` `page(n)`
/// returns (see the module docs). The superblock is the caller's to check.
/// Shared by `open` and the read-only `crate::inspect`, so both apply the
/// same rules.
pub(crate) fn choose_root<'a>(
    file_len: u64,
    page_size: usize,
    page: impl Fn(u64) -> Option<&'a [u8]>,
) -> Result<Chosen, ChooseError> {
    // Decode both roots, newest generation first.
    let mut candidates = Vec::new();
    let mut problems: [Option<String>; 2] = [None, None];
    for (slot, &root_page) in ROOT_PAGES.iter().enumerate() {
        let bytes = page(root_page);
        let decoded = match bytes {
            Some(b) => Root::decode(b, page_size),
            None => Err(RootError::Damaged("file too short to hold this root")),
        };
        match decoded {
            Ok(root) => candidates.push((slot, root)),
            Err(RootError::Version(found)) => {
                return Err(MappedPageError::UnsupportedVersion {
                    found,
                    supported: FORMAT_VERSION,
                }
                .into())
            }
            Err(RootError::Damaged(why)) => {
                let blank = bytes.is_some_and(|b| b.iter().all(|&x| x == 0));
                if !blank {
                    problems[slot] = Some(why.to_string());
                } else {
                    problems[slot] = Some(String::new());
                }
            }
        }
    }
    candidates.sort_by_key(|(_, root)| std::cmp::Reverse(root.generation));

    let mut rejected_newer = false;
    for (slot, root) in candidates {
        match load(file_len, page_size, &root, &page) {
            Ok(loaded) => {
                let other = 1 - slot;
                // Generation 1 is written to copy A by create, 2 to copy
                // B; from then on a blank copy is damage, not "unused".
                let other_problem = match problems[other].take() {
                    Some(p) if p.is_empty() && root.generation < 2 => None,
                    Some(p) if p.is_empty() => Some("zeroed".to_string()),
                    other_problem => other_problem,
                };
                let recovery = RecoveryReport {
                    generation: root.generation,
                    root_copy: slot as u8,
                    last_commit_synced: root.flags & FLAG_SYNCED != 0,
                    fell_back: rejected_newer || other_problem.is_some(),
                    other_copy_problem: other_problem,
                };
                return Ok(Chosen {
                    root,
                    slot,
                    loaded,
                    recovery,
                });
            }
            Err(LoadError::Truncated { expected, actual }) => {
                // A root is written only after the length it counts on
                // is durable, so a shorter file was cut by someone else:
                // opening an older state would hide lost data.
                return Err(MappedPageError::FileTruncated { expected, actual }.into());
            }
            Err(LoadError::Damaged(why)) => {
                problems[slot] = Some(format!("generation {}: {why}", root.generation));
                rejected_newer = true;
            }
            Err(LoadError::NoMemory) => return Err(no_memory().into()),
        }
    }
    let describe = |p: &Option<String>| match p.as_deref() {
        Some("") | None => "blank".to_string(),
        Some(p) => p.to_string(),
    };
    Err(ChooseError::NoValidRoot(format!(
        "copy A: {}; copy B: {}",
        describe(&problems[0]),
        describe(&problems[1])
    )))
}

/// Whether `file` is what a `create` that was stopped part way leaves (see
/// `Core::create`): an empty file, or one of at least the four pages create
/// makes whose page 0 holds nothing but part of the superblock (or zeros),
/// with no root newer than the one create writes. A commit after create
/// would have made a root of generation 2 or more, so such a file holds no
/// data and nothing is lost by creating it again; a damaged superblock in a
/// file that was used stays `CorruptSuperblock`.
fn never_created(file: &[u8], page_size: usize) -> bool {
    if file.is_empty() {
        return true;
    }
    let Some(page0) = file.get(..page_size) else {
        return false;
    };
    if file.len() < 4 * page_size {
        return false;
    }
    let mut expected = [0u8; superblock::SUPERBLOCK_LEN];
    superblock::encode(&mut expected, page_size as u64);
    let part_of_superblock = page0
        .iter()
        .enumerate()
        .all(|(i, &byte)| byte == 0 || expected.get(i) == Some(&byte));
    part_of_superblock
        && ROOT_PAGES.iter().all(|&root_page| {
            let start = root_page as usize * page_size;
            file.get(start..start + page_size).is_none_or(|bytes| {
                Root::decode(bytes, page_size).map_or(true, |r| r.generation < 2)
            })
        })
}

/// Page `n` of `file`, if the file holds all of it.
pub(super) fn file_page(file: &[u8], page_size: usize, n: u64) -> Option<&[u8]> {
    let start = usize::try_from(n.checked_mul(page_size as u64)?).ok()?;
    file.get(start..start.checked_add(page_size)?)
}

/// Loads the state of `root`, decoded from a copy of root slot `slot` of a
/// file a writer may be writing, for a reader that registered that root's
/// generation in the reader table: neither root page is read again (the
/// writer may be writing them, and the pages of the other root's state may
/// be in reuse), and every other page is read from `file` (those of the
/// registered state, which no writer changes). A root whose state does not
/// load is `CorruptMetadata`.
pub(crate) fn load_state_of_root(
    file: &[u8],
    page_size: usize,
    slot: usize,
    root: Root,
) -> Result<Chosen> {
    let page = |n: u64| {
        if ROOT_PAGES.contains(&n) {
            None
        } else {
            file_page(file, page_size, n)
        }
    };
    match load(file.len() as u64, page_size, &root, &page) {
        Ok(loaded) => Ok(Chosen {
            recovery: RecoveryReport {
                generation: root.generation,
                root_copy: slot as u8,
                last_commit_synced: root.flags & FLAG_SYNCED != 0,
                fell_back: false,
                other_copy_problem: None,
            },
            root,
            slot,
            loaded,
        }),
        Err(LoadError::Truncated { expected, actual }) => {
            Err(MappedPageError::FileTruncated { expected, actual })
        }
        Err(LoadError::Damaged(_)) => Err(MappedPageError::CorruptMetadata),
        Err(LoadError::NoMemory) => Err(no_memory()),
    }
}

/// The error of a state that does not fit in memory.
fn no_memory() -> MappedPageError {
    MappedPageError::Io(std::io::Error::new(
        std::io::ErrorKind::OutOfMemory,
        "not enough memory for the state the file's metadata describes",
    ))
}

/// Checks the superblock of `file` (all of it, as mapped) and loads the
/// state of its newest valid root: what `open` does before it builds a
/// pager, shared with the read-only pager.
pub(crate) fn open_state(file: &[u8], page_size: usize) -> Result<Chosen> {
    let found = match superblock::decode(file) {
        Ok(found) => found,
        Err(_) if never_created(file, page_size) => return Err(MappedPageError::IncompleteCreate),
        Err(err) => return Err(err),
    };
    if found != page_size as u64 {
        return Err(MappedPageError::InvalidPageSize);
    }
    Ok(choose_root(file.len() as u64, page_size, |n| {
        file_page(file, page_size, n)
    })?)
}

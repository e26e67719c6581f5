//! Pages 1 and 2: the two metadata roots. Each commit writes a complete root
//! into one of them; `open` takes the newest root whose checks hold.
//! See `FORMAT.md`, "Metadata root" and "Commit protocol".

pub(crate) use super::layout::root::{
    CHECKSUM_LEN, MAGIC, OFF_BITMAP_CRC, OFF_BITMAP_HEIGHT, OFF_BITMAP_TOP, OFF_CHECK_LEN,
    OFF_CHECK_PAGE, OFF_CHECK_PAGES_LEN, OFF_CHECK_PAGE_CRC, OFF_DIR_CRC, OFF_DIR_HEIGHT,
    OFF_DIR_LEN, OFF_DIR_TOP, OFF_FLAGS, OFF_GENERATION, OFF_LOG, OFF_LOG_LEN, OFF_MAGIC,
    OFF_PAGE_SIZE, OFF_REGULAR_COUNT, OFF_TOTAL_PAGES, OFF_VERSION,
};
use super::record::{PageCheck, Record, RECORD_LEN};
use super::tree_node::NodeRef;
use super::{checksum, read_u32, read_u64, write_u32, write_u64, MAX_PAGES};

/// The most bytes of a root page that a root of format 2 uses. A write of
/// at most this many bytes at a multiple of it lies within one OS page (no
/// OS page is smaller), which the kernel copies whole once it has started:
/// a killed process cannot leave such a root half written (see `FORMAT.md`,
/// "The commit protocol").
pub(crate) const ROOT_AREA_MAX: usize = 4096;

/// Root format 1: the root fills its whole page, checksum in the last 4
/// bytes. Still read; written for pages of up to `ROOT_AREA_MAX` bytes,
/// where it is byte for byte a root of format 2.
pub(crate) const ROOT_VERSION_WHOLE_PAGE: u32 = 1;
/// Root format 2: the root fills the first `ROOT_AREA_MAX` bytes of its page
/// (all of a smaller page), checksum in the last 4 of them; the rest of the
/// page is not read.
pub(crate) const ROOT_VERSION_ONE_OS_PAGE: u32 = 2;

/// Root format 3: format 2 with a chain of check pages (see
/// `format::check_page`) for the checks that do not fit in the root. Written
/// only by a commit that needs the chain, so older builds read every other
/// root, and refuse this one (`UnsupportedVersion`) instead of opening a
/// commit whose pages they cannot check.
pub(crate) const ROOT_VERSION_CHECK_PAGES: u32 = 3;

/// Root format 4: format 3 (check pages optional) whose directory, in its
/// tree or its log, may hold sub-page parent entries. Written by every
/// commit while the file has sub-pages, or had them since the last
/// checkpoint, so older builds refuse it (`UnsupportedVersion`) instead of
/// reading those entries as damage.
pub(crate) const ROOT_VERSION_SUB_PAGES: u32 = 4;

/// The bytes of a root page that a root written by this build uses, and
/// that a commit writes.
pub(crate) const fn root_len(page_size: usize) -> usize {
    if page_size < ROOT_AREA_MAX {
        page_size
    } else {
        ROOT_AREA_MAX
    }
}

/// The root format this build writes for `page_size`-byte pages: format 1
/// where it is the same bytes as format 2, so that older builds still read
/// those files.
pub(crate) const fn root_version(page_size: usize) -> u32 {
    if page_size <= ROOT_AREA_MAX {
        ROOT_VERSION_WHOLE_PAGE
    } else {
        ROOT_VERSION_ONE_OS_PAGE
    }
}

/// The bytes a root of format `version` uses in a `page_size`-byte page, or
/// `None` for a version this build does not know.
const fn area_of(version: u32, page_size: usize) -> Option<usize> {
    match version {
        ROOT_VERSION_WHOLE_PAGE => Some(page_size),
        ROOT_VERSION_ONE_OS_PAGE | ROOT_VERSION_CHECK_PAGES | ROOT_VERSION_SUB_PAGES => {
            Some(root_len(page_size))
        }
        _ => None,
    }
}

/// Flag bit: the commit that wrote this root was synced before it returned.
pub(crate) const FLAG_SYNCED: u32 = 1;

/// The deepest page tree the format allows: with 64 references per interior
/// page (1 KiB pages) and 8192 bits per leaf, 8 levels reach 2^61 pages.
pub(crate) const MAX_TREE_HEIGHT: u32 = 8;

/// The largest generation a root may carry: far more commits than any file
/// will see, and room to count on without overflow.
pub(crate) const MAX_GENERATION: u64 = 1 << 62;

/// The top of one page tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct TreeTop {
    pub top: NodeRef,
    pub height: u32,
}

/// A decoded metadata root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Root {
    pub generation: u64,
    pub total_pages: u64,
    pub regular_count: u64,
    pub bitmap: TreeTop,
    pub dir_len: u64,
    pub directory: TreeTop,
    pub flags: u32,
    pub log: Vec<Record>,
    /// Pages this commit wrote without a prior sync, which must verify.
    pub checks: Vec<PageCheck>,
    /// More such checks, in a chain of check pages (format 3): the first
    /// page (null: none) and how many checks the chain holds.
    pub check_pages: NodeRef,
    pub check_pages_len: u64,
    /// Whether the directory may hold sub-page parents (format 4).
    pub sub_pages: bool,
}

/// Why a root page was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RootError {
    /// The page is not a valid root (torn, zeroed, corrupt): the reason.
    Damaged(&'static str),
    /// A valid-looking root of a format version this build does not know.
    Version(u32),
}

/// How many log records and page checks, together, fit in a root that this
/// build writes for `page_size`-byte pages.
pub(crate) const fn log_capacity(page_size: usize) -> usize {
    area_capacity(root_len(page_size))
}

/// How many log records and page checks fit in a root of `area` bytes.
const fn area_capacity(area: usize) -> usize {
    (area - OFF_LOG - CHECKSUM_LEN) / RECORD_LEN
}

impl Root {
    /// Encodes this root into `page` (a whole root page, the rest of which
    /// is zeroed). The log must fit: the commit code checkpoints before it
    /// would not.
    pub fn encode(&self, page: &mut [u8]) {
        page.fill(0);
        let page_size = page.len();
        self.encode_area(page_size, page);
    }

    /// Encodes this root for a file of `page_size`-byte pages into the first
    /// [`root_len`] bytes of `area` (which is at least that long): the bytes
    /// a commit writes.
    pub fn encode_area(&self, page_size: usize, area: &mut [u8]) {
        let len = root_len(page_size);
        let Some(page) = area.get_mut(..len) else {
            debug_assert!(false, "root buffer shorter than the root");
            return;
        };
        page.fill(0);
        debug_assert!(self.log.len() + self.checks.len() <= log_capacity(page_size));
        page[OFF_MAGIC..OFF_MAGIC + 8].copy_from_slice(&MAGIC);
        let version = if self.sub_pages {
            ROOT_VERSION_SUB_PAGES
        } else if self.check_pages.is_null() {
            root_version(page_size)
        } else {
            ROOT_VERSION_CHECK_PAGES
        };
        write_u32(page, OFF_VERSION, version);
        write_u32(page, OFF_LOG_LEN, self.log.len() as u32);
        write_u64(page, OFF_PAGE_SIZE, page_size as u64);
        write_u64(page, OFF_GENERATION, self.generation);
        write_u64(page, OFF_TOTAL_PAGES, self.total_pages);
        write_u64(page, OFF_REGULAR_COUNT, self.regular_count);
        write_u64(page, OFF_BITMAP_TOP, self.bitmap.top.page);
        write_u32(page, OFF_BITMAP_CRC, self.bitmap.top.crc);
        write_u32(page, OFF_BITMAP_HEIGHT, self.bitmap.height);
        write_u64(page, OFF_DIR_LEN, self.dir_len);
        write_u64(page, OFF_DIR_TOP, self.directory.top.page);
        write_u32(page, OFF_DIR_CRC, self.directory.top.crc);
        write_u32(page, OFF_DIR_HEIGHT, self.directory.height);
        write_u32(page, OFF_FLAGS, self.flags);
        write_u32(page, OFF_CHECK_LEN, self.checks.len() as u32);
        if !self.check_pages.is_null() {
            write_u64(page, OFF_CHECK_PAGE, self.check_pages.page);
            write_u32(page, OFF_CHECK_PAGE_CRC, self.check_pages.crc);
            write_u64(page, OFF_CHECK_PAGES_LEN, self.check_pages_len);
        }
        let slots = page[OFF_LOG..].chunks_exact_mut(RECORD_LEN);
        let mut slots = slots.take(log_capacity(page_size));
        for (record, slot) in self.log.iter().zip(&mut slots) {
            record.encode(slot);
        }
        for (check, slot) in self.checks.iter().zip(&mut slots) {
            check.encode(slot);
        }
        let end = len - CHECKSUM_LEN;
        let crc = checksum(&page[..end]);
        write_u32(page, end, crc);
    }

    /// Decodes and checks a root page of a file with `page_size`-byte pages.
    /// Only the root itself is checked here; the trees it references are
    /// checked when they are loaded.
    pub fn decode(page: &[u8], page_size: usize) -> Result<Root, RootError> {
        use RootError::Damaged;
        if page.len() != page_size || page_size < OFF_LOG + CHECKSUM_LEN {
            return Err(Damaged("root page has the wrong size"));
        }
        if page.get(..8) != Some(&MAGIC[..]) {
            return Err(Damaged("no root magic (never written, zeroed or torn)"));
        }
        // The version says where the checksum is, so it is read before the
        // checksum can vouch for it; a wrong one finds no matching checksum.
        let claimed = read_u32(page, OFF_VERSION).ok_or(Damaged("short root"))?;
        let checksum_holds = |area: usize| {
            let end = area - CHECKSUM_LEN;
            read_u32(page, end) == Some(checksum(page.get(..end).unwrap_or_default()))
        };
        let Some(area) = area_of(claimed, page_size) else {
            // Unknown: a version only if the root checks out where some
            // version would put its checksum.
            if checksum_holds(page_size) || checksum_holds(root_len(page_size)) {
                return Err(RootError::Version(claimed));
            }
            return Err(Damaged("root checksum mismatch (torn or corrupt write)"));
        };
        if !checksum_holds(area) {
            return Err(Damaged("root checksum mismatch (torn or corrupt write)"));
        }
        let u32_at = |off| read_u32(page, off).ok_or(Damaged("short root"));
        let u64_at = |off| read_u64(page, off).ok_or(Damaged("short root"));
        let tree_at = |top, crc, height| {
            Ok(TreeTop {
                top: NodeRef {
                    page: u64_at(top)?,
                    crc: u32_at(crc)?,
                },
                height: u32_at(height)?,
            })
        };
        if u64_at(OFF_PAGE_SIZE)? != page_size as u64 {
            return Err(Damaged("root records another page size"));
        }
        let log_len = u32_at(OFF_LOG_LEN)? as usize;
        let check_len = u32_at(OFF_CHECK_LEN)? as usize;
        if log_len.saturating_add(check_len) > area_capacity(area) {
            return Err(Damaged("log length exceeds the root's capacity"));
        }
        let slot = |i: usize| {
            let at = OFF_LOG + i * RECORD_LEN;
            page.get(at..at + RECORD_LEN).unwrap_or_default()
        };
        // Sized up front: a collect through `Result` cannot know the length,
        // and a full log would grow its vector eight times.
        let mut log = Vec::with_capacity(log_len);
        for i in 0..log_len {
            log.push(Record::decode(slot(i)).ok_or(Damaged("malformed log record"))?);
        }
        let mut checks = Vec::with_capacity(check_len);
        for i in log_len..log_len + check_len {
            checks.push(PageCheck::decode(slot(i)).ok_or(Damaged("malformed page check"))?);
        }
        // Older formats left these bytes zero; formats 3 and 4 read them
        // (format 3 is written only with check pages, format 4 with or
        // without).
        let (check_pages, check_pages_len) = if claimed >= ROOT_VERSION_CHECK_PAGES {
            let head = NodeRef {
                page: u64_at(OFF_CHECK_PAGE)?,
                crc: u32_at(OFF_CHECK_PAGE_CRC)?,
            };
            let len = u64_at(OFF_CHECK_PAGES_LEN)?;
            if head.is_null() != (len == 0) {
                return Err(Damaged(
                    "check pages without a count, or a count without pages",
                ));
            }
            if head.is_null() && claimed == ROOT_VERSION_CHECK_PAGES {
                return Err(Damaged("a format-3 root without check pages"));
            }
            (head, len)
        } else {
            (NodeRef::NULL, 0)
        };
        let root = Root {
            generation: u64_at(OFF_GENERATION)?,
            total_pages: u64_at(OFF_TOTAL_PAGES)?,
            regular_count: u64_at(OFF_REGULAR_COUNT)?,
            bitmap: tree_at(OFF_BITMAP_TOP, OFF_BITMAP_CRC, OFF_BITMAP_HEIGHT)?,
            dir_len: u64_at(OFF_DIR_LEN)?,
            directory: tree_at(OFF_DIR_TOP, OFF_DIR_CRC, OFF_DIR_HEIGHT)?,
            flags: u32_at(OFF_FLAGS)?,
            log,
            checks,
            check_pages,
            check_pages_len,
            sub_pages: claimed == ROOT_VERSION_SUB_PAGES,
        };
        if root.generation == 0 || root.generation > MAX_GENERATION {
            return Err(Damaged("generation out of range"));
        }
        if root.total_pages < super::FIRST_DATA_PAGE || root.total_pages > MAX_PAGES {
            return Err(Damaged("page count out of range"));
        }
        if root.dir_len > MAX_PAGES || root.regular_count > root.total_pages {
            return Err(Damaged("count out of range"));
        }
        if root.bitmap.height > MAX_TREE_HEIGHT || root.directory.height > MAX_TREE_HEIGHT {
            return Err(Damaged("page tree too deep"));
        }
        Ok(root)
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::{DirEntry, EntryState, PageCheck};
    use super::*;

    fn sample() -> Root {
        Root {
            generation: 42,
            total_pages: 1 << 33,
            regular_count: 1000,
            bitmap: TreeTop {
                top: NodeRef {
                    page: 77,
                    crc: 0xdead,
                },
                height: 2,
            },
            dir_len: 9,
            directory: TreeTop {
                top: NodeRef {
                    page: 78,
                    crc: 0xbeef,
                },
                height: 0,
            },
            flags: FLAG_SYNCED,
            log: vec![
                Record::Alloc { start: 5, count: 2 },
                Record::Entry {
                    slot: 3,
                    entry: DirEntry {
                        copies: [10, 11],
                        state: EntryState::Fresh,
                    },
                },
            ],
            checks: vec![PageCheck { page: 10, crc: 7 }],
            check_pages: NodeRef::NULL,
            check_pages_len: 0,
            sub_pages: false,
        }
    }

    #[test]
    fn offsets_match_format_md() {
        let offsets = [
            OFF_MAGIC,
            OFF_VERSION,
            OFF_LOG_LEN,
            OFF_PAGE_SIZE,
            OFF_GENERATION,
            OFF_TOTAL_PAGES,
            OFF_REGULAR_COUNT,
            OFF_BITMAP_TOP,
            OFF_BITMAP_CRC,
            OFF_BITMAP_HEIGHT,
            OFF_DIR_LEN,
            OFF_DIR_TOP,
            OFF_DIR_CRC,
            OFF_DIR_HEIGHT,
            OFF_FLAGS,
            OFF_CHECK_LEN,
            OFF_CHECK_PAGE,
            OFF_CHECK_PAGE_CRC,
            OFF_CHECK_PAGES_LEN,
            OFF_LOG,
        ];
        assert_eq!(
            offsets,
            [0, 8, 12, 16, 24, 32, 40, 48, 56, 60, 64, 72, 80, 84, 88, 92, 96, 104, 112, 128]
        );
        assert_eq!(log_capacity(1024), 37);
        assert_eq!(log_capacity(4096), 165);
        assert_eq!(log_capacity(4 << 20), 165);
        assert_eq!(
            (root_len(1024), root_len(4096), root_len(1 << 30)),
            (1024, 4096, 4096)
        );
        assert_eq!((root_version(4096), root_version(8192)), (1, 2));
    }

    /// Pages larger than an OS page: the root is its first 4096 bytes, the
    /// rest of the page is not read, and a whole-page root of format 1 (as
    /// older builds wrote them) still reads.
    #[test]
    fn big_pages_use_one_os_page_and_format_1_still_reads() {
        const P: usize = 16384;
        let mut page = vec![0xA5u8; P];
        sample().encode_area(P, &mut page);
        assert_eq!(read_u32(&page, OFF_VERSION), Some(2));
        assert_eq!(Root::decode(&page, P), Ok(sample()));
        page[ROOT_AREA_MAX - 1] ^= 1;
        assert!(Root::decode(&page, P).is_err());

        let mut old = vec![0u8; P];
        sample().encode_area(P, &mut old);
        write_u32(&mut old, OFF_VERSION, ROOT_VERSION_WHOLE_PAGE);
        old[ROOT_AREA_MAX - 4..ROOT_AREA_MAX].fill(0);
        let crc = checksum(&old[..P - 4]);
        write_u32(&mut old, P - 4, crc);
        assert_eq!(Root::decode(&old, P), Ok(sample()));
        // A version-2 root over it: its own checksum decides, not the old one.
        let mut over = old.clone();
        sample().encode_area(P, &mut over);
        assert_eq!(Root::decode(&over, P), Ok(sample()));

        let mut unknown = page.clone();
        page[ROOT_AREA_MAX - 1] ^= 1;
        unknown.copy_from_slice(&page);
        write_u32(&mut unknown, OFF_VERSION, 9);
        let crc = checksum(&unknown[..ROOT_AREA_MAX - 4]);
        write_u32(&mut unknown, ROOT_AREA_MAX - 4, crc);
        assert_eq!(Root::decode(&unknown, P), Err(RootError::Version(9)));
    }

    #[test]
    fn check_pages_make_a_format_3_root() {
        let mut root = sample();
        root.check_pages = NodeRef { page: 99, crc: 5 };
        root.check_pages_len = 400;
        for page_size in [1024, 4096, 16384] {
            let mut page = vec![0u8; page_size];
            root.encode_area(page_size, &mut page);
            assert_eq!(read_u32(&page, OFF_VERSION), Some(ROOT_VERSION_CHECK_PAGES));
            assert_eq!(Root::decode(&page, page_size), Ok(root.clone()));
        }
        // A format-2 root ignores whatever those bytes hold.
        let mut page = vec![0u8; 4096];
        sample().encode_area(4096, &mut page);
        assert_eq!(read_u64(&page, OFF_CHECK_PAGE), Some(0));
        assert_eq!(Root::decode(&page, 4096), Ok(sample()));
    }

    #[test]
    fn round_trip() {
        let mut page = vec![0u8; 1024];
        sample().encode(&mut page);
        assert_eq!(Root::decode(&page, 1024), Ok(sample()));
    }

    #[test]
    fn any_flipped_bit_or_torn_tail_is_damage() {
        let mut page = vec![0u8; 1024];
        sample().encode(&mut page);
        for i in (0..1024).step_by(7) {
            let mut bad = page.clone();
            bad[i] ^= 1;
            assert!(Root::decode(&bad, 1024).is_err(), "flip at {i}");
        }
        let mut torn = page.clone();
        torn[512..].fill(0);
        assert!(Root::decode(&torn, 1024).is_err());
        assert!(Root::decode(&vec![0u8; 1024], 1024).is_err());
        assert!(Root::decode(&page, 2048).is_err());
    }

    #[test]
    fn a_root_with_sub_pages_is_format_4_with_or_without_check_pages() {
        for check_pages in [NodeRef::NULL, NodeRef { page: 90, crc: 7 }] {
            let mut root = sample();
            root.sub_pages = true;
            root.check_pages = check_pages;
            root.check_pages_len = if check_pages.is_null() { 0 } else { 12 };
            root.log.push(Record::Entry {
                slot: 2,
                entry: DirEntry::parent(40, 3, 0b101),
            });
            let mut page = vec![0u8; 4096];
            root.encode(&mut page);
            assert_eq!(read_u32(&page, OFF_VERSION), Some(ROOT_VERSION_SUB_PAGES));
            assert_eq!(Root::decode(&page, 4096), Ok(root));
        }
    }
}

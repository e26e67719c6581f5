//! The change log carried in each metadata root, and the protected-page
//! directory entry it shares with the directory's leaf pages.
//! See `FORMAT.md`, "Log records" and "Directory entries".

pub(crate) use super::layout::record::{
    DIR_ENTRY_LEN, KIND_ALLOC, KIND_CHECK, KIND_ENTRY, KIND_FREE, KIND_SHIFT, PAGE_MASK,
    PARENT_MARK, PARENT_SHIFT_AT, RECORD_LEN, STATE_SHIFT,
};
use super::{read_u64, write_u64, MAX_PAGES};

/// Which copy of a protected page holds its committed bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntryState {
    /// The slot is not in use.
    Free,
    /// Allocated and never committed: reads as zeros.
    Fresh,
    /// The committed bytes are in `copies[0]` or `copies[1]`.
    Active(u8),
    /// Not a protected page: a parent page cut into `1 << shift` sub-pages
    /// of `page_size >> shift` bytes, in `copies[0]` (`copies[1]` is 0);
    /// bit `i` of `used` set means sub-page `i` is allocated. Never 0: a
    /// parent whose last sub-page is freed leaves the directory.
    Parent { shift: u8, used: u64 },
}

/// The fewest and the most sub-pages a parent page is cut into, as shifts:
/// from halves to sixty-fourths of a page.
pub(crate) const MIN_SUB_SHIFT: u8 = 1;
pub(crate) const MAX_SUB_SHIFT: u8 = 6;

/// The bits of `used` that name sub-pages of a parent cut `1 << shift` ways.
pub(crate) const fn sub_mask(shift: u8) -> u64 {
    if shift >= 6 {
        u64::MAX
    } else {
        (1u64 << (1u32 << shift)) - 1
    }
}

/// One slot of the protected-page directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DirEntry {
    pub copies: [u64; 2],
    pub state: EntryState,
}

impl DirEntry {
    pub const FREE: DirEntry = DirEntry {
        copies: [0, 0],
        state: EntryState::Free,
    };

    /// A sub-page parent entry: `page` cut `1 << shift` ways, `used` its
    /// allocated sub-pages.
    pub fn parent(page: u64, shift: u8, used: u64) -> DirEntry {
        DirEntry {
            copies: [page, 0],
            state: EntryState::Parent { shift, used },
        }
    }

    pub fn in_use(&self) -> bool {
        self.state != EntryState::Free
    }

    /// Whether the slot holds a protected page (not free, not a parent).
    pub fn is_protected(&self) -> bool {
        matches!(self.state, EntryState::Fresh | EntryState::Active(_))
    }

    /// The parent page, its shift and its used sub-pages, for a parent entry.
    pub fn as_parent(&self) -> Option<(u64, u8, u64)> {
        match self.state {
            EntryState::Parent { shift, used } => Some((self.copies[0], shift, used)),
            _ => None,
        }
    }

    /// The parent page, if this entry is a parent cut `1 << shift` ways
    /// whose sub-page `index` (below 64) is allocated.
    #[inline]
    pub fn sub_page_parent(&self, shift: u8, index: u32) -> Option<u64> {
        match self.state {
            EntryState::Parent { shift: s, used } if s == shift && used & (1 << index) != 0 => {
                Some(self.copies[0])
            }
            _ => None,
        }
    }

    /// The pages this entry holds: both copies of a protected page, the
    /// parent page of sub-pages, none for a free slot.
    pub fn pages(&self) -> &[u64] {
        match self.state {
            EntryState::Free => &[],
            EntryState::Parent { .. } => &self.copies[..1],
            EntryState::Fresh | EntryState::Active(_) => &self.copies,
        }
    }

    /// Whether the page `self.pages()[which]` holds bytes a reader reads:
    /// the committed copy of a protected page, or a parent page.
    pub fn holds_bytes(&self, which: usize) -> bool {
        match self.state {
            EntryState::Active(copy) => usize::from(copy) == which,
            EntryState::Parent { .. } => which == 0,
            EntryState::Free | EntryState::Fresh => false,
        }
    }

    pub fn encode(&self, out: &mut [u8]) {
        if let EntryState::Parent { shift, used } = self.state {
            let word0 = PARENT_MARK | (u64::from(shift) << PARENT_SHIFT_AT) | self.copies[0];
            write_u64(out, 0, word0);
            write_u64(out, 8, used);
            return;
        }
        let state = match self.state {
            EntryState::Free => 0u64,
            EntryState::Fresh => 1,
            EntryState::Active(0) => 2,
            EntryState::Active(_) | EntryState::Parent { .. } => 3,
        };
        write_u64(out, 0, self.copies[0]);
        write_u64(out, 8, self.copies[1] | (state << STATE_SHIFT));
    }

    /// Decodes an entry; `None` when its bytes cannot be an entry.
    pub fn decode(bytes: &[u8]) -> Option<DirEntry> {
        let copy0 = read_u64(bytes, 0)?;
        let word1 = read_u64(bytes, 8)?;
        if copy0 & PARENT_MARK != 0 {
            let shift = u8::try_from((copy0 & !PARENT_MARK) >> PARENT_SHIFT_AT).ok()?;
            let page = copy0 & (MAX_PAGES - 1);
            let well_formed = (MIN_SUB_SHIFT..=MAX_SUB_SHIFT).contains(&shift)
                && word1 != 0
                && word1 & !sub_mask(shift) == 0
                && page != 0;
            return well_formed.then_some(DirEntry::parent(page, shift, word1));
        }
        let copy1 = word1 & PAGE_MASK;
        let state = match word1 >> STATE_SHIFT {
            0 => EntryState::Free,
            1 => EntryState::Fresh,
            2 => EntryState::Active(0),
            _ => EntryState::Active(1),
        };
        let entry = DirEntry {
            copies: [copy0, copy1],
            state,
        };
        let well_formed = match state {
            EntryState::Free => copy0 == 0 && copy1 == 0,
            _ => copy0 != copy1 && copy0 < MAX_PAGES && copy1 < MAX_PAGES,
        };
        well_formed.then_some(entry)
    }
}

/// One change since the last checkpoint of the page trees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// Regular pages `start .. start + count` became allocated.
    Alloc { start: u64, count: u64 },
    /// Regular pages `start .. start + count` became free.
    Free { start: u64, count: u64 },
    /// Protected directory slot `slot` now holds `entry`.
    Entry { slot: u64, entry: DirEntry },
}

impl Record {
    pub fn encode(&self, out: &mut [u8]) {
        let (kind, x, w1, w2) = match *self {
            Record::Alloc { start, count } => (KIND_ALLOC, start, count, 0),
            Record::Free { start, count } => (KIND_FREE, start, count, 0),
            Record::Entry { slot, entry } => {
                let mut buf = [0u8; DIR_ENTRY_LEN];
                entry.encode(&mut buf);
                let w1 = read_u64(&buf, 0).unwrap_or_default();
                let w2 = read_u64(&buf, 8).unwrap_or_default();
                (KIND_ENTRY, slot, w1, w2)
            }
        };
        write_u64(out, 0, (kind << KIND_SHIFT) | x);
        write_u64(out, 8, w1);
        write_u64(out, 16, w2);
    }

    /// Decodes a record; `None` when its bytes cannot be a record.
    pub fn decode(bytes: &[u8]) -> Option<Record> {
        let w0 = read_u64(bytes, 0)?;
        let (kind, x) = (w0 >> KIND_SHIFT, w0 & (MAX_PAGES - 1));
        let w1 = read_u64(bytes, 8)?;
        let w2 = read_u64(bytes, 16)?;
        match kind {
            KIND_ALLOC | KIND_FREE if w2 == 0 && w1 > 0 && w1 < MAX_PAGES => {
                let (start, count) = (x, w1);
                Some(if kind == KIND_ALLOC {
                    Record::Alloc { start, count }
                } else {
                    Record::Free { start, count }
                })
            }
            KIND_ENTRY => {
                let mut buf = [0u8; DIR_ENTRY_LEN];
                write_u64(&mut buf, 0, w1);
                write_u64(&mut buf, 8, w2);
                Some(Record::Entry {
                    slot: x,
                    entry: DirEntry::decode(&buf)?,
                })
            }
            _ => None,
        }
    }
}

/// A page the commit that wrote the root wrote without syncing it first,
/// with the CRC-32C its bytes must have. Open rejects a root whose checks
/// fail: the commit did not complete. Kept in the same 24-byte slots as
/// [`Record`], after the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PageCheck {
    pub page: u64,
    pub crc: u32,
}

impl PageCheck {
    pub fn encode(&self, out: &mut [u8]) {
        write_u64(out, 0, (KIND_CHECK << KIND_SHIFT) | self.page);
        write_u64(out, 8, u64::from(self.crc));
        write_u64(out, 16, 0);
    }

    /// Decodes a check; `None` when its bytes cannot be one.
    pub fn decode(bytes: &[u8]) -> Option<PageCheck> {
        let w0 = read_u64(bytes, 0)?;
        let crc = u32::try_from(read_u64(bytes, 8)?).ok()?;
        (w0 >> KIND_SHIFT == KIND_CHECK && read_u64(bytes, 16)? == 0).then_some(PageCheck {
            page: w0 & (MAX_PAGES - 1),
            crc,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let samples = [
            Record::Alloc { start: 3, count: 1 },
            Record::Free {
                start: (1 << 40) + 5,
                count: 1 << 20,
            },
            Record::Entry {
                slot: 17,
                entry: DirEntry {
                    copies: [9, 10],
                    state: EntryState::Active(1),
                },
            },
            Record::Entry {
                slot: 0,
                entry: DirEntry::FREE,
            },
        ];
        for record in samples {
            let mut buf = [0u8; RECORD_LEN];
            record.encode(&mut buf);
            assert_eq!(Record::decode(&buf), Some(record));
        }
    }

    #[test]
    fn checks_round_trip_and_are_not_records() {
        let check = PageCheck {
            page: 123,
            crc: 0xFFFF_0001,
        };
        let mut buf = [0u8; RECORD_LEN];
        check.encode(&mut buf);
        assert_eq!(PageCheck::decode(&buf), Some(check));
        assert_eq!(Record::decode(&buf), None);
        let mut rec = [0u8; RECORD_LEN];
        Record::Alloc { start: 1, count: 1 }.encode(&mut rec);
        assert_eq!(PageCheck::decode(&rec), None);
    }

    #[test]
    fn entry_layout_matches_format_md() {
        let entry = DirEntry {
            copies: [0x11, 0x22],
            state: EntryState::Fresh,
        };
        let mut buf = [0u8; DIR_ENTRY_LEN];
        entry.encode(&mut buf);
        assert_eq!(read_u64(&buf, 0), Some(0x11));
        assert_eq!(read_u64(&buf, 8), Some(0x22 | (1 << 62)));
    }

    #[test]
    fn parent_entries_round_trip_and_reject_what_cannot_be_one() {
        for (shift, used) in [(1, 0b10), (3, 0xFF), (6, u64::MAX), (6, 1 << 63)] {
            let entry = DirEntry::parent(1 << 40, shift, used);
            let mut buf = [0u8; DIR_ENTRY_LEN];
            entry.encode(&mut buf);
            assert_eq!(DirEntry::decode(&buf), Some(entry));
            assert_eq!(read_u64(&buf, 8), Some(used));
            let record = Record::Entry { slot: 9, entry };
            let mut rec = [0u8; RECORD_LEN];
            record.encode(&mut rec);
            assert_eq!(Record::decode(&rec), Some(record));
        }
        let encoded = |page: u64, shift: u64, used: u64| {
            let mut buf = [0u8; DIR_ENTRY_LEN];
            write_u64(&mut buf, 0, PARENT_MARK | (shift << PARENT_SHIFT_AT) | page);
            write_u64(&mut buf, 8, used);
            DirEntry::decode(&buf)
        };
        assert!(encoded(7, 2, 0b1010).is_some());
        // No sub-page used, a used bit past the parent's sub-pages, a shift
        // out of range, page 0.
        assert_eq!(encoded(7, 2, 0), None);
        assert_eq!(encoded(7, 2, 1 << 4), None);
        assert_eq!(encoded(7, 0, 1), None);
        assert_eq!(encoded(7, 7, 1), None);
        assert_eq!(encoded(0, 2, 1), None);
        assert_eq!(DirEntry::parent(5, 2, 1).pages(), &[5]);
        assert_eq!(DirEntry::FREE.pages(), &[] as &[u64]);
        assert!(!DirEntry::parent(5, 2, 1).is_protected());
        assert_eq!(sub_mask(1), 0b11);
        assert_eq!(sub_mask(5), u64::from(u32::MAX));
    }

    #[test]
    fn garbage_is_rejected_not_trusted() {
        assert_eq!(Record::decode(&[0u8; RECORD_LEN]), None);
        assert_eq!(Record::decode(&[0xFF; RECORD_LEN]), None);
        assert_eq!(Record::decode(&[1, 2, 3]), None);
        // A free entry must not name pages.
        let mut buf = [0u8; DIR_ENTRY_LEN];
        write_u64(&mut buf, 0, 5);
        assert_eq!(DirEntry::decode(&buf), None);
    }
}

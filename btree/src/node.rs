//! The page format of a B+tree node, read in place or decoded to be changed.
//!
//! # Node pages
//!
//! Every field is little-endian. A node page starts with a header, then an
//! offset table of one entry per key, then the entries one after the
//! other, in key order:
//!
//! | Offset                      | Size | Field                                          |
//! |-----------------------------|------|------------------------------------------------|
//! | [`KIND_AT`] (0)             | 1    | kind: 1 leaf, 2 branch ([`Kind`])              |
//! | 1                           | 1    | unused, 0                                      |
//! | [`COUNT_AT`] (2)            | 2    | entry count `n`, at least 1                    |
//! | [`HEADER`] (4)              | 2 `n`| offset table: where each entry starts          |
//! | `HEADER + 2 n`              | ...  | the entries, each where its offset says        |
//!
//! An entry, at its offset:
//!
//! | Offset                      | Size | Field                        |
//! |-----------------------------|------|------------------------------|
//! | [`KEY_LEN_AT`] (0)          | 2    | key length `k`               |
//! | [`PAYLOAD_LEN_AT`] (2)      | 2    | payload length `p`           |
//! | [`ENTRY_HEADER`] (4)        | `k`  | key                          |
//! | `ENTRY_HEADER + k`          | `p`  | payload                      |
//!
//! Entries are written in order with no gap, so the last one's end is the
//! bytes the node uses. The rest of the page is zeros.
//!
//! A **branch** entry's payload is a child's page id ([`CHILD_SIZE`] bytes),
//! its key the smallest key that child's subtree may hold; the first entry of
//! a branch has an empty key, since everything below the branch's own lower
//! bound goes there.
//!
//! A **leaf** entry's payload is a tag byte, then the value ([`LeafValue`]):
//!
//! | Offset                      | Size | Field                                          |
//! |-----------------------------|------|------------------------------------------------|
//! | [`TAG_AT`] (0)              | 1    | [`INLINE_TAG`] (0) or [`OVERFLOW_TAG`] (1)     |
//! | [`INLINE_AT`] (1)           | rest | inline: the value (at most [`MAX_INLINE`])     |
//! | [`VALUE_LEN_AT`] (1)        | 4    | overflow: the value's length                   |
//! | [`FIRST_PAGE_AT`] (5)       | 8    | overflow: the first page of its chain          |
//!
//! # Overflow pages
//!
//! A value longer than [`MAX_INLINE`] lies in a chain of overflow pages:
//!
//! | Offset                      | Size                | Field                                 |
//! |-----------------------------|---------------------|---------------------------------------|
//! | [`NEXT_PAGE_AT`] (0)        | 8                   | the next page of the chain, 0 on the last |
//! | [`OVERFLOW_HEADER`] (8)     | [`OVERFLOW_DATA`]   | the value's next bytes                |
//!
//! The value's length says how much of the last page is used. Values are
//! never changed, so a leaf copied to a fresh page names the same chain, and
//! the chain is freed when its value is replaced or removed.
//!
//! # Reading and changing
//!
//! Reads search a page where it lies in the map, without copying it
//! ([`NodeRef`]); every read checks the bytes it relies on and returns
//! [`Error::Corrupt`] for a page that breaks the format, whatever its bytes.
//! A change of one entry ([`Edit`]) that fits moves the bytes around it
//! ([`Plan`]): in the page itself when the transaction wrote it already,
//! else while copying it into a fresh page. Only a node that must split or
//! merge is decoded into a [`Node`], changed, and encoded into pages again.

use std::cmp::Ordering;
use std::ops::Range;

pub use crate::error::{Error, Result};

/// The size of every page of the tree, in bytes.
pub const PAGE: usize = 4096;

/// Where a node page holds its kind (one byte).
pub const KIND_AT: usize = 0;
/// Where a node page holds its entry count (u16).
pub const COUNT_AT: usize = 2;
/// The bytes before a node's offset table.
pub const HEADER: usize = 4;
/// The size of one offset of the offset table (u16).
pub const OFFSET_SIZE: usize = U16_SIZE;

/// Where an entry holds its key's length (u16), from the entry's start.
pub const KEY_LEN_AT: usize = 0;
/// Where an entry holds its payload's length (u16), from the entry's start.
pub const PAYLOAD_LEN_AT: usize = 2;
/// The bytes of an entry before its key.
pub const ENTRY_HEADER: usize = 4;
/// What an entry costs beside its key and payload: its offset and lengths.
pub const ENTRY_OVERHEAD: usize = OFFSET_SIZE + ENTRY_HEADER;

/// The size of a page id wherever the format holds one (u64).
pub const PAGE_ID_SIZE: usize = 8;
/// The size of a length or offset field (u16).
const U16_SIZE: usize = 2;

/// The size of a branch entry's payload: the child's page id.
pub const CHILD_SIZE: usize = PAGE_ID_SIZE;

/// Where a leaf payload holds its tag.
pub const TAG_AT: usize = 0;
/// The tag of a leaf payload holding its value.
pub const INLINE_TAG: u8 = 0;
/// The tag of a leaf payload naming an overflow chain.
pub const OVERFLOW_TAG: u8 = 1;
/// Where an inline leaf payload's value starts.
pub const INLINE_AT: usize = 1;
/// Where an overflow leaf payload holds the value's length (u32).
pub const VALUE_LEN_AT: usize = 1;
/// Where an overflow leaf payload holds the chain's first page (u64).
pub const FIRST_PAGE_AT: usize = 5;
/// The size of an overflow leaf payload.
pub const OVERFLOW_PAYLOAD: usize = FIRST_PAGE_AT + PAGE_ID_SIZE;

/// Where an overflow page holds the next page of its chain (u64).
pub const NEXT_PAGE_AT: usize = 0;
/// The bytes of an overflow page before its part of the value.
pub const OVERFLOW_HEADER: usize = NEXT_PAGE_AT + PAGE_ID_SIZE;
/// The bytes of a value one overflow page holds.
pub const OVERFLOW_DATA: usize = PAGE - OVERFLOW_HEADER;

/// The longest key. Keys and inline values this large still leave two
/// entries of each size in a branch or one in a leaf, so a node always
/// splits into pieces that fit.
pub const MAX_KEY: usize = 1024;
/// The longest value kept in its leaf; longer ones go to overflow pages.
pub const MAX_INLINE: usize = 2048;
/// The longest value.
pub const MAX_VALUE: usize = 1 << 20;

const _: () = assert!(
    HEADER + ENTRY_OVERHEAD + MAX_KEY + INLINE_AT + MAX_INLINE <= PAGE,
    "the largest leaf entry fits a page"
);
const _: () = assert!(
    HEADER + 2 * (ENTRY_OVERHEAD + MAX_KEY + CHILD_SIZE) <= PAGE,
    "two of the largest branch entries fit a page"
);

/// The u16 at `at`; `None` past the end of `bytes`.
fn u16_at(bytes: &[u8], at: usize) -> Option<usize> {
    let field = bytes.get(at..at + U16_SIZE)?;
    Some(usize::from(u16::from_le_bytes([field[0], field[1]])))
}

/// The u64 at the start of `bytes`, which must hold exactly eight.
fn u64_of(bytes: &[u8], what: &'static str) -> Result<u64> {
    let bytes = bytes.try_into().map_err(|_| Error::Corrupt(what))?;
    Ok(u64::from_le_bytes(bytes))
}

/// `value`, or the error of a damaged page that lacks `what`. Not
/// `ok_or(Error::Corrupt(..))`: that builds the error, whose pager variant
/// needs dropping, at every call, and reads of node fields are the tree's
/// inner loop (a fifth of a sorted insert went to building and dropping it).
fn present<T>(value: Option<T>, what: &'static str) -> Result<T> {
    match value {
        Some(value) => Ok(value),
        None => Err(Error::Corrupt(what)),
    }
}

/// The u16 at `at`, which a check before made sure lies in `bytes`.
fn length_at(bytes: &[u8], at: usize) -> Result<usize> {
    present(u16_at(bytes, at), "a field past the page")
}

/// Writes `value` (under 2^16: a page offset, count or length) at `at`.
fn set_u16(bytes: &mut [u8], at: usize, value: usize) {
    debug_assert!(value <= usize::from(u16::MAX));
    bytes[at..at + U16_SIZE].copy_from_slice(&(value as u16).to_le_bytes());
}

/// Writes a node page's header: its kind and entry count.
fn write_header(page: &mut [u8], kind: Kind, len: usize) {
    page[KIND_AT] = kind as u8;
    page[KIND_AT + 1] = 0;
    set_u16(page, COUNT_AT, len);
}

/// Writes the two lengths that start an entry at `at`.
fn write_lengths(page: &mut [u8], at: usize, key_len: usize, payload_len: usize) {
    set_u16(page, at + KEY_LEN_AT, key_len);
    set_u16(page, at + PAYLOAD_LEN_AT, payload_len);
}

/// Where the entries of a node of `len` entries begin: after its offsets.
fn entries_start(len: usize) -> usize {
    HEADER + OFFSET_SIZE * len
}

/// The next page of an overflow chain, from an overflow page.
///
/// ```
/// use mappedpages_btree::node::{next_overflow_page, PAGE};
/// let mut page = [0u8; PAGE];
/// page[..8].copy_from_slice(&7u64.to_le_bytes());
/// assert_eq!(next_overflow_page(&page)?, 7);
/// assert!(next_overflow_page(&page[..3]).is_err());
/// # Ok::<(), mappedpages_btree::Error>(())
/// ```
pub fn next_overflow_page(page: &[u8]) -> Result<u64> {
    let field = present(
        page.get(NEXT_PAGE_AT..NEXT_PAGE_AT + PAGE_ID_SIZE),
        "an overflow page too short",
    )?;
    u64_of(field, "an overflow page too short")
}

/// Writes the next page of an overflow chain into an overflow page.
pub fn set_next_overflow_page(page: &mut [u8], next: u64) {
    page[NEXT_PAGE_AT..NEXT_PAGE_AT + PAGE_ID_SIZE].copy_from_slice(&next.to_le_bytes());
}

/// Points entry `i` of the node in `page` at page `id`, in place: a
/// branch entry's child, or the first overflow page of a leaf entry's
/// value. Nothing else of the page changes.
///
/// ```
/// use mappedpages_btree::node::{set_page_ref, Node, NodeRef, PAGE};
/// let mut page = [0u8; PAGE];
/// Node::branch(vec![(Vec::new(), 5), (b"m".to_vec(), 6)]).encode(&mut page);
/// set_page_ref(&mut page, 1, 9)?;
/// assert_eq!(NodeRef::new(&page)?.child(1)?, 9);
/// # Ok::<(), mappedpages_btree::Error>(())
/// ```
///
/// # Errors
/// [`Error::Corrupt`] if the page is no node, has no entry `i`, or the
/// entry names no page (an inline value).
pub fn set_page_ref(page: &mut [u8], i: usize, id: u64) -> Result<()> {
    let node = NodeRef::new(page)?;
    let at = match node.kind() {
        Kind::Branch => {
            node.child(i)?;
            node.payload_range(i)?.start
        }
        Kind::Leaf => match node.value(i)? {
            LeafValue::Overflow { .. } => node.payload_range(i)?.start + FIRST_PAGE_AT,
            LeafValue::Inline(_) => return Err(Error::Corrupt("an inline value names no page")),
        },
    };
    page[at..at + PAGE_ID_SIZE].copy_from_slice(&id.to_le_bytes());
    Ok(())
}

/// The kind of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Holds keys and their values.
    Leaf = 1,
    /// Holds keys and the children below them.
    Branch = 2,
}

/// A leaf entry's value, as its payload gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeafValue<'a> {
    /// The value itself, kept in the leaf.
    Inline(&'a [u8]),
    /// A value in a chain of overflow pages.
    Overflow {
        /// The value's length in bytes.
        len: usize,
        /// The chain's first page.
        first: u64,
    },
}

impl<'a> LeafValue<'a> {
    /// Reads a leaf payload.
    ///
    /// ```
    /// use mappedpages_btree::node::LeafValue;
    /// assert_eq!(LeafValue::parse(&[0, 7, 8])?, LeafValue::Inline(&[7, 8]));
    /// let payload = LeafValue::overflow_payload(5000, 42);
    /// assert_eq!(LeafValue::parse(&payload)?, LeafValue::Overflow { len: 5000, first: 42 });
    /// assert!(LeafValue::parse(&[9]).is_err());
    /// # Ok::<(), mappedpages_btree::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] for an unknown tag, an overflow payload of another
    /// size, or an overflow value whose length no inline value could have,
    /// or longer than [`MAX_VALUE`] (so that no damaged length makes a read
    /// gather more).
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        match payload.get(TAG_AT) {
            Some(&INLINE_TAG) => Ok(LeafValue::Inline(&payload[INLINE_AT..])),
            Some(&OVERFLOW_TAG) if payload.len() == OVERFLOW_PAYLOAD => {
                let len = &payload[VALUE_LEN_AT..FIRST_PAGE_AT];
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                if len <= MAX_INLINE || len > MAX_VALUE {
                    return Err(Error::Corrupt("an overflow value of a bad length"));
                }
                let first = u64_of(&payload[FIRST_PAGE_AT..], "bad overflow page id")?;
                Ok(LeafValue::Overflow { len, first })
            }
            _ => Err(Error::Corrupt("bad leaf payload")),
        }
    }

    /// The payload of a value of `len` bytes held in the chain starting at
    /// `first`.
    pub fn overflow_payload(len: usize, first: u64) -> [u8; OVERFLOW_PAYLOAD] {
        let mut payload = [0; OVERFLOW_PAYLOAD];
        payload[TAG_AT] = OVERFLOW_TAG;
        payload[VALUE_LEN_AT..FIRST_PAGE_AT].copy_from_slice(&(len as u32).to_le_bytes());
        payload[FIRST_PAGE_AT..].copy_from_slice(&first.to_le_bytes());
        payload
    }
}

/// Where entry `i` lies in its page: its start, key, payload and end.
struct Span {
    key: usize,
    payload: usize,
    end: usize,
}

impl Span {
    fn start(&self) -> usize {
        self.key - ENTRY_HEADER
    }
}

/// A node page, read where it lies.
///
/// ```
/// use mappedpages_btree::node::{Kind, Node, NodeRef, PAGE};
/// let mut page = [0u8; PAGE];
/// Node::leaf(b"key", vec![0, 1, 2]).encode(&mut page);
/// let node = NodeRef::new(&page)?;
/// assert_eq!((node.kind(), node.len()), (Kind::Leaf, 1));
/// assert_eq!(node.entry(0)?, (&b"key"[..], &[0, 1, 2][..]));
/// assert_eq!(node.search(b"key")?, Ok(0));
/// assert_eq!(node.search(b"zzz")?, Err(1));
/// assert!(node.entry(1).is_err());
/// # Ok::<(), mappedpages_btree::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    page: &'a [u8],
    kind: Kind,
    len: usize,
}

impl<'a> NodeRef<'a> {
    /// Reads a node page's header.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the page is shorter than a header, names no
    /// kind, or has no entry or more than its page can list.
    pub fn new(page: &'a [u8]) -> Result<Self> {
        let kind = match page.get(KIND_AT) {
            Some(1) => Kind::Leaf,
            Some(2) => Kind::Branch,
            _ => return Err(Error::Corrupt("not a node page")),
        };
        let len = present(u16_at(page, COUNT_AT), "not a node page")?;
        if len == 0 || entries_start(len) > page.len() {
            return Err(Error::Corrupt("bad entry count"));
        }
        Ok(NodeRef { page, kind, len })
    }

    /// Leaf or branch.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The number of entries, at least 1.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Never: a node has an entry. For symmetry with [`NodeRef::len`].
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where entry `i` lies, checked against the page.
    fn span(&self, i: usize) -> Result<Span> {
        if i >= self.len {
            return Err(Error::Corrupt("an entry past the node's count"));
        }
        let start = length_at(self.page, HEADER + OFFSET_SIZE * i)?;
        if start < entries_start(self.len) || start + ENTRY_HEADER > self.page.len() {
            return Err(Error::Corrupt("entry offset outside the entries"));
        }
        let key_len = length_at(self.page, start + KEY_LEN_AT)?;
        let payload_len = length_at(self.page, start + PAYLOAD_LEN_AT)?;
        let key = start + ENTRY_HEADER;
        let (payload, end) = (key + key_len, key + key_len + payload_len);
        if end > self.page.len() {
            return Err(Error::Corrupt("entry past the page"));
        }
        Ok(Span { key, payload, end })
    }

    /// Key and payload of entry `i`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for `i` past the count, or an entry outside the
    /// page.
    pub fn entry(&self, i: usize) -> Result<(&'a [u8], &'a [u8])> {
        let span = self.span(i)?;
        Ok((
            &self.page[span.key..span.payload],
            &self.page[span.payload..span.end],
        ))
    }

    /// The key of entry `i`.
    pub fn key(&self, i: usize) -> Result<&'a [u8]> {
        Ok(self.entry(i)?.0)
    }

    /// The child of entry `i` of a branch.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the payload is not a page id, or as
    /// [`NodeRef::entry`].
    pub fn child(&self, i: usize) -> Result<u64> {
        u64_of(self.entry(i)?.1, "bad child id")
    }

    /// The value of entry `i` of a leaf.
    pub fn value(&self, i: usize) -> Result<LeafValue<'a>> {
        LeafValue::parse(self.entry(i)?.1)
    }

    /// Bytes in use: entries are written in order, so the last one ends it.
    pub fn used(&self) -> Result<usize> {
        Ok(self.span(self.len - 1)?.end)
    }

    /// Entries `from..` of the node: the first whose key is greater than
    /// `key`, or `Ok` with the index of the one equal to it.
    fn search_from(&self, from: usize, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        let (mut low, mut high) = (from.min(self.len), self.len);
        while low < high {
            let mid = low + (high - low) / 2;
            match self.key(mid)?.cmp(key) {
                Ordering::Less => low = mid + 1,
                Ordering::Greater => high = mid,
                Ordering::Equal => return Ok(Ok(mid)),
            }
        }
        Ok(Err(low))
    }

    /// In a leaf: `Ok(i)` if entry `i` holds `key`, else `Err(i)` where it
    /// would go.
    pub fn search(&self, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        self.search_from(0, key)
    }

    /// In a branch: the child whose subtree may hold `key`.
    pub fn child_for(&self, key: &[u8]) -> Result<usize> {
        // The first entry's empty key stands for "anything below entry 1".
        Ok(match self.search_from(1, key)? {
            Ok(i) => i,
            Err(i) => i - 1,
        })
    }

    /// Where the page's payload of entry `i` lies, for a change in place
    /// of a page id it holds ([`NodeRef::child`], [`LeafValue::Overflow`]).
    pub fn payload_range(&self, i: usize) -> Result<Range<usize>> {
        let span = self.span(i)?;
        Ok(span.payload..span.end)
    }

    /// How `edit` changes this page.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the edit names an entry the node does not have
    /// (or removes its last one), or the entries do not lie in order.
    pub fn plan(&self, edit: &Edit) -> Result<Plan> {
        let (i, removed, key) = match *edit {
            Edit::Insert(i, key, _) => (i, 0, key.len()),
            Edit::Replace(i, _) => (i, 1, self.key(i)?.len()),
            Edit::Remove(i) => (i, 1, 0),
        };
        let inserted = usize::from(edit.payload().is_some());
        if i + removed > self.len || self.len - removed + inserted == 0 {
            return Err(Error::Corrupt("an edit past the node's entries"));
        }
        let used = self.used()?;
        let start = |i: usize| -> Result<usize> {
            Ok(if i < self.len {
                self.span(i)?.start()
            } else {
                used
            })
        };
        let (at, end) = (start(i)?, start(i + removed)?);
        let old_start = entries_start(self.len);
        if !(old_start <= at && at <= end && end <= used) {
            return Err(Error::Corrupt("entries out of order"));
        }
        let len = self.len - removed + inserted;
        let payload = edit.payload().map_or(0, |p| p[0].len() + p[1].len());
        Ok(Plan {
            kind: self.kind,
            len,
            old_start,
            new_start: entries_start(len),
            prefix: old_start..at,
            suffix: end..used,
            key: at + ENTRY_HEADER..at + ENTRY_HEADER + key,
            entry: match inserted {
                1 => ENTRY_HEADER + key + payload,
                _ => 0,
            },
        })
    }

    /// The node, copied out to be changed.
    pub fn decode(self) -> Result<Node> {
        let entries = (0..self.len)
            .map(|i| self.entry(i).map(|(k, p)| (k.to_vec(), p.to_vec())))
            .collect::<Result<_>>()?;
        Ok(Node {
            kind: self.kind,
            entries,
        })
    }
}

/// A change of one entry. A payload is written from its parts, in order.
#[derive(Clone, Copy, Debug)]
pub enum Edit<'a> {
    /// A new entry at index `.0`, with key `.1`.
    Insert(usize, &'a [u8], [&'a [u8]; 2]),
    /// A new payload under the same key.
    Replace(usize, [&'a [u8]; 2]),
    /// Entry `.0` removed.
    Remove(usize),
}

impl<'a> Edit<'a> {
    fn payload(&self) -> Option<[&'a [u8]; 2]> {
        match *self {
            Edit::Insert(_, _, p) | Edit::Replace(_, p) => Some(p),
            Edit::Remove(_) => None,
        }
    }
}

/// Where an [`Edit`] moves a page's bytes: the entries before the edited
/// one (`prefix`) shift with the offset table, those after it (`suffix`)
/// also by the change in size of the edited one.
///
/// ```
/// use mappedpages_btree::node::{Edit, Node, NodeRef, PAGE};
/// let mut page = [0u8; PAGE];
/// Node::leaf(b"b", vec![0, 1]).encode(&mut page);
/// let edit = Edit::Insert(0, b"a", [&[0], b"first"]);
/// let plan = NodeRef::new(&page)?.plan(&edit)?;
/// assert!(plan.fits());
/// let mut copy = [0u8; PAGE];
/// plan.write(Some(&page), &mut copy, &edit)?;
/// let node = NodeRef::new(&copy)?;
/// assert_eq!(node.entry(0)?, (&b"a"[..], &b"\0first"[..]));
/// assert_eq!(node.entry(1)?, (&b"b"[..], &[0, 1][..]));
/// # Ok::<(), mappedpages_btree::Error>(())
/// ```
#[derive(Debug)]
pub struct Plan {
    kind: Kind,
    len: usize,
    /// Where the old entries, and the new ones, begin.
    old_start: usize,
    new_start: usize,
    prefix: Range<usize>,
    suffix: Range<usize>,
    /// The edited entry's key in the old page, and the new entry's size.
    key: Range<usize>,
    entry: usize,
}

impl Plan {
    fn new_used(&self) -> usize {
        self.new_start + self.prefix.len() + self.entry + self.suffix.len()
    }

    /// The bytes the edited node uses.
    pub fn used_after(&self) -> usize {
        self.new_used()
    }

    /// Whether the edited node fits a page.
    pub fn fits(&self) -> bool {
        self.new_used() <= PAGE
    }

    /// Writes the edited node into `page`, from `src` (the page the plan was
    /// made on) or, without one, from `page` itself. Each move goes where
    /// the other has been read already.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the result does not fit `page` or the entries
    /// of the old page do not add up to its offsets; `page` is then
    /// partly written.
    pub fn write(&self, src: Option<&[u8]>, page: &mut [u8], edit: &Edit) -> Result<()> {
        let used = self.new_used();
        let old_used = self.suffix.end;
        if used > page.len() || src.map_or(old_used > page.len(), |src| old_used > src.len()) {
            return Err(Error::Corrupt("an edited node past its page"));
        }
        let mv = |page: &mut [u8], from: Range<usize>, to: usize| match src {
            Some(src) => page[to..to + from.len()].copy_from_slice(&src[from]),
            None => page.copy_within(from, to),
        };
        let entry_at = self.new_start + self.prefix.len();
        let suffix_to = entry_at + self.entry;
        if suffix_to >= self.suffix.start {
            mv(page, self.suffix.clone(), suffix_to);
            mv(page, self.prefix.clone(), self.new_start);
        } else {
            mv(page, self.prefix.clone(), self.new_start);
            mv(page, self.suffix.clone(), suffix_to);
        }
        if let Some(parts) = edit.payload() {
            let key_at = entry_at + ENTRY_HEADER;
            let key_len = match *edit {
                Edit::Insert(_, key, _) => {
                    page[key_at..][..key.len()].copy_from_slice(key);
                    key.len()
                }
                _ => {
                    mv(page, self.key.clone(), key_at);
                    self.key.len()
                }
            };
            write_lengths(page, entry_at, key_len, self.entry - ENTRY_HEADER - key_len);
            let mut at = key_at + key_len;
            for part in parts {
                page[at..][..part.len()].copy_from_slice(part);
                at += part.len();
            }
        }
        write_header(page, self.kind, self.len);
        if used == old_used && self.old_start == self.new_start {
            // The same entries at the same places: the offsets hold.
            if let Some(src) = src {
                page[HEADER..self.new_start].copy_from_slice(&src[HEADER..self.new_start]);
            }
        } else {
            let mut at = self.new_start;
            for i in 0..self.len {
                if at + ENTRY_HEADER > used {
                    return Err(Error::Corrupt("entry past the page"));
                }
                set_u16(page, HEADER + OFFSET_SIZE * i, at);
                let key_len = length_at(page, at + KEY_LEN_AT)?;
                let payload_len = length_at(page, at + PAYLOAD_LEN_AT)?;
                at += ENTRY_HEADER + key_len + payload_len;
            }
            if at != used {
                return Err(Error::Corrupt("entry lengths differ from offsets"));
            }
        }
        let stale = if src.is_some() { page.len() } else { old_used };
        page[used..stale.max(used)].fill(0);
        Ok(())
    }
}

/// The lower bound a parent files a node under whose first key is
/// `first`, cut off after a node of `kind` whose last key is `last`. For
/// leaves, the shortest prefix of `first` above `last`, so that branches
/// keep short keys; for branches, `first` itself (the node cut off gives up
/// its first key to its parent).
///
/// ```
/// use mappedpages_btree::node::{separator, Kind};
/// assert_eq!(separator(Kind::Leaf, b"apple", b"apricot"), b"apr");
/// assert_eq!(separator(Kind::Branch, b"apple", b"apricot"), b"apricot");
/// ```
pub fn separator(kind: Kind, last: &[u8], first: &[u8]) -> Vec<u8> {
    match kind {
        Kind::Branch => first.to_vec(),
        Kind::Leaf => {
            let common = last.iter().zip(first).take_while(|(a, b)| a == b).count();
            first[..(common + 1).min(first.len())].to_vec()
        }
    }
}

/// A node being changed: its entries copied out of their page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Leaf or branch.
    pub kind: Kind,
    /// Key and payload (leaf payload, or child id in little-endian bytes).
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Node {
    /// A leaf of one entry.
    pub fn leaf(key: &[u8], payload: Vec<u8>) -> Node {
        Node {
            kind: Kind::Leaf,
            entries: vec![(key.to_vec(), payload)],
        }
    }

    /// A branch over `children`, given as (lower bound, page id); the first
    /// one's bound is dropped.
    pub fn branch(children: Vec<(Vec<u8>, u64)>) -> Node {
        let mut node = Node {
            kind: Kind::Branch,
            entries: children
                .into_iter()
                .map(|(key, id)| (key, id.to_le_bytes().to_vec()))
                .collect(),
        };
        if let Some(first) = node.entries.first_mut() {
            first.0.clear();
        }
        node
    }

    /// The node with `edit` made.
    ///
    /// # Panics
    /// If the edit names an entry the node does not have.
    pub fn apply(&mut self, edit: &Edit) {
        match *edit {
            Edit::Insert(i, key, payload) => {
                self.entries.insert(i, (key.to_vec(), payload.concat()))
            }
            Edit::Replace(i, payload) => self.entries[i].1 = payload.concat(),
            Edit::Remove(i) => drop(self.entries.remove(i)),
        }
    }

    /// The child of entry `i` of a branch.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if there is no entry `i` or it holds no page id.
    pub fn child(&self, i: usize) -> Result<u64> {
        let payload = present(self.entries.get(i), "no such child")?;
        u64_of(&payload.1, "bad child id")
    }

    /// Points entry `i` of a branch at `id`.
    ///
    /// # Panics
    /// If there is no entry `i`.
    pub fn set_child(&mut self, i: usize, id: u64) {
        self.entries[i].1 = id.to_le_bytes().to_vec();
    }

    /// Puts the pieces a child was stored as in its place.
    pub fn replace_child(&mut self, i: usize, pieces: Vec<(Vec<u8>, u64)>) {
        let mut pieces = pieces.into_iter();
        if let Some((_, first)) = pieces.next() {
            self.set_child(i, first);
        }
        for (n, (key, id)) in pieces.enumerate() {
            self.entries
                .insert(i + 1 + n, (key, id.to_le_bytes().to_vec()));
        }
    }

    /// Removes entry `i` of a branch; the first entry's key stays empty.
    pub fn remove_child(&mut self, i: usize) {
        self.entries.remove(i);
        if let Some(first) = self.entries.first_mut() {
            first.0.clear();
        }
    }

    /// The bytes the node takes in a page.
    pub fn size(&self) -> usize {
        node_size(self.entries.iter().map(|(k, p)| (&k[..], &p[..])))
    }

    /// Cuts a node too large for a page into pieces that fit, each with the
    /// lower bound its parent files it under (empty for the first). Halves
    /// when it can; three pieces when a large entry lands between others.
    /// With `fill`, for a node that grew at its end because keys arrive in
    /// ascending order, the first pieces take all they can instead: the
    /// next keys go past them, so a half-empty page would stay so.
    ///
    /// ```
    /// use mappedpages_btree::node::{Node, PAGE};
    /// let mut node = Node::leaf(b"k000", vec![0; 100]);
    /// for i in 1..60 {
    ///     node.entries.push((format!("k{i:03}").into_bytes(), vec![0; 100]));
    /// }
    /// let pieces = node.split(false)?;
    /// assert_eq!(pieces.len(), 2);
    /// assert!(pieces.iter().all(|(_, piece)| piece.size() <= PAGE));
    /// assert_eq!(pieces[1].0, b"k03"); // the shortest key above the first piece
    /// # Ok::<(), mappedpages_btree::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a node with an entry too large for a page on
    /// its own (only a damaged page decodes to one).
    pub fn split(mut self, fill: bool) -> Result<Vec<(Vec<u8>, Node)>> {
        let mut pieces = Vec::new();
        let mut bound = Vec::new();
        if self.entries.is_empty() {
            return Err(Error::Corrupt("a node without entries"));
        }
        while self.size() > PAGE {
            let half = if fill { PAGE } else { self.size() / 2 };
            let (mut size, mut cut) = (HEADER, 0);
            for (k, p) in &self.entries {
                let next = size + ENTRY_OVERHEAD + k.len() + p.len();
                if next > PAGE || (size >= half && cut > 0) {
                    break;
                }
                (size, cut) = (next, cut + 1);
            }
            if cut == 0 {
                return Err(Error::Corrupt("an entry larger than a page"));
            }
            let rest = Node {
                kind: self.kind,
                entries: self.entries.split_off(cut),
            };
            let next_bound = self.bound_before(&rest);
            pieces.push((bound, self.bounded()));
            (bound, self) = (next_bound, rest);
        }
        pieces.push((bound, self.bounded()));
        Ok(pieces)
    }

    /// The node with the first key of a branch dropped: its parent holds it.
    fn bounded(mut self) -> Node {
        if self.kind == Kind::Branch {
            self.entries[0].0.clear();
        }
        self
    }

    /// The lower bound of `next`, the piece cut off after this one. For
    /// leaves, the shortest prefix of its first key above this piece's last,
    /// so branches keep short keys; a branch gives up its first key.
    fn bound_before(&self, next: &Node) -> Vec<u8> {
        let last = &self.entries[self.entries.len() - 1].0;
        separator(self.kind, last, &next.entries[0].0)
    }

    /// Writes the node into a page.
    ///
    /// # Panics
    /// If it does not fit `page` ([`Node::split`] cuts it into pieces that
    /// fit) or has no entry.
    pub fn encode(&self, page: &mut [u8]) {
        assert!(self.size() <= page.len() && !self.entries.is_empty());
        let entries = self.entries.iter().map(|(k, p)| (&k[..], &p[..]));
        encode_entries(page, self.kind, entries);
    }
}

/// The bytes a node holding `entries` (keys and payloads) takes in a page.
pub fn node_size<'e>(entries: impl Iterator<Item = (&'e [u8], &'e [u8])>) -> usize {
    HEADER
        + entries
            .map(|(key, payload)| ENTRY_OVERHEAD + key.len() + payload.len())
            .sum::<usize>()
}

/// Writes a node of `kind` holding `entries` (keys and payloads, in order)
/// into `page`, as [`Node::encode`] does, from borrowed bytes: a node that
/// only loses entries is written without copying each one out first.
///
/// # Panics
/// If the entries do not fit `page`.
pub fn encode_entries<'e>(
    page: &mut [u8],
    kind: Kind,
    entries: impl ExactSizeIterator<Item = (&'e [u8], &'e [u8])>,
) {
    page.fill(0);
    let len = entries.len();
    write_header(page, kind, len);
    let mut at = entries_start(len);
    for (i, (key, payload)) in entries.enumerate() {
        set_u16(page, HEADER + OFFSET_SIZE * i, at);
        write_lengths(page, at, key.len(), payload.len());
        let key_at = at + ENTRY_HEADER;
        page[key_at..][..key.len()].copy_from_slice(key);
        page[key_at + key.len()..][..payload.len()].copy_from_slice(payload);
        at = key_at + key.len() + payload.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(value: &[u8]) -> Vec<u8> {
        [&[INLINE_TAG][..], value].concat()
    }

    fn leaf_of(pairs: &[(Vec<u8>, Vec<u8>)]) -> Node {
        Node {
            kind: Kind::Leaf,
            entries: pairs.iter().map(|(k, v)| (k.clone(), inline(v))).collect(),
        }
    }

    fn page_of(node: &Node) -> Vec<u8> {
        let mut page = vec![0; PAGE];
        node.encode(&mut page);
        page
    }

    fn key(i: usize) -> Vec<u8> {
        format!("key{i:05}").into_bytes()
    }

    #[test]
    fn encode_and_decode_round_trip_and_lay_out_the_table() {
        let node = leaf_of(&[(b"a".to_vec(), b"xy".to_vec()), (b"bc".to_vec(), vec![])]);
        let page = page_of(&node);
        assert_eq!(page[KIND_AT], Kind::Leaf as u8);
        assert_eq!(u16_at(&page, COUNT_AT), Some(2));
        let first = entries_start(2);
        assert_eq!(u16_at(&page, HEADER), Some(first));
        assert_eq!(u16_at(&page, first + KEY_LEN_AT), Some(1));
        assert_eq!(u16_at(&page, first + PAYLOAD_LEN_AT), Some(3));
        assert_eq!(&page[first + ENTRY_HEADER..][..4], b"a\0xy");
        let second = first + ENTRY_HEADER + 4;
        assert_eq!(u16_at(&page, HEADER + OFFSET_SIZE), Some(second));
        let read = NodeRef::new(&page).unwrap();
        assert_eq!(read.used().unwrap(), second + ENTRY_HEADER + 3);
        assert!(page[read.used().unwrap()..].iter().all(|&b| b == 0));
        assert_eq!(read.decode().unwrap(), node);

        let branch = Node::branch(vec![(b"ignored".to_vec(), 7), (b"m".to_vec(), 9)]);
        let page = page_of(&branch);
        let read = NodeRef::new(&page).unwrap();
        assert_eq!(read.kind(), Kind::Branch);
        assert_eq!(read.key(0).unwrap(), b"");
        assert_eq!((read.child(0).unwrap(), read.child(1).unwrap()), (7, 9));
        assert_eq!(read.child_for(b"a").unwrap(), 0);
        assert_eq!(read.child_for(b"m").unwrap(), 1);
        assert_eq!(read.child_for(b"z").unwrap(), 1);
        assert_eq!(read.decode().unwrap(), branch);
    }

    #[test]
    fn leaf_values_round_trip_and_bad_ones_are_refused() {
        let payload = LeafValue::overflow_payload(MAX_VALUE, u64::MAX);
        assert_eq!(
            LeafValue::parse(&payload).unwrap(),
            LeafValue::Overflow {
                len: MAX_VALUE,
                first: u64::MAX
            }
        );
        for bad_len in [MAX_INLINE, MAX_VALUE + 1] {
            let payload = LeafValue::overflow_payload(bad_len, 3);
            assert!(LeafValue::parse(&payload).is_err(), "{bad_len}");
        }
        assert!(LeafValue::parse(&payload[..OVERFLOW_PAYLOAD - 1]).is_err());
        assert!(LeafValue::parse(&[]).is_err());
        assert_eq!(
            LeafValue::parse(&[INLINE_TAG]).unwrap(),
            LeafValue::Inline(&[])
        );
    }

    #[test]
    fn readers_refuse_what_lies_outside_the_page() {
        assert!(NodeRef::new(&[]).is_err());
        assert!(NodeRef::new(&[1, 0, 1]).is_err(), "a header cut short");
        assert!(NodeRef::new(&[3, 0, 1, 0, 0, 0]).is_err(), "no such kind");
        assert!(NodeRef::new(&[1, 0, 0, 0]).is_err(), "no entry");
        assert!(
            NodeRef::new(&[1, 0, 2, 0, 6, 0]).is_err(),
            "two offsets, room for one"
        );

        let mut page = page_of(&leaf_of(&[(b"a".to_vec(), b"b".to_vec())]));
        let node = NodeRef::new(&page).unwrap();
        assert!(node.entry(1).is_err());
        assert!(node.plan(&Edit::Remove(0)).is_err(), "the last entry");
        assert!(node.plan(&Edit::Replace(1, [&[], &[]])).is_err());
        assert!(node.plan(&Edit::Insert(2, b"c", [&[], &[]])).is_err());
        // An offset into the offset table, or past the page.
        for offset in [HEADER as u16, PAGE as u16 - 2, u16::MAX] {
            page[HEADER..HEADER + 2].copy_from_slice(&offset.to_le_bytes());
            let node = NodeRef::new(&page).unwrap();
            assert!(node.entry(0).is_err(), "offset {offset}");
            assert!(node.search(b"a").is_err(), "offset {offset}");
        }
        // A key length past the page.
        let mut page = page_of(&leaf_of(&[(b"a".to_vec(), b"b".to_vec())]));
        let at = entries_start(1) + KEY_LEN_AT;
        page[at..at + 2].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(NodeRef::new(&page).unwrap().entry(0).is_err());
        // A branch whose payload is no page id.
        let mut branch = Node::branch(vec![(Vec::new(), 1)]);
        branch.entries[0].1.pop();
        let page = page_of(&branch);
        assert!(NodeRef::new(&page).unwrap().child(0).is_err());
        assert!(NodeRef::new(&page)
            .unwrap()
            .decode()
            .unwrap()
            .child(0)
            .is_err());
    }

    /// Every edit, made in place and while copying, gives the node the
    /// decoded node gets from the same edit.
    #[test]
    fn edits_match_the_decoded_node() {
        let pairs: Vec<_> = (0..10)
            .map(|i| (key(i * 2), vec![i as u8; i * 3]))
            .collect();
        let base = leaf_of(&pairs);
        let page = page_of(&base);
        let long = inline(&[9; 40]);
        let edits = [
            Edit::Insert(0, b"a", [&[INLINE_TAG], b"first"]),
            Edit::Insert(4, b"key00007", [&long, &[]]),
            Edit::Insert(10, b"zz", [&[INLINE_TAG], b""]),
            Edit::Replace(0, [&[INLINE_TAG], b""]),
            Edit::Replace(5, [&long, b"more"]),
            Edit::Replace(9, [&[INLINE_TAG], b"x"]),
            Edit::Remove(0),
            Edit::Remove(5),
            Edit::Remove(9),
        ];
        for edit in edits {
            let mut expected = base.clone();
            expected.apply(&edit);
            let plan = NodeRef::new(&page).unwrap().plan(&edit).unwrap();
            assert!(plan.fits());
            let mut copy = vec![0xAA; PAGE];
            plan.write(Some(&page), &mut copy, &edit).unwrap();
            let mut in_place = page.clone();
            plan.write(None, &mut in_place, &edit).unwrap();
            assert_eq!(copy, page_of(&expected), "{edit:?} copied");
            assert_eq!(in_place, page_of(&expected), "{edit:?} in place");
        }
    }

    #[test]
    fn an_edit_that_overflows_the_page_does_not_fit() {
        let pairs: Vec<_> = (0..3).map(|i| (key(i), vec![1; 1300])).collect();
        let page = page_of(&leaf_of(&pairs));
        let big = inline(&[2; 1300]);
        let plan = NodeRef::new(&page)
            .unwrap()
            .plan(&Edit::Insert(3, b"z", [&big, &[]]))
            .unwrap();
        assert!(!plan.fits());
    }

    fn assert_pieces_fit(pieces: &[(Vec<u8>, Node)], entries: usize) {
        assert!(pieces[0].0.is_empty());
        assert!(pieces
            .iter()
            .all(|(_, p)| p.size() <= PAGE && !p.entries.is_empty()));
        let total: usize = pieces.iter().map(|(_, p)| p.entries.len()).sum();
        assert_eq!(total, entries);
        for pair in pieces.windows(2) {
            let (before, (bound, after)) = (&pair[0].1, &pair[1]);
            let last = &before.entries.last().unwrap().0;
            if after.kind == Kind::Leaf {
                assert!(last < bound && *bound <= after.entries[0].0);
            }
        }
    }

    #[test]
    fn a_leaf_splits_in_halves_with_short_bounds() {
        let pairs: Vec<_> = (0..80).map(|i| (key(i), vec![0; 60])).collect();
        let pieces = leaf_of(&pairs).split(false).unwrap();
        assert_eq!(pieces.len(), 2);
        assert_pieces_fit(&pieces, 80);
        let sizes: Vec<_> = pieces.iter().map(|(_, p)| p.size()).collect();
        assert!(sizes[0].abs_diff(sizes[1]) < 200, "{sizes:?}");
        assert_eq!(
            pieces[1].0, b"key0004",
            "the shortest key above the first piece"
        );
    }

    #[test]
    fn a_filling_split_leaves_the_first_piece_full() {
        let pairs: Vec<_> = (0..80).map(|i| (key(i), vec![0; 60])).collect();
        let pieces = leaf_of(&pairs).split(true).unwrap();
        assert_pieces_fit(&pieces, 80);
        let entry = ENTRY_OVERHEAD + key(0).len() + 61;
        assert!(pieces[0].1.size() + entry > PAGE, "the first piece is full");
    }

    #[test]
    fn a_large_entry_between_others_makes_three_pieces() {
        let mut large = key(1);
        large.resize(MAX_KEY, b'x');
        let pairs = [
            (key(0), vec![0; 2040]),
            (large, vec![0; MAX_INLINE]),
            (key(2), vec![0; 2040]),
        ];
        // The large one fits beside neither of the others.
        let pieces = leaf_of(&pairs).split(false).unwrap();
        assert_eq!(pieces.len(), 3);
        assert_pieces_fit(&pieces, 3);
    }

    #[test]
    fn a_branch_split_moves_a_key_up() {
        let children: Vec<_> = (0..300).map(|i| (key(i), i as u64)).collect();
        let pieces = Node::branch(children).split(false).unwrap();
        assert_pieces_fit(&pieces, 300);
        for (bound, piece) in &pieces[1..] {
            // The parent holds the piece's lower bound; the piece, an empty key.
            assert!(bound.starts_with(b"key"));
            assert!(piece.entries[0].0.is_empty());
            let first = u64_of(&piece.entries[0].1, "id").unwrap() as usize;
            assert_eq!(*bound, key(first));
        }
    }

    #[test]
    fn an_entry_larger_than_a_page_is_refused() {
        let node = leaf_of(&[(b"a".to_vec(), vec![0; PAGE])]);
        assert!(node.split(false).is_err());
        let empty = Node {
            kind: Kind::Leaf,
            entries: Vec::new(),
        };
        assert!(empty.split(false).is_err());
    }
}

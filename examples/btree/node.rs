//! The page format of a B+tree node, read in place or decoded to be changed.
//!
//! A node page holds its kind (leaf or branch), its entry count, one offset
//! per entry, then the entries one after the other: key length, payload
//! length (two bytes each), key, payload. A branch's payload is a child's
//! page id, and its key the smallest key that child's subtree may hold; the
//! first entry of a branch has an empty key, since everything below the
//! branch's own lower bound goes there. A leaf's payload is a tag byte and
//! then either the value (tag 0, values up to [`MAX_INLINE`]) or, for a
//! longer one (tag 1), the value's length (u32) and the first of the
//! overflow pages holding it (u64). An overflow page holds the id of the
//! next page of its chain (u64, 0 on the last) and [`OVERFLOW_DATA`] bytes
//! of the value; the value's length says how much of the last page is used.
//! Values are never changed, so a leaf copied to a fresh page names the
//! same chain, and the chain is freed when its value is replaced or removed.
//!
//! Reads search a page where it lies in the map, without copying it. A
//! change of one entry ([`Edit`]) that fits moves the bytes around it: in
//! the page itself when the transaction wrote it already, else while
//! copying it into a fresh page. Only a node that must split or merge is
//! decoded into a [`Node`], changed, and encoded into pages again.

use std::fmt;
use std::ops::Range;

use mappedpages::MappedPageError;

pub const PAGE: usize = 4096;
/// Kind (1 byte), unused byte, entry count (u16).
pub const HEADER: usize = 4;
/// The offset of an entry, and its two lengths.
pub const ENTRY_OVERHEAD: usize = 2 + 4;
/// Keys and inline values this large still leave two entries of each size
/// in a branch or one in a leaf, so a node always splits into pieces that fit.
pub const MAX_KEY: usize = 1024;
pub const MAX_INLINE: usize = 2048;
pub const MAX_VALUE: usize = 1 << 20;
pub const OVERFLOW_DATA: usize = PAGE - 8;
/// The tag byte that starts a leaf payload holding its value.
pub const INLINE: &[u8] = &[0];
const OVERFLOW: u8 = 1;

#[derive(Debug)]
pub enum Error {
    Pager(MappedPageError),
    KeyTooLarge(usize),
    ValueTooLarge(usize),
    Corrupt(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Pager(e) => write!(f, "{e}"),
            Error::KeyTooLarge(n) => write!(f, "a key of {n} bytes (at most {MAX_KEY})"),
            Error::ValueTooLarge(n) => write!(f, "a value of {n} bytes (at most {MAX_VALUE})"),
            Error::Corrupt(what) => write!(f, "damaged tree: {what}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<MappedPageError> for Error {
    fn from(e: MappedPageError) -> Self {
        Error::Pager(e)
    }
}

pub type Result<T> = std::result::Result<T, Error>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Leaf = 1,
    Branch = 2,
}

fn u16_at(bytes: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// Writes `value` (under 2^16: a page offset, count or length) at `at`.
fn set_u16(bytes: &mut [u8], at: usize, value: usize) {
    bytes[at..at + 2].copy_from_slice(&(value as u16).to_le_bytes());
}

/// Writes a node page's header: its kind and entry count.
fn write_header(page: &mut [u8], kind: Kind, len: usize) {
    page[..2].copy_from_slice(&[kind as u8, 0]);
    set_u16(page, 2, len);
}

/// Writes the two lengths that start an entry at `at`.
fn write_lengths(page: &mut [u8], at: usize, key_len: usize, payload_len: usize) {
    set_u16(page, at, key_len);
    set_u16(page, at + 2, payload_len);
}

/// A leaf entry's value, as its payload gives it.
pub enum Value<'a> {
    Inline(&'a [u8]),
    Overflow { len: usize, first: u64 },
}

impl<'a> Value<'a> {
    pub fn parse(payload: &'a [u8]) -> Result<Self> {
        match payload.split_first() {
            Some((0, value)) => Ok(Value::Inline(value)),
            Some((&OVERFLOW, at)) if at.len() == 12 => Ok(Value::Overflow {
                len: u32::from_le_bytes(at[..4].try_into().expect("4")) as usize,
                first: u64::from_le_bytes(at[4..].try_into().expect("8")),
            }),
            _ => Err(Error::Corrupt("bad leaf payload")),
        }
    }

    /// The payload of a value held in the chain starting at `first`.
    pub fn overflow(len: usize, first: u64) -> [u8; 13] {
        let mut payload = [OVERFLOW; 13];
        payload[1..5].copy_from_slice(&(len as u32).to_le_bytes());
        payload[5..].copy_from_slice(&first.to_le_bytes());
        payload
    }
}

/// A node page, read where it lies.
#[derive(Clone, Copy)]
pub struct NodeRef<'a> {
    page: &'a [u8],
    kind: Kind,
    len: usize,
}

impl<'a> NodeRef<'a> {
    pub fn new(page: &'a [u8]) -> Result<Self> {
        let kind = match page[0] {
            1 => Kind::Leaf,
            2 => Kind::Branch,
            _ => return Err(Error::Corrupt("not a node page")),
        };
        let len = u16_at(page, 2);
        if len == 0 || HEADER + 2 * len > page.len() {
            return Err(Error::Corrupt("bad entry count"));
        }
        Ok(NodeRef { page, kind, len })
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The bytes of entry `i`, from its offset to the end of its payload.
    fn span(&self, i: usize) -> Result<(usize, usize, usize)> {
        let at = u16_at(self.page, HEADER + 2 * i);
        if at + 4 > self.page.len() {
            return Err(Error::Corrupt("entry offset past the page"));
        }
        let (key_len, payload_len) = (u16_at(self.page, at), u16_at(self.page, at + 2));
        let end = at + 4 + key_len + payload_len;
        if end > self.page.len() {
            return Err(Error::Corrupt("entry past the page"));
        }
        Ok((at + 4, at + 4 + key_len, end))
    }

    /// Key and payload of entry `i`.
    pub fn entry(&self, i: usize) -> Result<(&'a [u8], &'a [u8])> {
        let (key, payload, end) = self.span(i)?;
        Ok((&self.page[key..payload], &self.page[payload..end]))
    }

    pub fn child(&self, i: usize) -> Result<u64> {
        let payload = self.entry(i)?.1;
        let bytes = payload
            .try_into()
            .map_err(|_| Error::Corrupt("bad child id"))?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Bytes in use: entries are written in order, so the last one ends it.
    pub fn used(&self) -> Result<usize> {
        Ok(self.span(self.len - 1)?.2)
    }

    /// Entries `from..` of the node: the first whose key is greater than
    /// `key`, or `Ok` with the index of the one equal to it.
    fn search_from(&self, from: usize, key: &[u8]) -> Result<std::result::Result<usize, usize>> {
        let (mut low, mut high) = (from, self.len);
        while low < high {
            let mid = low + (high - low) / 2;
            match self.entry(mid)?.0.cmp(key) {
                std::cmp::Ordering::Less => low = mid + 1,
                std::cmp::Ordering::Greater => high = mid,
                std::cmp::Ordering::Equal => return Ok(Ok(mid)),
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

    /// How `edit` changes this page; it must leave an entry.
    pub fn plan(&self, edit: &Edit) -> Result<Plan> {
        let (i, removed, key) = match *edit {
            Edit::Insert(i, key, _) => (i, 0, key.len()),
            Edit::Replace(i, _) => (i, 1, self.entry(i)?.0.len()),
            Edit::Remove(i) => (i, 1, 0),
        };
        let start = |i: usize| -> Result<usize> {
            Ok(if i < self.len {
                self.span(i)?.0 - 4
            } else {
                self.used()?
            })
        };
        let (at, end) = (start(i)?, start(i + removed)?);
        let len = self.len - removed + usize::from(edit.payload().is_some());
        let payload = edit.payload().map_or(0, |p| p[0].len() + p[1].len());
        Ok(Plan {
            kind: self.kind,
            len,
            old_start: HEADER + 2 * self.len,
            new_start: HEADER + 2 * len,
            prefix: HEADER + 2 * self.len..at,
            suffix: end..self.used()?,
            key: at + 4..at + 4 + key,
            entry: if edit.payload().is_some() {
                4 + key + payload
            } else {
                0
            },
        })
    }

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
#[derive(Clone, Copy)]
pub enum Edit<'a> {
    Insert(usize, &'a [u8], [&'a [u8]; 2]),
    /// A new payload under the same key.
    Replace(usize, [&'a [u8]; 2]),
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

    pub fn fits(&self) -> bool {
        self.new_used() <= PAGE
    }

    /// Writes the edited node into `page`, from `src` or, without one, from
    /// `page` itself. Each move goes where the other has been read already.
    pub fn write(&self, src: Option<&[u8]>, page: &mut [u8], edit: &Edit) -> Result<()> {
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
            let key_len = match *edit {
                Edit::Insert(_, key, _) => {
                    page[entry_at + 4..][..key.len()].copy_from_slice(key);
                    key.len()
                }
                _ => {
                    mv(page, self.key.clone(), entry_at + 4);
                    self.key.len()
                }
            };
            write_lengths(page, entry_at, key_len, self.entry - 4 - key_len);
            let mut at = entry_at + 4 + key_len;
            for part in parts {
                page[at..][..part.len()].copy_from_slice(part);
                at += part.len();
            }
        }
        write_header(page, self.kind, self.len);
        let (used, old_used) = (self.new_used(), self.suffix.end);
        if used == old_used && self.old_start == self.new_start {
            // The same entries at the same places: the offsets hold.
            if let Some(src) = src {
                page[HEADER..self.new_start].copy_from_slice(&src[HEADER..self.new_start]);
            }
        } else {
            let mut at = self.new_start;
            for i in 0..self.len {
                if at + 4 > used {
                    return Err(Error::Corrupt("entry past the page"));
                }
                set_u16(page, HEADER + 2 * i, at);
                at += 4 + u16_at(page, at) + u16_at(page, at + 2);
            }
            if at != used {
                return Err(Error::Corrupt("entry lengths differ from offsets"));
            }
        }
        let stale = if src.is_some() { PAGE } else { old_used };
        page[used..stale.max(used)].fill(0);
        Ok(())
    }
}

/// A node being changed.
#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    /// Key and payload (value, or child id in little-endian bytes).
    pub entries: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Node {
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
        node.entries[0].0.clear();
        node
    }

    /// The node with `edit` made.
    pub fn apply(&mut self, edit: &Edit) {
        match *edit {
            Edit::Insert(i, key, payload) => {
                self.entries.insert(i, (key.to_vec(), payload.concat()))
            }
            Edit::Replace(i, payload) => self.entries[i].1 = payload.concat(),
            Edit::Remove(i) => drop(self.entries.remove(i)),
        }
    }

    pub fn child(&self, i: usize) -> u64 {
        u64::from_le_bytes(self.entries[i].1[..8].try_into().expect("8-byte child id"))
    }

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

    pub fn size(&self) -> usize {
        HEADER
            + self
                .entries
                .iter()
                .map(|(k, p)| ENTRY_OVERHEAD + k.len() + p.len())
                .sum::<usize>()
    }

    /// Cuts a node too large for a page into pieces that fit, each with the
    /// lower bound its parent files it under (empty for the first). Halves
    /// when it can; three pieces when a large entry lands between others.
    /// With `fill`, for a node that grew at its end because keys arrive in
    /// ascending order, the first pieces take all they can instead: the
    /// next keys go past them, so a half-empty page would stay so.
    pub fn split(mut self, fill: bool) -> Vec<(Vec<u8>, Node)> {
        let mut pieces = Vec::new();
        let mut bound = Vec::new();
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
            let rest = Node {
                kind: self.kind,
                entries: self.entries.split_off(cut.max(1)),
            };
            let next_bound = self.bound_before(&rest);
            pieces.push((bound, self.bounded()));
            (bound, self) = (next_bound, rest);
        }
        pieces.push((bound, self.bounded()));
        pieces
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
        let first = &next.entries[0].0;
        match self.kind {
            Kind::Branch => first.clone(),
            Kind::Leaf => {
                let last = &self.entries[self.entries.len() - 1].0;
                let common = last.iter().zip(first).take_while(|(a, b)| a == b).count();
                first[..(common + 1).min(first.len())].to_vec()
            }
        }
    }

    /// Writes the node into a page; it must fit ([`Node::split`]).
    pub fn encode(&self, page: &mut [u8]) {
        assert!(self.size() <= page.len() && !self.entries.is_empty());
        page.fill(0);
        write_header(page, self.kind, self.entries.len());
        let mut at = HEADER + 2 * self.entries.len();
        for (i, (key, payload)) in self.entries.iter().enumerate() {
            set_u16(page, HEADER + 2 * i, at);
            write_lengths(page, at, key.len(), payload.len());
            page[at + 4..][..key.len()].copy_from_slice(key);
            page[at + 4 + key.len()..][..payload.len()].copy_from_slice(payload);
            at += 4 + key.len() + payload.len();
        }
    }
}

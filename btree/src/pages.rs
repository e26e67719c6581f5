//! Where the tree reads its pages from, and the values held in overflow
//! pages.

use std::borrow::Cow;

use mappedpages::{PageId, Snapshot, Transaction};

use crate::error::Result;
use crate::node::{next_overflow_page, LeafValue, NodeRef, OVERFLOW_DATA, OVERFLOW_HEADER, PAGE};

/// Where tree pages are read from: a snapshot (a [`ReadTxn`](crate::ReadTxn)),
/// or a write transaction, which sees its own changes.
pub trait Pages {
    /// The bytes of page `id`.
    ///
    /// # Errors
    /// The pager's, for a page that is not allocated or lies past the file.
    fn page(&self, id: u64) -> Result<&[u8]>;

    /// Page `id` read as a node.
    fn node(&self, id: u64) -> Result<NodeRef<'_>> {
        NodeRef::new(self.page(id)?)
    }
}

impl Pages for Snapshot<PAGE> {
    fn page(&self, id: u64) -> Result<&[u8]> {
        Ok(self.get(PageId(id))?.as_bytes())
    }
}

impl Pages for Transaction<'_, PAGE> {
    fn page(&self, id: u64) -> Result<&[u8]> {
        Ok(self.get(PageId(id))?.as_bytes())
    }
}

/// The overflow pages of a leaf value (none for an inline value), each
/// with the part of the value it holds. A chain ends when the value's
/// length is read, so a damaged next pointer that loops is read at most
/// as many pages as the longest value takes.
pub(crate) fn chain<'a, P: Pages>(
    pages: &'a P,
    value: LeafValue<'_>,
) -> impl Iterator<Item = Result<(u64, &'a [u8])>> + 'a {
    let (mut left, mut id) = match value {
        LeafValue::Inline(_) => (0, 0),
        LeafValue::Overflow { len, first } => (len, first),
    };
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let (here, part) = (id, left.min(OVERFLOW_DATA));
        let page = pages
            .page(here)
            .and_then(|page| Ok((next_overflow_page(page)?, page)));
        match page {
            Ok((next, page)) => {
                id = next;
                left -= part;
                Some(Ok((here, &page[OVERFLOW_HEADER..OVERFLOW_HEADER + part])))
            }
            Err(e) => {
                left = 0;
                Some(Err(e))
            }
        }
    })
}

/// A leaf payload's value: where it lies if inline, else gathered from its
/// overflow pages.
pub(crate) fn read_value<'a, P: Pages>(pages: &'a P, payload: &'a [u8]) -> Result<Cow<'a, [u8]>> {
    match LeafValue::parse(payload)? {
        LeafValue::Inline(value) => Ok(Cow::Borrowed(value)),
        overflow => {
            let mut value = Vec::new();
            for part in chain(pages, overflow) {
                value.extend_from_slice(part?.1);
            }
            Ok(Cow::Owned(value))
        }
    }
}

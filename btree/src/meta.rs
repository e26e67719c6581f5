//! The tree's root record: the first protected page of the file.
//!
//! A protected page is overwritten atomically by each commit, so it is
//! where the tree names its root. Every field is little-endian:
//!
//! | Offset          | Size | Field                                                  |
//! |-----------------|------|--------------------------------------------------------|
//! | [`MAGIC_AT`] (0)| 8    | `BTREEKV2`                                             |
//! | [`ROOT_AT`] (8) | 8    | the root node's page, 0 for an empty tree (page 0 is the pager's own) |
//! | [`LEN_AT`] (16) | 8    | the number of pairs                                    |
//! | [`VERSION_AT`] (24) | 8 | the number of commits                                 |
//! | [`HEIGHT_AT`] (32)  | 8 | levels of nodes, 0 for an empty tree                  |
//!
//! The height bounds every walk down the tree: each node met is checked
//! against it ([`Meta::check_depth`]), so that a damaged child pointer (one
//! pointing back up, say) is an error within `height` steps, never a walk
//! that goes on for ever.

use mappedpages::ProtectedPageId;

use crate::error::{Error, Result};
use crate::node::{Kind, PAGE};

/// The protected page naming the root: the first one of a new file.
pub(crate) const META: ProtectedPageId<PAGE> = ProtectedPageId(0);

const MAGIC: &[u8; 8] = b"BTREEKV2";
const MAGIC_AT: usize = 0;
const ROOT_AT: usize = 8;
const LEN_AT: usize = 16;
const VERSION_AT: usize = 24;
const HEIGHT_AT: usize = 32;
/// The size of each field after the magic (u64).
const FIELD_SIZE: usize = 8;

/// What the root record holds.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Meta {
    pub(crate) root: u64,
    pub(crate) len: u64,
    pub(crate) version: u64,
    pub(crate) height: u64,
}

impl Meta {
    /// Reads the record of a file of `pages` pages: a path down a tree
    /// visits each page at most once, so no valid height is larger.
    pub(crate) fn read(page: &[u8], pages: u64) -> Result<Meta> {
        let complete = page.len() >= HEIGHT_AT + FIELD_SIZE;
        if !complete || page.get(MAGIC_AT..MAGIC_AT + MAGIC.len()) != Some(MAGIC) {
            return Err(Error::Corrupt("no tree in the first protected page"));
        }
        let at = |offset: usize| {
            let field = page[offset..offset + FIELD_SIZE]
                .try_into()
                .expect("a u64 field");
            u64::from_le_bytes(field)
        };
        let meta = Meta {
            root: at(ROOT_AT),
            len: at(LEN_AT),
            version: at(VERSION_AT),
            height: at(HEIGHT_AT),
        };
        if (meta.root == 0) != (meta.height == 0) || meta.height > pages {
            return Err(Error::Corrupt("the tree's height does not fit its root"));
        }
        Ok(meta)
    }

    pub(crate) fn write(&self, page: &mut [u8]) {
        page[MAGIC_AT..MAGIC_AT + MAGIC.len()].copy_from_slice(MAGIC);
        let fields = [
            (ROOT_AT, self.root),
            (LEN_AT, self.len),
            (VERSION_AT, self.version),
            (HEIGHT_AT, self.height),
        ];
        for (at, value) in fields {
            page[at..at + FIELD_SIZE].copy_from_slice(&value.to_le_bytes());
        }
    }

    /// Checks that a node of `kind` may lie at `depth` (0 for the root):
    /// branches above the last level, leaves on it.
    pub(crate) fn check_depth(&self, kind: Kind, depth: usize) -> Result<()> {
        let depth = depth as u64;
        match kind {
            Kind::Branch if depth + 1 < self.height => Ok(()),
            Kind::Leaf if depth + 1 == self.height => Ok(()),
            _ => Err(Error::Corrupt(
                "a node at another depth than the tree's height",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_a_height_that_cannot_be() {
        let meta = Meta {
            root: 9,
            len: 100,
            version: 3,
            height: 2,
        };
        let mut page = vec![0; PAGE];
        meta.write(&mut page);
        let read = Meta::read(&page, 10).unwrap();
        assert_eq!(
            (read.root, read.len, read.version, read.height),
            (9, 100, 3, 2)
        );
        assert!(Meta::read(&page, 1).is_err(), "taller than the file");
        page[HEIGHT_AT] = 0;
        assert!(Meta::read(&page, 10).is_err(), "a root without a level");
        page[MAGIC_AT] = b'X';
        assert!(Meta::read(&page, 10).is_err());
    }

    #[test]
    fn depths_follow_the_height() {
        let meta = Meta {
            height: 3,
            ..Meta::default()
        };
        assert!(meta.check_depth(Kind::Branch, 0).is_ok());
        assert!(meta.check_depth(Kind::Branch, 1).is_ok());
        assert!(meta.check_depth(Kind::Branch, 2).is_err());
        assert!(meta.check_depth(Kind::Leaf, 2).is_ok());
        assert!(meta.check_depth(Kind::Leaf, 1).is_err());
        assert!(meta.check_depth(Kind::Leaf, 3).is_err());
    }
}

//! References from a parent to a child page in a checksummed page tree.
//! See `FORMAT.md`, "Page trees".

pub(crate) use super::layout::tree_node::{NODE_REF_LEN, OFF_REF_CRC, OFF_REF_PAGE};
use super::{checksum, read_u32, read_u64, write_u32, write_u64};

/// A child pointer: the page that holds the child and the CRC-32C of its bytes.
/// Page 0 means "no child": the whole subtree reads as zeros.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NodeRef {
    pub page: u64,
    pub crc: u32,
}

impl NodeRef {
    /// The reference to an all-zero subtree that occupies no page.
    pub const NULL: NodeRef = NodeRef { page: 0, crc: 0 };

    pub fn is_null(self) -> bool {
        self.page == 0
    }

    /// A reference to `page` whose bytes are `bytes`.
    pub fn to_page(page: u64, bytes: &[u8]) -> NodeRef {
        NodeRef {
            page,
            crc: checksum(bytes),
        }
    }

    /// Whether `bytes` are the bytes this reference was made for.
    pub fn matches(self, bytes: &[u8]) -> bool {
        checksum(bytes) == self.crc
    }

    pub fn encode(self, out: &mut [u8]) {
        write_u64(out, OFF_REF_PAGE, self.page);
        write_u32(out, OFF_REF_CRC, self.crc);
        write_u32(out, OFF_REF_CRC + 4, 0);
    }

    /// Decodes the `index`-th reference of an interior page.
    pub fn decode(page: &[u8], index: usize) -> Option<NodeRef> {
        let base = index.checked_mul(NODE_REF_LEN)?;
        Some(NodeRef {
            page: read_u64(page, base + OFF_REF_PAGE)?,
            crc: read_u32(page, base + OFF_REF_CRC)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_format_md() {
        assert_eq!((NODE_REF_LEN, OFF_REF_PAGE, OFF_REF_CRC), (16, 0, 8));
        let mut buf = [0xFFu8; 32];
        NodeRef { page: 7, crc: 9 }.encode(&mut buf[16..]);
        assert_eq!(NodeRef::decode(&buf, 1), Some(NodeRef { page: 7, crc: 9 }));
        assert_eq!(&buf[28..32], &[0, 0, 0, 0]);
        assert_eq!(NodeRef::decode(&buf, 2), None);
    }
}

//! Whatever bytes a node page holds, every reader of the node format
//! returns a value or an error, never panics: random bytes, pages with a
//! plausible header and random entries, and valid nodes with bytes
//! damaged. The fuzz target `btree_node` runs the same readers on inputs
//! that libFuzzer evolves.

#[path = "support/node_bytes.rs"]
mod node_bytes;

use mappedpages_btree::node::{Kind, Node, HEADER, INLINE_TAG, PAGE};
use proptest::prelude::*;

/// A page whose header names a kind and a small count, so that reads go
/// past `NodeRef::new` into the offsets and entries.
fn plausible_page() -> impl Strategy<Value = Vec<u8>> {
    (
        1u8..=2,
        1u16..40,
        prop::collection::vec(any::<u8>(), 0..PAGE),
    )
        .prop_map(|(kind, count, rest)| {
            let mut page = vec![kind, 0];
            page.extend_from_slice(&count.to_le_bytes());
            page.extend_from_slice(&rest);
            page
        })
}

/// A valid node, as its page.
fn node_page() -> impl Strategy<Value = Vec<u8>> {
    let pair = (
        prop::collection::vec(any::<u8>(), 0..24),
        prop::collection::vec(any::<u8>(), 0..64),
    );
    (any::<bool>(), prop::collection::vec(pair, 1..40)).prop_map(|(leaf, mut pairs)| {
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        let node = match leaf {
            true => Node {
                kind: Kind::Leaf,
                entries: pairs
                    .into_iter()
                    .map(|(k, v)| (k, [&[INLINE_TAG][..], &v].concat()))
                    .collect(),
            },
            false => Node::branch(
                pairs
                    .into_iter()
                    .enumerate()
                    .map(|(i, (k, _))| (k, i as u64 + 3))
                    .collect(),
            ),
        };
        let mut page = vec![0; PAGE];
        node.encode(&mut page);
        page
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..PAGE + 64)) {
        node_bytes::read_every_way(&bytes);
    }

    #[test]
    fn plausible_headers(page in plausible_page()) {
        node_bytes::read_every_way(&page);
    }

    /// Damage in the header and offsets (the first bytes) and anywhere.
    #[test]
    fn damaged_valid_nodes(
        page in node_page(),
        damage in prop::collection::vec(
            (prop_oneof![0..HEADER + 80, 0..PAGE], any::<u8>()),
            1..6,
        ),
        cut in prop_oneof![Just(PAGE), 0..PAGE],
    ) {
        let mut page = page;
        for (at, byte) in damage {
            page[at] = byte;
        }
        page.truncate(cut);
        node_bytes::read_every_way(&page);
    }
}

/// The property tests reach past the header: a valid page reads in full.
#[test]
fn a_valid_page_reads_every_way() {
    let mut page = vec![0; PAGE];
    Node::branch(vec![(Vec::new(), 5), (b"k".to_vec(), 6)]).encode(&mut page);
    node_bytes::read_every_way(&page);
}

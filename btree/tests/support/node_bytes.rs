//! Every reader of the node format, run on bytes that may be anything: each
//! must return a value or an error, never panic or read past the bytes.
//! Shared by the property test `tests/node_bytes.rs` and the fuzz target
//! `fuzz/fuzz_targets/btree_node.rs`.

use mappedpages_btree::node::{
    next_overflow_page, set_page_ref, Edit, Kind, LeafValue, NodeRef, INLINE_TAG, PAGE,
};

/// Keys to search for besides the node's own: below, between and above
/// anything a page holds.
const PROBES: [&[u8]; 4] = [b"", b"\x00", b"m", b"\xff\xff\xff\xff"];

/// Reads `bytes` as a node page every way the tree does, then, padded or
/// cut to a page, edits it every way the tree does. Panics only where a
/// reader returned something inconsistent.
pub fn read_every_way(bytes: &[u8]) {
    let _ = next_overflow_page(bytes);
    let _ = LeafValue::parse(bytes);
    read_node(bytes);
    let mut page = bytes.to_vec();
    page.resize(PAGE, 0);
    edit_node(&page);
}

fn read_node(bytes: &[u8]) {
    let Ok(node) = NodeRef::new(bytes) else {
        return;
    };
    assert!(!node.is_empty());
    if let Ok(used) = node.used() {
        assert!(used <= bytes.len());
    }
    let mut keys = PROBES.iter().map(|k| k.to_vec()).collect::<Vec<_>>();
    for i in 0..node.len() + 2 {
        if let Ok((key, payload)) = node.entry(i) {
            assert!(i < node.len(), "entry {i} of {}", node.len());
            assert_eq!(node.key(i).ok(), Some(key));
            let range = node.payload_range(i).expect("the entry's payload");
            assert_eq!(&bytes[range], payload);
            keys.push(key.to_vec());
            let _ = LeafValue::parse(payload);
        }
        let _ = node.child(i);
        let _ = node.value(i);
    }
    for key in &keys {
        if let Ok(found) = node.search(key) {
            let at = found.unwrap_or_else(|at| at);
            assert!(at <= node.len());
        }
        if let Ok(child) = node.child_for(key) {
            assert!(child < node.len());
        }
    }
    let Ok(decoded) = node.decode() else {
        return;
    };
    assert_eq!(decoded.entries.len(), node.len());
    for i in 0..node.len() {
        let _ = decoded.child(i);
    }
    for fill in [false, true] {
        let Ok(pieces) = decoded.clone().split(fill) else {
            continue;
        };
        // Each piece fits a page and reads back as written.
        for (_, piece) in pieces {
            let mut page = vec![0; PAGE];
            piece.encode(&mut page);
            let read = NodeRef::new(&page).and_then(NodeRef::decode);
            assert_eq!(read.expect("an encoded piece reads back"), piece);
        }
    }
}

fn edit_node(page: &[u8]) {
    let Ok(node) = NodeRef::new(page) else {
        return;
    };
    let child = 7u64.to_le_bytes();
    let payload: [&[u8]; 2] = match node.kind() {
        Kind::Branch => [&child, &[]],
        Kind::Leaf => [&[INLINE_TAG], b"value"],
    };
    let len = node.len();
    let mut edits = Vec::new();
    for i in [0, len / 2, len.saturating_sub(1), len, len + 1] {
        edits.push(Edit::Insert(i, b"m", payload));
        edits.push(Edit::Replace(i, payload));
        edits.push(Edit::Remove(i));
    }
    for edit in edits {
        let Ok(plan) = node.plan(&edit) else {
            continue;
        };
        if !plan.fits() {
            continue;
        }
        let mut copy = vec![0; PAGE];
        if plan.write(Some(page), &mut copy, &edit).is_ok() {
            read_node(&copy);
        }
        let mut in_place = page.to_vec();
        if plan.write(None, &mut in_place, &edit).is_ok() {
            read_node(&in_place);
        }
    }
    for i in [0, len - 1, len] {
        let mut copy = page.to_vec();
        if set_page_ref(&mut copy, i, 9).is_ok() {
            let node = NodeRef::new(&copy).expect("the header is unchanged");
            match node.kind() {
                Kind::Branch => assert_eq!(node.child(i).ok(), Some(9)),
                Kind::Leaf => assert!(matches!(
                    node.value(i),
                    Ok(LeafValue::Overflow { first: 9, .. })
                )),
            }
        }
    }
}

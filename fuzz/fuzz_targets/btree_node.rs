//! Fuzz target for the B+tree's node format: the input is a node page (any
//! length), read every way the tree reads one and, padded or cut to a page,
//! edited every way the tree edits one. Every reader must return a value or
//! an error; a panic is a finding. The same readers run as a property test
//! in `btree/tests/node_bytes.rs`.

#![no_main]

#[path = "../../btree/tests/support/node_bytes.rs"]
mod node_bytes;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| node_bytes::read_every_way(bytes));

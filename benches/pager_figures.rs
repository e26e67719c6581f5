//! Placeholder: the figures benchmark is being written.
fn main() {}

//! The workloads: what each measures, on which engines, and how the rows
//! of its group are made. What each engine does in them is in `engines/`.

pub mod children;
pub mod group;
pub mod kv;
pub mod r6;
pub mod rp;
pub mod single;
pub mod syncs;
pub mod w5;
pub mod w8;

//! The one model of the pager that the property test (`model_pager.rs`)
//! and the crash tests (through `crash_support`) share, so that an
//! operation added here is checked op by op against the model and
//! crash-tested too:
//!
//! - [`ops`]: the vocabulary, one [`Op`](ops::Op) enum with the steps of a
//!   transaction, bad inputs and the test's own actions (reopens, copies of
//!   the file, snapshots held across ops);
//! - [`model`]: the state the pager must show, and its projection onto what
//!   a crash image is checked against;
//! - [`driver`]: runs an op against a real `Pager` and the model together,
//!   checking every result and typed error; the model's transitions live
//!   there, once;
//! - [`strategy`] (proptest) and [`workload`] (seeded, for the crash tests):
//!   the two generators, both of `Op`;
//! - [`sub`]: sub-pages named by size at run time, for code generic over the
//!   page size.

#![allow(dead_code)]

pub mod driver;
pub mod model;
pub mod ops;
pub mod strategy;
pub mod sub;
pub mod workload;

//! Every call whose meaning differs between operating systems, behind one
//! set of names, so that the rest of the crate (the seam in `io.rs` included)
//! names no OS.
//!
//! Each item here is a thin wrapper, inlined, over what std, memmap2 or the
//! OS offer: on Linux the wrappers compile to exactly the calls the crate
//! made before there was a platform module, and the two switches below are
//! `false`, so the code they guard is compiled out.
//!
//! What each platform does, and why it keeps the commit contract, is argued
//! in FORMAT.md ("Durability on each platform").

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub(crate) use unix::*;

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub(crate) use windows::*;

#[cfg(not(any(unix, windows)))]
compile_error!("mappedpages supports Unix-like systems and Windows");

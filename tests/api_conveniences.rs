//! The conveniences added over the 0.2 API: a root found again after a
//! reopen (`ProtectedPageId::FIRST`), reads spelled on the container
//! (`pager.get(id)` as `snapshot.get(id)`), `?` on a `ConcurrentPager` lock
//! in a function returning the crate's `Result`, I/O errors that name the
//! file, and a warning through the `log` facade when open falls back to an
//! older commit.

#[path = "support/os/mod.rs"]
mod os_support;

use std::io::ErrorKind;
use std::path::Path;
use std::sync::Mutex;

use mappedpages::{
    ConcurrentError, ConcurrentPager, MappedPageError, PageAllocator, Pager, ProtectedPageId,
    SubPageAllocator,
};
use os_support::FileExt;

const PS: usize = 4096;

#[test]
fn the_first_protected_page_of_a_new_file_is_first_and_found_after_reopen() {
    let dir = tempfile::tempdir().unwrap();

    // Through a single call.
    let path = dir.path().join("single.pages");
    let mut pager = Pager::<PS>::create(&path).unwrap();
    let root = pager.alloc_protected().unwrap();
    assert_eq!(root, ProtectedPageId::FIRST);
    let mut writer = root.get_mut(&mut pager).unwrap();
    writer.page_mut().as_bytes_mut()[..4].copy_from_slice(b"root");
    writer.commit().unwrap();
    pager.alloc_protected().unwrap(); // later pages do not move it
    drop(pager);
    let pager = Pager::<PS>::open(&path).unwrap();
    let bytes = pager.get_protected(ProtectedPageId::FIRST).unwrap();
    assert_eq!(&bytes.as_bytes()[..4], b"root");

    // Through a transaction, and a bulk call.
    let path = dir.path().join("txn.pages");
    let mut pager = Pager::<PS>::create(&path).unwrap();
    let mut txn = pager.transaction().unwrap();
    assert_eq!(txn.alloc_protected().unwrap(), ProtectedPageId::FIRST);
    txn.commit().unwrap();
    let path = dir.path().join("bulk.pages");
    let mut pager = Pager::<PS>::create(&path).unwrap();
    let ids = pager.alloc_protected_bulk(3).unwrap();
    assert_eq!(ids.first(), Some(&ProtectedPageId::FIRST));
}

#[test]
fn reads_spelled_on_the_pager_match_the_id_and_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<PS>::create(dir.path().join("data.pages")).unwrap();
    let id = pager.alloc().unwrap();
    pager.get_mut(id).unwrap().as_bytes_mut()[..3].copy_from_slice(b"abc");
    assert_eq!(&pager.get(id).unwrap().as_bytes()[..3], b"abc");
    assert_eq!(&id.get(&pager).unwrap().as_bytes()[..3], b"abc");
    let snapshot = pager.snapshot().unwrap();
    assert_eq!(&snapshot.get(id).unwrap().as_bytes()[..3], b"abc");
    drop(snapshot);

    // The same errors as the id's own methods.
    pager.free(id).unwrap();
    assert!(matches!(
        pager.get(id),
        Err(MappedPageError::NotAllocated { .. })
    ));
    assert!(matches!(
        pager.get(mappedpages::PageId(1 << 40)),
        Err(MappedPageError::OutOfBounds)
    ));
    assert!(matches!(
        pager.get_protected(ProtectedPageId::FIRST),
        Err(MappedPageError::OutOfBounds)
    ));
}

#[test]
fn sub_page_get_mut_writes_and_the_deprecated_alloc_mut_still_does() {
    let dir = tempfile::tempdir().unwrap();
    let pager = Pager::<PS>::create(dir.path().join("sub.pages")).unwrap();
    let mut sub = SubPageAllocator::<PS, 1024>::new(pager);
    let id = sub.alloc().unwrap();
    sub.get_mut(id).unwrap().as_bytes_mut()[0] = 1;
    #[allow(deprecated)]
    let old_name = sub.alloc_mut(id).unwrap();
    assert_eq!(old_name.as_bytes()[0], 1);
    assert_eq!(sub.get(id).unwrap().len(), 1024);
    sub.free(id).unwrap();
    assert!(sub.get(id).is_err());
    assert!(sub.get_mut(id).is_err());
}

/// What an application's writer function looks like: `?` on the lock.
fn alloc_shared(shared: &ConcurrentPager<PS>) -> mappedpages::Result<u64> {
    let mut writer = shared.try_write()?;
    Ok(writer.alloc()?.0)
}

#[test]
fn a_concurrent_pager_lock_error_converts_with_the_question_mark() {
    let dir = tempfile::tempdir().unwrap();
    let shared =
        ConcurrentPager::new(Pager::<PS>::create(dir.path().join("c.pages")).unwrap()).unwrap();
    assert!(alloc_shared(&shared).is_ok());
    let held = shared.write().unwrap();
    match alloc_shared(&shared) {
        Err(MappedPageError::Concurrent(ConcurrentError::WouldBlock)) => {}
        other => panic!("expected Concurrent(WouldBlock), got {other:?}"),
    }
    drop(held);
}

/// The I/O error inside `err`, which must be `Io`.
fn io_error(err: MappedPageError) -> std::io::Error {
    match err {
        MappedPageError::Io(io) => io,
        other => panic!("expected an Io error, got {other:?}"),
    }
}

#[test]
fn open_and_create_errors_name_the_file_and_keep_the_kind() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pages");
    let err = io_error(Pager::<PS>::open(&missing).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("missing.pages"), "{err}");
    let os = std::error::Error::source(&err)
        .and_then(|source| source.downcast_ref::<std::io::Error>())
        .and_then(std::io::Error::raw_os_error);
    // The OS's own error stays reachable: the same code a plain open gives.
    let plain = std::fs::File::open(&missing).unwrap_err().raw_os_error();
    assert!(os.is_some());
    assert_eq!(os, plain);

    let existing = dir.path().join("existing.pages");
    std::fs::write(&existing, b"not a page file").unwrap();
    let err = io_error(Pager::<PS>::create(&existing).unwrap_err());
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    let shown = MappedPageError::Io(err).to_string();
    assert!(shown.contains("existing.pages"), "{shown}");
    // `create` refused it: the file is untouched.
    assert_eq!(std::fs::read(&existing).unwrap(), b"not a page file");
}

/// Keeps the warnings logged, for the test below.
struct Warnings(Mutex<Vec<String>>);

impl log::Log for Warnings {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            self.0.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

static WARNINGS: Warnings = Warnings(Mutex::new(Vec::new()));

fn warnings_naming(path: &Path) -> Vec<String> {
    let name = path.display().to_string();
    let all = WARNINGS.0.lock().unwrap();
    all.iter().filter(|w| w.contains(&name)).cloned().collect()
}

#[test]
fn an_open_that_falls_back_logs_a_warning() {
    log::set_logger(&WARNINGS).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fallback.pages");
    let mut pager = Pager::<PS>::create(&path).unwrap();
    pager.alloc().unwrap();
    let newest = pager.generation();
    drop(pager);

    // A clean open says nothing.
    let pager = Pager::<PS>::open(&path).unwrap();
    let copy = u64::from(pager.recovery().root_copy);
    drop(pager);
    assert!(warnings_naming(&path).is_empty());

    // Damage the newest metadata copy (pages 1 and 2 hold copies A and B).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let at = (1 + copy) * PS as u64 + 40;
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, at).unwrap();
    file.write_all_at(&[byte[0] ^ 0xFF], at).unwrap();
    drop(file);

    let pager = Pager::<PS>::open(&path).unwrap();
    assert!(pager.recovery().fell_back);
    assert!(pager.generation() < newest);
    let warnings = warnings_naming(&path);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains(&format!("generation {}", pager.generation())),
        "{warnings:?}"
    );
}

//! `ReadOnlyPager`: opens a file for reading only, beside other readers,
//! never beside a writer, and never writes it.

#[path = "support/os/mod.rs"]
mod os_support;

use mappedpages::{MappedPageError, Pager, ReadOnlyPager};

const PS: usize = 4096;

#[test]
fn readers_share_a_read_only_file_and_exclude_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ro.pages");
    let mut pager = Pager::<PS>::create(&path).unwrap();
    let mut txn = pager.transaction().unwrap();
    let ids = txn.alloc_bulk(3).unwrap();
    for (i, &id) in ids.iter().enumerate() {
        txn.get_mut(id).unwrap().as_bytes_mut().fill(i as u8 + 1);
    }
    let root = txn.alloc_protected().unwrap();
    txn.write_protected(root).unwrap().as_bytes_mut()[0] = 9;
    txn.commit().unwrap();
    let generation = pager.generation();
    assert!(matches!(
        ReadOnlyPager::<PS>::open(&path),
        Err(MappedPageError::Locked)
    ));
    drop(pager);

    os_support::set_read_only(&path, true);
    let before = std::fs::read(&path).unwrap();
    let a = ReadOnlyPager::<PS>::open(&path).unwrap();
    let b = ReadOnlyPager::<PS>::open(&path).unwrap();
    for reader in [&a, &b] {
        assert_eq!(reader.generation(), generation);
        assert_eq!(reader.iter_allocated_pages().collect::<Vec<_>>(), ids);
        for (i, &id) in ids.iter().enumerate() {
            assert!(reader
                .get(id)
                .unwrap()
                .as_bytes()
                .iter()
                .all(|&x| x == i as u8 + 1));
        }
        assert_eq!(reader.get_protected(root).unwrap().as_bytes()[0], 9);
        assert_eq!(
            reader.iter_allocated_protected_pages().collect::<Vec<_>>(),
            vec![root]
        );
    }
    os_support::set_read_only(&path, false);
    assert!(matches!(
        Pager::<PS>::open(&path),
        Err(MappedPageError::Locked)
    ));
    drop((a, b));
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "a reader wrote the file"
    );
    Pager::<PS>::open(&path).unwrap();
}

#[test]
fn a_damaged_or_foreign_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.pages");
    assert!(matches!(
        ReadOnlyPager::<PS>::open(&path),
        Err(MappedPageError::Io(_))
    ));
    std::fs::write(&path, vec![0x5Au8; 4 * PS]).unwrap();
    assert!(matches!(
        ReadOnlyPager::<PS>::open(&path),
        Err(MappedPageError::CorruptSuperblock)
    ));
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(
        ReadOnlyPager::<PS>::open(&path),
        Err(MappedPageError::IncompleteCreate)
    ));
    std::fs::remove_file(&path).unwrap();
    drop(Pager::<1024>::create(&path).unwrap());
    assert!(matches!(
        ReadOnlyPager::<PS>::open(&path),
        Err(MappedPageError::InvalidPageSize)
    ));
}

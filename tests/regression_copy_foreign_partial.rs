//! A copy deletes no file it did not make: neither the live file when it
//! is named like the copy's old temporary name (`DST.partial`), nor an
//! unrelated file of that name.

use mappedpages::Pager;

const PS: usize = 4096;

#[test]
fn a_copy_leaves_a_file_named_like_its_temporary_alone() {
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("backup.partial");
    let mut pager = Pager::<PS>::create(&live).unwrap();
    let id = pager.alloc().unwrap();
    id.get_mut(&mut pager).unwrap().as_bytes_mut().fill(7);
    pager.sync().unwrap();

    pager
        .snapshot()
        .unwrap()
        .copy_to(dir.path().join("backup"))
        .unwrap();

    // The writer's commits after the copy land in the file it opened, which
    // is still the file at its name.
    let later = pager.alloc().unwrap();
    drop(pager);
    let reopened = Pager::<PS>::open(&live).unwrap();
    assert_eq!(id.get(&reopened).unwrap().as_bytes(), &[7u8; PS][..]);
    assert!(later.get(&reopened).is_ok());
    let copied = Pager::<PS>::open(dir.path().join("backup")).unwrap();
    assert_eq!(id.get(&copied).unwrap().as_bytes(), &[7u8; PS][..]);
}

#[test]
fn a_copy_leaves_an_unrelated_file_of_that_name_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut pager = Pager::<PS>::create(dir.path().join("data.pages")).unwrap();
    pager.alloc().unwrap();
    let unrelated = dir.path().join("copy.pages.partial");
    std::fs::write(&unrelated, b"someone else's").unwrap();

    pager
        .snapshot()
        .unwrap()
        .copy_to(dir.path().join("copy.pages"))
        .unwrap();

    assert_eq!(std::fs::read(&unrelated).unwrap(), b"someone else's");
}

//! Every `*_async` method (and `Transaction::commit_async`) under a multi-thread and a current-thread tokio
//! runtime, inside spawned tasks and in `block_on`, and outside any runtime.
//! Where the blocking work runs is shown by the unit tests of the helper in
//! `src/nonblocking.rs`.

#![cfg(feature = "async")]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use mappedpages::{MappedPageError, PageId, Pager};
use tokio::runtime::{Builder, Runtime};

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap()
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().build().unwrap()
}

/// Calls every async method once, checks what it did, and gives the pager
/// back.
async fn exercise(mut pager: Pager<4096>) -> Pager<4096> {
    let id = pager.alloc_async().await.unwrap();
    id.get_mut(&mut pager).unwrap().as_bytes_mut().fill(0x5A);
    pager.sync_async().await.unwrap();
    assert_eq!(id.get(&pager).unwrap().as_bytes()[0], 0x5A);

    let ids = pager.alloc_bulk_async(10).await.unwrap();
    assert_eq!(ids.len(), 10);
    assert_eq!(pager.iter_allocated_pages().count(), 11);
    pager.free_bulk_async(ids.clone()).await.unwrap();
    assert!(matches!(
        pager.free_bulk_async(ids).await,
        Err(MappedPageError::DoubleFree)
    ));
    pager.free_async(id).await.unwrap();
    assert!(matches!(
        pager.free_async(id).await,
        Err(MappedPageError::DoubleFree)
    ));
    assert_eq!(pager.iter_allocated_pages().count(), 0);

    let pid = pager.alloc_protected_async().await.unwrap();
    assert!(pid.get(&pager).unwrap().as_bytes().iter().all(|&b| b == 0));
    let pids = pager.alloc_protected_bulk_async(5).await.unwrap();
    assert_eq!(pager.iter_allocated_protected_pages().count(), 6);
    pager.free_protected_bulk_async(pids).await.unwrap();
    pager.free_protected_async(pid).await.unwrap();
    assert!(matches!(
        pager.free_protected_async(pid).await,
        Err(MappedPageError::DoubleFree)
    ));
    assert_eq!(pager.iter_allocated_protected_pages().count(), 0);

    let syncs = pager.sync_count();
    assert!(pager.alloc_bulk_async(0).await.unwrap().is_empty());
    pager.free_bulk_async(Vec::new()).await.unwrap();
    assert!(pager
        .alloc_protected_bulk_async(0)
        .await
        .unwrap()
        .is_empty());
    pager.free_protected_bulk_async(Vec::new()).await.unwrap();
    assert_eq!(pager.sync_count(), syncs, "a zero count commits nothing");
    assert!(matches!(
        pager.free_async(PageId(1)).await,
        Err(MappedPageError::ReservedPage)
    ));

    // A transaction: pages, their bytes and a protected root, in one sync.
    let root = pager.alloc_protected_async().await.unwrap();
    let syncs = pager.sync_count();
    let mut txn = pager.transaction().unwrap();
    let ids = txn.alloc_bulk(3).unwrap();
    for &id in &ids {
        txn.get_mut(id).unwrap().as_bytes_mut().fill(0xC3);
    }
    txn.write_protected(root).unwrap().as_bytes_mut()[..8].copy_from_slice(&ids[0].0.to_le_bytes());
    txn.commit_async().await.unwrap();
    assert_eq!(pager.sync_count() - syncs, 1);
    assert!(ids.iter().all(|id| id
        .get(&pager)
        .unwrap()
        .as_bytes()
        .iter()
        .all(|&b| b == 0xC3)));
    assert_eq!(
        root.get(&pager).unwrap().as_bytes()[..8],
        ids[0].0.to_le_bytes()
    );
    // A commit future dropped unpolled drops its transaction: rolled back.
    let mut txn = pager.transaction().unwrap();
    txn.free_bulk(ids.clone()).unwrap();
    drop(txn.commit_async());
    assert_eq!(pager.allocated_page_count(), 3);
    let mut txn = pager.transaction().unwrap();
    txn.free_bulk(ids).unwrap();
    txn.free_protected(root).unwrap();
    txn.commit_async().await.unwrap();
    assert_eq!(pager.allocated_page_count(), 0);
    assert_eq!(pager.iter_allocated_protected_pages().count(), 0);
    pager
}

fn new_pager() -> (tempfile::TempDir, Pager<4096>) {
    let dir = tempfile::tempdir().unwrap();
    let pager = Pager::<4096>::create(dir.path().join("async.pages")).unwrap();
    (dir, pager)
}

#[test]
fn all_methods_on_a_multi_thread_runtime_in_block_on() {
    let (_dir, pager) = new_pager();
    multi_thread().block_on(exercise(pager));
}

#[test]
fn all_methods_on_a_multi_thread_runtime_in_spawned_tasks() {
    let (_dir, pager) = new_pager();
    let runtime = multi_thread();
    // The futures are `Send`: a pager can move between worker threads.
    let pager = runtime.block_on(runtime.spawn(exercise(pager))).unwrap();
    let pager = runtime.block_on(runtime.spawn(exercise(pager))).unwrap();
    assert_eq!(pager.allocated_page_count(), 0);
}

#[test]
fn all_methods_on_a_current_thread_runtime_in_block_on() {
    let (_dir, pager) = new_pager();
    current_thread().block_on(exercise(pager));
}

#[test]
fn all_methods_on_a_current_thread_runtime_in_spawned_tasks() {
    let (_dir, pager) = new_pager();
    let runtime = current_thread();
    runtime
        .block_on(async { tokio::spawn(exercise(pager)).await })
        .unwrap();
}

#[test]
fn all_methods_inside_spawn_blocking() {
    let (_dir, pager) = new_pager();
    let runtime = multi_thread();
    let handle = runtime.handle().clone();
    runtime
        .block_on(runtime.spawn_blocking(move || handle.block_on(exercise(pager))))
        .unwrap();
}

#[test]
fn several_pagers_on_one_multi_thread_runtime_at_once() {
    let runtime = multi_thread();
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (dir, pager) = new_pager();
            runtime.spawn(async move {
                let pager = exercise(pager).await;
                drop(pager);
                drop(dir);
            })
        })
        .collect();
    runtime.block_on(async {
        for task in tasks {
            task.await.unwrap();
        }
    });
}

/// Without any runtime the futures complete on their first poll.
#[test]
fn outside_any_runtime_each_future_completes_on_its_first_poll() {
    let (_dir, mut pager) = new_pager();
    let mut cx = Context::from_waker(Waker::noop());
    let id = match pin!(pager.alloc_async()).poll(&mut cx) {
        Poll::Ready(id) => id.unwrap(),
        Poll::Pending => panic!("alloc_async was pending"),
    };
    assert!(id.get(&pager).is_ok());
    assert!(matches!(
        pin!(pager.free_async(id)).poll(&mut cx),
        Poll::Ready(Ok(()))
    ));
    assert!(id.get(&pager).is_err());
    let mut txn = pager.transaction().unwrap();
    let id = txn.alloc().unwrap();
    assert!(matches!(
        pin!(txn.commit_async()).poll(&mut cx),
        Poll::Ready(Ok(()))
    ));
    assert!(id.get(&pager).is_ok());
}

/// A future dropped before its first poll does nothing.
#[test]
fn a_future_dropped_before_it_is_polled_changes_nothing() {
    let (_dir, mut pager) = new_pager();
    let generation = pager.generation();
    drop(pager.alloc_bulk_async(5));
    assert_eq!(pager.generation(), generation);
    assert_eq!(pager.allocated_page_count(), 0);
}

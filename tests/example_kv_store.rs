//! The key-value store of `examples/kv_store.rs`: it matches a model across
//! reopening, and survives being killed at any moment (the test binary
//! re-runs itself as a child and kills it with SIGKILL mid-work).

#[path = "../examples/kv_store.rs"]
#[allow(dead_code)]
mod kv;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use kv::{key, KvStore, Op};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Batch `i` of the torture workload; it also records `i` under `batch`.
fn batch(i: u64) -> Vec<Op> {
    let k = |n: u64| key((n % 700) as usize);
    vec![
        Op::Put(b"batch".to_vec(), i.to_le_bytes().to_vec()),
        Op::Put(k(i * 7), format!("value {i}").into_bytes()),
        Op::Put(k(i * 11 + 3), vec![i as u8; (i % 90) as usize]),
        Op::Delete(k(i * 13 + 1)),
        Op::Put(k(i * 17 + 5), format!("again {i}").into_bytes()),
    ]
}

fn apply_to_model(model: &mut Model, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Put(k, v) => model.insert(k.clone(), v.clone()),
            Op::Delete(k) => model.remove(k),
        };
    }
}

fn contents(store: &KvStore) -> Model {
    store.entries().unwrap().into_iter().collect()
}

fn last_batch(store: &KvStore) -> u64 {
    store
        .get(b"batch")
        .unwrap()
        .map_or(0, |v| u64::from_le_bytes(v.try_into().unwrap()))
}

#[test]
fn matches_a_model_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kv.pages");
    let mut store = KvStore::create(&path).unwrap();
    let mut model = Model::new();
    for i in 1..=400 {
        let ops = batch(i);
        store.apply(&ops).unwrap();
        apply_to_model(&mut model, &ops);
    }
    // A batch larger than a bucket page: chains of several pages.
    let big: Vec<Op> = (0..3000)
        .map(|i| Op::Put(key(10_000 + i), vec![7; 90]))
        .collect();
    store.apply(&big).unwrap();
    apply_to_model(&mut model, &big);
    assert_eq!(contents(&store), model);
    assert_eq!(store.len(), model.len() as u64);
    drop(store);

    let (mut store, leaked) = KvStore::open(&path).unwrap();
    assert_eq!(leaked, 0, "a clean shutdown leaks nothing");
    assert_eq!(contents(&store), model);
    assert_eq!(store.get(&key(10_000)).unwrap(), Some(vec![7; 90]));
    assert_eq!(store.get(b"absent").unwrap(), None);
    assert!(store
        .apply(&[Op::Put(vec![0; kv::MAX_KEY + 1], vec![])])
        .is_err());
}

/// The child: applies batches after the last committed one until killed.
#[test]
#[ignore = "run by survives_a_kill_at_any_moment as a child process"]
fn torture_child() {
    let Some(path) = std::env::var_os("KV_TORTURE_PATH") else {
        return;
    };
    let (mut store, _) = KvStore::open(Path::new(&path)).unwrap();
    let first = last_batch(&store) + 1;
    for i in first..first + 1_000_000 {
        store.apply(&batch(i)).unwrap();
    }
}

#[test]
fn survives_a_kill_at_any_moment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("torture.pages");
    drop(KvStore::create(&path).unwrap());
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut committed = 0;
    for round in 0..8 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["torture_child", "--exact", "--ignored", "--nocapture"])
            .env("KV_TORTURE_PATH", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + seed % 150));
        child.kill().unwrap(); // SIGKILL: no destructor, no final sync
        child.wait().unwrap();

        let (store, _leaked) = KvStore::open(&path).unwrap();
        let reached = last_batch(&store);
        assert!(reached >= committed, "round {round}: went back in time");
        committed = reached;
        let mut model = Model::new();
        for i in 1..=reached {
            apply_to_model(&mut model, &batch(i));
        }
        assert_eq!(contents(&store), model, "round {round}, batch {reached}");
        assert_eq!(store.len(), model.len() as u64);
        drop(store);
        // Opening swept every page the kill left unreachable.
        let (_, leaked_again) = KvStore::open(&path).unwrap();
        assert_eq!(leaked_again, 0);
    }
    assert!(committed > 0, "the child never committed a batch");
}

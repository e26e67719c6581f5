//! The single-operation workloads: W1-W3 (durable), W7 (W1-W3 without
//! sync), T3 (one durable transaction of k values) and T4 (one page
//! committed without sync). The engines of a group run in this process,
//! interleaved round by round in a new random order every round.

use std::path::Path;

use crate::engines::{
    engine, Engine, Work, LMDB, OURS, OURS_DEFERRED, OURS_SYNC128, OURS_TXN, RAW, REDB, SEED,
    SQLITE,
};
use crate::report::{time_row, Row, Value};
use crate::support::stats::{median, Rng};
use crate::workloads::{kv, syncs};
use crate::{Op, R};

pub struct Group {
    /// Its name in `ONLY` and on a child's command line.
    pub workload: &'static str,
    title: &'static str,
    engines: &'static [&'static dyn Engine],
}

pub const SYNC_GROUPS: &[Group] = &[
    Group {
        workload: "w1",
        title: "W1 one-page allocation, durable",
        engines: &[RAW, OURS, SEED],
    },
    Group {
        workload: "w2",
        title: "W2 durable 4 KiB write of new data",
        engines: &[RAW, OURS, OURS_TXN, OURS_DEFERRED, REDB, LMDB, SQLITE],
    },
    Group {
        workload: "w3",
        title: "W3 protected-page commit (4 KiB overwrite)",
        engines: &[RAW, OURS, SEED, LMDB, REDB],
    },
];

const T3_ENGINES: &[&dyn Engine] = &[RAW, OURS, LMDB, REDB, SQLITE];

/// T3: one transaction writes k values of one page each and removes the k
/// the previous one wrote (this crate: k fresh pages, k freed, and a
/// protected root), durable.
pub const T3_GROUPS: &[Group] = &[
    Group {
        workload: "t3-1",
        title: "T3 one transaction, k = 1 page written, 1 removed, durable",
        engines: T3_ENGINES,
    },
    Group {
        workload: "t3-16",
        title: "T3 one transaction, k = 16 pages written, 16 removed, durable",
        engines: T3_ENGINES,
    },
    Group {
        workload: "t3-256",
        title: "T3 one transaction, k = 256 pages written, 256 removed, durable",
        engines: T3_ENGINES,
    },
];

/// T4: one page written and committed without sync.
pub const T4_GROUP: Group = Group {
    workload: "t4",
    title: "T4 no-sync commit of one new 4 KiB page",
    engines: &[RAW, OURS_TXN, OURS_SYNC128, LMDB, REDB, SQLITE],
};

pub const NOSYNC_GROUPS: &[Group] = &[
    Group {
        workload: "w7-1",
        title: "W7 (W1 without sync) one-page allocation",
        engines: &[RAW, OURS],
    },
    Group {
        workload: "w7-2",
        title: "W7 (W2 without sync) 4 KiB write of new data",
        engines: &[RAW, OURS, OURS_TXN, REDB, LMDB],
    },
    Group {
        workload: "w7-3",
        title: "W7 (W3 without sync) 4 KiB overwrite + commit",
        engines: &[RAW, OURS, LMDB, REDB],
    },
];

/// The work a workload's name stands for.
pub fn work(workload: &str) -> R<Work> {
    Ok(match workload {
        "w1" => Work::Alloc { sync: true },
        "w2" => Work::Write { sync: true },
        "w3" => Work::Overwrite { sync: true },
        "w7-1" => Work::Alloc { sync: false },
        // T4 is W7's new-data write, on every engine.
        "w7-2" | "t4" => Work::Write { sync: false },
        "w7-3" => Work::Overwrite { sync: false },
        w => match w.strip_prefix("t3-").and_then(|k| k.parse().ok()) {
            Some(k) => Work::Txn { k },
            None => return Err(format!("no workload {w}").into()),
        },
    })
}

/// Runs every op `warmup + rounds` times, all ops once per round, in a new
/// random order every round (a rotating order would keep each op behind the
/// same neighbour every round, and a neighbour that sweeps the caches would
/// slow it every time). With `warm_each`, each timed call is preceded by an
/// untimed call of the same op, so each is timed warm whatever ran before
/// (for read loops only: the op runs twice).
pub fn interleave(
    rounds: usize,
    warmup: usize,
    warm_each: bool,
    ops: &mut [(String, Op)],
) -> R<Vec<Vec<f64>>> {
    let mut out = vec![Vec::with_capacity(rounds); ops.len()];
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut order: Vec<usize> = (0..ops.len()).collect();
    for round in 0..warmup + rounds {
        rng.shuffle(&mut order);
        for &i in &order {
            if warm_each {
                (ops[i].1)(round as u64)?;
            }
            let t = (ops[i].1)(round as u64)?;
            if round >= warmup {
                out[i].push(t);
            }
        }
    }
    Ok(out)
}

pub fn run_group(
    g: &Group,
    dir: &Path,
    rounds: usize,
    warmup: usize,
    count_syncs: bool,
) -> R<Vec<Row>> {
    let work = work(g.workload)?;
    let mut ops = Vec::new();
    let mut ran = Vec::new();
    let mut failed = Vec::new();
    for &e in g.engines {
        let sub = dir.join(format!("{}-{}", g.workload, e.id()));
        std::fs::create_dir_all(&sub)?;
        match e.op(work, &sub, rounds + warmup) {
            Ok(op) => {
                ops.push((e.id().to_string(), op));
                ran.push(e);
            }
            Err(err) => failed.push(Row {
                group: g.title.into(),
                system: e.label(work),
                value: Value::Failed(err.to_string()),
                syncs: String::new(),
                note: String::new(),
            }),
        }
    }
    let results = interleave(rounds, warmup, false, &mut ops)?;
    drop(ops);
    let mut out = Vec::new();
    for (e, times) in ran.iter().zip(&results) {
        let mut row = time_row(g.title, &e.label(work), median(times), "");
        if count_syncs {
            row.syncs =
                syncs::count(g.workload, e.id(), dir).unwrap_or_else(|err| format!("? ({err})"));
        }
        out.push(row);
    }
    out.extend(failed);
    for e in g.engines {
        let _ = std::fs::remove_dir_all(dir.join(format!("{}-{}", g.workload, e.id())));
    }
    Ok(out)
}

/// A child process's work, for counting its syncs: the workload's setup,
/// then `n` operations.
pub fn child_ops(workload: &str, system: &str, n: usize, dir: &Path) -> R<()> {
    let e = engine(system)?;
    let mut op = if workload == kv::SYNC_WORKLOAD {
        kv::write_op(e, dir)?
    } else {
        e.op(work(workload)?, dir, n)?
    };
    for i in 0..n {
        op(i as u64)?;
    }
    Ok(())
}

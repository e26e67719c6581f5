//! W5: random reads of 4 KiB values (the first 8 bytes of each), through
//! this crate's `get`, a raw `memmap2` map of the same file, LMDB and redb,
//! each timed pass right after an untimed pass of its own.

use std::path::Path;
use std::rc::Rc;

use mappedpages::Durability;

use crate::engines::{Engine, ReadData, LMDB, OURS, RAW_MAP, REDB};
use crate::report::{time_row, Row};
use crate::support::stats::{median, Rng};
use crate::support::workloads::written_pages;
use crate::workloads::single::interleave;
use crate::{Config, Op, R};

pub fn run(cfg: &Config, dir: &Path) -> R<Vec<Row>> {
    const ENGINES: [&dyn Engine; 4] = [RAW_MAP, OURS, LMDB, REDB];
    let n = cfg.read_pages;
    let mut order: Vec<u64> = (0..n).collect();
    Rng(0x9E37_79B9_7F4A_7C15).shuffle(&mut order);
    let path = dir.join("w5.pages");
    let (pager, ids) = written_pages(&path, n, 64, Durability::Immediate)?;
    let data = ReadData {
        pager: Rc::new(pager),
        path,
        ids,
        order: Rc::new(order),
    };
    let mut ops: Vec<(String, Op)> = Vec::new();
    for engine in ENGINES {
        let sub = dir.join(format!("w5-{}", engine.id()));
        std::fs::create_dir_all(&sub)?;
        ops.push(engine.reads(&sub, &data)?);
    }
    let results = interleave(cfg.read_passes, 2, true, &mut ops)?;
    let title = format!("W5 random 4 KiB page reads, {n} pages (per page, 8 bytes read)");
    Ok(ops
        .iter()
        .zip(&results)
        .map(|((name, _), t)| {
            time_row(
                &title,
                name,
                median(t),
                "warm page cache; each timed pass right after an untimed one of its own",
            )
        })
        .collect())
}

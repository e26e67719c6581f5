//! W8: the space a file takes after churn: 2^18 values of 4 KiB written
//! (2^14 in quick mode), half of them removed at random, a quarter as many
//! written again; the file's bytes per live byte. One engine after another.

use std::path::Path;

use crate::engines::{Engine, LMDB, OURS, REDB, SQLITE};
use crate::report::{Row, Value};
use crate::support::file_bytes;
use crate::support::stats::Rng;
use crate::support::PAGE;
use crate::{Config, R};

/// Values per transaction, for the engines that batch their writes.
pub const CHURN_BATCH: usize = 4096;

/// What every engine does: `n` values written (keys 0..n), the keys in
/// `freed` removed, `again` values written (keys n..n + again).
pub struct Churn {
    pub n: u64,
    pub freed: Vec<u64>,
    pub again: u64,
    /// Every value's bytes.
    pub data: Vec<u8>,
}

pub fn run(cfg: &Config, dir: &Path) -> R<Vec<Row>> {
    const ENGINES: [&dyn Engine; 4] = [OURS, REDB, LMDB, SQLITE];
    let n = cfg.churn;
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let mut keys: Vec<u64> = (0..n).collect();
    rng.shuffle(&mut keys);
    let churn = Churn {
        n,
        freed: keys[..(n / 2) as usize].to_vec(),
        again: n / 4,
        data: vec![0xC3u8; PAGE],
    };
    let live = ((n - n / 2 + churn.again) * PAGE as u64) as f64;
    let title = format!(
        "W8 space after churn: 2^{} × 4 KiB written, half freed, a quarter written again (file bytes per live byte)",
        n.trailing_zeros()
    );
    let mut rows = Vec::new();
    for engine in ENGINES {
        let sub = dir.join(format!("w8-{}", engine.id()));
        std::fs::create_dir_all(&sub)?;
        // The engine's files are closed when it returns, so that each has
        // written everything it keeps in memory.
        let (label, files) = engine.churn(&sub, &churn)?;
        let (apparent, on_disk) = file_bytes(&files);
        rows.push(Row {
            group: title.clone(),
            system: label,
            value: Value::Number(apparent as f64 / live, "B/B".into()),
            syncs: String::new(),
            note: format!(
                "file {:.1} MiB, on disk {:.1} MiB ({:.2} B/B)",
                apparent as f64 / (1 << 20) as f64,
                on_disk as f64 / (1 << 20) as f64,
                on_disk as f64 / live
            ),
        });
        std::fs::remove_dir_all(&sub)?;
    }
    Ok(rows)
}

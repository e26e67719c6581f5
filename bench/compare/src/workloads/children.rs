//! W4 and W6, this crate against its 0.2 release: `alloc_bulk` on a new
//! file, and `open` of a file of many allocated pages. Every timed call
//! runs in a new child process, for both crates alike, the two alternating
//! run by run (the order swapped every round). The 0.2 crate may panic
//! (its file stops growing near 2^14 pages); a child has a time limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::engines::{engine, Engine, OURS, SEED};
use crate::report::{time_row, Row, Value};
use crate::support::stats::median;
use crate::{Config, R};

/// Child: `alloc_bulk(count)` on a new file of 4 KiB pages at `path`,
/// timed; prints nanoseconds.
pub fn child_bulk(system: &str, path: &Path, count: usize) -> R<()> {
    let (t, got) = engine(system)?.bulk(path, count)?;
    if got != count {
        return Err(format!("got {got} pages").into());
    }
    println!("{t}");
    Ok(())
}

/// Child: a file of `count` allocated 1 KiB pages.
pub fn child_build(system: &str, path: &Path, count: u64) -> R<()> {
    engine(system)?.build_small_pages(path, count)?;
    println!("0");
    Ok(())
}

/// Child: one open of an existing file of 1 KiB pages, the first in this
/// process (so it includes faulting in fresh heap and map pages), timed;
/// prints nanoseconds.
pub fn child_open(system: &str, path: &Path) -> R<()> {
    println!("{}", engine(system)?.open_small_pages(path)?);
    Ok(())
}

/// Runs this program with `args` in a child process, stopped after
/// `limit`: the number the child printed, or how it failed (its panic's
/// message, or its last line).
fn run_child_timed(args: &[String], limit: Duration) -> R<Result<f64, String>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let out = child.wait_with_output()?;
            let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if status.success() {
                return Ok(text.parse::<f64>().map_err(|_| text));
            }
            // The panic message, or else the last line.
            let lines: Vec<&str> = err.lines().collect();
            let last = match lines.iter().position(|l| l.contains("panicked at")) {
                // The message only: the panic location names a local path.
                Some(i) => format!(
                    "panic: {}",
                    lines.get(i + 1).unwrap_or(&"").replace('|', "/")
                ),
                None => lines.last().unwrap_or(&"").to_string(),
            };
            return Ok(Err(format!("{status}: {last}")));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(Err(format!(
                "no result after {} s, stopped",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One engine's child-process runs: its label, the child's arguments, and
/// a file to remove after each run (W4's children create theirs).
struct ChildJob {
    system: String,
    args: Vec<String>,
    remove_after: Option<PathBuf>,
}

/// Runs every job's child `reps` times, alternating the jobs round by round
/// and swapping their order every round. A job whose child fails is not run
/// again. Per job: its times, or how its child failed.
fn alternate_children(
    cfg: &Config,
    reps: usize,
    jobs: &[ChildJob],
) -> R<Vec<Result<Vec<f64>, String>>> {
    let limit = Duration::from_secs(if cfg.quick { 20 } else { 30 });
    let mut out: Vec<Result<Vec<f64>, String>> = jobs.iter().map(|_| Ok(Vec::new())).collect();
    for rep in 0..reps {
        for k in 0..jobs.len() {
            let i = (k + rep) % jobs.len();
            if out[i].is_err() {
                continue;
            }
            let res = run_child_timed(&jobs[i].args, limit)?;
            if let Some(f) = &jobs[i].remove_after {
                let _ = std::fs::remove_file(f);
            }
            match (res, &mut out[i]) {
                (Ok(t), Ok(times)) => times.push(t),
                (Err(e), slot) => *slot = Err(e),
                _ => {}
            }
        }
    }
    Ok(out)
}

fn child_rows(
    title: &str,
    jobs: &[ChildJob],
    results: Vec<Result<Vec<f64>, String>>,
    note: &str,
) -> Vec<Row> {
    jobs.iter()
        .zip(results)
        .map(|(job, res)| Row {
            group: title.into(),
            system: job.system.clone(),
            value: match res {
                Ok(t) => Value::Time(median(&t)),
                Err(e) => Value::Failed(e),
            },
            syncs: String::new(),
            note: note.into(),
        })
        .collect()
}

/// The engines compared, this crate first.
const ENGINES: [&dyn Engine; 2] = [OURS, SEED];

pub fn run_w4(cfg: &Config, dir: &Path) -> R<Vec<Row>> {
    let mut rows = Vec::new();
    for exp in [16u32, 20] {
        let title = format!("W4 alloc_bulk(2^{exp}) in one commit, new file, growth included");
        let jobs: Vec<ChildJob> = ENGINES
            .iter()
            .map(|e| {
                let path = dir.join(format!("w4-{}-{exp}.pages", e.id()));
                ChildJob {
                    system: e.name().into(),
                    args: vec![
                        "child-bulk".into(),
                        e.id().into(),
                        path.display().to_string(),
                        (1u64 << exp).to_string(),
                    ],
                    remove_after: Some(path),
                }
            })
            .collect();
        let results = alternate_children(cfg, cfg.bulk_reps, &jobs)?;
        rows.extend(child_rows(
            &title,
            &jobs,
            results,
            &format!(
                "each run in a new process, the two alternating; n = {}",
                cfg.bulk_reps
            ),
        ));
    }
    Ok(rows)
}

const OPEN_REPS: usize = 5;

pub fn run_w6(cfg: &Config, dir: &Path) -> R<Vec<Row>> {
    let mut rows = Vec::new();
    let mut exps = vec![10u32, 20];
    exps.push(cfg.open_max_exp);
    for exp in exps {
        let title = format!("W6 open, 2^{exp} allocated 1 KiB pages, warm cache");
        let path = dir.join(format!("w6-{exp}.pages"));
        // This crate's file is built here; the 0.2 crate's in a child,
        // which may fail.
        OURS.build_small_pages(&path, 1 << exp)?;
        let mut jobs = vec![ChildJob {
            system: OURS.name().into(),
            args: vec![
                "child-open".into(),
                OURS.id().into(),
                path.display().to_string(),
            ],
            remove_after: None,
        }];
        let spath = dir.join(format!("w6-seed-{exp}.pages"));
        let mut seed_failed = None;
        if exp <= 20 {
            // The 0.2 crate cannot make a file this large beyond 2^14 pages
            // or so; the build's failure is the row.
            let build = vec![
                "child-build".to_string(),
                SEED.id().to_string(),
                spath.display().to_string(),
                (1u64 << exp).to_string(),
            ];
            match run_child_timed(&build, Duration::from_secs(120))? {
                Ok(_) => jobs.push(ChildJob {
                    system: SEED.name().into(),
                    args: vec![
                        "child-open".into(),
                        SEED.id().into(),
                        spath.display().to_string(),
                    ],
                    remove_after: None,
                }),
                Err(e) => seed_failed = Some(format!("building the file: {e}")),
            }
        }
        // Warm the page cache for both files before any timed open.
        let _ = std::fs::read(&path).map(std::hint::black_box);
        let results = alternate_children(cfg, OPEN_REPS, &jobs)?;
        rows.extend(child_rows(
            &title,
            &jobs,
            results,
            &format!("first open in a new process, the two alternating; n = {OPEN_REPS}"),
        ));
        if let Some(e) = seed_failed {
            rows.push(Row {
                group: title.clone(),
                system: SEED.name().into(),
                value: Value::Failed(e),
                syncs: String::new(),
                note: String::new(),
            });
        }
        // For comparison with the figure above: the same open repeated in
        // this long-running process (heap and page tables already warm).
        let mut times = Vec::new();
        for _ in 0..OPEN_REPS {
            times.push(OURS.open_small_pages(&path)?);
        }
        rows.push(time_row(
            &title,
            "mappedpages (this crate), open repeated in one process (info)",
            median(&times),
            &format!("not a child: the benchmark's own process; n = {OPEN_REPS}"),
        ));
        std::fs::remove_file(&path)?;
        let _ = std::fs::remove_file(&spath);
    }
    Ok(rows)
}

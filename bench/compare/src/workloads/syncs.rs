//! Sync points per operation, counted with `strace`: the program runs
//! itself in a child under `strace -f`, once with 0 and once with N
//! operations after the same setup, and divides the difference by N. It
//! counts sync calls (fsync, fdatasync, `msync(MS_SYNC)`, sync_file_range,
//! syncfs, sync) and writes through a descriptor opened with
//! `O_DSYNC`/`O_SYNC` (found from the `openat` flags), which is how LMDB
//! writes its meta page.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::R;

pub const STRACE_OPS: usize = 50;

pub fn strace_available() -> bool {
    Command::new("strace")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// What one traced child did: sync system calls (fsync, fdatasync,
/// `msync(MS_SYNC)`, `sync_file_range`, syncfs, sync) and writes that are
/// durable on return (through a descriptor opened with `O_DSYNC` or
/// `O_SYNC`, or a `pwritev2` with `RWF_DSYNC`/`RWF_SYNC`).
#[derive(Clone, Copy, Debug, Default)]
struct Traced {
    sync_calls: u64,
    dsync_writes: u64,
}

const TRACED: &str = "open,openat,openat2,creat,close,dup,dup2,dup3,fcntl,\
                      write,pwrite64,writev,pwritev,pwritev2,\
                      msync,fsync,fdatasync,sync_file_range,syncfs,sync";

/// Counts sync calls and synchronous writes in the output of
/// `strace -f -o FILE -e trace=TRACED` (one line per call, a pid first;
/// calls split by another thread's as `<unfinished ...>` and
/// `<... NAME resumed>` are joined first).
fn parse_strace(text: &str) -> Traced {
    use std::collections::{HashMap, HashSet};
    let mut pending: HashMap<String, String> = HashMap::new();
    let mut dsync_fds: HashSet<i64> = HashSet::new();
    let mut out = Traced::default();
    for raw in text.lines() {
        let raw = raw.trim();
        let (pid, rest) = match raw.split_once(' ') {
            Some((p, r)) if p.bytes().all(|b| b.is_ascii_digit()) => (p.to_string(), r.trim()),
            _ => (String::new(), raw),
        };
        let line = if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(pid, head.to_string());
            continue;
        } else if rest.starts_with("<...") {
            let Some((_, tail)) = rest.split_once("resumed>") else {
                continue;
            };
            format!("{}{tail}", pending.remove(&pid).unwrap_or_default())
        } else {
            rest.to_string()
        };
        let Some(open) = line.find('(') else { continue };
        let name = &line[..open];
        // `name(args)   = ret ...`: strace pads before the `=`.
        let Some(eq) = line.rfind(" = ") else {
            continue;
        };
        let Some(head) = line[..eq].trim_end().strip_suffix(')') else {
            continue;
        };
        let Some(args) = head.get(open + 1..) else {
            continue;
        };
        let ret: i64 = line[eq + 3..]
            .split_whitespace()
            .next()
            .and_then(|r| r.parse().ok())
            .unwrap_or(-1);
        let fd: i64 = args
            .split(',')
            .next()
            .and_then(|a| a.trim().parse().ok())
            .unwrap_or(-1);
        match name {
            "open" | "openat" | "openat2" | "creat" if ret >= 0 => {
                // The flags follow the (always complete) path.
                let flags = args.rfind('"').map_or(args, |q| &args[q + 1..]);
                if flags.contains("O_DSYNC") || flags.contains("O_SYNC") {
                    dsync_fds.insert(ret);
                } else {
                    dsync_fds.remove(&ret);
                }
            }
            "close" => {
                dsync_fds.remove(&fd);
            }
            "dup" | "dup2" | "dup3" | "fcntl" if ret >= 0 => {
                let duplicates = name != "fcntl" || args.contains("F_DUPFD");
                if duplicates && ret != fd {
                    // dup3 with O_CLOEXEC or not: the file's status
                    // flags (O_DSYNC among them) are shared.
                    if dsync_fds.contains(&fd) {
                        dsync_fds.insert(ret);
                    } else {
                        dsync_fds.remove(&ret);
                    }
                }
            }
            "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2"
                if ret >= 0
                    && (dsync_fds.contains(&fd)
                        || args.contains("RWF_DSYNC")
                        || args.contains("RWF_SYNC")) =>
            {
                out.dsync_writes += 1;
            }
            "msync" if args.contains("MS_SYNC") => out.sync_calls += 1,
            "fsync" | "fdatasync" | "sync_file_range" | "syncfs" | "sync" => out.sync_calls += 1,
            _ => {}
        }
    }
    out
}

fn strace_total(workload: &str, system: &str, dir: &Path, n: usize) -> R<Traced> {
    let sub = dir.join(format!("strace-{workload}-{system}-{n}"));
    std::fs::create_dir_all(&sub)?;
    let out = sub.join("strace.txt");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-s", "0", "-o"])
        .arg(&out)
        .args(["-e", &format!("trace={TRACED}")])
        .arg(std::env::current_exe()?)
        .args(["child-ops", workload, system, &n.to_string()])
        .arg(&sub)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        return Err("child failed".into());
    }
    let text = std::fs::read_to_string(&out)?;
    let _ = std::fs::remove_dir_all(&sub);
    Ok(parse_strace(&text))
}

/// Sync points per operation, (count with N ops - count with 0) / N: sync
/// calls, plus synchronous writes where there are any (the contract counts
/// an `O_DSYNC` write as a sync call).
pub fn count(workload: &str, system: &str, dir: &Path) -> R<String> {
    let zero = strace_total(workload, system, dir, 0)?;
    let many = strace_total(workload, system, dir, STRACE_OPS)?;
    let per = |a: u64, b: u64| (a as f64 - b as f64) / STRACE_OPS as f64;
    let calls = per(many.sync_calls, zero.sync_calls);
    let writes = per(many.dsync_writes, zero.dsync_writes);
    Ok(if writes.abs() < 0.005 {
        format!("{calls:.2}")
    } else {
        format!(
            "{:.2} ({calls:.2} sync calls + {writes:.2} O_DSYNC writes)",
            calls + writes
        )
    })
}

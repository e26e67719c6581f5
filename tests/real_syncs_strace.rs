//! The durability points are real syncs. The crash tests take the I/O hook's
//! `Sync` event as the moment the disk catches up, so they cannot tell a
//! sync the pager announces from one it makes. This test re-executes its own
//! binary as a child under `strace`; the child runs a workload in both
//! durability modes (growth, regular writes, protected commits, `sync`,
//! close and reopen) and writes a marker line to stderr from the hook at
//! every `Sync` event. The trace must show, after every marker and before the
//! next, exactly one successful `fdatasync` or `fsync` on the pager's file
//! (strace `-y` names each descriptor's file), and none elsewhere.
//!
//! Skipped, with a message on stderr saying why, where strace is not
//! installed or cannot trace (ptrace not permitted).

#![cfg(all(feature = "fault-injection", target_os = "linux"))]

#[path = "support/crash/mod.rs"]
mod crash_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crash_support::{drive, options, run_calls, temp_dir, workload, History};
use mappedpages::fault::{IoEvent, IoHook};
use mappedpages::Durability;

const CHILD_ENV: &str = "MAPPEDPAGES_STRACE_CHILD";
const TEST_NAME: &str = "every_hook_sync_is_one_fdatasync_on_the_file";
const MARKER: &str = "mappedpages-sync-event ";
const CALLS: u64 = 150;

/// The system calls that can make data durable; strace reports these and the
/// marker writes.
const TRACED: &str = "trace=fsync,fdatasync,msync,sync_file_range,sync,syncfs,write";

/// A hook that writes `MARKER <path>` to stderr at every `Sync` event, with
/// one `write` straight to the descriptor (no capture, no buffering), so the
/// marker lands in the trace just before the sync it announces.
fn marking_hook(path: &Path, events: Arc<AtomicU64>) -> IoHook {
    let line = format!("{MARKER}{}\n", path.display());
    IoHook::new(move |event| {
        if let IoEvent::Sync { .. } = event {
            events.fetch_add(1, Ordering::Relaxed);
            std::io::stderr().lock().write_all(line.as_bytes())?;
        }
        Ok(())
    })
}

/// The child: one file per durability mode, created, worked on, closed,
/// reopened and worked on again. Prints how many `Sync` events each file's
/// hook saw.
fn child(dir: &Path) {
    for (name, durability) in [
        ("immediate", Durability::Immediate),
        ("deferred", Durability::Deferred),
    ] {
        let path = dir.join(format!("{name}.bin"));
        let events = Arc::new(AtomicU64::new(0));
        let hook = marking_hook(&path, Arc::clone(&events));
        let mut workload = workload(7);
        let mut history = History::new();
        let created = options(durability).io_hook(hook.clone());
        let pager = created.clone().create(&path).unwrap();
        let mut driver = drive(&path, pager, created);
        run_calls(&mut driver, &mut workload, &mut history, CALLS);
        drop(driver);
        let reopened = options(durability).io_hook(hook);
        let pager = reopened.clone().open(&path).unwrap();
        let mut driver = drive(&path, pager, reopened);
        history.push_same();
        run_calls(&mut driver, &mut workload, &mut history, CALLS);
        driver.pager_mut().sync().unwrap();
        drop(driver);
        println!(
            "EVENTS {} {}",
            path.display(),
            events.load(Ordering::Relaxed)
        );
    }
}

/// One traced system call, or a marker.
#[derive(Debug)]
enum Traced {
    /// The hook announced a sync of this file.
    Marker(String),
    /// A sync call on a descriptor of this path (`None`: no descriptor, as
    /// for `msync` or `sync`), and whether it returned 0.
    Sync {
        call: String,
        path: Option<String>,
        ok: bool,
    },
}

/// Parses strace's `-f -y -o` output. A call another thread interrupted is
/// split into an `<unfinished ...>` line and a `<... resumed>` line; it is
/// placed where it started, with the result of its resumption.
fn parse_trace(trace: &str) -> Vec<Traced> {
    let mut out = Vec::new();
    let mut unfinished: BTreeMap<(String, String), usize> = BTreeMap::new();
    for line in trace.lines() {
        let (pid, rest) = line.split_once(' ').unwrap_or(("", line));
        let rest = rest.trim_start();
        if let Some(resumed) = rest.strip_prefix("<... ") {
            let call = resumed.split(' ').next().unwrap_or("").to_string();
            if let Some(at) = unfinished.remove(&(pid.to_string(), call)) {
                if let Traced::Sync { ok, .. } = &mut out[at] {
                    *ok = rest.trim_end().ends_with("= 0");
                }
            }
            continue;
        }
        let Some((call, args)) = rest.split_once('(') else {
            continue; // exit and signal lines
        };
        if call == "write" {
            if let Some(at) = args.find(&format!("\"{MARKER}")) {
                let text = &args[at + 1 + MARKER.len()..];
                if let Some(end) = text.find("\\n\"") {
                    out.push(Traced::Marker(text[..end].to_string()));
                }
            }
            continue;
        }
        let path = args
            .split_once('<')
            .filter(|(fd, _)| fd.chars().all(|c| c.is_ascii_digit()) && !fd.is_empty())
            .and_then(|(_, p)| p.split_once('>'))
            .map(|(p, _)| p.to_string());
        if rest.contains("<unfinished ...>") {
            unfinished.insert((pid.to_string(), call.to_string()), out.len());
        }
        out.push(Traced::Sync {
            call: call.to_string(),
            path,
            ok: rest.trim_end().ends_with("= 0"),
        });
    }
    out
}

/// Checks that every marker of `file` is followed, before the next marker,
/// by exactly one successful `fdatasync`/`fsync` on `file`, and that no sync
/// of `file` happens anywhere else. Returns the number of markers.
fn check_file(events: &[Traced], file: &str) -> Result<u64, String> {
    let mut markers = 0u64;
    // Syncs of `file` since the last marker (of any file), and whose marker
    // that was.
    let mut window: Option<(u64, bool)> = None;
    let mut syncs_in_window = 0u64;
    let close = |window: Option<(u64, bool)>, syncs: u64| match window {
        Some((n, true)) if syncs != 1 => Err(format!(
            "durability point {n} of {file}: {syncs} fdatasync/fsync calls on the file \
             after the hook's Sync event, not 1"
        )),
        Some((_, false)) | None if syncs > 0 => Err(format!(
            "{syncs} fdatasync/fsync calls on {file} that no Sync event of its hook announced \
             (after marker {window:?})"
        )),
        _ => Ok(()),
    };
    for event in events {
        match event {
            Traced::Marker(path) => {
                close(window, syncs_in_window)?;
                syncs_in_window = 0;
                let ours = path == file;
                if ours {
                    markers += 1;
                }
                window = Some((markers, ours));
            }
            Traced::Sync { call, path, ok } if path.as_deref() == Some(file) => {
                if !matches!(call.as_str(), "fdatasync" | "fsync") {
                    return Err(format!("{call} on {file}: only fdatasync/fsync count"));
                }
                if !ok {
                    return Err(format!("{call} on {file} failed"));
                }
                syncs_in_window += 1;
            }
            Traced::Sync { .. } => {}
        }
    }
    close(window, syncs_in_window)?;
    Ok(markers)
}

/// Runs strace on a command that exits at once: `Err` says why strace
/// cannot be used here.
fn strace_usable() -> Result<(), String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let probe = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e", "trace=fdatasync"])
        .arg(&exe)
        .arg("--list")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match probe {
        Err(e) => Err(format!("strace could not be run ({e}); is it installed?")),
        Ok(out) if !out.status.success() => Err(format!(
            "strace cannot trace here ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Ok(_) => Ok(()),
    }
}

#[test]
fn every_hook_sync_is_one_fdatasync_on_the_file() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
        return;
    }
    if let Err(why) = strace_usable() {
        // Straight to the descriptor: libtest captures `eprintln!` of a test
        // that passes, and a skip must never be silent.
        let _ = writeln!(
            std::io::stderr(),
            "{TEST_NAME}: SKIPPED, the real syncs are not checked: {why}"
        );
        return;
    }
    let dir = temp_dir();
    let trace_path = dir.path().join("trace.txt");
    let out = Command::new("strace")
        .args(["-f", "-y", "-qq", "-s", "4096", "-e", TRACED, "-o"])
        .arg(&trace_path)
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", TEST_NAME, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the traced child failed ({}): {}\n{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    let trace = std::fs::read_to_string(&trace_path).unwrap();
    let events = parse_trace(&trace);
    let mut files = 0;
    for line in stdout.lines() {
        let Some(at) = line.find("EVENTS ") else {
            continue;
        };
        let (file, count) = line[at + 7..].rsplit_once(' ').unwrap();
        let hook_events: u64 = count.parse().unwrap();
        let markers = check_file(&events, file).unwrap_or_else(|e| panic!("{e}"));
        // The trace saw every marker the hook wrote: none was lost to a
        // parsing slip, which would let a missing sync pass unseen.
        assert_eq!(markers, hook_events, "markers in the trace of {file}");
        assert!(hook_events >= 20, "{file}: only {hook_events} sync events");
        println!("{file}: {hook_events} hook Sync events, each one fdatasync/fsync on the file");
        files += 1;
    }
    assert_eq!(files, 2, "the child reported on {files} files: {stdout}");
}

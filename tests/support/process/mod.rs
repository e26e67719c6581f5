//! Test support: this test binary run again as a second process, and
//! system programs run for set-up (mounts). Shared by the tests that need
//! another process or a mount.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Runs this test binary again as a child that runs only the test `entry`,
/// with `role` and `path` in the environment variables `role_env` and
/// `path_env` (the test reads them and acts as the child); its stdin and
/// stdout are piped to this process.
pub fn spawn_child(entry: &str, role_env: &str, role: &str, path_env: &str, path: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", entry, "--nocapture", "--test-threads=1"])
        .env(role_env, role)
        .env(path_env, path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Reads the child's stdout up to its `RESULT` line. A child that blocked
/// in `open` instead of failing would never answer: after a generous grace
/// period it is killed and the test fails (a guard against a hang, not a
/// timing assertion).
pub fn result_of(child: &mut Child) -> String {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        // Read to the end, so that the child never writes into a closed pipe.
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(at) = line.find("RESULT ") {
                let _ = tx.send(line[at + 7..].trim().to_string());
            }
            line.clear();
        }
        let _ = tx.send("NO RESULT".to_string());
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(result) = rx.recv_timeout(Duration::from_millis(100)) {
            return result;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the other process neither opened the file nor failed: it blocked");
        }
    }
}

/// Runs `program` with `args`; the error says what went wrong.
pub fn run(program: &str, args: &[&OsStr]) -> Result<(), String> {
    let candidates = [
        PathBuf::from(program),
        Path::new("/bin").join(program),
        Path::new("/sbin").join(program),
        Path::new("/usr/sbin").join(program),
    ];
    let mut last = format!("{program} not found");
    for candidate in candidates {
        match Command::new(&candidate).args(args).output() {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                return Err(format!(
                    "{program} failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => last = format!("cannot run {program}: {e}"),
        }
    }
    Err(last)
}

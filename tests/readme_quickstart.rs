//! The README's Quick start is a whole program a newcomer pastes into the
//! `main.rs` of a new binary crate. The README's doc test compiles and runs
//! it, but rustdoc would also accept lines hidden with `#` and the crate's
//! dev-dependencies, which a new crate does not have; these tests hold the
//! block to what a paste needs. With `MAPPEDPAGES_DEEP_TESTS=1` the block is
//! also built as a new crate with `cargo build --offline`.

#[path = "support/depth/mod.rs"]
mod depth_support;

use std::path::Path;
use std::process::Command;

/// The first Rust code block after the `## Quick start` heading.
fn quick_start() -> String {
    let readme = include_str!("../README.md");
    let section = readme
        .split_once("\n## Quick start\n")
        .expect("a Quick start section")
        .1;
    let block = section
        .split_once("```rust\n")
        .expect("a Rust code block in the Quick start")
        .1;
    block
        .split_once("\n```")
        .expect("the block ends")
        .0
        .to_string()
}

#[test]
fn the_quick_start_is_a_whole_program_with_nothing_hidden() {
    let code = quick_start();
    assert!(code.contains("fn main() -> Result<(), Box<dyn std::error::Error>> {"));
    for line in code.lines() {
        let trimmed = line.trim_start();
        assert!(
            !(trimmed == "#" || trimmed.starts_with("# ")),
            "a line rustdoc hides, which a paste would keep: {line}"
        );
    }
    for foreign in ["tempfile", "proptest", "tokio"] {
        assert!(!code.contains(foreign), "uses {foreign}, a dev-dependency");
    }
}

#[test]
fn the_quick_start_builds_as_a_new_crate() {
    if !depth_support::deep_tests() {
        println!("skipped: set MAPPEDPAGES_DEEP_TESTS=1 to build the Quick start as a new crate");
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let project = scratch.path();
    std::fs::create_dir(project.join("src")).unwrap();
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let manifest = format!(
        "[package]\nname = \"quickstart-paste\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
         [dependencies]\nmappedpages = {{ path = {:?} }}\n",
        crate_dir.display().to_string()
    );
    std::fs::write(project.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(project.join("src/main.rs"), quick_start()).unwrap();
    // The crate's own lock file pins the same versions, so the build needs
    // no network.
    std::fs::copy(crate_dir.join("Cargo.lock"), project.join("Cargo.lock")).unwrap();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args(["run", "--offline", "--quiet"])
        .current_dir(project)
        .env_remove("CARGO_TARGET_DIR")
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "the pasted Quick start does not build and run:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Hello"));
}

//! `mappedpages`: look inside a page file without changing it.
//!
//! ```text
//! mappedpages info FILE        what the file holds: page size, counts, generation
//! mappedpages check FILE       verify every checksum and invariant; exit 1 on a problem
//! mappedpages dump FILE PAGE   hex and ASCII of one page, decoded fields for pages 0-2
//! ```
//!
//! The file is read without the pager's lock and never written. Exit status:
//! 0 on success, 1 when `check` finds a problem, 2 when the file cannot be
//! inspected (missing, not a page file, unreadable) or the arguments are wrong.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use mappedpages::inspect::{
    FileInfo, Inspector, LogEntry, PageKind, Progress, RootCopy, RootInfo, SlotState,
};
use mappedpages::MappedPageError;

/// Inspect and check mappedpages files (read-only).
#[derive(Parser)]
#[command(name = "mappedpages", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Page size, page counts, free pages, generation, format version and
    /// durability of the last commit.
    Info {
        /// The page file.
        file: PathBuf,
    },
    /// Verify every checksum and invariant; exit 1 if anything is wrong.
    Check {
        /// The page file.
        file: PathBuf,
        /// Show progress on stderr even when it is not a terminal or the
        /// file is small.
        #[arg(long)]
        progress: bool,
    },
    /// Hex and ASCII of one page; for pages 0 to 2 also the decoded fields.
    Dump {
        /// The page file.
        file: PathBuf,
        /// The page number.
        page: u64,
    },
}

/// Exit status when `check` finds a problem.
const EXIT_PROBLEMS: u8 = 1;
/// Exit status when the file cannot be inspected.
const EXIT_ERROR: u8 = 2;
/// Metadata pages from which a check shows progress by itself.
const PROGRESS_FROM: u64 = 4096;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (file, outcome) = match &cli.command {
        Command::Info { file } => (file, info(file)),
        Command::Check { file, progress } => (file, check(file, *progress)),
        Command::Dump { file, page } => (file, dump(file, *page)),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mappedpages: {}: {}", file.display(), one_line(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The error on one line.
fn one_line(err: &MappedPageError) -> String {
    err.to_string().replace('\n', " ")
}

fn info(path: &Path) -> Result<ExitCode, MappedPageError> {
    let file = Inspector::open(path)?;
    let info = match file.info() {
        Ok(info) => info,
        Err(err) => {
            // The error says that the file does not open; the check says
            // why, copy by copy: one line either way.
            let why = file
                .check()
                .ok()
                .filter(|report| !report.problems.is_empty())
                .map(|report| {
                    let problems: Vec<String> =
                        report.problems.iter().map(ToString::to_string).collect();
                    problems.join("; ")
                });
            let Some(why) = why else { return Err(err) };
            eprintln!(
                "mappedpages: {}: {}",
                path.display(),
                why.replace('\n', " ")
            );
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    };
    println!("file        {} ({} bytes)", path.display(), info.file_len);
    print_summary(&info);
    Ok(ExitCode::SUCCESS)
}

fn print_summary(info: &FileInfo) {
    let r = &info.recovery;
    println!(
        "format      version {}, {}-byte pages",
        info.format_version, info.page_size
    );
    println!(
        "generation  {} (copy {}), last commit {}",
        r.generation,
        copy_name(r.root_copy),
        if r.last_commit_synced {
            "synced before it returned (Immediate)"
        } else {
            "not synced (Deferred)"
        }
    );
    for (copy, root) in info.copies.iter().enumerate() {
        let opened = if copy == usize::from(r.root_copy) {
            "  <- opened"
        } else {
            ""
        };
        println!(
            "copy {}      {}{opened}",
            copy_name(copy as u8),
            describe_copy(root)
        );
    }
    if let Some(problem) = &r.other_copy_problem {
        println!("fell back   yes: the other copy: {problem}");
    }
    println!(
        "pages       {} total: 3 reserved, {} regular, {} protected ({} copies), {} tree, {} free",
        info.total_pages,
        info.regular_pages,
        info.protected_pages,
        2 * info.protected_pages,
        info.tree_pages,
        info.free_pages
    );
    println!(
        "log         {} records, {} page checks ({} check pages)",
        info.log_len, info.page_checks, info.check_pages
    );
    println!(
        "trees       bitmap height {}, directory height {} ({} directory slots)",
        info.bitmap_height, info.directory_height, info.directory_slots
    );
}

fn copy_name(copy: u8) -> &'static str {
    if copy == 0 {
        "A"
    } else {
        "B"
    }
}

fn describe_copy(copy: &RootCopy) -> String {
    match copy {
        RootCopy::Blank => "blank".to_string(),
        RootCopy::Damaged(why) => format!("damaged: {why}"),
        RootCopy::UnsupportedVersion(v) => format!("format version {v} (unsupported)"),
        RootCopy::Decoded(root) => format!("generation {}", root.generation),
        _ => "unknown".to_string(),
    }
}

fn check(path: &Path, force_progress: bool) -> Result<ExitCode, MappedPageError> {
    let file = Inspector::open(path)?;
    let show = force_progress || std::io::stderr().is_terminal();
    let mut shown = None;
    let report = file.check_with_progress(|p| {
        if show && (force_progress || p.pages_expected >= PROGRESS_FROM) {
            shown = show_progress(p, shown);
        }
    })?;
    if shown.is_some() {
        eprintln!();
    }
    println!(
        "checked     {} ({} metadata pages read): superblock, both metadata copies, page \
         trees, log replay, page checks, page ownership, file length",
        path.display(),
        report.pages_read
    );
    if let Some(info) = &report.info {
        print_summary(info);
    }
    if report.is_clean() {
        println!("OK          no problems found");
        return Ok(ExitCode::SUCCESS);
    }
    for problem in &report.problems {
        println!("PROBLEM     {problem}");
    }
    let opens = report.problems.iter().all(|p| !p.prevents_open());
    println!(
        "{} problem(s) found; the file {}",
        report.problems.len(),
        if opens {
            "opens, at the generation above"
        } else {
            "does not open"
        }
    );
    Ok(ExitCode::from(EXIT_PROBLEMS))
}

/// Redraws the progress line when the percentage changed; returns the
/// percentage shown.
fn show_progress(p: Progress, shown: Option<u64>) -> Option<u64> {
    let percent = p.pages_read * 100 / p.pages_expected.max(1);
    if shown == Some(percent) {
        return shown;
    }
    let mut err = std::io::stderr().lock();
    let line = format!(
        "checking: {percent:3}% ({} of at most {} metadata pages)",
        p.pages_read, p.pages_expected
    );
    let _ = write!(err, "\r{line:<72}");
    let _ = err.flush();
    Some(percent)
}

fn dump(path: &Path, page: u64) -> Result<ExitCode, MappedPageError> {
    let file = Inspector::open(path)?;
    let page_size = file.superblock().page_size;
    let bytes = match file.read_page(page) {
        Err(MappedPageError::OutOfBounds) => {
            eprintln!(
                "mappedpages: {}: page {page} is past the end of the file ({} pages)",
                path.display(),
                file.file_len() / page_size
            );
            return Ok(ExitCode::from(EXIT_ERROR));
        }
        other => other?,
    };
    let kind = match file.page_kind(page) {
        Ok(kind) => describe_kind(kind),
        Err(err) => format!("use unknown: {}", one_line(&err)),
    };
    println!(
        "page {page} of {} ({kind}), bytes {}..{}",
        path.display(),
        page * page_size,
        (page + 1) * page_size
    );
    match page {
        0 => {
            let sb = file.superblock();
            println!(
                "superblock  magic \"MAPPEDPG\", format version {}, page size {}, checksum {:#010x} (valid)",
                sb.format_version, sb.page_size, sb.checksum
            );
        }
        1 | 2 => match &file.copies()[page as usize - 1] {
            RootCopy::Decoded(root) => print_root(root),
            other => println!("root        {}", describe_copy(other)),
        },
        _ => {}
    }
    print_hex(&bytes);
    Ok(ExitCode::SUCCESS)
}

fn describe_kind(kind: PageKind) -> String {
    match kind {
        PageKind::Superblock => "superblock".to_string(),
        PageKind::Root(copy) => format!("metadata root, copy {}", copy_name(copy)),
        PageKind::Regular => "allocated regular page".to_string(),
        PageKind::ProtectedCopy {
            slot,
            copy,
            committed,
        } => format!(
            "copy {copy} of protected page {slot}, {}",
            if committed {
                "committed bytes"
            } else {
                "staging copy"
            }
        ),
        PageKind::TreePage => "free-space bitmap or directory tree page".to_string(),
        PageKind::Free => "free page".to_string(),
        PageKind::PastEnd => "past the pages the metadata counts on".to_string(),
        _ => "unknown use".to_string(),
    }
}

fn print_root(root: &RootInfo) {
    println!(
        "root        magic \"MPGROOT\", generation {}, {} commit, checksum {:#010x} (valid)",
        root.generation,
        if root.synced { "synced" } else { "unsynced" },
        root.checksum
    );
    println!(
        "            total pages {}, regular count {}",
        root.total_pages, root.regular_count
    );
    println!(
        "            bitmap tree: top page {}, height {}; directory tree: top page {}, height {}, {} slots",
        root.bitmap_top, root.bitmap_height, root.directory_top, root.directory_height, root.directory_slots
    );
    println!(
        "            log: {} records and {} page checks (room for {})",
        root.log.len(),
        root.page_checks.len(),
        root.log_capacity
    );
    for entry in &root.log {
        let text = match *entry {
            LogEntry::Alloc { start, count } => format!("alloc pages {start}..{}", start + count),
            LogEntry::Free { start, count } => format!("free pages {start}..{}", start + count),
            LogEntry::Slot {
                slot,
                copies,
                state,
            } => {
                let state = match state {
                    SlotState::Free => "free".to_string(),
                    SlotState::Fresh => "allocated, never committed".to_string(),
                    SlotState::Committed(c) => format!("committed in copy {c}"),
                    _ => "unknown".to_string(),
                };
                format!(
                    "protected page {slot}: copies {} and {}, {state}",
                    copies[0], copies[1]
                )
            }
            _ => "unknown record".to_string(),
        };
        println!("              {text}");
    }
    if root.check_page != 0 {
        println!(
            "              {} more page checks in check pages from page {}",
            root.check_pages_len, root.check_page
        );
    }
    for check in &root.page_checks {
        println!(
            "              page check: page {} has CRC {:#010x}",
            check.page, check.crc
        );
    }
}

/// `hexdump -C` style: offset, 16 bytes in hex, ASCII; repeated lines as `*`.
fn print_hex(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    let mut previous: Option<&[u8]> = None;
    let mut starred = false;
    for (i, line) in bytes.chunks(16).enumerate() {
        if previous == Some(line) {
            if !starred {
                let _ = writeln!(out, "*");
                starred = true;
            }
            continue;
        }
        previous = Some(line);
        starred = false;
        let mut hex = String::with_capacity(50);
        for (j, byte) in line.iter().enumerate() {
            if j == 8 {
                hex.push(' ');
            }
            hex.push_str(&format!("{byte:02x} "));
        }
        let ascii: String = line
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        let _ = writeln!(out, "{:08x}  {hex:<49} |{ascii}|", i * 16);
    }
    let _ = writeln!(out, "{:08x}", bytes.len());
}

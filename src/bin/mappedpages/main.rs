//! `mappedpages`: look inside a page file without changing it, or copy it.
//!
//! ```text
//! mappedpages info FILE        what the file holds: page size, counts, generation
//! mappedpages check FILE       verify every checksum and invariant; exit 1 on a problem
//! mappedpages dump FILE PAGE   hex and ASCII of one page, decoded fields for pages 0-2
//! mappedpages pages FILE       every page by kind, and the protected slots
//! mappedpages copy SRC DST     a consistent copy of the newest commit of SRC
//! mappedpages readers FILE     the readers of other processes following its writer
//! ```
//!
//! `info`, `check`, `dump` and `pages` read the file without the pager's
//! lock, so they also look at a file that a writer holds or that does not
//! open; `info`, `check`, `pages` and `readers` print JSON with `--json`.
//! `copy` opens the source as a `ReadOnlyPager` (a shared lock) so that the
//! copy is one committed state; while a `Pager` writes it, it copies a
//! snapshot read through the file's reader table if the writer accepts
//! readers of other processes, and is refused if not. No command writes the
//! file it inspects or copies (`readers` and a copy beside a writer
//! register in, or clear dead readers from, the reader table). Page numbers are decimal or hexadecimal
//! (`0x1f`).
//!
//! Exit status: 0 on success; 1 when `check` finds anything wrong, the file
//! missing, unreadable, empty or not a page file included; 2 when another
//! command cannot do its job (the file missing, not a page file, unreadable,
//! locked, or a destination that exists) or the arguments are wrong.

/// The instance of the generic function `$f` for files of `$page_size`
/// bytes per page, as a `$ty` function pointer; `None` for a size no file
/// can have. The page size is a type parameter of the crate's types, so
/// each size a file may have (2^10 to 2^30) is its own instance.
macro_rules! for_page_size {
    ($page_size:expr, $f:ident as $ty:ty) => {
        for_page_size!(@shifts $page_size, $f, $ty,
            10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30)
    };
    (@shifts $page_size:expr, $f:ident, $ty:ty, $($shift:literal)*) => {
        match $page_size {
            size if size.is_power_of_two() => match size.trailing_zeros() {
                $($shift => Some($f::<{ 1 << $shift }> as $ty),)*
                _ => None,
            },
            _ => None,
        }
    };
}

mod copy;
mod describe;
mod dump;
mod json;
mod progress;
mod readers;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::ProgressStyle;
use json::Json;
use mappedpages::inspect::{Inspector, PageKind, PageRun, Progress};
use mappedpages::MappedPageError;
use progress::LazyBar;

use copy::copy;
use describe::{
    copies_json, describe_kind, info_json, kind_name, page_number, print_copies, print_summary,
    problems_json,
};
use dump::dump;

/// Inspect, check and copy mappedpages files (never writing the file read).
#[derive(Parser)]
#[command(name = "mappedpages", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Page size, page counts, free pages, generation, format version and
    /// durability of the last commit; for a file that does not open, what
    /// is wrong with each metadata copy.
    Info {
        /// The page file.
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify every checksum and invariant. Exit 1 if anything is wrong,
    /// including a missing, empty or unreadable file and one that is not a
    /// page file (damaged superblock); 0 if nothing is.
    Check {
        /// The page file.
        file: PathBuf,
        /// Show progress on stderr even when it is not a terminal or the
        /// file is small.
        #[arg(long)]
        progress: bool,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Hex and ASCII of one page, with what the page is used for; for pages
    /// 0 to 2 also the decoded fields. The bytes are shown even when the
    /// superblock is damaged (the page size is then taken from its page
    /// size field if that is plausible, else from --page-size).
    Dump {
        /// The page file.
        file: PathBuf,
        /// The page number, decimal or hexadecimal (0x...).
        #[arg(value_parser = parse_page)]
        page: u64,
        /// The page size to use when the superblock does not give one.
        #[arg(long, default_value_t = 4096)]
        page_size: u64,
    },
    /// Every page of the file by kind (superblock, metadata roots, regular,
    /// protected copies, tree pages, check pages, free), as runs of pages,
    /// and the protected slots in use with their two copies.
    #[command(alias = "list")]
    Pages {
        /// The page file.
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Copy the newest commit of SRC to the new file DST: the same page ids
    /// and bytes, free pages left out (a sparse file, cut after its last
    /// page in use), synced before it returns.
    ///
    /// SRC is opened read-only under a shared lock. While another process
    /// (or this one) has it open with a `Pager`, the copy reads a snapshot
    /// of its newest commit through the file's reader table, beside the
    /// writer, if the writer accepts readers of other processes; if not, it
    /// is refused with "the file is locked by another Pager". A SRC that does not open
    /// (damaged, not a page file) is refused and no DST is made. DST must
    /// not exist; it is built under a temporary name beside it
    /// (DST.<pid>-<n>-<time>.partial) and linked to DST when complete,
    /// which fails, rather than replace it, if a file took the name DST
    /// meanwhile.
    Copy {
        /// The page file to copy (never written).
        src: PathBuf,
        /// The new file; refused if it exists.
        dst: PathBuf,
        /// Show progress on stderr even when it is not a terminal or the
        /// copy is small.
        #[arg(long)]
        progress: bool,
    },
    /// The readers of other processes that follow the file's writer, from
    /// its reader table: slot, process id, the generation each reads, how
    /// many commits it is behind, the pages its commit counts, and for how
    /// long it has read it. Readers found dead are cleared on the way.
    Readers {
        /// The page file.
        file: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Exit status when `check` finds a problem.
const EXIT_PROBLEMS: u8 = 1;
/// Exit status when the file cannot be inspected.
const EXIT_ERROR: u8 = 2;
/// Metadata pages from which a check shows progress by itself.
const PROGRESS_FROM: u64 = 4096;
/// Bytes to copy from which a copy shows progress by itself: below this a
/// copy takes well under a second.
const COPY_PROGRESS_FROM: u64 = 256 << 20;
/// Where the superblock keeps the page size (FORMAT.md, "Superblock").
const SUPERBLOCK_PAGE_SIZE_AT: usize = 16;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (file, outcome) = match &cli.command {
        Command::Info { file, json } => (file, info(file, *json)),
        Command::Check {
            file,
            progress,
            json,
        } => (file, check(file, *progress, *json)),
        Command::Dump {
            file,
            page,
            page_size,
        } => (file, dump(file, *page, *page_size)),
        Command::Pages { file, json } => (file, pages(file, *json)),
        Command::Copy { src, dst, progress } => (src, copy(src, dst, *progress)),
        Command::Readers { file, json } => (file, readers::readers(file, *json)),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("mappedpages: {}: {}", file.display(), one_line(&err));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// A page number in decimal or, with `0x`, hexadecimal.
fn parse_page(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|err| format!("not a page number ({err}): {text}"))
}

/// The error on one line.
fn one_line(err: &MappedPageError) -> String {
    err.to_string().replace('\n', " ")
}

fn info(path: &Path, json: bool) -> Result<ExitCode, MappedPageError> {
    let file = Inspector::open(path)?;
    match file.info() {
        Ok(info) if json => println!("{}", info_json(path, &info)),
        Ok(info) => {
            println!("file        {} ({} bytes)", path.display(), info.file_len);
            print_summary(&info);
        }
        Err(err) => {
            // The file does not open: say why, copy by copy, as `check` does.
            let problems = file.check().map(|r| r.problems).unwrap_or_default();
            if json {
                println!(
                    "{}",
                    Json::Obj(vec![
                        ("file", path.display().to_string().into()),
                        ("opens", false.into()),
                        ("error", one_line(&err).into()),
                        ("copies", copies_json(file.copies())),
                        ("problems", problems_json(&problems)),
                    ])
                );
            } else {
                eprintln!(
                    "mappedpages: {}: does not open: {}",
                    path.display(),
                    one_line(&err)
                );
                println!("file        {} ({} bytes)", path.display(), file.file_len());
                print_copies(file.copies(), None);
                for problem in &problems {
                    println!("PROBLEM     {problem}");
                }
            }
            return Ok(ExitCode::from(EXIT_ERROR));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Checks the file; anything that keeps it from being a sound page file,
/// including a file that cannot be read at all, is a problem (exit 1).
fn check(path: &Path, force_progress: bool, json: bool) -> Result<ExitCode, MappedPageError> {
    let file = match Inspector::open(path) {
        Ok(file) => file,
        Err(err) => return Ok(unreadable(path, &err, json)),
    };
    let mut bar = LazyBar::new(force_progress, PROGRESS_FROM, || {
        ProgressStyle::with_template(
            "checking {wide_bar} {pos}/{len} metadata pages at most ({percent}%)",
        )
    });
    let report = file.check_with_progress(|p: Progress| {
        // The bound only shrinks towards the pages really read, so the bar
        // ends full.
        bar.update(p.pages_read, p.pages_expected);
    });
    bar.finish(report.is_ok());
    let report = match report {
        Ok(report) => report,
        Err(err) => return Ok(unreadable(path, &err, json)),
    };
    let opens = report.problems.iter().all(|p| !p.prevents_open());
    if json {
        println!(
            "{}",
            Json::Obj(vec![
                ("file", path.display().to_string().into()),
                ("clean", report.is_clean().into()),
                ("opens", opens.into()),
                ("pages_read", report.pages_read.into()),
                ("copies", copies_json(file.copies())),
                ("problems", problems_json(&report.problems)),
                (
                    "info",
                    report
                        .info
                        .as_ref()
                        .map_or(Json::Null, |i| info_json(path, i))
                ),
            ])
        );
    } else {
        println!(
            "checked     {} ({} metadata pages read): superblock, both metadata copies, page \
             trees, log replay, page checks, page ownership, file length",
            path.display(),
            report.pages_read
        );
        match &report.info {
            Some(info) => print_summary(info),
            None => print_copies(file.copies(), None),
        }
        if report.is_clean() {
            println!("OK          no problems found");
        } else {
            for problem in &report.problems {
                println!("PROBLEM     {problem}");
            }
            println!(
                "{} problem(s) found; the file {}",
                report.problems.len(),
                if opens {
                    "opens, at the generation above"
                } else {
                    "does not open"
                }
            );
        }
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_PROBLEMS)
    })
}

/// `check` of a file that could not be inspected at all (missing, empty,
/// unreadable, not a page file): one problem, exit 1.
fn unreadable(path: &Path, err: &MappedPageError, json: bool) -> ExitCode {
    let why = if file_is_empty(path) {
        format!("empty file, not a page file ({})", one_line(err))
    } else {
        one_line(err)
    };
    if json {
        println!(
            "{}",
            Json::Obj(vec![
                ("file", path.display().to_string().into()),
                ("clean", false.into()),
                ("opens", false.into()),
                (
                    "problems",
                    Json::Arr(vec![Json::Obj(vec![
                        ("problem", why.into()),
                        ("prevents_open", true.into()),
                    ])])
                ),
            ])
        );
    } else {
        println!("checked     {}", path.display());
        println!("PROBLEM     {why}");
        println!("1 problem(s) found; the file does not open");
    }
    ExitCode::from(EXIT_PROBLEMS)
}

fn file_is_empty(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.len() == 0)
}

/// Lists the pages by kind, in runs, then the protected slots in use.
fn pages(path: &Path, json: bool) -> Result<ExitCode, MappedPageError> {
    let file = Inspector::open(path)?;
    let runs = file.page_runs()?;
    let mut slots: std::collections::BTreeMap<u64, [(u64, bool); 2]> = Default::default();
    for run in &runs {
        if let PageKind::ProtectedCopy {
            slot,
            copy,
            committed,
        } = run.kind
        {
            let entry = slots.entry(slot).or_default();
            entry[usize::from(copy & 1)] = (run.start, committed);
        }
    }
    if json {
        let runs = runs
            .iter()
            .map(|run| {
                Json::Obj(vec![
                    ("start", run.start.into()),
                    ("count", run.count.into()),
                    ("kind", kind_name(run.kind).into()),
                ])
            })
            .collect();
        let slots = slots
            .iter()
            .map(|(slot, copies)| {
                let committed = copies.iter().position(|c| c.1);
                Json::Obj(vec![
                    ("slot", (*slot).into()),
                    (
                        "copies",
                        Json::Arr(vec![copies[0].0.into(), copies[1].0.into()]),
                    ),
                    ("committed_copy", committed.into()),
                ])
            })
            .collect();
        println!(
            "{}",
            Json::Obj(vec![
                ("file", path.display().to_string().into()),
                ("runs", Json::Arr(runs)),
                ("protected", Json::Arr(slots)),
            ])
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!("pages of {}", path.display());
    for run in &runs {
        println!("{:<24}{}", page_range(run), describe_kind(run.kind));
    }
    println!("protected slots in use: {}", slots.len());
    for (slot, copies) in &slots {
        let committed = match copies.iter().position(|c| c.1) {
            Some(copy) => format!("committed bytes in copy {copy}"),
            None => "never committed (reads as zeros)".to_string(),
        };
        println!(
            "slot {slot:<18} copies at pages {} and {}, {committed}",
            page_number(copies[0].0),
            page_number(copies[1].0)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn page_range(run: &PageRun) -> String {
    if run.count == 1 {
        page_number(run.start)
    } else {
        let last = run.start + run.count - 1;
        format!("{}..={}", page_number(run.start), page_number(last))
    }
}

//! `mappedpages`: look inside a page file without changing it, or copy it.
//!
//! ```text
//! mappedpages info FILE        what the file holds: page size, counts, generation
//! mappedpages check FILE       verify every checksum and invariant; exit 1 on a problem
//! mappedpages dump FILE PAGE   hex and ASCII of one page, decoded fields for pages 0-2
//! mappedpages pages FILE       every page by kind, and the protected slots
//! mappedpages copy SRC DST     a consistent copy of the newest commit of SRC
//! ```
//!
//! `info`, `check`, `dump` and `pages` read the file without the pager's
//! lock, so they also look at a file that a writer holds or that does not
//! open; `info`, `check` and `pages` print JSON with `--json`. `copy` opens
//! the source as a `ReadOnlyPager` (a shared lock: refused while a `Pager`
//! writes it) so that the copy is one committed state. No command writes the
//! file it inspects or copies. Page numbers are decimal or hexadecimal
//! (`0x1f`).
//!
//! Exit status: 0 on success; 1 when `check` finds anything wrong, the file
//! missing, unreadable, empty or not a page file included; 2 when another
//! command cannot do its job (the file missing, not a page file, unreadable,
//! locked, or a destination that exists) or the arguments are wrong.

mod json;
mod progress;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use indicatif::ProgressStyle;
use json::Json;
use mappedpages::inspect::{
    FileInfo, Inspector, LogEntry, PageKind, PageRun, Problem, Progress, RootCopy, RootInfo,
    SlotState,
};
use mappedpages::{MappedPageError, ReadOnlyPager, Snapshot};
use progress::LazyBar;

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
    /// SRC is opened read-only under a shared lock: while another process
    /// (or this one) has it open with a `Pager`, the copy is refused with
    /// "the file is locked by another Pager". A SRC that does not open
    /// (damaged, not a page file) is refused and no DST is made. DST must
    /// not exist; it is built as DST.partial and renamed when complete.
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

fn info_json(path: &Path, info: &FileInfo) -> Json {
    let r = &info.recovery;
    Json::Obj(vec![
        ("file", path.display().to_string().into()),
        ("opens", true.into()),
        ("file_len", info.file_len.into()),
        ("format_version", info.format_version.into()),
        ("page_size", info.page_size.into()),
        ("generation", r.generation.into()),
        ("opened_copy", copy_name(r.root_copy).into()),
        ("last_commit_synced", r.last_commit_synced.into()),
        ("fell_back", r.fell_back.into()),
        ("other_copy_problem", r.other_copy_problem.clone().into()),
        ("copies", copies_json(&info.copies)),
        ("total_pages", info.total_pages.into()),
        ("regular_pages", info.regular_pages.into()),
        ("protected_pages", info.protected_pages.into()),
        ("tree_pages", info.tree_pages.into()),
        ("check_pages", info.check_pages.into()),
        ("free_pages", info.free_pages.into()),
        ("log_records", info.log_len.into()),
        ("page_checks", info.page_checks.into()),
        ("bitmap_height", info.bitmap_height.into()),
        ("directory_height", info.directory_height.into()),
        ("directory_slots", info.directory_slots.into()),
    ])
}

fn copies_json(copies: &[RootCopy; 2]) -> Json {
    let copy = |i: usize| {
        let (state, detail): (&str, Json) = match &copies[i] {
            RootCopy::Blank => ("blank", Json::Null),
            RootCopy::Damaged(why) => ("damaged", why.as_str().into()),
            RootCopy::UnsupportedVersion(v) => ("unsupported_version", (*v).into()),
            RootCopy::Decoded(root) => ("decoded", root.generation.into()),
            _ => ("unknown", Json::Null),
        };
        Json::Obj(vec![
            ("copy", copy_name(i as u8).into()),
            ("page", (i as u64 + 1).into()),
            ("state", state.into()),
            ("detail", detail),
        ])
    };
    Json::Arr(vec![copy(0), copy(1)])
}

fn problems_json(problems: &[Problem]) -> Json {
    Json::Arr(
        problems
            .iter()
            .map(|p| {
                Json::Obj(vec![
                    ("problem", p.to_string().into()),
                    ("prevents_open", p.prevents_open().into()),
                ])
            })
            .collect(),
    )
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
    print_copies(&info.copies, Some(r.root_copy));
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

/// Both metadata copies, one line each; `opened` marks the one open took.
fn print_copies(copies: &[RootCopy; 2], opened: Option<u8>) {
    for (copy, root) in copies.iter().enumerate() {
        let mark = if opened == Some(copy as u8) {
            "  <- opened"
        } else {
            ""
        };
        println!(
            "copy {}      {}{mark}",
            copy_name(copy as u8),
            describe_copy(root)
        );
    }
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

/// A page number in decimal and hexadecimal.
fn page_number(page: u64) -> String {
    format!("{page} ({page:#x})")
}

fn page_range(run: &PageRun) -> String {
    if run.count == 1 {
        page_number(run.start)
    } else {
        let last = run.start + run.count - 1;
        format!("{}..={}", page_number(run.start), page_number(last))
    }
}

/// A stable one-word name of a page kind, for JSON.
fn kind_name(kind: PageKind) -> &'static str {
    match kind {
        PageKind::Superblock => "superblock",
        PageKind::Root(_) => "metadata_root",
        PageKind::Regular => "regular",
        PageKind::ProtectedCopy { .. } => "protected_copy",
        PageKind::TreePage => "tree",
        PageKind::CheckPage => "check",
        PageKind::Free => "free",
        PageKind::PastEnd => "past_end",
        _ => "unknown",
    }
}

/// Copies with the page size read from the source's superblock; errors
/// about the source are returned (and printed with its name), errors about
/// the destination are printed here with its name.
fn copy(src: &Path, dst: &Path, force_progress: bool) -> Result<ExitCode, MappedPageError> {
    let page_size = Inspector::open(src)?.superblock().page_size;
    let Some(open) = opener(page_size) else {
        return Err(MappedPageError::InvalidPageSize);
    };
    let source = open(src)?;
    let mut bar = LazyBar::new(force_progress, COPY_PROGRESS_FROM, || {
        ProgressStyle::with_template(
            "copying {wide_bar} {binary_bytes}/{binary_total_bytes} ({binary_bytes_per_sec}, {eta} left)",
        )
    });
    let result = source.copy(dst, &mut |done, total| {
        bar.update(done * page_size, total * page_size);
    });
    bar.finish(result.is_ok());
    match result {
        Ok(()) => {
            println!(
                "copied      {} to {} ({} allocated pages of {page_size} bytes, generation {})",
                src.display(),
                dst.display(),
                source.allocated(),
                source.generation()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(err) => {
            let why = match &err {
                MappedPageError::Io(io) if io.kind() == std::io::ErrorKind::AlreadyExists => {
                    "the destination exists; copy makes a new file and never overwrites one"
                        .to_string()
                }
                other => one_line(other),
            };
            eprintln!("mappedpages: {}: {why}", dst.display());
            Ok(ExitCode::from(EXIT_ERROR))
        }
    }
}

/// A source opened for copying, whatever its page size.
trait Source {
    fn copy(&self, dst: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<(), MappedPageError>;
    fn allocated(&self) -> u64;
    fn generation(&self) -> u64;
}

impl<const P: usize> Source for ReadOnlyPager<P> {
    fn copy(&self, dst: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<(), MappedPageError> {
        self.copy_to_with_progress(dst, progress)
    }

    fn allocated(&self) -> u64 {
        self.allocated_page_count()
    }

    fn generation(&self) -> u64 {
        Snapshot::generation(self)
    }
}

type Opener = fn(&Path) -> Result<Box<dyn Source>, MappedPageError>;

fn open_source<const P: usize>(src: &Path) -> Result<Box<dyn Source>, MappedPageError> {
    Ok(Box::new(ReadOnlyPager::<P>::open(src)?))
}

/// The opener for files of `page_size`: the page size is a type parameter
/// of the pager, so each supported size is its own instance.
fn opener(page_size: u64) -> Option<Opener> {
    macro_rules! by_shift {
        ($($shift:literal)*) => {
            match page_size.trailing_zeros() {
                $($shift => Some(open_source::<{ 1 << $shift }> as Opener),)*
                _ => None,
            }
        };
    }
    if !page_size.is_power_of_two() {
        return None;
    }
    // The page sizes a file may have: 2^10 to 2^30.
    by_shift!(10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30)
}

fn dump(path: &Path, page: u64, page_size_arg: u64) -> Result<ExitCode, MappedPageError> {
    let file = match Inspector::open(path) {
        Ok(file) => file,
        Err(err @ MappedPageError::Io(_)) => return Err(err),
        Err(err) => return dump_raw(path, page, page_size_arg, &err),
    };
    let page_size = file.superblock().page_size;
    let bytes = match file.read_page(page) {
        Err(MappedPageError::OutOfBounds) => {
            eprintln!(
                "mappedpages: {}: page {} is past the end of the file ({} pages)",
                path.display(),
                page_number(page),
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
        "page {} of {} ({kind}), bytes {}..{}",
        page_number(page),
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

/// Dumps a page of a file whose superblock does not decode, when the raw
/// bytes are what is wanted most: with the page size the superblock's field
/// claims if that is a page size a file can have, else `page_size_arg`.
fn dump_raw(
    path: &Path,
    page: u64,
    page_size_arg: u64,
    why: &MappedPageError,
) -> Result<ExitCode, MappedPageError> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut field = [0u8; 8];
    let claimed = file
        .read_exact_at(&mut field, SUPERBLOCK_PAGE_SIZE_AT as u64)
        .ok()
        .map(|()| u64::from_le_bytes(field))
        .filter(|&size| size.is_power_of_two() && (1024..=1 << 30).contains(&size));
    let (page_size, source) = match claimed {
        Some(size) => (size, "from the superblock's page size field"),
        None => (page_size_arg, "from --page-size"),
    };
    let Some(start) = page
        .checked_mul(page_size)
        .filter(|start| start.saturating_add(page_size) <= file_len)
    else {
        eprintln!(
            "mappedpages: {}: page {} is past the end of the file ({file_len} bytes, \
             {page_size}-byte pages {source}); the superblock does not decode: {}",
            path.display(),
            page_number(page),
            one_line(why)
        );
        return Ok(ExitCode::from(EXIT_ERROR));
    };
    let mut bytes = vec![0u8; page_size as usize];
    file.read_exact_at(&mut bytes, start)?;
    println!(
        "page {} of {} (raw: the superblock does not decode: {}), {page_size}-byte pages \
         {source}, bytes {start}..{}",
        page_number(page),
        path.display(),
        one_line(why),
        start + page_size
    );
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
        PageKind::CheckPage => {
            "check page (checksums of pages the newest commits wrote)".to_string()
        }
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

//! `mappedpages`: look inside a page file without changing it, or copy it.
//!
//! ```text
//! mappedpages info FILE        what the file holds: page size, counts, generation
//! mappedpages check FILE       verify every checksum and invariant; exit 1 on a problem
//! mappedpages dump FILE PAGE   hex and ASCII of one page, decoded fields for pages 0-2
//! mappedpages copy SRC DST     a consistent copy of the newest commit of SRC
//! ```
//!
//! `info`, `check` and `dump` read the file without the pager's lock, so
//! they also look at a file that a writer holds or that does not open.
//! `copy` opens the source as a `ReadOnlyPager` (a shared lock: refused
//! while a `Pager` writes it) so that the copy is one committed state. No
//! command writes the file it inspects or copies. Exit status: 0 on
//! success, 1 when `check` finds a problem, 2 when the file cannot be
//! inspected or copied (missing, not a page file, unreadable, locked,
//! destination exists) or the arguments are wrong.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};
use mappedpages::inspect::{
    FileInfo, Inspector, LogEntry, PageKind, Progress, RootCopy, RootInfo, SlotState,
};
use mappedpages::{MappedPageError, ReadOnlyPager, Snapshot};

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
    /// Copy the newest commit of SRC to the new file DST: the same page ids
    /// and bytes, free pages left out (a sparse file, cut after its last
    /// page in use), synced before it returns.
    ///
    /// SRC is opened read-only under a shared lock: while another process
    /// (or this one) has it open with a `Pager`, the copy is refused with
    /// "the file is locked by another Pager". A SRC that does not open
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (file, outcome) = match &cli.command {
        Command::Info { file } => (file, info(file)),
        Command::Check { file, progress } => (file, check(file, *progress)),
        Command::Dump { file, page } => (file, dump(file, *page)),
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
    let report = report?;
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

/// A progress bar on stderr, made on the first update once the work is
/// known to be large (or showing is forced): small jobs print nothing.
struct LazyBar<S> {
    force: bool,
    from: u64,
    style: S,
    bar: Option<ProgressBar>,
    decided: bool,
    plain: bool,
}

impl<S> LazyBar<S>
where
    S: Fn() -> Result<ProgressStyle, indicatif::style::TemplateError>,
{
    fn new(force: bool, from: u64, style: S) -> Self {
        LazyBar {
            force,
            from,
            style,
            bar: None,
            decided: false,
            plain: false,
        }
    }

    fn update(&mut self, done: u64, total: u64) {
        if !self.decided {
            self.decided = true;
            self.plain = !std::io::stderr().is_terminal();
            self.bar = self.make(total);
        }
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    fn make(&self, total: u64) -> Option<ProgressBar> {
        let terminal = std::io::stderr().is_terminal();
        let target = if terminal && (self.force || total >= self.from) {
            ProgressDrawTarget::stderr()
        } else if self.force {
            // Forced into a pipe or a file: plain redrawn lines, without the
            // cursor movements a terminal understands.
            ProgressDrawTarget::term_like_with_hz(Box::new(PlainStderr), 4)
        } else {
            return None;
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        // A template that does not parse is a bug here, not the user's
        // problem: fall back to the default bar rather than fail the job.
        if let Ok(style) = (self.style)() {
            bar.set_style(style);
        }
        bar.enable_steady_tick(Duration::from_millis(250));
        Some(bar)
    }

    /// Leaves the bar's last state on screen, if one was shown: full when
    /// the job `succeeded`, where it stopped otherwise.
    fn finish(&self, succeeded: bool) {
        let Some(bar) = &self.bar else { return };
        if succeeded {
            bar.finish();
        } else {
            bar.abandon();
        }
        // A terminal's line is padded to its width, so what follows starts
        // on the next line by itself; a pipe needs the newline.
        if self.plain {
            eprintln!();
        }
    }
}

/// Stderr when it is not a terminal: each redraw starts with a carriage
/// return (the bar is one line).
#[derive(Debug)]
struct PlainStderr;

impl TermLike for PlainStderr {
    fn width(&self) -> u16 {
        100
    }

    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        writeln!(std::io::stderr().lock(), "{s}")
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        write!(std::io::stderr().lock(), "{s}")
    }

    fn clear_line(&self) -> std::io::Result<()> {
        write!(std::io::stderr().lock(), "\r")
    }

    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().lock().flush()
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

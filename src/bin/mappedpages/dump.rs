//! `dump`: one page in hex, with what it is used for and, for the
//! superblock and the roots, the decoded fields; the raw bytes when the
//! superblock does not decode.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use mappedpages::inspect::{Inspector, LogEntry, RootCopy, RootInfo, SlotState};
use mappedpages::MappedPageError;

use crate::describe::{describe_copy, describe_kind, page_number};
use crate::{one_line, EXIT_ERROR, SUPERBLOCK_PAGE_SIZE_AT};

pub(crate) fn dump(
    path: &Path,
    page: u64,
    page_size_arg: u64,
) -> Result<ExitCode, MappedPageError> {
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

/// Reads exactly `buf.len()` bytes at `offset`: a seek and a read, which
/// every platform has (the tool reads one page, so positional reads buy
/// nothing).
fn read_at(file: &mut std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(buf)
}

/// Dumps a page of a file whose superblock does not decode, when the raw
/// bytes are what is wanted most: with the page size the superblock's field
/// claims if that is a page size a file can have, else `page_size_arg`.
pub(crate) fn dump_raw(
    path: &Path,
    page: u64,
    page_size_arg: u64,
    why: &MappedPageError,
) -> Result<ExitCode, MappedPageError> {
    let mut file = std::fs::File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut field = [0u8; 8];
    let claimed = read_at(&mut file, &mut field, SUPERBLOCK_PAGE_SIZE_AT as u64)
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
    read_at(&mut file, &mut bytes, start)?;
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

pub(crate) fn print_root(root: &RootInfo) {
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
                state: SlotState::SubPages { sub_pages, used },
            } => format!(
                "directory slot {slot}: page {} cut into {sub_pages} sub-pages, used {used:#x}",
                copies[0]
            ),
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
pub(crate) fn print_hex(bytes: &[u8]) {
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

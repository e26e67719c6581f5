//! How the tool shows the parts of a file: metadata copies, the summary of
//! the state `open` would see, page kinds and problems, as text and as the
//! values of `--json`.

use std::path::Path;

use mappedpages::inspect::{FileInfo, PageKind, Problem, RootCopy};

use crate::json::Json;

pub(crate) fn info_json(path: &Path, info: &FileInfo) -> Json {
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

pub(crate) fn copies_json(copies: &[RootCopy; 2]) -> Json {
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

pub(crate) fn problems_json(problems: &[Problem]) -> Json {
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

pub(crate) fn print_summary(info: &FileInfo) {
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
pub(crate) fn print_copies(copies: &[RootCopy; 2], opened: Option<u8>) {
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

pub(crate) fn copy_name(copy: u8) -> &'static str {
    if copy == 0 {
        "A"
    } else {
        "B"
    }
}

pub(crate) fn describe_copy(copy: &RootCopy) -> String {
    match copy {
        RootCopy::Blank => "blank".to_string(),
        RootCopy::Damaged(why) => format!("damaged: {why}"),
        RootCopy::UnsupportedVersion(v) => format!("format version {v} (unsupported)"),
        RootCopy::Decoded(root) => format!("generation {}", root.generation),
        _ => "unknown".to_string(),
    }
}

/// A page number in decimal and hexadecimal.
pub(crate) fn page_number(page: u64) -> String {
    format!("{page} ({page:#x})")
}

pub(crate) fn describe_kind(kind: PageKind) -> String {
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
        PageKind::SubPageParent {
            slot,
            sub_pages,
            used,
        } => format!("parent of {sub_pages} sub-pages ({used} in use), directory slot {slot}"),
        PageKind::BitmapPage => "free-space bitmap page".to_string(),
        PageKind::DirectoryPage => "protected directory page".to_string(),
        PageKind::Unclaimed => "in use, but claimed by no structure".to_string(),
        PageKind::CheckPage => {
            "check page (checksums of pages the newest commits wrote)".to_string()
        }
        PageKind::Free => "free page".to_string(),
        PageKind::PastEnd => "past the pages the metadata counts on".to_string(),
        _ => "unknown use".to_string(),
    }
}

/// A stable one-word name of a page kind, for JSON.
pub(crate) fn kind_name(kind: PageKind) -> &'static str {
    match kind {
        PageKind::Superblock => "superblock",
        PageKind::Root(_) => "metadata_root",
        PageKind::Regular => "regular",
        PageKind::ProtectedCopy { .. } => "protected_copy",
        PageKind::SubPageParent { .. } => "sub_page_parent",
        PageKind::BitmapPage => "bitmap",
        PageKind::DirectoryPage => "directory",
        PageKind::Unclaimed => "unclaimed",
        PageKind::CheckPage => "check",
        PageKind::Free => "free",
        PageKind::PastEnd => "past_end",
        _ => "unknown",
    }
}

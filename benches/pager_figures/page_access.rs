//! The contract's P4: `get` and `get_mut` against the same loop over a raw
//! `memmap2` map of the pager's own file. The loops and their pairing serve
//! R4 too (`readers.rs`), which sets a snapshot against `get`.

use std::fs::OpenOptions;
use std::hint::black_box;
use std::path::Path;
use std::time::Instant;

use mappedpages::{Durability, PageId, Pager};

use super::report::{ratio_row, Row};
use super::support::stats::{fmt_ns, median, ns, percentile};
use super::support::workloads::{head, written_pages};
use super::support::{BoxResult, PAGE};
use super::Config;

#[inline(always)]
pub fn sum_words(bytes: &[u8]) -> u64 {
    let (words, _) = bytes.as_chunks::<8>();
    words
        .iter()
        .fold(0u64, |acc, w| acc.wrapping_add(u64::from_le_bytes(*w)))
}

#[inline(never)]
pub fn pager_head_loop<const PS: usize>(pager: &Pager<PS>, ids: &[PageId<PS>]) -> u64 {
    let mut sum = 0u64;
    for id in ids {
        let page = id.get(pager).expect("an allocated page");
        sum = sum.wrapping_add(head(page.as_bytes()));
    }
    sum
}

#[inline(never)]
pub fn raw_head_loop<const PS: usize>(map: &[u8], ids: &[PageId<PS>]) -> u64 {
    let mut sum = 0u64;
    for id in ids {
        let start = id.0 as usize * PS;
        let page = &map[start..start + PS];
        sum = sum.wrapping_add(head(page));
    }
    sum
}

#[inline(never)]
pub fn pager_full_loop<const PS: usize>(pager: &Pager<PS>, ids: &[PageId<PS>]) -> u64 {
    let mut sum = 0u64;
    for id in ids {
        let page = id.get(pager).expect("an allocated page");
        sum = sum.wrapping_add(sum_words(page.as_bytes()));
    }
    sum
}

#[inline(never)]
pub fn raw_full_loop<const PS: usize>(map: &[u8], ids: &[PageId<PS>]) -> u64 {
    let mut sum = 0u64;
    for id in ids {
        let start = id.0 as usize * PS;
        let page = &map[start..start + PS];
        sum = sum.wrapping_add(sum_words(page));
    }
    sum
}

#[inline(never)]
pub fn pager_write_loop<const PS: usize>(pager: &mut Pager<PS>, ids: &[PageId<PS>], value: u64) {
    for id in ids {
        let page = id.get_mut(pager).expect("an allocated page");
        page.as_bytes_mut()[..8].copy_from_slice(&value.to_le_bytes());
    }
}

#[inline(never)]
pub fn raw_write_loop<const PS: usize>(map: &mut [u8], ids: &[PageId<PS>], value: u64) {
    for id in ids {
        let start = id.0 as usize * PS;
        let page = &mut map[start..start + PS];
        page[..8].copy_from_slice(&value.to_le_bytes());
    }
}

pub struct LoopPair {
    pub name: String,
    pub pager: Vec<f64>,
    pub raw: Vec<f64>,
}

/// Times `pager_pass` and `raw_pass` alternately, `samples` times each, and
/// returns the time per page.
pub fn pair(
    name: String,
    samples: usize,
    pages_per_pass: usize,
    pager_pass: impl FnMut() -> u64,
    raw_pass: impl FnMut() -> u64,
) -> BoxResult<LoopPair> {
    pair_named(
        name,
        ("pager", "raw memmap2"),
        samples,
        pages_per_pass,
        pager_pass,
        raw_pass,
    )
}

/// [`pair`], the two loops printed under the names in `labels`.
pub fn pair_named(
    name: String,
    labels: (&str, &str),
    samples: usize,
    pages_per_pass: usize,
    mut pager_pass: impl FnMut() -> u64,
    mut raw_pass: impl FnMut() -> u64,
) -> BoxResult<LoopPair> {
    let mut out = LoopPair {
        name,
        pager: Vec::new(),
        raw: Vec::new(),
    };
    // Warm both (page tables, caches), and check they read the same bytes.
    let (a, b) = (pager_pass(), raw_pass());
    if a != b {
        return Err(format!(
            "{}: {} and {} loops disagree ({a} vs {b})",
            out.name, labels.0, labels.1
        )
        .into());
    }
    for s in 0..samples {
        for which in if s % 2 == 0 { [0, 1] } else { [1, 0] } {
            let start = Instant::now();
            let sum = if which == 0 { pager_pass() } else { raw_pass() };
            let t = ns(start.elapsed()) / pages_per_pass as f64;
            black_box(sum);
            if which == 0 {
                out.pager.push(t);
            } else {
                out.raw.push(t);
            }
        }
    }
    println!(
        "{}: {} {} / page (p10 {}, p90 {}), {} {} / page (p10 {}, p90 {}), \
         {} samples each",
        out.name,
        labels.0,
        fmt_ns(median(&out.pager)),
        fmt_ns(percentile(&out.pager, 0.1)),
        fmt_ns(percentile(&out.pager, 0.9)),
        labels.1,
        fmt_ns(median(&out.raw)),
        fmt_ns(percentile(&out.raw, 0.1)),
        fmt_ns(percentile(&out.raw, 0.9)),
        samples
    );
    Ok(out)
}

pub fn run_p4(cfg: &Config, dir: &Path) -> BoxResult<Vec<LoopPair>> {
    const PS: usize = PAGE;
    let n = cfg.p4_pages;
    let pager_path = dir.join("p4.pages");
    let (mut pager, ids) = written_pages(&pager_path, n, 64, Durability::Immediate)?;

    // The baseline maps the very same file a second time, so both loops read
    // the same page-cache pages (a separately written file of the same size
    // and bytes can sit in differently sized folios and read faster or
    // slower for that reason alone). Writes through this map touch only the
    // first bytes of allocated regular pages, which belong to the caller.
    let raw_file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&pager_path)?;
    // SAFETY: the bench owns this file; the pager never truncates it while
    // open, and neither map is used to change bytes the other one relies on
    // (the pager reads its own metadata pages only).
    let mut raw = unsafe { memmap2::MmapMut::map_mut(&raw_file)? };
    if raw.len() as u64 != pager.page_count() * PS as u64 {
        return Err("the second map does not cover the whole file".into());
    }

    let hot_pages = 1024.min(ids.len());
    let hot = &ids[..hot_pages];
    let hot_repeat = 200;
    let mut results = Vec::new();

    results.push(pair(
        format!("read first 8 bytes, {hot_pages} pages (hot in cache), x{hot_repeat} per pass"),
        cfg.p4_samples,
        hot_pages * hot_repeat,
        || {
            (0..hot_repeat).fold(0u64, |acc, _| {
                acc.wrapping_add(pager_head_loop(black_box(&pager), black_box(hot)))
            })
        },
        || {
            (0..hot_repeat).fold(0u64, |acc, _| {
                acc.wrapping_add(raw_head_loop(black_box(&raw[..]), black_box(hot)))
            })
        },
    )?);
    results.push(pair(
        format!("read first 8 bytes, all {n} pages"),
        cfg.p4_samples,
        ids.len(),
        || pager_head_loop(black_box(&pager), black_box(&ids)),
        || raw_head_loop(black_box(&raw[..]), black_box(&ids)),
    )?);
    results.push(pair(
        format!("read full 4 KiB pages, all {n} pages"),
        cfg.p4_samples.min(21),
        ids.len(),
        || pager_full_loop(black_box(&pager), black_box(&ids)),
        || raw_full_loop(black_box(&raw[..]), black_box(&ids)),
    )?);

    // get_mut: write the first 8 bytes of the hot pages.
    let mut w = LoopPair {
        name: format!(
            "get_mut: write first 8 bytes, {hot_pages} pages (hot in cache), x{hot_repeat} per pass"
        ),
        pager: Vec::new(),
        raw: Vec::new(),
    };
    for s in 0..cfg.p4_samples + 1 {
        for which in if s % 2 == 0 { [0, 1] } else { [1, 0] } {
            let start = Instant::now();
            for r in 0..hot_repeat {
                if which == 0 {
                    pager_write_loop(black_box(&mut pager), black_box(hot), r as u64);
                } else {
                    raw_write_loop(black_box(&mut raw[..]), black_box(hot), r as u64);
                }
            }
            let t = ns(start.elapsed()) / (hot_pages * hot_repeat) as f64;
            if s == 0 {
                continue; // warm-up
            }
            if which == 0 {
                w.pager.push(t);
            } else {
                w.raw.push(t);
            }
        }
    }
    println!(
        "{}: pager {} / page, raw memmap2 {} / page, {} samples each",
        w.name,
        fmt_ns(median(&w.pager)),
        fmt_ns(median(&w.raw)),
        cfg.p4_samples
    );
    results.push(w);

    drop(raw);
    drop(raw_file);
    drop(pager);
    std::fs::remove_file(&pager_path)?;
    Ok(results)
}

/// Rows of loop pairs whose ratio must stay within 1.1× of the baseline
/// loop: `label` names each pair's row from the pair's own name.
pub fn loop_rows(pairs: &[LoopPair], label: impl Fn(&str) -> String, target: &str) -> Vec<Row> {
    pairs
        .iter()
        .map(|pair| {
            ratio_row(
                &label(&pair.name),
                median(&pair.pager),
                median(&pair.raw),
                1.1,
                target,
                fmt_ns,
            )
        })
        .collect()
}

pub fn p4_rows(p4: &[LoopPair]) -> Vec<Row> {
    loop_rows(
        p4,
        |name| format!("P4 {name} (per page)"),
        "≤ 1.1× raw memmap2",
    )
}

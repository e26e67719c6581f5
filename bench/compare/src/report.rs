//! The results: the table's rows and their markdown, the chart of the
//! ratios, and what the results file's header and name say about the
//! machine and the day.

use std::path::Path;

use crate::support::stats::fmt_ns;
use crate::R;

pub enum Value {
    Time(f64),
    /// A plain number with its unit and a note (space per live byte).
    Number(f64, String),
    /// A ratio between other rows, shown as it is (no ratio to the first
    /// row; "—" where a row it divides failed).
    Ratio(f64),
    /// Did not run; why.
    Failed(String),
}

pub struct Row {
    pub group: String,
    pub system: String,
    pub value: Value,
    pub syncs: String,
    pub note: String,
}

pub fn time_row(group: &str, system: &str, value: f64, note: &str) -> Row {
    Row {
        group: group.into(),
        system: system.into(),
        value: Value::Time(value),
        syncs: String::new(),
        note: note.into(),
    }
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Time(t) => Some(*t),
        Value::Number(n, _) => Some(*n),
        Value::Ratio(_) | Value::Failed(_) => None,
    }
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| workload | system | median | ratio to first row | syncs/op | note |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    let mut first: Option<(String, Option<f64>)> = None;
    for r in rows {
        if first.as_ref().is_none_or(|(g, _)| *g != r.group) {
            first = Some((r.group.clone(), num(&r.value)));
        }
        let base = first.as_ref().and_then(|(_, b)| *b);
        let (shown, ratio) = match &r.value {
            Value::Time(t) => (
                fmt_ns(*t),
                base.map_or("—".into(), |b| format!("{:.2}×", t / b)),
            ),
            Value::Number(n, unit) => (
                format!("{n:.2} {unit}"),
                base.map_or("—".into(), |b| format!("{:.2}×", n / b)),
            ),
            Value::Ratio(r) if r.is_finite() => (format!("{r:.2}×"), "—".into()),
            Value::Ratio(_) => ("—".into(), "—".into()),
            Value::Failed(why) => (format!("failed: {why}"), "—".into()),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.group,
            r.system,
            shown,
            ratio,
            if r.syncs.is_empty() { "—" } else { &r.syncs },
            r.note
        ));
    }
    out
}

/// The first words of a workload title, never cutting a parenthesis.
fn short_group(title: &str) -> String {
    let mut words = Vec::new();
    let mut in_parens = false;
    for word in title.split_whitespace() {
        if words.len() >= 4 && !in_parens {
            break;
        }
        in_parens |= word.starts_with('(');
        if word.ends_with(')') {
            in_parens = false;
        }
        words.push(word);
    }
    words.join(" ").trim_end_matches(',').to_string()
}

pub fn machine() -> (String, String) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split(':').nth(1))
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    (model, format!("{cores}"))
}

/// The one-minute load average, as the kernel prints it.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}

pub fn today() -> String {
    // Civil date from the system clock (UTC), days-from-epoch algorithm.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Horizontal bars of the headline ratios (this crate / first row of group),
/// log scale would need more text; a plain bar per group with a 1.0 line.
pub fn chart(rows: &[Row], path: &Path) -> R<()> {
    use plotters::prelude::*;
    // Ratio of each system to the first row of its group, for groups with
    // timings only, as (label, ratio).
    let mut bars: Vec<(String, f64)> = Vec::new();
    let mut base: Option<(String, f64)> = None;
    for r in rows {
        let Value::Time(t) = r.value else { continue };
        if base.as_ref().is_none_or(|(g, _)| *g != r.group) {
            base = Some((r.group.clone(), t));
            continue;
        }
        let (g, b) = base.as_ref().unwrap();
        let short = short_group(g);
        bars.push((format!("{short}: {}", r.system), t / b));
    }
    if bars.is_empty() {
        return Err("no timed rows to chart".into());
    }
    let h = 40 + 22 * bars.len() as u32;
    let root = SVGBackend::new(path, (1100, h)).into_drawing_area();
    root.fill(&WHITE)?;
    let max = bars.iter().map(|b| b.1).fold(1.0f64, f64::max).min(50.0);
    let x0 = 560i32;
    let width = 500.0;
    let font = ("sans-serif", 13).into_font();
    root.draw(&Text::new(
        "ratio to the first row of each group (log2 scale; line at 1×)",
        (10, 8),
        font.clone(),
    ))?;
    let lmax = (max.log2()).max(1.0);
    let lmin = bars
        .iter()
        .map(|b| b.1.log2())
        .fold(0.0f64, f64::min)
        .max(-12.0);
    let scale = |r: f64| -> i32 {
        x0 + ((r.log2().clamp(lmin, lmax) - lmin) / (lmax - lmin) * width) as i32
    };
    let one = scale(1.0);
    for (i, (label, ratio)) in bars.iter().enumerate() {
        let y = 32 + 22 * i as i32;
        root.draw(&Text::new(label.clone(), (10, y + 3), font.clone()))?;
        let (a, b) = if *ratio >= 1.0 {
            (one, scale(*ratio))
        } else {
            (scale(*ratio), one)
        };
        let color = if label.contains("this crate") {
            BLUE
        } else {
            RGBColor(150, 150, 150)
        };
        root.draw(&Rectangle::new(
            [(a, y), (b.max(a + 1), y + 16)],
            color.filled(),
        ))?;
        root.draw(&Text::new(
            format!("{ratio:.2}×"),
            (b.max(a) + 4, y + 3),
            font.clone(),
        ))?;
    }
    root.draw(&PathElement::new(
        vec![(one, 28), (one, h as i32 - 4)],
        BLACK,
    ))?;
    root.present()?;
    Ok(())
}

// ---------------------------------------------------------------------------

//! The closing table's rows, and the lines each part prints about its
//! distributions and sync counts.

use std::time::{Duration, Instant};

use super::support::stats::{fmt_ns, median, percentile};
use super::support::BoxResult;
use super::MIB;

pub fn fmt_bytes(value: f64) -> String {
    format!("{:.1} MiB", value / MIB as f64)
}

/// One distribution, described in a line.
pub fn describe(name: &str, values: &[f64]) -> String {
    format!(
        "{name}: median {}, p10 {}, p90 {}, n = {}",
        fmt_ns(median(values)),
        fmt_ns(percentile(values, 0.1)),
        fmt_ns(percentile(values, 0.9)),
        values.len()
    )
}

/// Sync calls per operation, summarised: "1" or "1 (max 2, 3 of 500 > 1)".
pub fn describe_syncs(counts: &[u64]) -> String {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    let med = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    let max = sorted.last().copied().unwrap_or(0);
    if max == med {
        format!("{med} (every call of {})", counts.len())
    } else {
        let above = counts.iter().filter(|&&c| c > med).count();
        format!(
            "median {med}, max {max} ({above} of {} calls above the median)",
            counts.len()
        )
    }
}

pub fn median_u64(counts: &[u64]) -> u64 {
    let mut sorted = counts.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

/// One row of the closing table.
pub struct Row {
    pub measurement: String,
    pub median: String,
    pub baseline: String,
    pub ratio: String,
    pub target: String,
    pub met: String,
}

pub fn yes_no(ok: bool) -> String {
    if ok { "yes" } else { "no" }.to_string()
}

pub fn row(
    measurement: impl Into<String>,
    median: impl Into<String>,
    baseline: impl Into<String>,
    ratio: impl Into<String>,
    target: impl Into<String>,
    met: impl Into<String>,
) -> Row {
    Row {
        measurement: measurement.into(),
        median: median.into(),
        baseline: baseline.into(),
        ratio: ratio.into(),
        target: target.into(),
        met: met.into(),
    }
}

pub fn ratio_row(
    measurement: &str,
    value: f64,
    base: f64,
    limit: f64,
    target: &str,
    unit: fn(f64) -> String,
) -> Row {
    let ratio = value / base;
    row(
        measurement,
        unit(value),
        unit(base),
        format!("{ratio:.3}×"),
        target,
        yes_no(ratio <= limit),
    )
}

/// Wall time of each part of the run.
pub struct Parts(pub Vec<(String, Duration)>);

impl Parts {
    pub fn time<T>(&mut self, name: &str, f: impl FnOnce() -> BoxResult<T>) -> BoxResult<T> {
        println!("\n## {name}");
        let start = Instant::now();
        let out = f();
        let took = start.elapsed();
        println!("({name} took {:.1} s)", took.as_secs_f64());
        self.0.push((name.to_string(), took));
        out
    }
}

/// A ratio shown with no target to meet.
pub fn info_ratio_row(measurement: &str, value: f64, base: f64, note: &str) -> Row {
    let mut r = ratio_row(measurement, value, base, f64::INFINITY, note, fmt_ns);
    r.met = "—".into();
    r
}

//! Medians, quantiles, a reproducible random order, and times printed the
//! same way in both programs' tables.

use std::time::Duration;

/// The median (the mean of the two middle values of an even count).
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

/// The `q` quantile (0 = minimum, 1 = maximum), interpolated.
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let pos = q * (v.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
}

pub fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

/// The CPU time the calling thread has used, in nanoseconds, where the
/// platform tells it (`None` elsewhere): what a thread's work costs apart
/// from waiting for a core or the disk.
#[allow(dead_code)] // Not every bench that includes this module uses it.
pub fn thread_cpu_ns() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid `timespec` for the call to fill.
        let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
        (status == 0).then_some(now.tv_sec as f64 * 1e9 + now.tv_nsec as f64)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Nanoseconds in the unit that keeps three or four digits; a figure that
/// was never measured (NaN) as a dash.
pub fn fmt_ns(value: f64) -> String {
    if !value.is_finite() {
        "—".to_string()
    } else if value >= 1e9 {
        format!("{:.2} s", value / 1e9)
    } else if value >= 1e6 {
        format!("{:.2} ms", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} µs", value / 1e3)
    } else {
        format!("{value:.2} ns")
    }
}

/// A small deterministic generator (xorshift64*): the same random orders
/// in every run, so runs differ by the machine only.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

//! Latency statistics of one run: percentiles over successful calls, errors by kind, and the
//! calls that look like cold starts.

use std::collections::BTreeMap;

use crate::load::Run;

/// A call slower than this many times the median, and by at least [`OUTLIER_MIN_GAP_MS`], looks
/// like a cold start (a new Lambda environment, a new connection, a JIT warming up).
pub const OUTLIER_FACTOR: f64 = 4.0;
pub const OUTLIER_MIN_GAP_MS: f64 = 20.0;

/// The figures of one target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    /// Requests measured.
    pub count: usize,
    /// Requests that succeeded (a JSON-RPC result, not `isError`).
    pub ok: usize,
    /// `ok / count`.
    pub success_rate: f64,
    /// Successful requests per second of wall time.
    pub requests_per_second: f64,
    /// Latency of successful calls, in milliseconds; `None` when none succeeded.
    pub latency_ms: Option<Latency>,
    /// Failures counted by kind (`HTTP 503`, `timeout`, `JSON-RPC -32602`, ...).
    pub errors: BTreeMap<String, usize>,
    /// Successful calls that look like cold starts: their index and latency.
    pub outliers: Vec<Outlier>,
}

/// Latency figures in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Latency {
    pub mean: f64,
    pub median: f64,
    pub p95: f64,
    pub p99: f64,
    pub min: f64,
    pub max: f64,
}

/// One cold-start-looking call.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Outlier {
    pub index: usize,
    pub latency_ms: f64,
}

impl Summary {
    /// The summary of `run`.
    pub fn of(run: &Run) -> Self {
        let mut errors = BTreeMap::new();
        for kind in run.samples.iter().filter_map(|sample| sample.outcome.error_kind()) {
            *errors.entry(kind).or_insert(0) += 1;
        }
        let ok_samples: Vec<_> = run.samples.iter().filter(|sample| sample.outcome.is_ok()).collect();
        let mut sorted: Vec<f64> = ok_samples.iter().map(|sample| ms(sample.latency)).collect();
        sorted.sort_by(f64::total_cmp);
        let latency = Latency::of_sorted(&sorted);
        let outliers = match latency {
            Some(latency) => {
                let threshold = (latency.median * OUTLIER_FACTOR).max(latency.median + OUTLIER_MIN_GAP_MS);
                ok_samples
                    .iter()
                    .filter(|sample| ms(sample.latency) > threshold)
                    .map(|sample| Outlier { index: sample.index, latency_ms: ms(sample.latency) })
                    .collect()
            }
            None => Vec::new(),
        };
        let count = run.samples.len();
        let seconds = run.wall.as_secs_f64();
        Self {
            count,
            ok: ok_samples.len(),
            success_rate: if count == 0 { 0.0 } else { ok_samples.len() as f64 / count as f64 },
            requests_per_second: if seconds > 0.0 { ok_samples.len() as f64 / seconds } else { 0.0 },
            latency_ms: latency,
            errors,
            outliers,
        }
    }
}

impl Latency {
    /// Figures of ascending `sorted` latencies; `None` when empty.
    pub fn of_sorted(sorted: &[f64]) -> Option<Self> {
        let (&min, &max) = (sorted.first()?, sorted.last()?);
        Some(Self {
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            median: percentile(sorted, 50.0),
            p95: percentile(sorted, 95.0),
            p99: percentile(sorted, 99.0),
            min,
            max,
        })
    }
}

/// The `p`th percentile of ascending, non-empty `sorted` (nearest rank).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{load::Sample, mcp::Outcome};

    fn run(latencies_ms: &[u64], outcomes: &[Outcome]) -> Run {
        let samples = latencies_ms
            .iter()
            .zip(outcomes.iter().cycle())
            .enumerate()
            .map(|(index, (&ms, outcome))| Sample {
                index,
                latency: Duration::from_millis(ms),
                outcome: outcome.clone(),
            })
            .collect();
        Run { samples, wall: Duration::from_secs(2), first_error: None }
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 50.0), 50.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&sorted, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
    }

    #[test]
    fn errors_are_counted_by_kind_and_left_out_of_latency() {
        let outcomes = [Outcome::Ok, Outcome::Http(503), Outcome::Ok, Outcome::Timeout];
        let summary = Summary::of(&run(&[10, 1, 10, 30_000, 10, 1, 10, 30_000], &outcomes));
        assert_eq!((summary.count, summary.ok), (8, 4));
        assert_eq!(summary.success_rate, 0.5);
        assert_eq!(summary.requests_per_second, 2.0);
        assert_eq!(summary.errors.get("HTTP 503"), Some(&2));
        assert_eq!(summary.errors.get("timeout"), Some(&2));
        assert_eq!(summary.latency_ms.map(|latency| latency.max), Some(10.0));
    }

    #[test]
    fn a_slow_first_call_is_a_cold_start_outlier() {
        let mut latencies = vec![250];
        latencies.extend([5; 50]);
        let summary = Summary::of(&run(&latencies, &[Outcome::Ok]));
        assert_eq!(summary.outliers, vec![Outlier { index: 0, latency_ms: 250.0 }]);
        let none = Summary::of(&run(&[5, 6, 7, 20], &[Outcome::Ok]));
        assert!(none.outliers.is_empty(), "{:?}", none.outliers);
        let all_failed = Summary::of(&run(&[5, 6], &[Outcome::Connect]));
        assert_eq!((all_failed.latency_ms, all_failed.requests_per_second), (None, 0.0));
    }
}

//! The summary both in-process benches print: mean, p50 and p99 of a sample, in microseconds.

/// Mean, p50 and p99 of `micros` (sorted here; not empty).
pub(crate) fn summary(micros: &mut [f64]) -> (f64, f64, f64) {
    micros.sort_by(f64::total_cmp);
    let at = |p: f64| micros[((p / 100.0 * micros.len() as f64).ceil() as usize).clamp(1, micros.len()) - 1];
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    (mean, at(50.0), at(99.0))
}

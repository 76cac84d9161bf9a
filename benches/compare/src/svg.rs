//! The latency CDF of every target as one SVG plot (log-scaled latency axis).

use std::fmt::Write as _;

use crate::report::Comparison;

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 170.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"];

/// An SVG document plotting, per target, the share of successful calls (y) answered within a
/// latency (x, milliseconds, log scale).
pub fn latency_cdf(comparison: &Comparison) -> String {
    let series: Vec<(&str, Vec<f64>)> =
        comparison.targets.iter().map(|t| (t.name.as_str(), t.sorted_latencies_ms())).collect();
    let all = series.iter().flat_map(|(_, latencies)| latencies.iter().copied());
    let (low, high) = all.fold((f64::MAX, f64::MIN), |(low, high), ms| (low.min(ms), high.max(ms)));
    // Whole decades around the data, so the ticks read 0.1, 1, 10, 100 ms...
    let (decade_low, decade_high) = if low <= high {
        (low.max(1e-3).log10().floor(), high.max(1e-3).log10().ceil().max(low.max(1e-3).log10().floor() + 1.0))
    } else {
        (0.0, 1.0)
    };
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x = |ms: f64| LEFT + (ms.max(1e-3).log10() - decade_low) / (decade_high - decade_low) * plot_w;
    let y = |share: f64| TOP + (1.0 - share) * plot_h;

    let mut svg = String::new();
    let title = match &comparison.name {
        Some(name) => format!("{} {name}", comparison.method),
        None => comparison.method.clone(),
    };
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="24" font-size="14">Latency CDF: {} ({} requests, concurrency {})</text>
"##,
        escape(&title),
        comparison.plan.requests,
        comparison.plan.concurrency
    );
    for decade in (decade_low as i32)..=(decade_high as i32) {
        let ms = 10f64.powi(decade);
        let px = x(ms);
        let _ = writeln!(
            svg,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#ddd"/><text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
            TOP + plot_h,
            TOP + plot_h + 18.0,
            format_ms(ms)
        );
    }
    for share in [0.0, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0] {
        let py = y(share);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}%</text>"##,
            LEFT + plot_w,
            LEFT - 6.0,
            py + 4.0,
            share * 100.0
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle">latency (ms, log scale)</text><text x="16" y="{:.1}" transform="rotate(-90 16 {:.1})" text-anchor="middle">share of successful calls</text>"##,
        LEFT + plot_w / 2.0,
        HEIGHT - 16.0,
        TOP + plot_h / 2.0,
        TOP + plot_h / 2.0
    );
    for (i, (name, latencies)) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let n = latencies.len() as f64;
        let points: Vec<String> = latencies
            .iter()
            .enumerate()
            .map(|(rank, &ms)| format!("{:.1},{:.1}", x(ms), y((rank as f64 + 1.0) / n)))
            .collect();
        if !points.is_empty() {
            let _ = writeln!(
                svg,
                r##"<polyline data-target="{}" fill="none" stroke="{color}" stroke-width="2" points="{}"/>"##,
                escape(name),
                points.join(" ")
            );
        }
        let ly = TOP + 16.0 + i as f64 * 20.0;
        let lx = LEFT + plot_w + 14.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{color}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{} ({})</text>"##,
            lx + 20.0,
            lx + 26.0,
            ly + 4.0,
            escape(name),
            latencies.len()
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_ms(ms: f64) -> String {
    if ms >= 1.0 { format!("{ms:.0}") } else { format!("{ms}") }
}

/// Escapes text for XML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

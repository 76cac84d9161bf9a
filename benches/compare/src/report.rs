//! The comparison as a terminal table and as JSON.

use std::io::Write;

use serde::Serialize;

use crate::{
    cost::{self, Estimate, Prices},
    load::Plan,
    load::Run,
    stats::Summary,
};

/// Everything measured, as written to --json.
#[derive(Debug, Serialize)]
pub struct Comparison {
    pub method: String,
    /// The tool, resource or prompt called.
    pub name: Option<String>,
    pub protocol: String,
    pub plan: Plan,
    pub prices: String,
    pub targets: Vec<TargetResult>,
}

/// The figures of one target.
#[derive(Debug, Serialize)]
pub struct TargetResult {
    pub name: String,
    pub url: String,
    /// Whether requests were signed with SigV4.
    pub signed: bool,
    /// How requests proved the caller's IAM identity: `sigv4`, `sts` (identity tokens) or `none`.
    pub auth: &'static str,
    /// Raw latencies and the first failure.
    pub run: Run,
    pub summary: Summary,
    pub estimate: Option<Estimate>,
}

impl TargetResult {
    /// Latencies of successful calls, ascending, in milliseconds.
    pub fn sorted_latencies_ms(&self) -> Vec<f64> {
        let mut latencies: Vec<f64> = self
            .run
            .samples
            .iter()
            .filter(|sample| sample.outcome.is_ok())
            .map(|sample| sample.latency.as_secs_f64() * 1000.0)
            .collect();
        latencies.sort_by(f64::total_cmp);
        latencies
    }
}

impl Comparison {
    pub fn new(
        method: &str,
        name: Option<&str>,
        protocol: &str,
        plan: Plan,
        prices: &Prices,
        targets: Vec<TargetResult>,
    ) -> Self {
        Self {
            method: method.to_owned(),
            name: name.map(str::to_owned),
            protocol: protocol.to_owned(),
            plan,
            prices: prices.about.clone(),
            targets,
        }
    }
}

/// Extra JSON per target: the raw latencies and the first failure, next to the summary.
impl Serialize for Run {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut run = serializer.serialize_struct("Run", 3)?;
        run.serialize_field("wall_seconds", &self.wall.as_secs_f64())?;
        let latencies: Vec<f64> = self.samples.iter().map(|s| s.latency.as_secs_f64() * 1000.0).collect();
        run.serialize_field("latencies_ms_in_order", &latencies)?;
        run.serialize_field("first_error", &self.first_error)?;
        run.end()
    }
}

/// Prints the table, the ratios to the best target, and the notes behind the figures.
pub fn print_table(comparison: &Comparison, out: &mut impl Write) -> std::io::Result<()> {
    let what = match &comparison.name {
        Some(name) => format!("{} {name}", comparison.method),
        None => comparison.method.clone(),
    };
    let plan = comparison.plan;
    writeln!(
        out,
        "\n{what}: {} requests per endpoint at concurrency {} (MCP {}); latency of successful calls in ms\n",
        plan.requests, plan.concurrency, comparison.protocol
    )?;
    writeln!(
        out,
        "{:<14} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>10}  errors",
        "endpoint", "ok %", "mean", "p50", "p95", "p99", "min", "max", "req/s", "$/M calls"
    )?;
    for target in &comparison.targets {
        let summary = &target.summary;
        let latency = |pick: fn(&crate::stats::Latency) -> f64| {
            summary.latency_ms.as_ref().map_or_else(|| "-".to_owned(), |latency| format!("{:.2}", pick(latency)))
        };
        let cost = target.estimate.as_ref().map_or_else(|| "-".to_owned(), |e| format!("{:.4}", e.usd_per_million));
        let errors = if summary.errors.is_empty() {
            "none".to_owned()
        } else {
            summary.errors.iter().map(|(kind, n)| format!("{kind}: {n}")).collect::<Vec<_>>().join(", ")
        };
        writeln!(
            out,
            "{:<14} {:>7.1} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9.1} {:>10}  {errors}",
            target.name,
            summary.success_rate * 100.0,
            latency(|l| l.mean),
            latency(|l| l.median),
            latency(|l| l.p95),
            latency(|l| l.p99),
            latency(|l| l.min),
            latency(|l| l.max),
            summary.requests_per_second,
            cost,
        )?;
    }
    writeln!(out)?;
    write_ratios(comparison, out)?;
    for target in &comparison.targets {
        if !target.summary.outliers.is_empty() {
            let shown: Vec<String> = target
                .summary
                .outliers
                .iter()
                .take(5)
                .map(|o| format!("#{} {:.1} ms", o.index, o.latency_ms))
                .collect();
            writeln!(
                out,
                "{}: {} cold-start-looking call(s) (> {}x median): {}",
                target.name,
                target.summary.outliers.len(),
                crate::stats::OUTLIER_FACTOR,
                shown.join(", ")
            )?;
        }
        if let Some(estimate) = &target.estimate {
            writeln!(out, "{}: cost basis: {}", target.name, estimate.basis)?;
        }
        if let Some(error) = &target.run.first_error {
            writeln!(out, "{}: first failure: {error}", target.name)?;
        }
    }
    Ok(())
}

/// "b is 3.1x slower (median) and 2.0x the cost of a" lines against the fastest target.
fn write_ratios(comparison: &Comparison, out: &mut impl Write) -> std::io::Result<()> {
    let median = |t: &TargetResult| t.summary.latency_ms.map(|latency| latency.median);
    let Some(best) = comparison
        .targets
        .iter()
        .filter(|t| median(t).is_some())
        .min_by(|a, b| median(a).unwrap_or(f64::MAX).total_cmp(&median(b).unwrap_or(f64::MAX)))
    else {
        return writeln!(out, "no endpoint answered successfully");
    };
    let (Some(best_median), best_cost) = (median(best), best.estimate.as_ref().map(|e| e.usd_per_million)) else {
        return Ok(());
    };
    for target in comparison.targets.iter().filter(|t| t.name != best.name) {
        let mut line = match median(target) {
            Some(m) => format!("{}: median {:.2}x that of {}", target.name, m / best_median, best.name),
            None => format!("{}: no successful call", target.name),
        };
        if let (Some(cost), Some(best_cost)) = (target.estimate.as_ref().map(|e| e.usd_per_million), best_cost)
            && best_cost > 0.0
        {
            line.push_str(&format!(", cost per call {:.2}x", cost / best_cost));
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The monthly cost of a Lambda and an EC2 deployment at steady request rates, as Markdown, and
/// the rate at which they cost the same (`--cost-table`; no request is sent).
pub fn print_cost_table(
    lambda: &cost::Model,
    ec2: &cost::Model,
    prices: &cost::Prices,
    billed_ms: f64,
    rates: &[f64],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let (cost::Model::Lambda { memory_mb, arch, api }, cost::Model::Ec2 { instance }) = (lambda, ec2) else {
        anyhow::bail!("--cost-table compares a lambda model with an ec2 one");
    };
    let month = |model: &cost::Model, rate: f64| cost::monthly_usd(model, prices, rate, billed_ms);
    let Some(instance_month) = month(ec2, 0.0) else {
        anyhow::bail!("EC2 instance type `{instance}` is not in the price table");
    };
    writeln!(
        out,
        "| calls/s, steady | calls a month | Lambda {memory_mb} MB {arch} + {api} API, {billed_ms} ms billed | EC2 {instance} | cheaper |"
    )?;
    writeln!(out, "| ---: | ---: | ---: | ---: | --- |")?;
    for &rate in rates {
        let lambda_month = month(lambda, rate).unwrap_or_default();
        let calls = rate * cost::HOURS_PER_MONTH * 3600.0;
        let cheaper = if lambda_month <= instance_month { "Lambda" } else { "EC2" };
        writeln!(out, "| {rate} | {} | ${lambda_month:.2} | ${instance_month:.2} | {cheaper} |", human_count(calls))?;
    }
    if let Some(rate) = cost::break_even_rate(lambda, ec2, prices, billed_ms) {
        let calls = rate * cost::HOURS_PER_MONTH * 3600.0;
        writeln!(
            out,
            "\nBreak-even: {rate:.2} calls/s around the clock ({} calls a month): below it Lambda costs less, \
             above it the instance (EBS and data transfer not included).\nPrices: {}",
            human_count(calls),
            prices.about
        )?;
    }
    Ok(())
}

/// 1,234 → "1.2 K", 3,240,000 → "3.2 M".
fn human_count(n: f64) -> String {
    match n {
        n if n >= 1e9 => format!("{:.1} G", n / 1e9),
        n if n >= 1e6 => format!("{:.1} M", n / 1e6),
        n if n >= 1e3 => format!("{:.1} K", n / 1e3),
        n => format!("{n:.0}"),
    }
}

//! Cost per million calls: Lambda from billed duration (Lambda `REPORT` lines, or the measured
//! latency as an upper bound), memory size and the public price formula; EC2 from the instance's
//! hourly price and the throughput measured. Prices live in an editable JSON table.

use std::{collections::BTreeMap, path::Path};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

use crate::{stats::Summary, target::Target};

const BUILTIN_PRICES: &str = include_str!("../prices.json");
const MILLION: f64 = 1_000_000.0;

/// The price table (see prices.json).
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Prices {
    #[serde(default)]
    pub about: String,
    pub lambda: LambdaPrices,
    /// Per million requests in front of the function: `rest`, `http`, `url`, `none`.
    pub api_per_million_requests: BTreeMap<String, f64>,
    /// On-demand hourly price per instance type.
    pub ec2_per_hour: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct LambdaPrices {
    pub per_million_requests: f64,
    /// Per GB-second of billed duration, by architecture (`arm64`, `x86_64`).
    pub per_gb_second: BTreeMap<String, f64>,
}

impl Prices {
    /// The table shipped with the binary.
    pub fn builtin() -> anyhow::Result<Self> {
        serde_json::from_str(BUILTIN_PRICES).context("the built-in price table is not valid")
    }

    /// A table from a JSON file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading prices from {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not a price table like prices.json", path.display()))
    }
}

/// How an endpoint is paid for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Model {
    Lambda { memory_mb: u32, arch: String, api: String },
    Ec2 { instance: String },
    None,
}

impl Model {
    /// Parses `lambda[,memory=MB][,arch=A][,api=rest|http|url|none]`, `ec2[,instance=T]` or `none`.
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let mut parts = spec.split(',');
        let kind = parts.next().unwrap_or_default();
        let mut options = BTreeMap::new();
        for part in parts {
            let Some((key, value)) = part.split_once('=') else { bail!("cost option `{part}` is not KEY=VALUE") };
            options.insert(key.trim(), value.trim());
        }
        let mut take = |key: &str| options.remove(key);
        let model = match kind {
            "lambda" => Self::Lambda {
                memory_mb: match take("memory") {
                    Some(memory) => {
                        memory.parse().with_context(|| format!("memory=`{memory}` is not a number of MB"))?
                    }
                    None => 1024,
                },
                arch: take("arch").unwrap_or("arm64").to_owned(),
                api: take("api").unwrap_or("rest").to_owned(),
            },
            "ec2" => Self::Ec2 { instance: take("instance").unwrap_or("t4g.small").to_owned() },
            "none" => Self::None,
            other => bail!("cost model `{other}` is not lambda, ec2 or none"),
        };
        if let Some(key) = options.keys().next() {
            bail!("cost model `{kind}` has no option `{key}`");
        }
        Ok(model)
    }
}

/// The model of each target when none is given: Lambda for AWS Lambda URLs, EC2 otherwise.
pub fn default_models(targets: &[Target], ec2_instance: &str) -> Vec<(String, Model)> {
    targets
        .iter()
        .map(|target| {
            let api = if target.url.contains(".lambda-url.") {
                Some("url")
            } else if target.url.contains(".execute-api.") {
                Some("rest")
            } else {
                None
            };
            let model = match api {
                Some(api) => Model::Lambda { memory_mb: 1024, arch: "arm64".into(), api: api.into() },
                None => Model::Ec2 { instance: ec2_instance.to_owned() },
            };
            (target.name.clone(), model)
        })
        .collect()
}

/// Billed duration and memory size read from Lambda `REPORT` log lines.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LambdaReport {
    pub invocations: usize,
    pub mean_billed_ms: f64,
    pub memory_mb: Option<u32>,
}

impl LambdaReport {
    /// Reads every `REPORT RequestId: … Billed Duration: N ms Memory Size: M MB …` line.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut billed = Vec::new();
        let mut memory_mb = None;
        for line in text.lines().filter(|line| line.contains("REPORT")) {
            if let Some(ms) = field(line, "Billed Duration:") {
                billed.push(ms);
            }
            memory_mb = field(line, "Memory Size:").map(|mb| mb as u32).or(memory_mb);
        }
        if billed.is_empty() {
            bail!("no Lambda REPORT line with a `Billed Duration` found");
        }
        Ok(Self {
            invocations: billed.len(),
            mean_billed_ms: billed.iter().sum::<f64>() / billed.len() as f64,
            memory_mb,
        })
    }
}

/// The number after `label` in `line`.
fn field(line: &str, label: &str) -> Option<f64> {
    let rest = &line[line.find(label)? + label.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

/// An estimated cost per million calls, with how it was derived.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    pub model: Model,
    pub usd_per_million: f64,
    /// The parts of the cost, e.g. `("compute", 1.23)`.
    pub parts: BTreeMap<String, f64>,
    /// What the figure rests on, and its caveats.
    pub basis: String,
}

/// The cost per million calls of a target paid for by `model`, or `None` for `Model::None` or when
/// nothing succeeded to measure.
pub fn estimate(model: &Model, prices: &Prices, summary: &Summary, report: Option<&LambdaReport>) -> Option<Estimate> {
    let mut parts = BTreeMap::new();
    let basis = match model {
        Model::None => return None,
        Model::Lambda { memory_mb, arch, api } => {
            let (billed_ms, memory_mb, basis) = match report {
                Some(report) => (
                    report.mean_billed_ms,
                    report.memory_mb.unwrap_or(*memory_mb),
                    format!("mean billed duration of {} Lambda REPORT lines", report.invocations),
                ),
                None => (
                    summary.latency_ms?.mean.ceil(),
                    *memory_mb,
                    "measured mean latency as billed duration (an upper bound: it includes the network and \
                     API Gateway; pass --lambda-report for billed figures)"
                        .to_owned(),
                ),
            };
            parts = lambda_parts(prices, memory_mb, arch, api, billed_ms);
            format!("Lambda {memory_mb} MB {arch}, {billed_ms:.1} ms per call: {basis}")
        }
        Model::Ec2 { instance } => {
            let hourly = *prices.ec2_per_hour.get(instance)?;
            let rps = summary.requests_per_second;
            if rps <= 0.0 {
                return None;
            }
            parts.insert("instance".into(), hourly / (rps * 3600.0) * MILLION);
            format!(
                "EC2 {instance} at ${hourly}/h serving the measured {rps:.0} requests/s around the clock \
                 (idle hours cost the same; more concurrency may sustain more)"
            )
        }
    };
    Some(Estimate { model: model.clone(), usd_per_million: parts.values().sum(), parts, basis })
}

/// Lambda's cost per million calls of `billed_ms` each, by part: requests, compute, the API.
fn lambda_parts(prices: &Prices, memory_mb: u32, arch: &str, api: &str, billed_ms: f64) -> BTreeMap<String, f64> {
    let gb_second = prices.lambda.per_gb_second.get(arch).copied().unwrap_or(0.0);
    let compute = gb_second * f64::from(memory_mb) / 1024.0 * billed_ms / 1000.0 * MILLION;
    BTreeMap::from([
        ("requests".to_owned(), prices.lambda.per_million_requests),
        ("compute".to_owned(), compute),
        (format!("api ({api})"), prices.api_per_million_requests.get(api).copied().unwrap_or(0.0)),
    ])
}

/// Hours in a month, as AWS's price pages count them.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// What `model` costs a month at a steady `rate` of calls per second, Lambda billing `billed_ms`
/// per call; `None` for [`Model::None`] or an instance type the table does not price.
pub fn monthly_usd(model: &Model, prices: &Prices, rate: f64, billed_ms: f64) -> Option<f64> {
    match model {
        Model::Lambda { memory_mb, arch, api } => {
            let per_million: f64 = lambda_parts(prices, *memory_mb, arch, api, billed_ms).values().sum();
            Some(per_million / MILLION * rate * HOURS_PER_MONTH * 3600.0)
        }
        Model::Ec2 { instance } => prices.ec2_per_hour.get(instance).map(|hourly| hourly * HOURS_PER_MONTH),
        Model::None => None,
    }
}

/// The steady rate (calls per second) at which `lambda` and `ec2` cost the same a month: below
/// it Lambda costs less, above it the instance (while one instance keeps up).
pub fn break_even_rate(lambda: &Model, ec2: &Model, prices: &Prices, billed_ms: f64) -> Option<f64> {
    let per_call_per_second = monthly_usd(lambda, prices, 1.0, billed_ms)?;
    let instance = monthly_usd(ec2, prices, 0.0, billed_ms)?;
    (per_call_per_second > 0.0).then(|| instance / per_call_per_second)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::stats::Latency;

    fn summary(mean_ms: f64, rps: f64) -> Summary {
        let latency =
            Latency { mean: mean_ms, median: mean_ms, p95: mean_ms, p99: mean_ms, min: mean_ms, max: mean_ms };
        Summary {
            count: 10,
            ok: 10,
            success_rate: 1.0,
            requests_per_second: rps,
            latency_ms: Some(latency),
            errors: BTreeMap::new(),
            outliers: Vec::new(),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn lambda_cost_follows_the_public_formula() {
        let prices = Prices::builtin().unwrap_or_else(|e| panic!("{e}"));
        let model = Model::parse("lambda,memory=512,arch=arm64,api=http").unwrap_or_else(|e| panic!("{e}"));
        let Some(estimate) = estimate(&model, &prices, &summary(9.2, 50.0), None) else { panic!("no estimate") };
        // 0.5 GB x 0.010 s x 0.0000133334 $/GB-s x 1e6 = $0.0666670, + $0.20 requests + $1.00 HTTP API.
        assert!(close(estimate.usd_per_million, 0.066667 + 0.20 + 1.00), "{estimate:?}");
        assert!(estimate.basis.contains("upper bound"), "{}", estimate.basis);
    }

    #[test]
    fn lambda_report_lines_give_billed_duration_and_memory() {
        let logs = "START RequestId: a\n\
            REPORT RequestId: a\tDuration: 2.71 ms\tBilled Duration: 3 ms\tMemory Size: 2048 MB\tMax Memory Used: 31 MB\n\
            REPORT RequestId: b\tDuration: 80.1 ms\tBilled Duration: 81 ms\tMemory Size: 2048 MB\tMax Memory Used: 31 MB\tInit Duration: 20.02 ms\n";
        let report = LambdaReport::parse(logs).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(report, LambdaReport { invocations: 2, mean_billed_ms: 42.0, memory_mb: Some(2048) });
        let prices = Prices::builtin().unwrap_or_else(|e| panic!("{e}"));
        let model = Model::parse("lambda,arch=x86_64,api=none").unwrap_or_else(|e| panic!("{e}"));
        let Some(estimate) = estimate(&model, &prices, &summary(500.0, 1.0), Some(&report)) else { panic!() };
        assert!(close(estimate.parts["compute"], 2.0 * 0.042 * 0.0000166667 * 1e6), "{estimate:?}");
        assert!(LambdaReport::parse("no reports here").is_err());
    }

    #[test]
    fn ec2_cost_is_the_hourly_price_over_measured_throughput() {
        let prices = Prices::builtin().unwrap_or_else(|e| panic!("{e}"));
        let model = Model::parse("ec2,instance=t4g.small").unwrap_or_else(|e| panic!("{e}"));
        let Some(estimate) = estimate(&model, &prices, &summary(1.0, 100.0), None) else { panic!("no estimate") };
        assert!(close(estimate.usd_per_million, 0.0168 / 360_000.0 * 1e6), "{estimate:?}");
        let unknown = Model::parse("ec2,instance=x9.huge").unwrap_or_else(|e| panic!("{e}"));
        assert!(self::estimate(&unknown, &prices, &summary(1.0, 100.0), None).is_none());
    }

    #[test]
    fn the_break_even_rate_is_where_monthly_costs_meet() {
        let prices = Prices::builtin().unwrap_or_else(|e| panic!("{e}"));
        let lambda = Model::parse("lambda,memory=1024,api=rest").unwrap_or_else(|e| panic!("{e}"));
        let ec2 = Model::parse("ec2,instance=t4g.small").unwrap_or_else(|e| panic!("{e}"));
        // $0.20 + $3.50 + 1 GB x 0.003 s x $0.0000133334 per GB-s, per million calls.
        let per_call = (0.20 + 3.50 + 0.003 * 0.0000133334 * 1e6) / 1e6;
        let month = 730.0 * 3600.0;
        let lambda_month = monthly_usd(&lambda, &prices, 2.0, 3.0).unwrap_or_else(|| panic!("no Lambda price"));
        assert!(close(lambda_month, per_call * 2.0 * month), "{lambda_month}");
        assert_eq!(
            monthly_usd(&ec2, &prices, 50.0, 3.0),
            Some(0.0168 * 730.0),
            "an instance costs the same at any rate"
        );
        let rate = break_even_rate(&lambda, &ec2, &prices, 3.0).unwrap_or_else(|| panic!("no break-even"));
        assert!(close(rate, 0.0168 * 730.0 / (per_call * month)), "{rate}");
        let at = |model: &Model| monthly_usd(model, &prices, rate, 3.0).unwrap_or_default();
        assert!(close(at(&lambda), at(&ec2)), "the same cost at the break-even rate");
        assert!(break_even_rate(&lambda, &Model::None, &prices, 3.0).is_none());
    }

    #[test]
    fn bad_cost_models_are_refused() {
        assert!(Model::parse("fargate").is_err());
        assert!(Model::parse("lambda,memory=lots").is_err());
        assert!(Model::parse("ec2,size=big").is_err());
        assert_eq!(Model::parse("none").ok(), Some(Model::None));
    }
}

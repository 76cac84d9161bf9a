//! Sends the planned requests to one target, `concurrency` at a time, timing each.

use std::time::{Duration, Instant};

use futures::{StreamExt as _, stream};
use indicatif::ProgressBar;

use crate::{
    mcp::{Outcome, RequestTemplate, classify},
    target::{SendError, Target},
};

/// How many requests, how many at once.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Plan {
    pub requests: usize,
    pub concurrency: usize,
    pub warmup: usize,
}

/// One measured request.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Its place in the sequence of measured requests (0-based, in order of sending).
    pub index: usize,
    pub latency: Duration,
    pub outcome: Outcome,
}

/// The measured requests of one target, and the time they took together.
#[derive(Debug, Clone)]
pub struct Run {
    pub samples: Vec<Sample>,
    pub wall: Duration,
    /// The first failure's details, to show what went wrong.
    pub first_error: Option<String>,
}

/// Runs `plan` against `target`: the handshake (pre-2026 revisions), the warm-up, then the
/// measured requests, ticking `bar` for each.
pub async fn run(
    client: &reqwest::Client,
    target: &Target,
    template: &RequestTemplate,
    plan: &Plan,
    bar: &ProgressBar,
) -> anyhow::Result<Run> {
    let session = if template.is_stateless() { None } else { handshake(client, target, template).await? };
    let session = session.as_deref();
    let send = |index: usize| async move {
        let id = u64::try_from(index).unwrap_or(u64::MAX).saturating_add(1);
        let started = Instant::now();
        let answer = target.post(client, template.headers(session), template.body(id)).await;
        let latency = started.elapsed();
        bar.inc(1);
        let (outcome, detail) = match answer {
            Ok(answer) => {
                let outcome = classify(answer.status, &answer.content_type, &answer.body, id);
                let detail =
                    (!outcome.is_ok()).then(|| String::from_utf8_lossy(&answer.body).chars().take(300).collect());
                (outcome, detail)
            }
            Err(error @ SendError::Timeout) => (Outcome::Timeout, Some(error.to_string())),
            Err(error) => (Outcome::Connect, Some(error.to_string())),
        };
        (Sample { index, latency, outcome }, detail)
    };

    // Warm-up requests are sent the same way and thrown away.
    stream::iter(0..plan.warmup).map(|i| send(plan.requests + i)).buffer_unordered(plan.concurrency).count().await;

    let started = Instant::now();
    let mut samples = Vec::with_capacity(plan.requests);
    let mut first_error = None;
    let mut answers = stream::iter(0..plan.requests).map(send).buffer_unordered(plan.concurrency);
    while let Some((sample, detail)) = answers.next().await {
        if first_error.is_none() {
            first_error = detail.map(|detail| format!("request {}: {:?}: {detail}", sample.index, sample.outcome));
        }
        samples.push(sample);
    }
    samples.sort_by_key(|sample| sample.index);
    Ok(Run { samples, wall: started.elapsed(), first_error })
}

/// `initialize` + `notifications/initialized`; the session id the server gave, if any.
async fn handshake(
    client: &reqwest::Client,
    target: &Target,
    template: &RequestTemplate,
) -> anyhow::Result<Option<String>> {
    let (body, headers) = template.initialize();
    let answer = target
        .post(client, headers, body)
        .await
        .map_err(|error| anyhow::anyhow!("target `{}`: initialize failed: {error}", target.name))?;
    let outcome = classify(answer.status, &answer.content_type, &answer.body, 0);
    if !outcome.is_ok() {
        anyhow::bail!(
            "target `{}`: initialize was answered with {outcome:?}: {}",
            target.name,
            String::from_utf8_lossy(&answer.body).chars().take(300).collect::<String>()
        );
    }
    let (body, headers) = template.initialized(answer.session.as_deref());
    target
        .post(client, headers, body)
        .await
        .map_err(|error| anyhow::anyhow!("target `{}`: notifications/initialized failed: {error}", target.name))?;
    Ok(answer.session)
}

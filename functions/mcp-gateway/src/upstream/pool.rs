//! One upstream: one name for one or more instances of the same server. Each request goes to a
//! healthy instance the upstream's strategy picks (`balance`); each instance has a circuit
//! breaker fed by the outcomes of real calls (`breaker`) and numbers for `gateway_status`. A
//! request that cannot have had an effect (a list, `resources/read`, `prompts/get`, a tool the
//! file marks `retry_tools`) is sent once more, to another instance, after a connect failure or a
//! transport failure (a 5xx, a reset); nothing else is retried.
//!
//! **Invariant:** every call let through a breaker is counted back into it exactly once, also when
//! the caller goes away mid-call (the attempt's guard counts it as neutral on drop), so a
//! half-open breaker never waits for a probe that will not come back.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use futures::future::BoxFuture;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, GetPromptRequestParams, GetPromptResult, ReadResourceResult,
    ServerCapabilities,
};
use schemars::JsonSchema;
use serde::Serialize;

use super::{
    balance::{Balancer, Candidate},
    breaker::{Breaker, Outcome, Refused, Transition},
    client::{CallOptions, Instance, Offer, Status, UpstreamError},
    config::{HashKey, InstanceConfig, Strategy, UpstreamConfig},
};
use crate::caller::Caller;

/// How much a new latency sample moves an instance's average (EWMA weight).
const LATENCY_WEIGHT: f64 = 0.2;

/// How fast an instance's latency is forgotten while it is not called: its weight falls by e
/// each time this passes, so an instance that was slow once (a cold connection) is tried again
/// after a while instead of never (`least_latency`).
const LATENCY_DECAY: Duration = Duration::from_secs(5);

/// One upstream and its instances.
pub struct Upstream {
    /// Its configuration.
    pub config: UpstreamConfig,
    members: Vec<Arc<Member>>,
    balancer: Balancer,
    /// Tools it offers after the file's allow and deny lists, at the last list.
    tools: AtomicUsize,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream").field("name", &self.config.name).finish_non_exhaustive()
    }
}

/// One instance with its breaker and numbers; shared with the upstream that replaces this one
/// (a reload, a registration) while the instance's settings stay the same.
struct Member {
    /// What it was made from: a new configuration reuses the member only when this is equal.
    made_from: (InstanceConfig, super::config::HealthConfig, Duration, String),
    instance: Instance,
    breaker: Mutex<Breaker>,
    requests: AtomicU64,
    errors: AtomicU64,
    in_flight: AtomicU32,
    /// The latency EWMA in microseconds, as `f64` bits (0 before the first call).
    latency_us: AtomicU64,
    /// When it was last updated, in microseconds since `epoch`.
    latency_at: AtomicU64,
    /// What `latency_at` counts from.
    epoch: Instant,
    latencies: Histogram,
    /// Its active health checks.
    probe: Mutex<ProbeState>,
}

/// Where an instance's active health checks stand.
#[derive(Debug, Default)]
struct ProbeState {
    /// Found unhealthy: not picked until enough checks pass.
    down: bool,
    /// Checks passed, and failed, in a row.
    passed: u32,
    failed: u32,
    /// When the next check is due; one is under way when `None` after the first.
    next: Option<Instant>,
    running: bool,
    /// Why the last check failed.
    last_failure: Option<String>,
}

/// What `gateway_status` reports about one instance.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InstanceReport {
    /// Its id.
    pub id: String,
    /// Its weight.
    pub weight: u32,
    /// Its labels from the file.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// `up`, `down` or `unknown` (not contacted yet).
    pub state: String,
    /// Its circuit breaker: `closed`, `open` or `half_open`.
    pub breaker: String,
    /// Its active health checks: `healthy`, `unhealthy` or `off`.
    pub probe: String,
    /// Times its breaker opened.
    pub breaker_opened: u64,
    /// Calls sent to it.
    pub requests: u64,
    /// Calls that failed at the transport or timed out.
    pub errors: u64,
    /// Calls under way.
    pub in_flight: u32,
    /// Its share of the upstream's calls, 0 to 1.
    pub share: f64,
    /// Median latency, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_ms: Option<f64>,
    /// 99th percentile latency, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99_ms: Option<f64>,
    /// The last failure, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// The protocol revision agreed on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Times it was connected (or its command started).
    pub connections: u64,
}

impl Upstream {
    /// An upstream whose instances connect on first use (see [`Instance::new`] for `listen`).
    /// The instances of `previous` (the upstream of the same name this one replaces) whose
    /// settings did not change are kept as they are: their connections, breakers and numbers.
    pub fn new(config: UpstreamConfig, listen: bool, previous: Option<&Upstream>) -> Self {
        let now = Instant::now();
        let members = config
            .instances
            .iter()
            .map(|instance| {
                let label = Instance::label(&config, instance);
                let made_from = (instance.clone(), config.health.clone(), config.list_timeout, label);
                let kept =
                    previous.and_then(|previous| previous.members.iter().find(|member| member.made_from == made_from));
                match kept {
                    Some(member) => member.clone(),
                    None => Arc::new(Member {
                        made_from,
                        instance: Instance::new(&config, instance.clone(), listen),
                        breaker: Mutex::new(Breaker::new(config.health.clone(), now)),
                        requests: AtomicU64::new(0),
                        errors: AtomicU64::new(0),
                        in_flight: AtomicU32::new(0),
                        latency_us: AtomicU64::new(0),
                        latency_at: AtomicU64::new(0),
                        epoch: now,
                        latencies: Histogram::default(),
                        probe: Mutex::new(ProbeState::default()),
                    }),
                }
            })
            .collect::<Vec<_>>();
        let balancer = Balancer::new(config.strategy, members.len());
        Self { config, members, balancer, tools: AtomicUsize::new(0) }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// What `gateway_status` says about it as a whole: up while an instance is up and may be
    /// called, the first instance's protocol and latency, the last error of any instance.
    pub fn status(&self) -> Status {
        let now = Instant::now();
        let mut status = Status { state: "unknown".into(), ..Status::default() };
        for member in &self.members {
            let own = member.instance.status();
            let callable = member.breaker.lock().is_ok_and(|breaker| breaker.available(now));
            let state = if own.state == "up" && !callable { "down" } else { own.state.as_str() };
            if state == "up" || (state == "down" && status.state == "unknown") {
                status.state = state.to_owned();
            }
            status.protocol = status.protocol.or(own.protocol);
            status.latency_ms = status.latency_ms.or(own.latency_ms);
            if own.last_error.is_some() {
                status.last_error = own.last_error;
            }
            status.connections += own.connections;
        }
        status.tools = self.tools.load(Ordering::Relaxed);
        status
    }

    /// Every instance's numbers, in file order.
    pub fn instances(&self) -> Vec<InstanceReport> {
        let total: u64 = self.members.iter().map(|member| member.requests.load(Ordering::Relaxed)).sum();
        self.members
            .iter()
            .map(|member| {
                let own = member.instance.status();
                let (breaker, opened) = member
                    .breaker
                    .lock()
                    .map(|breaker| (breaker.state().name(), breaker.opened()))
                    .unwrap_or(("closed", 0));
                let requests = member.requests.load(Ordering::Relaxed);
                let probe = match (&self.config.health.probe, member.probe.lock().map(|probe| probe.down)) {
                    (None, _) => "off",
                    (Some(_), Ok(true)) => "unhealthy",
                    (Some(_), _) => "healthy",
                };
                InstanceReport {
                    id: member.instance.config.id.clone(),
                    weight: member.instance.config.weight,
                    metadata: member.instance.config.metadata.clone(),
                    state: own.state,
                    breaker: breaker.to_owned(),
                    probe: probe.to_owned(),
                    breaker_opened: opened,
                    requests,
                    errors: member.errors.load(Ordering::Relaxed),
                    in_flight: member.in_flight.load(Ordering::Relaxed),
                    share: if total == 0 { 0.0 } else { requests as f64 / total as f64 },
                    p50_ms: member.latencies.quantile(0.5),
                    p99_ms: member.latencies.quantile(0.99),
                    last_error: own.last_error,
                    protocol: own.protocol,
                    connections: own.connections,
                }
            })
            .collect()
    }

    /// The strategy's name as the file writes it.
    pub fn strategy(&self) -> &'static str {
        match self.balancer.strategy() {
            Strategy::RoundRobin => "round_robin",
            Strategy::LeastConnections => "least_connections",
            Strategy::Weighted => "weighted",
            Strategy::Random => "random",
            Strategy::LeastLatency => "least_latency",
            Strategy::Hash(_) => "hash",
        }
    }

    /// Whether an instance said its tools, resources or prompts changed since the last call
    /// (and clears that on every instance).
    pub fn take_list_changed(&self) -> bool {
        self.members.iter().fold(false, |changed, member| member.instance.take_list_changed() | changed)
    }

    /// What the first instance that was reached declared at its last connection.
    pub fn capabilities(&self) -> Option<ServerCapabilities> {
        self.members.iter().find_map(|member| member.instance.capabilities())
    }

    /// Whether its lists may change while it runs (an instance declared `listChanged`).
    pub fn announces_changes(&self) -> bool {
        self.members.iter().any(|member| member.instance.announces_changes())
    }

    /// Everything it offers, from one instance (they are the same server), its tools after the
    /// file's allow and deny lists.
    pub async fn list_all(&self) -> Result<Offer, UpstreamError> {
        let limit = self.config.list_timeout;
        let mut offer = self.run(true, None, limit, |instance, limit| Box::pin(instance.list_all(limit))).await?;
        offer.tools.retain(|tool| self.config.exposes(&tool.name));
        self.tools.store(offer.tools.len(), Ordering::Relaxed);
        Ok(offer)
    }

    /// Calls its tool (retried on another instance only when the file marks the tool safe).
    pub async fn call_tool(
        &self,
        params: CallToolRequestParams,
        options: CallOptions,
    ) -> Result<CallToolResponse, UpstreamError> {
        let safe = self.config.retries(&params.name);
        let key = self.key(&options.caller);
        self.run(safe, key.as_deref(), options.timeout, |instance, timeout| {
            Box::pin(instance.call_tool(params.clone(), CallOptions { timeout, ..options.clone() }))
        })
        .await
    }

    /// Reads its resource `uri` (its own URI).
    pub async fn read_resource(&self, uri: String, options: CallOptions) -> Result<ReadResourceResult, UpstreamError> {
        let key = self.key(&options.caller);
        self.run(true, key.as_deref(), options.timeout, |instance, timeout| {
            Box::pin(instance.read_resource(uri.clone(), CallOptions { timeout, ..options.clone() }))
        })
        .await
    }

    /// Gets its prompt.
    pub async fn get_prompt(
        &self,
        params: GetPromptRequestParams,
        options: CallOptions,
    ) -> Result<GetPromptResult, UpstreamError> {
        let key = self.key(&options.caller);
        self.run(true, key.as_deref(), options.timeout, |instance, timeout| {
            Box::pin(instance.get_prompt(params.clone(), CallOptions { timeout, ..options.clone() }))
        })
        .await
    }

    /// What `strategy = "hash"` hashes for `caller`; `None` for other strategies.
    fn key(&self, caller: &Caller) -> Option<String> {
        match self.balancer.strategy() {
            Strategy::Hash(key) => caller.key(key == HashKey::Principal),
            _ => None,
        }
    }

    /// Runs `attempt` on an instance picked for `key`, and once more on another one when `safe`
    /// and the first failed at the transport; both attempts together take at most `limit`
    /// (`attempt` gets the time left), and a time-out names `limit`.
    async fn run<T>(
        &self,
        safe: bool,
        key: Option<&str>,
        limit: Duration,
        attempt: impl Fn(&Instance, Duration) -> BoxFuture<'_, Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        let deadline = Instant::now() + limit;
        let first = self.choose(key, None)?;
        let error = match self.attempt(first, limit, &attempt).await {
            Err(error) if safe && retryable(&error) => error,
            answer => return answer,
        };
        let Ok(second) = self.choose(key, Some(first)) else { return Err(error) };
        tracing::info!(
            target: "mcp_gateway::upstream",
            upstream = %self.config.name,
            instance = %self.members[first].instance.config.id,
            retry_on = %self.members[second].instance.config.id,
            %error,
            "retrying on another instance"
        );
        match self.attempt(second, deadline.saturating_duration_since(Instant::now()), &attempt).await {
            Err(UpstreamError::Timeout { upstream, .. }) => Err(UpstreamError::Timeout { upstream, limit }),
            answer => answer,
        }
    }

    async fn attempt<T>(
        &self,
        at: usize,
        limit: Duration,
        attempt: &impl Fn(&Instance, Duration) -> BoxFuture<'_, Result<T, UpstreamError>>,
    ) -> Result<T, UpstreamError> {
        let guard = Attempt::start(self, at);
        let answer = attempt(&self.members[at].instance, limit).await;
        guard.finish(&answer);
        answer
    }

    /// A healthy instance for `key` (other than `except`), its breaker's permission taken.
    fn choose(&self, key: Option<&str>, except: Option<usize>) -> Result<usize, UpstreamError> {
        let now = Instant::now();
        let mut candidates: Vec<Candidate<'_>> = self
            .members
            .iter()
            .enumerate()
            .filter(|&(index, member)| {
                Some(index) != except
                    && !member.probe.lock().is_ok_and(|probe| probe.down)
                    && member.breaker.lock().is_ok_and(|breaker| breaker.available(now))
            })
            .map(|(index, member)| Candidate {
                index,
                id: &member.instance.config.id,
                weight: member.instance.config.weight,
                in_flight: member.in_flight.load(Ordering::Relaxed),
                latency_us: Self::latency(member, now),
            })
            .collect();
        while !candidates.is_empty() {
            let at = self.balancer.pick(&candidates, key);
            let index = candidates[at].index;
            let acquired =
                self.members[index].breaker.lock().map_err(|_| Refused).and_then(|mut breaker| breaker.acquire(now));
            match acquired {
                Ok(transition) => {
                    self.log(index, transition);
                    return Ok(index);
                }
                // Its half-open probe slots were taken since it was listed.
                Err(Refused) => {
                    candidates.remove(at);
                }
            }
        }
        Err(self.none_healthy(now))
    }

    /// Starts the active health checks that are due (each instance's every `interval`, one at a
    /// time); an instance is marked unhealthy after `unhealthy_threshold` failed checks in a row,
    /// and healthy again after `healthy_threshold` passed ones. Each change is one log line.
    /// Returns when the next check may be due (`None`: this upstream has no active checks); a
    /// check under way counts as due one `interval` from now, since its next starts that long
    /// after it ends.
    pub fn probe_due(self: &Arc<Self>, now: Instant) -> Option<Instant> {
        let probe = self.config.health.probe.as_ref()?;
        let mut next_due = now + probe.interval;
        for (at, member) in self.members.iter().enumerate() {
            let due = member.probe.lock().is_ok_and(|mut state| {
                let due = !state.running && state.next.is_none_or(|next| now >= next);
                if due {
                    state.running = true;
                } else if let Some(next) = state.next.filter(|_| !state.running) {
                    next_due = next_due.min(next);
                }
                due
            });
            if !due {
                continue;
            }
            let (upstream, member, probe) = (self.clone(), member.clone(), probe.clone());
            tokio::spawn(async move {
                let checked = member.instance.probe(&probe.kind, probe.timeout).await;
                let changed = member.probe.lock().ok().and_then(|mut state| {
                    state.running = false;
                    state.next = Some(Instant::now() + probe.interval);
                    let was_down = state.down;
                    match &checked {
                        Ok(()) => (state.passed, state.failed) = (state.passed + 1, 0),
                        Err(reason) => {
                            (state.passed, state.failed) = (0, state.failed + 1);
                            state.last_failure = Some(reason.clone());
                        }
                    }
                    if !state.down && state.failed >= probe.unhealthy_threshold {
                        state.down = true;
                    } else if state.down && state.passed >= probe.healthy_threshold {
                        state.down = false;
                    }
                    (state.down != was_down).then(|| (state.down, state.last_failure.clone()))
                });
                if let Some((down, reason)) = changed {
                    tracing::warn!(
                        target: "mcp_gateway::upstream",
                        upstream = %upstream.config.name,
                        instance = %upstream.members[at].instance.config.id,
                        healthy = !down,
                        reason = reason.filter(|_| down).as_deref(),
                        "health check"
                    );
                }
            });
        }
        Some(next_due)
    }

    /// `member`'s latency EWMA in microseconds, decayed by the time since it was last updated.
    fn latency(member: &Member, now: Instant) -> f64 {
        let ewma = f64::from_bits(member.latency_us.load(Ordering::Relaxed));
        let at = Duration::from_micros(member.latency_at.load(Ordering::Relaxed));
        let age = now.saturating_duration_since(member.epoch).saturating_sub(at);
        ewma * (-age.as_secs_f64() / LATENCY_DECAY.as_secs_f64()).exp()
    }

    fn none_healthy(&self, now: Instant) -> UpstreamError {
        let reasons: Vec<String> = self
            .members
            .iter()
            .map(|member| {
                let breaker = member.breaker.lock().ok();
                let state = breaker.as_ref().map_or("closed", |breaker| breaker.state().name());
                let probed_down = member.probe.lock().is_ok_and(|probe| probe.down);
                let state = if probed_down { "failing its health checks" } else { state };
                let mut reason = format!("`{}` {state}", member.instance.config.id);
                if let Some(wait) = breaker.as_ref().and_then(|breaker| breaker.retry_in(now)) {
                    reason.push_str(&format!(" (tried again in {:.1} s)", wait.as_secs_f64()));
                }
                if let Some(error) = member.instance.status().last_error {
                    reason.push_str(&format!(": {error}"));
                }
                reason
            })
            .collect();
        UpstreamError::NoHealthyInstance { upstream: self.config.name.clone(), reason: reasons.join("; ") }
    }

    /// Logs a breaker's change of state: one structured line each.
    fn log(&self, at: usize, transition: Option<Transition>) {
        let Some(transition) = transition else { return };
        tracing::warn!(
            target: "mcp_gateway::upstream",
            upstream = %self.config.name,
            instance = %self.members[at].instance.config.id,
            from = transition.from,
            to = transition.to,
            reason = %transition.reason,
            "circuit breaker"
        );
    }
}

/// Whether a failure means the request cannot have reached the server's logic: it could not be
/// connected, or the transport failed (a 5xx, a reset). A time-out may have had an effect.
fn retryable(error: &UpstreamError) -> bool {
    matches!(error, UpstreamError::Down { .. } | UpstreamError::Transport { .. })
}

/// One call under way on one instance: counted in flight until it ends, and counted back into
/// the breaker when it ends, as neutral if it is dropped unfinished (the caller went away).
struct Attempt<'a> {
    upstream: &'a Upstream,
    member: &'a Member,
    at: usize,
    started: Instant,
    finished: bool,
}

impl<'a> Attempt<'a> {
    fn start(upstream: &'a Upstream, at: usize) -> Self {
        let member = &upstream.members[at];
        member.in_flight.fetch_add(1, Ordering::Relaxed);
        member.requests.fetch_add(1, Ordering::Relaxed);
        Self { upstream, member, at, started: Instant::now(), finished: false }
    }

    fn finish<T>(mut self, answer: &Result<T, UpstreamError>) {
        let outcome = match answer {
            // It answered: a result, a tool error or a JSON-RPC error.
            Ok(_) | Err(UpstreamError::Rpc(_)) => Outcome::Success,
            Err(UpstreamError::Cancelled { .. }) => Outcome::Neutral,
            Err(_) => Outcome::Failure,
        };
        if outcome == Outcome::Success {
            let micros = self.started.elapsed().as_secs_f64() * 1e6;
            self.member.latencies.record(micros);
            let now = Instant::now();
            let old = Upstream::latency(self.member, now);
            let ewma = if old == 0.0 { micros } else { old + LATENCY_WEIGHT * (micros - old) };
            self.member.latency_us.store(ewma.to_bits(), Ordering::Relaxed);
            let at = now.saturating_duration_since(self.member.epoch).as_micros();
            self.member.latency_at.store(u64::try_from(at).unwrap_or(u64::MAX), Ordering::Relaxed);
        } else if outcome == Outcome::Failure {
            self.member.errors.fetch_add(1, Ordering::Relaxed);
        }
        self.record(outcome);
        self.finished = true;
    }

    fn record(&self, outcome: Outcome) {
        self.member.in_flight.fetch_sub(1, Ordering::Relaxed);
        let transition =
            self.member.breaker.lock().ok().and_then(|mut breaker| breaker.record(outcome, Instant::now()));
        self.upstream.log(self.at, transition);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.record(Outcome::Neutral);
        }
    }
}

/// Latencies in buckets four to a power of two (each ~19 % wide), from 1 µs to over an hour.
#[derive(Debug)]
struct Histogram {
    buckets: [AtomicU64; 128],
}

impl Default for Histogram {
    fn default() -> Self {
        Self { buckets: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

impl Histogram {
    fn record(&self, micros: f64) {
        let bucket = (micros.max(1.0).log2() * 4.0) as usize;
        self.buckets[bucket.min(127)].fetch_add(1, Ordering::Relaxed);
    }

    /// The `q` quantile in milliseconds (the upper bound of its bucket); `None` before any call.
    fn quantile(&self, q: f64) -> Option<f64> {
        let counts: Vec<u64> = self.buckets.iter().map(|bucket| bucket.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (bucket, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Some(2f64.powf((bucket + 1) as f64 / 4.0) / 1000.0);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(health: &str) -> Upstream {
        let file = format!(
            "[[upstream]]\nname = \"u\"\ntransport = \"http\"\n[upstream.health]\n{health}\n\
             [[upstream.instance]]\nid = \"a\"\nurl = \"http://127.0.0.1:9/mcp\"\n\
             [[upstream.instance]]\nid = \"b\"\nurl = \"http://127.0.0.1:9/mcp\"\n"
        );
        let mut config = super::super::config::parse("test.toml", &file).unwrap_or_else(|error| panic!("{error}"));
        Upstream::new(config.upstreams.remove(0), false, None)
    }

    #[test]
    fn a_call_dropped_mid_way_frees_its_half_open_probe_slot() {
        let upstream = upstream("failures = 1\ncooldown = \"1ms\"");
        for at in 0..2 {
            let attempt = Attempt::start(&upstream, at);
            attempt.finish::<()>(&Err(UpstreamError::Down { upstream: "u".into(), reason: "refused".into() }));
        }
        std::thread::sleep(Duration::from_millis(5));
        // Both open, both past their cool-down: the first pick takes a's only probe slot.
        let first = upstream.choose(None, None).unwrap_or_else(|error| panic!("{error}"));
        let second = upstream.choose(None, None).unwrap_or_else(|error| panic!("{error}"));
        assert_ne!(first, second, "a half-open instance lets one probe through at a time");
        assert!(matches!(upstream.choose(None, None), Err(UpstreamError::NoHealthyInstance { .. })));
        // The caller of the first probe goes away: its slot is free again, nothing counted.
        drop(Attempt::start(&upstream, first));
        let member = &upstream.members[first];
        assert_eq!(member.in_flight.load(Ordering::Relaxed), 0);
        assert_eq!(
            member.breaker.lock().map(|breaker| breaker.state()).ok(),
            Some(super::super::breaker::State::HalfOpen { in_flight: 0, successes: 0 })
        );
        assert_eq!(upstream.choose(None, None).ok(), Some(first));
    }

    #[test]
    fn with_no_healthy_instance_the_error_names_the_upstream_and_each_instance() {
        let upstream = upstream("failures = 1");
        for at in 0..2 {
            let attempt = Attempt::start(&upstream, at);
            attempt.finish::<()>(&Err(UpstreamError::Down { upstream: "u".into(), reason: "refused".into() }));
        }
        let error = upstream.choose(None, None).err().map(|error| error.to_string()).unwrap_or_default();
        assert!(error.starts_with("upstream `u` has no healthy instance: `a` open (tried again in"), "{error}");
        assert!(error.contains("; `b` open"), "{error}");
        let reports = upstream.instances();
        assert!(reports.iter().all(|report| report.breaker == "open" && report.errors == 1 && report.share == 0.5));
    }

    #[test]
    fn histogram_quantiles_are_within_a_bucket_of_the_truth() {
        let histogram = Histogram::default();
        assert_eq!(histogram.quantile(0.5), None);
        for micros in 1..=1000 {
            histogram.record(f64::from(micros) * 100.0); // 0.1 ms … 100 ms
        }
        let p50 = histogram.quantile(0.5).unwrap_or_default();
        let p99 = histogram.quantile(0.99).unwrap_or_default();
        assert!((50.0..=50.0 * 1.19 + 0.01).contains(&p50), "{p50}");
        assert!((99.0..=99.0 * 1.19 + 0.01).contains(&p99), "{p99}");
    }
}

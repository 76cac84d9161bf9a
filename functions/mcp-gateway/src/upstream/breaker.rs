//! The circuit breaker of one instance: passive health from the outcomes of real calls.
//!
//! Closed (calls flow) → open after `failures` failures in a row, or once `error_rate` of the
//! calls within `window` failed (with at least `min_calls` of them) → half-open after `cooldown`,
//! letting `half_open_calls` calls through at a time → closed after `successes` of them succeed,
//! or open again at the first that fails. Time is passed in, so the machine is tested without
//! sleeping.

use std::time::{Duration, Instant};

use super::config::HealthConfig;

/// The sliding window is this many buckets, each `window / BUCKETS` long.
const BUCKETS: usize = 10;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Calls flow.
    Closed,
    /// No calls until `until`.
    Open {
        /// When it turns half-open.
        until: Instant,
    },
    /// A few probe calls at a time.
    HalfOpen {
        /// Probes under way.
        in_flight: u32,
        /// Probes that succeeded so far.
        successes: u32,
    },
}

impl State {
    /// `closed`, `open` or `half_open`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open { .. } => "open",
            Self::HalfOpen { .. } => "half_open",
        }
    }
}

/// What one call came to, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The instance answered (a result, a tool error, a JSON-RPC error).
    Success,
    /// It could not be reached, failed at the transport (a 5xx, a reset) or timed out.
    Failure,
    /// Neither: the caller cancelled.
    Neutral,
}

/// The breaker lets no call through now (open, or its half-open probes are all out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

/// A change of state, to be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The state left.
    pub from: &'static str,
    /// The state entered.
    pub to: &'static str,
    /// Why, in words.
    pub reason: String,
}

/// Failed and total calls in one slice of the window.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// Which slice (time since the breaker was made, divided by the slice length).
    slice: u64,
    calls: u32,
    failures: u32,
}

/// One instance's breaker.
#[derive(Debug, Clone)]
pub struct Breaker {
    config: HealthConfig,
    state: State,
    /// Failures in a row.
    consecutive: u32,
    buckets: [Bucket; BUCKETS],
    epoch: Instant,
    /// Times it opened.
    opened: u64,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: HealthConfig, now: Instant) -> Self {
        Self {
            config,
            state: State::Closed,
            consecutive: 0,
            buckets: [Bucket::default(); BUCKETS],
            epoch: now,
            opened: 0,
        }
    }

    /// Where it stands.
    pub fn state(&self) -> State {
        self.state
    }

    /// Times it opened.
    pub fn opened(&self) -> u64 {
        self.opened
    }

    /// Whether a call could be let through now (what picking an instance looks at).
    pub fn available(&self, now: Instant) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } => now >= until,
            State::HalfOpen { in_flight, .. } => in_flight < self.config.half_open_calls,
        }
    }

    /// How long until it lets a call through, when it does not now.
    pub fn retry_in(&self, now: Instant) -> Option<Duration> {
        match self.state {
            State::Open { until } if now < until => Some(until - now),
            _ => None,
        }
    }

    /// Lets one call through, or says no; a call let through must be [`Breaker::record`]ed.
    pub fn acquire(&mut self, now: Instant) -> Result<Option<Transition>, Refused> {
        let mut transition = None;
        if let State::Open { until } = self.state {
            if now < until {
                return Err(Refused);
            }
            self.state = State::HalfOpen { in_flight: 0, successes: 0 };
            transition = Some(Transition {
                from: "open",
                to: "half_open",
                reason: format!("cool-down of {} s over; letting probes through", self.config.cooldown.as_secs_f64()),
            });
        }
        if let State::HalfOpen { in_flight, .. } = &mut self.state {
            if *in_flight >= self.config.half_open_calls {
                return Err(Refused);
            }
            *in_flight += 1;
        }
        Ok(transition)
    }

    /// Counts the outcome of a call [`Breaker::acquire`] let through.
    pub fn record(&mut self, outcome: Outcome, now: Instant) -> Option<Transition> {
        if let State::HalfOpen { in_flight, successes } = &mut self.state {
            *in_flight = in_flight.saturating_sub(1);
            return match outcome {
                Outcome::Neutral => None,
                Outcome::Success => {
                    *successes += 1;
                    (*successes >= self.config.successes).then(|| {
                        self.close();
                        Transition {
                            from: "half_open",
                            to: "closed",
                            reason: format!("{} probe calls succeeded", self.config.successes),
                        }
                    })
                }
                Outcome::Failure => Some(self.open(now, "half_open", "a probe call failed".to_owned())),
            };
        }
        if outcome == Outcome::Neutral {
            return None;
        }
        let failed = outcome == Outcome::Failure;
        let bucket = self.bucket(now);
        bucket.calls += 1;
        bucket.failures += u32::from(failed);
        if !failed {
            self.consecutive = 0;
            return None;
        }
        self.consecutive += 1;
        if !matches!(self.state, State::Closed) {
            return None;
        }
        if self.consecutive >= self.config.failures {
            return Some(self.open(now, "closed", format!("{} failures in a row", self.consecutive)));
        }
        let (calls, failures) = self.window(now);
        if calls >= self.config.min_calls && f64::from(failures) >= self.config.error_rate * f64::from(calls) {
            let reason = format!(
                "{failures} of {calls} calls failed within {} s (error_rate {})",
                self.config.window.as_secs_f64(),
                self.config.error_rate
            );
            return Some(self.open(now, "closed", reason));
        }
        None
    }

    fn open(&mut self, now: Instant, from: &'static str, reason: String) -> Transition {
        self.state = State::Open { until: now + self.config.cooldown };
        self.opened += 1;
        self.consecutive = 0;
        self.buckets = [Bucket::default(); BUCKETS];
        Transition { from, to: "open", reason: format!("{reason}; open for {} s", self.config.cooldown.as_secs_f64()) }
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.consecutive = 0;
        self.buckets = [Bucket::default(); BUCKETS];
    }

    fn slice_length(&self) -> Duration {
        (self.config.window / BUCKETS as u32).max(Duration::from_millis(1))
    }

    fn slice(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(elapsed / self.slice_length().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The bucket of `now`, emptied first when it last held an older slice.
    fn bucket(&mut self, now: Instant) -> &mut Bucket {
        let slice = self.slice(now);
        let bucket = &mut self.buckets[(slice % BUCKETS as u64) as usize];
        if bucket.slice != slice {
            *bucket = Bucket { slice, calls: 0, failures: 0 };
        }
        bucket
    }

    /// Calls and failures within the window that ends at `now`.
    fn window(&self, now: Instant) -> (u32, u32) {
        let current = self.slice(now);
        self.buckets
            .iter()
            .filter(|bucket| current.saturating_sub(bucket.slice) < BUCKETS as u64 && bucket.calls > 0)
            .fold((0, 0), |(calls, failures), bucket| (calls + bucket.calls, failures + bucket.failures))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HealthConfig {
        HealthConfig {
            failures: 3,
            error_rate: 0.5,
            window: Duration::from_secs(10),
            min_calls: 6,
            cooldown: Duration::from_secs(5),
            half_open_calls: 1,
            successes: 2,
            probe: None,
        }
    }

    fn call(breaker: &mut Breaker, outcome: Outcome, now: Instant) -> Option<Transition> {
        assert!(breaker.acquire(now).is_ok(), "{:?}", breaker.state());
        breaker.record(outcome, now)
    }

    #[test]
    fn failures_in_a_row_open_it_and_a_success_between_resets_the_count() {
        let now = Instant::now();
        let mut breaker = Breaker::new(config(), now);
        call(&mut breaker, Outcome::Failure, now);
        call(&mut breaker, Outcome::Failure, now);
        call(&mut breaker, Outcome::Success, now);
        call(&mut breaker, Outcome::Failure, now);
        assert_eq!(call(&mut breaker, Outcome::Failure, now), None);
        let opened = call(&mut breaker, Outcome::Failure, now).unwrap_or_else(|| panic!("not opened"));
        assert_eq!((opened.from, opened.to), ("closed", "open"));
        assert!(opened.reason.contains("3 failures in a row"), "{}", opened.reason);
        assert!(!breaker.available(now) && breaker.acquire(now).is_err());
        assert_eq!(breaker.retry_in(now), Some(Duration::from_secs(5)));
    }

    #[test]
    fn the_error_rate_within_the_window_opens_it_once_enough_calls_were_seen() {
        let now = Instant::now();
        let mut breaker = Breaker::new(config(), now);
        // Alternating: never 3 in a row, half of them failed; opens at the 6th call (min_calls).
        let mut opened_at = None;
        for i in 0..6 {
            let outcome = if i % 2 == 0 { Outcome::Failure } else { Outcome::Success };
            if let Some(transition) = call(&mut breaker, outcome, now) {
                opened_at = Some((i, transition));
                break;
            }
        }
        assert!(opened_at.is_none(), "the 6th call is a success: {opened_at:?}");
        let opened = call(&mut breaker, Outcome::Failure, now).unwrap_or_else(|| panic!("not opened"));
        assert!(opened.reason.contains("4 of 7 calls failed"), "{}", opened.reason);
    }

    #[test]
    fn failures_older_than_the_window_do_not_count() {
        let start = Instant::now();
        let mut breaker = Breaker::new(config(), start);
        for _ in 0..2 {
            call(&mut breaker, Outcome::Failure, start);
            call(&mut breaker, Outcome::Success, start);
        }
        let later = start + Duration::from_secs(11);
        for _ in 0..3 {
            call(&mut breaker, Outcome::Success, later);
        }
        assert_eq!(breaker.window(later), (3, 0));
        call(&mut breaker, Outcome::Failure, later);
        call(&mut breaker, Outcome::Failure, later);
        assert_eq!(breaker.state(), State::Closed, "2 of 5 within the window, 2 in a row");
    }

    #[test]
    fn half_open_lets_one_probe_through_and_closes_after_enough_successes() {
        let now = Instant::now();
        let mut breaker = Breaker::new(config(), now);
        for _ in 0..3 {
            call(&mut breaker, Outcome::Failure, now);
        }
        let later = now + Duration::from_secs(5);
        assert!(breaker.available(later));
        let half =
            breaker.acquire(later).unwrap_or_else(|Refused| panic!("refused")).unwrap_or_else(|| panic!("no change"));
        assert_eq!((half.from, half.to), ("open", "half_open"));
        assert!(!breaker.available(later) && breaker.acquire(later).is_err(), "one probe at a time");
        assert_eq!(breaker.record(Outcome::Success, later), None);
        assert_eq!(breaker.state(), State::HalfOpen { in_flight: 0, successes: 1 });
        let closed = call(&mut breaker, Outcome::Success, later).unwrap_or_else(|| panic!("not closed"));
        assert_eq!((closed.from, closed.to), ("half_open", "closed"));
        assert_eq!(breaker.opened(), 1);
    }

    #[test]
    fn a_failed_probe_opens_it_again_for_another_cool_down_and_a_cancelled_one_frees_its_slot() {
        let now = Instant::now();
        let mut breaker = Breaker::new(config(), now);
        for _ in 0..3 {
            call(&mut breaker, Outcome::Failure, now);
        }
        let later = now + Duration::from_secs(6);
        call(&mut breaker, Outcome::Neutral, later);
        assert_eq!(breaker.state(), State::HalfOpen { in_flight: 0, successes: 0 });
        let reopened = call(&mut breaker, Outcome::Failure, later).unwrap_or_else(|| panic!("not reopened"));
        assert_eq!((reopened.from, reopened.to), ("half_open", "open"));
        assert_eq!(breaker.retry_in(later), Some(Duration::from_secs(5)));
        assert_eq!(breaker.opened(), 2);
    }
}

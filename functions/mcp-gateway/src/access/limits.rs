//! Rate limits: token buckets per principal, per tool and global, as GCRA (one "theoretical
//! arrival time" per bucket: a bucket holding `burst` tokens refilled at `rate` per `per`).
//!
//! **Invariants:** a request takes a token from every limit that applies to it, or from none: when
//! one limit refuses, the others are left as they were. Buckets are kept per key in one map of at
//! most [`MAX_BUCKETS`] entries; a full bucket (one that has refilled) holds no information and is
//! dropped to make room, so only callers active within one refill time take space. A refusal is
//! counted in the metrics here, whoever asked. In-process:
//! each `serve` process (or Lambda instance) counts on its own.
//!
//! Hand-written (~100 lines) rather than `governor`: one lock over all limits is what makes the
//! all-or-none invariant simple, and the crate's keyed limiters would bring a dozen dependencies.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use super::config::{LimitConfig, LimitScope};
use crate::caller::Caller;

/// The most buckets kept at once (distinct principals or tools with a partly used bucket).
pub const MAX_BUCKETS: usize = 100_000;

/// The rate limits of the access file.
#[derive(Debug)]
pub struct Limits {
    limits: Vec<Limit>,
    /// Bucket of (limit index, key) → theoretical arrival time, in ns since `epoch`.
    buckets: Mutex<HashMap<(usize, String), u64>>,
    epoch: Instant,
}

impl Default for Limits {
    /// No limits.
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

#[derive(Debug)]
struct Limit {
    config: LimitConfig,
    /// Nanoseconds between two tokens.
    interval: u64,
    /// How far ahead of now the arrival time may run: (burst − 1) intervals.
    tolerance: u64,
}

/// A request refused by a limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rate limit `{limit}` exceeded ({rate} per {per}); try again in {retry_ms} ms")]
pub struct Limited {
    /// The limit's name.
    pub limit: String,
    rate: u32,
    per: String,
    retry_ms: u64,
    /// When the request would be let through.
    pub retry_after: Duration,
}

impl Limited {
    /// Whole seconds for `Retry-After` (at least 1).
    pub fn retry_after_secs(&self) -> u64 {
        let nanos = u64::try_from(self.retry_after.as_nanos()).unwrap_or(u64::MAX);
        nanos.div_ceil(1_000_000_000).max(1)
    }
}

impl Limits {
    /// Limits from the access file.
    pub fn new(configs: Vec<LimitConfig>) -> Self {
        let limits = configs
            .into_iter()
            .map(|config| {
                let per = u64::try_from(config.per.as_nanos()).unwrap_or(u64::MAX);
                let interval = (per / u64::from(config.rate)).max(1);
                let tolerance = interval.saturating_mul(u64::from(config.burst) - 1);
                Limit { config, interval, tolerance }
            })
            .collect();
        Self { limits, buckets: Mutex::new(HashMap::new()), epoch: Instant::now() }
    }

    /// Whether there are no limits.
    pub fn is_empty(&self) -> bool {
        self.limits.is_empty()
    }

    /// Takes a token for one request of `caller` (a `tools/call` of `tool`, when it is one) from
    /// every limit that applies, or refuses it without taking any.
    pub fn admit(&self, caller: &Caller, tool: Option<&str>) -> Result<(), Limited> {
        if self.limits.is_empty() {
            return Ok(());
        }
        let now = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut taken = Vec::new();
        for (index, limit) in self.limits.iter().enumerate() {
            if let Some(tools) = &limit.config.tools
                && !tool.is_some_and(|tool| tools.iter().any(|glob| glob.is_match(tool)))
            {
                continue;
            }
            let key = match limit.config.scope {
                LimitScope::Global => String::new(),
                LimitScope::Principal => match (&caller.principal, caller.client_ip) {
                    (Some(principal), _) => principal.to_string(),
                    (None, Some(ip)) => format!("ip:{ip}"),
                    (None, None) => String::new(),
                },
                LimitScope::Tool => match tool {
                    Some(tool) => tool.to_owned(),
                    None => continue,
                },
            };
            let arrival = buckets.get(&(index, key.clone())).copied().unwrap_or(0).max(now);
            let ahead = arrival - now;
            if ahead > limit.tolerance {
                crate::metrics::global().rate_limited(&limit.config.name);
                let wait = ahead - limit.tolerance;
                return Err(Limited {
                    limit: limit.config.name.clone(),
                    rate: limit.config.rate,
                    per: format!("{:?}", limit.config.per),
                    retry_ms: wait.div_ceil(1_000_000),
                    retry_after: Duration::from_nanos(wait),
                });
            }
            taken.push(((index, key), arrival.saturating_add(limit.interval)));
        }
        if buckets.len() + taken.len() > MAX_BUCKETS {
            // A bucket whose arrival time has passed is full again: the same as no bucket.
            buckets.retain(|_, arrival| *arrival > now);
        }
        if buckets.len() + taken.len() > MAX_BUCKETS {
            crate::metrics::global().rate_limited("buckets");
            return Err(Limited {
                limit: "buckets".to_owned(),
                rate: u32::try_from(MAX_BUCKETS).unwrap_or(u32::MAX),
                per: "refill time".to_owned(),
                retry_ms: 1_000,
                retry_after: Duration::from_secs(1),
            });
        }
        buckets.extend(taken);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::config::parse;

    fn limits(text: &str) -> Limits {
        Limits::new(parse("access.toml", text).unwrap_or_else(|error| panic!("{error:?}")).limits)
    }

    fn principal(name: &str) -> Caller {
        Caller { principal: Some(name.into()), ..Caller::default() }
    }

    #[test]
    fn a_bucket_lets_its_burst_through_then_refuses_with_the_wait() {
        let limits =
            limits("[[limit]]\nname = \"per-caller\"\nscope = \"principal\"\nrate = 1\nper = \"1h\"\nburst = 3\n");
        let alice = principal("alice");
        for _ in 0..3 {
            limits.admit(&alice, None).unwrap_or_else(|error| panic!("{error:?}"));
        }
        let refused = limits.admit(&alice, None).err().unwrap_or_else(|| panic!("accepted"));
        assert_eq!(refused.limit, "per-caller");
        assert!(refused.retry_after > Duration::from_secs(3590) && refused.retry_after_secs() <= 3600, "{refused:?}");
        assert!(refused.to_string().starts_with("rate limit `per-caller` exceeded (1 per 3600s); try again in"));
        // Another principal has a bucket of its own.
        limits.admit(&principal("bob"), None).unwrap_or_else(|error| panic!("{error:?}"));
    }

    #[test]
    fn a_refusal_takes_no_token_from_the_other_limits() {
        let limits = limits(
            "[[limit]]\nname = \"all\"\nscope = \"global\"\nrate = 2\nper = \"1h\"\n\
             [[limit]]\nname = \"db\"\nscope = \"tool\"\ntools = [\"db\"]\nrate = 1\nper = \"1h\"\n",
        );
        let caller = principal("alice");
        limits.admit(&caller, Some("db")).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(limits.admit(&caller, Some("db")).err().unwrap_or_else(|| panic!("accepted")).limit, "db");
        // The refused `db` call took nothing from `all`: one more request fits.
        limits.admit(&caller, Some("file")).unwrap_or_else(|error| panic!("{error:?}"));
        assert_eq!(limits.admit(&caller, Some("file")).err().unwrap_or_else(|| panic!("accepted")).limit, "all");
    }

    #[test]
    fn tokens_come_back_at_the_rate() {
        let limits = limits("[[limit]]\nscope = \"global\"\nrate = 20\nper = \"1s\"\nburst = 1\n");
        let caller = Caller::default();
        limits.admit(&caller, None).unwrap_or_else(|error| panic!("{error:?}"));
        let refused = limits.admit(&caller, None).err().unwrap_or_else(|| panic!("accepted"));
        assert!(refused.retry_after <= Duration::from_millis(50), "{refused:?}");
        std::thread::sleep(refused.retry_after + Duration::from_millis(1));
        limits.admit(&caller, None).unwrap_or_else(|error| panic!("{error:?}"));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let limited = |nanos| Limited {
            limit: String::new(),
            rate: 1,
            per: String::new(),
            retry_ms: 0,
            retry_after: Duration::from_nanos(nanos),
        };
        assert_eq!(limited(1).retry_after_secs(), 1);
        assert_eq!(limited(1_000_000_000).retry_after_secs(), 1);
        assert_eq!(limited(1_000_000_001).retry_after_secs(), 2);
        assert_eq!(limited(0).retry_after_secs(), 1);
    }
}

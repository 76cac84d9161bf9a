//! When a failed request may be sent again: only when it cannot have reached the function, or
//! when running it twice does no harm.

use std::time::Duration;

/// How a request attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request cannot have reached the server: DNS, TLS or TCP connect failure, before any
    /// byte of the request was sent.
    Connect,
    /// The connection broke once the request may have been sent (reset after sending, the
    /// headers or the body of the answer could not be read): it may have run.
    MayHaveRun,
    /// API Gateway throttled the request (429): it never reached the function.
    Throttled,
    /// The request timed out (it may have run).
    Timeout,
    /// A 5xx from the gateway or the function (it may have run).
    ServerError,
    /// Any other HTTP status (4xx): sending it again gives the same answer.
    Rejected,
}

/// What the message does, for the retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only: ping, list methods, discover, reads, tools marked read-only or idempotent.
    SideEffectFree,
    /// May change something (tools/call of other tools, unknown methods, notifications).
    MayWrite,
}

/// Methods that never change server state.
const SAFE_METHODS: &[&str] = &[
    "ping",
    "initialize",
    "server/discover",
    "tools/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "prompts/list",
    "prompts/get",
    "completion/complete",
];

/// The effect of calling `method` (and, for tools/call, a tool with these hints).
pub fn effect(method: &str, tool_read_only: Option<bool>, tool_idempotent: Option<bool>) -> Effect {
    if SAFE_METHODS.contains(&method) {
        return Effect::SideEffectFree;
    }
    if method == "tools/call" && (tool_read_only == Some(true) || tool_idempotent == Some(true)) {
        return Effect::SideEffectFree;
    }
    Effect::MayWrite
}

/// Whether to try again after `failure`.
pub fn should_retry(failure: Failure, effect: Effect) -> bool {
    match failure {
        Failure::Connect | Failure::Throttled => true,
        Failure::MayHaveRun | Failure::Timeout | Failure::ServerError => effect == Effect::SideEffectFree,
        Failure::Rejected => false,
    }
}

/// Attempts in all (the first plus retries).
pub const MAX_ATTEMPTS: u32 = 4;

/// The wait before attempt `attempt` (1-based retries): exponential from 100 ms with full
/// jitter, capped at 5 s, or the server's `Retry-After` when it says more.
pub fn backoff(attempt: u32, retry_after: Option<Duration>, jitter: f64) -> Duration {
    let base = Duration::from_millis(100).saturating_mul(1 << attempt.min(6));
    let capped = base.min(Duration::from_secs(5));
    let jittered = capped.mul_f64(jitter.clamp(0.0, 1.0));
    match retry_after {
        Some(after) => after.min(Duration::from_secs(30)).max(jittered),
        None => jittered,
    }
}

/// A jitter factor in [0.5, 1.0) from the clock (no RNG dependency needed for this).
pub fn jitter() -> f64 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    0.5 + f64::from(nanos % 1000) / 2000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_decision_table() {
        use Effect::*;
        use Failure::*;
        let table = [
            (Connect, MayWrite, true),
            (Connect, SideEffectFree, true),
            (MayHaveRun, MayWrite, false),
            (MayHaveRun, SideEffectFree, true),
            (Throttled, MayWrite, true),
            (Throttled, SideEffectFree, true),
            (Timeout, MayWrite, false),
            (Timeout, SideEffectFree, true),
            (ServerError, MayWrite, false),
            (ServerError, SideEffectFree, true),
            (Rejected, MayWrite, false),
            (Rejected, SideEffectFree, false),
        ];
        for (failure, effect, expected) in table {
            assert_eq!(should_retry(failure, effect), expected, "{failure:?} / {effect:?}");
        }
    }

    #[test]
    fn effects_of_methods_and_tools() {
        assert_eq!(effect("ping", None, None), Effect::SideEffectFree);
        assert_eq!(effect("tools/list", None, None), Effect::SideEffectFree);
        assert_eq!(effect("server/discover", None, None), Effect::SideEffectFree);
        assert_eq!(effect("tools/call", Some(true), None), Effect::SideEffectFree);
        assert_eq!(effect("tools/call", Some(false), Some(true)), Effect::SideEffectFree);
        assert_eq!(effect("tools/call", Some(false), Some(false)), Effect::MayWrite);
        assert_eq!(effect("tools/call", None, None), Effect::MayWrite);
        assert_eq!(effect("vendor/mutate", None, None), Effect::MayWrite);
    }

    #[test]
    fn backoff_grows_caps_and_honours_retry_after() {
        assert_eq!(backoff(1, None, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(2, None, 1.0), Duration::from_millis(400));
        assert_eq!(backoff(20, None, 1.0), Duration::from_secs(5));
        assert_eq!(backoff(1, None, 0.5), Duration::from_millis(100));
        assert_eq!(backoff(1, Some(Duration::from_secs(2)), 1.0), Duration::from_secs(2));
        assert_eq!(backoff(1, Some(Duration::from_secs(3600)), 1.0), Duration::from_secs(30));
        let j = jitter();
        assert!((0.5..1.0).contains(&j));
    }
}

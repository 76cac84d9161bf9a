//! Load balancing: which of an upstream's healthy instances takes a request, by the upstream's
//! strategy. Pure: the pool passes what it knows of each candidate (weight, calls in flight,
//! latency) and gets the one to use.

use std::{
    hash::{Hash as _, Hasher as _},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use super::config::Strategy;

/// What the balancer knows of one healthy instance.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// Its position among the upstream's instances (stable while the fleet is).
    pub index: usize,
    /// Its id.
    pub id: &'a str,
    /// Its weight.
    pub weight: u32,
    /// Calls to it under way.
    pub in_flight: u32,
    /// Its latency (EWMA, microseconds); 0 before its first call.
    pub latency_us: f64,
}

/// Picks instances for one upstream.
#[derive(Debug)]
pub struct Balancer {
    strategy: Strategy,
    turn: AtomicUsize,
    /// Smooth weighted round robin: each instance's current weight, by index.
    current: Mutex<Vec<i64>>,
}

impl Balancer {
    /// A balancer for `instances` instances.
    pub fn new(strategy: Strategy, instances: usize) -> Self {
        Self { strategy, turn: AtomicUsize::new(0), current: Mutex::new(vec![0; instances]) }
    }

    /// The strategy.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The position in `candidates` (never empty) of the one to use; `key` is what `hash` hashes
    /// (without one, `hash` goes round robin).
    pub fn pick(&self, candidates: &[Candidate<'_>], key: Option<&str>) -> usize {
        if candidates.len() <= 1 {
            return 0;
        }
        match self.strategy {
            Strategy::RoundRobin => self.next_turn() % candidates.len(),
            Strategy::Random => fastrand::usize(..candidates.len()),
            Strategy::Weighted => self.weighted(candidates),
            Strategy::LeastConnections => {
                // Ties go round robin, so equal instances share the load.
                let start = self.next_turn();
                (0..candidates.len())
                    .map(|offset| (start + offset) % candidates.len())
                    .min_by_key(|&at| candidates[at].in_flight)
                    .unwrap_or(0)
            }
            Strategy::LeastLatency => {
                // Power of two choices: two at random, the one with the lower expected wait.
                let first = fastrand::usize(..candidates.len());
                let second = (first + 1 + fastrand::usize(..candidates.len() - 1)) % candidates.len();
                let cost = |at: usize| candidates[at].latency_us * f64::from(candidates[at].in_flight + 1);
                if cost(second) < cost(first) { second } else { first }
            }
            Strategy::Hash(_) => match key {
                Some(key) => rendezvous(candidates, key),
                None => self.next_turn() % candidates.len(),
            },
        }
    }

    fn next_turn(&self) -> usize {
        self.turn.fetch_add(1, Ordering::Relaxed)
    }

    /// Smooth weighted round robin (as nginx does it): every candidate gains its weight, the
    /// highest is chosen and gives back the total. Shares are exact over every run of
    /// sum-of-weights picks, and a heavy instance's turns are spread out, not bunched.
    fn weighted(&self, candidates: &[Candidate<'_>]) -> usize {
        let Ok(mut current) = self.current.lock() else { return self.next_turn() % candidates.len() };
        let total: i64 = candidates.iter().map(|candidate| i64::from(candidate.weight)).sum();
        let mut best = 0;
        for (at, candidate) in candidates.iter().enumerate() {
            if let Some(weight) = current.get_mut(candidate.index) {
                *weight += i64::from(candidate.weight);
            }
            let weight_of = |at: usize| current.get(candidates[at].index).copied().unwrap_or(0);
            if weight_of(at) > weight_of(best) {
                best = at;
            }
        }
        if let Some(weight) = current.get_mut(candidates[best].index) {
            *weight -= total;
        }
        best
    }
}

/// Weighted rendezvous (highest random weight) hashing: each candidate scores
/// `-weight / ln(h(key, id))`, the best wins. A key keeps its instance while that instance is
/// healthy, and only the keys of an instance that leaves move.
fn rendezvous(candidates: &[Candidate<'_>], key: &str) -> usize {
    let score = |candidate: &Candidate<'_>| {
        // SipHash with fixed keys: the same on every start of this build.
        let mut hasher = std::hash::DefaultHasher::new();
        key.hash(&mut hasher);
        candidate.id.hash(&mut hasher);
        // A uniform number in (0, 1): the top 53 bits, never 0.
        let unit = ((hasher.finish() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        -f64::from(candidate.weight) / unit.ln()
    };
    let mut best = 0;
    let mut best_score = f64::NEG_INFINITY;
    for (at, candidate) in candidates.iter().enumerate() {
        let score = score(candidate);
        if score > best_score {
            (best, best_score) = (at, score);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::config::HashKey;

    const IDS: [&str; 3] = ["a", "b", "c"];

    fn candidates(weights: [u32; 3]) -> Vec<Candidate<'static>> {
        (0..3)
            .map(|index| Candidate { index, id: IDS[index], weight: weights[index], in_flight: 0, latency_us: 0.0 })
            .collect()
    }

    fn shares(balancer: &Balancer, candidates: &[Candidate<'_>], picks: usize) -> [usize; 3] {
        let mut counts = [0; 3];
        for _ in 0..picks {
            counts[candidates[balancer.pick(candidates, None)].index] += 1;
        }
        counts
    }

    #[test]
    fn round_robin_takes_each_in_turn() {
        let balancer = Balancer::new(Strategy::RoundRobin, 3);
        let picked: Vec<usize> = (0..6).map(|_| balancer.pick(&candidates([1, 1, 1]), None)).collect();
        assert_eq!(picked, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn weighted_shares_are_exact_and_spread_out() {
        let balancer = Balancer::new(Strategy::Weighted, 3);
        let all = candidates([5, 3, 2]);
        assert_eq!(shares(&balancer, &all, 1000), [500, 300, 200]);
        // Within one round of 10, the heavy instance never gets more than 2 turns in a row.
        let round: Vec<usize> = (0..10).map(|_| balancer.pick(&all, None)).collect();
        assert!(round.windows(3).all(|three| !(three[0] == 0 && three[1] == 0 && three[2] == 0)), "{round:?}");
        // An instance that leaves (unhealthy) is skipped; the others keep their ratio.
        let without_a: Vec<Candidate<'_>> = all[1..].to_vec();
        let mut counts = [0; 3];
        for _ in 0..500 {
            counts[without_a[balancer.pick(&without_a, None)].index] += 1;
        }
        assert_eq!(counts, [0, 300, 200]);
    }

    #[test]
    fn random_spreads_evenly_within_a_tolerance() {
        let balancer = Balancer::new(Strategy::Random, 3);
        let counts = shares(&balancer, &candidates([1, 1, 1]), 3000);
        assert!(counts.iter().all(|&count| (850..=1150).contains(&count)), "{counts:?}");
    }

    #[test]
    fn least_connections_takes_the_least_busy_and_shares_ties() {
        let balancer = Balancer::new(Strategy::LeastConnections, 3);
        let mut busy = candidates([1, 1, 1]);
        (busy[0].in_flight, busy[1].in_flight, busy[2].in_flight) = (4, 1, 2);
        assert!((0..10).all(|_| balancer.pick(&busy, None) == 1));
        assert_eq!(shares(&balancer, &candidates([1, 1, 1]), 300), [100, 100, 100]);
    }

    #[test]
    fn least_latency_prefers_the_fast_instance_and_still_tries_the_others() {
        let balancer = Balancer::new(Strategy::LeastLatency, 3);
        let mut timed = candidates([1, 1, 1]);
        (timed[0].latency_us, timed[1].latency_us, timed[2].latency_us) = (10_000.0, 1_000.0, 5_000.0);
        let counts = shares(&balancer, &timed, 3000);
        // Two random picks of three: the fastest wins every pair it is in (2/3 of picks), the
        // slowest none; the middle one wins the pair without the fastest (1/3).
        assert_eq!(counts[0], 0, "{counts:?}");
        assert!((1850..=2150).contains(&counts[1]), "{counts:?}");
    }

    #[test]
    fn hash_keeps_a_key_on_its_instance_and_moves_only_the_keys_of_one_that_leaves() {
        let balancer = Balancer::new(Strategy::Hash(HashKey::Principal), 3);
        let all = candidates([1, 1, 1]);
        let keys: Vec<String> = (0..300).map(|n| format!("arn:aws:iam::123456789012:user/u{n}")).collect();
        let placed: Vec<usize> = keys.iter().map(|key| all[balancer.pick(&all, Some(key))].index).collect();
        for (key, &index) in keys.iter().zip(&placed) {
            assert!((0..5).all(|_| all[balancer.pick(&all, Some(key))].index == index), "{key} moved");
        }
        let mut counts = [0; 3];
        placed.iter().for_each(|&index| counts[index] += 1);
        assert!(counts.iter().all(|&count| (70..=130).contains(&count)), "{counts:?}");
        let without_b: Vec<Candidate<'_>> = vec![all[0], all[2]];
        for (key, &index) in keys.iter().zip(&placed) {
            let now = without_b[balancer.pick(&without_b, Some(key))].index;
            if index != 1 {
                assert_eq!(now, index, "{key} moved although its instance stayed");
            }
        }
    }
}

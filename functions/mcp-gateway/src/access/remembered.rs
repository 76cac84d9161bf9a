//! Credentials that verified, remembered under their SHA-256 (never the secret) until they
//! expire, so that a client reusing one pays for its check (Argon2, a signature, a call to STS)
//! once. Bounded: when full, expired entries go first, then all. [`Flights`] makes requests that
//! arrive together with one new credential share its check.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use sha2::{Digest as _, Sha256};

/// The SHA-256 a credential is remembered under: of its `parts`, each followed by a NUL.
pub fn key(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
        hash.update([0]);
    }
    hash.finalize().into()
}

/// What a key stands for, and until when (`None`: until forgotten).
type Entry<V> = (V, Option<SystemTime>);

/// Verified credentials and what they stand for.
#[derive(Debug)]
pub struct Remembered<V> {
    max: usize,
    entries: Mutex<HashMap<[u8; 32], Entry<V>>>,
}

impl<V: Clone> Remembered<V> {
    /// At most `max` entries.
    pub fn new(max: usize) -> Self {
        Self { max, entries: Mutex::new(HashMap::new()) }
    }

    /// What `key` stands for, if it is remembered and not expired at `now`.
    pub fn get(&self, key: &[u8; 32], now: SystemTime) -> Option<V> {
        let entries = lock(&self.entries);
        let (value, until) = entries.get(key)?;
        until.is_none_or(|until| now < until).then(|| value.clone())
    }

    /// Remembers `key` as `value` until `until`.
    pub fn insert(&self, key: [u8; 32], value: V, until: Option<SystemTime>, now: SystemTime) {
        let mut entries = lock(&self.entries);
        if entries.len() >= self.max {
            entries.retain(|_, (_, until)| until.is_none_or(|until| now < until));
            if entries.len() >= self.max {
                entries.clear();
            }
        }
        entries.insert(key, (value, until));
    }

    /// Forgets everything (a JWT issuer's keys changed).
    pub fn clear(&self) {
        lock(&self.entries).clear();
    }
}

/// Work on one key done once for all the callers that want it at the same time: the first runs it,
/// the others wait for its answer (errors included), and a caller that gives up (its future
/// dropped) leaves the work to the next. An entry lives only while someone waits on it.
#[derive(Debug)]
pub struct Flights<V> {
    flights: Mutex<HashMap<[u8; 32], Arc<tokio::sync::OnceCell<V>>>>,
}

impl<V: Clone> Default for Flights<V> {
    fn default() -> Self {
        Self { flights: Mutex::new(HashMap::new()) }
    }
}

impl<V: Clone> Flights<V> {
    /// `work`'s answer for `key`: this caller's, or the one under way.
    pub async fn run<F: Future<Output = V>>(&self, key: [u8; 32], work: impl FnOnce() -> F) -> V {
        let boarding =
            Boarding { flights: &self.flights, key, flight: Some(lock(&self.flights).entry(key).or_default().clone()) };
        match &boarding.flight {
            Some(flight) => flight.get_or_init(work).await.clone(),
            None => work().await,
        }
    }

    /// Keys with someone waiting on them.
    #[cfg(test)]
    fn in_flight(&self) -> usize {
        lock(&self.flights).len()
    }
}

/// One caller's place on a flight. Every reference to a flight is made and dropped under the map's
/// lock, so the last caller to leave sees only the map's and removes the entry.
struct Boarding<'a, V> {
    flights: &'a Mutex<HashMap<[u8; 32], Arc<tokio::sync::OnceCell<V>>>>,
    key: [u8; 32],
    flight: Option<Arc<tokio::sync::OnceCell<V>>>,
}

impl<V> Drop for Boarding<'_, V> {
    fn drop(&mut self) {
        let mut flights = lock(self.flights);
        drop(self.flight.take());
        if flights.get(&self.key).is_some_and(|flight| Arc::strong_count(flight) == 1) {
            flights.remove(&self.key);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn callers_at_the_same_time_share_one_answer_and_leave_no_entry() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let flights: Arc<Flights<Result<u32, String>>> = Arc::new(Flights::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let callers = (0..16).map(|_| {
            let (flights, runs) = (flights.clone(), runs.clone());
            tokio::spawn(async move {
                flights
                    .run(key(&[b"token"]), || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err::<u32, _>("STS refused it".to_owned())
                    })
                    .await
            })
        });
        for answer in futures::future::join_all(callers).await {
            let answer = answer.unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(answer, Err("STS refused it".to_owned()), "the error is shared too");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(flights.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_caller_that_gives_up_leaves_the_work_to_the_next_and_no_entry() {
        let flights: Flights<u32> = Flights::default();
        let abandoned =
            tokio::time::timeout(Duration::from_millis(20), flights.run(key(&[b"t"]), std::future::pending::<u32>))
                .await;
        assert!(abandoned.is_err());
        assert_eq!(flights.in_flight(), 0, "a dropped caller leaves nothing behind");
        assert_eq!(flights.run(key(&[b"t"]), || async { 7 }).await, 7);
        assert_eq!(flights.in_flight(), 0);
    }

    #[test]
    fn entries_expire_and_the_bound_holds() {
        let now = SystemTime::now();
        let remembered = Remembered::new(2);
        remembered.insert(key(&[b"a"]), 1, Some(now + Duration::from_secs(1)), now);
        remembered.insert(key(&[b"b"]), 2, None, now);
        assert_eq!(remembered.get(&key(&[b"a"]), now), Some(1));
        assert_eq!(remembered.get(&key(&[b"a"]), now + Duration::from_secs(1)), None, "expired");
        // Full: the expired entry goes, the one without an end stays.
        let later = now + Duration::from_secs(2);
        remembered.insert(key(&[b"c"]), 3, None, later);
        assert_eq!((remembered.get(&key(&[b"b"]), later), remembered.get(&key(&[b"c"]), later)), (Some(2), Some(3)));
        assert_ne!(key(&[b"ab", b"c"]), key(&[b"a", b"bc"]), "parts are delimited");
    }
}

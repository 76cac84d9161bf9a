//! Credentials that verified, remembered under their SHA-256 (never the secret) until they
//! expire, so that a client reusing one pays for its check (Argon2, a signature, a call to STS)
//! once. Bounded: when full, expired entries go first, then all.

use std::{collections::HashMap, sync::Mutex, time::SystemTime};

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
        let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (value, until) = entries.get(key)?;
        until.is_none_or(|until| now < until).then(|| value.clone())
    }

    /// Remembers `key` as `value` until `until`.
    pub fn insert(&self, key: [u8; 32], value: V, until: Option<SystemTime>, now: SystemTime) {
        let mut entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
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
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

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

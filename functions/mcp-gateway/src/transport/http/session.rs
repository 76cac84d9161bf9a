//! Stateless session ids for the 2025-03-26 .. 2025-11-25 revisions.
//!
//! Those revisions let a server issue `Mcp-Session-Id` on `initialize`. We keep no session store
//! (any Lambda instance must answer any request), so an id is a signed token: `<nonce>.<mac>` with
//! an HMAC-SHA256 over the nonce. Every instance holding the same key verifies any id without
//! memory; a forged or corrupted id is answered with 404, which tells clients to re-initialize.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The key that signs and verifies session ids.
#[derive(Clone)]
pub struct SessionKey {
    key: Vec<u8>,
    /// Whether the key came from configuration (shared by all instances) or was generated here.
    pub shared: bool,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKey").field("shared", &self.shared).finish_non_exhaustive()
    }
}

impl SessionKey {
    /// A key from configuration (`MCP_SESSION_SECRET`): all instances given it accept each
    /// other's ids.
    pub fn from_secret(secret: &str) -> Self {
        Self { key: secret.as_bytes().to_vec(), shared: true }
    }

    /// A random key for this process only (ids die with it; clients then re-initialize); fails
    /// when the OS has no random bytes to give.
    pub fn random() -> Result<Self, getrandom::Error> {
        Ok(Self { key: random_bytes(getrandom::fill)?.to_vec(), shared: false })
    }

    /// A new session id; fails when the OS has no random bytes to give (an id must never be
    /// guessable, so there is no fallback).
    pub fn issue(&self) -> Result<String, getrandom::Error> {
        let nonce = URL_SAFE_NO_PAD.encode(random_bytes(getrandom::fill)?);
        let mac = URL_SAFE_NO_PAD.encode(self.mac(nonce.as_bytes()));
        Ok(format!("{nonce}.{mac}"))
    }

    /// Whether `id` was issued with this key.
    pub fn verify(&self, id: &str) -> bool {
        let Some((nonce, mac)) = id.split_once('.') else {
            return false;
        };
        let Ok(mac) = URL_SAFE_NO_PAD.decode(mac) else {
            return false;
        };
        let Ok(mut check) = HmacSha256::new_from_slice(&self.key) else {
            return false;
        };
        check.update(nonce.as_bytes());
        check.verify_slice(&mac).is_ok()
    }

    fn mac(&self, data: &[u8]) -> Vec<u8> {
        match HmacSha256::new_from_slice(&self.key) {
            Ok(mut mac) => {
                mac.update(data);
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    }
}

/// 32 random bytes from `fill` (the OS's generator), or its error.
fn random_bytes<E>(fill: impl FnOnce(&mut [u8]) -> Result<(), E>) -> Result<[u8; 32], E> {
    let mut bytes = [0u8; 32];
    fill(&mut bytes)?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_ids_verify_with_the_same_key_only() {
        let key = SessionKey::from_secret("a shared secret");
        let id = key.issue().unwrap_or_default();
        assert!(key.verify(&id));
        assert!(SessionKey::from_secret("a shared secret").verify(&id), "another instance accepts it");
        assert!(!SessionKey::from_secret("another secret").verify(&id));
        assert!(!SessionKey::random().is_ok_and(|other| other.verify(&id)));
    }

    /// Regression: when the OS generator failed, keys and ids fell back to the clock and the pid,
    /// which an attacker can guess.
    #[test]
    fn session_ids_are_never_made_without_the_os_generator() {
        let failing = |_: &mut [u8]| Err("no entropy");
        assert_eq!(random_bytes(failing), Err("no entropy"));
        let working = |bytes: &mut [u8]| {
            bytes.fill(7);
            Ok::<(), ()>(())
        };
        assert_eq!(random_bytes(working), Ok([7u8; 32]));
    }

    #[test]
    fn forged_ids_are_rejected() {
        let key = SessionKey::from_secret("k");
        let id = key.issue().unwrap_or_default();
        let (nonce, mac) = id.split_once('.').unwrap_or_default();
        for forged in ["", "abc", "abc.def", &format!("{nonce}x.{mac}"), &format!("{nonce}.{}", &mac[1..]), nonce] {
            assert!(!key.verify(forged), "{forged:?} verified");
        }
    }
}

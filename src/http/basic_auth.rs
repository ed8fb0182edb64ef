//! Basic authentication of requests against the web configuration's
//! `basic_auth_users` (user name → bcrypt hash).
//!
//! bcrypt is slow on purpose (tens of milliseconds at cost 10): checking
//! the credentials of every scrape with it would cost every request that
//! much CPU, and on two cores a client sending credentials fast could keep
//! the machine busy. So, as the exporter-toolkit does, a successful check
//! is remembered under the SHA-256 of the user, the hash and the password
//! (never the password itself), and later requests with the same
//! credentials cost a hash and a lookup. The memory belongs to the
//! configuration: a reload starts with none, and a changed hash never
//! matches an old entry.
//!
//! Checks that are not remembered run on tokio's blocking pool, at most
//! [`VERIFICATIONS`] at once; a request that finds none free is refused at
//! once (503 with `Retry-After`) rather than queued, so a flood of wrong
//! credentials costs at most that many cores and never delays a client
//! whose credentials are remembered. An unknown user is checked against a
//! hash all the same, so the time of an answer does not tell which users
//! exist.

use base64::Engine as _;
use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// bcrypt checks that run at once, at most.
pub const VERIFICATIONS: usize = 2;
/// Successful checks remembered, at most.
const REMEMBERED: u64 = 100;

/// What a request's credentials earn it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthVerdict {
    /// Known user, right password.
    Allowed,
    /// No credentials, malformed ones, an unknown user or a wrong password
    /// (401).
    Denied,
    /// Every check place is taken; try again (503).
    Busy,
}

/// The users and what is remembered of their checks.
pub(super) struct BasicAuth {
    users: HashMap<String, String>,
    /// Checked against for unknown users: a hash of the users' highest cost.
    decoy: String,
    /// Keys of credentials that passed (see the module doc); moka's cache
    /// is bounded and takes no lock on reads.
    passed: moka::sync::Cache<[u8; 32], ()>,
    // Why a semaphore: bcrypt checks are CPU-bound and run on the blocking
    // pool; a fixed number of places, taken without waiting, bounds what
    // wrong credentials can cost.
    checking: Arc<Semaphore>,
}

impl BasicAuth {
    /// Users from user name → bcrypt hash (checked by the caller).
    pub(super) fn new(users: HashMap<String, String>) -> Self {
        let cost = users
            .values()
            .filter_map(|h| h.parse::<bcrypt::HashParts>().ok())
            .map(|h| h.get_cost())
            .max()
            .unwrap_or(bcrypt::DEFAULT_COST);
        let decoy = bcrypt::hash_with_salt(b"transitwatch", cost, [7; 16])
            .map(|h| h.to_string())
            .unwrap_or_default();
        Self {
            users,
            decoy,
            passed: moka::sync::Cache::new(REMEMBERED),
            checking: Arc::new(Semaphore::new(VERIFICATIONS)),
        }
    }

    /// Check the `Authorization` header of a request.
    pub(super) async fn check(&self, header: Option<&HeaderValue>) -> AuthVerdict {
        let Some((user, password)) = header.and_then(credentials) else {
            return AuthVerdict::Denied;
        };
        let hash = self.users.get(&user);
        let key = remembered_key(&user, hash.map_or("", String::as_str), &password);
        if hash.is_some() && self.passed.contains_key(&key) {
            return AuthVerdict::Allowed;
        }
        let Ok(place) = Arc::clone(&self.checking).try_acquire_owned() else {
            return AuthVerdict::Busy;
        };
        let known = hash.is_some();
        let hash = hash.unwrap_or(&self.decoy).clone();
        let matched = tokio::task::spawn_blocking(move || {
            let _place = place;
            bcrypt::verify(password.as_bytes(), &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        if matched && known {
            self.passed.insert(key, ());
            AuthVerdict::Allowed
        } else {
            AuthVerdict::Denied
        }
    }
}

/// User and password of a `Basic` `Authorization` header.
fn credentials(header: &HeaderValue) -> Option<(String, String)> {
    let text = header.to_str().ok()?.trim();
    let (scheme, encoded) = text.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// What a successful check is remembered by: each part length-prefixed,
/// so no two triples hash the same text.
fn remembered_key(user: &str, hash: &str, password: &str) -> [u8; 32] {
    let mut digest = Sha256::new();
    for part in [user, hash, password] {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part.as_bytes());
    }
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> HeaderValue {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        HeaderValue::from_str(&format!("Basic {encoded}")).unwrap()
    }

    fn auth() -> BasicAuth {
        let users = HashMap::from([(
            "prometheus".to_string(),
            bcrypt::hash("s3cret:x", 4).unwrap(),
        )]);
        BasicAuth::new(users)
    }

    #[tokio::test]
    async fn right_credentials_pass_and_are_remembered() {
        let auth = auth();
        let right = header("prometheus", "s3cret:x");
        assert_eq!(auth.check(Some(&right)).await, AuthVerdict::Allowed);
        auth.passed.run_pending_tasks();
        assert_eq!(auth.passed.entry_count(), 1);
        // Remembered: passes with every check place taken.
        let _taken = Arc::clone(&auth.checking)
            .acquire_many_owned(VERIFICATIONS as u32)
            .await
            .unwrap();
        assert_eq!(auth.check(Some(&right)).await, AuthVerdict::Allowed);
        // Not remembered: refused at once, not queued.
        let other = header("prometheus", "guess");
        assert_eq!(auth.check(Some(&other)).await, AuthVerdict::Busy);
    }

    #[tokio::test]
    async fn anything_else_is_denied() {
        let auth = auth();
        for value in [
            Some(header("prometheus", "s3cret")),
            Some(header("nobody", "s3cret:x")),
            Some(HeaderValue::from_static("Bearer abc")),
            Some(HeaderValue::from_static("Basic !!!")),
            None,
        ] {
            assert_eq!(
                auth.check(value.as_ref()).await,
                AuthVerdict::Denied,
                "{value:?}"
            );
        }
        auth.passed.run_pending_tasks();
        assert_eq!(auth.passed.entry_count(), 0);
        assert!(auth.decoy.starts_with("$2b$04$"), "{}", auth.decoy);
    }

    #[test]
    fn the_scheme_is_case_insensitive() {
        let value = HeaderValue::from_static("basic cHJvbWV0aGV1czpzM2NyZXQ=");
        assert_eq!(
            credentials(&value),
            Some(("prometheus".to_string(), "s3cret".to_string()))
        );
    }
}

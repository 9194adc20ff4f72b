//! The primitives of webhook authenticity checks: HMAC-SHA256, constant-time comparison of
//! MACs, digests and shared keys, and replay windows. Pure functions, no I/O, always over the
//! exact raw bytes received (never re-serialized JSON).
//!
//! Each platform's own scheme (which header, which bytes are signed, which encoding, which
//! window) lives with the platform, in `leadflow-providers`; the platforms' published test
//! vectors are tested there. A failed check is a [`SignatureError`], which the HTTP edge answers
//! 401 with a distinct code: `missing_signature`, `invalid_signature` (malformed or not
//! matching) and `stale_timestamp` (authentic, but outside the platform's replay window).

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery is not accepted as authentic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature (or timestamp, or key) the scheme needs is absent.
    #[error("{0} is missing")]
    Missing(&'static str),
    /// Present but unreadable: wrong prefix, not hex/base64, unparseable timestamp.
    #[error("{0} is malformed")]
    Malformed(&'static str),
    /// Well-formed but does not match the body and secret.
    #[error("signature does not match")]
    Mismatch,
    /// Authentic but signed outside the allowed window (a replay, or a badly skewed clock).
    #[error("signed timestamp is outside the allowed window")]
    Stale,
}

fn mac(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        // HMAC takes keys of any length, so this never happens; a fixed all-zero block key
        // keeps the function total without a panic path.
        Err(_) => <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()),
    }
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

fn verify_mac(key: &[u8], parts: &[&[u8]], expected: &[u8]) -> Result<(), SignatureError> {
    if key.is_empty() {
        // An empty secret is "not configured"; never treat it as a key anyone can use.
        return Err(SignatureError::Mismatch);
    }
    let mut m = mac(key);
    for p in parts {
        m.update(p);
    }
    // `verify_slice` compares in constant time (and rejects a wrong length).
    m.verify_slice(expected)
        .map_err(|_| SignatureError::Mismatch)
}

/// Verifies a hex HMAC-SHA256 (either case) over `parts` in constant time.
pub fn verify_hmac_hex(key: &[u8], parts: &[&[u8]], sig_hex: &str) -> Result<(), SignatureError> {
    let sig = hex::decode(sig_hex.trim()).map_err(|_| SignatureError::Malformed("signature"))?;
    verify_mac(key, parts, &sig)
}

/// Verifies a standard-alphabet base64 HMAC-SHA256 over `parts` in constant time.
pub fn verify_hmac_base64(
    key: &[u8],
    parts: &[&[u8]],
    sig_b64: &str,
) -> Result<(), SignatureError> {
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig_b64.trim())
        .map_err(|_| SignatureError::Malformed("signature"))?;
    verify_mac(key, parts, &sig)
}

/// Constant-time equality of two shared keys (Google Ads `google_key`, URL secrets, Meta's
/// verify token). Both sides are hashed first so neither the content nor the length of the
/// configured key leaks through timing. An empty configured key never matches.
pub fn keys_equal(given: &str, configured: &str) -> bool {
    if configured.is_empty() {
        return false;
    }
    let a = Sha256::digest(given.as_bytes());
    let b = Sha256::digest(configured.as_bytes());
    a.ct_eq(&b).into()
}

/// A shared key from a header, query or body field: missing, or equal to the configured one.
pub fn verify_shared_key(given: Option<&str>, configured: &str) -> Result<(), SignatureError> {
    let given = given
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Missing("key"))?;
    if keys_equal(given, configured) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// `Ok` when `signed_at` is within `tolerance` of `now`, either side (clocks drift both ways).
pub fn check_window(
    signed_at: DateTime<Utc>,
    now: DateTime<Utc>,
    tolerance: Duration,
) -> Result<(), SignatureError> {
    let skew = (now - signed_at).num_milliseconds().unsigned_abs();
    if u128::from(skew) > tolerance.as_millis() {
        Err(SignatureError::Stale)
    } else {
        Ok(())
    }
}

/// A timestamp in epoch milliseconds, as signed.
pub fn timestamp_millis(ts: &str) -> Result<DateTime<Utc>, SignatureError> {
    ts.trim()
        .parse::<i64>()
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .ok_or(SignatureError::Malformed("timestamp"))
}

/// A timestamp in epoch seconds, as signed.
pub fn timestamp_secs(ts: &str) -> Result<DateTime<Utc>, SignatureError> {
    ts.trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .ok_or(SignatureError::Malformed("timestamp"))
}

/// A header (or field) the scheme needs: trimmed, non-empty, or `Missing(what)`.
pub fn required<'a>(value: Option<&'a str>, what: &'static str) -> Result<&'a str, SignatureError> {
    value
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Missing(what))
}

/// Verifies a hex SHA-256 digest of the concatenation of `parts` in constant time (schemes
/// that hash the secret with the body instead of keying a MAC with it).
pub fn verify_sha256_hex(parts: &[&[u8]], sig_hex: &str) -> Result<(), SignatureError> {
    let given = hex::decode(sig_hex.trim()).map_err(|_| SignatureError::Malformed("signature"))?;
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let expected = h.finalize();
    if given.len() == expected.len() && bool::from(given.as_slice().ct_eq(expected.as_slice())) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_ms(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).single().unwrap()
    }

    #[test]
    fn shared_keys_compare_whole_values() {
        assert!(keys_equal("k-123", "k-123"));
        assert!(!keys_equal("k-12", "k-123"));
        assert!(!keys_equal("k-1234", "k-123"));
        assert!(!keys_equal("", ""));
        assert_eq!(verify_shared_key(Some("k"), "k"), Ok(()));
        assert_eq!(
            verify_shared_key(Some("x"), "k"),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_shared_key(None, "k"),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_shared_key(Some("  "), "k"),
            Err(SignatureError::Missing(_))
        ));
    }

    #[test]
    fn windows_reach_both_ways_and_timestamps_parse() {
        let t = at_ms(1_700_000_000_000);
        let five = Duration::from_secs(300);
        assert_eq!(check_window(t, at_ms(1_700_000_300_000), five), Ok(()));
        assert_eq!(check_window(t, at_ms(1_699_999_700_000), five), Ok(()));
        assert_eq!(
            check_window(t, at_ms(1_700_000_300_001), five),
            Err(SignatureError::Stale)
        );
        assert_eq!(timestamp_millis(" 1700000000000 "), Ok(t));
        assert_eq!(timestamp_secs("1700000000"), Ok(t));
        assert!(matches!(
            timestamp_secs("soon"),
            Err(SignatureError::Malformed(_))
        ));
        assert_eq!(
            required(Some("  "), "X-Sig"),
            Err(SignatureError::Missing("X-Sig"))
        );
    }

    #[test]
    fn macs_compare_whole_values_in_either_case() {
        let sig = hmac_sha256(b"k", &[b"a", b"b"]);
        assert_eq!(verify_hmac_hex(b"k", &[b"ab"], &hex::encode(sig)), Ok(()));
        assert_eq!(
            verify_hmac_hex(b"k", &[b"ab"], &hex::encode(sig).to_uppercase()),
            Ok(())
        );
        assert_eq!(
            verify_hmac_hex(b"k", &[b"ab"], &hex::encode(&sig[..31])),
            Err(SignatureError::Mismatch)
        );
        // An empty key is "not configured": it never verifies anything.
        let empty = hmac_sha256(b"", &[b"ab"]);
        assert_eq!(
            verify_hmac_hex(b"", &[b"ab"], &hex::encode(empty)),
            Err(SignatureError::Mismatch)
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(sig);
        assert_eq!(verify_hmac_base64(b"k", &[b"ab"], &b64), Ok(()));
        assert!(matches!(
            verify_hmac_base64(b"k", &[b"ab"], "not base64!"),
            Err(SignatureError::Malformed(_))
        ));
        let digest = hex::encode(Sha256::digest(b"kab"));
        assert_eq!(verify_sha256_hex(&[b"k", b"ab"], &digest), Ok(()));
        assert_eq!(
            verify_sha256_hex(&[b"k", b"ac"], &digest),
            Err(SignatureError::Mismatch)
        );
    }
}

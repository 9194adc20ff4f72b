//! Webhook authenticity checks: HMAC-SHA256 and shared-key schemes, all compared in constant
//! time, always over the exact raw bytes received (never re-serialized JSON).
//!
//! Pure functions, no I/O: each platform scheme takes the secret, the raw body and the header
//! values as received and answers `Ok(())` or a [`SignatureError`], which maps onto an
//! [`AppError`] 401 with a distinct code: `missing_signature`, `invalid_signature` (malformed or
//! not matching) and `stale_timestamp` (authentic, but outside the platform's replay window).
//! Facts about each scheme: `../shared/providers.md` and the platforms' own documentation.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, TimeZone, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::AppError;

type HmacSha256 = Hmac<Sha256>;

/// HubSpot v3 and Webflow: requests older than 5 minutes are rejected.
pub const HUBSPOT_TOLERANCE: Duration = Duration::from_secs(5 * 60);
pub const WEBFLOW_TOLERANCE: Duration = Duration::from_secs(5 * 60);
/// Calendly's documented tolerance is about 3 minutes.
pub const CALENDLY_TOLERANCE: Duration = Duration::from_secs(3 * 60);

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

impl From<SignatureError> for AppError {
    fn from(e: SignatureError) -> AppError {
        let code = match e {
            SignatureError::Missing(_) => "missing_signature",
            SignatureError::Malformed(_) | SignatureError::Mismatch => "invalid_signature",
            SignatureError::Stale => "stale_timestamp",
        };
        AppError::unauthorized(code, e.to_string())
    }
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

fn parse_millis(ts: &str) -> Result<DateTime<Utc>, SignatureError> {
    ts.trim()
        .parse::<i64>()
        .ok()
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .ok_or(SignatureError::Malformed("timestamp"))
}

fn parse_secs(ts: &str) -> Result<DateTime<Utc>, SignatureError> {
    ts.trim()
        .parse::<i64>()
        .ok()
        .and_then(|s| Utc.timestamp_opt(s, 0).single())
        .ok_or(SignatureError::Malformed("timestamp"))
}

fn required<'a>(value: Option<&'a str>, what: &'static str) -> Result<&'a str, SignatureError> {
    value
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Missing(what))
}

/// Meta (and GitHub): `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, body)>`.
pub fn verify_meta(secret: &str, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = required(header, "X-Hub-Signature-256")?;
    let hex_sig = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed("X-Hub-Signature-256"))?;
    verify_hmac_hex(secret.as_bytes(), &[body], hex_sig)
}

/// Typeform: `Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, body)>`.
pub fn verify_typeform(
    secret: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = required(header, "Typeform-Signature")?;
    let b64 = header
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed("Typeform-Signature"))?;
    verify_hmac_base64(secret.as_bytes(), &[body], b64)
}

/// Tally: `Tally-Signature: <base64 HMAC-SHA256(signing secret, body)>`.
pub fn verify_tally(secret: &str, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = required(header, "Tally-Signature")?;
    verify_hmac_base64(secret.as_bytes(), &[body], header)
}

/// HubSpot decodes these percent-escapes in the URI before signing it (v3 only); every other
/// byte, including other escapes, is signed as received.
fn hubspot_v3_uri(uri: &str) -> String {
    const DECODE: [(&[u8; 3], u8); 12] = [
        (b"%3A", b':'),
        (b"%2F", b'/'),
        (b"%3F", b'?'),
        (b"%40", b'@'),
        (b"%21", b'!'),
        (b"%24", b'$'),
        (b"%27", b'\''),
        (b"%28", b'('),
        (b"%29", b')'),
        (b"%2A", b'*'),
        (b"%2C", b','),
        (b"%3B", b';'),
    ];
    let bytes = uri.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = bytes.get(i..i + 3).and_then(|triple| {
            DECODE
                .iter()
                .find(|(enc, _)| triple.eq_ignore_ascii_case(&enc[..]))
                .map(|(_, dec)| *dec)
        });
        match decoded {
            Some(c) => {
                out.push(c);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    // Only ASCII escapes were replaced by ASCII bytes, so the result is still UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// HubSpot v3: `X-HubSpot-Signature-v3 = base64(HMAC-SHA256(client secret, method + uri + body +
/// timestamp))`, `X-HubSpot-Request-Timestamp` in milliseconds, at most 5 minutes old. The
/// signature is checked first, so `Stale` means "authentic but old".
pub fn verify_hubspot_v3(
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    signature: Option<&str>,
    timestamp: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let signature = required(signature, "X-HubSpot-Signature-v3")?;
    let ts = required(timestamp, "X-HubSpot-Request-Timestamp")?;
    let signed_at = parse_millis(ts)?;
    let uri = hubspot_v3_uri(uri);
    verify_hmac_base64(
        secret.as_bytes(),
        &[method.as_bytes(), uri.as_bytes(), body, ts.as_bytes()],
        signature,
    )?;
    check_window(signed_at, now, HUBSPOT_TOLERANCE)
}

fn verify_sha256_hex(parts: &[&[u8]], sig_hex: &str) -> Result<(), SignatureError> {
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

/// HubSpot v2: `X-HubSpot-Signature = hex(SHA256(client secret + method + uri + body))`.
pub fn verify_hubspot_v2(
    secret: &str,
    method: &str,
    uri: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    let signature = required(signature, "X-HubSpot-Signature")?;
    if secret.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    verify_sha256_hex(
        &[secret.as_bytes(), method.as_bytes(), uri.as_bytes(), body],
        signature,
    )
}

/// HubSpot v1: `X-HubSpot-Signature = hex(SHA256(client secret + body))`. Kept for completeness
/// and the published vector; the webhook handler does not accept it (it binds neither the URL
/// nor a time, and `SHA256(secret + body)` allows length extension).
pub fn verify_hubspot_v1(
    secret: &str,
    body: &[u8],
    signature: Option<&str>,
) -> Result<(), SignatureError> {
    let signature = required(signature, "X-HubSpot-Signature")?;
    if secret.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    verify_sha256_hex(&[secret.as_bytes(), body], signature)
}

const LINKEDIN_PREFIX: &str = "hmacsha256=";

/// LinkedIn: `X-LI-Signature = hex(HMAC-SHA256(client secret, "hmacsha256=" + body))`. Senders
/// disagree on whether the header value itself carries the `hmacsha256=` prefix: both accepted.
/// The MAC is always over the exact `hmacsha256=`-prefixed message, and the body must be JSON
/// (LinkedIn only sends JSON): together with the UUID-only challenge
/// ([`linkedin_challenge_response`]) no validation answer can ever pass as a POST signature.
pub fn verify_linkedin(
    secret: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = required(header, "X-LI-Signature")?;
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if !matches!(first, Some(b'{' | b'[')) {
        return Err(SignatureError::Malformed("body (LinkedIn sends JSON)"));
    }
    let hex_sig = header.strip_prefix(LINKEDIN_PREFIX).unwrap_or(header);
    verify_hmac_hex(
        secret.as_bytes(),
        &[LINKEDIN_PREFIX.as_bytes(), body],
        hex_sig,
    )
}

/// LinkedIn's validation answer: lowercase hex HMAC-SHA256(client secret, challengeCode), only
/// for a challenge in the canonical UUID form LinkedIn sends (`8-4-4-4-12` hex digits).
///
/// The challenge is MACed with the same key as the POST signature, whose message is always
/// `"hmacsha256=" + body`. A UUID can never equal such a message (it has no `=`, and it is not
/// `hmacsha256=` followed by anything), so no accepted challenge can yield a valid POST
/// signature: the endpoint is no signing oracle. Anything else gets `None` (answered 400).
pub fn linkedin_challenge_response(secret: &str, challenge_code: &str) -> Option<String> {
    is_canonical_uuid(challenge_code)
        .then(|| hex::encode(hmac_sha256(secret.as_bytes(), &[challenge_code.as_bytes()])))
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, hex digits of either case.
fn is_canonical_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Webflow: `x-webflow-signature = hex(HMAC-SHA256(secret, timestamp + ":" + body))`,
/// `x-webflow-timestamp` in milliseconds, at most 5 minutes old.
pub fn verify_webflow(
    secret: &str,
    body: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let signature = required(signature, "x-webflow-signature")?;
    let ts = required(timestamp, "x-webflow-timestamp")?;
    let signed_at = parse_millis(ts)?;
    verify_hmac_hex(secret.as_bytes(), &[ts.as_bytes(), b":", body], signature)?;
    check_window(signed_at, now, WEBFLOW_TOLERANCE)
}

/// Calendly: `Calendly-Webhook-Signature: t=<unix s>,v1=<hex HMAC-SHA256(key, t + "." + body)>`,
/// about 3 minutes of tolerance. Several `v1` entries (key rotation) are each tried.
pub fn verify_calendly(
    signing_key: &str,
    body: &[u8],
    header: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = required(header, "Calendly-Webhook-Signature")?;
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = Some(v.trim()),
            Some(("v1", v)) => sigs.push(v.trim()),
            _ => {}
        }
    }
    let t = t
        .filter(|s| !s.is_empty())
        .ok_or(SignatureError::Malformed("Calendly-Webhook-Signature"))?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed("Calendly-Webhook-Signature"));
    }
    let signed_at = parse_secs(t)?;
    let mut result = Err(SignatureError::Mismatch);
    for sig in sigs {
        match verify_hmac_hex(signing_key.as_bytes(), &[t.as_bytes(), b".", body], sig) {
            Ok(()) => {
                result = Ok(());
                break;
            }
            Err(e @ SignatureError::Malformed(_)) if result.is_err() => result = Err(e),
            Err(_) => {}
        }
    }
    result?;
    check_window(signed_at, now, CALENDLY_TOLERANCE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn at_ms(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(ms).single().unwrap()
    }

    // --- Published vectors (../shared/providers.md) ---

    #[test]
    fn github_vector_for_the_meta_scheme() {
        let secret = "It's a Secret to Everybody";
        let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert_eq!(verify_meta(secret, b"Hello, World!", Some(header)), Ok(()));
        // Uppercase hex is the same signature.
        assert_eq!(
            verify_meta(
                secret,
                b"Hello, World!",
                Some(&header.to_uppercase().replace("SHA256=", "sha256="))
            ),
            Ok(())
        );
    }

    const HS_SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const HS_BODY: &[u8] = b"{'example_field':'example_value'}";
    const HS_URI: &str = "https://www.example.com/webhook_uri";

    #[test]
    fn hubspot_v1_vector() {
        let sig = "69fc6631a867edd4f9e9e627fc5c1148e3fbdd8b21837b6d2b8901c1fa57f750";
        assert_eq!(verify_hubspot_v1(HS_SECRET, HS_BODY, Some(sig)), Ok(()));
        assert_eq!(
            verify_hubspot_v1(HS_SECRET, b"{'example_field':'other'}", Some(sig)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn hubspot_v2_vector() {
        let sig = "4fe4e3a7d3cf09db53be39d0a58130e2aaba074ec123a9e355b876a689a1c383";
        assert_eq!(
            verify_hubspot_v2(HS_SECRET, "POST", HS_URI, HS_BODY, Some(sig)),
            Ok(())
        );
        assert_eq!(
            verify_hubspot_v2(HS_SECRET, "GET", HS_URI, HS_BODY, Some(sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_hubspot_v2("wrong", "POST", HS_URI, HS_BODY, Some(sig)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn hubspot_v3_vector() {
        let sig = "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw=";
        let now = at_ms(15_000_000 + 60_000);
        assert_eq!(
            verify_hubspot_v3(
                HS_SECRET,
                "POST",
                HS_URI,
                HS_BODY,
                Some(sig),
                Some("15000000"),
                now
            ),
            Ok(())
        );
    }

    // --- Per scheme: valid / tampered / wrong secret / stale / missing or malformed ---

    #[test]
    fn meta_failure_modes() {
        let body = br#"{"object":"page"}"#;
        let good = format!("sha256={}", hex::encode(hmac_sha256(b"s3cret", &[body])));
        assert_eq!(verify_meta("s3cret", body, Some(&good)), Ok(()));
        assert_eq!(
            verify_meta("s3cret", br#"{"object":"pagE"}"#, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_meta("other", body, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_meta("s3cret", body, None),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_meta("s3cret", body, Some(&good[7..])),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_meta("s3cret", body, Some("sha256=zz")),
            Err(SignatureError::Malformed(_))
        ));
        // A truncated signature is a mismatch, not a prefix match.
        assert_eq!(
            verify_meta("s3cret", body, Some(&good[..good.len() - 2])),
            Err(SignatureError::Mismatch)
        );
        // An empty secret never verifies anything.
        let empty = format!("sha256={}", hex::encode(hmac_sha256(b"", &[body])));
        assert_eq!(
            verify_meta("", body, Some(&empty)),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn typeform_failure_modes() {
        let body = br#"{"event_id":"01"}"#;
        let good = format!("sha256={}", b64(&hmac_sha256(b"tf", &[body])));
        assert_eq!(verify_typeform("tf", body, Some(&good)), Ok(()));
        assert_eq!(
            verify_typeform("tf", br#"{"event_id":"02"}"#, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_typeform("nope", body, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_typeform("tf", body, Some("")),
            Err(SignatureError::Missing(_))
        ));
        // Hex where base64 is expected does not verify.
        let hex_sig = format!("sha256={}", hex::encode(hmac_sha256(b"tf", &[body])));
        assert!(verify_typeform("tf", body, Some(&hex_sig)).is_err());
        assert!(matches!(
            verify_typeform("tf", body, Some(&good[7..])),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn tally_failure_modes() {
        let body = br#"{"eventId":"e"}"#;
        let good = b64(&hmac_sha256(b"ta", &[body]));
        assert_eq!(verify_tally("ta", body, Some(&good)), Ok(()));
        assert_eq!(
            verify_tally("ta", b"{}", Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_tally("tb", body, Some(&good)),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_tally("ta", body, None),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_tally("ta", body, Some("not base64!")),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn hubspot_v3_failure_modes() {
        let body = br#"[{"eventId":1}]"#;
        let ts = "1700000000000";
        let now = at_ms(1_700_000_000_000 + 30_000);
        let uri = "https://hooks.example.com/webhooks/hubspot?key=a%3Ab";
        // HubSpot signs the URI with `%3A` decoded.
        let signed_uri = "https://hooks.example.com/webhooks/hubspot?key=a:b";
        let sig = b64(&hmac_sha256(
            b"hs",
            &[b"POST", signed_uri.as_bytes(), body, ts.as_bytes()],
        ));
        let check = |secret: &str, body: &[u8], sig: Option<&str>, ts: Option<&str>, now| {
            verify_hubspot_v3(secret, "POST", uri, body, sig, ts, now)
        };
        assert_eq!(check("hs", body, Some(&sig), Some(ts), now), Ok(()));
        assert_eq!(
            check("hs", br#"[{"eventId":2}]"#, Some(&sig), Some(ts), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            check("other", body, Some(&sig), Some(ts), now),
            Err(SignatureError::Mismatch)
        );
        // Authentic but 6 minutes old, or from the future.
        assert_eq!(
            check(
                "hs",
                body,
                Some(&sig),
                Some(ts),
                at_ms(1_700_000_000_000 + 360_000)
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            check(
                "hs",
                body,
                Some(&sig),
                Some(ts),
                at_ms(1_700_000_000_000 - 360_000)
            ),
            Err(SignatureError::Stale)
        );
        // A fresh timestamp swapped in breaks the signature.
        assert_eq!(
            check("hs", body, Some(&sig), Some("1700000020000"), now),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            check("hs", body, None, Some(ts), now),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            check("hs", body, Some(&sig), None, now),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            check("hs", body, Some(&sig), Some("yesterday"), now),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn linkedin_with_and_without_prefix() {
        let body = br#"{"type":"LEAD_ACTION"}"#;
        let sig = hex::encode(hmac_sha256(b"li", &[b"hmacsha256=", body]));
        assert_eq!(verify_linkedin("li", body, Some(&sig)), Ok(()));
        assert_eq!(
            verify_linkedin("li", body, Some(&format!("hmacsha256={sig}"))),
            Ok(())
        );
        assert_eq!(
            verify_linkedin("li", b"{}", Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_linkedin("lj", body, Some(&sig)),
            Err(SignatureError::Mismatch)
        );
        // HMAC over the bare body (without the prefix) is not LinkedIn's scheme.
        let bare = hex::encode(hmac_sha256(b"li", &[body]));
        assert_eq!(
            verify_linkedin("li", body, Some(&bare)),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_linkedin("li", body, None),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_linkedin("li", body, Some("hmacsha256=xyz")),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn linkedin_challenge_is_hex_hmac_of_the_code() {
        let code = "f0a4fb6b-6b5a-4f4d-9d7e-3c4c2b1f0e9a";
        let resp = linkedin_challenge_response("li-secret", code).unwrap();
        assert_eq!(resp.len(), 64);
        assert_eq!(
            resp,
            hex::encode(hmac_sha256(b"li-secret", &[code.as_bytes()]))
        );
        assert!(resp.chars().all(|c| !c.is_ascii_uppercase()));
    }

    #[test]
    fn linkedin_answers_only_uuid_challenges_so_it_signs_no_post() {
        let body = r#"{"type":"LEAD_ACTION","leadAction":"CREATED"}"#;
        for not_uuid in [
            format!("hmacsha256={body}"),
            "hmacsha256=".to_string(),
            "1234".to_string(),
            "{f0a4fb6b-6b5a-4f4d-9d7e-3c4c2b1f0e9a}".to_string(),
            "urn:uuid:f0a4fb6b-6b5a-4f4d-9d7e-3c4c2b1f0e9a".to_string(),
            "f0a4fb6b6b5a4f4d9d7e3c4c2b1f0e9a".to_string(),
            "g0a4fb6b-6b5a-4f4d-9d7e-3c4c2b1f0e9a".to_string(),
        ] {
            assert_eq!(
                linkedin_challenge_response("li", &not_uuid),
                None,
                "{not_uuid}"
            );
        }
        // The answer to an accepted challenge never verifies a POST, with or without prefix.
        let answer =
            linkedin_challenge_response("li", "f0a4fb6b-6b5a-4f4d-9d7e-3c4c2b1f0e9a").unwrap();
        for header in [answer.clone(), format!("hmacsha256={answer}")] {
            assert_eq!(
                verify_linkedin("li", body.as_bytes(), Some(&header)),
                Err(SignatureError::Mismatch)
            );
        }
        // A body that is not JSON is refused before any MAC is computed.
        let sig = hex::encode(hmac_sha256(b"li", &[b"hmacsha256=", b"plain"]));
        assert!(matches!(
            verify_linkedin("li", b"plain", Some(&sig)),
            Err(SignatureError::Malformed(_))
        ));
    }

    #[test]
    fn webflow_failure_modes() {
        let body = br#"{"triggerType":"form_submission"}"#;
        let ts = "1700000000000";
        let sig = hex::encode(hmac_sha256(b"wf", &[ts.as_bytes(), b":", body]));
        let now = at_ms(1_700_000_000_000 + 1_000);
        assert_eq!(
            verify_webflow("wf", body, Some(ts), Some(&sig), now),
            Ok(())
        );
        assert_eq!(
            verify_webflow("wf", b"{}", Some(ts), Some(&sig), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webflow("wx", body, Some(ts), Some(&sig), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_webflow(
                "wf",
                body,
                Some(ts),
                Some(&sig),
                at_ms(1_700_000_000_000 + 301_000)
            ),
            Err(SignatureError::Stale)
        );
        assert!(matches!(
            verify_webflow("wf", body, None, Some(&sig), now),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_webflow("wf", body, Some(ts), None, now),
            Err(SignatureError::Missing(_))
        ));
        // Seconds where milliseconds are expected: a 1970 timestamp, stale once authentic.
        let sig_s = hex::encode(hmac_sha256(b"wf", &[b"1700000000", b":", body]));
        assert_eq!(
            verify_webflow("wf", body, Some("1700000000"), Some(&sig_s), now),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn calendly_failure_modes() {
        let body = br#"{"event":"invitee.created"}"#;
        let t = "1700000000";
        let sig = hex::encode(hmac_sha256(b"cal", &[t.as_bytes(), b".", body]));
        let header = format!("t={t},v1={sig}");
        let now = at_ms(1_700_000_000_000 + 60_000);
        assert_eq!(verify_calendly("cal", body, Some(&header), now), Ok(()));
        assert_eq!(
            verify_calendly("cal", b"{}", Some(&header), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_calendly("other", body, Some(&header), now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_calendly(
                "cal",
                body,
                Some(&header),
                at_ms(1_700_000_000_000 + 181_000)
            ),
            Err(SignatureError::Stale)
        );
        // Rotation: any listed v1 may match.
        let rotated = format!("t={t},v1={},v1={sig}", "00".repeat(32));
        assert_eq!(verify_calendly("cal", body, Some(&rotated), now), Ok(()));
        assert!(matches!(
            verify_calendly("cal", body, None, now),
            Err(SignatureError::Missing(_))
        ));
        assert!(matches!(
            verify_calendly("cal", body, Some(&format!("v1={sig}")), now),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_calendly("cal", body, Some(&format!("t={t}")), now),
            Err(SignatureError::Malformed(_))
        ));
        assert!(matches!(
            verify_calendly("cal", body, Some(&format!("t=soon,v1={sig}")), now),
            Err(SignatureError::Malformed(_))
        ));
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
    fn errors_map_to_distinct_codes() {
        let code = |e: SignatureError| AppError::from(e).code();
        assert_eq!(code(SignatureError::Missing("x")), "missing_signature");
        assert_eq!(code(SignatureError::Malformed("x")), "invalid_signature");
        assert_eq!(code(SignatureError::Mismatch), "invalid_signature");
        assert_eq!(code(SignatureError::Stale), "stale_timestamp");
        assert_eq!(AppError::from(SignatureError::Stale).status(), 401);
    }

    #[test]
    fn hubspot_uri_decoding_is_limited_to_its_list() {
        assert_eq!(
            hubspot_v3_uri("https://x.io/a%2Fb?q=%3a%20%C3%A4%3B"),
            "https://x.io/a/b?q=:%20%C3%A4;"
        );
        assert_eq!(hubspot_v3_uri("%"), "%");
        assert_eq!(hubspot_v3_uri("ä%2"), "ä%2");
    }
}

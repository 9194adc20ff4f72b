//! What erasure needs to know about personal data it cannot parse: whose addresses and numbers
//! a raw body holds.
//!
//! A quarantined delivery is kept because it could not be parsed, so the person it belongs to is
//! not known from its fields. Its bytes are searched instead: every token that is a valid email
//! address, and every `+`-prefixed token that is a valid international phone number, becomes an
//! identity the delivery is filed under (`store::quarantine`), so erasing that person finds and
//! deletes it. Honest limit: a number written only in national form (no `+`), or an address
//! the body encodes in a way not undone here (JSON `\u0040`, base64), is not found; such a
//! delivery still expires with the quarantine's 30 days.

use crate::model::IdentityKey;
use crate::normalize::{check_email, normalize_phone, NormalizeConfig};
use crate::signature::hmac_sha256;

/// A pepper is a secret; a short one would make its hashes guessable by brute force.
pub const MIN_PEPPER_BYTES: usize = 16;

/// The privacy pepper (`PRIVACY_PEPPER`): the deployment secret that keys every hash of a
/// person's address or number the table keeps beyond the lead itself (suppression entries,
/// referral keys), so that a hash cannot be recomputed by anyone holding a list of addresses.
/// It is never stored in the table. `Debug` never prints it.
#[derive(Clone, Default)]
pub struct Pepper(Option<String>);

pub const PRIVACY_PEPPER: &str = "PRIVACY_PEPPER";

impl Pepper {
    /// Reads the pepper from `var`; one shorter than [`MIN_PEPPER_BYTES`] is refused
    /// (configuration error) rather than silently used; unset is `None` (features that need it
    /// are off, and say so).
    pub fn from_lookup(var: &str, get: impl Fn(&str) -> Option<String>) -> Result<Pepper, String> {
        match get(var)
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
        {
            None => Ok(Pepper(None)),
            Some(p) if p.len() >= MIN_PEPPER_BYTES => Ok(Pepper(Some(p))),
            Some(_) => Err(format!(
                "{var} must be at least {MIN_PEPPER_BYTES} bytes (a random secret)"
            )),
        }
    }

    /// `PRIVACY_PEPPER`, as every function reads it.
    pub fn privacy(get: impl Fn(&str) -> Option<String>) -> Result<Pepper, String> {
        Pepper::from_lookup(PRIVACY_PEPPER, get)
    }

    /// A pepper given in code (tests, tools).
    pub fn new(secret: &str) -> Pepper {
        Pepper(Some(secret.to_string()))
    }

    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }

    /// Hex HMAC-SHA256 under the pepper of length-prefixed parts; `None` without a pepper.
    pub fn keyed(&self, parts: &[&str]) -> Option<String> {
        let pepper = self.0.as_deref()?;
        let framed: Vec<String> = parts.iter().map(|p| format!("{}:{p}", p.len())).collect();
        let refs: Vec<&[u8]> = framed.iter().map(|p| p.as_bytes()).collect();
        Some(hex::encode(hmac_sha256(pepper.as_bytes(), &refs)))
    }

    /// The keyed hash of an identity (email match key or E.164 number).
    pub fn identity(&self, key: &IdentityKey) -> Option<String> {
        match key {
            IdentityKey::Email(e) => self.keyed(&["email", e]),
            IdentityKey::Phone(p) => self.keyed(&["phone", p]),
        }
    }

    /// The raw HMAC of one value (the consent IP hash's historical form).
    pub fn mac_hex(&self, value: &str) -> Option<String> {
        let pepper = self.0.as_deref()?;
        Some(hex::encode(hmac_sha256(
            pepper.as_bytes(),
            &[value.as_bytes()],
        )))
    }
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "<set>" } else { "<unset>" })
    }
}

/// Whether a submission may re-create a suppressed person and lift the suppression: only their
/// own fresh, explicit first-party web-form submission with a marketing opt-in. Platform
/// deliveries, quarantine replays, imports, referrals and reviews are answered `suppressed`.
pub fn lifts_suppression(sub: &crate::model::NormalizedSubmission) -> bool {
    sub.provider == "form"
        && sub.kind == crate::model::TouchKind::FormSubmission
        && sub.consent.as_ref().is_some_and(|c| c.marketing_opt_in)
}

/// A body naming more people than this is filed under the first ones only: the bound keeps the
/// quarantine write one request.
pub const MAX_IDENTITIES: usize = 16;

/// Bodies are searched up to this many bytes (the edge caps bodies well below it anyway).
const MAX_SCANNED_BYTES: usize = 1 << 20;

/// The identities (email match keys, E.164 numbers) a raw body contains, in the order found,
/// deduplicated, at most [`MAX_IDENTITIES`].
pub fn identities_in(body: &[u8]) -> Vec<IdentityKey> {
    let body = &body[..body.len().min(MAX_SCANNED_BYTES)];
    let text = String::from_utf8_lossy(body);
    // Form-encoded bodies (and query-like fields inside JSON) hide `@` as `%40` and spaces as
    // `+`: search the decoded text too.
    let decoded = percent_decode(&text);
    let cfg = NormalizeConfig::default();
    let mut found: Vec<IdentityKey> = Vec::new();
    for t in [text.as_ref(), decoded.as_str()] {
        for token in t.split(|c: char| c.is_whitespace() || "\"'<>()[]{},;:=&\\/|".contains(c)) {
            let token = token.trim_matches(|c: char| c == '.' || c == '+');
            if token.contains('@') {
                if let Ok((_, key)) = check_email(token, &cfg) {
                    push(&mut found, IdentityKey::Email(key));
                }
            }
        }
        for candidate in phone_candidates(t) {
            if let Ok(e164) = normalize_phone(&candidate, &cfg) {
                push(&mut found, IdentityKey::Phone(e164));
            }
        }
    }
    found.truncate(MAX_IDENTITIES);
    found
}

fn push(found: &mut Vec<IdentityKey>, key: IdentityKey) {
    if !found.contains(&key) {
        found.push(key);
    }
}

/// Runs that start with `+` and continue with digits and the separators people write numbers
/// with; international form only, so no region is guessed.
fn phone_candidates(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('+') {
        let tail = &rest[i + 1..];
        let end = tail
            .find(|c: char| !(c.is_ascii_digit() || " -.()".contains(c)))
            .unwrap_or(tail.len());
        let run = tail[..end].trim_end();
        if run.chars().filter(char::is_ascii_digit).count() >= 6 {
            out.push(format!("+{run}"));
        }
        rest = tail;
        if out.len() >= MAX_IDENTITIES * 2 {
            break;
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_addresses_and_international_numbers_in_any_encoding() {
        let json =
            br#"{"answers":[{"email":"Laura.Diaz@Example.com"},{"phone_number":"+34911234567"}]}"#;
        assert_eq!(
            identities_in(json),
            vec![
                IdentityKey::Email("laura.diaz@example.com".into()),
                IdentityKey::Phone("+34911234567".into()),
            ]
        );
        let form = b"name=Ada&email=ada%40example.org&phone=%2B1+415+555+0132";
        assert_eq!(
            identities_in(form),
            vec![
                IdentityKey::Email("ada@example.org".into()),
                IdentityKey::Phone("+14155550132".into()),
            ]
        );
    }

    #[test]
    fn junk_and_national_numbers_are_not_identities() {
        assert!(identities_in(b"noreply@example.com 0911 234 567 +1 and @ x@y").is_empty());
    }

    #[test]
    fn keyed_hashes_need_the_secret() {
        let a = Pepper::new("a-long-random-pepper-1");
        let b = Pepper::new("a-long-random-pepper-2");
        let e = IdentityKey::Email("ada@example.org".into());
        assert_ne!(a.identity(&e), b.identity(&e));
        assert_eq!(a.identity(&e), a.identity(&e));
        assert_eq!(Pepper::default().identity(&e), None);
        assert!(Pepper::from_lookup("P", |_| Some("short".into())).is_err());
        assert!(!format!("{a:?}").contains("pepper"));
    }

    #[test]
    fn the_list_is_bounded() {
        let body: String = (0..100).map(|i| format!("p{i}@example.com ")).collect();
        assert_eq!(identities_in(body.as_bytes()).len(), MAX_IDENTITIES);
    }
}

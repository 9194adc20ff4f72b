//! Normalization: canonical match keys for email and phone, junk-identifier guards, names and
//! countries tidied, and the submission classified. Pure functions, no I/O.

use std::str::FromStr;

use rlibphonenumber::{PhoneNumberFormat, Region, PHONE_NUMBER_UTIL};

use crate::classify::classify;
use crate::model::{Contact, NormalizedSubmission, Submission};

/// Settings that change how contacts are normalized.
#[derive(Debug, Clone)]
pub struct NormalizeConfig {
    /// Region assumed for phone numbers written without `+country` (`DEFAULT_COUNTRY`).
    pub default_country: Region,
    /// Extra identifiers to treat as junk: full addresses, `@domain` suffixes, or phone numbers
    /// (`BLOCKED_IDENTIFIERS`, comma-separated). Built-in junk values are always blocked.
    pub blocked: Vec<String>,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        NormalizeConfig {
            default_country: Region::US,
            blocked: Vec::new(),
        }
    }
}

impl NormalizeConfig {
    /// Reads `DEFAULT_COUNTRY` (ISO alpha-2, default `US`) and `BLOCKED_IDENTIFIERS`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let default_country = match get("DEFAULT_COUNTRY").filter(|s| !s.trim().is_empty()) {
            Some(c) => Region::from_str(c.trim().to_ascii_uppercase().as_str())
                .ok()
                .filter(|r| known_region(*r))
                .ok_or_else(|| {
                    format!(
                        "DEFAULT_COUNTRY {c:?} is not an ISO 3166 alpha-2 code with phone rules"
                    )
                })?,
            None => Region::US,
        };
        let blocked = get("BLOCKED_IDENTIFIERS")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        Ok(NormalizeConfig {
            default_country,
            blocked,
        })
    }
}

/// Values that forms and integrations send when they have nothing: never an identity.
const JUNK_VALUES: &[&str] = &[
    "null",
    "undefined",
    "none",
    "nil",
    "n/a",
    "na",
    "-",
    "-1",
    "0",
    "anonymous",
    "unknown",
    "test",
    "asdf",
];

/// Local parts that never belong to one person.
const JUNK_LOCAL_PARTS: &[&str] = &[
    "null",
    "undefined",
    "anonymous",
    "noreply",
    "no-reply",
    "donotreply",
    "do-not-reply",
];

/// The canonical email match key: trimmed and lowercased (domain always, local part when ASCII:
/// non-ASCII local parts may be case-sensitive on their server). Only for gmail.com and
/// googlemail.com, where the provider itself ignores them, dots and a `+tag` are removed from the
/// local part and the domain is unified to gmail.com. Other providers' `+tags` are kept: for them
/// `a+news@x.com` may be a different mailbox. The stored address is never rewritten.
pub fn email_key(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let (local, domain) = trimmed.rsplit_once('@')?;
    let domain = domain.trim_end_matches('.').to_lowercase();
    let local = if local.is_ascii() {
        local.to_ascii_lowercase()
    } else {
        local.to_string()
    };
    if domain == "gmail.com" || domain == "googlemail.com" {
        let base = local.split('+').next().unwrap_or("");
        let base: String = base.chars().filter(|c| *c != '.').collect();
        return Some(format!("{base}@gmail.com"));
    }
    Some(format!("{local}@{domain}"))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailProblem {
    Invalid,
    Junk,
}

/// Validates an email's syntax (RFC 5322 via `email_address`, plus a dotted domain) and the junk
/// guard; returns the trimmed address and its match key.
pub fn check_email(raw: &str, cfg: &NormalizeConfig) -> Result<(String, String), EmailProblem> {
    let trimmed = raw.trim();
    if JUNK_VALUES.contains(&trimmed.to_ascii_lowercase().as_str()) {
        return Err(EmailProblem::Junk);
    }
    if !email_address::EmailAddress::is_valid(trimmed) {
        return Err(EmailProblem::Invalid);
    }
    let (local, domain) = trimmed.rsplit_once('@').ok_or(EmailProblem::Invalid)?;
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return Err(EmailProblem::Invalid);
    }
    if JUNK_LOCAL_PARTS.contains(&local.to_ascii_lowercase().as_str()) {
        return Err(EmailProblem::Junk);
    }
    let key = email_key(trimmed).ok_or(EmailProblem::Invalid)?;
    let lower = trimmed.to_lowercase();
    let domain_lower = domain.to_lowercase();
    for b in &cfg.blocked {
        if *b == key || *b == lower || b.strip_prefix('@') == Some(domain_lower.as_str()) {
            return Err(EmailProblem::Junk);
        }
    }
    Ok((trimmed.to_string(), key))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneProblem {
    Invalid,
    Junk,
}

/// A phone number as a person wrote it, read: the E.164 number is the identity; an extension
/// (`ext. 12`, `x12`, `;ext=12`, as libphonenumber recognises them) is kept apart, digits only,
/// and is never part of it (the same desk reached through another extension is one number for
/// matching).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    pub e164: String,
    pub extension: Option<String>,
}

/// Fewer digits than this is never a phone number: the shortest national numbers (Tristan da
/// Cunha, Niue, Tokelau) have 4; validation judges the rest.
const MIN_PHONE_DIGITS: usize = 4;

/// Parses a phone number to E.164 (see [`parse_phone`]) and drops its extension: for lookups
/// by number, where only the identity matters.
pub fn normalize_phone(raw: &str, cfg: &NormalizeConfig) -> Result<String, PhoneProblem> {
    parse_phone(raw, cfg.default_country, &cfg.blocked).map(|p| p.e164)
}

/// The regions the phone metadata has rules for, sorted (245 in libphonenumber 9.0.42; a unit
/// test checks this against the library). Kept here, not asked of the library, because asking
/// loads the whole metadata: `NormalizeConfig::from_lookup` runs before the runtime's first poll,
/// and the load belongs on the warm-up thread (shared/src/warm.rs).
const PHONE_REGIONS: [&str; 245] = [
    "AC", "AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
    "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS",
    "BT", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO",
    "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM", "DO", "DZ", "EC", "EE", "EG",
    "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR", "GA", "GB", "GD", "GE", "GF", "GG",
    "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GT", "GU", "GW", "GY", "HK", "HN", "HR", "HT",
    "HU", "ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE",
    "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR",
    "LS", "LT", "LU", "LV", "LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN",
    "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF",
    "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL",
    "PM", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC", "SD",
    "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY",
    "SZ", "TA", "TC", "TD", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW",
    "TZ", "UA", "UG", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI", "VN", "VU", "WF", "WS", "XK",
    "YE", "YT", "ZA", "ZM", "ZW",
];

/// Whether the phone metadata has rules for `region` (some ISO codes, e.g. AQ, have none).
fn known_region(region: Region) -> bool {
    PHONE_REGIONS
        .binary_search(&region.as_region_str().as_str())
        .is_ok()
}

/// The region a contact's national-form number is read in: the person's own `country` when it
/// names a region the phone metadata knows, else `DEFAULT_COUNTRY`.
pub fn phone_region(country: Option<&str>, cfg: &NormalizeConfig) -> Region {
    country
        .map(normalize_country)
        .and_then(|c| Region::from_str(&c).ok())
        .filter(|r| known_region(*r))
        .unwrap_or(cfg.default_country)
}

/// Reads a phone number in the notations people write (spaces, dots, dashes, slashes,
/// parentheses, `+`, `00`, `region`'s own international prefix such as `011` from the US, the
/// `(0)` trunk digit after the country code, a trailing extension) with libphonenumber's rules
/// (`rlibphonenumber`, a port of Google's C++ library that tracks its metadata).
///
/// The rule: a number written in international form, `+...` (also `(+44) ...`) or `00...`, is
/// parsed with no region at all, so only its own country's rules read it. `region` (the
/// person's country, else `DEFAULT_COUNTRY`) is given to the parser only for anything else: a
/// number in national form, read with that region's rules, or one dialled with that region's
/// own international prefix (`011 33 1 ...` from the US), which libphonenumber strips before
/// reading the rest with the dialled country's rules. `00` is rewritten to `+` whatever the
/// region, as before: it is the international prefix of most of the world, and no national
/// number starts with it (`000...` is left alone).
pub fn parse_phone(raw: &str, region: Region, blocked: &[String]) -> Result<Phone, PhoneProblem> {
    let trimmed = raw.trim();
    let digits: String = trimmed.chars().filter(|c| c.is_ascii_digit()).collect();
    if digits.len() < MIN_PHONE_DIGITS
        || JUNK_VALUES.contains(&trimmed.to_ascii_lowercase().as_str())
    {
        return Err(PhoneProblem::Junk);
    }
    // All one digit (0000000, 1111111) or a plain run 1234567...: placeholder values.
    let first = digits.as_bytes()[0];
    if digits.bytes().all(|b| b == first) || "12345678901234567890".starts_with(&digits) {
        return Err(PhoneProblem::Junk);
    }
    // What precedes the first digit or `+`: brackets and spaces (`(+44) 20 ...`, `(0044) ...`).
    let start = trimmed
        .find(|c: char| c.is_ascii_digit() || c == '+' || c == '\u{FF0B}')
        .unwrap_or(0);
    let body = &trimmed[start..];
    let parsed = if body.starts_with(['+', '\u{FF0B}']) {
        PHONE_NUMBER_UTIL.parse(body, None)
    } else if let Some(rest) = body.strip_prefix("00").filter(|r| !r.starts_with('0')) {
        PHONE_NUMBER_UTIL.parse(format!("+{rest}"), None)
    } else {
        PHONE_NUMBER_UTIL.parse(trimmed, Some(region))
    };
    let number = parsed.map_err(|_| PhoneProblem::Invalid)?;
    if !number.is_valid() {
        return Err(PhoneProblem::Invalid);
    }
    let e164 = number.format_as(PhoneNumberFormat::E164).to_string();
    if blocked.contains(&e164) {
        return Err(PhoneProblem::Junk);
    }
    let extension = number.extension.filter(|e| !e.is_empty());
    Ok(Phone { e164, extension })
}

/// Loads the phone metadata now (it is decoded lazily on first use, and each pattern compiled
/// on first use): call during cold start so the first request does not pay for it. Warms both
/// paths: an international number, and the default region's own example in national form.
pub fn warm_up(cfg: &NormalizeConfig) {
    let _ = normalize_phone("+1 415 555 0132", cfg);
    if let Ok(example) = PHONE_NUMBER_UTIL.get_example_number(cfg.default_country) {
        let _ = normalize_phone(&example.format_as(PhoneNumberFormat::National), cfg);
    }
    let _ = email_key("warm@example.com");
}

/// A few common country names to ISO alpha-2; anything else that is two letters is upper-cased,
/// the rest kept as given.
fn normalize_country(raw: &str) -> String {
    let t = raw.trim();
    let lower = t.to_lowercase();
    let mapped = match lower.as_str() {
        "united states" | "united states of america" | "usa" | "us" | "u.s." | "u.s.a." => "US",
        "united kingdom" | "uk" | "great britain" | "england" | "gb" => "GB",
        "germany" | "deutschland" | "de" => "DE",
        "france" | "fr" => "FR",
        "canada" | "ca" => "CA",
        "australia" | "au" => "AU",
        "spain" | "españa" | "es" => "ES",
        "italy" | "italia" | "it" => "IT",
        "netherlands" | "the netherlands" | "nederland" | "nl" => "NL",
        "india" | "in" => "IN",
        "brazil" | "brasil" | "br" => "BR",
        "mexico" | "méxico" | "mx" => "MX",
        "ireland" | "ie" => "IE",
        "sweden" | "se" => "SE",
        "switzerland" | "ch" => "CH",
        "austria" | "at" => "AT",
        "japan" | "jp" => "JP",
        _ => "",
    };
    if !mapped.is_empty() {
        mapped.to_string()
    } else if t.len() == 2 && t.chars().all(|c| c.is_ascii_alphabetic()) {
        t.to_ascii_uppercase()
    } else {
        t.to_string()
    }
}

fn tidy(v: Option<String>) -> Option<String> {
    v.map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| !s.is_empty() && !JUNK_VALUES.contains(&s.to_ascii_lowercase().as_str()))
}

/// Why a submission cannot become a lead. Each names its code and the field(s) to fix; the edge
/// answers them 422.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NormalizeError {
    #[error("email is not a valid address")]
    InvalidEmail,
    #[error("phone is not a valid number for its country")]
    InvalidPhone,
    #[error("a lead needs a valid email or phone; neither was given")]
    MissingContact,
}

impl NormalizeError {
    pub fn code(self) -> &'static str {
        match self {
            NormalizeError::InvalidEmail => "invalid_email",
            NormalizeError::InvalidPhone => "invalid_phone",
            NormalizeError::MissingContact => "missing_contact",
        }
    }

    pub fn field(self) -> &'static str {
        match self {
            NormalizeError::InvalidEmail => "email",
            NormalizeError::InvalidPhone => "phone",
            NormalizeError::MissingContact => "email,phone",
        }
    }
}

/// Turns a submission into what the store ingests. A lead needs a usable email or phone: without
/// either it is `missing_contact`, naming both fields; an email that is present but invalid is
/// `invalid_email`. A phone that does not parse is kept raw (and not used for matching) when an
/// email identifies the person, else `invalid_phone`.
pub fn normalize(
    sub: Submission,
    cfg: &NormalizeConfig,
) -> Result<NormalizedSubmission, NormalizeError> {
    let input = sub.contact;
    let email_raw = tidy(input.email.clone());
    let phone_raw = tidy(input.phone.clone());

    let email = match email_raw.as_deref() {
        None => None,
        Some(e) => match check_email(e, cfg) {
            Ok(pair) => Some(pair),
            Err(EmailProblem::Junk) => None,
            Err(EmailProblem::Invalid) => return Err(NormalizeError::InvalidEmail),
        },
    };
    // A number written in national form is read in the person's own country when the form
    // gave one, else in DEFAULT_COUNTRY (international forms need no region: `parse_phone`).
    let country = tidy(input.country).map(|c| normalize_country(&c));
    let phone = match phone_raw.as_deref() {
        None => None,
        Some(p) => match parse_phone(p, phone_region(country.as_deref(), cfg), &cfg.blocked) {
            Ok(phone) => Some(phone),
            Err(_) if email.is_some() => None,
            Err(PhoneProblem::Junk) => None,
            Err(PhoneProblem::Invalid) => return Err(NormalizeError::InvalidPhone),
        },
    };
    if email.is_none() && phone.is_none() {
        return Err(NormalizeError::MissingContact);
    }

    let mut first_name = tidy(input.first_name);
    let mut last_name = tidy(input.last_name);
    let mut full_name = tidy(input.full_name);
    match (&first_name, &last_name, &full_name) {
        (None, None, Some(full)) => {
            let mut parts = full.splitn(2, ' ');
            first_name = parts.next().map(str::to_string);
            last_name = parts.next().map(str::to_string);
        }
        (Some(f), l, None) => {
            full_name = Some(match l {
                Some(l) => format!("{f} {l}"),
                None => f.clone(),
            });
        }
        _ => {}
    }

    let contact = Contact {
        email: email.as_ref().map(|(e, _)| e.clone()),
        email_key: email.map(|(_, k)| k),
        phone_raw: if phone.is_none() { phone_raw } else { None },
        phone_ext: phone.as_ref().and_then(|p| p.extension.clone()),
        phone: phone.map(|p| p.e164),
        first_name,
        last_name,
        full_name,
        company: tidy(input.company),
        job_title: tidy(input.job_title),
        country,
    };
    let mut classification = classify(
        &sub.attribution,
        sub.channel_hint,
        sub.source_hint.as_deref(),
        &sub.provider,
    );
    // The sender's word on direction (an imported list) beats what the UTMs suggest.
    if let Some(direction) = sub.direction_hint {
        classification.direction = direction;
    }
    Ok(NormalizedSubmission {
        provider: sub.provider,
        delivery: sub.delivery,
        kind: sub.kind,
        occurred_at: sub.occurred_at,
        contact,
        consent: sub.consent,
        attribution: sub.attribution,
        classification,
        custom: sub.custom,
        is_test: sub.is_test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContactInput, DeliveryKey, TouchKind};
    use chrono::Utc;

    fn cfg() -> NormalizeConfig {
        NormalizeConfig::default()
    }

    #[test]
    fn email_keys_fold_case_and_space() {
        assert_eq!(
            email_key("  Ada.Lovelace@Example.COM ").as_deref(),
            Some("ada.lovelace@example.com")
        );
        // Non-gmail: dots and +tags are part of the mailbox.
        assert_eq!(
            email_key("a.b+news@example.com").as_deref(),
            Some("a.b+news@example.com")
        );
    }

    #[test]
    fn gmail_dots_and_tags_removed_in_key_only() {
        assert_eq!(
            email_key("Ada.Love.Lace+promo@GoogleMail.com").as_deref(),
            Some("adalovelace@gmail.com")
        );
        let (display, key) = check_email(" Ada.Lovelace+x@gmail.com ", &cfg()).unwrap();
        assert_eq!(display, "Ada.Lovelace+x@gmail.com");
        assert_eq!(key, "adalovelace@gmail.com");
    }

    #[test]
    fn invalid_and_junk_emails() {
        assert_eq!(
            check_email("not-an-email", &cfg()),
            Err(EmailProblem::Invalid)
        );
        assert_eq!(
            check_email("a@localhost", &cfg()),
            Err(EmailProblem::Invalid)
        );
        assert_eq!(check_email("null", &cfg()), Err(EmailProblem::Junk));
        assert_eq!(
            check_email("noreply@example.com", &cfg()),
            Err(EmailProblem::Junk)
        );
        let blocked = NormalizeConfig {
            blocked: vec!["@mailinator.com".into(), "qa@example.com".into()],
            ..cfg()
        };
        assert_eq!(
            check_email("x@Mailinator.com", &blocked),
            Err(EmailProblem::Junk)
        );
        assert_eq!(
            check_email("QA@example.com", &blocked),
            Err(EmailProblem::Junk)
        );
    }

    #[test]
    fn phones_in_many_formats_give_one_e164() {
        for raw in [
            "(415) 555-0132",
            "415.555.0132",
            "+1 415 555 0132",
            "001 415 555 0132",
        ] {
            assert_eq!(
                normalize_phone(raw, &cfg()).as_deref(),
                Ok("+14155550132"),
                "{raw}"
            );
        }
        let gb = NormalizeConfig {
            default_country: Region::GB,
            ..cfg()
        };
        assert_eq!(
            normalize_phone("020 7946 0018", &gb).as_deref(),
            Ok("+442079460018")
        );
    }

    /// The numbers of issue 14, as measured with the old parsing under DEFAULT_COUNTRY=US.
    #[test]
    fn international_numbers_ignore_the_default_region() {
        for (raw, want) in [
            ("+33 1 40 21 70 72", "+33140217072"),
            ("+55 11 98704 0829", "+5511987040829"),
            ("+44 (0)20 7946 0234", "+442079460234"),
            ("+61 2 9374 4000", "+61293744000"),
            ("+81 3 1234 5678", "+81312345678"),
            ("+49 30 12345678", "+493012345678"),
        ] {
            for default in [Region::US, Region::GB, Region::DE, Region::IN, Region::FR] {
                let cfg = NormalizeConfig {
                    default_country: default,
                    ..cfg()
                };
                assert_eq!(
                    normalize_phone(raw, &cfg).as_deref(),
                    Ok(want),
                    "{raw} {default}"
                );
            }
        }
    }

    #[test]
    fn notations_people_write() {
        let us = cfg();
        for raw in [
            "+33 1 40 21 70 72",
            "+33 (0)1 40 21 70 72",
            "+33 (0) 1 40 21 70 72",
            "(+33) 1 40 21 70 72",
            "0033 1 40 21 70 72",
            "(0033) 1 40 21 70 72",
            "011 33 1 40 21 70 72",
            "+33.1.40.21.70.72",
            "+33-1-40-21-70-72",
            "+33 1/40 21 70 72",
            "+33140217072",
            "\u{ff0b}33 1 40 21 70 72",
            "tel:+33-1-40-21-70-72",
        ] {
            assert_eq!(
                normalize_phone(raw, &us).as_deref(),
                Ok("+33140217072"),
                "{raw}"
            );
        }
        // `011` is the US's international prefix, not Germany's: there it is a national number.
        let de = NormalizeConfig {
            default_country: Region::DE,
            ..cfg()
        };
        assert_ne!(
            normalize_phone("011 33 1 40 21 70 72", &de).as_deref(),
            Ok("+33140217072")
        );
        assert_eq!(
            normalize_phone("0049 (0)30 12345678", &de).as_deref(),
            Ok("+493012345678")
        );
        assert_eq!(
            normalize_phone("030/12345678", &de).as_deref(),
            Ok("+493012345678")
        );
    }

    #[test]
    fn extensions_are_kept_apart_from_the_identity() {
        for (raw, ext) in [
            ("+1 415 555 0132 ext. 12", "12"),
            ("+1 415 555 0132 x12", "12"),
            ("(415) 555-0132 ext 204", "204"),
            ("415.555.0132 extension 7", "7"),
            ("tel:+1-415-555-0132;ext=99", "99"),
        ] {
            assert_eq!(
                parse_phone(raw, Region::US, &[]),
                Ok(Phone {
                    e164: "+14155550132".into(),
                    extension: Some(ext.into())
                }),
                "{raw}"
            );
        }
        assert_eq!(
            parse_phone("+1 415 555 0132", Region::US, &[]).map(|p| p.extension),
            Ok(None)
        );
        let n = normalize(
            submission(ContactInput {
                phone: Some("+44 20 7946 0234 ext. 5".into()),
                ..Default::default()
            }),
            &cfg(),
        )
        .unwrap();
        assert_eq!(n.contact.phone.as_deref(), Some("+442079460234"));
        assert_eq!(n.contact.phone_ext.as_deref(), Some("5"));
        assert_eq!(n.contact.phone_raw, None);
    }

    #[test]
    fn national_numbers_use_the_country_then_the_default() {
        // The person's country reads the national form, whatever DEFAULT_COUNTRY is.
        for (phone, country, want) in [
            ("01 40 21 70 72", "France", "+33140217072"),
            ("(11) 98704-0829", "BR", "+5511987040829"),
            ("020 7946 0234", "uk", "+442079460234"),
            ("030 12345678", "Deutschland", "+493012345678"),
        ] {
            let n = normalize(
                submission(ContactInput {
                    phone: Some(phone.into()),
                    country: Some(country.into()),
                    ..Default::default()
                }),
                &cfg(),
            )
            .unwrap();
            assert_eq!(n.contact.phone.as_deref(), Some(want), "{phone} {country}");
        }
        // No country, or one the phone metadata has no rules for (Antarctica): DEFAULT_COUNTRY.
        assert_eq!(phone_region(Some("AQ"), &cfg()), Region::US);
        assert_eq!(phone_region(Some("Atlantis"), &cfg()), Region::US);
        assert_eq!(phone_region(None, &cfg()), Region::US);
        assert_eq!(
            normalize_phone("415 555 0132", &cfg()).as_deref(),
            Ok("+14155550132")
        );
        let gb = NormalizeConfig {
            default_country: Region::GB,
            ..cfg()
        };
        assert_eq!(
            normalize_phone("020 7946 0234", &gb).as_deref(),
            Ok("+442079460234")
        );
    }

    #[test]
    fn the_region_list_is_the_librarys() {
        let mut regions: Vec<String> = PHONE_NUMBER_UTIL
            .get_supported_regions()
            .map(|r| r.to_string())
            .collect();
        regions.sort();
        assert_eq!(
            PHONE_REGIONS.to_vec(),
            regions,
            "update PHONE_REGIONS after a metadata update"
        );
    }

    /// Every region's example numbers (each kind the metadata has: fixed line, mobile, toll
    /// free...) read back to themselves from the national form in their region and from the
    /// international form anywhere: every region's patterns compile and match on the regex
    /// engine the phone crate is built with (`lite`, Cargo.toml).
    #[test]
    fn every_regions_example_numbers_round_trip() {
        use rlibphonenumber::PhoneNumberType as T;
        let (mut checked, mut short) = (0, 0);
        for code in PHONE_REGIONS {
            let region = Region::from_str(code).unwrap();
            for kind in [T::FixedLine, T::Mobile, T::TollFree, T::VoIP] {
                let Ok(example) =
                    PHONE_NUMBER_UTIL.get_example_number_for_type_and_region(region, kind)
                else {
                    continue;
                };
                let e164 = example.format_as(PhoneNumberFormat::E164).to_string();
                let national = example.format_as(PhoneNumberFormat::National).to_string();
                let international = example
                    .format_as(PhoneNumberFormat::International)
                    .to_string();
                let read = |raw: &str, region| parse_phone(raw, region, &[]).map(|p| p.e164);
                // Our own junk rule (fewer than MIN_PHONE_DIGITS digits: a few islands' short
                // numbers) refuses some before the library sees them; the library reads the rest.
                if read(&national, region) == Err(PhoneProblem::Junk) {
                    short += 1;
                    continue;
                }
                assert_eq!(
                    read(&national, region),
                    Ok(e164.clone()),
                    "{code} {kind:?} {national}"
                );
                assert_eq!(
                    read(&international, Region::US),
                    Ok(e164),
                    "{code} {kind:?}"
                );
                checked += 1;
            }
        }
        assert!(
            checked > 500 && short < 20,
            "{checked} example numbers, {short} short"
        );
    }

    #[test]
    fn default_country_must_have_phone_rules() {
        let from = |v: &str| {
            let v = v.to_string();
            NormalizeConfig::from_lookup(move |k| (k == "DEFAULT_COUNTRY").then(|| v.clone()))
        };
        assert_eq!(from("gb").unwrap().default_country, Region::GB);
        assert!(from("XX").is_err());
        assert!(from("AQ").is_err());
    }

    #[test]
    fn junk_phones_are_rejected() {
        assert_eq!(
            normalize_phone("0000000000", &cfg()),
            Err(PhoneProblem::Junk)
        );
        assert_eq!(
            normalize_phone("1234567890", &cfg()),
            Err(PhoneProblem::Junk)
        );
        assert_eq!(normalize_phone("12", &cfg()), Err(PhoneProblem::Junk));
        assert_eq!(
            normalize_phone("+1 999 555 0132", &cfg()),
            Err(PhoneProblem::Invalid)
        );
    }

    fn submission(contact: ContactInput) -> Submission {
        let mut s = Submission::new(
            "form",
            DeliveryKey::BodyHash("h".into()),
            TouchKind::FormSubmission,
            Utc::now(),
        );
        s.contact = contact;
        s
    }

    #[test]
    fn normalize_requires_a_contact() {
        let err = normalize(submission(ContactInput::default()), &cfg()).unwrap_err();
        let err = crate::edge::AppError::from(err);
        assert_eq!(err.status(), 422);
        assert_eq!(err.field(), Some("email,phone"));
        let err = normalize(
            submission(ContactInput {
                email: Some("nope".into()),
                ..Default::default()
            }),
            &cfg(),
        )
        .unwrap_err();
        assert_eq!(err.code(), "invalid_email");
    }

    #[test]
    fn bad_phone_kept_raw_when_email_identifies() {
        let n = normalize(
            submission(ContactInput {
                email: Some("a@example.com".into()),
                phone: Some("+1 999 555 0132".into()),
                full_name: Some("Ada  King Lovelace".into()),
                country: Some("United Kingdom".into()),
                ..Default::default()
            }),
            &cfg(),
        )
        .unwrap();
        assert_eq!(n.contact.phone, None);
        assert_eq!(n.contact.phone_raw.as_deref(), Some("+1 999 555 0132"));
        assert_eq!(n.contact.first_name.as_deref(), Some("Ada"));
        assert_eq!(n.contact.last_name.as_deref(), Some("King Lovelace"));
        assert_eq!(n.contact.country.as_deref(), Some("GB"));
    }

    #[test]
    fn national_numbers_are_read_in_the_persons_country() {
        let n = normalize(
            submission(ContactInput {
                phone: Some("020 7946 0018".into()),
                country: Some("United Kingdom".into()),
                ..Default::default()
            }),
            &cfg(),
        )
        .unwrap();
        assert_eq!(n.contact.phone.as_deref(), Some("+442079460018"));
    }
}

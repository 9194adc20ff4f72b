//! Property tests over the shared parsers and normalizers: random and mutated inputs never
//! panic and never escape their bounds; valid inputs round-trip. `PROPTEST_CASES` sets the
//! number of cases per property (default 128, so the whole suite stays fast in CI).

use chrono::{TimeZone, Utc};
use leadflow::fields::{apply_field, apply_url_params, normalize_field_name, MAX_CUSTOM_FIELDS};
use leadflow::limits::{
    label, lead_custom, LEAD_MAX_CUSTOM_KEYS, LEAD_MAX_VALUE_BYTES, MAX_FIELD_NAME_BYTES,
    MAX_LABEL_BYTES,
};
use leadflow::model::{ContactInput, DeliveryKey, Submission, TouchKind};
use leadflow::multipart::read_multipart_fields;
use leadflow::normalize::{check_email, email_key, normalize, NormalizeConfig};
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(128);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

fn submission() -> Submission {
    Submission::new(
        "form",
        DeliveryKey::BodyHash("h".into()),
        TouchKind::FormSubmission,
        Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
    )
}

/// Strings as forms send them: printable, unicode, control characters, junk words, huge.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,40}",
        "[a-zA-Z0-9 ._+@-]{0,60}",
        Just("null".to_string()),
        Just("  ".to_string()),
        "\\PC{0,3000}",
        "[\\x00-\\x1f]{0,10}",
    ]
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn normalize_never_panics_and_only_fails_with_422(
        email in text(), phone in text(), name in text(), country in text(),
        campaign in text(), source in text(),
    ) {
        let mut sub = submission();
        sub.contact = ContactInput {
            email: Some(email), phone: Some(phone), full_name: Some(name),
            country: Some(country), ..Default::default()
        };
        sub.attribution.utm_campaign = Some(campaign);
        sub.attribution.utm_source = Some(source);
        match normalize(sub, &NormalizeConfig::default()) {
            Ok(n) => {
                prop_assert!(n.contact.email_key.is_some() || n.contact.phone.is_some());
                prop_assert!(n.classification.campaign.len() <= MAX_LABEL_BYTES);
                prop_assert!(n.classification.source.len() <= MAX_LABEL_BYTES);
            }
            Err(e) => prop_assert_eq!(leadflow::edge::AppError::from(e).status(), 422),
        }
    }

    #[test]
    fn valid_emails_round_trip_to_a_stable_key(local in "[a-z0-9][a-z0-9._+-]{0,20}", domain in "[a-z]{1,12}\\.(com|io|co\\.uk)") {
        let email = format!("{local}@{domain}");
        if let Ok((shown, key)) = check_email(&email, &NormalizeConfig::default()) {
            prop_assert_eq!(shown, email.clone());
            prop_assert_eq!(email_key(&key), Some(key.clone()), "the key is its own key");
            let upper = email.to_uppercase();
            prop_assert_eq!(email_key(&upper), Some(key));
        }
    }

    #[test]
    fn field_names_are_bounded_and_idempotent(name in text()) {
        let n = normalize_field_name(&name);
        prop_assert!(n.len() <= MAX_FIELD_NAME_BYTES);
        prop_assert_eq!(normalize_field_name(&n), n.clone());
        prop_assert!(!n.starts_with('_') && !n.ends_with('_'));
    }

    #[test]
    fn apply_field_never_panics_and_keeps_bounds(fields in prop::collection::vec((text(), text()), 0..80)) {
        let mut sub = submission();
        for (k, v) in &fields {
            apply_field(&mut sub, k, v);
            apply_url_params(&mut sub, v);
        }
        prop_assert!(sub.custom.len() <= MAX_CUSTOM_FIELDS);
        prop_assert!(sub.custom.keys().all(|k| k.len() <= MAX_FIELD_NAME_BYTES));
        prop_assert!(sub.custom.values().all(|v| v.chars().count() <= 2_000));
    }

    #[test]
    fn labels_are_bounded_idempotent_and_deterministic(value in text()) {
        let l = label(&value);
        prop_assert!(l.len() <= MAX_LABEL_BYTES);
        prop_assert_eq!(label(&l), l.clone());
        prop_assert_eq!(label(&value), l);
    }

    #[test]
    fn the_lead_keeps_a_bounded_set_of_answers(
        sub in prop::collection::btree_map(text(), text(), 0..60),
        earlier in prop::collection::btree_map(text(), text(), 0..60),
        wins in any::<bool>(),
    ) {
        let merged = lead_custom(&sub, &earlier, wins);
        prop_assert!(merged.len() <= LEAD_MAX_CUSTOM_KEYS);
        prop_assert!(merged.iter().all(|(k, v)| k.len() <= MAX_FIELD_NAME_BYTES && v.len() <= LEAD_MAX_VALUE_BYTES));
        if wins {
            // Every answer of the submission that fits is kept.
            let kept = sub.keys().filter(|k| !k.is_empty() && k.len() <= MAX_FIELD_NAME_BYTES).take(LEAD_MAX_CUSTOM_KEYS);
            for k in kept {
                prop_assert!(merged.contains_key(k));
            }
        }
    }

    #[test]
    fn fingerprints_ignore_order_and_see_every_change(
        fields in prop::collection::vec(("[a-z]{1,8}", ".{0,12}"), 1..10),
        scope in "[a-z]{0,6}",
    ) {
        let fp = DeliveryKey::fields_fingerprint("form", &scope, &fields);
        let mut reversed = fields.clone();
        reversed.reverse();
        prop_assert_eq!(DeliveryKey::fields_fingerprint("form", &scope, &reversed), fp.clone());
        let mut changed = fields.clone();
        changed[0].1.push('!');
        prop_assert_ne!(DeliveryKey::fields_fingerprint("form", &scope, &changed), fp.clone());
        prop_assert_ne!(DeliveryKey::fields_fingerprint("form", &format!("{scope}x"), &fields), fp);
    }

    #[test]
    fn multipart_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..2_000), boundary in "[a-zA-Z0-9'()+_,./:=?-]{0,70}") {
        let ct = format!("multipart/form-data; boundary={boundary}");
        let _ = block_on(read_multipart_fields(&ct, &body));
    }

    #[test]
    fn multipart_fields_round_trip(
        // (A leading byte-order mark is dropped by the UTF-8 decoding, as browsers expect.)
        fields in prop::collection::vec(("[a-zA-Z][a-zA-Z0-9_-]{0,15}", "[^\r\n\u{feff}]{0,40}"), 0..12),
        boundary in "[a-zA-Z0-9]{10,40}",
    ) {
        let mut body = String::new();
        for (k, v) in &fields {
            body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let ct = format!("multipart/form-data; boundary={boundary}");
        let read = block_on(read_multipart_fields(&ct, body.as_bytes())).unwrap();
        prop_assert_eq!(read, fields);
    }
}

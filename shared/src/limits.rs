//! Bounds on untrusted strings. Anything a sender controls that ends up in a DynamoDB key, a
//! metric dimension or the lead item goes through one of these, so no input can make a key
//! exceed DynamoDB's limits (sort keys: 1,024 bytes), mint new CloudWatch metrics, or grow an
//! item towards 400 KB (docs/data-model.md, "Bounds on untrusted values").
//!
//! - Grouping labels (source, campaign: rollup sort keys, spend keys, report groups): [`label`].
//! - Metric dimension values: only values from a fixed list, anything else [`OTHER`].
//! - Field names (custom answer keys): at most [`MAX_FIELD_NAME_BYTES`].
//! - The lead item's custom answers: [`lead_custom`], at most [`LEAD_MAX_CUSTOM_KEYS`] answers
//!   of at most [`LEAD_MAX_VALUE_BYTES`] each. Touchpoints keep every answer as received
//!   (each submission is capped by `fields::MAX_CUSTOM_FIELDS` and the body size).

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

/// Longest grouping label, in bytes: `source#channel#campaign` stays far under DynamoDB's
/// 1,024-byte sort key limit (100 + 1 + 14 + 1 + 100).
pub const MAX_LABEL_BYTES: usize = 100;
/// The value every unknown metric dimension value becomes.
pub const OTHER: &str = "(other)";
/// Longest custom answer key (a normalized field name), in bytes.
pub const MAX_FIELD_NAME_BYTES: usize = 64;
/// Most custom answers the lead item keeps (the touchpoints keep all of theirs).
pub const LEAD_MAX_CUSTOM_KEYS: usize = 50;
/// Longest custom answer the lead item keeps, in bytes; longer answers are cut there (whole
/// characters) and stay complete on their touchpoint. 50 x (64 + 1,000) bytes bounds the lead's
/// custom answers at about 53 KB, whatever a person sends over time.
pub const LEAD_MAX_VALUE_BYTES: usize = 1_000;

/// Hex characters of the hash that stands for the cut-off tail of a long label.
const LABEL_HASH_CHARS: usize = 8;

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// A grouping label as stored in keys and reports: control characters dropped, whitespace runs
/// folded to one space, trimmed; at most [`MAX_LABEL_BYTES`]. A longer value keeps its first
/// bytes and ends in `~` and 8 hex characters of the SHA-256 of the whole folded value, so two
/// long values that differ only at the end stay two groups and the same value always gives the
/// same label. Idempotent: `label(label(x)) == label(x)`. Empty input gives an empty label.
pub fn label(value: &str) -> String {
    let folded = value
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    if folded.len() <= MAX_LABEL_BYTES {
        return folded;
    }
    let hash = hex::encode(Sha256::digest(folded.as_bytes()));
    let keep = truncate_bytes(&folded, MAX_LABEL_BYTES - 1 - LABEL_HASH_CHARS).trim_end();
    format!("{keep}~{}", &hash[..LABEL_HASH_CHARS])
}

/// `value` when it is one of `known`, else [`OTHER`]: a metric dimension can only take values
/// from a list fixed in the code, never one a request made up.
pub fn dimension(value: &str, known: &[&'static str]) -> &'static str {
    known
        .iter()
        .find(|k| **k == value)
        .copied()
        .unwrap_or(OTHER)
}

/// The custom answers the lead item keeps after a submission: at most
/// [`LEAD_MAX_CUSTOM_KEYS`] answers, keys at most [`MAX_FIELD_NAME_BYTES`], values at most
/// [`LEAD_MAX_VALUE_BYTES`].
///
/// Policy (docs/data-model.md, "Lead item bounds"): the submission's own answers come first
/// (when `submission_wins`, they also replace the lead's earlier value of the same question;
/// a late, older submission only fills questions the lead has no answer for), then the lead's
/// earlier answers in key order while there is room. An answer left out of the lead is still
/// on the touchpoint that brought it.
pub fn lead_custom(
    submission: &BTreeMap<String, String>,
    earlier: &BTreeMap<String, String>,
    submission_wins: bool,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let bounded = |k: &str, v: &str| {
        (
            truncate_bytes(k, MAX_FIELD_NAME_BYTES).to_string(),
            truncate_bytes(v, LEAD_MAX_VALUE_BYTES).to_string(),
        )
    };
    let (first, second) = if submission_wins {
        (submission, earlier)
    } else {
        (earlier, submission)
    };
    for (k, v) in first.iter().chain(second.iter()) {
        if out.len() >= LEAD_MAX_CUSTOM_KEYS {
            break;
        }
        let (k, v) = bounded(k, v);
        if k.is_empty() || out.contains_key(&k) {
            continue;
        }
        out.insert(k, v);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_labels_are_only_tidied() {
        assert_eq!(label("  spring   launch\t2026 "), "spring launch 2026");
        assert_eq!(label("a\u{0}b\nc"), "a b c");
        assert_eq!(label(""), "");
        assert_eq!(label("   "), "");
    }

    #[test]
    fn long_labels_are_cut_with_a_hash_of_the_whole() {
        let a = "x".repeat(2_000);
        let mut b = a.clone();
        b.push('y');
        let (la, lb) = (label(&a), label(&b));
        assert!(la.len() <= MAX_LABEL_BYTES, "{}", la.len());
        assert_ne!(la, lb, "values that differ only at the end stay apart");
        assert_eq!(label(&la), la, "idempotent");
        assert_eq!(label(&a), la, "deterministic");
        // Multi-byte characters are never split.
        let wide = "é".repeat(500);
        let l = label(&wide);
        assert!(l.len() <= MAX_LABEL_BYTES);
        assert!(l.is_char_boundary(l.len()));
    }

    #[test]
    fn dimensions_take_only_known_values() {
        let known = ["form", "typeform"];
        assert_eq!(dimension("form", &known), "form");
        assert_eq!(dimension("x9f8e7", &known), OTHER);
        assert_eq!(dimension("", &known), OTHER);
    }

    #[test]
    fn lead_custom_is_bounded_and_the_submission_wins() {
        let earlier: BTreeMap<String, String> = (0..LEAD_MAX_CUSTOM_KEYS)
            .map(|i| (format!("old_{i:02}"), "o".repeat(2_000)))
            .collect();
        let sub: BTreeMap<String, String> = (0..40)
            .map(|i| (format!("new_{i:02}"), "n".repeat(2_000)))
            .chain([("old_00".to_string(), "changed".to_string())])
            .collect();
        let merged = lead_custom(&sub, &earlier, true);
        assert_eq!(merged.len(), LEAD_MAX_CUSTOM_KEYS);
        assert!(merged.values().all(|v| v.len() <= LEAD_MAX_VALUE_BYTES));
        assert_eq!(merged["old_00"], "changed");
        assert!((0..40).all(|i| merged.contains_key(&format!("new_{i:02}"))));
        // A late, older submission only fills gaps.
        let filled = lead_custom(&sub, &earlier, false);
        assert_eq!(filled["old_00"], truncate_bytes(&"o".repeat(2_000), 1_000));
        assert_eq!(filled.len(), LEAD_MAX_CUSTOM_KEYS);
        // Keys are capped too.
        let long_key = BTreeMap::from([("k".repeat(300), "v".to_string())]);
        let m = lead_custom(&long_key, &BTreeMap::new(), true);
        assert!(m.keys().all(|k| k.len() <= MAX_FIELD_NAME_BYTES));
    }
}

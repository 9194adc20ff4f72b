//! Property tests of LinkedIn's scheme, where a validation answer and a POST signature share a
//! key: no challenge the endpoint answers can ever be replayed as a POST signature.
//! `PROPTEST_CASES` sets the cases per property (default 128).

use std::collections::BTreeMap;

use leadflow::signature::hmac_sha256;
use leadflow_providers::linkedin::{linkedin_challenge_response, verify_linkedin};
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

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_accepted_linkedin_challenge_signs_a_post(code in "\\PC{0,80}", body in "\\PC{0,200}") {
        if let Some(answer) = linkedin_challenge_response("li-secret", &code) {
            for header in [answer.clone(), format!("hmacsha256={answer}")] {
                prop_assert!(verify_linkedin("li-secret", body.as_bytes(), Some(&header)).is_err());
            }
        }
        // The attack string itself is never accepted as a challenge.
        let attack = format!("hmacsha256={body}");
        prop_assert!(linkedin_challenge_response("li-secret", &attack).is_none());
        // And a genuine signature still verifies a JSON body.
        let json = format!("{{\"x\":{}}}", serde_json::to_string(&body).unwrap());
        let sig = hex::encode(hmac_sha256(b"li-secret", &[b"hmacsha256=", json.as_bytes()]));
        prop_assert!(verify_linkedin("li-secret", json.as_bytes(), Some(&sig)).is_ok());
    }
}

#[test]
fn uuid_challenges_are_answered() {
    let mut seen = BTreeMap::new();
    for code in [
        "890e4f5a-4b2c-4a2e-9c3a-7e6f1c0d9b8a",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let a = linkedin_challenge_response("li-secret", code).unwrap();
        seen.insert(code, a);
    }
    assert_eq!(seen.len(), 2);
}

//! GDPR erasure end to end on the local DynamoDB: a person who came through a web form and
//! Typeform, was referred and referred someone, wrote a review, had a sales event with a reason
//! and a quarantined delivery is erased; then every attribute of every item in the table is
//! searched for anything of theirs.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine;
use integration_tests::{fresh_store, lambda_event, local_env, Answer, EventBuilder};
use leadflow::model::{IngestStatus, ReviewPlatform};
use leadflow::signature::hmac_sha256;
use leadflow::store::Store;
use leadflow_providers::{replay, ReplayResult};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const KEY: &str = "erasure-test-key";
const PEPPER: &str = "a-random-privacy-pepper-for-tests";

/// The person of the Typeform sample (events/typeform-response.json).
const EMAIL: &str = "laura.diaz@example.com";
const PHONE: &str = "+34911234567";
const REVIEW_TITLE: &str = "Onboarding took Laura three weeks";
const REVIEW_TEXT: &str = "The importer choked on our Seville depot codes";
const REVIEW_NAME: &str = "Laura D. from Sevilla";
const REASON: &str = "Chose the Zaragoza vendor after the pilot";
const MESSAGE: &str = "Please call me about the Malaga warehouse";
const NOTE_BY_HER: &str = "My cousin runs the Cordoba branch";
const UTM_TERM: &str = "laura diaz logistics tracking";
const IP: &str = "203.0.113.7";

fn vars() -> HashMap<String, String> {
    let mut v = local_env();
    v.insert("LEAD_API_KEYS".into(), format!("{KEY}:read+write+erase"));
    v.insert("REFERRAL_API_KEYS".into(), KEY.into());
    v.insert("CONSENT_IP_PEPPER".into(), PEPPER.into());
    v.insert("PRIVACY_PEPPER".into(), PEPPER.into());
    v.insert("DEFAULT_COUNTRY".into(), "ES".into());
    v.insert("ERASURE_ITEMS_PER_CALL".into(), "3000".into());
    v
}

struct Functions {
    store: Store,
    webhook: form_webhook::AppState,
    api: lead_api::ApiState,
    referrals: referral_review::AppState,
}

impl Functions {
    async fn new() -> Functions {
        let store = fresh_store().await;
        let v = vars();
        let get = |k: &str| v.get(k).cloned();
        Functions {
            webhook: form_webhook::AppState::from_lookup(store.clone(), get).unwrap(),
            api: lead_api::ApiState::from_lookup(store.clone(), get).unwrap(),
            referrals: referral_review::AppState::from_lookup(store.clone(), get).unwrap(),
            store,
        }
    }

    async fn webhook(&self, ev: EventBuilder) -> Answer {
        form_webhook::handler(&self.webhook, lambda_event(ev.build()))
            .await
            .unwrap()
            .into()
    }

    async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let mut ev = EventBuilder::new(method, path).header("x-api-key", KEY);
        if let Some(b) = body {
            ev = ev.json(&b);
        }
        let mut event = ev.build();
        event.path_parameters.clear();
        lead_api::handler(&self.api, lambda_event(event))
            .await
            .unwrap()
            .into()
    }

    async fn referral_review(&self, path: &str, body: Value) -> Answer {
        let ev = EventBuilder::new("POST", path)
            .header("x-api-key", KEY)
            .json(&body);
        referral_review::handler(&self.referrals, lambda_event(ev.build()))
            .await
            .unwrap()
            .into()
    }
}

/// The Typeform sample, signed with the local test secret; `edit` changes the body first.
fn typeform(edit: impl Fn(String) -> String) -> (EventBuilder, Vec<u8>) {
    let path = format!(
        "{}/../events/typeform-response.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let ev: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let body = edit(ev["body"].as_str().unwrap().to_string());
    let sig = hmac_sha256(b"test-typeform-secret", &[body.as_bytes()]);
    let mut ev = EventBuilder::from_value(ev);
    ev = ev.text_body(&body).header(
        "typeform-signature",
        &format!(
            "sha256={}",
            base64::engine::general_purpose::STANDARD.encode(sig)
        ),
    );
    (ev, body.into_bytes())
}

fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Every string an attribute holds, nested maps and lists included (binary as lossy UTF-8).
fn strings(v: &AttributeValue, out: &mut Vec<String>) {
    match v {
        AttributeValue::S(s) | AttributeValue::N(s) => out.push(s.clone()),
        AttributeValue::B(b) => out.push(String::from_utf8_lossy(b.as_ref()).into_owned()),
        AttributeValue::Ss(v) | AttributeValue::Ns(v) => out.extend(v.iter().cloned()),
        AttributeValue::Bs(v) => out.extend(
            v.iter()
                .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned()),
        ),
        AttributeValue::L(l) => l.iter().for_each(|x| strings(x, out)),
        AttributeValue::M(m) => m.iter().for_each(|(k, x)| {
            out.push(k.clone());
            strings(x, out)
        }),
        _ => {}
    }
}

/// `(item pk/sk, attribute, needle)` for every needle found anywhere in the table.
async fn findings(store: &Store, needles: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for item in store.scan_table().await.unwrap() {
        let at = format!(
            "{} / {}",
            item.get("pk").and_then(|v| v.as_s().ok()).unwrap(),
            item.get("sk").and_then(|v| v.as_s().ok()).unwrap()
        );
        for (name, value) in &item {
            let mut texts = vec![name.clone()];
            strings(value, &mut texts);
            for t in texts.iter().map(|t| t.to_lowercase()) {
                for n in needles {
                    if t.contains(&n.to_lowercase()) {
                        found.push(format!("{at}: {name} has {n:?}"));
                    }
                }
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[tokio::test]
async fn an_erased_person_leaves_nothing_in_the_table_and_stays_erased() {
    let f = Functions::new().await;

    // A web form with free text, a search term, consent (IP kept as a keyed hash).
    let form = f
        .webhook(
            EventBuilder::new("POST", "/webhooks/form")
                .query("form=demo")
                .header("accept", "application/json")
                .header(
                    "referer",
                    &format!(
                        "https://acme.example/demo?utm_source=google&utm_medium=cpc&utm_term={}&gclid=abc",
                        UTM_TERM.replace(' ', "+")
                    ),
                )
                .json(&json!({
                    "email": EMAIL, "phone": PHONE, "first_name": "Laura", "last_name": "Diaz",
                    "company": "Diaz Logistics", "message": MESSAGE, "consent": "yes",
                })),
        )
        .await;
    assert_eq!(form.status, 201, "{}", form.text);
    let lead = form.json["lead_id"].as_str().unwrap().to_string();
    // The same person through Typeform (a merge: the platform's token is a delivery key).
    let (ev, good_body) = typeform(|b| b);
    let t = f.webhook(ev).await;
    assert_eq!(t.status, 200, "{}", t.text);
    assert_eq!(t.json["results"][0]["lead_id"], lead.as_str(), "{}", t.text);

    // An authentic Typeform delivery the parser cannot read yet: quarantined with her data.
    let (ev, _) = typeform(|b| b.replace("\"type\":\"text\"", "\"type\":\"hologram\""));
    let q = f.webhook(ev).await;
    assert_eq!(q.json["status"], "quarantined", "{}", q.text);
    // And one the parser reads (as after a fix), held for replay.
    f.store
        .quarantine(
            "typeform",
            "test: parser fixed since",
            &good_body,
            Some("application/json"),
            "",
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let held = f.store.list_quarantine(10).await.unwrap();
    assert_eq!(held.len(), 2);

    // Referred by someone (referee), then referring someone herself (referrer).
    let referrer = f
        .referral_review(
            "/referrals",
            json!({"referrer": {"email": "referrer@example.com"}, "referee": {"email": "x@example.com"}}),
        )
        .await;
    assert_eq!(
        referrer.status, 422,
        "no such referrer yet: {}",
        referrer.text
    );
    let other = f
        .webhook(
            EventBuilder::new("POST", "/webhooks/form")
                .query("form=demo")
                .header("accept", "application/json")
                .json(&json!({"email": "referrer@example.com", "first_name": "Rita"})),
        )
        .await;
    assert_eq!(other.status, 201, "{}", other.text);
    let rita = other.json["lead_id"].as_str().unwrap().to_string();
    let as_referee = f
        .referral_review(
            "/referrals",
            json!({
                "referrer": {"lead_id": rita},
                "referee": {"email": EMAIL, "name": "Laura Diaz", "phone": PHONE},
                "program": "spring", "note": "Laura asked about the Malaga warehouse",
            }),
        )
        .await;
    assert_eq!(as_referee.json["status"], "recorded", "{}", as_referee.text);
    let as_referrer = f
        .referral_review(
            "/referrals",
            json!({
                "referrer": {"email": EMAIL},
                "referee": {"email": "friend@example.org", "name": "Fran Ruiz"},
                "program": "spring", "note": NOTE_BY_HER, "consent": true,
            }),
        )
        .await;
    assert_eq!(as_referrer.status, 201, "{}", as_referrer.text);
    let friend = as_referrer.json["lead_id"].as_str().unwrap().to_string();

    // A review she wrote, linked to her by email.
    let review = f
        .referral_review(
            "/reviews",
            json!({
                "platform": "google", "external_id": "g-7741", "rating": 2,
                "title": REVIEW_TITLE, "text": REVIEW_TEXT, "name": REVIEW_NAME,
                "email": EMAIL, "published_at": "2026-05-01T10:00:00Z",
            }),
        )
        .await;
    assert_eq!(review.status, 201, "{}", review.text);
    assert_eq!(review.json["lead_id"], lead.as_str(), "{}", review.text);

    // A sales event with a free-text reason.
    let lost = f
        .api(
            "POST",
            &format!("/leads/{lead}/events"),
            Some(json!({"event_id": "crm-1", "type": "lost", "reason": REASON})),
        )
        .await;
    assert!(lost.status == 200 || lost.status == 201, "{}", lost.text);

    let agg_before = f
        .store
        .review_aggregate(ReviewPlatform::Google)
        .await
        .unwrap();
    let rita_before = f.store.raw_lead_item(&rita).await.unwrap().unwrap();

    // Her data is there before (the search finds what it looks for).
    let needles: Vec<String> = vec![
        EMAIL.into(),
        PHONE.into(),
        "911234567".into(),
        "Laura".into(),
        "Diaz".into(),
        REVIEW_TITLE.into(),
        REVIEW_TEXT.into(),
        REVIEW_NAME.into(),
        REASON.into(),
        MESSAGE.into(),
        NOTE_BY_HER.into(),
        "Malaga".into(),
        UTM_TERM.into(),
        UTM_TERM.replace(' ', "+"),
        IP.into(),
        // Hashes anyone can recompute: of the address, the number, the IP, and the old
        // referral key (program + address).
        sha256_hex(EMAIL),
        sha256_hex(PHONE),
        sha256_hex(IP),
        sha256_hex(&format!("spring\u{0}email:{EMAIL}")),
    ];
    let before = findings(&f.store, &needles).await;
    for n in [EMAIL, REVIEW_TEXT, REASON, MESSAGE, NOTE_BY_HER, UTM_TERM] {
        assert!(
            before.iter().any(|x| x.ends_with(&format!("{n:?}"))),
            "{n} is stored before the erasure: {before:#?}"
        );
    }

    let erased = f.api("DELETE", &format!("/leads/{lead}"), None).await;
    assert!(
        erased.status == 200 || erased.status == 202,
        "{}",
        erased.text
    );

    let after = findings(&f.store, &needles).await;
    assert!(after.is_empty(), "left after erasure: {after:#?}");

    // Aggregates stay exact: the review still counts, the referrer keeps her credit.
    let agg_after = f
        .store
        .review_aggregate(ReviewPlatform::Google)
        .await
        .unwrap();
    assert_eq!(agg_after, agg_before);
    let rita_after = f.store.raw_lead_item(&rita).await.unwrap().unwrap();
    assert_eq!(
        rita_after.get("referral_count"),
        rita_before.get("referral_count")
    );
    // The friend she referred stays a lead (not erased), without her note.
    assert_eq!(
        f.api("GET", &format!("/leads/{friend}"), None).await.status,
        200
    );

    // Nothing of hers is left to replay.
    assert!(f.store.list_quarantine(10).await.unwrap().is_empty());
    assert_eq!(
        f.api("GET", &format!("/leads/{lead}"), None).await.status,
        404
    );

    // She stays erased: a replay of a copy of her quarantined delivery, the platform's
    // re-delivery, another referral of her and a form without her consent store nothing.
    let parsed = held.iter().find(|q| q.reason.starts_with("test:")).unwrap();
    match replay(f.webhook.intake(), parsed).await.unwrap() {
        ReplayResult::Stored(o) => assert_eq!(o[0].status, IngestStatus::Suppressed),
        other => panic!("{other:?}"),
    }
    let (ev, _) = typeform(|b| b);
    let again = f.webhook(ev).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(
        again.json["results"][0]["status"], "suppressed",
        "{}",
        again.text
    );
    let referred = f
        .referral_review(
            "/referrals",
            json!({"referrer": {"lead_id": rita}, "referee": {"email": EMAIL}, "program": "autumn"}),
        )
        .await;
    assert_eq!(referred.json["status"], "suppressed", "{}", referred.text);
    let no_consent = f
        .webhook(
            EventBuilder::new("POST", "/webhooks/form")
                .query("form=demo")
                .header("accept", "application/json")
                .json(&json!({"email": EMAIL, "message": MESSAGE})),
        )
        .await;
    assert_eq!(
        (no_consent.status, no_consent.json["status"].as_str()),
        (200, Some("suppressed")),
        "{}",
        no_consent.text
    );
    let still = findings(&f.store, &needles).await;
    assert!(still.is_empty(), "stored after erasure: {still:#?}");
    assert_eq!(
        f.store.scan_leads().await.unwrap().len(),
        3,
        "her, Rita, Fran"
    );

    // Her own fresh submission with consent brings her back as a new lead, and lifts the
    // suppression of the address and number it gives: the platform's next delivery (same
    // address and number) merges into it.
    let back = f
        .webhook(
            EventBuilder::new("POST", "/webhooks/form")
                .query("form=newsletter")
                .header("accept", "application/json")
                .json(&json!({"email": EMAIL, "phone": PHONE, "consent": "yes"})),
        )
        .await;
    assert_eq!(back.status, 201, "{}", back.text);
    assert_ne!(back.json["lead_id"], lead.as_str());
    let (ev, _) = typeform(|b| {
        b.replace(
            "a3a12ec67a1365927098a606107fac15",
            "a3a12ec67a1365927098a606107fac16",
        )
    });
    let merged = f.webhook(ev).await;
    assert_eq!(
        merged.json["results"][0]["status"], "merged",
        "{}",
        merged.text
    );
}

/// Suppression is checked inside the ingest transaction: with the pepper set, a new person is
/// still 1 round trip, a returning one 2, a retry 1, and a suppressed person 1.
#[tokio::test]
async fn suppression_costs_no_extra_round_trip() {
    let f = Functions::new().await;
    let store = &f.webhook.store;
    let cfg = leadflow::normalize::NormalizeConfig::default();
    let sub = |id: &str, email: &str| {
        let mut s = leadflow::model::Submission::new(
            "typeform",
            leadflow::model::DeliveryKey::Platform(id.into()),
            leadflow::model::TouchKind::FormSubmission,
            chrono::Utc::now(),
        );
        s.contact.email = Some(email.into());
        s.contact.phone = Some(PHONE.into());
        leadflow::normalize::normalize(s, &cfg).unwrap()
    };
    let trips = |before: u64| store.round_trips() - before;
    let b = store.round_trips();
    let new = store
        .ingest(&sub("d1", EMAIL), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!((new.status, trips(b)), (IngestStatus::Created, 1));
    let b = store.round_trips();
    let back = store
        .ingest(&sub("d2", EMAIL), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!((back.status, trips(b)), (IngestStatus::Merged, 2));
    let b = store.round_trips();
    let dup = store
        .ingest(&sub("d2", EMAIL), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!((dup.status, trips(b)), (IngestStatus::Duplicate, 1));
    assert!(store
        .erase_lead(&new.lead_id, chrono::Utc::now())
        .await
        .unwrap()
        .is_some());
    let b = store.round_trips();
    let gone = store
        .ingest(&sub("d3", EMAIL), chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!((gone.status, trips(b)), (IngestStatus::Suppressed, 1));
}

/// An erasure racing a merge that claims a new number: whatever the interleaving, no identity
/// marker is left naming an erased lead, and the erased lead keeps no contact data. Run many
/// times on a multi-threaded runtime so both orders and the overlap happen.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erasure_racing_an_ingest_leaves_no_marker_on_an_erased_lead() {
    let f = Functions::new().await;
    let store = f.webhook.store.clone();
    let cfg = leadflow::normalize::NormalizeConfig::default();
    let sub = |id: String, email: &str, phone: Option<String>| {
        let mut s = leadflow::model::Submission::new(
            "typeform",
            leadflow::model::DeliveryKey::Platform(id),
            leadflow::model::TouchKind::FormSubmission,
            chrono::Utc::now(),
        );
        s.contact.email = Some(email.into());
        s.contact.phone = phone;
        leadflow::normalize::normalize(s, &cfg).unwrap()
    };
    let mut merged_first = 0;
    for round in 0..20 {
        let email = format!("race{round}@example.com");
        let first = sub(format!("a{round}"), &email, None);
        let lead = store
            .ingest(&first, chrono::Utc::now())
            .await
            .unwrap()
            .lead_id;
        let second = sub(
            format!("b{round}"),
            &email,
            Some(format!("+3491123{round:04}")),
        );
        let (s1, s2) = (store.clone(), store.clone());
        let l = lead.clone();
        let erase = tokio::spawn(async move { s1.erase_lead(&l, chrono::Utc::now()).await });
        let ingest = tokio::spawn(async move { s2.ingest(&second, chrono::Utc::now()).await });
        assert!(erase.await.unwrap().unwrap().is_some());
        let outcome = ingest.await.unwrap().unwrap();
        if outcome.lead_id == lead {
            merged_first += 1;
        } else {
            // After the erasure the person is suppressed (the pepper is set).
            assert_eq!(outcome.status, IngestStatus::Suppressed, "round {round}");
        }
        let items = store.scan_table().await.unwrap();
        let s = |i: &leadflow::store::Item, k: &str| {
            i.get(k)
                .and_then(|v| v.as_s().ok())
                .cloned()
                .unwrap_or_default()
        };
        let erased: Vec<String> = items
            .iter()
            .filter(|i| s(i, "sk") == "#LEAD" && i.contains_key("erased"))
            .map(|i| s(i, "lead_id"))
            .collect();
        assert!(erased.contains(&lead));
        for i in &items {
            if s(i, "sk") == "#ID" {
                assert!(
                    !erased.contains(&s(i, "lead_id")),
                    "round {round}: marker {} names erased lead",
                    s(i, "pk")
                );
            }
        }
        let raw = store.raw_lead_item(&lead).await.unwrap().unwrap();
        for attr in ["email", "phone", "identity_keys"] {
            assert!(!raw.contains_key(attr), "round {round}: {attr} left");
        }
    }
    println!("{merged_first} of 20 merges landed before the erasure");
}

/// A person with 10,000 touchpoints is erased across calls (3,000 items per call here), with
/// a client retry overlapping a call in the middle: every touchpoint is anonymized and counted
/// exactly once.
#[tokio::test]
async fn ten_thousand_touchpoints_are_erased_across_calls_with_a_retry_in_the_middle() {
    let f = Functions::new().await;
    let form = f
        .webhook(
            EventBuilder::new("POST", "/webhooks/form")
                .query("form=demo&utm_term=laura+diaz")
                .header("accept", "application/json")
                .json(&json!({"email": EMAIL, "message": MESSAGE, "consent": "yes"})),
        )
        .await;
    assert_eq!(form.status, 201, "{}", form.text);
    let lead = form.json["lead_id"].as_str().unwrap().to_string();
    let touch = f
        .store
        .lead_partition(&lead)
        .await
        .unwrap()
        .into_iter()
        .find(|i| i["sk"].as_s().unwrap().starts_with("TP#"))
        .unwrap();
    let copies = vec![lead.clone(); 9_999];
    f.store
        .put_lead_copies(&[touch], &copies, |i, item| {
            item.insert(
                "sk".into(),
                AttributeValue::S(format!("TP#2026-01-01T00:00:00.000Z#{i:05}")),
            );
            item.insert("touch_id".into(), AttributeValue::S(format!("{i:05}")));
            item.remove("delivery");
        })
        .await
        .unwrap();

    let first = f.api("DELETE", &format!("/leads/{lead}"), None).await;
    assert_eq!(first.status, 202, "{}", first.text);
    assert_eq!(first.json["status"], "in_progress");
    // Unfindable at once, though the history is still being processed.
    assert_eq!(
        f.api("GET", &format!("/leads/{lead}"), None).await.status,
        404
    );
    let poll = f.api("GET", &format!("/leads/{lead}/erasure"), None).await;
    assert_eq!(
        (poll.status, &poll.json["status"]),
        (202, &json!("in_progress"))
    );

    // A retry while the call is still running: both continue from the same checkpoint.
    let path = format!("/leads/{lead}");
    let (a, b) = tokio::join!(f.api("DELETE", &path, None), f.api("DELETE", &path, None));
    assert!(a.status == 202 || a.status == 200, "{}", a.text);
    assert!(b.status == 202 || b.status == 200, "{}", b.text);
    let mut calls = 3;
    let last = loop {
        let r = f.api("DELETE", &format!("/leads/{lead}"), None).await;
        calls += 1;
        if r.status == 200 {
            break r;
        }
        assert_eq!(r.status, 202, "{}", r.text);
        assert!(calls < 20, "no progress: {}", r.text);
    };
    assert_eq!(last.json["status"], "erased");
    let counts = &last.json["receipt"]["counts"];
    assert_eq!(counts["touchpoints"], 10_000, "{counts}");
    assert_eq!(counts["lead"], 1, "{counts}");
    assert!(last.json["receipt"]["finished_at"].is_string());
    let receipt = f.api("GET", &format!("/leads/{lead}/erasure"), None).await;
    assert_eq!(receipt.status, 200);
    assert_eq!(receipt.json["receipt"], last.json["receipt"]);
    // Erasing again changes nothing and counts nothing more.
    let again = f.api("DELETE", &format!("/leads/{lead}"), None).await;
    assert_eq!(again.json["receipt"], last.json["receipt"]);

    let partition = f.store.lead_partition(&lead).await.unwrap();
    let touches: Vec<_> = partition
        .iter()
        .filter(|i| i["sk"].as_s().unwrap().starts_with("TP#"))
        .collect();
    assert_eq!(touches.len(), 10_000);
    for t in touches {
        assert!(t["custom"].as_m().unwrap().is_empty());
        assert!(!t["attribution"].as_m().unwrap().contains_key("utm_term"));
    }
    let left = findings(&f.store, &[EMAIL.to_string(), MESSAGE.to_string()]).await;
    assert!(left.is_empty(), "{left:#?}");
}

/// Retention erases a lead inactive for RETENTION_DAYS through the same erasure, keeps an
/// active one, and a dry run only counts.
#[tokio::test]
async fn retention_erases_an_inactive_lead_and_keeps_an_active_one() {
    let f = Functions::new().await;
    let cfg = leadflow::normalize::NormalizeConfig::default();
    let lead_at = |id: &str, email: &str, at: chrono::DateTime<chrono::Utc>| {
        let mut s = leadflow::model::Submission::new(
            "form",
            leadflow::model::DeliveryKey::Platform(id.into()),
            leadflow::model::TouchKind::FormSubmission,
            at,
        );
        s.contact.email = Some(email.into());
        s.custom.insert("message".into(), MESSAGE.into());
        leadflow::normalize::normalize(s, &cfg).unwrap()
    };
    let now = chrono::Utc::now();
    let old = f
        .store
        .ingest(
            &lead_at("r1", EMAIL, now - chrono::Duration::days(400)),
            now,
        )
        .await
        .unwrap()
        .lead_id;
    let active = f
        .store
        .ingest(
            &lead_at("r2", "active@example.com", now - chrono::Duration::days(3)),
            now,
        )
        .await
        .unwrap()
        .lead_id;
    let state = metrics_rollup::RollupState::from_lookup(f.store.clone(), |k| {
        (k == "RETENTION_DAYS").then(|| "365".to_string())
    })
    .unwrap();
    let run = |input: Value| metrics_rollup::handler(&state, integration_tests::json_event(input));

    // The sample in events/ is the dry run.
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/metrics-retention-dry-run.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let dry = run(sample).await.unwrap();
    assert_eq!(
        (dry["inactive"].as_u64(), dry["erased"].as_u64()),
        (Some(1), Some(0)),
        "{dry}"
    );
    assert!(!f
        .store
        .raw_lead_item(&old)
        .await
        .unwrap()
        .unwrap()
        .contains_key("erased"));

    let real = run(json!({"mode": "retention"})).await.unwrap();
    assert_eq!(real["erased"], 1, "{real}");
    let gone = f.store.raw_lead_item(&old).await.unwrap().unwrap();
    assert!(gone.contains_key("erased") && !gone.contains_key("email"));
    let receipt = f.store.erasure_receipt(&old).await.unwrap().unwrap();
    assert!(receipt.done());
    let kept = f.store.raw_lead_item(&active).await.unwrap().unwrap();
    assert!(!kept.contains_key("erased") && kept.contains_key("email"));
    assert!(findings(&f.store, &[EMAIL.to_string()]).await.is_empty());
    // Nothing left to do; and without RETENTION_DAYS the job is off.
    let again = run(json!({"mode": "retention"})).await.unwrap();
    assert_eq!(again["inactive"], 0, "{again}");
    let off = metrics_rollup::RollupState::from_lookup(f.store.clone(), |_| None).unwrap();
    let answer = metrics_rollup::handler(
        &off,
        integration_tests::json_event(json!({"mode": "retention"})),
    )
    .await
    .unwrap();
    assert_eq!(answer["retention"], "off");
}

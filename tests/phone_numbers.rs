//! Phone numbers from abroad on the local DynamoDB (issue 14): `leadflow renormalize-phones` on a
//! table seeded with the numbers the old parsing refused, and extensions kept apart through
//! merges.

use chrono::{DateTime, Duration, Utc};
use integration_tests::fresh_store;
use leadflow::model::{
    ContactInput, DeliveryKey, IdentityKey, IngestStatus, Submission, TouchKind,
};
use leadflow::normalize::{normalize, parse_phone, NormalizeConfig};
use leadflow::store::{PhoneAdoption, RefusedPhone, Store};
use leadflow_tools::phones::{renormalize_phones, Outcome, Report};

fn submission(delivery: &str, at: DateTime<Utc>, contact: ContactInput) -> Submission {
    let mut s = Submission::new(
        "form",
        DeliveryKey::Platform(delivery.into()),
        TouchKind::FormSubmission,
        at,
    );
    s.contact = contact;
    s
}

/// A lead as the old parsing stored it when it refused the phone and an email identified the
/// person: `phone_raw` as sent, no `phone`, no phone marker. Built with the real ingest; only
/// the normalization result is the old one.
async fn seed_refused(store: &Store, email: &str, phone: &str, country: Option<&str>) -> String {
    let at = Utc::now() - Duration::days(30);
    let mut n = normalize(
        submission(
            &format!("seed-{email}"),
            at,
            ContactInput {
                email: Some(email.into()),
                country: country.map(str::to_string),
                ..Default::default()
            },
        ),
        &NormalizeConfig::default(),
    )
    .unwrap();
    n.contact.phone_raw = Some(phone.into());
    let out = store.ingest(&n, at).await.unwrap();
    assert_eq!(out.status, IngestStatus::Created);
    out.lead_id
}

async fn ingest(
    store: &Store,
    delivery: &str,
    at: DateTime<Utc>,
    contact: ContactInput,
) -> (IngestStatus, String) {
    let n = normalize(
        submission(delivery, at, contact),
        &NormalizeConfig::default(),
    )
    .unwrap();
    let out = store.ingest(&n, at).await.unwrap();
    (out.status, out.lead_id)
}

async fn owner(store: &Store, e164: &str) -> Option<String> {
    store
        .lead_id_for(&IdentityKey::Phone(e164.into()))
        .await
        .unwrap()
}

fn outcome<'a>(reports: &'a [Report], lead_id: &str) -> &'a Outcome {
    &reports
        .iter()
        .find(|r| r.lead_id == lead_id)
        .unwrap_or_else(|| panic!("no report for {lead_id}"))
        .outcome
}

fn adopted(e164: &str) -> Outcome {
    Outcome::Adopted { e164: e164.into() }
}

#[tokio::test]
async fn renormalize_phones_claims_free_numbers_and_reports_taken_ones() {
    let store = fresh_store().await;
    let cfg = NormalizeConfig::default(); // DEFAULT_COUNTRY=US, as in the issue
    let paris = seed_refused(&store, "paris@example.fr", "+33 1 40 21 70 72", None).await;
    let sao_paulo = seed_refused(&store, "sp@example.com.br", "+55 11 98704 0829", None).await;
    let london = seed_refused(&store, "ldn@example.co.uk", "+44 (0)20 7946 0234", None).await;
    let rotterdam = seed_refused(&store, "rdam@example.nl", "+31 10 123 4567", None).await;
    let with_ext = seed_refused(&store, "desk@example.fr", "+33 1 47 05 12 34 ext. 12", None).await;
    // National form: read in the lead's own country, not DEFAULT_COUNTRY.
    let national = seed_refused(&store, "lyon@example.fr", "01 42 68 53 00", Some("France")).await;
    let junk = seed_refused(&store, "nobody@example.com", "call me maybe", None).await;
    let invalid = seed_refused(&store, "x@example.com", "+1 999 555 0132", None).await;
    // Two leads that wrote the same number: the first to claim it keeps it.
    let twin_a = seed_refused(&store, "twin-a@example.fr", "+33 1 40 21 70 99", None).await;
    let twin_b = seed_refused(&store, "twin-b@example.fr", "0033 1 40 21 70 99", None).await;
    // Since the fix, the London number came in on its own and made a lead of its own.
    let (status, holder) = ingest(
        &store,
        "phone-only-london",
        Utc::now() - Duration::days(1),
        ContactInput {
            phone: Some("+44 20 7946 0234".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(status, IngestStatus::Created);
    let versions_before: Vec<u64> = {
        let mut v = Vec::new();
        for id in [&paris, &london, &junk] {
            v.push(store.get_lead(id).await.unwrap().unwrap().version);
        }
        v
    };

    // --dry-run: says what it would do, writes nothing.
    let dry = renormalize_phones(&store, &cfg, true, false).await.unwrap();
    assert_eq!(dry.len(), 10, "{dry:?}");
    assert_eq!(outcome(&dry, &paris), &adopted("+33140217072"));
    assert_eq!(
        outcome(&dry, &london),
        &Outcome::HeldBy {
            e164: "+442079460234".into(),
            other_lead_id: holder.clone()
        }
    );
    assert_eq!(outcome(&dry, &junk), &Outcome::StillRefused);
    // Leads are visited in id (creation) order: the first twin would claim the number.
    assert_eq!(outcome(&dry, &twin_a), &adopted("+33140217099"));
    assert_eq!(
        outcome(&dry, &twin_b),
        &Outcome::HeldBy {
            e164: "+33140217099".into(),
            other_lead_id: twin_a.clone()
        }
    );
    assert_eq!(owner(&store, "+33140217072").await, None);
    for (id, before) in [&paris, &london, &junk].into_iter().zip(&versions_before) {
        let lead = store.get_lead(id).await.unwrap().unwrap();
        assert_eq!(lead.version, *before, "dry run wrote {id}");
        assert_eq!(lead.contact.phone, None);
    }

    // The run.
    let run = renormalize_phones(&store, &cfg, false, false)
        .await
        .unwrap();
    assert_eq!(run.len(), 10, "{run:?}");
    for (id, e164) in [
        (&paris, "+33140217072"),
        (&sao_paulo, "+5511987040829"),
        (&rotterdam, "+31101234567"),
        (&with_ext, "+33147051234"),
        (&national, "+33142685300"),
    ] {
        assert_eq!(outcome(&run, id), &adopted(e164), "{id}");
        let lead = store.get_lead(id).await.unwrap().unwrap();
        assert_eq!(lead.contact.phone.as_deref(), Some(e164));
        assert_eq!(lead.contact.phone_raw, None, "{id}");
        assert_eq!(owner(&store, e164).await.as_deref(), Some(id.as_str()));
    }
    let paris_lead = store.get_lead(&paris).await.unwrap().unwrap();
    assert_eq!(paris_lead.version, versions_before[0] + 1);
    assert_eq!(paris_lead.contact.phone_ext, None);
    let desk = store.get_lead(&with_ext).await.unwrap().unwrap();
    assert_eq!(desk.contact.phone_ext.as_deref(), Some("12"));
    // Taken: reported with the holder, never merged; both leads as they were.
    assert_eq!(
        outcome(&run, &london),
        &Outcome::HeldBy {
            e164: "+442079460234".into(),
            other_lead_id: holder.clone()
        }
    );
    let london_lead = store.get_lead(&london).await.unwrap().unwrap();
    assert_eq!(london_lead.contact.phone, None);
    assert_eq!(
        london_lead.contact.phone_raw.as_deref(),
        Some("+44 (0)20 7946 0234")
    );
    assert_eq!(london_lead.version, versions_before[1]);
    assert_eq!(owner(&store, "+442079460234").await, Some(holder.clone()));
    assert_eq!(
        store.get_lead(&holder).await.unwrap().unwrap().touch_count,
        1
    );
    // Twins: exactly one claims the number; the other is told who has it.
    let twin_outcomes = (outcome(&run, &twin_a), outcome(&run, &twin_b));
    let (winner, loser) = match twin_outcomes {
        (Outcome::Adopted { .. }, _) => (&twin_a, &twin_b),
        _ => (&twin_b, &twin_a),
    };
    assert_eq!(outcome(&run, winner), &adopted("+33140217099"));
    assert_eq!(
        outcome(&run, loser),
        &Outcome::HeldBy {
            e164: "+33140217099".into(),
            other_lead_id: winner.clone()
        }
    );
    assert_eq!(outcome(&run, &junk), &Outcome::StillRefused);
    assert_eq!(outcome(&run, &invalid), &Outcome::StillRefused);

    // Idempotent: a second run changes nothing and reports the same leftovers.
    let again = renormalize_phones(&store, &cfg, false, false)
        .await
        .unwrap();
    let mut left: Vec<&str> = again.iter().map(|r| r.lead_id.as_str()).collect();
    left.sort();
    let mut want = vec![
        london.as_str(),
        loser.as_str(),
        junk.as_str(),
        invalid.as_str(),
    ];
    want.sort();
    assert_eq!(left, want);
    assert!(again
        .iter()
        .all(|r| !matches!(r.outcome, Outcome::Adopted { .. })));
    assert_eq!(
        store.get_lead(&paris).await.unwrap().unwrap().version,
        versions_before[0] + 1
    );

    // What it was for: a phone-only submission, in any notation, finds the person now.
    let (status, lead) = ingest(
        &store,
        "phone-only-paris",
        Utc::now(),
        ContactInput {
            phone: Some("011 33 1 40 21 70 72".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (status, lead.as_str()),
        (IngestStatus::Merged, paris.as_str())
    );

    // The claimed marker is listed on the lead: erasure removes it with the lead.
    assert!(store
        .erase_lead(&paris, Utc::now())
        .await
        .unwrap()
        .is_some());
    assert_eq!(owner(&store, "+33140217072").await, None);
}

/// The write is conditioned on the lead being as it was read, and marker and lead go in one
/// transaction: a stale read writes neither.
#[tokio::test]
async fn adopt_phone_writes_nothing_for_a_lead_that_changed() {
    let store = fresh_store().await;
    let lead_id = seed_refused(&store, "stale@example.fr", "+33 1 40 21 70 72", None).await;
    let phone = parse_phone(
        "+33 1 40 21 70 73",
        NormalizeConfig::default().default_country,
        &[],
    )
    .unwrap();
    let stale = RefusedPhone {
        lead_id: lead_id.clone(),
        phone_raw: "+33 1 40 21 70 73".into(),
        country: None,
    };
    let got = store.adopt_phone(&stale, &phone, Utc::now()).await.unwrap();
    assert_eq!(got, PhoneAdoption::LeadChanged);
    assert_eq!(owner(&store, "+33140217073").await, None);
    let lead = store.get_lead(&lead_id).await.unwrap().unwrap();
    assert_eq!(lead.contact.phone, None);
    assert_eq!(lead.version, 1);
    // A lead that does not exist is "changed" too, and gets no marker.
    let ghost = RefusedPhone {
        lead_id: "no-such-lead".into(),
        phone_raw: "+33 1 40 21 70 73".into(),
        country: None,
    };
    assert_eq!(
        store.adopt_phone(&ghost, &phone, Utc::now()).await.unwrap(),
        PhoneAdoption::LeadChanged
    );
    assert_eq!(owner(&store, "+33140217073").await, None);
}

/// An extension travels with the number it was written with: a newer number without one clears
/// it, a late older submission never sets one; the identity is the number alone.
#[tokio::test]
async fn extensions_follow_their_number_through_merges() {
    let store = fresh_store().await;
    let t0 = Utc::now() - Duration::hours(3);
    let contact = |phone: &str| ContactInput {
        email: Some("desk@example.com".into()),
        phone: Some(phone.into()),
        ..Default::default()
    };
    let (_, lead_id) = ingest(&store, "d1", t0, contact("+1 415 555 0132 ext. 12")).await;
    let lead = store.get_lead(&lead_id).await.unwrap().unwrap();
    assert_eq!(lead.contact.phone.as_deref(), Some("+14155550132"));
    assert_eq!(lead.contact.phone_ext.as_deref(), Some("12"));
    // The same number through another extension is the same person.
    let (status, same) = ingest(
        &store,
        "d2",
        t0 + Duration::hours(1),
        ContactInput {
            phone: Some("(415) 555-0132 x 7".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        (status, same.as_str()),
        (IngestStatus::Merged, lead_id.as_str())
    );
    assert_eq!(
        store
            .get_lead(&lead_id)
            .await
            .unwrap()
            .unwrap()
            .contact
            .phone_ext
            .as_deref(),
        Some("7")
    );
    // A newer number without an extension clears the old one's.
    ingest(
        &store,
        "d3",
        t0 + Duration::hours(2),
        contact("+1 415 555 0199"),
    )
    .await;
    let lead = store.get_lead(&lead_id).await.unwrap().unwrap();
    assert_eq!(lead.contact.phone.as_deref(), Some("+14155550199"));
    assert_eq!(lead.contact.phone_ext, None);
    // A late, older submission with an extension fills nothing into the current number.
    ingest(
        &store,
        "d4",
        t0 - Duration::hours(1),
        contact("+1 415 555 0177 ext. 3"),
    )
    .await;
    let lead = store.get_lead(&lead_id).await.unwrap().unwrap();
    assert_eq!(lead.contact.phone.as_deref(), Some("+14155550199"));
    assert_eq!(lead.contact.phone_ext, None);
}

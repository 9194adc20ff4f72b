//! Calendly: `POST` JSON `{event, created_at, payload{...}}` signed with
//! `Calendly-Webhook-Signature: t=<unix s>,v1=<hex HMAC-SHA256(signing key, t + "." + raw
//! body)>`, about 3 minutes of tolerance (`CALENDLY_SIGNING_KEY`).
//!
//! `invitee.created` is a booked meeting (it makes or merges a lead: email, name,
//! `questions_and_answers`, `tracking.utm_*`); `invitee.canceled` a canceled-meeting touch.
//! Other events (routing forms, no-shows) are ignored. Idempotency key: the invitee `uri` plus
//! the event name, so a booking and its cancellation are two touches.

use std::time::Duration;

use chrono::{DateTime, Utc};

use leadflow::edge::InboundRequest;
use leadflow::fields::apply_field;
use leadflow::model::{DeliveryKey, Submission, TouchKind};
use leadflow::signature::{self, SignatureError};
use serde_json::Value;

use super::{
    fill, ignored, parse_json, quarantine, set_custom, str_at, time_value, value_text,
    ProviderOutcome,
};
use crate::{Parse, Platform, Variable};

pub const PROVIDER: &str = "calendly";

pub const SIGNING_KEY: Variable = Variable::required_secret(
    "CALENDLY_SIGNING_KEY",
    "the signing_key you pass when creating the webhook subscription through Calendly's API",
);

/// Calendly's documented tolerance is about 3 minutes.
pub const TOLERANCE: Duration = Duration::from_secs(3 * 60);

/// Calendly, `/webhooks/calendly`.
pub const PLATFORM: Platform = Platform::new(
    PROVIDER,
    &SIGNING_KEY,
    &[&SIGNING_KEY],
    verify,
    Parse::Now(parse),
);

/// Checks a delivery with the configured secret.
fn verify(secret: &str, req: &InboundRequest, now: DateTime<Utc>) -> Result<(), SignatureError> {
    verify_calendly(
        secret,
        &req.body,
        req.header("calendly-webhook-signature"),
        now,
    )
}

/// Calendly's scheme: `Calendly-Webhook-Signature: t=<unix s>,v1=<hex HMAC-SHA256(key, t + "." + body)>`,
/// about 3 minutes of tolerance. Several `v1` entries (key rotation) are each tried.
pub fn verify_calendly(
    signing_key: &str,
    body: &[u8],
    header: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let header = signature::required(header, "Calendly-Webhook-Signature")?;
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
    let signed_at = signature::timestamp_secs(t)?;
    let mut result = Err(SignatureError::Mismatch);
    for sig in sigs {
        match signature::verify_hmac_hex(signing_key.as_bytes(), &[t.as_bytes(), b".", body], sig) {
            Ok(()) => {
                result = Ok(());
                break;
            }
            Err(e @ SignatureError::Malformed(_)) if result.is_err() => result = Err(e),
            Err(_) => {}
        }
    }
    result?;
    signature::check_window(signed_at, now, TOLERANCE)
}

pub fn parse(req: &InboundRequest) -> ProviderOutcome {
    let v = match parse_json(&req.body, "calendly body") {
        Ok(v) => v,
        Err(reason) => return quarantine(reason),
    };
    let Some(event) = str_at(&v, "event") else {
        return quarantine("calendly body has no event");
    };
    let kind = match event {
        "invitee.created" => TouchKind::MeetingBooked,
        "invitee.canceled" => TouchKind::MeetingCanceled,
        other => return ignored(format!("calendly event {other:?} is not a booking")),
    };
    let Some(p) = v.get("payload").filter(|p| p.is_object()) else {
        return quarantine("calendly body has no payload object");
    };
    let Some(uri) = str_at(p, "uri") else {
        return quarantine("calendly invitee has no uri");
    };
    let occurred_at = time_value(v.get("created_at"))
        .or_else(|| time_value(p.get("created_at")))
        .unwrap_or(req.received_at);
    let mut sub = Submission::new(
        PROVIDER,
        DeliveryKey::Platform(format!("{uri}#{event}")),
        kind,
        occurred_at,
    );
    sub.source_hint = Some(PROVIDER.to_string());
    // (payload key, field name)
    for (key, field) in [
        ("email", "email"),
        ("first_name", "first_name"),
        ("last_name", "last_name"),
        ("name", "full_name"),
        // The number the invitee gave for SMS reminders.
        ("text_reminder_number", "phone"),
    ] {
        if let Some(value) = str_at(p, key) {
            apply_field(&mut sub, field, value);
        }
    }
    if let Some(tracking) = p.get("tracking").and_then(Value::as_object) {
        for (name, value) in tracking {
            if name.starts_with("utm_") {
                if let Some(text) = value_text(value) {
                    apply_field(&mut sub, name, &text);
                }
            }
        }
    }
    if let Some(qas) = p.get("questions_and_answers").and_then(Value::as_array) {
        for qa in qas {
            if let (Some(q), Some(a)) = (str_at(qa, "question"), str_at(qa, "answer")) {
                let question: String = q.chars().take(80).collect();
                apply_field(&mut sub, &question, a);
            }
        }
    }
    if let Some(ev) = p.get("scheduled_event").filter(|e| e.is_object()) {
        fill(&mut sub.attribution.form_id, str_at(ev, "event_type"));
        if let Some(name) = str_at(ev, "name") {
            set_custom(&mut sub, "calendly_event", name);
        }
        if let Some(start) = str_at(ev, "start_time") {
            set_custom(&mut sub, "meeting_start", start);
        }
    }
    if kind == TouchKind::MeetingCanceled {
        if let Some(reason) = p.pointer("/cancellation/reason").and_then(Value::as_str) {
            set_custom(&mut sub, "cancel_reason", reason);
        }
    }
    ProviderOutcome::Submissions(vec![sub])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::*;
    use crate::Providers;

    const KEY: &str = "test-calendly-signing-key";
    const T: i64 = 1_700_000_000;

    const CREATED: &str = r#"{"created_at":"2023-11-14T22:13:20.000000Z","created_by":"https://api.calendly.com/users/AAAAAAAAAAAAAAAA","event":"invitee.created","payload":{"cancel_url":"https://calendly.com/cancellations/AAAAAAAAAAAAAAAA","created_at":"2023-11-14T22:13:19.000000Z","email":"mary@example.com","first_name":"Mary","last_name":"Jackson","name":"Mary Jackson","new_invitee":null,"old_invitee":null,"questions_and_answers":[{"answer":"Langley Research","position":0,"question":"Company"},{"answer":"About 40 seats","position":1,"question":"How big is your team?"}],"reschedule_url":"https://calendly.com/reschedulings/AAAAAAAAAAAAAAAA","rescheduled":false,"scheduled_event":{"created_at":"2023-11-14T22:13:19.000000Z","end_time":"2023-11-20T16:30:00.000000Z","event_type":"https://api.calendly.com/event_types/GBGBDCAADAEDCRZ2","name":"Intro call","start_time":"2023-11-20T16:00:00.000000Z","status":"active","uri":"https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2"},"status":"active","text_reminder_number":"+1 757 555 0175","timezone":"America/New_York","tracking":{"utm_campaign":"webinar-followup","utm_source":"newsletter","utm_medium":"email","utm_content":null,"utm_term":null,"salesforce_uuid":null},"uri":"https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/AAAAAAAAAAAAAAAA"}}"#;

    fn providers() -> Providers {
        configured(&[("CALENDLY_SIGNING_KEY", KEY)])
    }

    fn signed(body: &str, t: i64) -> InboundRequest {
        let ts = t.to_string();
        let sig = hex_hmac(KEY, &[ts.as_bytes(), b".", body.as_bytes()]);
        request(
            "POST",
            body.as_bytes(),
            &[("Calendly-Webhook-Signature", &format!("t={ts},v1={sig}"))],
            &[],
        )
    }

    #[tokio::test]
    async fn invitee_created_is_a_booked_meeting() {
        let s = one(providers()
            .handle("calendly", &signed(CREATED, T), at(T + 30))
            .await
            .unwrap());
        assert_eq!(s.kind, TouchKind::MeetingBooked);
        assert_eq!(
            s.delivery,
            DeliveryKey::Platform("https://api.calendly.com/scheduled_events/GBGBDCAADAEDCRZ2/invitees/AAAAAAAAAAAAAAAA#invitee.created".into())
        );
        assert_eq!(s.occurred_at.to_rfc3339(), "2023-11-14T22:13:20+00:00");
        assert_eq!(s.contact.email.as_deref(), Some("mary@example.com"));
        assert_eq!(s.contact.first_name.as_deref(), Some("Mary"));
        assert_eq!(s.contact.full_name.as_deref(), Some("Mary Jackson"));
        assert_eq!(s.contact.phone.as_deref(), Some("+1 757 555 0175"));
        assert_eq!(s.contact.company.as_deref(), Some("Langley Research"));
        assert_eq!(s.custom["how_big_is_your_team"], "About 40 seats");
        assert_eq!(s.custom["calendly_event"], "Intro call");
        assert_eq!(s.attribution.utm_source.as_deref(), Some("newsletter"));
        assert_eq!(
            s.attribution.utm_campaign.as_deref(),
            Some("webinar-followup")
        );
        assert_eq!(s.attribution.utm_content, None);
        assert_eq!(s.source_hint.as_deref(), Some("calendly"));
    }

    #[tokio::test]
    async fn invitee_canceled_is_its_own_touch() {
        let body = CREATED
            .replace("\"event\":\"invitee.created\"", "\"event\":\"invitee.canceled\"")
            .replace("\"status\":\"active\",\"text", "\"status\":\"canceled\",\"cancellation\":{\"canceled_by\":\"Mary\",\"reason\":\"Conflict\",\"canceler_type\":\"invitee\"},\"text");
        let s = one(providers()
            .handle("calendly", &signed(&body, T), at(T))
            .await
            .unwrap());
        assert_eq!(s.kind, TouchKind::MeetingCanceled);
        assert!(s.delivery.as_str().ends_with("#invitee.canceled"));
        assert_eq!(s.custom["cancel_reason"], "Conflict");
    }

    #[tokio::test]
    async fn signature_failures() {
        let p = providers();
        let mut req = signed(CREATED, T);
        req.body = CREATED.replace("Mary", "Eve").into_bytes();
        assert_eq!(
            p.handle("calendly", &req, at(T)).await.unwrap_err().code(),
            "invalid_signature"
        );
        let ts = T.to_string();
        let sig = hex_hmac("other", &[ts.as_bytes(), b".", CREATED.as_bytes()]);
        let req = request(
            "POST",
            CREATED.as_bytes(),
            &[("calendly-webhook-signature", &format!("t={ts},v1={sig}"))],
            &[],
        );
        assert_eq!(
            p.handle("calendly", &req, at(T)).await.unwrap_err().code(),
            "invalid_signature"
        );
        let e = p
            .handle("calendly", &signed(CREATED, T), at(T + 181))
            .await
            .unwrap_err();
        assert_eq!((e.status(), e.code()), (401, "stale_timestamp"));
        let req = request("POST", CREATED.as_bytes(), &[], &[]);
        assert_eq!(
            p.handle("calendly", &req, at(T)).await.unwrap_err().code(),
            "missing_signature"
        );
        let req = request(
            "POST",
            CREATED.as_bytes(),
            &[("calendly-webhook-signature", "v1=abc")],
            &[],
        );
        assert_eq!(
            p.handle("calendly", &req, at(T)).await.unwrap_err().code(),
            "invalid_signature"
        );
    }

    #[tokio::test]
    async fn authentic_garbage_is_quarantined() {
        let p = providers();
        for (body, want) in [
            ("{\"event\":", "JSON"),
            (r#"{"payload":{}}"#, "no event"),
            (r#"{"event":"invitee.created"}"#, "payload"),
            (
                r#"{"event":"invitee.created","payload":{"email":"a@b.c"}}"#,
                "uri",
            ),
        ] {
            let reason =
                quarantine_reason(p.handle("calendly", &signed(body, T), at(T)).await.unwrap());
            assert!(reason.contains(want), "{reason}");
        }
        ignored_reason(
            p.handle(
                "calendly",
                &signed(
                    r#"{"event":"routing_form_submission.created","payload":{}}"#,
                    T,
                ),
                at(T),
            )
            .await
            .unwrap(),
        );
    }

    // --- The signature scheme (published vectors first) ---

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
}

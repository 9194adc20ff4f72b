//! The lead model: what a submission carries in, and what a lead and a touchpoint are.
//!
//! Plain data, no AWS types: adapters (web forms, platforms, referrals) build a [`Submission`];
//! [`crate::normalize`] turns it into a [`NormalizedSubmission`] that the store ingests.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Contact details exactly as the sender gave them (trimmed, nothing rewritten).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactInput {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub full_name: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    pub country: Option<String>,
}

/// A marketing consent answer: only explicit answers are recorded, never inferred. Every one is
/// also kept as it came in the lead's consent history ([`ConsentRecord`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    pub marketing_opt_in: bool,
    pub at: DateTime<Utc>,
    /// The consent wording or the form id it was given on, for audit.
    pub text: Option<String>,
    /// The page the answer was given on (web forms: the page that posted the form).
    #[serde(default)]
    pub page: Option<String>,
    /// HMAC of the sender's IP under the consent pepper (`consent::IpPepper`); never the IP.
    #[serde(default)]
    pub ip_hash: Option<String>,
}

impl Consent {
    /// An explicit answer with its wording (or form id); page and IP are filled by the adapters
    /// that know them.
    pub fn new(marketing_opt_in: bool, at: DateTime<Utc>, text: Option<String>) -> Consent {
        Consent {
            marketing_opt_in,
            at,
            text,
            page: None,
            ip_hash: None,
        }
    }
}

/// One entry of a lead's consent history (append-only: GDPR Art. 7(1) evidence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub opt_in: bool,
    /// When the answer was given.
    pub at: DateTime<Utc>,
    /// Where it came from: the provider (`form`, `facebook`...) or `lead-api` for a withdrawal.
    pub source: String,
    pub form_id: Option<String>,
    pub page: Option<String>,
    /// The wording the person saw, when the sender gave it.
    pub text: Option<String>,
    pub ip_hash: Option<String>,
    /// The touchpoint (or sales event) that carried the answer.
    pub touch_id: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// Where a touch came from. Every field is optional; adapters fill what their platform carries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    pub gclid: Option<String>,
    pub fbclid: Option<String>,
    pub li_fat_id: Option<String>,
    pub msclkid: Option<String>,
    pub landing_page: Option<String>,
    pub referrer: Option<String>,
    pub form_id: Option<String>,
    /// What the lead came for, `kind:name`, e.g. `ebook:pricing-guide`, `webinar:q3`.
    pub lead_magnet: Option<String>,
}

crate::named_enum! {
    /// Marketing channel, derived by the documented rules in [`crate::classify`].
    #[derive(Hash, PartialOrd, Ord)]
    pub enum Channel {
        PaidSearch = "paid_search", PaidSocial = "paid_social", OrganicSearch = "organic_search",
        OrganicSocial = "organic_social", Email = "email", Referral = "referral", Review = "review",
        Event = "event", Content = "content", Direct = "direct", Other = "other",
    }
}

crate::named_enum! {
    pub enum Direction {
        Inbound = "inbound", Outbound = "outbound",
    }
}

crate::named_enum! {
    /// What kind of touch a submission is; scoring weighs touches by kind.
    #[derive(Hash, PartialOrd, Ord)]
    pub enum TouchKind {
        FormSubmission = "form_submission",
        /// A form started but not finished (e.g. Typeform partial responses).
        PartialSubmission = "partial_submission", AdLead = "ad_lead",
        MeetingBooked = "meeting_booked", MeetingCanceled = "meeting_canceled", Event = "event",
        ReferralGiven = "referral_given", ReferralReceived = "referral_received", Review = "review",
        Visit = "visit",
        /// On a list imported without any engagement of the person (an outbound prospect
        /// list): recorded for the history, worth no engagement points.
        ListImport = "list_import",
    }
}

/// How a delivery is recognised when it comes again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeliveryKey {
    /// The platform's own id for the delivery or the response (Typeform token, Meta leadgen_id...).
    Platform(String),
    /// Unsigned senders have no id: a hash of the content, remembered for 24 hours.
    BodyHash(String),
    /// A web form's `Idempotency-Key`, scoped to its form and remembered 24 hours. The
    /// fingerprint of the parsed fields is kept with it: the same key with other content is
    /// refused (`idempotency_key_reused`), never taken for the first submission.
    Idempotency {
        scope: String,
        key: String,
        fingerprint: String,
    },
}

impl DeliveryKey {
    /// The body-hash key for `provider` and the raw request body.
    pub fn body_hash(provider: &str, body: &[u8]) -> DeliveryKey {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(provider.as_bytes());
        h.update([0u8]);
        h.update(body);
        DeliveryKey::BodyHash(hex::encode(h.finalize()))
    }

    /// A fingerprint of parsed form fields, for `BodyHash` and `Idempotency` keys: the same
    /// submission gives the same fingerprint however it was encoded (field order, multipart
    /// boundary, urlencoding), and any change of a name or value gives another. `scope` is the
    /// form the fields were posted to.
    pub fn fields_fingerprint(provider: &str, scope: &str, fields: &[(String, String)]) -> String {
        use sha2::{Digest, Sha256};
        let mut sorted: Vec<&(String, String)> = fields.iter().collect();
        sorted.sort();
        let mut h = Sha256::new();
        // Length-prefixed parts: no two different field lists hash the same bytes.
        for part in [provider, scope] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        for (name, value) in sorted {
            h.update((name.len() as u64).to_be_bytes());
            h.update(name.as_bytes());
            h.update((value.len() as u64).to_be_bytes());
            h.update(value.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The key's text: the platform id, the hash, or the client's idempotency key.
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryKey::Platform(s) | DeliveryKey::BodyHash(s) => s,
            DeliveryKey::Idempotency { key, .. } => key,
        }
    }

    /// The content fingerprint a retry must match, for idempotency keys.
    pub fn fingerprint(&self) -> Option<&str> {
        match self {
            DeliveryKey::Idempotency { fingerprint, .. } => Some(fingerprint),
            _ => None,
        }
    }
}

/// A lead a platform announced but says it does not have (deleted before we fetched it, or the
/// App Dashboard "Test" button's made-up ids): recorded with its ids and the platform's answer,
/// never with personal data, so an operator can list them (`leadflow lead-gone`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadGone {
    pub provider: String,
    /// The platform's id of the lead (Meta `leadgen_id`, LinkedIn lead response id).
    pub platform_lead_id: String,
    /// The other ids the webhook gave (form, page, ad...).
    pub ids: BTreeMap<String, String>,
    pub http_status: u16,
    /// The platform's error code and message (no personal data: ids and error text only).
    pub reason: String,
    /// When the latest delivery announcing it arrived.
    pub received_at: DateTime<Utc>,
    /// How many deliveries announced it.
    pub deliveries: u64,
}

/// One incoming submission, as an adapter understood it. Nothing here is normalized yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    /// The adapter that received it: `form`, `typeform`, `facebook`, `referral`...
    pub provider: String,
    pub delivery: DeliveryKey,
    pub kind: TouchKind,
    /// When the person submitted (platform time when given, else receipt time).
    pub occurred_at: DateTime<Utc>,
    pub contact: ContactInput,
    pub consent: Option<Consent>,
    pub attribution: Attribution,
    /// The platform decides the channel when it knows better than UTMs (Google Ads is paid search).
    pub channel_hint: Option<Channel>,
    /// The platform name used as source when UTMs name none (e.g. `google_ads`).
    pub source_hint: Option<String>,
    /// The direction when the sender knows it (an imported list says inbound or outbound);
    /// otherwise it is read from `utm_medium` ([`crate::classify`]).
    #[serde(default)]
    pub direction_hint: Option<Direction>,
    /// Answers to questions that are not contact fields, by question key.
    pub custom: BTreeMap<String, String>,
    /// Platform test deliveries: stored, flagged, left out of metrics.
    pub is_test: bool,
}

impl Submission {
    /// A submission with nothing but the fields every adapter must set.
    pub fn new(
        provider: impl Into<String>,
        delivery: DeliveryKey,
        kind: TouchKind,
        occurred_at: DateTime<Utc>,
    ) -> Submission {
        Submission {
            provider: provider.into(),
            delivery,
            kind,
            occurred_at,
            contact: ContactInput::default(),
            consent: None,
            attribution: Attribution::default(),
            channel_hint: None,
            source_hint: None,
            direction_hint: None,
            custom: BTreeMap::new(),
            is_test: false,
        }
    }
}

/// A contact after normalization: raw values kept, match keys derived.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// As given (trimmed), never rewritten.
    pub email: Option<String>,
    /// Canonical match key (see [`crate::normalize::email_key`]).
    pub email_key: Option<String>,
    /// E.164 when the number parsed: the identity, never with an extension.
    pub phone: Option<String>,
    /// The number as sent, kept only when it did not parse (not used for matching).
    pub phone_raw: Option<String>,
    /// The extension written after a parsed number (`ext. 12` -> `12`), digits only; kept
    /// apart so it never changes the identity.
    pub phone_ext: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub full_name: Option<String>,
    pub company: Option<String>,
    pub job_title: Option<String>,
    /// ISO 3166-1 alpha-2 when recognisable, else as given.
    pub country: Option<String>,
}

/// Derived classification of a touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    pub channel: Channel,
    pub direction: Direction,
    pub source: String,
    /// `utm_campaign` (or the platform's campaign), `(none)` when absent, for grouping.
    pub campaign: String,
}

/// A submission ready to be stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NormalizedSubmission {
    pub provider: String,
    pub delivery: DeliveryKey,
    pub kind: TouchKind,
    pub occurred_at: DateTime<Utc>,
    pub contact: Contact,
    pub consent: Option<Consent>,
    pub attribution: Attribution,
    pub classification: Classification,
    pub custom: BTreeMap<String, String>,
    pub is_test: bool,
}

impl NormalizedSubmission {
    /// The identity keys this submission can be matched on, email first: email decides when the
    /// email and the phone point at two different people.
    pub fn identity_keys(&self) -> Vec<IdentityKey> {
        let mut keys = Vec::with_capacity(2);
        if let Some(k) = &self.contact.email_key {
            keys.push(IdentityKey::Email(k.clone()));
        }
        if let Some(p) = &self.contact.phone {
            keys.push(IdentityKey::Phone(p.clone()));
        }
        keys
    }
}

/// A value that identifies one person.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum IdentityKey {
    /// Canonical email key.
    Email(String),
    /// E.164 phone number.
    Phone(String),
}

crate::named_enum! {
    /// What the ingest did.
    pub enum IngestStatus {
        Created = "created", Merged = "merged", Duplicate = "duplicate",
        /// The person was erased (or opted out, when so configured) and this is not their own
        /// fresh consent: nothing stored (`privacy::lifts_suppression`).
        Suppressed = "suppressed",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngestOutcome {
    pub status: IngestStatus,
    pub lead_id: String,
    pub touch_id: String,
}

crate::named_enum! {
    /// Lifecycle stage: moves forward only.
    #[derive(PartialOrd, Ord, Hash)]
    pub enum Stage {
        Lead = "lead", Mql = "mql", Sql = "sql", Customer = "customer",
    }
}

crate::named_enum! {
    #[derive(PartialOrd, Ord, Hash)]
    pub enum Temperature {
        Cold = "cold", Warm = "warm", Hot = "hot",
    }
}

/// The attribution summary of one touch, kept on the lead as first and last touch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TouchSummary {
    pub touch_id: String,
    pub at: DateTime<Utc>,
    pub kind: TouchKind,
    pub provider: String,
    pub channel: Channel,
    pub source: String,
    pub campaign: String,
    pub form_id: Option<String>,
    pub lead_magnet: Option<String>,
}

/// One person, as read back from the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lead {
    pub lead_id: String,
    pub contact: Contact,
    pub consent: Option<Consent>,
    pub first_touch: TouchSummary,
    pub last_touch: TouchSummary,
    pub touch_count: u64,
    pub channel: Channel,
    pub direction: Direction,
    pub source: String,
    pub campaign: String,
    pub custom: BTreeMap<String, String>,
    pub is_test: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub stage: Stage,
    pub score: Option<u32>,
    pub temperature: Option<Temperature>,
    /// Bumped by every write; scheduled jobs write conditionally on it.
    pub version: u64,
    /// What sales reported back (lead-api) and when the stage moved.
    pub sales: SalesFacts,
    /// Referrals this lead gave that were recorded (referral-review).
    pub referral_count: u64,
}

/// Facts reported by sales and the times the lead reached each stage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SalesFacts {
    pub mql_at: Option<DateTime<Utc>>,
    pub sql_at: Option<DateTime<Utc>>,
    pub customer_at: Option<DateTime<Utc>>,
    /// First outreach by sales: time to first touch is measured to it.
    pub first_contacted_at: Option<DateTime<Utc>>,
    pub lost_at: Option<DateTime<Utc>>,
    pub lost_reason: Option<String>,
    pub won_value: Option<f64>,
    /// Channels the person must not be contacted on (`email`, `phone`, `sms`, `all`).
    pub do_not_contact: Vec<String>,
    /// Personal data erased (GDPR): only non-personal facts remain, for exact metrics.
    pub erased: bool,
}

/// One recorded touch of a lead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Touchpoint {
    pub touch_id: String,
    pub lead_id: String,
    pub kind: TouchKind,
    pub provider: String,
    pub occurred_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub channel: Channel,
    pub direction: Direction,
    pub source: String,
    pub campaign: String,
    pub attribution: Attribution,
    pub custom: BTreeMap<String, String>,
    pub is_test: bool,
    /// The person withdrew this submission at the platform (LinkedIn `leadAction: DELETED`):
    /// its answers are gone, the touch stays for the record.
    pub withdrawn_at: Option<DateTime<Utc>>,
}

crate::named_enum! {
    /// Where a review was published (referral-review accepts exactly these).
    #[derive(Hash, PartialOrd, Ord)]
    pub enum ReviewPlatform {
        Internal = "internal", Google = "google", Trustpilot = "trustpilot", G2 = "g2",
        Capterra = "capterra", Yelp = "yelp", Facebook = "facebook",
    }
}

/// Ratings at or below this are flagged for follow-up.
pub const REVIEW_FOLLOW_UP_MAX_RATING: u8 = 2;

/// The current state of one review as its platform reports it (validated: rating 1..=5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewInput {
    pub platform: ReviewPlatform,
    /// The platform's id of the review: a review is one item per (platform, external_id).
    pub external_id: String,
    pub rating: u8,
    pub title: Option<String>,
    pub text: Option<String>,
    /// The reviewer's public display name.
    pub name: Option<String>,
    pub published_at: DateTime<Utc>,
    /// When the review last changed at its source; a change older than the stored one is stale.
    pub updated_at: Option<DateTime<Utc>>,
    /// The sender's reference for the customer (Trustpilot `referenceId`): a lead id.
    pub reference_id: Option<String>,
}

impl ReviewInput {
    pub fn needs_follow_up(&self) -> bool {
        self.rating <= REVIEW_FOLLOW_UP_MAX_RATING
    }
}

/// Per-platform review statistics, maintained exactly (retries, updates and deletes included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewAggregate {
    pub platform: ReviewPlatform,
    pub count: u64,
    pub rating_sum: u64,
    /// Reviews per rating: index 0 is 1 star, index 4 is 5 stars.
    pub distribution: [u64; 5],
}

impl ReviewAggregate {
    pub fn empty(platform: ReviewPlatform) -> ReviewAggregate {
        ReviewAggregate {
            platform,
            count: 0,
            rating_sum: 0,
            distribution: [0; 5],
        }
    }

    pub fn average(&self) -> Option<f64> {
        (self.count > 0).then(|| self.rating_sum as f64 / self.count as f64)
    }
}

/// A referral as recorded on the referrer (one per referral identity, whatever the retries).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referral {
    /// The referral's idempotency identity within the referrer (`id:<referral_id>` or a hash of
    /// program and referee identity).
    pub referral_key: String,
    pub referrer_lead_id: String,
    pub referee_lead_id: String,
    /// The referee was a lead before this referral: recorded, not credited.
    pub existing_lead: bool,
    pub program: Option<String>,
    pub touch_id: String,
    pub created_at: DateTime<Utc>,
}

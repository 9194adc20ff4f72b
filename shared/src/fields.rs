//! Mapping of form field names, as real forms name them, onto a [`Submission`].
//!
//! Web forms, Webflow, Unbounce, Jotform, Tally and HubSpot workflow webhooks all deliver
//! "a bag of named fields"; they share this one mapping so `e-mail`, `your-email` and `Email
//! Address` all land in the email.

use crate::limits::{truncate_bytes, MAX_FIELD_NAME_BYTES};
use crate::model::{Consent, Submission};

/// What a field name means once normalized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldRole {
    Email,
    Phone,
    FirstName,
    LastName,
    FullName,
    Company,
    JobTitle,
    Country,
    Consent,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmTerm,
    UtmContent,
    Gclid,
    Fbclid,
    LiFatId,
    Msclkid,
    LandingPage,
    Referrer,
    FormId,
    LeadMagnet,
    /// Control fields of form backends (`_redirect`, `_subject`...): never stored.
    Control,
    /// Anything else: a custom answer.
    Custom,
}

/// Lowercases and folds every run of non-alphanumerics to one `_`: `Your E-mail` -> `your_e_mail`.
/// At most [`MAX_FIELD_NAME_BYTES`] bytes: a field name becomes an attribute name on items, and
/// a question's full wording is no key.
pub fn normalize_field_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_sep = true;
    for c in name.trim().chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            last_sep = false;
        } else if !last_sep {
            out.push('_');
            last_sep = true;
        }
    }
    let mut out = truncate_bytes(&out, MAX_FIELD_NAME_BYTES).to_string();
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// The role of a field, from its name as sent.
pub fn field_role(name: &str) -> FieldRole {
    if name.trim_start().starts_with('_') {
        return FieldRole::Control;
    }
    let n = normalize_field_name(name);
    // Jotform-style `q3_email` prefixes: strip `q<digits>_`.
    let n = strip_question_prefix(&n);
    match n {
        "email" | "e_mail" | "your_email" | "your_e_mail" | "email_address" | "emailaddress"
        | "mail" | "work_email" | "business_email" | "user_email" | "contact_email" => {
            FieldRole::Email
        }
        "phone" | "tel" | "telephone" | "phone_number" | "phonenumber" | "mobile"
        | "mobile_phone" | "mobile_number" | "cell" | "cellphone" | "your_phone" | "your_tel"
        | "whatsapp" | "work_phone" | "contact_phone" => FieldRole::Phone,
        "first_name" | "firstname" | "fname" | "given_name" | "first" | "your_first_name"
        | "forename" => FieldRole::FirstName,
        "last_name" | "lastname" | "lname" | "surname" | "family_name" | "last"
        | "your_last_name" => FieldRole::LastName,
        "name" | "full_name" | "fullname" | "your_name" | "contact_name" => FieldRole::FullName,
        "company" | "company_name" | "companyname" | "organization" | "organisation" | "org"
        | "business" | "business_name" | "your_company" | "account" => FieldRole::Company,
        "job_title" | "jobtitle" | "title" | "position" | "role" | "your_title" => {
            FieldRole::JobTitle
        }
        "country" | "country_code" | "countrycode" => FieldRole::Country,
        "consent" | "marketing_consent" | "opt_in" | "optin" | "gdpr" | "gdpr_consent"
        | "newsletter" | "subscribe" | "accept_marketing" | "marketing_opt_in" => {
            FieldRole::Consent
        }
        "utm_source" => FieldRole::UtmSource,
        "utm_medium" => FieldRole::UtmMedium,
        "utm_campaign" => FieldRole::UtmCampaign,
        "utm_term" => FieldRole::UtmTerm,
        "utm_content" => FieldRole::UtmContent,
        "gclid" | "gcl_id" => FieldRole::Gclid,
        "fbclid" => FieldRole::Fbclid,
        "li_fat_id" => FieldRole::LiFatId,
        "msclkid" => FieldRole::Msclkid,
        "landing_page" | "page_url" | "pageurl" | "landing_page_url" | "page" => {
            FieldRole::LandingPage
        }
        "referrer" | "referer" | "http_referer" => FieldRole::Referrer,
        "form_id" | "formid" | "form" | "form_name" => FieldRole::FormId,
        "lead_magnet" | "magnet" | "offer" => FieldRole::LeadMagnet,
        _ => FieldRole::Custom,
    }
}

fn strip_question_prefix(n: &str) -> &str {
    if let Some(rest) = n.strip_prefix('q') {
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits > 0 && rest[digits..].starts_with('_') && rest.len() > digits + 1 {
            return &rest[digits + 1..];
        }
    }
    n
}

/// Most custom answers a submission keeps, and the longest value: a form is not a file store.
pub const MAX_CUSTOM_FIELDS: usize = 50;
pub const MAX_FIELD_CHARS: usize = 2000;

/// Reads a yes/no answer the way checkboxes and selects send it. `None` when it is neither.
pub fn parse_yes_no(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "y" | "true" | "on" | "1" | "checked" | "agree" | "agreed" | "accept"
        | "accepted" | "opt-in" | "opt_in" | "subscribe" => Some(true),
        "no" | "n" | "false" | "off" | "0" | "unchecked" | "decline" | "declined" | "opt-out"
        | "opt_out" | "unsubscribe" => Some(false),
        _ => None,
    }
}

fn clip(value: &str) -> Option<String> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    Some(v.chars().take(MAX_FIELD_CHARS).collect())
}

/// Puts one named field into the submission by its role. The first non-empty value of a contact
/// field wins (forms rarely repeat them; when they do, the first is the primary one). Returns the
/// role applied.
pub fn apply_field(sub: &mut Submission, name: &str, value: &str) -> FieldRole {
    let role = field_role(name);
    let Some(v) = clip(value) else {
        return role;
    };
    fn set(slot: &mut Option<String>, v: String) {
        if slot.is_none() {
            *slot = Some(v);
        }
    }
    let c = &mut sub.contact;
    let a = &mut sub.attribution;
    match role {
        FieldRole::Email => set(&mut c.email, v),
        FieldRole::Phone => set(&mut c.phone, v),
        FieldRole::FirstName => set(&mut c.first_name, v),
        FieldRole::LastName => set(&mut c.last_name, v),
        FieldRole::FullName => set(&mut c.full_name, v),
        FieldRole::Company => set(&mut c.company, v),
        FieldRole::JobTitle => set(&mut c.job_title, v),
        FieldRole::Country => set(&mut c.country, v),
        FieldRole::Consent => {
            if let Some(yes) = parse_yes_no(&v) {
                sub.consent = Some(Consent::new(
                    yes,
                    sub.occurred_at,
                    sub.attribution.form_id.clone(),
                ));
            } else {
                // Consent wording sent as the value ("I agree to receive..."): an explicit yes.
                sub.consent = Some(Consent::new(true, sub.occurred_at, Some(v)));
            }
        }
        FieldRole::UtmSource => set(&mut a.utm_source, v),
        FieldRole::UtmMedium => set(&mut a.utm_medium, v),
        FieldRole::UtmCampaign => set(&mut a.utm_campaign, v),
        FieldRole::UtmTerm => set(&mut a.utm_term, v),
        FieldRole::UtmContent => set(&mut a.utm_content, v),
        FieldRole::Gclid => set(&mut a.gclid, v),
        FieldRole::Fbclid => set(&mut a.fbclid, v),
        FieldRole::LiFatId => set(&mut a.li_fat_id, v),
        FieldRole::Msclkid => set(&mut a.msclkid, v),
        FieldRole::LandingPage => set(&mut a.landing_page, v),
        FieldRole::Referrer => set(&mut a.referrer, v),
        FieldRole::FormId => set(&mut a.form_id, v),
        FieldRole::LeadMagnet => set(&mut a.lead_magnet, v),
        FieldRole::Control => {}
        FieldRole::Custom => {
            if sub.custom.len() < MAX_CUSTOM_FIELDS {
                let key = normalize_field_name(name);
                if !key.is_empty() {
                    sub.custom.entry(key).or_insert(v);
                }
            }
        }
    }
    role
}

/// Reads UTM parameters and click ids from a URL's query string (landing pages carry them).
pub fn apply_url_params(sub: &mut Submission, url: &str) {
    let Some((_, query)) = url.split_once('?') else {
        return;
    };
    let query = query.split('#').next().unwrap_or("");
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match field_role(&k) {
            FieldRole::UtmSource
            | FieldRole::UtmMedium
            | FieldRole::UtmCampaign
            | FieldRole::UtmTerm
            | FieldRole::UtmContent
            | FieldRole::Gclid
            | FieldRole::Fbclid
            | FieldRole::LiFatId
            | FieldRole::Msclkid => {
                apply_field(sub, &k, &v);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeliveryKey, TouchKind};
    use chrono::Utc;

    fn sub() -> Submission {
        Submission::new(
            "form",
            DeliveryKey::BodyHash("x".into()),
            TouchKind::FormSubmission,
            Utc::now(),
        )
    }

    #[test]
    fn field_names_as_real_forms_send_them() {
        for name in [
            "email",
            "E-mail",
            "your-email",
            "Email Address",
            "q3_email",
            "work_email",
        ] {
            assert_eq!(field_role(name), FieldRole::Email, "{name}");
        }
        for name in [
            "phone",
            "tel",
            "Phone Number",
            "your-tel",
            "q5_phoneNumber",
            "mobile",
        ] {
            assert_eq!(field_role(name), FieldRole::Phone, "{name}");
        }
        assert_eq!(field_role("fname"), FieldRole::FirstName);
        assert_eq!(field_role("name"), FieldRole::FullName);
        assert_eq!(field_role("_redirect"), FieldRole::Control);
        assert_eq!(field_role("Budget"), FieldRole::Custom);
    }

    #[test]
    fn first_value_wins_and_custom_answers_are_kept() {
        let mut s = sub();
        apply_field(&mut s, "email", " a@example.com ");
        apply_field(&mut s, "work_email", "b@example.com");
        apply_field(&mut s, "Budget (USD)", "10k");
        assert_eq!(s.contact.email.as_deref(), Some("a@example.com"));
        assert_eq!(s.custom.get("budget_usd").map(String::as_str), Some("10k"));
    }

    #[test]
    fn consent_yes_no_and_wording() {
        let mut s = sub();
        apply_field(&mut s, "consent", "no");
        assert!(!s.consent.as_ref().unwrap().marketing_opt_in);
        apply_field(&mut s, "gdpr", "I agree to receive marketing email");
        assert!(s.consent.as_ref().unwrap().marketing_opt_in);
    }

    #[test]
    fn utms_from_landing_url() {
        let mut s = sub();
        apply_url_params(
            &mut s,
            "https://x.io/p?utm_source=Google&utm_medium=cpc&gclid=abc#top",
        );
        assert_eq!(s.attribution.utm_source.as_deref(), Some("Google"));
        assert_eq!(s.attribution.gclid.as_deref(), Some("abc"));
    }
}

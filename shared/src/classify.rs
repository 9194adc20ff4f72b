//! Channel, direction and source of a touch, by documented rules (docs/data-model.md,
//! "Classification"). First matching rule wins:
//!
//! 1. The platform's own hint (Google Ads is paid search, a referral program is referral...).
//! 2. `utm_medium` (cpc/ppc/paid... -> paid search, or paid social when the source is a social
//!    network; social -> organic social; email/newsletter -> email; referral/affiliate/partner ->
//!    referral; review; event/webinar; content/blog; organic -> organic search; display -> other).
//! 3. Click ids: gclid/msclkid -> paid search; li_fat_id -> paid social; fbclid -> organic social
//!    (Meta appends it to organic links too).
//! 4. `utm_source` alone naming a search engine or social network -> organic search / social.
//! 5. Referrer host: search engine -> organic search, social network -> organic social, any other
//!    external site -> referral.
//! 6. Lead magnet kind: `webinar:`/`event:` -> event, `ebook:`/`guide:`/`whitepaper:` -> content.
//! 7. Otherwise direct.
//!
//! Direction is outbound when `utm_medium` names outbound sales work (outbound, cold-email, sdr,
//! prospecting, sales); inbound otherwise. Source is `utm_source` (lowercased), else the
//! platform's name, else the referrer's host, else `direct`. Source and campaign are bounded labels
//! (`limits::label`): at most 100 bytes, a longer value cut and tagged with a hash of the whole.

use crate::limits::label;
use crate::model::{Attribution, Channel, Classification, Direction};

const SEARCH_ENGINES: &[&str] = &[
    "google",
    "bing",
    "yahoo",
    "duckduckgo",
    "baidu",
    "yandex",
    "ecosia",
    "brave",
    "naver",
];
const SOCIAL_NETWORKS: &[&str] = &[
    "facebook",
    "fb",
    "instagram",
    "ig",
    "linkedin",
    "twitter",
    "x",
    "t.co",
    "tiktok",
    "youtube",
    "reddit",
    "pinterest",
    "snapchat",
    "threads",
    "meta",
    "lnkd.in",
];

fn lower(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(|s| s.trim().to_lowercase())
        .filter(|s| !s.is_empty())
}

/// The registrable part of a host, roughly: `www.google.co.uk` -> `google`.
fn host_name(url_or_host: &str) -> Option<String> {
    let s = url_or_host.trim().to_lowercase();
    let s = s.split("://").nth(1).unwrap_or(&s);
    let host = s.split(['/', '?', '#', ':']).next().unwrap_or("");
    if host.is_empty() {
        return None;
    }
    Some(host.trim_start_matches("www.").to_string())
}

fn names_one_of(value: &str, list: &[&str]) -> bool {
    // Matches `google`, `google.com`, `m.facebook.com`, `l.instagram.com`...
    list.iter().any(|name| {
        value == *name
            || value.starts_with(&format!("{name}."))
            || value.contains(&format!(".{name}."))
            || value.ends_with(&format!(".{name}"))
    })
}

fn is_social(source: &str) -> bool {
    names_one_of(source, SOCIAL_NETWORKS)
}

fn is_search(source: &str) -> bool {
    names_one_of(source, SEARCH_ENGINES)
}

fn channel_from_medium(medium: &str, source: Option<&str>) -> Option<Channel> {
    let social_source = source.map(is_social).unwrap_or(false);
    let m = medium.replace(['-', ' '], "_");
    Some(match m.as_str() {
        "cpc" | "ppc" | "paid" | "paidsearch" | "paid_search" | "sem" | "search_ads" | "cpa" => {
            if social_source {
                Channel::PaidSocial
            } else {
                Channel::PaidSearch
            }
        }
        "paid_social" | "paidsocial" | "social_paid" | "social_ads" | "sponsored" | "ads" => {
            Channel::PaidSocial
        }
        "cpm" | "display" | "banner" | "programmatic" | "video" => {
            if social_source {
                Channel::PaidSocial
            } else {
                Channel::Other
            }
        }
        "social" | "social_network" | "social_media" | "sm" | "organic_social" => {
            Channel::OrganicSocial
        }
        "email" | "e_mail" | "newsletter" | "mail" | "drip" | "nurture" => Channel::Email,
        "referral" | "affiliate" | "partner" | "referral_program" => Channel::Referral,
        "review" | "reviews" => Channel::Review,
        "event" | "webinar" | "conference" | "tradeshow" | "trade_show" | "meetup" => {
            Channel::Event
        }
        "content" | "blog" | "ebook" | "whitepaper" | "guide" | "podcast" => Channel::Content,
        "organic" | "seo" | "organic_search" => Channel::OrganicSearch,
        "outbound" | "cold_email" | "sdr" | "prospecting" | "sales" => Channel::Email,
        _ => return None,
    })
}

fn is_outbound(medium: Option<&str>) -> bool {
    matches!(
        medium.map(|m| m.replace(['-', ' '], "_")).as_deref(),
        Some("outbound" | "cold_email" | "sdr" | "prospecting" | "sales")
    )
}

/// Classifies a touch. `provider` is the adapter's name, used as source of last resort.
pub fn classify(
    attribution: &Attribution,
    channel_hint: Option<Channel>,
    source_hint: Option<&str>,
    provider: &str,
) -> Classification {
    let utm_source = lower(&attribution.utm_source);
    let medium = lower(&attribution.utm_medium);
    let referrer_host = attribution.referrer.as_deref().and_then(host_name);

    let channel = channel_hint
        .or_else(|| {
            medium
                .as_deref()
                .and_then(|m| channel_from_medium(m, utm_source.as_deref()))
        })
        .or_else(|| {
            if attribution.gclid.is_some() || attribution.msclkid.is_some() {
                Some(Channel::PaidSearch)
            } else if attribution.li_fat_id.is_some() {
                Some(Channel::PaidSocial)
            } else if attribution.fbclid.is_some() {
                Some(Channel::OrganicSocial)
            } else {
                None
            }
        })
        .or_else(|| {
            utm_source.as_deref().and_then(|s| {
                if is_search(s) {
                    Some(Channel::OrganicSearch)
                } else if is_social(s) {
                    Some(Channel::OrganicSocial)
                } else {
                    None
                }
            })
        })
        .or_else(|| {
            let host = referrer_host.as_deref()?;
            let own_site = attribution
                .landing_page
                .as_deref()
                .and_then(host_name)
                .map(|h| h == host)
                .unwrap_or(false);
            if own_site {
                None
            } else if is_search(host) {
                Some(Channel::OrganicSearch)
            } else if is_social(host) {
                Some(Channel::OrganicSocial)
            } else {
                Some(Channel::Referral)
            }
        })
        .or_else(|| {
            let magnet = lower(&attribution.lead_magnet)?;
            let kind = magnet.split(':').next().unwrap_or("");
            match kind {
                "webinar" | "event" | "conference" | "workshop" => Some(Channel::Event),
                "ebook" | "guide" | "whitepaper" | "report" | "checklist" | "template" => {
                    Some(Channel::Content)
                }
                _ => None,
            }
        })
        .unwrap_or(Channel::Direct);

    // Source and campaign group rollups and become part of their sort keys: bounded labels.
    let source = utm_source
        .or_else(|| source_hint.map(|s| s.to_lowercase()))
        .or(referrer_host)
        .map(|s| label(&s))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| {
            if provider == "form" {
                "direct".to_string()
            } else {
                label(provider)
            }
        });
    let direction = if is_outbound(medium.as_deref()) {
        Direction::Outbound
    } else {
        Direction::Inbound
    };
    let campaign = attribution
        .utm_campaign
        .as_deref()
        .map(label)
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "(none)".to_string());
    Classification {
        channel,
        direction,
        source,
        campaign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(f: impl FnOnce(&mut Attribution)) -> Attribution {
        let mut a = Attribution::default();
        f(&mut a);
        a
    }

    fn channel(a: Attribution) -> Channel {
        classify(&a, None, None, "form").channel
    }

    #[test]
    fn utm_medium_rules() {
        let paid = attr(|a| {
            a.utm_source = Some("Google".into());
            a.utm_medium = Some("CPC".into());
        });
        assert_eq!(channel(paid.clone()), Channel::PaidSearch);
        assert_eq!(classify(&paid, None, None, "form").source, "google");
        let fb_paid = attr(|a| {
            a.utm_source = Some("facebook".into());
            a.utm_medium = Some("cpc".into());
        });
        assert_eq!(channel(fb_paid), Channel::PaidSocial);
        assert_eq!(
            channel(attr(|a| a.utm_medium = Some("newsletter".into()))),
            Channel::Email
        );
        assert_eq!(
            channel(attr(|a| a.utm_medium = Some("affiliate".into()))),
            Channel::Referral
        );
    }

    #[test]
    fn click_ids_and_referrers() {
        assert_eq!(
            channel(attr(|a| a.gclid = Some("x".into()))),
            Channel::PaidSearch
        );
        assert_eq!(
            channel(attr(|a| a.fbclid = Some("x".into()))),
            Channel::OrganicSocial
        );
        assert_eq!(
            channel(attr(
                |a| a.referrer = Some("https://www.google.co.uk/".into())
            )),
            Channel::OrganicSearch
        );
        assert_eq!(
            channel(attr(
                |a| a.referrer = Some("https://l.instagram.com/x".into())
            )),
            Channel::OrganicSocial
        );
        let r = attr(|a| a.referrer = Some("https://blog.partner.io/post".into()));
        assert_eq!(channel(r.clone()), Channel::Referral);
        assert_eq!(classify(&r, None, None, "form").source, "blog.partner.io");
        // Internal navigation is not a referral.
        assert_eq!(
            channel(attr(|a| {
                a.referrer = Some("https://acme.io/pricing".into());
                a.landing_page = Some("https://acme.io/demo".into());
            })),
            Channel::Direct
        );
    }

    #[test]
    fn hints_magnets_direction_and_defaults() {
        let a = attr(|a| a.utm_medium = Some("social".into()));
        assert_eq!(
            classify(
                &a,
                Some(Channel::PaidSearch),
                Some("google_ads"),
                "google-ads"
            )
            .channel,
            Channel::PaidSearch
        );
        assert_eq!(
            channel(attr(|a| a.lead_magnet = Some("webinar:q3".into()))),
            Channel::Event
        );
        assert_eq!(
            channel(attr(|a| a.lead_magnet = Some("ebook:pricing-guide".into()))),
            Channel::Content
        );
        let out = classify(
            &attr(|a| a.utm_medium = Some("cold-email".into())),
            None,
            None,
            "form",
        );
        assert_eq!(out.direction, Direction::Outbound);
        let none = classify(&Attribution::default(), None, None, "form");
        assert_eq!(
            (none.channel, none.source.as_str(), none.campaign.as_str()),
            (Channel::Direct, "direct", "(none)")
        );
    }
}

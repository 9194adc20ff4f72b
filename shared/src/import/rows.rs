//! A list's mapping and its rows as submissions.
//!
//! The mapping says what the list is: `direction` (`inbound`, the default, or `outbound`: a
//! prospect list the team bought or built), `channel` (one of [`Channel`]'s names, e.g.
//! `event`), `source` and `campaign`. It comes from the object's metadata, as separate keys
//! (`x-amz-meta-channel: event`) or one (`x-amz-meta-mapping: channel=event,
//! source=webinar-q4, direction=inbound`), and a column of the same name overrides it per row.
//! A date column (`date`, `registered_at`, `attended_at`...) dates the row's touch; every other
//! column goes through the web forms' field-name rules (`fields::apply_field`), so `E-mail`,
//! `Work Email` and `email_address` all land in the email and the rest are custom answers.
//!
//! Consent is recorded only when a column says so (`consent`, `opt_in`, `gdpr`...): a list is
//! never taken as consent, and an outbound prospect has none unless its row says otherwise.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{FileError, FileRef, RowError, PROVIDER};
use crate::fields::{apply_field, field_role, normalize_field_name, FieldRole};
use crate::limits::label;
use crate::model::{Channel, Direction, Submission, TouchKind};
use crate::report_zone::ReportZone;

/// What the whole list is (object metadata); each may be overridden by a column.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMapping {
    pub direction: Option<Direction>,
    pub channel: Option<Channel>,
    pub source: Option<String>,
    pub campaign: Option<String>,
}

/// The metadata names of the mapping.
const MAPPING_KEYS: [&str; 4] = ["direction", "channel", "source", "campaign"];

impl ListMapping {
    /// The mapping from the object's user metadata (names as S3 gives them: lowercase, without
    /// `x-amz-meta-`). An unknown direction or channel refuses the file: importing a list
    /// under the wrong channel would misreport it for good.
    pub fn from_metadata(meta: &BTreeMap<String, String>) -> Result<ListMapping, FileError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(combined) = meta.get("mapping") {
            for part in combined.split([',', ';']).filter(|p| !p.trim().is_empty()) {
                let Some((k, v)) = part.split_once('=') else {
                    return Err(FileError::Mapping {
                        field: "mapping",
                        message: "expected name=value pairs, e.g. channel=event, direction=inbound"
                            .into(),
                    });
                };
                let k = k.trim().to_ascii_lowercase();
                if !MAPPING_KEYS.contains(&k.as_str()) {
                    return Err(FileError::Mapping {
                        field: "mapping",
                        message: format!(
                            "{:?} is not one of direction, channel, source, campaign",
                            label(&k)
                        ),
                    });
                }
                pairs.push((k, v.trim().to_string()));
            }
        }
        for k in MAPPING_KEYS {
            if let Some(v) = meta.get(k) {
                pairs.push((k.to_string(), v.trim().to_string()));
            }
        }
        let mut m = ListMapping::default();
        for (k, v) in pairs.into_iter().filter(|(_, v)| !v.is_empty()) {
            match k.as_str() {
                "direction" => {
                    m.direction = Some(parse_direction(&v).ok_or_else(|| FileError::Mapping {
                        field: "direction",
                        message: format!("{:?} is not inbound or outbound", label(&v)),
                    })?)
                }
                "channel" => {
                    m.channel = Some(parse_channel(&v).ok_or_else(|| FileError::Mapping {
                        field: "channel",
                        message: format!(
                            "{:?} is not one of {}",
                            label(&v),
                            Channel::ALL
                                .iter()
                                .map(|c| c.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    })?)
                }
                "source" => m.source = Some(label(&v.to_lowercase())),
                _ => m.campaign = Some(label(&v)),
            }
        }
        Ok(m)
    }
}

fn parse_direction(v: &str) -> Option<Direction> {
    Direction::parse(&v.trim().to_ascii_lowercase())
}

fn parse_channel(v: &str) -> Option<Channel> {
    Channel::parse(&normalize_field_name(v))
}

/// What a column means to an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Direction,
    Channel,
    Source,
    Campaign,
    Date,
    /// Through the web forms' field-name rules.
    Field,
}

fn column(name: &str) -> Column {
    match normalize_field_name(name).as_str() {
        "direction" => Column::Direction,
        "channel" => Column::Channel,
        "source" | "lead_source" => Column::Source,
        "campaign" | "campaign_name" => Column::Campaign,
        "date" | "occurred_at" | "registered_at" | "registration_date" | "registration_time"
        | "attended_at" | "join_time" | "created_at" | "submitted_at" | "timestamp" => Column::Date,
        _ => Column::Field,
    }
}

/// Checks a CSV header: its names are kept as given (trimmed); at least one must be an email
/// or phone column, or no row could become a lead.
pub fn check_header(cells: &[String]) -> Result<Vec<String>, FileError> {
    let names: Vec<String> = cells.iter().map(|c| c.trim().to_string()).collect();
    if !names
        .iter()
        .any(|n| matches!(field_role(n), FieldRole::Email | FieldRole::Phone))
    {
        return Err(FileError::NoContactColumn);
    }
    Ok(names)
}

/// A date as lists write them: RFC 3339, or without an offset `YYYY-MM-DD HH:MM[:SS]` or
/// `YYYY-MM-DD`, read on the reporting zone's clock (a list's `2026-10-01` is that reporting
/// day, whatever `REPORT_TIME_ZONE`; with UTC, as UTC).
fn parse_date(v: &str, zone: &ReportZone) -> Option<DateTime<Utc>> {
    let v = v.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(v, f) {
            return Some(zone.instant(t));
        }
    }
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .ok()
        .map(|d| zone.day_start(d))
}

/// One row as a submission: `cells` are (column name, value). Row-level problems (an unknown
/// channel in a channel column, a date that is none) are reported, never guessed around;
/// contact problems are found by normalization, as for web forms.
pub fn submission<'a>(
    file: &FileRef,
    mapping: &ListMapping,
    default_time: DateTime<Utc>,
    zone: &ReportZone,
    row: u64,
    cells: impl Iterator<Item = (&'a str, &'a str)> + Clone,
) -> Result<Submission, RowError> {
    let mut direction = mapping.direction;
    let mut channel = mapping.channel;
    let mut source: Option<String> = None;
    let mut campaign: Option<String> = None;
    let mut at = default_time;
    for (name, value) in cells.clone() {
        let v = value.trim();
        if v.is_empty() {
            continue;
        }
        match column(name) {
            Column::Direction => {
                direction = Some(
                    parse_direction(v)
                        .ok_or_else(|| RowError::new(row, name, "invalid_direction"))?,
                )
            }
            Column::Channel => {
                channel = Some(
                    parse_channel(v).ok_or_else(|| RowError::new(row, name, "invalid_channel"))?,
                )
            }
            Column::Source => source = Some(v.to_string()),
            Column::Campaign => campaign = Some(v.to_string()),
            Column::Date => {
                at = parse_date(v, zone).ok_or_else(|| RowError::new(row, name, "invalid_date"))?
            }
            Column::Field => {}
        }
    }
    let direction = direction.unwrap_or(Direction::Inbound);
    let kind = if channel == Some(Channel::Event) {
        TouchKind::Event
    } else if direction == Direction::Outbound {
        TouchKind::ListImport
    } else {
        TouchKind::FormSubmission
    };
    let mut sub = Submission::new(PROVIDER, file.delivery(row), kind, at);
    for (name, value) in cells {
        if column(name) == Column::Field {
            apply_field(&mut sub, name, value);
        }
    }
    // A row's own source and campaign columns win over its UTM columns; the list's mapping
    // only fills what the row leaves empty.
    if source.is_some() {
        sub.attribution.utm_source = source;
    }
    if campaign.is_some() {
        sub.attribution.utm_campaign = campaign;
    }
    if sub.attribution.utm_campaign.is_none() {
        sub.attribution.utm_campaign = mapping.campaign.clone();
    }
    sub.source_hint = mapping.source.clone();
    sub.channel_hint = channel;
    sub.direction_hint = Some(direction);
    Ok(sub)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::{normalize, NormalizeConfig};

    fn file() -> FileRef {
        FileRef {
            bucket: "b".into(),
            key: "incoming/list.csv".into(),
            version_id: "v1".into(),
        }
    }

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn row(
        mapping: &ListMapping,
        cells: &[(&'static str, &'static str)],
    ) -> Result<Submission, RowError> {
        submission(
            &file(),
            mapping,
            "2026-11-02T10:00:00Z".parse().unwrap(),
            &ReportZone::utc(),
            2,
            cells.iter().copied(),
        )
    }

    #[test]
    fn mapping_from_metadata_keys_or_one_line() {
        let m = ListMapping::from_metadata(&meta(&[(
            "mapping",
            "channel=event, source=Webinar-Q4, direction=inbound",
        )]))
        .unwrap();
        assert_eq!(m.channel, Some(Channel::Event));
        assert_eq!(m.source.as_deref(), Some("webinar-q4"));
        assert_eq!(m.direction, Some(Direction::Inbound));
        let m = ListMapping::from_metadata(&meta(&[
            ("direction", "Outbound"),
            ("campaign", "Q1 ABM"),
            ("unrelated", "x"),
        ]))
        .unwrap();
        assert_eq!(m.direction, Some(Direction::Outbound));
        assert_eq!(m.campaign.as_deref(), Some("Q1 ABM"));
    }

    #[test]
    fn unknown_channel_direction_or_name_refuses_the_file() {
        for bad in [
            meta(&[("channel", "carrier-pigeon")]),
            meta(&[("direction", "sideways")]),
            meta(&[("mapping", "chanel=event")]),
            meta(&[("mapping", "event")]),
        ] {
            let e = ListMapping::from_metadata(&bad).unwrap_err();
            assert_eq!(e.code(), "invalid_mapping", "{bad:?}");
        }
    }

    #[test]
    fn header_needs_a_contact_column() {
        assert!(check_header(&["E-mail".into(), "Vorname".into()]).is_ok());
        assert!(check_header(&[" Phone Number ".into()]).is_ok());
        assert_eq!(
            check_header(&["name".into(), "company".into()]).unwrap_err(),
            FileError::NoContactColumn
        );
    }

    #[test]
    fn rows_go_through_the_form_field_rules_with_the_lists_mapping() {
        let m = ListMapping {
            channel: Some(Channel::Event),
            source: Some("webinar-q4".into()),
            ..Default::default()
        };
        let s = row(
            &m,
            &[
                ("E-Mail", "ada@example.com"),
                ("First Name", "Ada"),
                ("Company", "Analytical"),
                ("Budget", "10k"),
            ],
        )
        .unwrap();
        assert_eq!(s.kind, TouchKind::Event);
        assert_eq!(s.provider, PROVIDER);
        assert_eq!(s.delivery, file().delivery(2));
        assert!(s.consent.is_none(), "a list is not consent");
        let n = normalize(s, &NormalizeConfig::default()).unwrap();
        assert_eq!(n.classification.channel, Channel::Event);
        assert_eq!(n.classification.direction, Direction::Inbound);
        assert_eq!(n.classification.source, "webinar-q4");
        assert_eq!(n.custom.get("budget").map(String::as_str), Some("10k"));
    }

    #[test]
    fn outbound_rows_carry_no_consent_unless_a_column_says_so() {
        let m = ListMapping {
            direction: Some(Direction::Outbound),
            source: Some("zoominfo".into()),
            ..Default::default()
        };
        let s = row(&m, &[("email", "p@example.com")]).unwrap();
        assert_eq!(s.kind, TouchKind::ListImport);
        assert!(s.consent.is_none());
        let n = normalize(s, &NormalizeConfig::default()).unwrap();
        assert_eq!(n.classification.direction, Direction::Outbound);
        let s = row(&m, &[("email", "p@example.com"), ("opt_in", "yes")]).unwrap();
        assert!(s.consent.unwrap().marketing_opt_in);
    }

    #[test]
    fn columns_override_the_mapping_and_are_checked() {
        let m = ListMapping::default();
        let s = row(
            &m,
            &[
                ("email", "a@example.com"),
                ("Direction", "outbound"),
                ("channel", "Paid Social"),
                ("date", "2026-10-01"),
                ("campaign", "spring"),
            ],
        )
        .unwrap();
        assert_eq!(s.direction_hint, Some(Direction::Outbound));
        assert_eq!(s.channel_hint, Some(Channel::PaidSocial));
        assert_eq!(s.occurred_at.to_rfc3339(), "2026-10-01T00:00:00+00:00");
        assert_eq!(s.attribution.utm_campaign.as_deref(), Some("spring"));
        let e = row(&m, &[("email", "a@example.com"), ("channel", "fax")]).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.code.as_str()),
            ("channel", "invalid_channel")
        );
        let e = row(&m, &[("email", "a@example.com"), ("Registered At", "soon")]).unwrap_err();
        assert_eq!(e.code, "invalid_date");
        assert_eq!(e.row, 2);
    }

    #[test]
    fn dates_without_an_offset_are_on_the_reporting_zones_clock() {
        let la = ReportZone::parse("America/Los_Angeles").unwrap();
        let at = |v: &str| {
            let cells = [("email", "a@example.com"), ("date", v)];
            let s = submission(
                &file(),
                &ListMapping::default(),
                "2026-11-02T10:00:00Z".parse().unwrap(),
                &la,
                2,
                cells.iter().copied(),
            )
            .unwrap();
            (
                s.occurred_at.to_rfc3339(),
                la.day(s.occurred_at).to_string(),
            )
        };
        // A day is that reporting day (its local midnight), an evening stays on its day.
        assert_eq!(
            at("2026-10-01"),
            ("2026-10-01T07:00:00+00:00".into(), "2026-10-01".into())
        );
        assert_eq!(
            at("2026-10-01 23:30"),
            ("2026-10-02T06:30:00+00:00".into(), "2026-10-01".into())
        );
        // An offset says it all.
        assert_eq!(
            at("2026-10-02T06:30:00Z"),
            ("2026-10-02T06:30:00+00:00".into(), "2026-10-01".into())
        );
    }
}

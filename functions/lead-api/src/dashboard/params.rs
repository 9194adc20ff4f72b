//! What the dashboard is asked for: a day range, filters and the campaign table's order, all
//! from the query string of a plain GET form. Every value is checked: a bad date or range is
//! 422 (as on `GET /metrics`), an unknown channel, sort or direction is 400, each naming its
//! field. The page's own links and form carry the same parameters back.

use chrono::{Duration, NaiveDate};
use leadflow::edge::{AppError, InboundRequest};
use leadflow::limits::label;
use leadflow::model::Channel;

use crate::reports::days_between;

leadflow::named_enum! {
    /// The campaign table's columns, by the name `?sort=` takes.
    pub enum SortKey {
        Campaign = "campaign",
        Source = "source",
        Leads = "leads",
        Mqls = "mqls",
        Customers = "customers",
        Spend = "spend",
        Cpl = "cpl",
        Conversion = "conversion",
    }
}

leadflow::named_enum! {
    pub enum Dir {
        Asc = "asc", Desc = "desc",
    }
}

impl SortKey {
    /// The order a column is first sorted in: names A to Z, numbers largest first, cost per
    /// lead cheapest first.
    pub fn natural_dir(self) -> Dir {
        match self {
            SortKey::Campaign | SortKey::Source | SortKey::Cpl => Dir::Asc,
            _ => Dir::Desc,
        }
    }
}

/// Which rollup rows (and call-list leads) the page counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub channel: Option<Channel>,
    pub source: Option<String>,
    pub campaign: Option<String>,
}

impl Filter {
    pub fn matches(&self, channel: &str, source: &str, campaign: &str) -> bool {
        self.channel.is_none_or(|c| c.as_str() == channel)
            && self.source.as_deref().is_none_or(|s| s == source)
            && self.campaign.as_deref().is_none_or(|c| c == campaign)
    }

    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }
}

#[derive(Debug, Clone)]
pub struct Params {
    /// The range, `YYYY-MM-DD`, oldest first (at least one day).
    pub days: Vec<String>,
    pub today: NaiveDate,
    pub filter: Filter,
    pub sort: SortKey,
    pub dir: Dir,
    /// The dashboard-only key the page was opened with (`?key=`): its links and form carry it.
    pub key: Option<String>,
}

impl Params {
    pub fn parse(req: &InboundRequest, today: NaiveDate) -> Result<Params, AppError> {
        let get = |name: &str| field(req, name);
        let days = days_between(get("from"), get("to"), today)?;
        let channel = get("channel")
            .map(|c| {
                Channel::parse(c).ok_or_else(|| {
                    AppError::bad_request(
                        "invalid_value",
                        "channel",
                        format!(
                            "channel must be one of {}",
                            names(&Channel::ALL, Channel::as_str)
                        ),
                    )
                })
            })
            .transpose()?;
        let sort = get("sort")
            .map(|s| {
                SortKey::parse(s).ok_or_else(|| {
                    AppError::bad_request(
                        "invalid_value",
                        "sort",
                        format!(
                            "sort must be one of {}",
                            names(&SortKey::ALL, SortKey::as_str)
                        ),
                    )
                })
            })
            .transpose()?
            .unwrap_or(SortKey::Leads);
        let dir = get("dir")
            .map(|d| {
                Dir::parse(d).ok_or_else(|| {
                    AppError::bad_request("invalid_value", "dir", "dir must be asc or desc")
                })
            })
            .transpose()?
            .unwrap_or(sort.natural_dir());
        Ok(Params {
            days,
            today,
            filter: Filter {
                channel,
                // Stored sources and campaigns are bounded labels (`limits::label`): a longer
                // value can only match in its bounded form.
                source: get("source").map(label),
                campaign: get("campaign").map(label),
            },
            sort,
            dir,
            key: req.query.get("key").cloned(),
        })
    }

    pub fn from(&self) -> &str {
        self.days.first().map(String::as_str).unwrap_or_default()
    }

    pub fn to(&self) -> &str {
        self.days.last().map(String::as_str).unwrap_or_default()
    }

    /// The range of the last `n` days up to today (a preset).
    pub fn last_days(&self, n: i64) -> (String, String) {
        (
            (self.today - Duration::days(n - 1)).to_string(),
            self.today.to_string(),
        )
    }

    /// A link to this page with `changes` applied (a value of "" drops the parameter), as a
    /// relative URL (`?from=...`), not yet HTML-escaped.
    pub fn href(&self, changes: &[(&str, &str)]) -> String {
        let channel = self.filter.channel.map(|c| c.as_str()).unwrap_or_default();
        let current: [(&str, &str); 8] = [
            ("from", self.from()),
            ("to", self.to()),
            ("channel", channel),
            ("source", self.filter.source.as_deref().unwrap_or_default()),
            (
                "campaign",
                self.filter.campaign.as_deref().unwrap_or_default(),
            ),
            ("sort", self.sort.as_str()),
            ("dir", self.dir.as_str()),
            ("key", self.key.as_deref().unwrap_or_default()),
        ];
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in current {
            let value = changes
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(value, |(_, v)| *v);
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        format!("?{}", query.finish())
    }
}

/// A query parameter; an empty field of the form means "not set".
fn field<'a>(req: &'a InboundRequest, name: &str) -> Option<&'a str> {
    req.query
        .get(name)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> String {
    all.iter().map(|v| name(*v)).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(query: &[(&str, &str)]) -> InboundRequest {
        let mut r = InboundRequest::default();
        for (k, v) in query {
            r.query.insert(k.to_string(), v.to_string());
        }
        r
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
    }

    #[test]
    fn defaults_and_empty_form_fields() {
        let p = Params::parse(
            &req(&[("from", ""), ("to", " "), ("channel", ""), ("sort", "")]),
            today(),
        )
        .unwrap();
        assert_eq!((p.from(), p.to()), ("2026-11-01", "2026-11-30"));
        assert_eq!(p.days.len(), 30);
        assert!(p.filter.is_empty());
        assert_eq!((p.sort, p.dir), (SortKey::Leads, Dir::Desc));
    }

    #[test]
    fn unknown_values_name_their_field() {
        for (name, value, status) in [
            ("sort", "planet", 400),
            ("sort", "LEADS", 400),
            ("dir", "up", 400),
            ("channel", "tv", 400),
            ("from", "2026-02-30", 422),
            ("from", "2024-01-01", 422),
        ] {
            let e = Params::parse(&req(&[(name, value)]), today()).unwrap_err();
            assert_eq!(e.status(), status, "{name}={value}");
            assert_eq!(e.field(), Some(name), "{name}={value}");
        }
    }

    #[test]
    fn links_keep_the_state_and_encode_values() {
        let p = Params::parse(
            &req(&[
                ("from", "2026-10-01"),
                ("to", "2026-10-31"),
                ("source", "a&b=c"),
                ("sort", "cpl"),
                ("key", "k 1"),
            ]),
            today(),
        )
        .unwrap();
        assert_eq!(p.dir, Dir::Asc, "cost per lead sorts cheapest first");
        assert_eq!(
            p.href(&[("sort", "spend"), ("dir", "desc")]),
            "?from=2026-10-01&to=2026-10-31&source=a%26b%3Dc&sort=spend&dir=desc&key=k+1"
        );
        assert!(!p.href(&[("source", "")]).contains("source"));
        assert_eq!(
            p.last_days(7),
            ("2026-11-24".to_string(), "2026-11-30".to_string())
        );
        assert!(Filter {
            source: Some("a&b=c".into()),
            ..Default::default()
        }
        .matches("paid_search", "a&b=c", "x"));
    }
}

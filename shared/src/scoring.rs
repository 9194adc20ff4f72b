//! Lead scoring: fit (who the person is) + engagement (what they did, decayed over time), one
//! 0-100 total, a temperature and a forward-only stage. Pure: no I/O, no AWS types. The store
//! feeds it lead attributes and touches; ingest and the scheduled rescore call the same code.
//!
//! Every weight, rule, threshold and the half-life live in one versioned JSON document
//! ([`ScoringConfig`]); [`ScoringConfig::default`] is the built-in one and a stored document
//! replaces it whole. Unknown keys and out-of-range values are rejected with a message naming
//! the field, so a typo never silently scores every lead with a default.
//!
//! - Fit: the first matching job-title rule (seniority words), company present, business vs free
//!   email domain, the first matching country rule, phone present, custom answers. Clamped to
//!   `0..=fit.max`.
//! - Engagement: points per touch kind, each touch decayed by `0.5^(age / half_life)`; per kind
//!   and UTC day at most `daily_cap` undecayed points count, so one noisy source (a page-view
//!   storm, a form posted twenty times) cannot dominate. Clamped to `0..=engagement.max`.
//! - Total: `fit + engagement`, rounded, clamped to 0..=100. Temperature: `hot` at or above
//!   `thresholds.hot`, `warm` at or above `thresholds.warm`, else `cold`. Stage: `lead` moves to
//!   `mql` at `thresholds.mql`; SQL and customer come from sales events; never backwards, so a
//!   lead that cools down keeps its stage and only its temperature drops.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Stage, Temperature, TouchKind};
use crate::predict::PredictSettings;

/// How many contributing rules are stored with a score (largest absolute contribution first).
pub const TOP_REASONS: usize = 5;

const MAX_RULE_POINTS: f64 = 100.0;
const MAX_RULES: usize = 200;
const MAX_WORDS: usize = 500;

/// The whole scoring configuration. `version` is stored on every scored lead, so a score can
/// always be traced back to the rules that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    pub version: u32,
    /// Engagement halves every `half_life_days` (decimal days allowed).
    pub half_life_days: f64,
    pub thresholds: Thresholds,
    pub fit: FitRules,
    pub engagement: EngagementRules,
    /// The predictive score (`crate::predict`): how it is trained and whether it may raise the
    /// temperature. Optional in a stored document; off (never changes a temperature) by default.
    #[serde(default)]
    pub prediction: PredictionRules,
}

/// How the predictive score is trained, and the predicted conversion at which a lead is warm or
/// hot whatever its rules score (e.g. hot at a score of 65 *or* a predicted conversion of 0.3).
/// It only ever raises a temperature, and never the stage: MQL stays a rules decision.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PredictionRules {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hot_at: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_at: Option<f64>,
    pub training: PredictSettings,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    pub warm: u32,
    pub hot: u32,
    /// A lead at or above this score becomes an MQL (once; stages never move back).
    pub mql: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitRules {
    /// Upper bound of the fit part.
    pub max: f64,
    /// Tried in order; the first rule with a word found in the job title counts.
    pub job_title: Vec<WordRule>,
    pub company_present: f64,
    pub business_email: f64,
    pub free_email: f64,
    /// Domains of free mailbox providers (lowercase).
    pub free_email_domains: Vec<String>,
    /// Tried in order; the first rule listing the lead's country (ISO alpha-2) counts.
    pub country: Vec<CountryRule>,
    pub phone_present: f64,
    /// Answers to custom questions (`budget`, `timeline`...).
    pub custom: Vec<AnswerRule>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WordRule {
    pub name: String,
    /// Words or phrases matched case-insensitively on word boundaries (`vp` matches
    /// "VP Marketing", not "mvp").
    pub any_of: Vec<String>,
    pub points: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountryRule {
    pub name: String,
    pub codes: Vec<String>,
    pub points: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerRule {
    pub name: String,
    /// The custom answer's key as stored on the lead.
    pub question: String,
    /// Answer (case-insensitive, trimmed) -> points.
    pub answers: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngagementRules {
    pub max: f64,
    /// Points per touch kind; a kind not listed scores nothing.
    pub kinds: BTreeMap<TouchKind, KindRule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindRule {
    pub points: f64,
    /// Most undecayed points this kind earns per UTC day (absolute value for negative kinds).
    pub daily_cap: f64,
}

/// A configuration that cannot be used, with a message naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid scoring configuration: {0}")]
pub struct ConfigError(pub String);

/// The built-in configuration as operators edit it (JSON, the format of `set_config`),
/// compiled in: fit up to 50, engagement up to 50, 30-day half-life.
pub const DEFAULT_JSON: &str = include_str!("scoring_default.json");

impl Default for ScoringConfig {
    /// [`DEFAULT_JSON`], parsed and validated once per process. It cannot fail at run time: the
    /// file is fixed at compile time and `the_built_in_configuration_is_valid_json` checks it.
    fn default() -> Self {
        static DEFAULT: std::sync::LazyLock<ScoringConfig> = std::sync::LazyLock::new(|| {
            ScoringConfig::from_json(DEFAULT_JSON)
                .expect("scoring_default.json is a valid configuration (tested)")
        });
        DEFAULT.clone()
    }
}

impl ScoringConfig {
    /// Parses and validates a JSON configuration.
    pub fn from_json(text: &str) -> Result<ScoringConfig, ConfigError> {
        let cfg: ScoringConfig =
            serde_json::from_str(text).map_err(|e| ConfigError(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Every out-of-range value, reported together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut errs: Vec<String> = Vec::new();
        let mut points = |path: String, v: f64, lo: f64, hi: f64| {
            if !(v.is_finite() && v >= lo && v <= hi) {
                errs.push(format!("{path} must be between {lo} and {hi}, got {v}"));
            }
        };
        if self.version == 0 {
            points("version".into(), 0.0, 1.0, f64::from(u32::MAX));
        }
        points("half_life_days".into(), self.half_life_days, 0.1, 3650.0);
        points("fit.max".into(), self.fit.max, 0.0, 100.0);
        points("engagement.max".into(), self.engagement.max, 0.0, 100.0);
        let rule_points = |path: String, v: f64, pts: &mut dyn FnMut(String, f64, f64, f64)| {
            pts(path, v, -MAX_RULE_POINTS, MAX_RULE_POINTS)
        };
        for (i, r) in self.fit.job_title.iter().enumerate() {
            rule_points(format!("fit.job_title[{i}].points"), r.points, &mut points);
        }
        rule_points(
            "fit.company_present".into(),
            self.fit.company_present,
            &mut points,
        );
        rule_points(
            "fit.business_email".into(),
            self.fit.business_email,
            &mut points,
        );
        rule_points("fit.free_email".into(), self.fit.free_email, &mut points);
        rule_points(
            "fit.phone_present".into(),
            self.fit.phone_present,
            &mut points,
        );
        for (i, r) in self.fit.country.iter().enumerate() {
            rule_points(format!("fit.country[{i}].points"), r.points, &mut points);
        }
        for (i, r) in self.fit.custom.iter().enumerate() {
            for (answer, v) in &r.answers {
                rule_points(
                    format!("fit.custom[{i}].answers.{answer:?}"),
                    *v,
                    &mut points,
                );
            }
        }
        for (kind, r) in &self.engagement.kinds {
            let k = kind.as_str();
            rule_points(
                format!("engagement.kinds.{k}.points"),
                r.points,
                &mut points,
            );
            points(
                format!("engagement.kinds.{k}.daily_cap"),
                r.daily_cap,
                0.0,
                MAX_RULE_POINTS,
            );
        }
        let t = &self.thresholds;
        for (name, v) in [("warm", t.warm), ("hot", t.hot), ("mql", t.mql)] {
            if !(1..=100).contains(&v) {
                errs.push(format!(
                    "thresholds.{name} must be between 1 and 100, got {v}"
                ));
            }
        }
        if t.warm >= t.hot {
            errs.push(format!(
                "thresholds.warm ({}) must be below thresholds.hot ({})",
                t.warm, t.hot
            ));
        }
        let mut names: Vec<(String, &str)> = Vec::new();
        names.extend(
            self.fit
                .job_title
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("fit.job_title[{i}].name"), r.name.as_str())),
        );
        names.extend(
            self.fit
                .country
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("fit.country[{i}].name"), r.name.as_str())),
        );
        names.extend(
            self.fit
                .custom
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("fit.custom[{i}].name"), r.name.as_str())),
        );
        if names.len() > MAX_RULES {
            errs.push(format!(
                "at most {MAX_RULES} named rules, got {}",
                names.len()
            ));
        }
        for (path, name) in &names {
            let ok = !name.is_empty()
                && name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !ok {
                errs.push(format!(
                    "{path} must be 1-64 characters of a-z, 0-9, _ or -, got {name:?}"
                ));
            }
        }
        for (i, r) in self.fit.job_title.iter().enumerate() {
            if r.any_of.is_empty() || r.any_of.iter().any(|w| w.trim().is_empty()) {
                errs.push(format!(
                    "fit.job_title[{i}].any_of must list non-empty words"
                ));
            }
        }
        for (i, r) in self.fit.country.iter().enumerate() {
            if let Some(bad) = r
                .codes
                .iter()
                .find(|c| c.len() != 2 || !c.chars().all(|ch| ch.is_ascii_uppercase()))
            {
                errs.push(format!(
                    "fit.country[{i}].codes must be ISO alpha-2 codes like \"US\", got {bad:?}"
                ));
            }
        }
        for (i, r) in self.fit.custom.iter().enumerate() {
            if r.question.trim().is_empty() {
                errs.push(format!("fit.custom[{i}].question must not be empty"));
            }
        }
        let words: usize = self
            .fit
            .job_title
            .iter()
            .map(|r| r.any_of.len())
            .sum::<usize>()
            + self.fit.free_email_domains.len()
            + self
                .fit
                .country
                .iter()
                .map(|r| r.codes.len())
                .sum::<usize>()
            + self
                .fit
                .custom
                .iter()
                .map(|r| r.answers.len())
                .sum::<usize>();
        if words > MAX_WORDS * 4 {
            errs.push(format!(
                "at most {} words and codes in total",
                MAX_WORDS * 4
            ));
        }
        let pr = &self.prediction;
        for (name, v) in [("hot_at", pr.hot_at), ("warm_at", pr.warm_at)] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && (0.0..=1.0).contains(v))) {
                errs.push(format!(
                    "prediction.{name} must be between 0 and 1, got {v}"
                ));
            }
        }
        if let (Some(w), Some(h)) = (pr.warm_at, pr.hot_at) {
            if w > h {
                errs.push(format!(
                    "prediction.warm_at ({w}) must not be above prediction.hot_at ({h})"
                ));
            }
        }
        errs.extend(pr.training.problems("prediction.training"));
        if errs.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(errs.join("; ")))
        }
    }

    /// Words lowercased once, so scoring a lead does no allocation per rule word.
    fn prepared(&self) -> Prepared {
        Prepared {
            titles: self
                .fit
                .job_title
                .iter()
                .map(|r| {
                    r.any_of
                        .iter()
                        .map(|w| w.trim().to_lowercase())
                        .collect::<Vec<_>>()
                })
                .collect(),
            free: self
                .fit
                .free_email_domains
                .iter()
                .map(|d| d.trim().to_lowercase())
                .collect(),
            answers: self
                .fit
                .custom
                .iter()
                .map(|r| {
                    r.answers
                        .iter()
                        .map(|(a, p)| (a.trim().to_lowercase(), *p))
                        .collect()
                })
                .collect(),
        }
    }
}

struct Prepared {
    titles: Vec<Vec<String>>,
    free: Vec<String>,
    answers: Vec<HashMap<String, f64>>,
}

/// A configuration ready to score many leads (lowercased rule words kept beside it).
pub struct Model {
    cfg: ScoringConfig,
    prepared: Prepared,
}

impl Model {
    /// Validates and prepares `cfg`.
    pub fn new(cfg: ScoringConfig) -> Result<Model, ConfigError> {
        cfg.validate()?;
        let prepared = cfg.prepared();
        Ok(Model { cfg, prepared })
    }

    pub fn config(&self) -> &ScoringConfig {
        &self.cfg
    }

    /// The built-in configuration's model.
    pub fn builtin() -> &'static Model {
        static BUILTIN: std::sync::OnceLock<Model> = std::sync::OnceLock::new();
        BUILTIN.get_or_init(|| {
            let cfg = ScoringConfig::default();
            let prepared = cfg.prepared();
            Model { cfg, prepared }
        })
    }
}

/// What the model knows about the person (no touches).
#[derive(Debug, Clone, Copy)]
pub struct Profile<'a> {
    pub job_title: Option<&'a str>,
    pub company: Option<&'a str>,
    /// The email's domain (any case); `None` when the lead has no email.
    pub email_domain: Option<&'a str>,
    /// ISO alpha-2 when known.
    pub country: Option<&'a str>,
    pub has_phone: bool,
    pub custom: &'a BTreeMap<String, String>,
}

impl<'a> Profile<'a> {
    /// The domain part of an address.
    pub fn domain_of(email: &str) -> Option<&str> {
        email
            .rsplit_once('@')
            .map(|(_, d)| d)
            .filter(|d| !d.is_empty())
    }
}

/// One engagement signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    pub kind: TouchKind,
    pub at: DateTime<Utc>,
}

/// One rule's contribution to a score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub rule: String,
    /// Rounded to one decimal.
    pub points: f64,
}

/// A scored lead.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    pub score: u32,
    pub fit: f64,
    pub engagement: f64,
    pub temperature: Temperature,
    /// The stage after applying the MQL threshold to `current` (never lower than it).
    pub stage: Stage,
    /// The top contributing rules, largest absolute contribution first.
    pub reasons: Vec<Reason>,
    pub config_version: u32,
}

impl Model {
    /// Scores a lead at `now`. `current` is the lead's stage: it only ever moves forward.
    pub fn assess(
        &self,
        profile: &Profile<'_>,
        touches: &[Touch],
        current: Stage,
        now: DateTime<Utc>,
    ) -> Assessment {
        let mut reasons: Vec<(String, f64)> = Vec::new();
        let fit = self.fit(profile, &mut reasons);
        let engagement = self.engagement(touches, now, &mut reasons);
        let score = (fit + engagement).round().clamp(0.0, 100.0) as u32;
        let t = &self.cfg.thresholds;
        let temperature = temperature_for(score, t);
        let stage = if current == Stage::Lead && score >= t.mql {
            Stage::Mql
        } else {
            current
        };
        reasons.retain(|(_, p)| p.abs() >= 0.05);
        reasons.sort_by(|a, b| {
            b.1.abs()
                .partial_cmp(&a.1.abs())
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.0.cmp(&b.0))
        });
        reasons.truncate(TOP_REASONS);
        Assessment {
            score,
            fit,
            engagement,
            temperature,
            stage,
            reasons: reasons
                .into_iter()
                .map(|(rule, p)| Reason {
                    rule,
                    points: (p * 10.0).round() / 10.0,
                })
                .collect(),
            config_version: self.cfg.version,
        }
    }

    fn fit(&self, p: &Profile<'_>, reasons: &mut Vec<(String, f64)>) -> f64 {
        let f = &self.cfg.fit;
        let mut total = 0.0;
        let mut add = |rule: &str, pts: f64| {
            if pts != 0.0 {
                total += pts;
                reasons.push((rule.to_string(), pts));
            }
        };
        if let Some(i) = p.job_title.and_then(|t| self.title_rule_index(t)) {
            add(&f.job_title[i].name, f.job_title[i].points);
        }
        if p.company.map(|c| !c.trim().is_empty()).unwrap_or(false) {
            add("company_present", f.company_present);
        }
        if let Some(domain) = p.email_domain {
            if self.is_free_email_domain(domain) {
                add("free_email", f.free_email);
            } else {
                add("business_email", f.business_email);
            }
        }
        if let Some(country) = p.country.map(str::trim) {
            if let Some(r) = f
                .country
                .iter()
                .find(|r| r.codes.iter().any(|c| c.eq_ignore_ascii_case(country)))
            {
                add(&r.name, r.points);
            }
        }
        if p.has_phone {
            add("phone_present", f.phone_present);
        }
        for (i, r) in f.custom.iter().enumerate() {
            let Some(answer) = p.custom.get(&r.question) else {
                continue;
            };
            let answer = answer.trim().to_lowercase();
            if let Some(pts) = self.prepared.answers[i].get(&answer) {
                add(&r.name, *pts);
            }
        }
        total.clamp(0.0, f.max)
    }

    /// Raises the temperature to what the predicted conversion reaches under
    /// `prediction.hot_at` / `warm_at` (when configured); never lowers it, never moves the stage.
    pub fn apply_prediction(&self, a: &mut Assessment, predicted_conversion: f64) {
        let pr = &self.cfg.prediction;
        let reached = |at: Option<f64>| at.is_some_and(|at| predicted_conversion >= at);
        if reached(pr.hot_at) {
            a.temperature = Temperature::Hot;
        } else if reached(pr.warm_at) && a.temperature == Temperature::Cold {
            a.temperature = Temperature::Warm;
        }
    }

    /// The name of the first job-title rule matching `title` (the seniority ladder of this
    /// configuration), if any. The predictive model reads seniority through it too, so both
    /// scores share one list of words.
    pub fn title_rule(&self, title: &str) -> Option<&str> {
        self.title_rule_index(title)
            .map(|i| self.cfg.fit.job_title[i].name.as_str())
    }

    fn title_rule_index(&self, title: &str) -> Option<usize> {
        let title = title.trim();
        if title.is_empty() {
            return None;
        }
        let title = title.to_lowercase();
        self.prepared
            .titles
            .iter()
            .position(|words| words.iter().any(|w| contains_word(&title, w)))
    }

    /// Whether `domain` (any case, surrounding spaces ignored) is a free mailbox provider of
    /// this configuration.
    pub fn is_free_email_domain(&self, domain: &str) -> bool {
        let domain = domain.trim().to_ascii_lowercase();
        self.prepared.free.contains(&domain)
    }

    fn engagement(
        &self,
        touches: &[Touch],
        now: DateTime<Utc>,
        reasons: &mut Vec<(String, f64)>,
    ) -> f64 {
        let e = &self.cfg.engagement;
        let half_life_secs = self.cfg.half_life_days * 86_400.0;
        // Undecayed points already counted per (kind, day): the cap applies to raw points, so a
        // capped day decays like any other. Days here are UTC days, not reporting days
        // (`REPORT_TIME_ZONE`): the cap only limits how much one burst of touches can add, a
        // score must not change when the reporting zone does, and scoring stays pure (no zone
        // to thread through ingest, rescore and lead-events).
        let mut used: HashMap<(TouchKind, NaiveDate), f64> = HashMap::new();
        let mut per_kind: BTreeMap<TouchKind, f64> = BTreeMap::new();
        let mut order: Vec<&Touch> = touches.iter().collect();
        // Oldest first, so which touches fill a day's cap does not depend on input order.
        order.sort_by_key(|t| t.at);
        for t in order {
            let Some(rule) = e.kinds.get(&t.kind) else {
                continue;
            };
            let slot = used.entry((t.kind, t.at.date_naive())).or_insert(0.0);
            let room = (rule.daily_cap - *slot).max(0.0);
            let raw = rule.points.abs().min(room);
            if raw <= 0.0 {
                continue;
            }
            *slot += raw;
            // A touch from the future (clock skew) counts as now, never more.
            let age = (now - t.at).num_milliseconds().max(0) as f64 / 1000.0;
            let decay = 0.5f64.powf(age / half_life_secs);
            *per_kind.entry(t.kind).or_insert(0.0) += raw.copysign(rule.points) * decay;
        }
        let mut total = 0.0;
        for (kind, pts) in per_kind {
            total += pts;
            reasons.push((format!("engagement_{}", kind.as_str()), pts));
        }
        total.clamp(0.0, e.max)
    }
}

/// Temperature for a score.
pub fn temperature_for(score: u32, t: &Thresholds) -> Temperature {
    if score >= t.hot {
        Temperature::Hot
    } else if score >= t.warm {
        Temperature::Warm
    } else {
        Temperature::Cold
    }
}

/// `word` (already lowercase) appears in `text` (lowercase) between non-alphanumeric characters.
fn contains_word(text: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(pos) = text[from..].find(word) {
        let start = from + pos;
        let end = start + word.len();
        let before_ok = start == 0 || !bytes[start - 1].is_ascii_alphanumeric();
        let after_ok = end == bytes.len() || !bytes[end].is_ascii_alphanumeric();
        if before_ok && after_ok {
            return true;
        }
        // Advance past this match's first character (a char boundary: `find` returned one).
        from = start
            + text[start..]
                .chars()
                .next()
                .map(char::len_utf8)
                .unwrap_or(1);
    }
    false
}

/// Reasons as one short line for logs (rule names only, never personal data).
pub fn reasons_line(reasons: &[Reason]) -> String {
    let mut out = String::new();
    for (i, r) in reasons.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}:{:+}", r.rule, r.points);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn the_built_in_configuration_is_valid_json() {
        let cfg = ScoringConfig::from_json(DEFAULT_JSON).expect("valid");
        // The file is exactly what the configuration writes back: no field is ignored.
        assert_eq!(cfg.to_json() + "\n", DEFAULT_JSON);
        assert_eq!((cfg.version, cfg.half_life_days), (1, 30.0));
        assert_eq!((cfg.fit.max, cfg.engagement.max), (50.0, 50.0));
        assert_eq!(cfg.engagement.kinds.len(), 10);
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-20T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    fn empty() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn blank(custom: &BTreeMap<String, String>) -> Profile<'_> {
        Profile {
            job_title: None,
            company: None,
            email_domain: None,
            country: None,
            has_phone: false,
            custom,
        }
    }

    #[test]
    fn the_predicted_conversion_raises_the_temperature_only_when_configured() {
        let e = empty();
        let cold = |m: &Model| m.assess(&blank(&e), &[], Stage::Lead, now());
        // Default: off, whatever the prediction.
        let mut a = cold(Model::builtin());
        assert_eq!(a.temperature, Temperature::Cold);
        Model::builtin().apply_prediction(&mut a, 0.99);
        assert_eq!(a.temperature, Temperature::Cold);

        let cfg: ScoringConfig = serde_json::from_value({
            let mut v = serde_json::to_value(ScoringConfig::default()).unwrap();
            v["prediction"] = serde_json::json!({"hot_at": 0.3, "warm_at": 0.15});
            v
        })
        .unwrap();
        let m = Model::new(cfg).unwrap();
        for (p, want) in [
            (0.1, Temperature::Cold),
            (0.15, Temperature::Warm),
            (0.3, Temperature::Hot),
        ] {
            let mut a = cold(&m);
            m.apply_prediction(&mut a, p);
            assert_eq!(a.temperature, want, "{p}");
            assert_eq!(a.stage, Stage::Lead, "the stage is the rules' decision");
        }
        // Never lowers: a hot rules score stays hot under a low prediction.
        let mut hot = cold(&m);
        hot.temperature = Temperature::Hot;
        m.apply_prediction(&mut hot, 0.01);
        assert_eq!(hot.temperature, Temperature::Hot);

        let bad = ScoringConfig {
            prediction: PredictionRules {
                hot_at: Some(1.5),
                warm_at: Some(0.2),
                training: PredictSettings {
                    min_won: 0,
                    ..PredictSettings::default()
                },
            },
            ..ScoringConfig::default()
        };
        let err = bad.validate().unwrap_err().0;
        assert!(
            err.contains("prediction.hot_at must be between 0 and 1, got 1.5"),
            "{err}"
        );
        assert!(
            err.contains("prediction.training.min_won must be between 1"),
            "{err}"
        );
        // A stored document without the section (every one before it existed) still reads.
        let mut old = serde_json::to_value(ScoringConfig::default()).unwrap();
        old.as_object_mut().unwrap().remove("prediction");
        let read = ScoringConfig::from_json(&old.to_string()).unwrap();
        assert_eq!(read.prediction, PredictionRules::default());
    }

    /// Only one kind scored, no caps in the way, large maxima: isolates decay.
    fn engagement_only(points: f64, cap: f64) -> Model {
        let mut cfg = ScoringConfig::default();
        cfg.engagement.max = 100.0;
        cfg.fit.max = 0.0;
        cfg.engagement.kinds = [(
            TouchKind::FormSubmission,
            KindRule {
                points,
                daily_cap: cap,
            },
        )]
        .into_iter()
        .collect();
        Model::new(cfg).unwrap()
    }

    #[test]
    fn builtin_config_is_valid_and_round_trips_through_json() {
        let cfg = ScoringConfig::default();
        cfg.validate().unwrap();
        assert_eq!(ScoringConfig::from_json(&cfg.to_json()).unwrap(), cfg);
    }

    #[test]
    fn decay_halves_engagement_at_the_half_life() {
        let m = engagement_only(40.0, 100.0);
        let c = empty();
        let fresh = m.assess(
            &blank(&c),
            &[Touch {
                kind: TouchKind::FormSubmission,
                at: now(),
            }],
            Stage::Lead,
            now(),
        );
        let old = m.assess(
            &blank(&c),
            &[Touch {
                kind: TouchKind::FormSubmission,
                at: now() - Duration::days(30),
            }],
            Stage::Lead,
            now(),
        );
        let older = m.assess(
            &blank(&c),
            &[Touch {
                kind: TouchKind::FormSubmission,
                at: now() - Duration::days(60),
            }],
            Stage::Lead,
            now(),
        );
        assert!((fresh.engagement - 40.0).abs() < 1e-9);
        assert!((old.engagement - 20.0).abs() < 1e-9);
        assert!((older.engagement - 10.0).abs() < 1e-9);
        assert_eq!((fresh.score, old.score, older.score), (40, 20, 10));
    }

    #[test]
    fn daily_cap_holds_per_kind_and_day() {
        let m = engagement_only(10.0, 25.0);
        let c = empty();
        let storm: Vec<Touch> = (0..50)
            .map(|i| Touch {
                kind: TouchKind::FormSubmission,
                at: now() - Duration::minutes(i),
            })
            .collect();
        let a = m.assess(&blank(&c), &storm, Stage::Lead, now());
        assert!(a.engagement <= 25.0 + 1e-9, "{}", a.engagement);
        assert!(a.engagement > 24.9);
        // The next day has its own cap.
        let mut two_days = storm.clone();
        two_days.push(Touch {
            kind: TouchKind::FormSubmission,
            at: now() - Duration::days(1),
        });
        let b = m.assess(&blank(&c), &two_days, Stage::Lead, now());
        assert!(b.engagement > a.engagement + 9.0);
        // And the engagement part never exceeds its maximum, whatever the history.
        let d = Model::builtin();
        let many: Vec<Touch> = (0..400)
            .map(|i| Touch {
                kind: TouchKind::ALL[i % TouchKind::ALL.len()],
                at: now() - Duration::hours(i as i64),
            })
            .collect();
        let x = d.assess(&blank(&c), &many, Stage::Lead, now());
        assert!(x.engagement <= d.config().engagement.max);
    }

    #[test]
    fn thresholds_decide_temperature() {
        let t = &ScoringConfig::default().thresholds;
        assert_eq!(temperature_for(0, t), Temperature::Cold);
        assert_eq!(temperature_for(t.warm - 1, t), Temperature::Cold);
        assert_eq!(temperature_for(t.warm, t), Temperature::Warm);
        assert_eq!(temperature_for(t.hot - 1, t), Temperature::Warm);
        assert_eq!(temperature_for(t.hot, t), Temperature::Hot);
        assert_eq!(temperature_for(100, t), Temperature::Hot);
    }

    #[test]
    fn stages_only_move_forward() {
        let m = engagement_only(30.0, 100.0);
        let c = empty();
        let hot = [
            Touch {
                kind: TouchKind::FormSubmission,
                at: now(),
            },
            Touch {
                kind: TouchKind::FormSubmission,
                at: now() - Duration::minutes(1),
            },
        ];
        let a = m.assess(&blank(&c), &hot, Stage::Lead, now());
        assert_eq!(
            (a.score, a.stage, a.temperature),
            (60, Stage::Mql, Temperature::Warm)
        );
        // Gone cold: keeps its stage, drops temperature.
        let cold = m.assess(&blank(&c), &[], Stage::Mql, now());
        assert_eq!(
            (cold.stage, cold.temperature),
            (Stage::Mql, Temperature::Cold)
        );
        // Sales stages are never lowered by the score.
        for s in [Stage::Sql, Stage::Customer] {
            assert_eq!(m.assess(&blank(&c), &[], s, now()).stage, s);
            assert_eq!(m.assess(&blank(&c), &hot, s, now()).stage, s);
        }
    }

    #[test]
    fn fit_rules_and_reasons() {
        let m = Model::builtin();
        let mut custom = BTreeMap::new();
        custom.insert("budget".to_string(), " 100K+ ".to_string());
        let p = Profile {
            job_title: Some("VP Marketing"),
            company: Some("Acme"),
            email_domain: Some("Acme.com"),
            country: Some("US"),
            has_phone: true,
            custom: &custom,
        };
        let a = m.assess(&p, &[], Stage::Lead, now());
        // 12 title + 6 company + 10 business + 5 country + 4 phone + 10 budget = 47.
        assert_eq!(a.score, 47);
        assert_eq!(a.reasons.len(), TOP_REASONS);
        assert_eq!(a.reasons[0].rule, "title_vp_director");
        assert_eq!(a.reasons[0].points, 12.0);
        // Word boundaries: "mvp" is not a VP; free mail loses points.
        let c = empty();
        let q = Profile {
            job_title: Some("MVP of the month"),
            email_domain: Some("gmail.com"),
            company: Some("Acme"),
            ..blank(&c)
        };
        let b = m.assess(&q, &[], Stage::Lead, now());
        assert_eq!(b.score, 3);
        assert!(b
            .reasons
            .iter()
            .any(|r| r.rule == "free_email" && r.points == -3.0));
        // Fit never goes below zero.
        let r = Profile {
            job_title: Some("Student"),
            email_domain: Some("gmail.com"),
            ..blank(&c)
        };
        assert_eq!(m.assess(&r, &[], Stage::Lead, now()).score, 0);
        assert_eq!(
            reasons_line(&a.reasons[..2]),
            "title_vp_director:+12,budget:+10"
        );
    }

    #[test]
    fn unknown_keys_and_out_of_range_values_are_rejected() {
        let mut v = serde_json::to_value(ScoringConfig::default()).unwrap();
        v["halflife"] = 10.into();
        let e = ScoringConfig::from_json(&v.to_string()).unwrap_err();
        assert!(e.0.contains("unknown field `halflife`"), "{e}");

        let mut v = serde_json::to_value(ScoringConfig::default()).unwrap();
        v["engagement"]["kinds"]["tweet"] = serde_json::json!({"points": 1, "daily_cap": 1});
        let e = ScoringConfig::from_json(&v.to_string()).unwrap_err();
        assert!(e.0.contains("unknown variant `tweet`"), "{e}");

        let mut v = serde_json::to_value(ScoringConfig::default()).unwrap();
        v["half_life_days"] = 0.into();
        v["thresholds"]["warm"] = 80.into();
        v["engagement"]["kinds"]["visit"]["daily_cap"] = 500.into();
        v["fit"]["country"][0]["codes"] = serde_json::json!(["usa"]);
        let e = ScoringConfig::from_json(&v.to_string()).unwrap_err();
        for needle in [
            "half_life_days must be between 0.1 and 3650, got 0",
            "thresholds.warm (80) must be below thresholds.hot (65)",
            "engagement.kinds.visit.daily_cap must be between 0 and 100, got 500",
            "fit.country[0].codes must be ISO alpha-2",
        ] {
            assert!(e.0.contains(needle), "{needle} not in {e}");
        }
        assert!(ScoringConfig::from_json("{").is_err());
        assert!(ScoringConfig::from_json("{\"version\": 1}").is_err());
    }

    #[test]
    fn future_touches_do_not_inflate() {
        let m = engagement_only(10.0, 100.0);
        let c = empty();
        let a = m.assess(
            &blank(&c),
            &[Touch {
                kind: TouchKind::FormSubmission,
                at: now() + Duration::days(3),
            }],
            Stage::Lead,
            now(),
        );
        assert!((a.engagement - 10.0).abs() < 1e-9);
    }
}

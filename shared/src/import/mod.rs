//! Bulk import of lead lists: webinar and trade-show attendees, a partner's referrals, outbound
//! prospect lists, uploaded as files (CSV or JSON lines) and read row by row through the same
//! field mapping (`fields`), normalization and ingest as web forms. Pure: no AWS types; the
//! lead-import function reads the file from S3 and keeps the progress in the store.
//!
//! - [`parse`]: what a file is (BOM, separator, JSON lines, refused shapes) and a push parser
//!   that turns byte chunks into rows with the byte offset after each, so an import resumes
//!   with a ranged read from its checkpoint.
//! - [`rows`]: the list's mapping (direction, channel, source, campaign: object metadata or
//!   columns) and one row to a [`crate::model::Submission`], keyed by file version and row.
//!
//! Exactly once: each row's delivery key is the file version's id (a hash of bucket, key and
//! version id) and the row number, so a retried event or a resumed invocation stores nothing
//! twice, and a new version of the same file is a new import.

pub mod parse;
pub mod rows;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::DeliveryKey;

/// The provider name of imported touches (`touch.provider`, delivery markers).
pub const PROVIDER: &str = "import";
/// Only objects under this prefix are imports (the bucket's notification filters on it too).
pub const INCOMING_PREFIX: &str = "incoming/";
/// Results are written under this prefix, beside the input and outside the trigger's filter.
pub const RESULTS_PREFIX: &str = "results/";
/// S3's own name for the version of an object in a bucket without versioning.
pub const NULL_VERSION: &str = "null";

/// One stored version of one file: what an import is keyed on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    pub bucket: String,
    pub key: String,
    pub version_id: String,
}

impl FileRef {
    /// SHA-256 of bucket, key and version id (length-prefixed), hex: bounded whatever the key's
    /// length (S3 keys reach 1,024 bytes), distinct per version.
    pub fn file_id(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.bucket, &self.key, &self.version_id] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }

    /// The delivery key of one row: 64 hex characters, `#`, the row number (under the store's
    /// 128-byte bound for ids, so it stays readable in the marker key).
    pub fn delivery(&self, row: u64) -> DeliveryKey {
        DeliveryKey::Platform(format!("{}#{row}", self.file_id()))
    }

    /// Where the result goes: `results/<key without incoming/>.<version>.result.json`, or
    /// `results/<file id>.result.json` when that would pass S3's 1,024-byte key limit.
    pub fn result_key(&self) -> String {
        let name = self.key.strip_prefix(INCOMING_PREFIX).unwrap_or(&self.key);
        let key = format!("{RESULTS_PREFIX}{name}.{}.result.json", self.version_id);
        if key.len() <= 1024 {
            key
        } else {
            format!("{RESULTS_PREFIX}{}.result.json", self.file_id())
        }
    }
}

crate::named_enum! {
    /// Where an import stands.
    pub enum ImportStatus {
        Running = "running", Done = "done",
        /// A file-level problem: nothing imported (see the result's `file_error`).
        Failed = "failed",
    }
}

/// A problem with the whole file: nothing is imported, the result says why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("the file is empty: a header row is expected")]
    Empty,
    #[error("the file is {0}, not UTF-8 text: save it as \"CSV UTF-8\"")]
    Encoding(&'static str),
    #[error("the file is {0}, not a CSV or JSON lines file")]
    NotCsv(&'static str),
    #[error("the header row is over {} bytes", parse::MAX_RECORD_BYTES)]
    HeaderTooLong,
    #[error("the header names no email or phone column")]
    NoContactColumn,
    #[error("{field}: {message}")]
    Mapping {
        field: &'static str,
        message: String,
    },
}

impl FileError {
    pub fn code(&self) -> &'static str {
        match self {
            FileError::Empty => "no_header",
            FileError::Encoding(_) => "unsupported_encoding",
            FileError::NotCsv(_) => "not_csv",
            FileError::HeaderTooLong => "header_too_long",
            FileError::NoContactColumn => "no_contact_column",
            FileError::Mapping { .. } => "invalid_mapping",
        }
    }

    pub fn field(&self) -> Option<&'static str> {
        match self {
            FileError::NoContactColumn | FileError::HeaderTooLong => Some("header"),
            FileError::Mapping { field, .. } => Some(field),
            _ => None,
        }
    }
}

/// A row that was not imported: its number (the header is row 1, as a spreadsheet shows it
/// when no value spans lines), the column, and a code. Never the row's values: the report is
/// read by people who need not see the personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub row: u64,
    pub field: String,
    pub code: String,
}

impl RowError {
    pub fn new(row: u64, field: impl Into<String>, code: &str) -> RowError {
        RowError {
            row,
            field: crate::limits::truncate_bytes(
                &field.into(),
                crate::limits::MAX_FIELD_NAME_BYTES,
            )
            .to_string(),
            code: code.to_string(),
        }
    }

    /// What the code means, for the people reading the report.
    pub fn message(&self) -> &'static str {
        match self.code.as_str() {
            "invalid_email" => "email is not a valid address",
            "invalid_phone" => "phone is not a valid number for its country",
            "missing_contact" => "the row has neither an email nor a phone",
            "invalid_channel" => "channel is not one of the known channels",
            "invalid_direction" => "direction must be inbound or outbound",
            "invalid_date" => "not a date (YYYY-MM-DD, or RFC 3339 date and time)",
            "invalid_encoding" => "the value is not UTF-8 text",
            "invalid_value" => "a JSON value here must be text, a number or true/false",
            "not_an_object" => "a JSON lines row must be one JSON object",
            "invalid_json" => "the line is not valid JSON",
            "row_too_large" => "the row is over the size limit",
            "too_many_fields" => "the row has more values than the header has columns",
            _ => "the row was not imported",
        }
    }
}

/// What an import did, row by row (additive: each checkpoint adds its chunk).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    /// Data rows read (blank lines are not rows).
    pub rows: u64,
    /// New people.
    pub created: u64,
    /// Rows of people already known (earlier leads, or an earlier row of this file).
    pub merged: u64,
    /// Rows an earlier attempt of this import had stored before it stopped without saving
    /// its progress (a crash): nothing stored again.
    pub duplicate: u64,
    /// Rows of erased people (suppression): nothing stored.
    pub suppressed: u64,
    /// Bad rows, each listed in the result with its row, field and code.
    pub rejected: u64,
    /// Of the rows stored (created + merged), those imported as outbound prospects.
    pub outbound: u64,
}

impl ImportCounts {
    pub fn add(&mut self, o: &ImportCounts) {
        self.rows += o.rows;
        self.created += o.created;
        self.merged += o.merged;
        self.duplicate += o.duplicate;
        self.suppressed += o.suppressed;
        self.rejected += o.rejected;
        self.outbound += o.outbound;
    }

    /// The counts by name, for items and metrics.
    pub fn named(&self) -> [(&'static str, u64); 7] {
        [
            ("rows", self.rows),
            ("created", self.created),
            ("merged", self.merged),
            ("duplicate", self.duplicate),
            ("suppressed", self.suppressed),
            ("rejected", self.rejected),
            ("outbound", self.outbound),
        ]
    }

    pub fn from_named(get: impl Fn(&str) -> u64) -> ImportCounts {
        ImportCounts {
            rows: get("rows"),
            created: get("created"),
            merged: get("merged"),
            duplicate: get("duplicate"),
            suppressed: get("suppressed"),
            rejected: get("rejected"),
            outbound: get("outbound"),
        }
    }
}

/// An import's checkpoint: what the file is, how to read it, how far it got. Saved every
/// chunk of rows (conditioned on the offset the chunk started from), so a later invocation
/// resumes at `offset` with a ranged read and the counts stay exact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportProgress {
    pub file: FileRef,
    pub status: ImportStatus,
    pub shape: parse::Shape,
    /// The CSV header's column names (empty for JSON lines).
    pub header: Vec<String>,
    pub mapping: rows::ListMapping,
    /// When a row without a date column happened: the object's upload time (stable across
    /// retries, so a row's touch is the same whichever attempt stores it).
    pub default_time: DateTime<Utc>,
    /// Byte offset of the next row to read.
    pub offset: u64,
    /// Its row number.
    pub next_row: u64,
    pub counts: ImportCounts,
    /// A file-level problem (status `failed`): code and message.
    pub file_error: Option<(String, String)>,
    pub started_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Invocations that worked on it.
    pub invocations: u64,
    /// The result object, once written.
    pub result_key: Option<String>,
    /// The invocation working on it, until when (absent between invocations): one invocation
    /// at a time, so a duplicated event never reads the same rows as another (see `Lease`).
    pub lease: Option<Lease>,
}

/// An invocation's claim on an import. Taken when it starts or resumes, released when it
/// pauses or finishes; one that crashed is taken over once `until` has passed (the function's
/// timeout and a minute: before the queue shows the message again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub owner: String,
    pub until: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(key: &str, version: &str) -> FileRef {
        FileRef {
            bucket: "b".into(),
            key: key.into(),
            version_id: version.into(),
        }
    }

    #[test]
    fn delivery_keys_are_per_version_and_row_and_bounded() {
        let a = file("incoming/webinar.csv", "v1");
        assert_eq!(a.delivery(2), a.delivery(2));
        assert_ne!(a.delivery(2), a.delivery(3));
        assert_ne!(
            a.delivery(2),
            file("incoming/webinar.csv", "v2").delivery(2)
        );
        let long = file(&"k".repeat(1024), "v1");
        assert!(long.delivery(u64::MAX).as_str().len() <= 128);
    }

    #[test]
    fn results_go_beside_the_input_outside_the_trigger() {
        let f = file("incoming/2026/webinar.csv", "3HL4kqtJ");
        assert_eq!(
            f.result_key(),
            "results/2026/webinar.csv.3HL4kqtJ.result.json"
        );
        assert!(!f.result_key().starts_with(INCOMING_PREFIX));
        let long = file(&format!("incoming/{}", "k".repeat(1010)), "v");
        assert!(long.result_key().len() <= 1024);
    }
}

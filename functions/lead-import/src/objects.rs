//! The import bucket: the list files read as a stream (from a byte offset when resuming) and
//! the results written beside them.

use std::collections::BTreeMap;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};
use leadflow::import::{FileRef, NULL_VERSION};
use serde_json::Value;

use crate::ImportError;

/// The S3 client for the SDK configuration. Path-style addressing when an endpoint is set
/// (`AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL`: a local S3 such as moto answers on one host,
/// not on `<bucket>.<host>`); virtual-hosted style on AWS.
pub fn s3_client(
    sdk: &aws_config::SdkConfig,
    get: impl Fn(&str) -> Option<String>,
) -> aws_sdk_s3::Client {
    let local = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"]
        .iter()
        .any(|k| get(k).is_some_and(|v| !v.trim().is_empty()));
    let conf = aws_sdk_s3::config::Builder::from(sdk)
        .force_path_style(local)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

pub struct Objects {
    s3: aws_sdk_s3::Client,
}

/// An object opened for reading.
pub struct Opened {
    pub body: Body,
    /// User metadata (`x-amz-meta-*`, names lowercase without the prefix).
    pub metadata: BTreeMap<String, String>,
    pub last_modified: Option<DateTime<Utc>>,
}

/// The object's bytes as they arrive.
pub struct Body(Option<ByteStream>);

impl Body {
    pub async fn next(&mut self) -> Result<Option<bytes::Bytes>, ImportError> {
        let Some(stream) = &mut self.0 else {
            return Ok(None);
        };
        match stream.next().await {
            None => Ok(None),
            Some(Ok(b)) => Ok(Some(b)),
            Some(Err(e)) => Err(ImportError::Object {
                operation: "GetObject",
                message: e.to_string(),
            }),
        }
    }
}

impl Objects {
    pub fn new(s3: aws_sdk_s3::Client) -> Objects {
        Objects { s3 }
    }

    /// Opens the file's version from `offset` (1 GetObject, ranged when resuming). `None`:
    /// the object or version is gone. At the end already: an empty body.
    pub async fn open(&self, file: &FileRef, offset: u64) -> Result<Option<Opened>, ImportError> {
        let res = self
            .s3
            .get_object()
            .bucket(&file.bucket)
            .key(&file.key)
            .set_version_id((file.version_id != NULL_VERSION).then(|| file.version_id.clone()))
            .set_range((offset > 0).then(|| format!("bytes={offset}-")))
            .send()
            .await;
        let out = match res {
            Ok(out) => out,
            Err(e) => {
                let code = e.as_service_error().and_then(|se| se.code());
                if matches!(e.as_service_error(), Some(GetObjectError::NoSuchKey(_)))
                    || code == Some("NoSuchVersion")
                    || code == Some("NoSuchKey")
                {
                    tracing::warn!(key = file.key, "object gone before its import");
                    return Ok(None);
                }
                if offset > 0 && code == Some("InvalidRange") {
                    // The checkpoint is at the end of the object: nothing left to read.
                    return Ok(Some(Opened {
                        body: Body(None),
                        metadata: BTreeMap::new(),
                        last_modified: None,
                    }));
                }
                return Err(ImportError::Object {
                    operation: "GetObject",
                    message: DisplayErrorContext(&e).to_string(),
                });
            }
        };
        let metadata = out
            .metadata()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let last_modified = out
            .last_modified()
            .and_then(|t| DateTime::from_timestamp(t.secs(), t.subsec_nanos()));
        Ok(Some(Opened {
            body: Body(Some(out.body)),
            metadata,
            last_modified,
        }))
    }

    /// Writes a JSON document (1 PutObject).
    pub async fn put_json(&self, bucket: &str, key: &str, doc: &Value) -> Result<(), ImportError> {
        let body = serde_json::to_vec_pretty(doc).map_err(|e| ImportError::Object {
            operation: "PutObject",
            message: e.to_string(),
        })?;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| ImportError::Object {
                operation: "PutObject",
                message: DisplayErrorContext(&e).to_string(),
            })?;
        Ok(())
    }
}

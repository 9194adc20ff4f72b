//! `multipart/form-data` bodies (plain HTML forms with `enctype="multipart/form-data"`, Jotform)
//! read into name/value pairs with `multer`. File parts are skipped: leads are not file uploads.

use bytes::Bytes;

/// Most parts read from one body; a form has tens of fields, not thousands.
const MAX_PARTS: usize = 500;

/// The text fields of a multipart body, in order. Errors name what is wrong (no boundary,
/// malformed part) for a 400 answer.
pub async fn read_multipart_fields(
    content_type: &str,
    body: &[u8],
) -> Result<Vec<(String, String)>, String> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|_| "multipart content type has no boundary".to_string())?;
    let data = Bytes::copy_from_slice(body);
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(data) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return Err(format!("malformed multipart body: {e}")),
        };
        if fields.len() >= MAX_PARTS {
            return Err(format!("more than {MAX_PARTS} parts"));
        }
        let name = field.name().unwrap_or_default().to_string();
        if field.file_name().is_some() || name.is_empty() {
            continue;
        }
        let text = field
            .text()
            .await
            .map_err(|e| format!("unreadable part {name:?}: {e}"))?;
        fields.push((name, text));
    }
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_text_parts_and_skips_files() {
        let body = "--XyZ\r\nContent-Disposition: form-data; name=\"email\"\r\n\r\na@example.com\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"cv\"; filename=\"cv.pdf\"\r\nContent-Type: application/pdf\r\n\r\n%PDF\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"fname\"\r\n\r\nAda\r\n--XyZ--\r\n";
        let fields = read_multipart_fields("multipart/form-data; boundary=XyZ", body.as_bytes())
            .await
            .unwrap();
        assert_eq!(
            fields,
            vec![
                ("email".to_string(), "a@example.com".to_string()),
                ("fname".to_string(), "Ada".to_string())
            ]
        );
    }

    #[tokio::test]
    async fn missing_boundary_is_an_error() {
        assert!(read_multipart_fields("multipart/form-data", b"x")
            .await
            .is_err());
    }
}

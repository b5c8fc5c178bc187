//! Submits that carry an image as itself instead of base64 inside JSON: a multipart form
//! (`curl -F algorithm=image_classifier -F image=@cat.jpg`), or the image as the whole body with
//! the rest in the query (`curl --data-binary @cat.jpg -H 'content-type: image/jpeg'
//! '.../v1/tasks?algorithm=image_classifier'`).
//!
//! Both become the JSON body a submit carries, the image in the payload's `image_base64`, and
//! go through the same checks, so an upload is refused exactly as that body would be (its
//! algorithm's schema, priority, deadline, limits). Base64 stays inside: tasks cross RabbitMQ,
//! the embedded queue and the runner protocol as JSON, so the upload saves the client the
//! encoding and a quarter of the bytes it sends, not the worker.

use axum::extract::Multipart;
use axum::extract::multipart::MultipartError;
use axum::http::HeaderMap;
use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// The payload field an uploaded image fills.
pub(crate) const IMAGE_FIELD: &str = "image_base64";

/// The form field that carries the image.
const IMAGE_PART: &str = "image";

/// How `POST /v1/tasks` reads its body, from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// The JSON request (any type but the two below, so clients that send none keep working).
    Json,
    /// `multipart/form-data`: the image and the request's fields as form fields.
    Form,
    /// `image/*` or `application/octet-stream`: the image alone, the fields in the query.
    Image,
}

impl BodyKind {
    pub(crate) fn of(headers: &HeaderMap) -> BodyKind {
        let content_type = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            BodyKind::Form
        } else if content_type.starts_with("image/")
            || content_type.starts_with("application/octet-stream")
        {
            BodyKind::Image
        } else {
            BodyKind::Json
        }
    }
}

/// The request's fields beside an uploaded image: form fields, or query parameters of an image
/// body. Each means what the JSON body's field of the same name means.
#[derive(Debug, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadFields {
    /// With an image body only: the algorithm to run.
    algorithm: Option<String>,
    /// With an image body only: the rest of the payload, a JSON object (`{"top_k": 3}`).
    payload: Option<String>,
    /// With an image body only: 0-9, higher runs first.
    priority: Option<String>,
    /// With an image body only: RFC 3339; past it the task is never run.
    deadline: Option<String>,
    /// With an image body only: the deadline as a duration from now (`30s`).
    ttl: Option<String>,
}

impl UploadFields {
    /// True when no field is given, as a JSON body requires of the query.
    pub(crate) fn is_empty(&self) -> bool {
        *self == UploadFields::default()
    }
}

/// A multipart submit, as the OpenAPI document shows it.
#[derive(ToSchema)]
#[allow(dead_code)] // Describes the form; the handler reads it field by field.
pub(crate) struct UploadForm {
    /// The algorithm to run; its schema must have `image_base64`.
    algorithm: String,
    /// The image file, sent as it is.
    #[schema(content_media_type = "application/octet-stream")]
    image: Vec<u8>,
    /// The rest of the payload, a JSON object (`{"top_k": 3}`).
    payload: Option<String>,
    /// 0-9, higher runs first.
    priority: Option<u8>,
    /// RFC 3339; past it the task is never run. Not with `ttl`.
    deadline: Option<String>,
    /// The deadline as a duration from now (`30s`). Not with `deadline`.
    ttl: Option<String>,
}

/// The JSON request of a multipart submit.
pub(crate) async fn from_form(mut form: Multipart, limit: usize) -> Result<Value, ApiError> {
    let mut fields = UploadFields::default();
    let mut image = None;
    while let Some(field) = form.next_field().await.map_err(form_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        let slot = match name.as_str() {
            IMAGE_PART => {
                if image.is_some() {
                    return Err(ApiError::BadRequest(
                        "more than one 'image' field: a task takes one image".into(),
                    ));
                }
                image = Some(field.bytes().await.map_err(form_error)?);
                continue;
            }
            "algorithm" => &mut fields.algorithm,
            "payload" => &mut fields.payload,
            "priority" => &mut fields.priority,
            "deadline" => &mut fields.deadline,
            "ttl" => &mut fields.ttl,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown form field '{other}': expected algorithm, image, payload, priority, \
                     deadline, ttl"
                )));
            }
        };
        *slot = Some(field.text().await.map_err(form_error)?);
    }
    let image = image.ok_or_else(|| {
        ApiError::BadRequest(
            "the form has no 'image' field: send the file as -F image=@photo.jpg".into(),
        )
    })?;
    request(fields, &image, limit)
}

fn form_error(error: MultipartError) -> ApiError {
    match error.status() {
        axum::http::StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(error.body_text()),
        _ => ApiError::BadRequest(format!("malformed multipart body: {}", error.body_text())),
    }
}

/// The JSON request `fields` and `image` stand for (an image body's, whose fields came in the
/// query; a form's). `limit` bounds the task as a JSON submit's body is bounded, so an upload
/// cannot make a task larger than a JSON submit could.
pub(crate) fn request(fields: UploadFields, image: &[u8], limit: usize) -> Result<Value, ApiError> {
    let Some(algorithm) = fields.algorithm else {
        return Err(ApiError::BadRequest(
            "an upload names its algorithm: the 'algorithm' form field or query parameter".into(),
        ));
    };
    if image.is_empty() {
        return Err(ApiError::BadRequest("the image is empty".into()));
    }
    let mut payload = match fields.payload {
        None => Map::new(),
        Some(text) => match serde_json::from_str(&text) {
            Ok(Value::Object(payload)) => payload,
            _ => {
                return Err(ApiError::BadRequest(
                    "invalid field 'payload': expected a JSON object (the fields beside the image)"
                        .into(),
                ));
            }
        },
    };
    if let Some(field) = [IMAGE_FIELD, "image_url"]
        .into_iter()
        .find(|field| payload.contains_key(*field))
    {
        return Err(ApiError::BadRequest(format!(
            "invalid field 'payload.{field}': the uploaded file is the image; leave it out"
        )));
    }
    let encoded_len = base64::encoded_len(image.len(), true).unwrap_or(usize::MAX);
    if encoded_len > limit {
        return Err(ApiError::TooLarge(format!(
            "the image is {} bytes; a task carries it as base64 ({encoded_len} bytes), which must \
             fit in {limit} bytes: send at most {} bytes",
            image.len(),
            limit / 4 * 3
        )));
    }
    payload.insert(
        IMAGE_FIELD.to_owned(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(image)),
    );
    let mut request = Map::new();
    request.insert("algorithm".into(), Value::String(algorithm));
    request.insert("payload".into(), Value::Object(payload));
    if let Some(priority) = fields.priority {
        // A number as the JSON body has it; anything else is refused there, with the field named.
        let priority = serde_json::from_str(&priority).unwrap_or(Value::String(priority));
        request.insert("priority".into(), priority);
    }
    for (name, value) in [("deadline", fields.deadline), ("ttl", fields.ttl)] {
        if let Some(value) = value {
            request.insert(name.into(), Value::String(value));
        }
    }
    Ok(Value::Object(request))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn fields(algorithm: &str) -> UploadFields {
        UploadFields {
            algorithm: Some(algorithm.into()),
            ..UploadFields::default()
        }
    }

    fn refusal(result: Result<Value, ApiError>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn the_content_type_chooses_how_the_body_is_read() {
        let kind = |content_type: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("content-type", content_type.parse().unwrap());
            BodyKind::of(&headers)
        };
        assert_eq!(kind("multipart/form-data; boundary=x"), BodyKind::Form);
        assert_eq!(kind("image/jpeg"), BodyKind::Image);
        assert_eq!(kind("Image/PNG"), BodyKind::Image);
        assert_eq!(kind("application/octet-stream"), BodyKind::Image);
        assert_eq!(kind("application/json"), BodyKind::Json);
        assert_eq!(kind("text/plain"), BodyKind::Json);
        assert_eq!(BodyKind::of(&HeaderMap::new()), BodyKind::Json);
    }

    #[test]
    fn an_upload_becomes_the_json_request_with_its_image_in_base64() {
        let upload = UploadFields {
            payload: Some(r#"{"top_k": 3}"#.into()),
            priority: Some("9".into()),
            ttl: Some("30s".into()),
            ..fields("image_classifier")
        };
        assert_eq!(
            request(upload, b"\xff\xd8jpeg", 1024).unwrap(),
            json!({
                "algorithm": "image_classifier",
                "payload": {"top_k": 3, "image_base64": "/9hqcGVn"},
                "priority": 9,
                "ttl": "30s",
            })
        );
        assert_eq!(
            request(fields("ocr"), b"png", 1024).unwrap(),
            json!({"algorithm": "ocr", "payload": {"image_base64": "cG5n"}})
        );
    }

    #[test]
    fn a_priority_that_is_no_number_is_left_for_the_json_check_to_name() {
        let upload = UploadFields {
            priority: Some("urgent".into()),
            ..fields("ocr")
        };
        assert_eq!(request(upload, b"png", 1024).unwrap()["priority"], "urgent");
    }

    #[test]
    fn what_an_upload_cannot_be_is_refused_with_the_reason() {
        assert!(
            refusal(request(UploadFields::default(), b"png", 1024)).contains("names its algorithm")
        );
        assert_eq!(
            refusal(request(fields("ocr"), b"", 1024)),
            "the image is empty"
        );
        for payload in ["[1]", "not json", "3"] {
            let upload = UploadFields {
                payload: Some(payload.into()),
                ..fields("ocr")
            };
            assert!(
                refusal(request(upload, b"png", 1024))
                    .contains("'payload': expected a JSON object"),
                "{payload}"
            );
        }
        for field in ["image_url", "image_base64"] {
            let upload = UploadFields {
                payload: Some(format!(r#"{{"{field}": "x"}}"#)),
                ..fields("ocr")
            };
            assert!(
                refusal(request(upload, b"png", 1024)).contains(&format!("'payload.{field}'")),
                "{field}"
            );
        }
    }

    #[test]
    fn an_image_whose_base64_would_not_fit_the_limit_is_too_large() {
        // 3 bytes encode to 4: 300 bytes to 400.
        assert!(request(fields("ocr"), &[7; 300], 400).is_ok());
        let over = request(fields("ocr"), &[7; 303], 400).unwrap_err();
        assert!(matches!(over, ApiError::TooLarge(_)), "{over}");
        assert!(
            over.to_string().contains("send at most 300 bytes"),
            "{over}"
        );
    }

    #[test]
    fn an_empty_query_is_empty_and_any_field_is_not() {
        assert!(UploadFields::default().is_empty());
        assert!(!fields("ocr").is_empty());
    }
}

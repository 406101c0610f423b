//! Request extractors that answer bad input in the contract's error shape.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use pipes_core::pagination::{Order, PageRequest};
use pipes_core::services::root_not_found;
use pipes_core::slug::Slug;
use pipes_core::{FieldError, ServiceError};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::App;

/// The whole body, up to `limit` bytes.
pub async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(req.into_body(), limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::payload_too_large(limit)
        } else {
            ApiError::bad_request("The request body could not be read.")
        }
    })
}

/// A JSON object body. Malformed JSON, anything but an object, and wrong types answer 400
/// `bad_request`; a missing required field answers 422 `invalid_request_parameters`; bodies
/// over the server's limit answer 413.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<App> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, app: &App) -> Result<Self, ApiError> {
        let bytes = read_body(req, app.limits.max_body_bytes).await?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        // Every body is a JSON object: serde would apply an array field by position.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request("The request body must be a JSON object."));
        }
        if let Ok(value) = serde_json::from_slice::<T>(bytes) {
            return Ok(ApiJson(value));
        }
        // Explain the failure: syntax first, so a broken document is a 400 even when fields
        // are missing too; then the field, with its path.
        serde_json::from_slice::<serde::de::IgnoredAny>(bytes).map_err(|e| {
            let msg = e.to_string();
            let detail = msg.split(" at line ").next().unwrap_or(&msg).to_owned();
            ApiError::bad_request(format!("The request body is not valid JSON: {detail}."))
        })?;
        let mut de = serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(&mut de)
            .map(ApiJson)
            .map_err(json_error)
    }
}

fn json_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let msg = inner.to_string();
    if inner.is_data() {
        if let Some(rest) = msg.strip_prefix("missing field `") {
            let field = rest.split('`').next().unwrap_or_default();
            let field = if path == "." || path.is_empty() {
                field.to_owned()
            } else {
                format!("{path}.{field}")
            };
            let message = format!("{field} is required.");
            return ServiceError::invalid_fields(vec![FieldError::new(field, "required", message)]).into();
        }
    }
    let detail = msg.split(" at line ").next().unwrap_or(&msg);
    ApiError::bad_request(format!("Invalid value for {path}: {detail}."))
}

/// The query string as name → values (repeated parameters in order; [`QueryMap::many`] also
/// splits comma-joined lists; empty values dropped, as the SDKs treat them as absent).
#[derive(Debug, Default)]
pub struct QueryMap(HashMap<String, Vec<String>>);

impl QueryMap {
    /// The single value of a parameter; several values are a 400.
    pub fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([v]) => Ok(Some(v.as_str())),
            Some(_) => Err(ApiError::bad_request(format!(
                "Query parameter {name} was given more than once."
            ))),
        }
    }

    /// The `limit`, `before`, `after` and `order` of a list, `order` defaulting to `default`.
    pub fn page(&self, default: Order) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::parse(
            self.one("limit")?,
            self.one("before")?,
            self.one("after")?,
            self.one("order")?,
            default,
        )?)
    }

    /// A `true`/`false` parameter; absent is `false`.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.one(name)? {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::bad_request(format!("{name} must be true or false."))),
        }
    }

    /// Every value of a list parameter: comma-joined and repeated values both split, empty
    /// items dropped.
    pub fn many(&self, name: &str) -> Vec<&str> {
        self.0
            .get(name)
            .into_iter()
            .flatten()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        if let Some(q) = parts.uri.query() {
            for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
                if !v.is_empty() {
                    map.entry(k.into_owned()).or_default().push(v.into_owned());
                }
            }
        }
        Ok(QueryMap(map))
    }
}

/// A provider slug from the path, parsed once here: a slug no root can have is the same 404
/// as a root that does not exist.
pub fn slug(raw: &str) -> Result<Slug, ApiError> {
    Slug::parse(raw).map_err(|_| root_not_found().into())
}

//! The one error-code enum of the HTTP surface, mapped to status codes, rendered
//! as `{"error": {"code", "message"}}` (the `ErrorBody` schema of the OpenAPI
//! description, and the error responses every operation documents).

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    /// 409: the request lost to the current state (a taxonomy version, a reused idempotency key, a full registry).
    Conflict,
    /// 422: well-formed, but fields break the tenant's rules; `fields` lists them.
    Invalid,
    TooLarge,
    Overloaded,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Invalid => "invalid",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
            ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
            ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::Overloaded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Every error answer: `{"error": {"code", "message"}}` (a 422 adds `fields`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    /// Names the offending parameter or field of a 400.
    pub message: String,
    /// `invalid` (422): each field that breaks the tenant's rules.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Vec<ErrorField>, required = false)]
    pub fields: Option<serde_json::Value>,
}

/// One field error of a 422 (`error.fields`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: the fields travel as built JSON
pub struct ErrorField {
    /// The field (`fields.utm_source`, `fields.utm_medium.pattern`, ...).
    pub field: String,
    /// What is wrong: a `FieldErrorCode` (`required`, `pattern`, ...) or `template` (a taxonomy template's own error).
    pub code: String,
    pub message: String,
}

/// The client errors of every `/v1` operation (with `ServerErrors`).
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only: answers are built by `ApiError`
pub enum ClientErrors {
    /// `bad_request`: a parameter, field or body is invalid (the message names it).
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `unauthorized`: no or an unknown token (bearer) or write key (HTTP Basic).
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// `forbidden`: the token does not grant this tenant or endpoint.
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// `not_found`: no such tenant (no event of it), customer or route.
    #[response(status = 404)]
    NotFound(ErrorBody),
    /// `too_large`: the body is over the limit.
    #[response(status = 413)]
    TooLarge(ErrorBody),
}

/// The errors of a registry write on top of `ClientErrors`.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only: answers are built by `ApiError`
pub enum RegistryErrors {
    /// `conflict`: the request lost to the current state (a taxonomy version, a reused `Idempotency-Key`, a full registry).
    #[response(status = 409)]
    Conflict(ErrorBody),
    /// `invalid`: well-formed, but fields break the tenant's rules (`fields` lists them).
    #[response(status = 422)]
    Invalid(ErrorBody),
}

/// The server-side errors of every operation.
#[derive(utoipa::IntoResponses)]
#[allow(dead_code)] // documentation only: answers are built by `ApiError`
pub enum ServerErrors {
    /// `overloaded`: too many concurrent requests (`Retry-After`).
    #[response(status = 429)]
    Overloaded(ErrorBody),
    /// `internal`: a storage failure.
    #[response(status = 500)]
    Internal(ErrorBody),
    /// `unavailable`: not ready, the partition is restoring or has no owner, the broker did not acknowledge, or the request timed out (`Retry-After`).
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Per-field errors `[{field, code, message}]` of a 422 (`error.fields`).
    pub fields: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), fields: None }
    }
    /// A 422 listing per-field errors (`{field, code, message}` each).
    pub fn invalid(message: impl Into<String>, fields: serde_json::Value) -> ApiError {
        ApiError { code: ErrorCode::Invalid, message: message.into(), fields: Some(fields) }
    }
    /// A 400 naming the offending parameter.
    pub fn param(name: &str, message: impl std::fmt::Display) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, format!("parameter `{name}`: {message}"))
    }
    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, fields: self.fields } };
        let mut r = super::json_response(self.code.status(), &body);
        if matches!(self.code, ErrorCode::Unavailable | ErrorCode::Overloaded) {
            r.headers_mut().insert(hyper::header::RETRY_AFTER, hyper::header::HeaderValue::from_static("1"));
        }
        r
    }
}

impl From<touchline_actors::query::QueryError> for ApiError {
    fn from(e: touchline_actors::query::QueryError) -> ApiError {
        use touchline_actors::query::QueryError;
        match e {
            QueryError::NotFound(m) => ApiError::new(ErrorCode::NotFound, m),
            QueryError::BadRequest { param, message } => ApiError::param(param, message),
            QueryError::Storage(s) => ApiError::new(ErrorCode::Internal, format!("storage: {s}")),
        }
    }
}

impl From<touchline_storage::StorageError> for ApiError {
    fn from(e: touchline_storage::StorageError) -> ApiError {
        ApiError::new(ErrorCode::Internal, format!("storage: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_names() {
        for c in [ErrorCode::BadRequest, ErrorCode::Unauthorized, ErrorCode::Forbidden, ErrorCode::NotFound, ErrorCode::Conflict, ErrorCode::Invalid, ErrorCode::TooLarge, ErrorCode::Overloaded, ErrorCode::Unavailable, ErrorCode::Internal] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}

//! The one error-code enum of the HTTP surface, mapped to status codes, rendered
//! as `{"error": {"code", "message"}}`.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
        let mut body = serde_json::json!({"error": {"code": self.code.as_str(), "message": self.message}});
        if let Some(f) = self.fields {
            body["error"]["fields"] = f;
        }
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

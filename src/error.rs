//! The one error type every handler returns, and the wire codes of API.md.
//!
//! `ApiError` carries a `Code` (the contract's `bad_request`, `unauthorized`, …) and a short
//! human message. HTTP turns it into status + `{"error":{"code","message"}}`; the WebSocket
//! side turns it into an `error` event. Messages are short, lowercase, and never contain
//! secrets or user-supplied bodies.

use std::fmt;

/// The error codes of API.md, each with its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    TooLarge,
    HeadTooLarge,
    RateLimited,
    /// Voice: the room already has `VOICE_MAX_PEERS` peers.
    RoomFull,
    Unavailable,
    /// API.md v2: a `Host` this server does not answer for (DNS rebinding).
    Misdirected,
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BadRequest => "bad_request",
            Code::Unauthorized => "unauthorized",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::MethodNotAllowed => "method_not_allowed",
            Code::Conflict => "conflict",
            Code::TooLarge => "too_large",
            Code::HeadTooLarge => "head_too_large",
            Code::RateLimited => "rate_limited",
            Code::RoomFull => "room_full",
            Code::Unavailable => "unavailable",
            Code::Misdirected => "misdirected",
            Code::Internal => "internal",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            Code::BadRequest => 400,
            Code::Unauthorized => 401,
            Code::Forbidden => 403,
            Code::NotFound => 404,
            Code::MethodNotAllowed => 405,
            Code::Conflict => 409,
            Code::TooLarge => 413,
            Code::HeadTooLarge => 431,
            Code::RateLimited => 429,
            Code::RoomFull => 409,
            Code::Unavailable => 503,
            Code::Misdirected => 421,
            Code::Internal => 500,
        }
    }
}

/// An error with a contract code, a message for humans and, for `rate_limited`, a retry hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub retry_after_ms: Option<u64>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Code::BadRequest, message)
    }
    pub fn unauthorized() -> Self {
        Self::new(Code::Unauthorized, "a valid session is needed")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(Code::Forbidden, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(Code::Conflict, message)
    }
    pub fn internal() -> Self {
        Self::new(Code::Internal, "internal error")
    }
    pub fn rate_limited(retry_after_ms: u64) -> Self {
        ApiError {
            code: Code::RateLimited,
            message: "slow down".into(),
            retry_after_ms: Some(retry_after_ms.max(1)),
        }
    }

    /// The JSON body of API.md: `{"error":{"code","message"}}`.
    pub fn body(&self) -> String {
        serde_json::json!({"error": {"code": self.code.as_str(), "message": self.message}})
            .to_string()
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        // A read stopped at its time budget (store/budget.rs `within_read_budget`) is expected
        // under attack, not a fault: it is answered 503 and logged at debug there.
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
            return crate::store::over_budget();
        }
        log::error!("store error: {e}");
        ApiError::internal()
    }
}

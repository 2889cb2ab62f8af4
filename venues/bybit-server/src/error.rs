//! A refused request: Bybit's `retCode` and `retMsg`.

/// What the envelope says when a request is refused (always with HTTP 200, as Bybit does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub code: i64,
    pub message: String,
}

impl ApiError {
    pub fn new(code: i64, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    /// 10001: a parameter is missing or malformed.
    pub fn params(message: impl Into<String>) -> ApiError {
        ApiError::new(10001, message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "retCode {}: {}", self.code, self.message)
    }
}

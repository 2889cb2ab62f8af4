//! The API key: read from an environment variable the caller names, never printed.

use std::fmt;

use crate::LlmError;

/// An API key. Its `Debug` prints `ApiKey(<redacted>)`, and it has no `Display`, so it cannot
/// end up in a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl ApiKey {
    /// A key given in code (tests, or a caller with its own secret store).
    ///
    /// # Errors
    /// [`LlmError::MissingKey`] for an empty key (named `<given>`).
    pub fn new(key: impl Into<String>) -> Result<ApiKey, LlmError> {
        let key = key.into();
        if key.trim().is_empty() {
            return Err(LlmError::MissingKey { env: "<given>".to_owned() });
        }
        Ok(ApiKey(key))
    }

    /// The key in the environment variable `name`.
    ///
    /// # Errors
    /// [`LlmError::MissingKey`] when the variable is unset, empty or not UTF-8.
    pub fn from_env(name: &str) -> Result<ApiKey, LlmError> {
        let missing = || LlmError::MissingKey { env: name.to_owned() };
        let key = std::env::var(name).map_err(|_| missing())?;
        ApiKey::new(key).map_err(|_| missing())
    }

    /// The key, for the one place that needs it: the request header.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced: for messages built from what a server
    /// sent back (a server may echo the key in an error message).
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.0, "<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_shows_the_key() {
        let key = ApiKey::new("sk-very-secret").unwrap();
        assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
        assert_eq!(
            key.redact("Incorrect API key provided: sk-very-secret."),
            "Incorrect API key provided: <redacted>."
        );
        assert!(matches!(ApiKey::new("  "), Err(LlmError::MissingKey { .. })));
        assert!(
            matches!(ApiKey::from_env("QF_LLM_TEST_NO_SUCH_VARIABLE"), Err(LlmError::MissingKey { env }) if env == "QF_LLM_TEST_NO_SUCH_VARIABLE")
        );
    }
}

//! When to retry and how long to wait: the official SDKs' rules (VENUES.md §4.1; openai-python
//! and anthropic-sdk-python `_base_client.py`), as pure functions so they are tested as tables.
//!
//! - **What is retried**: timeouts and connection failures; statuses 408, 409, 429 and ≥ 500
//!   (so 529 too). A server's `x-should-retry: true|false` overrides the status. Never retried,
//!   whatever the headers: an exhausted quota or spend limit (OpenAI `insufficient_quota`,
//!   Anthropic `billing_error` or `enforced_spend_limit_reached`), since waiting cannot help and
//!   every retry would be refused the same way.
//! - **How long to wait**: `retry-after-ms` (ms), else `retry-after` (seconds, fractions allowed,
//!   or an HTTP date read against the caller's clock), when it is positive. A wait longer than
//!   [`RetryPolicy::max_retry_after`] is not waited out: the call fails with the server's answer,
//!   and the caller, who knows its decision deadline, decides (openai-python refuses to wait past
//!   its cap the same way). Otherwise exponential backoff: `min(initial · 2^n, max)` after the nth
//!   retry, times a jitter of `1 − 0.25·u` with `u` drawn from the caller's seeded RNG, never from
//!   wall-clock randomness, so a seed reproduces the waits.

use std::time::Duration;

use reqwest::header::HeaderMap;

/// Retry settings; the default is the official SDKs' (2 retries, 0.5 s doubling to 8 s).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// The longest server-asked wait that is waited out (60 s, as VENUES.md §4.1 records).
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_retries: 2,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// The most doublings computed: past it the cap has long been reached, and `2^n` must not overflow.
const DOUBLINGS_MAX: u32 = 30;

impl RetryPolicy {
    /// The backoff before retry number `retries_done + 1`, with `unit` in [0, 1) from the RNG.
    pub fn backoff(&self, retries_done: u32, unit: f64) -> Duration {
        let doubled = self.initial_delay.saturating_mul(1 << retries_done.min(DOUBLINGS_MAX));
        let capped = doubled.min(self.max_delay);
        // A unit outside [0, 1] (or NaN) would make `mul_f64` panic or stretch the wait.
        let unit = if unit.is_finite() { unit.clamp(0.0, 1.0) } else { 0.0 };
        capped.mul_f64(1.0 - 0.25 * unit)
    }

    /// The wait before the next retry, or `None` when the server asked for more than
    /// `max_retry_after` (see the module docs).
    pub fn wait(&self, retries_done: u32, server_wait_ms: Option<f64>, unit: f64) -> Option<Duration> {
        match server_wait_ms {
            Some(ms) if ms > 0.0 => {
                let wait = Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX);
                (wait <= self.max_retry_after).then_some(wait)
            }
            _ => Some(self.backoff(retries_done, unit)),
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

fn finite(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// The wait the server asked for, in ms (negative for an HTTP date already past). `now_ns` is
/// read only for an HTTP date.
pub fn server_wait_ms(headers: &HeaderMap, now_ns: impl FnOnce() -> i64) -> Option<f64> {
    if let Some(ms) = header(headers, "retry-after-ms").and_then(finite) {
        return Some(ms);
    }
    let retry_after = header(headers, "retry-after")?;
    if let Some(seconds) = finite(retry_after) {
        return Some(seconds * 1000.0);
    }
    let date = httpdate::parse_http_date(retry_after).ok()?;
    let date_ms = match date.duration_since(std::time::UNIX_EPOCH) {
        Ok(since) => since.as_millis() as f64,
        Err(before) => -(before.duration().as_millis() as f64),
    };
    Some(date_ms - now_ns() as f64 / 1e6)
}

/// Whether an error answer is retried (before the policy's count and wait are applied).
/// `exhausted` is an exhausted quota or spend limit, read from the body.
pub fn retryable(status: u16, headers: &HeaderMap, exhausted: bool) -> bool {
    if exhausted {
        return false;
    }
    match header(headers, "x-should-retry") {
        Some("true") => return true,
        Some("false") => return false,
        _ => {}
    }
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// Whether an error body says the quota or spend limit is exhausted: OpenAI's
/// `insufficient_quota` (as `code` or `type`), Anthropic's `billing_error` type or
/// `details.error_code: enforced_spend_limit_reached`.
pub fn exhausted(kind: Option<&str>, code: Option<&str>) -> bool {
    const EXHAUSTED: [&str; 3] = ["insufficient_quota", "billing_error", "enforced_spend_limit_reached"];
    [kind, code].into_iter().flatten().any(|v| EXHAUSTED.contains(&v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn reads_the_servers_wait() {
        // 2026-12-07T12:00:00Z, the clock the date is read against.
        let now_ns = 1_796_644_800 * 1_000_000_000_i64;
        type Headers = &'static [(&'static str, &'static str)];
        let cases: [(Headers, Option<f64>); 8] = [
            (&[], None),
            (&[("retry-after-ms", "250")], Some(250.0)),
            (&[("retry-after-ms", "250"), ("retry-after", "9")], Some(250.0)),
            (&[("retry-after-ms", "soon"), ("retry-after", "2")], Some(2000.0)),
            (&[("retry-after", "1.5")], Some(1500.0)),
            (&[("retry-after", "Mon, 07 Dec 2026 12:00:30 GMT")], Some(30_000.0)),
            (&[("retry-after", "Mon, 07 Dec 2026 11:59:50 GMT")], Some(-10_000.0)),
            (&[("retry-after", "whenever")], None),
        ];
        for (pairs, expected) in cases {
            assert_eq!(server_wait_ms(&headers(pairs), || now_ns), expected, "{pairs:?}");
        }
    }

    #[test]
    fn retries_what_the_sdks_retry_and_never_an_exhausted_quota() {
        let none = HeaderMap::new();
        let cases = [
            (400, &none, false, false),
            (401, &none, false, false),
            (404, &none, false, false),
            (408, &none, false, true),
            (409, &none, false, true),
            (429, &none, false, true),
            (429, &none, true, false),
            (500, &none, false, true),
            (503, &none, false, true),
            (529, &none, false, true),
            (400, &headers(&[("x-should-retry", "true")]), false, true),
            (503, &headers(&[("x-should-retry", "false")]), false, false),
            (429, &headers(&[("x-should-retry", "true")]), true, false),
        ];
        for (status, headers, exhausted, expected) in cases {
            assert_eq!(retryable(status, headers, exhausted), expected, "{status} {headers:?} {exhausted}");
        }
        assert!(exhausted(Some("insufficient_quota"), Some("insufficient_quota")));
        assert!(exhausted(Some("rate_limit_error"), Some("enforced_spend_limit_reached")));
        assert!(exhausted(Some("billing_error"), None));
        assert!(!exhausted(Some("requests"), Some("rate_limit_exceeded")));
    }

    #[test]
    fn waits_as_asked_else_backs_off_with_jitter() {
        let policy = RetryPolicy::default();
        let ms = Duration::from_millis;
        assert_eq!(policy.wait(0, Some(50.0), 0.0), Some(ms(50)));
        assert_eq!(policy.wait(0, Some(60_000.0), 0.0), Some(ms(60_000)));
        assert_eq!(policy.wait(0, Some(60_001.0), 0.0), None, "longer than max_retry_after: not waited out");
        assert_eq!(policy.wait(0, Some(-5.0), 0.0), Some(ms(500)), "a date in the past: backoff");
        assert_eq!(policy.wait(0, None, 0.0), Some(ms(500)));
        assert_eq!(policy.wait(1, None, 0.0), Some(ms(1000)));
        assert_eq!(policy.wait(4, None, 0.0), Some(ms(8000)));
        assert_eq!(policy.wait(1000, None, 0.0), Some(ms(8000)));
        assert_eq!(policy.wait(1, None, 0.5), Some(ms(875)));
        assert_eq!(policy.wait(1, None, 0.999_999), Some(Duration::from_nanos(750_000_250)));
        assert_eq!(policy.wait(1, None, f64::NAN), Some(ms(1000)));
        assert_eq!(policy.wait(1, None, 7.0), Some(ms(750)));
    }
}

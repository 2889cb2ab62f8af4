//! v5 authentication (VENUES.md §1.2–1.4, §2): HMAC-SHA256 over
//! `timestamp + api_key + recv_window + payload` for REST, over `"GET/realtime" + expires` for the
//! private WebSocket. The clock is the wall clock plus the `skew_ms` fault, never market time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ApiError;

/// `recv_window` when the request does not say.
pub const RECV_WINDOW_DEFAULT_MS: i64 = 5000;
/// How far ahead of the server a request's timestamp may be.
pub const AHEAD_MS_MAX: i64 = 1000;

/// Lowercase hex HMAC-SHA256 of `payload` under `secret`.
pub fn sign(secret: &str, payload: &[u8]) -> String {
    // HMAC takes a key of any length: new_from_slice cannot fail for it.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

/// Whether `signature` (hex, any case) is `payload` signed with `secret`, in constant time.
pub fn verify(secret: &str, payload: &[u8], signature: &str) -> bool {
    let Ok(bytes) = hex::decode(signature.trim()) else { return false };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { return false };
    mac.update(payload);
    mac.verify_slice(&bytes).is_ok()
}

/// The authentication headers of a private REST request.
#[derive(Clone, Debug, Default)]
pub struct Headers<'a> {
    pub api_key: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub sign: Option<&'a str>,
    pub recv_window: Option<&'a str>,
}

/// Checks a private REST request, in Bybit's order: the key (10003), the timestamp against
/// `recv_window` (10002), the signature over `payload` — the query string as sent for GET, the
/// raw body for POST (10004).
///
/// # Errors
/// The refusal, with Bybit's retMsg.
pub fn check_rest(
    headers: &Headers<'_>,
    payload: &[u8],
    api_key: &str,
    api_secret: &str,
    now_ms: i64,
) -> Result<(), ApiError> {
    let key = headers.api_key.unwrap_or_default();
    if key.is_empty() || key != api_key {
        return Err(ApiError::new(10003, "API key is invalid."));
    }
    let recv_window = match headers.recv_window.map(str::trim) {
        None | Some("") => RECV_WINDOW_DEFAULT_MS,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .filter(|w| *w > 0)
            .ok_or_else(|| ApiError::params(format!("invalid recv_window: {text}")))?,
    };
    let timestamp_text = headers.timestamp.unwrap_or_default().trim();
    let timestamp = timestamp_text.parse::<i64>().unwrap_or(0);
    if !(now_ms - recv_window <= timestamp && timestamp < now_ms + AHEAD_MS_MAX) {
        return Err(ApiError::new(
            10002,
            format!(
                "invalid request, please check your server timestamp or recv_window param. \
                 req_timestamp[{timestamp}],server_timestamp[{now_ms}],recv_window[{recv_window}]"
            ),
        ));
    }
    let mut origin = Vec::with_capacity(payload.len() + 64);
    origin.extend_from_slice(timestamp_text.as_bytes());
    origin.extend_from_slice(key.as_bytes());
    origin.extend_from_slice(headers.recv_window.map_or_else(|| "5000".to_owned(), |w| w.trim().to_owned()).as_bytes());
    origin.extend_from_slice(payload);
    if !verify(api_secret, &origin, headers.sign.unwrap_or_default()) {
        return Err(ApiError::new(10004, format!("error sign! origin_string[{}]", String::from_utf8_lossy(&origin))));
    }
    Ok(())
}

/// Why a WebSocket `auth` op failed, as the `ret_msg` says it.
///
/// # Errors
/// The `ret_msg` of the failure.
pub fn check_ws(args: &[serde_json::Value], api_key: &str, api_secret: &str, now_ms: i64) -> Result<(), String> {
    let [key, expires, signature] = args else { return Err("Params Error".into()) };
    let expires = match expires {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    let (Some(key), Some(expires), Some(signature)) = (key.as_str(), expires, signature.as_str()) else {
        return Err("Params Error".into());
    };
    if key != api_key {
        return Err("error:api_key not found".into());
    }
    // An expiry already past is what clients with a skewed clock see (pybit#300).
    if expires <= now_ms {
        return Err("Params Error".into());
    }
    if !verify(api_secret, format!("GET/realtime{expires}").as_bytes(), signature) {
        return Err("error:signature verification failed".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers<'a>(key: &'a str, ts: &'a str, sign: &'a str) -> Headers<'a> {
        Headers { api_key: Some(key), timestamp: Some(ts), sign: Some(sign), recv_window: Some("5000") }
    }

    #[test]
    fn rest_signatures_in_bybit_order() {
        let payload = b"category=linear&symbol=BTCUSDT";
        let good = sign("s3cret", b"1000000k5000category=linear&symbol=BTCUSDT");
        assert_eq!(check_rest(&headers("k", "1000000", &good), payload, "k", "s3cret", 1_000_500), Ok(()));
        let cases = [
            (headers("other", "1000000", &good), 1_000_500, 10003),
            (headers("k", "1000000", &good), 1_006_000, 10002),
            (headers("k", "1000000", &good), 998_999, 10002),
            (headers("k", "1000000", "00ff"), 1_000_500, 10004),
            (headers("k", "1000000", "not hex"), 1_000_500, 10004),
        ];
        for (h, now, code) in cases {
            assert_eq!(check_rest(&h, payload, "k", "s3cret", now).map_err(|e| e.code), Err(code), "{h:?} at {now}");
        }
        let err = check_rest(&headers("k", "1000000", &good), payload, "k", "s3cret", 1_006_000).unwrap_err();
        assert_eq!(
            err.message,
            "invalid request, please check your server timestamp or recv_window param. \
             req_timestamp[1000000],server_timestamp[1006000],recv_window[5000]"
        );
    }

    #[test]
    fn ws_auth() {
        let sig = sign("s", b"GET/realtime2000");
        let args = |key: &str, sig: &str| vec![key.into(), 2000.into(), sig.into()];
        assert_eq!(check_ws(&args("k", &sig), "k", "s", 1000), Ok(()));
        assert_eq!(check_ws(&args("k", &sig), "k", "s", 2000), Err("Params Error".into()));
        assert!(check_ws(&args("k", "ab"), "k", "s", 1000).is_err());
        assert!(check_ws(&args("x", &sig), "k", "s", 1000).is_err());
        assert!(check_ws(&[], "k", "s", 1000).is_err());
    }
}

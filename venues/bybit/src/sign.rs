//! The v5 signatures: HMAC-SHA256 in lowercase hex.
//!
//! - REST: `timestamp + api_key + recv_window + payload`, where the payload is the query
//!   string of a GET or the JSON body of a POST, byte for byte as sent.
//! - WebSocket auth op: `"GET/realtime" + expires`.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::Credentials;

/// `hex(HMAC-SHA256(secret, message))`, lowercase.
pub fn hmac_sha256_hex(secret: &[u8], message: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// The string a REST request signs: `timestamp + key + recv_window + payload`.
pub fn rest_message(timestamp_ms: i64, api_key: &str, recv_window_ms: u64, payload: &str) -> String {
    format!("{timestamp_ms}{api_key}{recv_window_ms}{payload}")
}

/// `X-BAPI-SIGN` of a request whose query string (GET) or body (POST) is `payload`.
pub fn rest(credentials: &Credentials, timestamp_ms: i64, recv_window_ms: u64, payload: &str) -> String {
    let message = rest_message(timestamp_ms, &credentials.key, recv_window_ms, payload);
    hmac_sha256_hex(credentials.secret().as_bytes(), message.as_bytes())
}

/// The signature of the WebSocket auth op `{"op":"auth","args":[key, expires_ms, signature]}`.
pub fn ws_auth(credentials: &Credentials, expires_ms: i64) -> String {
    hmac_sha256_hex(credentials.secret().as_bytes(), format!("GET/realtime{expires_ms}").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Every expected value below was computed independently, once, with Python's standard library:
    //   python3 -c 'import hmac,hashlib; print(hmac.new(SECRET.encode(), MESSAGE.encode(), hashlib.sha256).hexdigest())'
    // with the SECRET and MESSAGE of each case.

    #[test]
    fn hmac_matches_the_wikipedia_vector() {
        // Secret "key", message "The quick brown fox jumps over the lazy dog".
        assert_eq!(
            hmac_sha256_hex(b"key", b"The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn rest_get_signs_timestamp_key_window_and_query() {
        // Secret "test-secret", message "1658384314791test-key5000category=linear&symbol=BTCUSDT".
        let credentials = Credentials::new("test-key", "test-secret");
        assert_eq!(
            rest_message(1_658_384_314_791, "test-key", 5000, "category=linear&symbol=BTCUSDT"),
            "1658384314791test-key5000category=linear&symbol=BTCUSDT"
        );
        assert_eq!(
            rest(&credentials, 1_658_384_314_791, 5000, "category=linear&symbol=BTCUSDT"),
            "acbce6f124ccb7a0f1a447455f5ade0ab2b18de10682b04f40e02d260e338d26"
        );
    }

    #[test]
    fn rest_post_signs_the_body_bytes() {
        // Secret "test-secret", message "1658385579423test-key5000{"category":"linear","symbol":"BTCUSDT"}".
        let credentials = Credentials::new("test-key", "test-secret");
        assert_eq!(
            rest(&credentials, 1_658_385_579_423, 5000, r#"{"category":"linear","symbol":"BTCUSDT"}"#),
            "6138a9928d12e269baf9878584f0f45b4462faf6a9008d8dfc070eaed809a966"
        );
    }

    #[test]
    fn ws_auth_signs_get_realtime_and_expires() {
        // Secret "test-secret", message "GET/realtime1672324988882".
        let credentials = Credentials::new("test-key", "test-secret");
        assert_eq!(
            ws_auth(&credentials, 1_672_324_988_882),
            "25e12bf141ba930a71502f73365ef6bda28b97fbd751742b6d9f6d6448e79616"
        );
    }
}

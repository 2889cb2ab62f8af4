//! Telegram delivery: the Bot API's `sendMessage`, and the loop that delivers a live run's
//! journaled notifications.
//!
//! # The wire
//! `POST {base_url}/bot<token>/sendMessage` with a JSON body; the answer is
//! `{"ok": true, "result": Message}` or `{"ok": false, "error_code": N, "description": "...",
//! "parameters": {"retry_after": S}}`. The token is part of the URL, so no error here ever
//! carries a URL (reqwest's errors are stripped of theirs) and `Debug` shows the base only.
//!
//! # Delivery ([`deliver`])
//! At least once, in the order given, paced to a per-minute rate (Telegram's FAQ: about one
//! message a second in a chat, 20 a minute in a group; it documents no exact limits, so the
//! pace is the caller's setting). A 429 waits its `retry_after`; a 5xx or a lost connection is
//! sent again after a backoff (1 s doubling to a minute) — a message whose answer was lost may
//! so arrive twice, which is why the live driver puts the journal's sequence number in the
//! text. Any other refusal (a wrong token, an unknown chat, the bot blocked) is a setting to
//! fix, not a message to drop: delivery halts and says why, and what was not delivered stays
//! in the outbox for the next start.

use std::{num::NonZeroU32, time::Duration};

use governor::{Quota, RateLimiter};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

/// Telegram's limit on a message's text, in UTF-16 code units.
pub const TEXT_MAX: usize = 4096;
/// The default pace: 20 a minute, Telegram's group limit (safe for every kind of chat).
pub const PER_MINUTE_DEFAULT: u32 = 20;

/// Why a call failed. No variant holds the token or a URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// 429: Telegram asks to wait this long.
    #[error("Telegram asks to retry after {0:?}")]
    RetryAfter(Duration),
    /// 5xx: Telegram's trouble; worth sending again.
    #[error("Telegram answered {code}: {description}")]
    Server { code: u16, description: String },
    /// The request never got an answer (connection refused or lost, timeout).
    #[error("no answer from Telegram: {0}")]
    Transport(String),
    /// Any other refusal: a wrong token, an unknown chat, a text Telegram will not take.
    #[error("Telegram refused with {code}: {description}")]
    Refused { code: u16, description: String },
}

impl Error {
    /// Whether sending the same message again may succeed.
    pub fn retryable(&self) -> bool {
        !matches!(self, Error::Refused { .. })
    }
}

/// A Bot API client for one bot.
#[derive(Clone)]
pub struct Bot {
    http: reqwest::Client,
    base_url: String,
    /// `{base_url}/bot<token>`: secret.
    methods: String,
}

impl std::fmt::Debug for Bot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bot").field("base_url", &self.base_url).finish_non_exhaustive()
    }
}

impl Bot {
    /// A client of `base_url` (`https://api.telegram.org`, or a local server's URL) for the
    /// bot `token`; each request gives up after `timeout`.
    ///
    /// # Errors
    /// The HTTP client cannot be built (no TLS backend).
    pub fn new(base_url: &str, token: &str, timeout: Duration) -> Result<Bot, Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| Error::Transport(e.without_url().to_string()))?;
        let base_url = base_url.trim_end_matches('/').to_owned();
        Ok(Bot { http, methods: format!("{base_url}/bot{token}"), base_url })
    }

    /// `getMe`: the bot's own user.
    ///
    /// # Errors
    /// As [`Error`].
    pub async fn get_me(&self) -> Result<Value, Error> {
        self.call("getMe", &json!({})).await
    }

    /// `sendMessage` of plain `text` (no parse mode: a notification is shown as written) to
    /// `chat` (a numeric id or `@channel`). Returns the message's id.
    ///
    /// # Errors
    /// As [`Error`].
    pub async fn send_message(&self, chat: &str, text: &str) -> Result<i64, Error> {
        let chat_id = chat.trim().parse::<i64>().map_or_else(|_| json!(chat.trim()), |id| json!(id));
        let result = self.call("sendMessage", &json!({ "chat_id": chat_id, "text": text })).await?;
        result
            .get("message_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| Error::Server { code: 200, description: "an answer without a message_id".into() })
    }

    async fn call(&self, method: &str, body: &Value) -> Result<Value, Error> {
        let transport = |e: reqwest::Error| Error::Transport(e.without_url().to_string());
        let response =
            self.http.post(format!("{}/{method}", self.methods)).json(body).send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(transport)?;
        let Ok(answer) = serde_json::from_slice::<Value>(&bytes) else {
            let description = format!("HTTP {status} with a body that is not JSON");
            return Err(if status >= 500 {
                Error::Server { code: status, description }
            } else {
                Error::Refused { code: status, description }
            });
        };
        if answer.get("ok").and_then(Value::as_bool) == Some(true) {
            return Ok(answer.get("result").cloned().unwrap_or(Value::Null));
        }
        let code =
            answer.get("error_code").and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok()).unwrap_or(status);
        let description = answer.get("description").and_then(Value::as_str).unwrap_or("no description").to_owned();
        if let Some(secs) = answer.pointer("/parameters/retry_after").and_then(Value::as_u64) {
            return Err(Error::RetryAfter(Duration::from_secs(secs)));
        }
        Err(match code {
            429 => Error::RetryAfter(Duration::from_secs(1)),
            500.. => Error::Server { code, description },
            _ => Error::Refused { code, description },
        })
    }
}

/// `text` cut to Telegram's limit, with an ellipsis when cut.
pub fn fit(text: &str) -> String {
    if text.encode_utf16().count() <= TEXT_MAX {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut units = 0;
    for c in text.chars() {
        units += c.len_utf16();
        if units > TEXT_MAX - 1 {
            break;
        }
        out.push(c);
    }
    out.push('…');
    out
}

/// A notification to deliver: the journal's sequence number of its `NotificationSent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub seq: u64,
    pub text: String,
}

/// What [`deliver`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Report {
    Delivered {
        seq: u64,
        message_id: i64,
    },
    /// Telegram refused in a way no retry mends; nothing more is sent.
    Halted {
        seq: u64,
        error: Error,
    },
}

/// The longest wait between two attempts at one message.
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Delivers what arrives on `outgoing` to `chat`, in order, at most `per_minute` a minute,
/// each until it is delivered (see the module doc), and hands every outcome to `report`
/// (which returns false to stop). Ends when `outgoing` is closed and empty, or at a halt.
pub async fn deliver(
    bot: Bot,
    chat: String,
    per_minute: NonZeroU32,
    mut outgoing: UnboundedReceiver<Outgoing>,
    mut report: impl FnMut(Report) -> bool + Send,
) {
    let pace = RateLimiter::direct(Quota::per_minute(per_minute).allow_burst(NonZeroU32::MIN));
    while let Some(message) = outgoing.recv().await {
        let mut backoff = Duration::from_secs(1);
        let outcome = loop {
            pace.until_ready().await;
            match bot.send_message(&chat, &message.text).await {
                Ok(message_id) => break Report::Delivered { seq: message.seq, message_id },
                Err(Error::RetryAfter(wait)) => {
                    tracing::warn!(seq = message.seq, wait_s = wait.as_secs(), "telegram flood limit: waiting");
                    tokio::time::sleep(wait).await;
                }
                Err(error) if error.retryable() => {
                    tracing::warn!(seq = message.seq, %error, retry_in_ms = backoff.as_millis() as u64, "telegram delivery failed: sending again");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(error) => break Report::Halted { seq: message.seq, error },
            }
        };
        let halted = matches!(outcome, Report::Halted { .. });
        if !report(outcome) || halted {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_cuts_at_the_limit_in_utf16_units() {
        assert_eq!(fit("short"), "short");
        let long = "€".repeat(TEXT_MAX + 10);
        let cut = fit(&long);
        assert_eq!(cut.encode_utf16().count(), TEXT_MAX);
        assert!(cut.ends_with('…'));
        // A character outside the BMP is two units: never split.
        let emoji = "😀".repeat(TEXT_MAX);
        assert!(fit(&emoji).encode_utf16().count() <= TEXT_MAX);
    }
}

//! A local Telegram Bot API server: `getMe` and `sendMessage` on loopback, with Telegram's
//! answers, error bodies and flood limits, and scripted faults.
//!
//! The official Python library (`python-telegram-bot`) and our own `telegram` client work
//! against it unchanged with only the base URL changed (`tests/ptb.rs` runs the former), so
//! notification delivery can be tested end to end, offline, across restarts and faults.
//!
//! # What it models
//! - **The URL scheme** `/bot<token>/<method>`, methods case-insensitive, parameters from the
//!   query string, an `application/x-www-form-urlencoded` body (what python-telegram-bot
//!   sends) or a JSON body (what ours sends).
//! - **Answers** `{"ok": true, "result": ...}` and errors `{"ok": false, "error_code": N,
//!   "description": "..."}` with the same HTTP status: a token of the wrong form is 404 `Not
//!   Found`, a token of the right form that is not the bot's is 401 `Unauthorized`, an unknown
//!   method is 404, a missing chat or empty text is 400 `Bad Request: ...`, a chat the bot does
//!   not know is 400 `Bad Request: chat not found`, text over 4,096 UTF-16 units is 400
//!   `Bad Request: message is too long`.
//! - **Flood limits**: per chat, at most N messages in a sliding period (default 20 a minute,
//!   the group limit Telegram's FAQ names); over it, 429 `Too Many Requests: retry after S`
//!   with `parameters.retry_after`.
//! - **Faults** ([`Script`]) by the number of the `sendMessage` request: an HTTP 5xx, a 429
//!   with a given `retry_after`, or `lost`: the message is delivered but the answer never
//!   comes (the client times out, as when a connection dies after Telegram acted).
//! - **Logs**: `GET /sim/messages` lists the delivered messages; `GET /sim/requests` every
//!   `sendMessage` request with its status and fault.
//!
//! # What it does not model
//! Updates, webhooks, files, entities and `parse_mode` parsing, every method but `getMe`,
//! `sendMessage` and an empty `getUpdates`.

use std::{
    collections::{BTreeMap, VecDeque},
    io::Write,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context};
use axum::{
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{header, HeaderMap, Method, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, get},
    Json, Router,
};
use serde::Serialize;
use serde_json::{json, Map, Value};

/// Telegram's limit on a message's text, in UTF-16 code units.
pub const TEXT_MAX: usize = 4096;

/// `quantfold telegram-sim ...`
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Where to listen (loopback; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,
    /// The environment variable holding the one bot token accepted.
    #[arg(long, default_value = "TELEGRAM_BOT_TOKEN")]
    pub token_env: String,
    /// A chat the bot knows (repeatable); without any, every numeric id and @name is known.
    #[arg(long = "chat")]
    pub chats: Vec<String>,
    /// The flood limit per chat: messages per period in seconds, "20/60" by default.
    #[arg(long, default_value = "20/60")]
    pub rate: String,
    /// Faults by `sendMessage` request number, e.g. "500@2,429:3@4,lost@6".
    #[arg(long)]
    pub script: Option<String>,
}

impl Args {
    /// The server's settings; the token is read from the environment here.
    ///
    /// # Errors
    /// The token variable is unset or malformed, or the rate or script does not parse.
    pub fn config(&self) -> anyhow::Result<Config> {
        let token = std::env::var(&self.token_env)
            .with_context(|| format!("set {} to the bot token the server accepts", self.token_env))?;
        if !token_shaped(&token) {
            bail!("{} does not hold a bot token of the form 123456:ABC-def", self.token_env);
        }
        Ok(Config {
            listen: self.listen.clone(),
            token,
            chats: self.chats.clone(),
            rate: Rate::parse(&self.rate)?,
            script: Script::parse(self.script.as_deref().unwrap_or(""))?,
        })
    }
}

/// Runs the server until ctrl-c; the first stdout line is `telegram-sim http://127.0.0.1:PORT`.
///
/// # Errors
/// Bad arguments or a socket that cannot be bound.
pub fn run(args: &Args) -> anyhow::Result<()> {
    let config = args.config()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("failed to build the tokio runtime")?;
    runtime.block_on(async move {
        let server = serve(config).await?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "telegram-sim {}", server.base_url())
            .and_then(|()| stdout.flush())
            .context("failed to write the URL to stdout")?;
        drop(stdout);
        tokio::signal::ctrl_c().await.context("failed to wait for ctrl-c")?;
        server.shutdown();
        Ok(())
    })
}

/// Whether `token` has the form of a bot token: digits, a colon, then [A-Za-z0-9_-].
pub fn token_shaped(token: &str) -> bool {
    token.split_once(':').is_some_and(|(id, secret)| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit())
            && !secret.is_empty()
            && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    })
}

/// The flood limit of one chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub messages: usize,
    pub period: Duration,
}

impl Rate {
    /// `"20/60"`: 20 messages per 60 seconds.
    ///
    /// # Errors
    /// Not two positive integers around a slash.
    pub fn parse(text: &str) -> anyhow::Result<Rate> {
        let parsed = text.split_once('/').and_then(|(n, s)| Some((n.trim().parse().ok()?, s.trim().parse().ok()?)));
        match parsed {
            Some((messages, secs)) if messages > 0 && secs > 0 => {
                Ok(Rate { messages, period: Duration::from_secs(secs) })
            }
            _ => bail!("bad rate {text:?}: want MESSAGES/SECONDS, e.g. 20/60"),
        }
    }
}

impl Default for Rate {
    fn default() -> Rate {
        Rate { messages: 20, period: Duration::from_secs(60) }
    }
}

/// A scripted fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An HTTP 5xx with Telegram's error body.
    Status(u16),
    /// 429 with this `retry_after` in seconds.
    RetryAfter(u64),
    /// Delivered, but never answered.
    Lost,
}

/// Faults by `sendMessage` request number (1-based).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Script(BTreeMap<u64, Fault>);

impl Script {
    /// `"500@2,429:3@4,lost@6"`.
    ///
    /// # Errors
    /// An entry that does not parse.
    pub fn parse(text: &str) -> anyhow::Result<Script> {
        let mut faults = BTreeMap::new();
        for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (fault, n) = entry.split_once('@').with_context(|| format!("bad fault {entry:?}: want FAULT@N"))?;
            let n: u64 = n.parse().with_context(|| format!("bad request number in {entry:?}"))?;
            let fault = match fault.split_once(':') {
                Some(("429", secs)) => {
                    Fault::RetryAfter(secs.parse().with_context(|| format!("bad retry_after in {entry:?}"))?)
                }
                None if fault == "lost" => Fault::Lost,
                None => match fault.parse::<u16>() {
                    Ok(status) if (500..600).contains(&status) => Fault::Status(status),
                    Ok(429) => Fault::RetryAfter(1),
                    _ => bail!("bad fault {fault:?}: want a 5xx status, 429:SECONDS or lost"),
                },
                Some(_) => bail!("bad fault {fault:?}: want a 5xx status, 429:SECONDS or lost"),
            };
            faults.insert(n, fault);
        }
        Ok(Script(faults))
    }
}

/// The server's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: String,
    pub token: String,
    /// Chats the bot knows; empty: all.
    pub chats: Vec<String>,
    pub rate: Rate,
    pub script: Script,
}

/// A delivered message, as `GET /sim/messages` lists it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Message {
    pub message_id: i64,
    pub chat_id: Value,
    pub text: String,
    pub date: i64,
}

/// One `sendMessage` request, as `GET /sim/requests` lists it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Entry {
    pub n: u64,
    pub status: u16,
    pub fault: Option<String>,
}

#[derive(Debug, Default)]
struct Sim {
    requests: u64,
    next_message_id: i64,
    messages: Vec<Message>,
    entries: Vec<Entry>,
    /// Per chat, when its recent messages were accepted.
    recent: BTreeMap<String, VecDeque<Instant>>,
}

struct Shared {
    config: Config,
    sim: Mutex<Sim>,
}

impl Shared {
    fn sim(&self) -> std::sync::MutexGuard<'_, Sim> {
        self.sim.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// `http://127.0.0.1:PORT`: a client's base URL (the methods are under `/bot<token>/`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The messages delivered so far.
    pub fn messages(&self) -> Vec<Message> {
        self.shared.sim().messages.clone()
    }

    /// The `sendMessage` requests so far.
    pub fn requests(&self) -> Vec<Entry> {
        self.shared.sim().entries.clone()
    }

    pub fn shutdown(self) {
        self.task.abort();
    }
}

/// Binds and serves in the background.
///
/// # Errors
/// The address cannot be bound.
pub async fn serve(config: Config) -> anyhow::Result<Server> {
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot bind {}", config.listen))?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared { config, sim: Mutex::new(Sim { next_message_id: 1, ..Sim::default() }) });
    let app = Router::new()
        .route("/sim/messages", get(list_messages))
        .route("/sim/requests", get(list_requests))
        .route("/{bot}/{method}", any(bot_method))
        .fallback(|| async { error(404, "Not Found") })
        .with_state(shared.clone());
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!("telegram-sim stopped: {e}");
        }
    });
    Ok(Server { addr, shared, task })
}

async fn list_messages(State(shared): State<Arc<Shared>>) -> Json<Vec<Message>> {
    Json(shared.sim().messages.clone())
}

async fn list_requests(State(shared): State<Arc<Shared>>) -> Json<Vec<Entry>> {
    Json(shared.sim().entries.clone())
}

fn error(code: u16, description: &str) -> Response {
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(json!({ "ok": false, "error_code": code, "description": description }))).into_response()
}

fn ok(result: Value) -> Response {
    Json(json!({ "ok": true, "result": result })).into_response()
}

async fn bot_method(
    State(shared): State<Arc<Shared>>,
    Path((bot, method)): Path<(String, String)>,
    method_kind: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let Some(token) = bot.strip_prefix("bot").filter(|t| token_shaped(t)) else {
        return error(404, "Not Found");
    };
    if token != shared.config.token {
        return error(401, "Unauthorized");
    }
    let params = match params(&method_kind, &headers, query.as_deref(), &body) {
        Ok(p) => p,
        Err(description) => return error(400, &description),
    };
    let bot_id: i64 = token.split(':').next().and_then(|id| id.parse().ok()).unwrap_or(0);
    match method.to_ascii_lowercase().as_str() {
        "getme" => ok(json!({
            "id": bot_id,
            "is_bot": true,
            "first_name": "quantfold",
            "username": "quantfold_sim_bot",
            "can_join_groups": true,
            "can_read_all_group_messages": false,
            "supports_inline_queries": false,
        })),
        "getupdates" => ok(json!([])),
        "sendmessage" => send_message(&shared, bot_id, &params).await,
        _ => error(404, "Not Found"),
    }
}

/// The parameters of a call, by Telegram's rules: the query string, then the body's.
fn params(
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let form = |text: &[u8], out: &mut Map<String, Value>| {
        for (k, v) in serde_urlencoded::from_bytes::<Vec<(String, String)>>(text).unwrap_or_default() {
            out.insert(k, Value::String(v));
        }
    };
    if let Some(q) = query {
        form(q.as_bytes(), &mut out);
    }
    if *method == Method::GET || body.is_empty() {
        return Ok(out);
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => out.extend(map),
            _ => return Err("Bad Request: can't parse JSON object".into()),
        }
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        form(body, &mut out);
    } else {
        return Err(format!(
            "Bad Request: unsupported content type {content_type:?} (this server reads query strings, forms and JSON)"
        ));
    }
    Ok(out)
}

/// A chat id as sent: an integer (as a number or a string) or `@username`.
fn chat_of(value: &Value) -> Option<(String, Value, &'static str)> {
    let text = match value {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        _ => return None,
    };
    if let Ok(id) = text.parse::<i64>() {
        let kind = if id > 0 { "private" } else { "group" };
        return Some((text, json!(id), kind));
    }
    let name = text
        .strip_prefix('@')
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))?;
    let id = -1_000_000_000_000
        - i64::from(name.bytes().fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b))) % 1_000_000);
    Some((text, json!(id), "channel"))
}

async fn send_message(shared: &Shared, bot_id: i64, params: &Map<String, Value>) -> Response {
    let (n, fault) = {
        let mut sim = shared.sim();
        sim.requests += 1;
        let n = sim.requests;
        (n, shared.config.script.0.get(&n).copied())
    };
    let log = |status: u16, fault: Option<String>| shared.sim().entries.push(Entry { n, status, fault });
    match fault {
        Some(Fault::Status(status)) => {
            log(status, Some(status.to_string()));
            let text = StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Server Error");
            return error(status, text);
        }
        Some(Fault::RetryAfter(secs)) => {
            log(429, Some(format!("429:{secs}")));
            return retry_after(secs);
        }
        Some(Fault::Lost) | None => {}
    }
    let Some(chat) = params.get("chat_id") else {
        log(400, None);
        return error(400, "Bad Request: chat_id is empty");
    };
    let Some((key, chat_id, kind)) = chat_of(chat) else {
        log(400, None);
        return error(400, "Bad Request: chat not found");
    };
    if !shared.config.chats.is_empty() && !shared.config.chats.iter().any(|c| c.trim() == key) {
        log(400, None);
        return error(400, "Bad Request: chat not found");
    }
    let text = params.get("text").and_then(Value::as_str).unwrap_or("");
    if text.trim().is_empty() {
        log(400, None);
        return error(400, "Bad Request: message text is empty");
    }
    if text.encode_utf16().count() > TEXT_MAX {
        log(400, None);
        return error(400, "Bad Request: message is too long");
    }
    let date = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()).try_into().unwrap_or(0i64);
    let message = {
        let mut sim = shared.sim();
        let now = Instant::now();
        let rate = shared.config.rate;
        let recent = sim.recent.entry(key).or_default();
        while recent.front().is_some_and(|t| now.duration_since(*t) >= rate.period) {
            recent.pop_front();
        }
        if recent.len() >= rate.messages {
            let free_at = recent.front().map_or(now, |t| *t + rate.period);
            let secs = free_at.duration_since(now).as_secs_f64().ceil().max(1.0) as u64;
            sim.entries.push(Entry { n, status: 429, fault: None });
            return retry_after(secs);
        }
        recent.push_back(now);
        let message_id = sim.next_message_id;
        sim.next_message_id += 1;
        let message = Message { message_id, chat_id: chat_id.clone(), text: text.to_owned(), date };
        sim.messages.push(message.clone());
        sim.entries.push(Entry { n, status: 200, fault: fault.map(|_| "lost".to_owned()) });
        message
    };
    if fault == Some(Fault::Lost) {
        // Telegram acted; the answer never arrives. The client's timeout ends the wait.
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
    let mut chat = json!({ "id": chat_id, "type": kind });
    match kind {
        "private" => chat["first_name"] = json!("Operator"),
        "channel" => {
            chat["title"] = json!("quantfold alerts");
            chat["username"] = json!(params["chat_id"].as_str().unwrap_or("").trim().trim_start_matches('@'));
        }
        _ => chat["title"] = json!("quantfold alerts"),
    }
    ok(json!({
        "message_id": message.message_id,
        "from": { "id": bot_id, "is_bot": true, "first_name": "quantfold", "username": "quantfold_sim_bot" },
        "chat": chat,
        "date": message.date,
        "text": message.text,
    }))
}

fn retry_after(secs: u64) -> Response {
    let body = json!({
        "ok": false,
        "error_code": 429,
        "description": format!("Too Many Requests: retry after {secs}"),
        "parameters": { "retry_after": secs },
    });
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_rates_and_scripts_parse_or_say_why() {
        assert!(token_shaped("123456:ABC-def_9"));
        assert!(
            !token_shaped("123456ABC") && !token_shaped(":abc") && !token_shaped("12:a/b") && !token_shaped("1a:b")
        );
        assert_eq!(Rate::parse("3/2").unwrap(), Rate { messages: 3, period: Duration::from_secs(2) });
        assert!(Rate::parse("0/2").is_err() && Rate::parse("3").is_err());
        let script = Script::parse("500@2, 429:3@4,lost@6").unwrap();
        assert_eq!(script.0.get(&2), Some(&Fault::Status(500)));
        assert_eq!(script.0.get(&4), Some(&Fault::RetryAfter(3)));
        assert_eq!(script.0.get(&6), Some(&Fault::Lost));
        assert!(Script::parse("404@1").is_err() && Script::parse("500").is_err());
    }
}

//! The WebSocket (VENUES.md §3.8): `/ws` with `subscribe`/`unsubscribe` of `candle`,
//! `orderUpdates` and `userFills`, and `{"method": "ping"}` → `{"channel": "pong"}`.
//!
//! A connection is greeted with the venue's plain-text line [`GREETING`]. Each connection
//! reads its client's messages and forwards the broadcasts it subscribed to.
//! A `userFills` subscription first gets every fill so far (`isSnapshot: true`), then only
//! newer ones. The `drop_ws` fault closes the socket instead of sending a message — by
//! dropping it, so the client sees the TCP connection end without a close frame; `dup_ws`
//! sends a user message twice.
//!
//! As the venue does, a connection whose client has sent no message (text or binary: the
//! protocol's own ping frames do not count) for [`crate::Config::ws_idle_timeout_ms`] (60 s)
//! is closed with a close frame.

use std::{sync::Arc, time::Duration};

use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
        State,
    },
    response::Response,
};
use hyperliquid::Address;
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::{
    account::Push,
    faults::Fault,
    server::{until_stopped, Shared},
    views,
};

/// The first message of every connection: plain text, not JSON.
pub const GREETING: &str = "Websocket connection established.";

/// `GET /ws`.
pub async fn upgrade(upgrade: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> Response {
    upgrade.on_upgrade(move |socket| serve(socket, shared))
}

/// One connection's subscriptions.
struct Connection {
    shared: Arc<Shared>,
    candle: bool,
    /// The user of `orderUpdates`, when subscribed (lowercase, as written back).
    orders: Option<String>,
    /// The user of `userFills`, when subscribed.
    fills: Option<String>,
    /// The highest tid the `userFills` snapshot held: later pushes skip what it had.
    fills_after_tid: u64,
}

async fn serve(mut socket: WebSocket, shared: Arc<Shared>) {
    let mut candles = shared.candles.subscribe();
    let mut user = shared.user.subscribe();
    let mut shutdown = shared.shutdown.clone();
    let idle_timeout = Duration::from_millis(shared.config.ws_idle_timeout_ms);
    let mut connection = Connection { shared, candle: false, orders: None, fills: None, fills_after_tid: 0 };
    let mut last_heard = tokio::time::Instant::now();
    // The venue greets a new connection in plain text (the Python SDK skips exactly this line).
    if socket.send(Message::Text(GREETING.into())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            incoming = socket.recv() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
                    // Pings are answered by the WebSocket layer itself.
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                };
                last_heard = tokio::time::Instant::now();
                for reply in connection.handle(&text) {
                    if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
            message = candles.recv() => match message {
                Ok(text) if connection.candle => {
                    if connection.shared.dice().roll(Fault::DropWs) {
                        return;
                    }
                    if socket.send(Message::Text(text.as_str().into())).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            message = user.recv() => match message {
                Ok(push) => {
                    let Some(text) = connection.user_message(&push) else { continue };
                    if connection.shared.dice().roll(Fault::DropWs) {
                        return;
                    }
                    let copies = if connection.shared.dice().roll(Fault::DupWs) { 2 } else { 1 };
                    for _ in 0..copies {
                        if socket.send(Message::Text(text.clone().into())).await.is_err() {
                            return;
                        }
                    }
                }
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            () = tokio::time::sleep_until(last_heard + idle_timeout) => {
                // The venue's heartbeat rule: a client that says nothing is gone.
                let _ = socket.send(Message::Close(None)).await;
                return;
            }
            () = until_stopped(&mut shutdown) => return,
        }
    }
}

impl Connection {
    /// The text of a user push for this connection, if it subscribed to it.
    fn user_message(&self, push: &Push) -> Option<String> {
        match push {
            Push::Orders(items) => {
                self.orders.as_ref()?;
                Some(json!({"channel": "orderUpdates", "data": items}).to_string())
            }
            Push::Fills(items, max_tid) => {
                let user = self.fills.as_ref()?;
                if *max_tid <= self.fills_after_tid {
                    return None;
                }
                let after = self.fills_after_tid;
                let fills: Vec<&Value> =
                    items.iter().filter(|f| f.get("tid").and_then(Value::as_u64).is_some_and(|t| t > after)).collect();
                Some(json!({"channel": "userFills", "data": {"user": user, "fills": fills}}).to_string())
            }
        }
    }

    /// Answers one client message.
    fn handle(&mut self, text: &str) -> Vec<Value> {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            return vec![
                json!({"channel": "error", "data": format!("Error parsing JSON into valid websocket request: {text}")}),
            ];
        };
        match request.get("method").and_then(Value::as_str) {
            Some("ping") => vec![json!({"channel": "pong"})],
            Some(method @ ("subscribe" | "unsubscribe")) => {
                let subscription = request.get("subscription").cloned().unwrap_or(Value::Null);
                self.subscribe(method, subscription)
            }
            _ => vec![
                json!({"channel": "error", "data": format!("Error parsing JSON into valid websocket request: {text}")}),
            ],
        }
    }

    fn subscribe(&mut self, method: &str, subscription: Value) -> Vec<Value> {
        let invalid = || vec![json!({"channel": "error", "data": format!("Invalid subscription {subscription}")})];
        let on = method == "subscribe";
        let user = || {
            subscription.get("user").and_then(Value::as_str).and_then(|u| Address::parse(u).ok()).map(|a| a.to_string())
        };
        let mut extra = Vec::new();
        match subscription.get("type").and_then(Value::as_str) {
            Some("candle") => {
                let coin = subscription.get("coin").and_then(Value::as_str);
                let interval = subscription.get("interval").and_then(Value::as_str);
                let ours = self.shared.exchange().account.coin.clone();
                if coin != Some(ours.as_str()) || interval != Some(self.shared.interval.as_str()) {
                    return invalid();
                }
                self.candle = on;
                if on {
                    // With --hold the market waits for its first watcher.
                    self.shared.start_clock();
                }
            }
            Some("orderUpdates") => {
                let Some(user) = user() else { return invalid() };
                self.orders = on.then_some(user);
            }
            Some("userFills") => {
                let Some(user) = user() else { return invalid() };
                if on {
                    extra.push(self.fills_snapshot(&user));
                }
                self.fills = on.then_some(user);
            }
            _ => return invalid(),
        }
        let mut replies =
            vec![json!({"channel": "subscriptionResponse", "data": {"method": method, "subscription": subscription}})];
        replies.extend(extra);
        replies
    }

    /// Every fill so far of `user` (none for a user other than the account's), marked as
    /// the snapshot; later pushes carry only newer tids.
    fn fills_snapshot(&mut self, user: &str) -> Value {
        let exchange = self.shared.exchange();
        let ours = Address::parse(user).is_ok_and(|a| self.shared.config.wallets.contains(&a));
        let account = &exchange.account;
        let fills: Vec<Value> =
            account.fills().iter().filter(|_| ours).map(|f| views::fill(f, &account.coin)).collect();
        self.fills_after_tid = account.fills().last().map_or(0, |f| f.tid);
        json!({"channel": "userFills", "data": {"isSnapshot": true, "user": user, "fills": fills}})
    }
}

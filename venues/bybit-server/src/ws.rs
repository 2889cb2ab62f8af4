//! The WebSocket streams (VENUES.md §2): `/v5/public/linear` (kline topics) and `/v5/private`
//! (auth, then `order`, `execution`, `position`, `wallet` and their `.linear` names).
//!
//! Each connection reads its client's ops and forwards the broadcasts it subscribed to. The
//! `drop_ws` fault closes the socket instead of sending a message — by dropping it, so the client
//! sees the TCP connection end without a close frame; `dup_ws` sends a private message twice.

use std::{collections::BTreeSet, sync::Arc};

use axum::{
    extract::{
        ws::{Message, WebSocket, WebSocketUpgrade},
        State,
    },
    response::Response,
};
use serde_json::{json, Value};
use tokio::sync::broadcast::error::RecvError;

use crate::{
    account::Topic,
    auth,
    faults::Fault,
    server::{until_stopped, wall_ms, Shared},
};

/// `GET /v5/public/linear`.
pub async fn public(upgrade: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> Response {
    upgrade.on_upgrade(move |socket| serve(socket, shared, false))
}

/// `GET /v5/private`.
pub async fn private(upgrade: WebSocketUpgrade, State(shared): State<Arc<Shared>>) -> Response {
    upgrade.on_upgrade(move |socket| serve(socket, shared, true))
}

/// One connection's state.
struct Connection {
    shared: Arc<Shared>,
    private: bool,
    id: String,
    authed: bool,
    topics: BTreeSet<String>,
}

/// What to do after a client's message.
enum Step {
    Reply(Value),
    Ignore,
}

async fn serve(mut socket: WebSocket, shared: Arc<Shared>, private: bool) {
    let mut public_rx = shared.public.subscribe();
    let mut private_rx = shared.private.subscribe();
    let mut shutdown = shared.shutdown.clone();
    let mut connection = Connection { id: shared.connection_id(), shared, private, authed: false, topics: BTreeSet::new() };
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
                if let Step::Reply(reply) = connection.op(&text) {
                    if socket.send(Message::Text(reply.to_string().into())).await.is_err() {
                        return;
                    }
                }
            }
            message = public_rx.recv() => match message {
                Ok(message) if !connection.private && connection.topics.contains(&message.topic) => {
                    if connection.shared.dice().roll(Fault::DropWs) {
                        return;
                    }
                    if socket.send(Message::Text(message.text.clone().into())).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            message = private_rx.recv() => match message {
                Ok(message) if connection.private && connection.authed => {
                    let names: Vec<&str> =
                        message.topic.names().iter().copied().filter(|n| connection.topics.contains(*n)).collect();
                    for name in names {
                        if connection.shared.dice().roll(Fault::DropWs) {
                            return;
                        }
                        let text = message.text(name);
                        let copies = if connection.shared.dice().roll(Fault::DupWs) { 2 } else { 1 };
                        for _ in 0..copies {
                            if socket.send(Message::Text(text.clone().into())).await.is_err() {
                                return;
                            }
                        }
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return,
            },
            () = until_stopped(&mut shutdown) => return,
        }
    }
}

impl Connection {
    /// Answers one client message.
    fn op(&mut self, text: &str) -> Step {
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            return Step::Reply(self.failure("", "", format!("error:invalid json {text}")));
        };
        let op = request.get("op").and_then(Value::as_str).unwrap_or("").to_owned();
        let req_id = match request.get("req_id") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let args: Vec<Value> = request.get("args").and_then(Value::as_array).cloned().unwrap_or_default();
        match op.as_str() {
            "ping" if self.private => Step::Reply(json!({
                "req_id": req_id,
                "op": "pong",
                "args": [wall_ms().to_string()],
                "conn_id": self.id,
            })),
            "ping" => Step::Reply(json!({
                "success": true,
                "ret_msg": "pong",
                "conn_id": self.id,
                "req_id": req_id,
                "op": "ping",
            })),
            "auth" if self.private => Step::Reply(self.auth(&args, &req_id)),
            "subscribe" => Step::Reply(self.subscribe(&args, &req_id)),
            "unsubscribe" => {
                for topic in args.iter().filter_map(Value::as_str) {
                    self.topics.remove(topic);
                }
                Step::Reply(self.success("unsubscribe", &req_id))
            }
            "pong" => Step::Ignore,
            _ => Step::Reply(self.failure(&op, &req_id, format!("error:handler not found,op:{op}"))),
        }
    }

    fn success(&self, op: &str, req_id: &str) -> Value {
        json!({"success": true, "ret_msg": "", "conn_id": self.id, "req_id": req_id, "op": op})
    }

    fn failure(&self, op: &str, req_id: &str, message: String) -> Value {
        json!({"success": false, "ret_msg": message, "conn_id": self.id, "req_id": req_id, "op": op})
    }

    fn auth(&mut self, args: &[Value], req_id: &str) -> Value {
        if self.authed {
            return self.failure("auth", req_id, "Request not authorized: repeat auth".into());
        }
        let config = &self.shared.config;
        match auth::check_ws(args, &config.api_key, &config.api_secret, self.shared.auth_now_ms()) {
            Ok(()) => {
                self.authed = true;
                self.success("auth", req_id)
            }
            Err(message) => self.failure("auth", req_id, message),
        }
    }

    fn subscribe(&mut self, args: &[Value], req_id: &str) -> Value {
        let topics: Vec<&str> = args.iter().filter_map(Value::as_str).collect();
        if topics.is_empty() || topics.len() != args.len() {
            return self.failure("subscribe", req_id, "error:args must be a list of topics".into());
        }
        let mut kline = false;
        for topic in &topics {
            if self.private {
                if Topic::of(topic).is_none() {
                    return self.failure("subscribe", req_id, format!("error:handler not found,topic:{topic}"));
                }
                if !self.authed {
                    return self.failure("subscribe", req_id, format!("error:topic:{topic} needs auth first"));
                }
            } else {
                let ours = self.shared.exchange().market.topic();
                if *topic != ours {
                    return self.failure("subscribe", req_id, format!("error:handler not found,topic:{topic}"));
                }
                kline = true;
            }
        }
        self.topics.extend(topics.iter().map(|t| (*t).to_owned()));
        if kline {
            // With --hold the market waits for its first watcher.
            self.shared.start_clock();
        }
        self.success("subscribe", req_id)
    }
}

//! The WebSocket streams: public klines, private order/execution/position/wallet.
//! (Skeleton: the contract between the driver and the adapter; bodies to come.)

use std::time::{Duration, Instant};

use journal::event::Kline;
use tokio::sync::mpsc::UnboundedSender;

use crate::{Credentials, Endpoints, Execution, OrderReport, PositionReport, WalletReport};

/// What the streams report, in the order frames were read.
#[derive(Clone, Debug)]
pub enum StreamEvent {
    /// A closed bar (`confirm: true`), with the instant its frame was read (for latency figures).
    Kline { kline: Kline, received: Instant },
    Order(OrderReport),
    Execution(Execution),
    Position(PositionReport),
    Wallet(WalletReport),
    /// A stream is connected and subscribed (after every reconnect too: the driver fills the gap by REST).
    Up { private: bool },
    /// A stream was lost; it reconnects with backoff.
    Down { private: bool, reason: String },
}

/// What to subscribe to.
#[derive(Clone, Debug)]
pub struct StreamConfig {
    pub endpoints: Endpoints,
    /// None: public stream only (paper trading).
    pub credentials: Option<Credentials>,
    /// `(symbol, interval_ms)` of every `kline.{interval}.{symbol}` topic.
    pub klines: Vec<(String, i64)>,
    /// 20 s as Bybit recommends.
    pub ping_every: Duration,
}

/// Runs the streams until `tx` is closed: connects, authenticates the private one,
/// subscribes, pings, and reconnects with backoff after any loss, resubscribing.
#[allow(unused_variables)]
pub fn spawn(config: StreamConfig, tx: UnboundedSender<StreamEvent>) -> tokio::task::JoinHandle<()> {
    todo!()
}

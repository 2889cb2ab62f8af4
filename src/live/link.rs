//! The venue a live session trades on, behind one set of questions: the driver asks the
//! same things of Bybit and of Hyperliquid (time, instruments, bars, orders, executions,
//! positions, balance, the streams) and gets answers in its own terms ([`OrderReport`],
//! [`Execution`], [`Feed`]). Everything venue-specific about *asking* is here and in
//! `hl.rs`; what the answers *mean* for the journal is in `inputs.rs`, once.
//!
//! Paper trading reads Bybit's public market data, so it is a Bybit link without keys.

use std::{sync::Arc, time::Instant};

use anyhow::Context;
use journal::event::{Cloid, Kline, ReportedPosition};
use rust_decimal::Decimal;
use tokio::sync::mpsc::{unbounded_channel, UnboundedSender};

use super::{
    hl::HlLink,
    inputs::{ExecKind, Execution, OrderReport, Standing},
};

/// What a venue's streams report, in the driver's terms.
#[derive(Debug)]
pub enum Feed {
    /// A closed bar, with the instant its frame was read (latency figures).
    Kline {
        kline: Kline,
        received: Instant,
    },
    Order(OrderReport),
    Executions(Vec<Execution>),
    /// A stream is connected and subscribed (after every reconnect: the driver fills the gap).
    Up {
        private: bool,
    },
    /// A stream was lost; it reconnects with backoff.
    Down {
        private: bool,
        reason: String,
    },
}

/// A live account's venue, or paper trading's market data.
pub enum Link {
    Bybit(BybitLink),
    Hyperliquid(Arc<HlLink>),
}

pub struct BybitLink {
    pub rest: bybit::Rest,
    pub endpoints: bybit::Endpoints,
    pub credentials: Option<bybit::Credentials>,
}

impl Link {
    /// The venue's name in metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Link::Bybit(_) => "bybit",
            Link::Hyperliquid(_) => "hyperliquid",
        }
    }

    /// The venue's clock (Bybit's, kept from `/v5/market/time`), or the wall clock where the
    /// venue has no time endpoint (Hyperliquid: its nonces are the wall clock too).
    pub fn now_ms(&self) -> i64 {
        match self {
            Link::Bybit(b) => b.rest.server_now_ms(),
            Link::Hyperliquid(_) => i64::try_from(hyperliquid::nonce::wall_clock_ms()).unwrap_or(i64::MAX),
        }
    }

    /// The account's equity (cash and unrealized PnL), for the traders' allocations.
    pub async fn equity(&self) -> anyhow::Result<Decimal> {
        match self {
            Link::Bybit(b) => Ok(b.rest.wallet().await.context("wallet balance")?.equity),
            Link::Hyperliquid(h) => Ok(h.account().await?.margin_summary.account_value),
        }
    }

    /// The account's cash without unrealized PnL (the ledger's `cash`, summed over traders).
    pub async fn balance(&self) -> anyhow::Result<Decimal> {
        match self {
            Link::Bybit(b) => Ok(b.rest.wallet().await.context("wallet balance")?.wallet_balance),
            Link::Hyperliquid(h) => {
                let account = h.account().await?;
                let unrealized: Decimal = account.asset_positions.iter().map(|p| p.position.unrealized_pnl).sum();
                Ok(account.margin_summary.account_value - unrealized)
            }
        }
    }

    /// The instrument rules of `symbol`; the fee rates are the config's where `fees` is given
    /// (paper trading, Hyperliquid), else the account's own.
    pub async fn instrument(
        &self,
        symbol: &str,
        maintenance_margin_rate: Decimal,
        fees: Option<(Decimal, Decimal)>,
    ) -> anyhow::Result<journal::event::Instrument> {
        match self {
            Link::Bybit(b) => {
                let info = b.rest.instrument(symbol).await.with_context(|| format!("instruments-info of {symbol}"))?;
                let (taker, maker) = match fees {
                    Some(fees) => fees,
                    None => b.rest.fee_rate(symbol).await.with_context(|| format!("fee rate of {symbol}"))?,
                };
                Ok(journal::event::Instrument {
                    symbol: symbol.to_owned(),
                    tick_size: info.tick_size,
                    qty_step: info.qty_step,
                    min_qty: info.min_qty,
                    max_leverage: info.max_leverage,
                    maintenance_margin_rate,
                    taker_fee_rate: taker,
                    maker_fee_rate: maker,
                })
            }
            Link::Hyperliquid(h) => {
                let (taker, maker) = fees.unwrap_or((Decimal::ZERO, Decimal::ZERO));
                h.instrument(symbol, maintenance_margin_rate, taker, maker).await
            }
        }
    }

    /// The closed bars of a feed opening in `[from_ms, through_open_ms]`, oldest first.
    pub async fn klines(
        &self,
        symbol: &str,
        interval_ms: i64,
        from_ms: i64,
        through_open_ms: i64,
    ) -> anyhow::Result<Vec<Kline>> {
        match self {
            Link::Bybit(b) => Ok(b.rest.klines(symbol, interval_ms, from_ms, through_open_ms).await?),
            Link::Hyperliquid(h) => h.klines(symbol, interval_ms, from_ms, through_open_ms).await,
        }
    }

    /// The venue's open orders of `symbols`.
    pub async fn open_orders(&self, symbols: &[String]) -> anyhow::Result<Vec<OrderReport>> {
        match self {
            Link::Bybit(b) => {
                let mut listed = Vec::new();
                for symbol in symbols {
                    listed.extend(b.rest.open_orders(symbol).await?.iter().map(bybit_order));
                }
                Ok(listed)
            }
            Link::Hyperliquid(h) => h.open_orders(symbols).await,
        }
    }

    /// One order by its client id; None when the venue does not know it (yet).
    pub async fn order(&self, symbol: &str, cloid: &Cloid) -> anyhow::Result<Option<OrderReport>> {
        match self {
            Link::Bybit(b) => Ok(b.rest.order(symbol, cloid).await?.as_ref().map(bybit_order)),
            Link::Hyperliquid(h) => Ok(h.order(cloid).await?),
        }
    }

    /// The venue's positions in `symbols` (one per symbol and side at most).
    pub async fn positions(&self, symbols: &[String]) -> anyhow::Result<Vec<ReportedPosition>> {
        match self {
            Link::Bybit(b) => {
                let mut positions = Vec::new();
                for symbol in symbols {
                    positions.extend(b.rest.positions(symbol).await?.iter().map(|p| ReportedPosition {
                        symbol: p.symbol.clone(),
                        qty: p.qty,
                        entry_price: p.entry_price,
                    }));
                }
                Ok(positions)
            }
            Link::Hyperliquid(h) => h.positions(symbols).await,
        }
    }

    /// Executions of the orders `cloids` the journal may lack. Bybit is asked order by
    /// order; Hyperliquid has no such query, so its recent fills come, and the caller keeps
    /// those it lacks (by execution id).
    pub async fn executions_of(&self, cloids: &[Cloid]) -> anyhow::Result<Vec<Execution>> {
        match self {
            Link::Bybit(b) => {
                let mut executions = Vec::new();
                for cloid in cloids {
                    executions.extend(b.rest.executions_of(cloid).await?.iter().filter_map(bybit_execution));
                }
                Ok(executions)
            }
            Link::Hyperliquid(h) => h.recent_fills().await,
        }
    }

    /// Funding settlements of `symbols` the venue lists (Bybit: its last pages of funding
    /// executions; Hyperliquid: none are read, see docs/live.md).
    pub async fn funding(&self, symbols: &[String], pages: usize) -> anyhow::Result<Vec<Execution>> {
        match self {
            Link::Bybit(b) => {
                let mut executions = Vec::new();
                for symbol in symbols {
                    executions
                        .extend(b.rest.funding_executions(symbol, pages).await?.iter().filter_map(bybit_execution));
                }
                Ok(executions)
            }
            Link::Hyperliquid(_) => Ok(Vec::new()),
        }
    }

    /// Starts the streams of `feeds` (and, with keys, the account's), on the current runtime.
    pub fn spawn_streams(&self, feeds: Vec<(String, i64)>, tx: UnboundedSender<Feed>) {
        match self {
            Link::Bybit(b) => {
                let config = bybit::StreamConfig {
                    endpoints: b.endpoints.clone(),
                    credentials: b.credentials.clone(),
                    klines: feeds,
                    ping_every: std::time::Duration::from_secs(20),
                    clock: Some(b.rest.clock()),
                };
                let (events_tx, mut events_rx) = unbounded_channel();
                let _streams = bybit::stream::spawn(config, events_tx);
                tokio::spawn(async move {
                    while let Some(event) = events_rx.recv().await {
                        if let Some(feed) = bybit_feed(event) {
                            if tx.send(feed).is_err() {
                                return;
                            }
                        }
                    }
                });
            }
            Link::Hyperliquid(h) => h.spawn_stream(feeds, tx),
        }
    }

    /// Whether `e` is the venue's (it did not answer, or refused): logged, and trading goes on.
    pub fn is_venue_error(e: &anyhow::Error) -> bool {
        e.downcast_ref::<bybit::Error>().is_some() || e.downcast_ref::<hyperliquid::RestError>().is_some()
    }
}

/// A Bybit order report in the driver's terms.
pub fn bybit_order(report: &bybit::OrderReport) -> OrderReport {
    use bybit::OrderStatus as S;
    let why = || {
        let parts: Vec<&str> = [report.cancel_type.as_str(), report.reject_reason.as_str()]
            .into_iter()
            .filter(|p| !p.is_empty() && *p != "UNKNOWN" && *p != "EC_NoError")
            .collect();
        if parts.is_empty() {
            format!("{:?} at the venue", report.status)
        } else {
            parts.join(", ")
        }
    };
    let standing = match &report.status {
        S::New | S::PartiallyFilled | S::Untriggered | S::Triggered => Standing::Open,
        S::Filled => Standing::Filled,
        S::Rejected => Standing::Rejected(why()),
        S::Cancelled | S::Deactivated => Standing::Cancelled(why()),
        S::Other(text) => Standing::Other(text.clone()),
    };
    OrderReport {
        link: report.order_link_id.clone(),
        order_id: report.order_id.clone(),
        symbol: report.symbol.clone(),
        side: report.side,
        qty: report.qty,
        price: report.price,
        filled: report.cum_exec_qty,
        standing,
        time_ms: report.updated_ms.max(report.created_ms),
    }
}

/// A Bybit execution in the driver's terms; None for kinds the journal has no use for.
pub fn bybit_execution(e: &bybit::Execution) -> Option<Execution> {
    let kind = match e.exec_type.as_str() {
        "Funding" => ExecKind::Funding { rate: e.fee_rate, mark: e.mark_price.unwrap_or(e.price) },
        "Trade" | "AdlTrade" | "BustTrade" | "Delivery" | "Settle" => ExecKind::Trade,
        _ => return None,
    };
    Some(Execution {
        kind,
        exec_id: e.exec_id.clone(),
        link: e.order_link_id.clone(),
        order_id: e.order_id.clone(),
        symbol: e.symbol.clone(),
        side: e.side,
        qty: e.qty,
        price: e.price,
        fee: e.fee,
        is_maker: e.is_maker,
        time_ms: e.time_ms,
    })
}

fn bybit_feed(event: bybit::StreamEvent) -> Option<Feed> {
    use bybit::StreamEvent as E;
    Some(match event {
        E::Kline { kline, received } => Feed::Kline { kline, received },
        E::Order(report) => Feed::Order(bybit_order(&report)),
        E::Execution(e) => Feed::Executions(bybit_execution(&e).into_iter().collect()),
        E::Position(_) | E::Wallet(_) => return None,
        E::Up { private } => Feed::Up { private },
        E::Down { private, reason } => Feed::Down { private, reason },
    })
}

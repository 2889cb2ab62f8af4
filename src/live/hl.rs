//! Hyperliquid for the live driver: the account's questions (`/info`), the order task's
//! actions (`/exchange`, signed with journaled nonces), and the stream, each answer put in
//! the driver's terms (`inputs::OrderReport`, `inputs::Execution`, `link::Feed`).
//!
//! # Nonces across crashes
//!
//! Hyperliquid refuses a nonce it has seen, so a nonce must never be used twice, even by a
//! process that was killed after signing. The driver *reserves* nonces in the journal
//! before the order task may use them: `NoncesReserved { through }` is journaled and made
//! durable, then [`Nonces::raise`] lets the allocator give nonces up to `through`. A restart
//! continues above the journal's highest reservation ([`Nonces::resume`]), whatever the clock
//! says. Reservations run [`RESERVE_AHEAD_MS`] ahead of the clock and are renewed at half of
//! it (`Session::reserve_nonces`), so the order task never waits for one in steady state;
//! each restart can move nonces ahead of the clock by at most that much, far inside the
//! venue's one-day window.
//!
//! # An order is sent once
//!
//! The cloid is the journal's 16-byte client id. Hyperliquid does not document
//! de-duplication by cloid, so the driver never relies on it: a create that fails
//! ambiguously (timeout, connection lost, 5xx) is looked up with `orderStatus` by cloid;
//! only when the venue does not know it is the **same signed request** sent again. Its nonce
//! can be used once, so if the first copy did arrive, the second is refused as a duplicate
//! nonce instead of placing a second order. A restart (the signed request is gone with the
//! process) looks the order up first, and only an order the venue has never seen is signed
//! afresh with a new nonce.

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use anyhow::{bail, Context};
use hyperliquid::{
    nonce::wall_clock_ms,
    rest::FILL_PAGES_MAX,
    types::{
        self as hl, ActionStatus, AssetMeta, ExchangeResponse, OpenOrder, OrderRef, OrderStatusAnswer, OrderWire,
        UserFill,
    },
    Action, Address, Endpoints, NonceAllocator, Rest, RestError, StreamConfig, StreamEvent,
};
use journal::event::{Cloid, Instrument, Kline, OrderIntent, ReportedPosition};
use rust_decimal::Decimal;
use tokio::sync::{mpsc::UnboundedSender, Notify};

use super::{
    inputs::{ExecKind, Execution, OrderReport, Standing},
    link::Feed,
    orders::{backoff, Outcome, CREATE_ATTEMPTS_MAX, QUERIES_PER_ATTEMPT},
};

/// How far ahead of the clock a reservation reaches; renewed at half of it.
pub const RESERVE_AHEAD_MS: u64 = 60_000;
/// How long the order task waits for a reservation before it gives an order up as unresolved.
const RESERVATION_WAIT: Duration = Duration::from_secs(10);
/// `userFills` answers with at most this many fills: a full answer may hide older ones.
const RECENT_FILLS_MAX: usize = 2000;

/// Strictly increasing nonces, given only below the journal's reservation.
#[derive(Debug)]
pub struct Nonces {
    allocator: NonceAllocator,
    /// The highest nonce the journal has reserved durably (0: none yet).
    ceiling: AtomicU64,
    raised: Notify,
}

impl Nonces {
    /// Nonces above `reserved`, the journal's highest reservation.
    pub fn resume(reserved: Option<u64>) -> Nonces {
        Nonces { allocator: NonceAllocator::resume(reserved), ceiling: AtomicU64::new(0), raised: Notify::new() }
    }

    /// The reservation a session should journal now, if one is due: ahead of the clock and
    /// of every nonce given, renewed when less than half of [`RESERVE_AHEAD_MS`] is left.
    pub fn due(&self, now_ms: u64) -> Option<u64> {
        let ceiling = self.ceiling.load(Ordering::SeqCst);
        let needed = now_ms.max(self.allocator.last());
        (needed + RESERVE_AHEAD_MS / 2 > ceiling).then(|| needed.max(ceiling) + RESERVE_AHEAD_MS)
    }

    /// The journal holds a durable reservation through `through`.
    pub fn raise(&self, through: u64) {
        self.ceiling.fetch_max(through, Ordering::SeqCst);
        self.raised.notify_waiters();
    }

    /// The next nonce, once the journal has reserved it.
    async fn next(&self) -> Result<u64, String> {
        let nonce = self.allocator.next(wall_clock_ms()).map_err(|e| e.to_string())?;
        let deadline = Instant::now() + RESERVATION_WAIT;
        while nonce > self.ceiling.load(Ordering::SeqCst) {
            if Instant::now() > deadline {
                return Err(format!("nonce {nonce} was not reserved in the journal in time"));
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), self.raised.notified()).await;
        }
        Ok(nonce)
    }
}

/// A Hyperliquid account as the driver uses it.
pub struct HlLink {
    pub rest: Rest,
    pub endpoints: Endpoints,
    /// The account (queries name it; the API wallet may sign for it).
    pub user: Address,
    /// The API wallet's address (public), named in `NoncesReserved`.
    pub signer: Option<Address>,
    /// The traded coins' assets, from `meta` at start.
    pub assets: BTreeMap<String, AssetMeta>,
    pub nonces: Nonces,
    /// How far through the reference a market order's limit goes (the SDKs' 5 %); the
    /// reference is the ledger's mark, the last close, where the SDKs take the mid.
    pub slippage: Decimal,
    /// Test hook (`QF_FAILPOINT=kill-after-sign:N`): the process aborts after signing its
    /// N-th order action, before sending it. Crash tests use it; nothing else sets it.
    kill_after_sign: Option<u64>,
    /// Order actions signed so far (for the hook).
    signed: AtomicU64,
}

impl HlLink {
    /// Connects to the venue and reads the assets of `coins`.
    ///
    /// # Errors
    /// The venue cannot be reached, or a coin is not one of its perpetuals.
    pub async fn open(
        rest: Rest,
        endpoints: Endpoints,
        user: Address,
        coins: &[String],
        reserved: Option<u64>,
    ) -> anyhow::Result<HlLink> {
        let meta = rest.meta().await.with_context(|| format!("cannot reach the venue at {}", endpoints.rest))?;
        let mut assets = BTreeMap::new();
        for coin in coins {
            match meta.asset(coin) {
                Some(asset) if !asset.is_delisted => {
                    assets.insert(coin.clone(), asset.clone());
                }
                Some(_) => bail!("{coin} is delisted on Hyperliquid"),
                None => bail!("{coin} is not a Hyperliquid perpetual (symbols are coins: BTC, ETH, ...)"),
            }
        }
        let kill_after_sign = std::env::var("QF_FAILPOINT")
            .ok()
            .and_then(|v| v.strip_prefix("kill-after-sign:").and_then(|n| n.parse().ok()));
        Ok(HlLink {
            signer: rest.signer(),
            rest,
            endpoints,
            user,
            assets,
            nonces: Nonces::resume(reserved),
            slippage: hl::DEFAULT_SLIPPAGE,
            kill_after_sign,
            signed: AtomicU64::new(0),
        })
    }

    pub async fn account(&self) -> anyhow::Result<hl::ClearinghouseState> {
        Ok(self.rest.clearinghouse_state(self.user).await?)
    }

    fn asset(&self, symbol: &str) -> anyhow::Result<&AssetMeta> {
        self.assets.get(symbol).with_context(|| format!("{symbol} is not a traded coin of this session"))
    }

    /// The rules of a coin: sizes at `szDecimals`; prices at the tick that gives five
    /// significant figures at today's mid (never finer than `6 − szDecimals` decimals, never
    /// coarser than 1, as integers are always allowed). A price that crosses a power of ten
    /// later may need a coarser tick: the wire check refuses it before it is signed, and the
    /// next start journals the instrument again.
    pub async fn instrument(
        &self,
        symbol: &str,
        maintenance_margin_rate: Decimal,
        taker_fee_rate: Decimal,
        maker_fee_rate: Decimal,
    ) -> anyhow::Result<Instrument> {
        let asset = self.asset(symbol)?;
        let mids = self.rest.all_mids().await?;
        let finest = Decimal::new(1, hyperliquid::wire::max_price_decimals(asset.sz_decimals));
        let tick = match mids.get(symbol) {
            Some(mid) if *mid > Decimal::ZERO => five_figure_tick(*mid).clamp(finest, Decimal::ONE).normalize(),
            _ => Decimal::ONE,
        };
        let step = Decimal::new(1, asset.sz_decimals);
        Ok(Instrument {
            symbol: symbol.to_owned(),
            tick_size: tick,
            qty_step: step,
            min_qty: step,
            max_leverage: Decimal::from(asset.max_leverage),
            maintenance_margin_rate,
            taker_fee_rate,
            maker_fee_rate,
        })
    }

    pub async fn klines(
        &self,
        symbol: &str,
        interval_ms: i64,
        from_ms: i64,
        through_open_ms: i64,
    ) -> anyhow::Result<Vec<Kline>> {
        let label =
            hl::interval_label(interval_ms).with_context(|| format!("Hyperliquid has no {interval_ms} ms candles"))?;
        let start = u64::try_from(from_ms.max(0)).unwrap_or(0);
        let end = u64::try_from(through_open_ms.max(0)).unwrap_or(0);
        let mut bars = Vec::new();
        for candle in self.rest.candle_snapshot(symbol, label, start, end).await? {
            let kline = candle.to_kline(true).map_err(RestError::from)?;
            if (from_ms..=through_open_ms).contains(&kline.open_time_ms) {
                bars.push(kline);
            }
        }
        bars.sort_by_key(|k| k.open_time_ms);
        Ok(bars)
    }

    pub async fn open_orders(&self, symbols: &[String]) -> anyhow::Result<Vec<OrderReport>> {
        let listed = self.rest.open_orders(self.user).await?;
        Ok(listed.iter().filter(|o| symbols.contains(&o.coin)).map(open_order).collect())
    }

    pub async fn order(&self, cloid: &Cloid) -> anyhow::Result<Option<OrderReport>> {
        match self.rest.order_status(self.user, OrderRef::Cloid(*cloid)).await? {
            OrderStatusAnswer::Found(report) => Ok(Some(order_report(&report))),
            OrderStatusAnswer::Unknown => Ok(None),
        }
    }

    pub async fn positions(&self, symbols: &[String]) -> anyhow::Result<Vec<ReportedPosition>> {
        let account = self.account().await?;
        Ok(account
            .asset_positions
            .iter()
            .filter(|p| symbols.contains(&p.position.coin) && !p.position.szi.is_zero())
            .map(|p| ReportedPosition {
                symbol: p.position.coin.clone(),
                qty: p.position.szi,
                entry_price: p.position.entry_px.unwrap_or(Decimal::ZERO),
            })
            .collect())
    }

    /// The account's recent fills: `userFills` (the newest 2000); when that answer is full,
    /// every fill since the oldest it holds is paged by time as well, so a long gap is
    /// covered up to the venue's 10000 kept fills.
    pub async fn recent_fills(&self) -> anyhow::Result<Vec<Execution>> {
        let mut fills = self.rest.user_fills(self.user).await?;
        if fills.len() >= RECENT_FILLS_MAX {
            let oldest = fills.iter().map(|f| f.time).min().unwrap_or(0);
            let since = oldest.saturating_sub(24 * 60 * 60 * 1000);
            tracing::info!(since, pages_max = FILL_PAGES_MAX, "a full page of recent fills: paging older ones by time");
            fills.extend(self.rest.user_fills_since(self.user, since, None).await?);
        }
        Ok(fills.iter().map(execution).collect())
    }

    /// One WebSocket for every candle feed and the account's orders and fills.
    pub fn spawn_stream(&self, feeds: Vec<(String, i64)>, tx: UnboundedSender<Feed>) {
        let config = StreamConfig::new(&self.endpoints, feeds, Some(self.user));
        let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
        let _stream = hyperliquid::stream::spawn(config, events_tx);
        tokio::spawn(async move {
            while let Some(event) = events_rx.recv().await {
                let feeds = match event {
                    StreamEvent::Candle { kline, received } => vec![Feed::Kline { kline, received }],
                    StreamEvent::Order(report) => vec![Feed::Order(order_report(&report))],
                    // A snapshot's fills are de-duplicated against the journal by their ids.
                    StreamEvent::Fills { fills, .. } => vec![Feed::Executions(fills.iter().map(execution).collect())],
                    // One connection carries both: the driver fills the bars' gap and reconciles.
                    StreamEvent::Up => vec![Feed::Up { private: false }, Feed::Up { private: true }],
                    StreamEvent::Down { reason } => vec![Feed::Down { private: false, reason }],
                };
                for feed in feeds {
                    if tx.send(feed).is_err() {
                        return;
                    }
                }
            }
        });
    }

    /// Whether an intent can go on the wire: None, or why not (journaled as its rejection
    /// before anything is signed). `reference` is the mid a market order is bounded from.
    pub fn refusal(&self, intent: &OrderIntent, reference: Option<Decimal>) -> Option<String> {
        let asset = match self.asset(&intent.symbol) {
            Ok(asset) => asset,
            Err(e) => return Some(e.to_string()),
        };
        OrderWire::from_intent(intent, asset.asset_ref(), reference, self.slippage).err().map(|e| e.to_string())
    }

    /// Places an order (after a restart, `query_first`: the dead process may have sent it).
    pub async fn submit(&self, intent: &OrderIntent, reference: Option<Decimal>, query_first: bool) -> Outcome {
        let cloid = intent.cloid;
        if query_first {
            if let Some(known) = self.query(&cloid, 1).await {
                return Outcome::Known(Box::new(known));
            }
        }
        let wire = match self.asset(&intent.symbol).map_err(|e| e.to_string()).and_then(|a| {
            OrderWire::from_intent(intent, a.asset_ref(), reference, self.slippage).map_err(|e| e.to_string())
        }) {
            Ok(wire) => wire,
            Err(message) => return Outcome::Rejected { code: 0, message },
        };
        let mut last = String::new();
        let mut request = None;
        for attempt in 0..CREATE_ATTEMPTS_MAX {
            // A new signature only when none went out, or the venue refused the last one
            // whole: the same signed request is the de-duplication (its nonce is used once).
            let signed = match request.take() {
                Some(signed) => signed,
                None => match self.sign(Action::orders(vec![wire.clone()])).await {
                    Ok(signed) => signed,
                    Err(message) => return Outcome::Unresolved(message),
                },
            };
            match self.rest.send(&signed).await {
                Ok(ExchangeResponse::Ok { statuses, .. }) => match settled(statuses.first()) {
                    Some(outcome) => return outcome,
                    None => last = unsettled(statuses.first()),
                },
                // Refused whole (a nonce refused, say): nothing was placed by this request.
                Ok(ExchangeResponse::Err(message)) => {
                    tracing::warn!(%cloid, %message, "hyperliquid refused the action whole");
                    last = message;
                }
                Err(RestError::DryRun) => {
                    return Outcome::Rejected { code: 0, message: "dry run: signed and logged, not sent".into() }
                }
                Err(e) if e.is_ambiguous() => {
                    last = e.to_string();
                    request = Some(signed);
                }
                Err(e) => return Outcome::Rejected { code: -1, message: e.to_string() },
            }
            if let Some(known) = self.query(&cloid, QUERIES_PER_ATTEMPT).await {
                return Outcome::Known(Box::new(known));
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
        Outcome::Unresolved(last)
    }

    /// Places the orders one step decided together as one `order` action (weight 1 + ⌊n/40⌋
    /// instead of n), each answered in its own status. A batch that fails ambiguously is
    /// resolved as one order is: when the venue knows none of its cloids, the same signed
    /// request is sent again (its nonce makes a second copy harmless); when it knows any,
    /// the request arrived, and each order's state is looked up. A batch the venue refuses
    /// whole placed nothing: its orders are sent one by one.
    pub async fn submit_batch(&self, orders: &[(OrderIntent, Option<Decimal>)]) -> Vec<Outcome> {
        let mut outcomes: Vec<Option<Outcome>> = orders.iter().map(|_| None).collect();
        let mut wires = Vec::new();
        for (i, (intent, reference)) in orders.iter().enumerate() {
            let wire = self.asset(&intent.symbol).map_err(|e| e.to_string()).and_then(|a| {
                OrderWire::from_intent(intent, a.asset_ref(), *reference, self.slippage).map_err(|e| e.to_string())
            });
            match wire {
                Ok(wire) => wires.push((i, wire)),
                Err(message) => outcomes[i] = Some(Outcome::Rejected { code: 0, message }),
            }
        }
        let placed: Vec<usize> = wires.iter().map(|(i, _)| *i).collect();
        let action = Action::orders(wires.into_iter().map(|(_, wire)| wire).collect());
        let signed = match self.sign(action).await {
            Ok(signed) => signed,
            Err(message) => return fill_in(outcomes, || Outcome::Unresolved(message.clone())),
        };
        tracing::info!(orders = placed.len(), nonce = signed.nonce, "the step's orders go as one action");
        for attempt in 0..CREATE_ATTEMPTS_MAX {
            match self.rest.send(&signed).await {
                Ok(answer @ ExchangeResponse::Ok { .. }) => {
                    let statuses = answer.per_element(placed.len());
                    for (k, &i) in placed.iter().enumerate() {
                        let cloid = orders[i].0.cloid;
                        let status = statuses.get(k);
                        outcomes[i] = Some(match settled(status) {
                            Some(outcome) => outcome,
                            None => match self.query(&cloid, QUERIES_PER_ATTEMPT).await {
                                Some(known) => Outcome::Known(Box::new(known)),
                                None => Outcome::Unresolved(unsettled(status)),
                            },
                        });
                    }
                    return fill_in(outcomes, || Outcome::Unresolved(String::new()));
                }
                Ok(ExchangeResponse::Err(message)) => {
                    tracing::warn!(orders = placed.len(), %message, "hyperliquid refused a batch whole: sending its orders one by one");
                    for &i in &placed {
                        let (intent, reference) = &orders[i];
                        outcomes[i] = Some(self.submit(intent, *reference, false).await);
                    }
                    return fill_in(outcomes, || Outcome::Unresolved(String::new()));
                }
                Err(RestError::DryRun) => {
                    let message = "dry run: signed and logged, not sent".to_owned();
                    return fill_in(outcomes, || Outcome::Rejected { code: 0, message: message.clone() });
                }
                Err(e) if e.is_ambiguous() => {
                    let mut known = Vec::new();
                    for &i in &placed {
                        known.push(self.query(&orders[i].0.cloid, 1).await);
                    }
                    if known.iter().any(Option::is_some) {
                        for (&i, found) in placed.iter().zip(known) {
                            let found = match found {
                                Some(found) => Some(found),
                                None => self.query(&orders[i].0.cloid, QUERIES_PER_ATTEMPT).await,
                            };
                            outcomes[i] = Some(match found {
                                Some(report) => Outcome::Known(Box::new(report)),
                                None => Outcome::Unresolved(e.to_string()),
                            });
                        }
                        return fill_in(outcomes, || Outcome::Unresolved(String::new()));
                    }
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Err(e) => {
                    let message = e.to_string();
                    return fill_in(outcomes, || Outcome::Rejected { code: -1, message: message.clone() });
                }
            }
        }
        fill_in(outcomes, || Outcome::Unresolved("the batch got no answer".into()))
    }

    /// Cancels by cloid; an order already gone is looked up, so its end is journaled.
    pub async fn cancel(&self, symbol: &str, cloid: &Cloid) -> Outcome {
        let asset = match self.asset(symbol) {
            Ok(asset) => asset.asset,
            Err(e) => return Outcome::Unresolved(e.to_string()),
        };
        let action = Action::CancelByCloid(hl::CancelByCloidAction {
            cancels: vec![hl::CancelByCloid { asset, cloid: *cloid }],
        });
        let refused = match self.sign(action).await {
            Err(message) => return Outcome::Unresolved(message),
            Ok(signed) => match self.rest.send(&signed).await {
                Ok(ExchangeResponse::Ok { statuses, .. }) => match statuses.into_iter().next() {
                    Some(ActionStatus::Success) => return Outcome::CancelSent,
                    Some(ActionStatus::Error(message)) => message,
                    other => format!("an unexpected cancel answer: {other:?}"),
                },
                Ok(ExchangeResponse::Err(message)) => message,
                Err(RestError::DryRun) => return Outcome::Unresolved("dry run: cancel not sent".into()),
                Err(e) => e.to_string(),
            },
        };
        // Never placed, already cancelled or filled, or no clear answer: what does the venue say?
        match self.query(cloid, QUERIES_PER_ATTEMPT).await {
            Some(known) => Outcome::Known(Box::new(known)),
            None if refused.contains("never placed") => Outcome::Unknown,
            None => Outcome::Unresolved(refused),
        }
    }

    /// Signs `action` with the next reserved nonce.
    async fn sign(&self, action: Action) -> Result<hyperliquid::ExchangeRequest, String> {
        let places = matches!(action, Action::Order(_));
        let nonce = self.nonces.next().await?;
        let signed = self.rest.sign(action, nonce, None).map_err(|e| e.to_string())?;
        if places && self.kill_after_sign == Some(self.signed.fetch_add(1, Ordering::SeqCst) + 1) {
            tracing::error!(nonce, "failpoint kill-after-sign: aborting after signing, before sending");
            std::process::abort();
        }
        Ok(signed)
    }

    /// Looks an order up by cloid up to `tries` times (a create may not be visible at once).
    async fn query(&self, cloid: &Cloid, tries: u32) -> Option<OrderReport> {
        for attempt in 0..tries {
            match self.order(cloid).await {
                Ok(Some(report)) => return Some(report),
                Ok(None) => {}
                Err(e) => tracing::warn!(%cloid, error = %format!("{e:#}"), "order lookup failed"),
            }
            if attempt + 1 < tries {
                tokio::time::sleep(backoff(attempt)).await;
            }
        }
        None
    }
}

/// Every outcome, `missing` for those not settled.
fn fill_in(outcomes: Vec<Option<Outcome>>, missing: impl Fn() -> Outcome) -> Vec<Outcome> {
    outcomes.into_iter().map(|o| o.unwrap_or_else(&missing)).collect()
}

/// What one order's status in an `order` answer settles: placed (resting or filled) or
/// refused. None: the venue says the cloid is placed already, or gave no order id, and the
/// order is looked up.
fn settled(status: Option<&ActionStatus>) -> Option<Outcome> {
    match status {
        Some(ActionStatus::Resting(r)) => Some(Outcome::Accepted { order_id: r.oid.to_string() }),
        Some(ActionStatus::Filled(f)) => Some(Outcome::Accepted { order_id: f.oid.to_string() }),
        Some(ActionStatus::Error(message)) if !is_duplicate(message) => {
            Some(Outcome::Rejected { code: 0, message: message.clone() })
        }
        _ => None,
    }
}

/// Why a status [`settled`] nothing, for an order left unresolved.
fn unsettled(status: Option<&ActionStatus>) -> String {
    match status {
        Some(ActionStatus::Error(message)) => message.clone(),
        other => format!("an answer without the order's id: {other:?}"),
    }
}

/// The venue says this cloid is placed already (a re-send after a lost answer).
fn is_duplicate(message: &str) -> bool {
    message.to_ascii_lowercase().contains("duplicate")
}

/// The tick of five significant figures at `price` (1 below 10^5, 0.1 below 10^4, ...).
fn five_figure_tick(price: Decimal) -> Decimal {
    // Five integer digits take a tick of 1, four of 0.1, ...
    let mut tick = Decimal::ONE;
    let mut bound = Decimal::new(10_000, 0);
    // At most 28 steps: a Decimal has at most 28 fractional digits.
    for _ in 0..28 {
        if price >= bound {
            break;
        }
        bound /= Decimal::TEN;
        tick /= Decimal::TEN;
    }
    tick
}

fn standing(status: &hl::OrderStatus) -> Standing {
    match status {
        hl::OrderStatus::Open | hl::OrderStatus::Triggered => Standing::Open,
        hl::OrderStatus::Filled => Standing::Filled,
        hl::OrderStatus::Canceled(why) => Standing::Cancelled(why.clone()),
        hl::OrderStatus::Rejected(why) => Standing::Rejected(why.clone()),
        hl::OrderStatus::Other(what) => Standing::Other(what.clone()),
    }
}

fn link_of(cloid: Option<&Cloid>) -> String {
    cloid.map(hyperliquid::wire::cloid_to_wire).unwrap_or_default()
}

/// An `orderStatus` answer or an `orderUpdates` item in the driver's terms.
pub fn order_report(report: &hl::OrderReport) -> OrderReport {
    let order = &report.order;
    let qty = order.orig_sz.unwrap_or(order.sz);
    OrderReport {
        standing: standing(&report.status),
        filled: report.filled_size().unwrap_or(Decimal::ZERO),
        time_ms: i64::try_from(report.status_timestamp).unwrap_or(i64::MAX),
        ..open_order_with(order, qty)
    }
}

fn open_order(order: &OpenOrder) -> OrderReport {
    let qty = order.orig_sz.unwrap_or(order.sz);
    open_order_with(order, qty)
}

fn open_order_with(order: &OpenOrder, qty: Decimal) -> OrderReport {
    OrderReport {
        link: link_of(order.cloid.as_ref()),
        order_id: order.oid.to_string(),
        symbol: order.coin.clone(),
        side: order.side,
        qty,
        price: Some(order.limit_px),
        filled: qty - order.sz,
        standing: Standing::Open,
        time_ms: i64::try_from(order.timestamp).unwrap_or(i64::MAX),
    }
}

/// A fill in the driver's terms; its id is the venue's trade id.
pub fn execution(fill: &UserFill) -> Execution {
    Execution {
        kind: ExecKind::Trade,
        exec_id: fill.tid.to_string(),
        link: link_of(fill.cloid.as_ref()),
        order_id: fill.oid.to_string(),
        symbol: fill.coin.clone(),
        side: fill.side,
        qty: fill.sz,
        price: fill.px,
        fee: fill.fee,
        is_maker: !fill.crossed,
        time_ms: i64::try_from(fill.time).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn dec(text: &str) -> Decimal {
        Decimal::from_str(text).unwrap()
    }

    #[test]
    fn the_tick_gives_five_significant_figures() {
        assert_eq!(five_figure_tick(dec("17156.2")), dec("1"));
        assert_eq!(five_figure_tick(dec("123456")), dec("1"));
        assert_eq!(five_figure_tick(dec("9999.9")), dec("0.1"));
        assert_eq!(five_figure_tick(dec("1.2345")), dec("0.0001"));
        assert_eq!(five_figure_tick(dec("0.012345")), dec("0.000001"));
    }

    #[tokio::test]
    async fn no_nonce_is_given_before_the_journal_reserves_it() {
        let nonces = std::sync::Arc::new(Nonces::resume(None));
        let waiting = tokio::spawn({
            let nonces = nonces.clone();
            async move { nonces.next().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "a nonce was given with nothing reserved");
        let through = nonces.due(wall_clock_ms()).expect("a reservation is due");
        nonces.raise(through);
        let nonce = waiting.await.unwrap().unwrap();
        assert!(nonce <= through && nonce > 0);
        // Given, the nonce counts: the next reservation reaches past it.
        assert!(nonces.due(0).is_none_or(|next| next > nonce));
    }

    #[test]
    fn a_reservation_runs_ahead_of_the_clock_and_of_every_nonce_given() {
        let nonces = Nonces::resume(Some(1_000));
        // Nothing durable yet: due at once, from the clock.
        assert_eq!(nonces.due(5_000), Some(5_000 + RESERVE_AHEAD_MS));
        nonces.raise(5_000 + RESERVE_AHEAD_MS);
        assert_eq!(nonces.due(5_000), None);
        // Half the window used up: renewed from the ceiling.
        let later = 5_000 + RESERVE_AHEAD_MS / 2 + 1;
        assert_eq!(nonces.due(later), Some(5_000 + 2 * RESERVE_AHEAD_MS));
        // A restart resumes above the journal's reservation even when the clock is behind it.
        let resumed = Nonces::resume(Some(90_000));
        assert_eq!(resumed.allocator.next(10).unwrap(), 90_001);
        assert_eq!(resumed.due(10), Some(90_001 + RESERVE_AHEAD_MS));
    }
}

//! What goes to Hyperliquid and what comes back, typed.
//!
//! - **Actions** ([`Action`]): order, cancel, cancelByCloid, updateLeverage, scheduleCancel,
//!   noop. Each struct declares its fields in the documented order, because the signature
//!   hashes the msgpack map in that order (`{"type", "orders", "grouping", "builder"?}`; an
//!   order `{"a", "b", "p", "s", "r", "t", "c"?}`; a trigger `{"isMarket", "triggerPx",
//!   "tpsl"}`), and the same struct is the JSON that is sent.
//! - **The `/exchange` body** ([`ExchangeRequest`]): `{action, nonce, signature,
//!   vaultAddress, expiresAfter?}`, signed by [`ExchangeRequest::sign`].
//! - **`/info` requests** ([`InfoRequest`]) with their IP weights.
//! - **Answers**: [`ExchangeResponse`] (the `{status, response}` envelope with one status
//!   per order or cancel), [`Meta`], [`all_mids`], [`ClearinghouseState`], [`OpenOrder`],
//!   [`UserFill`], [`OrderStatusAnswer`], [`Candle`].
//!
//! Hyperliquid writes numbers as strings ("1891.4"); every one becomes a `Decimal` through
//! its string (a JSON number where a string belongs is refused, never read through `f64`).
//! Sides are "B" (bid, buy) and "A" (ask, sell).

use std::collections::BTreeMap;

use journal::event::{Cloid, Kline, OrderIntent, OrderKind, Side, TimeInForce};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::sign::{self, Address, SignError, Signature, Wallet};
use crate::wire::{self, cloid_serde, cloid_serde_opt, Rounding, WireError};
use crate::Network;

/// Why an answer is not what it should be.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

// ---------------------------------------------------------------------------------------
// Actions.

/// A limit order's time in force: `Gtc` rests, `Ioc` takes what it can and cancels the
/// rest, `Alo` (add liquidity only) is post-only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Tif {
    Alo,
    Ioc,
    Gtc,
}

/// Whether a trigger order takes profit or stops a loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tpsl {
    Tp,
    Sl,
}

/// `t` of an order: `{"limit": {"tif": ...}}` or `{"trigger": {...}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum OrderType {
    Limit(Limit),
    Trigger(Trigger),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    pub tif: Tif,
}

/// A trigger: when the mark price crosses `trigger_px`, the order becomes a market order
/// (`is_market`, its limit price then bounds the slippage) or a limit order at its limit price.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    #[serde(rename = "isMarket")]
    pub is_market: bool,
    /// The wire string (see [`wire::price_to_wire`]).
    #[serde(rename = "triggerPx")]
    pub trigger_px: String,
    pub tpsl: Tpsl,
}

/// One order of an `order` action, as signed and sent. The price and size are wire strings:
/// build them with [`OrderWire::limit`] / [`OrderWire::trigger`], which check the rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderWire {
    /// The asset id: the index in `meta.universe`.
    #[serde(rename = "a")]
    pub asset: u32,
    #[serde(rename = "b")]
    pub is_buy: bool,
    #[serde(rename = "p")]
    pub limit_px: String,
    #[serde(rename = "s")]
    pub sz: String,
    #[serde(rename = "r")]
    pub reduce_only: bool,
    #[serde(rename = "t")]
    pub order_type: OrderType,
    /// Omitted (not null) when there is none: the hash differs.
    #[serde(rename = "c", default, skip_serializing_if = "Option::is_none", with = "cloid_serde_opt")]
    pub cloid: Option<Cloid>,
}

/// What the order constructors need of an asset: its id and `szDecimals`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AssetRef {
    pub asset: u32,
    pub sz_decimals: u32,
}

impl OrderWire {
    /// A limit order, its price and size checked against the asset's rules (not rounded: round
    /// first with [`wire::round_price`] / [`wire::round_size`] in the direction you mean).
    ///
    /// # Errors
    /// The rule the price or size breaks, or [`WireError::BelowMinimumNotional`] for an order
    /// worth less than $10 that is not reduce-only.
    pub fn limit(
        asset: AssetRef,
        side: Side,
        price: Decimal,
        size: Decimal,
        tif: Tif,
        reduce_only: bool,
        cloid: Option<Cloid>,
    ) -> Result<OrderWire, WireError> {
        let (limit_px, sz) = checked_price_and_size(asset, price, size, reduce_only)?;
        Ok(OrderWire {
            asset: asset.asset,
            is_buy: side == Side::Buy,
            limit_px,
            sz,
            reduce_only,
            order_type: OrderType::Limit(Limit { tif }),
            cloid,
        })
    }

    /// A trigger order (stop-loss `Tpsl::Sl`, take-profit `Tpsl::Tp`) that fires at
    /// `trigger_price`. `limit_price` is the price once triggered; for a market trigger
    /// (`is_market`) it bounds the slippage, as the SDKs do. Both prices are checked, and the
    /// $10 minimum applies to `limit_price × size` unless the order is reduce-only.
    ///
    /// # Errors
    /// As [`OrderWire::limit`].
    #[allow(clippy::too_many_arguments)]
    pub fn trigger(
        asset: AssetRef,
        side: Side,
        trigger_price: Decimal,
        limit_price: Decimal,
        size: Decimal,
        tpsl: Tpsl,
        is_market: bool,
        reduce_only: bool,
        cloid: Option<Cloid>,
    ) -> Result<OrderWire, WireError> {
        let (limit_px, sz) = checked_price_and_size(asset, limit_price, size, reduce_only)?;
        let trigger_px = wire::price_to_wire(trigger_price, asset.sz_decimals)?;
        Ok(OrderWire {
            asset: asset.asset,
            is_buy: side == Side::Buy,
            limit_px,
            sz,
            reduce_only,
            order_type: OrderType::Trigger(Trigger { is_market, trigger_px, tpsl }),
            cloid,
        })
    }
}

/// The slippage bound of a market order when the caller has none: 5 %, the SDKs' default.
pub const DEFAULT_SLIPPAGE: Decimal = Decimal::from_parts(5, 0, 0, false, 2);

impl OrderWire {
    /// The order of a journaled intent (already rounded by the pre-append checks).
    ///
    /// Hyperliquid has no market orders: a market intent becomes an `Ioc` limit at
    /// `reference_price × (1 ± slippage)` (the mid, as the SDKs do), rounded away from the
    /// book (up for a buy, down for a sell) onto the price rules. A stop becomes a market
    /// stop-loss trigger at the intent's trigger price, its limit bound the same way.
    /// `Gtc`/`Ioc` map to themselves, `PostOnly` to `Alo`; fill-or-kill is refused.
    ///
    /// The intent's own prices and size are checked, not rounded (rounding them would change
    /// the order the journal holds). The $10 minimum applies, unless reduce-only, to the
    /// reference value *and* to the limit bound, whichever is smaller.
    ///
    /// # Errors
    /// The rule broken; [`WireError::reject_reason`] turns it into the journal's reason.
    pub fn from_intent(
        intent: &OrderIntent,
        asset: AssetRef,
        reference_price: Option<Decimal>,
        slippage: Decimal,
    ) -> Result<OrderWire, WireError> {
        let side = intent.side;
        let bounded = |price: Decimal| -> Result<Decimal, WireError> {
            let (factor, rounding) = match side {
                Side::Buy => (Decimal::ONE + slippage, Rounding::Up),
                Side::Sell => (Decimal::ONE - slippage, Rounding::Down),
            };
            let raw = price.checked_mul(factor).ok_or(WireError::Unsupported("the slippage bound overflows"))?;
            wire::round_price(raw, asset.sz_decimals, rounding)
        };
        if slippage.is_sign_negative() || slippage >= Decimal::ONE {
            return Err(WireError::Unsupported("the slippage must be at least 0 and below 1"));
        }
        let order = match intent.kind {
            OrderKind::Limit => {
                let tif = match intent.tif {
                    TimeInForce::Gtc => Tif::Gtc,
                    TimeInForce::Ioc => Tif::Ioc,
                    TimeInForce::PostOnly => Tif::Alo,
                    TimeInForce::Fok => return Err(WireError::Unsupported("Hyperliquid has no fill-or-kill orders")),
                };
                let price = intent.price.ok_or(WireError::Unsupported("a limit order needs a price"))?;
                OrderWire::limit(asset, side, price, intent.qty, tif, intent.reduce_only, Some(intent.cloid))?
            }
            OrderKind::Market => {
                let reference = reference_price
                    .ok_or(WireError::Unsupported("a market order needs the mid price to bound its slippage"))?;
                if !intent.reduce_only {
                    wire::check_min_notional(reference, intent.qty)?;
                }
                let limit = bounded(reference)?;
                OrderWire::limit(asset, side, limit, intent.qty, Tif::Ioc, intent.reduce_only, Some(intent.cloid))?
            }
            OrderKind::Stop => {
                let trigger =
                    intent.trigger_price.ok_or(WireError::Unsupported("a stop order needs a trigger price"))?;
                if !intent.reduce_only {
                    wire::check_min_notional(trigger, intent.qty)?;
                }
                let limit = bounded(trigger)?;
                OrderWire::trigger(
                    asset,
                    side,
                    trigger,
                    limit,
                    intent.qty,
                    Tpsl::Sl,
                    true,
                    intent.reduce_only,
                    Some(intent.cloid),
                )?
            }
        };
        Ok(order)
    }
}

/// The wire strings of a price and a size, and the $10 minimum for orders that are not
/// reduce-only. (Whether the venue exempts reduce-only orders from the minimum is not
/// documented; a reduce-only order closing a small position is let through to its answer.)
fn checked_price_and_size(
    asset: AssetRef,
    price: Decimal,
    size: Decimal,
    reduce_only: bool,
) -> Result<(String, String), WireError> {
    let price_text = wire::price_to_wire(price, asset.sz_decimals)?;
    let size_text = wire::size_to_wire(size, asset.sz_decimals)?;
    if !reduce_only {
        wire::check_min_notional(price, size)?;
    }
    Ok((price_text, size_text))
}

/// How the orders of one `order` action relate: `Na` independent, `NormalTpsl` an entry with
/// its TP/SL children, `PositionTpsl` TP/SL attached to the whole position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Grouping {
    Na,
    NormalTpsl,
    PositionTpsl,
}

/// A builder fee: the builder's address and the fee in tenths of a basis point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Builder {
    #[serde(rename = "b")]
    pub address: Address,
    #[serde(rename = "f")]
    pub fee_tenths_bp: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderAction {
    pub orders: Vec<OrderWire>,
    pub grouping: Grouping,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<Builder>,
}

/// Cancel by the venue's order id: `{"a": asset, "o": oid}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    #[serde(rename = "a")]
    pub asset: u32,
    #[serde(rename = "o")]
    pub oid: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelAction {
    pub cancels: Vec<Cancel>,
}

/// Cancel by our client id: `{"asset": asset, "cloid": "0x…"}` (whole-word keys, unlike
/// `cancel`'s `a`/`o`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelByCloid {
    pub asset: u32,
    #[serde(with = "cloid_serde")]
    pub cloid: Cloid,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelByCloidAction {
    pub cancels: Vec<CancelByCloid>,
}

/// `{"type": "updateLeverage", "asset", "isCross", "leverage"}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateLeverage {
    pub asset: u32,
    pub is_cross: bool,
    pub leverage: u32,
}

/// The dead man's switch: cancel every open order at `time` (ms, at least 5 s ahead); no
/// `time` removes a scheduled cancel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleCancel {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
}

/// An L1 action: `{"type": "...", ...}` with the type first, as signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    Order(OrderAction),
    Cancel(CancelAction),
    CancelByCloid(CancelByCloidAction),
    UpdateLeverage(UpdateLeverage),
    ScheduleCancel(ScheduleCancel),
    /// Uses up a nonce: the cheapest way to invalidate an action still in flight.
    Noop,
}

impl Action {
    /// Independent orders (`grouping` "na").
    pub fn orders(orders: Vec<OrderWire>) -> Action {
        Action::Order(OrderAction { orders, grouping: Grouping::Na, builder: None })
    }

    /// How many orders or cancels the action carries (1 for the others): the IP weight of
    /// `/exchange` is `1 + floor(n / 40)`.
    pub fn batch_len(&self) -> usize {
        match self {
            Action::Order(action) => action.orders.len(),
            Action::Cancel(action) => action.cancels.len(),
            Action::CancelByCloid(action) => action.cancels.len(),
            Action::UpdateLeverage(_) | Action::ScheduleCancel(_) | Action::Noop => 1,
        }
    }

    /// The IP weight of sending this action: `1 + floor(batch_len / 40)`.
    pub fn weight(&self) -> u32 {
        1 + u32::try_from(self.batch_len() / 40).unwrap_or(u32::MAX - 1)
    }
}

/// The `/exchange` body: `{"action", "nonce", "signature", "vaultAddress", "expiresAfter"?}`.
/// `vaultAddress` is sent as null when trading for oneself (as the Python SDK does);
/// `expiresAfter` is left out when not set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExchangeRequest {
    pub action: Action,
    pub nonce: u64,
    pub signature: Signature,
    #[serde(default)]
    pub vault_address: Option<Address>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_after: Option<u64>,
}

impl ExchangeRequest {
    /// Signs `action` with `nonce` for `network`.
    ///
    /// # Errors
    /// [`SignError::Encode`] if the action does not encode as msgpack.
    pub fn sign(
        wallet: &Wallet,
        action: Action,
        nonce: u64,
        vault_address: Option<Address>,
        expires_after: Option<u64>,
        network: Network,
    ) -> Result<ExchangeRequest, SignError> {
        let signature = sign::sign_l1_action(wallet, &action, nonce, vault_address.as_ref(), expires_after, network)?;
        Ok(ExchangeRequest { action, nonce, signature, vault_address, expires_after })
    }

    /// The address that signed this request for `network` (the venue acts for it, or for the
    /// account that approved it as an agent).
    ///
    /// # Errors
    /// As [`sign::recover_l1_signer`].
    pub fn recover_signer(&self, network: Network) -> Result<Address, SignError> {
        sign::recover_l1_signer(
            &self.action,
            self.nonce,
            self.vault_address.as_ref(),
            self.expires_after,
            network,
            &self.signature,
        )
    }
}

// ---------------------------------------------------------------------------------------
// /info requests.

/// The `start`/`end` window of a `candleSnapshot`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandleRequest {
    pub coin: String,
    /// "1m", "15m", "1h", ... (see [`interval_ms`]).
    pub interval: String,
    pub start_time: u64,
    pub end_time: u64,
}

/// An order named by the venue's id or by our cloid (`orderStatus`'s `oid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OrderRef {
    Oid(u64),
    Cloid(#[serde(with = "cloid_serde")] Cloid),
}

/// A `POST /info` body. Query with the account's address, not the API wallet's (the venue
/// answers an agent address with empty lists).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum InfoRequest {
    Meta,
    AllMids,
    ClearinghouseState {
        user: Address,
    },
    OpenOrders {
        user: Address,
    },
    FrontendOpenOrders {
        user: Address,
    },
    /// The 2000 most recent fills.
    UserFills {
        user: Address,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aggregate_by_time: Option<bool>,
    },
    /// At most 2000 fills from `start_time` (ms); page with the last fill's time.
    UserFillsByTime {
        user: Address,
        start_time: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_time: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aggregate_by_time: Option<bool>,
    },
    OrderStatus {
        user: Address,
        oid: OrderRef,
    },
    CandleSnapshot {
        req: CandleRequest,
    },
}

impl InfoRequest {
    /// The request's `type`, as the venue names it.
    pub fn kind(&self) -> &'static str {
        match self {
            InfoRequest::Meta => "meta",
            InfoRequest::AllMids => "allMids",
            InfoRequest::ClearinghouseState { .. } => "clearinghouseState",
            InfoRequest::OpenOrders { .. } => "openOrders",
            InfoRequest::FrontendOpenOrders { .. } => "frontendOpenOrders",
            InfoRequest::UserFills { .. } => "userFills",
            InfoRequest::UserFillsByTime { .. } => "userFillsByTime",
            InfoRequest::OrderStatus { .. } => "orderStatus",
            InfoRequest::CandleSnapshot { .. } => "candleSnapshot",
        }
    }

    /// The IP weight of the request before its answer: 2 for `allMids`, `clearinghouseState`
    /// and `orderStatus`, 20 for the others here.
    pub fn weight(&self) -> u32 {
        match self {
            InfoRequest::AllMids | InfoRequest::ClearinghouseState { .. } | InfoRequest::OrderStatus { .. } => 2,
            InfoRequest::Meta
            | InfoRequest::OpenOrders { .. }
            | InfoRequest::FrontendOpenOrders { .. }
            | InfoRequest::UserFills { .. }
            | InfoRequest::UserFillsByTime { .. }
            | InfoRequest::CandleSnapshot { .. } => 20,
        }
    }

    /// The extra weight of an answer of `items` elements: one per 20 fills, one per 60 candles.
    pub fn extra_weight(&self, items: usize) -> u32 {
        let per = match self {
            InfoRequest::UserFills { .. } | InfoRequest::UserFillsByTime { .. } => 20,
            InfoRequest::CandleSnapshot { .. } => 60,
            _ => return 0,
        };
        u32::try_from(items / per).unwrap_or(u32::MAX)
    }
}

// ---------------------------------------------------------------------------------------
// /exchange answers.

/// One order's or cancel's outcome in `response.data.statuses`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ActionStatus {
    /// The order rests on the book.
    Resting(Resting),
    /// The order filled (`total_sz` at `avg_px`) on arrival.
    Filled(Filled),
    /// The order or cancel was refused: "Order must have minimum value of $10.",
    /// "Order was never placed, already canceled, or filled.", ...
    Error(String),
    /// A cancel or another action went through.
    Success,
    WaitingForFill,
    WaitingForTrigger,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resting {
    pub oid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "cloid_serde_opt")]
    pub cloid: Option<Cloid>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filled {
    #[serde(with = "rust_decimal::serde::str")]
    pub total_sz: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub avg_px: Decimal,
    pub oid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "cloid_serde_opt")]
    pub cloid: Option<Cloid>,
}

/// The `/exchange` envelope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeResponse {
    /// `{"status": "ok", "response": {"type": kind, "data": {"statuses": [...]}}}`; `statuses`
    /// is empty for answers without data (`{"type": "default"}`, e.g. updateLeverage).
    Ok { kind: String, statuses: Vec<ActionStatus> },
    /// `{"status": "err", "response": "..."}`: the whole action was refused (bad signature,
    /// address rate limit, ...).
    Err(String),
}

impl ExchangeResponse {
    /// Reads an `/exchange` answer body.
    ///
    /// # Errors
    /// [`ParseError`] naming what is missing or malformed.
    pub fn parse(body: &str) -> Result<ExchangeResponse, ParseError> {
        let value: Value =
            serde_json::from_str(body).map_err(|e| ParseError(format!("not JSON ({e}): {}", clip(body))))?;
        let status = value.get("status").and_then(Value::as_str).ok_or_else(|| missing("status", body))?;
        let response = value.get("response").ok_or_else(|| missing("response", body))?;
        match status {
            "ok" => {
                let kind =
                    response.get("type").and_then(Value::as_str).ok_or_else(|| missing("response.type", body))?;
                let statuses = match response.get("data").and_then(|data| data.get("statuses")) {
                    None => Vec::new(),
                    Some(statuses) => Vec::<ActionStatus>::deserialize(statuses)
                        .map_err(|e| ParseError(format!("bad statuses ({e}): {}", clip(body))))?,
                };
                Ok(ExchangeResponse::Ok { kind: kind.to_owned(), statuses })
            }
            "err" => {
                let message = match response {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                Ok(ExchangeResponse::Err(message))
            }
            other => Err(ParseError(format!("unknown status {other:?}: {}", clip(body)))),
        }
    }

    /// The outcome of each of the `batch_len` orders or cancels sent. The venue answers a
    /// batch with one status per element, except for errors found before it looks at the
    /// elements (an empty batch, some tick checks) which come as one error for all: that one
    /// is repeated. A top-level `err` is an error for every element.
    pub fn per_element(&self, batch_len: usize) -> Vec<ActionStatus> {
        match self {
            ExchangeResponse::Err(message) => vec![ActionStatus::Error(message.clone()); batch_len],
            ExchangeResponse::Ok { statuses, .. } => match statuses.as_slice() {
                [single @ ActionStatus::Error(_)] if batch_len > 1 => vec![single.clone(); batch_len],
                _ => statuses.clone(),
            },
        }
    }

    /// The answer as the venue writes it (for the local server).
    pub fn to_json(&self) -> Value {
        match self {
            ExchangeResponse::Ok { kind, statuses } if statuses.is_empty() && kind == "default" => {
                serde_json::json!({"status": "ok", "response": {"type": kind}})
            }
            ExchangeResponse::Ok { kind, statuses } => {
                serde_json::json!({"status": "ok", "response": {"type": kind, "data": {"statuses": statuses}}})
            }
            ExchangeResponse::Err(message) => serde_json::json!({"status": "err", "response": message}),
        }
    }
}

// ---------------------------------------------------------------------------------------
// /info answers.

/// One perpetual of `meta.universe`, with its asset id (its index there).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssetMeta {
    pub asset: u32,
    pub name: String,
    /// Decimals of a size; prices get `6 − sz_decimals`. Zero for a delisted asset whose
    /// entry does not say.
    pub sz_decimals: u32,
    /// Zero for a delisted asset whose entry does not say.
    pub max_leverage: u32,
    pub only_isolated: bool,
    pub is_delisted: bool,
}

impl AssetMeta {
    /// The id and `szDecimals` the order constructors take.
    pub fn asset_ref(&self) -> AssetRef {
        AssetRef { asset: self.asset, sz_decimals: self.sz_decimals }
    }

    /// `price` rounded onto this asset's price rules (see [`wire::round_price`]).
    ///
    /// # Errors
    /// As [`wire::round_price`].
    pub fn round_price(&self, price: Decimal, rounding: Rounding) -> Result<Decimal, WireError> {
        wire::round_price(price, self.sz_decimals, rounding)
    }

    /// `size` rounded to this asset's `szDecimals` (see [`wire::round_size`]).
    ///
    /// # Errors
    /// As [`wire::round_size`].
    pub fn round_size(&self, size: Decimal, rounding: Rounding) -> Result<Decimal, WireError> {
        wire::round_size(size, self.sz_decimals, rounding)
    }
}

/// `{"type": "meta"}`: the perpetuals, in asset-id order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub universe: Vec<AssetMeta>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AssetMetaWire {
    name: String,
    sz_decimals: Option<u32>,
    max_leverage: Option<u32>,
    #[serde(default)]
    only_isolated: bool,
    #[serde(default)]
    is_delisted: bool,
}

impl Meta {
    /// Reads the `meta` answer. Delisted entries stay (they hold their asset ids) and are
    /// marked; a listed entry without `szDecimals` or `maxLeverage` is refused.
    ///
    /// # Errors
    /// [`ParseError`] naming the entry.
    pub fn from_json(value: &Value) -> Result<Meta, ParseError> {
        let universe = value.get("universe").ok_or_else(|| ParseError("meta: no universe".into()))?;
        let entries = Vec::<AssetMetaWire>::deserialize(universe).map_err(|e| ParseError(format!("meta: {e}")))?;
        let mut assets = Vec::with_capacity(entries.len());
        for (index, entry) in entries.into_iter().enumerate() {
            let asset = u32::try_from(index).map_err(|_| ParseError("meta: too many assets".into()))?;
            let (sz_decimals, max_leverage) = match (entry.sz_decimals, entry.max_leverage, entry.is_delisted) {
                (Some(sz), Some(leverage), _) => (sz, leverage),
                (sz, leverage, true) => (sz.unwrap_or(0), leverage.unwrap_or(0)),
                _ => {
                    return Err(ParseError(format!(
                        "meta: {} (asset {asset}) has no szDecimals or maxLeverage",
                        entry.name
                    )))
                }
            };
            assets.push(AssetMeta {
                asset,
                name: entry.name,
                sz_decimals,
                max_leverage,
                only_isolated: entry.only_isolated,
                is_delisted: entry.is_delisted,
            });
        }
        Ok(Meta { universe: assets })
    }

    /// The listed (not delisted) asset called `name`.
    pub fn asset(&self, name: &str) -> Option<&AssetMeta> {
        self.universe.iter().find(|asset| asset.name == name && !asset.is_delisted)
    }
}

/// `{"type": "allMids"}`: the mid price of every coin.
///
/// # Errors
/// [`ParseError`] for a value that is not a decimal string.
pub fn all_mids(value: &Value) -> Result<BTreeMap<String, Decimal>, ParseError> {
    let map = value.as_object().ok_or_else(|| ParseError("allMids: not an object".into()))?;
    map.iter()
        .map(|(coin, mid)| {
            let text = mid.as_str().ok_or_else(|| ParseError(format!("allMids: {coin} is not a string: {mid}")))?;
            let mid = text.parse::<Decimal>().map_err(|e| ParseError(format!("allMids: {coin} = {text:?}: {e}")))?;
            Ok((coin.clone(), mid))
        })
        .collect()
}

/// Cross or isolated margin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LeverageKind {
    Cross,
    Isolated,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Leverage {
    #[serde(rename = "type")]
    pub kind: LeverageKind,
    pub value: u32,
    /// Isolated positions only.
    #[serde(default, with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
    pub raw_usd: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CumFunding {
    #[serde(with = "rust_decimal::serde::str")]
    pub all_time: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub since_change: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub since_open: Decimal,
}

/// A perpetual position. `szi` is signed: positive long, negative short.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    pub coin: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub szi: Decimal,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub entry_px: Option<Decimal>,
    pub leverage: Leverage,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub liquidation_px: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str")]
    pub margin_used: Decimal,
    #[serde(default)]
    pub max_leverage: Option<u32>,
    #[serde(with = "rust_decimal::serde::str")]
    pub position_value: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub return_on_equity: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub unrealized_pnl: Decimal,
    #[serde(default)]
    pub cum_funding: Option<CumFunding>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetPosition {
    pub position: Position,
    /// "oneWay".
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MarginSummary {
    #[serde(with = "rust_decimal::serde::str")]
    pub account_value: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub total_margin_used: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub total_ntl_pos: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub total_raw_usd: Decimal,
}

/// `{"type": "clearinghouseState", "user"}`: positions and margin of a perps account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClearinghouseState {
    pub asset_positions: Vec<AssetPosition>,
    #[serde(with = "rust_decimal::serde::str")]
    pub cross_maintenance_margin_used: Decimal,
    pub cross_margin_summary: MarginSummary,
    pub margin_summary: MarginSummary,
    /// Server time, ms.
    pub time: u64,
    #[serde(with = "rust_decimal::serde::str")]
    pub withdrawable: Decimal,
}

impl ClearinghouseState {
    /// Reads the answer.
    ///
    /// # Errors
    /// [`ParseError`] naming the field.
    pub fn from_json(value: &Value) -> Result<ClearinghouseState, ParseError> {
        ClearinghouseState::deserialize(value).map_err(|e| ParseError(format!("clearinghouseState: {e}")))
    }
}

/// "B" (bid) is a buy, "A" (ask) a sell.
pub mod side_serde {
    use journal::event::Side;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(side: &Side, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(match side {
            Side::Buy => "B",
            Side::Sell => "A",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Side, D::Error> {
        match String::deserialize(deserializer)?.as_str() {
            "B" => Ok(Side::Buy),
            "A" => Ok(Side::Sell),
            other => Err(serde::de::Error::custom(format!("side {other:?} is neither \"B\" nor \"A\""))),
        }
    }
}

/// An open order (`openOrders`; `frontendOpenOrders` adds the optional fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenOrder {
    pub coin: String,
    #[serde(with = "side_serde")]
    pub side: Side,
    #[serde(with = "rust_decimal::serde::str")]
    pub limit_px: Decimal,
    /// What is left to fill.
    #[serde(with = "rust_decimal::serde::str")]
    pub sz: Decimal,
    pub oid: u64,
    /// Placement time, ms.
    pub timestamp: u64,
    #[serde(default, with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
    pub orig_sz: Option<Decimal>,
    #[serde(default, with = "cloid_serde_opt", skip_serializing_if = "Option::is_none")]
    pub cloid: Option<Cloid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduce_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_trigger: Option<bool>,
    #[serde(default, with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
    pub trigger_px: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger_condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_position_tpsl: Option<bool>,
}

impl OpenOrder {
    /// Reads an `openOrders` / `frontendOpenOrders` answer.
    ///
    /// # Errors
    /// [`ParseError`] naming the field.
    pub fn list_from_json(value: &Value) -> Result<Vec<OpenOrder>, ParseError> {
        Vec::<OpenOrder>::deserialize(value).map_err(|e| ParseError(format!("openOrders: {e}")))
    }
}

/// A fill (`userFills`, `userFillsByTime`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserFill {
    pub coin: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub px: Decimal,
    #[serde(with = "rust_decimal::serde::str")]
    pub sz: Decimal,
    #[serde(with = "side_serde")]
    pub side: Side,
    /// ms.
    pub time: u64,
    /// The signed position before the fill.
    #[serde(with = "rust_decimal::serde::str")]
    pub start_position: Decimal,
    /// "Open Long", "Close Short", ...
    pub dir: String,
    #[serde(with = "rust_decimal::serde::str")]
    pub closed_pnl: Decimal,
    pub hash: String,
    pub oid: u64,
    /// Taker (crossed the spread) or maker.
    pub crossed: bool,
    /// Paid; negative is a rebate.
    #[serde(with = "rust_decimal::serde::str")]
    pub fee: Decimal,
    /// The trade id: with the coin, what makes a fill unique.
    pub tid: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_token: Option<String>,
    #[serde(default, with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
    pub builder_fee: Option<Decimal>,
    #[serde(default, with = "cloid_serde_opt", skip_serializing_if = "Option::is_none")]
    pub cloid: Option<Cloid>,
}

impl UserFill {
    /// Reads a `userFills` / `userFillsByTime` answer.
    ///
    /// # Errors
    /// [`ParseError`] naming the field.
    pub fn list_from_json(value: &Value) -> Result<Vec<UserFill>, ParseError> {
        Vec::<UserFill>::deserialize(value).map_err(|e| ParseError(format!("userFills: {e}")))
    }
}

/// Where an order stands (`orderStatus`'s `status`). The venue has some thirty values;
/// they fold into the four outcomes a driver acts on, each keeping the venue's word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    Open,
    Filled,
    /// A trigger order fired (a new order took its place).
    Triggered,
    /// "canceled", "marginCanceled", "reduceOnlyCanceled", "scheduledCancel", ...
    Canceled(String),
    /// "rejected", "tickRejected", "minTradeNtlRejected", "perpMarginRejected", ...
    Rejected(String),
    /// A value this crate does not know.
    Other(String),
}

impl OrderStatus {
    pub fn parse(text: &str) -> OrderStatus {
        match text {
            "open" => OrderStatus::Open,
            "filled" => OrderStatus::Filled,
            "triggered" => OrderStatus::Triggered,
            "scheduledCancel" => OrderStatus::Canceled(text.to_owned()),
            _ if text == "canceled" || text.ends_with("Canceled") => OrderStatus::Canceled(text.to_owned()),
            _ if text == "rejected" || text.ends_with("Rejected") => OrderStatus::Rejected(text.to_owned()),
            _ => OrderStatus::Other(text.to_owned()),
        }
    }

    /// The venue's word for it.
    pub fn as_str(&self) -> &str {
        match self {
            OrderStatus::Open => "open",
            OrderStatus::Filled => "filled",
            OrderStatus::Triggered => "triggered",
            OrderStatus::Canceled(text) | OrderStatus::Rejected(text) | OrderStatus::Other(text) => text,
        }
    }

    /// Still working at the venue (can fill).
    pub fn is_open(&self) -> bool {
        matches!(self, OrderStatus::Open)
    }
}

impl Serialize for OrderStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for OrderStatus {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<OrderStatus, D::Error> {
        Ok(OrderStatus::parse(&String::deserialize(deserializer)?))
    }
}

/// An order as `orderStatus` reports it, and an `orderUpdates` item (the stream's `WsOrder`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderReport {
    /// The order (`frontendOpenOrders` shape; `sz` is what was left at `status_timestamp`).
    pub order: OpenOrder,
    pub status: OrderStatus,
    /// ms.
    pub status_timestamp: u64,
}

impl OrderReport {
    /// How much of the order has filled: `origSz − sz`; None when the venue gave no `origSz`.
    pub fn filled_size(&self) -> Option<Decimal> {
        self.order.orig_sz.map(|orig| orig - self.order.sz)
    }
}

/// `{"type": "orderStatus", "user", "oid"}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderStatusAnswer {
    /// `{"status": "order", "order": {...}}`.
    Found(Box<OrderReport>),
    /// `{"status": "unknownOid"}`: the venue has no such order (yet: it may still be in flight).
    Unknown,
}

impl OrderStatusAnswer {
    /// Reads the answer.
    ///
    /// # Errors
    /// [`ParseError`] naming the field.
    pub fn from_json(value: &Value) -> Result<OrderStatusAnswer, ParseError> {
        match value.get("status").and_then(Value::as_str) {
            Some("unknownOid") => Ok(OrderStatusAnswer::Unknown),
            Some("order") => {
                let order = value.get("order").ok_or_else(|| ParseError("orderStatus: no order".into()))?;
                OrderReport::deserialize(order)
                    .map(|report| OrderStatusAnswer::Found(Box::new(report)))
                    .map_err(|e| ParseError(format!("orderStatus: {e}")))
            }
            other => Err(ParseError(format!("orderStatus: unknown status {other:?}"))),
        }
    }
}

/// A candle of `candleSnapshot` (and the `candle` stream).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candle {
    /// Open time, ms.
    #[serde(rename = "t")]
    pub open_time_ms: u64,
    /// Close time, ms (the last ms of the candle).
    #[serde(rename = "T")]
    pub close_time_ms: u64,
    #[serde(rename = "s")]
    pub coin: String,
    #[serde(rename = "i")]
    pub interval: String,
    #[serde(rename = "o", with = "rust_decimal::serde::str")]
    pub open: Decimal,
    #[serde(rename = "h", with = "rust_decimal::serde::str")]
    pub high: Decimal,
    #[serde(rename = "l", with = "rust_decimal::serde::str")]
    pub low: Decimal,
    #[serde(rename = "c", with = "rust_decimal::serde::str")]
    pub close: Decimal,
    #[serde(rename = "v", with = "rust_decimal::serde::str")]
    pub volume: Decimal,
    /// Number of trades.
    #[serde(rename = "n")]
    pub trades: u64,
}

impl Candle {
    /// Reads a `candleSnapshot` answer.
    ///
    /// # Errors
    /// [`ParseError`] naming the field.
    pub fn list_from_json(value: &Value) -> Result<Vec<Candle>, ParseError> {
        Vec::<Candle>::deserialize(value).map_err(|e| ParseError(format!("candleSnapshot: {e}")))
    }

    /// The journal's bar. `closed` is the caller's to say: a candle whose close time has passed.
    ///
    /// # Errors
    /// [`ParseError`] for an interval this crate does not know, or a time beyond `i64`.
    pub fn to_kline(&self, closed: bool) -> Result<Kline, ParseError> {
        let interval_ms = interval_ms(&self.interval)
            .ok_or_else(|| ParseError(format!("candle {}: unknown interval {:?}", self.coin, self.interval)))?;
        let open_time_ms = i64::try_from(self.open_time_ms)
            .map_err(|_| ParseError(format!("candle {}: open time {} out of range", self.coin, self.open_time_ms)))?;
        Ok(Kline {
            symbol: self.coin.clone(),
            interval_ms,
            open_time_ms,
            open: self.open,
            high: self.high,
            low: self.low,
            close: self.close,
            volume: self.volume,
            closed,
        })
    }
}

/// The length in ms of a candle interval label ("1m" … "1w"); `None` for "1M" (months differ)
/// and unknown labels.
pub fn interval_ms(label: &str) -> Option<i64> {
    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;
    const DAY: i64 = 24 * HOUR;
    Some(match label {
        "1m" => MIN,
        "3m" => 3 * MIN,
        "5m" => 5 * MIN,
        "15m" => 15 * MIN,
        "30m" => 30 * MIN,
        "1h" => HOUR,
        "2h" => 2 * HOUR,
        "4h" => 4 * HOUR,
        "8h" => 8 * HOUR,
        "12h" => 12 * HOUR,
        "1d" => DAY,
        "3d" => 3 * DAY,
        "1w" => 7 * DAY,
        _ => return None,
    })
}

/// The interval label of a bar length in ms, if Hyperliquid has one.
pub fn interval_label(interval_ms: i64) -> Option<&'static str> {
    ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w"]
        .into_iter()
        .find(|label| self::interval_ms(label) == Some(interval_ms))
}

fn missing(field: &str, body: &str) -> ParseError {
    ParseError(format!("no {field}: {}", clip(body)))
}

fn clip(text: &str) -> String {
    const MAX: usize = 512;
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    //! The JSON here is shaped as VENUES.md §3 quotes the venue's documentation.

    use super::*;
    use journal::event::RejectReason;
    use rust_decimal_macros::dec;
    use serde_json::json;

    const USER: &str = "0x14791697260e4c9a71f18484c9f997b308e59325";

    fn user() -> Address {
        Address::parse(USER).unwrap()
    }

    fn cloid_one() -> Cloid {
        let mut bytes = [0u8; 16];
        bytes[15] = 1;
        Cloid(bytes)
    }

    const ETH: AssetRef = AssetRef { asset: 4, sz_decimals: 4 };

    #[test]
    fn an_order_action_is_json_in_the_documented_key_order() {
        let order = OrderWire::limit(ETH, Side::Buy, dec!(1670.10), dec!(0.01470), Tif::Ioc, false, None).unwrap();
        let action = Action::orders(vec![order]);
        assert_eq!(
            serde_json::to_string(&action).unwrap(),
            r#"{"type":"order","orders":[{"a":4,"b":true,"p":"1670.1","s":"0.0147","r":false,"t":{"limit":{"tif":"Ioc"}}}],"grouping":"na"}"#
        );
        let stop = OrderWire::trigger(
            ETH,
            Side::Sell,
            dec!(1600),
            dec!(1500.5),
            dec!(0.5),
            Tpsl::Sl,
            true,
            true,
            Some(cloid_one()),
        )
        .unwrap();
        let action = Action::Order(OrderAction { orders: vec![stop], grouping: Grouping::NormalTpsl, builder: None });
        assert_eq!(
            serde_json::to_string(&action).unwrap(),
            r#"{"type":"order","orders":[{"a":4,"b":false,"p":"1500.5","s":"0.5","r":true,"t":{"trigger":{"isMarket":true,"triggerPx":"1600","tpsl":"sl"}},"c":"0x00000000000000000000000000000001"}],"grouping":"normalTpsl"}"#
        );
        assert_eq!(serde_json::from_str::<Action>(&serde_json::to_string(&action).unwrap()).unwrap(), action);
    }

    #[test]
    fn order_constructors_refuse_what_the_venue_would() {
        // Too many decimals for ETH's price (6 − 4 = 2), a size finer than szDecimals, and an
        // order worth less than $10 are refused with the rule, before anything is signed.
        assert_eq!(
            OrderWire::limit(ETH, Side::Buy, dec!(1670.123), dec!(1), Tif::Gtc, false, None),
            Err(WireError::TooManySignificantFigures { price: dec!(1670.123), figures: 7 })
        );
        assert_eq!(
            OrderWire::limit(ETH, Side::Buy, dec!(16.123), dec!(1), Tif::Gtc, false, None),
            Err(WireError::TooManyPriceDecimals { price: dec!(16.123), decimals: 3, sz_decimals: 4, max_decimals: 2 })
        );
        assert_eq!(
            OrderWire::limit(ETH, Side::Buy, dec!(1670.1), dec!(0.00001), Tif::Gtc, false, None),
            Err(WireError::TooManySizeDecimals { size: dec!(0.00001), decimals: 5, sz_decimals: 4 })
        );
        let small = OrderWire::limit(ETH, Side::Buy, dec!(1670.1), dec!(0.005), Tif::Alo, false, None).unwrap_err();
        assert_eq!(
            small.to_string(),
            "order value $8.3505 (price 1670.1 × size 0.005) is below Hyperliquid's minimum of $10"
        );
        // Reduce-only orders (closing a small position) go through to the venue's answer.
        assert!(OrderWire::limit(ETH, Side::Sell, dec!(1670.1), dec!(0.005), Tif::Gtc, true, None).is_ok());
        // A trigger price is a price too.
        assert!(matches!(
            OrderWire::trigger(ETH, Side::Sell, dec!(1600.001), dec!(1500), dec!(1), Tpsl::Sl, true, true, None),
            Err(WireError::TooManySignificantFigures { .. })
        ));
    }

    fn intent(kind: OrderKind, side: Side, qty: Decimal, price: Option<Decimal>, tif: TimeInForce) -> OrderIntent {
        OrderIntent {
            cloid: cloid_one(),
            symbol: "ETH".into(),
            side,
            kind,
            qty,
            price,
            trigger_price: None,
            reduce_only: false,
            tif,
        }
    }

    #[test]
    fn journal_intents_become_hyperliquid_orders() {
        let limit = intent(OrderKind::Limit, Side::Buy, dec!(0.5), Some(dec!(1800.00)), TimeInForce::Gtc);
        assert_eq!(
            OrderWire::from_intent(&limit, ETH, None, DEFAULT_SLIPPAGE),
            Ok(OrderWire {
                asset: 4,
                is_buy: true,
                limit_px: "1800".into(),
                sz: "0.5".into(),
                reduce_only: false,
                order_type: OrderType::Limit(Limit { tif: Tif::Gtc }),
                cloid: Some(cloid_one()),
            })
        );
        let post_only = OrderIntent { tif: TimeInForce::PostOnly, ..limit.clone() };
        let order = OrderWire::from_intent(&post_only, ETH, None, DEFAULT_SLIPPAGE).unwrap();
        assert_eq!(order.order_type, OrderType::Limit(Limit { tif: Tif::Alo }));

        // A market buy is an Ioc limit 5 % above the mid, rounded up onto ETH's rules
        // (1891.45 × 1.05 = 1986.0225 → 5 significant figures → 1986.1); a sell 5 % below,
        // rounded down (1796.8775 → 1796.8).
        let buy = intent(OrderKind::Market, Side::Buy, dec!(0.01), None, TimeInForce::Ioc);
        let order = OrderWire::from_intent(&buy, ETH, Some(dec!(1891.45)), DEFAULT_SLIPPAGE).unwrap();
        assert_eq!((order.limit_px.as_str(), order.sz.as_str()), ("1986.1", "0.01"));
        assert_eq!(order.order_type, OrderType::Limit(Limit { tif: Tif::Ioc }));
        let sell = OrderIntent { side: Side::Sell, ..buy.clone() };
        let order = OrderWire::from_intent(&sell, ETH, Some(dec!(1891.45)), DEFAULT_SLIPPAGE).unwrap();
        assert_eq!((order.limit_px.as_str(), order.is_buy), ("1796.8", false));

        // A stop is a market stop-loss trigger at the trigger price, bounded the same way.
        let stop = OrderIntent {
            kind: OrderKind::Stop,
            trigger_price: Some(dec!(1700)),
            reduce_only: true,
            ..intent(OrderKind::Stop, Side::Sell, dec!(0.01), None, TimeInForce::Gtc)
        };
        let order = OrderWire::from_intent(&stop, ETH, None, DEFAULT_SLIPPAGE).unwrap();
        assert_eq!(order.limit_px, "1615");
        assert!(order.reduce_only);
        assert_eq!(
            order.order_type,
            OrderType::Trigger(Trigger { is_market: true, trigger_px: "1700".into(), tpsl: Tpsl::Sl })
        );
    }

    #[test]
    fn intents_the_venue_would_refuse_are_refused_with_the_journals_reason() {
        let refuse = |intent: &OrderIntent, mid: Option<Decimal>| {
            OrderWire::from_intent(intent, ETH, mid, DEFAULT_SLIPPAGE).unwrap_err().reject_reason()
        };
        let fok = intent(OrderKind::Limit, Side::Buy, dec!(1), Some(dec!(1800)), TimeInForce::Fok);
        assert_eq!(refuse(&fok, None), RejectReason::Other("Hyperliquid has no fill-or-kill orders".into()));
        let no_price = intent(OrderKind::Limit, Side::Buy, dec!(1), None, TimeInForce::Gtc);
        assert_eq!(refuse(&no_price, None), RejectReason::PriceRequired);
        let market = intent(OrderKind::Market, Side::Buy, dec!(0.005), None, TimeInForce::Ioc);
        assert_eq!(
            refuse(&market, None),
            RejectReason::Other("a market order needs the mid price to bound its slippage".into())
        );
        // $9.457 at the mid: refused before the journal, with the numbers.
        assert_eq!(
            refuse(&market, Some(dec!(1891.4))),
            RejectReason::Other(
                "order value $9.457 (price 1891.4 × size 0.005) is below Hyperliquid's minimum of $10".into()
            )
        );
        let fine_price = intent(OrderKind::Limit, Side::Buy, dec!(1), Some(dec!(1800.25)), TimeInForce::Gtc);
        assert_eq!(
            refuse(&fine_price, None),
            RejectReason::InvalidPrice(
                "price 1800.25 has 6 significant figures; Hyperliquid takes at most 5 unless the price is an integer"
                    .into()
            )
        );
        let fine_size = intent(OrderKind::Limit, Side::Buy, dec!(0.00001), Some(dec!(1800000)), TimeInForce::Gtc);
        assert_eq!(
            refuse(&fine_size, None),
            RejectReason::InvalidQty("size 0.00001 has 5 decimals; the asset's szDecimals is 4".into())
        );
        let bad_slippage = OrderWire::from_intent(&market, ETH, Some(dec!(1891.4)), Decimal::ONE);
        assert_eq!(bad_slippage, Err(WireError::Unsupported("the slippage must be at least 0 and below 1")));
    }

    #[test]
    fn cancels_and_leverage_are_json_as_documented() {
        let cancel = Action::Cancel(CancelAction { cancels: vec![Cancel { asset: 4, oid: 77_738_308 }] });
        assert_eq!(
            serde_json::to_value(&cancel).unwrap(),
            json!({"type": "cancel", "cancels": [{"a": 4, "o": 77738308}]})
        );
        let by_cloid = Action::CancelByCloid(CancelByCloidAction {
            cancels: vec![CancelByCloid { asset: 4, cloid: cloid_one() }],
        });
        assert_eq!(
            serde_json::to_string(&by_cloid).unwrap(),
            r#"{"type":"cancelByCloid","cancels":[{"asset":4,"cloid":"0x00000000000000000000000000000001"}]}"#
        );
        let leverage = Action::UpdateLeverage(UpdateLeverage { asset: 0, is_cross: true, leverage: 10 });
        assert_eq!(
            serde_json::to_string(&leverage).unwrap(),
            r#"{"type":"updateLeverage","asset":0,"isCross":true,"leverage":10}"#
        );
        assert_eq!(serde_json::to_string(&Action::Noop).unwrap(), r#"{"type":"noop"}"#);
        for action in [cancel, by_cloid, leverage, Action::Noop] {
            assert_eq!(serde_json::from_value::<Action>(serde_json::to_value(&action).unwrap()).unwrap(), action);
        }
    }

    #[test]
    fn exchange_weight_is_one_plus_a_fortieth_of_the_batch() {
        let order = OrderWire::limit(ETH, Side::Buy, dec!(2000), dec!(1), Tif::Gtc, false, None).unwrap();
        assert_eq!(Action::orders(vec![order.clone()]).weight(), 1);
        assert_eq!(Action::orders(vec![order.clone(); 39]).weight(), 1);
        assert_eq!(Action::orders(vec![order.clone(); 40]).weight(), 2);
        // The docs' example: 79 orders weigh 2.
        assert_eq!(Action::orders(vec![order; 79]).weight(), 2);
        assert_eq!(Action::Noop.weight(), 1);
    }

    #[test]
    fn the_exchange_body_is_signed_and_recovers_to_the_signer() {
        let wallet = Wallet::from_hex("0x0123456789012345678901234567890123456789012345678901234567890123").unwrap();
        let order = OrderWire::limit(ETH, Side::Buy, dec!(2000), dec!(1), Tif::Gtc, false, Some(cloid_one())).unwrap();
        let request = ExchangeRequest::sign(
            &wallet,
            Action::orders(vec![order]),
            1_700_000_000_000,
            None,
            None,
            Network::Testnet,
        )
        .unwrap();
        let body = serde_json::to_value(&request).unwrap();
        assert_eq!(body["nonce"], json!(1_700_000_000_000u64));
        assert_eq!(body["vaultAddress"], Value::Null);
        assert!(body.get("expiresAfter").is_none());
        assert_eq!(body["signature"]["v"], json!(request.signature.v));
        assert_eq!(body["action"]["orders"][0]["c"], json!("0x00000000000000000000000000000001"));

        // What a server does: read the JSON, recover the signer.
        let received: ExchangeRequest = serde_json::from_value(body).unwrap();
        assert_eq!(received, request);
        assert_eq!(received.recover_signer(Network::Testnet), Ok(wallet.address()));
        assert_ne!(received.recover_signer(Network::Mainnet), Ok(wallet.address()));

        let vault = Address::parse("0x1719884eb866cb12b2287399b15f7db5e7d775ea").unwrap();
        let request =
            ExchangeRequest::sign(&wallet, Action::Noop, 5, Some(vault), Some(1_700_000_060_000), Network::Mainnet)
                .unwrap();
        let body = serde_json::to_value(&request).unwrap();
        assert_eq!(body["vaultAddress"], json!("0x1719884eb866cb12b2287399b15f7db5e7d775ea"));
        assert_eq!(body["expiresAfter"], json!(1_700_000_060_000u64));
        let received: ExchangeRequest = serde_json::from_value(body).unwrap();
        assert_eq!(received.recover_signer(Network::Mainnet), Ok(wallet.address()));
    }

    #[test]
    fn info_requests_are_json_as_documented() {
        let cases = [
            (InfoRequest::Meta, json!({"type": "meta"}), 20),
            (InfoRequest::AllMids, json!({"type": "allMids"}), 2),
            (InfoRequest::ClearinghouseState { user: user() }, json!({"type": "clearinghouseState", "user": USER}), 2),
            (InfoRequest::OpenOrders { user: user() }, json!({"type": "openOrders", "user": USER}), 20),
            (
                InfoRequest::UserFills { user: user(), aggregate_by_time: Some(false) },
                json!({"type": "userFills", "user": USER, "aggregateByTime": false}),
                20,
            ),
            (
                InfoRequest::UserFillsByTime {
                    user: user(),
                    start_time: 1_681_222_254_710,
                    end_time: None,
                    aggregate_by_time: None,
                },
                json!({"type": "userFillsByTime", "user": USER, "startTime": 1_681_222_254_710u64}),
                20,
            ),
            (
                InfoRequest::OrderStatus { user: user(), oid: OrderRef::Oid(91_490_942) },
                json!({"type": "orderStatus", "user": USER, "oid": 91_490_942}),
                2,
            ),
            (
                InfoRequest::OrderStatus { user: user(), oid: OrderRef::Cloid(cloid_one()) },
                json!({"type": "orderStatus", "user": USER, "oid": "0x00000000000000000000000000000001"}),
                2,
            ),
            (
                InfoRequest::CandleSnapshot {
                    req: CandleRequest {
                        coin: "BTC".into(),
                        interval: "15m".into(),
                        start_time: 1_681_923_600_000,
                        end_time: 1_681_924_499_999,
                    },
                },
                json!({"type": "candleSnapshot", "req": {"coin": "BTC", "interval": "15m", "startTime": 1_681_923_600_000u64, "endTime": 1_681_924_499_999u64}}),
                20,
            ),
        ];
        for (request, expected, weight) in cases {
            assert_eq!(Some(request.kind()), expected["type"].as_str(), "the kind is the wire's type");
            assert_eq!(serde_json::to_value(&request).unwrap(), expected);
            assert_eq!(serde_json::from_value::<InfoRequest>(expected).unwrap(), request);
            assert_eq!(request.weight(), weight, "{request:?}");
        }
        let fills = InfoRequest::UserFills { user: user(), aggregate_by_time: None };
        assert_eq!(fills.extra_weight(2000), 100);
        assert_eq!(fills.extra_weight(19), 0);
        let candles = InfoRequest::CandleSnapshot {
            req: CandleRequest { coin: "BTC".into(), interval: "1m".into(), start_time: 0, end_time: 1 },
        };
        assert_eq!(candles.extra_weight(5000), 83);
        assert_eq!(InfoRequest::AllMids.extra_weight(500), 0);
    }

    #[test]
    fn exchange_answers_resting_filled_and_per_order_errors() {
        let resting =
            r#"{"status":"ok","response":{"type":"order","data":{"statuses":[{"resting":{"oid":77738308}}]}}}"#;
        assert_eq!(
            ExchangeResponse::parse(resting),
            Ok(ExchangeResponse::Ok {
                kind: "order".into(),
                statuses: vec![ActionStatus::Resting(Resting { oid: 77_738_308, cloid: None })]
            })
        );
        let mixed = r#"{"status":"ok","response":{"type":"order","data":{"statuses":[
            {"filled":{"totalSz":"0.02","avgPx":"1891.4","oid":77747314}},
            {"error":"Order must have minimum value of $10."},
            "waitingForFill",
            "waitingForTrigger",
            {"resting":{"oid":5,"cloid":"0x00000000000000000000000000000001"}}]}}}"#;
        let parsed = ExchangeResponse::parse(mixed).unwrap();
        assert_eq!(
            parsed,
            ExchangeResponse::Ok {
                kind: "order".into(),
                statuses: vec![
                    ActionStatus::Filled(Filled {
                        total_sz: dec!(0.02),
                        avg_px: dec!(1891.4),
                        oid: 77_747_314,
                        cloid: None
                    }),
                    ActionStatus::Error("Order must have minimum value of $10.".into()),
                    ActionStatus::WaitingForFill,
                    ActionStatus::WaitingForTrigger,
                    ActionStatus::Resting(Resting { oid: 5, cloid: Some(cloid_one()) }),
                ]
            }
        );
        assert_eq!(ExchangeResponse::parse(&parsed.to_json().to_string()), Ok(parsed));
    }

    #[test]
    fn exchange_answers_cancels_leverage_and_refusals() {
        let cancel = r#"{"status":"ok","response":{"type":"cancel","data":{"statuses":["success",{"error":"Order was never placed, already canceled, or filled."}]}}}"#;
        assert_eq!(
            ExchangeResponse::parse(cancel).unwrap(),
            ExchangeResponse::Ok {
                kind: "cancel".into(),
                statuses: vec![
                    ActionStatus::Success,
                    ActionStatus::Error("Order was never placed, already canceled, or filled.".into())
                ]
            }
        );
        let leverage = r#"{"status":"ok","response":{"type":"default"}}"#;
        let parsed = ExchangeResponse::parse(leverage).unwrap();
        assert_eq!(parsed, ExchangeResponse::Ok { kind: "default".into(), statuses: vec![] });
        assert_eq!(parsed.to_json(), serde_json::from_str::<Value>(leverage).unwrap());

        let limited = r#"{"status":"err","response":"Too many cumulative requests sent (97460 > 97456) for cumulative volume traded $87457.46. Place taker orders to free up 1 request per USDC traded."}"#;
        let parsed = ExchangeResponse::parse(limited).unwrap();
        assert!(
            matches!(&parsed, ExchangeResponse::Err(message) if message.starts_with("Too many cumulative requests"))
        );
        assert_eq!(parsed.per_element(2).len(), 2);

        // A pre-validation error answers a whole batch with one error: it applies to each order.
        let batch = r#"{"status":"ok","response":{"type":"order","data":{"statuses":[{"error":"Price must be divisible by tick size."}]}}}"#;
        let statuses = ExchangeResponse::parse(batch).unwrap().per_element(3);
        assert_eq!(statuses, vec![ActionStatus::Error("Price must be divisible by tick size.".into()); 3]);

        for (body, reason) in [
            ("not json", "not JSON"),
            (r#"{"response":"x"}"#, "no status"),
            (r#"{"status":"maybe","response":"x"}"#, "unknown status \"maybe\""),
            (r#"{"status":"ok","response":{"data":{}}}"#, "no response.type"),
            (r#"{"status":"ok","response":{"type":"order","data":{"statuses":[{"resting":{}}]}}}"#, "bad statuses"),
        ] {
            let error = ExchangeResponse::parse(body).unwrap_err();
            assert!(error.0.contains(reason), "{body}: {error}");
        }
    }

    #[test]
    fn meta_gives_asset_ids_and_sz_decimals() {
        let meta = Meta::from_json(&json!({
            "universe": [
                {"name": "BTC", "szDecimals": 5, "maxLeverage": 50},
                {"name": "ETH", "szDecimals": 4, "maxLeverage": 50},
                {"name": "LOOM", "isDelisted": true, "marginMode": "strictIsolated", "onlyIsolated": true},
                {"name": "SOL", "szDecimals": 2, "maxLeverage": 20, "onlyIsolated": false}
            ],
            "marginTables": [[50, {"description": "", "marginTiers": []}]]
        }))
        .unwrap();
        assert_eq!(meta.universe.len(), 4);
        let eth = meta.asset("ETH").unwrap();
        assert_eq!((eth.asset, eth.sz_decimals, eth.max_leverage), (1, 4, 50));
        // The delisted entry keeps its index: SOL is asset 3.
        assert_eq!(meta.asset("SOL").unwrap().asset, 3);
        assert!(meta.asset("LOOM").is_none());
        assert!(meta.universe[2].is_delisted && meta.universe[2].only_isolated);
        assert_eq!(eth.asset_ref(), AssetRef { asset: 1, sz_decimals: 4 });
        assert_eq!(eth.round_price(dec!(1891.456), Rounding::Down), Ok(dec!(1891.4)));
        assert_eq!(eth.round_size(dec!(0.123456), Rounding::Up), Ok(dec!(0.1235)));

        let broken = Meta::from_json(&json!({"universe": [{"name": "BTC", "maxLeverage": 50}]})).unwrap_err();
        assert_eq!(broken.0, "meta: BTC (asset 0) has no szDecimals or maxLeverage");
        assert!(Meta::from_json(&json!({"universe": [{"szDecimals": 5}]})).is_err());
    }

    #[test]
    fn all_mids_are_exact_decimals() {
        let mids = all_mids(&json!({"APE": "4.33245", "ARB": "1.21695"})).unwrap();
        assert_eq!(mids["APE"], dec!(4.33245));
        assert_eq!(mids["ARB"], dec!(1.21695));
        // A float where a string belongs is refused, not rounded through f64.
        assert!(all_mids(&json!({"APE": 4.33245})).is_err());
    }

    #[test]
    fn clearinghouse_state_reads_positions_and_margin() {
        let state = ClearinghouseState::from_json(&json!({
            "assetPositions": [{
                "position": {
                    "coin": "ETH",
                    "cumFunding": {"allTime": "514.085417", "sinceChange": "0.0", "sinceOpen": "0.0"},
                    "entryPx": "2986.3",
                    "leverage": {"rawUsd": "-95.059824", "type": "isolated", "value": 20},
                    "liquidationPx": "2866.26936529",
                    "marginUsed": "4.967826",
                    "maxLeverage": 50,
                    "positionValue": "100.02765",
                    "returnOnEquity": "-0.0026789",
                    "szi": "0.0335",
                    "unrealizedPnl": "-0.0134"
                },
                "type": "oneWay"
            }, {
                "position": {
                    "coin": "BTC",
                    "entryPx": "97000.0",
                    "leverage": {"type": "cross", "value": 10},
                    "liquidationPx": null,
                    "marginUsed": "97.0",
                    "positionValue": "970.0",
                    "returnOnEquity": "0.0",
                    "szi": "-0.01",
                    "unrealizedPnl": "0.0"
                },
                "type": "oneWay"
            }],
            "crossMaintenanceMarginUsed": "0.0",
            "crossMarginSummary": {"accountValue": "13104.514502", "totalMarginUsed": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "13104.514502"},
            "marginSummary": {"accountValue": "13109.482328", "totalMarginUsed": "4.967826", "totalNtlPos": "100.02765", "totalRawUsd": "13009.454678"},
            "time": 1708622398623u64,
            "withdrawable": "13104.514502"
        }))
        .unwrap();
        let eth = &state.asset_positions[0].position;
        assert_eq!(eth.szi, dec!(0.0335));
        assert_eq!(eth.entry_px, Some(dec!(2986.3)));
        assert_eq!(eth.leverage, Leverage { kind: LeverageKind::Isolated, value: 20, raw_usd: Some(dec!(-95.059824)) });
        assert_eq!(eth.cum_funding.as_ref().map(|f| f.all_time), Some(dec!(514.085417)));
        let btc = &state.asset_positions[1].position;
        assert_eq!((btc.szi, btc.liquidation_px, btc.leverage.kind), (dec!(-0.01), None, LeverageKind::Cross));
        assert_eq!(state.margin_summary.account_value, dec!(13109.482328));
        assert_eq!(state.withdrawable, dec!(13104.514502));
        assert_eq!(state.time, 1_708_622_398_623);

        let error = ClearinghouseState::from_json(&json!({"assetPositions": []})).unwrap_err();
        assert!(error.0.starts_with("clearinghouseState: missing field"), "{error}");
    }

    #[test]
    fn open_orders_and_fills_read_sides_and_cloids() {
        let orders = OpenOrder::list_from_json(&json!([
            {"coin": "BTC", "limitPx": "29792.0", "oid": 91490942, "side": "A", "sz": "0.0", "timestamp": 1681247412573u64},
            {"coin": "ETH", "limitPx": "1800.5", "oid": 7, "side": "B", "sz": "0.5", "timestamp": 1681247412574u64,
             "origSz": "1.0", "cloid": "0x00000000000000000000000000000001", "reduceOnly": false, "isTrigger": false,
             "triggerPx": "0.0", "triggerCondition": "N/A", "orderType": "Limit", "isPositionTpsl": false}
        ]))
        .unwrap();
        assert_eq!((orders[0].side, orders[0].limit_px, orders[0].cloid), (Side::Sell, dec!(29792.0), None));
        assert_eq!(
            (orders[1].side, orders[1].orig_sz, orders[1].cloid),
            (Side::Buy, Some(dec!(1.0)), Some(cloid_one()))
        );
        assert!(OpenOrder::list_from_json(
            &json!([{"coin": "BTC", "limitPx": "1", "oid": 1, "side": "S", "sz": "1", "timestamp": 1}])
        )
        .unwrap_err()
        .0
        .contains("side \"S\" is neither"));

        let fills = UserFill::list_from_json(&json!([{
            "closedPnl": "0.0", "coin": "AVAX", "crossed": false, "dir": "Open Long",
            "hash": "0xa166e3fa63c25663024b03f2e0da011a00307e4017465df020210d3d432e7cb8",
            "oid": 90542681, "px": "18.435", "side": "B", "startPosition": "26.86", "sz": "93.53",
            "time": 1681222254710u64, "fee": "0.01", "feeToken": "USDC", "builderFee": "0.01", "tid": 118906512037719u64
        }]))
        .unwrap();
        let fill = &fills[0];
        assert_eq!((fill.side, fill.px, fill.sz, fill.fee), (Side::Buy, dec!(18.435), dec!(93.53), dec!(0.01)));
        assert_eq!((fill.tid, fill.oid, fill.crossed), (118_906_512_037_719, 90_542_681, false));
        assert_eq!(fill.start_position, dec!(26.86));
        assert_eq!(fill.builder_fee, Some(dec!(0.01)));
    }

    #[test]
    fn order_status_by_oid_or_cloid() {
        let found = OrderStatusAnswer::from_json(&json!({
            "status": "order",
            "order": {
                "order": {"coin": "ETH", "side": "B", "limitPx": "2000.0", "sz": "0.0", "oid": 42, "timestamp": 1700000000000u64,
                          "origSz": "0.5", "cloid": "0x00000000000000000000000000000001"},
                "status": "filled",
                "statusTimestamp": 1700000000500u64
            }
        }))
        .unwrap();
        let OrderStatusAnswer::Found(report) = found else { panic!("expected an order") };
        assert_eq!(report.status, OrderStatus::Filled);
        assert_eq!(report.order.cloid, Some(cloid_one()));
        assert_eq!(report.status_timestamp, 1_700_000_000_500);
        assert_eq!(OrderStatusAnswer::from_json(&json!({"status": "unknownOid"})), Ok(OrderStatusAnswer::Unknown));
        assert!(OrderStatusAnswer::from_json(&json!({"status": "order"})).is_err());

        for (text, status) in [
            ("open", OrderStatus::Open),
            ("triggered", OrderStatus::Triggered),
            ("canceled", OrderStatus::Canceled("canceled".into())),
            ("marginCanceled", OrderStatus::Canceled("marginCanceled".into())),
            ("scheduledCancel", OrderStatus::Canceled("scheduledCancel".into())),
            ("minTradeNtlRejected", OrderStatus::Rejected("minTradeNtlRejected".into())),
            ("rejected", OrderStatus::Rejected("rejected".into())),
            ("somethingNew", OrderStatus::Other("somethingNew".into())),
        ] {
            assert_eq!(OrderStatus::parse(text), status);
            assert_eq!(status.as_str(), text);
        }
        assert!(OrderStatus::Open.is_open() && !OrderStatus::Filled.is_open());
    }

    #[test]
    fn candle_snapshot_reads_and_becomes_a_kline() {
        let candles = Candle::list_from_json(&json!([{
            "T": 1681924499999u64, "c": "29258.0", "h": "29309.0", "i": "15m", "l": "29250.0",
            "n": 189, "o": "29295.0", "s": "BTC", "t": 1681923600000u64, "v": "0.98639"
        }]))
        .unwrap();
        let candle = &candles[0];
        assert_eq!(
            (candle.open, candle.high, candle.low, candle.close),
            (dec!(29295.0), dec!(29309.0), dec!(29250.0), dec!(29258.0))
        );
        assert_eq!((candle.volume, candle.trades), (dec!(0.98639), 189));
        let kline = candle.to_kline(true).unwrap();
        assert_eq!((kline.symbol.as_str(), kline.interval_ms, kline.open_time_ms), ("BTC", 900_000, 1_681_923_600_000));
        assert_eq!(candle.close_time_ms + 1 - candle.open_time_ms, 900_000);
        assert!(kline.closed);
        assert_eq!(interval_label(900_000), Some("15m"));
        assert_eq!(interval_ms("1M"), None);
    }
}

#[cfg(test)]
mod property_tests {
    use super::*;
    use proptest::prelude::*;

    fn cloid() -> impl Strategy<Value = Cloid> {
        any::<[u8; 16]>().prop_map(Cloid)
    }

    fn wire_number() -> impl Strategy<Value = String> {
        (1u64..10_000_000, 0u32..=6).prop_map(|(mantissa, scale)| wire::to_wire(Decimal::new(mantissa as i64, scale)))
    }

    fn order_type() -> impl Strategy<Value = OrderType> {
        prop_oneof![
            prop_oneof![Just(Tif::Alo), Just(Tif::Ioc), Just(Tif::Gtc)].prop_map(|tif| OrderType::Limit(Limit { tif })),
            (any::<bool>(), wire_number(), prop_oneof![Just(Tpsl::Tp), Just(Tpsl::Sl)])
                .prop_map(|(is_market, trigger_px, tpsl)| OrderType::Trigger(Trigger { is_market, trigger_px, tpsl })),
        ]
    }

    fn order() -> impl Strategy<Value = OrderWire> {
        (
            0u32..300,
            any::<bool>(),
            wire_number(),
            wire_number(),
            any::<bool>(),
            order_type(),
            proptest::option::of(cloid()),
        )
            .prop_map(|(asset, is_buy, limit_px, sz, reduce_only, order_type, cloid)| OrderWire {
                asset,
                is_buy,
                limit_px,
                sz,
                reduce_only,
                order_type,
                cloid,
            })
    }

    fn action() -> impl Strategy<Value = Action> {
        let grouping = prop_oneof![Just(Grouping::Na), Just(Grouping::NormalTpsl), Just(Grouping::PositionTpsl)];
        prop_oneof![
            (proptest::collection::vec(order(), 1..4), grouping)
                .prop_map(|(orders, grouping)| Action::Order(OrderAction { orders, grouping, builder: None })),
            proptest::collection::vec((0u32..300, any::<u64>()), 1..4).prop_map(|cancels| Action::Cancel(
                CancelAction { cancels: cancels.into_iter().map(|(asset, oid)| Cancel { asset, oid }).collect() }
            )),
            proptest::collection::vec((0u32..300, cloid()), 1..4).prop_map(|cancels| Action::CancelByCloid(
                CancelByCloidAction {
                    cancels: cancels.into_iter().map(|(asset, cloid)| CancelByCloid { asset, cloid }).collect()
                }
            )),
            (0u32..300, any::<bool>(), 1u32..=50).prop_map(|(asset, is_cross, leverage)| Action::UpdateLeverage(
                UpdateLeverage { asset, is_cross, leverage }
            )),
            proptest::option::of(any::<u64>()).prop_map(|time| Action::ScheduleCancel(ScheduleCancel { time })),
            Just(Action::Noop),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// What the local server does with a request — read its JSON, hash the action it
        /// reads, recover the signer — names the wallet that signed it, whatever the action,
        /// nonce, vault, expiry and network.
        #[test]
        fn prop_a_signed_request_recovers_to_its_signer_after_a_json_round_trip(
            action in action(),
            nonce in any::<u64>(),
            vault in proptest::option::of(any::<[u8; 20]>().prop_map(Address)),
            expires_after in proptest::option::of(any::<u64>()),
            mainnet in any::<bool>(),
        ) {
            let wallet = Wallet::from_hex("0x0123456789012345678901234567890123456789012345678901234567890123").unwrap();
            let network = if mainnet { Network::Mainnet } else { Network::Testnet };
            let request = ExchangeRequest::sign(&wallet, action, nonce, vault, expires_after, network).unwrap();
            let json = serde_json::to_string(&request).unwrap();
            let received: ExchangeRequest = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&received, &request);
            prop_assert_eq!(received.recover_signer(network), Ok(wallet.address()));
        }
    }
}

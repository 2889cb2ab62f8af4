//! The event schema: everything a journal can say, as past-tense facts.
//!
//! Inputs (market data, clock ticks, LLM replies, exchange acknowledgements and
//! fills) are the nondeterministic facts; everything else (order intents, risk
//! verdicts, strategy state changes, ...) is derived from them by pure code and
//! journaled so that `replay verify` can prove today's code derives the same.
//!
//! Schema changes are versioned (see [`crate::codec::SCHEMA_VERSION`]): new
//! variants go at the end of [`Event`], and a changed variant becomes a new one,
//! so every old journal still decodes. The one exception so far, fields appended
//! at the end of a variant's struct, is decoded by shape in `codec` (schema 2:
//! `StrategyLoad::limits`; a schema-1 record gets [`StrategyLimits::SCHEMA_1`]).

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{hash::Hash, money::dec, money::dec_opt};

/// A journal record: one event with its sequence number, time, owner and chain link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Dense, starting at 0, never reused. (Optional in imported JSON Lines: import renumbers.)
    #[serde(default)]
    pub seq: u64,
    /// Event time in ms since the Unix epoch: the only clock the fold knows.
    pub time_ms: i64,
    /// The trader this event belongs to; empty for shared facts such as market data.
    pub trader: String,
    pub event: Event,
    /// The hash of the record before this one (all zeros for seq 0).
    #[serde(default)]
    pub prev_hash: Hash,
    /// blake3 over (prev_hash, seq, canonical bytes of time, trader and event).
    #[serde(default)]
    pub hash: Hash,
}

impl Envelope {
    /// The envelope by parts, as the fold reads it.
    pub fn as_ref(&self) -> EnvelopeRef<'_> {
        EnvelopeRef { seq: self.seq, time_ms: self.time_ms, trader: &self.trader, event: &self.event, hash: self.hash }
    }
}

/// An [`Envelope`] by parts: lets a driver fold an event it still owns without copying it
/// (the backtest folds one reused kline per bar).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EnvelopeRef<'a> {
    pub seq: u64,
    pub time_ms: i64,
    pub trader: &'a str,
    pub event: &'a Event,
    pub hash: Hash,
}

/// Everything a journal can record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    // --- market data and time (inputs) ---
    /// A candle; backtests and live drivers journal closed ones.
    KlineReceived(Kline),
    /// Last/bid/ask/mark/index/funding for a symbol; absent fields were not reported.
    TickerReceived(Ticker),
    /// A value of a named external series (e.g. a hedger's target exposure).
    DataPointReceived {
        series: String,
        #[serde(with = "dec")]
        value: Decimal,
    },
    /// A heartbeat of the driver's clock.
    ClockTicked,

    // --- set-up ---
    /// Trading rules of a symbol; a symbol without one is unknown to the checks.
    InstrumentDefined(Instrument),
    /// A trader starts with virtual capital: a share of one exchange account.
    TraderStarted(TraderStart),

    // --- strategies (derived, except timeouts: the wall-clock backstop is an input) ---
    /// A strategy was loaded; `source` is present the first time a code hash appears.
    StrategyLoaded(StrategyLoad),
    /// The `ctx.state` keys one call changed, with their new values.
    StrategyStateChanged { changes: Vec<(String, Json)> },
    /// A hook threw, ran out of fuel or memory, or timed out. A timeout is an input (the
    /// wall clock decided it); replay ends the same call where the journal says it timed out.
    StrategyErred { hook: String, kind: StrategyErrorKind, message: String },
    /// The worker restarted the strategy from its last journaled state.
    StrategyRestarted { attempt: u32 },
    /// The strategy will get no more calls.
    StrategyStopped { reason: String },
    /// `ctx.record(name, value)`: a named series for reports (not money, so a float).
    SeriesRecorded {
        name: String,
        #[serde(with = "crate::money::float")]
        value: f64,
    },
    /// `ctx.notify.*` and the LLM traders' alerts: journaled always; delivered by `quantfold live`
    /// with a `[telegram]` section, each delivery journaled as [`Event::NotificationDelivered`].
    NotificationSent { channel: String, message: String },

    // --- LLM traders ---
    /// A prompt was rendered; `prompt` is present the first time a digest appears.
    LlmPromptRendered {
        template_id: String,
        template_version: String,
        model: String,
        digest: Hash,
        prompt: Option<String>,
    },
    /// The model answered (input).
    LlmResponded {
        digest: Hash,
        model: String,
        raw: String,
        tokens_prompt: u32,
        tokens_completion: u32,
        #[serde(with = "dec")]
        cost_usd: Decimal,
        latency_ms: u64,
    },
    /// The call failed: timeout, HTTP error, budget (input).
    LlmFailed { digest: Hash, model: String, error: String },
    /// The response parsed against the decision schema, or did not.
    DecisionParsed { digest: Hash, valid: bool, decisions: Json, errors: Vec<String> },
    /// Pre-trade risk rules and what each said.
    RiskChecked { verdicts: Vec<RiskVerdict> },

    // --- orders and the account (intents derived; the rest inputs) ---
    /// An order intent passed the pre-append checks; durable before it is sent.
    OrderSubmitted(OrderIntent),
    /// The checks or the exchange refused the order.
    OrderRejected { cloid: Cloid, reason: RejectReason },
    /// The exchange acknowledged the order.
    OrderAccepted { cloid: Cloid, exchange_order_id: String },
    /// The order will not fill further.
    OrderCancelled { cloid: Cloid, reason: String },
    /// A (partial) fill; self-contained, so one for an order the ledger does not know (or
    /// no longer remembers) still folds, as a noted anomaly that moves nothing.
    OrderFilled(Fill),
    /// Funding settled on a position: positive `amount_quote` is received.
    FundingPaid {
        symbol: String,
        #[serde(with = "dec")]
        rate: Decimal,
        #[serde(with = "dec")]
        amount_quote: Decimal,
    },
    /// The exchange closed a position by liquidation.
    PositionLiquidated {
        symbol: String,
        #[serde(with = "dec")]
        price: Decimal,
        #[serde(with = "dec")]
        fee_quote: Decimal,
    },
    /// What the exchange reported at a reconciliation, and where it disagreed.
    ExchangeReconciled(Reconciliation),
    /// A decider asked to cancel an open order; `OrderCancelled` is the exchange's answer.
    OrderCancelRequested { cloid: Cloid },
    /// The operator or the driver (end of data, shutdown) asks the trader's strategy
    /// to stop: `st_exit` runs, then `StrategyStopped` (input).
    StrategyStopRequested { reason: String },

    // --- venues (appended: new variants go at the end) ---
    /// The venue the driver trades on and its settings (input, journaled at set-up). With
    /// `kind` "sim", `replay verify` re-runs the simulated exchange with these settings and
    /// checks its answers instead of taking them on trust.
    VenueConfigured(VenueConfig),
    /// The rate of a funding settlement of `symbol` at this time (input: from the venue, or
    /// from a backtest's `--funding` file). The `FundingPaid` that follow are the venue's answers.
    FundingRateReceived {
        symbol: String,
        #[serde(with = "dec")]
        rate: Decimal,
    },

    // --- LLM traders (appended) ---
    /// An LLM trader was configured (input, journaled at set-up): its whole resolved
    /// configuration, template and schema text included, so `replay verify` rebuilds the
    /// decider from the journal alone. No secret is in it: keys are named by their
    /// environment variable only.
    LlmTraderLoaded(LlmTraderLoad),
    /// The rendered prompt's digest was answered within the cache's time to live: the
    /// response journaled at `original_seq` is the answer again (derived; no model call).
    LlmCacheHit { digest: Hash, original_seq: u64 },
    /// The trader moved along its model chain (derived): a fallback on failures or budget,
    /// or the return to the primary after a run of successes.
    LlmModelSwitched { from: String, to: String, reason: String },
    /// A decision cycle ended before asking a model (derived): stale or missing market
    /// data, an exhausted budget. Nothing was ordered.
    LlmCycleSkipped { reason: String },

    // --- notifications (appended) ---
    /// The notification journaled at `seq` reached its channel (input: the channel's answer,
    /// e.g. Telegram's `message_id`). A live driver's outbox sends every `NotificationSent`
    /// without one of these, so a restart never sends again what was delivered.
    NotificationDelivered { seq: u64, channel: String, message_id: String },

    // --- venues that sign with nonces (appended) ---
    /// A live driver may sign actions as `signer` with nonces up to `through` (input,
    /// journaled and made durable before any such nonce is used). Hyperliquid refuses a nonce
    /// it has seen; a restart continues above the journal's highest reservation, so no nonce
    /// is reused after a crash, whatever the clock says.
    NoncesReserved { signer: String, through: u64 },
}

/// What `LlmTraderLoaded` records: the configuration file's name, its resolved JSON (see
/// `strategies::llm::config`), and the blake3 of that JSON's text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmTraderLoad {
    pub file: String,
    pub config: Json,
    pub config_hash: Hash,
}

/// A venue's settings as journaled by `VenueConfigured` (for the simulated exchange: `sim::SimConfig`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VenueConfig {
    /// "sim": the simulated exchange of `venues/sim`.
    pub kind: String,
    /// Slippage of taker fills in basis points.
    #[serde(with = "dec")]
    pub slippage_bps: Decimal,
    /// Which bar extreme the price path visits first: "adverse_first" or "favorable_first".
    pub intrabar: String,
    /// Fee on a liquidation, as a fraction of its notional.
    #[serde(with = "dec")]
    pub liquidation_fee_rate: Decimal,
}

/// A candle. `interval_ms` is the bar length; `open_time_ms` its start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kline {
    pub symbol: String,
    pub interval_ms: i64,
    pub open_time_ms: i64,
    #[serde(with = "dec")]
    pub open: Decimal,
    #[serde(with = "dec")]
    pub high: Decimal,
    #[serde(with = "dec")]
    pub low: Decimal,
    #[serde(with = "dec")]
    pub close: Decimal,
    #[serde(with = "dec")]
    pub volume: Decimal,
    pub closed: bool,
}

impl Kline {
    /// An all-zero closed candle of `symbol`: a buffer that drivers overwrite bar by bar.
    pub fn zeroed(symbol: &str) -> Kline {
        let zero = Decimal::ZERO;
        Kline {
            symbol: symbol.to_owned(),
            interval_ms: 0,
            open_time_ms: 0,
            open: zero,
            high: zero,
            low: zero,
            close: zero,
            volume: zero,
            closed: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticker {
    pub symbol: String,
    #[serde(with = "dec_opt")]
    pub last: Option<Decimal>,
    #[serde(with = "dec_opt")]
    pub bid: Option<Decimal>,
    #[serde(with = "dec_opt")]
    pub ask: Option<Decimal>,
    #[serde(with = "dec_opt")]
    pub mark: Option<Decimal>,
    #[serde(with = "dec_opt")]
    pub index: Option<Decimal>,
    #[serde(with = "dec_opt")]
    pub funding_rate: Option<Decimal>,
    pub next_funding_ms: Option<i64>,
}

/// Trading rules of a linear perpetual.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instrument {
    pub symbol: String,
    #[serde(with = "dec")]
    pub tick_size: Decimal,
    #[serde(with = "dec")]
    pub qty_step: Decimal,
    #[serde(with = "dec")]
    pub min_qty: Decimal,
    #[serde(with = "dec")]
    pub max_leverage: Decimal,
    /// Maintenance margin as a fraction of notional (0.005 = 0.5%).
    #[serde(with = "dec")]
    pub maintenance_margin_rate: Decimal,
    #[serde(with = "dec")]
    pub taker_fee_rate: Decimal,
    #[serde(with = "dec")]
    pub maker_fee_rate: Decimal,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraderStart {
    pub exchange: String,
    pub account: String,
    pub currency: String,
    /// The trader's share of the account, in percent.
    #[serde(with = "dec")]
    pub allocation_pct: Decimal,
    /// Virtual capital: the account equity at start times the allocation.
    #[serde(with = "dec")]
    pub capital_quote: Decimal,
    #[serde(with = "dec")]
    pub leverage: Decimal,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategyLoad {
    pub name: String,
    pub file: String,
    pub code_hash: Hash,
    pub source: Option<String>,
    pub params: Json,
    /// Seeds `Math.random`: randomness is an input, so its seed is journaled.
    pub seed: u64,
    /// The limits the strategy runs under (schema 2). Journaled so that replay runs it
    /// under the same ones whatever this build's defaults are; a schema-1 record, which
    /// has none, means [`StrategyLimits::SCHEMA_1`].
    #[serde(default = "StrategyLimits::schema_1")]
    pub limits: StrategyLimits,
}

/// The sandbox limits and the restart policy of a loaded strategy (see `StrategyLoad::limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrategyLimits {
    /// Fuel per hook call (interrupt-handler invocations): deterministic, so re-derived by replay.
    pub call_fuel: u64,
    /// The wall-clock backstop per hook call, in ms. A call it ends is journaled as an input
    /// (`StrategyErred` of kind `Timeout`); replay ends the same call at the same point.
    pub call_timeout_ms: u64,
    /// The sandbox's memory limit in bytes (0: unlimited).
    pub memory_limit_bytes: u64,
    /// Restarts after failures before the strategy is stopped.
    pub restarts_max: u32,
    /// Event time without a failure after which the restart count starts again from zero;
    /// `None`: it never does.
    pub restart_reset_after_ms: Option<u64>,
}

impl StrategyLimits {
    /// What every schema-1 `StrategyLoaded` ran under: the defaults of the builds that wrote
    /// schema 1. Frozen: changing a value here would change the history of old journals.
    pub const SCHEMA_1: StrategyLimits = StrategyLimits {
        call_fuel: 500,
        call_timeout_ms: 1_000,
        memory_limit_bytes: 64 * 1024 * 1024,
        restarts_max: 3,
        restart_reset_after_ms: None,
    };

    /// [`StrategyLimits::SCHEMA_1`], for serde defaults.
    pub fn schema_1() -> StrategyLimits {
        StrategyLimits::SCHEMA_1
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StrategyErrorKind {
    Syntax,
    Thrown,
    /// The deterministic instruction budget ran out: reproducible on replay.
    OutOfFuel,
    /// The wall-clock backstop fired: an input, not reproducible by design. Replay takes it
    /// from the journal and ends the call there, as the live run did.
    Timeout,
    OutOfMemory,
    /// A lifecycle function the strategy must define is missing.
    Missing,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskVerdict {
    pub rule: String,
    pub passed: bool,
    pub detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Side {
    Buy,
    Sell,
}

impl Side {
    /// +1 for a buy, -1 for a sell: the sign of the position change.
    pub fn sign(self) -> Decimal {
        match self {
            Side::Buy => Decimal::ONE,
            Side::Sell => Decimal::NEGATIVE_ONE,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderKind {
    Market,
    Limit,
    /// A stop-market order: triggers at `trigger_price`, then fills as a market order.
    Stop,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeInForce {
    Gtc,
    Ioc,
    Fok,
    PostOnly,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Liquidity {
    Maker,
    Taker,
}

/// An order that passed the checks, with quantities already rounded to the instrument.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderIntent {
    pub cloid: Cloid,
    pub symbol: String,
    pub side: Side,
    pub kind: OrderKind,
    #[serde(with = "dec")]
    pub qty: Decimal,
    #[serde(with = "dec_opt")]
    pub price: Option<Decimal>,
    #[serde(with = "dec_opt")]
    pub trigger_price: Option<Decimal>,
    pub reduce_only: bool,
    pub tif: TimeInForce,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fill {
    pub cloid: Cloid,
    pub fill_id: String,
    pub symbol: String,
    pub side: Side,
    #[serde(with = "dec")]
    pub qty: Decimal,
    #[serde(with = "dec")]
    pub price: Decimal,
    #[serde(with = "dec")]
    pub fee_quote: Decimal,
    pub liquidity: Liquidity,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reconciliation {
    #[serde(with = "dec")]
    pub balance_quote: Decimal,
    pub positions: Vec<ReportedPosition>,
    pub open_orders: Vec<Cloid>,
    /// Human-readable differences between the exchange and the folded state.
    pub mismatches: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedPosition {
    pub symbol: String,
    /// Signed: positive long, negative short.
    #[serde(with = "dec")]
    pub qty: Decimal,
    #[serde(with = "dec")]
    pub entry_price: Decimal,
}

/// Why an order was refused, by the pre-append checks or by the exchange.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RejectReason {
    UnknownTrader,
    TraderStopped,
    UnknownSymbol(String),
    /// The quantity was not a usable number (NaN, infinite, text, or beyond the largest decimal).
    InvalidQty(String),
    NonPositiveQty(#[serde(with = "dec")] Decimal),
    QtyBelowMin {
        #[serde(with = "dec")]
        qty: Decimal,
        #[serde(with = "dec")]
        min: Decimal,
    },
    InvalidPrice(String),
    PriceRequired,
    NoMarkPrice,
    InsufficientCapital {
        #[serde(with = "dec")]
        required_quote: Decimal,
        #[serde(with = "dec")]
        available_quote: Decimal,
    },
    ReduceOnlyWouldIncrease,
    DuplicateCloid,
    UnknownOrder,
    Exchange {
        code: i64,
        message: String,
    },
    Other(String),
    /// A live driver's venue port refused the order before sending it: the venue's rules
    /// (a Hyperliquid price of six significant figures, an order under $10) or the config's
    /// limits. An input, like the exchange's own refusal: it comes from outside the deciders.
    Refused(String),
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::UnknownTrader => write!(f, "unknown trader"),
            RejectReason::TraderStopped => write!(f, "trader is stopped"),
            RejectReason::UnknownSymbol(s) => write!(f, "unknown symbol {s}"),
            RejectReason::InvalidQty(q) => write!(f, "qty {q} is not a valid quantity (not a finite number in range)"),
            RejectReason::NonPositiveQty(q) => write!(f, "qty {q} is not positive"),
            RejectReason::QtyBelowMin { qty, min } => write!(f, "qty {qty} is below the minimum {min}"),
            RejectReason::InvalidPrice(p) => write!(f, "price {p} is not a positive number"),
            RejectReason::PriceRequired => write!(f, "this order type needs a price"),
            RejectReason::NoMarkPrice => write!(f, "no price seen yet for the symbol"),
            RejectReason::InsufficientCapital { required_quote, available_quote } => {
                write!(f, "needs {required_quote} margin, {available_quote} available")
            }
            RejectReason::ReduceOnlyWouldIncrease => write!(f, "reduce-only order would increase the position"),
            RejectReason::DuplicateCloid => write!(f, "client order id already used"),
            RejectReason::UnknownOrder => write!(f, "no such open order"),
            RejectReason::Exchange { code, message } => write!(f, "exchange error {code}: {message}"),
            RejectReason::Other(m) => write!(f, "{m}"),
            RejectReason::Refused(m) => write!(f, "refused before sending: {m}"),
        }
    }
}

/// A client order id: 16 bytes derived deterministically, so a retry after a
/// crash re-sends the same id and the exchange refuses a duplicate. Shown as 32
/// lowercase hex characters (fits Bybit's 36-character `orderLinkId`; Hyperliquid's
/// `cloid` is the same with a `0x` prefix).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cloid(pub [u8; 16]);

impl Cloid {
    /// The id of leg `leg` of the decision a trader made while handling event `cycle_seq`.
    pub fn derive(trader: &str, cycle_seq: u64, leg: u32) -> Cloid {
        let mut hasher = blake3::Hasher::new_derive_key("quantfold 2026 client order id v1");
        hasher.update(&(trader.len() as u64).to_be_bytes());
        hasher.update(trader.as_bytes());
        hasher.update(&cycle_seq.to_be_bytes());
        hasher.update(&leg.to_be_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        Cloid(id)
    }

    /// Parses the 32-hex-character form (an optional `0x` prefix is accepted).
    pub fn parse(text: &str) -> Option<Cloid> {
        let hex = text.strip_prefix("0x").unwrap_or(text);
        crate::hash::decode_hex::<16>(hex).map(Cloid)
    }
}

impl fmt::Display for Cloid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hash::encode_hex(&self.0))
    }
}

impl fmt::Debug for Cloid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cloid({self})")
    }
}

crate::hash::hex_serde!(Cloid, 16);

/// A JSON value carried in an event (strategy params, `ctx.state` values, LLM
/// decisions). JSON formats see the value itself; the binary codec stores its
/// compact text, because bincode cannot decode self-describing data.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Json(pub serde_json::Value);

impl Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            self.0.serialize(serializer)
        } else {
            serializer.serialize_str(&self.0.to_string())
        }
    }
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            serde_json::Value::deserialize(deserializer).map(Json)
        } else {
            let text = String::deserialize(deserializer)?;
            serde_json::from_str(&text).map(Json).map_err(serde::de::Error::custom)
        }
    }
}

impl Event {
    /// The variant's name, for tables and filters.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::KlineReceived(_) => "KlineReceived",
            Event::TickerReceived(_) => "TickerReceived",
            Event::DataPointReceived { .. } => "DataPointReceived",
            Event::ClockTicked => "ClockTicked",
            Event::InstrumentDefined(_) => "InstrumentDefined",
            Event::TraderStarted(_) => "TraderStarted",
            Event::StrategyLoaded(_) => "StrategyLoaded",
            Event::StrategyStateChanged { .. } => "StrategyStateChanged",
            Event::StrategyErred { .. } => "StrategyErred",
            Event::StrategyRestarted { .. } => "StrategyRestarted",
            Event::StrategyStopped { .. } => "StrategyStopped",
            Event::SeriesRecorded { .. } => "SeriesRecorded",
            Event::NotificationSent { .. } => "NotificationSent",
            Event::LlmPromptRendered { .. } => "LlmPromptRendered",
            Event::LlmResponded { .. } => "LlmResponded",
            Event::LlmFailed { .. } => "LlmFailed",
            Event::DecisionParsed { .. } => "DecisionParsed",
            Event::RiskChecked { .. } => "RiskChecked",
            Event::OrderSubmitted(_) => "OrderSubmitted",
            Event::OrderRejected { .. } => "OrderRejected",
            Event::OrderAccepted { .. } => "OrderAccepted",
            Event::OrderCancelled { .. } => "OrderCancelled",
            Event::OrderFilled(_) => "OrderFilled",
            Event::FundingPaid { .. } => "FundingPaid",
            Event::PositionLiquidated { .. } => "PositionLiquidated",
            Event::ExchangeReconciled(_) => "ExchangeReconciled",
            Event::OrderCancelRequested { .. } => "OrderCancelRequested",
            Event::StrategyStopRequested { .. } => "StrategyStopRequested",
            Event::VenueConfigured(_) => "VenueConfigured",
            Event::FundingRateReceived { .. } => "FundingRateReceived",
            Event::LlmTraderLoaded(_) => "LlmTraderLoaded",
            Event::LlmCacheHit { .. } => "LlmCacheHit",
            Event::LlmModelSwitched { .. } => "LlmModelSwitched",
            Event::LlmCycleSkipped { .. } => "LlmCycleSkipped",
            Event::NotificationDelivered { .. } => "NotificationDelivered",
            Event::NoncesReserved { .. } => "NoncesReserved",
        }
    }

    /// Whether the event is an input (a nondeterministic fact from outside) rather
    /// than a decision derived by the deciders. `replay verify` feeds inputs and
    /// compares derived events. The venue's answers are inputs here; `replay verify`
    /// re-derives them too when the journal's venue is the simulated exchange
    /// ([`Event::is_venue_answer`]).
    pub fn is_input(&self) -> bool {
        matches!(
            self,
            Event::KlineReceived(_)
                | Event::TickerReceived(_)
                | Event::DataPointReceived { .. }
                | Event::ClockTicked
                | Event::InstrumentDefined(_)
                | Event::TraderStarted(_)
                | Event::LlmResponded { .. }
                | Event::LlmFailed { .. }
                | Event::OrderAccepted { .. }
                | Event::OrderCancelled { .. }
                | Event::OrderFilled(_)
                | Event::FundingPaid { .. }
                | Event::PositionLiquidated { .. }
                | Event::ExchangeReconciled(_)
                | Event::StrategyLoaded(_)
                | Event::StrategyStopRequested { .. }
                | Event::VenueConfigured(_)
                | Event::FundingRateReceived { .. }
                | Event::LlmTraderLoaded(_)
                | Event::NotificationDelivered { .. }
                | Event::NoncesReserved { .. }
        ) || matches!(
            self,
            Event::OrderRejected { reason: RejectReason::Exchange { .. } | RejectReason::Refused(_), .. }
        ) || matches!(self, Event::StrategyErred { kind: StrategyErrorKind::Timeout, .. })
    }

    /// Whether the event is a venue's answer (an ack, an exchange rejection, a cancel, a
    /// fill, funding paid, a liquidation): an input from a live venue, derivable from the
    /// journal when the venue is the simulated exchange.
    pub fn is_venue_answer(&self) -> bool {
        matches!(
            self,
            Event::OrderAccepted { .. }
                | Event::OrderCancelled { .. }
                | Event::OrderFilled(_)
                | Event::FundingPaid { .. }
                | Event::PositionLiquidated { .. }
                | Event::OrderRejected { reason: RejectReason::Exchange { .. }, .. }
        )
    }
}

//! The prompt: a context built from the ledger and the market history (indicators by the
//! same Rust code JavaScript strategies use), rendered by minijinja, digested by blake3.
//!
//! Everything here is a pure function of folded events, so `replay verify` renders the same
//! text and the same digest from the journal. Floats appear only as indicator values and are
//! rounded to fixed decimals before rendering, so the text does not depend on how a float
//! prints its last digits.

use journal::{
    hash::{self, Hash},
    State,
};
use minijinja::{Environment, UndefinedBehavior};
use rust_decimal::Decimal;
use serde_json::{json, Value as Json};

use super::config::TraderConfig;
use crate::{indicator as array, market::Market};

/// The fixed user message: the rendered template is the system prompt (as nof0 sends it).
pub const USER_MESSAGE: &str = "Return only the JSON decision.";
/// The template's name inside the environment.
const TEMPLATE_NAME: &str = "prompt";
/// Fills shown in the context.
const RECENT_FILLS_MAX: usize = 10;

/// A compiled template.
pub struct Renderer {
    env: Environment<'static>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").finish_non_exhaustive()
    }
}

impl Renderer {
    /// Compiles `template`; a name it uses that the context lacks is an error at render time
    /// (strict), never an empty string in a prompt.
    ///
    /// # Errors
    /// The template's syntax error, with its line.
    pub fn new(template: &str) -> Result<Renderer, String> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template_owned(TEMPLATE_NAME, template.to_owned()).map_err(|e| template_error(&e))?;
        Ok(Renderer { env })
    }

    /// Renders the prompt for `context`.
    ///
    /// # Errors
    /// An undefined name, a filter failing: the message names the template line.
    pub fn render(&self, context: &Json) -> Result<String, String> {
        let template = self.env.get_template(TEMPLATE_NAME).map_err(|e| template_error(&e))?;
        template.render(context).map_err(|e| template_error(&e))
    }
}

fn template_error(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!("template line {line}: {e}"),
        None => format!("template: {e}"),
    }
}

/// The digest a rendered prompt is journaled and cached under.
pub fn digest(prompt: &str) -> Hash {
    hash::content(prompt)
}

/// `x` rounded to `places` decimals, or null while the indicator warms up.
fn round(x: f64, places: i32) -> Json {
    if !x.is_finite() {
        return Json::Null;
    }
    let scale = 10f64.powi(places);
    json!((x * scale).round() / scale)
}

fn last(series: &[f64]) -> f64 {
    series.last().copied().unwrap_or(f64::NAN)
}

/// The last `n` values of a series, rounded, oldest first (nof0 lists oldest → newest).
fn tail(series: &[f64], n: usize, places: i32) -> Json {
    Json::Array(series.iter().skip(series.len().saturating_sub(n)).map(|x| round(*x, places)).collect())
}

/// Why a cycle cannot have a context: stale or missing market data.
#[derive(Debug, Clone, PartialEq)]
pub struct Stale(pub String);

/// The template's context at event time `now_ms`: market snapshots per symbol (prices and
/// EMA 20/50, MACD 12/26/9, RSI 14, ATR 14), the account, positions, open orders, recent
/// fills and the trader's figures.
///
/// # Errors
/// A symbol without bars, or whose last bar closed more than `stale_after_ms` ago.
pub fn context(
    config: &TraderConfig,
    state: &State,
    market: &Market,
    now_ms: i64,
    cycle: u64,
    fills: &[Json],
) -> Result<Json, Stale> {
    let mut snapshots = Vec::with_capacity(config.symbols.len());
    for symbol in &config.symbols {
        let bars: Vec<_> = market.recent(symbol, config.interval_ms, config.klines.max(60)).collect();
        let Some(latest) = bars.last() else {
            return Err(Stale(format!("no market data for {symbol}")));
        };
        let closed_ms = latest.open_time_ms + latest.interval_ms;
        if now_ms - closed_ms > config.stale_after_ms {
            return Err(Stale(format!(
                "market data of {symbol} is stale: last bar closed {} ms before the decision",
                now_ms - closed_ms
            )));
        }
        let f = |d: Decimal| journal::money::to_f64(d);
        let close: Vec<f64> = bars.iter().map(|k| f(k.close)).collect();
        let high: Vec<f64> = bars.iter().map(|k| f(k.high)).collect();
        let low: Vec<f64> = bars.iter().map(|k| f(k.low)).collect();
        let nan = || vec![f64::NAN; close.len()];
        let ema20 = array::ema(&close, 20).unwrap_or_else(|_| nan());
        let ema50 = array::ema(&close, 50).unwrap_or_else(|_| nan());
        let rsi14 = array::rsi(&close, 14).unwrap_or_else(|_| nan());
        let atr14 = array::atr(&high, &low, &close, 14).unwrap_or_else(|_| nan());
        let macd = array::macd(&close, 12, 26, 9).ok();
        let n = config.klines.min(10);
        snapshots.push(json!({
            "symbol": symbol,
            "current_price": latest.close.to_string(),
            "bar_close_ms": closed_ms,
            "ema20": round(last(&ema20), 4),
            "ema50": round(last(&ema50), 4),
            "rsi14": round(last(&rsi14), 2),
            "atr14": round(last(&atr14), 4),
            "macd": macd.as_ref().map_or(Json::Null, |m| round(last(&m.macd), 4)),
            "macd_signal": macd.as_ref().map_or(Json::Null, |m| round(last(&m.signal), 4)),
            "macd_histogram": macd.as_ref().map_or(Json::Null, |m| round(last(&m.histogram), 4)),
            "closes": tail(&close, n, 4),
            "ema20_series": tail(&ema20, n, 4),
            "rsi14_series": tail(&rsi14, n, 2),
            "volume": latest.volume.to_string(),
        }));
    }
    let trader = state.traders.get(&config.id);
    let account = state.account(&config.id);
    let positions: Vec<Json> = trader
        .map(|t| {
            t.positions
                .iter()
                .filter(|(_, p)| !p.qty.is_zero())
                .map(|(symbol, p)| {
                    let mark = state.mark(symbol).unwrap_or(p.entry_price);
                    json!({
                        "symbol": symbol,
                        "side": if p.qty > Decimal::ZERO { "long" } else { "short" },
                        "quantity": p.qty.abs().to_string(),
                        "entry_price": p.entry_price.to_string(),
                        "current_price": mark.to_string(),
                        "unrealized_pnl": ((mark - p.entry_price) * p.qty).round_dp(4).to_string(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let open_orders: Vec<Json> = trader
        .map(|t| {
            t.orders
                .values()
                .map(|o| {
                    json!({
                        "symbol": o.intent.symbol,
                        "side": format!("{:?}", o.intent.side).to_lowercase(),
                        "kind": format!("{:?}", o.intent.kind).to_lowercase(),
                        "qty": o.intent.qty.to_string(),
                        "price": o.intent.price.or(o.intent.trigger_price).map(|p| p.to_string()),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let zero = Decimal::ZERO;
    let equity = account.as_ref().map_or(zero, |a| a.equity);
    let return_pct = if config.capital.is_zero() {
        zero
    } else {
        ((equity - config.capital) / config.capital * Decimal::ONE_HUNDRED).round_dp(2)
    };
    Ok(json!({
        "trader": config.id,
        "prompt_version": config.prompt_version,
        "timestamp_ms": now_ms,
        "cycle": cycle,
        "account": {
            "account_value": equity.round_dp(4).to_string(),
            "available_cash": account.as_ref().map_or(zero, |a| a.available).round_dp(4).to_string(),
            "margin_used": account.as_ref().map_or(zero, |a| a.margin_used).round_dp(4).to_string(),
            "capital": config.capital.to_string(),
            "return_pct": return_pct.to_string(),
        },
        "positions": positions,
        "open_orders": open_orders,
        "recent_fills": fills.iter().skip(fills.len().saturating_sub(RECENT_FILLS_MAX)).collect::<Vec<_>>(),
        "kpis": {
            "realized_pnl": trader.map_or(zero, |t| t.realized_pnl).round_dp(4).to_string(),
            "fees_paid": trader.map_or(zero, |t| t.fees_paid).round_dp(4).to_string(),
            "orders_filled": trader.map_or(0, |t| t.stats.orders_filled),
            "llm_calls": trader.map_or(0, |t| t.stats.llm_calls),
        },
        "risk": {
            "min_confidence": config.risk.min_confidence,
            "min_risk_reward": config.risk.min_risk_reward.to_string(),
            "max_positions": config.risk.max_positions,
            "max_position_size_usd": config.risk.max_position_size_usd.to_string(),
            "leverage_major_max": config.risk.leverage_major_max,
            "leverage_alt_max": config.risk.leverage_alt_max,
        },
        "market": snapshots,
    }))
}

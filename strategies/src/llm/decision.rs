//! From a model's raw response to verdicts: the answer read out of the provider's body,
//! validated against the decision schema (the `jsonschema` crate), and the risk gates.
//!
//! All pure: `replay verify` re-reads the journaled body and re-runs the gates, so the
//! `DecisionParsed` and `RiskChecked` it derives must equal the journaled ones.

use std::str::FromStr;

use journal::{event::RiskVerdict, State};
use rust_decimal::Decimal;
use serde_json::Value as Json;

use super::config::{Provider, RiskConfig, TraderConfig};

/// The answer's JSON out of a provider's response body.
///
/// # Errors
/// Why there is no answer: the body is not JSON, not the provider's shape, a refusal, or cut
/// by the token limit; or the answer is not JSON.
pub fn answer(provider: Provider, raw: &str) -> Result<Json, String> {
    let body: Json = serde_json::from_str(raw).map_err(|e| format!("the response body is not JSON: {e}"))?;
    match provider {
        Provider::Openai => {
            let choice = body.pointer("/choices/0").ok_or("the response has no choices[0]")?;
            if let Some(refusal) = choice.pointer("/message/refusal").and_then(Json::as_str) {
                return Err(format!("the model refused: {refusal}"));
            }
            if choice.get("finish_reason").and_then(Json::as_str) == Some("length") {
                return Err("the answer was cut by the token limit".into());
            }
            let content = choice.pointer("/message/content").and_then(Json::as_str).ok_or("no message.content")?;
            serde_json::from_str(content).map_err(|e| format!("the answer is not valid JSON: {e}"))
        }
        Provider::Anthropic => {
            if body.get("stop_reason").and_then(Json::as_str) == Some("max_tokens") {
                return Err("the answer was cut by the token limit".into());
            }
            let blocks = body.get("content").and_then(Json::as_array).ok_or("the response has no content")?;
            blocks
                .iter()
                .find(|b| b.get("type").and_then(Json::as_str) == Some("tool_use"))
                .and_then(|b| b.get("input"))
                .cloned()
                .ok_or_else(|| "the response has no tool_use block".to_owned())
        }
    }
}

/// The schema's complaints about `value`, in the validator's order (empty: valid).
pub fn schema_errors(validator: &jsonschema::Validator, value: &Json) -> Vec<String> {
    validator.iter_errors(value).map(|e| format!("{}: {e}", e.instance_path)).collect()
}

/// What a valid decision asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub signal: Signal,
    pub symbol: String,
    pub leverage: u32,
    pub size_usd: Decimal,
    pub entry_price: Decimal,
    pub stop_loss: Decimal,
    pub take_profit: Decimal,
    pub confidence: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Long,
    Short,
    Hold,
    Close,
}

/// A JSON number as an exact decimal: through its text, never through arithmetic on a float.
fn decimal(value: Option<&Json>) -> Decimal {
    value
        .and_then(|v| match v {
            Json::Number(n) => {
                Decimal::from_str(&n.to_string()).ok().or_else(|| Decimal::from_scientific(&n.to_string()).ok())
            }
            Json::String(s) => Decimal::from_str(s).ok(),
            _ => None,
        })
        .unwrap_or(Decimal::ZERO)
}

impl Decision {
    /// Reads a schema-valid decision (fields a custom schema leaves out read as zero).
    pub fn read(value: &Json) -> Decision {
        let signal = match value.get("signal").and_then(Json::as_str) {
            Some("buy_to_enter") => Signal::Long,
            Some("sell_to_enter") => Signal::Short,
            Some("close") => Signal::Close,
            // nof0 maps an unknown signal to hold: doing nothing is the safe reading.
            _ => Signal::Hold,
        };
        let int = |k: &str| value.get(k).and_then(Json::as_f64).map_or(0, |f| f.clamp(0.0, f64::from(u32::MAX)) as u32);
        Decision {
            signal,
            symbol: value.get("symbol").and_then(Json::as_str).unwrap_or("").to_owned(),
            leverage: int("leverage"),
            size_usd: decimal(value.get("position_size_usd")),
            entry_price: decimal(value.get("entry_price")),
            stop_loss: decimal(value.get("stop_loss")),
            take_profit: decimal(value.get("take_profit")),
            confidence: int("confidence"),
        }
    }
}

fn verdict(rule: &str, passed: bool, detail: String) -> RiskVerdict {
    RiskVerdict { rule: rule.to_owned(), passed, detail }
}

/// The entry price gates and orders use: the decision's, or the last price when it gave none.
pub fn entry_reference(decision: &Decision, state: &State) -> Option<Decimal> {
    if decision.entry_price > Decimal::ZERO {
        Some(decision.entry_price)
    } else {
        state.mark(&decision.symbol)
    }
}

/// Every gate's verdict on an entry (`buy_to_enter`/`sell_to_enter`) or a close; a hold
/// needs none. The order follows nof0's validator.
pub fn gates(config: &TraderConfig, state: &State, decision: &Decision) -> Vec<RiskVerdict> {
    let risk: &RiskConfig = &config.risk;
    let mut out = Vec::new();
    let known = config.symbols.contains(&decision.symbol);
    out.push(verdict("symbol", known, format!("{} among {:?}", decision.symbol, config.symbols)));
    let trader = state.traders.get(&config.id);
    let held = trader.and_then(|t| t.positions.get(&decision.symbol)).map_or(Decimal::ZERO, |p| p.qty);
    if decision.signal == Signal::Close {
        out.push(verdict("position_exists", !held.is_zero(), format!("position {held}")));
        return out;
    }
    let long = decision.signal == Signal::Long;
    out.push(verdict(
        "min_confidence",
        decision.confidence >= risk.min_confidence,
        format!("{} >= {}", decision.confidence, risk.min_confidence),
    ));
    let entry = entry_reference(decision, state).unwrap_or(Decimal::ZERO);
    let (sl, tp) = (decision.stop_loss, decision.take_profit);
    let ordered = entry > Decimal::ZERO
        && sl > Decimal::ZERO
        && if long { tp > entry && entry > sl } else { sl > entry && entry > tp };
    let side = if long { "long: take_profit > entry > stop_loss" } else { "short: stop_loss > entry > take_profit" };
    out.push(verdict("price_order", ordered, format!("{side} ({tp}, {entry}, {sl})")));
    let reward_risk = if ordered { ((tp - entry).abs() / (entry - sl).abs()).round_dp(4) } else { Decimal::ZERO };
    out.push(verdict(
        "min_risk_reward",
        ordered && reward_risk >= risk.min_risk_reward,
        format!("{reward_risk} >= {}", risk.min_risk_reward),
    ));
    let open_elsewhere =
        trader.map_or(0, |t| t.positions.iter().filter(|(s, p)| !p.qty.is_zero() && **s != decision.symbol).count());
    out.push(verdict(
        "max_positions",
        open_elsewhere < risk.max_positions,
        format!("{} open elsewhere < {}", open_elsewhere, risk.max_positions),
    ));
    out.push(verdict(
        "max_position_size_usd",
        decision.size_usd > Decimal::ZERO && decision.size_usd <= risk.max_position_size_usd,
        format!("0 < {} <= {}", decision.size_usd, risk.max_position_size_usd),
    ));
    let major = risk.major_coins.contains(&decision.symbol);
    let cap = if major { risk.leverage_major_max } else { risk.leverage_alt_max };
    out.push(verdict(
        "leverage_cap",
        decision.leverage >= 1 && decision.leverage <= cap,
        format!("1 <= {} <= {cap} ({})", decision.leverage, if major { "major" } else { "alt" }),
    ));
    let account = state.account(&config.id);
    let equity = account.as_ref().map_or(Decimal::ZERO, |a| a.equity);
    let in_use = account.as_ref().map_or(Decimal::ZERO, |a| a.margin_used + a.order_margin);
    let new_margin = decision.size_usd / Decimal::from(decision.leverage.max(1));
    let use_pct = if equity > Decimal::ZERO {
        ((in_use + new_margin) / equity * Decimal::ONE_HUNDRED).round_dp(2)
    } else {
        Decimal::MAX
    };
    out.push(verdict(
        "max_margin_use",
        use_pct <= risk.max_margin_use_pct,
        format!("{use_pct}% <= {}%", risk.max_margin_use_pct),
    ));
    let same_way = (long && held > Decimal::ZERO) || (!long && held < Decimal::ZERO);
    let other_way = (long && held < Decimal::ZERO) || (!long && held > Decimal::ZERO);
    out.push(verdict("no_pyramiding", risk.allow_pyramiding || !same_way, format!("position {held}")));
    out.push(verdict("no_hedging", risk.allow_hedging || !other_way, format!("position {held}")));
    out
}

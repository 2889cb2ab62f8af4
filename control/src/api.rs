//! The responses, as pure functions of the arena (the handlers in [`crate::server`] only
//! lock, call these and wrap the JSON).
//!
//! nof0's endpoints keep nof0's field names and JSON numbers (its clients parse floats); each
//! such number is the nearest `f64` to the ledger's exact decimal, for display. Where the
//! ledger's exact value matters, our own fields carry it as a decimal string: the nof0
//! responses add `*_exact` strings beside the main money figures, and our endpoints
//! (`/api/traders/:id/...`) use strings throughout.

use std::collections::{BTreeMap, VecDeque};

use journal::{event::Side, state::orders::OrderStatus};
use rust_decimal::Decimal;
use serde_json::{json, Map, Value};

use crate::{
    arena::Arena,
    replica::{Replica, Trade},
};

/// The largest `limit` any list endpoint accepts.
pub const LIMIT_MAX: usize = 1000;

/// The nearest `f64` to an exact decimal (through its text, which Rust's parser rounds
/// correctly), for nof0's numeric fields.
pub fn num(d: Decimal) -> f64 {
    d.to_string().parse().unwrap_or(0.0)
}

/// A float as JSON, `null` when not finite (JSON has no NaN).
fn float(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

fn side_name(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

pub fn status_name(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Submitted => "submitted",
        OrderStatus::Open => "open",
        OrderStatus::PartiallyFilled => "partially_filled",
        OrderStatus::Filled => "filled",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Rejected => "rejected",
    }
}

/// The return on starting capital in percent (0 without capital).
fn return_pct(equity: Decimal, capital: Decimal) -> f64 {
    if capital.is_zero() {
        return 0.0;
    }
    num((equity - capital) / capital * Decimal::ONE_HUNDRED)
}

fn equity_of(replica: &Replica, name: &str) -> Decimal {
    replica.state.equity(name).unwrap_or(Decimal::ZERO)
}

/// nof0's `Position` for each open position of a trader, keyed by symbol, plus ours:
/// exact strings and the distance to liquidation.
fn positions_of(replica: &Replica, name: &str) -> Map<String, Value> {
    let mut out = Map::new();
    let Some(t) = replica.state.traders.get(name) else { return out };
    let view = replica.traders.get(name);
    for (symbol, p) in t.positions.iter().filter(|(_, p)| !p.qty.is_zero()) {
        let instrument = replica.state.instruments.get(symbol);
        let leverage = t.leverage(instrument);
        let mark = replica.state.mark(symbol).unwrap_or(p.entry_price);
        let mmr = instrument.map_or(Decimal::ZERO, |i| i.maintenance_margin_rate);
        let liquidation = p.liquidation_price(leverage, mmr);
        // How far the mark may move against the position before liquidation, in percent of the mark.
        let distance_pct =
            liquidation.filter(|_| !mark.is_zero()).map(|l| num((mark - l).abs() / mark * Decimal::ONE_HUNDRED));
        let unrealized = p.unrealized_pnl(mark);
        let entry_time = view.and_then(|v| v.open_entry_ms(symbol)).map_or(0.0, seconds);
        out.insert(
            symbol.clone(),
            json!({
                "symbol": symbol,
                "entry_price": num(p.entry_price),
                "current_price": num(mark),
                "quantity": num(p.qty),
                "leverage": num(leverage),
                "margin": num(p.margin(leverage)),
                "unrealized_pnl": num(unrealized),
                "closed_pnl": num(p.realized_pnl),
                "liquidation_price": liquidation.map_or(0.0, num),
                "commission": num(p.fees_paid),
                "slippage": 0,
                "confidence": 0,
                "risk_usd": 0,
                "exit_plan": {},
                "entry_oid": 0,
                "tp_oid": -1,
                "sl_oid": -1,
                "oid": 0,
                "wait_for_fill": false,
                "entry_time": entry_time,
                "index_col": Value::Null,
                "liquidation_distance_pct": distance_pct.map_or(Value::Null, float),
                "quantity_exact": p.qty.to_string(),
                "entry_price_exact": p.entry_price.to_string(),
                "unrealized_pnl_exact": unrealized.to_string(),
            }),
        );
    }
    out
}

const HOUR_MS: i64 = 3_600_000;

/// nof0's `AccountTotal` rows. Without a marker: each trader's latest row. With
/// `lastHourlyMarker=M`: the rows of every hour after M (at most [`LIMIT_MAX`] per trader,
/// the newest), as nof0's clients poll for a chart. An hour's row is the equity curve's last
/// point in that hour; only the latest row has positions, realized PnL and the Sharpe ratio
/// (the curve keeps equity alone), the others carry `{}`, `null` and `null`.
pub fn account_totals(arena: &Arena, last_hourly_marker: Option<i64>, now_ms: i64) -> Value {
    let mut totals = Vec::new();
    let mut marker_read = 0i64;
    for (id, name, replica) in arena.traders() {
        let Some(t) = replica.state.traders.get(name) else { continue };
        let view = replica.traders.get(name);
        let first = view.and_then(|v| v.first_time_ms).unwrap_or(replica.state.time_ms);
        let elapsed_ms = replica.state.time_ms.saturating_sub(first).max(0);
        let hourly = elapsed_ms / HOUR_MS;
        marker_read = marker_read.max(hourly);
        let capital = replica.capital(name);
        if let (Some(m), Some(view)) = (last_hourly_marker, view) {
            // Hours m+1 .. hourly−1 from the curve (the current hour is the latest row below).
            let from = m.saturating_add(1).max(hourly.saturating_sub(LIMIT_MAX as i64 - 1)).max(0);
            for hour in from..hourly {
                let end_ms = first.saturating_add((hour + 1).saturating_mul(HOUR_MS));
                let Some(point) = view.equity.iter().rev().find(|p| p.time_ms < end_ms) else { continue };
                totals.push(json!({
                    "id": format!("{id}_{hour}"),
                    "model_id": id,
                    "timestamp": seconds(point.time_ms),
                    "dollar_equity": num(point.equity),
                    "realized_pnl": Value::Null,
                    "total_unrealized_pnl": Value::Null,
                    "cum_pnl_pct": return_pct(point.equity, capital),
                    "sharpe_ratio": Value::Null,
                    "since_inception_hourly_marker": hour,
                    "since_inception_minute_marker": point.time_ms.saturating_sub(first).max(0) / 60_000,
                    "positions": {},
                    "dollar_equity_exact": point.equity.to_string(),
                }));
            }
        }
        if last_hourly_marker.is_some_and(|m| m >= hourly) {
            continue;
        }
        let equity = equity_of(replica, name);
        let account = replica.state.account(name);
        totals.push(json!({
            "id": format!("{id}_{hourly}"),
            "model_id": id,
            "timestamp": seconds(replica.state.time_ms),
            "dollar_equity": num(equity),
            "realized_pnl": num(t.realized_pnl),
            "total_unrealized_pnl": account.as_ref().map_or(0.0, |a| num(a.unrealized_pnl)),
            "cum_pnl_pct": return_pct(equity, capital),
            "sharpe_ratio": replica.sharpe(name).map_or(Value::Null, float),
            "since_inception_hourly_marker": hourly,
            "since_inception_minute_marker": elapsed_ms / 60_000,
            "positions": positions_of(replica, name),
            "dollar_equity_exact": equity.to_string(),
        }));
    }
    json!({ "accountTotals": totals, "lastHourlyMarkerRead": marker_read, "serverTime": now_ms })
}

fn leader(id: &str, name: &str, replica: &Replica) -> Value {
    let view = replica.traders.get(name);
    let totals = view.map(|v| v.totals.clone()).unwrap_or_default();
    let equity = equity_of(replica, name);
    let win_rate = if totals.count == 0 { 0.0 } else { totals.wins as f64 / totals.count as f64 * 100.0 };
    let fees = replica.state.traders.get(name).map_or(Decimal::ZERO, |t| t.fees_paid);
    json!({
        // Ours beside nof0's: the KPIs per trader.
        "max_drawdown_pct": view.map_or(0.0, |v| num(v.drawdown.max_pct())),
        "win_rate_pct": win_rate,
        "fees_paid": num(fees),
        "id": id,
        "num_trades": totals.count,
        "sharpe": replica.sharpe(name).map_or(Value::Null, float),
        "win_dollars": num(totals.win_dollars),
        "num_losses": totals.losses,
        "lose_dollars": num(totals.lose_dollars),
        "return_pct": return_pct(equity, replica.capital(name)),
        "equity": num(equity),
        "num_wins": totals.wins,
        "equity_exact": equity.to_string(),
    })
}

/// nof0's leaderboard, best return first (ties by id).
pub fn leaderboard(arena: &Arena, now_ms: i64) -> Value {
    let mut rows: Vec<Value> = arena.traders().iter().map(|(id, name, r)| leader(id, name, r)).collect();
    rows.sort_by(|a, b| {
        let key = |v: &Value| v["return_pct"].as_f64().unwrap_or(f64::NEG_INFINITY);
        key(b).total_cmp(&key(a)).then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
    });
    json!({ "leaderboard": rows, "serverTime": now_ms })
}

/// nof0's `CryptoPrice` per symbol: the fold's marks.
pub fn crypto_prices(arena: &Arena, now_ms: i64) -> Value {
    let mut prices = BTreeMap::new();
    for source in &arena.sources {
        for (symbol, mark) in &source.replica.state.marks {
            let newer = prices.get(symbol).is_none_or(|(t, _): &(i64, Value)| *t < mark.time_ms);
            if newer {
                let row = json!({ "symbol": symbol, "price": num(mark.price), "timestamp": mark.time_ms,
                                  "price_exact": mark.price.to_string() });
                prices.insert(symbol.clone(), (mark.time_ms, row));
            }
        }
    }
    let prices: Map<String, Value> = prices.into_iter().map(|(k, (_, v))| (k, v)).collect();
    json!({ "prices": prices, "serverTime": now_ms })
}

/// nof0's since-inception rows: the NAV a trader started with, when, and its LLM calls.
pub fn since_inception(arena: &Arena, now_ms: i64) -> Value {
    let rows: Vec<Value> = arena
        .traders()
        .iter()
        .map(|(id, name, replica)| {
            let view = replica.traders.get(*name);
            json!({
                "id": id,
                "nav_since_inception": num(replica.capital(name)),
                "inception_date": view.and_then(|v| v.first_time_ms).map_or(0.0, seconds),
                "num_invocations": view.map_or(0, |v| v.llm_invocations),
                "model_id": id,
            })
        })
        .collect();
    json!({ "sinceInceptionValues": rows, "serverTime": now_ms })
}

fn trade_json(id: &str, trade: &Trade, leverage: Decimal) -> Value {
    let side = if trade.long { "long" } else { "short" };
    let notional = trade.qty * trade.entry_price;
    let pnl_pct = if notional.is_zero() { 0.0 } else { num(trade.net() / notional * Decimal::ONE_HUNDRED) };
    let human = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map_or_else(String::new, |t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
    };
    json!({
        "id": format!("{id}_{}", trade.number),
        "model_id": id,
        "symbol": trade.symbol,
        "side": side,
        "trade_type": side,
        "trade_id": format!("{}_{}_{}_{id}", seconds(trade.entry_time_ms), trade.symbol, seconds(trade.exit_time_ms)),
        "quantity": num(trade.qty),
        "leverage": num(leverage),
        "confidence": 0,
        "entry_price": num(trade.entry_price),
        "entry_time": seconds(trade.entry_time_ms),
        "entry_human_time": human(trade.entry_time_ms),
        "entry_sz": num(trade.qty),
        "entry_tid": 0,
        "entry_oid": 0,
        "entry_crossed": true,
        "entry_liquidation": Value::Null,
        "entry_commission_dollars": 0,
        "entry_closed_pnl": 0,
        "exit_price": num(trade.exit_price),
        "exit_time": seconds(trade.exit_time_ms),
        "exit_human_time": human(trade.exit_time_ms),
        "exit_sz": num(trade.qty),
        "exit_tid": 0,
        "exit_oid": 0,
        "exit_crossed": true,
        "exit_liquidation": Value::Null,
        "exit_commission_dollars": 0,
        "exit_closed_pnl": num(trade.pnl),
        "exit_plan": {},
        "realized_gross_pnl": num(trade.pnl),
        "realized_net_pnl": num(trade.net()),
        "total_commission_dollars": num(trade.fees),
        "pnl_pct": pnl_pct,
        "holding_minutes": seconds(trade.exit_time_ms - trade.entry_time_ms) / 60.0,
        "realized_net_pnl_exact": trade.net().to_string(),
        "entry_cloid": trade.entry_cloid.map(|c| c.to_string()),
        "exit_cloid": trade.exit_cloid.map(|c| c.to_string()),
    })
}

/// nof0's trades: the newest `limit` round trips over all traders, newest first.
pub fn trades(arena: &Arena, limit: usize, now_ms: i64) -> String {
    // Each trader's newest trades as JSON, kept until its next round trip (they never change).
    let mut kept = Vec::new();
    for (id, name, replica) in arena.traders() {
        let leverage = replica.state.traders.get(name).map_or(Decimal::ONE, |t| t.leverage(None));
        if let Some(view) = replica.traders.get(name) {
            let key = (view.totals.count, id.clone(), leverage, limit);
            kept.push(view.memos.trades.get_or(key, || {
                view.trades
                    .iter()
                    .rev()
                    .take(limit)
                    .map(|t| (t.exit_time_ms, trade_json(&id, t, leverage).to_string()))
                    .collect()
            }));
        }
    }
    let mut all: Vec<&(i64, String)> = kept.iter().flat_map(|rows| rows.iter()).collect();
    all.sort_by_key(|(time, _)| std::cmp::Reverse(*time));
    all.truncate(limit);
    let rows: Vec<&str> = all.iter().map(|(_, json)| json.as_str()).collect();
    format!("{{\"serverTime\":{now_ms},\"trades\":[{}]}}", rows.join(","))
}

/// nof0's positions by model.
pub fn positions(arena: &Arena, limit: usize, now_ms: i64) -> Value {
    let rows: Vec<Value> = arena
        .traders()
        .iter()
        .take(limit)
        .map(|(id, name, replica)| json!({ "model_id": id, "positions": positions_of(replica, name) }))
        .collect();
    json!({ "accountTotals": rows, "serverTime": now_ms })
}

/// nof0's conversations: each trader's journaled prompts and answers, oldest first, the newest `limit`.
pub fn conversations(arena: &Arena, limit: usize, now_ms: i64) -> Value {
    let rows: Vec<Value> = arena
        .traders()
        .iter()
        .filter_map(|(id, name, replica)| {
            let view = replica.traders.get(*name)?;
            let skip = view.messages.len().saturating_sub(limit);
            let messages: Vec<Value> = view
                .messages
                .iter()
                .skip(skip)
                .map(|m| {
                    json!({ "role": m.role, "content": m.content, "timestamp": seconds(m.time_ms), "model": m.model,
                            "seq": m.seq, "tokens": m.tokens, "cost_usd": m.cost_usd.map(|c| c.to_string()),
                            "latency_ms": m.latency_ms })
                })
                .collect();
            Some(json!({ "model_id": id, "messages": messages }))
        })
        .collect();
    json!({ "conversations": rows, "serverTime": now_ms })
}

fn mean_std(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let std = if values.len() < 2 {
        0.0
    } else {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    (mean, std)
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// nof0's `ModelAnalytics` for one trader. Totals (counts, sums, win rate) are over every
/// round trip; averages and deviations over the round trips kept.
/// What nof0's analytics derive from a trader's kept round trips: kept per trader (see
/// [`crate::replica::Memo`]) until the next round trip closes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct TradeStats {
    pub net: (f64, f64),
    pub gross: (f64, f64),
    pub fee: (f64, f64),
    pub winners: (f64, f64),
    pub losers: (f64, f64),
    pub winners_holding: (f64, f64),
    pub losers_holding: (f64, f64),
    pub winners_notional: (f64, f64),
    pub losers_notional: (f64, f64),
    pub longs: (f64, f64),
    pub shorts: (f64, f64),
    pub holding: (f64, f64),
    pub size: (f64, f64),
    pub median_holding: f64,
    pub median_size: f64,
}

/// Means, standard deviations and medians over the kept round trips.
pub fn trade_stats(trades: &VecDeque<Trade>) -> TradeStats {
    let net: Vec<f64> = trades.iter().map(|t| num(t.net())).collect();
    let gross: Vec<f64> = trades.iter().map(|t| num(t.pnl)).collect();
    let fees: Vec<f64> = trades.iter().map(|t| num(t.fees)).collect();
    let holding: Vec<f64> = trades.iter().map(|t| (t.exit_time_ms - t.entry_time_ms) as f64 / 60_000.0).collect();
    let notional: Vec<f64> = trades.iter().map(|t| num(t.qty * t.entry_price)).collect();
    let pick = |want: &dyn Fn(&Trade) -> bool, of: &[f64]| -> Vec<f64> {
        trades.iter().zip(of).filter(|(t, _)| want(t)).map(|(_, v)| *v).collect()
    };
    let winners = |t: &Trade| t.net() > Decimal::ZERO;
    let losers = |t: &Trade| t.net() < Decimal::ZERO;
    TradeStats {
        net: mean_std(&net),
        gross: mean_std(&gross),
        fee: mean_std(&fees),
        winners: mean_std(&pick(&winners, &net)),
        losers: mean_std(&pick(&losers, &net)),
        winners_holding: mean_std(&pick(&winners, &holding)),
        losers_holding: mean_std(&pick(&losers, &holding)),
        winners_notional: mean_std(&pick(&winners, &notional)),
        losers_notional: mean_std(&pick(&losers, &notional)),
        longs: mean_std(&pick(&|t: &Trade| t.long, &net)),
        shorts: mean_std(&pick(&|t: &Trade| !t.long, &net)),
        holding: mean_std(&holding),
        size: mean_std(&notional),
        median_holding: median(&mut holding.clone()),
        median_size: median(&mut notional.clone()),
    }
}

pub fn model_analytics(id: &str, name: &str, replica: &Replica) -> Value {
    let (Some(view), Some(t)) = (replica.traders.get(name), replica.state.traders.get(name)) else {
        return Value::Null;
    };
    let totals = &view.totals;
    let stats = view.memos.stats.get_or(totals.count, || trade_stats(&view.trades));
    let (avg_net, std_net) = stats.net;
    let (avg_gross, std_gross) = stats.gross;
    let (avg_fee, std_fee) = stats.fee;
    let (avg_w, std_w) = stats.winners;
    let (avg_l, std_l) = stats.losers;
    let (avg_wh, std_wh) = stats.winners_holding;
    let (avg_lh, std_lh) = stats.losers_holding;
    let (avg_wn, std_wn) = stats.winners_notional;
    let (avg_ln, std_ln) = stats.losers_notional;
    let (avg_long, std_long) = stats.longs;
    let (avg_short, std_short) = stats.shorts;
    let (avg_hold, std_hold) = stats.holding;
    let (avg_size, std_size) = stats.size;
    let win_rate = if totals.count == 0 { 0.0 } else { totals.wins as f64 / totals.count as f64 * 100.0 };
    let pnl_without_fees = t.realized_pnl;
    let with_fees = t.realized_pnl - t.fees_paid + t.funding_net;
    let last_trade = view.trades.back();
    let last_convo = view.messages.back();
    json!({
        "id": id,
        "model_id": id,
        "updated_at": seconds(replica.state.time_ms),
        "fee_pnl_moves_breakdown_table": {
            "std_net_pnl": std_net, "total_fees_paid": num(t.fees_paid),
            "overall_pnl_without_fees": num(pnl_without_fees), "overall_pnl_with_fees": num(with_fees),
            "total_fees_as_pct_of_pnl": if pnl_without_fees.is_zero() { 0.0 } else { num(t.fees_paid / pnl_without_fees.abs() * Decimal::ONE_HUNDRED) },
            "avg_taker_fee": avg_fee, "std_taker_fee": std_fee, "std_gross_pnl": std_gross, "avg_net_pnl": avg_net,
            "avg_gross_pnl": avg_gross, "biggest_net_loss": num(totals.biggest_loss), "biggest_net_gain": num(totals.biggest_gain),
        },
        "winners_losers_breakdown_table": {
            "win_rate": win_rate, "avg_winners_net_pnl": avg_w, "std_winners_net_pnl": std_w,
            "avg_losers_net_pnl": avg_l, "std_losers_net_pnl": std_l,
            "avg_winners_holding_period": avg_wh, "std_winners_holding_period": std_wh,
            "avg_losers_holding_period": avg_lh, "std_losers_holding_period": std_lh,
            "avg_winners_notional": avg_wn, "std_winners_notional": std_wn,
            "avg_losers_notional": avg_ln, "std_losers_notional": std_ln,
        },
        "longs_shorts_breakdown_table": {
            "num_long_trades": totals.longs, "num_short_trades": totals.shorts,
            "long_short_trades_ratio": if totals.shorts == 0 { 0.0 } else { totals.longs as f64 / totals.shorts as f64 },
            "avg_longs_net_pnl": avg_long, "std_longs_net_pnl": std_long,
            "avg_shorts_net_pnl": avg_short, "std_shorts_net_pnl": std_short,
        },
        "signals_breakdown_table": { "total_signals": view.llm_invocations },
        "invocation_breakdown_table": { "num_invocations": view.llm_invocations },
        "overall_trades_overview_table": {
            "total_trades": totals.count, "avg_holding_period_mins": avg_hold, "std_holding_period_mins": std_hold,
            "median_holding_period_mins": stats.median_holding,
            "avg_size_of_trade_notional": avg_size, "std_size_of_trade_notional": std_size,
            "median_size_of_trade_notional": stats.median_size,
        },
        "last_trade_exit_time": last_trade.map_or(0.0, |t| seconds(t.exit_time_ms)),
        "last_trade_doc_id": last_trade.map_or_else(String::new, |t| format!("{id}_{}", t.number)),
        "last_convo_timestamp": last_convo.map_or(0.0, |m| seconds(m.time_ms)),
        "last_convo_doc_id": last_convo.map_or_else(String::new, |m| format!("{id}_{}", m.seq)),
    })
}

pub fn analytics(arena: &Arena, now_ms: i64) -> Value {
    let rows: Vec<Value> = arena.traders().iter().map(|(id, name, r)| model_analytics(id, name, r)).collect();
    json!({ "analytics": rows, "serverTime": now_ms })
}

/// A trader's equity curve (exact strings): the newest `limit` points, or with `whole`,
/// at most `limit` points spread evenly over the whole curve (always with its first and
/// last), for a chart.
pub fn equity(id: &str, name: &str, replica: &Replica, limit: usize, whole: bool, now_ms: i64) -> String {
    use std::fmt::Write;
    let view = replica.traders.get(name);
    let points = view.map_or(&[][..], |v| &v.equity[..]);
    // Written directly: a curve of a thousand points is most of what a dashboard asks for.
    let mut rows = String::with_capacity(48 * limit.min(points.len()) + 2);
    let mut row = |p: &crate::replica::EquityPoint| {
        let comma = if rows.is_empty() { "" } else { "," };
        let _ = write!(rows, "{comma}{{\"equity\":\"{}\",\"time_ms\":{}}}", p.equity, p.time_ms);
    };
    if whole && points.len() > limit {
        let last = points.len() - 1;
        let slots = limit.max(2) - 1;
        (0..=slots).for_each(|i| row(&points[i * last / slots]));
    } else {
        points[points.len().saturating_sub(limit)..].iter().for_each(row);
    }
    format!(
        "{{\"capital\":\"{}\",\"equity\":\"{}\",\"points\":[{rows}],\"points_total\":{},\"serverTime\":{now_ms},\"stride\":{},\"trader\":{}}}",
        replica.capital(name),
        equity_of(replica, name),
        points.len(),
        view.map_or(1, |v| v.stride),
        Value::from(id),
    )
}

/// A trader's orders, open and ended, newest first.
pub fn orders(id: &str, name: &str, replica: &Replica, limit: usize, now_ms: i64) -> Value {
    let view = replica.traders.get(name);
    let rows: Vec<Value> = view
        .map(|v| {
            v.orders
                .iter()
                .rev()
                .take(limit)
                .map(|o| {
                    json!({
                        "cloid": o.cloid.to_string(), "symbol": o.symbol, "side": o.side.map(side_name),
                        "kind": o.kind, "qty": o.qty.to_string(), "price": o.price.map(|p| p.to_string()),
                        "reduce_only": o.reduce_only, "status": status_name(o.status),
                        "filled_qty": o.filled_qty.to_string(), "submitted_ms": o.submitted_ms,
                        "updated_ms": o.updated_ms, "reason": o.reason,
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    let open = replica.state.traders.get(name).map_or(0, |t| t.orders.len());
    json!({ "trader": id, "open": open, "orders": rows, "serverTime": now_ms })
}

/// A trader's fills, newest first.
pub fn fills(id: &str, name: &str, replica: &Replica, limit: usize, now_ms: i64) -> String {
    let rows = replica.traders.get(name).map_or_else(
        || std::sync::Arc::new("[]".to_owned()),
        |v| {
            // Kept until the next fill.
            v.memos.fills.get_or((v.fills.back().map(|f| f.seq), limit), || {
                let rows: Vec<Value> = v
                    .fills
                    .iter()
                    .rev()
                    .take(limit)
                    .map(|f| {
                        json!({
                            "seq": f.seq, "time_ms": f.time_ms, "cloid": f.cloid.to_string(), "fill_id": f.fill_id,
                            "symbol": f.symbol, "side": side_name(f.side), "qty": f.qty.to_string(),
                            "price": f.price.to_string(), "fee_quote": f.fee_quote.to_string(),
                            "liquidity": if f.maker { "maker" } else { "taker" },
                        })
                    })
                    .collect();
                Value::from(rows).to_string()
            })
        },
    );
    let total = replica.state.traders.get(name).map_or(0, |t| t.stats.fills);
    format!("{{\"fills\":{rows},\"fills_total\":{total},\"serverTime\":{now_ms},\"trader\":{}}}", Value::from(id))
}

/// Where each journal stands.
pub fn journal(arena: &Arena, now_ms: i64) -> Value {
    let rows: Vec<Value> = arena
        .sources
        .iter()
        .map(|s| {
            let head = &s.replica.head;
            let verify = match &head.verified {
                None => Value::Null,
                Some(Ok(digest)) => json!({ "ok": true, "state_digest": digest.to_string() }),
                Some(Err(problem)) => json!({ "ok": false, "problem": problem }),
            };
            json!({
                "name": s.name,
                "records": head.records,
                "head_seq": head.records.checked_sub(1),
                "head_hash": head.head_hash.to_string(),
                "durable_seq": head.durable_through,
                "durable_lag_records": head.records.saturating_sub(head.durable_through.map_or(0, |d| d + 1)),
                "state_digest": s.replica.state.digest().to_string(),
                "anomalies": s.replica.state.anomalies_total,
                "verify": verify,
            })
        })
        .collect();
    json!({ "journals": rows, "ready": arena.ready, "serverTime": now_ms })
}

#[cfg(test)]
mod tests {
    use journal::{
        event::{Cloid, Fill, Instrument, Kline, Liquidity, OrderIntent, OrderKind, TimeInForce, TraderStart},
        testkit::chain,
        Event,
    };
    use rust_decimal_macros::dec;

    use super::*;
    use crate::arena::Source;

    fn arena() -> Arena {
        let start = Event::TraderStarted(TraderStart {
            exchange: "sim".into(),
            account: "main".into(),
            currency: "USDT".into(),
            allocation_pct: dec!(100),
            capital_quote: dec!(1000),
            leverage: dec!(4),
        });
        let instrument = Event::InstrumentDefined(Instrument {
            symbol: "BTCUSDT".into(),
            tick_size: dec!(0.1),
            qty_step: dec!(0.001),
            min_qty: dec!(0.001),
            max_leverage: dec!(100),
            maintenance_margin_rate: dec!(0.005),
            taker_fee_rate: dec!(0),
            maker_fee_rate: dec!(0),
        });
        let kline = |close| Event::KlineReceived(Kline { close, interval_ms: 60_000, ..Kline::zeroed("BTCUSDT") });
        let fill = Event::OrderFilled(Fill {
            cloid: Cloid([1; 16]),
            fill_id: "f".into(),
            symbol: "BTCUSDT".into(),
            side: Side::Sell,
            qty: dec!(2),
            price: dec!(100),
            fee_quote: dec!(0),
            liquidity: Liquidity::Taker,
        });
        let mut items =
            vec![(0, "".to_owned(), instrument), (0, "t".to_owned(), start), (0, "".to_owned(), kline(dec!(100)))];
        let order = Event::OrderSubmitted(OrderIntent {
            cloid: Cloid([1; 16]),
            symbol: "BTCUSDT".into(),
            side: Side::Sell,
            kind: OrderKind::Market,
            qty: dec!(2),
            price: None,
            trigger_price: None,
            reduce_only: false,
            tif: TimeInForce::Ioc,
        });
        items.push((60_000, "t".to_owned(), order));
        items.push((60_000, "t".to_owned(), fill));
        for i in 2..50 {
            items.push((i * 60_000, "".to_owned(), kline(Decimal::from(100 + i % 7))));
        }
        items.push((50 * 60_000, "".to_owned(), kline(dec!(110))));
        let replica = Replica::fold(&chain(&items));
        Arena { sources: vec![Source { name: "j".into(), replica }], ready: true }
    }

    #[test]
    fn an_open_short_with_its_liquidation_distance() {
        let arena = arena();
        let positions = positions(&arena, 10, 0);
        let p = &positions["accountTotals"][0]["positions"]["BTCUSDT"];
        assert_eq!(p["quantity_exact"], "-2");
        assert_eq!(p["current_price"], 110.0);
        assert_eq!(p["unrealized_pnl_exact"], "-20");
        // Short at 100, leverage 4, mmr 0.005: 100 · (1 + 1/4 − 0.005) = 124.5; from 110 that is 13.18…%.
        assert_eq!(p["liquidation_price"], 124.5);
        let distance = p["liquidation_distance_pct"].as_f64().unwrap();
        assert!((distance - 14.5 / 110.0 * 100.0).abs() < 1e-9, "{distance}");
        assert_eq!(p["margin"], 50.0);
        let totals = account_totals(&arena, None, 0);
        assert_eq!(totals["accountTotals"][0]["dollar_equity_exact"], "980");
        assert_eq!(totals["accountTotals"][0]["positions"], positions["accountTotals"][0]["positions"]);
    }

    #[test]
    fn the_whole_equity_curve_thinned_keeps_both_ends() {
        let arena = arena();
        let (_, name, replica) = arena.trader("t").unwrap();
        let parse = |text: String| serde_json::from_str::<Value>(&text).unwrap();
        let all = parse(equity("t", name, replica, LIMIT_MAX, false, 0));
        let total = all["points_total"].as_u64().unwrap() as usize;
        assert_eq!(all["points"].as_array().unwrap().len(), total);
        let thin = parse(equity("t", name, replica, 10, true, 0));
        let points = thin["points"].as_array().unwrap();
        assert_eq!(points.len(), 10);
        assert_eq!(points[0], all["points"][0]);
        assert_eq!(points[9], all["points"][total - 1]);
        assert_eq!(points[9]["equity"], "980");
        let latest = parse(equity("t", name, replica, 10, false, 0));
        assert_eq!(latest["points"][0], all["points"][total - 10]);
    }
}

//! Recent klines per symbol and interval, folded from `KlineReceived` events,
//! for `ctx.api.getKlines`. Kept beside the ledger rather than in it: it is
//! bounded, derived from the same events, and not part of the account.

use std::collections::{BTreeMap, VecDeque};

use journal::{describe::interval_label, event::Kline};
use rust_decimal::Decimal;
use serde_json::{json, Value as Json};

use crate::sandbox::Tick;

/// The most klines kept per (symbol, interval): Bybit's own `limit` maximum.
pub const KLINES_KEPT_MAX: usize = 1000;

#[derive(Debug, Default, Clone)]
pub struct Market {
    /// Per symbol, per interval: the latest closed klines, oldest first. Keyed by symbol
    /// alone so a bar is recorded without building a key, and stored without the symbol so
    /// it is recorded without copying one.
    klines: BTreeMap<String, Vec<(i64, VecDeque<Candle>)>>,
}

/// A closed kline without its symbol and interval (the keys it is stored under).
#[derive(Debug, Clone, Copy)]
struct Candle {
    open_time_ms: i64,
    open: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
}

impl Market {
    /// Remembers a closed kline (open candles are not history yet).
    pub fn record(&mut self, kline: &Kline) {
        if !kline.closed {
            return;
        }
        let intervals = match self.klines.get_mut(kline.symbol.as_str()) {
            Some(intervals) => intervals,
            None => self.klines.entry(kline.symbol.clone()).or_default(),
        };
        let at = match intervals.iter().position(|(ms, _)| *ms == kline.interval_ms) {
            Some(at) => at,
            None => {
                intervals.push((kline.interval_ms, VecDeque::with_capacity(KLINES_KEPT_MAX)));
                intervals.len() - 1
            }
        };
        let series = &mut intervals[at].1;
        if series.len() == KLINES_KEPT_MAX {
            series.pop_front();
        }
        let Kline { open_time_ms, open, high, low, close, volume, .. } = *kline;
        series.push_back(Candle { open_time_ms, open, high, low, close, volume });
    }

    /// The last `limit` closed klines, oldest first.
    pub fn recent(&self, symbol: &str, interval_ms: i64, limit: usize) -> impl Iterator<Item = Kline> + '_ {
        let series = self
            .klines
            .get_key_value(symbol)
            .and_then(|(symbol, intervals)| Some((symbol, &intervals.iter().find(|(ms, _)| *ms == interval_ms)?.1)));
        let len = series.map_or(0, |(_, s)| s.len());
        series.into_iter().flat_map(move |(symbol, s)| {
            s.iter().skip(len.saturating_sub(limit)).map(move |c| Kline {
                symbol: symbol.clone(),
                interval_ms,
                open_time_ms: c.open_time_ms,
                open: c.open,
                high: c.high,
                low: c.low,
                close: c.close,
                volume: c.volume,
                closed: true,
            })
        })
    }
}

/// A kline as strategies see it: `{symbol, interval, openTime, open, high, low, close, volume, closed}`.
pub fn tick_json(k: &Kline) -> Json {
    json!({
        "symbol": k.symbol,
        "interval": interval_label(k.interval_ms),
        "openTime": k.open_time_ms,
        "open": num(k.open),
        "high": num(k.high),
        "low": num(k.low),
        "close": num(k.close),
        "volume": num(k.volume),
        "closed": k.closed,
    })
}

/// The same tick as [`tick_json`], for [`crate::sandbox::HookArg::Tick`]; `interval` is
/// `interval_label(k.interval_ms)`, passed in so the hot path can reuse one label.
pub fn tick<'a>(k: &'a Kline, interval: &'a str) -> Tick<'a> {
    Tick {
        symbol: &k.symbol,
        interval,
        open_time_ms: k.open_time_ms,
        open: num(k.open),
        high: num(k.high),
        low: num(k.low),
        close: num(k.close),
        volume: num(k.volume),
        closed: k.closed,
        indicators: &[],
    }
}

/// Interval labels by length, computed once each (the heartbeat hot path would otherwise
/// format one per bar).
#[derive(Debug, Default, Clone)]
pub struct IntervalLabels(Vec<(i64, String)>);

impl IntervalLabels {
    pub fn get(&mut self, interval_ms: i64) -> &str {
        let at = match self.0.iter().position(|(ms, _)| *ms == interval_ms) {
            Some(at) => at,
            None => {
                self.0.push((interval_ms, interval_label(interval_ms)));
                self.0.len() - 1
            }
        };
        &self.0[at].1
    }
}

/// An exact decimal as the nearest JavaScript number.
pub fn num(d: rust_decimal::Decimal) -> f64 {
    journal::money::to_f64(d)
}

/// "1m" → 60000 and the like, plus Bybit's forms: bare minutes ("60"), a unit
/// alone ("D", "h") and upper-case day/week units ("D", "W", "2D").
pub fn parse_interval(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse::<i64>().ok().filter(|n| *n > 0)?.checked_mul(60_000);
    }
    let mut normal = if text.ends_with(['D', 'W']) { text.to_ascii_lowercase() } else { text.to_owned() };
    if !normal.starts_with(|c: char| c.is_ascii_digit()) {
        normal.insert(0, '1');
    }
    journal::describe::parse_interval(&normal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse() {
        for (text, ms) in [
            ("1m", 60_000),
            ("15m", 900_000),
            ("4h", 14_400_000),
            ("1d", 86_400_000),
            ("D", 86_400_000),
            ("60", 3_600_000),
            ("1w", 604_800_000),
        ] {
            assert_eq!(parse_interval(text), Some(ms), "{text}");
        }
        for bad in ["", "0m", "1x", "m1", "-1m"] {
            assert_eq!(parse_interval(bad), None, "{bad:?}");
        }
    }

    /// The heartbeat's fast tick object is, property by property, the JSON one converted.
    #[test]
    fn fast_tick_matches_the_json_tick() {
        use crate::sandbox::{Hook, HookArg, Host, Sandbox, SandboxConfig};
        use rust_decimal::Decimal;

        struct NoApi;
        impl Host for NoApi {
            fn now_ms(&self) -> i64 {
                0
            }
            fn api(&mut self, _: &str, _: Vec<Json>) -> Result<Json, String> {
                Err("no api here".into())
            }
        }
        let source = "function st_heartbeat(ctx, t) { \
            return [Object.getPrototypeOf(t) === Object.prototype, \
                    Object.entries(t).map(([k, v]) => [k, typeof v, String(v), Object.is(v, -0)])]; }";
        let mut sandbox = Sandbox::load("t.js", source, SandboxConfig::default()).expect("loads");
        let klines = [
            Kline {
                symbol: "BTCUSDT".into(),
                interval_ms: 3_600_000,
                open_time_ms: 1_700_000_000_000,
                open: Decimal::new(3_712_345, 2),
                high: Decimal::new(3_800_000, 2),
                low: Decimal::new(3_700_001, 2),
                close: Decimal::new(37_500, 0),
                volume: Decimal::new(2025, 8),
                closed: true,
            },
            Kline {
                symbol: "1000PEPEUSDT".into(),
                interval_ms: 60_000,
                open_time_ms: -60_000,
                open: Decimal::ZERO,
                high: Decimal::new(1, 28),
                low: Decimal::ZERO,
                close: Decimal::MAX,
                volume: Decimal::ZERO,
                closed: false,
            },
        ];
        let mut labels = IntervalLabels::default();
        for k in &klines {
            let json = sandbox.call(Hook::Heartbeat, Some(tick_json(k)), &mut NoApi).expect("json tick").value;
            let fast = sandbox
                .call_with(Hook::Heartbeat, HookArg::Tick(tick(k, labels.get(k.interval_ms))), &mut NoApi)
                .expect("fast tick")
                .value;
            assert_eq!(fast, json, "{k:?}");
            assert_eq!(json[0], Json::Bool(true));
            assert_eq!(json[1].as_array().map(Vec::len), Some(9));
        }
    }
}

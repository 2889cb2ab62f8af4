//! The market: the klines of one symbol and the clock that plays them.
//!
//! Market time is `origin + wall elapsed × speed`, where `origin` is the first played bar's open.
//! Until the clock starts (at once, or with `hold` at the first public kline subscription) it
//! stands at `origin`. Bar `next` is the bar in progress: everything before it is closed.

use std::time::{Duration, Instant};

use journal::event::Kline;
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// The replayed market.
#[derive(Debug)]
pub struct Market {
    pub symbol: String,
    pub interval_ms: i64,
    bars: Vec<Kline>,
    /// Bars before this index are closed.
    next: usize,
    origin_ms: i64,
    speed: f64,
    started: Option<Instant>,
}

impl Market {
    /// `bars` in time order, of which the first `history` are already closed.
    ///
    /// # Errors
    /// No bars, bars not of one interval and in order, or more history than bars.
    pub fn new(symbol: &str, bars: Vec<Kline>, history: usize, speed: f64) -> anyhow::Result<Market> {
        let Some(first) = bars.first() else { anyhow::bail!("no klines: a market needs at least one bar") };
        let interval_ms = first.interval_ms;
        if interval_ms <= 0 {
            anyhow::bail!("the klines' interval must be positive, not {interval_ms} ms");
        }
        if let Some(w) = bars.windows(2).find(|w| w[1].open_time_ms <= w[0].open_time_ms) {
            anyhow::bail!("klines out of order: {} after {}", w[1].open_time_ms, w[0].open_time_ms);
        }
        if history > bars.len() {
            anyhow::bail!("--history {history} is more than the {} bars of the file", bars.len());
        }
        let origin_ms = bars.get(history).map_or_else(|| bars[bars.len() - 1].open_time_ms + interval_ms, |b| b.open_time_ms);
        Ok(Market { symbol: symbol.to_owned(), interval_ms, bars, next: history, origin_ms, speed, started: None })
    }

    /// Starts the clock; later calls do nothing. Returns whether this call started it.
    pub fn start(&mut self) -> bool {
        if self.started.is_some() {
            return false;
        }
        self.started = Some(Instant::now());
        true
    }

    pub fn started(&self) -> bool {
        self.started.is_some()
    }

    /// The market clock in ms.
    pub fn now_ms(&self) -> i64 {
        let elapsed = self.started.map_or(0.0, |t| t.elapsed().as_secs_f64());
        // Market time fits an i64 of ms for any sane speed; `as` saturates otherwise.
        self.origin_ms.saturating_add((elapsed * 1000.0 * self.speed) as i64)
    }

    /// The bar in progress, if the market has not ended.
    pub fn current(&self) -> Option<&Kline> {
        self.bars.get(self.next)
    }

    /// The closed bars, oldest first.
    pub fn closed(&self) -> &[Kline] {
        &self.bars[..self.next]
    }

    /// The bars that came with the server, history included.
    pub fn all(&self) -> &[Kline] {
        &self.bars
    }

    /// The last traded price: the last close, or before any close the first open.
    pub fn last_price(&self) -> Decimal {
        self.closed().last().map_or_else(|| self.bars[0].open, |b| b.close)
    }

    /// The time an order arriving now is stamped with in the ledger: the open of the bar in
    /// progress, or after the end the last bar's close.
    pub fn order_stamp_ms(&self) -> i64 {
        match self.current() {
            Some(bar) => bar.open_time_ms,
            None => self.origin_ms.max(self.bars[self.bars.len() - 1].open_time_ms + self.interval_ms),
        }
    }

    /// Market time for timestamps of things happening now, kept inside the bar in progress (the
    /// clock can run ahead of the settlement task by a few ms).
    pub fn event_ms(&self) -> i64 {
        let now = self.now_ms();
        match self.current() {
            Some(bar) => now.clamp(bar.open_time_ms, bar.open_time_ms + self.interval_ms - 1),
            None => now,
        }
    }

    /// How long (wall) until the bar in progress ends; zero if it has; `None` if the clock has not
    /// started or the market has ended.
    pub fn wall_until_close(&self) -> Option<Duration> {
        let started = self.started?;
        let bar = self.current()?;
        let end_ms = bar.open_time_ms + self.interval_ms;
        let at = Duration::from_secs_f64(((end_ms - self.origin_ms) as f64 / 1000.0 / self.speed).max(0.0));
        Some(at.saturating_sub(started.elapsed()))
    }

    /// Closes the bar in progress and returns it.
    pub fn close_current(&mut self) -> Option<Kline> {
        let bar = self.bars.get(self.next)?.clone();
        self.next += 1;
        Some(bar)
    }

    /// Bybit's name of the interval: minutes, or D/W/M.
    pub fn interval_name(&self) -> String {
        interval_name(self.interval_ms)
    }

    /// The `kline.{interval}.{symbol}` topic.
    pub fn topic(&self) -> String {
        format!("kline.{}.{}", self.interval_name(), self.symbol)
    }

    /// The public message of a closed bar (VENUES.md §2), `ts` the market time of the push.
    pub fn kline_message(&self, bar: &Kline, ts_ms: i64) -> Value {
        json!({
            "topic": self.topic(),
            "data": [{
                "start": bar.open_time_ms,
                "end": bar.open_time_ms + self.interval_ms - 1,
                "interval": self.interval_name(),
                "open": bar.open.normalize().to_string(),
                "close": bar.close.normalize().to_string(),
                "high": bar.high.normalize().to_string(),
                "low": bar.low.normalize().to_string(),
                "volume": bar.volume.normalize().to_string(),
                "turnover": turnover(bar).to_string(),
                "confirm": true,
                "timestamp": ts_ms,
            }],
            "ts": ts_ms,
            "type": "snapshot",
        })
    }
}

/// The files carry no turnover: volume × the bar's typical price is a stand-in.
pub fn turnover(bar: &Kline) -> Decimal {
    let typical = (bar.high + bar.low + bar.close) / Decimal::from(3);
    bar.volume.saturating_mul(typical).round_dp(4).normalize()
}

/// Bybit's interval names: whole minutes as a number, a day `D`, a week `W`.
pub fn interval_name(interval_ms: i64) -> String {
    match interval_ms {
        86_400_000 => "D".into(),
        604_800_000 => "W".into(),
        ms if ms % 60_000 == 0 => (ms / 60_000).to_string(),
        ms => format!("{ms}ms"),
    }
}

/// The REST kline row: `[startTime, open, high, low, close, volume, turnover]`.
pub fn kline_row(bar: &Kline) -> Value {
    json!([
        bar.open_time_ms.to_string(),
        bar.open.normalize().to_string(),
        bar.high.normalize().to_string(),
        bar.low.normalize().to_string(),
        bar.close.normalize().to_string(),
        bar.volume.normalize().to_string(),
        turnover(bar).to_string(),
    ])
}

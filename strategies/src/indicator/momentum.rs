//! Momentum: RSI and MACD.

use super::blocks::{sanitize, SeededAverage};
use super::spec::{check_macd, check_period, IndicatorError};
use super::streaming::MacdValue;

/// Streaming relative strength index (Wilder).
#[derive(Debug, Clone)]
pub struct Rsi {
    prev: Option<f64>,
    gain: SeededAverage,
    loss: SeededAverage,
}

impl Rsi {
    /// Creates an RSI over `period` changes.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period("period", period)?;
        Ok(Self { prev: None, gain: SeededAverage::wilder(period), loss: SeededAverage::wilder(period) })
    }

    /// Feeds one close; answers the RSI in 0..=100 (NaN during warm-up).
    pub fn update(&mut self, close: f64) -> f64 {
        let close = sanitize(close);
        let Some(prev) = self.prev.replace(close) else {
            return f64::NAN; // the first bar has no change yet
        };
        let change = close - prev;
        let (up, down) = if change.is_nan() {
            (f64::NAN, f64::NAN)
        } else if change < 0.0 {
            (0.0, -change)
        } else {
            (change, 0.0)
        };
        let gain = self.gain.update(up);
        let loss = self.loss.update(down);
        let total = gain + loss;
        // TA-Lib answers 0 for a market that never moved.
        if total == 0.0 {
            0.0
        } else {
            100.0 * (gain / total)
        }
    }
}

/// Streaming moving average convergence/divergence (TA-Lib seeding).
#[derive(Debug, Clone)]
pub struct Macd {
    /// Bars still to skip before the fast EMA starts (TA-Lib's quirk: it is
    /// seeded on the `fast` bars ending where the slow EMA is first defined).
    fast_delay: usize,
    fast: SeededAverage,
    slow: SeededAverage,
    signal: SeededAverage,
}

impl Macd {
    /// Creates a MACD; `fast < slow` is required.
    pub fn new(fast: usize, slow: usize, signal: usize) -> Result<Self, IndicatorError> {
        check_macd(fast, slow, signal)?;
        Ok(Self {
            fast_delay: slow - fast,
            fast: SeededAverage::ema(fast),
            slow: SeededAverage::ema(slow),
            signal: SeededAverage::ema(signal),
        })
    }

    /// Feeds one close; answers macd/signal/histogram (NaN during warm-up).
    pub fn update(&mut self, close: f64) -> MacdValue {
        let close = sanitize(close);
        let slow = self.slow.update(close);
        if self.fast_delay > 0 {
            self.fast_delay -= 1;
            return MacdValue::WARMING_UP;
        }
        let fast = self.fast.update(close);
        if !self.slow.is_seeded() {
            // Keep warm-up NaNs out of the signal EMA's seed.
            return MacdValue::WARMING_UP;
        }
        let macd = fast - slow;
        let signal = self.signal.update(macd);
        MacdValue { macd, signal, histogram: macd - signal }
    }
}

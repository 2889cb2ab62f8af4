//! Volatility: average true range, Bollinger bands and standard deviation.

use super::blocks::{sanitize, MomentStats, Rolling, SeededAverage};
use super::spec::{check_band_width, check_period, IndicatorError};
use super::streaming::BollingerValue;

/// Streaming average true range (Wilder).
#[derive(Debug, Clone)]
pub struct Atr {
    prev_close: Option<f64>,
    average: SeededAverage,
}

impl Atr {
    /// Creates an ATR over `period` true ranges.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period("period", period)?;
        Ok(Self { prev_close: None, average: SeededAverage::wilder(period) })
    }

    /// Feeds one bar; answers the ATR (NaN during warm-up).
    pub fn update(&mut self, high: f64, low: f64, close: f64) -> f64 {
        let close = sanitize(close);
        let Some(prev_close) = self.prev_close.replace(close) else {
            return f64::NAN; // TA-Lib has no true range for the first bar
        };
        self.average.update(true_range(sanitize(high), sanitize(low), prev_close))
    }
}

/// max(h−l, |h−c₋₁|, |l−c₋₁|), NaN if any input is missing (`f64::max`
/// would silently skip a NaN).
fn true_range(high: f64, low: f64, prev_close: f64) -> f64 {
    if high.is_nan() || low.is_nan() || prev_close.is_nan() {
        return f64::NAN;
    }
    (high - low).max((high - prev_close).abs()).max((low - prev_close).abs())
}

/// Streaming Bollinger bands.
#[derive(Debug, Clone)]
pub struct Bollinger {
    k: f64,
    rolling: Rolling<MomentStats>,
}

impl Bollinger {
    /// Creates bands `k` population standard deviations around an SMA.
    pub fn new(period: usize, k: f64) -> Result<Self, IndicatorError> {
        check_period("period", period)?;
        check_band_width(k)?;
        Ok(Self { k, rolling: Rolling::new(period) })
    }

    /// Feeds one close; answers the bands (NaN during warm-up).
    pub fn update(&mut self, close: f64) -> BollingerValue {
        let n = self.rolling.period();
        let k = self.k;
        self.rolling.update(close).map_or(BollingerValue::WARMING_UP, |s| {
            let middle = s.mean(n);
            let width = k * s.stdev(n);
            BollingerValue { upper: middle + width, middle, lower: middle - width }
        })
    }
}

/// Streaming population standard deviation.
#[derive(Debug, Clone)]
pub struct Stdev {
    rolling: Rolling<MomentStats>,
}

impl Stdev {
    /// Creates a standard deviation over `period` bars.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period("period", period)?;
        Ok(Self { rolling: Rolling::new(period) })
    }

    /// Feeds one close; answers the standard deviation (NaN during warm-up).
    pub fn update(&mut self, close: f64) -> f64 {
        let n = self.rolling.period();
        self.rolling.update(close).map_or(f64::NAN, |s| s.stdev(n))
    }
}

//! Moving averages: simple, exponential and weighted.

use super::blocks::{sanitize, Rolling, SeededAverage, SumStats, WeightedStats};
use super::spec::{check_period, IndicatorError};

/// Streaming simple moving average.
#[derive(Debug, Clone)]
pub struct Sma {
    rolling: Rolling<SumStats>,
}

impl Sma {
    /// Creates an SMA over `period` bars.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period("period", period)?;
        Ok(Self { rolling: Rolling::new(period) })
    }

    /// Feeds one close; answers the SMA (NaN during warm-up).
    pub fn update(&mut self, close: f64) -> f64 {
        let n = self.rolling.period();
        self.rolling.update(close).map_or(f64::NAN, |s| s.sum / n)
    }
}

/// Streaming exponential moving average.
#[derive(Debug, Clone)]
pub struct Ema {
    average: SeededAverage,
}

impl Ema {
    /// Creates an EMA with `k = 2/(period+1)`, seeded by an SMA.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period("period", period)?;
        Ok(Self { average: SeededAverage::ema(period) })
    }

    /// Feeds one close; answers the EMA (NaN during warm-up).
    pub fn update(&mut self, close: f64) -> f64 {
        self.average.update(sanitize(close))
    }
}

/// Streaming linearly weighted moving average.
#[derive(Debug, Clone)]
pub struct Wma {
    rolling: Rolling<WeightedStats>,
}

impl Wma {
    /// Creates a WMA over `period` bars.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period("period", period)?;
        Ok(Self { rolling: Rolling::new(period) })
    }

    /// Feeds one close; answers the WMA (NaN during warm-up).
    pub fn update(&mut self, close: f64) -> f64 {
        let n = self.rolling.period();
        let total_weight = n * (n + 1.0) / 2.0;
        self.rolling.update(close).map_or(f64::NAN, |s| s.weighted / total_weight)
    }
}

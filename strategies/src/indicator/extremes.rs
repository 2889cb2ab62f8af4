//! Highest and lowest value over a window.

use super::blocks::Extremum;
use super::spec::{check_period, IndicatorError};

/// Streaming highest value over a window.
#[derive(Debug, Clone)]
pub struct Highest {
    extremum: Extremum,
}

impl Highest {
    /// Creates a highest-of-the-last-`period`-values tracker.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period("period", period)?;
        Ok(Self { extremum: Extremum::new(period, true) })
    }

    /// Feeds one value; answers the window's max (NaN during warm-up).
    pub fn update(&mut self, value: f64) -> f64 {
        self.extremum.update(value)
    }
}

/// Streaming lowest value over a window.
#[derive(Debug, Clone)]
pub struct Lowest {
    extremum: Extremum,
}

impl Lowest {
    /// Creates a lowest-of-the-last-`period`-values tracker.
    pub fn new(period: usize) -> Result<Self, IndicatorError> {
        check_period("period", period)?;
        Ok(Self { extremum: Extremum::new(period, false) })
    }

    /// Feeds one value; answers the window's min (NaN during warm-up).
    pub fn update(&mut self, value: f64) -> f64 {
        self.extremum.update(value)
    }
}

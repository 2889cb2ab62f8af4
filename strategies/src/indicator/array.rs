//! The array form: a whole series in, as long a series out, and [`compute`] by name.

use super::spec::{IndicatorError, Kind, Params, Spec};
use super::{Atr, Bollinger, Ema, Highest, Lowest, Macd, Rsi, Sma, Stdev, Wma, BOLLINGER_OUTPUTS, MACD_OUTPUTS};

/// MACD over a whole series; each Vec is as long as the input.
#[derive(Debug, Clone, PartialEq)]
pub struct MacdSeries {
    /// Fast EMA − slow EMA, from index `slow-1`.
    pub macd: Vec<f64>,
    /// EMA of macd, from index `slow+signal-2`.
    pub signal: Vec<f64>,
    /// macd − signal, from index `slow+signal-2`.
    pub histogram: Vec<f64>,
}

/// Bollinger bands over a whole series; each Vec is as long as the input.
#[derive(Debug, Clone, PartialEq)]
pub struct BollingerSeries {
    /// middle + k·stdev.
    pub upper: Vec<f64>,
    /// SMA.
    pub middle: Vec<f64>,
    /// middle − k·stdev.
    pub lower: Vec<f64>,
}

/// Simple moving average; first value at `period-1`.
pub fn sma(data: &[f64], period: usize) -> Result<Vec<f64>, IndicatorError> {
    let mut ind = Sma::new(period)?;
    Ok(data.iter().map(|&x| ind.update(x)).collect())
}

/// Exponential moving average seeded by an SMA; first value at `period-1`.
pub fn ema(data: &[f64], period: usize) -> Result<Vec<f64>, IndicatorError> {
    let mut ind = Ema::new(period)?;
    Ok(data.iter().map(|&x| ind.update(x)).collect())
}

/// Weighted moving average (weights 1..=period); first value at `period-1`.
pub fn wma(data: &[f64], period: usize) -> Result<Vec<f64>, IndicatorError> {
    let mut ind = Wma::new(period)?;
    Ok(data.iter().map(|&x| ind.update(x)).collect())
}

/// Wilder RSI; first value at `period`.
pub fn rsi(data: &[f64], period: usize) -> Result<Vec<f64>, IndicatorError> {
    let mut ind = Rsi::new(period)?;
    Ok(data.iter().map(|&x| ind.update(x)).collect())
}

/// Population standard deviation; first value at `period-1`.
pub fn stdev(data: &[f64], period: usize) -> Result<Vec<f64>, IndicatorError> {
    let mut ind = Stdev::new(period)?;
    Ok(data.iter().map(|&x| ind.update(x)).collect())
}

/// Highest of the last `period` values; first value at `period-1`.
pub fn highest(data: &[f64], period: usize) -> Result<Vec<f64>, IndicatorError> {
    let mut ind = Highest::new(period)?;
    Ok(data.iter().map(|&x| ind.update(x)).collect())
}

/// Lowest of the last `period` values; first value at `period-1`.
pub fn lowest(data: &[f64], period: usize) -> Result<Vec<f64>, IndicatorError> {
    let mut ind = Lowest::new(period)?;
    Ok(data.iter().map(|&x| ind.update(x)).collect())
}

/// MACD (TA-Lib seeding, see module docs).
pub fn macd(data: &[f64], fast: usize, slow: usize, signal: usize) -> Result<MacdSeries, IndicatorError> {
    let mut ind = Macd::new(fast, slow, signal)?;
    let mut out = MacdSeries {
        macd: Vec::with_capacity(data.len()),
        signal: Vec::with_capacity(data.len()),
        histogram: Vec::with_capacity(data.len()),
    };
    for &x in data {
        let v = ind.update(x);
        out.macd.push(v.macd);
        out.signal.push(v.signal);
        out.histogram.push(v.histogram);
    }
    Ok(out)
}

/// Bollinger bands: SMA ± k population standard deviations.
pub fn bollinger(data: &[f64], period: usize, k: f64) -> Result<BollingerSeries, IndicatorError> {
    let mut ind = Bollinger::new(period, k)?;
    let mut out = BollingerSeries {
        upper: Vec::with_capacity(data.len()),
        middle: Vec::with_capacity(data.len()),
        lower: Vec::with_capacity(data.len()),
    };
    for &x in data {
        let v = ind.update(x);
        out.upper.push(v.upper);
        out.middle.push(v.middle);
        out.lower.push(v.lower);
    }
    Ok(out)
}

/// Wilder ATR; first value at `period`. All three series must be as long.
pub fn atr(high: &[f64], low: &[f64], close: &[f64], period: usize) -> Result<Vec<f64>, IndicatorError> {
    check_len("high", high, close)?;
    check_len("low", low, close)?;
    let mut ind = Atr::new(period)?;
    Ok((0..close.len()).map(|i| ind.update(high[i], low[i], close[i])).collect())
}

fn check_len(input: &'static str, series: &[f64], close: &[f64]) -> Result<(), IndicatorError> {
    if series.len() == close.len() {
        Ok(())
    } else {
        Err(IndicatorError::LengthMismatch { input, len: series.len(), expected: close.len() })
    }
}

/// Input series for [`compute`]; high and low are needed by atr only, but
/// are length-checked whenever given.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    /// Highs, if known.
    pub high: Option<&'a [f64]>,
    /// Lows, if known.
    pub low: Option<&'a [f64]>,
    /// Closes (the input of every single-input indicator).
    pub close: &'a [f64],
}

impl<'a> Inputs<'a> {
    /// Closes only.
    pub fn close(close: &'a [f64]) -> Self {
        Self { high: None, low: None, close }
    }

    /// Highs, lows and closes.
    pub fn hlc(high: &'a [f64], low: &'a [f64], close: &'a [f64]) -> Self {
        Self { high: Some(high), low: Some(low), close }
    }
}

/// The result of [`compute`]: a JavaScript host turns `Single` into an array
/// and `Multi` into an object of arrays.
#[derive(Debug, Clone, PartialEq)]
pub enum ArrayOutput {
    /// Single-output indicators.
    Single(Vec<f64>),
    /// Multi-output indicators: `(name, series)` in [`Kind::output_names`] order.
    Multi(Vec<(&'static str, Vec<f64>)>),
}

impl ArrayOutput {
    /// The series of a single-output indicator.
    pub fn as_single(&self) -> Option<&[f64]> {
        match self {
            ArrayOutput::Single(series) => Some(series),
            ArrayOutput::Multi(_) => None,
        }
    }

    /// One named series of a multi-output indicator.
    pub fn get(&self, name: &str) -> Option<&[f64]> {
        match self {
            ArrayOutput::Single(_) => None,
            ArrayOutput::Multi(fields) => fields.iter().find(|(n, _)| *n == name).map(|(_, series)| series.as_slice()),
        }
    }
}

/// Computes an indicator by name over whole series, e.g.
/// `compute("rsi", &Inputs::close(&closes), &Params::new().with("period", 14.0))`.
pub fn compute(name: &str, inputs: &Inputs<'_>, params: &Params) -> Result<ArrayOutput, IndicatorError> {
    compute_spec(&Spec::parse(name, params)?, inputs)
}

/// Computes the indicator a spec describes over whole series.
pub fn compute_spec(spec: &Spec, inputs: &Inputs<'_>) -> Result<ArrayOutput, IndicatorError> {
    let close = inputs.close;
    for (name, series) in [("high", inputs.high), ("low", inputs.low)] {
        if let Some(series) = series {
            check_len(name, series, close)?;
        }
    }
    let single = ArrayOutput::Single;
    Ok(match *spec {
        Spec::Sma { period } => single(sma(close, period)?),
        Spec::Ema { period } => single(ema(close, period)?),
        Spec::Wma { period } => single(wma(close, period)?),
        Spec::Rsi { period } => single(rsi(close, period)?),
        Spec::Stdev { period } => single(stdev(close, period)?),
        Spec::Highest { period } => single(highest(close, period)?),
        Spec::Lowest { period } => single(lowest(close, period)?),
        Spec::Atr { period } => {
            let missing = |input| IndicatorError::MissingInput { indicator: Kind::Atr.name(), input };
            let high = inputs.high.ok_or_else(|| missing("high"))?;
            let low = inputs.low.ok_or_else(|| missing("low"))?;
            single(atr(high, low, close, period)?)
        }
        Spec::Macd { fast, slow, signal } => {
            let s = macd(close, fast, slow, signal)?;
            let [m, sg, h] = MACD_OUTPUTS;
            ArrayOutput::Multi(vec![(m, s.macd), (sg, s.signal), (h, s.histogram)])
        }
        Spec::Bollinger { period, k } => {
            let b = bollinger(close, period, k)?;
            let [u, m, l] = BOLLINGER_OUTPUTS;
            ArrayOutput::Multi(vec![(u, b.upper), (m, b.middle), (l, b.lower)])
        }
    })
}

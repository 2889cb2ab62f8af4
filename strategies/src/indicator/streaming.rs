//! The streaming form by name: the values handed to and from the host, and
//! [`StreamingIndicator`], one enum over every streaming indicator.

use super::spec::{IndicatorError, Kind, Params, Spec};
use super::{Atr, Bollinger, Ema, Highest, Lowest, Macd, Rsi, Sma, Stdev, Wma, BOLLINGER_OUTPUTS, MACD_OUTPUTS};

/// One bar of input for the streaming form. Single-input indicators read
/// `close` only; atr reads all three.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bar {
    /// High of the bar.
    pub high: f64,
    /// Low of the bar.
    pub low: f64,
    /// Close of the bar.
    pub close: f64,
}

impl Bar {
    /// A bar from high, low and close.
    pub fn new(high: f64, low: f64, close: f64) -> Self {
        Self { high, low, close }
    }

    /// A bar known only by its close (high = low = close).
    pub fn from_close(close: f64) -> Self {
        Self::new(close, close, close)
    }
}

impl From<f64> for Bar {
    fn from(close: f64) -> Self {
        Bar::from_close(close)
    }
}

/// The value(s) of a streaming indicator after one bar: a JavaScript host
/// turns `Single` into a number and `Multi` into an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Single-output indicators.
    Single(f64),
    /// Multi-output indicators: `(name, value)` in [`Kind::output_names`] order.
    Multi(Vec<(&'static str, f64)>),
}

impl Output {
    /// The value of a single-output indicator.
    pub fn as_single(&self) -> Option<f64> {
        match self {
            Output::Single(value) => Some(*value),
            Output::Multi(_) => None,
        }
    }

    /// One named value of a multi-output indicator.
    pub fn get(&self, name: &str) -> Option<f64> {
        match self {
            Output::Single(_) => None,
            Output::Multi(fields) => fields.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
        }
    }
}

/// MACD after one bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MacdValue {
    /// Fast EMA − slow EMA.
    pub macd: f64,
    /// EMA of the macd line.
    pub signal: f64,
    /// macd − signal.
    pub histogram: f64,
}

impl MacdValue {
    pub(super) const WARMING_UP: MacdValue = MacdValue { macd: f64::NAN, signal: f64::NAN, histogram: f64::NAN };
}

impl From<MacdValue> for Output {
    fn from(v: MacdValue) -> Self {
        let [m, s, h] = MACD_OUTPUTS;
        Output::Multi(vec![(m, v.macd), (s, v.signal), (h, v.histogram)])
    }
}

/// Bollinger bands after one bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BollingerValue {
    /// middle + k·stdev.
    pub upper: f64,
    /// SMA.
    pub middle: f64,
    /// middle − k·stdev.
    pub lower: f64,
}

impl BollingerValue {
    pub(super) const WARMING_UP: BollingerValue = BollingerValue { upper: f64::NAN, middle: f64::NAN, lower: f64::NAN };
}

impl From<BollingerValue> for Output {
    fn from(v: BollingerValue) -> Self {
        let [u, m, l] = BOLLINGER_OUTPUTS;
        Output::Multi(vec![(u, v.upper), (m, v.middle), (l, v.lower)])
    }
}

/// Any streaming indicator, created by name for the host.
#[derive(Debug, Clone)]
pub enum StreamingIndicator {
    /// See [`Sma`].
    Sma(Sma),
    /// See [`Ema`].
    Ema(Ema),
    /// See [`Wma`].
    Wma(Wma),
    /// See [`Rsi`].
    Rsi(Rsi),
    /// See [`Macd`].
    Macd(Macd),
    /// See [`Atr`].
    Atr(Atr),
    /// See [`Bollinger`].
    Bollinger(Bollinger),
    /// See [`Stdev`].
    Stdev(Stdev),
    /// See [`Highest`].
    Highest(Highest),
    /// See [`Lowest`].
    Lowest(Lowest),
}

/// Creates a streaming indicator by name, e.g.
/// `create("macd", &Params::new().with("fast", 12.0).with("slow", 26.0).with("signal", 9.0))`.
pub fn create(name: &str, params: &Params) -> Result<StreamingIndicator, IndicatorError> {
    StreamingIndicator::from_spec(&Spec::parse(name, params)?)
}

impl StreamingIndicator {
    /// Creates the indicator a spec describes.
    pub fn from_spec(spec: &Spec) -> Result<Self, IndicatorError> {
        Ok(match *spec {
            Spec::Sma { period } => Self::Sma(Sma::new(period)?),
            Spec::Ema { period } => Self::Ema(Ema::new(period)?),
            Spec::Wma { period } => Self::Wma(Wma::new(period)?),
            Spec::Rsi { period } => Self::Rsi(Rsi::new(period)?),
            Spec::Macd { fast, slow, signal } => Self::Macd(Macd::new(fast, slow, signal)?),
            Spec::Atr { period } => Self::Atr(Atr::new(period)?),
            Spec::Bollinger { period, k } => Self::Bollinger(Bollinger::new(period, k)?),
            Spec::Stdev { period } => Self::Stdev(Stdev::new(period)?),
            Spec::Highest { period } => Self::Highest(Highest::new(period)?),
            Spec::Lowest { period } => Self::Lowest(Lowest::new(period)?),
        })
    }

    /// Which indicator this is.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Sma(_) => Kind::Sma,
            Self::Ema(_) => Kind::Ema,
            Self::Wma(_) => Kind::Wma,
            Self::Rsi(_) => Kind::Rsi,
            Self::Macd(_) => Kind::Macd,
            Self::Atr(_) => Kind::Atr,
            Self::Bollinger(_) => Kind::Bollinger,
            Self::Stdev(_) => Kind::Stdev,
            Self::Highest(_) => Kind::Highest,
            Self::Lowest(_) => Kind::Lowest,
        }
    }

    /// Feeds one bar without allocating: a single output goes to `out[0]`, a multi-output
    /// indicator's three to `out` in [`Kind::output_names`] order.
    pub fn update_into(&mut self, bar: Bar, out: &mut [f64; 3]) {
        let close = bar.close;
        out[0] = match self {
            Self::Sma(i) => i.update(close),
            Self::Ema(i) => i.update(close),
            Self::Wma(i) => i.update(close),
            Self::Rsi(i) => i.update(close),
            Self::Atr(i) => i.update(bar.high, bar.low, close),
            Self::Stdev(i) => i.update(close),
            Self::Highest(i) => i.update(close),
            Self::Lowest(i) => i.update(close),
            Self::Macd(i) => {
                let v = i.update(close);
                *out = [v.macd, v.signal, v.histogram];
                return;
            }
            Self::Bollinger(i) => {
                let v = i.update(close);
                *out = [v.upper, v.middle, v.lower];
                return;
            }
        };
    }

    /// Feeds one bar (only atr looks beyond `close`) and answers the value(s):
    /// [`StreamingIndicator::update_into`], named.
    pub fn update(&mut self, bar: Bar) -> Output {
        let mut values = [f64::NAN; 3];
        self.update_into(bar, &mut values);
        match self.kind().output_names() {
            None => Output::Single(values[0]),
            Some(names) => Output::Multi(names.iter().copied().zip(values).collect()),
        }
    }
}

//! Technical indicators with TA-Lib conventions, in two forms.
//!
//! * **Array form** — [`sma`], [`ema`], [`wma`], [`rsi`], [`macd`], [`atr`],
//!   [`bollinger`], [`stdev`], [`highest`], [`lowest`]: a slice in, a `Vec`
//!   of the same length out, `NaN` during warm-up. [`compute`] dispatches by
//!   name for the JavaScript host.
//! * **Streaming form** — one type per indicator ([`Sma`], [`Ema`], …) with an
//!   O(1) amortised `update`, and [`StreamingIndicator`] (built by [`create`])
//!   to create one by name and feed it [`Bar`]s, answering an [`Output`].
//!
//! The array functions are driven by the streaming types, so both forms agree
//! bit for bit by construction; the tests still check both against
//! independent naive references.
//!
//! Floats are fine here: indicators feed decisions, never the ledger.
//!
//! # Conventions (TA-Lib, default compatibility, unstable period 0)
//!
//! | indicator | first defined index | rule |
//! |---|---|---|
//! | `sma(p)` | `p-1` | mean of the last `p` values |
//! | `ema(p)` | `p-1` | seeded by the SMA of the first `p` values, then `e += (x-e)·k`, `k = 2/(p+1)` |
//! | `wma(p)` | `p-1` | weights `1..=p`, newest weighs `p`, divided by `p(p+1)/2` |
//! | `rsi(p)` | `p` | gains/losses of the first `p` changes averaged simply, then Wilder `a = (a·(p-1)+x)/p`; `100·g/(g+l)` |
//! | `atr(p)` | `p` | `TR = max(h-l, abs(h-c₋₁), abs(l-c₋₁))` from index 1; seed = mean of `TR[1..=p]`, then Wilder |
//! | `macd(f,s,g)` | macd `s-1`; signal, histogram `s+g-2` | see below |
//! | `bollinger(p,k)` | `p-1` | middle = SMA, upper/lower = middle ± k·stdev (population) |
//! | `stdev(p)` | `p-1` | population standard deviation (TA-Lib `STDDEV`, `nbdev = 1`) |
//! | `highest(p)` / `lowest(p)` | `p-1` | max / min of the last `p` values, current included |
//!
//! **MACD** follows TA-Lib exactly, including its fast-EMA seeding quirk:
//! both EMAs produce their first value at index `s-1`; the slow EMA is seeded
//! by the SMA of `x[0..s]` but the fast EMA by the SMA of the `f` values
//! *ending* at `s-1` (`x[s-f..s]`), not of `x[0..f]`. So the macd line here is
//! not `ema(f) - ema(s)` (the difference fades quickly). The signal is an EMA
//! of the macd line seeded by the SMA of its first `g` values; histogram =
//! macd − signal.
//!
//! # Deviations from TA-Lib
//!
//! * TA-Lib starts *all three* MACD outputs at `s+g-2`; here the macd line is
//!   already given from `s-1` (values at later indices are identical).
//! * Periods may be 1 (TA-Lib requires ≥ 2 for most): the result is the
//!   obvious degenerate one (e.g. `sma(1)` is the input, `stdev(1)` is 0).
//! * RSI is 0 when there was no movement at all (TA-Lib's choice), but only
//!   when `avg_gain + avg_loss` is exactly 0; TA-Lib uses a 1e-14 epsilon,
//!   which would misfire on assets priced below ~1e-12.
//! * Standard deviation uses a numerically stable sliding update (Welford
//!   style, fully re-summed every `p` bars) instead of TA-Lib's
//!   `E[x²] - E[x]²`, which loses all precision when the price level is large
//!   relative to the spread. A variance that rounding pushes below 0 is 0.
//! * Non-finite inputs (NaN, ±∞) are *missing* values. Window indicators
//!   (sma, wma, stdev, bollinger, highest, lowest) give NaN while a missing
//!   value is inside their window and recover once it has left. Recursive
//!   ones (ema, rsi, atr, macd) depend on all history, so a missing value
//!   makes every later output NaN (as in TA-Lib); create a new indicator to
//!   start over.
//!
//! # Parameters by name
//!
//! [`create`] and [`compute`] take an indicator name (ASCII case-insensitive)
//! and [`Params`]. Every parameter is required; unknown parameter names are
//! rejected so that a typo cannot silently fall back to something else.
//!
//! | name | params |
//! |---|---|
//! | `sma`, `ema`, `wma`, `rsi`, `atr`, `stdev`, `highest`, `lowest` | `period` |
//! | `macd` | `fast`, `slow`, `signal` (`fast < slow`) |
//! | `bollinger` | `period`, and `k` or its alias `stddev` (≥ 0, not both) |
//!
//! Periods are whole numbers in `1..=`[`MAX_PERIOD`].

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

/// Largest accepted period (TA-Lib's own bound); also caps what a script can
/// make us allocate.
pub const MAX_PERIOD: usize = 100_000;

/// Output names of MACD, in the order they appear in an [`Output::Multi`].
pub const MACD_OUTPUTS: [&str; 3] = ["macd", "signal", "histogram"];

/// Output names of Bollinger bands, in the order they appear in an [`Output::Multi`].
pub const BOLLINGER_OUTPUTS: [&str; 3] = ["upper", "middle", "lower"];

// ===========================================================================
// Errors
// ===========================================================================

/// Why an indicator could not be created or computed.
#[derive(Debug, Clone, PartialEq)]
pub enum IndicatorError {
    /// No indicator has this name.
    UnknownIndicator(String),
    /// A parameter this indicator does not take (often a typo).
    UnknownParam {
        /// Indicator name.
        indicator: &'static str,
        /// The offending parameter name.
        param: String,
    },
    /// A required parameter was not given.
    MissingParam {
        /// Indicator name.
        indicator: &'static str,
        /// The missing parameter name.
        param: &'static str,
    },
    /// A parameter is out of range or of the wrong shape.
    InvalidParam {
        /// Parameter name.
        param: &'static str,
        /// The rejected value.
        value: f64,
        /// What is expected instead.
        reason: &'static str,
    },
    /// An input series the indicator needs was not given (atr needs high and low).
    MissingInput {
        /// Indicator name.
        indicator: &'static str,
        /// The missing series.
        input: &'static str,
    },
    /// An input series is not as long as `close`.
    LengthMismatch {
        /// The series whose length is wrong.
        input: &'static str,
        /// Its length.
        len: usize,
        /// The length of `close`.
        expected: usize,
    },
}

impl fmt::Display for IndicatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownIndicator(name) => {
                write!(f, "unknown indicator {name:?} (known: {})", Kind::ALL.map(Kind::name).join(", "))
            }
            Self::UnknownParam { indicator, param } => {
                write!(f, "{indicator}: unknown parameter {param:?}")
            }
            Self::MissingParam { indicator, param } => {
                write!(f, "{indicator}: missing parameter {param:?}")
            }
            Self::InvalidParam { param, value, reason } => {
                write!(f, "invalid {param} = {value}: {reason}")
            }
            Self::MissingInput { indicator, input } => {
                write!(f, "{indicator}: needs the {input} series")
            }
            Self::LengthMismatch { input, len, expected } => {
                write!(f, "{input} has {len} values but close has {expected}")
            }
        }
    }
}

impl std::error::Error for IndicatorError {}

// ===========================================================================
// Names, parameters and validated specs
// ===========================================================================

/// The indicators this module knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Simple moving average.
    Sma,
    /// Exponential moving average.
    Ema,
    /// Linearly weighted moving average.
    Wma,
    /// Relative strength index (Wilder).
    Rsi,
    /// Moving average convergence/divergence.
    Macd,
    /// Average true range (Wilder).
    Atr,
    /// Bollinger bands.
    Bollinger,
    /// Population standard deviation.
    Stdev,
    /// Highest value over a window.
    Highest,
    /// Lowest value over a window.
    Lowest,
}

impl Kind {
    /// Every indicator, in a stable order.
    pub const ALL: [Kind; 10] = [
        Kind::Sma,
        Kind::Ema,
        Kind::Wma,
        Kind::Rsi,
        Kind::Macd,
        Kind::Atr,
        Kind::Bollinger,
        Kind::Stdev,
        Kind::Highest,
        Kind::Lowest,
    ];

    /// The canonical (lower-case) name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Sma => "sma",
            Kind::Ema => "ema",
            Kind::Wma => "wma",
            Kind::Rsi => "rsi",
            Kind::Macd => "macd",
            Kind::Atr => "atr",
            Kind::Bollinger => "bollinger",
            Kind::Stdev => "stdev",
            Kind::Highest => "highest",
            Kind::Lowest => "lowest",
        }
    }

    /// Looks an indicator up by name, ignoring ASCII case and surrounding spaces.
    pub fn from_name(name: &str) -> Result<Kind, IndicatorError> {
        let wanted = name.trim();
        Kind::ALL
            .into_iter()
            .find(|kind| kind.name().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| IndicatorError::UnknownIndicator(name.to_owned()))
    }

    /// The parameter names this indicator accepts (aliases included).
    pub fn param_names(self) -> &'static [&'static str] {
        match self {
            Kind::Macd => &["fast", "slow", "signal"],
            Kind::Bollinger => &["period", "k", "stddev"],
            _ => &["period"],
        }
    }

    /// Whether the indicator reads high and low as well as close.
    pub fn needs_high_low(self) -> bool {
        self == Kind::Atr
    }

    /// Output names for multi-output indicators, `None` for single-output ones.
    pub fn output_names(self) -> Option<&'static [&'static str; 3]> {
        match self {
            Kind::Macd => Some(&MACD_OUTPUTS),
            Kind::Bollinger => Some(&BOLLINGER_OUTPUTS),
            _ => None,
        }
    }
}

/// Named numeric parameters, as a JavaScript object would provide them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    values: BTreeMap<String, f64>,
}

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builder-style [`Params::set`].
    pub fn with(mut self, name: &str, value: f64) -> Self {
        self.set(name, value);
        self
    }

    /// Sets (or replaces) one parameter.
    pub fn set(&mut self, name: &str, value: f64) {
        self.values.insert(name.to_owned(), value);
    }

    /// The value of one parameter, if given.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.values.get(name).copied()
    }

    /// All parameters, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.values.iter().map(|(name, value)| (name.as_str(), *value))
    }
}

impl<K: Into<String>> FromIterator<(K, f64)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, f64)>>(iter: I) -> Self {
        let values = iter.into_iter().map(|(k, v)| (k.into(), v)).collect();
        Self { values }
    }
}

/// A fully specified, validated indicator: what [`create`] and [`compute`]
/// build from a name and [`Params`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Spec {
    /// See [`sma`].
    Sma {
        /// Window length.
        period: usize,
    },
    /// See [`ema`].
    Ema {
        /// Smoothing period.
        period: usize,
    },
    /// See [`wma`].
    Wma {
        /// Window length.
        period: usize,
    },
    /// See [`rsi`].
    Rsi {
        /// Smoothing period.
        period: usize,
    },
    /// See [`macd`].
    Macd {
        /// Fast EMA period.
        fast: usize,
        /// Slow EMA period (greater than `fast`).
        slow: usize,
        /// Signal EMA period.
        signal: usize,
    },
    /// See [`atr`].
    Atr {
        /// Smoothing period.
        period: usize,
    },
    /// See [`bollinger`].
    Bollinger {
        /// Window length.
        period: usize,
        /// Band width in standard deviations.
        k: f64,
    },
    /// See [`stdev`].
    Stdev {
        /// Window length.
        period: usize,
    },
    /// See [`highest`].
    Highest {
        /// Window length.
        period: usize,
    },
    /// See [`lowest`].
    Lowest {
        /// Window length.
        period: usize,
    },
}

impl Spec {
    /// Builds and validates a spec from an indicator name and parameters.
    pub fn parse(name: &str, params: &Params) -> Result<Spec, IndicatorError> {
        let kind = Kind::from_name(name)?;
        reject_unknown_params(kind, params)?;
        let period = || period_param(kind, params, "period");
        let spec = match kind {
            Kind::Sma => Spec::Sma { period: period()? },
            Kind::Ema => Spec::Ema { period: period()? },
            Kind::Wma => Spec::Wma { period: period()? },
            Kind::Rsi => Spec::Rsi { period: period()? },
            Kind::Atr => Spec::Atr { period: period()? },
            Kind::Stdev => Spec::Stdev { period: period()? },
            Kind::Highest => Spec::Highest { period: period()? },
            Kind::Lowest => Spec::Lowest { period: period()? },
            Kind::Macd => Spec::Macd {
                fast: period_param(kind, params, "fast")?,
                slow: period_param(kind, params, "slow")?,
                signal: period_param(kind, params, "signal")?,
            },
            Kind::Bollinger => Spec::Bollinger { period: period()?, k: band_width_param(params)? },
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the ranges (useful for specs built by hand).
    pub fn validate(&self) -> Result<(), IndicatorError> {
        match *self {
            Spec::Macd { fast, slow, signal } => check_macd(fast, slow, signal),
            Spec::Bollinger { period, k } => {
                check_period("period", period)?;
                check_band_width(k).map(drop)
            }
            Spec::Sma { period }
            | Spec::Ema { period }
            | Spec::Wma { period }
            | Spec::Rsi { period }
            | Spec::Atr { period }
            | Spec::Stdev { period }
            | Spec::Highest { period }
            | Spec::Lowest { period } => check_period("period", period).map(drop),
        }
    }

    /// Which indicator this is.
    pub fn kind(&self) -> Kind {
        match self {
            Spec::Sma { .. } => Kind::Sma,
            Spec::Ema { .. } => Kind::Ema,
            Spec::Wma { .. } => Kind::Wma,
            Spec::Rsi { .. } => Kind::Rsi,
            Spec::Macd { .. } => Kind::Macd,
            Spec::Atr { .. } => Kind::Atr,
            Spec::Bollinger { .. } => Kind::Bollinger,
            Spec::Stdev { .. } => Kind::Stdev,
            Spec::Highest { .. } => Kind::Highest,
            Spec::Lowest { .. } => Kind::Lowest,
        }
    }

    /// Number of leading bars after which every output is defined (TA-Lib's
    /// "lookback"): the index of the first bar with no NaN output.
    pub fn warmup(&self) -> usize {
        match *self {
            Spec::Rsi { period } | Spec::Atr { period } => period,
            Spec::Macd { slow, signal, .. } => slow.saturating_add(signal).saturating_sub(2),
            Spec::Sma { period }
            | Spec::Ema { period }
            | Spec::Wma { period }
            | Spec::Bollinger { period, .. }
            | Spec::Stdev { period }
            | Spec::Highest { period }
            | Spec::Lowest { period } => period.saturating_sub(1),
        }
    }
}

fn reject_unknown_params(kind: Kind, params: &Params) -> Result<(), IndicatorError> {
    match params.iter().find(|(name, _)| !kind.param_names().contains(name)) {
        Some((name, _)) => Err(IndicatorError::UnknownParam { indicator: kind.name(), param: name.to_owned() }),
        None => Ok(()),
    }
}

/// Reads a period given as a JavaScript number: it must be a whole number.
fn period_param(kind: Kind, params: &Params, name: &'static str) -> Result<usize, IndicatorError> {
    let value = params.get(name).ok_or(IndicatorError::MissingParam { indicator: kind.name(), param: name })?;
    let in_range = value.is_finite() && value >= 1.0 && value <= MAX_PERIOD as f64;
    if !in_range || value.fract() != 0.0 {
        return Err(IndicatorError::InvalidParam {
            param: name,
            value,
            reason: "must be a whole number from 1 to 100000",
        });
    }
    // In range and whole, so the conversion is exact.
    Ok(value as usize)
}

/// Reads Bollinger's width, given as `k` or `stddev` but not both.
fn band_width_param(params: &Params) -> Result<f64, IndicatorError> {
    match (params.get("k"), params.get("stddev")) {
        (Some(k), None) | (None, Some(k)) => Ok(k),
        (Some(k), Some(_)) => Err(IndicatorError::InvalidParam {
            param: "k",
            value: k,
            reason: "give either k or its alias stddev, not both",
        }),
        (None, None) => Err(IndicatorError::MissingParam { indicator: Kind::Bollinger.name(), param: "k" }),
    }
}

fn check_period(param: &'static str, period: usize) -> Result<usize, IndicatorError> {
    if (1..=MAX_PERIOD).contains(&period) {
        Ok(period)
    } else {
        Err(IndicatorError::InvalidParam { param, value: period as f64, reason: "must be from 1 to 100000" })
    }
}

fn check_band_width(k: f64) -> Result<f64, IndicatorError> {
    if k.is_finite() && k >= 0.0 {
        Ok(k)
    } else {
        Err(IndicatorError::InvalidParam { param: "k", value: k, reason: "must be a finite number >= 0" })
    }
}

fn check_macd(fast: usize, slow: usize, signal: usize) -> Result<(), IndicatorError> {
    check_period("fast", fast)?;
    check_period("slow", slow)?;
    check_period("signal", signal)?;
    if fast >= slow {
        return Err(IndicatorError::InvalidParam {
            param: "fast",
            value: fast as f64,
            reason: "must be less than slow",
        });
    }
    Ok(())
}

// ===========================================================================
// Values handed to and from the host
// ===========================================================================

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
    const WARMING_UP: MacdValue = MacdValue { macd: f64::NAN, signal: f64::NAN, histogram: f64::NAN };
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
    const WARMING_UP: BollingerValue = BollingerValue { upper: f64::NAN, middle: f64::NAN, lower: f64::NAN };
}

impl From<BollingerValue> for Output {
    fn from(v: BollingerValue) -> Self {
        let [u, m, l] = BOLLINGER_OUTPUTS;
        Output::Multi(vec![(u, v.upper), (m, v.middle), (l, v.lower)])
    }
}

// ===========================================================================
// Streaming building blocks (private)
// ===========================================================================

/// Non-finite inputs are treated as missing, i.e. NaN (see module docs).
fn sanitize(x: f64) -> f64 {
    if x.is_finite() {
        x
    } else {
        f64::NAN
    }
}

/// How a [`SeededAverage`] folds in a value once seeded.
#[derive(Debug, Clone, Copy)]
enum Smoothing {
    /// `e + (x - e)·k`, TA-Lib's EMA form.
    Exponential(f64),
    /// `(a·(n-1) + x)/n`, TA-Lib's Wilder form (rsi, atr).
    Wilder,
}

/// A recursive average seeded by the simple mean of its first `period`
/// inputs: the common core of ema, rsi, atr and macd.
#[derive(Debug, Clone)]
struct SeededAverage {
    period: usize,
    smoothing: Smoothing,
    seen: usize,
    seed_sum: f64,
    value: f64,
}

impl SeededAverage {
    fn new(period: usize, smoothing: Smoothing) -> Self {
        Self { period, smoothing, seen: 0, seed_sum: 0.0, value: f64::NAN }
    }

    fn ema(period: usize) -> Self {
        Self::new(period, Smoothing::Exponential(2.0 / (period as f64 + 1.0)))
    }

    fn wilder(period: usize) -> Self {
        Self::new(period, Smoothing::Wilder)
    }

    fn is_seeded(&self) -> bool {
        self.seen >= self.period
    }

    /// Folds in `x` and answers the average, NaN until seeded.
    fn update(&mut self, x: f64) -> f64 {
        if !self.is_seeded() {
            self.seed_sum += x;
            self.seen += 1;
            if self.is_seeded() {
                self.value = self.seed_sum / self.period as f64;
            }
            return self.value;
        }
        let n = self.period as f64;
        self.value = match self.smoothing {
            Smoothing::Exponential(k) => (x - self.value) * k + self.value,
            Smoothing::Wilder => (self.value * (n - 1.0) + x) / n,
        };
        self.value
    }
}

/// The last `cap` inputs, counting how many of them are missing (NaN).
#[derive(Debug, Clone)]
struct Window {
    values: VecDeque<f64>,
    cap: usize,
    missing: usize,
}

impl Window {
    fn new(cap: usize) -> Self {
        Self { values: VecDeque::new(), cap, missing: 0 }
    }

    /// Appends `x` and answers the value that fell out, if any.
    fn push(&mut self, x: f64) -> Option<f64> {
        let evicted = if self.values.len() == self.cap { self.values.pop_front() } else { None };
        if evicted.is_some_and(f64::is_nan) {
            self.missing -= 1;
        }
        if x.is_nan() {
            self.missing += 1;
        }
        self.values.push_back(x);
        evicted
    }

    /// Full and free of missing values.
    fn is_complete(&self) -> bool {
        self.values.len() == self.cap && self.missing == 0
    }
}

/// Statistics kept incrementally over a complete window.
trait WindowStats: Default {
    /// Recomputes from scratch (exact, O(n)).
    fn recompute(&mut self, values: &VecDeque<f64>);
    /// Replaces `evicted` by `added` in O(1).
    fn slide(&mut self, evicted: f64, added: f64, n: f64);
}

/// A window plus statistics that are slid in O(1) and, to stop rounding
/// drift, recomputed from scratch every `cap` slides (O(1) amortised). They
/// are also recomputed when the window becomes complete again after missing
/// values, which keeps NaN out of the running sums.
#[derive(Debug, Clone)]
struct Rolling<S> {
    window: Window,
    stats: S,
    /// Slides since the last recompute; `None` while the stats are invalid.
    slides: Option<usize>,
}

impl<S: WindowStats> Rolling<S> {
    fn new(period: usize) -> Self {
        Self { window: Window::new(period), stats: S::default(), slides: None }
    }

    /// Pushes `x`; answers the stats when the window is complete.
    fn update(&mut self, x: f64) -> Option<&S> {
        let x = sanitize(x);
        let evicted = self.window.push(x);
        if !self.window.is_complete() {
            self.slides = None;
            return None;
        }
        match (self.slides, evicted) {
            (Some(slides), Some(old)) if slides < self.window.cap => {
                self.stats.slide(old, x, self.window.cap as f64);
                self.slides = Some(slides + 1);
            }
            _ => {
                self.stats.recompute(&self.window.values);
                self.slides = Some(0);
            }
        }
        Some(&self.stats)
    }

    fn period(&self) -> f64 {
        self.window.cap as f64
    }
}

/// Plain sum (sma).
#[derive(Debug, Clone, Default)]
struct SumStats {
    sum: f64,
}

impl WindowStats for SumStats {
    fn recompute(&mut self, values: &VecDeque<f64>) {
        self.sum = values.iter().sum();
    }

    fn slide(&mut self, evicted: f64, added: f64, _n: f64) {
        self.sum += added - evicted;
    }
}

/// Plain and linearly weighted sums (wma).
#[derive(Debug, Clone, Default)]
struct WeightedStats {
    sum: f64,
    weighted: f64,
}

impl WindowStats for WeightedStats {
    fn recompute(&mut self, values: &VecDeque<f64>) {
        self.sum = values.iter().sum();
        self.weighted = (1..).zip(values).map(|(w, x)| f64::from(w) * x).sum();
    }

    /// Every remaining value loses one unit of weight (−sum, which also
    /// drops the evicted value's weight 1) and the new one weighs n.
    fn slide(&mut self, evicted: f64, added: f64, n: f64) {
        self.weighted += n * added - self.sum;
        self.sum += added - evicted;
    }
}

/// Sum and sum of squared deviations from the mean (stdev, bollinger).
#[derive(Debug, Clone, Default)]
struct MomentStats {
    /// Kept exactly like [`SumStats`], so bollinger's middle equals sma.
    sum: f64,
    /// Σ(x − mean)², never the cancellation-prone Σx² − n·mean².
    m2: f64,
}

impl MomentStats {
    fn mean(&self, n: f64) -> f64 {
        self.sum / n
    }

    fn stdev(&self, n: f64) -> f64 {
        (self.m2 / n).sqrt()
    }
}

impl WindowStats for MomentStats {
    fn recompute(&mut self, values: &VecDeque<f64>) {
        self.sum = values.iter().sum();
        let mean = self.sum / values.len() as f64;
        self.m2 = values.iter().map(|x| (x - mean) * (x - mean)).sum();
    }

    /// Welford's update for replacing one value in a fixed-size window.
    fn slide(&mut self, evicted: f64, added: f64, n: f64) {
        let old_mean = self.sum / n;
        self.sum += added - evicted;
        let new_mean = self.sum / n;
        self.m2 += (added - evicted) * ((added - new_mean) + (evicted - old_mean));
        // Rounding can dip just below zero on a flat window.
        self.m2 = self.m2.max(0.0);
    }
}

/// Max or min of the last `period` values via a monotonic deque: O(1)
/// amortised, each value enters and leaves once.
#[derive(Debug, Clone)]
struct Extremum {
    period: u64,
    want_max: bool,
    bar: u64,
    /// (bar, value), values strictly decreasing (max) or increasing (min).
    candidates: VecDeque<(u64, f64)>,
    last_missing: Option<u64>,
}

impl Extremum {
    fn new(period: usize, want_max: bool) -> Self {
        Self { period: period as u64, want_max, bar: 0, candidates: VecDeque::new(), last_missing: None }
    }

    /// Whether `new` makes `old` irrelevant for every later window.
    fn supersedes(&self, new: f64, old: f64) -> bool {
        if self.want_max {
            new >= old
        } else {
            new <= old
        }
    }

    fn update(&mut self, x: f64) -> f64 {
        let x = sanitize(x);
        let bar = self.bar;
        self.bar += 1;
        if x.is_nan() {
            self.last_missing = Some(bar);
        } else {
            while self.candidates.back().is_some_and(|&(_, v)| self.supersedes(x, v)) {
                self.candidates.pop_back();
            }
            self.candidates.push_back((bar, x));
        }
        while self.candidates.front().is_some_and(|&(b, _)| b + self.period <= bar) {
            self.candidates.pop_front();
        }
        let warming_up = bar + 1 < self.period;
        let has_missing = self.last_missing.is_some_and(|m| m + self.period > bar);
        match self.candidates.front() {
            Some(&(_, v)) if !warming_up && !has_missing => v,
            _ => f64::NAN,
        }
    }
}

// ===========================================================================
// Streaming indicators
// ===========================================================================

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

// ===========================================================================
// Streaming dispatch by name
// ===========================================================================

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

// ===========================================================================
// Array form
// ===========================================================================

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

// ===========================================================================
// Array dispatch by name
// ===========================================================================

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

// ===========================================================================
// Tests
// ===========================================================================

#[cfg(test)]
mod tests {
    use super::*;

    // ---------------------------------------------------------------------
    // Test data: a tiny deterministic LCG (Knuth's MMIX constants).
    // ---------------------------------------------------------------------

    struct Lcg(u64);

    impl Lcg {
        /// Uniform in [0, 1) from the top 31 bits.
        fn unit(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (self.0 >> 33) as f64 / 2_147_483_648.0
        }

        /// Uniform in lo..=hi.
        fn range(&mut self, lo: usize, hi: usize) -> usize {
            lo + (self.unit() * (hi - lo + 1) as f64) as usize
        }
    }

    struct Hlc {
        high: Vec<f64>,
        low: Vec<f64>,
        close: Vec<f64>,
    }

    /// A ±2 % random walk from 100 with highs/lows up to 1 % away.
    fn hlc_series(seed: u64, n: usize) -> Hlc {
        let mut rng = Lcg(seed);
        let mut price = 100.0;
        let mut s = Hlc { high: Vec::with_capacity(n), low: Vec::with_capacity(n), close: Vec::with_capacity(n) };
        for _ in 0..n {
            price *= 1.0 + (rng.unit() - 0.5) * 0.04;
            s.high.push(price + rng.unit() * price * 0.01);
            s.low.push(price - rng.unit() * price * 0.01);
            s.close.push(price);
        }
        s
    }

    fn closes(seed: u64, n: usize) -> Vec<f64> {
        hlc_series(seed, n).close
    }

    // ---------------------------------------------------------------------
    // Assertions
    // ---------------------------------------------------------------------

    /// Equal to 1e-9 relative (absolute below 1), NaN only where expected.
    fn assert_close(actual: &[f64], expected: &[f64], what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}: length");
        for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
            let ok = if e.is_nan() { a.is_nan() } else { (a - e).abs() <= 1e-9 * e.abs().max(1.0) };
            assert!(ok, "{what}: index {i}: got {a}, expected {e}");
        }
    }

    fn leading_nans(series: &[f64]) -> usize {
        series.iter().take_while(|x| x.is_nan()).count()
    }

    /// NaN exactly on the first `warmup` bars and nowhere after.
    fn assert_warmup(series: &[f64], warmup: usize, what: &str) {
        assert_eq!(leading_nans(series), warmup.min(series.len()), "{what}");
        assert!(series[warmup.min(series.len())..].iter().all(|x| x.is_finite()), "{what}: NaN after warm-up");
    }

    const N: f64 = f64::NAN;

    // ---------------------------------------------------------------------
    // Naive references, written independently of the implementation: every
    // window is recomputed from scratch, and the recursive averages are
    // evaluated in closed form (explicit weights) instead of recursively.
    // ---------------------------------------------------------------------

    fn ref_window(xs: &[f64], p: usize, f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
        (0..xs.len()).map(|i| if i + 1 < p { N } else { f(&xs[i + 1 - p..=i]) }).collect()
    }

    fn mean(w: &[f64]) -> f64 {
        w.iter().sum::<f64>() / w.len() as f64
    }

    fn ref_sma(xs: &[f64], p: usize) -> Vec<f64> {
        ref_window(xs, p, mean)
    }

    fn ref_wma(xs: &[f64], p: usize) -> Vec<f64> {
        let denom = (p * (p + 1) / 2) as f64;
        ref_window(xs, p, |w| w.iter().enumerate().map(|(j, x)| (j + 1) as f64 * x).sum::<f64>() / denom)
    }

    fn ref_stdev(xs: &[f64], p: usize) -> Vec<f64> {
        ref_window(xs, p, |w| {
            let m = mean(w);
            (w.iter().map(|x| (x - m).powi(2)).sum::<f64>() / w.len() as f64).sqrt()
        })
    }

    fn ref_extreme(xs: &[f64], p: usize, max: bool) -> Vec<f64> {
        ref_window(xs, p, |w| {
            if w.iter().any(|x| x.is_nan()) {
                return N;
            }
            let pick = |a: f64, b: f64| if max { a.max(b) } else { a.min(b) };
            w.iter().copied().fold(w[0], pick)
        })
    }

    /// A seeded average in closed form: seed = mean of the `seed_len` values
    /// ending at `seed_end`; then
    /// out[t] = (1-a)^(t-seed_end)·seed + Σ_{j=seed_end+1..=t} a(1-a)^(t-j)·xs[j].
    fn ref_smooth(xs: &[f64], seed_end: usize, seed_len: usize, a: f64) -> Vec<f64> {
        let mut out = vec![N; xs.len()];
        if seed_end >= xs.len() {
            return out;
        }
        let seed = mean(&xs[seed_end + 1 - seed_len..=seed_end]);
        for (t, o) in out.iter_mut().enumerate().skip(seed_end) {
            let tail: f64 = (seed_end + 1..=t).map(|j| a * (1.0 - a).powi((t - j) as i32) * xs[j]).sum();
            *o = (1.0 - a).powi((t - seed_end) as i32) * seed + tail;
        }
        out
    }

    fn ref_ema(xs: &[f64], p: usize) -> Vec<f64> {
        ref_smooth(xs, p - 1, p, 2.0 / (p as f64 + 1.0))
    }

    fn ref_rsi(xs: &[f64], p: usize) -> Vec<f64> {
        // gains[j]/losses[j] is the change into bar j; index 0 is never read.
        let change = |j: usize| if j == 0 { N } else { xs[j] - xs[j - 1] };
        let gains: Vec<f64> = (0..xs.len()).map(|j| change(j).max(0.0)).collect();
        let losses: Vec<f64> = (0..xs.len()).map(|j| (-change(j)).max(0.0)).collect();
        let g = ref_smooth(&gains, p, p, 1.0 / p as f64);
        let l = ref_smooth(&losses, p, p, 1.0 / p as f64);
        g.iter().zip(&l).map(|(&g, &l)| if g + l == 0.0 { 0.0 } else { 100.0 * g / (g + l) }).collect()
    }

    fn ref_atr(s: &Hlc, p: usize) -> Vec<f64> {
        let tr: Vec<f64> = (0..s.close.len())
            .map(|j| {
                if j == 0 {
                    return N;
                }
                let pc = s.close[j - 1];
                let candidates = [s.high[j] - s.low[j], (s.high[j] - pc).abs(), (s.low[j] - pc).abs()];
                candidates.into_iter().fold(f64::MIN, f64::max)
            })
            .collect();
        ref_smooth(&tr, p, p, 1.0 / p as f64)
    }

    /// TA-Lib MACD: the fast EMA is seeded on x[slow-fast..slow].
    fn ref_macd(xs: &[f64], fast: usize, slow: usize, signal: usize) -> [Vec<f64>; 3] {
        let k = |p: usize| 2.0 / (p as f64 + 1.0);
        let f = ref_smooth(xs, slow - 1, fast, k(fast));
        let s = ref_smooth(xs, slow - 1, slow, k(slow));
        let m: Vec<f64> = f.iter().zip(&s).map(|(f, s)| f - s).collect();
        let sig = ref_smooth(&m, slow + signal - 2, signal, k(signal));
        let hist = m.iter().zip(&sig).map(|(m, s)| m - s).collect();
        [m, sig, hist]
    }

    fn ref_bollinger(xs: &[f64], p: usize, k: f64) -> [Vec<f64>; 3] {
        let mid = ref_sma(xs, p);
        let sd = ref_stdev(xs, p);
        let band = |sign: f64| mid.iter().zip(&sd).map(|(m, d)| m + sign * k * d).collect();
        [band(1.0), mid.clone(), band(-1.0)]
    }

    /// Checks every array form against its reference for one parameter set.
    fn check_all_against_refs(s: &Hlc, p: usize, fast: usize, slow: usize, signal: usize) {
        let xs = &s.close;
        let tag = |name: &str| format!("{name} p={p} n={}", xs.len());
        assert_close(&sma(xs, p).unwrap(), &ref_sma(xs, p), &tag("sma"));
        assert_close(&ema(xs, p).unwrap(), &ref_ema(xs, p), &tag("ema"));
        assert_close(&wma(xs, p).unwrap(), &ref_wma(xs, p), &tag("wma"));
        assert_close(&rsi(xs, p).unwrap(), &ref_rsi(xs, p), &tag("rsi"));
        assert_close(&atr(&s.high, &s.low, xs, p).unwrap(), &ref_atr(s, p), &tag("atr"));
        assert_close(&stdev(xs, p).unwrap(), &ref_stdev(xs, p), &tag("stdev"));
        assert_close(&highest(xs, p).unwrap(), &ref_extreme(xs, p, true), &tag("highest"));
        assert_close(&lowest(xs, p).unwrap(), &ref_extreme(xs, p, false), &tag("lowest"));
        let b = bollinger(xs, p, 2.5).unwrap();
        let [u, m, l] = ref_bollinger(xs, p, 2.5);
        assert_close(&b.upper, &u, &tag("bollinger upper"));
        assert_close(&b.middle, &m, &tag("bollinger middle"));
        assert_close(&b.lower, &l, &tag("bollinger lower"));
        let got = macd(xs, fast, slow, signal).unwrap();
        let [m, sg, h] = ref_macd(xs, fast, slow, signal);
        let mtag = format!("macd {fast}/{slow}/{signal} n={}", xs.len());
        assert_close(&got.macd, &m, &mtag);
        assert_close(&got.signal, &sg, &mtag);
        assert_close(&got.histogram, &h, &mtag);
    }

    fn period(p: usize) -> Params {
        Params::new().with("period", p as f64)
    }

    fn macd_params(fast: usize, slow: usize, signal: usize) -> Params {
        Params::new().with("fast", fast as f64).with("slow", slow as f64).with("signal", signal as f64)
    }

    fn params_for(kind: Kind, p: usize) -> Params {
        match kind {
            Kind::Macd => macd_params(p, p * 2 + 1, p),
            Kind::Bollinger => period(p).with("k", 2.0),
            _ => period(p),
        }
    }

    // ---------------------------------------------------------------------
    // Hand-computed cases (each also cross-checked against TA-Lib 0.8).
    // ---------------------------------------------------------------------

    #[test]
    fn sma_by_hand() {
        // (1+2+3)/3, (2+3+4)/3, (3+4+5)/3
        assert_close(&sma(&[1.0, 2.0, 3.0, 4.0, 5.0], 3).unwrap(), &[N, N, 2.0, 3.0, 4.0], "sma");
    }

    #[test]
    fn ema_by_hand() {
        // k = 2/4 = 0.5; seed (2+4+6)/3 = 4; 4+(8-4)/2 = 6; 6+(12-6)/2 = 9.
        assert_close(&ema(&[2.0, 4.0, 6.0, 8.0, 12.0], 3).unwrap(), &[N, N, 4.0, 6.0, 9.0], "ema");
    }

    #[test]
    fn wma_by_hand() {
        // (1·1+2·2+3·3)/6 = 14/6, (1·2+2·3+3·4)/6 = 20/6.
        let want = [N, N, 14.0 / 6.0, 20.0 / 6.0];
        assert_close(&wma(&[1.0, 2.0, 3.0, 4.0], 3).unwrap(), &want, "wma");
    }

    #[test]
    fn rsi_by_hand() {
        // Changes +1, -1, +2, 0. Seed: g = 0.5, l = 0.5 -> 50.
        // Then g = (0.5+2)/2 = 1.25, l = 0.25 -> 100·1.25/1.5 = 83.33…
        // then g = 0.625, l = 0.125 -> 83.33…
        let want = [N, N, 50.0, 250.0 / 3.0, 250.0 / 3.0];
        assert_close(&rsi(&[1.0, 2.0, 1.0, 3.0, 3.0], 2).unwrap(), &want, "rsi");
        // No movement at all: TA-Lib answers 0; only rises: 100.
        assert_close(&rsi(&[5.0; 4], 2).unwrap(), &[N, N, 0.0, 0.0], "flat rsi");
        assert_close(&rsi(&[1.0, 2.0, 3.0, 4.0], 2).unwrap(), &[N, N, 100.0, 100.0], "rising rsi");
    }

    #[test]
    fn atr_by_hand() {
        // TR1 = max(11-9, |11-9|, |9-9|) = 2; TR2 = max(3, |12-10|, |9-10|) = 3;
        // TR3 = max(1, |11-11|, |10-11|) = 1. ATR2 = (2+3)/2 = 2.5; ATR3 = (2.5+1)/2.
        let got = atr(&[10.0, 11.0, 12.0, 11.0], &[8.0, 9.0, 9.0, 10.0], &[9.0, 10.0, 11.0, 10.0], 2);
        assert_close(&got.unwrap(), &[N, N, 2.5, 1.75], "atr");
    }

    #[test]
    fn macd_by_hand() {
        // fast 2 (k=2/3), slow 3 (k=1/2), signal 2, worked in exact fractions:
        // slow: 7/3, 31/6, 127/12, 511/24 (from index 2)
        // fast, seeded on x[1..=2] (TA-Lib): 3, 19/3, 115/9, 691/27
        // macd: 2/3, 7/6, 79/36, 929/216; signal (seed mean of first two): 11/12,
        // 191/108, 280/81; histogram: 1/4, 23/54, 547/648.
        let got = macd(&[1.0, 2.0, 4.0, 8.0, 16.0, 32.0], 2, 3, 2).unwrap();
        let m = [N, N, 2.0 / 3.0, 7.0 / 6.0, 79.0 / 36.0, 929.0 / 216.0];
        assert_close(&got.macd, &m, "macd");
        assert_close(&got.signal, &[N, N, N, 11.0 / 12.0, 191.0 / 108.0, 280.0 / 81.0], "signal");
        assert_close(&got.histogram, &[N, N, N, 0.25, 23.0 / 54.0, 547.0 / 648.0], "histogram");
    }

    #[test]
    fn stdev_and_bollinger_by_hand() {
        // Textbook: mean 5, squared deviations sum to 32, 32/8 = 4, sqrt = 2.
        let xs = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let mut want = [N; 8];
        want[7] = 2.0;
        assert_close(&stdev(&xs, 8).unwrap(), &want, "stdev");
        let b = bollinger(&xs, 8, 2.0).unwrap();
        assert_eq!((b.upper[7], b.middle[7], b.lower[7]), (9.0, 5.0, 1.0));
    }

    #[test]
    fn highest_lowest_by_hand() {
        let xs = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0];
        let hi = [N, N, 4.0, 4.0, 5.0, 9.0, 9.0, 9.0];
        let lo = [N, N, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0];
        assert_close(&highest(&xs, 3).unwrap(), &hi, "highest");
        assert_close(&lowest(&xs, 3).unwrap(), &lo, "lowest");
    }

    #[test]
    fn period_one_is_degenerate_not_broken() {
        let xs = closes(3, 50);
        assert_close(&sma(&xs, 1).unwrap(), &xs, "sma(1)");
        assert_close(&ema(&xs, 1).unwrap(), &xs, "ema(1)");
        assert_close(&highest(&xs, 1).unwrap(), &xs, "highest(1)");
        assert!(stdev(&xs, 1).unwrap().iter().all(|&x| x == 0.0));
    }

    /// Values produced by TA-Lib 0.8.1 (python `ta-lib` 0.8.2) on
    /// `hlc_series(42, 300)` at indices 40, 150 and 299, plus TA-Lib's NaN
    /// count (its MACD line starts with the signal, see module docs).
    #[test]
    fn matches_talib_golden_values() {
        let golden: [(&str, usize, [f64; 3]); 14] = [
            ("sma", 9, [104.89179303659935, 101.24334446720711, 80.89961647887053]),
            ("ema", 9, [104.5897336309846, 101.58413412993589, 80.87674125705384]),
            ("wma", 9, [105.35399021824026, 100.837873633, 80.79009853300843]),
            ("rsi", 14, [66.49896895164001, 38.61926836106599, 41.48662894569793]),
            ("atr", 14, [1.6250246651985247, 1.7157920056319536, 1.2553812973952356]),
            ("macd", 33, [1.9014910650079173, -1.580301708105523, -0.3245766807254711]),
            ("signal", 33, [1.488244116903846, -1.1601921704524365, -0.22678622263235748]),
            ("histogram", 33, [0.41324694810407125, -0.42010953765308656, -0.0977904580931136]),
            ("upper", 19, [108.17189010282829, 109.77333388622164, 83.28552040332184]),
            ("middle", 19, [102.19671267740766, 103.89013076575274, 81.40695808727394]),
            ("lower", 19, [96.22153525198704, 98.00692764528385, 79.52839577122603]),
            ("stdev", 19, [2.9875887127103105, 2.9416015602344454, 0.9392811580239507]),
            ("highest", 9, [106.7263684845776, 103.76775109111604, 82.2598762544135]),
            ("lowest", 9, [103.18205774740578, 99.86487866435778, 79.37979761946595]),
        ];
        let s = hlc_series(42, 300);
        let inputs = Inputs::hlc(&s.high, &s.low, &s.close);
        let run = |name: &str, params: Params| compute(name, &inputs, &params).unwrap();
        let mut ours: Vec<(&str, Vec<f64>)> = Vec::new();
        for name in ["sma", "ema", "wma", "highest", "lowest"] {
            ours.push((name, run(name, period(10)).as_single().unwrap().to_vec()));
        }
        for name in ["rsi", "atr"] {
            ours.push((name, run(name, period(14)).as_single().unwrap().to_vec()));
        }
        ours.push(("stdev", run("stdev", period(20)).as_single().unwrap().to_vec()));
        for (name, out) in [
            ("macd", run("macd", macd_params(12, 26, 9))),
            ("bollinger", run("bollinger", period(20).with("stddev", 2.0))),
        ] {
            let ArrayOutput::Multi(fields) = out else { panic!("{name} is multi-output") };
            ours.extend(fields);
        }
        for (name, talib_nans, values) in golden {
            let series = &ours.iter().find(|(n, _)| *n == name).unwrap().1;
            let nans = if name == "macd" { 25 } else { talib_nans };
            assert_eq!(leading_nans(series), nans, "{name} warm-up");
            let got = [series[40], series[150], series[299]];
            assert_close(&got, &values, &format!("{name} vs TA-Lib"));
        }
    }

    // ---------------------------------------------------------------------
    // Against the naive references
    // ---------------------------------------------------------------------

    #[test]
    fn array_forms_match_references() {
        let s = hlc_series(7, 600);
        for p in [2, 5, 14, 30] {
            check_all_against_refs(&s, p, 12, 26, 9);
        }
        check_all_against_refs(&s, 1, 3, 10, 1);
    }

    /// Property-style: random lengths (including shorter than the warm-up)
    /// and random periods, all indicators against the references.
    #[test]
    fn random_periods_match_references() {
        let mut rng = Lcg(2024);
        for case in 0..60 {
            let n = rng.range(0, 250);
            let p = rng.range(1, 40);
            let fast = rng.range(1, 20);
            let slow = rng.range(fast + 1, 45);
            let signal = rng.range(1, 15);
            let s = hlc_series(1000 + case, n);
            check_all_against_refs(&s, p, fast, slow, signal);
        }
    }

    #[test]
    fn bollinger_middle_is_exactly_sma() {
        let xs = closes(11, 2000);
        let bits = |v: Vec<f64>| v.into_iter().map(f64::to_bits).collect::<Vec<_>>();
        let middle = bollinger(&xs, 20, 2.0).unwrap().middle;
        assert_eq!(bits(middle), bits(sma(&xs, 20).unwrap()));
    }

    // ---------------------------------------------------------------------
    // Streaming vs array, warm-up
    // ---------------------------------------------------------------------

    /// Feeds every bar through `create(name)` and compares with `compute(name)`.
    fn assert_streaming_matches_array(kind: Kind, params: &Params, s: &Hlc) {
        let inputs = Inputs::hlc(&s.high, &s.low, &s.close);
        let array = compute(kind.name(), &inputs, params).unwrap();
        let mut ind = create(kind.name(), params).unwrap();
        assert_eq!(ind.kind(), kind);
        for i in 0..s.close.len() {
            let out = ind.update(Bar::new(s.high[i], s.low[i], s.close[i]));
            match (&array, &out) {
                (ArrayOutput::Single(series), Output::Single(v)) => {
                    assert_close(&[*v], &[series[i]], &format!("{kind:?} bar {i}"));
                }
                (ArrayOutput::Multi(fields), Output::Multi(values)) => {
                    let names: Vec<_> = values.iter().map(|(n, _)| *n).collect();
                    assert_eq!(names, kind.output_names().unwrap().to_vec());
                    for (name, series) in fields {
                        let v = out.get(name).unwrap();
                        assert_close(&[v], &[series[i]], &format!("{kind:?}.{name} bar {i}"));
                    }
                }
                _ => panic!("{kind:?}: array and streaming output shapes differ"),
            }
        }
    }

    #[test]
    fn streaming_matches_array_for_every_indicator() {
        let s = hlc_series(99, 3000);
        for kind in Kind::ALL {
            for p in [1, 3, 14, 50] {
                assert_streaming_matches_array(kind, &params_for(kind, p), &s);
            }
        }
    }

    #[test]
    fn warmup_nan_counts() {
        let s = hlc_series(5, 200);
        let inputs = Inputs::hlc(&s.high, &s.low, &s.close);
        let expect = |kind: Kind, p: usize| match kind {
            Kind::Rsi | Kind::Atr => vec![p],
            Kind::Macd => vec![2 * p, 3 * p - 1, 3 * p - 1], // slow = 2p+1, signal = p
            Kind::Bollinger => vec![p - 1; 3],
            _ => vec![p - 1],
        };
        for kind in Kind::ALL {
            for p in [1, 2, 9, 20] {
                let params = params_for(kind, p);
                let spec = Spec::parse(kind.name(), &params).unwrap();
                let want = expect(kind, p);
                assert_eq!(spec.warmup(), *want.iter().max().unwrap(), "{kind:?} lookback");
                let series = match compute(kind.name(), &inputs, &params).unwrap() {
                    ArrayOutput::Single(v) => vec![v],
                    ArrayOutput::Multi(f) => f.into_iter().map(|(_, v)| v).collect(),
                };
                for (got, want) in series.iter().zip(want) {
                    assert_warmup(got, want, &format!("{kind:?} p={p}"));
                }
            }
        }
    }

    #[test]
    fn shorter_than_warmup_is_all_nan_and_empty_is_empty() {
        let xs = closes(1, 5);
        for kind in Kind::ALL {
            let params = params_for(kind, 10);
            let inputs = Inputs::hlc(&xs, &xs, &xs);
            let out = compute(kind.name(), &inputs, &params).unwrap();
            let all_nan = match &out {
                ArrayOutput::Single(v) => v.iter().all(|x| x.is_nan()),
                ArrayOutput::Multi(f) => f.iter().all(|(_, v)| v.iter().all(|x| x.is_nan())),
            };
            assert!(all_nan, "{kind:?}");
            let empty = compute(kind.name(), &Inputs::hlc(&[], &[], &[]), &params).unwrap();
            assert!(match empty {
                ArrayOutput::Single(v) => v.is_empty(),
                ArrayOutput::Multi(f) => f.iter().all(|(_, v)| v.is_empty()),
            });
        }
    }

    // ---------------------------------------------------------------------
    // Missing values and numerical stability
    // ---------------------------------------------------------------------

    #[test]
    fn window_indicators_recover_after_missing_values() {
        let mut s = hlc_series(8, 400);
        s.close[100] = f64::NAN;
        s.close[101] = f64::INFINITY;
        s.close[250] = f64::NEG_INFINITY;
        // The references see every non-finite value as NaN.
        let clean: Vec<f64> = s.close.iter().map(|&x| if x.is_finite() { x } else { N }).collect();
        for p in [1, 7, 30] {
            assert_close(&sma(&s.close, p).unwrap(), &ref_sma(&clean, p), "sma");
            assert_close(&wma(&s.close, p).unwrap(), &ref_wma(&clean, p), "wma");
            assert_close(&stdev(&s.close, p).unwrap(), &ref_stdev(&clean, p), "stdev");
            assert_close(&highest(&s.close, p).unwrap(), &ref_extreme(&clean, p, true), "highest");
            assert_close(&lowest(&s.close, p).unwrap(), &ref_extreme(&clean, p, false), "lowest");
            // Finite again once the missing values have left the window.
            assert!(sma(&s.close, p).unwrap()[250 - 1].is_finite());
            assert!(sma(&s.close, p).unwrap()[399].is_finite());
        }
    }

    #[test]
    fn recursive_indicators_stay_nan_after_missing_values() {
        let mut s = hlc_series(8, 300);
        s.close[100] = f64::NAN;
        s.high[200] = f64::INFINITY;
        let after =
            |v: &[f64], from: usize| v[..from].iter().any(|x| x.is_finite()) && v[from..].iter().all(|x| x.is_nan());
        assert!(after(&ema(&s.close, 10).unwrap(), 100));
        assert!(after(&rsi(&s.close, 10).unwrap(), 100));
        assert!(after(&macd(&s.close, 5, 10, 3).unwrap().histogram, 100));
        // A bar's true range reads the *previous* close, so a missing close
        // poisons the ATR from the next bar on.
        assert!(after(&atr(&s.high, &s.low, &s.close, 10).unwrap(), 101));
        let clean = hlc_series(8, 300);
        assert!(after(&atr(&s.high, &s.low, &clean.close, 10).unwrap(), 200));
    }

    #[test]
    fn stdev_is_stable_over_a_long_high_priced_series() {
        // Price level 1e6 with a spread of ~1e-3: Σx² − n·mean² would lose
        // every digit. Check the last window against the two-pass reference.
        let mut rng = Lcg(77);
        let xs: Vec<f64> = (0..1_000_000).map(|_| 1e6 + rng.unit() * 1e-3).collect();
        let p = 50;
        let got = stdev(&xs, p).unwrap();
        let want = ref_stdev(&xs[xs.len() - p..], p)[p - 1];
        let last = got[xs.len() - 1];
        assert!((last - want).abs() <= 1e-6 * want, "{last} vs {want}");
        // A flat window is exactly 0, never NaN from a negative variance.
        let flat = stdev(&[1e6 + 0.1; 500], 20).unwrap();
        assert!(flat[19..].iter().all(|&x| x == 0.0));
    }

    // ---------------------------------------------------------------------
    // Bad input: errors, never panics
    // ---------------------------------------------------------------------

    fn invalid(result: Result<Spec, IndicatorError>, param: &str) {
        match result {
            Err(IndicatorError::InvalidParam { param: p, .. }) => assert_eq!(p, param),
            other => panic!("expected invalid {param}, got {other:?}"),
        }
    }

    #[test]
    fn bad_periods_are_errors() {
        for bad in [0.0, -3.0, 1.5, f64::NAN, f64::INFINITY, 100_001.0] {
            for kind in Kind::ALL {
                let params = match kind {
                    Kind::Macd => macd_params(2, 5, 3).with("slow", bad),
                    Kind::Bollinger => period(1).with("period", bad).with("k", 2.0),
                    _ => period(1).with("period", bad),
                };
                let name = if kind == Kind::Macd { "slow" } else { "period" };
                invalid(Spec::parse(kind.name(), &params), name);
            }
        }
        assert!(Spec::parse("sma", &period(MAX_PERIOD)).is_ok());
        // Typed constructors and array functions check too.
        assert!(Sma::new(0).is_err() && Highest::new(MAX_PERIOD + 1).is_err());
        assert!(sma(&[1.0], 0).is_err() && atr(&[1.0], &[1.0], &[1.0], 0).is_err());
        assert!(Spec::Ema { period: 0 }.validate().is_err());
        assert!(StreamingIndicator::from_spec(&Spec::Wma { period: 0 }).is_err());
    }

    #[test]
    fn bad_macd_and_bollinger_params_are_errors() {
        invalid(Spec::parse("macd", &macd_params(26, 12, 9)), "fast");
        invalid(Spec::parse("macd", &macd_params(12, 12, 9)), "fast");
        invalid(Spec::parse("macd", &macd_params(12, 26, 0)), "signal");
        assert!(Macd::new(5, 5, 1).is_err());
        for k in [-1.0, f64::NAN, f64::INFINITY] {
            invalid(Spec::parse("bollinger", &period(20).with("k", k)), "k");
        }
        invalid(Spec::parse("bollinger", &period(20).with("k", 2.0).with("stddev", 2.0)), "k");
        assert!(bollinger(&[1.0], 5, -2.0).is_err());
        let spec = Spec::parse("bollinger", &period(20).with("stddev", 1.5)).unwrap();
        assert_eq!(spec, Spec::Bollinger { period: 20, k: 1.5 });
    }

    #[test]
    fn missing_and_unknown_params_and_names_are_errors() {
        let err = Spec::parse("rsi", &Params::new()).unwrap_err();
        assert_eq!(err, IndicatorError::MissingParam { indicator: "rsi", param: "period" });
        let err = Spec::parse("macd", &Params::new().with("fast", 12.0).with("slow", 26.0));
        assert!(matches!(err, Err(IndicatorError::MissingParam { param: "signal", .. })));
        let err = Spec::parse("bollinger", &period(20));
        assert!(matches!(err, Err(IndicatorError::MissingParam { param: "k", .. })));
        let err = Spec::parse("ema", &Params::new().with("peroid", 10.0)).unwrap_err();
        assert!(matches!(&err, IndicatorError::UnknownParam { param, .. } if param == "peroid"));
        let err = create("vwap", &period(10)).unwrap_err();
        assert_eq!(err, IndicatorError::UnknownIndicator("vwap".into()));
        assert!(err.to_string().contains("sma, ema"), "lists known names: {err}");
        // Names are case-insensitive.
        assert_eq!(Spec::parse(" RSI ", &period(14)), Ok(Spec::Rsi { period: 14 }));
    }

    #[test]
    fn input_shape_errors() {
        let (a, b) = ([1.0, 2.0, 3.0], [1.0, 2.0]);
        let err = atr(&a, &b, &a, 2).unwrap_err();
        assert_eq!(err, IndicatorError::LengthMismatch { input: "low", len: 2, expected: 3 });
        assert!(atr(&b, &a, &a, 2).is_err());
        let p = period(2);
        let missing = compute("atr", &Inputs::close(&a), &p).unwrap_err();
        assert_eq!(missing, IndicatorError::MissingInput { indicator: "atr", input: "high" });
        let mismatch = compute("sma", &Inputs::hlc(&b, &a, &a), &p).unwrap_err();
        assert!(matches!(mismatch, IndicatorError::LengthMismatch { input: "high", .. }));
        assert!(compute("sma", &Inputs::close(&a), &p).is_ok());
    }
}

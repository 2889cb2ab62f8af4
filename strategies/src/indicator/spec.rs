//! Names, parameters and validated specs: what the host asks for, checked once.

use std::collections::BTreeMap;
use std::fmt;

use super::{BOLLINGER_OUTPUTS, MACD_OUTPUTS, MAX_PERIOD};

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

pub(super) fn check_period(param: &'static str, period: usize) -> Result<usize, IndicatorError> {
    if (1..=MAX_PERIOD).contains(&period) {
        Ok(period)
    } else {
        Err(IndicatorError::InvalidParam { param, value: period as f64, reason: "must be from 1 to 100000" })
    }
}

pub(super) fn check_band_width(k: f64) -> Result<f64, IndicatorError> {
    if k.is_finite() && k >= 0.0 {
        Ok(k)
    } else {
        Err(IndicatorError::InvalidParam { param: "k", value: k, reason: "must be a finite number >= 0" })
    }
}

pub(super) fn check_macd(fast: usize, slow: usize, signal: usize) -> Result<(), IndicatorError> {
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

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

mod array;
mod average;
mod blocks;
mod extremes;
mod momentum;
mod spec;
mod streaming;
#[cfg(test)]
mod tests;
mod volatility;

pub use array::{
    atr, bollinger, compute, compute_spec, ema, highest, lowest, macd, rsi, sma, stdev, wma, ArrayOutput,
    BollingerSeries, Inputs, MacdSeries,
};
pub use average::{Ema, Sma, Wma};
pub use extremes::{Highest, Lowest};
pub use momentum::{Macd, Rsi};
pub use spec::{IndicatorError, Kind, Params, Spec};
pub use streaming::{create, Bar, BollingerValue, MacdValue, Output, StreamingIndicator};
pub use volatility::{Atr, Bollinger, Stdev};

/// Largest accepted period (TA-Lib's own bound); also caps what a script can
/// make us allocate.
pub const MAX_PERIOD: usize = 100_000;

/// Output names of MACD, in the order they appear in an [`Output::Multi`].
pub const MACD_OUTPUTS: [&str; 3] = ["macd", "signal", "histogram"];

/// Output names of Bollinger bands, in the order they appear in an [`Output::Multi`].
pub const BOLLINGER_OUTPUTS: [&str; 3] = ["upper", "middle", "lower"];

//! Declared indicators and wake conditions: what `st_init` may ask the engine to
//! compute, so that a strategy is called only on the bars where it has something
//! to decide.
//!
//! ```js
//! function st_init(ctx) {
//!   return {
//!     symbols: ["BTCUSDT"],
//!     indicators: {
//!       fast: { type: "sma", period: 10, record: true }, // source: "close" unless given
//!       slow: { type: "sma", period: 30, record: true },
//!     },
//!     wake: { cross: ["fast", "slow"] },                 // default: every closed bar
//!   };
//! }
//! function st_heartbeat(ctx, tick) { tick.indicators.fast > tick.indicators.slow ... }
//! ```
//!
//! # Indicators
//! `indicators` maps a name to `{type, ...params, source?, record?}`: `type` and the
//! parameters are those of `ctx.indicator.create` (the same Rust code, so the values are
//! the same bit for bit); `source` is the bar field fed to it (`open`, `high`, `low`,
//! `close` — the default — or `volume`; atr always reads high, low and close). The engine
//! updates every declared indicator on each closed bar of a subscribed symbol (one set per
//! symbol), warm-up bars included, before deciding whether to wake the strategy, and the
//! tick it then gets carries `tick.indicators` (`{fast: 101.5, macd: {macd, signal,
//! histogram}}`, NaN while warming up). `record: true` plots the indicator in the backtest
//! report like `ctx.record` (without journaling it: the values are derived from journaled
//! klines and recomputed on replay).
//!
//! # Wake
//! `wake` is one condition or a list of them (any one wakes the strategy):
//! - `"bar"`: every closed bar (the default when `wake` is absent);
//! - `{cross: [a, b]}`: the bars where `a > b` changes: `a` and `b` are an indicator name,
//!   `"name.output"` of a multi-output indicator (`"macd.signal"`), a bar field
//!   (`"close"`) or a number. The regime `a > b` is taken on every bar where both are
//!   numbers; a bar wakes when its regime differs from the one of the last bar that had
//!   one (so never on the first such bar);
//! - `{every: n}`: every n-th subscribed bar after the warm-up (the first one included).
//!
//! Whatever `wake` says, `st_on_order`, `st_on_fill` and `st_on_data` are called as always.
//! The state here is a pure function of the subscribed klines since the strategy was
//! loaded; it lives outside the sandbox, so it survives a restart of the strategy (as long
//! as `st_init` declares the same plan), and replay recomputes it from the journal.

use std::collections::BTreeMap;

use journal::event::Kline;
use serde_json::Value as Json;

use crate::indicator::{Bar, Kind, Params, Spec, StreamingIndicator};

/// Most indicators one strategy may declare.
pub const INDICATORS_MAX: usize = 64;
/// Most wake conditions one strategy may declare.
pub const CONDITIONS_MAX: usize = 64;

/// A bar field an indicator reads or a condition compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Open,
    High,
    Low,
    Close,
    Volume,
}

impl Field {
    const ALL: [(&'static str, Field); 5] = [
        ("open", Field::Open),
        ("high", Field::High),
        ("low", Field::Low),
        ("close", Field::Close),
        ("volume", Field::Volume),
    ];

    fn from_name(name: &str) -> Option<Field> {
        Field::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
    }

    fn index(self) -> usize {
        Field::ALL.iter().position(|(_, f)| *f == self).expect("invariant: every field is in ALL")
    }

    fn of(self, bar: &BarValues) -> f64 {
        match self {
            Field::Open => bar.open,
            Field::High => bar.high,
            Field::Low => bar.low,
            Field::Close => bar.close,
            Field::Volume => bar.volume,
        }
    }
}

/// One declared indicator.
#[derive(Debug, Clone, PartialEq)]
pub struct Declared {
    pub name: String,
    pub spec: Spec,
    pub source: Field,
    pub record: bool,
}

impl Declared {
    /// Output names: `None` for a single value, else the three of a multi-output indicator.
    pub fn outputs(&self) -> Option<&'static [&'static str; 3]> {
        self.spec.kind().output_names()
    }
}

/// What a condition compares.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Operand {
    /// An indicator's value (`output` 0 for single-output ones).
    Indicator {
        index: usize,
        output: usize,
    },
    Field(Field),
    Number(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Condition {
    Bar,
    Cross(Operand, Operand),
    Every(u64),
}

/// The indicators and wake conditions a strategy declared (the static part).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub indicators: Vec<Declared>,
    conditions: Vec<Condition>,
    /// The series `record: true` asks for (`"macd.signal"` for a multi-output indicator),
    /// and where each one's value is: (indicator index, output index).
    recorded: Vec<String>,
    recorded_at: Vec<(usize, usize)>,
}

impl Plan {
    /// Reads `indicators` and `wake` from what `st_init` returned. A plan with no
    /// indicators and no conditions wakes the strategy on every bar.
    ///
    /// # Errors
    /// A one-line message naming the offending key.
    pub fn from_init(value: &Json) -> Result<Plan, String> {
        let mut plan = Plan::default();
        match value.get("indicators") {
            None | Some(Json::Null) => {}
            Some(Json::Object(map)) => {
                if map.len() > INDICATORS_MAX {
                    return Err(format!("indicators: at most {INDICATORS_MAX} may be declared, got {}", map.len()));
                }
                // Sorted by name whatever order the object had, so the plan is canonical.
                let sorted: BTreeMap<&String, &Json> = map.iter().collect();
                for (name, decl) in sorted {
                    plan.indicators.push(declared(name, decl).map_err(|e| format!("indicators.{name}: {e}"))?);
                }
            }
            Some(other) => return Err(format!("indicators: expected an object of name: {{type, ...}}, got {other}")),
        }
        let conditions: Vec<&Json> = match value.get("wake") {
            None | Some(Json::Null) => Vec::new(),
            Some(Json::Array(list)) => list.iter().collect(),
            Some(one) => vec![one],
        };
        if conditions.len() > CONDITIONS_MAX {
            return Err(format!("wake: at most {CONDITIONS_MAX} conditions, got {}", conditions.len()));
        }
        for c in conditions {
            let condition = plan.condition(c).map_err(|e| format!("wake: {e}"))?;
            plan.conditions.push(condition);
        }
        for (index, d) in plan.indicators.iter().enumerate().filter(|(_, d)| d.record) {
            match d.outputs() {
                None => {
                    plan.recorded.push(d.name.clone());
                    plan.recorded_at.push((index, 0));
                }
                Some(names) => {
                    for (output, name) in names.iter().enumerate() {
                        plan.recorded.push(format!("{}.{name}", d.name));
                        plan.recorded_at.push((index, output));
                    }
                }
            }
        }
        Ok(plan)
    }

    /// The bar fields the indicators and conditions read, in [`Field::ALL`] order.
    fn fields_needed(&self) -> [bool; 5] {
        let mut needed = [false; 5];
        for d in &self.indicators {
            if d.spec.kind().needs_high_low() {
                for f in [Field::High, Field::Low, Field::Close] {
                    needed[f.index()] = true;
                }
            } else {
                needed[d.source.index()] = true;
            }
        }
        for c in &self.conditions {
            if let Condition::Cross(a, b) = c {
                for operand in [a, b] {
                    if let Operand::Field(f) = operand {
                        needed[f.index()] = true;
                    }
                }
            }
        }
        needed
    }

    /// Whether the strategy wakes on every bar (no condition, or `"bar"` among them).
    pub fn every_bar(&self) -> bool {
        self.conditions.is_empty() || self.conditions.contains(&Condition::Bar)
    }

    /// Whether there is anything to compute per bar.
    pub fn is_trivial(&self) -> bool {
        self.indicators.is_empty() && self.every_bar()
    }

    fn condition(&self, c: &Json) -> Result<Condition, String> {
        match c {
            Json::String(s) if s == "bar" => Ok(Condition::Bar),
            Json::Object(map) if map.len() == 1 => {
                let (key, arg) = map.iter().next().expect("invariant: one entry");
                match key.as_str() {
                    "cross" => match arg {
                        Json::Array(pair) if pair.len() == 2 => {
                            Ok(Condition::Cross(self.operand(&pair[0])?, self.operand(&pair[1])?))
                        }
                        _ => Err(format!("cross: expected [a, b], got {arg}")),
                    },
                    "every" => match arg.as_u64() {
                        Some(n) if n >= 1 => Ok(Condition::Every(n)),
                        _ => Err(format!("every: expected a whole number of bars >= 1, got {arg}")),
                    },
                    other => {
                        Err(format!("unknown condition {other:?} (known: \"bar\", {{cross: [a, b]}}, {{every: n}})"))
                    }
                }
            }
            other => Err(format!("expected \"bar\", {{cross: [a, b]}} or {{every: n}}, got {other}")),
        }
    }

    fn operand(&self, v: &Json) -> Result<Operand, String> {
        match v {
            Json::Number(n) => n.as_f64().map(Operand::Number).ok_or_else(|| format!("{n} is not a number")),
            Json::String(s) => {
                let (name, output) = match s.split_once('.') {
                    Some((name, output)) => (name, Some(output)),
                    None => (s.as_str(), None),
                };
                if let Some(index) = self.indicators.iter().position(|d| d.name == name) {
                    let decl = &self.indicators[index];
                    let output = match (decl.outputs(), output) {
                        (None, None) => 0,
                        (Some(names), Some(o)) => names.iter().position(|n| *n == o).ok_or_else(|| {
                            format!("{s:?}: {} has the outputs {}", decl.spec.kind().name(), names.join(", "))
                        })?,
                        (Some(names), None) => {
                            return Err(format!(
                                "{s:?}: {} has several outputs; name one, e.g. \"{name}.{}\"",
                                decl.spec.kind().name(),
                                names[0]
                            ))
                        }
                        (None, Some(_)) => return Err(format!("{s:?}: {name} has a single output")),
                    };
                    return Ok(Operand::Indicator { index, output });
                }
                match (Field::from_name(s), output) {
                    (Some(field), None) => Ok(Operand::Field(field)),
                    _ => Err(format!("{s:?} is neither a declared indicator nor a bar field")),
                }
            }
            other => Err(format!("expected an indicator name, a bar field or a number, got {other}")),
        }
    }
}

fn declared(name: &str, decl: &Json) -> Result<Declared, String> {
    if name.is_empty() || name.contains('.') || Field::from_name(name).is_some() {
        return Err("the name must be non-empty, without '.', and not a bar field".into());
    }
    let Json::Object(map) = decl else { return Err(format!("expected {{type, ...params}}, got {decl}")) };
    let mut kind = None;
    let mut source = Field::Close;
    let mut record = false;
    let mut params = Params::new();
    for (key, value) in map {
        match key.as_str() {
            "type" => {
                let t = value.as_str().ok_or_else(|| format!("type: expected a name, got {value}"))?;
                kind = Some(Kind::from_name(t).map_err(|e| e.to_string())?);
            }
            "source" => {
                let s = value.as_str().ok_or_else(|| format!("source: expected a bar field, got {value}"))?;
                source = Field::from_name(s)
                    .ok_or_else(|| format!("source: {s:?} is not one of open, high, low, close, volume"))?;
            }
            "record" => {
                record = value.as_bool().ok_or_else(|| format!("record: expected true or false, got {value}"))?
            }
            param => {
                let number = value.as_f64().ok_or_else(|| format!("{param}: expected a number, got {value}"))?;
                params.set(param, number);
            }
        }
    }
    let kind = kind.ok_or("missing type (e.g. type: \"sma\")")?;
    let spec = Spec::parse(kind.name(), &params).map_err(|e| e.to_string())?;
    Ok(Declared { name: name.to_owned(), spec, source, record })
}

/// A closed bar's values as the indicators see them (nearest `f64`s of the exact decimals).
#[derive(Debug, Clone, Copy)]
struct BarValues {
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
}

impl BarValues {
    /// The fields `needed` (in [`Field::ALL`] order) converted, the others NaN: converting
    /// an exact decimal is the dearest part of a bar nobody reads.
    fn of(k: &Kline, needed: [bool; 5]) -> BarValues {
        let f = |d: rust_decimal::Decimal, i: usize| if needed[i] { journal::money::to_f64(d) } else { f64::NAN };
        BarValues {
            open: f(k.open, 0),
            high: f(k.high, 1),
            low: f(k.low, 2),
            close: f(k.close, 3),
            volume: f(k.volume, 4),
        }
    }
}

/// The per-symbol state of a plan: indicators, their latest values and each cross's regime.
#[derive(Debug, Clone)]
struct SymbolState {
    symbol: String,
    indicators: Vec<StreamingIndicator>,
    /// Latest outputs per indicator (single-output ones use slot 0).
    values: Vec<[f64; 3]>,
    /// Per condition: the last regime of a cross.
    regimes: Vec<Option<bool>>,
}

/// A plan with its running state.
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    pub plan: Plan,
    /// [`Plan::fields_needed`], computed once.
    needed: [bool; 5],
    symbols: Vec<SymbolState>,
    /// Index into `symbols` of the last bar's symbol.
    current: usize,
}

impl Tracker {
    pub fn new(plan: Plan) -> Tracker {
        Tracker { needed: plan.fields_needed(), plan, symbols: Vec::new(), current: 0 }
    }

    /// Feeds one closed bar of a subscribed symbol; `eligible_bar` is the count of
    /// subscribed bars after the warm-up (0 during it: never wakes). Returns whether the
    /// strategy wakes on this bar.
    pub fn on_bar(&mut self, k: &Kline, eligible_bar: u64) -> bool {
        if self.plan.is_trivial() {
            return eligible_bar > 0;
        }
        // Most runs have one symbol, or bars of one symbol in a row: try the last one first.
        let last = self.symbols.get(self.current).filter(|s| s.symbol == k.symbol).map(|_| self.current);
        let at = match last.or_else(|| self.symbols.iter().position(|s| s.symbol == k.symbol)) {
            Some(at) => at,
            None => {
                self.symbols.push(SymbolState {
                    symbol: k.symbol.clone(),
                    indicators: self
                        .plan
                        .indicators
                        .iter()
                        .map(|d| StreamingIndicator::from_spec(&d.spec).expect("invariant: the spec was validated"))
                        .collect(),
                    values: vec![[f64::NAN; 3]; self.plan.indicators.len()],
                    regimes: vec![None; self.plan.conditions.len()],
                });
                self.symbols.len() - 1
            }
        };
        self.current = at;
        let bar = BarValues::of(k, self.needed);
        let state = &mut self.symbols[at];
        for ((indicator, decl), slot) in state.indicators.iter_mut().zip(&self.plan.indicators).zip(&mut state.values) {
            let input = if decl.spec.kind().needs_high_low() {
                Bar::new(bar.high, bar.low, bar.close)
            } else {
                Bar::from_close(decl.source.of(&bar))
            };
            indicator.update_into(input, slot);
        }
        let mut wake = false;
        for (condition, regime) in self.plan.conditions.iter().zip(&mut state.regimes) {
            wake |= match *condition {
                Condition::Bar => eligible_bar > 0,
                Condition::Every(n) => eligible_bar > 0 && (eligible_bar - 1) % n == 0,
                Condition::Cross(a, b) => {
                    let (a, b) = (operand(a, &state.values, &bar), operand(b, &state.values, &bar));
                    if a.is_nan() || b.is_nan() {
                        false
                    } else {
                        let now = a > b;
                        let before = regime.replace(now);
                        eligible_bar > 0 && before.is_some_and(|b| b != now)
                    }
                }
            };
        }
        if self.plan.conditions.is_empty() {
            wake = eligible_bar > 0;
        }
        wake
    }

    /// The current bar's indicator values, as `(name, output names, values)`, in name order.
    pub fn values(&self) -> impl Iterator<Item = (&str, Option<&'static [&'static str; 3]>, &[f64; 3])> {
        let values = self.symbols.get(self.current).map(|s| s.values.as_slice()).unwrap_or(&[]);
        self.plan.indicators.iter().zip(values).map(|(d, v)| (d.name.as_str(), d.outputs(), v))
    }

    /// The series `record: true` asks for, and their values on the current bar, in the same
    /// order (`values` is refilled; NaN while an indicator warms up).
    pub fn recorded(&self, values: &mut Vec<f64>) -> &[String] {
        values.clear();
        if let Some(state) = self.symbols.get(self.current) {
            values.extend(self.plan.recorded_at.iter().map(|(i, o)| state.values[*i][*o]));
        }
        &self.plan.recorded
    }
}

fn operand(o: Operand, values: &[[f64; 3]], bar: &BarValues) -> f64 {
    match o {
        Operand::Indicator { index, output } => values[index][output],
        Operand::Field(f) => f.of(bar),
        Operand::Number(n) => n,
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal::Decimal;
    use serde_json::json;

    use super::*;

    fn bar(symbol: &str, close: f64) -> Kline {
        let d = Decimal::try_from(close).unwrap();
        Kline {
            symbol: symbol.into(),
            interval_ms: 60_000,
            open_time_ms: 0,
            open: d,
            high: d,
            low: d,
            close: d,
            volume: Decimal::ONE,
            closed: true,
        }
    }

    fn plan(v: Json) -> Plan {
        Plan::from_init(&v).unwrap()
    }

    #[test]
    fn no_declaration_wakes_every_bar_after_warmup() {
        let mut t = Tracker::new(plan(json!({"symbols": ["X"]})));
        assert!(t.plan.is_trivial());
        assert!(!t.on_bar(&bar("X", 1.0), 0));
        assert!(t.on_bar(&bar("X", 1.0), 1));
    }

    #[test]
    fn cross_wakes_when_the_regime_changes_and_not_on_the_first_defined_bar() {
        let mut t = Tracker::new(plan(json!({
            "indicators": {"fast": {"type": "sma", "period": 1}, "slow": {"type": "sma", "period": 3}},
            "wake": {"cross": ["fast", "slow"]},
        })));
        // closes 1,2,3 -> slow defined at bar 3 (2.0), fast 3 > 2: first regime, no wake.
        let closes = [1.0, 2.0, 3.0, 4.0, 1.0, 0.5, 5.0];
        let woke: Vec<bool> = closes.iter().enumerate().map(|(i, c)| t.on_bar(&bar("X", *c), i as u64 + 1)).collect();
        // bar 5: slow = (3+4+1)/3 = 2.67 > 1 -> regime flips to below: wake.
        // bar 6: slow = (4+1+0.5)/3 = 1.83 > 0.5: still below. bar 7: slow = 2.17 < 5: above: wake.
        assert_eq!(woke, [false, false, false, false, true, false, true]);
        let values: Vec<_> = t.values().map(|(n, _, v)| (n.to_owned(), v[0])).collect();
        assert_eq!(values, [("fast".to_owned(), 5.0), ("slow".to_owned(), (1.0 + 0.5 + 5.0) / 3.0)]);
    }

    #[test]
    fn each_symbol_has_its_own_indicators_and_regime() {
        let mut t = Tracker::new(plan(json!({
            "indicators": {"s": {"type": "sma", "period": 2}},
            "wake": {"cross": ["close", "s"]},
        })));
        assert!(!t.on_bar(&bar("A", 10.0), 1));
        assert!(!t.on_bar(&bar("B", 1.0), 1));
        assert!(!t.on_bar(&bar("A", 12.0), 2)); // A: 12 > 11, first regime
        assert!(!t.on_bar(&bar("B", 2.0), 2)); // B: 2 > 1.5, first regime
        assert!(t.on_bar(&bar("A", 8.0), 3)); // A: 8 < 10: cross
        assert!(!t.on_bar(&bar("B", 3.0), 3)); // B: 3 > 2.5: unchanged
    }

    #[test]
    fn every_n_bars_and_numbers_and_outputs() {
        let mut t = Tracker::new(plan(json!({"wake": {"every": 3}})));
        let woke: Vec<bool> = (0..7).map(|i| t.on_bar(&bar("X", 1.0), i)).collect();
        assert_eq!(woke, [false, true, false, false, true, false, false]);

        let mut t = Tracker::new(plan(json!({
            "indicators": {"m": {"type": "macd", "fast": 2, "slow": 3, "signal": 2, "record": true}},
            "wake": [{"cross": ["m.macd", 0]}, "bar"],
        })));
        assert!(t.plan.every_bar());
        assert!(t.on_bar(&bar("X", 1.0), 1));
        let mut values = Vec::new();
        let names = t.recorded(&mut values).to_vec();
        assert_eq!(names, ["m.macd", "m.signal", "m.histogram"]);
        assert_eq!(values.len(), 3);
    }

    #[test]
    fn bad_declarations_name_the_key() {
        let cases = [
            (json!({"indicators": {"x": {"period": 3}}}), "indicators.x: missing type"),
            (json!({"indicators": {"x": {"type": "nope"}}}), "indicators.x: "),
            (json!({"indicators": {"x": {"type": "sma", "period": 0}}}), "indicators.x: "),
            (json!({"indicators": {"close": {"type": "sma", "period": 3}}}), "indicators.close: the name"),
            (json!({"indicators": {"x": {"type": "sma", "period": 3, "source": "vwap"}}}), "source"),
            (json!({"indicators": [1]}), "indicators: expected an object"),
            (json!({"wake": {"cross": ["a", "b"]}}), "wake: \"a\" is neither"),
            (json!({"wake": {"cross": ["close"]}}), "wake: cross: expected [a, b]"),
            (json!({"wake": {"every": 0}}), "wake: every"),
            (json!({"wake": {"sometimes": 1}}), "wake: unknown condition"),
            (
                json!({"indicators": {"m": {"type": "macd", "fast": 2, "slow": 3, "signal": 2}}, "wake": {"cross": ["m", 0]}}),
                "several outputs",
            ),
        ];
        for (value, expected) in cases {
            let err = Plan::from_init(&value).unwrap_err();
            assert!(err.contains(expected), "{value}: {err}");
        }
    }

    #[test]
    fn declared_values_equal_the_streaming_indicator_bit_for_bit() {
        let mut t = Tracker::new(plan(json!({
            "indicators": {"e": {"type": "ema", "period": 5, "source": "high"}},
        })));
        let mut reference = crate::indicator::create("ema", &Params::new().with("period", 5.0)).unwrap();
        for i in 0..50 {
            let mut k = bar("X", 100.0 + f64::from(i));
            k.high = Decimal::try_from(200.0 + f64::from(i) * 1.5).unwrap();
            t.on_bar(&k, 1);
            let expected = reference.update(Bar::from_close(200.0 + f64::from(i) * 1.5)).as_single().unwrap();
            let got = t.values().next().unwrap().2[0];
            assert_eq!(got.to_bits(), expected.to_bits(), "bar {i}");
        }
    }
}

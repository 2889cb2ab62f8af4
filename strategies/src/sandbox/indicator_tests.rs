//! `ctx.indicator` from JS, through the real [`Sandbox`], against `crate::indicator` in Rust.
//!
//! Results cross back to Rust as the hex bit patterns of the JS numbers (computed in JS with a
//! `DataView`), so comparisons are bitwise and a string `"NaN"` in place of a number fails.

use super::indicators::{MAX_LIVE_STREAMING, MAX_LIVE_WINDOW};
use super::*;
use crate::indicator as ind;
use serde_json::json;

struct NoApi;

impl Host for NoApi {
    fn now_ms(&self) -> i64 {
        1_700_000_000_000
    }
    fn api(&mut self, method: &str, _args: Vec<Json>) -> Result<Json, String> {
        Err(format!("no api in indicator tests ({method})"))
    }
}

fn load(src: &str) -> Sandbox {
    let full = format!("{HELPERS}\n{src}");
    Sandbox::load("ind.js", &full, SandboxConfig::default()).unwrap_or_else(|e| panic!("load failed: {e}"))
}

fn heartbeat(sb: &mut Sandbox, arg: Json) -> Result<Json, SandboxError> {
    sb.call(Hook::Heartbeat, Some(arg), &mut NoApi).map(|o| o.value)
}

/// JS helpers: `bits(x)` is the hex bit pattern of a number (throws for a non-number),
/// `allBits(a)` maps an array, `outBits(r)` an array or an object of arrays.
const HELPERS: &str = r#"
const __dv = new DataView(new ArrayBuffer(8));
function bits(x) {
    if (typeof x !== 'number') throw new Error('not a number: ' + typeof x + ' ' + String(x));
    __dv.setFloat64(0, x);
    return __dv.getBigUint64(0).toString(16);
}
function allBits(a) {
    if (!Array.isArray(a)) throw new Error('not an array: ' + String(a));
    return a.map(bits);
}
function outBits(r) {
    if (Array.isArray(r)) return { value: allBits(r) };
    const o = {};
    for (const k of Object.keys(r)) o[k] = allBits(r[k]);
    return o;
}
function outBit(v) {
    if (typeof v === 'number') return { value: bits(v) };
    const o = {};
    for (const k of Object.keys(v)) o[k] = bits(v[k]);
    return o;
}
"#;

// ---------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------

struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A missing value, and how JS spells it (applied in JS by `applyGaps`).
#[derive(Clone, Copy)]
enum Gap {
    Null,
    NaN,
    Infinity,
    Undefined,
    NaNString,
    Hole,
}

impl Gap {
    fn js(self) -> &'static str {
        match self {
            Gap::Null => "null",
            Gap::NaN => "nan",
            Gap::Infinity => "inf",
            Gap::Undefined => "undefined",
            Gap::NaNString => "nanstring",
            Gap::Hole => "hole",
        }
    }

    /// What the Rust reference is fed.
    fn rust(self) -> f64 {
        match self {
            Gap::Infinity => f64::INFINITY,
            _ => f64::NAN,
        }
    }
}

/// Bars: a random walk with high >= close >= low.
struct Data {
    high: Vec<f64>,
    low: Vec<f64>,
    close: Vec<f64>,
    /// (series, index, gap)
    gaps: Vec<(&'static str, usize, Gap)>,
}

impl Data {
    fn new(n: usize, seed: u64, gaps: Vec<(&'static str, usize, Gap)>) -> Data {
        let mut rng = Lcg(seed);
        let mut price = 100.0;
        let (mut high, mut low, mut close) = (vec![], vec![], vec![]);
        for _ in 0..n {
            price += (rng.unit() - 0.5) * 2.0;
            let c = price;
            high.push(c + rng.unit());
            low.push(c - rng.unit());
            close.push(c);
        }
        let mut d = Data { high, low, close, gaps };
        for &(series, i, gap) in &d.gaps.clone() {
            d.series_mut(series)[i] = gap.rust();
        }
        d
    }

    fn series_mut(&mut self, name: &str) -> &mut Vec<f64> {
        match name {
            "high" => &mut self.high,
            "low" => &mut self.low,
            _ => &mut self.close,
        }
    }

    /// As JSON for the hook: missing values as null (JS then applies the gaps' own spelling).
    fn json(&self) -> Json {
        let arr =
            |xs: &[f64]| Json::Array(xs.iter().map(|&x| if x.is_finite() { json!(x) } else { Json::Null }).collect());
        let gaps: Vec<Json> = self.gaps.iter().map(|(s, i, g)| json!([s, i, g.js()])).collect();
        json!({"high": arr(&self.high), "low": arr(&self.low), "close": arr(&self.close), "gaps": gaps})
    }
}

/// JS: rewrite the gap positions of `d.high/low/close` in their own spelling.
const APPLY_GAPS: &str = r#"
function applyGaps(d) {
    for (const [s, i, g] of d.gaps) {
        const a = d[s];
        if (g === 'null') a[i] = null;
        else if (g === 'nan') a[i] = NaN;
        else if (g === 'inf') a[i] = Infinity;
        else if (g === 'undefined') a[i] = undefined;
        else if (g === 'nanstring') a[i] = 'NaN';
        else if (g === 'hole') delete a[i];
        else throw new Error('bad gap ' + g);
    }
    return d;
}
"#;

fn clean() -> Data {
    Data::new(300, 7, vec![])
}

/// Gaps late enough for the recursive indicators to produce values first.
fn gappy() -> Data {
    Data::new(
        300,
        11,
        vec![
            ("close", 150, Gap::Null),
            ("close", 180, Gap::NaN),
            ("close", 220, Gap::Infinity),
            ("close", 240, Gap::Undefined),
            ("close", 260, Gap::NaNString),
            ("close", 275, Gap::Hole),
            ("high", 120, Gap::NaN),
            ("low", 130, Gap::Null),
        ],
    )
}

// ---------------------------------------------------------------------------
// Cases and the Rust reference
// ---------------------------------------------------------------------------

/// (name, positional params)
fn cases() -> Vec<(&'static str, Vec<f64>)> {
    vec![
        ("sma", vec![1.0]),
        ("sma", vec![5.0]),
        ("sma", vec![20.0]),
        ("ema", vec![1.0]),
        ("ema", vec![10.0]),
        ("wma", vec![7.0]),
        ("rsi", vec![2.0]),
        ("rsi", vec![14.0]),
        ("stdev", vec![1.0]),
        ("stdev", vec![10.0]),
        ("highest", vec![5.0]),
        ("lowest", vec![5.0]),
        ("macd", vec![12.0, 26.0, 9.0]),
        ("macd", vec![3.0, 5.0, 2.0]),
        ("bollinger", vec![20.0, 2.0]),
        ("bollinger", vec![5.0, 0.5]),
        ("bollinger", vec![3.0, 0.0]),
        ("atr", vec![14.0]),
        ("atr", vec![1.0]),
    ]
}

/// The expected outputs by name ("value" for single-output indicators), computed with the
/// per-indicator functions of `crate::indicator`.
fn reference(name: &str, p: &[f64], d: &Data) -> Vec<(&'static str, Vec<f64>)> {
    let c = &d.close;
    let n = |i: usize| p[i] as usize;
    let single = |r: Result<Vec<f64>, ind::IndicatorError>| vec![("value", r.unwrap())];
    match name {
        "sma" => single(ind::sma(c, n(0))),
        "ema" => single(ind::ema(c, n(0))),
        "wma" => single(ind::wma(c, n(0))),
        "rsi" => single(ind::rsi(c, n(0))),
        "stdev" => single(ind::stdev(c, n(0))),
        "highest" => single(ind::highest(c, n(0))),
        "lowest" => single(ind::lowest(c, n(0))),
        "atr" => single(ind::atr(&d.high, &d.low, c, n(0))),
        "macd" => {
            let m = ind::macd(c, n(0), n(1), n(2)).unwrap();
            vec![("macd", m.macd), ("signal", m.signal), ("histogram", m.histogram)]
        }
        "bollinger" => {
            let b = ind::bollinger(c, n(0), p[1]).unwrap();
            vec![("upper", b.upper), ("middle", b.middle), ("lower", b.lower)]
        }
        other => panic!("no reference for {other}"),
    }
}

/// Compare JS bit patterns with the expected values: NaN positions equal, the rest bitwise.
fn assert_bits(label: &str, got: &Json, want: &[f64]) {
    let got = got.as_array().unwrap_or_else(|| panic!("{label}: not an array: {got}"));
    assert_eq!(got.len(), want.len(), "{label}: length");
    for (i, (g, &w)) in got.iter().zip(want).enumerate() {
        let g = u64::from_str_radix(g.as_str().unwrap(), 16).unwrap();
        let gf = f64::from_bits(g);
        if w.is_nan() {
            assert!(gf.is_nan(), "{label}[{i}]: want NaN, got {gf}");
        } else {
            assert_eq!(g, w.to_bits(), "{label}[{i}]: want {w}, got {gf}");
        }
    }
}

fn assert_outputs(label: &str, got: &Json, want: &[(&str, Vec<f64>)]) {
    let obj = got.as_object().unwrap_or_else(|| panic!("{label}: {got}"));
    assert_eq!(obj.len(), want.len(), "{label}: output names {got}");
    for (name, series) in want {
        assert_bits(&format!("{label}.{name}"), &obj[*name], series);
    }
}

fn cases_json() -> Json {
    Json::Array(cases().into_iter().map(|(name, p)| json!([name, p])).collect())
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn array_form_matches_rust_bitwise() {
    let mut sb = load(&format!(
        "{APPLY_GAPS}
        function st_heartbeat(ctx, d) {{
            applyGaps(d);
            const I = ctx.indicator;
            return d.cases.map(([name, p]) => {{
                const series = name === 'atr' ? [d.high, d.low, d.close] : [d.close];
                return outBits(I[name](...series, ...p));
            }});
        }}"
    ));
    for (label, data) in [("clean", clean()), ("gappy", gappy())] {
        let mut arg = data.json();
        arg["cases"] = cases_json();
        let out = heartbeat(&mut sb, arg).unwrap();
        for (k, (name, p)) in cases().iter().enumerate() {
            let want = reference(name, p, &data);
            assert_outputs(&format!("{label} {name}{p:?}"), &out[k], &want);
        }
    }
}

#[test]
fn warmup_values_are_real_nan_numbers() {
    let mut sb = load(
        r#"
        function st_heartbeat(ctx) {
            const r = ctx.indicator.sma([1, 2, 3, 4], 3);
            const m = ctx.indicator.macd([1, 2, 3, 4, 5, 6], 2, 3, 2);
            return [typeof r[0], Number.isNaN(r[0]), Number.isNaN(r[1]), r[2], r[3],
                    typeof m.signal[0], Number.isNaN(m.signal[0]), r.length, Array.isArray(r)];
        }
        "#,
    );
    let out = heartbeat(&mut sb, Json::Null).unwrap();
    assert_eq!(out, json!(["number", true, true, 2, 3, "number", true, 4, true]));
}

#[test]
fn options_object_and_typed_array_forms_equal_positional() {
    let mut sb = load(&format!(
        "{APPLY_GAPS}
        function same(a, b) {{
            if (Array.isArray(a)) {{
                return Array.isArray(b) && a.length === b.length && a.every((x, i) => Object.is(x, b[i]));
            }}
            const ka = Object.keys(a), kb = Object.keys(b);
            return ka.join() === kb.join() && ka.every(k => same(a[k], b[k]));
        }}
        const f64 = a => Float64Array.from(a, x => (x === null || x === 'NaN') ? NaN : x);
        function st_heartbeat(ctx, d) {{
            applyGaps(d);
            const I = ctx.indicator, c = d.close, h = d.high, l = d.low;
            const checks = {{
                sma: same(I.sma(c, {{period: 10}}), I.sma(c, 10)),
                ema: same(I.ema(c, {{period: 10}}), I.ema(c, 10)),
                wma: same(I.wma(c, {{period: 4}}), I.wma(c, 4)),
                rsi: same(I.rsi(c, {{period: 14}}), I.rsi(c, 14)),
                stdev: same(I.stdev(c, {{period: 9}}), I.stdev(c, 9)),
                highest: same(I.highest(c, {{period: 9}}), I.highest(c, 9)),
                lowest: same(I.lowest(c, {{period: 9}}), I.lowest(c, 9)),
                macd: same(I.macd(c, {{fast: 12, slow: 26, signal: 9}}), I.macd(c, 12, 26, 9)),
                bollinger: same(I.bollinger(c, {{period: 20, k: 2}}), I.bollinger(c, 20, 2)),
                bollingerStddev: same(I.bollinger(c, {{period: 20, stddev: 2}}), I.bollinger(c, 20, 2)),
                atr: same(I.atr(h, l, c, {{period: 14}}), I.atr(h, l, c, 14)),
                undefinedOptionIgnored: same(I.sma(c, {{period: 10, other: undefined}}), I.sma(c, 10)),
                float64Array: same(I.sma(f64(c), 10), I.sma(c, 10)),
                int32Array: same(I.sma(Int32Array.from([1, 2, 3, 4]), 2), I.sma([1, 2, 3, 4], 2)),
                atrTyped: same(I.atr(f64(h), f64(l), f64(c), 5),
                               I.atr(h, l, c, 5)),
                caseInsensitiveCreate: ctx.indicator.create(' SMA ', 3).name === 'sma',
                empty: same(I.sma([], 3), []),
            }};
            return Object.keys(checks).filter(k => checks[k] !== true);
        }}"
    ));
    let out = heartbeat(&mut sb, gappy().json()).unwrap();
    assert_eq!(out, json!([]), "failed checks");
}

#[test]
fn streaming_matches_array_form() {
    let mut sb = load(&format!(
        "{APPLY_GAPS}
        const NAMES = {{macd: ['fast', 'slow', 'signal'], bollinger: ['period', 'k']}};
        function st_heartbeat(ctx, d) {{
            applyGaps(d);
            const I = ctx.indicator, n = d.close.length;
            const results = d.cases.map(([name, p]) => {{
                // Options object for odd cases, positional numbers for even ones.
                const names = NAMES[name] || ['period'];
                const opts = {{}};
                names.forEach((k, i) => opts[k] = p[i]);
                const s = I.create(name, opts);
                const s2 = I.create(name, ...p);
                const outs = {{}}, outs2 = {{}};
                for (let i = 0; i < n; i++) {{
                    const v = name === 'atr' ? s.update(d.high[i], d.low[i], d.close[i]) : s.update(d.close[i]);
                    const v2 = name === 'atr'
                        ? s2.update({{high: d.high[i], low: d.low[i], close: d.close[i]}})
                        : s2.update({{close: d.close[i], open: 'ignored'}});
                    for (const [o, val] of [[outs, v], [outs2, v2]]) {{
                        const b = outBit(val);
                        for (const k of Object.keys(b)) (o[k] = o[k] || []).push(b[k]);
                    }}
                }}
                return [outs, outs2, s.name, s.warmup];
            }});
            return results;
        }}"
    ));
    for (label, data) in [("clean", clean()), ("gappy", gappy())] {
        let mut arg = data.json();
        arg["cases"] = cases_json();
        let out = heartbeat(&mut sb, arg).unwrap();
        for (k, (name, p)) in cases().iter().enumerate() {
            let want = reference(name, p, &data);
            let label = format!("{label} streaming {name}{p:?}");
            assert_outputs(&label, &out[k][0], &want);
            assert_outputs(&format!("{label} (object input)"), &out[k][1], &want);
            assert_eq!(out[k][2], json!(name), "{label}: name");
            let mut params = ind::Params::new();
            let names: &[&str] = match *name {
                "macd" => &["fast", "slow", "signal"],
                "bollinger" => &["period", "k"],
                _ => &["period"],
            };
            for (n, v) in names.iter().zip(p) {
                params.set(n, *v);
            }
            let warmup = ind::Spec::parse(name, &params).unwrap().warmup();
            assert_eq!(out[k][3], json!(warmup), "{label}: warmup");
        }
    }
}

#[test]
fn streaming_state_lives_across_calls_and_per_sandbox() {
    let src = r#"
        let s, m;
        function st_init(ctx) {
            s = ctx.indicator.create('ema', {period: 5});
            m = ctx.indicator.create('macd', 3, 6, 2);
        }
        function st_heartbeat(ctx, x) { return [outBit(s.update(x)), outBit(m.update(x))]; }
    "#;
    let (mut a, mut b) = (load(src), load(src));
    a.call(Hook::Init, None, &mut NoApi).unwrap();
    b.call(Hook::Init, None, &mut NoApi).unwrap();
    let da = clean().close;
    let db = gappy().close;
    let mut ema_a = ind::create("ema", &ind::Params::new().with("period", 5.0)).unwrap();
    let mut ema_b = ema_a.clone();
    let macd_params = ind::Params::new().with("fast", 3.0).with("slow", 6.0).with("signal", 2.0);
    let mut macd_a = ind::create("macd", &macd_params).unwrap();
    let mut macd_b = macd_a.clone();
    // Interleave the two sandboxes: each keeps its own state.
    for i in 0..100 {
        for (sb, x, ema, macd) in [(&mut a, da[i], &mut ema_a, &mut macd_a), (&mut b, db[i], &mut ema_b, &mut macd_b)] {
            let out = heartbeat(sb, json!(x)).unwrap();
            let e = ema.update(ind::Bar::from_close(x)).as_single().unwrap();
            assert_bits("ema", &json!([out[0]["value"]]), &[e]);
            let m = macd.update(ind::Bar::from_close(x));
            for name in ind::MACD_OUTPUTS {
                assert_bits(name, &json!([out[1][name]]), &[m.get(name).unwrap()]);
            }
        }
    }
}

#[test]
fn bad_arguments_throw_errors_and_the_sandbox_survives() {
    let mut sb = load(
        r#"
        function st_heartbeat(ctx) {
            const I = ctx.indicator, c = [1, 2, 3, 4, 5, 6, 7, 8];
            const huge = []; huge.length = 4294967295;
            const big = []; big.length = 2 ** 31;
            const trap = [1, 2, 3];
            Object.defineProperty(trap, 1, { get() { throw new Error('boom from getter'); } });
            const s = I.create('sma', {period: 3}), a = I.create('atr', {period: 3});
            const bad = [
                ['period 0', () => I.sma(c, 0), 'ctx.indicator.sma(values, period): invalid period = 0'],
                ['fractional period', () => I.ema(c, 2.5), 'invalid period = 2.5'],
                ['negative period', () => I.wma(c, -3), 'invalid period = -3'],
                ['NaN period', () => I.rsi(c, NaN), 'invalid period = NaN'],
                ['huge period', () => I.sma(c, 1e9), 'invalid period = 1000000000'],
                ['string period', () => I.sma(c, '5'), 'period must be a number, got a string'],
                ['missing period', () => I.sma(c), 'missing parameter "period"'],
                ['too many args', () => I.sma(c, 3, 4), 'too many arguments'],
                ['non-array', () => I.sma('abc', 3), 'values must be an array of numbers, got a string'],
                ['object as series', () => I.stdev({length: 3}, 3), 'got an object'],
                ['no args', () => I.highest(), 'values must be an array of numbers, got undefined'],
                ['bad element', () => I.sma([1, 'x', 3], 2), 'values[1] is a string'],
                ['bool element', () => I.lowest([1, true], 2), 'values[1] is a boolean'],
                ['bigint element', () => I.sma([1, 2n], 2), 'values[1] is a bigint'],
                ['object element', () => I.sma([1, {}], 2), 'values[1] is an object'],
                ['proxy', () => I.sma(new Proxy([1, 2], {}), 2), 'must be an array of numbers'],
                ['huge sparse array', () => I.sma(huge, 3), 'has 4294967295 elements; at most 1000000'],
                ['2^31 sparse array', () => I.sma(big, 3), 'has 2147483648 elements'],
                ['throwing getter', () => I.sma(trap, 2), 'boom from getter'],
                ['unknown option', () => I.sma(c, {period: 3, perod: 4}), 'unknown parameter "perod"'],
                ['macd fast >= slow', () => I.macd(c, 26, 12, 9), 'invalid fast = 26: must be less than slow'],
                ['macd missing signal', () => I.macd(c, 12, 26), 'missing parameter "signal"'],
                ['bollinger missing k', () => I.bollinger(c, 20), 'missing parameter "k"'],
                ['bollinger negative k', () => I.bollinger(c, 20, -1), 'invalid k = -1'],
                ['bollinger k and stddev', () => I.bollinger(c, {period: 3, k: 2, stddev: 2}), 'not both'],
                ['atr length mismatch', () => I.atr([1, 2], [1, 2], [1, 2, 3], 2), 'high has 2 values but close has 3'],
                ['atr missing close', () => I.atr([1], [1]), 'close must be an array of numbers, got undefined'],
                ['create unknown', () => I.create('foo', {period: 3}), 'unknown indicator "foo"'],
                ['create no name', () => I.create(), 'name must be a string, got nothing'],
                ['create numeric name', () => I.create(5), 'name must be a string, got a number'],
                ['create missing params', () => I.create('sma'), `ctx.indicator.create('sma', {period}): sma: missing parameter "period"`],
                ['create period 0', () => I.create('ema', {period: 0}), 'invalid period = 0'],
                ['update no args', () => s.update(), 'sma.update(x): expected 1 argument, got 0'],
                ['update string', () => s.update('x'), 'sma.update(x): x is a string'],
                ['update two args', () => s.update(1, 2), 'expected 1 argument, got 2'],
                ['update object without close', () => s.update({price: 1}), 'sma.update(x): the object has no close property'],
                ['atr update object without low', () => a.update({high: 1, close: 1}), 'the object has no low property'],
                ['atr update 2 args', () => a.update(1, 2), 'atr.update(high, low, close): expected 3 arguments'],
                ['atr update bad field', () => a.update({high: 1, low: 'x', close: 1}), 'low is a string'],
            ];
            const problems = [];
            for (const [label, f, want] of bad) {
                try {
                    f();
                    problems.push(label + ': did not throw');
                } catch (e) {
                    if (!(e instanceof Error)) problems.push(label + ': threw a non-Error ' + String(e));
                    else if (!e.message.includes(want)) problems.push(label + ': ' + e.message);
                }
            }
            // Still usable after all that.
            problems.push(...I.sma([1, 2, 3], 2).slice(1).map(String));
            problems.push(String(s.update(1)));
            // Re-entrant use from a getter is fine (inputs are read before the state is touched).
            const r = I.create('sma', 1);
            problems.push(String(r.update({ get close() { return r.update(7) + 1; } })));
            return problems;
        }
        function st_on_data(ctx, arg) {
            if (arg === 'throw') return ctx.indicator.sma('oops', 3);
            return ctx.indicator.sma([2, 4, 6], 2);
        }
        "#,
    );
    let out = heartbeat(&mut sb, Json::Null).unwrap();
    assert_eq!(out, json!(["1.5", "2.5", "NaN", "8"]));
    // An uncaught indicator error fails the call with the JS error, and the sandbox lives on.
    let err = sb.call(Hook::OnData, Some(json!("throw")), &mut NoApi).unwrap_err();
    match &err {
        SandboxError::Thrown { message, .. } => assert_eq!(
            message,
            "TypeError: ctx.indicator.sma(values, period): values must be an array of numbers, \
             got a string"
        ),
        other => panic!("unexpected {other:?}"),
    }
    assert!(!sb.is_poisoned());
    let ok = sb.call(Hook::OnData, None, &mut NoApi).unwrap();
    assert_eq!(ok.value, json!(["NaN", 3, 5]));
}

#[test]
fn live_streaming_indicators_are_limited_and_freed() {
    let mut sb = load(
        r#"
        let kept = [];
        function tryCreate(ctx, ...args) {
            try { ctx.indicator.create(...args); return 'ok'; } catch (e) { return e.message; }
        }
        function st_heartbeat(ctx, d) {
            const I = ctx.indicator, out = {};
            // Fill up with indicators kept alive only through reference cycles, so that only a
            // GC frees them once dropped.
            for (let i = 0; i < d.maxLive; i++) {
                const s = I.create('ema', {period: 3});
                s.self = s;
                kept.push(s);
            }
            out.overCount = tryCreate(ctx, 'rsi', 3);
            kept = [];
            out.afterDrop = tryCreate(ctx, 'rsi', 3);
            // The window budget: sum of the windowed indicators' periods.
            const n = d.maxWindow / 100000;
            for (let i = 0; i < n; i++) kept.push(I.create('sma', {period: 100000}));
            out.overWindow = tryCreate(ctx, 'highest', 1);
            out.recursiveStillFits = tryCreate(ctx, 'ema', 100000);
            kept.pop();
            out.afterPop = tryCreate(ctx, 'bollinger', {period: 100000, k: 2});
            kept = [];
            return out;
        }
        "#,
    );
    let out = heartbeat(&mut sb, json!({"maxLive": MAX_LIVE_STREAMING, "maxWindow": MAX_LIVE_WINDOW})).unwrap();
    let over = out["overCount"].as_str().unwrap();
    assert!(
        over.starts_with("ctx.indicator.create('rsi', {period}): too many live streaming indicators (10000 alive"),
        "{over}"
    );
    assert_eq!(out["afterDrop"], json!("ok"));
    let over = out["overWindow"].as_str().unwrap();
    assert!(
        over.contains("too many live streaming indicators") && over.contains("holding 2000000 window values"),
        "{over}"
    );
    assert_eq!(out["recursiveStillFits"], json!("ok"));
    assert_eq!(out["afterPop"], json!("ok"));
    // The next call starts from what is still alive: nothing.
    let again = heartbeat(&mut sb, json!({"maxLive": MAX_LIVE_STREAMING, "maxWindow": MAX_LIVE_WINDOW})).unwrap();
    assert_eq!(again, out);
}

#[test]
fn sma_over_1000_bars_from_js_is_cheap_enough() {
    let mut sb = load(
        r#"
        function st_heartbeat(ctx, closes) {
            let r;
            for (let i = 0; i < 200; i++) r = ctx.indicator.sma(closes, 20);
            return [r.length, bits(r[18]), bits(r[19]), bits(r[999])];
        }
        "#,
    );
    let data = Data::new(1000, 3, vec![]);
    let out = heartbeat(&mut sb, json!(data.close)).unwrap();
    let want = ind::sma(&data.close, 20).unwrap();
    assert_eq!(out[0], json!(1000));
    assert_bits("sma", &json!([out[1], out[2], out[3]]), &[want[18], want[19], want[999]]);
    // 200 calls over 1000 bars within the default fuel, barely touching it.
    assert!(sb.last_fuel_used() < DEFAULT_CALL_FUEL / 10, "{}", sb.last_fuel_used());
}

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
    for (name, out) in
        [("macd", run("macd", macd_params(12, 26, 9))), ("bollinger", run("bollinger", period(20).with("stddev", 2.0)))]
    {
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

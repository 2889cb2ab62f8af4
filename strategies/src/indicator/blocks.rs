//! The streaming building blocks (private): seeded recursive averages, windows with
//! statistics slid in O(1), and running extremes.

use std::collections::VecDeque;

/// Non-finite inputs are treated as missing, i.e. NaN (see module docs).
pub(super) fn sanitize(x: f64) -> f64 {
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
pub(super) struct SeededAverage {
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

    pub(super) fn ema(period: usize) -> Self {
        Self::new(period, Smoothing::Exponential(2.0 / (period as f64 + 1.0)))
    }

    pub(super) fn wilder(period: usize) -> Self {
        Self::new(period, Smoothing::Wilder)
    }

    pub(super) fn is_seeded(&self) -> bool {
        self.seen >= self.period
    }

    /// Folds in `x` and answers the average, NaN until seeded.
    pub(super) fn update(&mut self, x: f64) -> f64 {
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
pub(super) trait WindowStats: Default {
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
pub(super) struct Rolling<S> {
    window: Window,
    stats: S,
    /// Slides since the last recompute; `None` while the stats are invalid.
    slides: Option<usize>,
}

impl<S: WindowStats> Rolling<S> {
    pub(super) fn new(period: usize) -> Self {
        Self { window: Window::new(period), stats: S::default(), slides: None }
    }

    /// Pushes `x`; answers the stats when the window is complete.
    pub(super) fn update(&mut self, x: f64) -> Option<&S> {
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

    pub(super) fn period(&self) -> f64 {
        self.window.cap as f64
    }
}

/// Plain sum (sma).
#[derive(Debug, Clone, Default)]
pub(super) struct SumStats {
    pub(super) sum: f64,
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
pub(super) struct WeightedStats {
    pub(super) sum: f64,
    pub(super) weighted: f64,
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
pub(super) struct MomentStats {
    /// Kept exactly like [`SumStats`], so bollinger's middle equals sma.
    sum: f64,
    /// Σ(x − mean)², never the cancellation-prone Σx² − n·mean².
    m2: f64,
}

impl MomentStats {
    pub(super) fn mean(&self, n: f64) -> f64 {
        self.sum / n
    }

    pub(super) fn stdev(&self, n: f64) -> f64 {
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
pub(super) struct Extremum {
    period: u64,
    want_max: bool,
    bar: u64,
    /// (bar, value), values strictly decreasing (max) or increasing (min).
    candidates: VecDeque<(u64, f64)>,
    last_missing: Option<u64>,
}

impl Extremum {
    pub(super) fn new(period: usize, want_max: bool) -> Self {
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

    pub(super) fn update(&mut self, x: f64) -> f64 {
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

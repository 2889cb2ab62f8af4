//! Inline SVG charts for the HTML report: time axis, value axis, lines, areas, markers.
//! No JavaScript, no external resources.

use std::fmt::Write as _;

use chrono::{Datelike, Timelike};

use super::escape::esc;
use super::utc::{datetime, month_index, month_start_ms};

/// Lines are cut to at most this many points before drawing.
pub(crate) const MAX_POINTS: usize = 2000;

const DAY: i64 = 86_400_000;
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Downsamples to at most `max` points (`max` ≥ 2): the points are cut into `max / 2`
/// buckets of consecutive points and each bucket keeps its minimum and its maximum, in time
/// order, so spikes survive. Non-finite values are dropped first.
pub(crate) fn downsample(points: &[(i64, f64)], max: usize) -> Vec<(i64, f64)> {
    downsample_with(|| points.iter().copied(), max)
}

/// [`downsample`] of the points `points()` yields (called twice), without holding them: a
/// long run's curve has tens of millions of points and the chart keeps a few thousand.
pub(crate) fn downsample_with<I: Iterator<Item = (i64, f64)>>(points: impl Fn() -> I, max: usize) -> Vec<(i64, f64)> {
    let finite = || points().filter(|p| p.1.is_finite());
    let n = finite().count();
    let max = max.max(2);
    if n <= max {
        return finite().collect();
    }
    let buckets = max / 2;
    let mut out = Vec::with_capacity(max);
    // Bucket b holds the points [b·n/buckets, (b+1)·n/buckets); keep its extremes in time order.
    let mut bucket = 0;
    let mut end = n / buckets;
    // (index among the finite points, point) of the bucket's lowest and highest so far.
    type Kept = Option<(usize, (i64, f64))>;
    let (mut low, mut high): (Kept, Kept) = (None, None);
    let mut flush = |low: &mut Kept, high: &mut Kept| {
        if let (Some(l), Some(h)) = (low.take(), high.take()) {
            let (a, b) = if l.0 <= h.0 { (l, h) } else { (h, l) };
            out.push(a.1);
            if b.0 != a.0 {
                out.push(b.1);
            }
        }
    };
    for (i, p) in finite().enumerate() {
        while i >= end {
            flush(&mut low, &mut high);
            bucket += 1;
            end = (bucket + 1) * n / buckets;
        }
        if low.is_none_or(|(_, l)| p.1 < l.1) {
            low = Some((i, p));
        }
        if high.is_none_or(|(_, h)| p.1 > h.1) {
            high = Some((i, p));
        }
    }
    flush(&mut low, &mut high);
    out
}

/// A "nice" step (1, 2, 2.5 or 5 × 10^k) giving about `target` intervals over `range`.
pub(crate) fn nice_step(range: f64, target: usize) -> f64 {
    if !(range.is_finite() && range > 0.0) {
        return 1.0;
    }
    let raw = range / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let norm = raw / mag;
    let nice = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 2.5 {
        2.5
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// `v` with the decimals `step` needs and thousands separators: "43,250", "0.0000205", "-12.5".
pub(crate) fn fmt_num(v: f64, step: f64) -> String {
    let decimals = if step >= 1.0 || !step.is_finite() || step <= 0.0 {
        0
    } else {
        ((-step.log10()) - 1e-9).ceil().clamp(0.0, 12.0) as usize
    };
    // 2.5 × 10^k steps need one more decimal.
    let decimals = if step > 0.0 && ((step / 10f64.powi(-(decimals as i32))).fract() - 0.5).abs() < 1e-6 {
        decimals + 1
    } else {
        decimals
    };
    let s = format!("{:.*}", decimals, v);
    let (sign, s) = s.strip_prefix('-').map_or(("", s.as_str()), |r| ("-", r));
    let (int, frac) = s.split_once('.').map_or((s, None), |(a, b)| (a, Some(b)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    let zero = int.chars().all(|c| c == '0') && frac.is_none_or(|f| f.chars().all(|c| c == '0'));
    let sign = if zero { "" } else { sign };
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A value axis: a padded domain and the ticks inside it.
pub(crate) struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
    pub ticks: Vec<f64>,
}

impl Axis {
    /// Covers `[lo, hi]` with 5% padding (none past `clamp_hi` if given, e.g. 0 for drawdowns).
    pub(crate) fn new(lo: f64, hi: f64, target: usize, clamp_hi: Option<f64>) -> Axis {
        let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.01 };
            lo -= pad;
            hi += pad;
        }
        let pad = (hi - lo) * 0.05;
        lo -= pad;
        hi += pad;
        if let Some(c) = clamp_hi {
            hi = hi.min(c);
        }
        let step = nice_step(hi - lo, target);
        let mut ticks = Vec::new();
        let mut k = (lo / step).ceil();
        while k * step <= hi + step * 1e-9 && ticks.len() < 50 {
            ticks.push(k * step);
            k += 1.0;
        }
        Axis { lo, hi, step, ticks }
    }

    /// The tick label, with a typographic minus.
    pub(crate) fn label(&self, v: f64) -> String {
        fmt_num(v, self.step).replace('-', "\u{2212}")
    }

    /// Characters in the widest tick label.
    pub(crate) fn label_chars(&self, suffix: &str) -> usize {
        self.ticks.iter().map(|t| self.label(*t).chars().count() + suffix.len()).max().unwrap_or(1)
    }
}

/// A time-axis tick: its label and, on a second line, the date or year when it changes.
pub(crate) struct TimeTick {
    pub t: i64,
    pub main: String,
    pub sub: Option<String>,
}

/// Ticks at round UTC times (minutes, hours, days, Mondays, month and year starts),
/// at most `max` of them.
pub(crate) fn time_ticks(x0: i64, x1: i64, max: usize) -> Vec<TimeTick> {
    if x1 <= x0 {
        return vec![label_tick(x0, 60_000, None)];
    }
    let span = (x1 - x0) as f64;
    let max = max.max(2) as f64;
    const FIXED: [i64; 21] = [
        1000,
        2000,
        5000,
        10_000,
        15_000,
        30_000,
        60_000,
        120_000,
        300_000,
        600_000,
        900_000,
        1_800_000,
        3_600_000,
        7_200_000,
        10_800_000,
        14_400_000,
        21_600_000,
        43_200_000,
        DAY,
        2 * DAY,
        7 * DAY,
    ];
    let mut out = Vec::new();
    if let Some(&step) = FIXED.iter().find(|&&s| span / s as f64 <= max) {
        // Weeks start on Monday (1970-01-05 is one).
        let origin = if step == 7 * DAY { 4 * DAY } else { 0 };
        let mut t = origin + (x0 - origin).div_euclid(step) * step;
        if t < x0 {
            t += step;
        }
        while t <= x1 {
            out.push(t);
            t += step;
        }
        return label_ticks(&out, step);
    }
    // Half months: the 1st and the 16th.
    if span / (15.2 * DAY as f64) <= max {
        let mut idx = month_index(x0);
        'months: loop {
            for day in [1, 16] {
                let t = month_start_ms(idx, day);
                if t > x1 {
                    break 'months;
                }
                if t >= x0 {
                    out.push(t);
                }
            }
            idx += 1;
        }
        return label_ticks(&out, 15 * DAY);
    }
    // Calendar steps: months, then years.
    for months in [1i64, 2, 3, 6, 12, 24, 60, 120, 240, 600, 1200] {
        if span / (months as f64 * 30.44 * DAY as f64) > max {
            continue;
        }
        let mut idx = month_index(x0).div_euclid(months) * months;
        loop {
            let t = month_start_ms(idx, 1);
            if t > x1 {
                break;
            }
            if t >= x0 {
                out.push(t);
            }
            idx += months;
        }
        return label_ticks(&out, months * 31 * DAY);
    }
    out.push(x0);
    label_ticks(&out, 365 * DAY)
}

fn label_ticks(ts: &[i64], step: i64) -> Vec<TimeTick> {
    let mut prev = None;
    ts.iter()
        .map(|&t| {
            let tick = label_tick(t, step, prev);
            prev = Some(t);
            tick
        })
        .collect()
}

fn label_tick(t: i64, step: i64, prev: Option<i64>) -> TimeTick {
    let time = datetime(t);
    let (y, m, d, h, mi, s) = (time.year(), time.month(), time.day(), time.hour(), time.minute(), time.second());
    let mon = MONTHS[time.month0() as usize];
    let prev = prev.map(|p| {
        let p = datetime(p);
        (p.year(), p.month(), p.day())
    });
    if step < DAY {
        let main = if step < 60_000 { format!("{h:02}:{mi:02}:{s:02}") } else { format!("{h:02}:{mi:02}") };
        let new_day = prev.is_none_or(|p| (p.0, p.1, p.2) != (y, m, d));
        let sub = new_day.then(|| format!("{mon} {d}, {y}"));
        TimeTick { t, main, sub }
    } else if step < 28 * DAY {
        let sub = prev.is_none_or(|p| p.0 != y).then(|| y.to_string());
        TimeTick { t, main: format!("{mon} {d}"), sub }
    } else if step < 360 * DAY {
        let sub = prev.is_none_or(|p| p.0 != y).then(|| y.to_string());
        TimeTick { t, main: mon.to_string(), sub }
    } else {
        TimeTick { t, main: y.to_string(), sub: None }
    }
}

/// Plot geometry: the SVG size, the plot area's margins and the two domains.
#[derive(Clone, Copy)]
pub(crate) struct Frame {
    pub w: f64,
    pub h: f64,
    pub left: f64,
    pub right: f64,
    pub top: f64,
    pub bottom: f64,
    pub x0: i64,
    pub x1: i64,
    pub y0: f64,
    pub y1: f64,
}

impl Frame {
    pub(crate) fn px(&self, t: i64) -> f64 {
        let span = (self.x1 - self.x0).max(1) as f64;
        let x = if self.x1 > self.x0 { (t - self.x0) as f64 / span } else { 0.5 };
        self.left + x * (self.w - self.left - self.right)
    }
    pub(crate) fn py(&self, v: f64) -> f64 {
        let span = self.y1 - self.y0;
        let y = if span > 0.0 { (self.y1 - v) / span } else { 0.5 };
        self.top + y * (self.h - self.top - self.bottom)
    }
    fn plot_bottom(&self) -> f64 {
        self.h - self.bottom
    }
}

/// What is drawn inside the plot area.
pub(crate) enum Layer<'a> {
    Line {
        points: &'a [(i64, f64)],
        color: &'a str,
        width: f64,
    },
    /// A filled area between the line and `base`, with the line on top.
    Area {
        points: &'a [(i64, f64)],
        base: f64,
        color: &'a str,
        opacity: f64,
    },
    /// A dashed horizontal reference line with a label at its right end.
    HRule {
        y: f64,
        color: &'a str,
        label: String,
    },
    Markers(&'a [Marker]),
    /// Thin connectors (e.g. a trade's entry to its exit).
    Segments {
        segs: &'a [(i64, f64, i64, f64, &'a str)],
        opacity: f64,
    },
}

pub(crate) struct Marker {
    pub t: i64,
    pub v: f64,
    pub up: bool,
    pub color: &'static str,
    pub title: Option<String>,
}

/// Options of one chart.
pub(crate) struct ChartOpts<'a> {
    pub frame: Frame,
    pub y_ticks: &'a Axis,
    pub y_suffix: &'a str,
    pub x_ticks: &'a [TimeTick],
    pub x_labels: bool,
    pub aria: &'a str,
    /// Unique within the page (the clip path's id).
    pub id: &'a str,
}

fn path_d(points: &[(i64, f64)], f: &Frame) -> String {
    let mut d = String::with_capacity(points.len() * 14);
    for (i, (t, v)) in points.iter().enumerate() {
        let _ = write!(d, "{}{:.1},{:.1}", if i == 0 { 'M' } else { 'L' }, f.px(*t), f.py(*v));
    }
    d
}

/// One `<svg>` chart.
pub(crate) fn chart(o: &ChartOpts, layers: &[Layer]) -> String {
    let f = &o.frame;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{aria}">"#,
        w = f.w,
        h = f.h,
        aria = esc(o.aria)
    );
    // Grid and axes.
    s.push_str(r#"<g class="grid">"#);
    for &v in &o.y_ticks.ticks {
        let y = f.py(v);
        let _ = write!(s, r#"<line x1="{:.1}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/>"#, f.left, f.w - f.right);
    }
    for tick in o.x_ticks {
        let x = f.px(tick.t);
        let _ = write!(s, r#"<line x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}"/>"#, f.top, f.plot_bottom());
    }
    s.push_str("</g>");
    let _ = write!(
        s,
        r#"<line class="axis" x1="{:.1}" x2="{:.1}" y1="{b:.1}" y2="{b:.1}"/>"#,
        f.left,
        f.w - f.right,
        b = f.plot_bottom()
    );
    s.push_str(r#"<g class="ylabels">"#);
    for &v in &o.y_ticks.ticks {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" dominant-baseline="middle">{}{}</text>"#,
            f.left - 8.0,
            f.py(v),
            esc(&o.y_ticks.label(v)),
            esc(o.y_suffix)
        );
    }
    s.push_str("</g>");
    if o.x_labels {
        s.push_str(r#"<g class="xlabels">"#);
        for tick in o.x_ticks {
            // Labels at the edges are anchored inside the SVG instead of being cut off.
            let chars = tick.main.chars().count().max(tick.sub.as_ref().map_or(0, |s| s.chars().count()));
            let half = chars as f64 * 3.1;
            let x = f.px(tick.t);
            let (x, anchor) = if x + half > f.w - 1.0 {
                (f.w - 1.0, "end")
            } else if x - half < 1.0 {
                (1.0, "start")
            } else {
                (x, "middle")
            };
            let y = f.plot_bottom() + 16.0;
            let _ = write!(s, r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}">{}</text>"#, esc(&tick.main));
            if let Some(sub) = &tick.sub {
                let _ = write!(
                    s,
                    r#"<text class="sub" x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
                    y + 14.0,
                    esc(sub)
                );
            }
        }
        s.push_str("</g>");
    }
    // Clip the data to the plot area.
    let clip = format!("clip-{}", o.id);
    let _ = write!(
        s,
        r#"<defs><clipPath id="{clip}"><rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"/></clipPath></defs><g clip-path="url(#{clip})">"#,
        f.left,
        f.top - 6.0,
        f.w - f.left - f.right,
        f.h - f.top - f.bottom + 12.0
    );
    for layer in layers {
        match layer {
            Layer::Line { points, color, width } if !points.is_empty() => {
                let _ = write!(
                    s,
                    r#"<path d="{}" fill="none" stroke="{color}" stroke-width="{width}" stroke-linejoin="round"/>"#,
                    path_d(points, f)
                );
            }
            Layer::Area { points, base, color, opacity } if !points.is_empty() => {
                let line = path_d(points, f);
                let yb = f.py(*base);
                let _ = write!(
                    s,
                    r#"<path d="{line}L{:.1},{yb:.1}L{:.1},{yb:.1}Z" fill="{color}" fill-opacity="{opacity}" stroke="none"/><path d="{line}" fill="none" stroke="{color}" stroke-width="1.4" stroke-linejoin="round"/>"#,
                    f.px(points[points.len() - 1].0),
                    f.px(points[0].0),
                );
            }
            Layer::HRule { y, color, label } => {
                let py = f.py(*y);
                let _ = write!(
                    s,
                    r#"<line x1="{:.1}" x2="{:.1}" y1="{py:.1}" y2="{py:.1}" stroke="{color}" stroke-dasharray="4 4" stroke-width="1"/><text class="rule" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                    f.left,
                    f.w - f.right,
                    f.w - f.right - 4.0,
                    py - 5.0,
                    esc(label)
                );
            }
            Layer::Segments { segs, opacity } => {
                for (t0, v0, t1, v1, color) in segs.iter() {
                    let _ = write!(
                        s,
                        r#"<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{color}" stroke-opacity="{opacity}" stroke-width="1.2" stroke-dasharray="3 2"/>"#,
                        f.px(*t0),
                        f.py(*v0),
                        f.px(*t1),
                        f.py(*v1)
                    );
                }
            }
            Layer::Markers(markers) => {
                for mk in markers.iter() {
                    let (x, y) = (f.px(mk.t), f.py(mk.v));
                    // ▲ sits just below the point, ▼ just above, tips touching it.
                    let d = if mk.up {
                        format!("M{x:.1},{:.1}l5,8.5h-10z", y + 1.0)
                    } else {
                        format!("M{x:.1},{:.1}l5,-8.5h-10z", y - 1.0)
                    };
                    let _ = write!(s, r#"<path class="mk" d="{d}" fill="{}">"#, mk.color);
                    if let Some(t) = &mk.title {
                        let _ = write!(s, "<title>{}</title>", esc(t));
                    }
                    s.push_str("</path>");
                }
            }
            _ => {}
        }
    }
    s.push_str("</g></svg>");
    s
}

//! `report.html`: one self-contained page (inline CSS and SVG, no script, no external resource).

use std::fmt::Write as _;

use super::escape::esc;
use super::metrics::to_f64;
use super::svg::{self, Axis, ChartOpts, Frame, Layer, Marker, MAX_POINTS};
use super::utc::short_time;
use super::{human_duration, Summary};
use crate::record::{RunRecord, Trade};

/// Rows of the trades table.
pub(crate) const MAX_TRADE_ROWS: usize = 500;
/// Trades drawn as markers per price chart.
const MAX_TRADE_MARKERS: usize = 2000;
/// Trades joined by entry→exit connectors per price chart (more is clutter).
const MAX_CONNECTORS: usize = 300;

const ACCENT: &str = "#2563eb";
const LONG: &str = "#16a34a";
const SHORT: &str = "#dc2626";
const NEG: &str = "#dc2626";
const SERIES_COLORS: [&str; 6] = ["#7c3aed", "#0891b2", "#d97706", "#db2777", "#059669", "#4f46e5"];

const WIDE: f64 = 1100.0;

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{v:.2}%"))
}

fn ratio(x: Option<f64>) -> String {
    x.map_or_else(|| "—".into(), |v| format!("{v:.2}"))
}

fn signed_class(x: Option<f64>) -> &'static str {
    match x {
        Some(v) if v > 0.0 => "pos",
        Some(v) if v < 0.0 => "neg",
        _ => "",
    }
}

fn int(n: u64) -> String {
    svg::fmt_num(n as f64, 1.0)
}

const CSS: &str = r#"
:root{--fg:#1f2937;--muted:#6b7280;--faint:#9ca3af;--line:#e5e7eb;--bg:#f5f6f8;--card:#fff;--pos:#15803d;--neg:#b91c1c;--accent:#2563eb}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Noto Sans","Liberation Sans",Arial,sans-serif}
main{max-width:1180px;margin:0 auto;padding:28px 24px 40px}
.eyebrow{font-size:12px;letter-spacing:.08em;text-transform:uppercase;color:var(--muted);font-weight:600}
h1{font-size:28px;line-height:1.2;margin:4px 0 10px;font-weight:700;letter-spacing:-.01em}
h2{font-size:16px;margin:0 0 12px;font-weight:650}
h3{font-size:14px;margin:0 0 6px;font-weight:600}
.meta{display:flex;flex-wrap:wrap;gap:6px 22px;color:var(--muted)}
.meta b{color:var(--fg);font-weight:600;margin-left:4px}
.params{margin-top:10px;display:flex;flex-wrap:wrap;gap:6px}
.pill{display:inline-block;background:#eef2ff;color:#3730a3;border-radius:999px;padding:2px 10px;font-size:12.5px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
.alert{margin:14px 0 0;padding:10px 14px;border-radius:8px;background:#fef2f2;border:1px solid #fecaca;color:#991b1b}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:18px 20px;margin:16px 0;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.kpis{display:grid;grid-template-columns:repeat(6,minmax(0,1fr));gap:12px;margin:20px 0 0}
.kpi{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:12px 16px;box-shadow:0 1px 2px rgba(16,24,40,.04)}
.kpi .label{font-size:12px;color:var(--muted);font-weight:500}
.kpi .value{font-size:22px;font-weight:650;font-variant-numeric:tabular-nums;margin-top:2px;white-space:nowrap}
.kpi .hint{font-size:12px;color:var(--faint)}
.pos{color:var(--pos)}.neg{color:var(--neg)}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:8px 40px}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;white-space:nowrap}
table.kv td:first-child{color:var(--muted)}
table.kv td:last-child{text-align:right;font-weight:550}
table.kv tr:last-child td{border-bottom:none}
td.num,th.num{text-align:right}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:12.5px}
.digest{word-break:break-all}
.trades{overflow-x:auto}
.trades table{font-size:12.5px}
.trades td{white-space:nowrap}
.trades tbody tr:nth-child(even){background:#fafafb}
.side{display:inline-block;border-radius:4px;padding:0 6px;font-size:11.5px;font-weight:600}
.side.long{background:#dcfce7;color:#166534}.side.short{background:#fee2e2;color:#991b1b}
.chart-head{display:flex;justify-content:space-between;align-items:baseline;gap:12px;flex-wrap:wrap}
.legend{display:flex;gap:14px;color:var(--muted);font-size:12px}
.legend i{font-style:normal}
.note{color:var(--muted);font-size:12.5px;margin:8px 0 0}
svg.chart{display:block;width:100%;height:auto;margin-top:6px}
svg.chart text{font:11px system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue","Noto Sans","Liberation Sans",Arial,sans-serif;fill:#6b7280;font-variant-numeric:tabular-nums}
svg.chart text.sub{fill:#9ca3af;font-size:10.5px}
svg.chart text.rule{fill:#9ca3af;font-size:10.5px}
svg.chart .grid line{stroke:#eef0f3;stroke-width:1}
svg.chart .axis{stroke:#d1d5db;stroke-width:1}
svg.chart .mk{stroke:#fff;stroke-width:.8}
.series-grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:8px 28px}
ul.notes{margin:0;padding-left:18px}
footer{color:var(--faint);font-size:12px;margin-top:22px;text-align:center}
@media (max-width:900px){.kpis{grid-template-columns:repeat(3,minmax(0,1fr))}.cols,.series-grid{grid-template-columns:1fr}}
"#;

/// The whole page.
pub fn render_html(record: &RunRecord, summary: &Summary) -> String {
    let mut h = String::with_capacity(256 * 1024);
    let title = format!("{} · backtest report", summary.strategy);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{}</title><style>{CSS}</style></head><body><main>",
        esc(&title)
    );
    header(&mut h, record, summary);
    kpis(&mut h, summary);
    summary_table(&mut h, summary);
    let (x0, x1) = time_domain(record);
    prices(&mut h, record, x0, x1);
    equity(&mut h, record, x0, x1);
    series(&mut h, record, x0, x1);
    trades(&mut h, record);
    notes(&mut h, summary);
    let _ = writeln!(
        h,
        "<footer>quantfold backtest · times in UTC · state digest <span class=\"mono\">{}</span></footer></main></body></html>",
        esc(&summary.state_digest)
    );
    h
}

fn header(h: &mut String, record: &RunRecord, s: &Summary) {
    let _ = write!(h, "<header><div class=\"eyebrow\">Backtest report</div><h1>{}</h1>", esc(&s.strategy));
    let span = record.end_ms.saturating_sub(record.start_ms);
    let symbols = if s.symbols.is_empty() { "—".to_string() } else { s.symbols.join(", ") };
    let _ = write!(
        h,
        "<div class=\"meta\"><span>Symbols<b>{}</b></span><span>Interval<b>{}</b></span><span>Period<b>{} → {} UTC</b> ({})</span><span>Bars<b>{}</b></span></div>",
        esc(&symbols),
        esc(&s.interval),
        short_time(record.start_ms),
        short_time(record.end_ms),
        human_duration(span),
        int(s.bars)
    );
    let params = param_pills(&s.params);
    if !params.is_empty() {
        h.push_str("<div class=\"params\">");
        for p in params {
            let _ = write!(h, "<span class=\"pill\">{}</span>", esc(&p));
        }
        h.push_str("</div>");
    }
    let mut alerts = Vec::new();
    if let Some(why) = s.stopped_early() {
        alerts.push(format!("The run stopped early: {why}"));
    }
    if s.strategy_errors > 0 {
        alerts.push(format!("{} strategy error(s) during the run.", s.strategy_errors));
    }
    if s.anomalies > 0 {
        alerts.push(format!("{} ledger anomal{} seen.", s.anomalies, if s.anomalies == 1 { "y" } else { "ies" }));
    }
    for a in alerts {
        let _ = write!(h, "<div class=\"alert\">{}</div>", esc(&a));
    }
    h.push_str("</header>");
}

/// "key = value" per parameter (values as compact JSON, strings unquoted).
fn param_pills(params: &serde_json::Value) -> Vec<String> {
    let show = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match params {
        serde_json::Value::Null => vec![],
        serde_json::Value::Object(map) if map.is_empty() => vec![],
        serde_json::Value::Object(map) => map.iter().map(|(k, v)| format!("{k} = {}", show(v))).collect(),
        other => vec![show(other)],
    }
}

fn kpis(h: &mut String, s: &Summary) {
    let cards: [(&str, String, &str, String); 6] = [
        (
            "Total return",
            pct(s.total_return_pct),
            signed_class(s.total_return_pct),
            format!("final {}", s.final_equity),
        ),
        (
            "CAGR",
            pct(s.cagr_pct),
            signed_class(s.cagr_pct),
            if s.cagr_pct.is_none() { "span under a day".into() } else { "annualized".into() },
        ),
        ("Sharpe", ratio(s.sharpe), "", format!("Sortino {}", ratio(s.sortino))),
        (
            "Max drawdown",
            s.max_drawdown_pct.map_or("—".into(), |v| format!("{v:.2}%")),
            if s.max_drawdown_pct.is_some_and(|v| v > 0.0) { "neg" } else { "" },
            format!("Calmar {}", ratio(s.calmar)),
        ),
        ("Win rate", pct(s.win_rate_pct), "", format!("profit factor {}", ratio(s.profit_factor))),
        ("Trades", int(s.trades), "", format!("exposure {}", pct(s.exposure_pct))),
    ];
    h.push_str("<section class=\"kpis\">");
    for (label, value, class, hint) in cards {
        let _ = write!(
            h,
            "<div class=\"kpi\"><div class=\"label\">{label}</div><div class=\"value {class}\">{}</div><div class=\"hint\">{}</div></div>",
            esc(&value),
            esc(&hint)
        );
    }
    h.push_str("</section>");
}

fn summary_table(h: &mut String, s: &Summary) {
    let left: Vec<(&str, String, &str)> = vec![
        ("Initial equity", s.initial_equity.to_string(), ""),
        ("Final equity", s.final_equity.to_string(), ""),
        ("Total return", pct(s.total_return_pct), signed_class(s.total_return_pct)),
        ("CAGR", pct(s.cagr_pct), signed_class(s.cagr_pct)),
        ("Sharpe (annualized)", ratio(s.sharpe), ""),
        ("Sortino (annualized)", ratio(s.sortino), ""),
        ("Max drawdown", pct(s.max_drawdown_pct), ""),
        ("Calmar", ratio(s.calmar), ""),
        ("Exposure", pct(s.exposure_pct), ""),
    ];
    let right: Vec<(&str, String, &str)> = vec![
        ("Trades", int(s.trades), ""),
        ("Win rate (net of fees)", pct(s.win_rate_pct), ""),
        ("Profit factor", ratio(s.profit_factor), ""),
        ("Avg trade duration", s.avg_trade_duration.clone().unwrap_or_else(|| "—".into()), ""),
        ("Fees paid", s.fees_paid.to_string(), ""),
        ("Funding (net)", s.funding_net.to_string(), ""),
        ("Orders rejected", int(s.orders_rejected), ""),
        ("Strategy errors", int(s.strategy_errors), if s.strategy_errors > 0 { "neg" } else { "" }),
        ("Ledger anomalies", int(s.anomalies), if s.anomalies > 0 { "neg" } else { "" }),
    ];
    h.push_str("<section class=\"card\"><h2>Summary</h2><div class=\"cols\">");
    for rows in [left, right] {
        h.push_str("<table class=\"kv\"><tbody>");
        for (k, v, class) in rows {
            let _ = write!(h, "<tr><td>{k}</td><td class=\"{class}\">{}</td></tr>", esc(&v));
        }
        h.push_str("</tbody></table>");
    }
    h.push_str("</div><p class=\"note\">Sharpe and Sortino from per-bar returns, risk-free rate 0, annualized with 365.25 days. Win rate and profit factor use each trade's PnL net of fees.</p></section>");
}

/// The run's time span: the recorded period, widened to cover every point drawn.
fn time_domain(r: &RunRecord) -> (i64, i64) {
    let mut lo = r.start_ms.min(r.end_ms);
    let mut hi = r.end_ms.max(r.start_ms);
    let times = r
        .equity
        .iter()
        .map(|p| p.time_ms)
        .chain(r.prices.iter().flatten().map(|p| p.time_ms))
        .chain(r.series.iter().flat_map(|s| &s.points).map(|p| p.time_ms));
    for t in times {
        lo = lo.min(t);
        hi = hi.max(t);
    }
    (lo, hi)
}

/// Left margin fitting the widest y label (11px digits ≈ 6.3px).
fn left_margin(chars: usize) -> f64 {
    (chars as f64 * 6.4 + 16.0).max(44.0)
}

fn frame(w: f64, h: f64, left: f64, x_labels: bool, x0: i64, x1: i64, y: &Axis) -> Frame {
    Frame { w, h, left, right: 14.0, top: 10.0, bottom: if x_labels { 38.0 } else { 8.0 }, x0, x1, y0: y.lo, y1: y.hi }
}

fn x_ticks(x0: i64, x1: i64, w: f64) -> Vec<svg::TimeTick> {
    svg::time_ticks(x0, x1, ((w - 80.0) / 105.0).floor() as usize)
}

fn prices(h: &mut String, r: &RunRecord, x0: i64, x1: i64) {
    let ticks = x_ticks(x0, x1, WIDE);
    for (i, sym) in r.symbols.iter().enumerate() {
        let raw: Vec<(i64, f64)> =
            r.prices.get(i).map(|ps| ps.iter().map(|p| (p.time_ms, p.close)).collect()).unwrap_or_default();
        let line = svg::downsample(&raw, MAX_POINTS);
        let sym_trades: Vec<&Trade> = r.trades.iter().filter(|t| &t.symbol == sym).collect();
        let shown = &sym_trades[..sym_trades.len().min(MAX_TRADE_MARKERS)];
        let mut markers = Vec::with_capacity(shown.len() * 2);
        let mut segs = Vec::new();
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for &(_, v) in &line {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        for t in shown {
            let color = if t.side == "short" { SHORT } else { LONG };
            let (pe, px) = (to_f64(t.entry_price), to_f64(t.exit_price));
            for v in [pe, px].into_iter().filter(|v| v.is_finite()) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
            let net = t.pnl - t.fees;
            markers.push(Marker {
                t: t.entry_time_ms,
                v: pe,
                up: true,
                color,
                title: Some(format!(
                    "{} entry {} @ {} · qty {}",
                    t.side,
                    short_time(t.entry_time_ms),
                    t.entry_price,
                    t.qty
                )),
            });
            markers.push(Marker {
                t: t.exit_time_ms,
                v: px,
                up: false,
                color,
                title: Some(format!("{} exit {} @ {} · net {}", t.side, short_time(t.exit_time_ms), t.exit_price, net)),
            });
            if sym_trades.len() <= MAX_CONNECTORS {
                segs.push((t.entry_time_ms, pe, t.exit_time_ms, px, color));
            }
        }
        if line.is_empty() && markers.is_empty() {
            continue;
        }
        let axis = Axis::new(lo, hi, 6, None);
        let f = frame(WIDE, 300.0, left_margin(axis.label_chars("")), true, x0, x1, &axis);
        let opts = ChartOpts {
            frame: f,
            y_ticks: &axis,
            y_suffix: "",
            x_ticks: &ticks,
            x_labels: true,
            aria: &format!("{sym} close price"),
            id: &format!("price{i}"),
        };
        let layers = [
            Layer::Segments { segs: &segs, opacity: 0.45 },
            Layer::Line { points: &line, color: "#334155", width: 1.3 },
            Layer::Markers(&markers),
        ];
        let _ = write!(
            h,
            "<section class=\"card\"><div class=\"chart-head\"><h2>{} · close</h2><div class=\"legend\"><i style=\"color:{LONG}\">▲ long entry</i><i style=\"color:{LONG}\">▼ long exit</i><i style=\"color:{SHORT}\">▲ short entry</i><i style=\"color:{SHORT}\">▼ short exit</i></div></div>",
            esc(sym)
        );
        h.push_str(&svg::chart(&opts, &layers));
        if sym_trades.len() > shown.len() {
            let _ = write!(
                h,
                "<p class=\"note\">Markers for the first {} of {} trades.</p>",
                int(shown.len() as u64),
                int(sym_trades.len() as u64)
            );
        }
        h.push_str("</section>");
    }
}

fn equity(h: &mut String, r: &RunRecord, x0: i64, x1: i64) {
    h.push_str("<section class=\"card\"><h2>Equity and drawdown</h2>");
    if r.equity.is_empty() {
        h.push_str("<p class=\"note\">No equity points were recorded.</p></section>");
        return;
    }
    let initial = to_f64(r.initial_equity);
    let eq_line = svg::downsample_with(|| r.equity.iter().map(|p| (p.time_ms, p.equity)), MAX_POINTS);
    // Drawdown per point against the running peak (starting at the initial equity), as a negative %.
    let drawdowns = || {
        let mut peak = initial;
        r.equity.iter().map(move |p| {
            peak = if peak.is_finite() { peak.max(p.equity) } else { p.equity };
            (p.time_ms, if peak > 0.0 { -(peak - p.equity) / peak * 100.0 } else { 0.0 })
        })
    };
    let dd_line = svg::downsample_with(drawdowns, MAX_POINTS);
    let (mut lo, mut hi) = (initial, initial);
    for &(_, v) in &eq_line {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let eq_axis = Axis::new(lo, hi, 6, None);
    let dd_min = dd_line.iter().map(|p| p.1).fold(0.0f64, f64::min);
    let dd_axis = Axis::new(if dd_min < 0.0 { dd_min } else { -1.0 }, 0.0, 3, Some(0.0));
    let left = left_margin(eq_axis.label_chars("").max(dd_axis.label_chars("%")));
    let ticks = x_ticks(x0, x1, WIDE);
    let f_eq = frame(WIDE, 280.0, left, false, x0, x1, &eq_axis);
    let f_dd = frame(WIDE, 150.0, left, true, x0, x1, &dd_axis);
    let eq_layers = [
        Layer::Area { points: &eq_line, base: eq_axis.lo, color: ACCENT, opacity: 0.07 },
        Layer::HRule { y: initial, color: "#9ca3af", label: format!("initial {}", r.initial_equity) },
    ];
    h.push_str(&svg::chart(
        &ChartOpts {
            frame: f_eq,
            y_ticks: &eq_axis,
            y_suffix: "",
            x_ticks: &ticks,
            x_labels: false,
            aria: "equity",
            id: "equity",
        },
        &eq_layers,
    ));
    h.push_str("<h3 style=\"margin-top:10px\">Drawdown</h3>");
    h.push_str(&svg::chart(
        &ChartOpts {
            frame: f_dd,
            y_ticks: &dd_axis,
            y_suffix: "%",
            x_ticks: &ticks,
            x_labels: true,
            aria: "drawdown",
            id: "drawdown",
        },
        &[Layer::Area { points: &dd_line, base: 0.0, color: NEG, opacity: 0.16 }],
    ));
    h.push_str("</section>");
}

fn series(h: &mut String, r: &RunRecord, x0: i64, x1: i64) {
    if r.series.is_empty() {
        return;
    }
    let w = 540.0;
    let ticks = x_ticks(x0, x1, w);
    h.push_str("<section class=\"card\"><h2>Recorded series</h2><div class=\"series-grid\">");
    for (i, s) in r.series.iter().enumerate() {
        let name = s.name.as_str();
        let pts: Vec<(i64, f64)> = s.points.iter().map(|p| (p.time_ms, p.value)).collect();
        let line = svg::downsample(&pts, MAX_POINTS);
        let lo = line.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let hi = line.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        let axis = Axis::new(lo, hi, 4, None);
        let f = frame(w, 190.0, left_margin(axis.label_chars("")), true, x0, x1, &axis);
        let color = SERIES_COLORS[i % SERIES_COLORS.len()];
        let _ = write!(h, "<div><h3>{}</h3>", esc(name));
        if line.is_empty() {
            h.push_str("<p class=\"note\">No finite values.</p></div>");
            continue;
        }
        h.push_str(&svg::chart(
            &ChartOpts {
                frame: f,
                y_ticks: &axis,
                y_suffix: "",
                x_ticks: &ticks,
                x_labels: true,
                aria: name,
                id: &format!("series{i}"),
            },
            &[Layer::Line { points: &line, color, width: 1.4 }],
        ));
        h.push_str("</div>");
    }
    h.push_str("</div></section>");
}

fn trades(h: &mut String, r: &RunRecord) {
    let n = r.trades.len();
    let _ = write!(h, "<section class=\"card\"><h2>Trades <span class=\"note\">({})</span></h2>", int(n as u64));
    if n == 0 {
        h.push_str("<p class=\"note\">No trades.</p></section>");
        return;
    }
    h.push_str("<div class=\"trades\"><table><thead><tr><th class=\"num\">#</th><th>Symbol</th><th>Side</th><th>Entry</th><th>Exit</th><th>Duration</th><th class=\"num\">Qty</th><th class=\"num\">Entry price</th><th class=\"num\">Exit price</th><th class=\"num\">PnL</th><th class=\"num\">Fees</th><th class=\"num\">Net PnL</th></tr></thead><tbody>");
    for (i, t) in r.trades.iter().take(MAX_TRADE_ROWS).enumerate() {
        let net = t.pnl - t.fees;
        let class = if net.is_sign_positive() && !net.is_zero() {
            "pos"
        } else if net.is_sign_negative() && !net.is_zero() {
            "neg"
        } else {
            ""
        };
        let side = if t.side == "short" { "short" } else { "long" };
        let _ = write!(
            h,
            "<tr><td class=\"num\">{}</td><td>{}</td><td><span class=\"side {side}\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td class=\"num mono\">{}</td><td class=\"num mono\">{}</td><td class=\"num mono\">{}</td><td class=\"num mono\">{}</td><td class=\"num mono\">{}</td><td class=\"num mono {class}\">{}</td></tr>",
            i + 1,
            esc(&t.symbol),
            esc(&t.side),
            short_time(t.entry_time_ms),
            short_time(t.exit_time_ms),
            human_duration(t.exit_time_ms.saturating_sub(t.entry_time_ms)),
            t.qty,
            t.entry_price,
            t.exit_price,
            t.pnl,
            t.fees,
            net
        );
    }
    h.push_str("</tbody></table></div>");
    if n > MAX_TRADE_ROWS {
        let _ = write!(
            h,
            "<p class=\"note\">Showing the first {} of {} trades; all of them are in trades.csv and trades.parquet.</p>",
            int(MAX_TRADE_ROWS as u64),
            int(n as u64)
        );
    }
    h.push_str("</section>");
}

fn notes(h: &mut String, s: &Summary) {
    h.push_str("<section class=\"card\"><h2>Data notes</h2>");
    if s.data_notes.is_empty() {
        h.push_str("<p class=\"note\">No gaps in the data.</p>");
    } else {
        h.push_str("<ul class=\"notes\">");
        for n in &s.data_notes {
            let _ = write!(h, "<li>{}</li>", esc(n));
        }
        h.push_str("</ul>");
    }
    h.push_str("</section>");
}

// Positions monitor: watches the account and alerts; trades nothing by default.
//
// On each bar (once per bar close when the data has several symbols) it reads
// the account and checks three thresholds:
//   - drawdown: equity this % or more below its running peak (the peak starts
//     at the first equity seen and only rises);
//   - margin usage: marginUsed / equity at or above marginUsedPct % (a
//     non-positive equity counts as infinite usage);
//   - liquidation distance: for each position, |mark − liquidation price| / mark
//     at or below liqDistancePct % (the mark on the wrong side of the
//     liquidation price counts as distance 0).
// Each threshold alerts through ctx.notify.telegram once when it is crossed and
// stays quiet while it stays breached; it re-arms (with a log line, no message)
// once the value is back on the safe side by at least rearmPct points (e.g.
// drawdown below maxDrawdownPct − rearmPct), so the next crossing alerts again
// and a value hovering at the threshold does not alert every bar.
// Which alerts are armed, and the peak, live in ctx.state ("monitor"), so a
// restart neither repeats an alert nor forgets the peak. Equity and drawdown
// (and margin usage and the nearest liquidation distance) are recorded with
// ctx.record each bar.
//
// demoEntry (off by default) gives it something to watch: at the first bar it
// places one market order for `exposure` times the equity, on `side`; with
// leverage above 1 (`--leverage`) that position is leveraged.
var params = {
  maxDrawdownPct: 10,  // alert when equity is this % below its peak
  marginUsedPct: 80,   // alert when marginUsed/equity reaches this %
  liqDistancePct: 10,  // alert when a position's mark is within this % of its liquidation price
  rearmPct: 1,         // hysteresis: points back on the safe side before an alert re-arms
  demoEntry: null,     // null, or {side: "buy" | "sell", exposure: 2} (notional = exposure × equity), placed at the first bar
  symbol: null,        // the symbol demoEntry trades (null: the first bar's)
  record: true,        // record equity, drawdown_pct, margin_used_pct, liq_distance_pct
};

const NAME = "positions_monitor";

let lastBar = null; // openTime of the bar already checked (several symbols share a bar)

function st_init(ctx) {
  const p = ctx.strategy.params;
  const bad = (what) => { throw new Error(NAME + ": " + what); };
  const pct = (x) => typeof x === "number" && Number.isFinite(x) && x > 0;
  if (!(pct(p.maxDrawdownPct) && p.maxDrawdownPct < 100)) bad("maxDrawdownPct must be in (0, 100), got " + p.maxDrawdownPct);
  if (!pct(p.marginUsedPct)) bad("marginUsedPct must be a positive percentage, got " + p.marginUsedPct);
  if (!(pct(p.liqDistancePct) && p.liqDistancePct < 100)) bad("liqDistancePct must be in (0, 100), got " + p.liqDistancePct);
  if (!(typeof p.rearmPct === "number" && p.rearmPct >= 0 && p.rearmPct < p.maxDrawdownPct)) bad("rearmPct must be >= 0 and below maxDrawdownPct, got " + p.rearmPct);
  const d = p.demoEntry;
  if (d !== null) {
    if (typeof d !== "object" || (d.side !== "buy" && d.side !== "sell")) bad("demoEntry must be null or {side: 'buy'|'sell', exposure}, got " + JSON.stringify(d));
    if (!(typeof d.exposure === "number" && d.exposure > 0 && d.exposure <= 100)) bad("demoEntry.exposure must be in (0, 100], got " + d.exposure);
  }
  if (p.symbol !== null && typeof p.symbol !== "string") bad("symbol must be a string or null, got " + p.symbol);
  return { symbols: [], warmup: 0 };
}

function st_heartbeat(ctx, tick) {
  const p = ctx.strategy.params;
  if (lastBar === tick.openTime) return; // another symbol of the same bar
  lastBar = tick.openTime;
  const m = ctx.state.get("monitor", { peak: null, alerted: {}, demo: false });
  const before = JSON.stringify(m);

  if (p.demoEntry !== null && !m.demo && (p.symbol === null || p.symbol === tick.symbol)) {
    m.demo = true;
    demo(ctx, p, p.symbol || tick.symbol, tick.close);
  }

  const b = ctx.api.getBalance();
  const equity = b.equity;
  if (m.peak === null || equity > m.peak) m.peak = equity;
  const drawdown = m.peak > 0 ? ((m.peak - equity) / m.peak) * 100 : 0;
  const marginUsed = equity > 0 ? (b.marginUsed / equity) * 100 : Infinity;

  const r = p.rearmPct;
  check(ctx, m, "drawdown", drawdown >= p.maxDrawdownPct, drawdown < p.maxDrawdownPct - r,
    "drawdown " + drawdown.toFixed(2) + "% from peak " + m.peak.toFixed(2) + " (equity " + equity.toFixed(2) + ") crossed " + p.maxDrawdownPct + "%");
  check(ctx, m, "margin", b.marginUsed > 0 && marginUsed >= p.marginUsedPct, !(b.marginUsed > 0) || marginUsed < p.marginUsedPct - r,
    "margin usage " + marginUsed.toFixed(2) + "% (used " + b.marginUsed.toFixed(2) + " of equity " + equity.toFixed(2) + ") crossed " + p.marginUsedPct + "%");

  let nearest = Infinity;
  const held = {};
  for (const pos of ctx.api.getPositions()) {
    held[pos.symbol] = true;
    if (pos.liquidationPrice === null || !(pos.markPrice > 0)) continue;
    const gap = pos.side === "long" ? pos.markPrice - pos.liquidationPrice : pos.liquidationPrice - pos.markPrice;
    const distance = (Math.max(gap, 0) / pos.markPrice) * 100;
    nearest = Math.min(nearest, distance);
    check(ctx, m, "liq:" + pos.symbol, distance <= p.liqDistancePct, distance > p.liqDistancePct + r,
      "liquidation distance " + distance.toFixed(2) + "% on " + pos.side + " " + pos.qty + " " + pos.symbol +
      " (mark " + pos.markPrice + ", liquidation " + pos.liquidationPrice.toFixed(2) + ") crossed " + p.liqDistancePct + "%");
  }
  // A position that is gone is no longer in danger: re-arm its alert.
  for (const key of Object.keys(m.alerted)) {
    if (key.startsWith("liq:") && !held[key.slice(4)]) check(ctx, m, key, false, true, "");
  }

  if (p.record) {
    ctx.record("equity", equity);
    ctx.record("drawdown_pct", drawdown);
    ctx.record("margin_used_pct", Number.isFinite(marginUsed) ? marginUsed : 100000);
    if (Number.isFinite(nearest)) ctx.record("liq_distance_pct", nearest);
  }
  if (JSON.stringify(m) !== before) ctx.state.set("monitor", m);
}

// Alerts when `breached` turns true while armed; re-arms once `safe`.
function check(ctx, m, key, breached, safe, message) {
  if (breached && !m.alerted[key]) {
    m.alerted[key] = true;
    ctx.notify.telegram(message);
    ctx.log.warn(NAME + ":", message);
  } else if (safe && m.alerted[key]) {
    delete m.alerted[key];
    ctx.log.info(NAME + ": " + key + " back within its threshold; alert re-armed");
  }
}

function demo(ctx, p, symbol, price) {
  if (!(typeof p.rearmPct === "number" && p.rearmPct >= 0 && p.rearmPct < p.maxDrawdownPct)) bad("rearmPct must be >= 0 and below maxDrawdownPct, got " + p.rearmPct);
  const d = p.demoEntry;
  const qty = (ctx.api.getBalance().equity * d.exposure) / price;
  const result = ctx.api.placeOrder({ symbol: symbol, side: d.side, type: "market", qty: qty });
  if (result.status !== "submitted") ctx.log.warn(NAME + ": demo entry refused:", result.reason);
  else ctx.log.info(NAME + ": demo entry " + d.side + " " + qty + " " + symbol);
}

function st_exit(ctx, reason) {
  const m = ctx.state.get("monitor", null);
  const active = m ? Object.keys(m.alerted) : [];
  ctx.log.info(NAME + " stopping (" + (active.length ? "breached: " + active.join(", ") : "all clear") + "):", reason);
}

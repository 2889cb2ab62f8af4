// xLP hedger: holds a perpetual hedge equal and opposite to an LP's exposure.
//
// The target exposure (in base units, e.g. the BTC a liquidity position holds;
// positive = long exposure) arrives as the external series `series` through
// st_on_data(ctx, point). The hedge is the strategy's own position on `symbol`,
// so the offset target + position is what is left unhedged (0 when fully
// hedged: a +0.3 BTC exposure wants a −0.3 BTC short).
//
// On each bar close the pure function `rebalance(target, position, params)`
// decides: inside the zone |offset| <= max(thresholdPct% of |target|, minQty) it
// does nothing; outside it trades the whole offset back to zero with a market
// order (sell when under-hedged, buy when over-hedged), filled at the next bar's
// open. After a fill (st_on_fill) the next cooldownBars bars make no rebalance,
// and no new order goes out while one is pending. Nothing happens before the
// first target arrives. A negative target (short exposure) gets a long hedge.
//
// The hedge's cost basis (average entry of the open hedge), its realized PnL
// and fees are kept from the fills, like the ledger does; they, the target,
// cooldown and pending order live in ctx.state ("hedge") so a restart resumes.
// Recorded series: target, offset, hedge_qty, cost_basis.
var params = {
  series: "lp_exposure", // the external series holding the target exposure (base units)
  symbol: null,          // the symbol to hedge with (null: the first symbol in the data)
  thresholdPct: 2,       // no trade while |target + position| <= thresholdPct% of |target| ...
  minQty: 0.001,         // ... or <= minQty (base units): the zone is the larger of the two
  cooldownBars: 5,       // bars without rebalancing after a fill
  record: true,          // record target, offset, hedge_qty and cost_basis
};

const NAME = "lp_hedge";

// The order that brings `position` back to −target, or null inside the zone. Pure.
function rebalance(target, position, params) {
  const offset = target + position;
  const zone = Math.max((Math.abs(target) * params.thresholdPct) / 100, params.minQty);
  if (!(Math.abs(offset) > zone)) return null;
  return { side: offset > 0 ? "sell" : "buy", qty: Math.abs(offset) };
}

function st_init(ctx) {
  const p = ctx.strategy.params;
  const bad = (what) => { throw new Error(NAME + ": " + what); };
  if (typeof p.series !== "string" || p.series === "") bad("series must name the external target series, got " + p.series);
  if (!(typeof p.thresholdPct === "number" && p.thresholdPct >= 0 && p.thresholdPct < 100)) bad("thresholdPct must be in [0, 100), got " + p.thresholdPct);
  if (!(typeof p.minQty === "number" && p.minQty > 0 && Number.isFinite(p.minQty))) bad("minQty must be a positive number, got " + p.minQty);
  if (!(Number.isInteger(p.cooldownBars) && p.cooldownBars >= 0)) bad("cooldownBars must be a whole number >= 0, got " + p.cooldownBars);
  if (p.symbol !== null && typeof p.symbol !== "string") bad("symbol must be a string or null, got " + p.symbol);
  return { symbols: p.symbol ? [p.symbol] : [], warmup: 0 };
}

function load(ctx) {
  return ctx.state.get("hedge", {
    symbol: null,   // the hedged symbol
    target: null,   // the latest target exposure
    cooldown: 0,    // bars left without rebalancing
    pending: null,  // cloid of the order on its way
    qty: 0,         // signed hedge quantity, from the fills
    basis: 0,       // average entry of the open hedge
    realized: 0,    // realized PnL of the hedge
    fees: 0,        // fees paid on the hedge
    trades: 0,      // rebalancing fills
  });
}

function st_on_data(ctx, point) {
  if (point.series !== ctx.strategy.params.series) return;
  const h = load(ctx);
  h.target = point.value;
  ctx.state.set("hedge", h);
}

function st_heartbeat(ctx, tick) {
  const p = ctx.strategy.params;
  const h = load(ctx);
  if (h.symbol === null) h.symbol = p.symbol || tick.symbol;
  if (tick.symbol !== h.symbol) return;
  const before = JSON.stringify(h);
  decide(ctx, h, p);
  if (JSON.stringify(h) !== before) ctx.state.set("hedge", h);
}

function decide(ctx, h, p) {
  if (h.target === null) return;
  const pos = ctx.api.getPositions().find((x) => x.symbol === h.symbol);
  const position = pos ? (pos.side === "long" ? pos.qty : -pos.qty) : 0;
  if (p.record) {
    ctx.record("target", h.target);
    ctx.record("offset", h.target + position);
    ctx.record("hedge_qty", position);
    ctx.record("cost_basis", h.basis);
  }
  if (h.cooldown > 0) {
    h.cooldown -= 1;
    return;
  }
  if (h.pending !== null && ctx.api.getOpenOrders().some((o) => o.cloid === h.pending)) return;
  h.pending = null;
  const order = rebalance(h.target, position, p);
  if (order === null) return;
  const result = ctx.api.placeOrder({ symbol: h.symbol, side: order.side, type: "market", qty: order.qty });
  if (result.status === "submitted") h.pending = result.cloid;
  else ctx.log.warn(NAME + ": rebalance " + order.side + " " + order.qty + " refused:", result.reason);
}

// Cost basis as the ledger keeps it: adding averages the entry, reducing realizes.
function st_on_fill(ctx, fill) {
  const p = ctx.strategy.params;
  const h = load(ctx);
  if (fill.symbol !== h.symbol) return;
  const delta = fill.side === "buy" ? fill.qty : -fill.qty;
  const old = h.qty;
  const next = old + delta;
  if (old === 0 || Math.sign(old) === Math.sign(delta)) {
    h.basis = (Math.abs(old) * h.basis + fill.qty * fill.price) / Math.abs(next);
  } else {
    const closed = Math.min(fill.qty, Math.abs(old));
    h.realized += closed * (fill.price - h.basis) * Math.sign(old);
    if (Math.abs(next) < 1e-12) h.basis = 0;
    else if (Math.sign(next) !== Math.sign(old)) h.basis = fill.price;
  }
  h.qty = Math.abs(next) < 1e-12 ? 0 : next;
  h.fees += fill.fee;
  h.trades += 1;
  h.pending = null;
  h.cooldown = p.cooldownBars;
  ctx.state.set("hedge", h);
  ctx.log.info(NAME + ": " + fill.side + " " + fill.qty + " @ " + fill.price + "; hedge " + h.qty + " @ " + h.basis.toFixed(2) +
    ", offset " + (h.target === null ? "?" : (h.target + h.qty).toFixed(6)));
}

function st_exit(ctx, reason) {
  const h = load(ctx);
  ctx.log.info(NAME + " stopping (" + h.trades + " rebalances, hedge " + h.qty + " @ " + h.basis.toFixed(2) +
    ", realized " + h.realized.toFixed(2) + ", fees " + h.fees.toFixed(2) + "):", reason);
}

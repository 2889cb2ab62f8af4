// Martingale grid (the Quant-Lab grid), long or short: `direction` "long" buys
// into falls, "short" sells into rises. Below, "into" is down for a long grid and
// up for a short one, "away" the other way.
//
// A cycle opens with a market order (a buy when long, a sell when short) of
// `baseQty`. Its fill price is the anchor; limit orders on the same side then rest
// at the grid levels into the move: level k (1 <= k < maxLevels) at
// anchor·(1 ∓ k·stepPct/100) (− long, + short), for baseQty·multiplier^k. The
// position can therefore never exceed baseQty·(1 + multiplier + … +
// multiplier^(maxLevels−1)), and it never changes side: every order on the
// other side is reduce-only.
//
// Take profit: a reduce-only limit of the whole position rests at
// average entry·(1 ± takeProfitPct/100) (away from the levels); it is replaced
// after every fill, since each level moves the average. When it fills the cycle
// is over: the remaining grid orders are cancelled (ctx.api.cancelOrder) and the
// next bar opens a new cycle. A limit fills at its price or better, never at a
// worse one.
//
// Hard stop, checked on each bar's close: while levels are left the stop sits
// stopLossPct beyond the average entry (into the move); once every level is
// filled it sits stopLossPct beyond the last level's fill. A close at or beyond
// it cancels the grid and the take-profit and closes the position with a
// reduce-only market order (filled at the next bar's open); after that fill the
// strategy sits out `cooldownBars` bars before the next cycle. A liquidation ends
// a cycle the same way.
//
// A level can still fill in the bar whose take-profit ended its cycle (the
// exchange works through the whole bar before the cancel reaches it); such
// exposure outside a cycle is closed with a reduce-only market order at the
// bar's close, and the next cycle starts once flat.
//
// Orders: market for the entry and the stop, resting limits for the levels and
// the take-profit. Everything the strategy knows about its cycle lives in
// ctx.state under "grid" (anchor, levels filled, average entry, last level,
// the ids of its orders, bars left to sit out), so a restarted strategy resumes
// where it was. Trades one symbol.
var params = {
  symbol: null,       // the symbol to trade (null: the first symbol in the data)
  direction: "long",  // "long": buy into falls; "short": sell into rises
  baseQty: 0.01,      // size of the entry, in base units (BTC for BTCUSDT)
  stepPct: 1,         // distance between grid levels, % of the anchor price
  multiplier: 2,      // level k is baseQty·multiplier^k
  maxLevels: 5,       // levels in all, the entry included (so maxLevels−1 resting orders)
  takeProfitPct: 1,   // take profit this % away from the average entry (above it when long)
  stopLossPct: 3,     // hard stop this % beyond the average entry (beyond the last level once all are filled)
  cooldownBars: 60,   // bars to sit out after a hard stop or a liquidation
  record: true,       // record the average entry, take-profit and stop prices as series
};

const NAME = "grid_martingale";

// The direction as a sign, +1 long and -1 short: every price of the grid is
// anchor·(1 − dir·distance), so one engine serves both directions.
function dir(p) {
  return p.direction === "short" ? -1 : 1;
}

// The side that opens and adds (entry), and the side that closes (exit).
function entrySide(p) {
  return dir(p) > 0 ? "buy" : "sell";
}

function exitSide(p) {
  return dir(p) > 0 ? "sell" : "buy";
}

function st_init(ctx) {
  const p = ctx.strategy.params;
  const bad = (what) => { throw new Error(NAME + ": " + what); };
  const num = (x) => typeof x === "number" && Number.isFinite(x);
  const whole = (x) => Number.isInteger(x);
  if (!(num(p.baseQty) && p.baseQty > 0)) bad("baseQty must be a positive number, got " + p.baseQty);
  if (!(num(p.stepPct) && p.stepPct > 0)) bad("stepPct must be a positive percentage, got " + p.stepPct);
  if (!(num(p.multiplier) && p.multiplier >= 1 && p.multiplier <= 10)) bad("multiplier must be from 1 to 10, got " + p.multiplier);
  if (!(whole(p.maxLevels) && p.maxLevels >= 1 && p.maxLevels <= 20)) bad("maxLevels must be a whole number from 1 to 20, got " + p.maxLevels);
  if (p.direction !== "long" && p.direction !== "short") bad("direction must be \"long\" or \"short\", got " + p.direction);
  if (dir(p) > 0 && !((p.maxLevels - 1) * p.stepPct < 100)) {
    bad("the deepest level would be at or below zero: (maxLevels-1)*stepPct = " + (p.maxLevels - 1) * p.stepPct + "%");
  }
  if (!(num(p.takeProfitPct) && p.takeProfitPct > 0 && p.takeProfitPct < 100)) bad("takeProfitPct must be in (0, 100), got " + p.takeProfitPct);
  if (!(num(p.stopLossPct) && p.stopLossPct > 0 && p.stopLossPct < 100)) bad("stopLossPct must be in (0, 100), got " + p.stopLossPct);
  if (!(whole(p.cooldownBars) && p.cooldownBars >= 0)) bad("cooldownBars must be a whole number >= 0, got " + p.cooldownBars);
  if (p.symbol !== null && typeof p.symbol !== "string") bad("symbol must be a string or null, got " + p.symbol);
  return { symbols: p.symbol ? [p.symbol] : [], warmup: 0 };
}

// --- state -----------------------------------------------------------------

function fresh(symbol, pause, cycles) {
  return {
    symbol: symbol,   // the traded symbol
    cycles: cycles,   // cycles finished
    pause: pause,     // bars left to sit out
    entry: null,      // cloid of the pending entry order
    anchor: null,     // fill price of the entry; null: no cycle open
    levels: 0,        // levels filled, the entry included
    avg: null,        // average entry of the position
    last: null,       // fill price of the last level filled
    grid: [],         // cloids of the resting level orders
    tp: null,         // cloid of the take-profit order
    stop: null,       // cloid of the stop's closing order
    flatten: null,    // cloid of an order closing exposure outside a cycle
  };
}

function load(ctx) {
  return ctx.state.get("grid", null);
}

function save(ctx, g) {
  ctx.state.set("grid", g);
}

// --- account helpers ---------------------------------------------------------

function position(ctx, symbol) {
  const pos = ctx.api.getPositions().find((x) => x.symbol === symbol);
  if (!pos) return { qty: 0, signed: 0, entryPrice: null };
  return { qty: pos.qty, signed: pos.side === "long" ? pos.qty : -pos.qty, entryPrice: pos.entryPrice };
}

function openOrders(ctx, symbol) {
  return ctx.api.getOpenOrders().filter((o) => o.symbol === symbol);
}

function isOpen(ctx, symbol, cloid) {
  return cloid !== null && openOrders(ctx, symbol).some((o) => o.cloid === cloid);
}

function place(ctx, order, what) {
  const result = ctx.api.placeOrder(order);
  if (result.status !== "submitted") {
    ctx.log.warn(NAME + ": " + what + " refused:", result.reason);
    return null;
  }
  return result.cloid;
}

function cancelAll(ctx, symbol) {
  for (const o of openOrders(ctx, symbol)) ctx.api.cancelOrder(o.cloid);
}

// --- the cycle -------------------------------------------------------------

function levelPrice(anchor, k, p) {
  return anchor * (1 - dir(p) * k * p.stepPct / 100);
}

function levelQty(k, p) {
  return p.baseQty * Math.pow(p.multiplier, k);
}

function placeGrid(ctx, g, p) {
  g.grid = [];
  for (let k = 1; k < p.maxLevels; k++) {
    const cloid = place(ctx, { symbol: g.symbol, side: entrySide(p), type: "limit", qty: levelQty(k, p), price: levelPrice(g.anchor, k, p) }, "level " + k);
    if (cloid) g.grid.push(cloid);
  }
}

function replaceTakeProfit(ctx, g, p, pos) {
  if (g.tp !== null && isOpen(ctx, g.symbol, g.tp)) ctx.api.cancelOrder(g.tp);
  g.tp = null;
  if (pos.qty <= 0) return;
  const price = pos.entryPrice * (1 + dir(p) * p.takeProfitPct / 100);
  g.tp = place(ctx, { symbol: g.symbol, side: exitSide(p), type: "limit", qty: pos.qty, price: price, reduceOnly: true }, "take-profit");
}

function stopPrice(g, p) {
  const ref = g.levels >= p.maxLevels ? g.last : g.avg;
  return ref * (1 - dir(p) * p.stopLossPct / 100);
}

function finishCycle(ctx, g, p, reason) {
  cancelAll(ctx, g.symbol);
  const pause = reason === "take-profit" ? 0 : p.cooldownBars;
  ctx.log.info(NAME + ": cycle " + (g.cycles + 1) + " ended by " + reason + " after " + g.levels + " level(s)" + (pause ? "; pausing " + pause + " bars" : ""));
  return fresh(g.symbol, pause, g.cycles + 1);
}

function st_heartbeat(ctx, tick) {
  const p = ctx.strategy.params;
  let g = load(ctx);
  if (g === null) g = fresh(tick.symbol, 0, 0);
  if (tick.symbol !== g.symbol) return;
  const before = JSON.stringify(g);
  decide(ctx, tick, g, p);
  if (JSON.stringify(g) !== before) save(ctx, g);
  if (p.record && g.anchor !== null) {
    ctx.record("avg_entry", g.avg);
    ctx.record("take_profit", g.avg * (1 + dir(p) * p.takeProfitPct / 100));
    ctx.record("stop", stopPrice(g, p));
  }
}

function decide(ctx, tick, g, p) {
  const pos = position(ctx, g.symbol);
  if (g.anchor !== null && pos.qty === 0) {
    // Flat in the middle of a cycle without a closing fill: liquidated.
    Object.assign(g, finishCycle(ctx, g, p, "liquidation"));
    return;
  }
  if (g.pause > 0) {
    g.pause -= 1;
    return;
  }
  if (g.anchor === null) {
    if (pos.qty !== 0) {
      // Exposure outside a cycle: a level of the finished cycle filled later in the bar that
      // ended it (the exchange had the whole bar before our cancel arrived). Close it.
      if (!isOpen(ctx, g.symbol, g.flatten)) {
        g.flatten = place(ctx, { symbol: g.symbol, side: pos.signed > 0 ? "sell" : "buy", type: "market", qty: pos.qty, reduceOnly: true }, "flatten");
      }
      return;
    }
    if (isOpen(ctx, g.symbol, g.entry)) return;
    g.entry = place(ctx, { symbol: g.symbol, side: entrySide(p), type: "market", qty: p.baseQty }, "entry");
    return;
  }
  if (isOpen(ctx, g.symbol, g.stop)) return; // the stop is on its way out
  const stop = stopPrice(g, p);
  if (dir(p) * (tick.close - stop) <= 0) {
    ctx.log.warn(NAME + ": hard stop at " + tick.close + " (stop " + stop.toFixed(2) + ", " + g.levels + " level(s))");
    cancelAll(ctx, g.symbol);
    g.tp = null;
    g.grid = [];
    g.stop = place(ctx, { symbol: g.symbol, side: exitSide(p), type: "market", qty: pos.qty, reduceOnly: true }, "stop");
    return;
  }
  if (!isOpen(ctx, g.symbol, g.tp)) replaceTakeProfit(ctx, g, p, pos);
}

function st_on_fill(ctx, fill) {
  const p = ctx.strategy.params;
  const g = load(ctx);
  if (g === null || fill.symbol !== g.symbol) return;
  const pos = position(ctx, g.symbol);
  let next = g;
  if (fill.side === entrySide(p)) {
    if (g.anchor === null && fill.cloid === g.entry) {
      g.anchor = fill.price;
      g.levels = 1;
      g.entry = null;
      placeGrid(ctx, g, p);
    } else if (g.anchor !== null && g.grid.indexOf(fill.cloid) >= 0) {
      g.levels += 1;
      g.grid = g.grid.filter((c) => c !== fill.cloid);
    } else {
      ctx.log.warn(NAME + ": fill of an order outside the cycle:", fill.cloid);
      save(ctx, g);
      return;
    }
    g.last = fill.price;
    g.avg = pos.entryPrice;
    replaceTakeProfit(ctx, g, p, pos);
  } else if (pos.qty === 0) {
    if (g.anchor !== null) {
      // Inside a cycle the only exit orders are the stop and take-profits (an earlier one
      // may have filled before its cancel arrived).
      const reason = fill.cloid === g.stop ? "stop" : "take-profit";
      next = finishCycle(ctx, g, p, reason);
    }
    next.flatten = null;
  } else if (g.anchor !== null && g.stop === null) {
    // Partly closed (a take-profit placed before the last level filled): re-place it for the rest.
    replaceTakeProfit(ctx, g, p, pos);
  }
  save(ctx, next);
}

function st_exit(ctx, reason) {
  const g = load(ctx);
  const where = g && g.anchor !== null ? "in a cycle with " + g.levels + " level(s), average entry " + g.avg : "flat";
  ctx.log.info(NAME + " stopping (" + where + "):", reason);
}

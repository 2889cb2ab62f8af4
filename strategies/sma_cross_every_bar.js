// Moving-average crossover, as a classic every-bar heartbeat: the same rules
// and trades as sma_cross.js, which declares its averages and is woken only on
// crosses. This form calls JavaScript on every bar and keeps its averages in
// streaming indicators of its own; see it as the reference the fast form is
// tested against, and as a template for strategies that need every bar.
//
// Goes long when the fast simple moving average of the close crosses above the
// slow one and leaves (or, with allowShort, goes short) when it crosses below.
// Orders are market orders, so they fill at the next bar's open. Position size
// is `fraction` of the available balance at the signal bar's close.
var params = {
  fast: 10,          // bars in the fast average
  slow: 30,          // bars in the slow average
  fraction: 0.95,    // share of available balance per entry
  allowShort: false, // sell short on a downward cross instead of only closing
  symbol: null,      // trade one symbol (null: every symbol the data has; one position each)
  record: true,      // record both averages as series for the report
};

// Per symbol: the two streaming averages, the state key of the regime and the regime last
// stored under it (read from ctx.state once, so a restarted strategy resumes where it was).
let bySymbol = null;

function st_init(ctx) {
  const p = ctx.strategy.params;
  if (!(p.fast >= 1 && p.slow > p.fast)) {
    throw new Error("sma_cross needs 1 <= fast < slow, got fast=" + p.fast + " slow=" + p.slow);
  }
  bySymbol = {};
  return { symbols: p.symbol ? [p.symbol] : [], warmup: 0 };
}

function track(ctx, symbol) {
  let t = bySymbol[symbol];
  if (!t) {
    const p = ctx.strategy.params;
    const key = "above:" + symbol;
    t = bySymbol[symbol] = {
      fast: ctx.indicator.create("sma", { period: p.fast }),
      slow: ctx.indicator.create("sma", { period: p.slow }),
      key: key,
      above: ctx.state.get(key, null),
    };
  }
  return t;
}

function st_heartbeat(ctx, tick) {
  const p = ctx.strategy.params;
  const t = track(ctx, tick.symbol);
  const f = t.fast.update(tick.close);
  const s = t.slow.update(tick.close);
  if (p.record) {
    ctx.record("sma_fast", f);
    ctx.record("sma_slow", s);
  }
  if (Number.isNaN(s)) return;

  const above = f > s;
  const before = t.above;
  if (before === above) return;
  ctx.state.set(t.key, above);
  t.above = above;
  if (before === null) return; // the first defined bar sets the regime; no trade on it

  const position = ctx.api.getPositions().find((x) => x.symbol === tick.symbol);
  if (above) {
    if (position && position.side === "short") {
      ctx.api.placeOrder({ symbol: tick.symbol, side: "buy", type: "market", qty: position.qty, reduceOnly: true });
    }
    enter(ctx, tick, "buy");
  } else {
    if (position && position.side === "long") {
      ctx.api.placeOrder({ symbol: tick.symbol, side: "sell", type: "market", qty: position.qty, reduceOnly: true });
    }
    if (p.allowShort) enter(ctx, tick, "sell");
  }
}

function enter(ctx, tick, side) {
  const balance = ctx.api.getBalance();
  const qty = (balance.available * ctx.strategy.params.fraction) / tick.close;
  // Below one unit of quote currency an entry is dust: skip it quietly.
  if (qty * tick.close < 1) return;
  const result = ctx.api.placeOrder({ symbol: tick.symbol, side: side, type: "market", qty: qty });
  if (result.status !== "submitted") ctx.log.warn("entry refused:", result.reason);
}

function st_exit(ctx, reason) {
  ctx.log.info("sma_cross stopping:", reason);
}

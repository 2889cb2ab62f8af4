// Moving-average crossover.
//
// Goes long when the fast simple moving average of the close crosses above the
// slow one and leaves (or, with allowShort, goes short) when it crosses below.
// Orders are market orders, so they fill at the next bar's open. Position size
// is `fraction` of the available balance at the signal bar's close.
//
// The engine computes both averages (declared in st_init) and calls
// st_heartbeat only on the bars where they cross, so a long backtest spends its
// time on decisions rather than on calling JavaScript for every bar.
// sma_cross_every_bar.js is the same rules as a classic every-bar heartbeat,
// and trades identically (backtest/tests/examples.rs checks it).
var params = {
  fast: 10,          // bars in the fast average
  slow: 30,          // bars in the slow average
  fraction: 0.95,    // share of available balance per entry
  allowShort: false, // sell short on a downward cross instead of only closing
  symbol: null,      // trade one symbol (null: every symbol the data has; one position each)
  record: true,      // plot both averages in the report
};

function st_init(ctx) {
  const p = ctx.strategy.params;
  if (!(p.fast >= 1 && p.slow > p.fast)) {
    throw new Error("sma_cross needs 1 <= fast < slow, got fast=" + p.fast + " slow=" + p.slow);
  }
  return {
    symbols: p.symbol ? [p.symbol] : [],
    warmup: 0,
    indicators: {
      sma_fast: { type: "sma", period: p.fast, record: !!p.record },
      sma_slow: { type: "sma", period: p.slow, record: !!p.record },
    },
    // Woken when sma_fast > sma_slow changes; never on the first bar both are defined.
    wake: { cross: ["sma_fast", "sma_slow"] },
  };
}

function st_heartbeat(ctx, tick) {
  const p = ctx.strategy.params;
  const above = tick.indicators.sma_fast > tick.indicators.sma_slow;
  // Going long, only a short needs closing first, and a long-only strategy never has one.
  const position = above && !p.allowShort ? null : positionIn(ctx, tick.symbol);
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

function positionIn(ctx, symbol) {
  for (const x of ctx.api.getPositions()) {
    if (x.symbol === symbol) return x;
  }
  return null;
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

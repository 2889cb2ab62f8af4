// Moving-average crossover written the way most people first write one: keep the
// closes in an array, average them on every bar, and look the position up on
// every bar. The same rules as sma_cross.js (which declares its averages and is
// woken only on crosses) and sma_cross_every_bar.js (streaming indicators); the
// averages here are summed afresh each bar, so where the two averages are equal
// to the last bit the three may decide a tie differently.
//
// It is here as the benchmark of the everyday every-bar strategy (`quantfold
// bench backtest`), not as a template: it keeps its history in module variables,
// which a restart after an error empties, where sma_cross_every_bar.js keeps its
// regime in ctx.state.
var params = {
  fast: 10,          // bars in the fast average
  slow: 30,          // bars in the slow average
  fraction: 0.95,    // share of available balance per entry
  allowShort: false, // sell short on a downward cross instead of only closing
  symbol: null,      // trade one symbol (null: every symbol the data has; one position each)
};

const closes = {}; // per symbol: the last `slow` closes
const above = {};  // per symbol: whether the fast average was above the slow one at the last bar

function st_init(ctx) {
  const p = ctx.strategy.params;
  if (!(p.fast >= 1 && p.slow > p.fast)) {
    throw new Error("sma_cross_plain needs 1 <= fast < slow, got fast=" + p.fast + " slow=" + p.slow);
  }
  return { symbols: p.symbol ? [p.symbol] : [], warmup: 0 };
}

function mean(xs, n) {
  let sum = 0;
  for (let i = xs.length - n; i < xs.length; i++) sum += xs[i];
  return sum / n;
}

function st_heartbeat(ctx, tick) {
  const p = ctx.strategy.params;
  const xs = closes[tick.symbol] || (closes[tick.symbol] = []);
  xs.push(tick.close);
  if (xs.length > p.slow) xs.shift();
  const position = ctx.api.getPositions().find((x) => x.symbol === tick.symbol);
  if (xs.length < p.slow) return;

  const now = mean(xs, p.fast) > mean(xs, p.slow);
  const before = above[tick.symbol];
  above[tick.symbol] = now;
  if (before === undefined || before === now) return; // no trade on the first defined bar

  if (now) {
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
  if (qty * tick.close < 1) return; // dust
  const result = ctx.api.placeOrder({ symbol: tick.symbol, side: side, type: "market", qty: qty });
  if (result.status !== "submitted") ctx.log.warn("entry refused:", result.reason);
}

// `quantfold bench live`: one small market order on the bars where `bar % every == phase`,
// buying and selling in turn, so that with `every` traders sharing the phases the venue
// sees one order a bar whatever the number of traders, and each bar's tick-to-wire time
// includes every trader's heartbeat. With `limit_offset`, limit orders that far from the
// close instead (they rest at once, so the venue answers at once).
var params = { every: 1, phase: 0, qty: 0.001, limit_offset: 0 };

function st_heartbeat(ctx, tick) {
  const p = ctx.strategy.params;
  const bar = ctx.state.get("bar", 0);
  ctx.state.set("bar", bar + 1);
  if (bar % p.every !== p.phase) return;
  const n = ctx.state.get("n", 0);
  ctx.state.set("n", n + 1);
  const buy = n % 2 === 0;
  if (p.limit_offset > 0) {
    const price = Math.round(buy ? tick.close * (1 - p.limit_offset) : tick.close * (1 + p.limit_offset));
    ctx.api.placeOrder({ symbol: tick.symbol, side: buy ? "buy" : "sell", type: "limit", qty: p.qty, price: price });
  } else {
    ctx.api.placeOrder({ symbol: tick.symbol, side: buy ? "buy" : "sell", type: "market", qty: p.qty });
  }
}

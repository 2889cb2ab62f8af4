// A busy trader for the live crash tests: every `every` bars it cancels what still
// rests from earlier bars, then places one market order (flipping between buying
// and selling every `flip` turns) and one limit order just below or above the close.
// Small sizes, so the account never runs short; many orders, fills and cancels.
var params = { qty: 0.002, flip: 3, offset: 0.0005, burst: 0, every: 2 };

function st_heartbeat(ctx, tick) {
  const p = ctx.strategy.params;
  const bar = ctx.state.get("bar", 0);
  ctx.state.set("bar", bar + 1);
  if (bar % p.every !== 0) return;
  for (const o of ctx.api.getOpenOrders()) {
    if (o.status === "open" || o.status === "partiallyfilled") ctx.api.cancelOrder(o.cloid);
  }
  const n = ctx.state.get("n", 0);
  ctx.state.set("n", n + 1);
  const buying = Math.floor(n / p.flip) % 2 === 0;
  ctx.api.placeOrder({ symbol: tick.symbol, side: buying ? "buy" : "sell", type: "market", qty: p.qty });
  const price = buying ? tick.close * (1 - p.offset) : tick.close * (1 + p.offset);
  ctx.api.placeOrder({ symbol: tick.symbol, side: buying ? "buy" : "sell", type: "limit", qty: p.qty, price: price });
  // A burst of orders in one decision: the adapter must queue them under the venue's rate limit.
  if (p.burst > 0 && n === 2) {
    for (let i = 0; i < p.burst; i++) {
      ctx.api.placeOrder({ symbol: tick.symbol, side: "buy", type: "limit", qty: 0.001, price: tick.close * 0.9 });
    }
  }
}

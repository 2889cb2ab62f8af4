// A trader whose cancels race the venue's fills: every bar it cancels whatever it
// still believes open, then places one marketable limit order (buying and selling in
// turn), which the venue fills at the next bar. When the venue's fills trail the bar
// on the private stream, the cancel goes out for an order that is already filled.
var params = { qty: 0.002, offset: 0.002 };

function st_heartbeat(ctx, tick) {
  const p = ctx.strategy.params;
  for (const o of ctx.api.getOpenOrders()) ctx.api.cancelOrder(o.cloid);
  const n = ctx.state.get("n", 0);
  ctx.state.set("n", n + 1);
  const buying = n % 2 === 0;
  const price = buying ? tick.close * (1 + p.offset) : tick.close * (1 - p.offset);
  ctx.api.placeOrder({ symbol: tick.symbol, side: buying ? "buy" : "sell", type: "limit", qty: p.qty, price: price });
}

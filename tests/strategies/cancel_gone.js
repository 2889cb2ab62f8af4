// For the cancel-of-an-order-already-gone test: every bar it asks to cancel every order
// the ledger still holds open, then places one market order (alternating sides). With the
// venue's fills pushed after the next bar's candle, the ledger still holds the previous
// bar's order when the venue has already filled it: the cancel meets an order that is gone.
// On its first bar it also tries an order worth less than Hyperliquid's $10 minimum.
var params = { qty: 0.002 };

function st_heartbeat(ctx, tick) {
  for (const o of ctx.api.getOpenOrders()) ctx.api.cancelOrder(o.cloid);
  const n = ctx.state.get("n", 0);
  if (n === 0) ctx.api.placeOrder({ symbol: tick.symbol, side: "buy", type: "market", qty: 0.0001 });
  ctx.state.set("n", n + 1);
  ctx.api.placeOrder({ symbol: tick.symbol, side: n % 2 === 0 ? "buy" : "sell", type: "market", qty: ctx.strategy.params.qty });
}

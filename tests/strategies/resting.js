// Places `count` limit buys far below the market on its first bar and nothing after:
// working orders that must survive a crash and a restart untouched.
var params = { count: 5, qty: 0.001, below: 0.5 };

function st_heartbeat(ctx, tick) {
  if (ctx.state.get("placed", false)) return;
  ctx.state.set("placed", true);
  const p = ctx.strategy.params;
  for (let i = 0; i < p.count; i++) {
    ctx.api.placeOrder({ symbol: tick.symbol, side: "buy", type: "limit", qty: p.qty, price: tick.close * (p.below - i * 0.01) });
  }
}

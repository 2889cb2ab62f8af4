// Notifies on every bar and trades nothing: the Telegram delivery tests count its messages.
function st_heartbeat(ctx, tick) {
  ctx.notify.telegram("bar " + tick.openTime + " close " + tick.close);
}

"""pybit 5.17.0 against the local server, with only the base URLs changed.

Usage: python3 pybit_client.py REST_URL WS_URL

HTTP: `session.endpoint = REST_URL` after construction (pybit builds every request URL as
f"{self.endpoint}{path}"). WebSocket: a subclass whose `_connect` swaps the Bybit host of the URL
it is handed for the local one and keeps the path; pybit's own topic checks still see the Bybit
URL template in `WS_URL`. Exits non-zero (AssertionError) on any mismatch.
"""

import sys
import threading
import time

from pybit.unified_trading import HTTP, WebSocket

REST, WS = sys.argv[1], sys.argv[2]
KEY, SECRET = "qf-local-key", "qf-local-secret"
SYMBOL = "BTCUSDT"


class LocalWebSocket(WebSocket):
    def _connect(self, url):
        path = "/v5/private" if url.endswith("/private") else "/v5/public/linear"
        super()._connect(WS + path)


def wait_for(what, predicate, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def ok(reply):
    assert reply["retCode"] == 0, reply
    return reply["result"]


session = HTTP(api_key=KEY, api_secret=SECRET)
session.endpoint = REST

# Public REST.
now = ok(session.get_server_time())
assert abs(int(now["timeSecond"]) - time.time()) < 5, now
info = ok(session.get_instruments_info(category="linear", symbol=SYMBOL))["list"][0]
assert info["symbol"] == SYMBOL and info["contractType"] == "LinearPerpetual", info
assert info["priceFilter"]["tickSize"] == "0.1", info
assert info["lotSizeFilter"]["qtyStep"] == "0.001", info
history = ok(session.get_kline(category="linear", symbol=SYMBOL, interval="1", limit=10))["list"]
assert len(history) >= 2, history
assert int(history[0][0]) > int(history[1][0]), "newest first"

# Streams: klines, and the private order and execution topics.
lock = threading.Lock()
klines, orders, executions = [], [], []


def keep(into):
    def callback(message):
        with lock:
            into.append(message)

    return callback


public = LocalWebSocket(channel_type="linear", testnet=False)
public.kline_stream(interval=1, symbol=SYMBOL, callback=keep(klines))
private = LocalWebSocket(channel_type="private", testnet=False, api_key=KEY, api_secret=SECRET)
wait_for("private auth", lambda: private.auth)
private.order_stream(callback=keep(orders))
private.execution_stream(callback=keep(executions))
time.sleep(0.3)  # the subscribe acks

# Orders: a market buy that fills at the next bar, and a limit far below that is cancelled.
placed = ok(session.place_order(category="linear", symbol=SYMBOL, side="Buy", orderType="Market", qty="0.1", orderLinkId="py-market"))
assert len(placed["orderId"]) == 36 and placed["orderLinkId"] == "py-market", placed
resting = ok(session.place_order(category="linear", symbol=SYMBOL, side="Buy", orderType="Limit", qty="0.1", price="50", orderLinkId="py-limit"))
open_orders = ok(session.get_open_orders(category="linear", symbol=SYMBOL))["list"]
assert "py-limit" in [o["orderLinkId"] for o in open_orders], open_orders
by_id = ok(session.get_open_orders(category="linear", symbol=SYMBOL, orderId=resting["orderId"]))["list"]
assert by_id[0]["orderStatus"] == "New" and by_id[0]["price"] == "50", by_id
ok(session.cancel_order(category="linear", symbol=SYMBOL, orderId=resting["orderId"]))
try:
    session.cancel_order(category="linear", symbol=SYMBOL, orderId=resting["orderId"])
    raise AssertionError("a second cancel must fail")
except Exception as e:  # pybit's InvalidRequestError
    assert "110001" in str(e), e

wait_for("the market order's execution push", lambda: any(m["topic"] == "execution" and m["data"][0]["orderLinkId"] == "py-market" for m in list(executions)))
with lock:
    statuses = [item["orderStatus"] for m in orders for item in m["data"] if item["orderLinkId"] == "py-market"]
    cancelled = [item["orderStatus"] for m in orders for item in m["data"] if item["orderLinkId"] == "py-limit"]
assert statuses[0] == "New", statuses
wait_for("the Filled push", lambda: any(i["orderStatus"] == "Filled" for m in list(orders) for i in m["data"] if i["orderLinkId"] == "py-market"))
assert cancelled[-1] == "Cancelled", cancelled

fills = ok(session.get_executions(category="linear", symbol=SYMBOL))["list"]
assert fills[0]["orderLinkId"] == "py-market" and fills[0]["execQty"] == "0.1", fills
position = ok(session.get_positions(category="linear", symbol=SYMBOL))["list"][0]
assert position["size"] == "0.1" and position["side"] == "Buy", position
wallet = ok(session.get_wallet_balance(accountType="UNIFIED"))["list"][0]
usdt = wallet["coin"][0]
assert usdt["coin"] == "USDT" and float(usdt["walletBalance"]) < 10000, usdt

wait_for("a closed kline", lambda: len(klines) > 0)
with lock:
    bar = klines[0]
assert bar["topic"] == f"kline.1.{SYMBOL}" and bar["data"][0]["confirm"] is True, bar

public.exit()
private.exit()
print("pybit ok: REST, public and private streams")

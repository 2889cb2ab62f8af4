"""The official Hyperliquid Python SDK against the local server, with only base_url changed.

Usage: python3 hl_sdk_client.py REST_URL

Signs with the SDK's published test key (the server's default wallet). The SDK signs for
testnet whenever base_url is not the mainnet URL, and the server checks testnet signatures by
default. Exits non-zero (AssertionError) on any mismatch.
"""

import sys
import threading
import time

import eth_account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.types import Cloid

REST = sys.argv[1]
KEY = "0x0123456789012345678901234567890123456789012345678901234567890123"
MISSING = "Order was never placed, already canceled, or filled."

wallet = eth_account.Account.from_key(KEY)
address = wallet.address


def wait_for(what, predicate, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def statuses(reply):
    assert reply["status"] == "ok", reply
    return reply["response"]["data"]["statuses"]


# Construction reads spotMeta and meta: the server answers both.
info = Info(REST, skip_ws=True)
exchange = Exchange(wallet, REST)

meta = info.meta()
assert meta["universe"][0]["name"] == "BTC", meta
assert info.name_to_asset("BTC") == 0
mid = float(info.all_mids()["BTC"])
assert mid > 0, mid
candles = info.candles_snapshot("BTC", "1m", 0, int(time.time() * 1000) + 10**12)
assert len(candles) >= 3 and candles[0]["s"] == "BTC", candles
state = info.user_state(address)
assert float(state["marginSummary"]["accountValue"]) == 10000, state

# The WebSocket: a second Info with its socket on, watching the account's fills and orders.
lock = threading.Lock()
fill_messages, order_messages = [], []


def keep(into):
    def callback(message):
        with lock:
            into.append(message)

    return callback


ws_info = Info(REST, skip_ws=False)
ws_info.subscribe({"type": "userFills", "user": address}, keep(fill_messages))
ws_info.subscribe({"type": "orderUpdates", "user": address}, keep(order_messages))
wait_for("the userFills snapshot", lambda: len(fill_messages) > 0)
with lock:
    assert fill_messages[0]["data"]["isSnapshot"] is True, fill_messages[0]

# A resting order with a cloid: queried by cloid, listed, cancelled by cloid, cancelled again.
cloid = Cloid.from_str("0x00000000000000000000000000000abc")
placed = statuses(exchange.order("BTC", True, 0.2, 90, {"limit": {"tif": "Gtc"}}, cloid=cloid))
oid = placed[0]["resting"]["oid"]
by_cloid = info.query_order_by_cloid(address, cloid)
assert by_cloid["status"] == "order" and by_cloid["order"]["status"] == "open", by_cloid
assert by_cloid["order"]["order"]["oid"] == oid and by_cloid["order"]["order"]["cloid"] == cloid.to_raw(), by_cloid
assert info.query_order_by_oid(address, oid) == by_cloid
assert oid in [o["oid"] for o in info.open_orders(address)]
assert statuses(exchange.cancel_by_cloid("BTC", cloid)) == ["success"]
assert statuses(exchange.cancel("BTC", oid)) == [{"error": MISSING}]
assert info.query_order_by_cloid(address, cloid)["order"]["status"] == "canceled"
wait_for("the canceled order update", lambda: any(u["status"] == "canceled" for m in list(order_messages) for u in m["data"]))

# The venue's texts for orders off its rules.
assert statuses(exchange.order("BTC", True, 0.05, 90, {"limit": {"tif": "Gtc"}})) == [{"error": "Order must have minimum value of $10."}]
assert exchange.update_leverage(10, "BTC") == {"status": "ok", "response": {"type": "default"}}

# A market order (an aggressive Ioc limit at the mid + 5 %) fills at the bar's open.
market_cloid = Cloid.from_str("0x00000000000000000000000000000def")
filled = statuses(exchange.market_open("BTC", True, 0.2, cloid=market_cloid))[0]["filled"]
assert filled["totalSz"] == "0.2", filled
fills = info.user_fills(address)
assert fills[0]["oid"] == filled["oid"] and fills[0]["sz"] == "0.2" and fills[0]["side"] == "B", fills
assert fills[0]["px"] == filled["avgPx"], (fills, filled)
position = info.user_state(address)["assetPositions"][0]["position"]
assert position["coin"] == "BTC" and position["szi"] == "0.2", position
wait_for("the fill push", lambda: any(not m["data"].get("isSnapshot") and m["data"]["fills"] for m in list(fill_messages)))

# Closing it: a reduce-only Ioc sell.
closed = statuses(exchange.market_close("BTC"))[0]
assert closed["filled"]["totalSz"] == "0.2", closed
assert info.user_fills(address)[0]["dir"] == "Close Long"

ws_info.disconnect_websocket()
print("hyperliquid sdk ok: meta, orders by cloid, cancels, fills, state, candles, WebSocket")

"""sma_cross's rules in backtesting.py, on a quantfold kline CSV: the whole process, from reading
the CSV to the statistics, as `quantfold bench backtest --reference` times it.

Rules (those of strategies/sma_cross.js with fast=10, slow=30): long when the 10-bar simple
moving average of the close crosses above the 30-bar one, flat when it crosses below; market
orders (filled at the next bar's open), entries sized at 95% of the available cash; 10 000 cash,
commission FEE_RATE (default 0.001, as quantfold's default 10 bps). backtesting.py sizes in whole units, so the prices are scaled down 1 000 000x
(a 20 000 USDT bitcoin becomes 0.02) to trade fractions the way quantfold does; returns, trade
counts and timing are unaffected.

Usage: python backtesting_py_sma_cross.py FILE.csv [FEE_RATE]   (prints one JSON line)
"""

import json
import sys
import time
import warnings

started = time.perf_counter()

import pandas as pd  # noqa: E402
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402

SCALE = 1_000_000


def sma(values, n):
    return pd.Series(values).rolling(n).mean()


class SmaCross(Strategy):
    def init(self):
        self.fast = self.I(sma, self.data.Close, 10)
        self.slow = self.I(sma, self.data.Close, 30)

    def next(self):
        if crossover(self.fast, self.slow):
            self.buy(size=0.95)
        elif crossover(self.slow, self.fast):
            self.position.close()


def main(path: str, fee_rate: float) -> None:
    frame = pd.read_csv(path)
    frame.index = pd.to_datetime(frame.pop("open_time_ms"), unit="ms")
    frame.columns = ["Open", "High", "Low", "Close", "Volume"]
    frame[["Open", "High", "Low", "Close"]] /= SCALE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = Backtest(frame, SmaCross, cash=10_000, commission=fee_rate, finalize_trades=True).run()
    print(
        json.dumps(
            {
                "tool": "backtesting.py",
                "bars": len(frame),
                "trades": int(stats["# Trades"]),
                "final_equity": float(stats["Equity Final [$]"]),
                # Entry and exit bars (open times), for `bench backtest`'s trade-list parity check.
                # `finalize_trades` closes a position still open at the end of the data: that
                # is no round trip of the strategy's (quantfold leaves it open), so it is left out.
                "round_trips": [
                    [t.EntryTime.strftime("%Y-%m-%dT%H:%M:%SZ"), t.ExitTime.strftime("%Y-%m-%dT%H:%M:%SZ")]
                    for t in stats["_trades"].itertuples()
                    if t.ExitBar < len(frame) - 1
                ],
                "closed_at_end_of_data": int((stats["_trades"]["ExitBar"] >= len(frame) - 1).sum()),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.001)

"""sma_cross's rules in NautilusTrader, on a quantfold kline CSV: the whole process, from
reading the CSV to the account report, as `quantfold bench backtest --reference` times it.

Rules (those of strategies/sma_cross.js with fast=10, slow=30): long when the 10-bar simple
moving average of the close crosses above the 30-bar one, flat when it crosses below; no trade
on the first bar both are defined; market orders (filled on the next bar), entries sized at 95%
of the free balance at the signal bar's close, skipped below 1 USDT of notional (dust); 10 000
USDT, 1x, taker fee FEE_RATE (default 0.001, as quantfold's default 10 bps).

Usage: python nautilus_sma_cross.py FILE.csv [FEE_RATE]   (prints one JSON line)
"""

import json
import sys
import time

started = time.perf_counter()

from decimal import Decimal  # noqa: E402

import pandas as pd  # noqa: E402

from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig  # noqa: E402
from nautilus_trader.config import LoggingConfig, StrategyConfig  # noqa: E402
from nautilus_trader.indicators import SimpleMovingAverage  # noqa: E402
from nautilus_trader.model.currencies import BTC, USDT  # noqa: E402
from nautilus_trader.model.data import Bar, BarType  # noqa: E402
from nautilus_trader.model.enums import AccountType, OmsType, OrderSide  # noqa: E402
from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue  # noqa: E402
from nautilus_trader.model.instruments import CryptoPerpetual  # noqa: E402
from nautilus_trader.model.objects import Money, Price, Quantity  # noqa: E402
from nautilus_trader.persistence.wranglers import BarDataWrangler  # noqa: E402
from nautilus_trader.trading.strategy import Strategy  # noqa: E402

VENUE = Venue("SIM")
INSTRUMENT_ID = InstrumentId(Symbol("BTCUSDT-PERP"), VENUE)
BAR_TYPE = BarType.from_str("BTCUSDT-PERP.SIM-1-MINUTE-LAST-EXTERNAL")


class SmaCross(Strategy):
    def __init__(self, config: StrategyConfig) -> None:
        super().__init__(config)
        self.fast = SimpleMovingAverage(10)
        self.slow = SimpleMovingAverage(30)
        self.above = None

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(INSTRUMENT_ID)
        self.register_indicator_for_bars(BAR_TYPE, self.fast)
        self.register_indicator_for_bars(BAR_TYPE, self.slow)
        self.subscribe_bars(BAR_TYPE)

    def on_bar(self, bar: Bar) -> None:
        if not self.slow.initialized:
            return
        above = self.fast.value > self.slow.value
        if above == self.above:
            return
        before, self.above = self.above, above
        if before is None:
            return
        if above:
            free = self.portfolio.account(VENUE).balance_free(USDT).as_double()
            close = bar.close.as_double()
            qty = free * 0.95 / close
            if qty * close < 1 or qty < 0.000001:
                return  # dust, as in sma_cross.js
            self.submit_order(self.order_factory.market(INSTRUMENT_ID, OrderSide.BUY, self.instrument.make_qty(qty)))
        else:
            self.close_all_positions(INSTRUMENT_ID)


def main(path: str, fee_rate: str) -> None:
    frame = pd.read_csv(path)
    # Nautilus stamps a bar with its close.
    frame.index = pd.to_datetime(frame.pop("open_time_ms") + 60_000, unit="ms", utc=True)
    instrument = CryptoPerpetual(
        instrument_id=INSTRUMENT_ID,
        raw_symbol=Symbol("BTCUSDT"),
        base_currency=BTC,
        quote_currency=USDT,
        settlement_currency=USDT,
        is_inverse=False,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        size_precision=6,
        size_increment=Quantity.from_str("0.000001"),
        max_quantity=None,
        min_quantity=Quantity.from_str("0.000001"),
        max_notional=None,
        min_notional=None,
        max_price=None,
        min_price=None,
        margin_init=Decimal("1"),
        margin_maint=Decimal("0.005"),
        maker_fee=Decimal(fee_rate),
        taker_fee=Decimal(fee_rate),
        ts_event=0,
        ts_init=0,
    )
    bars = BarDataWrangler(BAR_TYPE, instrument).process(frame)
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(
        venue=VENUE,
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=None,
        starting_balances=[Money(10_000, USDT)],
        default_leverage=Decimal(1),
    )
    engine.add_instrument(instrument)
    engine.add_data(bars)
    engine.add_strategy(SmaCross(StrategyConfig()))
    engine.run()
    fills = engine.trader.generate_order_fills_report()
    # Round trips as (entry, exit) fill times. Nautilus fills a market order when the bar that
    # decided it closes (`ts_last` is that bar's close), which is the next bar's open: the
    # instant quantfold and backtesting.py fill it, at the next bar's open, and report as
    # that bar's open time.
    stamps = []
    for _, fill in fills.sort_values("ts_last").iterrows():
        filled = pd.Timestamp(fill["ts_last"])
        stamps.append((str(fill["side"]), filled.strftime("%Y-%m-%dT%H:%M:%SZ")))
    round_trips = [
        [entry[1], exit[1]] for entry, exit in zip(stamps[::2], stamps[1::2]) if "BUY" in entry[0] and "SELL" in exit[0]
    ]
    account = engine.trader.generate_account_report(VENUE)
    print(
        json.dumps(
            {
                "tool": "nautilus_trader",
                "bars": len(frame),
                "fills": len(fills),
                "round_trips": round_trips,
                "final_balance": str(account.iloc[-1]["total"]) if len(account) else None,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "0.001")

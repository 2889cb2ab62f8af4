#!/usr/bin/env python3
"""Two quantfold builds, measured alternately in one run on the same inputs.

    python3 bench/before_after.py OLD_BINARY NEW_BINARY [--bars 1000000] [--pairs 5]

Times whole processes (as a user runs them): a plain backtest of sma_cross
(fast=10, slow=30) over seeded 1-minute bars, a journaled backtest and
`replay verify` of its journal, and `bench journal`'s own figures. Each
measure alternates old and new `--pairs` times; the ratio quoted is the
median of the pairwise new/old ratios, so a slow moment of a shared machine
hits both sides of a pair. Prints one JSON object.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, **kw):
    started = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT, **kw)
    return time.perf_counter() - started, out.stdout


def pairs(n, old, new, measure):
    rows = []
    for _ in range(n):
        a = measure(old)
        b = measure(new)
        rows.append((a, b))
    olds, news = [r[0] for r in rows], [r[1] for r in rows]
    return {
        "old_s": [round(x, 3) for x in olds],
        "new_s": [round(x, 3) for x in news],
        "new_over_old_median": round(statistics.median(b / a for a, b in rows), 3),
    }


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    old, new = os.path.abspath(args[0]), os.path.abspath(args[1])
    bars = int(args[args.index("--bars") + 1]) if "--bars" in args else 1_000_000
    n = int(args[args.index("--pairs") + 1]) if "--pairs" in args else 5
    tmp = tempfile.mkdtemp(prefix="qf-before-after-")
    data = os.path.join(tmp, "synth_BTCUSDT_1m.csv")
    run([new, "data", "synth", "--bars", str(bars), "--interval", "1m", "--seed", "7", "--out", data])
    small = os.path.join(tmp, "synth_BTCUSDT_1m_small.csv")
    with open(data) as src, open(small, "w") as dst:
        for i, line in enumerate(src):
            if i > bars * 3 // 10:
                break
            dst.write(line)
    params = '{"fast":10,"slow":30}'

    def backtest(binary, path=data, journal=None):
        out = os.path.join(tmp, "out")
        shutil.rmtree(out, ignore_errors=True)
        cmd = [binary, "backtest", "--strategy", "strategies/sma_cross.js", "--data", path, "--symbol",
               "BTCUSDT", "--params", params, "--format", "json", "--out", out]
        if journal:
            shutil.rmtree(journal, ignore_errors=True)
            cmd += ["--journal", journal]
        seconds, stdout = run(cmd)
        return seconds, json.loads(stdout)

    digests = {}

    def plain(binary):
        seconds, summary = backtest(binary)
        # The state digest changes with the state's layout; the trades and equity must not.
        digests.setdefault(binary, (summary["trades"], summary["final_equity"], summary["fees_paid"]))
        return seconds

    def verify(binary):
        journal = os.path.join(tmp, "journal")
        backtest(binary, small, journal)
        seconds, _ = run([binary, "replay", "verify", "--journal", journal])
        return seconds

    journal_figures = {}

    def bench_journal(binary):
        os.makedirs(os.path.join(tmp, "bj"), exist_ok=True)
        seconds, stdout = run([binary, "bench", "journal", "--events", "1000000", "--dir", os.path.join(tmp, "bj")])
        journal_figures.setdefault(binary, []).append(json.loads(stdout))
        shutil.rmtree(os.path.join(tmp, "bj"), ignore_errors=True)
        return seconds

    result = {
        "bars": bars,
        "backtest": pairs(n, old, new, plain),
        "replay_verify_30pct_bars": pairs(max(2, n // 2 + 1), old, new, verify),
        "bench_journal_wall": pairs(2, old, new, bench_journal),
        "bench_journal_old": journal_figures.get(old),
        "bench_journal_new": journal_figures.get(new),
        "same_trades_equity_fees": digests.get(old) == digests.get(new),
        "trades_equity_fees": digests.get(new),
    }
    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()

//! `bench backtest`'s replay measurement (issues #16 and #17): `replay verify` of a journaled
//! backtest against the plain backtest of the same bars, timed alternately in the same run.

use std::{path::Path, process::Command};

use anyhow::Context;
use serde_json::json;

use crate::bench::{round3, timed};

/// Alternating pairs of (plain backtest, `replay verify`); the medians are compared.
const PAIRS: usize = 5;
/// What `replay verify` should reach: this fraction of the plain backtest's rate.
const TARGET_RATIO: f64 = 0.8;

/// For each strategy: one journaled backtest, then [`PAIRS`] alternating runs of the plain
/// backtest (`backtest(strategy, out)` builds its command) and of `replay verify` of that
/// journal (which checks the chain, the snapshots, every decision and every answer of the
/// re-run simulated exchange). The ratio is the plain median over the verify median: the
/// fraction of the backtest's rate that verify runs at.
pub fn verify_vs_backtest(
    exe: &Path,
    scratch: &Path,
    strategies: &[&str],
    backtest: &dyn Fn(&str, &Path) -> Command,
) -> anyhow::Result<serde_json::Value> {
    let mut measured = Vec::new();
    for (i, strategy) in strategies.iter().enumerate() {
        let journal = scratch.join(format!("journal-{i}"));
        let mut journaled = backtest(strategy, &scratch.join(format!("journaled-{i}")));
        journaled.arg("--journal").arg(&journal);
        timed(journaled).with_context(|| format!("journaled backtest of {strategy}"))?;
        let (mut plain, mut verify) = (Vec::new(), Vec::new());
        let mut events = serde_json::Value::Null;
        for pair in 0..PAIRS {
            let out = scratch.join(format!("plain-{i}-{pair}"));
            plain.push(timed(backtest(strategy, &out))?.0);
            std::fs::remove_dir_all(&out).ok();
            let mut command = Command::new(exe);
            command.args(["replay", "verify", "--json", "--journal"]).arg(&journal);
            let (seconds, _, stdout) = timed(command).context("replay verify")?;
            let report: serde_json::Value =
                serde_json::from_slice(&stdout).context("replay verify printed no report")?;
            anyhow::ensure!(report["reproduced"] == true, "replay verify did not reproduce {strategy}: {report}");
            events = report["events"].clone();
            verify.push(seconds);
        }
        std::fs::remove_dir_all(&journal).ok();
        plain.sort_by(f64::total_cmp);
        verify.sort_by(f64::total_cmp);
        let (plain_median, verify_median) = (plain[PAIRS / 2], verify[PAIRS / 2]);
        measured.push(json!({
            "strategy": strategy,
            "journal_events": events,
            "plain_backtest_s": { "median": round3(plain_median), "runs": plain.iter().map(|s| round3(*s)).collect::<Vec<_>>() },
            "replay_verify_s": { "median": round3(verify_median), "runs": verify.iter().map(|s| round3(*s)).collect::<Vec<_>>() },
            "verify_rate_vs_backtest": round3(plain_median / verify_median),
            "target_min": TARGET_RATIO,
        }));
    }
    Ok(serde_json::Value::Array(measured))
}

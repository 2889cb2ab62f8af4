//! `quantfold replay verify|rebuild|diff`.

use std::{path::Path, process::ExitCode};

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use journal::{describe, Envelope, State};
use replay::{diff, rebuild, verify};
use rust_decimal::Decimal;
use serde_json::json;

use crate::text;

pub fn verify(dir: &Path, overrides: &[(String, std::path::PathBuf)], as_json: bool) -> anyhow::Result<ExitCode> {
    let overrides = overrides
        .iter()
        .map(|(trader, file)| {
            let source = std::fs::read_to_string(file).with_context(|| format!("failed to read {}", file.display()))?;
            Ok(verify::Override { trader: trader.clone(), file: file.clone(), source })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = verify::verify(dir, &overrides).context("replay verification failed")?;
    if as_json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else if let Some(d) = &report.divergence {
        say!(
            "DIVERGED at seq {} (trader {}, {}): {}: {}",
            d.seq,
            text::trader(&d.trader),
            text::time(d.time_ms),
            serde_json::to_value(d.kind)?.as_str().unwrap_or_default(),
            d.explanation
        );
        say!("  journaled:  {}", side(d.journaled.as_ref()));
        say!("  re-derived: {}", side(d.rederived.as_ref()));
        say!("  inputs that led to it:");
        for input in &d.inputs {
            say!("    {}", side(Some(input)));
        }
        say!(
            "{} decisions and {} venue answers reproduced before it; {} events in the journal",
            report.decisions_checked,
            report.venue_answers_checked,
            report.events
        );
        say!("venue: {}", report.venue);
    } else {
        if report.ends_mid_decision {
            say!("note: the journal ends in the middle of a decision, as a journal cut by a crash does");
        }
        say!(
            "ok: {} events, {} inputs, {} decisions and {} venue answers re-derived and identical, {} snapshots, strategies: {}",
            report.events,
            report.inputs,
            report.decisions_checked,
            report.venue_answers_checked,
            report.snapshots_checked,
            if report.strategies.is_empty() { "none".to_owned() } else { report.strategies.join(", ") }
        );
        say!("venue: {}", report.venue);
    }
    Ok(if report.reproduced { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// One line for an envelope given as JSON: seq, time, trader, kind and summary.
fn side(value: Option<&serde_json::Value>) -> String {
    let Some(value) = value else { return "(nothing)".to_owned() };
    let event: Option<journal::Event> = value.get("event").and_then(|e| serde_json::from_value(e.clone()).ok());
    let seq = value.get("seq").and_then(serde_json::Value::as_u64).map_or_else(String::new, |s| format!("seq {s} "));
    let time = value.get("time_ms").and_then(serde_json::Value::as_i64).map(text::time).unwrap_or_default();
    let trader = value.get("trader").and_then(serde_json::Value::as_str).unwrap_or("");
    match event {
        Some(e) => format!("{seq}{time} {} {}: {}", text::trader(trader), e.kind(), describe::summary(&e)),
        None => value.to_string(),
    }
}

pub fn rebuild(dir: &Path, to: Option<u64>, as_json: bool) -> anyhow::Result<ExitCode> {
    let (state, events) = rebuild::rebuild(dir, to).context("replay rebuild failed")?;
    if as_json {
        say!("{}", serde_json::to_string_pretty(&state_json(&state))?);
        return Ok(ExitCode::SUCCESS);
    }
    let at = state.last_seq.map_or_else(|| "empty".to_owned(), |s| format!("seq {s} of {events}"));
    say!("state at {at}, {}; digest {}", text::time(state.time_ms), state.digest());
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header([
        "trader",
        "equity",
        "cash",
        "realized",
        "fees",
        "funding",
        "positions",
        "open orders",
    ]);
    for (name, trader) in &state.traders {
        let account = state.account(name);
        let positions: Vec<String> = trader
            .positions
            .iter()
            .filter(|(_, p)| !p.qty.is_zero())
            .map(|(symbol, p)| format!("{symbol} {} @ {}", p.qty, p.entry_price))
            .collect();
        table.add_row([
            text::trader(name).to_owned(),
            account.as_ref().map_or_else(String::new, |a| a.equity.round_dp(8).to_string()),
            trader.cash.round_dp(8).to_string(),
            trader.realized_pnl.round_dp(8).to_string(),
            trader.fees_paid.round_dp(8).to_string(),
            trader.funding_net.round_dp(8).to_string(),
            if positions.is_empty() { "flat".into() } else { positions.join(", ") },
            trader.orders.len().to_string(),
        ]);
    }
    say!("{table}");
    if state.anomalies_total > 0 {
        say!(
            "{} anomalies; the first: seq {}: {}",
            state.anomalies_total,
            state.anomalies[0].seq,
            state.anomalies[0].message
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The rebuilt state as a person (or a script) wants it: per trader balances, positions, orders, PnL.
pub fn state_json(state: &State) -> serde_json::Value {
    let traders: serde_json::Map<String, serde_json::Value> = state
        .traders
        .iter()
        .map(|(name, t)| {
            let account = state.account(name);
            let positions: Vec<_> = t
                .positions
                .iter()
                .filter(|(_, p)| !p.qty.is_zero())
                .map(|(symbol, p)| {
                    let mark = state.mark(symbol).unwrap_or(p.entry_price);
                    json!({ "symbol": symbol, "qty": p.qty.to_string(), "entry_price": p.entry_price.to_string(),
                            "mark": mark.to_string(), "unrealized_pnl": p.unrealized_pnl(mark).to_string(),
                            "realized_pnl": p.realized_pnl.to_string() })
                })
                .collect();
            let orders: Vec<_> = t.orders.values().map(|o| json!({
                "cloid": o.intent.cloid.to_string(), "symbol": o.intent.symbol, "side": format!("{:?}", o.intent.side),
                "kind": format!("{:?}", o.intent.kind), "qty": o.intent.qty.to_string(), "filled_qty": o.filled_qty.to_string(),
                "status": format!("{:?}", o.status) })).collect();
            let capital = t.start.as_ref().map_or(Decimal::ZERO, |s| s.capital_quote);
            let equity = account.as_ref().map_or(Decimal::ZERO, |a| a.equity);
            (name.clone(), json!({
                "equity": equity.to_string(), "cash": t.cash.to_string(), "capital": capital.to_string(),
                "pnl": (equity - capital).to_string(), "realized_pnl": t.realized_pnl.to_string(),
                "fees_paid": t.fees_paid.to_string(), "funding_net": t.funding_net.to_string(),
                "available": account.as_ref().map_or_else(String::new, |a| a.available.to_string()),
                "positions": positions, "open_orders": orders, "fills": t.stats.fills,
            }))
        })
        .collect();
    json!({ "last_seq": state.last_seq, "time_ms": state.time_ms, "digest": state.digest().to_string(),
            "anomalies": state.anomalies_total, "traders": traders })
}

pub fn diff(a: &Path, b: &Path, as_json: bool) -> anyhow::Result<ExitCode> {
    let report = diff::diff(a, b).context("replay diff failed")?;
    if as_json {
        say!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        if let Some(step) = report.inputs_differ_at_step {
            say!("the journals are not of the same market inputs: they differ at step {step}");
        }
        for (label, extra) in [("A", report.steps_only_in_a), ("B", report.steps_only_in_b)] {
            if extra > 0 {
                say!("the journals differ in length: {label} goes on for {extra} steps after the other ends");
            }
        }
        match &report.first {
            None => say!("no differing decisions in {} steps compared", report.steps),
            Some(first) => {
                let input: Option<Envelope> = serde_json::from_value(first.input.clone()).ok();
                let at = input.map_or_else(
                    || "the start".to_owned(),
                    |e| format!("{} {}", text::time(e.time_ms), describe::summary(&e.event)),
                );
                say!("first differing decision, after {at}:");
                say!("  A: {}", side(first.a.as_ref()));
                say!("  B: {}", side(first.b.as_ref()));
                say!(
                    "{} of {} steps differ; {} differing decisions",
                    report.differing_steps,
                    report.steps,
                    report.differing_decisions
                );
            }
        }
        for (label, run) in [("A", &report.a), ("B", &report.b)] {
            let pnl: Vec<String> = run
                .traders
                .iter()
                .map(|t| {
                    format!("{} pnl {} (equity {})", text::trader(&t.trader), t.pnl.round_dp(2), t.equity.round_dp(2))
                })
                .collect();
            say!(
                "{label} {}: {} events, {} decisions, {} fills; {}",
                run.journal,
                run.events,
                run.decisions,
                run.fills,
                pnl.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

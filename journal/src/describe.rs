//! One-line, human-readable summaries of events, for tables and divergence reports.

use crate::event::{Event, OrderIntent};

/// A short description of what the event says.
pub fn summary(event: &Event) -> String {
    match event {
        Event::KlineReceived(k) => format!(
            "{} {} o={} h={} l={} c={} v={}{}",
            k.symbol,
            interval_label(k.interval_ms),
            k.open,
            k.high,
            k.low,
            k.close,
            k.volume,
            if k.closed { "" } else { " (open)" }
        ),
        Event::TickerReceived(t) => {
            let mut parts = vec![t.symbol.clone()];
            for (name, value) in
                [("last", t.last), ("mark", t.mark), ("bid", t.bid), ("ask", t.ask), ("funding", t.funding_rate)]
            {
                if let Some(v) = value {
                    parts.push(format!("{name}={v}"));
                }
            }
            parts.join(" ")
        }
        Event::DataPointReceived { series, value } => format!("{series}={value}"),
        Event::ClockTicked => String::new(),
        Event::InstrumentDefined(i) => format!(
            "{} tick={} step={} min={} max_lev={}",
            i.symbol, i.tick_size, i.qty_step, i.min_qty, i.max_leverage
        ),
        Event::TraderStarted(s) => format!(
            "{} {} on {}/{} ({}%, {}x)",
            s.capital_quote, s.currency, s.exchange, s.account, s.allocation_pct, s.leverage
        ),
        Event::StrategyLoaded(l) => {
            let limits = &l.limits;
            let reset = limits.restart_reset_after_ms.map_or_else(|| "never".to_owned(), |ms| format!("{ms} ms"));
            format!(
                "{} ({}) code {} seed {}; fuel {}, timeout {} ms, memory {} B, {} restarts, reset after {reset}",
                l.name,
                l.file,
                l.code_hash.short(),
                l.seed,
                limits.call_fuel,
                limits.call_timeout_ms,
                limits.memory_limit_bytes,
                limits.restarts_max
            )
        }
        Event::StrategyStateChanged { changes } => {
            changes.iter().map(|(k, v)| format!("{k}={}", v.0)).collect::<Vec<_>>().join(" ")
        }
        Event::StrategyErred { hook, kind, message } => format!("{hook}: {kind:?}: {message}"),
        Event::StrategyRestarted { attempt } => format!("attempt {attempt}"),
        Event::StrategyStopped { reason } | Event::StrategyStopRequested { reason } => reason.clone(),
        Event::SeriesRecorded { name, value } => format!("{name}={value}"),
        Event::NotificationSent { channel, message } => format!("{channel}: {message}"),
        Event::LlmPromptRendered { template_id, template_version, model, digest, .. } => {
            format!("{template_id}@{template_version} {model} digest {}", digest.short())
        }
        Event::LlmResponded { model, tokens_prompt, tokens_completion, latency_ms, cost_usd, .. } => {
            format!("{model} {tokens_prompt}+{tokens_completion} tokens ${cost_usd} {latency_ms}ms")
        }
        Event::LlmFailed { model, error, .. } => format!("{model}: {error}"),
        Event::DecisionParsed { valid, errors, .. } => {
            if *valid {
                "valid".into()
            } else {
                format!("invalid: {}", errors.join("; "))
            }
        }
        Event::RiskChecked { verdicts } => verdicts
            .iter()
            .map(|v| format!("{}={}", v.rule, if v.passed { "pass" } else { "FAIL" }))
            .collect::<Vec<_>>()
            .join(" "),
        Event::OrderSubmitted(intent) => order(intent),
        Event::OrderRejected { cloid, reason } => format!("{cloid}: {reason}"),
        Event::OrderAccepted { cloid, exchange_order_id } => format!("{cloid} as {exchange_order_id}"),
        Event::OrderCancelled { cloid, reason } => format!("{cloid}: {reason}"),
        Event::OrderCancelRequested { cloid } => cloid.to_string(),
        Event::OrderFilled(f) => format!(
            "{} {:?} {} {} @ {} fee {} {:?} ({})",
            f.cloid, f.side, f.qty, f.symbol, f.price, f.fee_quote, f.liquidity, f.fill_id
        ),
        Event::FundingPaid { symbol, rate, amount_quote } => format!("{symbol} rate {rate}: {amount_quote}"),
        Event::PositionLiquidated { symbol, price, fee_quote } => format!("{symbol} @ {price} fee {fee_quote}"),
        Event::VenueConfigured(v) => format!(
            "{} slippage {} bps, {}, liquidation fee rate {}",
            v.kind, v.slippage_bps, v.intrabar, v.liquidation_fee_rate
        ),
        Event::FundingRateReceived { symbol, rate } => format!("{symbol} rate {rate}"),
        Event::LlmTraderLoaded(l) => format!("{} config {}", l.file, l.config_hash.short()),
        Event::LlmCacheHit { digest, original_seq } => format!("{} answered by seq {original_seq}", digest.short()),
        Event::LlmModelSwitched { from, to, reason } => format!("{from} -> {to}: {reason}"),
        Event::LlmCycleSkipped { reason } => reason.clone(),
        Event::NotificationDelivered { seq, channel, message_id } => {
            format!("#{seq} delivered by {channel} as message {message_id}")
        }
        Event::NoncesReserved { signer, through } => format!("{signer} may sign with nonces up to {through}"),
        Event::ExchangeReconciled(r) => format!(
            "balance {} positions {} open orders {} mismatches {}",
            r.balance_quote,
            r.positions.len(),
            r.open_orders.len(),
            r.mismatches.len()
        ),
    }
}

fn order(o: &OrderIntent) -> String {
    let mut text = format!("{} {:?} {:?} {} {}", o.cloid, o.side, o.kind, o.qty, o.symbol);
    if let Some(p) = o.price {
        text.push_str(&format!(" @ {p}"));
    }
    if let Some(t) = o.trigger_price {
        text.push_str(&format!(" trigger {t}"));
    }
    if o.reduce_only {
        text.push_str(" reduce-only");
    }
    text
}

/// Interval units, largest first: the one table both directions use.
const INTERVAL_UNITS: [(&str, i64); 5] =
    [("w", 7 * 86_400_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000)];

/// "1m", "4h", "1d", "1w", "30s": the largest unit that divides the interval;
/// otherwise milliseconds ("1500ms").
pub fn interval_label(interval_ms: i64) -> String {
    for (unit, size) in INTERVAL_UNITS {
        if interval_ms > 0 && interval_ms % size == 0 {
            return format!("{}{unit}", interval_ms / size);
        }
    }
    format!("{interval_ms}ms")
}

/// Reads what [`interval_label`] writes: a positive count and one of s, m, h, d,
/// w ("1m", "4h"). Case-sensitive: "1M" (a month) has no fixed length.
pub fn parse_interval(text: &str) -> Option<i64> {
    let text = text.trim();
    let (count, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let count: i64 = count.parse().ok().filter(|n| *n > 0)?;
    let size = INTERVAL_UNITS.iter().find(|(u, _)| *u == unit)?.1;
    count.checked_mul(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_load_names_its_limits() {
        let load = crate::event::StrategyLoad {
            name: "sma".into(),
            file: "sma.js".into(),
            code_hash: crate::hash::content("x"),
            source: None,
            params: Default::default(),
            seed: 3,
            limits: crate::event::StrategyLimits::SCHEMA_1,
        };
        let line = summary(&Event::StrategyLoaded(load));
        assert!(
            line.ends_with("seed 3; fuel 500, timeout 1000 ms, memory 67108864 B, 3 restarts, reset after never"),
            "{line}"
        );
    }

    #[test]
    fn intervals_label_and_parse_both_ways() {
        for (ms, label) in [
            (60_000, "1m"),
            (900_000, "15m"),
            (14_400_000, "4h"),
            (86_400_000, "1d"),
            (604_800_000, "1w"),
            (90_000, "90s"),
        ] {
            assert_eq!(interval_label(ms), label);
            assert_eq!(parse_interval(label), Some(ms));
        }
        assert_eq!(interval_label(1_500), "1500ms");
        for bad in ["", "m", "0m", "1x", "1M", "-1m", "1.5h", "99999999999999999999m"] {
            assert_eq!(parse_interval(bad), None, "{bad:?}");
        }
    }
}

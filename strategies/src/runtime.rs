//! One JavaScript strategy as a decider: it turns input events into hook calls
//! and hook calls into journaled events, and restarts the strategy when it fails.
//!
//! Routing: a closed `KlineReceived` for a subscribed symbol and interval calls
//! `st_heartbeat(ctx, tick)` (after `warmup` such bars); the exchange's answers
//! about the trader's own orders (`OrderAccepted`, `OrderCancelled`, exchange
//! `OrderRejected`) call `st_on_order(ctx, order)`; its fills call
//! `st_on_fill(ctx, fill)`; `DataPointReceived` calls `st_on_data(ctx, point)`.
//!
//! Failure policy: a hook that throws, runs out of fuel or memory, or times out
//! is journaled as `StrategyErred`; the strategy is then restarted — `st_exit(ctx,
//! reason)` on the old sandbox when it is still usable, a fresh sandbox restored
//! from the journaled `ctx.state` and seeded with `seed + n` (`n`: restarts so far,
//! all of them), `st_init` — up to `restarts_max` ([`RESTARTS_MAX`]) times, after
//! which it is stopped with a journaled reason. The count starts again from zero
//! when a failure comes `restart_reset_after_ms` ([`DEFAULT_RESTART_RESET_AFTER_MS`])
//! or more of event time after the previous one, so rare failures months apart
//! never stop a strategy. A syntax error stops it at once: restarting cannot fix
//! the source.
//!
//! Limits: the spec's fuel, memory limit, wall-clock backstop and restart policy
//! are journaled in `StrategyLoaded` (see [`StrategyLimits`]), and replay runs the
//! strategy under the journaled ones. A call the backstop ends is journaled as
//! `StrategyErred` of kind `Timeout`, an input: on replay the sink reports it
//! ([`Sink::call_timed_out`]) and the sandbox ends the same call at the same
//! point, so what follows (restart, stop) is re-derived and compared.

use std::{collections::BTreeMap, time::Instant};

use journal::{
    event::Json as EventJson,
    event::{Event, Liquidity, Side, StrategyErrorKind, StrategyLimits, StrategyLoad},
    hash, Cloid,
};
use serde_json::{json, Value as Json};

use crate::{
    api::ApiHost,
    declare::{Plan, Tracker},
    market::{num, parse_interval, tick, IntervalLabels, Market},
    sandbox::{CallOutput, Hook, HookArg, LogLevel, Sandbox, SandboxConfig, SandboxError, StrategyInfo, TickIndicator},
    sink::{Sink, SinkError},
};

/// Restarts after failures before the strategy is stopped (the default of `StrategySpec::restarts_max`).
pub const RESTARTS_MAX: u32 = 3;
/// Event time without a failure after which the restart count starts again (the default
/// of `StrategySpec::restart_reset_after_ms`): one hour.
pub const DEFAULT_RESTART_RESET_AFTER_MS: u64 = 60 * 60 * 1000;
/// Latency samples kept per strategy for the health report.
const LATENCY_SAMPLES_MAX: usize = 1024;

/// What to run: the strategy, its trader, its parameters and its limits.
#[derive(Debug, Clone)]
pub struct StrategySpec {
    pub trader: String,
    pub name: String,
    pub file: String,
    pub source: String,
    pub params: Json,
    pub seed: u64,
    pub call_fuel: u64,
    pub call_timeout_ms: u64,
    pub memory_limit_bytes: usize,
    /// Restarts after failures before the strategy is stopped.
    pub restarts_max: u32,
    /// Event time without a failure after which the restart count starts again from zero
    /// (`None`: never).
    pub restart_reset_after_ms: Option<u64>,
}

impl StrategySpec {
    /// A spec with the sandbox's default limits.
    pub fn new(trader: &str, file: &str, source: String, params: Json, seed: u64) -> StrategySpec {
        let defaults = SandboxConfig::default();
        let name = std::path::Path::new(file)
            .file_stem()
            .map_or_else(|| file.to_owned(), |s| s.to_string_lossy().into_owned());
        StrategySpec {
            trader: trader.to_owned(),
            name,
            file: file.to_owned(),
            source,
            params,
            seed,
            call_fuel: defaults.call_fuel,
            call_timeout_ms: defaults.call_timeout_ms,
            memory_limit_bytes: defaults.memory_limit_bytes,
            restarts_max: RESTARTS_MAX,
            restart_reset_after_ms: Some(DEFAULT_RESTART_RESET_AFTER_MS),
        }
    }

    /// The limits as `StrategyLoaded` journals them.
    pub fn limits(&self) -> StrategyLimits {
        StrategyLimits {
            call_fuel: self.call_fuel,
            call_timeout_ms: self.call_timeout_ms,
            memory_limit_bytes: u64::try_from(self.memory_limit_bytes).unwrap_or(u64::MAX),
            restarts_max: self.restarts_max,
            restart_reset_after_ms: self.restart_reset_after_ms,
        }
    }

    /// Takes journaled limits (replay: the strategy runs under what the journal says).
    pub fn set_limits(&mut self, limits: &StrategyLimits) {
        self.call_fuel = limits.call_fuel;
        self.call_timeout_ms = limits.call_timeout_ms;
        self.memory_limit_bytes = usize::try_from(limits.memory_limit_bytes).unwrap_or(usize::MAX);
        self.restarts_max = limits.restarts_max;
        self.restart_reset_after_ms = limits.restart_reset_after_ms;
    }
}

/// What `st_init` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// Empty: every symbol.
    pub symbols: Vec<String>,
    /// None: every interval.
    pub interval_ms: Option<i64>,
    /// Closed bars to see (for history) before the first heartbeat.
    pub warmup: u32,
}

impl Subscription {
    fn from_init(value: &Json) -> Subscription {
        let symbols = match value.get("symbols") {
            Some(Json::Array(list)) => list.iter().filter_map(Json::as_str).map(str::to_owned).collect(),
            Some(Json::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        };
        let interval_ms = value.get("interval").and_then(|i| match i {
            Json::String(s) => parse_interval(s),
            Json::Number(n) => n.as_i64().map(|m| m * 60_000),
            _ => None,
        });
        let warmup = value.get("warmup").and_then(Json::as_u64).map_or(0, |w| w.min(u64::from(u32::MAX)) as u32);
        Subscription { symbols, interval_ms, warmup }
    }

    pub fn wants(&self, symbol: &str, interval_ms: i64) -> bool {
        (self.symbols.is_empty() || self.symbols.iter().any(|s| s == symbol))
            && self.interval_ms.is_none_or(|i| i == interval_ms)
    }
}

/// Call counts and wall-clock latencies (metrics only: never journaled).
#[derive(Debug, Clone, Default)]
pub struct Health {
    pub calls: u64,
    pub errors: u64,
    latencies_us: Vec<u64>,
    next_sample: usize,
}

impl Health {
    fn observe(&mut self, micros: u64) {
        self.calls += 1;
        if self.latencies_us.len() < LATENCY_SAMPLES_MAX {
            self.latencies_us.push(micros);
        } else {
            self.latencies_us[self.next_sample] = micros;
            self.next_sample = (self.next_sample + 1) % LATENCY_SAMPLES_MAX;
        }
    }

    /// The latency below which `pct` percent of the recent calls finished, in µs.
    pub fn latency_percentile_us(&self, pct: f64) -> Option<u64> {
        if self.latencies_us.is_empty() {
            return None;
        }
        let mut sorted = self.latencies_us.clone();
        sorted.sort_unstable();
        let rank = ((pct / 100.0) * (sorted.len() - 1) as f64).round() as usize;
        sorted.get(rank).copied()
    }
}

/// A loaded strategy.
pub struct StrategyRuntime {
    spec: StrategySpec,
    sandbox: Option<Sandbox>,
    pub subscription: Subscription,
    /// Declared indicators and wake conditions, with their state (see [`crate::declare`]).
    tracker: Tracker,
    /// The tracker's recorded values of the current bar (a buffer reused bar to bar).
    recorded: Vec<f64>,
    bars_seen: u64,
    interval_labels: IntervalLabels,
    /// Restarts since the count last started again (see `restart_reset_after_ms`).
    restarts_since_reset: u32,
    /// Every restart, for seeds and the health report.
    restarts: u32,
    /// Event time of the last failure that caused a restart.
    last_failure_ms: Option<i64>,
    stopped: Option<String>,
    /// (input seq, legs used): client order ids stay unique across calls for one input.
    cycle: (u64, u32),
    pub health: Health,
}

impl std::fmt::Debug for StrategyRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StrategyRuntime").field("trader", &self.spec.trader).field("stopped", &self.stopped).finish()
    }
}

impl StrategyRuntime {
    /// Journals `StrategyLoaded` (with the source the first time its hash
    /// appears), compiles the strategy and calls `st_init`.
    ///
    /// # Errors
    /// Only sink failures; strategy failures are journaled.
    pub fn start(
        spec: StrategySpec,
        sink: &mut dyn Sink,
        market: &Market,
        now_ms: i64,
    ) -> Result<StrategyRuntime, SinkError> {
        let code_hash = hash::content(&spec.source);
        let seen = sink.state().contents_seen.contains(&code_hash);
        let load = StrategyLoad {
            name: spec.name.clone(),
            file: spec.file.clone(),
            code_hash,
            source: (!seen).then(|| spec.source.clone()),
            params: EventJson(spec.params.clone()),
            seed: spec.seed,
            limits: spec.limits(),
        };
        let seq = sink.emit(now_ms, &spec.trader, &Event::StrategyLoaded(load))?;
        let mut runtime = StrategyRuntime {
            spec,
            sandbox: None,
            subscription: Subscription::default(),
            tracker: Tracker::default(),
            recorded: Vec::new(),
            bars_seen: 0,
            interval_labels: IntervalLabels::default(),
            restarts_since_reset: 0,
            restarts: 0,
            last_failure_ms: None,
            stopped: None,
            cycle: (seq, 0),
            health: Health::default(),
        };
        runtime.boot(sink, market, now_ms, seq)?;
        Ok(runtime)
    }

    pub fn trader(&self) -> &str {
        &self.spec.trader
    }

    pub fn spec(&self) -> &StrategySpec {
        &self.spec
    }

    /// Why the strategy stopped, if it did.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    /// Every restart so far (also those before the count last started again).
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    pub fn memory_used_bytes(&self) -> u64 {
        self.sandbox.as_ref().map_or(0, Sandbox::memory_used_bytes)
    }

    /// A fresh sandbox from the journaled `ctx.state`, then `st_init`.
    fn boot(&mut self, sink: &mut dyn Sink, market: &Market, now_ms: i64, cycle_seq: u64) -> Result<(), SinkError> {
        let initial_state: BTreeMap<String, Json> = sink
            .state()
            .traders
            .get(&self.spec.trader)
            .and_then(|t| t.strategy.as_ref())
            .map(|s| s.kv.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect())
            .unwrap_or_default();
        let config = SandboxConfig {
            call_fuel: self.spec.call_fuel,
            call_timeout_ms: self.spec.call_timeout_ms,
            memory_limit_bytes: self.spec.memory_limit_bytes,
            seed: self.spec.seed.wrapping_add(u64::from(self.restarts)),
            strategy: StrategyInfo {
                id: self.spec.trader.clone(),
                name: self.spec.name.clone(),
                params: self.spec.params.clone(),
            },
            initial_state,
            ..SandboxConfig::default()
        };
        match Sandbox::load(&self.spec.file, &self.spec.source, config) {
            Ok(sandbox) => {
                if let Some(message) = sandbox.missing_heartbeat() {
                    self.erred(sink, now_ms, Hook::Init, StrategyErrorKind::Missing, message.clone())?;
                    return self.stop_with(sink, now_ms, message);
                }
                self.sandbox = Some(sandbox);
            }
            Err(e) => {
                let kind = error_kind(&e);
                self.erred(sink, now_ms, Hook::Init, kind, e.to_string())?;
                if kind == StrategyErrorKind::Syntax || matches!(e, SandboxError::ImportRefused { .. }) {
                    return self.stop_with(sink, now_ms, format!("cannot load: {e}"));
                }
                return self.restart(sink, market, now_ms, cycle_seq, e.to_string());
            }
        }
        if let Some(value) = self.call(sink, market, now_ms, cycle_seq, Hook::Init, HookArg::None)? {
            self.subscription = Subscription::from_init(&value);
            match Plan::from_init(&value) {
                // A restart that declares the same plan keeps the indicators' state.
                Ok(plan) if plan == self.tracker.plan => {}
                Ok(plan) => self.tracker = Tracker::new(plan),
                Err(message) => {
                    // Deterministic: restarting would declare the same thing again.
                    let message = format!("{}: st_init: {message}", self.spec.file);
                    self.erred(sink, now_ms, Hook::Init, StrategyErrorKind::Thrown, message.clone())?;
                    return self.stop_with(sink, now_ms, message);
                }
            }
        }
        Ok(())
    }

    /// Routes one input event (already journaled and folded) to the strategy.
    ///
    /// # Errors
    /// Only sink failures.
    pub fn on_input(
        &mut self,
        sink: &mut dyn Sink,
        market: &Market,
        seq: u64,
        time_ms: i64,
        trader: &str,
        event: &Event,
    ) -> Result<(), SinkError> {
        if self.stopped.is_some() {
            return Ok(());
        }
        let own = trader == self.spec.trader;
        if let Event::KlineReceived(k) = event {
            if !(k.closed && self.subscription.wants(&k.symbol, k.interval_ms)) {
                return Ok(());
            }
            self.bars_seen += 1;
            let eligible = self.bars_seen.saturating_sub(u64::from(self.subscription.warmup));
            let wake = self.tracker.on_bar(k, eligible);
            let names = self.tracker.recorded(&mut self.recorded);
            if !names.is_empty() {
                sink.plot(time_ms, &self.spec.trader, names, &self.recorded);
            }
            if !wake {
                return Ok(());
            }
            // Copied out: the call needs `&mut self` (and a restart inside it may replace the tracker).
            let values: Vec<(String, _, [f64; 3])> =
                self.tracker.values().map(|(name, outputs, values)| (name.to_owned(), outputs, *values)).collect();
            let indicators: Vec<TickIndicator> = values
                .iter()
                .map(|(name, outputs, values)| TickIndicator { name, outputs: *outputs, values: *values })
                .collect();
            // Lent out for the call, then put back.
            let mut labels = std::mem::take(&mut self.interval_labels);
            let mut arg = tick(k, labels.get(k.interval_ms));
            arg.indicators = &indicators;
            let called = self.call(sink, market, time_ms, seq, Hook::Heartbeat, HookArg::Tick(arg));
            self.interval_labels = labels;
            return called.map(|_| ());
        }
        let hook = match event {
            Event::OrderAccepted { .. } | Event::OrderCancelled { .. } | Event::OrderRejected { .. } => {
                Some(Hook::OnOrder)
            }
            Event::OrderFilled(_) => Some(Hook::OnFill),
            Event::DataPointReceived { .. } => Some(Hook::OnData),
            _ => None,
        };
        // Most strategies leave some hooks out: skip building an argument nobody reads.
        if hook.is_some_and(|h| !self.sandbox.as_ref().is_some_and(|s| s.has_hook(h))) {
            return Ok(());
        }
        let (hook, arg) = match event {
            Event::OrderAccepted { cloid, exchange_order_id } if own => {
                (Hook::OnOrder, json!({ "cloid": cloid.to_string(), "id": exchange_order_id, "status": "accepted" }))
            }
            Event::OrderCancelled { cloid, reason } if own => {
                (Hook::OnOrder, json!({ "cloid": cloid.to_string(), "status": "cancelled", "reason": reason }))
            }
            Event::OrderRejected { cloid, reason } if own && event.is_input() => (
                Hook::OnOrder,
                json!({ "cloid": cloid.to_string(), "status": "rejected", "reason": reason.to_string() }),
            ),
            Event::OrderFilled(f) if own => (
                Hook::OnFill,
                json!({
                    "cloid": f.cloid.to_string(),
                    "fillId": f.fill_id,
                    "symbol": f.symbol,
                    "side": if f.side == Side::Buy { "buy" } else { "sell" },
                    "qty": num(f.qty),
                    "price": num(f.price),
                    "fee": num(f.fee_quote),
                    "maker": f.liquidity == Liquidity::Maker,
                }),
            ),
            Event::DataPointReceived { series, value } => {
                (Hook::OnData, json!({ "series": series, "value": num(*value), "time": time_ms }))
            }
            Event::StrategyStopRequested { reason } if own => {
                return self.stop(sink, market, time_ms, seq, reason);
            }
            _ => return Ok(()),
        };
        self.call(sink, market, time_ms, seq, hook, HookArg::Json(&arg)).map(|_| ())
    }

    /// Calls `st_exit(ctx, reason)` and journals the stop.
    ///
    /// # Errors
    /// Only sink failures.
    pub fn stop(
        &mut self,
        sink: &mut dyn Sink,
        market: &Market,
        now_ms: i64,
        cycle_seq: u64,
        reason: &str,
    ) -> Result<(), SinkError> {
        if self.stopped.is_some() {
            return Ok(());
        }
        self.call(sink, market, now_ms, cycle_seq, Hook::Exit, HookArg::Json(&Json::String(reason.to_owned())))?;
        if self.stopped.is_none() {
            self.stop_with(sink, now_ms, reason.to_owned())?;
        }
        Ok(())
    }

    /// One hook call: journals what it produced, or its failure (then restarts).
    /// Returns the hook's value when it succeeded.
    fn call(
        &mut self,
        sink: &mut dyn Sink,
        market: &Market,
        now_ms: i64,
        cycle_seq: u64,
        hook: Hook,
        arg: HookArg<'_>,
    ) -> Result<Option<Json>, SinkError> {
        let Some(sandbox) = self.sandbox.as_mut() else { return Ok(None) };
        if !sandbox.has_hook(hook) {
            return Ok(None);
        }
        if self.cycle.0 != cycle_seq {
            self.cycle = (cycle_seq, 0);
        }
        let started = Instant::now();
        let result = call_with_host(sandbox, hook, arg, sink, market, &self.spec.trader, now_ms, &mut self.cycle)?;
        self.health.observe(started.elapsed().as_micros().min(u128::from(u64::MAX)) as u64);
        match result {
            Ok(output) => self.journal_output(sink, now_ms, output),
            Err(e) => {
                self.erred(sink, now_ms, hook, error_kind(&e), e.to_string())?;
                if hook != Hook::Exit {
                    self.restart(sink, market, now_ms, cycle_seq, format!("{}: {e}", hook.js_name()))?;
                }
                Ok(None)
            }
        }
    }

    fn journal_output(
        &mut self,
        sink: &mut dyn Sink,
        now_ms: i64,
        output: CallOutput,
    ) -> Result<Option<Json>, SinkError> {
        let trader = self.spec.trader.clone();
        for line in &output.logs {
            match line.level {
                LogLevel::Debug => tracing::debug!(strategy = %trader, "{}", line.message),
                LogLevel::Info => tracing::info!(strategy = %trader, "{}", line.message),
                LogLevel::Warn => tracing::warn!(strategy = %trader, "{}", line.message),
                LogLevel::Error => tracing::error!(strategy = %trader, "{}", line.message),
            }
        }
        if !output.state_changes.is_empty() {
            let changes = output.state_changes.into_iter().map(|(k, v)| (k, EventJson(v))).collect();
            sink.emit(now_ms, &trader, &Event::StrategyStateChanged { changes })?;
        }
        for (name, value) in output.records {
            sink.emit(now_ms, &trader, &Event::SeriesRecorded { name, value })?;
        }
        for message in output.notifications {
            sink.emit(now_ms, &trader, &Event::NotificationSent { channel: "telegram".into(), message })?;
        }
        Ok(Some(output.value))
    }

    fn restart(
        &mut self,
        sink: &mut dyn Sink,
        market: &Market,
        now_ms: i64,
        cycle_seq: u64,
        reason: String,
    ) -> Result<(), SinkError> {
        // A failure after a healthy period (in event time, never the wall clock) starts the count again.
        let healthy = match (self.spec.restart_reset_after_ms, self.last_failure_ms) {
            (Some(period), Some(last)) => now_ms.saturating_sub(last) >= i64::try_from(period).unwrap_or(i64::MAX),
            _ => false,
        };
        if healthy {
            self.restarts_since_reset = 0;
        }
        self.last_failure_ms = Some(now_ms);
        if self.restarts_since_reset >= self.spec.restarts_max {
            let failures = u64::from(self.spec.restarts_max) + 1;
            return self.stop_with(sink, now_ms, format!("failed {failures} times; last: {reason}"));
        }
        if let Some(mut old) = self.sandbox.take() {
            if !old.is_poisoned() && old.has_hook(Hook::Exit) {
                self.cycle = if self.cycle.0 == cycle_seq { self.cycle } else { (cycle_seq, 0) };
                let exit_arg = Json::String(reason.clone());
                // The old instance's last words are best effort: it already failed once.
                let _ = call_with_host(
                    &mut old,
                    Hook::Exit,
                    HookArg::Json(&exit_arg),
                    sink,
                    market,
                    &self.spec.trader,
                    now_ms,
                    &mut self.cycle,
                )?;
            }
        }
        self.restarts_since_reset += 1;
        self.restarts = self.restarts.saturating_add(1);
        sink.emit(now_ms, &self.spec.trader, &Event::StrategyRestarted { attempt: self.restarts_since_reset })?;
        self.boot(sink, market, now_ms, cycle_seq)
    }

    fn erred(
        &mut self,
        sink: &mut dyn Sink,
        now_ms: i64,
        hook: Hook,
        kind: StrategyErrorKind,
        message: String,
    ) -> Result<(), SinkError> {
        tracing::warn!(strategy = %self.spec.trader, hook = hook.js_name(), "{message}");
        // Every journaled error counts, load failures (syntax, missing hook) included.
        self.health.errors += 1;
        sink.emit(now_ms, &self.spec.trader, &Event::StrategyErred { hook: hook.js_name().to_owned(), kind, message })?;
        Ok(())
    }

    fn stop_with(&mut self, sink: &mut dyn Sink, now_ms: i64, reason: String) -> Result<(), SinkError> {
        self.sandbox = None;
        self.stopped = Some(reason.clone());
        sink.emit(now_ms, &self.spec.trader, &Event::StrategyStopped { reason })?;
        Ok(())
    }
}

/// One hook call with its `ctx.api` host. `cycle` is (input seq, order legs used
/// so far), so client order ids stay unique across calls for one input. A sink
/// failure inside the call stops the run and wins over the hook's own result.
#[allow(clippy::too_many_arguments)]
fn call_with_host(
    sandbox: &mut Sandbox,
    hook: Hook,
    arg: HookArg<'_>,
    sink: &mut dyn Sink,
    market: &Market,
    trader: &str,
    now_ms: i64,
    cycle: &mut (u64, u32),
) -> Result<Result<CallOutput, SandboxError>, SinkError> {
    let mut host = ApiHost { sink, market, trader, now_ms, cycle_seq: cycle.0, legs: cycle.1, failure: None };
    let result = sandbox.call_with(hook, arg, &mut host);
    cycle.1 = host.legs;
    match host.failure {
        Some(failure) => Err(failure),
        None => Ok(result),
    }
}

fn error_kind(e: &SandboxError) -> StrategyErrorKind {
    match e {
        SandboxError::Syntax { .. } | SandboxError::ImportRefused { .. } => StrategyErrorKind::Syntax,
        SandboxError::OutOfFuel { .. } => StrategyErrorKind::OutOfFuel,
        SandboxError::Timeout { .. } => StrategyErrorKind::Timeout,
        SandboxError::OutOfMemory { .. } => StrategyErrorKind::OutOfMemory,
        _ => StrategyErrorKind::Thrown,
    }
}

/// The cloid a strategy's `n`-th order while handling input `seq` gets (for tests and tools).
pub fn cloid_of(trader: &str, seq: u64, leg: u32) -> Cloid {
    Cloid::derive(trader, seq, leg)
}

//! A worker hosts many strategies: it loads and unloads them, keeps the market
//! history they read, routes each input event to the strategies it concerns,
//! and reports their health and load.
//!
//! The Quant-Lab worker lifecycle maps onto it: `st_worker_init` is
//! [`Worker::new`] plus [`Worker::load`] per strategy, `st_worker_heartbeat` is
//! [`Worker::on_input`] for every journaled input, and `st_worker_exit` is
//! [`Worker::exit`].

use std::collections::BTreeMap;

use journal::event::Event;
use serde::Serialize;
use serde_json::Value as Json;

use crate::{
    llm::{config::TraderConfig, LlmTrader, Overall},
    market::Market,
    runtime::{StrategyRuntime, StrategySpec},
    sink::{Sink, SinkError},
};

#[derive(Debug, Default)]
pub struct Worker {
    strategies: BTreeMap<String, StrategyRuntime>,
    /// LLM traders by id, built from their journaled `LlmTraderLoaded`.
    llm: BTreeMap<String, LlmTrader>,
    /// The LLM traders' budget together.
    llm_overall: Overall,
    pub market: Market,
}

/// One strategy's line in the worker's report.
#[derive(Debug, Clone, Serialize)]
pub struct StrategyHealth {
    pub trader: String,
    pub name: String,
    pub calls: u64,
    pub errors: u64,
    pub restarts: u32,
    pub stopped: Option<String>,
    pub latency_p50_us: Option<u64>,
    pub latency_p99_us: Option<u64>,
    pub memory_bytes: u64,
}

impl Worker {
    pub fn new() -> Worker {
        Worker::default()
    }

    /// Loads a strategy for `spec.trader`: one strategy per trader, so it replaces only a
    /// stopped one (a live run restarted after a clean stop loads its traders again, and
    /// replay walks that journal the same way).
    ///
    /// # Errors
    /// [`SinkError::Refused`] when the trader already runs a strategy (nothing is journaled),
    /// or a sink failure.
    pub fn load(&mut self, spec: StrategySpec, sink: &mut dyn Sink, now_ms: i64) -> Result<(), SinkError> {
        if self.strategies.get(&spec.trader).is_some_and(|r| r.stopped().is_none()) {
            return Err(SinkError::Refused(format!("trader {} already runs a strategy", spec.trader)));
        }
        let trader = spec.trader.clone();
        let runtime = StrategyRuntime::start(spec, sink, &self.market, now_ms)?;
        self.strategies.insert(trader, runtime);
        Ok(())
    }

    /// Stops one strategy (a journaled `StrategyStopRequested`, `st_exit`, then
    /// `StrategyStopped`) and forgets it.
    ///
    /// # Errors
    /// Sink failures.
    pub fn unload(&mut self, trader: &str, sink: &mut dyn Sink, now_ms: i64, reason: &str) -> Result<bool, SinkError> {
        if !self.strategies.contains_key(trader) {
            return Ok(false);
        }
        let event = Event::StrategyStopRequested { reason: reason.to_owned() };
        let seq = sink.emit(now_ms, trader, &event)?;
        self.on_input(sink, seq, now_ms, trader, &event)?;
        self.strategies.remove(trader);
        Ok(true)
    }

    /// Routes an input event that the driver has just journaled and folded.
    ///
    /// # Errors
    /// Sink failures.
    pub fn on_input(
        &mut self,
        sink: &mut dyn Sink,
        seq: u64,
        time_ms: i64,
        trader: &str,
        event: &Event,
    ) -> Result<(), SinkError> {
        if let Event::KlineReceived(k) = event {
            self.market.record(k);
        }
        if let Event::LlmTraderLoaded(load) = event {
            return self.load_llm(sink, time_ms, trader, &load.config.0);
        }
        // An event of one trader concerns only its strategy; shared events go to all, in trader order.
        if !trader.is_empty() {
            if let Some(runtime) = self.strategies.get_mut(trader) {
                runtime.on_input(sink, &self.market, seq, time_ms, trader, event)?;
            }
            if let Some(llm) = self.llm.get_mut(trader) {
                llm.on_input(sink, &self.market, &mut self.llm_overall, seq, time_ms, event)?;
            }
            return Ok(());
        }
        for runtime in self.strategies.values_mut() {
            runtime.on_input(sink, &self.market, seq, time_ms, trader, event)?;
        }
        // LLM traders after the JavaScript ones: both in trader order, so replay routes alike.
        for llm in self.llm.values_mut() {
            llm.on_input(sink, &self.market, &mut self.llm_overall, seq, time_ms, event)?;
        }
        Ok(())
    }

    /// Builds the LLM trader a journaled `LlmTraderLoaded` configures. The shell checked the
    /// configuration before journaling it; one this build cannot use (an old journal, an edited
    /// one) is refused with a notification rather than run half-configured.
    fn load_llm(&mut self, sink: &mut dyn Sink, time_ms: i64, trader: &str, config: &Json) -> Result<(), SinkError> {
        let built = TraderConfig::from_journal(config).and_then(|c| {
            if c.id == trader {
                LlmTrader::new(c)
            } else {
                Err(format!("the configuration is for trader {}, journaled for {trader}", c.id))
            }
        });
        match built {
            Ok(llm) => {
                if let Some(limits) = &llm.config().overall_budget {
                    self.llm_overall.limits = Some(limits.clone());
                }
                self.llm.insert(trader.to_owned(), llm);
                Ok(())
            }
            Err(message) => {
                let event = Event::NotificationSent {
                    channel: crate::llm::CHANNEL.to_owned(),
                    message: format!("LLM trader refused: {message}"),
                };
                sink.emit(time_ms, trader, &event).map(|_| ())
            }
        }
    }

    /// The LLM traders' budget together, as counted so far.
    pub fn llm_overall(&self) -> &Overall {
        &self.llm_overall
    }

    /// The LLM traders, by id.
    pub fn llm_traders(&self) -> impl Iterator<Item = &LlmTrader> {
        self.llm.values()
    }

    /// Stops every running strategy: journals a `StrategyStopRequested` input
    /// per trader and routes it, so replay sees why each strategy stopped.
    ///
    /// # Errors
    /// Sink failures.
    pub fn exit(&mut self, sink: &mut dyn Sink, now_ms: i64, reason: &str) -> Result<(), SinkError> {
        let running: Vec<String> =
            self.strategies.values().filter(|r| r.stopped().is_none()).map(|r| r.trader().to_owned()).collect();
        for trader in running {
            let event = Event::StrategyStopRequested { reason: reason.to_owned() };
            let seq = sink.emit(now_ms, &trader, &event)?;
            self.on_input(sink, seq, now_ms, &trader, &event)?;
        }
        Ok(())
    }

    /// Whether `trader` runs a strategy that has not stopped.
    pub fn running(&self, trader: &str) -> bool {
        self.strategies.get(trader).is_some_and(|r| r.stopped().is_none())
    }

    /// The bars of history the running strategies of `symbol` at `interval_ms` declared
    /// (`st_init`'s `warmup`): what a live driver fetches before the first live bar.
    pub fn warmup(&self, symbol: &str, interval_ms: i64) -> u32 {
        self.strategies
            .values()
            .filter(|r| r.stopped().is_none() && r.subscription.wants(symbol, interval_ms))
            .map(|r| r.subscription.warmup)
            .max()
            .unwrap_or(0)
    }

    pub fn strategies(&self) -> impl Iterator<Item = &StrategyRuntime> {
        self.strategies.values()
    }

    /// Health and load of every strategy.
    pub fn report(&self) -> Vec<StrategyHealth> {
        self.strategies
            .values()
            .map(|r| StrategyHealth {
                trader: r.trader().to_owned(),
                name: r.spec().name.clone(),
                calls: r.health.calls,
                errors: r.health.errors,
                restarts: r.restarts(),
                stopped: r.stopped().map(str::to_owned),
                latency_p50_us: r.health.latency_percentile_us(50.0),
                latency_p99_us: r.health.latency_percentile_us(99.0),
                memory_bytes: r.memory_used_bytes(),
            })
            .collect()
    }
}

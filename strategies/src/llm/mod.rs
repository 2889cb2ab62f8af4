//! The LLM trader: a decider beside the JavaScript strategies, in the same worker and the
//! same engine step.
//!
//! # The decision cycle
//! 1. A closed bar of the trader's last symbol at or past the next decision time (event time,
//!    every `decision_interval`) starts a cycle. Budget exhausted, stale or missing market
//!    data, a template that fails to render: `LlmCycleSkipped` and a notification, nothing else.
//! 2. The context (see [`prompt::context`]) is rendered; `LlmPromptRendered` journals the
//!    template, version, model and blake3 digest, with the text the first time a digest
//!    appears. The call itself is I/O: the decider hands an [`LlmRequest`] to its sink
//!    ([`crate::sink::Sink::call_llm`]), the engine makes it an effect, and the shell steps the
//!    answer back as an input, `LlmResponded` (raw body, usage, cost, latency) or `LlmFailed`.
//!    A digest answered within `cache_ttl` is answered from the journal instead:
//!    `LlmCacheHit` names the seq of that answer.
//! 3. On the answer: the provider's body is read and the decision validated against the
//!    schema (`DecisionParsed`); an entry or close goes through the risk gates (`RiskChecked`,
//!    every verdict); orders go through the same pre-append checks as JavaScript orders. An
//!    entry's stop-loss and take-profit are placed, reduce-only, once the entry fills; when
//!    one of them fills the other is cancelled.
//!
//! Fail closed: an unusable answer, a schema violation, a failed gate, a failed call — no
//! order, the reason journaled, and a `NotificationSent`.
//!
//! # Cost
//! Tokens and dollars are counted per event-time UTC day from the journaled `LlmResponded`
//! (so replay counts the same): a notification at `alert_pct`, and no call at the limit.
//! The model chain falls back by priority after `fallback_after_failures` consecutive
//! failures or when a model's own daily tokens run out, and returns to the primary after
//! `return_after_successes` successes; every switch is an `LlmModelSwitched`.

pub mod config;
pub mod decision;
pub mod prompt;

use std::collections::BTreeMap;

use journal::{
    check,
    event::{Event, Fill, Json as EventJson, OrderIntent, OrderKind, Side, TimeInForce},
    Cloid, Hash,
};
use rust_decimal::Decimal;
use serde_json::{json, Value as Json};

use self::{
    config::{EntryStyle, ModelConfig, OverallBudget, TraderConfig},
    decision::{Decision, Signal},
    prompt::Renderer,
};
use crate::{
    market::Market,
    sink::{Sink, SinkError},
};

/// The notification channel of LLM traders.
pub const CHANNEL: &str = "llm";
const DAY_MS: i64 = 86_400_000;
/// Fills remembered for the context.
const FILLS_KEPT: usize = 20;

/// A model call for the shell to make: everything it needs but the key's value.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    pub digest: Hash,
    pub model: ModelConfig,
    pub system: String,
    pub user: String,
    pub schema: Json,
}

#[derive(Debug, Clone)]
struct Pending {
    digest: Hash,
    model: usize,
}

/// An entry waiting for its fill to get its stop-loss and take-profit.
#[derive(Debug, Clone)]
struct Bracket {
    stop_loss: Decimal,
    take_profit: Decimal,
}

/// The budget of every LLM trader together, kept by the worker: counted from each journaled
/// answer as its trader takes it, in journal order, so replay counts the same; checked at
/// every cycle of every trader.
#[derive(Debug, Default)]
pub struct Overall {
    /// The limits of the most recently loaded configuration that has some.
    pub limits: Option<OverallBudget>,
    tally: DayTally,
}

impl Overall {
    fn count(&mut self, time_ms: i64, tokens: u64, cost: Decimal) {
        self.tally.roll(time_ms);
        self.tally.add(tokens, cost);
    }

    /// Why no trader may call now, if the overall budget is used up.
    fn exhausted(&mut self, time_ms: i64) -> Option<String> {
        self.tally.roll(time_ms);
        let b = self.limits.as_ref()?;
        let used = self.tally.exhausted(b.tokens_per_day, b.usd_per_day)?;
        Some(format!("overall budget exhausted: {used} today, all LLM traders together"))
    }

    /// The day's one alert, when either budget has passed its threshold.
    fn alert(&mut self) -> Option<String> {
        let b = self.limits.as_ref()?;
        self.tally.alert_due(b.tokens_per_day, b.usd_per_day, b.alert_pct).then(|| {
            format!(
                "overall budget alert: {} tokens and {} USD used today by all LLM traders ({}% threshold)",
                self.tally.tokens, self.tally.usd, b.alert_pct
            )
        })
    }
}

/// Tokens and dollars spent in one UTC day of event time, against daily limits (0: none):
/// one trader's, or every trader's together ([`Overall`]).
#[derive(Debug, Default)]
struct DayTally {
    day: i64,
    tokens: u64,
    usd: Decimal,
    alerted_day: Option<i64>,
}

impl DayTally {
    /// Starts a new day's count when `time_ms` is in a later day; true if it did.
    fn roll(&mut self, time_ms: i64) -> bool {
        let day = time_ms.div_euclid(DAY_MS);
        if day == self.day {
            return false;
        }
        self.day = day;
        self.tokens = 0;
        self.usd = Decimal::ZERO;
        true
    }

    fn add(&mut self, tokens: u64, cost: Decimal) {
        self.tokens = self.tokens.saturating_add(tokens);
        self.usd = self.usd.saturating_add(cost);
    }

    /// What is used up, as "N of LIMIT tokens" or "N of LIMIT USD".
    fn exhausted(&self, tokens_per_day: u64, usd_per_day: Decimal) -> Option<String> {
        if tokens_per_day > 0 && self.tokens >= tokens_per_day {
            return Some(format!("{} of {tokens_per_day} tokens", self.tokens));
        }
        if usd_per_day > Decimal::ZERO && self.usd >= usd_per_day {
            return Some(format!("{} of {usd_per_day} USD", self.usd));
        }
        None
    }

    /// Whether either budget has passed `alert_pct` % and today has had no alert yet (it
    /// has one now).
    fn alert_due(&mut self, tokens_per_day: u64, usd_per_day: Decimal, alert_pct: u32) -> bool {
        if self.alerted_day == Some(self.day) {
            return false;
        }
        let (pct, hundred) = (Decimal::from(alert_pct), Decimal::ONE_HUNDRED);
        let tokens_over =
            tokens_per_day > 0 && Decimal::from(self.tokens) * hundred >= Decimal::from(tokens_per_day) * pct;
        let usd_over = usd_per_day > Decimal::ZERO && self.usd * hundred >= usd_per_day * pct;
        if tokens_over || usd_over {
            self.alerted_day = Some(self.day);
        }
        tokens_over || usd_over
    }
}

/// One LLM trader.
pub struct LlmTrader {
    config: TraderConfig,
    renderer: Renderer,
    validator: jsonschema::Validator,
    next_due_ms: i64,
    pending: Option<Pending>,
    /// Index into `config.models` of the model in use.
    active: usize,
    failures: u32,
    successes: u32,
    tally: DayTally,
    /// Per model, tokens used today.
    model_tokens_day: Vec<u64>,
    /// Digest → (seq, time, model index, raw body) of answers, for the cache.
    answered: BTreeMap<Hash, (u64, i64, usize, String)>,
    brackets: BTreeMap<Cloid, Bracket>,
    /// A bracket leg → its sibling, cancelled when the leg fills.
    siblings: BTreeMap<Cloid, Cloid>,
    fills: Vec<Json>,
}

impl std::fmt::Debug for LlmTrader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmTrader").field("id", &self.config.id).field("active", &self.active).finish_non_exhaustive()
    }
}

impl LlmTrader {
    /// A decider for `config`.
    ///
    /// # Errors
    /// The configuration breaks a rule, the template does not compile or the schema does not.
    pub fn new(config: TraderConfig) -> Result<LlmTrader, String> {
        config.check()?;
        let renderer = Renderer::new(&config.template)?;
        let validator = jsonschema::validator_for(&config.schema).map_err(|e| format!("decision schema: {e}"))?;
        let models = config.models.len();
        Ok(LlmTrader {
            config,
            renderer,
            validator,
            next_due_ms: i64::MIN,
            pending: None,
            active: 0,
            failures: 0,
            successes: 0,
            tally: DayTally { day: i64::MIN, ..DayTally::default() },
            model_tokens_day: vec![0; models],
            answered: BTreeMap::new(),
            brackets: BTreeMap::new(),
            siblings: BTreeMap::new(),
            fills: Vec::new(),
        })
    }

    pub fn config(&self) -> &TraderConfig {
        &self.config
    }

    /// The call this trader waits for, if any: its prompt digest and model. A live session
    /// that stops (or died) before the answer journals it failed (see `src/live`).
    pub fn unanswered(&self) -> Option<(Hash, &str)> {
        self.pending.as_ref().map(|p| (p.digest, self.config.models[p.model].model.as_str()))
    }

    /// The model in use now.
    pub fn active_model(&self) -> &str {
        &self.config.models[self.active].model
    }

    /// Routes one input (already journaled and folded) to the trader.
    ///
    /// # Errors
    /// Sink failures.
    pub fn on_input(
        &mut self,
        sink: &mut dyn Sink,
        market: &Market,
        overall: &mut Overall,
        seq: u64,
        time_ms: i64,
        event: &Event,
    ) -> Result<(), SinkError> {
        match event {
            Event::KlineReceived(k) if k.closed && k.interval_ms == self.config.interval_ms => {
                let close_ms = k.open_time_ms + k.interval_ms;
                // Bars of one close time are journaled together; the last symbol's completes them.
                if self.config.symbols.last() == Some(&k.symbol) && close_ms >= self.next_due_ms {
                    let every = self.config.decision_interval_ms;
                    self.next_due_ms = (close_ms.div_euclid(every) + 1) * every;
                    self.cycle(sink, market, overall, seq, time_ms)?;
                }
            }
            Event::LlmResponded { digest, tokens_prompt, tokens_completion, cost_usd, raw, .. } => {
                let Some(pending) = self.pending.take_if(|p| p.digest == *digest) else {
                    return self.notify(sink, time_ms, format!("an answer to {} that was not asked", digest.short()));
                };
                let tokens = u64::from(*tokens_prompt) + u64::from(*tokens_completion);
                self.count(time_ms, pending.model, tokens, *cost_usd);
                overall.count(time_ms, tokens, *cost_usd);
                self.forget_old(time_ms);
                self.answered.insert(*digest, (seq, time_ms, pending.model, raw.clone()));
                let usable = self.respond(sink, seq, time_ms, pending.model, *digest, raw)?;
                self.after_call(sink, time_ms, usable)?;
                self.alert(sink, time_ms)?;
                if let Some(message) = overall.alert() {
                    self.notify(sink, time_ms, message)?;
                }
            }
            Event::LlmFailed { digest, error, .. } => {
                if self.pending.take_if(|p| p.digest == *digest).is_none() {
                    return Ok(());
                }
                self.notify(sink, time_ms, format!("no decision, the model call failed: {error}"))?;
                self.after_call(sink, time_ms, false)?;
            }
            Event::OrderFilled(fill) => self.on_fill(sink, seq, time_ms, fill)?,
            _ => {}
        }
        Ok(())
    }

    fn cycle(
        &mut self,
        sink: &mut dyn Sink,
        market: &Market,
        overall: &mut Overall,
        seq: u64,
        time_ms: i64,
    ) -> Result<(), SinkError> {
        if self.pending.is_some() {
            return self.skip(sink, time_ms, "the previous model call is still unanswered".into());
        }
        self.roll_day(time_ms);
        if let Some(reason) = self.budget_exhausted().or_else(|| overall.exhausted(time_ms)) {
            return self.skip(sink, time_ms, reason);
        }
        if let Some(tokens) = self.config.models[self.active].tokens_per_day {
            if self.model_tokens_day[self.active] >= tokens {
                self.fall_back(sink, time_ms, format!("{tokens} tokens of the day used"))?;
            }
        }
        let context = match prompt::context(&self.config, sink.state(), market, time_ms, seq, &self.fills) {
            Ok(c) => c,
            Err(prompt::Stale(reason)) => return self.skip(sink, time_ms, reason),
        };
        let text = match self.renderer.render(&context) {
            Ok(t) => t,
            Err(e) => return self.skip(sink, time_ms, e),
        };
        let digest = prompt::digest(&text);
        let model = self.config.models[self.active].clone();
        let stored = sink.state().contents_seen.contains(&digest);
        let rendered = Event::LlmPromptRendered {
            template_id: self.config.template_id.clone(),
            template_version: self.config.prompt_version.clone(),
            model: model.model.clone(),
            digest,
            prompt: (!stored).then(|| text.clone()),
        };
        let rendered_seq = sink.emit(time_ms, &self.config.id, &rendered)?;
        let ttl = self.config.cache_ttl_ms;
        if let Some((original_seq, at, index, raw)) = self.answered.get(&digest).cloned() {
            if ttl > 0 && time_ms - at <= ttl {
                sink.emit(time_ms, &self.config.id, &Event::LlmCacheHit { digest, original_seq })?;
                self.respond(sink, seq, time_ms, index, digest, &raw)?;
                return Ok(());
            }
        }
        self.pending = Some(Pending { digest, model: self.active });
        let request = LlmRequest {
            digest,
            model,
            system: text,
            user: prompt::USER_MESSAGE.to_owned(),
            schema: self.config.schema.clone(),
        };
        sink.call_llm(rendered_seq, &self.config.id, &request);
        Ok(())
    }

    /// Parses, validates, gates and orders on an answer; whether it was usable.
    fn respond(
        &mut self,
        sink: &mut dyn Sink,
        cycle_seq: u64,
        time_ms: i64,
        model: usize,
        digest: Hash,
        raw: &str,
    ) -> Result<bool, SinkError> {
        let provider = self.config.models[model].provider;
        let value = match decision::answer(provider, raw) {
            Ok(v) => v,
            Err(e) => {
                let parsed = Event::DecisionParsed {
                    digest,
                    valid: false,
                    decisions: EventJson(Json::Null),
                    errors: vec![e.clone()],
                };
                sink.emit(time_ms, &self.config.id, &parsed)?;
                self.notify(sink, time_ms, format!("no decision: {e}"))?;
                return Ok(false);
            }
        };
        let errors = decision::schema_errors(&self.validator, &value);
        let valid = errors.is_empty();
        let parsed =
            Event::DecisionParsed { digest, valid, decisions: EventJson(value.clone()), errors: errors.clone() };
        sink.emit(time_ms, &self.config.id, &parsed)?;
        if !valid {
            self.notify(sink, time_ms, format!("no decision, the answer breaks the schema: {}", errors.join("; ")))?;
            return Ok(false);
        }
        let decision = Decision::read(&value);
        if decision.signal == Signal::Hold {
            return Ok(true);
        }
        let verdicts = decision::gates(&self.config, sink.state(), &decision);
        let failed: Vec<String> = verdicts.iter().filter(|v| !v.passed).map(|v| v.rule.clone()).collect();
        sink.emit(time_ms, &self.config.id, &Event::RiskChecked { verdicts })?;
        if !failed.is_empty() {
            // nof0's bug: a decision that failed its checks was executed anyway. Never here.
            self.notify(sink, time_ms, format!("decision on {} refused by: {}", decision.symbol, failed.join(", ")))?;
            return Ok(true);
        }
        self.order(sink, cycle_seq, time_ms, &decision)?;
        Ok(true)
    }

    fn order(
        &mut self,
        sink: &mut dyn Sink,
        cycle_seq: u64,
        time_ms: i64,
        decision: &Decision,
    ) -> Result<(), SinkError> {
        let id = self.config.id.clone();
        let mut leg = 0u32;
        let mut next_cloid = || {
            leg += 1;
            Cloid::derive(&id, cycle_seq, leg - 1)
        };
        let held = sink
            .state()
            .traders
            .get(&id)
            .and_then(|t| t.positions.get(&decision.symbol))
            .map_or(Decimal::ZERO, |p| p.qty);
        if decision.signal == Signal::Close {
            // The position's stop-loss and take-profit go first: a close leaves nothing resting.
            let resting: Vec<Cloid> = sink
                .state()
                .traders
                .get(&id)
                .map(|t| {
                    t.orders.values().filter(|o| o.intent.symbol == decision.symbol).map(|o| o.intent.cloid).collect()
                })
                .unwrap_or_default();
            for cloid in resting {
                sink.emit(time_ms, &id, &Event::OrderCancelRequested { cloid })?;
            }
            let side = if held > Decimal::ZERO { Side::Sell } else { Side::Buy };
            let intent = intent(
                next_cloid(),
                &decision.symbol,
                side,
                OrderKind::Market,
                held.abs(),
                None,
                None,
                true,
                TimeInForce::Ioc,
            );
            return self.submit(sink, time_ms, intent).map(|_| ());
        }
        let Some(entry) = decision::entry_reference(decision, sink.state()) else {
            return self.notify(sink, time_ms, format!("no price for {}: no order", decision.symbol));
        };
        let qty = (decision.size_usd / entry).round_dp(8);
        let side = if decision.signal == Signal::Long { Side::Buy } else { Side::Sell };
        let capped = match (self.config.entry, self.config.max_slippage_bps) {
            (EntryStyle::MarketIoc, Some(bps)) => {
                let Some(close) = sink.state().mark(&decision.symbol) else {
                    return self.notify(sink, time_ms, format!("no last price for {}: no order", decision.symbol));
                };
                let tick = sink.state().instruments.get(&decision.symbol).map(|i| i.tick_size);
                Some(slippage_cap(side, close, bps, tick))
            }
            _ => None,
        };
        let intent = match self.config.entry {
            EntryStyle::MarketIoc if capped.is_some() => intent(
                next_cloid(),
                &decision.symbol,
                side,
                OrderKind::Limit,
                qty,
                capped,
                None,
                false,
                TimeInForce::Ioc,
            ),
            EntryStyle::MarketIoc => intent(
                next_cloid(),
                &decision.symbol,
                side,
                OrderKind::Market,
                qty,
                None,
                None,
                false,
                TimeInForce::Ioc,
            ),
            EntryStyle::Limit => intent(
                next_cloid(),
                &decision.symbol,
                side,
                OrderKind::Limit,
                qty,
                Some(decision.entry_price),
                None,
                false,
                TimeInForce::Gtc,
            ),
        };
        let cloid = intent.cloid;
        if self.submit(sink, time_ms, intent)? {
            self.brackets.insert(cloid, Bracket { stop_loss: decision.stop_loss, take_profit: decision.take_profit });
        }
        Ok(())
    }

    /// The pre-append checks, then the journal; whether the order was submitted.
    fn submit(&mut self, sink: &mut dyn Sink, time_ms: i64, intent: OrderIntent) -> Result<bool, SinkError> {
        let event = check::order(sink.state(), &self.config.id, intent);
        sink.emit(time_ms, &self.config.id, &event)?;
        if let Event::OrderRejected { reason, .. } = &event {
            self.notify(sink, time_ms, format!("order refused by the checks: {reason}"))?;
            return Ok(false);
        }
        Ok(true)
    }

    fn on_fill(&mut self, sink: &mut dyn Sink, seq: u64, time_ms: i64, fill: &Fill) -> Result<(), SinkError> {
        self.fills.push(json!({
            "symbol": fill.symbol,
            "side": format!("{:?}", fill.side).to_lowercase(),
            "qty": fill.qty.to_string(),
            "price": fill.price.to_string(),
            "time_ms": time_ms,
        }));
        if self.fills.len() > FILLS_KEPT {
            self.fills.remove(0);
        }
        if let Some(sibling) = self.siblings.remove(&fill.cloid) {
            self.siblings.remove(&sibling);
            let open = sink.state().traders.get(&self.config.id).is_some_and(|t| t.orders.contains_key(&sibling));
            if open {
                sink.emit(time_ms, &self.config.id, &Event::OrderCancelRequested { cloid: sibling })?;
            }
            return Ok(());
        }
        let Some(bracket) = self.brackets.get(&fill.cloid).cloned() else { return Ok(()) };
        let open = sink.state().traders.get(&self.config.id).is_some_and(|t| t.orders.contains_key(&fill.cloid));
        if !open {
            self.brackets.remove(&fill.cloid);
        }
        let exit = if fill.side == Side::Buy { Side::Sell } else { Side::Buy };
        let id = self.config.id.clone();
        let stop = intent(
            Cloid::derive(&id, seq, 0),
            &fill.symbol,
            exit,
            OrderKind::Stop,
            fill.qty,
            None,
            Some(bracket.stop_loss),
            true,
            TimeInForce::Gtc,
        );
        let target = intent(
            Cloid::derive(&id, seq, 1),
            &fill.symbol,
            exit,
            OrderKind::Limit,
            fill.qty,
            Some(bracket.take_profit),
            None,
            true,
            TimeInForce::Gtc,
        );
        let (a, b) = (stop.cloid, target.cloid);
        let placed_stop = self.submit(sink, time_ms, stop)?;
        let placed_target = self.submit(sink, time_ms, target)?;
        if placed_stop && placed_target {
            self.siblings.insert(a, b);
            self.siblings.insert(b, a);
        }
        Ok(())
    }

    /// Counts a call's outcome and moves along the chain when the rules say so.
    fn after_call(&mut self, sink: &mut dyn Sink, time_ms: i64, usable: bool) -> Result<(), SinkError> {
        let budget = &self.config.budget;
        if usable {
            self.failures = 0;
            self.successes += 1;
            if self.active != 0 && self.successes >= budget.return_after_successes {
                let reason = format!("{} successes in a row", self.successes);
                self.switch(sink, time_ms, 0, reason)?;
            }
        } else {
            self.successes = 0;
            self.failures += 1;
            if self.failures >= budget.fallback_after_failures {
                let reason = format!("{} failures in a row", self.failures);
                self.fall_back(sink, time_ms, reason)?;
            }
        }
        Ok(())
    }

    fn fall_back(&mut self, sink: &mut dyn Sink, time_ms: i64, reason: String) -> Result<(), SinkError> {
        if self.active + 1 < self.config.models.len() {
            self.switch(sink, time_ms, self.active + 1, reason)?;
        }
        Ok(())
    }

    fn switch(&mut self, sink: &mut dyn Sink, time_ms: i64, to: usize, reason: String) -> Result<(), SinkError> {
        let from = self.config.models[self.active].model.clone();
        self.active = to;
        self.failures = 0;
        self.successes = 0;
        let to = self.config.models[to].model.clone();
        sink.emit(time_ms, &self.config.id, &Event::LlmModelSwitched { from, to, reason }).map(|_| ())
    }

    fn roll_day(&mut self, time_ms: i64) {
        if self.tally.roll(time_ms) {
            self.model_tokens_day.iter_mut().for_each(|t| *t = 0);
        }
    }

    fn count(&mut self, time_ms: i64, model: usize, tokens: u64, cost: Decimal) {
        self.roll_day(time_ms);
        self.tally.add(tokens, cost);
        if let Some(t) = self.model_tokens_day.get_mut(model) {
            *t = t.saturating_add(tokens);
        }
    }

    fn budget_exhausted(&self) -> Option<String> {
        let b = &self.config.budget;
        let used = self.tally.exhausted(b.tokens_per_day, b.usd_per_day)?;
        Some(format!("budget exhausted: {used} today"))
    }

    /// One notification per day when either budget passes its alert threshold.
    fn alert(&mut self, sink: &mut dyn Sink, time_ms: i64) -> Result<(), SinkError> {
        let b = &self.config.budget;
        if self.tally.alert_due(b.tokens_per_day, b.usd_per_day, b.alert_pct) {
            let message = format!(
                "budget alert: {} tokens and {} USD used today ({}% threshold)",
                self.tally.tokens, self.tally.usd, b.alert_pct
            );
            self.notify(sink, time_ms, message)?;
        }
        Ok(())
    }

    /// Forgets cached answers older than the cache's time to live.
    fn forget_old(&mut self, time_ms: i64) {
        let ttl = self.config.cache_ttl_ms;
        self.answered.retain(|_, (_, at, _, _)| ttl > 0 && time_ms - *at <= ttl);
    }

    fn skip(&mut self, sink: &mut dyn Sink, time_ms: i64, reason: String) -> Result<(), SinkError> {
        sink.emit(time_ms, &self.config.id, &Event::LlmCycleSkipped { reason: reason.clone() })?;
        self.notify(sink, time_ms, format!("no decision: {reason}"))
    }

    fn notify(&mut self, sink: &mut dyn Sink, time_ms: i64, message: String) -> Result<(), SinkError> {
        let event = Event::NotificationSent { channel: CHANNEL.to_owned(), message };
        sink.emit(time_ms, &self.config.id, &event).map(|_| ())
    }
}

/// The limit price of a market entry capped at `bps` of slippage from `close`: a buy pays at
/// most `close × (1 + bps/10⁴)`, a sell gets at least `close × (1 − bps/10⁴)`, rounded to the
/// tick toward the close (never past the cap; the pre-append checks then find it on the grid).
pub fn slippage_cap(side: Side, close: Decimal, bps: Decimal, tick: Option<Decimal>) -> Decimal {
    let ten_thousand = Decimal::from(10_000);
    let (raw, strategy) = match side {
        Side::Buy => (close * (ten_thousand + bps) / ten_thousand, rust_decimal::RoundingStrategy::ToNegativeInfinity),
        Side::Sell => (close * (ten_thousand - bps) / ten_thousand, rust_decimal::RoundingStrategy::ToPositiveInfinity),
    };
    match tick.filter(|t| *t > Decimal::ZERO) {
        Some(tick) => ((raw / tick).round_dp_with_strategy(0, strategy) * tick).normalize(),
        None => raw.normalize(),
    }
}

#[allow(clippy::too_many_arguments)]
fn intent(
    cloid: Cloid,
    symbol: &str,
    side: Side,
    kind: OrderKind,
    qty: Decimal,
    price: Option<Decimal>,
    trigger_price: Option<Decimal>,
    reduce_only: bool,
    tif: TimeInForce,
) -> OrderIntent {
    OrderIntent { cloid, symbol: symbol.to_owned(), side, kind, qty, price, trigger_price, reduce_only, tif }
}

#[cfg(test)]
mod tests;

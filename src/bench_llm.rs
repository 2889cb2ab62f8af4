//! `quantfold bench llm`: what an LLM trader costs besides its model.
//!
//! **Overhead** (issue #14, target p99 < 1 ms): one trader of `examples/llm/nof0.tmpl` on
//! seeded 1-minute bars, deciding every other bar, its model answering in-process at once
//! (`llm_server::model::decide`, the local server's rule, without HTTP; the rule's own time is
//! measured and taken out). Each decision is timed on its own, from the step of the bar that
//! starts it to the end of the settle after its answer: the kline journaled, the context, the
//! render, the digest, `LlmPromptRendered` journaled; the answer journaled, parsed, validated
//! against the schema, the risk gates, the order's pre-append checks, `OrderSubmitted`
//! journaled and the simulated exchange's acknowledgement. The journal is a real sled journal
//! under the live default group commit. Baseline in the same run: the bars in between, which
//! decide nothing (the kline journaled, folded and routed).
//!
//! **Traders**: `--traders` traders of the same template in one engine (one account, the
//! capital split evenly) against `llm_server` in-process on loopback, on a runtime and thread
//! of its own. Every trader decides on every bar for `--rounds` bars; their calls go out side
//! by side, as `quantfold live` makes them (`llm_port::Models` on a runtime beside the engine
//! thread), and each answer is stepped on the engine thread as it arrives. A decision is timed
//! from the step of its bar (which renders every trader's prompt before any call goes out) to
//! its answer's effects journaled.

use std::{
    cell::Cell,
    collections::BTreeMap,
    path::Path,
    process::ExitCode,
    rc::Rc,
    sync::{mpsc, Arc},
    time::{Duration, Instant},
};

use anyhow::Context;
use backtest::data::{Bar, ReadOptions};
use engine::{Effect, Engine, Input, LlmPort, Venue, WithLlm};
use journal::{
    event::{Event, Json as EventJson, Kline, LlmTraderLoad, TraderStart},
    Durability, State,
};
use rust_decimal::Decimal;
use serde_json::{json, Value as Json};
use sim::{SimConfig, SimVenue};
use strategies::{
    llm::{config::TraderConfig, LlmRequest},
    sink::JournalSink,
};

use crate::llm_port::Models;

const SYMBOL: &str = "BTCUSDT";
const INTERVAL_MS: i64 = 60_000;
const START_MS: i64 = 1_640_995_200_000;
/// Bars journaled before the traders start, so their first context has its indicators.
const WARM_UP_BARS: usize = 60;
/// The account all traders share.
const CASH: i64 = 10_000;
/// The variable the generated trader file names for its key; set here, read by `Models`.
const KEY_ENV: &str = "QF_BENCH_LLM_KEY";
/// The target of issue #14.
const TARGET_P99_US: u64 = 1_000;
/// How long the traders' run waits for one answer before giving up.
const ANSWER_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
pub struct LlmBench<'a> {
    /// Decisions timed for the overhead.
    pub decisions: usize,
    /// Traders in the run against the local server.
    pub traders: usize,
    /// Bars of that run: every trader decides on each.
    pub rounds: usize,
    pub dir: Option<&'a Path>,
}

pub fn llm(b: &LlmBench) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        b.decisions >= 1 && b.traders >= 1 && b.rounds >= 1,
        "--decisions, --traders and --rounds must be at least 1"
    );
    // Before any thread exists: the key the model clients read (the local server takes any).
    if std::env::var(KEY_ENV).map_or(true, |v| v.is_empty()) {
        std::env::set_var(KEY_ENV, "bench-local");
    }
    let scratch = match b.dir {
        Some(d) => tempfile::Builder::new().prefix("qf-bench-").tempdir_in(d),
        None => tempfile::Builder::new().prefix("qf-bench-").tempdir(),
    }
    .context("failed to create a scratch directory")?;
    let overhead = overhead(scratch.path(), b.decisions)?;
    let traders = traders(scratch.path(), b.traders, b.rounds)?;
    let report = json!({
        "target": { "decision_p99_us_max": TARGET_P99_US, "of": "overhead.decision_us.p99_us" },
        "overhead": overhead,
        "traders": traders,
    });
    say!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

/// One trader, its model answering in-process: the per-decision overhead without the network.
fn overhead(scratch: &Path, decisions: usize) -> anyhow::Result<Json> {
    let dir = scratch.join("overhead");
    let configs = trader_configs(&dir, 1, "2m", "http://127.0.0.1:9/v1")?;
    let bars = seeded_bars(&dir, WARM_UP_BARS + 2 * decisions + 4, 1)?;
    let mut engine = Engine::new(JournalSink::open(&dir.join("journal"), Durability::GROUP_DEFAULT)?);
    let spent = Rc::new(Cell::new(Duration::ZERO));
    let calls = Rc::new(Cell::new(0u64));
    let mut port = InProcess { seed: 0, spent: spent.clone(), calls: calls.clone() };
    let mut venue = WithLlm::new(SimVenue::new(SimConfig::default()), &mut port);
    let mut kline = Kline::zeroed(SYMBOL);
    let journaled = venue.inner.config.journaled();
    set_up(&mut engine, &mut venue, journaled)?;
    let mut bars = bars.iter();
    warm_up(&mut engine, &mut venue, &mut kline, &mut bars, &configs)?;

    let (mut decision, mut prompt, mut answer, mut model, mut baseline) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Each decision by where it ended: an order through the checks, refused (gates or the
    // answer itself, with a notification), or a hold.
    let mut by_outcome: BTreeMap<&'static str, Vec<u64>> = BTreeMap::new();
    let id = configs[0].id.clone();
    let marks = |state: &State| {
        state
            .traders
            .get(&id)
            .map_or((0, 0), |t| (t.stats.orders_submitted + t.stats.orders_rejected, t.stats.notifications))
    };
    let mut events = 0u64;
    for bar in bars {
        if decision.len() == decisions {
            break;
        }
        let close_ms = set_bar(&mut kline, bar);
        for (who, t, event) in venue.inner.on_bar(engine.state(), &kline) {
            engine.step(t, &who, &event, &mut venue)?;
        }
        let (calls_before, model_before, len_before) = (calls.get(), spent.get(), engine.sink().journal.len());
        let marks_before = marks(engine.state());
        let event = Event::KlineReceived(kline.clone());
        let began = Instant::now();
        engine.step(close_ms, "", &event, &mut venue)?;
        let prompted = began.elapsed();
        engine.settle(&mut venue)?;
        let total = began.elapsed();
        if calls.get() == calls_before {
            baseline.push(micros(total));
            continue;
        }
        let rule = spent.get() - model_before;
        let (orders, notes) = marks(engine.state());
        let outcome = if orders > marks_before.0 {
            "ordered"
        } else if notes > marks_before.1 {
            "refused"
        } else {
            "hold"
        };
        by_outcome.entry(outcome).or_default().push(micros(total.saturating_sub(rule)));
        decision.push(micros(total.saturating_sub(rule)));
        prompt.push(micros(prompted));
        answer.push(micros(total.saturating_sub(prompted).saturating_sub(rule)));
        model.push(micros(rule));
        events += engine.sink().journal.len() - len_before;
    }
    engine.sink_mut().journal.sync()?;
    anyhow::ensure!(decision.len() == decisions, "only {} of {decisions} decisions were made", decision.len());
    let tally = tally(&engine.sink().journal)?;
    let decision_pcts = percentiles(&mut decision);
    let p99 = decision_pcts["p99_us"].as_u64().unwrap_or(u64::MAX);
    let baseline_pcts = percentiles(&mut baseline);
    let ratio = |a: &Json, b: &Json| {
        let (a, b) = (a["p50_us"].as_f64().unwrap_or(0.0), b["p50_us"].as_f64().unwrap_or(0.0));
        (a / b.max(1.0) * 10.0).round() / 10.0
    };
    Ok(json!({
        "decisions": decision.len(),
        "journal": "sled, group commit 10 ms / 4096 events (the live default)",
        "decision_us": decision_pcts,
        "target_met": p99 < TARGET_P99_US,
        "breakdown": {
            "prompt_us": percentiles(&mut prompt),
            "answer_us": percentiles(&mut answer),
            "model_rule_us_excluded": percentiles(&mut model),
        },
        "decision_us_by_outcome": by_outcome
            .iter_mut()
            .map(|(outcome, micros)| {
                let mut p = percentiles(micros);
                p["decisions"] = json!(micros.len());
                (outcome.to_string(), p)
            })
            .collect::<serde_json::Map<_, _>>(),
        "baseline_bar_without_decision_us": baseline_pcts,
        "decision_vs_baseline_p50": ratio(&decision_pcts, &baseline_pcts),
        "events_journaled_per_decision": (events as f64 / decision.len() as f64 * 10.0).round() / 10.0,
        "journaled": tally,
    }))
}

/// `traders` traders on every bar for `rounds` bars against the local server over HTTP.
fn traders(scratch: &Path, traders: usize, rounds: usize) -> anyhow::Result<Json> {
    let dir = scratch.join("traders");
    let server_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("llm-server").enable_all().build()?;
    let server = server_runtime.block_on(llm_server::serve(llm_server::Config::default()))?;
    let configs = trader_configs(&dir, traders, "1m", &server.openai_base_url())?;
    let bars = seeded_bars(&dir, WARM_UP_BARS + rounds, 2)?;
    let client_runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).thread_name("llm-calls").enable_all().build()?;
    let (tx, rx) = mpsc::channel();
    let mut venue = SideBySide {
        inner: SimVenue::new(SimConfig::default()),
        models: Arc::new(Models::new(0)),
        calls: client_runtime.handle().clone(),
        answers: tx,
        asked: 0,
    };
    let mut engine = Engine::new(JournalSink::open(&dir.join("journal"), Durability::GROUP_DEFAULT)?);
    let mut kline = Kline::zeroed(SYMBOL);
    let journaled = venue.inner.config.journaled();
    set_up(&mut engine, &mut venue, journaled)?;
    let mut bars = bars.iter();
    warm_up(&mut engine, &mut venue, &mut kline, &mut bars, &configs)?;

    let (mut decision, mut round_trip, mut prompts) = (Vec::new(), Vec::new(), Vec::new());
    let mut failed = 0u64;
    let began_run = Instant::now();
    for bar in bars {
        let close_ms = set_bar(&mut kline, bar);
        for (who, t, event) in venue.inner.on_bar(engine.state(), &kline) {
            engine.step(t, &who, &event, &mut venue)?;
        }
        let asked_before = venue.asked;
        let event = Event::KlineReceived(kline.clone());
        let began = Instant::now();
        engine.step(close_ms, "", &event, &mut venue)?;
        engine.settle(&mut venue)?;
        prompts.push(micros(began.elapsed()));
        for _ in asked_before..venue.asked {
            let (trader, event, rtt) = rx.recv_timeout(ANSWER_WAIT).context("no answer from the model in 60 s")?;
            failed += u64::from(matches!(event, Event::LlmFailed { .. }));
            engine.step(close_ms, &trader, &event, &mut venue)?;
            engine.settle(&mut venue)?;
            decision.push(micros(began.elapsed()));
            round_trip.push(micros(rtt));
        }
    }
    let seconds = began_run.elapsed().as_secs_f64();
    engine.sink_mut().journal.sync()?;
    let requests = server.request_count();
    server_runtime.block_on(server.shutdown());
    let tally = tally(&engine.sink().journal)?;
    Ok(json!({
        "traders": traders,
        "rounds": rounds,
        "decisions": decision.len(),
        "failed_calls": failed,
        "server_requests": requests,
        "seconds": (seconds * 1000.0).round() / 1000.0,
        "decisions_per_s": (decision.len() as f64 / seconds.max(1e-9)).round(),
        "decision_us": percentiles(&mut decision),
        "http_round_trip_us": percentiles(&mut round_trip),
        "bar_with_all_prompts_us": percentiles(&mut prompts),
        "journaled": tally,
    }))
}

/// The model of the overhead run: the local server's rule, called in-process, timed.
struct InProcess {
    seed: u64,
    /// Time spent in the rule and in making the body: the model's, not the trader's.
    spent: Rc<Cell<Duration>>,
    calls: Rc<Cell<u64>>,
}

impl LlmPort for InProcess {
    fn call(&mut self, time_ms: i64, _trader: &str, request: &LlmRequest) -> (i64, Event) {
        let began = Instant::now();
        let prompt = format!("{}\n{}", request.system, request.user);
        let decision = llm_server::model::decide(&prompt, self.seed).to_string();
        let tokens_prompt = llm_server::model::count_tokens(&prompt) + 2 * llm_server::model::TOKENS_PER_MESSAGE;
        let tokens_completion = llm_server::model::count_tokens(&decision);
        let raw = json!({
            "id": format!("chatcmpl-bench-{}", self.calls.get()),
            "object": "chat.completion",
            "created": 0,
            "model": request.model.model,
            "choices": [{
                "index": 0,
                "message": { "role": "assistant", "content": decision, "refusal": null },
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": tokens_prompt,
                "completion_tokens": tokens_completion,
                "total_tokens": tokens_prompt + tokens_completion,
            },
        })
        .to_string();
        let event = Event::LlmResponded {
            digest: request.digest,
            model: request.model.model.clone(),
            raw,
            tokens_prompt: u32::try_from(tokens_prompt).unwrap_or(u32::MAX),
            tokens_completion: u32::try_from(tokens_completion).unwrap_or(u32::MAX),
            cost_usd: Decimal::ZERO,
            latency_ms: 0,
        };
        self.calls.set(self.calls.get() + 1);
        self.spent.set(self.spent.get() + began.elapsed());
        (time_ms, event)
    }
}

/// The simulated exchange, with model calls made side by side on a runtime of their own as
/// `quantfold live` makes them; answers come back on `answers` with their round trip.
struct SideBySide {
    inner: SimVenue,
    models: Arc<Models>,
    calls: tokio::runtime::Handle,
    answers: mpsc::Sender<(String, Event, Duration)>,
    asked: u64,
}

impl Venue for SideBySide {
    fn needs_durable(&self) -> bool {
        self.inner.needs_durable()
    }

    fn send(&mut self, effect: &Effect, state: &State) {
        let Effect::CallLlm { trader, request, .. } = effect else {
            return self.inner.send(effect, state);
        };
        self.asked += 1;
        let (models, answers, trader, request) =
            (self.models.clone(), self.answers.clone(), trader.clone(), (**request).clone());
        self.calls.spawn(async move {
            let began = Instant::now();
            let event = models.ask(&request).await;
            let _ = answers.send((trader, event, began.elapsed()));
        });
    }

    fn poll(&mut self, state: &State) -> Vec<Input> {
        self.inner.poll(state)
    }
}

/// The venue's settings and the instrument, journaled as a backtest journals them.
fn set_up(
    engine: &mut Engine<JournalSink>,
    venue: &mut dyn Venue,
    journaled: journal::event::VenueConfig,
) -> anyhow::Result<()> {
    engine.step(START_MS, "", &Event::VenueConfigured(journaled), venue)?;
    let mut config = backtest::run::Config::new(Default::default(), Vec::new());
    config.cash = Decimal::from(CASH);
    let instrument = backtest::run::default_instrument(SYMBOL, &config);
    engine.step(START_MS, "", &Event::InstrumentDefined(instrument), venue)?;
    Ok(engine.settle(venue)?)
}

/// [`WARM_UP_BARS`] bars, then the traders start (each its share of the account, then its
/// journaled configuration) so their first prompt has warm indicators.
fn warm_up<'b>(
    engine: &mut Engine<JournalSink>,
    venue: &mut dyn Venue,
    kline: &mut Kline,
    bars: &mut impl Iterator<Item = &'b Bar>,
    configs: &[TraderConfig],
) -> anyhow::Result<()> {
    let mut last_ms = START_MS;
    for bar in bars.take(WARM_UP_BARS) {
        last_ms = set_bar(kline, bar);
        engine.step(last_ms, "", &Event::KlineReceived(kline.clone()), venue)?;
    }
    for trader in configs {
        let start = TraderStart {
            exchange: "sim".into(),
            account: "bench".into(),
            currency: "USDT".into(),
            allocation_pct: (trader.capital / Decimal::from(CASH) * Decimal::ONE_HUNDRED).round_dp(4),
            capital_quote: trader.capital,
            leverage: Decimal::from(trader.leverage),
        };
        engine.step(last_ms, &trader.id, &Event::TraderStarted(start), venue)?;
        let (json, config_hash) = trader.to_journal();
        let load = LlmTraderLoad { file: trader.template_id.clone(), config: EventJson(json), config_hash };
        engine.step(last_ms, &trader.id, &Event::LlmTraderLoaded(load), venue)?;
    }
    Ok(engine.settle(venue)?)
}

/// `kline` made `bar`; returns its close time.
fn set_bar(kline: &mut Kline, bar: &Bar) -> i64 {
    (kline.interval_ms, kline.open_time_ms, kline.closed) = (INTERVAL_MS, bar.open_time_ms, true);
    (kline.open, kline.high, kline.low, kline.close, kline.volume) =
        (bar.open, bar.high, bar.low, bar.close, bar.volume);
    bar.open_time_ms + INTERVAL_MS
}

/// `n` seeded 1-minute bars of [`SYMBOL`], through a CSV as `quantfold data synth` writes it.
fn seeded_bars(dir: &Path, n: usize, seed: u64) -> anyhow::Result<Vec<Bar>> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("bench_{SYMBOL}_1m.csv"));
    let file = std::fs::File::create(&path).context("failed to create the bars file")?;
    backtest::data::synth(n, INTERVAL_MS, seed, START_MS, std::io::BufWriter::new(file))?;
    let (_, bars) = backtest::data::load(&path, &ReadOptions::new().symbol(SYMBOL))?;
    Ok(bars)
}

/// `traders` copies of the example trader (nof0's template and schema) through a trader file,
/// as `backtest --trader` reads one: ids `llm-000`..., the account split evenly, no budget
/// limit (the run is many decisions of one event-time day), the model at `base_url`.
fn trader_configs(
    dir: &Path,
    traders: usize,
    decision_interval: &str,
    base_url: &str,
) -> anyhow::Result<Vec<TraderConfig>> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("nof0.tmpl"), include_str!("../examples/llm/nof0.tmpl"))?;
    std::fs::write(dir.join("decision.schema.json"), include_str!("../examples/llm/decision.schema.json"))?;
    let toml = format!(
        r#"[[trader]]
id = "llm-000"
kind = "llm"
template = "nof0.tmpl"
schema = "decision.schema.json"
prompt_version = "v1"
symbols = ["{SYMBOL}"]
interval = "1m"
decision_interval = "{decision_interval}"
klines = 50
stale_after = "2m"
cache_ttl = "0"
capital = 1000
leverage = 10
entry = "market_ioc"

[trader.risk]
min_confidence = 60
min_risk_reward = "2"
max_positions = 1
max_position_size_usd = "5000"
max_margin_use_pct = "60"
leverage_major_max = 10
leverage_alt_max = 5
major_coins = ["{SYMBOL}"]
allow_pyramiding = false
allow_hedging = false

[trader.budget]
tokens_per_day = 0
usd_per_day = "0"

[[trader.model]]
provider = "openai"
base_url = "{base_url}"
model = "gpt-4o-mini"
key_env = "{KEY_ENV}"
max_tokens = 800
priority = 1
timeout_ms = 20000
"#
    );
    let file = dir.join("trader.toml");
    std::fs::write(&file, toml)?;
    let first = strategies::llm::config::load(&file)?.remove(0);
    let capital = (Decimal::from(CASH) / Decimal::from(traders))
        .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);
    Ok((0..traders)
        .map(|i| {
            let mut t = first.clone();
            t.id = format!("llm-{i:03}");
            t.capital = capital;
            t
        })
        .collect())
}

/// The LLM traders' journaled events by kind, and the valid decisions by signal.
fn tally(journal: &journal::Journal) -> anyhow::Result<Json> {
    let mut kinds: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut signals: BTreeMap<String, u64> = BTreeMap::new();
    for record in journal.records_unverified(0) {
        let record = record?;
        if !record.trader.starts_with("llm-") {
            continue;
        }
        *kinds.entry(record.event.kind()).or_insert(0) += 1;
        if let Event::DecisionParsed { valid: true, decisions, .. } = &record.event {
            let signal = decisions.0.get("signal").and_then(Json::as_str).unwrap_or("?").to_owned();
            *signals.entry(signal).or_insert(0) += 1;
        }
    }
    let mut out = serde_json::Map::new();
    for (kind, n) in kinds {
        out.insert(kind.to_owned(), json!(n));
    }
    out.insert("signals".to_owned(), json!(signals));
    Ok(Json::Object(out))
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// p50, p99 and the maximum of `micros` (sorted here); zeros when empty.
fn percentiles(micros: &mut [u64]) -> Json {
    if micros.is_empty() {
        return json!({ "p50_us": 0, "p99_us": 0, "max_us": 0 });
    }
    micros.sort_unstable();
    let at = |q: f64| micros[((micros.len() - 1) as f64 * q).round() as usize];
    json!({ "p50_us": at(0.5), "p99_us": at(0.99), "max_us": at(1.0) })
}

//! `quantfold live`: the engine with a live feed, on a Bybit or Hyperliquid account, or on paper.
//!
//! One thread owns the engine (the strategies' QuickJS runtimes live there); a small
//! tokio runtime beside it runs the WebSocket streams, the order task and the
//! signal handlers, which all talk to the engine thread through one channel
//! ([`Msg`]). The engine thread takes a message, turns it into inputs (once: see
//! [`inputs`]), steps each, and the engine hands the effects of the decisions —
//! durable first — to the venue: the order task for a live account ([`orders`]), the
//! simulated exchange for paper trading, which then answers in the same thread.
//!
//! LLM traders' model calls (`Effect::CallLlm`) are asked on the runtime once the step
//! that decided them is done (see [`Port`]); the answer comes back as [`Msg::Llm`] and is
//! stepped as the `LlmResponded`/`LlmFailed` input at the close of the newest journaled bar
//! (see `Session::market_time`). The engine thread never waits for a model.
//!
//! With a `[telegram]` section, the notifications the journal makes durable go to Telegram
//! through the outbox ([`outbox`]); each delivery comes back as [`Msg::Notified`] and is
//! journaled as `NotificationDelivered`.
//!
//! With `--mirror URL`, the durable records go to NATS JetStream too ([`mirror`]), from a
//! task on the runtime: a server that is down never slows the engine.
//!
//! Start-up (docs/live.md has the recovery protocol step by step): open the journal —
//! a new one gets the venue, the instruments, the traders and their strategies; an
//! existing one is resumed (rebuilt by re-deriving it, which proves this build
//! reproduces it) — then, on a live account, resolve every order the journal holds
//! without an answer by asking the venue for its `orderLinkId`, take the executions
//! since the last journaled one, and journal an `ExchangeReconciled` with every
//! difference between the venue and the ledger. Then the streams; after each
//! (re)connect the gap is filled by REST (bars since the last journaled one — at the
//! start, the strategies' declared warm-up — and, for the private stream, executions
//! and order states).

pub mod config;
mod hl;
mod inputs;
mod link;
mod mirror;
mod orders;
mod outbox;
mod serve;

use std::{
    collections::{BTreeMap, BTreeSet},
    ops::{Deref, DerefMut},
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use anyhow::{bail, Context};
use bybit::{Credentials, Endpoints, Rest, RestOptions};
use engine::{Effect, Engine, Input, Venue};
use journal::{
    event::{Cloid, Json, Kline, LlmTraderLoad, Reconciliation, RejectReason, TraderStart, VenueConfig},
    Durability, Event, State,
};
use rust_decimal::Decimal;
use sim::{SimConfig, SimVenue};
use strategies::{llm::LlmRequest, runtime::StrategySpec, sink::JournalSink};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::llm_port::Models;
use config::{Config, DurabilityKind, VenueKind};
use hl::HlLink;
use inputs::{OrderReport, Seen};
use link::{BybitLink, Feed, Link};
pub use orders::Probe;
use orders::{Exec, Job, LiveVenue, Outcome};

/// `quantfold live`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The config (TOML; see docs/live.md).
    #[arg(long)]
    pub config: PathBuf,
    /// The journal directory (default: the config's `[journal] dir`). An existing journal is resumed.
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// Sign and log order requests without sending them (reads still go out).
    #[arg(long)]
    pub dry_run: bool,
    /// Serve the read-only API, metrics and dashboard of the running session here (see
    /// `quantfold serve`; a non-loopback address needs QUANTFOLD_API_TOKEN).
    #[arg(long)]
    pub serve: Option<std::net::SocketAddr>,
    /// Copy every durable record of the journal to this NATS JetStream server
    /// (nats://host:4222), off the engine thread; see docs/scale-out.md.
    #[arg(long)]
    pub mirror: Option<String>,
    /// The journal's name on the mirror (default: the journal directory's name).
    #[arg(long, requires = "mirror")]
    pub journal_id: Option<String>,
}

/// What reaches the engine thread.
#[derive(Debug)]
pub enum Msg {
    Stream(Feed),
    Order {
        trader: String,
        cloid: Cloid,
        outcome: Outcome,
    },
    Stop(String),
    /// Time to flush what group commit holds.
    Tick,
    /// The notification outbox's delivery task: a message delivered, or delivery halted.
    Notified(telegram::Report),
    /// A model's answer to an LLM trader's call: the `LlmResponded` or `LlmFailed` to step.
    Llm {
        trader: String,
        event: Event,
    },
}

/// Runs `quantfold live` until SIGINT or SIGTERM.
///
/// # Errors
/// A bad config, missing credentials, an unusable journal, or a venue that cannot be reached at start.
pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let config = config::load(&args.config)?;
    let dir = args
        .journal
        .clone()
        .or_else(|| config.journal.dir.clone())
        .context("no journal: give --journal DIR or `dir` under [journal] in the config")?;
    let mirror = match &args.mirror {
        Some(url) => Some((url.as_str(), crate::mirror_cmd::journal_id(&dir, args.journal_id.as_deref())?)),
        None => None,
    };
    run_with(&config, &dir, args.dry_run, None, args.serve, mirror.as_ref().map(|(u, id)| (*u, id.as_str())))
}

/// [`run`] with a checked config: serving the session's API on `serve` when given; a
/// `probe` takes `bench live`'s measurements and can stop the run.
///
/// # Errors
/// As [`run`].
pub fn run_with(
    config: &Config,
    dir: &Path,
    dry_run: bool,
    probe: Option<Arc<Probe>>,
    serve: Option<std::net::SocketAddr>,
    mirror_to: Option<(&str, &str)>,
) -> anyhow::Result<ExitCode> {
    let began = std::time::Instant::now();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    // Signals first: a SIGTERM during a long start-up (a resume re-derives the whole
    // journal) stops the run cleanly once it is up, instead of killing it mid-way.
    let (tx, rx) = unbounded_channel();
    let stop_asked = StopAsked::default();
    spawn_signals(&runtime, tx.clone(), stop_asked.clone());
    let telegram_token = config.telegram.as_ref().map(outbox::Outbox::token).transpose()?;
    // Metrics exist when they are served: made first, so the venue's client reports to them.
    let metrics = serve.map(|_| serve::metrics());
    let observed = metrics.as_ref().map(|(_, m)| m.clone());
    let mut session = Session::open(config, dir, dry_run, runtime, (tx, rx), probe.clone(), observed)?;
    session.stop_asked = stop_asked;
    if let (Some(addr), Some(metrics)) = (serve, metrics) {
        let journal = &session.engine.sink().journal;
        session.served = Some(serve::Served::start(&session.runtime, addr, journal, metrics)?);
    }
    if let (Some(telegram), Some(token)) = (&config.telegram, &telegram_token) {
        let (now, len) = (session.event_time(), session.engine.sink().journal.len());
        session.outbox = Some(outbox::Outbox::start(telegram, token, &session.runtime, session.tx.clone(), len, now)?);
    }
    if let Some((url, id)) = mirror_to {
        session.mirror = Some(mirror::LiveMirror::start(&session.runtime, url, id, session.metrics.clone())?);
    }
    // The journal as it stands, to the replica, the outbox and the mirror.
    session.forward_tail()?;
    if let Some(served) = &session.served {
        served.caught_up();
    }
    session.start()?;
    if let Some(probe) = &session.probe {
        if let Ok(mut started) = probe.started.lock() {
            *started = Some(began.elapsed());
        }
    }
    let reason = session.trade()?;
    session.stop(&reason)?;
    Ok(ExitCode::SUCCESS)
}

/// How orders get filled: a live account's order task, or the simulated exchange.
enum Mode {
    Live(Port<LiveVenue>),
    Paper(Port<SimVenue>),
}

impl Mode {
    fn venue(&mut self) -> &mut dyn Venue {
        match self {
            Mode::Live(v) => v,
            Mode::Paper(v) => v,
        }
    }

    /// The model calls decided since the last take, in decision order.
    fn take_calls(&mut self) -> Vec<(String, LlmRequest)> {
        match self {
            Mode::Live(v) => std::mem::take(&mut v.calls),
            Mode::Paper(v) => std::mem::take(&mut v.calls),
        }
    }
}

/// A venue with the session's model port beside it: orders and cancels go to the venue,
/// model calls are held until the step that decided them is done (journaled, durable when
/// the venue needs it), then asked on the runtime by `Session::after_step`.
struct Port<V> {
    venue: V,
    calls: Vec<(String, LlmRequest)>,
}

impl<V> Port<V> {
    fn new(venue: V) -> Port<V> {
        Port { venue, calls: Vec::new() }
    }
}

impl<V> Deref for Port<V> {
    type Target = V;

    fn deref(&self) -> &V {
        &self.venue
    }
}

impl<V> DerefMut for Port<V> {
    fn deref_mut(&mut self) -> &mut V {
        &mut self.venue
    }
}

impl<V: Venue> Venue for Port<V> {
    fn needs_durable(&self) -> bool {
        self.venue.needs_durable()
    }

    fn send(&mut self, effect: &Effect, state: &State) {
        match effect {
            Effect::CallLlm { trader, request, .. } => self.calls.push((trader.clone(), (**request).clone())),
            other => self.venue.send(other, state),
        }
    }

    fn poll(&mut self, state: &State) -> Vec<Input> {
        self.venue.poll(state)
    }
}

struct Session {
    config: Config,
    runtime: tokio::runtime::Runtime,
    /// The venue: the live account's, or paper trading's market data.
    link: Link,
    engine: Engine<JournalSink>,
    mode: Mode,
    seen: Seen,
    /// A journal made by this process (set-up to do) rather than resumed.
    fresh: bool,
    tx: UnboundedSender<Msg>,
    rx: UnboundedReceiver<Msg>,
    /// The order task, ended at stop.
    executor: Option<tokio::task::JoinHandle<()>>,
    /// Per trader: the UTC day (event time) and the equity at its first step (max_daily_loss).
    day_start: BTreeMap<String, (i64, Decimal)>,
    probe: Option<Arc<Probe>>,
    /// `--serve`: the API's replica, fed after each step.
    served: Option<serve::Served>,
    /// `[telegram]`: the notifications to deliver.
    outbox: Option<outbox::Outbox>,
    /// `--mirror`: the durable records to NATS JetStream.
    mirror: Option<mirror::LiveMirror>,
    /// The next seq the served replica, the outbox and the mirror have not been shown.
    tail_next: u64,
    /// `--serve`: what only the shell sees, for `/metrics`.
    metrics: Option<Arc<control::Metrics>>,
    /// The LLM traders' model clients; calls run on `runtime`.
    models: Arc<Models>,
    /// A reconnect asked for a reconciliation not yet run.
    reconcile_due: bool,
    last_reconcile: Option<std::time::Instant>,
    /// Set by SIGINT/SIGTERM (with the reason), besides the `Msg::Stop` it sends.
    stop_asked: StopAsked,
}

/// Why the run was asked to stop, once it was.
type StopAsked = Arc<std::sync::Mutex<Option<String>>>;

const DAY_MS: i64 = 86_400_000;
/// Rounds of asking the venue before a disagreement is journaled (see `Session::reconcile`).
const RECONCILE_ATTEMPTS: u32 = 3;
/// Recently closed orders per trader whose executions a catch-up asks for.
const CLOSED_ORDERS_ASKED: usize = 8;
/// Pages of funding executions a catch-up reads (100 each: three a day for 7 days fit in one).
const FUNDING_PAGES: usize = 2;
/// The least time between two reconciliations that reconnects ask for.
const RECONCILE_GAP: Duration = Duration::from_secs(3);
/// How long a clean stop waits for the outbox to deliver what it holds.
const OUTBOX_DRAIN: Duration = Duration::from_secs(5);

impl Session {
    fn open(
        config: &Config,
        dir: &Path,
        dry_run: bool,
        runtime: tokio::runtime::Runtime,
        (tx, rx): (UnboundedSender<Msg>, UnboundedReceiver<Msg>),
        probe: Option<Arc<Probe>>,
        metrics: Option<Arc<control::Metrics>>,
    ) -> anyhow::Result<Session> {
        // Every model's key is in the environment before anything is journaled: a missing
        // one is a start-up error, never a journaled failure.
        let missing = crate::llm_port::missing_keys(config.llm_traders());
        if !missing.is_empty() {
            bail!("{}: the API keys come from the environment only", missing.join("; "));
        }
        let durability = match config.journal.durability {
            DurabilityKind::Group => Durability::GROUP_DEFAULT,
            DurabilityKind::EveryAppend => Durability::EveryAppend,
        };
        let existing = dir.is_dir() && std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
        // A new journal: the traders' allocations must fit the account (paper: checked with
        // the config), so the venue is asked first. A resumed one keeps the allocations it
        // started with, and is resumed first: its nonce reservations are where a Hyperliquid
        // link continues.
        let (mut engine, link, seen) = if existing {
            let resumed = replay::resume::resume(dir, durability)?;
            tracing::info!(
                events = resumed.events,
                checked = resumed.decisions_checked,
                appended = resumed.appended,
                "resumed {}",
                dir.display()
            );
            let seen = Seen::from_journal(&resumed.engine.sink().journal)?;
            let link = connect(config, dry_run, &runtime, metrics.as_ref(), seen.nonces_through)?;
            (resumed.engine, link, seen)
        } else {
            let link = connect(config, dry_run, &runtime, metrics.as_ref(), None)?;
            if config.venue.kind != VenueKind::Paper {
                let equity = runtime.block_on(link.equity())?;
                config.check_allocation(equity)?;
            }
            (Engine::new(JournalSink::open(dir, durability)?), link, Seen::default())
        };
        engine.sink_mut().snapshot_every = config.journal.snapshot_every;
        if let Some(metrics) = &metrics {
            engine.sink().journal.set_timings(metrics.clone());
        }

        let (mode, executor) = match (config.venue.kind, &link) {
            (VenueKind::Paper, _) => (Mode::Paper(Port::new(SimVenue::new(sim_config(config)))), None),
            (_, link) => {
                let (exec, wire) = match link {
                    Link::Bybit(b) => (Exec::Bybit(b.rest.clone()), None),
                    Link::Hyperliquid(h) => (Exec::Hyperliquid(h.clone()), Some(h.clone())),
                };
                let (jobs_tx, jobs_rx) = unbounded_channel();
                let task = runtime.spawn(orders::execute(exec, jobs_rx, tx.clone(), probe.clone()));
                (Mode::Live(Port::new(LiveVenue::new(jobs_tx, config.limits.clone(), wire))), Some(task))
            }
        };
        Ok(Session {
            config: config.clone(),
            runtime,
            link,
            engine,
            mode,
            seen,
            fresh: !existing,
            tx,
            rx,
            executor,
            day_start: BTreeMap::new(),
            probe,
            served: None,
            mirror: None,
            outbox: None,
            tail_next: 0,
            metrics,
            models: Arc::new(Models::new(0)),
            reconcile_due: false,
            last_reconcile: None,
            stop_asked: StopAsked::default(),
        })
    }

    /// Set-up or recovery, then the strategies, the streams and the signal handlers.
    fn start(&mut self) -> anyhow::Result<()> {
        let now = self.event_time();
        if self.fresh {
            let venue = match self.config.venue.kind {
                VenueKind::Paper => sim_config(&self.config).journaled(),
                kind => VenueConfig {
                    kind: kind.name().to_owned(),
                    slippage_bps: Decimal::ZERO,
                    intrabar: String::new(),
                    liquidation_fee_rate: Decimal::ZERO,
                },
            };
            self.step(now, "", Event::VenueConfigured(venue))?;
        }
        self.define_instruments(now)?;
        // A resumed journal may end with a model call the dead process never saw answered.
        self.fail_unanswered("no answer: the process ended before the model answered")?;
        self.start_traders(now)?;
        if matches!(self.mode, Mode::Live(_)) {
            // Nothing is signed before the journal holds its nonces.
            self.reserve_nonces()?;
            self.recover()?;
            self.reconcile("start")?;
        }
        self.load_strategies()?;
        self.spawn_streams();
        Ok(())
    }

    /// Event time for a model's answer: the close of the newest journaled bar, else the
    /// ledger's time. On a venue whose clock is the market's this is the ledger's time (bars
    /// close after the set-up's server time); the local server signs with the wall clock while
    /// it replays old bars, and an answer stamped with that clock would come after every bar
    /// it replays (on paper its orders would never fill). An answer that arrives before the
    /// next bar closes is stamped as the backtest stamps it: at the decision's bar.
    fn market_time(&self) -> i64 {
        let newest = self
            .seen
            .last_bar
            .iter()
            .filter(|(_, open)| **open > i64::MIN)
            .map(|((_, every), open)| open + every)
            .max();
        newest.unwrap_or_else(|| self.engine.state().time_ms)
    }

    /// Event time for a driver's own input: the ledger's, or the venue's clock before any event.
    fn event_time(&self) -> i64 {
        let state = self.engine.state();
        if state.last_seq.is_some() {
            state.time_ms
        } else {
            self.link.now_ms()
        }
    }

    /// Hyperliquid: journals a nonce reservation when one is due, durably, then lets the
    /// order task sign under it (see `hl.rs`). Bybit and paper: nothing.
    fn reserve_nonces(&mut self) -> anyhow::Result<()> {
        let Link::Hyperliquid(hl) = &self.link else { return Ok(()) };
        let now = u64::try_from(self.link.now_ms()).unwrap_or(0);
        let Some(through) = hl.nonces.due(now) else { return Ok(()) };
        let hl = hl.clone();
        let signer = hl.signer.map(|a| a.to_string()).unwrap_or_default();
        let time = self.event_time();
        self.step(time, "", Event::NoncesReserved { signer, through })?;
        self.engine.sink_mut().journal.sync()?;
        hl.nonces.raise(through);
        Ok(())
    }

    /// Steps one input; journal failures end the run.
    fn step(&mut self, time_ms: i64, trader: &str, event: Event) -> anyhow::Result<()> {
        self.engine.step(time_ms, trader, &event, self.mode.venue())?;
        self.after_step()
    }

    fn step_inputs(&mut self, inputs: Vec<Input>) -> anyhow::Result<()> {
        for input in inputs {
            self.step(input.time_ms, &input.trader, input.event)?;
        }
        Ok(())
    }

    /// The instruments of every traded symbol from the venue; journaled when new or changed.
    fn define_instruments(&mut self, now: i64) -> anyhow::Result<()> {
        let venue = &self.config.venue;
        // The account's own rates on Bybit; the config's on paper and on Hyperliquid.
        let fees = match venue.kind {
            VenueKind::Paper | VenueKind::Hyperliquid | VenueKind::HyperliquidTestnet => {
                Some((venue.taker_fee_rate, venue.maker_fee_rate))
            }
            _ => None,
        };
        let mmr = venue.maintenance_margin_rate;
        for symbol in symbols(&self.config) {
            let instrument = self.runtime.block_on(self.link.instrument(&symbol, mmr, fees))?;
            if self.engine.state().instruments.get(&symbol) != Some(&instrument) {
                self.step(now, "", Event::InstrumentDefined(instrument))?;
            }
        }
        Ok(())
    }

    /// `TraderStarted` for every trader of the config the journal does not have yet.
    fn start_traders(&mut self, now: i64) -> anyhow::Result<()> {
        let account_equity = match self.mode {
            Mode::Paper(_) => None,
            Mode::Live(_) => Some(self.runtime.block_on(self.link.equity())?),
        };
        for trader in self.config.traders.clone() {
            if self.engine.state().traders.get(&trader.id).is_some_and(|t| t.start.is_some()) {
                continue;
            }
            let allocation_pct = match account_equity {
                Some(equity) if equity > Decimal::ZERO => (trader.capital / equity * Decimal::ONE_HUNDRED).round_dp(4),
                _ => Decimal::ONE_HUNDRED,
            };
            let start = TraderStart {
                exchange: match self.config.venue.kind {
                    VenueKind::Paper => sim::VENUE_KIND.to_owned(),
                    kind => kind.name().to_owned(),
                },
                account: match (&self.mode, &self.link) {
                    (Mode::Paper(_), _) => "paper".into(),
                    (Mode::Live(_), Link::Bybit(_)) => "unified".into(),
                    (Mode::Live(_), Link::Hyperliquid(_)) => "perp".into(),
                },
                currency: "USDT".into(),
                allocation_pct,
                capital_quote: trader.capital,
                leverage: trader.leverage,
            };
            self.step(now, &trader.id, Event::TraderStarted(start))?;
            self.seen.started_ms.get_or_insert(now);
        }
        // LLM traders: the resolved configuration, as the backtest journals it; again when the
        // trader file changed since the journal last loaded it (the decider starts afresh).
        for trader in self.config.traders.clone() {
            let Some(llm) = &trader.llm else { continue };
            let (json, config_hash) = llm.to_journal();
            let running = self
                .engine
                .worker()
                .llm_traders()
                .find(|t| t.config().id == trader.id)
                .map(|t| t.config().to_journal().1);
            if running != Some(config_hash) {
                let load = LlmTraderLoad { file: llm.template_id.clone(), config: Json(json), config_hash };
                self.step(now, &trader.id, Event::LlmTraderLoaded(load))?;
            }
        }
        Ok(())
    }

    /// Journals an `LlmFailed` for every model call the journal holds unanswered: at a clean
    /// stop (an answer still on its way is not waited for; the trader's next cycle after a
    /// restart decides on fresh data), and after a resume (the dead process's call is lost
    /// with it). The call is not asked again: its prompt was rendered from market data that
    /// is old by now. Nothing is lost silently: the failure and its reason are in the journal,
    /// and the trader notifies it as any failed call.
    fn fail_unanswered(&mut self, why: &str) -> anyhow::Result<()> {
        let unanswered: Vec<(String, journal::Hash, String)> = self
            .engine
            .worker()
            .llm_traders()
            .filter_map(|t| t.unanswered().map(|(digest, model)| (t.config().id.clone(), digest, model.to_owned())))
            .collect();
        for (trader, digest, model) in unanswered {
            self.on_llm(&trader, Event::LlmFailed { digest, model, error: why.to_owned() })?;
        }
        Ok(())
    }

    /// A model's answer (or failure) for `trader`: stepped at the market's time (see
    /// [`Session::market_time`]). On paper the simulated exchange answers its orders at once,
    /// as the backtest settles after every model answer (and `replay verify` re-runs it so).
    fn on_llm(&mut self, trader: &str, event: Event) -> anyhow::Result<()> {
        if let Some(metrics) = &self.metrics {
            serve::observe_llm(metrics, &event);
        }
        let time = self.market_time();
        self.engine.step(time, trader, &event, self.mode.venue())?;
        if let Mode::Paper(sim) = &mut self.mode {
            self.engine.settle(sim)?;
        }
        self.after_step()
    }

    /// Loads every trader's strategy that is not running (a new journal, a new trader, or
    /// a journal stopped cleanly), then its warm-up comes with the first bars.
    fn load_strategies(&mut self) -> anyhow::Result<()> {
        for trader in self.config.traders.clone() {
            if trader.llm.is_some() || self.engine.worker().running(&trader.id) {
                continue;
            }
            let source = std::fs::read_to_string(&trader.strategy)
                .with_context(|| format!("cannot read the strategy {}", trader.strategy.display()))?;
            let file = trader.strategy.display().to_string();
            let spec = StrategySpec::new(&trader.id, &file, source, trader.params.clone(), trader.seed);
            let now = self.event_time();
            self.engine.load(spec, now, self.mode.venue())?;
            // The simulated exchange answers what st_init decided, as the backtest does.
            if let Mode::Paper(sim) = &mut self.mode {
                self.engine.settle(sim)?;
            }
            self.after_step()?;
        }
        Ok(())
    }

    fn spawn_streams(&mut self) {
        let (events_tx, mut events_rx) = unbounded_channel();
        {
            let _inside = self.runtime.enter();
            self.link.spawn_streams(feeds(&self.config), events_tx);
        }
        let tx = self.tx.clone();
        self.runtime.spawn(async move {
            while let Some(event) = events_rx.recv().await {
                if tx.send(Msg::Stream(event)).is_err() {
                    return;
                }
            }
        });
        let tx = self.tx.clone();
        self.runtime.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(10));
            loop {
                every.tick().await;
                if tx.send(Msg::Tick).is_err() {
                    return;
                }
            }
        });
    }

    /// The main loop: until a stop is asked for. Returns the reason.
    fn trade(&mut self) -> anyhow::Result<String> {
        loop {
            // A signal is honoured before the messages queued ahead of it.
            if let Some(reason) = self.stop_asked.lock().ok().and_then(|asked| asked.clone()) {
                return Ok(reason);
            }
            let Some(msg) = self.rx.blocking_recv() else { bail!("the I/O runtime ended") };
            match msg {
                Msg::Stop(reason) => return Ok(reason),
                Msg::Tick => {
                    self.reserve_nonces()?;
                    self.reconcile_if_due()?;
                    self.engine.sink_mut().journal.flush_if_due()?;
                    // What the flush made durable goes out.
                    self.forward_tail()?;
                    if self.probe.as_ref().is_some_and(|p| p.stopping()) {
                        return Ok("stopped by the benchmark".into());
                    }
                }
                Msg::Order { trader, cloid, outcome } => self.on_outcome(&trader, cloid, outcome)?,
                Msg::Stream(event) => self.on_stream(event)?,
                Msg::Notified(report) => self.on_notified(report)?,
                Msg::Llm { trader, event } => self.on_llm(&trader, event)?,
            }
        }
    }

    fn on_stream(&mut self, event: Feed) -> anyhow::Result<()> {
        match event {
            Feed::Kline { kline, received } => {
                if let Mode::Live(venue) = &mut self.mode {
                    venue.tick = Some(received);
                }
                let feed = (kline.symbol.clone(), kline.interval_ms);
                let stepped = self.on_kline(kline);
                if let Mode::Live(venue) = &mut self.mode {
                    venue.tick = None;
                }
                if let (Ok(()), Some(metrics)) = (&stepped, &self.metrics) {
                    let took = received.elapsed().as_secs_f64();
                    for t in
                        self.config.traders.iter().filter(|t| t.interval_ms == feed.1 && t.symbols.contains(&feed.0))
                    {
                        let labels = control::metrics::TraderLabels { trader: t.id.clone() };
                        metrics.shell.decision_cycle.get_or_create(&labels).observe(took);
                    }
                }
                stepped
            }
            Feed::Order(report) => {
                let inputs = inputs::order_report(self.engine.state(), &report);
                self.step_inputs(inputs)
            }
            Feed::Executions(executions) => {
                for execution in executions {
                    let inputs = inputs::execution(self.engine.state(), &mut self.seen, &execution);
                    self.step_inputs(inputs)?;
                }
                Ok(())
            }
            // A catch-up the venue does not answer now is not the end of trading: the next
            // reconnect, or the stop, catches up again.
            Feed::Up { private: false } => {
                if let Err(e) = self.fill_bar_gaps() {
                    let text = format!("{e:#}");
                    venue_error(e)?;
                    tracing::warn!(error = %text, "the bars missed while disconnected could not be fetched");
                }
                Ok(())
            }
            // Reconnects that come in a burst share one reconciliation (see `reconcile_if_due`).
            Feed::Up { private: true } => {
                self.reconcile_due = true;
                self.reconcile_if_due()
            }
            Feed::Down { private, reason } => {
                tracing::warn!(private, %reason, "stream lost; reconnecting");
                if let Some(metrics) = &self.metrics {
                    let stream = if private { "private" } else { "public" };
                    let labels =
                        control::metrics::StreamLabels { venue: self.link.name().into(), stream: stream.into() };
                    metrics.shell.ws_reconnects.get_or_create(&labels).inc();
                }
                Ok(())
            }
        }
    }

    /// A closed bar from the stream: the gap before it first, then the bar, once.
    fn on_kline(&mut self, kline: Kline) -> anyhow::Result<()> {
        let key = (kline.symbol.clone(), kline.interval_ms);
        if let Some(&last) = self.seen.last_bar.get(&key) {
            if kline.open_time_ms > last + kline.interval_ms {
                self.fill_bar_gap(&kline.symbol, kline.interval_ms, kline.open_time_ms - kline.interval_ms)?;
            }
        }
        self.bar(kline)
    }

    /// Journals one closed bar unless it was journaled already; in paper trading the
    /// simulated exchange first fills against it what rested from earlier bars, and
    /// answers the bar's decisions after it (the backtest's order, which replay re-runs).
    fn bar(&mut self, kline: Kline) -> anyhow::Result<()> {
        if !kline.closed || !self.seen.bar(&kline.symbol, kline.interval_ms, kline.open_time_ms) {
            return Ok(());
        }
        let close_ms = kline.open_time_ms + kline.interval_ms;
        if let Mode::Paper(sim) = &mut self.mode {
            for (who, time_ms, event) in sim.on_bar(self.engine.state(), &kline) {
                self.engine.step(time_ms, &who, &event, sim)?;
            }
        }
        self.engine.step(close_ms, "", &Event::KlineReceived(kline), self.mode.venue())?;
        if let Mode::Paper(sim) = &mut self.mode {
            self.engine.settle(sim)?;
        }
        self.after_step()
    }

    /// After a (re)connect of the public stream: every feed's bars since its last journaled
    /// one, or, on a feed's first connect, the strategies' declared warm-up.
    fn fill_bar_gaps(&mut self) -> anyhow::Result<()> {
        let now = self.link.now_ms();
        for (symbol, interval_ms) in feeds(&self.config) {
            let last_closed_open = (now.div_euclid(interval_ms) - 1) * interval_ms;
            self.fill_bar_gap(&symbol, interval_ms, last_closed_open)?;
        }
        Ok(())
    }

    /// The bars of a feed after its last journaled one up to the one opening at `through_open_ms`.
    fn fill_bar_gap(&mut self, symbol: &str, interval_ms: i64, through_open_ms: i64) -> anyhow::Result<()> {
        let key = (symbol.to_owned(), interval_ms);
        let from = match self.seen.last_bar.get(&key) {
            Some(&last) => last + interval_ms,
            None => {
                let warmup = i64::from(self.engine.worker().warmup(symbol, interval_ms));
                if warmup == 0 {
                    return Ok(());
                }
                through_open_ms - (warmup - 1) * interval_ms
            }
        };
        if from > through_open_ms {
            return Ok(());
        }
        let bars = self
            .runtime
            .block_on(self.link.klines(symbol, interval_ms, from, through_open_ms))
            .with_context(|| format!("klines of {symbol} to fill a gap"))?;
        let now = self.link.now_ms();
        for bar in bars {
            // The bar still forming is not closed: the stream brings it when it is.
            if bar.open_time_ms + interval_ms <= now {
                self.bar(bar)?;
            }
        }
        Ok(())
    }

    /// What the order task says became of an order, as the venue's answer.
    fn on_outcome(&mut self, trader: &str, cloid: Cloid, outcome: Outcome) -> anyhow::Result<()> {
        if let Mode::Live(venue) = &mut self.mode {
            if matches!(outcome, Outcome::CancelSent | Outcome::Known(_) | Outcome::Unknown | Outcome::Unresolved(_)) {
                venue.cancel_answered(&cloid);
            }
        }
        let state = self.engine.state();
        let time = state.time_ms;
        let waiting = |state: &journal::State| {
            state
                .traders
                .get(trader)
                .and_then(|t| t.orders.get(&cloid))
                .is_some_and(|o| o.status == journal::state::orders::OrderStatus::Submitted)
        };
        let open = |state: &journal::State| state.traders.get(trader).is_some_and(|t| t.orders.contains_key(&cloid));
        let inputs = match outcome {
            // A REST ack after the stream already told (or after the fill) adds nothing.
            Outcome::Accepted { order_id } if waiting(state) => {
                vec![Input::new(time, trader, Event::OrderAccepted { cloid, exchange_order_id: order_id })]
            }
            Outcome::Rejected { code, message } if waiting(state) => {
                let reason = RejectReason::Exchange { code, message };
                vec![Input::new(time, trader, Event::OrderRejected { cloid, reason })]
            }
            Outcome::Known(report) => inputs::order_report(state, &report),
            Outcome::Unknown if open(state) => {
                let reason = "the venue has no such order".to_owned();
                vec![Input::new(time, trader, Event::OrderCancelled { cloid, reason })]
            }
            Outcome::Unresolved(why) => {
                tracing::warn!(%cloid, trader, %why, "order unresolved: left for the next reconciliation");
                Vec::new()
            }
            _ => Vec::new(),
        };
        self.step_inputs(inputs)
    }

    /// After a restart: every order the journal holds without the venue's answer is
    /// looked up by its `orderLinkId`; the venue's state is adopted where it has one, and
    /// only an order it has never seen is sent (with the same id).
    fn recover(&mut self) -> anyhow::Result<()> {
        let Mode::Live(venue) = &mut self.mode else { return Ok(()) };
        venue.held = Some(Vec::new());
        self.engine.recover(venue)?;
        let held = venue.held.take().unwrap_or_default();
        for effect in held {
            match effect {
                engine::Effect::Submit { trader, intent, .. } => {
                    let reference = self.engine.state().mark(&intent.symbol);
                    if let Mode::Live(v) = &self.mode {
                        let order = orders::NewOrder { trader, intent, tick: None, reference };
                        v.queue(Job::Submit { order, query_first: true });
                    }
                }
                engine::Effect::CallLlm { .. } => {}
                engine::Effect::Cancel { trader, cloid, .. } => {
                    let symbol = self
                        .engine
                        .state()
                        .traders
                        .get(&trader)
                        .and_then(|t| t.orders.get(&cloid))
                        .map_or_else(String::new, |o| o.intent.symbol.clone());
                    if let Mode::Live(v) = &self.mode {
                        v.queue(Job::Cancel { trader, symbol, cloid });
                    }
                }
            }
        }
        Ok(())
    }

    /// The reconciliation a reconnect asked for, unless one ran less than [`RECONCILE_GAP`]
    /// ago: then at the first tick after it. Each asks the venue some 70 weight of questions,
    /// and a flapping connection would otherwise spend the whole budget (and the engine
    /// thread's time) on them; one reconciliation reads the venue as it is now, so it covers
    /// every reconnect before it.
    fn reconcile_if_due(&mut self) -> anyhow::Result<()> {
        if !self.reconcile_due || self.last_reconcile.is_some_and(|at| at.elapsed() < RECONCILE_GAP) {
            return Ok(());
        }
        self.reconcile_due = false;
        if let Err(e) = self.reconcile("reconnect") {
            let text = format!("{e:#}");
            venue_error(e)?;
            tracing::warn!(error = %text, "the reconciliation after a reconnect failed");
        }
        Ok(())
    }

    /// Executions since the last journaled one, the state of every order the ledger holds
    /// open, then the venue's positions, wallet and open orders against the ledger: one
    /// `ExchangeReconciled` with every difference.
    fn reconcile(&mut self, why: &str) -> anyhow::Result<()> {
        if !matches!(self.mode, Mode::Live(_)) {
            return Ok(());
        }
        self.last_reconcile = Some(std::time::Instant::now());
        let symbols: Vec<String> = symbols(&self.config).into_iter().collect();
        // Fills and order changes can be in flight while the venue is asked (a fill between
        // the executions and the positions, say): a disagreement is asked again a few times
        // before it is journaled as one.
        let mut attempt = 0;
        let (positions, open_orders, mut mismatches) = loop {
            // One listing of the venue's open orders serves the catch-up and the comparison,
            // and only orders the ledger held open when it was taken are compared: one
            // acknowledged since is not a disagreement.
            // Keyed by client id; one placed by hand may have none: its order id then.
            let listed: BTreeMap<String, OrderReport> = self
                .runtime
                .block_on(self.link.open_orders(&symbols))?
                .into_iter()
                .map(|order| (order.key(), order))
                .collect();
            let held_open: Vec<(String, Cloid)> = self
                .engine
                .state()
                .traders
                .iter()
                .flat_map(|(name, t)| {
                    t.orders
                        .values()
                        .filter(|o| o.status != journal::state::orders::OrderStatus::Submitted)
                        .map(|o| (name.clone(), o.intent.cloid))
                })
                .collect();
            self.catch_up(&symbols, &listed)?;
            let mut mismatches = Vec::new();
            let positions = self.runtime.block_on(self.link.positions(&symbols))?;
            for symbol in &symbols {
                let venue_qty: Decimal = positions.iter().filter(|p| &p.symbol == symbol).map(|p| p.qty).sum();
                let ledger_qty: Decimal =
                    self.engine.state().traders.values().filter_map(|t| t.positions.get(symbol)).map(|p| p.qty).sum();
                if venue_qty != ledger_qty {
                    mismatches.push(format!(
                        "{symbol}: the venue holds {venue_qty}, the traders' positions sum to {ledger_qty}"
                    ));
                }
            }
            let mut open_orders = Vec::new();
            for (id, order) in &listed {
                match order.cloid().filter(|c| inputs::owner(self.engine.state(), c).is_some()) {
                    Some(cloid) => open_orders.push(cloid),
                    None => {
                        mismatches.push(format!(
                            "{}: order {id} at the venue ({:?} {} @ {}) is not in the journal: left alone",
                            order.symbol,
                            order.side,
                            order.qty,
                            order.price.map_or_else(|| "market".to_owned(), |p| p.to_string())
                        ));
                    }
                }
            }
            // Still open in the ledger after the catch-up looked it up: the venue knows
            // nothing of it (or its lookup failed).
            for (name, cloid) in held_open {
                let still_open = self.engine.state().traders.get(&name).is_some_and(|t| t.orders.contains_key(&cloid));
                if still_open && !listed.contains_key(&cloid.to_string()) {
                    mismatches.push(format!("{name}: order {cloid} is open in the journal but not at the venue"));
                }
            }
            if mismatches.is_empty() || attempt == RECONCILE_ATTEMPTS - 1 {
                break (positions, open_orders, mismatches);
            }
            attempt += 1;
            tracing::info!(
                why,
                attempt,
                "the venue and the journal disagree: asking again ({})",
                mismatches.join("; ")
            );
            let pause = Duration::from_millis(200 * u64::from(attempt));
            self.runtime.block_on(async { tokio::time::sleep(pause).await });
        };
        // Every reconciliation says it again, as it says again an order placed by hand.
        for foreign in &self.seen.foreign_orders {
            mismatches.push(format!("executions of order {foreign}, which the journal does not know, were left alone"));
        }
        let balance_quote = self.runtime.block_on(self.link.balance())?;
        if !mismatches.is_empty() {
            tracing::warn!(why, "the venue and the journal disagree: {}", mismatches.join("; "));
        }
        let time = self.engine.state().time_ms;
        let reconciliation = Reconciliation { balance_quote, positions, open_orders, mismatches };
        self.step(time, "", Event::ExchangeReconciled(reconciliation))
    }

    /// What the streams may have missed, from REST: for every order the ledger holds open,
    /// the venue's state (from its open-order listing, else a lookup) and, when the venue
    /// has filled more of it than the ledger knows, its executions — fills before the state,
    /// so a filled or cancelled order is closed with all its fills; the executions of each
    /// trader's last [`CLOSED_ORDERS_ASKED`] orders closed with quantity left (a late fill
    /// of a cancelled order still counts); and funding since the first trader started.
    /// Asking by order, not by time, needs no agreement between the venue's clock and the
    /// journal's; orders still in the order task's hands may be unknown yet, and "not found"
    /// changes nothing.
    fn catch_up(&mut self, symbols: &[String], listed: &BTreeMap<String, OrderReport>) -> anyhow::Result<()> {
        let open: Vec<(String, Cloid, Decimal)> = self
            .engine
            .state()
            .traders
            .values()
            .flat_map(|t| t.orders.values().map(|o| (o.intent.symbol.clone(), o.intent.cloid, o.filled_qty)))
            .collect();
        let mut reports = Vec::new();
        let mut fills_of = Vec::new();
        for (symbol, cloid, filled) in open {
            let report = match listed.get(&cloid.to_string()) {
                Some(report) => Some(report.clone()),
                None => self.runtime.block_on(self.link.order(&symbol, &cloid))?,
            };
            let Some(report) = report else { continue };
            if report.filled > filled {
                fills_of.push(cloid);
            }
            reports.push(report);
        }
        fills_of.extend(
            self.engine
                .state()
                .traders
                .values()
                .flat_map(|t| t.closed_orders.iter().rev().take(CLOSED_ORDERS_ASKED).map(|c| c.cloid)),
        );
        // Fills before the states, so a filled or cancelled order is closed with all its fills.
        if !fills_of.is_empty() {
            for e in self.runtime.block_on(self.link.executions_of(&fills_of))? {
                let inputs = inputs::execution(self.engine.state(), &mut self.seen, &e);
                self.step_inputs(inputs)?;
            }
        }
        for report in reports {
            let inputs = inputs::order_report(self.engine.state(), &report);
            self.step_inputs(inputs)?;
        }
        // Funding has no order to ask by; a settlement journaled already is known by its
        // symbol and time.
        let since = self.seen.started_ms.unwrap_or(i64::MAX);
        for e in self.runtime.block_on(self.link.funding(symbols, FUNDING_PAGES))? {
            if e.time_ms >= since {
                let inputs = inputs::execution(self.engine.state(), &mut self.seen, &e);
                self.step_inputs(inputs)?;
            }
        }
        Ok(())
    }

    /// Limits after each step: orders the venue port refused are journaled as rejected
    /// and stop their trader; a trader past its daily loss stops.
    fn after_step(&mut self) -> anyhow::Result<()> {
        let refused = match &mut self.mode {
            Mode::Live(venue) => {
                // The step's new orders, journaled and durable, go out together (Hyperliquid).
                venue.flush();
                std::mem::take(&mut venue.refused)
            }
            Mode::Paper(_) => Vec::new(),
        };
        let time = self.engine.state().time_ms;
        for refusal in refused {
            let why = refusal.reason.to_string();
            let event = Event::OrderRejected { cloid: refusal.cloid, reason: refusal.reason };
            self.engine.step(time, &refusal.trader, &event, self.mode.venue())?;
            if refusal.stops_trader {
                self.engine.unload(&refusal.trader, time, &why, self.mode.venue())?;
            }
        }
        if let Some(max) = self.config.limits.max_daily_loss {
            let day = time.div_euclid(DAY_MS);
            let traders: Vec<String> = self.config.traders.iter().map(|t| t.id.clone()).collect();
            for trader in traders {
                let Some(equity) = self.engine.state().account(&trader).map(|a| a.equity) else { continue };
                let start = self.day_start.entry(trader.clone()).or_insert((day, equity));
                if start.0 != day {
                    *start = (day, equity);
                }
                let loss = start.1 - equity;
                if loss > max && self.engine.worker().running(&trader) {
                    let reason = format!("limit: lost {loss} today, max_daily_loss is {max}");
                    self.engine.unload(&trader, time, &reason, self.mode.venue())?;
                }
            }
        }
        // What the limits' stops decided goes out too.
        if let Mode::Live(venue) = &mut self.mode {
            venue.flush();
        }
        // The model calls the step decided, now journaled: asked on the runtime, answered
        // through the channel.
        for (trader, request) in self.mode.take_calls() {
            let (models, tx) = (self.models.clone(), self.tx.clone());
            self.runtime.spawn(async move {
                let event = models.ask(&request).await;
                // The driver gone means the process is ending: the next start fails the call.
                let _ = tx.send(Msg::Llm { trader, event });
            });
        }
        self.forward_tail()
    }

    /// The records appended since the last call, read back once, to the served replica and
    /// the outbox (whatever path appended them: a step, a stop, a reconciliation), then the
    /// durable point. Neither ever blocks the engine.
    fn forward_tail(&mut self) -> anyhow::Result<()> {
        if self.served.is_none() && self.outbox.is_none() && self.mirror.is_none() {
            return Ok(());
        }
        let journal = &self.engine.sink().journal;
        if journal.len() > self.tail_next {
            // The records were checked when they were appended (or resumed) by this process.
            for record in journal.records_unverified(self.tail_next) {
                let env = record.context("failed to read back a journaled record")?;
                self.tail_next = env.seq + 1;
                if let Some(served) = &self.served {
                    served.record(&env);
                }
                if let Some(outbox) = &mut self.outbox {
                    outbox.observe(&env);
                }
                if let Some(mirror) = &self.mirror {
                    mirror.record(&env);
                }
            }
        }
        let durable = journal.durable_through();
        if let Some(served) = &mut self.served {
            served.durable(durable);
        }
        if let Some(outbox) = &mut self.outbox {
            outbox.release(durable);
        }
        if let Some(mirror) = &mut self.mirror {
            mirror.durable(durable);
        }
        Ok(())
    }

    /// A delivery journaled, once per notification.
    fn on_notified(&mut self, report: telegram::Report) -> anyhow::Result<()> {
        let Some(outbox) = &mut self.outbox else { return Ok(()) };
        if let Some(metrics) = &self.metrics {
            match &report {
                telegram::Report::Delivered { .. } => metrics.shell.notifications_delivered.inc(),
                telegram::Report::Halted { .. } => metrics.shell.notification_failures.inc(),
            };
        }
        match outbox::report_event(outbox, report) {
            Some((trader, event)) => {
                let time = self.event_time();
                self.step(time, &trader, event)
            }
            None => Ok(()),
        }
    }

    /// A clean stop: every strategy's `st_exit`, the orders it sent carried out, open
    /// orders cancelled if the config says so, the journal snapshotted and flushed.
    fn stop(mut self, reason: &str) -> anyhow::Result<()> {
        self.fail_unanswered(&format!("no answer: {reason} before the model answered"))?;
        let time = self.engine.state().time_ms;
        let traders: Vec<String> = self.config.traders.iter().map(|t| t.id.clone()).collect();
        for trader in &traders {
            self.engine.unload(trader, time, reason, self.mode.venue())?;
        }
        self.after_step()?;
        if let Mode::Live(venue) = &self.mode {
            if self.config.venue.cancel_on_stop {
                for t in self.engine.state().traders.iter() {
                    for order in t.1.orders.values() {
                        venue.queue(Job::Cancel {
                            trader: t.0.clone(),
                            symbol: order.intent.symbol.clone(),
                            cloid: order.intent.cloid,
                        });
                    }
                }
            }
        }
        // Let the order task finish what it holds (bounded), journaling the answers and the
        // fills that come meanwhile; then one last reconciliation, so a clean stop leaves
        // every execution of the venue in the journal.
        if let (Some(task), Mode::Live(venue)) = (self.executor.take(), &mut self.mode) {
            tracing::info!("{reason}: the order task finishes what it holds");
            venue.close();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while !task.is_finished() && std::time::Instant::now() < deadline {
                let next = self
                    .runtime
                    .block_on(async { tokio::time::timeout(Duration::from_millis(50), self.rx.recv()).await });
                if let Ok(Some(msg)) = next {
                    self.after_stop(msg)?;
                }
            }
            if !task.is_finished() {
                tracing::warn!(
                    "the order task did not finish in 10 s: the next start resolves what it held from the journal"
                );
                task.abort();
            }
            while let Ok(msg) = self.rx.try_recv() {
                self.after_stop(msg)?;
            }
            tracing::info!("{reason}: reconciling with the venue");
            self.reconcile("stop")?;
        }
        // The notifications of the stop itself go too, for a bounded time; what is left is
        // sent at the next start (the journal knows what was not delivered).
        if self.outbox.is_some() {
            self.engine.sink_mut().journal.sync()?;
            self.forward_tail()?;
        }
        if let Some(outbox) = &mut self.outbox {
            outbox.close();
            let deadline = std::time::Instant::now() + OUTBOX_DRAIN;
            while !self.outbox.as_ref().is_none_or(outbox::Outbox::idle) && std::time::Instant::now() < deadline {
                let next = self
                    .runtime
                    .block_on(async { tokio::time::timeout(Duration::from_millis(50), self.rx.recv()).await });
                if let Ok(Some(msg)) = next {
                    self.after_stop(msg)?;
                }
            }
            if let Some(left) = self.outbox.as_ref().map(outbox::Outbox::undelivered).filter(|n| *n > 0) {
                tracing::warn!(left, "{reason}: notifications not yet delivered are sent at the next start");
            }
        }
        let sink = self.engine.sink_mut();
        sink.snapshot()?;
        sink.journal.sync()?;
        tracing::info!(events = sink.journal.len(), "{reason}: journal flushed");
        self.runtime.shutdown_timeout(Duration::from_secs(1));
        Ok(())
    }
}

impl Session {
    /// A message that arrives while stopping: the venue's answers still count; bars do not
    /// (the strategies have stopped).
    fn after_stop(&mut self, msg: Msg) -> anyhow::Result<()> {
        match msg {
            Msg::Order { trader, cloid, outcome } => self.on_outcome(&trader, cloid, outcome),
            Msg::Stream(event @ (Feed::Order(_) | Feed::Executions(_))) => self.on_stream(event),
            Msg::Notified(report) => self.on_notified(report),
            _ => Ok(()),
        }
    }
}

/// SIGINT and SIGTERM become one [`Msg::Stop`], and set `asked`, which the engine thread
/// reads before every message (the message may be queued behind many).
fn spawn_signals(runtime: &tokio::runtime::Runtime, tx: UnboundedSender<Msg>, asked: StopAsked) {
    runtime.spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        let reason = format!("stopped by {name}");
        if let Ok(mut asked) = asked.lock() {
            *asked = Some(reason.clone());
        }
        let _ = tx.send(Msg::Stop(reason));
    });
}

/// Passes a venue's error back as `Ok` (to be logged), anything else (the journal) as the error it is.
fn venue_error(e: anyhow::Error) -> anyhow::Result<()> {
    if Link::is_venue_error(&e) {
        Ok(())
    } else {
        Err(e)
    }
}

/// Every (symbol, interval) a trader of the config trades, each once, in order.
fn feeds(config: &Config) -> Vec<(String, i64)> {
    let feeds: BTreeSet<(String, i64)> =
        config.traders.iter().flat_map(|t| t.symbols.iter().map(|s| (s.clone(), t.interval_ms))).collect();
    feeds.into_iter().collect()
}

/// Every symbol a trader of the config trades, each once, in order.
fn symbols(config: &Config) -> BTreeSet<String> {
    config.traders.iter().flat_map(|t| t.symbols.iter().cloned()).collect()
}

/// The venue of the config, connected: Bybit's clock synchronised, or Hyperliquid's assets
/// read and its nonces resumed above `reserved`.
fn connect(
    config: &Config,
    dry_run: bool,
    runtime: &tokio::runtime::Runtime,
    metrics: Option<&Arc<control::Metrics>>,
    reserved: Option<u64>,
) -> anyhow::Result<Link> {
    let venue = &config.venue;
    if venue.kind.is_hyperliquid() {
        let wallet = hyperliquid::Wallet::from_env(&venue.key_env).map_err(|e| {
            anyhow::anyhow!("{e}: the API wallet's private key comes from the environment only ({})", venue.key_env)
        })?;
        let network = match (venue.network.as_deref(), venue.kind, &venue.rest_url) {
            (Some("mainnet"), ..) => hyperliquid::Network::Mainnet,
            (Some(_), ..) | (None, VenueKind::HyperliquidTestnet, _) | (None, _, Some(_)) => {
                hyperliquid::Network::Testnet
            }
            (None, ..) => hyperliquid::Network::Mainnet,
        };
        let mut endpoints = match (&venue.rest_url, network) {
            (Some(rest), network) => hyperliquid::Endpoints::local(rest, network),
            (None, hyperliquid::Network::Mainnet) => hyperliquid::Endpoints::mainnet(),
            (None, hyperliquid::Network::Testnet) => hyperliquid::Endpoints::testnet(),
        };
        if let Some(ws) = &venue.ws_url {
            endpoints.ws = format!("{}/ws", ws.trim_end_matches('/').trim_end_matches("/ws"));
        }
        let user = match &venue.account {
            Some(account) => hyperliquid::Address::parse(account).map_err(|e| anyhow::anyhow!("account: {e}"))?,
            None => wallet.address(),
        };
        let observer = metrics.cloned().map(|metrics| {
            Arc::new(serve::VenueMetrics { metrics, venue: "hyperliquid" }) as Arc<dyn hyperliquid::rest::Observer>
        });
        let options = hyperliquid::RestOptions { dry_run, observer, ..hyperliquid::RestOptions::default() };
        let rest = hyperliquid::Rest::new(&endpoints, Some(wallet), None, options)?;
        let coins: Vec<String> = symbols(config).into_iter().collect();
        let link = runtime.block_on(HlLink::open(rest, endpoints, user, &coins, reserved))?;
        return Ok(Link::Hyperliquid(Arc::new(link)));
    }
    let endpoints = endpoints(config);
    let credentials = match venue.kind {
        VenueKind::Paper => None,
        _ => Some(credentials(&venue.key_env, &venue.secret_env)?),
    };
    let observer = metrics
        .cloned()
        .map(|metrics| Arc::new(serve::VenueMetrics { metrics, venue: "bybit" }) as Arc<dyn bybit::Observer>);
    let options = RestOptions { recv_window_ms: venue.recv_window_ms, dry_run, observer, ..RestOptions::default() };
    let rest = Rest::new(&endpoints, credentials.clone(), options);
    runtime.block_on(rest.sync_time()).with_context(|| format!("cannot reach the venue at {}", endpoints.rest))?;
    Ok(Link::Bybit(BybitLink { rest, endpoints, credentials }))
}

fn endpoints(config: &Config) -> Endpoints {
    let mut endpoints = match config.venue.kind {
        VenueKind::Bybit | VenueKind::Paper => Endpoints::mainnet(),
        VenueKind::BybitTestnet => Endpoints::testnet(),
        VenueKind::BybitDemo => Endpoints::demo(),
        // Not reached: `connect` makes Hyperliquid's.
        VenueKind::Hyperliquid | VenueKind::HyperliquidTestnet => Endpoints::mainnet(),
    };
    if let Some(rest) = &config.venue.rest_url {
        endpoints.rest.clone_from(rest);
    }
    if let Some(ws) = &config.venue.ws_url {
        let local = Endpoints::local(&endpoints.rest, ws);
        endpoints.ws_public = local.ws_public;
        endpoints.ws_private = local.ws_private;
    }
    endpoints
}

/// The key and secret from the environment variables the config names. The error names
/// the variables, never a value.
fn credentials(key_env: &str, secret_env: &str) -> anyhow::Result<Credentials> {
    let get = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (get(key_env), get(secret_env)) {
        (Some(key), Some(secret)) => Ok(Credentials::new(key, secret)),
        (key, _) => {
            let missing = if key.is_none() { key_env } else { secret_env };
            bail!(
                "the environment variable {missing} is not set: the API key and secret come from the environment only"
            )
        }
    }
}

fn sim_config(config: &Config) -> SimConfig {
    SimConfig { slippage_bps: config.venue.slippage_bps, ..SimConfig::default() }
}

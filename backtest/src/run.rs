//! The backtest driver: the engine with a historical feed and the simulated exchange.
//!
//! For each bar, in time order (several symbols merged):
//! 1. the simulated exchange fills, cancels or liquidates against this bar
//!    whatever rested from earlier bars (no look-ahead: an order decided on bar
//!    *t* first meets bar *t+1*); each resulting event is journaled, folded and
//!    routed to the strategy (`st_on_fill`, `st_on_order`);
//! 2. external data points and funding rates up to the bar's close are journaled, and
//!    the exchange's funding payments on each rate (none before the symbol's first price);
//! 3. the closed `KlineReceived` is journaled at the bar's close time and the
//!    strategy's `st_heartbeat` runs; its orders go through the pre-append checks;
//! 4. the exchange acknowledges each new order and answers each cancel request;
//! 5. equity is sampled at the close.
//!
//! Every input goes through [`Engine::step`], the step live trading and replay run
//! too; the engine's sink is a plain [`FoldSink`] by default (nothing written), or
//! a [`JournalSink`] with `--journal`, which makes the run inspectable, verifiable
//! and replayable like a live journal. The driver's own part is the feed (bars,
//! external data, funding, merged in time order) and the run record for reports.
//!
//! The run starts with `VenueConfigured` (the sim's settings), the instruments and
//! `TraderStarted`, and the strategy's load, then settles. `replay verify`
//! (`replay/src/verify.rs`, `SimReplay`) drives the sim in this same order to re-derive
//! its answers: a change here must be made there too.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use engine::{Engine, LlmPort, WithLlm};
use journal::{
    event::{Event, Instrument, Kline, LlmTraderLoad, TraderStart},
    Durability, State, StoreError,
};
use rust_decimal::Decimal;
use serde_json::Value as Json;
use sim::{SimConfig, SimVenue};
use strategies::{
    llm::{config::TraderConfig, LlmRequest},
    runtime::StrategySpec,
    sink::{FoldSink, JournalSink, Sink, SinkError},
};

use crate::{
    data::{self, DataError, KlineReader, Merge, ReadOptions},
    record::{EquityPoint, PricePoint, RunRecord, Series, SeriesPoint, Trade},
    report::{ReportError, TableWriter},
};

/// Chart points kept per line (prices, recorded series) before downsampling doubles its stride.
const CHART_POINTS_MAX: usize = 4000;

/// How to run a backtest.
#[derive(Debug, Clone)]
pub struct Config {
    pub strategy_file: PathBuf,
    /// Overlaid on the strategy's declared `params`.
    pub params: Json,
    pub data: Vec<PathBuf>,
    /// Symbol of the data when there is one file (else taken from each file name).
    pub symbol: Option<String>,
    /// Expected bar interval ("1m", "1h", ...), checked against the data.
    pub interval: Option<String>,
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub cash: Decimal,
    pub leverage: Decimal,
    pub fee_taker_bps: Decimal,
    pub fee_maker_bps: Decimal,
    pub slippage_bps: Decimal,
    /// Named external series, `time_ms,value` CSV files (`st_on_data`).
    pub external: Vec<(String, PathBuf)>,
    /// Per-symbol funding rates, `time_ms,rate` CSV files.
    pub funding: Vec<(String, PathBuf)>,
    /// Instrument overrides; symbols without one get [`default_instrument`].
    pub instruments: BTreeMap<String, Instrument>,
    pub sim: SimConfig,
    pub seed: u64,
    /// Journal the whole run here (created; must not hold another journal's events).
    pub journal: Option<PathBuf>,
    /// Deterministic fuel per strategy call (None: the sandbox default).
    pub call_fuel: Option<u64>,
    /// Write the per-bar tables (equity and series, CSV and Parquet) into this directory
    /// while the run goes ([`TableWriter`]); None: keep only what the report page draws.
    pub tables: Option<PathBuf>,
    /// LLM traders to run (each with its own virtual capital, a share of `cash`). With any,
    /// the JavaScript strategy is loaded only when `strategy_file` is not empty.
    pub llm_traders: Vec<TraderConfig>,
}

impl Config {
    /// The documented defaults: 10 000 USDT, 1x, taker 10 bps, maker 2 bps, no slippage.
    pub fn new(strategy_file: PathBuf, data: Vec<PathBuf>) -> Config {
        Config {
            strategy_file,
            params: Json::Object(Default::default()),
            data,
            symbol: None,
            interval: None,
            from_ms: None,
            to_ms: None,
            cash: Decimal::new(10_000, 0),
            leverage: Decimal::ONE,
            fee_taker_bps: Decimal::new(10, 0),
            fee_maker_bps: Decimal::new(2, 0),
            slippage_bps: Decimal::ZERO,
            external: Vec::new(),
            funding: Vec::new(),
            instruments: BTreeMap::new(),
            sim: SimConfig::default(),
            seed: 0,
            journal: None,
            call_fuel: None,
            tables: None,
            llm_traders: Vec::new(),
        }
    }
}

/// Why a backtest could not run (a strategy's own failures are journaled, not errors).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Data(#[from] DataError),
    #[error("{path}: {message}")]
    Input { path: PathBuf, message: String },
    #[error(transparent)]
    Journal(#[from] StoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error("no bars in the data{0}")]
    NoBars(String),
}

/// The outcome of a run.
#[derive(Debug)]
pub struct Outcome {
    pub record: RunRecord,
    pub state: State,
    /// The journal's path and event count, when the run was journaled.
    pub journal: Option<(PathBuf, u64)>,
    /// The per-bar tables written, when [`Config::tables`] asked for them.
    pub tables: Vec<PathBuf>,
}

/// Instrument rules for a symbol without overrides: a fine grid (1e-8 price tick,
/// 1e-6 quantity step) so no real price is off-grid, 100x maximum leverage,
/// 0.5% maintenance margin, the run's fees.
pub fn default_instrument(symbol: &str, config: &Config) -> Instrument {
    let bps = Decimal::new(1, 4);
    Instrument {
        symbol: symbol.to_owned(),
        tick_size: Decimal::new(1, 8),
        qty_step: Decimal::new(1, 6),
        min_qty: Decimal::new(1, 6),
        max_leverage: Decimal::ONE_HUNDRED,
        maintenance_margin_rate: Decimal::new(5, 3),
        taker_fee_rate: config.fee_taker_bps * bps,
        maker_fee_rate: config.fee_maker_bps * bps,
    }
}

/// Runs the backtest. `progress` is called with the number of bars done.
///
/// # Errors
/// Bad data, an unreadable strategy or input file, or a journal failure.
pub fn run(config: &Config, progress: &mut dyn FnMut(u64)) -> Result<Outcome, RunError> {
    run_with_llm(config, &mut NoModel, progress)
}

/// The port of a run without a model: every call fails (closed), with a journaled reason.
struct NoModel;

impl LlmPort for NoModel {
    fn call(&mut self, time_ms: i64, _trader: &str, request: &LlmRequest) -> (i64, Event) {
        let error = "no model port in this run".to_owned();
        (time_ms, Event::LlmFailed { digest: request.digest, model: request.model.model.clone(), error })
    }
}

/// Whether the run has a JavaScript strategy (an LLM-only run has an empty `strategy_file`).
fn has_strategy(config: &Config) -> bool {
    config.llm_traders.is_empty() || !config.strategy_file.as_os_str().is_empty()
}

/// Runs the backtest with `port` answering the LLM traders' model calls (synchronously: the
/// run waits for each answer, which is journaled as the input it is).
///
/// # Errors
/// As [`run`].
pub fn run_with_llm(
    config: &Config,
    port: &mut dyn LlmPort,
    progress: &mut dyn FnMut(u64),
) -> Result<Outcome, RunError> {
    match &config.journal {
        None => drive(config, Recorder::new(FoldSink::new()), port, progress),
        Some(path) => {
            if path.exists() && std::fs::read_dir(path).map_or(true, |mut d| d.next().is_some()) {
                return Err(StoreError::AlreadyExists(path.clone()).into());
            }
            let mut sink = JournalSink::open(path, Durability::None)?;
            sink.snapshot_every = 100_000;
            drive(config, Recorder::new(sink), port, progress)
        }
    }
}

/// The trader a backtest runs as: the strategy's file stem.
pub fn trader_name(config: &Config) -> String {
    if !has_strategy(config) {
        return config.llm_traders.first().map_or_else(|| "llm".to_owned(), |t| t.id.clone());
    }
    config.strategy_file.file_stem().map_or_else(|| "strategy".to_owned(), |s| s.to_string_lossy().into_owned())
}

fn drive<S: Sink + Finish>(
    config: &Config,
    recorder: Recorder<S>,
    port: &mut dyn LlmPort,
    progress: &mut dyn FnMut(u64),
) -> Result<Outcome, RunError> {
    let source = if has_strategy(config) {
        std::fs::read_to_string(&config.strategy_file).map_err(|e| RunError::Input {
            path: config.strategy_file.clone(),
            message: format!("cannot read the strategy: {e}"),
        })?
    } else {
        String::new()
    };
    let mut merge = open_data(config)?;
    let symbols: Vec<String> = merge.symbols().iter().map(|s| (*s).to_owned()).collect();
    let mut external = ExternalFeed::open(&config.external, "value")?;
    let mut funding = ExternalFeed::open(&config.funding, "rate")?;

    let trader = trader_name(config);
    let mut engine = Engine::new(recorder);
    engine.sink_mut().trader = trader.clone();
    let mut venue = WithLlm::new(SimVenue::new(config.sim.clone()), port);
    let mut first = true;
    let mut early_rates: BTreeMap<String, u64> = BTreeMap::new();
    let mut bars = 0u64;
    let mut last_close_ms = i64::MIN;
    let mut interval_ms = 0i64;
    let mut klines: Vec<Event> = symbols.iter().map(|symbol| Event::KlineReceived(Kline::zeroed(symbol))).collect();

    while let Some(item) = merge.next() {
        let (index, bar) = item?;
        if config.from_ms.is_some_and(|f| bar.open_time_ms < f) {
            continue;
        }
        if config.to_ms.is_some_and(|t| bar.open_time_ms > t) {
            continue;
        }
        // Known once the reader has read its first chunk, which it has by now.
        let interval = config_interval(config, &merge.readers()[index].info().interval_ms);
        interval_ms = interval;
        let close_ms = bar.open_time_ms + interval;
        if first {
            first = false;
            if let Some(dir) = &config.tables {
                engine.sink_mut().tables = Some(TableWriter::create(dir, journal::money::to_f64(config.cash))?);
            }
            set_up(config, &mut engine, &mut venue, &symbols, &trader, &source, bar.open_time_ms)?;
            engine.sink_mut().record.start_ms = bar.open_time_ms;
        }
        if close_ms != last_close_ms && last_close_ms != i64::MIN {
            engine.sink_mut().sample_equity(last_close_ms);
        }
        // One event per symbol, overwritten bar by bar: the hot loop allocates nothing.
        if let Event::KlineReceived(k) = &mut klines[index] {
            (k.interval_ms, k.open_time_ms) = (interval, bar.open_time_ms);
            (k.open, k.high, k.low, k.close, k.volume) = (bar.open, bar.high, bar.low, bar.close, bar.volume);
        }
        let kline_event = &klines[index];
        let Event::KlineReceived(kline) = kline_event else { unreachable!("klines holds only klines") };
        // 1. Fills against this bar of what rested from earlier bars.
        for (who, time_ms, event) in venue.inner.on_bar(engine.state(), kline) {
            engine.step(time_ms, &who, &event, &mut venue)?;
        }
        // 2. External data and funding up to the close.
        for (series, time_ms, value) in external.until(close_ms) {
            engine.step(time_ms, "", &Event::DataPointReceived { series, value }, &mut venue)?;
        }
        // A funding rate is an input (journaled whether or not anyone holds a position); what
        // it costs is the venue's answer, paid at the mark. Before the symbol's first price
        // there is no mark: nothing is paid, and the report counts such rates.
        for (funded, time_ms, rate) in funding.until(close_ms) {
            engine.step(time_ms, "", &Event::FundingRateReceived { symbol: funded.clone(), rate }, &mut venue)?;
            let Some(mark) = engine.state().mark(&funded) else {
                *early_rates.entry(funded).or_insert(0) += 1;
                continue;
            };
            for (who, t, event) in venue.inner.funding(engine.state(), &funded, rate, mark, time_ms) {
                engine.step(t, &who, &event, &mut venue)?;
            }
        }
        // 3. The bar itself, and the strategy's decisions on it.
        engine.sink_mut().price(index, symbols.len(), close_ms, &bar.close);
        engine.step(close_ms, "", kline_event, &mut venue)?;
        // 4. The exchange's answers to what was just decided.
        engine.settle(&mut venue)?;
        last_close_ms = close_ms;
        bars += 1;
        if bars % 4096 == 0 {
            progress(bars);
        }
    }
    if bars == 0 {
        let range = match (config.from_ms, config.to_ms) {
            (None, None) => String::new(),
            _ => " in the requested time range".to_owned(),
        };
        return Err(RunError::NoBars(range));
    }
    engine.sink_mut().sample_equity(last_close_ms);
    engine.stop_all(last_close_ms, crate::record::END_OF_DATA, &mut venue)?;
    progress(bars);
    let mut sink = engine.into_sink();

    let infos = merge.into_infos();
    let mut record = std::mem::take(&mut sink.record);
    finish_record(&mut record, config, sink.state(), &trader, &symbols, interval_ms, bars, last_close_ms);
    for info in &infos {
        if info.gaps.count > 0 {
            let largest = info.gaps.largest.as_ref().map_or(0, |g| g.missing_bars);
            record.data_notes.push(format!(
                "{}: {} gaps, {} missing bars (largest {largest}), traded through",
                info.symbol, info.gaps.count, info.gaps.missing_bars
            ));
        }
    }
    for (symbol, count) in &early_rates {
        record.data_notes.push(format!(
            "funding: {count} rates of {symbol} before its first price: journaled, nothing paid (no mark price)"
        ));
    }
    let tables = match sink.tables.take() {
        Some(tables) => tables.finish()?,
        None => Vec::new(),
    };
    let state = sink.state().clone();
    let journal = sink.inner.finish()?;
    Ok(Outcome { record, state, journal, tables })
}

fn config_interval(config: &Config, inferred: &Option<i64>) -> i64 {
    inferred.or_else(|| config.interval.as_deref().and_then(|i| data::parse_interval(i).ok())).unwrap_or(60_000)
}

fn open_data(config: &Config) -> Result<Merge, RunError> {
    let mut readers = Vec::new();
    for path in &config.data {
        let mut options = ReadOptions::new();
        if let (Some(symbol), 1) = (&config.symbol, config.data.len()) {
            options = options.symbol(symbol.clone());
        }
        if let Some(interval) = &config.interval {
            options = options.interval(interval)?;
        }
        readers.push(KlineReader::open(path, &options)?);
    }
    Ok(Merge::new(readers)?)
}

fn set_up<S: Sink>(
    config: &Config,
    engine: &mut Engine<Recorder<S>>,
    venue: &mut WithLlm<'_, SimVenue>,
    symbols: &[String],
    trader: &str,
    source: &str,
    start_ms: i64,
) -> Result<(), RunError> {
    // The venue's settings first: `replay verify` re-runs the sim with them.
    let journaled = venue.inner.config.journaled();
    engine.step(start_ms, "", &Event::VenueConfigured(journaled), venue)?;
    for symbol in symbols {
        let instrument = config.instruments.get(symbol).cloned().unwrap_or_else(|| default_instrument(symbol, config));
        engine.step(start_ms, "", &Event::InstrumentDefined(instrument), venue)?;
    }
    let start = TraderStart {
        exchange: "sim".into(),
        account: "backtest".into(),
        currency: "USDT".into(),
        allocation_pct: Decimal::ONE_HUNDRED,
        capital_quote: config.cash,
        leverage: config.leverage,
    };
    engine.sink_mut().record.initial_equity = config.cash;
    // LLM traders: each its share of the account, then its journaled configuration.
    for llm in &config.llm_traders {
        let start = TraderStart {
            exchange: "sim".into(),
            account: "backtest".into(),
            currency: "USDT".into(),
            allocation_pct: (llm.capital / config.cash * Decimal::ONE_HUNDRED).round_dp(4),
            capital_quote: llm.capital,
            leverage: Decimal::from(llm.leverage),
        };
        engine.step(start_ms, &llm.id, &Event::TraderStarted(start), venue)?;
        let (json, config_hash) = llm.to_journal();
        let load = LlmTraderLoad { file: llm.template_id.clone(), config: journal::event::Json(json), config_hash };
        engine.step(start_ms, &llm.id, &Event::LlmTraderLoaded(load), venue)?;
        engine.sink_mut().record.initial_equity = llm.capital;
    }
    if !has_strategy(config) {
        return Ok(engine.settle(venue)?);
    }
    engine.step(start_ms, trader, &Event::TraderStarted(start), venue)?;
    engine.sink_mut().record.initial_equity = config.cash;
    let file = config.strategy_file.display().to_string();
    let mut spec = StrategySpec::new(trader, &file, source.to_owned(), config.params.clone(), config.seed);
    if let Some(fuel) = config.call_fuel {
        spec.call_fuel = fuel;
    }
    engine.load(spec, start_ms, venue)?;
    Ok(engine.settle(venue)?)
}

#[allow(clippy::too_many_arguments)]
fn finish_record(
    record: &mut RunRecord,
    config: &Config,
    state: &State,
    trader: &str,
    symbols: &[String],
    interval_ms: i64,
    bars: u64,
    end_ms: i64,
) {
    record.strategy = trader.to_owned();
    record.params = config.params.clone();
    record.symbols = symbols.to_vec();
    record.interval_ms = interval_ms;
    record.bars = bars;
    record.end_ms = end_ms;
    if let Some(account) = state.account(trader) {
        record.final_equity = account.equity;
    }
    if let Some(t) = state.traders.get(trader) {
        record.fees_paid = t.fees_paid;
        record.funding_net = t.funding_net;
        record.orders_rejected = t.stats.orders_rejected;
        if let Some(s) = &t.strategy {
            record.strategy_errors = s.errors;
            record.stopped = s.stopped.clone();
        }
    }
    record.anomalies = state.anomalies_total;
    record.state_digest = state.digest().to_string();
}

/// Ends a sink: a journaled run gets its final snapshot and flush.
trait Finish {
    fn finish(self) -> Result<Option<(PathBuf, u64)>, RunError>;
}

impl Finish for FoldSink {
    fn finish(self) -> Result<Option<(PathBuf, u64)>, RunError> {
        Ok(None)
    }
}

impl Finish for JournalSink {
    fn finish(mut self) -> Result<Option<(PathBuf, u64)>, RunError> {
        self.snapshot()?;
        self.journal.sync()?;
        Ok(Some((self.journal.path().to_owned(), self.journal.len())))
    }
}

/// A sink that also watches what passes through it, building the run record:
/// trades from fills, equity at closes, recorded series.
struct Recorder<S> {
    inner: S,
    trader: String,
    record: RunRecord,
    open: BTreeMap<String, OpenTrade>,
    /// Per symbol index.
    chart: Vec<Decimator<PricePoint>>,
    /// Per recorded series, in `record.series` order.
    series_chart: Vec<Decimator<SeriesPoint>>,
    /// The series after the last one recorded to (cyclically): the likeliest next.
    series_last: usize,
    /// The per-bar tables, when they are written.
    tables: Option<TableWriter>,
    /// The cash of the last flat equity sample and its `f64`, converted once per change.
    flat_equity: Option<(Decimal, f64)>,
}

#[derive(Debug, Clone)]
struct OpenTrade {
    long: bool,
    entry_time_ms: i64,
    qty_max: Decimal,
    entry_qty: Decimal,
    entry_cost: Decimal,
    exit_qty: Decimal,
    exit_cost: Decimal,
    pnl: Decimal,
    fees: Decimal,
}

impl<S: Sink> Recorder<S> {
    fn new(inner: S) -> Recorder<S> {
        Recorder {
            inner,
            trader: String::new(),
            record: RunRecord::default(),
            open: BTreeMap::new(),
            chart: Vec::new(),
            series_chart: Vec::new(),
            series_last: 0,
            tables: None,
            flat_equity: None,
        }
    }

    fn sample_equity(&mut self, time_ms: i64) {
        let state = self.inner.state();
        let Some(trader) = state.traders.get(&self.trader) else { return };
        let exposed = trader.positions.values().any(|p| !p.qty.is_zero());
        let equity = if exposed {
            journal::money::to_f64(state.trader_equity(trader))
        } else {
            // Flat: the equity is the cash, which only fills, fees and funding move.
            match self.flat_equity {
                Some((cash, f)) if cash == trader.cash => f,
                _ => {
                    let f = journal::money::to_f64(trader.cash);
                    self.flat_equity = Some((trader.cash, f));
                    f
                }
            }
        };
        let point = EquityPoint { time_ms, equity, exposed };
        self.record.equity.push(point);
        if let Some(tables) = &mut self.tables {
            tables.equity(point);
        }
    }

    fn price(&mut self, index: usize, symbols: usize, time_ms: i64, close: &Decimal) {
        if self.record.prices.len() < symbols {
            self.record.prices.resize(symbols, Vec::new());
            self.chart.resize_with(symbols, Decimator::new);
        }
        self.chart[index]
            .push(&mut self.record.prices[index], || PricePoint { time_ms, close: journal::money::to_f64(*close) });
    }

    /// Trades from fills: a position leaving flat opens one, returning to flat
    /// (or flipping) closes it; realized PnL comes from the ledger itself.
    #[allow(clippy::too_many_arguments)]
    fn observe_fill(
        &mut self,
        time_ms: i64,
        symbol: &str,
        signed_qty: Decimal,
        price: Decimal,
        fee: Decimal,
        before: Decimal,
        realized: Decimal,
    ) {
        let after = before + signed_qty;
        let trade = self.open.entry(symbol.to_owned()).or_insert_with(|| OpenTrade {
            long: signed_qty > Decimal::ZERO,
            entry_time_ms: time_ms,
            qty_max: Decimal::ZERO,
            entry_qty: Decimal::ZERO,
            entry_cost: Decimal::ZERO,
            exit_qty: Decimal::ZERO,
            exit_cost: Decimal::ZERO,
            pnl: Decimal::ZERO,
            fees: Decimal::ZERO,
        });
        trade.fees += fee;
        trade.pnl += realized;
        let increasing = before.is_zero() || (before > Decimal::ZERO) == (signed_qty > Decimal::ZERO);
        if increasing {
            trade.entry_qty += signed_qty.abs();
            trade.entry_cost += signed_qty.abs() * price;
        } else {
            let closed = signed_qty.abs().min(before.abs());
            trade.exit_qty += closed;
            trade.exit_cost += closed * price;
        }
        // A flip's new side belongs to the next trade, so a reduction counts what was held before it.
        trade.qty_max = trade.qty_max.max(if increasing { after.abs() } else { before.abs() });
        let flipped = !before.is_zero() && !after.is_zero() && (before > Decimal::ZERO) != (after > Decimal::ZERO);
        if after.is_zero() || flipped {
            let done = self.open.remove(symbol).expect("invariant: inserted above");
            self.record.trades.push(close_trade(symbol, &done, time_ms));
            if flipped {
                self.open.insert(
                    symbol.to_owned(),
                    OpenTrade {
                        long: after > Decimal::ZERO,
                        entry_time_ms: time_ms,
                        qty_max: after.abs(),
                        entry_qty: after.abs(),
                        entry_cost: after.abs() * price,
                        exit_qty: Decimal::ZERO,
                        exit_cost: Decimal::ZERO,
                        pnl: Decimal::ZERO,
                        fees: Decimal::ZERO,
                    },
                );
            }
        }
    }

    fn observe_series(&mut self, time_ms: i64, name: &str, value: f64) {
        // Most runs record a handful of series in the same order on every bar: the one after
        // the last is the likeliest next, and a short scan finds the others.
        let at = match self.record.series.get(self.series_last) {
            Some(s) if s.name == name => self.series_last,
            _ => match self.record.series.iter().position(|s| s.name == name) {
                Some(at) => at,
                None => {
                    self.record.series.push(Series { name: name.to_owned(), points: Vec::new() });
                    self.series_chart.push(Decimator::new());
                    self.record.series.len() - 1
                }
            },
        };
        self.series_last = (at + 1) % self.record.series.len();
        if let Some(tables) = &mut self.tables {
            tables.series(at, name, time_ms, value);
        }
        self.series_chart[at].push(&mut self.record.series[at].points, || SeriesPoint { time_ms, value });
    }
}

fn close_trade(symbol: &str, t: &OpenTrade, exit_time_ms: i64) -> Trade {
    let avg = |cost: Decimal, qty: Decimal| if qty.is_zero() { Decimal::ZERO } else { (cost / qty).round_dp(8) };
    Trade {
        symbol: symbol.to_owned(),
        side: if t.long { "long".into() } else { "short".into() },
        entry_time_ms: t.entry_time_ms,
        exit_time_ms,
        qty: t.qty_max,
        entry_price: avg(t.entry_cost, t.entry_qty),
        exit_price: avg(t.exit_cost, t.exit_qty),
        pnl: t.pnl,
        fees: t.fees,
    }
}

impl<S: Sink> Sink for Recorder<S> {
    fn state(&self) -> &State {
        self.inner.state()
    }

    fn emit(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<u64, SinkError> {
        let mine = trader == self.trader;
        let observed = match event {
            Event::OrderFilled(f) if mine => Some((f.symbol.clone(), f.side.sign() * f.qty, f.price, f.fee_quote)),
            Event::PositionLiquidated { symbol, price, fee_quote } if mine => {
                let qty = self.position(symbol);
                Some((symbol.clone(), -qty, *price, *fee_quote))
            }
            Event::SeriesRecorded { name, value } if mine => {
                self.observe_series(time_ms, name, *value);
                None
            }
            _ => None,
        };
        let before = observed.as_ref().map(|(symbol, ..)| (self.position(symbol), self.realized()));
        let seq = self.inner.emit(time_ms, trader, event)?;
        if let (Some((symbol, signed, price, fee)), Some((position, realized))) = (observed, before) {
            let applied = self.position(&symbol) - position;
            if !applied.is_zero() || signed.is_zero() {
                let realized_now = self.realized() - realized;
                self.observe_fill(time_ms, &symbol, applied, price, fee, position, realized_now);
            }
        }
        Ok(seq)
    }

    fn plot(&mut self, time_ms: i64, trader: &str, names: &[String], values: &[f64]) {
        if trader == self.trader {
            for (name, value) in names.iter().zip(values) {
                self.observe_series(time_ms, name, *value);
            }
        }
    }
}

impl<S: Sink> Recorder<S> {
    fn position(&self, symbol: &str) -> Decimal {
        self.inner
            .state()
            .traders
            .get(&self.trader)
            .and_then(|t| t.positions.get(symbol))
            .map_or(Decimal::ZERO, |p| p.qty)
    }

    fn realized(&self) -> Decimal {
        self.inner.state().traders.get(&self.trader).map_or(Decimal::ZERO, |t| t.realized_pnl)
    }
}

/// Keeps at most about [`CHART_POINTS_MAX`] points of a line by doubling the stride.
struct Decimator<T> {
    stride: u64,
    /// Points to skip before the next one kept (a countdown: no division per point).
    skip: u64,
    _marker: std::marker::PhantomData<T>,
}

impl<T> Decimator<T> {
    fn new() -> Decimator<T> {
        Decimator { stride: 1, skip: 0, _marker: std::marker::PhantomData }
    }

    /// Counts a point, and keeps it (made by `point`) when it falls on the stride.
    fn push(&mut self, line: &mut Vec<T>, point: impl FnOnce() -> T) {
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        self.skip = self.stride - 1;
        line.push(point());
        if line.len() >= CHART_POINTS_MAX {
            self.stride *= 2;
            self.skip = self.stride - 1;
            let mut keep = false;
            line.retain(|_| {
                keep = !keep;
                keep
            });
        }
    }
}

/// A `time_ms,<column>` CSV of one named series, read in time order as the run advances.
struct ExternalFeed {
    rows: Vec<(String, i64, Decimal)>,
    next: usize,
}

impl ExternalFeed {
    fn open(files: &[(String, PathBuf)], column: &str) -> Result<ExternalFeed, RunError> {
        let mut rows = Vec::new();
        for (name, path) in files {
            rows.extend(read_series(name, path, column)?);
        }
        // Time order; ties by series name, so several series interleave deterministically.
        rows.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        Ok(ExternalFeed { rows, next: 0 })
    }

    /// The rows up to `time_ms` not taken yet.
    fn until(&mut self, time_ms: i64) -> impl Iterator<Item = (String, i64, Decimal)> + '_ {
        let start = self.next;
        while self.next < self.rows.len() && self.rows[self.next].1 <= time_ms {
            self.next += 1;
        }
        self.rows[start..self.next].iter().cloned()
    }
}

/// Reads a small `time_ms,<column>` CSV (header required), exactly, naming file and line on errors.
fn read_series(name: &str, path: &Path, column: &str) -> Result<Vec<(String, i64, Decimal)>, RunError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| RunError::Input { path: path.to_owned(), message: e.to_string() })?;
    let bad = |line: usize, message: String| RunError::Input {
        path: path.to_owned(),
        message: format!("line {line}: {message}"),
    };
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, header)) if header.trim().trim_start_matches('\u{feff}').split(',').next() == Some("time_ms") => {}
        _ => return Err(bad(1, format!("expected the header time_ms,{column}"))),
    }
    let mut out = Vec::new();
    let mut last = i64::MIN;
    for (index, line) in lines {
        let line_no = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let mut fields = line.split(',');
        let (Some(time), Some(value), None) = (fields.next(), fields.next(), fields.next()) else {
            return Err(bad(line_no, "expected two fields".into()));
        };
        let time_ms: i64 = time.trim().parse().map_err(|_| bad(line_no, format!("time {time:?} is not an integer")))?;
        let value = journal::money::parse(value).map_err(|e| bad(line_no, e))?;
        if time_ms <= last {
            return Err(bad(line_no, format!("time {time_ms} is not after the previous row")));
        }
        last = time_ms;
        out.push((name.to_owned(), time_ms, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use journal::event::{Cloid, Fill, Liquidity, Side};
    use rust_decimal_macros::dec;

    use super::*;

    fn fill(n: u8, side: Side, qty: Decimal, price: Decimal) -> Event {
        Event::OrderFilled(Fill {
            cloid: Cloid([n; 16]),
            fill_id: format!("f{n}"),
            symbol: "X".into(),
            side,
            qty,
            price,
            fee_quote: dec!(0.1),
            liquidity: Liquidity::Taker,
        })
    }

    #[test]
    fn trades_follow_the_position_through_a_flip() {
        let mut sink = Recorder::new(FoldSink::new());
        sink.trader = "t".into();
        let start = TraderStart {
            exchange: "sim".into(),
            account: "a".into(),
            currency: "USDT".into(),
            allocation_pct: dec!(100),
            capital_quote: dec!(1000),
            leverage: dec!(1),
        };
        sink.emit(0, "t", &Event::TraderStarted(start)).unwrap();
        // The ledger applies fills of known orders only.
        for (n, side, qty) in [(1, Side::Buy, dec!(1)), (2, Side::Sell, dec!(3)), (3, Side::Buy, dec!(2))] {
            let intent = journal::event::OrderIntent {
                cloid: Cloid([n; 16]),
                symbol: "X".into(),
                side,
                kind: journal::event::OrderKind::Market,
                qty,
                price: None,
                trigger_price: None,
                reduce_only: false,
                tif: journal::event::TimeInForce::Gtc,
            };
            sink.emit(0, "t", &Event::OrderSubmitted(intent)).unwrap();
        }
        // Long 1 at 100; sell 3 at 110 closes it (+10) and opens a 2 short; buy 2 at 105 closes that (+10).
        sink.emit(1, "t", &fill(1, Side::Buy, dec!(1), dec!(100))).unwrap();
        sink.emit(2, "t", &fill(2, Side::Sell, dec!(3), dec!(110))).unwrap();
        sink.emit(3, "t", &fill(3, Side::Buy, dec!(2), dec!(105))).unwrap();
        // A repeated fill id is not applied by the ledger, so it makes no trade either.
        sink.emit(4, "t", &fill(3, Side::Buy, dec!(2), dec!(105))).unwrap();
        let trades = &sink.record.trades;
        assert_eq!(trades.len(), 2, "{trades:?}");
        let (long, short) = (&trades[0], &trades[1]);
        assert_eq!(
            (long.side.as_str(), long.qty, long.entry_price, long.exit_price, long.pnl),
            ("long", dec!(1), dec!(100), dec!(110), dec!(10))
        );
        assert_eq!((long.entry_time_ms, long.exit_time_ms), (1, 2));
        assert_eq!(
            (short.side.as_str(), short.qty, short.entry_price, short.exit_price, short.pnl),
            ("short", dec!(2), dec!(110), dec!(105), dec!(10))
        );
        assert_eq!((short.entry_time_ms, short.exit_time_ms), (2, 3));
        // The flip's fee goes to the closing trade; every fee is counted once.
        assert_eq!(long.fees + short.fees, dec!(0.3));
        assert!(sink.open.is_empty());
    }
}

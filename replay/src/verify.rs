//! Re-run the deciders on a journal's inputs and compare their decisions.
//!
//! The journal is walked in order, and every input (market data, exchange
//! answers, operator commands) goes through [`Engine::step`], the same step the
//! driver that wrote the journal ran; the engine's sink is a [`ReplaySink`],
//! which folds the journaled input and, for every event the strategies then
//! derive, takes the next journaled record and demands equality (trader, time
//! and event). A `StrategyLoaded` record loads the strategy — with
//! the source stored in the journal, or with a file given for that trader, which
//! is how a new version of a strategy is checked against recorded history.
//!
//! The venue's answers (acks, exchange rejections, cancels, fills, funding paid,
//! liquidations) depend on the venue:
//! - A journal whose venue was the simulated exchange says so with a
//!   `VenueConfigured { kind: "sim", .. }` at set-up. From there on the walk re-runs the
//!   sim (`sim::SimVenue`) with the journaled settings and instrument rules, driving it
//!   exactly as the backtest driver (`backtest/src/run.rs`) does: after the set-up's
//!   load and after each bar's `KlineReceived`, `Engine::settle` (the sim's acks and
//!   cancels); before each `KlineReceived`, the sim's fills and liquidations on that bar
//!   (`SimVenue::on_bar`, found by looking ahead to the next kline); after each
//!   `FundingRateReceived`, the sim's `FundingPaid`. Every answer is compared with the
//!   journal byte for byte like a decision, and a journaled answer the sim does not give
//!   is a divergence ([`DivergenceKind::VenueAnswer`]).
//! - Otherwise (a live venue, or a sim journal recorded before `VenueConfigured`
//!   existed) the venue is [`NoVenue`] and its answers are inputs, folded on trust;
//!   the report's `venue` says which.
//!
//! The first difference stops the walk and is reported with both sides and the
//! inputs that led to it.
//!
//! Limits: each strategy runs under the limits its `StrategyLoaded` journaled
//! (fuel, memory, wall-clock backstop, restart policy; schema-1 records carry
//! the defaults of schema 1), never this build's defaults. A `StrategyErred` of
//! kind `Timeout` is a wall-clock fact: while a hook runs, the sink tells the
//! sandbox when the journal's next record is that timeout
//! ([`Sink::call_timed_out`]), and the call ends there as it did live; the
//! timeout and what follows it (restart, stop) are then compared as usual. The
//! journaled backstop still runs on the wall clock here: a call that times out
//! on replay but not in the journal (a much slower machine) is a divergence.

use std::{
    collections::{BTreeMap, VecDeque},
    path::{Path, PathBuf},
};

use engine::{Engine, NoVenue, Venue};
use journal::{
    codec,
    event::{Kline, StrategyErrorKind, StrategyLoad},
    Durability, Envelope, Event, Hash, Journal, State, StoreError,
};
use serde::Serialize;
use sim::{SimConfig, SimVenue};
use strategies::{
    runtime::StrategySpec,
    sink::{Sink, SinkError},
};

/// How many inputs before a divergence the report shows.
const CONTEXT_INPUTS: usize = 5;

/// A strategy file to use instead of the journaled source, for one trader.
#[derive(Debug, Clone)]
pub struct Override {
    pub trader: String,
    pub file: PathBuf,
    pub source: String,
}

/// What went wrong, and where.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {message}")]
    Override { path: PathBuf, message: String },
}

/// What kind of difference a divergence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DivergenceKind {
    /// The deciders derived something else than the journal holds at `seq` (a different
    /// decision, or a decision where the journal has an input).
    Decision,
    /// The journal holds a decision at `seq` that today's code did not derive.
    Underived,
    /// The re-run simulated exchange answered differently at `seq`: another answer, an
    /// answer where the journal has something else, or none where the journal has one.
    VenueAnswer,
    /// A strategy could not be loaded as journaled (its source is missing or does not
    /// match its code hash, or the worker refused it).
    Strategy,
    /// The journaled venue settings cannot be used by this build.
    Venue,
}

/// One side of a divergence, as JSON (the export form).
#[derive(Debug, Clone, Serialize)]
pub struct Divergence {
    pub seq: u64,
    pub kind: DivergenceKind,
    pub trader: String,
    pub time_ms: i64,
    /// The journaled record at `seq` (None: the journal ended).
    pub journaled: Option<serde_json::Value>,
    /// What today's code derived there (None: it derived nothing).
    pub rederived: Option<serde_json::Value>,
    pub explanation: String,
    /// The last inputs before the divergence, oldest first.
    pub inputs: Vec<serde_json::Value>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub journal: PathBuf,
    pub events: u64,
    pub inputs: u64,
    /// Derived events re-derived and found equal.
    pub decisions_checked: u64,
    /// Venue answers re-derived by the re-run simulated exchange and found equal (0 when
    /// the answers were inputs). `events = inputs + decisions_checked + venue_answers_checked`
    /// for a journal reproduced to its end.
    pub venue_answers_checked: u64,
    /// How the venue's answers were checked.
    pub venue: String,
    /// True when the simulated exchange was re-run; false when its answers were inputs.
    pub venue_rederived: bool,
    pub snapshots_checked: usize,
    pub traders: Vec<String>,
    pub strategies: Vec<String>,
    pub overrides: Vec<String>,
    pub head: Hash,
    pub state_digest: Hash,
    pub reproduced: bool,
    pub divergence: Option<Divergence>,
    /// The journal ends while a decision was being re-derived, as a journal cut
    /// by a crash does: everything it holds was reproduced.
    pub ends_mid_decision: bool,
}

/// Verifies the chain and snapshots, then re-derives every decision.
///
/// # Errors
/// The journal cannot be read or its chain is broken (the error names the
/// first bad seq); an override file cannot be read. A decision that differs is
/// not an error: it is the report's `divergence`.
pub fn verify(dir: &Path, overrides: &[Override]) -> Result<Report, VerifyError> {
    let journal = Journal::open(dir, Durability::None)?;
    // One read of the journal: the records are checked (position, chain link, hash) as the
    // walk reads them, and each snapshot against the walk's fold when it reaches it (what
    // `journal::verify::journal` checks in a pass of its own).
    let snapshot_seqs = journal.snapshot_seqs()?;
    std::thread::scope(|scope| {
        // Records are read, checked and decoded on a thread of their own, ahead of the walk;
        // the walk hands the emptied batches back to be filled again.
        let (sender, receiver) = std::sync::mpsc::sync_channel(PIPE_BATCHES);
        let (spare_sender, spare) = std::sync::mpsc::channel();
        let journal = &journal;
        scope.spawn(move || read_ahead(journal, &sender, &spare));
        // What no walk sees — a truncation below the durable head, the segment copy — is
        // checked beside the walk (its answer is taken after the walk and the drain, as if
        // it ran then: it reads nothing the walk writes).
        let durability = scope.spawn(move || journal::verify::durability(journal));
        let piped = Piped { receiver, spare: spare_sender, batch: VecDeque::new() };
        let mut engine = Engine::new(ReplaySink::new(journal, piped));
        engine.sink_mut().snapshots = Some(Snapshots { due: snapshot_seqs.iter().copied().collect(), skipped: 0 });
        let walked = walk(&mut engine, overrides)?;
        let sink = engine.sink_mut();
        let state_digest = sink.state.digest();
        // A walk that stopped at a divergence still checks the rest of the chain and snapshots,
        // and then what no walk sees.
        sink.drain()?;
        durability.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        report(dir, journal, overrides, &snapshot_seqs, walked, sink, state_digest)
    })
}

/// Records handed from the reading thread to the walk per batch.
const PIPE_BATCH: usize = 1024;
/// Batches the reading thread may be ahead.
const PIPE_BATCHES: usize = 8;

type Batch = VecDeque<Result<Envelope, StoreError>>;

/// The reading thread: every record, checked and decoded, in batches (the walk's emptied
/// ones when it has handed them back); stops after the first error or when the walk hangs up.
fn read_ahead(
    journal: &Journal,
    sender: &std::sync::mpsc::SyncSender<Batch>,
    spare: &std::sync::mpsc::Receiver<Batch>,
) {
    let fresh = || spare.try_recv().unwrap_or_else(|_| VecDeque::with_capacity(PIPE_BATCH));
    let mut batch = fresh();
    for record in journal.records(0) {
        batch.push_back(record);
        if batch.len() == PIPE_BATCH && sender.send(std::mem::replace(&mut batch, fresh())).is_err() {
            return;
        }
    }
    if !batch.is_empty() {
        let _ = sender.send(batch);
    }
}

/// The walk's side of the reading thread.
struct Piped {
    receiver: std::sync::mpsc::Receiver<Batch>,
    /// Emptied batches go back to the reading thread (which may have ended: then they drop).
    spare: std::sync::mpsc::Sender<Batch>,
    batch: Batch,
}

impl Iterator for Piped {
    type Item = Result<Envelope, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.batch.pop_front() {
                return Some(record);
            }
            let next = self.receiver.recv().ok()?;
            let _ = self.spare.send(std::mem::replace(&mut self.batch, next));
        }
    }
}

fn report(
    dir: &Path,
    journal: &Journal,
    overrides: &[Override],
    snapshot_seqs: &[u64],
    walked: Walked,
    sink: &ReplaySink<'_>,
    state_digest: Hash,
) -> Result<Report, VerifyError> {
    Ok(Report {
        journal: dir.to_owned(),
        events: journal.len(),
        inputs: walked.inputs,
        decisions_checked: sink.checked,
        venue_answers_checked: sink.venue_checked,
        venue: venue_note(walked.venue.as_ref(), &sink.state),
        venue_rederived: walked.venue.is_some(),
        snapshots_checked: snapshot_seqs.len() - sink.snapshots.as_ref().map_or(0, |s| s.skipped),
        traders: sink.state.traders.keys().cloned().collect(),
        strategies: walked.strategies,
        overrides: overrides.iter().map(|o| format!("{}={}", o.trader, o.file.display())).collect(),
        head: journal.last_hash(),
        state_digest,
        reproduced: walked.divergence.is_none(),
        divergence: walked.divergence,
        ends_mid_decision: sink.journal_ended,
    })
}

/// How the report describes the venue's part.
fn venue_note(sim: Option<&SimConfig>, state: &State) -> String {
    if let Some(c) = sim {
        return format!(
            "simulated exchange re-run (slippage {} bps, {}, liquidation fee rate {}): its answers re-derived",
            c.slippage_bps,
            c.intrabar.name(),
            c.liquidation_fee_rate
        );
    }
    let on_sim = state.traders.values().any(|t| t.start.as_ref().is_some_and(|s| s.exchange == sim::VENUE_KIND));
    if on_sim {
        "answers taken as inputs: the journal does not record the simulated exchange's settings \
         (no VenueConfigured: recorded before it existed)"
            .to_owned()
    } else {
        "answers taken as inputs (a live venue's answers are facts)".to_owned()
    }
}

/// The simulated exchange of a journal that was run on it, re-run as the backtest
/// driver runs it (see the module docs).
struct SimReplay {
    venue: SimVenue,
    /// A settle has just ended: the next bar's fills come next.
    bar_due: bool,
    /// The seq of the last kline whose bar the sim has run (each bar runs once).
    last_bar: Option<u64>,
    /// The next bar, copied from the journal into one reused kline.
    bar: Kline,
}

/// The venue a step hands effects to: the re-run sim, or nowhere.
fn venue_of<'a>(sim: &'a mut Option<SimReplay>, none: &'a mut NoVenue) -> &'a mut dyn Venue {
    match sim {
        Some(s) => &mut s.venue,
        None => none,
    }
}

/// What a walk of a journal found.
pub(crate) struct Walked {
    /// The simulated exchange's settings when it was re-run.
    pub venue: Option<SimConfig>,
    pub inputs: u64,
    /// "trader (file)" of every strategy loaded.
    pub strategies: Vec<String>,
    /// The first difference; None when everything was reproduced.
    pub divergence: Option<Divergence>,
}

/// Walks the journal behind `engine`'s sink from its first record: every input through
/// the engine's step, every `StrategyLoaded` through its load, every derived event
/// compared by the sink. Shared by [`verify`] and [`crate::resume`].
///
/// # Errors
/// The journal could not be read.
pub(crate) fn walk(engine: &mut Engine<ReplaySink<'_>>, overrides: &[Override]) -> Result<Walked, StoreError> {
    let mut sources: BTreeMap<Hash, String> = BTreeMap::new();
    let mut strategies = Vec::new();
    let mut inputs = 0u64;
    let mut sim: Option<SimReplay> = None;

    let outcome = 'walk: loop {
        let sink = engine.sink_mut();
        let Some(record) = sink.next_record() else { break Ok(()) };
        let record = record?;
        // A model's answer belongs to the bar that asked (the backtest driver steps it while it
        // settles that bar), so it comes before the next bar's fills.
        let llm_answer = matches!(record.event, Event::LlmResponded { .. } | Event::LlmFailed { .. });
        // The sim's fills and liquidations on the next bar, before anything of that bar.
        if let Some(s) = sim.as_mut().filter(|s| s.bar_due && !llm_answer) {
            s.bar_due = false;
            let is_kline = matches!(record.event, Event::KlineReceived(_));
            let mut answers = Vec::new();
            if let Event::KlineReceived(bar) = &record.event {
                // Most bars: the kline is the next record, and the sim has nothing to say.
                if s.last_bar.is_none_or(|last| last < record.seq) {
                    s.last_bar = Some(record.seq);
                    answers = s.venue.on_bar(&sink.state, bar);
                }
            }
            if !is_kline || !answers.is_empty() {
                // The answers are compared from this record on: it goes back.
                sink.ahead.push_front(Ok(record));
                if !is_kline {
                    // Answers (or a tampered journal) before the kline: look ahead for it.
                    if let Some(seq) = sink.next_kline(&mut s.bar).filter(|&seq| s.last_bar.is_none_or(|l| l < seq)) {
                        s.last_bar = Some(seq);
                        answers = s.venue.on_bar(&sink.state, &s.bar);
                    }
                }
                for (who, time_ms, event) in answers {
                    if let Err(e) = engine.step(time_ms, &who, &event, &mut s.venue) {
                        break 'walk Err(e);
                    }
                }
                continue;
            }
        }
        if let Event::StrategyLoaded(load) = &record.event {
            if let Some(source) = &load.source {
                // A re-chained journal can carry an edited source: its hash gives it away.
                if journal::hash::content(source) != load.code_hash {
                    let explanation = format!(
                        "the stored source of {} does not match its code hash {}",
                        load.file,
                        load.code_hash.short()
                    );
                    break Err(sink.diverge(&record, DivergenceKind::Strategy, None, explanation));
                }
                sources.insert(load.code_hash, source.clone());
            }
            let spec = match spec_for(&record, load, &sources, overrides) {
                Ok(spec) => spec,
                Err(explanation) => break Err(sink.diverge(&record, DivergenceKind::Strategy, None, explanation)),
            };
            strategies.push(format!("{} ({})", record.trader, spec.file));
            // Loading derives the StrategyLoaded itself: the sink compares it (leniently
            // on the code when an override replaces it) and everything st_init derives.
            sink.pending_load = Some(record);
            sink.lenient_code =
                overrides.iter().any(|o| o.trader == sink.pending_load.as_ref().map_or("", |r| r.trader.as_str()));
            let time_ms = load_time(sink);
            if let Err(e) = engine.load(spec, time_ms, venue_of(&mut sim, &mut NoVenue)) {
                break Err(e);
            }
            // The backtest driver settles after the set-up's load.
            if let Some(s) = sim.as_mut() {
                if let Err(e) = engine.settle(&mut s.venue) {
                    break Err(e);
                }
                s.bar_due = true;
            }
            continue;
        }
        if sim.is_some() && record.event.is_venue_answer() {
            let explanation = format!(
                "the journal has the venue answer {} here, but the re-run simulated exchange gave none",
                record.event.kind()
            );
            break Err(sink.diverge(&record, DivergenceKind::VenueAnswer, None, explanation));
        }
        if !record.event.is_input() {
            let explanation = format!("the journal has {} here, but today's code derived nothing", record.event.kind());
            break Err(sink.diverge(&record, DivergenceKind::Underived, None, explanation));
        }
        inputs += 1;
        if let Event::VenueConfigured(venue) = &record.event {
            if venue.kind == sim::VENUE_KIND {
                match SimConfig::from_journaled(venue) {
                    Ok(config) => {
                        let (bar_due, last_bar) = sim.as_ref().map_or((false, None), |s| (s.bar_due, s.last_bar));
                        let bar = Kline::zeroed("");
                        sim = Some(SimReplay { venue: SimVenue::new(config), bar_due, last_bar, bar });
                        sink.sim = true;
                    }
                    Err(problem) => {
                        let explanation = format!("cannot re-run the simulated exchange: {problem}");
                        break Err(sink.diverge(&record, DivergenceKind::Venue, None, explanation));
                    }
                }
            }
        }
        // The step records the input as this journaled record (folded here), not the next one.
        sink.fold_input(&record);
        sink.check_snapshots()?;
        let replaced = with_template(&record, overrides);
        let event = replaced.as_ref().unwrap_or(&record.event);
        let stepped = engine.step(record.time_ms, &record.trader, event, venue_of(&mut sim, &mut NoVenue));
        let is_kline = matches!(record.event, Event::KlineReceived(_));
        let funding = match &record.event {
            Event::FundingRateReceived { symbol, rate } if sim.is_some() => {
                Some((symbol.clone(), *rate, record.time_ms))
            }
            _ => None,
        };
        engine.sink_mut().remember(record.seq);
        if let Err(e) = stepped {
            break Err(e);
        }
        let Some(s) = sim.as_mut() else { continue };
        // The exchange's answers to what the bar's decisions asked, or to the orders of a
        // model's answer (the backtest settles after each: see `engine::WithLlm`).
        if is_kline || llm_answer {
            if let Err(e) = engine.settle(&mut s.venue) {
                break Err(e);
            }
            s.bar_due = true;
        }
        // Funding on the rate, at the mark (none before the symbol's first price).
        if let Some((symbol, rate, time_ms)) = funding {
            let Some(mark) = engine.state().mark(&symbol) else { continue };
            for (who, t, event) in s.venue.funding(engine.state(), &symbol, rate, mark, time_ms) {
                if let Err(e) = engine.step(t, &who, &event, &mut s.venue) {
                    break 'walk Err(e);
                }
            }
        }
    };
    let sink = engine.sink_mut();
    let mut divergence = match outcome {
        Ok(()) => sink.divergence.take(),
        Err(SinkError::Store(e)) => return Err(e),
        Err(SinkError::Divergence { .. }) if sink.journal_ended => None,
        Err(SinkError::Divergence { .. }) => sink.divergence.take(),
        // E.g. a journal that loads a second strategy for one trader: today's worker refuses.
        Err(SinkError::Refused(message)) => {
            let seq = sink.state.last_seq.map_or(0, |s| s + 1);
            sink.record_divergence(seq, DivergenceKind::Strategy, None, None, message);
            sink.divergence.take()
        }
    };
    if let Some(d) = &mut divergence {
        // Read again: the walk keeps only their seqs (moving each record into a ring cost
        // the hot path a copy of every input).
        let as_json = |seq: &u64| match sink.journal.get(*seq) {
            Ok(Some(e)) => serde_json::to_value(e).unwrap_or(serde_json::Value::Null),
            _ => serde_json::Value::Null,
        };
        d.inputs = sink.recent_inputs.iter().map(as_json).collect();
    }
    Ok(Walked { venue: sim.map(|s| s.venue.config), inputs, strategies, divergence })
}

/// An LLM trader's configuration with an override's template in place of the journaled one:
/// the trader then renders with it, and the first prompt it changes diverges (its digest).
/// The journaled record itself is folded unchanged, so the chain still verifies.
fn with_template(record: &Envelope, overrides: &[Override]) -> Option<Event> {
    let Event::LlmTraderLoaded(load) = &record.event else { return None };
    let o = overrides.iter().find(|o| o.trader == record.trader)?;
    let mut load = load.clone();
    if let serde_json::Value::Object(config) = &mut load.config.0 {
        config.insert("template".to_owned(), serde_json::Value::String(o.source.clone()));
    }
    Some(Event::LlmTraderLoaded(load))
}

fn load_time(sink: &ReplaySink<'_>) -> i64 {
    sink.pending_load.as_ref().map_or(0, |r| r.time_ms)
}

fn spec_for(
    record: &Envelope,
    load: &StrategyLoad,
    sources: &BTreeMap<Hash, String>,
    overrides: &[Override],
) -> Result<StrategySpec, String> {
    let (file, source) = match overrides.iter().find(|o| o.trader == record.trader) {
        Some(o) => (o.file.display().to_string(), o.source.clone()),
        None => {
            let source = sources
                .get(&load.code_hash)
                .ok_or_else(|| format!("the journal never stored the source of code {}", load.code_hash.short()))?;
            (load.file.clone(), source.clone())
        }
    };
    let mut spec = StrategySpec::new(&record.trader, &file, source, load.params.0.clone(), load.seed);
    spec.name = load.name.clone();
    spec.set_limits(&load.limits);
    Ok(spec)
}

/// The snapshots a verifying walk checks against its fold, as it reaches their seqs
/// (in the sink's journal).
struct Snapshots {
    due: VecDeque<u64>,
    /// Snapshots of another build's state layout met so far (skipped).
    skipped: usize,
}

impl Snapshots {
    /// Checks every snapshot due at or before the fold's last seq.
    fn check(&mut self, journal: &Journal, folded: &State) -> Result<(), StoreError> {
        let Some(last) = folded.last_seq else { return Ok(()) };
        while let Some(seq) = self.due.front().copied().filter(|&seq| seq <= last) {
            self.due.pop_front();
            // None: intact but of another build's state layout, which this build cannot use.
            let Some(stored) = journal.snapshot(seq)? else {
                self.skipped += 1;
                continue;
            };
            if folded.last_seq != Some(seq) || stored.digest() != folded.digest() {
                let problem = "snapshot digest differs from the fold of the records before it";
                return Err(corrupt(journal, seq, problem));
            }
        }
        Ok(())
    }
}

fn corrupt(journal: &Journal, seq: u64, problem: &str) -> StoreError {
    StoreError::Corrupt { path: journal.path().to_owned(), seq, problem: problem.into() }
}

/// The sink of a replay: derived events are compared with the journal instead of written.
pub struct ReplaySink<'a> {
    journal: &'a Journal,
    records: Box<dyn Iterator<Item = Result<Envelope, StoreError>> + 'a>,
    /// Verifying: the snapshots still to check (None: resuming, which trusts them).
    snapshots: Option<Snapshots>,
    pub state: State,
    /// The StrategyLoaded record a `worker.load` is about to re-derive.
    pending_load: Option<Envelope>,
    /// The seq of the journaled input the engine's step is about to record.
    journaled_input: Option<u64>,
    lenient_code: bool,
    checked: u64,
    /// Venue answers re-derived and found equal.
    venue_checked: u64,
    /// The simulated exchange is re-run: its answers are derived, not inputs.
    sim: bool,
    /// The seqs of the last inputs stepped, for a divergence report.
    recent_inputs: VecDeque<u64>,
    divergence: Option<Divergence>,
    /// Records read ahead (looking for the next kline), to be walked in order.
    ahead: VecDeque<Result<Envelope, StoreError>>,
    journal_ended: bool,
    /// Resuming: where the journal ends, derived events are chained on here (to be
    /// appended once the walk is over) instead of ending the walk.
    tail: Option<Vec<Envelope>>,
    /// The journaled and the derived event's canonical bytes, compared (buffers reused).
    bodies: (Vec<u8>, Vec<u8>),
}

impl<'a> ReplaySink<'a> {
    fn new(journal: &'a Journal, records: impl Iterator<Item = Result<Envelope, StoreError>> + 'a) -> ReplaySink<'a> {
        ReplaySink {
            journal,
            records: Box::new(records),
            snapshots: None,
            state: State::default(),
            pending_load: None,
            journaled_input: None,
            lenient_code: false,
            checked: 0,
            venue_checked: 0,
            sim: false,
            recent_inputs: VecDeque::new(),
            divergence: None,
            ahead: VecDeque::new(),
            journal_ended: false,
            tail: None,
            bodies: (Vec::new(), Vec::new()),
        }
    }

    /// A sink that goes on past the journal's end (see `tail`): resuming after a crash.
    pub(crate) fn continuing(
        journal: &'a Journal,
        records: impl Iterator<Item = Result<Envelope, StoreError>> + 'a,
    ) -> ReplaySink<'a> {
        ReplaySink { tail: Some(Vec::new()), ..ReplaySink::new(journal, records) }
    }

    /// Derived events re-derived and found equal so far.
    pub(crate) fn decisions_checked(&self) -> u64 {
        self.checked
    }

    /// The folded state, and the events derived past the journal's end (resuming).
    pub(crate) fn into_parts(self) -> (State, Vec<Envelope>) {
        (self.state, self.tail.unwrap_or_default())
    }

    fn next_record(&mut self) -> Option<Result<Envelope, StoreError>> {
        self.ahead.pop_front().or_else(|| self.records.next())
    }

    /// The next journaled kline, copied into `into`, and its seq; reads ahead as far as it
    /// is. None at the journal's end or at a record that cannot be read (which the walk
    /// then meets).
    fn next_kline(&mut self, into: &mut Kline) -> Option<u64> {
        let copy = |seq: u64, k: &Kline, into: &mut Kline| {
            into.symbol.clone_from(&k.symbol);
            (into.interval_ms, into.open_time_ms, into.closed) = (k.interval_ms, k.open_time_ms, k.closed);
            (into.open, into.high, into.low, into.close, into.volume) = (k.open, k.high, k.low, k.close, k.volume);
            seq
        };
        for record in &self.ahead {
            match record {
                Ok(Envelope { seq, event: Event::KlineReceived(k), .. }) => return Some(copy(*seq, k, into)),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        loop {
            let record = self.records.next()?;
            let found = match &record {
                Ok(Envelope { seq, event: Event::KlineReceived(k), .. }) => Some(Some(copy(*seq, k, into))),
                Ok(_) => None,
                Err(_) => Some(None),
            };
            self.ahead.push_back(record);
            if let Some(found) = found {
                return found;
            }
        }
    }

    /// Checks the snapshots the fold has reached.
    fn check_snapshots(&mut self) -> Result<(), StoreError> {
        match &mut self.snapshots {
            Some(snapshots) => snapshots.check(self.journal, &self.state),
            None => Ok(()),
        }
    }

    /// After the walk: the rest of the journal, read (so checked) and folded for the snapshots.
    fn drain(&mut self) -> Result<(), StoreError> {
        while let Some(record) = self.next_record() {
            self.state.apply(&record?);
            self.check_snapshots()?;
        }
        if let Some(snapshots) = &self.snapshots {
            if let Some(&seq) = snapshots.due.front() {
                return Err(corrupt(self.journal, seq, "snapshot beyond the last record"));
            }
        }
        Ok(())
    }

    fn fold_input(&mut self, record: &Envelope) {
        self.state.apply(record);
        self.journaled_input = Some(record.seq);
    }

    /// Keeps the seq of an input stepped, for a divergence report.
    fn remember(&mut self, seq: u64) {
        if self.recent_inputs.len() == CONTEXT_INPUTS {
            self.recent_inputs.pop_front();
        }
        self.recent_inputs.push_back(seq);
    }

    fn diverge(
        &mut self,
        at: &Envelope,
        kind: DivergenceKind,
        rederived: Option<(i64, &str, &Event)>,
        explanation: String,
    ) -> SinkError {
        self.record_divergence(at.seq, kind, Some(at), rederived, explanation)
    }

    fn record_divergence(
        &mut self,
        seq: u64,
        kind: DivergenceKind,
        at: Option<&Envelope>,
        rederived: Option<(i64, &str, &Event)>,
        explanation: String,
    ) -> SinkError {
        let as_json = |e: &Envelope| serde_json::to_value(e).unwrap_or(serde_json::Value::Null);
        let rederived_json = rederived.map(
            |(time_ms, trader, event)| serde_json::json!({ "time_ms": time_ms, "trader": trader, "event": event }),
        );
        self.divergence = Some(Divergence {
            seq,
            kind,
            trader: at.map(|r| r.trader.clone()).or_else(|| rederived.map(|r| r.1.to_owned())).unwrap_or_default(),
            time_ms: at.map(|r| r.time_ms).or_else(|| rederived.map(|r| r.0)).unwrap_or_default(),
            journaled: at.map(as_json),
            rederived: rederived_json,
            explanation: explanation.clone(),
            // Filled in when the walk ends (the input of the step in progress is not kept yet).
            inputs: Vec::new(),
        });
        SinkError::Divergence { seq, message: explanation }
    }
}

impl ReplaySink<'_> {
    /// Chains a derived event on past the journal's end, as the journal would append it.
    fn chain_on(&mut self, time_ms: i64, trader: &str, event: &Event) -> u64 {
        let seq = self.state.last_seq.map_or(0, |s| s + 1);
        let prev_hash = self.state.last_hash;
        let (hash, _) = codec::encode_event_record(seq, &prev_hash, time_ms, trader, event);
        let envelope = Envelope { seq, time_ms, trader: trader.to_owned(), event: event.clone(), prev_hash, hash };
        self.state.apply(&envelope);
        if let Some(tail) = &mut self.tail {
            tail.push(envelope);
        }
        seq
    }
}

impl Sink for ReplaySink<'_> {
    fn state(&self) -> &State {
        &self.state
    }

    fn call_timed_out(&mut self, trader: &str) -> bool {
        if self.pending_load.is_some() {
            return false;
        }
        if self.ahead.is_empty() {
            if let Some(record) = self.records.next() {
                self.ahead.push_back(record);
            }
        }
        matches!(
            self.ahead.front(),
            Some(Ok(r)) if r.trader == trader
                && matches!(r.event, Event::StrategyErred { kind: StrategyErrorKind::Timeout, .. })
        )
    }

    fn emit(&mut self, time_ms: i64, trader: &str, event: &Event) -> Result<u64, SinkError> {
        if let Some(seq) = self.journaled_input.take() {
            // The input the step records: the walk has folded the journaled record already.
            return Ok(seq);
        }
        let record = match self.pending_load.take() {
            Some(load) => load,
            None => match self.next_record() {
                Some(r) => r?,
                None if self.tail.is_some() => return Ok(self.chain_on(time_ms, trader, event)),
                None => {
                    // A journal cut by a crash ends inside a decision; that is not a divergence.
                    self.journal_ended = true;
                    let seq = self.state.last_seq.map_or(0, |s| s + 1);
                    return Err(SinkError::Divergence {
                        seq,
                        message: format!("the journal ends before {}", event.kind()),
                    });
                }
            },
        };
        let same_code_aside = match (&record.event, event, self.lenient_code) {
            (Event::StrategyLoaded(a), Event::StrategyLoaded(b), true) => {
                self.lenient_code = false;
                a.name == b.name && a.params == b.params && a.seed == b.seed
            }
            _ => false,
        };
        // Canonical bytes, not PartialEq: a recorded NaN equals itself byte for byte.
        let equal = same_code_aside || {
            let (journaled, derived) = &mut self.bodies;
            codec::encode_body_into(journaled, record.time_ms, &record.trader, &record.event);
            codec::encode_body_into(derived, time_ms, trader, event);
            journaled == derived
        };
        let answer = self.sim && event.is_venue_answer();
        if !equal {
            let (kind, by) = if answer {
                (DivergenceKind::VenueAnswer, "the re-run simulated exchange")
            } else {
                (DivergenceKind::Decision, "today's code")
            };
            let explanation = if record.event.kind() == event.kind() {
                format!("{by} derived a different {}", event.kind())
            } else if record.event.is_input() && !(self.sim && record.event.is_venue_answer()) {
                format!("{by} derived {} where the journal has the input {}", event.kind(), record.event.kind())
            } else {
                format!("{by} derived {} where the journal has {}", event.kind(), record.event.kind())
            };
            let error = self.diverge(&record, kind, Some((time_ms, trader, event)), explanation);
            // The walk stops here, but the record is still the journal's: the drain after the
            // walk folds it with the rest, so the snapshots after it are checked against it.
            self.ahead.push_front(Ok(record));
            return Err(error);
        }
        if answer {
            self.venue_checked += 1;
        } else {
            self.checked += 1;
        }
        self.state.apply(&record);
        self.check_snapshots()?;
        Ok(record.seq)
    }
}

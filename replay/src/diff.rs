//! Where two journals of the same market inputs part.
//!
//! Each journal is cut into steps at its market inputs (klines, tickers, data
//! points, clock ticks, funding rates): a step is one market input and every event after it up
//! to the next. Steps are paired in order; the market inputs of paired steps must
//! be equal (else the journals are not of the same inputs). Within a step, the
//! decisions (derived events) are compared; exchange answers naturally follow
//! the decisions and are not compared. When one journal ends first, the other's
//! remaining steps are counted (`steps_only_in_a`/`_b`): a journal against its own
//! prefix is not `identical`.

use std::path::Path;

use journal::{Durability, Envelope, Event, Journal, State, StoreError};
use rust_decimal::Decimal;
use serde::Serialize;

/// One run's side of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct RunSide {
    pub journal: String,
    pub events: u64,
    pub decisions: u64,
    pub fills: u64,
    /// Per trader: final equity at the last marks, and realized PnL net of fees and funding.
    pub traders: Vec<TraderPnl>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TraderPnl {
    pub trader: String,
    #[serde(with = "journal::money::dec")]
    pub equity: Decimal,
    #[serde(with = "journal::money::dec")]
    pub pnl: Decimal,
}

/// The first decision that differs.
#[derive(Debug, Clone, Serialize)]
pub struct FirstDifference {
    pub step: u64,
    /// The market input both runs were handling.
    pub input: serde_json::Value,
    pub a: Option<serde_json::Value>,
    pub b: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DiffReport {
    pub a: RunSide,
    pub b: RunSide,
    pub steps: u64,
    /// Steps whose decisions differ.
    pub differing_steps: u64,
    /// Decisions of either run without their equal at the same place in the other (one
    /// edited decision counts 2: its two versions).
    pub differing_decisions: u64,
    pub first: Option<FirstDifference>,
    /// Set when the market inputs themselves differ (not the same inputs).
    pub inputs_differ_at_step: Option<u64>,
    /// Steps after the shorter journal's end (at least one of the two is 0): a journal
    /// and its own prefix differ by these.
    pub steps_only_in_a: u64,
    pub steps_only_in_b: u64,
    /// Same market inputs, same decisions, same number of steps.
    pub identical: bool,
}

fn is_market(event: &Event) -> bool {
    matches!(
        event,
        Event::KlineReceived(_)
            | Event::TickerReceived(_)
            | Event::DataPointReceived { .. }
            | Event::ClockTicked
            | Event::FundingRateReceived { .. }
    )
}

/// One step: its market input (None for the preamble) and the decisions in it.
type Step = (Option<Envelope>, Vec<Envelope>);

/// Steps of a journal: (market input or None for the preamble, decisions in that step).
struct Steps<'a> {
    records: std::iter::Peekable<journal::Records<'a>>,
    state: State,
    started: bool,
    decisions: u64,
    fills: u64,
}

impl<'a> Steps<'a> {
    fn new(journal: &'a Journal) -> Steps<'a> {
        Steps {
            records: journal.records(0).peekable(),
            state: State::default(),
            started: false,
            decisions: 0,
            fills: 0,
        }
    }

    /// Walks the remaining steps; returns how many there were.
    fn count_rest(&mut self) -> Result<u64, StoreError> {
        let mut steps = 0;
        while self.next_step().transpose()?.is_some() {
            steps += 1;
        }
        Ok(steps)
    }

    fn next_step(&mut self) -> Option<Result<Step, StoreError>> {
        let mut head = None;
        if self.started {
            match self.records.next()? {
                Ok(env) => {
                    self.state.apply(&env);
                    head = Some(env);
                }
                Err(e) => return Some(Err(e)),
            }
        } else {
            self.started = true;
        }
        let mut decisions = Vec::new();
        while let Some(peek) = self.records.peek() {
            match peek {
                Ok(env) if is_market(&env.event) => break,
                Ok(_) => {
                    let env = self.records.next()?.ok()?;
                    self.state.apply(&env);
                    if matches!(env.event, Event::OrderFilled(_)) {
                        self.fills += 1;
                    }
                    if !env.event.is_input() {
                        self.decisions += 1;
                        decisions.push(env);
                    }
                }
                Err(_) => return self.records.next().map(|r| r.map(|_| (None, Vec::new()))),
            }
        }
        Some(Ok((head, decisions)))
    }
}

/// Compares two journals.
///
/// # Errors
/// Either journal cannot be read or is corrupt.
pub fn diff(a_dir: &Path, b_dir: &Path) -> Result<DiffReport, StoreError> {
    let a = Journal::open(a_dir, Durability::None)?;
    // sled locks a directory per process: the same journal twice is opened once.
    let same_dir = match (std::fs::canonicalize(a_dir), std::fs::canonicalize(b_dir)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    let b_opened = if same_dir { None } else { Some(Journal::open(b_dir, Durability::None)?) };
    let b = b_opened.as_ref().unwrap_or(&a);
    let (mut sa, mut sb) = (Steps::new(&a), Steps::new(b));
    let mut report_steps = 0u64;
    let mut differing_steps = 0u64;
    let mut differing_decisions = 0u64;
    let mut first = None;
    let mut inputs_differ_at_step = None;
    let (mut steps_only_in_a, mut steps_only_in_b) = (0u64, 0u64);
    loop {
        let (na, nb) = (sa.next_step().transpose()?, sb.next_step().transpose()?);
        let ((ia, da), (ib, db)) = match (na, nb) {
            (Some(a), Some(b)) => (a, b),
            // One journal ended: the other's steps from here on are its own.
            (Some(_), None) => {
                steps_only_in_a = 1 + sa.count_rest()?;
                break;
            }
            (None, Some(_)) => {
                steps_only_in_b = 1 + sb.count_rest()?;
                break;
            }
            (None, None) => break,
        };
        let step = report_steps;
        report_steps += 1;
        let input_bytes =
            |e: &Option<Envelope>| e.as_ref().map(|e| journal::codec::encode_body(e.time_ms, &e.trader, &e.event));
        if input_bytes(&ia) != input_bytes(&ib) {
            inputs_differ_at_step = Some(step);
            break;
        }
        // Canonical bytes, not PartialEq: a recorded NaN equals itself.
        let key = |e: &Envelope| journal::codec::encode_body(e.time_ms, &e.trader, &e.event);
        let (ka, kb): (Vec<_>, Vec<_>) = (da.iter().map(key).collect(), db.iter().map(key).collect());
        if ka != kb {
            differing_steps += 1;
            let common = ka.iter().zip(&kb).take_while(|(x, y)| x == y).count();
            // Each decision, of either run, without its equal at the same place in the other.
            let unmatched =
                |x: &[Vec<u8>], y: &[Vec<u8>]| x.iter().enumerate().filter(|(i, k)| y.get(*i) != Some(k)).count();
            differing_decisions += (unmatched(&ka, &kb) + unmatched(&kb, &ka)) as u64;
            if first.is_none() {
                let json = |e: Option<&Envelope>| e.map(|e| serde_json::to_value(e).unwrap_or_default());
                first = Some(FirstDifference {
                    step,
                    input: ia.as_ref().map(|e| serde_json::to_value(e).unwrap_or_default()).unwrap_or_default(),
                    a: json(da.get(common)),
                    b: json(db.get(common)),
                });
            }
        }
    }
    // Drain the rest so the totals cover whole journals.
    while sa.next_step().transpose()?.is_some() {}
    while sb.next_step().transpose()?.is_some() {}
    let side = |dir: &Path, j: &Journal, s: &Steps<'_>| RunSide {
        journal: dir.display().to_string(),
        events: j.len(),
        decisions: s.decisions,
        fills: s.fills,
        traders: s
            .state
            .traders
            .iter()
            .map(|(name, t)| {
                let equity = s.state.account(name).map_or(Decimal::ZERO, |v| v.equity);
                let capital = t.start.as_ref().map_or(Decimal::ZERO, |st| st.capital_quote);
                TraderPnl { trader: name.clone(), equity, pnl: equity - capital }
            })
            .collect(),
    };
    let identical =
        inputs_differ_at_step.is_none() && differing_steps == 0 && steps_only_in_a == 0 && steps_only_in_b == 0;
    Ok(DiffReport {
        a: side(a_dir, &a, &sa),
        b: side(b_dir, b, &sb),
        steps: report_steps,
        differing_steps,
        differing_decisions,
        first,
        inputs_differ_at_step,
        steps_only_in_a,
        steps_only_in_b,
        identical,
    })
}

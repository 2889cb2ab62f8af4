//! The seeded whole-engine simulation (after TigerBeetle's VOPR).
//!
//! One seed drives everything: a random market of two symbols, two traders running
//! a JavaScript strategy that places, cancels and closes orders at random (its
//! `Math.random` seeded from the journal), and a venue that behaves like a real
//! exchange over a bad connection: its own order book and fills, answers that
//! arrive late, out of order, twice or never, refused duplicate client ids,
//! partial fills. Now and then the process "crashes": the engine is dropped
//! along with everything in flight to it, the journal is reopened and resumed
//! (`replay::resume`: state and deciders re-derived), unanswered orders are
//! handed to the venue again and the venue's state is reconciled, as a live
//! driver does after a restart.
//!
//! After every step an auditor checks:
//! - the ledger against an independent model (journal's testkit `Auditor`): cash,
//!   fees, positions, and no fill id applied twice;
//! - write-ahead: every effect that reached the venue was already durable in the
//!   journal, as the decision it carries out;
//! - after a crash: the resumed state's digest equals the state before the crash.
//!
//! At the end, once the venue has delivered and reconciled everything: every
//! venue fill is in the ledger exactly once, positions equal the venue's, no
//! decision became two venue orders and every venue order is a journaled
//! decision, and `replay verify` reproduces the whole journal to the same digest.
//!
//! `cargo test -p replay --test vopr` runs a few seeds; `-- --seeds N` runs N,
//! `-- --seed S` one (a failure prints its seed), `--bars N` changes the length;
//! `VOPR_ANOMALIES=1` lists what the fold noted as odd (here: the duplicates and
//! late acks the venue sends on purpose; a live adapter de-duplicates before
//! journaling, the fold is the safety net).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::ExitCode,
    time::Instant,
};

use engine::{Effect, Engine, Input, Venue};
use journal::{
    event::{Cloid, Fill, Instrument, Kline, Liquidity, OrderIntent, OrderKind, RejectReason, Side, TraderStart},
    testkit::Auditor,
    Durability, Event, State,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use strategies::{runtime::StrategySpec, sink::JournalSink};

const SYMBOLS: [&str; 2] = ["AAAUSDT", "BBBUSDT"];
const TRADERS: [&str; 2] = ["alpha", "beta"];
const START_MS: i64 = 1_700_000_000_000;
const INTERVAL_MS: i64 = 60_000;
const DEFAULT_SEEDS: u64 = 12;
const DEFAULT_BARS: usize = 100;

const STRATEGY: &str = r#"
var params = {};
function st_init(ctx) { return { symbols: ["AAAUSDT", "BBBUSDT"], warmup: 0 }; }
function qty() { return Math.round((0.001 + Math.random() * 0.05) * 1000) / 1000; }
function st_heartbeat(ctx, tick) {
  const r = Math.random();
  const side = Math.random() < 0.5 ? "buy" : "sell";
  if (r < 0.3) {
    ctx.api.placeOrder({ symbol: tick.symbol, side: side, type: "market", qty: qty() });
  } else if (r < 0.6) {
    const off = Math.random() * 0.02 - 0.005;
    const price = Math.round(tick.close * (side === "buy" ? 1 - off : 1 + off) * 100) / 100;
    ctx.api.placeOrder({ symbol: tick.symbol, side: side, type: "limit", qty: qty(), price: price });
  } else if (r < 0.72) {
    const open = ctx.api.getOpenOrders();
    if (open.length > 0) ctx.api.cancelOrder(open[Math.floor(Math.random() * open.length)].cloid);
  } else if (r < 0.8) {
    const held = ctx.api.getPositions().filter(function (p) { return p.symbol === tick.symbol; });
    if (held.length > 0) {
      const p = held[0];
      ctx.api.placeOrder({ symbol: p.symbol, side: p.side === "long" ? "sell" : "buy", type: "market",
                           qty: p.qty, reduceOnly: true });
    }
  }
  ctx.state.set("bars", ctx.state.get("bars", 0) + 1);
}
function st_on_fill(ctx, fill) { ctx.state.set("fills", ctx.state.get("fills", 0) + 1); }
"#;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut first, mut seeds, mut bars) = (0u64, DEFAULT_SEEDS, DEFAULT_BARS);
    while let Some(arg) = args.next() {
        let mut value =
            |name: &str| args.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or_else(|| panic!("{name} N"));
        match arg.as_str() {
            "--seeds" => seeds = value("--seeds"),
            "--seed" => (first, seeds) = (value("--seed"), 1),
            "--first-seed" => first = value("--first-seed"),
            "--bars" => bars = value("--bars") as usize,
            _ => {} // cargo test's own flags (--quiet, filters) mean nothing here
        }
    }
    let started = Instant::now();
    let mut totals = Totals::default();
    for seed in first..first + seeds {
        match run(seed, bars) {
            Ok(t) => totals.add(&t),
            Err(e) => {
                eprintln!("vopr: seed {seed} failed: {e}");
                eprintln!("vopr: rerun it with: cargo test -p replay --test vopr -- --seed {seed} --bars {bars}");
                println!("vopr: {} passed, 1 failed", seed - first);
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!(
        "vopr: seeds {first}..{} ({bars} bars each) in {:.1} s: {} steps, {} crashes, {} orders at the venue, \
         {} fills, {} requests lost, {} answers dropped, {} duplicated, {} duplicate submissions refused",
        first + seeds,
        started.elapsed().as_secs_f64(),
        totals.steps,
        totals.crashes,
        totals.orders,
        totals.fills,
        totals.lost,
        totals.dropped,
        totals.duplicated,
        totals.refused
    );
    println!("vopr: {seeds} passed, 0 failed");
    ExitCode::SUCCESS
}

#[derive(Debug, Default)]
struct Totals {
    steps: u64,
    crashes: u64,
    orders: u64,
    fills: u64,
    dropped: u64,
    duplicated: u64,
    refused: u64,
    lost: u64,
}

impl Totals {
    fn add(&mut self, t: &Totals) {
        self.steps += t.steps;
        self.crashes += t.crashes;
        self.orders += t.orders;
        self.fills += t.fills;
        self.dropped += t.dropped;
        self.duplicated += t.duplicated;
        self.refused += t.refused;
        self.lost += t.lost;
    }
}

/// One seed's world.
fn run(seed: u64, bars: usize) -> Result<Totals, String> {
    let tmp = tempfile::tempdir().map_err(|e| e.to_string())?;
    let dir = tmp.path().join("journal");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut venue = Chaos::new(seed);
    let mut engine = Engine::new(JournalSink::open(&dir, Durability::None).map_err(|e| e.to_string())?);
    let mut audit = Audit::default();
    let mut totals = Totals::default();

    // Set-up, as a driver does it: instruments, traders, strategies.
    for symbol in SYMBOLS {
        engine.step(START_MS, "", &Event::InstrumentDefined(instrument(symbol)), &mut venue).map_err(e)?;
    }
    for (n, trader) in TRADERS.iter().enumerate() {
        let start = TraderStart {
            exchange: "chaos".into(),
            account: "vopr".into(),
            currency: "USDT".into(),
            allocation_pct: Decimal::new(50, 0),
            capital_quote: Decimal::new(100_000, 0),
            leverage: Decimal::new(5, 0),
        };
        engine.step(START_MS, trader, &Event::TraderStarted(start), &mut venue).map_err(e)?;
        let spec =
            StrategySpec::new(trader, "vopr.js", STRATEGY.to_owned(), serde_json::json!({}), seed * 7 + n as u64);
        engine.load(spec, START_MS, &mut venue).map_err(e)?;
    }
    audit.after_step(&mut engine, &mut venue)?;

    let mut prices = [Decimal::new(10_000, 2), Decimal::new(5_000, 2)];
    for bar in 0..bars {
        let open_ms = START_MS + bar as i64 * INTERVAL_MS;
        let close_ms = open_ms + INTERVAL_MS;
        venue.tick(close_ms);
        for (i, symbol) in SYMBOLS.iter().enumerate() {
            let kline = next_bar(&mut rng, symbol, open_ms, &mut prices[i]);
            venue.on_bar(&kline);
            // What the venue has for us by now (fills of this bar among them, maybe).
            engine.settle(&mut venue).map_err(e)?;
            audit.after_step(&mut engine, &mut venue)?;
            engine.step(close_ms, "", &Event::KlineReceived(kline), &mut venue).map_err(e)?;
            totals.steps += 1;
            audit.after_step(&mut engine, &mut venue)?;
        }
        engine.settle(&mut venue).map_err(e)?;
        audit.after_step(&mut engine, &mut venue)?;
        if rng.random_bool(0.03) {
            engine = crash_and_resume(engine, &dir, &mut venue, &mut audit)?;
            totals.crashes += 1;
        }
    }

    // The end: everything in flight arrives, then a last reconciliation catches what was lost.
    let mut t = START_MS + bars as i64 * INTERVAL_MS;
    while venue.in_flight() > 0 {
        t += 1;
        venue.tick(t);
        engine.settle(&mut venue).map_err(e)?;
        audit.after_step(&mut engine, &mut venue)?;
    }
    // What was lost on the way is sent again (same client ids), as after a restart, until
    // the venue has answered everything (a resend can be lost too).
    for _round in 0..20 {
        reconcile(&mut engine, &mut venue, &mut audit)?;
        engine.recover(&mut venue).map_err(e)?;
        audit.after_step(&mut engine, &mut venue)?;
        while venue.in_flight() > 0 {
            t += 1;
            venue.tick(t);
            engine.settle(&mut venue).map_err(e)?;
            audit.after_step(&mut engine, &mut venue)?;
        }
        if engine.state().traders.values().all(|t| t.unanswered_orders().is_empty()) {
            break;
        }
    }
    reconcile(&mut engine, &mut venue, &mut audit)?;
    while venue.in_flight() > 0 {
        t += 1;
        venue.tick(t);
        engine.settle(&mut venue).map_err(e)?;
        audit.after_step(&mut engine, &mut venue)?;
    }
    if std::env::var_os("VOPR_ANOMALIES").is_some() {
        for a in &engine.state().anomalies {
            eprintln!("anomaly: {a:?}");
        }
    }
    final_checks(&engine, &venue)?;
    let digest = engine.state().digest();
    drop(engine);
    let report = replay::verify::verify(&dir, &[]).map_err(|e| format!("replay verify: {e}"))?;
    if !report.reproduced {
        return Err(format!("replay verify does not reproduce the journal: {:?}", report.divergence));
    }
    if report.state_digest != digest {
        return Err(format!("replay verify folds to {}, the run ended at {digest}", report.state_digest));
    }
    totals.orders = venue.book.len() as u64;
    totals.fills = venue.fills.len() as u64;
    (totals.dropped, totals.duplicated, totals.refused, totals.lost) =
        (venue.dropped, venue.duplicated, venue.refused, venue.lost);
    Ok(totals)
}

fn e(err: impl std::fmt::Display) -> String {
    err.to_string()
}

/// Drops the engine with whatever was in flight to it, resumes the journal, and checks
/// that the resumed state is the state before the crash; then recovers as a driver does.
fn crash_and_resume(
    engine: Engine<JournalSink>,
    dir: &Path,
    venue: &mut Chaos,
    audit: &mut Audit,
) -> Result<Engine<JournalSink>, String> {
    let before = engine.state().digest();
    let seq = engine.state().last_seq;
    drop(engine);
    venue.lose_in_flight();
    let resumed = replay::resume::resume(dir, Durability::None).map_err(|e| format!("resume: {e}"))?;
    let mut engine = resumed.engine;
    if engine.state().digest() != before {
        return Err(format!(
            "after the crash at seq {seq:?} the resumed state's digest is {}, before it was {before}",
            engine.state().digest()
        ));
    }
    if resumed.appended != 0 {
        return Err(format!("a crash between steps left {} decisions to append", resumed.appended));
    }
    engine.recover(venue).map_err(e)?;
    audit.after_step(&mut engine, venue)?;
    reconcile(&mut engine, venue, audit)?;
    Ok(engine)
}

/// The venue's state, journaled as inputs (what a live driver fetches by REST after a restart).
fn reconcile(engine: &mut Engine<JournalSink>, venue: &mut Chaos, audit: &mut Audit) -> Result<(), String> {
    for input in venue.reconcile(engine.state()) {
        engine.step(input.time_ms, &input.trader, &input.event, venue).map_err(e)?;
        audit.after_step(engine, venue)?;
    }
    Ok(())
}

fn final_checks(engine: &Engine<JournalSink>, venue: &Chaos) -> Result<(), String> {
    let state = engine.state();
    let journal = &engine.sink().journal;
    let mut submitted: BTreeMap<Cloid, u32> = BTreeMap::new();
    let mut journaled_fills: BTreeSet<String> = BTreeSet::new();
    for record in journal.records(0) {
        let record = record.map_err(e)?;
        match &record.event {
            Event::OrderSubmitted(intent) => *submitted.entry(intent.cloid).or_default() += 1,
            Event::OrderFilled(fill) => {
                journaled_fills.insert(fill.fill_id.clone());
            }
            _ => {}
        }
    }
    if let Some((cloid, n)) = submitted.iter().find(|(_, n)| **n > 1) {
        return Err(format!("order {cloid} was decided {n} times"));
    }
    for (cloid, order) in &venue.book {
        if !submitted.contains_key(cloid) {
            return Err(format!("the venue holds order {cloid} of {}, which the journal never decided", order.trader));
        }
    }
    for (trader, fill) in &venue.fills {
        if !journaled_fills.contains(&fill.fill_id) {
            return Err(format!("venue fill {} of {trader} is not in the journal", fill.fill_id));
        }
    }
    for trader in TRADERS {
        let t = state.traders.get(trader).ok_or_else(|| format!("trader {trader} missing"))?;
        let fills = venue.fills.iter().filter(|(who, _)| who == trader).count() as u64;
        if t.stats.fills != fills {
            return Err(format!("{trader}: the ledger applied {} fills, the venue made {fills}", t.stats.fills));
        }
        for symbol in SYMBOLS {
            let ledger = t.positions.get(symbol).map_or(Decimal::ZERO, |p| p.qty);
            let truth = venue.position(trader, symbol);
            if ledger != truth {
                return Err(format!("{trader} {symbol}: the ledger holds {ledger}, the venue {truth}"));
            }
        }
        if let Some(order) = t.orders.values().find(|o| o.status == journal::state::OrderStatus::Submitted) {
            let at_venue = venue.book.get(&order.intent.cloid).map(|o| (o.status, o.filled));
            return Err(format!(
                "{trader}: order {} is still unanswered after reconciliation (the venue: {at_venue:?}; {order:?})",
                order.intent.cloid
            ));
        }
    }
    Ok(())
}

/// The checks after every step.
#[derive(Default)]
struct Audit {
    model: Auditor,
    /// Records observed so far.
    seen: u64,
}

impl Audit {
    fn after_step(&mut self, engine: &mut Engine<JournalSink>, venue: &mut Chaos) -> Result<(), String> {
        let journal = &engine.sink().journal;
        // Write-ahead: what reached the venue in this step was durable, as its decision.
        let durable = journal.durable_through();
        for (seq, cloid) in venue.received.drain(..) {
            if durable.is_none_or(|d| d < seq) {
                return Err(format!("order {cloid} reached the venue before seq {seq} was durable ({durable:?})"));
            }
            let record = journal.get(seq).map_err(e)?.ok_or_else(|| format!("seq {seq} is not in the journal"))?;
            let decided = match &record.event {
                Event::OrderSubmitted(intent) => intent.cloid == cloid,
                Event::OrderCancelRequested { cloid: c } => *c == cloid,
                _ => false,
            };
            if !decided {
                return Err(format!(
                    "seq {seq} is {}, not the decision about {cloid} the venue got",
                    record.event.kind()
                ));
            }
        }
        for record in journal.records(self.seen) {
            let record = record.map_err(e)?;
            self.model.observe(&record);
            self.seen = record.seq + 1;
        }
        self.model.check(engine.state()).map_err(|m| format!("after seq {}: {m}", self.seen.saturating_sub(1)))
    }
}

fn instrument(symbol: &str) -> Instrument {
    Instrument {
        symbol: symbol.into(),
        tick_size: Decimal::new(1, 2),
        qty_step: Decimal::new(1, 3),
        min_qty: Decimal::new(1, 3),
        max_leverage: Decimal::new(10, 0),
        maintenance_margin_rate: Decimal::new(5, 3),
        taker_fee_rate: Decimal::new(6, 4),
        maker_fee_rate: Decimal::new(2, 4),
    }
}

/// A random bar around a random walk (2 decimal places, high ≥ open, close ≥ low).
fn next_bar(rng: &mut ChaCha8Rng, symbol: &str, open_time_ms: i64, price: &mut Decimal) -> Kline {
    let open = *price;
    let step = |rng: &mut ChaCha8Rng, scale: i64| Decimal::new(rng.random_range(-scale..=scale), 4);
    let close = (open * (Decimal::ONE + step(rng, 100))).round_dp(2).max(Decimal::ONE);
    let wick = |rng: &mut ChaCha8Rng| (open * Decimal::new(rng.random_range(0..=60), 4)).round_dp(2);
    let high = open.max(close) + wick(rng);
    let low = (open.min(close) - wick(rng)).max(Decimal::new(1, 2));
    *price = close;
    Kline {
        symbol: symbol.into(),
        interval_ms: INTERVAL_MS,
        open_time_ms,
        open,
        high,
        low,
        close,
        volume: Decimal::new(rng.random_range(1..10_000), 2),
        closed: true,
    }
}

/// A venue with its own book over a connection that delays, reorders, duplicates and drops.
struct Chaos {
    rng: ChaCha8Rng,
    book: BTreeMap<Cloid, VenueOrder>,
    /// Every fill the venue made, in order: the ground truth.
    fills: Vec<(String, Fill)>,
    /// Answers on their way: (tick due, input).
    queue: Vec<(u64, Input)>,
    tick: u64,
    time_ms: i64,
    /// Effects received since the auditor last looked: (decision seq, cloid).
    received: Vec<(u64, Cloid)>,
    /// Priority of resting orders: acceptance order.
    next_priority: u64,
    dropped: u64,
    duplicated: u64,
    refused: u64,
    /// Requests lost before they reached the book.
    lost: u64,
    /// Orders cancelled before their request arrived: a late resend is refused.
    never_placed: BTreeSet<Cloid>,
}

#[derive(Debug)]
struct VenueOrder {
    trader: String,
    intent: OrderIntent,
    status: VenueStatus,
    filled: Decimal,
    priority: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VenueStatus {
    Open,
    Filled,
    Cancelled,
    Rejected,
}

impl Chaos {
    fn new(seed: u64) -> Chaos {
        Chaos {
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_c4a0_5000),
            book: BTreeMap::new(),
            fills: Vec::new(),
            queue: Vec::new(),
            tick: 0,
            time_ms: START_MS,
            received: Vec::new(),
            next_priority: 0,
            dropped: 0,
            duplicated: 0,
            refused: 0,
            lost: 0,
            never_placed: BTreeSet::new(),
        }
    }

    fn tick(&mut self, time_ms: i64) {
        self.tick += 1;
        self.time_ms = time_ms;
    }

    fn in_flight(&self) -> usize {
        self.queue.len()
    }

    /// The process died: nothing in flight to it arrives.
    fn lose_in_flight(&mut self) {
        self.queue.clear();
    }

    /// Sends an answer over the bad connection: maybe dropped, maybe twice, each late.
    fn deliver(&mut self, trader: &str, event: Event) {
        if self.rng.random_bool(0.06) {
            self.dropped += 1;
            return;
        }
        let copies = if self.rng.random_bool(0.12) { 2 } else { 1 };
        self.duplicated += copies - 1;
        for _ in 0..copies {
            let due = self.tick + self.rng.random_range(0..=3);
            self.queue.push((due, Input::new(self.time_ms, trader, event.clone())));
        }
    }

    fn position(&self, trader: &str, symbol: &str) -> Decimal {
        self.fills
            .iter()
            .filter(|(who, f)| who == trader && f.symbol == symbol)
            .map(|(_, f)| f.side.sign() * f.qty)
            .sum()
    }

    /// Fills of resting orders against a closed bar, in priority order.
    fn on_bar(&mut self, bar: &Kline) {
        let mut resting: Vec<(u64, Cloid)> = self
            .book
            .iter()
            .filter(|(_, o)| o.status == VenueStatus::Open && o.intent.symbol == bar.symbol)
            .map(|(cloid, o)| (o.priority, *cloid))
            .collect();
        resting.sort();
        for (_, cloid) in resting {
            let order = &self.book[&cloid];
            let (side, kind, limit) = (order.intent.side, order.intent.kind, order.intent.price);
            let price = match (kind, limit) {
                (OrderKind::Market, _) => bar.open,
                (OrderKind::Limit, Some(p)) if side == Side::Buy && bar.low < p => p.min(bar.open),
                (OrderKind::Limit, Some(p)) if side == Side::Sell && bar.high > p => p.max(bar.open),
                _ => continue,
            };
            let trader = order.trader.clone();
            let mut qty = order.intent.qty - order.filled;
            let mut clipped = false;
            if order.intent.reduce_only {
                let held = self.position(&trader, &bar.symbol);
                let closable = if side == Side::Buy { (-held).max(Decimal::ZERO) } else { held.max(Decimal::ZERO) };
                if closable.is_zero() {
                    self.finish(cloid, VenueStatus::Cancelled);
                    let event = Event::OrderCancelled { cloid, reason: "reduce-only: nothing to reduce".into() };
                    self.deliver(&trader, event);
                    continue;
                }
                clipped = closable < qty;
                qty = qty.min(closable);
            }
            // Now and then only half fills, and the rest waits for a later bar.
            if !clipped && kind == OrderKind::Limit && qty > Decimal::new(2, 3) && self.rng.random_bool(0.3) {
                qty = (qty / Decimal::TWO).round_dp_with_strategy(3, rust_decimal::RoundingStrategy::ToZero);
            }
            let (fee_rate, liquidity) = match kind {
                OrderKind::Limit if price == limit.unwrap_or_default() => (Decimal::new(2, 4), Liquidity::Maker),
                _ => (Decimal::new(6, 4), Liquidity::Taker),
            };
            let fill = Fill {
                cloid,
                fill_id: format!("v{}", self.fills.len()),
                symbol: bar.symbol.clone(),
                side,
                qty,
                price,
                fee_quote: (qty * price * fee_rate).round_dp(8),
                liquidity,
            };
            self.fills.push((trader.clone(), fill.clone()));
            let order = self.book.get_mut(&cloid).expect("in the book");
            order.filled += qty;
            let complete = order.filled >= order.intent.qty;
            self.deliver(&trader, Event::OrderFilled(fill));
            if clipped {
                self.finish(cloid, VenueStatus::Cancelled);
                let event = Event::OrderCancelled { cloid, reason: "reduce-only: clipped to the position".into() };
                self.deliver(&trader, event);
            } else if complete {
                self.finish(cloid, VenueStatus::Filled);
            }
        }
    }

    fn finish(&mut self, cloid: Cloid, status: VenueStatus) {
        if let Some(order) = self.book.get_mut(&cloid) {
            order.status = status;
        }
    }

    /// The venue's view of every order the ledger still holds, and every fill it made.
    fn reconcile(&mut self, state: &State) -> Vec<Input> {
        let mut out: Vec<Input> = self
            .fills
            .iter()
            .map(|(trader, f)| Input::new(self.time_ms, trader.clone(), Event::OrderFilled(f.clone())))
            .collect();
        for (name, trader) in &state.traders {
            for (cloid, order) in &trader.orders {
                if self.never_placed.contains(cloid) {
                    out.push(Input::new(
                        self.time_ms,
                        name.clone(),
                        Event::OrderCancelled { cloid: *cloid, reason: "never placed".into() },
                    ));
                    continue;
                }
                let Some(truth) = self.book.get(cloid) else { continue };
                let event = match truth.status {
                    VenueStatus::Open if order.status == journal::state::OrderStatus::Submitted => {
                        Event::OrderAccepted { cloid: *cloid, exchange_order_id: format!("v-{cloid}") }
                    }
                    VenueStatus::Cancelled => Event::OrderCancelled { cloid: *cloid, reason: "reconciled".into() },
                    VenueStatus::Rejected => Event::OrderRejected {
                        cloid: *cloid,
                        reason: RejectReason::Exchange { code: 10001, message: "reconciled".into() },
                    },
                    _ => continue,
                };
                out.push(Input::new(self.time_ms, name.clone(), event));
            }
        }
        out
    }
}

impl Venue for Chaos {
    fn send(&mut self, effect: &Effect, _state: &State) {
        match effect {
            Effect::Submit { seq, trader, intent } => {
                self.received.push((*seq, intent.cloid));
                if self.rng.random_bool(0.03) {
                    // The request is lost on the way: only a resend after a restart places it.
                    self.lost += 1;
                    return;
                }
                if self.never_placed.contains(&intent.cloid) {
                    self.refused += 1;
                    let event = Event::OrderCancelled { cloid: intent.cloid, reason: "never placed".into() };
                    self.deliver(trader, event);
                    return;
                }
                if let Some(order) = self.book.get(&intent.cloid) {
                    // Bybit's 110072: the client id exists. The answer is the order's state.
                    self.refused += 1;
                    let cloid = intent.cloid;
                    let answer = match order.status {
                        VenueStatus::Open => Event::OrderAccepted { cloid, exchange_order_id: format!("v-{cloid}") },
                        VenueStatus::Cancelled => {
                            Event::OrderCancelled { cloid, reason: "duplicate: cancelled".into() }
                        }
                        VenueStatus::Rejected | VenueStatus::Filled => return,
                    };
                    let trader = order.trader.clone();
                    self.deliver(&trader, answer);
                    return;
                }
                let status = if intent.kind == OrderKind::Stop { VenueStatus::Rejected } else { VenueStatus::Open };
                let order = VenueOrder {
                    trader: trader.clone(),
                    intent: intent.clone(),
                    status,
                    filled: Decimal::ZERO,
                    priority: self.next_priority,
                };
                self.next_priority += 1;
                self.book.insert(intent.cloid, order);
                let cloid = intent.cloid;
                let answer = match status {
                    VenueStatus::Open => Event::OrderAccepted { cloid, exchange_order_id: format!("v-{cloid}") },
                    _ => Event::OrderRejected {
                        cloid,
                        reason: RejectReason::Exchange { code: 10001, message: "stop orders are not supported".into() },
                    },
                };
                self.deliver(trader, answer);
            }
            Effect::CallLlm { .. } => {}
            Effect::Cancel { seq, trader, cloid } => {
                self.received.push((*seq, *cloid));
                match self.book.get(cloid).map(|o| o.status) {
                    Some(VenueStatus::Open) => {
                        self.finish(*cloid, VenueStatus::Cancelled);
                        let event = Event::OrderCancelled { cloid: *cloid, reason: "cancelled on request".into() };
                        self.deliver(trader, event);
                    }
                    // Too late: it filled, or was cancelled already (and that answer is on its way).
                    Some(_) => {}
                    // The order never arrived (its request was lost, and requests do not land
                    // late here): cancelled before it was placed, for good.
                    None => {
                        self.never_placed.insert(*cloid);
                        let event = Event::OrderCancelled { cloid: *cloid, reason: "never placed".into() };
                        self.deliver(trader, event);
                    }
                }
            }
        }
    }

    fn poll(&mut self, _state: &State) -> Vec<Input> {
        let tick = self.tick;
        let (mut due, later): (Vec<_>, Vec<_>) = self.queue.drain(..).partition(|(at, _)| *at <= tick);
        self.queue = later;
        // Whatever is due arrives in any order.
        for i in (1..due.len()).rev() {
            let j = self.rng.random_range(0..=i);
            due.swap(i, j);
        }
        due.into_iter().map(|(_, input)| input).collect()
    }
}

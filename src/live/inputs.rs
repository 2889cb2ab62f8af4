//! What the venue reports, turned into journal inputs — once.
//!
//! Reports arrive twice (a WebSocket message repeated, the same execution over the
//! stream and over REST after a reconnect, a REST ack after the stream already told),
//! late, and out of order. Each conversion here looks at the ledger first and says
//! only what the ledger does not know yet: an ack for an order still waiting for one,
//! a cancel for an order still open, a fill whose execution id was never journaled.
//! [`Seen`] holds what the ledger forgets (execution ids of long-closed orders, the
//! last bar of each feed), rebuilt from the journal at start.
//!
//! Each venue's reports are first put in the driver's terms ([`OrderReport`], [`Execution`];
//! the conversions are in `link.rs`), so this file, the reconciliation and the recovery
//! are the same for every venue.

use std::collections::{BTreeMap, BTreeSet};

use engine::Input;
use journal::{
    event::{Cloid, Fill, Liquidity, RejectReason, Side},
    state::orders::{Order, OrderStatus as Ledger},
    Event, Journal, State, StoreError,
};
use rust_decimal::Decimal;

/// Where an order stands at the venue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Working (resting, partly filled, a trigger waiting or fired).
    Open,
    Filled,
    /// Cancelled by anyone, for the reason the venue gives.
    Cancelled(String),
    /// Refused, for the reason the venue gives.
    Rejected(String),
    /// A state the driver does not act on.
    Other(String),
}

/// An order as a venue reports it (its stream or a lookup), in the driver's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderReport {
    /// The client id as the venue returned it (empty: an order placed without one).
    pub link: String,
    pub order_id: String,
    pub symbol: String,
    pub side: Side,
    pub qty: Decimal,
    /// None: a market order.
    pub price: Option<Decimal>,
    /// How much has filled.
    pub filled: Decimal,
    pub standing: Standing,
    /// When the venue last changed it (its clock).
    pub time_ms: i64,
}

impl OrderReport {
    /// The journal's client id, if the order has one of ours' shape.
    pub fn cloid(&self) -> Option<Cloid> {
        Cloid::parse(&self.link)
    }

    /// The key it is listed under: its client id, else the venue's id.
    pub fn key(&self) -> String {
        match self.cloid() {
            Some(cloid) => cloid.to_string(),
            None if self.link.is_empty() => self.order_id.clone(),
            None => self.link.clone(),
        }
    }
}

/// What an execution is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecKind {
    /// A fill of an order (a trade, an auto-deleveraging, a liquidation's fill).
    Trade,
    /// A funding settlement on the position at `rate` and `mark`.
    Funding { rate: Decimal, mark: Decimal },
}

/// An execution as a venue reports it, in the driver's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub kind: ExecKind,
    /// The venue's id of the execution, unique per account.
    pub exec_id: String,
    /// The order's client id as the venue returned it (may be empty).
    pub link: String,
    pub order_id: String,
    pub symbol: String,
    pub side: Side,
    pub qty: Decimal,
    pub price: Decimal,
    /// Paid (negative: a rebate), in the quote currency.
    pub fee: Decimal,
    pub is_maker: bool,
    pub time_ms: i64,
}

/// What was journaled that the ledger does not keep.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every execution id journaled (fills' ids, and funding executions by symbol and time).
    pub exec_ids: BTreeSet<String>,
    /// The open time of the last bar journaled per (symbol, interval).
    pub last_bar: BTreeMap<(String, i64), i64>,
    /// Orders at the venue the journal does not know (placed by hand), by orderLinkId or orderId:
    /// every reconciliation reports them.
    pub foreign_orders: BTreeSet<String>,
    /// When the first trader started: funding before it is not the traders'.
    pub started_ms: Option<i64>,
    /// The highest nonce reserved (`NoncesReserved`): a restart signs above it.
    pub nonces_through: Option<u64>,
}

impl Seen {
    /// Reads the whole journal once.
    ///
    /// # Errors
    /// A record cannot be read.
    pub fn from_journal(journal: &Journal) -> Result<Seen, StoreError> {
        let mut seen = Seen::default();
        for record in journal.records_unverified(0) {
            let record = record?;
            match &record.event {
                Event::OrderFilled(fill) => {
                    seen.exec_ids.insert(fill.fill_id.clone());
                }
                Event::NoncesReserved { through, .. } => {
                    seen.nonces_through = seen.nonces_through.max(Some(*through));
                }
                Event::FundingRateReceived { symbol, .. } => {
                    seen.exec_ids.insert(funding_id(symbol, record.time_ms));
                }
                Event::KlineReceived(k) => {
                    seen.bar(&k.symbol, k.interval_ms, k.open_time_ms);
                }
                Event::TraderStarted(_) => {
                    seen.started_ms.get_or_insert(record.time_ms);
                }
                _ => {}
            }
        }
        Ok(seen)
    }

    /// Notes a journaled bar; false if it is not newer than the last one of its feed.
    pub fn bar(&mut self, symbol: &str, interval_ms: i64, open_ms: i64) -> bool {
        let last = self.last_bar.entry((symbol.to_owned(), interval_ms)).or_insert(i64::MIN);
        if open_ms > *last {
            *last = open_ms;
            true
        } else {
            false
        }
    }
}

/// Funding executions carry no order: their journaled trace is the rate at its time.
fn funding_id(symbol: &str, time_ms: i64) -> String {
    format!("funding:{symbol}:{time_ms}")
}

/// The trader whose order `cloid` is, open or recently closed, with the open order.
pub fn owner<'s>(state: &'s State, cloid: &Cloid) -> Option<(&'s str, Option<&'s Order>)> {
    state.traders.iter().find_map(|(name, t)| match t.orders.get(cloid) {
        Some(order) => Some((name.as_str(), Some(order))),
        None => t.closed_orders.iter().any(|c| c.cloid == *cloid).then_some((name.as_str(), None)),
    })
}

/// The inputs an order report implies: an ack for an order still waiting for one, a
/// rejection, or the cancel of an order still open. Fills come from executions only.
pub fn order_report(state: &State, report: &OrderReport) -> Vec<Input> {
    let Some(cloid) = report.cloid() else { return Vec::new() };
    let Some((trader, Some(order))) = owner(state, &cloid) else { return Vec::new() };
    let time = report.time_ms;
    let waiting = order.status == Ledger::Submitted;
    let ack = || Input::new(time, trader, Event::OrderAccepted { cloid, exchange_order_id: report.order_id.clone() });
    match &report.standing {
        Standing::Open | Standing::Filled => {
            if waiting {
                vec![ack()]
            } else {
                Vec::new()
            }
        }
        Standing::Rejected(why) if waiting => {
            let reason = RejectReason::Exchange { code: 0, message: why.clone() };
            vec![Input::new(time, trader, Event::OrderRejected { cloid, reason })]
        }
        Standing::Rejected(why) | Standing::Cancelled(why) => {
            let cancel = Input::new(time, trader, Event::OrderCancelled { cloid, reason: why.clone() });
            if waiting {
                vec![ack(), cancel]
            } else {
                vec![cancel]
            }
        }
        Standing::Other(_) => Vec::new(),
    }
}

/// The inputs an execution implies, once per execution id: a fill of one of the
/// journal's orders, or funding on every trader's position. Executions of orders the
/// journal does not know are noted in [`Seen::foreign_orders`] and left alone.
pub fn execution(state: &State, seen: &mut Seen, e: &Execution) -> Vec<Input> {
    match e.kind {
        ExecKind::Funding { rate, mark } => {
            let id = funding_id(&e.symbol, e.time_ms);
            if !seen.exec_ids.insert(id) {
                return Vec::new();
            }
            let mut inputs =
                vec![Input::new(e.time_ms, "", Event::FundingRateReceived { symbol: e.symbol.clone(), rate })];
            // Each trader's share of the account's funding, from its own position.
            inputs.extend(
                sim::funding(state, &e.symbol, rate, mark, e.time_ms)
                    .into_iter()
                    .map(|(trader, time, event)| Input::new(time, trader, event)),
            );
            inputs
        }
        ExecKind::Trade => {
            let known = Cloid::parse(&e.link).and_then(|c| owner(state, &c).map(|(t, _)| (c, t.to_owned())));
            let Some((cloid, trader)) = known else {
                if seen.exec_ids.insert(e.exec_id.clone()) {
                    let id = if e.link.is_empty() { &e.order_id } else { &e.link };
                    seen.foreign_orders.insert(id.clone());
                    tracing::warn!(order = %id, exec = %e.exec_id, "an execution of an order the journal does not know: left alone");
                }
                return Vec::new();
            };
            if !seen.exec_ids.insert(e.exec_id.clone()) {
                return Vec::new();
            }
            let fill = Fill {
                cloid,
                fill_id: e.exec_id.clone(),
                symbol: e.symbol.clone(),
                side: e.side,
                qty: e.qty,
                price: e.price,
                fee_quote: e.fee,
                liquidity: if e.is_maker { Liquidity::Maker } else { Liquidity::Taker },
            };
            vec![Input::new(e.time_ms, trader, Event::OrderFilled(fill))]
        }
    }
}

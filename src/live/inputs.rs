//! What the venue reports, turned into journal inputs — once.
//!
//! Reports arrive twice (a WebSocket message repeated, the same execution over the
//! stream and over REST after a reconnect, a REST ack after the stream already told),
//! late, and out of order. Each conversion here looks at the ledger first and says
//! only what the ledger does not know yet: an ack for an order still waiting for one,
//! a cancel for an order still open, a fill whose execution id was never journaled.
//! [`Seen`] holds what the ledger forgets (execution ids of long-closed orders, the
//! last bar of each feed), rebuilt from the journal at start.

use std::collections::{BTreeMap, BTreeSet};

use bybit::{Execution, OrderReport, OrderStatus};
use engine::Input;
use journal::{
    event::{Cloid, Fill, Liquidity, RejectReason},
    state::orders::{Order, OrderStatus as Ledger},
    Event, Journal, State, StoreError,
};

/// What was journaled that the ledger does not keep.
#[derive(Debug, Default)]
pub struct Seen {
    /// Every execution id journaled (fills' ids, and funding executions by symbol and time).
    pub exec_ids: BTreeSet<String>,
    /// The open time of the last bar journaled per (symbol, interval).
    pub last_bar: BTreeMap<(String, i64), i64>,
    /// Orders at the venue the journal does not know (placed by hand), by orderLinkId or orderId.
    pub foreign_orders: BTreeSet<String>,
    /// When the first trader started: funding before it is not the traders'.
    pub started_ms: Option<i64>,
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
    let Some(cloid) = Cloid::parse(&report.order_link_id) else { return Vec::new() };
    let Some((trader, Some(order))) = owner(state, &cloid) else { return Vec::new() };
    let time = report.updated_ms.max(report.created_ms);
    let waiting = order.status == Ledger::Submitted;
    let ack = || Input::new(time, trader, Event::OrderAccepted { cloid, exchange_order_id: report.order_id.clone() });
    match &report.status {
        OrderStatus::New
        | OrderStatus::PartiallyFilled
        | OrderStatus::Untriggered
        | OrderStatus::Triggered
        | OrderStatus::Filled => {
            if waiting {
                vec![ack()]
            } else {
                Vec::new()
            }
        }
        OrderStatus::Rejected if waiting => {
            let reason = RejectReason::Exchange { code: 0, message: reason_text(report) };
            vec![Input::new(time, trader, Event::OrderRejected { cloid, reason })]
        }
        OrderStatus::Rejected | OrderStatus::Cancelled | OrderStatus::Deactivated => {
            let cancel = Input::new(time, trader, Event::OrderCancelled { cloid, reason: reason_text(report) });
            if waiting {
                vec![ack(), cancel]
            } else {
                vec![cancel]
            }
        }
        OrderStatus::Other(_) => Vec::new(),
    }
}

fn reason_text(report: &OrderReport) -> String {
    let parts: Vec<&str> = [report.cancel_type.as_str(), report.reject_reason.as_str()]
        .into_iter()
        .filter(|p| !p.is_empty() && *p != "UNKNOWN" && *p != "EC_NoError")
        .collect();
    if parts.is_empty() {
        format!("{:?} at the venue", report.status)
    } else {
        parts.join(", ")
    }
}

/// The inputs an execution implies, once per execution id: a fill of one of the
/// journal's orders, or funding on every trader's position. Executions of orders the
/// journal does not know are noted in [`Seen::foreign_orders`] and left alone.
pub fn execution(state: &State, seen: &mut Seen, e: &Execution) -> Vec<Input> {
    match e.exec_type.as_str() {
        "Funding" => {
            let id = funding_id(&e.symbol, e.time_ms);
            if !seen.exec_ids.insert(id) {
                return Vec::new();
            }
            let mark = e.mark_price.unwrap_or(e.price);
            let mut inputs = vec![Input::new(
                e.time_ms,
                "",
                Event::FundingRateReceived { symbol: e.symbol.clone(), rate: e.fee_rate },
            )];
            // Each trader's share of the account's funding, from its own position.
            inputs.extend(
                sim::funding(state, &e.symbol, e.fee_rate, mark, e.time_ms)
                    .into_iter()
                    .map(|(trader, time, event)| Input::new(time, trader, event)),
            );
            inputs
        }
        "Trade" | "AdlTrade" | "BustTrade" | "Delivery" | "Settle" => {
            let known = Cloid::parse(&e.order_link_id).and_then(|c| owner(state, &c).map(|(t, _)| (c, t.to_owned())));
            let Some((cloid, trader)) = known else {
                if seen.exec_ids.insert(e.exec_id.clone()) {
                    let id = if e.order_link_id.is_empty() { &e.order_id } else { &e.order_link_id };
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
        _ => Vec::new(),
    }
}

//! Order lifecycle: one transition table.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{
    event::{Cloid, OrderIntent},
    money::dec,
};

/// Where an order is in its life. Terminal orders leave `TraderState::orders` (for
/// `TraderState::closed_orders`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderStatus {
    /// Passed the checks and was journaled; not yet acknowledged by the exchange.
    Submitted,
    /// Acknowledged and resting.
    Open,
    PartiallyFilled,
    Filled,
    Cancelled,
    Rejected,
}

impl OrderStatus {
    pub fn is_terminal(self) -> bool {
        matches!(self, OrderStatus::Filled | OrderStatus::Cancelled | OrderStatus::Rejected)
    }
}

/// What happened to an order, as the transition table sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderUpdate {
    Accepted,
    Rejected,
    Cancelled,
    /// A fill; `complete` when the filled quantity reached the order's quantity.
    Filled {
        complete: bool,
    },
}

/// The only place order status changes. `Err` means the update makes no sense
/// for the status; the fold records it as an anomaly and leaves the status.
#[rustfmt::skip]
pub fn transition(status: OrderStatus, update: OrderUpdate) -> Result<OrderStatus, (OrderStatus, OrderUpdate)> {
    use OrderStatus as S;
    use OrderUpdate as U;
    let next = match (status, update) {
        (S::Submitted, U::Accepted) => S::Open,
        (S::Submitted, U::Rejected) => S::Rejected,
        // The acknowledgement can arrive after the first fill over separate streams.
        (S::PartiallyFilled, U::Accepted) => S::PartiallyFilled,
        // A fill can arrive before the acknowledgement: real world possibility.
        (S::Submitted | S::Open | S::PartiallyFilled, U::Filled { complete: false }) => S::PartiallyFilled,
        (S::Submitted | S::Open | S::PartiallyFilled, U::Filled { complete: true }) => S::Filled,
        (S::Submitted | S::Open | S::PartiallyFilled, U::Cancelled) => S::Cancelled,
        _ => return Err((status, update)),
    };
    Ok(next)
}

/// An order the trader has not seen the end of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub intent: OrderIntent,
    pub status: OrderStatus,
    #[serde(with = "dec")]
    pub filled_qty: Decimal,
    pub exchange_order_id: Option<String>,
    /// A decider asked to cancel it; the exchange has not answered yet.
    pub cancel_requested: bool,
    pub submitted_seq: u64,
    pub submitted_ms: i64,
    /// The ids of the fills applied to it, so a repeated one is never applied twice.
    pub fill_ids: BTreeSet<String>,
}

/// An order that left `TraderState::orders`, kept a while with the ids of its fills.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosedOrder {
    pub cloid: Cloid,
    pub fill_ids: BTreeSet<String>,
}

impl Order {
    pub fn remaining_qty(&self) -> Decimal {
        (self.intent.qty - self.filled_qty).max(Decimal::ZERO)
    }
}

#[cfg(test)]
mod tests {
    use super::{transition, OrderStatus as S, OrderUpdate as U};

    struct Case {
        from: S,
        update: U,
        expected: Option<S>,
    }

    #[test]
    fn transition_table() {
        let cases = [
            Case { from: S::Submitted, update: U::Accepted, expected: Some(S::Open) },
            Case { from: S::Submitted, update: U::Rejected, expected: Some(S::Rejected) },
            Case { from: S::Submitted, update: U::Filled { complete: true }, expected: Some(S::Filled) },
            Case { from: S::Open, update: U::Filled { complete: false }, expected: Some(S::PartiallyFilled) },
            Case { from: S::PartiallyFilled, update: U::Filled { complete: true }, expected: Some(S::Filled) },
            Case { from: S::PartiallyFilled, update: U::Accepted, expected: Some(S::PartiallyFilled) },
            Case { from: S::Open, update: U::Cancelled, expected: Some(S::Cancelled) },
            Case { from: S::Open, update: U::Accepted, expected: None },
            Case { from: S::Open, update: U::Rejected, expected: None },
            Case { from: S::Filled, update: U::Cancelled, expected: None },
            Case { from: S::Cancelled, update: U::Filled { complete: true }, expected: None },
            Case { from: S::Rejected, update: U::Accepted, expected: None },
        ];
        for case in cases {
            let got = transition(case.from, case.update).ok();
            assert_eq!(got, case.expected, "{:?} + {:?}", case.from, case.update);
        }
    }
}

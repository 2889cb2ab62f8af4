//! The simulated exchange behind the engine's venue port.
//!
//! Its book is the ledger: an order is at the sim once its `OrderSubmitted` is
//! folded, so [`SimVenue::send`](engine::Venue::send) has nothing to do, and
//! [`poll`](engine::Venue::poll) answers from the folded state. A paper-trading
//! process that crashes recovers the sim with the rest of its state.

use engine::{Effect, Input, Venue};
use journal::{event::Kline, Event, State};
use rust_decimal::Decimal;

use crate::{acknowledge, cancel, funding, on_bar_with, Memo, SimConfig};

/// The simulated exchange as a venue: its fill rules ([`SimConfig`]) and what it
/// remembers between bars to skip quiet ones.
#[derive(Debug, Default)]
pub struct SimVenue {
    pub config: SimConfig,
    memo: Memo,
}

impl SimVenue {
    pub fn new(config: SimConfig) -> SimVenue {
        SimVenue { config, memo: Memo::default() }
    }

    /// What happens to resting orders and positions during the closed `bar`: the
    /// inputs to step before the bar's own `KlineReceived` (see the crate docs).
    pub fn on_bar(&mut self, state: &State, bar: &Kline) -> Vec<(String, i64, Event)> {
        on_bar_with(&self.config, state, bar, &mut self.memo)
    }

    /// Funding of every open position in `symbol` at `time_ms` (see [`funding`]).
    pub fn funding(
        &self,
        state: &State,
        symbol: &str,
        rate: Decimal,
        mark: Decimal,
        time_ms: i64,
    ) -> Vec<(String, i64, Event)> {
        funding(state, symbol, rate, mark, time_ms)
    }
}

impl Venue for SimVenue {
    /// The sim lives and dies with the process, and with the journal's unflushed tail.
    fn needs_durable(&self) -> bool {
        false
    }

    /// Nothing to do: the order is in the ledger, which is the sim's book.
    fn send(&mut self, _effect: &Effect, _state: &State) {}

    /// Acknowledges every order not yet acknowledged and answers every cancel request,
    /// traders in name order and orders in time priority, stamped with the ledger's time.
    fn poll(&mut self, state: &State) -> Vec<Input> {
        let mut answers = Vec::new();
        for (name, trader) in &state.traders {
            for order in trader.unanswered_orders() {
                let answer = if order.cancel_requested {
                    cancel(state, name, &order.intent.cloid)
                } else {
                    Some(acknowledge(state, name, &order.intent))
                };
                if let Some(event) = answer {
                    answers.push(Input::new(state.time_ms, name.clone(), event));
                }
            }
        }
        answers
    }
}

//! Linear-perpetual positions: signed quantity, average entry, realized PnL.
//!
//! All arithmetic is checked: a journal with absurd numbers yields `None`, which
//! the fold records as an anomaly instead of panicking.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::{event::Side, money::dec};

/// Scale kept for average entry prices: divisions would otherwise run to 28 digits.
const ENTRY_SCALE: u32 = 12;

/// How much of an order on `side` would close part of a position of signed
/// `position_qty` (the rest opens or adds exposure and needs margin).
pub fn closable_qty(position_qty: Decimal, side: Side) -> Decimal {
    if (side == Side::Buy) == (position_qty < Decimal::ZERO) {
        position_qty.abs()
    } else {
        Decimal::ZERO
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Signed: positive long, negative short.
    #[serde(with = "dec")]
    pub qty: Decimal,
    /// Volume-weighted entry of the open quantity; zero when flat.
    #[serde(with = "dec")]
    pub entry_price: Decimal,
    #[serde(with = "dec")]
    pub realized_pnl: Decimal,
    #[serde(with = "dec")]
    pub fees_paid: Decimal,
    #[serde(with = "dec")]
    pub funding_net: Decimal,
}

impl Position {
    /// Applies a fill of signed quantity `delta` at `price`; returns the realized PnL.
    /// `None` on arithmetic overflow (the position is then unchanged).
    pub fn fill(&mut self, delta: Decimal, price: Decimal) -> Option<Decimal> {
        let old = self.qty;
        let new = old.checked_add(delta)?;
        let same_direction = old.is_zero() || old.is_sign_positive() == delta.is_sign_positive();
        let (realized, entry) = if same_direction {
            // Opening or adding: the entry becomes the weighted average.
            let cost = old.abs().checked_mul(self.entry_price)?.checked_add(delta.abs().checked_mul(price)?)?;
            (Decimal::ZERO, cost.checked_div(new.abs())?.round_dp(ENTRY_SCALE))
        } else {
            // Reducing, closing or flipping: realize on the closed part.
            let closed = delta.abs().min(old.abs());
            let per_unit = price.checked_sub(self.entry_price)?;
            let realized = closed.checked_mul(per_unit)?.checked_mul(if old.is_sign_negative() {
                Decimal::NEGATIVE_ONE
            } else {
                Decimal::ONE
            })?;
            let entry = if new.is_zero() {
                Decimal::ZERO
            } else if new.is_sign_positive() == old.is_sign_positive() {
                self.entry_price
            } else {
                price
            };
            (realized, entry)
        };
        self.realized_pnl = self.realized_pnl.checked_add(realized)?;
        self.qty = new;
        self.entry_price = entry;
        Some(realized)
    }

    /// PnL of the open quantity at `mark`.
    pub fn unrealized_pnl(&self, mark: Decimal) -> Decimal {
        mark.checked_sub(self.entry_price).and_then(|per_unit| self.qty.checked_mul(per_unit)).unwrap_or(Decimal::ZERO)
    }

    /// Initial margin held: entry notional over leverage.
    pub fn margin(&self, leverage: Decimal) -> Decimal {
        if leverage <= Decimal::ZERO {
            return Decimal::ZERO;
        }
        let notional = self.qty.abs().saturating_mul(self.entry_price);
        notional.checked_div(leverage).unwrap_or(notional).round_dp(ENTRY_SCALE)
    }

    /// The mark at which the position's margin falls to maintenance, treating it
    /// as isolated with `leverage` (long: entry·(1 − 1/lev + mmr); short: entry·(1 + 1/lev − mmr)).
    /// `None` when flat.
    pub fn liquidation_price(&self, leverage: Decimal, maintenance_margin_rate: Decimal) -> Option<Decimal> {
        if self.qty.is_zero() || leverage <= Decimal::ZERO {
            return None;
        }
        let cushion = Decimal::ONE.checked_div(leverage)?.checked_sub(maintenance_margin_rate)?;
        let factor = if self.qty.is_sign_positive() { Decimal::ONE - cushion } else { Decimal::ONE + cushion };
        Some(self.entry_price.checked_mul(factor)?.max(Decimal::ZERO).round_dp(ENTRY_SCALE))
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::Position;

    #[test]
    fn open_add_reduce_flip_close() {
        let mut p = Position::default();
        assert_eq!(p.fill(dec!(1), dec!(100)), Some(dec!(0)));
        assert_eq!(p.fill(dec!(1), dec!(110)), Some(dec!(0)));
        assert_eq!((p.qty, p.entry_price), (dec!(2), dec!(105)));
        // Sell 0.5 at 120: realize 0.5 * (120 - 105) = 7.5, entry unchanged.
        assert_eq!(p.fill(dec!(-0.5), dec!(120)), Some(dec!(7.5)));
        assert_eq!((p.qty, p.entry_price), (dec!(1.5), dec!(105)));
        // Sell 2.5 at 100: close 1.5 for -7.5, open a 1.0 short at 100.
        assert_eq!(p.fill(dec!(-2.5), dec!(100)), Some(dec!(-7.5)));
        assert_eq!((p.qty, p.entry_price), (dec!(-1), dec!(100)));
        // Buy back at 90: short gains 10.
        assert_eq!(p.fill(dec!(1), dec!(90)), Some(dec!(10)));
        assert_eq!((p.qty, p.entry_price, p.realized_pnl), (dec!(0), dec!(0), dec!(10)));
    }

    #[test]
    fn liquidation_price_long_and_short() {
        let long = Position { qty: dec!(1), entry_price: dec!(100), ..Position::default() };
        // 10x, 0.5% maintenance: 100 * (1 - 0.1 + 0.005) = 90.5
        assert_eq!(long.liquidation_price(dec!(10), dec!(0.005)), Some(dec!(90.5)));
        let short = Position { qty: dec!(-1), entry_price: dec!(100), ..Position::default() };
        assert_eq!(short.liquidation_price(dec!(10), dec!(0.005)), Some(dec!(109.5)));
        assert_eq!(Position::default().liquidation_price(dec!(10), dec!(0.005)), None);
    }

    #[test]
    fn overflow_is_none_and_leaves_the_position() {
        let mut p = Position { qty: dec!(1), entry_price: dec!(1), ..Position::default() };
        let huge = rust_decimal::Decimal::MAX;
        assert_eq!(p.fill(huge, huge), None);
        assert_eq!((p.qty, p.entry_price), (dec!(1), dec!(1)));
    }
}

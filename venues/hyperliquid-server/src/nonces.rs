//! Each signer's nonces, as the venue keeps them (VENUES.md §3.5): the 100 highest are
//! stored; a new one must be larger than the smallest of them (once there are 100), never used
//! before, and within `(T − 2 days, T + 1 day)` of the server's time `T`.
//!
//! A nonce is spent only by an action that passed the signature check: a refused signature
//! says nothing about who sent it.

use std::collections::{BTreeMap, BTreeSet};

use hyperliquid::Address;

/// How many nonces a signer keeps.
pub const KEPT: usize = 100;
/// How far behind the server's time a nonce may be (exclusive).
pub const BEHIND_MS: i64 = 2 * 86_400_000;
/// How far ahead (exclusive).
pub const AHEAD_MS: i64 = 86_400_000;

/// The nonce sets of every signer seen.
#[derive(Debug, Default)]
pub struct Nonces {
    signers: BTreeMap<Address, BTreeSet<u64>>,
}

impl Nonces {
    /// Spends `nonce` for `signer` at server time `now_ms`, or refuses it with the venue's text.
    ///
    /// # Errors
    /// "Invalid nonce: nonce too low N < M", "... nonce too high N > M" or "... duplicate nonce N".
    pub fn spend(&mut self, signer: Address, nonce: u64, now_ms: i64) -> Result<(), String> {
        let value = i128::from(nonce);
        let oldest = i128::from(now_ms) - i128::from(BEHIND_MS);
        let newest = i128::from(now_ms) + i128::from(AHEAD_MS);
        if value <= oldest {
            return Err(format!("Invalid nonce: nonce too low {nonce} < {oldest}"));
        }
        if value >= newest {
            return Err(format!("Invalid nonce: nonce too high {nonce} > {newest}"));
        }
        let set = self.signers.entry(signer).or_default();
        if set.contains(&nonce) {
            return Err(format!("Invalid nonce: duplicate nonce {nonce}"));
        }
        if set.len() >= KEPT {
            if let Some(&smallest) = set.first() {
                if nonce <= smallest {
                    return Err(format!("Invalid nonce: nonce too low {nonce} < {smallest}"));
                }
            }
        }
        set.insert(nonce);
        while set.len() > KEPT {
            set.pop_first();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000;

    #[test]
    fn the_window_the_duplicates_and_the_hundred_highest() {
        let mut nonces = Nonces::default();
        let a = Address([1; 20]);
        let b = Address([2; 20]);
        let now = NOW as u64;
        assert_eq!(nonces.spend(a, now, NOW), Ok(()));
        assert_eq!(nonces.spend(a, now, NOW), Err(format!("Invalid nonce: duplicate nonce {now}")));
        assert_eq!(nonces.spend(b, now, NOW), Ok(()), "nonce sets are per signer");
        let old = now - BEHIND_MS as u64;
        assert_eq!(nonces.spend(a, old, NOW), Err(format!("Invalid nonce: nonce too low {old} < {old}")));
        assert_eq!(nonces.spend(a, old + 1, NOW), Ok(()), "inside the window, below the others: fine under 100");
        let ahead = now + AHEAD_MS as u64;
        assert_eq!(nonces.spend(a, ahead, NOW), Err(format!("Invalid nonce: nonce too high {ahead} > {ahead}")));
        for i in 1..=100 {
            assert_eq!(nonces.spend(a, now + i, NOW), Ok(()));
        }
        // 102 spent, 100 kept: the smallest kept is now + 1.
        assert_eq!(nonces.spend(a, now, NOW), Err(format!("Invalid nonce: nonce too low {now} < {}", now + 1)));
        assert_eq!(nonces.spend(a, now + 200, NOW), Ok(()));
    }
}

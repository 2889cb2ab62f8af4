//! Nonces: strictly increasing, across threads, crashes and restarts.
//!
//! Hyperliquid keeps the 100 highest nonces of each signer and refuses a nonce it has seen
//! or one below the smallest it keeps ("Invalid nonce: duplicate nonce ..."); a nonce must
//! also lie within (T − 2 days, T + 1 day) of the block time T. The usual nonce is the time
//! in ms, and two actions built in the same millisecond then collide (VENUES.md §5 #8).
//!
//! [`NonceAllocator::next`] returns `max(now_ms, last + 1)`: the clock when it has moved on,
//! one more than the last nonce when it has not (or went backwards). The driver journals
//! every nonce it sends, and a restart seeds the allocator with the journal's last
//! ([`NonceAllocator::resume`]), so a nonce is never reused even if the clock is now behind.
//!
//! Time is an input: `next` takes `now_ms`; [`NonceAllocator::next_now`] reads the wall clock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How far ahead of the clock a nonce may be before the venue refuses it (T + 1 day).
pub const MAX_AHEAD_MS: u64 = 24 * 60 * 60 * 1000;

/// Why no nonce can be given.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NonceError {
    /// The next nonce would be more than a day ahead of `now_ms`: the venue would refuse it.
    /// Either the clock is wrong or the seed came from a clock that was far ahead.
    #[error("the next nonce {next} is more than a day ahead of the clock ({now_ms} ms); check the clock and the journal's last nonce")]
    AheadOfClock { next: u64, now_ms: u64 },
    /// The last nonce is `u64::MAX`.
    #[error("nonces are exhausted (the last was u64::MAX)")]
    Exhausted,
}

/// Gives strictly increasing nonces. Shared by reference between tasks (one per signer: the
/// venue tracks nonces per signing address).
#[derive(Debug, Default)]
pub struct NonceAllocator {
    /// The last nonce given (0: none yet).
    last: AtomicU64,
}

impl NonceAllocator {
    /// An allocator that has given no nonce yet.
    pub fn new() -> NonceAllocator {
        NonceAllocator::default()
    }

    /// An allocator that continues after `last_used`, the last nonce the journal recorded as
    /// sent (or about to be sent) by this signer; `None` for a signer that never signed.
    pub fn resume(last_used: Option<u64>) -> NonceAllocator {
        NonceAllocator { last: AtomicU64::new(last_used.unwrap_or(0)) }
    }

    /// The last nonce given or resumed from (0 if none).
    pub fn last(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
    }

    /// The next nonce at time `now_ms`: `max(now_ms, last + 1)`. Callers racing each other
    /// each get their own.
    ///
    /// # Errors
    /// [`NonceError::AheadOfClock`] when the nonce would be more than a day ahead of `now_ms`
    /// (nothing is taken), [`NonceError::Exhausted`] after `u64::MAX`.
    pub fn next(&self, now_ms: u64) -> Result<u64, NonceError> {
        let mut outcome = Err(NonceError::Exhausted);
        // fetch_update retries on contention, so two callers never see the same `last`.
        let _ = self.last.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            let Some(after) = last.checked_add(1) else {
                outcome = Err(NonceError::Exhausted);
                return None;
            };
            let next = now_ms.max(after);
            if next - now_ms > MAX_AHEAD_MS {
                outcome = Err(NonceError::AheadOfClock { next, now_ms });
                return None;
            }
            outcome = Ok(next);
            Some(next)
        });
        outcome
    }

    /// The next nonce at the wall clock's time.
    ///
    /// # Errors
    /// As [`NonceAllocator::next`].
    pub fn next_now(&self) -> Result<u64, NonceError> {
        self.next(wall_clock_ms())
    }
}

/// The wall clock in ms since the Unix epoch (0 if it is before the epoch).
pub fn wall_clock_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::Arc;

    const T: u64 = 1_741_107_452_532;

    #[test]
    fn follows_the_clock_when_it_moves_on() {
        let nonces = NonceAllocator::new();
        assert_eq!(nonces.next(T), Ok(T));
        assert_eq!(nonces.next(T + 5), Ok(T + 5));
        assert_eq!(nonces.last(), T + 5);
    }

    #[test]
    fn two_actions_in_one_millisecond_get_different_nonces() {
        // The duplicate-nonce refusal of VENUES.md §5 #8: same ms, two orders.
        let nonces = NonceAllocator::new();
        assert_eq!(nonces.next(T), Ok(T));
        assert_eq!(nonces.next(T), Ok(T + 1));
        assert_eq!(nonces.next(T), Ok(T + 2));
        // The clock catches up: the nonce follows it again only once it is ahead.
        assert_eq!(nonces.next(T + 2), Ok(T + 3));
        assert_eq!(nonces.next(T + 10), Ok(T + 10));
    }

    #[test]
    fn a_clock_that_goes_backwards_never_reuses_a_nonce() {
        let nonces = NonceAllocator::new();
        assert_eq!(nonces.next(T), Ok(T));
        assert_eq!(nonces.next(T - 1_000), Ok(T + 1));
    }

    #[test]
    fn a_restart_continues_after_the_journals_last_nonce() {
        // Before the crash the process sent T + 7 (clock ahead, or a burst). After the restart
        // the clock reads T + 3: the journal's last nonce wins.
        let nonces = NonceAllocator::resume(Some(T + 7));
        assert_eq!(nonces.next(T + 3), Ok(T + 8));
        // A signer that never signed starts at the clock.
        assert_eq!(NonceAllocator::resume(None).next(T), Ok(T));
    }

    #[test]
    fn refuses_nonces_the_venue_would_refuse() {
        let nonces = NonceAllocator::resume(Some(T + MAX_AHEAD_MS));
        assert_eq!(nonces.next(T), Err(NonceError::AheadOfClock { next: T + MAX_AHEAD_MS + 1, now_ms: T }));
        // Nothing was taken.
        assert_eq!(nonces.last(), T + MAX_AHEAD_MS);
        assert_eq!(nonces.next(T + 1), Ok(T + MAX_AHEAD_MS + 1));
        assert_eq!(NonceAllocator::resume(Some(u64::MAX)).next(T), Err(NonceError::Exhausted));
    }

    #[test]
    fn concurrent_callers_get_distinct_increasing_nonces() {
        let nonces = Arc::new(NonceAllocator::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let nonces = Arc::clone(&nonces);
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for _ in 0..1_000 {
                        mine.push(nonces.next(T).unwrap());
                    }
                    mine
                })
            })
            .collect();
        let mut all = HashSet::new();
        for thread in threads {
            let mine = thread.join().unwrap();
            assert!(mine.windows(2).all(|pair| pair[0] < pair[1]), "each caller sees increasing nonces");
            all.extend(mine);
        }
        assert_eq!(all.len(), 4_000);
        assert_eq!(nonces.last(), T + 3_999);
    }
}

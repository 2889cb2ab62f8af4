//! The per-IP weight budget (VENUES.md §3.7): 1200 weight per rolling minute across `/info`
//! and `/exchange`; a request that would go over is answered HTTP 429 and does nothing.
//!
//! The window runs on the wall clock: limits protect the server's real time, not market time.

use std::{
    collections::{BTreeMap, VecDeque},
    net::IpAddr,
};

/// The window length.
pub const WINDOW_MS: i64 = 60_000;

/// The IP weight of an `/info` request by its `type`, before its answer.
pub fn info_weight(kind: &str) -> u32 {
    match kind {
        "l2Book" | "allMids" | "clearinghouseState" | "orderStatus" | "spotClearinghouseState" | "exchangeStatus" => 2,
        "userRole" => 60,
        _ => 20,
    }
}

/// The extra weight of an `/info` answer of `items` elements: one per 20 fills, one per 60
/// candles.
pub fn info_extra_weight(kind: &str, items: usize) -> u32 {
    let per = match kind {
        "userFills" | "userFillsByTime" | "historicalOrders" => 20,
        "candleSnapshot" => 60,
        _ => return 0,
    };
    u32::try_from(items / per).unwrap_or(u32::MAX)
}

/// The weights spent per IP in the last minute.
#[derive(Debug)]
pub struct IpBudget {
    per_minute: u32,
    windows: BTreeMap<IpAddr, VecDeque<(i64, u32)>>,
}

impl IpBudget {
    pub fn new(per_minute: u32) -> IpBudget {
        IpBudget { per_minute, windows: BTreeMap::new() }
    }

    fn used(&mut self, ip: IpAddr, now_ms: i64) -> u32 {
        let window = self.windows.entry(ip).or_default();
        while window.front().is_some_and(|&(t, _)| t <= now_ms - WINDOW_MS) {
            window.pop_front();
        }
        window.iter().fold(0u32, |sum, &(_, w)| sum.saturating_add(w))
    }

    /// Spends `weight` for `ip` at `now_ms`, or refuses (and spends nothing).
    pub fn try_spend(&mut self, ip: IpAddr, weight: u32, now_ms: i64) -> bool {
        if self.used(ip, now_ms).saturating_add(weight) > self.per_minute {
            return false;
        }
        self.windows.entry(ip).or_default().push_back((now_ms, weight));
        true
    }

    /// Spends `weight` whatever the budget (the extra weight of an answer already given).
    pub fn charge(&mut self, ip: IpAddr, weight: u32, now_ms: i64) {
        if weight > 0 {
            self.windows.entry(ip).or_default().push_back((now_ms, weight));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixty_meta_requests_a_minute_then_refusals_until_the_window_rolls() {
        let ip: IpAddr = [127, 0, 0, 1].into();
        let other: IpAddr = [127, 0, 0, 2].into();
        let mut budget = IpBudget::new(1200);
        for i in 0..60 {
            assert!(budget.try_spend(ip, info_weight("meta"), 1000 + i));
        }
        assert!(!budget.try_spend(ip, info_weight("allMids"), 2000));
        assert!(budget.try_spend(other, 2, 2000), "each IP has its own budget");
        assert!(budget.try_spend(ip, 20, 61_000), "the first request left the window");
        assert_eq!(info_extra_weight("userFills", 45), 2);
        assert_eq!(info_extra_weight("meta", 45), 0);
    }
}

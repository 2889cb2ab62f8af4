//! Fault injection: the Bybit server's spec and seeded dice, shared as they are, so a spec
//! means the same on both servers. What each fault does here:
//!
//! | name | effect on this server |
//! |---|---|
//! | `drop_ws` | per pushed message, the socket is closed abruptly instead (no close frame) |
//! | `lose_response` | an `/exchange` order or cancel is carried out, its HTTP response never comes |
//! | `http_5xx` | a `/info` or `/exchange` request is answered 502 or 503 and does nothing |
//! | `late_ack` | an order's `orderUpdates` push goes out first, its `/exchange` answer ~200 ms later |
//! | `dup_ws` | an `orderUpdates` or `userFills` message is sent twice |
//! | `late_fills` | per bar with fills, its user messages go out ~150 ms after the bar's `candle` |
//! | `skew_ms` | the server's clock (the nonce window, `time` fields) is that far off the wall clock |

pub use bybit_server::faults::{Dice, Fault, FaultSpecError, Faults};

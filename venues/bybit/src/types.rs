//! What Bybit reports, typed: orders, executions, positions, the wallet, instruments.
//! Parsed from REST lists and WebSocket `data` arrays alike (the field names are the same).

use journal::event::Side;
use rust_decimal::Decimal;

/// `GET /v5/market/instruments-info`, one linear symbol.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstrumentInfo {
    pub symbol: String,
    pub tick_size: Decimal,
    pub qty_step: Decimal,
    pub min_qty: Decimal,
    pub max_qty: Decimal,
    pub min_notional: Decimal,
    pub max_leverage: Decimal,
}

/// `orderStatus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Untriggered,
    Rejected,
    Filled,
    Cancelled,
    Triggered,
    Deactivated,
    Other(String),
}

impl OrderStatus {
    /// Still working at the venue (can fill).
    pub fn is_open(&self) -> bool {
        matches!(self, OrderStatus::New | OrderStatus::PartiallyFilled | OrderStatus::Untriggered | OrderStatus::Triggered)
    }
}

/// An order as `GET /v5/order/realtime` and the `order` topic report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderReport {
    pub order_id: String,
    pub order_link_id: String,
    pub symbol: String,
    pub side: Side,
    pub order_type: String,
    pub price: Option<Decimal>,
    pub qty: Decimal,
    pub cum_exec_qty: Decimal,
    pub leaves_qty: Decimal,
    pub status: OrderStatus,
    pub reject_reason: String,
    pub cancel_type: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

/// One execution (`GET /v5/execution/list`, the `execution` topic). `exec_type` is
/// "Trade" for fills, "Funding" for a funding settlement (then `fee` is what was paid,
/// negative when received, and `fee_rate` the funding rate), and others Bybit documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Execution {
    pub exec_id: String,
    pub order_id: String,
    pub order_link_id: String,
    pub symbol: String,
    pub side: Side,
    pub exec_type: String,
    pub qty: Decimal,
    pub price: Decimal,
    pub fee: Decimal,
    pub fee_rate: Decimal,
    pub is_maker: bool,
    pub mark_price: Option<Decimal>,
    pub time_ms: i64,
}

/// A one-way-mode position (`GET /v5/position/list`, the `position` topic). `qty` is signed:
/// positive long, negative short, zero flat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PositionReport {
    pub symbol: String,
    pub qty: Decimal,
    pub entry_price: Decimal,
    pub updated_ms: i64,
}

/// The USDT of the unified account (`GET /v5/account/wallet-balance`, the `wallet` topic).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletReport {
    pub wallet_balance: Decimal,
    pub equity: Decimal,
    pub available: Decimal,
}

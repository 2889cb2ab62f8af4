//! The live/paper config file (TOML): every field checked at start, every error
//! naming the file, line and column of the value at fault.
//!
//! ```toml
//! [venue]
//! kind = "bybit"                      # bybit | bybit-testnet | bybit-demo | hyperliquid | hyperliquid-testnet | paper
//! rest_url = "http://127.0.0.1:PORT"  # optional: overrides the kind's URLs
//! ws_url = "ws://127.0.0.1:PORT"
//! key_env = "BYBIT_API_KEY"           # the names of the variables, never the values
//! secret_env = "BYBIT_API_SECRET"
//!
//! [[trader]]
//! id = "sma"
//! strategy = "strategies/sma_cross.js"
//! symbols = ["BTCUSDT"]
//! interval = "1m"
//! capital = "10000"
//!
//! [[trader]]                          # an LLM trader: everything else is in its trader file
//! id = "llm-btc"                      # (the one `quantfold backtest --trader` reads)
//! kind = "llm"
//! file = "llm/trader.toml"
//! ```
//!
//! The full list of fields, with defaults, is in docs/live.md.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use rust_decimal::Decimal;
use serde::Deserialize;
use strategies::llm::config::{OverallBudget, TraderConfig};
use toml::Spanned;

/// Where a config problem is: `file:line:column: message`.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// The venue kinds this build trades on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VenueKind {
    Bybit,
    BybitTestnet,
    BybitDemo,
    Hyperliquid,
    HyperliquidTestnet,
    /// Market data from Bybit's public stream, orders filled by the simulated exchange.
    Paper,
}

impl VenueKind {
    pub fn name(self) -> &'static str {
        match self {
            VenueKind::Bybit => "bybit",
            VenueKind::BybitTestnet => "bybit-testnet",
            VenueKind::BybitDemo => "bybit-demo",
            VenueKind::Hyperliquid => "hyperliquid",
            VenueKind::HyperliquidTestnet => "hyperliquid-testnet",
            VenueKind::Paper => "paper",
        }
    }

    pub fn is_hyperliquid(self) -> bool {
        matches!(self, VenueKind::Hyperliquid | VenueKind::HyperliquidTestnet)
    }
}

/// How durable the journal is between the write-ahead flushes every order gets anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DurabilityKind {
    /// Group commit (10 ms): inputs may be lost by a crash, never an order's intent.
    Group,
    /// Every event flushed: slower, loses nothing.
    EveryAppend,
}

/// A checked config.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from, as errors name it.
    pub file: String,
    pub venue: Venue,
    pub journal: Journal,
    pub limits: Limits,
    pub traders: Vec<Trader>,
    /// Where notifications go; none without a `[telegram]` section.
    pub telegram: Option<Telegram>,
}

/// `[telegram]`: notifications delivered through the Bot API's `sendMessage`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Telegram {
    /// `https://api.telegram.org`, or a local server's URL.
    pub base_url: String,
    /// The environment variable holding the bot token.
    pub token_env: String,
    /// A numeric chat id or `@channel`.
    pub chat_id: String,
    /// The `NotificationSent` channels delivered: `telegram` (`ctx.notify.telegram`) and
    /// `llm` (the LLM traders' fail-closed alerts) by default.
    pub channels: Vec<String>,
    /// Messages a minute at most.
    pub per_minute: u32,
    /// Undelivered notifications older than this (event time) are not sent after a restart.
    pub max_age_ms: i64,
}

#[derive(Clone, Debug)]
pub struct Venue {
    pub kind: VenueKind,
    pub rest_url: Option<String>,
    pub ws_url: Option<String>,
    /// Bybit: the API key's variable; Hyperliquid: the API wallet's private key's.
    pub key_env: String,
    /// Bybit only: the API secret's variable.
    pub secret_env: String,
    /// Hyperliquid: the account the API wallet trades for (default: the wallet's own address).
    pub account: Option<String>,
    /// Hyperliquid: whose signatures the venue takes ("mainnet" or "testnet"); default: the
    /// kind's, and "testnet" for a local server (`rest_url`), as the official SDKs sign.
    pub network: Option<String>,
    pub recv_window_ms: u64,
    pub cancel_on_stop: bool,
    /// Paper trading: the simulated exchange's fees and slippage. Hyperliquid: the fee rates
    /// journaled with the instruments (the venue's tiered rates are not read).
    pub taker_fee_rate: Decimal,
    pub maker_fee_rate: Decimal,
    pub slippage_bps: Decimal,
    /// Maintenance margin rate of every instrument (Bybit's instruments-info does not give it).
    pub maintenance_margin_rate: Decimal,
    /// Paper trading only: the simulated account's equity the traders' capital is a share of
    /// (checked with `reserve_pct` at start; absent: the capitals are the account).
    pub paper_equity: Option<Decimal>,
}

#[derive(Clone, Debug)]
pub struct Journal {
    /// Relative paths are relative to the config file.
    pub dir: Option<PathBuf>,
    pub durability: DurabilityKind,
    pub snapshot_every: u64,
}

/// Per-trader limits; crossing one stops the trader with a journaled reason.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    pub max_order_notional: Option<Decimal>,
    pub max_open_orders: Option<usize>,
    pub max_daily_loss: Option<Decimal>,
    /// The share of the account's equity (percent) no trader may be allocated: the traders'
    /// allocations plus this must not exceed 100, checked when a journal starts.
    pub reserve_pct: Decimal,
}

#[derive(Clone, Debug)]
pub struct Trader {
    pub id: String,
    /// Relative paths are relative to the config file. Empty for an LLM trader.
    pub strategy: PathBuf,
    /// An LLM trader (`kind = "llm"`): its resolved configuration, from its trader file.
    pub llm: Option<Box<TraderConfig>>,
    /// Where the trader's capital is written (`capital`, or an LLM trader's `file`), as
    /// `(line, column)`: the allocation check at start names it.
    pub capital_at: (usize, usize),
    pub params: serde_json::Value,
    pub symbols: Vec<String>,
    pub interval_ms: i64,
    pub capital: Decimal,
    pub leverage: Decimal,
    pub seed: u64,
}

// --- the file as written -------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    venue: RawVenue,
    #[serde(default)]
    journal: Option<RawJournal>,
    #[serde(default)]
    limits: Option<RawLimits>,
    /// The budget of every LLM trader of the config together (replaces their files' own).
    #[serde(default)]
    llm_budget: Option<OverallBudget>,
    #[serde(default)]
    trader: Vec<Spanned<RawTrader>>,
    #[serde(default)]
    telegram: Option<RawTelegram>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTelegram {
    base_url: Option<Spanned<String>>,
    token_env: Option<Spanned<String>>,
    chat_id: Spanned<toml::Value>,
    channels: Option<Spanned<Vec<String>>>,
    per_minute: Option<Spanned<u32>>,
    max_age: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVenue {
    kind: Spanned<String>,
    rest_url: Option<Spanned<String>>,
    ws_url: Option<Spanned<String>>,
    key_env: Option<Spanned<String>>,
    secret_env: Option<Spanned<String>>,
    recv_window_ms: Option<Spanned<u64>>,
    cancel_on_stop: Option<bool>,
    taker_fee_rate: Option<Spanned<String>>,
    maker_fee_rate: Option<Spanned<String>>,
    slippage_bps: Option<Spanned<String>>,
    maintenance_margin_rate: Option<Spanned<String>>,
    paper_equity: Option<Spanned<String>>,
    account: Option<Spanned<String>>,
    network: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJournal {
    dir: Option<String>,
    durability: Option<Spanned<String>>,
    snapshot_every: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    max_order_notional: Option<Spanned<String>>,
    max_open_orders: Option<Spanned<u64>>,
    max_daily_loss: Option<Spanned<String>>,
    reserve_pct: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrader {
    id: Spanned<String>,
    /// `javascript` (the default) or `llm`.
    kind: Option<Spanned<String>>,
    /// An LLM trader's file (`[[trader]]` tables with `kind = "llm"`, as `backtest --trader`).
    file: Option<Spanned<String>>,
    strategy: Option<Spanned<String>>,
    #[serde(default)]
    params: Option<toml::Table>,
    symbols: Option<Spanned<Vec<String>>>,
    interval: Option<Spanned<String>>,
    capital: Option<Spanned<String>>,
    leverage: Option<Spanned<String>>,
    seed: Option<u64>,
}

/// Reads and checks the config at `path`.
///
/// # Errors
/// The file cannot be read, is not TOML, has unknown or missing fields, or a value is
/// out of range; the error names the file, line and column.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.display().to_string(),
        line: 0,
        column: 0,
        message: format!("cannot read the config: {e}"),
    })?;
    parse(path, &text)
}

/// Checks the config `text` of the file `path`.
///
/// # Errors
/// As [`load`].
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    let at = Locator { file: path.display().to_string(), text };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let start = e.span().map_or(0, |s| s.start);
        at.error(start, e.message().trim_end().to_owned())
    })?;
    let base = path.parent().unwrap_or(Path::new(""));

    let v = raw.venue;
    let kind = match v.kind.get_ref().as_str() {
        "bybit" => VenueKind::Bybit,
        "bybit-testnet" => VenueKind::BybitTestnet,
        "bybit-demo" => VenueKind::BybitDemo,
        "paper" => VenueKind::Paper,
        "hyperliquid" => VenueKind::Hyperliquid,
        "hyperliquid-testnet" => VenueKind::HyperliquidTestnet,
        other => {
            return Err(at.at(
                &v.kind,
                format!(
                    "unknown venue kind {other:?} (bybit, bybit-testnet, bybit-demo, hyperliquid, hyperliquid-testnet or paper)"
                ),
            ))
        }
    };
    let hyperliquid = kind.is_hyperliquid();
    if !hyperliquid {
        if let Some(field) = v.account.as_ref().or(v.network.as_ref()) {
            return Err(at.at(field, "account and network are for kind = \"hyperliquid\" or \"hyperliquid-testnet\""));
        }
    }
    let network = match v.network {
        None => None,
        Some(n) if n.get_ref() == "mainnet" || n.get_ref() == "testnet" => Some(n.into_inner()),
        Some(n) => {
            return Err(at.at(&n, "network must be \"mainnet\" or \"testnet\" (whose signatures the venue takes)"))
        }
    };
    let account = match v.account {
        None => None,
        Some(a)
            if a.get_ref().len() == 42
                && a.get_ref().starts_with("0x")
                && a.get_ref()[2..].bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Some(a.into_inner())
        }
        Some(a) => return Err(at.at(&a, "account must be an address: 0x and 40 hex digits (public, never a key)")),
    };
    let rest_url = v.rest_url.map(|u| url(&at, &u, &["http://", "https://"])).transpose()?;
    let ws_url = v.ws_url.map(|u| url(&at, &u, &["ws://", "wss://"])).transpose()?;
    let env_name = |name: Option<Spanned<String>>, default: &str| -> Result<String, ConfigError> {
        match name {
            None => Ok(default.to_owned()),
            Some(n) if is_env_name(n.get_ref()) => Ok(n.into_inner()),
            Some(n) => {
                Err(at.at(&n, "not an environment variable name: give the variable's name, never the key itself"))
            }
        }
    };
    let recv_window_ms = match v.recv_window_ms {
        None => 5_000,
        Some(w) if (1..=60_000).contains(w.get_ref()) => *w.get_ref(),
        Some(w) => return Err(at.at(&w, "recv_window_ms must be between 1 and 60000")),
    };
    let venue = Venue {
        kind,
        rest_url,
        ws_url,
        key_env: env_name(v.key_env, if hyperliquid { "HYPERLIQUID_PRIVATE_KEY" } else { "BYBIT_API_KEY" })?,
        secret_env: env_name(v.secret_env, "BYBIT_API_SECRET")?,
        account,
        network,
        recv_window_ms,
        cancel_on_stop: v.cancel_on_stop.unwrap_or(false),
        taker_fee_rate: rate(&at, v.taker_fee_rate, if hyperliquid { "0.00045" } else { "0.00055" }, Decimal::ONE)?,
        maker_fee_rate: rate(&at, v.maker_fee_rate, if hyperliquid { "0.00015" } else { "0.0002" }, Decimal::ONE)?,
        slippage_bps: rate(&at, v.slippage_bps, "0", Decimal::new(10_000, 0))?,
        maintenance_margin_rate: rate(&at, v.maintenance_margin_rate, "0.005", Decimal::ONE)?,
        paper_equity: match v.paper_equity {
            Some(e) if kind != VenueKind::Paper => {
                return Err(at.at(&e, "paper_equity is for kind = \"paper\" (a live account's equity is the wallet's)"))
            }
            e => e.map(|e| positive(&at, &e)).transpose()?,
        },
    };

    let journal = match raw.journal {
        None => Journal { dir: None, durability: DurabilityKind::Group, snapshot_every: 10_000 },
        Some(j) => Journal {
            dir: j.dir.map(|d| base.join(d)),
            durability: match j.durability {
                None => DurabilityKind::Group,
                Some(d) => match d.get_ref().as_str() {
                    "group" => DurabilityKind::Group,
                    "every-append" => DurabilityKind::EveryAppend,
                    other => return Err(at.at(&d, format!("unknown durability {other:?} (group or every-append)"))),
                },
            },
            snapshot_every: match j.snapshot_every {
                None => 10_000,
                Some(n) if *n.get_ref() > 0 => *n.get_ref(),
                Some(n) => return Err(at.at(&n, "snapshot_every must be positive")),
            },
        },
    };

    let mut reserve_at = (0, 0);
    let limits = match raw.limits {
        None => Limits::default(),
        Some(l) => Limits {
            reserve_pct: match l.reserve_pct {
                None => Decimal::ZERO,
                Some(r) => {
                    let e = at.at(&r, "");
                    reserve_at = (e.line, e.column);
                    rate(&at, Some(r), "0", Decimal::ONE_HUNDRED)?
                }
            },
            max_order_notional: l.max_order_notional.map(|n| positive(&at, &n)).transpose()?,
            max_open_orders: match l.max_open_orders {
                None => None,
                Some(n) if *n.get_ref() > 0 => Some(*n.get_ref() as usize),
                Some(n) => return Err(at.at(&n, "max_open_orders must be positive")),
            },
            max_daily_loss: l.max_daily_loss.map(|n| positive(&at, &n)).transpose()?,
        },
    };

    if raw.trader.is_empty() {
        return Err(at.error(text.len(), "no [[trader]]: a live run needs at least one".to_owned()));
    }
    let mut ids = BTreeSet::new();
    let mut traders = Vec::new();
    for spanned in raw.trader {
        let span = spanned.span();
        let t = spanned.into_inner();
        let id = t.id.get_ref();
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err(at.at(&t.id, "a trader id is letters, digits, '-' and '_'"));
        }
        if !ids.insert(id.clone()) {
            return Err(at.at(&t.id, format!("trader {id:?} appears twice")));
        }
        let is_llm = match &t.kind {
            None => false,
            Some(k) => match k.get_ref().as_str() {
                "javascript" => false,
                "llm" => true,
                other => return Err(at.at(k, format!("unknown trader kind {other:?} (javascript or llm)"))),
            },
        };
        if is_llm {
            let mut trader = llm_trader(&at, base, span.start, t)?;
            if let (Some(budget), Some(llm)) = (&raw.llm_budget, trader.llm.as_mut()) {
                llm.overall_budget = Some(budget.clone());
            }
            traders.push(trader);
            continue;
        }
        if let Some(file) = &t.file {
            return Err(at.at(file, "file is for kind = \"llm\" (a JavaScript trader names its strategy)"));
        }
        let missing = |field: &str| at.error(span.start, format!("trader {id:?}: missing field `{field}`"));
        let strategy_at = t.strategy.as_ref().ok_or_else(|| missing("strategy"))?;
        let symbols_at = t.symbols.as_ref().ok_or_else(|| missing("symbols"))?;
        let interval_at = t.interval.as_ref().ok_or_else(|| missing("interval"))?;
        let capital_at = t.capital.as_ref().ok_or_else(|| missing("capital"))?;
        let strategy = base.join(strategy_at.get_ref());
        if !strategy.is_file() {
            return Err(at.at(strategy_at, format!("no strategy file at {}", strategy.display())));
        }
        let symbols = check_symbols(&at, symbols_at, symbols_at.get_ref())?;
        let interval_ms = match backtest::data::parse_interval(interval_at.get_ref()) {
            Ok(ms) if bybit::interval_label(ms).is_some() => ms,
            Ok(_) => return Err(at.at(interval_at, NO_SUCH_INTERVAL)),
            Err(e) => return Err(at.at(interval_at, e.to_string())),
        };
        let params = match t.params {
            None => serde_json::Value::Object(Default::default()),
            Some(table) => serde_json::to_value(table).map_err(|e| at.error(span.start, format!("params: {e}")))?,
        };
        let capital_where = at.at(capital_at, "");
        traders.push(Trader {
            id: id.clone(),
            strategy,
            llm: None,
            capital_at: (capital_where.line, capital_where.column),
            params,
            symbols,
            interval_ms,
            capital: positive(&at, capital_at)?,
            leverage: match &t.leverage {
                None => Decimal::ONE,
                Some(l) => positive(&at, l)?,
            },
            seed: t.seed.unwrap_or(0),
        });
    }
    let telegram = raw.telegram.map(|t| telegram(&at, t)).transpose()?;
    let config = Config { file: at.file.clone(), venue, journal, limits, traders, telegram };
    if let Some(equity) = config.venue.paper_equity {
        config.check_allocation(equity)?;
    }
    if config.limits.reserve_pct >= Decimal::ONE_HUNDRED {
        let (line, column) = reserve_at;
        let message = "reserve_pct must be below 100: nothing would be left for the traders".to_owned();
        return Err(ConfigError { file: config.file.clone(), line, column, message });
    }
    Ok(config)
}

const NO_SUCH_INTERVAL: &str = "Bybit has no such kline interval (1m 3m 5m 15m 30m 1h 2h 4h 6h 12h 1d 1w)";

impl Config {
    /// The traders' allocations of an account of `equity` plus the reserve must not exceed
    /// 100 %: the error names the capital of the first trader past it.
    ///
    /// # Errors
    /// The allocations do not fit.
    pub fn check_allocation(&self, equity: Decimal) -> Result<(), ConfigError> {
        let hundred = Decimal::ONE_HUNDRED;
        let available = equity * (hundred - self.limits.reserve_pct) / hundred;
        let mut total = Decimal::ZERO;
        for t in &self.traders {
            total += t.capital;
            if total > available {
                let pct = |amount: Decimal| (amount / equity * hundred).round_dp(2).normalize();
                let (line, column) = t.capital_at;
                let message = format!(
                    "trader {:?}: the traders' capital so far ({total}) is {}% of the account's equity ({equity}); \
                     with reserve_pct {}% the allocations exceed 100%",
                    t.id,
                    pct(total),
                    self.limits.reserve_pct.normalize()
                );
                return Err(ConfigError { file: self.file.clone(), line, column, message });
            }
        }
        Ok(())
    }

    /// The LLM traders' configurations.
    pub fn llm_traders(&self) -> impl Iterator<Item = &TraderConfig> {
        self.traders.iter().filter_map(|t| t.llm.as_deref())
    }
}

/// An LLM trader: `id`, `kind = "llm"` and `file`; the rest is in its trader file.
fn llm_trader(at: &Locator<'_>, base: &Path, start: usize, t: RawTrader) -> Result<Trader, ConfigError> {
    let id = t.id.get_ref().clone();
    let Some(file) = &t.file else {
        return Err(at.error(start, format!("trader {id:?}: kind = \"llm\" needs `file`, its LLM trader file")));
    };
    let misplaced = [
        ("strategy", t.strategy.as_ref().map(|v| v.span().start)),
        ("symbols", t.symbols.as_ref().map(|v| v.span().start)),
        ("interval", t.interval.as_ref().map(|v| v.span().start)),
        ("capital", t.capital.as_ref().map(|v| v.span().start)),
        ("leverage", t.leverage.as_ref().map(|v| v.span().start)),
    ];
    if let Some((name, Some(offset))) = misplaced.iter().find(|(_, o)| o.is_some()) {
        return Err(
            at.error(*offset, format!("{name} of an LLM trader is set in its trader file ({})", file.get_ref()))
        );
    }
    if t.params.is_some() || t.seed.is_some() {
        return Err(at.error(start, format!("trader {id:?}: params and seed are for JavaScript traders")));
    }
    let path = base.join(file.get_ref());
    let resolved = strategies::llm::config::load(&path).map_err(|e| at.at(file, e.to_string()))?;
    let available: Vec<&str> = resolved.iter().map(|c| c.id.as_str()).collect();
    let Some(config) = resolved.iter().find(|c| c.id == id) else {
        return Err(at.at(file, format!("{} has no trader {id:?} (it has {})", path.display(), available.join(", "))));
    };
    check_symbols(at, file, &config.symbols)?;
    if bybit::interval_label(config.interval_ms).is_none() {
        return Err(at.at(file, format!("trader {id:?}: {NO_SUCH_INTERVAL}")));
    }
    let capital_where = at.at(file, "");
    Ok(Trader {
        id,
        strategy: PathBuf::new(),
        llm: Some(Box::new(config.clone())),
        capital_at: (capital_where.line, capital_where.column),
        params: serde_json::Value::Object(Default::default()),
        symbols: config.symbols.clone(),
        interval_ms: config.interval_ms,
        capital: config.capital,
        leverage: Decimal::from(config.leverage),
        seed: 0,
    })
}

/// Symbols as Bybit writes them (uppercase letters and digits), at least one.
fn check_symbols<T>(at: &Locator<'_>, value: &Spanned<T>, symbols: &[String]) -> Result<Vec<String>, ConfigError> {
    if symbols.is_empty() {
        return Err(at.at(value, "symbols is empty"));
    }
    if let Some(bad) =
        symbols.iter().find(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
    {
        return Err(at.at(value, format!("{bad:?} is not a symbol (uppercase, like BTCUSDT)")));
    }
    Ok(symbols.to_vec())
}

fn telegram(at: &Locator<'_>, t: RawTelegram) -> Result<Telegram, ConfigError> {
    let chat_id = match t.chat_id.get_ref() {
        toml::Value::Integer(id) => id.to_string(),
        toml::Value::String(s) if s.trim().parse::<i64>().is_ok() => s.trim().to_owned(),
        toml::Value::String(s) if s.starts_with('@') && s.len() > 1 => s.clone(),
        _ => return Err(at.at(&t.chat_id, "chat_id is a numeric chat id or an @channel name")),
    };
    let token_env = match t.token_env {
        None => "TELEGRAM_BOT_TOKEN".to_owned(),
        Some(n) if is_env_name(n.get_ref()) => n.into_inner(),
        Some(n) => return Err(at.at(&n, "not an environment variable name: give the variable's name, never the token")),
    };
    let channels = match t.channels {
        None => vec!["telegram".to_owned(), "llm".to_owned()],
        Some(c) if !c.get_ref().is_empty() => c.into_inner(),
        Some(c) => return Err(at.at(&c, "channels is empty: leave the [telegram] section out to deliver nothing")),
    };
    let per_minute = match t.per_minute {
        None => telegram::PER_MINUTE_DEFAULT,
        Some(n) if (1..=1_800).contains(n.get_ref()) => *n.get_ref(),
        Some(n) => return Err(at.at(&n, "per_minute must be between 1 and 1800 (Telegram allows about 30 a second)")),
    };
    let max_age_ms = match t.max_age {
        None => 86_400_000,
        Some(a) => match backtest::data::parse_interval(a.get_ref()) {
            Ok(ms) if ms > 0 => ms,
            _ => return Err(at.at(&a, format!("{:?} is not a duration like \"30m\", \"24h\" or \"7d\"", a.get_ref()))),
        },
    };
    Ok(Telegram {
        base_url: match t.base_url {
            None => "https://api.telegram.org".to_owned(),
            Some(u) => url(at, &u, &["http://", "https://"])?,
        },
        token_env,
        chat_id,
        channels,
        per_minute,
        max_age_ms,
    })
}

/// Turns byte offsets into `file:line:column` errors.
struct Locator<'a> {
    file: String,
    text: &'a str,
}

impl Locator<'_> {
    fn error(&self, offset: usize, message: String) -> ConfigError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ConfigError { file: self.file.clone(), line, column, message }
    }

    fn at<T>(&self, value: &Spanned<T>, message: impl Into<String>) -> ConfigError {
        self.error(value.span().start, message.into())
    }
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

fn url(at: &Locator<'_>, value: &Spanned<String>, schemes: &[&str]) -> Result<String, ConfigError> {
    let u = value.get_ref();
    if schemes.iter().any(|s| u.starts_with(s) && u.len() > s.len()) {
        Ok(u.trim_end_matches('/').to_owned())
    } else {
        Err(at.at(value, format!("{u:?} is not a URL starting with {}", schemes.join(" or "))))
    }
}

fn decimal(at: &Locator<'_>, value: &Spanned<String>) -> Result<Decimal, ConfigError> {
    value.get_ref().trim().parse::<Decimal>().map_err(|_| {
        at.at(value, format!("{:?} is not a decimal number (write it as a string, e.g. \"10000\")", value.get_ref()))
    })
}

fn positive(at: &Locator<'_>, value: &Spanned<String>) -> Result<Decimal, ConfigError> {
    let d = decimal(at, value)?;
    if d > Decimal::ZERO {
        Ok(d)
    } else {
        Err(at.at(value, "must be positive"))
    }
}

/// A rate in `[0, max]`, or `default`.
fn rate(at: &Locator<'_>, value: Option<Spanned<String>>, default: &str, max: Decimal) -> Result<Decimal, ConfigError> {
    let Some(value) = value else {
        return Ok(default.parse().unwrap_or_default());
    };
    let d = decimal(at, &value)?;
    if d >= Decimal::ZERO && d <= max {
        Ok(d)
    } else {
        Err(at.at(&value, format!("must be between 0 and {max}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_in(dir: &Path, text: &str) -> Result<Config, ConfigError> {
        std::fs::write(dir.join("s.js"), "function st_heartbeat(ctx, t) {}").unwrap();
        parse(&dir.join("live.toml"), text)
    }

    const GOOD: &str = r#"
[venue]
kind = "paper"

[[trader]]
id = "sma"
strategy = "s.js"
symbols = ["BTCUSDT"]
interval = "1m"
capital = "10000"
params = { fast = 5, slow = 20 }
"#;

    #[test]
    fn a_good_config_has_its_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse_in(dir.path(), GOOD).unwrap();
        assert_eq!(c.venue.kind, VenueKind::Paper);
        assert_eq!(c.venue.key_env, "BYBIT_API_KEY");
        assert_eq!(c.traders[0].interval_ms, 60_000);
        assert_eq!(c.traders[0].capital, Decimal::new(10_000, 0));
        assert_eq!(c.traders[0].params, serde_json::json!({"fast": 5, "slow": 20}));
        assert_eq!(c.journal.durability, DurabilityKind::Group);
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let cases: &[(&str, &str, usize, &str)] = &[
            ("kind = \"paper\"", "kind = \"binance\"", 3, "unknown venue kind"),
            ("capital = \"10000\"", "capital = \"ten\"", 10, "not a decimal"),
            ("capital = \"10000\"", "capital = \"-5\"", 10, "must be positive"),
            ("interval = \"1m\"", "interval = \"7m\"", 9, "no such kline interval"),
            ("strategy = \"s.js\"", "strategy = \"missing.js\"", 7, "no strategy file"),
            ("[venue]", "[venue]\nsecret = \"abc\"", 3, "unknown field"),
            ("symbols = [\"BTCUSDT\"]", "symbols = [\"btc\"]", 8, "not a symbol"),
            ("kind = \"paper\"", "kind = \"paper\"\nkey_env = \"my key\"", 4, "not an environment variable name"),
            ("id = \"sma\"", "id = \"sma\"\nid2 = 1", 7, "unknown field"),
        ];
        for (from, to, line, needle) in cases {
            let text = GOOD.replacen(from, to, 1);
            let e = parse_in(dir.path(), &text).expect_err(to);
            assert_eq!(e.line, *line, "{to}: {e}");
            assert!(e.to_string().contains(needle), "{to}: {e}");
            assert!(e.to_string().starts_with(&format!("{}:{line}:", dir.path().join("live.toml").display())), "{e}");
        }
    }

    #[test]
    fn the_telegram_section_has_defaults_and_its_errors_say_where() {
        let dir = tempfile::tempdir().unwrap();
        let c = parse_in(dir.path(), &format!("{GOOD}\n[telegram]\nchat_id = 5150\n")).unwrap();
        let t = c.telegram.unwrap();
        assert_eq!((t.chat_id.as_str(), t.token_env.as_str()), ("5150", "TELEGRAM_BOT_TOKEN"));
        assert_eq!(t.channels, ["telegram", "llm"]);
        assert_eq!((t.per_minute, t.max_age_ms), (20, 86_400_000));
        assert!(parse_in(dir.path(), GOOD).unwrap().telegram.is_none());
        let cases: &[(&str, &str)] = &[
            ("chat_id = \"me\"", "numeric chat id"),
            ("chat_id = 1\ntoken_env = \"123:abc\"", "not an environment variable name"),
            ("chat_id = 1\nper_minute = 0", "between 1 and 1800"),
            ("chat_id = 1\nmax_age = \"soon\"", "not a duration"),
            ("chat_id = 1\nchannels = []", "channels is empty"),
            ("chat_id = 1\ntoken = \"123:abc\"", "unknown field"),
        ];
        for (section, needle) in cases {
            let e = parse_in(dir.path(), &format!("{GOOD}\n[telegram]\n{section}\n")).expect_err(section);
            assert!(e.message.contains(needle), "{section}: {e}");
            assert!(e.line >= 14, "{section}: {e}");
        }
    }

    #[test]
    fn duplicate_traders_and_no_traders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let twice = format!("{GOOD}\n[[trader]]\nid = \"sma\"\nstrategy = \"s.js\"\nsymbols = [\"BTCUSDT\"]\ninterval = \"1m\"\ncapital = \"1\"\n");
        let e = parse_in(dir.path(), &twice).unwrap_err();
        assert!(e.message.contains("appears twice"), "{e}");
        assert_eq!(e.line, 14);
        let none = "[venue]\nkind = \"paper\"\n";
        assert!(parse_in(dir.path(), none).unwrap_err().message.contains("no [[trader]]"));
    }

    #[test]
    fn the_llm_paper_example_has_its_llm_trader_and_reserve() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/llm/paper.toml");
        let c = load(&path).unwrap();
        let llm = c.traders[0].llm.as_deref().expect("the first trader is an LLM trader");
        assert_eq!(llm.id, "llm-btc");
        assert_eq!(c.traders[0].symbols, ["BTCUSDT"]);
        assert_eq!(c.traders[0].interval_ms, 60_000);
        assert_eq!(c.traders[0].capital, Decimal::new(5_000, 0));
        assert_eq!(llm.max_slippage_bps, Some(Decimal::new(20, 0)));
        assert!(c.traders[1].llm.is_none());
        assert_eq!(c.limits.reserve_pct, Decimal::new(10, 0));
        assert_eq!(c.venue.paper_equity, Some(Decimal::new(10_000, 0)));
        assert_eq!(c.llm_traders().count(), 1);
    }

    #[test]
    fn allocations_past_the_reserve_are_refused_at_the_capital_past_it() {
        let dir = tempfile::tempdir().unwrap();
        let two = format!(
            "{GOOD}\n[[trader]]\nid = \"b\"\nstrategy = \"s.js\"\nsymbols = [\"BTCUSDT\"]\ninterval = \"1m\"\ncapital = \"6000\"\n"
        );
        let fits = two.replacen("kind = \"paper\"", "kind = \"paper\"\npaper_equity = \"20000\"", 1);
        let c = parse_in(dir.path(), &format!("{fits}\n[limits]\nreserve_pct = \"20\"\n")).unwrap();
        assert_eq!(c.check_allocation(Decimal::new(20_000, 0)).ok(), Some(()));
        // 10000 + 6000 of 20000 with 25 % reserved: the second trader's capital is past it.
        let e = parse_in(dir.path(), &format!("{fits}\n[limits]\nreserve_pct = \"25\"\n")).unwrap_err();
        assert_eq!((e.line, e.column), (19, 11), "{e}");
        assert!(e.message.contains("exceed 100%") && e.message.contains("\"b\""), "{e}");
        // A live account is checked at start, with the wallet's equity.
        let c = parse_in(dir.path(), &two).unwrap();
        let e = c.check_allocation(Decimal::new(12_000, 0)).unwrap_err();
        assert_eq!(e.line, 18, "{e}");
        let e = parse_in(dir.path(), &format!("{two}\n[limits]\nreserve_pct = \"100\"\n")).unwrap_err();
        assert!(e.message.contains("reserve_pct must be below 100"), "{e}");
        let paper_only = two.replacen("kind = \"paper\"", "kind = \"bybit\"\npaper_equity = \"1\"", 1);
        assert!(parse_in(dir.path(), &paper_only).unwrap_err().message.contains("paper_equity is for"));
    }

    #[test]
    fn llm_traders_are_named_by_their_file_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/llm/bybit-trader.toml");
        let llm = format!("[[trader]]\nid = \"llm-btc\"\nkind = \"llm\"\nfile = \"{}\"\n", example.display());
        let c = parse_in(dir.path(), &format!("{GOOD}\n{llm}")).unwrap();
        assert_eq!(c.traders[1].llm.as_deref().map(|t| t.id.as_str()), Some("llm-btc"));
        assert_eq!(c.traders[1].llm.as_deref().and_then(|t| t.overall_budget.as_ref()), None);
        // The config's overall budget replaces what the trader files say.
        let budgeted = format!("{GOOD}\n[llm_budget]\ntokens_per_day = 5000\nusd_per_day = \"2.5\"\n\n{llm}");
        let c = parse_in(dir.path(), &budgeted).unwrap();
        let budget = c.traders[1].llm.as_deref().and_then(|t| t.overall_budget.clone()).expect("the overall budget");
        assert_eq!((budget.tokens_per_day, budget.usd_per_day, budget.alert_pct), (5000, Decimal::new(25, 1), 80));
        let e = parse_in(dir.path(), &budgeted.replace("usd_per_day", "dollars")).unwrap_err();
        assert!(e.message.contains("unknown field") && e.line == 15, "{e}");
        let cases: &[(&str, &str, usize, &str)] = &[
            ("file = ", "strategy = \"s.js\"\nfile = ", 16, "strategy of an LLM trader is set in its trader file"),
            ("id = \"llm-btc\"", "id = \"other\"", 16, "has no trader \"other\""),
            ("kind = \"llm\"", "kind = \"python\"", 15, "unknown trader kind"),
            ("file = ", "nofile = ", 16, "unknown field"),
        ];
        for (from, to, line, needle) in cases {
            let text = format!("{GOOD}\n{}", llm.replacen(from, to, 1));
            let e = parse_in(dir.path(), &text).expect_err(to);
            assert!(e.to_string().contains(needle), "{to}: {e}");
            assert_eq!(e.line, *line, "{to}: {e}");
        }
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, "[[trader]]\nid = \"x\"\nkind = \"llm\"\n").unwrap();
        let text = format!("{GOOD}\n[[trader]]\nid = \"x\"\nkind = \"llm\"\nfile = \"bad.toml\"\n");
        let e = parse_in(dir.path(), &text).unwrap_err();
        assert!(e.to_string().contains("bad.toml") && e.line == 16, "{e}");
    }
}

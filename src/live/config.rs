//! The live/paper config file (TOML): every field checked at start, every error
//! naming the file, line and column of the value at fault.
//!
//! ```toml
//! [venue]
//! kind = "bybit"                      # bybit | bybit-testnet | bybit-demo | paper
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
//! ```
//!
//! The full list of fields, with defaults, is in docs/live.md.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use rust_decimal::Decimal;
use serde::Deserialize;
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
    /// Market data from Bybit's public stream, orders filled by the simulated exchange.
    Paper,
}

impl VenueKind {
    pub fn name(self) -> &'static str {
        match self {
            VenueKind::Bybit => "bybit",
            VenueKind::BybitTestnet => "bybit-testnet",
            VenueKind::BybitDemo => "bybit-demo",
            VenueKind::Paper => "paper",
        }
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
    pub key_env: String,
    pub secret_env: String,
    pub recv_window_ms: u64,
    pub cancel_on_stop: bool,
    /// Paper trading only: the simulated exchange's fees and slippage.
    pub taker_fee_rate: Decimal,
    pub maker_fee_rate: Decimal,
    pub slippage_bps: Decimal,
    /// Maintenance margin rate of every instrument (Bybit's instruments-info does not give it).
    pub maintenance_margin_rate: Decimal,
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
}

#[derive(Clone, Debug)]
pub struct Trader {
    pub id: String,
    /// Relative paths are relative to the config file.
    pub strategy: PathBuf,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrader {
    id: Spanned<String>,
    strategy: Spanned<String>,
    #[serde(default)]
    params: Option<toml::Table>,
    symbols: Spanned<Vec<String>>,
    interval: Spanned<String>,
    capital: Spanned<String>,
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
        "hyperliquid" | "hyperliquid-testnet" => {
            return Err(at.at(
                &v.kind,
                "hyperliquid is not supported by this build yet (bybit, bybit-testnet, bybit-demo or paper)",
            ))
        }
        other => {
            return Err(
                at.at(&v.kind, format!("unknown venue kind {other:?} (bybit, bybit-testnet, bybit-demo or paper)"))
            )
        }
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
        key_env: env_name(v.key_env, "BYBIT_API_KEY")?,
        secret_env: env_name(v.secret_env, "BYBIT_API_SECRET")?,
        recv_window_ms,
        cancel_on_stop: v.cancel_on_stop.unwrap_or(false),
        taker_fee_rate: rate(&at, v.taker_fee_rate, "0.00055", Decimal::ONE)?,
        maker_fee_rate: rate(&at, v.maker_fee_rate, "0.0002", Decimal::ONE)?,
        slippage_bps: rate(&at, v.slippage_bps, "0", Decimal::new(10_000, 0))?,
        maintenance_margin_rate: rate(&at, v.maintenance_margin_rate, "0.005", Decimal::ONE)?,
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

    let limits = match raw.limits {
        None => Limits::default(),
        Some(l) => Limits {
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
        let strategy = base.join(t.strategy.get_ref());
        if !strategy.is_file() {
            return Err(at.at(&t.strategy, format!("no strategy file at {}", strategy.display())));
        }
        let symbols = t.symbols.get_ref();
        if symbols.is_empty() {
            return Err(at.at(&t.symbols, "symbols is empty"));
        }
        if let Some(bad) =
            symbols.iter().find(|s| s.is_empty() || !s.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
        {
            return Err(at.at(&t.symbols, format!("{bad:?} is not a symbol (uppercase, like BTCUSDT)")));
        }
        let interval_ms = match backtest::data::parse_interval(t.interval.get_ref()) {
            Ok(ms) if bybit::interval_label(ms).is_some() => ms,
            Ok(_) => {
                return Err(
                    at.at(&t.interval, "Bybit has no such kline interval (1m 3m 5m 15m 30m 1h 2h 4h 6h 12h 1d 1w)")
                )
            }
            Err(e) => return Err(at.at(&t.interval, e.to_string())),
        };
        let params = match t.params {
            None => serde_json::Value::Object(Default::default()),
            Some(table) => serde_json::to_value(table).map_err(|e| at.error(span.start, format!("params: {e}")))?,
        };
        traders.push(Trader {
            id: id.clone(),
            strategy,
            params,
            symbols: symbols.clone(),
            interval_ms,
            capital: positive(&at, &t.capital)?,
            leverage: match &t.leverage {
                None => Decimal::ONE,
                Some(l) => positive(&at, l)?,
            },
            seed: t.seed.unwrap_or(0),
        });
    }
    let telegram = raw.telegram.map(|t| telegram(&at, t)).transpose()?;
    Ok(Config { venue, journal, limits, traders, telegram })
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
}

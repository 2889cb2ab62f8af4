//! The server's settings: from the command line ([`Config::from_args`]) or built in code by tests.

use std::path::PathBuf;

use anyhow::{bail, Context};
use hyperliquid::{Address, Network, Wallet};
use rust_decimal::Decimal;

use crate::{faults::Faults, Args};

/// The key whose address the server accepts when no `--wallet` is given and
/// [`KEY_ENV`] is unset: the Python SDK's published signing-test key, so it is plainly no
/// one's money and every SDK example can sign with it.
pub const DEFAULT_PRIVATE_KEY: &str = "0x0123456789012345678901234567890123456789012345678901234567890123";
/// The environment variable that may hold the key whose address the server accepts.
pub const KEY_ENV: &str = "HYPERLIQUID_SERVER_PRIVATE_KEY";

/// Everything the server needs besides the klines.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen; port 0 picks one.
    pub listen: String,
    /// Market time per wall time.
    pub speed: f64,
    /// Starting USDC.
    pub balance: Decimal,
    /// The addresses whose signatures act for the one account (the first is the account, the
    /// others its API wallets); `/info` answers for any of them.
    pub wallets: Vec<Address>,
    /// Whose phantom agent (`source` "a" or "b") a signature must be over.
    pub network: Network,
    pub faults: Faults,
    pub seed: u64,
    pub log: Option<PathBuf>,
    /// Bars already closed at start.
    pub history: usize,
    /// The clock waits for the first `candle` subscription.
    pub hold: bool,
    /// Decimals of a size; prices get `6 − sz_decimals`.
    pub sz_decimals: u32,
    pub max_leverage: u32,
    /// The account's (cross) leverage at start.
    pub leverage: u32,
    pub taker_fee: Decimal,
    pub maker_fee: Decimal,
    /// Fraction of a bar's volume one order can fill in it; 0 means no limit.
    pub partial_above: Decimal,
    /// Maintenance margin rate (liquidation prices): half the initial margin at max leverage.
    pub maintenance_margin_rate: Decimal,
    /// The per-IP weight budget per minute (Hyperliquid's is 1200).
    pub ip_weight_per_minute: u32,
    /// A WebSocket connection that has sent no message for this long is closed (the venue's
    /// heartbeat rule, VENUES.md §3.8: 60 s; clients keep it open with `{"method": "ping"}`).
    pub ws_idle_timeout_ms: u64,
}

impl Default for Config {
    /// The command line's defaults, without faults or a log; the accepted wallet is the
    /// address of [`DEFAULT_PRIVATE_KEY`].
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:0".into(),
            speed: 60.0,
            balance: Decimal::from(10_000),
            wallets: vec![default_wallet()],
            network: Network::Testnet,
            faults: Faults::default(),
            seed: 0,
            log: None,
            history: 0,
            hold: false,
            sz_decimals: 5,
            max_leverage: 50,
            leverage: 20,
            // Hyperliquid's base tier: 0.045 % taker, 0.015 % maker.
            taker_fee: Decimal::new(45, 5),
            maker_fee: Decimal::new(15, 5),
            partial_above: Decimal::new(25, 2),
            maintenance_margin_rate: Decimal::new(1, 2),
            ip_weight_per_minute: 1200,
            ws_idle_timeout_ms: 60_000,
        }
    }
}

/// The address of [`DEFAULT_PRIVATE_KEY`].
pub fn default_wallet() -> Address {
    // The constant is a valid key (the unit tests sign with it); no fallible path is left.
    Wallet::from_hex(DEFAULT_PRIVATE_KEY).map(|w| w.address()).unwrap_or_default()
}

impl Config {
    /// The settings of `quantfold venue-sim hyperliquid`.
    ///
    /// # Errors
    /// A value out of range, a bad address or key, or a bad fault spec; the message names it.
    pub fn from_args(args: &Args) -> anyhow::Result<Config> {
        let balance: Decimal =
            args.balance.trim().parse().with_context(|| format!("--balance {:?} is not a number", args.balance))?;
        let mut wallets = Vec::new();
        for text in &args.wallet {
            wallets.push(Address::parse(text.trim()).with_context(|| format!("--wallet {text:?}"))?);
        }
        if wallets.is_empty() {
            wallets.push(match std::env::var(KEY_ENV) {
                Ok(key) => Wallet::from_hex(key.trim()).with_context(|| format!("${KEY_ENV}"))?.address(),
                Err(_) => default_wallet(),
            });
        }
        let network = match args.network.as_str() {
            "testnet" => Network::Testnet,
            "mainnet" => Network::Mainnet,
            other => bail!("--network must be testnet or mainnet, not {other:?}"),
        };
        let faults = match &args.faults {
            Some(spec) => Faults::parse(spec).context("--faults")?,
            None => Faults::default(),
        };
        let config = Config {
            listen: args.listen.clone(),
            speed: args.speed,
            balance,
            wallets,
            network,
            faults,
            seed: args.seed,
            log: args.log.clone(),
            history: args.history,
            hold: args.hold,
            sz_decimals: args.sz_decimals,
            max_leverage: args.max_leverage,
            leverage: args.leverage,
            partial_above: args.partial_above,
            ip_weight_per_minute: args.ip_weight_per_minute,
            ..Config::default()
        };
        config.check()?;
        Ok(config)
    }

    /// Refuses settings the server cannot run with.
    ///
    /// # Errors
    /// The first bad setting, by its flag name.
    pub fn check(&self) -> anyhow::Result<()> {
        if !(self.speed.is_finite() && self.speed > 0.0) {
            bail!("--speed must be a positive number, not {}", self.speed);
        }
        if self.balance <= Decimal::ZERO {
            bail!("--balance must be positive, not {}", self.balance);
        }
        if self.sz_decimals > hyperliquid::wire::MAX_DECIMALS_PERP {
            bail!("--sz-decimals must be at most 6, not {}", self.sz_decimals);
        }
        if self.leverage == 0 || self.leverage > self.max_leverage {
            bail!("--leverage must be from 1 to --max-leverage {}, not {}", self.max_leverage, self.leverage);
        }
        for (name, value) in [
            ("--partial-above", self.partial_above),
            ("taker fee", self.taker_fee),
            ("maker fee", self.maker_fee),
            ("maintenance margin rate", self.maintenance_margin_rate),
        ] {
            if value < Decimal::ZERO {
                bail!("{name} must not be negative, not {value}");
            }
        }
        if self.wallets.is_empty() {
            bail!("at least one wallet address must be accepted");
        }
        if self.ip_weight_per_minute == 0 {
            bail!("the IP weight budget must be positive");
        }
        if self.ws_idle_timeout_ms == 0 {
            bail!("the WebSocket idle timeout must be positive");
        }
        Ok(())
    }

    /// The account's address (the first wallet).
    pub fn account(&self) -> Address {
        self.wallets[0]
    }
}

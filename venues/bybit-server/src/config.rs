//! The server's settings: from the command line ([`Config::from_args`]) or built in code by tests.

use std::path::PathBuf;

use anyhow::{bail, Context};
use rust_decimal::Decimal;

use crate::{faults::Faults, Args};

/// The key accepted when none is configured.
pub const DEFAULT_API_KEY: &str = "qf-local-key";
/// The secret of [`DEFAULT_API_KEY`] (unless `BYBIT_SERVER_API_SECRET` says otherwise).
pub const DEFAULT_API_SECRET: &str = "qf-local-secret";
/// The environment variable that may hold the secret.
pub const SECRET_ENV: &str = "BYBIT_SERVER_API_SECRET";

/// Everything the server needs besides the klines.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen; port 0 picks one.
    pub listen: String,
    /// Market time per wall time.
    pub speed: f64,
    /// Starting USDT.
    pub balance: Decimal,
    pub api_key: String,
    pub api_secret: String,
    pub faults: Faults,
    pub seed: u64,
    pub log: Option<PathBuf>,
    /// Bars already closed at start.
    pub history: usize,
    /// The clock waits for the first public kline subscription.
    pub hold: bool,
    pub tick: Decimal,
    pub qty_step: Decimal,
    pub min_qty: Decimal,
    pub min_notional: Decimal,
    pub max_leverage: Decimal,
    pub taker_fee: Decimal,
    pub maker_fee: Decimal,
    /// The account's leverage at start.
    pub leverage: Decimal,
    /// Fraction of a bar's volume one order can fill in it; 0 means no limit.
    pub partial_above: Decimal,
    /// Maintenance margin rate (liquidation prices): Bybit's first risk tier for BTCUSDT.
    pub maintenance_margin_rate: Decimal,
}

impl Default for Config {
    /// The command line's defaults, without faults or a log.
    fn default() -> Config {
        Config {
            listen: "127.0.0.1:0".into(),
            speed: 60.0,
            balance: Decimal::from(10_000),
            api_key: DEFAULT_API_KEY.into(),
            api_secret: DEFAULT_API_SECRET.into(),
            faults: Faults::default(),
            seed: 0,
            log: None,
            history: 0,
            hold: false,
            tick: Decimal::new(1, 1),
            qty_step: Decimal::new(1, 3),
            min_qty: Decimal::new(1, 3),
            min_notional: Decimal::from(5),
            max_leverage: Decimal::ONE_HUNDRED,
            taker_fee: Decimal::new(55, 5),
            maker_fee: Decimal::new(2, 4),
            leverage: Decimal::TEN,
            partial_above: Decimal::new(25, 2),
            maintenance_margin_rate: Decimal::new(5, 3),
        }
    }
}

impl Config {
    /// The settings of `quantfold venue-sim bybit`.
    ///
    /// # Errors
    /// A value out of range or a bad fault spec; the message names it.
    pub fn from_args(args: &Args) -> anyhow::Result<Config> {
        let balance: Decimal =
            args.balance.trim().parse().with_context(|| format!("--balance {:?} is not a number", args.balance))?;
        let api_secret = match &args.api_secret {
            Some(secret) => secret.clone(),
            None => std::env::var(SECRET_ENV).unwrap_or_else(|_| DEFAULT_API_SECRET.to_owned()),
        };
        let faults = match &args.faults {
            Some(spec) => Faults::parse(spec).context("--faults")?,
            None => Faults::default(),
        };
        let config = Config {
            listen: args.listen.clone(),
            speed: args.speed,
            balance,
            api_key: args.api_key.clone().unwrap_or_else(|| DEFAULT_API_KEY.to_owned()),
            api_secret,
            faults,
            seed: args.seed,
            log: args.log.clone(),
            history: args.history,
            hold: args.hold,
            tick: args.tick,
            qty_step: args.qty_step,
            min_qty: args.min_qty,
            min_notional: args.min_notional,
            max_leverage: args.max_leverage,
            taker_fee: args.taker_fee,
            maker_fee: args.maker_fee,
            leverage: args.leverage,
            partial_above: args.partial_above,
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
        let positive = [
            ("--balance", self.balance),
            ("--tick", self.tick),
            ("--qty-step", self.qty_step),
            ("--min-qty", self.min_qty),
            ("--max-leverage", self.max_leverage),
            ("--leverage", self.leverage),
        ];
        for (name, value) in positive {
            if value <= Decimal::ZERO {
                bail!("{name} must be positive, not {value}");
            }
        }
        let fractions = [
            ("--min-notional", self.min_notional),
            ("--taker-fee", self.taker_fee),
            ("--maker-fee", self.maker_fee),
            ("--partial-above", self.partial_above),
        ];
        for (name, value) in fractions {
            if value < Decimal::ZERO {
                bail!("{name} must not be negative, not {value}");
            }
        }
        if self.leverage > self.max_leverage {
            bail!("--leverage {} is above --max-leverage {}", self.leverage, self.max_leverage);
        }
        if self.api_key.is_empty() || self.api_secret.is_empty() {
            bail!("the API key and secret must not be empty");
        }
        Ok(())
    }
}

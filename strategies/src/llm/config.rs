//! An LLM trader's configuration: the `[[trader]]` tables of a trader file (TOML), resolved
//! into one self-contained [`TraderConfig`] (template and schema text read in) that is
//! journaled whole by `LlmTraderLoaded`, so replay rebuilds the decider from the journal.
//!
//! Everything is checked here, before anything is journaled: a bad file is refused at start
//! with its path and, where the TOML parser knows it, its line.

use std::path::{Path, PathBuf};

use journal::hash::{self, Hash};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Which wire protocol a model speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Openai,
    Anthropic,
}

/// One model of the chain. The key is named by its environment variable only: the value is
/// read by the shell when it calls, never journaled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub provider: Provider,
    pub base_url: String,
    pub model: String,
    pub key_env: String,
    #[serde(default)]
    pub temperature: Option<f64>,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Lower is preferred: the chain is tried in priority order.
    pub priority: u32,
    /// The limit on one call, retries included in the client's own count.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Prices in USD per million tokens, for the dollar budget (0: free, e.g. a local server).
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub usd_per_million_input: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub usd_per_million_output: Option<Decimal>,
    /// This model's own daily token budget: past it the chain falls back to the next model.
    #[serde(default)]
    pub tokens_per_day: Option<u64>,
}

fn default_max_tokens() -> u32 {
    1024
}

fn default_timeout_ms() -> u64 {
    60_000
}

/// The pre-trade risk rules (nof0's validator, VENUES.md §6.3).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskConfig {
    pub min_confidence: u32,
    #[serde(with = "rust_decimal::serde::str")]
    pub min_risk_reward: Decimal,
    pub max_positions: usize,
    #[serde(with = "rust_decimal::serde::str")]
    pub max_position_size_usd: Decimal,
    /// Margin in use (positions, resting orders and the new entry) over equity, in percent.
    #[serde(with = "rust_decimal::serde::str")]
    pub max_margin_use_pct: Decimal,
    /// Leverage caps: symbols in `major_coins`, and every other symbol.
    pub leverage_major_max: u32,
    pub leverage_alt_max: u32,
    pub major_coins: Vec<String>,
    pub allow_pyramiding: bool,
    pub allow_hedging: bool,
}

impl Default for RiskConfig {
    fn default() -> RiskConfig {
        RiskConfig {
            min_confidence: 75,
            min_risk_reward: Decimal::new(3, 0),
            max_positions: 4,
            max_position_size_usd: Decimal::new(5_000, 0),
            max_margin_use_pct: Decimal::new(50, 0),
            leverage_major_max: 20,
            leverage_alt_max: 10,
            major_coins: vec!["BTCUSDT".to_owned(), "ETHUSDT".to_owned()],
            allow_pyramiding: false,
            allow_hedging: false,
        }
    }
}

/// How an entry goes to the venue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryStyle {
    /// A market order, immediate or cancel.
    MarketIoc,
    /// A limit order at the decision's `entry_price`.
    Limit,
}

/// Per event-time UTC day (0 or absent: no limit).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    pub tokens_per_day: u64,
    #[serde(with = "rust_decimal::serde::str")]
    pub usd_per_day: Decimal,
    /// A notification when this share of either budget is used.
    pub alert_pct: u32,
    /// Consecutive failures of the active model before the chain falls back.
    pub fallback_after_failures: u32,
    /// Consecutive successes of a fallback model before the chain returns to the primary.
    pub return_after_successes: u32,
}

impl Default for BudgetConfig {
    fn default() -> BudgetConfig {
        BudgetConfig {
            tokens_per_day: 0,
            usd_per_day: Decimal::ZERO,
            alert_pct: 80,
            fallback_after_failures: 2,
            return_after_successes: 3,
        }
    }
}

/// The budget of every LLM trader of a run together, per event-time UTC day (0: no limit):
/// a trader file's top-level `[overall_budget]`, or a live config's `[llm_budget]`. Journaled
/// in each trader's configuration; the worker counts it from the journaled answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OverallBudget {
    pub tokens_per_day: u64,
    #[serde(with = "rust_decimal::serde::str")]
    pub usd_per_day: Decimal,
    /// One notification a day when this share of either budget is used.
    pub alert_pct: u32,
}

impl Default for OverallBudget {
    fn default() -> OverallBudget {
        OverallBudget { tokens_per_day: 0, usd_per_day: Decimal::ZERO, alert_pct: 80 }
    }
}

/// One `[[trader]]` table as written (paths relative to the file).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TraderToml {
    id: String,
    kind: String,
    template: PathBuf,
    #[serde(default)]
    schema: Option<PathBuf>,
    prompt_version: String,
    symbols: Vec<String>,
    interval: String,
    #[serde(default)]
    decision_interval: Option<String>,
    #[serde(default = "default_klines")]
    klines: usize,
    #[serde(default)]
    stale_after: Option<String>,
    #[serde(default)]
    cache_ttl: Option<String>,
    capital: toml::Value,
    #[serde(default)]
    leverage: Option<u32>,
    #[serde(default = "default_entry")]
    entry: EntryStyle,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    max_slippage_bps: Option<Decimal>,
    #[serde(default)]
    risk: RiskConfig,
    #[serde(default)]
    budget: BudgetConfig,
    model: Vec<ModelConfig>,
}

fn default_klines() -> usize {
    50
}

fn default_entry() -> EntryStyle {
    EntryStyle::MarketIoc
}

#[derive(Debug, Deserialize)]
struct FileToml {
    trader: Vec<TraderToml>,
    #[serde(default)]
    overall_budget: Option<OverallBudget>,
}

/// A resolved LLM trader: what `LlmTraderLoaded` journals (as JSON) and the decider runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TraderConfig {
    pub id: String,
    /// The template's file name, as the prompt's template id.
    pub template_id: String,
    pub template: String,
    pub prompt_version: String,
    /// The decision's JSON Schema.
    pub schema: Json,
    pub symbols: Vec<String>,
    pub interval_ms: i64,
    pub decision_interval_ms: i64,
    pub klines: usize,
    /// Market data older than this at a decision is stale: the cycle is skipped.
    pub stale_after_ms: i64,
    /// A prompt digest answered within this much event time reuses that answer (0: never).
    pub cache_ttl_ms: i64,
    #[serde(with = "rust_decimal::serde::str")]
    pub capital: Decimal,
    /// The account leverage the ledger holds margin at (the highest cap by default).
    pub leverage: u32,
    pub entry: EntryStyle,
    /// Slippage cap of market entries, in basis points of the last close: the entry goes out
    /// as an IOC limit at the close ± the cap, rounded to the tick toward the close (so it
    /// never pays more than the cap). Absent: a market order, whatever it fills at.
    #[serde(default, with = "rust_decimal::serde::str_option", skip_serializing_if = "Option::is_none")]
    pub max_slippage_bps: Option<Decimal>,
    pub risk: RiskConfig,
    pub budget: BudgetConfig,
    /// In priority order (lowest first).
    pub models: Vec<ModelConfig>,
    /// The budget of all LLM traders together (the same in every trader of a run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overall_budget: Option<OverallBudget>,
}

/// A trader file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    pub path: PathBuf,
    pub message: String,
}

impl TraderConfig {
    /// The JSON that `LlmTraderLoaded` journals, and its blake3.
    pub fn to_journal(&self) -> (Json, Hash) {
        let json = serde_json::to_value(self).unwrap_or(Json::Null);
        let hash = hash::content(&json.to_string());
        (json, hash)
    }

    /// Reads a journaled configuration back.
    ///
    /// # Errors
    /// The JSON is not a configuration of this build, or fails [`TraderConfig::check`].
    pub fn from_journal(json: &Json) -> Result<TraderConfig, String> {
        let config: TraderConfig = serde_json::from_value(json.clone()).map_err(|e| e.to_string())?;
        config.check()?;
        Ok(config)
    }

    /// The rules a configuration must keep, wherever it came from.
    ///
    /// # Errors
    /// The first rule broken, as a sentence.
    pub fn check(&self) -> Result<(), String> {
        check_version(&self.template, &self.prompt_version)?;
        if self.symbols.is_empty() {
            return Err("symbols is empty".into());
        }
        if self.models.is_empty() {
            return Err("no [[trader.model]]".into());
        }
        if self.interval_ms <= 0 || self.decision_interval_ms < self.interval_ms {
            return Err("decision_interval must be at least the kline interval".into());
        }
        if self.capital <= Decimal::ZERO {
            return Err(format!("capital must be positive, not {}", self.capital));
        }
        if self.klines < 2 {
            return Err("klines must be at least 2".into());
        }
        if let Some(bps) = self.max_slippage_bps {
            if bps <= Decimal::ZERO || bps >= Decimal::from(10_000) {
                return Err(format!("max_slippage_bps must be between 0 and 10000 (exclusive), not {bps}"));
            }
            if self.entry != EntryStyle::MarketIoc {
                return Err("max_slippage_bps caps market entries: it needs entry = \"market_ioc\"".into());
            }
        }
        for m in &self.models {
            if !m.key_env.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || m.key_env.is_empty() {
                return Err(format!("key_env {:?} is not an environment variable name", m.key_env));
            }
            if m.max_tokens == 0 {
                return Err(format!("model {}: max_tokens must be positive", m.model));
            }
        }
        jsonschema::validator_for(&self.schema).map_err(|e| format!("the decision schema does not compile: {e}"))?;
        Ok(())
    }
}

/// The template's first line must be `Version: X` with X the configured prompt version: a
/// template edited without bumping its version (or the other way round) is refused at start.
///
/// # Errors
/// What the first line says instead.
pub fn check_version(template: &str, version: &str) -> Result<(), String> {
    let first = template.lines().next().unwrap_or("").trim();
    match first.strip_prefix("Version:") {
        Some(v) if v.trim() == version => Ok(()),
        Some(v) => Err(format!("line 1: the template says Version: {}, the config prompt_version {version}", v.trim())),
        None => Err(format!("line 1: the template must begin with `Version: {version}`, not {first:?}")),
    }
}

/// Parses "15m", "1h", "1d", "90s" or "0" into milliseconds.
pub fn parse_duration_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if text == "0" {
        return Some(0);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = text.split_at(split);
    let n: i64 = n.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms).filter(|ms| *ms > 0)
}

/// Reads a trader file and resolves its LLM traders (`kind = "llm"`), in file order.
///
/// # Errors
/// The file or a file it names cannot be read or does not parse (with the line, where the
/// TOML parser gives one), or a trader breaks a rule.
pub fn load(path: &Path) -> Result<Vec<TraderConfig>, ConfigError> {
    let err = |p: &Path, m: String| ConfigError { path: p.to_owned(), message: m };
    let text = std::fs::read_to_string(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let file: FileToml = toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1));
        let at = line.map_or(String::new(), |l| format!("line {l}: "));
        err(path, format!("{at}{}", e.message()))
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut traders = Vec::new();
    for t in file.trader {
        if t.kind != "llm" {
            return Err(err(path, format!("trader {}: kind {:?} is not supported here (llm)", t.id, t.kind)));
        }
        let mut config = resolve(t, dir).map_err(|(p, m)| err(p.as_deref().unwrap_or(path), m))?;
        config.overall_budget.clone_from(&file.overall_budget);
        traders.push(config);
    }
    if traders.is_empty() {
        return Err(err(path, "no [[trader]] with kind = \"llm\"".into()));
    }
    Ok(traders)
}

fn resolve(t: TraderToml, dir: &Path) -> Result<TraderConfig, (Option<PathBuf>, String)> {
    let id = t.id.clone();
    let bad = |m: String| (None, format!("trader {id}: {m}"));
    let template_path = dir.join(&t.template);
    let template = std::fs::read_to_string(&template_path)
        .map_err(|e| (Some(template_path.clone()), format!("cannot read the template: {e}")))?;
    check_version(&template, &t.prompt_version).map_err(|m| (Some(template_path.clone()), m))?;
    let schema = match &t.schema {
        None => default_schema(),
        Some(p) => {
            let p = dir.join(p);
            let text =
                std::fs::read_to_string(&p).map_err(|e| (Some(p.clone()), format!("cannot read the schema: {e}")))?;
            serde_json::from_str(&text).map_err(|e| (Some(p.clone()), format!("line {}: not JSON: {e}", e.line())))?
        }
    };
    let interval_ms = parse_duration_ms(&t.interval).ok_or_else(|| bad(format!("bad interval {:?}", t.interval)))?;
    let duration = |field: &str, v: &Option<String>, default: i64| match v {
        None => Ok(default),
        Some(s) => parse_duration_ms(s).ok_or_else(|| bad(format!("bad {field} {s:?}"))),
    };
    let decision_interval_ms = duration("decision_interval", &t.decision_interval, interval_ms)?;
    let stale_after_ms = duration("stale_after", &t.stale_after, 2 * interval_ms)?;
    let cache_ttl_ms = duration("cache_ttl", &t.cache_ttl, 0)?;
    let capital = match &t.capital {
        toml::Value::Integer(i) => Decimal::from(*i),
        toml::Value::String(s) => s.parse::<Decimal>().map_err(|e| bad(format!("capital {s:?}: {e}")))?,
        toml::Value::Float(f) => Decimal::try_from(*f).map_err(|e| bad(format!("capital {f}: {e}")))?,
        other => return Err(bad(format!("capital must be a number, not {other}"))),
    };
    let mut models = t.model;
    // A stable sort: equal priorities keep file order.
    models.sort_by_key(|m| m.priority);
    let leverage = t.leverage.unwrap_or(t.risk.leverage_major_max.max(t.risk.leverage_alt_max)).max(1);
    let template_id = t.template.file_name().map_or_else(String::new, |f| f.to_string_lossy().into_owned());
    let config = TraderConfig {
        id: t.id,
        template_id,
        template,
        prompt_version: t.prompt_version,
        schema,
        symbols: t.symbols,
        interval_ms,
        decision_interval_ms,
        klines: t.klines,
        stale_after_ms,
        cache_ttl_ms,
        capital,
        leverage,
        entry: t.entry,
        max_slippage_bps: t.max_slippage_bps,
        risk: t.risk,
        budget: t.budget,
        models,
        overall_budget: None,
    };
    config.check().map_err(bad)?;
    Ok(config)
}

/// nof0's decision schema (`go/schemas/decision_output.json`): every field required, no others.
pub fn default_schema() -> Json {
    let number = serde_json::json!({"type": "number", "minimum": 0});
    serde_json::json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "additionalProperties": false,
        "required": [
            "signal", "symbol", "leverage", "position_size_usd", "entry_price", "stop_loss",
            "take_profit", "risk_usd", "confidence", "invalidation_condition", "reasoning"
        ],
        "properties": {
            "signal": {"type": "string", "enum": ["buy_to_enter", "sell_to_enter", "hold", "close"]},
            "symbol": {"type": "string", "minLength": 1},
            "leverage": {"type": "integer", "minimum": 0},
            "position_size_usd": number,
            "entry_price": number,
            "stop_loss": number,
            "take_profit": number,
            "risk_usd": number,
            "confidence": {"type": "integer", "minimum": 0, "maximum": 100},
            "invalidation_condition": {"type": "string"},
            "reasoning": {"type": "string"}
        }
    })
}

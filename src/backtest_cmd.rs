//! `quantfold backtest`: run a strategy over historical klines, write reports,
//! or sweep a parameter grid.

use std::{
    io::IsTerminal,
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Mutex,
};

use anyhow::{bail, Context};
use backtest::{
    report::{self, Summary},
    run::{self, Config},
};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use indexmap::IndexMap;
use rust_decimal::Decimal;
use serde_json::{Map, Value as Json};
use sim::Intrabar;

use crate::staging::Staged;

/// The strategy and data a bare `quantfold backtest` runs.
pub const DEFAULT_STRATEGY: &str = "strategies/sma_cross.js";
pub const DEFAULT_DATA: &str = "fixtures/klines/coinbase_BTCUSD_1h_2017-07_2019-10.csv";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An LLM trader file (TOML, `[[trader]]` tables with `kind = "llm"`; see examples/llm/):
    /// runs those traders instead of a JavaScript strategy, calling their models over HTTP.
    #[arg(long)]
    pub trader: Option<PathBuf>,
    /// With --trader: answer every prompt digest this journal has answered from it (no call).
    #[arg(long, requires = "trader")]
    pub llm_cache: Option<PathBuf>,
    /// The strategy (JavaScript).
    #[arg(long, default_value = DEFAULT_STRATEGY)]
    pub strategy: PathBuf,
    /// Kline files (CSV `open_time_ms,open,high,low,close,volume`, Binance 12-column CSV, or Parquet); one symbol each.
    #[arg(long, num_args = 1.., default_value = DEFAULT_DATA)]
    pub data: Vec<PathBuf>,
    /// The symbol of the data (one file only; default: from the file name, e.g. binance_BTCUSDT_1h_... → BTCUSDT).
    #[arg(long)]
    pub symbol: Option<String>,
    /// The bar interval the data must have (1m, 5m, 1h, 4h, 1d, ...); default: inferred.
    #[arg(long)]
    pub interval: Option<String>,
    /// First bar to trade: 2018-01-01, 2018-01-01T12:00:00Z or epoch milliseconds.
    #[arg(long)]
    pub from: Option<String>,
    /// Last bar to trade (same forms as --from).
    #[arg(long)]
    pub to: Option<String>,
    /// Starting capital in the quote currency.
    #[arg(long, default_value = "10000")]
    pub cash: Decimal,
    /// The trader's leverage (capped by each instrument's maximum).
    #[arg(long, default_value = "1")]
    pub leverage: Decimal,
    /// Taker fee in basis points of the notional (market, stop and gap fills).
    #[arg(long, default_value = "10")]
    pub fee_taker_bps: Decimal,
    /// Maker fee in basis points of the notional (resting limit fills).
    #[arg(long, default_value = "2")]
    pub fee_maker_bps: Decimal,
    /// Price slippage of market and stop fills, against the taker.
    #[arg(long, default_value = "0")]
    pub slippage_bps: Decimal,
    /// When one bar could fill both a stop and a take-profit: adverse (stop first) or favorable.
    #[arg(long, default_value = "adverse")]
    pub intrabar: String,
    /// Strategy parameters as a JSON object, overlaid on the strategy's `params`.
    #[arg(long)]
    pub params: Option<String>,
    /// External data series for st_on_data: NAME=FILE.csv with header time_ms,value (repeatable).
    #[arg(long, value_parser = name_and_path)]
    pub external: Vec<(String, PathBuf)>,
    /// Funding rates: SYMBOL=FILE.csv with header time_ms,rate (repeatable).
    #[arg(long, value_parser = name_and_path)]
    pub funding: Vec<(String, PathBuf)>,
    /// Instrument rules per symbol, a TOML file of [SYMBOL] tables (see README); other symbols get the defaults.
    #[arg(long)]
    pub instruments: Option<PathBuf>,
    /// Seed of the strategy's Math.random.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where to write the reports (default: runs/<strategy>-<UTC time>/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Journal every event of the run here (a new directory).
    #[arg(long)]
    pub journal: Option<PathBuf>,
    /// table: a summary table; json: the summary as JSON on stdout (nothing else).
    #[arg(long, default_value = "table")]
    pub format: String,
    /// Sweep parameters: fast=5..20:5,slow=20..60:10 runs every combination in parallel.
    #[arg(long)]
    pub grid: Option<String>,
    /// The summary metric that orders the sweep table (descending; max_drawdown_pct ascending).
    #[arg(long, default_value = "sharpe")]
    pub sort: String,
    /// With --grid: run the sweep on `quantfold worker`s through this NATS JetStream server
    /// (nats://host:4222) instead of on this machine's threads; the same table and sweep.csv.
    #[arg(long, requires = "grid")]
    pub nats: Option<String>,
    /// With --journal: copy every record of the journal, once it is durable, to this NATS
    /// JetStream server (nats://host:4222); `quantfold journal restore` rebuilds it from there.
    #[arg(long, requires = "journal")]
    pub mirror: Option<String>,
    /// The journal's name on the mirror (default: the journal directory's name).
    #[arg(long, requires = "mirror")]
    pub journal_id: Option<String>,
}

fn name_and_path(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok((name.to_owned(), PathBuf::from(path))),
        _ => Err(format!("{text:?}: expected NAME=FILE")),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !matches!(args.format.as_str(), "table" | "json") {
        bail!("--format must be table or json, not {:?}", args.format);
    }
    let mut config = config(&args)?;
    if let Some(file) = &args.trader {
        config.llm_traders = strategies::llm::config::load(file)?;
        let total: Decimal = config.llm_traders.iter().map(|t| t.capital).sum();
        if total > config.cash {
            bail!(
                "{}: the traders' capital ({total}) exceeds the account's --cash ({}): allocations over 100%",
                file.display(),
                config.cash
            );
        }
        // The traders are the run: no JavaScript strategy beside them.
        config.strategy_file = PathBuf::new();
        if args.grid.is_some() {
            bail!("--grid does not apply to --trader runs");
        }
    } else {
        precheck_strategy(&config.strategy_file)?;
    }
    if let Some(grid) = &args.grid {
        return sweep(&args, &config, grid);
    }
    let out = args.out.clone().unwrap_or_else(|| default_out(&config));
    // Reports and journal are written under temporary names and renamed into place on
    // success: a failed run leaves neither (see `staging`).
    if let Some(journal) = &config.journal {
        if std::fs::read_dir(journal).is_ok_and(|mut d| d.next().is_some()) {
            return Err(journal::StoreError::AlreadyExists(journal.clone()).into());
        }
    }
    // Connected before the run: a mirror that is down fails the command before it starts.
    let mirror = match (&args.mirror, &config.journal) {
        (Some(url), Some(journal)) => {
            Some(crate::mirror_cmd::Shipper::connect(url, journal, args.journal_id.as_deref())?)
        }
        _ => None,
    };
    let out_staged = Staged::new(&out)?;
    let journal_staged = config.journal.as_deref().map(Staged::new).transpose()?;
    if let Some(staged) = &journal_staged {
        // `run` refuses a journal directory that exists and is not empty: give it a fresh one.
        std::fs::remove_dir(staged.path()).ok();
        config.journal = Some(staged.path().to_owned());
    }
    let mut models = crate::llm_port::HttpModels::new(args.seed)?;
    if let Some(cache) = &args.llm_cache {
        models = models.with_cache(cache)?;
    }
    let outcome = match run_staged(&config, &out_staged, &mut models) {
        Ok(outcome) => outcome,
        Err(e) => {
            let mut names = vec![out.display().to_string()];
            names.extend(journal_staged.as_ref().map(|j| j.target().display().to_string()));
            anyhow::bail!("{e:#} (the run failed: nothing was written to {})", names.join(" or "));
        }
    };
    let out = out_staged.commit()?;
    let journal = match journal_staged {
        Some(staged) => Some(staged.commit()?),
        None => None,
    };
    if args.format == "json" {
        say!("{}", serde_json::to_string_pretty(&outcome.summary)?);
    } else {
        say!("{}", summary_table(&outcome.summary));
    }
    eprintln!("reports: {} ({} files); open {}", out.display(), outcome.files, out.join("report.html").display());
    if let (Some(path), Some(events)) = (&journal, outcome.events) {
        eprintln!("journal: {} ({events} events)", path.display());
    }
    if let (Some(mut mirror), Some(path)) = (mirror, journal) {
        // The run's journal is durable once committed: all of it goes now.
        mirror.ship_all(&path)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What a run that succeeded leaves for the terminal.
struct Done {
    summary: Summary,
    /// The journal's event count, when journaled.
    events: Option<u64>,
    /// Report files written.
    files: usize,
}

/// One run, with its reports written into the staged output directory.
fn run_staged(config: &Config, out: &Staged, models: &mut crate::llm_port::HttpModels) -> anyhow::Result<Done> {
    let mut config = config.clone();
    // The per-bar tables are written as the run goes, the rest after it.
    config.tables = Some(out.path().to_owned());
    let progress = progress_bar();
    let outcome =
        run::run_with_llm(&config, models, &mut |bars| progress.set_position(bars)).map_err(anyhow::Error::from)?;
    progress.finish_and_clear();
    let summary = report::summary(&outcome.record);
    let written = report::write_all(&outcome.record, &summary, out.path())
        .with_context(|| format!("failed to write reports to {}", out.target().display()))?;
    let files = written.len() + outcome.tables.len();
    Ok(Done { summary, events: outcome.journal.map(|(_, events)| events), files })
}

/// A strategy that does not compile fails the command with FILE:LINE:COLUMN
/// before any data is read (inside a run it would only be journaled).
fn precheck_strategy(file: &Path) -> anyhow::Result<()> {
    let source =
        std::fs::read_to_string(file).with_context(|| format!("failed to read the strategy {}", file.display()))?;
    let name = file.display().to_string();
    match strategies::sandbox::Sandbox::load(&name, &source, strategies::sandbox::SandboxConfig::default()) {
        Ok(sandbox) => match sandbox.missing_heartbeat() {
            Some(message) => bail!("{message}"),
            None => Ok(()),
        },
        Err(e) => bail!("{e}"),
    }
}

fn config(args: &Args) -> anyhow::Result<Config> {
    let strategy = locate(&args.strategy, DEFAULT_STRATEGY);
    let data = args.data.iter().map(|d| locate(d, DEFAULT_DATA)).collect();
    let mut config = Config::new(strategy, data);
    config.symbol = args.symbol.clone();
    config.interval = args.interval.clone();
    config.from_ms = args.from.as_deref().map(parse_time).transpose().context("--from")?;
    config.to_ms = args.to.as_deref().map(parse_time).transpose().context("--to")?;
    if args.cash <= Decimal::ZERO {
        bail!("--cash must be positive");
    }
    if args.leverage <= Decimal::ZERO {
        bail!("--leverage must be positive");
    }
    config.cash = args.cash;
    config.leverage = args.leverage;
    config.fee_taker_bps = args.fee_taker_bps;
    config.fee_maker_bps = args.fee_maker_bps;
    config.sim.slippage_bps = args.slippage_bps;
    config.sim.intrabar = match args.intrabar.as_str() {
        "adverse" => Intrabar::AdverseFirst,
        "favorable" | "favourable" => Intrabar::FavorableFirst,
        other => bail!("--intrabar must be adverse or favorable, not {other:?}"),
    };
    if let Some(text) = &args.params {
        let params: Json = serde_json::from_str(text).with_context(|| format!("--params is not JSON: {text}"))?;
        if !params.is_object() {
            bail!("--params must be a JSON object, like '{{\"fast\": 5}}'");
        }
        config.params = params;
    }
    if let Some(file) = &args.instruments {
        config.instruments = read_instruments(file, &config)?;
    }
    config.external = args.external.clone();
    config.funding = args.funding.clone();
    config.seed = args.seed;
    config.journal = args.journal.clone();
    Ok(config)
}

/// One `[SYMBOL]` table per instrument; every key optional, defaulting to
/// `backtest::run::default_instrument` (whose fees come from --fee-*-bps).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct InstrumentFile {
    tick_size: Option<Decimal>,
    qty_step: Option<Decimal>,
    min_qty: Option<Decimal>,
    max_leverage: Option<Decimal>,
    maintenance_margin_rate: Option<Decimal>,
    taker_fee_rate: Option<Decimal>,
    maker_fee_rate: Option<Decimal>,
}

fn read_instruments(
    file: &Path,
    config: &Config,
) -> anyhow::Result<std::collections::BTreeMap<String, journal::event::Instrument>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("failed to read {}", file.display()))?;
    let tables: std::collections::BTreeMap<String, InstrumentFile> = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: {}", file.display(), e.to_string().replace('\n', " ").trim().to_owned()))?;
    let mut out = std::collections::BTreeMap::new();
    for (symbol, t) in tables {
        let d = run::default_instrument(&symbol, config);
        let instrument = journal::event::Instrument {
            symbol: symbol.clone(),
            tick_size: t.tick_size.unwrap_or(d.tick_size),
            qty_step: t.qty_step.unwrap_or(d.qty_step),
            min_qty: t.min_qty.unwrap_or(d.min_qty),
            max_leverage: t.max_leverage.unwrap_or(d.max_leverage),
            maintenance_margin_rate: t.maintenance_margin_rate.unwrap_or(d.maintenance_margin_rate),
            taker_fee_rate: t.taker_fee_rate.unwrap_or(d.taker_fee_rate),
            maker_fee_rate: t.maker_fee_rate.unwrap_or(d.maker_fee_rate),
        };
        let positive = [instrument.tick_size, instrument.qty_step, instrument.max_leverage];
        if positive.iter().any(|v| *v <= Decimal::ZERO) || instrument.min_qty < Decimal::ZERO {
            bail!(
                "{}: [{symbol}]: tick_size, qty_step and max_leverage must be positive, min_qty not negative",
                file.display()
            );
        }
        out.insert(symbol, instrument);
    }
    Ok(out)
}

/// A default path that does not exist relative to the working directory is
/// looked up in the source tree, so `cargo run -- backtest` works from anywhere.
fn locate(path: &Path, default: &str) -> PathBuf {
    if path.exists() || path != Path::new(default) {
        return path.to_owned();
    }
    let bundled = Path::new(env!("CARGO_MANIFEST_DIR")).join(default);
    if bundled.exists() {
        bundled
    } else {
        path.to_owned()
    }
}

/// 2018-01-01, 2018-01-01T12:00:00Z (or without Z), or epoch milliseconds.
fn parse_time(text: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t.and_utc().timestamp_millis());
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc().timestamp_millis());
    }
    bail!("{text:?} is not a date (2018-01-01), a UTC time (2018-01-01T12:00:00Z) or epoch milliseconds")
}

fn default_out(config: &Config) -> PathBuf {
    // The wall clock only names the directory; it never reaches an event.
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    PathBuf::from("runs").join(format!("{}-{stamp}", run::trader_name(config)))
}

fn progress_bar() -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} bars ({per_sec}) {elapsed}")
            .expect("valid progress template"),
    );
    bar
}

fn summary_table(summary: &Summary) -> Table {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED).set_header(["metric", "value"]);
    for (key, v) in summary.fields() {
        let shown = match v {
            Json::Null => "-".to_owned(),
            Json::String(s) => s,
            Json::Number(n) => n
                .as_f64()
                .map_or_else(|| n.to_string(), |f| if f.fract() == 0.0 { n.to_string() } else { format!("{f:.3}") }),
            other => other.to_string(),
        };
        table.add_row([key, shown]);
    }
    table
}

/// `name=start..end:step` pairs, comma-separated.
fn parse_grid(text: &str) -> anyhow::Result<Vec<(String, Vec<Json>)>> {
    let mut axes = Vec::new();
    for part in text.split(',') {
        let (name, range) =
            part.split_once('=').with_context(|| format!("--grid: {part:?} is not name=start..end:step"))?;
        let (span, step) = range.split_once(':').unwrap_or((range, "1"));
        let (start, end) =
            span.split_once("..").with_context(|| format!("--grid: {range:?} is not start..end:step"))?;
        let (start, end, step): (Decimal, Decimal, Decimal) =
            (start.trim().parse()?, end.trim().parse()?, step.trim().parse()?);
        if step <= Decimal::ZERO || end < start {
            bail!("--grid: {part:?} needs start <= end and a positive step");
        }
        let mut values = Vec::new();
        let mut v = start;
        while v <= end {
            values.push(serde_json::from_str::<Json>(&v.normalize().to_string())?);
            v += step;
            if values.len() > 10_000 {
                bail!("--grid: {part:?} has more than 10000 values");
            }
        }
        axes.push((name.trim().to_owned(), values));
    }
    Ok(axes)
}

fn sweep(args: &Args, base: &Config, grid: &str) -> anyhow::Result<ExitCode> {
    let axes = parse_grid(grid)?;
    let mut combos: Vec<Map<String, Json>> = vec![base.params.as_object().cloned().unwrap_or_default()];
    for (name, values) in &axes {
        combos = combos
            .into_iter()
            .flat_map(|c| {
                values.iter().map(move |v| {
                    let mut c = c.clone();
                    c.insert(name.clone(), v.clone());
                    c
                })
            })
            .collect();
    }
    if base.journal.is_some() {
        bail!("--journal cannot be combined with --grid (one journal per run)");
    }
    let (results, ran_on) = match &args.nats {
        None => sweep_here(base, &combos),
        Some(url) => (sweep_on_workers(url, base, &combos)?, format!("workers through {url}")),
    };
    // Every run that failed, each once, in the grid's order.
    let mut rows = Vec::new();
    let mut failed = Vec::new();
    for (params, result) in combos.iter().zip(results) {
        match result {
            Ok(summary) => rows.push((params.clone(), summary)),
            Err(e) => failed.push(format!("run with params {}: {e:#}", Json::Object(params.clone()))),
        }
    }
    if !failed.is_empty() {
        bail!("{}", failed.join("\n"));
    }
    let ascending = args.sort == "max_drawdown_pct";
    rows.sort_by(|a, b| {
        let key = |r: &(Map<String, Json>, IndexMap<String, Json>)| {
            r.1.get(&args.sort).and_then(Json::as_f64).unwrap_or(f64::NEG_INFINITY)
        };
        let order = key(a).partial_cmp(&key(b)).unwrap_or(std::cmp::Ordering::Equal);
        if ascending {
            order
        } else {
            order.reverse()
        }
    });
    let out = args.out.clone().unwrap_or_else(|| default_out(base));
    std::fs::create_dir_all(&out).with_context(|| format!("failed to create {}", out.display()))?;
    // In the summary's order (see `Summary`).
    let metrics = [
        "total_return_pct",
        "sharpe",
        "sortino",
        "max_drawdown_pct",
        "calmar",
        "trades",
        "win_rate_pct",
        "profit_factor",
        "final_equity",
    ];
    let names: Vec<&String> = axes.iter().map(|(n, _)| n).collect();
    let mut csv = String::new();
    csv.push_str(&names.iter().map(|n| n.as_str()).chain(metrics).collect::<Vec<_>>().join(","));
    csv.push('\n');
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_header(names.iter().map(|n| n.to_string()).chain(metrics.iter().map(|m| m.to_string())));
    for (params, summary) in &rows {
        let cells: Vec<String> = names
            .iter()
            .map(|n| params.get(*n).map_or_else(String::new, Json::to_string))
            .chain(metrics.iter().map(|m| match summary.get(*m) {
                Some(Json::Number(n)) => n.as_f64().map_or_else(
                    || n.to_string(),
                    |f| if f.fract() == 0.0 { n.to_string() } else { format!("{f:.4}") },
                ),
                Some(Json::String(s)) => s.clone(),
                _ => String::new(),
            }))
            .collect();
        csv.push_str(&cells.join(","));
        csv.push('\n');
        table.add_row(cells);
    }
    std::fs::write(out.join("sweep.csv"), csv).context("failed to write sweep.csv")?;
    if args.format == "json" {
        // Serialized from the maps themselves: `json!` would sort the summary's keys.
        #[derive(serde::Serialize)]
        struct Row<'a> {
            params: &'a Map<String, Json>,
            summary: &'a IndexMap<String, Json>,
        }
        let list: Vec<Row> = rows.iter().map(|(params, summary)| Row { params, summary }).collect();
        say!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        say!("{table}");
    }
    eprintln!("{} runs on {ran_on}; sorted by {}; wrote {}", rows.len(), args.sort, out.join("sweep.csv").display());
    Ok(ExitCode::SUCCESS)
}

/// A run's summary fields (`Summary::fields()`), or why it failed.
type RunFields = anyhow::Result<IndexMap<String, Json>>;

/// Each combination's summary fields, in the grid's order, on this machine's threads.
fn sweep_here(base: &Config, combos: &[Map<String, Json>]) -> (Vec<RunFields>, String) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(combos.len());
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<(usize, RunFields)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let index = {
                    let mut n = next.lock().expect("sweep counter");
                    let i = *n;
                    *n += 1;
                    i
                };
                let Some(params) = combos.get(index) else { break };
                let mut config = base.clone();
                config.params = Json::Object(params.clone());
                let result = run::run(&config, &mut |_| {})
                    .map(|o| report::summary(&o.record).fields())
                    .map_err(anyhow::Error::from);
                results.lock().expect("sweep results").push((index, result));
            });
        }
    });
    let mut results = results.into_inner().expect("sweep results");
    results.sort_by_key(|(i, _)| *i);
    (results.into_iter().map(|(_, r)| r).collect(), format!("{threads} threads"))
}

/// The same, as jobs for `quantfold worker`s (see the `scaleout` crate), with a progress bar.
fn sweep_on_workers(url: &str, base: &Config, combos: &[Map<String, Json>]) -> anyhow::Result<Vec<RunFields>> {
    let params: Vec<Json> = combos.iter().map(|c| Json::Object(c.clone())).collect();
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(params.len() as u64).with_style(
            indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} runs ({per_sec}) {elapsed}")
                .expect("valid progress template"),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let outcomes =
        runtime.block_on(scaleout::director::run(url, base, &params, &mut |done| bar.set_position(done as u64)))?;
    bar.finish_and_clear();
    Ok(outcomes.into_iter().map(|o| o.map(|done| done.summary).map_err(anyhow::Error::msg)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text;

    #[test]
    fn grid_expands_inclusive_ranges() {
        let axes = parse_grid("fast=5..20:5,slow=20..60:10").unwrap();
        assert_eq!(axes[0].1, [5, 10, 15, 20].map(Json::from).to_vec());
        assert_eq!(axes[1].1.len(), 5);
        assert!(parse_grid("fast=5..1:1").is_err());
        assert!(parse_grid("fast").is_err());
        assert_eq!(parse_grid("k=0.5..1:0.25").unwrap()[0].1, vec![Json::from(0.5), Json::from(0.75), Json::from(1)]);
    }

    #[test]
    fn times_parse_in_every_documented_form() {
        assert_eq!(parse_time("2018-01-01").unwrap(), 1_514_764_800_000);
        assert_eq!(parse_time("2018-01-01T00:00:00Z").unwrap(), 1_514_764_800_000);
        assert_eq!(parse_time("2018-01-01T00:00:00").unwrap(), 1_514_764_800_000);
        assert_eq!(parse_time("1514764800000").unwrap(), 1_514_764_800_000);
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn time_text_is_utc() {
        assert_eq!(text::time(1_514_764_800_000), "2018-01-01T00:00:00Z");
    }
}

//! quantfold: an event-sourced crypto trading engine.
//!
//! # Layout
//! - `main.rs`: the command line (clap) and error reporting.
//! - `backtest_cmd.rs`: `backtest` (single runs and parameter sweeps).
//! - `journal_cmd.rs`: `journal inspect|verify|export|import|recover`.
//! - `mirror_cmd.rs`: `backtest --journal --mirror` and `journal restore` (journals on NATS JetStream).
//! - `replay_cmd.rs`: `replay verify|rebuild|diff`.
//! - `strategy_cmd.rs`: `strategy check`.
//! - `serve_cmd.rs`: `serve` (the read-only API, metrics and dashboard over closed journals).
//! - `bench.rs`: `bench journal`, `bench sandbox`; `bench_serve.rs`: `bench serve`; `bench_llm.rs`: `bench llm`;
//!   `bench_sweep.rs`: `bench sweep`.
//! - `live/`: `live` (trading live and on paper: config, driver, orders).
//! - `venue_sim_cmd.rs`: `venue-sim bybit` and `venue-sim hyperliquid` (the local venue servers); `llm-sim` is `llm_server::run`, `telegram-sim` `telegram_server::run`.
//! - `text.rs`: times and tables for people.
//! - `worker`: `scaleout::worker` (sweeps across processes on NATS JetStream; the Director is `backtest --grid --nats`).

/// `println!` that ends the process quietly when stdout is closed (`| head`)
/// instead of panicking on the broken pipe.
macro_rules! say {
    ($($arg:tt)*) => { $crate::text::print_line(&format!($($arg)*)) };
}

mod backtest_cmd;
mod bench;
mod bench_live;
mod bench_llm;
mod bench_replay;
mod bench_serve;
mod bench_sweep;
mod journal_cmd;
mod live;
mod llm_port;
mod mirror_cmd;
mod replay_cmd;
mod serve_cmd;
mod staging;
mod strategy_cmd;
mod text;
mod venue_sim_cmd;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// An event-sourced crypto trading engine: live trading, replay and backtest
/// fold the same journaled events through one state machine.
#[derive(Debug, Parser)]
#[command(name = "quantfold", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a strategy over historical klines and write reports (the default: sma_cross on bundled data).
    Backtest(Box<backtest_cmd::Args>),
    /// Trade live or on paper with the traders of a config until SIGINT/SIGTERM; resumes an existing journal.
    Live(Box<live::Args>),
    /// Look into, check, export, import and recover journals.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Re-derive a journal's decisions, rebuild its state, or compare two runs.
    #[command(subcommand)]
    Replay(ReplayCommand),
    /// Serve closed journals read-only: a REST API (nof0's endpoints), Prometheus metrics and a dashboard.
    Serve(Box<serve_cmd::Args>),
    /// Work with strategy files.
    #[command(subcommand)]
    Strategy(StrategyCommand),
    /// Make data.
    #[command(subcommand)]
    Data(DataCommand),
    /// Measure performance; prints JSON.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run a local venue server (for tests and demos: loopback, replaying a kline file).
    #[command(subcommand)]
    VenueSim(VenueSimCommand),
    /// Run a local LLM server speaking OpenAI Chat Completions and Anthropic Messages
    /// (loopback; a seeded model that decides from the prompt's numbers; scripted faults).
    LlmSim(Box<llm_server::Args>),
    /// Run a local Telegram Bot API server (loopback; getMe and sendMessage with Telegram's
    /// errors and flood limits; scripted faults; the messages at GET /sim/messages).
    TelegramSim(Box<telegram_server::Args>),
    /// Take backtest jobs of `backtest --grid … --nats URL` sweeps from a NATS JetStream
    /// server and publish their results, until SIGINT/SIGTERM.
    Worker {
        /// The server, e.g. nats://127.0.0.1:4222.
        #[arg(long)]
        nats: String,
        /// Jobs run at once (default: this machine's cores).
        #[arg(long)]
        jobs: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
enum VenueSimCommand {
    /// A Bybit v5 server (REST + WebSocket) that an official Bybit client works against.
    Bybit(Box<bybit_server::Args>),
    /// A Hyperliquid server (/info, /exchange, /ws) that the official Python SDK works against.
    Hyperliquid(Box<hyperliquid_server::Args>),
}

#[derive(Debug, Subcommand)]
enum ReplayCommand {
    /// Check the chain and snapshots, then re-run every decider on the journal's inputs and compare.
    Verify {
        /// The journal directory.
        #[arg(long)]
        journal: PathBuf,
        /// Use this file instead of the journaled code for a trader: TRADER=FILE.js (repeatable).
        #[arg(long, value_parser = trader_and_file)]
        strategy: Vec<(String, PathBuf)>,
        /// Use this prompt template instead of the journaled one for an LLM trader: TRADER=FILE.tmpl
        /// (repeatable); the divergence, if any, is the first prompt the new template changes.
        #[arg(long, value_parser = trader_and_file)]
        template: Vec<(String, PathBuf)>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// State only: balances, positions, open orders and PnL per trader, from the latest snapshot plus the tail.
    Rebuild {
        /// The journal directory.
        #[arg(long)]
        journal: PathBuf,
        /// Rebuild as of this sequence number (default: the end).
        #[arg(long)]
        to: Option<u64>,
        /// Print the state as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Where two journals of the same inputs part: first differing decision, counts, PnL of each.
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn trader_and_file(text: &str) -> Result<(String, PathBuf), String> {
    match text.split_once('=') {
        Some((trader, file)) if !trader.is_empty() && !file.is_empty() => Ok((trader.to_owned(), PathBuf::from(file))),
        _ => Err(format!("{text:?}: expected TRADER=FILE.js (the trader of a backtest is the strategy's file stem)")),
    }
}

#[derive(Debug, Subcommand)]
enum StrategyCommand {
    /// Compile a strategy; list its lifecycle functions, parameters and what st_init returns.
    Check {
        /// The JavaScript file.
        file: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum JournalCommand {
    /// Print events as a table, or one JSON object per line.
    Inspect {
        /// The journal directory.
        dir: PathBuf,
        /// The first sequence number to show.
        #[arg(long, default_value_t = 0)]
        from: u64,
        /// Show at most this many events.
        #[arg(long)]
        limit: Option<u64>,
        /// Only events of this trader ("-" for shared events such as market data).
        #[arg(long)]
        trader: Option<String>,
        /// One JSON object per line (the export form) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Check the hash chain, dense sequence numbers and every snapshot digest.
    Verify {
        /// The journal directory.
        dir: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the journal as JSON Lines (lossless; see docs/journal-format.md).
    Export {
        /// The journal directory.
        dir: PathBuf,
        /// The file to write.
        #[arg(long)]
        jsonl: PathBuf,
    },
    /// Append the events of a JSON Lines export to a journal (created if absent), re-chained.
    Import {
        /// The journal directory.
        dir: PathBuf,
        /// The file to read.
        #[arg(long)]
        jsonl: PathBuf,
    },
    /// Rebuild a journal from its mirror on a NATS JetStream server (see `backtest --mirror`).
    Restore {
        /// The server, e.g. nats://127.0.0.1:4222.
        #[arg(long)]
        nats: String,
        /// The journal's id on the mirror (by default its directory's name when it was mirrored).
        #[arg(long)]
        journal_id: String,
        /// Where to write the journal (must not exist or be empty).
        #[arg(long)]
        to: PathBuf,
    },
    /// Write a new journal holding every event of a damaged one up to the damage (from the segment files, then sled).
    Recover {
        /// The damaged journal directory (only read).
        dir: PathBuf,
        /// Where to write the recovered journal (must not exist or be empty).
        #[arg(long)]
        to: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Write a seeded geometric random walk as kline CSV (open_time_ms,open,high,low,close,volume).
    Synth {
        /// Number of bars.
        #[arg(long, default_value_t = 100_000)]
        bars: usize,
        /// Bar interval (1m, 5m, 1h, ...).
        #[arg(long, default_value = "1m")]
        interval: String,
        /// Seed: the same seed writes the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Open time of the first bar, in epoch milliseconds.
        #[arg(long, default_value_t = 1_640_995_200_000)]
        start_ms: i64,
        /// The file to write (name it exchange_SYMBOL_interval.csv to give it a symbol).
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Append, read, fold and rebuild rates of the journal against raw sled.
    Journal {
        /// Events to write.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
        /// Where to put the scratch journals (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Tick-to-wire latency of `quantfold live` against the local Bybit server (1 and 100
    /// strategies), and the time from a restart to trading.
    Live {
        /// Traders per configuration (comma-separated).
        #[arg(long, default_value = "1,100", value_delimiter = ',')]
        strategies: Vec<usize>,
        /// Bars, one order each, per configuration.
        #[arg(long, default_value_t = 300)]
        bars: usize,
        /// Where to put the scratch data and journals (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The venue whose local server the session trades against.
        #[arg(long, value_enum, default_value = "bybit")]
        venue: bench_live::BenchVenue,
    },
    /// The control plane: a replica's fold rate against the ledger's, and each endpoint's latency on loopback.
    Serve {
        /// Seeded 1-minute bars of the journaled backtest served.
        #[arg(long, default_value_t = 100_000)]
        bars: usize,
        /// Requests per endpoint, one at a time.
        #[arg(long, default_value_t = 200)]
        requests: usize,
        /// Where to put the scratch data and journal (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The open-loop load: requests a second over all endpoints.
        #[arg(long, default_value_t = 1000)]
        rate: u32,
        /// How long the open-loop load runs, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Records a second appended to the served journal during the load.
        #[arg(long, default_value_t = 1000)]
        append_rate: u32,
    },
    /// An LLM trader's per-decision overhead without the network (its model answering
    /// in-process), against a bar that decides nothing; then many LLM traders in one process
    /// against the local model server over HTTP.
    Llm {
        /// Decisions timed for the overhead.
        #[arg(long, default_value_t = 10_000)]
        decisions: usize,
        /// LLM traders in the run against the local model server.
        #[arg(long, default_value_t = 100)]
        traders: usize,
        /// Bars of that run; every trader decides on each.
        #[arg(long, default_value_t = 20)]
        rounds: usize,
        /// Where to put the scratch journals (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// A sweep on 1 and 2 NATS workers against the local sweep (jobs/s, overhead per job), and
    /// the journal mirror's records/s against a backtest's append rate. Needs nats-server on PATH.
    Sweep {
        /// The grid (as `backtest --grid`).
        #[arg(long, default_value = "fast=5..20:5,slow=30..60:10")]
        grid: String,
        /// Seeded 1-minute bars per run.
        #[arg(long, default_value_t = 100_000)]
        bars: usize,
        /// Where to put the scratch data, journals and the server's store (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Heartbeats/s of sma_cross through the runtime against bare QuickJS calls; 1000 strategies' latency.
    Sandbox {
        /// Heartbeats for the rate measurement.
        #[arg(long, default_value_t = strategies::bench::DEFAULT_HEARTBEATS)]
        heartbeats: u64,
        /// Strategies in one worker for the latency measurement.
        #[arg(long, default_value_t = strategies::bench::DEFAULT_STRATEGIES)]
        strategies: usize,
        /// Instead: drive this strategy alone through the runtime for `--heartbeats` seeded bars
        /// and print the time (run it under `valgrind --tool=callgrind` for a per-bar profile).
        #[arg(long)]
        strategy: Option<PathBuf>,
    },
    /// sma_cross on seeded 1-minute bars, the whole `quantfold backtest` process from CSV to reports,
    /// in its three forms (declared, every bar, everyday every bar); with --reference,
    /// backtesting.py and NautilusTrader on the same bars in the same run.
    Backtest {
        /// Bars to synthesize (comma-separated for several sizes).
        #[arg(long, default_value = "1000000", value_delimiter = ',')]
        bars: Vec<usize>,
        /// Where to put the data and reports (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// A Python with backtesting.py and nautilus_trader installed (see docs/performance.md):
        /// runs bench/reference/*.py on the first size's bars.
        #[arg(long)]
        reference: Option<PathBuf>,
        /// Taker and maker fee in basis points, for every tool.
        #[arg(long, default_value_t = 0)]
        fee_bps: u32,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("QUANTFOLD_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        // Colours for a terminal; a log file gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("quantfold: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn data_synth(
    bars: usize,
    interval: &str,
    seed: u64,
    start_ms: i64,
    out: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    use anyhow::Context;
    let interval_ms = backtest::data::parse_interval(interval)?;
    let file = std::fs::File::create(out).with_context(|| format!("failed to create {}", out.display()))?;
    backtest::data::synth(bars, interval_ms, seed, start_ms, std::io::BufWriter::new(file))
        .with_context(|| format!("failed to write {}", out.display()))?;
    eprintln!("wrote {bars} bars to {}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Backtest(args) => backtest_cmd::run(*args),
        Command::Journal(command) => match command {
            JournalCommand::Inspect { dir, from, limit, trader, json } => {
                journal_cmd::inspect(&dir, from, limit, trader.as_deref(), json)
            }
            JournalCommand::Verify { dir, json } => journal_cmd::verify(&dir, json),
            JournalCommand::Export { dir, jsonl } => journal_cmd::export(&dir, &jsonl),
            JournalCommand::Import { dir, jsonl } => journal_cmd::import(&dir, &jsonl),
            JournalCommand::Recover { dir, to } => journal_cmd::recover(&dir, &to),
            JournalCommand::Restore { nats, journal_id, to } => mirror_cmd::restore(&nats, &journal_id, &to),
        },
        Command::Strategy(StrategyCommand::Check { file }) => strategy_cmd::check(&file),
        Command::Replay(command) => match command {
            ReplayCommand::Verify { journal, mut strategy, template, json } => {
                // A trader runs a strategy or a template, never both: one list of overrides.
                strategy.extend(template);
                replay_cmd::verify(&journal, &strategy, json)
            }
            ReplayCommand::Rebuild { journal, to, json } => replay_cmd::rebuild(&journal, to, json),
            ReplayCommand::Diff { a, b, json } => replay_cmd::diff(&a, &b, json),
        },
        Command::Bench(BenchCommand::Journal { events, dir }) => bench::journal(events, dir.as_deref()),
        Command::Bench(BenchCommand::Backtest { bars, dir, reference, fee_bps }) => {
            bench::backtest(&bench::BacktestBench {
                sizes: &bars,
                dir: dir.as_deref(),
                reference: reference.as_deref(),
                fee_bps,
            })
        }
        Command::Bench(BenchCommand::Live { strategies, bars, dir, venue }) => {
            bench_live::live(&bench_live::LiveBench { venue, strategies: &strategies, bars, dir: dir.as_deref() })
        }
        Command::Bench(BenchCommand::Serve { bars, requests, dir, rate, seconds, append_rate }) => {
            bench_serve::serve(bars, requests, dir.as_deref(), bench_serve::Load { rate, seconds, append_rate })
        }
        Command::Bench(BenchCommand::Llm { decisions, traders, rounds, dir }) => {
            bench_llm::llm(&bench_llm::LlmBench { decisions, traders, rounds, dir: dir.as_deref() })
        }
        Command::Bench(BenchCommand::Sweep { grid, bars, dir }) => {
            bench_sweep::sweep(&bench_sweep::SweepBench { grid: &grid, bars, dir: dir.as_deref() })
        }
        Command::Bench(BenchCommand::Sandbox { heartbeats, strategy: Some(file), .. }) => {
            bench::heartbeats(&file, heartbeats)
        }
        Command::Bench(BenchCommand::Sandbox { heartbeats, strategies, strategy: None }) => {
            say!("{}", serde_json::to_string_pretty(&strategies::bench::sandbox(heartbeats, strategies))?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Live(args) => live::run(&args),
        Command::Serve(args) => serve_cmd::run(&args),
        Command::VenueSim(VenueSimCommand::Bybit(args)) => venue_sim_cmd::bybit(&args),
        Command::VenueSim(VenueSimCommand::Hyperliquid(args)) => venue_sim_cmd::hyperliquid(&args),
        Command::LlmSim(args) => llm_server::run(&args).map(|()| ExitCode::SUCCESS),
        Command::TelegramSim(args) => telegram_server::run(&args).map(|()| ExitCode::SUCCESS),
        Command::Worker { nats, jobs } => {
            let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
            runtime.block_on(scaleout::worker::run(&nats, jobs))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Data(DataCommand::Synth { bars, interval, seed, start_ms, out }) => {
            data_synth(bars, &interval, seed, start_ms, &out)
        }
    }
}

//! The sandbox's public data types: the host trait, hooks, configuration, outputs and errors.

use std::collections::BTreeMap;

use serde_json::Value as Json;

/// What the sandbox needs from whoever runs it (the worker, backed by the folded ledger state).
pub trait Host {
    /// Event time of the current call in ms: `Date.now()` and `new Date()` return this (never the
    /// wall clock).
    fn now_ms(&self) -> i64;
    /// `ctx.api.<method>(...args)` and `ctx.api.bybit.call(method, ...args)`: JSON in, JSON out;
    /// `Err(msg)` is thrown into JS as an `Error`.
    fn api(&mut self, method: &str, args: Vec<Json>) -> Result<Json, String>;
    /// Whether the call in progress must end as if its wall-clock backstop had fired (replay:
    /// the journal says the call timed out here). Asked at every interrupt check of a call;
    /// once it says yes, the call ends there with [`SandboxError::Timeout`].
    fn timed_out(&mut self) -> bool {
        false
    }
    /// A read of `ctx.api` answered as [`Rows`], which the sandbox builds straight into QuickJS
    /// values (no JSON on the way: for reads a strategy makes on every bar). `None` sends the
    /// call to [`Host::api`]. The value the strategy sees must be the one `api` would give:
    /// `Rows::to_json` is that answer.
    fn api_rows(&mut self, _method: &str, _args: &[Json]) -> Option<Result<Rows, String>> {
        None
    }
}

/// One value of a [`Rows`] answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Field {
    /// A JS number; a non-finite one is `null`, as in JSON.
    Num(f64),
    Str(String),
    Bool(bool),
    Null,
}

/// A `ctx.api` answer of objects with fixed keys: `keys` in the order JS sees them (sorted, as
/// a JSON object's keys are here), one `Vec<Field>` per object. `single`: the answer is the
/// one object, not an array of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows {
    pub keys: &'static [&'static str],
    pub rows: Vec<Vec<Field>>,
    pub single: bool,
}

impl Rows {
    /// The same answer as JSON (what [`Host::api`] gives for it).
    pub fn to_json(&self) -> Json {
        let object = |row: &Vec<Field>| {
            let map = self.keys.iter().zip(row).map(|(key, field)| {
                let value = match field {
                    Field::Num(x) => Json::from(*x),
                    Field::Str(s) => Json::String(s.clone()),
                    Field::Bool(b) => Json::Bool(*b),
                    Field::Null => Json::Null,
                };
                ((*key).to_owned(), value)
            });
            Json::Object(map.collect())
        };
        match (self.single, self.rows.first()) {
            (true, Some(row)) => object(row),
            (true, None) => Json::Null,
            (false, _) => Json::Array(self.rows.iter().map(object).collect()),
        }
    }
}

/// A strategy lifecycle hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Hook {
    Init,
    Heartbeat,
    Exit,
    OnOrder,
    OnFill,
    OnData,
    WorkerInit,
    WorkerHeartbeat,
    WorkerExit,
}

impl Hook {
    /// Every hook, in declaration order.
    pub const ALL: [Hook; 9] = [
        Hook::Init,
        Hook::Heartbeat,
        Hook::Exit,
        Hook::OnOrder,
        Hook::OnFill,
        Hook::OnData,
        Hook::WorkerInit,
        Hook::WorkerHeartbeat,
        Hook::WorkerExit,
    ];

    /// The JS function name (`st_init`, ...).
    pub fn js_name(self) -> &'static str {
        match self {
            Hook::Init => "st_init",
            Hook::Heartbeat => "st_heartbeat",
            Hook::Exit => "st_exit",
            Hook::OnOrder => "st_on_order",
            Hook::OnFill => "st_on_fill",
            Hook::OnData => "st_on_data",
            Hook::WorkerInit => "st_worker_init",
            Hook::WorkerHeartbeat => "st_worker_heartbeat",
            Hook::WorkerExit => "st_worker_exit",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// `ctx.strategy`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StrategyInfo {
    pub id: String,
    pub name: String,
    /// Overlaid on the strategy's declared `params` defaults (top-level keys win).
    pub params: Json,
}

/// Default fuel per call (interrupt-handler invocations); see the module docs for calibration.
pub const DEFAULT_CALL_FUEL: u64 = 500;
/// Default wall-clock backstop per call.
pub const DEFAULT_CALL_TIMEOUT_MS: u64 = 1_000;
/// Default runtime memory limit (a fresh sandbox uses well under 1 MiB).
pub const DEFAULT_MEMORY_LIMIT_BYTES: usize = 64 * 1024 * 1024;
/// Default QuickJS native stack limit (QuickJS's own default is 256 KiB; recursion past it is
/// a catchable `RangeError: Maximum call stack size exceeded`). Must stay well below the stack
/// of the thread running the sandbox.
pub const DEFAULT_MAX_STACK_BYTES: usize = 512 * 1024;

/// How to build a sandbox.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// Interrupt-handler invocations allowed per call (and for loading the source).
    pub call_fuel: u64,
    /// Wall-clock backstop per call, in ms.
    pub call_timeout_ms: u64,
    /// Runtime malloc limit, in bytes (0 = unlimited).
    pub memory_limit_bytes: usize,
    /// QuickJS native stack limit, in bytes.
    pub max_stack_bytes: usize,
    /// Seed of `Math.random`.
    pub seed: u64,
    pub strategy: StrategyInfo,
    /// The state map the strategy starts with (e.g. restored after a restart).
    pub initial_state: BTreeMap<String, Json>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            call_fuel: DEFAULT_CALL_FUEL,
            call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            max_stack_bytes: DEFAULT_MAX_STACK_BYTES,
            seed: 0,
            strategy: StrategyInfo::default(),
            initial_state: BTreeMap::new(),
        }
    }
}

/// Level of a `ctx.log.*` / `console.*` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

/// One buffered log line: the arguments joined with spaces (strings as-is, objects as JSON).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
}

/// The second argument of a hook call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HookArg<'a> {
    /// `undefined`.
    None,
    /// Any JSON value, converted to JS.
    Json(&'a Json),
    /// A bar, as `{symbol, interval, openTime, open, high, low, close, volume, closed}`: the same
    /// object the JSON form would give, built without the JSON detour (the heartbeat hot path).
    Tick(Tick<'a>),
}

/// The fields of a tick object (see [`HookArg::Tick`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tick<'a> {
    pub symbol: &'a str,
    pub interval: &'a str,
    pub open_time_ms: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
    pub closed: bool,
    /// Declared indicators' values on this bar (`tick.indicators`; absent when none are declared).
    pub indicators: &'a [TickIndicator<'a>],
}

/// One declared indicator's value on a tick: a number, or `{output: number, ...}` for a
/// multi-output indicator.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TickIndicator<'a> {
    pub name: &'a str,
    /// `None`: a single value, `values[0]`.
    pub outputs: Option<&'static [&'static str; 3]>,
    pub values: [f64; 3],
}

/// What one hook call produced.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallOutput {
    /// The hook's return value as JSON (`null` for `undefined`), e.g. st_init's
    /// `{symbols, interval, warmup}`; for an async hook, the value its promise resolved to.
    pub value: Json,
    /// `ctx.state` writes of this call (last write wins), already applied to the sandbox's state.
    pub state_changes: BTreeMap<String, Json>,
    pub logs: Vec<LogLine>,
    /// `ctx.notify.telegram(msg)` messages.
    pub notifications: Vec<String>,
    /// `ctx.record(name, number)` pairs, in call order.
    pub records: Vec<(String, f64)>,
}

/// Why loading or calling failed. Never a panic: every failure of the strategy is one of these.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SandboxError {
    /// The source does not parse.
    #[error("{file}:{line}:{column}: {message}")]
    Syntax { file: String, line: u32, column: u32, message: String },
    /// A static `import` (the sandbox has no file access, so no module can be imported).
    #[error("{file}: import of '{specifier}' refused: strategies cannot import modules")]
    ImportRefused { file: String, specifier: String },
    /// The strategy threw (or its promise rejected). `message` is `"TypeError: ..."` for
    /// errors, `"Uncaught <value>"` for other thrown values; `stack` has the `at fn (file:line:col)`
    /// frames (empty when the thrown value was not an Error).
    #[error("{message}\n{stack}")]
    Thrown { message: String, stack: String },
    /// The call used more than its fuel (deterministic).
    #[error("strategy ran out of fuel ({fuel} interrupt ticks)")]
    OutOfFuel { fuel: u64 },
    /// The call ran longer than the wall-clock backstop.
    #[error("strategy call timed out after {timeout_ms} ms")]
    Timeout { timeout_ms: u64 },
    /// The runtime hit its memory limit.
    #[error("strategy ran out of memory (limit {limit_bytes} bytes)")]
    OutOfMemory { limit_bytes: usize },
    /// An async hook's promise can never settle (it awaits something nothing will resolve).
    #[error("{hook}: the returned promise never settled (nothing left to run)")]
    Unsettled { hook: String },
    /// A value could not be converted to JSON (cyclic, too deep, or a throwing getter).
    #[error("cannot convert {what} to JSON: {message}")]
    Conversion { what: String, message: String },
    /// The sandbox was interrupted or ran out of memory earlier and must be reloaded.
    #[error("sandbox is poisoned by an earlier failure and must be reloaded")]
    Poisoned,
    /// An unexpected engine failure.
    #[error("QuickJS engine error: {0}")]
    Engine(String),
}

impl SandboxError {
    /// Failures after which the sandbox refuses further calls.
    pub fn poisons(&self) -> bool {
        matches!(self, SandboxError::OutOfFuel { .. } | SandboxError::Timeout { .. } | SandboxError::OutOfMemory { .. })
    }
}

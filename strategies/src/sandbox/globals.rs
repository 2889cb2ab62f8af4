//! What the sandbox installs into the JS world: the deterministic prelude (Date, Math.random,
//! timer stubs, console) and the `ctx` object handed to every hook. Built once per sandbox.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rquickjs::function::{Opt, Rest};
use rquickjs::{Coerced, Ctx, Function, Object, Persistent, Value};
use scoped_tls_hkt::scoped_thread_local;
use serde_json::Value as Json;

use super::convert::{display_arg, json_function, to_js, to_json};
use super::indicators::install_indicators;
use super::{Field, Host, LogLevel, LogLine, Rows, StrategyInfo};

scoped_thread_local!(
    /// The host of the call in progress on this thread, lent by `Sandbox::call`.
    static mut HOST: for<'a> &'a mut (dyn Host + 'a)
);

/// Run `f` with `host` reachable from the JS callbacks (`ctx.api.*`).
pub(crate) fn with_host<R>(host: &mut dyn Host, f: impl FnOnce() -> R) -> R {
    HOST.set(host, f)
}

/// Forward one API call to the host of the call in progress.
fn host_api(method: &str, args: Vec<Json>) -> Result<Json, String> {
    if !HOST.is_set() {
        return Err(format!("ctx.api.{method} is only available while a hook is running"));
    }
    HOST.with(|host| host.api(method, args))
}

/// The host's [`Rows`] answer to a read, if it gives one (see [`Host::api_rows`]).
fn host_rows(method: &str, args: &[Json]) -> Option<Result<Rows, String>> {
    if !HOST.is_set() {
        return None;
    }
    HOST.with(|host| host.api_rows(method, args))
}

/// Whether the host of the call in progress says the call has timed out (see [`Host::timed_out`]).
fn host_timed_out() -> bool {
    HOST.is_set() && HOST.with(|host| host.timed_out())
}

/// The methods of `ctx.api`, forwarded to `Host::api` under these very names.
pub const API_METHODS: &[&str] =
    &["placeOrder", "cancelOrder", "getPositions", "getOpenOrders", "getBalance", "getKlines", "getTicker"];

/// Mutable sandbox state shared with the JS callbacks (single-threaded: `Rc<RefCell<_>>`).
/// Never borrowed across a call back into JS.
pub(crate) struct Shared {
    /// Committed strategy state (what `ctx.state.get` sees, under `pending`).
    pub state: BTreeMap<String, Json>,
    /// Writes of the call in progress (last write wins); committed on success.
    pub pending: BTreeMap<String, Json>,
    pub logs: Vec<LogLine>,
    pub notifications: Vec<String>,
    pub records: Vec<(String, f64)>,
    /// Event time of the call in progress (0 while loading).
    pub now_ms: i64,
    pub rng: ChaCha8Rng,
}

pub(crate) type SharedRef = Rc<RefCell<Shared>>;

impl Shared {
    pub fn new(seed: u64, state: BTreeMap<String, Json>) -> Self {
        Shared {
            state,
            pending: BTreeMap::new(),
            logs: Vec::new(),
            notifications: Vec::new(),
            records: Vec::new(),
            now_ms: 0,
            rng: rng_from_seed(seed),
        }
    }

    fn push_log(&mut self, level: LogLevel, message: String) {
        self.logs.push(LogLine { level, message });
    }
}

/// `Math.random`'s generator: ChaCha8 keyed by the seed's little-endian bytes (rest zero).
/// Spelled out rather than `seed_from_u64` so the stream is fixed by this code alone.
pub(crate) fn rng_from_seed(seed: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    ChaCha8Rng::from_seed(key)
}

/// A draw in [0, 1) with 53 random bits (the top bits of one 64-bit output).
pub(crate) fn next_f64(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Which limit interrupted the JS code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trip {
    Fuel,
    Timeout,
}

/// Per-call limits, consulted by the runtime's interrupt handler. QuickJS calls that handler
/// once every 10 000 "interrupt ticks" (function calls and loop back-edges, in quickjs-ng's
/// `js_poll_interrupts`) and from inside long regular-expression matches; one invocation is one
/// unit of fuel. The count depends only on the code path, so running out of fuel is
/// reproducible on replay; the wall-clock deadline is a backstop for the rare native operation
/// that runs long between polls.
pub(crate) struct Limits {
    fuel_limit: Cell<u64>,
    used: Cell<u64>,
    deadline: Cell<Option<Instant>>,
    tripped: Cell<Option<Trip>>,
    jobs: Cell<u64>,
    /// Memory released when a limit trips, see [`Limits::set_ballast`].
    ballast: RefCell<Option<Persistent<rquickjs::String<'static>>>>,
}

/// Size of the ballast (added on top of the configured memory limit).
pub(crate) const BALLAST_BYTES: usize = 64 * 1024;

/// Promise jobs per unit of fuel (see [`Limits::charge_job`]); calibrated so that a job-bound
/// loop and a bytecode-bound loop burn fuel at a similar wall-clock rate.
pub(crate) const JOBS_PER_FUEL: u64 = 1_000;

impl Limits {
    pub fn new() -> Self {
        Limits {
            fuel_limit: Cell::new(u64::MAX),
            used: Cell::new(0),
            deadline: Cell::new(None),
            tripped: Cell::new(None),
            jobs: Cell::new(0),
            ballast: RefCell::new(None),
        }
    }

    /// Start a fresh budget.
    pub fn arm(&self, fuel: u64, timeout_ms: u64) {
        self.fuel_limit.set(fuel);
        self.used.set(0);
        self.jobs.set(0);
        self.tripped.set(None);
        self.deadline.set(Some(
            Instant::now()
                .checked_add(Duration::from_millis(timeout_ms))
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365)),
        ));
    }

    /// Hold a [`BALLAST_BYTES`] allocation inside the runtime, dropped the moment a limit trips.
    ///
    /// Why: QuickJS makes the interrupt error uncatchable by flagging the error *object*; when
    /// the heap is exhausted that object cannot be allocated, QuickJS throws `null` instead, and
    /// `try {} catch {}` in a strategy that keeps hitting its memory limit would swallow the
    /// interrupt over and over. Freeing the ballast first guarantees room for the error.
    pub fn set_ballast(&self, ballast: Persistent<rquickjs::String<'static>>) {
        *self.ballast.borrow_mut() = Some(ballast);
    }

    /// Drop the ballast (on a trip, and before the runtime is freed).
    pub fn release_ballast(&self) {
        let ballast = self.ballast.borrow_mut().take();
        drop(ballast);
    }

    fn trip(&self, trip: Trip) {
        self.tripped.set(Some(trip));
        self.release_ballast();
    }

    /// Stop counting (between calls nothing runs, but GC finalizers could).
    pub fn disarm(&self) {
        self.deadline.set(None);
    }

    pub fn tripped(&self) -> Option<Trip> {
        self.tripped.get()
    }

    pub fn used(&self) -> u64 {
        self.used.get()
    }

    /// Charge one executed promise job: every [`JOBS_PER_FUEL`] jobs cost one unit of fuel (a job
    /// is a short function call that barely moves QuickJS's tick counter, so an endless promise
    /// chain would otherwise only ever hit the wall-clock backstop).
    pub fn charge_job(&self) {
        let jobs = self.jobs.get() + 1;
        self.jobs.set(jobs);
        if jobs % JOBS_PER_FUEL == 0 {
            let used = self.used.get() + 1;
            self.used.set(used);
            if used > self.fuel_limit.get() && self.tripped.get().is_none() {
                self.trip(Trip::Fuel);
            }
        }
    }

    /// The interrupt handler: `true` interrupts the running JS with an uncatchable error.
    pub fn tick(&self) -> bool {
        if self.tripped.get().is_some() {
            return true;
        }
        let Some(deadline) = self.deadline.get() else {
            return false;
        };
        let used = self.used.get() + 1;
        self.used.set(used);
        if used > self.fuel_limit.get() {
            self.trip(Trip::Fuel);
            return true;
        }
        // The host's word (replay: the journaled timeout) ends the call exactly as the backstop does.
        if Instant::now() >= deadline || host_timed_out() {
            self.trip(Trip::Timeout);
            return true;
        }
        false
    }
}

const PRELUDE: &str = include_str!("prelude.js");

/// Install the deterministic globals: Date on event time, seeded Math.random, timer/network
/// stubs that throw, console into the log buffer.
pub(crate) fn install_prelude<'js>(ctx: &Ctx<'js>, shared: &SharedRef) -> rquickjs::Result<()> {
    let s = shared.clone();
    let now = Function::new(ctx.clone(), move || -> f64 { s.borrow().now_ms as f64 })?.with_name("now")?;
    let s = shared.clone();
    let random =
        Function::new(ctx.clone(), move || -> f64 { next_f64(&mut s.borrow_mut().rng) })?.with_name("random")?;
    let s = shared.clone();
    let log = Function::new(ctx.clone(), move |level: Coerced<String>, args: Rest<Value<'js>>| {
        let level = match level.0.as_str() {
            "debug" => LogLevel::Debug,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => LogLevel::Info,
        };
        let message = join_args(&args.0);
        s.borrow_mut().push_log(level, message);
    })?;
    let mut opts = rquickjs::context::EvalOptions::default();
    opts.global = true;
    opts.strict = true;
    opts.filename = Some("<quantfold-prelude>".into());
    let install: Function = ctx.eval_with_options(PRELUDE, opts)?;
    install.call::<_, ()>((now, random, log))
}

fn join_args(args: &[Value<'_>]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&display_arg(a));
    }
    out
}

/// `ctx.api.<method>`: the host's answer as a JS value. A [`Rows`] answer is built straight
/// into objects; JSON is converted. Either way the strategy gets a fresh value each call.
///
/// What is kept between calls, and why: QuickJS frees an object's shape, and the atoms of its
/// keys, with the last object that uses them, and a shape is found again only through its
/// parent. A strategy that reads its positions on every bar would otherwise intern every key
/// and build every shape again on every call (most of what `getPositions` cost). So each
/// method keeps its last JSON answer alive, and for rows one object per prefix of the keys
/// (`{k1}`, `{k1, k2}`, ...), as the tick builder does. Nothing reads them.
fn answer_function<'js>(ctx: &Ctx<'js>, method: &'static str) -> rquickjs::Result<Function<'js>> {
    let exemplar: RefCell<Option<Persistent<Value<'static>>>> = RefCell::new(None);
    let prefixes: RefCell<Option<KeyPrefixes>> = RefCell::new(None);
    Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<Value<'js>> {
        let mut json_args = Vec::with_capacity(args.0.len());
        for a in &args.0 {
            json_args.push(to_json(a).map_err(|e| e.throw(&ctx))?);
        }
        if let Some(answer) = host_rows(method, &json_args) {
            let rows = answer.map_err(|msg| rquickjs::Exception::throw_message(&ctx, &msg))?;
            let mut kept = prefixes.borrow_mut();
            if kept.as_ref().is_none_or(|(keys, _)| !std::ptr::eq(*keys, rows.keys)) {
                *kept = Some((rows.keys, key_prefixes(&ctx, rows.keys)?));
            }
            return rows_to_js(&ctx, &rows);
        }
        match host_api(method, json_args) {
            Ok(answer) => {
                let value = to_js(&ctx, &answer)?;
                if value.is_object() {
                    *exemplar.borrow_mut() = Some(Persistent::save(&ctx, value.clone()));
                }
                Ok(value)
            }
            Err(msg) => Err(rquickjs::Exception::throw_message(&ctx, &msg)),
        }
    })?
    .with_name(method)
}

/// The keys of a [`Rows`] answer and one object per prefix of them (see [`key_prefixes`]).
type KeyPrefixes = (&'static [&'static str], Vec<Persistent<Object<'static>>>);

/// One object per prefix of `keys`, to keep their shapes (and the keys' atoms) alive.
fn key_prefixes<'js>(ctx: &Ctx<'js>, keys: &[&str]) -> rquickjs::Result<Vec<Persistent<Object<'static>>>> {
    (1..=keys.len())
        .map(|n| {
            let object = Object::new(ctx.clone())?;
            for key in &keys[..n] {
                object.set(*key, 0)?;
            }
            Ok(Persistent::save(ctx, object))
        })
        .collect()
}

fn rows_to_js<'js>(ctx: &Ctx<'js>, rows: &Rows) -> rquickjs::Result<Value<'js>> {
    let object = |row: &[Field]| -> rquickjs::Result<Value<'js>> {
        let object = Object::new(ctx.clone())?;
        for (key, field) in rows.keys.iter().zip(row) {
            let value = match field {
                Field::Num(x) if x.is_finite() => Value::new_float(ctx.clone(), *x),
                Field::Num(_) | Field::Null => Value::new_null(ctx.clone()),
                Field::Str(s) => rquickjs::String::from_str(ctx.clone(), s)?.into_value(),
                Field::Bool(b) => Value::new_bool(ctx.clone(), *b),
            };
            object.set(*key, value)?;
        }
        Ok(object.into_value())
    };
    if rows.single {
        return match rows.rows.first() {
            Some(row) => object(row),
            None => Ok(Value::new_null(ctx.clone())),
        };
    }
    let array = rquickjs::Array::new(ctx.clone())?;
    for (i, row) in rows.rows.iter().enumerate() {
        array.set(i, object(row)?)?;
    }
    Ok(array.into_value())
}

/// Build the `ctx` object passed to every hook: `strategy`, `state`, `api`, `log`, `notify`,
/// `record`, `indicator`. Built once per sandbox; its functions reach the per-call data through
/// `shared` and the host through the scoped thread-local set by `Sandbox::call`.
pub(crate) fn build_ctx<'js>(
    ctx: &Ctx<'js>,
    shared: &SharedRef,
    info: &StrategyInfo,
    params: &Json,
) -> rquickjs::Result<Object<'js>> {
    let c = Object::new(ctx.clone())?;

    // ctx.strategy
    let strategy = Object::new(ctx.clone())?;
    strategy.set("id", info.id.as_str())?;
    strategy.set("name", info.name.as_str())?;
    strategy.set("params", to_js(ctx, params)?)?;
    c.set("strategy", strategy)?;

    // ctx.state
    let state = Object::new(ctx.clone())?;
    let s = shared.clone();
    state.set(
        "get",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, key: Coerced<String>, default: Opt<Value<'js>>| -> rquickjs::Result<Value<'js>> {
                let found = {
                    let sh = s.borrow();
                    sh.pending.get(&key.0).or_else(|| sh.state.get(&key.0)).cloned()
                };
                match found {
                    Some(j) => to_js(&ctx, &j),
                    None => Ok(default.0.unwrap_or_else(|| Value::new_undefined(ctx.clone()))),
                }
            },
        )?
        .with_name("get")?,
    )?;
    let s = shared.clone();
    state.set(
        "set",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, key: Coerced<String>, value: Opt<Value<'js>>| -> rquickjs::Result<()> {
                let j = match &value.0 {
                    Some(v) => to_json(v).map_err(|e| e.throw(&ctx))?,
                    None => Json::Null,
                };
                s.borrow_mut().pending.insert(key.0, j);
                Ok(())
            },
        )?
        .with_name("set")?,
    )?;
    let s = shared.clone();
    state.set(
        "batch",
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, values: Value<'js>| -> rquickjs::Result<()> {
            let Some(obj) = values.as_object().filter(|_| !values.is_array() && !values.is_function()) else {
                return Err(rquickjs::Exception::throw_type(
                    &ctx,
                    "ctx.state.batch expects an object {key: value, ...}",
                ));
            };
            // Convert everything first: a failing value leaves the state untouched.
            let mut converted = Vec::new();
            for prop in obj.props::<String, Value>() {
                let (k, v) = prop?;
                converted.push((k, to_json(&v).map_err(|e| e.throw(&ctx))?));
            }
            s.borrow_mut().pending.extend(converted);
            Ok(())
        })?
        .with_name("batch")?,
    )?;
    c.set("state", state)?;

    // ctx.api
    let api = Object::new(ctx.clone())?;
    for &method in API_METHODS {
        api.set(method, answer_function(ctx, method)?)?;
    }
    let bybit = Object::new(ctx.clone())?;
    bybit.set(
        "call",
        json_function(ctx, "call", |mut args| {
            if args.is_empty() {
                return Err("ctx.api.bybit.call(method, ...args): method is required".into());
            }
            match args.remove(0) {
                Json::String(method) => host_api(&method, args),
                other => Err(format!("ctx.api.bybit.call(method, ...args): method must be a string, got {other}")),
            }
        })?,
    )?;
    api.set("bybit", bybit)?;
    c.set("api", api)?;

    // ctx.log
    let log = Object::new(ctx.clone())?;
    for (name, level) in
        [("debug", LogLevel::Debug), ("info", LogLevel::Info), ("warn", LogLevel::Warn), ("error", LogLevel::Error)]
    {
        let s = shared.clone();
        log.set(
            name,
            Function::new(ctx.clone(), move |args: Rest<Value<'js>>| {
                let message = join_args(&args.0);
                s.borrow_mut().push_log(level, message);
            })?
            .with_name(name)?,
        )?;
    }
    c.set("log", log)?;

    // ctx.notify
    let notify = Object::new(ctx.clone())?;
    let s = shared.clone();
    notify.set(
        "telegram",
        Function::new(ctx.clone(), move |args: Rest<Value<'js>>| {
            let message = join_args(&args.0);
            s.borrow_mut().notifications.push(message);
        })?
        .with_name("telegram")?,
    )?;
    c.set("notify", notify)?;

    // ctx.record(name, number)
    let s = shared.clone();
    c.set(
        "record",
        Function::new(ctx.clone(), move |name: Coerced<String>, value: Coerced<f64>| {
            s.borrow_mut().records.push((name.0, value.0));
        })?
        .with_name("record")?,
    )?;

    // ctx.indicator: see indicators.rs
    let indicator = Object::new(ctx.clone())?;
    install_indicators(ctx, &indicator)?;
    c.set("indicator", indicator)?;

    Ok(c)
}

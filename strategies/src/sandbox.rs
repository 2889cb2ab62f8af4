//! The QuickJS strategy sandbox (rquickjs 0.14, i.e. quickjs-ng).
//!
//! One [`Sandbox`] holds one strategy: its own QuickJS runtime and context, the strategy's state
//! map, its seeded `Math.random` generator and the `ctx` object handed to every hook. The sandbox
//! knows nothing about the journal: it talks to whoever runs it through JSON and the [`Host`]
//! trait (the worker, backed by the folded ledger state).
//!
//! # Source forms
//! [`detect_kind`] decides: a source with a top-level `export` or static `import` is an ES module
//! (hooks are `export`ed, parameters are `export const params = {...}`), anything else a classic
//! sloppy-mode script (hooks are global functions or top-level bindings, parameters a top-level
//! `var`/`let`/`const params = {...}`). Imports are refused: a static `import` fails the load
//! with [`SandboxError::ImportRefused`], a dynamic `import()` rejects.
//!
//! # Determinism (DESIGN.md, "The determinism rule")
//! * `Date.now()`, `new Date()` and `Date()` read [`Host::now_ms`] of the call in progress
//!   (0 while the source itself is being loaded); `new Date(x)` works as usual; local-time
//!   accessors (`getHours`, `getTimezoneOffset`, `toString`, the multi-argument constructor, ...)
//!   behave as UTC so the machine's time zone cannot leak in. (Residual: `Date.parse` of a
//!   date-time string without an offset is still read in the process time zone.)
//! * `Math.random()` is ChaCha8 keyed by [`SandboxConfig::seed`], its state kept across calls.
//! * No `std`/`os` module, no `performance`, no `WeakRef`/`FinalizationRegistry` (GC timing),
//!   no module loader; `setTimeout`/`setInterval`/`fetch`/`require`... throw a clear error.
//! * `ctx.state` is a `BTreeMap` (deterministic order).
//!
//! # Limits
//! * **Fuel** ([`SandboxConfig::call_fuel`]): the number of interrupt-handler invocations
//!   QuickJS makes during one call (one per 10 000 function calls / loop iterations, roughly).
//!   It depends only on the code path, so "ran too long" is reproducible on replay. The counter
//!   QuickJS decrements between two invocations lives in the context and carries over from call to
//!   call, so the count is exact only for the same sequence of calls since load (as on replay),
//!   and otherwise within ±1.
//! * **Timeout** ([`SandboxConfig::call_timeout_ms`]): a wall-clock backstop checked in the same
//!   handler; not reproducible by nature, so set it well above what the fuel allows. The same
//!   handler also asks [`Host::timed_out`]: replay's host says yes where the journal records
//!   that the live call timed out, and the call ends there exactly as the backstop ended it.
//! * **Memory** ([`SandboxConfig::memory_limit_bytes`], the runtime's malloc limit) and the
//!   native stack ([`SandboxConfig::max_stack_bytes`]). An out-of-memory error is a catchable
//!   `InternalError: out of memory` inside JS; when it reaches the sandbox it is reported as
//!   [`SandboxError::OutOfMemory`]. When the heap is so full that QuickJS cannot allocate even
//!   that error object it throws `null`, so an uncaught `null` is reported as `OutOfMemory` too
//!   (a strategy that itself throws `null` is misreported; don't). A 64 KiB ballast held inside
//!   the runtime (on top of the limit) is freed the moment fuel or time runs out, so the
//!   uncatchable interrupt error can always be allocated.
//!
//! After `OutOfFuel`, `Timeout` or `OutOfMemory` the sandbox is poisoned ([`Sandbox::is_poisoned`])
//! and refuses further calls: the worker should load a fresh one from the last state.
//!
//! A failed call changes nothing in the state map (its `ctx.state` writes are dropped); the JS
//! globals it mutated stay mutated.
//!
//! A `Sandbox` is not `Send`: create and use it on one thread. The `&mut dyn Host` of a call is
//! lent to the `ctx.api` callbacks through a scoped thread-local for the duration of the call.
//!
//! # Calibration of the default fuel (release build, development machine; `tests::calibrate_fuel`)
//! | workload | fuel units per second |
//! | --- | --- |
//! | `for (;;) {}` | ~22 000 |
//! | loop calling a small function | ~3 500 |
//! | loop allocating objects | ~1 000 |
//! | endless promise-job chain (1 unit per 1 000 jobs) | ~900 |
//! | typical heartbeat (200-bar API read, 300-element JS loop, batch write, log, order) | 0-1 per call |
//!
//! [`DEFAULT_CALL_FUEL`] = 500 therefore stops the slowest-burning runaway after ~0.5 s and a
//! tight loop after ~25 ms, before the 1 s wall-clock backstop, while staying hundreds of times
//! above a normal heartbeat. (Unoptimised builds run several times slower per unit, so there the
//! backstop may fire first.) Native operations that run long without ticking (sorting or
//! stringifying a huge array) are only caught by the backstop, and only at the next poll.

mod convert;
mod globals;
#[cfg(test)]
mod indicator_tests;
mod indicators;
mod source;
#[cfg(test)]
mod tests;
mod types;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rquickjs::context::intrinsic;
use rquickjs::function::Args;
use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::Declared;
use rquickjs::promise::PromiseState;
use rquickjs::{Context, Ctx, Function, Module, Object, Persistent, Promise, Runtime, Value};
use serde_json::Value as Json;

pub use convert::{f64_to_json, json_function, MAX_DEPTH};
pub use globals::API_METHODS;
pub use source::{detect_kind, SourceKind};
pub use types::{
    CallOutput, Field, Hook, HookArg, Host, LogLevel, LogLine, Rows, SandboxConfig, SandboxError, StrategyInfo, Tick,
    TickIndicator, DEFAULT_CALL_FUEL, DEFAULT_CALL_TIMEOUT_MS, DEFAULT_MAX_STACK_BYTES, DEFAULT_MEMORY_LIMIT_BYTES,
};

use globals::{Limits, Shared, SharedRef, Trip};

/// Builds a tick object in one call. An object literal gives every tick the same shape, which is
/// much cheaper than setting nine named properties from Rust. QuickJS frees a shape with the last
/// object using it, and ticks rarely outlive their call, so the builder keeps one object of each
/// intermediate shape alive: every tick then finds its shapes cached instead of rebuilding nine.
/// The builder closes over nothing the strategy can reach. The keys are in the order the JSON
/// form has (sorted), so `Object.keys(tick)` and `JSON.stringify(tick)` are the same either way.
const TICK_MAKER: &str = r#"(function () {
    const keys = ["close", "closed", "high", "interval", "low", "open", "openTime", "symbol", "volume"];
    const shapes = [];
    let o = {};
    for (const k of keys) {
        o = { ...o, [k]: 0 };
        shapes.push(o);
    }
    return function tick(symbol, interval, openTime, open, high, low, close, volume, closed) {
        void shapes;
        return { close, closed, high, interval, low, open, openTime, symbol, volume };
    };
})()"#;

/// Resolver + loader that refuse every module, remembering the first refused specifier.
struct RefuseImports(Rc<RefCell<Option<String>>>);

impl Resolver for RefuseImports {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        self.0.borrow_mut().get_or_insert_with(|| name.to_string());
        Err(rquickjs::Error::new_resolving_message(
            base,
            name,
            "strategies cannot import modules (the sandbox has no file access)",
        ))
    }
}

impl Loader for RefuseImports {
    fn load<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        self.0.borrow_mut().get_or_insert_with(|| name.to_string());
        Err(rquickjs::Error::new_loading_message(name, "strategies cannot import modules"))
    }
}

/// The intrinsics a strategy gets: no `performance` (wall clock), no `WeakRef` /
/// `FinalizationRegistry` (GC timing), no DOMException.
type Intrinsics = (
    intrinsic::Date,
    intrinsic::Eval,
    intrinsic::RegExpCompiler,
    intrinsic::RegExp,
    intrinsic::Json,
    intrinsic::Proxy,
    intrinsic::MapSet,
    intrinsic::TypedArrays,
    intrinsic::Promise,
);

/// A loaded strategy. See the module docs.
pub struct Sandbox {
    // Field order is drop order: every persistent JS value must go before the context and the
    // runtime (QuickJS aborts when a runtime is freed with live objects).
    hooks: [Option<Persistent<Function<'static>>>; 9],
    ctx_obj: Persistent<Object<'static>>,
    /// Builds tick objects (see [`HookArg::Tick`]).
    tick_maker: Persistent<Function<'static>>,
    context: Context,
    runtime: Runtime,
    shared: SharedRef,
    limits: Rc<Limits>,
    refused_import: Rc<RefCell<Option<String>>>,
    file_name: String,
    kind: SourceKind,
    params: Json,
    call_fuel: u64,
    call_timeout_ms: u64,
    memory_limit_bytes: usize,
    poisoned: bool,
    last_fuel_used: u64,
    discarded: CallOutput,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("file_name", &self.file_name)
            .field("kind", &self.kind)
            .field("hooks", &self.hooks())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// A failure while JS was running, before it is classified.
enum Failure {
    Js(rquickjs::Error),
    Sandbox(SandboxError),
}

impl From<rquickjs::Error> for Failure {
    fn from(e: rquickjs::Error) -> Self {
        Failure::Js(e)
    }
}

impl From<SandboxError> for Failure {
    fn from(e: SandboxError) -> Self {
        Failure::Sandbox(e)
    }
}

impl Sandbox {
    /// Load a strategy: evaluate `source` (script or module, see [`detect_kind`]) under the
    /// configured limits, discover its hooks and `params` defaults, and build `ctx` once.
    pub fn load(file_name: &str, source: &str, config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let runtime = Runtime::new().map_err(|e| SandboxError::Engine(e.to_string()))?;
        // The ballast (see `Limits::set_ballast`) comes on top of the configured limit.
        let runtime_limit = match config.memory_limit_bytes {
            0 => 0,
            n => n.saturating_add(globals::BALLAST_BYTES),
        };
        runtime.set_memory_limit(runtime_limit);
        runtime.set_max_stack_size(config.max_stack_bytes);
        let limits = Rc::new(Limits::new());
        let l = limits.clone();
        runtime.set_interrupt_handler(Some(Box::new(move || l.tick())));
        let refused_import = Rc::new(RefCell::new(None));
        runtime.set_loader(RefuseImports(refused_import.clone()), RefuseImports(refused_import.clone()));
        let context = Context::custom::<Intrinsics>(&runtime).map_err(|e| match e {
            rquickjs::Error::Allocation => SandboxError::OutOfMemory { limit_bytes: config.memory_limit_bytes },
            e => SandboxError::Engine(e.to_string()),
        })?;
        let shared: SharedRef = Rc::new(RefCell::new(Shared::new(config.seed, config.initial_state)));
        let kind = detect_kind(source);

        let tick_maker = context
            .with(|ctx| ctx.eval::<Function, _>(TICK_MAKER).map(|f| Persistent::save(&ctx, f)))
            .map_err(|e| SandboxError::Engine(format!("the tick builder does not compile: {e}")))?;
        let mut sandbox = Sandbox {
            hooks: Default::default(),
            ctx_obj: context.with(|ctx| Persistent::save(&ctx, ctx.globals())),
            tick_maker,
            context,
            runtime,
            shared,
            limits,
            refused_import,
            file_name: file_name.to_string(),
            kind,
            params: Json::Null,
            call_fuel: config.call_fuel,
            call_timeout_ms: config.call_timeout_ms,
            memory_limit_bytes: config.memory_limit_bytes,
            poisoned: false,
            last_fuel_used: 0,
            discarded: CallOutput::default(),
        };
        sandbox.context.with(|ctx| -> Result<(), SandboxError> {
            let ballast = rquickjs::String::from_str(ctx.clone(), &"\0".repeat(globals::BALLAST_BYTES))
                .map_err(|_| SandboxError::OutOfMemory { limit_bytes: config.memory_limit_bytes })?;
            sandbox.limits.set_ballast(Persistent::save(&ctx, ballast));
            Ok(())
        })?;
        sandbox.limits.arm(sandbox.call_fuel, sandbox.call_timeout_ms);
        let loaded = sandbox.evaluate(source, &config.strategy);
        sandbox.limits.disarm();
        sandbox.last_fuel_used = sandbox.limits.used();
        loaded?;
        // Whatever the top-level code logged is not part of any call.
        sandbox.discarded = sandbox.take_buffers();
        Ok(sandbox)
    }

    fn evaluate(&mut self, source: &str, info: &StrategyInfo) -> Result<(), SandboxError> {
        let context = self.context.clone();
        context.with(|ctx| {
            let r = self.evaluate_in(&ctx, source, info);
            r.map_err(|f| self.classify(&ctx, f, true))
        })
    }

    fn evaluate_in<'js>(&mut self, ctx: &Ctx<'js>, source: &str, info: &StrategyInfo) -> Result<(), Failure> {
        globals::install_prelude(ctx, &self.shared)?;
        let (hooks, params) = match self.kind {
            SourceKind::Script => {
                let mut opts = rquickjs::context::EvalOptions::default();
                opts.global = true;
                opts.strict = false;
                opts.filename = Some(self.file_name.clone());
                ctx.eval_with_options::<(), _>(source, opts)?;
                self.drain_jobs(ctx)?;
                // Top-level let/const are not properties of the global object, so look the
                // names up in the global scope.
                let mut probe = String::from("({");
                for h in Hook::ALL {
                    let n = h.js_name();
                    probe.push_str(&format!("{n}: typeof {n} === 'function' ? {n} : undefined, "));
                }
                probe.push_str("params: typeof params === 'undefined' ? undefined : params})");
                let mut opts = rquickjs::context::EvalOptions::default();
                opts.filename = Some("<quantfold-probe>".into());
                let found: Object = ctx.eval_with_options(probe, opts)?;
                let hooks: Vec<Value> =
                    Hook::ALL.iter().map(|h| found.get(h.js_name())).collect::<rquickjs::Result<_>>()?;
                (hooks, found.get::<_, Value>("params")?)
            }
            SourceKind::Module => {
                let module = Module::declare(ctx.clone(), self.file_name.as_str(), source)?;
                let (module, promise) = module.eval()?;
                self.settle(ctx, promise, "module evaluation")?;
                self.drain_jobs(ctx)?;
                let ns = module.namespace()?;
                let hooks: Vec<Value> =
                    Hook::ALL.iter().map(|h| ns.get(h.js_name())).collect::<rquickjs::Result<_>>()?;
                (hooks, ns.get::<_, Value>("params")?)
            }
        };
        for (slot, (h, v)) in Hook::ALL.iter().zip(hooks).enumerate() {
            debug_assert_eq!(slot, h.index());
            if let Some(f) = v.into_function() {
                self.hooks[slot] = Some(Persistent::save(ctx, f));
            }
        }
        let defaults = convert::to_json(&params)
            .map_err(|e| SandboxError::Conversion { what: "params".into(), message: e.to_string() })?;
        self.params = overlay_params(defaults, &info.params);
        let c = globals::build_ctx(ctx, &self.shared, info, &self.params)?;
        self.ctx_obj = Persistent::save(ctx, c);
        Ok(())
    }

    /// Call a hook with `(ctx, arg)` (`arg` is `undefined` when `None`; st_exit gets the reason
    /// string). An async hook's promise is driven to completion within the same limits, and the
    /// job queue is drained before returning. A missing hook returns an empty output.
    ///
    /// On success the call's `ctx.state` writes are applied to the sandbox state and returned; on
    /// failure they are discarded (the state map is as before the call) and the call's logs,
    /// notifications and records are kept for [`Sandbox::take_discarded_output`].
    pub fn call(&mut self, hook: Hook, arg: Option<Json>, host: &mut dyn Host) -> Result<CallOutput, SandboxError> {
        self.call_with(hook, arg.as_ref().map_or(HookArg::None, HookArg::Json), host)
    }

    /// [`Sandbox::call`] with the argument as a [`HookArg`].
    pub fn call_with(&mut self, hook: Hook, arg: HookArg<'_>, host: &mut dyn Host) -> Result<CallOutput, SandboxError> {
        if self.poisoned {
            return Err(SandboxError::Poisoned);
        }
        let Some(func) = self.hooks[hook.index()].clone() else {
            return Ok(CallOutput::default());
        };
        {
            let mut s = self.shared.borrow_mut();
            s.now_ms = host.now_ms();
            s.pending.clear();
        }
        let ctx_obj = self.ctx_obj.clone();
        self.limits.arm(self.call_fuel, self.call_timeout_ms);
        let this = &*self;
        let result = globals::with_host(host, || {
            this.context
                .with(|ctx| this.call_in(&ctx, hook, func, ctx_obj, arg).map_err(|f| this.classify(&ctx, f, false)))
        });
        self.limits.disarm();
        self.last_fuel_used = self.limits.used();
        match result {
            Ok(value) => {
                let mut out = self.take_buffers();
                let mut s = self.shared.borrow_mut();
                let changes = std::mem::take(&mut s.pending);
                for (k, v) in &changes {
                    s.state.insert(k.clone(), v.clone());
                }
                out.value = value;
                out.state_changes = changes;
                Ok(out)
            }
            Err(e) => {
                self.shared.borrow_mut().pending.clear();
                self.discarded = self.take_buffers();
                if e.poisons() {
                    self.poisoned = true;
                }
                Err(e)
            }
        }
    }

    fn call_in<'js>(
        &self,
        ctx: &Ctx<'js>,
        hook: Hook,
        func: Persistent<Function<'static>>,
        ctx_obj: Persistent<Object<'static>>,
        arg: HookArg<'_>,
    ) -> Result<Json, Failure> {
        let func = func.restore(ctx)?;
        let c = ctx_obj.restore(ctx)?;
        let arg = match arg {
            HookArg::Json(j) => convert::to_js(ctx, j)?,
            HookArg::Tick(t) => {
                let mut args = Args::new(ctx.clone(), 9);
                args.push_arg(t.symbol)?;
                args.push_arg(t.interval)?;
                // Epoch milliseconds exceed i32, so they are a JS number (f64) either way.
                args.push_arg(t.open_time_ms as f64)?;
                for x in [t.open, t.high, t.low, t.close, t.volume] {
                    args.push_arg(x)?;
                }
                args.push_arg(t.closed)?;
                let tick: Value = self.tick_maker.clone().restore(ctx)?.call_arg(args)?;
                if !t.indicators.is_empty() {
                    let values = Object::new(ctx.clone())?;
                    for indicator in t.indicators {
                        match indicator.outputs {
                            None => values.set(indicator.name, indicator.values[0])?,
                            Some(names) => {
                                let multi = Object::new(ctx.clone())?;
                                for (name, value) in names.iter().zip(indicator.values) {
                                    multi.set(*name, value)?;
                                }
                                values.set(indicator.name, multi)?;
                            }
                        }
                    }
                    if let Some(object) = tick.as_object() {
                        object.set("indicators", values)?;
                    }
                }
                tick
            }
            HookArg::None => Value::new_undefined(ctx.clone()),
        };
        let mut ret: Value = func.call((c, arg))?;
        if let Some(promise) = ret.as_promise().cloned() {
            ret = self.settle(ctx, promise, hook.js_name())?;
        }
        self.drain_jobs(ctx)?;
        convert::to_json(&ret).map_err(|e| match e {
            convert::ToJsonError::Js(e) => Failure::Js(e),
            e => Failure::Sandbox(SandboxError::Conversion {
                what: format!("the return value of {}", hook.js_name()),
                message: e.to_string(),
            }),
        })
    }

    /// Run the job queue until `promise` settles.
    fn settle<'js>(&self, ctx: &Ctx<'js>, promise: Promise<'js>, what: &str) -> Result<Value<'js>, Failure> {
        loop {
            match promise.state() {
                PromiseState::Resolved | PromiseState::Rejected => {
                    return promise.result::<Value>().unwrap_or(Err(rquickjs::Error::Unknown)).map_err(Failure::Js);
                }
                PromiseState::Pending => {
                    if self.limits.tripped().is_some() {
                        return Err(Failure::Js(rquickjs::Error::Exception));
                    }
                    if !ctx.execute_pending_job() {
                        return Err(SandboxError::Unsettled { hook: what.to_string() }.into());
                    }
                    self.limits.charge_job();
                }
            }
        }
    }

    /// Run every pending job (leftover promise reactions), so no work leaks into the next call.
    fn drain_jobs(&self, ctx: &Ctx<'_>) -> Result<(), Failure> {
        while ctx.execute_pending_job() {
            self.limits.charge_job();
            if self.limits.tripped().is_some() {
                return Err(Failure::Js(rquickjs::Error::Exception));
            }
        }
        Ok(())
    }

    /// Turn a failure into a [`SandboxError`], consuming the pending JS exception.
    fn classify(&self, ctx: &Ctx<'_>, failure: Failure, loading: bool) -> SandboxError {
        let err = match failure {
            Failure::Sandbox(e) => return e,
            Failure::Js(e) => e,
        };
        let exception = match err {
            rquickjs::Error::Exception => Some(ctx.catch()),
            _ => None,
        };
        match self.limits.tripped() {
            Some(Trip::Fuel) => return SandboxError::OutOfFuel { fuel: self.call_fuel },
            Some(Trip::Timeout) => return SandboxError::Timeout { timeout_ms: self.call_timeout_ms },
            None => {}
        }
        let oom = SandboxError::OutOfMemory { limit_bytes: self.memory_limit_bytes };
        let Some(value) = exception else {
            return match err {
                rquickjs::Error::Allocation => oom,
                e => SandboxError::Engine(e.to_string()),
            };
        };
        if let Some(specifier) = self.refused_import.borrow_mut().take() {
            if loading {
                return SandboxError::ImportRefused { file: self.file_name.clone(), specifier };
            }
        }
        let Some(obj) = value.as_object().filter(|o| o.is_error()) else {
            if value.is_null() {
                // QuickJS throws `null` when it cannot even allocate the error object of an
                // out-of-memory condition ("throw JS_NULL to avoid recursing" in quickjs.c).
                return oom;
            }
            return SandboxError::Thrown {
                message: format!("Uncaught {}", convert::display_arg(&value)),
                stack: String::new(),
            };
        };
        let get = |k: &str| -> String {
            obj.get::<_, Option<rquickjs::Coerced<String>>>(k).ok().flatten().map(|c| c.0).unwrap_or_default()
        };
        let (name, message, stack) = (get("name"), get("message"), get("stack"));
        let _ = ctx.catch(); // a throwing getter above must not leave an exception behind
        if name == "InternalError" && message == "out of memory" {
            return oom;
        }
        if loading && name == "SyntaxError" {
            if let Some((line, column)) = source::parse_error_location(&stack, &self.file_name) {
                return SandboxError::Syntax { file: self.file_name.clone(), line, column, message };
            }
        }
        SandboxError::Thrown { message: if name.is_empty() { message } else { format!("{name}: {message}") }, stack }
    }

    fn take_buffers(&self) -> CallOutput {
        let mut s = self.shared.borrow_mut();
        CallOutput {
            value: Json::Null,
            state_changes: BTreeMap::new(),
            logs: std::mem::take(&mut s.logs),
            notifications: std::mem::take(&mut s.notifications),
            records: std::mem::take(&mut s.records),
        }
    }

    /// The hooks the strategy defines, in [`Hook::ALL`] order.
    pub fn hooks(&self) -> Vec<Hook> {
        Hook::ALL.into_iter().filter(|h| self.has_hook(*h)).collect()
    }

    pub fn has_hook(&self, hook: Hook) -> bool {
        self.hooks[hook.index()].is_some()
    }

    /// `FILE: defines no st_heartbeat function` when the strategy lacks the one hook every
    /// strategy needs (without it, it never trades). The runtime and the CLI's checks all use
    /// this, so they refuse the same strategies with the same words.
    pub fn missing_heartbeat(&self) -> Option<String> {
        (!self.has_hook(Hook::Heartbeat)).then(|| format!("{}: defines no st_heartbeat function", self.file_name))
    }

    /// `ctx.strategy.params`: the declared defaults overlaid with [`StrategyInfo::params`].
    pub fn params(&self) -> &Json {
        &self.params
    }

    /// The current (committed) state map.
    pub fn state(&self) -> BTreeMap<String, Json> {
        self.shared.borrow().state.clone()
    }

    pub fn kind(&self) -> SourceKind {
        self.kind
    }

    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// True after `OutOfFuel`, `Timeout` or `OutOfMemory`: reload the strategy.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// Fuel used by the last call (or by the load): for calibration and diagnostics.
    pub fn last_fuel_used(&self) -> u64 {
        self.last_fuel_used
    }

    /// Logs, notifications and records buffered by the last failed call (or by top-level code
    /// during load); `value` and `state_changes` are always empty.
    pub fn take_discarded_output(&mut self) -> CallOutput {
        std::mem::take(&mut self.discarded)
    }

    /// Bytes currently allocated by the runtime.
    pub fn memory_used_bytes(&self) -> u64 {
        self.runtime.memory_usage().malloc_size.max(0) as u64
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // The ballast is a JS value held outside the runtime: free it before the runtime goes.
        self.limits.release_ballast();
    }
}

/// Defaults overlaid with the given params: both objects → top-level keys of `given` win;
/// `given` null → the defaults (or `{}` when there are none); otherwise `given` as is.
fn overlay_params(defaults: Json, given: &Json) -> Json {
    match (defaults, given) {
        (Json::Object(mut d), Json::Object(g)) => {
            for (k, v) in g {
                d.insert(k.clone(), v.clone());
            }
            Json::Object(d)
        }
        (Json::Null, Json::Null) => Json::Object(Default::default()),
        (d, Json::Null) => d,
        (_, g) => g.clone(),
    }
}

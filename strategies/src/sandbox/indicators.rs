//! `ctx.indicator`: [`crate::indicator`] bound into JS.
//!
//! [`install_indicators`] runs once per sandbox, while `ctx` is built.
//!
//! # Array form
//! ```js
//! ctx.indicator.sma(values, period)          // also ema, wma, rsi, stdev, highest, lowest
//! ctx.indicator.macd(values, fast, slow, signal) // -> {macd, signal, histogram}
//! ctx.indicator.bollinger(values, period, k)     // -> {upper, middle, lower}
//! ctx.indicator.atr(high, low, close, period)
//! ctx.indicator.sma(values, {period: 10})         // options-object form, any indicator
//! ctx.indicator.bollinger(values, {period: 20, stddev: 2})
//! ```
//! Each result is a fresh array (or an object of arrays) as long as the input, `NaN` (a real
//! number) during warm-up. Series are arrays (holes allowed) or numeric typed arrays (e.g.
//! `Float64Array`) of at most [`MAX_SERIES_LEN`] elements. An element may be a number, or
//! *missing*: `null`, `undefined`, `NaN`, `±Infinity`, or the strings `"NaN"`, `"Infinity"`,
//! `"-Infinity"` (the sandbox's JSON spelling of non-finite numbers, so series stored in
//! `ctx.state` still work); how a missing value propagates is described in
//! [`crate::indicator`]. Any other element, an argument of the wrong type, an unknown or
//! missing parameter or an out-of-range one throws an `Error` (`TypeError` for wrong types)
//! whose message starts with the call's signature, e.g.
//! `ctx.indicator.sma(values, period): invalid period = 0: must be a whole number from 1 to 100000`.
//!
//! # Streaming form
//! ```js
//! const s = ctx.indicator.create('sma', {period: 20}); // or create('sma', 20)
//! s.update(x)                    // -> current value, NaN in warm-up (x may also be {close})
//! const a = ctx.indicator.create('atr', {period: 14});
//! a.update(high, low, close)     // or a.update({high, low, close})
//! ctx.indicator.create('macd', {fast: 12, slow: 26, signal: 9}).update(x) // -> {macd, signal, histogram}
//! ctx.indicator.create('bollinger', {period: 20, k: 2}).update(x)         // -> {upper, middle, lower}
//! s.name, s.warmup               // canonical name; bars before every output is defined
//! ```
//! The indicator state lives on the Rust side, owned by the `update` function (a native
//! closure); `update` is O(1) amortised and independent of `this`. An indicator is freed when
//! its `update` function is garbage-collected.
//!
//! # Limits
//! A sandbox may hold at most [`MAX_LIVE_STREAMING`] live streaming indicators, whose windows
//! (the `period` of sma, wma, stdev, bollinger, highest, lowest; recursive indicators need
//! none) add up to at most [`MAX_LIVE_WINDOW`] values: their buffers live outside the
//! runtime's memory limit. When `create` would exceed either, it first runs a full garbage
//! collection (so only *reachable* indicators count, which makes the outcome deterministic) and
//! then throws if still over.
//!
//! # Conversion
//! Values cross directly between QuickJS and Rust (no JSON): elements are read as numbers and
//! results are written as float values, so NaN, ±0 and every other bit pattern arrive as is.
//! Everything here is pure and deterministic (no clock, no randomness, no I/O).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use rquickjs::function::Rest;
use rquickjs::{Array, Ctx, Exception, Function, Object, Type, Value};

use crate::indicator::{compute_spec, ArrayOutput, Bar, Inputs, Kind, Output, Params, Spec, StreamingIndicator};

/// Most elements accepted in one input series (caps what a sparse array such as
/// `a.length = 4e9` could make us allocate outside the runtime's memory limit).
pub const MAX_SERIES_LEN: usize = 1_000_000;

/// Most streaming indicators alive at once in one sandbox.
pub const MAX_LIVE_STREAMING: usize = 10_000;

/// Most window values (sum of the periods of the live windowed streaming indicators) in one
/// sandbox: e.g. 10 000 indicators of period 200.
pub const MAX_LIVE_WINDOW: usize = 2_000_000;

/// Install the indicator functions on `indicator` (`ctx.indicator`).
pub(crate) fn install_indicators<'js>(ctx: &Ctx<'js>, indicator: &Object<'js>) -> rquickjs::Result<()> {
    for kind in Kind::ALL {
        indicator.set(kind.name(), array_function(ctx, kind)?)?;
    }
    let registry = Rc::new(Registry::default());
    let create = Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| {
        create_streaming(&ctx, &registry, &args.0)
    })?
    .with_name("create")?;
    indicator.set("create", create)?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Signatures
// ---------------------------------------------------------------------------

/// The positional parameters, in order (bollinger's `stddev` alias is options-only).
fn positional(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Macd => &["fast", "slow", "signal"],
        Kind::Bollinger => &["period", "k"],
        _ => &["period"],
    }
}

/// The input series of the array form, in order.
fn series_names(kind: Kind) -> &'static [&'static str] {
    if kind.needs_high_low() {
        &["high", "low", "close"]
    } else {
        &["values"]
    }
}

/// `ctx.indicator.sma(values, period)`: the prefix of every error of the array form.
fn array_usage(kind: Kind) -> String {
    format!("ctx.indicator.{}({}, {})", kind.name(), series_names(kind).join(", "), positional(kind).join(", "))
}

/// `ctx.indicator.create('sma', {period})`: the prefix of the errors of `create`.
fn create_usage(kind: Kind) -> String {
    format!("ctx.indicator.create('{}', {{{}}})", kind.name(), positional(kind).join(", "))
}

/// `s.update(x)`: the prefix of the errors of a streaming `update`.
fn update_usage(kind: Kind) -> String {
    if kind.needs_high_low() {
        format!("{}.update(high, low, close)", kind.name())
    } else {
        format!("{}.update(x)", kind.name())
    }
}

/// What a JS value is, for error messages.
fn type_name(v: &Value<'_>) -> &'static str {
    match v.type_of() {
        Type::Uninitialized | Type::Undefined => "undefined",
        Type::Null => "null",
        Type::Bool => "a boolean",
        Type::Int | Type::Float => "a number",
        Type::String => "a string",
        Type::Symbol => "a symbol",
        Type::BigInt => "a bigint",
        Type::Array => "an array",
        Type::Function | Type::Constructor => "a function",
        _ => "an object",
    }
}

// ---------------------------------------------------------------------------
// JS -> Rust
// ---------------------------------------------------------------------------

/// One element of a series (or one streaming input): a number, or NaN for a missing value;
/// `None` for anything else.
fn element(v: &Value<'_>) -> Option<f64> {
    match v.type_of() {
        Type::Int | Type::Float => v.as_number(),
        Type::Null | Type::Undefined | Type::Uninitialized => Some(f64::NAN),
        Type::String => {
            let s = v.as_string()?.to_string().ok()?;
            matches!(s.as_str(), "NaN" | "Infinity" | "-Infinity").then_some(f64::NAN)
        }
        _ => None,
    }
}

fn bad_element(ctx: &Ctx<'_>, usage: &str, what: &str, v: &Value<'_>) -> rquickjs::Error {
    Exception::throw_type(
        ctx,
        &format!("{usage}: {what} is {}; expected a number or a missing value (null, NaN)", type_name(v)),
    )
}

/// Whether `obj` is a typed array of numbers (not a BigInt one).
fn is_number_typed_array(obj: &Object<'_>) -> bool {
    obj.is_typed_array::<f64>()
        || obj.is_typed_array::<f32>()
        || obj.is_typed_array::<i32>()
        || obj.is_typed_array::<u32>()
        || obj.is_typed_array::<i16>()
        || obj.is_typed_array::<u16>()
        || obj.is_typed_array::<i8>()
        || obj.is_typed_array::<u8>()
}

/// Read one input series (an array or a numeric typed array).
fn read_series<'js>(ctx: &Ctx<'js>, usage: &str, what: &str, v: Option<&Value<'js>>) -> rquickjs::Result<Vec<f64>> {
    let undefined = Value::new_undefined(ctx.clone());
    let v = v.unwrap_or(&undefined);
    let not_series =
        || Exception::throw_type(ctx, &format!("{usage}: {what} must be an array of numbers, got {}", type_name(v)));
    let Some(obj) = v.as_object() else {
        return Err(not_series());
    };
    let array = v.as_array();
    if array.is_none() && !is_number_typed_array(obj) {
        return Err(not_series());
    }
    // Not `Array::len`: it asserts the length is an int, and an array's length may reach 2^32-1.
    let len: Value = obj.get("length")?;
    let len = len.as_number().unwrap_or(f64::NAN);
    if !(0.0..=MAX_SERIES_LEN as f64).contains(&len) {
        return Err(Exception::throw_range(
            ctx,
            &format!("{usage}: {what} has {len} elements; at most {MAX_SERIES_LEN} are accepted"),
        ));
    }
    let len = len as usize;
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        // Element reads may run getters (JS): nothing is borrowed meanwhile.
        let e: Value = match array {
            Some(a) => a.get(i)?,
            None => obj.get(i as u32)?,
        };
        match element(&e) {
            Some(x) => out.push(x),
            None => return Err(bad_element(ctx, usage, &format!("{what}[{i}]"), &e)),
        }
    }
    Ok(out)
}

/// Read the parameters: one options object, or numbers in [`positional`] order.
fn read_params<'js>(ctx: &Ctx<'js>, kind: Kind, usage: &str, args: &[Value<'js>]) -> rquickjs::Result<Spec> {
    let mut params = Params::new();
    let number = |name: &str, v: &Value<'js>| -> rquickjs::Result<Option<f64>> {
        match v.type_of() {
            Type::Undefined | Type::Uninitialized => Ok(None),
            Type::Int | Type::Float => Ok(v.as_number()),
            _ => Err(Exception::throw_type(ctx, &format!("{usage}: {name} must be a number, got {}", type_name(v)))),
        }
    };
    match args {
        [opts] if opts.type_of() == Type::Object => {
            let Some(obj) = opts.as_object() else {
                return Err(rquickjs::Error::Unknown);
            };
            for prop in obj.props::<String, Value>() {
                let (name, v) = prop?;
                if let Some(x) = number(&name, &v)? {
                    params.set(&name, x);
                }
            }
        }
        _ => {
            let names = positional(kind);
            if args.len() > names.len() {
                return Err(Exception::throw_type(
                    ctx,
                    &format!("{usage}: too many arguments ({} parameters given, {} expected)", args.len(), names.len()),
                ));
            }
            for (name, v) in names.iter().zip(args) {
                if let Some(x) = number(name, v)? {
                    params.set(name, x);
                }
            }
        }
    }
    Spec::parse(kind.name(), &params).map_err(|e| Exception::throw_message(ctx, &format!("{usage}: {e}")))
}

// ---------------------------------------------------------------------------
// Rust -> JS
// ---------------------------------------------------------------------------

/// A fresh JS array of float values (NaN and -0 kept as they are).
fn series_to_js<'js>(ctx: &Ctx<'js>, xs: &[f64]) -> rquickjs::Result<Value<'js>> {
    let arr = Array::new(ctx.clone())?;
    for (i, &x) in xs.iter().enumerate() {
        arr.set(i, Value::new_float(ctx.clone(), x))?;
    }
    Ok(arr.into_value())
}

fn array_output_to_js<'js>(ctx: &Ctx<'js>, out: &ArrayOutput) -> rquickjs::Result<Value<'js>> {
    match out {
        ArrayOutput::Single(xs) => series_to_js(ctx, xs),
        ArrayOutput::Multi(fields) => {
            let obj = Object::new(ctx.clone())?;
            for (name, xs) in fields {
                obj.set(*name, series_to_js(ctx, xs)?)?;
            }
            Ok(obj.into_value())
        }
    }
}

fn output_to_js<'js>(ctx: &Ctx<'js>, out: &Output) -> rquickjs::Result<Value<'js>> {
    match out {
        Output::Single(x) => Ok(Value::new_float(ctx.clone(), *x)),
        Output::Multi(fields) => {
            let obj = Object::new(ctx.clone())?;
            for (name, x) in fields {
                obj.set(*name, Value::new_float(ctx.clone(), *x))?;
            }
            Ok(obj.into_value())
        }
    }
}

// ---------------------------------------------------------------------------
// Array form
// ---------------------------------------------------------------------------

fn array_function<'js>(ctx: &Ctx<'js>, kind: Kind) -> rquickjs::Result<Function<'js>> {
    let usage = array_usage(kind);
    Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<Value<'js>> {
        let args = &args.0;
        let names = series_names(kind);
        let mut series = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            series.push(read_series(&ctx, &usage, name, args.get(i))?);
        }
        let spec = read_params(&ctx, kind, &usage, args.get(names.len()..).unwrap_or(&[]))?;
        let inputs = match series.as_slice() {
            [high, low, close] => Inputs::hlc(high, low, close),
            [close] => Inputs::close(close),
            _ => return Err(rquickjs::Error::Unknown),
        };
        let out = compute_spec(&spec, &inputs).map_err(|e| Exception::throw_message(&ctx, &format!("{usage}: {e}")))?;
        array_output_to_js(&ctx, &out)
    })?
    .with_name(kind.name())
}

// ---------------------------------------------------------------------------
// Streaming form
// ---------------------------------------------------------------------------

/// Live streaming indicators of one sandbox.
#[derive(Default)]
struct Registry {
    live: Cell<usize>,
    window: Cell<usize>,
}

impl Registry {
    fn fits(&self, window: usize) -> bool {
        self.live.get() < MAX_LIVE_STREAMING && self.window.get().saturating_add(window) <= MAX_LIVE_WINDOW
    }
}

/// One live indicator's share of the [`Registry`], given back when its `update` closure is
/// dropped (i.e. when the function is garbage-collected).
struct LiveSlot {
    registry: Rc<Registry>,
    window: usize,
}

impl LiveSlot {
    fn new(registry: &Rc<Registry>, window: usize) -> Self {
        registry.live.set(registry.live.get() + 1);
        registry.window.set(registry.window.get() + window);
        LiveSlot { registry: registry.clone(), window }
    }
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        let r = &self.registry;
        r.live.set(r.live.get().saturating_sub(1));
        r.window.set(r.window.get().saturating_sub(self.window));
    }
}

/// A streaming indicator's state, owned (as a whole: the closure calls a method on it, so
/// that the slot is captured too) by its `update` closure.
struct Live {
    indicator: RefCell<StreamingIndicator>,
    _slot: LiveSlot,
}

impl Live {
    /// `None` if already borrowed (cannot happen: no JS runs while the state is borrowed).
    fn update(&self, bar: Bar) -> Option<Output> {
        Some(self.indicator.try_borrow_mut().ok()?.update(bar))
    }
}

/// Values a streaming indicator buffers (recursive ones keep O(1) state).
fn window_len(spec: &Spec) -> usize {
    match *spec {
        Spec::Sma { period }
        | Spec::Wma { period }
        | Spec::Stdev { period }
        | Spec::Highest { period }
        | Spec::Lowest { period }
        | Spec::Bollinger { period, .. } => period,
        Spec::Ema { .. } | Spec::Rsi { .. } | Spec::Atr { .. } | Spec::Macd { .. } => 0,
    }
}

fn create_streaming<'js>(ctx: &Ctx<'js>, registry: &Rc<Registry>, args: &[Value<'js>]) -> rquickjs::Result<Value<'js>> {
    const USAGE: &str = "ctx.indicator.create(name, params)";
    let name = match args.first() {
        Some(v) if v.is_string() => v.as_string().map(|s| s.to_string()).transpose()?.unwrap_or_default(),
        other => {
            let got = other.map_or("nothing", type_name);
            return Err(Exception::throw_type(ctx, &format!("{USAGE}: name must be a string, got {got}")));
        }
    };
    let kind = Kind::from_name(&name).map_err(|e| Exception::throw_message(ctx, &format!("{USAGE}: {e}")))?;
    let usage = create_usage(kind);
    let spec = read_params(ctx, kind, &usage, args.get(1..).unwrap_or(&[]))?;
    let window = window_len(&spec);
    if !registry.fits(window) {
        // Count only what is still reachable: the decision must not depend on GC timing.
        ctx.run_gc();
        if !registry.fits(window) {
            return Err(Exception::throw_range(
                ctx,
                &format!(
                    "{usage}: too many live streaming indicators ({} alive holding {} window \
                     values; at most {MAX_LIVE_STREAMING} indicators and {MAX_LIVE_WINDOW} \
                     values per strategy): create indicators once (at top level or in st_init) \
                     and reuse them",
                    registry.live.get(),
                    registry.window.get()
                ),
            ));
        }
    }
    let indicator =
        StreamingIndicator::from_spec(&spec).map_err(|e| Exception::throw_message(ctx, &format!("{usage}: {e}")))?;
    let live = Live { indicator: RefCell::new(indicator), _slot: LiveSlot::new(registry, window) };
    let usage = update_usage(kind);
    let update =
        Function::new(ctx.clone(), move |ctx: Ctx<'js>, args: Rest<Value<'js>>| -> rquickjs::Result<Value<'js>> {
            // Read the inputs (may run getters) before borrowing the state.
            let bar = read_bar(&ctx, kind, &usage, &args.0)?;
            let out = live
                .update(bar)
                .ok_or_else(|| Exception::throw_message(&ctx, &format!("{usage}: re-entrant update")))?;
            output_to_js(&ctx, &out)
        })?
        .with_name("update")?;
    let obj = Object::new(ctx.clone())?;
    obj.set("update", update)?;
    obj.set("name", kind.name())?;
    obj.set("warmup", spec.warmup() as f64)?;
    Ok(obj.into_value())
}

/// The input of one streaming `update`: `(x)` or `({close})`; for atr `(high, low, close)` or
/// `({high, low, close})`.
fn read_bar<'js>(ctx: &Ctx<'js>, kind: Kind, usage: &str, args: &[Value<'js>]) -> rquickjs::Result<Bar> {
    let num = |what: &str, v: &Value<'js>| element(v).ok_or_else(|| bad_element(ctx, usage, what, v));
    let field = |obj: &Object<'js>, name: &str| -> rquickjs::Result<f64> {
        // A property that is not there at all is a mistake, not a missing value.
        if !obj.contains_key(name)? {
            return Err(Exception::throw_type(ctx, &format!("{usage}: the object has no {name} property")));
        }
        let v: Value = obj.get(name)?;
        num(name, &v)
    };
    let hlc = kind.needs_high_low();
    match args {
        [v] if matches!(v.type_of(), Type::Object) => {
            let Some(obj) = v.as_object() else {
                return Err(rquickjs::Error::Unknown);
            };
            if hlc {
                let (high, low, close) = (field(obj, "high")?, field(obj, "low")?, field(obj, "close")?);
                Ok(Bar::new(high, low, close))
            } else {
                Ok(Bar::from_close(field(obj, "close")?))
            }
        }
        [x] if !hlc => Ok(Bar::from_close(num("x", x)?)),
        [high, low, close] if hlc => Ok(Bar::new(num("high", high)?, num("low", low)?, num("close", close)?)),
        _ => Err(Exception::throw_type(
            ctx,
            &format!(
                "{usage}: expected {}, got {} arguments",
                if hlc { "3 arguments or one {high, low, close} object" } else { "1 argument" },
                args.len()
            ),
        )),
    }
}

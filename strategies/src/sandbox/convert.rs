//! JSON <-> JS value conversion, done directly on the QuickJS values (no JSON text round-trip).
//!
//! JS -> JSON rules (the strategy contract):
//! * `undefined` (and symbols, modules) become `null`; so does a top-level function;
//! * a property whose value is a function is dropped; a function inside an array becomes `null`;
//! * non-finite numbers become the strings `"NaN"`, `"Infinity"`, `"-Infinity"` so that the host
//!   can reject, say, a NaN quantity with a precise reason instead of seeing `null`;
//! * an integral number with magnitude below 2^53 becomes a JSON integer (`1`, not `1.0`; `-0`
//!   becomes `0`), any other finite number a JSON float;
//! * BigInts become integers when they fit in i64, else decimal strings;
//! * an object with a callable `toJSON` (e.g. a `Date`) is converted through it, like
//!   `JSON.stringify` does; an `Error` becomes `{name, message}`; any other object is converted
//!   from its own enumerable string-keyed properties (Map/Set therefore become `{}`, as with
//!   `JSON.stringify`);
//! * a cyclic structure is an error (not a hang); so is nesting deeper than [`MAX_DEPTH`].
//!
//! JSON -> JS: numbers become numbers (i32 when they fit, else f64), objects plain objects,
//! arrays arrays.

use rquickjs::{Array, BigInt, Ctx, Function, Object, Type, Value};
use serde_json::{Map, Number, Value as Json};

/// Deepest nesting converted from JS (keeps the Rust recursion far away from the stack limit).
pub const MAX_DEPTH: usize = 128;

/// Why a JS value could not be converted to JSON.
#[derive(Debug)]
pub enum ToJsonError {
    /// The value contains itself.
    Cycle,
    /// Nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A getter, proxy trap or `toJSON` threw (or the engine failed): the JS exception is pending.
    Js(rquickjs::Error),
}

impl std::fmt::Display for ToJsonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ToJsonError::Cycle => f.write_str("cannot convert a cyclic object to JSON"),
            ToJsonError::TooDeep => {
                write!(f, "cannot convert to JSON: nested deeper than {MAX_DEPTH} levels")
            }
            ToJsonError::Js(e) => write!(f, "{e}"),
        }
    }
}

impl From<rquickjs::Error> for ToJsonError {
    fn from(e: rquickjs::Error) -> Self {
        ToJsonError::Js(e)
    }
}

impl ToJsonError {
    /// Turn the error into a pending JS exception (TypeError for structural problems).
    pub fn throw(self, ctx: &Ctx<'_>) -> rquickjs::Error {
        match self {
            ToJsonError::Js(e) => e,
            other => rquickjs::Exception::throw_type(ctx, &other.to_string()),
        }
    }
}

/// A finite or non-finite f64 as JSON (see the module docs).
pub fn f64_to_json(x: f64) -> Json {
    if x.is_nan() {
        Json::String("NaN".into())
    } else if x.is_infinite() {
        Json::String(if x > 0.0 { "Infinity" } else { "-Infinity" }.into())
    } else if x.fract() == 0.0 && x.abs() < 9_007_199_254_740_992.0 {
        Json::Number(Number::from(x as i64))
    } else {
        // Finite, so `from_f64` cannot fail.
        Number::from_f64(x).map_or(Json::Null, Json::Number)
    }
}

/// Convert a JS value to JSON (see the module docs for the rules).
pub fn to_json<'js>(value: &Value<'js>) -> Result<Json, ToJsonError> {
    let mut ancestors: Vec<Value<'js>> = Vec::new();
    convert(value, &mut ancestors)
}

fn convert<'js>(value: &Value<'js>, ancestors: &mut Vec<Value<'js>>) -> Result<Json, ToJsonError> {
    match value.type_of() {
        Type::Uninitialized | Type::Undefined | Type::Null => Ok(Json::Null),
        Type::Bool => Ok(Json::Bool(value.as_bool().unwrap_or(false))),
        Type::Int => Ok(Json::Number(Number::from(value.as_int().unwrap_or(0)))),
        Type::Float => Ok(f64_to_json(value.as_float().unwrap_or(f64::NAN))),
        Type::String => {
            let s = value.as_string().map(|s| s.to_string()).transpose()?;
            Ok(Json::String(s.unwrap_or_default()))
        }
        Type::BigInt => {
            let b: BigInt = value.get()?;
            match b.clone().to_i64() {
                Ok(i) => Ok(Json::Number(Number::from(i))),
                Err(_) => {
                    let s: rquickjs::Coerced<String> = value.get()?;
                    Ok(Json::String(s.0))
                }
            }
        }
        Type::Symbol | Type::Module | Type::Unknown => Ok(Json::Null),
        Type::Function | Type::Constructor => Ok(Json::Null),
        Type::Array => {
            let arr = value.as_array().cloned().ok_or(ToJsonError::Js(rquickjs::Error::Unknown))?;
            enter(value, ancestors)?;
            let mut out = Vec::with_capacity(arr.len());
            for i in 0..arr.len() {
                let item: Value = arr.get(i)?;
                out.push(if item.is_function() { Json::Null } else { convert(&item, ancestors)? });
            }
            ancestors.pop();
            Ok(Json::Array(out))
        }
        Type::Object | Type::Exception | Type::Promise | Type::Proxy => {
            let obj = value.as_object().cloned().ok_or(ToJsonError::Js(rquickjs::Error::Unknown))?;
            enter(value, ancestors)?;
            let out = object_to_json(&obj, ancestors);
            ancestors.pop();
            out
        }
    }
}

fn enter<'js>(value: &Value<'js>, ancestors: &mut Vec<Value<'js>>) -> Result<(), ToJsonError> {
    if ancestors.len() >= MAX_DEPTH {
        return Err(ToJsonError::TooDeep);
    }
    if ancestors.iter().any(|a| a == value) {
        return Err(ToJsonError::Cycle);
    }
    ancestors.push(value.clone());
    Ok(())
}

fn object_to_json<'js>(obj: &Object<'js>, ancestors: &mut Vec<Value<'js>>) -> Result<Json, ToJsonError> {
    let to_json_fn: Value = obj.get("toJSON")?;
    if let Some(f) = to_json_fn.as_function() {
        let replaced: Value = f.call((rquickjs::function::This(obj.clone()),))?;
        // The result replaces the object; a `toJSON` returning itself is a cycle.
        return convert(&replaced, ancestors);
    }
    if obj.is_error() {
        let name: Option<rquickjs::Coerced<String>> = obj.get("name")?;
        let message: Option<rquickjs::Coerced<String>> = obj.get("message")?;
        let mut m = Map::new();
        m.insert("name".into(), Json::String(name.map(|c| c.0).unwrap_or_default()));
        m.insert("message".into(), Json::String(message.map(|c| c.0).unwrap_or_default()));
        return Ok(Json::Object(m));
    }
    let mut m = Map::new();
    for prop in obj.props::<String, Value>() {
        let (k, v) = prop?;
        if v.is_function() {
            continue;
        }
        let j = convert(&v, ancestors)?;
        m.insert(k, j);
    }
    Ok(Json::Object(m))
}

/// Convert JSON to a fresh JS value.
pub fn to_js<'js>(ctx: &Ctx<'js>, json: &Json) -> rquickjs::Result<Value<'js>> {
    Ok(match json {
        Json::Null => Value::new_null(ctx.clone()),
        Json::Bool(b) => Value::new_bool(ctx.clone(), *b),
        Json::Number(n) => number_to_js(ctx, n),
        Json::String(s) => rquickjs::String::from_str(ctx.clone(), s)?.into_value(),
        Json::Array(items) => {
            let arr = Array::new(ctx.clone())?;
            for (i, item) in items.iter().enumerate() {
                arr.set(i, to_js(ctx, item)?)?;
            }
            arr.into_value()
        }
        Json::Object(map) => {
            let obj = Object::new(ctx.clone())?;
            for (k, v) in map {
                obj.set(k.as_str(), to_js(ctx, v)?)?;
            }
            obj.into_value()
        }
    })
}

fn number_to_js<'js>(ctx: &Ctx<'js>, n: &Number) -> Value<'js> {
    if let Some(i) = n.as_i64() {
        if let Ok(i) = i32::try_from(i) {
            return Value::new_int(ctx.clone(), i);
        }
        return Value::new_float(ctx.clone(), i as f64);
    }
    Value::new_float(ctx.clone(), n.as_f64().unwrap_or(f64::NAN))
}

/// Text of one `ctx.log` / `console` argument: strings as they are, `Error`s as `String(e)`,
/// other objects as compact JSON, other primitives as JS would print them.
pub fn display_arg<'js>(value: &Value<'js>) -> String {
    match value.type_of() {
        Type::String => value.as_string().and_then(|s| s.to_string().ok()).unwrap_or_default(),
        Type::Undefined | Type::Uninitialized => "undefined".into(),
        Type::Function | Type::Constructor => {
            let name: Option<String> =
                value.as_object().and_then(|o| o.get::<_, Option<String>>("name").ok().flatten());
            format!("[function {}]", name.unwrap_or_default())
        }
        Type::Exception => coerce_string(value),
        Type::Object | Type::Array | Type::Proxy | Type::Promise => match to_json(value) {
            Ok(j) => j.to_string(),
            Err(e) => format!("[unserializable: {e}]"),
        },
        _ => coerce_string(value),
    }
}

/// `String(value)`, or a placeholder when that throws.
pub fn coerce_string<'js>(value: &Value<'js>) -> String {
    match value.get::<rquickjs::Coerced<String>>() {
        Ok(s) => s.0,
        Err(_) => {
            // `String(x)` threw (e.g. a Symbol-valued toString): drop the pending exception.
            let _ = value.ctx().catch();
            "[unprintable]".into()
        }
    }
}

/// Make a JS function that takes JSON arguments and returns JSON; an `Err(msg)` is thrown into JS
/// as an `Error` with that message. The building block for `ctx.api.*` and for binding
/// `ctx.indicator.*` functions.
pub fn json_function<'js, F>(ctx: &Ctx<'js>, name: &str, f: F) -> rquickjs::Result<Function<'js>>
where
    F: Fn(Vec<Json>) -> Result<Json, String> + 'static,
{
    Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, args: rquickjs::function::Rest<Value<'js>>| -> rquickjs::Result<Value<'js>> {
            let mut json_args = Vec::with_capacity(args.0.len());
            for a in &args.0 {
                json_args.push(to_json(a).map_err(|e| e.throw(&ctx))?);
            }
            match f(json_args) {
                Ok(v) => to_js(&ctx, &v),
                Err(msg) => Err(rquickjs::Exception::throw_message(&ctx, &msg)),
            }
        },
    )?
    .with_name(name)
}

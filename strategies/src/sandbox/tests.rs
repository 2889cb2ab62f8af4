use super::*;
use serde_json::json;

/// Records every API call and answers from a canned table (or an error for `fail*` methods).
#[derive(Default)]
struct TestHost {
    now: i64,
    calls: Vec<(String, Vec<Json>)>,
}

impl TestHost {
    fn at(now: i64) -> Self {
        TestHost { now, calls: Vec::new() }
    }
}

impl Host for TestHost {
    fn now_ms(&self) -> i64 {
        self.now
    }
    fn api(&mut self, method: &str, args: Vec<Json>) -> Result<Json, String> {
        self.calls.push((method.to_string(), args.clone()));
        match method {
            "getBalance" => Ok(json!({"USDT": 1000.5})),
            "getPositions" => Ok(json!([{"symbol": "BTCUSDT", "qty": 0.5}])),
            "getKlines" => Ok(json!([[1, 2, 3, 4], [5, 6, 7, 8]])),
            "placeOrder" => {
                let qty = &args[0]["qty"];
                if qty.is_string() {
                    Err(format!("invalid qty {qty}"))
                } else {
                    Ok(json!({"orderId": "o-1"}))
                }
            }
            "cancelOrder" => Ok(json!(true)),
            m if m.starts_with("fail") => Err(format!("host refused {m}")),
            _ => Ok(json!({"method": method, "args": args})),
        }
    }
}

fn cfg() -> SandboxConfig {
    SandboxConfig {
        strategy: StrategyInfo { id: "s-1".into(), name: "test".into(), params: Json::Null },
        ..SandboxConfig::default()
    }
}

fn load(src: &str) -> Sandbox {
    Sandbox::load("strat.js", src, cfg()).unwrap_or_else(|e| panic!("load failed: {e}"))
}

fn call(sb: &mut Sandbox, hook: Hook, arg: Option<Json>) -> Result<CallOutput, SandboxError> {
    sb.call(hook, arg, &mut TestHost::at(1_700_000_000_000))
}

#[test]
fn script_form_hooks_and_ctx_strategy() {
    let mut sb = load(
        r#"
        var params = { period: 14, symbol: "BTCUSDT" };
        function st_init(ctx) {
            return { symbols: [ctx.strategy.params.symbol], interval: "1m", warmup: ctx.strategy.params.period,
                     id: ctx.strategy.id, name: ctx.strategy.name };
        }
        const st_heartbeat = (ctx, tick) => tick.close * 2;
        "#,
    );
    assert_eq!(sb.kind(), SourceKind::Script);
    assert_eq!(sb.hooks(), vec![Hook::Init, Hook::Heartbeat]);
    let out = call(&mut sb, Hook::Init, None).unwrap();
    assert_eq!(out.value, json!({"symbols": ["BTCUSDT"], "interval": "1m", "warmup": 14, "id": "s-1", "name": "test"}));
    let out = call(&mut sb, Hook::Heartbeat, Some(json!({"close": 1.25}))).unwrap();
    assert_eq!(out.value, json!(2.5));
}

#[test]
fn module_form_hooks_and_params() {
    let mut sb = load(
        r#"
        export const params = { period: 20 };
        const helper = (x) => x + 1;
        export function st_init(ctx) { return { warmup: helper(ctx.strategy.params.period) }; }
        export async function st_heartbeat(ctx, tick) { return tick.n; }
        "#,
    );
    assert_eq!(sb.kind(), SourceKind::Module);
    assert_eq!(sb.hooks(), vec![Hook::Init, Hook::Heartbeat]);
    assert_eq!(call(&mut sb, Hook::Init, None).unwrap().value, json!({"warmup": 21}));
    assert_eq!(call(&mut sb, Hook::Heartbeat, Some(json!({"n": 3}))).unwrap().value, json!(3));
}

#[test]
fn module_top_level_await_is_driven() {
    let mut sb = load(
        r#"
        const base = await Promise.resolve(40);
        export function st_heartbeat() { return base + 2; }
        "#,
    );
    assert_eq!(call(&mut sb, Hook::Heartbeat, None).unwrap().value, json!(42));
}

#[test]
fn async_hook_with_awaited_promises() {
    let mut sb = load(
        r#"
        async function step(x) { await null; return x * 2; }
        async function st_heartbeat(ctx, tick) {
            const a = await step(tick.v);
            const b = await Promise.all([step(1), step(2)]);
            const bal = await ctx.api.getBalance();
            ctx.state.set("last", a);
            ctx.log.info("done", a, b);
            return { a, b, bal };
        }
        "#,
    );
    let out = call(&mut sb, Hook::Heartbeat, Some(json!({"v": 5}))).unwrap();
    assert_eq!(out.value, json!({"a": 10, "b": [2, 4], "bal": {"USDT": 1000.5}}));
    assert_eq!(out.state_changes, BTreeMap::from([("last".to_string(), json!(10))]));
    assert_eq!(out.logs, vec![LogLine { level: LogLevel::Info, message: "done 10 [2,4]".into() }]);
}

#[test]
fn rejected_promise_is_thrown_with_stack() {
    let mut sb = load("async function st_heartbeat(ctx) {\n  await null;\n  throw new RangeError('bad tick');\n}\n");
    match call(&mut sb, Hook::Heartbeat, None) {
        Err(SandboxError::Thrown { message, stack }) => {
            assert_eq!(message, "RangeError: bad tick");
            assert!(stack.contains("strat.js:3"), "stack: {stack}");
        }
        other => panic!("expected Thrown, got {other:?}"),
    }
    assert!(!sb.is_poisoned());
}

#[test]
fn never_settling_promise_is_reported() {
    let mut sb = load("async function st_heartbeat() { await new Promise(() => {}); }");
    assert!(matches!(call(&mut sb, Hook::Heartbeat, None), Err(SandboxError::Unsettled { .. })));
}

#[test]
fn state_get_set_batch_and_change_collection() {
    let mut config = cfg();
    config.initial_state = BTreeMap::from([("count".to_string(), json!(41))]);
    let mut sb = Sandbox::load(
        "strat.js",
        r#"
        function st_heartbeat(ctx) {
            const n = ctx.state.get("count", 0) + 1;
            ctx.state.set("count", n);
            ctx.state.set("tmp", 1);
            ctx.state.set("tmp", 2);                 // last write wins
            ctx.state.batch({ a: { x: [1, 2] }, b: "s" });
            const copy = ctx.state.get("a");
            copy.x.push(3);                          // reads are copies
            return [ctx.state.get("count"), ctx.state.get("missing", "dflt"), ctx.state.get("missing"),
                    ctx.state.get("a")];
        }
        function st_exit(ctx) { ctx.state.set("count", -1); throw new Error("no"); }
        "#,
        config,
    )
    .unwrap();
    let out = call(&mut sb, Hook::Heartbeat, None).unwrap();
    assert_eq!(out.value, json!([42, "dflt", null, {"x": [1, 2]}]));
    assert_eq!(
        out.state_changes,
        BTreeMap::from([
            ("a".to_string(), json!({"x": [1, 2]})),
            ("b".to_string(), json!("s")),
            ("count".to_string(), json!(42)),
            ("tmp".to_string(), json!(2)),
        ])
    );
    let out = call(&mut sb, Hook::Heartbeat, None).unwrap();
    assert_eq!(out.state_changes["count"], json!(43));
    // A failed call leaves the state untouched.
    assert!(call(&mut sb, Hook::Exit, Some(json!("stop"))).is_err());
    assert_eq!(sb.state()["count"], json!(43));
}

#[test]
fn state_rejects_cyclic_values() {
    let mut sb = load(
        r#"function st_heartbeat(ctx) {
            const o = {}; o.self = o;
            try { ctx.state.set("o", o); return "no error"; } catch (e) { return String(e); }
        }"#,
    );
    let out = call(&mut sb, Hook::Heartbeat, None).unwrap();
    assert_eq!(out.value, json!("TypeError: cannot convert a cyclic object to JSON"));
    assert!(out.state_changes.is_empty());
}

#[test]
fn cyclic_return_value_is_an_error_not_a_hang() {
    let mut sb = load("function st_heartbeat() { const a = [1]; a.push({a}); return a; }");
    assert!(matches!(call(&mut sb, Hook::Heartbeat, None), Err(SandboxError::Conversion { .. })));
    // Shared (non-cyclic) references are fine.
    let mut sb = load("function st_heartbeat() { const x = {v: 1}; return [x, x]; }");
    assert_eq!(call(&mut sb, Hook::Heartbeat, None).unwrap().value, json!([{"v": 1}, {"v": 1}]));
}

/// Answers `getPositions` and `getBalance` as [`Rows`] and, for comparison, the same rows as
/// JSON under `getOpenOrders` and `getTicker`.
struct RowsHost {
    rows: Rows,
    single: Rows,
}

impl Host for RowsHost {
    fn now_ms(&self) -> i64 {
        0
    }
    fn api(&mut self, method: &str, _args: Vec<Json>) -> Result<Json, String> {
        match method {
            "getOpenOrders" => Ok(self.rows.to_json()),
            "getTicker" => Ok(self.single.to_json()),
            other => Err(format!("no {other}")),
        }
    }
    fn api_rows(&mut self, method: &str, _args: &[Json]) -> Option<Result<Rows, String>> {
        match method {
            "getPositions" => Some(Ok(self.rows.clone())),
            "getBalance" => Some(Ok(self.single.clone())),
            _ => None,
        }
    }
}

/// A [`Rows`] answer, built straight into JS values, is the value its JSON gives: the same
/// keys in the same order, numbers, strings, booleans, nulls, a non-finite number as null.
#[test]
fn rows_answers_are_the_values_their_json_gives() {
    const KEYS: &[&str] = &["a", "b", "c", "d", "e", "f"];
    let row = |x: f64| {
        vec![
            Field::Num(x),
            Field::Str("long".into()),
            Field::Bool(true),
            Field::Null,
            Field::Num(f64::NAN),
            Field::Num(-0.5),
        ]
    };
    let mut host = RowsHost {
        rows: Rows { keys: KEYS, rows: vec![row(1.25), row(7.0)], single: false },
        single: Rows { keys: KEYS, rows: vec![row(3.0)], single: true },
    };
    let mut sb = load(
        r#"
        function describe(v) {
            return JSON.stringify(v) + "|" + JSON.stringify(v, (k, x) => typeof x + ":" + (x && typeof x === "object" ? Object.keys(x).join(",") : String(x)));
        }
        function st_heartbeat(ctx) {
            const out = [];
            for (let i = 0; i < 3; i++) {
                out.push([describe(ctx.api.getPositions()), describe(ctx.api.getOpenOrders())]);
                out.push([describe(ctx.api.getBalance()), describe(ctx.api.getTicker())]);
            }
            return out;
        }
        "#,
    );
    let out = sb.call(Hook::Heartbeat, None, &mut host).unwrap();
    let pairs = out.value.as_array().unwrap();
    assert_eq!(pairs.len(), 6);
    for pair in pairs {
        assert_eq!(pair[0], pair[1], "rows and their JSON differ");
    }
    assert!(pairs[0][0]
        .as_str()
        .unwrap()
        .starts_with(r#"[{"a":1.25,"b":"long","c":true,"d":null,"e":null,"f":-0.5},"#));
    // No rows at all: an empty array, or null for a single answer.
    host.rows.rows.clear();
    host.single.rows.clear();
    let out = sb.call(Hook::Heartbeat, None, &mut host).unwrap();
    for pair in out.value.as_array().unwrap() {
        assert_eq!(pair[0], pair[1], "rows and their JSON differ");
    }
}

/// The last answer of each `ctx.api` method is kept alive inside the sandbox (its shape
/// and key atoms are then reused); the strategy must still get a fresh value each call.
#[test]
fn api_answers_are_fresh_values_on_every_call() {
    let mut sb = load(
        r#"
        let kept = null;
        function st_heartbeat(ctx) {
            const first = ctx.api.getPositions();
            first[0].qty = 99;
            first.push("extra");
            const second = ctx.api.getPositions();
            const same = first === second || first[0] === second[0];
            if (kept === null) { kept = second; }
            return { same, second, keptQty: kept[0].qty, keptLength: kept.length };
        }
        "#,
    );
    let mut host = TestHost::at(5);
    for _ in 0..2 {
        let out = sb.call(Hook::Heartbeat, None, &mut host).unwrap();
        assert_eq!(out.value["same"], json!(false));
        assert_eq!(out.value["second"], json!([{"symbol": "BTCUSDT", "qty": 0.5}]));
        // An answer kept by the strategy across calls is its own, unchanged by later calls.
        assert_eq!((out.value["keptQty"].clone(), out.value["keptLength"].clone()), (json!(0.5), json!(1)));
    }
}

#[test]
fn api_forwarding_bybit_alias_and_host_errors() {
    let mut sb = load(
        r#"
        function st_heartbeat(ctx) {
            const res = {};
            res.pos = ctx.api.getPositions();
            res.klines = ctx.api.getKlines("BTCUSDT", "1m", 2);
            res.order = ctx.api.placeOrder({ symbol: "BTCUSDT", side: "Buy", type: "Market", qty: 0.01 });
            res.cancel = ctx.api.cancelOrder("o-1");
            res.open = ctx.api.getOpenOrders();
            res.ticker = ctx.api.getTicker("ETHUSDT");
            res.raw = ctx.api.bybit.call("getWalletBalance", { accountType: "UNIFIED" });
            try { ctx.api.placeOrder({ symbol: "BTCUSDT", qty: NaN }); } catch (e) { res.err = e.message; }
            try { ctx.api.bybit.call("failThis"); } catch (e) { res.err2 = e instanceof Error && e.message; }
            return res;
        }
        function st_exit(ctx) { ctx.api.bybit.call("failUncaught", 1); }
        "#,
    );
    let mut host = TestHost::at(5);
    let out = sb.call(Hook::Heartbeat, None, &mut host).unwrap();
    assert_eq!(out.value["pos"], json!([{"symbol": "BTCUSDT", "qty": 0.5}]));
    assert_eq!(out.value["order"], json!({"orderId": "o-1"}));
    assert_eq!(out.value["cancel"], json!(true));
    assert_eq!(out.value["raw"], json!({"method": "getWalletBalance", "args": [{"accountType": "UNIFIED"}]}));
    assert_eq!(out.value["err"], json!("invalid qty \"NaN\""));
    assert_eq!(out.value["err2"], json!("host refused failThis"));
    let methods: Vec<&str> = host.calls.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        methods,
        vec![
            "getPositions",
            "getKlines",
            "placeOrder",
            "cancelOrder",
            "getOpenOrders",
            "getTicker",
            "getWalletBalance",
            "placeOrder",
            "failThis"
        ]
    );
    assert_eq!(host.calls[1].1, vec![json!("BTCUSDT"), json!("1m"), json!(2)]);
    assert_eq!(host.calls[7].1, vec![json!({"symbol": "BTCUSDT", "qty": "NaN"})]);
    match sb.call(Hook::Exit, Some(json!("stop")), &mut host) {
        Err(SandboxError::Thrown { message, .. }) => {
            assert_eq!(message, "Error: host refused failUncaught")
        }
        other => panic!("expected Thrown, got {other:?}"),
    }
}

#[test]
fn log_notify_record() {
    let mut sb = load(
        r#"
        function st_heartbeat(ctx) {
            ctx.log.debug("d", 1, 1.5, true, null, undefined);
            ctx.log.warn({ a: [1, "x"] }, [NaN]);
            ctx.log.error(new TypeError("boom"));
            console.log("via console");
            ctx.notify.telegram("filled " + 3);
            ctx.record("pnl", 12.5);
            ctx.record("n", 2);
        }
        "#,
    );
    let out = call(&mut sb, Hook::Heartbeat, None).unwrap();
    let logs: Vec<(LogLevel, &str)> = out.logs.iter().map(|l| (l.level, l.message.as_str())).collect();
    assert_eq!(
        logs,
        vec![
            (LogLevel::Debug, "d 1 1.5 true null undefined"),
            (LogLevel::Warn, r#"{"a":[1,"x"]} ["NaN"]"#),
            (LogLevel::Error, "TypeError: boom"),
            (LogLevel::Info, "via console"),
        ]
    );
    assert_eq!(out.notifications, vec!["filled 3".to_string()]);
    assert_eq!(out.records, vec![("pnl".to_string(), 12.5), ("n".to_string(), 2.0)]);
}

#[test]
fn date_is_host_time() {
    let mut sb = load(
        r#"
        function st_heartbeat(ctx) {
            return [Date.now(), new Date().getTime(), new Date(0).toISOString(), typeof Date(),
                    new Date() instanceof Date, new Date(2024, 0, 2, 3).getTime(), new Date(0).getHours(),
                    new Date(0).getTimezoneOffset(), String(new Date(0))];
        }
        "#,
    );
    let out = sb.call(Hook::Heartbeat, None, &mut TestHost::at(1_234_567)).unwrap();
    assert_eq!(
        out.value,
        json!([
            1_234_567,
            1_234_567,
            "1970-01-01T00:00:00.000Z",
            "string",
            true,
            1_704_164_400_000i64,
            0,
            0,
            "1970-01-01T00:00:00.000Z"
        ])
    );
    let out = sb.call(Hook::Heartbeat, None, &mut TestHost::at(99)).unwrap();
    assert_eq!(out.value[0], json!(99));
}

#[test]
fn date_at_load_time_and_subclasses() {
    let mut sb = load(
        r#"
        const loadedAt = Date.now();
        class Stamp extends Date { label() { return "t=" + this.getTime(); } }
        function st_heartbeat() {
            const s = new Stamp();
            return [loadedAt, s.label(), s instanceof Date, Date.prototype.constructor === Date,
                    new Date(NaN).toString(), Date.UTC(2024, 0, 1)];
        }"#,
    );
    let out = sb.call(Hook::Heartbeat, None, &mut TestHost::at(42)).unwrap();
    assert_eq!(out.value, json!([0, "t=42", true, true, "Invalid Date", 1_704_067_200_000i64]));
}

#[test]
fn math_random_is_seeded_and_stateful() {
    let src = "function st_heartbeat() { return [Math.random(), Math.random(), Math.random()]; }";
    let draws = |seed: u64| -> Vec<Json> {
        let mut c = cfg();
        c.seed = seed;
        let mut sb = Sandbox::load("strat.js", src, c).unwrap();
        let a = call(&mut sb, Hook::Heartbeat, None).unwrap().value;
        let b = call(&mut sb, Hook::Heartbeat, None).unwrap().value;
        vec![a, b]
    };
    let one = draws(7);
    assert_eq!(one, draws(7), "same seed + same calls => same draws");
    assert_ne!(one[0], one[1], "state advances across calls");
    assert_ne!(one, draws(8), "another seed, other draws");
    for v in one.iter().flat_map(|a| a.as_array().unwrap()) {
        let x = v.as_f64().unwrap();
        assert!((0.0..1.0).contains(&x));
    }
}

#[test]
fn nan_and_special_values_conversion() {
    let mut sb = load(
        r#"function st_heartbeat(ctx, arg) {
            return { nan: NaN, inf: Infinity, ninf: -Infinity, u: undefined, f: function () {}, arr: [1, undefined, () => 1],
                     big: 2 ** 60, neg0: -0, frac: 0.1, int: 3, date: new Date(0), nested: { n: NaN }, arg,
                     argIsInt: Number.isInteger(arg.i), bigint: 12n };
        }"#,
    );
    let out = call(&mut sb, Hook::Heartbeat, Some(json!({"i": 5, "f": 1.5, "s": "x", "l": [true, null]}))).unwrap();
    assert_eq!(
        out.value,
        json!({"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity", "u": null, "arr": [1, null, null],
               "big": 1_152_921_504_606_846_976.0f64, "neg0": 0, "frac": 0.1, "int": 3,
               "date": "1970-01-01T00:00:00.000Z", "nested": {"n": "NaN"},
               "arg": {"i": 5, "f": 1.5, "s": "x", "l": [true, null]}, "argIsInt": true, "bigint": 12})
    );
}

#[test]
fn syntax_error_location_script() {
    let err = Sandbox::load("bad.js", "function st_init(ctx) {\n  let x = 1;\n  x = = 2;\n}\n", cfg()).unwrap_err();
    match &err {
        SandboxError::Syntax { file, line, column, message } => {
            assert_eq!(file, "bad.js");
            assert_eq!(*line, 3);
            assert_eq!(*column, 7);
            assert!(!message.is_empty());
        }
        other => panic!("expected Syntax, got {other:?}"),
    }
    assert!(err.to_string().starts_with("bad.js:3:7: "), "{err}");
}

#[test]
fn syntax_error_location_module() {
    let err = Sandbox::load(
        "bad.mjs",
        "export const params = {};\nexport function st_init(ctx) {\n  return 1 +;\n}\n",
        cfg(),
    )
    .unwrap_err();
    match &err {
        SandboxError::Syntax { file, line, column, .. } => {
            assert_eq!(file, "bad.mjs");
            assert_eq!(*line, 3);
            assert_eq!(*column, 13);
        }
        other => panic!("expected Syntax, got {other:?}"),
    }
    assert!(err.to_string().starts_with("bad.mjs:3:13: "), "{err}");
}

#[test]
fn runtime_syntax_error_at_top_level_is_thrown_not_syntax() {
    let err = Sandbox::load("s.js", "var x = 1;\nJSON.parse('{');\n", cfg()).unwrap_err();
    assert!(matches!(err, SandboxError::Thrown { .. }), "{err:?}");
}

#[test]
fn throw_in_st_init() {
    let mut sb = load("function st_init(ctx) {\n  null.x;\n}\n");
    match call(&mut sb, Hook::Init, None) {
        Err(SandboxError::Thrown { message, stack }) => {
            assert!(message.starts_with("TypeError: "), "{message}");
            assert!(stack.contains("st_init") && stack.contains("strat.js:2"), "{stack}");
        }
        other => panic!("expected Thrown, got {other:?}"),
    }
    // A thrown non-Error value.
    let mut sb = load("function st_init() { throw 'plain'; }");
    match call(&mut sb, Hook::Init, None) {
        Err(SandboxError::Thrown { message, .. }) => assert_eq!(message, "Uncaught plain"),
        other => panic!("expected Thrown, got {other:?}"),
    }
    // The sandbox stays usable after an ordinary throw.
    assert!(!sb.is_poisoned());
}

#[test]
fn infinite_loop_runs_out_of_fuel_then_timeout() {
    let src = "function st_heartbeat() { for (;;) {} }\nfunction st_exit() { return 1; }";
    let mut sb = load(src);
    assert_eq!(call(&mut sb, Hook::Heartbeat, None), Err(SandboxError::OutOfFuel { fuel: DEFAULT_CALL_FUEL }));
    assert!(sb.is_poisoned());
    assert_eq!(call(&mut sb, Hook::Exit, None), Err(SandboxError::Poisoned));

    // Fuel is deterministic: the same budget is used on every run.
    let mut c = cfg();
    c.call_fuel = 50;
    let used: Vec<u64> = (0..2)
        .map(|_| {
            let mut sb = Sandbox::load("strat.js", src, c.clone()).unwrap();
            assert!(matches!(call(&mut sb, Hook::Heartbeat, None), Err(SandboxError::OutOfFuel { .. })));
            sb.last_fuel_used()
        })
        .collect();
    assert_eq!(used, vec![51, 51]);

    let mut c = cfg();
    c.call_fuel = u64::MAX;
    c.call_timeout_ms = 100;
    let mut sb = Sandbox::load("strat.js", src, c).unwrap();
    let t = std::time::Instant::now();
    assert_eq!(call(&mut sb, Hook::Heartbeat, None), Err(SandboxError::Timeout { timeout_ms: 100 }));
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
    assert!(sb.is_poisoned());
}

#[test]
fn infinite_loop_at_top_level_and_in_promise_jobs() {
    let err = Sandbox::load("s.js", "while (true) {}", cfg()).unwrap_err();
    assert!(matches!(err, SandboxError::OutOfFuel { .. }), "{err:?}");
    let mut sb = load("async function st_heartbeat() { await null; while (true) {} }");
    assert!(matches!(call(&mut sb, Hook::Heartbeat, None), Err(SandboxError::OutOfFuel { .. })));
    // A job chain that never ends after the hook returned.
    let mut c = cfg();
    c.call_fuel = 20; // unoptimised test builds run promise jobs slowly
    let src = "function spin() { Promise.resolve().then(spin); }\nfunction st_heartbeat() { spin(); return 1; }";
    let mut sb = Sandbox::load("s.js", src, c).unwrap();
    let r = call(&mut sb, Hook::Heartbeat, None);
    assert!(matches!(r, Err(SandboxError::OutOfFuel { .. })), "{r:?} {}", sb.last_fuel_used());
    // Catching the interrupt is impossible.
    let mut sb = load("function st_heartbeat() { try { for (;;) {} } catch (e) { return 'caught'; } }");
    assert!(matches!(call(&mut sb, Hook::Heartbeat, None), Err(SandboxError::OutOfFuel { .. })));
}

#[test]
fn unbounded_allocation_is_out_of_memory_and_host_survives() {
    let mut c = cfg();
    c.memory_limit_bytes = 8 * 1024 * 1024;
    c.call_fuel = u64::MAX; // let memory, not fuel, stop it
    c.call_timeout_ms = 20_000;
    for src in [
        "function st_heartbeat() { const a = []; for (;;) a.push({ x: a.length, s: 'abc' + a.length }); }",
        "function st_heartbeat() { let s = 'x'; for (;;) s = s.repeat(2); }",
        "async function st_heartbeat() { await null; const m = new Map(); for (let i = 0; ; i++) m.set(i, [i]); }",
        "var keep = []; function st_heartbeat() { for (;;) keep.push(new Float64Array(1e5)); }",
    ] {
        let mut sb = Sandbox::load("strat.js", src, c.clone()).unwrap();
        let r = call(&mut sb, Hook::Heartbeat, None);
        assert_eq!(r, Err(SandboxError::OutOfMemory { limit_bytes: 8 * 1024 * 1024 }), "{src}");
        assert!(sb.is_poisoned());
        assert_eq!(call(&mut sb, Hook::Heartbeat, None), Err(SandboxError::Poisoned));
        drop(sb); // freeing a runtime that hit its limit must not abort
    }
    // A strategy that swallows the out-of-memory errors is stopped by its fuel (or, in slow
    // unoptimised builds, the backstop) instead.
    let mut c = cfg();
    c.memory_limit_bytes = 8 * 1024 * 1024;
    let src = "function st_heartbeat() { let head = null; for (;;) { try { head = { next: head }; } catch (e) {} } }";
    let mut sb = Sandbox::load("strat.js", src, c).unwrap();
    let r = call(&mut sb, Hook::Heartbeat, None);
    assert!(matches!(r, Err(SandboxError::OutOfFuel { .. }) | Err(SandboxError::Timeout { .. })), "{r:?}");
    assert!(sb.is_poisoned());
    drop(sb);
    // A fresh sandbox works afterwards.
    let mut sb = load("function st_heartbeat() { return [1, 2, 3].map(x => x * 2); }");
    assert_eq!(call(&mut sb, Hook::Heartbeat, None).unwrap().value, json!([2, 4, 6]));
}

#[test]
fn deep_recursion_is_a_thrown_error() {
    let mut sb = load("function f(n) { return f(n + 1) + 1; }\nfunction st_heartbeat() { return f(0); }");
    match call(&mut sb, Hook::Heartbeat, None) {
        Err(SandboxError::Thrown { message, .. }) => {
            assert!(message.contains("stack"), "{message}")
        }
        other => panic!("expected Thrown, got {other:?}"),
    }
}

#[test]
fn imports_are_refused() {
    let err = Sandbox::load("m.js", "import { x } from './other.js';\nexport function st_init() { return x; }", cfg())
        .unwrap_err();
    assert_eq!(err, SandboxError::ImportRefused { file: "m.js".into(), specifier: "./other.js".into() });
    // Dynamic import rejects inside JS.
    let mut sb = load(
        "async function st_heartbeat() { try { await import('fs'); return 'imported'; } catch (e) { return 'refused'; } }",
    );
    assert_eq!(call(&mut sb, Hook::Heartbeat, None).unwrap().value, json!("refused"));
}

#[test]
fn no_outside_access() {
    let mut sb = load(
        r#"function st_heartbeat() {
            const out = {};
            for (const n of ["setTimeout", "setInterval", "fetch", "require"]) {
                try { globalThis[n](() => {}, 0); out[n] = "ran"; } catch (e) { out[n] = e.message.split(" ")[0]; }
            }
            out.types = [typeof performance, typeof std, typeof os, typeof WeakRef, typeof FinalizationRegistry];
            return out;
        }"#,
    );
    let out = call(&mut sb, Hook::Heartbeat, None).unwrap();
    assert_eq!(
        out.value,
        json!({"setTimeout": "setTimeout", "setInterval": "setInterval", "fetch": "fetch", "require": "require",
               "types": ["undefined", "undefined", "undefined", "undefined", "undefined"]})
    );
}

#[test]
fn missing_hooks_return_empty_output() {
    let mut sb = load("var x = 1;");
    assert!(sb.hooks().is_empty());
    for h in Hook::ALL {
        assert_eq!(call(&mut sb, h, None).unwrap(), CallOutput::default());
    }
    // Non-function bindings with hook names are not hooks.
    let sb = load("var st_init = 5;");
    assert!(!sb.has_hook(Hook::Init));
}

#[test]
fn a_strategy_without_st_heartbeat_is_named() {
    assert_eq!(
        load("function st_init(ctx) {}").missing_heartbeat().as_deref(),
        Some("strat.js: defines no st_heartbeat function")
    );
    assert_eq!(
        load("var st_heartbeat = 5;").missing_heartbeat().as_deref(),
        Some("strat.js: defines no st_heartbeat function")
    );
    assert_eq!(load("function st_heartbeat(ctx, tick) {}").missing_heartbeat(), None);
}

#[test]
fn all_hook_names_are_discovered() {
    let src: String = Hook::ALL
        .iter()
        .map(|h| format!("function {}(ctx, a) {{ return '{}:' + a; }}\n", h.js_name(), h.js_name()))
        .collect();
    let mut sb = load(&src);
    assert_eq!(sb.hooks(), Hook::ALL.to_vec());
    assert_eq!(call(&mut sb, Hook::Exit, Some(json!("shutdown"))).unwrap().value, json!("st_exit:shutdown"));
    assert_eq!(call(&mut sb, Hook::WorkerHeartbeat, Some(json!(1))).unwrap().value, json!("st_worker_heartbeat:1"));
}

#[test]
fn params_defaults_overlay() {
    let src = "const params = { period: 14, symbol: 'BTCUSDT', nested: { a: 1 } };\nfunction st_init(ctx) { return ctx.strategy.params; }";
    let mut c = cfg();
    c.strategy.params = json!({"period": 30, "extra": true});
    let mut sb = Sandbox::load("s.js", src, c).unwrap();
    let expected = json!({"period": 30, "symbol": "BTCUSDT", "nested": {"a": 1}, "extra": true});
    assert_eq!(sb.params(), &expected);
    assert_eq!(call(&mut sb, Hook::Init, None).unwrap().value, expected);
    // No declared params, none given: an empty object.
    let mut sb = load("function st_init(ctx) { return ctx.strategy.params; }");
    assert_eq!(call(&mut sb, Hook::Init, None).unwrap().value, json!({}));
    // Module form.
    let mut c = cfg();
    c.strategy.params = json!({"b": 2});
    let mut sb = Sandbox::load(
        "m.js",
        "export const params = {a: 1, b: 1};\nexport function st_init(ctx) { return ctx.strategy.params; }",
        c,
    )
    .unwrap();
    assert_eq!(call(&mut sb, Hook::Init, None).unwrap().value, json!({"a": 1, "b": 2}));
}

#[test]
fn identical_outputs_run_after_run() {
    let src = r#"
        let calls = 0;
        async function st_heartbeat(ctx, tick) {
            calls += 1;
            const r = Math.random();
            ctx.state.set("calls", calls);
            ctx.state.set("r", r);
            ctx.log.info("tick", tick.i, new Date().toISOString(), r);
            const pos = ctx.api.getPositions();
            if (r > 0.5) ctx.api.placeOrder({ symbol: "BTCUSDT", side: "Buy", type: "Market", qty: r });
            ctx.record("r", r);
            return { calls, r, pos };
        }"#;
    let run = || {
        let mut c = cfg();
        c.seed = 42;
        let mut sb = Sandbox::load("s.js", src, c).unwrap();
        let mut host = TestHost::default();
        let mut outs = Vec::new();
        for i in 0..20 {
            host.now = 1_000 * i;
            outs.push(sb.call(Hook::Heartbeat, Some(json!({"i": i})), &mut host).unwrap());
        }
        (outs, host.calls)
    };
    assert_eq!(run(), run());
}

#[test]
fn logs_of_failed_call_are_kept_aside() {
    let mut sb = load("function st_heartbeat(ctx) { ctx.log.error('about to fail'); throw new Error('x'); }");
    assert!(call(&mut sb, Hook::Heartbeat, None).is_err());
    let d = sb.take_discarded_output();
    assert_eq!(d.logs[0].message, "about to fail");
}

#[test]
fn heartbeat_throughput() {
    let mut sb = load(
        r#"function st_heartbeat(ctx, tick) {
            const n = ctx.state.get("n", 0);
            if (tick.close > 100) ctx.state.set("n", n + 1);
            return null;
        }"#,
    );
    let mut host = TestHost::at(1);
    let arg = json!({"symbol": "BTCUSDT", "close": 101.5, "ts": 1_700_000_000_000i64});
    let n = 20_000;
    let t = std::time::Instant::now();
    for _ in 0..n {
        sb.call(Hook::Heartbeat, Some(arg.clone()), &mut host).unwrap();
    }
    let per_sec = n as f64 / t.elapsed().as_secs_f64();
    eprintln!("heartbeat calls/s: {per_sec:.0} (fuel used by last call: {})", sb.last_fuel_used());
    assert_eq!(sb.state()["n"], json!(n));
}

/// Measures interrupt-handler invocations per second of a tight loop and of a loop with calls.
/// `cargo test -p strategies --release -- --ignored calibrate_fuel --nocapture`
#[test]
#[ignore]
fn calibrate_fuel() {
    for (what, src) in [
        ("empty loop", "function st_heartbeat() { for (;;) {} }"),
        (
            "loop with calls",
            "function f(x) { return x + 1; }\nfunction st_heartbeat() { let x = 0; for (;;) x = f(x); }",
        ),
        (
            "allocating loop",
            "function st_heartbeat() { let a = []; for (;;) { a.push({ x: 1 }); if (a.length > 1000) a = []; } }",
        ),
        ("promise job chain", "function spin() { Promise.resolve().then(spin); }\nfunction st_heartbeat() { spin(); }"),
        ("async loop", "async function st_heartbeat() { for (;;) await null; }"),
    ] {
        let mut c = cfg();
        c.call_fuel = u64::MAX;
        c.call_timeout_ms = 1_000;
        let mut sb = Sandbox::load("s.js", src, c).unwrap();
        let r = call(&mut sb, Hook::Heartbeat, None);
        assert!(matches!(r, Err(SandboxError::Timeout { .. })));
        eprintln!("{what}: {} fuel units per second", sb.last_fuel_used());
    }
    let mut sb = load(
        r#"function st_heartbeat(ctx, tick) {
            const k = ctx.api.getKlines("BTCUSDT", "1m", 200);
            const closes = []; for (let i = 0; i < 300; i++) closes.push(100 + Math.sin(i) * 5);
            let s = 0; for (let i = 0; i < closes.length; i++) s += closes[i];
            const sma = s / closes.length;
            ctx.state.batch({ sma, last: tick.close });
            ctx.log.info("sma", sma);
            if (tick.close > sma) ctx.api.placeOrder({ symbol: "BTCUSDT", side: "Buy", type: "Market", qty: 0.01 });
            return sma;
        }"#,
    );
    let mut max = 0;
    for _ in 0..1000 {
        call(&mut sb, Hook::Heartbeat, Some(json!({"close": 101.0}))).unwrap();
        max = max.max(sb.last_fuel_used());
    }
    eprintln!("typical heartbeat: max {max} fuel units over 1000 calls");
}

//! The LLM trader's pure parts, table by table: the version header, durations, reading a
//! provider's body, the schema, and every risk gate's verdict.

use journal::event::{Event, Instrument, Kline, TraderStart};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::json;

use super::{
    config::{self, check_version, parse_duration_ms, EntryStyle, ModelConfig, Provider, TraderConfig},
    decision::{self, Decision, Signal},
};
use crate::sink::{FoldSink, Sink};

#[test]
fn the_template_must_begin_with_its_version() {
    struct Case {
        template: &'static str,
        version: &'static str,
        ok: bool,
    }
    let cases = [
        Case { template: "Version: v1\nhello", version: "v1", ok: true },
        Case { template: "Version:   v1  \nhello", version: "v1", ok: true },
        Case { template: "Version: v2\nhello", version: "v1", ok: false },
        Case { template: "hello\nVersion: v1", version: "v1", ok: false },
        Case { template: "", version: "v1", ok: false },
    ];
    for c in cases {
        let got = check_version(c.template, c.version);
        assert_eq!(got.is_ok(), c.ok, "{:?}: {got:?}", c.template);
        if let Err(e) = got {
            assert!(e.starts_with("line 1:"), "{e}");
        }
    }
}

#[test]
fn durations() {
    let cases = [("1h", Some(3_600_000)), ("15m", Some(900_000)), ("0", Some(0)), ("1d", Some(86_400_000))];
    for (text, want) in cases {
        assert_eq!(parse_duration_ms(text), want, "{text}");
    }
    for bad in ["", "h", "1y", "-1h", "0m"] {
        assert_eq!(parse_duration_ms(bad), None, "{bad}");
    }
}

fn decision_json(signal: &str, confidence: u32) -> serde_json::Value {
    json!({
        "signal": signal, "symbol": "BTCUSDT", "leverage": 5, "position_size_usd": 1000,
        "entry_price": 100, "stop_loss": 98, "take_profit": 106, "risk_usd": 20,
        "confidence": confidence, "invalidation_condition": "close below 97", "reasoning": "trend"
    })
}

#[test]
fn reading_a_providers_body() {
    let answer = decision_json("buy_to_enter", 80);
    let openai = json!({"choices": [{"message": {"content": answer.to_string()}, "finish_reason": "stop"}]});
    assert_eq!(decision::answer(Provider::Openai, &openai.to_string()).unwrap(), answer);
    let anthropic = json!({"content": [{"type": "text", "text": "x"}, {"type": "tool_use", "input": answer}], "stop_reason": "tool_use"});
    assert_eq!(decision::answer(Provider::Anthropic, &anthropic.to_string()).unwrap(), answer);
    let refused = json!({"choices": [{"message": {"content": null, "refusal": "no"}}]});
    let cut = json!({"choices": [{"message": {"content": "{\"sig"}, "finish_reason": "length"}]});
    let not_json = json!({"choices": [{"message": {"content": "{\"sig"}, "finish_reason": "stop"}]});
    let no_tool = json!({"content": [{"type": "text", "text": "{}"}], "stop_reason": "end_turn"});
    let cases = [
        (Provider::Openai, refused.to_string(), "refused"),
        (Provider::Openai, cut.to_string(), "token limit"),
        (Provider::Openai, not_json.to_string(), "not valid JSON"),
        (Provider::Openai, "{\"choices\": [".to_owned(), "body is not JSON"),
        (Provider::Anthropic, no_tool.to_string(), "no tool_use"),
    ];
    for (provider, body, want) in cases {
        let err = decision::answer(provider, &body).unwrap_err();
        assert!(err.contains(want), "{body}: {err}");
    }
}

#[test]
fn the_default_schema_accepts_a_decision_and_names_what_breaks_it() {
    let validator = jsonschema::validator_for(&config::default_schema()).unwrap();
    assert!(decision::schema_errors(&validator, &decision_json("hold", 50)).is_empty());
    let mut extra = decision_json("hold", 50);
    extra["extra"] = json!(1);
    let cases = [
        (decision_json("buy", 50), "/signal"),
        (decision_json("hold", 150), "/confidence"),
        (extra, "extra"),
        (json!({"signal": "hold"}), "required"),
    ];
    for (value, want) in cases {
        let errors = decision::schema_errors(&validator, &value);
        assert!(errors.iter().any(|e| e.contains(want)), "{value}: {errors:?}");
    }
}

fn model() -> ModelConfig {
    ModelConfig {
        provider: Provider::Openai,
        base_url: "http://127.0.0.1:1/v1".into(),
        model: "m".into(),
        key_env: "K".into(),
        temperature: None,
        max_tokens: 100,
        priority: 1,
        timeout_ms: 1000,
        usd_per_million_input: None,
        usd_per_million_output: None,
        tokens_per_day: None,
    }
}

fn trader_config() -> TraderConfig {
    TraderConfig {
        id: "t".into(),
        template_id: "t.tmpl".into(),
        template: "Version: v1\n{{ trader }}".into(),
        prompt_version: "v1".into(),
        schema: config::default_schema(),
        symbols: vec!["BTCUSDT".into()],
        interval_ms: 60_000,
        decision_interval_ms: 60_000,
        klines: 10,
        stale_after_ms: 120_000,
        cache_ttl_ms: 0,
        capital: dec!(10000),
        leverage: 10,
        entry: EntryStyle::MarketIoc,
        max_slippage_bps: None,
        risk: config::RiskConfig {
            min_confidence: 70,
            min_risk_reward: dec!(2),
            max_positions: 1,
            max_position_size_usd: dec!(2000),
            max_margin_use_pct: dec!(50),
            leverage_major_max: 10,
            leverage_alt_max: 5,
            major_coins: vec!["BTCUSDT".into()],
            allow_pyramiding: false,
            allow_hedging: false,
        },
        budget: config::BudgetConfig::default(),
        models: vec![model()],
        overall_budget: None,
    }
}

/// A ledger with trader `t` started and BTCUSDT at 100, holding `held` BTCUSDT.
fn state(held: Decimal) -> FoldSink {
    let mut sink = FoldSink::new();
    let instrument = Instrument {
        symbol: "BTCUSDT".into(),
        tick_size: dec!(0.01),
        qty_step: dec!(0.001),
        min_qty: dec!(0.001),
        max_leverage: dec!(100),
        maintenance_margin_rate: dec!(0.005),
        taker_fee_rate: dec!(0.001),
        maker_fee_rate: dec!(0.0002),
    };
    sink.emit(0, "", &Event::InstrumentDefined(instrument)).unwrap();
    let start = TraderStart {
        exchange: "sim".into(),
        account: "a".into(),
        currency: "USDT".into(),
        allocation_pct: dec!(100),
        capital_quote: dec!(10000),
        leverage: dec!(10),
    };
    sink.emit(0, "t", &Event::TraderStarted(start)).unwrap();
    let kline = Kline {
        symbol: "BTCUSDT".into(),
        interval_ms: 60_000,
        open_time_ms: 0,
        open: dec!(100),
        high: dec!(100),
        low: dec!(100),
        close: dec!(100),
        volume: dec!(1),
        closed: true,
    };
    sink.emit(60_000, "", &Event::KlineReceived(kline)).unwrap();
    if !held.is_zero() {
        let side = if held > Decimal::ZERO { journal::event::Side::Buy } else { journal::event::Side::Sell };
        // A fill of an order the ledger does not know moves nothing: submit it first.
        let intent = journal::event::OrderIntent {
            cloid: journal::Cloid::derive("t", 0, 0),
            symbol: "BTCUSDT".into(),
            side,
            kind: journal::event::OrderKind::Market,
            qty: held.abs(),
            price: None,
            trigger_price: None,
            reduce_only: false,
            tif: journal::event::TimeInForce::Ioc,
        };
        sink.emit(60_000, "t", &Event::OrderSubmitted(intent)).unwrap();
        let fill = journal::event::Fill {
            cloid: journal::Cloid::derive("t", 0, 0),
            fill_id: "f".into(),
            symbol: "BTCUSDT".into(),
            side,
            qty: held.abs(),
            price: dec!(100),
            fee_quote: Decimal::ZERO,
            liquidity: journal::event::Liquidity::Taker,
        };
        sink.emit(60_000, "t", &Event::OrderFilled(fill)).unwrap();
    }
    sink
}

#[test]
fn every_gate_says_why() {
    struct Case {
        name: &'static str,
        decision: serde_json::Value,
        held: Decimal,
        failed: &'static [&'static str],
    }
    let with = |key: &str, value: serde_json::Value| {
        let mut d = decision_json("buy_to_enter", 80);
        d[key] = value;
        d
    };
    let cases = [
        Case { name: "all pass", decision: decision_json("buy_to_enter", 80), held: dec!(0), failed: &[] },
        Case {
            name: "low confidence",
            decision: decision_json("buy_to_enter", 60),
            held: dec!(0),
            failed: &["min_confidence"],
        },
        Case {
            name: "reward:risk 1",
            decision: with("take_profit", json!(102)),
            held: dec!(0),
            failed: &["min_risk_reward"],
        },
        Case {
            name: "stop above entry",
            decision: with("stop_loss", json!(101)),
            held: dec!(0),
            failed: &["price_order", "min_risk_reward"],
        },
        Case {
            name: "too big",
            decision: with("position_size_usd", json!(3000)),
            held: dec!(0),
            failed: &["max_position_size_usd"],
        },
        Case { name: "leverage", decision: with("leverage", json!(20)), held: dec!(0), failed: &["leverage_cap"] },
        Case {
            name: "unknown symbol",
            // An alt: its leverage cap (5) still lets the decision's 5 through.
            decision: with("symbol", json!("DOGEUSDT")),
            held: dec!(0),
            failed: &["symbol"],
        },
        Case {
            name: "pyramiding",
            decision: decision_json("buy_to_enter", 80),
            held: dec!(1),
            failed: &["no_pyramiding"],
        },
        Case {
            name: "hedging",
            decision: {
                let mut d = decision_json("sell_to_enter", 80);
                d["stop_loss"] = json!(102);
                d["take_profit"] = json!(94);
                d
            },
            held: dec!(1),
            failed: &["no_hedging"],
        },
        Case { name: "leverage 1", decision: with("leverage", json!(1)), held: dec!(0), failed: &[] },
        Case {
            name: "close without a position",
            decision: decision_json("close", 80),
            held: dec!(0),
            failed: &["position_exists"],
        },
        Case { name: "close", decision: decision_json("close", 10), held: dec!(-1), failed: &[] },
    ];
    let config = trader_config();
    for c in cases {
        let sink = state(c.held);
        let decision = Decision::read(&c.decision);
        let verdicts = decision::gates(&config, sink.state(), &decision);
        let failed: Vec<&str> = verdicts.iter().filter(|v| !v.passed).map(|v| v.rule.as_str()).collect();
        assert_eq!(failed, c.failed, "{}: {verdicts:?}", c.name);
    }
    assert_eq!(Decision::read(&decision_json("wait", 1)).signal, Signal::Hold);
}

#[test]
fn the_slippage_cap_is_a_limit_on_the_tick_grid_never_past_the_cap() {
    use journal::event::Side;
    // 17150.3 ± 20 bps = 17184.6006 / 17116.0 (to 4 places): a buy rounds down, a sell up.
    assert_eq!(super::slippage_cap(Side::Buy, dec!(17150.3), dec!(20), Some(dec!(0.1))), dec!(17184.6));
    assert_eq!(super::slippage_cap(Side::Sell, dec!(17150.3), dec!(20), Some(dec!(0.1))), dec!(17116.0));
    assert_eq!(super::slippage_cap(Side::Sell, dec!(17150.3), dec!(20), Some(dec!(0.5))), dec!(17116.0));
    assert_eq!(super::slippage_cap(Side::Buy, dec!(17150.3), dec!(20), Some(dec!(0.5))), dec!(17184.5));
    // Exact decimals, no tick: the cap itself.
    assert_eq!(super::slippage_cap(Side::Buy, dec!(100), dec!(15), None), dec!(100.15));
    assert_eq!(super::slippage_cap(Side::Sell, dec!(100), dec!(15), None), dec!(99.85));
}

#[test]
fn a_slippage_cap_needs_a_market_entry_and_a_sane_size() {
    let mut c = trader_config();
    c.max_slippage_bps = Some(dec!(25));
    assert_eq!(c.check(), Ok(()));
    c.max_slippage_bps = Some(dec!(0));
    assert!(c.check().unwrap_err().contains("max_slippage_bps"));
    c.max_slippage_bps = Some(dec!(25));
    c.entry = EntryStyle::Limit;
    assert!(c.check().unwrap_err().contains("market_ioc"));
}

//! nof0's decision schema, and a checker for the JSON-Schema subset that OpenAI's strict mode
//! and Anthropic's tool schemas share, so an answer that breaks its schema is an error here and
//! never reaches a decider.
//!
//! The checker knows `type` (one or a list), `enum`, `minimum`, `maximum`, `minLength`,
//! `maxLength`, `properties`, `required`, `additionalProperties: false` and `items`; other
//! keywords are ignored (they constrain nothing here rather than reject everything).

use serde_json::{json, Value};

/// nof0's decision (VENUES.md §6.3, `go/schemas/decision_output.json`), in strict mode's form:
/// every property required, no others allowed.
pub fn decision_schema() -> Value {
    let number = json!({"type": "number", "minimum": 0});
    json!({
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

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        // 3.0 is an integer to JSON Schema; serde_json keeps it as a float, so check the value.
        "integer" => {
            value.as_i64().is_some() || value.as_u64().is_some() || value.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => true,
    }
}

/// Checks `value` against `schema`; the error names the path (`$.confidence`) and the rule.
///
/// # Errors
/// The first rule broken, depth first in the schema's property order.
pub fn validate(schema: &Value, value: &Value) -> Result<(), String> {
    check(schema, value, "$")
}

fn check(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !types.is_empty() && !types.iter().any(|t| type_matches(t, value)) {
        return Err(format!("{path}: expected {}, got {value}", types.join(" or ")));
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            return Err(format!("{path}: {value} is not one of {}", Value::Array(allowed.clone())));
        }
    }
    if let Some(number) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64).filter(|min| number < *min) {
            return Err(format!("{path}: {value} is below the minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64).filter(|max| number > *max) {
            return Err(format!("{path}: {value} is above the maximum {max}"));
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if let Some(min) = schema.get("minLength").and_then(Value::as_u64).filter(|min| chars < *min) {
            return Err(format!("{path}: shorter than {min} characters"));
        }
        if let Some(max) = schema.get("maxLength").and_then(Value::as_u64).filter(|max| chars > *max) {
            return Err(format!("{path}: longer than {max} characters"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for key in schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(key) {
                return Err(format!("{path}: the required property {key:?} is missing"));
            }
        }
        if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
            if let Some(extra) = object.keys().find(|key| !properties.is_some_and(|p| p.contains_key(*key))) {
                return Err(format!("{path}: the property {extra:?} is not allowed"));
            }
        }
        for (key, inner) in properties.into_iter().flatten() {
            if let Some(field) = object.get(key) {
                check(inner, field, &format!("{path}.{key}"))?;
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(items, item, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> Value {
        json!({
            "signal": "buy_to_enter", "symbol": "BTCUSDT", "leverage": 5, "position_size_usd": 2000.0,
            "entry_price": 100.0, "stop_loss": 98.0, "take_profit": 106.0, "risk_usd": 40.0, "confidence": 80,
            "invalidation_condition": "below 98", "reasoning": "trend"
        })
    }

    #[test]
    fn checks_a_decision() {
        let schema = decision_schema();
        assert_eq!(validate(&schema, &good()), Ok(()));
        let cases: [(&str, Value, &str); 8] = [
            ("signal", json!("long"), "$.signal: \"long\" is not one of"),
            ("confidence", json!(150), "$.confidence: 150 is above the maximum 100"),
            ("confidence", json!(80.5), "$.confidence: expected integer"),
            ("leverage", json!(-1), "$.leverage: -1 is below the minimum 0"),
            ("symbol", json!(""), "$.symbol: shorter than 1 characters"),
            ("reasoning", Value::Null, "$.reasoning: expected string"),
            ("mood", json!("bullish"), "$: the property \"mood\" is not allowed"),
            ("stop_loss", json!("98"), "$.stop_loss: expected number"),
        ];
        for (key, value, expected) in cases {
            let mut decision = good();
            decision[key] = value;
            let error = validate(&schema, &decision).unwrap_err();
            assert!(error.starts_with(expected), "{key}: {error}");
        }
        let mut missing = good();
        missing.as_object_mut().unwrap().remove("reasoning");
        assert_eq!(validate(&schema, &missing), Err("$: the required property \"reasoning\" is missing".to_owned()));
        assert!(validate(&schema, &json!([1])).unwrap_err().starts_with("$: expected object"));
        assert_eq!(validate(&json!({"type": "integer"}), &json!(3.0)), Ok(()));
    }
}

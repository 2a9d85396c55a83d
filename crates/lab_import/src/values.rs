//! Values as other trackers write them, made into Lab's.

use lab_types::Value;

/// A parameter MLflow kept as text (it stores `str(value)`): a number or a
/// boolean spelled as Python spells it becomes one again; anything else stays
/// text. An integer must read back to the same text (`7`, not `007` or
/// `+7`); a float must be finite and spelled with a digit first after an
/// optional `-` (`0.01`, `1e-05`, `-2.5`), not `nan`, `inf` or `.5`.
#[must_use]
pub fn text_to_value(text: &str) -> Value {
    if let Ok(i) = text.parse::<i64>()
        && i.to_string() == text
    {
        return Value::Int(i);
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.starts_with(|c: char| c.is_ascii_digit())
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'))
        && !(digits.starts_with('0') && digits.len() > 1 && digits.as_bytes()[1].is_ascii_digit())
        && let Ok(f) = text.parse::<f64>()
        && f.is_finite()
    {
        return Value::Float(f);
    }
    match text {
        "True" | "true" => Value::Bool(true),
        "False" | "false" => Value::Bool(false),
        _ => Value::Str(text.to_owned()),
    }
}

/// A JSON value as a Lab value: numbers stay integers when they are, objects
/// keep their order.
#[must_use]
pub fn json_to_value(json: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match json {
        J::Null => Value::Null,
        J::Bool(b) => Value::Bool(*b),
        J::Number(n) => n
            .as_i64()
            .map(Value::Int)
            .or_else(|| n.as_f64().map(Value::Float))
            .unwrap_or_else(|| Value::Str(n.to_string())),
        J::String(s) => Value::Str(s.clone()),
        J::Array(items) => Value::List(items.iter().map(json_to_value).collect()),
        J::Object(map) => Value::Dict(
            map.iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        ),
    }
}

/// Flattens nested objects into `prefix.key` entries (lists and scalars are
/// leaves), appending to `out`.
pub fn flatten_json(prefix: &str, json: &serde_json::Value, out: &mut Vec<(String, Value)>) {
    match json {
        serde_json::Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_json(&key, v, out);
            }
        }
        _ => out.push((prefix.to_owned(), json_to_value(json))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mlflow_text_becomes_numbers_only_when_it_spells_one() {
        assert_eq!(text_to_value("32"), Value::Int(32));
        assert_eq!(text_to_value("-3"), Value::Int(-3));
        assert_eq!(text_to_value("0.01"), Value::Float(0.01));
        assert_eq!(text_to_value("1e-05"), Value::Float(1e-5));
        assert_eq!(text_to_value("True"), Value::Bool(true));
        assert_eq!(text_to_value("007"), Value::Str("007".into()));
        assert_eq!(text_to_value("+7"), Value::Str("+7".into()));
        assert_eq!(text_to_value("nan"), Value::Str("nan".into()));
        assert_eq!(text_to_value(".5"), Value::Str(".5".into()));
        assert_eq!(text_to_value("adam"), Value::Str("adam".into()));
        assert_eq!(text_to_value("[1, 2]"), Value::Str("[1, 2]".into()));
        assert_eq!(text_to_value(""), Value::Str(String::new()));
    }

    #[test]
    fn nested_objects_flatten_with_dots() {
        let json = serde_json::json!({"opt": {"lr": 0.1, "betas": [0.9, 0.99]}, "n": 3, "e": {}});
        let mut out = Vec::new();
        flatten_json("", &json, &mut out);
        assert_eq!(
            out,
            vec![
                ("e".into(), Value::Dict(vec![])),
                ("n".into(), Value::Int(3)),
                (
                    "opt.betas".into(),
                    Value::List(vec![Value::Float(0.9), Value::Float(0.99)])
                ),
                ("opt.lr".into(), Value::Float(0.1)),
            ]
        );
    }
}

//! Parameter and attribute values.

use std::fmt::{self, Write as _};

/// A parameter value, or any run attribute: what `log_parameter` accepts.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Python `None`.
    Null,
    /// `True` / `False`.
    Bool(bool),
    /// An integer that fits in 64 bits.
    Int(i64),
    /// A float, NaN and infinities included.
    Float(f64),
    /// A string.
    Str(String),
    /// A list or tuple.
    List(Vec<Value>),
    /// A dict with string keys, in insertion order.
    Dict(Vec<(String, Value)>),
    /// Any other object, kept as its `str()` and marked as such.
    Repr(String),
}

impl Value {
    /// A JSON rendering for indexes and terminals. Floats JSON cannot hold
    /// (NaN, ±inf) become the strings `"NaN"`, `"Infinity"`, `"-Infinity"`;
    /// a `Repr` becomes its text.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or_else(|| J::String(float_name(*f).to_owned()), J::Number),
            Value::Str(s) | Value::Repr(s) => J::String(s.clone()),
            Value::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Dict(items) => J::Object(
                items
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The number this value stands for, when it is one (for sorting and queries).
    #[must_use]
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            Value::Bool(b) => Some(f64::from(u8::from(*b))),
            _ => None,
        }
    }
}

impl serde::Serialize for Value {
    /// For a human-readable format (JSON), the same shape as
    /// [`Value::to_json`], written without building it. Any other format
    /// (the Python objects `lab._lab` makes) can hold NaN and infinities, and
    /// gets them as floats.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) if f.is_finite() || !s.is_human_readable() => s.serialize_f64(*f),
            Value::Float(f) => s.serialize_str(float_name(*f)),
            Value::Str(t) | Value::Repr(t) => s.serialize_str(t),
            Value::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Dict(items) => {
                let mut map = s.serialize_map(Some(items.len()))?;
                for (k, v) in items {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    /// Any JSON value. A string stays a string, even `"NaN"`: JSON cannot
    /// tell a float NaN written as text from the text itself, so a
    /// parameter that was NaN reads back from JSON as the string `"NaN"`.
    /// An integer beyond `i64` becomes a float.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a parameter or attribute value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }
    fn visit_i64<E>(self, i: i64) -> Result<Value, E> {
        Ok(Value::Int(i))
    }
    fn visit_u64<E>(self, u: u64) -> Result<Value, E> {
        Ok(i64::try_from(u).map_or(Value::Float(u as f64), Value::Int))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Value, E> {
        Ok(Value::Float(f))
    }
    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::Str(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::Str(s))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::List(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some(entry) = map.next_entry()? {
            items.push(entry);
        }
        Ok(Value::Dict(items))
    }
}

fn float_name(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

impl fmt::Display for Value {
    /// Python-like text, as a person reads parameters in a table.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("None"),
            Value::Bool(true) => f.write_str("True"),
            Value::Bool(false) => f.write_str("False"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) if x.is_finite() => {
                if x.fract() == 0.0 && x.abs() < 1e16 {
                    write!(f, "{x:.1}")
                } else {
                    write!(f, "{x}")
                }
            }
            Value::Float(x) => f.write_str(match float_name(*x) {
                "NaN" => "nan",
                "Infinity" => "inf",
                _ => "-inf",
            }),
            Value::Str(s) | Value::Repr(s) => f.write_str(s),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_nested(f, v)?;
                }
                f.write_str("]")
            }
            Value::Dict(items) => {
                f.write_str("{")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_py_str(f, k)?;
                    f.write_str(": ")?;
                    write_nested(f, v)?;
                }
                f.write_str("}")
            }
        }
    }
}

fn write_nested(f: &mut fmt::Formatter<'_>, v: &Value) -> fmt::Result {
    match v {
        Value::Str(s) => write_py_str(f, s),
        other => write!(f, "{other}"),
    }
}

/// A string as Python's `repr` writes it: single quotes unless the text has
/// one and no double quote.
fn write_py_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    f.write_str(&out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_keeps_special_floats_readable() {
        assert_eq!(Value::Float(f64::NAN).to_json(), serde_json::json!("NaN"));
        assert_eq!(
            Value::Float(f64::NEG_INFINITY).to_json(),
            serde_json::json!("-Infinity")
        );
        assert_eq!(Value::Float(0.5).to_json(), serde_json::json!(0.5));
    }

    #[test]
    fn serializing_matches_to_json() {
        let v = Value::Dict(vec![
            (
                "a".into(),
                Value::List(vec![Value::Int(1), Value::Float(f64::NAN), Value::Null]),
            ),
            ("b".into(), Value::Float(-f64::INFINITY)),
            ("c".into(), Value::Repr("obj".into())),
        ]);
        assert_eq!(serde_json::to_value(&v).unwrap(), v.to_json());
    }

    #[test]
    fn json_reads_back() {
        let v = Value::Dict(vec![
            (
                "a".into(),
                Value::List(vec![Value::Int(-1), Value::Float(0.5)]),
            ),
            ("b".into(), Value::Null),
            ("c".into(), Value::Bool(true)),
            ("d".into(), Value::Str("x".into())),
        ]);
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), v);
        assert_eq!(
            serde_json::from_str::<Value>("18446744073709551615").unwrap(),
            Value::Float(18_446_744_073_709_551_615.0)
        );
    }

    #[test]
    fn display_reads_like_python() {
        let v = Value::List(vec![
            Value::Int(1),
            Value::Str("a".into()),
            Value::Null,
            Value::Float(2.0),
        ]);
        assert_eq!(v.to_string(), "[1, 'a', None, 2.0]");
        let d = Value::Dict(vec![("it's".into(), Value::Str("a\nb".into()))]);
        assert_eq!(d.to_string(), "{\"it's\": 'a\\nb'}");
        assert_eq!(Value::Bool(true).to_string(), "True");
    }
}

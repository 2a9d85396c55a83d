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
    /// The same shape as [`Value::to_json`], written without building it.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Float(f) if f.is_finite() => s.serialize_f64(*f),
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

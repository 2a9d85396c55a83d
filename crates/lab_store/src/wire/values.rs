//! The values inside the wire types, each spelled one way in JSON and kept
//! as itself in other formats (the Python objects `lab._lab` makes): times,
//! floats JSON cannot hold, and maps that keep their order.

use std::fmt;

use lab_types::Value;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{KnownFormat, RefOr, SchemaFormat};
use utoipa::{PartialSchema, ToSchema};

/// A time, nanoseconds since the Unix epoch (UTC). JSON spells it as ISO
/// 8601 text with microseconds and a `Z` (`2026-01-02T03:04:05.123456Z`);
/// other formats get the integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time(pub i64);

impl Serialize for Time {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&lab_types::time::iso(self.0))
        } else {
            s.serialize_i64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Time;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ISO 8601 time in UTC, or nanoseconds since 1970")
            }
            fn visit_i64<E>(self, n: i64) -> Result<Time, E> {
                Ok(Time(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Time, E> {
                i64::try_from(n)
                    .map(Time)
                    .map_err(|_| E::custom(format!("a time must be before 2262: got `{n}`")))
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Time, E> {
                match crate::query::parse_date(text) {
                    Some((nanos, end)) if end == text.len() => Ok(Time(nanos)),
                    _ => Err(E::custom(format!(
                        "a time must be ISO 8601 in UTC, `2026-01-02T03:04:05.123456Z`: got `{text}`"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// The schema of a [`Time`] that may be missing: text or null.
pub(super) fn optional_time() -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .into()
}

/// The schema of a [`Time`].
pub(super) fn time() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
        .into()
}

/// A float. JSON has no NaN or infinities: it spells them as the strings
/// `"NaN"`, `"Infinity"` and `"-Infinity"`; other formats get the float.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Float(pub f64);

impl Serialize for Float {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        lab_types::Value::Float(self.0).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Float {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Float;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number, or `NaN`, `Infinity` or `-Infinity`")
            }
            fn visit_f64<E>(self, v: f64) -> Result<Float, E> {
                Ok(Float(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Float, E> {
                Ok(Float(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Float, E> {
                match v {
                    "NaN" => Ok(Float(f64::NAN)),
                    "Infinity" => Ok(Float(f64::INFINITY)),
                    "-Infinity" => Ok(Float(f64::NEG_INFINITY)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl PartialSchema for Float {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["NaN", "Infinity", "-Infinity"])),
            )
            .description(Some("A number, or NaN/Infinity/-Infinity as a string"))
            .into()
    }
}

impl ToSchema for Float {
    fn name() -> std::borrow::Cow<'static, str> {
        "Number".into()
    }
}

/// Values by name, in a kept order: a JSON object (a Python dict) whose
/// entries come in that order. Listings keep the order runs logged them
/// in; [`Named::sort`] puts them in name order.
#[derive(Clone, Debug, PartialEq)]
pub struct Named<T>(pub Vec<(String, T)>);

impl<T> Default for Named<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T> Named<T> {
    /// Puts the entries in the order of their names.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
    }

    /// Keeps the entries whose name `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.0.retain(|(k, _)| keep(k));
    }

    /// The value of `name`, if there is one.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&T> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

impl Named<Value> {
    /// Puts the entries in the order of their names, and so the entries of
    /// every dict inside the values ([`sort_dicts`]).
    pub fn sort_all(&mut self) {
        self.sort();
        for (_, v) in &mut self.0 {
            sort_dicts(v);
        }
    }
}

/// Puts the entries of every dict inside `v` in the order of their keys.
pub fn sort_dicts(v: &mut Value) {
    match v {
        Value::List(items) => items.iter_mut().for_each(sort_dicts),
        Value::Dict(items) => {
            items.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, x) in items {
                sort_dicts(x);
            }
        }
        _ => {}
    }
}

impl<T: Serialize> Serialize for Named<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Named<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Named<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Named<T>, A::Error> {
                let mut items = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
                while let Some(entry) = map.next_entry()? {
                    items.push(entry);
                }
                Ok(Named(items))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The schema of a parameter or attribute value ([`Value`]):
/// any JSON.
pub(super) fn value() -> Schema {
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
        .into()
}

/// The schema of an object whose entries are `values`.
pub(super) fn named(values: impl Into<RefOr<Schema>>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(values.into()))
}

/// The schema of [`lab_types::Status`]: its names, in the order tables list them.
pub struct StatusSchema;

impl PartialSchema for StatusSchema {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(lab_types::Status::ALL.map(lab_types::Status::as_str)))
            .into()
    }
}

impl ToSchema for StatusSchema {
    fn name() -> std::borrow::Cow<'static, str> {
        "Status".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_back() {
        let t = Time(1_795_765_800_123_456_000);
        let text = serde_json::to_string(&t).unwrap();
        assert_eq!(text, "\"2026-11-27T07:50:00.123456Z\"");
        assert_eq!(serde_json::from_str::<Time>(&text).unwrap(), t);
        assert_eq!(serde_json::from_str::<Time>("42").unwrap(), Time(42));
        let bad = serde_json::from_str::<Time>("\"2026-13-01\"").unwrap_err();
        assert!(bad.to_string().contains("`2026-13-01`"), "{bad}");
    }

    #[test]
    fn floats_json_cannot_hold_are_strings() {
        for (f, text) in [
            (f64::NAN, "\"NaN\""),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
            (0.5, "0.5"),
        ] {
            assert_eq!(serde_json::to_string(&Float(f)).unwrap(), text);
            let back: Float = serde_json::from_str(text).unwrap();
            assert_eq!(back.0.to_bits(), f.to_bits(), "{text}");
        }
        assert!(serde_json::from_str::<Float>("\"nan\"").is_err());
    }

    #[test]
    fn named_values_keep_their_order() {
        let mut n = Named(vec![("b".to_owned(), 1), ("a".to_owned(), 2)]);
        assert_eq!(serde_json::to_string(&n).unwrap(), r#"{"b":1,"a":2}"#);
        let back: Named<i32> = serde_json::from_str(r#"{"b":1,"a":2}"#).unwrap();
        assert_eq!(back, n);
        n.sort();
        assert_eq!(serde_json::to_string(&n).unwrap(), r#"{"a":2,"b":1}"#);
    }
}

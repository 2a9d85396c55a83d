//! Python objects to Lab values, with errors that name the argument, show the
//! value and say what was expected.

use std::borrow::Cow;
use std::collections::HashSet;

use lab_types::Value;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// Values nest at most this deep.
const MAX_DEPTH: usize = 32;

/// `type value` for messages, e.g. `str 'abc'`, cut to a readable length.
pub fn describe(obj: &Bound<'_, PyAny>) -> String {
    let ty = obj
        .get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |n| n.to_string());
    let repr = obj
        .repr()
        .map_or_else(|_| "<unprintable>".to_owned(), |r| r.to_string());
    let repr = if repr.chars().count() > 60 {
        format!("{}…", repr.chars().take(59).collect::<String>())
    } else {
        repr
    };
    format!("{ty} {repr}")
}

/// A key argument: a string (what it may hold is checked by `lab_sdk`).
pub fn key<'a, 'py>(
    argument: &str,
    obj: &'a Bound<'py, PyAny>,
) -> PyResult<&'a Bound<'py, PyString>> {
    obj.cast::<PyString>().map_err(|_| {
        PyTypeError::new_err(format!(
            "`{argument}` must be a string: got {}",
            describe(obj)
        ))
    })
}

/// A key argument's text (see [`key`] and [`text`]).
pub fn key_text<'a>(argument: &str, obj: &'a Bound<'_, PyAny>) -> PyResult<Cow<'a, str>> {
    text(argument, key(argument, obj)?)
}

/// The text of a Python string, which must be valid Unicode: a lone
/// surrogate (`'\ud800'`) has no UTF-8 form, so nothing can store it.
pub fn text<'a>(argument: &str, s: &'a Bound<'_, PyString>) -> PyResult<Cow<'a, str>> {
    s.to_cow().map_err(|_| {
        PyValueError::new_err(format!(
            "`{argument}` must be valid Unicode text, without lone surrogates: got {}",
            describe(s)
        ))
    })
}

/// An optional string argument's text.
pub fn optional_text(argument: &str, s: Option<&Bound<'_, PyString>>) -> PyResult<Option<String>> {
    s.map(|s| text(argument, s).map(Cow::into_owned))
        .transpose()
}

fn is_numpy(obj: &Bound<'_, PyAny>) -> bool {
    obj.get_type().module().is_ok_and(|m| {
        m.to_cow()
            .is_ok_and(|m| m == "numpy" || m.starts_with("numpy."))
    })
}

/// A value: None, bool, int, float, str, and lists, tuples and dicts of
/// those; numpy scalars and arrays through `tolist()`; anything else as its
/// `str()`, marked as such. Errors name `argument`.
pub fn value(argument: &str, obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    value_at(argument, obj, 0)
}

fn value_at(argument: &str, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "`{argument}` nests lists or dicts deeper than {MAX_DEPTH} levels"
        )));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return Ok(match i.extract::<i64>() {
            Ok(v) => Value::Int(v),
            // Too big for 64 bits: keep the digits.
            Err(_) => Value::Repr(i.str()?.to_string()),
        });
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(text(argument, s)?.into_owned()));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|v| value_at(argument, &v, depth + 1))
            .collect::<PyResult<_>>()
            .map(Value::List);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|v| value_at(argument, &v, depth + 1))
            .collect::<PyResult<_>>()
            .map(Value::List);
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return dict_value(argument, d, depth);
    }
    if is_numpy(obj) && obj.hasattr("tolist")? {
        let plain = obj.call_method0("tolist")?;
        return value_at(argument, &plain, depth + 1);
    }
    Ok(Value::Repr(obj.str()?.to_string()))
}

/// A dict, its keys as text. Two keys with the same text (`1` and `'1'`)
/// would keep one value only, so they are refused.
fn dict_value(argument: &str, d: &Bound<'_, PyDict>, depth: usize) -> PyResult<Value> {
    let mut items = Vec::with_capacity(d.len());
    // Distinct plain `str` keys are distinct texts; only other keys can collide.
    let mut only_str = true;
    for (k, v) in d.iter() {
        let k = if k.is_exact_instance_of::<PyString>() {
            text(argument, k.cast::<PyString>()?)?.into_owned()
        } else {
            only_str = false;
            text(argument, &k.str()?)?.into_owned()
        };
        items.push((k, value_at(argument, &v, depth + 1)?));
    }
    if !only_str {
        let mut seen = HashSet::with_capacity(items.len());
        for (k, _) in &items {
            if !seen.insert(k.as_str()) {
                return Err(colliding_keys(argument, d, k));
            }
        }
    }
    Ok(Value::Dict(items))
}

fn colliding_keys(argument: &str, d: &Bound<'_, PyDict>, text: &str) -> PyErr {
    let same: Vec<String> = d
        .keys()
        .iter()
        .filter(|k| k.str().is_ok_and(|s| s.to_cow().is_ok_and(|s| s == text)))
        .map(|k| {
            k.repr()
                .map_or_else(|_| "<unprintable>".to_owned(), |r| r.to_string())
        })
        .collect();
    PyValueError::new_err(format!(
        "`{argument}` has keys with the same text `{text}` ({}); keys are stored as text, so one value would be lost: got {}",
        same.join(" and "),
        describe(d)
    ))
}

/// A metric value: one number, or a 1-D sequence of numbers (stored as `key[i]`).
pub enum MetricValue {
    One(f64),
    Many(Vec<f64>),
}

fn not_a_number(obj: &Bound<'_, PyAny>) -> PyErr {
    PyTypeError::new_err(format!(
        "`value` must be a number or a 1-D array of numbers: got {}",
        describe(obj)
    ))
}

/// One number: a Python or numpy number, or anything with `__float__` that is
/// not text.
pub fn number(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(f.value());
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return i.extract::<f64>().map_err(|_| not_a_number(obj));
    }
    if obj.is_instance_of::<PyString>() || obj.is_instance_of::<PyDict>() || obj.is_none() {
        return Err(not_a_number(obj));
    }
    if obj.hasattr("ndim")? {
        let ndim: usize = obj.getattr("ndim")?.extract().unwrap_or(usize::MAX);
        if ndim != 0 {
            return Err(not_a_number(obj));
        }
    }
    if obj.hasattr("__float__")? {
        return obj
            .call_method0("__float__")?
            .extract::<f64>()
            .map_err(|_| not_a_number(obj));
    }
    Err(not_a_number(obj))
}

/// A metric value, scalar or 1-D (not empty).
pub fn metric(obj: &Bound<'_, PyAny>) -> PyResult<MetricValue> {
    let value = metric_any(obj)?;
    if let MetricValue::Many(v) = &value
        && v.is_empty()
    {
        return Err(PyValueError::new_err(format!(
            "`value` must be a number or a non-empty 1-D array of numbers: got an empty {}",
            convert_type_name(obj)
        )));
    }
    Ok(value)
}

fn convert_type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |n| n.to_string())
}

/// A dict argument: a `dict`, or any mapping (converted with `dict()`).
pub fn mapping<'py>(
    argument: &str,
    what: &str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyDict>> {
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(d.clone());
    }
    if obj.hasattr("keys")? && obj.hasattr("__getitem__")? {
        let d = obj.py().get_type::<PyDict>().call1((obj,))?;
        return d
            .cast_into::<PyDict>()
            .map_err(|e| PyTypeError::new_err(e.to_string()));
    }
    Err(PyTypeError::new_err(format!(
        "`{argument}` must be a dict of {what}: got {}",
        describe(obj)
    )))
}

fn metric_any(obj: &Bound<'_, PyAny>) -> PyResult<MetricValue> {
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(MetricValue::One(f.value()));
    }
    if obj.hasattr("ndim")? && !obj.is_instance_of::<PyString>() {
        let ndim: i64 = obj.getattr("ndim")?.extract().unwrap_or(-1);
        return match ndim {
            0 => number(obj).map(MetricValue::One),
            1 => {
                let items = obj.call_method0("tolist")?;
                let list = items.cast::<PyList>().map_err(|_| not_a_number(obj))?;
                list.iter()
                    .map(|v| number(&v).map_err(|_| not_a_number(obj)))
                    .collect::<PyResult<_>>()
                    .map(MetricValue::Many)
            }
            _ => Err(PyValueError::new_err(format!(
                "`value` must be a number or a 1-D array of numbers: got a {ndim}-D array of shape {}",
                obj.getattr("shape")
                    .and_then(|s| s.str())
                    .map_or_else(|_| "?".into(), |s| s.to_string())
            ))),
        };
    }
    if obj.is_instance_of::<PyList>() || obj.is_instance_of::<PyTuple>() {
        let seq = obj.try_iter()?;
        let mut out = Vec::new();
        for item in seq {
            let item = item?;
            if item.is_instance_of::<PyList>() || item.is_instance_of::<PyTuple>() {
                return Err(PyValueError::new_err(format!(
                    "`value` must be a number or a 1-D array of numbers: got a nested sequence {}",
                    describe(obj)
                )));
            }
            out.push(number(&item).map_err(|_| not_a_number(obj))?);
        }
        return Ok(MetricValue::Many(out));
    }
    number(obj).map(MetricValue::One)
}

/// A step: `None`, or a non-negative integer (Python or numpy; not a bool or float).
pub fn step(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Option<i64>> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(None);
    };
    let bad = || {
        PyTypeError::new_err(format!(
            "`step` must be a non-negative integer or None: got {}",
            describe(obj)
        ))
    };
    if obj.is_instance_of::<PyBool>() || obj.is_instance_of::<PyFloat>() {
        return Err(bad());
    }
    let i = if let Ok(i) = obj.cast::<PyInt>() {
        i.clone()
    } else if obj.hasattr("__index__")? {
        obj.call_method0("__index__")?
            .cast_into::<PyInt>()
            .map_err(|_| bad())?
    } else {
        return Err(bad());
    };
    let v: i64 = i.extract().map_err(|_| {
        PyValueError::new_err(format!(
            "`step` must be a non-negative integer below 2**63: got {}",
            describe(obj)
        ))
    })?;
    if v < 0 {
        return Err(PyValueError::new_err(format!(
            "`step` must be a non-negative integer: got {v}"
        )));
    }
    Ok(Some(v))
}

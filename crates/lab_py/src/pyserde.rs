//! Any `serde::Serialize` value as Python objects ([`Converter`]): structs and maps become
//! dicts, sequences lists, tuples tuples, and numbers, strings, booleans and
//! `None` themselves. This is how the wire types of `lab_store::wire` reach
//! Python: one conversion, no shape written twice.
//!
//! The serializer is not human-readable (in serde's sense): types that spell
//! themselves differently for JSON give their plain form here, so times are
//! integers (nanoseconds) and NaN and infinities are floats.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use pyo3::BoundObject;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use serde::Serialize;
use serde::ser::{self, Impossible};

/// Converts values to Python objects, making the string of each field name
/// once however many values have that field (a listing converts thousands
/// of runs with the same fields).
pub struct Converter<'py> {
    py: Python<'py>,
    /// Field names by the address of their text (field names are
    /// `&'static str`).
    keys: RefCell<HashMap<usize, Bound<'py, PyString>>>,
    /// Fields of the outermost struct to leave out.
    leave_out: &'static [&'static str],
}

impl<'py> Converter<'py> {
    pub fn new(py: Python<'py>) -> Self {
        Self {
            py,
            keys: RefCell::new(HashMap::new()),
            leave_out: &[],
        }
    }

    /// Leaves these fields of the value converted (the outermost struct)
    /// out: fields the Python side does not read cost their conversion.
    pub fn leaving_out(self, fields: &'static [&'static str]) -> Self {
        Self {
            leave_out: fields,
            ..self
        }
    }

    /// `value` as Python objects.
    pub fn convert<T: Serialize + ?Sized>(&self, value: &T) -> PyResult<Bound<'py, PyAny>> {
        value
            .serialize(ToPy {
                py: self.py,
                keys: &self.keys,
                leave_out: self.leave_out,
            })
            .map_err(|e| e.0)
    }
}

/// A Python exception, as serde's error.
pub struct Error(PyErr);

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Error {}

impl ser::Error for Error {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Error(PyValueError::new_err(msg.to_string()))
    }
}

impl From<PyErr> for Error {
    fn from(e: PyErr) -> Self {
        Error(e)
    }
}

#[derive(Clone, Copy)]
struct ToPy<'a, 'py> {
    py: Python<'py>,
    keys: &'a RefCell<HashMap<usize, Bound<'py, PyString>>>,
    leave_out: &'static [&'static str],
}

type Out<'py> = Result<Bound<'py, PyAny>, Error>;

impl<'py> ToPy<'_, 'py> {
    /// The serializer of what a value holds: nothing is left out there.
    fn inner(self) -> Self {
        Self {
            leave_out: &[],
            ..self
        }
    }

    fn object<T: IntoPyObject<'py>>(self, v: T) -> Out<'py> {
        v.into_pyobject(self.py)
            .map(|o| o.into_any().into_bound())
            .map_err(|e| Error(e.into()))
    }
}

/// A list being filled (sequences; tuples are made from it at the end).
struct Seq<'a, 'py> {
    to: ToPy<'a, 'py>,
    items: Vec<Bound<'py, PyAny>>,
}

/// A dict being filled (maps and structs).
struct Dict<'a, 'py> {
    to: ToPy<'a, 'py>,
    entries: Bound<'py, PyDict>,
    key: Option<Bound<'py, PyAny>>,
}

impl<'a, 'py> ser::Serializer for ToPy<'a, 'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = Error;
    type SerializeSeq = Seq<'a, 'py>;
    type SerializeTuple = Seq<'a, 'py>;
    type SerializeTupleStruct = Seq<'a, 'py>;
    type SerializeTupleVariant = Impossible<Self::Ok, Error>;
    type SerializeMap = Dict<'a, 'py>;
    type SerializeStruct = Dict<'a, 'py>;
    type SerializeStructVariant = Impossible<Self::Ok, Error>;

    fn is_human_readable(&self) -> bool {
        false
    }

    fn serialize_bool(self, v: bool) -> Out<'py> {
        self.object(v)
    }
    fn serialize_i8(self, v: i8) -> Out<'py> {
        self.object(v)
    }
    fn serialize_i16(self, v: i16) -> Out<'py> {
        self.object(v)
    }
    fn serialize_i32(self, v: i32) -> Out<'py> {
        self.object(v)
    }
    fn serialize_i64(self, v: i64) -> Out<'py> {
        self.object(v)
    }
    fn serialize_u8(self, v: u8) -> Out<'py> {
        self.object(v)
    }
    fn serialize_u16(self, v: u16) -> Out<'py> {
        self.object(v)
    }
    fn serialize_u32(self, v: u32) -> Out<'py> {
        self.object(v)
    }
    fn serialize_u64(self, v: u64) -> Out<'py> {
        self.object(v)
    }
    fn serialize_f32(self, v: f32) -> Out<'py> {
        self.object(v)
    }
    fn serialize_f64(self, v: f64) -> Out<'py> {
        self.object(v)
    }
    fn serialize_char(self, v: char) -> Out<'py> {
        self.object(v)
    }
    fn serialize_str(self, v: &str) -> Out<'py> {
        self.object(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Out<'py> {
        self.object(v)
    }
    fn serialize_none(self) -> Out<'py> {
        Ok(self.py.None().into_bound(self.py))
    }
    fn serialize_some<T: Serialize + ?Sized>(self, v: &T) -> Out<'py> {
        v.serialize(self)
    }
    fn serialize_unit(self) -> Out<'py> {
        self.serialize_none()
    }
    fn serialize_unit_struct(self, _: &'static str) -> Out<'py> {
        self.serialize_none()
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, variant: &'static str) -> Out<'py> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, v: &T) -> Out<'py> {
        v.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        v: &T,
    ) -> Out<'py> {
        let dict = PyDict::new(self.py);
        dict.set_item(variant, v.serialize(self.inner())?)?;
        Ok(dict.into_any())
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Seq<'a, 'py>, Error> {
        Ok(Seq {
            to: self,
            items: Vec::with_capacity(len.unwrap_or(0)),
        })
    }
    fn serialize_tuple(self, len: usize) -> Result<Seq<'a, 'py>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _: &'static str, len: usize) -> Result<Seq<'a, 'py>, Error> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(ser::Error::custom(format!(
            "`{name}::{variant}` has no Python form"
        )))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Dict<'a, 'py>, Error> {
        Ok(Dict {
            to: self,
            entries: PyDict::new(self.py),
            key: None,
        })
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Dict<'a, 'py>, Error> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        name: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(ser::Error::custom(format!(
            "`{name}::{variant}` has no Python form"
        )))
    }
}

impl<'py> ser::SerializeSeq for Seq<'_, 'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        self.items.push(v.serialize(self.to.inner())?);
        Ok(())
    }
    fn end(self) -> Out<'py> {
        Ok(PyList::new(self.to.py, self.items)?.into_any())
    }
}

impl<'py> ser::SerializeTuple for Seq<'_, 'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Out<'py> {
        Ok(PyTuple::new(self.to.py, self.items)?.into_any())
    }
}

impl<'py> ser::SerializeTupleStruct for Seq<'_, 'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, v)
    }
    fn end(self) -> Out<'py> {
        ser::SerializeTuple::end(self)
    }
}

impl<'py> ser::SerializeMap for Dict<'_, 'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, k: &T) -> Result<(), Error> {
        self.key = Some(k.serialize(self.to.inner())?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, v: &T) -> Result<(), Error> {
        let key = self
            .key
            .take()
            .ok_or_else(|| <Error as ser::Error>::custom("a map value came before its key"))?;
        self.entries.set_item(key, v.serialize(self.to.inner())?)?;
        Ok(())
    }
    fn end(self) -> Out<'py> {
        Ok(self.entries.into_any())
    }
}

impl<'py> ser::SerializeStruct for Dict<'_, 'py> {
    type Ok = Bound<'py, PyAny>;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        v: &T,
    ) -> Result<(), Error> {
        if self.to.leave_out.contains(&key) {
            return Ok(());
        }
        let value = v.serialize(self.to.inner())?;
        let mut keys = self.to.keys.borrow_mut();
        let key = keys
            .entry(key.as_ptr() as usize)
            .or_insert_with(|| PyString::intern(self.to.py, key));
        self.entries.set_item(&*key, value)?;
        Ok(())
    }
    fn end(self) -> Out<'py> {
        Ok(self.entries.into_any())
    }
}

//! The few messages of TensorFlow's `event.proto`, `summary.proto` and
//! `tensor.proto` that scalars need, derived by hand. Fields not listed here
//! (graphs, images, histograms, ...) are skipped by the decoder.

/// `tensorflow.Event`: one record of an event file.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// `brain.Event:2` in the first record of a file.
    #[prost(string, optional, tag = "3")]
    pub file_version: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub summary: Option<Summary>,
}

/// `tensorflow.Summary`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<SummaryValue>,
}

/// `tensorflow.Summary.Value`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryValue {
    #[prost(string, tag = "1")]
    pub tag: String,
    #[prost(string, tag = "7")]
    pub node_name: String,
    /// Old-style scalars (TF1, PyTorch's `add_scalar`).
    #[prost(float, optional, tag = "2")]
    pub simple_value: Option<f32>,
    /// New-style summaries: a scalar for the `scalars` plugin.
    #[prost(message, optional, tag = "8")]
    pub tensor: Option<TensorProto>,
    #[prost(message, optional, tag = "9")]
    pub metadata: Option<SummaryMetadata>,
}

/// `tensorflow.SummaryMetadata`. Written with the first value of a tag only.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SummaryMetadata {
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<PluginData>,
    /// `DataClass`: 1 is `DATA_CLASS_SCALAR`.
    #[prost(int32, tag = "4")]
    pub data_class: i32,
}

/// `tensorflow.SummaryMetadata.PluginData`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PluginData {
    #[prost(string, tag = "1")]
    pub plugin_name: String,
}

/// `tensorflow.TensorProto`, the parts a scalar uses.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    /// `tensorflow.DataType` (see the `DT_*` constants).
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShape>,
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    #[prost(double, repeated, tag = "6")]
    pub double_val: Vec<f64>,
    #[prost(int32, repeated, tag = "7")]
    pub int_val: Vec<i32>,
    #[prost(int64, repeated, tag = "10")]
    pub int64_val: Vec<i64>,
    #[prost(bool, repeated, tag = "11")]
    pub bool_val: Vec<bool>,
    /// Half and bfloat16 values, one in the low 16 bits of each.
    #[prost(int32, repeated, tag = "13")]
    pub half_val: Vec<i32>,
}

/// `tensorflow.TensorShapeProto`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShape {
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<Dim>,
}

/// `tensorflow.TensorShapeProto.Dim`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Dim {
    #[prost(int64, tag = "1")]
    pub size: i64,
}

pub const DT_FLOAT: i32 = 1;
pub const DT_DOUBLE: i32 = 2;
pub const DT_INT32: i32 = 3;
pub const DT_UINT8: i32 = 4;
pub const DT_INT16: i32 = 5;
pub const DT_INT8: i32 = 6;
pub const DT_INT64: i32 = 9;
pub const DT_BOOL: i32 = 10;
pub const DT_BFLOAT16: i32 = 14;
pub const DT_HALF: i32 = 19;

/// `SummaryMetadata.DataClass.DATA_CLASS_SCALAR`.
pub const DATA_CLASS_SCALAR: i32 = 1;

/// A half-precision float's bits as an `f64`.
fn half_to_f64(bits: u16) -> f64 {
    let sign = if bits & 0x8000 == 0 { 1.0 } else { -1.0 };
    let exp = i32::from((bits >> 10) & 0x1f);
    let frac = f64::from(bits & 0x3ff);
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        0x1f if frac == 0.0 => sign * f64::INFINITY,
        0x1f => f64::NAN,
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// A bfloat16's bits as an `f64`: the high half of an `f32`.
fn bfloat16_to_f64(bits: u16) -> f64 {
    f64::from(f32::from_bits(u32::from(bits) << 16))
}

impl TensorProto {
    /// The value of a tensor holding exactly one number, if it does.
    #[must_use]
    pub fn scalar(&self) -> Option<f64> {
        let shape = self.tensor_shape.as_ref().map_or(&[][..], |s| &s.dim[..]);
        if !shape.iter().all(|d| d.size == 1) {
            return None;
        }
        if !self.tensor_content.is_empty() {
            return self.scalar_from_content();
        }
        let one = |n: usize| n == 1;
        match self.dtype {
            DT_FLOAT if one(self.float_val.len()) => Some(f64::from(self.float_val[0])),
            DT_DOUBLE if one(self.double_val.len()) => Some(self.double_val[0]),
            DT_INT32 | DT_INT16 | DT_INT8 | DT_UINT8 if one(self.int_val.len()) => {
                Some(f64::from(self.int_val[0]))
            }
            DT_INT64 if one(self.int64_val.len()) => Some(self.int64_val[0] as f64),
            DT_BOOL if one(self.bool_val.len()) => Some(f64::from(u8::from(self.bool_val[0]))),
            DT_HALF if one(self.half_val.len()) => Some(half_to_f64(self.half_val[0] as u16)),
            DT_BFLOAT16 if one(self.half_val.len()) => {
                Some(bfloat16_to_f64(self.half_val[0] as u16))
            }
            _ => None,
        }
    }

    /// The one number of `tensor_content`, little-endian, of the tensor's type.
    fn scalar_from_content(&self) -> Option<f64> {
        let b = &self.tensor_content[..];
        match self.dtype {
            DT_FLOAT => Some(f64::from(f32::from_le_bytes(b.try_into().ok()?))),
            DT_DOUBLE => Some(f64::from_le_bytes(b.try_into().ok()?)),
            DT_INT32 => Some(f64::from(i32::from_le_bytes(b.try_into().ok()?))),
            DT_INT64 => Some(i64::from_le_bytes(b.try_into().ok()?) as f64),
            DT_INT16 => Some(f64::from(i16::from_le_bytes(b.try_into().ok()?))),
            DT_INT8 => Some(f64::from(i8::from_le_bytes(b.try_into().ok()?))),
            DT_UINT8 => Some(f64::from(u8::from_le_bytes(b.try_into().ok()?))),
            DT_BOOL => Some(f64::from(u8::from(b.first().copied()? != 0))).filter(|_| b.len() == 1),
            DT_HALF => Some(half_to_f64(u16::from_le_bytes(b.try_into().ok()?))),
            DT_BFLOAT16 => Some(bfloat16_to_f64(u16::from_le_bytes(b.try_into().ok()?))),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::float_cmp, reason = "decoded bits must come back exactly")]
mod tests {
    use super::*;

    #[test]
    fn half_floats_decode() {
        assert_eq!(half_to_f64(0x3c00), 1.0);
        assert_eq!(half_to_f64(0xc000), -2.0);
        assert_eq!(half_to_f64(0x3555), 0.333_251_953_125);
        assert_eq!(half_to_f64(0x7c00), f64::INFINITY);
        assert!(half_to_f64(0x7e00).is_nan());
        assert_eq!(half_to_f64(0x0001), 2f64.powi(-24));
        assert_eq!(bfloat16_to_f64(0x3fc0), 1.5);
    }

    #[test]
    fn only_tensors_of_one_number_are_scalars() {
        let mut t = TensorProto {
            dtype: DT_FLOAT,
            float_val: vec![0.5],
            ..TensorProto::default()
        };
        assert_eq!(t.scalar(), Some(0.5));
        t.float_val.push(1.0);
        assert_eq!(t.scalar(), None);
        let t = TensorProto {
            dtype: DT_DOUBLE,
            tensor_content: 2.5f64.to_le_bytes().to_vec(),
            tensor_shape: Some(TensorShape {
                dim: vec![Dim { size: 1 }],
            }),
            ..TensorProto::default()
        };
        assert_eq!(t.scalar(), Some(2.5));
        let t = TensorProto {
            dtype: DT_FLOAT,
            tensor_content: vec![0; 8],
            tensor_shape: Some(TensorShape {
                dim: vec![Dim { size: 2 }],
            }),
            ..TensorProto::default()
        };
        assert_eq!(t.scalar(), None);
        let t = TensorProto {
            dtype: DT_FLOAT,
            tensor_content: vec![0; 3],
            ..TensorProto::default()
        };
        assert_eq!(t.scalar(), None);
    }
}

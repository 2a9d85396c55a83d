//! `lab export --format parquet`: the CSV columns as a typed Parquet file.

use lab_types::fields::attr;
use std::sync::Arc;

use anyhow::Result;
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray,
    TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use lab_store::RunInfo;
use lab_types::Value;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use super::ls::{Column, Named};

fn text(name: &str, values: Vec<Option<String>>) -> (Field, ArrayRef) {
    (
        Field::new(name, DataType::Utf8, true),
        Arc::new(StringArray::from(values)),
    )
}

fn number(name: &str, values: Vec<Option<f64>>) -> (Field, ArrayRef) {
    (
        Field::new(name, DataType::Float64, true),
        Arc::new(Float64Array::from(values)),
    )
}

fn integer(name: &str, values: Vec<Option<i64>>) -> (Field, ArrayRef) {
    (
        Field::new(name, DataType::Int64, true),
        Arc::new(Int64Array::from(values)),
    )
}

fn boolean(name: &str, values: Vec<Option<bool>>) -> (Field, ArrayRef) {
    (
        Field::new(name, DataType::Boolean, true),
        Arc::new(BooleanArray::from(values)),
    )
}

/// A parameter's column, typed by its values (`None` and missing values are
/// null): integers when every value is an integer, booleans when every value
/// is one, doubles when every value is an integer or a float, else text.
fn param(name: &str, values: &[Option<&Value>]) -> (Field, ArrayRef) {
    let present = || {
        values
            .iter()
            .flatten()
            .filter(|v| !matches!(v, Value::Null))
    };
    let each = |f: fn(&Value) -> bool| present().all(|v| f(v));
    if each(|v| matches!(v, Value::Int(_))) {
        integer(
            name,
            values
                .iter()
                .map(|v| match v {
                    Some(Value::Int(i)) => Some(*i),
                    _ => None,
                })
                .collect(),
        )
    } else if each(|v| matches!(v, Value::Bool(_))) {
        boolean(
            name,
            values
                .iter()
                .map(|v| match v {
                    Some(Value::Bool(b)) => Some(*b),
                    _ => None,
                })
                .collect(),
        )
    } else if each(|v| matches!(v, Value::Int(_) | Value::Float(_))) {
        number(
            name,
            values.iter().map(|v| v.and_then(Value::as_f64)).collect(),
        )
    } else {
        text(
            name,
            values
                .iter()
                .map(|v| match v {
                    None | Some(Value::Null) => None,
                    Some(v) => Some(v.to_string()),
                })
                .collect(),
        )
    }
}

fn time(name: &str, values: Vec<Option<i64>>) -> (Field, ArrayRef) {
    let utc: Arc<str> = Arc::from("UTC");
    (
        Field::new(
            name,
            DataType::Timestamp(TimeUnit::Nanosecond, Some(utc.clone())),
            true,
        ),
        Arc::new(TimestampNanosecondArray::from(values).with_timezone(utc)),
    )
}

/// The runs as one Parquet file in memory.
pub(super) fn write(runs: &[RunInfo], columns: &[Column]) -> Result<Vec<u8>> {
    let named: Vec<Named<'_>> = runs.iter().map(Named::new).collect();
    // The run's own columns, in the order of `super::ls::RUN_FIELDS`.
    let mut fields: Vec<(Field, ArrayRef)> = vec![
        text("id", runs.iter().map(|r| Some(r.id.to_string())).collect()),
        text(
            "short_id",
            runs.iter().map(|r| Some(r.short_id.clone())).collect(),
        ),
        text("name", runs.iter().map(|r| Some(r.name())).collect()),
        text(
            "experiment",
            runs.iter().map(|r| Some(r.experiment.clone())).collect(),
        ),
        text(
            "status",
            runs.iter().map(|r| Some(r.status.to_string())).collect(),
        ),
        time(
            "start_time",
            runs.iter().map(|r| Some(r.start_nanos)).collect(),
        ),
        time("end_time", runs.iter().map(|r| r.end_nanos).collect()),
        text(
            "source",
            runs.iter()
                .map(|r| r.attr_str(attr::SOURCE).map(str::to_owned))
                .collect(),
        ),
    ];
    for column in columns {
        match column {
            Column::Metric(k) => fields.push(number(
                &format!("metrics.{k}"),
                named.iter().map(|r| r.metric(k).map(|m| m.last)).collect(),
            )),
            Column::Param(k) => {
                let values: Vec<Option<&Value>> = named.iter().map(|r| r.param(k)).collect();
                fields.push(param(&format!("params.{k}"), &values));
            }
            Column::Tag(k) => fields.push(text(
                &format!("tags.{k}"),
                named.iter().map(|r| r.tag(k).map(str::to_owned)).collect(),
            )),
            Column::Field(_) => {}
        }
    }
    let (schema, arrays): (Vec<Field>, Vec<ArrayRef>) = fields.into_iter().unzip();
    let schema = Arc::new(Schema::new(schema));
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    // A column costs its writer buffers, and a dictionary and page
    // statistics cost far more: with a hundred thousand metrics, gigabytes.
    // Only the run's repetitive text columns get a dictionary; statistics
    // stay, once per column.
    let mut props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_dictionary_enabled(false)
        .set_statistics_enabled(EnabledStatistics::Chunk);
    for name in ["experiment", "status", "source"] {
        props = props.set_column_dictionary_enabled(ColumnPath::from(name), true);
    }
    let props = props.build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(out)
}

//! `lab export --format parquet`: the CSV columns as a typed Parquet file.

use std::sync::Arc;

use anyhow::Result;
use arrow_array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use lab_store::RunInfo;
use lab_types::Value;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use super::ls::Column;

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
    let mut fields: Vec<(Field, ArrayRef)> = vec![
        text("id", runs.iter().map(|r| Some(r.id.to_string())).collect()),
        text(
            "experiment",
            runs.iter().map(|r| Some(r.experiment.clone())).collect(),
        ),
        text(
            "source",
            runs.iter()
                .map(|r| r.attr_str("source").map(str::to_owned))
                .collect(),
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
    ];
    for column in columns {
        match column {
            Column::Metric(k) => fields.push(number(
                &format!("metrics.{k}"),
                runs.iter().map(|r| r.metric(k).map(|m| m.last)).collect(),
            )),
            Column::Param(k) => {
                let values: Vec<Option<&Value>> = runs
                    .iter()
                    .map(|r| r.params.iter().find(|(n, _)| n == k).map(|(_, v)| v))
                    .collect();
                let name = format!("params.{k}");
                // Numbers when every value is one, else the values' text.
                if values.iter().flatten().all(|v| v.as_f64().is_some()) {
                    fields.push(number(
                        &name,
                        values.iter().map(|v| v.and_then(Value::as_f64)).collect(),
                    ));
                } else {
                    fields.push(text(
                        &name,
                        values.iter().map(|v| v.map(ToString::to_string)).collect(),
                    ));
                }
            }
            Column::Tag(k) => fields.push(text(
                &format!("tags.{k}"),
                runs.iter()
                    .map(|r| r.tags.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
                    .collect(),
            )),
            Column::Field(_) => {}
        }
    }
    let (schema, arrays): (Vec<Field>, Vec<ArrayRef>) = fields.into_iter().unzip();
    let schema = Arc::new(Schema::new(schema));
    let batch = RecordBatch::try_new(schema.clone(), arrays)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(out)
}

//! What any index's writer works out the same way whatever its SQL: a run's
//! damage note, the status of a run whose writer is gone, how a parameter and
//! a value are kept. SQLite's writer uses them; `lab_store::index` offers
//! them to a second index.

use std::path::Path;

use lab_journal::codec;
use lab_types::{Status, Value};

use crate::Error;
use crate::delta::Delta;
use crate::fold_index::Folded;

/// How many damaged stretches a run's damage note spells out.
const NOTED_DAMAGE: usize = 5;

/// The longest text of a list or dict parameter kept for queries to compare
/// and match; a longer one is kept only in its encoded form.
pub const MAX_COMPOUND_TEXT: usize = 4096;

/// The run's damage note: what an earlier fold noted (`earlier`), what this
/// one read past, and the pieces cut off its journal (`kept` now, or by an
/// earlier fold, found beside `journal`).
pub fn damage_note(
    earlier: Option<String>,
    folded: &Folded<'_>,
    kept: Option<&Path>,
    journal: &Path,
) -> Result<Option<String>, Error> {
    let mut parts: Vec<String> = earlier.into_iter().collect();
    if let Some(other) = folded.misfiled {
        parts.push(format!(
            "the journal's Start record names run {other}, not one of this folder (a copy?)"
        ));
    }
    for d in folded.damage.iter().take(NOTED_DAMAGE) {
        parts.push(format!(
            "{} bytes skipped at offset {}: {}",
            d.dropped_bytes, d.offset, d.reason
        ));
    }
    if folded.damage.len() > NOTED_DAMAGE {
        parts.push(format!(
            "and {} more damaged stretches",
            folded.damage.len() - NOTED_DAMAGE
        ));
    }
    if let Some(kept) = kept {
        parts.push(format!("the damaged tail is kept in {}", kept.display()));
    } else if parts.is_empty() && folded.settled {
        // Rebuilding the index of a journal an earlier fold cut: say where
        // the pieces are.
        let kept = crate::pieces::pieces(journal)?;
        if !kept.is_empty() {
            let names: Vec<String> = kept.iter().map(|p| p.path.display().to_string()).collect();
            let salvaged = if kept.iter().all(|p| p.salvaged) {
                " (their good records were put back)"
            } else {
                ""
            };
            parts.push(format!(
                "damaged bytes cut off the journal are kept in {}{salvaged}",
                names.join(", ")
            ));
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("; ")))
}

/// The status of a run whose writer is gone without ending it: crashed, or
/// damaged when the journal may have lost how it ended (its Start record is
/// lost, it was closed, damage was read past or noted). An index writes it
/// only over `running`.
#[must_use]
pub fn settled_status(d: &Delta, folded: &Folded<'_>, noted: bool) -> Status {
    let lost_end = d.lost_start.is_some() || d.closed || !folded.damage.is_empty() || noted;
    if lost_end {
        Status::Damaged
    } else {
        Status::Crashed
    }
}

/// A parameter's `value` and `text` columns, holding it once: a string is
/// its text, with an empty `value`; anything else is its encoding, with its
/// text for queries (and none for a list or dict too long to compare).
#[must_use]
pub fn param_columns(value: &Value) -> (Vec<u8>, Option<String>) {
    match value {
        Value::Str(s) => (Vec::new(), Some(s.clone())),
        Value::List(_) | Value::Dict(_) => {
            let text = value.to_string();
            (
                encode_value(value),
                (text.len() <= MAX_COMPOUND_TEXT).then_some(text),
            )
        }
        other => (encode_value(other), Some(other.to_string())),
    }
}

/// A number or bool read back from its text (see [`param_columns`]):
/// `True`, `False`, an integer, or else a float; `None` for other text.
/// SQLite's index leaves out the encoded `value` of a parameter this gives
/// back exactly.
pub(crate) fn number_from_text(text: &str) -> Option<Value> {
    match text {
        "True" => Some(Value::Bool(true)),
        "False" => Some(Value::Bool(false)),
        _ => text
            .parse::<i64>()
            .map(Value::Int)
            .ok()
            .or_else(|| text.parse::<f64>().ok().map(Value::Float)),
    }
}

/// Whether [`number_from_text`] of `text` gives back `value` exactly (a
/// float to the bit: NaN's payload, -0.0).
pub(crate) fn number_in_text(value: &Value, text: &str) -> bool {
    match (value, number_from_text(text)) {
        (Value::Bool(a), Some(Value::Bool(b))) => *a == b,
        (Value::Int(a), Some(Value::Int(b))) => *a == b,
        (Value::Float(a), Some(Value::Float(b))) => a.to_bits() == b.to_bits(),
        _ => false,
    }
}

/// A value in the journal's encoding, as indexes keep attributes, features
/// and parameters.
#[must_use]
pub fn encode_value(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    codec::encode_value(v, &mut out);
    out
}

/// A number as indexes keep it for queries: NaN as missing (SQLite has no
/// NaN, and PostgreSQL's sorts above every number); exact bits are kept
/// beside it.
#[must_use]
pub fn real(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

/// A metric's last value from its `last` and `last_bits` columns (see
/// docs/storage.md).
pub(crate) fn last_value(last: Option<f64>, last_bits: Option<i64>) -> f64 {
    match (last_bits, last) {
        (Some(bits), _) => f64::from_bits(bits as u64),
        (None, Some(last)) => last,
        (None, None) => f64::NAN,
    }
}

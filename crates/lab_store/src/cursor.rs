//! Keyset paging: a page's cursor is the place of its last run in the
//! listing's order (the values it sorts by, then its start time and id),
//! and the next page is the runs after that place. Runs added or removed
//! between two pages move no run from one page to the other, and a page
//! deep in a long listing costs what the first one does.
//!
//! A cursor is opaque to its users: the hexadecimal digits of a small JSON
//! object holding the sort keys it was made for and the values of its run.
//! Floats keep their exact bits.

use rusqlite::types::Value as Sql;
use serde_json::{Value as J, json};

use crate::Error;

/// The longest cursor taken, in characters: one holds a few values of one
/// run (a long text parameter or tag at most), far below this.
pub const MAX_CURSOR_CHARS: usize = 1 << 20;

/// A decoded cursor.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Cursor {
    /// The sort keys of the listing it was made for, as given.
    pub sort: Vec<String>,
    /// The values its run has, one per term the listing orders by.
    pub keys: Vec<Sql>,
}

impl Cursor {
    /// The text users pass back.
    pub fn encode(&self) -> String {
        let keys: Vec<J> = self
            .keys
            .iter()
            .map(|k| match k {
                Sql::Null => J::Null,
                Sql::Integer(i) => json!({ "i": i }),
                Sql::Real(f) => json!({ "f": f.to_bits() }),
                Sql::Text(t) => json!({ "s": t }),
                Sql::Blob(b) => json!({ "b": hex(b) }),
            })
            .collect();
        hex(json!({ "sort": self.sort, "keys": keys })
            .to_string()
            .as_bytes())
    }

    /// A cursor from its text, for a listing sorted by `sort`.
    pub fn decode(text: &str, sort: &[String]) -> Result<Self, Error> {
        let bad = |reason: String| Error::BadCursor {
            shown: shown(text),
            reason,
        };
        if text.len() > MAX_CURSOR_CHARS {
            return Err(bad(format!(
                "it is {} characters long, more than the {MAX_CURSOR_CHARS} a cursor can have",
                text.len()
            )));
        }
        let bytes = unhex(text).ok_or_else(|| bad("it is not a cursor Lab made".into()))?;
        let value: J = serde_json::from_slice(&bytes)
            .map_err(|_| bad("it is not a cursor Lab made".into()))?;
        let made_for: Vec<String> = value
            .get("sort")
            .and_then(J::as_array)
            .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_owned)).collect())
            .ok_or_else(|| bad("it is not a cursor Lab made".into()))?;
        if made_for != sort {
            return Err(bad(format!(
                "it was made for the sort `{}`, not `{}`",
                made_for.join(","),
                sort.join(",")
            )));
        }
        let keys = value
            .get("keys")
            .and_then(J::as_array)
            .and_then(|a| a.iter().map(key).collect::<Option<Vec<Sql>>>())
            .ok_or_else(|| bad("it is not a cursor Lab made".into()))?;
        Ok(Cursor {
            sort: made_for,
            keys,
        })
    }
}

/// One value of a cursor.
fn key(j: &J) -> Option<Sql> {
    if j.is_null() {
        return Some(Sql::Null);
    }
    let (tag, v) = j.as_object().filter(|o| o.len() == 1)?.iter().next()?;
    Some(match tag.as_str() {
        "i" => Sql::Integer(v.as_i64()?),
        "f" => Sql::Real(f64::from_bits(v.as_u64()?)),
        "s" => Sql::Text(v.as_str()?.to_owned()),
        "b" => Sql::Blob(unhex(v.as_str()?)?),
        _ => return None,
    })
}

/// The start of a cursor, for an error message.
fn shown(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return None;
    }
    bytes
        .chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_every_kind_of_value_exactly() {
        let sort = vec!["-loss".to_owned(), "name".to_owned()];
        let cursor = Cursor {
            sort: sort.clone(),
            keys: vec![
                Sql::Null,
                Sql::Integer(i64::MIN),
                Sql::Real(0.1 + 0.2),
                Sql::Real(-0.0),
                Sql::Text("é \"x\" \u{0}".into()),
                Sql::Blob(vec![0, 255]),
            ],
        };
        let text = cursor.encode();
        assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{text}");
        let back = Cursor::decode(&text, &sort).unwrap();
        assert_eq!(back.keys.len(), 6);
        assert!(matches!(back.keys[3], Sql::Real(f) if f.to_bits() == (-0.0_f64).to_bits()));
        assert_eq!(back, cursor);
    }

    #[test]
    fn hostile_cursors_are_refused_with_what_is_wrong() {
        let sort = vec!["-loss".to_owned()];
        let message = |text: &str| Cursor::decode(text, &sort).unwrap_err().to_string();
        for text in [
            "",
            "zz",
            "abc",
            "7b7d",
            &hex(b"[1, 2]"),
            &hex(br#"{"sort": ["-loss"], "keys": [{"q": 1}]}"#),
        ] {
            let m = message(text);
            assert!(m.starts_with("`after` must be the `next` cursor"), "{m}");
            assert!(m.contains("it is not a cursor Lab made"), "{m}");
        }
        let other = Cursor {
            sort: vec!["name".into()],
            keys: vec![],
        }
        .encode();
        assert!(
            message(&other).contains("it was made for the sort `name`, not `-loss`"),
            "{}",
            message(&other)
        );
        let huge = "0".repeat(MAX_CURSOR_CHARS + 2);
        let m = message(&huge);
        assert!(m.contains("more than the 1048576"), "{m}");
        assert!(
            m.len() < 400,
            "the message shows only the cursor's start: {m}"
        );
    }
}

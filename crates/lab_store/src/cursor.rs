//! Keyset paging: a page's cursor is the place of its last run in the
//! listing's order (the values it sorts by, then its start time and id),
//! and the next page is the runs after that place. Runs added or removed
//! between two pages move no run from one page to the other, and a page
//! deep in a long listing costs what the first one does.
//!
//! A cursor is opaque to its users: URL-safe base64 (`A-Z a-z 0-9 - _`, no
//! padding) of a few bytes, short enough to paste (about 40 characters for
//! a listing newest first):
//!
//! ```text
//! 0x01                       the format
//! n, n sort keys             as the listing was given them (`-loss`)
//! n, n values                one per term the listing orders by, each a tag:
//!   0                        missing
//!   1, 8 bytes               an integer (little-endian)
//!   2, 8 bytes               a float's exact bits (little-endian)
//!   3, n, n bytes            text (UTF-8)
//!   4, n, n bytes            text of lowercase hexadecimal digits (a run's
//!                            id): the bytes they spell
//!   5, n, n bytes            bytes
//! ```
//!
//! where each `n` is an unsigned LEB128 number. A cursor of the earlier
//! format (the hexadecimal digits of a JSON object) is refused, saying so.

use rusqlite::types::Value as Sql;
use serde_json::Value as J;

use crate::Error;

/// The longest cursor taken, in characters: one holds a few values of one
/// run (a long text parameter or tag at most), far below this.
pub const MAX_CURSOR_CHARS: usize = 1 << 20;

/// The first byte of a cursor: its format.
const FORMAT: u8 = 1;

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
        let mut out = vec![FORMAT];
        put_len(&mut out, self.sort.len());
        for key in &self.sort {
            put_bytes(&mut out, key.as_bytes());
        }
        put_len(&mut out, self.keys.len());
        for key in &self.keys {
            match key {
                Sql::Null => out.push(0),
                Sql::Integer(i) => {
                    out.push(1);
                    out.extend_from_slice(&i.to_le_bytes());
                }
                Sql::Real(f) => {
                    out.push(2);
                    out.extend_from_slice(&f.to_bits().to_le_bytes());
                }
                Sql::Text(t) => {
                    if let Some(bytes) = lower_hex(t) {
                        out.push(4);
                        put_bytes(&mut out, &bytes);
                    } else {
                        out.push(3);
                        put_bytes(&mut out, t.as_bytes());
                    }
                }
                Sql::Blob(b) => {
                    out.push(5);
                    put_bytes(&mut out, b);
                }
            }
        }
        base64url(&out)
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
        let Some(cursor) = unbase64url(text).and_then(|bytes| parse(&bytes)) else {
            if earlier_format(text) {
                return Err(bad(
                    "it is a cursor of an earlier version of Lab, which this one no longer reads"
                        .into(),
                ));
            }
            return Err(bad("it is not a cursor Lab made".into()));
        };
        if cursor.sort != sort {
            return Err(bad(format!(
                "it was made for the sort `{}`, not `{}`",
                cursor.sort.join(","),
                sort.join(",")
            )));
        }
        Ok(cursor)
    }
}

/// A cursor's bytes read back, or `None` if they are not one.
fn parse(bytes: &[u8]) -> Option<Cursor> {
    let mut r = Reader(bytes);
    if r.byte()? != FORMAT {
        return None;
    }
    let n = r.len()?;
    let mut sort = Vec::new();
    for _ in 0..n {
        sort.push(String::from_utf8(r.bytes()?.to_vec()).ok()?);
    }
    let n = r.len()?;
    let mut keys = Vec::new();
    for _ in 0..n {
        keys.push(match r.byte()? {
            0 => Sql::Null,
            1 => Sql::Integer(i64::from_le_bytes(r.eight()?)),
            2 => Sql::Real(f64::from_bits(u64::from_le_bytes(r.eight()?))),
            3 => Sql::Text(String::from_utf8(r.bytes()?.to_vec()).ok()?),
            4 => Sql::Text(hex(r.bytes()?)),
            5 => Sql::Blob(r.bytes()?.to_vec()),
            _ => return None,
        });
    }
    // Nothing after the values.
    r.0.is_empty().then_some(Cursor { sort, keys })
}

/// Reads a cursor's bytes from the front.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(taken)
    }

    fn eight(&mut self) -> Option<[u8; 8]> {
        self.take(8)?.try_into().ok()
    }

    /// An unsigned LEB128 number, at most the bytes left (a count or a
    /// length is never more).
    fn len(&mut self) -> Option<usize> {
        let mut n: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                let n = usize::try_from(n).ok()?;
                return (n <= self.0.len()).then_some(n);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.len()?;
        self.take(n)
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    let mut n = u64::try_from(n).unwrap_or(u64::MAX);
    loop {
        let low = u8::try_from(n & 0x7f).unwrap_or(0);
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// The bytes a text of lowercase hexadecimal digits spells (non-empty, of
/// even length), which it is again as [`hex`].
fn lower_hex(text: &str) -> Option<Vec<u8>> {
    if text.is_empty() || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    unhex(text)
}

/// Whether `text` is a cursor of the earlier format: the hexadecimal digits
/// of a JSON object with the sort keys and the values.
fn earlier_format(text: &str) -> bool {
    unhex(text)
        .and_then(|bytes| serde_json::from_slice::<J>(&bytes).ok())
        .is_some_and(|v| {
            v.get("sort").is_some_and(J::is_array) && v.get("keys").is_some_and(J::is_array)
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

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe base64 without padding (RFC 4648, section 5).
fn base64url(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let mut group = [0u8; 3];
        group[..chunk.len()].copy_from_slice(chunk);
        let n = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
        for i in 0..=chunk.len() {
            let sextet = usize::try_from((n >> (18 - 6 * i)) & 63).unwrap_or(0);
            s.push(char::from(BASE64URL[sextet]));
        }
    }
    s
}

/// [`base64url`] read back; `None` for any other text (another alphabet,
/// padding, a length no bytes have, or bits left over that are not zero).
fn unbase64url(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        BASE64URL
            .iter()
            .position(|&d| d == c)
            .and_then(|i| u32::try_from(i).ok())
    };
    let chars = text.as_bytes();
    if chars.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(chars.len() / 4 * 3 + 2);
    for chunk in chars.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = n.to_be_bytes();
        let kept = chunk.len() - 1;
        // The bits past the last byte are zero in a text this made.
        if bytes[1 + kept..].iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(&bytes[1..=kept]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_base64url(text: &str) -> bool {
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }

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
                Sql::Real(f64::NAN),
                Sql::Text("é \"x\" \u{0}".into()),
                Sql::Text("0e66f91b38ce045686a428d4fbb290da".into()),
                Sql::Text("0E66".into()),
                Sql::Text("abc".into()),
                Sql::Text(String::new()),
                Sql::Blob(vec![0, 255]),
                Sql::Blob(Vec::new()),
            ],
        };
        let text = cursor.encode();
        assert!(is_base64url(&text), "{text}");
        let back = Cursor::decode(&text, &sort).unwrap();
        assert_eq!(back.keys.len(), 12);
        assert!(matches!(back.keys[3], Sql::Real(f) if f.to_bits() == (-0.0_f64).to_bits()));
        assert!(matches!(back.keys[4], Sql::Real(f) if f.to_bits() == f64::NAN.to_bits()));
        assert_eq!(format!("{back:?}"), format!("{cursor:?}"));
    }

    #[test]
    fn a_cursor_of_a_listing_newest_first_is_short() {
        let cursor = Cursor {
            sort: Vec::new(),
            keys: vec![
                Sql::Integer(1_796_096_966_508_118_530),
                Sql::Text("0e66f91b38ce045686a428d4fbb290da".into()),
            ],
        };
        let text = cursor.encode();
        assert!(text.len() <= 44, "{} characters: {text}", text.len());
        let sorted = Cursor {
            sort: vec!["-accuracy_score".into()],
            keys: vec![
                Sql::Real(0.9737),
                cursor.keys[0].clone(),
                cursor.keys[1].clone(),
            ],
        };
        assert!(sorted.encode().len() <= 80, "{}", sorted.encode());
    }

    #[test]
    fn base64url_round_trips_every_length_and_refuses_other_text() {
        for n in 0..10u8 {
            let bytes: Vec<u8> = (0..n)
                .map(|i| i.wrapping_mul(97).wrapping_add(200))
                .collect();
            let text = base64url(&bytes);
            assert!(is_base64url(&text));
            assert_eq!(unbase64url(&text), Some(bytes));
        }
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
        for text in ["a", "abcde", "ab=", "a+/b", "ab c", "AB"] {
            assert_eq!(unbase64url(text), None, "{text}");
        }
    }

    #[test]
    fn hostile_cursors_are_refused_with_what_is_wrong() {
        let sort = vec!["-loss".to_owned()];
        let message = |text: &str| Cursor::decode(text, &sort).unwrap_err().to_string();
        let good = Cursor {
            sort: sort.clone(),
            keys: vec![Sql::Real(0.5), Sql::Text("run".into())],
        };
        let bytes = unbase64url(&good.encode()).unwrap();
        let cut = base64url(&bytes[..bytes.len() - 1]);
        let mut longer = bytes.clone();
        longer.push(0);
        let longer = base64url(&longer);
        // A text of 2^62 bytes, in a cursor of a few.
        let huge = base64url(&[
            1, 0, 1, 3, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40,
        ]);
        let bad_tag = base64url(&[1, 0, 1, 9]);
        let not_utf8 = base64url(&[1, 1, 1, 0xff, 0]);
        let other_format = base64url(&[2, 0, 0]);
        for text in [
            "",
            "zz",
            "abc",
            "7b7d",
            "e30",
            "!!!!",
            &hex(b"[1, 2]"),
            &cut,
            &longer,
            &huge,
            &bad_tag,
            &not_utf8,
            &other_format,
        ] {
            let m = message(text);
            assert!(m.starts_with("`after` must be the `next` cursor"), "{m}");
            assert!(m.contains("it is not a cursor Lab made"), "{text}: {m}");
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

    #[test]
    fn a_cursor_of_the_earlier_format_is_refused_saying_so() {
        // As the earlier format wrote them: the hexadecimal digits of JSON.
        let earlier = hex(
            br#"{"keys":[{"i":1796096966508118530},{"s":"0e66f91b38ce045686a428d4fbb290da"}],"sort":[]}"#,
        );
        let m = Cursor::decode(&earlier, &[]).unwrap_err().to_string();
        assert!(m.starts_with("`after` must be the `next` cursor"), "{m}");
        assert!(
            m.contains("it is a cursor of an earlier version of Lab"),
            "{m}"
        );
        assert!(m.contains("got `7b226b657973"), "{m}");
    }
}

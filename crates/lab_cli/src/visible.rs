//! Text from runs made safe to print on a terminal.
//!
//! Names, values, paths and messages recorded by a run can hold anything: an
//! escape sequence that clears the screen or opens a link, a carriage return
//! or newline that fakes a row, a bidirectional override that reorders one.
//! Every such text goes through [`text`] before `lab` prints it for people, so
//! control characters show as escapes, in the style of Python's `repr`:
//!
//! - tab, newline and carriage return as `\t`, `\n`, `\r`;
//! - the other control characters (U+0000 to U+001F, U+007F to U+009F) as
//!   `\xNN`, so ESC is `\x1b`;
//! - the bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A
//!   to U+202E, U+2066 to U+2069) and the line and paragraph separators
//!   (U+2028, U+2029) as `\uNNNN`.
//!
//! Everything else, backslashes included, is printed as it is. CSV and JSON
//! are data and keep the exact text.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must be shown as an escape.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
        )
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        c if u32::from(c) < 0x100 => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c => {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
    }
}

fn escape(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(|c| hidden(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hidden(c) && !keep(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `s` with every control, bidirectional formatting and line separator
/// character shown as an escape: one line, printed as it reads.
#[must_use]
pub fn text(s: &str) -> Cow<'_, str> {
    escape(s, |_| false)
}

/// [`text`], but keeping newlines: for messages of several lines (errors
/// with a hint) that may quote what a run recorded.
#[must_use]
pub fn lines(s: &str) -> Cow<'_, str> {
    escape(s, |c| c == '\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_as_escapes() {
        assert_eq!(text("plain ✓ text"), "plain ✓ text");
        assert!(matches!(text("plain"), Cow::Borrowed(_)));
        assert_eq!(text("a\x1b[2Jb"), "a\\x1b[2Jb");
        assert_eq!(text("a\tb\r\nc"), "a\\tb\\r\\nc");
        assert_eq!(text("\0\x7f\u{9b}"), "\\x00\\x7f\\x9b");
        assert_eq!(
            text("\x1b]8;;http://x\x07link\x1b]8;;\x07"),
            "\\x1b]8;;http://x\\x07link\\x1b]8;;\\x07"
        );
        assert_eq!(text("abc\u{202e}fed"), "abc\\u202efed");
        assert_eq!(text("\u{2066}\u{2028}\u{061c}"), "\\u2066\\u2028\\u061c");
        // Backslashes are left alone.
        assert_eq!(text("C:\\x1b"), "C:\\x1b");
        assert_eq!(lines("one\ntwo\x1b\r"), "one\ntwo\\x1b\\r");
    }
}

//! Checks on names that reach the journal and the file system.

use crate::SdkError;

/// The longest key or name accepted, in bytes.
pub const MAX_KEY_LEN: usize = 250;

/// Whether `c` is an invisible formatting character that can make one key
/// look like another in a listing: the bidirectional marks, embeddings,
/// overrides and isolates (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066
/// to U+2069), zero-width and invisible characters (U+00AD, U+180E, U+200B,
/// U+2060 to U+2064, U+206A to U+206F, U+FEFF) and the interlinear
/// annotation marks (U+FFF9 to U+FFFB). The zero-width joiner and non-joiner
/// (U+200D, U+200C) are not among them: Persian and Indic words and emoji
/// need them.
#[must_use]
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Whether `c` shows as nothing: whitespace, the joiners, and the blank
/// fillers of Hangul and Braille.
fn is_blank(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200C}'
                | '\u{200D}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{3164}'
                | '\u{FFA0}'
                | '\u{2800}'
        )
}

/// A parameter, metric or tag key: non-empty, at most [`MAX_KEY_LEN`] bytes,
/// no control characters, no invisible formatting characters (see
/// [`is_invisible_format`]), and at least one visible character. Spaces
/// around a key are kept: `" loss"` and `"loss"` are two keys.
pub fn check_key(argument: &'static str, key: &str) -> Result<(), SdkError> {
    if key.is_empty() {
        return Err(SdkError::bad_text(argument, key, "must not be empty"));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(SdkError::bad_text(
            argument,
            &format!("{}…", &key[..key.floor_char_boundary(40)]),
            format!(
                "must be at most {MAX_KEY_LEN} bytes long (it has {})",
                key.len()
            ),
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(SdkError::bad_text(
            argument,
            key,
            "must not contain control characters (tabs, newlines, NUL, ...)",
        ));
    }
    if key.chars().any(is_invisible_format) {
        return Err(SdkError::bad_text(
            argument,
            key,
            "must not contain invisible formatting characters (right-to-left overrides, zero-width spaces, ...), which make one name look like another",
        ));
    }
    if key.chars().all(is_blank) {
        return Err(SdkError::bad_text(
            argument,
            key,
            "must hold a visible character (it has only spaces or other blank characters)",
        ));
    }
    Ok(())
}

/// An artifact or model name, which becomes a file or folder name: a key that
/// also has no `/` or `\`, no `..` anywhere, and does not start with `.`.
pub fn check_name(argument: &'static str, name: &str) -> Result<(), SdkError> {
    check_key(argument, name)?;
    if name.contains('/') || name.contains('\\') {
        return Err(SdkError::bad_text(
            argument,
            name,
            "must not contain `/` or `\\` (it names one file or folder in the run)",
        ));
    }
    if name == "." || name == ".." || name.contains("..") {
        return Err(SdkError::bad_text(argument, name, "must not contain `..`"));
    }
    if name.starts_with('.') {
        return Err(SdkError::bad_text(
            argument,
            name,
            "must not start with `.`",
        ));
    }
    Ok(())
}

/// How deep lists and dicts may nest in a value; readers refuse deeper ones.
pub const MAX_VALUE_DEPTH: usize = 32;

/// A value whose lists and dicts nest at most [`MAX_VALUE_DEPTH`] deep.
pub fn check_value(argument: &'static str, value: &lab_types::Value) -> Result<(), SdkError> {
    fn depth(v: &lab_types::Value) -> usize {
        match v {
            lab_types::Value::List(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            lab_types::Value::Dict(items) => {
                1 + items.iter().map(|(_, v)| depth(v)).max().unwrap_or(0)
            }
            _ => 0,
        }
    }
    let d = depth(value);
    if d > MAX_VALUE_DEPTH {
        return Err(SdkError::InvalidArgument {
            argument,
            value: format!("a value nested {d} levels deep"),
            problem: format!("must nest lists and dicts at most {MAX_VALUE_DEPTH} levels deep"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(check_key("key", "loss").is_ok());
        assert!(check_key("key", "ünïcødé ключ").is_ok());
        for ok in [" padded ", "a b", "می\u{200c}خواهم", "👩\u{200d}💻", "معدل"] {
            assert!(check_key("key", ok).is_ok(), "{ok:?}");
        }
        for bad in [
            "",
            "a\nb",
            "a\0b",
            "tab\t",
            " ",
            "\u{3000}",
            "\u{200d}",
            "\u{3164}",
            "loss\u{202e}",
            "\u{2066}x\u{2069}",
            "lo\u{200b}ss",
            "\u{feff}loss",
            "x\u{200f}",
        ] {
            let e = check_key("key", bad).unwrap_err().to_string();
            assert!(e.starts_with("`key` must"), "{e}");
        }
        assert!(
            check_key("key", &"x".repeat(300))
                .unwrap_err()
                .to_string()
                .contains("at most 250")
        );
    }

    #[test]
    fn names() {
        assert!(check_name("name", "tensorboard").is_ok());
        for bad in ["a/b", "a\\b", "..", "x..y", ".hidden", "a\0"] {
            assert!(check_name("name", bad).is_err(), "{bad}");
        }
        let e = check_name("name", "../etc").unwrap_err().to_string();
        assert_eq!(
            e,
            "`name` must not contain `/` or `\\` (it names one file or folder in the run): got \"../etc\""
        );
    }
}

//! Checks on names that reach the journal and the file system.

use crate::SdkError;

/// The longest key or name accepted, in bytes.
pub const MAX_KEY_LEN: usize = 250;

/// A parameter, metric or tag key: non-empty, at most [`MAX_KEY_LEN`] bytes,
/// no control characters.
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
        for bad in ["", "a\nb", "a\0b", "tab\t"] {
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

//! Cutting the text of a run's error down to the size its end record keeps.
//!
//! An exception may carry a message of hundreds of megabytes; stored whole it
//! would not fit one journal frame and the run could not end. Each part keeps
//! its head and its tail, the two ends people read, with a line saying how
//! much was cut in between.

use std::borrow::Cow;

use lab_types::ErrorInfo;

/// The most bytes of an error's type name a run keeps.
pub const MAX_ERROR_TYPE_BYTES: usize = 1 << 10;
/// The most bytes of an error's message a run keeps (64 KiB).
pub const MAX_ERROR_MESSAGE_BYTES: usize = 64 << 10;
/// The most bytes of an error's traceback a run keeps (256 KiB).
pub const MAX_ERROR_TRACEBACK_BYTES: usize = 256 << 10;

/// `text` if it has at most `max_bytes` bytes; else its head and tail around
/// a line `… N bytes cut …`, in at most `max_bytes` bytes all told.
#[must_use]
pub fn cut_text(text: &str, max_bytes: usize) -> Cow<'_, str> {
    if text.len() <= max_bytes {
        return Cow::Borrowed(text);
    }
    // The count shown has at most as many digits as the whole length.
    let Some(kept) = max_bytes.checked_sub(marker(text.len()).len()) else {
        return Cow::Owned(String::new());
    };
    let head_end = text.floor_char_boundary(kept / 2);
    let tail_start = text.ceil_char_boundary(text.len() - (kept - head_end));
    let mut out = String::with_capacity(max_bytes);
    out.push_str(&text[..head_end]);
    out.push_str(&marker(tail_start - head_end));
    out.push_str(&text[tail_start..]);
    Cow::Owned(out)
}

fn marker(cut_bytes: usize) -> String {
    format!("\n… {cut_bytes} bytes cut …\n")
}

fn cut_owned(text: String, max_bytes: usize) -> String {
    match cut_text(&text, max_bytes) {
        Cow::Borrowed(_) => text,
        Cow::Owned(cut) => cut,
    }
}

/// `error` with each part cut to its limit.
#[must_use]
pub fn cut_error(error: ErrorInfo) -> ErrorInfo {
    ErrorInfo {
        kind: cut_owned(error.kind, MAX_ERROR_TYPE_BYTES),
        message: cut_owned(error.message, MAX_ERROR_MESSAGE_BYTES),
        traceback: cut_owned(error.traceback, MAX_ERROR_TRACEBACK_BYTES),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The number of bytes the marker in `cut` says were cut.
    fn said(cut: &str) -> usize {
        let (_, rest) = cut.split_once("\n… ").unwrap();
        rest.split(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn short_text_is_kept_whole() {
        assert!(matches!(cut_text("abc", 3), Cow::Borrowed("abc")));
        assert!(matches!(cut_text("", 0), Cow::Borrowed("")));
    }

    #[test]
    fn long_text_keeps_head_and_tail_and_says_how_much_went() {
        let text = format!(
            "{}{}{}",
            "H".repeat(100),
            "x".repeat(10_000),
            "T".repeat(100)
        );
        let cut = cut_text(&text, 1000);
        assert!(cut.len() <= 1000 && cut.len() > 990, "{}", cut.len());
        assert!(cut.starts_with(&"H".repeat(100)));
        assert!(cut.ends_with(&"T".repeat(100)));
        let n = said(&cut);
        assert_eq!(cut.len() - marker(n).len() + n, text.len());
    }

    #[test]
    fn cuts_fall_between_characters() {
        let text = "é€😀".repeat(50);
        for max in 0..80 {
            let cut = cut_text(&text, max);
            assert!(cut.len() <= max, "{max}: {cut:?}");
            if !cut.is_empty() {
                let n = said(&cut);
                assert_eq!(cut.len() - marker(n).len() + n, text.len(), "{max}");
            }
        }
    }

    #[test]
    fn every_part_of_an_error_is_cut_to_its_limit() {
        let e = cut_error(ErrorInfo {
            kind: "K".repeat(MAX_ERROR_TYPE_BYTES + 1),
            message: "m".repeat(300 << 20),
            traceback: "t".repeat(MAX_ERROR_TRACEBACK_BYTES),
        });
        assert!(e.kind.len() <= MAX_ERROR_TYPE_BYTES && e.kind.contains("bytes cut"));
        assert!(e.message.len() <= MAX_ERROR_MESSAGE_BYTES);
        assert!(e.message.len() > MAX_ERROR_MESSAGE_BYTES - 100);
        assert_eq!(
            e.message.len() - marker(said(&e.message)).len() + said(&e.message),
            300 << 20
        );
        assert_eq!(e.traceback, "t".repeat(MAX_ERROR_TRACEBACK_BYTES));
    }
}

//! Splitting a query into tokens, each with its place in the text.

use super::QueryError;
use super::ast::CmpOp;

#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A bare name, possibly with a scope prefix (`metrics.loss`).
    Ident(String),
    /// A name in backticks.
    Quoted(String),
    Str(String),
    Number(f64),
    Date(i64, String),
    Op(CmpOp),
    LParen,
    RParen,
    Comma,
    And,
    Or,
    Not,
    In,
    True,
    False,
    Null,
    End,
}

impl Tok {
    /// How the token is named in "expected ..." messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) | Tok::Quoted(s) => format!("the name `{s}`"),
            Tok::Str(s) => format!("the string '{s}'"),
            Tok::Number(n) => format!("the number {n}"),
            Tok::Date(_, s) => format!("the date {s}"),
            Tok::Op(op) => format!("`{}`", op.symbol()),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Comma => "`,`".into(),
            Tok::And => "`and`".into(),
            Tok::Or => "`or`".into(),
            Tok::Not => "`not`".into(),
            Tok::In => "`in`".into(),
            Tok::True => "`true`".into(),
            Tok::False => "`false`".into(),
            Tok::Null => "`null`".into(),
            Tok::End => "the end of the query".into(),
        }
    }
}

/// A token and its byte span.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub offset: usize,
    pub len: usize,
}

/// The tokens of `query`, ending with [`Tok::End`].
pub fn lex(query: &str) -> Result<Vec<Token>, QueryError> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < query.len() {
        let c = query[i..].chars().next().unwrap_or(' ');
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let (tok, end) = token(query, i, c)?;
        out.push(Token {
            tok,
            offset: i,
            len: end - i,
        });
        i = end;
    }
    out.push(Token {
        tok: Tok::End,
        offset: query.len(),
        len: 0,
    });
    Ok(out)
}

/// The token that starts at byte `i` with the character `c`, and the byte
/// where it ends.
fn token(query: &str, i: usize, c: char) -> Result<(Tok, usize), QueryError> {
    let bytes = query.as_bytes();
    Ok(match c {
        '(' => (Tok::LParen, i + 1),
        ')' => (Tok::RParen, i + 1),
        ',' => (Tok::Comma, i + 1),
        '=' | '!' | '<' | '>' | '~' => operator(query, i, c)?,
        '\'' | '"' => {
            let (s, end) = string(query, i, c)?;
            (Tok::Str(s), end)
        }
        '`' => {
            let (s, end) = backticked(query, i)?;
            (Tok::Quoted(s), end)
        }
        c if c.is_ascii_digit()
            || ((c == '-' || c == '+' || c == '.') && next_is_digit(bytes, i)) =>
        {
            date_or_number(query, i)?
        }
        c if c.is_alphabetic() || c == '_' => word(query, i),
        other => {
            return Err(QueryError::new(
                query,
                i,
                other.len_utf8(),
                format!(
                    "unexpected character `{other}`; names with spaces or symbols go in backticks, strings in quotes"
                ),
            ));
        }
    })
}

/// A comparison operator starting with `c` at byte `i`: `=` (or `==`), `!=`,
/// `!~`, `<`, `<=`, `<>`, `>`, `>=` or `~`.
fn operator(query: &str, i: usize, c: char) -> Result<(Tok, usize), QueryError> {
    let next = query.as_bytes().get(i + 1);
    let (op, len) = match (c, next) {
        ('=', Some(b'=')) => (CmpOp::Eq, 2),
        ('=', _) => (CmpOp::Eq, 1),
        ('!', Some(b'=')) | ('<', Some(b'>')) => (CmpOp::Ne, 2),
        ('!', Some(b'~')) => (CmpOp::NotMatch, 2),
        ('!', _) => {
            return Err(QueryError::new(
                query,
                i,
                1,
                "`!` must be followed by `=` or `~`",
            ));
        }
        ('<', Some(b'=')) => (CmpOp::Le, 2),
        ('<', _) => (CmpOp::Lt, 1),
        ('>', Some(b'=')) => (CmpOp::Ge, 2),
        ('>', _) => (CmpOp::Gt, 1),
        // `~`, the one left.
        _ => (CmpOp::Match, 1),
    };
    Ok((Tok::Op(op), i + len))
}

/// A date or a number at byte `i`. Text shaped like a date that is not one
/// Lab can compare is an error saying so, rather than numbers in a row.
fn date_or_number(query: &str, i: usize) -> Result<(Tok, usize), QueryError> {
    let bytes = query.as_bytes();
    if let Some((nanos, end)) = date(query, i) {
        return Ok((Tok::Date(nanos, query[i..end].to_owned()), end));
    }
    if looks_like_date(bytes, i) {
        let end = i + bytes[i..]
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || b"-:.".contains(b)))
            .unwrap_or(bytes.len() - i);
        return Err(QueryError::new(
            query,
            i,
            end - i,
            format!(
                "`{}` is not a date Lab can compare: write YYYY-MM-DD, optionally with THH:MM[:SS[.fff]][Z], from 1677-09-22 to 2262-04-11",
                &query[i..end]
            ),
        ));
    }
    let end = number_end(bytes, i);
    let text = &query[i..end];
    let n: f64 = text.parse().map_err(|_| {
        QueryError::new(query, i, end - i, format!("`{text}` is not a number"))
            .with_hint(format!("strings take quotes ('{text}')"))
    })?;
    Ok((Tok::Number(n), end))
}

/// A name or a keyword at byte `i`: keywords are matched whatever their case.
fn word(query: &str, i: usize) -> (Tok, usize) {
    let end = query[i..]
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '-')))
        .map_or(query.len(), |(j, _)| i + j);
    let word = &query[i..end];
    let tok = match word.to_ascii_lowercase().as_str() {
        "and" => Tok::And,
        "or" => Tok::Or,
        "not" => Tok::Not,
        "in" => Tok::In,
        "true" => Tok::True,
        "false" => Tok::False,
        "null" | "none" => Tok::Null,
        _ => Tok::Ident(word.to_owned()),
    };
    (tok, end)
}

fn next_is_digit(bytes: &[u8], i: usize) -> bool {
    match bytes.get(i + 1) {
        Some(b) if b.is_ascii_digit() => true,
        Some(b'.') => bytes.get(i + 2).is_some_and(u8::is_ascii_digit),
        _ => false,
    }
}

fn number_end(bytes: &[u8], start: usize) -> usize {
    let mut i = start;
    if matches!(bytes.get(i), Some(b'-' | b'+')) {
        i += 1;
    }
    while bytes
        .get(i)
        .is_some_and(|b| b.is_ascii_digit() || *b == b'.')
    {
        i += 1;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'-' | b'+')) {
            j += 1;
        }
        if bytes.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
        }
    }
    i
}

/// A quoted string; `\` escapes the next character.
fn string(query: &str, start: usize, quote: char) -> Result<(String, usize), QueryError> {
    let mut out = String::new();
    let mut chars = query[start + 1..].char_indices();
    while let Some((j, c)) = chars.next() {
        if c == quote {
            return Ok((out, start + 1 + j + 1));
        }
        if c == '\\' {
            match chars.next() {
                Some((_, e)) => out.push(e),
                None => break,
            }
        } else {
            out.push(c);
        }
    }
    Err(QueryError::new(
        query,
        start,
        query.len() - start,
        format!("this string has no closing {quote}"),
    ))
}

/// A name in backticks; a doubled backtick stands for one.
fn backticked(query: &str, start: usize) -> Result<(String, usize), QueryError> {
    let mut out = String::new();
    let rest = &query[start + 1..];
    let mut chars = rest.char_indices().peekable();
    while let Some((j, c)) = chars.next() {
        if c == '`' {
            if chars.peek().is_some_and(|(_, n)| *n == '`') {
                chars.next();
                out.push('`');
                continue;
            }
            if out.is_empty() {
                return Err(QueryError::new(query, start, 2, "an empty name"));
            }
            return Ok((out, start + 1 + j + 1));
        }
        out.push(c);
    }
    Err(QueryError::new(
        query,
        start,
        query.len() - start,
        "this name has no closing backtick",
    ))
}

/// `YYYY-MM-DD`, optionally followed by `THH:MM[:SS[.fff]]` and `Z`, in UTC.
pub(crate) fn date(query: &str, start: usize) -> Option<(i64, usize)> {
    let b = query.as_bytes();
    let digits = |from: usize, n: usize| -> Option<i64> {
        let s = query.get(from..from + n)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let year = digits(start, 4)?;
    if b.get(start + 4) != Some(&b'-') || b.get(start + 7) != Some(&b'-') {
        return None;
    }
    let month = digits(start + 5, 2)?;
    let day = digits(start + 8, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut end = start + 10;
    let mut secs = 0i64;
    let mut nanos = 0i64;
    if matches!(b.get(end), Some(b'T' | b't')) {
        let h = digits(end + 1, 2)?;
        if b.get(end + 3) != Some(&b':') {
            return None;
        }
        let m = digits(end + 4, 2)?;
        if h > 23 || m > 59 {
            return None;
        }
        secs = h * 3600 + m * 60;
        end += 6;
        if b.get(end) == Some(&b':') {
            let sec = digits(end + 1, 2)?;
            if sec > 59 {
                return None;
            }
            secs += sec;
            end += 3;
            if b.get(end) == Some(&b'.') {
                let frac_start = end + 1;
                let mut k = frac_start;
                while b.get(k).is_some_and(u8::is_ascii_digit) {
                    k += 1;
                }
                let frac = &query[frac_start..k.min(frac_start + 9)];
                nanos = format!("{frac:0<9}").parse().ok()?;
                end = k;
            }
        }
        if matches!(b.get(end), Some(b'Z' | b'z')) {
            end += 1;
        }
    }
    if b.get(end).is_some_and(u8::is_ascii_alphanumeric) {
        return None;
    }
    // Nanoseconds since 1970 in an `i64` reach from 1677 to 2262.
    let nanos = days_from_civil(year, month, day)
        .checked_mul(86_400)?
        .checked_add(secs)?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos)?;
    Some((nanos, end))
}

/// Whether a date starts at `i` (`YYYY-MM-DD`), whether or not it is valid.
fn looks_like_date(bytes: &[u8], i: usize) -> bool {
    let shape = b"dddd-dd-dd";
    bytes.len() >= i + shape.len()
        && shape.iter().zip(&bytes[i..]).all(|(want, b)| {
            if *want == b'd' {
                b.is_ascii_digit()
            } else {
                b == want
            }
        })
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_nanoseconds() {
        assert_eq!(date("1970-01-01", 0), Some((0, 10)));
        assert_eq!(
            date("2026-11-27T07:50:00Z", 0),
            Some((1_795_765_800_000_000_000, 20))
        );
        assert_eq!(
            date("2000-02-29T00:00:00.5", 0).map(|d| d.0),
            Some(951_782_400_500_000_000)
        );
        assert_eq!(date("2026-13-01", 0), None);
        assert_eq!(date("2026-11-27x", 0), None);
        assert_eq!(
            date("2262-04-11T23:47:16.854775807", 0).map(|d| d.0),
            Some(i64::MAX)
        );
        assert_eq!(date("2262-04-11T23:47:16.854775808", 0), None);
        assert_eq!(date("4052-11-01", 0), None);
        assert_eq!(date("1677-09-21", 0), None);
    }

    #[test]
    fn dates_out_of_range_or_malformed_are_errors() {
        for (query, bad) in [
            ("start_time > 4052-11-01 and a = 1", "4052-11-01"),
            ("start_time > 2026-13-01", "2026-13-01"),
            ("start_time > 2026-11-27T25:00", "2026-11-27T25:00"),
            ("start_time < 1000-01-01T00:00:00Z)", "1000-01-01T00:00:00Z"),
        ] {
            let e = lex(query).unwrap_err();
            assert_eq!(&query[e.offset..e.offset + e.len], bad, "{query}");
            assert!(e.message.contains("is not a date"), "{}", e.message);
        }
    }

    #[test]
    fn tokens() {
        let toks: Vec<Tok> = lex("a>=1.5e3 and `b c`!~'x\\'y' or -2 <> null")
            .unwrap()
            .into_iter()
            .map(|t| t.tok)
            .collect();
        assert_eq!(
            toks,
            [
                Tok::Ident("a".into()),
                Tok::Op(CmpOp::Ge),
                Tok::Number(1500.0),
                Tok::And,
                Tok::Quoted("b c".into()),
                Tok::Op(CmpOp::NotMatch),
                Tok::Str("x'y".into()),
                Tok::Or,
                Tok::Number(-2.0),
                Tok::Op(CmpOp::Ne),
                Tok::Null,
                Tok::End
            ]
        );
    }
}

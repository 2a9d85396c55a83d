//! The query parameters of the runs API, read alike by `lab ui`'s server and
//! the team server (`lab_team`): a parameter that cannot be read is refused
//! with a message naming it, its value and what was expected, which each
//! server answers as its `400 bad_request`.

use lab_store::wire::RunSummary;
use lab_store::{Detail, RunInfo, Selection};
use lab_types::Status;

use crate::series::XAxis;

/// The pairs of a query string, in order, decoded as a form is (`+` is a
/// space, `%XX` the byte XX; a `%` not followed by two hex digits stays as
/// it is); a name or value that is not UTF-8 once decoded is refused.
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(raw_name).ok_or_else(|| {
            format!("the query parameter name `{raw_name}` is not UTF-8 text once percent-decoded")
        })?;
        let value = decode(raw_value).ok_or_else(|| {
            // The name is UTF-8 here; shown in its decoded form, as documented.
            format!("`{name}` is not UTF-8 text once percent-decoded: got `{raw_value}`")
        })?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// `text` with `+` as a space and `%XX` as the byte XX, if the bytes are
/// UTF-8.
fn decode(text: &str) -> Option<String> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
            continue;
        }
        out.push(if b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// The last value of parameter `name`, if given once or more.
#[must_use]
pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// Parameter `name` as a number within `range` (inclusive), or `default`
/// when it is not given.
pub fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
    params: &[(String, String)],
    name: &str,
    default: T,
    range: (T, T),
) -> Result<T, String> {
    let Some(text) = param(params, name) else {
        return Ok(default);
    };
    match text.trim().parse::<T>() {
        Ok(n) if n >= range.0 && n <= range.1 => Ok(n),
        _ => Err(format!(
            "`{name}` must be a whole number from {} to {}: got `{text}`",
            range.0, range.1
        )),
    }
}

/// Items separated by commas; a comma between backticks (a quoted name such
/// as `` `a, b` ``) belongs to its item.
#[must_use]
pub fn list(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '`' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => items.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    items.push(current);
    items
        .into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The runs a `GET /runs` asks for: `experiment`, `status`, `where`,
/// `sort`, `limit` (0 to 10,000; 100 by default), `offset` and `after` (the
/// `next` cursor of an earlier page).
pub fn selection(params: &[(String, String)]) -> Result<Selection, String> {
    let limit = number(params, "limit", 100_usize, (0, 10_000))?;
    let offset = number(params, "offset", 0_usize, (0, usize::MAX / 2))?;
    let statuses = match param(params, "status") {
        Some(text) => list(text)
            .iter()
            .map(|s| {
                Status::parse(s).ok_or_else(|| {
                    let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
                    format!("`status` must be a list of {}: got `{s}`", names.join(", "))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
        None => Vec::new(),
    };
    Ok(Selection {
        experiment: param(params, "experiment")
            .map(str::to_owned)
            .filter(|e| !e.is_empty()),
        statuses,
        filter: param(params, "where").map(str::to_owned),
        sort: param(params, "sort").map(list).unwrap_or_default(),
        limit: Some(limit),
        offset,
        after: param(params, "after").map(str::to_owned),
        detail: Detail::Listing,
    })
}

/// Which params and metrics a listing includes (`columns`).
pub struct Columns {
    all: bool,
    params: Vec<String>,
    metrics: Vec<String>,
}

impl Columns {
    /// The `columns` parameter: names, `params.NAME` or `metrics.NAME`;
    /// none (or empty): every one.
    #[must_use]
    pub fn parse(text: Option<&str>) -> Self {
        let mut c = Self {
            all: true,
            params: Vec::new(),
            metrics: Vec::new(),
        };
        let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
            return c;
        };
        c.all = false;
        for name in list(text) {
            if let Some(p) = name.strip_prefix("params.") {
                c.params.push(p.to_owned());
            } else if let Some(m) = name.strip_prefix("metrics.") {
                c.metrics.push(m.to_owned());
            } else {
                c.params.push(name.clone());
                c.metrics.push(name);
            }
        }
        c
    }

    fn param(&self, name: &str) -> bool {
        self.all || self.params.iter().any(|p| p == name)
    }

    fn metric(&self, name: &str) -> bool {
        self.all || self.metrics.iter().any(|m| m == name)
    }

    /// A run as the runs list shows it: the params and metrics asked for,
    /// in name order.
    #[must_use]
    pub fn summary(&self, run: RunInfo) -> RunSummary {
        let mut summary = RunSummary::of(run);
        summary.params.retain(|k| self.param(k));
        summary.metrics.retain(|k| self.metric(k));
        summary.sort();
        summary
    }
}

/// What a `GET /runs/{id}/metrics/{name}` asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesQuery {
    /// `x`: `step` (the default), `time`, `wall` or `metrics.<name>`.
    pub axis: XAxis,
    /// The metric whose values are x, for `x=metrics.<name>`.
    pub x_metric: Option<String>,
    /// `max_points`: 2 to 100,000; 2,000 by default.
    pub max_points: usize,
    /// `from`: the smallest x shown.
    pub from: Option<f64>,
    /// `to`: the largest x shown.
    pub to: Option<f64>,
}

impl SeriesQuery {
    /// The `x` asked for, as the answer's `x_axis` says it.
    #[must_use]
    pub fn x_axis(&self) -> String {
        match (self.axis, &self.x_metric) {
            (XAxis::Step, _) => "step".to_owned(),
            (XAxis::Time, _) => "time".to_owned(),
            (XAxis::Wall, _) => "wall".to_owned(),
            (XAxis::Metric, name) => format!("metrics.{}", name.as_deref().unwrap_or_default()),
        }
    }

    /// Reads `x`, `max_points`, `from` and `to`.
    pub fn parse(params: &[(String, String)]) -> Result<Self, String> {
        let mut x_metric = None;
        let axis = match param(params, "x").unwrap_or("step") {
            "step" => XAxis::Step,
            "time" => XAxis::Time,
            "wall" => XAxis::Wall,
            other => match other.strip_prefix("metrics.") {
                Some(name) if !name.is_empty() => {
                    x_metric = Some(name.to_owned());
                    XAxis::Metric
                }
                _ => {
                    return Err(format!(
                        "`x` must be `step`, `time`, `wall` or `metrics.<name>`: got `{other}`"
                    ));
                }
            },
        };
        let max_points = number(params, "max_points", 2000_usize, (2, 100_000))?;
        let bound = |key: &str| -> Result<Option<f64>, String> {
            match param(params, key) {
                None => Ok(None),
                Some(t) => match t.trim().parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(Some(v)),
                    _ => Err(format!("`{key}` must be a finite number: got `{t}`")),
                },
            }
        };
        Ok(Self {
            axis,
            x_metric,
            max_points,
            from: bound("from")?,
            to: bound("to")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_as_forms_do_but_only_to_utf8() {
        let pairs = parse_query("a=1&&b=x+y%2B%C3%A9&c&d=%&e=%4&=v").unwrap();
        let want = [
            ("a", "1"),
            ("b", "x y+é"),
            ("c", ""),
            ("d", "%"),
            ("e", "%4"),
            ("", "v"),
        ];
        assert_eq!(
            pairs,
            want.map(|(k, v)| (k.to_owned(), v.to_owned())).to_vec()
        );
        for bad in ["a=%FF", "a=%C3%28", "%FF=1", "a=1&b=%ED%A0%80"] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_keep_quoted_commas() {
        assert_eq!(list("-a, b,,c "), vec!["-a", "b", "c"]);
        assert_eq!(list("-params.`x, y`,z"), vec!["-params.`x, y`", "z"]);
    }

    #[test]
    fn bad_parameters_are_named_with_their_value() {
        let p = |q: &str| parse_query(q).unwrap();
        assert_eq!(
            selection(&p("limit=10001")).unwrap_err(),
            "`limit` must be a whole number from 0 to 10000: got `10001`"
        );
        assert!(
            selection(&p("status=lost"))
                .unwrap_err()
                .contains("got `lost`")
        );
        assert_eq!(
            SeriesQuery::parse(&p("max_points=1")).unwrap_err(),
            "`max_points` must be a whole number from 2 to 100000: got `1`"
        );
        assert_eq!(
            SeriesQuery::parse(&p("from=nan")).unwrap_err(),
            "`from` must be a finite number: got `nan`"
        );
    }
}

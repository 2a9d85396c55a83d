//! Text tables that fit the terminal.

/// The terminal's width when stdout is one; otherwise `COLUMNS`, else no limit.
#[must_use]
pub fn width() -> Option<usize> {
    let stdout = std::io::stdout();
    if let Ok(size) = rustix::termios::tcgetwinsize(&stdout)
        && size.ws_col > 0
    {
        return Some(usize::from(size.ws_col));
    }
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&c| c > 0)
}

/// Display width of `s` (one column per character; box and block glyphs are one wide).
#[must_use]
pub fn text_width(s: &str) -> usize {
    let mut n = 0;
    let mut in_escape = false;
    for c in s.chars() {
        if in_escape {
            in_escape = c != 'm';
        } else if c == '\x1b' {
            in_escape = true;
        } else {
            n += 1;
        }
    }
    n
}

/// Cuts `s` to `max` columns, ending with `…` when cut.
#[must_use]
pub fn truncate(s: &str, max: usize) -> String {
    if text_width(s) <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A bar `width` cells long for `fraction` (0..=1) of the way, in eighths.
#[must_use]
pub fn bar(fraction: f64, width: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let f = if fraction.is_finite() {
        fraction.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let eighths = (f * (width * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    if !eighths.is_multiple_of(8) {
        s.push(PARTS[eighths % 8]);
    }
    while text_width(&s) < width {
        s.push(' ');
    }
    s
}

/// A sparkline of `values` at most `width` cells wide: each cell the mean of
/// its share of the values, scaled between the smallest and largest finite
/// value; cells with no finite value are blank.
#[must_use]
pub fn sparkline(values: &[f64], width: usize) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    if values.is_empty() || width == 0 {
        return String::new();
    }
    let cells = values.len().min(width);
    let means: Vec<Option<f64>> = (0..cells)
        .map(|c| {
            let (from, to) = (
                c * values.len() / cells,
                ((c + 1) * values.len() / cells).max(c * values.len() / cells + 1),
            );
            let finite: Vec<f64> = values[from..to.min(values.len())]
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .collect();
            (!finite.is_empty()).then(|| finite.iter().sum::<f64>() / finite.len() as f64)
        })
        .collect();
    let lo = means
        .iter()
        .flatten()
        .copied()
        .fold(f64::INFINITY, f64::min);
    let hi = means
        .iter()
        .flatten()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    means
        .iter()
        .map(|m| match m {
            None => ' ',
            Some(v) if hi > lo => BARS[(((v - lo) / (hi - lo)) * 7.0).round() as usize],
            Some(_) => BARS[3],
        })
        .collect()
}

/// A table: a header row and rows of cells, left-aligned, two spaces apart.
pub struct Table {
    /// Column titles.
    pub header: Vec<String>,
    /// Cells (may contain colour escapes).
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Renders the table; columns that do not fit in `max_width` are left out
    /// from the right (the first `keep` always stay). Returns the text and how
    /// many columns were left out.
    #[must_use]
    pub fn render(&self, max_width: Option<usize>, keep: usize) -> (String, usize) {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| text_width(&r[c]))
                    .chain([text_width(&self.header[c])])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut shown = widths.len();
        if let Some(max) = max_width {
            let mut total = 0;
            for (i, w) in widths.iter().enumerate() {
                total += w + usize::from(i > 0) * 2;
                if total > max && i >= keep {
                    shown = i;
                    break;
                }
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let mut l = String::new();
            for (i, cell) in cells.iter().take(shown).enumerate() {
                if i > 0 {
                    l.push_str("  ");
                }
                l.push_str(cell);
                if i + 1 < shown {
                    l.push_str(&" ".repeat(widths[i] - text_width(cell)));
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(&self.header, &mut out);
        for r in &self.rows {
            line(r, &mut out);
        }
        (out, widths.len() - shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_in_eighths() {
        assert_eq!(bar(1.0, 4), "████");
        assert_eq!(bar(0.0, 4), "    ");
        assert_eq!(bar(0.5, 4), "██  ");
        assert_eq!(bar(0.53, 4), "██▏ ");
        assert_eq!(bar(f64::NAN, 2), "  ");
    }

    #[test]
    fn sparklines() {
        assert_eq!(
            sparkline(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], 8),
            "▁▂▃▄▅▆▇█"
        );
        assert_eq!(sparkline(&[1.0, 1.0], 8), "▄▄");
        assert_eq!(sparkline(&[0.0, 0.0, 10.0, 10.0], 2), "▁█");
        assert_eq!(sparkline(&[f64::NAN, 1.0, 2.0], 3), " ▁█");
        assert_eq!(sparkline(&[], 5), "");
    }

    #[test]
    fn tables_drop_columns_that_do_not_fit() {
        let t = Table {
            header: vec!["ID".into(), "A".into(), "B".into()],
            rows: vec![vec!["abcdef".into(), "1234".into(), "5678".into()]],
        };
        let (text, dropped) = t.render(Some(14), 1);
        assert_eq!(dropped, 1);
        assert_eq!(text, "ID      A\nabcdef  1234\n");
        let (_, dropped) = t.render(None, 1);
        assert_eq!(dropped, 0);
    }
}

//! The original Lab's diagram of runs: dataset -> script -> hyperparameters
//! -> metrics, as Graphviz source or as an SVG laid out here (no external
//! program needed).

use lab_types::fields::attr;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use lab_store::RunInfo;
use lab_types::Value;

use crate::output;
use crate::visible;

/// A box in the diagram: a title and lines of text.
#[derive(Clone, Debug, PartialEq)]
struct Node {
    id: String,
    title: String,
    lines: Vec<String>,
    column: usize,
}

/// The diagram of `runs`: one column per stage, shared datasets and scripts
/// drawn once, one box of hyperparameters and one of metrics per run.
struct Diagram {
    nodes: Vec<Node>,
    edges: Vec<(String, String)>,
}

const COLUMNS: [&str; 4] = ["dataset", "script", "hyperparameters", "metrics"];

fn dataset_name(run: &RunInfo) -> String {
    match run.attr(attr::DATASET) {
        None | Some(Value::Null) => "no dataset given".to_owned(),
        Some(Value::Str(s)) => visible::text(s).into_owned(),
        Some(v) => visible::text(&v.to_string()).into_owned(),
    }
}

/// `s` cut to `max` characters, with control characters shown as escapes
/// (XML may not hold them, and a reader should see them).
fn cut(s: &str, max: usize) -> String {
    let s = visible::text(s);
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    } else {
        s.into_owned()
    }
}

impl Diagram {
    fn new(runs: &[RunInfo]) -> Self {
        let mut b = Builder::default();
        for run in runs {
            let data_id = b.dataset(run);
            let script_id = b.script(run);
            let params_id = b.hyperparameters(run);
            let metrics_id = b.metrics(run);
            b.edge((data_id, script_id.clone()));
            b.edge((script_id, params_id.clone()));
            b.edge((params_id, metrics_id));
        }
        Self {
            nodes: b.nodes,
            edges: b.edges,
        }
    }
}

/// A diagram being drawn, with indexes of what it holds: adding a run looks
/// up its shared boxes and its edges at once rather than scanning every box
/// and edge so far, which made the diagram of many runs quadratic.
#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
    edges: Vec<(String, String)>,
    ids: HashSet<String>,
    edge_set: HashSet<(String, String)>,
    /// The first dataset box of each title.
    datasets: HashMap<String, String>,
    /// The first script box of each [`script_key`].
    scripts: HashMap<String, String>,
}

/// What makes two script boxes the same: the source and the commit line.
fn script_key(title: &str, commit: Option<&str>) -> String {
    format!("{title} {}", commit.unwrap_or_default())
}

impl Builder {
    /// Adds `node` unless a box with its id is there already.
    fn add(&mut self, node: Node) {
        if !self.ids.insert(node.id.clone()) {
            return;
        }
        match node.column {
            0 => {
                self.datasets
                    .entry(node.title.clone())
                    .or_insert_with(|| node.id.clone());
            }
            1 => {
                let key = script_key(&node.title, node.lines.first().map(String::as_str));
                self.scripts.entry(key).or_insert_with(|| node.id.clone());
            }
            _ => {}
        }
        self.nodes.push(node);
    }

    /// Adds `edge` unless it is there already.
    fn edge(&mut self, edge: (String, String)) {
        if self.edge_set.insert(edge.clone()) {
            self.edges.push(edge);
        }
    }

    /// The box of the run's dataset, shared by the runs of the same dataset.
    fn dataset(&mut self, run: &RunInfo) -> String {
        let dataset = dataset_name(run);
        let id = self
            .datasets
            .get(&dataset)
            .cloned()
            .unwrap_or_else(|| format!("data_{}", self.nodes.len()));
        self.add(Node {
            id: id.clone(),
            title: dataset,
            lines: vec![],
            column: 0,
        });
        id
    }

    /// The box of the run's script and commit, shared by the runs of the same
    /// script at the same commit.
    fn script(&mut self, run: &RunInfo) -> String {
        let source = visible::text(&output::source_name(run)).into_owned();
        let commit = run
            .attr_str(attr::GIT_COMMIT)
            .map(|c| format!("git {}", cut(&c.chars().take(10).collect::<String>(), 10)));
        let id = self
            .scripts
            .get(&script_key(&source, commit.as_deref()))
            .cloned()
            .unwrap_or_else(|| format!("script_{}", self.nodes.len()));
        self.add(Node {
            id: id.clone(),
            title: source,
            lines: commit.into_iter().collect(),
            column: 1,
        });
        id
    }

    /// The box of the run's hyperparameters, one line each.
    fn hyperparameters(&mut self, run: &RunInfo) -> String {
        let id = format!("params_{}", run.short_id);
        let mut lines: Vec<String> = run
            .params
            .iter()
            .map(|(k, v)| cut(&format!("{k} = {v}"), 40))
            .collect();
        if lines.is_empty() {
            lines.push("no hyperparameters".into());
        }
        self.add(Node {
            id: id.clone(),
            title: format!("run {} ({})", run.short_id, run.status),
            lines,
            column: 2,
        });
        id
    }

    /// The box of the run's metrics, one line each with its last value.
    fn metrics(&mut self, run: &RunInfo) -> String {
        let id = format!("metrics_{}", run.short_id);
        let mut lines: Vec<String> = run
            .metrics
            .iter()
            .map(|m| cut(&format!("{} = {}", m.name, output::number(m.last)), 40))
            .collect();
        if lines.is_empty() {
            lines.push("no metrics".into());
        }
        self.add(Node {
            id: id.clone(),
            title: format!("metrics {}", run.short_id),
            lines,
            column: 3,
        });
        id
    }
}

fn dot_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Graphviz source of the diagram.
#[must_use]
pub fn dot(runs: &[RunInfo]) -> String {
    let d = Diagram::new(runs);
    let mut out = String::from(
        "digraph lab {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n",
    );
    for (col, name) in COLUMNS.iter().enumerate() {
        let _ = writeln!(
            out,
            "  subgraph cluster_{col} {{\n    label=\"{name}\";\n    style=dashed;"
        );
        for n in d.nodes.iter().filter(|n| n.column == col) {
            let mut label = dot_escape(&n.title);
            for l in &n.lines {
                label.push_str("\\l");
                label.push_str(&dot_escape(l));
            }
            if !n.lines.is_empty() {
                label.push_str("\\l");
            }
            let _ = writeln!(out, "    {} [label=\"{label}\"];", n.id);
        }
        out.push_str("  }\n");
    }
    for (a, b) in &d.edges {
        let _ = writeln!(out, "  {a} -> {b};");
    }
    out.push_str("}\n");
    out
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

const LINE_HEIGHT: f64 = 16.0;
const CHAR_WIDTH: f64 = 7.2;
const BOLD_CHAR_WIDTH: f64 = 8.0;
const GAP: f64 = 24.0;
const COLUMN_GAP: f64 = 70.0;
const PAD: f64 = 8.0;

/// A box placed on the page: its left, top, width and height.
struct Placed<'a> {
    node: &'a Node,
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// Where everything goes: the left edge of each column, each box, and the
/// size of the page.
struct Layout<'a> {
    column_x: Vec<f64>,
    boxes: Vec<Placed<'a>>,
    width: f64,
    height: f64,
}

/// Sizes every box, then stacks each column's boxes top to bottom.
fn layout(d: &Diagram) -> Layout<'_> {
    let width_of = |n: &Node| {
        let lines = n
            .lines
            .iter()
            .map(|l| l.chars().count() as f64 * CHAR_WIDTH);
        let title = n.title.chars().count() as f64 * BOLD_CHAR_WIDTH;
        lines.fold(title, f64::max) + 2.0 * PAD
    };
    let height_of = |n: &Node| (1 + n.lines.len()) as f64 * LINE_HEIGHT + 2.0 * PAD;
    let col_width: Vec<f64> = (0..COLUMNS.len())
        .map(|c| {
            d.nodes
                .iter()
                .filter(|n| n.column == c)
                .map(width_of)
                .fold(120.0, f64::max)
        })
        .collect();
    let mut x = vec![20.0; COLUMNS.len()];
    for c in 1..COLUMNS.len() {
        x[c] = x[c - 1] + col_width[c - 1] + COLUMN_GAP;
    }
    let mut y_next = [50.0; 4];
    let mut boxes = Vec::with_capacity(d.nodes.len());
    for n in &d.nodes {
        let y = y_next[n.column];
        y_next[n.column] += height_of(n) + GAP;
        boxes.push(Placed {
            node: n,
            x: x[n.column],
            y,
            w: width_of(n),
            h: height_of(n),
        });
    }
    let width = x[COLUMNS.len() - 1] + col_width[COLUMNS.len() - 1] + 20.0;
    let height = y_next.iter().fold(100.0_f64, |a, b| a.max(*b)) + 10.0;
    Layout {
        column_x: x,
        boxes,
        width,
        height,
    }
}

/// The diagram as a standalone SVG document.
#[must_use]
pub fn svg(runs: &[RunInfo]) -> String {
    let d = Diagram::new(runs);
    let page = layout(&d);
    let mut out = String::new();
    let (total_w, total_h) = (page.width, page.height);
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w:.0}" height="{total_h:.0}" viewBox="0 0 {total_w:.0} {total_h:.0}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    out.push_str("<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n");
    let _ = writeln!(
        out,
        r##"<rect width="100%" height="100%" fill="#ffffff"/>"##
    );
    for (c, name) in COLUMNS.iter().enumerate() {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="28" font-weight="bold" fill="#333">{name}</text>"##,
            page.column_x[c]
        );
    }
    svg_arrows(&mut out, &d.edges, &page.boxes);
    for b in &page.boxes {
        svg_box(&mut out, b);
    }
    out.push_str("</svg>\n");
    out
}

/// An arrow per edge, from the right side of one box to the left side of
/// the next.
fn svg_arrows(out: &mut String, edges: &[(String, String)], boxes: &[Placed<'_>]) {
    let by_id: HashMap<&str, &Placed<'_>> = boxes.iter().map(|p| (p.node.id.as_str(), p)).collect();
    for (a, b) in edges {
        if let (Some(from), Some(to)) = (by_id.get(a.as_str()), by_id.get(b.as_str())) {
            let (x1, y1) = (from.x + from.w, from.y + from.h / 2.0);
            let (x2, y2) = (to.x, to.y + to.h / 2.0);
            let mid = f64::midpoint(x1, x2);
            let _ = writeln!(
                out,
                r##"<path d="M{x1:.1},{y1:.1} C{mid:.1},{y1:.1} {mid:.1},{y2:.1} {x2:.1},{y2:.1}" fill="none" stroke="#555" stroke-width="1.2" marker-end="url(#arrow)"/>"##
            );
        }
    }
}

/// One box: its frame, its title in bold, and its lines.
fn svg_box(out: &mut String, b: &Placed<'_>) {
    let Placed {
        node: n,
        x,
        y,
        w,
        h,
    } = b;
    let fill = ["#e8f1fb", "#eef7ea", "#fdf3e3", "#f3ecf9"][n.column];
    let _ = writeln!(
        out,
        r##"<rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" rx="6" fill="{fill}" stroke="#888"/>"##
    );
    let _ = writeln!(
        out,
        r##"<text x="{:.1}" y="{:.1}" font-weight="bold" fill="#111">{}</text>"##,
        x + PAD,
        y + PAD + 12.0,
        xml_escape(&n.title)
    );
    for (i, line) in n.lines.iter().enumerate() {
        let _ = writeln!(
            out,
            r##"<text x="{:.1}" y="{:.1}" fill="#222">{}</text>"##,
            x + PAD,
            y + PAD + 12.0 + (i + 1) as f64 * LINE_HEIGHT,
            xml_escape(line)
        );
    }
}

/// The diagram as a PNG, drawn from the SVG at twice its size with the
/// machine's own fonts.
pub fn png(runs: &[RunInfo]) -> anyhow::Result<Vec<u8>> {
    Ok(raster(&svg(runs))?.encode_png()?)
}

/// Draws an SVG document with the machine's fonts, at twice its size.
fn raster(svg: &str) -> anyhow::Result<resvg::tiny_skia::Pixmap> {
    let mut options = resvg::usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_system_fonts();
    // The SVG asks for Helvetica, Arial or any sans-serif: make "sans-serif"
    // one this machine has, preferring the common free ones.
    let families: Vec<String> = fonts
        .faces()
        .flat_map(|f| f.families.iter().map(|(name, _)| name.clone()))
        .collect();
    let Some(sans) = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "FreeSans"]
        .iter()
        .map(|s| (*s).to_owned())
        .find(|s| families.contains(s))
        .or_else(|| families.first().cloned())
    else {
        anyhow::bail!(crate::output::UserError(
            "this machine has no fonts to draw the diagram's text with\n\nhint: write `.svg` instead".into()
        ));
    };
    fonts.set_sans_serif_family(sans.clone());
    options.font_family = sans;
    let tree = resvg::usvg::Tree::from_str(svg, &options)?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width() * 2, size.height() * 2)
        .ok_or_else(|| anyhow::anyhow!("the diagram is too large to draw: {size:?}"))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::from_scale(2.0, 2.0),
        &mut pixmap.as_mut(),
    );
    Ok(pixmap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_text_is_drawn() {
        // Text is #111/#222; lines and borders are #555 and lighter. Dark
        // pixels therefore mean the text was drawn with a real font.
        let svg = r##"<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40" font-family="Helvetica, Arial, sans-serif" font-size="12"><rect width="100%" height="100%" fill="#ffffff"/><text x="10" y="25" fill="#111">accuracy = 0.97</text></svg>"##;
        let pixmap = raster(svg).unwrap();
        let dark = pixmap
            .pixels()
            .iter()
            .filter(|p| p.red() < 60 && p.green() < 60 && p.blue() < 60)
            .count();
        assert!(dark > 50, "only {dark} dark pixels: no text drawn");
    }

    #[test]
    fn escaping() {
        assert_eq!(xml_escape("<a & 'b'>"), "&lt;a &amp; &#39;b&#39;&gt;");
        assert_eq!(dot_escape("say \"hi\"\n"), "say \\\"hi\\\"\\n");
        assert_eq!(cut("abcdef", 4), "abc…");
    }
}

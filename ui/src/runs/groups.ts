// Grouping the runs table: the "Group by" control, and the rows the table
// draws when a key groups them. The runs of one group are listed together
// under a group row (its value, how many runs, and the mean, min and max of
// each metric column) that folds and unfolds them. Groups come in the order
// of their first run in the server's sort; the runs in each keep that order.
// Grouping is done here over the rows the page has (the server has no
// grouping): with a key set, every page of the query is fetched, up to
// GROUP_LIMIT runs.

import type { Names, RunRow } from "../api";
import { h } from "../dom";
import { fmtNum, fmtValue } from "../format";
import { cellValue, keyId, parseKey, sameKey, shortKey, type ColKey } from "../keys";
import * as selection from "../selection";
import { PAGE, type Pager } from "./pager";

/** The most runs grouped: past it, the rest of the query is left out. */
export const GROUP_LIMIT = 10_000;

/** The run fields that group runs well (the rest are unique per run or times). */
const GROUP_FIELDS = ["group", "experiment", "status", "user", "host", "git_commit", "python_version"];

/** One group as its row shows it. */
export interface GroupRow {
  /** The group's value as text: what tells groups apart. */
  key: string;
  /** How the row names it. */
  label: string;
  runs: RunRow[];
  folded: boolean;
}

type Item = RunRow | GroupRow;

function isGroup(x: Item | undefined): x is GroupRow {
  return !!x && "folded" in x && "runs" in x && !("id" in x);
}

/** The group key of the address's `group=` (null: none). */
export function readGroupKey(text: string, names: Names | null): ColKey | null {
  return text ? parseKey(text, names) : null;
}

/** How the address writes a group key. */
export function groupKeyText(k: ColKey | null, names: Names | null): string | undefined {
  return k ? shortKey(k, names) : undefined;
}

/** The value `r` is grouped by, as text ("" when it has none). */
function groupValue(r: RunRow, k: ColKey): string {
  const v = cellValue(r, k);
  if (v === null || v === undefined) return "";
  return typeof v === "string" ? v : JSON.stringify(v);
}

/**
 * The rows the table draws: the pager's as they are, or, with a group key,
 * group rows each followed by its runs (unless folded).
 */
export class GroupedRows {
  private by: ColKey | null = null;
  private items: Item[] = [];
  private folded = new Set<string>();
  /** Runs past GROUP_LIMIT that are not grouped. */
  left = 0;

  constructor(private pager: Pager) {}

  get key(): ColKey | null {
    return this.by;
  }

  /** Groups by `k` (null: not at all); whether that changed anything. */
  setKey(k: ColKey | null): boolean {
    if ((k === null && this.by === null) || (k && this.by && sameKey(k, this.by))) return false;
    this.by = k;
    this.folded.clear();
    this.rebuild();
    return true;
  }

  /** How many of the pager's pages are held. */
  get held(): number {
    return this.pager.held;
  }

  /** Rows in all; -1 while not known (with a key: until every page is in). */
  get total(): number {
    if (!this.by) return this.pager.total;
    if (this.pager.total < 0 || !this.complete()) return this.pager.total === 0 ? 0 : -1;
    return this.items.length;
  }

  row(i: number): RunRow | null {
    if (!this.by) return this.pager.row(i);
    const x = this.items[i];
    return x && !isGroup(x) ? x : null;
  }

  /** The group row drawn at `i`, if it is one. */
  group(i: number): GroupRow | null {
    if (!this.by) return null;
    const x = this.items[i];
    return isGroup(x) ? x : null;
  }

  want(first: number, last: number): void {
    if (!this.by) this.pager.want(first, last);
    else this.fetchAll();
  }

  /** With a key, fetches every page of the query (up to GROUP_LIMIT runs). */
  fetchAll(): void {
    if (!this.by) return;
    if (this.pager.total < 0) {
      this.pager.want(0, 0);
      return;
    }
    const n = Math.min(this.pager.total, GROUP_LIMIT);
    if (n > 0) this.pager.want(0, n - 1);
  }

  /** The pager's rows (display indices) to fetch again for a live refresh. */
  refreshRange(shown: [number, number]): [number, number] {
    if (!this.by) return shown;
    return [0, Math.max(0, Math.min(this.pager.total, GROUP_LIMIT) - 1)];
  }

  /** Folds group `key`, or unfolds it. */
  toggle(key: string): void {
    if (this.folded.has(key)) this.folded.delete(key);
    else this.folded.add(key);
    this.rebuild();
  }

  /** Builds the rows again from the pager's (after new rows came in). */
  rebuild(): void {
    this.items = [];
    this.left = 0;
    const k = this.by;
    if (!k || !this.complete()) return;
    const n = Math.min(this.pager.total, GROUP_LIMIT);
    this.left = Math.max(0, this.pager.total - n);
    const groups = new Map<string, GroupRow>();
    for (let i = 0; i < n; i++) {
      const r = this.pager.row(i);
      if (!r) continue;
      const key = groupValue(r, k);
      let g = groups.get(key);
      if (!g) {
        const label = key === "" ? `no ${keyId(k)}` : fmtValue(cellValue(r, k));
        g = { key, label, runs: [], folded: this.folded.has(key) };
        groups.set(key, g);
      }
      g.runs.push(r);
    }
    for (const g of groups.values()) {
      this.items.push(g);
      if (!g.folded) this.items.push(...g.runs);
    }
  }

  private complete(): boolean {
    const n = Math.min(Math.max(0, this.pager.total), GROUP_LIMIT);
    for (let p = 0; p * PAGE < n; p++) if (!this.pager.row(p * PAGE)) return false;
    return this.pager.total >= 0;
  }
}

/** Mean, min and max of the finite numbers among `values`; null when none. */
export function stats(values: unknown[]): { mean: number; min: number; max: number; n: number } | null {
  let sum = 0;
  let n = 0;
  let min = Infinity;
  let max = -Infinity;
  for (const v of values) {
    if (typeof v !== "number" || !Number.isFinite(v)) continue;
    sum += v;
    n++;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return n ? { mean: sum / n, min, max, n } : null;
}

/** The cell of a group row under column `c`. */
function groupCell(g: GroupRow, c: ColKey): HTMLElement {
  const values = g.runs.map((r) => cellValue(r, c));
  if (c.kind === "metrics") {
    const s = stats(values);
    if (!s) return h("div", { class: "vt-cell num missing", role: "gridcell" });
    const title = `${c.name} over ${s.n} of ${g.runs.length} runs: mean ${fmtValue(s.mean)}, min ${fmtValue(s.min)}, max ${fmtValue(s.max)}`;
    return h(
      "div",
      { class: "vt-cell num g-stats", role: "gridcell", title, "data-mean": String(s.mean), "data-min": String(s.min), "data-max": String(s.max) },
      h("span", { class: "g-mean" }, fmtNum(s.mean)),
      h("span", { class: "g-range" }, `${fmtNum(s.min, 3)} – ${fmtNum(s.max, 3)}`),
    );
  }
  const distinct = new Set(values.map((v) => (v === undefined ? "" : JSON.stringify(v))));
  if (distinct.size === 1) {
    const s = fmtValue(values[0]);
    return h("div", { class: "vt-cell" + (s ? "" : " missing"), role: "gridcell", title: s }, s);
  }
  return h("div", { class: "vt-cell missing", role: "gridcell", title: `${distinct.size} values` }, `${distinct.size} values`);
}

/** Whether every run of `g` is ticked. */
export function groupTicked(g: GroupRow): boolean {
  return g.runs.every((r) => selection.has(r.id));
}

/** A group row at row `i`: a box that ticks its runs, the fold button over
 *  the run fields' columns, then a cell per column. */
export function buildGroupRow(i: number, g: GroupRow, cols: ColKey[], spanFields: number, style: Record<string, string>, toggle: () => void): HTMLElement {
  const count = `${g.runs.length} run${g.runs.length === 1 ? "" : "s"}`;
  const button = h(
    "button",
    {
      class: "g-toggle",
      testid: "group-toggle",
      tabIndex: -1,
      "aria-expanded": g.folded ? "false" : "true",
      title: `${g.folded ? "Show" : "Hide"} the ${count} of ${g.label}`,
      onclick: (e: Event) => {
        e.stopPropagation();
        toggle();
      },
    },
    h("span", { class: "g-caret", "aria-hidden": "true" }, g.folded ? "▸" : "▾"),
    h("span", { class: "g-label" }, g.label),
    h("span", { class: "g-count" }, count),
  );
  return h(
    "div",
    {
      class: "vt-row g-row" + (g.folded ? " folded" : ""),
      role: "row",
      testid: "group-row",
      "data-group": g.key,
      "data-count": g.runs.length,
      "data-index": i,
      "aria-rowindex": i + 2,
      "aria-expanded": g.folded ? "false" : "true",
      style,
    },
    h(
      "div",
      { class: "vt-cell c-select", role: "gridcell" },
      h("input", {
        type: "checkbox",
        testid: "group-select",
        tabIndex: -1,
        checked: groupTicked(g),
        "aria-label": `Select the ${count} of ${g.label}`,
        title: `Select the ${count} of ${g.label}`,
        onclick: (e: Event) => e.stopPropagation(),
        onchange: (e: Event) => selection.tick(g.runs, (e.target as HTMLInputElement).checked),
      }),
    ),
    h("div", { class: "vt-cell g-head", role: "gridcell", style: { gridColumn: `span ${spanFields}` } }, button),
    cols.map((c) => groupCell(g, c)),
  );
}

/** The "Group by" select: none, the run fields that group well, every param and tag. */
export class GroupControl {
  readonly el: HTMLElement;
  private select: HTMLSelectElement;

  constructor(private choose: (k: ColKey | null) => void) {
    this.select = h("select", {
      testid: "group-by",
      "aria-label": "Group runs by",
      title: "List runs of one value together, foldable, with the mean, min and max of each metric",
      onchange: () => this.choose(this.select.value ? JSON.parse(this.select.value) : null),
    });
    this.el = h("label", { class: "group-by" }, h("span", { class: "muted" }, "Group"), this.select);
  }

  /** The options for `names`, with `current` chosen. */
  show(names: Names, current: ColKey | null): void {
    const opt = (k: ColKey | null, label: string) => h("option", { value: k ? JSON.stringify(k) : "" }, label);
    const fields = GROUP_FIELDS.filter((f) => names.fields.includes(f)).map((f) => opt({ kind: "field", name: f }, f));
    const params = names.params.map((p) => opt({ kind: "params", name: p }, `params.${p}`));
    const tags = names.tags.map((t) => opt({ kind: "tags", name: t }, `tags.${t}`));
    const extra = current && !fields.concat(params, tags).some((o) => o.value === JSON.stringify(current)) ? [opt(current, keyId(current))] : [];
    const sections: [string, HTMLOptionElement[]][] = [
      ["run", fields],
      ["parameters", params],
      ["tags", tags],
    ];
    this.select.replaceChildren(
      opt(null, "none"),
      ...extra,
      ...sections.filter(([, list]) => list.length).map(([label, list]) => h("optgroup", { label }, ...list)),
    );
    this.select.value = current ? JSON.stringify(current) : "";
  }
}

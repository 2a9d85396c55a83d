// Single-value metrics (one point per run, such as a test score) side by
// side: a table of the runs against those metrics, each cell the value and
// a bar of it. Bars of a column share a scale from zero (or, on a log scale,
// from the decade below the smallest value), so they compare at a glance;
// a click on a metric's name sorts the runs by it.

import { h } from "../dom";
import { fmtNum } from "../format";
import { seriesColor } from "../theme";
import { finite } from "../api";
import type { PlotRun } from "./fields";

interface Scale {
  log: boolean;
  /** Where 0 (or the log scale's floor) stands, and a value's end, in [0, 1]. */
  zero: number;
  at(v: number): number;
}

function scaleOf(values: number[], log: boolean): Scale {
  if (log && values.length && values.every((v) => v > 0)) {
    const lo = Math.floor(Math.log10(Math.min(...values)));
    let hi = Math.ceil(Math.log10(Math.max(...values)));
    if (hi === lo) hi = lo + 1;
    return { log: true, zero: 0, at: (v) => (v > 0 ? (Math.log10(v) - lo) / (hi - lo) : 0) };
  }
  const lo = Math.min(0, ...values);
  const hi = Math.max(0, ...values);
  const span = hi - lo || 1;
  return { log: false, zero: -lo / span, at: (v) => (v - lo) / span };
}

export class SingleValues {
  el: HTMLElement;
  private runs: PlotRun[] = [];
  private metrics: string[] = [];
  private log = false;
  private sort: { metric: string; desc: boolean } | null = null;

  constructor() {
    this.el = h("div", { class: "single-values", testid: "single-values" });
  }

  set(runs: PlotRun[], metrics: string[], log: boolean): void {
    this.runs = runs;
    this.metrics = metrics;
    this.log = log;
    if (this.sort && !metrics.includes(this.sort.metric)) this.sort = null;
    this.render();
  }

  private render(): void {
    const scales = new Map(
      this.metrics.map((m) => [m, scaleOf(this.runs.map((r) => finite(r.metrics[m])).filter((v): v is number => v !== null), this.log)]),
    );
    let rows = [...this.runs];
    const s = this.sort;
    if (s) {
      const val = (r: PlotRun) => finite(r.metrics[s.metric]);
      rows.sort((a, b) => {
        const x = val(a);
        const y = val(b);
        if (x === null || y === null) return x === null ? (y === null ? 0 : 1) : -1;
        return s.desc ? y - x : x - y;
      });
    }
    rows = rows.filter((r) => this.metrics.some((m) => r.metrics[m] !== undefined));
    const head = this.metrics.map((m) => {
      const sorted = s?.metric === m ? (s.desc ? "descending" : "ascending") : "none";
      return h(
        "th",
        { scope: "col", "aria-sort": sorted, class: "sv-metric" },
        h(
          "button",
          {
            class: "sv-sort",
            title: `${m}: sort the runs by it`,
            testid: "single-sort",
            onclick: () => {
              this.sort = s?.metric === m ? { metric: m, desc: !s.desc } : { metric: m, desc: true };
              this.render();
            },
          },
          m,
          sorted === "none" ? "" : sorted === "descending" ? " ↓" : " ↑",
        ),
        scales.get(m)?.log ? h("span", { class: "muted sv-log" }, " log") : null,
      );
    });
    const body = rows.map((r) =>
      h(
        "tr",
        { "data-run-id": r.id },
        h(
          "th",
          { scope: "row", class: "sv-run" },
          h("span", { class: "swatch", style: { background: seriesColor(r.colorIndex) }, "aria-hidden": "true" }),
          h("a", { href: `#/run/${encodeURIComponent(r.id)}`, title: `${r.label} (${r.shortId})` }, r.label),
        ),
        this.metrics.map((m) => this.cell(r, m, scales.get(m)!)),
      ),
    );
    this.el.replaceChildren(
      h(
        "div",
        { class: "table-scroll" },
        h("table", { class: "data sv-table" }, h("thead", null, h("tr", null, h("th", { scope: "col" }, "run"), head)), h("tbody", null, body)),
      ),
    );
  }

  private cell(r: PlotRun, m: string, scale: Scale): HTMLElement {
    const raw = r.metrics[m];
    if (raw === undefined) return h("td", { class: "sv-cell muted" }, "—");
    const v = finite(raw);
    const bar =
      v === null
        ? null
        : (() => {
            const end = Math.max(0, Math.min(1, scale.at(v)));
            const from = Math.min(scale.zero, end);
            const width = Math.abs(end - scale.zero);
            return h("span", {
              class: "sv-bar" + (v < 0 ? " negative" : ""),
              testid: "value-bar",
              "data-value": String(v),
              style: { left: from * 100 + "%", width: Math.max(width * 100, 0.6) + "%", background: seriesColor(r.colorIndex) },
            });
          })();
    return h(
      "td",
      { class: "sv-cell", "data-metric": m },
      h("span", { class: "sv-track", "aria-hidden": "true" }, bar),
      h("span", { class: "sv-num" }, fmtNum(raw)),
    );
  }
}

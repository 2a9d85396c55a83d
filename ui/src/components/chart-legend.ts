// A chart's legend and its tooltip. The legend lists each line with its last
// value, collapsed past eight lines behind a "+N more" button; hovering an
// entry highlights its line. The tooltip lists the lines' values at the
// cursor, nearest to the cursor first.

import { h } from "../dom";
import { fmtValue } from "../format";

/** Lines shown before the legend collapses the rest. */
export const LEGEND_LIMIT = 8;
/** Rows of the tooltip; the rest are counted. */
const TIP_ROWS = 12;

export interface LegendEntry {
  key: string;
  label: string;
  /** The full description, on hover (the run's name and id, or the group's runs). */
  title: string;
  color: string;
  value: string;
}

/** A run's name, as listings give it, or its short id before it had one. */
export function runName(r: { short_id: string; name?: string | null }): string {
  return r.name || r.short_id;
}

/** A label built of parameters: `lr=0.001 bs=64` (a missing one is left out). */
export function paramLabel(params: Record<string, unknown>, keys: string[]): string {
  return keys
    .filter((k) => params[k] !== undefined)
    .map((k) => `${k}=${fmtValue(params[k])}`)
    .join(" ");
}

export class ChartLegend {
  el: HTMLElement;
  private expanded = false;
  private entries: LegendEntry[] = [];

  constructor(private onHover: (key: string | null) => void) {
    this.el = h("div", { class: "chart-legend", testid: "chart-legend" });
  }

  set(entries: LegendEntry[]): void {
    this.entries = entries;
    this.render();
  }

  private render(): void {
    const all = this.entries;
    const shown = this.expanded || all.length <= LEGEND_LIMIT + 1 ? all : all.slice(0, LEGEND_LIMIT);
    const hidden = all.length - shown.length;
    const items = shown.map((e) =>
      h(
        "li",
        {
          class: "legend-item",
          "data-key": e.key,
          title: e.title,
          // Reachable by keyboard: focusing an entry highlights its line too.
          tabIndex: 0,
          onmouseenter: () => this.onHover(e.key),
          onmouseleave: () => this.onHover(null),
          onfocus: () => this.onHover(e.key),
          onblur: () => this.onHover(null),
        },
        h("span", { class: "swatch", style: { background: e.color }, "aria-hidden": "true" }),
        h("span", { class: "legend-label" }, e.label),
        h("span", { class: "legend-value" }, e.value),
      ),
    );
    const toggle =
      all.length > LEGEND_LIMIT + 1
        ? h(
            "button",
            {
              class: "btn ghost small legend-more",
              testid: "legend-more",
              "aria-expanded": this.expanded ? "true" : "false",
              onclick: () => {
                this.expanded = !this.expanded;
                this.render();
              },
            },
            this.expanded ? "show fewer" : `+${hidden} more`,
          )
        : null;
    this.el.replaceChildren(h("ul", { class: "legend-list" }, items), toggle ?? "");
  }
}

export interface TipRow {
  key: string;
  label: string;
  color: string;
  value: string;
}

export class ChartTooltip {
  el: HTMLElement;

  constructor() {
    this.el = h("div", { class: "chart-tip", testid: "chart-tooltip", hidden: true, "aria-hidden": "true" });
  }

  /** Shows `rows` (already in order) beside the cursor at (`left`, `top`) of a plot `width` by `height`. */
  show(left: number, top: number, width: number, height: number, head: string, rows: TipRow[], notes: string[]): void {
    const more = rows.length - TIP_ROWS;
    this.el.replaceChildren(
      h("div", { class: "tip-head" }, head),
      h(
        "table",
        null,
        h(
          "tbody",
          null,
          rows.slice(0, TIP_ROWS).map((r) =>
            h(
              "tr",
              { "data-key": r.key },
              h("td", null, h("span", { class: "swatch", style: { background: r.color } })),
              h("td", { class: "tip-label" }, r.label),
              h("td", { class: "tip-value" }, r.value),
            ),
          ),
        ),
      ),
      more > 0 ? h("div", { class: "tip-more" }, `+${more} more`) : "",
      ...notes.map((n) => h("div", { class: "tip-note" }, n)),
    );
    this.el.hidden = false;
    const w = this.el.offsetWidth;
    // Right of the cursor, else left of it, else (a narrow chart) against
    // the plot's right edge, over the y axis if need be.
    const x = left + 16 + w <= width ? left + 16 : left - 16 - w >= 0 ? left - 16 - w : width - w;
    this.el.style.left = x + "px";
    // Inside the plot where it fits, so it covers the legend below less.
    this.el.style.top = Math.max(0, Math.min(top - 10, height - this.el.offsetHeight)) + "px";
  }

  hide(): void {
    this.el.hidden = true;
  }
}

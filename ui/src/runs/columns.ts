// The columns the runs table shows after its fixed run fields: the default
// ones (the project's first metrics and params), the order they are shown
// in, and the chooser that ticks them (searchable, All, None, Default).

import type { Names } from "../api";
import { h } from "../dom";
import { keyId, parseKey, type ColKey } from "../keys";
import { isSystemMetric } from "../system";

/** Metrics, and params, among the default columns. */
const DEFAULT_EACH = 6;

/** The columns to show for `chosen` (null: the defaults): once each, grouped
 *  metrics, params, then tags, each group in the project's order. */
export function resolveColumns(chosen: ColKey[] | null, n: Names): ColKey[] {
  const cols =
    chosen === null
      ? [
          // The system metrics Lab records by itself are there to pick, not shown by default.
          ...n.metrics
            .filter((name) => !isSystemMetric(name))
            .slice(0, DEFAULT_EACH)
            .map((name) => ({ kind: "metrics" as const, name })),
          ...n.params.slice(0, DEFAULT_EACH).map((name) => ({ kind: "params" as const, name })),
        ]
      : chosen.filter((c) => c.kind !== "field");
  const order = (k: ColKey) => {
    const g = k.kind === "metrics" ? 0 : k.kind === "params" ? 1 : 2;
    const list = k.kind === "params" ? n.params : k.kind === "metrics" ? n.metrics : n.tags;
    const i = list.indexOf(k.name);
    return g * 1e6 + (i < 0 ? 999999 : i);
  };
  const seen = new Set<string>();
  return cols.filter((c) => (seen.has(keyId(c)) ? false : (seen.add(keyId(c)), true))).sort((a, b) => order(a) - order(b));
}

export function sameColumns(a: ColKey[], b: ColKey[]): boolean {
  return a.map(keyId).join("\u0000") === b.map(keyId).join("\u0000");
}

export interface ChooserHooks {
  names(): Names | null;
  /** The columns shown now. */
  shown(): ColKey[];
  /** Show these columns (null: the default ones). */
  choose(cols: ColKey[] | null): void;
}

/** The "Columns" button and the box it opens. */
export class ColumnChooser {
  readonly el: HTMLElement;
  private button: HTMLButtonElement;
  private popover: HTMLElement | null = null;
  private outside = () => this.close();

  constructor(private hooks: ChooserHooks) {
    this.button = h(
      "button",
      { class: "btn", "aria-haspopup": "dialog", "aria-expanded": "false", onclick: (e: Event) => this.toggle(e) },
      "Columns ▾",
    );
    this.el = h("span", { class: "chooser-anchor" }, this.button);
  }

  close(): void {
    document.removeEventListener("click", this.outside);
    this.popover?.remove();
    this.popover = null;
    this.button.setAttribute("aria-expanded", "false");
  }

  private toggle(e: Event): void {
    e.stopPropagation();
    if (this.popover) this.close();
    else this.open();
  }

  private open(): void {
    const boxes: HTMLInputElement[] = [];
    const apply = () => this.hooks.choose(boxes.filter((b) => b.checked).map((b) => parseKey(b.value, this.hooks.names())));
    const lists = this.groups(boxes, apply);
    const search = h("input", { type: "search", placeholder: "Find a column", "aria-label": "Find a column", class: "chooser-search" });
    search.addEventListener("input", () => {
      const s = search.value.toLowerCase();
      for (const l of this.popover?.querySelectorAll<HTMLElement>(".chooser-item") ?? []) l.hidden = !!s && !(l.dataset.name ?? "").includes(s);
    });
    const setAll = (on: boolean) => {
      for (const b of boxes) if (!b.closest<HTMLElement>(".chooser-item")!.hidden) b.checked = on;
      apply();
    };
    this.popover = h(
      "div",
      { class: "popover chooser", role: "dialog", "aria-label": "Columns", onclick: (ev: Event) => ev.stopPropagation() },
      h(
        "div",
        { class: "chooser-top" },
        search,
        h("button", { class: "btn small", onclick: () => setAll(true) }, "All"),
        h("button", { class: "btn small", onclick: () => setAll(false) }, "None"),
        h("button", { class: "btn small", onclick: () => this.useDefault() }, "Default"),
      ),
      h("div", { class: "chooser-lists" }, lists),
    );
    this.popover.addEventListener("keydown", (ev: KeyboardEvent) => {
      if (ev.key === "Escape") {
        this.close();
        this.button.focus();
      }
    });
    this.button.after(this.popover);
    this.button.setAttribute("aria-expanded", "true");
    search.focus();
    setTimeout(() => document.addEventListener("click", this.outside), 0);
  }

  /** A box per metric, param and tag of the project, ticked when shown; each goes into `boxes`. */
  private groups(boxes: HTMLInputElement[], apply: () => void): HTMLElement[] {
    const n = this.hooks.names() ?? { params: [], metrics: [], tags: [] };
    const shown = new Set(this.hooks.shown().map(keyId));
    return (["metrics", "params", "tags"] as const).map((kind) => {
      const items = n[kind].map((name) => {
        const k: ColKey = { kind, name };
        const box = h("input", { type: "checkbox", value: keyId(k), checked: shown.has(keyId(k)), onchange: apply });
        boxes.push(box);
        return h("label", { class: "chooser-item", "data-name": name.toLowerCase() }, box, " ", name);
      });
      return h(
        "fieldset",
        { class: "chooser-group" },
        h("legend", null, `${kind} (${n[kind].length})`),
        items.length ? items : h("span", { class: "muted" }, "none"),
      );
    });
  }

  private useDefault(): void {
    this.close();
    this.hooks.choose(null);
  }
}

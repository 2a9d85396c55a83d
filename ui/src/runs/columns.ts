// The columns the runs table shows after its fixed run fields: the default
// ones (the metrics and params that the runs in view have), the order they
// are shown in (the address's, pinned ones first), what is remembered of them
// per experiment and their widths (localStorage), and the chooser that ticks
// them (searchable, All, None, Default).

import type { Names, RunRow } from "../api";
import { h } from "../dom";
import { keyId, parseKey, type ColKey } from "../keys";
import { isSystemMetric } from "../system";

/** Metrics, and params, among the default columns. */
const DEFAULT_EACH = 6;

/** The default columns for these rows: the metrics, then the params, that
 *  the most of them have (the project's order among equals), none that
 *  every row lacks, and no system metric (those are there to pick). */
export function defaultColumns(rows: RunRow[], n: Names): ColKey[] {
  const pick = (kind: "metrics" | "params", order: string[]): ColKey[] => {
    const count = new Map<string, number>();
    for (const r of rows) {
      const values = kind === "metrics" ? r.metrics : r.params;
      for (const [name, v] of Object.entries(values ?? {})) {
        if (v === null || v === undefined) continue;
        if (kind === "metrics" && isSystemMetric(name)) continue;
        count.set(name, (count.get(name) ?? 0) + 1);
      }
    }
    const rank = (name: string) => {
      const i = order.indexOf(name);
      return i < 0 ? order.length : i;
    };
    return [...count.keys()]
      .sort((a, b) => (count.get(b) ?? 0) - (count.get(a) ?? 0) || rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
      .slice(0, DEFAULT_EACH)
      .sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0))
      .map((name) => ({ kind, name }));
  };
  return [...pick("metrics", n.metrics), ...pick("params", n.params)];
}

/** The columns to show: `chosen` in its order (null: `defaults`), once each,
 *  with the pinned ones first (in the same order among themselves). */
export function resolveColumns(chosen: ColKey[] | null, defaults: ColKey[], pin: ColKey[]): ColKey[] {
  const seen = new Set<string>();
  const cols = (chosen ?? defaults).filter((c) => c.kind !== "field" && (seen.has(keyId(c)) ? false : (seen.add(keyId(c)), true)));
  const pinned = new Set(pin.map(keyId));
  return [...cols.filter((c) => pinned.has(keyId(c))), ...cols.filter((c) => !pinned.has(keyId(c)))];
}

export function sameColumns(a: ColKey[], b: ColKey[]): boolean {
  return a.map(keyId).join("\u0000") === b.map(keyId).join("\u0000");
}

// ---------------------------------------------------------------- what the browser remembers

const MEMORY_KEY = "lab.columns";
const WIDTHS_KEY = "lab.columnWidths";

/** The columns chosen for an experiment ("" for all of them; null: the
 *  defaults), and the pinned ones. */
export interface Remembered {
  cols: ColKey[] | null;
  pin: ColKey[];
}

function readStore<T>(key: string): Record<string, T> {
  try {
    const v: unknown = JSON.parse(localStorage.getItem(key) ?? "{}");
    return v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, T>) : {};
  } catch {
    return {};
  }
}

function writeStore(key: string, value: Record<string, unknown>): void {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    /* storage full or disabled: nothing is remembered */
  }
}

/** The columns last chosen for `experiment`, or null. */
export function remembered(experiment: string, names: Names | null): Remembered | null {
  const r = readStore<{ cols?: unknown; pin?: unknown }>(MEMORY_KEY)[experiment];
  if (!r || typeof r !== "object") return null;
  const keys = (l: unknown) => (Array.isArray(l) ? l.filter((x): x is string => typeof x === "string").map((x) => parseKey(x, names)) : []);
  const out = { cols: Array.isArray(r.cols) ? keys(r.cols) : null, pin: keys(r.pin) };
  return out.cols === null && out.pin.length === 0 ? null : out;
}

/** Remembers the columns chosen (null: the defaults) and pinned for `experiment`. */
export function remember(experiment: string, cols: ColKey[] | null, pin: ColKey[]): void {
  const all = readStore<unknown>(MEMORY_KEY);
  if (cols === null && pin.length === 0) delete all[experiment];
  else all[experiment] = { cols: cols === null ? null : cols.map(keyId), pin: pin.map(keyId) };
  writeStore(MEMORY_KEY, all);
}

/** The widths the columns were given by hand, in px, by key. */
export function savedWidths(): Map<string, number> {
  const out = new Map<string, number>();
  for (const [k, v] of Object.entries(readStore<unknown>(WIDTHS_KEY))) if (typeof v === "number" && v > 0) out.set(k, v);
  return out;
}

export function saveWidth(key: string, px: number | null): void {
  const all = readStore<unknown>(WIDTHS_KEY);
  if (px === null) delete all[key];
  else all[key] = Math.round(px);
  writeStore(WIDTHS_KEY, all);
}

/** Moves a popover opened under a button right when its left edge would be
 *  off a narrow screen (it hangs left from the button's right edge). */
export function keepInView(pop: HTMLElement): void {
  const left = pop.getBoundingClientRect().left;
  if (left < 8) pop.style.right = `${left - 8}px`;
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
    keepInView(this.popover);
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

// The runs table as drawn: a grid of fixed-height rows in which only the rows
// in view (and a few more) are in the DOM, each at its place over a spacer of
// the full height; the header with its sort buttons and the box that ticks
// the runs in view; the column widths; the active row, the mouse and the
// keyboard; ticks into the selection. The rows come from a RowSource (the pager).

import type { Names, RunRow } from "../api";
import { h } from "../dom";
import { fmtDuration, fmtNum, fmtTime, fmtValue, elapsed } from "../format";
import { FIELDS, cellValue, keyId, parseKey, sameKey, type ColKey, type SortKey } from "../keys";
import { navigate } from "../route";
import * as selection from "../selection";
import { statusBadge } from "../components/badge";
import { buildGroupRow, groupTicked, type GroupRow } from "./groups";

const RH = 30; // row height, px
const OVERSCAN = 8;
const SELECT_W = 34;
const COL_W = 108;

/** The rows to draw. */
export interface RowSource {
  /** Rows in all; -1 while not known. */
  readonly total: number;
  row(i: number): RunRow | null;
  /** Fetches the rows `first` to `last` that are not held. */
  want(first: number, last: number): void;
  /** The group row at `i`, when rows are grouped (groups.ts). */
  group?(i: number): GroupRow | null;
}

export interface TableHooks {
  names(): Names | null;
  /** A header was clicked: sort by these keys. */
  sort(keys: SortKey[]): void;
  /** A group row was clicked: fold or unfold its runs. */
  fold?(key: string): void;
}

/** Where the table was scrolled to and which row was active. */
export interface TablePlace {
  scrollTop: number;
  scrollLeft: number;
  active: number;
}

interface Drawn {
  el: HTMLElement;
  row: RunRow | null;
  sel: boolean;
  group: GroupRow | null;
}

export class RunsTable {
  readonly el: HTMLElement;
  private cols: ColKey[] = [];
  private sortKeys: SortKey[] = [];
  private active = 0;
  private drawn = new Map<number, Drawn>();
  private raf = 0;
  private restoreScroll: { top: number; left: number } | null = null;
  private scroller: HTMLElement;
  private inner: HTMLElement;
  private head: HTMLElement;
  private body: HTMLElement;
  private empty: HTMLElement;
  private ro: ResizeObserver;
  private ticker: number;
  private unsubSelection: () => void;

  constructor(
    private rows: RowSource,
    private hooks: TableHooks,
  ) {
    this.head = h("div", { class: "vt-head", role: "row" });
    this.body = h("div", { class: "vt-body", role: "rowgroup" });
    this.empty = h("div", { class: "vt-empty", hidden: true });
    this.inner = h("div", { class: "vt-inner" }, this.head, this.body);
    this.scroller = h("div", { class: "vt-scroll" }, this.inner, this.empty);
    this.el = h("div", { class: "vt", role: "grid", testid: "runs-table", "aria-label": "Runs" }, this.scroller);

    this.scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
    this.scroller.addEventListener("keydown", (e) => this.onKey(e));
    this.body.addEventListener("click", (e) => this.onClick(e));
    this.body.addEventListener("focusin", (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>(".vt-row");
      if (row?.dataset.index) this.setActive(Number(row.dataset.index), false);
    });
    this.ro = new ResizeObserver(() => this.schedule());
    this.ro.observe(this.scroller);
    // Durations of running runs tick.
    this.ticker = window.setInterval(() => {
      for (const [, x] of this.drawn) {
        if (x.row?.status === "running") {
          const cell = x.el.querySelector<HTMLElement>(".c-duration");
          if (cell) cell.textContent = durationText(x.row);
        }
      }
    }, 1000);
    this.unsubSelection = selection.subscribe(() => this.render());
  }

  /** Whether the header was built. */
  get hasHead(): boolean {
    return this.head.childElementCount > 0;
  }

  /** Shows these columns after the run fields, with the sort keys marked. */
  setColumns(cols: ColKey[], sort: SortKey[]): void {
    this.cols = cols;
    this.sortKeys = sort;
    this.buildHead();
  }

  /** Marks the sort keys in the header. */
  setSort(sort: SortKey[]): void {
    this.sortKeys = sort;
    this.updateHeadSort();
  }

  /** Back to the top with the first row active and nothing drawn: a new query. */
  reset(): void {
    this.scroller.scrollTop = 0;
    this.active = 0;
    this.clearRows();
  }

  place(): TablePlace {
    return { scrollTop: this.scroller.scrollTop, scrollLeft: this.scroller.scrollLeft, active: this.active };
  }

  /** Goes back to `p` once there are rows (see placeScroll()). */
  restore(p: TablePlace): void {
    this.active = p.active;
    this.restoreScroll = { top: p.scrollTop, left: p.scrollLeft };
    this.clearRows();
  }

  /** Scrolls to the place restore() was given, once rows are in; false while the table is not in the page yet. */
  placeScroll(): boolean {
    if (!this.restoreScroll || this.rows.total <= 0) return true;
    if (this.scroller.clientHeight <= 0) return false;
    this.scroller.scrollTop = this.restoreScroll.top;
    this.scroller.scrollLeft = this.restoreScroll.left;
    this.restoreScroll = null;
    return true;
  }

  /** Sizes the spacer for every row. */
  size(): void {
    const total = Math.max(0, this.rows.total);
    this.body.style.height = total * RH + "px";
    this.el.setAttribute("aria-rowcount", String(total + 1));
  }

  /** Shows `message` over the rows (null: none). */
  showEmpty(message: HTMLElement | null): void {
    this.empty.hidden = !message;
    if (message) this.empty.replaceChildren(message);
  }

  /** The rows to have in the DOM: those in view and a few more either side. */
  visibleRange(): [number, number] {
    const top = this.scroller.scrollTop;
    const hgt = Math.max(RH, this.scroller.clientHeight - this.head.offsetHeight);
    const first = Math.max(0, Math.floor(top / RH) - OVERSCAN);
    const last = Math.min(Math.max(0, this.rows.total) - 1, Math.ceil((top + hgt) / RH) + OVERSCAN);
    return [first, last];
  }

  /** Whether the run `id` is drawn. */
  shows(id: string): boolean {
    return [...this.drawn.values()].some((x) => x.row?.id === id);
  }

  /** Unticks the header's box (every run was unticked). */
  uncheckAll(): void {
    const all = this.head.querySelector<HTMLInputElement>(".select-page");
    if (all) all.checked = false;
  }

  /** Draws the rows in a frame from now (once, however often it is asked). */
  schedule(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.render();
    });
  }

  /** Draws the rows in view: new ones built, changed ones rebuilt, the others moved or kept. */
  render(): void {
    if (this.rows.total <= 0) {
      this.clearRows();
      return;
    }
    const [first, last] = this.visibleRange();
    this.rows.want(first, last);
    const focusedIndex = this.body.contains(document.activeElement) ? this.active : -1;
    for (const [i, x] of this.drawn) {
      if (i < first || i > last) {
        x.el.remove();
        this.drawn.delete(i);
      }
    }
    const activeShown = this.active >= first && this.active <= last;
    let prev: HTMLElement | null = null;
    for (let i = first; i <= last; i++) {
      const x = this.drawRow(i);
      const tabbable = activeShown ? i === this.active : i === first;
      x.el.tabIndex = tabbable ? 0 : -1;
      x.el.classList.toggle("active", i === this.active);
      const expected: ChildNode | null = prev ? prev.nextSibling : this.body.firstChild;
      if (expected !== x.el) this.body.insertBefore(x.el, expected);
      prev = x.el;
    }
    if (focusedIndex >= 0 && document.activeElement !== this.drawn.get(focusedIndex)?.el) {
      this.drawn.get(focusedIndex)?.el.focus({ preventScroll: true });
    }
  }

  destroy(): void {
    this.unsubSelection();
    this.ro.disconnect();
    clearInterval(this.ticker);
    if (this.raf) cancelAnimationFrame(this.raf);
  }

  // ---------------------------------------------------------------- header

  private gridTemplate(): string {
    return [SELECT_W + "px", ...FIELDS.map((f) => f.width + "px"), ...this.cols.map(() => COL_W + "px")].join(" ");
  }

  private buildHead(): void {
    const width = SELECT_W + FIELDS.reduce((a, f) => a + f.width, 0) + this.cols.length * COL_W;
    this.inner.style.setProperty("--grid", this.gridTemplate());
    this.inner.style.minWidth = width + "px";
    const cells: HTMLElement[] = [
      h(
        "div",
        { class: "vt-cell vt-hcell c-select", role: "columnheader" },
        h("input", {
          type: "checkbox",
          class: "select-page",
          "aria-label": "Select the runs in view",
          title: "Select the runs in view",
          onchange: (e: Event) => this.selectVisible((e.target as HTMLInputElement).checked),
        }),
      ),
    ];
    for (const f of FIELDS) cells.push(this.headCell({ kind: "field", name: f.name }, f.label, null));
    for (const c of this.cols) cells.push(this.headCell(c, c.name, c.kind === "params" ? "param" : c.kind === "metrics" ? "metric" : "tag"));
    this.head.replaceChildren(...cells);
    this.updateHeadSort();
    this.clearRows();
    this.schedule();
  }

  private headCell(k: ColKey, label: string, group: string | null): HTMLElement {
    const id = keyId(k);
    const btn = h(
      "button",
      {
        class: "sort-btn",
        testid: `sort-header-${id}`,
        "data-key": id,
        title: `${group ? group + " " : ""}${label}: click to sort, shift-click to add a secondary sort key`,
        onclick: (e: MouseEvent) => this.hooks.sort(nextSort(this.sortKeys, k, e.shiftKey)),
      },
      group ? h("span", { class: `h-group g-${k.kind}` }, group) : null,
      h("span", { class: "h-label" }, label),
      h("span", { class: "sort-ind", "aria-hidden": "true" }),
    );
    return h("div", { class: `vt-cell vt-hcell ${k.kind === "metrics" ? "num" : ""} k-${k.kind}`, role: "columnheader", "aria-sort": "none" }, btn);
  }

  private updateHeadSort(): void {
    const sort = this.sortKeys;
    for (const btn of this.head.querySelectorAll<HTMLButtonElement>(".sort-btn")) {
      const k = parseKey(btn.dataset.key ?? "", this.hooks.names());
      const i = sort.findIndex((s) => sameKey(s.key, k));
      const ind = btn.querySelector(".sort-ind")!;
      const cell = btn.parentElement!;
      if (i < 0) {
        ind.textContent = "";
        cell.setAttribute("aria-sort", "none");
        btn.classList.remove("sorted");
      } else {
        const s = sort[i];
        ind.textContent = (s.desc ? "▼" : "▲") + (sort.length > 1 ? String(i + 1) : "");
        cell.setAttribute("aria-sort", i === 0 ? (s.desc ? "descending" : "ascending") : "other");
        btn.classList.add("sorted");
      }
    }
  }

  // ---------------------------------------------------------------- rows

  private clearRows(): void {
    for (const [, x] of this.drawn) x.el.remove();
    this.drawn.clear();
  }

  /** Row `i` as drawn, built again when its run or its tick changed. */
  private drawRow(i: number): Drawn {
    const row = this.rows.row(i);
    const group = this.rows.group?.(i) ?? null;
    const sel = row ? selection.has(row.id) : !!group && groupTicked(group);
    let x = this.drawn.get(i);
    if (!x || x.row !== row || x.sel !== sel || x.group !== group) {
      const el = group
        ? buildGroupRow(i, group, this.cols, FIELDS.length, { top: i * RH + "px" }, () => this.hooks.fold?.(group.key))
        : this.buildRow(i, row, sel);
      if (x) x.el.replaceWith(el);
      x = { el, row, sel, group };
      this.drawn.set(i, x);
    }
    return x;
  }

  private buildRow(i: number, r: RunRow | null, sel: boolean): HTMLElement {
    const style = { top: i * RH + "px" };
    if (!r) {
      return h("div", { class: "vt-row placeholder", role: "row", "data-index": i, style }, h("div", { class: "vt-cell" }), h("div", { class: "vt-cell muted" }, "…"));
    }
    const cells: HTMLElement[] = [
      h(
        "div",
        { class: "vt-cell c-select", role: "gridcell" },
        h("input", { type: "checkbox", testid: "row-select", tabIndex: -1, checked: sel, "aria-label": `Select run ${r.short_id}` }),
      ),
      h("div", { class: "vt-cell mono", role: "gridcell" }, h("a", { href: `#/run/${encodeURIComponent(r.id)}`, tabIndex: -1, title: r.id }, r.short_id)),
      h("div", { class: "vt-cell", role: "gridcell", title: r.experiment }, r.experiment),
      h("div", { class: "vt-cell", role: "gridcell" }, statusBadge(String(r.status))),
      h("div", { class: "vt-cell num", role: "gridcell", title: r.start_time ?? "" }, fmtTime(r.start_time)),
      h("div", { class: "vt-cell num c-duration", role: "gridcell" }, durationText(r)),
    ];
    for (const c of this.cols) {
      const v = cellValue(r, c);
      const s = c.kind === "metrics" ? fmtNum(v) : fmtValue(v);
      const cls = c.kind === "metrics" ? "vt-cell num" : "vt-cell";
      cells.push(h("div", { class: cls + (v === undefined || v === null ? " missing" : ""), role: "gridcell", title: c.kind === "metrics" ? fmtValue(v) : s }, s));
    }
    return h(
      "div",
      {
        class: "vt-row" + (sel ? " selected" : "") + ` st-${r.status}`,
        role: "row",
        testid: "run-row",
        "data-run-id": r.id,
        "data-index": i,
        "aria-rowindex": i + 2,
        "aria-selected": sel ? "true" : "false",
        style,
      },
      cells,
    );
  }

  // ---------------------------------------------------------------- mouse and keyboard

  private onClick(e: MouseEvent): void {
    const t = e.target as HTMLElement;
    const rowEl = t.closest<HTMLElement>(".vt-row");
    if (rowEl?.dataset.group !== undefined && !t.closest("button")) {
      this.setActive(Number(rowEl.dataset.index), false);
      this.hooks.fold?.(rowEl.dataset.group);
      return;
    }
    if (!rowEl || !rowEl.dataset.runId) return;
    const i = Number(rowEl.dataset.index);
    const row = this.rows.row(i);
    if (!row) return;
    if (t instanceof HTMLInputElement && t.type === "checkbox") {
      selection.tick([row], t.checked);
      this.setActive(i, false);
      return;
    }
    if (t.closest("a")) return; // the link navigates by itself
    if (e.ctrlKey || e.metaKey) {
      selection.toggle(row);
      return;
    }
    this.setActive(i, false);
    open(row);
  }

  private setActive(i: number, focus: boolean): void {
    const n = Math.max(0, this.rows.total);
    if (n === 0) return;
    this.active = Math.min(n - 1, Math.max(0, i));
    if (focus) {
      const top = this.active * RH;
      const bodyH = this.scroller.clientHeight - this.head.offsetHeight;
      if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
      else if (top + RH > this.scroller.scrollTop + bodyH) this.scroller.scrollTop = top + RH - bodyH;
    }
    this.render();
    if (focus) this.drawn.get(this.active)?.el.focus({ preventScroll: true });
  }

  private onKey(e: KeyboardEvent): void {
    const t = e.target as HTMLElement;
    if (e.key === "ArrowDown" && this.head.contains(t)) {
      // From a column header straight into the rows.
      e.preventDefault();
      this.setActive(this.active, true);
      return;
    }
    if (!t.classList.contains("vt-row")) return;
    const page = Math.max(1, Math.floor((this.scroller.clientHeight - this.head.offsetHeight) / RH) - 1);
    const moves: Record<string, number> = { ArrowDown: 1, ArrowUp: -1, PageDown: page, PageUp: -page };
    if (e.key in moves) {
      e.preventDefault();
      this.setActive(this.active + moves[e.key], true);
    } else if (e.key === "Home" || e.key === "End") {
      e.preventDefault();
      this.setActive(e.key === "Home" ? 0 : this.rows.total - 1, true);
    } else if ((e.key === "Enter" || e.key === " ") && this.rows.group?.(this.active)) {
      e.preventDefault();
      this.hooks.fold?.(this.rows.group(this.active)!.key);
    } else if (e.key === "Enter") {
      const row = this.rows.row(this.active);
      if (row) {
        e.preventDefault();
        open(row);
      }
    } else if (e.key === " ") {
      const row = this.rows.row(this.active);
      if (row) {
        e.preventDefault();
        selection.toggle(row);
      }
    }
  }

  /** The header's box: ticks (or unticks) the runs in view. */
  private selectVisible(on: boolean): void {
    const [first, last] = this.visibleRange();
    const top = Math.floor(this.scroller.scrollTop / RH);
    const bottom = Math.floor((this.scroller.scrollTop + this.scroller.clientHeight - this.head.offsetHeight) / RH);
    const rows: RunRow[] = [];
    for (let i = Math.max(first, top); i <= Math.min(last, bottom); i++) {
      const r = this.rows.row(i);
      if (r) rows.push(r);
    }
    selection.tick(rows, on);
  }
}

/** Click: sort by this key (again: flip; a third time: back to the default).
 *  Shift-click: add it as the next key (or flip it, or drop it). */
function nextSort(cur: SortKey[], k: ColKey, add: boolean): SortKey[] {
  const i = cur.findIndex((s) => sameKey(s.key, k));
  if (add) {
    if (i < 0) return [...cur, { key: k, desc: false }];
    if (!cur[i].desc) return cur.map((s, j) => (j === i ? { key: s.key, desc: true } : s));
    return cur.filter((_, j) => j !== i);
  }
  if (i === 0 && cur.length === 1) return cur[0].desc ? [] : [{ key: k, desc: true }];
  return [{ key: k, desc: false }];
}

function open(row: RunRow): void {
  navigate(`#/run/${encodeURIComponent(row.id)}`);
}

function durationText(r: RunRow): string {
  if (r.status === "running") {
    const s = elapsed(r.start_time);
    return s === null ? "" : fmtDuration(s) + " …";
  }
  return fmtDuration(r.duration_s);
}

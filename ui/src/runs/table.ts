// The runs table as drawn: a grid of fixed-height rows in which only the rows
// in view (and a few more) are in the DOM, each at its place over a spacer of
// the full height (or, past what a browser lets an element be, of MAX_PX,
// each scroll position standing for a place in the full height: see
// `virtual`); the header with its sort buttons and the box that ticks
// the runs in view; the column widths (fitted to the names, or dragged), the
// columns dragged (or moved with Alt+arrows) into another order and the pinned
// ones that stay in view; the active row, the mouse and the keyboard; ticks
// into the selection. The rows come from a RowSource (the pager).

import { READ_ONLY, type Names, type RunDetail, type RunRow } from "../api";
import { h } from "../dom";
import { fmtDuration, fmtNum, fmtTime, fmtValue, elapsed } from "../format";
import { FIELDS, cellValue, keyId, parseKey, sameKey, type ColKey, type SortKey } from "../keys";
import { navigate } from "../route";
import * as selection from "../selection";
import { statusBadge } from "../components/badge";
import { saveWidth, savedWidths } from "./columns";
import { buildGroupRow, groupTicked, type GroupRow } from "./groups";
import { rename } from "./rename";

const RH = 30; // row height, px
const OVERSCAN = 8;
/**
 * The tallest the rows' spacer is made, px: browsers cap an element's height
 * (Chromium at about 16.7 million px, Firefox about 17.9 million), so past
 * MAX_PX rows (333,333 rows) the scroll bar's whole length stands for all the
 * rows. The page's address may lower it for tests: `?max_table_px=30000`
 * before the `#`.
 */
const MAX_PX = maxTablePx();
const SELECT_W = 34;
/** The narrowest and widest a column is made to fit its name, and may be dragged to. */
const MIN_W = 56;
const FIT_MAX_W = 280;
const MAX_W = 900;
/** Room in a header besides the name: padding, the sort mark, the pin button. */
const HEAD_EXTRA = 40;

/** The rows to draw. */
export interface RowSource {
  /** Rows in all; -1 while not known. */
  readonly total: number;
  row(i: number): RunRow | null;
  /** Rows `first` to `last` are in view: fetches those not held (and may drop those far away). */
  want(first: number, last: number): void;
  /** How many pages of rows are held (shown as the table's `data-held`). */
  readonly held?: number;
  /** The group row at `i`, when rows are grouped (groups.ts). */
  group?(i: number): GroupRow | null;
}

export interface TableHooks {
  names(): Names | null;
  /** A header was clicked: sort by these keys. */
  sort(keys: SortKey[]): void;
  /** The columns were put in this order. */
  reorder(cols: ColKey[]): void;
  /** A column was pinned (`on`) or unpinned. */
  pin(k: ColKey, on: boolean): void;
  /** A group row was clicked: fold or unfold its runs. */
  fold?(key: string): void;
  /** A run was renamed in the table: its new state, as the server answered. */
  renamed(run: RunDetail): void;
}

/** Where the table was scrolled to and which row was active. */
export interface TablePlace {
  /** The top of the view in the full height of the rows, px. */
  top: number;
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
  private pinned = new Set<string>();
  /** Widths given by hand, by key. */
  private widths = savedWidths();
  /** Widths that fit each name, by key. */
  private fitted = new Map<string, number>();
  private sortKeys: SortKey[] = [];
  private active = 0;
  private drawn = new Map<number, Drawn>();
  /** The run whose name is being edited: its row is not drawn again meanwhile. */
  private editing: string | null = null;
  private raf = 0;
  /** The top of the view in px of the full height (rows × RH). The same as
   *  the scroll position while the spacer is not capped; past MAX_PX, a
   *  scroll to elsewhere (the scroll bar dragged) puts it at the same share
   *  of the full height, and the wheel, the keys and the active row move it
   *  by their own px (row by row) and the scroll position with it. */
  private virtual = 0;
  /** The scroll position when last seen (a scroll event or a scroll of ours). */
  private lastTop = 0;
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

    this.scroller.addEventListener(
      "scroll",
      () => {
        this.follow();
        this.schedule();
      },
      { passive: true },
    );
    this.scroller.addEventListener("wheel", (e) => this.onWheel(e), { passive: false });
    this.scroller.addEventListener("keydown", (e) => this.onKey(e));
    this.body.addEventListener("click", (e) => this.onClick(e));
    this.body.addEventListener("dblclick", (e) => {
      const t = e.target as HTMLElement;
      const rowEl = t.closest<HTMLElement>(".vt-row");
      const row = rowEl?.dataset.index ? this.rows.row(Number(rowEl.dataset.index)) : null;
      if (rowEl && row && t.closest(".run-name")) this.startRename(rowEl, row);
    });
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

  /** Shows these columns after the run fields, with the sort keys marked
   *  and the `pinned` ones kept in view. */
  setColumns(cols: ColKey[], sort: SortKey[], pinned: ColKey[] = []): void {
    this.cols = cols;
    this.pinned = new Set(pinned.map(keyId));
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
    this.virtual = 0;
    this.lastTop = 0;
    this.active = 0;
    this.clearRows();
  }

  place(): TablePlace {
    return { top: this.virtual, scrollLeft: this.scroller.scrollLeft, active: this.active };
  }

  /** Goes back to `p` once there are rows (see placeScroll()). */
  restore(p: TablePlace): void {
    this.active = p.active;
    this.restoreScroll = { top: p.top, left: p.scrollLeft };
    this.clearRows();
  }

  /** Scrolls to the place restore() was given, once rows are in; false while the table is not in the page yet. */
  placeScroll(): boolean {
    if (!this.restoreScroll || this.rows.total <= 0) return true;
    if (this.scroller.clientHeight <= 0) return false;
    this.scroller.scrollLeft = this.restoreScroll.left;
    this.scrollTo(this.restoreScroll.top);
    this.restoreScroll = null;
    return true;
  }

  /** Sizes the spacer for every row. */
  size(): void {
    const total = Math.max(0, this.rows.total);
    // A scroll not seen yet (its event comes in the next frame) first.
    this.follow();
    this.el.setAttribute("aria-rowcount", String(total + 1));
    const height = this.bodyHeight() + "px";
    if (this.body.style.height === height) return;
    this.body.style.height = height;
    // The same rows stay in view when the scale changes.
    if (this.scaled()) this.scrollTo(this.virtual);
    else this.follow();
  }

  /** Shows `message` over the rows (null: none). */
  showEmpty(message: HTMLElement | null): void {
    this.empty.hidden = !message;
    if (message) this.empty.replaceChildren(message);
  }

  /** The rows to have in the DOM: those in view and a few more either side. */
  visibleRange(): [number, number] {
    const top = this.virtual;
    const hgt = this.viewHeight();
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
    this.follow();
    const [first, last] = this.visibleRange();
    this.rows.want(first, last);
    if (this.rows.held !== undefined) this.el.dataset.held = String(this.rows.held);
    // Where row 0 would be in the spacer: rows are placed so that the view's
    // top (this.virtual in the full height) is at the scroll position.
    const shift = this.virtual - this.lastTop;
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
      const top = i * RH - shift + "px";
      if (x.el.style.top !== top) x.el.style.top = top;
      const tabbable = activeShown ? i === this.active : i === first;
      x.el.tabIndex = tabbable ? 0 : -1;
      x.el.classList.toggle("active", i === this.active);
      const expected: ChildNode | null = prev ? prev.nextSibling : this.body.firstChild;
      if (expected !== x.el) this.body.insertBefore(x.el, expected);
      prev = x.el;
    }
    // The focus stays with the active row (drawn again), or in it (the rename box).
    if (focusedIndex >= 0 && !this.drawn.get(focusedIndex)?.el.contains(document.activeElement)) {
      this.drawn.get(focusedIndex)?.el.focus({ preventScroll: true });
    }
  }

  // ---------------------------------------------------------------- scrolling

  /** The rows' full height, px. */
  private fullHeight(): number {
    return Math.max(0, this.rows.total) * RH;
  }

  /** The spacer's height: the full height, or MAX_PX past it. */
  private bodyHeight(): number {
    return Math.min(this.fullHeight(), MAX_PX);
  }

  /** Whether the spacer is shorter than the rows (scroll positions are scaled). */
  private scaled(): boolean {
    return this.fullHeight() > MAX_PX;
  }

  /** The height of the rows' view, px. */
  private viewHeight(): number {
    return Math.max(RH, this.scroller.clientHeight - this.head.offsetHeight);
  }

  /** The largest scroll position, and the largest top of the view in the full height. */
  private ends(): [number, number] {
    const view = this.viewHeight();
    return [Math.max(0, this.bodyHeight() - view), Math.max(0, this.fullHeight() - view)];
  }

  /** Takes a scroll position that is not ours (the scroll bar dragged, a
   *  touch): the view's top at the same share of the full height, the last
   *  row at the end. Unscaled, the two are the same. */
  private follow(): void {
    const top = this.scroller.scrollTop;
    if (!this.scaled()) {
      this.virtual = top;
      this.lastTop = top;
      return;
    }
    if (top === this.lastTop) return;
    this.lastTop = top;
    const [maxTop, maxVirtual] = this.ends();
    this.virtual = top >= maxTop - 0.5 ? maxVirtual : maxTop > 0 ? (top / maxTop) * maxVirtual : 0;
  }

  /** Puts the view's top at `v` px of the full height, and the scroll position with it. */
  private scrollTo(v: number): void {
    const [maxTop, maxVirtual] = this.ends();
    this.virtual = Math.max(0, Math.min(maxVirtual, v));
    if (!this.scaled()) {
      this.scroller.scrollTop = this.virtual;
      this.follow();
    } else {
      this.scroller.scrollTop = maxVirtual > 0 ? (this.virtual / maxVirtual) * maxTop : 0;
      this.lastTop = this.scroller.scrollTop;
    }
    this.schedule();
  }

  /** Scaled, the wheel moves the rows by its own px (as it does unscaled),
   *  not by the scaled scroll position's. */
  private onWheel(e: WheelEvent): void {
    if (!this.scaled() || e.ctrlKey || e.shiftKey || e.deltaY === 0) return;
    e.preventDefault();
    const unit = e.deltaMode === WheelEvent.DOM_DELTA_LINE ? RH : e.deltaMode === WheelEvent.DOM_DELTA_PAGE ? this.viewHeight() : 1;
    if (e.deltaX) this.scroller.scrollLeft += e.deltaX * unit;
    this.scrollTo(this.virtual + e.deltaY * unit);
  }

  destroy(): void {
    this.unsubSelection();
    this.ro.disconnect();
    clearInterval(this.ticker);
    if (this.raf) cancelAnimationFrame(this.raf);
  }

  // ---------------------------------------------------------------- header

  /** The width of column `id` (`label` is its name): given by hand, or fitted to the name. */
  private width(id: string, label: string, base: number): number {
    const given = this.widths.get(id);
    if (given) return given;
    let w = this.fitted.get(id);
    if (w === undefined) {
      w = Math.max(base, Math.min(FIT_MAX_W, Math.ceil(textWidth(label)) + HEAD_EXTRA));
      this.fitted.set(id, w);
    }
    return w;
  }

  /** Every column's key, label and width, in order: the run fields, then the chosen ones. */
  private layoutCols(): { id: string; label: string; w: number; k: ColKey }[] {
    return [
      ...FIELDS.map((f) => ({ id: f.name, label: f.label, w: this.widths.get(f.name) ?? f.width, k: { kind: "field" as const, name: f.name } })),
      ...this.cols.map((c) => ({ id: keyId(c), label: c.name, w: this.width(keyId(c), c.name, 96), k: c })),
    ];
  }

  /** Sets the grid's columns, the full width and where each sticky column stays. */
  private applyWidths(): void {
    const cols = this.layoutCols();
    this.inner.style.setProperty("--grid", [SELECT_W + "px", ...cols.map((c) => c.w + "px")].join(" "));
    this.inner.style.minWidth = SELECT_W + cols.reduce((a, c) => a + c.w, 0) + "px";
    // The first field (the run) stays in view beside the ticks; pinned
    // columns stay in view after it, each where the ones before it end.
    let left = SELECT_W;
    this.inner.style.setProperty("--stick-0", left + "px");
    left += cols[0].w;
    let n = 0;
    for (const c of cols.slice(FIELDS.length)) {
      if (!this.pinned.has(c.id)) continue;
      this.inner.style.setProperty(`--stick-${++n}`, left + "px");
      left += c.w;
    }
  }

  /** The CSS class and style that keep cell `j` (0: the first field) in view, if it is kept. */
  private stickAt(j: number): { cls: string; style: Partial<CSSStyleDeclaration> } | null {
    if (j === 0) return { cls: " sticky", style: { left: "var(--stick-0)" } };
    if (j < FIELDS.length) return null;
    const id = keyId(this.cols[j - FIELDS.length]);
    if (!this.pinned.has(id)) return null;
    let n = 0;
    for (const c of this.cols.slice(0, j - FIELDS.length + 1)) if (this.pinned.has(keyId(c))) n++;
    return { cls: " sticky pinned", style: { left: `var(--stick-${n})` } };
  }

  private buildHead(): void {
    this.applyWidths();
    const cells: HTMLElement[] = [
      h(
        "div",
        { class: "vt-cell vt-hcell c-select sticky", role: "columnheader", style: { left: "0px" } },
        h("input", {
          type: "checkbox",
          class: "select-page",
          "aria-label": "Select the runs in view",
          title: "Select the runs in view",
          onchange: (e: Event) => this.selectVisible((e.target as HTMLInputElement).checked),
        }),
      ),
    ];
    FIELDS.forEach((f, j) => cells.push(this.headCell({ kind: "field", name: f.name }, f.label, null, j)));
    this.cols.forEach((c, i) =>
      cells.push(this.headCell(c, c.name, c.kind === "params" ? "param" : c.kind === "metrics" ? "metric" : "tag", FIELDS.length + i)),
    );
    this.head.replaceChildren(...cells);
    if (this.refocus) {
      this.head.querySelector<HTMLElement>(`.sort-btn[data-key="${CSS.escape(this.refocus)}"]`)?.focus();
      this.refocus = null;
    }
    this.updateHeadSort();
    this.clearRows();
    this.schedule();
  }

  private headCell(k: ColKey, label: string, group: string | null, j: number): HTMLElement {
    const id = keyId(k);
    const movable = k.kind !== "field";
    const btn = h(
      "button",
      {
        class: "sort-btn",
        testid: `sort-header-${id}`,
        "data-key": id,
        title: `${group ? group + " " : ""}${label}\nclick to sort, shift-click to add a secondary sort key${movable ? "; drag (or Alt+←/→) to move" : ""}`,
        onclick: (e: MouseEvent) => this.hooks.sort(nextSort(this.sortKeys, k, e.shiftKey)),
        onkeydown: (e: KeyboardEvent) => {
          if (movable && e.altKey && (e.key === "ArrowLeft" || e.key === "ArrowRight")) {
            e.preventDefault();
            this.move(k, e.key === "ArrowLeft" ? -1 : 1);
          }
        },
      },
      group ? h("span", { class: `h-group g-${k.kind}` }, group) : null,
      h("span", { class: "h-label" }, label),
      h("span", { class: "sort-ind", "aria-hidden": "true" }),
    );
    const pinned = this.pinned.has(id);
    const pin = movable
      ? h(
          "button",
          {
            class: "pin-btn" + (pinned ? " on" : ""),
            testid: `pin-${id}`,
            "aria-pressed": pinned ? "true" : "false",
            "aria-label": `Pin ${label}`,
            title: pinned ? `Unpin ${label}` : `Pin ${label}: keep it in view when the table scrolls sideways`,
            onclick: () => this.hooks.pin(k, !pinned),
          },
          pinIcon(),
        )
      : null;
    const grip = h("span", {
      class: "col-resize",
      role: "separator",
      tabIndex: 0,
      testid: `resize-${id}`,
      "aria-orientation": "vertical",
      // The splitter pattern: its name says what it sets, its value whose and how wide.
      "aria-label": "Column width",
      "aria-valuemin": MIN_W,
      "aria-valuemax": MAX_W,
      title: "Drag to resize (double-click: fit the name; ←/→ with the focus here)",
    });
    this.resizable(grip, id, label);
    const stick = this.stickAt(j);
    const cell = h(
      "div",
      {
        class: `vt-cell vt-hcell ${k.kind === "metrics" ? "num" : ""} k-${k.kind}${stick?.cls ?? ""}`,
        role: "columnheader",
        "aria-sort": "none",
        "data-key": id,
        style: stick?.style,
      },
      btn,
      pin,
      grip,
    );
    if (movable) this.draggable(cell, btn, k);
    return cell;
  }

  /** Dragging the grip (or its arrow keys) sets the column's width; a double-click fits it to the name. */
  private resizable(grip: HTMLElement, id: string, label: string): void {
    const current = () => this.layoutCols().find((c) => c.id === id)?.w ?? 96;
    const say = () => {
      const w = current();
      grip.setAttribute("aria-valuenow", String(w));
      grip.setAttribute("aria-valuetext", `${label}: ${w} px`);
    };
    const set = (w: number, save: boolean) => {
      this.widths.set(id, Math.max(MIN_W, Math.min(MAX_W, Math.round(w))));
      this.applyWidths();
      say();
      if (save) saveWidth(id, this.widths.get(id) ?? null);
    };
    say();
    grip.addEventListener("pointerdown", (e: PointerEvent) => {
      e.preventDefault();
      e.stopPropagation();
      const x0 = e.clientX;
      const w0 = current();
      grip.setPointerCapture(e.pointerId);
      grip.classList.add("dragging");
      const moveTo = (ev: PointerEvent) => set(w0 + ev.clientX - x0, false);
      const done = (ev: PointerEvent) => {
        set(w0 + ev.clientX - x0, true);
        grip.classList.remove("dragging");
        grip.removeEventListener("pointermove", moveTo);
        grip.removeEventListener("pointerup", done);
        grip.removeEventListener("pointercancel", done);
      };
      grip.addEventListener("pointermove", moveTo);
      grip.addEventListener("pointerup", done);
      grip.addEventListener("pointercancel", done);
    });
    grip.addEventListener("dblclick", (e) => {
      e.stopPropagation();
      this.widths.delete(id);
      this.fitted.delete(id);
      saveWidth(id, null);
      this.applyWidths();
      say();
    });
    grip.addEventListener("keydown", (e: KeyboardEvent) => {
      if (e.key === "ArrowLeft" || e.key === "ArrowRight") {
        e.preventDefault();
        set(current() + (e.key === "ArrowLeft" ? -16 : 16), true);
      }
    });
    grip.addEventListener("click", (e) => e.stopPropagation());
  }

  /** A header dragged onto another puts its column before or after that one. */
  private draggable(cell: HTMLElement, btn: HTMLElement, k: ColKey): void {
    btn.draggable = true;
    btn.addEventListener("dragstart", (e: DragEvent) => {
      e.dataTransfer?.setData("application/x-lab-column", keyId(k));
      e.dataTransfer?.setData("text/plain", k.name);
      if (e.dataTransfer) e.dataTransfer.effectAllowed = "move";
      cell.classList.add("drag-source");
    });
    btn.addEventListener("dragend", () => cell.classList.remove("drag-source"));
    const side = (e: DragEvent) => {
      const r = cell.getBoundingClientRect();
      return e.clientX < r.left + r.width / 2 ? "before" : "after";
    };
    cell.addEventListener("dragover", (e: DragEvent) => {
      if (!e.dataTransfer?.types.includes("application/x-lab-column")) return;
      e.preventDefault();
      e.dataTransfer.dropEffect = "move";
      cell.dataset.drop = side(e);
    });
    cell.addEventListener("dragleave", () => delete cell.dataset.drop);
    cell.addEventListener("drop", (e: DragEvent) => {
      delete cell.dataset.drop;
      const from = e.dataTransfer?.getData("application/x-lab-column");
      if (!from) return;
      e.preventDefault();
      const moving = this.cols.find((c) => keyId(c) === from);
      if (!moving || keyId(moving) === keyId(k)) return;
      const rest = this.cols.filter((c) => c !== moving);
      const at = rest.findIndex((c) => keyId(c) === keyId(k)) + (side(e) === "after" ? 1 : 0);
      rest.splice(at, 0, moving);
      this.hooks.reorder(rest);
    });
  }

  /** Moves column `k` one place left (-1) or right (1), keeping the focus on its header. */
  private move(k: ColKey, by: -1 | 1): void {
    const i = this.cols.findIndex((c) => sameKey(c, k));
    const j = i + by;
    if (i < 0 || j < 0 || j >= this.cols.length) return;
    const next = [...this.cols];
    [next[i], next[j]] = [next[j], next[i]];
    this.refocus = keyId(k);
    this.hooks.reorder(next);
  }

  /** After the header is built again, gives the focus back to this column's sort button. */
  private refocus: string | null = null;

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
    if (x && this.editing !== null && x.row?.id === this.editing && row?.id === this.editing) return x;
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
        { class: "vt-cell c-select sticky", role: "gridcell", style: { left: "0px" } },
        h("input", { type: "checkbox", testid: "row-select", tabIndex: -1, checked: sel, "aria-label": `Select run ${r.short_id}` }),
      ),
      h(
        "div",
        { class: "vt-cell c-run sticky", role: "gridcell", style: { left: "var(--stick-0)" } },
        h("span", { class: "run-name", testid: "run-name", title: READ_ONLY ? runName(r) : `${runName(r)} (double-click to rename)` }, runName(r)),
        h("a", { class: "run-id mono", href: `#/run/${encodeURIComponent(r.id)}`, tabIndex: -1, title: `Open run ${r.id}` }, r.short_id),
        READ_ONLY
          ? null
          : h("button", { class: "rename-btn", testid: "rename-button", tabIndex: -1, "aria-label": `Rename ${runName(r)}`, title: "Rename (F2)" }, "✎"),
      ),
      h("div", { class: "vt-cell", role: "gridcell", title: r.experiment }, r.experiment),
      h("div", { class: "vt-cell", role: "gridcell" }, statusBadge(String(r.status))),
      h("div", { class: "vt-cell num", role: "gridcell", title: r.start_time ?? "" }, fmtTime(r.start_time)),
      h("div", { class: "vt-cell num c-duration", role: "gridcell" }, durationText(r)),
    ];
    this.cols.forEach((c, i) => {
      const v = cellValue(r, c);
      const s = c.kind === "metrics" ? fmtNum(v) : fmtValue(v);
      const stick = this.stickAt(FIELDS.length + i);
      const cls = (c.kind === "metrics" ? "vt-cell num" : "vt-cell") + (stick?.cls ?? "");
      cells.push(
        h(
          "div",
          { class: cls + (v === undefined || v === null ? " missing" : ""), role: "gridcell", title: c.kind === "metrics" ? fmtValue(v) : s, style: stick?.style },
          s,
        ),
      );
    });
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
    if (t.closest(".rename-btn")) {
      this.setActive(i, false);
      this.startRename(rowEl, row);
      return;
    }
    if (t.closest(".run-name") || t.closest(".rename-input")) {
      // A double-click renames: a click on the name only makes the row active.
      this.setActive(i, false);
      return;
    }
    if (e.ctrlKey || e.metaKey) {
      selection.toggle(row);
      return;
    }
    this.setActive(i, false);
    open(row);
  }

  /** Opens the name of the run in `rowEl` for editing. */
  private startRename(rowEl: HTMLElement, row: RunRow): void {
    const cell = rowEl.querySelector<HTMLElement>(".c-run");
    if (!cell || READ_ONLY || this.editing !== null) return;
    this.editing = row.id;
    rename(cell, row.id, runName(row), {
      done: (run) => this.hooks.renamed(run),
      closed: () => {
        this.editing = null;
        this.schedule();
      },
    });
  }

  private setActive(i: number, focus: boolean): void {
    const n = Math.max(0, this.rows.total);
    if (n === 0) return;
    this.active = Math.min(n - 1, Math.max(0, i));
    if (focus) {
      const top = this.active * RH;
      const view = this.viewHeight();
      if (top < this.virtual) this.scrollTo(top);
      else if (top + RH > this.virtual + view) this.scrollTo(top + RH - view);
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
    if (t === this.scroller && this.scaled()) {
      // The scroller's own keys, scaled: by rows, as unscaled.
      const view = this.viewHeight();
      const by: Record<string, number> = { ArrowDown: 40, ArrowUp: -40, PageDown: view - RH, PageUp: RH - view, " ": e.shiftKey ? RH - view : view - RH };
      if (e.key in by || e.key === "Home" || e.key === "End") {
        e.preventDefault();
        this.scrollTo(e.key === "Home" ? 0 : e.key === "End" ? this.fullHeight() : this.virtual + by[e.key]);
      }
      return;
    }
    if (!t.classList.contains("vt-row")) return;
    const page = Math.max(1, Math.floor(this.viewHeight() / RH) - 1);
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
    } else if (e.key === "F2") {
      const row = this.rows.row(this.active);
      const rowEl = this.drawn.get(this.active)?.el;
      if (row && rowEl) {
        e.preventDefault();
        this.startRename(rowEl, row);
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
    const top = Math.floor(this.virtual / RH);
    const bottom = Math.floor((this.virtual + this.viewHeight()) / RH);
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

/** A run's name (a server older than names gives none: its short id). */
function runName(r: RunRow): string {
  return r.name || r.short_id;
}

/** A push pin, drawn (an emoji needs a font the machine may not have). */
function pinIcon(): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 16 16");
  svg.setAttribute("width", "11");
  svg.setAttribute("height", "11");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", "M10 1l5 5-1.6 1.1-.9-.4-2.6 2.6.4 3.2-1.3 1.3-3.1-3.1L2 15l-1-1 4.3-3.9-3.1-3.1 1.3-1.3 3.2.4 2.6-2.6-.4-.9z");
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

/** MAX_PX: 10,000,000, or what the address's `max_table_px` says (for tests). */
function maxTablePx(): number {
  const given = Number(new URLSearchParams(location.search).get("max_table_px"));
  return Number.isFinite(given) && given >= 1000 ? Math.floor(given) : 10_000_000;
}

let measure: CanvasRenderingContext2D | null = null;

/** How wide `text` is in a header's bold label, in px. */
function textWidth(text: string): number {
  if (!measure) {
    measure = document.createElement("canvas").getContext("2d");
    if (measure) {
      const cs = getComputedStyle(document.body);
      measure.font = `650 ${cs.fontSize} ${cs.fontFamily}`;
    }
  }
  return measure ? measure.measureText(text).width : text.length * 8;
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

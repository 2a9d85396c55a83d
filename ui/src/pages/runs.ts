// The runs table: every run of the project, virtualised (only the visible
// rows are in the DOM, under a spacer of the full height), fetched from the
// server in pages as the view scrolls, sorted and filtered by the server.

import { api, ApiError, errorText, isAbort, type Names, type RunRow } from "../api";
import { h, throttle } from "../dom";
import { fmtDuration, fmtNum, fmtTime, fmtValue, elapsed } from "../format";
import { FIELDS, cellValue, keyId, parseKey, sameKey, type ColKey, type SortKey } from "../keys";
import { subscribe } from "../live";
import type { View } from "../page";
import { buildHash, navigate, type Route } from "../route";
import * as selection from "../selection";
import { statusBadge } from "../components/badge";
import { ColumnChooser, resolveColumns, sameColumns } from "../runs/columns";
import { Pager, type PagerSnapshot } from "../runs/pager";
import { QueryBar } from "../runs/query-bar";
import { NO_QUERY, fetchKey, filters, queryHash, readQuery, serverParams, type Query, type QueryChange } from "../runs/query";

const RH = 30; // row height, px
const OVERSCAN = 8;
const SELECT_W = 34;
const COL_W = 108;

/** What the runs page keeps between visits: the project's names, and the
 *  rows and place it was at, to come back to the same place at once. */
interface Memory {
  names: Names | null;
  last: {
    dataKey: string;
    rows: PagerSnapshot;
    scrollTop: number;
    scrollLeft: number;
    active: number;
  } | null;
}

/** The runs page: each call of the function it gives mounts it for a route. */
export function makeRunsPage(): (route: Route) => View {
  const memory: Memory = { names: null, last: null };
  return (route) => {
    const v = new RunsView(memory);
    v.start(route);
    return v;
  };
}

class RunsView implements View {
  el: HTMLElement;
  private names: Names | null;
  private q: Query = NO_QUERY;
  private cols: ColKey[] = [];
  private dataKey = "";
  private pager: Pager;
  private active = 0;
  private rowEls = new Map<number, { el: HTMLElement; row: RunRow | null; sel: boolean }>();
  private abort = new AbortController();
  private unsub: () => void;
  private unsubSelection: () => void;
  private raf = 0;
  private restoreScroll: { top: number; left: number } | null = null;
  private error: string | null = null;
  private headH = 0;
  private ro: ResizeObserver;

  // elements
  private bar: QueryBar;
  private countEl: HTMLElement;
  private compareBtn: HTMLButtonElement;
  private clearBtn: HTMLButtonElement;
  private chooser: ColumnChooser;
  private table: HTMLElement;
  private scroller: HTMLElement;
  private inner: HTMLElement;
  private head: HTMLElement;
  private body: HTMLElement;
  private empty: HTMLElement;
  private softRefresh: ReturnType<typeof throttle>;
  private ticker: number;

  constructor(private memory: Memory) {
    this.names = memory.names;
    this.pager = new Pager({
      params: (offset, limit) => serverParams(this.q, this.cols, this.names, offset, limit),
      signal: this.abort.signal,
      names: (n) => this.absorbNames(n),
      loaded: (whole) => {
        this.error = null;
        if (whole) this.showFilterError(null);
        this.layout();
      },
      failed: (e) => this.fail(e),
    });
    this.bar = new QueryBar({ change: (c, replace) => this.go(c, replace), again: () => this.reload() });
    this.countEl = h("span", { class: "count", role: "status" });
    this.compareBtn = h("button", { class: "btn primary", testid: "compare-button", onclick: () => this.compare() });
    this.clearBtn = h("button", { class: "btn ghost", title: "Untick every run", onclick: () => this.clearSelection() }, "Clear");
    this.chooser = new ColumnChooser({ names: () => this.names, shown: () => this.cols, choose: (cols) => this.go({ cols }, true) });

    this.head = h("div", { class: "vt-head", role: "row" });
    this.body = h("div", { class: "vt-body", role: "rowgroup" });
    this.empty = h("div", { class: "vt-empty", hidden: true });
    this.inner = h("div", { class: "vt-inner" }, this.head, this.body);
    this.scroller = h("div", { class: "vt-scroll" }, this.inner, this.empty);
    this.table = h("div", { class: "vt", role: "grid", testid: "runs-table", "aria-label": "Runs" }, this.scroller);

    this.el = h(
      "section",
      { class: "page runs-page" },
      h(
        "div",
        { class: "toolbar" },
        ...this.bar.els,
        this.chooser.el,
        h("span", { class: "spacer" }),
        this.countEl,
        this.clearBtn,
        this.compareBtn,
      ),
      this.table,
    );

    this.scroller.addEventListener("scroll", () => this.schedule(), { passive: true });
    this.scroller.addEventListener("keydown", (e) => this.onKey(e));
    this.body.addEventListener("click", (e) => this.onClick(e));
    this.body.addEventListener("focusin", (e) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>(".vt-row");
      if (row?.dataset.index) this.setActive(Number(row.dataset.index), false);
    });
    this.ro = new ResizeObserver(() => this.schedule());
    this.ro.observe(this.scroller);

    this.softRefresh = throttle(() => this.refresh(), 1000);
    this.unsub = subscribe({
      run: (r) => this.onRunEvent(r),
      metrics: (m) => {
        // Points for a run the table does not hold yet: it is new (the server
        // may announce a run that starts as the page connects only by its
        // points), so fetch the view again. For a shown run, its last values changed.
        const known = this.pager.holds(m.id);
        if (!known || (this.cols.some((c) => c.kind === "metrics") && [...this.rowEls.values()].some((x) => x.row?.id === m.id))) this.softRefresh();
      },
      removed: (r) => {
        selection.untick(r.id);
        this.softRefresh();
      },
      resync: () => this.softRefresh(),
    });
    // Durations of running runs tick.
    this.ticker = window.setInterval(() => {
      for (const [, x] of this.rowEls) {
        if (x.row?.status === "running") {
          const cell = x.el.querySelector<HTMLElement>(".c-duration");
          if (cell) cell.textContent = durationText(x.row);
        }
      }
    }, 1000);
    this.unsubSelection = selection.subscribe(() => {
      this.updateSelectionUi();
      this.renderRows();
    });
    this.updateSelectionUi();
  }

  start(route: Route): void {
    if (this.names) {
      // Names from the last visit: show the table at once, refresh the names behind it.
      this.update(route);
      void this.loadNames();
    } else {
      this.pendingRoute = route;
      void this.loadNames().then(() => this.update(this.pendingRoute ?? route));
    }
  }

  private pendingRoute: Route | null = null;

  private async loadNames(): Promise<void> {
    try {
      const n = await api<Names>("/names", undefined, { signal: this.abort.signal });
      this.setNames(n);
    } catch (e) {
      if (!isAbort(e) && !this.names) this.setNames({ params: [], metrics: [], tags: [], experiments: [] });
    }
  }

  private setNames(n: Names): void {
    const exps = n.experiments ?? this.names?.experiments ?? [];
    this.names = { params: n.params ?? [], metrics: n.metrics ?? [], tags: n.tags ?? [], experiments: exps };
    this.memory.names = this.names;
    this.bar.setExperiments(exps);
  }

  update(route: Route): boolean {
    if (!this.names) {
      this.pendingRoute = route; // start() takes it once the names are in
      return true;
    }
    this.q = readQuery(route, this.names);
    this.bar.show(this.q);
    const oldCols = this.cols;
    this.cols = resolveColumns(this.q.cols, this.names);
    if (!sameColumns(oldCols, this.cols) || !this.head.childElementCount) this.buildHead();
    else this.updateHeadSort();
    const key = this.computeDataKey();
    if (key !== this.dataKey) {
      this.dataKey = key;
      const last = this.memory.last;
      if (last && last.dataKey === key) {
        // Back from another page: show what we had at once, then refresh.
        this.pager.restore(last.rows);
        this.active = last.active;
        this.restoreScroll = { top: last.scrollTop, left: last.scrollLeft };
        this.memory.last = null;
        this.clearRows();
        this.layout();
        this.refresh();
      } else {
        this.reload();
      }
    }
    return true;
  }

  private computeDataKey(): string {
    return fetchKey(this.q, this.cols, this.names);
  }


  /** Writes the state into the URL (which comes back through update()). */
  private go(change: QueryChange, replace = false): void {
    navigate(queryHash({ ...this.q, ...change }, this.names), replace);
  }

  // ---------------------------------------------------------------- data

  private reload(): void {
    this.pager.reset();
    this.error = null;
    this.scroller.scrollTop = 0;
    this.active = 0;
    this.clearRows();
    this.showFilterError(null);
    void this.pager.fetch(0);
    this.layout();
  }

  /** Fetches the pages in view again and swaps them in at once (live updates). */
  private refresh(): void {
    void this.pager.refresh(...this.visibleRange());
  }

  private absorbNames(n: Names | undefined): void {
    if (!n || !this.names) return;
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    if (same(n.params ?? [], this.names.params) && same(n.metrics ?? [], this.names.metrics) && same(n.tags ?? [], this.names.tags)) return;
    this.setNames({ ...n, experiments: this.names.experiments });
    if (this.q.cols === null) {
      const before = this.cols;
      this.cols = resolveColumns(this.q.cols, this.names);
      if (!sameColumns(before, this.cols)) {
        this.buildHead();
        // The columns asked of the server changed: fetch again with them.
        this.dataKey = this.computeDataKey();
        this.softRefresh();
      }
    }
  }

  private fail(e: unknown): void {
    if (isAbort(e)) return;
    if (e instanceof ApiError && e.code === "bad_query") {
      // The server says whether the filter or the sort keys hold the mistake.
      this.showFilterError(e, e.param ?? (this.q.where.trim() ? "where" : "sort"));
      this.pager.clear();
      this.error = null;
    } else if (e instanceof ApiError && e.status === 401) {
      this.error = "The server wants a token: enter it in the box above.";
    } else {
      this.error = "Could not load runs: " + errorText(e);
    }
    this.layout();
  }

  private showFilterError(e: ApiError | null, source: "where" | "sort" = "where"): void {
    this.bar.showError(e, source);
    this.updateCount();
  }

  private onRunEvent(r: RunRow): void {
    // Update the row in place at once; then fetch the view again (at most once a second)
    // so that new runs appear where the sort and filter put them.
    if (this.pager.merge(r)) this.schedule();
    if (this.names && r.experiment && !(this.names.experiments ?? []).includes(r.experiment)) {
      this.names.experiments = [...(this.names.experiments ?? []), r.experiment].sort();
      this.bar.setExperiments(this.names.experiments);
    }
    this.softRefresh();
  }

  // ---------------------------------------------------------------- rendering

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
        onclick: (e: MouseEvent) => this.sortBy(k, e.shiftKey),
      },
      group ? h("span", { class: `h-group g-${k.kind}` }, group) : null,
      h("span", { class: "h-label" }, label),
      h("span", { class: "sort-ind", "aria-hidden": "true" }),
    );
    return h("div", { class: `vt-cell vt-hcell ${k.kind === "metrics" ? "num" : ""} k-${k.kind}`, role: "columnheader", "aria-sort": "none" }, btn);
  }

  private updateHeadSort(): void {
    for (const btn of this.head.querySelectorAll<HTMLButtonElement>(".sort-btn")) {
      const k = parseKey(btn.dataset.key ?? "", this.names);
      const i = this.q.sort.findIndex((s) => sameKey(s.key, k));
      const ind = btn.querySelector(".sort-ind")!;
      const cell = btn.parentElement!;
      if (i < 0) {
        ind.textContent = "";
        cell.setAttribute("aria-sort", "none");
        btn.classList.remove("sorted");
      } else {
        const s = this.q.sort[i];
        ind.textContent = (s.desc ? "▼" : "▲") + (this.q.sort.length > 1 ? String(i + 1) : "");
        cell.setAttribute("aria-sort", i === 0 ? (s.desc ? "descending" : "ascending") : "other");
        btn.classList.add("sorted");
      }
    }
  }

  /** Click: sort by this key (again: flip; a third time: back to the default).
   *  Shift-click: add it as the next key (or flip it, or drop it). */
  private sortBy(k: ColKey, add: boolean): void {
    const cur = this.q.sort;
    const i = cur.findIndex((s) => sameKey(s.key, k));
    let next: SortKey[];
    if (add) {
      if (i < 0) next = [...cur, { key: k, desc: false }];
      else if (!cur[i].desc) next = cur.map((s, j) => (j === i ? { key: s.key, desc: true } : s));
      else next = cur.filter((_, j) => j !== i);
    } else if (i === 0 && cur.length === 1) {
      next = cur[0].desc ? [] : [{ key: k, desc: true }];
    } else {
      next = [{ key: k, desc: false }];
    }
    this.go({ sort: next });
  }

  private clearRows(): void {
    for (const [, x] of this.rowEls) x.el.remove();
    this.rowEls.clear();
  }

  private schedule(): void {
    if (this.raf) return;
    this.raf = requestAnimationFrame(() => {
      this.raf = 0;
      this.renderRows();
    });
  }

  private layout(): void {
    const total = Math.max(0, this.pager.total);
    this.body.style.height = total * RH + "px";
    this.table.setAttribute("aria-rowcount", String(total + 1));
    this.updateCount();
    if (this.error) {
      this.empty.hidden = false;
      this.empty.replaceChildren(h("div", { class: "error-box", role: "alert" }, this.error));
    } else if (this.pager.total === 0) {
      this.empty.hidden = false;
      const filtered = filters(this.q);
      this.empty.replaceChildren(
        this.bar.refused
          ? h("p", null, "The filter is not valid: see the message under it.")
          : filtered
          ? h("p", null, "No run matches this filter.")
          : h("p", null, "No runs yet. Log one from Python (", h("code", null, "import lab"), ") and it appears here."),
      );
    } else if (this.pager.total < 0) {
      this.empty.hidden = false;
      this.empty.replaceChildren(h("div", { class: "loading" }, "Loading runs…"));
    } else {
      this.empty.hidden = true;
    }
    if (this.restoreScroll && this.pager.total > 0) {
      if (this.scroller.clientHeight > 0) {
        this.scroller.scrollTop = this.restoreScroll.top;
        this.scroller.scrollLeft = this.restoreScroll.left;
        this.restoreScroll = null;
      } else if (!this.abort.signal.aborted) {
        // Not in the page yet: once it is.
        requestAnimationFrame(() => this.layout());
        return;
      }
    }
    this.renderRows();
  }

  private visibleRange(): [number, number] {
    this.headH = this.head.offsetHeight;
    const top = this.scroller.scrollTop;
    const hgt = Math.max(RH, this.scroller.clientHeight - this.headH);
    const first = Math.max(0, Math.floor(top / RH) - OVERSCAN);
    const last = Math.min(Math.max(0, this.pager.total) - 1, Math.ceil((top + hgt) / RH) + OVERSCAN);
    return [first, last];
  }

  private rowAt(i: number): RunRow | null {
    return this.pager.row(i);
  }

  private renderRows(): void {
    if (this.pager.total <= 0) {
      this.clearRows();
      return;
    }
    const [first, last] = this.visibleRange();
    this.pager.want(first, last);
    const focusedIndex = this.body.contains(document.activeElement) ? this.active : -1;
    for (const [i, x] of this.rowEls) {
      if (i < first || i > last) {
        x.el.remove();
        this.rowEls.delete(i);
      }
    }
    const activeShown = this.active >= first && this.active <= last;
    let prev: HTMLElement | null = null;
    for (let i = first; i <= last; i++) {
      const row = this.rowAt(i);
      const sel = !!row && selection.has(row.id);
      let x = this.rowEls.get(i);
      if (!x || x.row !== row || x.sel !== sel) {
        const el = this.buildRow(i, row, sel);
        if (x) x.el.replaceWith(el);
        x = { el, row, sel };
        this.rowEls.set(i, x);
      }
      const tabbable = activeShown ? i === this.active : i === first;
      x.el.tabIndex = tabbable ? 0 : -1;
      x.el.classList.toggle("active", i === this.active);
      const expected: ChildNode | null = prev ? prev.nextSibling : this.body.firstChild;
      if (expected !== x.el) this.body.insertBefore(x.el, expected);
      prev = x.el;
    }
    if (focusedIndex >= 0 && document.activeElement !== this.rowEls.get(focusedIndex)?.el) {
      this.rowEls.get(focusedIndex)?.el.focus({ preventScroll: true });
    }
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

  // ---------------------------------------------------------------- interaction

  private onClick(e: MouseEvent): void {
    const t = e.target as HTMLElement;
    const rowEl = t.closest<HTMLElement>(".vt-row");
    if (!rowEl || !rowEl.dataset.runId) return;
    const i = Number(rowEl.dataset.index);
    const row = this.rowAt(i);
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
    this.open(row);
  }

  private open(row: RunRow): void {
    navigate(`#/run/${encodeURIComponent(row.id)}`);
  }

  private setActive(i: number, focus: boolean): void {
    const n = Math.max(0, this.pager.total);
    if (n === 0) return;
    this.active = Math.min(n - 1, Math.max(0, i));
    if (focus) {
      const top = this.active * RH;
      const bodyH = this.scroller.clientHeight - this.head.offsetHeight;
      if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
      else if (top + RH > this.scroller.scrollTop + bodyH) this.scroller.scrollTop = top + RH - bodyH;
    }
    this.renderRows();
    if (focus) this.rowEls.get(this.active)?.el.focus({ preventScroll: true });
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
      this.setActive(e.key === "Home" ? 0 : this.pager.total - 1, true);
    } else if (e.key === "Enter") {
      const row = this.rowAt(this.active);
      if (row) {
        e.preventDefault();
        this.open(row);
      }
    } else if (e.key === " ") {
      const row = this.rowAt(this.active);
      if (row) {
        e.preventDefault();
        selection.toggle(row);
      }
    }
  }

  private selectVisible(on: boolean): void {
    const [first, last] = this.visibleRange();
    const top = Math.floor(this.scroller.scrollTop / RH);
    const bottom = Math.floor((this.scroller.scrollTop + this.scroller.clientHeight - this.head.offsetHeight) / RH);
    const rows: RunRow[] = [];
    for (let i = Math.max(first, top); i <= Math.min(last, bottom); i++) {
      const r = this.rowAt(i);
      if (r) rows.push(r);
    }
    selection.tick(rows, on);
  }

  private clearSelection(): void {
    selection.clear();
    const all = this.head.querySelector<HTMLInputElement>(".select-page");
    if (all) all.checked = false;
  }

  private updateSelectionUi(): void {
    const n = selection.count();
    this.compareBtn.textContent = `Compare (${n})`;
    this.compareBtn.disabled = n < 2;
    this.compareBtn.title = n < 2 ? "Tick two or more runs to compare them" : "Compare the ticked runs";
    this.clearBtn.hidden = n === 0;
  }

  private updateCount(): void {
    const t = this.pager.total;
    this.countEl.textContent = t < 0 || this.bar.refused ? "" : `${t.toLocaleString("en-US")} run${t === 1 ? "" : "s"}`;
  }

  private compare(): void {
    if (selection.count() < 2) return;
    navigate(buildHash("/compare", { ids: selection.ids() }));
  }

  destroy(): void {
    this.memory.last = {
      dataKey: this.dataKey,
      rows: this.pager.snapshot(),
      scrollTop: this.scroller.scrollTop,
      scrollLeft: this.scroller.scrollLeft,
      active: this.active,
    };
    this.abort.abort();
    this.unsub();
    this.unsubSelection();
    this.softRefresh.cancel();
    this.chooser.close();
    this.ro.disconnect();
    clearInterval(this.ticker);
    if (this.raf) cancelAnimationFrame(this.raf);
  }
}

function durationText(r: RunRow): string {
  if (r.status === "running") {
    const s = elapsed(r.start_time);
    return s === null ? "" : fmtDuration(s) + " …";
  }
  return fmtDuration(r.duration_s);
}

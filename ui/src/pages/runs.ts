// The runs page: every run of the project in a table that the server sorts,
// filters and hands over in pages as the view scrolls. This module puts the
// parts together (runs/: the query bar and its URL state, the column chooser,
// the pager, the table, the selection buttons), keeps them in step with the
// address, the project's names and the live events, and remembers where the
// page was for the next visit.

import { api, ApiError, errorText, isAbort, type Names, type RunRow } from "../api";
import { h, throttle } from "../dom";
import { sameKey, type ColKey } from "../keys";
import { subscribe } from "../live";
import type { View } from "../page";
import { navigate, type Route } from "../route";
import * as selection from "../selection";
import { ColumnChooser, resolveColumns, sameColumns } from "../runs/columns";
import { GroupControl, GroupedRows } from "../runs/groups";
import { Pager, type PagerSnapshot } from "../runs/pager";
import { QueryBar } from "../runs/query-bar";
import { NO_QUERY, fetchKey, filters, queryHash, readQuery, serverParams, type Query, type QueryChange } from "../runs/query";
import { SelectionBar } from "../runs/selection-bar";
import { RunsTable, type TablePlace } from "../runs/table";

/** What the runs page keeps between visits: the project's names, and the
 *  rows and place it was at, to come back to the same place at once. */
interface Memory {
  names: Names | null;
  last: { dataKey: string; rows: PagerSnapshot; place: TablePlace } | null;
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
  private error: string | null = null;
  private pendingRoute: Route | null = null;
  /** The route the page shows. */
  private route: Route | null = null;
  private abort = new AbortController();
  private pager: Pager;
  /** The pager's rows as the table draws them: grouped, or as they are. */
  private rows: GroupedRows;
  private grouping: GroupControl;
  private bar: QueryBar;
  private chooser: ColumnChooser;
  private table: RunsTable;
  private ticks: SelectionBar;
  private countEl: HTMLElement;
  private softRefresh: ReturnType<typeof throttle>;
  private unsub: () => void;

  constructor(private memory: Memory) {
    this.names = memory.names;
    this.pager = new Pager({
      params: (offset, limit) => serverParams(this.q, this.fetchedCols(), this.names, offset, limit),
      signal: this.abort.signal,
      names: (n) => this.absorbNames(n),
      loaded: (whole) => {
        this.rows.rebuild();
        this.error = null;
        if (whole) this.showFilterError(null);
        this.layout();
      },
      failed: (e) => this.fail(e),
    });
    this.bar = new QueryBar({ change: (c, replace) => this.go(c, replace), again: () => this.reload() });
    this.chooser = new ColumnChooser({ names: () => this.names, shown: () => this.cols, choose: (cols) => this.go({ cols }, true) });
    this.rows = new GroupedRows(this.pager);
    this.grouping = new GroupControl((group) => this.go({ group }));
    this.table = new RunsTable(this.rows, {
      names: () => this.names,
      sort: (sort) => this.go({ sort }),
      fold: (key) => {
        this.rows.toggle(key);
        this.layout();
      },
    });
    this.ticks = new SelectionBar(() => this.table.uncheckAll());
    this.countEl = h("span", { class: "count", role: "status" });
    this.el = h(
      "section",
      { class: "page runs-page" },
      h("div", { class: "toolbar" }, ...this.bar.els, this.chooser.el, this.grouping.el, h("span", { class: "spacer" }), this.countEl, ...this.ticks.els),
      this.table.el,
    );
    this.softRefresh = throttle(() => this.refresh(), 1000);
    this.unsub = subscribe({
      run: (r) => this.onRunEvent(r),
      metrics: (m) => {
        // Points for a run the table does not hold yet: it is new (the server
        // may announce a run that starts as the page connects only by its
        // points), so fetch the view again. For a shown run, its last values changed.
        const known = this.pager.holds(m.id);
        if (!known || (this.cols.some((c) => c.kind === "metrics") && this.table.shows(m.id))) this.softRefresh();
      },
      removed: (r) => {
        selection.untick(r.id);
        this.softRefresh();
      },
      resync: () => this.softRefresh(),
    });
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

  update(route: Route): boolean {
    if (!this.names) {
      this.pendingRoute = route; // start() takes it once the names are in
      return true;
    }
    this.route = route;
    this.q = readQuery(route, this.names);
    this.bar.show(this.q);
    const oldCols = this.cols;
    this.cols = resolveColumns(this.q.cols, this.names);
    if (!sameColumns(oldCols, this.cols) || !this.table.hasHead) this.table.setColumns(this.cols, this.q.sort);
    else this.table.setSort(this.q.sort);
    this.grouping.show(this.names, this.q.group);
    if (this.rows.setKey(this.q.group)) {
      this.table.reset();
      this.layout();
    }
    const key = fetchKey(this.q, this.fetchedCols(), this.names);
    if (key !== this.dataKey) {
      this.dataKey = key;
      const last = this.memory.last;
      if (last && last.dataKey === key) {
        // Back from another page: show what we had at once, then refresh.
        this.pager.restore(last.rows);
        this.rows.rebuild();
        this.table.restore(last.place);
        this.memory.last = null;
        this.layout();
        this.refresh();
      } else {
        this.reload();
      }
    }
    return true;
  }

  destroy(): void {
    this.memory.last = { dataKey: this.dataKey, rows: this.pager.snapshot(), place: this.table.place() };
    this.abort.abort();
    this.unsub();
    this.softRefresh.cancel();
    this.chooser.close();
    this.table.destroy();
    this.ticks.destroy();
  }

  // ---------------------------------------------------------------- names

  private async loadNames(): Promise<void> {
    try {
      const n = await api<Names>("/names", undefined, { signal: this.abort.signal });
      this.setNames(n);
    } catch (e) {
      if (!isAbort(e) && !this.names) this.setNames({ fields: [], params: [], metrics: [], tags: [], experiments: [] });
    }
  }

  private setNames(n: Names): void {
    const exps = n.experiments ?? this.names?.experiments ?? [];
    this.names = { fields: n.fields ?? [], params: n.params ?? [], metrics: n.metrics ?? [], tags: n.tags ?? [], experiments: exps };
    this.memory.names = this.names;
    this.bar.setExperiments(exps);
    this.grouping.show(this.names, this.q.group);
  }

  /** The names an answer of the server carries: new ones may change the default columns. */
  private absorbNames(n: Names | undefined): void {
    if (!n || !this.names) return;
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
    const fieldsBefore = this.names.fields;
    if (same(n.fields ?? [], fieldsBefore) && same(n.params ?? [], this.names.params) && same(n.metrics ?? [], this.names.metrics) && same(n.tags ?? [], this.names.tags)) return;
    this.setNames({ ...n, experiments: this.names.experiments });
    if (this.route && !same(this.names.fields, fieldsBefore)) {
      // Which names are run fields decides how the address's keys read
      // (`sort=-start_time`, `cols=user`): read it again with the new ones.
      this.update(this.route);
      return;
    }
    if (this.q.cols === null) {
      const before = this.cols;
      this.cols = resolveColumns(this.q.cols, this.names);
      if (!sameColumns(before, this.cols)) {
        this.table.setColumns(this.cols, this.q.sort);
        // The columns asked of the server changed: fetch again with them.
        this.dataKey = fetchKey(this.q, this.fetchedCols(), this.names);
        this.softRefresh();
      }
    }
  }

  // ---------------------------------------------------------------- data

  /** The columns the server is asked for: those shown, and the param or
   *  metric the rows are grouped by (which the rows must carry). */
  private fetchedCols(): ColKey[] {
    const g = this.q.group;
    if (!g || (g.kind !== "params" && g.kind !== "metrics") || this.cols.some((c) => sameKey(c, g))) return this.cols;
    return [...this.cols, g];
  }

  /** Writes the state into the URL (which comes back through update()). */
  private go(change: QueryChange, replace = false): void {
    navigate(queryHash({ ...this.q, ...change }, this.names), replace);
  }

  private reload(): void {
    this.pager.reset();
    this.error = null;
    this.table.reset();
    this.showFilterError(null);
    void this.pager.fetch(0);
    this.layout();
  }

  /** Fetches the pages in view again and swaps them in at once (live updates). */
  private refresh(): void {
    void this.pager.refresh(...this.rows.refreshRange(this.table.visibleRange()));
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

  private onRunEvent(r: RunRow): void {
    // Update the row in place at once; then fetch the view again (at most once a second)
    // so that new runs appear where the sort and filter put them.
    if (this.pager.merge(r)) {
      this.rows.rebuild();
      this.table.schedule();
    }
    if (this.names && r.experiment && !(this.names.experiments ?? []).includes(r.experiment)) {
      this.names.experiments = [...(this.names.experiments ?? []), r.experiment].sort();
      this.bar.setExperiments(this.names.experiments);
    }
    this.softRefresh();
  }

  // ---------------------------------------------------------------- showing

  private layout(): void {
    this.rows.fetchAll();
    this.table.size();
    this.updateCount();
    this.table.showEmpty(this.emptyMessage());
    if (!this.table.placeScroll() && !this.abort.signal.aborted) {
      // Not in the page yet: once it is.
      requestAnimationFrame(() => this.layout());
      return;
    }
    this.table.render();
  }

  /** What the table shows in place of rows: an error, why there are none, or that they are coming. */
  private emptyMessage(): HTMLElement | null {
    const total = this.pager.total;
    if (this.error) return h("div", { class: "error-box", role: "alert" }, this.error);
    if (total === 0) {
      if (this.bar.refused) return h("p", null, "The filter is not valid: see the message under it.");
      if (filters(this.q)) return h("p", null, "No run matches this filter.");
      return h("p", null, "No runs yet. Log one from Python (", h("code", null, "import lab"), ") and it appears here.");
    }
    if (total < 0 || this.rows.total < 0) return h("div", { class: "loading" }, "Loading runs…");
    return null;
  }

  private showFilterError(e: ApiError | null, source: "where" | "sort" = "where"): void {
    this.bar.showError(e, source);
    this.updateCount();
  }

  private updateCount(): void {
    const t = this.pager.total;
    const left = this.rows.key && this.rows.left ? ` (the first ${(t - this.rows.left).toLocaleString("en-US")} grouped)` : "";
    this.countEl.textContent = t < 0 || this.bar.refused ? "" : `${t.toLocaleString("en-US")} run${t === 1 ? "" : "s"}${left}`;
  }
}

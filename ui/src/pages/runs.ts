// The runs page: every run of the project in a table that the server sorts,
// filters and hands over in pages as the view scrolls. This module puts the
// parts together (runs/: the query bar and its URL state, the column chooser,
// the saved views, the pager, the table, the selection buttons), keeps them in
// step with the address, the project's names, the rows in view (the default
// columns are theirs) and the live events, and remembers where the page was
// for the next visit and which columns were chosen for each experiment.

import { api, ApiError, errorText, isAbort, type Names, type RunRow } from "../api";
import { h, throttle } from "../dom";
import { sameKey, type ColKey } from "../keys";
import { subscribe } from "../live";
import type { View } from "../page";
import { navigate, type Route } from "../route";
import * as selection from "../selection";
import { ColumnChooser, defaultColumns, remember, remembered, resolveColumns, sameColumns } from "../runs/columns";
import { GroupControl, GroupedRows } from "../runs/groups";
import { PAGE, Pager, type PagerSnapshot } from "../runs/pager";
import { QueryBar } from "../runs/query-bar";
import { NO_QUERY, fetchKey, fetchedColumns, filters, queryHash, readQuery, serverParams, type Query, type QueryChange } from "../runs/query";
import { SelectionBar } from "../runs/selection-bar";
import { RunsTable, type TablePlace } from "../runs/table";
import { ViewsMenu } from "../runs/views";
import { getStr } from "../route";
import { keyId } from "../keys";

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
  /** The default columns: what the runs in view have. */
  private defaults: ColKey[] = [];
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
  private views: ViewsMenu;
  private table: RunsTable;
  private ticks: SelectionBar;
  private countEl: HTMLElement;
  private softRefresh: ReturnType<typeof throttle>;
  private unsub: () => void;
  private onSlash = (e: KeyboardEvent) => this.slash(e);

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
        this.followRows();
        this.layout();
      },
      failed: (e) => this.fail(e),
    });
    this.bar = new QueryBar({
      change: (c, replace) => this.go(c, replace),
      again: () => this.reload(),
      names: () => this.names,
      rows: () => this.heldRows(),
    });
    this.chooser = new ColumnChooser({ names: () => this.names, shown: () => this.cols, choose: (cols) => this.setColumns(cols, this.q.pin) });
    this.views = new ViewsMenu();
    this.rows = new GroupedRows(this.pager);
    this.grouping = new GroupControl((group) => this.go({ group }));
    this.table = new RunsTable(this.rows, {
      names: () => this.names,
      sort: (sort) => this.go({ sort }),
      reorder: (cols) => this.setColumns(cols, this.q.pin),
      pin: (k, on) => this.setColumns(this.q.cols, on ? [...this.q.pin, k] : this.q.pin.filter((p) => keyId(p) !== keyId(k))),
      fold: (key) => {
        this.rows.toggle(key);
        this.layout();
      },
      renamed: (run) => {
        // At once, before the event stream brings it.
        const row = this.pager.find(run.id);
        if (row && this.pager.merge({ ...row, name: run.name })) {
          this.rows.rebuild();
          this.table.schedule();
        }
      },
    });
    this.ticks = new SelectionBar(() => this.table.uncheckAll());
    this.countEl = h("span", { class: "count", role: "status" });
    this.el = h(
      "section",
      { class: "page runs-page" },
      h("div", { class: "toolbar" }, ...this.bar.els, this.chooser.el, this.grouping.el, this.views.el, h("span", { class: "spacer" }), this.countEl, ...this.ticks.els),
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
    document.addEventListener("keydown", this.onSlash);
  }

  start(route: Route): void {
    if (this.names) {
      // Names from the last visit: show the table at once, refresh the names behind it.
      this.update(route);
      void this.loadNames();
    } else {
      this.pendingRoute = route;
      this.askFirstPageEarly(route);
      void this.loadNames().then(() => this.update(this.pendingRoute ?? route));
    }
  }

  /** With no names yet, the first page of an address that reads the same
   *  without them (no sort, columns, pins, grouping or view, and no columns
   *  remembered for its experiment) is asked for alongside the names rather
   *  than after them. The pager takes the answer only if its first request
   *  is the same. */
  private askFirstPageEarly(route: Route): void {
    if (["sort", "cols", "pin", "group", "view"].some((k) => route.raw.has(k))) return;
    const q = readQuery(route, null);
    if (remembered(q.experiment, null)) return;
    this.pager.askEarly(serverParams(q, null, null, 0, PAGE));
  }

  update(route: Route): boolean {
    if (!this.names) {
      this.pendingRoute = route; // start() takes it once the names are in
      return true;
    }
    const view = getStr(route, "view");
    if (view) {
      // A saved view's link: its state takes the place of the address.
      this.views.open(view);
      return true;
    }
    this.route = route;
    this.q = readQuery(route, this.names);
    if (this.q.cols === null && this.q.pin.length === 0) {
      const r = remembered(this.q.experiment, this.names);
      if (r) {
        // The columns chosen the last time this experiment was shown.
        this.go({ cols: r.cols, pin: r.pin }, true);
        return true;
      }
    }
    this.bar.show(this.q);
    this.views.show(this.q, this.names);
    this.showColumns(true);
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
        this.followRows();
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
    document.removeEventListener("keydown", this.onSlash);
    this.softRefresh.cancel();
    this.chooser.close();
    this.views.close();
    this.bar.destroy();
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

  /** The names an answer of the server carries: new ones may change how the address reads and the columns' order. */
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
    this.showColumns(false);
  }

  // ---------------------------------------------------------------- columns

  /** Shows the columns of the query (`sortToo`: and marks its sort keys again). */
  private showColumns(sortToo: boolean): void {
    if (!this.names) return;
    const old = this.cols;
    this.cols = resolveColumns(this.q.cols, this.defaults, this.q.pin);
    if (!sameColumns(old, this.cols) || !this.table.hasHead || this.pinsChanged()) this.table.setColumns(this.cols, this.q.sort, this.q.pin);
    else if (sortToo) this.table.setSort(this.q.sort);
  }

  private shownPins = "";
  private pinsChanged(): boolean {
    const now = this.q.pin.map(keyId).join("\u0000");
    const changed = now !== this.shownPins;
    this.shownPins = now;
    return changed;
  }

  /** The default columns follow the runs in view: those of the first page held. */
  private followRows(): void {
    if (!this.names) return;
    const rows = this.heldRows();
    if (!rows.length && this.pager.total !== 0) return;
    this.defaults = defaultColumns(rows, this.names);
    if (this.q.cols === null) this.showColumns(false);
  }

  /** The rows of the first page held (what the defaults and the completions are made of). */
  private heldRows(): RunRow[] {
    const out: RunRow[] = [];
    const n = Math.min(Math.max(0, this.pager.total), PAGE);
    for (let i = 0; i < n; i++) {
      const r = this.pager.row(i);
      if (r) out.push(r);
    }
    return out;
  }

  /** Shows `cols` (null: the defaults) with `pin` pinned, and remembers them for the experiment. */
  private setColumns(cols: ColKey[] | null, pin: ColKey[]): void {
    remember(this.q.experiment, cols, pin);
    this.go({ cols, pin }, true);
  }

  /** `/` anywhere but in a text box: to the filter box. */
  private slash(e: KeyboardEvent): void {
    if (e.key !== "/" || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target as HTMLElement | null;
    if (t && (t.isContentEditable || t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement || t instanceof HTMLSelectElement)) return;
    e.preventDefault();
    this.bar.focus();
  }

  // ---------------------------------------------------------------- data

  /** The columns the server is asked for: every one for the default columns
   *  (which are made of what the rows have), else those shown and the param
   *  or metric the rows are grouped by (which the rows must carry). */
  private fetchedCols(): ColKey[] | null {
    const cols = fetchedColumns(this.q, this.cols);
    const g = this.q.group;
    if (cols === null || !g || (g.kind !== "params" && g.kind !== "metrics") || cols.some((c) => sameKey(c, g))) return cols;
    return [...cols, g];
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

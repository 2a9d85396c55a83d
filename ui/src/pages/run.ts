// One run: overview, params, metric charts (live), console output (live), artifacts, models, packages.

import { api, ApiError, authedUrl, errorText, isAbort, READ_ONLY, runPath, type MetricSummary, type RunDetail, type RunRow } from "../api";
import { h, fill, loading, errorBox, throttle, type Children } from "../dom";
import { fmtBytes, fmtDuration, fmtNum, fmtTime, fmtValue, elapsed } from "../format";
import { subscribe, sameRun } from "../live";
import type { View } from "../page";
import { buildHash, getStr, navigate, runsHash, type Route } from "../route";
import { statusBadge, updateBadge } from "../components/badge";
import { MetricChart, chartControls, chartSettingsFrom, chartSettingsParams, type ChartSettings } from "../components/chart";
import { ChartSync, parseZoom, zoomParam } from "../components/chart-sync";
import { ArtifactBrowser } from "../components/artifacts";
import { LogView } from "../components/logs";
import { MediaSection } from "../components/media";
import { editableText, noteEditor, patchRun, tagEditor, type RunEdit } from "../components/run-edit";
import * as selection from "../selection";
import { fmtSystem, isSystemMetric, sortSystem, systemLabel, systemUnits } from "../system";

type Tab = "overview" | "logs" | "artifacts" | "models" | "packages";
const TABS: Tab[] = ["overview", "logs", "artifacts", "models", "packages"];

export function runPage(route: Route): View {
  return new RunView(route);
}

class RunView implements View {
  el: HTMLElement;
  private ref: string;
  private run: RunDetail | null = null;
  private tab: Tab = "overview";
  private file: string | null = null;
  private settings: ChartSettings;
  /** The crosshair and the zoom its charts share (the zoom in the address);
   *  the system metrics' charts share theirs apart, their steps being samples. */
  private sync: ChartSync;
  private systemSync = new ChartSync(null, () => {});
  private head: HTMLElement;
  private tabsNav: HTMLElement;
  private content: HTMLElement;
  private badge: HTMLElement | null = null;
  private durationEl: HTMLElement | null = null;
  private side: HTMLElement | null = null;
  private chartsGrid: HTMLElement | null = null;
  /** The System section: the `sys/` metrics Lab records by itself, below the script's. */
  private systemSection: HTMLElement | null = null;
  private systemGrid: HTMLElement | null = null;
  private charts = new Map<string, MetricChart>();
  private artifacts: ArtifactBrowser | null = null;
  private media: MediaSection | null = null;
  private logs: LogView | null = null;
  private abort = new AbortController();
  private unsub: () => void;
  private refetch: ReturnType<typeof throttle>;
  private ticker: number;
  private removed = false;

  constructor(route: Route) {
    this.ref = route.id ?? "";
    this.settings = chartSettingsFrom(route);
    this.sync = new ChartSync(parseZoom(getStr(route, "zoom")), () => navigate(this.hashFor({}), true));
    this.tab = (TABS as string[]).includes(getStr(route, "tab")) ? (getStr(route, "tab") as Tab) : "overview";
    this.file = getStr(route, "file") || null;
    this.head = h("header", { class: "run-head" }, h("a", { class: "back", href: runsHash() }, "← Runs"));
    this.tabsNav = h("nav", { class: "tabs", "aria-label": "Run sections" });
    this.content = h("div", { class: "run-content" }, loading("Loading the run…"));
    this.el = h("section", { class: "page run-page" }, this.head, this.tabsNav, this.content);
    this.refetch = throttle(() => this.load(), 1500);
    this.unsub = subscribe({
      run: (r) => this.onRunEvent(r),
      metrics: (m) => {
        if (!this.run || !sameRun(m.id, this.run.id)) return;
        let unknown = false;
        for (const n of m.names) {
          const c = this.charts.get(n);
          if (c) c.refresh();
          else unknown = true;
        }
        if (unknown || this.tab === "overview") this.refetch();
      },
      resync: () => {
        this.refetch();
        for (const c of this.charts.values()) c.refresh();
      },
      removed: (r) => {
        if (this.run && r.id === this.run.id) {
          this.removed = true;
          this.content.prepend(errorBox("This run was deleted."));
        }
      },
    });
    this.ticker = window.setInterval(() => this.updateDuration(), 1000);
    this.load();
  }

  update(route: Route): boolean {
    if ((route.id ?? "") !== this.ref) return false;
    const tab = (TABS as string[]).includes(getStr(route, "tab")) ? (getStr(route, "tab") as Tab) : "overview";
    const s = chartSettingsFrom(route);
    this.file = getStr(route, "file") || null;
    if (tab !== this.tab) {
      this.tab = tab;
      this.settings = s;
      this.renderTab();
    } else if (s.x !== this.settings.x || s.log !== this.settings.log || s.smooth !== this.settings.smooth) {
      const refetch = s.x !== this.settings.x;
      this.settings = s;
      for (const c of this.charts.values()) c.setSettings(s, refetch);
    }
    const zoom = parseZoom(getStr(route, "zoom"));
    if (zoomParam(zoom) !== zoomParam(this.sync.zoom)) this.sync.setZoom(zoom);
    return true;
  }

  private hashFor(change: Partial<{ tab: Tab; file: string | null; settings: ChartSettings }>): string {
    const tab = change.tab ?? this.tab;
    const s = change.settings ?? this.settings;
    const file = "file" in change ? change.file : this.file;
    return buildHash(`/run/${encodeURIComponent(this.ref)}`, {
      tab: tab === "overview" ? undefined : tab,
      file: tab === "artifacts" && file ? file : undefined,
      ...chartSettingsParams(s),
      zoom: zoomParam(this.sync.zoom),
    });
  }

  private async load(): Promise<void> {
    try {
      const run = await api<RunDetail>(runPath(this.ref), undefined, { signal: this.abort.signal });
      const first = !this.run;
      this.run = run;
      if (first) {
        this.renderHead();
        this.renderTabs();
        this.renderTab();
      } else {
        // Renamed elsewhere (another page, `lab rename`): the head shows the
        // new name, unless its name is being edited here.
        const shown = this.head.querySelector(".run-name")?.textContent;
        const editing = this.head.querySelector(".edit-input") !== null;
        if (!editing && shown !== undefined && shown !== (run.name ?? run.short_id)) this.renderHead();
        else this.refreshHead();
        if (this.tab === "overview") this.refreshOverview();
        this.renderTabs();
      }
    } catch (e) {
      if (isAbort(e)) return;
      if (!this.run) {
        const msg = e instanceof ApiError && e.status === 404 ? `No run matches “${this.ref}”.` : "Could not load the run: " + errorText(e);
        fill(this.content, errorBox(msg));
      }
    }
  }

  private onRunEvent(r: RunRow): void {
    if (!this.run || !sameRun(r.id, this.run.id)) return;
    if (r.status !== this.run.status) {
      this.run.status = r.status;
      this.run.end_time = r.end_time ?? this.run.end_time;
      this.run.duration_s = r.duration_s ?? this.run.duration_s;
      if (this.badge) updateBadge(this.badge, String(r.status));
      this.updateDuration();
    }
    this.refetch();
  }

  private renderHead(): void {
    const r = this.run!;
    this.badge = statusBadge(String(r.status), "run-status");
    this.durationEl = h("span", { class: "run-duration" });
    const sel = h("button", {
      class: "btn small",
      "aria-pressed": selection.has(r.id) ? "true" : "false",
      onclick: () => {
        selection.toggle(r);
        sel.setAttribute("aria-pressed", selection.has(r.id) ? "true" : "false");
        sel.textContent = selection.has(r.id) ? "✓ Selected for compare" : "Select for compare";
      },
    });
    sel.textContent = selection.has(r.id) ? "✓ Selected for compare" : "Select for compare";
    fill(
      this.head,
      h("a", { class: "back", href: runsHash() }, "← Runs"),
      h(
        "div",
        { class: "run-title" },
        h(
          "h1",
          null,
          READ_ONLY
            ? h("span", { class: "run-name", testid: "run-name" }, r.name ?? r.short_id)
            : editableText({
                value: r.name ?? "",
                label: "the run's name",
                testid: "run-name",
                view: (v) => h("span", { class: "run-name" }, v),
                save: (name) => this.edit({ name }),
              }),
          h("span", { class: "mono run-short", title: r.id }, r.short_id),
          h("span", { class: "run-exp" }, r.experiment),
        ),
        this.badge,
        this.durationEl,
        h("span", { class: "muted", title: r.start_time ?? "" }, r.start_time ? "started " + fmtTime(r.start_time) : ""),
        h("span", { class: "spacer" }),
        sel,
        // A team server does not delete runs from its page (yet).
        READ_ONLY ? null : this.deleteControl(),
      ),
    );
    this.updateDuration();
    document.title = `${r.name ?? r.short_id} · ${r.experiment} · Lab`;
  }

  /** Sends an edit of the run; shows the run as it is afterwards. */
  private async edit(edit: RunEdit): Promise<void> {
    const run = await patchRun(this.run!.id, edit);
    this.run = run;
    this.renderHead();
    this.fillSide(true);
    this.renderTabs();
  }

  /** "Delete…", then an inline confirmation (no browser dialog). */
  private deleteControl(): HTMLElement {
    const box = h("span", { class: "delete-box" });
    const ask = () => {
      const r = this.run!;
      const yes = h("button", { class: "btn small danger", onclick: () => void remove() }, "Delete");
      const no = h("button", { class: "btn small", onclick: () => idle() }, "Cancel");
      fill(box, h("span", { class: "confirm-text" }, `Delete run ${r.short_id} and its files?`), yes, no);
      no.focus();
    };
    const idle = () => fill(box, h("button", { class: "btn small ghost", title: "Delete this run (as lab rm)", onclick: ask }, "Delete…"));
    const remove = async () => {
      const r = this.run!;
      fill(box, h("span", { class: "muted" }, "Deleting…"));
      try {
        await api<void>(runPath(r.id), undefined, { method: "DELETE" });
        selection.untick(r.id);
        navigate(runsHash());
      } catch (e) {
        const msg = e instanceof ApiError && e.status === 409 ? "It is still running: it cannot be deleted now." : "Could not delete it: " + errorText(e);
        fill(box, h("span", { class: "error-text" }, msg), " ", h("button", { class: "btn small", onclick: () => idle() }, "OK"));
      }
    };
    idle();
    return box;
  }

  private refreshHead(): void {
    if (this.badge && this.run) updateBadge(this.badge, String(this.run.status));
    this.updateDuration();
  }

  private updateDuration(): void {
    if (!this.durationEl || !this.run) return;
    const r = this.run;
    if (r.status === "running") {
      const s = elapsed(r.start_time);
      this.durationEl.textContent = s === null ? "" : fmtDuration(s) + " so far";
    } else {
      this.durationEl.textContent = fmtDuration(r.duration_s);
    }
  }

  private renderTabs(): void {
    const r = this.run!;
    const files = (r.artifacts ?? []).reduce((a, x) => a + (x.files ?? 0), 0);
    const label: Record<Tab, string> = {
      overview: "Overview",
      logs: "Logs",
      artifacts: `Artifacts (${files})`,
      models: `Models (${(r.models ?? []).length})`,
      packages: `Packages (${(r.packages ?? []).length})`,
    };
    fill(
      this.tabsNav,
      TABS.map((t) =>
        h(
          "a",
          { href: this.hashFor({ tab: t }), class: "tab" + (t === this.tab ? " current" : ""), "aria-current": t === this.tab ? "page" : undefined, "data-tab": t },
          label[t],
        ),
      ),
    );
  }

  private clearTab(): void {
    for (const c of this.charts.values()) c.destroy();
    this.charts.clear();
    this.artifacts?.destroy();
    this.artifacts = null;
    this.logs?.destroy();
    this.logs = null;
    this.media?.destroy();
    this.media = null;
    this.side = null;
    this.chartsGrid = null;
    this.systemSection = null;
    this.systemGrid = null;
  }

  private renderTab(): void {
    if (!this.run) return;
    this.clearTab();
    this.renderTabs();
    const r = this.run;
    switch (this.tab) {
      case "overview":
        this.renderOverview();
        break;
      case "artifacts":
        this.artifacts = new ArtifactBrowser(r.id, this.file, (path) => {
          this.file = path;
          navigate(this.hashFor({ file: path }), true);
        });
        fill(this.content, this.artifacts.el);
        break;
      case "logs":
        this.logs = new LogView(r.id);
        fill(this.content, this.logs.el);
        break;
      case "models":
        fill(this.content, this.models());
        break;
      case "packages":
        fill(this.content, this.packages());
        break;
    }
    if (this.removed) this.content.prepend(errorBox("This run was deleted."));
  }

  // ---------------------------------------------------------------- overview

  private renderOverview(): void {
    this.side = h("div", { class: "run-side" });
    this.chartsGrid = h("div", { class: "charts-grid" });
    const xMetrics = (this.run?.metrics ?? []).map((m) => m.name).filter((n) => !isSystemMetric(n));
    const controls = chartControls(
      this.settings,
      (s, refetch) => {
        this.settings = s;
        for (const c of this.charts.values()) c.setSettings(s, refetch);
        navigate(this.hashFor({ settings: s }), true);
        this.renderTabs();
      },
      true,
      xMetrics,
    );
    this.systemGrid = h("div", { class: "charts-grid" });
    this.systemSection = h(
      "section",
      { class: "system-metrics", testid: "system-section", "aria-labelledby": "system-heading", hidden: true },
      h(
        "div",
        { class: "section-head" },
        h("h2", { id: "system-heading" }, "System"),
        h("span", { class: "muted" }, "recorded by Lab while the run was live: the process and its children, the machine, each GPU"),
      ),
      this.systemGrid,
    );
    this.media = new MediaSection(this.run!.id);
    this.media.setLive(this.run!.status === "running");
    const main = h(
      "div",
      { class: "run-main" },
      h("div", { class: "section-head" }, h("h2", null, "Metrics"), controls),
      this.chartsGrid,
      this.media.el,
      this.systemSection,
    );
    fill(this.content, this.errorPanel(), h("div", { class: "run-grid" }, this.side, main));
    this.fillSide();
    this.syncCharts();
  }

  private refreshOverview(): void {
    if (!this.side) return;
    const err = this.content.querySelector(".run-error");
    const fresh = this.errorPanel();
    if (err && fresh) err.replaceWith(fresh);
    else if (err) err.remove();
    else if (fresh) this.content.prepend(fresh);
    this.fillSide();
    this.syncCharts();
    if (this.media) {
      this.media.setLive(this.run?.status === "running");
      void this.media.refresh();
    }
  }

  private syncCharts(): void {
    if (!this.chartsGrid || !this.run) return;
    const all = this.run.metrics.map((m) => m.name);
    const names = all.filter((n) => !isSystemMetric(n));
    const system = sortSystem(all.filter(isSystemMetric));
    const mine = [...this.charts.keys()].filter((n) => !isSystemMetric(n)).length;
    if (!names.length && !mine) {
      fill(this.chartsGrid, h("p", { class: "muted" }, "This run logged no metrics."));
    } else {
      if (!mine) this.chartsGrid.replaceChildren();
      this.addCharts(names, this.chartsGrid);
    }
    if (this.systemGrid && this.systemSection && system.length) {
      this.systemSection.hidden = false;
      // In their fixed order, even when a GPU's metrics appear later.
      this.addCharts(system, this.systemGrid);
      for (const n of system) this.systemGrid.appendChild(this.charts.get(n)!.el);
    }
  }

  private addCharts(names: string[], grid: HTMLElement): void {
    for (const n of names) {
      if (this.charts.has(n)) continue;
      const sub = isSystemMetric(n) ? systemLabel(n) : undefined;
      const c = new MetricChart(n, [{ runId: this.run!.id, label: n, colorIndex: 0 }], this.settings, "metric-chart", sub, systemUnits(n), isSystemMetric(n) ? this.systemSync : this.sync);
      c.el.id = "chart-" + cssId(n);
      this.charts.set(n, c);
      grid.appendChild(c.el);
    }
  }

  private errorPanel(): HTMLElement | null {
    const r = this.run!;
    const parts: Children[] = [];
    if (r.error) {
      parts.push(
        h(
          "div",
          { class: "error-box run-error", role: "alert" },
          h("div", { class: "err-title" }, h("strong", null, r.error.type ?? "Error"), r.error.message ? ": " : "", r.error.message ?? ""),
          r.error.traceback ? h("pre", { class: "traceback" }, r.error.traceback) : null,
        ),
      );
    }
    if (r.status === "crashed") parts.push(crashPanel(r));
    if (r.damage !== null && r.damage !== undefined) {
      parts.push(h("div", { class: "warn-box" }, h("strong", null, "This run's journal is damaged: "), fmtValue(r.damage)));
    }
    if (!parts.length) return null;
    return parts.length === 1 ? (parts[0] as HTMLElement) : h("div", { class: "run-error" }, parts);
  }

  /** The side column; `fresh`: drop a note or tag being typed (it was just saved). */
  private fillSide(fresh = false): void {
    if (!this.side || !this.run) return;
    const r = this.run;
    const params = Object.entries(r.params ?? {});
    const metrics = (r.metrics ?? []).filter((m) => !isSystemMetric(m.name));
    const order = sortSystem((r.metrics ?? []).filter((m) => isSystemMetric(m.name)).map((m) => m.name));
    const system = order.map((n) => r.metrics.find((m) => m.name === n)!);
    // A note or a tag being typed survives the refreshes of a live run.
    const typing = (sel: string) => (fresh ? null : (this.side?.querySelector<HTMLElement>(sel) ?? null));
    const tags = READ_ONLY ? null : (typing(".tag-editor:has(input)") ?? tagEditor(r.tags ?? {}, (edit) => this.edit(edit)));
    const note = typing(".run-note:has(textarea)") ?? noteEditor(r.note ?? "", READ_ONLY, (text) => this.edit({ note: text }));
    fill(
      this.side,
      note,
      h("h2", null, "Details"),
      detailsTable(r, tags),
      h("h2", null, `Params (${params.length})`),
      paramsTable(params),
      metrics.length ? [h("h2", null, `Metrics (${metrics.length})`), metricsTable(metrics)] : null,
      system.length ? [h("h2", null, `System (${system.length})`), systemTable(system)] : null,
      // Features are names or indices (the API allows any JSON).
      featuresList((r.features ?? []) as string[]),
      attrsList(Object.entries(r.attrs ?? {})),
    );
  }

  // ---------------------------------------------------------------- models, packages

  private models(): HTMLElement {
    const r = this.run!;
    const models = r.models ?? [];
    if (!models.length) return h("p", { class: "muted" }, "This run saved no models.");
    const cols = ["name", "format", "class", "library", "size", "sha256", ""];
    return h(
      "div",
      { class: "table-scroll" },
      h(
        "table",
        { class: "data models", testid: "models-table" },
        h("thead", null, h("tr", null, cols.map((c) => h("th", { class: c === "size" ? "num" : c === "class" || c === "sha256" ? "wide-only" : undefined }, c)))),
        models.map((m) =>
          h(
            "tbody",
            { class: "model" },
            h(
              "tr",
              null,
              h("td", null, h("strong", null, m.name)),
              h("td", null, m.format ?? ""),
              h("td", { class: "mono wide-only" }, m.class ?? ""),
              h("td", null, [m.library, m.library_version].filter(Boolean).join(" ")),
              h("td", { class: "num" }, fmtBytes(m.size)),
              h("td", { class: "mono sha wide-only", title: m.sha256 ?? "" }, m.sha256 ? m.sha256.slice(0, 16) + "…" : ""),
              h("td", null, h("a", { class: "btn small", href: authedUrl(`${runPath(r.id)}/models/${encodeURIComponent(m.name)}`), download: m.name }, "Download")),
            ),
            h("tr", { class: "load-row" }, h("td", { colspan: cols.length }, copyLine(loadModelLine(r, m.name)))),
          ),
        ),
      ),
    );
  }

  private packages(): HTMLElement {
    const pkgs = [...(this.run!.packages ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    if (!pkgs.length) return h("p", { class: "muted" }, "No installed packages were recorded.");
    const count = h("span", { class: "muted" });
    const tbody = h("tbody");
    const input = h("input", { type: "search", placeholder: "Filter packages", "aria-label": "Filter packages", class: "pkg-filter" });
    const render = () => {
      const s = input.value.trim().toLowerCase();
      const shown = s ? pkgs.filter((p) => p.name.toLowerCase().includes(s) || (p.version ?? "").toLowerCase().includes(s)) : pkgs;
      count.textContent = `${shown.length} of ${pkgs.length}`;
      fill(tbody, shown.map((p) => h("tr", null, h("td", null, p.name), h("td", { class: "mono" }, p.version))));
    };
    input.addEventListener("input", render);
    render();
    return h(
      "div",
      { class: "packages" },
      h("div", { class: "toolbar" }, input, count),
      h("table", { class: "data" }, h("thead", null, h("tr", null, h("th", null, "package"), h("th", null, "version"))), tbody),
    );
  }

  destroy(): void {
    this.abort.abort();
    this.unsub();
    this.refetch.cancel();
    clearInterval(this.ticker);
    this.clearTab();
    document.title = "Lab";
  }
}

// ---------------------------------------------------------------- the overview's side column

/** The run's fields: id, experiment, status, source, command, times, where it ran, git, dataset, tags. */
function detailsTable(r: RunDetail, tagsEditor: HTMLElement | null): HTMLElement {
  const rows: [string, Children][] = [];
  const add = (k: string, v: Children) => {
    if (v === null || v === undefined || v === "") return;
    rows.push([k, v]);
  };
  add("id", h("span", { class: "mono" }, r.id));
  add("experiment", r.experiment);
  add("status", statusBadge(String(r.status)));
  add("source", r.source ? h("span", { class: "mono" }, r.source) : null);
  // The arguments, the Python version and the dataset are attributes as
  // recorded (the API allows any JSON): a list of strings, a string, a dict.
  const command = commandLine(r);
  add("command", command ? h("span", { class: "mono command", testid: "run-command" }, command) : null);
  add("start", r.start_time ? h("span", { title: r.start_time }, fmtTime(r.start_time)) : null);
  add("end", r.end_time ? h("span", { title: r.end_time }, fmtTime(r.end_time)) : null);
  add("duration", r.status === "running" ? "running" : fmtDuration(r.duration_s));
  add("user", r.user);
  add("host", r.host);
  add("pid", r.pid === null || r.pid === undefined ? null : String(r.pid));
  add("python", r.python as string | null);
  if (r.git) {
    add(
      "git",
      h(
        "span",
        null,
        r.git.commit ? h("span", { class: "mono", title: r.git.commit }, r.git.commit.slice(0, 12)) : null,
        r.git.branch ? ` on ${r.git.branch}` : "",
        r.git.dirty ? h("span", { class: "tag warn" }, "dirty") : r.git.dirty === false ? h("span", { class: "tag" }, "clean") : null,
      ),
    );
  }
  add("dataset", datasetText(r.dataset));
  const tags = Object.entries(r.tags ?? {});
  if (tagsEditor) add("tags", tagsEditor);
  else if (tags.length) add("tags", h("span", { class: "tags" }, tags.map(([k, v]) => h("span", { class: "tag" }, `${k}: ${v}`))));
  return h("table", { class: "kv" }, h("tbody", null, rows.map(([k, v]) => h("tr", null, h("th", { scope: "row" }, k), h("td", null, v)))));
}

/**
 * What the page can say about a crashed run: its process is gone without
 * ending it (from the journal: no End record, and no writer holds it any
 * more), the last point it logged, and the artifacts that were never copied
 * (they are copied when a run ends).
 */
function crashPanel(r: RunDetail): HTMLElement {
  const who = [r.pid !== null && r.pid !== undefined ? `pid ${r.pid}` : null, r.host ? `on ${r.host}` : null].filter(Boolean).join(" ");
  const metrics = (r.metrics ?? []).filter((m) => !isSystemMetric(m.name) && m.count > 0);
  const last = metrics.reduce<MetricSummary | null>((a, m) => (a === null || m.last_step > a.last_step ? m : a), null);
  const uncopied = (r.artifacts ?? []).filter((a) => a.path === null || a.path === undefined);
  const lines: Children[] = [
    h(
      "p",
      null,
      `Its process${who ? ` (${who})` : ""} stopped without ending the run: killed (`,
      h("code", null, "kill -9"),
      "), out of memory, or the machine went down. Everything it logged up to then is kept.",
    ),
    h(
      "p",
      { testid: "crash-last-point" },
      last
        ? [`Last point: step ${last.last_step} of `, h("strong", null, last.name), ` (${fmtNum(last.last)})`, r.end_time ? `; last heard from ${fmtTime(r.end_time)}.` : "."]
        : "It logged no metric points.",
    ),
    uncopied.length
      ? h(
          "p",
          { testid: "crash-not-copied" },
          `Not copied (artifacts are copied when a run ends): `,
          uncopied.map((a, i) => [i ? ", " : "", h("strong", null, a.name), " from ", h("code", null, a.source)]),
          ".",
        )
      : null,
    h("p", { class: "muted" }, "The Logs tab has what it printed last."),
  ];
  return h("div", { class: "warn-box run-crash", role: "alert", testid: "crash-panel" }, h("strong", null, "This run crashed."), lines);
}

/** The Python line that loads model `name` of run `r` back. */
function loadModelLine(r: RunDetail, name: string): string {
  // JSON's string quoting is also a Python string literal.
  return `lab.load_model(${JSON.stringify(r.short_id)}, ${JSON.stringify(name)})`;
}

/** A line of code and a button that copies it (or selects it, where the clipboard is refused). */
function copyLine(text: string): HTMLElement {
  const code = h("code", { class: "copy-text", testid: "load-model-line" }, text);
  const button = h("button", { type: "button", class: "btn small", testid: "copy-button", "aria-label": `Copy ${text}` }, "Copy");
  button.addEventListener("click", () => {
    const selectIt = () => {
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel?.removeAllRanges();
      sel?.addRange(range);
      button.textContent = "Selected: press Ctrl+C";
    };
    if (!navigator.clipboard) return selectIt();
    navigator.clipboard.writeText(text).then(() => {
      button.textContent = "Copied";
      window.setTimeout(() => (button.textContent = "Copy"), 1500);
    }, selectIt);
  });
  return h("div", { class: "copy-line" }, code, button);
}

/** The dataset as recorded: text as it is, a dict as its name then the rest, anything else as a value. */
function datasetText(ds: unknown): Children {
  if (ds === null || ds === undefined || ds === "") return null;
  if (typeof ds === "string") return h("strong", { testid: "run-dataset" }, ds);
  if (typeof ds !== "object" || Array.isArray(ds)) return h("span", { testid: "run-dataset" }, fmtValue(ds));
  const d = ds as Record<string, unknown>;
  const name = typeof d.name === "string" ? d.name : null;
  const rest = Object.entries(d).filter(([k]) => k !== "name" || name === null);
  return h(
    "span",
    { testid: "run-dataset" },
    name ? h("strong", null, name) : null,
    rest.length ? h("span", { class: "muted ds-rest" }, (name ? " · " : "") + rest.map(([k, v]) => `${k}: ${fmtValue(v)}`).join(" · ")) : null,
  );
}

/** A word as a POSIX shell reads it back: quoted when it holds anything but plain characters. */
function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : "'" + w.replace(/'/g, `'"'"'`) + "'";
}

/**
 * The command that started the run, as typed: the interpreter (`python`,
 * or the name of the one that ran it), the script (relative to the folder
 * it ran in when inside it), then the arguments. Null when the run recorded
 * no script.
 */
function commandLine(r: RunDetail): string | null {
  const source = typeof r.source === "string" ? r.source : "";
  const argv = Array.isArray(r.argv) ? (r.argv as unknown[]).map(String) : [];
  if (!source && !argv.length) return null;
  const attrs = (r.attrs ?? {}) as Record<string, unknown>;
  const exe = typeof attrs.python_executable === "string" ? attrs.python_executable.split("/").pop() || "python" : "python";
  const cwd = typeof attrs.cwd === "string" ? attrs.cwd.replace(/\/+$/, "") : "";
  let script = source;
  if (cwd && script.startsWith(cwd + "/")) script = script.slice(cwd.length + 1);
  // `<stdin>`, `<command>`, `<notebook>`: no script file to name.
  const words = source.startsWith("<") ? [source, ...argv] : [exe, script, ...argv].filter((w) => w !== "");
  return words.map((w, i) => (i === 0 && w.startsWith("<") ? w : shellWord(w))).join(" ");
}

function paramsTable(params: [string, unknown][]): HTMLElement {
  return h(
    "table",
    { class: "kv params", testid: "params-table" },
    h(
      "tbody",
      null,
      params.length
        ? params.map(([k, v]) => h("tr", null, h("th", { scope: "row", title: k }, k), h("td", { class: typeof v === "number" ? "num" : "" }, fmtValue(v))))
        : h("tr", null, h("td", { class: "muted" }, "No params.")),
    ),
  );
}

/** A link that scrolls to metric `name`'s chart. */
function chartLink(name: string, text: string): HTMLElement {
  return h(
    "a",
    {
      href: "#chart-" + cssId(name),
      onclick: (e: Event) => {
        e.preventDefault();
        document.getElementById("chart-" + cssId(name))?.scrollIntoView({ block: "center" });
      },
    },
    text,
  );
}

/** Each metric's last, min and max values and its points; a metric's name goes to its chart. */
function metricsTable(metrics: MetricSummary[]): HTMLElement {
  const toChart = (name: string) => chartLink(name, name);
  return h(
    "table",
    { class: "data metrics-summary" },
    h("thead", null, h("tr", null, h("th", null, "metric"), h("th", { class: "num" }, "last"), h("th", { class: "num" }, "min"), h("th", { class: "num" }, "max"), h("th", { class: "num" }, "points"))),
    h(
      "tbody",
      null,
      metrics.map((m) =>
        h(
          "tr",
          null,
          h("th", { scope: "row" }, toChart(m.name)),
          h("td", { class: "num" }, fmtNum(m.last)),
          h("td", { class: "num" }, fmtNum(m.min)),
          h("td", { class: "num" }, fmtNum(m.max)),
          h("td", { class: "num" }, m.count === undefined ? "" : String(m.count)),
        ),
      ),
    ),
  );
}

/** The system metrics, by their short names, with their last and largest values in their units. */
function systemTable(metrics: MetricSummary[]): HTMLElement {
  return h(
    "table",
    { class: "data metrics-summary system-summary", testid: "system-summary" },
    h("thead", null, h("tr", null, h("th", null, "sys/"), h("th", { class: "num" }, "last"), h("th", { class: "num" }, "max"))),
    h(
      "tbody",
      null,
      metrics.map((m) =>
        h(
          "tr",
          null,
          h("th", { scope: "row", title: `${m.name}: ${systemLabel(m.name)}` }, chartLink(m.name, m.name.slice("sys/".length))),
          h("td", { class: "num" }, fmtSystem(m.name, m.last)),
          h("td", { class: "num" }, fmtSystem(m.name, m.max)),
        ),
      ),
    ),
  );
}

function featuresList(features: string[]): HTMLElement | null {
  if (!features.length) return null;
  return h(
    "details",
    { class: "features", open: features.length <= 30 },
    h("summary", null, h("h2", { class: "inline" }, `Features (${features.length})`)),
    h("ul", { class: "chips" }, features.map((f) => h("li", { class: "chip" }, f))),
  );
}

function attrsList(attrs: [string, unknown][]): HTMLElement | null {
  if (!attrs.length) return null;
  return h(
    "details",
    { class: "attrs" },
    h("summary", null, h("h2", { class: "inline" }, `Other attributes (${attrs.length})`)),
    h("table", { class: "kv" }, h("tbody", null, attrs.map(([k, v]) => h("tr", null, h("th", { scope: "row" }, k), h("td", { class: "mono" }, fmtValue(v)))))),
  );
}

function cssId(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, (c) => "_" + c.charCodeAt(0).toString(16));
}

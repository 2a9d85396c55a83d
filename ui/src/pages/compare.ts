// Compare runs: metrics overlaid (one chart per metric, one series per run),
// the params side by side (differences first), parallel coordinates of the
// params against a metric, and a scatter of a param against a metric.

import { api, errorText, isAbort, runPath, type RunDetail } from "../api";
import { h, fill, loading, errorBox, throttle } from "../dom";
import { fmtNum, fmtValue } from "../format";
import { subscribe } from "../live";
import type { View } from "../page";
import { buildHash, getList, getStr, navigate, runsHash, type Route } from "../route";
import { statusBadge } from "../components/badge";
import { MetricChart, chartControls, chartSettingsFrom, chartSettingsParams, type ChartSettings } from "../components/chart";
import { ChartSync, parseZoom, zoomParam } from "../components/chart-sync";
import { colorScale, groupingControls, sourceOf, type ColorScale, type Grouping } from "../components/chart-grouping";
import { ParallelCoords, Scatter, type PlotRun } from "../components/plots";
import { seriesColor } from "../theme";
import * as selection from "../selection";
import { isSystemMetric, sortSystem, systemUnits } from "../system";

export function comparePage(route: Route): View {
  return new CompareView(route);
}

class CompareView implements View {
  el: HTMLElement;
  private ids: string[];
  private runs: RunDetail[] = [];
  private metric: string;
  private param: string;
  private settings: ChartSettings;
  /** The crosshair and zoom the charts share; how their lines are grouped and labelled. */
  private sync: ChartSync;
  private grouping: Grouping;
  private charts = new Map<string, MetricChart>();
  private pc: ParallelCoords | null = null;
  private scatter: Scatter | null = null;
  private paramsBox: HTMLElement | null = null;
  private pcMetric: HTMLSelectElement | null = null;
  private scParam: HTMLSelectElement | null = null;
  private scMetric: HTMLSelectElement | null = null;
  private onlyDiff = false;
  private abort = new AbortController();
  private unsub: () => void;
  private refetch: ReturnType<typeof throttle>;

  constructor(route: Route) {
    this.ids = [...new Set(getList(route, "ids") ?? [])];
    this.metric = getStr(route, "metric");
    this.param = getStr(route, "param");
    this.settings = chartSettingsFrom(route);
    this.sync = new ChartSync(parseZoom(getStr(route, "zoom")), () => navigate(this.hash({}), true));
    this.grouping = groupingFrom(route, this.settings);
    this.el = h("section", { class: "page compare-page" });
    this.refetch = throttle(() => this.load(false), 3000);
    this.unsub = subscribe({
      metrics: (m) => {
        if (!this.runs.some((r) => r.id === m.id)) return;
        for (const n of m.names) this.charts.get(n)?.refresh();
        this.refetch();
      },
      run: (r) => {
        if (this.runs.some((x) => x.id === r.id)) this.refetch();
      },
      resync: () => {
        this.refetch();
        for (const c of this.charts.values()) c.refresh();
      },
    });
    if (!this.ids.length) {
      const n = selection.count();
      fill(
        this.el,
        h("h1", null, "Compare runs"),
        h(
          "p",
          null,
          "Tick runs in the ",
          h("a", { href: runsHash() }, "runs table"),
          " and press Compare.",
          n >= 2 ? [" Or ", h("a", { href: buildHash("/compare", { ids: selection.ids() }) }, `compare the ${n} runs ticked`), "."] : null,
        ),
      );
      return;
    }
    fill(this.el, loading("Loading the runs…"));
    this.load(true);
  }

  update(route: Route): boolean {
    const ids = [...new Set(getList(route, "ids") ?? [])];
    if (ids.join(",") !== this.ids.join(",")) return false;
    const s = chartSettingsFrom(route);
    if (s.x !== this.settings.x || s.log !== this.settings.log || s.smooth !== this.settings.smooth || s.band !== this.settings.band) {
      const refetch = s.x !== this.settings.x;
      this.settings = s;
      for (const c of this.charts.values()) c.setSettings(s, refetch);
    }
    const zoom = parseZoom(getStr(route, "zoom"));
    if (zoomParam(zoom) !== zoomParam(this.sync.zoom)) this.sync.setZoom(zoom);
    const grouping = groupingFrom(route, s);
    if (JSON.stringify(grouping) !== JSON.stringify(this.grouping)) {
      this.grouping = grouping;
      this.syncCharts();
    }
    const metric = getStr(route, "metric");
    const param = getStr(route, "param");
    if (metric !== this.metric || param !== this.param) {
      this.metric = metric;
      this.param = param;
      this.drawPlots();
    }
    return true;
  }

  private hash(change: Partial<{ metric: string; param: string; settings: ChartSettings; ids: string[] }>): string {
    const s = change.settings ?? this.settings;
    return buildHash("/compare", {
      ids: change.ids ?? this.ids,
      metric: change.metric ?? this.metric,
      param: change.param ?? this.param,
      ...chartSettingsParams(s),
      zoom: zoomParam(this.sync.zoom),
      group: this.grouping.groupBy || undefined,
      label: this.grouping.labelKeys.length ? this.grouping.labelKeys : undefined,
      color: this.grouping.colorBy || undefined,
    });
  }

  private async load(first: boolean): Promise<void> {
    const got = await Promise.allSettled(this.ids.map((id) => api<RunDetail>(runPath(id), undefined, { signal: this.abort.signal })));
    if (this.abort.signal.aborted) return;
    const runs: RunDetail[] = [];
    const errors: string[] = [];
    got.forEach((g, i) => {
      if (g.status === "fulfilled") runs.push(g.value);
      else if (!isAbort(g.reason)) errors.push(`${this.ids[i]}: ${errorText(g.reason)}`);
    });
    this.runs = runs;
    if (first) this.render(errors);
    else {
      this.renderParams();
      this.drawPlots();
      this.syncCharts();
    }
  }

  private colorOf(r: RunDetail): number {
    const i = this.ids.findIndex((id) => r.id === id || r.id.startsWith(id));
    return i < 0 ? 0 : i;
  }

  /** The runs' metrics: the scripts' own, then the system metrics Lab recorded. */
  private metricNames(): string[] {
    const seen = new Set<string>();
    for (const r of this.runs) for (const m of r.metrics ?? []) seen.add(m.name);
    const all = [...seen];
    return [...all.filter((n) => !isSystemMetric(n)), ...sortSystem(all.filter(isSystemMetric))];
  }

  private paramNames(): string[] {
    const seen = new Set<string>();
    for (const r of this.runs) for (const k of Object.keys(r.params ?? {})) seen.add(k);
    return [...seen];
  }

  private differs(values: unknown[]): boolean {
    const s = values.map((v) => (v === undefined ? "\u0000missing" : fmtValue(v)));
    return s.some((x) => x !== s[0]);
  }

  private render(errors: string[]): void {
    const chips = this.runs.map((r) =>
      h(
        "li",
        { class: "run-chip" },
        h("span", { class: "swatch", style: { background: seriesColor(this.colorOf(r)) }, "aria-hidden": "true" }),
        h("a", { class: "mono", href: `#/run/${encodeURIComponent(r.id)}` }, r.short_id),
        h("span", { class: "muted" }, r.experiment),
        statusBadge(String(r.status)),
        this.runs.length > 1
          ? h(
              "button",
              {
                class: "btn ghost small",
                title: `Remove ${r.short_id} from the comparison`,
                "aria-label": `Remove ${r.short_id} from the comparison`,
                onclick: () => navigate(this.hash({ ids: this.ids.filter((id) => !(r.id === id || r.id.startsWith(id))) })),
              },
              "×",
            )
          : null,
      ),
    );

    const chartsGrid = h("div", { class: "charts-grid" });
    const controls = chartControls(
      this.settings,
      (s, refetch) => {
        this.settings = s;
        for (const c of this.charts.values()) c.setSettings(s, refetch);
        navigate(this.hash({ settings: s }), true);
      },
      true,
      this.metricNames().filter((n) => !isSystemMetric(n)),
    );
    const lines = groupingControls(
      this.grouping,
      this.paramNames(),
      this.metricNames().filter((n) => !isSystemMetric(n)),
      this.runs.some((r) => groupOfRun(r) !== null),
      (g: Grouping) => {
        this.grouping = g;
        this.settings = { ...this.settings, band: g.band };
        for (const c of this.charts.values()) c.setSettings(this.settings, false);
        this.syncCharts();
        navigate(this.hash({}), true);
      },
    );

    this.paramsBox = h("div", { class: "compare-params-box" });
    this.pc = new ParallelCoords();
    this.scatter = new Scatter();
    this.pcMetric = h("select", { "aria-label": "Metric of the parallel coordinates", onchange: () => navigate(this.hash({ metric: this.pcMetric!.value }), true) });
    this.scParam = h("select", { "aria-label": "Param on the x axis", onchange: () => navigate(this.hash({ param: this.scParam!.value }), true) });
    this.scMetric = h("select", { "aria-label": "Metric on the y axis", onchange: () => navigate(this.hash({ metric: this.scMetric!.value }), true) });

    fill(
      this.el,
      h("div", { class: "compare-head" }, h("a", { class: "back", href: runsHash() }, "← Runs"), h("h1", null, `Compare ${this.runs.length} runs`)),
      errors.length ? errorBox("Some runs could not be loaded: " + errors.join("; ")) : null,
      h("ul", { class: "run-chips" }, chips),
      h("section", { class: "card" }, h("div", { class: "section-head" }, h("h2", null, "Params and metrics")), this.paramsBox),
      h("section", { class: "card" }, h("div", { class: "section-head" }, h("h2", null, "Metrics"), controls, lines, this.colorKey), chartsGrid),
      h(
        "section",
        { class: "card" },
        h("div", { class: "section-head" }, h("h2", null, "Parallel coordinates"), h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "metric"), this.pcMetric)),
        this.pc.el,
      ),
      h(
        "section",
        { class: "card" },
        h(
          "div",
          { class: "section-head" },
          h("h2", null, "Scatter"),
          h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "param (x)"), this.scParam),
          h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "metric (y)"), this.scMetric),
        ),
        this.scatter.el,
      ),
    );
    this.chartsGrid = chartsGrid;
    this.renderParams();
    this.syncCharts();
    this.drawPlots();
  }

  private chartsGrid: HTMLElement | null = null;
  private chartRuns = new Map<string, string>();
  private chartLabels = new Map<string, string>();
  private colorKey = h("span", { class: "color-key", testid: "chart-color-key", hidden: true });

  /** The key of the colours by a value: its name and ends. */
  private showColorKey(scale: ColorScale | null): void {
    const by = this.grouping.colorBy;
    this.colorKey.hidden = !scale;
    if (!scale) return;
    const name = by.replace(/^(params|metrics)\./, "");
    this.colorKey.replaceChildren(
      scale.range ? h("span", null, scale.range.lo) : h("span", null, name),
      h("span", { class: "color-ramp", "aria-hidden": "true" }),
      scale.range ? h("span", null, `${scale.range.hi}${scale.range.log ? " (log)" : ""}`) : "",
    );
    this.colorKey.title = `Lines coloured by ${by}` + (scale.range ? "" : " (its values in order)") + "; grey: runs without it";
  }

  private syncCharts(): void {
    const grid = this.chartsGrid;
    if (!grid) return;
    const names = this.metricNames();
    if (!names.length) {
      fill(grid, h("p", { class: "muted" }, "These runs logged no metrics."));
      return;
    }
    if (!this.charts.size) grid.replaceChildren();
    const scale = this.grouping.colorBy ? colorScale(this.runs, this.grouping.colorBy) : null;
    this.showColorKey(scale);
    for (const n of names) {
      const sources = this.runs
        .filter((r) => (r.metrics ?? []).some((m) => m.name === n))
        .map((r) => sourceOf(r, this.colorOf(r), this.grouping, scale));
      const existing = this.charts.get(n);
      if (existing) {
        const key = sources.map((x) => x.runId).join(",");
        if (this.chartRuns.get(n) !== key) {
          this.chartRuns.set(n, key);
          existing.setSources(sources);
        } else if (this.chartLabels.get(n) !== JSON.stringify(sources)) {
          existing.relabel(sources);
        }
        this.chartLabels.set(n, JSON.stringify(sources));
        continue;
      }
      this.chartLabels.set(n, JSON.stringify(sources));
      this.chartRuns.set(n, sources.map((x) => x.runId).join(","));
      const c = new MetricChart(n, sources, this.settings, "compare-chart", `${sources.length} of ${this.runs.length} runs`, systemUnits(n), this.sync);
      this.charts.set(n, c);
      grid.appendChild(c.el);
    }
  }

  private renderParams(): void {
    if (!this.paramsBox) return;
    const runs = this.runs;
    const params = this.paramNames().map((k) => ({ k, values: runs.map((r) => (r.params ?? {})[k]) }));
    const metrics = this.metricNames().map((k) => ({ k, values: runs.map((r) => (r.metrics ?? []).find((m) => m.name === k)?.last) }));
    const order = (rows: { k: string; values: unknown[] }[]) =>
      rows.map((r) => ({ ...r, diff: this.differs(r.values) })).sort((a, b) => Number(b.diff) - Number(a.diff));
    const pRows = order(params);
    const mRows = order(metrics);
    const nDiff = pRows.filter((r) => r.diff).length;
    const toggle = h("label", { class: "ctl" }, h("input", {
      type: "checkbox",
      checked: this.onlyDiff,
      onchange: (e: Event) => {
        this.onlyDiff = (e.target as HTMLInputElement).checked;
        this.renderParams();
      },
    }), " only differences");
    const row = (r: { k: string; values: unknown[]; diff: boolean }, metric: boolean) =>
      this.onlyDiff && !r.diff
        ? null
        : h(
            "tr",
            { class: r.diff ? "diff" : undefined, "data-name": r.k },
            h("th", { scope: "row", title: r.k }, r.k, r.diff ? h("span", { class: "diff-mark", title: "The runs differ" }, " ≠") : null),
            r.values.map((v) => h("td", { class: metric || typeof v === "number" ? "num" : undefined }, v === undefined ? "—" : metric ? fmtNum(v) : fmtValue(v))),
          );
    fill(
      this.paramsBox,
      h("div", { class: "muted small-line" }, `${nDiff} of ${pRows.length} params differ (highlighted, listed first). `, toggle),
      h(
        "div",
        { class: "table-scroll" },
        h(
          "table",
          { class: "data compare-params", testid: "compare-params" },
          h(
            "thead",
            null,
            h(
              "tr",
              null,
              h("th", null, ""),
              runs.map((r) =>
                h(
                  "th",
                  { scope: "col", class: "run-col" },
                  h("span", { class: "swatch", style: { background: seriesColor(this.colorOf(r)) }, "aria-hidden": "true" }),
                  h("a", { class: "mono", href: `#/run/${encodeURIComponent(r.id)}` }, r.short_id),
                ),
              ),
            ),
          ),
          h(
            "tbody",
            null,
            pRows.length ? h("tr", { class: "group" }, h("th", { colspan: runs.length + 1 }, "params")) : null,
            pRows.map((r) => row(r, false)),
            mRows.length ? h("tr", { class: "group" }, h("th", { colspan: runs.length + 1 }, "metrics (last value)")) : null,
            mRows.map((r) => row(r, true)),
          ),
        ),
      ),
    );
  }

  private plotRuns(): PlotRun[] {
    return this.runs.map((r) => ({
      id: r.id,
      label: r.short_id,
      colorIndex: this.colorOf(r),
      params: r.params ?? {},
      metrics: Object.fromEntries((r.metrics ?? []).map((m) => [m.name, m.last])),
    }));
  }

  private drawPlots(): void {
    if (!this.pc || !this.scatter || !this.pcMetric || !this.scParam || !this.scMetric) return;
    const metrics = this.metricNames();
    const params = this.paramNames();
    const metric = metrics.includes(this.metric) ? this.metric : metrics[0] ?? "";
    const setOptions = (sel: HTMLSelectElement, list: string[], value: string) => {
      sel.replaceChildren(...list.map((n) => h("option", { value: n }, n)));
      sel.value = value;
      sel.disabled = list.length === 0;
    };
    setOptions(this.pcMetric, metrics, metric);
    setOptions(this.scMetric, metrics, metric);
    // Params that differ say the most; fall back to all of them.
    const runs = this.plotRuns();
    const differing = params.filter((p) => this.differs(runs.map((r) => r.params[p])));
    const axes = (differing.length ? differing : params).slice(0, 14);
    const param = params.includes(this.param) ? this.param : axes[0] ?? params[0] ?? "";
    setOptions(this.scParam, params, param);
    this.pc.set(runs, axes, metric);
    this.scatter.set(runs, param, metric);
  }

  destroy(): void {
    this.abort.abort();
    this.unsub();
    this.refetch.cancel();
    for (const c of this.charts.values()) c.destroy();
    this.pc?.destroy();
    this.scatter?.destroy();
  }
}

/** The grouping and labels the address holds (`group=`, `label=`; the band is a chart setting). */
function groupingFrom(route: Route, s: ChartSettings): Grouping {
  const g = getStr(route, "group");
  return {
    // A bare name is a parameter (as the runs table may write it).
    groupBy: !g || g === "group" || g.startsWith("params.") ? g : "params." + g,
    band: s.band,
    labelKeys: getList(route, "label") ?? [],
    colorBy: /^(params|metrics)\./.test(getStr(route, "color")) ? getStr(route, "color") : "",
  };
}

/** The run's group, if it has one. */
function groupOfRun(r: RunDetail): string | null {
  return r.group ?? null;
}

// Compare runs: metrics overlaid (one chart per metric, one series per run),
// single-value metrics as bars, the params side by side (differences first),
// parallel coordinates over any fields (coloured by one, brushed to pick
// runs), and a scatter of any field against any field. Past eight runs the
// chips fold. The address keeps the plots' choices: `axes=` (the parallel
// coordinates' fields in order), `pcolor=` (what colours them; `color=`
// colours the charts' lines), `brush=` (their brushes), `sx=`
// and `sy=` (the scatter's fields), `media=` (the image key side by side).

import { api, errorText, isAbort, runPath, type RunDetail } from "../api";
import { h, fill, loading, errorBox, throttle } from "../dom";
import { fmtNum, fmtValue } from "../format";
import { subscribe } from "../live";
import type { View } from "../page";
import { buildHash, getList, getStr, navigate, parseHash, runsHash, type Route } from "../route";
import { MetricChart, chartControls, chartSettingsFrom, chartSettingsParams, type ChartSettings } from "../components/chart";
import { ChartSync, parseZoom, zoomParam } from "../components/chart-sync";
import { colorScale, groupingControls, sourceOf, type ColorScale, type Grouping } from "../components/chart-grouping";
import { RunChips } from "../components/chips";
import { RUN_FIELDS, fieldLabel, metricField, paramField, parseField, runLabel, type Field, type PlotRun } from "../components/fields";
import { ParallelCoords, parseBrush } from "../components/parallel";
import { MediaStrip } from "../components/media-strip";
import { Scatter } from "../components/scatter";
import { SingleValues } from "../components/values";
import { seriesColor } from "../theme";
import * as selection from "../selection";
import { isSystemMetric, sortSystem, systemUnits } from "../system";
import { ViewsMenu } from "../runs/views";

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
  private plotKeys: PlotKeys;
  private chips: RunChips | null = null;
  private pc: ParallelCoords | null = null;
  private scatter: Scatter | null = null;
  private single: SingleValues | null = null;
  private media: MediaStrip | null = null;
  private singleCard: HTMLElement | null = null;
  private paramsBox: HTMLElement | null = null;
  private pcColor: HTMLSelectElement | null = null;
  private pcAdd: HTMLSelectElement | null = null;
  private scX: HTMLSelectElement | null = null;
  private scY: HTMLSelectElement | null = null;
  private onlyDiff = false;
  /** Saves the page as it is (its runs, charts and plots) as a view. */
  private views = new ViewsMenu(() => location.hash.replace(/^#/, ""));
  private abort = new AbortController();
  private unsub: () => void;
  private refetch: ReturnType<typeof throttle>;

  constructor(route: Route) {
    this.ids = [...new Set(getList(route, "ids") ?? [])];
    this.metric = getStr(route, "metric");
    this.param = getStr(route, "param");
    this.plotKeys = plotKeysFrom(route);
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
      this.drawSingle();
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
    const keys = plotKeysFrom(route);
    if (metric !== this.metric || param !== this.param || JSON.stringify(keys) !== JSON.stringify(this.plotKeys)) {
      this.metric = metric;
      this.param = param;
      this.plotKeys = keys;
      this.media?.setKey(keys.media ?? "");
      this.drawPlots();
    }
    return true;
  }

  private hash(change: Partial<{ metric: string; param: string; settings: ChartSettings; ids: string[] } & PlotKeys>): string {
    const s = change.settings ?? this.settings;
    const k = { ...this.plotKeys, ...change };
    return buildHash("/compare", {
      ids: change.ids ?? this.ids,
      metric: change.metric ?? this.metric,
      param: change.param ?? this.param,
      axes: k.axes ?? undefined,
      brush: k.brush.length ? k.brush : undefined,
      pcolor: k.color,
      sx: k.sx,
      sy: k.sy,
      media: k.media,
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
      this.renderChips();
      // Running runs may have logged images since.
      if (this.runs.some((r) => r.status === "running")) this.loadMedia();
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

  /** The tag keys of the runs, in order. */
  private tagKeys(): string[] {
    const seen = new Set<string>();
    for (const r of this.runs) for (const k of Object.keys(r.tags ?? {})) seen.add(k);
    return [...seen].sort((x, y) => x.localeCompare(y));
  }

  private differs(values: unknown[]): boolean {
    const s = values.map((v) => (v === undefined ? "\u0000missing" : fmtValue(v)));
    return s.some((x) => x !== s[0]);
  }

  private render(errors: string[]): void {
    this.chips = new RunChips((id) => navigate(this.hash({ ids: this.ids.filter((x) => !(id === x || id.startsWith(x))) })));
    this.renderChips();

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
      this.tagKeys(),
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
    this.pc = new ParallelCoords({
      axes: (keys) => navigate(this.hash({ axes: keys, brush: (this.pc?.brushTexts() ?? []).filter((t) => keys.includes(parseBrush(t)?.[0] ?? "")) })),
      compare: (ids) => navigate(this.hash({ ids, axes: this.pcFields().map((f) => f.key), brush: [] })),
      brushes: (texts) => navigate(this.hash({ brush: texts }), true),
    });
    this.scatter = new Scatter();
    this.single = new SingleValues();
    this.singleCard = h(
      "section",
      { class: "card", hidden: true },
      h("div", { class: "section-head" }, h("h2", null, "Single values"), h("span", { class: "muted" }, "metrics logged once per run")),
      this.single.el,
    );
    this.media = new MediaStrip((key) => navigate(this.hash({ media: key }), true));
    this.pcColor = h("select", { "aria-label": "Colour the parallel coordinates by", testid: "pc-color", onchange: () => navigate(this.hash({ color: this.pcColor!.value }), true) });
    this.pcAdd = h("select", {
      "aria-label": "Add an axis to the parallel coordinates",
      testid: "pc-add",
      onchange: () => {
        const key = this.pcAdd!.value;
        if (key) navigate(this.hash({ axes: [...this.pcFields().map((f) => f.key), key] }));
      },
    });
    this.scX = h("select", { "aria-label": "Scatter: field on the x axis", testid: "scatter-x", onchange: () => navigate(this.hash({ sx: this.scX!.value }), true) });
    this.scY = h("select", { "aria-label": "Scatter: field on the y axis", testid: "scatter-y", onchange: () => navigate(this.hash({ sy: this.scY!.value }), true) });

    fill(
      this.el,
      h("div", { class: "compare-head" }, h("a", { class: "back", href: runsHash() }, "← Runs"), h("h1", null, `Compare ${this.runs.length} runs`), this.views.el),
      errors.length ? errorBox("Some runs could not be loaded: " + errors.join("; ")) : null,
      this.chips.el,
      h("section", { class: "card" }, h("div", { class: "section-head" }, h("h2", null, "Params and metrics")), this.paramsBox),
      h("section", { class: "card" }, h("div", { class: "section-head" }, h("h2", null, "Metrics"), controls, lines, this.colorKey), chartsGrid),
      this.singleCard,
      this.media.el,
      h(
        "section",
        { class: "card" },
        h(
          "div",
          { class: "section-head" },
          h("h2", null, "Parallel coordinates"),
          h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "colour"), this.pcColor),
          h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "add axis"), this.pcAdd),
        ),
        this.pc.el,
      ),
      h(
        "section",
        { class: "card" },
        h(
          "div",
          { class: "section-head" },
          h("h2", null, "Scatter"),
          h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "x"), this.scX),
          h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "y"), this.scY),
        ),
        this.scatter.el,
      ),
    );
    this.chartsGrid = chartsGrid;
    this.renderParams();
    this.syncCharts();
    this.drawPlots();
    this.loadMedia();
  }

  private loadMedia(): void {
    void this.media?.load(
      this.runs.map((r) => ({ id: r.id, label: runLabel(r), shortId: r.short_id, colorIndex: this.colorOf(r) })),
      this.plotKeys.media ?? "",
    );
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
    const name = by.replace(/^(params|metrics|tags)\./, "");
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
    const single = this.singleMetrics();
    const names = this.metricNames().filter((n) => !single.has(n));
    if (!names.length) {
      fill(grid, h("p", { class: "muted" }, single.size ? "These runs logged each metric once: see Single values." : "These runs logged no metrics."));
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
                  h("a", { class: runLabel(r) === r.short_id ? "mono" : undefined, href: `#/run/${encodeURIComponent(r.id)}`, title: r.id }, runLabel(r)),
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

  private renderChips(): void {
    this.chips?.set(
      this.runs.map((r) => ({ id: r.id, shortId: r.short_id, label: runLabel(r), experiment: r.experiment, status: String(r.status), colorIndex: this.colorOf(r) })),
    );
  }

  /** Metrics every run logged at most once: shown as bars, not as charts of one dot. */
  private singleMetrics(): Set<string> {
    const counts = new Map<string, number>();
    for (const r of this.runs) for (const m of r.metrics ?? []) counts.set(m.name, Math.max(counts.get(m.name) ?? 0, m.count));
    return new Set([...counts].filter(([, n]) => n <= 1).map(([k]) => k));
  }

  private plotRuns(): PlotRun[] {
    return this.runs.map((r) => {
      const start = Date.parse(r.start_time);
      return {
        id: r.id,
        label: runLabel(r),
        shortId: r.short_id,
        colorIndex: this.colorOf(r),
        params: r.params ?? {},
        metrics: Object.fromEntries((r.metrics ?? []).map((m) => [m.name, m.last])),
        duration: r.duration_s ?? null,
        startTime: Number.isFinite(start) ? start : null,
        group: r.group ?? null,
      };
    });
  }

  /** Every field a plot can show: the runs' params, their metrics, the duration, the start, and the group when one has a group. */
  private allFields(): Field[] {
    const grouped = this.runs.some((r) => r.group);
    return [...this.paramNames().map(paramField), ...this.metricNames().map(metricField), ...RUN_FIELDS.filter((f) => f.key !== "group" || grouped)];
  }

  /** The metric plots fall back to: the address's `metric`, or the first. */
  private mainMetric(): string {
    const metrics = this.metricNames();
    return metrics.includes(this.metric) ? this.metric : metrics.find((m) => !isSystemMetric(m)) ?? metrics[0] ?? "";
  }

  /** The parallel coordinates' axes: the address's, or the params that differ and the metric. */
  private pcFields(): Field[] {
    const known = new Set(this.allFields().map((f) => f.key));
    if (this.plotKeys.axes) return this.plotKeys.axes.map(parseField).filter((f): f is Field => f !== null && known.has(f.key));
    const runs = this.runs;
    const params = this.paramNames();
    // Params that differ say the most; fall back to all of them.
    const differing = params.filter((p) => this.differs(runs.map((r) => (r.params ?? {})[p])));
    const metric = this.mainMetric();
    return [...(differing.length ? differing : params).slice(0, 12).map(paramField), ...(metric ? [metricField(metric)] : [])];
  }

  /** What the lines are coloured by: the address's `color`, else the metric the runs table sorts by, else the metric. */
  private pcColorField(): Field | null {
    const known = new Set(this.allFields().map((f) => f.key));
    const chosen = parseField(this.plotKeys.color ?? "");
    if (chosen && known.has(chosen.key)) return chosen;
    const sort = (getList(parseHash(runsHash()), "sort") ?? [])[0]?.replace(/^-/, "") ?? "";
    const metrics = this.metricNames();
    const sorted = sort.startsWith("metrics.") ? sort.slice("metrics.".length) : sort;
    if (metrics.includes(sorted)) return metricField(sorted);
    const m = this.mainMetric();
    return m ? metricField(m) : null;
  }

  private drawSingle(): void {
    if (!this.single || !this.singleCard) return;
    const single = [...this.singleMetrics()];
    this.singleCard.hidden = single.length === 0;
    const ordered = this.metricNames().filter((n) => single.includes(n));
    this.single.set(this.plotRuns(), ordered, this.settings.log);
  }

  private drawPlots(): void {
    this.drawSingle();
    if (!this.pc || !this.scatter || !this.pcColor || !this.pcAdd || !this.scX || !this.scY) return;
    const all = this.allFields();
    const runs = this.plotRuns();
    const axes = this.pcFields();
    const color = this.pcColorField();
    fieldSelect(this.pcColor, all, color?.key ?? "");
    const onAxes = new Set(axes.map((f) => f.key));
    fieldSelect(this.pcAdd, all.filter((f) => !onAxes.has(f.key)), "", "an axis…");
    this.pc.set(runs, axes, color, this.plotKeys.brush);

    const known = new Set(all.map((f) => f.key));
    const pick = (key: string | undefined, fallback: Field | null) => {
      const f = parseField(key ?? "");
      return f && known.has(f.key) ? f : fallback;
    };
    const params = this.paramNames();
    const metric = this.mainMetric();
    const legacyParam = params.includes(this.param) ? paramField(this.param) : null;
    const x = pick(this.plotKeys.sx, legacyParam ?? axes.find((f) => f.scope === "params") ?? (params[0] ? paramField(params[0]) : RUN_FIELDS[0]));
    const y = pick(this.plotKeys.sy, metric ? metricField(metric) : null);
    fieldSelect(this.scX, all, x?.key ?? "");
    fieldSelect(this.scY, all, y?.key ?? "");
    this.scatter.set(runs, x, y);
  }

  destroy(): void {
    this.abort.abort();
    this.unsub();
    this.refetch.cancel();
    for (const c of this.charts.values()) c.destroy();
    this.pc?.destroy();
    this.scatter?.destroy();
    this.media?.destroy();
    this.views.close();
  }
}

/** The plots' choices the address keeps (see the top of this file). */
interface PlotKeys {
  axes: string[] | null;
  /** The parallel coordinates' brushes (see `brushText`). */
  brush: string[];
  /** What colours the parallel coordinates (`pcolor=` in the address). */
  color?: string;
  sx?: string;
  sy?: string;
  /** The media key shown side by side. */
  media?: string;
}

function plotKeysFrom(route: Route): PlotKeys {
  const opt = (k: string) => getStr(route, k) || undefined;
  return { axes: getList(route, "axes"), brush: getList(route, "brush") ?? [], color: opt("pcolor"), sx: opt("sx"), sy: opt("sy"), media: opt("media") };
}

/** Fills a select with fields, grouped as params, metrics and run fields. */
function fieldSelect(sel: HTMLSelectElement, fields: Field[], value: string, placeholder?: string): void {
  const group = (label: string, scope: Field["scope"]) => {
    const fs = fields.filter((f) => f.scope === scope);
    return fs.length ? h("optgroup", { label }, fs.map((f) => h("option", { value: f.key }, fieldLabel(f)))) : null;
  };
  sel.replaceChildren();
  if (placeholder !== undefined) sel.append(h("option", { value: "" }, placeholder));
  for (const g of [group("params", "params"), group("metrics", "metrics"), group("run", "run")]) if (g) sel.append(g);
  sel.value = value;
  sel.disabled = fields.length === 0;
}

/** The grouping and labels the address holds (`group=`, `label=`; the band is a chart setting). */
function groupingFrom(route: Route, s: ChartSettings): Grouping {
  const g = getStr(route, "group");
  return {
    // A bare name is a parameter (as the runs table may write it).
    groupBy: !g || g === "group" || /^(params|tags)\./.test(g) ? g : "params." + g,
    band: s.band,
    labelKeys: getList(route, "label") ?? [],
    colorBy: /^(params|metrics|tags)\./.test(getStr(route, "color")) ? getStr(route, "color") : "",
  };
}

/** The run's group, if it has one. */
function groupOfRun(r: RunDetail): string | null {
  return r.group ?? null;
}

// A chart of one metric for one or more runs (uPlot). It asks the server for
// about two points per pixel (the server keeps each bucket's smallest and
// largest point, so spikes survive); dragging across the chart zooms by
// fetching that x range in detail; a double-click goes back to the whole run.

import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { api, ApiError, errorText, finite, isAbort, runPath, type Series } from "../api";
import { h, fill, throttle } from "../dom";
import { fmtAxis, fmtDuration, fmtNum } from "../format";
import { onThemeChange, seriesColor, theme, withAlpha } from "../theme";
import { getStr, type Route } from "../route";

export interface ChartSettings {
  x: "step" | "time";
  log: boolean;
  smooth: number; // EMA weight, 0 (none) to 0.99
}

/** The chart settings a page's address holds (`x`, `log`, `smooth`). */
export function chartSettingsFrom(route: Route): ChartSettings {
  const smooth = Number(getStr(route, "smooth"));
  return {
    x: getStr(route, "x") === "time" ? "time" : "step",
    log: getStr(route, "log") === "1",
    smooth: Number.isFinite(smooth) ? Math.min(0.99, Math.max(0, smooth)) : 0,
  };
}

/** How a chart shows its values, when they have a unit: the y axis's ticks
 *  (all at once, so their precision can follow their spacing) and one value. */
export interface ChartUnits {
  axis: (splits: number[]) => string[];
  value: (v: number) => string;
}

export interface ChartSource {
  runId: string;
  label: string;
  colorIndex: number;
}

const HEIGHT = 210;

let observer: IntersectionObserver | null = null;
const onVisible = new WeakMap<Element, () => void>();
function observe(el: Element, fn: () => void): void {
  if (!observer) {
    observer = new IntersectionObserver(
      (entries) => {
        for (const e of entries) {
          if (e.isIntersecting) {
            const f = onVisible.get(e.target);
            observer!.unobserve(e.target);
            onVisible.delete(e.target);
            f?.();
          }
        }
      },
      { rootMargin: "300px" },
    );
  }
  onVisible.set(el, fn);
  observer.observe(el);
}

/** Exponential moving average with bias correction (as TensorBoard smooths). */
export function ema(ys: (number | null)[], w: number): (number | null)[] {
  if (w <= 0) return ys;
  const out: (number | null)[] = new Array(ys.length);
  let acc = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i];
    if (y === null) {
      out[i] = null;
      continue;
    }
    acc = acc * w + (1 - w) * y;
    n++;
    out[i] = acc / (1 - Math.pow(w, n));
  }
  return out;
}

interface Loaded {
  source: ChartSource;
  x: number[];
  y: (number | null)[];
  total: number;
  downsampled: boolean;
}

export class MetricChart {
  el: HTMLElement;
  private plotEl: HTMLElement;
  private info: HTMLElement;
  private note: HTMLElement;
  private plot: uPlot | null = null;
  private loaded: Loaded[] = [];
  private zoom: [number, number] | null = null;
  private visible = false;
  private loading = false;
  private again = false;
  private destroyed = false;
  private abort = new AbortController();
  private ro: ResizeObserver;
  private unTheme: () => void;
  private lastWidth = 0;

  constructor(
    public metric: string,
    private sources: ChartSource[],
    private settings: ChartSettings,
    testid: "metric-chart" | "compare-chart",
    subtitle?: string,
    private units?: ChartUnits,
  ) {
    this.info = h("span", { class: "chart-info" });
    this.note = h("div", { class: "chart-note", hidden: true });
    this.plotEl = h("div", { class: "chart-plot", style: { minHeight: HEIGHT + 40 + "px" } });
    const resetBtn = h("button", { class: "btn small chart-reset", hidden: true, title: "Show the whole run (or double-click the chart)", onclick: () => this.resetZoom() }, "Reset zoom");
    this.el = h(
      "figure",
      { class: "chart", testid, "data-metric": metric, "data-points": "0", "data-series": "0" },
      h(
        "figcaption",
        { class: "chart-head" },
        h("span", { class: "chart-title", title: metric }, metric),
        subtitle ? h("span", { class: "chart-sub" }, subtitle) : null,
        h("span", { class: "spacer" }),
        this.info,
        resetBtn,
      ),
      this.plotEl,
      this.note,
    );
    this.ro = new ResizeObserver(() => {
      const w = this.width();
      if (this.plot && Math.abs(w - this.lastWidth) > 2) {
        this.lastWidth = w;
        this.plot.setSize({ width: w, height: HEIGHT });
      }
    });
    this.ro.observe(this.el);
    this.unTheme = onThemeChange(() => this.draw());
    observe(this.el, () => {
      this.visible = true;
      this.load();
    });
  }

  private width(): number {
    return Math.max(240, Math.floor(this.plotEl.clientWidth || this.el.clientWidth || 400));
  }

  setSettings(s: ChartSettings, refetch: boolean): void {
    this.settings = s;
    if (refetch) {
      this.zoom = null;
      this.load();
    } else {
      this.draw();
    }
  }

  setSources(sources: ChartSource[]): void {
    this.sources = sources;
    this.load();
  }

  /** New points were logged: fetch again (keeping the zoom), at most twice a second. */
  refresh(): void {
    if (this.visible) this.liveLoad();
  }

  private liveLoad = throttle(() => void this.load(), 500);

  private async load(): Promise<void> {
    if (!this.visible || this.destroyed) return;
    if (this.loading) {
      this.again = true;
      return;
    }
    this.loading = true;
    this.again = false;
    const maxPoints = Math.min(100000, Math.max(2, Math.round(this.width() * 2)));
    const zoom = this.zoom;
    const xAxis = this.settings.x;
    try {
      const results = await Promise.all(
        this.sources.map(async (src): Promise<Loaded | null> => {
          try {
            const s = await api<Series>(
              `${runPath(src.runId)}/metrics/${encodeURIComponent(this.metric)}`,
              { max_points: maxPoints, x: xAxis, from: zoom?.[0], to: zoom?.[1] },
              { signal: this.abort.signal },
            );
            const x: number[] = [];
            const y: (number | null)[] = [];
            const n = Math.min(s.x?.length ?? 0, s.y?.length ?? 0);
            for (let i = 0; i < n; i++) {
              const xv = finite(s.x[i]);
              if (xv === null) continue;
              x.push(xv);
              y.push(finite(s.y[i]));
            }
            return { source: src, x, y, total: s.total ?? n, downsampled: !!s.downsampled };
          } catch (e) {
            if (e instanceof ApiError && e.status === 404) return null; // this run lacks the metric
            throw e;
          }
        }),
      );
      if (this.destroyed || xAxis !== this.settings.x || zoom !== this.zoom) {
        this.loading = false;
        if (!this.destroyed) this.load();
        return;
      }
      this.loaded = results.filter((r): r is Loaded => r !== null);
      this.draw();
    } catch (e) {
      if (!isAbort(e)) this.showNote("Could not load the series: " + errorText(e));
    } finally {
      this.loading = false;
    }
    if (this.again && !this.destroyed) this.load();
  }

  private showNote(s: string | null): void {
    this.note.hidden = !s;
    this.note.textContent = s ?? "";
  }

  private draw(): void {
    if (this.destroyed || !this.visible) return;
    let positive = false;
    let anyFinite = false;
    for (const l of this.loaded) {
      for (const v of l.y) {
        if (v !== null) {
          anyFinite = true;
          if (v > 0) positive = true;
        }
      }
    }
    const log = this.settings.log && positive;
    const { tables, series } = this.seriesData(log);
    const points = this.loaded.reduce((a, l) => a + l.x.length, 0);
    this.showCounts(points);

    this.plot?.destroy();
    this.plot = null;
    if (!this.loaded.length || points === 0 || !anyFinite) {
      fill(
        this.plotEl,
        h(
          "div",
          { class: "chart-empty" },
          !this.loaded.length ? "No points yet." : points === 0 ? "No points in this range." : "Every value is NaN or infinite: nothing to draw.",
        ),
      );
      this.showNote(null);
      if (this.zoom) this.showNote("“Reset zoom” shows the whole run.");
      return;
    }
    this.showNote(
      this.settings.log && !positive ? "Log scale needs positive values: drawn on a linear scale." : null,
    );
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    this.plotEl.replaceChildren();
    this.lastWidth = this.width();
    this.plot = new uPlot(this.options(series, log), data, this.plotEl);
    if (this.zoom) this.plot.setScale("x", { min: this.zoom[0], max: this.zoom[1] });
  }

  /** uPlot's data and series of what was loaded: one line a run, or a faint raw line and its smoothed one. */
  private seriesData(log: boolean): { tables: uPlot.AlignedData[]; series: uPlot.Series[] } {
    const multi = this.sources.length > 1;
    const smooth = this.settings.smooth;
    const tables: uPlot.AlignedData[] = [];
    const series: uPlot.Series[] = [
      {
        label: this.settings.x === "time" ? "time" : "step",
        value: (u, v, _s, idx) => {
          const x = idx === null || idx === undefined ? lastOf(u, 0) : v;
          if (x === null || x === undefined) return "–";
          return this.settings.x === "time" ? fmtDuration(x) : fmtNum(x, 6);
        },
      },
    ];
    const fix = (ys: (number | null)[]) => (log ? ys.map((v) => (v !== null && v > 0 ? v : null)) : ys);
    // At rest (no cursor), the legend shows each series' last value.
    const fmtY = (u: uPlot, v: number | null, sidx: number, idx: number | null) => {
      const x = idx === null || idx === undefined ? lastOf(u, sidx) : v;
      if (x === null || x === undefined) return "–";
      return this.units ? this.units.value(x) : fmtNum(x, 5);
    };
    for (const l of this.loaded) {
      const color = seriesColor(l.source.colorIndex);
      const ys = fix(l.y);
      if (smooth > 0 && !multi) {
        tables.push([l.x, ys, ema(ys, smooth)] as uPlot.AlignedData);
        series.push({ label: l.source.label, stroke: withAlpha(color, 0.3), width: 1, value: fmtY, spanGaps: true, points: { show: false } });
        series.push({ label: "smoothed", stroke: color, width: 2, value: fmtY, spanGaps: true, points: { show: false } });
      } else {
        tables.push([l.x, smooth > 0 ? ema(ys, smooth) : ys] as uPlot.AlignedData);
        const sparse = l.x.length <= 60;
        series.push({
          label: l.source.label,
          stroke: color,
          width: multi ? 1.6 : 1.5,
          value: fmtY,
          spanGaps: true,
          points: sparse ? { show: true, size: 5, fill: color } : { show: false },
        });
      }
    }
    return { tables, series };
  }

  /** The chart's counts, in its head and in its data attributes (`points` drawn). */
  private showCounts(points: number): void {
    const total = this.loaded.reduce((a, l) => a + l.total, 0);
    this.el.dataset.points = String(points);
    this.el.dataset.total = String(total);
    this.el.dataset.series = String(this.loaded.length);
    const down = this.loaded.some((l) => l.downsampled);
    this.info.textContent =
      `${total.toLocaleString("en-US")} point${total === 1 ? "" : "s"}` + (down ? ` · ${points.toLocaleString("en-US")} drawn` : "") + (this.zoom ? " · zoomed" : "");
    this.el.querySelector<HTMLElement>(".chart-reset")!.hidden = !this.zoom;
  }

  private options(series: uPlot.Series[], log: boolean): uPlot.Options {
    const t = theme();
    const axis: uPlot.Axis = {
      stroke: t.muted,
      grid: { stroke: t.grid, width: 1 },
      ticks: { stroke: t.grid, width: 1, size: 4 },
      values: (_u, splits) => splits.map((v) => fmtAxis(v)),
    };
    const timeAxis = this.settings.x === "time";
    const xAxis: uPlot.Axis = timeAxis ? { ...axis, values: (_u, splits) => splits.map((v) => fmtSeconds(v, splits)) } : { ...axis };
    return {
      width: this.lastWidth,
      height: HEIGHT,
      scales: { x: { time: false }, y: log ? { distr: 3, log: 10 } : {} },
      axes: [xAxis, this.units ? { ...axis, size: 64, values: (_u, splits) => this.units!.axis(splits) } : { ...axis, size: 58 }],
      series,
      legend: { show: true, live: true },
      cursor: {
        drag: { x: true, y: false, setScale: false },
        bind: {
          dblclick: () => () => {
            this.resetZoom();
            return null;
          },
        },
      },
      hooks: {
        setSelect: [(u) => this.onSelect(u)],
      },
    };
  }

  private onSelect(u: uPlot): void {
    const sel = u.select;
    if (sel.width < 4) return;
    const from = u.posToVal(sel.left, "x");
    const to = u.posToVal(sel.left + sel.width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    if (!(to > from)) return;
    this.zoom = [from, to];
    u.setScale("x", { min: from, max: to });
    this.load();
  }

  resetZoom(): void {
    if (!this.zoom) return;
    this.zoom = null;
    this.load();
  }

  destroy(): void {
    this.destroyed = true;
    this.liveLoad.cancel();
    this.abort.abort();
    this.ro.disconnect();
    this.unTheme();
    observer?.unobserve(this.el);
    this.plot?.destroy();
    this.plot = null;
  }
}

/** Seconds since the start as axis labels: 30s, 4:30, 2h05. */
function fmtSeconds(v: number | null, splits: number[]): string {
  if (v === null || !Number.isFinite(v)) return "";
  const top = Math.max(...splits.map((x) => Math.abs(x)));
  const pad = (n: number) => String(Math.floor(n)).padStart(2, "0");
  if (top < 120) return fmtAxis(v) + "s";
  const sign = v < 0 ? "-" : "";
  const a = Math.abs(v);
  if (top < 7200) return `${sign}${Math.floor(a / 60)}:${pad(a % 60)}`;
  return `${sign}${Math.floor(a / 3600)}h${pad((a % 3600) / 60)}`;
}

/** The step/time, log and smoothing controls shared by a page's charts. */
export function chartControls(initial: ChartSettings, onChange: (s: ChartSettings, refetch: boolean) => void, withSmoothing = true): HTMLElement {
  const s = { ...initial };
  const change = (c: Partial<ChartSettings>, refetch: boolean) => {
    Object.assign(s, c);
    onChange({ ...s }, refetch);
  };
  const name = "xaxis-" + Math.random().toString(36).slice(2, 8);
  const radio = (value: "step" | "time", label: string) =>
    h(
      "label",
      { class: "seg" },
      h("input", {
        type: "radio",
        name,
        value,
        checked: s.x === value,
        onchange: () => change({ x: value }, true),
      }),
      " ",
      label,
    );
  const smoothVal = h("output", { class: "smooth-val" }, s.smooth.toFixed(2));
  const slider = h("input", {
    type: "range",
    min: "0",
    max: "0.99",
    step: "0.01",
    value: String(s.smooth),
    "aria-label": "Smoothing",
    oninput: () => {
      smoothVal.textContent = Number(slider.value).toFixed(2);
      change({ smooth: Number(slider.value) }, false);
    },
  });
  return h(
    "div",
    { class: "chart-controls", role: "group", "aria-label": "Chart options" },
    h("span", { class: "ctl", role: "radiogroup", "aria-label": "x axis" }, h("span", { class: "ctl-label" }, "x axis"), radio("step", "step"), radio("time", "time")),
    h(
      "label",
      { class: "ctl" },
      h("input", { type: "checkbox", checked: s.log, onchange: (e: Event) => change({ log: (e.target as HTMLInputElement).checked }, false) }),
      " log y",
    ),
    withSmoothing ? h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "smoothing"), slider, smoothVal) : null,
    h("span", { class: "ctl-hint muted" }, "drag to zoom · double-click to reset"),
  );
}

/** The last value of series `sidx` that is there. */
function lastOf(u: uPlot, sidx: number): number | null {
  const d = u.data[sidx] as (number | null | undefined)[];
  for (let i = d.length - 1; i >= 0; i--) if (d[i] !== null && d[i] !== undefined) return d[i] as number;
  return null;
}

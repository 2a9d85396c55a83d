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
import { band, type BandKind } from "./chart-bands";
import { ChartLegend, ChartTooltip } from "./chart-legend";
import type { ChartSync, Zoom } from "./chart-sync";

/** The x axis: `step`, `time` (since the run started), `wall` (wall-clock
 *  time) or `metrics.<name>` (another metric at the same step). */
export type XMode = string;

export interface ChartSettings {
  x: XMode;
  log: boolean;
  smooth: number; // EMA weight, 0 (none) to 0.99
  /** How a group's runs are drawn: their mean with a band of min to max, or of ±1 standard deviation. */
  band: BandKind;
}

/** Whether `x` is an x axis the series API takes. */
export function validX(x: string): boolean {
  return x === "step" || x === "time" || x === "wall" || (x.startsWith("metrics.") && x.length > "metrics.".length);
}

/** The chart settings a page's address holds (`x`, `log`, `smooth`, `band`). */
export function chartSettingsFrom(route: Route): ChartSettings {
  const smooth = Number(getStr(route, "smooth"));
  const x = getStr(route, "x");
  return {
    x: validX(x) ? x : "step",
    log: getStr(route, "log") === "1",
    smooth: Number.isFinite(smooth) ? Math.min(0.99, Math.max(0, smooth)) : 0,
    band: getStr(route, "band") === "std" ? "std" : "minmax",
  };
}

/** The address's fields of `s` (those that differ from the defaults). */
export function chartSettingsParams(s: ChartSettings): Record<string, string | undefined> {
  return {
    x: s.x !== "step" ? s.x : undefined,
    log: s.log ? "1" : undefined,
    smooth: s.smooth > 0 ? String(s.smooth) : undefined,
    band: s.band !== "minmax" ? s.band : undefined,
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
  /** Said on hover: the run's name and id, say. */
  title?: string;
  colorIndex: number;
  /** A colour of its own (coloured on a scale by a value), instead of the palette's. */
  color?: string;
  /** Runs of one group are drawn as their mean and a band. */
  group?: string | null;
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

interface NonFiniteMark {
  x: number;
  value: string;
}

interface Loaded {
  source: ChartSource;
  x: number[];
  y: (number | null)[];
  nonfinite: NonFiniteMark[];
  total: number;
  downsampled: boolean;
}

/** One drawn line: a run, or a group's mean (with `lo`/`hi` its band). */
interface Entry {
  key: string;
  label: string;
  title: string;
  color: string;
  x: number[];
  y: (number | null)[];
  lo?: (number | null)[];
  hi?: (number | null)[];
  runs: string[];
  nonfinite: NonFiniteMark[];
  /** Its uPlot series (the smoothed one when a raw line is drawn too). */
  sidx: number;
}

export class MetricChart {
  el: HTMLElement;
  private plotEl: HTMLElement;
  private info: HTMLElement;
  private note: HTMLElement;
  private alt: HTMLElement;
  private legend: ChartLegend;
  private tip = new ChartTooltip();
  private plot: uPlot | null = null;
  private loaded: Loaded[] = [];
  private entries: Entry[] = [];
  private zoom: Zoom = null;
  private hovering = false;
  private focused: string | null = null;
  private visible = false;
  private loading = false;
  private again = false;
  private destroyed = false;
  private abort = new AbortController();
  private ro: ResizeObserver;
  private unTheme: () => void;
  private unSync: () => void = () => {};
  private lastWidth = 0;

  constructor(
    public metric: string,
    private sources: ChartSource[],
    private settings: ChartSettings,
    testid: "metric-chart" | "compare-chart",
    subtitle?: string,
    private units?: ChartUnits,
    private sync?: ChartSync,
  ) {
    this.info = h("span", { class: "chart-info" });
    this.note = h("div", { class: "chart-note", hidden: true });
    const altId = "chart-alt-" + Math.random().toString(36).slice(2, 10);
    this.alt = h("div", { class: "sr-only", id: altId, testid: "chart-alt" });
    this.plotEl = h("div", { class: "chart-plot", role: "img", "aria-label": `Chart of ${metric}`, "aria-describedby": altId, style: { minHeight: HEIGHT + 10 + "px" } });
    this.legend = new ChartLegend((key) => this.setFocus(key));
    const resetBtn = h("button", { class: "btn small chart-reset", hidden: true, title: "Show the whole run (or double-click the chart)", onclick: () => this.resetZoom() }, "Reset zoom");
    this.el = h(
      "figure",
      { class: "chart", testid, "data-metric": metric, "data-points": "0", "data-series": "0", "data-hover": "" },
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
      this.legend.el,
      this.note,
      this.alt,
    );
    this.plotEl.addEventListener("mouseenter", () => (this.hovering = true));
    this.plotEl.addEventListener("mouseleave", () => {
      this.hovering = false;
      this.tip.hide();
      this.setFocus(null);
    });
    if (sync) {
      this.zoom = sync.zoom;
      this.unSync = sync.join(this);
    }
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
      this.sync?.setZoom(null, this);
      this.load();
    } else {
      this.draw();
    }
  }

  setSources(sources: ChartSource[]): void {
    this.sources = sources;
    this.load();
  }

  /** New labels or groups for the same runs: drawn again without fetching. */
  relabel(sources: ChartSource[]): void {
    const byId = new Map(sources.map((s) => [s.runId, s]));
    this.sources = sources;
    for (const l of this.loaded) l.source = byId.get(l.source.runId) ?? l.source;
    this.draw();
  }

  /** Another chart of the page zoomed (or went back to the whole run). */
  applyZoom(z: Zoom): void {
    if (z === this.zoom || (z && this.zoom && z[0] === this.zoom[0] && z[1] === this.zoom[1])) return;
    this.zoom = z;
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
            const nonfinite = (s.nonfinite ?? []).filter((m) => Number.isFinite(m.x));
            return { source: src, x, y, nonfinite, total: s.total ?? n, downsampled: !!s.downsampled };
          } catch (e) {
            // This run lacks the metric (or the one on the x axis).
            if (e instanceof ApiError && e.status === 404) return null;
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

  /** Which runs are not drawn because they lack the metric on the x axis. */
  private missingNote(): string | null {
    if (!this.settings.x.startsWith("metrics.")) return null;
    const have = new Set(this.loaded.map((l) => l.source.runId));
    const missing = this.sources.filter((s) => !have.has(s.runId));
    if (!missing.length) return null;
    const names = missing.slice(0, 3).map((s) => s.label).join(", ") + (missing.length > 3 ? ` and ${missing.length - 3} more` : "");
    return `Not drawn, as ${missing.length === 1 ? "it has" : "they have"} no \`${this.settings.x.slice(8)}\`: ${names}.`;
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
    this.entries = this.makeEntries(log);
    const { tables, series, bands } = this.seriesData();
    const points = this.loaded.reduce((a, l) => a + l.x.length, 0);
    this.showCounts(points);
    this.describe();
    this.legend.set(
      this.entries.map((e) => ({ key: e.key, label: e.label, title: e.title, color: e.color, value: this.fmtY(lastValue(e.y)) })),
    );

    this.plot?.destroy();
    this.plot = null;
    this.focused = null;
    this.tip.hide();
    if (!this.loaded.length || points === 0 || !anyFinite) {
      fill(
        this.plotEl,
        h(
          "div",
          { class: "chart-empty" },
          !this.loaded.length ? "No points yet." : points === 0 ? "No points in this range." : "Every value is NaN or infinite: nothing to draw.",
        ),
      );
      this.showNote(this.missingNote());
      if (this.zoom) this.showNote("“Reset zoom” shows the whole run.");
      return;
    }
    const notes = [this.settings.log && !positive ? "Log scale needs positive values: drawn on a linear scale." : null, this.missingNote()];
    this.showNote(notes.filter((n) => n !== null).join(" ") || null);
    const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
    this.plotEl.replaceChildren();
    this.lastWidth = this.width();
    this.plot = new uPlot(this.options(series, bands, log), data, this.plotEl);
    this.plot.over.appendChild(this.tip.el);
    if (this.zoom) this.plot.setScale("x", { min: this.zoom[0], max: this.zoom[1] });
  }

  /** What is drawn: a line per run, but the runs of a group (two or more of
   *  them) as one line of their mean with a band. */
  private makeEntries(log: boolean): Entry[] {
    const fix = (ys: (number | null)[]) => (log ? ys.map((v) => (v !== null && v > 0 ? v : null)) : ys);
    const smooth = this.settings.smooth;
    const single = this.loaded.length === 1;
    const groups = new Map<string, Loaded[]>();
    for (const l of this.loaded) {
      const g = l.source.group;
      if (g === null || g === undefined) continue;
      const list = groups.get(g) ?? [];
      list.push(l);
      groups.set(g, list);
    }
    const out: Entry[] = [];
    const done = new Set<string>();
    for (const l of this.loaded) {
      const g = l.source.group;
      const members = g === null || g === undefined ? undefined : groups.get(g);
      if (members && members.length > 1) {
        if (done.has(g!)) continue;
        done.add(g!);
        const lines = members.map((m) => ({ x: m.x, y: smooth > 0 ? ema(fix(m.y), smooth) : fix(m.y) }));
        const b = band(lines, this.settings.band, Math.max(200, this.width()));
        const lo = log ? b.lo.map((v) => (v !== null && v > 0 ? v : null)) : b.lo;
        out.push({
          key: "group:" + g,
          label: `${g} (${members.length})`,
          title: `${g}: mean of ${members.length} runs, ${this.settings.band === "std" ? "±1 standard deviation" : "min to max"} shaded\n` + members.map((m) => m.source.title ?? m.source.label).join("\n"),
          color: members[0].source.color ?? seriesColor(members[0].source.colorIndex),
          x: b.x,
          y: b.mean,
          lo,
          hi: b.hi,
          runs: members.map((m) => m.source.runId),
          nonfinite: members.flatMap((m) => m.nonfinite.map((n) => ({ ...n, label: m.source.label }))),
          sidx: 0,
        });
        continue;
      }
      const ys = fix(l.y);
      out.push({
        key: l.source.runId,
        label: l.source.label,
        title: l.source.title ?? l.source.label,
        color: l.source.color ?? seriesColor(l.source.colorIndex),
        x: l.x,
        // A single run keeps its raw line beside the smoothed one (see seriesData).
        y: smooth > 0 && !single ? ema(ys, smooth) : ys,
        runs: [l.source.runId],
        nonfinite: l.nonfinite,
        sidx: 0,
      });
    }
    return out;
  }

  /** uPlot's data, series and bands of the entries. */
  private seriesData(): { tables: uPlot.AlignedData[]; series: uPlot.Series[]; bands: uPlot.Band[] } {
    const smooth = this.settings.smooth;
    const tables: uPlot.AlignedData[] = [];
    const series: uPlot.Series[] = [{ label: this.xName() }];
    const bands: uPlot.Band[] = [];
    const many = this.entries.length > 1;
    for (const e of this.entries) {
      if (e.lo && e.hi) {
        tables.push([e.x, e.y, e.lo, e.hi] as uPlot.AlignedData);
        e.sidx = series.length;
        series.push({ label: e.label, stroke: e.color, width: 2, spanGaps: true, points: { show: false } });
        series.push({ label: e.label + " low", stroke: "transparent", width: 0, spanGaps: true, points: { show: false } });
        series.push({ label: e.label + " high", stroke: "transparent", width: 0, spanGaps: true, points: { show: false } });
        bands.push({ series: [series.length - 1, series.length - 2], fill: withAlpha(e.color, 0.18) });
      } else if (smooth > 0 && !many) {
        tables.push([e.x, e.y, ema(e.y, smooth)] as uPlot.AlignedData);
        series.push({ label: e.label, stroke: withAlpha(e.color, 0.3), width: 1, spanGaps: true, points: { show: false } });
        e.sidx = series.length;
        series.push({ label: "smoothed", stroke: e.color, width: 2, spanGaps: true, points: { show: false } });
      } else {
        tables.push([e.x, e.y] as uPlot.AlignedData);
        e.sidx = series.length;
        const sparse = e.x.length <= 60;
        series.push({
          label: e.label,
          stroke: e.color,
          width: many ? 1.6 : 1.5,
          spanGaps: true,
          points: sparse ? { show: true, size: 5, fill: e.color } : { show: false },
        });
      }
    }
    return { tables, series, bands };
  }

  private xName(): string {
    const x = this.settings.x;
    return x === "time" ? "time" : x === "wall" ? "wall time" : x.startsWith("metrics.") ? x.slice("metrics.".length) : "step";
  }

  private fmtX(v: number): string {
    const x = this.settings.x;
    if (x === "time") return fmtDuration(v);
    if (x === "wall") return new Date(v * 1000).toLocaleString();
    if (x === "step") return fmtNum(Math.round(v), 12);
    return fmtNum(v, 6);
  }

  private fmtY(v: number | null): string {
    if (v === null) return "–";
    return this.units ? this.units.value(v) : fmtNum(v, 5);
  }

  /** The chart's counts, in its head and in its data attributes (`points` drawn). */
  private showCounts(points: number): void {
    const total = this.loaded.reduce((a, l) => a + l.total, 0);
    this.el.dataset.points = String(points);
    this.el.dataset.total = String(total);
    this.el.dataset.series = String(this.loaded.length);
    this.el.dataset.lines = String(this.entries.length);
    this.el.dataset.bands = String(this.entries.filter((e) => e.lo).length);
    this.el.dataset.nonfinite = String(this.entries.reduce((a, e) => a + e.nonfinite.length, 0));
    const down = this.loaded.some((l) => l.downsampled);
    this.info.textContent =
      `${total.toLocaleString("en-US")} point${total === 1 ? "" : "s"}` + (down ? ` · ${points.toLocaleString("en-US")} drawn` : "") + (this.zoom ? " · zoomed" : "");
    this.el.querySelector<HTMLElement>(".chart-reset")!.hidden = !this.zoom;
  }

  /** The text alternative: a sentence, and a table of each line's first and last points, range and NaN/inf. */
  private describe(): void {
    const xs = this.entries.flatMap((e) => (e.x.length ? [e.x[0], e.x[e.x.length - 1]] : []));
    const span = xs.length ? ` over ${this.xName()} ${this.fmtX(Math.min(...xs))} to ${this.fmtX(Math.max(...xs))}` : "";
    const odd = this.entries.reduce((a, e) => a + e.nonfinite.length, 0);
    const sentence =
      `${this.metric}: ${this.entries.length} line${this.entries.length === 1 ? "" : "s"}${span}` +
      (this.zoom ? " (zoomed)" : "") +
      (odd ? `; ${odd} NaN or infinite value${odd === 1 ? "" : "s"} marked` : "") +
      ".";
    this.plotEl.setAttribute("aria-label", sentence);
    const rows = this.entries.map((e) => {
      let min: number | null = null;
      let max: number | null = null;
      for (const v of e.y) {
        if (v === null) continue;
        if (min === null || v < min) min = v;
        if (max === null || v > max) max = v;
      }
      const odd = e.nonfinite.map((n) => `${n.value} at ${this.xName()} ${this.fmtX(n.x)}`).join(", ");
      return h(
        "tr",
        null,
        h("th", { scope: "row" }, e.label),
        h("td", null, this.fmtY(lastValue(e.y))),
        h("td", null, this.fmtY(min)),
        h("td", null, this.fmtY(max)),
        h("td", null, odd || "none"),
      );
    });
    this.alt.replaceChildren(
      h("p", null, sentence),
      h(
        "table",
        null,
        h("caption", null, `${this.metric}, by line`),
        h("thead", null, h("tr", null, ["line", "last", "lowest", "highest", "NaN or infinite"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", null, rows),
      ),
    );
  }

  private options(series: uPlot.Series[], bands: uPlot.Band[], log: boolean): uPlot.Options {
    const t = theme();
    const axis: uPlot.Axis = {
      stroke: t.muted,
      grid: { stroke: t.grid, width: 1 },
      ticks: { stroke: t.grid, width: 1, size: 4 },
      values: (_u, splits) => splits.map((v) => fmtAxis(v)),
    };
    const mode = this.settings.x;
    // Room for one line of tick labels (uPlot leaves 50 px); wall-clock ticks take two.
    const xAxis: uPlot.Axis =
      mode === "time"
        ? { ...axis, size: 30, values: (_u, splits) => splits.map((v) => fmtSeconds(v, splits)) }
        : mode === "wall"
          ? { stroke: axis.stroke, grid: axis.grid, ticks: axis.ticks }
          : { ...axis, size: 30 };
    return {
      width: this.lastWidth,
      height: HEIGHT,
      scales: { x: { time: mode === "wall" }, y: log ? { distr: 3, log: 10 } : {} },
      axes: [xAxis, this.units ? { ...axis, size: 64, values: (_u, splits) => this.units!.axis(splits) } : { ...axis, size: 58 }],
      series,
      bands,
      legend: { show: false },
      focus: { alpha: 0.18 },
      cursor: {
        sync: this.sync ? { key: this.sync.key, scales: ["x", null] } : undefined,
        focus: { prox: -1 },
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
        setCursor: [(u) => this.onCursor(u)],
        draw: [(u) => this.drawMarks(u)],
      },
    };
  }

  /** The tooltip: each line's value at the cursor's x, nearest the cursor first; the nearest line highlighted. */
  private onCursor(u: uPlot): void {
    const left = u.cursor.left ?? -1;
    const top = u.cursor.top ?? -1;
    if (!this.hovering || left < 0 || top < 0) {
      this.tip.hide();
      if (!this.hovering) return;
      this.setFocus(null);
      return;
    }
    const xv = u.posToVal(left, "x");
    this.tip.el.dataset.y = String(u.posToVal(top, "y"));
    const min = u.scales.x.min ?? 0;
    const max = u.scales.x.max ?? 1;
    const width = u.over.clientWidth || 1;
    const perPx = (max - min) / width;
    const rows: { e: Entry; v: number; lo: number | null; hi: number | null; dist: number }[] = [];
    const notes: string[] = [];
    for (const e of this.entries) {
      const i = nearest(e.x, xv);
      if (i < 0) continue;
      if (xv < e.x[0] - 8 * perPx || xv > e.x[e.x.length - 1] + 8 * perPx) continue;
      const k = presentNear(e.y, i);
      if (k >= 0) {
        const v = e.y[k]!;
        rows.push({ e, v, lo: e.lo?.[k] ?? null, hi: e.hi?.[k] ?? null, dist: Math.abs(u.valToPos(v, "y") - top) });
      }
      for (const n of e.nonfinite) {
        if (Math.abs(n.x - xv) <= 6 * perPx) notes.push(`${(n as { label?: string }).label ?? e.label}: ${n.value} at ${this.xName()} ${this.fmtX(n.x)}`);
      }
    }
    rows.sort((a, b) => a.dist - b.dist);
    this.setFocus(rows.length ? rows[0].e.key : null);
    if (!rows.length && !notes.length) {
      this.tip.hide();
      return;
    }
    this.tip.show(
      left,
      top,
      width,
      u.over.clientHeight,
      `${this.xName()} ${this.fmtX(xv)}`,
      rows.map((r) => ({
        key: r.e.key,
        label: r.e.label,
        color: r.e.color,
        value: this.fmtY(r.v) + (r.lo !== null && r.hi !== null ? ` (${this.fmtY(r.lo)} – ${this.fmtY(r.hi)})` : ""),
      })),
      notes.slice(0, 6),
    );
  }

  /** Highlights the line `key` (the others dimmed), or none. */
  private setFocus(key: string | null): void {
    if (key === this.focused) return;
    this.focused = key;
    this.el.dataset.hover = key ?? "";
    for (const li of this.legend.el.querySelectorAll<HTMLElement>(".legend-item")) li.classList.toggle("focused", li.dataset.key === key);
    const e = key ? this.entries.find((x) => x.key === key) : undefined;
    this.plot?.setSeries(e ? e.sidx : null, { focus: true });
  }

  /** NaN and infinities where they were logged: a dashed line in the run's
   *  colour, a triangle up (+inf) at the top, down (-inf) at the bottom, a
   *  ring (NaN) at the top. */
  private drawMarks(u: uPlot): void {
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    const dpr = window.devicePixelRatio || 1;
    const r = 4.5 * dpr;
    ctx.save();
    for (const e of this.entries) {
      if (this.focused && this.focused !== e.key) ctx.globalAlpha = 0.25;
      else ctx.globalAlpha = 1;
      for (const n of e.nonfinite) {
        const cx = u.valToPos(n.x, "x", true);
        if (!(cx >= left - 1 && cx <= left + width + 1)) continue;
        ctx.strokeStyle = e.color;
        ctx.fillStyle = e.color;
        ctx.lineWidth = 1 * dpr;
        ctx.setLineDash([3 * dpr, 3 * dpr]);
        ctx.beginPath();
        ctx.moveTo(cx, top);
        ctx.lineTo(cx, top + height);
        ctx.stroke();
        ctx.setLineDash([]);
        ctx.beginPath();
        if (n.value === "Infinity") {
          ctx.moveTo(cx, top);
          ctx.lineTo(cx - r, top + 2 * r);
          ctx.lineTo(cx + r, top + 2 * r);
          ctx.closePath();
          ctx.fill();
        } else if (n.value === "-Infinity") {
          ctx.moveTo(cx, top + height);
          ctx.lineTo(cx - r, top + height - 2 * r);
          ctx.lineTo(cx + r, top + height - 2 * r);
          ctx.closePath();
          ctx.fill();
        } else {
          ctx.lineWidth = 2 * dpr;
          ctx.arc(cx, top + r + dpr, r, 0, 2 * Math.PI);
          ctx.stroke();
        }
      }
    }
    ctx.restore();
  }

  private onSelect(u: uPlot): void {
    const sel = u.select;
    if (sel.width < 4) return;
    const from = u.posToVal(sel.left, "x");
    const to = u.posToVal(sel.left + sel.width, "x");
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    if (!(to > from)) return;
    this.zoom = [from, to];
    this.sync?.setZoom(this.zoom, this);
    u.setScale("x", { min: from, max: to });
    this.load();
  }

  resetZoom(): void {
    if (!this.zoom) return;
    this.zoom = null;
    this.sync?.setZoom(null, this);
    this.load();
  }

  destroy(): void {
    this.destroyed = true;
    this.liveLoad.cancel();
    this.abort.abort();
    this.ro.disconnect();
    this.unTheme();
    this.unSync();
    observer?.unobserve(this.el);
    this.plot?.destroy();
    this.plot = null;
  }
}

/** The index of the x nearest `v` in ascending `xs`, or -1 when there is none. */
function nearest(xs: number[], v: number): number {
  if (!xs.length) return -1;
  let lo = 0;
  let hi = xs.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 && Math.abs(xs[lo - 1] - v) <= Math.abs(xs[lo] - v) ? lo - 1 : lo;
}

/** `i`, or the nearest index within three of it whose value is there; -1 if none. */
function presentNear(ys: (number | null)[], i: number): number {
  for (let d = 0; d <= 3; d++) {
    if (i - d >= 0 && ys[i - d] !== null) return i - d;
    if (i + d < ys.length && ys[i + d] !== null) return i + d;
  }
  return -1;
}

/** The last value that is there. */
function lastValue(ys: (number | null)[]): number | null {
  for (let i = ys.length - 1; i >= 0; i--) if (ys[i] !== null) return ys[i];
  return null;
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

/** The x axis, log and smoothing controls shared by a page's charts;
 *  `xMetrics` are the metrics offered as the x axis. */
export function chartControls(
  initial: ChartSettings,
  onChange: (s: ChartSettings, refetch: boolean) => void,
  withSmoothing = true,
  xMetrics: string[] = [],
): HTMLElement {
  const s = { ...initial };
  const change = (c: Partial<ChartSettings>, refetch: boolean) => {
    Object.assign(s, c);
    onChange({ ...s }, refetch);
  };
  const metrics = s.x.startsWith("metrics.") && !xMetrics.includes(s.x.slice(8)) ? [...xMetrics, s.x.slice(8)] : xMetrics;
  const xSelect = h(
    "select",
    { "aria-label": "x axis", testid: "chart-x", onchange: () => change({ x: xSelect.value }, true) },
    h("option", { value: "step" }, "step"),
    h("option", { value: "time" }, "relative time"),
    h("option", { value: "wall" }, "wall-clock time"),
    metrics.length ? h("optgroup", { label: "a metric" }, metrics.map((m) => h("option", { value: "metrics." + m }, m))) : null,
  );
  xSelect.value = s.x;
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
    h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "x axis"), xSelect),
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

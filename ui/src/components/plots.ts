// Parallel coordinates (params → a metric) and a scatter (a param against a
// metric), drawn on <canvas>. Numeric axes are scaled between their smallest
// and largest value; categorical ones place each value at evenly spaced ticks.

import { h } from "../dom";
import { fmtValue } from "../format";
import { canvasFont, onThemeChange, seriesColor, theme, withAlpha } from "../theme";
import { ellipsize, makeAxis, setupCanvas, type Axis } from "./canvas";

export interface PlotRun {
  id: string;
  label: string;
  colorIndex: number;
  params: Record<string, unknown>;
  metrics: Record<string, unknown>;
}

abstract class CanvasPlot {
  el: HTMLElement;
  protected canvas: HTMLCanvasElement;
  protected tip: HTMLElement;
  protected ro: ResizeObserver;
  private unTheme: () => void;
  private lastW = 0;

  constructor(testid: string, label: string, protected height: number) {
    this.canvas = h("canvas", { role: "img", "aria-label": label });
    this.tip = h("div", { class: "plot-tip", hidden: true });
    this.el = h("div", { class: "plot", testid }, this.canvas, this.tip);
    this.canvas.addEventListener("mousemove", (e) => this.hover(e));
    this.canvas.addEventListener("mouseleave", () => this.hover(null));
    this.ro = new ResizeObserver(() => {
      const w = this.el.clientWidth;
      if (Math.abs(w - this.lastW) > 2) {
        this.lastW = w;
        this.draw();
      }
    });
    this.ro.observe(this.el);
    this.unTheme = onThemeChange(() => this.draw());
  }

  protected width(): number {
    return Math.max(300, this.el.clientWidth || 600);
  }

  abstract draw(): void;
  protected abstract hover(e: MouseEvent | null): void;

  protected showTip(x: number, y: number, lines: string[]): void {
    this.tip.replaceChildren(...lines.map((l, i) => h("div", { class: i === 0 ? "tip-title" : undefined }, l)));
    this.tip.hidden = false;
    const w = this.width();
    this.tip.style.left = Math.min(x + 12, w - 220) + "px";
    this.tip.style.top = y + 12 + "px";
  }

  protected hideTip(): void {
    this.tip.hidden = true;
  }

  destroy(): void {
    this.ro.disconnect();
    this.unTheme();
  }
}

/** Where the parallel coordinates' axes stand: their top and bottom, the space between two, and positions. */
interface PcGeometry {
  top: number;
  bottom: number;
  span: number;
  xAt(i: number): number;
  yAt(p: number): number;
}

export class ParallelCoords extends CanvasPlot {
  private runs: PlotRun[] = [];
  private params: string[] = [];
  private metric = "";
  private axes: Axis[] = [];
  private lines: { run: PlotRun; pts: ([number, number] | null)[] }[] = [];
  private hot: string | null = null;

  constructor() {
    super("parallel-coords", "Parallel coordinates of params and a metric", 340);
  }

  set(runs: PlotRun[], params: string[], metric: string): void {
    this.runs = runs;
    this.params = params;
    this.metric = metric;
    this.draw();
  }

  draw(): void {
    const W = this.width();
    const H = this.height;
    const ctx = setupCanvas(this.canvas, W, H);
    const t = theme();
    ctx.clearRect(0, 0, W, H);
    ctx.font = canvasFont(11);
    const names = [...this.params, this.metric].filter((n) => n !== "");
    if (names.length < 2 || !this.runs.length) {
      ctx.fillStyle = t.muted;
      ctx.fillText(this.runs.length ? "Needs at least one param and a metric." : "No runs.", 16, 24);
      this.el.dataset.axes = "0";
      return;
    }
    this.axes = [
      ...this.params.map((p) => makeAxis(p, this.runs.map((r) => r.params[p]))),
      makeAxis(this.metric, this.runs.map((r) => r.metrics[this.metric]), true),
    ];
    this.el.dataset.axes = String(this.axes.length);
    const left = 56;
    const right = 70;
    const top = 40;
    const bottom = 20;
    const span = this.axes.length > 1 ? (W - left - right) / (this.axes.length - 1) : 0;
    const g: PcGeometry = { top, bottom: H - bottom, span, xAt: (i) => left + i * span, yAt: (p) => top + (1 - p) * (H - top - bottom) };
    this.drawLines(ctx, g);
    // axes over the lines
    this.axes.forEach((a, i) => this.drawAxis(ctx, g, a, i));
    this.drawRunLabels(ctx);
  }

  /** A line a run through its values on each axis, the hovered one on top. */
  private drawLines(ctx: CanvasRenderingContext2D, g: PcGeometry): void {
    this.lines = this.runs.map((run) => ({
      run,
      pts: this.axes.map((a, i) => {
        const v = i === this.axes.length - 1 ? run.metrics[this.metric] : run.params[a.name];
        const p = a.pos(v);
        return p === null ? null : ([g.xAt(i), g.yAt(p)] as [number, number]);
      }),
    }));
    const drawLine = (l: (typeof this.lines)[number], width: number, alpha: number) => {
      ctx.strokeStyle = withAlpha(seriesColor(l.run.colorIndex), alpha);
      ctx.lineWidth = width;
      ctx.beginPath();
      let pen = false;
      for (const p of l.pts) {
        if (!p) {
          pen = false;
          continue;
        }
        if (pen) ctx.lineTo(p[0], p[1]);
        else ctx.moveTo(p[0], p[1]);
        pen = true;
      }
      ctx.stroke();
      for (const p of l.pts) {
        if (!p) continue;
        ctx.fillStyle = withAlpha(seriesColor(l.run.colorIndex), alpha);
        ctx.beginPath();
        ctx.arc(p[0], p[1], width + 1, 0, Math.PI * 2);
        ctx.fill();
      }
    };
    for (const l of this.lines) if (l.run.id !== this.hot) drawLine(l, 1.6, this.hot ? 0.3 : 0.85);
    const hotLine = this.lines.find((l) => l.run.id === this.hot);
    if (hotLine) drawLine(hotLine, 3, 1);
  }

  /** Axis `i`: its line, its name and kind above it, its ticks with haloed labels. */
  private drawAxis(ctx: CanvasRenderingContext2D, g: PcGeometry, a: Axis, i: number): void {
    const t = theme();
    const last = this.axes.length - 1;
    const x = g.xAt(i);
    ctx.strokeStyle = t.axis;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x, g.top);
    ctx.lineTo(x, g.bottom);
    ctx.stroke();
    ctx.fillStyle = t.fg;
    ctx.font = canvasFont(12);
    ctx.textAlign = i === 0 ? "left" : i === last ? "right" : "center";
    const label = ellipsize(ctx, a.name, Math.max(40, g.span - 10));
    ctx.fillText(label, i === 0 ? x - 8 : i === last ? x + 8 : x, g.top - 22);
    ctx.fillStyle = t.muted;
    ctx.font = canvasFont(10);
    ctx.fillText(i === last ? "metric" : a.kind === "cat" ? "param (categories)" : "param", i === 0 ? x - 8 : i === last ? x + 8 : x, g.top - 9);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const ticks = a.ticks();
    const step = Math.max(1, Math.ceil(ticks.length / 12));
    ticks.forEach((tk, j) => {
      if (j % step !== 0) return;
      const y = g.yAt(tk.at);
      ctx.strokeStyle = t.axis;
      ctx.beginPath();
      ctx.moveTo(x - 3, y);
      ctx.lineTo(x + 3, y);
      ctx.stroke();
      const s = ellipsize(ctx, tk.label, Math.max(30, g.span / 2 - 8));
      // A halo so the labels stay readable over the lines.
      ctx.lineWidth = 3;
      ctx.strokeStyle = t.panel;
      ctx.strokeText(s, x - 5, y);
      ctx.fillStyle = t.muted;
      ctx.fillText(s, x - 5, y);
    });
    ctx.textBaseline = "alphabetic";
  }

  /** Each run's label at its end on the metric axis. */
  private drawRunLabels(ctx: CanvasRenderingContext2D): void {
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.font = canvasFont(11);
    for (const l of this.lines) {
      const p = l.pts[l.pts.length - 1];
      if (!p) continue;
      ctx.fillStyle = seriesColor(l.run.colorIndex);
      ctx.fillText(l.run.label, p[0] + 6, p[1]);
    }
    ctx.textBaseline = "alphabetic";
  }

  protected hover(e: MouseEvent | null): void {
    let best: PlotRun | null = null;
    if (e) {
      const r = this.canvas.getBoundingClientRect();
      const mx = e.clientX - r.left;
      const my = e.clientY - r.top;
      let bestD = 8;
      for (const l of this.lines) {
        for (let i = 0; i + 1 < l.pts.length; i++) {
          const a = l.pts[i];
          const b = l.pts[i + 1];
          if (!a || !b) continue;
          const d = segDist(mx, my, a, b);
          if (d < bestD) {
            bestD = d;
            best = l.run;
          }
        }
        for (const p of l.pts) {
          if (p && Math.hypot(p[0] - mx, p[1] - my) < bestD) {
            bestD = Math.hypot(p[0] - mx, p[1] - my);
            best = l.run;
          }
        }
      }
      if (best) {
        const b = best;
        this.showTip(mx, my, [
          b.label,
          ...this.params.map((p) => `${p}: ${fmtValue(b.params[p])}`),
          `${this.metric}: ${fmtValue(b.metrics[this.metric])}`,
        ]);
      } else this.hideTip();
    } else this.hideTip();
    const id = best?.id ?? null;
    if (id !== this.hot) {
      this.hot = id;
      this.draw();
    }
  }
}

function segDist(px: number, py: number, a: [number, number], b: [number, number]): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const l2 = dx * dx + dy * dy;
  const t = l2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - a[0]) * dx + (py - a[1]) * dy) / l2));
  return Math.hypot(px - (a[0] + t * dx), py - (a[1] + t * dy));
}

/** Where the scatter's plot area is, and where a position (0 to 1) on each axis falls. */
interface ScatterGeometry {
  left: number;
  top: number;
  pw: number;
  ph: number;
  xPos(p: number): number;
  yPos(p: number): number;
}

export class Scatter extends CanvasPlot {
  private runs: PlotRun[] = [];
  private xName = "";
  private yName = "";
  private pts: { run: PlotRun; x: number; y: number }[] = [];

  constructor() {
    super("scatter", "Scatter of a param against a metric", 340);
  }

  set(runs: PlotRun[], param: string, metric: string): void {
    this.runs = runs;
    this.xName = param;
    this.yName = metric;
    this.draw();
  }

  draw(): void {
    const W = Math.min(this.width(), 900);
    const H = this.height;
    const ctx = setupCanvas(this.canvas, W, H);
    const t = theme();
    ctx.clearRect(0, 0, W, H);
    ctx.font = canvasFont(11);
    this.pts = [];
    if (!this.xName || !this.yName) {
      ctx.fillStyle = t.muted;
      ctx.fillText("Choose a param and a metric.", 16, 24);
      this.el.dataset.points = "0";
      return;
    }
    const xa = makeAxis(this.xName, this.runs.map((r) => r.params[this.xName]));
    const ya = makeAxis(this.yName, this.runs.map((r) => r.metrics[this.yName]), true);
    const left = 64;
    const right = 24;
    const top = 16;
    const bottom = 44;
    const pw = W - left - right;
    const ph = H - top - bottom;
    const g: ScatterGeometry = {
      left,
      top,
      pw,
      ph,
      // For categories, keep the points off the plot's edges.
      xPos: (p) => left + (xa.kind === "cat" ? (xa.cats.length === 1 ? 0.5 : 0.06 + p * 0.88) : 0.04 + p * 0.92) * pw,
      yPos: (p) => top + (1 - (0.04 + p * 0.92)) * ph,
    };
    this.drawFrame(ctx, g, xa, ya);
    this.drawPoints(ctx, g, xa, ya);
    this.el.dataset.points = String(this.pts.length);
    const missing = this.runs.length - this.pts.length;
    if (missing > 0) {
      ctx.fillStyle = t.muted;
      ctx.textAlign = "right";
      ctx.textBaseline = "top";
      ctx.fillText(`${missing} run${missing === 1 ? "" : "s"} without both values`, left + pw - 4, top + 4);
    }
  }

  /** The grid, the ticks and their labels, the box, and the axes' names. */
  private drawFrame(ctx: CanvasRenderingContext2D, g: ScatterGeometry, xa: Axis, ya: Axis): void {
    const t = theme();
    const { left, top, pw, ph } = g;
    ctx.strokeStyle = t.grid;
    ctx.fillStyle = t.muted;
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const tk of ya.ticks()) {
      const y = g.yPos(tk.at);
      if (y < top - 1 || y > top + ph + 1) continue;
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + pw, y);
      ctx.stroke();
      ctx.fillText(tk.label, left - 6, y);
    }
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const xt = xa.ticks();
    const every = Math.max(1, Math.ceil(xt.length / Math.max(1, Math.floor(pw / 70))));
    xt.forEach((tk, i) => {
      const x = g.xPos(tk.at);
      if (x < left - 1 || x > left + pw + 1) return;
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + ph);
      ctx.stroke();
      if (i % every === 0) ctx.fillText(ellipsize(ctx, tk.label, 70 * every - 6), x, top + ph + 6);
    });
    ctx.strokeStyle = t.axis;
    ctx.strokeRect(left + 0.5, top + 0.5, pw, ph);
    ctx.fillStyle = t.fg;
    ctx.font = canvasFont(12);
    ctx.fillText(ellipsize(ctx, this.xName + (xa.kind === "cat" ? " (categories)" : ""), pw), left + pw / 2, top + ph + 24);
    ctx.save();
    ctx.translate(14, top + ph / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText(ellipsize(ctx, this.yName, ph), 0, 0);
    ctx.restore();
  }

  /** A dot a run that has both values, labelled when there are few; each goes into `pts` for hovering. */
  private drawPoints(ctx: CanvasRenderingContext2D, g: ScatterGeometry, xa: Axis, ya: Axis): void {
    const t = theme();
    ctx.font = canvasFont(11);
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    for (const run of this.runs) {
      const px = xa.pos(run.params[this.xName]);
      const py = ya.pos(run.metrics[this.yName]);
      if (px === null || py === null) continue;
      const x = g.xPos(px);
      const y = g.yPos(py);
      this.pts.push({ run, x, y });
      const c = seriesColor(run.colorIndex);
      ctx.fillStyle = withAlpha(c, 0.85);
      ctx.strokeStyle = t.panel;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.arc(x, y, 5.5, 0, Math.PI * 2);
      ctx.fill();
      ctx.stroke();
      if (this.runs.length <= 30) {
        ctx.fillStyle = c;
        const w = ctx.measureText(run.label).width;
        if (x + 8 + w > g.left + g.pw) {
          ctx.textAlign = "right";
          ctx.fillText(run.label, x - 8, y);
          ctx.textAlign = "left";
        } else ctx.fillText(run.label, x + 8, y);
      }
    }
  }

  protected hover(e: MouseEvent | null): void {
    if (!e) return this.hideTip();
    const r = this.canvas.getBoundingClientRect();
    const mx = e.clientX - r.left;
    const my = e.clientY - r.top;
    let best: (typeof this.pts)[number] | null = null;
    let bestD = 10;
    for (const p of this.pts) {
      const d = Math.hypot(p.x - mx, p.y - my);
      if (d < bestD) {
        bestD = d;
        best = p;
      }
    }
    if (!best) return this.hideTip();
    this.showTip(mx, my, [best.run.label, `${this.xName}: ${fmtValue(best.run.params[this.xName])}`, `${this.yName}: ${fmtValue(best.run.metrics[this.yName])}`]);
  }
}

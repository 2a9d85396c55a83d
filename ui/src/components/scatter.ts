// A scatter of any field against any field (params, metrics, the duration,
// the start time): one dot per run that has both values, in the run's colour,
// named where its name fits without covering another.

import { canvasFont, seriesColor, theme, withAlpha } from "../theme";
import { ellipsize, setupCanvas } from "./canvas";
import { fieldAxis, fieldText, fieldValue, type Field, type PlotAxis, type PlotRun } from "./fields";
import { CanvasPlot } from "./plots";

interface Geometry {
  left: number;
  top: number;
  pw: number;
  ph: number;
  xPos(p: number): number;
  yPos(p: number): number;
}

export class Scatter extends CanvasPlot {
  private runs: PlotRun[] = [];
  private x: Field | null = null;
  private y: Field | null = null;
  private pts: { run: PlotRun; x: number; y: number }[] = [];
  private hot: string | null = null;

  constructor() {
    super("scatter", "Scatter of two fields", 340);
  }

  set(runs: PlotRun[], x: Field | null, y: Field | null): void {
    this.runs = runs;
    this.x = x;
    this.y = y;
    this.draw();
  }

  draw(): void {
    const W = Math.min(this.width(), 960);
    const H = this.height;
    const ctx = setupCanvas(this.canvas, W, H);
    const t = theme();
    ctx.clearRect(0, 0, W, H);
    ctx.font = canvasFont(11);
    this.pts = [];
    this.el.dataset.x = this.x?.key ?? "";
    this.el.dataset.y = this.y?.key ?? "";
    if (!this.x || !this.y) {
      ctx.fillStyle = t.muted;
      ctx.fillText("Choose two fields.", 16, 24);
      this.el.dataset.points = "0";
      return;
    }
    const xa = fieldAxis(this.x, this.runs);
    const ya = fieldAxis(this.y, this.runs);
    const left = W < 420 ? 48 : 64;
    const right = 16;
    const top = 16;
    const bottom = 44;
    const pw = W - left - right;
    const ph = H - top - bottom;
    const inset = (a: PlotAxis, p: number) => (a.kind === "cat" ? (a.cats.length === 1 ? 0.5 : 0.06 + p * 0.88) : 0.04 + p * 0.92);
    const g: Geometry = { left, top, pw, ph, xPos: (p) => left + inset(xa, p) * pw, yPos: (p) => top + (1 - inset(ya, p)) * ph };
    this.drawFrame(ctx, g, xa, ya);
    this.drawPoints(ctx, g, xa, ya);
    this.el.dataset.points = String(this.pts.length);
    this.canvas.setAttribute("aria-label", `Scatter of ${ya.name} against ${xa.name}: ${this.pts.length} runs`);
    const missing = this.runs.length - this.pts.length;
    if (missing > 0) {
      ctx.fillStyle = t.muted;
      ctx.font = canvasFont(11);
      ctx.textAlign = "right";
      ctx.textBaseline = "top";
      ctx.fillText(`${missing} run${missing === 1 ? "" : "s"} without both values`, left + pw - 4, top + 4);
    }
  }

  /** The grid, the ticks and their labels, the box, and the axes' names. */
  private drawFrame(ctx: CanvasRenderingContext2D, g: Geometry, xa: PlotAxis, ya: PlotAxis): void {
    const t = theme();
    const { left, top, pw, ph } = g;
    ctx.strokeStyle = t.grid;
    ctx.fillStyle = t.muted;
    ctx.lineWidth = 1;
    ctx.font = canvasFont(11);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const yt = ya.ticks();
    const yEvery = Math.max(1, Math.ceil(yt.length / Math.max(1, Math.floor(ph / 16))));
    yt.forEach((tk, i) => {
      const y = g.yPos(tk.at);
      ctx.beginPath();
      ctx.moveTo(left, y);
      ctx.lineTo(left + pw, y);
      ctx.stroke();
      if (i % yEvery === 0) ctx.fillText(ellipsize(ctx, tk.label, left - 10), left - 6, y);
    });
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const xt = xa.ticks();
    const every = Math.max(1, Math.ceil(xt.length / Math.max(1, Math.floor(pw / 76))));
    xt.forEach((tk, i) => {
      const x = g.xPos(tk.at);
      ctx.beginPath();
      ctx.moveTo(x, top);
      ctx.lineTo(x, top + ph);
      ctx.stroke();
      if (i % every === 0) ctx.fillText(ellipsize(ctx, tk.label, 76 * every - 6), x, top + ph + 6);
    });
    ctx.strokeStyle = t.axis;
    ctx.strokeRect(left + 0.5, top + 0.5, pw, ph);
    ctx.fillStyle = t.fg;
    ctx.font = canvasFont(12);
    const note = (a: PlotAxis) => (a.kind === "cat" ? " (categories)" : a.log ? " (log)" : "");
    ctx.fillText(ellipsize(ctx, xa.name + note(xa), pw), left + pw / 2, top + ph + 24);
    ctx.save();
    ctx.translate(12, top + ph / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText(ellipsize(ctx, ya.name + note(ya), ph), 0, 0);
    ctx.restore();
  }

  /** A dot per run with both values; its name beside it where it covers no other name. */
  private drawPoints(ctx: CanvasRenderingContext2D, g: Geometry, xa: PlotAxis, ya: PlotAxis): void {
    const t = theme();
    for (const run of this.runs) {
      const px = xa.pos(fieldValue(run, xa.field));
      const py = ya.pos(fieldValue(run, ya.field));
      if (px === null || py === null) continue;
      this.pts.push({ run, x: g.xPos(px), y: g.yPos(py) });
    }
    for (const p of this.pts) {
      const c = seriesColor(p.run.colorIndex);
      const hot = p.run.id === this.hot;
      ctx.fillStyle = withAlpha(c, this.hot && !hot ? 0.35 : 0.9);
      ctx.strokeStyle = hot ? t.fg : t.panel;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.arc(p.x, p.y, hot ? 7 : 5.5, 0, Math.PI * 2);
      ctx.fill();
      ctx.stroke();
    }
    ctx.font = canvasFont(11);
    ctx.textBaseline = "middle";
    const taken: [number, number, number, number][] = this.pts.map((p) => [p.x - 6, p.y - 6, p.x + 6, p.y + 6]);
    const free = (r: [number, number, number, number]) =>
      r[0] >= g.left && r[2] <= g.left + g.pw && r[1] >= g.top && r[3] <= g.top + g.ph && taken.every((o) => r[2] <= o[0] || r[0] >= o[2] || r[3] <= o[1] || r[1] >= o[3]);
    const order = [...this.pts].sort((a, b) => Number(b.run.id === this.hot) - Number(a.run.id === this.hot));
    let named = 0;
    for (const p of order) {
      const w = ctx.measureText(p.run.label).width;
      const rightSide: [number, number, number, number] = [p.x + 8, p.y - 7, p.x + 10 + w, p.y + 7];
      const leftSide: [number, number, number, number] = [p.x - 10 - w, p.y - 7, p.x - 8, p.y + 7];
      const spot = free(rightSide) ? rightSide : free(leftSide) ? leftSide : null;
      if (!spot) continue;
      taken.push(spot);
      named++;
      ctx.textAlign = "left";
      ctx.fillStyle = seriesColor(p.run.colorIndex);
      ctx.fillText(p.run.label, spot[0] + 1, p.y);
    }
    this.el.dataset.labels = String(named);
  }

  protected hover(e: MouseEvent | null): void {
    let best: (typeof this.pts)[number] | null = null;
    if (e) {
      const r = this.canvas.getBoundingClientRect();
      const mx = e.clientX - r.left;
      const my = e.clientY - r.top;
      let bestD = 10;
      for (const p of this.pts) {
        const d = Math.hypot(p.x - mx, p.y - my);
        if (d < bestD) {
          bestD = d;
          best = p;
        }
      }
      if (best && this.x && this.y) this.showTip(mx, my, [best.run.label, `${this.x.name}: ${fieldText(best.run, this.x)}`, `${this.y.name}: ${fieldText(best.run, this.y)}`]);
      else this.hideTip();
    } else this.hideTip();
    const id = best?.run.id ?? null;
    if (id !== this.hot) {
      this.hot = id;
      this.draw();
    }
  }
}

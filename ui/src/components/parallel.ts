// Parallel coordinates: one vertical axis per field (params, metrics, the
// duration, the start), one line per run, coloured on a scale by a chosen
// field. Dragging along an axis brushes a range of it; the runs inside every
// brush stay coloured, the others grey, and the page can compare them.
// Each axis has a head above the canvas: drag it (or focus it and press
// ←/→) to move the axis, × (or Delete) to drop it. Run names stand beside
// the last axis without overlapping (when there is no room for all, the
// names of the hovered, brushed and highest runs first).

import { h } from "../dom";
import { fmtNum, fmtValue } from "../format";
import { canvasFont, theme, withAlpha } from "../theme";
import { ellipsize, setupCanvas } from "./canvas";
import { scaleColor, scaleGradient } from "./colorscale";
import { fieldAxis, fieldLabel, fieldText, fieldValue, type Field, type PlotAxis, type PlotRun } from "./fields";
import { CanvasPlot, placeLabels, segDist } from "./plots";

/** A brushed range of an axis: numbers between two values, or some categories. */
type Brush = { kind: "num"; lo: number; hi: number } | { kind: "cat"; cats: Set<string> };

/** A brush as the address writes it: `params.lr:0.0001:0.01` (a range) or
 *  `params.optimizer=adam|sgd` (categories, each percent-encoded). */
export function brushText(key: string, b: Brush): string {
  return b.kind === "num" ? `${key}:${b.lo}:${b.hi}` : `${key}=${[...b.cats].map(encodeURIComponent).join("|")}`;
}

/** Reads what `brushText` writes; null for anything else. */
export function parseBrush(s: string): [string, Brush] | null {
  const num = /^(.+):([-+0-9.eE]+|-?Infinity):([-+0-9.eE]+|-?Infinity)$/.exec(s);
  if (num) {
    const lo = Number(num[2]);
    const hi = Number(num[3]);
    if (!Number.isNaN(lo) && !Number.isNaN(hi) && lo <= hi) return [num[1], { kind: "num", lo, hi }];
  }
  const eq = s.indexOf("=");
  if (eq <= 0) return null;
  try {
    const cats = s.slice(eq + 1) === "" ? [] : s.slice(eq + 1).split("|").map(decodeURIComponent);
    return [s.slice(0, eq), { kind: "cat", cats: new Set(cats) }];
  } catch {
    return null;
  }
}

export interface ParallelHandlers {
  /** The axes after a move or a drop, as field keys in order. */
  axes(keys: string[]): void;
  /** "Compare these": the ids of the runs inside the brushes. */
  compare(ids: string[]): void;
  /** The brushes after one was drawn or cleared, as `brushText` writes them. */
  brushes(texts: string[]): void;
}

interface Geometry {
  left: number;
  top: number;
  bottom: number;
  span: number;
  xAt(i: number): number;
  yAt(p: number): number;
}

const HEIGHT = 320;
const LABEL_GAP = 13;

export class ParallelCoords extends CanvasPlot {
  private heads: HTMLElement;
  private foot: HTMLElement;
  private runs: PlotRun[] = [];
  private fields: Field[] = [];
  private color: Field | null = null;
  private axes: PlotAxis[] = [];
  private brushes = new Map<string, Brush>();
  private lines: { run: PlotRun; pts: ([number, number] | null)[]; inside: boolean }[] = [];
  private hot: string | null = null;
  private g: Geometry | null = null;
  private brushing: { axis: number; from: number; to: number } | null = null;
  private focusKey: string | null = null;
  private headsDrawn = "";

  constructor(private handlers: ParallelHandlers) {
    super("parallel-coords", "Parallel coordinates", HEIGHT);
    this.heads = h("div", { class: "pc-heads" });
    this.foot = h("div", { class: "pc-foot" });
    this.el.classList.add("pc");
    this.el.prepend(this.heads);
    this.el.append(this.foot);
    this.canvas.addEventListener("pointerdown", (e) => this.brushStart(e));
    this.canvas.addEventListener("pointermove", (e) => this.brushMove(e));
    this.canvas.addEventListener("pointerup", (e) => this.brushEnd(e));
    this.canvas.addEventListener("pointercancel", () => {
      this.brushing = null;
      this.draw();
    });
  }

  /** Draws `runs` on the axes of `fields`, coloured by `color`, with the brushes of `brushes`
   *  (as `brushText` writes them; those of other fields are left out). */
  set(runs: PlotRun[], fields: Field[], color: Field | null, brushes: string[]): void {
    this.runs = runs;
    this.fields = fields;
    this.color = color;
    const keys = new Set(fields.map((f) => f.key));
    this.brushes.clear();
    for (const text of brushes) {
      const b = parseBrush(text);
      if (b && keys.has(b[0])) this.brushes.set(b[0], b[1]);
    }
    this.draw();
  }

  /** The brushes as the address writes them. */
  brushTexts(): string[] {
    return [...this.brushes].map(([k, b]) => brushText(k, b));
  }

  /** The ids of the runs inside every brush; null when nothing is brushed. */
  brushed(): string[] | null {
    if (!this.brushes.size) return null;
    return this.runs.filter((r) => this.inside(r)).map((r) => r.id);
  }

  clearBrushes(): void {
    this.brushes.clear();
    this.draw();
    this.handlers.brushes([]);
  }

  private inside(r: PlotRun): boolean {
    for (const [key, b] of this.brushes) {
      const a = this.axes.find((x) => x.field.key === key);
      if (!a) continue;
      const v = fieldValue(r, a.field);
      if (a.pos(v) === null) return false;
      if (b.kind === "cat") {
        if (!b.cats.has(fmtValue(v))) return false;
      } else {
        const x = typeof v === "boolean" ? Number(v) : (v as number);
        if (x < b.lo || x > b.hi) return false;
      }
    }
    return true;
  }

  draw(): void {
    const W = this.width();
    const H = this.height;
    const ctx = setupCanvas(this.canvas, W, H);
    const t = theme();
    ctx.clearRect(0, 0, W, H);
    ctx.font = canvasFont(11);
    this.axes = this.fields.map((f) => fieldAxis(f, this.runs));
    this.el.dataset.axes = String(this.axes.length);
    this.el.dataset.color = this.color?.key ?? "";
    if (this.axes.length < 2 || !this.runs.length) {
      this.lines = [];
      this.g = null;
      ctx.fillStyle = t.muted;
      ctx.fillText(this.runs.length ? "Needs two axes or more: add one above." : "No runs.", 16, 24);
      this.renderHeads();
      this.renderFoot();
      return;
    }
    ctx.font = canvasFont(11);
    const longest = Math.max(0, ...this.runs.map((r) => ctx.measureText(r.label).width));
    const right = Math.min(Math.max(24, longest + 16), Math.max(60, W * 0.28));
    const left = Math.min(56, W * 0.14);
    const top = 12;
    const bottom = H - 14;
    const span = (W - left - right) / (this.axes.length - 1);
    this.g = { left, top, bottom, span, xAt: (i) => left + i * span, yAt: (p) => top + (1 - p) * (bottom - top) };
    this.drawLines(ctx, this.g);
    this.axes.forEach((a, i) => this.drawAxis(ctx, this.g!, a, i));
    this.drawRunLabels(ctx, this.g, right);
    this.renderHeads();
    this.renderFoot();
    this.canvas.setAttribute(
      "aria-label",
      `Parallel coordinates of ${this.runs.length} runs over ${this.axes.map((a) => a.name).join(", ")}` +
        (this.color ? `, coloured by ${fieldLabel(this.color)}` : ""),
    );
  }

  /** The colour of a run: on the scale by the colour field, grey without a value. */
  private colorOf(colorAxis: PlotAxis | null, r: PlotRun, alpha: number): string {
    const p = colorAxis ? colorAxis.pos(fieldValue(r, colorAxis.field)) : null;
    return p === null ? withAlpha(theme().axis, alpha * 0.8) : scaleColor(p, alpha);
  }

  private drawLines(ctx: CanvasRenderingContext2D, g: Geometry): void {
    const colorAxis = this.color ? fieldAxis(this.color, this.runs) : null;
    const brushed = this.brushes.size > 0;
    this.lines = this.runs.map((run) => ({
      run,
      inside: !brushed || this.inside(run),
      pts: this.axes.map((a, i) => {
        const p = a.pos(fieldValue(run, a.field));
        return p === null ? null : ([g.xAt(i), g.yAt(p)] as [number, number]);
      }),
    }));
    const drawLine = (l: (typeof this.lines)[number], width: number, color: string) => {
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
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
        ctx.beginPath();
        ctx.arc(p[0], p[1], width + 0.8, 0, Math.PI * 2);
        ctx.fill();
      }
    };
    const dim = this.hot !== null;
    // Outside the brushes first, faint; then inside, coloured; the hovered one on top.
    for (const l of this.lines) if (!l.inside && l.run.id !== this.hot) drawLine(l, 1, withAlpha(theme().axis, 0.25));
    for (const l of this.lines) if (l.inside && l.run.id !== this.hot) drawLine(l, 1.6, this.colorOf(colorAxis, l.run, dim ? 0.35 : 0.9));
    const hotLine = this.lines.find((l) => l.run.id === this.hot);
    if (hotLine) drawLine(hotLine, 3, this.colorOf(colorAxis, hotLine.run, 1));
  }

  /** Axis `i`: its line, its brush, its ticks with haloed labels (the name is in its head). */
  private drawAxis(ctx: CanvasRenderingContext2D, g: Geometry, a: PlotAxis, i: number): void {
    const t = theme();
    const x = g.xAt(i);
    ctx.strokeStyle = t.axis;
    ctx.lineWidth = 1;
    ctx.beginPath();
    ctx.moveTo(x, g.top);
    ctx.lineTo(x, g.bottom);
    ctx.stroke();
    const range = this.brushRange(i);
    if (range) {
      const y0 = g.yAt(Math.max(range[0], range[1]));
      const y1 = g.yAt(Math.min(range[0], range[1]));
      ctx.fillStyle = withAlpha(t.accent, 0.18);
      ctx.strokeStyle = t.accent;
      ctx.fillRect(x - 7, y0, 14, Math.max(2, y1 - y0));
      ctx.strokeRect(x - 7 + 0.5, y0 + 0.5, 13, Math.max(1, y1 - y0 - 1));
    }
    ctx.font = canvasFont(10);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const ticks = a.ticks();
    // No more tick labels than fit one above another.
    const room = Math.max(1, Math.floor((g.bottom - g.top) / 14));
    const step = Math.max(1, Math.ceil(ticks.length / room));
    ticks.forEach((tk, j) => {
      if (j % step !== 0 && j !== ticks.length - 1) return;
      const y = g.yAt(tk.at);
      ctx.strokeStyle = t.axis;
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(x - 3, y);
      ctx.lineTo(x + 3, y);
      ctx.stroke();
      const s = ellipsize(ctx, tk.label, Math.max(24, Math.min(i === 0 ? g.left - 6 : 1e9, g.span / 2 - 6)));
      ctx.lineWidth = 3;
      ctx.strokeStyle = t.panel;
      ctx.strokeText(s, x - 5, y);
      ctx.fillStyle = t.muted;
      ctx.fillText(s, x - 5, y);
    });
    ctx.textBaseline = "alphabetic";
  }

  /** The brush of axis `i` (or the one being drawn) as positions [from, to]. */
  private brushRange(i: number): [number, number] | null {
    if (this.brushing && this.brushing.axis === i) return [this.brushing.from, this.brushing.to];
    const a = this.axes[i];
    const b = this.brushes.get(a.field.key);
    if (!b) return null;
    if (b.kind === "num") {
      const p0 = a.pos(b.lo);
      const p1 = a.pos(b.hi);
      return p0 === null || p1 === null ? null : [Math.max(0, p0), Math.min(1, p1)];
    }
    const ps = a.cats.map((c, j) => (b.cats.has(c) ? a.pos(c) ?? j : null)).filter((p): p is number => p !== null);
    if (!ps.length) return null;
    const pad = a.cats.length > 1 ? 0.3 / (a.cats.length - 1) : 0.1;
    return [Math.max(0, Math.min(...ps) - pad), Math.min(1, Math.max(...ps) + pad)];
  }

  /** Run names beside the last axis, none over another. */
  private drawRunLabels(ctx: CanvasRenderingContext2D, g: Geometry, room: number): void {
    const ends = this.lines.map((l) => l.pts[l.pts.length - 1]);
    const idx = this.lines.map((_, i) => i).filter((i) => ends[i] !== null);
    const colorAxis = this.color ? fieldAxis(this.color, this.runs) : null;
    const score = (i: number) => {
      const l = this.lines[i];
      const p = colorAxis?.pos(fieldValue(l.run, colorAxis.field)) ?? -1;
      return (l.run.id === this.hot ? 4 : 0) + (l.inside ? 2 : 0) + p;
    };
    const priority = [...idx.keys()].sort((a, b) => score(idx[b]) - score(idx[a]));
    const ys = placeLabels(
      idx.map((i) => ends[i]![1]),
      priority,
      LABEL_GAP,
      g.top + 4,
      g.bottom - 2,
    );
    ctx.font = canvasFont(11);
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    const t = theme();
    const x = g.xAt(this.axes.length - 1);
    let shown = 0;
    ys.forEach((y, k) => {
      if (y === null) return;
      const l = this.lines[idx[k]];
      const end = ends[idx[k]]!;
      shown++;
      if (Math.abs(y - end[1]) > 1) {
        ctx.strokeStyle = withAlpha(t.axis, 0.6);
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.moveTo(x + 3, end[1]);
        ctx.lineTo(x + 9, y);
        ctx.stroke();
      }
      ctx.fillStyle = l.inside ? t.fg : t.muted;
      ctx.fillText(ellipsize(ctx, l.run.label, room - 14), x + 12, y);
    });
    this.el.dataset.labels = String(shown);
    ctx.textBaseline = "alphabetic";
  }

  /** The axes' heads, over their axes: a name to drag or move with the arrow keys, and × to drop it. */
  private renderHeads(): void {
    const g = this.g;
    const keys = this.fields.map((f) => f.key);
    const move = (from: number, to: number) => {
      if (to < 0 || to >= keys.length || to === from) return;
      const next = [...keys];
      const [k] = next.splice(from, 1);
      next.splice(to, 0, k);
      this.focusKey = k;
      this.handlers.axes(next);
    };
    const drop = (i: number) => {
      this.focusKey = keys[i + 1] ?? keys[i - 1] ?? null;
      this.handlers.axes(keys.filter((_, j) => j !== i));
    };
    const W = this.width();
    // Hovering redraws the canvas: the heads (and a focused one) stay unless they moved.
    const drawn = JSON.stringify([keys, this.axes.map((a) => [a.log, a.kind]), g ? [g.left, g.span] : null, W]);
    if (drawn === this.headsDrawn && this.focusKey === null) return;
    this.headsDrawn = drawn;
    const heads = this.axes.map((a, i) => {
      const kind = a.field.scope === "run" ? "run" : a.field.scope === "params" ? "param" : "metric";
      const detail = [kind, a.kind === "cat" ? "categories" : null, a.log ? "log scale" : null].filter(Boolean).join(", ");
      const name = h(
        "button",
        {
          class: "pc-name",
          title: `${a.field.key} (${detail}): drag, or press ← or →, to move it`,
          "aria-label": `Axis ${a.name}, ${detail}, ${i + 1} of ${this.axes.length}: press ← or → to move it, Delete to drop it, ↑ or ↓ to brush it (with Shift to widen or narrow the brush), Escape to clear its brush`,
          onkeydown: (e: KeyboardEvent) => {
            if (e.key === "ArrowLeft") move(i, i - 1);
            else if (e.key === "ArrowRight") move(i, i + 1);
            else if (e.key === "Delete" || e.key === "Backspace") drop(i);
            else if (e.key === "ArrowUp" || e.key === "ArrowDown") this.keyBrush(i, e.key === "ArrowUp" ? 1 : -1, e.shiftKey);
            else if (e.key === "Escape" && this.brushes.has(a.field.key)) this.setBrush(i, 0, 0);
            else return;
            e.preventDefault();
          },
        },
        a.name,
        a.log ? h("span", { class: "pc-kind" }, " log") : null,
      );
      const head = h(
        "div",
        { class: "pc-head", "data-key": a.field.key, testid: "pc-axis" },
        name,
        h("button", { class: "pc-drop", title: `Drop the axis ${a.name}`, "aria-label": `Drop the axis ${a.name}`, onclick: () => drop(i) }, "×"),
      );
      const w = g ? Math.max(44, Math.min(150, g.span - 6)) : 120;
      const x = g ? g.xAt(i) : 8 + i * 130;
      head.dataset.x = String(Math.round(x));
      head.style.width = w + "px";
      head.style.left = Math.max(0, Math.min(W - w, x - w / 2)) + "px";
      this.dragHead(name, head, i, move);
      return head;
    });
    this.heads.replaceChildren(...heads);
    if (this.focusKey !== null) {
      const k = this.focusKey;
      this.focusKey = null;
      heads.find((el) => el.dataset.key === k)?.querySelector<HTMLElement>(".pc-name")?.focus();
    }
  }

  /** Dragging a head sideways moves its axis to the nearest place. */
  private dragHead(handle: HTMLElement, head: HTMLElement, i: number, move: (from: number, to: number) => void): void {
    let start: number | null = null;
    handle.addEventListener("pointerdown", (e: PointerEvent) => {
      if (e.button !== 0) return;
      start = e.clientX;
      handle.setPointerCapture(e.pointerId);
    });
    handle.addEventListener("pointermove", (e: PointerEvent) => {
      if (start === null) return;
      head.style.transform = `translateX(${e.clientX - start}px)`;
      head.classList.toggle("dragging", Math.abs(e.clientX - start) > 3);
    });
    const end = (e: PointerEvent) => {
      if (start === null) return;
      const dx = e.clientX - start;
      start = null;
      head.style.transform = "";
      head.classList.remove("dragging");
      const g = this.g;
      if (!g || Math.abs(dx) < 6) return;
      const to = Math.max(0, Math.min(this.axes.length - 1, Math.round((g.xAt(i) + dx - g.left) / g.span)));
      move(i, to);
    };
    handle.addEventListener("pointerup", end);
    handle.addEventListener("pointercancel", end);
  }

  /** The colour legend, and what the brushes hold with "Compare these". */
  private renderFoot(): void {
    const parts: (HTMLElement | string)[] = [];
    if (this.color && this.runs.length) {
      const a = fieldAxis(this.color, this.runs);
      const lo = a.kind === "cat" ? a.cats[0] ?? "" : fmtNum(a.log ? a.min : a.valueAt(0));
      const hi = a.kind === "cat" ? a.cats[a.cats.length - 1] ?? "" : fmtNum(a.log ? a.max : a.valueAt(1));
      parts.push(
        h(
          "span",
          { class: "pc-legend", testid: "pc-legend" },
          h("span", { class: "muted" }, `colour: ${fieldLabel(this.color)}`),
          h("span", { class: "mono" }, lo),
          h("span", { class: "pc-gradient", style: { background: scaleGradient() }, "aria-hidden": "true" }),
          h("span", { class: "mono" }, hi),
        ),
      );
    }
    const ids = this.brushed();
    this.el.dataset.brushed = String(ids ? ids.length : this.runs.length);
    if (ids) {
      parts.push(
        h("span", { class: "pc-brushed", testid: "pc-brushed", role: "status" }, `${ids.length} of ${this.runs.length} runs in the brushes`),
        h("button", { class: "btn small primary", testid: "pc-compare", disabled: ids.length === 0, onclick: () => this.handlers.compare(ids) }, "Compare these"),
        h("button", { class: "btn small", onclick: () => this.clearBrushes() }, "Clear brushes"),
      );
    } else if (this.axes.length >= 2) parts.push(h("span", { class: "muted" }, "Drag along an axis to keep the runs in a range."));
    this.foot.replaceChildren(...parts);
  }

  private local(e: MouseEvent): [number, number] {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  private posAt(y: number): number {
    const g = this.g!;
    return Math.max(0, Math.min(1, 1 - (y - g.top) / (g.bottom - g.top)));
  }

  private brushStart(e: PointerEvent): void {
    const g = this.g;
    if (!g || e.button !== 0) return;
    const [mx, my] = this.local(e);
    const i = Math.round((mx - g.left) / g.span);
    if (i < 0 || i >= this.axes.length || Math.abs(g.xAt(i) - mx) > 16) return;
    if (my < g.top - 6 || my > g.bottom + 6) return;
    this.canvas.setPointerCapture(e.pointerId);
    this.brushing = { axis: i, from: this.posAt(my), to: this.posAt(my) };
    e.preventDefault();
  }

  private brushMove(e: PointerEvent): void {
    if (!this.brushing) return;
    this.brushing.to = this.posAt(this.local(e)[1]);
    this.draw();
  }

  private brushEnd(e: PointerEvent): void {
    const b = this.brushing;
    if (!b) return;
    this.brushing = null;
    b.to = this.posAt(this.local(e)[1]);
    const lo = Math.min(b.from, b.to);
    const hi = Math.max(b.from, b.to);
    // A click (no drag) on an axis clears its brush.
    this.setBrush(b.axis, lo, (hi - lo) * (this.g!.bottom - this.g!.top) < 4 ? lo : hi);
  }

  /** Brushes axis `i` from the keyboard: `dir` 1 moves the brush up, -1 down
   *  (starting one at the bottom, or the top, when the axis has none), or
   *  with `widen` grows (1) or shrinks (-1) it. A step is one category on a
   *  category axis (a brush grows by one on each side), a twentieth of the
   *  axis on others. */
  private keyBrush(i: number, dir: 1 | -1, widen: boolean): void {
    const a = this.axes[i];
    const cats = a.kind === "cat" ? a.cats.length : 0;
    const step = cats > 1 ? 1 / (cats - 1) : cats ? 1 : 0.05;
    // Room around a category (as a dragged brush holds it), or a tenth of the axis.
    const pad = cats > 1 ? 0.3 * step : cats ? 0.5 : 0;
    const half = cats ? pad : 0.1;
    const cur = cats ? this.catRange(i, pad) : this.brushRange(i);
    let lo: number;
    let hi: number;
    if (!cur) {
      if (widen) return;
      [lo, hi] = dir > 0 ? [-pad, 2 * half - pad] : [1 + pad - 2 * half, 1 + pad];
    } else if (widen) {
      const grow = cats > 1 ? step : step / 2;
      [lo, hi] = [cur[0] - dir * grow, cur[1] + dir * grow];
      if (hi - lo < 2 * half - 1e-9) return;
    } else {
      const shift = dir > 0 ? Math.min(step, 1 + pad - cur[1]) : -Math.min(step, cur[0] + pad);
      if (shift === 0) return;
      [lo, hi] = [cur[0] + shift, cur[1] + shift];
    }
    this.setBrush(i, Math.max(-pad, lo), Math.min(1 + pad, hi));
  }

  /** The brush of category axis `i` as positions around its first and last
   *  category, `pad` beyond each, unclipped; null when it has none. */
  private catRange(i: number, pad: number): [number, number] | null {
    const a = this.axes[i];
    const b = this.brushes.get(a.field.key);
    if (!b || b.kind !== "cat") return null;
    const ps = a.cats.filter((c) => b.cats.has(c)).map((c) => a.pos(c)).filter((p): p is number => p !== null);
    return ps.length ? [Math.min(...ps) - pad, Math.max(...ps) + pad] : null;
  }

  /** Sets the brush of axis `i` to positions `lo` to `hi` (0 at the bottom,
   *  1 at the top); an empty range clears it. */
  private setBrush(i: number, lo: number, hi: number): void {
    const a = this.axes[i];
    if (hi <= lo) this.brushes.delete(a.field.key);
    else if (a.kind === "cat") {
      const cats = new Set(a.cats.filter((c) => {
        const p = a.pos(c);
        return p !== null && p >= lo && p <= hi;
      }));
      this.brushes.set(a.field.key, { kind: "cat", cats });
    } else this.brushes.set(a.field.key, { kind: "num", lo: a.valueAt(Math.max(0, lo)), hi: a.valueAt(Math.min(1, hi)) });
    this.draw();
    this.handlers.brushes(this.brushTexts());
  }

  protected hover(e: MouseEvent | null): void {
    let best: PlotRun | null = null;
    if (e && !this.brushing) {
      const [mx, my] = this.local(e);
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
      }
      if (best) {
        const b = best;
        this.showTip(mx, my, [b.label, ...this.axes.map((a) => `${a.name}: ${fieldText(b, a.field)}`)]);
      } else this.hideTip();
    } else this.hideTip();
    const id = best?.id ?? null;
    if (id !== this.hot) {
      this.hot = id;
      this.draw();
    }
  }
}

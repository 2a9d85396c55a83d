// What the compare page's hand-drawn plots share: a canvas that redraws when
// its box is resized or the theme changes, with a tooltip; labels placed
// beside points without overlapping; distance to a segment for hovering.
// The plots themselves: parallel.ts (parallel coordinates), scatter.ts,
// values.ts (single-value metrics as bars).

import "./plots.css";
import { h } from "../dom";
import { onThemeChange } from "../theme";

export type { PlotRun } from "./fields";

export abstract class CanvasPlot {
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

  /** The width to draw at: the box's, so that the plot never overflows it (a phone's too). */
  protected width(): number {
    return Math.max(200, this.el.clientWidth || 600);
  }

  abstract draw(): void;
  protected abstract hover(e: MouseEvent | null): void;

  protected showTip(x: number, y: number, lines: string[]): void {
    this.tip.replaceChildren(...lines.map((l, i) => h("div", { class: i === 0 ? "tip-title" : undefined }, l)));
    this.tip.hidden = false;
    const w = this.width();
    this.tip.style.left = Math.max(0, Math.min(x + 12, w - 220)) + "px";
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

/**
 * Where labels `gap` apart go, each wanting to stand at `wants[i]`, between
 * `top` and `bottom`. When all fit, all are placed, pushed apart as little
 * as needed; when not, labels are taken in `priority` order (indices) and
 * each is placed at its own height if no placed one is nearer than `gap`.
 * Gives each label's place, or null for a label left out.
 */
export function placeLabels(wants: number[], priority: number[], gap: number, top: number, bottom: number): (number | null)[] {
  const n = wants.length;
  const out: (number | null)[] = new Array(n).fill(null);
  if (!n) return out;
  if ((n - 1) * gap <= bottom - top) {
    const order = [...wants.keys()].sort((a, b) => wants[a] - wants[b]);
    const ys = order.map((i) => Math.max(top, Math.min(bottom, wants[i])));
    for (let k = 1; k < ys.length; k++) ys[k] = Math.max(ys[k], ys[k - 1] + gap);
    if (ys[ys.length - 1] > bottom) {
      ys[ys.length - 1] = bottom;
      for (let k = ys.length - 2; k >= 0; k--) ys[k] = Math.min(ys[k], ys[k + 1] - gap);
    }
    order.forEach((i, k) => (out[i] = ys[k]));
    return out;
  }
  const placed: number[] = [];
  for (const i of priority) {
    const y = Math.max(top, Math.min(bottom, wants[i]));
    if (placed.every((p) => Math.abs(p - y) >= gap)) {
      placed.push(y);
      out[i] = y;
    }
  }
  return out;
}

export function segDist(px: number, py: number, a: [number, number], b: [number, number]): number {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const l2 = dx * dx + dy * dy;
  const t = l2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - a[0]) * dx + (py - a[1]) * dy) / l2));
  return Math.hypot(px - (a[0] + t * dx), py - (a[1] + t * dy));
}

// Helpers for the hand-drawn plots (parallel coordinates, scatter).

import { finite } from "../api";
import { fmtValue } from "../format";

/** Sizes a canvas for the device's pixel ratio; returns its 2D context in CSS pixels. */
export function setupCanvas(c: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D {
  const dpr = window.devicePixelRatio || 1;
  c.width = Math.round(width * dpr);
  c.height = Math.round(height * dpr);
  c.style.width = width + "px";
  c.style.height = height + "px";
  const ctx = c.getContext("2d")!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** About `n` round tick values covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) return [lo];
  const span = hi - lo;
  const raw = span / Math.max(1, n);
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const norm = raw / mag;
  const step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

/** An axis: numeric (scaled between min and max) or categorical (evenly spaced values). */
export interface Axis {
  name: string;
  kind: "num" | "cat";
  min: number;
  max: number;
  cats: string[];
  /** Position in [0, 1] of a value, or null when the value is missing. */
  pos(v: unknown): number | null;
  ticks(): { at: number; label: string }[];
}

export function numberOf(v: unknown): number | null {
  if (typeof v === "boolean") return v ? 1 : 0;
  return finite(v);
}

function missing(v: unknown): boolean {
  return v === null || v === undefined || v === "NaN" || v === "Infinity" || v === "-Infinity";
}

export function makeAxis(name: string, values: unknown[], forceNum = false): Axis {
  const present = values.filter((v) => !missing(v));
  const numeric = forceNum || (present.length > 0 && present.every((v) => typeof v === "number"));
  if (numeric) {
    const nums = present.map(numberOf).filter((x): x is number => x !== null);
    let min = nums.length ? Math.min(...nums) : 0;
    let max = nums.length ? Math.max(...nums) : 1;
    if (min === max) {
      const pad = min === 0 ? 1 : Math.abs(min) * 0.1;
      min -= pad;
      max += pad;
    }
    return {
      name,
      kind: "num",
      min,
      max,
      cats: [],
      pos: (v) => {
        const x = numberOf(v);
        return x === null ? null : (x - min) / (max - min);
      },
      ticks: () => {
        const ts = niceTicks(min, max, 5);
        const step = ts.length > 1 ? ts[1] - ts[0] : 0;
        return ts.map((t) => ({ at: (t - min) / (max - min), label: tickLabel(t, step) }));
      },
    };
  }
  const cats = [...new Set(present.map(fmtValue))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const at = (i: number) => (cats.length === 1 ? 0.5 : i / (cats.length - 1));
  return {
    name,
    kind: "cat",
    min: 0,
    max: cats.length - 1,
    cats,
    pos: (v) => {
      if (missing(v)) return null;
      const i = cats.indexOf(fmtValue(v));
      return i < 0 ? null : at(i);
    },
    ticks: () => cats.map((c, i) => ({ at: at(i), label: c })),
  };
}

/** A tick label with as many decimals as the tick step needs. */
export function tickLabel(v: number, step: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(step > 0 ? Math.max(1, Math.min(6, Math.ceil(Math.log10(a / step)))) : 2).replace(/\.?0+e/, "e");
  if (!(step > 0)) return shortNum(v);
  const dec = Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(dec);
}

export function shortNum(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(1).replace(/\.0e/, "e");
  return String(Number(v.toPrecision(4)));
}

/** Cuts `s` to fit `max` pixels with an ellipsis. */
export function ellipsize(ctx: CanvasRenderingContext2D, s: string, max: number): string {
  if (ctx.measureText(s).width <= max) return s;
  let lo = 0;
  let hi = s.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ctx.measureText(s.slice(0, mid) + "…").width <= max) lo = mid;
    else hi = mid - 1;
  }
  return s.slice(0, lo) + "…";
}

// What the compare page's plots draw: a run as the plots see it (its name,
// colour, params, last metric values, duration and start), the fields a plot
// can put on an axis (any param, any metric, the duration, the start time,
// the group), written as keys (`params.lr`, `metrics.loss`, `duration`,
// `start_time`, `group`), and
// the axes they make: numeric (on a log scale when positive values span
// more than two decades), time, or categories.

import { finite } from "../api";
import { fmtDuration, fmtTime, fmtValue } from "../format";
import { niceTicks, tickLabel, type Axis } from "./canvas";

export interface PlotRun {
  id: string;
  /** The run's name, or its short id before it has one. */
  label: string;
  shortId: string;
  colorIndex: number;
  params: Record<string, unknown>;
  /** Each metric's last value. */
  metrics: Record<string, unknown>;
  duration: number | null;
  /** Milliseconds since the epoch. */
  startTime: number | null;
  group: string | null;
}

/** A run's name as the page shows it: its name, or its short id. */
export function runLabel(r: { short_id: string; name?: string | null }): string {
  return r.name ? r.name : r.short_id;
}

export type FieldScope = "params" | "metrics" | "run";

export interface Field {
  key: string;
  scope: FieldScope;
  name: string;
}

export const RUN_FIELDS: Field[] = [
  { key: "duration", scope: "run", name: "duration" },
  { key: "start_time", scope: "run", name: "start_time" },
  { key: "group", scope: "run", name: "group" },
];

export function paramField(name: string): Field {
  return { key: `params.${name}`, scope: "params", name };
}

export function metricField(name: string): Field {
  return { key: `metrics.${name}`, scope: "metrics", name };
}

/** Reads a key (`params.lr`, `metrics.loss`, `duration`, `start_time`); null when it is none of them. */
export function parseField(key: string): Field | null {
  const run = RUN_FIELDS.find((f) => f.key === key);
  if (run) return run;
  const dot = key.indexOf(".");
  if (dot <= 0 || dot === key.length - 1) return null;
  const scope = key.slice(0, dot);
  const name = key.slice(dot + 1);
  if (scope === "params") return paramField(name);
  if (scope === "metrics") return metricField(name);
  return null;
}

/** How a field is labelled on an axis: the bare name, `duration`, `start time`. */
export function fieldLabel(f: Field): string {
  return f.key === "start_time" ? "start time" : f.name;
}

export function fieldValue(r: PlotRun, f: Field): unknown {
  if (f.scope === "params") return r.params[f.name];
  if (f.scope === "metrics") return r.metrics[f.name];
  return f.key === "duration" ? r.duration : f.key === "start_time" ? r.startTime : r.group;
}

/** A field's value as text, for tooltips and tables. */
export function fieldText(r: PlotRun, f: Field): string {
  const v = fieldValue(r, f);
  if (v === undefined || v === null) return "—";
  if (f.key === "duration") return fmtDuration(v);
  if (f.key === "start_time") return typeof v === "number" ? fmtTime(new Date(v).toISOString()) : "—";
  return fmtValue(v);
}

export interface PlotAxis extends Axis {
  field: Field;
  log: boolean;
  time: boolean;
  /** For a numeric axis: the value at position `p` in [0, 1]. */
  valueAt(p: number): number;
}

function present(v: unknown): boolean {
  return v !== null && v !== undefined && v !== "NaN" && v !== "Infinity" && v !== "-Infinity";
}

function numberOf(v: unknown): number | null {
  if (typeof v === "boolean") return v ? 1 : 0;
  return finite(v);
}

/** The axis of `field` over `runs`: metrics, the duration and the start are
 *  numeric, the group is categories; a param is numeric when every value it
 *  has is a number. */
export function fieldAxis(field: Field, runs: PlotRun[]): PlotAxis {
  const values = runs.map((r) => fieldValue(r, field)).filter(present);
  const numeric =
    field.scope === "metrics" ||
    field.key === "duration" ||
    field.key === "start_time" ||
    (field.scope === "params" && values.length > 0 && values.every((v) => typeof v === "number"));
  if (!numeric) return catAxis(field, values);
  const nums = values.map(numberOf).filter((x): x is number => x !== null);
  const time = field.key === "start_time";
  let min = nums.length ? Math.min(...nums) : 0;
  let max = nums.length ? Math.max(...nums) : 1;
  if (!time && min > 0 && max / min >= 100) return logAxis(field, min, max);
  if (min === max) {
    const pad = time ? 60_000 : min === 0 ? 1 : Math.abs(min) * 0.1;
    min -= pad;
    max += pad;
  }
  const lo = min;
  const hi = max;
  return {
    name: fieldLabel(field),
    field,
    kind: "num",
    log: false,
    time,
    min: lo,
    max: hi,
    cats: [],
    pos: (v) => {
      const x = numberOf(v);
      return x === null ? null : (x - lo) / (hi - lo);
    },
    valueAt: (p) => lo + p * (hi - lo),
    ticks: () => (time ? timeTicks(lo, hi) : numTicks(lo, hi)),
  };
}

function numTicks(lo: number, hi: number): { at: number; label: string }[] {
  const ts = niceTicks(lo, hi, 5);
  const step = ts.length > 1 ? ts[1] - ts[0] : 0;
  return ts.map((t) => ({ at: (t - lo) / (hi - lo), label: tickLabel(t, step) }));
}

function pad2(n: number): string {
  return String(n).padStart(2, "0");
}

/** About five times between `lo` and `hi` (ms): the clock, and the day when they span days. */
function timeTicks(lo: number, hi: number): { at: number; label: string }[] {
  const out: { at: number; label: string }[] = [];
  const days = hi - lo > 36 * 3600_000;
  const seconds = hi - lo < 10 * 60_000;
  for (let i = 0; i <= 4; i++) {
    const t = lo + ((hi - lo) * i) / 4;
    const d = new Date(t);
    const clock = `${pad2(d.getHours())}:${pad2(d.getMinutes())}` + (seconds ? `:${pad2(d.getSeconds())}` : "");
    out.push({ at: i / 4, label: days ? `${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${clock}` : clock });
  }
  return out;
}

function logAxis(field: Field, min: number, max: number): PlotAxis {
  const lo = Math.log10(min);
  const hi = Math.log10(max);
  return {
    name: fieldLabel(field),
    field,
    kind: "num",
    log: true,
    time: false,
    min,
    max,
    cats: [],
    pos: (v) => {
      const x = numberOf(v);
      return x === null || x <= 0 ? null : (Math.log10(x) - lo) / (hi - lo);
    },
    valueAt: (p) => Math.pow(10, lo + p * (hi - lo)),
    ticks: () => {
      const out: { at: number; label: string }[] = [];
      for (let e = Math.ceil(lo - 1e-9); e <= hi + 1e-9; e++) out.push({ at: (e - lo) / (hi - lo), label: tickLabel(Math.pow(10, e), Math.pow(10, e)) });
      return out;
    },
  };
}

function catAxis(field: Field, values: unknown[]): PlotAxis {
  const cats = [...new Set(values.map(fmtValue))].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const at = (i: number) => (cats.length === 1 ? 0.5 : i / (cats.length - 1));
  return {
    name: fieldLabel(field),
    field,
    kind: "cat",
    log: false,
    time: false,
    min: 0,
    max: Math.max(0, cats.length - 1),
    cats,
    pos: (v) => {
      if (!present(v)) return null;
      const i = cats.indexOf(fmtValue(v));
      return i < 0 ? null : at(i);
    },
    valueAt: (p) => p * Math.max(0, cats.length - 1),
    ticks: () => cats.map((c, i) => ({ at: at(i), label: c })),
  };
}

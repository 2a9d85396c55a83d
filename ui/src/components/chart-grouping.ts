// The compare page's controls of how runs are drawn in its charts: grouped
// (by their group, a parameter or a tag: one mean line with a band per group),
// the band (min to max, or ±1 standard deviation), and line labels built of
// parameters (`lr=0.001 bs=64`) instead of the runs' names.

import { h } from "../dom";
import { fmtValue } from "../format";
import type { BandKind } from "./chart-bands";
import { paramLabel, runName } from "./chart-legend";
import type { ChartSource } from "./chart";

export interface Grouping {
  /** "" (none), "group" (the runs' group), `params.<name>` or `tags.<key>`. */
  groupBy: string;
  band: BandKind;
  /** Parameters that make the labels; none: the runs' names. */
  labelKeys: string[];
  /** "" (the palette), `params.<name>`, `metrics.<name>` (its last value) or `tags.<key>`: the lines coloured on a scale. */
  colorBy: string;
}

export interface GroupedRun {
  id: string;
  short_id: string;
  name?: string | null;
  group?: string | null;
  params?: Record<string, unknown> | null;
  tags?: Record<string, string> | null;
  metrics?: { name: string; last?: unknown }[] | null;
}

/** Run `r`'s value of `key` (`params.<name>`, `tags.<key>` or `metrics.<name>`, its last value). */
function valueOf(r: GroupedRun, key: string): unknown {
  if (key.startsWith("params.")) return (r.params ?? {})[key.slice("params.".length)];
  if (key.startsWith("tags.")) return (r.tags ?? {})[key.slice("tags.".length)];
  if (key.startsWith("metrics.")) return (r.metrics ?? []).find((m) => m.name === key.slice("metrics.".length))?.last;
  return undefined;
}

/** Viridis, cut before its palest yellow (which vanishes on a light page). */
const SCALE = ["#440154", "#46327e", "#365c8d", "#277f8e", "#1fa187", "#4ac16d", "#a0da39"];

function scaleColor(t: number): string {
  const x = Math.min(1, Math.max(0, t)) * (SCALE.length - 1);
  const i = Math.min(SCALE.length - 2, Math.floor(x));
  const f = x - i;
  const a = parseInt(SCALE[i].slice(1), 16);
  const b = parseInt(SCALE[i + 1].slice(1), 16);
  const mix = (shift: number) => Math.round(((a >> shift) & 255) * (1 - f) + ((b >> shift) & 255) * f);
  return "#" + [16, 8, 0].map((sh) => mix(sh).toString(16).padStart(2, "0")).join("");
}

/** What colouring by a value gives: a colour per run id (grey without the value), and the scale's ends. */
export interface ColorScale {
  colors: Map<string, string>;
  /** The scale's ends as text, and whether it is logarithmic; null for categories. */
  range: { lo: string; hi: string; log: boolean } | null;
}

/** Colours the runs by `key` on a scale: numbers from the smallest (dark
 *  blue) to the largest (green), logarithmically when they are positive and
 *  span more than a hundredfold; other values as evenly spaced categories. */
export function colorScale(runs: GroupedRun[], key: string): ColorScale {
  const colors = new Map<string, string>();
  const values = runs.map((r) => ({ id: r.id, v: valueOf(r, key) }));
  const nums = values.filter((x) => typeof x.v === "number" && Number.isFinite(x.v)) as { id: string; v: number }[];
  const missing = "#9aa3b2";
  if (nums.length && nums.length === values.filter((x) => x.v !== undefined && x.v !== null).length) {
    const lo = Math.min(...nums.map((x) => x.v));
    const hi = Math.max(...nums.map((x) => x.v));
    const log = lo > 0 && hi / lo > 100;
    const f = (v: number) => (log ? Math.log10(v) : v);
    for (const { id, v } of values) {
      colors.set(id, typeof v === "number" && Number.isFinite(v) ? scaleColor(hi === lo ? 0.5 : (f(v) - f(lo)) / (f(hi) - f(lo))) : missing);
    }
    return { colors, range: { lo: fmtValue(lo), hi: fmtValue(hi), log } };
  }
  const cats = [...new Set(values.filter((x) => x.v !== undefined && x.v !== null).map((x) => fmtValue(x.v)))].sort((a, b) =>
    a.localeCompare(b, undefined, { numeric: true }),
  );
  for (const { id, v } of values) {
    const i = v === undefined || v === null ? -1 : cats.indexOf(fmtValue(v));
    colors.set(id, i < 0 ? missing : scaleColor(cats.length === 1 ? 0.5 : i / (cats.length - 1)));
  }
  return { colors, range: null };
}

/** The group of run `r` under `groupBy`, or null. A bare name is a
 *  parameter, as the runs table writes one in its `group=`. */
export function groupOf(r: GroupedRun, groupBy: string): string | null {
  if (!groupBy) return null;
  if (groupBy === "group") return r.group ?? null;
  const key = groupBy.startsWith("params.") || groupBy.startsWith("tags.") ? groupBy : "params." + groupBy;
  const v = valueOf(r, key);
  return v === undefined ? null : `${key.slice(key.indexOf(".") + 1)}=${fmtValue(v)}`;
}

/** Run `r` as a chart's source (`scale`: the colours by a value, if any). */
export function sourceOf(r: GroupedRun, colorIndex: number, g: Grouping, scale?: ColorScale | null): ChartSource {
  const name = runName(r);
  const label = g.labelKeys.length ? paramLabel(r.params ?? {}, g.labelKeys) || name : name;
  const value = g.colorBy ? valueOf(r, g.colorBy) : undefined;
  const title = `${name} · ${r.short_id}` + (label !== name ? `\n${label}` : "") + (g.colorBy ? `\n${g.colorBy}: ${value === undefined ? "none" : fmtValue(value)}` : "");
  return { runId: r.id, label, title, colorIndex, color: scale?.colors.get(r.id), group: groupOf(r, g.groupBy) };
}

/** The controls; `onChange` gets the new grouping. `params` and `tags`
 *  (keys) may group and colour the lines, `metrics` colour them. */
export function groupingControls(
  initial: Grouping,
  params: string[],
  metrics: string[],
  tags: string[],
  hasGroups: boolean,
  onChange: (g: Grouping) => void,
): HTMLElement {
  const g: Grouping = { ...initial, labelKeys: [...initial.labelKeys] };
  const emit = () => onChange({ ...g, labelKeys: [...g.labelKeys] });
  const by = h(
    "select",
    {
      "aria-label": "Group the lines by",
      testid: "chart-group-by",
      onchange: () => {
        g.groupBy = by.value;
        bandSel.disabled = !g.groupBy;
        emit();
      },
    },
    h("option", { value: "" }, "no grouping"),
    hasGroups || initial.groupBy === "group" ? h("option", { value: "group" }, "their group") : null,
    params.map((p) => h("option", { value: "params." + p }, p)),
    tags.length ? h("optgroup", { label: "a tag" }, tags.map((t) => h("option", { value: "tags." + t }, t))) : null,
  );
  by.value = g.groupBy;
  const bandSel = h(
    "select",
    {
      "aria-label": "Band around a group's mean",
      testid: "chart-band",
      disabled: !g.groupBy,
      onchange: () => {
        g.band = bandSel.value === "std" ? "std" : "minmax";
        emit();
      },
    },
    h("option", { value: "minmax" }, "min – max"),
    h("option", { value: "std" }, "±1 std"),
  );
  bandSel.value = g.band;
  const boxes = params.map((p) =>
    h(
      "label",
      { class: "label-param" },
      h("input", {
        type: "checkbox",
        value: p,
        checked: g.labelKeys.includes(p),
        onchange: (e: Event) => {
          const on = (e.target as HTMLInputElement).checked;
          g.labelKeys = on ? [...g.labelKeys.filter((k) => k !== p), p] : g.labelKeys.filter((k) => k !== p);
          summary.textContent = labelSummary(g.labelKeys);
          emit();
        },
      }),
      " ",
      p,
    ),
  );
  const summary = h("summary", { testid: "chart-label-summary" }, labelSummary(g.labelKeys));
  const colorSel = h(
    "select",
    {
      "aria-label": "Colour the lines by",
      testid: "chart-color-by",
      onchange: () => {
        g.colorBy = colorSel.value;
        emit();
      },
    },
    h("option", { value: "" }, "run"),
    params.length ? h("optgroup", { label: "a parameter" }, params.map((p) => h("option", { value: "params." + p }, p))) : null,
    metrics.length ? h("optgroup", { label: "a metric (last value)" }, metrics.map((m) => h("option", { value: "metrics." + m }, m))) : null,
    tags.length ? h("optgroup", { label: "a tag" }, tags.map((t) => h("option", { value: "tags." + t }, t))) : null,
  );
  colorSel.value = g.colorBy;
  return h(
    "div",
    { class: "chart-controls", role: "group", "aria-label": "Lines" },
    h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "group by"), by),
    h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "band"), bandSel),
    h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "colour by"), colorSel),
    params.length
      ? h(
          "span",
          { class: "ctl" },
          h("span", { class: "ctl-label" }, "labels"),
          h("details", { class: "label-picker", testid: "chart-labels" }, summary, h("div", { class: "label-menu" }, boxes)),
        )
      : null,
  );
}

function labelSummary(keys: string[]): string {
  return keys.length ? keys.join(", ") : "run names";
}

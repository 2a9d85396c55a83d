// The compare page's controls of how runs are drawn in its charts: grouped
// (by their group or by a parameter: one mean line with a band per group),
// the band (min to max, or ±1 standard deviation), and line labels built of
// parameters (`lr=0.001 bs=64`) instead of the runs' names.

import { h } from "../dom";
import { fmtValue } from "../format";
import type { BandKind } from "./chart-bands";
import { paramLabel, runName } from "./chart-legend";
import type { ChartSource } from "./chart";

export interface Grouping {
  /** "" (none), "group" (the runs' group) or `params.<name>`. */
  groupBy: string;
  band: BandKind;
  /** Parameters that make the labels; none: the runs' names. */
  labelKeys: string[];
}

export interface GroupedRun {
  id: string;
  short_id: string;
  name?: string | null;
  group?: string | null;
  params?: Record<string, unknown> | null;
}

/** The group of run `r` under `groupBy`, or null. A bare name is a
 *  parameter, as the runs table writes one in its `group=`. */
export function groupOf(r: GroupedRun, groupBy: string): string | null {
  if (!groupBy) return null;
  if (groupBy === "group") return r.group ?? null;
  const k = groupBy.startsWith("params.") ? groupBy.slice("params.".length) : groupBy;
  const v = (r.params ?? {})[k];
  return v === undefined ? null : `${k}=${fmtValue(v)}`;
}

/** Run `r` as a chart's source. */
export function sourceOf(r: GroupedRun, colorIndex: number, g: Grouping): ChartSource {
  const name = runName(r);
  const label = g.labelKeys.length ? paramLabel(r.params ?? {}, g.labelKeys) || name : name;
  return { runId: r.id, label, title: `${name} · ${r.short_id}` + (label !== name ? `\n${label}` : ""), colorIndex, group: groupOf(r, g.groupBy) };
}

/** The controls; `onChange` gets the new grouping. */
export function groupingControls(initial: Grouping, params: string[], hasGroups: boolean, onChange: (g: Grouping) => void): HTMLElement {
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
  return h(
    "div",
    { class: "chart-controls", role: "group", "aria-label": "Lines" },
    h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "group by"), by),
    h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "band"), bandSel),
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

// Column keys of the runs table: a run field, or a param, metric or tag by name.

import type { Names, RunRow } from "./api";

export type Kind = "field" | "params" | "metrics" | "tags";

export interface ColKey {
  kind: Kind;
  name: string;
}

export interface FieldDef {
  name: string;
  label: string;
  width: number;
}

/** The run fields the table always shows, in order. */
export const FIELDS: FieldDef[] = [
  { name: "name", label: "run", width: 270 },
  { name: "experiment", label: "experiment", width: 140 },
  { name: "status", label: "status", width: 116 },
  { name: "start_time", label: "start", width: 150 },
  { name: "duration", label: "duration", width: 86 },
];

const KEYWORDS = new Set(["and", "or", "not", "in", "true", "false", "null", "none"]);

export function keyId(k: ColKey): string {
  return k.kind === "field" ? k.name : `${k.kind}.${k.name}`;
}

export function sameKey(a: ColKey, b: ColKey): boolean {
  return a.kind === b.kind && a.name === b.name;
}

/** Whether `s` is a run field (`start_time`, `user`, ...): the server says which names are (`names.fields`). */
function isField(s: string, names: Names | null): boolean {
  return !!names && names.fields.includes(s);
}

/** Reads a key as written in the URL: `accuracy`, `metrics.accuracy`, `params.lr`, `start_time`. */
export function parseKey(s: string, names: Names | null): ColKey {
  if (isField(s, names)) return { kind: "field", name: s === "short_id" ? "id" : s };
  const dot = s.indexOf(".");
  const scope = dot > 0 ? s.slice(0, dot) : "";
  const rest = dot > 0 ? s.slice(dot + 1) : "";
  const inGroup = (kind: "params" | "metrics" | "tags", n: string) => !!names && names[kind].includes(n);
  if ((scope === "params" || scope === "metrics" || scope === "tags") && inGroup(scope, rest)) return { kind: scope, name: rest };
  if (scope === "run" && isField(rest, names)) return { kind: "field", name: rest };
  if (inGroup("metrics", s)) return { kind: "metrics", name: s };
  if (inGroup("params", s)) return { kind: "params", name: s };
  if (inGroup("tags", s)) return { kind: "tags", name: s };
  if (scope === "params" || scope === "metrics" || scope === "tags") return { kind: scope, name: rest };
  return { kind: "metrics", name: s };
}

/** How a key is written in the URL: the bare name when it is unambiguous. */
export function shortKey(k: ColKey, names: Names | null): string {
  if (k.kind === "field") return k.name;
  if (!names || isField(k.name, names) || /^(params|metrics|tags|run)\./.test(k.name)) return keyId(k);
  let count = 0;
  for (const g of ["params", "metrics", "tags"] as const) if (names[g].includes(k.name)) count++;
  return count === 1 ? k.name : keyId(k);
}

/** A name in the query language, in backticks when it needs them. */
export function quoteName(n: string): string {
  if (/^[A-Za-z0-9_\-.[\]]+$/.test(n) && !KEYWORDS.has(n.toLowerCase()) && !/^[0-9.-]/.test(n)) return n;
  return "`" + n.replace(/`/g, "``") + "`";
}

/** The key as the server's `sort` parameter takes it. */
export function sortName(k: ColKey): string {
  if (k.kind === "field") return k.name === "id" ? "id" : k.name;
  return `${k.kind}.${quoteName(k.name)}`;
}

/** The `columns` parameter: params and metrics by name (scoped when a name is both). */
export function columnsParam(keys: ColKey[], names: Names | null): string | undefined {
  const out: string[] = [];
  for (const k of keys) {
    if (k.kind !== "params" && k.kind !== "metrics") continue;
    // The server splits the list at commas: a name with one cannot be asked
    // for alone, so ask for every column.
    if (k.name.includes(",")) return undefined;
    const both = !!names && names.params.includes(k.name) && names.metrics.includes(k.name);
    out.push(both ? keyId(k) : k.name);
  }
  return out.length ? out.join(",") : undefined;
}

export function cellValue(r: RunRow, k: ColKey): unknown {
  switch (k.kind) {
    case "params":
      return r.params?.[k.name];
    case "metrics":
      return r.metrics?.[k.name];
    case "tags":
      return r.tags?.[k.name];
    default:
      return (r as unknown as Record<string, unknown>)[k.name];
  }
}

export interface SortKey {
  key: ColKey;
  desc: boolean;
}

export function parseSort(list: string[] | null, names: Names | null): SortKey[] {
  if (!list) return [];
  return list.map((s) => (s.startsWith("-") ? { key: parseKey(s.slice(1), names), desc: true } : { key: parseKey(s, names), desc: false }));
}

export function sortToUrl(keys: SortKey[], names: Names | null): string[] {
  return keys.map((s) => (s.desc ? "-" : "") + shortKey(s.key, names));
}

export function sortToServer(keys: SortKey[]): string | undefined {
  if (!keys.length) return undefined;
  return keys.map((s) => (s.desc ? "-" : "") + sortName(s.key)).join(",");
}

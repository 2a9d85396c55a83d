// What the filter box offers to complete at the caret: the names a query may
// use (run fields, metrics, params, tags, from the server's names) where a
// name goes, and after a comparison the values the runs in view have for the
// name before it (with the statuses and experiments the project knows). Pure
// text in, text out: the box (query-bar.ts) shows and applies them.

import { STATUSES, type Names, type RunRow } from "../api";
import { quoteName } from "../keys";
import { isSystemMetric } from "../system";

export interface Completion {
  /** What the list shows. */
  label: string;
  /** What replaces the word at the caret. */
  insert: string;
  /** `field`, `metric`, `param`, `tag`, `value` or `keyword`. */
  kind: string;
}

export interface Completions {
  /** The part of the text the chosen item replaces. */
  from: number;
  to: number;
  items: Completion[];
}

/** At most this many items are offered. */
const MAX_ITEMS = 8;
const WORD = /[A-Za-z0-9_.\-[\]/`]/;
const OPERATORS = ["==", "!=", "<>", "<=", ">=", "!~", "=", "<", ">", "~"];
const KEYWORDS = ["and", "or", "not", "in"];

/** What may complete the word at `caret` in `text`; nothing when no item fits. */
export function complete(text: string, caret: number, names: Names, rows: RunRow[]): Completions {
  let from = caret;
  while (from > 0 && WORD.test(text[from - 1])) from--;
  let to = caret;
  while (to < text.length && WORD.test(text[to])) to++;
  // Inside a quoted value: the word runs from its opening quote.
  const quote = openQuote(text.slice(0, caret));
  if (quote >= 0) {
    from = quote;
    to = caret;
  }
  const word = text.slice(from, caret);
  const before = text.slice(0, from).trimEnd();
  const op = OPERATORS.find((o) => before.endsWith(o));
  if (op) {
    const subject = lastName(before.slice(0, before.length - op.length).trimEnd());
    return { from, to, items: subject ? values(subject, word, names, rows) : [] };
  }
  if (!word || quote >= 0) return { from, to, items: [] };
  return { from, to, items: nameItems(word, names) };
}

/** Where an unclosed quote opens in `head`, or -1. */
function openQuote(head: string): number {
  let open = -1;
  let q = "";
  for (let i = 0; i < head.length; i++) {
    const c = head[i];
    if (open >= 0) {
      if (c === "\\") i++;
      else if (c === q) open = -1;
    } else if (c === "'" || c === '"') {
      open = i;
      q = c;
    }
  }
  return open;
}

/** The name that ends `head` (`params.lr`, `` `my name` ``), without backticks. */
function lastName(head: string): string | null {
  if (head.endsWith("`")) {
    const start = head.lastIndexOf("`", head.length - 2);
    return start >= 0 ? head.slice(start + 1, -1).replace(/``/g, "`") : null;
  }
  const m = /[A-Za-z0-9_.\-[\]/]+$/.exec(head);
  return m ? m[0] : null;
}

/** The names that start with (or else hold) `word`, each as the query writes it. */
function nameItems(word: string, names: Names): Completion[] {
  const lower = word.toLowerCase().replace(/`/g, "");
  const groups: [string, string, string[]][] = [
    ["field", "run", names.fields],
    ["metric", "metrics", names.metrics.filter((m) => !isSystemMetric(m) || lower.startsWith("sys"))],
    ["param", "params", names.params],
    ["tag", "tags", names.tags],
  ];
  const count = new Map<string, number>();
  for (const [, , list] of groups) for (const n of list) count.set(n, (count.get(n) ?? 0) + 1);
  const cands: Completion[] = [];
  for (const [kind, scope, list] of groups) {
    for (const n of list) {
      // A name two groups share needs its scope; a field is never scoped.
      const bare = quoteName(n);
      const insert = kind === "field" || (count.get(n) === 1 && !lower.startsWith(scope + ".")) ? bare : `${scope}.${bare}`;
      cands.push({ label: insert, insert, kind });
    }
  }
  for (const k of KEYWORDS) cands.push({ label: k, insert: k, kind: "keyword" });
  return ranked(cands, lower, (c) => c.insert.toLowerCase().replace(/`/g, ""));
}

/** Prefix matches first, then those holding `lower`; each once; at most MAX_ITEMS. */
function ranked(cands: Completion[], lower: string, text: (c: Completion) => string): Completion[] {
  const seen = new Set<string>();
  const out: Completion[] = [];
  for (const pass of [0, 1]) {
    for (const c of cands) {
      const t = text(c);
      const fits = pass === 0 ? t.startsWith(lower) : !t.startsWith(lower) && t.includes(lower);
      if (!fits || seen.has(c.insert) || t === lower) continue;
      seen.add(c.insert);
      out.push(c);
      if (out.length >= MAX_ITEMS) return out;
    }
  }
  return out;
}

/** The values `subject` has among `rows` (the most common first) that fit `word`. */
function values(subject: string, word: string, names: Names, rows: RunRow[]): Completion[] {
  const dot = subject.indexOf(".");
  const scope = dot > 0 ? subject.slice(0, dot) : "";
  const rest = dot > 0 ? subject.slice(dot + 1) : subject;
  const count = new Map<string, number>();
  const add = (v: unknown) => {
    const text = literal(v);
    if (text !== null) count.set(text, (count.get(text) ?? 0) + 1);
  };
  if (subject === "status") for (const s of STATUSES) add(s);
  if (subject === "experiment") for (const e of names.experiments ?? []) add(e);
  for (const r of rows) {
    if (scope === "params" || (!scope && names.params.includes(rest))) add(r.params?.[rest]);
    if (scope === "tags" || (!scope && names.tags.includes(rest))) add(r.tags?.[rest]);
    if (!scope && names.fields.includes(rest) && subject !== "status") add((r as unknown as Record<string, unknown>)[rest]);
  }
  const lower = word.toLowerCase();
  const cands = [...count.entries()].sort((a, b) => b[1] - a[1]).map(([t]) => ({ label: t, insert: t, kind: "value" }));
  if (!lower) return cands.slice(0, MAX_ITEMS);
  const bareWord = lower.replace(/^['"]/, "");
  return ranked(cands, bareWord, (c) => c.insert.toLowerCase().replace(/^'/, ""));
}

/** `v` as the query language writes a value, or null for what it cannot compare. */
function literal(v: unknown): string | null {
  if (typeof v === "string") {
    if (v.length > 200) return null;
    return "'" + v.replace(/\\/g, "\\\\").replace(/'/g, "\\'") + "'";
  }
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : null;
  if (typeof v === "boolean") return v ? "true" : "false";
  return null;
}

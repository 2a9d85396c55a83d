// The runs ticked for comparison: which they are, kept in sessionStorage for
// the tab's life, and who is told when that changes. Pages tick and read
// through these functions; none holds the set itself.
//
//   import * as selection from "./selection";
//   selection.tick([run]);  selection.has(id);  const stop = selection.subscribe(paint);

/** A run as the selection keeps it. */
export interface Ticked {
  id: string;
  short_id: string;
}

const STORAGE_KEY = "lab.selection";
const ticked = new Map<string, string>(); // id -> short id, in the order ticked
const listeners = new Set<() => void>();

try {
  const saved = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? "[]");
  if (Array.isArray(saved)) for (const [id, short] of saved) ticked.set(String(id), String(short));
} catch {
  /* nothing saved */
}

export function has(id: string): boolean {
  return ticked.has(id);
}

export function count(): number {
  return ticked.size;
}

/** The ticked runs' ids, in the order they were ticked. */
export function ids(): string[] {
  return [...ticked.keys()];
}

/** Ticks `runs` (unticks them when `on` is false). */
export function tick(runs: readonly Ticked[], on = true): void {
  let changed = false;
  for (const r of runs) {
    if (on) {
      changed ||= !ticked.has(r.id);
      ticked.set(r.id, r.short_id);
    } else {
      changed = ticked.delete(r.id) || changed;
    }
  }
  if (changed) commit();
}

/** Unticks the run `id`; whether it was ticked. */
export function untick(id: string): boolean {
  if (!ticked.delete(id)) return false;
  commit();
  return true;
}

export function toggle(run: Ticked): void {
  tick([run], !ticked.has(run.id));
}

export function clear(): void {
  if (!ticked.size) return;
  ticked.clear();
  commit();
}

/** Calls `listener` after every change; gives the function that stops it. */
export function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}

function commit(): void {
  try {
    sessionStorage.setItem(STORAGE_KEY, JSON.stringify([...ticked]));
  } catch {
    /* storage disabled: kept for this page only */
  }
  for (const l of [...listeners]) l();
}

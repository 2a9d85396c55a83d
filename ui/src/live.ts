// One EventSource on /api/v1/events for the whole page; pages subscribe to
// the events they care about.

import { authedUrl, type RunRow } from "./api";

export interface MetricsEvent {
  id: string;
  names: string[];
  points: number;
}

type Listener = {
  run?: (r: RunRow) => void;
  metrics?: (m: MetricsEvent) => void;
  removed?: (m: { id: string }) => void;
  /** Events may have been missed (a reconnection, or the server said it dropped some): reload what is shown. */
  resync?: () => void;
};

const listeners = new Set<Listener>();
let source: EventSource | null = null;
let retry: number | undefined;
let indicator: HTMLElement | null = null;

export function subscribe(l: Listener): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

function setState(state: "live" | "connecting" | "offline"): void {
  if (!indicator) return;
  indicator.dataset.state = state;
  indicator.textContent = state === "live" ? "● live" : state === "connecting" ? "○ connecting…" : "○ offline";
}

function parse(e: MessageEvent): any {
  try {
    return JSON.parse(e.data);
  } catch {
    return null;
  }
}

export function connect(el: HTMLElement | null): void {
  if (el) indicator = el;
  if (retry !== undefined) clearTimeout(retry);
  retry = undefined;
  source?.close();
  setState("connecting");
  const es = new EventSource(authedUrl("/events"));
  source = es;
  let opened = false;
  es.onopen = () => {
    setState("live");
    // Anything may have changed while the stream was down.
    if (opened) for (const l of listeners) l.resync?.();
    opened = true;
  };
  es.onerror = () => {
    if (source !== es) return;
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (an HTTP error such as 401): try again later.
      setState("offline");
      retry = window.setTimeout(() => connect(null), 5000);
    } else {
      setState("connecting");
    }
  };
  es.addEventListener("run", (e) => {
    const d = parse(e as MessageEvent);
    if (d && typeof d.id === "string") for (const l of listeners) l.run?.(d);
  });
  es.addEventListener("metrics", (e) => {
    const d = parse(e as MessageEvent);
    if (d && typeof d.id === "string") {
      const m: MetricsEvent = { id: d.id, names: Array.isArray(d.names) ? d.names.map(String) : [], points: Number(d.points) || 0 };
      for (const l of listeners) l.metrics?.(m);
    }
  });
  // Not in the API document: the server sends it when a slow reader missed events.
  es.addEventListener("lagged", () => {
    for (const l of listeners) l.resync?.();
  });
  es.addEventListener("removed", (e) => {
    const d = parse(e as MessageEvent);
    if (d && typeof d.id === "string") for (const l of listeners) l.removed?.(d);
  });
}

/** Whether `id` (a full id) is the run that `ref` (a full id or a prefix) names. */
export function sameRun(id: string, ref: string): boolean {
  return id === ref || id.startsWith(ref);
}

// Routing in the URL fragment, so that a link reproduces the view:
//   #/?where=...&sort=-accuracy&cols=a,b&status=failed     runs table
//   #/run/<id>?tab=artifacts  (also #/run/<id>&tab=...)     one run
//   #/compare?ids=a,b,c&metric=loss                        compare runs
// Scalar values are percent-encoded; list values are comma-separated with each
// item percent-encoded (so a comma inside a name survives).

export type Page = "runs" | "run" | "compare" | "notfound";

export interface Route {
  page: Page;
  id?: string;
  raw: Map<string, string>;
}

export function parseHash(hash: string): Route {
  let s = hash.startsWith("#") ? hash.slice(1) : hash;
  if (s === "") s = "/";
  let path = s;
  let query = "";
  const q = s.search(/[?&]/);
  if (q >= 0) {
    path = s.slice(0, q);
    query = s.slice(q + 1);
  }
  const raw = new Map<string, string>();
  for (const part of query.split("&")) {
    if (!part) continue;
    const eq = part.indexOf("=");
    const k = eq >= 0 ? part.slice(0, eq) : part;
    const v = eq >= 0 ? part.slice(eq + 1) : "";
    raw.set(safeDecode(k), v);
  }
  const segs = path.split("/").filter((x) => x !== "");
  if (segs.length === 0) return { page: "runs", raw };
  if (segs[0] === "runs" && segs.length === 1) return { page: "runs", raw };
  if ((segs[0] === "run" || segs[0] === "runs") && segs.length >= 2)
    return { page: "run", id: safeDecode(segs.slice(1).join("/")), raw };
  if (segs[0] === "compare") return { page: "compare", raw };
  return { page: "notfound", raw };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

export function getStr(r: Route, key: string): string {
  const v = r.raw.get(key);
  return v === undefined ? "" : safeDecode(v);
}

export function getList(r: Route, key: string): string[] | null {
  const v = r.raw.get(key);
  if (v === undefined) return null;
  if (v === "") return [];
  return v.split(",").map(safeDecode).filter((x) => x !== "");
}

function encScalar(v: string): string {
  // Keep the fragment readable: these characters need no escaping there.
  return encodeURIComponent(v).replace(/%2C/g, ",").replace(/%3A/g, ":").replace(/%2F/g, "/").replace(/%40/g, "@");
}

export type HashValue = string | string[] | null | undefined;

export function buildHash(path: string, params: Record<string, HashValue>): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(params)) {
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) parts.push(encodeURIComponent(k) + "=" + v.map(encodeURIComponent).join(","));
    else if (v !== "") parts.push(encodeURIComponent(k) + "=" + encScalar(v));
  }
  return "#" + path + (parts.length ? "?" + parts.join("&") : "");
}

let router: ((r: Route) => void) | null = null;
export function setRouter(fn: (r: Route) => void): void {
  router = fn;
}

/** Goes to `hash`; `replace` rewrites the current history entry instead of adding one. */
export function navigate(hash: string, replace = false): void {
  if (hash === location.hash) return;
  if (replace) {
    history.replaceState(history.state, "", location.pathname + location.search + hash);
    router?.(parseHash(location.hash));
  } else {
    location.hash = hash;
  }
}

/** The runs table's last address, for the "back to runs" links. */
let lastRuns = "#/";
export function rememberRuns(hash: string): void {
  lastRuns = hash || "#/";
}
export function runsHash(): string {
  return lastRuns;
}

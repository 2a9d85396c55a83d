// Formatting of values for display. Non-finite numbers arrive as the strings
// "NaN", "Infinity", "-Infinity" and are shown as such.

export function fmtNum(v: unknown, digits = 4): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v !== "number") return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e15) return String(v);
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e7)) return v.toExponential(digits - 1).replace(/\.?0+e/, "e");
  const s = v.toPrecision(digits);
  return s.includes(".") && !s.includes("e") ? s.replace(/\.?0+$/, "") : s;
}

/** Short labels for chart axes. */
export function fmtAxis(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return "";
  const a = Math.abs(v);
  if (a === 0) return "0";
  if (a >= 1e6 || a < 1e-3) return v.toExponential(1).replace(/\.0e/, "e");
  if (a >= 1e4) return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1).replace(/\.0$/, "") + "k";
  return String(Number(v.toPrecision(4)));
}

/** A param's value as text: strings as they are, everything else as JSON. */
export function fmtValue(v: unknown): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : String(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  return compact(v, 0);
}

/** Lists and dicts as Python prints them, roughly: `[64, 32]`, `{"a": 1}`. */
function compact(v: unknown, depth: number): string {
  if (depth > 20) return "…";
  if (v === null || v === undefined) return "null";
  if (typeof v === "string") return depth === 0 ? v : JSON.stringify(v);
  if (typeof v !== "object") return String(v);
  if (Array.isArray(v)) return "[" + v.map((x) => compact(x, depth + 1)).join(", ") + "]";
  return "{" + Object.entries(v as Record<string, unknown>).map(([k, x]) => JSON.stringify(k) + ": " + compact(x, depth + 1)).join(", ") + "}";
}

export function fmtDuration(s: unknown): string {
  if (typeof s === "string") return s;
  if (typeof s !== "number" || !Number.isFinite(s)) return "";
  if (s < 0) return "-" + fmtDuration(-s);
  if (s < 1) return Math.round(s * 1000) + " ms";
  if (s < 60) return (s < 10 ? s.toFixed(2) : s.toFixed(1)).replace(/\.?0+$/, "") + " s";
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, "0")}s`;
  const hr = Math.floor(m / 60);
  if (hr < 48) return `${hr}h ${String(m % 60).padStart(2, "0")}m`;
  return `${Math.floor(hr / 24)}d ${hr % 24}h`;
}

function pad(n: number): string {
  return String(n).padStart(2, "0");
}

/** Local date and time, to the second. */
export function fmtTime(iso: unknown): string {
  if (typeof iso !== "string" || !iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtBytes(n: unknown): string {
  if (typeof n !== "number" || !Number.isFinite(n)) return "";
  if (n < 1024) return n + " B";
  const units = ["KB", "MB", "GB", "TB"];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i++;
  } while (v >= 1024 && i < units.length - 1);
  return (v < 10 ? v.toFixed(1) : Math.round(v).toString()) + " " + units[i];
}

/** Seconds a run has been going (for running runs, whose duration is missing). */
export function elapsed(start: unknown): number | null {
  if (typeof start !== "string") return null;
  const t = new Date(start).getTime();
  return Number.isNaN(t) ? null : Math.max(0, (Date.now() - t) / 1000);
}

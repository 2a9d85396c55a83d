// The system metrics Lab records by itself while a run is live (`sys/...`):
// kept apart from the script's own metrics, labelled and shown in their units.

import { fmtAxis, fmtBytes, fmtNum } from "./format";
import type { ChartUnits } from "./components/chart";

export const SYSTEM_PREFIX = "sys/";

export function isSystemMetric(name: string): boolean {
  return name.startsWith(SYSTEM_PREFIX);
}

const MACHINE: [string, string][] = [
  ["cpu_percent", "CPU of the process and its children, % of one core"],
  ["rss_bytes", "resident memory of the process and its children"],
  ["mem_used_bytes", "memory used on the machine"],
  ["mem_percent", "memory used on the machine, %"],
  ["disk_read_bytes_per_s", "disk reads, per second"],
  ["disk_write_bytes_per_s", "disk writes, per second"],
  ["net_recv_bytes_per_s", "network received, per second"],
  ["net_sent_bytes_per_s", "network sent, per second"],
];

const GPU: [string, string][] = [
  ["util_percent", "utilisation, %"],
  ["mem_used_bytes", "memory used"],
  ["mem_percent", "memory used, %"],
  ["temp_c", "temperature, °C"],
  ["power_watts", "power, W"],
];

/** Where a name goes: the process and the machine, then each GPU by number. */
function rank(name: string): [number, number, string] {
  const rest = name.slice(SYSTEM_PREFIX.length);
  const g = /^gpu(\d+)\/(.*)$/.exec(rest);
  if (g) {
    const i = GPU.findIndex(([k]) => k === g[2]);
    return [Number(g[1]) + 1, i < 0 ? GPU.length : i, rest];
  }
  const i = MACHINE.findIndex(([k]) => k === rest);
  return [0, i < 0 ? MACHINE.length : i, rest];
}

/** System metric names in the order they are shown. */
export function sortSystem(names: string[]): string[] {
  return [...names].sort((a, b) => {
    const x = rank(a);
    const y = rank(b);
    return x[0] - y[0] || x[1] - y[1] || (x[2] < y[2] ? -1 : x[2] > y[2] ? 1 : 0);
  });
}

/** What a system metric measures, in words (empty for a name Lab does not record). */
export function systemLabel(name: string): string {
  const rest = name.slice(SYSTEM_PREFIX.length);
  const g = /^gpu(\d+)\/(.*)$/.exec(rest);
  if (g) {
    const what = GPU.find(([k]) => k === g[2]);
    return what ? `GPU ${g[1]} ${what[1]}` : "";
  }
  return MACHINE.find(([k]) => k === rest)?.[1] ?? "";
}

/** A system metric's value in the unit its name ends with. */
export function fmtSystem(name: string, v: unknown): string {
  if (typeof v !== "number" || !Number.isFinite(v)) return fmtNum(v);
  if (name.endsWith("_bytes_per_s")) return fmtBytes(Math.round(v)) + "/s";
  if (name.endsWith("_bytes")) return fmtBytes(Math.round(v));
  if (name.endsWith("_percent")) return v.toFixed(1) + " %";
  if (name.endsWith("_watts")) return v.toFixed(1) + " W";
  if (name.endsWith("_c")) return v.toFixed(0) + " °C";
  return fmtNum(v);
}

const BYTE_UNITS = ["B", "KB", "MB", "GB", "TB", "PB"];

/** Byte ticks in one unit, chosen by the largest, with the decimals their spacing needs. */
function bytesAxis(splits: number[], suffix: string): string[] {
  const top = Math.max(...splits.map((v) => Math.abs(v)).filter(Number.isFinite), 0);
  let k = 0;
  while (k < BYTE_UNITS.length - 1 && top >= 1024 ** (k + 1)) k++;
  const scale = 1024 ** k;
  const step = splits.length > 1 ? Math.abs(splits[1] - splits[0]) / scale : 1;
  const decimals = step > 0 ? Math.max(0, Math.min(3, Math.ceil(-Math.log10(step)))) : 0;
  return splits.map((v) => (Number.isFinite(v) ? (v / scale).toFixed(decimals) + " " + BYTE_UNITS[k] + suffix : ""));
}

/** A system chart's units, by the end of its name (none for a name Lab does not record). */
export function systemUnits(name: string): ChartUnits | undefined {
  if (!isSystemMetric(name)) return undefined;
  const value = (v: number) => fmtSystem(name, v);
  if (name.endsWith("_bytes_per_s")) return { axis: (s) => bytesAxis(s, "/s"), value };
  if (name.endsWith("_bytes")) return { axis: (s) => bytesAxis(s, ""), value };
  const suffix = name.endsWith("_percent") ? " %" : name.endsWith("_watts") ? " W" : name.endsWith("_c") ? " °C" : null;
  if (suffix === null) return undefined;
  return { axis: (s) => s.map((v) => (v === null || !Number.isFinite(v) ? "" : fmtAxis(v) + suffix)), value };
}

// A sequential colour scale (viridis) for colouring runs by a value: its
// colour at a position in [0, 1], and a CSS gradient of it for a legend. On a
// light page the scale stops before its palest yellow, on a dark one it
// starts after its darkest blue, so both ends stay readable.

import { theme } from "../theme";

// Viridis at 0, 1/8, ..., 1 (matplotlib's).
const STOPS: [number, number, number][] = [
  [68, 1, 84],
  [70, 50, 127],
  [54, 92, 141],
  [39, 127, 142],
  [31, 161, 135],
  [74, 194, 109],
  [159, 218, 58],
  [208, 225, 28],
  [253, 231, 37],
];

function darkPage(): boolean {
  const m = /^#([0-9a-f]{6})$/i.exec(theme().bg);
  if (!m) return false;
  const n = parseInt(m[1], 16);
  const lum = 0.299 * ((n >> 16) & 255) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
  return lum < 128;
}

/** The part of the scale the page shows: [from, to] in viridis. */
function range(): [number, number] {
  return darkPage() ? [0.18, 1] : [0, 0.86];
}

function at(t: number): [number, number, number] {
  const x = Math.max(0, Math.min(1, t)) * (STOPS.length - 1);
  const i = Math.min(STOPS.length - 2, Math.floor(x));
  const f = x - i;
  const a = STOPS[i];
  const b = STOPS[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f)) as [number, number, number];
}

/** The colour at `p` in [0, 1] (low to high values). */
export function scaleColor(p: number, alpha = 1): string {
  const [from, to] = range();
  const [r, g, b] = at(from + (to - from) * p);
  return alpha >= 1 ? `rgb(${r}, ${g}, ${b})` : `rgba(${r}, ${g}, ${b}, ${alpha})`;
}

/** The scale as a CSS `linear-gradient`, left (low) to right (high). */
export function scaleGradient(): string {
  const parts: string[] = [];
  for (let i = 0; i <= 8; i++) parts.push(`${scaleColor(i / 8)} ${(i / 8) * 100}%`);
  return `linear-gradient(to right, ${parts.join(", ")})`;
}

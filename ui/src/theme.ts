// Colours for canvases (uPlot and the hand-drawn plots) come from the CSS
// variables, so light and dark themes follow `prefers-color-scheme`.

export interface Theme {
  fg: string;
  muted: string;
  grid: string;
  axis: string;
  bg: string;
  panel: string;
  accent: string;
  palette: string[];
}

let cached: Theme | null = null;

export function theme(): Theme {
  if (cached) return cached;
  const cs = getComputedStyle(document.documentElement);
  const v = (n: string, d: string) => cs.getPropertyValue(n).trim() || d;
  const palette: string[] = [];
  for (let i = 1; i <= 10; i++) palette.push(v(`--series-${i}`, "#2563eb"));
  cached = {
    fg: v("--fg", "#1d2330"),
    muted: v("--muted", "#5b6576"),
    grid: v("--grid", "#e3e7ee"),
    axis: v("--axis", "#8791a2"),
    bg: v("--bg", "#f7f8fa"),
    panel: v("--panel", "#ffffff"),
    accent: v("--accent", "#2563eb"),
    palette,
  };
  return cached;
}

export function seriesColor(i: number): string {
  const p = theme().palette;
  return p[((i % p.length) + p.length) % p.length];
}

/** `color` with an alpha (for hex colours #rrggbb). */
export function withAlpha(color: string, alpha: number): string {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) return color;
  const n = parseInt(m[1], 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

const listeners = new Set<() => void>();
export function onThemeChange(fn: () => void): () => void {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

const mq = window.matchMedia("(prefers-color-scheme: dark)");
mq.addEventListener("change", () => {
  cached = null;
  for (const fn of listeners) fn();
});

export function canvasFont(size = 11): string {
  const family = getComputedStyle(document.body).fontFamily || "system-ui, sans-serif";
  return `${size}px ${family}`;
}

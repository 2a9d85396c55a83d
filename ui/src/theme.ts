// The page's theme (system, light or dark: the user's choice, remembered in
// localStorage; system follows `prefers-color-scheme`), set as `data-theme`
// on the root for the CSS; and colours for canvases (uPlot and the
// hand-drawn plots), read from the CSS variables of the theme in force.

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

/** The colour of series `i`: the theme's ten, then colours made to differ
 *  from each other and from those (hues 335.3° apart, four lightnesses in
 *  turn: chosen so that the 50 first are at least 24 apart in RGB), not
 *  repeating before 100 series. */
export function seriesColor(i: number): string {
  const p = theme().palette;
  const n = Math.max(0, Math.floor(i)) % 100;
  if (n < p.length) return p[n];
  const j = n - p.length;
  const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
  const light = [0.4, 0.35, 0.59, 0.47][j % 4] + (dark ? 0.15 : 0);
  return hslHex((j * 335.3 + 40) % 360, 0.85, light);
}

/** An HSL colour (hue in degrees, saturation and lightness 0..1) as #rrggbb. */
export function hslHex(hue: number, sat: number, light: number): string {
  const a = sat * Math.min(light, 1 - light);
  const f = (k: number) => {
    const t = (k + hue / 30) % 12;
    const c = light - a * Math.max(-1, Math.min(t - 3, 9 - t, 1));
    return Math.round(c * 255).toString(16).padStart(2, "0");
  };
  return `#${f(0)}${f(8)}${f(4)}`;
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

export type ThemeChoice = "system" | "light" | "dark";
export const THEME_CHOICES: ThemeChoice[] = ["system", "light", "dark"];
const THEME_KEY = "lab.theme";

/** The theme the user chose (system unless they chose another). */
export function themeChoice(): ThemeChoice {
  let stored: string | null = null;
  try {
    stored = localStorage.getItem(THEME_KEY);
  } catch {
    // Storage refused (a private window's policy): the system's theme.
  }
  return (THEME_CHOICES as string[]).includes(stored ?? "") ? (stored as ThemeChoice) : "system";
}

const mq = window.matchMedia("(prefers-color-scheme: dark)");

/** Puts the chosen theme on the page, and has canvases redraw in it. */
export function applyTheme(): void {
  const choice = themeChoice();
  const dark = choice === "dark" || (choice === "system" && mq.matches);
  const want = dark ? "dark" : "light";
  if (document.documentElement.dataset.theme === want) return;
  document.documentElement.dataset.theme = want;
  cached = null;
  for (const fn of listeners) fn();
}

/** Remembers `choice` and applies it. */
export function setThemeChoice(choice: ThemeChoice): void {
  try {
    if (choice === "system") localStorage.removeItem(THEME_KEY);
    else localStorage.setItem(THEME_KEY, choice);
  } catch {
    // Not remembered; it still applies to this page.
  }
  applyTheme();
}

mq.addEventListener("change", applyTheme);
applyTheme();

export function canvasFont(size = 11): string {
  const family = getComputedStyle(document.body).fontFamily || "system-ui, sans-serif";
  return `${size}px ${family}`;
}

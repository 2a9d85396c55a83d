// A run's console (its Logs tab): the lines it printed, colours shown as
// text styles, a search, and following a running run as it prints.
//
// Log text is the run's own bytes: it is only ever put in text nodes, and
// its ANSI colour sequences are read into a fixed set of classes (or an
// `rgb()` made of numbers), never into markup.

import { api, errorText, isAbort, runPath } from "../api";
import type { LogLine, Logs } from "../api-types";
import { h, fill, debounce } from "../dom";

/** How many lines are drawn at once: the last ones, or the last matches. */
const SHOWN = 5000;
/** How often a running run's console is asked for again. */
const FOLLOW_MS = 1000;

interface Style {
  fg: string | null;
  bg: string | null;
  bold: boolean;
  dim: boolean;
  italic: boolean;
  underline: boolean;
}

const PLAIN: Style = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };

/** The 256-colour palette entry `n` as `rgb(…)`, or a class name for the first 16. */
function palette(n: number): string {
  if (n < 16) return "c" + n;
  if (n < 232) {
    const v = [0, 95, 135, 175, 215, 255];
    const i = n - 16;
    return `rgb(${v[Math.floor(i / 36)]},${v[Math.floor(i / 6) % 6]},${v[i % 6]})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
}

function clamp(n: number): number {
  return Math.max(0, Math.min(255, Number.isFinite(n) ? n : 0));
}

/** Applies one SGR sequence's parameters to `s`. */
function sgr(s: Style, params: number[]): Style {
  const out = { ...s };
  for (let i = 0; i < params.length; i++) {
    const p = params[i];
    if (p === 0) Object.assign(out, PLAIN);
    else if (p === 1) out.bold = true;
    else if (p === 2) out.dim = true;
    else if (p === 3) out.italic = true;
    else if (p === 4) out.underline = true;
    else if (p === 22) out.bold = out.dim = false;
    else if (p === 23) out.italic = false;
    else if (p === 24) out.underline = false;
    else if (p >= 30 && p <= 37) out.fg = "c" + (p - 30);
    else if (p >= 90 && p <= 97) out.fg = "c" + (p - 90 + 8);
    else if (p === 39) out.fg = null;
    else if (p >= 40 && p <= 47) out.bg = "c" + (p - 40);
    else if (p >= 100 && p <= 107) out.bg = "c" + (p - 100 + 8);
    else if (p === 49) out.bg = null;
    else if ((p === 38 || p === 48) && params[i + 1] === 5) {
      const c = palette(clamp(params[i + 2]));
      if (p === 38) out.fg = c;
      else out.bg = c;
      i += 2;
    } else if ((p === 38 || p === 48) && params[i + 1] === 2) {
      const c = `rgb(${clamp(params[i + 2])},${clamp(params[i + 3])},${clamp(params[i + 4])})`;
      if (p === 38) out.fg = c;
      else out.bg = c;
      i += 4;
    }
  }
  return out;
}

// An escape sequence: CSI (`ESC [ … final`), OSC (`ESC ] … BEL` or `ESC \`), or a two-byte one.
// eslint-disable-next-line no-control-regex
const ESCAPE = /\x1b\[([0-9;:?<=>]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** The line's text without any escape sequence or control character. */
export function plainText(text: string): string {
  return text.replace(ESCAPE, "").replace(CONTROL, "");
}

function styled(text: string, s: Style): Node {
  const clean = text.replace(CONTROL, "");
  if (s === PLAIN || (!s.fg && !s.bg && !s.bold && !s.dim && !s.italic && !s.underline)) return document.createTextNode(clean);
  const span = h("span", null, clean);
  const classes: string[] = [];
  if (s.fg?.startsWith("c")) classes.push("fg-" + s.fg);
  else if (s.fg) span.style.color = s.fg;
  if (s.bg?.startsWith("c")) classes.push("bg-" + s.bg);
  else if (s.bg) span.style.backgroundColor = s.bg;
  if (s.bold) classes.push("b");
  if (s.dim) classes.push("dim");
  if (s.italic) classes.push("i");
  if (s.underline) classes.push("u");
  span.className = classes.join(" ");
  return span;
}

/** The line as text nodes and styled spans. */
export function renderAnsi(text: string): Node[] {
  const out: Node[] = [];
  let style = PLAIN;
  let at = 0;
  for (const m of text.matchAll(ESCAPE)) {
    if (m.index! > at) out.push(styled(text.slice(at, m.index), style));
    if (m[2] === "m") style = sgr(style, (m[1] || "0").split(/[;:]/).map((x) => (x === "" ? 0 : Number(x))));
    at = m.index! + m[0].length;
  }
  if (at < text.length) out.push(styled(text.slice(at), style));
  return out;
}

export class LogView {
  el: HTMLElement;
  private lines: LogLine[] = [];
  private next = 0;
  private done = false;
  private timer: number | undefined;
  private abort = new AbortController();
  private list: HTMLElement;
  private status: HTMLElement;
  private search: HTMLInputElement;
  private stream: HTMLSelectElement;
  private follow: HTMLInputElement;
  private destroyed = false;

  constructor(private runId: string) {
    this.search = h("input", {
      type: "search",
      class: "log-search",
      placeholder: "Search the output",
      "aria-label": "Search the output",
      oninput: debounce(() => this.render(), 150),
    });
    this.stream = h(
      "select",
      { "aria-label": "Stream", onchange: () => this.render() },
      h("option", { value: "" }, "stdout and stderr"),
      h("option", { value: "stdout" }, "stdout"),
      h("option", { value: "stderr" }, "stderr"),
    );
    this.follow = h("input", { type: "checkbox", checked: true, onchange: () => this.follow.checked && this.scrollToEnd() });
    this.status = h("span", { class: "muted log-status", role: "status" }, "Loading the output…");
    this.list = h("div", { class: "log-lines", role: "log", "aria-live": "off", tabIndex: 0 });
    this.el = h(
      "div",
      { class: "logs" },
      h(
        "div",
        { class: "log-bar" },
        this.search,
        this.stream,
        h("label", { class: "log-follow", title: "Keep the newest lines in view while the run prints" }, this.follow, " Follow"),
        this.status,
      ),
      this.list,
    );
    void this.poll();
  }

  destroy(): void {
    this.destroyed = true;
    this.abort.abort();
    if (this.timer !== undefined) clearTimeout(this.timer);
  }

  private async poll(): Promise<void> {
    try {
      const got = await api<Logs>(runPath(this.runId) + "/logs", { after: this.next }, { signal: this.abort.signal });
      if (this.destroyed) return;
      this.next = got.next;
      this.done = got.done;
      if (got.lines.length || !this.lines.length) {
        this.lines.push(...got.lines);
        this.render();
      } else this.renderStatus(this.lines.length);
    } catch (e) {
      if (isAbort(e) || this.destroyed) return;
      this.status.textContent = "Could not read the output: " + errorText(e);
    }
    if (!this.done && !this.destroyed) this.timer = window.setTimeout(() => void this.poll(), FOLLOW_MS);
  }

  private matching(): LogLine[] {
    const q = this.search.value;
    const only = this.stream.value;
    if (!q && !only) return this.lines;
    const needle = q.toLowerCase();
    return this.lines.filter(
      (l) => l.stream === "cut" || ((!only || l.stream === only) && (!needle || plainText(l.text).toLowerCase().includes(needle))),
    );
  }

  private renderStatus(matches: number): void {
    const total = this.lines.filter((l) => l.stream !== "cut").length;
    const parts: string[] = [];
    parts.push(matches === this.lines.length ? `${total} lines` : `${matches} of ${total} lines`);
    if (matches > SHOWN) parts.push(`the last ${SHOWN} shown`);
    parts.push(this.done ? "ended" : "following the run");
    this.status.textContent = parts.join(" · ");
  }

  private render(): void {
    const all = this.matching();
    const shown = all.length > SHOWN ? all.slice(all.length - SHOWN) : all;
    const atEnd = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    if (!this.lines.length) {
      fill(this.list, h("p", { class: "muted log-empty" }, this.done ? "This run printed nothing (or its output was not recorded)." : "Nothing printed yet."));
    } else {
      fill(
        this.list,
        shown.map((l) =>
          l.stream === "cut"
            ? h("div", { class: "log-line log-cut" }, `… ${l.text} (the run printed more than it keeps) …`)
            : h(
                "div",
                { class: "log-line" + (l.stream === "stderr" ? " stderr" : ""), title: `${l.stream} · ${l.time ?? ""}` },
                h("span", { class: "log-time" }, (l.time ?? "").slice(11, 19)),
                h("span", { class: "log-text" }, renderAnsi(l.text)),
              ),
        ),
      );
    }
    this.renderStatus(all.length);
    if (this.follow.checked && (atEnd || !this.search.value)) this.scrollToEnd();
  }

  private scrollToEnd(): void {
    this.list.scrollTop = this.list.scrollHeight;
  }
}

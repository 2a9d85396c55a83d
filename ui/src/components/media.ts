// A run's media on its page: each image key with a step slider, each table
// key as a sortable table (its first rows), read from `/runs/{id}/media` and
// the files it names; read again every few seconds while the run is running
// (logging an image sends no live event), new steps joining their slider.

import { api, authedUrl, encodePath, errorText, isAbort, runPath, type MediaList } from "../api";
import { h, fill } from "../dom";
import { fmtValue } from "../format";

type MediaKey = MediaList["media"][number];
type MediaItem = MediaKey["items"][number];

/** A table shows this many rows at most (after sorting all of them). */
export const TABLE_ROWS = 500;

/** How often a running run's media are read again. */
const LIVE_POLL_MS = 2000;

/** Images narrower than this are scaled up by a whole factor, pixels kept sharp. */
const MIN_SHOWN_PX = 160;

function fileUrl(runId: string, path: string): string {
  return authedUrl(`${runPath(runId)}/artifacts/${encodePath(path)}`);
}

export class MediaSection {
  el: HTMLElement;
  private body: HTMLElement;
  private views = new Map<string, KeyView>();
  private abort = new AbortController();
  private pending = false;
  private poll: number | null = null;

  constructor(private runId: string) {
    this.body = h("div", { class: "media-keys" });
    this.el = h(
      "section",
      { class: "media", testid: "media-section", "aria-labelledby": "media-heading", hidden: true },
      h("div", { class: "section-head" }, h("h2", { id: "media-heading" }, "Media")),
      this.body,
    );
    void this.refresh();
  }

  /** Reads the run's media again: new keys are added, new steps join their slider. */
  async refresh(): Promise<void> {
    if (this.pending) return;
    this.pending = true;
    try {
      const list = await api<MediaList>(`${runPath(this.runId)}/media`, undefined, { signal: this.abort.signal });
      for (const key of list.media) {
        const seen = this.views.get(key.key);
        if (seen && seen.kind === key.kind) {
          seen.update(key.items);
          continue;
        }
        const view = key.kind === "table" ? new TableView(this.runId, key, this.abort.signal) : new ImageView(this.runId, key);
        if (seen) seen.el.replaceWith(view.el);
        else this.body.appendChild(view.el);
        this.views.set(key.key, view);
      }
      this.el.hidden = this.views.size === 0;
    } catch (e) {
      if (isAbort(e)) return;
      // A server without media (an older team server) says 404: the run has none to show.
      this.el.hidden = this.views.size === 0;
    } finally {
      this.pending = false;
    }
  }

  /** Reads the media again every few seconds while `running`. */
  setLive(running: boolean): void {
    if (running && this.poll === null) {
      this.poll = window.setInterval(() => void this.refresh(), LIVE_POLL_MS);
    } else if (!running && this.poll !== null) {
      window.clearInterval(this.poll);
      this.poll = null;
      void this.refresh();
    }
  }

  destroy(): void {
    if (this.poll !== null) window.clearInterval(this.poll);
    this.poll = null;
    this.abort.abort();
  }
}

interface KeyView {
  kind: string;
  el: HTMLElement;
  update(items: MediaItem[]): void;
}

/** A slider over a key's steps, and the step it shows. */
class Steps {
  el: HTMLElement;
  private input: HTMLInputElement;
  private label: HTMLElement;
  items: MediaItem[] = [];

  constructor(
    key: string,
    private onPick: (item: MediaItem) => void,
  ) {
    this.input = h("input", { type: "range", min: 0, max: 0, step: 1, value: 0, class: "media-slider", testid: "media-slider", "aria-label": `Step of ${key}` });
    this.label = h("span", { class: "media-step mono", testid: "media-step", "aria-live": "polite" });
    this.input.addEventListener("input", () => this.pick(Number(this.input.value)));
    this.el = h("div", { class: "media-steps" }, this.input, this.label);
  }

  /** New items: a slider at the last step follows the newest. */
  set(items: MediaItem[]): void {
    const atEnd = !this.items.length || Number(this.input.value) >= this.items.length - 1;
    const was = this.items[Number(this.input.value)]?.step;
    this.items = items;
    this.input.max = String(Math.max(0, items.length - 1));
    this.el.hidden = items.length < 2;
    let at = atEnd ? items.length - 1 : items.findIndex((i) => i.step === was);
    if (at < 0) at = items.length - 1;
    this.pick(at);
  }

  private pick(index: number): void {
    const item = this.items[index];
    if (!item) return;
    this.input.value = String(index);
    this.input.setAttribute("aria-valuetext", `step ${item.step}`);
    this.label.textContent = `step ${item.step} (${index + 1} of ${this.items.length})`;
    this.onPick(item);
  }
}

class ImageView implements KeyView {
  kind = "image";
  el: HTMLElement;
  private img: HTMLImageElement;
  private steps: Steps;
  private size: HTMLElement;

  constructor(
    private runId: string,
    key: MediaKey,
  ) {
    this.img = h("img", { class: "media-img", testid: "media-image", alt: `${key.key}`, decoding: "async" });
    this.size = h("span", { class: "muted media-size" });
    this.steps = new Steps(key.key, (item) => this.show(key.key, item));
    this.el = h(
      "figure",
      { class: "media-key", testid: "media-key", "data-key": key.key, "data-kind": "image" },
      h("figcaption", null, h("strong", null, key.key), " ", this.size),
      h("div", { class: "media-frame" }, this.img),
      this.steps.el,
    );
    this.steps.set(key.items);
  }

  update(items: MediaItem[]): void {
    this.steps.set(items);
  }

  private show(key: string, item: MediaItem): void {
    const scale = item.width > 0 && item.width < MIN_SHOWN_PX ? Math.ceil(MIN_SHOWN_PX / item.width) : 1;
    this.img.width = item.width * scale;
    this.img.height = item.height * scale;
    this.img.classList.toggle("pixelated", scale > 1);
    this.img.alt = `${key} at step ${item.step}`;
    this.img.dataset.step = String(item.step);
    this.img.src = fileUrl(this.runId, item.path);
    this.size.textContent = `${item.width} × ${item.height}`;
  }
}

interface Table {
  columns: string[];
  rows: unknown[][];
}

/** A cell's place in a sort: numbers (and the non-finite ones JSON spells as text) by value, then text. */
function sortKey(v: unknown): [number, number, string] {
  if (typeof v === "number") return [0, v, ""];
  if (v === "NaN") return [0, Number.POSITIVE_INFINITY, ""];
  if (v === "Infinity") return [0, Number.MAX_VALUE, ""];
  if (v === "-Infinity") return [0, -Number.MAX_VALUE, ""];
  if (v === null || v === undefined) return [2, 0, ""];
  return [1, 0, typeof v === "string" ? v : fmtValue(v)];
}

function compare(a: unknown, b: unknown): number {
  const [ka, na, ta] = sortKey(a);
  const [kb, nb, tb] = sortKey(b);
  if (ka !== kb) return ka - kb;
  if (na !== nb) return na < nb ? -1 : 1;
  return ta.localeCompare(tb);
}

class TableView implements KeyView {
  kind = "table";
  el: HTMLElement;
  private body: HTMLElement;
  private steps: Steps;
  private table: Table | null = null;
  private sort: { col: number; desc: boolean } | null = null;
  private shownPath = "";

  constructor(
    private runId: string,
    key: MediaKey,
    private signal: AbortSignal,
  ) {
    this.body = h("div", { class: "media-table-wrap" });
    this.steps = new Steps(key.key, (item) => void this.load(item));
    this.el = h(
      "section",
      { class: "media-key media-table-key", testid: "media-key", "data-key": key.key, "data-kind": "table", "aria-label": `Table ${key.key}` },
      h("h3", null, key.key),
      this.steps.el,
      this.body,
    );
    this.steps.set(key.items);
  }

  update(items: MediaItem[]): void {
    this.steps.set(items);
  }

  private async load(item: MediaItem): Promise<void> {
    if (item.path === this.shownPath) return;
    this.shownPath = item.path;
    try {
      const table = await api<Table>(`${runPath(this.runId)}/artifacts/${encodePath(item.path)}`, undefined, { signal: this.signal });
      if (this.shownPath !== item.path) return;
      this.table = table;
      this.render();
    } catch (e) {
      if (isAbort(e)) return;
      fill(this.body, h("p", { class: "error-text" }, "Could not read the table: " + errorText(e)));
    }
  }

  private render(): void {
    const t = this.table;
    if (!t) return;
    let rows = t.rows;
    const s = this.sort;
    if (s) {
      rows = [...rows].sort((a, b) => compare(a[s.col], b[s.col]) * (s.desc ? -1 : 1));
    }
    const shown = rows.slice(0, TABLE_ROWS);
    const head = t.columns.map((c, i) => {
      const on = s && s.col === i;
      const sortAttr = on ? (s.desc ? "descending" : "ascending") : "none";
      return h(
        "th",
        { scope: "col", "aria-sort": sortAttr, title: c },
        h(
          "button",
          {
            class: "sort-btn",
            testid: "media-sort",
            onclick: () => {
              this.sort = on ? { col: i, desc: !s.desc } : { col: i, desc: false };
              this.render();
            },
          },
          c,
          on ? (s.desc ? " ▼" : " ▲") : "",
        ),
      );
    });
    const cell = (v: unknown) => h("td", { class: typeof v === "number" ? "num" : undefined }, typeof v === "string" ? v : fmtValue(v));
    fill(
      this.body,
      h("table", { class: "data media-table", testid: "media-table" }, h("thead", null, h("tr", null, head)), h("tbody", null, shown.map((r) => h("tr", null, r.map(cell))))),
      rows.length > TABLE_ROWS
        ? h("p", { class: "muted media-table-note", testid: "media-table-note" }, `The first ${TABLE_ROWS} of ${rows.length} rows${s ? " in this order" : ""}.`)
        : null,
    );
  }
}

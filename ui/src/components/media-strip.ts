// Images side by side: for one media key (`e.log_image(key, ...)`), one
// image per run, at a step chosen with a slider (each run shows its image of
// that step, or of the last step before it). The runs' media come from
// `GET /runs/{id}/media`; the images from the artifact-file route.

import { api, authedUrl, encodePath, isAbort, runPath } from "../api";
import { h } from "../dom";
import { seriesColor } from "../theme";

interface MediaItem {
  step: number;
  path: string;
  width?: number;
  height?: number;
}

interface MediaKey {
  key: string;
  kind: string;
  items: MediaItem[];
}

export interface MediaRun {
  id: string;
  label: string;
  shortId: string;
  colorIndex: number;
}

export class MediaStrip {
  el: HTMLElement;
  private head: HTMLElement;
  private body: HTMLElement;
  private runs: MediaRun[] = [];
  private media = new Map<string, MediaKey[]>();
  private key = "";
  private step: number | null = null;
  private abort = new AbortController();
  private loads = 0;

  /** `choose` is told the key picked in the select (the page keeps it in its address). */
  constructor(private choose: (key: string) => void) {
    this.head = h("div", { class: "section-head" });
    this.body = h("div", { class: "media-strip-box" });
    this.el = h("section", { class: "card", hidden: true, testid: "compare-media" }, this.head, this.body);
  }

  /** Fetches the runs' media lists; the card shows once a run has an image. */
  async load(runs: MediaRun[], key: string): Promise<void> {
    const seq = ++this.loads;
    const got = await Promise.allSettled(runs.map((r) => api<{ media: MediaKey[] }>(`${runPath(r.id)}/media`, undefined, { signal: this.abort.signal })));
    // A later load (the page refreshes while runs are running) wins.
    if (this.abort.signal.aborted || seq !== this.loads) return;
    this.runs = runs;
    this.key = key;
    this.media.clear();
    got.forEach((g, i) => {
      // A run without media, or a server without the route, shows nothing.
      if (g.status === "fulfilled") this.media.set(runs[i].id, g.value.media ?? []);
      else if (isAbort(g.reason)) return;
    });
    this.render();
  }

  /** The key shown, as the page's address says. */
  setKey(key: string): void {
    if (key === this.key) return;
    this.key = key;
    this.step = null;
    this.render();
  }

  private keys(): string[] {
    const seen = new Set<string>();
    for (const list of this.media.values()) for (const m of list) if (m.kind === "image" && m.items.length) seen.add(m.key);
    return [...seen].sort();
  }

  private items(runId: string, key: string): MediaItem[] {
    const m = (this.media.get(runId) ?? []).find((x) => x.key === key && x.kind === "image");
    return m ? [...m.items].sort((a, b) => a.step - b.step) : [];
  }

  private render(): void {
    const keys = this.keys();
    this.el.hidden = keys.length === 0;
    if (!keys.length) return;
    const key = keys.includes(this.key) ? this.key : keys[0];
    const steps = [...new Set(this.runs.flatMap((r) => this.items(r.id, key).map((it) => it.step)))].sort((a, b) => a - b);
    const step = this.step !== null && steps.includes(this.step) ? this.step : steps[steps.length - 1];
    const select = h(
      "select",
      { "aria-label": "Media key", testid: "media-key", onchange: () => this.choose(select.value) },
      keys.map((k) => h("option", { value: k }, k)),
    );
    select.value = key;
    const stepOut = h("output", { class: "mono", testid: "media-step" }, String(step));
    const slider = h("input", {
      type: "range",
      min: 0,
      max: Math.max(0, steps.length - 1),
      step: 1,
      value: String(steps.indexOf(step)),
      "aria-label": "Step",
      "aria-valuetext": `step ${step}`,
      testid: "media-slider",
      disabled: steps.length < 2,
      oninput: () => {
        // Only the images change: the slider stays under the pointer.
        this.step = steps[Number(slider.value)] ?? step;
        stepOut.textContent = String(this.step);
        slider.setAttribute("aria-valuetext", `step ${this.step}`);
        this.renderCells(key, this.step);
      },
    });
    this.head.replaceChildren(
      h("h2", null, "Media"),
      h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "key"), select),
      h("label", { class: "ctl" }, h("span", { class: "ctl-label" }, "step"), slider, stepOut),
    );
    this.renderCells(key, step);
  }

  /** One image per run: its image at `step`, or at the last step before it. */
  private renderCells(key: string, step: number): void {
    const cells = this.runs.map((r) => {
      const before = this.items(r.id, key).filter((it) => it.step <= step);
      const it = before[before.length - 1];
      const caption = h(
        "figcaption",
        null,
        h("span", { class: "swatch", style: { background: seriesColor(r.colorIndex) }, "aria-hidden": "true" }),
        h("a", { href: `#/run/${encodeURIComponent(r.id)}`, title: r.id }, r.label),
        it ? h("span", { class: "muted" }, `step ${it.step}`) : null,
      );
      if (!it) return h("figure", { class: "media-cell", "data-run-id": r.id }, h("div", { class: "media-none muted" }, "no image"), caption);
      const img = h("img", {
        src: authedUrl(`${runPath(r.id)}/artifacts/${encodePath(it.path)}`),
        alt: `${key} of ${r.label} at step ${it.step}`,
        loading: "lazy",
        decoding: "async",
        width: it.width,
        height: it.height,
        testid: "media-image",
      });
      return h("figure", { class: "media-cell", "data-run-id": r.id, "data-step": String(it.step) }, img, caption);
    });
    this.body.replaceChildren(h("div", { class: "media-strip" }, cells));
  }

  destroy(): void {
    this.abort.abort();
  }
}

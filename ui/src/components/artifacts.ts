// The artifacts browser: a folder tree built from the flat list of files, and
// a preview of the chosen file. Images are shown with <img> (SVG too: an image
// cannot run scripts); text, CSV, JSON are shown as text (the first 200 KB,
// fetched with a Range header). HTML and XML are never rendered: their source
// is shown as text. Every file has a download link.

import { api, apiFetch, authedUrl, encodePath, errorText, isAbort, runPath, type ArtifactFile } from "../api";
import { h, fill, loading, errorBox } from "../dom";
import { fmtBytes } from "../format";

const LIMIT = 200 * 1024;
const IMAGE = new Set(["png", "jpg", "jpeg", "gif", "webp", "bmp", "ico", "avif", "svg"]);
const MARKUP = new Set(["html", "htm", "xhtml", "xml", "svg"]);
const BINARY = new Set([
  "pkl", "pickle", "joblib", "pt", "pth", "onnx", "npy", "npz", "h5", "hdf5", "parquet", "arrow", "feather", "zip", "gz", "tgz",
  "bz2", "xz", "zst", "tar", "bin", "so", "dll", "exe", "pdf", "mp4", "mp3", "wav", "ogg", "safetensors", "ckpt", "db", "sqlite",
]);

interface Dir {
  name: string;
  path: string;
  dirs: Map<string, Dir>;
  files: ArtifactFile[];
  size: number;
  count: number;
}

function ext(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1);
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : "";
}

function buildTree(files: ArtifactFile[]): Dir {
  const root: Dir = { name: "", path: "", dirs: new Map(), files: [], size: 0, count: 0 };
  for (const f of files) {
    const parts = f.path.split("/").filter((p) => p !== "");
    let d = root;
    d.size += f.size;
    d.count++;
    for (let i = 0; i < parts.length - 1; i++) {
      let next = d.dirs.get(parts[i]);
      if (!next) {
        next = { name: parts[i], path: parts.slice(0, i + 1).join("/"), dirs: new Map(), files: [], size: 0, count: 0 };
        d.dirs.set(parts[i], next);
      }
      d = next;
      d.size += f.size;
      d.count++;
    }
    d.files.push(f);
  }
  return root;
}

export function fileUrl(runId: string, path: string): string {
  return authedUrl(`${runPath(runId)}/artifacts/${encodePath(path)}`);
}

export class ArtifactBrowser {
  el: HTMLElement;
  private tree: HTMLElement;
  private preview: HTMLElement;
  private files: ArtifactFile[] = [];
  private abort = new AbortController();
  private previewAbort: AbortController | null = null;
  private current: string | null = null;

  constructor(
    private runId: string,
    private initialPath: string | null,
    private onOpen: (path: string) => void,
  ) {
    this.tree = h("div", { class: "art-tree", testid: "artifact-tree", role: "tree", "aria-label": "Artifacts" }, loading("Loading artifacts…"));
    this.preview = h(
      "section",
      { class: "art-preview", testid: "artifact-preview", "aria-live": "polite" },
      h("p", { class: "muted" }, "Choose a file to preview it."),
    );
    this.el = h("div", { class: "artifacts" }, this.tree, this.preview);
    this.load();
  }

  private async load(): Promise<void> {
    try {
      const r = await api<{ files: ArtifactFile[] }>(`${runPath(this.runId)}/artifacts`, undefined, { signal: this.abort.signal });
      this.files = r.files ?? [];
      this.renderTree();
      const first = this.initialPath && this.files.find((f) => f.path === this.initialPath);
      if (first) this.open(first, false);
    } catch (e) {
      if (!isAbort(e)) fill(this.tree, errorBox("Could not list the artifacts: " + errorText(e)));
    }
  }

  private renderTree(): void {
    if (!this.files.length) {
      fill(this.tree, h("p", { class: "muted" }, "This run has no artifacts."));
      return;
    }
    const root = buildTree(this.files);
    fill(
      this.tree,
      h("div", { class: "art-total muted" }, `${root.count} file${root.count === 1 ? "" : "s"}, ${fmtBytes(root.size)}`),
      this.renderDir(root, 0),
    );
  }

  private renderDir(d: Dir, depth: number): HTMLElement {
    const items: HTMLElement[] = [];
    const dirs = [...d.dirs.values()].sort((a, b) => a.name.localeCompare(b.name));
    for (const sub of dirs) {
      const details = h(
        "details",
        { class: "art-dir", open: depth < 2 || d.count < 50 },
        h(
          "summary",
          { role: "treeitem" },
          h("span", { class: "art-icon", "aria-hidden": "true" }, "▸"),
          h("span", { class: "art-name" }, sub.name + "/"),
          h("span", { class: "art-size muted" }, `${sub.count} · ${fmtBytes(sub.size)}`),
        ),
        this.renderDir(sub, depth + 1),
      );
      items.push(h("li", null, details));
    }
    for (const f of d.files) {
      const name = f.path.slice(f.path.lastIndexOf("/") + 1);
      items.push(
        h(
          "li",
          { class: "art-file-row" + (f.path === this.current ? " current" : ""), "data-path": f.path },
          h(
            "button",
            { class: "art-file", testid: "artifact-file", "data-path": f.path, role: "treeitem", title: f.path, onclick: () => this.open(f, true) },
            h("span", { class: "art-icon", "aria-hidden": "true" }, IMAGE.has(ext(f.path)) ? "▣" : "▤"),
            h("span", { class: "art-name" }, name),
          ),
          h("span", { class: "art-size muted" }, fmtBytes(f.size)),
          h("a", { class: "art-dl", href: fileUrl(this.runId, f.path), download: name, title: `Download ${f.path}`, "aria-label": `Download ${f.path}` }, "↓"),
        ),
      );
    }
    return h("ul", { class: depth === 0 ? "art-list root" : "art-list", role: depth === 0 ? undefined : "group" }, items);
  }

  private async open(f: ArtifactFile, user: boolean): Promise<void> {
    this.current = f.path;
    for (const li of this.tree.querySelectorAll<HTMLElement>(".art-file-row")) li.classList.toggle("current", li.dataset.path === f.path);
    if (user) this.onOpen(f.path);
    this.previewAbort?.abort();
    const ac = new AbortController();
    this.previewAbort = ac;
    const name = f.path.slice(f.path.lastIndexOf("/") + 1);
    const e = ext(f.path);
    const head = h(
      "header",
      { class: "art-prev-head" },
      h("span", { class: "art-prev-path mono", title: f.path }, f.path),
      h("span", { class: "muted" }, fmtBytes(f.size)),
      h("span", { class: "spacer" }),
      h("a", { class: "btn small", href: fileUrl(this.runId, f.path), download: name }, "Download"),
    );
    const body = h("div", { class: "art-prev-body" });
    fill(this.preview, head, body);
    this.preview.dataset.path = f.path;

    if (IMAGE.has(e)) {
      const dims = h("span", { class: "muted img-dims" });
      const img = h("img", { src: fileUrl(this.runId, f.path), alt: f.path, class: "art-img", decoding: "async" });
      img.addEventListener("load", () => (dims.textContent = `${img.naturalWidth} × ${img.naturalHeight} px`));
      img.addEventListener("error", () => fill(body, errorBox("The image could not be shown.")));
      head.insertBefore(dims, head.querySelector(".spacer"));
      fill(body, h("div", { class: "img-frame" }, img));
      return;
    }
    if (BINARY.has(e)) {
      fill(body, h("p", { class: "muted" }, "A binary file: download it to open it."));
      return;
    }
    fill(body, loading());
    try {
      const { bytes, truncated } = await this.fetchHead(f, ac.signal);
      if (ac.signal.aborted) return;
      if (looksBinary(bytes)) {
        fill(body, h("p", { class: "muted" }, "A binary file: download it to open it."));
        return;
      }
      const text = new TextDecoder("utf-8").decode(bytes);
      const more = truncated ? h("p", { class: "muted trunc" }, `The first ${fmtBytes(bytes.length)} of ${fmtBytes(f.size)}: download the file for the rest.`) : null;
      if (e === "csv" || e === "tsv") {
        fill(body, csvTable(text, e === "tsv" ? "\t" : ",", truncated), more);
      } else if (e === "json" && !truncated) {
        let shown = text;
        try {
          shown = JSON.stringify(JSON.parse(text), null, 2);
        } catch {
          /* not valid JSON: as it is */
        }
        fill(body, h("pre", { class: "art-text" }, shown));
      } else {
        fill(
          body,
          MARKUP.has(e) ? h("p", { class: "muted" }, "Markup is shown as source, never rendered.") : null,
          h("pre", { class: "art-text" }, text),
          more,
        );
      }
    } catch (err) {
      if (!isAbort(err)) fill(body, errorBox("Could not read the file: " + errorText(err)));
    }
  }

  /** The first 200 KB of the file (a Range request when it is bigger). */
  private async fetchHead(f: ArtifactFile, signal: AbortSignal): Promise<{ bytes: Uint8Array; truncated: boolean }> {
    const big = f.size > LIMIT;
    const res = await apiFetch(`${runPath(this.runId)}/artifacts/${encodePath(f.path)}`, undefined, {
      signal,
      headers: big ? { Range: `bytes=0-${LIMIT - 1}` } : undefined,
    });
    const reader = res.body?.getReader();
    if (!reader) {
      const all = new Uint8Array(await res.arrayBuffer());
      return { bytes: all.slice(0, LIMIT), truncated: big || all.length > LIMIT };
    }
    const chunks: Uint8Array[] = [];
    let n = 0;
    while (n < LIMIT) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      n += value.length;
    }
    if (n >= LIMIT) reader.cancel().catch(() => {});
    const out = new Uint8Array(Math.min(n, LIMIT));
    let o = 0;
    for (const c of chunks) {
      const take = Math.min(c.length, out.length - o);
      out.set(c.subarray(0, take), o);
      o += take;
      if (o >= out.length) break;
    }
    return { bytes: out, truncated: big || n > LIMIT };
  }

  destroy(): void {
    this.abort.abort();
    this.previewAbort?.abort();
  }
}

function looksBinary(b: Uint8Array): boolean {
  const n = Math.min(b.length, 8000);
  let odd = 0;
  for (let i = 0; i < n; i++) {
    const c = b[i];
    if (c === 0) return true;
    if (c < 7 || (c > 13 && c < 32)) odd++;
  }
  return n > 0 && odd / n > 0.1;
}

/** Parses CSV (quotes, doubled quotes, newlines in quotes) into rows. */
export function parseCsv(text: string, sep: string, maxRows: number): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          cell += '"';
          i++;
        } else quoted = false;
      } else cell += c;
    } else if (c === '"' && cell === "") {
      quoted = true;
    } else if (c === sep) {
      row.push(cell);
      cell = "";
    } else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      if (rows.length >= maxRows) return rows;
    } else cell += c;
  }
  if (cell !== "" || row.length) {
    row.push(cell);
    rows.push(row);
  }
  return rows;
}

function csvTable(text: string, sep: string, truncated: boolean): HTMLElement {
  const MAX = 1000;
  let rows = parseCsv(text, sep, MAX + 1);
  if (truncated && rows.length > 1 && rows.length <= MAX) rows = rows.slice(0, -1); // the last line may be cut
  const [header, ...rest] = rows;
  const shown = rest.slice(0, MAX - 1);
  return h(
    "div",
    { class: "csv-wrap" },
    h(
      "table",
      { class: "csv data" },
      header ? h("thead", null, h("tr", null, header.map((c) => h("th", { scope: "col" }, c)))) : null,
      h(
        "tbody",
        null,
        shown.map((r) => h("tr", null, r.map((c) => h("td", { class: /^-?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(c) ? "num" : undefined }, c)))),
      ),
    ),
    rest.length > shown.length ? h("p", { class: "muted" }, `The first ${shown.length} rows.`) : null,
  );
}

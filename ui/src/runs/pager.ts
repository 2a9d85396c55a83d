// The runs of the table's query, fetched from the server in pages of 500 as
// they come into view: the pages held and those on their way, how many runs
// match, fetching the pages in view again when runs change, and a run's new
// state put into the row that holds it. A newer fetch wins over an older one.
// Only a window of pages is held, whatever the number of runs: pages far from
// the view are dropped, a page is asked for once the view has rested on it,
// and the request for a page the view has left is cancelled.

import { api, type Names, type Params, type RunRow, type RunsResponse } from "../api";

/** Runs in a page: what one request asks for. */
export const PAGE = 500;
/** Pages kept either side of those in view (page 0, which the default columns
 *  and the completions read, is kept too); the others are dropped. */
export const KEEP = 2;
/** How long the view rests on pages not held before they are asked for (ms):
 *  pages scrolled past faster than this are never asked for. */
const SETTLE_MS = 40;

export interface PagerHooks {
  /** The `/runs` parameters for `limit` runs from `offset`. */
  params(offset: number, limit: number): Params;
  signal: AbortSignal;
  /** The project's names, which every answer carries. */
  names(n: Names | undefined): void;
  /** Rows came in: `whole` when they replaced every page held (a refresh). */
  loaded(whole: boolean): void;
  failed(e: unknown): void;
}

/** The pages held and the total, to show at once when the same query comes back. */
export interface PagerSnapshot {
  pages: Map<number, RunRow[]>;
  total: number;
}

export class Pager {
  /** Runs matching the query; -1 until the server said. */
  total = -1;
  private pages = new Map<number, RunRow[]>();
  /** The requests on their way, by page: each can be cancelled. */
  private pending = new Map<number, AbortController>();
  private gen = 0;
  /** The pages in view at the last want() (first, last). */
  private inView: [number, number] = [0, -1];
  private timer = 0;
  /** A first page asked for before the query could be read (askEarly). */
  private early: { params: string; answer: Promise<RunsResponse>; ctl: AbortController } | null = null;

  constructor(private hooks: PagerHooks) {}

  /** How many pages are held. */
  get held(): number {
    return this.pages.size;
  }

  /** Forgets every page and cancels every request, for a new query. */
  reset(): void {
    this.gen++;
    this.pages = new Map();
    this.cancel(() => true);
    this.stopTimer();
    this.total = -1;
  }

  /** Holds no run: the server refused the query. */
  clear(): void {
    this.total = 0;
    this.pages = new Map();
  }

  snapshot(): PagerSnapshot {
    return { pages: this.pages, total: this.total };
  }

  restore(s: PagerSnapshot): void {
    this.pages = s.pages;
    this.total = s.total;
  }

  row(i: number): RunRow | null {
    const page = this.pages.get(Math.floor(i / PAGE));
    return page?.[i % PAGE] ?? null;
  }

  /** The row of run `id` in a page held, or null. */
  find(id: string): RunRow | null {
    for (const rows of this.pages.values()) {
      const r = rows.find((x) => x.id === id);
      if (r) return r;
    }
    return null;
  }

  /** Whether a page held has the run `id`. */
  holds(id: string): boolean {
    return [...this.pages.values()].some((rows) => rows.some((r) => r.id === id));
  }

  /** Rows `first` to `last` are in view: drops the pages far from them,
   *  cancels the requests for pages out of view, and asks for the pages
   *  not held once the view has rested on them for SETTLE_MS. */
  want(first: number, last: number): void {
    const p0 = Math.floor(first / PAGE);
    const p1 = Math.floor(last / PAGE);
    this.cancel((p) => p < p0 || p > p1);
    for (const p of [...this.pages.keys()]) {
      if (p !== 0 && (p < p0 - KEEP || p > p1 + KEEP)) this.pages.delete(p);
    }
    const moved = p0 !== this.inView[0] || p1 !== this.inView[1];
    this.inView = [p0, p1];
    let missing = false;
    for (let p = p0; p <= p1 && !missing; p++) missing = !this.pages.has(p) && !this.pending.has(p);
    if (!missing || (this.timer && !moved)) return;
    this.stopTimer();
    this.timer = window.setTimeout(() => {
      this.timer = 0;
      const [a, b] = this.inView;
      for (let p = a; p <= b; p++) void this.fetch(p);
    }, SETTLE_MS);
  }

  /** Puts the new state of a run into the rows that hold it; whether one did. */
  merge(r: RunRow): boolean {
    let found = false;
    for (const [p, rows] of this.pages) {
      const i = rows.findIndex((x) => x.id === r.id);
      if (i >= 0) {
        rows[i] = { ...rows[i], ...r, params: { ...rows[i].params, ...r.params }, metrics: { ...rows[i].metrics, ...r.metrics } };
        this.pages.set(p, rows);
        found = true;
      }
    }
    return found;
  }

  async fetch(p: number): Promise<void> {
    if (this.pending.has(p) || this.pages.has(p)) return;
    const gen = this.gen;
    const ctl = new AbortController();
    this.pending.set(p, ctl);
    // Cancelled with the page too.
    const page = this.hooks.signal;
    const stop = () => ctl.abort();
    page.addEventListener("abort", stop, { once: true });
    if (page.aborted) ctl.abort();
    try {
      const r = await (this.takeEarly(p) ?? this.get(p, ctl.signal));
      if (gen !== this.gen || this.pending.get(p) !== ctl) return;
      this.pending.delete(p);
      this.pages.set(p, r.runs);
      this.total = r.total;
      this.hooks.names(r.names);
      this.hooks.loaded(false);
    } catch (e) {
      if (gen !== this.gen || this.pending.get(p) !== ctl) return;
      this.pending.delete(p);
      this.hooks.failed(e);
    } finally {
      page.removeEventListener("abort", stop);
    }
  }

  /** Cancels the requests for the pages `which` says. */
  private cancel(which: (p: number) => boolean): void {
    for (const [p, ctl] of [...this.pending]) {
      if (!which(p)) continue;
      this.pending.delete(p);
      ctl.abort();
    }
  }

  private stopTimer(): void {
    clearTimeout(this.timer);
    this.timer = 0;
  }

  /** Fetches the pages of rows `first` to `last` again and swaps them in at once (live updates). */
  async refresh(first: number, last: number): Promise<void> {
    // Before the first page is in, it is on its way (or asked for early):
    // it shows what the refresh would.
    if (this.total < 0 && (this.pending.size || this.early)) return;
    const gen = ++this.gen;
    this.cancel(() => true);
    this.stopTimer();
    const want = new Set<number>([Math.floor(first / PAGE)]);
    if (last >= first) for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) want.add(p);
    try {
      const got = await Promise.all([...want].map(async (p) => [p, await this.get(p)] as const));
      if (gen !== this.gen) return;
      this.pages = new Map();
      for (const [p, r] of got) {
        this.pages.set(p, r.runs);
        this.total = r.total;
        this.hooks.names(r.names);
      }
      this.hooks.loaded(true);
    } catch (e) {
      if (gen === this.gen) this.hooks.failed(e);
    }
  }

  /** Asks for a page with `params` now, before the query is known: the
   *  first page fetched takes the answer if it asks the same (takeEarly). */
  askEarly(params: Params): void {
    // Cancelled when not taken, and with the page.
    const ctl = new AbortController();
    const page = this.hooks.signal;
    if (page.aborted) ctl.abort();
    else page.addEventListener("abort", () => ctl.abort(), { once: true });
    const answer = api<RunsResponse>("/runs", params, { signal: ctl.signal });
    // Its failure is met by the fetch that takes it, if one does.
    answer.catch(() => undefined);
    this.early = { params: JSON.stringify(params), answer, ctl };
  }

  /** The early answer, for the first page fetched if it asks the same;
   *  cancelled and forgotten otherwise. */
  private takeEarly(p: number): Promise<RunsResponse> | null {
    const asked = this.early;
    if (!asked) return null;
    this.early = null;
    if (asked.params === JSON.stringify(this.hooks.params(p * PAGE, PAGE))) return asked.answer;
    asked.ctl.abort();
    return null;
  }

  /** Page `p` from the server (`signal`: what cancels it; by default, leaving the page). */
  private get(p: number, signal: AbortSignal = this.hooks.signal): Promise<RunsResponse> {
    return api<RunsResponse>("/runs", this.hooks.params(p * PAGE, PAGE), { signal });
  }
}

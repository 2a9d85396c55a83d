// The runs of the table's query, fetched from the server in pages of 500 as
// they come into view: the pages held and those on their way, how many runs
// match, fetching the pages in view again when runs change, and a run's new
// state put into the row that holds it. A newer fetch wins over an older one.

import { api, type Names, type Params, type RunRow, type RunsResponse } from "../api";

/** Runs in a page: what one request asks for. */
export const PAGE = 500;

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
  private pending = new Set<number>();
  private gen = 0;

  constructor(private hooks: PagerHooks) {}

  /** Forgets every page, for a new query. */
  reset(): void {
    this.gen++;
    this.pages = new Map();
    this.pending.clear();
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

  /** Fetches the pages of rows `first` to `last` not held yet. */
  want(first: number, last: number): void {
    for (let p = Math.floor(first / PAGE); p <= Math.floor(last / PAGE); p++) {
      if (!this.pages.has(p)) void this.fetch(p);
    }
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
    this.pending.add(p);
    try {
      const r = await this.get(p);
      if (gen !== this.gen) return;
      this.pending.delete(p);
      this.pages.set(p, r.runs);
      this.total = r.total;
      this.hooks.names(r.names);
      this.hooks.loaded(false);
    } catch (e) {
      if (gen !== this.gen) return;
      this.pending.delete(p);
      this.hooks.failed(e);
    }
  }

  /** Fetches the pages of rows `first` to `last` again and swaps them in at once (live updates). */
  async refresh(first: number, last: number): Promise<void> {
    if (this.total < 0 && this.pending.size) return;
    const gen = ++this.gen;
    this.pending.clear();
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

  private get(p: number): Promise<RunsResponse> {
    return api<RunsResponse>("/runs", this.hooks.params(p * PAGE, PAGE), { signal: this.hooks.signal });
  }
}

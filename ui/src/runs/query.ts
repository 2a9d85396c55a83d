// The runs page's state in the URL: the filter, the sort keys, the statuses,
// the experiment and the chosen columns. Read from a route, written back as
// an address, and turned into the `/runs` query the server answers.

import type { Names, Params } from "../api";
import { columnsParam, parseKey, parseSort, shortKey, sortToServer, sortToUrl, type ColKey, type SortKey } from "../keys";
import { buildHash, getList, getStr, type Route } from "../route";
import { groupKeyText, readGroupKey } from "./groups";

export interface Query {
  where: string;
  sort: SortKey[];
  status: string[];
  experiment: string;
  cols: ColKey[] | null; // null: the default columns
  group: ColKey | null; // null: not grouped (groups.ts)
}

export type QueryChange = Partial<Query>;

export const NO_QUERY: Query = { where: "", sort: [], status: [], experiment: "", cols: null, group: null };

export function readQuery(route: Route, names: Names | null): Query {
  const cols = getList(route, "cols");
  return {
    where: getStr(route, "where"),
    sort: parseSort(getList(route, "sort"), names),
    status: (getList(route, "status") ?? []).filter((s) => s),
    experiment: getStr(route, "experiment"),
    cols: cols === null ? null : cols.map((s) => parseKey(s, names)),
    group: readGroupKey(getStr(route, "group"), names),
  };
}

/** The address of the runs page showing `q`. */
export function queryHash(q: Query, names: Names | null): string {
  return buildHash("/", {
    where: q.where.trim() || undefined,
    sort: q.sort.length ? sortToUrl(q.sort, names) : undefined,
    status: q.status.length ? q.status : undefined,
    experiment: q.experiment || undefined,
    cols: q.cols === null ? undefined : q.cols.map((c) => shortKey(c, names)),
    group: groupKeyText(q.group, names),
  });
}

/** What the server is asked for `q` with these columns: rows fetched under one key answer no other. */
export function fetchKey(q: Query, cols: ColKey[], names: Names | null): string {
  return JSON.stringify([q.where, sortToServer(q.sort), q.status.join(","), q.experiment, columnsParam(cols, names)]);
}

/** The `/runs` parameters for `limit` runs from `offset`. */
export function serverParams(q: Query, cols: ColKey[], names: Names | null, offset: number, limit: number): Params {
  return {
    where: q.where.trim() || undefined,
    sort: sortToServer(q.sort),
    status: q.status.length ? q.status.join(",") : undefined,
    experiment: q.experiment || undefined,
    columns: columnsParam(cols, names),
    limit,
    offset,
  };
}

/** Whether `q` leaves some runs out. */
export function filters(q: Query): boolean {
  return !!(q.where || q.status.length || q.experiment);
}

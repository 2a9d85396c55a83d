// The client of the HTTP API (docs/http-api.md). For `lab ui`, every call
// sends the token (kept in sessionStorage for the tab) as `Authorization:
// Bearer`; URLs that the browser fetches by itself (<img>, downloads,
// EventSource) carry it as `?token=`. On a team server (`lab server`), the
// page logs in once and its session cookie goes with every request instead.

import type * as Api from "./api-types";

// The API's shapes come from src/api-types.ts, generated from the OpenAPI
// document (itself generated from the Rust types the server sends).
export type Num = Api.Number;
export type Value = unknown;
export type Names = Api.Names;
export type Status = Api.Status;
export const STATUSES: Status[] = ["running", "finished", "failed", "crashed", "interrupted", "damaged"];
/** A run as the runs list shows it. */
export type RunRow = Api.RunSummary;
export type RunsResponse = Api.RunList;
export type MetricSummary = Api.MetricSummary;
export type RunDetail = Api.RunDetail;
export type Series = Api.Series;
export type ArtifactFile = Api.Files["files"][number];
export type MediaList = Api.MediaList;

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public offset?: number,
    public length?: number,
    /** For `bad_query`: which parameter holds the bad token. */
    public param?: "where" | "sort",
  ) {
    super(message);
  }
}

const TOKEN_KEY = "lab.token";
let token: string | null = null;
try {
  token = sessionStorage.getItem(TOKEN_KEY);
} catch {
  token = null;
}

export function getToken(): string | null {
  return token;
}

export function setToken(t: string | null): void {
  token = t && t.length > 0 ? t : null;
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* storage disabled: keep it in memory */
  }
}

let unauthorizedHandler: (() => void) | null = null;
export function onUnauthorized(fn: () => void): void {
  unauthorizedHandler = fn;
}

export type Params = Record<string, string | number | boolean | null | undefined>;

// Where the API is, learnt from where the page is served: `lab ui` serves
// one project at `/`, whose API is `/api/v1`; `lab server` lists its projects
// at `/projects/` and serves each at `/projects/{project}/`, whose API is
// `/api/v1/projects/{project}`.
const served = /^\/projects\/([^/]+)\/?/.exec(location.pathname);
/** The project this page shows, on a team server; null for `lab ui`. */
export const PROJECT: string | null = served ? safeDecode(served[1]) : null;
/** The page is a team server's list of projects (`/projects/`). */
export const PROJECT_LIST: boolean = /^\/projects\/?$/.test(location.pathname);
/** The page is served by a team server (`lab server`). */
export const TEAM: boolean = PROJECT !== null || PROJECT_LIST;
/** `lab ui` showing the team server's copy of its project, at `/team/`. */
export const TEAM_COPY: boolean = !TEAM && /^\/team\/?$/.test(location.pathname);
/** Runs are only read here, never deleted: a team server's, or its copy. */
export const READ_ONLY: boolean = TEAM || TEAM_COPY;
export const API_BASE: string =
  PROJECT !== null ? "/api/v1/projects/" + encodeURIComponent(PROJECT) : TEAM_COPY ? "/api/v1/team" : "/api/v1";

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The API's root + path + query string (no token). */
export function apiUrl(path: string, params?: Params): string {
  const q = new URLSearchParams();
  if (params) {
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === "") continue;
      q.set(k, String(v));
    }
  }
  const s = q.toString();
  return API_BASE + path + (s ? "?" + s : "");
}

/** A URL the browser fetches by itself: it carries the token as `?token=`
 * (a team server's page has its session cookie instead). */
export function authedUrl(path: string, params?: Params): string {
  if (TEAM) return apiUrl(path, params);
  return apiUrl(path, { ...(params ?? {}), token: token ?? undefined });
}

// ---------------------------------------------------------------- a team server's session
// The token is sent once, to `POST /api/v1/session`, which sets an HttpOnly
// cookie the page never sees; what changes anything carries the session's
// CSRF token in `X-CSRF-Token`.

export interface Session {
  name: string;
  role: string;
  project: string | null;
  csrf: string;
}

let csrf: string | null = null;

async function sessionCall(method: string, body?: unknown): Promise<Response> {
  const headers = new Headers({ Accept: "application/json" });
  if (body !== undefined) headers.set("Content-Type", "application/json");
  if (csrf) headers.set("X-CSRF-Token", csrf);
  return fetch("/api/v1/session", { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** The session this tab's cookie holds, or null. */
export async function currentSession(): Promise<Session | null> {
  const res = await sessionCall("GET");
  if (res.status === 401) return null;
  if (!res.ok) throw await toError(res);
  const s = (await res.json()) as Session;
  csrf = s.csrf;
  return s;
}

/** Logs in with `t`; throws the server's refusal. */
export async function login(t: string): Promise<Session> {
  const res = await sessionCall("POST", { token: t });
  if (!res.ok) {
    const e = await toError(res, false);
    throw e;
  }
  const s = (await res.json()) as Session;
  csrf = s.csrf;
  return s;
}

export async function logout(): Promise<void> {
  const res = await sessionCall("DELETE");
  csrf = null;
  if (!res.ok && res.status !== 401) throw await toError(res, false);
}

export function runPath(id: string): string {
  return "/runs/" + encodeURIComponent(id);
}

/** Encodes an artifact path segment by segment, keeping the slashes. */
export function encodePath(path: string): string {
  return path.split("/").map(encodeURIComponent).join("/");
}

export async function apiFetch(path: string, params?: Params, init?: RequestInit): Promise<Response> {
  const headers = new Headers(init?.headers);
  if (TEAM) {
    const method = (init?.method ?? "GET").toUpperCase();
    if (csrf && method !== "GET" && method !== "HEAD") headers.set("X-CSRF-Token", csrf);
  } else if (token) headers.set("Authorization", "Bearer " + token);
  const res = await fetch(apiUrl(path, params), { ...init, headers });
  if (!res.ok) throw await toError(res);
  return res;
}

/** The team server `lab ui` also shows (its `lab login`), or null. */
export async function teamInfo(): Promise<{ url: string; project: string } | null> {
  if (TEAM) return null;
  const headers = new Headers({ Accept: "application/json" });
  if (token) headers.set("Authorization", "Bearer " + token);
  try {
    const res = await fetch("/api/v1/team-info", { headers });
    return res.ok ? await res.json() : null;
  } catch {
    return null;
  }
}

export async function api<T>(path: string, params?: Params, init?: RequestInit): Promise<T> {
  const headers = new Headers(init?.headers);
  headers.set("Accept", "application/json");
  const res = await apiFetch(path, params, { ...init, headers });
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

async function toError(res: Response, notify = true): Promise<ApiError> {
  let code = "http_" + res.status;
  let message = res.statusText || "request failed";
  let offset: number | undefined;
  let length: number | undefined;
  let param: "where" | "sort" | undefined;
  try {
    const body = await res.json();
    if (body && typeof body === "object" && body.error) {
      code = String(body.error.code ?? code);
      message = String(body.error.message ?? message);
      if (typeof body.error.offset === "number") offset = body.error.offset;
      if (typeof body.error.length === "number") length = body.error.length;
      if (body.error.param === "where" || body.error.param === "sort") param = body.error.param;
    }
  } catch {
    /* not JSON */
  }
  if (notify && res.status === 401 && unauthorizedHandler) unauthorizedHandler();
  return new ApiError(res.status, code, message, offset, length, param);
}

export function isAbort(e: unknown): boolean {
  return e instanceof DOMException && e.name === "AbortError";
}

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return `${e.message} (${e.status} ${e.code})`;
  if (e instanceof Error) return e.message;
  return String(e);
}

/** A number from the API, or null for missing and non-finite values (charts skip them). */
export function finite(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

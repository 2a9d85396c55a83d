// The HTTP API's types, generated from crates/lab_server/src/openapi.json
// by scripts/api-types.mjs (`npm run api-types`): do not edit.

/** An artifact. */
export type Artifact = {
  /** Bytes copied. */
  bytes: number | null;
  /** Files copied. */
  files: number | null;
  /** Its name. */
  name: string;
  /** Where it is in the run's folder, once copied. */
  path: string | null;
  /** Where it was logged from. */
  source: string;
};

export type Error = {
  error: {
    code: "bad_query" | "bad_request" | "unauthorized" | "cross_origin" | "forbidden_path" | "not_found" | "method_not_allowed" | "conflict" | "range_not_satisfiable" | "bad_host" | "internal";
    /** bad_query: its length, in characters */
    length?: number;
    message: string;
    /** bad_query: where the bad token starts, in characters */
    offset?: number;
    /** bad_query: which parameter holds the bad token */
    param?: "where" | "sort";
  };
};

export type Files = {
  files: {
    artifact: string;
    path: string;
    size: number;
  }[];
};

/** Where the run's script was in git. */
export type Git = {
  /** The branch, if on one. */
  branch: string | null;
  /** The commit. */
  commit: string;
  /** Whether tracked files had uncommitted changes. */
  dirty: boolean;
};

/** A metric's summary. */
export type MetricSummary = {
  /** How many points. */
  count: number;
  /** The last value logged. */
  last: Number;
  /** The step of the last value. */
  last_step: number;
  max: Number | null;
  min: Number | null;
  /** Its name. */
  name: string;
};

/** A model. */
export type Model = {
  /** The object's type, `module.Class`. */
  class: string;
  /** `joblib` or `pickle`. */
  format: string;
  /** The library of that type. */
  library: string;
  /** That library's version. */
  library_version: string;
  logged_time: string;
  /** Its name. */
  name: string;
  /** The file, relative to the run's folder. */
  path: string;
  /** SHA-256 of the file, hex. */
  sha256: string;
  /** Bytes. */
  size: number;
};

export type Names = {
  experiments?: string[];
  /** The run fields a query, a sort key or a column may name (id, experiment, status, start_time, ...) */
  fields: string[];
  metrics: string[];
  params: string[];
  tags: string[];
};

/** A number, or NaN/Infinity/-Infinity as a string */
export type Number = number | "NaN" | "Infinity" | "-Infinity";

/** An installed distribution. */
export type Package = {
  /** Its name. */
  name: string;
  /** Its version, when the package list says. */
  version: string | null;
};

/** Everything about one run: the fields of RunSummary, with metrics as summaries */
export type RunDetail = {
  argv: unknown;
  /** Artifacts in logging order. */
  artifacts: Artifact[];
  attrs: {
    [key: string]: unknown;
  };
  /** Damage found in the run's journal. */
  damage: string | null;
  dataset: unknown;
  /** Seconds from start to end; for a running run, to now. */
  duration_s: number | null;
  end_time: string | null;
  error: RunError | null;
  /** The experiment's name. */
  experiment: string;
  features: unknown[];
  git: Git | null;
  /** The machine's name. */
  host: string | null;
  /** The full id: 32 hex digits. */
  id: string;
  /** Each metric's summary, in logging order. */
  metrics: MetricSummary[];
  /** Models in logging order. */
  models: Model[];
  /** The installed distributions. */
  packages: Package[];
  /** Each parameter's value (any JSON) */
  params: {
    [key: string]: unknown;
  };
  pid: unknown;
  python: unknown;
  /** The first 8 hex digits of the id. */
  short_id: string;
  /** The script's path, or `<interactive>`, `<command>`, `<notebook>`. */
  source: string | null;
  start_time: string;
  /** Where it stands. */
  status: Status;
  tags: {
    [key: string]: string;
  };
  /** Who ran it. */
  user: string | null;
};

/** The exception that ended a failed run. */
export type RunError = {
  /** `str(exception)`. */
  message: string;
  /** The formatted traceback. */
  traceback: string;
  /** The exception's type, e.g. `NameError`. */
  type: string;
};

export type RunList = {
  names: Names;
  offset: number;
  runs: RunSummary[];
  total: number;
};

/** What a listing shows of a run. */
export type RunSummary = {
  /** Seconds from start to end; for a running run, to now. */
  duration_s: number | null;
  end_time: string | null;
  /** The experiment's name. */
  experiment: string;
  /** The machine's name. */
  host: string | null;
  /** The full id: 32 hex digits. */
  id: string;
  /** Each metric's last value */
  metrics: {
    [key: string]: Number;
  };
  /** Each parameter's value (any JSON) */
  params: {
    [key: string]: unknown;
  };
  /** The first 8 hex digits of the id. */
  short_id: string;
  /** The script's path, or `<interactive>`, `<command>`, `<notebook>`. */
  source: string | null;
  start_time: string;
  /** Where it stands. */
  status: Status;
  tags: {
    [key: string]: string;
  };
  /** Who ran it. */
  user: string | null;
};

export type Series = {
  downsampled: boolean;
  name: string;
  /** Points in the range before downsampling */
  total: number;
  x: number[];
  x_axis: "step" | "time";
  /** null where the value is NaN or infinite */
  y: (number | null)[];
};

export type Status = "running" | "finished" | "failed" | "crashed" | "interrupted" | "damaged";

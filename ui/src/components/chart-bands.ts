// Runs of one group drawn as one line: the mean of their values, with a band
// of their smallest to largest value or of one standard deviation each side.
// Runs rarely share their x values (a downsampled series keeps each bucket's
// extremes), so each run is read at the points of one grid by linear
// interpolation between its own points, inside its own x range only.

export type BandKind = "minmax" | "std";

export interface Band {
  x: number[];
  mean: (number | null)[];
  lo: (number | null)[];
  hi: (number | null)[];
  /** How many runs have a value at each x. */
  n: number[];
}

interface Line {
  x: number[];
  y: (number | null)[];
}

/** The grid: every x of the runs when there are at most `max`, else `max` evenly spaced. */
function grid(lines: Line[], max: number): number[] {
  const all = new Set<number>();
  let lo = Infinity;
  let hi = -Infinity;
  for (const l of lines) {
    for (const x of l.x) {
      if (all.size <= max) all.add(x);
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
  }
  if (all.size <= max) return [...all].sort((a, b) => a - b);
  const out: number[] = new Array(max);
  for (let i = 0; i < max; i++) out[i] = lo + ((hi - lo) * i) / (max - 1);
  out[max - 1] = hi; // exactly: the runs' last points are there
  return out;
}

/** The run's value at each grid point (in order), null outside its range. */
function resample(l: Line, xs: number[]): (number | null)[] {
  const px: number[] = [];
  const py: number[] = [];
  for (let i = 0; i < l.x.length; i++) {
    const y = l.y[i];
    if (y !== null && Number.isFinite(y) && Number.isFinite(l.x[i])) {
      px.push(l.x[i]);
      py.push(y);
    }
  }
  const out: (number | null)[] = new Array(xs.length).fill(null);
  if (!px.length) return out;
  let j = 0;
  for (let g = 0; g < xs.length; g++) {
    const x = xs[g];
    if (x < px[0] || x > px[px.length - 1]) continue;
    while (j + 1 < px.length && px[j + 1] < x) j++;
    if (px[j] === x || j + 1 >= px.length) out[g] = py[j];
    else if (px[j + 1] === x) out[g] = py[j + 1];
    else {
      const t = (x - px[j]) / (px[j + 1] - px[j]);
      out[g] = py[j] + t * (py[j + 1] - py[j]);
    }
  }
  return out;
}

/** The mean of `lines` and its band, at up to `maxPoints` x values (x sorted in each line). */
export function band(lines: Line[], kind: BandKind, maxPoints: number): Band {
  const xs = grid(lines, Math.max(2, maxPoints));
  const cols = lines.map((l) => resample(l, xs));
  const mean: (number | null)[] = [];
  const lo: (number | null)[] = [];
  const hi: (number | null)[] = [];
  const n: number[] = [];
  for (let g = 0; g < xs.length; g++) {
    let sum = 0;
    let sq = 0;
    let k = 0;
    let min = Infinity;
    let max = -Infinity;
    for (const c of cols) {
      const v = c[g];
      if (v === null) continue;
      sum += v;
      sq += v * v;
      k++;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    n.push(k);
    if (!k) {
      mean.push(null);
      lo.push(null);
      hi.push(null);
      continue;
    }
    const m = sum / k;
    mean.push(m);
    if (kind === "minmax") {
      lo.push(min);
      hi.push(max);
    } else {
      const sd = Math.sqrt(Math.max(0, sq / k - m * m));
      lo.push(m - sd);
      hi.push(m + sd);
    }
  }
  return { x: xs, mean, lo, hi, n };
}

// What a page's charts share: the crosshair (uPlot's cursor sync, by x value)
// and the zoom, an x range that the page keeps in its address (`zoom=x0,x1`).

export type Zoom = [number, number] | null;

interface Member {
  applyZoom(z: Zoom): void;
}

export class ChartSync {
  /** uPlot's sync key of this page's charts. */
  readonly key = "lab-" + Math.random().toString(36).slice(2, 10);
  private members = new Set<Member>();

  constructor(
    public zoom: Zoom,
    private onZoom: (z: Zoom) => void,
  ) {}

  join(m: Member): () => void {
    this.members.add(m);
    return () => this.members.delete(m);
  }

  /** Zooms every chart but `from` (which zoomed itself), and tells the page. */
  setZoom(z: Zoom, from?: Member): void {
    const same = z === this.zoom || (z !== null && this.zoom !== null && z[0] === this.zoom[0] && z[1] === this.zoom[1]);
    this.zoom = z;
    for (const m of this.members) if (m !== from) m.applyZoom(z);
    if (!same) this.onZoom(z);
  }
}

/** `zoom=x0,x1` of an address: two finite numbers, the first smaller. */
export function parseZoom(s: string): Zoom {
  const parts = s.split(",").map((p) => Number(p));
  if (parts.length !== 2 || !parts.every((p) => Number.isFinite(p)) || !(parts[1] > parts[0])) return null;
  return [parts[0], parts[1]];
}

/** A zoom as the address writes it, with enough digits to come back the same. */
export function zoomParam(z: Zoom): string | undefined {
  return z ? `${+z[0].toPrecision(12)},${+z[1].toPrecision(12)}` : undefined;
}

// What a mounted page is, as main.ts routes to it.

import type { Route } from "./route";

/** A mounted page. `update` takes a new route of the same page in place (returns false to be rebuilt). */
export interface View {
  el: HTMLElement;
  update?(r: Route): boolean;
  destroy(): void;
}

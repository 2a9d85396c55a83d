// The compare page's run chips: each run's colour, name (a link to the run,
// its id on hover), experiment and status, and a button to take it out of
// the comparison. Past `FOLD` runs only the first ones show, with a button
// that shows the rest (and one that folds them again). The experiment shows
// only when the runs are of more than one.

import { h } from "../dom";
import { seriesColor } from "../theme";
import { statusBadge } from "./badge";

export interface Chip {
  id: string;
  shortId: string;
  label: string;
  experiment: string;
  status: string;
  colorIndex: number;
}

/** How many chips show before the rest fold away. */
export const FOLD = 8;

export class RunChips {
  el: HTMLElement;
  private chips: Chip[] = [];
  private open = false;

  constructor(private remove: ((id: string) => void) | null) {
    this.el = h("div", { class: "run-chips-box" });
  }

  set(chips: Chip[]): void {
    this.chips = chips;
    this.render();
  }

  private render(): void {
    // One more chip takes less room than a "+1 more" button.
    const folds = this.chips.length > FOLD + 1;
    const shown = folds && !this.open ? this.chips.slice(0, FOLD) : this.chips;
    // The experiment only when the runs are of more than one.
    const experiments = new Set(this.chips.map((c) => c.experiment)).size > 1;
    const items = shown.map((c) => {
      const what = c.label === c.shortId ? c.shortId : `${c.label} (${c.shortId})`;
      return h(
        "li",
        { class: "run-chip", testid: "run-chip", "data-run-id": c.id },
        h("span", { class: "swatch", style: { background: seriesColor(c.colorIndex) }, "aria-hidden": "true" }),
        h("a", { class: c.label === c.shortId ? "mono chip-name" : "chip-name", href: `#/run/${encodeURIComponent(c.id)}`, title: `${what}, ${c.id}` }, c.label),
        experiments ? h("span", { class: "muted chip-exp" }, c.experiment) : null,
        statusBadge(c.status),
        this.remove && this.chips.length > 1
          ? h(
              "button",
              {
                class: "btn ghost small",
                title: `Remove ${what} from the comparison`,
                "aria-label": `Remove ${what} from the comparison`,
                onclick: () => this.remove?.(c.id),
              },
              "×",
            )
          : null,
      );
    });
    const toggle = folds
      ? h(
          "li",
          null,
          h(
            "button",
            {
              class: "btn small chips-more",
              testid: "chips-more",
              "aria-expanded": this.open ? "true" : "false",
              onclick: () => {
                this.open = !this.open;
                this.render();
              },
            },
            this.open ? "Show fewer" : `+${this.chips.length - FOLD} more`,
          ),
        )
      : null;
    // Many chips show their status by its mark alone (the word stays for screen readers and in the title).
    this.el.replaceChildren(h("ul", { class: folds ? "run-chips compact" : "run-chips" }, items, toggle));
  }
}

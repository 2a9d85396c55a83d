// The runs page's buttons for the ticked runs: "Compare (n)", which opens
// them side by side, and "Clear", which unticks them all. They follow the
// selection, wherever it changes.

import { h } from "../dom";
import { buildHash, navigate } from "../route";
import * as selection from "../selection";

export class SelectionBar {
  /** The buttons, in the order they go in the toolbar. */
  readonly els: HTMLElement[];
  private compareBtn: HTMLButtonElement;
  private clearBtn: HTMLButtonElement;
  private unsub: () => void;

  /** `cleared` is called after Clear unticked every run. */
  constructor(cleared: () => void) {
    this.compareBtn = h("button", { class: "btn primary", testid: "compare-button", onclick: () => compare() });
    this.clearBtn = h(
      "button",
      {
        class: "btn ghost",
        title: "Untick every run",
        onclick: () => {
          selection.clear();
          cleared();
        },
      },
      "Clear",
    );
    this.els = [this.clearBtn, this.compareBtn];
    this.unsub = selection.subscribe(() => this.update());
    this.update();
  }

  destroy(): void {
    this.unsub();
  }

  private update(): void {
    const n = selection.count();
    this.compareBtn.textContent = `Compare (${n})`;
    this.compareBtn.disabled = n < 2;
    this.compareBtn.title = n < 2 ? "Tick two or more runs to compare them" : "Compare the ticked runs";
    this.clearBtn.hidden = n === 0;
  }
}

function compare(): void {
  if (selection.count() < 2) return;
  navigate(buildHash("/compare", { ids: selection.ids() }));
}

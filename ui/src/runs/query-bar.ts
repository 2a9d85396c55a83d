// The controls above the runs table that choose which runs it shows: the
// filter box (applied as one types, or at Enter), the server's message under
// it when it refuses the query, the status chips and the experiment select.
// The bar shows a Query and asks for changes to it; the page puts them in the URL.

import { STATUSES, type ApiError } from "../api";
import { h, fill, debounce, type Children } from "../dom";
import { sortToServer } from "../keys";
import { NO_QUERY, type Query, type QueryChange } from "./query";

export interface QueryBarHooks {
  /** Show the runs of the query with this change (`replace`: without a new history entry). */
  change(c: QueryChange, replace: boolean): void;
  /** Enter on the filter already shown: fetch its runs again. */
  again(): void;
}

export class QueryBar {
  /** The bar's parts, in the order they go in the toolbar. */
  readonly els: HTMLElement[];
  private q: Query = NO_QUERY;
  private experiments: string[] = [];
  private input: HTMLInputElement;
  private error: HTMLElement;
  private statusBox: HTMLElement;
  private expSelect: HTMLSelectElement;

  constructor(private hooks: QueryBarHooks) {
    this.input = h("input", {
      type: "search",
      class: "filter-input",
      testid: "filter-input",
      placeholder: "Filter, e.g. accuracy > 0.9 and status = finished",
      "aria-label": "Filter runs (query language)",
      spellcheck: "false",
      autocomplete: "off",
    });
    const applyTyped = debounce(() => this.applyFilter(true), 700);
    this.input.addEventListener("input", () => applyTyped());
    this.input.addEventListener("keydown", (e: KeyboardEvent) => {
      if (e.key === "Enter") {
        applyTyped.cancel();
        this.applyFilter(false);
      } else if (e.key === "Escape" && this.input.value) {
        this.input.value = "";
        applyTyped.cancel();
        this.applyFilter(false);
      }
    });
    this.error = h("div", { class: "filter-error", testid: "filter-error", role: "alert", hidden: true });
    this.statusBox = h("div", { class: "status-filter", role: "group", "aria-label": "Status" });
    this.expSelect = h("select", {
      class: "exp-select",
      "aria-label": "Experiment",
      onchange: () => this.hooks.change({ experiment: this.expSelect.value }, false),
    });
    this.els = [h("div", { class: "filter-wrap" }, this.input, this.error), this.statusBox, this.expSelect];
  }

  /** Shows `q`; the filter box keeps what is being typed into it. */
  show(q: Query): void {
    this.q = q;
    if (document.activeElement !== this.input || this.input.value.trim() === q.where.trim()) this.input.value = q.where;
    this.renderStatus();
    this.renderExperiments();
  }

  /** The project's experiments, for the select. */
  setExperiments(experiments: string[]): void {
    this.experiments = experiments;
    this.renderExperiments();
  }

  /** Whether the server's refusal of the query is shown. */
  get refused(): boolean {
    return !this.error.hidden;
  }

  /** Shows why the server refused the query (`e`, about the filter or the sort keys), or nothing. */
  showError(e: ApiError | null, source: "where" | "sort" = "where"): void {
    if (!e) {
      this.error.hidden = true;
      this.error.replaceChildren();
      this.input.removeAttribute("aria-invalid");
      return;
    }
    this.input.setAttribute("aria-invalid", "true");
    const where = source === "sort" ? sortToServer(this.q.sort) ?? "" : this.q.where;
    fill(this.error, this.errorMessage(e, source), markedQuery(where, e));
    this.error.hidden = false;
  }

  private errorMessage(e: ApiError, source: "where" | "sort"): HTMLElement {
    return h(
      "div",
      { class: "fe-msg" },
      e.message,
      source === "sort" ? [" ", h("button", { class: "btn small", onclick: () => this.hooks.change({ sort: [] }, false) }, "Clear the sort")] : null,
    );
  }

  private applyFilter(typing: boolean): void {
    const where = this.input.value;
    if (where.trim() === this.q.where.trim()) {
      if (!typing) this.hooks.again();
      return;
    }
    this.hooks.change({ where }, typing);
  }

  private renderStatus(): void {
    const on = new Set(this.q.status);
    const chips = STATUSES.map((s) =>
      h(
        "button",
        {
          class: `chip status-chip status-${s}`,
          "aria-pressed": on.has(s) ? "true" : "false",
          title: on.has(s) ? `Showing ${s} runs: click to stop filtering on it` : `Show only ${s} runs (with the other ticked statuses)`,
          onclick: () => {
            const next = new Set(on);
            if (next.has(s)) next.delete(s);
            else next.add(s);
            this.hooks.change({ status: STATUSES.filter((x) => next.has(x)) }, false);
          },
        },
        s,
      ),
    );
    this.statusBox.replaceChildren(...chips);
  }

  private renderExperiments(): void {
    const exps = this.experiments;
    const cur = this.q.experiment;
    const opts = [h("option", { value: "" }, "all experiments"), ...exps.map((e) => h("option", { value: e }, e))];
    if (cur && !exps.includes(cur)) opts.push(h("option", { value: cur }, cur));
    this.expSelect.replaceChildren(...opts);
    this.expSelect.value = cur;
    this.expSelect.hidden = exps.length === 0 && !cur;
  }
}

/** The query with the part the server points at marked (a caret where it expected more). */
function markedQuery(where: string, e: ApiError): Children {
  const chars = Array.from(where);
  if (typeof e.offset !== "number" || !where || e.offset > chars.length) return null;
  const len = Math.max(0, e.length ?? 0);
  const before = chars.slice(0, e.offset).join("");
  const bad = chars.slice(e.offset, e.offset + len).join("");
  const after = chars.slice(e.offset + len).join("");
  return h(
    "div",
    { class: "fe-query", "aria-label": "where the query is wrong" },
    before,
    bad ? h("mark", { class: "fe-bad" }, bad) : h("mark", { class: "fe-bad fe-caret", title: "here" }, "\u00a0"),
    after,
  );
}

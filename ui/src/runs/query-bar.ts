// The controls above the runs table that choose which runs it shows: the
// filter box (applied as one types, or at Enter) with its completions (an
// ARIA combobox: names and values, see complete.ts), the server's message
// under it when it refuses the query (with its "did you mean" names as
// buttons), the status chips and the experiment select. The bar shows a
// Query and asks for changes to it; the page puts them in the URL.

import { STATUSES, type ApiError, type Names, type RunRow } from "../api";
import { h, fill, debounce, type Children } from "../dom";
import { quoteName, sortToServer } from "../keys";
import { complete, type Completions } from "./complete";
import { NO_QUERY, type Query, type QueryChange } from "./query";

export interface QueryBarHooks {
  /** Show the runs of the query with this change (`replace`: without a new history entry). */
  change(c: QueryChange, replace: boolean): void;
  /** Enter on the filter already shown: fetch its runs again. */
  again(): void;
  /** The project's names, for completions. */
  names(): Names | null;
  /** The runs in view, whose values are offered after a comparison. */
  rows(): RunRow[];
}

let lists = 0;

export class QueryBar {
  /** The bar's parts, in the order they go in the toolbar. */
  readonly els: HTMLElement[];
  private q: Query = NO_QUERY;
  private experiments: string[] = [];
  private input: HTMLInputElement;
  private error: HTMLElement;
  private statusBox: HTMLElement;
  private expSelect: HTMLSelectElement;
  /** The filter this box last put in the address as it was typed: its echo
   *  leaves the box alone, any other filter (Back, a link) replaces its text. */
  private sent: string | null = null;
  private list: HTMLUListElement;
  private offered: Completions | null = null;
  private activeItem = -1;
  private applyTyped: ReturnType<typeof debounce>;

  constructor(private hooks: QueryBarHooks) {
    const listId = `filter-completions-${++lists}`;
    this.input = h("input", {
      type: "search",
      class: "filter-input",
      testid: "filter-input",
      placeholder: "Filter, e.g. accuracy > 0.9 and status = finished",
      title: "Filter the runs with the query language (press / to come here)",
      "aria-label": "Filter runs (query language)",
      spellcheck: "false",
      autocomplete: "off",
      role: "combobox",
      "aria-autocomplete": "list",
      "aria-expanded": "false",
      "aria-controls": listId,
      "aria-keyshortcuts": "/",
    });
    this.list = h("ul", { class: "completions", id: listId, role: "listbox", "aria-label": "Completions", testid: "filter-completions", hidden: true });
    // A click on an item must not take the focus from the box.
    this.list.addEventListener("mousedown", (e) => e.preventDefault());
    this.list.addEventListener("click", (e) => {
      const li = (e.target as HTMLElement).closest<HTMLElement>("[role=option]");
      if (li?.dataset.index) this.accept(Number(li.dataset.index));
    });
    const applyTyped = debounce(() => this.applyFilter(true), 700);
    this.applyTyped = applyTyped;
    this.input.addEventListener("input", () => {
      applyTyped();
      this.suggest();
    });
    this.input.addEventListener("blur", () => this.closeList());
    this.input.addEventListener("keydown", (e: KeyboardEvent) => {
      if (this.onListKey(e)) return;
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
    this.els = [h("div", { class: "filter-wrap" }, h("div", { class: "filter-box" }, this.input, this.list), this.error), this.statusBox, this.expSelect];
  }

  /** Shows `q`. The filter box keeps what is being typed into it while the
   *  address's filter stays or only catches up with the typing; another
   *  filter (Back, a link, a saved view) replaces its text. */
  show(q: Query): void {
    const changed = q.where.trim() !== this.q.where.trim();
    const echo = this.sent !== null && q.where.trim() === this.sent.trim();
    this.q = q;
    this.sent = null;
    if (changed && !echo && this.input.value !== q.where) {
      this.applyTyped.cancel();
      this.input.value = q.where;
      this.closeList();
    }
    this.renderStatus();
    this.renderExperiments();
  }

  /** To the filter box, its text selected. */
  focus(): void {
    this.input.focus();
    this.input.select();
  }

  destroy(): void {
    this.applyTyped.cancel();
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
    const fixes = source === "where" ? (e.suggestions ?? []) : [];
    return h(
      "div",
      { class: "fe-msg" },
      e.message,
      source === "sort" ? [" ", h("button", { class: "btn small", onclick: () => this.hooks.change({ sort: [] }, false) }, "Clear the sort")] : null,
      fixes.length
        ? h(
            "div",
            { class: "fe-fixes" },
            "Did you mean ",
            fixes.map((name, i) => [
              i ? " or " : null,
              h("button", { class: "btn small fe-fix", testid: "did-you-mean", title: `Put \`${name}\` in the filter`, onclick: () => this.fix(e, name) }, name),
            ]),
            "?",
          )
        : null,
    );
  }

  /** Puts `name` in place of the part of the filter the server refused. */
  private fix(e: ApiError, name: string): void {
    const chars = Array.from(this.q.where);
    const at = e.offset ?? 0;
    const before = chars.slice(0, at).join("");
    const after = chars.slice(at + (e.length ?? 0)).join("");
    // The server names the part after a scope (`metrics.acuracy`), and
    // suggests the scoped name: the scope is written once.
    const dot = name.indexOf(".");
    let text = name;
    if (dot > 0 && before.endsWith(name.slice(0, dot + 1))) text = name.slice(dot + 1);
    text = dot > 0 && text === name ? name.slice(0, dot + 1) + quoteName(name.slice(dot + 1)) : quoteName(text);
    const where = before + text + after;
    this.input.value = where;
    this.input.focus();
    this.hooks.change({ where }, false);
  }

  private applyFilter(typing: boolean): void {
    const where = this.input.value;
    if (where.trim() === this.q.where.trim()) {
      if (!typing) this.hooks.again();
      return;
    }
    this.sent = where;
    this.hooks.change({ where }, typing);
  }

  // ---------------------------------------------------------------- completions

  /** Offers what completes the word at the caret (nothing: the list closes). */
  private suggest(): void {
    const names = this.hooks.names();
    const caret = this.input.selectionStart ?? this.input.value.length;
    const c = names ? complete(this.input.value, caret, names, this.hooks.rows()) : null;
    if (!c || c.items.length === 0) {
      this.closeList();
      return;
    }
    this.offered = c;
    this.activeItem = -1;
    const id = this.list.id;
    this.list.replaceChildren(
      ...c.items.map((it, i) =>
        h(
          "li",
          { role: "option", id: `${id}-${i}`, "data-index": i, "aria-selected": "false", class: "completion" },
          h("span", { class: "c-label" }, it.label),
          h("span", { class: `c-kind k-${it.kind}` }, it.kind),
        ),
      ),
    );
    this.list.hidden = false;
    this.input.setAttribute("aria-expanded", "true");
    this.input.removeAttribute("aria-activedescendant");
  }

  private closeList(): void {
    this.offered = null;
    this.activeItem = -1;
    this.list.hidden = true;
    this.list.replaceChildren();
    this.input.setAttribute("aria-expanded", "false");
    this.input.removeAttribute("aria-activedescendant");
  }

  /** The keys of the open list; whether the key was one of them. */
  private onListKey(e: KeyboardEvent): boolean {
    if (!this.offered) {
      if ((e.key === "ArrowDown" && !e.altKey) || (e.key === " " && e.ctrlKey)) {
        e.preventDefault();
        this.suggest();
        if (this.offered) this.setActiveItem(0);
        return true;
      }
      return false;
    }
    const n = this.offered.items.length;
    switch (e.key) {
      case "ArrowDown":
      case "ArrowUp":
        e.preventDefault();
        this.setActiveItem((this.activeItem + (e.key === "ArrowDown" ? 1 : n - 1 + (this.activeItem < 0 ? 1 : 0))) % n);
        return true;
      case "Enter":
      case "Tab":
        if (this.activeItem < 0) {
          if (e.key === "Tab") this.closeList();
          return false;
        }
        e.preventDefault();
        this.accept(this.activeItem);
        return true;
      case "Escape":
        e.preventDefault();
        this.closeList();
        return true;
      default:
        return false;
    }
  }

  private setActiveItem(i: number): void {
    this.activeItem = i;
    for (const li of this.list.children) li.setAttribute("aria-selected", (li as HTMLElement).dataset.index === String(i) ? "true" : "false");
    const li = this.list.children[i] as HTMLElement | undefined;
    if (li) {
      this.input.setAttribute("aria-activedescendant", li.id);
      li.scrollIntoView({ block: "nearest" });
    }
  }

  /** Puts item `i` in place of the word at the caret, and a space after it. */
  private accept(i: number): void {
    const c = this.offered;
    const item = c?.items[i];
    if (!c || !item) return;
    const v = this.input.value;
    const after = v.slice(c.to);
    const space = after.startsWith(" ") ? "" : " ";
    this.input.value = v.slice(0, c.from) + item.insert + space + after;
    const caret = c.from + item.insert.length + space.length;
    this.input.setSelectionRange(caret, caret);
    this.closeList();
    this.input.focus();
    this.applyTyped();
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

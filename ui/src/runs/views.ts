// Saved views: the "Views" button and its box (on the runs page and the
// compare page), which lists the project's views (each a link
// `#/?view=NAME`), saves the page's state (its path and query string: the
// runs page's query, columns, sort and grouping; the compare page's runs and
// charts) under a name, and deletes one; and opening a view's link, which puts
// its state in the address. Views are kept by the
// server (`/api/v1/views`), in the project; a team server's pages are read
// only and show no button.

import { api, apiFetch, errorText, isAbort, READ_ONLY, type Names } from "../api";
import type * as Api from "../api-types";
import { h } from "../dom";
import { navigate } from "../route";
import { keepInView } from "./columns";
import { queryHash, type Query } from "./query";

type View = Api.components["schemas"]["View"];
type ViewList = Api.components["schemas"]["ViewList"];

/** A view's name: what the server takes. */
const NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/;

export class ViewsMenu {
  readonly el: HTMLElement;
  private button: HTMLButtonElement;
  private popover: HTMLElement | null = null;
  private outside = () => this.close();
  /** The page's state as a view keeps it. */
  private state = "/";
  private opening: AbortController | null = null;
  private message: HTMLElement;

  /** `current`, where given, is the page's state at the time of saving (the
   * compare page's address); else the runs page's, as `show` last set it. */
  constructor(private readonly current?: () => string) {
    this.button = h("button", { class: "btn", "aria-haspopup": "dialog", "aria-expanded": "false", testid: "views-button", onclick: (e: Event) => this.toggle(e) }, "Views ▾");
    this.message = h("div", { class: "view-message", role: "alert", testid: "view-error", hidden: true });
    this.el = h("span", { class: "chooser-anchor views-anchor", hidden: READ_ONLY }, this.button, this.message);
  }

  /** The state a saved view would keep: the address of `q`. */
  show(q: Query, names: Names | null): void {
    this.state = queryHash(q, names).slice(1);
    this.message.hidden = true;
  }

  /** Opens the view `name`: its state replaces the address (`#/?view=NAME`). */
  open(name: string): void {
    this.opening?.abort();
    const ctl = new AbortController();
    this.opening = ctl;
    this.say(`Opening the view ${name}…`, false);
    api<View>("/views/" + encodeURIComponent(name), undefined, { signal: ctl.signal })
      .then((v) => {
        if (ctl.signal.aborted) return;
        this.message.hidden = true;
        navigate("#" + v.state, true);
      })
      .catch((e: unknown) => {
        if (isAbort(e)) return;
        this.say(`The view ${name} could not be opened: ${errorText(e)}`, true);
        navigate("#/", true);
        this.message.hidden = false;
      });
  }

  close(): void {
    document.removeEventListener("click", this.outside);
    this.popover?.remove();
    this.popover = null;
    this.button.setAttribute("aria-expanded", "false");
  }

  private say(text: string, error: boolean): void {
    this.message.textContent = text;
    this.message.classList.toggle("error-text", error);
    this.message.hidden = false;
  }

  private toggle(e: Event): void {
    e.stopPropagation();
    if (this.popover) this.close();
    else void this.openBox();
  }

  private async openBox(): Promise<void> {
    const list = h("ul", { class: "view-list", testid: "view-list" }, h("li", { class: "muted" }, "Loading…"));
    const name = h("input", {
      type: "text",
      class: "view-name",
      testid: "view-name",
      placeholder: "name, e.g. best-lr",
      "aria-label": "Name of the view to save",
      maxlength: 100,
      spellcheck: "false",
    });
    const status = h("div", { class: "view-status", role: "status" });
    const save = async () => {
      const n = name.value.trim();
      if (!NAME.test(n)) {
        status.textContent = "A name is 1 to 100 letters, digits, -, _ or . (not starting with .)";
        status.className = "view-status error-text";
        name.setAttribute("aria-invalid", "true");
        name.focus();
        return;
      }
      name.removeAttribute("aria-invalid");
      try {
        await api<View>("/views/" + encodeURIComponent(n), undefined, {
          method: "PUT",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ state: this.current ? this.current() : this.state }),
        });
        status.textContent = `Saved as ${n}`;
        status.className = "view-status";
        name.value = "";
        await this.fill(list);
      } catch (e) {
        status.textContent = "Not saved: " + errorText(e);
        status.className = "view-status error-text";
      }
    };
    name.addEventListener("keydown", (e: KeyboardEvent) => {
      if (e.key === "Enter") {
        e.preventDefault();
        void save();
      }
    });
    this.popover = h(
      "div",
      { class: "popover views", role: "dialog", "aria-label": "Saved views", onclick: (ev: Event) => ev.stopPropagation() },
      h("div", { class: "chooser-top" }, name, h("button", { class: "btn small primary", testid: "view-save", onclick: () => void save() }, "Save this view")),
      status,
      list,
    );
    this.popover.addEventListener("keydown", (ev: KeyboardEvent) => {
      if (ev.key === "Escape") {
        this.close();
        this.button.focus();
      }
    });
    this.button.after(this.popover);
    keepInView(this.popover);
    this.button.setAttribute("aria-expanded", "true");
    name.focus();
    setTimeout(() => document.addEventListener("click", this.outside), 0);
    await this.fill(list);
  }

  /** The project's views in `list`: each a link, and a button that deletes it. */
  private async fill(list: HTMLElement): Promise<void> {
    let views: View[];
    try {
      views = (await api<ViewList>("/views")).views;
    } catch (e) {
      list.replaceChildren(h("li", { class: "error-text" }, "Could not list the views: " + errorText(e)));
      return;
    }
    if (!views.length) {
      list.replaceChildren(h("li", { class: "muted" }, "No saved view yet: name this one and save it."));
      return;
    }
    list.replaceChildren(
      ...views.map((v) => {
        const link = h("a", { href: "#/?view=" + encodeURIComponent(v.name), class: "view-link", title: v.state, onclick: () => this.close() }, v.name);
        const del = h(
          "button",
          {
            class: "btn small ghost",
            "aria-label": `Delete the view ${v.name}`,
            title: `Delete the view ${v.name}`,
            onclick: async () => {
              try {
                await apiFetch("/views/" + encodeURIComponent(v.name), undefined, { method: "DELETE" });
              } catch (e) {
                list.prepend(h("li", { class: "error-text" }, "Not deleted: " + errorText(e)));
                return;
              }
              await this.fill(list);
            },
          },
          "✕",
        );
        return h("li", { class: "view-item", testid: "view-item", "data-name": v.name }, link, h("span", { class: "muted view-when" }, v.updated.slice(0, 16).replace("T", " ")), del);
      }),
    );
  }
}

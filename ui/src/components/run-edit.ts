// Editing a run in place on its page: its name, its tags and its note, each
// saved at once with `PATCH /runs/{id}` (the server records the edit in the
// run's own meta journal). Enter saves, Escape cancels; the server's message
// shows beside a refused edit.

import { api, ApiError, errorText, runPath, type RunDetail } from "../api";
import { h, fill } from "../dom";
import { renderMarkdown } from "../markdown";

/** What `PATCH /runs/{id}` takes. */
export interface RunEdit {
  name?: string;
  tags?: Record<string, string>;
  untag?: string[];
  note?: string;
}

/** Sends `edit`; the run as it is afterwards. */
export function patchRun(id: string, edit: RunEdit): Promise<RunDetail> {
  return api<RunDetail>(runPath(id), undefined, {
    method: "PATCH",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(edit),
  });
}

function refusal(e: unknown): string {
  return e instanceof ApiError ? e.message : "Could not save: " + errorText(e);
}

/** A text shown as `view`, with an Edit button that swaps it for an input (Enter saves, Escape cancels). */
export function editableText(opts: {
  value: string;
  label: string;
  testid: string;
  view: (value: string) => HTMLElement;
  save: (value: string) => Promise<void>;
}): HTMLElement {
  const box = h("span", { class: "editable", testid: opts.testid });
  const idle = () => {
    const edit = h("button", { type: "button", class: "btn small ghost edit-btn", testid: `${opts.testid}-edit`, "aria-label": `Edit ${opts.label}`, title: `Edit ${opts.label}` }, "✎");
    edit.addEventListener("click", editing);
    const shown = opts.view(opts.value);
    shown.addEventListener("dblclick", editing);
    fill(box, shown, edit);
  };
  const editing = () => {
    const input = h("input", { type: "text", value: opts.value, class: "edit-input", testid: `${opts.testid}-input`, "aria-label": opts.label });
    const error = h("span", { class: "error-text", role: "alert", testid: `${opts.testid}-error` });
    input.addEventListener("keydown", (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.preventDefault();
        idle();
      } else if (e.key === "Enter") {
        e.preventDefault();
        input.disabled = true;
        opts.save(input.value).then(
          () => undefined,
          (err) => {
            input.disabled = false;
            error.textContent = refusal(err);
            input.focus();
          },
        );
      }
    });
    fill(box, input, error);
    input.focus();
    input.select();
  };
  idle();
  return box;
}

/** The run's tags as chips with a remove button each, and "+ Tag" (`key=value`, Enter saves). */
export function tagEditor(tags: Record<string, string>, save: (edit: RunEdit) => Promise<void>): HTMLElement {
  const box = h("span", { class: "tags tag-editor", testid: "tag-editor" });
  const error = h("span", { class: "error-text", role: "alert", testid: "tag-error" });
  const chips = Object.entries(tags).map(([k, v]) =>
    h(
      "span",
      { class: "tag", testid: "tag", "data-key": k },
      `${k}: ${v}`,
      h(
        "button",
        {
          type: "button",
          class: "tag-remove",
          testid: "tag-remove",
          "aria-label": `Remove tag ${k}`,
          title: `Remove tag ${k}`,
          onclick: () => save({ untag: [k] }).catch((e) => (error.textContent = refusal(e))),
        },
        "×",
      ),
    ),
  );
  const add = h("button", { type: "button", class: "btn small ghost", testid: "tag-add" }, "+ Tag");
  add.addEventListener("click", () => {
    const input = h("input", { type: "text", class: "edit-input", placeholder: "key=value", testid: "tag-input", "aria-label": "New tag, as key=value" });
    input.addEventListener("keydown", (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.preventDefault();
        input.replaceWith(add);
        error.textContent = "";
      } else if (e.key === "Enter") {
        e.preventDefault();
        const text = input.value;
        const at = text.indexOf("=");
        if (at <= 0) {
          error.textContent = `A tag is key=value: got “${text}”`;
          return;
        }
        save({ tags: { [text.slice(0, at).trim()]: text.slice(at + 1).trim() } }).catch((err) => (error.textContent = refusal(err)));
      }
    });
    add.replaceWith(input);
    input.focus();
  });
  fill(box, chips, add, error);
  return box;
}

/** The note rendered as Markdown, with Edit: a text area, Save (or Ctrl+Enter), Cancel (or Escape). */
export function noteEditor(note: string, readOnly: boolean, save: (note: string) => Promise<void>): HTMLElement {
  const box = h("section", { class: "run-note", testid: "run-note", "aria-labelledby": "note-heading" });
  const idle = () => {
    const edit = readOnly ? null : h("button", { type: "button", class: "btn small ghost", testid: "note-edit", onclick: editing }, note ? "Edit" : "Add a note");
    fill(
      box,
      h("div", { class: "section-head" }, h("h2", { id: "note-heading" }, "Note"), edit),
      note ? h("div", { testid: "note-view" }, renderMarkdown(note)) : h("p", { class: "muted", testid: "note-view" }, "No note."),
    );
  };
  const editing = () => {
    const area = h("textarea", { class: "note-input", testid: "note-input", rows: 8, "aria-label": "Note (Markdown)" });
    area.value = note;
    const error = h("span", { class: "error-text", role: "alert", testid: "note-error" });
    const submit = () => {
      area.disabled = true;
      save(area.value).catch((err) => {
        area.disabled = false;
        error.textContent = refusal(err);
      });
    };
    area.addEventListener("keydown", (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.preventDefault();
        idle();
      } else if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        submit();
      }
    });
    fill(
      box,
      h("div", { class: "section-head" }, h("h2", { id: "note-heading" }, "Note"), h("span", { class: "muted" }, "Markdown; Ctrl+Enter saves")),
      area,
      h(
        "div",
        { class: "toolbar" },
        h("button", { type: "button", class: "btn small primary", testid: "note-save", onclick: submit }, "Save"),
        h("button", { type: "button", class: "btn small", onclick: idle }, "Cancel"),
        error,
      ),
    );
    area.focus();
  };
  idle();
  return box;
}

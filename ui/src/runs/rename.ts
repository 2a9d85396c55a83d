// Renaming a run in the runs table: the name's cell becomes a text box
// (double-click on the name, or its ✎ button); Enter saves it through
// `PATCH /api/v1/runs/{id}`, Escape (or leaving the box) puts the name back.
// A refusal of the server is shown in the box's title and outline, and the
// box stays open to fix the name.

import { api, errorText, type RunDetail } from "../api";
import { h } from "../dom";

export interface RenameHooks {
  /** The run was renamed: its new state, as the server answered. */
  done(run: RunDetail): void;
  /** The box closed (saved or not): the cell may be drawn again. */
  closed(): void;
}

/** Opens the text box over `cell` for run `id`, named `name` now. */
export function rename(cell: HTMLElement, id: string, name: string, hooks: RenameHooks): void {
  const before = [...cell.childNodes];
  const box = h("input", {
    type: "text",
    class: "rename-input",
    testid: "rename-input",
    value: name,
    maxlength: 200,
    spellcheck: "false",
    "aria-label": `New name of run ${name}`,
  });
  let open = true;
  let saving = false;
  const close = () => {
    if (!open) return;
    open = false;
    cell.replaceChildren(...before);
    cell.classList.remove("editing");
    hooks.closed();
  };
  const save = async () => {
    const next = box.value.trim();
    if (next === name) {
      close();
      return;
    }
    saving = true;
    box.setAttribute("aria-busy", "true");
    try {
      const run = await api<RunDetail>("/runs/" + encodeURIComponent(id), undefined, {
        method: "PATCH",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: next }),
      });
      hooks.done(run);
      close();
    } catch (e) {
      box.setAttribute("aria-invalid", "true");
      box.title = "Not renamed: " + errorText(e);
      box.focus();
    } finally {
      saving = false;
      box.removeAttribute("aria-busy");
    }
  };
  box.addEventListener("keydown", (e: KeyboardEvent) => {
    // The table's keys (Enter opens the run, arrows move) are not for the box.
    e.stopPropagation();
    if (e.key === "Enter") {
      e.preventDefault();
      if (!saving) void save();
    } else if (e.key === "Escape") {
      e.preventDefault();
      close();
      cell.closest<HTMLElement>(".vt-row")?.focus({ preventScroll: true });
    }
  });
  box.addEventListener("click", (e) => e.stopPropagation());
  box.addEventListener("dblclick", (e) => e.stopPropagation());
  box.addEventListener("blur", () => {
    if (!saving) close();
  });
  cell.classList.add("editing");
  cell.replaceChildren(box);
  box.focus();
  box.select();
}

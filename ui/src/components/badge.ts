// A run's status as a badge: a mark and the status in words, coloured by status.

import { h } from "../dom";

const ICON: Record<string, string> = {
  running: "●",
  finished: "✓",
  failed: "✕",
  crashed: "⚠",
  interrupted: "■",
  damaged: "⚡",
  unreachable: "◌",
};

/** A status badge: a colour and a word (and an icon), never the colour alone. */
export function statusBadge(status: string, testid?: string): HTMLElement {
  const known = status in ICON ? status : "unknown";
  return h(
    "span",
    { class: `badge status-${known}`, testid, "data-status": status, title: `status: ${status}` },
    h("span", { class: "badge-icon", "aria-hidden": "true" }, ICON[status] ?? "?"),
    " ",
    status,
  );
}

export function updateBadge(el: HTMLElement, status: string): void {
  const fresh = statusBadge(status);
  el.className = fresh.className;
  el.dataset.status = status;
  el.title = fresh.title;
  el.replaceChildren(...Array.from(fresh.childNodes));
}

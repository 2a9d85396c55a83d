// Lab's web page: routing, the token, the live connection, the top bar.

import "./style.css";
import { getToken, onUnauthorized, setToken } from "./api";
import { h } from "./dom";
import { connect } from "./live";
import type { View } from "./page";
import { buildHash, parseHash, rememberRuns, setRouter, type Route } from "./route";
import * as selection from "./selection";
import { makeRunsPage } from "./pages/runs";
import { runPage } from "./pages/run";
import { comparePage } from "./pages/compare";

const app = document.getElementById("app")!;
const runsPage = makeRunsPage();
let view: View | null = null;
let page: Route["page"] | null = null;

/** `#token=XYZ` (or `&token=` in any address): keep it for the tab and take it out of the URL. */
function takeToken(): void {
  const m = /(^#|[?&#])token=([^&]*)/.exec(location.hash);
  if (!m) return;
  let t = m[2];
  try {
    t = decodeURIComponent(t);
  } catch {
    /* as it is */
  }
  setToken(t);
  let rest = location.hash.slice(0, m.index) + location.hash.slice(m.index + m[0].length);
  rest = rest.replace(/^#?[&?]?/, "#").replace(/[?&]$/, "");
  if (rest === "#" || rest === "") rest = "#/";
  if (!rest.startsWith("#/")) rest = "#/" + rest.slice(1);
  history.replaceState(history.state, "", location.pathname + location.search + rest);
}

function route(r: Route): void {
  if (r.page === "runs") rememberRuns(location.hash || "#/");
  for (const a of document.querySelectorAll<HTMLAnchorElement>(".topnav a")) {
    const on = a.dataset.nav === r.page || (a.dataset.nav === "runs" && r.page === "run");
    a.classList.toggle("current", on);
    if (on) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  if (view && page === r.page && view.update?.(r)) return;
  view?.destroy();
  view = null;
  page = r.page;
  app.replaceChildren();
  switch (r.page) {
    case "runs":
      view = runsPage(r);
      break;
    case "run":
      view = runPage(r);
      break;
    case "compare":
      view = comparePage(r);
      break;
    default:
      app.appendChild(h("section", { class: "page" }, h("h1", null, "Not found"), h("p", null, h("a", { href: "#/" }, "Back to the runs"))));
      return;
  }
  app.appendChild(view.el);
}

/** The top bar's Compare link goes to the ticked runs. */
function updateCompareNav(): void {
  const a = document.querySelector<HTMLAnchorElement>('.topnav a[data-nav="compare"]');
  if (a) a.href = selection.count() >= 2 ? buildHash("/compare", { ids: selection.ids() }) : "#/compare";
}

function rerender(): void {
  view?.destroy();
  view = null;
  page = null;
  route(parseHash(location.hash));
}

// ---------------------------------------------------------------- token box

let tokenBox: HTMLElement | null = null;
function askToken(): void {
  if (tokenBox) return;
  const input = h("input", {
    type: "password",
    id: "token-input",
    autocomplete: "off",
    placeholder: "token",
    "aria-label": "Token",
  });
  const form = h(
    "form",
    { class: "token-box", role: "dialog", "aria-label": "Token needed", testid: "token-box" },
    h("strong", null, "This server needs a token."),
    h("p", { class: "muted" }, "It is printed by ", h("code", null, "lab ui"), " in the page's address (", h("code", null, "#token=…"), ")."),
    h("div", { class: "token-row" }, input, h("button", { class: "btn primary", type: "submit" }, "Use token")),
    getToken() ? h("p", { class: "error-text" }, "The token this tab holds was refused.") : null,
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    tokenBox?.remove();
    tokenBox = null;
    connect(null);
    rerender();
  });
  tokenBox = form;
  document.body.appendChild(form);
  input.focus();
}

// ---------------------------------------------------------------- start

takeToken();
window.addEventListener("hashchange", () => {
  takeToken();
  route(parseHash(location.hash));
});
onUnauthorized(askToken);
setRouter(route);
connect(document.getElementById("live"));
selection.subscribe(updateCompareNav);
updateCompareNav();
if (!location.hash) history.replaceState(history.state, "", location.pathname + location.search + "#/");
route(parseHash(location.hash));

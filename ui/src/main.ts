// Lab's web page: routing, the token, the live connection, the top bar.

import "./style.css";
import { currentSession, errorText, getToken, login, logout, onUnauthorized, PROJECT, PROJECT_LIST, setToken, TEAM, TEAM_COPY, teamInfo, type Session } from "./api";
import { h } from "./dom";
import { connect } from "./live";
import type { View } from "./page";
import { buildHash, parseHash, rememberRuns, setRouter, type Route } from "./route";
import * as selection from "./selection";
import { makeRunsPage } from "./pages/runs";
import { runPage } from "./pages/run";
import { comparePage } from "./pages/compare";
import { projectsPage } from "./pages/projects";
import { themeToggle } from "./components/theme-toggle";

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
  if (PROJECT_LIST) {
    app.replaceChildren(projectsPage());
    return;
  }
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
    h("strong", null, TEAM ? "Log in with your token." : "This server needs a token."),
    TEAM
      ? h("p", { class: "muted" }, "Ask the server's admin for one (", h("code", null, "lab server token create"), ").")
      : h("p", { class: "muted" }, "It is printed by ", h("code", null, "lab ui"), " in the page's address (", h("code", null, "#token=…"), ")."),
    h("div", { class: "token-row" }, input, h("button", { class: "btn primary", type: "submit" }, TEAM ? "Log in" : "Use token")),
    !TEAM && getToken() ? h("p", { class: "error-text" }, "The token this tab holds was refused.") : null,
  );
  const failure = h("p", { class: "error-text", role: "alert", testid: "login-error" });
  form.appendChild(failure);
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    if (TEAM) {
      login(input.value.trim()).then(
        (s) => {
          showWho(s);
          tokenBox?.remove();
          tokenBox = null;
          if (!PROJECT_LIST) connect(null);
          rerender();
        },
        (err) => {
          failure.textContent = "That token was refused: " + errorText(err);
          input.select();
        },
      );
      return;
    }
    setToken(input.value.trim());
    tokenBox?.remove();
    tokenBox = null;
    if (!PROJECT_LIST) connect(null);
    rerender();
  });
  tokenBox = form;
  document.body.appendChild(form);
  input.focus();
}

// ---------------------------------------------------------------- start

/** A team server's top bar: the projects, then the project shown; at the
 * end, who is logged in and a button to log out. */
function teamTopbar(): void {
  const brand = document.querySelector<HTMLAnchorElement>(".topbar .brand");
  if (brand) brand.href = "/projects/";
  if (PROJECT !== null) brand?.after(h("a", { class: "project-name", href: "#/", title: "This project's runs", testid: "project-name" }, PROJECT));
  const out = h("button", { class: "btn logout", type: "button", testid: "logout", hidden: true }, "Log out");
  out.addEventListener("click", () => {
    logout().then(
      () => {
        showWho(null);
        view?.destroy();
        view = null;
        page = null;
        app.replaceChildren();
        askToken();
      },
      (err) => alert("Could not log out: " + errorText(err)),
    );
  });
  document.querySelector(".topbar")?.append(h("span", { class: "who muted", testid: "who" }), out);
  currentSession().then(showWho, () => showWho(null));
}

function showWho(s: Session | null): void {
  const who = document.querySelector<HTMLElement>(".topbar .who");
  const out = document.querySelector<HTMLButtonElement>(".topbar .logout");
  if (who) who.textContent = s ? s.name : "";
  if (out) out.hidden = s === null;
}

/** `lab ui` with a team server (`lab login`): a switch in the top bar
 * between this machine's runs (`/`) and the team server's copy (`/team/`). */
function sourceSwitch(): void {
  teamInfo().then((team) => {
    if (!team) return;
    const here = TEAM_COPY ? "team" : "local";
    const link = (where: "local" | "team", label: string, short: string, title: string) => {
      // The tab keeps the page's token: the other view needs no new one.
      const a = h(
        "a",
        { href: where === "team" ? "/team/#/" : "/#/", title, testid: "source-" + where },
        h("span", { class: "long" }, label),
        h("span", { class: "short" }, short),
      );
      if (where === here) a.setAttribute("aria-current", "page");
      return a;
    };
    const sw = h(
      "nav",
      { class: "source-switch", "aria-label": "Whose runs", testid: "source-switch" },
      link("local", "This machine", "Here", "The runs in this project's folder"),
      link("team", "Team", "Team", `The team server's copy of project ${team.project}: ${team.url}`),
    );
    document.querySelector(".topbar .topnav")?.after(sw);
    if (TEAM_COPY) document.title = "Team · " + document.title;
  });
}

takeToken();
if (TEAM) teamTopbar();
else sourceSwitch();
if (PROJECT_LIST) {
  onUnauthorized(askToken);
  document.querySelector(".topnav")?.remove();
  document.getElementById("live")?.remove();
  document.title = "Projects · Lab";
  app.appendChild(projectsPage());
} else {
  start();
}

document.querySelector(".topbar .spacer")?.after(themeToggle());

function start(): void {
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
}

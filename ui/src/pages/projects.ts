// A team server's projects (`/projects/`): each links to its runs page at
// `/projects/{project}/`.

import { api, errorText } from "../api";
import { h } from "../dom";

interface ProjectRow {
  name: string;
  runs: number;
}

export function projectsPage(): HTMLElement {
  const body = h("div", { testid: "projects" }, h("p", { class: "muted" }, "Loading…"));
  const el = h("section", { class: "page" }, h("h1", null, "Projects"), body);
  api<{ projects: ProjectRow[] }>("/projects").then(
    (r) => {
      if (r.projects.length === 0) {
        body.replaceChildren(h("p", { class: "muted" }, "No project has runs on this server yet, or this token sees none."));
        return;
      }
      body.replaceChildren(
        h(
          "table",
          { class: "data projects" },
          h("thead", null, h("tr", null, h("th", null, "Project"), h("th", { class: "num" }, "Runs"))),
          h(
            "tbody",
            null,
            r.projects.map((p) =>
              h(
                "tr",
                null,
                h("td", null, h("a", { href: "/projects/" + encodeURIComponent(p.name) + "/#/", testid: "project-link" }, p.name)),
                h("td", { class: "num" }, p.runs),
              ),
            ),
          ),
        ),
      );
    },
    (e) => body.replaceChildren(h("p", { class: "error-text" }, "Could not list the projects: " + errorText(e))),
  );
  return el;
}

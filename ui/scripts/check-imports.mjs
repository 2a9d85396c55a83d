// Fails when the page's modules import in a circle, or when a page imports
// another page (what two pages share lives in a module of its own).
//
//   node scripts/check-imports.mjs        (npm run check and npm run build run it)

import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), "../src");
const PAGES = "pages/";

function sources(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (/\.ts$/.test(name) && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/** The modules of src/ that `file` imports (`import`, `import type`, `export … from`). */
function imports(file) {
  const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, "");
  const found = new Set();
  for (const m of text.matchAll(/^\s*(?:import|export)\b[^;]*?\bfrom\s*["']([^"']+)["']|^\s*import\s*["']([^"']+)["']/gm)) {
    const spec = m[1] ?? m[2];
    if (!spec.startsWith(".")) continue; // a package
    let target = resolve(dirname(file), spec);
    if (!/\.(ts|css)$/.test(target)) target += ".ts";
    if (target.endsWith(".ts")) found.add(relative(SRC, target));
  }
  return [...found];
}

const graph = new Map(sources(SRC).map((f) => [relative(SRC, f), imports(f)]));
const problems = [];

for (const [mod, deps] of graph) {
  for (const d of deps) {
    if (!graph.has(d)) problems.push(`${mod} imports ${d}, which is not a module of src/`);
    else if (mod.startsWith(PAGES) && d.startsWith(PAGES)) problems.push(`${mod} imports the page ${d}: move what they share into a module of its own`);
  }
}

// Depth-first search; a module met again while still on the path closes a circle.
const state = new Map(); // module -> "open" | "done"
const path = [];
const circles = new Set();
function visit(mod) {
  state.set(mod, "open");
  path.push(mod);
  for (const d of graph.get(mod) ?? []) {
    if (state.get(d) === "open") circles.add([...path.slice(path.indexOf(d)), d].join(" -> "));
    else if (!state.has(d) && graph.has(d)) visit(d);
  }
  path.pop();
  state.set(mod, "done");
}
for (const mod of graph.keys()) if (!state.has(mod)) visit(mod);
for (const c of circles) problems.push(`an import circle: ${c}`);

for (const p of problems) console.error(`check-imports: ${p}`);
process.exit(problems.length ? 1 : 0);

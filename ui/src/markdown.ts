// A small Markdown renderer for run notes, made of elements and text nodes
// only (nothing parses HTML): paragraphs, headings, lists, quotes, fenced
// code; inline code, bold, italics, and links to http(s) addresses. Anything
// else shows as the text it is.

import { h, type Children } from "./dom";

/** The note `text` as elements. */
export function renderMarkdown(text: string): HTMLElement {
  const out = h("div", { class: "markdown" });
  const lines = text.replace(/\r\n?/g, "\n").split("\n");
  let i = 0;
  const para: string[] = [];
  const flush = () => {
    if (para.length) out.appendChild(h("p", null, inline(para.join(" "))));
    para.length = 0;
  };
  while (i < lines.length) {
    const line = lines[i];
    const fence = /^\s*(```|~~~)/.exec(line);
    if (fence) {
      flush();
      const code: string[] = [];
      i++;
      while (i < lines.length && !lines[i].trimStart().startsWith(fence[1])) code.push(lines[i++]);
      i++;
      out.appendChild(h("pre", null, h("code", null, code.join("\n"))));
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      flush();
      // Notes sit under the page's own headings: `#` is the note's largest, h3.
      const level = Math.min(6, heading[1].length + 2);
      out.appendChild(h(`h${level}` as "h3", null, inline(heading[2].replace(/\s+#+\s*$/, ""))));
      i++;
      continue;
    }
    const item = /^\s*([-*+]|\d+[.)])\s+/.exec(line);
    if (item) {
      flush();
      const ordered = /\d/.test(item[1]);
      const list = h(ordered ? "ol" : "ul");
      while (i < lines.length) {
        const m = /^\s*([-*+]|\d+[.)])\s+(.*)$/.exec(lines[i]);
        if (!m || /\d/.test(m[1]) !== ordered) break;
        list.appendChild(h("li", null, inline(m[2])));
        i++;
      }
      out.appendChild(list);
      continue;
    }
    if (/^\s*>/.test(line)) {
      flush();
      const quoted: string[] = [];
      while (i < lines.length && /^\s*>/.test(lines[i])) quoted.push(lines[i++].replace(/^\s*>\s?/, ""));
      const inner = renderMarkdown(quoted.join("\n"));
      out.appendChild(h("blockquote", null, Array.from(inner.childNodes)));
      continue;
    }
    if (!line.trim()) {
      flush();
      i++;
      continue;
    }
    para.push(line.trim());
    i++;
  }
  flush();
  return out;
}

/** Inline marks: `code`, **bold**, *italic* or _italic_, [text](https://…). */
function inline(text: string): Children[] {
  const out: Children[] = [];
  const pattern = /`([^`]+)`|\*\*([^*]+)\*\*|\*([^*\s][^*]*)\*|\b_([^_]+)_\b|\[([^\]]+)\]\(([^)\s]+)\)/g;
  let last = 0;
  for (let m = pattern.exec(text); m; m = pattern.exec(text)) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1] !== undefined) out.push(h("code", null, m[1]));
    else if (m[2] !== undefined) out.push(h("strong", null, inline(m[2])));
    else if (m[3] !== undefined) out.push(h("em", null, inline(m[3])));
    else if (m[4] !== undefined) out.push(h("em", null, inline(m[4])));
    else if (/^https?:\/\//i.test(m[6])) out.push(h("a", { href: m[6], rel: "noopener noreferrer", target: "_blank" }, m[5]));
    else out.push(m[0]);
    last = m.index + m[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

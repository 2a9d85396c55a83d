// A tiny DOM builder. Every string becomes a text node or an attribute value:
// nothing here (or anywhere in the page) parses HTML, so data from runs
// (names, params, error text, file contents) is always shown literally.

export type Child = Node | string | number | boolean | null | undefined;
export type Children = Child | Children[];

type Handler = (ev: any) => void;
export type Attrs = Record<string, string | number | boolean | null | undefined | Handler | Partial<CSSStyleDeclaration>>;

const PROPS = new Set(["value", "checked", "disabled", "selected", "indeterminate", "open", "tabIndex", "hidden"]);

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Children[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function setAttrs(el: HTMLElement, attrs: Attrs): void {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "style" && typeof v === "object") {
      Object.assign(el.style, v);
    } else if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v as EventListener);
    } else if (k === "testid") {
      el.setAttribute("data-testid", String(v));
    } else if (k === "class") {
      el.className = String(v);
    } else if (PROPS.has(k)) {
      (el as any)[k] = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
}

export function append(parent: Node, children: Children[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(parent, c);
    else if (c instanceof Node) parent.appendChild(c);
    else parent.appendChild(document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el` with `children`. */
export function fill(el: Element, ...children: Children[]): void {
  el.replaceChildren();
  append(el, children);
}

/** An SVG-free spinner-ish placeholder. */
export function loading(what = "Loading…"): HTMLElement {
  return h("div", { class: "loading", role: "status" }, what);
}

export function errorBox(message: string, extra?: Children): HTMLElement {
  return h("div", { class: "error-box", role: "alert" }, h("strong", null, "Error: "), message, extra ?? null);
}

/** Runs `fn` at most once per `ms`, the last call winning (trailing edge). */
export function throttle(fn: () => void, ms: number): { (): void; cancel(): void } {
  let timer: number | undefined;
  let last = 0;
  const call = () => {
    timer = undefined;
    last = performance.now();
    fn();
  };
  const t = () => {
    if (timer !== undefined) return;
    const wait = Math.max(0, last + ms - performance.now());
    timer = window.setTimeout(call, wait);
  };
  t.cancel = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  return t;
}

export function debounce<A extends unknown[]>(fn: (...a: A) => void, ms: number): { (...a: A): void; cancel(): void } {
  let timer: number | undefined;
  const d = (...a: A) => {
    if (timer !== undefined) clearTimeout(timer);
    timer = window.setTimeout(() => {
      timer = undefined;
      fn(...a);
    }, ms);
  };
  d.cancel = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };
  return d;
}

// The top bar's theme button: system, light, dark, in turn (remembered).

import { h } from "../dom";
import { setThemeChoice, THEME_CHOICES, themeChoice, type ThemeChoice } from "../theme";

const ICON: Record<ThemeChoice, string> = { system: "◐", light: "☀", dark: "☾" };
const NAME: Record<ThemeChoice, string> = { system: "System", light: "Light", dark: "Dark" };

export function themeToggle(): HTMLElement {
  const icon = h("span", { class: "theme-icon", "aria-hidden": "true" });
  const label = h("span", { class: "theme-label" });
  const button = h("button", { type: "button", class: "btn small ghost theme-toggle", testid: "theme-toggle" }, icon, label);
  const show = () => {
    const now = themeChoice();
    const next = THEME_CHOICES[(THEME_CHOICES.indexOf(now) + 1) % THEME_CHOICES.length];
    icon.textContent = ICON[now];
    label.textContent = NAME[now];
    button.dataset.theme = now;
    button.title = `Theme: ${NAME[now].toLowerCase()}${now === "system" ? " (as the system's)" : ""}; click for ${NAME[next].toLowerCase()}`;
    button.setAttribute("aria-label", button.title);
  };
  button.addEventListener("click", () => {
    const now = themeChoice();
    setThemeChoice(THEME_CHOICES[(THEME_CHOICES.indexOf(now) + 1) % THEME_CHOICES.length]);
    show();
  });
  show();
  return button;
}

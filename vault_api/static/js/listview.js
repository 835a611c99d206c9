// A virtualized list box: only the rows in view (plus a margin) exist in the
// DOM, so 10,000 items scroll and filter as fast as 10. Keyboard: arrows,
// Page Up/Down, Home/End move the selection; Enter opens. It is an ARIA
// listbox: the focused container names the active row with
// aria-activedescendant, and rows carry aria-setsize/aria-posinset.

import { h } from "./dom.js";

export class VirtualList {
  #root;
  #spacer;
  #rowHeight;
  #renderRow;
  #onActivate;
  #onSelect;
  #entries = [];
  #active = -1;
  #frame = 0;
  #overscan = 6;

  constructor({ label, rowHeight = 48, renderRow, onActivate = () => {}, onSelect = () => {} }) {
    this.#rowHeight = rowHeight;
    this.#renderRow = renderRow;
    this.#onActivate = onActivate;
    this.#onSelect = onSelect;
    this.#spacer = h("div", { class: "vlist-spacer" });
    this.#root = h(
      "div",
      { class: "vlist", role: "listbox", tabindex: "0", "aria-label": label },
      this.#spacer,
    );
    this.#root.addEventListener("scroll", () => this.#schedule(), { passive: true });
    this.#root.addEventListener("keydown", (e) => this.#key(e));
    new ResizeObserver(() => this.#schedule()).observe(this.#root);
  }

  get element() {
    return this.#root;
  }

  get length() {
    return this.#entries.length;
  }

  get active() {
    return this.#entries[this.#active] ?? null;
  }

  /** Show `entries` (keeping the selected entry when it is still there). */
  setEntries(entries) {
    const keep = this.active;
    this.#entries = entries;
    this.#active = keep ? entries.indexOf(keep) : -1;
    this.#spacer.style.height = `${entries.length * this.#rowHeight}px`;
    this.render();
  }

  select(entry, { scroll = true } = {}) {
    const i = this.#entries.indexOf(entry);
    if (i >= 0) this.#setActive(i, { scroll, notify: false });
  }

  focus() {
    this.#root.focus();
  }

  #schedule() {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.render();
    });
  }

  /** Render the rows in view now. */
  render() {
    const n = this.#entries.length;
    const rh = this.#rowHeight;
    const top = this.#root.scrollTop;
    const height = this.#root.clientHeight || 600;
    const first = Math.max(0, Math.floor(top / rh) - this.#overscan);
    const last = Math.min(n, Math.ceil((top + height) / rh) + this.#overscan);
    const rows = [];
    for (let i = first; i < last; i++) {
      const entry = this.#entries[i];
      const row = h("div", {
        class: "vlist-row",
        role: "option",
        id: `row-${i}`,
        "aria-selected": i === this.#active ? "true" : "false",
        "aria-setsize": String(n),
        "aria-posinset": String(i + 1),
      });
      row.style.transform = `translateY(${i * rh}px)`;
      row.style.height = `${rh}px`;
      this.#renderRow(entry, row);
      row.addEventListener("click", () => {
        this.#setActive(i, { scroll: false });
        this.#onActivate(entry);
      });
      rows.push(row);
    }
    this.#spacer.replaceChildren(...rows);
    if (this.#active >= first && this.#active < last) {
      this.#root.setAttribute("aria-activedescendant", `row-${this.#active}`);
    } else {
      this.#root.removeAttribute("aria-activedescendant");
    }
  }

  #setActive(i, { scroll = true, notify = true } = {}) {
    const n = this.#entries.length;
    if (n === 0) return;
    this.#active = Math.max(0, Math.min(n - 1, i));
    if (scroll) {
      const rh = this.#rowHeight;
      const top = this.#active * rh;
      const view = this.#root.clientHeight;
      if (top < this.#root.scrollTop) this.#root.scrollTop = top;
      else if (top + rh > this.#root.scrollTop + view) this.#root.scrollTop = top + rh - view;
    }
    this.render();
    if (notify) this.#onSelect(this.#entries[this.#active]);
  }

  #key(e) {
    const page = Math.max(1, Math.floor(this.#root.clientHeight / this.#rowHeight) - 1);
    const moves = {
      ArrowDown: this.#active + 1,
      ArrowUp: Math.max(0, this.#active - 1),
      PageDown: this.#active + page,
      PageUp: Math.max(0, this.#active - page),
      Home: 0,
      End: this.#entries.length - 1,
    };
    if (e.key in moves) {
      e.preventDefault();
      this.#setActive(moves[e.key]);
    } else if ((e.key === "Enter" || e.key === " ") && this.active) {
      e.preventDefault();
      this.#onActivate(this.active);
    }
  }
}

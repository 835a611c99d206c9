// Small DOM helpers. Text always goes in as text (textContent, attribute
// values): decrypted data is never parsed as HTML, so an item another member
// wrote cannot inject markup or script into this page.

/**
 * h("button", {type: "button", class: "x", onclick: fn, "aria-label": "..."}, "text", child)
 * Attributes whose value is false/null/undefined are left out; true gives "".
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = Boolean(v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** Replace the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const nf = new Intl.NumberFormat("en");
export const num = (n) => nf.format(n);

/** Human file sizes: 1.5 MB. */
export function bytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let v = n;
  let u = -1;
  do {
    v /= 1024;
    u += 1;
  } while (v >= 1024 && u < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}

export function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "";
}

/**
 * The page's live regions: status (polite: progress, "Scanned", "Copied")
 * and alert (assertive: errors). Progress updates are throttled so screen
 * readers are not flooded; the last one always shows.
 */
export class Announcer {
  #status;
  #alert;
  #last = 0;
  #pending = null;

  constructor(status, alert) {
    this.#status = status;
    this.#alert = alert;
  }

  status(text) {
    clearTimeout(this.#pending);
    this.#pending = null;
    this.#status.textContent = text;
    this.#last = performance.now();
  }

  /** A progress message: shown at most every 250 ms, except `force`d ones. */
  progress(text, force = false) {
    const now = performance.now();
    if (force || now - this.#last >= 250) {
      this.status(text);
    } else {
      clearTimeout(this.#pending);
      this.#pending = setTimeout(() => this.status(text), 250 - (now - this.#last));
    }
  }

  alert(text) {
    this.#alert.textContent = "";
    // A changed text is announced even when it repeats the last one.
    requestAnimationFrame(() => {
      this.#alert.textContent = text;
    });
    this.#alert.hidden = !text;
  }

  clearAlert() {
    this.#alert.textContent = "";
    this.#alert.hidden = true;
  }
}

/**
 * Open a <dialog> modally; on close, focus goes back to what had it. Resolves
 * with the dialog's returnValue.
 */
export function openDialog(dialog, { focus } = {}) {
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const onClose = () => {
      dialog.removeEventListener("close", onClose);
      if (opener && opener.isConnected && typeof opener.focus === "function") opener.focus();
      resolve(dialog.returnValue);
    };
    dialog.addEventListener("close", onClose);
    dialog.returnValue = "";
    dialog.showModal();
    const target = focus ? dialog.querySelector(focus) : null;
    (target || dialog.querySelector("[autofocus], input, select, textarea, button"))?.focus();
  });
}

/** A standard modal dialog element: title, body, and a close button. */
export function makeDialog(id, title, ...body) {
  const heading = h("h2", { id: `${id}-title` }, title);
  const close = h("button", { type: "button", class: "dialog-close", "aria-label": "Close", onclick: () => dialog.close() }, "×");
  const content = h("div", { class: "dialog-body" }, ...body);
  const dialog = h("dialog", { id, "aria-labelledby": `${id}-title` }, h("header", {}, heading, close), content);
  document.body.append(dialog);
  dialog.addEventListener("close", () => dialog.remove());
  return { dialog, content, heading };
}

const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()?.();

/**
 * Yield to the browser between batches of work: the rest runs as a new task
 * at the back of the queue, so input, rendering, timers and other tasks all
 * get their turn (scheduler.yield() would put the continuation ahead of
 * timers; setTimeout(0) is clamped to 4 ms when nested).
 */
export function yieldToBrowser() {
  return new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(null);
  });
}

/** Resolve after the next frame has been painted. */
export function afterPaint() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

/** Save a Blob as a download with `name`. */
export function saveBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

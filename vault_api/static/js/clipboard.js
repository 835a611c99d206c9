// Copy to the clipboard, cleared again after CLEAR_MS (unless something else
// was copied since, when the browser lets the page read the clipboard to tell).

export const CLEAR_MS = 30_000;

let timer = null;
let copied = null;

/** Copy `text`; resolves with the time (ms) until the clipboard clears. */
export async function copySecret(text, { clearMs = CLEAR_MS } = {}) {
  await navigator.clipboard.writeText(text);
  copied = text;
  clearTimeout(timer);
  timer = setTimeout(clearNow, clearMs);
  return clearMs;
}

/** Clear what this page copied (now: logout, lock, idle timeout). */
export async function clearNow() {
  clearTimeout(timer);
  timer = null;
  if (copied === null) return;
  const mine = copied;
  copied = null;
  try {
    let current = mine;
    try {
      current = await navigator.clipboard.readText();
    } catch {
      // No permission to read: clear anyway (the page cannot tell).
    }
    if (current === mine) await navigator.clipboard.writeText("");
  } catch {
    // The page lost focus: the clipboard cannot be written now.
  }
}

export function pending() {
  return copied !== null;
}

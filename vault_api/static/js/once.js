// The one-time link page (/once, docs/devices.md 7). The link is
// <vault>/once#<proxy token>.<base64url(K)>: the fragment never reaches a
// server. The page takes it, removes it from the address bar and history,
// asks the proxy for the deposit's status (which does not consume it, so a
// link previewer does not burn it), and claims the blob only on the explicit
// "Reveal". The item is opened here with K; AES-GCM refuses a changed link.

import * as dc from "./crypto/devices.js";
import { decodeJson } from "./crypto/records.js";
import { b64uDecode } from "./crypto/encoding.js";
import { LinkInvalid, VaultCryptoError } from "./crypto/errors.js";
import { KeyProxy, ProxyError } from "./keyproxy.js";
import { $, fill, h, when } from "./dom.js";

const LABELS = {
  username: "User name", password: "Password", urls: "Web addresses", totp: "TOTP secret", notes: "Notes",
  cardholder: "Cardholder", number: "Card number", brand: "Brand", expiry: "Expiry", code: "Security code", pin: "PIN",
};

function state(name, heading, text) {
  document.documentElement.dataset.state = name;
  $("#once-heading").textContent = heading;
  $("#once-text").textContent = text;
  $("#status").textContent = heading;
}

function damaged(why) {
  $("#once-actions").hidden = true;
  state("damaged", "The link is damaged", `${why} Ask the sender for a new link.`);
}

/** {token, key} from the fragment, which is then removed from the address bar and history. */
function takeFragment() {
  const fragment = location.hash.slice(1);
  if (fragment) history.replaceState(null, "", location.pathname + location.search);
  const at = fragment.lastIndexOf(".");
  if (at <= 0 || at === fragment.length - 1) return { fragment, token: null, key: null };
  let key = null;
  try {
    key = b64uDecode(fragment.slice(at + 1), { field: "the link's key", length: dc.LINK_KEY_BYTES });
  } catch {
    key = null;
  }
  return { fragment, token: fragment.slice(0, at), key };
}

function showItem(content) {
  $("#once-item-title").textContent = typeof content.title === "string" && content.title ? content.title : "(untitled)";
  const rows = [];
  const add = (label, value) => {
    if (value === undefined || value === null || value === "") return;
    rows.push(h("dt", {}, label), h("dd", { class: "secret" }, Array.isArray(value) ? value.join("\n") : String(value)));
  };
  for (const [key, label] of Object.entries(LABELS)) add(label, content[key]);
  for (const f of Array.isArray(content.fields) ? content.fields : []) add(f?.name || "Field", f?.value);
  if (Array.isArray(content.tags) && content.tags.length) add("Tags", content.tags.join(", "));
  fill($("#once-fields"), rows);
  $("#once-item").hidden = false;
}

function gone(st) {
  if (st.state === "claimed") {
    state("claimed", "This link was already opened", `It was opened${st.claimed_ms ? ` on ${when(st.claimed_ms)}` : ""}; a one-time link shows its secret once. If that was not you, tell the sender.`);
    return true;
  }
  if (st.state === "expired") {
    state("expired", "This link has expired", `It expired${st.expires_ms ? ` on ${when(st.expires_ms)}` : ""} without being opened. Ask the sender for a new one.`);
    return true;
  }
  return false;
}

function refused(e) {
  if (e instanceof ProxyError) {
    if (e.code === "claimed") return gone({ state: "claimed", claimed_ms: e.body.claimed_ms });
    if (e.code === "expired") return gone({ state: "expired", expires_ms: e.body.expires_ms });
    if (e.status === 404) {
      state("not-found", "This link does not open", "The proxy holds nothing under it: it expired long ago, was never made, or its token was changed when copied.");
      return true;
    }
    if (e.code === "burned" || e.code === "condition_failed") {
      damaged("The proxy refused to release it.");
      return true;
    }
  }
  return false;
}

async function main() {
  const { fragment, token, key } = takeFragment();
  if (!fragment) {
    state("empty", "No link here", "Open the whole link you were sent, including the part after #. (After a secret is shown, reloading the page shows this.)");
    return;
  }
  if (!token || !key) return damaged("The part after # is not a token and a key: was it cut when copied?");
  let proxy;
  try {
    const config = await (await fetch("/api/config", { credentials: "omit" })).json();
    proxy = new KeyProxy(config.keyproxy_url);
  } catch (e) {
    state("problem", "The link cannot be checked", `This vault has no one-time key proxy, or it cannot be reached (${e.message}).`);
    return;
  }
  let st;
  try {
    st = await proxy.status(token);
  } catch (e) {
    if (refused(e)) return;
    state("problem", "The link cannot be checked now", `${e.message}. Try again later: checking does not open it.`);
    return;
  }
  if (gone(st)) return;
  state("ready", "Someone sent you a secret", `It can be opened once, until ${when(st.expires_ms)}. Reveal it when you are ready to copy it: afterwards the link no longer opens.`);
  const actions = $("#once-actions");
  const button = $("#reveal-button");
  actions.hidden = false;
  button.addEventListener("click", async () => {
    button.disabled = true;
    let blob;
    try {
      blob = await proxy.claim(token);
    } catch (e) {
      actions.hidden = true;
      if (!refused(e)) state("problem", "The secret did not open", `${e.message}.`);
      return;
    }
    actions.hidden = true;
    try {
      const content = decodeJson(await dc.openLink(blob, key), "the one-time secret");
      key.fill(0);
      state("revealed", "Your one-time secret", "Copy what you need now: this link does not open again.");
      showItem(content);
      $("#once-item-title").focus?.();
    } catch (e) {
      if (e instanceof LinkInvalid || e instanceof VaultCryptoError) damaged("It did not decrypt with the key in the link (AES-GCM refused it): the link was changed.");
      else throw e;
    }
  }, { once: true });
  button.focus();
}

// Another link pasted into this tab's address bar changes only the fragment: start over with it.
window.addEventListener("hashchange", () => location.reload());
main();

// "Send once…" on an item (docs/devices.md 7): the item sealed in this page
// under a fresh key K, the blob deposited at the one-time key proxy, and a
// link <vault>/once#<token>.<K> to give to someone without an account. K is
// only in the link's fragment, which browsers never send to a server.

import * as vc from "./vaultcrypto.js";
import { utf8 } from "./crypto/encoding.js";
import * as dc from "./crypto/devices.js";
import { KeyProxy } from "./keyproxy.js";
import { fill, h, makeDialog, openDialog, when } from "./dom.js";
import { copySecret } from "./clipboard.js";

const LIFETIMES = [
  [600, "10 minutes"],
  [3600, "1 hour"],
  [86_400, "1 day"],
  [3 * 86_400, "3 days"],
  [7 * 86_400, "7 days"],
];
const DEFAULT_TTL = 86_400;

/** The item's content as the link carries it: what a reader can use (no file keys). */
function shareable(content) {
  const { files: _files, ...rest } = content;
  return rest;
}

/** {link, expiresMs} for `content`, deposited for `ttlSeconds`. */
export async function makeLink(proxyUrl, vaultUrl, content, ttlSeconds) {
  const proxy = new KeyProxy(proxyUrl);
  const { blob, key } = await dc.sealLink(utf8(JSON.stringify(shareable(content))));
  const dep = await proxy.deposit(blob, ttlSeconds, []);
  const link = `${vaultUrl}/once#${dep.token}.${vc.b64uEncode(key)}`;
  key.fill(0);
  return { link, expiresMs: dep.expires_ms };
}

export async function sendOnceDialog(app, entry) {
  const title = entry.title || "(untitled)";
  const ttl = h("select", { id: "once-ttl" }, LIFETIMES.map(([s, label]) => h("option", { value: s, selected: s === DEFAULT_TTL ? "" : null }, label)));
  const out = h("div", { id: "once-result", "aria-live": "polite" });
  const go = h("button", { type: "button", class: "primary", id: "once-go" }, "Make the link");
  go.addEventListener("click", async () => {
    go.disabled = true;
    try {
      if (!app.config.keyproxy_url) throw new Error("this vault has no one-time key proxy configured (keyproxy_not_configured)");
      const { link, expiresMs } = await makeLink(app.config.keyproxy_url, location.origin, entry.content, Number(ttl.value));
      const field = h("input", { id: "once-link", readonly: true, value: link, "aria-label": "The one-time link", class: "secret" });
      fill(
        out,
        h("p", { class: "good" }, `A link to ${title} that opens once, until ${when(expiresMs)}.`),
        field,
        h("div", { class: "actions" }, h("button", { type: "button", onclick: () => copySecret(link).then(() => app.say.status("The link was copied.")) }, "Copy the link")),
        h("p", { class: "help" }, "Whoever has the link can open it, once: send it over a channel you trust. Neither the vault's server nor the proxy can read it."),
      );
      app.say.status(`One-time link to ${title} made.`);
      field.select();
    } catch (e) {
      fill(out, h("p", { class: "bad" }, `No link was made: ${e.message}`));
      go.disabled = false;
    }
  });
  const { dialog } = makeDialog(
    "once-dialog",
    `Send ${title} once`,
    h("p", {}, "Make a link that shows this item once to someone without an account. The item is encrypted here; the key is only in the link."),
    h("label", { for: "once-ttl" }, "The link expires after"),
    ttl,
    h("div", { class: "actions" }, go),
    out,
  );
  await openDialog(dialog, { focus: "#once-ttl" });
}

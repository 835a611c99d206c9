// Export from the browser: the open safe's decrypted items as Bitwarden's
// unencrypted JSON (which the importer reads back, folders included) or as
// CSV in Chrome's column layout (logins only: CSV has no place for cards or
// notes). The file is made in the page and saved by the browser; nothing is
// sent anywhere. Both are plaintext: the page says so before saving.

import { toCsv } from "./csv.js";

/**
 * items: [{id (text), content, folderId (text) | null}]; folders: Map id ->
 * {name, parentId}. Returns the JSON text.
 */
export function toBitwardenJson(items, folders) {
  const pathOf = (id) => {
    const parts = [];
    for (let f = folders.get(id), guard = 0; f && guard < 100; f = folders.get(f.parentId), guard++) {
      parts.unshift(f.name.replace(/\//g, "∕"));
    }
    return parts.join("/");
  };
  const usedFolders = new Map();
  for (const id of folders.keys()) usedFolders.set(id, { id, name: pathOf(id) });
  const out = {
    encrypted: false,
    folders: [...usedFolders.values()],
    items: items.map(({ id, content, folderId }) => {
      const base = {
        id,
        organizationId: null,
        folderId: folderId && usedFolders.has(folderId) ? folderId : null,
        type: 2,
        reprompt: 0,
        name: content.title,
        notes: content.notes || null,
        favorite: false,
        fields: (content.fields || []).map((f) => ({
          name: f.name,
          value: f.value,
          type: f.hidden ? 1 : 0,
          linkedId: null,
        })),
        collectionIds: null,
      };
      if (content.type === "login") {
        return {
          ...base,
          type: 1,
          login: {
            uris: (content.urls || []).map((uri) => ({ match: null, uri })),
            username: content.username ?? null,
            password: content.password ?? null,
            totp: content.totp || null,
          },
        };
      }
      if (content.type === "card") {
        const [month, year] = String(content.expiry || "").split("/");
        return {
          ...base,
          type: 3,
          card: {
            cardholderName: content.cardholder ?? null,
            brand: content.brand ?? null,
            number: content.number ?? null,
            expMonth: month ? String(Number(month)) : null,
            expYear: year || null,
            code: content.code ?? null,
          },
        };
      }
      return { ...base, secureNote: { type: 0 } };
    }),
  };
  return JSON.stringify(out, null, 2);
}

/** CSV in Chrome's layout (name,url,username,password,note): {text, exported, leftOut}. */
export function toChromeCsv(items) {
  const rows = [["name", "url", "username", "password", "note"]];
  let leftOut = 0;
  for (const { content } of items) {
    if (content.type !== "login") {
      leftOut += 1;
      continue;
    }
    rows.push([content.title, (content.urls || [])[0] || "", content.username || "", content.password || "", content.notes || ""]);
  }
  return { text: toCsv(rows), exported: rows.length - 1, leftOut };
}

// Records under a safe key (docs/vault.md 3.5 and 7): safe names, folder
// names and items, each a box over padded JSON whose associated data binds it
// to its place, so a server cannot swap ciphertexts between records, safes,
// folders, versions or key generations, nor replay an old version as new.
//
//     safe name  aad = transcript("authnet-vault/v1 safe name", safe_id, u32(version), u32(g))
//     folder     aad = transcript("authnet-vault/v1 folder", safe_id, folder_id, parent_id | "",
//                                 u32(version), u32(g))
//     item       aad = transcript("authnet-vault/v1 item", safe_id, item_id, folder_id | "",
//                                 u32(version), u32(schema), u32(g))

import { ContentInvalid, FolderInvalid, ItemInvalid, SafeNameInvalid } from "./errors.js";
import { LABELS, openBox, seal } from "./aead.js";
import { checkId, short, transcript, u32 } from "./encoding.js";

export const PAD_BLOCK = 32;
export const SCHEMA_VERSION = 1;
export const ITEM_TYPES = Object.freeze(["card", "document", "login", "note"]);
export const MAX_PLAINTEXT_BYTES = 192 * 1024;

const te = new TextEncoder();
const td = new TextDecoder("utf-8", { fatal: true });
const EMPTY = new Uint8Array(0);

/** `text` followed by spaces up to a multiple of PAD_BLOCK (at least one block). */
export function pad(text) {
  const size = Math.max(PAD_BLOCK, Math.ceil(text.length / PAD_BLOCK) * PAD_BLOCK);
  const out = new Uint8Array(size).fill(0x20);
  out.set(text, 0);
  return out;
}

/** Compact JSON (no white space between tokens, non-ASCII as UTF-8), padded. */
export function encodeJson(obj) {
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new ContentInvalid("a record is a JSON object");
  }
  const data = pad(te.encode(JSON.stringify(obj)));
  if (data.length > MAX_PLAINTEXT_BYTES) {
    throw new ContentInvalid(`record is ${data.length} bytes; at most ${MAX_PLAINTEXT_BYTES}`);
  }
  return data;
}

/** The JSON object in a (padded) plaintext; ContentInvalid if it is not one. */
export function decodeJson(data, what) {
  let obj;
  try {
    obj = JSON.parse(td.decode(data));
  } catch {
    throw new ContentInvalid(`${what} opened but is not UTF-8 JSON`);
  }
  if (obj === null || typeof obj !== "object" || Array.isArray(obj)) {
    throw new ContentInvalid(`${what} opened but is not a JSON object`);
  }
  return obj;
}

/** The fields every item has: a known `type` and a string `title`. */
export function checkItem(content) {
  if (!ITEM_TYPES.includes(content?.type)) {
    const got = JSON.stringify(content?.type);
    throw new ContentInvalid(`item type must be one of ${ITEM_TYPES.join(", ")}, got ${got}`);
  }
  if (typeof content.title !== "string") throw new ContentInvalid("item title must be a string");
}

function encodeName(name) {
  if (typeof name !== "string" || name.trim() === "") {
    throw new ContentInvalid("a name must be a non-empty string");
  }
  return encodeJson({ name });
}

function decodeName(data, what) {
  const obj = decodeJson(data, what);
  if (typeof obj.name !== "string") {
    throw new ContentInvalid(`${what} opened but has no string 'name'`);
  }
  return obj.name;
}

function optionalId(value, what) {
  if (value === null || value === undefined) return EMPTY;
  return checkId(value, what);
}

// --- safe names ------------------------------------------------------------------

export function safeNameAad({ safeId, version, generation }) {
  checkId(safeId, "safe id");
  return transcript(
    LABELS.safeName,
    safeId,
    u32(version, "version"),
    u32(generation, "key generation"),
  );
}

export async function encryptSafeName(ks, name, { safeId, version, generation, nonce }) {
  return seal(ks, encodeName(name), safeNameAad({ safeId, version, generation }), { nonce });
}

export async function decryptSafeName(ks, box, { safeId, version, generation }) {
  const data = await openBox(ks, box, safeNameAad({ safeId, version, generation }), "safe name");
  if (data === null) {
    throw new SafeNameInvalid(
      `the name of safe ${short(safeId)} (version ${version}, key generation ${generation}) does ` +
        "not open: its ciphertext was modified, or it was made for another safe, version or key " +
        "generation",
    );
  }
  return decodeName(data, `the name of safe ${short(safeId)}`);
}

// --- folders ---------------------------------------------------------------------

export function folderAad({ safeId, folderId, parentId, version, generation }) {
  checkId(safeId, "safe id");
  checkId(folderId, "folder id");
  return transcript(
    LABELS.folder,
    safeId,
    folderId,
    optionalId(parentId, "parent folder id"),
    u32(version, "version"),
    u32(generation, "key generation"),
  );
}

export async function encryptFolderName(
  ks,
  name,
  { safeId, folderId, parentId, version, generation, nonce },
) {
  const aad = folderAad({ safeId, folderId, parentId, version, generation });
  return seal(ks, encodeName(name), aad, { nonce });
}

export async function decryptFolderName(
  ks,
  box,
  { safeId, folderId, parentId, version, generation },
) {
  const aad = folderAad({ safeId, folderId, parentId, version, generation });
  const data = await openBox(ks, box, aad, "folder name");
  if (data === null) {
    throw new FolderInvalid(
      `folder ${short(folderId)} of safe ${short(safeId)} (version ${version}, key generation ` +
        `${generation}) does not open: its ciphertext was modified, or it was made for another ` +
        "folder, safe, parent, version or key generation",
    );
  }
  return decodeName(data, `folder ${short(folderId)}`);
}

// --- items -----------------------------------------------------------------------

export function itemAad({
  safeId,
  itemId,
  folderId,
  version,
  generation,
  schema = SCHEMA_VERSION,
}) {
  checkId(safeId, "safe id");
  checkId(itemId, "item id");
  return transcript(
    LABELS.item,
    safeId,
    itemId,
    optionalId(folderId, "folder id"),
    u32(version, "version"),
    u32(schema, "schema version"),
    u32(generation, "key generation"),
  );
}

/** An item's ciphertext; `content` is its JSON object (docs/vault.md 7.3). */
export async function encryptItem(
  ks,
  content,
  { safeId, itemId, folderId, version, generation, schema = SCHEMA_VERSION, nonce },
) {
  checkItem(content);
  const aad = itemAad({ safeId, itemId, folderId, version, generation, schema });
  return seal(ks, encodeJson(content), aad, { nonce });
}

export async function decryptItem(
  ks,
  box,
  { safeId, itemId, folderId, version, generation, schema = SCHEMA_VERSION },
) {
  const aad = itemAad({ safeId, itemId, folderId, version, generation, schema });
  const data = await openBox(ks, box, aad, "item");
  if (data === null) {
    throw new ItemInvalid(
      `item ${short(itemId)} of safe ${short(safeId)} (version ${version}, key generation ` +
        `${generation}) does not open: its ciphertext was modified, or it was made for another ` +
        "item, safe, folder, version or key generation",
    );
  }
  const content = decodeJson(data, `item ${short(itemId)}`);
  checkItem(content);
  return content;
}

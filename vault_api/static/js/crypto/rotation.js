// Key rotation, client side (docs/vault.md 11.4): everything under Ks_g
// re-encrypted under Ks_(g+1). Each record is opened under the old key first,
// so a rotation never launders a record that does not open (it throws that
// record's error). Versions stay; only the generation in the associated data
// changes. History is not re-encrypted: the new generation carries the old key.
//
// planRotation does a whole safe at once, like the Python reference; the page
// uses restageItem / restageFolder / restageFile / sealForMembers in batches
// to show progress and stay responsive, and to re-stage what a commit reports
// as stale or missing.

import {
  decryptFolderName,
  decryptItem,
  decryptSafeName,
  encryptFolderName,
  encryptItem,
  encryptSafeName,
} from "./records.js";
import { importSafeKey, newSafeKey, sealSafeKey, wrapPreviousKey } from "./safekeys.js";
import { unwrapFileKey, wrapFileKey } from "./files.js";
import { asBytes } from "./encoding.js";

/**
 * item: {itemId, folderId, version, generation, schema, ct} -> {itemId, baseVersion, ct}.
 * `oldKey` opens it at its generation; `newKey` encrypts it at `newGeneration`.
 */
export async function restageItem(oldKey, newKey, { safeId, item, newGeneration }) {
  const content = await decryptItem(oldKey, item.ct, {
    safeId,
    itemId: item.itemId,
    folderId: item.folderId,
    version: item.version,
    generation: item.generation,
    schema: item.schema,
  });
  const ct = await encryptItem(newKey, content, {
    safeId,
    itemId: item.itemId,
    folderId: item.folderId,
    version: item.version,
    generation: newGeneration,
    schema: item.schema,
  });
  return { itemId: item.itemId, baseVersion: item.version, ct };
}

/** folder: {folderId, parentId, version, generation, nameCt} -> {folderId, baseVersion, nameCt}. */
export async function restageFolder(oldKey, newKey, { safeId, folder, newGeneration }) {
  const ctx = {
    safeId,
    folderId: folder.folderId,
    parentId: folder.parentId,
    version: folder.version,
  };
  const name = await decryptFolderName(oldKey, folder.nameCt, {
    ...ctx,
    generation: folder.generation,
  });
  const nameCt = await encryptFolderName(newKey, name, { ...ctx, generation: newGeneration });
  return { folderId: folder.folderId, baseVersion: folder.version, nameCt };
}

/** file: {fileId, generation, keyWrap} -> {fileId, keyWrap}: only K_f's wrap changes. */
export async function restageFile(oldKey, newKey, { safeId, file, newGeneration }) {
  const fileKey = await unwrapFileKey(oldKey, file.keyWrap, {
    safeId,
    fileId: file.fileId,
    generation: file.generation,
    extractable: true,
  });
  const keyWrap = await wrapFileKey(newKey, fileKey, {
    safeId,
    fileId: file.fileId,
    generation: newGeneration,
  });
  return { fileId: file.fileId, keyWrap };
}

/** The new Ks (raw bytes) sealed to every member that keeps access: [{userId, sealedKey}]. */
export async function sealForMembers(newKeyRaw, { safeId, generation, members }) {
  const out = [];
  for (const m of members) {
    out.push({
      userId: m.userId,
      sealedKey: await sealSafeKey(newKeyRaw, m.publicKey, {
        safeId,
        userId: m.userId,
        generation,
      }),
    });
  }
  return out;
}

/**
 * Everything the server needs to move a safe to generation + 1.
 * `state`: {safeId, generation, nameVersion, nameCt, items, folders, files}
 * (records as restageItem/restageFolder/restageFile take them); `oldKeyRaw`:
 * the current Ks as raw bytes (the admin opens its sealed key with raw: true);
 * `members`: [{userId, publicKey}] that keep access, as the admin verified them.
 * Returns {safeId, fromGeneration, toGeneration, newKey (raw bytes: zero them
 * after the commit), newCryptoKey, previousKey, nameBaseVersion, nameCt,
 * members, items, folders, files}.
 */
export async function planRotation(state, oldKeyRaw, members, { newKey } = {}) {
  const safeId = state.safeId;
  const from = state.generation;
  const to = from + 1;
  const raw = newKey === undefined ? newSafeKey() : asBytes(newKey, "new safe key");
  const oldKey = await importSafeKey(oldKeyRaw);
  const key = await importSafeKey(raw);
  const name = await decryptSafeName(oldKey, state.nameCt, {
    safeId,
    version: state.nameVersion,
    generation: from,
  });
  const plan = {
    safeId,
    fromGeneration: from,
    toGeneration: to,
    newKey: raw,
    newCryptoKey: key,
    previousKey: await wrapPreviousKey(key, oldKeyRaw, { safeId, oldGeneration: from }),
    nameBaseVersion: state.nameVersion,
    nameCt: await encryptSafeName(key, name, {
      safeId,
      version: state.nameVersion,
      generation: to,
    }),
    members: await sealForMembers(raw, { safeId, generation: to, members }),
    items: [],
    folders: [],
    files: [],
  };
  for (const item of state.items ?? []) {
    plan.items.push(await restageItem(oldKey, key, { safeId, item, newGeneration: to }));
  }
  for (const folder of state.folders ?? []) {
    plan.folders.push(await restageFolder(oldKey, key, { safeId, folder, newGeneration: to }));
  }
  for (const file of state.files ?? []) {
    plan.files.push(await restageFile(oldKey, key, { safeId, file, newGeneration: to }));
  }
  return plan;
}

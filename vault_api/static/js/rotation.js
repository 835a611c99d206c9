// Rotating a safe's key from the page (docs/vault.md 11.4), staged so the
// safe never exists half rotated:
//
//   1. read the safe and its members; open the current Ks (raw, to chain it);
//      make Ks' (raw only while sealing it to the members)
//   2. POST .../rotations {from_generation, previous_key}
//   3. stage the name and sealed keys, then items, folders and file keys in
//      batches, each record opened under Ks and re-encrypted under Ks'
//   4. commit; if members edited meanwhile (409 rotation_incomplete), re-stage
//      just what is missing or stale, from the records as they are now, and
//      commit again
//
// If the page dies at any step the live safe is unchanged and still marked
// rotation_needed; the next admin page that opens it starts a new rotation
// (which drops the dead one's staging area). Raw key bytes are zeroed at the end.

import * as vc from "./vaultcrypto.js";
import { ApiError, path } from "./api.js";
import { yieldToBrowser } from "./dom.js";

export const STAGE_BATCH = 500;
const MAX_COMMITS = 5;

const enc = vc.b64uEncode;
const dec = (text, field) => vc.b64uDecode(text, { field });
const optDec = (text) => (text === null ? null : dec(text, "id"));

function itemRecord(i) {
  return {
    itemId: dec(i.id, "item id"),
    folderId: optDec(i.folder_id),
    version: i.version,
    generation: i.generation,
    schema: i.schema,
    ct: dec(i.ct, "item"),
  };
}

function folderRecord(f) {
  return {
    folderId: dec(f.id, "folder id"),
    parentId: optDec(f.parent_id),
    version: f.version,
    generation: f.generation,
    nameCt: dec(f.name_ct, "folder name"),
  };
}

function fileRecord(f) {
  return { fileId: dec(f.id, "file id"), generation: f.generation, keyWrap: dec(f.key_wrap, "file key") };
}

/**
 * Rotate `safe` (a Safe of safes.js) with the Vault `vault`. `progress(text,
 * done, total)` reports each step. Resolves with the new generation.
 */
export async function rotateSafe(vault, safe, { progress = () => {} } = {}) {
  const api = vault.api;
  const base = path("safes", safe.idText);
  progress("Reading the safe", 0, 0);
  let contents = await api.get(`${base}/contents`);
  safe.update(contents.safe);
  const members = (await api.get(`${base}/members`)).members;
  const from = safe.generation;
  const to = from + 1;
  const oldRaw = await vault.rawKey(safe);
  const newRaw = vc.newSafeKey();
  try {
    const oldKey = await vc.importSafeKey(oldRaw);
    const newKey = await vc.importSafeKey(newRaw);
    const sid = safe.id;
    const rot = await api.post(`${base}/rotations`, {
      from_generation: from,
      previous_key: enc(await vc.wrapPreviousKey(newKey, oldRaw, { safeId: sid, oldGeneration: from })),
    });
    const stagePath = `${base}/rotations/${encodeURIComponent(rot.id)}/stage`;
    const restage = {
      item: async (i) => {
        const s = await vc.restageItem(oldKey, newKey, { safeId: sid, item: itemRecord(i), newGeneration: to });
        return { id: i.id, base_version: s.baseVersion, ct: enc(s.ct) };
      },
      folder: async (f) => {
        const s = await vc.restageFolder(oldKey, newKey, { safeId: sid, folder: folderRecord(f), newGeneration: to });
        return { id: f.id, base_version: s.baseVersion, name_ct: enc(s.nameCt) };
      },
      file: async (f) => {
        const s = await vc.restageFile(oldKey, newKey, { safeId: sid, file: fileRecord(f), newGeneration: to });
        return { id: f.id, key_wrap: enc(s.keyWrap) };
      },
    };
    const sealMembers = async (list) => {
      const sealed = await vc.sealForMembers(newRaw, {
        safeId: sid,
        generation: to,
        members: list.map((m) => ({ userId: dec(m.user_id, "user id"), publicKey: dec(m.public_key, "public key") })),
      });
      return sealed.map((s, n) => ({ user_id: list[n].user_id, sealed_key: enc(s.sealedKey) }));
    };
    const stageName = async (c) => {
      const name = await vc.decryptSafeName(oldKey, dec(c.safe.name_ct, "safe name"), {
        safeId: sid,
        version: c.safe.name_version,
        generation: from,
      });
      return {
        base_version: c.safe.name_version,
        name_ct: enc(await vc.encryptSafeName(newKey, name, { safeId: sid, version: c.safe.name_version, generation: to })),
      };
    };

    // The name and every member's sealed key first, then the records.
    await api.post(stagePath, { safe_name: await stageName(contents), members: await sealMembers(members) });
    const stageAll = async (kind, list, make) => {
      const total = list.length;
      for (let i = 0; i < total; i += STAGE_BATCH) {
        const batch = await Promise.all(list.slice(i, i + STAGE_BATCH).map(make));
        await api.post(stagePath, { [kind]: batch });
        progress(`Re-encrypting ${kind}`, Math.min(i + STAGE_BATCH, total), total);
        await yieldToBrowser();
      }
    };
    await stageAll("folders", contents.folders, restage.folder);
    await stageAll("files", contents.files, restage.file);
    await stageAll("items", contents.items, restage.item);

    for (let attempt = 1; ; attempt++) {
      progress("Committing", 0, 0);
      try {
        const json = await api.post(`${base}/rotations/${encodeURIComponent(rot.id)}/commit`);
        safe.update(json);
        safe.keys.set(to, await vc.importSafeKey(newRaw));
        return to;
      } catch (e) {
        if (!(e instanceof ApiError) || e.code !== "rotation_incomplete" || attempt >= MAX_COMMITS) throw e;
      }
      // Edited or added meanwhile: re-stage those from what they are now.
      contents = await api.get(`${base}/contents`);
      const status = await api.get(`${base}/rotations/${encodeURIComponent(rot.id)}`);
      const want = (kind) => new Set([...(status.missing[kind] || []), ...(status.stale[kind] || [])]);
      const items = want("items");
      const folders = want("folders");
      const files = want("files");
      const body = {};
      if (status.missing.safe_name.length || status.stale.safe_name.length) body.safe_name = await stageName(contents);
      const missingMembers = new Set(status.missing.members);
      const current = (await api.get(`${base}/members`)).members;
      if (missingMembers.size) body.members = await sealMembers(current.filter((m) => missingMembers.has(m.user_id)));
      await api.post(stagePath, body);
      await stageAll("folders", contents.folders.filter((f) => folders.has(f.id)), restage.folder);
      await stageAll("files", contents.files.filter((f) => files.has(f.id)), restage.file);
      await stageAll("items", contents.items.filter((i) => items.has(i.id)), restage.item);
    }
  } finally {
    oldRaw.fill(0);
    newRaw.fill(0);
  }
}

// Moving an item (with its kept versions and files) to another safe, client
// side (docs/vault.md 8.4); the same as vault_api/crypto/moves.py. Each record
// is opened in the source safe's context and sealed for the target's:
//
//     item, history   (A, item, folder_A, version, schema, g_A) -> (B, item, folder_B, version, schema, g_B)
//     file key K_f    (A, file, g_A) -> (B, file, g_B)
//     file body       untouched: its chunks name the file id only
//
// Versions stay. Nothing that does not open in A is re-encrypted: the record's
// own error is thrown instead (item_invalid, file_key_invalid).

import { MalformedCiphertext } from "./errors.js";
import { b64uDecode, ID_BYTES } from "./encoding.js";
import { decryptItem, encryptItem } from "./records.js";
import { unwrapFileKey, wrapFileKey } from "./files.js";

/**
 * K_f wrapped for safe A re-wrapped for safe B. `fromKey`/`toKey`: Ks of A at
 * `fromGeneration` and of B at `toGeneration` (CryptoKeys or raw bytes).
 * K_f exists only as an extractable CryptoKey inside this call. `nonce`: vectors only.
 */
export async function rewrapFileKey(
  fromKey,
  toKey,
  wrapped,
  { fileId, fromSafeId, fromGeneration, toSafeId, toGeneration, nonce },
) {
  const fileKey = await unwrapFileKey(fromKey, wrapped, {
    safeId: fromSafeId,
    fileId,
    generation: fromGeneration,
    extractable: true,
  });
  return wrapFileKey(toKey, fileKey, { safeId: toSafeId, fileId, generation: toGeneration, nonce });
}

/**
 * item: {itemId, folderId, version, generation, schema, ct} of safe A, opened
 * with `fromKey` and sealed with `toKey` for B at the same version and schema.
 * Resolves with {content, ct}. `nonce`: vectors only.
 */
export async function reencryptItem(
  fromKey,
  toKey,
  { item, fromSafeId, toSafeId, toFolderId, toGeneration, nonce },
) {
  const content = await decryptItem(fromKey, item.ct, {
    safeId: fromSafeId,
    itemId: item.itemId,
    folderId: item.folderId,
    version: item.version,
    generation: item.generation,
    schema: item.schema,
  });
  const ct = await encryptItem(toKey, content, {
    safeId: toSafeId,
    itemId: item.itemId,
    folderId: toFolderId,
    version: item.version,
    generation: toGeneration,
    schema: item.schema,
    nonce,
  });
  return { content, ct };
}

/** The file ids (base64url text) an item's `files` list names, each once; entries without a valid id are skipped. */
export function listedFileIds(content) {
  const out = [];
  for (const entry of Array.isArray(content?.files) ? content.files : []) {
    const ref = entry?.id;
    if (typeof ref !== "string" || out.includes(ref)) continue;
    try {
      b64uDecode(ref, { field: "file id", length: ID_BYTES });
    } catch (e) {
      if (e instanceof MalformedCiphertext) continue;
      throw e;
    }
    out.push(ref);
  }
  return out;
}

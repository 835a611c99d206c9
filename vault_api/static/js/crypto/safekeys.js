// Safe keys: Ks per safe and key generation, sealed to each member with HPKE
// (docs/vault.md 6), and the chain that links each generation to the one before.
//
//     info     = transcript("authnet-vault/v1 safe key", safe_id, member_user_id, u32(g))
//     sealed   = enc (32) || ct (48) = HPKE SealBase(pkR, info, aad = "", pt = Ks_g)   (80 bytes)
//     previous = box(Ks_g, Ks_(g-1), transcript("authnet-vault/v1 previous key",
//                                               safe_id, u32(g-1), u32(g)))          (60 bytes)
//
// HPKE comes from authnet's hpke.js (served by the network's gateway, like
// authnet.js); install it once with useHpke(module) before sealing or opening.
// A safe key is kept as a non-extractable AES-GCM CryptoKey; its raw bytes
// exist only while an admin seals it to members (openSafeKey with raw: true),
// and callers zero them afterwards.

import { MalformedCiphertext, PreviousKeyInvalid, SafeKeyInvalid } from "./errors.js";
import {
  KEY_BYTES,
  LABELS,
  OVERHEAD,
  SAFE_KEY_USAGES,
  aesKey,
  unwrapBox,
  wrapAsBox,
} from "./aead.js";
import { asBytes, checkId, randomBytes, short, transcript, u32 } from "./encoding.js";
import { PUBLIC_KEY_BYTES } from "./userkeys.js";

export const SAFE_KEY_BYTES = KEY_BYTES;
export const ENC_BYTES = 32;
export const SEALED_BYTES = ENC_BYTES + SAFE_KEY_BYTES + 16;
export const PREVIOUS_KEY_BYTES = OVERHEAD + SAFE_KEY_BYTES;

let hpke = null;

/** Install the HPKE module (authnet's hpke.js, which has sealBase and openBase). */
export function useHpke(module) {
  if (!module || typeof module.sealBase !== "function" || typeof module.openBase !== "function") {
    throw new TypeError("useHpke needs authnet's hpke.js (sealBase and openBase)");
  }
  hpke = module;
}

function needHpke() {
  if (hpke === null) {
    throw new Error("vaultcrypto: call useHpke(await import(gateway + '/v1/hpke.js')) first");
  }
  return hpke;
}

/** 32 random bytes: a new safe key. The caller zeroes them once sealed and imported. */
export function newSafeKey() {
  return randomBytes(SAFE_KEY_BYTES);
}

/** Raw safe-key bytes as an AES-256-GCM CryptoKey (non-extractable unless asked). */
export async function importSafeKey(raw, { extractable = false } = {}) {
  const bytes = asBytes(raw, "safe key");
  if (bytes.length !== SAFE_KEY_BYTES) throw new TypeError(`a safe key is ${SAFE_KEY_BYTES} bytes`);
  const usages = [...SAFE_KEY_USAGES];
  return crypto.subtle.importKey("raw", bytes, { name: "AES-GCM" }, extractable, usages);
}

export function safeKeyInfo({ safeId, userId, generation }) {
  checkId(safeId, "safe id");
  checkId(userId, "user id");
  return transcript(LABELS.safeKey, safeId, userId, u32(generation, "key generation"));
}

/**
 * Ks (raw bytes) sealed to a member's raw X25519 public key: 80 bytes.
 * `ikmE` (test vectors only) fixes the ephemeral key.
 */
export async function sealSafeKey(safeKey, publicKey, { safeId, userId, generation, ikmE } = {}) {
  const h = needHpke();
  const ks = asBytes(safeKey, "safe key");
  if (ks.length !== SAFE_KEY_BYTES) throw new TypeError(`a safe key is ${SAFE_KEY_BYTES} bytes`);
  checkId(publicKey, "public key", PUBLIC_KEY_BYTES);
  const info = safeKeyInfo({ safeId, userId, generation });
  let sealed;
  try {
    sealed = await h.sealBase({ pkR: publicKey, info, pt: ks, ikmE });
  } catch (e) {
    if (e?.name === "EncapError") {
      throw new MalformedCiphertext("the member's public key is not a usable X25519 key");
    }
    throw e;
  }
  const out = new Uint8Array(SEALED_BYTES);
  out.set(sealed.enc, 0);
  out.set(sealed.ct, ENC_BYTES);
  return out;
}

/**
 * Ks from a member's sealed key. `recipient` is {privateKey: X25519 CryptoKey,
 * publicKey: raw 32 bytes}. Returns a non-extractable AES-GCM CryptoKey, or
 * with `raw: true` the 32 bytes (for sealing to others; zero them after).
 * SafeKeyInvalid if it does not open.
 */
export async function openSafeKey(
  sealed,
  recipient,
  { safeId, userId, generation, raw = false, extractable = false } = {},
) {
  const h = needHpke();
  const info = safeKeyInfo({ safeId, userId, generation });
  const box = asBytes(sealed, "sealed safe key");
  if (box.length !== SEALED_BYTES) {
    throw new MalformedCiphertext(`a sealed safe key is ${SEALED_BYTES} bytes, got ${box.length}`);
  }
  let key = null;
  try {
    key = await h.openBase({
      enc: box.subarray(0, ENC_BYTES),
      recipient,
      info,
      ct: box.subarray(ENC_BYTES),
    });
  } catch (e) {
    if (e?.name !== "OpenError" && e?.name !== "DecapError") throw e;
  }
  if (key === null || key.length !== SAFE_KEY_BYTES) {
    throw new SafeKeyInvalid(
      `the safe key of safe ${short(safeId)} (key generation ${generation}) sealed to user ` +
        `${short(userId)} does not open with this user's private key: it was modified, or ` +
        "sealed for another safe, member or generation",
    );
  }
  if (raw) return key;
  try {
    return await importSafeKey(key, { extractable });
  } finally {
    key.fill(0);
  }
}

export function previousKeyAad({ safeId, oldGeneration, newGeneration }) {
  checkId(safeId, "safe id");
  if (newGeneration !== oldGeneration + 1) {
    throw new RangeError("the previous key links consecutive generations");
  }
  return transcript(
    LABELS.previousKey,
    safeId,
    u32(oldGeneration, "old generation"),
    u32(newGeneration, "new generation"),
  );
}

/**
 * Ks of `oldGeneration` boxed under the key of the next one. `oldKey`: raw
 * bytes or an extractable AES-GCM CryptoKey. `nonce`: test vectors only.
 */
export async function wrapPreviousKey(newKey, oldKey, { safeId, oldGeneration, nonce } = {}) {
  const aad = previousKeyAad({ safeId, oldGeneration, newGeneration: oldGeneration + 1 });
  const old =
    oldKey instanceof CryptoKey ? oldKey : await importSafeKey(oldKey, { extractable: true });
  return wrapAsBox("raw", old, await aesKey(newKey, "new safe key"), aad, { nonce });
}

/**
 * Ks of generation newGeneration - 1, from the link stored with newGeneration,
 * as a non-extractable AES-GCM CryptoKey (the old key never exists as bytes).
 */
export async function unwrapPreviousKey(
  newKey,
  previous,
  { safeId, newGeneration, extractable = false } = {},
) {
  const aad = previousKeyAad({ safeId, oldGeneration: newGeneration - 1, newGeneration });
  const box = asBytes(previous, "previous key");
  if (box.length !== PREVIOUS_KEY_BYTES) {
    throw new MalformedCiphertext(
      `a previous-key link is ${PREVIOUS_KEY_BYTES} bytes, got ${box.length}`,
    );
  }
  const key = await unwrapBox(
    "raw",
    box,
    await aesKey(newKey, "safe key"),
    aad,
    { name: "AES-GCM" },
    extractable,
    [...SAFE_KEY_USAGES],
    "the previous key",
  );
  if (key === null) {
    throw new PreviousKeyInvalid(
      `the key of generation ${newGeneration - 1} of safe ${short(safeId)} does not open under ` +
        `generation ${newGeneration}: the link was modified or belongs to another safe or ` +
        "generation",
    );
  }
  return key;
}

/**
 * Every generation's key reachable from the current one: a Map generation ->
 * CryptoKey. `links` maps generation g to the previous-key box stored with g
 * (a Map or an object), as GET /api/safes/{id}/keys lists them.
 */
export async function keyChain(currentKey, { safeId, currentGeneration, links }) {
  const get = (g) => (links instanceof Map ? links.get(g) : links[g]);
  const keys = new Map([[currentGeneration, await aesKey(currentKey, "safe key")]]);
  let key = keys.get(currentGeneration);
  let generation = currentGeneration;
  while (generation > 1 && get(generation)) {
    key = await unwrapPreviousKey(key, get(generation), { safeId, newGeneration: generation });
    generation -= 1;
    keys.set(generation, key);
  }
  return keys;
}

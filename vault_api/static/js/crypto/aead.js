// The one place the vault's page calls AES-256-GCM: the box format, and the
// labels of docs/vault.md section 4.
//
//     box = nonce (12 random bytes) || ciphertext || tag (16 bytes)
//
// WebCrypto's AES-GCM returns `ciphertext || tag` for {iv: nonce,
// additionalData: aad}, and wrapKey/unwrapKey with the same parameters make
// the same bytes for a raw or PKCS#8 key, so keys can be boxed without ever
// existing as bytes in the page. Every nonce is fresh from crypto.getRandomValues.

import { MalformedCiphertext } from "./errors.js";
import { asBytes, randomBytes } from "./encoding.js";

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;
export const OVERHEAD = NONCE_BYTES + TAG_BYTES;

export const LABELS = Object.freeze({
  slotKek: "authnet-vault/v1 slot kek",
  slot: "authnet-vault/v1 slot",
  safeKey: "authnet-vault/v1 safe key",
  previousKey: "authnet-vault/v1 previous key",
  safeName: "authnet-vault/v1 safe name",
  folder: "authnet-vault/v1 folder",
  item: "authnet-vault/v1 item",
  fileKey: "authnet-vault/v1 file key",
  fileChunk: "authnet-vault/v1 file chunk",
  fileChunkV2: "authnet-vault/v2 file chunk",
  fingerprint: "authnet-vault/v1 public key fingerprint",
});

/** The usages of a safe key: it encrypts records and wraps file keys and older safe keys. */
export const SAFE_KEY_USAGES = Object.freeze(["encrypt", "decrypt", "wrapKey", "unwrapKey"]);

/**
 * An AES-256-GCM CryptoKey: `key` itself when it is one, else 32 raw bytes
 * imported non-extractable (tests and the test vectors pass raw keys).
 */
export async function aesKey(key, what = "key", usages = SAFE_KEY_USAGES) {
  if (key instanceof CryptoKey) {
    if (key.algorithm.name !== "AES-GCM" || key.algorithm.length !== 256) {
      throw new TypeError(`${what} must be an AES-256-GCM key`);
    }
    return key;
  }
  const raw = asBytes(key, what);
  if (raw.length !== KEY_BYTES) throw new TypeError(`${what} must be ${KEY_BYTES} bytes`);
  return crypto.subtle.importKey("raw", raw, { name: "AES-GCM" }, false, [...usages]);
}

/** A fresh 96-bit nonce, or the one given (test vectors only; validated). */
export function nonceFor(nonce) {
  if (nonce === undefined) return randomBytes(NONCE_BYTES);
  const n = asBytes(nonce, "nonce");
  if (n.length !== NONCE_BYTES) throw new TypeError(`a nonce is ${NONCE_BYTES} bytes`);
  return n;
}

export function gcm(nonce, aad) {
  return { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 };
}

/**
 * A box of `plaintext` under `key` with a fresh random nonce. `nonce` is for
 * test vectors only: a nonce used twice under one key breaks AES-GCM.
 */
export async function seal(key, plaintext, aad, { nonce } = {}) {
  const k = await aesKey(key);
  const n = nonceFor(nonce);
  const ct = new Uint8Array(await crypto.subtle.encrypt(gcm(n, aad), k, asBytes(plaintext)));
  const out = new Uint8Array(NONCE_BYTES + ct.length);
  out.set(n, 0);
  out.set(ct, NONCE_BYTES);
  return out;
}

/** The plaintext of a box, or null when the tag does not verify. */
export async function openBox(key, box, aad, what) {
  const k = await aesKey(key);
  const b = asBytes(box, what);
  if (b.length < OVERHEAD) {
    throw new MalformedCiphertext(`${what} is ${b.length} bytes, shorter than any ciphertext`);
  }
  try {
    const pt = await crypto.subtle.decrypt(
      gcm(b.subarray(0, NONCE_BYTES), aad),
      k,
      b.subarray(NONCE_BYTES),
    );
    return new Uint8Array(pt);
  } catch (e) {
    if (e?.name === "OperationError") return null;
    throw e;
  }
}

/** wrapKey(format, key) under `wrappingKey` as a box (random nonce unless given). */
export async function wrapAsBox(format, key, wrappingKey, aad, { nonce } = {}) {
  const n = nonceFor(nonce);
  const ct = new Uint8Array(await crypto.subtle.wrapKey(format, key, wrappingKey, gcm(n, aad)));
  const out = new Uint8Array(NONCE_BYTES + ct.length);
  out.set(n, 0);
  out.set(ct, NONCE_BYTES);
  return out;
}

/**
 * unwrapKey from a box: the CryptoKey, or null when the tag does not verify.
 * A box that opens to bytes the format cannot import throws MalformedCiphertext.
 */
export async function unwrapBox(
  format,
  box,
  wrappingKey,
  aad,
  algorithm,
  extractable,
  usages,
  what,
) {
  try {
    return await crypto.subtle.unwrapKey(
      format,
      box.subarray(NONCE_BYTES),
      wrappingKey,
      gcm(box.subarray(0, NONCE_BYTES), aad),
      algorithm,
      extractable,
      usages,
    );
  } catch (e) {
    if (e?.name === "OperationError") return null;
    if (e?.name === "DataError") {
      throw new MalformedCiphertext(`${what} opened, but does not hold a key of the right kind`);
    }
    throw e;
  }
}

// The user's key pair and its key slots, one per token (docs/vault.md 5).
//
//     KEK  = HKDF-SHA256(IKM = Kc, salt = "", info = "authnet-vault/v1 slot kek")
//     aad  = transcript("authnet-vault/v1 slot", user_id, key_id, u32(keypair_version), pkU)
//     slot = box(KEK, PKCS#8(skU) (48 bytes), aad)                               (76 bytes)
//
// In the page the private key never exists as bytes: it is made extractable
// only to be wrapped into its first slot (and unwrapped extractable only to
// add a slot), and is otherwise a non-extractable X25519 CryptoKey unwrapped
// straight from its slot with unwrapKey("pkcs8", ...).

import { KeyMismatch, MalformedCiphertext, SlotInvalid } from "./errors.js";
import { LABELS, OVERHEAD, aesKey, unwrapBox, wrapAsBox } from "./aead.js";
import {
  KEY_ID_BYTES,
  asBytes,
  checkId,
  equalBytes,
  short,
  transcript,
  u32,
  utf8,
} from "./encoding.js";

export const PUBLIC_KEY_BYTES = 32;
export const PKCS8_BYTES = 48;
export const SLOT_BYTES = OVERHEAD + PKCS8_BYTES;
export const FINGERPRINT_BYTES = 16;
export const KEK_USAGES = Object.freeze(["wrapKey", "unwrapKey"]);

const X25519 = { name: "X25519" };
const BASE_POINT = new Uint8Array(32);
BASE_POINT[0] = 9; // RFC 7748 section 4.1: u = 9

/**
 * A new key pair: {privateKey, publicKey}. The private key is extractable so
 * that makeSlot can wrap it into the first slot; open that slot (openSlot) to
 * get the non-extractable key the page keeps, and drop this one.
 */
export async function generateKeyPair() {
  const pair = await crypto.subtle.generateKey(X25519, true, ["deriveBits"]);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { privateKey: pair.privateKey, publicKey };
}

/** The raw public key of an X25519 private CryptoKey (extractable or not): X25519(sk, 9). */
export async function publicKeyBytes(privateKey) {
  const base = await crypto.subtle.importKey("raw", BASE_POINT, X25519, true, []);
  const bits = await crypto.subtle.deriveBits({ name: "X25519", public: base }, privateKey, 256);
  return new Uint8Array(bits);
}

/**
 * The key-encryption key of this token's slot, an AES-256-GCM CryptoKey
 * (non-extractable) with usages wrapKey and unwrapKey. `kc` is a ClientKey
 * (authnet.js), an HKDF CryptoKey, or 32 raw bytes (tests).
 */
export async function slotKek(kc) {
  const algorithm = { name: "AES-GCM", length: 256 };
  if (kc && typeof kc.deriveKey === "function" && !(kc instanceof CryptoKey)) {
    return kc.deriveKey(LABELS.slotKek, algorithm, [...KEK_USAGES]);
  }
  let ikm = kc;
  if (!(kc instanceof CryptoKey)) {
    const raw = asBytes(kc, "Kc");
    if (raw.length !== 32) throw new TypeError("Kc must be 32 bytes");
    ikm = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveKey"]);
  }
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: utf8(LABELS.slotKek) },
    ikm,
    algorithm,
    false,
    [...KEK_USAGES],
  );
}

export function slotAad({ userId, keyId, keypairVersion, publicKey }) {
  checkId(userId, "user id");
  checkId(keyId, "key id", KEY_ID_BYTES);
  checkId(publicKey, "public key", PUBLIC_KEY_BYTES);
  return transcript(LABELS.slot, userId, keyId, u32(keypairVersion, "key pair version"), publicKey);
}

async function kekOf(kc) {
  // A KEK may be passed directly (an AES-GCM CryptoKey), else it is derived from Kc.
  if (kc instanceof CryptoKey && kc.algorithm.name === "AES-GCM") return kc;
  return slotKek(kc);
}

/**
 * Wrap the (extractable) private key under the KEK of the token whose Kc
 * this is. `nonce` is for test vectors only.
 */
export async function makeSlot(kc, privateKey, { userId, keyId, keypairVersion = 1, nonce } = {}) {
  if (!(privateKey instanceof CryptoKey) || privateKey.algorithm.name !== "X25519") {
    throw new TypeError("the private key must be an X25519 CryptoKey");
  }
  if (!privateKey.extractable) {
    throw new TypeError(
      "a slot wraps an extractable private key (openSlot with extractable: true)",
    );
  }
  const publicKey = await publicKeyBytes(privateKey);
  const aad = slotAad({ userId, keyId, keypairVersion, publicKey });
  const slot = await wrapAsBox("pkcs8", privateKey, await kekOf(kc), aad, { nonce });
  if (slot.length !== SLOT_BYTES) throw new Error("unexpected PKCS#8 encoding of an X25519 key");
  return slot;
}

/**
 * The private key in a slot, as an X25519 CryptoKey with usage deriveBits,
 * non-extractable unless `extractable` (only to add a slot). SlotInvalid if
 * this Kc does not open it, KeyMismatch if it opens to a key other than the
 * account's public key.
 */
export async function openSlot(
  kc,
  slot,
  { userId, keyId, keypairVersion, publicKey, extractable = false } = {},
) {
  const aad = slotAad({ userId, keyId, keypairVersion, publicKey });
  const box = asBytes(slot, "key slot");
  if (box.length !== SLOT_BYTES) {
    throw new MalformedCiphertext(`a key slot is ${SLOT_BYTES} bytes, got ${box.length}`);
  }
  const privateKey = await unwrapBox(
    "pkcs8",
    box,
    await kekOf(kc),
    aad,
    X25519,
    extractable,
    ["deriveBits"],
    "the key slot",
  );
  if (privateKey === null) {
    throw new SlotInvalid(
      `the key slot of key id ${short(keyId)} for user ${short(userId)} does not open with ` +
        "this token's client key: it belongs to another token or account, it was modified, or " +
        "the client key was substituted (log in again; do not make a new key)",
    );
  }
  if (!equalBytes(await publicKeyBytes(privateKey), publicKey)) {
    throw new KeyMismatch(
      `the key slot of key id ${short(keyId)} holds a private key that does not match ` +
        `user ${short(userId)}'s public key`,
    );
  }
  return privateKey;
}

/**
 * What two people compare before sharing: 128 bits of
 * SHA-256(transcript(label, user_id, public_key)) as 4 groups of 8 hex digits.
 */
export async function fingerprint({ userId, publicKey }) {
  checkId(userId, "user id");
  checkId(publicKey, "public key", PUBLIC_KEY_BYTES);
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", transcript(LABELS.fingerprint, userId, publicKey)),
  );
  let hex = "";
  for (const b of digest.subarray(0, FINGERPRINT_BYTES)) hex += b.toString(16).padStart(2, "0");
  return hex.match(/.{8}/g).join("-");
}

// For callers that hold a raw KEK (test vectors): the AES-GCM key with KEK usages.
export async function importKek(raw) {
  return aesKey(raw, "KEK", KEK_USAGES);
}

// Hardened factors in the page: the vault passphrase, its history, the
// recovery slot and success keys (docs/vault.md 5.4-5.6), byte for byte what
// vault_api/crypto/factors.py and success.py make and open.
//
//     x  = slowHash(secret, {purpose, userId, params})            PBKDF2-HMAC-SHA256 (WebCrypto)
//     y  = the hardener's POPRF output (oprf.js, blinded in this page)
//     F  = hardenedKey(y, {purpose, userId, params})             HKDF-SHA256
//     T  = openTokenSlot(kc, slot, ...)                            the token factor
//     sk = openPassphraseWrap(await passphraseKek(T, F), wrap, ...)
//
// The private key is unwrapped straight into an X25519 CryptoKey (extractable
// only when it must be wrapped again: a new passphrase, a recovery slot).
// T, F and y are bytes in the page for as long as one operation takes.

import { ed25519 } from "../vendor/noble-curves-2.4.0/ed25519.js";
import { successMessage } from "./oprf.js";
import {
  KeyMismatch,
  MalformedCiphertext,
  PassphraseInvalid,
  RecoveryInvalid,
  SlotInvalid,
  SuccessKeyInvalid,
} from "./errors.js";
import { OVERHEAD, openBox, seal, unwrapBox, wrapAsBox } from "./aead.js";
import {
  KEY_ID_BYTES,
  asBytes,
  b64uEncode,
  checkId,
  equalBytes,
  randomBytes,
  short,
  transcript,
  u32,
  utf8,
} from "./encoding.js";
import { PKCS8_BYTES, PUBLIC_KEY_BYTES, publicKeyBytes } from "./userkeys.js";

export const FACTOR_LABELS = Object.freeze({
  tokenFactorKek: "authnet-vault/v1 token factor kek",
  passphraseKek: "authnet-vault/v1 passphrase kek",
  factorHash: "authnet-vault/v1 factor hash",
  hardenedKey: "authnet-vault/v1 hardened key",
  tokenFactor: "authnet-vault/v1 token factor",
  passphraseWrap: "authnet-vault/v1 passphrase wrap",
  recoverySlot: "authnet-vault/v1 recovery slot",
  successKey: "authnet-vault/v1 success key",
});

export const SALT_BYTES = 16;
export const FACTOR_BYTES = 32;
export const TOKEN_SLOT_BYTES = OVERHEAD + FACTOR_BYTES;
export const WRAP_BYTES = OVERHEAD + PKCS8_BYTES;
export const SEALED_SUCCESS_BYTES = 32 + 32 + 16;
export const MIN_SECRET_CHARS = 8;
const PURPOSES = ["passphrase", "recovery"];
const X25519 = { name: "X25519" };
const CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_SYMBOLS = 25;

function purposeOf(purpose) {
  if (!PURPOSES.includes(purpose)) throw new TypeError(`purpose must be one of ${PURPOSES}`);
  return purpose;
}

/** The hardener's user id of this secret: "<user id base64url>:<purpose>". */
export function hardenerUserId(userId, purpose) {
  checkId(userId, "user id");
  return `${b64uEncode(userId)}:${purposeOf(purpose)}`;
}

/** A record's public parameters: {recordId, salt, iterations, keyVersion, hardenerPublicKey}. */
export function newParams({ iterations, keyVersion, hardenerPublicKey }) {
  return checkParams({
    recordId: randomBytes(16),
    salt: randomBytes(SALT_BYTES),
    iterations,
    keyVersion,
    hardenerPublicKey,
  });
}

export function checkParams(p) {
  checkId(p.recordId, "record id");
  checkId(p.salt, "salt", SALT_BYTES);
  checkId(p.hardenerPublicKey, "hardener public key", 32);
  if (!Number.isInteger(p.iterations) || p.iterations < 1000 || p.iterations > 10_000_000) {
    throw new TypeError("iterations must be 1000..10000000");
  }
  u32(p.keyVersion, "hardener key version");
  return p;
}

function paramFields(p) {
  return [p.recordId, p.salt, u32(p.iterations), u32(p.keyVersion), p.hardenerPublicKey];
}

/** NFC UTF-8 of a secret (an empty one is refused). */
export function normalizeSecret(secret) {
  const text = String(secret).normalize("NFC");
  if (!text) throw new TypeError("the passphrase is empty");
  const raw = utf8(text);
  if (raw.length > 1024) throw new TypeError("a passphrase has at most 1024 bytes");
  return raw;
}

/** What a new passphrase (or recovery passphrase) must be. */
export function checkNewSecret(secret) {
  if ([...String(secret).normalize("NFC")].length < MIN_SECRET_CHARS) {
    throw new TypeError(`a passphrase has at least ${MIN_SECRET_CHARS} characters`);
  }
  normalizeSecret(secret);
}

/** x: PBKDF2-HMAC-SHA256 of the secret (32 bytes). */
export async function slowHash(secret, { purpose, userId, params }) {
  const salt = transcript(FACTOR_LABELS.factorHash, utf8(purposeOf(purpose)), userId, params.salt);
  const key = await crypto.subtle.importKey("raw", normalizeSecret(secret), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations: params.iterations },
    key,
    256,
  );
  return new Uint8Array(bits);
}

/** F: the 32-byte key from the hardener's 64-byte output y. */
export async function hardenedKey(y, { purpose, userId, params }) {
  const raw = asBytes(y, "hardened value");
  if (raw.length !== 64) throw new TypeError("the hardened value is 64 bytes");
  checkId(userId, "user id");
  const info = transcript(FACTOR_LABELS.hardenedKey, utf8(purposeOf(purpose)), userId, params.recordId);
  const ikm = await crypto.subtle.importKey("raw", raw, "HKDF", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: params.salt, info }, ikm, 256);
  return new Uint8Array(bits);
}

// --- the token factor ------------------------------------------------------------------

export function tokenFactorAad({ userId, keyId, keypairVersion, publicKey }) {
  checkId(userId, "user id");
  checkId(keyId, "key id", KEY_ID_BYTES);
  checkId(publicKey, "public key", PUBLIC_KEY_BYTES);
  return transcript(FACTOR_LABELS.tokenFactor, userId, keyId, u32(keypairVersion, "key pair version"), publicKey);
}

/** KEK_t from Kc (a ClientKey, an HKDF CryptoKey, or 32 raw bytes in tests). */
async function tokenKek(kc) {
  const algorithm = { name: "AES-GCM", length: 256 };
  if (kc && typeof kc.deriveKey === "function" && !(kc instanceof CryptoKey)) {
    return kc.deriveKey(FACTOR_LABELS.tokenFactorKek, algorithm, ["encrypt", "decrypt"]);
  }
  let ikm = kc;
  if (!(kc instanceof CryptoKey)) {
    ikm = await crypto.subtle.importKey("raw", asBytes(kc, "Kc"), "HKDF", false, ["deriveKey"]);
  }
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: utf8(FACTOR_LABELS.tokenFactorKek) },
    ikm,
    algorithm,
    false,
    ["encrypt", "decrypt"],
  );
}

export function newTokenFactor() {
  return randomBytes(FACTOR_BYTES);
}

export async function makeTokenSlot(kc, tokenFactor, ctx) {
  return seal(await tokenKek(kc), asBytes(tokenFactor, "token factor"), tokenFactorAad(ctx));
}

/** T from a kc+passphrase slot; SlotInvalid if this Kc does not open it. */
export async function openTokenSlot(kc, slot, ctx) {
  const box = asBytes(slot, "token-factor slot");
  if (box.length !== TOKEN_SLOT_BYTES) {
    throw new MalformedCiphertext(`a token-factor slot is ${TOKEN_SLOT_BYTES} bytes, got ${box.length}`);
  }
  const t = await openBox(await tokenKek(kc), box, tokenFactorAad(ctx), "token-factor slot");
  if (t === null) {
    throw new SlotInvalid(
      `the token-factor slot of key id ${short(ctx.keyId)} for user ${short(ctx.userId)} does not ` +
        "open with this token's client key: it belongs to another token or account, or it was modified",
    );
  }
  return t;
}

// --- the passphrase wrap and the recovery slot ---------------------------------------------

/** KEK_p = HKDF(IKM = T, salt = F, info = label): AES-256-GCM for wrapKey/unwrapKey. */
export async function passphraseKek(tokenFactor, factorKey) {
  const ikm = await crypto.subtle.importKey("raw", asBytes(tokenFactor, "token factor"), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: asBytes(factorKey, "hardened key"), info: utf8(FACTOR_LABELS.passphraseKek) },
    ikm,
    { name: "AES-GCM", length: 256 },
    false,
    ["wrapKey", "unwrapKey"],
  );
}

/** F as the recovery slot's AES-256-GCM key. */
export async function recoveryKek(factorKey) {
  return crypto.subtle.importKey("raw", asBytes(factorKey, "hardened key"), { name: "AES-GCM" }, false, [
    "wrapKey",
    "unwrapKey",
  ]);
}

export function passphraseWrapAad({ userId, keypairVersion, publicKey, params }) {
  checkId(userId, "user id");
  checkId(publicKey, "public key", PUBLIC_KEY_BYTES);
  return transcript(
    FACTOR_LABELS.passphraseWrap,
    userId,
    u32(keypairVersion, "key pair version"),
    publicKey,
    ...paramFields(params),
  );
}

export function recoverySlotAad({ userId, keypairVersion, publicKey, kind, params }) {
  checkId(userId, "user id");
  checkId(publicKey, "public key", PUBLIC_KEY_BYTES);
  if (kind !== "passphrase" && kind !== "code") throw new TypeError("a recovery slot's kind is passphrase or code");
  return transcript(
    FACTOR_LABELS.recoverySlot,
    userId,
    u32(keypairVersion, "key pair version"),
    publicKey,
    utf8(kind),
    ...paramFields(params),
  );
}

async function wrapPrivate(kek, privateKey, aad) {
  if (!(privateKey instanceof CryptoKey) || !privateKey.extractable) {
    throw new TypeError("wrapping needs the private key unwrapped extractable");
  }
  return wrapAsBox("pkcs8", privateKey, kek, aad);
}

async function unwrapPrivate(kek, box, aad, publicKey, extractable, what, Err, message) {
  const b = asBytes(box, what);
  if (b.length !== WRAP_BYTES) throw new MalformedCiphertext(`${what} is ${WRAP_BYTES} bytes, got ${b.length}`);
  const sk = await unwrapBox("pkcs8", b, kek, aad, X25519, extractable, ["deriveBits"], what);
  if (sk === null) throw new Err(message);
  if (!equalBytes(await publicKeyBytes(sk), publicKey)) {
    throw new KeyMismatch(`the ${what} holds a private key that is not the account's`);
  }
  return sk;
}

export async function makePassphraseWrap(kek, privateKey, { userId, keypairVersion, params }) {
  const publicKey = await publicKeyBytes(privateKey);
  return wrapPrivate(kek, privateKey, passphraseWrapAad({ userId, keypairVersion, publicKey, params }));
}

export async function openPassphraseWrap(kek, wrap, { userId, keypairVersion, publicKey, params, extractable = false }) {
  return unwrapPrivate(
    kek,
    wrap,
    passphraseWrapAad({ userId, keypairVersion, publicKey, params }),
    publicKey,
    extractable,
    "passphrase wrap",
    PassphraseInvalid,
    `the passphrase wrap ${short(params.recordId)} of user ${short(userId)} does not open: the ` +
      "passphrase is wrong (or the wrap was modified or its parameters changed)",
  );
}

export async function makeRecoverySlot(kek, privateKey, { userId, keypairVersion, kind, params }) {
  const publicKey = await publicKeyBytes(privateKey);
  return wrapPrivate(kek, privateKey, recoverySlotAad({ userId, keypairVersion, publicKey, kind, params }));
}

export async function openRecoverySlot(kek, slot, { userId, keypairVersion, publicKey, kind, params, extractable = false }) {
  return unwrapPrivate(
    kek,
    slot,
    recoverySlotAad({ userId, keypairVersion, publicKey, kind, params }),
    publicKey,
    extractable,
    "recovery slot",
    RecoveryInvalid,
    `the recovery slot of user ${short(userId)} does not open: the recovery ` +
      `${kind === "code" ? "code" : "passphrase"} is wrong (or the slot was modified)`,
  );
}

// --- success keys --------------------------------------------------------------------------

export function successKeyInfo({ userId, purpose }) {
  checkId(userId, "user id");
  return transcript(FACTOR_LABELS.successKey, userId, utf8(purposeOf(purpose)));
}

/** A new success key: its 32-byte Ed25519 seed and raw public key. */
export function newSuccessKey() {
  const seed = randomBytes(32);
  return { seed, publicKey: ed25519.getPublicKey(seed) };
}

/** The seed sealed to the user's own public key (HPKE base mode; hpke is authnet's hpke.js). */
export async function sealSuccessKey(hpke, seed, publicKey, { userId, purpose }) {
  const { enc, ct } = await hpke.sealBase({ pkR: publicKey, info: successKeyInfo({ userId, purpose }), pt: seed });
  const out = new Uint8Array(enc.length + ct.length);
  out.set(enc, 0);
  out.set(ct, enc.length);
  return out;
}

export async function openSuccessKey(hpke, sealed, recipient, { userId, purpose }) {
  const box = asBytes(sealed, "sealed success key");
  if (box.length !== SEALED_SUCCESS_BYTES) {
    throw new MalformedCiphertext(`a sealed success key is ${SEALED_SUCCESS_BYTES} bytes, got ${box.length}`);
  }
  let seed = null;
  try {
    seed = await hpke.openBase({
      enc: box.subarray(0, 32),
      recipient,
      info: successKeyInfo({ userId, purpose }),
      ct: box.subarray(32),
    });
  } catch (e) {
    if (e?.name !== "OpenError" && e?.name !== "DecapError") throw e;
  }
  if (seed === null || seed.length !== 32) {
    throw new SuccessKeyInvalid(
      `the ${purpose} success key of user ${short(userId)} does not open with this user's private key`,
    );
  }
  return seed;
}

/** The ReportSuccess signature (Ed25519 over success_message) for one attempt. */
export function signSuccess(seed, { caller, userId, attemptId, nonce }) {
  return ed25519.sign(successMessage(caller, userId, attemptId, nonce), seed);
}

// --- recovery codes --------------------------------------------------------------------------

/** 25 random Crockford base32 symbols (125 bits) as five groups of five. */
export function newRecoveryCode() {
  const out = [];
  const bytes = randomBytes(CODE_SYMBOLS);
  for (const b of bytes) out.push(CODE_ALPHABET[b & 31]);
  const raw = out.join("");
  return raw.match(/.{5}/g).join("-");
}

/** The canonical form of a typed code (case, spaces, hyphens, O/I/L look-alikes forgiven). */
export function normalizeCode(code) {
  const text = String(code)
    .toUpperCase()
    .replace(/[ -]/g, "")
    .replace(/O/g, "0")
    .replace(/[IL]/g, "1");
  if (text.length !== CODE_SYMBOLS || [...text].some((c) => !CODE_ALPHABET.includes(c))) {
    throw new TypeError(
      `a recovery code is ${CODE_SYMBOLS} symbols of 0-9 and A-Z without I, L, O, U (hyphens and spaces are ignored)`,
    );
  }
  return text.match(/.{5}/g).join("-");
}


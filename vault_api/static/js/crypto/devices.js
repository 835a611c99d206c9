// Registered devices, the passphrase bypass and one-time links in the page
// (docs/devices.md 1-4 and 7), byte for byte what vault_api/crypto/devices.py
// makes and opens.
//
//     fingerprint = hex(SHA-256(transcript(FINGERPRINT, user_id, device_id, dpk, spk))[0:10]) in 5 groups of 4
//     proof       = Ed25519(sk_d, transcript(REGISTRATION, user_id, device_id, dpk, spk))
//                   Ed25519(sk_d, transcript(LOGIN, user_id, device_id, device_nonce))
//     KEK_b       = HKDF-SHA256(IKM = T, salt = DKEK, info = BYPASS_KEK)
//     device_wrap = box(KEK_b, PKCS#8(skU), transcript(WRAP, user_id, device_id, u32(v), pkU))   (76 bytes)
//     sealed_kek  = HPKE SealBase(dpk, info = transcript(KEK, user_id, device_id, dpk), pt = DKEK) (80 bytes)
//     link blob   = "ovl1" || link_id || box(K, pad(item JSON), transcript(LINK, link_id))
//
// The device's two private keys are WebCrypto CryptoKeys made non-extractable
// (X25519 for HPKE, Ed25519 for the proofs): the page keeps them in IndexedDB
// (js/devices.js), never as bytes. HPKE is authnet's hpke.js, passed in (as
// for the success keys in factors.js). `nonce`, `ikmE` and the raw-key
// imports exist for tests/vectors/vault-devices.json only.

import {
  DeviceKekInvalid,
  DeviceProofInvalid,
  DeviceWrapInvalid,
  KeyMismatch,
  LinkInvalid,
  MalformedCiphertext,
} from "./errors.js";
import { OVERHEAD, openBox, seal, unwrapBox, wrapAsBox } from "./aead.js";
import { asBytes, checkId, concat, equalBytes, fromHex, randomBytes, short, toHex, transcript, u32, utf8 } from "./encoding.js";
import { pad } from "./records.js";
import { PKCS8_BYTES, PUBLIC_KEY_BYTES, publicKeyBytes } from "./userkeys.js";

export const DEVICE_LABELS = Object.freeze({
  bypassKek: "authnet-vault/v1 device bypass kek",
  wrap: "authnet-vault/v1 device wrap",
  kek: "authnet-vault/v1 device kek",
  registration: "authnet-vault/v1 device registration",
  login: "authnet-vault/v1 device login",
  fingerprint: "authnet-vault/v1 device fingerprint",
  link: "authnet-vault/v1 one-time link",
  prfSalt: "authnet-vault/v1 device prf salt",
  prfX25519: "authnet-vault/v1 device prf x25519",
  prfEd25519: "authnet-vault/v1 device prf ed25519",
});

export const PRF_BYTES = 32;

export const DKEK_BYTES = 32;
export const DEVICE_WRAP_BYTES = OVERHEAD + PKCS8_BYTES; // 76
export const SEALED_KEK_BYTES = 32 + DKEK_BYTES + 16; // 80
export const SIGNATURE_BYTES = 64;
export const DEVICE_FINGERPRINT_BYTES = 10;
export const NONCE_BYTES = 32;
export const LINK_MAGIC = utf8("ovl1");
export const LINK_KEY_BYTES = 32;
export const LINK_ID_BYTES = 16;

const X25519 = { name: "X25519" };
const ED25519 = { name: "Ed25519" };
const X25519_PKCS8 = fromHex("302e020100300506032b656e04220420");
const ED25519_PKCS8 = fromHex("302e020100300506032b657004220420");

// --- the device's keys ---------------------------------------------------------------

/**
 * A new device: {deviceId, deviceKey, signingKey, publicKey, signingPublicKey}.
 * deviceKey and signingKey are CryptoKeyPairs whose private halves are
 * non-extractable; the public halves are also given raw (32 bytes each).
 */
export async function newDevice({ deviceId = randomBytes(16) } = {}) {
  checkId(deviceId, "device id");
  const deviceKey = await crypto.subtle.generateKey(X25519, false, ["deriveBits"]);
  const signingKey = await crypto.subtle.generateKey(ED25519, false, ["sign", "verify"]);
  return deviceFrom(deviceId, deviceKey, signingKey);
}

async function deviceFrom(deviceId, deviceKey, signingKey) {
  return {
    deviceId,
    deviceKey,
    signingKey,
    publicKey: new Uint8Array(await crypto.subtle.exportKey("raw", deviceKey.publicKey)),
    signingPublicKey: new Uint8Array(await crypto.subtle.exportKey("raw", signingKey.publicKey)),
  };
}

/** A device from raw private keys (the test vectors; the CLI's device file format). */
export async function deviceFromBytes(deviceId, devicePrivate, signingPrivate) {
  checkId(deviceId, "device id");
  const dk = asBytes(devicePrivate, "device private key");
  const sk = asBytes(signingPrivate, "signing private key");
  if (dk.length !== 32 || sk.length !== 32) {
    throw new MalformedCiphertext("a device's private keys are 32 raw bytes each");
  }
  return importDevice(deviceId, dk, sk);
}

/**
 * The two raw private keys imported through PKCS#8 as non-extractable
 * CryptoKeys (the PKCS#8 copies are zeroed after); the Ed25519 public key
 * comes from the private key's JWK (x), read once from an extractable import.
 */
async function importDevice(deviceId, dk, sk) {
  const xDer = concat(X25519_PKCS8, dk);
  const eDer = concat(ED25519_PKCS8, sk);
  try {
    const x = await crypto.subtle.importKey("pkcs8", xDer, X25519, false, ["deriveBits"]);
    const xPublic = await crypto.subtle.importKey("raw", await publicKeyBytes(x), X25519, true, []);
    const once = await crypto.subtle.importKey("pkcs8", eDer, ED25519, true, ["sign"]);
    const { x: spk } = await crypto.subtle.exportKey("jwk", once);
    const ePublic = await crypto.subtle.importKey("jwk", { kty: "OKP", crv: "Ed25519", x: spk }, ED25519, true, ["verify"]);
    const ePrivate = await crypto.subtle.importKey("pkcs8", eDer, ED25519, false, ["sign"]);
    return await deviceFrom(deviceId, { privateKey: x, publicKey: xPublic }, { privateKey: ePrivate, publicKey: ePublic });
  } finally {
    xDer.fill(0);
    eDer.fill(0);
  }
}

// --- a device kept in a platform authenticator (WebAuthn PRF, docs/devices.md 1) -------------

/** The PRF input (eval.first) of a PRF device: SHA-256(transcript(PRF_SALT, user_id, device_id)). */
export async function prfSalt({ userId, deviceId }) {
  checkId(userId, "user id");
  checkId(deviceId, "device id");
  return new Uint8Array(await crypto.subtle.digest("SHA-256", transcript(DEVICE_LABELS.prfSalt, userId, deviceId)));
}

async function prfDerive(ikm, label) {
  return new Uint8Array(
    await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: utf8(label) }, ikm, 256),
  );
}

/**
 * A device's two keys from the 32-byte PRF output of its WebAuthn credential
 * (HKDF-SHA256, salt empty, info = the PRF labels), imported non-extractable
 * through PKCS#8; every byte array of the private keys is zeroed after import.
 * Same shape as newDevice's result; nothing of it is meant to be stored.
 */
export async function deviceFromPrf(deviceId, prfOutput) {
  checkId(deviceId, "device id");
  const prf = asBytes(prfOutput, "PRF output");
  if (prf.length !== PRF_BYTES) {
    throw new MalformedCiphertext(`a WebAuthn PRF output is ${PRF_BYTES} bytes, got ${prf.length}`);
  }
  const ikm = await crypto.subtle.importKey("raw", prf, "HKDF", false, ["deriveBits"]);
  const dk = await prfDerive(ikm, DEVICE_LABELS.prfX25519);
  const sk = await prfDerive(ikm, DEVICE_LABELS.prfEd25519);
  try {
    return await importDevice(deviceId, dk, sk);
  } finally {
    dk.fill(0);
    sk.fill(0);
  }
}

function checkPublic(publicKey, signingKey) {
  checkId(publicKey, "device public key", PUBLIC_KEY_BYTES);
  checkId(signingKey, "device signing key", 32);
}

/** Five groups of four hex digits (80 bits): what both screens show at an approval. */
export async function deviceFingerprint({ userId, deviceId, publicKey, signingKey }) {
  checkId(userId, "user id");
  checkId(deviceId, "device id");
  checkPublic(publicKey, signingKey);
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", transcript(DEVICE_LABELS.fingerprint, userId, deviceId, publicKey, signingKey)),
  );
  return toHex(digest.subarray(0, DEVICE_FINGERPRINT_BYTES)).match(/.{4}/g).join("-");
}

export function registrationMessage({ userId, deviceId, publicKey, signingKey }) {
  checkId(userId, "user id");
  checkId(deviceId, "device id");
  checkPublic(publicKey, signingKey);
  return transcript(DEVICE_LABELS.registration, userId, deviceId, publicKey, signingKey);
}

export function loginMessage({ userId, deviceId, nonce }) {
  checkId(userId, "user id");
  checkId(deviceId, "device id");
  checkId(nonce, "device nonce", NONCE_BYTES);
  return transcript(DEVICE_LABELS.login, userId, deviceId, nonce);
}

async function sign(device, message) {
  return new Uint8Array(await crypto.subtle.sign(ED25519, device.signingKey.privateKey, message));
}

export function registrationProof(device, { userId }) {
  return sign(
    device,
    registrationMessage({ userId, deviceId: device.deviceId, publicKey: device.publicKey, signingKey: device.signingPublicKey }),
  );
}

export function loginProof(device, { userId, nonce }) {
  return sign(device, loginMessage({ userId, deviceId: device.deviceId, nonce }));
}

/** Check a device's proof (another device's registration, before approving it). */
export async function verifyProof(signingKey, proof, message, { deviceId }) {
  const p = asBytes(proof, "device proof");
  if (p.length !== SIGNATURE_BYTES) {
    throw new DeviceProofInvalid(`a device proof is ${SIGNATURE_BYTES} bytes, got ${p.length}`);
  }
  let ok = false;
  try {
    const key = await crypto.subtle.importKey("raw", asBytes(signingKey, "signing key"), ED25519, false, ["verify"]);
    ok = await crypto.subtle.verify(ED25519, key, p, message);
  } catch (e) {
    if (e?.name !== "DataError" && e?.name !== "OperationError") throw e;
  }
  if (!ok) {
    throw new DeviceProofInvalid(`the proof of device ${short(deviceId)} does not verify with its signing key`);
  }
}

// --- the bypass wraps ------------------------------------------------------------------

export function newDkek() {
  return randomBytes(DKEK_BYTES);
}

function hkdfParams(dkek) {
  return { name: "HKDF", hash: "SHA-256", salt: asBytes(dkek, "device key-encryption key"), info: utf8(DEVICE_LABELS.bypassKek) };
}

async function tokenFactorKey(tokenFactor) {
  const t = asBytes(tokenFactor, "token factor");
  if (t.length !== 32) throw new TypeError("the token factor is 32 bytes");
  return crypto.subtle.importKey("raw", t, "HKDF", false, ["deriveKey", "deriveBits"]);
}

/** KEK_b as a non-extractable AES-256-GCM key (wrapKey, unwrapKey): needs T and DKEK. */
export async function bypassKek(tokenFactor, dkek) {
  if (asBytes(dkek, "device key-encryption key").length !== DKEK_BYTES) throw new TypeError("DKEK is 32 bytes");
  return crypto.subtle.deriveKey(hkdfParams(dkek), await tokenFactorKey(tokenFactor), { name: "AES-GCM", length: 256 }, false, [
    "wrapKey",
    "unwrapKey",
  ]);
}

/** KEK_b's bytes (test vectors only). */
export async function bypassKekBytes(tokenFactor, dkek) {
  return new Uint8Array(await crypto.subtle.deriveBits(hkdfParams(dkek), await tokenFactorKey(tokenFactor), 256));
}

export function deviceWrapAad({ userId, deviceId, keypairVersion, publicKey }) {
  checkId(userId, "user id");
  checkId(deviceId, "device id");
  checkId(publicKey, "public key", PUBLIC_KEY_BYTES);
  return transcript(DEVICE_LABELS.wrap, userId, deviceId, u32(keypairVersion, "key pair version"), publicKey);
}

/** The account's private key (unwrapped extractable for this call) under KEK_b. `kek`: from bypassKek. */
export async function makeDeviceWrap(kek, privateKey, { userId, deviceId, keypairVersion, nonce }) {
  if (!(privateKey instanceof CryptoKey) || !privateKey.extractable) {
    throw new TypeError("a device wrap needs the private key unwrapped extractable");
  }
  const aad = deviceWrapAad({ userId, deviceId, keypairVersion, publicKey: await publicKeyBytes(privateKey) });
  return wrapAsBox("pkcs8", privateKey, kek, aad, { nonce });
}

/**
 * The account's private key from a device wrap, as an X25519 CryptoKey
 * (non-extractable unless asked). DeviceWrapInvalid if KEK_b does not open it,
 * KeyMismatch if it holds another key than pkU.
 */
export async function openDeviceWrap(kek, wrap, { userId, deviceId, keypairVersion, publicKey, extractable = false }) {
  const aad = deviceWrapAad({ userId, deviceId, keypairVersion, publicKey });
  const box = asBytes(wrap, "device wrap");
  if (box.length !== DEVICE_WRAP_BYTES) {
    throw new MalformedCiphertext(`a device wrap is ${DEVICE_WRAP_BYTES} bytes, got ${box.length}`);
  }
  const sk = await unwrapBox("pkcs8", box, kek, aad, X25519, extractable, ["deriveBits"], "the device wrap");
  if (sk === null) {
    throw new DeviceWrapInvalid(
      `the device wrap of device ${short(deviceId)} for user ${short(userId)} does not open: it was ` +
        "modified, made for another device, account or key pair version, or this token's factor is " +
        "not the one it was made with",
    );
  }
  if (!equalBytes(await publicKeyBytes(sk), publicKey)) {
    throw new KeyMismatch("the device wrap holds a private key that is not the account's");
  }
  return sk;
}

export function deviceKekInfo({ userId, deviceId, publicKey }) {
  checkId(userId, "user id");
  checkId(deviceId, "device id");
  checkId(publicKey, "device public key", PUBLIC_KEY_BYTES);
  return transcript(DEVICE_LABELS.kek, userId, deviceId, publicKey);
}

/** DKEK sealed to a device's raw public key (HPKE base mode): 80 bytes. */
export async function sealDkek(hpke, dkek, { userId, deviceId, publicKey, ikmE }) {
  const pt = asBytes(dkek, "device key-encryption key");
  if (pt.length !== DKEK_BYTES) throw new TypeError("DKEK is 32 bytes");
  let sealed;
  try {
    sealed = await hpke.sealBase({ pkR: publicKey, info: deviceKekInfo({ userId, deviceId, publicKey }), pt, ikmE });
  } catch (e) {
    if (e?.name === "EncapError") throw new MalformedCiphertext("the device public key is not a usable X25519 key");
    throw e;
  }
  return concat(sealed.enc, sealed.ct);
}

/** DKEK from a sealed KEK with this device's key pair; DeviceKekInvalid if it does not open. */
export async function openDkek(hpke, sealed, device, { userId }) {
  const box = asBytes(sealed, "sealed device key-encryption key");
  if (box.length !== SEALED_KEK_BYTES) {
    throw new MalformedCiphertext(`a sealed device key-encryption key is ${SEALED_KEK_BYTES} bytes, got ${box.length}`);
  }
  let dkek = null;
  try {
    dkek = await hpke.openBase({
      enc: box.subarray(0, 32),
      recipient: device.deviceKey,
      info: deviceKekInfo({ userId, deviceId: device.deviceId, publicKey: device.publicKey }),
      ct: box.subarray(32),
    });
  } catch (e) {
    if (e?.name !== "OpenError" && e?.name !== "DecapError") throw e;
  }
  if (dkek === null || dkek.length !== DKEK_BYTES) {
    throw new DeviceKekInvalid(
      `the key-encryption key sealed to device ${short(device.deviceId)} does not open with this ` +
        "device's key: it was modified, or sealed to another device or account",
    );
  }
  return dkek;
}

// --- one-time links ----------------------------------------------------------------------

export function linkAad(linkId) {
  checkId(linkId, "link id");
  return transcript(DEVICE_LABELS.link, linkId);
}

/** {blob, key}: the blob goes to the proxy, K only into the link's fragment. */
export async function sealLink(plaintext, { key = randomBytes(LINK_KEY_BYTES), linkId = randomBytes(LINK_ID_BYTES), nonce } = {}) {
  const k = asBytes(key, "link key");
  if (k.length !== LINK_KEY_BYTES) throw new TypeError(`a link key is ${LINK_KEY_BYTES} bytes`);
  const box = await seal(k, pad(asBytes(plaintext, "link plaintext")), linkAad(linkId), { nonce });
  return { blob: concat(LINK_MAGIC, linkId, box), key: k };
}

/** The padded plaintext of a one-time link's blob; LinkInvalid if K does not open it. */
export async function openLink(blob, key) {
  const b = asBytes(blob, "link blob");
  const k = asBytes(key, "link key");
  if (k.length !== LINK_KEY_BYTES) throw new LinkInvalid("the link's key has the wrong length: the link is damaged");
  const head = LINK_MAGIC.length + LINK_ID_BYTES;
  if (b.length < head + OVERHEAD || !equalBytes(b.subarray(0, LINK_MAGIC.length), LINK_MAGIC)) {
    throw new MalformedCiphertext("this is not a one-time link's blob");
  }
  const linkId = b.subarray(LINK_MAGIC.length, head);
  const pt = await openBox(k, b.subarray(head), linkAad(linkId), "link");
  if (pt === null) {
    throw new LinkInvalid(
      "the one-time link does not open: the link is damaged (its key or token was changed) or the " +
        "stored blob was modified",
    );
  }
  return pt;
}

/** SHA-256 of bytes (claim hashes, token hashes). */
export async function sha256(data) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", asBytes(data)));
}

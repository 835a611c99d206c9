// The X-Wing suite of the sealed Kc (docs/protocol.md §7, §7.1): KEM
// MLKEM768-X25519 (0x647a, draft-ietf-hpke-pq), HKDF-SHA256, AES-256-GCM.
//
// Encap/Decap come from @noble/post-quantum's `ml_kem768_x25519`, vendored
// unmodified (vendor/README.md); the key schedule and AES-GCM are hpke.js's
// (WebCrypto). noble's files import @noble/curves and @noble/hashes by bare
// specifier, so a page that uses this module maps them (an import map):
//
//   <script type="importmap">{"imports": {
//     "@noble/curves/": "<gateway>/v1/vendor/noble-curves-2.4.0/",
//     "@noble/hashes/": "<gateway>/v1/vendor/noble-hashes-2.4.0/"}}</script>
//
// authnet.js imports this module lazily; without the map the page offers
// X25519 only, as before.
//
// The X-Wing private key is a 32-byte seed in page memory (JavaScript, not a
// non-extractable CryptoKey: WebCrypto has no ML-KEM); it lives for one ticket.

import { ml_kem768_x25519 } from "./vendor/noble-post-quantum-0.7.1/hybrid.js";
import { HpkeError, hpkeSuiteId, setupBaseRFromSecret } from "./hpke.js";

export const KEM_ID = 0x647a;
export const KDF_ID = 0x0001;
export const AEAD_ID = 0x0002; // AES-256-GCM
export const N_ENC = 1120; // ML-KEM-768 ciphertext || X25519 ephemeral key
export const N_PK = 1216; // ML-KEM-768 encapsulation key || X25519 key
export const N_SEED = 32;
const N_K = 32;

/** u16(kem) || u16(kdf) || u16(aead): what the sealed context binds. */
export const SUITE_ID_BYTES = Uint8Array.of(0x64, 0x7a, 0x00, 0x01, 0x00, 0x02);

/** An X-Wing key pair from a 32-byte seed (the draft's private key). */
export function keyPairFromSeed(seed) {
  if (!(seed instanceof Uint8Array) || seed.length !== N_SEED) {
    throw new HpkeError("InvalidInputError", "an X-Wing seed is 32 bytes");
  }
  const { publicKey, secretKey } = ml_kem768_x25519.keygen(seed);
  return { publicKey, secretKey };
}

/** A fresh X-Wing key pair. */
export function generateKeyPair() {
  const seed = crypto.getRandomValues(new Uint8Array(N_SEED));
  try {
    return keyPairFromSeed(seed);
  } finally {
    seed.fill(0);
  }
}

/** Decap(enc, skR): the 32-byte shared secret. */
export function decap(enc, secretKey) {
  if (!(enc instanceof Uint8Array) || enc.length !== N_ENC) {
    throw new HpkeError("InvalidInputError", `an X-Wing enc is ${N_ENC} bytes`);
  }
  return ml_kem768_x25519.decapsulate(enc, secretKey);
}

/** Encap(pkR) -> {sharedSecret, enc} (tests seal with it). */
export function encap(publicKey) {
  const { cipherText, sharedSecret } = ml_kem768_x25519.encapsulate(publicKey);
  return { sharedSecret, enc: cipherText };
}

/** SetupBaseR for a suite with the X-Wing KEM (kdf and aead: ours by default). */
export async function setupBaseR({ enc, secretKey, info, kdfId = KDF_ID, aeadId = AEAD_ID }) {
  const sharedSecret = decap(enc, secretKey);
  try {
    const suiteId = hpkeSuiteId(KEM_ID, kdfId, aeadId);
    return await setupBaseRFromSecret({ sharedSecret, info, suiteId, nk: N_K });
  } finally {
    sharedSecret.fill(0);
  }
}

/** Single-shot open (sequence number 0). */
export async function openBase({ enc, secretKey, info, aad = new Uint8Array(0), ct }) {
  const ctx = await setupBaseR({ enc, secretKey, info });
  return ctx.open(aad, ct);
}

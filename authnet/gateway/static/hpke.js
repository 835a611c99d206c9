// HPKE (RFC 9180), base mode, receiver and sender side, for one suite:
//
//     DHKEM(X25519, HKDF-SHA256)  kem_id  0x0020
//     HKDF-SHA256                 kdf_id  0x0001
//     AES-128-GCM                 aead_id 0x0001
//
// the suite authnet seals the client key Kc with (authnet/protocol/sealing.py).
// WebCrypto only: X25519 for the KEM, HMAC-SHA256 for HKDF-Extract and
// HKDF-Expand (WebCrypto's HKDF does both in one step, and HPKE's labelled
// variants need them apart), AES-GCM for the AEAD.
//
//     const ctx = await setupBaseR({ enc, recipient: keyPair, info });
//     const pt = await ctx.open(aad, ct);      // sequence numbers 0, 1, 2, ...
//     const secret = await ctx.export(exporterContext, 32);
//
// or single-shot: `await openBase({ enc, recipient, info, aad, ct })`.
//
// The sender side (the vault seals safe keys to members' public keys):
//
//     const { enc, ctx } = await setupBaseS({ pkR, info });   // pkR: raw 32 bytes
//     const ct = await ctx.seal(aad, pt);                      // sequence numbers 0, 1, ...
//
// or single-shot: `const { enc, ct } = await sealBase({ pkR, info, aad, pt })`.
// The ephemeral key pair is fresh and random (WebCrypto generateKey) unless
// `ikmE` is given, which derives it with DeriveKeyPair: for test vectors only,
// since a repeated ikmE repeats the key and nonce.
//
// `recipient` is a CryptoKeyPair ({privateKey, publicKey}) of algorithm X25519.
// The public key is needed because the KEM context is enc || pkR, and WebCrypto
// cannot compute it from a (non-extractable) private key. Failures throw
// HpkeError with `name` "DecapError", "EncapError", "OpenError",
// "MessageLimitReachedError", "DeriveKeyPairError" or "InvalidInputError"
// (RFC 9180 section 5.2 names), never a raw DOMException.

const KEM_ID = 0x0020;
const KDF_ID = 0x0001;
const AEAD_ID = 0x0001;
const MODE_BASE = 0x00;

export const N_ENC = 32; // X25519 public key
export const N_PK = 32;
export const N_SECRET = 32;
export const N_H = 32; // SHA-256
export const N_K = 16; // AES-128
export const N_N = 12; // GCM nonce
export const N_T = 16; // GCM tag

const te = new TextEncoder();
const HPKE_V1 = te.encode("HPKE-v1");
const EMPTY = new Uint8Array(0);

export class HpkeError extends Error {
  constructor(name, message) {
    super(message);
    this.name = name;
  }
}

function bytes(value, what) {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  throw new HpkeError("InvalidInputError", `${what} must be bytes (Uint8Array)`);
}

export function concat(...parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** I2OSP(n, w): `n` as `w` big-endian bytes (n a non-negative safe integer). */
export function i2osp(n, w) {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError("i2osp: not a non-negative integer");
  const out = new Uint8Array(w);
  for (let i = w - 1; i >= 0 && n > 0; i--) {
    out[i] = n % 256;
    n = Math.floor(n / 256);
  }
  if (n > 0) throw new RangeError(`i2osp: value does not fit in ${w} bytes`);
  return out;
}

const KEM_SUITE_ID = concat(te.encode("KEM"), i2osp(KEM_ID, 2));
const SUITE_ID = concat(te.encode("HPKE"), i2osp(KEM_ID, 2), i2osp(KDF_ID, 2), i2osp(AEAD_ID, 2));

// --- HKDF-SHA256 from HMAC (RFC 5869) ----------------------------------------

async function hmacKey(key) {
  if (key instanceof CryptoKey) return key;
  // WebCrypto refuses zero-length HMAC keys. HMAC pads its key with zeros to
  // the block size, so an empty salt and Nh zero bytes give the same MAC,
  // which is exactly RFC 5869's default salt.
  const raw = key.length === 0 ? new Uint8Array(N_H) : key;
  return crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
}

async function hmac(key, data) {
  return new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(key), data));
}

/** HKDF-Extract(salt, ikm) -> PRK (32 bytes). */
export async function extract(salt, ikm) {
  return hmac(bytes(salt, "salt"), bytes(ikm, "ikm"));
}

/** HKDF-Expand(prk, info, L). `prk` is bytes or an HMAC-SHA256 CryptoKey. */
export async function expand(prk, info, length) {
  if (!Number.isInteger(length) || length < 0 || length > 255 * N_H) {
    throw new HpkeError("InvalidInputError", "HKDF-Expand: length out of range");
  }
  const key = await hmacKey(prk instanceof CryptoKey ? prk : bytes(prk, "prk"));
  info = bytes(info, "info");
  const out = new Uint8Array(Math.ceil(length / N_H) * N_H);
  let t = EMPTY;
  for (let i = 1; (i - 1) * N_H < length; i++) {
    t = await hmac(key, concat(t, info, Uint8Array.of(i)));
    out.set(t, (i - 1) * N_H);
  }
  t.fill(0);
  const result = out.slice(0, length);
  out.fill(0);
  return result;
}

/** LabeledExtract(salt, label, ikm) under `suiteId` (RFC 9180 section 4). */
export async function labeledExtract(suiteId, salt, label, ikm) {
  return extract(salt, concat(HPKE_V1, suiteId, te.encode(label), bytes(ikm, "ikm")));
}

/** LabeledExpand(prk, label, info, L) under `suiteId` (RFC 9180 section 4). */
export async function labeledExpand(suiteId, prk, label, info, length) {
  const labeled = concat(i2osp(length, 2), HPKE_V1, suiteId, te.encode(label), bytes(info, "info"));
  return expand(prk, labeled, length);
}

// --- DHKEM(X25519, HKDF-SHA256) ----------------------------------------------

async function rawPublicKey(pk) {
  if (pk instanceof CryptoKey) return new Uint8Array(await crypto.subtle.exportKey("raw", pk));
  return bytes(pk, "recipient public key");
}

function checkRecipient(recipient) {
  if (
    !recipient ||
    !(recipient.privateKey instanceof CryptoKey) ||
    recipient.privateKey.algorithm.name !== "X25519" ||
    recipient.privateKey.type !== "private" ||
    !recipient.publicKey
  ) {
    throw new HpkeError(
      "InvalidInputError",
      "recipient must be an X25519 key pair {privateKey, publicKey}",
    );
  }
}

/**
 * Decap(enc, skR): the KEM shared secret (32 bytes). `recipient` is an X25519
 * CryptoKeyPair; its public key may also be given as raw bytes.
 */
export async function decap(enc, recipient) {
  enc = bytes(enc, "enc");
  checkRecipient(recipient);
  if (enc.length !== N_ENC) throw new HpkeError("DecapError", `enc must be ${N_ENC} bytes`);
  const pkRm = await rawPublicKey(recipient.publicKey);
  if (pkRm.length !== N_PK) throw new HpkeError("InvalidInputError", "pkR must be 32 bytes");
  let dh;
  try {
    const pkE = await crypto.subtle.importKey("raw", enc, { name: "X25519" }, true, []);
    // WebCrypto rejects an all-zero X25519 output (a small-order enc), the
    // check RFC 9180 section 7.1.4 asks for.
    dh = new Uint8Array(
      await crypto.subtle.deriveBits({ name: "X25519", public: pkE }, recipient.privateKey, 256),
    );
  } catch {
    throw new HpkeError("DecapError", "enc is not a usable X25519 public key");
  }
  return extractAndExpand(dh, concat(enc, pkRm));
}

// ExtractAndExpand(dh, kem_context); zeroes `dh`.
async function extractAndExpand(dh, kemContext) {
  const eaePrk = await labeledExtract(KEM_SUITE_ID, EMPTY, "eae_prk", dh);
  dh.fill(0);
  const sharedSecret = await labeledExpand(
    KEM_SUITE_ID,
    eaePrk,
    "shared_secret",
    kemContext,
    N_SECRET,
  );
  eaePrk.fill(0);
  return sharedSecret;
}

// PKCS#8 PrivateKeyInfo of an X25519 key (RFC 8410): this prefix, then the 32 bytes.
const X25519_PKCS8_PREFIX = Uint8Array.of(
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
);

/**
 * DeriveKeyPair(ikm) for DHKEM(X25519) (RFC 9180 section 7.1.3): an X25519
 * CryptoKeyPair (private key non-extractable) and the raw public key. The
 * same ikm always gives the same key: use it for test vectors, never twice in
 * real use.
 */
export async function deriveKeyPair(ikm) {
  ikm = bytes(ikm, "ikm");
  if (ikm.length < N_SECRET) {
    throw new HpkeError("DeriveKeyPairError", `ikm must be at least ${N_SECRET} bytes`);
  }
  const dkpPrk = await labeledExtract(KEM_SUITE_ID, EMPTY, "dkp_prk", ikm);
  const sk = await labeledExpand(KEM_SUITE_ID, dkpPrk, "sk", EMPTY, N_SECRET);
  dkpPrk.fill(0);
  const pkcs8 = concat(X25519_PKCS8_PREFIX, sk);
  sk.fill(0);
  try {
    const privateKey = await crypto.subtle.importKey("pkcs8", pkcs8, { name: "X25519" }, false, [
      "deriveBits",
    ]);
    const publicKey = await publicKeyOf(privateKey);
    const publicKeyObject = await crypto.subtle.importKey(
      "raw",
      publicKey,
      { name: "X25519" },
      true,
      [],
    );
    return { keyPair: { privateKey, publicKey: publicKeyObject }, publicKey };
  } catch (e) {
    if (e instanceof HpkeError) throw e;
    throw new HpkeError("DeriveKeyPairError", "the derived key is not a usable X25519 key");
  } finally {
    pkcs8.fill(0);
  }
}

// The X25519 base point (u = 9), RFC 7748 section 4.1.
const X25519_BASE_POINT = new Uint8Array(32);
X25519_BASE_POINT[0] = 9;

/**
 * The raw public key (32 bytes) of an X25519 private CryptoKey, extractable or
 * not: X25519(sk, 9), the scalar times the base point.
 */
export async function publicKeyOf(privateKey) {
  const x25519 = { name: "X25519" };
  const base = await crypto.subtle.importKey("raw", X25519_BASE_POINT, x25519, true, []);
  return new Uint8Array(
    await crypto.subtle.deriveBits({ name: "X25519", public: base }, privateKey, 256),
  );
}

/**
 * Encap(pkR): {sharedSecret, enc}. `pkR` is the recipient's raw public key
 * (32 bytes) or an X25519 public CryptoKey. The ephemeral key pair is random,
 * or derived from `ikmE` (test vectors only).
 */
export async function encap(pkR, { ikmE } = {}) {
  const pkRm = await rawPublicKey(pkR);
  if (pkRm.length !== N_PK) throw new HpkeError("InvalidInputError", "pkR must be 32 bytes");
  let ephemeral;
  if (ikmE !== undefined) {
    ephemeral = await deriveKeyPair(ikmE);
  } else {
    const keyPair = await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
    const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", keyPair.publicKey));
    ephemeral = { keyPair, publicKey };
  }
  let dh;
  try {
    const pkRKey = await crypto.subtle.importKey("raw", pkRm, { name: "X25519" }, true, []);
    // WebCrypto refuses an all-zero X25519 output (a small-order pkR).
    dh = new Uint8Array(
      await crypto.subtle.deriveBits(
        { name: "X25519", public: pkRKey },
        ephemeral.keyPair.privateKey,
        256,
      ),
    );
  } catch {
    throw new HpkeError("EncapError", "pkR is not a usable X25519 public key");
  }
  const enc = ephemeral.publicKey;
  const sharedSecret = await extractAndExpand(dh, concat(enc, pkRm));
  return { sharedSecret, enc };
}

/**
 * KeySchedule for mode_base (no PSK): the raw values RFC 9180 section 5.1
 * derives. Exposed for the test vectors; setupBaseR keeps them in CryptoKeys.
 */
export async function keySchedule(sharedSecret, info, { suiteId = SUITE_ID, nk = N_K } = {}) {
  sharedSecret = bytes(sharedSecret, "shared secret");
  info = bytes(info, "info");
  const pskIdHash = await labeledExtract(suiteId, EMPTY, "psk_id_hash", EMPTY);
  const infoHash = await labeledExtract(suiteId, EMPTY, "info_hash", info);
  const keyScheduleContext = concat(Uint8Array.of(MODE_BASE), pskIdHash, infoHash);
  const secret = await labeledExtract(suiteId, sharedSecret, "secret", EMPTY);
  const key = await labeledExpand(suiteId, secret, "key", keyScheduleContext, nk);
  const baseNonce = await labeledExpand(suiteId, secret, "base_nonce", keyScheduleContext, N_N);
  const exporterSecret = await labeledExpand(suiteId, secret, "exp", keyScheduleContext, N_H);
  return { keyScheduleContext, secret, key, baseNonce, exporterSecret };
}

/**
 * The HPKE suite_id ("HPKE" || kem || kdf || aead), for a suite whose KEM is not
 * this module's (X-Wing, in xwing.js): its key schedule is the same code.
 */
export function hpkeSuiteId(kemId, kdfId, aeadId) {
  return concat(te.encode("HPKE"), i2osp(kemId, 2), i2osp(kdfId, 2), i2osp(aeadId, 2));
}

/**
 * SetupBaseR from a shared secret another KEM decapsulated: the key schedule
 * under `suiteId` with an AES-GCM key of `nk` bytes (16 or 32).
 */
export async function setupBaseRFromSecret({ sharedSecret, info, suiteId, nk }) {
  const ks = await keySchedule(sharedSecret, info, { suiteId, nk });
  try {
    const aesKey = await crypto.subtle.importKey("raw", ks.key, { name: "AES-GCM" }, false, [
      "decrypt",
    ]);
    const exporterKey = await hmacKey(ks.exporterSecret);
    return new RecipientContext(aesKey, ks.baseNonce, exporterKey, suiteId);
  } finally {
    ks.secret.fill(0);
    ks.key.fill(0);
    ks.exporterSecret.fill(0);
  }
}

/** A receiver context: open() in sequence, export() any time. */
export class RecipientContext {
  #key;
  #baseNonce;
  #exporter;
  #suiteId;
  #seq = 0;

  /** Use setupBaseR(); the constructor takes already-imported keys. */
  constructor(aesKey, baseNonce, exporterKey, suiteId = SUITE_ID) {
    this.#key = aesKey;
    this.#baseNonce = baseNonce;
    this.#exporter = exporterKey;
    this.#suiteId = suiteId;
  }

  /**
   * The sequence number the next open() uses. Settable, for replaying published
   * vectors that skip numbers; a receiver cannot be made to reuse a nonce for
   * encryption, so moving it is harmless.
   */
  get seq() {
    return this.#seq;
  }

  set seq(n) {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError("seq must be a non-negative integer");
    }
    this.#seq = n;
  }

  /** ComputeNonce(seq) = base_nonce XOR I2OSP(seq, Nn). */
  #nonce(seq) {
    const s = i2osp(seq, N_N);
    const out = new Uint8Array(N_N);
    for (let i = 0; i < N_N; i++) out[i] = this.#baseNonce[i] ^ s[i];
    return out;
  }

  /** Open(aad, ct): the plaintext, or HpkeError "OpenError". Advances seq on success. */
  async open(aad, ct) {
    aad = bytes(aad, "aad");
    ct = bytes(ct, "ciphertext");
    // Nn = 12 bytes of sequence number never run out before 2^53.
    if (this.#seq >= Number.MAX_SAFE_INTEGER) {
      throw new HpkeError("MessageLimitReachedError", "message limit reached");
    }
    let pt;
    try {
      pt = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: this.#nonce(this.#seq), additionalData: aad, tagLength: 128 },
        this.#key,
        ct,
      );
    } catch {
      throw new HpkeError("OpenError", "the ciphertext does not open under this context");
    }
    this.#seq += 1;
    return new Uint8Array(pt);
  }

  /** Export(exporter_context, L): LabeledExpand(exporter_secret, "sec", context, L). */
  async export(exporterContext, length) {
    const context = bytes(exporterContext, "exporter context");
    return labeledExpand(this.#suiteId, this.#exporter, "sec", context, length);
  }
}

/** A sender context: seal() in sequence, export() any time. */
export class SenderContext {
  #key;
  #baseNonce;
  #exporter;
  #seq = 0;

  /** Use setupBaseS(); the constructor takes already-imported keys. */
  constructor(aesKey, baseNonce, exporterKey) {
    this.#key = aesKey;
    this.#baseNonce = baseNonce;
    this.#exporter = exporterKey;
  }

  /**
   * The sequence number the next seal() uses. It may only move forward (to
   * replay published vectors that skip numbers): moving it back would reuse a
   * nonce under the same key.
   */
  get seq() {
    return this.#seq;
  }

  set seq(n) {
    if (!Number.isSafeInteger(n) || n < this.#seq) {
      throw new RangeError("a sender's seq only moves forward");
    }
    this.#seq = n;
  }

  /** Seal(aad, pt): the ciphertext (pt + 16 bytes). Advances seq. */
  async seal(aad, pt) {
    aad = bytes(aad, "aad");
    pt = bytes(pt, "plaintext");
    if (this.#seq >= Number.MAX_SAFE_INTEGER) {
      throw new HpkeError("MessageLimitReachedError", "message limit reached");
    }
    const s = i2osp(this.#seq, N_N);
    const nonce = new Uint8Array(N_N);
    for (let i = 0; i < N_N; i++) nonce[i] = this.#baseNonce[i] ^ s[i];
    // Taken before the await: two seals in flight never share a nonce.
    this.#seq += 1;
    const ct = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: nonce, additionalData: aad, tagLength: 128 },
      this.#key,
      pt,
    );
    return new Uint8Array(ct);
  }

  /** Export(exporter_context, L): LabeledExpand(exporter_secret, "sec", context, L). */
  async export(exporterContext, length) {
    const context = bytes(exporterContext, "exporter context");
    return labeledExpand(SUITE_ID, this.#exporter, "sec", context, length);
  }
}

/**
 * SetupBaseS(pkR, info) -> {enc, ctx}. `pkR`: the recipient's raw public key
 * (32 bytes) or X25519 public CryptoKey; `ikmE`: for test vectors only.
 */
export async function setupBaseS({ pkR, info, ikmE }) {
  const { sharedSecret, enc } = await encap(pkR, { ikmE });
  const ks = await keySchedule(sharedSecret, info);
  sharedSecret.fill(0);
  try {
    const aesKey = await crypto.subtle.importKey("raw", ks.key, { name: "AES-GCM" }, false, [
      "encrypt",
    ]);
    const exporterKey = await hmacKey(ks.exporterSecret);
    return { enc, ctx: new SenderContext(aesKey, ks.baseNonce, exporterKey) };
  } finally {
    ks.secret.fill(0);
    ks.key.fill(0);
    ks.exporterSecret.fill(0);
  }
}

/** Single-shot seal (sequence number 0): {enc, ct}. */
export async function sealBase({ pkR, info, aad = EMPTY, pt, ikmE }) {
  const { enc, ctx } = await setupBaseS({ pkR, info, ikmE });
  return { enc, ct: await ctx.seal(aad, pt) };
}

/** SetupBaseR(enc, skR, info) -> RecipientContext. */
export async function setupBaseR({ enc, recipient, info }) {
  const sharedSecret = await decap(enc, recipient);
  const ks = await keySchedule(sharedSecret, info);
  sharedSecret.fill(0);
  try {
    const aesKey = await crypto.subtle.importKey("raw", ks.key, { name: "AES-GCM" }, false, [
      "decrypt",
    ]);
    const exporterKey = await hmacKey(ks.exporterSecret);
    return new RecipientContext(aesKey, ks.baseNonce, exporterKey);
  } finally {
    ks.secret.fill(0);
    ks.key.fill(0);
    ks.exporterSecret.fill(0);
  }
}

/** Single-shot open (sequence number 0). */
export async function openBase({ enc, recipient, info, aad = EMPTY, ct }) {
  const ctx = await setupBaseR({ enc, recipient, info });
  return ctx.open(aad, ct);
}

export const SUITE = Object.freeze({ kemId: KEM_ID, kdfId: KDF_ID, aeadId: AEAD_ID });

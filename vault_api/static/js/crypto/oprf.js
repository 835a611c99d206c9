// The hardener's RFC 9497 POPRF (ristretto255-SHA512), client side, in the page.
//
// The group arithmetic and the protocol are @noble/curves' own RFC 9497
// implementation (vendored unmodified under /js/vendor/, see its README); this
// module only fixes the suite, frames the labels byte for byte as
// hardener/labels.py does, and turns noble's errors into the three below.
//
// Exports (the contract with the rest of the page; all bytes are Uint8Array):
//
//   poprfInfo(caller, userId)                  -> info  (hardener/labels.py poprf_info)
//   successMessage(caller, userId, attemptId, nonce)
//                                              -> what the success key signs (success_message)
//   poprfBlind(input, info, publicKey)         -> { blind, blindedElement, tweakedKey }
//       publicKey is the hardener key the page pinned (32 bytes); send only
//       blindedElement; keep blind (secret) and tweakedKey for finalize.
//   poprfFinalize(input, blind, evaluatedElement, blindedElement, proof, info, tweakedKey)
//                                              -> the 64-byte output y
//       throws ProofInvalid when the evaluation is not from the pinned key
//       (or was made for another info, or was tampered with).
//   OprfError (base), InvalidInput, DeserializeError, ProofInvalid: each with a
//   stable `code` ("oprf_invalid_input", "oprf_deserialize", "oprf_proof_invalid").
//
// The same arguments in the same order as hardener.oprf.poprf_blind / poprf_finalize.
//
// Loading: noble's files import "@noble/hashes/..." by bare specifier, which
// index.html's import map resolves to /authnet/v1/vendor/noble-hashes-2.4.0/ (the
// page's CSP allows that one inline script by its hash, vault_api/routes/
// login.py). So this module works in documents that carry that import map:
// the vault page. (A document without it fails to load the module.)

import { ristretto255, ristretto255_oprf } from "../vendor/noble-curves-2.4.0/ed25519.js";

export const SUITE = ristretto255_oprf.name; // "ristretto255-SHA512"
const ELEMENT_BYTES = 32;
const SCALAR_BYTES = 32;
const PROOF_BYTES = 2 * SCALAR_BYTES;
const MAX_FIELD = 0xffff;
const ORDER = ristretto255.Point.Fn.ORDER;
const INFO_LABEL = "hardener/v1 user";
const SUCCESS_LABEL = "hardener/v1 success";

/** Base of what this module refuses. Messages never carry inputs, blinds or outputs. */
export class OprfError extends Error {
  static code = "oprf";

  constructor(message) {
    super(message);
    this.name = new.target.name;
    this.code = new.target.code;
  }
}

/** An input or info over 65535 bytes, or that hashes to the identity. */
export class InvalidInput extends OprfError {
  static code = "oprf_invalid_input";
}

/** Bytes that are not a canonical non-identity ristretto255 element, or a scalar < L. */
export class DeserializeError extends OprfError {
  static code = "oprf_deserialize";
}

/** The proof does not verify against the pinned key: another key, another info, or tampering. */
export class ProofInvalid extends OprfError {
  static code = "oprf_proof_invalid";
}

function bytes(value, what) {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array`);
  return value;
}

function field(value, what) {
  bytes(value, what);
  if (value.length > MAX_FIELD) throw new InvalidInput(`the ${what} is longer than ${MAX_FIELD} bytes`);
  return value;
}

function element(value, what) {
  bytes(value, what);
  if (value.length !== ELEMENT_BYTES) {
    throw new DeserializeError(`the ${what} is ${ELEMENT_BYTES} bytes, not ${value.length}`);
  }
  let point;
  try {
    point = ristretto255.Point.fromBytes(value);
  } catch {
    throw new DeserializeError(`the ${what} is not a canonical ristretto255 element`);
  }
  if (point.is0()) throw new DeserializeError(`the ${what} is the identity element`);
  return value;
}

function scalar(value, what, { nonzero = false } = {}) {
  bytes(value, what);
  if (value.length !== SCALAR_BYTES) {
    throw new DeserializeError(`the ${what} is ${SCALAR_BYTES} bytes, not ${value.length}`);
  }
  let n = 0n;
  for (let i = value.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(value[i]);
  if (n >= ORDER) throw new DeserializeError(`the ${what} is not a canonical scalar (not below L)`);
  if (nonzero && n === 0n) throw new DeserializeError(`the ${what} is zero`);
  return value;
}

function frame(label, ...fields) {
  const enc = new TextEncoder();
  const parts = [enc.encode(label)];
  for (const f of fields) {
    const b = typeof f === "string" ? enc.encode(f) : bytes(f, "label field");
    if (b.length > MAX_FIELD) throw new InvalidInput("a label field is longer than 65535 bytes");
    parts.push(new Uint8Array([b.length >> 8, b.length & 0xff]), b);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The POPRF public input for (caller, userId): "hardener/v1 user" || u16-framed UTF-8 fields. */
export function poprfInfo(caller, userId) {
  return frame(INFO_LABEL, String(caller), String(userId));
}

/** What the user's success key signs (Ed25519) to prove attempt `attemptId` succeeded. */
export function successMessage(caller, userId, attemptId, nonce) {
  return frame(SUCCESS_LABEL, String(caller), String(userId), bytes(attemptId, "attempt id"),
    bytes(nonce, "nonce"));
}

/** The client's first step, against the pinned hardener key `publicKey`. */
export function poprfBlind(input, info, publicKey) {
  field(input, "input");
  field(info, "info");
  element(publicKey, "hardener public key");
  let r;
  try {
    r = ristretto255_oprf.poprf(info).blind(input, publicKey);
  } catch {
    // What is left after the checks above: a tweaked key or input that is the identity.
    throw new InvalidInput("the input or the tweaked key is the identity element");
  }
  return { blind: r.blind, blindedElement: r.blinded, tweakedKey: r.tweakedKey };
}

/** The client's last step: verify the proof against tweakedKey, unblind, hash (64 bytes). */
export function poprfFinalize(input, blind, evaluatedElement, blindedElement, proof, info, tweakedKey) {
  field(input, "input");
  field(info, "info");
  scalar(blind, "blind", { nonzero: true });
  element(evaluatedElement, "evaluated element");
  element(blindedElement, "blinded element");
  element(tweakedKey, "tweaked key");
  bytes(proof, "proof");
  if (proof.length !== PROOF_BYTES) {
    throw new DeserializeError(`the proof is ${PROOF_BYTES} bytes, not ${proof.length}`);
  }
  scalar(proof.subarray(0, SCALAR_BYTES), "proof's challenge");
  scalar(proof.subarray(SCALAR_BYTES), "proof's response");
  try {
    return ristretto255_oprf
      .poprf(info)
      .finalize(input, blind, evaluatedElement, blindedElement, proof, tweakedKey);
  } catch {
    // Every argument is well formed: what fails now is the proof (or a zero
    // scalar in it, which no honest proof has).
    throw new ProofInvalid("the hardener's proof does not verify against the pinned key");
  }
}

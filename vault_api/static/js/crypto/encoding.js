// Bytes at the edges and the transcript encoding (docs/vault.md section 3).
//
// base64url without padding, canonical (one spelling per value, as
// authnet/protocol/encoding.py decodes it); transcript(label, f1, ..., fn) =
// label || 0x00 || (u16be(len fi) || fi)*; big-endian integers u8/u32/u64.

import { MalformedCiphertext } from "./errors.js";

export const ID_BYTES = 16;
export const KEY_ID_BYTES = 16; // authnet's per-SP key id (docs/protocol.md section 10)

const te = new TextEncoder();
const B64U_RE = /^[A-Za-z0-9_-]*$/;
const HAS_NATIVE_B64 =
  typeof Uint8Array.fromBase64 === "function" &&
  typeof Uint8Array.prototype.toBase64 === "function";

/** UTF-8 bytes of a string. */
export function utf8(text) {
  return te.encode(text);
}

/** base64url without padding. */
export function b64uEncode(data) {
  if (!(data instanceof Uint8Array)) throw new TypeError("b64uEncode takes a Uint8Array");
  if (HAS_NATIVE_B64) return data.toBase64({ alphabet: "base64url", omitPadding: true });
  let s = "";
  for (let i = 0; i < data.length; i += 0x8000) {
    s += String.fromCharCode.apply(null, data.subarray(i, i + 0x8000));
  }
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/**
 * Strict unpadded base64url: other alphabets, padding, white space and stray
 * low bits are refused (MalformedCiphertext naming `field`), and so is a
 * value of another `length` when one is given.
 */
export function b64uDecode(text, { field = "value", length } = {}) {
  if (typeof text !== "string" || !B64U_RE.test(text) || text.length % 4 === 1) {
    throw new MalformedCiphertext(`${field} is not base64url`);
  }
  let out;
  if (HAS_NATIVE_B64) {
    const padded = text + "==".slice(0, (4 - (text.length % 4)) % 4);
    try {
      // "strict" refuses stray low bits in the last character.
      out = Uint8Array.fromBase64(padded, { alphabet: "base64url", lastChunkHandling: "strict" });
    } catch {
      throw new MalformedCiphertext(`${field} is not canonical base64url`);
    }
  } else {
    const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
    out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    if (b64uEncode(out) !== text) {
      throw new MalformedCiphertext(`${field} is not canonical base64url`);
    }
  }
  if (length !== undefined && out.length !== length) {
    throw new MalformedCiphertext(`${field} must be ${length} bytes, got ${out.length}`);
  }
  return out;
}

/** Lowercase hex. */
export function toHex(data) {
  let s = "";
  for (const b of data) s += b.toString(16).padStart(2, "0");
  return s;
}

/** Hex (either case) to bytes. */
export function fromHex(text) {
  if (typeof text !== "string" || !/^(?:[0-9a-fA-F]{2})*$/.test(text)) {
    throw new TypeError("not an even-length hex string");
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
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

/** label || 0x00 || (u16 big-endian length || field)*: injective, as docs/protocol.md section 3. */
export function transcript(label, ...fields) {
  const l = typeof label === "string" ? te.encode(label) : label;
  if (!(l instanceof Uint8Array) || l.includes(0)) {
    throw new TypeError("a transcript label is a string or bytes without NUL");
  }
  let n = l.length + 1;
  for (const f of fields) {
    if (!(f instanceof Uint8Array)) throw new TypeError("transcript fields must be Uint8Array");
    if (f.length > 0xffff) throw new RangeError("transcript field longer than 65535 bytes");
    n += 2 + f.length;
  }
  const out = new Uint8Array(n);
  out.set(l, 0);
  let at = l.length + 1;
  for (const f of fields) {
    out[at] = f.length >> 8;
    out[at + 1] = f.length & 0xff;
    out.set(f, at + 2);
    at += 2 + f.length;
  }
  return out;
}

function uint(n, width, what) {
  const max = width >= 7 ? Number.MAX_SAFE_INTEGER : 2 ** (8 * width) - 1;
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw new RangeError(`${what} must be an integer that fits in ${8 * width} bits`);
  }
  const out = new Uint8Array(width);
  for (let i = width - 1; i >= 0 && n > 0; i--) {
    out[i] = n % 256;
    n = Math.floor(n / 256);
  }
  return out;
}

export const u8 = (n, what = "value") => uint(n, 1, what);
export const u32 = (n, what = "value") => uint(n, 4, what);
export const u64 = (n, what = "value") => uint(n, 8, what);

/** `n` random bytes from the CSPRNG. */
export function randomBytes(n) {
  return crypto.getRandomValues(new Uint8Array(n));
}

/** A new 128-bit record id (safes, folders, items, files: the client makes them). */
export function newId() {
  return randomBytes(ID_BYTES);
}

/** Throw unless `value` is `size` bytes (a programming error, as Python's ValueError). */
export function checkId(value, what, size = ID_BYTES) {
  if (!(value instanceof Uint8Array) || value.length !== size) {
    throw new TypeError(`${what} must be ${size} bytes (Uint8Array)`);
  }
  return value;
}

/** The first 8 base64url characters of an id, for messages. */
export function short(id) {
  return b64uEncode(id).slice(0, 8);
}

/** Equality of two byte strings in time that depends only on their lengths. */
export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

/** Any binary view as a Uint8Array over the same memory. */
export function asBytes(value, what = "value") {
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  throw new TypeError(`${what} must be bytes (Uint8Array)`);
}

// Files (docs/vault.md 8): a key per file, wrapped under Ks; the body in
// authenticated chunks, whose size and label the body's format fixes
// (format 1: 64 KiB, "authnet-vault/v1 file chunk"; format 2: 1 MiB,
// "authnet-vault/v2 file chunk").
//
//     wrapped = box(Ks, K_f, transcript("authnet-vault/v1 file key", safe_id, file_id, u32(g)))
//     chunk i = box(K_f, P_i, transcript(label, file_id, u64(i), u8(last)))
//     body    = chunk 0 || ... || chunk n-1        n = max(1, ceil(size / chunk_bytes))
//
// The server records no version: it follows from size and body size, and a
// file of at most 64 KiB is format 1 either way (formatFor).
//
// Both directions stream: encryptFile yields one chunk box at a time from any
// (async) iterable of byte pieces, and FileDecryptor takes the body in pieces
// of any size, releasing plaintext chunk by chunk as each verifies. A file
// counts as read only when finish() has verified its last chunk.

import { FileChunkInvalid, FileKeyInvalid, FileTruncated, MalformedCiphertext } from "./errors.js";
import {
  KEY_BYTES,
  LABELS,
  NONCE_BYTES,
  OVERHEAD,
  aesKey,
  openBox,
  seal,
  unwrapBox,
  wrapAsBox,
} from "./aead.js";
import { asBytes, checkId, concat, short, transcript, u32, u64, u8 } from "./encoding.js";

export const FILE_KEY_BYTES = KEY_BYTES;
export const WRAPPED_KEY_BYTES = OVERHEAD + FILE_KEY_BYTES;
const FILE_KEY_USAGES = ["encrypt", "decrypt"];

function fileFormat(version, chunkBytes, label) {
  return Object.freeze({ version, chunkBytes, boxBytes: chunkBytes + OVERHEAD, label });
}

export const V1 = fileFormat(1, 64 * 1024, LABELS.fileChunk);
export const V2 = fileFormat(2, 1024 * 1024, LABELS.fileChunkV2);
export const FORMATS = Object.freeze([V1, V2]);
export const CURRENT = V2;
// Format 1's sizes, under the names older callers use.
export const CHUNK_BYTES = V1.chunkBytes;
export const CHUNK_BOX_BYTES = V1.boxBytes;

/**
 * The format a new file of `size` bytes is written in when its writer asks
 * for `chunkBytes`: that format's, except that a one-chunk file stays format 1.
 */
export function formatFor(size, chunkBytes = V1.chunkBytes) {
  const fmt = FORMATS.find((f) => f.chunkBytes === chunkBytes);
  if (!fmt) throw new RangeError(`no file format has ${chunkBytes}-byte chunks`);
  return size <= V1.chunkBytes ? V1 : fmt;
}

/**
 * A new file key: an AES-256-GCM CryptoKey, extractable so that wrapFileKey
 * can wrap it under Ks (the page drops it after the upload).
 */
export async function newFileKey() {
  return crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, FILE_KEY_USAGES);
}

export function chunkCount(size, fmt = V1) {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError("a file size is a non-negative integer");
  }
  return Math.max(1, Math.ceil(size / fmt.chunkBytes));
}

/** Bytes of the encrypted body of a `size`-byte file. */
export function ciphertextSize(size, fmt = V1) {
  return size + OVERHEAD * chunkCount(size, fmt);
}

/** The plaintext size of a body of `bodySize` bytes (RangeError if no size fits). */
export function plaintextSize(bodySize, fmt = V1) {
  const full = Math.floor(bodySize / fmt.boxBytes);
  const rest = bodySize % fmt.boxBytes;
  if (rest === 0 && full > 0) return full * fmt.chunkBytes;
  if (rest < OVERHEAD) throw new RangeError("no file encrypts to this many bytes");
  return full * fmt.chunkBytes + rest - OVERHEAD;
}

// --- the file key ----------------------------------------------------------------

export function fileKeyAad({ safeId, fileId, generation }) {
  checkId(safeId, "safe id");
  checkId(fileId, "file id");
  return transcript(LABELS.fileKey, safeId, fileId, u32(generation, "key generation"));
}

/** K_f (an extractable CryptoKey, or 32 raw bytes) boxed under Ks. `nonce`: vectors only. */
export async function wrapFileKey(ks, fileKey, { safeId, fileId, generation, nonce }) {
  const aad = fileKeyAad({ safeId, fileId, generation });
  if (fileKey instanceof CryptoKey) {
    return wrapAsBox("raw", fileKey, await aesKey(ks, "safe key"), aad, { nonce });
  }
  const raw = asBytes(fileKey, "file key");
  if (raw.length !== FILE_KEY_BYTES) throw new TypeError(`a file key is ${FILE_KEY_BYTES} bytes`);
  return seal(ks, raw, aad, { nonce });
}

/** K_f as a CryptoKey (non-extractable unless asked: only to re-wrap it in a rotation). */
export async function unwrapFileKey(
  ks,
  wrapped,
  { safeId, fileId, generation, extractable = false },
) {
  const aad = fileKeyAad({ safeId, fileId, generation });
  const box = asBytes(wrapped, "wrapped file key");
  if (box.length !== WRAPPED_KEY_BYTES) {
    throw new MalformedCiphertext(
      `a wrapped file key is ${WRAPPED_KEY_BYTES} bytes, got ${box.length}`,
    );
  }
  const key = await unwrapBox(
    "raw",
    box,
    await aesKey(ks, "safe key"),
    aad,
    { name: "AES-GCM" },
    extractable,
    FILE_KEY_USAGES,
    "the wrapped file key",
  );
  if (key === null) {
    throw new FileKeyInvalid(
      `the key of file ${short(fileId)} in safe ${short(safeId)} (key generation ${generation}) ` +
        "does not open: it was modified, or wrapped for another file, safe or key generation",
    );
  }
  return key;
}

// --- chunks ----------------------------------------------------------------------

export function chunkAad({ fileId, index, last, fmt = V1 }) {
  checkId(fileId, "file id");
  return transcript(fmt.label, fileId, u64(index, "chunk index"), u8(last ? 1 : 0));
}

export async function encryptChunk(fileKey, chunk, { fileId, index, last, nonce, fmt = V1 }) {
  const data = asBytes(chunk, "chunk");
  if (data.length > fmt.chunkBytes || (!last && data.length !== fmt.chunkBytes)) {
    throw new RangeError("every chunk but the last holds exactly the format's chunk size");
  }
  return seal(fileKey, data, chunkAad({ fileId, index, last, fmt }), { nonce });
}

/**
 * Chunk `index` of a file of `size` bytes, sealed as its two parts [nonce,
 * ciphertext || tag] (a Blob takes them without joining them). Calls stand
 * alone, so several can be in flight at once.
 */
export async function sealChunkParts(key, plaintext, { fileId, index, size, fmt }) {
  const n = chunkCount(size, fmt);
  const want = Math.min(fmt.chunkBytes, size - index * fmt.chunkBytes);
  if (!(index >= 0 && index < n) || plaintext.length !== want) {
    throw new RangeError(`chunk ${index} of a ${size}-byte file holds ${want} bytes`);
  }
  const nonce = crypto.getRandomValues(new Uint8Array(NONCE_BYTES));
  const aad = chunkAad({ fileId, index, last: index === n - 1, fmt });
  const k = await aesKey(key, "file key", FILE_KEY_USAGES);
  const ct = await crypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, k, plaintext);
  return [nonce, new Uint8Array(ct)];
}

export async function decryptChunk(fileKey, box, { fileId, index, last, fmt = V1 }) {
  const key = await aesKey(fileKey, "file key", FILE_KEY_USAGES);
  const plain = await openBox(key, box, chunkAad({ fileId, index, last, fmt }), "file chunk");
  if (plain !== null) return plain;
  const flipped = chunkAad({ fileId, index, last: !last, fmt });
  if ((await openBox(key, box, flipped, "file chunk")) !== null) {
    if (last) {
      throw new FileTruncated(
        `file ${short(fileId)} ends after chunk ${index}, which is not its last chunk: the ` +
          "body was truncated",
      );
    }
    throw new FileTruncated(
      `file ${short(fileId)} has bytes after its last chunk (${index}): the body was extended`,
    );
  }
  throw new FileChunkInvalid(
    `chunk ${index} of file ${short(fileId)} does not open: it was modified, moved from another ` +
      "position, or belongs to another file or key",
  );
}

async function* piecesOf(source) {
  if (source && typeof source.getReader === "function") {
    const reader = source.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return;
        yield asBytes(value, "piece");
      }
    } finally {
      reader.releaseLock();
    }
  } else {
    for await (const piece of source) yield asBytes(piece, "piece");
  }
}

/**
 * The encrypted body of the bytes `source` yields (a ReadableStream, or an
 * iterable or async iterable of byte pieces of any size), one chunk box at a
 * time. A full chunk is held back until more bytes show it is not the last.
 */
export async function* encryptFile(fileKey, fileId, source, fmt = V1) {
  checkId(fileId, "file id");
  const key = await aesKey(fileKey, "file key", FILE_KEY_USAGES);
  const size = fmt.chunkBytes;
  const buf = new Uint8Array(size);
  let fill = 0;
  let index = 0;
  try {
    for await (const piece of piecesOf(source)) {
      let at = 0;
      while (at < piece.length) {
        if (fill === size) {
          // WebCrypto copies its input when called, so buf can be refilled at once.
          yield await encryptChunk(key, buf, { fileId, index, last: false, fmt });
          index += 1;
          fill = 0;
        }
        const n = Math.min(size - fill, piece.length - at);
        buf.set(piece.subarray(at, at + n), fill);
        fill += n;
        at += n;
      }
    }
    yield await encryptChunk(key, buf.subarray(0, fill), { fileId, index, last: true, fmt });
  } finally {
    buf.fill(0);
  }
}

/**
 * Feed an encrypted body in pieces of any size; get plaintext back chunk by
 * chunk. finish() checks the body ended with its last chunk.
 *
 *     const dec = new FileDecryptor(fk, fileId);
 *     for await (const piece of body) out.push(await dec.feed(piece));
 *     out.push(await dec.finish());
 *
 * push(piece) and end() are the same without waiting: they take the bytes at
 * once and return one promise per chunk the bytes complete, its decryption
 * already started, so several chunks can be in flight while the next bytes
 * arrive. Await the promises in order: the first that rejects names the first
 * chunk that does not open. A box that lies whole inside a piece is opened
 * from the piece itself (no copy); only boxes cut across pieces are gathered.
 */
export class FileDecryptor {
  #key;
  #fileKey;
  #fileId;
  #fmt;
  #buf = null; // a box being gathered across pieces
  #view = null; // a whole box inside a piece, waiting to see whether more follows
  #fill = 0;
  #index = 0;
  #done = false;

  constructor(fileKey, fileId, fmt = V1) {
    this.#fileKey = fileKey;
    this.#fileId = checkId(fileId, "file id");
    this.#fmt = fmt;
  }

  /** Chunks whose decryption has started so far. */
  get chunks() {
    return this.#index;
  }

  /** The body format this decryptor reads. */
  get format() {
    return this.#fmt;
  }

  #open(last) {
    const box = this.#view ?? this.#buf.subarray(0, this.#fill);
    this.#view = null;
    this.#buf = null; // the promise owns it now: WebCrypto copies it only when called
    this.#fill = 0;
    const ctx = { fileId: this.#fileId, index: this.#index, last, fmt: this.#fmt };
    this.#index += 1;
    this.#key ??= aesKey(this.#fileKey, "file key", FILE_KEY_USAGES);
    const plain = this.#key.then((key) => decryptChunk(key, box, ctx));
    plain.catch(() => {}); // the caller sees it where it awaits this chunk
    return plain;
  }

  /** Take `data`; one promise of plaintext per chunk it completes (maybe none). */
  push(data) {
    if (this.#done) {
      throw new FileTruncated(`file ${short(this.#fileId)} has bytes after its last chunk`);
    }
    const src = asBytes(data);
    const boxBytes = this.#fmt.boxBytes;
    const out = [];
    let at = 0;
    while (at < src.length) {
      // A full chunk box followed by more bytes cannot be the last one.
      if (this.#fill === boxBytes) out.push(this.#open(false));
      if (this.#fill === 0 && src.length - at >= boxBytes) {
        this.#view = src.subarray(at, at + boxBytes);
        this.#fill = boxBytes;
        at += boxBytes;
        continue;
      }
      this.#buf ??= new Uint8Array(boxBytes);
      const n = Math.min(boxBytes - this.#fill, src.length - at);
      this.#buf.set(src.subarray(at, at + n), this.#fill);
      this.#fill += n;
      at += n;
    }
    return out;
  }

  /** The body ended: the promise of the last chunk's plaintext (throws if the
   * body ended inside a chunk). */
  end() {
    if (this.#done) return Promise.resolve(new Uint8Array(0));
    if (this.#fill < OVERHEAD) {
      throw new FileTruncated(
        `file ${short(this.#fileId)} ends inside chunk ${this.#index}: the body was truncated`,
      );
    }
    this.#done = true;
    return this.#open(true);
  }

  async feed(data) {
    const out = await inOrder(this.push(data));
    if (out.length === 0) return new Uint8Array(0);
    return out.length === 1 ? out[0] : concat(...out);
  }

  async finish() {
    return this.end();
  }
}

/** The values of `promises`, awaited in order (the first rejection is thrown). */
export async function inOrder(promises) {
  const out = [];
  for (const p of promises) out.push(await p);
  return out;
}

/** The plaintext of an encrypted body (any source encryptFile takes), streamed;
 * throws at the first bad chunk. */
export async function* decryptFile(fileKey, fileId, body, fmt = V1) {
  const dec = new FileDecryptor(fileKey, fileId, fmt);
  for await (const piece of piecesOf(body)) {
    const out = await dec.feed(piece);
    if (out.length) yield out;
  }
  const last = await dec.finish();
  if (last.length) yield last;
}

// Files (docs/vault.md 8): a key per file, wrapped under Ks; the body in
// authenticated 64 KiB chunks.
//
//     wrapped = box(Ks, K_f, transcript("authnet-vault/v1 file key", safe_id, file_id, u32(g)))
//     chunk i = box(K_f, P_i, transcript("authnet-vault/v1 file chunk", file_id, u64(i), u8(last)))
//     body    = chunk 0 || ... || chunk n-1        n = max(1, ceil(size / 64 KiB))
//
// Both directions stream: encryptFile yields one chunk box at a time from any
// (async) iterable of byte pieces, and FileDecryptor takes the body in pieces
// of any size, releasing plaintext chunk by chunk as each verifies. A file
// counts as read only when finish() has verified its last chunk.

import { FileChunkInvalid, FileKeyInvalid, FileTruncated, MalformedCiphertext } from "./errors.js";
import {
  KEY_BYTES,
  LABELS,
  OVERHEAD,
  aesKey,
  openBox,
  seal,
  unwrapBox,
  wrapAsBox,
} from "./aead.js";
import { asBytes, checkId, concat, short, transcript, u32, u64, u8 } from "./encoding.js";

export const FILE_KEY_BYTES = KEY_BYTES;
export const CHUNK_BYTES = 64 * 1024;
export const CHUNK_BOX_BYTES = CHUNK_BYTES + OVERHEAD;
export const WRAPPED_KEY_BYTES = OVERHEAD + FILE_KEY_BYTES;
const FILE_KEY_USAGES = ["encrypt", "decrypt"];

/**
 * A new file key: an AES-256-GCM CryptoKey, extractable so that wrapFileKey
 * can wrap it under Ks (the page drops it after the upload).
 */
export async function newFileKey() {
  return crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, true, FILE_KEY_USAGES);
}

export function chunkCount(size) {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new RangeError("a file size is a non-negative integer");
  }
  return Math.max(1, Math.ceil(size / CHUNK_BYTES));
}

/** Bytes of the encrypted body of a `size`-byte file. */
export function ciphertextSize(size) {
  return size + OVERHEAD * chunkCount(size);
}

/** The plaintext size of a body of `bodySize` bytes (RangeError if no size fits). */
export function plaintextSize(bodySize) {
  const full = Math.floor(bodySize / CHUNK_BOX_BYTES);
  const rest = bodySize % CHUNK_BOX_BYTES;
  if (rest === 0 && full > 0) return full * CHUNK_BYTES;
  if (rest < OVERHEAD) throw new RangeError("no file encrypts to this many bytes");
  return full * CHUNK_BYTES + rest - OVERHEAD;
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

export function chunkAad({ fileId, index, last }) {
  checkId(fileId, "file id");
  return transcript(LABELS.fileChunk, fileId, u64(index, "chunk index"), u8(last ? 1 : 0));
}

export async function encryptChunk(fileKey, chunk, { fileId, index, last, nonce }) {
  const data = asBytes(chunk, "chunk");
  if (data.length > CHUNK_BYTES || (!last && data.length !== CHUNK_BYTES)) {
    throw new RangeError("every chunk but the last holds exactly CHUNK_BYTES");
  }
  return seal(fileKey, data, chunkAad({ fileId, index, last }), { nonce });
}

export async function decryptChunk(fileKey, box, { fileId, index, last }) {
  const key = await aesKey(fileKey, "file key", FILE_KEY_USAGES);
  const plain = await openBox(key, box, chunkAad({ fileId, index, last }), "file chunk");
  if (plain !== null) return plain;
  if ((await openBox(key, box, chunkAad({ fileId, index, last: !last }), "file chunk")) !== null) {
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
export async function* encryptFile(fileKey, fileId, source) {
  checkId(fileId, "file id");
  const key = await aesKey(fileKey, "file key", FILE_KEY_USAGES);
  const buf = new Uint8Array(CHUNK_BYTES);
  let fill = 0;
  let index = 0;
  try {
    for await (const piece of piecesOf(source)) {
      let at = 0;
      while (at < piece.length) {
        if (fill === CHUNK_BYTES) {
          // WebCrypto copies its input when called, so buf can be refilled at once.
          yield await encryptChunk(key, buf, { fileId, index, last: false });
          index += 1;
          fill = 0;
        }
        const n = Math.min(CHUNK_BYTES - fill, piece.length - at);
        buf.set(piece.subarray(at, at + n), fill);
        fill += n;
        at += n;
      }
    }
    yield await encryptChunk(key, buf.subarray(0, fill), { fileId, index, last: true });
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
 */
export class FileDecryptor {
  #key;
  #fileKey;
  #fileId;
  #buf = new Uint8Array(0);
  #index = 0;
  #done = false;

  constructor(fileKey, fileId) {
    this.#fileKey = fileKey;
    this.#fileId = checkId(fileId, "file id");
  }

  /** Chunks verified so far. */
  get chunks() {
    return this.#index;
  }

  async #keyOf() {
    if (!this.#key) this.#key = await aesKey(this.#fileKey, "file key", FILE_KEY_USAGES);
    return this.#key;
  }

  async feed(data) {
    if (this.#done) {
      throw new FileTruncated(`file ${short(this.#fileId)} has bytes after its last chunk`);
    }
    const key = await this.#keyOf();
    this.#buf = this.#buf.length ? concat(this.#buf, asBytes(data)) : asBytes(data).slice();
    const out = [];
    let at = 0;
    // A full chunk box followed by more bytes cannot be the last one.
    while (this.#buf.length - at > CHUNK_BOX_BYTES) {
      const box = this.#buf.subarray(at, at + CHUNK_BOX_BYTES);
      const ctx = { fileId: this.#fileId, index: this.#index, last: false };
      out.push(await decryptChunk(key, box, ctx));
      this.#index += 1;
      at += CHUNK_BOX_BYTES;
    }
    if (at > 0) this.#buf = this.#buf.slice(at);
    return out.length === 1 ? out[0] : concat(...out);
  }

  async finish() {
    if (this.#done) return new Uint8Array(0);
    if (this.#buf.length < OVERHEAD) {
      throw new FileTruncated(
        `file ${short(this.#fileId)} ends inside chunk ${this.#index}: the body was truncated`,
      );
    }
    const key = await this.#keyOf();
    const plain = await decryptChunk(key, this.#buf, {
      fileId: this.#fileId,
      index: this.#index,
      last: true,
    });
    this.#buf = new Uint8Array(0);
    this.#index += 1;
    this.#done = true;
    return plain;
  }
}

/** The plaintext of an encrypted body (any source encryptFile takes), streamed;
 * throws at the first bad chunk. */
export async function* decryptFile(fileKey, fileId, body) {
  const dec = new FileDecryptor(fileKey, fileId);
  for await (const piece of piecesOf(body)) {
    const out = await dec.feed(piece);
    if (out.length) yield out;
  }
  const last = await dec.finish();
  if (last.length) yield last;
}

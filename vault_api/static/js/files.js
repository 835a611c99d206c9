// Files in the page (docs/vault.md 8.3). Upload: announce the file in format
// 2 (the server refuses one over its limit with 413 before any byte is sent,
// and answers with the format to use), encrypt it chunk by chunk, several
// chunks in flight at once (WebCrypto works off the main thread), into a Blob
// (Chromium streams request bodies only over HTTP/2), PUT the Blob with
// progress. Download: read the response as a stream; each chunk's decryption
// starts as soon as its box has arrived, several in flight while the next
// pieces are read, and the plaintext is gathered in order; the file is saved
// only when its last chunk has verified. Both fold finished chunks into a Blob every few MiB, so the page's
// own memory holds a few chunks, not the file (the browser may keep a large
// Blob on disk).

import * as vc from "./vaultcrypto.js";
import { path } from "./api.js";

const enc = vc.b64uEncode;

/**
 * Upload `file` (a File or Blob) into `safe`. progress(phase, done, total)
 * with phase "encrypting" or "uploading". Resolves with {meta, ref}: the
 * File JSON and the reference an item keeps ({id, name, size, type}).
 */
export async function uploadFile(vault, safe, file, { progress = () => {} } = {}) {
  const t0 = performance.now();
  const key = await vault.currentKey(safe);
  const fileId = vc.newId();
  const fk = await vc.newFileKey();
  const base = path("safes", safe.idText, "files");
  const meta = await vault.api.post(base, {
    id: enc(fileId),
    generation: safe.generation,
    key_wrap: enc(await vc.wrapFileKey(key, fk, { safeId: safe.id, fileId, generation: safe.generation })),
    size: file.size,
    chunk_bytes: vc.CURRENT.chunkBytes,
  });
  const fmt = vc.formatFor(file.size, meta.chunk_bytes ?? vc.V1.chunkBytes);
  const t1 = performance.now();
  const body = await sealedBody(fk, fileId, file, fmt, (done) => progress("encrypting", done, file.size));
  if (body.size !== meta.body_size) throw new Error("the encrypted body has an unexpected size");
  const t2 = performance.now();
  const stored = await vault.api.upload(`${base}/${encodeURIComponent(meta.id)}/body`, body, (sent, total) =>
    progress("uploading", sent, total),
  );
  const t3 = performance.now();
  // Read by bench/vault.py --browser (the name carries the size).
  const detail = { bytes: file.size, format: fmt.version };
  performance.measure(`${MEASURE}upload`, { start: t0, end: t3, detail });
  performance.measure(`${MEASURE}upload:encrypt`, { start: t1, end: t2, detail });
  performance.measure(`${MEASURE}upload:put`, { start: t2, end: t3, detail });
  safe.files.set(stored.id, stored);
  return {
    meta: stored,
    ref: { id: stored.id, name: file.name || "file", size: file.size, type: file.type || "application/octet-stream" },
  };
}

/**
 * Download and decrypt a file of `safe`: resolves with a Blob of its
 * plaintext once the last chunk verified. progress(done, total) in bytes.
 */
export async function downloadFile(vault, safe, ref, { progress = () => {} } = {}) {
  const t0 = performance.now();
  const base = path("safes", safe.idText, "files", ref.id);
  const meta = await vault.api.get(base);
  const fileId = vc.b64uDecode(meta.id, { field: "file id", length: 16 });
  const key = await vault.keyFor(safe, meta.generation);
  const fk = await vc.unwrapFileKey(key, vc.b64uDecode(meta.key_wrap, { field: "file key" }), {
    safeId: safe.id,
    fileId,
    generation: meta.generation,
  });
  const r = await vault.api.fetch("GET", `${base}/body`);
  const dec = new vc.FileDecryptor(fk, fileId, vc.formatFor(meta.size, meta.chunk_bytes ?? vc.V1.chunkBytes));
  const plain = new BlobFolder(ref.type || "application/octet-stream", { zero: true });
  const reader = r.body.getReader();
  const opening = []; // chunks being decrypted, in order
  let received = 0;
  let next = null;
  try {
    next = reader.read();
    for (;;) {
      const { done, value } = await next;
      if (done) break;
      next = reader.read(); // the next piece arrives while the last ones are opened
      received += value.length;
      opening.push(...dec.push(value));
      while (opening.length > IN_FLIGHT) plain.add(await opening.shift());
      progress(received, meta.body_size);
    }
    opening.push(dec.end());
    while (opening.length) plain.add(await opening.shift());
  } catch (e) {
    plain.discard();
    next?.catch(() => {});
    await Promise.allSettled(opening);
    await reader.cancel().catch(() => {});
    throw e;
  } finally {
    reader.releaseLock();
  }
  const blob = plain.blob();
  const detail = { bytes: meta.size, format: dec.format.version };
  performance.measure(`${MEASURE}download`, { start: t0, end: performance.now(), detail });
  return blob;
}

/** The prefix of the page's file performance measures. */
export const MEASURE = "vault:file-";

/** How many chunks one upload encrypts, or one download decrypts, at once. */
export const IN_FLIGHT = 4;
const FOLD_BYTES = 8 * 1024 * 1024;

/**
 * Byte arrays gathered into a Blob: every FOLD_BYTES the arrays are folded
 * into the Blob so far (and zeroed if they hold plaintext: `zero`), so the
 * page holds a few MiB, not the file. Ciphertext is not zeroed: it is what
 * the server holds anyway, and zeroing it cost an upload about a tenth.
 */
class BlobFolder {
  #type;
  #zero;
  #blob;
  #parts = [];
  #held = 0;

  constructor(type, { zero }) {
    this.#type = type;
    this.#zero = zero;
    this.#blob = new Blob([], { type });
  }

  add(...arrays) {
    for (const a of arrays) {
      if (!a.length) continue;
      this.#parts.push(a);
      this.#held += a.length;
    }
    if (this.#held >= FOLD_BYTES) this.#fold();
  }

  #fold() {
    this.#blob = new Blob([this.#blob, ...this.#parts], { type: this.#type });
    if (this.#zero) for (const p of this.#parts) p.fill(0);
    this.#parts = [];
    this.#held = 0;
  }

  blob() {
    this.#fold();
    return this.#blob;
  }

  discard() {
    if (this.#zero) for (const p of this.#parts) p.fill(0);
    this.#parts = [];
    this.#blob = new Blob([]);
  }
}

/**
 * The encrypted body of `file` (a Blob) in format `fmt` as a Blob: the file
 * read as a stream (far faster than a slice per chunk), cut into chunks, up to
 * IN_FLIGHT of them being sealed at once, added in order. onDone(plaintext bytes).
 */
export async function sealedBody(fk, fileId, file, fmt, onDone = () => {}) {
  const n = vc.chunkCount(file.size, fmt);
  const out = new BlobFolder("application/octet-stream", { zero: false });
  const sealing = [];
  let index = 0;
  let done = 0;
  const want = () => Math.min(fmt.chunkBytes, file.size - index * fmt.chunkBytes);
  const seal = (chunk) => {
    const ctx = { fileId, index, size: file.size, fmt };
    index += 1;
    sealing.push(
      vc.sealChunkParts(fk, chunk, ctx).then((parts) => {
        chunk.fill(0);
        done += chunk.length;
        onDone(done);
        return parts;
      }),
    );
  };
  let chunk = new Uint8Array(want());
  let fill = 0;
  const reader = file.stream().getReader();
  try {
    for (;;) {
      const { done: end, value } = await reader.read();
      if (end) break;
      let at = 0;
      while (at < value.length) {
        if (index >= n) throw new Error(`${file.name || "the file"} got longer while it was read`);
        const take = Math.min(chunk.length - fill, value.length - at);
        chunk.set(value.subarray(at, at + take), fill);
        fill += take;
        at += take;
        if (fill === chunk.length) {
          seal(chunk);
          chunk = new Uint8Array(index < n ? want() : 0);
          fill = 0;
          if (sealing.length >= IN_FLIGHT) out.add(...(await sealing.shift()));
        }
      }
    }
    if (index === n - 1 && chunk.length === 0) seal(chunk); // an empty file: one empty chunk
    if (index !== n) throw new Error(`${file.name || "the file"} got shorter while it was read`);
    while (sealing.length) out.add(...(await sealing.shift()));
  } catch (e) {
    out.discard();
    await Promise.allSettled(sealing);
    throw e;
  } finally {
    reader.releaseLock();
  }
  return out.blob();
}

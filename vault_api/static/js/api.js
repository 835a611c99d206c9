// The vault's HTTP API from the page (docs/vault.md 13): JSON over fetch with
// the session cookie, the CSRF token on every state-changing request, errors
// as ApiError {status, code, message, body}. Upload with progress (XHR: fetch
// reports none), download as a stream.

export class ApiError extends Error {
  constructor(status, body) {
    const code = body?.error || (status === 0 ? "network" : "error");
    super(body?.message || (status === 0 ? "the vault cannot be reached" : `the vault said ${status}`));
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.body = body || {};
  }
}

const SAFE_METHODS = new Set(["GET", "HEAD"]);
const ENDED = new Set(["unauthenticated", "session_expired", "session_ended"]);

export class Api {
  #csrf = null;
  #onEnded;
  #onRequest;
  #onPassphraseRequired;

  /**
   * `onEnded(error)`: the session ended (401); `onRequest()`: any request went
   * out (the server's idle timer restarted); `onPassphraseRequired(error)`: a
   * 403 `passphrase_required` (docs/vault.md 5.4: the account must set a vault
   * passphrase first). The request still throws.
   */
  constructor({ onEnded = () => {}, onRequest = () => {}, onPassphraseRequired = () => {} } = {}) {
    this.#onEnded = onEnded;
    this.#onRequest = onRequest;
    this.#onPassphraseRequired = onPassphraseRequired;
  }

  set csrf(token) {
    this.#csrf = token;
  }

  get hasSession() {
    return this.#csrf !== null;
  }

  headers(method, extra = {}) {
    const h = { ...extra };
    if (!SAFE_METHODS.has(method) && this.#csrf) h["X-CSRF-Token"] = this.#csrf;
    return h;
  }

  async #check(r) {
    if (r.ok) return r;
    const body = await r.json().catch(() => null);
    const err = new ApiError(r.status, body);
    if (r.status === 401 && ENDED.has(err.code) && this.#csrf) this.#onEnded(err);
    if (r.status === 403 && err.code === "passphrase_required") this.#onPassphraseRequired(err);
    throw err;
  }

  /** Fetch with the CSRF header; throws ApiError for anything but 2xx. */
  async fetch(method, path, { json, body, headers = {}, signal } = {}) {
    const init = { method, headers: this.headers(method, headers), credentials: "same-origin", signal };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    } else if (body !== undefined) {
      init.body = body;
    }
    this.#onRequest();
    let r;
    try {
      r = await fetch(path, init);
    } catch (e) {
      if (e?.name === "AbortError") throw e;
      throw new ApiError(0, null);
    }
    return this.#check(r);
  }

  async json(method, path, options) {
    const r = await this.fetch(method, path, options);
    return r.status === 204 ? null : r.json();
  }

  get(path) {
    return this.json("GET", path);
  }

  post(path, json) {
    return this.json("POST", path, { json });
  }

  put(path, json) {
    return this.json("PUT", path, { json });
  }

  patch(path, json) {
    return this.json("PATCH", path, { json });
  }

  delete(path) {
    return this.json("DELETE", path);
  }

  /** PUT a Blob, reporting progress(sentBytes, totalBytes). Resolves with the JSON answer. */
  upload(path, blob, onProgress = () => {}) {
    this.#onRequest();
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", path);
      for (const [k, v] of Object.entries(
        this.headers("PUT", { "Content-Type": "application/octet-stream" }),
      )) {
        xhr.setRequestHeader(k, v);
      }
      xhr.upload.onprogress = (e) => onProgress(e.loaded, e.total || blob.size);
      xhr.onload = () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          // not JSON
        }
        if (xhr.status >= 200 && xhr.status < 300) resolve(body);
        else {
          const err = new ApiError(xhr.status, body);
          if (xhr.status === 401 && ENDED.has(err.code)) this.#onEnded(err);
          reject(err);
        }
      };
      xhr.onerror = () => reject(new ApiError(0, null));
      xhr.send(blob);
    });
  }
}

/** "/api/safes/{id}/..." with every id already base64url (safe in paths). */
export const path = (...parts) => `/api/${parts.map((p) => encodeURIComponent(p)).join("/")}`;

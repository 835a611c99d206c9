// The one-time key proxy from the page (docs/keyproxy.md): deposit a blob
// under conditions, read a deposit's status (which does not consume it), and
// claim it once. Bytes are unpadded base64url. Used by device approval
// (js/devices.js) and the one-time links (js/once.js, the item's "Send once").

import { b64uDecode, b64uEncode } from "./crypto/encoding.js";

/** A refusal of the proxy: `status` (0 when unreachable), `code` (not_found, claimed, expired, ...). */
export class ProxyError extends Error {
  constructor(status, body) {
    const code = body?.error || (status === 0 ? "keyproxy_unavailable" : `http_${status}`);
    super(body?.message || (status === 0 ? "the one-time key proxy cannot be reached" : `the one-time key proxy said ${status} (${code})`));
    this.name = "ProxyError";
    this.status = status;
    this.code = code;
    this.body = body || {};
  }
}

export class KeyProxy {
  constructor(url) {
    if (!url) throw new ProxyError(409, { error: "keyproxy_not_configured", message: "this vault has no one-time key proxy configured" });
    this.url = String(url).replace(/\/+$/, "");
  }

  async #call(method, path, json) {
    const init = { method, headers: {}, credentials: "omit", referrerPolicy: "no-referrer", cache: "no-store" };
    if (json !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(json);
    }
    let r;
    try {
      r = await fetch(`${this.url}${path}`, init);
    } catch {
      throw new ProxyError(0, null);
    }
    const body = await r.json().catch(() => null);
    if (!r.ok) throw new ProxyError(r.status, body);
    return body;
  }

  /** Deposit `blob` (bytes) for `ttlSeconds`; resolves with {token, expires_ms}. */
  deposit(blob, ttlSeconds, conditions = []) {
    return this.#call("POST", "/v1/deposits", { blob: b64uEncode(blob), ttl_seconds: ttlSeconds, conditions });
  }

  /** {state: waiting|claimed|expired, expires_ms, claimed_ms, size, conditions}: does not consume it. */
  status(token) {
    return this.#call("GET", `/v1/deposits/${encodeURIComponent(token)}`);
  }

  /** The blob (bytes), once: the proxy deletes it in the same step. */
  async claim(token, { secret, grant } = {}) {
    const body = {};
    if (secret) body.secret = b64uEncode(secret);
    if (grant) body.grant = grant;
    const out = await this.#call("POST", `/v1/deposits/${encodeURIComponent(token)}/claim`, body);
    return b64uDecode(out.blob, { field: "deposit" });
  }
}

/** The conditions of an approval deposit: the claim secret's hash and a grant of the vault for this user. */
export function approvalConditions(claimHash, userIdText) {
  return [
    { kind: "secret", hash: typeof claimHash === "string" ? claimHash : b64uEncode(claimHash) },
    { kind: "grant", issuer: "vault", subject: userIdText },
  ];
}

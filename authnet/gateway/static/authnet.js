// authnet browser client: shows the login QR code, waits at the network's
// gateway, and opens the client key Kc the phone sealed to this page.
//
//     import { AuthnetLogin } from "https://<gateway>/v1/authnet.js";
//
//     const login = new AuthnetLogin({
//       getTicket: async () => (await fetch("/authnet/ticket", { method: "POST" })).json(),
//       container: document.getElementById("login"),
//     });
//     login.addEventListener("scanned", () => { /* optional */ });
//     const { ticket, kc } = await login.start();
//     // tell the backend `ticket` (it calls GetPUID); use `kc` (a ClientKey) locally
//
// `getTicket` returns the SP backend's ticket JSON:
//     {ticket, spid, gateway_url, gateway_urls, passkey_address, ttl_seconds,
//      expires_at_unix_ms}
// `gateway_urls` (optional; every gateway of the network, gateway_url first)
// is where the page resumes its wait when a connection breaks.
// The SPID comes from the SP (it knows it from its certificate), never from the
// network: the sealed Kc is bound to it, so a relay cannot make the page accept
// a key made for another SP.
//
// This file is the Python class authnet/sdk/browser.py BrowserSession, in a page.
// The X25519 private key and Kc are non-extractable CryptoKeys; Kc's raw bytes
// exist only between AES-GCM decryption and import, and are zeroed after.

import { HpkeError, openBase } from "./hpke.js";
import { renderQrSvg } from "./qr.js";

export const PROTOCOL_VERSION = 1;

const LABEL_TICKET = "authnet/v1 ticket";
const LABEL_SEAL_INFO = "authnet/v1 sealed kc";
const LABEL_BROWSER_PQ_KEY = "authnet/v1 browser pq key";
const LABEL_BROWSER_OFFER = "authnet/v1 browser offer";
const LABEL_KC_FINGERPRINT = "authnet/v1 kc fingerprint";
const LABEL_KC_INFO = "authnet/v1 kc";
const LABEL_KC_FIDO2_SALT = "authnet/v1 fido2 kc";
const LABEL_FIDO2_PRF_INPUT = "authnet/v1 fido2 prf";
const RESERVED_LABEL_PREFIX = "authnet/";

const KC_BYTES = 32;
const ENC_BYTES = 32;
const XWING_ENC_BYTES = 1120;
const XWING_PUBLIC_KEY_BYTES = 1216;
const CIPHERTEXT_BYTES = KC_BYTES + 16;
const BROWSER_KEY_BYTES = 32;
const WAIT_SECRET_BYTES = 32;
const FINGERPRINT_BITS = 128;
const PAYLOAD_MAX_LENGTH = 512;
const TICKET_RE = /^at1_[A-Za-z0-9_-]{22}$/;
const SPID_RE = /^[0-9a-f]{32}$/;
// host:port or [ipv6]:port; the phone parses it strictly (authnet/protocol/payload.py).
const ADDRESS_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]):[1-9][0-9]{0,4}$/;
const B64U_RE = /^[A-Za-z0-9_-]*$/;

// Resuming a wait (authnet/sdk/browser.py, _Wait._resume): after a connection
// breaks, at most this many connections, each to the next gateway in turn, with
// a pause after each full round (100 ms, doubling, at most 1 s). A node that
// stops or dies costs the page one reconnect, not the login.
const RESUME_ATTEMPTS = 8;
const RESUME_PAUSE_MS = 100;
const RESUME_PAUSE_MAX_MS = 1000;
// A gateway answers a hello at once; one that does not within this long (a host
// that is gone drops packets, and a browser may try to connect for minutes) is
// given up for the next.
const ANSWER_TIMEOUT_MS = 5000;
// A connection that answered and then lived this long worked: when it breaks,
// the count of attempts starts over. (One that breaks sooner does not reset
// it, so a node that answers and drops every connection is not hammered.)
const STABLE_MS = 1000;
// More gateways than this in a ticket is not a network, it is a mistake.
const MAX_GATEWAYS = 64;
// Gateway error codes that mean "this node cannot serve you now" (its state
// store or database is unreachable, it is overloaded), not "no": the wait
// resumes on another gateway, as after a broken connection.
const RESUMABLE_CODES = new Set([
  "unavailable",
  "overloaded",
  "state_unavailable",
  "state_record_unreadable",
  "directory_unavailable",
]);

const te = new TextEncoder();

/** Every failure this module reports: a stable `code` and a human `message`. */
export class AuthnetError extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.name = "AuthnetError";
    this.code = code;
  }
}

function sealedKeyInvalid(detail) {
  return new AuthnetError(
    "sealed_key_invalid",
    "the sealed client key does not open: it was altered in transit or made for another " +
      `ticket, SP or browser key${detail ? ` (${detail})` : ""}`,
  );
}

// --- encodings (authnet/protocol/encoding.py) --------------------------------

/** base64url without padding. */
export function b64uEncode(data) {
  let s = "";
  for (const b of data) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Strict unpadded base64url (canonical, optional exact length), else AuthnetError "malformed". */
export function b64uDecode(text, { field = "value", length } = {}) {
  if (typeof text !== "string" || !B64U_RE.test(text) || text.length % 4 === 1) {
    throw new AuthnetError("malformed", `${field} is not base64url`);
  }
  const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  if (b64uEncode(out) !== text) {
    throw new AuthnetError("malformed", `${field} is not canonical base64url`);
  }
  if (length !== undefined && out.length !== length) {
    throw new AuthnetError("malformed", `${field} must be ${length} bytes, got ${out.length}`);
  }
  return out;
}

/** label || 0x00 || (u16 big-endian length || field)* — the protocol's transcript encoding. */
export function transcript(label, ...fields) {
  const l = typeof label === "string" ? te.encode(label) : label;
  if (l.includes(0)) throw new TypeError("labels must not contain NUL");
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

// --- identifiers (authnet/protocol/ids.py) -----------------------------------

/** Throw AuthnetError "malformed" unless `ticket` is at1_ + 22 canonical base64url chars. */
export function checkTicket(ticket) {
  if (typeof ticket !== "string" || !TICKET_RE.test(ticket)) {
    throw new AuthnetError(
      "malformed",
      "ticket is malformed: expected at1_ followed by 22 base64url chars",
    );
  }
  b64uDecode(ticket.slice(4), { field: "ticket", length: 16 });
  return ticket;
}

/** SPID text (32 lowercase hex digits) -> 16 bytes. */
export function parseSpid(text) {
  if (typeof text !== "string" || !SPID_RE.test(text)) {
    throw new AuthnetError("malformed", "SPID must be 32 lowercase hex digits");
  }
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** SHA-256("authnet/v1 ticket" || 0x00 || ticket): 32 bytes. */
export async function ticketHash(ticket) {
  checkTicket(ticket);
  const data = new Uint8Array([...te.encode(LABEL_TICKET), 0, ...te.encode(ticket)]);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

/**
 * HPKE info: transcript("authnet/v1 sealed kc", ticket_hash, spid) for an
 * X25519-only offer; with `offerHash` and `suiteId` (a dual offer, §7.1) they
 * are bound too.
 */
export function sealInfo(ticketHashBytes, spidBytes, { offerHash, suiteId } = {}) {
  if (offerHash === undefined) return transcript(LABEL_SEAL_INFO, ticketHashBytes, spidBytes);
  return transcript(LABEL_SEAL_INFO, ticketHashBytes, spidBytes, offerHash, suiteId);
}

/** SHA-256("authnet/v1 browser pq key" || 0x00 || pkX): the QR code's `x`. */
export async function pqKeyHash(publicKey) {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== XWING_PUBLIC_KEY_BYTES) {
    throw new TypeError(`an X-Wing public key is ${XWING_PUBLIC_KEY_BYTES} bytes`);
  }
  const data = new Uint8Array([...te.encode(LABEL_BROWSER_PQ_KEY), 0, ...publicKey]);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

/** The browser key hash of a dual offer: SHA-256(transcript("authnet/v1 browser offer", pkB, x)). */
export async function offerHash(browserKey, pqHash) {
  const data = transcript(LABEL_BROWSER_OFFER, browserKey, pqHash);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", data));
}

let xwingModule = null;

/**
 * The X-Wing module (xwing.js), or null when this page cannot load it (it
 * maps no @noble/ specifiers: see xwing.js). Loaded once, lazily, so a page
 * without the import map still logs in with X25519.
 */
export async function loadXWing() {
  if (xwingModule === null) {
    xwingModule = import("./xwing.js").catch(() => false);
  }
  return (await xwingModule) || null;
}

/** A fresh X-Wing key pair with its hash, or null when X-Wing is unavailable. */
export async function generateXWingKey() {
  const xwing = await loadXWing();
  if (!xwing) return null;
  const { publicKey, secretKey } = xwing.generateKeyPair();
  return { publicKey, secretKey, keyHash: await pqKeyHash(publicKey) };
}

/** The QR payload: authnet:login?v=1&t=<ticket>&k=<b64url key>[&x=<b64url hash>]&n=<address>. */
export function buildPayload({ ticket, browserKey, passkeyAddress, pqKeyHash: x }) {
  checkTicket(ticket);
  if (!(browserKey instanceof Uint8Array) || browserKey.length !== BROWSER_KEY_BYTES) {
    throw new AuthnetError("malformed", `browser key must be ${BROWSER_KEY_BYTES} bytes`);
  }
  if (typeof passkeyAddress !== "string" || !ADDRESS_RE.test(passkeyAddress)) {
    throw new AuthnetError("malformed", "passkey address must be host:port");
  }
  const k = b64uEncode(browserKey);
  let offer = "";
  if (x !== undefined && x !== null) {
    if (!(x instanceof Uint8Array) || x.length !== 32) {
      throw new AuthnetError("malformed", "X-Wing key hash must be 32 bytes");
    }
    offer = `&x=${b64uEncode(x)}`;
  }
  const text = `authnet:login?v=${PROTOCOL_VERSION}&t=${ticket}&k=${k}${offer}&n=${passkeyAddress}`;
  if (text.length > PAYLOAD_MAX_LENGTH) {
    throw new AuthnetError("malformed", "login payload too long");
  }
  return text;
}

/** The gateway's websocket URL: http(s)://host -> ws(s)://host/v1/wait. */
export function websocketUrl(gatewayUrl) {
  const base = String(gatewayUrl).replace(/\/+$/, "");
  if (base.startsWith("https://")) return `wss://${base.slice(8)}/v1/wait`;
  if (base.startsWith("http://")) return `ws://${base.slice(7)}/v1/wait`;
  throw new AuthnetError("malformed", "gateway URL must start with http:// or https://");
}

// --- keys --------------------------------------------------------------------

/** A fresh X25519 key pair (private key non-extractable) and its raw public key. */
export async function generateBrowserKey() {
  const keyPair = await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"]);
  const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", keyPair.publicKey));
  return { keyPair, publicKey };
}

function labelBytes(label) {
  const b = typeof label === "string" ? te.encode(label) : label;
  if (!(b instanceof Uint8Array) || b.length === 0) {
    throw new TypeError("label must be a non-empty string or Uint8Array");
  }
  // The protocol derives public values (the fingerprint) from Kc under
  // authnet/ labels; an application key under one of them could be public.
  const prefix = te.encode(RESERVED_LABEL_PREFIX);
  if (b.length >= prefix.length && prefix.every((x, i) => b[i] === x)) {
    throw new TypeError(`labels starting with ${RESERVED_LABEL_PREFIX} are the protocol's`);
  }
  return b;
}

/** Kc, the per-SP client key, as a non-extractable HKDF-SHA256 CryptoKey. */
export class ClientKey {
  #key;

  constructor(key) {
    if (!(key instanceof CryptoKey) || key.algorithm.name !== "HKDF") {
      throw new TypeError("ClientKey wraps an HKDF CryptoKey");
    }
    this.#key = key;
  }

  /** The CryptoKey (HKDF, usages deriveBits and deriveKey, not extractable). */
  get key() {
    return this.#key;
  }

  /** The public fingerprint people compare with the phone's, e.g.
   * "e4217bee-9c121a46-e09f6c32-2f88c24d". */
  async fingerprint() {
    const bits = await crypto.subtle.deriveBits(
      {
        name: "HKDF",
        hash: "SHA-256",
        salt: new Uint8Array(0),
        info: te.encode(LABEL_KC_FINGERPRINT),
      },
      this.#key,
      FINGERPRINT_BITS,
    );
    const hex = Array.from(new Uint8Array(bits), (b) => b.toString(16).padStart(2, "0")).join("");
    return hex.match(/.{8}/g).join("-");
  }

  /**
   * A non-extractable key derived from Kc: HKDF-SHA256(IKM = Kc, salt = "",
   * info = label). `label` (string, UTF-8, or bytes) names the key's purpose;
   * labels starting with "authnet/" are reserved.
   */
  async deriveKey(label, algorithm, usages) {
    return crypto.subtle.deriveKey(
      { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(0), info: labelBytes(label) },
      this.#key,
      algorithm,
      false,
      usages,
    );
  }

  /** deriveKey for AES-GCM (256 bits unless `length` says otherwise). */
  async deriveAesGcmKey(label, { length = 256, usages = ["encrypt", "decrypt"] } = {}) {
    return this.deriveKey(label, { name: "AES-GCM", length }, usages);
  }
}

/**
 * Open a sealed Kc ({enc, ciphertext}, base64url, as the gateway sends it) with
 * the browser's X25519 key pair, for `ticket` and the SP's `spidHex`. Returns a
 * ClientKey; AuthnetError "sealed_key_invalid" if it does not open.
 */
export async function openSealedKc(sealed, keyPair, ticket, spidHex, { xwing = null } = {}) {
  checkTicket(ticket);
  const spid = parseSpid(spidHex);
  if (!(keyPair?.privateKey instanceof CryptoKey) || !(keyPair?.publicKey instanceof CryptoKey)) {
    throw new TypeError("keyPair must be the browser's X25519 CryptoKeyPair");
  }
  let enc;
  let ct;
  try {
    enc = b64uDecode(sealed?.enc, { field: "enc" });
    ct = b64uDecode(sealed?.ciphertext, { field: "ciphertext", length: CIPHERTEXT_BYTES });
  } catch (e) {
    throw sealedKeyInvalid(e.message);
  }
  // This page offered X-Wing: it takes nothing weaker (docs/protocol.md §7.1).
  if (xwing && enc.length !== XWING_ENC_BYTES) {
    throw new AuthnetError(
      "suite_downgraded",
      "the client key was sealed with a weaker suite than this page offered: refused; log in again",
    );
  }
  if (!xwing && enc.length !== ENC_BYTES) throw sealedKeyInvalid(`enc must be ${ENC_BYTES} bytes`);
  const th = await ticketHash(ticket);
  let kc;
  try {
    if (xwing) {
      const module = await loadXWing();
      const publicKey = new Uint8Array(await crypto.subtle.exportKey("raw", keyPair.publicKey));
      const offer = await offerHash(publicKey, xwing.keyHash);
      const info = sealInfo(th, spid, { offerHash: offer, suiteId: module.SUITE_ID_BYTES });
      kc = await module.openBase({ enc, secretKey: xwing.secretKey, info, ct });
    } else {
      kc = await openBase({ enc, recipient: keyPair, info: sealInfo(th, spid), ct });
    }
  } catch (e) {
    if (e instanceof HpkeError && e.name === "InvalidInputError") throw new TypeError(e.message);
    throw sealedKeyInvalid();
  }
  try {
    if (kc.length !== KC_BYTES) throw sealedKeyInvalid("wrong length");
    const usages = ["deriveBits", "deriveKey"];
    const key = await crypto.subtle.importKey("raw", kc, "HKDF", false, usages);
    return new ClientKey(key);
  } finally {
    kc.fill(0);
  }
}

// --- security keys in this browser (WebAuthn PRF) ----------------------------

/** The WebAuthn PRF input whose output a security key turns into Kc for an SP:
 * transcript("authnet/v1 fido2 prf", spid). */
export function fido2PrfInput(spidBytes) {
  if (!(spidBytes instanceof Uint8Array) || spidBytes.length !== 16) {
    throw new TypeError("SPID must be 16 bytes");
  }
  return transcript(LABEL_FIDO2_PRF_INPUT, spidBytes);
}

/**
 * Kc from a security key's PRF output, as every FIDO2 PassKey derives it:
 * HKDF-SHA256(salt = "authnet/v1 fido2 kc", IKM = prf, info = "authnet/v1 kc"
 * || 0x00 || spid, 32 bytes). Returns a ClientKey; the PRF output and Kc's raw
 * bytes are zeroed before it returns.
 */
export async function kcFromPrf(prfOutput, spidBytes) {
  const prf = new Uint8Array(prfOutput);
  try {
    if (prf.length < 20) throw new TypeError("the PRF output is too short");
    if (!(spidBytes instanceof Uint8Array) || spidBytes.length !== 16) {
      throw new TypeError("SPID must be 16 bytes");
    }
    const ikm = await crypto.subtle.importKey("raw", prf, "HKDF", false, ["deriveBits"]);
    const info = new Uint8Array([...te.encode(LABEL_KC_INFO), 0, ...spidBytes]);
    const salt = te.encode(LABEL_KC_FIDO2_SALT);
    const kc = new Uint8Array(
      await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-256", salt, info }, ikm, 256),
    );
    try {
      const usages = ["deriveBits", "deriveKey"];
      return new ClientKey(await crypto.subtle.importKey("raw", kc, "HKDF", false, usages));
    } finally {
      kc.fill(0);
    }
  } finally {
    prf.fill(0);
  }
}

async function postJson(url, body) {
  let r;
  try {
    r = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new AuthnetError("network_unavailable", "cannot reach the authnet network", {
      cause: e,
    });
  }
  const json = await r.json().catch(() => null);
  if (!r.ok || !json) {
    throw new AuthnetError(json?.code || "error", json?.message || `the network said ${r.status}`);
  }
  return json;
}

/** POST to the first of `gateways` that serves it: one that cannot be reached,
 * or answers that it cannot serve now (RESUMABLE_CODES), is passed over for the
 * next; any other answer is final. */
async function postToGateways(gateways, path, body) {
  let last = new AuthnetError("network_unavailable", "no gateway to ask");
  for (const gateway of gateways) {
    try {
      return await postJson(`${gateway}${path}`, body);
    } catch (e) {
      if (e.code !== "network_unavailable" && !RESUMABLE_CODES.has(e.code)) throw e;
      last = e;
    }
  }
  throw last;
}

/** navigator.credentials' DOMExceptions, as this module's errors. */
function webauthnError(e) {
  if (e instanceof AuthnetError) return e;
  if (e?.name === "NotAllowedError") {
    return new AuthnetError("declined", "the security key was not used (cancelled or timed out)");
  }
  if (e?.name === "SecurityError") {
    return new AuthnetError("permission_denied", "this page may not use the network's keys");
  }
  return new AuthnetError("error", `the security key failed (${e?.message ?? e})`);
}

/**
 * Log in to a waiting ticket with a security key in this browser: the network
 * gives a challenge bound to the ticket, the SP, this page's key and a nonce;
 * the key asserts it and evaluates its PRF at fido2PrfInput(spid); the page
 * sends the assertion and derives Kc itself. Kc never leaves the page.
 * Returns the ClientKey. `ticketJson` is the SP's ticket JSON.
 */
export async function loginWithSecurityKey({ ticketJson, waitSecret }) {
  if (!window.PublicKeyCredential) {
    throw new AuthnetError("unsupported", "this browser has no WebAuthn");
  }
  const spid = parseSpid(ticketJson.spid);
  const ticket = checkTicket(ticketJson.ticket);
  websocketUrl(ticketJson.gateway_url);
  checkGatewayUrls(ticketJson.gateway_urls);
  const gateways = gatewaysOf(ticketJson).map((g) => String(g).replace(/\/+$/, ""));
  const secret = b64uEncode(waitSecret);
  const options = await postToGateways(gateways, "/v1/webauthn/login/options", {
    ticket,
    wait_secret: secret,
  });
  let credential;
  try {
    credential = await navigator.credentials.get({
      publicKey: {
        challenge: b64uDecode(options.challenge, { field: "challenge", length: 32 }),
        rpId: options.rp_id,
        allowCredentials: [],
        userVerification: "required",
        timeout: options.timeout_ms,
        extensions: { prf: { eval: { first: fido2PrfInput(spid) } } },
      },
    });
  } catch (e) {
    throw webauthnError(e);
  }
  const prf = credential.getClientExtensionResults().prf?.results?.first;
  if (!prf) {
    throw new AuthnetError(
      "unsupported",
      "this security key cannot derive keys (no PRF / hmac-secret): use another way in",
    );
  }
  const response = credential.response;
  try {
    // Retried as it is on the next gateway when one fails: the network treats
    // the same request again as the same login (docs/protocol.md section 12).
    await postToGateways(gateways, "/v1/webauthn/login", {
      ticket,
      wait_secret: secret,
      nonce: options.nonce,
      credential_id: b64uEncode(new Uint8Array(credential.rawId)),
      authenticator_data: b64uEncode(new Uint8Array(response.authenticatorData)),
      client_data_json: b64uEncode(new Uint8Array(response.clientDataJSON)),
      signature: b64uEncode(new Uint8Array(response.signature)),
      client_key: true, // this page holds the PRF output, hence Kc
    });
    return await kcFromPrf(prf, spid);
  } finally {
    new Uint8Array(prf).fill(0);
  }
}

/**
 * Enrol a security key with the network (a new account), from a page on the
 * network's own site (the gateway's /v1/enrol). The key makes a discoverable
 * credential with PRF, so it can later log in from SP pages with no username.
 * Returns {tokenId, networkName}.
 */
export async function enrolSecurityKey({ gatewayUrl = "", label }) {
  if (!window.PublicKeyCredential) {
    throw new AuthnetError("unsupported", "this browser has no WebAuthn");
  }
  const gateway = String(gatewayUrl).replace(/\/+$/, "");
  const options = await postJson(`${gateway}/v1/webauthn/enrol/options`, { label });
  let credential;
  try {
    credential = await navigator.credentials.create({
      publicKey: {
        challenge: b64uDecode(options.webauthn_challenge, { field: "challenge", length: 32 }),
        rp: { id: options.rp.id, name: options.rp.name },
        user: {
          id: b64uDecode(options.user.id, { field: "user id" }),
          name: options.user.name,
          displayName: options.user.display_name,
        },
        pubKeyCredParams: [{ type: "public-key", alg: -7 }],
        authenticatorSelection: { residentKey: "required", userVerification: "required" },
        timeout: options.timeout_ms,
        extensions: { prf: {} },
      },
    });
  } catch (e) {
    throw webauthnError(e);
  }
  if (credential.getClientExtensionResults().prf?.enabled === false) {
    throw new AuthnetError(
      "unsupported",
      "this security key cannot derive keys (no PRF / hmac-secret); it was not enrolled",
    );
  }
  const result = await postJson(`${gateway}/v1/webauthn/enrol`, {
    challenge: options.challenge,
    label,
    client_data_json: b64uEncode(new Uint8Array(credential.response.clientDataJSON)),
    attestation_object: b64uEncode(new Uint8Array(credential.response.attestationObject)),
  });
  return { tokenId: result.token_id, networkName: result.network_name };
}

// --- the login widget --------------------------------------------------------

export const DEFAULT_MESSAGES = Object.freeze({
  loading: "Getting a login code…",
  waiting: "Scan this code with the authnet app on your phone.",
  scanned: "Scanned: confirm on your phone.",
  authenticated: "Logged in.",
  ticket_rejected: "The login was declined on the phone.",
  agentRejected: "The login was declined on this computer.",
  ticket_expired: "The login code expired before it was confirmed on the phone.",
  sealed_key_invalid:
    "The key your phone sent could not be opened: it was altered on the way or made for " +
    "another page. Nothing was used.",
  suite_downgraded:
    "The key your phone sent was protected less strongly than this page asked for: someone " +
    "on the way may have interfered. Nothing was used.",
  network_unavailable: "Cannot reach the authnet network.",
  gateway_unavailable:
    "Lost the connection to the authnet network and could not reconnect. Check your " +
    "connection, then try again.",
  ticket_unavailable: "Could not get a login code from this site.",
  unsupported: "This browser cannot do the cryptography the login needs (WebCrypto X25519).",
  cancelled: "Login cancelled.",
  error: "The login failed.",
  retry: "Try again",
  useAgent: "Use my security key or smartcard",
  agentWorking: "Confirm on this computer, then use your security key or smartcard.",
  useSecurityKey: "Use a security key in this browser",
  securityKeyWorking: "Touch your security key and enter its PIN when the browser asks.",
  qrLabel: "Login QR code: scan it with the authnet app on your phone",
});

function checkTicketJson(t) {
  if (!t || typeof t !== "object") {
    throw new AuthnetError("ticket_unavailable", "getTicket returned no ticket");
  }
  try {
    checkTicket(t.ticket);
    parseSpid(t.spid);
    websocketUrl(t.gateway_url);
    checkGatewayUrls(t.gateway_urls);
  } catch (e) {
    throw new AuthnetError("ticket_unavailable", `getTicket returned a bad ticket: ${e.message}`);
  }
  if (typeof t.passkey_address !== "string" || !ADDRESS_RE.test(t.passkey_address)) {
    throw new AuthnetError("ticket_unavailable", "getTicket returned a bad passkey_address");
  }
  if (typeof t.ttl_seconds !== "number" || !(t.ttl_seconds > 0 && t.ttl_seconds < 1e6)) {
    throw new AuthnetError("ticket_unavailable", "getTicket returned a bad ttl_seconds");
  }
  return t;
}

// `gateway_urls` is optional (older networks send only gateway_url) and may be
// empty; when present, every entry must be an http(s) URL like gateway_url,
// since the page sends its wait secret to each.
function checkGatewayUrls(urls) {
  if (urls === undefined || urls === null) return;
  if (!Array.isArray(urls) || urls.length > MAX_GATEWAYS) {
    const text = `gateway_urls must be a list of at most ${MAX_GATEWAYS} URLs`;
    throw new AuthnetError("malformed", text);
  }
  for (const url of urls) {
    if (typeof url !== "string") {
      throw new AuthnetError("malformed", "gateway_urls must hold URL strings");
    }
    websocketUrl(url);
  }
}

/** Where a ticket's wait may go: gateway_url, then the other gateways, each once. */
function gatewaysOf(t) {
  return [...new Set([t.gateway_url, ...(t.gateway_urls ?? [])])];
}

/**
 * The login widget. Events (CustomEvent, fields in `detail`):
 *   waiting        {payload, expiresAt}   a QR code is showing (again after each refresh)
 *   scanned        {}                     a phone scanned it; confirm on the phone
 *   authenticated  {ticket, kc}           done; `start()` resolves with the same
 *   rejected       {code, message}        declined on the phone ("Try again" shown)
 *   expired        {code, message, scanned}  scanned but not confirmed in time ("Try
 *                                         again" shown); unscanned codes refresh themselves
 *   error          {code, message}        sealed_key_invalid, gateway_unavailable (the
 *                                         connection broke and no gateway answered),
 *                                         ticket_unavailable, unsupported, malformed, or
 *                                         the gateway's code (e.g. already_delivered)
 * A connection that breaks before the outcome is resumed on the next gateway of
 * the ticket's gateway_urls with the same ticket, key and wait secret: the QR
 * code stays, and no event repeats (one "scanned", one "authenticated").
 * After rejected, expired and error the widget shows why and a "Try again" button;
 * `start()` stays pending until a login succeeds or `cancel()` is called.
 * Markup: div.authnet-login[data-state] > div.authnet-qr (an <svg role="img">),
 * button.authnet-agent (when the local agent answers), p.authnet-status
 * (role="status", aria-live="polite"), button.authnet-retry.
 *   agent          {token}               the local agent answered; its button shows
 *   agentfailed    {code, message}       the agent could not answer (reason shown)
 *   securitykeyfailed {code, message}    the in-browser security key login failed
 *                                         (reason shown; the QR code stays)
 * button.authnet-webauthn offers a security key in this browser (WebAuthn PRF);
 * Kc is then derived in the page and `authenticated` carries it the same way.
 */
export class AuthnetLogin extends EventTarget {
  #getTicket;
  #container;
  #refreshFactor;
  #moduleSize;
  #messages;
  #ui = null;
  #attempt = null;
  #promise = null;
  #resolve = null;
  #reject = null;
  #done = false;
  #state = "idle";
  #agentUrl;
  #agentFound = false;
  #securityKey;
  #postQuantum;

  /**
   * @param {object} options
   * @param {() => Promise<object>} options.getTicket  a fresh ticket JSON from the SP backend
   * @param {Element} options.container  where the widget renders (its children are replaced)
   * @param {number} [options.refreshFactor=0.9]  new ticket after this fraction of its TTL,
   *   until one is scanned
   * @param {number} [options.moduleSize=6]  CSS pixels per QR module
   * @param {object} [options.messages]  overrides for DEFAULT_MESSAGES (localisation)
   * @param {string|null} [options.agentUrl="http://127.0.0.1:7481"]  the local agent
   *   (`passkey agent`); when it answers, a button offers the token plugged into this
   *   computer next to the QR code. null: do not look for one.
   * @param {boolean} [options.securityKey]  offer a security key in this browser
   *   (WebAuthn with PRF); default: when the browser has WebAuthn
   * @param {boolean} [options.postQuantum=true]  also offer X-Wing (docs/protocol.md
   *   §7.1) when this page can load xwing.js (it maps @noble/curves/ and @noble/hashes/)
   */
  constructor({
    getTicket,
    container,
    refreshFactor = 0.9,
    moduleSize = 6,
    messages = {},
    agentUrl = "http://127.0.0.1:7481",
    securityKey = typeof window !== "undefined" && !!window.PublicKeyCredential,
    postQuantum = true,
  } = {}) {
    super();
    if (typeof getTicket !== "function") throw new TypeError("getTicket must be a function");
    if (!(container instanceof Element)) throw new TypeError("container must be an Element");
    if (!(refreshFactor > 0 && refreshFactor <= 1)) {
      throw new RangeError("refreshFactor must be in (0, 1]");
    }
    this.#getTicket = getTicket;
    this.#container = container;
    this.#refreshFactor = refreshFactor;
    this.#moduleSize = moduleSize;
    this.#messages = { ...DEFAULT_MESSAGES, ...messages };
    this.#agentUrl = agentUrl;
    this.#securityKey = securityKey;
    this.#postQuantum = postQuantum;
  }

  /** "idle", "loading", "waiting", "scanned", "authenticated", "rejected", "expired",
   * "error" or "cancelled" (also the root element's data-state). */
  get state() {
    return this.#state;
  }

  /** The text the QR code currently shows (the login payload), or null. */
  get payload() {
    return this.#state === "waiting" ? this.#attempt.payload : null;
  }

  /** Show the QR code and wait. Resolves with {ticket, kc} (kc: ClientKey, or null when
   * the SP asked for no client key); rejects only with AuthnetError "cancelled". */
  start() {
    if (this.#promise) return this.#promise;
    this.#promise = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#buildUi();
    this.#begin();
    this.#probeAgent();
    return this.#promise;
  }

  /** Start over with a new ticket and key pair (what the "Try again" button does). */
  retry() {
    if (this.#promise && !this.#done) this.#begin();
  }

  /** Stop: close the connection, clear the widget, reject `start()` with "cancelled". */
  cancel() {
    if (!this.#promise || this.#done) return;
    this.#done = true;
    this.#teardown(this.#attempt);
    this.#attempt = null;
    this.#clearQr();
    this.#setState("cancelled", this.#messages.cancelled, false);
    this.#reject(new AuthnetError("cancelled", "the login was cancelled"));
  }

  // --- UI ---

  #buildUi() {
    const root = document.createElement("div");
    root.className = "authnet-login";
    const qr = document.createElement("div");
    qr.className = "authnet-qr";
    qr.hidden = true;
    const status = document.createElement("p");
    status.className = "authnet-status";
    status.setAttribute("role", "status");
    status.setAttribute("aria-live", "polite");
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "authnet-retry";
    retry.textContent = this.#messages.retry;
    retry.hidden = true;
    retry.addEventListener("click", () => this.retry());
    const agent = document.createElement("button");
    agent.type = "button";
    agent.className = "authnet-agent";
    agent.textContent = this.#messages.useAgent;
    agent.hidden = true;
    agent.addEventListener("click", () => this.#useAgent());
    const webauthn = document.createElement("button");
    webauthn.type = "button";
    webauthn.className = "authnet-webauthn";
    webauthn.textContent = this.#messages.useSecurityKey;
    webauthn.hidden = true;
    webauthn.addEventListener("click", () => this.#useSecurityKey());
    root.append(qr, webauthn, agent, status, retry);
    this.#container.replaceChildren(root);
    this.#ui = { root, qr, status, retry, agent, webauthn };
  }

  // --- the local agent (tokens plugged into this computer) ---

  async #probeAgent() {
    if (!this.#agentUrl) return;
    try {
      const r = await fetch(`${this.#agentUrl}/v1/status`, {
        headers: { "X-Authnet-Agent": "1" },
        signal: AbortSignal.timeout(1500),
      });
      const body = await r.json();
      if (r.ok && body.agent === "authnet" && !this.#done) {
        this.#agentFound = true;
        this.#ui.agent.hidden = this.#state !== "waiting";
        this.#emit("agent", { token: body.token });
      }
    } catch {
      // No agent (or not for this page's origin): the QR code is the way in.
    }
  }

  /** Ask the local agent to answer the login code on show with its token. */
  async #useAgent() {
    const att = this.#attempt;
    if (!att || this.#state !== "waiting") return;
    this.#ui.status.textContent = this.#messages.agentWorking;
    att.viaAgent = true;
    try {
      const r = await fetch(`${this.#agentUrl}/v1/login`, {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-Authnet-Agent": "1" },
        body: JSON.stringify({ payload: att.payload }),
      });
      const body = await r.json().catch(() => ({}));
      if (!r.ok && !this.#stale(att)) this.#agentFailed(att, body.code, body.message);
    } catch (e) {
      if (!this.#stale(att)) this.#agentFailed(att, "error", `${this.#messages.error} (${e.message})`);
    }
  }

  // The agent stopped. Before it reached the network, the QR code still works;
  // after its BeginAuth the ticket belongs to its token, so only a new one helps.
  #agentFailed(att, code, message) {
    const text = message || this.#messages.error;
    this.#emit("agentfailed", { code: code || "error", message: text });
    // Declined at the agent: the token told the network, whose "rejected" decides.
    if (code === "declined") return;
    if (this.#state === "waiting") {
      this.#ui.status.textContent = text;
    } else if (this.#state === "scanned") {
      this.#fail(att, "error", new AuthnetError(code || "error", text), { statusText: text });
    }
  }

  /** Log in with a security key in this browser (the button's action). */
  async #useSecurityKey() {
    const att = this.#attempt;
    if (!att || this.#state !== "waiting" || att.localKc) return;
    this.#ui.status.textContent = this.#messages.securityKeyWorking;
    // #finish waits for this when the gateway says the page holds Kc itself.
    att.localKc = loginWithSecurityKey({ ticketJson: att.ticket, waitSecret: att.waitSecret });
    try {
      await att.localKc;
    } catch (e) {
      att.localKc = null;
      if (!this.#stale(att) && this.#state === "waiting") {
        this.#ui.status.textContent = e.message || this.#messages.error;
        this.#emit("securitykeyfailed", { code: e.code || "error", message: e.message || "" });
      }
    }
  }

  #setState(state, text, showRetry) {
    this.#state = state;
    this.#ui.root.dataset.state = state;
    this.#ui.status.textContent = text;
    this.#ui.retry.hidden = !showRetry;
    this.#ui.agent.hidden = !(this.#agentFound && state === "waiting");
    this.#ui.webauthn.hidden = !(this.#securityKey && state === "waiting");
  }

  #showQr(payload) {
    const label = this.#messages.qrLabel;
    const svg = renderQrSvg(payload, { moduleSize: this.#moduleSize, label });
    this.#ui.qr.replaceChildren(svg);
    this.#ui.qr.hidden = false;
  }

  #clearQr() {
    this.#ui.qr.replaceChildren();
    this.#ui.qr.hidden = true;
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // --- one attempt: ticket, key pair, websocket ---

  #stale(att) {
    return att !== this.#attempt || this.#done;
  }

  #timer(att, ms, fn) {
    const id = setTimeout(() => {
      att.timers.delete(id);
      if (!this.#stale(att)) fn();
    }, ms);
    att.timers.add(id);
    return id;
  }

  #teardown(att) {
    if (!att) return;
    att.final = true;
    for (const id of att.timers) clearTimeout(id);
    att.timers.clear();
    // Answered, failed, cancelled or replaced: this close must not resume.
    this.#drop(att);
  }

  async #begin() {
    this.#teardown(this.#attempt);
    const att = {
      timers: new Set(),
      ws: null,
      final: false, // no more events wanted (answered, failed or replaced)
      scanned: false,
      shown: false, // the QR code is on screen
      delivered: false, // "authenticated" was handled (Kc is opened once)
      gateways: [], // where the wait may go: gateway_url first
      gateway: 0, // index of the gateway the current connection goes to
      resumes: 0, // connections opened since one last worked (STABLE_MS)
      answered: false, // the current connection's gateway sent an event
      answeredAt: 0,
      deadline: 0, // Date.now() past which the ticket is surely expired
    };
    this.#attempt = att;
    this.#clearQr();
    this.#setState("loading", this.#messages.loading, false);
    try {
      let json;
      try {
        json = await this.#getTicket();
      } catch (e) {
        const text = this.#messages.ticket_unavailable;
        throw new AuthnetError("ticket_unavailable", text, { cause: e });
      }
      if (this.#stale(att)) return;
      att.ticket = checkTicketJson(json);
      att.gateways = gatewaysOf(att.ticket);
      // The page's own clock plus the TTL, not expires_at_unix_ms: the page's
      // clock may be off from the network's by minutes.
      att.deadline = Date.now() + att.ticket.ttl_seconds * 1000;
      let keyPair;
      let publicKey;
      try {
        ({ keyPair, publicKey } = await generateBrowserKey());
      } catch (e) {
        throw new AuthnetError("unsupported", this.#messages.unsupported, { cause: e });
      }
      att.keyPair = keyPair;
      att.publicKey = publicKey;
      att.xwing = this.#postQuantum ? await generateXWingKey() : null;
      if (this.#stale(att)) return;
      att.waitSecret = crypto.getRandomValues(new Uint8Array(WAIT_SECRET_BYTES));
      att.payload = buildPayload({
        ticket: att.ticket.ticket,
        browserKey: publicKey,
        passkeyAddress: att.ticket.passkey_address,
        pqKeyHash: att.xwing?.keyHash,
      });
    } catch (e) {
      if (!this.#stale(att)) this.#fail(att, "error", e, { fallbackCode: "ticket_unavailable" });
      return;
    }
    if (this.#stale(att)) return;
    this.#timer(att, this.#refreshFactor * att.ticket.ttl_seconds * 1000, () => {
      if (!att.scanned && !att.final) this.#begin();
    });
    this.#connect(att, 0);
  }

  // Open a connection to gateway `index` and send the hello: the same on every
  // connection of the attempt, so that a repeat resumes the wait at any node.
  #connect(att, index) {
    att.gateway = index;
    let ws;
    try {
      ws = new WebSocket(websocketUrl(att.gateways[index]));
    } catch {
      this.#lost(att);
      return;
    }
    att.ws = ws;
    att.answered = false;
    att.answerTimer = this.#timer(att, ANSWER_TIMEOUT_MS, () => {
      if (att.ws === ws && !att.answered) this.#lost(att);
    });
    ws.onopen = () => {
      const hello = {
        type: "hello",
        v: PROTOCOL_VERSION,
        ticket: att.ticket.ticket,
        browser_key: b64uEncode(att.publicKey),
        wait_secret: b64uEncode(att.waitSecret),
      };
      // The X-Wing key's registration: the QR code carries only its hash.
      if (att.xwing) hello.browser_pq_key = b64uEncode(att.xwing.publicKey);
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = (m) => {
      if (att.ws === ws && !att.final && !this.#stale(att)) this.#onEvent(att, m.data);
    };
    ws.onclose = () => {
      if (att.ws === ws && !att.final && !this.#stale(att)) this.#lost(att);
    };
  }

  // Close the attempt's connection without resuming (its handlers go first,
  // so its close event cannot call #lost).
  #drop(att) {
    if (att.answerTimer !== undefined) {
      clearTimeout(att.answerTimer);
      att.timers.delete(att.answerTimer);
      att.answerTimer = undefined;
    }
    const ws = att.ws;
    if (!ws) return;
    att.ws = null;
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (ws.readyState === WebSocket.CONNECTING || ws.readyState === WebSocket.OPEN) {
      ws.close(1000);
    }
  }

  // The connection broke (or never answered) before the outcome: resume on the
  // next gateway with the same hello, pausing after each full round, at most
  // RESUME_ATTEMPTS times and never past the ticket's expiry. The QR code and
  // the state on show stay as they are meanwhile.
  #lost(att) {
    this.#drop(att);
    if (att.answered && Date.now() - att.answeredAt >= STABLE_MS) att.resumes = 0;
    att.answered = false;
    if (att.resumes >= RESUME_ATTEMPTS) {
      const err = new AuthnetError("gateway_unavailable", this.#messages.gateway_unavailable);
      this.#fail(att, "error", err);
      return;
    }
    const left = att.deadline - Date.now();
    if (left <= 0) {
      this.#expired(att, new AuthnetError("ticket_expired", this.#messages.ticket_expired));
      return;
    }
    const n = att.gateways.length;
    const attempt = att.resumes;
    att.resumes += 1;
    const next = (att.gateway + 1) % n;
    if (attempt > 0 && attempt % n === 0) {
      const pause = Math.min(RESUME_PAUSE_MAX_MS, RESUME_PAUSE_MS * 2 ** (attempt / n - 1));
      this.#timer(att, Math.min(pause, left), () => this.#connect(att, next));
    } else {
      this.#connect(att, next);
    }
  }

  // The gateway answered this connection with an event: it works.
  #answered(att) {
    if (att.answered) return;
    att.answered = true;
    att.answeredAt = Date.now();
    clearTimeout(att.answerTimer);
    att.timers.delete(att.answerTimer);
    att.answerTimer = undefined;
  }

  #onEvent(att, data) {
    let ev = null;
    try {
      ev = JSON.parse(data);
    } catch {
      // not JSON: handled as an unexpected event below
    }
    const kind = ev && typeof ev === "object" ? ev.type : undefined;
    const msg = this.#messages;
    switch (kind) {
      case "waiting":
        // Also the first event of every resumed connection: it neither redraws
        // the QR code nor takes a "scanned" on show back.
        this.#answered(att);
        if (!att.shown) {
          att.shown = true;
          this.#showQr(att.payload);
          this.#setState("waiting", msg.waiting, false);
          this.#emit("waiting", { payload: att.payload, expiresAt: ev.expires_at });
        }
        return;
      case "scanned":
        this.#answered(att);
        if (!att.scanned) {
          att.scanned = true;
          this.#clearQr();
          this.#setState("scanned", att.viaAgent ? msg.agentWorking : msg.scanned, false);
          this.#emit("scanned", {});
        }
        return;
      case "authenticated":
        // Acknowledge receipt: only then does the gateway delete the sealed key
        // from the mailbox, so a connection that dies first leaves it there for
        // a resumed one. (Sent before opening: a key that does not open will
        // not open on a second delivery either.)
        this.#answered(att);
        try {
          att.ws?.send(JSON.stringify({ type: "ack" }));
        } catch {
          // already closed: the key stays in the mailbox until the ticket ends
        }
        // A repeat (a resumed connection whose gateway never saw the first
        // ack) is acknowledged, and that is all: Kc is opened and delivered once.
        if (att.delivered) return;
        att.delivered = true;
        this.#finish(att, ev);
        return;
      case "rejected": {
        const text = att.viaAgent ? msg.agentRejected : msg.ticket_rejected;
        this.#fail(att, "rejected", new AuthnetError("ticket_rejected", text), { statusText: text });
        return;
      }
      case "expired":
        this.#expired(att, new AuthnetError("ticket_expired", msg.ticket_expired));
        return;
      case "error": {
        const err = new AuthnetError(String(ev.code || "error"), String(ev.message || msg.error));
        // This node cannot serve the wait now; another may.
        if (RESUMABLE_CODES.has(err.code)) {
          this.#lost(att);
          return;
        }
        // A resumed connection learns of a finished ticket as an error.
        if (err.code === "ticket_rejected") this.#fail(att, "rejected", err);
        else if (err.code === "ticket_expired") this.#expired(att, err);
        else this.#fail(att, "error", err);
        return;
      }
      default:
        this.#fail(att, "error", new AuthnetError("malformed", "the gateway sent an odd event"));
    }
  }

  #expired(att, err) {
    if (att.scanned) {
      this.#fail(att, "expired", err, { extra: { scanned: true } });
      return;
    }
    // Nobody scanned it (the refresh timer was throttled, say): show a new code.
    this.#emit("expired", { code: err.code, message: err.message, scanned: false });
    this.#begin();
  }

  async #finish(att, ev) {
    this.#teardown(att);
    let kc = null;
    try {
      const { ticket, spid, auth_types: authTypes } = att.ticket;
      if (ev.kc === "browser") {
        // This page logged in with its own security key and derives Kc itself.
        if (!att.localKc) throw sealedKeyInvalid("the network says this page holds Kc; it does not");
        kc = await att.localKc;
      } else if (ev.sealed_kc !== undefined && ev.sealed_kc !== null) {
        kc = await openSealedKc(ev.sealed_kc, att.keyPair, ticket, spid, { xwing: att.xwing });
      } else if (typeof authTypes === "string" && authTypes.includes("c")) {
        // Only when the SP told the page (optional `auth_types`) that it asked for Kc.
        throw sealedKeyInvalid("no client key arrived though the SP asked for one");
      }
    } catch (e) {
      if (!this.#stale(att)) this.#fail(att, "error", e, { fallbackCode: "sealed_key_invalid" });
      return;
    }
    if (this.#stale(att)) return;
    att.keyPair = null;
    if (att.xwing) att.xwing.secretKey.fill(0);
    att.xwing = null;
    this.#done = true;
    this.#clearQr();
    this.#setState("authenticated", this.#messages.authenticated, false);
    const result = { ticket: att.ticket.ticket, kc };
    this.#emit("authenticated", result);
    this.#resolve(result);
  }

  // End the attempt, show why and the "Try again" button, and tell the app.
  #fail(att, state, error, { fallbackCode = "error", extra = {}, statusText = null } = {}) {
    this.#teardown(att);
    let err = error;
    if (!(error instanceof AuthnetError)) {
      const text = this.#messages[fallbackCode] || this.#messages.error;
      err = new AuthnetError(fallbackCode, text, { cause: error });
    }
    this.#clearQr();
    this.#setState(state, statusText || this.#messages[err.code] || err.message, true);
    this.#emit(state, { code: err.code, message: err.message, ...extra });
  }
}

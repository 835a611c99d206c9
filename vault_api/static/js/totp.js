// Time-based one-time passwords (RFC 6238) with WebCrypto HMAC, for the TOTP
// secrets of login items. An item's `totp` is an otpauth://totp/... URI or a
// bare base32 secret (docs/vault.md 7.3).
//
//     const otp = parseOtp(item.totp);             // {secret, algorithm, digits, period, ...}
//     const code = await totpCode(otp, Date.now());
//
// HMAC-SHA-1 is RFC 6238's default and what almost every service issues; it is
// used here only because the service chose it (HMAC-SHA-1 is not broken as a
// PRF), never for the vault's own cryptography.

const ALGORITHMS = { SHA1: "SHA-1", SHA256: "SHA-256", SHA512: "SHA-512" };
const B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

export class OtpError extends Error {
  constructor(message) {
    super(message);
    this.name = "OtpError";
    this.code = "otp_invalid";
  }
}

/** RFC 4648 base32: case, spaces and hyphens ignored, padding optional. */
export function base32Decode(text) {
  const clean = String(text).toUpperCase().replace(/[\s-]/g, "").replace(/=+$/, "");
  if (clean === "" || !/^[A-Z2-7]+$/.test(clean)) {
    throw new OtpError("the TOTP secret is not base32 (letters A-Z and digits 2-7)");
  }
  const out = new Uint8Array(Math.floor((clean.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let at = 0;
  for (const ch of clean) {
    value = (value << 5) | B32.indexOf(ch);
    bits += 5;
    if (bits >= 8) {
      out[at++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

/**
 * {secret (bytes), algorithm ("SHA1"|"SHA256"|"SHA512"), digits, period,
 * issuer, account} from an otpauth://totp URI or a bare base32 secret.
 */
export function parseOtp(value) {
  const text = String(value ?? "").trim();
  if (!/^otpauth:/i.test(text)) {
    return { secret: base32Decode(text), algorithm: "SHA1", digits: 6, period: 30, issuer: "", account: "" };
  }
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new OtpError("the otpauth URI does not parse");
  }
  // Non-special schemes keep "//totp/label" in the pathname.
  const path = url.pathname.replace(/^\/\//, "");
  const kind = (url.host || path.split("/")[0]).toLowerCase();
  if (kind !== "totp") throw new OtpError(`only time-based codes (totp) are supported, not ${kind || "?"}`);
  const label = decodeURIComponent(url.host ? path.replace(/^\//, "") : path.split("/").slice(1).join("/"));
  const params = url.searchParams;
  const algorithm = (params.get("algorithm") || "SHA1").toUpperCase();
  if (!(algorithm in ALGORITHMS)) throw new OtpError(`unsupported TOTP algorithm ${algorithm}`);
  const digits = Number(params.get("digits") || 6);
  if (![6, 7, 8].includes(digits)) throw new OtpError("TOTP codes have 6 to 8 digits");
  const period = Number(params.get("period") || 30);
  if (!Number.isInteger(period) || period < 1 || period > 3600) {
    throw new OtpError("the TOTP period must be 1 to 3600 seconds");
  }
  const [issuerPart, account] = label.includes(":") ? label.split(/:(.*)/s) : ["", label];
  return {
    secret: base32Decode(params.get("secret") || ""),
    algorithm,
    digits,
    period,
    issuer: params.get("issuer") || issuerPart.trim(),
    account: (account || "").trim(),
  };
}

/** HOTP (RFC 4226) value of `counter` (a non-negative safe integer) as a digit string. */
export async function hotp({ secret, algorithm = "SHA1", digits = 6 }, counter) {
  const key = await crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: ALGORITHMS[algorithm] }, false, [
    "sign",
  ]);
  const msg = new Uint8Array(8);
  let c = counter;
  for (let i = 7; i >= 0; i--) {
    msg[i] = c % 256;
    c = Math.floor(c / 256);
  }
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, msg));
  const offset = mac[mac.length - 1] & 0x0f;
  const binary =
    ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(binary % 10 ** digits).padStart(digits, "0");
}

/** The TOTP code at `timeMs` (milliseconds since the epoch). */
export async function totpCode(otp, timeMs) {
  return hotp(otp, Math.floor(Math.floor(timeMs / 1000) / otp.period));
}

/** Seconds until the code shown at `timeMs` changes. */
export function secondsLeft(otp, timeMs) {
  const s = Math.floor(timeMs / 1000);
  return otp.period - (s % otp.period);
}

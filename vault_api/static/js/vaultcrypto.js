// The vault's client-side cryptography in the browser: every client operation
// of docs/vault.md in WebCrypto, byte for byte what the Python reference
// (vault_api/crypto, same names in snake_case) makes and opens. Pure
// functions over bytes and CryptoKeys: no DOM, no fetch, no storage.
//
//     import * as vc from "/js/vaultcrypto.js";
//     vc.useHpke(await import(`${gatewayUrl}/v1/hpke.js`));    // authnet's HPKE, once
//     const skU = await vc.openSlot(kc, slot, { userId, keyId, keypairVersion, publicKey });
//     const recipient = { privateKey: skU, publicKey };
//     const ks = await vc.openSafeKey(sealed, recipient, { safeId, userId, generation });
//     const item = await vc.decryptItem(ks, ct, { safeId, itemId, folderId, version, generation });
//
// Keys live as CryptoKeys: Kc (authnet's ClientKey) and the private key are
// non-extractable; safe keys are non-extractable AES-GCM keys, raw only while
// an admin seals them to members. Every failure to open throws a subclass of
// VaultCryptoError whose `code` is the Python class's (item_invalid, ...).
// Ids and ciphertexts are Uint8Array; base64url only at the edges (b64uEncode/Decode).
//
// `nonce` and `ikmE` options exist only to reproduce tests/vectors/vault-v1.json;
// real callers never pass them (every box then gets a fresh random nonce).

export * from "./crypto/errors.js";
export {
  ID_BYTES,
  KEY_ID_BYTES,
  asBytes,
  b64uDecode,
  b64uEncode,
  checkId,
  concat,
  equalBytes,
  fromHex,
  newId,
  randomBytes,
  short,
  toHex,
  transcript,
  u32,
  u64,
  u8,
} from "./crypto/encoding.js";
export {
  KEY_BYTES,
  LABELS,
  NONCE_BYTES,
  OVERHEAD,
  SAFE_KEY_USAGES,
  TAG_BYTES,
  openBox,
  seal,
} from "./crypto/aead.js";
export {
  FINGERPRINT_BYTES,
  PKCS8_BYTES,
  PUBLIC_KEY_BYTES,
  SLOT_BYTES,
  fingerprint,
  generateKeyPair,
  importKek,
  makeSlot,
  openSlot,
  publicKeyBytes,
  slotAad,
  slotKek,
} from "./crypto/userkeys.js";
export {
  ENC_BYTES,
  PREVIOUS_KEY_BYTES,
  SAFE_KEY_BYTES,
  SEALED_BYTES,
  importSafeKey,
  keyChain,
  newSafeKey,
  openSafeKey,
  previousKeyAad,
  safeKeyInfo,
  sealSafeKey,
  unwrapPreviousKey,
  useHpke,
  wrapPreviousKey,
} from "./crypto/safekeys.js";
export {
  ITEM_TYPES,
  MAX_PLAINTEXT_BYTES,
  PAD_BLOCK,
  SCHEMA_VERSION,
  checkItem,
  decodeJson,
  decryptFolderName,
  decryptItem,
  decryptSafeName,
  encodeJson,
  encryptFolderName,
  encryptItem,
  encryptSafeName,
  folderAad,
  itemAad,
  pad,
  safeNameAad,
} from "./crypto/records.js";
export {
  CHUNK_BOX_BYTES,
  CHUNK_BYTES,
  FILE_KEY_BYTES,
  FileDecryptor,
  inOrder,
  WRAPPED_KEY_BYTES,
  chunkAad,
  chunkCount,
  ciphertextSize,
  CURRENT,
  FORMATS,
  V1,
  V2,
  decryptChunk,
  decryptFile,
  encryptChunk,
  encryptFile,
  fileKeyAad,
  formatFor,
  newFileKey,
  plaintextSize,
  sealChunkParts,
  unwrapFileKey,
  wrapFileKey,
} from "./crypto/files.js";
export {
  planRotation,
  restageFile,
  restageFolder,
  restageItem,
  sealForMembers,
} from "./crypto/rotation.js";
export { listedFileIds, reencryptItem, rewrapFileKey } from "./crypto/moves.js";

// What the vault's client-side crypto refuses: one small class per failure,
// each with the stable `code` of its Python twin in vault_api/crypto/errors.py
// (docs/vault.md section 9). Messages name the object and its context (ids,
// versions, generations: public facts), never a key or a plaintext.
//
//     try { await decryptItem(ks, ct, ctx); }
//     catch (e) { if (e instanceof CiphertextInvalid) show(e.code, e.message); else throw e; }
//
// AES-GCM cannot tell a modified ciphertext from one moved to another context
// (both fail the tag), so the messages name both causes. Nothing here lets a
// bare DOMException (OperationError) escape.

/** Base of every error the vault's client crypto raises on purpose. */
export class VaultCryptoError extends Error {
  static code = "vault_crypto";

  constructor(message) {
    super(message);
    this.name = new.target.name;
    this.code = new.target.code;
  }
}

/** A ciphertext or key has the wrong length or shape to even try opening. */
export class MalformedCiphertext extends VaultCryptoError {
  static code = "malformed_ciphertext";
}

/** An authenticated ciphertext did not open (the base of the kinds below). */
export class CiphertextInvalid extends VaultCryptoError {
  static code = "ciphertext_invalid";
}

/** A key slot did not open with this token's Kc: another token's or account's
 * slot, a modified slot, or a substituted Kc. Never a reason to make new keys. */
export class SlotInvalid extends CiphertextInvalid {
  static code = "slot_invalid";
}

/** A slot opened, but the private key inside is not the account's public key. */
export class KeyMismatch extends CiphertextInvalid {
  static code = "key_mismatch";
}

/** A member's sealed safe key did not open with the member's private key. */
export class SafeKeyInvalid extends CiphertextInvalid {
  static code = "safe_key_invalid";
}

/** A link of a safe's key chain did not open under the newer key. */
export class PreviousKeyInvalid extends CiphertextInvalid {
  static code = "previous_key_invalid";
}

export class SafeNameInvalid extends CiphertextInvalid {
  static code = "safe_name_invalid";
}

export class FolderInvalid extends CiphertextInvalid {
  static code = "folder_invalid";
}

export class ItemInvalid extends CiphertextInvalid {
  static code = "item_invalid";
}

export class FileKeyInvalid extends CiphertextInvalid {
  static code = "file_key_invalid";
}

/** A chunk of a file body did not open at its position. */
export class FileChunkInvalid extends CiphertextInvalid {
  static code = "file_chunk_invalid";
}

/** A file body ended before its last chunk (or has bytes after it). */
export class FileTruncated extends CiphertextInvalid {
  static code = "file_truncated";
}

/** A record opened but its plaintext is not the JSON object the format says. */
export class ContentInvalid extends VaultCryptoError {
  static code = "content_invalid";
}

/** A passphrase wrap did not open: a wrong passphrase (the hardener counted it), or a modified wrap. */
export class PassphraseInvalid extends CiphertextInvalid {
  static code = "passphrase_invalid";
}

/** The recovery slot did not open: a wrong recovery passphrase or code. */
export class RecoveryInvalid extends CiphertextInvalid {
  static code = "recovery_invalid";
}

/** A success key sealed to the user did not open with the user's private key. */
export class SuccessKeyInvalid extends CiphertextInvalid {
  static code = "success_key_invalid";
}

/** A device's bypass wrap did not open with DKEK and this token's factor T. */
export class DeviceWrapInvalid extends CiphertextInvalid {
  static code = "device_wrap_invalid";
}

/** The key-encryption key sealed to a device did not open with its device key. */
export class DeviceKekInvalid extends CiphertextInvalid {
  static code = "device_kek_invalid";
}

/** A device's registration or login signature does not verify. */
export class DeviceProofInvalid extends VaultCryptoError {
  static code = "device_proof_invalid";
}

/** A one-time link's blob did not open with the key in the link. */
export class LinkInvalid extends CiphertextInvalid {
  static code = "link_invalid";
}

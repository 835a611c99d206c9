"""What the client-side crypto refuses, one small class per failure.

Every AEAD failure is translated here from `cryptography`'s bare `InvalidTag`
into an error that names the object and its context, so a person (or a test)
can tell which record did not open and why it may not have:

    ItemInvalid: item 3fA2bC9d of safe 9a1B0c2D (version 4, key generation 2)
    does not open: its ciphertext was modified, or it was made for another item,
    safe, folder, version or key generation

AES-GCM cannot tell a modified ciphertext from one moved to another context
(both fail the tag), so the message names both causes. Messages carry ids,
versions and generations (public facts), never a key or a plaintext.
"""

from __future__ import annotations

from typing import ClassVar


class VaultCryptoError(Exception):
    """Base of every error the vault's client crypto raises on purpose."""

    code: ClassVar[str] = "vault_crypto"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class MalformedCiphertext(VaultCryptoError):
    """A ciphertext or key has the wrong length or shape to even try opening."""

    code = "malformed_ciphertext"


class CiphertextInvalid(VaultCryptoError):
    """An authenticated ciphertext did not open (the base of the kinds below)."""

    code = "ciphertext_invalid"


class SlotInvalid(CiphertextInvalid):
    """A key slot did not open with this token's Kc: another token's slot, a
    substituted Kc (see docs/threat-model.md, first use), or a modified slot."""

    code = "slot_invalid"


class KeyMismatch(CiphertextInvalid):
    """A slot opened, but the private key inside is not the account's public key."""

    code = "key_mismatch"


class SafeKeyInvalid(CiphertextInvalid):
    """A member's sealed safe key did not open with the member's private key."""

    code = "safe_key_invalid"


class PreviousKeyInvalid(CiphertextInvalid):
    """A link of a safe's key chain did not open under the newer key."""

    code = "previous_key_invalid"


class SafeNameInvalid(CiphertextInvalid):
    code = "safe_name_invalid"


class FolderInvalid(CiphertextInvalid):
    code = "folder_invalid"


class ItemInvalid(CiphertextInvalid):
    code = "item_invalid"


class FileKeyInvalid(CiphertextInvalid):
    code = "file_key_invalid"


class FileChunkInvalid(CiphertextInvalid):
    """A chunk of a file body did not open at its position."""

    code = "file_chunk_invalid"


class FileTruncated(CiphertextInvalid):
    """A file body ended before its last chunk (or has bytes after it)."""

    code = "file_truncated"


class ContentInvalid(VaultCryptoError):
    """A record opened but its plaintext is not the JSON object the format says."""

    code = "content_invalid"


class PassphraseInvalid(CiphertextInvalid):
    """A passphrase wrap did not open: a wrong passphrase (the hardener counted
    the attempt), or a wrap modified or moved to other parameters."""

    code = "passphrase_invalid"


class RecoveryInvalid(CiphertextInvalid):
    """The recovery slot did not open: a wrong recovery passphrase or code."""

    code = "recovery_invalid"


class SuccessKeyInvalid(CiphertextInvalid):
    """A success key sealed to the user did not open with the user's private key."""

    code = "success_key_invalid"


class DeviceWrapInvalid(CiphertextInvalid):
    """A device's bypass wrap did not open with DKEK and this token's factor T."""

    code = "device_wrap_invalid"


class DeviceKekInvalid(CiphertextInvalid):
    """The key-encryption key sealed to a device did not open with its device key."""

    code = "device_kek_invalid"


class DeviceProofInvalid(VaultCryptoError):
    """A device's registration or login signature does not verify."""

    code = "device_proof_invalid"


class LinkInvalid(CiphertextInvalid):
    """A one-time link's blob did not open with the key in the link."""

    code = "link_invalid"

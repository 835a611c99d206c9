"""Directed identity: what each SP learns about a user and a token.

    puid   = base64url(HMAC-SHA256(K_puid,   "authnet/v1 puid"   || 0 || user_id  || SPID)[:16])
    key_id = base64url(HMAC-SHA256(K_keyid,  "authnet/v1 key id" || 0 || token_id || SPID)[:16])

K_puid and K_keyid are HKDF-derived from the network master secret, which
lives in its own file, apart from the database: a stolen database alone
cannot recompute any SP's PUIDs, so it cannot link them to accounts. Without
the key, PUIDs of one account at two SPs are independent random-looking
strings (HMAC is a PRF), so SPs cannot link users by comparing them.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authnet.protocol import labels
from authnet.protocol.encoding import b64u_encode

MASTER_SECRET_BYTES = 32
OUTPUT_BYTES = 16


def _hkdf(master: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=labels.NETWORK_SALT, info=info).derive(
        master
    )


@dataclass(frozen=True)
class DirectedIdentity:
    _puid_key: bytes = field(repr=False)
    _key_id_key: bytes = field(repr=False)

    @classmethod
    def from_master(cls, master: bytes) -> DirectedIdentity:
        if len(master) != MASTER_SECRET_BYTES:
            raise ValueError("network master secret must be 32 bytes")
        return cls(_hkdf(master, labels.PUID_KEY), _hkdf(master, labels.KEY_ID_KEY))

    @staticmethod
    def _prf(key: bytes, label: bytes, a: bytes, spid: bytes) -> str:
        # Fixed lengths keep the concatenation unambiguous.
        if len(a) != 16 or len(spid) != 16:
            raise ValueError("ids and SPIDs are 16 bytes")
        mac = hmac.new(key, label + b"\x00" + a + spid, hashlib.sha256).digest()
        return b64u_encode(mac[:OUTPUT_BYTES])

    def puid(self, user_id: bytes, spid: bytes) -> str:
        return self._prf(self._puid_key, labels.PUID, user_id, spid)

    def key_id(self, token_id: bytes, spid: bytes) -> str:
        return self._prf(self._key_id_key, labels.KEY_ID, token_id, spid)

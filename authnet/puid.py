"""Directed identity: what each SP learns about a user and a token.

    puid   = base64url(HMAC-SHA256(K_puid,   "authnet/v1 puid"   || 0 || user_id  || SPID)[:16])
    key_id = base64url(HMAC-SHA256(K_keyid,  "authnet/v1 key id" || 0 || token_id || SPID)[:16])

    renewed ticket = "at1_" || base64url(HMAC-SHA256(K_renew, "authnet/v1 renewed ticket"
                                 || 0 || old ticket hash || request digest)[:16])

K_puid, K_keyid and K_renew are HKDF-derived from the network master secret, which
lives in its own file, apart from the database: a stolen database alone
cannot recompute any SP's PUIDs, so it cannot link them to accounts. Without
the key, PUIDs of one account at two SPs are independent random-looking
strings (HMAC is a PRF), so SPs cannot link users by comparing them. K_renew
makes PutTicket's new ticket a function of the old one and the request's id,
so every node answers a retried PutTicket with the same ticket, which nobody
without the key can predict.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from authnet.protocol import labels
from authnet.protocol.encoding import b64u_encode
from authnet.protocol.ids import TICKET_PREFIX

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
    _renew_key: bytes = field(repr=False)

    @classmethod
    def from_master(cls, master: bytes) -> DirectedIdentity:
        if len(master) != MASTER_SECRET_BYTES:
            raise ValueError("network master secret must be 32 bytes")
        return cls(
            _hkdf(master, labels.PUID_KEY),
            _hkdf(master, labels.KEY_ID_KEY),
            _hkdf(master, labels.RENEW_KEY),
        )

    def renewed_ticket(self, old_th: bytes, request_digest: bytes) -> str:
        """PutTicket's new ticket for the old ticket's hash and the request's id digest."""
        if len(old_th) != 32 or len(request_digest) != 32:
            raise ValueError("ticket hashes and request digests are 32 bytes")
        data = labels.RENEWED_TICKET + b"\x00" + old_th + request_digest
        mac = hmac.new(self._renew_key, data, hashlib.sha256).digest()
        return TICKET_PREFIX + b64u_encode(mac[:OUTPUT_BYTES])

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

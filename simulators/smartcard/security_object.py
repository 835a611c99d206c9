"""The PIV Security Object (SP 800-73-4 part 1, data object 5FC106, container
9000): the issuer's signature over the hashes of the card's other data objects,
as an ICAO Doc 9303 LDS Security Object.

Its value is three TLVs:

- BA, the mapping of data group numbers to container IDs: three bytes per
  covered object, the DG number then the container ID (SP 800-73-4 part 1
  appendix A, table "PIV data containers"), most significant byte first;
- BB, a CMS SignedData (issuer.py) encapsulating the DER LDSSecurityObject
  (ICAO Doc 9303 part 10 §4.6.2.3):

      LDSSecurityObject ::= SEQUENCE {
          version             INTEGER (v0),
          hashAlgorithm       AlgorithmIdentifier (id-sha256, no parameters),
          dataGroupHashValues SEQUENCE SIZE (2..16) OF
              DataGroupHash ::= SEQUENCE {
                  dataGroupNumber    INTEGER (1..16),
                  dataGroupHashValue OCTET STRING } }

- FE, the empty error detection code.

What it covers: SP 800-73-4 requires the unsigned objects (Printed Information)
and recommends every PIV data object except the X.509 certificates and the
Secure Messaging certificate signer. So: CCC, CHUID, fingerprints, facial
image, printed information, Discovery object, key history, iris images,
biometric information templates group template and pairing code, those of them
the card holds, each under a fixed DG number (the spec leaves the numbering to
the issuer). A hash is the SHA-256 of the object's value: the content of its
53 template (for the Discovery object and the BIT group template, of their 7E
and 7F61 templates), i.e. what GET DATA returns inside that first TLV.

The card keeps it current: whenever a covered object is written (PUT DATA,
RESET), it is rebuilt and re-signed by the card's content signer, the key that
signed its CHUID. A card whose CHUID an issuer replaced (a CHUID that does not
carry the card's signer certificate) has its Security Object left as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from . import der
from .issuer import ID_SHA256, security_object_signature
from .state import CardState, ContentSigner
from .tlv import tlv

__all__ = [
    "CONTAINER_IDS",
    "COVERED",
    "OBJ_SECURITY",
    "lds_security_object",
    "refresh",
    "security_object",
]

OBJ_SECURITY = 0x5FC106
_OBJ_CHUID = 0x5FC102

# SP 800-73-4 part 1 appendix A: BER-TLV tag -> ContainerID.
CONTAINER_IDS: dict[int, int] = {
    0x5FC107: 0xDB00,  # Card Capability Container
    0x5FC102: 0x3000,  # CHUID
    0x5FC105: 0x0101,  # X.509 certificate for PIV Authentication (9A)
    0x5FC103: 0x6010,  # Cardholder fingerprints
    0x5FC106: 0x9000,  # Security Object
    0x5FC108: 0x6030,  # Cardholder facial image
    0x5FC101: 0x0500,  # X.509 certificate for Card Authentication (9E)
    0x5FC10A: 0x0100,  # X.509 certificate for Digital Signature (9C)
    0x5FC10B: 0x0102,  # X.509 certificate for Key Management (9D)
    0x5FC109: 0x3001,  # Printed information
    0x7E: 0x6050,  # Discovery object
    0x5FC10C: 0x6060,  # Key history object
    **{0x5FC10D + i: 0x1001 + i for i in range(20)},  # retired key management certs
    0x5FC121: 0x1015,  # Cardholder iris images
    0x7F61: 0x1016,  # Biometric information templates group template
    0x5FC122: 0x1017,  # Secure Messaging certificate signer
    0x5FC123: 0x1018,  # Pairing code reference data container
}

# DG number -> tag of the objects the Security Object covers (when present).
COVERED: dict[int, int] = {
    1: 0x5FC107,  # CCC
    2: 0x5FC102,  # CHUID
    3: 0x5FC103,  # fingerprints
    4: 0x5FC108,  # facial image
    5: 0x5FC109,  # printed information
    6: 0x7E,  # Discovery object
    7: 0x5FC10C,  # key history
    8: 0x5FC121,  # iris images
    9: 0x7F61,  # BIT group template
    10: 0x5FC123,  # pairing code
}
COVERED_TAGS = frozenset(COVERED.values())


def lds_security_object(hashes: Mapping[int, bytes]) -> bytes:
    """The DER LDSSecurityObject (v0, SHA-256) for {DG number: SHA-256 hash}."""
    if not 2 <= len(hashes) <= 16:
        raise ValueError("an LDSSecurityObject holds 2 to 16 data group hashes")
    groups = [
        der.sequence(der.integer(dg), der.octet_string(digest))
        for dg, digest in sorted(hashes.items())
    ]
    return der.sequence(der.integer(0), der.sequence(der.oid(ID_SHA256)), der.sequence(*groups))


def security_object(objects: Mapping[int, bytes], signer: ContentSigner) -> bytes | None:
    """The value of 5FC106 over the covered objects in `objects` (tag -> value),
    or None when fewer than two are present (an LDSSecurityObject needs two)."""
    present = {dg: tag for dg, tag in COVERED.items() if tag in objects}
    if len(present) < 2:
        return None
    mapping = b"".join(
        bytes([dg]) + CONTAINER_IDS[tag].to_bytes(2, "big") for dg, tag in present.items()
    )
    hashes = {dg: hashlib.sha256(objects[tag]).digest() for dg, tag in present.items()}
    signed = security_object_signature(lds_security_object(hashes), signer)
    return tlv(0xBA, mapping) + tlv(0xBB, signed) + tlv(0xFE)


def refresh(state: CardState) -> None:
    """Rebuild the card's Security Object after a covered object changed, if the
    card's own content signer signed its CHUID (else leave 5FC106 alone)."""
    signer = state.content_signer
    chuid = state.objects.get(_OBJ_CHUID)
    if signer is None or chuid is None or signer.certificate not in chuid:
        return
    value = security_object(state.objects, signer)
    if value is None:
        state.objects.pop(OBJ_SECURITY, None)
    else:
        state.objects[OBJ_SECURITY] = value

"""The card issuer's signature on the CHUID (SP 800-73-4 part 1 §3.1.2, FIPS 201-3
§4.1.4.1): what a PIV issuer writes into tag 3E at personalization.

The Issuer Asymmetric Signature is a CMS SignedData (RFC 5652) over the CHUID's
TLVs before it (FASC-N, GUID, expiry: everything but 3E and the FE error
detection code), with the content detached: eContentType
id-PIV-CHUIDSecurityObject, one certificate (the issuer's content signing
certificate, extended key usage id-PIV-content-signing), and one SignerInfo
whose signed attributes are content type, message digest and pivSigner-DN (the
signer certificate's subject), signed with ECDSA P-256 / SHA-256.

A virtual card has no real issuer: each new card is signed by a throwaway
issuer key, whose certificate travels in the signature. That is enough for
middleware that checks the signature against the certificate it carries
(`openssl cms -verify -noverify`); no relying party would trust the issuer.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from .tlv import tlv

__all__ = ["ID_PIV_CHUID_SECURITY_OBJECT", "ID_PIV_CONTENT_SIGNING", "chuid_signature"]

ID_PIV_CHUID_SECURITY_OBJECT = "2.16.840.1.101.3.6.1"
ID_PIV_SIGNER_DN = "2.16.840.1.101.3.6.5"
ID_PIV_CONTENT_SIGNING = "2.16.840.1.101.3.6.7"
_ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_ID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_ID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
_ID_SHA256 = "2.16.840.1.101.3.4.2.1"
_ID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"


def _oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body += bytes(reversed(chunk))
    return tlv(0x06, bytes(body))


def _seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def _set_of(*parts: bytes) -> bytes:
    return tlv(0x31, b"".join(sorted(parts)))  # DER: SET OF in encoding order


def _integer(n: int) -> bytes:
    body = n.to_bytes(n.bit_length() // 8 + 1, "big")  # a leading 0 keeps it positive
    return tlv(0x02, body)


def _content_signer(
    now: dt.datetime,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "authnet virtual card issuer"),
            x509.NameAttribute(NameOID.COMMON_NAME, "PIV content signer (throwaway)"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ObjectIdentifier(ID_PIV_CONTENT_SIGNING)]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def chuid_signature(signed_content: bytes) -> bytes:
    """The value of CHUID tag 3E for `signed_content` (the CHUID's TLVs before 3E)."""
    key, cert = _content_signer(dt.datetime.now(dt.UTC))
    subject = cert.subject.public_bytes()
    sha256 = _seq(_oid(_ID_SHA256))
    attributes = [
        _seq(_oid(_ID_CONTENT_TYPE), _set_of(_oid(ID_PIV_CHUID_SECURITY_OBJECT))),
        _seq(
            _oid(_ID_MESSAGE_DIGEST),
            _set_of(tlv(0x04, hashlib.sha256(signed_content).digest())),
        ),
        _seq(_oid(ID_PIV_SIGNER_DN), _set_of(subject)),
    ]
    signed_attrs = _set_of(*attributes)  # what is signed: the SET, tagged 31
    signature = key.sign(signed_attrs, ec.ECDSA(hashes.SHA256()))
    signer_info = _seq(
        _integer(1),  # version 1: issuerAndSerialNumber
        _seq(cert.issuer.public_bytes(), _integer(cert.serial_number)),
        sha256,
        b"\xa0" + signed_attrs[1:],  # [0] IMPLICIT SET OF Attribute
        _seq(_oid(_ID_ECDSA_SHA256)),
        tlv(0x04, signature),
    )
    signed_data = _seq(
        _integer(3),  # version 3: the encapsulated content is not id-data
        _set_of(sha256),
        _seq(_oid(ID_PIV_CHUID_SECURITY_OBJECT)),  # eContent absent: detached
        tlv(0xA0, cert.public_bytes(serialization.Encoding.DER)),
        _set_of(signer_info),
    )
    return _seq(_oid(_ID_SIGNED_DATA), tlv(0xA0, signed_data))

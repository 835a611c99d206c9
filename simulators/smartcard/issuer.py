"""The card issuer's signatures: on the CHUID (SP 800-73-4 part 1 §3.1.2, FIPS
201-3 §4.1.4.1), what a PIV issuer writes into tag 3E at personalization, and on
the Security Object (security_object.py), by the same content signing key.

The Issuer Asymmetric Signature is a CMS SignedData (RFC 5652) over the CHUID's
TLVs before it (FASC-N, GUID, expiry: everything but 3E and the FE error
detection code), with the content detached: eContentType
id-PIV-CHUIDSecurityObject, one certificate (the issuer's content signing
certificate, extended key usage id-PIV-content-signing), and one SignerInfo
whose signed attributes are content type, message digest and pivSigner-DN (the
signer certificate's subject), signed with ECDSA P-256 / SHA-256.

The Security Object's tag BB is a CMS SignedData as ICAO Doc 9303 part 10
§4.6.2 has it for the Document Security Object: the LDSSecurityObject
encapsulated (eContent present, eContentType id-icao-mrtd-security-
ldsSecurityObject), signed attributes content type and message digest, one
SignerInfo (issuerAndSerialNumber, ECDSA P-256 / SHA-256), and, as SP 800-73-4
part 1 says, no certificate: the content signer's is in the CHUID.

A virtual card has no real issuer: each new card gets a throwaway content
signer (`new_content_signer`), kept in its state so that the card can re-sign
its Security Object when a covered object changes. That is enough for
middleware that checks the signature against the CHUID's certificate
(`openssl cms -verify -noverify`); no relying party would trust the issuer.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from . import der
from .state import ContentSigner

__all__ = [
    "ID_ICAO_LDS_SECURITY_OBJECT",
    "ID_PIV_CHUID_SECURITY_OBJECT",
    "ID_PIV_CONTENT_SIGNING",
    "chuid_signature",
    "new_content_signer",
    "security_object_signature",
]

ID_PIV_CHUID_SECURITY_OBJECT = "2.16.840.1.101.3.6.1"
ID_PIV_SIGNER_DN = "2.16.840.1.101.3.6.5"
ID_PIV_CONTENT_SIGNING = "2.16.840.1.101.3.6.7"
ID_ICAO_LDS_SECURITY_OBJECT = "2.23.136.1.1.1"  # id-icao-mrtd-security-ldsSecurityObject
_ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
_ID_CONTENT_TYPE = "1.2.840.113549.1.9.3"
_ID_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
ID_SHA256 = "2.16.840.1.101.3.4.2.1"
_ID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"


def new_content_signer(now: dt.datetime | None = None) -> ContentSigner:
    """A throwaway issuer content signing key and its self-signed certificate
    (extended key usage id-PIV-content-signing)."""
    now = now or dt.datetime.now(dt.UTC)
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
    return ContentSigner(
        key.private_numbers().private_value.to_bytes(32, "big"),
        cert.public_bytes(serialization.Encoding.DER),
    )


def _signed_data(
    signer: ContentSigner,
    content_type: str,
    content: bytes,
    *,
    encapsulate: bool,
    with_certificate: bool,
    attributes: tuple[bytes, ...] = (),
) -> bytes:
    """ContentInfo(SignedData) over `content`, signed attributes content type,
    message digest and `attributes`, one SignerInfo by `signer`."""
    cert = signer.load_certificate()
    sha256 = der.sequence(der.oid(ID_SHA256))
    signed_attrs = der.set_of(  # what is signed: the SET OF, tagged 31
        der.sequence(der.oid(_ID_CONTENT_TYPE), der.set_of(der.oid(content_type))),
        der.sequence(
            der.oid(_ID_MESSAGE_DIGEST),
            der.set_of(der.octet_string(hashlib.sha256(content).digest())),
        ),
        *attributes,
    )
    signature = signer.private_key().sign(signed_attrs, ec.ECDSA(hashes.SHA256()))
    signer_info = der.sequence(
        der.integer(1),  # version 1: issuerAndSerialNumber
        der.sequence(cert.issuer.public_bytes(), der.integer(cert.serial_number)),
        sha256,
        b"\xa0" + signed_attrs[1:],  # [0] IMPLICIT SET OF Attribute
        der.sequence(der.oid(_ID_ECDSA_SHA256)),
        der.octet_string(signature),
    )
    encap = der.oid(content_type)
    if encapsulate:
        encap += der.context(0, der.octet_string(content))  # eContent [0] EXPLICIT
    signed_data = der.sequence(
        der.integer(3),  # version 3: the encapsulated content is not id-data
        der.set_of(sha256),
        der.sequence(encap),
        der.context(0, signer.certificate) if with_certificate else b"",  # [0] IMPLICIT
        der.set_of(signer_info),
    )
    return der.sequence(der.oid(_ID_SIGNED_DATA), der.context(0, signed_data))


def chuid_signature(signed_content: bytes, signer: ContentSigner) -> bytes:
    """The value of CHUID tag 3E for `signed_content` (the CHUID's TLVs before 3E):
    content detached, the signer's certificate included, pivSigner-DN attribute."""
    subject = signer.load_certificate().subject.public_bytes()
    return _signed_data(
        signer,
        ID_PIV_CHUID_SECURITY_OBJECT,
        signed_content,
        encapsulate=False,
        with_certificate=True,
        attributes=(der.sequence(der.oid(ID_PIV_SIGNER_DN), der.set_of(subject)),),
    )


def security_object_signature(lds_security_object: bytes, signer: ContentSigner) -> bytes:
    """The value of Security Object tag BB: the DER LDSSecurityObject, encapsulated
    and signed; no certificate (SP 800-73-4 part 1: it is in the CHUID)."""
    return _signed_data(
        signer,
        ID_ICAO_LDS_SECURITY_OBJECT,
        lds_security_object,
        encapsulate=True,
        with_certificate=False,
    )

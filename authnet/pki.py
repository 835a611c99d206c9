"""The network's certificate authority: its own certificate, the network's TLS
server certificate, and the client certificates that identify service providers.

All keys are ECDSA P-256. An SP certificate carries the SPID as a SAN URI
(`urn:authnet:sp:<spid hex>`) and the clientAuth extended key usage; the
network identifies an SP by the SHA-256 fingerprint of the exact certificate,
looked up in the directory, so a certificate can be revoked by deleting trust
in that fingerprint alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from authnet.errors import MalformedInput

SP_URI_PREFIX = "urn:authnet:sp:"
CA_YEARS = 10
SERVER_DAYS = 825
SP_DAYS = 397


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def fingerprint(cert: x509.Certificate) -> bytes:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()


def write_private(path: Path, data: bytes) -> None:
    """Write a secret file readable by its owner only (created 0600, never widened)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ski(key: ec.EllipticCurvePublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key)


@dataclass(frozen=True)
class CertificateAuthority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def create(cls, network_name: str) -> CertificateAuthority:
        key = new_key()
        now = _now()
        cert = (
            x509.CertificateBuilder()
            .subject_name(_name(f"{network_name} CA"))
            .issuer_name(_name(f"{network_name} CA"))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(_ski(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(key=key, cert=cert)

    @classmethod
    def load(cls, key_path: Path, cert_path: Path) -> CertificateAuthority:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError(f"{key_path} is not an EC private key")
        return cls(key=key, cert=x509.load_pem_x509_certificate(cert_path.read_bytes()))

    def save(self, key_path: Path, cert_path: Path) -> None:
        write_private(key_path, key_pem(self.key))
        cert_path.write_bytes(cert_pem(self.cert))

    def _leaf(
        self, subject: x509.Name, public_key: ec.EllipticCurvePublicKey, days: int
    ) -> x509.CertificateBuilder:
        now = _now()
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
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
            .add_extension(_ski(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )

    def issue_server(
        self, hostnames: list[str], key: ec.EllipticCurvePrivateKey | None = None
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """TLS server certificate for the network's gRPC ports (and gateway)."""
        key = key or new_key()
        names: list[x509.GeneralName] = []
        for h in hostnames:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                names.append(x509.DNSName(h))
        cert = (
            self._leaf(_name(hostnames[0]), key.public_key(), SERVER_DAYS)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return key, cert

    def issue_sp(
        self, *, spid: bytes, name: str, public_key: ec.EllipticCurvePublicKey
    ) -> x509.Certificate:
        """Client certificate for a service provider."""
        return (
            self._leaf(_name(name), public_key, SP_DAYS)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.UniformResourceIdentifier(SP_URI_PREFIX + spid.hex())]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )


def public_key_from_csr(csr_pem: bytes) -> ec.EllipticCurvePublicKey:
    """The P-256 key of an SP's certificate signing request (its signature checked)."""
    try:
        csr = x509.load_pem_x509_csr(csr_pem)
    except ValueError:
        raise MalformedInput("not a PEM certificate signing request") from None
    if not csr.is_signature_valid:
        raise MalformedInput("the CSR's signature does not verify")
    key = csr.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise MalformedInput("SP keys must be ECDSA P-256")
    return key


def spid_of(cert: x509.Certificate) -> bytes | None:
    """The SPID named in an SP certificate's SAN, if any."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(SP_URI_PREFIX):
            try:
                return bytes.fromhex(uri[len(SP_URI_PREFIX) :])
            except ValueError:
                return None
    return None

"""The network's data directory: created on first start, reused afterwards.

network.key          32-byte master secret (PUID and key-id PRF keys); 0600
ca.key, ca.crt       the network CA (issues the server and SP certificates)
server.key, .crt     TLS certificate of the SP, PassKey and gateway ports
authnet.db           the directory (SQLite), migrated with Alembic
authnet.log          the log (no tickets, keys or signatures are ever logged)
sps/<name>/          credentials handed to each registered SP
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from authnet import pki
from authnet.config import ConfigError
from authnet.puid import MASTER_SECRET_BYTES, DirectedIdentity


@dataclass(frozen=True)
class ServerIdentity:
    key_pem: bytes
    cert_pem: bytes
    ca_pem: bytes


class DataDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def master_secret_path(self) -> Path:
        return self.path / "network.key"

    @property
    def ca_key(self) -> Path:
        return self.path / "ca.key"

    @property
    def ca_cert(self) -> Path:
        return self.path / "ca.crt"

    @property
    def server_key(self) -> Path:
        return self.path / "server.key"

    @property
    def server_cert(self) -> Path:
        return self.path / "server.crt"

    def sp_dir(self, name: str) -> Path:
        return self.path / "sps" / name

    def ensure(self, *, network_name: str, hostnames: list[str]) -> list[str]:
        """Create whatever is missing; return what was created, for the operator."""
        created: list[str] = []
        self.path.mkdir(parents=True, exist_ok=True)
        self.path.chmod(0o700)
        if not self.master_secret_path.exists():
            pki.write_private(self.master_secret_path, secrets.token_bytes(MASTER_SECRET_BYTES))
            created.append(f"network master secret {self.master_secret_path}")
        if not self.ca_cert.exists():
            pki.CertificateAuthority.create(network_name).save(self.ca_key, self.ca_cert)
            created.append(f"certificate authority {self.ca_cert}")
        if not self.server_cert.exists() or not self._server_covers(hostnames):
            if not self.ca_key.exists():
                # A node that joined a cluster has the cluster's certificate but no
                # CA key: it cannot issue itself another one.
                raise ConfigError(
                    f"the server certificate {self.server_cert} does not cover "
                    f"{', '.join(hostnames)}, and this node has no CA key to issue one: "
                    "add the name with `authnet cluster init --hostname NAME` on the machine "
                    "with the CA key, then make a new bundle and join again"
                )
            key, cert = self.ca().issue_server(hostnames)
            pki.write_private(self.server_key, pki.key_pem(key))
            self.server_cert.write_bytes(pki.cert_pem(cert))
            created.append(f"server certificate {self.server_cert} for {', '.join(hostnames)}")
        return created

    def _server_covers(self, hostnames: list[str]) -> bool:
        cert = x509.load_pem_x509_certificate(self.server_cert.read_bytes())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return False
        have = {str(v) for v in san.get_values_for_type(x509.IPAddress)}
        have |= set(san.get_values_for_type(x509.DNSName))
        return set(hostnames) <= have

    def master_secret(self) -> bytes:
        data = self.master_secret_path.read_bytes()
        if len(data) != MASTER_SECRET_BYTES:
            raise ValueError(f"{self.master_secret_path} must hold {MASTER_SECRET_BYTES} bytes")
        return data

    def identity(self) -> DirectedIdentity:
        return DirectedIdentity.from_master(self.master_secret())

    def ca(self) -> pki.CertificateAuthority:
        if not self.ca_key.exists():
            raise ConfigError(
                f"{self.path} has no CA key (a node that joined a cluster has none): "
                "register SPs and issue certificates on the machine that ran "
                "`authnet cluster init`"
            )
        return pki.CertificateAuthority.load(self.ca_key, self.ca_cert)

    def server_identity(self) -> ServerIdentity:
        return ServerIdentity(
            key_pem=self.server_key.read_bytes(),
            cert_pem=self.server_cert.read_bytes(),
            ca_pem=self.ca_cert.read_bytes(),
        )


def load_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return key

"""A caller's credentials: the hardener's CA certificate (to check the server)
and the caller's client certificate and key (to be checked by it).

`hardener caller add NAME --out DIR` writes DIR/ca.pem, DIR/caller.pem and
DIR/caller.key (0600); `CallerCredentials.load(DIR)` reads them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from hardener.errors import HardenerError
from hardener.pki import caller_name_of, write_private

CA_FILE = "ca.pem"
CERT_FILE = "caller.pem"
KEY_FILE = "caller.key"


@dataclass(frozen=True, kw_only=True)
class CallerCredentials:
    name: str
    ca_pem: bytes
    certificate_pem: bytes
    key_pem: bytes = field(repr=False)

    @classmethod
    def load(cls, directory: Path) -> CallerCredentials:
        try:
            ca = (directory / CA_FILE).read_bytes()
            cert = (directory / CERT_FILE).read_bytes()
            key = (directory / KEY_FILE).read_bytes()
        except OSError as e:
            raise HardenerError(
                f"cannot read hardener caller credentials in {directory}: {e.strerror}"
                f" (expected {CA_FILE}, {CERT_FILE}, {KEY_FILE} from `hardener caller add`)"
            ) from None
        name = caller_name_of(x509.load_pem_x509_certificate(cert))
        if name is None:
            raise HardenerError(f"{directory / CERT_FILE} names no caller")
        return cls(name=name, ca_pem=ca, certificate_pem=cert, key_pem=key)

    def save(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / CA_FILE).write_bytes(self.ca_pem)
        (directory / CERT_FILE).write_bytes(self.certificate_pem)
        write_private(directory / KEY_FILE, self.key_pem)
        return [directory / CA_FILE, directory / CERT_FILE, directory / KEY_FILE]

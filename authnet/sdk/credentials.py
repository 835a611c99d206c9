"""An SP's credentials folder, as `authnet sp add` writes it:

    sp.json   {"name", "spid", "sp_address", "gateway_url", "certificate", "key", "ca"}
    sp.key    the SP's private key (0600)
    sp.crt    its client certificate, issued by the network CA
    ca.crt    the network CA, to verify the network's server certificate

The SPID is read from the certificate itself (its SAN URI), so the folder
cannot disagree with what the network will see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from authnet.pki import spid_of


class CredentialsError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class SpCredentials:
    name: str
    spid: bytes
    sp_address: str
    certificate_pem: bytes
    key_pem: bytes = field(repr=False)
    ca_pem: bytes
    # The network's browser gateway (where pages load authnet.js from).
    gateway_url: str = ""

    @classmethod
    def load(cls, folder: Path | str) -> SpCredentials:
        folder = Path(folder).expanduser()
        try:
            meta = json.loads((folder / "sp.json").read_text())
            cert_pem = (folder / meta.get("certificate", "sp.crt")).read_bytes()
            key_pem = (folder / meta.get("key", "sp.key")).read_bytes()
            ca_pem = (folder / meta.get("ca", "ca.crt")).read_bytes()
        except (OSError, ValueError) as e:
            raise CredentialsError(f"cannot read SP credentials in {folder}: {e}") from None
        spid = spid_of(x509.load_pem_x509_certificate(cert_pem))
        if spid is None:
            raise CredentialsError(f"{folder}: the certificate names no SPID (not an SP cert?)")
        return cls(
            name=str(meta.get("name", "")),
            spid=spid,
            sp_address=str(meta["sp_address"]),
            certificate_pem=cert_pem,
            key_pem=key_pem,
            ca_pem=ca_pem,
            gateway_url=str(meta.get("gateway_url", "")),
        )

"""Operator actions on service providers: register, list, rotate and revoke
certificates, disable. Used by `authnet sp ...` and by `authnet serve` to
register the demo SP. Runs against the data directory directly (no network
call), so only someone with the network's files can do it."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from authnet import pki
from authnet.datadir import DataDir
from authnet.directory import Directory, ServiceProvider, SpCertificate
from authnet.errors import MalformedInput
from authnet.protocol.ids import new_id

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
ORIGIN_RE = re.compile(r"^https?://[A-Za-z0-9.\-\[\]:]+$")


@dataclass(frozen=True, kw_only=True)
class SpCredentials:
    """What an SP's backend needs: a folder with sp.json, sp.key, sp.crt, ca.crt."""

    directory: Path
    spid: bytes
    name: str
    fingerprint: bytes


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_origins(origins: list[str]) -> tuple[str, ...]:
    for o in origins:
        if not ORIGIN_RE.fullmatch(o):
            raise MalformedInput(f"origin {o!r} must look like https://host[:port] (no path)")
    return tuple(origins)


async def register_sp(
    directory: Directory,
    data_dir: DataDir,
    *,
    name: str,
    display_name: str,
    origins: list[str],
    sp_address: str,
    gateway_url: str = "",
    out_dir: Path | None = None,
    csr_pem: bytes | None = None,
) -> SpCredentials:
    """Register an SP: a random 128-bit SPID and a client certificate from the
    network CA. Without a CSR the key pair is generated here and written,
    0600, to the credentials folder."""
    if not NAME_RE.fullmatch(name):
        raise MalformedInput("SP name must be lowercase letters, digits and '-', at most 63")
    if not display_name or len(display_name) > 128:
        raise MalformedInput("display name must be 1..128 characters")
    if await directory.find_sp(name) is not None:
        raise MalformedInput(f"an SP named {name!r} already exists")
    spid = new_id()
    sp = ServiceProvider(
        spid=spid,
        name=name,
        display_name=display_name,
        origins=check_origins(origins),
        created_ms=_now_ms(),
    )
    await directory.add_sp(sp)
    return await issue_certificate(
        directory,
        data_dir,
        sp=sp,
        sp_address=sp_address,
        gateway_url=gateway_url,
        out_dir=out_dir,
        csr_pem=csr_pem,
    )


async def issue_certificate(
    directory: Directory,
    data_dir: DataDir,
    *,
    sp: ServiceProvider,
    sp_address: str,
    gateway_url: str = "",
    out_dir: Path | None = None,
    csr_pem: bytes | None = None,
) -> SpCredentials:
    """A new client certificate for an existing SP (rotation keeps the old one
    valid until it is revoked)."""
    folder = out_dir or data_dir.sp_dir(sp.name)
    folder.mkdir(parents=True, exist_ok=True)
    key: ec.EllipticCurvePrivateKey | None = None
    if csr_pem is not None:
        public = pki.public_key_from_csr(csr_pem)
    else:
        key = pki.new_key()
        public = key.public_key()
    cert = data_dir.ca().issue_sp(spid=sp.spid, name=sp.name, public_key=public)
    fp = pki.fingerprint(cert)
    await directory.add_sp_certificate(
        SpCertificate(
            fingerprint=fp,
            spid=sp.spid,
            serial=cert.serial_number,
            not_after_ms=int(cert.not_valid_after_utc.timestamp() * 1000),
        )
    )
    if key is not None:
        pki.write_private(folder / "sp.key", pki.key_pem(key))
    (folder / "sp.crt").write_bytes(pki.cert_pem(cert))
    (folder / "ca.crt").write_bytes(data_dir.ca_cert.read_bytes())
    (folder / "sp.json").write_text(
        json.dumps(
            {
                "name": sp.name,
                "spid": sp.spid.hex(),
                "sp_address": sp_address,
                "gateway_url": gateway_url,
                "certificate": "sp.crt",
                "key": "sp.key",
                "ca": "ca.crt",
            },
            indent=2,
        )
        + "\n"
    )
    return SpCredentials(directory=folder, spid=sp.spid, name=sp.name, fingerprint=fp)

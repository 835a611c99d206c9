"""Token backends against their simulators: Kc derivations, logins, and where a login's time goes.

For each PassKey backend (phone, pkcs11 on SoftHSM2, fido2 on the software
CTAP2 authenticator, piv and otp on a virtual card in a real pcscd through
vsmartcard-vpcd) this program measures, one token operation at a time:

  kc        the backend's Kc derivation for the SP's SPID, as a login does it
            (`derive_kc`; for FIDO2 a complete user-verified getAssertion through
            python-fido2 with the PRF extension, i.e. hmac-secret, including the
            clientPin round trips python-fido2 makes for it: a FIDO2 Kc cannot be
            had without an assertion);
  proof     the login's proof alone (ES256 `sign`; FIDO2: an assertion without PRF);
  pin       a PIN verification (phone: Argon2id + AES-GCM; pkcs11: C_OpenSession +
            C_Login; piv/otp: SELECT + VERIFY; fido2: getInfo + clientPin);
  login     complete logins, one after another, against an in-process network
            (authnet.testing.TestNetwork, real sockets): SP GetTicket over mTLS ->
            the browser opens the gateway websocket and waits -> BeginAuth -> the
            token derives Kc, the host seals it (HPKE), the token signs ->
            CompleteAuth -> the browser receives and opens the sealed Kc -> SP
            GetPUID(finalize). The token's PIN is verified once, before; a login
            with auth_types "c" does not ask for it again (but see otp and fido2,
            whose Kc derivation re-verifies it on the device every time).

Each login is split into phases (network round trips, token operations, host
crypto), and device traffic is counted per login by wrapping the transports:
APDUs (pyscard `transmit`, including GET RESPONSE) with the time spent inside
the virtual card, CTAP commands (the CtapDevice's `call`) with the time spent
inside the authenticator, PKCS#11 key lookups and C_Sign calls. Backend extras:
the round trip of one trivial APDU through pcscd (GET VERSION, SELECT), C_Sign
(ECDSA, HMAC) with a cached key handle, the host's hash-to-curve for PIV.

PC/SC note: vpcd sends each command as two writes (length, then APDU) with
Nagle on; a card side that delays its ACK stalls every APDU ~40 ms. The
simulator acknowledges at once (TCP_QUICKACK, simulators/smartcard/vpcd.py),
which this benchmark found: 44 ms -> 0.2 ms per APDU.

    .venv/bin/python bench/tokens.py                     # all backends, 3 s each
    .venv/bin/python bench/tokens.py --only piv --only otp --seconds 5

Prints one JSON object on stdout, progress on stderr. Starts pcscd (or reuses a
running one) and a SoftHSM2 token directory of its own, and removes both
afterwards; a missing component stops it with a message naming the package.
Everything (network, client, simulators) shares one process and the machine's
cores, so the figures are for comparing backends, not absolute.
"""

# ruff: noqa: E402  (the imports below come after the sys.path fix)
from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/tokens.py`, Python puts bench/ first on sys.path, where
# this file's own name would shadow the `tokens` package it measures.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import aiohttp
from fido2 import cbor
from fido2.ctap import CtapDevice
from fido2.hid import CTAPHID

from authnet.errors import TokenUnavailable
from authnet.protocol import labels
from authnet.protocol.ids import browser_key_hash
from authnet.protocol.kc import derive_kc, kc_fingerprint, piv_peer_point, pkcs11_hmac_input
from authnet.sdk import AsyncSPClient, BrowserSession
from authnet.testing import TestNetwork
from tokens import handshake
from tokens import login as flow
from tokens.api import PassKeyApi
from tokens.passkey import PassKey, prove

KINDS = ("phone", "pkcs11", "fido2", "piv", "otp")
PHONE_PIN = "2468"
FIDO2_PIN = "1234"
CARD_PIN = "123456"
perf = time.perf_counter


class Missing(RuntimeError):
    """A component the benchmark needs is not installed or does not start."""


# --- measuring ----------------------------------------------------------------------


class Meter:
    """Time and counts by key, for the token operation running now (`op`).

    The wrappers below add to it: `op:<name>` for token operations,
    `apdu:<op>:<command>` (host side) and `card:<op>` (inside the virtual card)
    for PC/SC, `ctap:<op>:<command>` for FIDO2, `pkcs11:<op>:<call>` for PKCS#11."""

    def __init__(self) -> None:
        self.op = "other"
        self.seconds: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def add(self, key: str, seconds: float) -> None:
        self.seconds[key] = self.seconds.get(key, 0.0) + seconds
        self.counts[key] = self.counts.get(key, 0) + 1

    def reset(self) -> None:
        self.seconds.clear()
        self.counts.clear()

    @contextlib.contextmanager
    def running(self, op: str) -> Iterator[None]:
        before, self.op = self.op, op
        t0 = perf()
        try:
            yield
        finally:
            self.add(f"op:{op}", perf() - t0)
            self.op = before

    def total(self, prefix: str) -> tuple[int, float]:
        keys = [k for k in self.counts if k.startswith(prefix)]
        return sum(self.counts[k] for k in keys), sum(self.seconds[k] for k in keys)

    def breakdown(self, kind: str, n: int) -> dict[str, dict[str, float]]:
        """Per-operation, per-command counts per unit of work (n units)."""
        out: dict[str, dict[str, float]] = {}
        for key, count in sorted(self.counts.items()):
            family, _, rest = key.partition(":")
            if family != kind:
                continue
            op, _, command = rest.partition(":")
            out.setdefault(op, {})[command] = round(count / n, 2)
        return out


def instrument(obj: object, name: str, meter: Meter) -> None:
    """Time `obj.name(...)` as token operation `name` (an instance attribute
    shadows the method; handshake and login call it as usual)."""
    inner = getattr(obj, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        with meter.running(name):
            return inner(*args, **kwargs)

    setattr(obj, name, timed)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(samples: list[float], elapsed: float | None = None) -> dict[str, Any]:
    """Rates and latencies of `samples` (seconds each). `per_s` is n over the
    time spent in the measured calls (or over `elapsed`, wall time, when given)."""
    ms = [s * 1000 for s in samples]
    n = len(samples)
    return {
        "n": n,
        "per_s": round(n / (elapsed if elapsed is not None else sum(samples)), 2),
        "mean_ms": round(statistics.fmean(ms), 3),
        "p50_ms": round(percentile(ms, 0.50), 3),
        "p95_ms": round(percentile(ms, 0.95), 3),
    }


def repeat(
    fn: Callable[[], object],
    seconds: float,
    *,
    before_each: Callable[[], object] | None = None,
    min_n: int = 3,
    rig: Rig | None = None,
) -> list[float]:
    """Call `fn` for `seconds` (at least `min_n` times) after one warm-up call;
    `before_each` runs untimed before every call. With a `rig` that can
    recover (a card reset by another PC/SC client), a failed call is counted
    in rig.errors, its sample dropped, and the token recovered."""
    if before_each is not None:
        before_each()
    attempt(fn, rig)
    samples: list[float] = []
    until = perf() + seconds
    while len(samples) < min_n or perf() < until:
        if before_each is not None:
            before_each()
        t0 = perf()
        if attempt(fn, rig):
            samples.append(perf() - t0)
    return samples


def attempt(fn: Callable[[], object], rig: Rig | None) -> bool:
    """fn(); False when it failed and `rig` recovered the token."""
    if rig is None or rig.recover is None:
        fn()
        return True
    try:
        fn()
    except TokenUnavailable as e:
        rig.failed(e)
        return False
    return True


# --- device transports, counted -----------------------------------------------------

APDU_NAMES = {
    0xA4: "SELECT",
    0x20: "VERIFY",
    0x87: "GENERAL AUTHENTICATE",
    0xCB: "GET DATA",
    0xC0: "GET RESPONSE",
    0xFD: "GET VERSION",
    0x01: "OTP HMAC-SHA1",
    0x47: "GENERATE",
    0xDB: "PUT DATA",
}

CTAP_NAMES = {1: "makeCredential", 2: "getAssertion", 4: "getInfo", 6: "clientPin", 8: "next"}
CLIENT_PIN_NAMES = {
    1: "getPinRetries",
    2: "getKeyAgreement",
    3: "setPin",
    5: "getPinToken",
    9: "getPinUvAuthTokenUsingPinWithPermissions",
}


def count_apdus(token: Any, meter: Meter) -> None:
    """Count and time every APDU round trip of `token`'s pyscard connection
    (as the host sees it: pyscard -> pcscd -> vpcd -> card and back)."""
    conn = token.link._conn
    transmit = conn.transmit

    def timed_transmit(command: list[int], *args: Any, **kwargs: Any) -> Any:
        t0 = perf()
        try:
            return transmit(command, *args, **kwargs)
        finally:
            name = APDU_NAMES.get(command[1], f"INS {command[1]:02X}")
            meter.add(f"apdu:{meter.op}:{name}", perf() - t0)

    conn.transmit = timed_transmit


def time_card(card: Any, meter: Meter) -> None:
    """Time the virtual card's own work per APDU (it runs on vpcd's thread)."""
    process = card.process

    def timed_process(apdu: bytes) -> bytes:
        t0 = perf()
        try:
            return bytes(process(apdu))
        finally:
            meter.add(f"card:{meter.op}", perf() - t0)

    card.process = timed_process


class CountedCtap(CtapDevice):
    """A CtapDevice that counts CTAP commands and times the authenticator
    (SoftCtapDevice hands the bytes straight to it: no transport to time)."""

    def __init__(self, inner: CtapDevice, meter: Meter) -> None:
        self.inner = inner
        self.meter = meter

    @property
    def capabilities(self) -> Any:
        return self.inner.capabilities

    def call(
        self, cmd: int, data: bytes = b"", event: Any = None, on_keepalive: Any = None
    ) -> bytes:
        name = f"CTAPHID {cmd:02X}"
        if cmd == CTAPHID.CBOR and data:
            name = CTAP_NAMES.get(data[0], f"command {data[0]:02X}")
            if data[0] == 6:
                request = cbor.decode(bytes(data[1:]))
                sub = int(request.get(2, 0)) if isinstance(request, dict) else 0
                name += "." + CLIENT_PIN_NAMES.get(sub, str(sub))
        t0 = perf()
        try:
            return bytes(self.inner.call(cmd, data, event, on_keepalive))
        finally:
            self.meter.add(f"ctap:{self.meter.op}:{name}", perf() - t0)

    def close(self) -> None:
        self.inner.close()

    @classmethod
    def list_devices(cls) -> Iterator[CtapDevice]:
        return iter(())


class TimedKey:
    """A python-pkcs11 key whose C_Sign calls are timed."""

    def __init__(self, key: Any, meter: Meter) -> None:
        self.key = key
        self.meter = meter

    def sign(self, data: bytes, *, mechanism: Any) -> bytes:
        t0 = perf()
        try:
            return bytes(self.key.sign(data, mechanism=mechanism))
        finally:
            self.meter.add(f"pkcs11:{self.meter.op}:C_Sign({mechanism.name})", perf() - t0)


def count_pkcs11(token: Any, meter: Meter) -> None:
    """Time the key lookups (C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal
    and attribute reads, in python-pkcs11's get_key) and C_Sign calls."""
    lookup = token._key

    def timed_lookup(cls: Any, suffix: str) -> TimedKey:
        t0 = perf()
        key = lookup(cls, suffix)
        meter.add(f"pkcs11:{meter.op}:find key", perf() - t0)
        return TimedKey(key, meter)

    token._key = timed_lookup


# --- backends with their simulators ----------------------------------------------------


@dataclass
class Rig:
    kind: str
    token: PassKey
    pin: str
    simulator: str
    # Untimed, before each timed verify_pin: make the token need its PIN again.
    relock: Callable[[], object] | None
    # Backend-specific measurements: (seconds, spid) -> JSON.
    extras: Callable[[float, bytes], dict[str, Any]] | None = None
    # Device traffic families to report ("apdu", "ctap", "pkcs11").
    families: tuple[str, ...] = ()
    # Time spent inside the simulated device, key prefix in the meter.
    device_time: str | None = None
    cleanup: list[Callable[[], object]] = field(default_factory=list)
    # Reconnect and re-verify after the device went away (PC/SC: another
    # client reset the card); None: failures propagate.
    recover: Callable[[], object] | None = None
    errors: dict[str, int] = field(default_factory=dict)

    def failed(self, e: Exception) -> None:
        """Count a failed operation and recover the token (or re-raise)."""
        name = type(e).__name__
        self.errors[name] = self.errors.get(name, 0) + 1
        if sum(self.errors.values()) == 1:
            say(f"{self.kind}: {name}: {e}; recovering (counted in errors)")
        if self.recover is None or sum(self.errors.values()) > 20:
            raise e
        self.recover()


class Shared:
    """Components started once for the run, stopped at the end."""

    def __init__(self, root: Path, stack: contextlib.ExitStack) -> None:
        self.root = root
        self.stack = stack
        self.meter = Meter()
        self._pcscd: Any = None
        self._hsm: Any = None

    def pcscd(self) -> Any:
        if self._pcscd is None:
            from simulators.smartcard import Pcscd, PcscError

            if shutil.which("pcscd") is None and not Path("/usr/sbin/pcscd").exists():
                raise Missing(
                    "pcscd is not installed: install the Debian packages pcscd and "
                    "vsmartcard-vpcd (scripts/install-system-deps.sh test)"
                )
            if not Path("/etc/reader.conf.d/vpcd").exists():
                raise Missing(
                    "the vsmartcard-vpcd reader driver is not installed "
                    "(/etc/reader.conf.d/vpcd): install the Debian package "
                    "vsmartcard-vpcd"
                )
            try:
                daemon = Pcscd.ensure()
            except PcscError as e:
                raise Missing(f"pcscd with the vpcd readers is not available: {e}") from None
            self._pcscd = self.stack.enter_context(daemon)
            say("pcscd " + ("started" if daemon.started else "already running: reused"))
        return self._pcscd

    def hsm(self) -> Any:
        if self._hsm is None:
            from simulators.softhsm import SoftHsm, SoftHsmUnavailable

            try:
                hsm = SoftHsm(self.root / "softhsm")
            except SoftHsmUnavailable as e:
                raise Missing(str(e)) from None
            # SoftHSM reads its configuration once, when the module is first
            # loaded, which happens after this (in Pkcs11PassKey).
            os.environ["SOFTHSM2_CONF"] = str(hsm.conf)
            self._hsm = hsm
        return self._hsm


def make_phone(shared: Shared) -> Rig:
    from tokens.phone import PhoneKeyStore

    store = PhoneKeyStore.create(shared.root / "phone.json", label="bench phone", pin=PHONE_PIN)
    token = store.unlock(PHONE_PIN)
    return Rig(
        kind="phone",
        token=token,
        pin=PHONE_PIN,
        simulator="phone key store in this process (P-256 key and Kc secret in memory after "
        "unlock; PIN: Argon2id m=19 MiB t=2 over the JSON key store)",
        relock=token.close,
    )


def make_pkcs11(shared: Shared) -> Rig:
    from pkcs11 import Mechanism, ObjectClass

    from simulators.softhsm import SoftHsmUnavailable
    from tokens.pkcs11 import Pkcs11Config, Pkcs11PassKey

    hsm = shared.hsm()
    try:
        made = hsm.init_token(pin="1234")
    except SoftHsmUnavailable as e:
        raise Missing(str(e)) from None
    config = Pkcs11Config(module=hsm.module, token_label=made.label)
    token = Pkcs11PassKey.provision(config, pin=made.pin)
    meter = shared.meter

    def extras(seconds: float, spid: bytes) -> dict[str, Any]:
        digest = hashlib.sha256(b"authnet benchmark").digest()
        auth = token._key(ObjectClass.PRIVATE_KEY, "auth").key
        kc = token._key(ObjectClass.SECRET_KEY, "kc").key
        hmac_input = pkcs11_hmac_input(spid)
        mac = bytes(kc.sign(hmac_input, mechanism=Mechanism.SHA256_HMAC))
        return {
            "c_sign_ecdsa_p256": summary(
                repeat(lambda: auth.sign(digest, mechanism=Mechanism.ECDSA), seconds)
            )
            | {"measured": "C_Sign(CKM_ECDSA) over a SHA-256 digest, key handle cached"},
            "c_sign_hmac_sha256": summary(
                repeat(lambda: kc.sign(hmac_input, mechanism=Mechanism.SHA256_HMAC), seconds)
            )
            | {"measured": "C_Sign(CKM_SHA256_HMAC) over the Kc input, key handle cached"},
            "find_key": summary(repeat(lambda: token._key(ObjectClass.SECRET_KEY, "kc"), seconds))
            | {
                "measured": "the backend's key lookup before every sign/derive "
                "(C_FindObjectsInit/C_FindObjects/C_FindObjectsFinal and attribute reads)"
            },
            "host_hkdf": summary(
                repeat(lambda: derive_kc(mac, spid, salt=labels.KC_PKCS11_SALT), seconds)
            )
            | {"measured": "HKDF-SHA256 on the host (HMAC output -> Kc)"},
        }

    count_pkcs11(token, meter)
    return Rig(
        kind="pkcs11",
        token=token,
        pin=made.pin,
        simulator=f"SoftHSM2 ({hsm.module}), a token of its own in a temporary directory",
        relock=token.close,
        extras=extras,
        families=("pkcs11",),
        cleanup=[token.close],
    )


async def make_fido2(shared: Shared, api: PassKeyApi) -> Rig:
    from fido2.ctap2.base import Ctap2
    from fido2.ctap2.pin import ClientPin

    from simulators.ctap2 import Authenticator, SoftCtapDevice
    from tokens.fido2 import Fido2PassKey

    rp_id = await api.webauthn_rp_id_of_network()
    raw = SoftCtapDevice(Authenticator(shared.root / "fido2-key.json"))
    ClientPin(Ctap2(raw)).set_pin(FIDO2_PIN)
    device = CountedCtap(raw, shared.meter)
    token = Fido2PassKey(device, rp_id=rp_id, label="bench key")
    token.verify_pin(FIDO2_PIN)
    return Rig(
        kind="fido2",
        token=token,
        pin=FIDO2_PIN,
        simulator="simulators.ctap2 software CTAP 2.1 authenticator through SoftCtapDevice "
        "(no HID framing), driven by unmodified python-fido2 Fido2Client",
        relock=token.close,
        families=("ctap",),
        device_time="ctap:",
    )


def make_card(shared: Shared, kind: str) -> Rig:
    from simulators.smartcard import PcscError, VirtualCard, card_present, reader_name
    from simulators.smartcard import virtual_card as insert
    from tokens.piv import PIV_AID, OtpPassKey, PivPassKey, SmartcardConfig, apdu

    pcscd = shared.pcscd()
    card = VirtualCard.create(
        shared.root / f"{kind}-card.json", otp_slot2_secret=secrets.token_bytes(20)
    )
    stack = contextlib.ExitStack()
    # Other programs (test runs) may hold a vpcd reader: take a free one.
    deadline = time.monotonic() + 60
    index: int | None = None
    while index is None:
        for i in (0, 1):
            if card_present(reader_name(i)):
                continue
            try:
                stack.enter_context(insert(card, reader=i, pcscd=pcscd, timeout=10.0))
            except PcscError as e:
                say(f"vpcd reader {i} is busy ({e}); trying another")
                continue
            index = i
            break
        if index is None:
            if time.monotonic() > deadline:
                raise Missing("both vpcd readers stayed in use by other programs for 60 s")
            time.sleep(1.0)
    config = SmartcardConfig(reader=reader_name(index), label=f"bench {kind}")
    cls = OtpPassKey if kind == "otp" else PivPassKey
    try:
        cls.provision(config, pin=CARD_PIN).close()
        token = cls(config)
        token.verify_pin(CARD_PIN)
    except BaseException:
        stack.close()
        raise
    meter = shared.meter
    count_apdus(token, meter)
    time_card(card, meter)

    def recover() -> None:
        token.link.close()
        token.link.connect()
        count_apdus(token, meter)
        with meter.running("recover"):
            type(token).verify_pin(token, CARD_PIN)  # the class's, not the timed one

    def extras(seconds: float, spid: bytes) -> dict[str, Any]:
        half = seconds / 2
        out: dict[str, Any] = {}
        trivial = [
            ("get_version", "GET VERSION (00 FD 00 00), PIV selected", bytes([0, 0xFD, 0, 0])),
            ("select_piv", "SELECT PIV (00 A4 04 00 0B <PIV AID> 00)", apdu(0xA4, 4, 0, PIV_AID)),
        ]
        for key, what, command in trivial:

            def one(command: bytes = command) -> None:
                token.link.ok("a trivial APDU", command)

            meter.reset()
            samples = repeat(one, half, rig=rig)
            n = len(samples) + 1
            _, card_s = meter.total("card:")
            out[f"apdu_round_trip_{key}"] = summary(samples) | {
                "measured": f"one APDU through pyscard -> pcscd -> vpcd -> card: {what}",
                "card_emulation_ms_each": round(card_s / n * 1000, 3),
            }
        if kind == "piv":
            out["host_hash_to_curve"] = summary(repeat(lambda: piv_peer_point(spid), half)) | {
                "measured": "hash_to_curve(SPID) onto P-256 on the host (RFC 9380, pure "
                "Python), before the card's ECDH"
            }
        return out

    def close() -> None:
        token.close()
        stack.close()

    rig = Rig(
        kind=kind,
        token=token,
        pin=CARD_PIN,
        simulator=f"simulators.smartcard VirtualCard (PIV + YubiKey OTP, in this process) in "
        f"vpcd reader {reader_name(index)!r} of pcscd, reached through pyscard",
        relock=None,
        extras=extras,
        families=("apdu",),
        device_time="card:",
        cleanup=[close],
        recover=recover,
    )
    return rig


# --- the login ---------------------------------------------------------------------------

NETWORK_PHASES = (
    "sp_get_ticket",
    "browser_connect",
    "begin_auth",
    "complete_auth",
    "browser_receive",
    "browser_close",
    "sp_get_puid",
)
TOKEN_OPS = ("derive_kc", "sign", "prove_and_derive", "prove")


@dataclass
class Client:
    net: TestNetwork
    sp: AsyncSPClient
    api: PassKeyApi
    http: aiohttp.ClientSession


async def one_login(c: Client, rig: Rig, token_id: bytes, meter: Meter) -> dict[str, float]:
    """One complete login; returns its phases in seconds (token operations from
    the meter). Raises if the browser's Kc or the PUID is not what it must be."""
    phases: dict[str, float] = {}
    before = dict(meter.seconds)
    t0 = perf()
    ticket = await c.sp.get_ticket(auth_types="c")
    t1 = perf()
    phases["sp_get_ticket"] = t1 - t0
    session = BrowserSession.for_ticket(ticket, c.sp.spid)
    opened = session.open

    def timed_open(sealed: dict[str, Any]) -> bytes:
        s0 = perf()
        try:
            return opened(sealed)
        finally:
            phases["browser_open_kc"] = perf() - s0

    session.open = timed_open  # type: ignore[method-assign]
    async with session.waiting(c.http) as wait:
        t2 = perf()
        phases["browser_connect"] = t2 - t1
        payload = session.payload()
        request = await c.api.begin_auth(
            ticket=ticket.ticket,
            token_id=token_id,
            browser_key_hash=browser_key_hash(payload.browser_key),
        )
        t3 = perf()
        phases["begin_auth"] = t3 - t2
        response = handshake.respond(
            payload=payload, request=request, token=rig.token, token_id=token_id
        )
        t4 = perf()
        phases["respond"] = t4 - t3
        await c.api.complete_auth(response)
        t5 = perf()
        phases["complete_auth"] = t5 - t4
        async with asyncio.timeout(10):
            outcome = await wait.result()
        t6 = perf()
        phases["browser_receive"] = t6 - t5 - phases.get("browser_open_kc", 0.0)
    t7 = perf()
    phases["browser_close"] = t7 - t6
    who = await c.sp.get_puid(ticket.ticket, finalize=True)
    t8 = perf()
    phases["sp_get_puid"] = t8 - t7
    phases["total"] = t8 - t0
    if outcome.kc is None or kc_fingerprint(outcome.kc) != response.kc_fingerprint:
        raise RuntimeError("the browser did not open the Kc the token sealed")
    if not who.puid:
        raise RuntimeError("GetPUID returned no PUID")
    token_s = 0.0
    for op in TOKEN_OPS:
        spent = meter.seconds.get(f"op:{op}", 0.0) - before.get(f"op:{op}", 0.0)
        if spent > 0:
            phases[f"token_{op}"] = spent
            token_s += spent
    # The rest of `respond`: transcripts, SHA-256, HPKE seal, Kc fingerprint.
    phases["host_seal_and_transcripts"] = phases.pop("respond") - token_s
    return phases


async def run_logins(
    c: Client, rig: Rig, token_id: bytes, seconds: float, meter: Meter
) -> dict[str, Any]:
    await one_login(c, rig, token_id, meter)  # warm-up
    meter.reset()
    errors: dict[str, int] = {}
    done: list[dict[str, float]] = []
    start = perf()
    until = start + seconds
    while perf() < until or len(done) < 3:
        try:
            phases = await one_login(c, rig, token_id, meter)
        except Exception as e:  # counted and reported, never hidden
            errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1
            if sum(errors.values()) == 1:
                say(f"{rig.kind}: login failed: {type(e).__name__}: {e}")
            if sum(errors.values()) >= 20 and not done:
                break
            if isinstance(e, TokenUnavailable) and rig.recover is not None:
                rig.recover()
            continue
        done.append(phases)
    elapsed = perf() - start
    n = len(done)
    if not n:
        return {"n": 0, "errors": errors}
    totals = [p["total"] for p in done]
    keys = sorted({k for p in done for k in p if k != "total"}, key=_phase_order)
    mean = {k: statistics.fmean(p.get(k, 0.0) for p in done) * 1000 for k in keys}
    total_ms = statistics.fmean(totals) * 1000
    network = sum(mean.get(k, 0.0) for k in NETWORK_PHASES)
    token = sum(v for k, v in mean.items() if k.startswith("token_"))
    host = mean.get("host_seal_and_transcripts", 0.0) + mean.get("browser_open_kc", 0.0)
    out: dict[str, Any] = {
        "auth_types": "c",
        "seconds": round(elapsed, 2),
        "logins_per_s": round(n / elapsed, 2),
        **summary(totals, elapsed),
        "errors": errors,
        "phases_mean_ms": {k: round(v, 3) for k, v in mean.items()},
        "split_mean_ms": {
            "network_round_trips": round(network, 3),
            "token_operations": round(token, 3),
            "host_crypto": round(host, 3),
            "unaccounted": round(total_ms - network - token - host, 3) + 0.0,
        },
    }
    del out["per_s"]  # logins_per_s is the same figure, over wall time
    for family in rig.families:
        out |= device_traffic(meter, family, n, rig.device_time, "login")
    return out


def _phase_order(key: str) -> int:
    order = [
        "sp_get_ticket",
        "browser_connect",
        "begin_auth",
        "token_derive_kc",
        "token_prove_and_derive",
        "host_seal_and_transcripts",
        "token_sign",
        "token_prove",
        "complete_auth",
        "browser_receive",
        "browser_open_kc",
        "browser_close",
        "sp_get_puid",
    ]
    return order.index(key) if key in order else len(order)


def device_traffic(
    meter: Meter, family: str, n: int, device_time: str | None, unit_name: str
) -> dict[str, Any]:
    """{"<family>_per_<unit>": device round trips per unit of work (login,
    derivation), by token operation and command, with the time the host
    waited for them}; {} when the unit made no such calls."""
    calls, waited = meter.total(f"{family}:")
    if not calls:
        return {}
    unit = {"apdu": "apdus", "ctap": "ctap_calls", "pkcs11": "calls"}[family]
    # Token operations' time not spent waiting on the device: host crypto
    # (hash-to-curve, HKDF, python-fido2's PIN protocol ECDH), library overhead.
    op_s = sum(v for k, v in meter.seconds.items() if k.startswith("op:"))
    outer = (
        sum(
            v
            for k, v in meter.seconds.items()
            if k.startswith("op:") and k[3:] in ("derive_kc", "sign", "prove", "verify_pin")
        )
        or op_s
    )
    out: dict[str, Any] = {
        unit: round(calls / n, 2),
        "by_operation": meter.breakdown(family, n),
        "host_wait_ms": round(waited / n * 1000, 3),
        "token_ops_outside_device_ms": round((outer - waited) / n * 1000, 3),
    }
    if family == "pkcs11":
        out["ms_by_operation"] = {
            k.partition(":")[2]: round(v / n * 1000, 3)
            for k, v in sorted(meter.seconds.items())
            if k.startswith("pkcs11:")
        }
    if device_time is not None and device_time != f"{family}:":
        _, inside = meter.total(device_time)
        out["inside_device_ms"] = round(inside / n * 1000, 3)
        out["transport_ms"] = round((waited - inside) / n * 1000, 3)
    elif device_time is not None:
        out["inside_device_ms"] = out["host_wait_ms"]
    return {f"{family}_per_{unit_name}": out}


# --- one backend -------------------------------------------------------------------------


KC_MEASURED = {
    "phone": "PhonePassKey.derive_kc: HKDF-SHA256 of the key store's Kc secret (host CPU)",
    "pkcs11": "Pkcs11PassKey.derive_kc: key lookup + C_Sign(CKM_SHA256_HMAC) on SoftHSM2, "
    "then HKDF on the host",
    "fido2": "Fido2PassKey.derive_kc = prove_and_derive over a random message: one "
    "user-verified getAssertion with the PRF extension (hmac-secret) through python-fido2, "
    "including the clientPin PIN-token round trips python-fido2 makes for every assertion, "
    "then HKDF on the host; in a login this same assertion is also the proof",
    "piv": "PivPassKey.derive_kc: hash_to_curve(SPID) on the host, GENERAL AUTHENTICATE "
    "(ECDH with the 9D key) on the card over pcscd, then HKDF",
    "otp": "OtpPassKey.derive_kc: SELECT OTP, HMAC-SHA1 challenge-response (slot 2), then "
    "SELECT PIV and VERIFY PIN again (selecting OTP drops the PIV PIN), then HKDF",
}
PIN_MEASURED = {
    "phone": "verify_pin after close(): Argon2id(PIN) and AES-GCM decryption of the key "
    "store's secrets",
    "pkcs11": "verify_pin after close() (C_CloseSession): C_OpenSession + C_Login",
    "fido2": "verify_pin: python-fido2 ClientPin (getInfo, getKeyAgreement, "
    "getPinUvAuthTokenUsingPinWithPermissions)",
    "piv": "verify_pin: SELECT PIV + VERIFY (the card checks the PIN again)",
    "otp": "verify_pin: SELECT PIV + VERIFY (the card checks the PIN again)",
}
PROOF_MEASURED = {
    "fido2": "Fido2PassKey.prove: a user-verified getAssertion without PRF",
    "default": "sign(): ECDSA P-256 over SHA-256 of a 200-byte transcript-sized message",
}


async def bench_backend(c: Client, rig: Rig, seconds: float, meter: Meter) -> dict[str, Any]:
    token = rig.token
    for name in ("derive_kc", "sign", "prove_and_derive", "prove", "verify_pin"):
        if name == "sign" and rig.kind == "fido2":
            continue
        if hasattr(token, name):
            instrument(token, name, meter)
    say(f"{rig.kind}: enrolling")
    token_id, _, _ = await flow.enrol(c.api, token, label=f"bench {rig.kind}")
    spid = c.sp.spid
    result: dict[str, Any] = {"simulator": rig.simulator}

    say(f"{rig.kind}: Kc derivations ({seconds:g} s)")
    meter.reset()
    samples = repeat(lambda: token.derive_kc(spid), seconds, rig=rig)
    result["kc"] = summary(samples) | {"measured": KC_MEASURED[rig.kind]}
    for family in rig.families:
        result["kc"] |= device_traffic(meter, family, len(samples) + 1, rig.device_time, "kc")

    say(f"{rig.kind}: proofs ({seconds / 2:g} s)")
    message = secrets.token_bytes(200)
    meter.reset()
    samples = repeat(lambda: prove(token, message), seconds / 2, rig=rig)
    result["proof"] = summary(samples) | {
        "measured": PROOF_MEASURED.get(rig.kind, PROOF_MEASURED["default"])
    }
    if rig.kind == "fido2":
        # A login's one assertion both proves and yields Kc: what Kc adds to it.
        result["kc"]["kc_over_proof_ms"] = round(
            result["kc"]["mean_ms"] - result["proof"]["mean_ms"], 3
        )
    for family in rig.families:
        result["proof"] |= device_traffic(meter, family, len(samples) + 1, rig.device_time, "proof")

    say(f"{rig.kind}: PIN verifications ({seconds / 2:g} s)")
    meter.reset()
    samples = repeat(
        lambda: token.verify_pin(rig.pin), seconds / 2, before_each=rig.relock, min_n=2, rig=rig
    )
    result["pin_verify"] = summary(samples) | {"measured": PIN_MEASURED[rig.kind]}
    for family in rig.families:
        result["pin_verify"] |= device_traffic(
            meter, family, len(samples) + 1, rig.device_time, "verify"
        )
    if token.locked:
        raise RuntimeError(f"{rig.kind}: the token is locked after the PIN measurement")

    say(f"{rig.kind}: logins ({seconds:g} s)")
    result["login"] = await run_logins(c, rig, token_id, seconds, meter)

    if rig.extras is not None:
        say(f"{rig.kind}: device details ({seconds / 2:g} s each)")
        result["device"] = rig.extras(seconds / 2, spid)
    # Failed token operations outside logins (the sample dropped, the token recovered).
    result["errors_outside_logins"] = dict(rig.errors)
    return result


# --- the run -------------------------------------------------------------------------------


def say(message: str) -> None:
    print(f"[bench/tokens] {message}", file=sys.stderr, flush=True)


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _tool_version(argv: list[str]) -> str | None:
    exe = shutil.which(argv[0]) or (
        f"/usr/sbin/{argv[0]}" if Path(f"/usr/sbin/{argv[0]}").exists() else None
    )
    if exe is None:
        return None
    try:
        done = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else None


def machine() -> dict[str, Any]:
    cpu = None
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "packages": {
            p: _version(p) for p in ("fido2", "pyscard", "python-pkcs11", "cryptography", "grpcio")
        },
        "pcscd": _tool_version(["pcscd", "--version"]),
        "softhsm2": _tool_version(["softhsm2-util", "--version"]),
    }


async def main_async(ns: argparse.Namespace) -> dict[str, Any]:
    kinds = [k for k in KINDS if not ns.only or k in ns.only]
    info = machine()
    results: dict[str, Any] = {}
    started = perf()
    with tempfile.TemporaryDirectory(prefix="authnet-bench-tokens-") as tmp:
        root = Path(tmp)
        with contextlib.ExitStack() as stack:
            shared = Shared(root, stack)
            async with TestNetwork(root / "net") as net:
                # TestNetwork logs at DEBUG for tests that read the log; a
                # deployment logs at INFO (as bench/login.py's server does).
                logging.getLogger("authnet").setLevel(logging.INFO)
                creds = await net.add_sp("bench", "Bench SP")
                async with (
                    net.sp_client(creds) as sp,
                    PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as api,
                    aiohttp.ClientSession() as http,
                ):
                    client = Client(net=net, sp=sp, api=api, http=http)
                    for kind in kinds:
                        say(f"{kind}: starting its simulator")
                        rig = await make_rig(kind, shared, api)
                        try:
                            results[kind] = await bench_backend(
                                client, rig, ns.seconds, shared.meter
                            )
                        finally:
                            for undo in reversed(rig.cleanup):
                                undo()
                        login = results[kind]["login"]
                        say(
                            f"{kind}: {results[kind]['kc']['per_s']:g} Kc/s, "
                            f"{login.get('logins_per_s', 0):g} logins/s, "
                            f"p50 {login.get('p50_ms', 0):g} ms"
                        )
    return {
        "benchmark": "tokens",
        "seconds_per_measurement": ns.seconds,
        "backends": results,
        "network": "authnet.testing.TestNetwork in this process (gRPC over TLS/mTLS, "
        "websocket gateway, SQLite, in-memory tickets; log level INFO), one login at a time",
        "event_loop": "uvloop",
        "wall_seconds": round(perf() - started, 1),
        "machine": info | {"loadavg_at_end": [round(x, 2) for x in os.getloadavg()]},
    }


async def make_rig(kind: str, shared: Shared, api: PassKeyApi) -> Rig:
    if kind == "phone":
        return make_phone(shared)
    if kind == "pkcs11":
        return make_pkcs11(shared)
    if kind == "fido2":
        return await make_fido2(shared, api)
    return make_card(shared, kind)


def main() -> None:
    p = argparse.ArgumentParser(
        prog="bench/tokens.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=3.0,
        help="length of each main measurement (Kc derivations, logins); proofs, PIN "
        "verifications and device details take half of it each (default 3)",
    )
    p.add_argument(
        "--only",
        action="append",
        choices=KINDS,
        metavar="KIND",
        help=f"measure only this backend (repeatable; one of {', '.join(KINDS)}; default all)",
    )
    ns = p.parse_args()
    if ns.seconds <= 0:
        p.error("--seconds must be positive")
    import uvloop

    try:
        result = uvloop.run(main_async(ns))
    except Missing as e:
        say(f"cannot run: {e}")
        raise SystemExit(2) from None
    print(json.dumps(result))


if __name__ == "__main__":
    main()

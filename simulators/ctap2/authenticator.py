"""A software CTAP 2.1 authenticator, I/O-free.

`Authenticator.process(command, payload)` takes the CTAP command byte and its
CBOR parameters and returns the status byte followed by the CBOR response,
exactly what travels inside a CTAPHID_CBOR message. The transports
(`device.SoftCtapDevice`, `hid.SoftCtapHidDevice`) only carry these bytes.

Supported: authenticatorMakeCredential, authenticatorGetAssertion,
authenticatorGetNextAssertion, authenticatorGetInfo, authenticatorClientPIN
(PIN/UV auth protocols 1 and 2), authenticatorReset, authenticatorSelection;
ES256 credentials, discoverable or not; the hmac-secret and credProtect
extensions; "packed" self attestation or "none".

The device has a button and no biometric: user presence is a callback
(`presence`), and user verification only ever comes from the client PIN. A
second callback (`verification`) plays the part of a key with a display that
asks its owner to confirm before it hands out a pinUvAuthToken.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from simulators.ctap2 import cbor
from simulators.ctap2.pin_protocol import (
    PERMISSION_GA,
    PERMISSION_MC,
    PinUvAuthProtocol,
    ProtocolError,
    cose_p256_public,
    make_protocols,
    select_protocol,
)
from simulators.ctap2.state import PIN_RETRIES_MAX, DeviceState, ResidentCredential, StateFile
from simulators.ctap2.status import CtapFail, Status

logger = logging.getLogger(__name__)

DEFAULT_AAGUID = bytes.fromhex("a0e6a4b1f6c24f4e9d3b2e51d0c0ffee")
"""The simulator's model AAGUID (every simulated device reports it by default)."""

MAX_MSG_SIZE = 1200
MAX_CREDENTIAL_COUNT_IN_LIST = 8
MIN_PIN_LENGTH = 4
MAX_PIN_BYTES = 63
MAX_USER_ID_LENGTH = 64
MAX_CONSECUTIVE_PIN_MISMATCHES = 3
NEXT_ASSERTION_TIMEOUT = 30.0
ES256 = -7

# Command bytes (CTAP 2.1 §6).
CMD_MAKE_CREDENTIAL = 0x01
CMD_GET_ASSERTION = 0x02
CMD_GET_INFO = 0x04
CMD_CLIENT_PIN = 0x06
CMD_RESET = 0x07
CMD_GET_NEXT_ASSERTION = 0x08
CMD_SELECTION = 0x0B

# authenticatorClientPIN subcommands.
SUB_GET_PIN_RETRIES = 0x01
SUB_GET_KEY_AGREEMENT = 0x02
SUB_SET_PIN = 0x03
SUB_CHANGE_PIN = 0x04
SUB_GET_PIN_TOKEN = 0x05
SUB_GET_TOKEN_USING_UV = 0x06
SUB_GET_UV_RETRIES = 0x07
SUB_GET_TOKEN_USING_PIN = 0x09

# Keep-alive statuses (CTAPHID_KEEPALIVE payload).
KEEPALIVE_PROCESSING = 1
KEEPALIVE_UPNEEDED = 2

# authenticatorData flags.
FLAG_UP = 0x01
FLAG_UV = 0x04
FLAG_AT = 0x40
FLAG_ED = 0x80

_CRED_ID_VERSION = 0x01
_CRED_FLAG_RK = 0x01
_CRED_FLAG_HMAC = 0x02
_CRED_ID_LENGTH = 1 + 12 + 34 + 16

PresenceResult = bool | None


@dataclass(frozen=True)
class PresenceRequest:
    """What the device is asking its user to touch for.

    `purpose` is one of "makeCredential", "getAssertion", "credentialExcluded",
    "selection", "reset" or "pinUvAuthParamProbe" (a platform sending a
    zero-length pinUvAuthParam to make the user pick a device). `cancel` is set
    when the platform sends CTAPHID_CANCEL (or sets the event it passed to
    `CtapDevice.call`): a waiting callback should return promptly."""

    purpose: str
    rp_id: str | None
    user_name: str | None
    cancel: threading.Event


@dataclass(frozen=True)
class VerificationRequest:
    """A pinUvAuthToken is about to be issued for a correct PIN (before the PIN
    retry counter is touched). Returning False ends the request with
    CTAP2_ERR_OPERATION_DENIED, as a key with a display does when its owner
    refuses the requested permissions."""

    permissions: int
    rp_id: str | None
    cancel: threading.Event


PresenceCallback = Callable[[PresenceRequest], PresenceResult]
"""True: touched. False: the user refused. None: nobody touched before the
device's timeout. makeCredential/getAssertion map both False and None to
CTAP2_ERR_OPERATION_DENIED (CTAP 2.1 §6.1.2 step 14, §6.2.2 step 9);
selection and reset map None to CTAP2_ERR_USER_ACTION_TIMEOUT."""

VerificationCallback = Callable[[VerificationRequest], bool]


def approve(request: object) -> bool:
    """A user who touches (or confirms) every time: the default."""
    return True


def deny(request: object) -> bool:
    """A user who refuses."""
    return False


def no_touch(request: object) -> None:
    """Nobody touches the key before it times out."""
    return None


class TouchButton:
    """A presence callback that waits for `press()`: lets a test (or a UI) touch
    the key while the request is pending. A press is consumed by the request it
    answers. Returns None (timeout) after `timeout` seconds, and returns early
    when the platform cancels."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.requests: list[PresenceRequest] = []
        self.waiting = threading.Event()
        self._pressed = threading.Event()

    def press(self) -> None:
        self._pressed.set()

    def __call__(self, request: PresenceRequest) -> PresenceResult:
        self.requests.append(request)
        self.waiting.set()
        try:
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                if self._pressed.wait(0.01):
                    self._pressed.clear()
                    return True
                if request.cancel.is_set():
                    return None
            return None
        finally:
            self.waiting.clear()


@dataclass(frozen=True)
class CredentialInfo:
    """A read-only view of a discoverable credential (for tests and tooling)."""

    credential_id: bytes
    rp_id: str
    user_id: bytes
    user_name: str | None
    user_display_name: str | None
    hmac_secret: bool
    cred_protect: int


@dataclass
class _Credential:
    """A credential found on this device (resident record or unwrapped id)."""

    credential_id: bytes
    private_scalar: bytes
    hmac_secret: bool
    cred_protect: int
    resident: ResidentCredential | None = None

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        return ec.derive_private_key(int.from_bytes(self.private_scalar, "big"), ec.SECP256R1())


@dataclass
class _Context:
    cancel: threading.Event
    keepalive: Callable[[int], None] | None

    def status(self, value: int) -> None:
        if self.keepalive is not None:
            self.keepalive(value)


@dataclass
class _HmacSecretInput:
    protocol: PinUvAuthProtocol
    shared_secret: bytes
    salts: list[bytes]


@dataclass
class _PendingAssertions:
    """What authenticatorGetNextAssertion needs (§6.3)."""

    rp_id_hash: bytes
    client_data_hash: bytes
    credentials: list[_Credential]
    flags: int
    user_verified: bool
    hmac: _HmacSecretInput | None
    next_index: int
    timestamp: float


@dataclass
class _Descriptor:
    id: bytes


@dataclass
class _Token:
    """A verified pinUvAuthParam: which protocol's token it used."""

    protocol: PinUvAuthProtocol
    user_present: bool


# ---------------------------------------------------------------- parameters


def _params(payload: bytes) -> dict[object, object]:
    if not payload:
        return {}
    value = cbor.decode(payload)
    if not isinstance(value, dict):
        raise CtapFail(Status.CBOR_UNEXPECTED_TYPE, "parameters are not a map")
    return value


def _wrong(name: str) -> CtapFail:
    return CtapFail(Status.CBOR_UNEXPECTED_TYPE, f"{name} has the wrong type")


def _missing(name: str) -> CtapFail:
    return CtapFail(Status.MISSING_PARAMETER, f"{name} is missing")


def _opt_bytes(params: Mapping[object, object], key: object, name: str) -> bytes | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, bytes):
        raise _wrong(name)
    return value


def _req_bytes(params: Mapping[object, object], key: object, name: str) -> bytes:
    value = _opt_bytes(params, key, name)
    if value is None:
        raise _missing(name)
    return value


def _opt_text(params: Mapping[object, object], key: object, name: str) -> str | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _wrong(name)
    return value


def _req_text(params: Mapping[object, object], key: object, name: str) -> str:
    value = _opt_text(params, key, name)
    if value is None:
        raise _missing(name)
    return value


def _opt_int(params: Mapping[object, object], key: object, name: str) -> int | None:
    value = params.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong(name)
    return value


def _req_int(params: Mapping[object, object], key: object, name: str) -> int:
    value = _opt_int(params, key, name)
    if value is None:
        raise _missing(name)
    return value


def _opt_map(
    params: Mapping[object, object], key: object, name: str
) -> dict[object, object] | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _wrong(name)
    return value


def _req_map(params: Mapping[object, object], key: object, name: str) -> dict[object, object]:
    value = _opt_map(params, key, name)
    if value is None:
        raise _missing(name)
    return value


def _opt_list(params: Mapping[object, object], key: object, name: str) -> list[object] | None:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _wrong(name)
    return value


def _options(value: dict[object, object] | None) -> dict[str, bool]:
    """The options map: "rk", "up", "uv" must be booleans; unknown keys are
    treated as absent (§6.1.2 step 5)."""
    result: dict[str, bool] = {}
    for key, option in (value or {}).items():
        if key in ("rk", "up", "uv"):
            if not isinstance(option, bool):
                raise _wrong(f"option {key}")
            result[str(key)] = option
    return result


def _descriptors(value: list[object] | None, name: str) -> list[_Descriptor]:
    """PublicKeyCredentialDescriptors; those of another type are skipped."""
    result: list[_Descriptor] = []
    for entry in value or []:
        if not isinstance(entry, dict):
            raise _wrong(name)
        kind = _req_text(entry, "type", f"{name} type")
        cred_id = _req_bytes(entry, "id", f"{name} id")
        transports = entry.get("transports")
        if transports is not None and not isinstance(transports, list):
            raise _wrong(f"{name} transports")
        if kind == "public-key":
            result.append(_Descriptor(cred_id))
    return result


def _extensions(value: dict[object, object] | None) -> dict[str, object]:
    return {k: v for k, v in (value or {}).items() if isinstance(k, str)}


def _check_client_data_hash(value: bytes) -> None:
    if len(value) != 32:
        raise CtapFail(Status.INVALID_LENGTH, "clientDataHash must be 32 bytes")


# ------------------------------------------------------------- authenticator


class Authenticator:
    """A CTAP 2.1 authenticator over a JSON state file.

    :param state_path: the state file; missing → a new device is created and
        saved there; existing → the device resumes. None keeps the state in
        memory only.
    :param presence: user-presence callback (default: the user always touches).
    :param verification: consent callback before a pinUvAuthToken is issued
        (default: approve).
    :param attestation: "packed" (self attestation, signed with the new
        credential's key) or "none".
    :param aaguid: the AAGUID of a newly created device (an existing state file
        keeps its own).
    :param reset_window: authenticatorReset is only allowed this many seconds
        after power-up (CTAP 2.1 §6.6: 10 s on real keys); None allows it at any
        time. `power_cycle()` restarts the window.
    :param max_resident_credentials: capacity of the discoverable-credential
        store (CTAP2_ERR_KEY_STORE_FULL beyond it).
    :param clock: monotonic seconds, injectable for tests of the timers
        (pinUvAuthToken usage limits, reset window, getNextAssertion timeout).
    """

    def __init__(
        self,
        state_path: str | os.PathLike[str] | None = None,
        *,
        presence: PresenceCallback = approve,
        verification: VerificationCallback = approve,
        attestation: Literal["packed", "none"] = "packed",
        aaguid: bytes | None = None,
        reset_window: float | None = 10.0,
        max_resident_credentials: int = 50,
        firmware_version: int = 0x010000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if attestation not in ("packed", "none"):
            raise ValueError("attestation must be 'packed' or 'none'")
        if aaguid is not None and len(aaguid) != 16:
            raise ValueError("an AAGUID is 16 bytes")
        self.presence = presence
        self.verification = verification
        self.attestation = attestation
        self.reset_window = reset_window
        self.max_resident_credentials = max_resident_credentials
        self.firmware_version = firmware_version
        self.internal_errors = 0
        """Commands that failed with an unexpected exception (answered CTAP1_ERR_OTHER)."""
        self._clock = clock
        self._lock = threading.RLock()
        self._file = StateFile(state_path)
        loaded = self._file.load()
        if loaded is None:
            self._state = DeviceState.new(aaguid or DEFAULT_AAGUID)
            self._file.save(self._state)
        else:
            self._state = loaded
        self._derive_keys()
        self._handlers: dict[int, Callable[[_Context, bytes], dict[int, object] | None]] = {
            CMD_MAKE_CREDENTIAL: self._make_credential,
            CMD_GET_ASSERTION: self._get_assertion,
            CMD_GET_INFO: self._get_info,
            CMD_CLIENT_PIN: self._client_pin,
            CMD_RESET: self._reset,
            CMD_GET_NEXT_ASSERTION: self._get_next_assertion,
            CMD_SELECTION: self._selection,
        }
        self.power_cycle()

    # ------------------------------------------------------------ public API

    def power_cycle(self) -> None:
        """Unplug and plug in again: new key-agreement keys and pinUvAuthTokens,
        the 3-mismatch PIN block lifted, the reset window restarted."""
        with self._lock:
            self._powered_at = self._clock()
            self._protocols = make_protocols(self._clock)
            self._pin_mismatches = 0
            self._pending: _PendingAssertions | None = None

    def process(
        self,
        command: int,
        payload: bytes = b"",
        *,
        cancel: threading.Event | None = None,
        keepalive: Callable[[int], None] | None = None,
    ) -> bytes:
        """Run one CTAP2 command; returns the status byte + CBOR response.

        :param cancel: set by the transport when the platform cancels; a
            pending user-presence request then ends with CTAP2_ERR_KEEPALIVE_CANCEL.
        :param keepalive: called with 2 (UPNEEDED) before waiting for the user
            and 1 (PROCESSING) after.
        """
        with self._lock:
            ctx = _Context(cancel or threading.Event(), keepalive)
            try:
                if command != CMD_GET_NEXT_ASSERTION:
                    self._pending = None
                handler = self._handlers.get(command)
                if handler is None:
                    raise CtapFail(Status.INVALID_COMMAND, f"command 0x{command:02x}")
                if 1 + len(payload) > MAX_MSG_SIZE:
                    raise CtapFail(Status.REQUEST_TOO_LARGE)
                response = handler(ctx, bytes(payload))
            except CtapFail as e:
                logger.debug("CTAP command 0x%02x failed: %s", command, e)
                return bytes([e.status])
            except Exception:
                self.internal_errors += 1
                logger.exception("CTAP command 0x%02x crashed", command)
                return bytes([Status.OTHER])
            if response is None:
                return b"\x00"
            return b"\x00" + cbor.encode(response)

    def clone(self, state_path: str | os.PathLike[str] | None = None) -> Authenticator:
        """Another, identical key: same master key, credentials, PIN and
        counters, saved to `state_path` (None: in memory), freshly powered up.
        Handy to provision a device once and fork it per test."""
        with self._lock:
            copy = DeviceState.from_json(self._state.to_json())
        twin = Authenticator(
            None,
            presence=self.presence,
            verification=self.verification,
            attestation=self.attestation,
            reset_window=self.reset_window,
            max_resident_credentials=self.max_resident_credentials,
            firmware_version=self.firmware_version,
            clock=self._clock,
        )
        twin._file = StateFile(state_path)
        twin._state = copy
        twin._derive_keys()
        twin._save()
        return twin

    @property
    def aaguid(self) -> bytes:
        return self._state.aaguid

    @property
    def pin_is_set(self) -> bool:
        return self._state.pin_hash is not None

    @property
    def pin_retries(self) -> int:
        return self._state.pin_retries

    @property
    def sign_count(self) -> int:
        return self._state.sign_count

    @property
    def resident_credentials(self) -> list[CredentialInfo]:
        with self._lock:
            return [
                CredentialInfo(
                    c.credential_id,
                    c.rp_id,
                    c.user_id,
                    c.user_name,
                    c.user_display_name,
                    c.hmac_secret,
                    c.cred_protect,
                )
                for c in sorted(self._state.credentials, key=lambda c: -c.created)
            ]

    @property
    def state_path(self) -> str | None:
        return None if self._file.path is None else str(self._file.path)

    # --------------------------------------------------------------- helpers

    def _derive_keys(self) -> None:
        self._wrap_key = AESGCM(self._state.derive(b"credential id"))
        self._cred_random_key = self._state.derive(b"hmac-secret CredRandom")

    def _save(self) -> None:
        self._file.save(self._state)

    @property
    def _protected(self) -> bool:
        return self._state.pin_hash is not None

    def _user_presence(
        self, ctx: _Context, purpose: str, rp_id: str | None = None, user: str | None = None
    ) -> PresenceResult:
        if ctx.cancel.is_set():
            raise CtapFail(Status.KEEPALIVE_CANCEL)
        ctx.status(KEEPALIVE_UPNEEDED)
        try:
            result = self.presence(PresenceRequest(purpose, rp_id, user, ctx.cancel))
        finally:
            ctx.status(KEEPALIVE_PROCESSING)
        if ctx.cancel.is_set():
            raise CtapFail(Status.KEEPALIVE_CANCEL)
        return result

    def _require_presence(
        self, ctx: _Context, purpose: str, rp_id: str | None = None, user: str | None = None
    ) -> None:
        if self._user_presence(ctx, purpose, rp_id, user) is not True:
            raise CtapFail(Status.OPERATION_DENIED, f"no user presence for {purpose}")

    def _next_sign_count(self) -> int:
        self._state.sign_count = (self._state.sign_count + 1) & 0xFFFFFFFF
        self._save()
        return self._state.sign_count

    def _cred_random(self, cred: _Credential, *, uv: bool) -> bytes:
        label = b"\x01" if uv else b"\x00"
        return hmac.new(self._cred_random_key, cred.private_scalar + label, hashlib.sha256).digest()

    def _wrap(self, rp_id_hash: bytes, scalar: bytes, flags: int, cred_protect: int) -> bytes:
        nonce = os.urandom(12)
        body = scalar + bytes([flags, cred_protect])
        return bytes([_CRED_ID_VERSION]) + nonce + self._wrap_key.encrypt(nonce, body, rp_id_hash)

    def _find(self, cred_id: bytes, rp_id_hash: bytes) -> _Credential | None:
        """The credential `cred_id` names, if this device made it for this RP."""
        if len(cred_id) != _CRED_ID_LENGTH or cred_id[0] != _CRED_ID_VERSION:
            return None
        try:
            body = self._wrap_key.decrypt(cred_id[1:13], cred_id[13:], rp_id_hash)
        except InvalidTag:
            return None
        scalar, flags, cred_protect = body[:32], body[32], body[33]
        resident = None
        if flags & _CRED_FLAG_RK:
            resident = next(
                (c for c in self._state.credentials if c.credential_id == cred_id), None
            )
            if resident is None:
                return None  # deleted or overwritten
        return _Credential(cred_id, scalar, bool(flags & _CRED_FLAG_HMAC), cred_protect, resident)

    def _check_token(
        self,
        protocol: PinUvAuthProtocol,
        client_data_hash: bytes,
        pin_uv_auth_param: bytes,
        permission: int,
        rp_id: str,
    ) -> _Token:
        """§6.1.2 step 11.1 / §6.2.2 step 6.1: verify the pinUvAuthParam."""
        token = protocol.token
        token.check_expiry()
        if not token.in_use or not protocol.verify(
            token.value, client_data_hash, pin_uv_auth_param
        ):
            raise CtapFail(Status.PIN_AUTH_INVALID, "pinUvAuthParam does not verify")
        if not token.permissions & permission:
            raise CtapFail(Status.PIN_AUTH_INVALID, "token lacks the permission")
        if token.rp_id is not None and token.rp_id != rp_id:
            raise CtapFail(Status.PIN_AUTH_INVALID, "token bound to another RP ID")
        if not token.user_verified:
            raise CtapFail(Status.PIN_AUTH_INVALID, "token's user-verified flag is clear")
        if token.rp_id is None:
            token.rp_id = rp_id
        token.mark_used()
        return _Token(protocol, token.user_present)

    def _clear_tokens_after_up(self) -> None:
        for protocol in self._protocols.values():
            protocol.token.clear_after_up()

    def _zero_length_pin_auth(self, ctx: _Context, rp_id: str | None) -> None:
        """§6.1.2 / §6.2.2 step 1: a platform asking the user to pick this device."""
        if self._user_presence(ctx, "pinUvAuthParamProbe", rp_id) is not True:
            raise CtapFail(Status.OPERATION_DENIED)
        raise CtapFail(Status.PIN_INVALID if self._protected else Status.PIN_NOT_SET)

    def _pin_protocol_for(
        self, pin_uv_auth_param: bytes | None, version: int | None
    ) -> PinUvAuthProtocol | None:
        """§6.1.2 / §6.2.2 step 2."""
        if pin_uv_auth_param is None:
            return None
        if version is None:
            raise _missing("pinUvAuthProtocol")
        return select_protocol(self._protocols, version)

    # -------------------------------------------------------------- getInfo

    def _get_info(self, ctx: _Context, payload: bytes) -> dict[int, object]:
        return {
            0x01: ["FIDO_2_0", "FIDO_2_1"],
            0x02: ["credProtect", "hmac-secret"],
            0x03: self._state.aaguid,
            0x04: {
                "rk": True,
                "up": True,
                "plat": False,
                "clientPin": self._protected,
                "pinUvAuthToken": True,
                "makeCredUvNotRqd": True,
            },
            0x05: MAX_MSG_SIZE,
            0x06: [2, 1],
            0x07: MAX_CREDENTIAL_COUNT_IN_LIST,
            0x08: _CRED_ID_LENGTH,
            0x09: ["usb"],
            0x0A: [{"alg": ES256, "type": "public-key"}],
            0x0D: MIN_PIN_LENGTH,
            0x0E: self.firmware_version,
            0x14: max(0, self.max_resident_credentials - len(self._state.credentials)),
        }

    # ------------------------------------------------------- makeCredential

    def _make_credential(self, ctx: _Context, payload: bytes) -> dict[int, object]:
        p = _params(payload)
        client_data_hash = _req_bytes(p, 1, "clientDataHash")
        rp = _req_map(p, 2, "rp")
        user = _req_map(p, 3, "user")
        params = p.get(4)
        if params is None:
            raise _missing("pubKeyCredParams")
        if not isinstance(params, list):
            raise _wrong("pubKeyCredParams")
        exclude = _descriptors(_opt_list(p, 5, "excludeList"), "excludeList")
        extensions = _extensions(_opt_map(p, 6, "extensions"))
        options = _options(_opt_map(p, 7, "options"))
        pin_uv_auth_param = _opt_bytes(p, 8, "pinUvAuthParam")
        pin_protocol_version = _opt_int(p, 9, "pinUvAuthProtocol")
        enterprise = _opt_int(p, 10, "enterpriseAttestation")

        rp_id = _req_text(rp, "id", "rp.id")
        _opt_text(rp, "name", "rp.name")
        user_id = _req_bytes(user, "id", "user.id")
        user_name = _opt_text(user, "name", "user.name")
        display_name = _opt_text(user, "displayName", "user.displayName")
        _check_client_data_hash(client_data_hash)
        if len(user_id) > MAX_USER_ID_LENGTH:
            raise CtapFail(Status.INVALID_LENGTH, "user.id longer than 64 bytes")
        hmac_secret = extensions.get("hmac-secret")
        if hmac_secret is not None and not isinstance(hmac_secret, bool):
            raise _wrong("hmac-secret")
        cred_protect = extensions.get("credProtect")
        if cred_protect is not None and (
            isinstance(cred_protect, bool) or not isinstance(cred_protect, int)
        ):
            raise _wrong("credProtect")

        # 1. zero-length pinUvAuthParam  2. pinUvAuthProtocol
        if pin_uv_auth_param is not None and not pin_uv_auth_param:
            self._zero_length_pin_auth(ctx, rp_id)
        protocol = self._pin_protocol_for(pin_uv_auth_param, pin_protocol_version)

        # 3. pubKeyCredParams
        chosen = False
        for entry in params:
            if not isinstance(entry, dict):
                raise _wrong("pubKeyCredParams entry")
            kind, alg = entry.get("type"), entry.get("alg")
            if kind is None or alg is None:
                raise CtapFail(Status.INVALID_CBOR, "pubKeyCredParams entry lacks type or alg")
            if not isinstance(kind, str) or isinstance(alg, bool) or not isinstance(alg, int):
                raise _wrong("pubKeyCredParams entry")
            if kind == "public-key" and alg == ES256:
                chosen = True
        if not chosen:
            raise CtapFail(Status.UNSUPPORTED_ALGORITHM)

        # 5. options
        uv = options.get("uv", False) and pin_uv_auth_param is None
        if uv:
            raise CtapFail(Status.INVALID_OPTION, "no built-in user verification")
        rk = options.get("rk", False)
        if options.get("up") is False:
            raise CtapFail(Status.INVALID_OPTION, "makeCredential requires up")

        # 7. makeCredUvNotRqd is true: only discoverable credentials need UV.
        if self._protected and pin_uv_auth_param is None and rk:
            raise CtapFail(Status.PUAT_REQUIRED)
        # 9. enterprise attestation is not supported ("ep" absent)
        if enterprise is not None:
            raise CtapFail(Status.INVALID_PARAMETER, "enterprise attestation unsupported")

        # 10./11. user verification through the pinUvAuthToken
        rp_id_hash = hashlib.sha256(rp_id.encode()).digest()
        token: _Token | None = None
        if self._protected and protocol is not None and pin_uv_auth_param is not None:
            token = self._check_token(
                protocol, client_data_hash, pin_uv_auth_param, PERMISSION_MC, rp_id
            )
        uv_bit = token is not None

        # 12. excludeList
        for descriptor in exclude:
            excluded = self._find(descriptor.id, rp_id_hash)
            if excluded is not None and (excluded.cred_protect != 3 or uv_bit):
                if not (token is not None and token.user_present):
                    self._user_presence(ctx, "credentialExcluded", rp_id, user_name)
                raise CtapFail(Status.CREDENTIAL_EXCLUDED)

        # 14. user presence
        if not (token is not None and token.user_present):
            self._require_presence(ctx, "makeCredential", rp_id, user_name)
        self._clear_tokens_after_up()

        # 15. extensions
        outputs: dict[str, object] = {}
        protect_level = 1
        if cred_protect is not None:
            if cred_protect not in (1, 2, 3):
                raise CtapFail(Status.INVALID_PARAMETER, "credProtect must be 1, 2 or 3")
            protect_level = int(cred_protect)
            outputs["credProtect"] = protect_level
        if hmac_secret is True:
            outputs["hmac-secret"] = True

        # 16.-17. the credential
        key = ec.generate_private_key(ec.SECP256R1())
        scalar = key.private_numbers().private_value.to_bytes(32, "big")
        flags = (_CRED_FLAG_RK if rk else 0) | (_CRED_FLAG_HMAC if hmac_secret else 0)
        cred_id = self._wrap(rp_id_hash, scalar, flags, protect_level)
        if rk:
            kept = [
                c
                for c in self._state.credentials
                if not (c.rp_id == rp_id and c.user_id == user_id)
            ]
            if len(kept) >= self.max_resident_credentials:
                raise CtapFail(Status.KEY_STORE_FULL)
            self._state.creation_counter += 1
            kept.append(
                ResidentCredential(
                    credential_id=cred_id,
                    rp_id=rp_id,
                    rp_name=_opt_text(rp, "name", "rp.name"),
                    user_id=user_id,
                    user_name=user_name,
                    user_display_name=display_name,
                    private_key=scalar,
                    hmac_secret=bool(hmac_secret),
                    cred_protect=protect_level,
                    created=self._state.creation_counter,
                )
            )
            self._state.credentials = kept

        # 19. authenticatorData and attestation
        counter = self._next_sign_count()  # also saves the new credential
        auth_flags = FLAG_UP | FLAG_AT | (FLAG_UV if uv_bit else 0) | (FLAG_ED if outputs else 0)
        public = cbor.encode(cose_p256_public(key.public_key(), ES256))
        auth_data = (
            rp_id_hash
            + struct.pack(">BI", auth_flags, counter)
            + self._state.aaguid
            + struct.pack(">H", len(cred_id))
            + cred_id
            + public
            + (cbor.encode(outputs) if outputs else b"")
        )
        if self.attestation == "packed":
            signature = key.sign(auth_data + client_data_hash, ec.ECDSA(hashes.SHA256()))
            return {1: "packed", 2: auth_data, 3: {"alg": ES256, "sig": signature}}
        return {1: "none", 2: auth_data, 3: {}}

    # --------------------------------------------------------- getAssertion

    def _get_assertion(self, ctx: _Context, payload: bytes) -> dict[int, object]:
        p = _params(payload)
        rp_id = _req_text(p, 1, "rpId")
        client_data_hash = _req_bytes(p, 2, "clientDataHash")
        allow_list = _opt_list(p, 3, "allowList")
        allow = _descriptors(allow_list, "allowList")
        extensions = _extensions(_opt_map(p, 4, "extensions"))
        raw_options = _opt_map(p, 5, "options")
        options = _options(raw_options)
        pin_uv_auth_param = _opt_bytes(p, 6, "pinUvAuthParam")
        pin_protocol_version = _opt_int(p, 7, "pinUvAuthProtocol")
        _check_client_data_hash(client_data_hash)
        hmac_value = extensions.get("hmac-secret")
        hmac_input: dict[object, object] | None = None
        if hmac_value is not None:
            if not isinstance(hmac_value, dict):
                raise _wrong("hmac-secret")
            hmac_input = hmac_value
            _req_map(hmac_input, 1, "hmac-secret keyAgreement")
            _req_bytes(hmac_input, 2, "hmac-secret saltEnc")
            _req_bytes(hmac_input, 3, "hmac-secret saltAuth")
            _opt_int(hmac_input, 4, "hmac-secret pinUvAuthProtocol")

        # 1.-2.
        if pin_uv_auth_param is not None and not pin_uv_auth_param:
            self._zero_length_pin_auth(ctx, rp_id)
        protocol = self._pin_protocol_for(pin_uv_auth_param, pin_protocol_version)

        # 4. options
        if options.get("uv", False) and pin_uv_auth_param is None:
            raise CtapFail(Status.INVALID_OPTION, "no built-in user verification")
        if "rk" in options:
            raise CtapFail(Status.UNSUPPORTED_OPTION, "rk is not a getAssertion option")
        up = options.get("up", True)

        # 6. user verification through the pinUvAuthToken
        token: _Token | None = None
        if self._protected and protocol is not None and pin_uv_auth_param is not None:
            token = self._check_token(
                protocol, client_data_hash, pin_uv_auth_param, PERMISSION_GA, rp_id
            )
        uv_bit = token is not None

        # 7. applicable credentials
        rp_id_hash = hashlib.sha256(rp_id.encode()).digest()
        credentials: list[_Credential] = []
        if allow_list:
            seen: set[bytes] = set()
            for descriptor in allow:
                found = self._find(descriptor.id, rp_id_hash)
                if found is not None and found.credential_id not in seen:
                    seen.add(found.credential_id)
                    credentials.append(found)
        else:
            for stored in sorted(self._state.credentials, key=lambda c: -c.created):
                if stored.rp_id == rp_id:
                    credentials.append(
                        _Credential(
                            stored.credential_id,
                            stored.private_key,
                            stored.hmac_secret,
                            stored.cred_protect,
                            stored,
                        )
                    )
        credentials = [
            c
            for c in credentials
            if uv_bit or c.cred_protect == 1 or (c.cred_protect == 2 and allow_list)
        ]
        if not credentials:
            raise CtapFail(Status.NO_CREDENTIALS)

        # 9. user presence
        flags = 0
        if up:
            if not (token is not None and token.user_present):
                self._require_presence(ctx, "getAssertion", rp_id)
            flags |= FLAG_UP
            self._clear_tokens_after_up()
        if uv_bit:
            flags |= FLAG_UV

        # 10. extensions
        hmac_secret = None
        if hmac_input is not None:
            if not up:
                raise CtapFail(Status.UNSUPPORTED_OPTION, "hmac-secret requires up")
            hmac_secret = self._hmac_secret_input(hmac_input)

        # 11.-12. select
        pending = _PendingAssertions(
            rp_id_hash,
            client_data_hash,
            credentials,
            flags,
            uv_bit,
            hmac_secret,
            1,
            self._clock(),
        )
        response = self._assertion(pending, credentials[0])
        if not allow_list and len(credentials) > 1:
            response[5] = len(credentials)
            self._pending = pending
        return response

    def _hmac_secret_input(self, value: dict[object, object]) -> _HmacSecretInput:
        """hmac-secret authenticator processing (CTAP 2.1 extension), up to the salts."""
        version = _opt_int(value, 4, "hmac-secret pinUvAuthProtocol")
        protocol = select_protocol(self._protocols, 1 if version is None else version)
        salt_enc = _req_bytes(value, 2, "saltEnc")
        salt_auth = _req_bytes(value, 3, "saltAuth")
        try:
            shared = protocol.decapsulate(value.get(1))
        except ProtocolError as e:
            raise CtapFail(Status.INVALID_PARAMETER, str(e)) from e
        if not protocol.verify(shared, salt_enc, salt_auth):
            raise CtapFail(Status.PIN_AUTH_INVALID, "saltAuth does not verify")
        try:
            salts = protocol.decrypt(shared, salt_enc)
        except ProtocolError as e:
            raise CtapFail(Status.INVALID_PARAMETER, str(e)) from e
        if len(salts) not in (32, 64):
            raise CtapFail(Status.INVALID_PARAMETER, "salts must be 32 or 64 bytes")
        return _HmacSecretInput(protocol, shared, [salts[:32], salts[32:]][: len(salts) // 32])

    def _assertion(self, pending: _PendingAssertions, cred: _Credential) -> dict[int, object]:
        flags = pending.flags
        outputs: dict[str, object] = {}
        if pending.hmac is not None and cred.hmac_secret:
            secret = self._cred_random(cred, uv=pending.user_verified)
            output = b"".join(
                hmac.new(secret, salt, hashlib.sha256).digest() for salt in pending.hmac.salts
            )
            outputs["hmac-secret"] = pending.hmac.protocol.encrypt(
                pending.hmac.shared_secret, output
            )
        if outputs:
            flags |= FLAG_ED
        counter = self._next_sign_count()
        auth_data = (
            pending.rp_id_hash
            + struct.pack(">BI", flags, counter)
            + (cbor.encode(outputs) if outputs else b"")
        )
        signature = cred.private_key().sign(
            auth_data + pending.client_data_hash, ec.ECDSA(hashes.SHA256())
        )
        response: dict[int, object] = {
            1: {"id": cred.credential_id, "type": "public-key"},
            2: auth_data,
            3: signature,
        }
        if cred.resident is not None:
            user: dict[str, object] = {"id": cred.resident.user_id}
            if pending.user_verified:
                # User-identifiable information only after user verification.
                if cred.resident.user_name is not None:
                    user["name"] = cred.resident.user_name
                if cred.resident.user_display_name is not None:
                    user["displayName"] = cred.resident.user_display_name
            response[4] = user
        return response

    def _get_next_assertion(self, ctx: _Context, payload: bytes) -> dict[int, object]:
        pending = self._pending
        if pending is None:
            raise CtapFail(Status.NOT_ALLOWED, "no getAssertion to continue")
        if pending.next_index >= len(pending.credentials):
            self._pending = None
            raise CtapFail(Status.NOT_ALLOWED, "no more credentials")
        now = self._clock()
        if now - pending.timestamp > NEXT_ASSERTION_TIMEOUT:
            self._pending = None
            raise CtapFail(Status.NOT_ALLOWED, "getNextAssertion timer expired")
        cred = pending.credentials[pending.next_index]
        pending.next_index += 1
        pending.timestamp = now
        return self._assertion(pending, cred)

    # ------------------------------------------------------------ clientPIN

    def _client_pin(self, ctx: _Context, payload: bytes) -> dict[int, object] | None:
        p = _params(payload)
        version = _opt_int(p, 1, "pinUvAuthProtocol")
        sub = _req_int(p, 2, "subCommand")
        _opt_map(p, 3, "keyAgreement")
        _opt_bytes(p, 4, "pinUvAuthParam")
        _opt_bytes(p, 5, "newPinEnc")
        _opt_bytes(p, 6, "pinHashEnc")
        permissions = _opt_int(p, 9, "permissions")
        _opt_text(p, 10, "rpId")

        if sub == SUB_GET_PIN_RETRIES:
            return {
                3: self._state.pin_retries,
                4: self._pin_mismatches >= MAX_CONSECUTIVE_PIN_MISMATCHES,
            }
        required = {
            SUB_GET_KEY_AGREEMENT: (1,),
            SUB_SET_PIN: (1, 3, 4, 5),
            SUB_CHANGE_PIN: (1, 3, 4, 5, 6),
            SUB_GET_PIN_TOKEN: (1, 3, 6),
            SUB_GET_TOKEN_USING_PIN: (1, 3, 6, 9),
        }.get(sub)
        if required is None:
            # Includes the built-in UV subcommands (0x06, 0x07): no biometric here.
            raise CtapFail(Status.INVALID_SUBCOMMAND, f"subCommand 0x{sub:02x}")
        for key in required:
            if p.get(key) is None:
                raise _missing(f"clientPIN parameter {key}")
        protocol = select_protocol(self._protocols, version)
        if sub == SUB_GET_KEY_AGREEMENT:
            return {1: protocol.get_public_key()}
        if sub == SUB_SET_PIN:
            self._set_pin(protocol, p)
            return None
        if sub == SUB_CHANGE_PIN:
            self._change_pin(protocol, p)
            return None
        if sub == SUB_GET_PIN_TOKEN:
            if permissions is not None or 10 in p:
                raise CtapFail(Status.INVALID_PARAMETER, "getPinToken takes no permissions")
            return self._pin_token(ctx, protocol, p, PERMISSION_MC | PERMISSION_GA, None)
        assert permissions is not None
        if permissions == 0:
            raise CtapFail(Status.INVALID_PARAMETER, "permissions is 0")
        if permissions & 0x7C:  # cm, be, lbw, acfg, pcmr: not supported by this device
            raise CtapFail(Status.UNAUTHORIZED_PERMISSION)
        rp_id = _opt_text(p, 10, "rpId")
        return self._pin_token(
            ctx, protocol, p, permissions & (PERMISSION_MC | PERMISSION_GA), rp_id
        )

    def _shared_secret(self, protocol: PinUvAuthProtocol, p: Mapping[object, object]) -> bytes:
        try:
            return protocol.decapsulate(p.get(3))
        except ProtocolError as e:
            raise CtapFail(Status.INVALID_PARAMETER, str(e)) from e

    def _new_pin(self, protocol: PinUvAuthProtocol, shared: bytes, new_pin_enc: bytes) -> None:
        """Decrypt, check and store a new PIN (setPIN steps 6-12, changePIN 9-18)."""
        try:
            padded = protocol.decrypt(shared, new_pin_enc)
        except ProtocolError as e:
            raise CtapFail(Status.PIN_AUTH_INVALID, str(e)) from e
        if len(padded) != 64:
            raise CtapFail(Status.INVALID_PARAMETER, "paddedNewPin is not 64 bytes")
        pin = padded.rstrip(b"\x00")
        try:
            code_points = len(pin.decode("utf-8"))
        except UnicodeDecodeError as e:
            raise CtapFail(Status.PIN_POLICY_VIOLATION, "PIN is not UTF-8") from e
        if code_points < MIN_PIN_LENGTH or len(pin) > MAX_PIN_BYTES:
            raise CtapFail(Status.PIN_POLICY_VIOLATION, "PIN length out of bounds")
        self._state.pin_hash = hashlib.sha256(pin).digest()[:16]
        self._state.pin_code_points = code_points
        self._state.pin_retries = PIN_RETRIES_MAX
        self._save()
        for each in self._protocols.values():
            each.token.reset()

    def _set_pin(self, protocol: PinUvAuthProtocol, p: Mapping[object, object]) -> None:
        pin_uv_auth_param = _req_bytes(p, 4, "pinUvAuthParam")
        new_pin_enc = _req_bytes(p, 5, "newPinEnc")
        if self._protected:
            raise CtapFail(Status.PIN_AUTH_INVALID, "a PIN is already set")
        shared = self._shared_secret(protocol, p)
        if not protocol.verify(shared, new_pin_enc, pin_uv_auth_param):
            raise CtapFail(Status.PIN_AUTH_INVALID)
        self._new_pin(protocol, shared, new_pin_enc)

    def _check_pin_usable(self) -> None:
        if not self._protected:
            raise CtapFail(Status.PIN_NOT_SET)
        if self._state.pin_retries <= 0:
            raise CtapFail(Status.PIN_BLOCKED)
        if self._pin_mismatches >= MAX_CONSECUTIVE_PIN_MISMATCHES:
            raise CtapFail(Status.PIN_AUTH_BLOCKED, "power cycle needed")

    def _verify_pin_hash(
        self, protocol: PinUvAuthProtocol, shared: bytes, pin_hash_enc: bytes
    ) -> None:
        """Decrement the retries, compare, and on a mismatch fail as §6.5.5.7 says."""
        self._state.pin_retries -= 1
        self._save()
        try:
            pin_hash = protocol.decrypt(shared, pin_hash_enc)
        except ProtocolError:
            pin_hash = b""
        stored = self._state.pin_hash or b""
        if len(pin_hash) != 16 or not hmac.compare_digest(pin_hash, stored):
            protocol.regenerate()
            self._pin_mismatches += 1
            if self._state.pin_retries <= 0:
                raise CtapFail(Status.PIN_BLOCKED)
            if self._pin_mismatches >= MAX_CONSECUTIVE_PIN_MISMATCHES:
                raise CtapFail(Status.PIN_AUTH_BLOCKED)
            raise CtapFail(Status.PIN_INVALID)
        self._state.pin_retries = PIN_RETRIES_MAX
        self._pin_mismatches = 0
        self._save()

    def _change_pin(self, protocol: PinUvAuthProtocol, p: Mapping[object, object]) -> None:
        pin_uv_auth_param = _req_bytes(p, 4, "pinUvAuthParam")
        new_pin_enc = _req_bytes(p, 5, "newPinEnc")
        pin_hash_enc = _req_bytes(p, 6, "pinHashEnc")
        self._check_pin_usable()
        shared = self._shared_secret(protocol, p)
        if not protocol.verify(shared, new_pin_enc + pin_hash_enc, pin_uv_auth_param):
            raise CtapFail(Status.PIN_AUTH_INVALID)
        self._verify_pin_hash(protocol, shared, pin_hash_enc)
        self._new_pin(protocol, shared, new_pin_enc)

    def _pin_token(
        self,
        ctx: _Context,
        protocol: PinUvAuthProtocol,
        p: Mapping[object, object],
        permissions: int,
        rp_id: str | None,
    ) -> dict[int, object]:
        pin_hash_enc = _req_bytes(p, 6, "pinHashEnc")
        self._check_pin_usable()
        shared = self._shared_secret(protocol, p)
        if not self.verification(VerificationRequest(permissions, rp_id, ctx.cancel)):
            raise CtapFail(Status.OPERATION_DENIED, "user refused the permissions")
        self._verify_pin_hash(protocol, shared, pin_hash_enc)
        for each in self._protocols.values():
            each.token.reset()
        protocol.token.begin(user_present=False, permissions=permissions, rp_id=rp_id)
        return {2: protocol.encrypt(shared, protocol.token.value)}

    # ------------------------------------------------- reset and selection

    def _reset(self, ctx: _Context, payload: bytes) -> None:
        if self.reset_window is not None and self._clock() - self._powered_at > self.reset_window:
            raise CtapFail(Status.NOT_ALLOWED, "reset only right after power-up")
        result = self._user_presence(ctx, "reset")
        if result is None:
            raise CtapFail(Status.USER_ACTION_TIMEOUT)
        if result is not True:
            raise CtapFail(Status.OPERATION_DENIED)
        self._state = DeviceState.new(self._state.aaguid)
        self._derive_keys()
        self._save()
        self._protocols = make_protocols(self._clock)
        self._pin_mismatches = 0

    def _selection(self, ctx: _Context, payload: bytes) -> None:
        result = self._user_presence(ctx, "selection")
        if result is None:
            raise CtapFail(Status.USER_ACTION_TIMEOUT)
        if result is not True:
            raise CtapFail(Status.OPERATION_DENIED)


__all__ = [
    "DEFAULT_AAGUID",
    "Authenticator",
    "CredentialInfo",
    "PresenceCallback",
    "PresenceRequest",
    "PresenceResult",
    "TouchButton",
    "VerificationCallback",
    "VerificationRequest",
    "approve",
    "deny",
    "no_touch",
]

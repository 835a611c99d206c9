"""The network's relay to its PIN hardener (docs/protocol.md §17).

A phone with a hardened PIN never talks to the hardener: it talks to the
network, which is the hardener's caller (mTLS, credentials in the data
directory) and relays. The network identifies the token: the hardener's user
id is `token:<hex token id>` of an active token of the directory, so a phone
cannot spend another token's budget, nor dodge its own by naming another.
Registering a success key needs the token's signature (its enrolled key),
so someone holding only a copied key store cannot enrol a key of their own
and reset the count with it.

Hardener errors become authnet errors here, and only here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from authnet import errors as e
from authnet.config import Config, ConfigError
from authnet.network import PURPOSE_ENROL_PIN, Network, TokenProof
from authnet.protocol import messages
from authnet.protocol.ids import check_id

if TYPE_CHECKING:
    # The hardener package is imported only by a network that has a hardener
    # (open_relay), so a node without one runs without it.
    from hardener.client import Evaluation, Keys
    from hardener.errors import HardenerError

log = logging.getLogger("authnet.pin")

KEYS_CACHE_S = 30.0
PIN_ATTEMPTS = 10
T = TypeVar("T")


def user_id_of(token_id: bytes) -> str:
    """The token's user id at the hardener (its own budget)."""
    return "token:" + token_id.hex()


@dataclass(frozen=True, kw_only=True)
class HardenerKeys:
    caller: str
    keys: dict[int, bytes]
    current_version: int


@dataclass(frozen=True, kw_only=True)
class PinEvaluation:
    evaluation: Evaluation
    # The hardener's current key version (from GetKeys, cached).
    current_version: int


class HardenerCaller(Protocol):
    """What the relay needs of `hardener.client.HardenerClient`."""

    async def get_keys(self) -> Keys: ...

    async def evaluate(
        self, user_id: str, blinded_element: bytes, key_version: int = 0
    ) -> Evaluation: ...

    async def report_success(self, user_id: str, attempt_id: bytes, signature: bytes) -> int: ...

    async def enrol(
        self,
        user_id: str,
        success_public_key: bytes,
        *,
        attempt_id: bytes = b"",
        signature: bytes = b"",
    ) -> bool: ...

    async def close(self) -> None: ...


def translate(err: HardenerError) -> e.AuthnetError:
    """The authnet error a hardener refusal stands for (the one boundary).
    A `hardener_refused` carries the hardener's code in `detail`."""
    out = _translate(err)
    if isinstance(out, e.HardenerRefused):
        out.detail["hardener_code"] = err.code
    return out


def _translate(err: HardenerError) -> e.AuthnetError:
    from hardener import errors as h

    if isinstance(err, h.UserLocked):
        # The hardener's hint names its operator's command: for the log, not the phone.
        log.info("pin locked at the hardener (%s)", err.hint or "no hint")
        return e.PinLocked(
            f"PIN locked: {PIN_ATTEMPTS} wrong PINs without a correct one, so the network's "
            "hardener no longer checks this token's PIN. Log in with another token of the "
            "account and revoke this one, or ask the network's operator to unlock it "
            "(the hardener's recovery step)",
            retries_left=0,
        )
    if isinstance(err, h.UserBackoff | h.RateLimited):
        wait = max(int(err.retry_after_ms), 1)
        return e.RateLimited(
            f"too many PIN attempts in a row for this token: wait {(wait + 999) // 1000} s "
            "before the next one",
            retry_after_ms=wait,
        )
    if isinstance(err, h.HardenerUnavailable | h.StoreError | h.KeystoreError):
        return e.HardenerUnavailable()
    if isinstance(err, h.SignatureInvalid):
        return e.SignatureInvalid("the success signature does not verify: nothing was changed")
    if isinstance(err, h.InvalidArgument):
        return e.MalformedInput(f"the hardener refused a field: {err.message}")
    if isinstance(err, h.AlreadyEnrolled):
        return e.HardenerRefused(
            "this token already has a PIN success key: replacing it needs the old key's "
            "signature (change the PIN with the current one)"
        )
    if isinstance(err, h.NotEnrolled):
        return e.HardenerRefused("this token has no PIN success key at the hardener: set the PIN")
    if isinstance(err, h.AttemptUsed | h.AttemptUnknown | h.AttemptExpired):
        return e.ChallengeInvalid(f"PIN attempt refused by the hardener: {err.message}")
    if isinstance(err, h.KeyVersionUnknown | h.KeyVersionRetired):
        return e.HardenerRefused(
            f"{err.message}: the hardener no longer has the key this key store was sealed "
            "under; it cannot be opened through it"
        )
    if isinstance(err, h.CallerUnknown | h.CallerRevoked):
        log.error("the hardener refused this network as a caller: %s", err.code)
        return e.HardenerRefused(
            "the network's hardener does not accept this network as a caller "
            "(an operator problem): try again later"
        )
    return e.HardenerRefused(f"the network's hardener refused: {err.code}")


class PinRelay:
    """`client`: the network's hardener client, or None when it has none."""

    def __init__(
        self,
        network: Network,
        client: HardenerCaller | None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.network = network
        self.client = client
        self.clock = clock
        self._keys: HardenerKeys | None = None
        self._keys_until = 0.0

    def _require(self) -> HardenerCaller:
        if self.client is None:
            raise e.HardenerNotConfigured()
        return self.client

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        from hardener.errors import HardenerError

        try:
            return await call()
        except HardenerError as err:
            raise translate(err) from None

    async def keys(self, *, fresh: bool = False) -> HardenerKeys:
        client = self._require()
        now = self.clock()
        if self._keys is not None and not fresh and now < self._keys_until:
            return self._keys
        r = await self._call(client.get_keys)
        keys = {k.version: k.public_key for k in r.keys if k.public_key and k.state != "retired"}
        self._keys = HardenerKeys(
            caller=str(r.caller), keys=keys, current_version=int(r.current_version)
        )
        self._keys_until = now + KEYS_CACHE_S
        return self._keys

    def forget_keys(self) -> None:
        """Read the hardener's keys afresh at the next call (a rotation is
        otherwise noticed within KEYS_CACHE_S)."""
        self._keys = None

    async def _user(self, token_id: bytes) -> str:
        check_id(token_id, field="token_id")
        token = await self.network.active_token(token_id, fresh=True)
        return user_id_of(token.token_id)

    async def info(self, token_id: bytes) -> tuple[str, HardenerKeys]:
        self._require()
        user = await self._user(token_id)
        return user, await self.keys(fresh=True)

    async def harden(
        self, token_id: bytes, blinded_element: bytes, key_version: int
    ) -> PinEvaluation:
        client = self._require()
        if len(blinded_element) != 32:
            raise e.MalformedInput("blinded_element must be 32 bytes")
        user = await self._user(token_id)
        # Before the evaluation, so a failure here spends no attempt.
        keys = await self.keys()
        r = await self._call(lambda: client.evaluate(user, blinded_element, key_version))
        log.info("pin evaluated key_version=%d attempts_left=%d", r.key_version, r.attempts_left)
        return PinEvaluation(evaluation=r, current_version=keys.current_version)

    async def confirm(self, token_id: bytes, attempt_id: bytes, signature: bytes) -> int:
        client = self._require()
        user = await self._user(token_id)
        version = await self._call(lambda: client.report_success(user, attempt_id, signature))
        log.info("pin success reported key_version=%d", version)
        return version

    async def enrol(
        self,
        proof: TokenProof,
        success_public_key: bytes,
        *,
        attempt_id: bytes = b"",
        replace_signature: bytes = b"",
    ) -> bool:
        client = self._require()
        if len(success_public_key) != 32:
            raise e.MalformedInput("success_public_key must be a raw 32-byte Ed25519 key")
        token = await self.network.check_proof(
            proof,
            PURPOSE_ENROL_PIN,
            lambda t: messages.enrol_pin(
                challenge=proof.challenge,
                token_id=t.token_id,
                success_public_key=success_public_key,
            ),
        )
        user = user_id_of(token.token_id)
        replaced = await self._call(
            lambda: client.enrol(
                user, success_public_key, attempt_id=attempt_id, signature=replace_signature
            )
        )
        log.info("pin success key enrolled replaced=%s", replaced)
        return replaced

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


def open_relay(network: Network, config: Config) -> PinRelay:
    """The relay the config asks for: with a hardener client when
    `hardener_address` is set (its caller credentials must be readable), or
    one that answers no_hardener."""
    if not config.hardener_address:
        return PinRelay(network, None)
    from hardener.client import HardenerClient
    from hardener.credentials import CallerCredentials
    from hardener.errors import HardenerError

    directory = config.hardener_credentials_dir
    try:
        credentials = CallerCredentials.load(directory)
    except HardenerError as err:
        raise ConfigError(
            f"hardener_credentials: {err.message}; write them with "
            f"`hardener caller add NAME --out {directory}` on the hardener's host"
        ) from None
    client = HardenerClient(
        config.hardener_address,
        credentials,
        timeout=config.hardener_timeout_s,
        server_name=config.hardener_server_name or None,
    )
    log.info("pin hardener %s as caller %s", config.hardener_address, credentials.name)
    return PinRelay(network, client)

"""Registered devices, their bypass wraps and device approval requests, as
stored (docs/devices.md 2-5).

The server keeps a device's public keys, name and state, and the two bypass
wraps it cannot open (device_wrap under KEK_b, which needs T; sealed_kek to
the device's own key). What it enforces: a proof by the device's signing key
at registration and at every bypass login (over the session's single-use
nonce); the policy of the account's organisation; revocation and expiry,
which delete the wraps at once (revocation also ends the device's sessions);
approval codes stored only as hashes, with a per-account limit on wrong ones.

Expiry is swept at read: every function here that reads devices first
expires those unused for the policy's device_expiry_seconds.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vault_api.crypto import codes
from vault_api.crypto import devices as dc
from vault_api.crypto.errors import DeviceProofInvalid
from vault_api.crypto.ids import short
from vault_api.errors import Conflict, Forbidden, Gone, NotFound, TooMany
from vault_api.models import (
    ApproveIn,
    BypassIn,
    DeviceIn,
    DeviceOut,
    DeviceRequestCreatedOut,
    DeviceRequestIn,
    DeviceRequestOut,
    DevicesOut,
    OpenOut,
)
from vault_api.schema import (
    device_request_failures,
    device_requests,
    devices,
    passphrase_wraps,
    sessions,
    users,
)
from vault_api.store import factors as factor_store
from vault_api.store import orgs

if TYPE_CHECKING:
    from vault_api.store.orgs import Defaults, Policy

# Ended (expired, revoked) devices are listed this long, then deleted.
KEEP_ENDED_MS: Final = 30 * 24 * 3600 * 1000
# Wrong approval codes per account before its requests are locked.
MAX_WRONG_CODES: Final = 10
# A request's code: Crockford base32 symbols (vault_api.crypto.codes), 50 bits.
CODE_SYMBOLS: Final = 10


# --- the caller ---------------------------------------------------------------------


def session_row(conn: Connection, session_hash: bytes) -> Any:
    return conn.execute(sessions.select().where(sessions.c.session_hash == session_hash)).one()


def _unlocked(sess: Any) -> bool:
    return sess.passphrase_unlocked_ms is not None


# --- reading and sweeping -----------------------------------------------------------


def expires_ms(row: Any, policy: Policy) -> int | None:
    if row.state != "active" or policy.device_expiry_seconds == 0:
        return None
    return int(row.last_used_ms) + policy.device_expiry_seconds * 1000


def device_out(row: Any, policy: Policy, current: bytes | None) -> DeviceOut:
    return DeviceOut.model_construct(
        device_id=row.device_id,
        name=row.name,
        user_agent=row.user_agent,
        public_key=row.public_key,
        signing_key=row.signing_key,
        fingerprint=dc.fingerprint(
            user_id=row.user_id,
            device_id=row.device_id,
            public_key=row.public_key,
            signing_key=row.signing_key,
        ),
        state=row.state,
        bypass=row.device_wrap is not None and row.sealed_kek is not None,
        created_ms=row.created_ms,
        last_used_ms=row.last_used_ms,
        expires_ms=expires_ms(row, policy),
        current=current is not None and row.device_id == current,
    )


def sweep(conn: Connection, user_id: bytes, policy: Policy, now_ms: int) -> int:
    """Expire the account's devices unused for the policy's expiry (their wraps
    go), and delete ended rows past KEEP_ENDED_MS. Returns how many expired."""
    conn.execute(
        devices.delete().where(
            devices.c.user_id == user_id,
            devices.c.state != "active",
            devices.c.ended_ms < now_ms - KEEP_ENDED_MS,
        )
    )
    if policy.device_expiry_seconds == 0:
        return 0
    return _change(
        conn,
        sa.and_(
            devices.c.user_id == user_id,
            devices.c.state == "active",
            devices.c.last_used_ms <= now_ms - policy.device_expiry_seconds * 1000,
        ),
        now_ms,
        action="device.expire",
        end="expired",
        expiry_seconds=policy.device_expiry_seconds,
    )


def sweep_account(conn: Connection, user_id: bytes, defaults: Defaults, now_ms: int) -> None:
    """Expiry in a transaction of its own, so that it stays even when the
    request that found it is then refused (410 device_expired)."""
    _policy_swept(conn, user_id, defaults, now_ms)


def _policy_swept(conn: Connection, user_id: bytes, defaults: Defaults, now_ms: int) -> Policy:
    policy = orgs.policy_for(conn, user_id, defaults)
    sweep(conn, user_id, policy, now_ms)
    return policy


def _own(conn: Connection, user_id: bytes, device_id: bytes) -> Any:
    row = conn.execute(
        devices.select().where(devices.c.device_id == device_id, devices.c.user_id == user_id)
    ).first()
    if row is None:
        raise NotFound(
            f"no device {short(device_id)} is registered to this account", code="device_not_found"
        )
    return row


def _active(row: Any) -> None:
    if row.state == "revoked":
        raise Gone(
            f"device {short(row.device_id)} was revoked; register it again", code="device_revoked"
        )
    if row.state == "expired":
        raise Gone(
            f"device {short(row.device_id)} expired (unused too long); register it again",
            code="device_expired",
        )


def list_devices(
    conn: Connection, *, user_id: bytes, session_hash: bytes, defaults: Defaults, now_ms: int
) -> DevicesOut:
    policy = _policy_swept(conn, user_id, defaults, now_ms)
    current = session_row(conn, session_hash).device_id
    rows = conn.execute(
        devices.select().where(devices.c.user_id == user_id).order_by(devices.c.created_ms)
    ).all()
    return DevicesOut.model_construct(devices=[device_out(r, policy, current) for r in rows])


def _out(conn: Connection, device_id: bytes, policy: Policy, session_hash: bytes) -> DeviceOut:
    row = conn.execute(devices.select().where(devices.c.device_id == device_id)).one()
    return device_out(row, policy, session_row(conn, session_hash).device_id)


# --- policy effects (also used by organisations) --------------------------------------


_NO_WRAPS: Final = {"device_wrap": None, "sealed_kek": None, "keypair_version": None}
HAS_WRAPS: Final = sa.or_(devices.c.device_wrap.is_not(None), devices.c.sealed_kek.is_not(None))


def _change(
    conn: Connection,
    where: Any,
    now_ms: int,
    *,
    action: str,
    end: str | None = None,
    **detail: Any,
) -> int:
    """Delete the wraps of the devices `where` selects and record `action` in
    each account's log; with `end` ("revoked", "expired") the devices end as
    well, and revoked ones' sessions with them. Returns how many devices."""
    rows = conn.execute(sa.select(devices.c.device_id, devices.c.user_id).where(where)).all()
    ended = {"state": end, "ended_ms": now_ms} if end is not None else {}
    for device_id, user_id in rows:
        conn.execute(
            devices.update().where(devices.c.device_id == device_id).values(**_NO_WRAPS, **ended)
        )
        if end == "revoked":
            conn.execute(sessions.delete().where(sessions.c.device_id == device_id))
        factor_store.record_event(
            conn,
            user_id=user_id,
            action=action,
            now_ms=now_ms,
            session_hash=None,
            device_id=short(device_id),
            **detail,
        )
    return len(rows)


def revoke_rows(conn: Connection, where: Any, now_ms: int, *, reason: str) -> int:
    """Revoke the active devices `where` selects: wraps deleted, sessions bound
    to them ended, rows kept as revoked. Returns how many."""
    where = sa.and_(where, devices.c.state == "active")
    return _change(conn, where, now_ms, action="device.revoke", end="revoked", reason=reason)


def drop_wraps(conn: Connection, where: Any, now_ms: int, *, reason: str) -> int:
    """Delete the bypass wraps of the devices `where` selects (they stay
    registered). Returns how many devices had any."""
    where = sa.and_(where, HAS_WRAPS)
    return _change(conn, where, now_ms, action="device.bypass_off", reason=reason)


def drop_all_wraps(conn: Connection, user_id: bytes, now_ms: int, *, reason: str) -> int:
    return drop_wraps(conn, devices.c.user_id == user_id, now_ms, reason=reason)


# --- registration, rename, revocation -----------------------------------------------------


def _check_may_register(conn: Connection, user_id: bytes, policy: Policy) -> None:
    has_wrap = conn.execute(
        sa.select(passphrase_wraps.c.wrap_id).where(
            passphrase_wraps.c.user_id == user_id, passphrase_wraps.c.state == "current"
        )
    ).first()
    if has_wrap is None:
        raise Conflict(
            "set a vault passphrase first: a device is registered by a session unlocked "
            "with it (docs/devices.md 2)",
            code="passphrase_unset",
        )
    policy.require("allow_device_registration")


def _check_proof(conn: Connection, user_id: bytes, body: DeviceIn) -> None:
    try:
        dc.verify_proof(
            body.signing_key,
            body.proof,
            dc.registration_message(
                user_id=user_id,
                device_id=body.device_id,
                public_key=body.public_key,
                signing_key=body.signing_key,
            ),
            device_id=body.device_id,
        )
    except DeviceProofInvalid as e:
        raise Forbidden(e.message, code="device_proof_invalid") from None
    taken = conn.execute(
        sa.select(devices.c.user_id).where(devices.c.device_id == body.device_id)
    ).first()
    if taken is not None:
        raise Conflict(
            f"a device with the id {short(body.device_id)} is already registered; make new "
            "device keys and id",
            code="device_exists",
        )


def _insert(conn: Connection, user_id: bytes, body: DeviceIn, now_ms: int, **wraps: Any) -> None:
    conn.execute(
        devices.insert().values(
            device_id=body.device_id,
            user_id=user_id,
            name=body.name,
            user_agent=body.user_agent,
            public_key=body.public_key,
            signing_key=body.signing_key,
            state="active",
            created_ms=now_ms,
            last_used_ms=now_ms,
            **wraps,
        )
    )


def register(
    conn: Connection,
    *,
    user_id: bytes,
    session_hash: bytes,
    body: DeviceIn,
    defaults: Defaults,
    now_ms: int,
) -> DeviceOut:
    policy = _policy_swept(conn, user_id, defaults, now_ms)
    _check_may_register(conn, user_id, policy)
    if not _unlocked(session_row(conn, session_hash)):
        raise Forbidden(
            "unlock this session with the vault passphrase first (a session unlocked by a "
            "device bypass or a recovery cannot register devices)",
            code="unlock_required",
        )
    _check_proof(conn, user_id, body)
    _insert(conn, user_id, body, now_ms)
    conn.execute(
        sessions.update()
        .where(sessions.c.session_hash == session_hash)
        .values(device_id=body.device_id)
    )
    factor_store.record_event(
        conn,
        user_id=user_id,
        action="device.register",
        now_ms=now_ms,
        session_hash=session_hash,
        device_id=short(body.device_id),
        name=body.name,
    )
    return _out(conn, body.device_id, policy, session_hash)


def rename(
    conn: Connection,
    *,
    user_id: bytes,
    session_hash: bytes,
    device_id: bytes,
    name: str,
    defaults: Defaults,
    now_ms: int,
) -> DeviceOut:
    policy = _policy_swept(conn, user_id, defaults, now_ms)
    row = _own(conn, user_id, device_id)
    conn.execute(devices.update().where(devices.c.device_id == device_id).values(name=name))
    factor_store.record_event(
        conn,
        user_id=user_id,
        action="device.rename",
        now_ms=now_ms,
        session_hash=session_hash,
        device_id=short(device_id),
        old=row.name,
        new=name,
    )
    return _out(conn, device_id, policy, session_hash)


def revoke(
    conn: Connection,
    *,
    user_id: bytes,
    session_hash: bytes,
    device_id: bytes,
    defaults: Defaults,
    now_ms: int,
) -> None:
    _policy_swept(conn, user_id, defaults, now_ms)
    _own(conn, user_id, device_id)
    revoke_rows(conn, devices.c.device_id == device_id, now_ms, reason="user")


# --- the bypass ---------------------------------------------------------------------------


def _current_version(conn: Connection, user_id: bytes, keypair_version: int) -> None:
    current = conn.execute(
        sa.select(users.c.keypair_version).where(users.c.user_id == user_id)
    ).scalar_one()
    if keypair_version != current:
        raise Conflict(
            f"the account's key pair is version {current}, not {keypair_version}",
            code="keypair_version",
        )


def _approved_for(conn: Connection, session_hash: bytes, device_id: bytes) -> bool:
    return (
        conn.execute(
            sa.select(device_requests.c.code_hash).where(
                device_requests.c.session_hash == session_hash,
                device_requests.c.device_id == device_id,
                device_requests.c.state == "approved",
            )
        ).first()
        is not None
    )


def put_bypass(
    conn: Connection,
    *,
    user_id: bytes,
    session_hash: bytes,
    device_id: bytes,
    body: BypassIn,
    defaults: Defaults,
    now_ms: int,
) -> DeviceOut:
    policy = _policy_swept(conn, user_id, defaults, now_ms)
    row = _own(conn, user_id, device_id)
    _active(row)
    sess = session_row(conn, session_hash)
    if not (
        sess.device_id == device_id
        or _unlocked(sess)
        or _approved_for(conn, session_hash, device_id)
    ):
        raise Forbidden(
            "enable the bypass from a session bound to this device or unlocked with the "
            "vault passphrase",
            code="unlock_required",
        )
    policy.require("allow_bypass")
    _current_version(conn, user_id, body.keypair_version)
    wrap = body.device_wrap if body.device_wrap is not None else row.device_wrap
    if wrap is None:
        raise Conflict(
            f"device {short(device_id)} has no device wrap: send device_wrap with sealed_kek",
            code="bypass_off",
        )
    if body.device_wrap is None and row.keypair_version != body.keypair_version:
        raise Conflict(
            f"the stored device wrap is for key pair version {row.keypair_version}",
            code="keypair_version",
        )
    conn.execute(
        devices.update()
        .where(devices.c.device_id == device_id)
        .values(
            device_wrap=wrap,
            sealed_kek=body.sealed_kek,
            keypair_version=body.keypair_version,
            last_used_ms=now_ms,
        )
    )
    conn.execute(
        sessions.update().where(sessions.c.session_hash == session_hash).values(device_id=device_id)
    )
    factor_store.record_event(
        conn,
        user_id=user_id,
        action="device.bypass_on",
        now_ms=now_ms,
        session_hash=session_hash,
        device_id=short(device_id),
    )
    return _out(conn, device_id, policy, session_hash)


def delete_bypass(
    conn: Connection,
    *,
    user_id: bytes,
    session_hash: bytes,
    device_id: bytes,
    defaults: Defaults,
    now_ms: int,
) -> None:
    _policy_swept(conn, user_id, defaults, now_ms)
    _own(conn, user_id, device_id)
    drop_wraps(conn, devices.c.device_id == device_id, now_ms, reason="user")


def open_bypass(
    conn: Connection,
    *,
    user_id: bytes,
    session_hash: bytes,
    device_id: bytes,
    proof: bytes,
    defaults: Defaults,
    now_ms: int,
) -> OpenOut:
    """A bypass login: the device's proof over this session's nonce releases
    the wraps and binds the session to the device."""
    policy = _policy_swept(conn, user_id, defaults, now_ms)
    row = _own(conn, user_id, device_id)
    _active(row)
    policy.require("allow_bypass")
    if row.device_wrap is None or row.sealed_kek is None:
        raise Conflict(
            f"device {short(device_id)} has no bypass (never enabled, or removed by a policy "
            "change): unlock with the passphrase",
            code="bypass_off",
        )
    sess = session_row(conn, session_hash)
    if sess.device_nonce is None:
        raise Forbidden(
            "this session has no device nonce; read GET /api/session for one",
            code="device_proof_invalid",
        )
    try:
        dc.verify_proof(
            row.signing_key,
            proof,
            dc.login_message(user_id=user_id, device_id=device_id, nonce=sess.device_nonce),
            device_id=device_id,
        )
    except DeviceProofInvalid as e:
        raise Forbidden(e.message, code="device_proof_invalid") from None
    # A fresh nonce at once, and only if the nonce is still the one proved: this
    # proof is accepted once even when two requests race, and the session can
    # unlock by bypass again later (the CLI, one command at a time).
    renewed = conn.execute(
        sessions.update()
        .where(
            sessions.c.session_hash == session_hash,
            sessions.c.device_nonce == sess.device_nonce,
        )
        .values(device_id=device_id, device_nonce=os.urandom(32))
    ).rowcount
    if renewed != 1:
        raise Forbidden(
            "this session's device nonce was used meanwhile; read GET /api/session for a fresh one",
            code="device_proof_invalid",
        )
    conn.execute(
        devices.update().where(devices.c.device_id == device_id).values(last_used_ms=now_ms)
    )
    return OpenOut.model_construct(
        keypair_version=row.keypair_version, device_wrap=row.device_wrap, sealed_kek=row.sealed_kek
    )


# --- approval requests ----------------------------------------------------------------------


def code_hash(code: str) -> bytes:
    """What the database keeps of a request's code (canonical form)."""
    return hashlib.sha256(code.encode("ascii")).digest()


def create_request(
    conn: Connection,
    *,
    user_id: bytes,
    session_hash: bytes,
    body: DeviceRequestIn,
    defaults: Defaults,
    lifetime_ms: int,
    now_ms: int,
) -> DeviceRequestCreatedOut:
    policy = _policy_swept(conn, user_id, defaults, now_ms)
    _check_may_register(conn, user_id, policy)
    policy.require("allow_bypass")
    _check_proof(conn, user_id, body)
    conn.execute(device_requests.delete().where(device_requests.c.expires_ms < now_ms))
    code = codes.random_code(CODE_SYMBOLS)
    conn.execute(
        device_requests.insert().values(
            code_hash=code_hash(code),
            user_id=user_id,
            session_hash=session_hash,
            device_id=body.device_id,
            name=body.name,
            user_agent=body.user_agent,
            public_key=body.public_key,
            signing_key=body.signing_key,
            proof=body.proof,
            claim_hash=body.claim_hash,
            state="pending",
            created_ms=now_ms,
            expires_ms=now_ms + lifetime_ms,
        )
    )
    return DeviceRequestCreatedOut(code=codes.grouped(code), expires_ms=now_ms + lifetime_ms)


def request_not_found() -> NotFound:
    return NotFound(
        "no device request of this account has that code (or it expired); check the code "
        "the new device shows",
        code="request_not_found",
    )


def _live(conn: Connection, user_id: bytes, normal: str | None, now_ms: int) -> Any:
    if normal is None:
        return None
    return conn.execute(
        device_requests.select().where(
            device_requests.c.code_hash == code_hash(normal),
            device_requests.c.user_id == user_id,
            device_requests.c.expires_ms > now_ms,
        )
    ).first()


def check_code(
    conn: Connection, *, user_id: bytes, code: str, lifetime_ms: int, now_ms: int
) -> bool:
    """Whether the account has a live request with this code. A wrong code
    counts against the account (MAX_WRONG_CODES, then every lookup is refused
    for a request lifetime); run in a transaction of its own so the count
    stays when the caller then refuses the request."""
    fails = conn.execute(
        device_request_failures.select().where(device_request_failures.c.user_id == user_id)
    ).first()
    if fails is not None and fails.reset_ms <= now_ms:
        conn.execute(
            device_request_failures.delete().where(device_request_failures.c.user_id == user_id)
        )
        fails = None
    if fails is not None and fails.failures >= MAX_WRONG_CODES:
        raise TooMany(
            f"{MAX_WRONG_CODES} wrong device codes: this account's device requests are locked "
            "for a while",
            code="too_many_attempts",
            retry_after_ms=int(fails.reset_ms) - now_ms,
        )
    normal = codes.canonical(code, CODE_SYMBOLS)
    if _live(conn, user_id, normal, now_ms) is not None:
        return True
    if normal is not None and _live(conn, user_id, normal, 0) is not None:
        return False  # the account's own code, expired (a device still polling): not a guess
    if fails is None:
        conn.execute(
            device_request_failures.insert().values(
                user_id=user_id, failures=1, reset_ms=now_ms + lifetime_ms
            )
        )
    else:
        conn.execute(
            device_request_failures.update()
            .where(device_request_failures.c.user_id == user_id)
            .values(failures=device_request_failures.c.failures + 1)
        )
    return False


def _request(
    conn: Connection, *, user_id: bytes, code: str, lifetime_ms: int, now_ms: int
) -> tuple[Any, str]:
    """The account's live request with this code (check_code ran first)."""
    normal = codes.canonical(code, CODE_SYMBOLS)
    row = _live(conn, user_id, normal, now_ms)
    if row is None or normal is None:
        raise request_not_found()
    return row, normal


def request_out(row: Any, code: str, session_hash: bytes) -> DeviceRequestOut:
    mine = secrets.compare_digest(row.session_hash, session_hash)
    return DeviceRequestOut.model_construct(
        code=codes.grouped(code),
        device_id=row.device_id,
        name=row.name,
        user_agent=row.user_agent,
        public_key=row.public_key,
        signing_key=row.signing_key,
        proof=row.proof,
        claim_hash=row.claim_hash,
        state=row.state,
        expires_ms=row.expires_ms,
        proxy_token=row.proxy_token if mine else None,
    )


def get_request(
    conn: Connection,
    *,
    user_id: bytes,
    session_hash: bytes,
    code: str,
    lifetime_ms: int,
    now_ms: int,
) -> DeviceRequestOut:
    row, normal = _request(conn, user_id=user_id, code=code, lifetime_ms=lifetime_ms, now_ms=now_ms)
    return request_out(row, normal, session_hash)


def approve(
    conn: Connection,
    *,
    user_id: bytes,
    session_hash: bytes,
    code: str,
    body: ApproveIn,
    defaults: Defaults,
    lifetime_ms: int,
    now_ms: int,
) -> DeviceOut:
    """A registers B: the device row with B's keys and the device wrap A made
    (bound to no session yet); the proxy token is kept for B's session."""
    sess = session_row(conn, session_hash)
    if not (_unlocked(sess) or sess.device_id is not None):
        raise Forbidden(
            "approve from a session unlocked with the vault passphrase or a device bypass",
            code="unlock_required",
        )
    row, _ = _request(conn, user_id=user_id, code=code, lifetime_ms=lifetime_ms, now_ms=now_ms)
    if row.state != "pending":
        raise Conflict(f"this device request was already {row.state}", code="request_not_pending")
    policy = _policy_swept(conn, user_id, defaults, now_ms)
    policy.require("allow_device_registration")
    policy.require("allow_bypass")
    _current_version(conn, user_id, body.keypair_version)
    req = DeviceIn.model_construct(
        device_id=row.device_id,
        name=row.name,
        user_agent=row.user_agent,
        public_key=row.public_key,
        signing_key=row.signing_key,
        proof=row.proof,
    )
    _check_proof(conn, user_id, req)
    _insert(
        conn,
        user_id,
        req,
        now_ms,
        device_wrap=body.device_wrap,
        keypair_version=body.keypair_version,
    )
    conn.execute(
        device_requests.update()
        .where(device_requests.c.code_hash == row.code_hash)
        .values(state="approved", proxy_token=body.proxy_token)
    )
    factor_store.record_event(
        conn,
        user_id=user_id,
        action="device.register",
        now_ms=now_ms,
        session_hash=session_hash,
        device_id=short(row.device_id),
        name=row.name,
        approved=True,
    )
    return _out(conn, row.device_id, policy, session_hash)


def refuse(
    conn: Connection,
    *,
    user_id: bytes,
    code: str,
    lifetime_ms: int,
    now_ms: int,
) -> None:
    row, _ = _request(conn, user_id=user_id, code=code, lifetime_ms=lifetime_ms, now_ms=now_ms)
    if row.state == "pending":
        conn.execute(
            device_requests.update()
            .where(device_requests.c.code_hash == row.code_hash)
            .values(state="refused")
        )

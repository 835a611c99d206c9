"""The vault passphrase, its history, the recovery slot, and the hardener relay
(docs/vault.md 5.4-5.6 and 13.10).

The client does every piece of cryptography; these routes relay blinded
elements to the hardener under the session's own user id, check what a
server can check (the record names a key the hardener really has, the PBKDF2
count is at least the configured one, the tokens were proved, a recovery was
signed by the account's recovery success key), and store ciphertext.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter

from hardener.client import Evaluation
from vault_api.context import AccountDep, SessionDep, Vault, VaultDep
from vault_api.crypto.factors import Purpose, hardener_user_id
from vault_api.crypto.ids import short
from vault_api.crypto.success import verify_success
from vault_api.errors import Conflict, Forbidden, Invalid
from vault_api.models import (
    AccountEventsOut,
    EvaluateIn,
    EvaluationOut,
    FactorsOut,
    HardenerKeyOut,
    HardenerOut,
    KdfOut,
    PassphraseChangeIn,
    PassphraseSetIn,
    RecoveryCompleteIn,
    RecoveryEvaluateIn,
    RecoveryIn,
    RecoveryLookupIn,
    RecoveryTargetOut,
    RollbackIn,
    SessionOut,
    SuccessIn,
    SuccessKeyIn,
    SuccessOut,
)
from vault_api.relay import Relay, require
from vault_api.store import factors as store
from vault_api.store import sessions as session_store

log = logging.getLogger("vault_api.factors")
router = APIRouter(tags=["factors"])


def _evaluation(ev: Evaluation) -> EvaluationOut:
    return EvaluationOut.model_construct(
        key_version=ev.key_version,
        evaluated_element=ev.evaluated_element,
        proof=ev.proof,
        attempt_id=ev.attempt_id,
        nonce=ev.nonce,
        attempts_left=ev.attempts_left,
    )


async def _check_record(
    vault: Vault, relay: Relay, *, iterations: int, key_version: int, public_key: bytes
) -> None:
    """A new record must use the configured PBKDF2 count (or more) and a key
    the hardener publishes now: the server's pin of the hardener's commitment."""
    if iterations < vault.settings.passphrase_kdf_iterations:
        raise Invalid(
            f"this vault asks for at least {vault.settings.passphrase_kdf_iterations} PBKDF2 "
            f"iterations, not {iterations}",
            code="kdf_too_weak",
            iterations=vault.settings.passphrase_kdf_iterations,
        )
    keys = await relay.keys()
    match = [k for k in keys.keys if k.version == key_version and k.public_key]
    if not match or match[0].public_key != public_key or match[0].state == "retired":
        raise Conflict(
            f"the record names hardener key version {key_version} with a public key the "
            "hardener does not publish (GET /api/hardener lists the keys)",
            code="hardener_key_mismatch",
        )


async def _enrolled(
    vault: Vault, relay: Relay, user_id: bytes, purpose: Purpose, key: SuccessKeyIn | None
) -> None:
    """Store the account's success key (first time) and make sure the hardener
    has it (Enrol is idempotent for the same key)."""
    public_key, _ = await vault.db.write(
        store.store_success_key, user_id=user_id, purpose=purpose, key=key, now_ms=vault.clock()
    )
    await relay.enrol(user_id, purpose, public_key)


@router.get("/api/hardener")
async def hardener(vault: VaultDep, principal: SessionDep) -> HardenerOut:
    """The hardener's caller name and keys (the client pins the key its record
    names), the PBKDF2 count, and whether a passphrase is required."""
    s = vault.settings
    kdf = KdfOut(iterations=s.passphrase_kdf_iterations)
    if vault.relay is None:
        return HardenerOut(
            enabled=False,
            caller=None,
            current_version=0,
            keys=[],
            kdf=kdf,
            require_passphrase=s.require_passphrase,
            history_seconds=s.passphrase_history_seconds,
        )
    keys = await vault.relay.keys()
    return HardenerOut.model_construct(
        enabled=True,
        caller=keys.caller,
        current_version=keys.current_version,
        keys=[
            HardenerKeyOut.model_construct(
                version=k.version, public_key=k.public_key, state=k.state
            )
            for k in keys.keys
        ],
        kdf=kdf,
        require_passphrase=s.require_passphrase,
        history_seconds=s.passphrase_history_seconds,
    )


@router.post("/api/hardener/evaluate")
async def evaluate(vault: VaultDep, principal: AccountDep, body: EvaluateIn) -> EvaluationOut:
    """Relay one blinded element for this account's passphrase or recovery secret.
    Every call counts against the hardener's budget for it."""
    relay = require(vault.relay)
    ev = await relay.evaluate(
        principal.user_id, body.purpose, body.blinded_element, body.key_version
    )
    return _evaluation(ev)


@router.post("/api/hardener/success")
async def report_success(vault: VaultDep, principal: AccountDep, body: SuccessIn) -> SuccessOut:
    """Relay a proven success (a signature by the account's success key), which
    resets the hardener's count of failed attempts."""
    relay = require(vault.relay)
    v = await relay.report_success(principal.user_id, body.purpose, body.attempt_id, body.signature)
    if body.purpose == "passphrase":
        # The hardener accepted it: this session opened the passphrase wrap's
        # key (docs/devices.md 2: it may register devices).
        await vault.db.write(
            session_store.mark_passphrase_unlocked, principal.session_hash, vault.clock()
        )
    return SuccessOut(key_version_recorded=v)


@router.get("/api/me/factors")
async def factors(vault: VaultDep, principal: AccountDep) -> FactorsOut:
    """The passphrase wrap, its kept history, the recovery slot and the success keys."""
    return await vault.db.read(store.factors, principal.user_id, vault.clock())


@router.get("/api/me/events")
async def account_events(vault: VaultDep, principal: AccountDep) -> AccountEventsOut:
    """The account's own audit log: passphrase and recovery changes, recoveries."""
    return await vault.db.read(store.events, principal.user_id)


@router.put("/api/me/passphrase")
async def set_passphrase(
    vault: VaultDep, principal: AccountDep, body: PassphraseSetIn
) -> FactorsOut:
    """Set the first vault passphrase: every token's slot becomes a kc+passphrase
    slot (the token factor), and the private key moves into the passphrase wrap."""
    relay = require(vault.relay)
    w = body.wrap
    await _check_record(
        vault,
        relay,
        iterations=w.iterations,
        key_version=w.key_version,
        public_key=w.hardener_public_key,
    )
    await _enrolled(vault, relay, principal.user_id, "passphrase", body.success_key)
    out: FactorsOut = await vault.db.write(
        store.set_passphrase,
        user_id=principal.user_id,
        proven_key_ids=principal.proven_key_ids,
        wrap=w,
        token_slots=body.token_slots,
        drop_unproven=body.drop_unproven,
        session_hash=principal.session_hash,
        now_ms=vault.clock(),
    )
    log.info("vault passphrase set user=%s", short(principal.user_id))
    return out


@router.post("/api/me/passphrase/change")
async def change_passphrase(
    vault: VaultDep, principal: AccountDep, body: PassphraseChangeIn
) -> FactorsOut:
    """A new passphrase: a new wrap under the same token factor. The replaced
    wrap is kept for passphrase_history_seconds, for a rollback."""
    relay = require(vault.relay)
    w = body.wrap
    await _check_record(
        vault,
        relay,
        iterations=w.iterations,
        key_version=w.key_version,
        public_key=w.hardener_public_key,
    )
    out: FactorsOut = await vault.db.write(
        store.change_passphrase,
        user_id=principal.user_id,
        expected_wrap_id=body.expected_wrap_id,
        wrap=w,
        history_ms=vault.settings.passphrase_history_seconds * 1000,
        session_hash=principal.session_hash,
        now_ms=vault.clock(),
    )
    log.info("vault passphrase changed user=%s", short(principal.user_id))
    return out


@router.post("/api/me/passphrase/rollback")
async def rollback(vault: VaultDep, principal: AccountDep, body: RollbackIn) -> FactorsOut:
    """Make a kept wrap current again (the user forgot the new passphrase and
    opened the kept wrap with the old one)."""
    out: FactorsOut = await vault.db.write(
        store.rollback,
        user_id=principal.user_id,
        wrap_id=body.wrap_id,
        history_ms=vault.settings.passphrase_history_seconds * 1000,
        session_hash=principal.session_hash,
        now_ms=vault.clock(),
    )
    log.info("vault passphrase rolled back user=%s", short(principal.user_id))
    return out


@router.put("/api/me/recovery")
async def put_recovery(vault: VaultDep, principal: AccountDep, body: RecoveryIn) -> FactorsOut:
    """Set (or replace) the recovery slot: the private key under the hardened
    recovery passphrase or code, which opens it without any token."""
    relay = require(vault.relay)
    await _check_record(
        vault,
        relay,
        iterations=body.iterations,
        key_version=body.key_version,
        public_key=body.hardener_public_key,
    )
    await _enrolled(vault, relay, principal.user_id, "recovery", body.success_key)
    out: FactorsOut = await vault.db.write(
        store.put_recovery,
        user_id=principal.user_id,
        rec=body,
        session_hash=principal.session_hash,
        now_ms=vault.clock(),
    )
    log.info("recovery slot set user=%s kind=%s", short(principal.user_id), body.kind)
    return out


@router.delete("/api/me/recovery", status_code=204)
async def delete_recovery(vault: VaultDep, principal: AccountDep) -> None:
    await vault.db.write(
        store.delete_recovery,
        user_id=principal.user_id,
        session_hash=principal.session_hash,
        now_ms=vault.clock(),
    )


# --- recovery after losing every token (any logged-in session) ----------------------------


@router.post("/api/recovery/lookup")
async def recovery_lookup(
    vault: VaultDep, principal: SessionDep, body: RecoveryLookupIn
) -> RecoveryTargetOut:
    """The recovery slot of the account with this handle (useless without the
    recovery secret and the hardener's budget for it)."""
    require(vault.relay)
    return await vault.db.read(store.recovery_target, body.handle)


@router.post("/api/recovery/evaluate")
async def recovery_evaluate(
    vault: VaultDep, principal: SessionDep, body: RecoveryEvaluateIn
) -> EvaluationOut:
    relay = require(vault.relay)
    target = await vault.db.read(store.recovery_target, body.handle)
    ev = await relay.evaluate(target.user_id, "recovery", body.blinded_element, body.key_version)
    log.info("recovery attempt for user=%s", short(target.user_id))
    return _evaluation(ev)


@router.post("/api/recovery/complete")
async def recovery_complete(
    vault: VaultDep, principal: SessionDep, body: RecoveryCompleteIn
) -> SessionOut:
    """Finish a recovery: the signature proves the client opened the recovery
    slot (the success key is sealed to the account's key pair). The session's
    token then becomes the account's only token; other sessions are told."""
    relay = require(vault.relay)
    target = await vault.db.read(store.recovery_target, body.handle)
    ok = verify_success(
        target.success_key.public_key,
        body.signature,
        caller=relay.caller,
        user_id=hardener_user_id(target.user_id, "recovery"),
        attempt_id=body.attempt_id,
        nonce=body.nonce,
    )
    if not ok:
        raise Forbidden(
            "the recovery was not proven (the signature does not verify with the account's "
            "recovery key); open the recovery slot with the right recovery secret first",
            code="recovery_unproven",
        )
    # The hardener checks the attempt is its own, recent and unused, and resets the count.
    await relay.report_success(target.user_id, "recovery", body.attempt_id, body.signature)
    await vault.db.write(
        store.recover,
        session_hash=principal.session_hash,
        target_user_id=target.user_id,
        keypair_version=body.keypair_version,
        slot=body.slot,
        now_ms=vault.clock(),
    )
    log.warning("account recovered user=%s (every other token slot removed)", short(target.user_id))
    return await vault.sessions.view(principal.session_hash)

"""Accounts over the real network: enrolment, backup tokens, listing and
revoking tokens, and what a revoked token can no longer do.

The honest paths go through tokens.login and the phone app; the dishonest ones
build their requests with tokens.api.PassKeyApi and tokens.handshake, the same
way a token would, and change one thing.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
import sqlalchemy as sa

from authnet.directory.sql import SqlDirectory, accounts, tokens
from authnet.errors import (
    ChallengeInvalid,
    LastToken,
    MalformedInput,
    SignatureInvalid,
    TokenRevoked,
    TokenUnknown,
)
from authnet.network import CHALLENGE_TTL_MS, now_ms
from authnet.protocol import messages
from authnet.protocol.proofs import Proof
from authnet.sdk.browser import BrowserSession
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from authnet.v1 import passkey_pb2
from simulators.phone.app import PhoneApp
from tests.helpers import login, make_phone
from tokens import handshake
from tokens import login as flow
from tokens.api import PassKeyApi, Purpose
from tokens.passkey import TokenKind
from tokens.phone import PhoneKeyStore, PhonePassKey


@pytest_asyncio.fixture
async def api(net: TestNetwork) -> AsyncIterator[PassKeyApi]:
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as client:
        yield client


@pytest_asyncio.fixture
async def backup(net: TestNetwork, phone: PhoneApp, tmp_path: Path) -> PhoneApp:
    return await make_phone(net, tmp_path / "backup.json", label="backup", backup_of=phone)


@pytest_asyncio.fixture
async def stranger(net: TestNetwork, tmp_path: Path) -> PhoneApp:
    """A phone with an account of its own."""
    return await make_phone(net, tmp_path / "stranger.json", label="stranger")


def tid(app: PhoneApp) -> bytes:
    return app.enrolment(None).token_id


def new_token(tmp_path: Path, label: str = "new") -> PhonePassKey:
    """A key store never enrolled anywhere."""
    path = tmp_path / f"{label}-{secrets.token_hex(4)}.json"
    return PhoneKeyStore.create(path, label=label).unlock()


def counts(net: TestNetwork) -> tuple[int, int]:
    """(accounts, tokens) in the network's directory."""
    directory = net.network.directory
    assert isinstance(directory, SqlDirectory)
    with directory.engine.connect() as c:
        n_accounts = c.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one()
        n_tokens = c.execute(sa.select(sa.func.count()).select_from(tokens)).scalar_one()
    return int(n_accounts), int(n_tokens)


async def enrol_raw(
    api: PassKeyApi,
    token: PhonePassKey,
    challenge: bytes,
    *,
    label: str = "new",
    existing: tuple[bytes, Proof] | None = None,
) -> tuple[bytes, bool]:
    possession = handshake.enrol_proof(token, challenge=challenge, label=label)
    return await api.enrol(
        challenge=challenge,
        description=token.description,
        label=label,
        possession=possession,
        existing=existing,
    )


async def revoke(app: PhoneApp, target: PhoneApp) -> None:
    await app.revoke(tid(target))


# --- one account, several tokens; PUIDs -------------------------------------------


async def test_backup_token_joins_the_account_with_the_same_puid(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp, backup: PhoneApp
) -> None:
    assert tid(phone) != tid(backup)
    listed = {bytes(t.token_id): t for t in await phone.tokens()}
    assert set(listed) == {tid(phone), tid(backup)}
    assert listed[tid(backup)].label == "backup"
    assert int(listed[tid(backup)].kind) == TokenKind.PHONE
    assert listed[tid(backup)].revoked_at_unix_ms == 0
    assert {bytes(t.token_id) for t in await backup.tokens()} == set(listed)

    first = await login(sp, phone)
    second = await login(sp, backup)
    a = await sp.get_puid(first.ticket.ticket)
    b = await sp.get_puid(second.ticket.ticket)
    assert a.puid == b.puid
    assert a.key_id != b.key_id
    # The login was recorded against the token that made it.
    used = {bytes(t.token_id): t.last_used_at_unix_ms for t in await phone.tokens()}
    assert used[tid(phone)] > 0
    assert used[tid(backup)] > 0


async def test_puids_differ_across_sps_and_across_accounts(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp, stranger: PhoneApp
) -> None:
    mine = await sp.get_puid((await login(sp, phone)).ticket.ticket)
    theirs = await sp.get_puid((await login(sp, stranger)).ticket.ticket)
    assert mine.puid != theirs.puid

    creds = await net.add_sp("other", "Other SP")
    async with net.sp_client(creds) as other:
        there = await other.get_puid((await login(other, phone)).ticket.ticket)
        again = await other.get_puid((await login(other, phone)).ticket.ticket)
    assert there.puid != mine.puid
    assert there.key_id != mine.key_id
    # Stable: the same account at the same SP is always the same PUID.
    assert again.puid == there.puid
    assert again.key_id == there.key_id
    assert mine.puid == (await sp.get_puid((await login(sp, phone)).ticket.ticket)).puid


# --- enrolment --------------------------------------------------------------------


async def test_enrolling_the_same_public_key_twice_is_refused(
    net: TestNetwork, api: PassKeyApi, phone: PhoneApp
) -> None:
    before = counts(net)
    with pytest.raises(MalformedInput, match="already enrolled"):
        await flow.enrol(api, phone.token, label="again")
    # Not even into its own account.
    with pytest.raises(MalformedInput, match="already enrolled"):
        await flow.enrol(api, phone.token, label="again", existing=(phone.token, tid(phone)))
    assert counts(net) == before
    assert len(await phone.tokens()) == 1


async def test_enrolment_challenge_must_be_fresh_unused_and_for_enrolment(
    net: TestNetwork, api: PassKeyApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    challenge, name = await api.challenge(Purpose.ENROL)
    assert name == net.network.network_name
    token_id, new_account = await enrol_raw(api, new_token(tmp_path), challenge)
    assert new_account
    assert len(token_id) == 16
    before = counts(net)

    # Reused.
    with pytest.raises(ChallengeInvalid):
        await enrol_raw(api, new_token(tmp_path), challenge)

    # Issued for another purpose.
    for purpose in (Purpose.LIST_TOKENS, Purpose.REVOKE_TOKEN):
        other, _ = await api.challenge(purpose)
        with pytest.raises(ChallengeInvalid):
            await enrol_raw(api, new_token(tmp_path), other)

    # Expired: issued by a clock already past its lifetime.
    monkeypatch.setattr(net.network, "clock", lambda: now_ms() - CHALLENGE_TTL_MS - 1000)
    stale, _ = await api.challenge(Purpose.ENROL)
    monkeypatch.undo()
    with pytest.raises(ChallengeInvalid):
        await enrol_raw(api, new_token(tmp_path), stale)

    # Never issued, or not even the right size.
    with pytest.raises(ChallengeInvalid):
        await enrol_raw(api, new_token(tmp_path), secrets.token_bytes(32))
    with pytest.raises(ChallengeInvalid, match="32 bytes"):
        await enrol_raw(api, new_token(tmp_path), secrets.token_bytes(16))

    assert counts(net) == before


async def test_bad_proof_of_possession_creates_nothing(
    net: TestNetwork, api: PassKeyApi, tmp_path: Path
) -> None:
    before = counts(net)
    token, impostor = new_token(tmp_path), new_token(tmp_path, "impostor")
    d = token.description

    async def attempt(signature: Callable[[bytes], bytes], label: str = "new") -> bytes:
        challenge, _ = await api.challenge(Purpose.ENROL)
        with pytest.raises(SignatureInvalid):
            await api.enrol(
                challenge=challenge,
                description=d,
                label=label,
                possession=Proof(signature=signature(challenge)),
            )
        return challenge

    def message(challenge: bytes, label: str = "new") -> bytes:
        return messages.enrol(
            challenge=challenge,
            kind=int(d.kind),
            algorithm=int(d.algorithm),
            public_key=d.public_key,
            label=label,
        )

    # Signed by another key.
    await attempt(lambda c: impostor.sign(message(c)))
    # Signed for another label than the one sent.
    await attempt(lambda c: token.sign(message(c, "other label")))
    # Signed over another challenge.
    await attempt(lambda c: token.sign(message(secrets.token_bytes(32))))
    # Corrupted.
    await attempt(lambda c: bytes(b ^ 1 for b in token.sign(message(c))))
    # The add-token message instead of the enrol message.
    await attempt(
        lambda c: token.sign(
            messages.add_token(challenge=c, token_id=bytes(16), new_public_key=d.public_key)
        )
    )
    # A failed attempt still uses up its challenge.
    used = await attempt(lambda c: impostor.sign(message(c)))
    with pytest.raises(ChallengeInvalid):
        await api.enrol(
            challenge=used,
            description=d,
            label="new",
            possession=Proof(signature=token.sign(message(used))),
        )

    assert counts(net) == before
    # The same token, honestly, enrols fine afterwards.
    _, new_account, _ = await flow.enrol(api, token, label="new")
    assert new_account
    assert counts(net) == (before[0] + 1, before[1] + 1)


async def test_authorisation_by_another_account_is_refused(
    net: TestNetwork,
    api: PassKeyApi,
    phone: PhoneApp,
    stranger: PhoneApp,
    tmp_path: Path,
) -> None:
    before = counts(net)
    new = new_token(tmp_path)
    public = new.description.public_key

    def add(signer: PhonePassKey, challenge: bytes, claimed: bytes, key: bytes = public) -> bytes:
        return handshake.add_token_proof(
            signer, challenge=challenge, existing_token_id=claimed, new_public_key=key
        )

    cases: list[Callable[[bytes], tuple[bytes, bytes]]] = [
        # The stranger signs, claiming to be the phone.
        lambda c: (tid(phone), add(stranger.token, c, tid(phone))),
        # The phone signs, but names the stranger's token.
        lambda c: (tid(stranger), add(phone.token, c, tid(stranger))),
        # The phone authorised a different new key.
        lambda c: (
            tid(phone),
            add(phone.token, c, tid(phone), new_token(tmp_path).description.public_key),
        ),
        # The phone's signature over another challenge.
        lambda c: (tid(phone), add(phone.token, secrets.token_bytes(32), tid(phone))),
    ]
    for make in cases:
        challenge, _ = await api.challenge(Purpose.ENROL)
        with pytest.raises(SignatureInvalid):
            await enrol_raw(api, new, challenge, existing=make(challenge))

    challenge, _ = await api.challenge(Purpose.ENROL)
    ghost = secrets.token_bytes(16)
    with pytest.raises(TokenUnknown):
        await enrol_raw(api, new, challenge, existing=(ghost, add(phone.token, challenge, ghost)))

    assert counts(net) == before
    assert {bytes(t.token_id) for t in await phone.tokens()} == {tid(phone)}
    assert {bytes(t.token_id) for t in await stranger.tokens()} == {tid(stranger)}


async def test_authorisation_must_sign_the_enrolment_challenge(
    net: TestNetwork, api: PassKeyApi, phone: PhoneApp, tmp_path: Path
) -> None:
    before = counts(net)
    new = new_token(tmp_path)
    d = new.description
    challenge, _ = await api.challenge(Purpose.ENROL)
    other, _ = await api.challenge(Purpose.ENROL)
    request = passkey_pb2.EnrolRequest(
        challenge=challenge,
        kind=int(d.kind),  # type: ignore[arg-type]
        algorithm=int(d.algorithm),  # type: ignore[arg-type]
        public_key=d.public_key,
        label="new",
        signature=handshake.enrol_proof(new, challenge=challenge, label="new").signature,
        existing=passkey_pb2.TokenProof(
            token_id=tid(phone),
            challenge=other,
            signature=handshake.add_token_proof(
                phone.token,
                challenge=other,
                existing_token_id=tid(phone),
                new_public_key=d.public_key,
            ).signature,
        ),
    )
    with pytest.raises(ChallengeInvalid, match="same challenge"):
        await api._call("Enrol", request)
    assert counts(net) == before


async def test_a_revoked_token_cannot_authorise_a_new_one(
    net: TestNetwork, api: PassKeyApi, phone: PhoneApp, backup: PhoneApp, tmp_path: Path
) -> None:
    await revoke(phone, backup)
    before = counts(net)
    new = new_token(tmp_path)
    with pytest.raises(TokenRevoked):
        await flow.enrol(api, new, label="new", existing=(backup.token, tid(backup)))
    assert counts(net) == before
    # The active token still can.
    token_id, new_account, _ = await flow.enrol(
        api, new, label="new", existing=(phone.token, tid(phone))
    )
    assert not new_account
    assert token_id in {bytes(t.token_id) for t in await phone.tokens()}


# --- listing and revoking ---------------------------------------------------------


async def test_list_tokens_proof_must_match_its_purpose_and_be_fresh(
    api: PassKeyApi, phone: PhoneApp, stranger: PhoneApp
) -> None:
    me = tid(phone)

    challenge, _ = await api.challenge(Purpose.LIST_TOKENS)
    signature = handshake.list_tokens_proof(phone.token, challenge=challenge, token_id=me)
    listed = await api.list_tokens(token_id=me, challenge=challenge, proof=signature)
    assert [bytes(t.token_id) for t in listed] == [me]
    # Replayed.
    with pytest.raises(ChallengeInvalid):
        await api.list_tokens(token_id=me, challenge=challenge, proof=signature)

    # A challenge issued for something else.
    for purpose in (Purpose.ENROL, Purpose.REVOKE_TOKEN):
        c, _ = await api.challenge(purpose)
        s = handshake.list_tokens_proof(phone.token, challenge=c, token_id=me)
        with pytest.raises(ChallengeInvalid):
            await api.list_tokens(token_id=me, challenge=c, proof=s)

    # A signature made for another purpose over the right challenge.
    c, _ = await api.challenge(Purpose.LIST_TOKENS)
    s = handshake.revoke_token_proof(phone.token, challenge=c, token_id=me, target_token_id=me)
    with pytest.raises(SignatureInvalid):
        await api.list_tokens(token_id=me, challenge=c, proof=s)

    # Another account's token signing for this one.
    c, _ = await api.challenge(Purpose.LIST_TOKENS)
    s = handshake.list_tokens_proof(stranger.token, challenge=c, token_id=me)
    with pytest.raises(SignatureInvalid):
        await api.list_tokens(token_id=me, challenge=c, proof=s)

    # A token id nobody enrolled.
    c, _ = await api.challenge(Purpose.LIST_TOKENS)
    ghost = secrets.token_bytes(16)
    s = handshake.list_tokens_proof(phone.token, challenge=c, token_id=ghost)
    with pytest.raises(TokenUnknown):
        await api.list_tokens(token_id=ghost, challenge=c, proof=s)


async def test_revoke_proof_must_match_its_purpose_target_and_be_fresh(
    api: PassKeyApi, phone: PhoneApp, backup: PhoneApp
) -> None:
    me, target = tid(phone), tid(backup)

    async def refused(
        purpose: Purpose, sign: Callable[[bytes], bytes], error: type[Exception]
    ) -> None:
        c, _ = await api.challenge(purpose)
        with pytest.raises(error):
            await api.revoke_token(token_id=me, challenge=c, proof=sign(c), target=target)

    def for_target(t: bytes) -> Callable[[bytes], bytes]:
        return lambda c: handshake.revoke_token_proof(
            phone.token, challenge=c, token_id=me, target_token_id=t
        )

    await refused(Purpose.LIST_TOKENS, for_target(target), ChallengeInvalid)
    await refused(Purpose.ENROL, for_target(target), ChallengeInvalid)
    await refused(
        Purpose.REVOKE_TOKEN,
        lambda c: handshake.list_tokens_proof(phone.token, challenge=c, token_id=me),
        SignatureInvalid,
    )
    # Signed to revoke the phone itself, sent to revoke the backup.
    await refused(Purpose.REVOKE_TOKEN, for_target(me), SignatureInvalid)
    # Signed by the backup but sent as the phone.
    await refused(
        Purpose.REVOKE_TOKEN,
        lambda c: handshake.revoke_token_proof(
            backup.token, challenge=c, token_id=me, target_token_id=target
        ),
        SignatureInvalid,
    )
    assert all(t.revoked_at_unix_ms == 0 for t in await phone.tokens())

    c, _ = await api.challenge(Purpose.REVOKE_TOKEN)
    s = handshake.revoke_token_proof(phone.token, challenge=c, token_id=me, target_token_id=target)
    await api.revoke_token(token_id=me, challenge=c, proof=s, target=target)
    with pytest.raises(ChallengeInvalid):
        await api.revoke_token(token_id=me, challenge=c, proof=s, target=target)
    states = {bytes(t.token_id): t.revoked_at_unix_ms for t in await phone.tokens()}
    assert states[me] == 0
    assert states[target] > 0


async def test_revoking_another_accounts_token_is_refused(
    sp: AsyncSPClient, phone: PhoneApp, backup: PhoneApp, stranger: PhoneApp
) -> None:
    with pytest.raises(TokenUnknown, match="no such token in this account"):
        await phone.revoke(tid(stranger))
    with pytest.raises(TokenUnknown, match="no such token in this account"):
        await phone.revoke(secrets.token_bytes(16))
    [theirs] = await stranger.tokens()
    assert theirs.revoked_at_unix_ms == 0
    assert (await login(sp, stranger)).kc is not None


async def test_the_last_active_token_cannot_be_revoked(phone: PhoneApp, backup: PhoneApp) -> None:
    await revoke(phone, backup)
    with pytest.raises(LastToken, match="only active token"):
        await phone.revoke(tid(phone))
    states = {bytes(t.token_id): t.revoked_at_unix_ms for t in await phone.tokens()}
    assert states[tid(phone)] == 0


async def test_a_token_may_revoke_itself_while_another_stays_active(
    sp: AsyncSPClient, phone: PhoneApp, backup: PhoneApp
) -> None:
    await revoke(backup, backup)
    with pytest.raises(TokenRevoked):
        await backup.tokens()
    states = {bytes(t.token_id): t.revoked_at_unix_ms for t in await phone.tokens()}
    assert states[tid(phone)] == 0
    assert states[tid(backup)] > 0


# --- what a revoked token can no longer do -----------------------------------------


async def test_a_revoked_token_cannot_log_in_or_manage_the_account(
    net: TestNetwork, sp: AsyncSPClient, phone: PhoneApp, backup: PhoneApp
) -> None:
    before = await login(sp, phone)
    await revoke(phone, backup)

    ticket = await sp.get_ticket()
    session = BrowserSession.for_ticket(ticket, sp.spid)
    async with aiohttp.ClientSession() as http, session.waiting(http) as wait:
        payload = session.payload().encode()
        with pytest.raises(TokenRevoked):
            await backup.scan(payload, confirm=lambda _: True)
        # The refused scan did not spoil the ticket: the original answers it.
        report = await phone.scan(payload, confirm=lambda _: True)
        async with asyncio.timeout(10):
            outcome = await wait.result()
    assert report.accepted
    assert outcome.kc == before.kc
    who = await sp.get_puid(ticket.ticket)
    assert who.puid == (await sp.get_puid(before.ticket.ticket)).puid

    with pytest.raises(TokenRevoked):
        await backup.tokens()
    with pytest.raises(TokenRevoked):
        await backup.revoke(tid(phone))
    assert {t.revoked_at_unix_ms == 0 for t in await phone.tokens()} == {True, False}


async def test_put_ticket_fails_once_the_logged_in_token_is_revoked(
    sp: AsyncSPClient, phone: PhoneApp, backup: PhoneApp
) -> None:
    by_backup = await login(sp, backup)
    by_phone = await login(sp, phone)
    await revoke(phone, backup)
    with pytest.raises(TokenRevoked):
        await sp.put_ticket(by_backup.ticket.ticket)
    renewed = await sp.put_ticket(by_phone.ticket.ticket)
    assert renewed.ticket != by_phone.ticket.ticket
    assert (await sp.get_puid(renewed.ticket)).auth_types == "c"


async def test_the_original_still_logs_in_after_its_backup_is_revoked(
    sp: AsyncSPClient, phone: PhoneApp, backup: PhoneApp
) -> None:
    puid = (await sp.get_puid((await login(sp, backup)).ticket.ticket)).puid
    await revoke(phone, backup)
    run = await login(sp, phone)
    assert run.report.accepted
    assert run.kc is not None
    assert (await sp.get_puid(run.ticket.ticket, finalize=True)).puid == puid

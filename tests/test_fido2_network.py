"""FIDO2 tokens at the network: registrations and assertions are checked with
python-fido2's server code (origin, challenge, RP id hash, UP/UV, signature),
and the signature counter catches a cloned key."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from fido2.ctap2.base import Ctap2
from fido2.ctap2.pin import ClientPin

from authnet import errors
from authnet.directory.sql import SqlDirectory, tokens
from authnet.protocol.proofs import Proof
from authnet.sdk.sp_client import AsyncSPClient
from authnet.testing import TestNetwork
from simulators.ctap2 import Authenticator, SoftCtapDevice
from tests.helpers import login_with
from tokens import handshake
from tokens import login as flow
from tokens.api import PassKeyApi, Purpose
from tokens.fido2 import Fido2PassKey


def new_key(path: Path, rp_id: str = "localhost") -> tuple[Authenticator, Fido2PassKey]:
    auth = Authenticator(path)
    device = SoftCtapDevice(auth)
    ClientPin(Ctap2(device)).set_pin("1234")
    token = Fido2PassKey(device, rp_id=rp_id)
    token.verify_pin("1234")
    return auth, token


def token_rows(net: TestNetwork) -> int:
    directory = net.network.directory
    assert isinstance(directory, SqlDirectory)
    with directory.engine.connect() as c:
        return int(c.execute(sa.select(sa.func.count()).select_from(tokens)).scalar_one())


@pytest.fixture
async def api(net: TestNetwork):  # type: ignore[no-untyped-def]
    async with PassKeyApi(net.addresses.passkey, ca_pem=net.ca_pem) as a:
        yield a


async def test_the_network_tells_tokens_its_rp_id(api: PassKeyApi) -> None:
    assert await api.webauthn_rp_id_of_network() == "localhost"


async def test_registration_for_another_rp_or_transcript_is_refused(
    net: TestNetwork, api: PassKeyApi, tmp_path: Path
) -> None:
    before = token_rows(net)
    _, elsewhere = new_key(tmp_path / "a.json", rp_id="evil.example")
    challenge, _ = await api.challenge(Purpose.ENROL)
    registration = handshake.enrol_proof(elsewhere, challenge=challenge, label="k")
    with pytest.raises(errors.SignatureInvalid, match=r"origin|RP ID"):
        await api.enrol(
            challenge=challenge,
            description=elsewhere.description,
            label="k",
            possession=registration,
        )
    # Made for another label than the one sent: the challenge does not match.
    _, key = new_key(tmp_path / "b.json")
    challenge, _ = await api.challenge(Purpose.ENROL)
    registration = handshake.enrol_proof(key, challenge=challenge, label="what I signed")
    with pytest.raises(errors.SignatureInvalid, match="challenge"):
        await api.enrol(
            challenge=challenge,
            description=key.description,
            label="what I sent",
            possession=registration,
        )
    assert token_rows(net) == before


async def test_a_fido2_token_cannot_enrol_or_prove_with_a_plain_signature(
    net: TestNetwork, sp: AsyncSPClient, api: PassKeyApi, tmp_path: Path
) -> None:
    _, key = new_key(tmp_path / "k.json")
    challenge, _ = await api.challenge(Purpose.ENROL)
    with pytest.raises(errors.MalformedInput, match="registration"):
        await api.enrol(
            challenge=challenge,
            description=key.description,
            label="k",
            possession=Proof(signature=b"\x30\x00"),
        )
    token_id, _, _ = await flow.enrol(api, key, label="k")
    challenge, _ = await api.challenge(Purpose.LIST_TOKENS)
    with pytest.raises(errors.MalformedInput, match="WebAuthn assertion"):
        await api.list_tokens(token_id=token_id, challenge=challenge, proof=Proof(signature=b"x"))
    assert len(await flow.list_tokens(api, key, token_id)) == 1


async def test_a_cloned_key_is_caught_by_its_signature_counter(
    net: TestNetwork, sp: AsyncSPClient, api: PassKeyApi, tmp_path: Path
) -> None:
    original, key = new_key(tmp_path / "original.json")
    token_id, _, _ = await flow.enrol(api, key, label="k")
    # Someone copies the key's secrets (state) while it is at counter N.
    twin = Fido2PassKey(
        SoftCtapDevice(original.clone()), rp_id="localhost", credential=key.description.public_key
    )
    twin.verify_pin("1234")
    assert (await login_with(sp, api, twin, token_id)).kc is not None  # the clone goes first
    # The real key's counter is now behind what the network has seen.
    with pytest.raises(errors.SignatureInvalid, match="cloned"):
        await login_with(sp, api, key, token_id)


async def test_registration_records_the_credential_and_its_counter(
    net: TestNetwork, api: PassKeyApi, tmp_path: Path
) -> None:
    _, key = new_key(tmp_path / "k.json")
    token_id, new_account, _ = await flow.enrol(api, key, label="k")
    assert new_account
    record = await net.network.directory.get_token(token_id)
    assert record is not None
    assert record.public_key == key.description.public_key  # AttestedCredentialData
    assert record.algorithm == 2
    assert record.sign_count >= 1

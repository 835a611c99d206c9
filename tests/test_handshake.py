"""The token's side of the protocol (tokens.handshake), checked the way the
network checks it: signatures verified with authnet.protocol.signatures over the
transcripts of authnet.protocol.messages, sealed Kc opened with the browser's key."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from authnet.errors import MalformedInput, PinRequired, SealedKeyInvalid, SignatureInvalid
from authnet.protocol import messages
from authnet.protocol.factors import Factor
from authnet.protocol.ids import browser_key_hash, new_ticket, ticket_hash
from authnet.protocol.kc import kc_fingerprint
from authnet.protocol.payload import Address, LoginPayload
from authnet.protocol.proofs import Proof
from authnet.protocol.sealing import SealedKey, open_kc, seal_kc
from authnet.protocol.signatures import Algorithm, load_public_key, verify
from tokens import handshake
from tokens.handshake import AuthRequest, AuthResponse
from tokens.passkey import PassKey, TokenKind
from tokens.phone import PhoneKeyStore, PhonePassKey

PIN = "2468"
SPID = bytes.fromhex("0123456789abcdef0123456789abcdef")
OTHER_SPID = bytes.fromhex("fedcba9876543210fedcba9876543210")
NONCE = hashlib.sha256(b"nonce").digest()
OTHER_NONCE = hashlib.sha256(b"other nonce").digest()
TOKEN_ID = b"\x01" * 16
OTHER_TOKEN_ID = b"\x02" * 16
CHALLENGE = hashlib.sha256(b"challenge").digest()


# --- fixtures ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PhoneKeyStore]:
    d: Path = tmp_path_factory.mktemp("tokens")
    return {
        "plain": PhoneKeyStore.create(d / "plain.json", label="plain"),
        "other": PhoneKeyStore.create(d / "other.json", label="other"),
        "pin": PhoneKeyStore.create(d / "pin.json", label="pin", pin=PIN),
    }


@pytest.fixture(scope="module")
def token(stores: dict[str, PhoneKeyStore]) -> PhonePassKey:
    return stores["plain"].unlock()


@pytest.fixture(scope="module")
def other_token(stores: dict[str, PhoneKeyStore]) -> PhonePassKey:
    return stores["other"].unlock()


@pytest.fixture(scope="module")
def pin_token(stores: dict[str, PhoneKeyStore]) -> PhonePassKey:
    return stores["pin"].unlock(PIN)


@pytest.fixture
def locked_token(stores: dict[str, PhoneKeyStore]) -> PhonePassKey:
    return stores["pin"].unlock()


@dataclasses.dataclass
class Browser:
    private: x25519.X25519PrivateKey
    public: bytes
    payload: LoginPayload


def new_browser(ticket: str | None = None) -> Browser:
    private = x25519.X25519PrivateKey.generate()
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    payload = LoginPayload(
        ticket=ticket or new_ticket(),
        browser_key=public,
        network=Address(host="passkey.example.net", port=8443),
    )
    return Browser(private, public, payload)


@pytest.fixture
def browser() -> Browser:
    return new_browser()


def request(auth_types: str, *, spid: bytes = SPID, nonce: bytes = NONCE) -> AuthRequest:
    return handshake.auth_request(
        nonce=nonce,
        spid=spid,
        sp_name="hello",
        sp_display_name="Hello SP",
        sp_origins=["https://hello.example"],
        browser_ip="192.0.2.7",
        browser_user_agent="Mozilla/5.0",
        browser_origin="https://hello.example",
        auth_types=auth_types,
        expires_at_unix_ms=1_700_000_000_000,
    )


def public_key(token: PassKey) -> ec.EllipticCurvePublicKey:
    d = token.description
    return load_public_key(d.public_key, d.algorithm)


def network_check(
    token: PassKey, browser: Browser, resp: AuthResponse, *, spid: bytes = SPID, **override: Any
) -> None:
    """CompleteAuth's signature check, from what the network holds."""
    fields: dict[str, Any] = {
        "ticket_hash": ticket_hash(browser.payload.ticket),
        "spid": spid,
        "browser_key_hash": browser_key_hash(browser.public),
        "nonce": resp.nonce,
        "token_id": resp.token_id,
        "user_verified": resp.user_verified,
        "sealed_digest": resp.sealed_kc.digest() if resp.sealed_kc else None,
    }
    fields.update(override)
    verify(public_key(token), resp.proof.signature, messages.auth_response(**fields))


# --- respond ------------------------------------------------------------------------


def test_response_signature_verifies_over_the_network_transcript(
    token: PhonePassKey, browser: Browser
) -> None:
    resp = handshake.respond(
        payload=browser.payload, request=request("c"), token=token, token_id=TOKEN_ID
    )
    assert resp.ticket == browser.payload.ticket
    assert resp.nonce == NONCE
    assert resp.token_id == TOKEN_ID
    assert resp.user_verified is False
    network_check(token, browser, resp)


def _other_sealed(browser: Browser) -> bytes:
    sealed = seal_kc(
        bytes(32), browser.public, ticket_hash=ticket_hash(browser.payload.ticket), spid=SPID
    )
    return sealed.digest()


BOUND_FIELDS: dict[str, Callable[[Browser], Any]] = {
    "ticket_hash": lambda b: ticket_hash(new_ticket()),
    "spid": lambda b: OTHER_SPID,
    "browser_key_hash": lambda b: browser_key_hash(new_browser().public),
    "nonce": lambda b: OTHER_NONCE,
    "token_id": lambda b: OTHER_TOKEN_ID,
    "user_verified": lambda b: True,
    "sealed_digest": _other_sealed,
    "sealed_digest_absent": lambda b: None,
}


@pytest.mark.parametrize("field", sorted(BOUND_FIELDS))
def test_changing_any_bound_field_breaks_the_signature(
    token: PhonePassKey, browser: Browser, field: str
) -> None:
    resp = handshake.respond(
        payload=browser.payload, request=request("c"), token=token, token_id=TOKEN_ID
    )
    name = field.removesuffix("_absent")
    with pytest.raises(SignatureInvalid):
        network_check(token, browser, resp, **{name: BOUND_FIELDS[field](browser)})


def test_another_tokens_key_does_not_verify(
    token: PhonePassKey, other_token: PhonePassKey, browser: Browser
) -> None:
    resp = handshake.respond(
        payload=browser.payload, request=request(""), token=token, token_id=TOKEN_ID
    )
    network_check(token, browser, resp)
    with pytest.raises(SignatureInvalid):
        network_check(other_token, browser, resp)


def test_client_key_is_sealed_to_the_browser_for_this_ticket_and_sp(
    token: PhonePassKey, browser: Browser
) -> None:
    resp = handshake.respond(
        payload=browser.payload, request=request("c"), token=token, token_id=TOKEN_ID
    )
    assert resp.sealed_kc is not None
    th = ticket_hash(browser.payload.ticket)
    kc = open_kc(resp.sealed_kc, browser.private, ticket_hash=th, spid=SPID)
    assert kc == token.derive_kc(SPID)
    assert resp.kc_fingerprint == kc_fingerprint(kc)
    # Not for another ticket, SP or browser key.
    with pytest.raises(SealedKeyInvalid):
        open_kc(resp.sealed_kc, browser.private, ticket_hash=ticket_hash(new_ticket()), spid=SPID)
    with pytest.raises(SealedKeyInvalid):
        open_kc(resp.sealed_kc, browser.private, ticket_hash=th, spid=OTHER_SPID)
    with pytest.raises(SealedKeyInvalid):
        open_kc(resp.sealed_kc, new_browser().private, ticket_hash=th, spid=SPID)


def test_kc_depends_on_the_sp_and_the_token(
    token: PhonePassKey, other_token: PhonePassKey, browser: Browser
) -> None:
    th = ticket_hash(browser.payload.ticket)
    kcs = []
    for tok, spid in ((token, SPID), (token, OTHER_SPID), (other_token, SPID)):
        resp = handshake.respond(
            payload=browser.payload,
            request=request("c", spid=spid),
            token=tok,
            token_id=TOKEN_ID,
        )
        assert resp.sealed_kc is not None
        kcs.append(open_kc(resp.sealed_kc, browser.private, ticket_hash=th, spid=spid))
    assert len(set(kcs)) == 3


def test_each_response_seals_afresh(token: PhonePassKey, browser: Browser) -> None:
    a = handshake.respond(
        payload=browser.payload, request=request("c"), token=token, token_id=TOKEN_ID
    )
    b = handshake.respond(
        payload=browser.payload, request=request("c"), token=token, token_id=TOKEN_ID
    )
    assert a.sealed_kc is not None
    assert b.sealed_kc is not None
    assert a.sealed_kc.enc != b.sealed_kc.enc
    assert a.kc_fingerprint == b.kc_fingerprint


@pytest.mark.parametrize("auth_types", ["", "p"])
def test_without_c_nothing_is_sealed(
    pin_token: PhonePassKey, browser: Browser, auth_types: str
) -> None:
    resp = handshake.respond(
        payload=browser.payload, request=request(auth_types), token=pin_token, token_id=TOKEN_ID
    )
    assert resp.sealed_kc is None
    assert resp.kc_fingerprint is None
    network_check(pin_token, browser, resp, sealed_digest=None)
    with pytest.raises(SignatureInvalid):
        network_check(pin_token, browser, resp, sealed_digest=_other_sealed(browser))


@pytest.mark.parametrize("auth_types", ["p", "pc", "cp"])
def test_pin_requested_from_a_pinless_token(
    token: PhonePassKey, browser: Browser, auth_types: str
) -> None:
    assert not token.has_pin
    with pytest.raises(PinRequired, match="Hello SP"):
        handshake.respond(
            payload=browser.payload, request=request(auth_types), token=token, token_id=TOKEN_ID
        )


@pytest.mark.parametrize("auth_types", ["p", "pc"])
def test_pin_requested_from_an_unverified_token(
    locked_token: PhonePassKey, browser: Browser, auth_types: str
) -> None:
    assert locked_token.has_pin
    assert not locked_token.user_verified
    with pytest.raises(PinRequired):
        handshake.respond(
            payload=browser.payload,
            request=request(auth_types),
            token=locked_token,
            token_id=TOKEN_ID,
        )


@pytest.mark.parametrize("auth_types", ["", "c"])
def test_a_locked_token_cannot_answer_at_all(
    locked_token: PhonePassKey, browser: Browser, auth_types: str
) -> None:
    with pytest.raises(PinRequired):
        handshake.respond(
            payload=browser.payload,
            request=request(auth_types),
            token=locked_token,
            token_id=TOKEN_ID,
        )


def test_verified_pin_is_signed_as_user_verified(pin_token: PhonePassKey, browser: Browser) -> None:
    resp = handshake.respond(
        payload=browser.payload, request=request("pc"), token=pin_token, token_id=TOKEN_ID
    )
    assert resp.user_verified is True
    assert resp.sealed_kc is not None
    network_check(pin_token, browser, resp)
    # A relay cannot downgrade (or upgrade) the claim.
    with pytest.raises(SignatureInvalid):
        network_check(pin_token, browser, resp, user_verified=False)


def test_response_repr_hides_secrets(token: PhonePassKey, browser: Browser) -> None:
    resp = handshake.respond(
        payload=browser.payload, request=request("c"), token=token, token_id=TOKEN_ID
    )
    r = repr(resp)
    assert browser.payload.ticket not in r
    assert browser.payload.ticket[4:] not in r
    assert repr(NONCE) not in r
    assert repr(resp.proof.signature) not in r
    assert repr(NONCE) not in repr(request("c"))


# --- auth_request -----------------------------------------------------------------------


def test_auth_request_parses_factors_and_origin() -> None:
    req = request("pc")
    assert req.requested == {Factor.PIN, Factor.CLIENT_KEY}
    assert req.sp_origins == ("https://hello.example",)
    assert req.origin_registered is True
    other = dataclasses.replace(req, browser_origin="https://evil.example")
    assert other.origin_registered is False
    assert dataclasses.replace(req, sp_origins=()).origin_registered is None
    # No origin at all: a client that is not a browser, shown as unknown.
    assert dataclasses.replace(req, browser_origin="").origin_registered is None


@pytest.mark.parametrize(
    "change",
    [
        {"nonce": NONCE[:31]},
        {"nonce": NONCE + b"x"},
        {"spid": SPID[:15]},
        {"spid": SPID + b"x"},
        {"auth_types": "x"},
        {"auth_types": "pcq"},
    ],
)
def test_auth_request_refuses_malformed_challenges(change: dict[str, Any]) -> None:
    kwargs: dict[str, Any] = {
        "nonce": NONCE,
        "spid": SPID,
        "sp_name": "n",
        "sp_display_name": "N",
        "sp_origins": [],
        "browser_ip": "",
        "browser_user_agent": "",
        "browser_origin": "",
        "auth_types": "c",
        "expires_at_unix_ms": 0,
    }
    kwargs.update(change)
    with pytest.raises(MalformedInput):
        handshake.auth_request(**kwargs)


# --- decline --------------------------------------------------------------------------


def decline_message(browser: Browser, **override: Any) -> bytes:
    fields: dict[str, Any] = {
        "ticket_hash": ticket_hash(browser.payload.ticket),
        "spid": SPID,
        "nonce": NONCE,
        "token_id": TOKEN_ID,
    }
    fields.update(override)
    return messages.auth_decline(**fields)


def test_decline_signature_verifies_over_auth_decline(
    token: PhonePassKey, browser: Browser
) -> None:
    d = handshake.decline(
        payload=browser.payload, request=request("c"), token=token, token_id=TOKEN_ID
    )
    assert d.ticket == browser.payload.ticket
    assert d.nonce == NONCE
    assert d.token_id == TOKEN_ID
    key = public_key(token)
    verify(key, d.proof.signature, decline_message(browser))
    for override in (
        {"ticket_hash": ticket_hash(new_ticket())},
        {"spid": OTHER_SPID},
        {"nonce": OTHER_NONCE},
        {"token_id": OTHER_TOKEN_ID},
    ):
        with pytest.raises(SignatureInvalid):
            verify(key, d.proof.signature, decline_message(browser, **override))
    assert repr(d.proof.signature) not in repr(d)


def test_decline_and_accept_are_not_interchangeable(token: PhonePassKey, browser: Browser) -> None:
    th = ticket_hash(browser.payload.ticket)
    key = public_key(token)
    d = handshake.decline(
        payload=browser.payload, request=request(""), token=token, token_id=TOKEN_ID
    )
    accept_message = messages.auth_response(
        ticket_hash=th,
        spid=SPID,
        browser_key_hash=browser_key_hash(browser.public),
        nonce=NONCE,
        token_id=TOKEN_ID,
        user_verified=False,
        sealed_digest=None,
    )
    with pytest.raises(SignatureInvalid):
        verify(key, d.proof.signature, accept_message)
    a = handshake.respond(
        payload=browser.payload, request=request(""), token=token, token_id=TOKEN_ID
    )
    verify(key, a.proof.signature, accept_message)
    with pytest.raises(SignatureInvalid):
        verify(key, a.proof.signature, decline_message(browser))


def test_declining_needs_no_pin_but_an_unlocked_token(
    token: PhonePassKey, locked_token: PhonePassKey, browser: Browser
) -> None:
    # A PIN-less token may decline a login that asks for the PIN...
    d = handshake.decline(
        payload=browser.payload, request=request("p"), token=token, token_id=TOKEN_ID
    )
    verify(public_key(token), d.proof.signature, decline_message(browser))
    # ...but a locked one cannot sign anything, a decline included.
    with pytest.raises(PinRequired):
        handshake.decline(
            payload=browser.payload, request=request("p"), token=locked_token, token_id=TOKEN_ID
        )


# --- account operations ---------------------------------------------------------------


def account_messages(token: PassKey, new_public_key: bytes, label: str) -> dict[str, bytes]:
    d = token.description
    return {
        "enrol": messages.enrol(
            challenge=CHALLENGE,
            kind=int(d.kind),
            algorithm=int(d.algorithm),
            public_key=d.public_key,
            label=label,
        ),
        "add_token": messages.add_token(
            challenge=CHALLENGE, token_id=TOKEN_ID, new_public_key=new_public_key
        ),
        "list_tokens": messages.list_tokens(challenge=CHALLENGE, token_id=TOKEN_ID),
        "revoke_token": messages.revoke_token(
            challenge=CHALLENGE, token_id=TOKEN_ID, target_token_id=OTHER_TOKEN_ID
        ),
        "auth_decline": messages.auth_decline(
            ticket_hash=CHALLENGE, spid=SPID, nonce=NONCE, token_id=TOKEN_ID
        ),
        "auth_response": messages.auth_response(
            ticket_hash=CHALLENGE,
            spid=SPID,
            browser_key_hash=CHALLENGE,
            nonce=NONCE,
            token_id=TOKEN_ID,
            user_verified=False,
            sealed_digest=None,
        ),
    }


def account_signatures(token: PassKey, new_public_key: bytes, label: str) -> dict[str, bytes]:
    """The ES256 signatures inside each account proof."""
    proofs = {
        "enrol": handshake.enrol_proof(token, challenge=CHALLENGE, label=label),
        "add_token": handshake.add_token_proof(
            token,
            challenge=CHALLENGE,
            existing_token_id=TOKEN_ID,
            new_public_key=new_public_key,
        ),
        "list_tokens": handshake.list_tokens_proof(token, challenge=CHALLENGE, token_id=TOKEN_ID),
        "revoke_token": handshake.revoke_token_proof(
            token, challenge=CHALLENGE, token_id=TOKEN_ID, target_token_id=OTHER_TOKEN_ID
        ),
    }
    out = {}
    for name, proof in proofs.items():
        assert isinstance(proof, Proof)
        out[name] = proof.signature
    return out


def test_account_signatures_verify_only_over_their_own_message(
    token: PhonePassKey, other_token: PhonePassKey
) -> None:
    new_pk = other_token.description.public_key
    msgs = account_messages(token, new_pk, "my phone")
    assert len(set(msgs.values())) == len(msgs)
    sigs = account_signatures(token, new_pk, "my phone")
    key = public_key(token)
    for purpose, sig in sigs.items():
        for other, msg in msgs.items():
            if purpose == other:
                verify(key, sig, msg)
            else:
                with pytest.raises(SignatureInvalid):
                    verify(key, sig, msg)


def test_enrol_signature_binds_key_kind_label_and_challenge(token: PhonePassKey) -> None:
    d = token.description
    assert d.kind is TokenKind.PHONE
    assert d.algorithm is Algorithm.ES256
    proof = handshake.enrol_proof(token, challenge=CHALLENGE, label="my phone")
    assert isinstance(proof, Proof)
    sig = proof.signature
    key = public_key(token)
    base: dict[str, Any] = {
        "challenge": CHALLENGE,
        "kind": int(d.kind),
        "algorithm": int(d.algorithm),
        "public_key": d.public_key,
        "label": "my phone",
    }
    verify(key, sig, messages.enrol(**base))
    other_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    for change in (
        {"challenge": NONCE},
        {"kind": int(TokenKind.FIDO2)},
        {"algorithm": 2},
        {"public_key": other_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)},
        {"label": "my phonf"},
    ):
        with pytest.raises(SignatureInvalid):
            verify(key, sig, messages.enrol(**{**base, **change}))


@pytest.mark.parametrize(
    ("purpose", "change"),
    [
        ("add_token", {"challenge": NONCE}),
        ("add_token", {"token_id": OTHER_TOKEN_ID}),
        ("add_token", {"new_public_key": b"another key"}),
        ("list_tokens", {"challenge": NONCE}),
        ("list_tokens", {"token_id": OTHER_TOKEN_ID}),
        ("revoke_token", {"challenge": NONCE}),
        ("revoke_token", {"token_id": OTHER_TOKEN_ID}),
        ("revoke_token", {"target_token_id": TOKEN_ID}),
    ],
)
def test_account_signatures_bind_their_fields(
    token: PhonePassKey, other_token: PhonePassKey, purpose: str, change: dict[str, bytes]
) -> None:
    new_pk = other_token.description.public_key
    sig = account_signatures(token, new_pk, "x")[purpose]
    base: dict[str, dict[str, bytes]] = {
        "add_token": {"challenge": CHALLENGE, "token_id": TOKEN_ID, "new_public_key": new_pk},
        "list_tokens": {"challenge": CHALLENGE, "token_id": TOKEN_ID},
        "revoke_token": {
            "challenge": CHALLENGE,
            "token_id": TOKEN_ID,
            "target_token_id": OTHER_TOKEN_ID,
        },
    }
    build = getattr(messages, purpose)
    key = public_key(token)
    verify(key, sig, build(**base[purpose]))
    with pytest.raises(SignatureInvalid):
        verify(key, sig, build(**{**base[purpose], **change}))


def test_signature_checks_refuse_impossible_signatures(token: PhonePassKey) -> None:
    key = public_key(token)
    msg = messages.list_tokens(challenge=CHALLENGE, token_id=TOKEN_ID)
    sig = handshake.list_tokens_proof(token, challenge=CHALLENGE, token_id=TOKEN_ID).signature
    for bad in (b"", sig + b"\x00" * 81, sig[:-1], bytes(len(sig))):
        with pytest.raises(SignatureInvalid):
            verify(key, bad, msg)


def test_a_sealed_key_from_the_response_round_trips_its_wire_form(
    token: PhonePassKey, browser: Browser
) -> None:
    resp = handshake.respond(
        payload=browser.payload, request=request("c"), token=token, token_id=TOKEN_ID
    )
    assert resp.sealed_kc is not None
    wire = resp.sealed_kc.enc + resp.sealed_kc.ciphertext
    again = SealedKey(enc=wire[:32], ciphertext=wire[32:])
    assert again.digest() == resp.sealed_kc.digest()
    network_check(token, browser, resp, sealed_digest=again.digest())


@pytest.mark.parametrize("auth_types", ["c", "pc"])
def test_a_low_order_browser_key_in_the_qr_code_is_malformed_input(
    pin_token: PhonePassKey, auth_types: str
) -> None:
    # The payload parser only checks the key's length; a hostile code can carry
    # a low-order X25519 point, which the token must report, not crash on.
    payload = LoginPayload(
        ticket=new_ticket(),
        browser_key=bytes(32),
        network=Address(host="passkey.example.net", port=8443),
    )
    with pytest.raises(MalformedInput, match="browser key"):
        handshake.respond(
            payload=payload, request=request(auth_types), token=pin_token, token_id=TOKEN_ID
        )

"""Token ids that start with "-" (one in 64) reach the commands intact."""

from __future__ import annotations

import secrets

import pytest

from authnet.protocol.encoding import b64u_encode
from simulators.phone.cli import parser as phone_parser
from tokens.arguments import protect_token_ids
from tokens.cli import parser as passkey_parser

DASHED = "-" + b64u_encode(secrets.token_bytes(16))[1:]


def test_a_positional_id_moves_behind_double_dash() -> None:
    argv = protect_token_ids(["revoke", DASHED, "--network", "h:1"])
    assert argv == ["revoke", "--network", "h:1", "--", DASHED]
    ns = phone_parser().parse_args(argv)
    assert (ns.command, ns.token_id, ns.network) == ("revoke", DASHED, "h:1")


def test_an_option_value_is_joined_to_its_option() -> None:
    argv = ["enrol", "--token", "piv", "--network", "h:1", "--add-to", DASHED]
    fixed = protect_token_ids(argv, value_options=["--add-to"])
    assert fixed[-1] == f"--add-to={DASHED}"
    assert passkey_parser().parse_args(fixed).add_to == DASHED


def test_passkey_revoke_takes_a_dashed_id() -> None:
    argv = protect_token_ids(["revoke", "--token", "piv", "--network", "h:1", DASHED])
    ns = passkey_parser().parse_args(argv)
    assert ns.token_id == DASHED


@pytest.mark.parametrize(
    "argv",
    [
        ["revoke", "AbCdEfGhIjKlMnOpQrStUv"],  # an ordinary id
        ["--store", "-x.json", "show"],  # not an id: left alone
        ["revoke", "--", DASHED],  # already protected
        ["scan", "--yes"],
    ],
)
def test_everything_else_is_left_as_it_is(argv: list[str]) -> None:
    assert protect_token_ids(argv) == argv

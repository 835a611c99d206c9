"""`vault passphrase` and `vault recovery` through the real CLI, a real
hardener and the vault server as its caller (docs/vault.md 5.4-5.6, 17.3)."""

from __future__ import annotations

from pathlib import Path

from simulators.phone.app import PhoneApp
from tests.helpers import make_phone
from tests.vault.clirunner import VaultCli
from tests.vault.conftest import VaultServer

OLD = "my grandma had a strange green bbq"
NEW = "when I jump I can not stop laughing"


async def test_passphrase_set_change_rollback_and_recovery_in_the_cli(
    hvault: VaultServer, alice_phone: PhoneApp, tmp_path: Path
) -> None:
    store = tmp_path / "alice-phone.json"
    cli = VaultCli(hvault.url, tmp_path / "state.json")
    await cli.ok("login", "--phone", store, "--handle", "alice")
    await cli.ok("create-safe", "Home")
    await cli.ok("add", "Home", "note", "Plan", "--notes", "the plan")

    r = await cli.ok("passphrase", "set", "--new", "stdin", stdin=OLD + "\n")
    assert "only with a token AND the passphrase" in r.out
    # Every later command needs it: without it, a clear refusal (no terminal to ask on).
    r = await cli.run("items", "Home")
    assert r.code == 2
    assert "vault passphrase is needed" in r.err
    r = await cli.run("items", "Home", "--passphrase", "stdin", stdin="a wrong passphrase\n")
    assert r.code == 5
    assert "wrong vault passphrase" in r.err
    assert "attempts left" in r.err
    r = await cli.ok("items", "Home", "--passphrase", "stdin", stdin=OLD + "\n")
    assert "Plan" in r.out
    assert "ms PBKDF2" in r.err  # the unlock's time, step by step
    print("\nCLI unlock:", [line for line in r.err.splitlines() if "PBKDF2" in line])

    await cli.ok(
        "passphrase", "change", "--passphrase", "stdin", "--new", "stdin", stdin=f"{OLD}\n{NEW}\n"
    )
    assert (await cli.run("items", "Home", "--passphrase", "stdin", stdin=OLD + "\n")).code == 5
    await cli.ok("passphrase", "rollback", "--old", "stdin", stdin=OLD + "\n")
    assert "Plan" in (await cli.ok("items", "Home", "--passphrase", "stdin", stdin=OLD + "\n")).out

    setup = await cli.json("recovery", "setup", "--code", "--passphrase", "stdin", stdin=OLD + "\n")
    code = setup["code"]

    # Every token lost: a new phone (a new authnet account) recovers the vault.
    new_store = tmp_path / "new-phone.json"
    await make_phone(hvault.net, new_store, label="new phone")
    rescue = VaultCli(hvault.url, tmp_path / "rescue-state.json")
    r = await rescue.run(
        "recovery", "recover", "alice", "--phone", new_store, "--secret", "stdin", stdin="WRONG\n"
    )
    assert r.code == 2
    assert "recovery code is 25 symbols" in r.err
    r = await rescue.ok(
        "recovery", "recover", "alice", "--phone", new_store, "--secret", "stdin", stdin=code + "\n"
    )
    assert "is now the account's only token" in r.out
    # The new token opens it, without a passphrase (recovery removed it).
    assert "Plan" in (await rescue.ok("items", "Home")).out
    # The old session is warned at its next command.
    r = await cli.run("items", "Home", "--passphrase", "stdin", stdin=OLD + "\n")
    assert "RECOVERED from another session" in r.err
    for res in cli.results + rescue.results:
        assert OLD not in res.out + res.err
        assert NEW not in res.out + res.err

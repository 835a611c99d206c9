"""How long `vault login` takes on a registered device with the passphrase
bypass, beside the same login with the vault passphrase (docs/devices.md 11).

A real authnet network (authnet.testing, in this process), a real hardener
(hardener.testing: mTLS gRPC, its own thread) and `vault-api serve` in a child
process (SQLite, the hardener as its caller, the production PBKDF2 count
unless --iterations) are started; the `vault` command itself
(vault_api.client.cli.main, argument parsing included) runs in a worker
thread, as a person at a terminal would run it, with the phone key store
answering the token login in process. Each figure is one whole command:

  * passphrase: `vault login --phone STORE --passphrase env:...`: the authnet
    login, the key slot's token factor, PBKDF2 and the hardener round trip,
    the wrap opened, the success reported.
  * bypass: `vault login --phone STORE` with the device file and the bypass
    on: the authnet login, the device proof, HPKE open of the DKEK, the
    device wrap opened. No passphrase.

    .venv/bin/python bench/device_login.py --n 20

Prints one JSON object on stdout; progress goes to stderr.
"""

# ruff: noqa: E402  (the imports below come after the sys.path fix)
from __future__ import annotations

import sys
from pathlib import Path

# Run as `python bench/device_login.py`, Python puts bench/ first on sys.path,
# where bench/tokens.py would shadow the `tokens` package the phone uses.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse
import asyncio
import contextlib
import io
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from authnet.testing import TestNetwork
from bench.vault import start_server
from hardener.testing import TestHardener
from simulators.phone.app import PhoneApp
from vault_api.client.cli import main as vault_main
from vault_api.client.commands import Io

PASSPHRASE = "a bench passphrase that is long enough"
PASS_ENV = "BENCH_VAULT_PASSPHRASE"
# The `--passphrase` option that gives PASSPHRASE to `vault`.
PASSPHRASE_ARGS = ("--passphrase", f"env:{PASS_ENV}")


def log(text: str) -> None:
    print(f"[bench/device_login] {text}", file=sys.stderr, flush=True)


def summary(took: list[float]) -> dict[str, Any]:
    ordered = sorted(took)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {
        "n": len(took),
        "median_ms": round(statistics.median(took) * 1000, 1),
        "p90_ms": round(p90 * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
    }


class Cli:
    """`vault` in a worker thread (main runs its own event loop)."""

    def __init__(self, server: str, state: Path) -> None:
        self.server = server
        self.state = state

    def _run(self, args: list[str]) -> tuple[int, str]:
        out, err = io.StringIO(), io.StringIO()
        argv = ["--server", self.server, "--state", str(self.state), *args]
        code = vault_main(argv, Io(out=out, err=err, stdin=io.StringIO()))
        return code, err.getvalue()

    async def ok(self, *args: str) -> tuple[float, str]:
        t = time.perf_counter()
        code, err = await asyncio.to_thread(self._run, list(args))
        took = time.perf_counter() - t
        if code != 0:
            raise RuntimeError(f"vault {' '.join(args)}: exit {code}: {err.strip()}")
        return took, err


@dataclass(frozen=True)
class Stack:
    """A running vault stack with one account whose vault passphrase is set."""

    cli: Cli
    store: Path  # the phone key store the account logs in with

    def login(self, *extra: str) -> list[str]:
        """`vault login` on the phone (without the passphrase: add PASSPHRASE_ARGS)."""
        return [*extra, "login", "--phone", str(self.store)]


@contextlib.asynccontextmanager
async def passphrase_stack(iterations: int | None = None) -> AsyncIterator[Stack]:
    """The network, a hardener, `vault-api serve` (with the hardener; PBKDF2 at
    `iterations`, else the server's default) and a phone enrolled, logged in
    and with the vault passphrase PASSPHRASE set. Stopped on exit."""
    with tempfile.TemporaryDirectory(prefix="bench-device-login-") as tmp:
        root = Path(tmp)
        old_config = os.environ.get("VAULT_CONFIG_DIR")
        os.environ["VAULT_CONFIG_DIR"] = str(root / "config")
        os.environ[PASS_ENV] = PASSPHRASE
        try:
            async with TestNetwork(root / "authnet") as net, TestHardener(root / "hardener") as h:
                h.caller_credentials("vault")
                await net.add_sp("vault", "Vault")
                toml = (
                    f'hardener_address = "{h.address}"\n'
                    f'hardener_credentials = "{h.credentials_dir("vault")}"\n'
                )
                if iterations is not None:
                    toml += f"passphrase_kdf_iterations = {iterations}\n"
                log("starting vault-api serve (with the hardener) in a child process")
                data = root / "vault"
                data.mkdir(parents=True)
                (data / "vault.toml").write_text(toml)
                server = await start_server(data, net.root / "sps" / "vault", None)
                try:
                    store = root / "phone.json"
                    phone = PhoneApp.create(store, label="bench phone")
                    await phone.enrol(net.addresses.passkey, net.ca_pem)
                    cli = Cli(server.url, root / "state.json")
                    await cli.ok("login", "--phone", str(store), "--handle", "bench")
                    await cli.ok("passphrase", "set", "--new", PASSPHRASE_ARGS[1])
                    yield Stack(cli, store)
                finally:
                    server.stop()
        finally:
            os.environ.pop(PASS_ENV, None)
            if old_config is None:
                os.environ.pop("VAULT_CONFIG_DIR", None)
            else:
                os.environ["VAULT_CONFIG_DIR"] = old_config


async def _figures(n: int, iterations: int | None) -> dict[str, Any]:
    async with passphrase_stack(iterations) as stack:
        cli, login = stack.cli, stack.login("-q")
        log(f"{n} logins with the passphrase")
        passphrase = [(await cli.ok(*login, *PASSPHRASE_ARGS))[0] for _ in range(n)]
        await cli.ok("device", "register", "--bypass", *PASSPHRASE_ARGS)
        log(f"{n} logins with the device bypass")
        bypass = []
        for _ in range(n):
            took, err = await cli.ok(*login)
            if "bypass not used" in err:
                raise RuntimeError(f"the bypass was not used: {err.strip()}")
            bypass.append(took)
    with_pass, with_bypass = summary(passphrase), summary(bypass)
    return {
        "benchmark": "device_login",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
        },
        "settings": {
            "n": n,
            "passphrase_kdf_iterations": iterations or "the server's default",
            "database": "sqlite",
        },
        "cli_login_passphrase": with_pass,
        "cli_login_bypass": with_bypass,
        "bypass_saves_ms": round(with_pass["median_ms"] - with_bypass["median_ms"], 1),
    }


def cli_login_figures(n: int = 10, iterations: int | None = None) -> dict[str, Any]:
    """Median and p90 of a whole `vault login` (login + unlock) with the device
    bypass and with the vault passphrase."""
    return asyncio.run(_figures(n, iterations))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=10, help="logins of each kind (default 10)")
    p.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="the passphrase's PBKDF2 count (default: the server's, 600,000)",
    )
    args = p.parse_args()
    print(json.dumps(cli_login_figures(args.n, args.iterations), indent=1))


if __name__ == "__main__":
    main()

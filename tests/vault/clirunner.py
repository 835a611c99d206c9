"""Running the `vault` command in-process for tests: `main` runs its own event
loop (asyncio.run), so each run goes to a worker thread while the test's loop
keeps serving the authnet network and the vault server."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vault_api.client.cli import main
from vault_api.client.commands import Io


@dataclass
class Result:
    code: int
    out: str
    err: str
    raw: bytes = b""

    def json(self) -> Any:
        return json.loads(self.out)


class BytesOut(io.TextIOWrapper):
    """A text stdout with a byte buffer beneath, like sys.stdout."""

    def __init__(self) -> None:
        self.bytes = io.BytesIO()
        super().__init__(self.bytes, encoding="utf-8", write_through=True)


class VaultCli:
    """`vault` with its own session file and server, as one person at one
    terminal; `login` is the token argument list later commands may repeat."""

    def __init__(self, server: str, state: Path, *login: str) -> None:
        self.server = server
        self.state = state
        self.login_args = list(login)
        self.results: list[Result] = []  # every run, for checks over all of them

    def argv(self, args: tuple[str | Path, ...]) -> list[str]:
        return ["--server", self.server, "--state", str(self.state), *(str(a) for a in args)]

    def run_sync(self, *args: str | Path, stdin: str = "", binary: bool = False) -> Result:
        out: io.TextIOWrapper | io.StringIO = BytesOut() if binary else io.StringIO()
        err = io.StringIO()
        # argparse writes help and usage errors to sys.stdout and sys.stderr.
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(self.argv(args), Io(out=out, err=err, stdin=io.StringIO(stdin)))
            except SystemExit as e:
                code = int(e.code or 0)
        if isinstance(out, BytesOut):
            out.flush()
            raw = out.bytes.getvalue()
            return Result(code, raw.decode("utf-8", "replace"), err.getvalue(), raw)
        assert isinstance(out, io.StringIO)
        return Result(code, out.getvalue(), err.getvalue())

    async def run(self, *args: str | Path, stdin: str = "", binary: bool = False) -> Result:
        r = await asyncio.to_thread(self.run_sync, *args, stdin=stdin, binary=binary)
        self.results.append(r)
        return r

    async def ok(self, *args: str | Path, stdin: str = "") -> Result:
        r = await self.run(*args, stdin=stdin)
        assert r.code == 0, f"vault {' '.join(map(str, args))}: exit {r.code}\n{r.err}"
        return r

    async def json(self, *args: str | Path, stdin: str = "") -> Any:
        return (await self.ok("--json", *args, stdin=stdin)).json()


async def logged_in(server: str, tmp_path: Path, store: Path, handle: str) -> VaultCli:
    """A `vault` that logged in with the phone key store at `store` (a new
    account gets `handle`)."""
    cli = VaultCli(server, tmp_path / f"{handle}-state.json", "--phone", str(store))
    await cli.ok("login", "--phone", store, "--handle", handle)
    return cli

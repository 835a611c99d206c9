"""`hardener`: run and operate a hardener (an oblivious hardening service).

hardener init DIR                       # CA, TLS cert, master key, database, key version 1
hardener caller add NAME --data DIR --out CREDS
hardener serve --data DIR --listen 0.0.0.0:7450
hardener rotate | status | retire V | unlock CALLER USER_ID   (--data DIR)
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from hardener import admin
from hardener.datadir import Policy
from hardener.errors import HardenerError

DATA_ENV = "HARDENER_DATA"
DEFAULT_LISTEN = "127.0.0.1:7450"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _data_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else None,
        required=not os.environ.get(DATA_ENV),
        metavar="DIR",
        help=f"the hardener's data directory (default: ${DATA_ENV})",
    )


def _cmd_init(ns: argparse.Namespace) -> int:
    pkcs11 = None
    if ns.pkcs11_module or ns.pkcs11_token:
        if not (ns.pkcs11_module and ns.pkcs11_token):
            raise HardenerError("--pkcs11-module and --pkcs11-token go together")
        pkcs11 = admin.Pkcs11Options(
            module=ns.pkcs11_module, token_label=ns.pkcs11_token, pin_file=ns.pkcs11_pin_file
        )
    policy = Policy(
        max_failures=ns.max_failures,
        backoff_after=ns.backoff_after,
        backoff_base_ms=ns.backoff_base_ms,
    )
    config = admin.init(
        ns.dir,
        name=ns.name,
        hostnames=tuple(ns.host or ("127.0.0.1", "localhost")),
        pkcs11=pkcs11,
        key_file=ns.key_file,
        policy=policy,
    )
    where = (
        f"PKCS#11 token {config.master_key.token_label!r}"
        if config.master_key.kind == "pkcs11"
        else f"key file {config.master_key.path} (0600: back it up apart from the data)"
    )
    print(f"initialised hardener {config.name!r} in {ns.dir}")
    print(f"  master key: {where}")
    print(f"  TLS names:  {', '.join(config.hostnames)}")
    print("  key version 1 is active")
    print(f"next: hardener caller add NAME --data {ns.dir} --out DIR")
    return 0


def _cmd_serve(ns: argparse.Namespace) -> int:
    from hardener.server import HardenerServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    async def run() -> None:
        server = HardenerServer(ns.data)
        port = await server.start(ns.listen)
        host = ns.listen.rsplit(":", 1)[0]
        print(f"hardener serving on {host}:{port} (data {ns.data})", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await server.stop(grace=2.0)

    if os.environ.get("HARDENER_EVENT_LOOP", "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            uvloop.run(run())
            return 0
    asyncio.run(run())
    return 0


def _cmd_caller_add(ns: argparse.Namespace) -> int:
    creds = admin.add_caller(ns.data, ns.name, ns.out)
    print(f"caller {creds.name!r} registered; credentials written to {ns.out}:")
    for f in ("ca.pem", "caller.pem", "caller.key"):
        print(f"  {ns.out / f}")
    print("give the directory to the caller over a private channel (caller.key is its key)")
    return 0


def _cmd_caller_list(ns: argparse.Namespace) -> int:
    rows = admin.list_callers(ns.data)
    if ns.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    print(f"{'caller':24} {'certificates':>12}  {'created':20}  revoked")
    for r in rows:
        print(f"{r.name:24} {r.certificates:>12}  {_when(r.created_at):20}  {_when(r.revoked_at)}")
    return 0


def _cmd_caller_revoke(ns: argparse.Namespace) -> int:
    admin.revoke_caller(ns.data, ns.name)
    print(f"caller {ns.name!r} revoked (a running server refuses it within a second)")
    return 0


def _cmd_rotate(ns: argparse.Namespace) -> int:
    v = admin.rotate(ns.data)
    print(f"key version {v} is now active; older versions stay usable until retired")
    return 0


def _cmd_status(ns: argparse.Namespace) -> int:
    rows = admin.status(ns.data)
    if ns.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    print(f"{'version':>7}  {'state':8} {'users':>8} {'records':>8}  created")
    for r in rows:
        print(f"{r.version:>7}  {r.state:8} {r.users:>8} {r.records:>8}  {_when(r.created_at)}")
    return 0


def _cmd_retire(ns: argparse.Namespace) -> int:
    admin.retire(ns.data, ns.version, force=ns.force)
    print(f"key version {ns.version} retired (its secrets erased)")
    return 0


def _cmd_unlock(ns: argparse.Namespace) -> int:
    admin.unlock(ns.data, ns.caller, ns.user_id, forget_key=ns.forget_key)
    extra = " and its success key forgotten (it may enrol again)" if ns.forget_key else ""
    print(f"user {ns.user_id!r} of caller {ns.caller!r} unlocked{extra}; audited")
    return 0


def _cmd_backup(ns: argparse.Namespace) -> int:
    written = admin.backup(ns.data, ns.out, include_master_key=ns.include_master_key)
    print(f"backup written to {ns.out}:")
    for path in written:
        print(f"  {path}")
    if not ns.include_master_key:
        print("the master key is not in it: keep a copy of it (or of the token) elsewhere")
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hardener",
        description=(
            "An oblivious hardening service (RFC 9497 POPRF, a keyed hash, and blob"
            " wrapping) with per-user guess limits, for callers authenticated by mTLS."
            " See docs/hardener.md."
        ),
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser(
        "init",
        help="create a data directory (CA, TLS certificate, master key, key version 1)",
        description="Create a new data directory: the hardener's own CA, a TLS server"
        " certificate, the master key (a 0600 key file, or an AES key in a PKCS#11 token),"
        " the SQLite database and key version 1.",
    )
    s.add_argument("dir", type=Path, metavar="DIR", help="the new data directory")
    s.add_argument("--name", default="hardener", help="this hardener's name (in its CA)")
    s.add_argument(
        "--host",
        action="append",
        metavar="NAME",
        help="a DNS name or IP the TLS certificate covers (repeatable;"
        " default 127.0.0.1, localhost)",
    )
    s.add_argument(
        "--key-file", type=Path, help="where to create the master key file (default DIR/master.key)"
    )
    s.add_argument("--pkcs11-module", help="PKCS#11 module (.so) holding the master key instead")
    s.add_argument("--pkcs11-token", metavar="LABEL", help="the token's label")
    s.add_argument(
        "--pkcs11-pin-file",
        type=Path,
        help="file with the token's user PIN (default: $HARDENER_PKCS11_PIN at every start)",
    )
    d = Policy()
    s.add_argument(
        "--max-failures",
        type=int,
        default=d.max_failures,
        metavar="N",
        help="evaluations without a proven success before a user is locked"
        f" (default {d.max_failures})",
    )
    s.add_argument(
        "--backoff-after",
        type=int,
        default=d.backoff_after,
        metavar="N",
        help=f"failures after which each evaluation must wait (default {d.backoff_after})",
    )
    s.add_argument(
        "--backoff-base-ms",
        type=int,
        default=d.backoff_base_ms,
        metavar="MS",
        help="the first wait, doubling per failure; 0 turns backoff off"
        f" (default {d.backoff_base_ms})",
    )
    s.set_defaults(func=_cmd_init)

    s = sub.add_parser(
        "serve",
        help="run the gRPC server",
        description="Serve the Hardener gRPC API with mTLS (client certificates from this"
        " hardener's CA only). Operator commands run while it serves take effect within a second.",
    )
    _data_arg(s)
    s.add_argument(
        "--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT", help=f"default {DEFAULT_LISTEN}"
    )
    s.set_defaults(func=_cmd_serve)

    c = sub.add_parser(
        "caller", help="register, list or revoke callers", description="The registry of callers."
    )
    csub = c.add_subparsers(dest="caller_command", required=True, metavar="ACTION")
    s = csub.add_parser(
        "add",
        help="register a caller and issue its client certificate",
        description="Register caller NAME (or issue it one more certificate) and write its"
        " credentials (ca.pem, caller.pem, caller.key) into --out.",
    )
    s.add_argument("name", metavar="NAME", help="caller name: 1-63 of a-z 0-9 . _ -")
    s.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="where to write the credentials"
    )
    _data_arg(s)
    s.set_defaults(func=_cmd_caller_add)
    s = csub.add_parser(
        "list", help="list callers", description="List callers, their certificates and revocations."
    )
    _data_arg(s)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_caller_list)
    s = csub.add_parser(
        "revoke",
        help="revoke a caller (every certificate of it)",
        description="Revoke caller NAME: every call it makes is refused (caller_revoked).",
    )
    s.add_argument("name", metavar="NAME")
    _data_arg(s)
    s.set_defaults(func=_cmd_caller_revoke)

    s = sub.add_parser(
        "rotate",
        help="make a new key version (the current one becomes old)",
        description="Make a new active key version. Old versions keep opening what they made"
        " until every record re-keys (at its next unlock, or Rewrap); then retire them.",
    )
    _data_arg(s)
    s.set_defaults(func=_cmd_rotate)

    s = sub.add_parser(
        "status",
        help="per key version: state, users and wrapped records still on it",
        description="Per key version: its state and how many user records (as of their last"
        " proven success) and wrapped records still use it.",
    )
    _data_arg(s)
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=_cmd_status)

    s = sub.add_parser(
        "retire",
        help="retire an old key version (erases its secrets)",
        description="Retire key version VERSION: its secrets are erased. Refused while a user"
        " record or wrapped record still uses it (see `status`), unless --force.",
    )
    s.add_argument("version", type=int, metavar="VERSION")
    s.add_argument(
        "--force",
        action="store_true",
        help="retire even if records still need it (they become unopenable)",
    )
    _data_arg(s)
    s.set_defaults(func=_cmd_retire)

    s = sub.add_parser(
        "backup",
        help="a consistent copy of the data directory (safe while serving)",
        description="Copy the data directory into a new directory OUT: configuration, CA,"
        " TLS, audit log and a consistent snapshot of the database (SQLite's backup API, so"
        " the server keeps serving). The master key is left out unless --include-master-key:"
        " store it apart from the backups, since the two together open every key.",
    )
    s.add_argument("--out", type=Path, required=True, metavar="OUT", help="a new directory")
    s.add_argument(
        "--include-master-key", action="store_true", help="also copy the master key file"
    )
    _data_arg(s)
    s.set_defaults(func=_cmd_backup)

    s = sub.add_parser(
        "unlock",
        help="the recovery step: reset a locked user's attempt count (audited)",
        description="Reset the failure count of USER_ID of CALLER, after verifying the user"
        " another way. Audited.",
    )
    s.add_argument("caller", metavar="CALLER")
    s.add_argument("user_id", metavar="USER_ID")
    s.add_argument(
        "--forget-key",
        action="store_true",
        help="also forget the user's success key so it may enrol a new one",
    )
    _data_arg(s)
    s.set_defaults(func=_cmd_unlock)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    try:
        code: int = ns.func(ns)
    except HardenerError as e:
        print(f"hardener: error: {e}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())

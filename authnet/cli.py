"""authnet: run and administer an authnet network node.

    authnet demo [--json]          one complete phone-QR login, in-process
    authnet serve                  run a node (zero configuration needed)
    authnet sp add NAME ...        register a service provider, issue its certificate
    authnet sp list | cert | revoke-cert | disable | enable

Settings come from defaults, <data dir>/authnet.toml (or --config), AUTHNET_*
environment variables and flags, in that order; see authnet/config.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import os
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from authnet import admin, config, logs, migrations
from authnet.datadir import DataDir
from authnet.directory.sql import SqlDirectory
from authnet.errors import AuthnetError
from authnet.node import Node, hostnames

DEMO_SP = "demo"
DEMO_ORIGINS = ["http://localhost:8000", "http://127.0.0.1:8000"]


def _config(ns: argparse.Namespace) -> config.Config:
    overrides: dict[str, Any] = {
        k: getattr(ns, k, None)
        for k in (
            "bind_host",
            "public_host",
            "sp_port",
            "passkey_port",
            "gateway_port",
            "log_level",
        )
    }
    return config.load(data_dir=ns.data_dir, config_file=ns.config, overrides=overrides)


def _sp_address(cfg: config.Config) -> str:
    return f"{cfg.public_host}:{cfg.sp_port}"


def _gateway(cfg: config.Config) -> str:
    return cfg.gateway_url or f"http://{cfg.public_host}:{cfg.gateway_port}"


async def _serve(cfg: config.Config, demo_sp: bool) -> int:
    logs.setup(cfg.log_level, cfg.log_path)
    node = Node(cfg)
    addresses = await node.start()
    assert node.network is not None
    for line in node.created:
        print(f"created {line}")
    if demo_sp and await node.network.directory.find_sp(DEMO_SP) is None:
        creds = await admin.register_sp(
            node.network.directory,
            node.data_dir,
            name=DEMO_SP,
            display_name="Demo SP",
            origins=DEMO_ORIGINS,
            sp_address=addresses.sp,
            gateway_url=addresses.gateway_url,
        )
        print(f"registered the demo SP; its credentials are in {creds.directory}")
    print(f"authnet network {cfg.network_name!r} is up:")
    for line in addresses.lines():
        print(f"  {line}")
    print(f"  Network CA         {node.data_dir.ca_cert}  (tokens and SPs trust this)")
    print("Stop with Ctrl-C.", flush=True)
    # Everything allocated so far (modules, SQLAlchemy, gRPC) lives as long as the
    # process: keep the cyclic collector from rescanning it on every full pass.
    gc.collect()
    gc.freeze()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("stopping...", flush=True)
        await node.stop()
    return 0


async def _sp(ns: argparse.Namespace, cfg: config.Config) -> int:
    data_dir = DataDir(cfg.data_dir)
    data_dir.ensure(network_name=cfg.network_name, hostnames=hostnames(cfg))
    migrations.upgrade(cfg.db_url)
    directory = SqlDirectory.open(cfg.db_url)
    try:
        if ns.sp_command == "add":
            csr = ns.csr.read_bytes() if ns.csr else None
            creds = await admin.register_sp(
                directory,
                data_dir,
                name=ns.name,
                display_name=ns.display_name or ns.name,
                origins=ns.origin or [],
                sp_address=_sp_address(cfg),
                gateway_url=_gateway(cfg),
                out_dir=ns.out,
                csr_pem=csr,
            )
            print(f"registered {ns.name}: SPID {creds.spid.hex()}")
            print(f"credentials in {creds.directory} (give this folder to the SP's backend)")
            return 0
        if ns.sp_command == "list":
            for each in await directory.list_sps():
                state = "disabled" if each.disabled_ms else "active"
                certs = await directory.list_sp_certificates(each.spid)
                live = sum(1 for c in certs if c.revoked_ms is None)
                print(
                    f"{each.name:20} {each.spid.hex()}  {state:8}  {live} live cert(s)  "
                    f"{each.display_name!r}  origins: {', '.join(each.origins) or '-'}"
                )
                if ns.verbose:
                    for c in certs:
                        until = dt.datetime.fromtimestamp(c.not_after_ms / 1000, dt.UTC)
                        mark = "revoked" if c.revoked_ms else f"valid until {until:%Y-%m-%d}"
                        print(f"    cert {c.fingerprint.hex()}  {mark}")
            return 0
        sp = await directory.find_sp(ns.name)
        if sp is None:
            print(f"authnet: no SP named {ns.name!r} (see `authnet sp list`)", file=sys.stderr)
            return 2
        if ns.sp_command == "cert":
            csr = ns.csr.read_bytes() if ns.csr else None
            creds = await admin.issue_certificate(
                directory,
                data_dir,
                sp=sp,
                sp_address=_sp_address(cfg),
                gateway_url=_gateway(cfg),
                out_dir=ns.out,
                csr_pem=csr,
            )
            print(f"new certificate {creds.fingerprint.hex()} in {creds.directory}")
            return 0
        if ns.sp_command == "revoke-cert":
            certs = await directory.list_sp_certificates(sp.spid)
            hits = [c for c in certs if c.fingerprint.hex().startswith(ns.fingerprint.lower())]
            if len(hits) != 1:
                print(
                    f"authnet: {len(hits)} certificates of {sp.name} match {ns.fingerprint!r}; "
                    "give more of the fingerprint (see `authnet sp list -v`)",
                    file=sys.stderr,
                )
                return 2
            await directory.revoke_sp_certificate(hits[0].fingerprint, admin._now_ms())
            print(
                f"revoked {hits[0].fingerprint.hex()} (running nodes refuse it within "
                f"{cfg.sp_cache_seconds:g} s)"
            )
            return 0
        if ns.sp_command in ("disable", "enable"):
            await directory.set_sp_disabled(
                sp.spid, admin._now_ms() if ns.sp_command == "disable" else None
            )
            print(f"{sp.name} {ns.sp_command}d")
            return 0
        raise AssertionError(ns.sp_command)
    finally:
        await directory.close()


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run the server on uvloop where it is installed (set AUTHNET_EVENT_LOOP=asyncio
    for the standard loop); bench/login.py compares the two."""
    if os.environ.get("AUTHNET_EVENT_LOOP", "uvloop") != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(main)
    return asyncio.run(main)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="authnet",
        description="Run and administer an authnet network node.",
        epilog="Start with `authnet demo`, then `authnet serve`. Docs: README.md, docs/.",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        help=f"network data directory (default $AUTHNET_DATA_DIR or {config.DEFAULT_DATA_DIR})",
    )
    p.add_argument("--config", type=Path, help="TOML config file (default <data dir>/authnet.toml)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="run one complete phone-QR login in-process and narrate it")
    d.add_argument("--json", action="store_true", help="print one JSON object instead")
    d.add_argument(
        "--keep", type=Path, metavar="DIR", help="keep the demo's network, keys and QR image in DIR"
    )

    s = sub.add_parser("serve", help="run a network node")
    s.add_argument("--bind-host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--public-host", help="name clients use (certificate, QR codes)")
    s.add_argument("--sp-port", type=int, help="SP API port, mTLS (default 7443)")
    s.add_argument("--passkey-port", type=int, help="PassKey API port, TLS (default 7444)")
    s.add_argument("--gateway-port", type=int, help="browser gateway port (default 7480)")
    s.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    s.add_argument(
        "--no-demo-sp", action="store_true", help="do not register the demo SP on first start"
    )

    sp = sub.add_parser("sp", help="manage service providers")
    spsub = sp.add_subparsers(dest="sp_command", required=True, metavar="ACTION")
    a = spsub.add_parser("add", help="register an SP: new SPID and client certificate")
    a.add_argument("name", help="short name: lowercase letters, digits, '-'")
    a.add_argument("--display-name", help="what tokens show the person (default: the name)")
    a.add_argument(
        "--origin",
        action="append",
        metavar="URL",
        help="web origin allowed to run the login (repeatable), e.g. https://shop.example",
    )
    a.add_argument("--csr", type=Path, help="sign this CSR instead of generating a key here")
    a.add_argument("--out", type=Path, help="credentials folder (default <data dir>/sps/NAME)")
    ls = spsub.add_parser("list", help="list SPs")
    ls.add_argument("-v", "--verbose", action="store_true", help="show certificates")
    c = spsub.add_parser("cert", help="issue another certificate (rotation)")
    c.add_argument("name")
    c.add_argument("--csr", type=Path)
    c.add_argument("--out", type=Path)
    r = spsub.add_parser("revoke-cert", help="revoke one certificate by fingerprint (prefix)")
    r.add_argument("name")
    r.add_argument("fingerprint")
    for action in ("disable", "enable"):
        x = spsub.add_parser(action, help=f"{action} an SP (all its certificates)")
        x.add_argument("name")
    return p


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    try:
        if ns.command == "demo":
            from authnet import demo  # imports the example SP and the phone simulator

            return demo.main(as_json=ns.json, keep=ns.keep)
        cfg = _config(ns)
        if ns.command == "serve":
            return run_loop(_serve(cfg, demo_sp=not ns.no_demo_sp))
        return asyncio.run(_sp(ns, cfg))
    except (AuthnetError, config.ConfigError, OSError) as e:
        print(f"authnet: {getattr(e, 'message', None) or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""authnet: run and administer an authnet network node.

    authnet demo [--json]          one complete phone-QR login, in-process
    authnet serve                  run a node (zero configuration needed)
    authnet serve --workers N      N node processes behind the same ports
    authnet sp add NAME ...        register a service provider, issue its certificate
    authnet sp list | cert | revoke-cert | disable | enable
    authnet cluster init | bundle  make a cluster's shared keys, and a new node's bundle
    authnet node join BUNDLE       set up a new node of a cluster from its bundle

Settings come from defaults, <data dir>/authnet.toml (or --config), AUTHNET_*
environment variables and flags, in that order; see authnet/config.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import gc
import getpass
import importlib.metadata
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

from authnet import admin, cluster, config, logs, migrations, pki, workers
from authnet.datadir import DataDir
from authnet.directory.sql import SqlDirectory
from authnet.errors import AuthnetError
from authnet.node import Node, NodeAddresses, hostnames

DEMO_SP = "demo"
GC_YOUNG_THRESHOLD = 20_000
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
            "log_format",
            "metrics_port",
            "state_url",
            "database_url",
            "network_name",
            "hardener_address",
            "hardener_credentials",
        )
    }
    if getattr(ns, "hostname", None):
        overrides["extra_hostnames"] = tuple(ns.hostname)
    return config.load(data_dir=ns.data_dir, config_file=ns.config, overrides=overrides)


def _sp_address(cfg: config.Config) -> str:
    return f"{cfg.public_host}:{cfg.sp_port}"


def _gateway(cfg: config.Config) -> str:
    return cfg.gateway_url or f"http://{cfg.public_host}:{cfg.gateway_port}"


async def _register_demo_sp(cfg: config.Config, directory: Any, sp: str, gateway: str) -> None:
    if await directory.find_sp(DEMO_SP) is not None:
        return
    creds = await admin.register_sp(
        directory,
        DataDir(cfg.data_dir),
        name=DEMO_SP,
        display_name="Demo SP",
        origins=DEMO_ORIGINS,
        sp_address=sp,
        gateway_url=gateway,
    )
    print(f"registered the demo SP; its credentials are in {creds.directory}")


def _announce(cfg: config.Config, lines: list[str], workers: int = 1) -> None:
    who = f" ({workers} worker processes)" if workers > 1 else ""
    print(f"authnet network {cfg.network_name!r} is up{who}:")
    for line in lines:
        print(f"  {line}")
    print(f"  Network CA         {DataDir(cfg.data_dir).ca_cert}  (tokens and SPs trust this)")


async def _serve(
    cfg: config.Config, demo_sp: bool, *, ready_fd: int | None = None, reuse_port: bool = False
) -> int:
    """Run one node until SIGINT/SIGTERM. As a worker (`ready_fd` set) it
    reports readiness on the fd instead of announcing its addresses."""
    node = Node(cfg, reuse_port=reuse_port)
    logs.setup(cfg.log_level, cfg.log_path, log_format=cfg.log_format, node_id=node.node_id)
    try:
        addresses = await node.start()
    except BaseException as e:
        if ready_fd is not None:
            os.write(ready_fd, f"{type(e).__name__}: {e}\n".encode())
        raise
    assert node.network is not None
    for line in node.created:
        print(f"created {line}")
    if ready_fd is None:
        if demo_sp:
            await _register_demo_sp(
                cfg, node.network.directory, addresses.sp, addresses.gateway_url
            )
        _announce(cfg, addresses.lines())
    # Everything allocated so far (modules, SQLAlchemy, gRPC) lives as long as the
    # process: keep the cyclic collector from rescanning it on every full pass.
    gc.collect()
    gc.freeze()
    # A login's objects live for its few round trips; with the default first
    # threshold (700) a collection finds those of the logins in flight still
    # alive and promotes them, so the older generations fill and a full pass
    # (about 45 ms) came every ~5 s under load. Collecting the young
    # generation every 20,000 allocations lets nearly all of them die first:
    # the collector's CPU per login fell from 94-121 us to 43-53 us
    # (bench/login.py, 32 workers), for up to 20,000 cyclic-garbage objects
    # (a few MB) waiting for a pass.
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    if ready_fd is not None:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    else:
        # Only now: a supervisor may send SIGTERM as soon as it reads this line.
        print("Stop with Ctrl-C.", flush=True)
    try:
        await stop.wait()
    finally:
        if ready_fd is None:
            print("stopping...", flush=True)
        await node.stop()
    return 0


def _serve_workers(cfg: config.Config, demo_sp: bool, n: int) -> int:
    """`authnet serve --workers N`: see authnet/workers.py."""
    workers.check(cfg, n)
    data_dir = DataDir(cfg.data_dir)
    for line in data_dir.ensure(network_name=cfg.network_name, hostnames=hostnames(cfg)):
        print(f"created {line}")
    migrations.upgrade(cfg.db_url)

    def announce(shared: config.Config) -> None:
        sp = f"{shared.public_host}:{shared.sp_port}"
        gateway = shared.gateway_url or f"http://{shared.public_host}:{shared.gateway_port}"
        if demo_sp:
            asyncio.run(
                _with_directory(shared, lambda d: _register_demo_sp(shared, d, sp, gateway))
            )
        passkey = shared.passkey_address or f"{shared.public_host}:{shared.passkey_port}"
        where = NodeAddresses(
            sp=sp, passkey=passkey, gateway_url=gateway, data_dir=str(shared.data_dir)
        )
        _announce(shared, where.lines(), n)
        print("Stop with Ctrl-C.", flush=True)

    def run(worker_cfg: config.Config, _i: int, ready_fd: int) -> int:
        return run_loop(_serve(worker_cfg, False, ready_fd=ready_fd, reuse_port=True))

    return workers.Supervisor(cfg, n, run).run(announce)


async def _with_directory(cfg: config.Config, use: Callable[[Any], Awaitable[None]]) -> None:
    directory = SqlDirectory.open(cfg.db_url)
    try:
        await use(directory)
    finally:
        await directory.close()


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
    d.add_argument(
        "--nodes",
        type=int,
        default=1,
        metavar="N",
        help="run the login on a cluster of N nodes (needs --state); the result says which "
        "node served each step",
    )
    _cluster_flags(d)

    s = sub.add_parser("serve", help="run a network node")
    s.add_argument("--bind-host", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--public-host", help="name clients use (certificate, QR codes)")
    s.add_argument("--sp-port", type=int, help="SP API port, mTLS (default 7443)")
    s.add_argument("--passkey-port", type=int, help="PassKey API port, TLS (default 7444)")
    s.add_argument("--gateway-port", type=int, help="browser gateway port (default 7480)")
    s.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    s.add_argument("--log-format", choices=list(logs.FORMATS), help="log lines (default text)")
    s.add_argument(
        "--metrics-port", type=int, help="Prometheus /metrics port (default 7490; -1: off)"
    )
    s.add_argument(
        "--no-demo-sp", action="store_true", help="do not register the demo SP on first start"
    )
    s.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="run N node processes sharing the ports (SO_REUSEPORT); needs --state redis://...",
    )
    s.add_argument(
        "--hardener",
        dest="hardener_address",
        metavar="HOST:PORT",
        help="the PIN hardener this network is a caller of (docs/protocol.md §17)",
    )
    s.add_argument(
        "--hardener-credentials",
        metavar="DIR",
        help="its caller credentials from `hardener caller add` (default <data dir>/hardener)",
    )
    _cluster_flags(s)

    cl = sub.add_parser("cluster", help="set up a cluster of nodes (docs/operations.md)")
    clsub = cl.add_subparsers(dest="cluster_command", required=True, metavar="ACTION")
    ci = clsub.add_parser(
        "init",
        help="on the first machine: make the shared keys and settings, migrate the database",
    )
    _cluster_flags(ci)
    ci.add_argument("--public-host", help="the cluster's name (certificate, QR codes)")
    ci.add_argument(
        "--hostname",
        action="append",
        metavar="NAME",
        help="another name or address of a node the certificate must cover (repeatable)",
    )
    ci.add_argument("--network-name", help="the network's name (default authnet)")
    cb = clsub.add_parser(
        "bundle",
        help="write a new node's bundle (keys + shared settings; never the CA key)",
        description="Set AUTHNET_BUNDLE_PASSPHRASE to encrypt the bundle (scrypt + AES-GCM).",
    )
    cb.add_argument("--out", type=Path, required=True, help="bundle file to write (0600)")
    nd = sub.add_parser("node", help="this machine as a node of a cluster")
    ndsub = nd.add_subparsers(dest="node_command", required=True, metavar="ACTION")
    nj = ndsub.add_parser(
        "join",
        help="write this node's data directory from a bundle",
        description="An encrypted bundle needs AUTHNET_BUNDLE_PASSPHRASE.",
    )
    nj.add_argument("bundle", type=Path, help="the file `authnet cluster bundle` wrote")
    nj.add_argument("--bind-host", help="address this node listens on (default 127.0.0.1)")

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


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    """A command that lives above the network (the demo composes the network
    with an example SP and a phone simulator, which the network does not
    import): found through the `authnet.commands` entry point group."""
    for ep in importlib.metadata.entry_points(group="authnet.commands"):
        if ep.name == name:
            loaded: Callable[[argparse.Namespace], int] = ep.load()
            return loaded
    raise config.ConfigError(
        f"`authnet {name}` is not installed here (it ships with the authnet examples: "
        "install the project with `make`)"
    )


def _cluster_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state",
        dest="state_url",
        metavar="URL",
        help="shared ticket state, redis://host:port/db (default: in this process)",
    )
    p.add_argument(
        "--database",
        dest="database_url",
        metavar="URL",
        help="directory database, postgresql://user@host:port/db (default: SQLite)",
    )


def _cluster(ns: argparse.Namespace, cfg: config.Config) -> int:
    data_dir = DataDir(cfg.data_dir)
    settings = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    if ns.cluster_command == "init":
        if cfg.state_url in ("", "memory", "memory://"):
            raise config.ConfigError("a cluster needs shared state: pass --state redis://...")
        if cfg.db_url.startswith("sqlite"):
            raise config.ConfigError(
                "a cluster needs a shared database: pass --database postgresql://..."
            )
        for line in data_dir.ensure(network_name=cfg.network_name, hostnames=hostnames(cfg)):
            print(f"created {line}")
        cluster.write_settings(
            data_dir.path / "authnet.toml",
            {k: settings[k] for k in cluster.SHARED_SETTINGS},
            extra={},
        )
        migrations.upgrade(cfg.db_url)
        print(f"cluster settings in {data_dir.path / 'authnet.toml'}; database migrated")
        print("next: `authnet cluster bundle --out node.bundle`, then on each new machine")
        print("      `authnet --data-dir DIR node join node.bundle` and `authnet serve`")
        return 0
    passphrase = os.environ.get("AUTHNET_BUNDLE_PASSPHRASE") or None
    raw = cluster.encode(cluster.make_bundle(data_dir, settings), passphrase)
    pki.write_private(ns.out, raw)
    state = "encrypted" if passphrase else "NOT encrypted: move it over a secure channel"
    print(f"wrote {ns.out} ({state}); it holds the master secret and the server key")
    return 0


def _node(ns: argparse.Namespace) -> int:
    try:
        raw = ns.bundle.read_bytes()
    except OSError as e:
        raise config.ConfigError(f"cannot read {ns.bundle}: {e.strerror}") from None
    passphrase = os.environ.get("AUTHNET_BUNDLE_PASSPHRASE") or None
    if passphrase is None and cluster.is_encrypted(raw) and sys.stdin.isatty():
        passphrase = getpass.getpass("bundle passphrase: ")
    bundle = cluster.decode(raw, passphrase)
    data_dir = DataDir(ns.data_dir or config.load(environ=dict(os.environ)).data_dir)
    extra = {"bind_host": ns.bind_host} if ns.bind_host else {}
    for path in cluster.join(bundle, data_dir, node_settings=extra):
        print(f"wrote {path}")
    print(f"this node is ready: `authnet --data-dir {data_dir.path} serve`")
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    try:
        if ns.command == "demo":
            return int(_command("demo")(ns))
        if ns.command == "node":
            return _node(ns)
        cfg = _config(ns)
        if ns.command == "serve":
            if ns.workers != 1:
                return _serve_workers(cfg, not ns.no_demo_sp, ns.workers)
            return run_loop(_serve(cfg, demo_sp=not ns.no_demo_sp))
        if ns.command == "cluster":
            return _cluster(ns, cfg)
        return asyncio.run(_sp(ns, cfg))
    except (AuthnetError, config.ConfigError, OSError) as e:
        print(f"authnet: {getattr(e, 'message', None) or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

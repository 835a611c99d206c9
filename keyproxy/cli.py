"""`keyproxy`: run and operate the one-time key proxy (docs/keyproxy.md).

keyproxy init                        make the data directory
keyproxy serve                       run the proxy (HTTP front, optionally gRPC)
keyproxy status                      how many deposits wait, were claimed, burned, expired
keyproxy sweep                       delete expired blobs and old tombstones now
keyproxy issuer add NAME --public-key KEY | list | remove NAME
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from keyproxy import issuers
from keyproxy.server import Config, open_store, serve
from keyproxy.service import Limits, now_ms

DEFAULT_DATA_DIR = Path(
    os.environ.get("KEYPROXY_DATA_DIR", "~/.local/share/authnet-keyproxy")
).expanduser()


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="keyproxy",
        description="The one-time key proxy: holds a sealed blob under an unguessable token "
        "until it is claimed once. It never sees what the blobs decrypt to.",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help=f"the proxy's data directory (default {DEFAULT_DATA_DIR}; env KEYPROXY_DATA_DIR)",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("init", help="make the data directory (SQLite store, issuers file)")
    s = sub.add_parser("serve", help="run the proxy until interrupted")
    s.add_argument(
        "--http-listen",
        type=_address,
        default=("127.0.0.1", 7461),
        help="HOST:PORT of the JSON front browsers use (default 127.0.0.1:7461)",
    )
    s.add_argument(
        "--listen",
        default=None,
        metavar="HOST:PORT",
        help="HOST:PORT of the gRPC front (default: none; 127.0.0.1:7460 is customary)",
    )
    s.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="where deposits live: sqlite:///PATH (default: deposits.db in the data dir) "
        "or redis://HOST:PORT/DB",
    )
    s.add_argument("--redis-prefix", default="keyproxy:", help="key prefix in Redis")
    s.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="a web origin whose pages may call the proxy (CORS), e.g. https://vault.example; "
        "repeatable; '*' for any",
    )
    d = Limits()
    s.add_argument("--max-blob-bytes", type=int, default=d.max_blob_bytes)
    s.add_argument("--max-ttl-seconds", type=int, default=d.max_ttl_seconds)
    s.add_argument("--max-stored-bytes", type=int, default=d.max_stored_bytes)
    s.add_argument(
        "--rate",
        type=float,
        default=d.deposit_rate,
        help="deposits and claims per second per client address (0: unlimited)",
    )
    s.add_argument("--json-logs", action="store_true", help="log one JSON object per line")
    st = sub.add_parser("status", help="counts of deposits by state (JSON)")
    st.add_argument("--store", default=None, metavar="URL")
    sw = sub.add_parser("sweep", help="delete expired blobs and purge old tombstones now")
    sw.add_argument("--store", default=None, metavar="URL")
    i = sub.add_parser("issuer", help="the claim-grant issuers this proxy trusts")
    isub = i.add_subparsers(dest="issuer_command", required=True, metavar="ACTION")
    a = isub.add_parser(
        "add", help="trust an issuer's Ed25519 key (e.g. `vault-api keyproxy-issuer`)"
    )
    a.add_argument("name")
    a.add_argument("--public-key", required=True, help="the issuer's public key, base64url")
    isub.add_parser("list", help="the issuers and their keys")
    r = isub.add_parser("remove", help="stop trusting an issuer")
    r.add_argument("name")
    return p


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "at": record.created,
                "level": record.levelname,
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


def _joined_values(argv: list[str]) -> list[str]:
    """`--public-key KEY` as `--public-key=KEY`: a base64url key starts with "-"
    one time in 64, which argparse would read as an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--public-key" and i + 1 < len(argv):
            out.append(f"--public-key={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(_joined_values(sys.argv[1:] if argv is None else argv))
    data_dir: Path = ns.data_dir
    if ns.command == "init":
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = open_store(Config(data_dir=data_dir))
        asyncio.run(store.close())
        print(f"keyproxy data directory ready: {data_dir}")
        return 0
    if ns.command == "issuer":
        try:
            if ns.issuer_command == "add":
                issuers.add(data_dir, ns.name, ns.public_key)
                print(f"issuer {ns.name} added")
            elif ns.issuer_command == "list":
                for name, key in sorted(issuers.load(data_dir).items()):
                    from keyproxy.grants import b64u

                    print(f"{name}\t{b64u(key)}")
            elif not issuers.remove(data_dir, ns.name):
                print(f"error: no issuer named {ns.name}", file=sys.stderr)
                return 1
            else:
                print(f"issuer {ns.name} removed")
        except issuers.IssuerError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    if ns.command in ("status", "sweep"):
        store = open_store(Config(data_dir=data_dir, store_url=ns.store))

        async def run() -> dict[str, int]:
            try:
                if ns.command == "sweep":
                    return {"swept": await store.sweep(now_ms())}
                return dataclasses.asdict(await store.stats(now_ms()))
            finally:
                await store.close()

        print(json.dumps(asyncio.run(run())))
        return 0
    handler = logging.StreamHandler()
    if ns.json_logs:
        handler.setFormatter(_JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    limits = Limits(
        max_blob_bytes=ns.max_blob_bytes,
        max_ttl_seconds=ns.max_ttl_seconds,
        max_stored_bytes=ns.max_stored_bytes,
        deposit_rate=ns.rate,
        claim_rate=ns.rate,
    )
    config = Config(
        data_dir=data_dir,
        http_host=ns.http_listen[0],
        http_port=ns.http_listen[1],
        grpc_address=ns.listen,
        store_url=ns.store,
        redis_prefix=ns.redis_prefix,
        allow_origins=tuple(ns.allow_origin),
        limits=limits,
    )
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        return 0
    except OSError as e:
        print(f"error: cannot serve: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

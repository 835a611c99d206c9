"""vault-api: run the vault's API and UI.

    vault-api serve              zero configuration: a local `authnet serve`'s SP
                                 credentials, data in ~/.local/share/authnet-vault,
                                 http://localhost:8000
    vault-api migrate            bring the database schema up to date and exit
    vault-api openapi            print the OpenAPI document (JSON)
    vault-api keyproxy-issuer    print the public key of the vault's claim-grant issuer
                                 (for `keyproxy issuer add vault --public-key ...`)

Settings come from defaults, <data dir>/vault.toml (or --config), VAULT_*
environment variables and flags, in that order; see vault_api/config.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from vault_api import config, migrations


def _settings(ns: argparse.Namespace) -> config.Settings:
    overrides: dict[str, Any] = {
        k: getattr(ns, k, None)
        for k in ("credentials", "host", "port", "public_url", "database_url", "log_level")
    }
    return config.load(data_dir=ns.data_dir, config_file=ns.config, overrides=overrides)


def _serve(settings: config.Settings) -> int:
    import uvicorn

    from vault_api.app import create_app

    problem = config.credentials_problem(settings.credentials_path)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.data_dir.chmod(0o700)
    migrations.upgrade(settings.db_url)
    print(f"vault-api: data in {settings.data_dir}")
    print(f"vault-api: SP credentials {settings.credentials_path}")
    print(f"vault-api: open {settings.origin}/  (API description: {settings.origin}/api/docs)")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        proxy_headers=False,
    )
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vault-api",
        description="The authnet vault: a password manager whose secrets are encrypted "
        "only in the browser (or CLI), under keys that hang off authnet's client key.",
        epilog="First run `authnet serve` (it registers a demo SP for http://localhost:8000), "
        "then `vault-api serve` and open http://localhost:8000. Docs: docs/vault.md.",
    )
    p.add_argument("--data-dir", type=Path, help=f"default {config.DEFAULT_DATA_DIR}")
    p.add_argument("--config", type=Path, help="TOML settings file (default <data dir>/vault.toml)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("serve", help="run the API and the UI")
    s.add_argument(
        "--credentials",
        type=Path,
        help="the SP credentials folder `authnet sp add` wrote (default: sps/vault of the "
        "local network if registered, else sps/demo)",
    )
    s.add_argument("--host", help="address to listen on (default localhost)")
    s.add_argument("--port", type=int, help="port (default 8000)")
    s.add_argument(
        "--public-url",
        help="the origin users open, e.g. https://vault.example (cookies are Secure on https)",
    )
    s.add_argument(
        "--database-url",
        help="SQLAlchemy URL; default SQLite in the data dir; postgresql://user@host/db works",
    )
    s.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    m = sub.add_parser("migrate", help="upgrade the database schema and exit")
    m.add_argument("--database-url", help="default SQLite in the data dir")
    sub.add_parser("openapi", help="print the OpenAPI document")
    sub.add_parser(
        "keyproxy-issuer",
        help="print the vault's claim-grant issuer public key (made on first use) for "
        "`keyproxy issuer add vault --public-key KEY`",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    ns = _parser().parse_args(argv)
    try:
        settings = _settings(ns)
    except config.ConfigError as e:
        print(f"vault-api: {e}", file=sys.stderr)
        return 2
    if ns.command == "serve":
        return _serve(settings)
    if ns.command == "migrate":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        migrations.upgrade(settings.db_url)
        print(f"database at the newest schema: {settings.db_url.split('@')[-1]}")
        return 0
    if ns.command == "keyproxy-issuer":
        from vault_api import grants

        try:
            print(grants.issuer_public_key(settings.data_dir))
        except grants.IssuerKeyError as e:
            print(f"vault-api: {e}", file=sys.stderr)
            return 2
        return 0
    from vault_api.app import create_app

    print(json.dumps(create_app(settings).openapi(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

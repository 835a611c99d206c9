"""`vault-api`: help that helps, a clear refusal without SP credentials, the
OpenAPI document, migrations, and settings from a file and the environment."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from authnet.testing import TestNetwork
from vault_api import cli, config


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vault_api.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_help_names_the_commands_and_the_first_steps() -> None:
    r = run("--help")
    assert r.returncode == 0
    for word in ("serve", "migrate", "openapi", "authnet serve", "docs/vault.md"):
        assert word in r.stdout
    r = run("serve", "--help")
    assert r.returncode == 0
    assert "--credentials" in r.stdout
    assert "--database-url" in r.stdout


def test_serve_without_credentials_says_what_to_do(tmp_path: Path) -> None:
    env = {
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
        "AUTHNET_DATA_DIR": str(tmp_path / "net"),
    }
    r = run("--data-dir", str(tmp_path / "vault"), "serve", env=env)
    assert r.returncode == 2
    assert "no SP credentials" in r.stderr
    assert "authnet serve" in r.stderr
    assert "--credentials" in r.stderr


def test_openapi_prints_the_document(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["--data-dir", str(tmp_path), "openapi"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["openapi"].startswith("3.")
    assert "/api/safes/{safe_id}/rotations/{rotation_id}/commit" in doc["paths"]


def test_migrate_creates_the_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert cli.main(["--data-dir", str(tmp_path), "migrate"]) == 0
    assert (tmp_path / "vault.db").exists()
    assert "newest schema" in capsys.readouterr().out


def test_settings_come_from_file_then_environment_then_flags(tmp_path: Path) -> None:
    (tmp_path / "vault.toml").write_text(
        'port = 9000\nhost = "0.0.0.0"\nidle_timeout_seconds = 600\n'
    )
    s = config.load(data_dir=tmp_path, environ={"VAULT_PORT": "9100"})
    assert (s.host, s.port, s.idle_timeout_seconds) == ("0.0.0.0", 9100, 600)
    s = config.load(data_dir=tmp_path, environ={"VAULT_PORT": "9100"}, overrides={"port": 9200})
    assert s.port == 9200
    assert s.db_url == f"sqlite:///{tmp_path / 'vault.db'}"
    assert s.origin == "http://0.0.0.0:9200"
    assert not s.secure_cookies
    assert config.Settings(public_url="https://vault.example").secure_cookies


def test_bad_settings_are_refused_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "vault.toml").write_text("colour = 'blue'\n")
    with pytest.raises(config.ConfigError, match="unknown setting 'colour'"):
        config.load(data_dir=tmp_path, environ={})
    with pytest.raises(config.ConfigError, match="outlive their ticket"):
        config.Settings(idle_timeout_seconds=3000, session_ticket_ttl_seconds=1200)
    with pytest.raises(config.ConfigError, match="port"):
        config.load(data_dir=tmp_path / "x", environ={"VAULT_PORT": "eighty"})


def test_default_credentials_prefer_a_registered_vault_sp(tmp_path: Path) -> None:
    env = {"AUTHNET_DATA_DIR": str(tmp_path)}
    assert config.default_credentials(env) == tmp_path / "sps" / "demo"
    (tmp_path / "sps" / "vault").mkdir(parents=True)
    (tmp_path / "sps" / "vault" / "sp.json").write_text("{}")
    assert config.default_credentials(env) == tmp_path / "sps" / "vault"


async def test_serve_with_zero_configuration_uses_the_local_networks_credentials(
    net: TestNetwork, tmp_path: Path
) -> None:
    creds = await net.add_sp("vault", "Vault")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "HOME": str(tmp_path),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        # Where `authnet serve` keeps its data; the SP folders are under it.
        "AUTHNET_DATA_DIR": str(net.root),
        "VAULT_DATA_DIR": str(tmp_path / "vault"),
        "VAULT_PORT": str(port),
        "VAULT_HOST": "127.0.0.1",
    }
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "vault-api"),
        "serve",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        config_json = None
        async with httpx.AsyncClient() as http:
            for _ in range(200):
                try:
                    r = await http.get(f"http://127.0.0.1:{port}/api/config")
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
                    continue
                config_json = r.json()
                break
            assert config_json is not None, "vault-api serve did not come up"
            assert config_json["spid"] == creds.spid.hex()
            page = await http.get(f"http://127.0.0.1:{port}/")
            assert "The vault" in page.text
    finally:
        proc.terminate()
        raw, _ = await asyncio.wait_for(proc.communicate(), 20)
    out = raw.decode()
    assert f"SP credentials {net.root / 'sps' / 'vault'}" in out
    assert (tmp_path / "vault" / "vault.db").exists()

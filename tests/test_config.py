"""Settings: defaults < TOML file < AUTHNET_* environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from authnet.config import Config, ConfigError, load


def test_defaults_without_anything(tmp_path: Path) -> None:
    cfg = load(data_dir=tmp_path, environ={})
    assert cfg == Config(data_dir=tmp_path)
    assert cfg.db_url == f"sqlite:///{tmp_path / 'authnet.db'}"
    assert cfg.log_path == tmp_path / "authnet.log"


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    (tmp_path / "authnet.toml").write_text(
        'network_name = "acme"\nsp_port = 9443\ngateway_port = 9480\n'
        'trusted_proxies = ["10.0.0.1", "10.0.0.2"]\nsp_cache_seconds = 1.5\n'
    )
    env = {"AUTHNET_GATEWAY_PORT": "9999", "AUTHNET_PUBLIC_HOST": "auth.acme.example"}
    cfg = load(data_dir=tmp_path, environ=env, overrides={"public_host": "flag.example"})
    assert cfg.network_name == "acme"  # file
    assert cfg.sp_port == 9443  # file
    assert cfg.gateway_port == 9999  # environment beats file
    assert cfg.public_host == "flag.example"  # flag beats environment
    assert cfg.trusted_proxies == ("10.0.0.1", "10.0.0.2")
    assert cfg.sp_cache_seconds == 1.5


def test_environment_names_the_data_dir_and_config_file(tmp_path: Path) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text('log_level = "debug"\n')
    env = {
        "AUTHNET_DATA_DIR": str(tmp_path / "d"),
        "AUTHNET_CONFIG": str(other),
        "AUTHNET_TRUSTED_PROXIES": "10.0.0.1, 10.0.0.9",
    }
    cfg = load(environ=env)
    assert cfg.data_dir == tmp_path / "d"
    assert cfg.log_level == "debug"
    assert cfg.trusted_proxies == ("10.0.0.1", "10.0.0.9")
    assert load(environ={**env, "AUTHNET_LOG_FILE": "-"}).log_path is None


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("sp_prot = 1\n", "unknown setting 'sp_prot'"),
        ('sp_port = "many"\n', "sp_port: cannot use 'many' as int"),
        ("sp_port = \n", "cannot read config file"),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, content: str, words: str) -> None:
    (tmp_path / "authnet.toml").write_text(content)
    with pytest.raises(ConfigError, match=words):
        load(data_dir=tmp_path, environ={})


def test_bad_environment_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="passkey_port"):
        load(data_dir=tmp_path, environ={"AUTHNET_PASSKEY_PORT": "seven"})

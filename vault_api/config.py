"""vault-api settings: defaults, then a TOML file, then VAULT_* environment
variables, then command-line flags (each overriding the one before).

    # <data dir>/vault.toml
    port = 8000
    idle_timeout_seconds = 900
    max_file_bytes = 104857600

Every field can be set as VAULT_<FIELD> (upper case), e.g. VAULT_PORT=8080.
With no settings at all, `vault-api serve` keeps its data in
~/.local/share/authnet-vault and uses the SP credentials of a local
`authnet serve` (`sps/vault` if registered, else the demo SP, whose
registered origins are http://localhost:8000 and http://127.0.0.1:8000).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_XDG = Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
DEFAULT_DATA_DIR = _XDG / "authnet-vault"


class ConfigError(ValueError):
    pass


def default_credentials(environ: dict[str, str] | None = None) -> Path:
    """The SP folder `authnet serve` wrote: sps/vault if an operator registered
    one (`authnet sp add vault --origin ...`), else the demo SP."""
    env = os.environ if environ is None else environ
    network_dir = Path(env.get("AUTHNET_DATA_DIR", str(_XDG / "authnet"))).expanduser()
    vault = network_dir / "sps" / "vault"
    return vault if (vault / "sp.json").exists() else network_dir / "sps" / "demo"


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path = DEFAULT_DATA_DIR
    # The SP credentials folder (`authnet sp add`); None: default_credentials().
    credentials: Path | None = None
    host: str = "localhost"
    port: int = 8000
    # The origin pages are served from, e.g. https://vault.example; "" derives
    # http://<host>:<port>. Cookies are marked Secure when it is https.
    public_url: str = ""
    # "" is the embedded SQLite database <data_dir>/vault.db; or postgresql+psycopg://...
    database_url: str = ""
    # "" is <data_dir>/blobs.
    blob_dir: str = ""
    # A session ends after this long without a request, and after session_max_seconds.
    idle_timeout_seconds: int = 900
    session_max_seconds: int = 12 * 3600
    # The authnet ticket a session holds is renewed (PutTicket) at most this
    # often while requests come in; its TTL must outlast the idle timeout.
    renew_interval_seconds: int = 60
    session_ticket_ttl_seconds: int = 1200
    # The TTL of login tickets shown as QR codes (0: the network's default, 120 s).
    login_ticket_ttl_seconds: int = 0
    max_file_bytes: int = 100 * 1024 * 1024
    max_request_bytes: int = 16 * 1024 * 1024
    # Previous versions kept per item.
    history_versions: int = 50
    # The hardener (issue 9; docs/vault.md 5.4-5.6): its gRPC address
    # (host:port) and this vault's caller credentials (a folder from
    # `hardener caller add vault --out DIR`). Without them no one can set a
    # vault passphrase or a recovery slot.
    hardener_address: str = ""
    hardener_credentials: Path | None = None
    # The TLS name to expect in the hardener's certificate ("" = the address's host).
    hardener_server_name: str = ""
    # PBKDF2-HMAC-SHA256 iterations a new passphrase or recovery record must use.
    passphrase_kdf_iterations: int = 600_000
    # How long a replaced passphrase wrap is kept for a rollback.
    passphrase_history_seconds: int = 30 * 24 * 3600
    # Every account must set a vault passphrase: until it has one, the API
    # refuses its vault data (403 passphrase_required, docs/vault.md 5.4). An
    # organisation's policy can require one of its members too, never lift
    # this. Needs the hardener.
    require_passphrase: bool = False
    # Trusted devices (docs/devices.md): the one-time key proxy's HTTP URL as
    # browsers reach it ("" = none: device approval and one-time links are
    # off), how long an unused device stays registered without an
    # organisation's policy (0 = never expires), and how long an approval
    # request's code is valid.
    keyproxy_url: str = ""
    device_expiry_seconds: int = 90 * 24 * 3600
    device_request_seconds: int = 600
    log_level: str = "info"

    def __post_init__(self) -> None:
        if self.idle_timeout_seconds < 1 or self.renew_interval_seconds < 1:
            raise ConfigError("idle_timeout_seconds and renew_interval_seconds must be positive")
        if not 10 <= self.session_ticket_ttl_seconds <= 3600:
            raise ConfigError("session_ticket_ttl_seconds must be 10..3600 (authnet's limits)")
        if self.idle_timeout_seconds + self.renew_interval_seconds >= (
            self.session_ticket_ttl_seconds
        ):
            raise ConfigError(
                "session_ticket_ttl_seconds must exceed idle_timeout_seconds + "
                "renew_interval_seconds, or active sessions would outlive their ticket"
            )
        if self.max_file_bytes < 0 or self.history_versions < 0:
            raise ConfigError("max_file_bytes and history_versions cannot be negative")
        if not 1_000 <= self.passphrase_kdf_iterations <= 10_000_000:
            raise ConfigError("passphrase_kdf_iterations must be 1000..10000000")
        if self.passphrase_history_seconds < 0:
            raise ConfigError("passphrase_history_seconds cannot be negative")
        if self.device_expiry_seconds < 0:
            raise ConfigError("device_expiry_seconds cannot be negative (0: devices never expire)")
        if not 60 <= self.device_request_seconds <= 3600:
            raise ConfigError("device_request_seconds must be 60..3600")
        if self.keyproxy_url and not self.keyproxy_url.startswith(("http://", "https://")):
            raise ConfigError("keyproxy_url must be an http:// or https:// URL")
        if bool(self.hardener_address) != (self.hardener_credentials is not None):
            raise ConfigError(
                "hardener_address and hardener_credentials go together: set both (the "
                "hardener's host:port and the folder `hardener caller add vault --out DIR` "
                "wrote), or neither"
            )
        if self.require_passphrase and not self.hardener_configured:
            raise ConfigError(
                "require_passphrase needs a hardener (hardener_address and "
                "hardener_credentials): without one no account can set a vault passphrase"
            )

    @property
    def hardener_configured(self) -> bool:
        return bool(self.hardener_address) and self.hardener_credentials is not None

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'vault.db'}"

    @property
    def blob_path(self) -> Path:
        return Path(self.blob_dir).expanduser() if self.blob_dir else self.data_dir / "blobs"

    @property
    def origin(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def secure_cookies(self) -> bool:
        return self.origin.startswith("https://")

    @property
    def credentials_path(self) -> Path:
        return self.credentials or default_credentials()


def _coerce(f: dataclasses.Field[Any], value: Any) -> Any:
    kind = str(f.type)
    try:
        if kind == "int":
            return int(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(text)
            return text in ("1", "true", "yes")
        if kind in ("Path", "Path | None"):
            return Path(value).expanduser()
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{f.name}: cannot use {value!r} as {kind}") from None


def load(
    *,
    data_dir: Path | None = None,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    env = dict(os.environ if environ is None else environ)
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    values: dict[str, Any] = {}
    if data_dir is not None:
        values["data_dir"] = data_dir.expanduser()
    elif "VAULT_DATA_DIR" in env:
        values["data_dir"] = Path(env["VAULT_DATA_DIR"]).expanduser()
    base_dir: Path = values.get("data_dir", DEFAULT_DATA_DIR)
    path = config_file or (Path(env["VAULT_CONFIG"]) if "VAULT_CONFIG" in env else None)
    if path is None and (base_dir / "vault.toml").exists():
        path = base_dir / "vault.toml"
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from None
        for key, value in file_values.items():
            if key not in fields:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            if key != "data_dir" or "data_dir" not in values:
                values[key] = _coerce(fields[key], value)
    for name, f in fields.items():
        env_value = env.get(f"VAULT_{name.upper()}")
        if env_value is not None and not (name == "data_dir" and data_dir is not None):
            values[name] = _coerce(f, env_value)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(fields[key], value)
    try:
        return Settings(**values)
    except TypeError as e:
        raise ConfigError(str(e)) from None


def credentials_problem(folder: Path) -> str | None:
    """What is wrong with an SP credentials folder, in words for the operator; None if usable."""
    from authnet.sdk.credentials import CredentialsError, SpCredentials

    if not (folder / "sp.json").exists():
        return (
            f"vault-api: no SP credentials in {folder}.\n"
            "Start a network once with `authnet serve` (it registers a demo SP for "
            "http://localhost:8000), or register the vault with\n"
            "  authnet sp add vault --display-name 'Vault' --origin http://localhost:8000\n"
            "or pass --credentials FOLDER."
        )
    try:
        SpCredentials.load(folder)
    except CredentialsError as e:
        return f"vault-api: {e}"
    return None

"""Network configuration: defaults, then a TOML file, then AUTHNET_* environment
variables, then command-line flags (each overriding the one before).

    # <data dir>/authnet.toml
    network_name = "authnet"
    bind_host = "127.0.0.1"
    public_host = "localhost"
    sp_port = 7443
    passkey_port = 7444
    gateway_port = 7480

Every field can be set from the environment as AUTHNET_<FIELD> (upper case),
e.g. AUTHNET_GATEWAY_PORT=8080. Port 0 binds a free port; advertised addresses
then follow the bound ports unless set explicitly.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from authnet.directory.backends import PoolOptions

DEFAULT_DATA_DIR = (
    Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "authnet"
)


class ConfigError(ValueError):
    pass


@dataclass(frozen=True, kw_only=True)
class Config:
    data_dir: Path = DEFAULT_DATA_DIR
    network_name: str = "authnet"
    # Where to listen.
    bind_host: str = "127.0.0.1"
    sp_port: int = 7443
    passkey_port: int = 7444
    gateway_port: int = 7480
    # The name clients use to reach this node: goes into the server certificate
    # and the advertised addresses.
    public_host: str = "localhost"
    # Advertised addresses; "" derives them from public_host and the bound ports.
    passkey_address: str = ""
    gateway_url: str = ""
    # The WebAuthn relying-party id FIDO2 tokens register with; "" means public_host.
    webauthn_rp_id: str = ""
    # "" is the embedded SQLite database in the data directory; a cluster's nodes
    # share one PostgreSQL database (postgresql://user@host:port/db).
    database_url: str = ""
    # PostgreSQL connections per node: database_pool_size kept (as many again
    # on demand) plus database_hot_connections for the login path, so at most
    # 2 * pool + hot per node; mind max_connections across all nodes. Seconds
    # to connect, for one statement, and to wait for a free connection.
    database_pool_size: int = 5
    database_hot_connections: int = 4
    database_connect_timeout_s: float = 3.0
    database_command_timeout_s: float = 10.0
    database_pool_timeout_s: float = 5.0
    # Where tickets, the mailbox, events and locks live: "" (or "memory") keeps
    # them in this process (one node only); a cluster's nodes share one Redis
    # (redis://host:port/db). Every key starts with state_prefix.
    state_url: str = ""
    state_prefix: str = "authnet:"
    # Every gateway of the cluster, advertised to SPs with each ticket so a
    # browser can resume its wait on another node; "" entries are ignored and
    # this node's own gateway is always first.
    cluster_gateway_urls: tuple[str, ...] = ()
    data_max_bytes: int = 16 * 1024
    # Seconds an SP certificate lookup is cached; revocation takes effect within it.
    sp_cache_seconds: float = 5.0
    # Peers whose X-Forwarded-For header the gateway believes (reverse proxies).
    trusted_proxies: tuple[str, ...] = ()
    log_level: str = "info"
    # "" means <data_dir>/authnet.log; "-" means stderr only.
    log_file: str = ""
    extra_hostnames: tuple[str, ...] = field(default=())
    # --- operations (authnet.metrics, authnet.health, authnet.logs) ---
    # Prometheus /metrics and /readyz on bind_host; 0 binds a free port, -1 turns it off.
    metrics_port: int = 7490
    # How often the node pings the state store and the directory, and how long
    # it waits for an answer, before its gRPC health turns NOT_SERVING.
    health_interval_s: float = 1.0
    health_timeout_s: float = 0.5
    # "text" (one line per event, for people) or "json" (one object per line).
    log_format: str = "text"
    # This node's name in logs, metrics and answers; "" means <hostname>-<pid>-<4 hex>.
    node_id: str = ""
    # --- abuse limits (authnet.gateway.limits, authnet.ratelimit) ---
    # Seconds a client has to send a request's headers once connected, and a
    # keep-alive connection may sit idle between requests.
    gateway_header_timeout_s: float = 10.0
    gateway_idle_timeout_s: float = 30.0
    # Open gateway connections (waiting browsers included) per client address
    # (IPv6: per /64; trusted_proxies are exempt) and in all; 0 in all means
    # the process's file-descriptor limit less a reserve for the gRPC ports.
    gateway_max_connections_per_address: int = 64
    gateway_max_connections: int = 0
    # GetChallenge calls per second per client address, per node, and the burst
    # allowed above it; a rate of 0 turns the limit off.
    challenge_rate_per_s: float = 20.0
    challenge_burst: int = 40
    # --- the PIN hardener (authnet.pin_relay, docs/protocol.md §17) ---
    # host:port of the hardener this network is a caller of; "" means none
    # (phones then keep Argon2id-only PINs).
    hardener_address: str = ""
    # The caller credentials `hardener caller add NAME --out DIR` wrote
    # (ca.pem, caller.pem, caller.key); "" means <data_dir>/hardener.
    hardener_credentials: str = ""
    # The name in the hardener's server certificate, when the address is not it.
    hardener_server_name: str = ""
    hardener_timeout_s: float = 5.0
    # HardenPin calls per second per client address, per node, and the burst
    # above it (the hardener limits each token; this limits each client).
    pin_attempt_rate_per_s: float = 5.0
    pin_attempt_burst: int = 30

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'authnet.db'}"

    @property
    def hardener_credentials_dir(self) -> Path:
        return (
            Path(self.hardener_credentials).expanduser()
            if self.hardener_credentials
            else self.data_dir / "hardener"
        )

    def __post_init__(self) -> None:
        if self.database_pool_size < 1 or self.database_hot_connections < 0:
            raise ConfigError(
                "database_pool_size must be at least 1 and database_hot_connections at least 0"
            )
        timeouts = (
            self.database_connect_timeout_s,
            self.database_command_timeout_s,
            self.database_pool_timeout_s,
        )
        if not all(t > 0 for t in timeouts):
            raise ConfigError("the database_*_timeout_s settings must be positive")

    @property
    def pool_options(self) -> PoolOptions:
        """How this node sizes its PostgreSQL pool (ignored on SQLite)."""
        from authnet.directory.backends import PoolOptions

        return PoolOptions(
            pool_size=self.database_pool_size,
            hot_connections=self.database_hot_connections,
            connect_timeout_s=self.database_connect_timeout_s,
            command_timeout_s=self.database_command_timeout_s,
            pool_timeout_s=self.database_pool_timeout_s,
        )

    @property
    def log_path(self) -> Path | None:
        if self.log_file == "-":
            return None
        return Path(self.log_file) if self.log_file else self.data_dir / "authnet.log"


def _coerce(f: dataclasses.Field[Any], value: Any) -> Any:
    kind = str(f.type)
    try:
        if kind == "int":
            return int(value)
        if kind == "float":
            return float(value)
        if kind == "Path":
            return Path(value).expanduser()
        if kind.startswith("tuple"):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{f.name}: cannot use {value!r} as {kind}") from None


def load(
    *,
    data_dir: Path | None = None,
    config_file: Path | None = None,
    overrides: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> Config:
    env = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(Config)}
    values: dict[str, Any] = {}
    if data_dir is not None:
        values["data_dir"] = data_dir
    elif "AUTHNET_DATA_DIR" in env:
        values["data_dir"] = Path(env["AUTHNET_DATA_DIR"]).expanduser()
    base_dir = values.get("data_dir", DEFAULT_DATA_DIR)
    path = config_file or (Path(env["AUTHNET_CONFIG"]) if "AUTHNET_CONFIG" in env else None)
    if path is None and (base_dir / "authnet.toml").exists():
        path = base_dir / "authnet.toml"
    if path is not None:
        try:
            file_values = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"cannot read config file {path}: {e}") from None
        for key, value in file_values.items():
            if key not in fields:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            if key != "data_dir" or data_dir is None:
                values[key] = _coerce(fields[key], value)
    for name, f in fields.items():
        env_value = env.get(f"AUTHNET_{name.upper()}")
        if env_value is not None and not (name == "data_dir" and data_dir is not None):
            values[name] = _coerce(f, env_value)
    for key, value in (overrides or {}).items():
        if value is not None:
            values[key] = _coerce(fields[key], value)
    return Config(**values)

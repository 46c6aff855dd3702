"""One typed settings object, from defaults < config file < environment < flags."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tidings.auth.keys import AccessKey

DEFAULT_ACCESS_KEY_ID = "tidings"
DEFAULT_ACCESS_KEY_SECRET = "tidings-secret"
DEFAULT_ACCOUNT_ID = "1234567890123456"
DEFAULT_REGION = "cn-hangzhou"
CONFIG_FILE_NAME = "tidings.toml"

_ENV = {
    "TIDINGS_ACCESS_KEY_ID": "access_key_id",
    "TIDINGS_ACCESS_KEY_SECRET": "access_key_secret",
    "TIDINGS_ACCOUNT_ID": "account_id",
    "TIDINGS_REGION": "region",
}


@dataclass(frozen=True)
class Settings:
    """Everything `tidings serve` and the CLI need to know."""

    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    oss_port: int = 9100
    mns_port: int = 9101
    console_port: int = 9102
    access_key_id: str = DEFAULT_ACCESS_KEY_ID
    access_key_secret: str = DEFAULT_ACCESS_KEY_SECRET
    account_id: str = DEFAULT_ACCOUNT_ID
    region: str = DEFAULT_REGION
    clock_speed: float = 1.0
    # FULL: a 2xx means the change is on disk. NORMAL trades that for speed.
    synchronous: str = "FULL"
    extra_keys: tuple[AccessKey, ...] = field(default_factory=tuple)
    # The MNS listener's URL as push receivers reach it (for the signing-cert URL);
    # default: the address it listens on.
    public_mns_url: str | None = None
    # Administrator's rules for HTTP push endpoints (CIDR lists; denied wins).
    allowed_networks: tuple[str, ...] = ()
    denied_networks: tuple[str, ...] = ()
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_sender: str = "tidings@localhost"
    sms_gateway_url: str | None = None
    # Buckets one account may own (the cloud's default quota).
    max_buckets: int = 100
    # Virtual-hosted OSS addressing: `<bucket>.<domain>` for each of these domains.
    oss_domains: tuple[str, ...] = ("localhost",)
    # The OSS listener's URL as upload-callback servers reach it (for the public-key URL
    # in x-oss-pub-key-url); default: the Host the uploading client used.
    public_oss_url: str | None = None
    # Deadline of one upload-callback attempt, in seconds (the cloud's is 5).
    upload_callback_timeout: float = 5.0

    @property
    def default_credentials(self) -> bool:
        """Whether the root key is the built-in default (worth a warning at start-up)."""
        return (
            self.access_key_id == DEFAULT_ACCESS_KEY_ID
            and self.access_key_secret == DEFAULT_ACCESS_KEY_SECRET
        )

    @property
    def database_path(self) -> Path:
        """The embedded store's database file."""
        return self.data_dir / "tidings.db"

    @property
    def blobs_path(self) -> Path:
        """Where the local blob store keeps object bodies."""
        return self.data_dir / "blobs"

    def keys(self) -> list[AccessKey]:
        """The root key first, then the configured extra keys."""
        root = AccessKey(self.access_key_id, self.access_key_secret, self.account_id)
        return [root, *self.extra_keys]


def _from_file(path: Path) -> dict[str, Any]:
    with path.open("rb") as handle:
        data = tomllib.load(handle)
    values: dict[str, Any] = dict(data.get("server", {}))
    account = values.get("account_id", DEFAULT_ACCOUNT_ID)
    keys = tuple(
        AccessKey(str(k["id"]), str(k["secret"]), str(k.get("account_id", account)))
        for k in data.get("keys", [])
    )
    if keys:
        values["extra_keys"] = keys
    if "data_dir" in values:
        values["data_dir"] = Path(values["data_dir"])
    for name in ("allowed_networks", "denied_networks", "oss_domains"):
        if name in values:
            values[name] = tuple(values[name])
    return values


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Settings from the config file, the environment and flags (None flags are ignored).

    The config file is `config_file` if given, else `tidings.toml` in the data dir when
    present. It has a `[server]` table (any Settings field) and `[[keys]]` entries
    (`id`, `secret`, optional `account_id`).
    """
    given = {k: v for k, v in flags.items() if v is not None}
    settings = Settings()
    data_dir = Path(given.get("data_dir", settings.data_dir))
    path = config_file or (data_dir / CONFIG_FILE_NAME)
    if config_file is not None or path.exists():
        settings = replace(settings, **_from_file(path))
    env: dict[str, Any] = {
        attr: os.environ[name] for name, attr in _ENV.items() if os.environ.get(name)
    }
    settings = replace(settings, **env)
    settings = replace(settings, **given)
    if "data_dir" in given:
        settings = replace(settings, data_dir=Path(given["data_dir"]))
    return settings

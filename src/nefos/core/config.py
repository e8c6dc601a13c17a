"""Settings: one TOML file plus ``NEFOS_*`` environment variables.

Every ``nefos`` command finds the same deployment the same way, so an operator's
``nefos user create`` acts on the cloud that ``nefos up`` serves:

1. ``--config FILE`` or ``NEFOS_CONFIG``: a TOML file;
2. else ``DATA_DIR/nefos.toml`` if that file exists, where ``DATA_DIR`` is
   ``--data-dir``, ``NEFOS_DATA_DIR`` or ``./nefos-data``.

Precedence, highest first: command-line flags, environment, TOML file, defaults.
Nested tables map to environment variables with ``__``: ``NEFOS_OIDC__ISSUER``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import secrets
import stat
import tomllib
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from nefos.core import sqlite

DEFAULT_DATA_DIR = Path("nefos-data")
CONFIG_FILE_NAME = "nefos.toml"
SECRET_KEY_FILE = "secret_key"
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600

log = logging.getLogger("nefos.config")

_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "nefos_config_file", default=None
)


class OidcProvider(BaseModel):
    """One OpenID Connect identity provider, found by its issuer's discovery document."""

    name: str = "oidc"
    title: str = "OpenID Connect"
    issuer: str
    client_id: str
    client_secret: str
    scope: str = "openid email profile"


class Shibboleth(BaseModel):
    """A SAML front end (Shibboleth SP) that passes the identity in request headers.

    Headers are trusted only from ``trusted_proxies``: anyone else could forge them.
    """

    enabled: bool = False
    trusted_proxies: list[str] = ["127.0.0.1/32", "::1/128"]
    id_header: str = "eppn"
    email_header: str = "mail"
    name_header: str = "displayName"

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        for net in value:
            ip_network(net, strict=False)
        return value


class Storage(BaseModel):
    """Where file, image and volume blocks live (``nefos.storage.stores``)."""

    backend: Literal["file", "rados"] = "file"
    path: Path | None = None  # file backend; default DATA_DIR/storage
    # file backend: small blocks written at once share two syncfs calls instead of each
    # fsyncing itself and its directory; off where the filesystem is shared with heavy
    # buffered writers (syncfs flushes them too)
    group_sync: bool = True
    # objects past their X-Delete-At answer 404 at once; this often they are deleted
    # (their space freed); 0: never in this process
    expire_seconds: float = Field(default=60, ge=0)
    # maps and blocks no version uses (uploads that never committed, blocks posted and
    # never used, deleted objects' data) are collected this often, by one of the API
    # processes (it claims the run in the database); 0: never by them (`nefos storage gc`)
    gc_seconds: float = Field(default=3600, ge=0)
    # gc keeps what was put this recently however unused: longer than any upload takes
    # plus the clock skew between hosts. Blocks posted on their own and never used stay
    # charged to their account until gc takes them, at least this long.
    gc_grace_seconds: float = Field(default=3600, ge=0)
    # which stored blocks a hashmap PUT may name without sending them: "known", those
    # the caller's account has had (sent, or copied in); "any", every stored block
    # (Synnefo's behaviour, which tells anybody whether some content is stored anywhere)
    hashmap_reuse: Literal["known", "any"] = "known"
    rados_conffile: Path = Path("/etc/ceph/ceph.conf")
    rados_pool: str = "nefos"
    rados_user: str = "admin"
    # Swift's static large object limits: segments one manifest lists, and how deep
    # manifests may name manifests (checked at PUT, so a read never expands more)
    slo_max_segments: int = Field(default=1000, ge=1)
    slo_max_depth: int = Field(default=10, ge=1)
    # Swift's bulk extract-archive limits: containers one archive may create (at the
    # account level), and refused members after which the rest of the archive is not read
    bulk_max_containers_per_extraction: int = Field(default=10000, ge=0)
    bulk_max_failed_extractions: int = Field(default=1000, ge=1)
    # Swift's bulk delete limit: refused paths after which the rest are not deleted
    bulk_max_failed_deletes: int = Field(default=1000, ge=1)


class Compute(BaseModel):
    """Servers and the clusters they run on (``nefos.compute``, ``nefos.backends``)."""

    dispatcher: bool = Field(
        default=True,
        description="Apply backend events in this process (the update path). Turn off "
        "for API workers when a separate process runs the dispatcher.",
    )
    dispatcher_queue: str = Field(
        default="nefos-events-op",
        description="The bus queue the dispatcher consumes (one per deployment).",
    )
    embedded_backend: bool = Field(
        default=True,
        description="Create a simulated in-process cluster when no backend is configured.",
    )
    embedded_delay: float = Field(
        default=0.5, ge=0, description="Seconds each job of the embedded backend takes."
    )
    reconcile_seconds: float = Field(
        default=300,
        ge=0,
        description="How often the dispatcher process reconciles servers with their "
        "backends (0: never; `nefos reconcile servers --fix` runs a pass by hand).",
    )
    vmapi_url: str = Field(
        default="",
        description="Base URL at which the clusters' nodes reach nefos, for the OS "
        "provider's one-time build fetches (default: the public base URL).",
    )
    vmapi_seconds: float = Field(
        default=3600,
        gt=0,
        description="How long a server's build secret stays valid if its build never "
        "reports an end (it ends with the create job anyway).",
    )
    console_host: str = Field(
        default="127.0.0.1",
        description="Address the console proxy listens on and tells clients to connect "
        "to (the server `console` action); it must be reachable by users' VNC clients.",
    )
    console_ports: str = Field(
        default="0",
        pattern=r"^\s*\d+\s*(-\s*\d+\s*)?$",
        description="Ports the console proxy may open, one per console ticket: "
        '"0" for any free port, or a range such as "6000-6099" to match a firewall.',
    )
    console_seconds: float = Field(
        default=60,
        gt=0,
        description="How long a console ticket waits for its client to connect, and then "
        "for it to authenticate, before its port closes.",
    )
    volume_provider: str = Field(
        default="nefos",
        pattern=r"^[A-Za-z0-9_.+-]+$",
        description="The name under which nefos's ExtStorage provider is installed on "
        "the Ganeti nodes (`nefos ganeti install-extstorage --name`): the disks of "
        "volumes are created and attached through it.",
    )
    max_keypairs: int = Field(default=100, ge=1, description="Keypairs per user.")
    max_count: int = Field(
        default=100,
        ge=1,
        description="Servers one create request may ask for (Nova's max_count); the "
        "quota bounds it too.",
    )
    max_metadata: int = 10
    max_tags: int = 50


class Network(BaseModel):
    """Networks, their flavors and pools (``nefos.network``; spec §4.2, §4.3)."""

    enabled_flavors: list[Literal["CUSTOM", "IP_LESS_ROUTED", "MAC_FILTERED", "PHYSICAL_VLAN"]] = (
        Field(
            default=["MAC_FILTERED"],
            description="Network types users may create (Synnefo's "
            "API_ENABLED_NETWORK_FLAVORS); administrators may create any.",
        )
    )
    default_bridge: str = Field(
        default="br0", description="Bridge of CUSTOM networks (DEFAULT_BRIDGE)."
    )
    mac_filtered_bridge: str = Field(
        default="prv0",
        description="The one bridge MAC_FILTERED networks share, isolated by MAC prefix.",
    )
    default_mac_prefix: str = Field(
        default="aa:00:0",
        pattern=r"^[0-9a-f]{2}(:[0-9a-f]{1,2}){1,4}$",
        description="MAC prefix of every network that gets none of its own from the pool.",
    )
    mac_prefix_pool_base: str = Field(
        default="aa:00:0",
        pattern=r"^[0-9a-f]{2}(:[0-9a-f]{1,2}){1,4}$",
        description="First value of the MAC prefix pool (MAC_FILTERED networks get one "
        "each; the base itself is kept for public networks).",
    )
    mac_prefix_pool_size: int = Field(
        default=65536, ge=2, le=1 << 20, description="Prefixes in the MAC prefix pool."
    )
    bridge_pool_base: str = Field(
        default="prv",
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,10}$",
        description="Stem of the PHYSICAL_VLAN bridges: prv1, prv2, ...",
    )
    bridge_pool_size: int = Field(
        default=20, ge=1, le=4094, description="Bridges in the PHYSICAL_VLAN bridge pool."
    )
    max_pool_addresses: int = Field(
        default=65536,
        ge=1,
        le=1 << 22,
        description="Most addresses one IPv4 allocation range may hold (a /16).",
    )
    mtu: int = Field(default=1500, ge=68, le=65535, description="The MTU networks report.")
    default_public_network: str = Field(
        default="",
        description="The public network (id or name) a server gets a NIC on when its "
        "create names no network; empty: no NIC.",
    )
    max_dns_nameservers: int = Field(default=5, ge=0)
    max_host_routes: int = Field(default=20, ge=0)


class LoginThrottle(BaseModel):
    """Password guessing, slowed: every password login (the web form, Keystone v2.0 and
    v3, TempAuth) counts against the account named and the client's address, and is
    refused (429, ``Retry-After``) once either has ``per_account``/``per_address``
    attempts that did not succeed within ``window_seconds`` of the first. An attempt
    counts before its password is checked, so guesses sent in parallel cannot all slip
    through; a success takes its attempt back and clears the account's count. The
    counts live in the database, so every API worker shares them.
    """

    per_account: int = Field(
        default=10,
        ge=1,
        description="Failed password logins per account (known or not) per window.",
    )
    per_address: int = Field(
        default=100,
        ge=1,
        description="Failed password logins per client address (an IPv6 /64) per window; "
        "higher than per account, as many users may share one address.",
    )
    window_seconds: float = Field(
        default=900, gt=0, description="How long failures count, from the first."
    )


class Mail(BaseModel):
    """The SMTP relay that carries sign-up, moderation and password-reset mail
    (``nefos.core.mail``). Mail goes out after the change it tells of is committed; a
    relay that fails is retried after each of ``retry_seconds`` and then logged as lost.
    """

    host: str = Field(default="127.0.0.1", description="The SMTP relay's host.")
    port: int = Field(default=25, ge=1, le=65535, description="The relay's port (465: tls).")
    security: Literal["auto", "starttls", "tls", "none"] = Field(
        default="auto",
        description="auto: STARTTLS when the relay offers it; starttls: required; tls: "
        "TLS from the first byte (port 465); none: never encrypted.",
    )
    user: str = Field(default="", description="Login at the relay (empty: none).")
    password: str = Field(default="", description="Password of that login.")
    from_address: str = Field(
        default="nefos <nefos@localhost>", description="The From: of every mail nefos sends."
    )
    base_url: str = Field(
        default="",
        description="The public URL people open the links in mail at (default: public_url).",
    )
    timeout_seconds: float = Field(default=30, gt=0, description="Per SMTP conversation.")
    retry_seconds: list[float] = Field(
        default=[10, 60, 300, 1800],
        description="Pauses before each new try of a mail the relay refused or did not take.",
    )


class Signup(BaseModel):
    """Accounts people make themselves (``nefos.identity.accounts``): sign-up with
    e-mail verification, then moderation unless ``signup_auto_activate``; password
    reset by e-mail."""

    enabled: bool = Field(default=True, description="Whether people may sign up themselves.")
    terms_file: Path | None = Field(
        default=None,
        description="A text file with the terms of use that sign-up asks people to accept "
        "(none: sign-up asks for no acceptance).",
    )
    terms_version: str = Field(
        default="1",
        max_length=64,
        description="The version of terms_file; change it with the text. Sign-up records "
        "the version each user accepted.",
    )
    password_min_length: int = Field(
        default=8, ge=1, description="Shortest password sign-up and reset accept."
    )
    verify_hours: float = Field(default=48, gt=0, description="How long a verification link works.")
    reset_minutes: float = Field(
        default=60, gt=0, description="How long a password-reset link works."
    )


class Limits(BaseModel):
    """Request limits checked at the API edge (and again in services)."""

    json_body_bytes: int = 1 << 20
    header_bytes: int = 16 << 10
    header_value_bytes: int = 8 << 10
    name_length: int = 255
    password_length: int = 1024
    identity_list: int = Field(
        default=1000,
        ge=1,
        description="Most projects or users one Keystone v3 listing returns; a longer "
        'list is cut and marked "truncated": true (Keystone\'s list_limit).',
    )
    image_list_default: int = Field(
        default=25,
        ge=1,
        description="Images one Glance v2 listing page holds when the client gives no "
        "limit (Glance's limit_param_default).",
    )
    image_list_max: int = Field(
        default=1000,
        ge=1,
        description="Most images one Glance v2 listing page holds, whatever limit the "
        "client asks (Glance's api_limit_max).",
    )
    server_list_max: int = Field(
        default=1000,
        ge=1,
        description="Most servers one Compute listing page holds, whatever limit the client "
        "asks; a full page links to the next (Nova's [api] max_limit).",
    )
    image_properties: int = Field(
        default=128,
        ge=0,
        description="Most custom properties one image may hold; more are refused with 413 "
        "(Glance's image_property_quota; Nova's limits show it as maxImageMeta).",
    )
    quota_provisions: int = Field(
        default=1000,
        ge=1,
        description="Most provisions one Astakos commission request issues.",
    )
    quota_serials: int = Field(
        default=10_000,
        ge=1,
        description="Most serials one Astakos resolve-commissions request accepts plus "
        "rejects, each list alone.",
    )
    user_catalog_names: int = Field(
        default=10_000,
        ge=1,
        description="Most UUIDs, and most display names, one Astakos user_catalogs request "
        "asks about.",
    )
    image_size_bytes: int = Field(
        default=1 << 40,
        ge=0,
        description="Largest image data one Glance v2 upload may store (Glance's image_size_cap).",
    )
    credentials_per_user: int = Field(
        default=100,
        ge=1,
        description="Most application credentials, EC2 credentials, and access rules in "
        "one credential, a user may hold (Keystone's user_limit).",
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEFOS_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str = ""
    bus_url: str = "memory://"
    host: str = "127.0.0.1"
    port: int = 8000
    public_url: str = ""
    region: str = "RegionOne"
    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="Per service type base URL, for deployments with several hosts.",
    )
    secret_key: str = ""
    token_lifetime_days: float = 30.0
    session_token_hours: float = 24.0
    token_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long a process trusts a token it validated; other processes' "
        "revocations take effect within this time (0: ask the database every time).",
    )
    log_level: str = "INFO"
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="Log lines as JSON objects or as text; auto: text when standard error "
        "is a terminal (a person watching), JSON otherwise (a journal or a file).",
    )
    admin_email: str = "admin@nefos.local"
    signup_auto_activate: bool = Field(
        default=True,
        description="Whether a new account (signed up and verified, or a first external "
        "login) is active at once; else it waits for an administrator ([signup]).",
    )
    quota_defaults: dict[str, int] = Field(
        default_factory=dict,
        description="Base quota per user by resource name, over the built-in defaults.",
    )
    usage_history_days: int = Field(
        default=400,
        ge=0,
        description="How long the quota log (each accepted change of a holding) is kept: "
        "the usage history of GET /account/v1.0/usage reaches this far back, and older "
        "rows are deleted hourly (0: keep them forever).",
    )
    auth_providers: list[str] = ["local"]
    weblogin_clients: list[str] = Field(
        default_factory=list,
        description="URL prefixes besides this deployment's own (public_url) to which "
        "/ui/weblogin may hand a user's token, e.g. a desktop client's local callback "
        '"http://127.0.0.1:8765/callback": scheme, host and port must match exactly and '
        "the path must start with the prefix's.",
    )
    login_throttle: LoginThrottle = LoginThrottle()
    oidc: list[OidcProvider] = []
    shibboleth: Shibboleth = Shibboleth()
    limits: Limits = Limits()
    mail: Mail = Mail()
    signup: Signup = Signup()
    storage: Storage = Storage()
    compute: Compute = Compute()
    network: Network = Network()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @field_validator("weblogin_clients")
    @classmethod
    def _absolute_urls(cls, value: list[str]) -> list[str]:
        for url in value:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"weblogin_clients: {url!r} is not an absolute http(s) URL")
        return value

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir.resolve() / 'nefos.db'}"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def endpoint(self, service_type: str, path: str) -> str:
        """The public URL of a service: configured per type, else the base URL + path."""
        return self.endpoints.get(service_type, self.base_url + path).rstrip("/")


def find_config_file(config: Path | None = None, data_dir: Path | None = None) -> Path | None:
    if config is None and os.environ.get("NEFOS_CONFIG"):
        config = Path(os.environ["NEFOS_CONFIG"])
    if config is not None:
        if not config.is_file():
            raise ConfigError(f"configuration file {config} does not exist")
        return config
    data_dir = data_dir or Path(os.environ.get("NEFOS_DATA_DIR") or DEFAULT_DATA_DIR)
    candidate = data_dir / CONFIG_FILE_NAME
    return candidate if candidate.is_file() else None


class ConfigError(Exception):
    """The deployment's configuration cannot be used as it stands."""


def load_settings(
    config: Path | None = None, data_dir: Path | None = None, **overrides: Any
) -> Settings:
    """Settings of the deployment found from flags, environment and files."""
    path = find_config_file(config, data_dir)
    if path is not None:
        try:
            tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    token = _config_file.set(path)
    try:
        settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    finally:
        _config_file.reset(token)
    return settings


def ensure_data_dir(settings: Settings) -> Settings:
    """Create the data directory and give the deployment a stable secret key.

    The key signs web sessions and seals the secrets the database keeps (API tokens,
    RAPI passwords); it lives in the data directory so every process of one deployment
    shares it, unless the configuration sets one. The directory is 0700 and what holds
    secrets in it (the key, ``nefos.toml``, the SQLite database and its WAL) 0600:
    every command runs this, so one left open to other local users (by an older nefos,
    a copy, an editor) is tightened on the next start, and the log says so.
    """
    settings.data_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    _tighten(settings.data_dir, PRIVATE_DIR)
    if not settings.secret_key:
        key_file = settings.data_dir / SECRET_KEY_FILE
        if not key_file.exists():
            tmp = key_file.with_name(f".secret_key.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, key_file)  # first writer wins; the others read its key
            tmp.unlink()
        settings.secret_key = key_file.read_text().strip()
    for path in private_files(settings):
        _tighten(path, PRIVATE_FILE)
    return settings


def private_files(settings: Settings) -> list[Path]:
    """The deployment's files that only its own user may read (whether they exist)."""
    paths = [settings.data_dir / SECRET_KEY_FILE, settings.data_dir / CONFIG_FILE_NAME]
    url = settings.database
    database = sqlite.database_file(url) if url.startswith("sqlite") else None
    if database is not None:
        paths.append(database)
        paths.extend(database.with_name(database.name + end) for end in sqlite.COMPANIONS)
    return paths


def _tighten(path: Path, mode: int) -> None:
    """Take from ``path`` every permission beyond ``mode``."""
    try:
        had = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if not had & ~mode:
        return
    try:
        path.chmod(had & mode)
    except OSError as exc:
        log.warning("%s is open to other users (mode %04o) and stays so: %s", path, had, exc)
        return
    log.warning("%s was open to other users (mode %04o): now %04o", path, had, had & mode)

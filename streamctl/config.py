"""Connection settings: flags, environment, profiles (YAML config file) and defaults -> Settings.

Precedence for the server: `--url`, then `--profile`, then STREAMCTL_URL / REDIS_URL, then
STREAMCTL_PROFILE, then the config file's `default` profile, then redis://localhost:6379/0.
The config file is only read when a profile may be involved, so a one-shot command with a URL
never loads YAML.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from streamctl.errors import BadInput

ENV_URL = "STREAMCTL_URL"
ENV_REDIS_URL = "REDIS_URL"
ENV_PROFILE = "STREAMCTL_PROFILE"
ENV_CONFIG = "STREAMCTL_CONFIG"
ENV_OUTPUT = "STREAMCTL_OUTPUT"
ENV_TLS_CA = "STREAMCTL_TLS_CA"
ENV_SENTINEL_PASSWORD = "STREAMCTL_SENTINEL_PASSWORD"
ENV_DEBUG = "STREAMCTL_DEBUG"
ENV_NO_COLOR = "NO_COLOR"
ENV_FORCE_COLOR = "FORCE_COLOR"

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT_SECONDS = 1_000_000  # about 11 days; sockets overflow far above
APP_NAME = "streamctl"
URL_SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
PROFILE_KEYS = (
    "url",
    "username",
    "password",
    "password_env",
    "ca_cert",
    "cluster",
    "timeout",
    "sentinel",
    "sentinel_password_env",
)
SENTINEL_URL_FORM = "redis+sentinel://[user:pass@]HOST:PORT[,HOST:PORT...]/MASTER[/DB]"


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask URL passwords, and each of `secrets` (a Settings' `secrets`), in a message."""
    text = _URL_PASSWORD_RE.sub(r"\1***@", text)
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# user:password@ in a URL; a user part with '[' is the usage text "redis://[user:pass@]host"
_URL_PASSWORD_RE = re.compile(r"((?:rediss?|unix)(?:\+sentinel)?://[^:/@\s\[]*:)[^@\s]*@")


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.scheme in SENTINEL_SCHEMES:  # several host:port, which urlsplit cannot read
            return scrub(url)
        password, port = parts.password, parts.port  # a bad port raises ValueError here
    except ValueError:
        return scrub(url)
    if password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{port}" if port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class Settings:
    url: str = DEFAULT_URL
    username: str | None = None
    password: str | None = None
    ca_cert: str | None = None
    cluster: bool | None = None  # None: detect
    timeout: float = DEFAULT_TIMEOUT
    profile: str | None = None
    # A profile's `sentinel: {master: NAME, nodes: [...]}` (a redis+sentinel:// URL says the
    # same in the URL itself: see `sentinel_target`), and the Sentinels' own password.
    sentinel: tuple[str, tuple[str, ...]] | None = None
    sentinel_password: str | None = None

    @property
    def display_url(self) -> str:
        """The URL with its password masked."""
        return mask_url(self.url)

    @property
    def secrets(self) -> tuple[str, ...]:
        """What must never reach a message: the password, and the URL's (as written and
        decoded). Shorter than 3 characters is not masked: scrubbing "a" helps no one."""
        found = [self.password or "", self.sentinel_password or ""]
        try:
            url_password = urlsplit(self.url).password
        except ValueError:
            url_password = None
        if url_password:
            found += [url_password, unquote(url_password)]
        return tuple(dict.fromkeys(x for x in found if len(x) >= 3))


@dataclass(frozen=True)
class SentinelTarget:
    """Where the Sentinels are and what to ask them for, and how to reach the data nodes."""

    master: str
    nodes: tuple[tuple[str, int], ...]
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @property
    def addresses(self) -> str:
        """The Sentinels as host:port, for messages."""
        return ", ".join(f"{host}:{port}" for host, port in self.nodes)


def _sentinel_node(text: str, where: str) -> tuple[str, int]:
    host, sep, port = str(text).strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise BadInput(
            f"bad Sentinel address {text!r} in {where}: give HOST:PORT, as in 10.0.0.1:26379"
        )
    return host, int(port)


def sentinel_target(settings: Settings) -> SentinelTarget | None:
    """The Sentinel deployment the settings name (a redis+sentinel:// URL, or a profile's
    `sentinel` beside its url), or None for a server or cluster reached directly. A form that
    cannot be read is BadInput naming what is accepted."""
    scheme = settings.url.split("://", 1)[0].lower() if "://" in settings.url else ""
    if scheme in SENTINEL_SCHEMES:
        return _parse_sentinel_url(settings.url)
    if settings.sentinel is None:
        return None
    master, nodes = settings.sentinel
    if scheme not in ("redis", "rediss"):
        raise BadInput(
            f"bad URL {mask_url(settings.url)!r} beside 'sentinel': give "
            "redis://[user:pass@]host/db or rediss://... (only its scheme, credentials and "
            "database are used)"
        )
    parts = urlsplit(settings.url)
    db_text = unquote(parts.path).strip("/") or "0"
    if not (db_text.isascii() and db_text.isdigit()):
        raise BadInput(f"bad URL {mask_url(settings.url)!r}: the database must be a number")
    return SentinelTarget(
        master=master,
        nodes=tuple(_sentinel_node(n, "the profile's sentinel nodes") for n in nodes),
        db=int(db_text),
        username=settings.username or (unquote(parts.username) if parts.username else None),
        password=settings.password
        if settings.password is not None
        else (unquote(parts.password) if parts.password is not None else None),
        tls=scheme == "rediss",
    )


def _parse_sentinel_url(url: str) -> SentinelTarget:
    def bad(why: str) -> BadInput:
        return BadInput(f"bad URL {mask_url(url)!r}: {why}; accepted {SENTINEL_URL_FORM}")

    scheme, rest = url.split("://", 1)
    if "?" in rest or "#" in rest:
        raise bad("a Sentinel URL takes no options")
    netloc, _, path = rest.partition("/")
    userinfo, at, hosts = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    if not hosts:
        raise bad("no Sentinel HOST:PORT")
    nodes = []
    for item in hosts.split(","):
        try:
            nodes.append(_sentinel_node(item, "the URL"))
        except BadInput:
            raise bad(f"{item!r} is not HOST:PORT") from None
    names = [unquote(p) for p in path.split("/")] if path else []
    if names and names[-1] == "":
        names.pop()
    if not names or not names[0]:
        raise bad("no MASTER name after the Sentinels")
    if len(names) > 2:
        raise bad("too many parts after the Sentinels")
    db = 0
    if len(names) == 2:
        if not (names[1].isascii() and names[1].isdigit()):
            raise bad(f"the database {names[1]!r} is not a number")
        db = int(names[1])
    return SentinelTarget(
        master=names[0],
        nodes=tuple(nodes),
        db=db,
        username=username,
        password=password,
        tls=scheme.lower() == "rediss+sentinel",
    )


def default_config_path() -> Path:
    env = os.environ.get(ENV_CONFIG)
    if env:
        return Path(env)
    import typer

    return Path(typer.get_app_dir(APP_NAME)) / "config.yaml"


def load_config(path: Path) -> dict[str, Any]:
    """The config file as a dict; an empty dict when the file does not exist."""
    if not path.exists():
        return {}
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise BadInput(f"cannot read config file {path}: {first}") from None
    if data is None:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("profiles", {}), dict):
        raise BadInput(
            f"config file {path} must be a mapping with 'profiles: {{NAME: {{url: ...}}}}'"
        )
    return data


def save_config(path: Path, data: dict[str, Any]) -> None:
    """Write the config file atomically (readable by the user only: it may hold credentials)."""
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    text = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def validate_url(url: str) -> str:
    try:
        scheme = urlsplit(url).scheme
    except ValueError:
        scheme = ""
    if scheme not in URL_SCHEMES:
        raise BadInput(
            f"bad URL {mask_url(url)!r}: accepted redis://[user:pass@]host:port/db, "
            f"rediss://... (TLS), unix:///path/to/redis.sock, {SENTINEL_URL_FORM} "
            "(rediss+sentinel:// for TLS)"
        )
    if scheme in SENTINEL_SCHEMES:
        _parse_sentinel_url(url)
    return url


def profile_settings(name: str, profile: dict[str, Any], base: Settings) -> Settings:
    """Settings from one profile mapping (password from `password_env` when given)."""
    if not isinstance(profile, dict) or "url" not in profile:
        raise BadInput(f"profile {name!r} must be a mapping with at least 'url'")
    unknown = sorted(set(profile) - set(PROFILE_KEYS))
    if unknown:
        raise BadInput(
            f"profile {name!r} has unknown keys {', '.join(unknown)}; "
            f"accepted: {', '.join(PROFILE_KEYS)}"
        )
    password = profile.get("password")
    env_name = profile.get("password_env")
    if env_name:
        password = os.environ.get(str(env_name))
        if password is None:
            raise BadInput(
                f"profile {name!r} takes its password from ${env_name}, which is not set"
            )
    cluster = profile.get("cluster")
    sentinel = _profile_sentinel(name, profile.get("sentinel"))
    sentinel_password = base.sentinel_password
    sentinel_env = profile.get("sentinel_password_env")
    if sentinel_env and sentinel_password is None:
        sentinel_password = os.environ.get(str(sentinel_env))
        if sentinel_password is None:
            raise BadInput(
                f"profile {name!r} takes the Sentinels' password from ${sentinel_env}, "
                "which is not set"
            )
    return Settings(
        url=validate_url(str(profile["url"])),
        username=profile.get("username"),
        password=password,
        ca_cert=base.ca_cert or profile.get("ca_cert"),  # --tls-ca, STREAMCTL_TLS_CA, profile
        cluster=bool(cluster) if cluster is not None else base.cluster,
        timeout=float(profile.get("timeout", base.timeout)),
        profile=name,
        sentinel=sentinel,
        sentinel_password=sentinel_password,
    )


def _profile_sentinel(name: str, value: Any) -> tuple[str, tuple[str, ...]] | None:
    if value is None:
        return None
    accepted = 'accepted: sentinel: {master: NAME, nodes: ["host:26379", ...]}'
    if not isinstance(value, dict) or set(value) != {"master", "nodes"}:
        raise BadInput(f"profile {name!r} has a bad 'sentinel'; {accepted}")
    master, nodes = value["master"], value["nodes"]
    if not isinstance(master, str) or not master or not isinstance(nodes, list) or not nodes:
        raise BadInput(f"profile {name!r} has a bad 'sentinel'; {accepted}")
    for node in nodes:
        _sentinel_node(str(node), f"profile {name!r}")
    return master, tuple(str(n) for n in nodes)


def resolve_settings(
    *,
    url: str | None = None,
    profile: str | None = None,
    config_path: str | None = None,
    cluster: bool | None = None,
    tls_ca: str | None = None,
    timeout: float | None = None,
) -> Settings:
    """Apply the precedence rules to the global options and return the connection settings."""
    if timeout is not None and not (0 < timeout <= MAX_TIMEOUT_SECONDS):  # also NaN
        raise BadInput(
            f"bad --timeout {timeout}: give a number of seconds above 0 "
            f"(at most {MAX_TIMEOUT_SECONDS:,})"
        )
    base = Settings(
        timeout=timeout if timeout is not None else DEFAULT_TIMEOUT,
        ca_cert=tls_ca or os.environ.get(ENV_TLS_CA) or None,
        cluster=cluster,
        sentinel_password=os.environ.get(ENV_SENTINEL_PASSWORD) or None,
    )
    env_url = os.environ.get(ENV_URL) or os.environ.get(ENV_REDIS_URL)
    chosen_profile: str | None = None
    if url:
        settings = Settings(**{**base.__dict__, "url": validate_url(url)})
    elif profile:
        chosen_profile = profile
    elif env_url:
        settings = Settings(**{**base.__dict__, "url": validate_url(env_url)})
    else:
        chosen_profile = os.environ.get(ENV_PROFILE) or None

    if not url and (profile or not env_url):
        path = Path(config_path) if config_path else default_config_path()
        data = load_config(path) if (chosen_profile or path.exists()) else {}
        profiles = data.get("profiles") or {}
        name = chosen_profile or data.get("default")
        if name:
            if name not in profiles:
                known = ", ".join(sorted(profiles)) or "none"
                raise BadInput(f"no profile {name!r} in {path} (profiles: {known})")
            settings = profile_settings(str(name), profiles[name], base)
            if timeout is not None:
                settings = Settings(**{**settings.__dict__, "timeout": timeout})
            if cluster is not None:
                settings = Settings(**{**settings.__dict__, "cluster": cluster})
            if tls_ca:
                settings = Settings(**{**settings.__dict__, "ca_cert": tls_ca})
        else:
            settings = base

    return settings

"""Connection settings: flags, environment, profiles (YAML config file) and defaults -> Settings.

Precedence for the server: `--url`, then `--profile`, then STREAMCTL_URL / REDIS_URL, then
STREAMCTL_PROFILE, then the config file's `default` profile, then redis://localhost:6379/0.
The config file is only read when a profile may be involved, so a one-shot command with a URL
never loads YAML.
"""

from __future__ import annotations

import os
import re
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
ENV_DEBUG = "STREAMCTL_DEBUG"
ENV_NO_COLOR = "NO_COLOR"
ENV_FORCE_COLOR = "FORCE_COLOR"

DEFAULT_URL = "redis://localhost:6379/0"
DEFAULT_TIMEOUT = 5.0
MAX_TIMEOUT_SECONDS = 1_000_000  # about 11 days; sockets overflow far above
APP_NAME = "streamctl"
URL_SCHEMES = ("redis", "rediss", "unix")
PROFILE_KEYS = ("url", "username", "password", "password_env", "ca_cert", "cluster", "timeout")

# Every secret seen while resolving settings; error output is scrubbed of them.
_SECRETS: set[str] = set()


def remember_secret(secret: str | None) -> None:
    if secret and len(secret) >= 3:  # scrubbing "a" from every message helps no one
        _SECRETS.add(secret)


def scrub(text: str) -> str:
    """Mask URL passwords and every known secret in a message."""
    text = _URL_PASSWORD_RE.sub(r"\1***@", text)
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


# user:password@ in a URL; a user part with '[' is the usage text "redis://[user:pass@]host"
_URL_PASSWORD_RE = re.compile(r"((?:rediss?|unix)://[^:/@\s\[]*:)[^@\s]*@")


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***."""
    try:
        parts = urlsplit(url)
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

    @property
    def display_url(self) -> str:
        return mask_url(self.url)


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
            "rediss://... (TLS), unix:///path/to/redis.sock"
        )
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
    remember_secret(password)
    cluster = profile.get("cluster")
    return Settings(
        url=validate_url(str(profile["url"])),
        username=profile.get("username"),
        password=password,
        ca_cert=base.ca_cert or profile.get("ca_cert"),  # --tls-ca, STREAMCTL_TLS_CA, profile
        cluster=bool(cluster) if cluster is not None else base.cluster,
        timeout=float(profile.get("timeout", base.timeout)),
        profile=name,
    )


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

    remember_url_password(settings.url)
    remember_secret(settings.password)
    return settings


def remember_url_password(url: str) -> None:
    try:
        password = urlsplit(url).password
    except ValueError:
        return
    if password:
        remember_secret(password)
        remember_secret(unquote(password))

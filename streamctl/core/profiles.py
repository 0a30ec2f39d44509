"""Profiles in the YAML config file: list, show (secrets masked), add, use (the default), remove.

A profile keeps its password in the environment (`password_env`), not in the file: `add` refuses
a URL that holds a password unless asked to store it. The file is rewritten atomically, readable
by its owner only (config.save_config).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from streamctl.config import PROFILE_KEYS, load_config, mask_url, save_config, validate_url
from streamctl.core.models_health import ProfileView, RemovedProfile
from streamctl.errors import BadInput, NotFound, Refused

MASK = "***"
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def url_password(url: str) -> str | None:
    try:
        return urlsplit(url).password
    except ValueError:
        return None


def check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise BadInput(
            f"bad profile name {name!r}: use letters, digits, '.', '_' and '-' "
            "(starting with a letter or digit)"
        )
    return name


def _profiles(data: dict[str, Any]) -> dict[str, Any]:
    profiles = data.get("profiles")
    return profiles if isinstance(profiles, dict) else {}


def _require(path: Path, data: dict[str, Any], name: str) -> dict[str, Any]:
    profiles = _profiles(data)
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise NotFound(f"no profile {name!r} in {path} (profiles: {known})")
    profile = profiles[name]
    if not isinstance(profile, dict):
        raise BadInput(f"profile {name!r} in {path} must be a mapping with at least 'url'")
    return profile


def view(name: str, profile: dict[str, Any], default: str | None) -> ProfileView:
    env_name = profile.get("password_env")
    cluster = profile.get("cluster")
    timeout = profile.get("timeout")
    return ProfileView(
        name=name,
        default=name == default,
        url=mask_url(str(profile.get("url", ""))),
        username=profile.get("username"),
        password=MASK if profile.get("password") is not None else None,
        password_env=str(env_name) if env_name else None,
        password_env_set=bool(env_name) and os.environ.get(str(env_name)) is not None,
        ca_cert=profile.get("ca_cert"),
        cluster=bool(cluster) if cluster is not None else None,
        timeout=float(timeout) if timeout is not None else None,
    )


def list_profiles(path: Path) -> list[ProfileView]:
    data = load_config(path)
    default = data.get("default")
    return [
        view(str(n), p, default) for n, p in sorted(_profiles(data).items()) if isinstance(p, dict)
    ]


def show_profile(path: Path, name: str | None = None) -> ProfileView:
    """One profile (the default one when no name is given), secrets masked."""
    data = load_config(path)
    default = data.get("default")
    if name is None:
        if not default:
            raise NotFound(
                f"no default profile in {path}: "
                "name one, or set one with 'streamctl profile use NAME'"
            )
        name = str(default)
    return view(name, _require(path, data, name), default)


def add_profile(
    path: Path,
    name: str,
    *,
    url: str,
    username: str | None = None,
    password_env: str | None = None,
    ca_cert: str | None = None,
    cluster: bool | None = None,
    timeout: float | None = None,
    replace: bool = False,
    store_password: bool = False,
    make_default: bool = False,
) -> ProfileView:
    """Add (or with `replace`, overwrite) a profile. The first profile becomes the default."""
    check_name(name)
    validate_url(url)
    if url_password(url) is not None:
        if password_env:
            raise BadInput("give the password in the URL or --password-env VAR, not both")
        if not store_password:
            raise BadInput(
                f"the URL holds a password, which would be stored in plain text in {path}: "
                "remove it from the URL and give --password-env VAR (the variable that holds it), "
                "or pass --store-password to keep it in the file anyway"
            )
    if password_env is not None and not _ENV_NAME_RE.match(password_env):
        raise BadInput(
            f"bad --password-env {password_env!r}: give the name of an environment variable "
            "(e.g. PROD_REDIS_PASSWORD), not the password"
        )
    if timeout is not None and timeout <= 0:
        raise BadInput(f"bad --timeout {timeout:g}: give a number of seconds above 0")
    data = load_config(path)
    profiles = _profiles(data)
    if name in profiles and not replace:
        raise Refused(
            f"profile {name!r} already exists in {path}: rerun with --force to replace it"
        )
    profile: dict[str, Any] = {"url": url}
    for key, value in (
        ("username", username),
        ("password_env", password_env),
        ("ca_cert", ca_cert),
        ("cluster", cluster),
        ("timeout", timeout),
    ):
        if value is not None:
            profile[key] = value
    assert set(profile) <= set(PROFILE_KEYS)
    profiles[name] = profile
    data["profiles"] = profiles
    if make_default or not data.get("default") or data.get("default") not in profiles:
        data = {"default": name, **{k: v for k, v in data.items() if k != "default"}}
    save_config(path, data)
    return view(name, profile, data.get("default"))


def use_profile(path: Path, name: str) -> ProfileView:
    """Make `name` the default profile."""
    data = load_config(path)
    profile = _require(path, data, name)
    data = {"default": name, **{k: v for k, v in data.items() if k != "default"}}
    save_config(path, data)
    return view(name, profile, name)


def remove_profile(path: Path, name: str) -> RemovedProfile:
    """Remove a profile; removing the default one leaves no default."""
    data = load_config(path)
    _require(path, data, name)
    profiles = _profiles(data)
    del profiles[name]
    was_default = data.get("default") == name
    if was_default:
        del data["default"]
    save_config(path, data)
    return RemovedProfile(name, was_default)

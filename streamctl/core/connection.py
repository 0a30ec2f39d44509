"""The only place a client is built (URL, TLS, ACL, cluster) and where redis errors are mapped.

Clients speak RESP2 (pinned: reply shapes differ between protocols) and return bytes: field
values are binary-safe all the way to the output.
"""

from __future__ import annotations

from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from streamctl.config import Settings, scrub
from streamctl.errors import (
    ConnectionFailed,
    NotFound,
    ServerRefused,
    StreamctlError,
)

Client = redis.Redis


def client_kwargs(settings: Settings, *, socket_timeout: float | None | str = "default") -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "protocol": 2,
        "decode_responses": False,
        "socket_connect_timeout": settings.timeout,
        "socket_timeout": settings.timeout if socket_timeout == "default" else socket_timeout,
        # one attempt: --timeout is the whole wait, and a refused connection fails at once
        "retry": Retry(NoBackoff(), 0),
        "driver_info": None,  # skip CLIENT SETINFO: round trips a one-shot command does not need
    }
    if settings.username:
        kwargs["username"] = settings.username
    if settings.password is not None:
        kwargs["password"] = settings.password
    if settings.url.startswith("rediss://") and settings.ca_cert:
        kwargs["ssl_ca_certs"] = settings.ca_cert
    return kwargs


def connect(settings: Settings, *, socket_timeout: float | None | str = "default") -> Client:
    """A client for the settings. Nothing is sent until the first command.

    `socket_timeout=None` is for blocking reads, whose BLOCK must not be cut by --timeout.
    """
    kwargs = client_kwargs(settings, socket_timeout=socket_timeout)
    if settings.cluster:
        from redis.cluster import RedisCluster

        kwargs.pop("retry", None)
        return RedisCluster.from_url(settings.url, **kwargs)  # type: ignore[no-any-return]
    try:
        return redis.Redis.from_url(settings.url, **kwargs)
    except ValueError as exc:
        from streamctl.errors import BadInput

        raise BadInput(f"bad URL {settings.display_url}: {scrub(str(exc))}") from None


def server_time_ms(client: Client) -> int:
    """The server's clock (TIME) in milliseconds: durations are measured on it, not ours."""
    sec, usec = client.time()
    return int(sec) * 1000 + int(usec) // 1000


def server_version(client: Client) -> tuple[str, tuple[int, ...]]:
    """('redis' | 'valkey', (major, minor, patch))."""
    info = client.info("server")
    if "valkey_version" in info:
        name, text = "valkey", str(info["valkey_version"])
    else:
        name, text = "redis", str(info.get("redis_version", "0"))
    parts = tuple(int(p) for p in text.split(".")[:3] if p.isdigit())
    return name, parts


def describe_target(settings: Settings | None) -> str:
    return settings.display_url if settings else "the server"


def translate_error(exc: BaseException, settings: Settings | None = None) -> StreamctlError | None:
    """Map a redis-py exception to the error kind (and so the exit code) the SPEC gives it."""
    if isinstance(exc, StreamctlError):
        return exc
    if not isinstance(exc, redis.RedisError):
        if isinstance(exc, ConnectionRefusedError | TimeoutError):
            return ConnectionFailed(f"cannot connect to {describe_target(settings)}: {exc}")
        return None
    text = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    target = describe_target(settings)
    if isinstance(exc, redis.AuthenticationError | redis.exceptions.AuthenticationWrongNumberOfArgsError):
        return ConnectionFailed(f"authentication failed at {target}: {text}")
    if isinstance(exc, redis.exceptions.NoPermissionError) or text.startswith("NOPERM"):
        return ServerRefused(f"permission denied: {text}")
    if isinstance(exc, redis.TimeoutError):
        return ConnectionFailed(f"the server at {target} timed out: {text}")
    if isinstance(exc, redis.ConnectionError):
        lowered = text.lower()
        if "auth" in lowered or "password" in lowered:
            return ConnectionFailed(f"authentication failed at {target}: {text}")
        return ConnectionFailed(f"cannot connect to {target}: {text}")
    if isinstance(exc, redis.ResponseError):
        if text.startswith("NOGROUP"):
            return NotFound(text)
        if text.startswith(("WRONGPASS", "NOAUTH")):
            return ConnectionFailed(f"authentication failed at {target}: {text}")
        return ServerRefused(f"the server refused: {text}")
    return ServerRefused(f"{type(exc).__name__}: {text}")

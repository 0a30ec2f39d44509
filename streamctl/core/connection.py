"""The only place a client is built (URL, TLS, ACL, cluster) and where redis errors are mapped.

Clients speak RESP2 (pinned: reply shapes differ between protocols) and return bytes: field
values are binary-safe all the way to the output.

Security rules kept here: a password never reaches a message (every text goes through `scrub`),
a CA given for `rediss://` is checked before the first connection (a missing or unreadable file is
bad input, exit 2) and a certificate the CA does not vouch for is a one-line exit 3 naming where
to give the right CA. A NOPERM reply names the command, the key and the ACL user it refused.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
import weakref
from collections.abc import Iterator
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster  # loaded by `import redis` anyway: no start-up cost
from redis.connection import (
    Connection,
    ConnectionPool,
    DefaultParser,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.exceptions import (
    AskError,
    AuthenticationWrongNumberOfArgsError,
    ClusterCrossSlotError,
    ClusterDownError,
    MovedError,
    NoPermissionError,
    RedisClusterException,
    TryAgainError,
)
from redis.retry import Retry
from redis.sentinel import (
    MasterNotFoundError,
    SentinelManagedConnection,
    SentinelManagedSSLConnection,
)

from streamctl.config import SentinelTarget, Settings, scrub, sentinel_target
from streamctl.errors import (
    BadInput,
    ConnectionFailed,
    NotFound,
    ServerRefused,
    StreamctlError,
)

Client = redis.Redis

# A timeout this long is no timeout (socket.settimeout overflows past ~1e10 s).
MAX_TIMEOUT = 1e9
CA_SOURCES = "--tls-ca, STREAMCTL_TLS_CA or the profile's ca_cert"


# ---- connections: remember what was sent, so a NOPERM can say what it refused ----


class _SentTracking:
    """Keeps a reference to the last packed buffer sent (no copy, no parsing on the hot path).

    The NOPERM-naming parser is the default of these connections: RedisCluster passes no
    `parser_class` to the pools of its nodes, only the connection class."""

    _streamctl_sent: Any = None
    # A reply was read on this connection (the pool reconnects the same object): a failure from
    # then on, reconnecting included, is a lost connection, not a failure to connect (see
    # `mark_lost`); only a connection that never answered gets the "cannot connect" wording.
    _streamctl_replied = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parser_class", _Parser)
        super().__init__(*args, **kwargs)

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        self._streamctl_sent = command
        established = self._streamctl_replied
        try:
            super().send_packed_command(command, check_health)  # type: ignore[misc]
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if established:
                mark_lost(exc)
            raise

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        established = self._streamctl_replied
        try:
            reply = super().read_response(*args, **kwargs)  # type: ignore[misc]
        except redis.ResponseError:
            self._streamctl_replied = True  # an error reply is a reply
            raise
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if established:
                mark_lost(exc)
            raise
        self._streamctl_replied = True
        return reply

    def connect(self) -> None:
        established = self._streamctl_replied
        try:
            super().connect()  # type: ignore[misc]
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if established:
                mark_lost(exc)
            raise


def mark_lost(exc: BaseException) -> BaseException:
    """Mark a connection error as the loss of a connection that had already answered (the
    server died or closed it mid-run), so it is worded "lost the connection to URL" rather
    than "cannot connect to URL". Returns `exc`."""
    with contextlib.suppress(AttributeError, TypeError):
        exc._streamctl_lost = True  # type: ignore[attr-defined]
    return exc


def connection_answered(conn: Any) -> bool:
    """True when a reply was already read on this connection."""
    return bool(getattr(conn, "_streamctl_replied", False))


def note_answered(conn: Any) -> None:
    """Record that a reply was read on `conn` by a reader of its own (bulk paths read the
    socket with hiredis, not through read_response)."""
    if conn is not None and getattr(conn, "_sock", None) is not None:
        conn._streamctl_replied = True


class _Connection(_SentTracking, Connection):
    pass


class _UnixConnection(_SentTracking, UnixDomainSocketConnection):
    pass


class _TLSConnection(_SentTracking, SSLConnection):
    """TLS 1.3 servers send session tickets after the handshake. Until a reply is read they sit
    unread on the socket, and redis-py's pool takes that for a dirty connection ("Connection not
    ready"). One round trip consumes them; with AUTH or SELECT that round trip already happened."""

    def on_connect_check_health(self, check_health: bool = True) -> None:
        super().on_connect_check_health(check_health=check_health)
        if self.username or self.password or self.db or self.client_name:
            return
        self.send_command("PING", check_health=False)  # type: ignore[no-untyped-call]
        with contextlib.suppress(redis.ResponseError):
            self.read_response()  # a user without +ping still consumed the tickets


class _Parser(DefaultParser):  # type: ignore[misc,valid-type]
    """The default parser, with NOPERM errors naming the refused command, key and ACL user.

    parse_error runs only for error replies: success paths pay nothing.
    """

    _owner: Any = None

    def on_connect(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        self._owner = weakref.ref(connection)
        super().on_connect(connection, *args, **kwargs)

    def parse_error(self, response: str) -> Any:
        exc = super().parse_error(response)
        if isinstance(exc, NoPermissionError):
            try:
                owner = self._owner() if self._owner is not None else None
                exc = NoPermissionError(
                    f"NOPERM {exc}{_noperm_context(owner)}", status_code="NOPERM"
                )
            except Exception:  # noqa: BLE001 - the context is a courtesy, never a new failure
                pass
        return exc


def _noperm_context(conn: Any) -> str:
    parts: list[str] = []
    commands = _packed_commands(getattr(conn, "_streamctl_sent", None))
    described = {_describe_command(args) for args in commands}
    described.discard("")
    if len(described) == 1:
        parts.append(described.pop())
    username = getattr(conn, "username", None)
    parts.append(f"user {_show(username) if username else repr('default')}")
    return " (" + ", ".join(parts) + ")"


def _show(value: bytes | str) -> str:
    text = value.decode("utf-8", "backslashreplace") if isinstance(value, bytes) else value
    if len(text) > 80:
        text = text[:77] + "..."
    return repr(text)


_NO_KEY = {
    b"PING", b"INFO", b"TIME", b"SCAN", b"CONFIG", b"ACL", b"CLIENT", b"HELLO", b"AUTH",
    b"SELECT", b"COMMAND", b"DBSIZE", b"FLUSHALL", b"FLUSHDB", b"CLUSTER", b"KEYS", b"MULTI",
    b"EXEC", b"PUBLISH", b"SUBSCRIBE", b"PSUBSCRIBE", b"SSUBSCRIBE", b"EVAL", b"EVALSHA",
    b"FCALL", b"SCRIPT", b"FUNCTION", b"DEBUG", b"SHUTDOWN", b"SAVE", b"BGSAVE", b"MONITOR",
}  # fmt: skip
_SUBCOMMAND_KEY = {b"XINFO", b"XGROUP", b"OBJECT", b"MEMORY"}


def _describe_command(args: list[bytes]) -> str:
    """'XRANGE 'orders'' for a command's name and first key; never any other argument (values
    may be private, and AUTH's are secret)."""
    if not args:
        return ""
    name = args[0].upper()
    if name in _NO_KEY:
        return name.decode("ascii", "replace")
    if name in _SUBCOMMAND_KEY:
        label = b" ".join(args[:2]).upper().decode("ascii", "replace")
        return f"{label} {_show(args[2])}" if len(args) > 2 else label
    if name in (b"XREAD", b"XREADGROUP"):
        upper = [a.upper() for a in args]
        if b"STREAMS" in upper:
            keys = args[upper.index(b"STREAMS") + 1 :]
            keys = keys[: len(keys) // 2]
            return f"{name.decode()} " + ", ".join(_show(k) for k in keys[:3])
        return name.decode()
    label = name.decode("ascii", "replace")
    return f"{label} {_show(args[1])}" if len(args) > 1 else label


def _packed_commands(packed: Any, limit: int = 10_000) -> list[list[bytes]]:
    """The commands (name and arguments) in a RESP-packed buffer, for error messages."""
    if packed is None:
        return []
    from streamctl.core import resp

    parts = packed if isinstance(packed, list | tuple) else [packed]
    return resp.commands(b"".join(bytes(p) for p in parts), limit)


# ---- building clients ----


def _timeout(value: float) -> float | None:
    if math.isnan(value) or value <= 0:
        raise BadInput(f"bad --timeout {value}: give a number of seconds above 0")
    return None if value >= MAX_TIMEOUT else value


def check_ca_file(path: str) -> None:
    """A CA bundle that cannot be used is the user's input to fix (exit 2), not a network error."""
    import ssl

    if not os.path.isfile(path):
        raise BadInput(f"CA file {path!r} ({CA_SOURCES}) does not exist or is not a file")
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        reason = exc.reason or str(exc)
        raise BadInput(
            f"CA file {path!r} ({CA_SOURCES}) holds no usable certificate: {reason}"
        ) from None
    except OSError as exc:
        raise BadInput(f"cannot read CA file {path!r} ({CA_SOURCES}): {exc.strerror}") from None


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def client_kwargs(
    settings: Settings, *, socket_timeout: float | None | str = "default"
) -> dict[str, Any]:
    timeout = _timeout(settings.timeout)
    kwargs: dict[str, Any] = {
        "protocol": 2,
        "decode_responses": False,
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout if socket_timeout == "default" else socket_timeout,
        # one attempt: --timeout is the whole wait, and a refused connection fails at once
        "retry": Retry(NoBackoff(), 0),
        "driver_info": None,  # skip CLIENT SETINFO: round trips a one-shot command does not need
    }
    if settings.username:
        kwargs["username"] = settings.username
    if settings.password is not None:
        kwargs["password"] = settings.password
    scheme = _scheme(settings.url)
    if scheme == "rediss" and settings.ca_cert:
        check_ca_file(settings.ca_cert)
        kwargs["ssl_ca_certs"] = settings.ca_cert
    kwargs["parser_class"] = _Parser
    kwargs["connection_class"] = {
        "rediss": _TLSConnection,
        "unix": _UnixConnection,
    }.get(scheme, _Connection)
    return kwargs


# URL query options a user may set (`?db=1`, `?ssl_cert_reqs=none`); the others would override
# what streamctl relies on (protocol 2, --timeout, no retries) or are not options at all.
URL_OPTIONS = (
    "db",
    "client_name",
    "socket_keepalive",
    "ssl_cert_reqs",
    "ssl_check_hostname",
    "ssl_min_version",
)


def check_url(settings: Settings) -> None:
    """What redis-py would ignore silently (a database that is not a number) or fail on at the
    first command with a TypeError (an unknown query option) is a bad URL: exit 2, named."""
    from urllib.parse import parse_qsl, unquote, urlsplit

    if sentinel_target(settings) is not None:  # read (and refused when bad) by sentinel_target
        return
    try:
        parts = urlsplit(settings.url)
        parts.port  # noqa: B018 - raises ValueError for 'host:notaport' and ports over 65535
    except ValueError as exc:
        raise BadInput(
            f"bad URL {describe_target(settings)}: {scrub(str(exc), settings.secrets)}"
        ) from None
    if parts.scheme in ("redis", "rediss"):
        db = unquote(parts.path).strip("/")
        if db and not (db.isascii() and db.isdigit()):
            raise BadInput(
                f"bad URL {describe_target(settings)}: the database after the port must be a "
                "number, as in redis://host:6379/0"
            )
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if name not in URL_OPTIONS:
            raise BadInput(
                f"bad URL {describe_target(settings)}: option {name!r} is not accepted "
                f"(accepted: {', '.join(URL_OPTIONS)}; the timeout is --timeout)"
            )


def connect(settings: Settings, *, socket_timeout: float | None | str = "default") -> Client:
    """A client for the settings. Nothing is sent until the first command.

    `settings.cluster` True builds a RedisCluster (which reads the slot map at once); False a
    client for one server; None (detect) a client for one server that finds out at its first
    routed command whether the server is a Redis Cluster node (see `_detect`).
    `socket_timeout=None` is for blocking reads, whose BLOCK must not be cut by --timeout.
    """
    check_url(settings)
    kwargs = client_kwargs(settings, socket_timeout=socket_timeout)
    target = sentinel_target(settings)
    if target is not None:
        return _sentinel_client(settings, target, kwargs)
    try:
        if settings.cluster:
            cluster = _cluster_client(settings, kwargs)
            _own(cluster, settings, "cluster")
            return cluster
        client = cast(_Client, _Client.from_url(settings.url, **kwargs))
    except ValueError as exc:
        raise BadInput(
            f"bad URL {describe_target(settings)}: {scrub(str(exc), settings.secrets)}"
        ) from None
    if settings.cluster is None:
        client._streamctl_detect = (settings, kwargs)
        _own(client, settings, "detected-plain")
    else:
        _own(client, settings, "forced-plain")
    return client


def _own(client: object, settings: Settings | None, mode: str) -> None:
    """Let the client carry the settings it was built with (see `settings_of`) and how it
    reaches the server (see `mode_of`)."""
    with contextlib.suppress(AttributeError, TypeError):
        if settings is not None:
            client._streamctl_settings = settings  # type: ignore[attr-defined]
        client._streamctl_mode = mode  # type: ignore[attr-defined]


def settings_of(client: object) -> Settings | None:
    """The settings `client` was built with (by `connect`, or the client of one of its nodes):
    what an error raised by this client is described with (`translate_error(exc,
    settings_of(client))`). None for a client built elsewhere."""
    settings = getattr(client, "_streamctl_settings", None)
    return settings if isinstance(settings, Settings) else None


# ---- Redis Sentinel ----
#
# The client of a Sentinel-managed primary is redis-py's master_for client: its pool asks the
# Sentinels (each in turn, any may be down) for the primary's address whenever it opens a
# connection, so a connection lost in a failover, or one the demoted primary answers with
# READONLY (redis-py turns that into a ConnectionError and drops the connection), reconnects to
# the new primary at the next command. Our connection classes (NOPERM naming, the "lost the
# connection" wording) are mixed into redis-py's Sentinel-managed ones.


class _SentinelConnection(_SentTracking, SentinelManagedConnection):
    pass


class _SentinelTLSConnection(_SentTracking, SentinelManagedSSLConnection):
    on_connect_check_health = _TLSConnection.on_connect_check_health


def _sentinel_client(settings: Settings, target: SentinelTarget, kwargs: dict[str, Any]) -> Client:
    if settings.cluster:
        raise BadInput(
            f"{describe_target(settings)} names a Sentinel-managed primary, not a Redis "
            "Cluster: drop --cluster (or the profile's cluster: true)"
        )
    from redis.sentinel import Sentinel

    options = dict(kwargs)
    options.pop("username", None)
    options.pop("password", None)
    options.pop("ssl_ca_certs", None)
    if target.username:
        options["username"] = target.username
    if target.password is not None:
        options["password"] = target.password
    if target.db:
        options["db"] = target.db
    if target.tls:
        options["connection_class"] = _SentinelTLSConnection
        if settings.ca_cert:
            options["ssl_ca_certs"] = settings.ca_cert
    else:
        options["connection_class"] = _SentinelConnection
    timeout = _timeout(settings.timeout)
    sentinel_kwargs: dict[str, Any] = {
        "protocol": 2,
        "socket_connect_timeout": timeout,
        "socket_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "driver_info": None,
    }
    if settings.sentinel_password is not None:
        sentinel_kwargs["password"] = settings.sentinel_password
    manager = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_kwargs)  # type: ignore[no-untyped-call]
    client = cast(
        _Client,
        manager.master_for(target.master, redis_class=_Client, **options),  # type: ignore[no-untyped-call]
    )
    client._streamctl_sentinel = (manager, target)
    _own(client, settings, "sentinel")
    return client


def sentinel_of(client: object) -> tuple[Any, SentinelTarget] | None:
    """(redis-py's Sentinel manager, the target) behind a Sentinel-managed client, else None."""
    found = getattr(client, "_streamctl_sentinel", None)
    return found if isinstance(found, tuple) else None


# What a primary demoted in a failover answers to a command it was running or blocked in (the
# keys it held vanish while it loads the new primary's data): the primary moved, not a refusal.
_DEMOTED_REPLIES = ("NOGROUP", "UNBLOCKED", "READONLY")


def demoted_error(conn: Any, exc: BaseException) -> BaseException | None:
    """A lost-connection error (retried like one) when `exc`, an error reply read on `conn`,
    came from a server that is no longer a primary (asked with ROLE on the same connection);
    None otherwise, and when ROLE cannot be asked."""
    if not str(exc).startswith(_DEMOTED_REPLIES) and not isinstance(exc, redis.ReadOnlyError):
        return None
    try:
        conn.send_command("ROLE", check_health=False)
        role = conn.read_response()
    except redis.ResponseError:  # ROLE refused (ACL): the reply stands as it is
        return None
    except redis.RedisError:  # the demoted server closed the connection after its reply
        role = None
    if isinstance(role, list) and role and role[0] == b"master":
        return None
    conn.disconnect()
    return mark_lost(
        redis.ConnectionError(f"the server is no longer the primary (a failover): {exc}")
    )


def primary_address(client: Client) -> tuple[str, int] | None:
    """The primary's (host, port) as the Sentinels report it now; None when not through
    Sentinel."""
    found = sentinel_of(client)
    if found is None:
        return None
    manager, target = found
    host, port = manager.discover_master(target.master)
    return str(host), int(port)


# ---- Redis Cluster: detection, the client, routing ----
#
# Cluster specifics live here. Core code sends its raw commands to `node_client(client, key)`
# or `route(client, args)` (the node owning the key's slot; the client itself on a single
# server), fans out with `primaries(client)` (SCAN is per node) and groups multi-key reads with
# `slot_groups`. Never a redis-py command on the client itself when it acts on a key: on a
# cluster found by detection the client is the first node's.
# A MOVED/ASK reply (a slot moving while the command runs: the cluster is resharding) is
# followed on the raw paths (`redirect_target`): MOVED reads the slot map again and resends to
# the new owner, ASK sends ASKING then the command to the node named, once. On a single server
# (--no-cluster, or a cluster that was not detected) it is reported in one line (exit 3).

# How a client reaches its server, worded into MOVED messages: "forced-plain" (--no-cluster),
# "detected-plain" or "cluster". Each client carries its own (two clients, as in replay
# --target-url, never share one).


def mode_of(client: object | None, settings: Settings | None = None) -> str:
    """The client's mode; without a client, the one its settings ask for."""
    mode = getattr(client, "_streamctl_mode", None)
    if isinstance(mode, str):
        return mode
    if settings is not None and settings.cluster is not None:
        return "cluster" if settings.cluster else "forced-plain"
    return "detected-plain"


class _Client(redis.Redis):
    """The client of one server, which may turn out to be a Redis Cluster node.

    Detection is lazy: the first routed command (`node_client`, `route`, `primaries`, ...) first
    sends `INFO cluster` on this client's pool (one round trip; the connection is then reused by
    the command). A failure there (server down, timeout) is the command's own failure, reported
    as it would be, and the next routed command detects again. On a cluster node the routing
    helpers then use a RedisCluster built with the same options."""

    _streamctl_detect: tuple[Settings, dict[str, Any]] | None = None
    _streamctl_cluster: Any = None
    _streamctl_mode: str | None = None
    _streamctl_sentinel: tuple[Any, SentinelTarget] | None = None

    def close(self) -> None:
        if self._streamctl_cluster is not None:
            self._streamctl_cluster.close()
        if self._streamctl_sentinel is not None:
            self._streamctl_sentinel[0].close()
        super().close()


def _detect(client: _Client) -> None:
    assert client._streamctl_detect is not None
    settings, kwargs = client._streamctl_detect
    if not _cluster_enabled(client, settings):
        client._streamctl_detect = None
        return
    if _scheme(settings.url) == "unix":
        raise ConnectionFailed(
            f"{describe_target(settings)} is a Redis Cluster node: reach the cluster over TCP "
            "(redis://host:port or rediss://), not a unix socket"
        )
    client._streamctl_cluster = _cluster_client(settings, kwargs)
    _own(client._streamctl_cluster, settings, "cluster")
    client._streamctl_detect = None
    client._streamctl_mode = "cluster"


def _cluster_enabled(client: Client, settings: Settings) -> bool:
    """One `INFO cluster` on the client's pool. A user whose ACL refuses INFO is taken for a
    single server (a cluster then answers MOVED, and the message says to give --cluster)."""
    pool = client.connection_pool
    try:
        conn: Any = pool.get_connection()
    except redis.ResponseError as exc:
        if "cluster mode" in str(exc):  # a database in the URL: SELECT refused by a cluster
            return True
        raise
    try:
        conn.send_command("INFO", "cluster", check_health=False)
        reply = conn.read_response(timeout=_timeout(settings.timeout))
    except redis.ResponseError:
        return False
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    return isinstance(reply, bytes) and b"cluster_enabled:1" in reply


_OUR_CONNECTIONS: dict[type, type] = {Connection: _Connection, SSLConnection: _TLSConnection}


class _NodePool(ConnectionPool):
    """The pool of each cluster node. RedisCluster puts redis-py's own connection class in the
    pool options for rediss:// URLs: the nodes use ours (TLS tickets, NOPERM naming) instead."""

    def __init__(self, connection_class: type = Connection, *args: Any, **kwargs: Any) -> None:
        super().__init__(_OUR_CONNECTIONS.get(connection_class, connection_class), *args, **kwargs)


def _cluster_client(settings: Settings, kwargs: dict[str, Any]) -> Client:
    """A RedisCluster with the same protocol, bytes, timeouts, TLS and ACL options, no retries
    (--timeout stays the whole wait). Building it reads the slot map (CLUSTER SLOTS)."""
    scheme = _scheme(settings.url)
    if scheme == "unix":
        raise BadInput(
            f"bad URL {describe_target(settings)}: a Redis Cluster is reached over TCP "
            "(redis://host:port or rediss://), not a unix socket"
        )
    from redis.connection import parse_url

    db = parse_url(settings.url).get("db") or 0  # type: ignore[no-untyped-call]
    if db:
        raise BadInput(
            f"bad URL {describe_target(settings)}: a Redis Cluster has only database 0 "
            f"(drop /{db} from the URL)"
        )
    options = {k: v for k, v in kwargs.items() if k not in ("retry", "parser_class")}
    options["connection_pool_class"] = _NodePool
    cluster = RedisCluster(url=settings.url, retry=Retry(NoBackoff(), 0), **options)
    return cluster  # type: ignore[return-value]


def _as_cluster(client: object) -> Any:
    """The RedisCluster behind the client (redis-py leaves its methods untyped), or None for a
    single server. Detects the mode first when it is not known yet."""
    if type(client) is _Client:
        if client._streamctl_detect is not None:
            _detect(client)
        return client._streamctl_cluster
    return client if isinstance(client, RedisCluster) else None


def is_cluster(client: Client) -> bool:
    """True for a Redis Cluster (detected, forced, or a RedisCluster given)."""
    return _as_cluster(client) is not None


def node_client(client: Client, key: str | bytes) -> Client:
    """The client of the node owning `key`'s slot (a plain redis.Redis with its own pool); the
    client itself on a single server."""
    cluster = _as_cluster(client)
    if cluster is None:
        return client
    node_redis: Client = cluster.get_redis_connection(cluster.get_node_from_key(key))
    _own(node_redis, settings_of(client), "cluster")
    return node_redis


def default_node(client: Client) -> Client:
    """Where keyless commands go (TIME, INFO): the client, or one primary of a cluster."""
    cluster = _as_cluster(client)
    if cluster is None:
        return client
    node_redis: Client = cluster.get_redis_connection(cluster.get_default_node())
    _own(node_redis, settings_of(client), "cluster")
    return node_redis


def primaries(client: Client) -> list[Client]:
    """Every primary's client (SCAN is per node); [client] on a single server."""
    cluster = _as_cluster(client)
    if cluster is None:
        return [client]
    nodes: list[Client] = [cluster.get_redis_connection(n) for n in cluster.get_primaries()]
    for node_redis in nodes:
        _own(node_redis, settings_of(client), "cluster")
    return nodes


def key_slot(client: Client, key: str | bytes) -> int:
    """The key's hash slot on a cluster; 0 for every key on a single server."""
    cluster = _as_cluster(client)
    return 0 if cluster is None else int(cluster.keyslot(key))


def slot_groups(client: Client, keys: list[str]) -> list[tuple[Client, list[str]]]:
    """The keys grouped by slot (a multi-key XREAD must stay in one slot, even on one node),
    each group with its node's client, in the order the keys were given. One group holding
    every key on a single server."""
    cluster = _as_cluster(client)
    if cluster is None:
        return [(client, list(keys))]
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(int(cluster.keyslot(key)), []).append(key)
    return [(node_client(client, names[0]), names) for names in groups.values()]


def hash_tag(key: str) -> str | None:
    """The key's hash tag (the text between its first `{` and the next `}`, when not empty):
    keys with the same tag share a slot. None when the whole key is hashed."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    return key[start + 1 : end] if end > start + 1 else None


def same_slot_key(key: str, name: str) -> str:
    """A key named after `name` in the same slot as `key` on any cluster (`name:{tag}`, the tag
    being key's own hash tag, or key itself when it has none and can be a tag)."""
    from redis.crc import key_slot

    tag = hash_tag(key)
    if tag is None and "}" not in key and key:
        tag = key
    if tag is None:  # a key like 'a}b' cannot be written as a tag: find a tag with its slot
        slot = key_slot(key.encode("utf-8", "surrogateescape"))
        n = 0
        while key_slot(str(n).encode()) != slot:
            n += 1
        tag = str(n)
    return f"{name}:{{{tag}}}"


def same_slot(client: Client, *keys: str) -> bool:
    """True when the keys share a slot (a script or MULTI may touch them together); always on
    a single server."""
    cluster = _as_cluster(client)
    return cluster is None or len({int(cluster.keyslot(k)) for k in keys}) <= 1


# Commands whose key is their third argument (after the subcommand).
_SUBCOMMAND_KEYED = {b"XINFO", b"XGROUP", b"MEMORY", b"OBJECT"}
_KEYLESS = _NO_KEY - {b"EVAL", b"EVALSHA", b"FCALL"}


def command_key(args: tuple[Any, ...] | list[Any]) -> Any:
    """The key a raw command acts on (the one it is routed by), or None for a keyless one."""
    if not args:
        return None
    name = args[0]
    upper = (name if isinstance(name, bytes) else str(name).encode()).upper()
    if upper in _SUBCOMMAND_KEYED:
        return args[2] if len(args) > 2 else None
    if upper in (b"XREAD", b"XREADGROUP"):
        for i, arg in enumerate(args):
            if (
                isinstance(arg, str | bytes)
                and len(arg) == 7
                and arg.upper() in ("STREAMS", b"STREAMS")
            ):
                return args[i + 1] if i + 1 < len(args) else None
        return None
    if upper in (b"EVAL", b"EVALSHA"):
        return args[3] if len(args) > 3 and int(args[2]) > 0 else None
    if upper in _KEYLESS:
        return None
    return args[1] if len(args) > 1 else None


def route(client: Client, args: tuple[Any, ...] | list[Any]) -> Client:
    """The node client for a raw command (by its key; keyless ones go to the default node)."""
    if _as_cluster(client) is None:
        return client
    key = command_key(args)
    return default_node(client) if key is None else node_client(client, key)


REDIRECTS = ("MOVED", "ASK", "TRYAGAIN", "CLUSTERDOWN", "CROSSSLOT")
_REDIRECT_CLASSES: tuple[tuple[type[BaseException], str], ...] = (
    (MovedError, "MOVED"),  # before AskError, its base class
    (AskError, "ASK"),
    (TryAgainError, "TRYAGAIN"),
    (ClusterDownError, "CLUSTERDOWN"),
    (ClusterCrossSlotError, "CROSSSLOT"),
)


def redirect_word(exc: BaseException) -> str | None:
    """MOVED, ASK, TRYAGAIN, CLUSTERDOWN or CROSSSLOT for a cluster's refusal to run a command
    on this node (not a verdict on the command itself); None for any other error."""
    for cls, word in _REDIRECT_CLASSES:
        if isinstance(exc, cls):
            return word
    if not isinstance(exc, redis.ResponseError) and type(exc).__name__ != "ReplyError":
        return None  # hiredis.ReplyError: an error reply read by the bulk paths' own reader
    text = str(exc)
    if text.startswith("SELECT is not allowed in cluster mode"):
        return "SELECT"  # on connecting with a database in the URL (--no-cluster)
    word = text.split(" ", 1)[0]
    return word if word in REDIRECTS else None


def redirect_error(
    exc: BaseException, settings: Settings | None = None, *, client: object | None = None
) -> StreamctlError | None:
    """One line for a MOVED/ASK/TRYAGAIN/CLUSTERDOWN/CROSSSLOT reply (a redis-py exception or a
    hiredis ReplyError), worded by how `client` (the one that got the reply) was built:
    --no-cluster against a cluster, a cluster that was not detected, or a cluster moving slots
    while the command ran."""
    word = redirect_word(exc)
    if word is None:
        return None
    text = _first_line(exc)
    if not text.startswith(word):
        text = f"{word} {text}"  # redis-py drops the word from MOVED/ASK/... messages
    settings = settings or settings_of(client)
    mode = mode_of(client, settings)
    target = describe_target(settings)
    if word == "SELECT":
        return BadInput(
            f"bad URL {target}: it is a Redis Cluster node, and a cluster has only database 0 "
            "(drop the database from the URL)"
        )
    if mode == "forced-plain" and word != "CLUSTERDOWN":
        return ConnectionFailed(
            f"{target} is a Redis Cluster node ({text}): drop --no-cluster (or the profile's "
            "cluster: false) so that each key is sent to the node that owns it"
        )
    if mode == "detected-plain" and word != "CLUSTERDOWN":
        return ConnectionFailed(
            f"{target} is a Redis Cluster node ({text}): give --cluster (or cluster: true in "
            "the profile)"
        )
    if word == "CLUSTERDOWN":
        return ConnectionFailed(f"the cluster at {target} is down: {text}")
    if word == "CROSSSLOT":
        return ServerRefused(f"the cluster at {target} refused keys in different slots: {text}")
    if word == "TRYAGAIN":
        return ConnectionFailed(
            f"the cluster at {target} is moving slots ({text}): the command's keys were still "
            f"split between two nodes after {TRY_AGAIN_FOR_S:g}s of retries; rerun it once the "
            "migration is over"
        )
    return ConnectionFailed(
        f"the cluster at {target} is moving slots ({text}): a slot changed node while the "
        "command ran; rerun it"
    )


MAX_REDIRECTS = 5  # MOVED/ASK replies followed for one command before it is reported


def redirect_target(client: Client, exc: BaseException) -> tuple[Client, bool] | None:
    """Where to resend a command that got the MOVED or ASK reply `exc` (a redis-py exception or
    a hiredis ReplyError), `client` being the one it was routed with: (the node's client, True
    when ASKING must be sent before the command). MOVED reads the slot map again (the slot is
    then owned by the node the reply names, even when the node asked has not learned it yet);
    ASK leaves the map alone. None on a single server, for any other error, and when the node
    named is not part of the cluster: the reply is then reported (redirect_error)."""
    word = redirect_word(exc)
    if word not in ("MOVED", "ASK"):
        return None
    cluster = _as_cluster(client)
    if cluster is None:
        return None
    parts = _first_line(exc).split()
    if parts and parts[0] == word:
        parts = parts[1:]  # hiredis keeps the word, redis-py drops it
    if len(parts) != 2 or not parts[0].isdigit():
        return None
    host, _, port_text = parts[1].rpartition(":")
    if not host or host == "?" or not port_text.isdigit():
        return None
    manager = cluster.nodes_manager
    if word == "MOVED":
        promoted = _watching_promotions(cluster) and _replica_promoted(
            cluster, int(parts[0]), f"{host}:{port_text}"
        )
        manager.initialize()
        manager.move_slot(MovedError(f"{parts[0]} {host}:{port_text}"))
        if promoted:
            raise mark_lost(
                redis.ConnectionError(
                    f"the primary of slot {parts[0]} was replaced by its replica "
                    f"{host}:{port_text} (a failover)"
                )
            )
    node = manager.get_node(host=host, port=int(port_text))
    if node is None:
        manager.initialize()
        node = manager.get_node(host=host, port=int(port_text))
        if node is None:
            return None
    node_redis: Client = cluster.get_redis_connection(node)
    _own(node_redis, settings_of(client), "cluster")
    return node_redis, word == "ASK"


TRY_AGAIN_FOR_S = 2.0  # how long a TRYAGAIN reply is retried before it is reported
TRY_AGAIN_FIRST_S = 0.01  # the first wait; each next one doubles, up to TRY_AGAIN_MAX_S
TRY_AGAIN_MAX_S = 0.25


class TryAgain:
    """The retry of one command answered TRYAGAIN: during a slot migration a multi-key command
    (a script on a stream and its DLQ, XREAD of several streams with one hash tag) whose keys are
    split between the two nodes cannot run until the rest have moved; it is sent again (routed
    afresh) after a short doubling wait, for up to TRY_AGAIN_FOR_S, then reported."""

    def __init__(self, sleep: Any = None) -> None:
        import time

        self.clock = time.monotonic
        self.sleep = sleep or time.sleep
        self.started: float | None = None
        self.attempt = 0

    def wait(self, client: object, exc: BaseException) -> bool:
        """After the reply `exc` to a command sent with `client`: True once the wait before
        sending it again is over; False when it is not a TRYAGAIN on a cluster, or time is up
        (the reply is then reported as it is)."""
        if redirect_word(exc) != "TRYAGAIN" or _as_cluster(client) is None:
            return False
        now = self.clock()
        if self.started is None:
            self.started = now
        left = TRY_AGAIN_FOR_S - (now - self.started)
        if left <= 0:
            return False
        self.sleep(min(TRY_AGAIN_MAX_S, TRY_AGAIN_FIRST_S * 2.0**self.attempt, left))
        self.attempt += 1
        return True


# ---- Redis Cluster: a replica promoted in its primary's place (CLUSTER FAILOVER) ----
#
# The demoted primary answers MOVED to the replica that replaced it (Valkey also to the reads it
# had blocked; Redis answers those UNBLOCKED, see `demoted_error`). Reads follow it like any
# MOVED. A writer cannot: replication is asynchronous, so the writes the old primary
# acknowledged last may be missing on the new one, and what it lacks must be found before
# anything else is written there (core/failover.py). Inside `promotions_as_lost` such a MOVED is
# raised as a lost connection instead, the slot map already read again.


def _replica_promoted(cluster: Any, slot: int, target: str) -> bool:
    """True when the MOVED reply naming `target` for `slot` is a promotion, not a slot migration:
    the slot map (before it is read again) lists `target` as a replica of the slot's primary, or
    that primary is no longer one (CLUSTER SLOTS leaves out a replica that has not reported its
    replication offset yet: it is asked with ROLE; one that does not answer counts as demoted)."""
    nodes = cluster.nodes_manager.slots_cache.get(slot) or []
    if not nodes or nodes[0].name == target:
        return False
    if any(n.name == target for n in nodes[1:]):
        return True
    try:
        role = cluster.get_redis_connection(nodes[0]).execute_command("ROLE")
    except redis.ResponseError:  # ROLE refused (ACL): taken for a migration, followed
        return False
    except redis.RedisError:
        return True
    return not (isinstance(role, list) and role and role[0] in (b"master", "master"))


# per thread: id(cluster client) -> how many promotions_as_lost blocks are open on it
_WATCHING = threading.local()


def _watching_promotions(cluster: Any) -> bool:
    depths: dict[int, int] | None = getattr(_WATCHING, "depths", None)
    return bool(depths and depths.get(id(cluster)))


@contextlib.contextmanager
def promotions_as_lost(client: Client) -> Iterator[None]:
    """Inside, in this thread: on a cluster, a MOVED reply naming the replica promoted in its
    primary's place is raised as a lost connection (marked lost) instead of being followed; ASK
    and a slot's migration are followed as always. Other threads sharing the client (a library
    user's) follow promotions as usual. Nothing changes on a single server."""
    cluster = _as_cluster(client)
    if cluster is None:
        yield
        return
    depths: dict[int, int] = _WATCHING.__dict__.setdefault("depths", {})
    key = id(cluster)
    depths[key] = depths.get(key, 0) + 1
    try:
        yield
    finally:  # on the opening thread's count, wherever the block is closed
        depths[key] -= 1
        if not depths[key]:
            del depths[key]


def key_primary(client: Client, key: str | bytes) -> Client:
    """The client of the primary holding `key` after a failover: on a cluster the slot map is
    read again first (any node answering will do); the client itself otherwise."""
    cluster = _as_cluster(client)
    if cluster is None:
        return client
    cluster.nodes_manager.initialize()
    return node_client(client, key)


def server_time_ms(client: Client) -> int:
    """The server's clock (TIME) in milliseconds: durations are measured on it, not ours."""
    sec, usec = default_node(client).time()
    return int(sec) * 1000 + int(usec) // 1000


def server_version(client: Client) -> tuple[str, tuple[int, ...]]:
    """('redis' | 'valkey', (major, minor, patch))."""
    info = default_node(client).info("server")
    if "valkey_version" in info:
        name, text = "valkey", str(info["valkey_version"])
    else:
        name, text = "redis", str(info.get("redis_version", "0"))
    parts = tuple(int(p) for p in text.split(".")[:3] if p.isdigit())
    return name, parts


# ---- errors ----


def describe_target(settings: Settings | None) -> str:
    """The URL for messages, its password masked (even when the URL does not parse)."""
    if settings is None:
        return "the server"
    try:
        return settings.display_url
    except ValueError:  # urlsplit's .port raises on 'host:notaport'
        return scrub(settings.url, settings.secrets)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(chain) < 10:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _tls_error(exc: BaseException, target: str) -> StreamctlError | None:
    """A one-line message for a TLS failure found in the exception's chain, if any."""
    import ssl

    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message or cause.reason or "certificate verify failed"
            return ConnectionFailed(
                f"TLS: the certificate of {target} was not verified ({why}); give the CA "
                f"that signed it with {CA_SOURCES}"
            )
        if isinstance(cause, ssl.SSLError):
            why = cause.reason or str(cause)
            return ConnectionFailed(
                f"TLS handshake with {target} failed ({why}); is that port TLS?"
            )
        if isinstance(cause, TimeoutError) and "handshake" in str(cause):
            return ConnectionFailed(
                f"TLS handshake with {target} timed out; is that port TLS (rediss://)?"
            )
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return scrub(text.splitlines()[0] if text else type(exc).__name__)


def translate_error(
    exc: BaseException, settings: Settings | None = None, *, client: object | None = None
) -> StreamctlError | None:
    """Map a redis-py exception to the error kind (and so the exit code) the SPEC gives it,
    worded with the settings of the client that raised it (`settings`, or those `client` was
    built with)."""
    if isinstance(exc, StreamctlError):
        return exc
    settings = settings or settings_of(client)
    mapped = _translate(exc, settings, client)
    if mapped is not None and settings is not None and settings.secrets:
        mapped.message = scrub(mapped.message, settings.secrets)
        mapped.args = (mapped.message,)
    return mapped


def _translate(
    exc: BaseException, settings: Settings | None, client: object | None
) -> StreamctlError | None:
    target = describe_target(settings)
    if isinstance(exc, MasterNotFoundError):
        return _no_primary(exc, settings)
    if isinstance(exc, RedisClusterException):
        text = _first_line(exc)
        if "cluster mode is not enabled" in text.lower():
            return ConnectionFailed(
                f"{target} is not a Redis Cluster (cluster mode is not enabled on it): "
                "drop --cluster, or the profile's cluster: true"
            )
        return ConnectionFailed(f"cannot connect to the cluster at {target}: {text}")
    if not isinstance(exc, redis.RedisError):
        if isinstance(exc, ConnectionRefusedError | TimeoutError | ConnectionResetError):
            if _was_lost(exc):
                return ConnectionFailed(f"lost the connection to {target}: {_first_line(exc)}")
            return ConnectionFailed(f"cannot connect to {target}: {_first_line(exc)}")
        return None
    text = _first_line(exc)
    if isinstance(exc, redis.AuthenticationError | AuthenticationWrongNumberOfArgsError):
        return ConnectionFailed(f"authentication failed at {target}: {text}{_auth_hint(text)}")
    if isinstance(exc, NoPermissionError) or text.startswith("NOPERM"):
        if not text.startswith("NOPERM"):
            text = f"NOPERM {text}"
        return ServerRefused(f"permission denied: {text}")
    tls = _tls_error(exc, target)
    if tls is not None:
        return tls
    if isinstance(exc, redis.TimeoutError):
        waited = f" after {settings.timeout:g}s (--timeout)" if settings is not None else ""
        return ConnectionFailed(f"the server at {target} timed out{waited}: {text}")
    if isinstance(exc, redis.ConnectionError):
        lowered = text.lower()
        if "auth" in lowered or "password" in lowered:
            return ConnectionFailed(f"authentication failed at {target}: {text}")
        if _was_lost(exc):  # it had answered before: not a failure to connect
            return ConnectionFailed(f"lost the connection to {target}: {text}")
        hint = _plain_to_tls_hint(exc, settings)
        return ConnectionFailed(f"cannot connect to {target}: {text}{hint}")
    if isinstance(exc, redis.ResponseError):
        redirect = redirect_error(exc, settings, client=client)
        if redirect is not None:
            return redirect
        if text.startswith("NOGROUP"):
            return NotFound(text)
        if text.startswith(("WRONGPASS", "NOAUTH")):
            return ConnectionFailed(f"authentication failed at {target}: {text}")
        return ServerRefused(f"the server refused: {text}")
    return ServerRefused(f"{type(exc).__name__}: {text}")


def _no_primary(exc: BaseException, settings: Settings | None) -> StreamctlError:
    """No Sentinel answered, or none knows a primary by that name (exit 3)."""
    found = sentinel_target(settings) if settings is not None else None
    if found is None:
        return ConnectionFailed(f"no primary found: {_first_line(exc)}")
    text = str(exc)
    if "Authentication" in text or "NOAUTH" in text or "WRONGPASS" in text:
        return ConnectionFailed(
            f"the Sentinels at {found.addresses} refused to answer without their password "
            "(or with this one): give it in STREAMCTL_SENTINEL_PASSWORD or with the profile's "
            "sentinel_password_env"
        )
    if " : " in text:  # redis-py appends each Sentinel's connection error
        return ConnectionFailed(
            f"no Sentinel answered for primary {found.master!r} (asked {found.addresses}): "
            "is any of them running and reachable?"
        )
    return ConnectionFailed(
        f"the Sentinels at {found.addresses} know no healthy primary named {found.master!r} "
        "(check the name after the Sentinels in the URL, and SENTINEL MASTERS on one of them)"
    )


def _was_lost(exc: BaseException) -> bool:
    """The error (or one in its chain) was marked by `mark_lost`: the connection had answered
    before it failed."""
    return any(getattr(c, "_streamctl_lost", False) for c in _causes(exc))


def _auth_hint(text: str) -> str:
    if text.rstrip(".").lower() == "authentication required":
        return " (give user:password in the URL, or a profile with password_env)"
    return ""


def _plain_to_tls_hint(exc: BaseException, settings: Settings | None) -> str:
    if settings is None or _scheme(settings.url) != "redis":
        return ""
    if any(isinstance(c, ConnectionResetError) for c in _causes(exc)):
        return " (if that port speaks TLS, use rediss://)"
    return ""

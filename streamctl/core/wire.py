"""The one place RESP is handled: raw commands and pipelines, reply helpers, key checks.

Raw commands return replies as hiredis parsed them (lists and bytes), without redis-py's
per-entry callbacks. On a Redis Cluster each command goes to the node owning its key
(connection.route); a pipeline is split per node. A MOVED/ASK/CLUSTERDOWN reply is raised as a
one-line error, never handed back as the command's verdict.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import ResponseError

from streamctl.core.connection import (
    Client,
    command_key,
    is_cluster,
    node_client,
    redirect_error,
    route,
)
from streamctl.errors import NotFound, ServerRefused, StreamctlError

# ---- reply helpers ----


def text(value: Any) -> str:
    """A reply value (bytes or a number) as str."""
    return value.decode() if isinstance(value, bytes) else str(value)


def pairs(reply: list[Any]) -> dict[str, Any]:
    """A flat [name, value, ...] reply (XINFO) as a dict keyed by the names as str."""
    return {text(reply[i]): reply[i + 1] for i in range(0, len(reply), 2)}


def opt_int(value: Any) -> int | None:
    """An integer reply that may be nil."""
    return None if value is None else int(value)


def opt_id(value: Any) -> str | None:
    """An id reply that may be nil; 0-0 (the server's "none") is None too."""
    if value is None:
        return None
    value_text = text(value)
    return None if value_text == "0-0" else value_text


def pack(args: tuple[Any, ...] | list[Any]) -> bytes:
    """One command in RESP, packed by hiredis."""
    import hiredis

    return hiredis.pack_command(tuple(args))  # type: ignore[no-any-return]


# ---- raw commands ----


def raw_command(client: Client, *args: Any) -> Any:
    """Send one command and return the reply as hiredis parsed it (lists and bytes)."""
    pool = route(client, args).connection_pool
    conn: Any = pool.get_connection()
    try:
        conn.send_command(*args)
        return conn.read_response()
    except ResponseError as exc:
        # an error reply: the connection is in step and can be reused
        redirect = redirect_error(exc)
        if redirect is not None:
            raise redirect from None
        raise
    except BaseException:
        conn.disconnect()  # a half-read reply must never reach the next command
        raise
    finally:
        pool.release(conn)


def raw_pipeline(client: Client, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send commands in one write and read every reply; an error reply is returned, not raised.

    On a cluster the commands are sent per node (one write each), the replies in their order;
    a MULTI ... EXEC block goes whole to the node of its first key (its keys share a slot)."""
    if not commands:
        return []
    if not is_cluster(client):
        return _pipeline_on(client, commands)
    by_node: dict[int, tuple[Client, list[int]]] = {}
    units: list[list[int]] = []
    block: list[int] | None = None
    for i, cmd in enumerate(commands):
        word = text(cmd[0]).upper()
        if block is not None:
            block.append(i)
            if word in ("EXEC", "DISCARD"):
                units.append(block)
                block = None
        elif word == "MULTI":
            block = [i]
        else:
            units.append([i])
    if block is not None:
        units.append(block)
    for unit in units:
        keyed = [commands[i] for i in unit if command_key(commands[i]) is not None] or [
            commands[unit[0]]
        ]
        node = route(client, keyed[0])
        by_node.setdefault(id(node), (node, []))[1].extend(unit)
    replies: list[Any] = [None] * len(commands)
    for node, indexes in by_node.values():
        for i, reply in zip(
            indexes, _pipeline_on(node, [commands[i] for i in indexes]), strict=True
        ):
            replies[i] = reply
    return replies


def _pipeline_on(client: Client, commands: list[tuple[Any, ...]]) -> list[Any]:
    pool = client.connection_pool
    conn: Any = pool.get_connection()
    replies: list[Any] = []
    redirect: StreamctlError | None = None
    try:
        conn.send_packed_command([b"".join(pack(cmd) for cmd in commands)])
        for _ in commands:
            try:
                replies.append(conn.read_response())
            except ResponseError as exc:
                replies.append(exc)
                redirect = redirect or redirect_error(exc)
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)
    if redirect is not None:
        raise redirect
    return replies


# ---- key checks ----


def key_type(client: Client, key: str) -> str:
    """TYPE of the key ('none' when missing), asked of the node owning it."""
    return text(node_client(client, key).type(key))


def stream_exists(client: Client, key: str, where: str = "") -> bool:
    """True when `key` is a stream, False when missing; exit 1 when it holds something else
    (`where`, e.g. " on redis://other:6379", names the server in that message)."""
    kind = key_type(client, key)
    if kind == "none":
        return False
    if kind != "stream":
        raise ServerRefused(f"WRONGTYPE: key {key!r}{where} holds a {kind}, not a stream")
    return True


def require_stream(client: Client, stream: str) -> None:
    """Exit 4 when the key is missing, exit 1 when it holds something that is not a stream."""
    if not stream_exists(client, stream):
        raise NotFound(f"stream {stream!r} does not exist")


def stream_refusal(exc: ResponseError, stream: str) -> StreamctlError:
    """A refused command on a stream key as a one-line error: missing key, wrong type, other."""
    message = str(exc)
    if "no such key" in message.lower() or "requires the key to exist" in message:
        return NotFound(f"stream {stream!r} does not exist")
    if message.startswith("WRONGTYPE"):
        return ServerRefused(f"WRONGTYPE: key {stream!r} is not a stream")
    return ServerRefused(f"the server refused: {message}")


def xinfo_groups(client: Client, stream: str) -> list[dict[str, Any]]:
    """XINFO GROUPS, one dict per group (see `pairs`)."""
    try:
        reply = raw_command(client, "XINFO", "GROUPS", stream)
    except ResponseError as exc:
        raise stream_refusal(exc, stream) from None
    return [pairs(g) for g in reply]


def require_group(client: Client, stream: str, group: str) -> dict[str, Any]:
    """The group's XINFO GROUPS record, or NotFound naming the stream or the group."""
    for g in xinfo_groups(client, stream):
        if text(g["name"]) == group:
            return g
    raise NotFound(f"group {group!r} does not exist on stream {stream!r}")


# ---- the pipelined sender ----


class PackedSender:
    """Packed commands in one write on one connection (kept for the whole run), every reply
    read with hiredis in C; error replies are returned (as hiredis.ReplyError), not raised.

    A failure while sending or reading drops the connection: unread replies never reach the
    next user of the pool. Every command acts on `key`: on a cluster the connection is to the
    node owning its slot.
    """

    def __init__(self, client: Client, key: str) -> None:
        import hiredis

        self.client = client
        self.key = key
        self.pool: Any = None
        self.conn: Any = None
        self.reader = hiredis.Reader()

    def send(self, packed: list[bytes]) -> list[Any]:
        from streamctl.core.connection import connection_answered, mark_lost, note_answered

        if self.conn is None:
            from streamctl.core.connection import node_client

            self.pool = node_client(self.client, self.key).connection_pool
            self.conn = self.pool.get_connection()
        conn = self.conn
        established = connection_answered(conn)
        try:
            conn.send_packed_command([b"".join(packed)])
            sock = conn._sock
            gets, feed = self.reader.gets, self.reader.feed
            replies: list[Any] = []
            append = replies.append
            n = len(packed)
            while len(replies) < n:
                reply = gets()
                if reply is False:
                    data = sock.recv(1 << 16)
                    if not data:
                        from redis.exceptions import ConnectionError as RedisConnectionError

                        raise RedisConnectionError("the server closed the connection")
                    feed(data)
                    continue
                append(reply)
            note_answered(conn)
            return replies
        except OSError as exc:
            self.close(broken=True)
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import TimeoutError as RedisTimeoutError

            failure: Exception
            if isinstance(exc, TimeoutError):
                failure = RedisTimeoutError("timed out reading replies")
            else:
                failure = RedisConnectionError(f"error reading replies: {exc}")
            raise (mark_lost(failure) if established else failure) from None
        except BaseException as exc:
            self.close(broken=True)
            if established:
                mark_lost(exc)
            raise

    def close(self, *, broken: bool = False) -> None:
        if self.conn is not None:
            if broken:
                self.conn.disconnect()
            self.pool.release(self.conn)
            self.conn = None
            if broken:
                import hiredis

                self.reader = hiredis.Reader()

    def refusal_text(self, reply: Exception, what: str) -> str:
        """`what: reply`, or the one-line message of a cluster redirect (MOVED: a slot moved),
        naming the server this sender writes to."""
        from streamctl.core.connection import settings_of

        redirect = redirect_error(reply, settings_of(self.client))
        return redirect.message if redirect is not None else f"{what}: {reply}"

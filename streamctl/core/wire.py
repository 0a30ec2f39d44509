"""The one place RESP is handled: raw commands and pipelines, reply helpers, key checks, and
the pipelined sender of the bulk paths (publish, replay, import).

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
    connection_answered,
    is_cluster,
    mark_lost,
    node_client,
    note_answered,
    redirect_error,
    route,
)
from streamctl.errors import NotFound, ServerRefused

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


def never() -> bool:
    """The default `should_stop` of bulk work: run to the end."""
    return False


# ---- raw commands ----


def raw_command(client: Client, *args: Any) -> Any:
    """Send one command and return the reply as hiredis parsed it (lists and bytes)."""
    node = route(client, args)
    pool = node.connection_pool
    conn: Any = pool.get_connection()
    try:
        conn.send_command(*args)
        return conn.read_response()
    except ResponseError as exc:
        # an error reply: the connection is in step and can be reused
        redirect = redirect_error(exc, client=node)
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
    # read with hiredis in C (PipelinedSender), not one read_response per reply: a batch of
    # thousands of XINFO replies costs half as much; error replies as redis-py words them
    sender = PipelinedSender(client, "", redis_errors=True)
    try:
        replies = sender.exchange([pack(cmd) for cmd in commands])
    finally:
        sender.close()
    for reply in replies:
        if isinstance(reply, ResponseError):
            redirect = redirect_error(reply, client=client)
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


def stream_refusal(exc: ResponseError, stream: str) -> Exception:
    """A refused command on a stream key as a one-line error: missing key, wrong type; any other
    refusal (NOPERM, ...) is left to connection.translate_error, which words them all."""
    message = str(exc)
    if "no such key" in message.lower() or "requires the key to exist" in message:
        return NotFound(f"stream {stream!r} does not exist")
    if message.startswith("WRONGTYPE"):
        return ServerRefused(f"WRONGTYPE: key {stream!r} is not a stream")
    return exc


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


class PipelinedSender:
    """Packed commands on one connection (kept for the whole run): each batch in one write, the
    replies read with hiredis in C. Error replies are returned (as hiredis.ReplyError), not raised.

    `send` leaves a batch in flight and `receive` reads the replies of the oldest one, so a
    caller can keep the server busy with one batch while it packs the next; `exchange` does both.
    Every command acts on `key`: on a cluster the connection is to the node owning its slot,
    resolved with the first batch (a failure to reach the server is a failure of that batch).
    A failure while sending or reading drops the connection (unread replies never reach the next
    user of the pool); once the server has answered on it, the failure reads "lost the
    connection to URL", not "cannot connect" (connection.mark_lost).
    """

    def __init__(self, client: Client, key: str, *, redis_errors: bool = False) -> None:
        self.client = client
        self.key = key
        self.pool: Any = None
        self.conn: Any = None
        self.redis_errors = redis_errors  # error replies as redis-py's ResponseError classes
        self.reader = self._new_reader()
        self.inflight: list[int] = []  # replies expected, per batch sent and not yet read

    def _new_reader(self) -> Any:
        import hiredis

        parser = getattr(self.conn, "_parser", None)
        if self.redis_errors and parser is not None:
            # the connection's own wording of error replies (NOPERM naming what it refused)
            return hiredis.Reader(replyError=parser.parse_error)
        return hiredis.Reader()

    def send(self, packed: list[bytes], count: int | None = None) -> None:
        """Write packed commands in one call without reading: one reply is expected per item of
        `packed`, or `count` (several commands packed in one item)."""
        if not packed:
            return
        try:
            if self.conn is None:
                self.pool = node_client(self.client, self.key).connection_pool
                self.conn = self.pool.get_connection()
                if self.redis_errors:
                    self.reader = self._new_reader()
            self.conn.send_packed_command([b"".join(packed)])
        except BaseException as exc:
            raise self._failed(exc, 0)  # noqa: B904 - the same exception, reworded
        self.inflight.append(len(packed) if count is None else count)

    def receive(self, into: list[Any]) -> None:
        """Append the replies of the oldest batch in flight to `into`, in order (on a failure,
        `into` holds the replies read before it)."""
        n = len(into) + self.inflight.pop(0)
        conn = self.conn
        gets, feed = self.reader.gets, self.reader.feed
        append = into.append
        got = len(into)
        try:
            sock = conn._sock
            while len(into) < n:
                reply = gets()
                if reply is False:
                    data = sock.recv(1 << 16)
                    if not data:
                        from redis.exceptions import ConnectionError as RedisConnectionError

                        raise RedisConnectionError("the server closed the connection")
                    feed(data)
                    continue
                append(reply)
        except OSError as exc:
            from redis.exceptions import ConnectionError as RedisConnectionError
            from redis.exceptions import TimeoutError as RedisTimeoutError

            lost: Exception = (
                RedisTimeoutError("timed out reading replies")
                if isinstance(exc, TimeoutError)
                else RedisConnectionError(f"error reading replies: {exc}")
            )
            raise self._failed(lost, len(into) - got) from None
        except BaseException as exc:
            raise self._failed(exc, len(into) - got)  # noqa: B904 - the same exception
        note_answered(conn)

    def exchange(self, packed: list[bytes]) -> list[Any]:
        """Send packed commands and read their replies (no other batch may be in flight)."""
        replies: list[Any] = []
        self.send(packed)
        if self.inflight:
            self.receive(replies)
        return replies

    def _failed(self, exc: BaseException, replies_now: int) -> BaseException:
        answered = self.conn is not None and connection_answered(self.conn)
        self.close(broken=True)
        return mark_lost(exc) if answered or replies_now else exc

    def refusal_text(self, reply: Exception, what: str) -> str:
        """`what: reply`, or the one-line message of a cluster redirect (MOVED: a slot moved),
        naming the server this sender writes to."""
        redirect = redirect_error(reply, client=self.client)
        return redirect.message if redirect is not None else f"{what}: {reply}"

    def close(self, *, broken: bool = False) -> None:
        """Give the connection back to the pool; dropped when `broken` or replies are unread."""
        if self.conn is not None:
            if broken or self.inflight:
                self.conn.disconnect()
            self.pool.release(self.conn)
            self.conn = None
        if broken or self.inflight:
            self.reader = self._new_reader()
            self.inflight = []

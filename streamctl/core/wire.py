"""The one place RESP is handled: raw commands and pipelines, reply helpers, key checks, and
the pipelined sender of the bulk paths (publish, replay, import).

Raw commands return replies as hiredis parsed them (lists and bytes), without redis-py's
per-entry callbacks. On a Redis Cluster each command goes to the node owning its key
(connection.route); a pipeline is split per node. A MOVED/ASK/CLUSTERDOWN reply is raised as a
one-line error, never handed back as the command's verdict.
"""

from __future__ import annotations

import contextlib
from typing import Any

from redis.exceptions import NoScriptError, ResponseError

from streamctl.core import resp
from streamctl.core.connection import (
    MAX_REDIRECTS,
    Client,
    TryAgain,
    command_key,
    connection_answered,
    is_cluster,
    mark_lost,
    node_client,
    note_answered,
    redirect_error,
    redirect_target,
    redirect_word,
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


_ASKING = b"*1\r\n$6\r\nASKING\r\n"
_PLAIN_REPLIES = frozenset((bytes, int, list, type(None)))


def never() -> bool:
    """The default `should_stop` of bulk work: run to the end."""
    return False


# ---- raw commands ----


def raw_command(client: Client, *args: Any) -> Any:
    """Send one command and return the reply as hiredis parsed it (lists and bytes). On a
    cluster a MOVED/ASK reply is followed (connection.redirect_target), at most
    MAX_REDIRECTS times, and a TRYAGAIN (a multi-key command during a slot migration) is sent
    again after a short wait (connection.TryAgain); any other redirect, or one still there
    after that, is raised as a one-line error."""
    node = route(client, args)
    asking = False
    redirects = 0
    again = TryAgain()
    while True:
        try:
            return _command_on(node, args, asking=asking)
        except ResponseError as exc:
            if again.wait(client, exc):
                node, asking = route(client, args), False
                continue
            target = redirect_target(client, exc) if redirects < MAX_REDIRECTS else None
            if target is None:
                redirect = redirect_error(exc, client=node)
                if redirect is not None:
                    raise redirect from None
                raise
            node, asking = target
            redirects += 1


def eval_script(client: Client, script: str, keys: list[Any], args: list[Any]) -> Any:
    """Run a Lua script on the node owning its first key (keys must share a slot), as
    raw_command does (redirects followed, TRYAGAIN retried): EVALSHA, or EVAL where the node
    has not cached it yet (a node that took the slot over in a migration)."""
    import hashlib

    sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
    try:
        return raw_command(client, "EVALSHA", sha, len(keys), *keys, *args)
    except NoScriptError:
        pass
    return raw_command(client, "EVAL", script, len(keys), *keys, *args)


def _command_on(node: Client, args: tuple[Any, ...], *, asking: bool = False) -> Any:
    """One command on a connection of `node`'s pool (after ASKING when `asking`); an error
    reply is raised (the connection is in step and is reused)."""
    pool = node.connection_pool
    conn: Any = pool.get_connection()
    try:
        if asking:
            conn.send_packed_command([pack(("ASKING",)) + pack(args)])
            with contextlib.suppress(ResponseError):  # the command's own reply tells
                conn.read_response()
        else:
            conn.send_command(*args)
        return conn.read_response()
    except ResponseError:
        raise
    except BaseException:
        conn.disconnect()  # a half-read reply must never reach the next command
        raise
    finally:
        pool.release(conn)


def raw_pipeline(client: Client, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send commands in one write and read every reply; an error reply is returned, not raised.

    On a cluster the commands are sent per node (one write each), the replies in their order;
    a MULTI ... EXEC block goes whole to the node of its first key (its keys share a slot).
    MOVED/ASK replies are followed; a block is sent again whole, also after TRYAGAIN (keys of
    a block split by a migration) as raw_command does; a redirect still there after that is
    raised as a one-line error."""
    if not commands:
        return []
    if not is_cluster(client):
        return _pipeline_on(client, commands)
    units = _units(commands)
    replies = _cluster_pipeline(client, commands, units)
    for unit in units:
        if len(unit) > 1:
            _follow_block(client, [commands[i] for i in unit], unit, replies)
    for reply in replies:
        if isinstance(reply, Exception):
            redirect = redirect_error(reply, client=client)
            if redirect is not None:
                raise redirect
    return replies


def _units(commands: list[tuple[Any, ...]]) -> list[list[int]]:
    """The indexes of `commands` in the units they are sent in: a command alone, or a whole
    MULTI ... EXEC block."""
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
    return units


def _cluster_pipeline(
    client: Client, commands: list[tuple[Any, ...]], units: list[list[int]]
) -> list[Any]:
    """raw_pipeline on a cluster, MOVED/ASK followed for the commands outside a block; other
    redirect replies returned (raw_pipeline follows a block's, and reports what is left)."""
    by_node: dict[int, tuple[Client, list[int]]] = {}
    for unit in units:
        node = route(client, _unit_key(commands, unit))
        by_node.setdefault(id(node), (node, []))[1].extend(unit)
    replies: list[Any] = [None] * len(commands)
    for node, indexes in by_node.values():
        for i, reply in zip(
            indexes, _pipeline_following(client, node, [commands[i] for i in indexes]), strict=True
        ):
            replies[i] = reply
    return replies


def _unit_key(commands: list[tuple[Any, ...]], unit: list[int]) -> tuple[Any, ...]:
    """The command a unit is routed by: its first with a key (a block's keys share a slot)."""
    keyed = [commands[i] for i in unit if command_key(commands[i]) is not None]
    return keyed[0] if keyed else commands[unit[0]]


def _follow_block(
    client: Client, block: list[tuple[Any, ...]], unit: list[int], replies: list[Any]
) -> None:
    """A MULTI block (`block`, its replies at `unit` in `replies`) answered MOVED, ASK or
    TRYAGAIN is sent again whole: to the new owner, or after ASKING (which holds for the whole
    block) to the importing node, or after a short wait; its new replies put in place."""
    again = TryAgain()
    redirects = 0
    while True:
        hit = next((replies[i] for i in unit if _redirected(replies[i])), None)
        if hit is None:
            return
        if again.wait(client, hit):
            node, asking = route(client, _unit_key(block, list(range(len(block))))), False
        else:
            target = redirect_target(client, hit) if redirects < MAX_REDIRECTS else None
            if target is None:
                return  # reported by raw_pipeline
            (node, asking), redirects = target, redirects + 1
        sent = [("ASKING",), *block] if asking else block
        got = _pipeline_on(node, sent, follow=True)
        for i, reply in zip(unit, got[1:] if asking else got, strict=True):
            replies[i] = reply


def _redirected(reply: Any) -> bool:
    return isinstance(reply, Exception) and redirect_word(reply) in ("MOVED", "ASK", "TRYAGAIN")


def _pipeline_following(client: Client, node: Client, commands: list[tuple[Any, ...]]) -> list[Any]:
    """_pipeline_on(node, commands) on a cluster, following MOVED/ASK replies: only the
    commands redirected are sent again (in their order, grouped by the node they go to; after
    ASKING each for ASK), at most MAX_REDIRECTS times. The commands of a MULTI block are left
    to _follow_block (sent again whole), and what is still redirected to raw_pipeline."""
    replies = _pipeline_on(node, commands, follow=True)
    in_block = {i for unit in _units(commands) if len(unit) > 1 for i in unit}
    redirected = [i for i, r in enumerate(replies) if _followable(r) and i not in in_block]
    for _ in range(MAX_REDIRECTS):
        if not redirected:
            break
        targets = _targets(client, [replies[i] for i in redirected], redirected)
        if targets is None:
            break
        for to, asking, indexes in targets:
            sent = [commands[i] for i in indexes]
            if asking:
                sent = [c for cmd in sent for c in (("ASKING",), cmd)]
            got = _pipeline_on(to, sent, follow=True)
            for i, reply in zip(indexes, got[1::2] if asking else got, strict=True):
                replies[i] = reply
        redirected = [i for i in redirected if _followable(replies[i])]
    return replies


def _pipeline_on(
    client: Client, commands: list[tuple[Any, ...]], *, follow: bool = False
) -> list[Any]:
    """Commands in one write, every reply read; a MOVED/ASK/... reply is raised as a one-line
    error, unless `follow` (_pipeline_following then resends the commands redirected)."""
    # read with hiredis in C (PipelinedSender), not one read_response per reply: a batch of
    # thousands of XINFO replies costs half as much; error replies as redis-py words them
    sender = PipelinedSender(client, "", redis_errors=True)
    try:
        replies = sender.exchange([pack(cmd) for cmd in commands])
    finally:
        sender.close()
    if follow:
        return replies
    for reply in replies:
        if isinstance(reply, ResponseError):
            redirect = redirect_error(reply, client=client)
            if redirect is not None:
                raise redirect
    return replies


def _followable(reply: Any) -> bool:
    """A MOVED or ASK error reply (redis-py's or hiredis')."""
    return isinstance(reply, Exception) and redirect_word(reply) in ("MOVED", "ASK")


def _targets(
    client: Client, replies: list[Any], indexes: list[int]
) -> list[tuple[Client, bool, list[int]]] | None:
    """The redirected commands (`indexes`, their `replies`) grouped by where they go now:
    (node, ASKING first, indexes in order); None when one of them cannot be followed. The slot
    map is read once per distinct MOVED reply."""
    seen: dict[str, tuple[Client, bool] | None] = {}
    groups: dict[tuple[int, bool], tuple[Client, bool, list[int]]] = {}
    for i, reply in zip(indexes, replies, strict=True):
        key = str(reply)
        if key not in seen:
            seen[key] = redirect_target(client, reply)
        target = seen[key]
        if target is None:
            return None
        groups.setdefault((id(target[0]), target[1]), (*target, []))[2].append(i)
    return list(groups.values())


_WAITS = (b"*3\r\n$4\r\nWAIT\r\n", b"*4\r\n$7\r\nWAITAOF\r\n")


def _wait_seconds(command: bytes) -> float | None:
    """The timeout of a packed WAIT or WAITAOF (its last argument, ms) in seconds; None for
    any other command."""
    if not command.startswith(_WAITS):
        return None
    return int(command.split(b"\r\n")[-2]) / 1000


def _weaker_wait(a: Any, b: Any) -> Any:
    """The weaker of two replies of one WAIT (a count) or WAITAOF ([local, replicas]): an error
    reply first, else the smaller counts."""
    for reply in (a, b):
        if isinstance(reply, Exception):
            return reply
    if isinstance(a, list):
        return [min(x, y) for x, y in zip(a, b, strict=True)]
    return min(a, b)


# ---- key checks ----


def key_type(client: Client, key: str) -> str:
    """TYPE of the key ('none' when missing), asked of the node owning it."""
    return text(raw_command(client, "TYPE", key))


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
    On a cluster, MOVED/ASK replies are followed as they are read (`_follow`): the batch's other
    replies are final, and only the commands redirected are sent again, in their order.
    """

    def __init__(self, client: Client, key: str, *, redis_errors: bool = False) -> None:
        self.client = client
        self.key = key
        self.pool: Any = None
        self.conn: Any = None
        self.redis_errors = redis_errors  # error replies as redis-py's ResponseError classes
        self.reader = self._new_reader()
        self.inflight: list[int] = []  # replies expected, per batch sent and not yet read
        self.sent: list[bytes] = []  # the commands of each batch in flight (to resend some)
        self.ahead: list[list[Any]] = []  # replies read ahead after a slot moved (_read_ahead)

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
            data = b"".join(packed)
            self.conn.send_packed_command([data])
        except BaseException as exc:
            raise self._failed(exc, 0)  # noqa: B904 - the same exception, reworded
        self.inflight.append(len(packed) if count is None else count)
        self.sent.append(data)

    def receive(self, into: list[Any]) -> None:
        """Append the replies of the oldest batch in flight to `into`, in order (on a failure,
        `into` holds the replies read before it); MOVED/ASK replies followed on a cluster."""
        if self.ahead:
            self.inflight.pop(0)
            self.sent.pop(0)
            into.extend(self.ahead.pop(0))
            return
        got = len(into)
        self._receive_batch(into)
        data = self.sent.pop(0)
        if _PLAIN_REPLIES.issuperset(map(type, into[got:])):
            return  # no error reply (the usual batch: checked in C)
        if self._follow(into, got, data):
            if self.inflight:
                self._read_ahead()
            else:  # the next batch goes to the new owner, not to be redirected again
                self.pool.release(self.conn)
                self.conn = None

    def receive_waiting(self, into: list[Any], seconds: float) -> None:
        """`receive` for a batch ending with a WAIT/WAITAOF, which may block for `seconds`: the
        socket's timeout is lengthened by them while the replies are read."""
        sock = self.conn._sock
        base = sock.gettimeout()
        sock.settimeout(None if base is None else base + seconds)
        try:
            self.receive(into)
        finally:
            # a slot that moved may have closed the connection meanwhile: nothing to restore
            with contextlib.suppress(OSError):
                sock.settimeout(base)

    def _receive_batch(self, into: list[Any]) -> None:
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

    def exchange(self, packed: list[bytes], count: int | None = None) -> list[Any]:
        """Send packed commands and read their replies (no other batch may be in flight);
        `count` as for `send`."""
        replies: list[Any] = []
        self.send(packed, count)
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
            self.sent, self.ahead = [], []

    # ---- following MOVED/ASK on a cluster (kept apart from the reading above) ----

    def _follow(self, into: list[Any], got: int, data: bytes) -> bool:
        """Send again the commands of a batch (`data`, its replies from `into[got]` on) that
        were redirected, and put their replies in place. True when a slot moved (MOVED): the
        connection must then go to the new owner (_read_ahead). A redirect that cannot be
        followed (a single server, too many) is left in `into`, reported by the caller."""
        redirected = [i for i in range(got, len(into)) if _followable(into[i])]
        if not redirected or not is_cluster(self.client):
            return False
        commands = resp.split(data)
        if len(commands) != len(into) - got:
            return False
        # a batch ending with its WAIT/WAITAOF: the wait follows the commands sent again too,
        # on their new node, and the batch's wait reply becomes the weaker of the two
        wait_s = _wait_seconds(commands[-1])
        moved = False
        for _ in range(MAX_REDIRECTS):
            targets = _targets(self.client, [into[i] for i in redirected], redirected)
            if targets is None:
                break
            for to, asking, indexes in targets:
                moved = moved or not asking
                packed = [commands[i - got] for i in indexes]
                if asking:
                    packed = [c for cmd in packed for c in (_ASKING, cmd)]
                helper = PipelinedSender(to, self.key)
                try:
                    if wait_s is None:
                        replies = helper.exchange(packed)
                    else:
                        replies = []
                        helper.send([*packed, commands[-1]])
                        helper.receive_waiting(replies, wait_s)
                        last = got + len(commands) - 1
                        into[last] = _weaker_wait(into[last], replies.pop())
                finally:
                    helper.close()
                for i, reply in zip(indexes, replies[1::2] if asking else replies, strict=True):
                    into[i] = reply
            redirected = [i for i in redirected if _followable(into[i])]
            if not redirected:
                break
        return moved

    def _read_ahead(self) -> None:
        """After a MOVED: read the batches still in flight on the old owner's connection now
        (their redirected commands sent again, in order, before any later batch), then give the
        connection back: the next batch goes to the new owner. `receive` hands out what was
        read here."""
        counts, sent = list(self.inflight), list(self.sent)
        ahead: list[list[Any]] = []
        for _ in counts:
            replies: list[Any] = []
            self._receive_batch(replies)
            self._follow(replies, 0, self.sent.pop(0))
            ahead.append(replies)
        self.pool.release(self.conn)
        self.conn = None
        self.inflight, self.sent, self.ahead = counts, sent, ahead

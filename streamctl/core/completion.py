"""Names for shell completion: streams and groups from the server, quickly.

Completion runs on every <TAB>, so it must never hang the shell nor print anything: a short
connect and read timeout, a total time budget, a cap on the names, and an empty list when the
server does not answer (or anything else goes wrong).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from streamctl.config import Settings

COMPLETION_TIMEOUT = 0.3  # seconds: connect and each reply
COMPLETION_BUDGET = 1.0  # seconds: the whole SCAN
MAX_NAMES = 200
SCAN_COUNT = 1000
_GLOB_SPECIAL = "\\*?[]"


def glob_escape(text: str) -> str:
    """A literal prefix for SCAN MATCH (glob characters backslash-escaped)."""
    return "".join("\\" + c if c in _GLOB_SPECIAL else c for c in text)


def _client(settings: Settings) -> Any:
    from streamctl.core.connection import connect

    quick = dataclasses.replace(settings, timeout=min(settings.timeout, COMPLETION_TIMEOUT))
    return connect(quick)


def _names(reply: Any) -> list[str]:
    out = []
    for key in reply:
        try:
            out.append(key.decode() if isinstance(key, bytes) else str(key))
        except UnicodeDecodeError:
            continue  # a name the shell could not type back anyway
    return out


def scan_stream_names(
    client: Any,
    prefix: str = "",
    *,
    limit: int = MAX_NAMES,
    budget: float = COMPLETION_BUDGET,
) -> list[str]:
    """Stream names starting with `prefix` (SCAN ... TYPE stream), sorted, at most `limit`."""
    from streamctl.core.connection import primaries

    deadline = time.monotonic() + budget
    pattern = glob_escape(prefix) + "*"
    found: set[str] = set()
    for node in primaries(client):  # SCAN is per node on a cluster
        cursor: Any = 0
        while True:
            cursor, keys = node.scan(cursor=cursor, match=pattern, count=SCAN_COUNT, _type="stream")
            found.update(_names(keys))
            if int(cursor) == 0 or len(found) >= limit or time.monotonic() > deadline:
                break
        if len(found) >= limit or time.monotonic() > deadline:
            break
    return sorted(found)[:limit]


def group_names_of(client: Any, streams: list[str], prefix: str = "") -> list[str]:
    """Names of the groups of these streams (one pipeline), starting with `prefix`."""
    from streamctl.core.wire import pairs, raw_pipeline

    replies = raw_pipeline(client, [("XINFO", "GROUPS", s) for s in streams])
    names: set[str] = set()
    for reply in replies:
        if isinstance(reply, Exception):
            continue
        for group in reply:
            names.update(_names([pairs(group)["name"]]))
    return sorted(n for n in names if n.startswith(prefix))


def complete_streams(settings: Settings, prefix: str = "") -> list[str]:
    """Stream names for completion; [] when no server answers in time."""
    try:
        client = _client(settings)
        try:
            return scan_stream_names(client, prefix)
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - completion must stay silent whatever happens
        return []


def complete_groups(settings: Settings, stream: str | None, prefix: str = "") -> list[str]:
    """Group names of `stream` (or of the first streams found when none is typed yet)."""
    try:
        client = _client(settings)
        try:
            streams = [stream] if stream else scan_stream_names(client, limit=50)
            return group_names_of(client, streams, prefix) if streams else []
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - completion must stay silent whatever happens
        return []


def complete_consumers(
    settings: Settings, stream: str | None, group: str | None, prefix: str = ""
) -> list[str]:
    """Consumer names of a group (XINFO CONSUMERS); [] until the stream and group are typed."""
    if not stream or not group:
        return []
    try:
        from streamctl.core.wire import pairs, raw_command

        client = _client(settings)
        try:
            reply = raw_command(client, "XINFO", "CONSUMERS", stream, group)
        finally:
            client.close()
        names = _names([pairs(c)["name"] for c in reply])
        return sorted(n for n in names if n.startswith(prefix))
    except Exception:  # noqa: BLE001 - completion must stay silent whatever happens
        return []

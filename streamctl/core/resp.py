"""RESP requests as streamctl packs them (arrays of bulk strings, hiredis' canonical form):
taken apart with hiredis' reader, in C, never by hand. Used where a packed batch must be read
again: naming the commands of a failed write, sending again some commands of a batch."""

from __future__ import annotations

import hiredis


def commands(data: bytes, limit: int | None = None) -> list[list[bytes]]:
    """The commands in `data` (each its name and arguments), at most `limit`; what follows
    something that is not a whole command is left out."""
    reader = hiredis.Reader()
    reader.feed(data)
    found: list[list[bytes]] = []
    while limit is None or len(found) < limit:
        try:
            command = reader.gets()
        except hiredis.ProtocolError:
            break
        if command is False or not isinstance(command, list):
            break
        found.append(command)
    return found


def split(data: bytes) -> list[bytes]:
    """Each command of `data` packed on its own (the same bytes: the packing is canonical)."""
    return [hiredis.pack_command(tuple(c)) for c in commands(data)]  # type: ignore[arg-type]


def drop(data: bytes, n: int) -> bytes:
    """`data` without its first `n` commands."""
    return b"".join(split(data)[n:])

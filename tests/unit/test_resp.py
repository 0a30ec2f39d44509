"""core/resp: packed requests taken apart with hiredis' reader give back the same bytes."""

from __future__ import annotations

import hiredis

from streamctl.core import resp

COMMANDS = [
    ("XADD", "orders", "1-0", "order_id", "42", "note", "é" * 3),
    ("XADD", b"bin\x00key", "*", b"\xff\xfe", b""),
    ("WAIT", 1, 5000),
    ("ASKING",),
]
PACKED = [hiredis.pack_command(c) for c in COMMANDS]  # type: ignore[arg-type]


def test_split_gives_each_command_its_own_bytes() -> None:
    data = b"".join(PACKED)
    assert resp.split(data) == PACKED
    assert resp.drop(data, 0) == data
    assert resp.drop(data, 2) == b"".join(PACKED[2:])
    assert resp.drop(data, len(PACKED)) == b""


def test_commands_names_and_arguments_up_to_a_limit() -> None:
    data = b"".join(PACKED)
    assert resp.commands(data) == [[str(a).encode() if isinstance(a, int) else
                                    a.encode() if isinstance(a, str) else a for a in c]
                                   for c in COMMANDS]  # fmt: skip
    assert [c[0] for c in resp.commands(data, limit=2)] == [b"XADD", b"XADD"]


def test_what_is_not_a_whole_command_is_left_out() -> None:
    assert resp.commands(PACKED[0] + PACKED[1][:-3]) == resp.commands(PACKED[0])
    assert resp.commands(PACKED[2] + b"?garbage\r\n") == resp.commands(PACKED[2])
    assert resp.commands(b"") == []

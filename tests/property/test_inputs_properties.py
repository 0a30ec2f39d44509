"""Properties of the readers (streamctl.inputs) against an oracle: every byte string fed to
read_events / read_envelopes gives the events it holds, or a BadInput (exit 2, one line) naming
the first bad line after yielding every event before it; never another exception. Envelopes
written by render.serialize (entry_data, ndjson_lines) read back to the same bytes, including
repeated and non-UTF-8 field names and values. read_envelopes is the reader `import` runs, and
the bytes compared are those import sends (its entries packed as XADD commands).

Bugs these properties found are pinned as regression examples at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hiredis
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamctl import ids, inputs
from streamctl.core.models import Entry
from streamctl.errors import BadInput, ExitCode
from streamctl.ids import StreamId
from streamctl.render.serialize import entry_data, ndjson_lines

PROPS = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("inputs-properties")


def write(workdir: Path, name: str, data: bytes) -> str:
    path = workdir / name
    path.write_bytes(data)
    return str(path)


def drain(iterator: Iterator[Any]) -> tuple[list[Any], BadInput | None]:
    """Everything the reader yields, and the BadInput that ended it (if any)."""
    out: list[Any] = []
    try:
        for item in iterator:
            out.append(item)
    except BadInput as exc:
        return out, exc
    return out, None


def check_one_line(exc: BadInput) -> str:
    assert exc.exit_code == ExitCode.USAGE
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message
    return message


# ---- NDJSON events ----

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=10), json_values, min_size=1, max_size=5)


def object_line(obj: dict[str, Any], ascii_only: bool, pad: str) -> bytes:
    text = json.dumps(obj, ensure_ascii=ascii_only, separators=(",", ":") if pad else None)
    return (pad + text + pad).encode()


good_lines = st.builds(object_line, json_objects, st.booleans(), st.sampled_from(["", " ", "\t"]))
bad_lines = st.one_of(
    st.sampled_from(
        [
            b"{}",
            b"[]",
            b"[{}]",
            b"null",
            b"42",
            b'"text"',
            b"{not json}",
            b'{"a":1}{"b":2}',
            b'{"a":1},{"b":2}',
            b'{"a": NaN}',
            b'{"a": Infinity}',
            b'{"a":-Infinity}',
            b"{",
            b'{"a":"\xff"}',
            b'\xef\xbb\xbf{"a":1}',
            b'{"a":1} x',
            b'{"a":' * 3000,
            # an object split over two lines: each line alone is not JSON
            b'{"a":[{"x":1}\n{"y":2}]}',
            # (a lone surrogate escape: see test_lone_surrogate_in_an_event_names_its_line)
        ]
    ),  # fmt: skip
    st.binary(max_size=20),
    st.text(max_size=20).map(str.encode),
)
blank_lines = st.sampled_from([b"", b" ", b"\t", b"\r"])
ndjson_files = st.tuples(
    st.lists(st.one_of(good_lines, good_lines, bad_lines, blank_lines), max_size=12),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),
).map(lambda t: t[1].join(t[0]) + (t[1] if t[2] else b""))


def reject_constant(name: str) -> Any:
    raise ValueError(name)


def ndjson_oracle(data: bytes) -> tuple[list[dict[str, Any]], int | None]:
    """The SPEC's reading of an NDJSON file: the events, and the first bad line (1-based)."""
    events: list[dict[str, Any]] = []
    lines = data.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    for number, raw in enumerate(lines, 1):
        try:
            text = raw.decode().strip()
        except UnicodeDecodeError:
            return events, number
        if not text:
            continue
        try:
            obj = json.loads(text, parse_constant=reject_constant)
        except (ValueError, RecursionError):
            return events, number
        if type(obj) is not dict or not obj:
            return events, number
        events.append(obj)
    return events, None


@PROPS
@given(ndjson_files, st.integers(min_value=0, max_value=4))
def test_ndjson_events_or_the_first_bad_line(workdir: Path, data: bytes, skip: int) -> None:
    path = write(workdir, "events.ndjson", data)
    expected, bad_line = ndjson_oracle(data)
    got, exc = drain(inputs.read_events(path, skip=skip))
    # the reader yields the decoded objects (publish turns them into fields)
    assert [dict(e) for e in got] == expected[skip:]
    if bad_line is None:
        assert exc is None, exc
    else:
        assert exc is not None, f"line {bad_line} is malformed and was accepted"
        assert check_one_line(exc).startswith(f"line {bad_line}: ")


# ---- YAML events ----


def yaml_expected(value: Any) -> bytes:
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


yaml_keys = st.text(max_size=8)
yaml_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**40), max_value=2**40),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=10),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
yaml_events = st.lists(st.dictionaries(yaml_keys, yaml_values, min_size=1, max_size=4), max_size=6)


@PROPS
@given(yaml_events, st.integers(min_value=0, max_value=3), st.booleans())
def test_yaml_list_of_mappings_reads_as_fields(
    workdir: Path, events: list[dict[str, Any]], skip: int, flow: bool
) -> None:
    # allow_unicode=False: PyYAML writes NEL/LS/PS raw and then reads them as line breaks
    text = yaml.safe_dump(events, default_flow_style=flow, allow_unicode=False, sort_keys=False)
    path = write(workdir, "events.yaml", text.encode())
    got, exc = drain(inputs.read_events(path, skip=skip))
    assert exc is None, exc
    expected = [tuple((k.encode(), yaml_expected(v)) for k, v in e.items()) for e in events]
    assert got == expected[skip:]


yaml_junk = st.one_of(
    st.text(max_size=60).map(str.encode),
    st.binary(max_size=40),
    st.lists(
        st.sampled_from(
            ["- ", "a", ": ", "1", "\n", "  ", "{", "}", "[", "]", ",", "'", '"', "&x ", "*x",
             "? ", "!!str ", "!!int ", "!!bool ", "!!timestamp ", "!!binary ", "!!set ",
             "!!float ", "2026-11-27", "#", "---\n", "...\n", "|\n", "null", "~", "-1"]
        ),
        max_size=25,
    ).map(lambda parts: "".join(parts).encode()),
)  # fmt: skip


@PROPS
@given(yaml_junk)
def test_yaml_junk_is_events_or_bad_input(workdir: Path, data: bytes) -> None:
    path = write(workdir, "junk.yml", data)
    got, exc = drain(inputs.read_events(path))
    for event in got:
        assert isinstance(event, tuple) and event
        assert all(isinstance(k, bytes) and isinstance(v, bytes) for k, v in event)
    if exc is not None:
        message = check_one_line(exc)
        assert message.startswith(("line ", "item ", path)), message


# ---- envelopes: what range/export write, import reads back to the same bytes ----


def sent_fields(item: inputs.EntryLine) -> tuple[tuple[bytes, bytes], ...]:
    """The field names and values import sends for an entry: its XADD as packed for the wire
    (str as UTF-8, bytes as they are), read back from the RESP."""
    reader = hiredis.Reader()
    reader.feed(hiredis.pack_command(("XADD", "s", item.id, *item.flat)))
    args = reader.gets()[3:]
    return tuple(zip(args[::2], args[1::2], strict=True))


def entries_only(items: list[Any]) -> list[inputs.EntryLine]:
    assert all(isinstance(i, inputs.EntryLine) for i in items)
    return items


field_names = st.one_of(
    st.sampled_from([b"a", b"b", b"base64", b""]),  # repeats and awkward names
    st.binary(max_size=6),
    st.text(max_size=6).map(str.encode),
)
field_values = st.one_of(st.binary(max_size=12), st.text(max_size=12).map(str.encode))
entry_fields = st.lists(st.tuples(field_names, field_values), min_size=1, max_size=6).map(tuple)
entry_ids = st.builds(
    StreamId,
    st.integers(min_value=0, max_value=2**48),
    st.integers(min_value=0, max_value=2**64 - 1),
)
stream_names = st.text(min_size=1, max_size=10)


@PROPS
@given(stream_names, st.lists(st.tuples(entry_ids, entry_fields), min_size=1, max_size=5))
def test_envelopes_round_trip_through_ndjson_lines(
    workdir: Path, stream: str, entries: list[tuple[StreamId, tuple[tuple[bytes, bytes], ...]]]
) -> None:
    raw = [(str(i).encode(), [x for pair in fields for x in pair]) for i, fields in entries]
    text = ndjson_lines(stream, raw)
    assert text.count("\n") == len(entries)
    path = write(workdir, "fast.ndjson", text.encode())
    got, exc = drain(inputs.read_envelopes(path))
    assert exc is None, exc
    assert [(e.id, sent_fields(e)) for e in entries_only(got)] == [
        (str(i), fields) for i, fields in entries
    ]


@PROPS
@given(stream_names, st.lists(st.tuples(entry_ids, entry_fields), min_size=1, max_size=5))
def test_envelopes_round_trip_through_entry_data(
    workdir: Path, stream: str, entries: list[tuple[StreamId, tuple[tuple[bytes, bytes], ...]]]
) -> None:
    lines = [
        json.dumps(entry_data(Entry(stream, str(i), fields)), ensure_ascii=False)
        for i, fields in entries
    ]
    path = write(workdir, "slow.ndjson", ("\n".join(lines) + "\n").encode())
    got, exc = drain(inputs.read_envelopes(path))
    assert exc is None, exc
    assert [(e.id, sent_fields(e)) for e in entries_only(got)] == [
        (str(i), fields) for i, fields in entries
    ]
    # both writers agree on the envelope (the fast one is used for range/export)
    raw = [(str(i).encode(), [x for pair in fields for x in pair]) for i, fields in entries]
    assert [json.loads(x) for x in ndjson_lines(stream, raw).split("\n")[:-1]] == [
        json.loads(x) for x in lines
    ]


block_names = st.lists(st.sampled_from(["a", "b", "status", 'q"uote', "é"]), min_size=1, max_size=4)
block_values = st.text(max_size=8)  # quotes, backslashes, control and non-ASCII characters


@PROPS
@given(
    block_names,
    st.lists(st.lists(block_values, min_size=4, max_size=4), min_size=1, max_size=40),
    st.booleans(),
    st.integers(min_value=0, max_value=2**64 - 1),
)
def test_envelope_blocks_read_as_each_line_holds(
    workdir: Path, names: list[str], values: list[list[str]], ascii_only: bool, first_ms: int
) -> None:
    """Lines of one shape are decoded a block at a time (EntryBlock): they read back exactly as
    written, repeated names included (a block with one goes line by line), and a block is
    taken whenever nothing in it needs the line-by-line reader."""
    rows = [
        (f"{first_ms}-{i}", [(n, v) for n, v in zip(names, vals, strict=False)])
        for i, vals in enumerate(values)
    ]

    def text(value: str) -> str:
        return json.dumps(value, ensure_ascii=ascii_only)

    lines = [
        '{"stream":"s","id":' + text(eid) + ',"fields":{'
        + ",".join(text(n) + ":" + text(v) for n, v in pairs) + "}}"
        for eid, pairs in rows
    ]  # fmt: skip
    data = ("\n".join(lines) + "\n").encode()
    path = write(workdir, "block.ndjson", data)
    got, exc = drain(inputs.read_envelopes(path))
    assert exc is None, exc
    assert [(e.lineno, e.id, sent_fields(e)) for e in entries_only(got)] == [
        (lineno, eid, tuple((n.encode(), v.encode()) for n, v in pairs))
        for lineno, (eid, pairs) in enumerate(rows, 1)
    ]
    blocks = list(inputs.read_envelope_blocks(path))
    # a '[', or a quote in a name or value (escaped: its quote is over), sends a block line by
    # line (see inputs._envelope_block)
    quoted = any('"' in part for _, pairs in rows for pair in pairs for part in pair)
    plain = len(set(names)) == len(names) and b"[" not in data and not quoted
    if plain:  # the usual file: one block, nothing read line by line
        assert [type(b) for b in blocks] == [inputs.EntryBlock]
    else:
        assert all(type(b) is inputs.EntryLine for b in blocks)


envelope_junk_lines = st.one_of(
    st.builds(
        lambda stream, eid, fields: json.dumps({"stream": stream, "id": eid, "fields": fields}),
        st.one_of(st.text(max_size=5), st.integers(), st.none()),
        st.one_of(
            st.text(max_size=8), st.integers(), st.none(), st.sampled_from(["1-0", "7", "2-x"])
        ),
        st.one_of(
            st.dictionaries(st.text(max_size=4), st.one_of(st.text(max_size=4), st.integers())),
            st.lists(st.lists(st.one_of(st.text(max_size=3), st.integers()), max_size=3)),
            st.dictionaries(
                st.text(max_size=3),
                st.dictionaries(st.sampled_from(["base64", "b"]), st.text(max_size=8)),
                max_size=2,
            ),
            st.text(max_size=4),
            st.none(),
        ),
    ),
    st.sampled_from(
        [
            '{"id": "1-1"}',
            "[]",
            '{"fields": {}}',
            '{"fields": [["a"]]}',
            "{",
            '{"fields": {"a": {"base64": "!!"}}}',
            '{"fields": {"a": 1}}',
            '{"fields": {"a": "\\ud800"}}',
            '{"fields": [["\\udfff", "b"]]}',
            '{"id": "1-0", "fields": {"a": "\\ud800"}}',
            '{"id": "1-1", "fields": [["a", "1"], ["a", {"base64": "/w=="}]]}',
            '{"group": {"name": "g", "last_delivered_id": "1-0", "pending": []}}',
            '{"group": {"name": "g", "last_delivered_id": "x"}}',
            '{"group": {"name": "g", "last_delivered_id": "1-0", "pending": [{"id": 1}]}}',
            '{"group": []}',
            "[" * 50_000,
            '{"fields": ' * 20_000,
        ]
    ),  # fmt: skip
    st.text(max_size=20),
).map(lambda line: line.encode())
envelope_files = st.lists(
    st.one_of(envelope_junk_lines, st.binary(max_size=10), st.just(b"")), max_size=8
).map(lambda lines: b"\n".join(lines) + b"\n")


@PROPS
@given(envelope_files)
def test_envelope_junk_is_envelopes_or_bad_input_naming_the_line(
    workdir: Path, data: bytes
) -> None:
    path = write(workdir, "junk.ndjson", data)
    got, exc = drain(inputs.read_envelopes(path))
    for item in got:
        if isinstance(item, inputs.GroupLine):
            assert isinstance(item.state.name, bytes)
            continue
        assert item.key == ids.id_key(item.id) and str(ids.StreamId.parse(item.id)) == item.id
        assert item.flat and len(item.flat) % 2 == 0
        assert all(isinstance(x, (str, bytes)) for x in item.flat)
        try:
            sent_fields(item)
        except UnicodeEncodeError:  # a lone surrogate: import names the line when it packs
            assert any(isinstance(x, str) and not x.isascii() for x in item.flat)
    if exc is not None:
        message = check_one_line(exc)
        # every envelope before the bad line was yielded: it is the next non-blank line
        numbers = [n for n, line in enumerate(data.split(b"\n"), 1) if line.strip()]
        assert message.startswith(f"line {numbers[len(got)]}: "), message


# ---- FIELD=VALUE pairs ----


# what a POSIX argv can hold: any text, and bytes that are not UTF-8 as surrogate escapes
argv_text = st.text(
    st.one_of(st.characters(exclude_categories=["Cs"]), st.characters(min_codepoint=0xDC80,
                                                                    max_codepoint=0xDCFF))
)  # fmt: skip


@PROPS
@given(st.lists(st.tuples(argv_text.filter(lambda t: t and "=" not in t), argv_text)))
def test_pairs_split_at_the_first_equals(pairs: list[tuple[str, str]]) -> None:
    parsed = inputs.parse_pairs([f"{name}={value}" for name, value in pairs])
    assert parsed == tuple(
        (n.encode("utf-8", "surrogateescape"), v.encode("utf-8", "surrogateescape"))
        for n, v in pairs
    )


@PROPS
@given(st.lists(argv_text, min_size=1, max_size=4))
def test_any_pairs_parse_or_are_bad_input(pairs: list[str]) -> None:
    try:
        parsed = inputs.parse_pairs(pairs)
    except BadInput as exc:
        check_one_line(exc)
        return
    assert len(parsed) == len(pairs)


# ---- regressions: bugs these properties found ----


def test_lone_surrogate_in_an_event_names_its_line(workdir: Path) -> None:
    data = b'{"a":"1"}\n{"s":"\\ud800"}\n{"b":"2"}\n'
    got, exc = drain(inputs.read_events(write(workdir, "surrogate-event.ndjson", data)))
    assert got == [{"a": "1"}]
    assert exc is not None and str(exc).startswith("line 2: ")


def test_objects_spanning_lines_are_not_accepted(workdir: Path) -> None:
    data = b'{"a":[{"x":1}\n{"y":2}]}\n{"p":1},{"q":2}\n'
    got, exc = drain(inputs.read_events(write(workdir, "split.ndjson", data)))
    assert got == [] and exc is not None and str(exc).startswith("line 1: ")


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("- when: 2026-11-27\n", b"2026-11-27"),
        ("- at: 2026-11-27T10:00:00Z\n", b"2026-11-27T10:00:00+00:00"),
        ("- nested: {day: 2026-11-27}\n", b'{"day":"2026-11-27"}'),
        ("- data: !!binary aGVsbG8=\n", b"hello"),
        ("- tags: !!set {b, a}\n", b'["a","b"]'),
    ],  # fmt: skip
)
def test_yaml_values_json_cannot_hold(workdir: Path, text: str, stored: bytes) -> None:
    got, exc = drain(inputs.read_events(write(workdir, "typed.yaml", text.encode())))
    assert exc is None
    assert [value for ((_, value),) in got] == [stored]


@pytest.mark.parametrize(
    "text", ["- a: !!int abc\n", "- a: !!int\n", "- a: !!timestamp x\n", "- a: !!bool maybe\n"]
)
def test_yaml_tags_with_bad_values(workdir: Path, text: str) -> None:
    drain(inputs.read_events(write(workdir, "tags.yaml", text.encode())))


def test_recursive_yaml_anchor(workdir: Path) -> None:
    drain(inputs.read_events(write(workdir, "loop.yaml", b"- a: &x [*x]\n")))


def test_envelope_with_a_lone_surrogate(workdir: Path) -> None:
    data = b'{"id": "1-0", "fields": {"a": "\\ud800"}}\n'
    got, exc = drain(inputs.read_envelopes(write(workdir, "surrogate.ndjson", data)))
    assert exc is None and len(got) == 1
    with pytest.raises(UnicodeEncodeError):  # import turns it into "line 1: ... not valid Unicode"
        sent_fields(got[0])


def test_deeply_nested_envelope(workdir: Path) -> None:
    drain(inputs.read_envelopes(write(workdir, "deep.ndjson", b"[" * 100_000 + b"\n")))


def test_pairs_from_non_utf8_arguments() -> None:
    assert inputs.parse_pairs(["\udcff=\udcfe"]) == ((b"\xff", b"\xfe"),)

"""Input readers and the entry envelope: lossless both ways, precise errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from streamctl import inputs
from streamctl.core.models import Entry
from streamctl.errors import BadInput
from streamctl.render import serialize


def test_pairs_split_at_first_equals() -> None:
    assert inputs.parse_pairs(["a=1", "url=http://x?y=z", "empty="]) == (
        (b"a", b"1"),
        (b"url", b"http://x?y=z"),
        (b"empty", b""),
    )


@pytest.mark.parametrize(
    ("pair", "message"), [("novalue", "accepted: FIELD=VALUE"), ("=v", "empty")]
)
def test_bad_pairs(pair: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        inputs.parse_pairs([pair])


def test_json_event_values_that_are_not_strings_become_json_text() -> None:
    fields = inputs.parse_json_event(
        '{"s": "x", "n": 42, "f": 1.5, "b": true, "z": null, "o": {"k": [1, "é"]}}'
    )
    assert fields == (
        (b"s", b"x"),
        (b"n", b"42"),
        (b"f", b"1.5"),
        (b"b", b"true"),
        (b"z", b"null"),
        (b"o", '{"k":[1,"é"]}'.encode()),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1]", "expected a JSON object, got list"),
        ("{", "invalid JSON"),
        ("{}", "at least one field"),
        ("null", "got null"),
    ],
)
def test_bad_json_event(text: str, message: str) -> None:
    with pytest.raises(BadInput, match=message):
        inputs.parse_json_event(text)


def test_read_events_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson"
    path.write_text('{"a": "1"}\n\n{"a": "2"}\n{oops\n{"a": "4"}\n')
    events = inputs.read_events(str(path))
    assert next(events) == {"a": "1"}
    assert next(events) == {"a": "2"}
    with pytest.raises(BadInput, match=r"^line 4: invalid JSON"):
        next(events)


def test_read_events_skip(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson"
    path.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(5)))
    assert list(inputs.read_events(str(path), skip=3)) == [{"i": 3}, {"i": 4}]


def test_ndjson_chunk_parse_equals_line_by_line(tmp_path: Path) -> None:
    # lines that are invalid alone must not become valid when parsed together
    path = tmp_path / "e.ndjson"
    path.write_text('{"a": [1\n2]}, {"q": 1}\n')
    with pytest.raises(BadInput, match="line 1: invalid JSON"):
        list(inputs.read_events(str(path)))
    path.write_text(r'{"a": "x\n"}' + '\n{"b": 1}, {"c": 2}\n')
    with pytest.raises(BadInput, match="line 2: invalid JSON"):
        list(inputs.read_events(str(path)))
    path.write_text('{"a": NaN}\n')
    with pytest.raises(BadInput, match="line 1: invalid JSON"):
        list(inputs.read_events(str(path)))
    path.write_bytes(b'{"a": 1}\n\xff\n')
    events = inputs.read_events(str(path))
    assert next(events) == {"a": 1}
    with pytest.raises(BadInput, match="line 2: not UTF-8"):
        next(events)


def test_values_that_are_not_strings_become_json_text() -> None:
    assert inputs.json_text_values(["a", True, "b", None, "c", [1, {"x": "é"}], "d", "s"]) == [
        "a",
        b"true",
        "b",
        b"null",
        "c",
        '[1,{"x":"é"}]'.encode(),
        "d",
        "s",
    ]


def test_read_yaml_events(tmp_path: Path) -> None:
    path = tmp_path / "e.yaml"
    path.write_text("- {a: 1, b: x}\n- c: [1, 2]\n")
    assert list(inputs.read_events(str(path))) == [
        ((b"a", b"1"), (b"b", b"x")),
        ((b"c", b"[1,2]"),),
    ]
    path.write_text("- {a: 1}\n- just text\n")
    with pytest.raises(BadInput, match="item 2: expected a JSON object"):
        list(inputs.read_events(str(path)))
    path.write_text("a: 1\n")
    with pytest.raises(BadInput, match="YAML list of mappings"):
        list(inputs.read_events(str(path)))


def test_missing_file() -> None:
    with pytest.raises(BadInput, match="cannot read /nonexistent/x.ndjson"):
        list(inputs.read_events("/nonexistent/x.ndjson"))


def entry(*pairs: tuple[bytes, bytes]) -> Entry:
    return Entry("orders", "1795773600000-0", tuple(pairs))


def test_envelope_shape_keeps_field_order() -> None:
    data = serialize.entry_data(entry((b"z", b"1"), (b"a", b"2")))
    assert json.dumps(data) == (
        '{"stream": "orders", "id": "1795773600000-0", "time": "2026-11-27T10:00:00.000Z", '
        '"fields": {"z": "1", "a": "2"}}'
    )


def test_binary_values_are_base64() -> None:
    data = serialize.entry_data(entry((b"k", b"\xff\x00"), (b"t", "é".encode())))
    assert data["fields"] == {"k": {"base64": "/wA="}, "t": "é"}


def test_repeated_or_binary_names_become_pairs() -> None:
    assert serialize.entry_data(entry((b"a", b"1"), (b"a", b"2")))["fields"] == [
        ["a", "1"],
        ["a", "2"],
    ]
    assert serialize.entry_data(
        entry(
            (b"\xfe", b"1"),
        )
    )["fields"] == [[{"base64": "/g=="}, "1"]]


@pytest.mark.parametrize(
    "pairs",
    [
        [(b"a", b"1"), (b"b", b"two words")],
        [(b"k", b"\xff\xfe"), (b"q", b'"quoted"\n\\')],
        [(b"a", b"1"), (b"a", b"2")],
        [(b"\x80name", b"v"), (b"ok", "ü".encode())],
        [(b"ctrl", b"\x01\x1f\x7f")],
    ],
)
def test_fast_ndjson_equals_the_envelope_and_round_trips(
    pairs: list[tuple[bytes, bytes]], tmp_path: Path
) -> None:
    raw = (b"1795773600000-7", [x for p in pairs for x in p])
    line = serialize.ndjson_lines("orders", [raw])
    assert line.endswith("\n") and line.count("\n") == 1
    expected = serialize.entry_data(Entry.from_raw("orders", raw))
    assert json.loads(line) == expected
    path = tmp_path / "x.ndjson"
    path.write_text(line)
    [env] = list(inputs.read_envelopes(str(path)))
    assert isinstance(env, inputs.EntryLine)
    assert env.id == "1795773600000-7"
    flat = [x.encode() if isinstance(x, str) else x for x in env.flat]
    assert list(zip(flat[::2], flat[1::2], strict=True)) == pairs


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{nope", "line 1: invalid JSON"),
        ("[1]", "line 1: expected a JSON object"),
        ('{"id": "1-0"}', "line 1: no 'fields'"),
        ('{"id": 5, "fields": {"a": "1"}}', "line 1: no 'id'"),
        ('{"id": "1-x", "fields": {"a": "1"}}', "line 1: bad id '1-x'"),
        ('{"id": "1-0", "fields": {"a": 1}}', "must be a string or"),
        ('{"id": "1-0", "fields": {"a": {"base64": "***"}}}', "invalid base64"),
        ('{"id": "1-0", "fields": {}}', "is empty"),
    ],
)
def test_bad_envelopes(line: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "x.ndjson"
    path.write_text(line + "\n")
    with pytest.raises(BadInput, match=message):
        list(inputs.read_envelopes(str(path)))


def test_batches_mixing_shapes_and_escapes_equal_the_envelopes() -> None:
    batch = [
        (b"1-0", [b"a", b"1", b"b", b"2"]),
        (b"1-1", [b"a", b"x", b"b", b"y"]),
        (b"2-0", [b"k", b"v"]),
        (b"3-0", [b"a", b"1", b"a", b"2"]),
    ]
    for size in range(1, len(batch) + 1):
        for start in range(len(batch) - size + 1):
            part = batch[start : start + size]
            lines = serialize.ndjson_bytes("s", part).decode().splitlines()
            assert [json.loads(x) for x in lines] == [
                serialize.entry_data(Entry.from_raw("s", raw)) for raw in part
            ]
    tricky = [
        (b"5-0", [b"q", b'say "hi"']),
        (b"5-1", [b"n", b"line\nbreak"]),
        (b"6-0", [b"t", b"\t"]),
    ]
    for raw in tricky:
        line = serialize.ndjson_bytes("s", [(b"4-0", [b"a", b"b"]), raw]).decode()
        assert [json.loads(x) for x in line.splitlines()][1] == serialize.entry_data(
            Entry.from_raw("s", raw)
        )


def test_column_packing_equals_hiredis_per_event() -> None:
    import hiredis

    from streamctl.core import streams

    prefix = tuple(streams.xadd_args("orders", (), trim=["MAXLEN", "=", 10], mkstream=False))
    events = [{"order_id": str(i), "note": "é" * i, "empty": ""} for i in range(5)]
    packed = streams.pack_uniform(prefix, events)
    expected = b"".join(
        hiredis.pack_command(prefix + tuple(x for kv in e.items() for x in kv)) for e in events
    )
    assert packed == expected
    # with an id per event (import --keep-ids): XADD key ID field value ...
    ids = [f"{1795773600000 + i}-{i * 7}" for i in range(5)]
    assert streams.pack_uniform(("XADD", "orders"), events, ids) == b"".join(
        hiredis.pack_command(("XADD", "orders", i, *(x for kv in e.items() for x in kv)))
        for i, e in zip(ids, events, strict=True)
    )
    # all ASCII: built as text and encoded once; the same bytes, with and without ids
    plain = [{"order_id": str(i), "status": "created", "empty": ""} for i in range(5)]
    for with_ids in (None, ids):
        assert streams.pack_uniform(("XADD", "orders"), plain, with_ids) == b"".join(
            hiredis.pack_command(
                ("XADD", "orders", *([with_ids[n]] if with_ids else []),
                 *(x for kv in e.items() for x in kv))
            )
            for n, e in enumerate(plain)
        )  # fmt: skip
    # other shapes go one event at a time
    assert streams.pack_uniform(prefix, [{"a": "1"}, {"b": "2"}]) is None
    assert streams.pack_uniform(prefix, [{"a": "1"}, {"a": 2}]) is None
    assert streams.pack_uniform(prefix, [{"a": "1", "b": "2"}, {"b": "2", "a": "1"}]) is None


def test_blocks_without_arrays_parse_joined_and_still_name_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "e.ndjson"
    path.write_text('{"a": "1"}\n{"a": {"b": {}}}\n{"c": 3}\n')
    assert list(inputs.read_events(str(path))) == [{"a": "1"}, {"a": {"b": {}}}, {"c": 3}]
    path.write_text('{"a": {"b": 1}\n{"c": 1}}\n')  # invalid alone, no array: named
    with pytest.raises(BadInput, match="line 1: invalid JSON"):
        list(inputs.read_events(str(path)))
    path.write_text('{"a": 1}, {"b": 2}\n{"c": 3}\n')
    with pytest.raises(BadInput, match="line 1: invalid JSON"):
        list(inputs.read_events(str(path)))
    path.write_text('{"a": 1}\n{}\n')
    with pytest.raises(BadInput, match="line 2: an event needs at least one field"):
        list(inputs.read_events(str(path)))


def test_envelopes_read_by_orjson_equal_the_json_reading(tmp_path: Path) -> None:
    """read_envelopes takes a line from orjson only when nothing could have been lost: repeated
    field names (orjson keeps the last), escaped quotes, lone surrogates, big numbers, NaN go to
    json with its pairs hook, and every line reads as json alone reads it."""
    lines = [
        '{"stream":"s","id":"1-0","time":"t","fields":{"a":"1","b":"2"}}',
        '{"stream":"s","id":"2-0","fields":{"a":"1","a":"2"}}',  # a repeated name
        '{"id" : "3-0", "fields" : {"a" : "x", "a" : "y"}}',  # the same, spaced
        '{"id":"4-0","fields":{"q\\"uote":"v\\"al","b":{"base64":"/w=="}}}',
        '{"id":"5-0","fields":[["a","1"],["a","2"]],"extra":[1,2.5,null,true]}',
        '{"id":"6-0","fields":{"s":"\\ud800"}}',  # a lone surrogate: json reads it
        '{"id":"7-0","fields":{"n":"1"},"big":123456789012345678901234567890}',
        '{"id":"8-0","fields":{"n":"1"},"x":NaN}',
        '{"id":"9-0","fields":{"é":"ü\\u00e9","k":"a:b\\",c"}}',
        "",
    ]
    path = tmp_path / "in.ndjson"
    path.write_text("\n".join(lines) + "\n")
    got = list(inputs.read_envelopes(str(path)))
    decode = json.JSONDecoder(object_pairs_hook=inputs._pairs_hook).decode
    expected_fields = [decode(line)["fields"] for line in lines if line]
    assert [e.id for e in got] == [f"{i}-0" for i in range(1, 10)]
    assert [e.flat for e in got] == [inputs._flat_fields(f, "") for f in expected_fields]
    assert got[1].flat == [b"a", b"1", b"a", b"2"] and got[2].flat == [b"a", b"x", b"a", b"y"]
    assert got[5].flat == ["s", "\ud800"]

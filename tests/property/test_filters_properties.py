"""Properties of the one filter implementation (core/filters.py), on random entries with repeated
field names and bytes that are not UTF-8:

- `match FIELD=GLOB` is fnmatch on the text of the field's last value (surrogateescape);
- `match FIELD=VALUE` and `where "fields.FIELD == 'VALUE'"` select the same entries;
- the compiled `where` agrees with jmespath's own interpreter on the whole envelope.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

import jmespath
from hypothesis import given, settings
from hypothesis import strategies as st

from streamctl.core.filters import compile_filter
from streamctl.ids import format_time

NAMES = [b"status", b"amount", b"n\xff", b"\xc3\xa9"]
VALUES = [b"new", b"shipped", b"ship", b"150", b"99.5", b"", b"\xff\xfe", b"x*y", b"0", b"-3"]

names = st.sampled_from(NAMES)
values = st.one_of(st.sampled_from(VALUES), st.binary(max_size=4))
flats = st.lists(st.tuples(names, values), max_size=6).map(
    lambda pairs: [b for pair in pairs for b in pair]
)
ids = st.integers(0, 2**42).map(lambda ms: f"{ms}-0".encode())
PROPS = settings(max_examples=300, deadline=None, database=None)


def text(b: bytes) -> str:
    return b.decode("utf-8", "surrogateescape")


def envelope(stream: str, eid: bytes, flat: list[bytes]) -> dict[str, Any]:
    fields: dict[str, str] = {}
    for i in range(0, len(flat), 2):
        fields[text(flat[i])] = text(flat[i + 1])  # the last value stays
    ms = int(eid.split(b"-")[0])
    return {"stream": stream, "id": eid.decode(), "time": format_time(ms), "fields": fields}


def last_value(flat: list[bytes], name: bytes) -> bytes | None:
    found = None
    for i in range(0, len(flat), 2):
        if flat[i] == name:
            found = flat[i + 1]
    return found


globs = st.one_of(
    st.sampled_from(["*", "ship*", "s?ipped", "[ns]*", "new", "shipped", "", "\udcff*", "x[*]y"]),
    st.sampled_from(VALUES).map(text),
)


@PROPS
@given(flat=flats, name=names, glob=globs, eid=ids)
def test_match_is_fnmatch_on_the_last_value(flat, name, glob, eid):
    f = compile_filter([f"{text(name)}={glob}"])
    assert f is not None
    value = last_value(flat, name)
    expected = value is not None and fnmatchcase(text(value), glob)
    assert f.passes("s", eid, flat) is expected


@PROPS
@given(flat=flats, name=names, value=st.sampled_from(VALUES), eid=ids)
def test_match_and_where_select_the_same_entries(flat, name, value, eid):
    # the JMESPath literal: no quote or backslash in VALUES
    by_match = compile_filter([f"{text(name)}={text(value).replace('*', '[*]')}"])
    by_where = compile_filter([], f"fields.\"{text(name)}\" == '{text(value)}'")
    assert by_match is not None and by_where is not None
    assert by_match.passes("s", eid, flat) is by_where.passes("s", eid, flat)


def atom() -> st.SearchStrategy[str]:
    field = st.sampled_from(["fields.status", "fields.amount", 'fields."n\udcff"', "fields.nope"])
    return st.one_of(
        field,
        field.map(lambda f: f"to_number({f})"),
        field.map(lambda f: f"length({f})"),
        st.sampled_from(
            ["`0`", "`1`", "`true`", "`false`", "`null`", "''", "'shipped'", "`100`", "`[]`"]
        ),
        st.sampled_from(["stream", "id", "time", "keys(fields)", "length(@)", "@.fields.status"]),
    )


def expressions() -> st.SearchStrategy[str]:
    compare = st.tuples(atom(), st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), atom()).map(
        " ".join
    )
    base = st.one_of(atom(), compare)
    return st.recursive(
        base,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["&&", "||"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda e: f"!({e})"),
        ),
        max_leaves=6,
    )


def reference(expression: str, env: dict[str, Any]) -> bool:
    try:
        result = jmespath.search(expression, env)
    except (ValueError, TypeError):  # a type error on this entry: it does not pass
        return False
    return not (result is None or result is False or result in ("", [], {}))


@PROPS
@given(flat=flats, expression=expressions(), eid=ids)
def test_compiled_where_agrees_with_jmespath(flat, expression, eid):
    f = compile_filter([], expression)
    assert f is not None
    assert f.passes("orders", eid, flat) is reference(expression, envelope("orders", eid, flat))

"""render.serialize.dump_json / dump_ndjson (orjson, json where orjson refuses) write the same
text as the standard library's json with the layout the SPEC shows (indent 2, UTF-8 as is)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from streamctl.render.serialize import dump_json, dump_ndjson


def reference_json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def reference_ndjson(items: list[Any]) -> str:
    return "".join(json.dumps(i, ensure_ascii=False, separators=(",", ":")) + "\n" for i in items)


# strings (control characters, quotes, backslashes, non-ASCII, U+2028), ints, plain floats
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: 1e-4 <= abs(f) < 1e16)
    | st.text()
)
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(documents)
def test_the_same_text_as_json(data: Any) -> None:
    assert dump_json(data) == reference_json(data)
    assert dump_ndjson([data, data]) == reference_ndjson([data, data])


def test_what_orjson_refuses_is_written_by_json() -> None:
    for data in (
        {"big": 2**70},  # past 64 bits
        {"s": "caf\udce9"},  # a lone surrogate (surrogateescape'd bytes)
        {1: "a", "b": [{2: None}]},  # keys that are not strings
    ):
        assert dump_json(data) == reference_json(data)
        assert dump_ndjson([data, {"a": 1}]) == reference_ndjson([data, {"a": 1}])
    assert dump_ndjson([]) == ""


def test_the_check_report_shape() -> None:
    report = {
        "status": "breached",
        "breached": True,
        "checks": [
            {
                "stream": f"orders-{i}",
                "group": "billing",
                "check": "lag",
                "value": i % 3,
                "max": 1,
                "status": "ok",
            }
            for i in range(50)
        ]
        + [
            {
                "stream": 'é\n"\\\u2028\x7f',
                "group": None,
                "check": "length",
                "value": 0,
                "max": None,
                "status": "ok",
            }
        ],
    }
    assert dump_json(report) == reference_json(report)
    assert dump_json([]) == "[]\n"
    assert dump_json({}) == "{}\n"

"""core/filters.py: the one implementation of --match and --where (no server needed)."""

from __future__ import annotations

import pytest

from streamctl.core.filters import BadFilter, compile_filter
from streamctl.errors import BadInput, ExitCode

REPEATED = [b"status", b"new", b"amount", b"150", b"status", b"shipped"]


def passes(flat: list[bytes], matches: list[str] = (), where: str | None = None) -> bool:  # type: ignore[assignment]
    f = compile_filter(matches, where)
    assert f is not None
    return f.passes("orders", b"1795773600000-0", flat)


def test_no_filter_is_none():
    assert compile_filter([], None) is None


@pytest.mark.parametrize(
    ("matches", "where", "expected"),
    [
        (["status=shipped"], None, True),  # the last value counts
        (["status=new"], None, False),
        (["status=ship*"], None, True),
        (None, "fields.status == 'shipped'", True),
        (None, "fields.status == 'new'", False),
        (["status=shipped"], "fields.status == 'new'", False),  # with both, both must pass
    ],
)
def test_repeated_field_counts_with_its_last_value(matches, where, expected):
    assert passes(REPEATED, matches or [], where) is expected


def test_matches_all_must_hold_and_globs_are_full_and_case_sensitive():
    flat = [b"status", b"shipped", b"region", b"eu-west"]
    assert passes(flat, ["status=ship*", "region=eu-*"])
    assert not passes(flat, ["status=ship*", "region=us*"])
    assert not passes(flat, ["status=ship"])  # the whole value
    assert not passes(flat, ["status=SHIPPED"])
    assert passes(flat, ["status=sh?pped", "region=[ef]u-*"])
    assert not passes(flat, ["missing=*"])  # no such field: no match, even for *
    assert passes([b"q", b"a=b"], ["q=a=*"])  # the first '=' splits
    assert passes([b"q", b""], ["q="])  # an empty value


def test_non_utf8_bytes_stand_for_themselves():
    flat = [b"q", b"\xff\xfe", b"n\xff", b"v"]
    assert passes(flat, ["q=*"])
    assert not passes(flat, ["q=\ufffd\ufffd"])  # not decoded with 'replace'
    # an argument from the command line carries odd bytes as surrogates (os.fsdecode)
    assert passes(flat, ["q=\udcff\udcfe"])
    assert passes(flat, ["q=\udcff*"])
    assert passes(flat, ["n\udcff=v"])
    assert passes(flat, [], "fields.q == '\udcff\udcfe'")
    assert not passes([b"q", b"\xc3\xa9"], ["q=\udcc3\udca9"])  # valid UTF-8 is text: 'é'
    assert passes([b"q", b"\xc3\xa9"], ["q=\u00e9"], "fields.q == '\u00e9'")


def test_where_sees_the_envelope():
    flat = [b"status", b"shipped", b"amount", b"150"]
    assert passes(flat, where="stream == 'orders' && id == '1795773600000-0'")
    assert passes(flat, where="time == '2026-11-27T10:00:00.000Z'")
    assert passes(flat, where="to_number(fields.amount) > `100`")
    assert not passes(flat, where="to_number(fields.amount) > `200`")
    assert passes(flat, where="keys(fields) == ['status', 'amount']")
    assert passes(flat, where="length(@) == `4`")
    assert passes(flat, where="starts_with(fields.status, 'ship')")
    assert passes(flat, where="contains(['a', 'shipped'], fields.status)")


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("`0`", True),  # JMESPath: 0 is true
        ("`false`", False),
        ("''", False),
        ("`[]`", False),
        ("`{}`", False),
        ("fields.nope", False),
        ("!`0`", False),
        ("fields.status || `false`", True),
        ("`1` == `true`", False),  # never Python's True == 1
        ("fields.status < `1`", False),  # text against a number: a type error
        ("length(fields.nope) > `0`", False),  # a type error on this entry: it does not pass
    ],
)
def test_where_truthiness_is_jmespaths(where, expected):
    assert passes([b"status", b"shipped"], where=where) is expected


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("fields.status ==", "incomplete expression at position 16"),
        ("fields.status ~ 'x'", "at position 14"),
        ("'abc", "at position 0"),
        ("to_nubmer(fields.a)", "unknown function to_nubmer()"),
        ("length(fields.a, fields.b)", "length() takes 1 argument(s), 2 given"),
        ("  ", "give a JMESPath expression"),
    ],
)
def test_bad_where_is_bad_input_naming_the_position(where, message):
    with pytest.raises(BadFilter) as caught:
        compile_filter([], where)
    assert isinstance(caught.value, BadInput) and caught.value.exit_code == ExitCode.USAGE
    text = str(caught.value)
    assert text.startswith(f"bad where {where!r}: ") and message in text
    assert "\n" not in text and "--" not in text
    assert caught.value.worded("--").startswith(f"bad --where {where!r}: ")


@pytest.mark.parametrize("bad", ["status", "=x", ""])
def test_bad_match_names_the_argument(bad):
    with pytest.raises(BadFilter, match="FIELD=GLOB") as caught:
        compile_filter([bad])
    assert str(caught.value).startswith(f"bad match {bad!r}")


def test_select_keeps_order_and_describe_names_the_filters():
    f = compile_filter(["status=s*"], "fields.n != '2'")
    assert f is not None
    entries = [
        (f"{i}-0".encode(), [b"status", b"shipped", b"n", str(i).encode()]) for i in range(4)
    ]
    assert [e[0] for e in f.select("s", entries)] == [b"0-0", b"1-0", b"3-0"]
    assert f.describe() == "status=s* where fields.n != '2'"


def test_jmespath_is_imported_only_for_where():
    import subprocess
    import sys

    code = (
        "import sys; from streamctl.core.filters import compile_filter; "
        "compile_filter(['a=b']); assert 'jmespath' not in sys.modules; "
        "compile_filter([], 'a'); assert 'jmespath' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)

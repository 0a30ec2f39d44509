"""The id/time grammar: every accepted form resolves to the documented id; every other is exit 2."""

from __future__ import annotations

import pytest

from streamctl import ids
from streamctl.errors import BadInput, ExitCode

NOW = 1_795_773_600_000  # 2026-11-27T10:00:00Z


def now() -> int:
    return NOW


def start(text: str) -> str:
    return ids.resolve_start(ids.parse_position(text, allow_last=True), now)


def end(text: str) -> str:
    return ids.resolve_end(ids.parse_position(text, allow_last=True), now)


MAX = 2**64 - 1


@pytest.mark.parametrize(
    ("text", "as_start", "as_end"),
    [
        ("-", "-", "-"),
        ("+", "+", "+"),
        ("0", "0-0", "0-0"),
        ("1795773600000-3", "1795773600000-3", "1795773600000-3"),
        ("1795773600000", "1795773600000-0", f"1795773600000-{MAX}"),
        ("2026-11-27T10:00:00Z", "1795773600000-0", f"1795773600999-{MAX}"),
        ("2026-11-27T10:00:00.250Z", "1795773600250-0", f"1795773600250-{MAX}"),
        ("2026-11-27T11:00:00+01:00", "1795773600000-0", f"1795773600999-{MAX}"),
        ("2026-11-27T05:00:00-0500", "1795773600000-0", f"1795773600999-{MAX}"),
        ("2026-11-27T10:00:00", "1795773600000-0", f"1795773600999-{MAX}"),  # no zone: UTC
        ("2026-11-27 10:00", "1795773600000-0", f"1795773659999-{MAX}"),
        ("2026-11-27", "1795737600000-0", f"1795823999999-{MAX}"),  # the whole day as END
        ("90s", f"{NOW - 90_000}-0", f"{NOW - 90_000}-{MAX}"),
        ("15m", f"{NOW - 900_000}-0", f"{NOW - 900_000}-{MAX}"),
        ("2h30m", f"{NOW - 9_000_000}-0", f"{NOW - 9_000_000}-{MAX}"),
        ("7d", f"{NOW - 604_800_000}-0", f"{NOW - 604_800_000}-{MAX}"),
        ("500ms", f"{NOW - 500}-0", f"{NOW - 500}-{MAX}"),
        ("1w", f"{NOW - 604_800_000}-0", f"{NOW - 604_800_000}-{MAX}"),
    ],
)
def test_accepted_forms(text: str, as_start: str, as_end: str) -> None:
    assert start(text) == as_start
    assert end(text) == as_end


@pytest.mark.parametrize(
    ("text", "as_start"),
    [
        ("(1795773600000-3", "1795773600000-4"),
        (f"(1795773600000-{MAX}", "1795773600001-0"),
        ("(1795773600000", "1795773600001-0"),  # after every entry of that millisecond
        ("(2026-11-27", "1795824000000-0"),  # after the whole day
        ("(2026-11-27T10:00:00Z", "1795773601000-0"),
        ("(0", "0-1"),
    ],
)
def test_exclusive_starts(text: str, as_start: str) -> None:
    assert start(text) == as_start


def test_exclusive_end_is_the_previous_id() -> None:
    assert end("(1795773600000-3") == "1795773600000-2"
    assert end("(1795773600000-0") == f"1795773599999-{MAX}"


def test_dollar_only_where_allowed() -> None:
    assert ids.resolve_start(ids.parse_position("$", allow_last=True)) == "$"
    with pytest.raises(BadInput, match=r"'\$' is not accepted here"):
        ids.parse_position("$")


def test_exclusive_refused_where_not_allowed() -> None:
    with pytest.raises(BadInput, match="exclusive"):
        ids.parse_position("(123", allow_exclusive=False)


def test_duration_is_measured_on_the_given_clock() -> None:
    calls = []

    def server_now() -> int:
        calls.append(1)
        return 10_000

    assert ids.resolve_start(ids.parse_position("5s"), server_now) == "5000-0"
    assert calls == [1]
    # ids and times never ask the clock
    ids.resolve_start(ids.parse_position("2026-11-27"), server_now)
    assert calls == [1]


def test_duration_longer_than_epoch_clamps_to_zero() -> None:
    assert ids.resolve_start(ids.parse_position("100w"), lambda: 1000) == "0-0"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "12-",
        "-12",
        "1-2-3",
        "12:00",
        "2026-13-01",
        "2026-02-30",
        "2026-11-27T25:00",
        "2026-11-27T10:00:00+25:00",
        "1969-12-31",
        "5x",
        "1.5s",
        "s",
        "(",
        "(-",
        "(+",
        "($",
        "18446744073709551616",
        "1-18446744073709551616",
        "now",
        "+1",
    ],
)
def test_rejected_forms_are_usage_errors(text: str) -> None:
    with pytest.raises(BadInput) as info:
        ids.parse_position(text, allow_last=True)
    assert info.value.exit_code == ExitCode.USAGE
    assert "\n" not in str(info.value)
    assert repr(text)[1:-1] in str(info.value) or text == ""


def test_rejection_lists_the_accepted_forms() -> None:
    with pytest.raises(BadInput) as info:
        ids.parse_position("yesterday")
    message = str(info.value)
    for form in ("1795773600000-3", "2026-11-27T10:00:00Z", "90s", "(ID"):
        assert form in message


@pytest.mark.parametrize(
    ("text", "ms"),
    [("0", 0), ("500ms", 500), ("90s", 90_000), ("2h30m", 9_000_000), ("7d", 604_800_000)],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert ids.parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "-5s", "5", "1.5m", "m", "10 s", "0s5"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(BadInput, match="accepted: 500ms"):
        ids.parse_duration(text, what="--min-idle")


def test_stream_id_order_and_neighbours() -> None:
    a = ids.StreamId.parse("5-1")
    assert a < ids.StreamId.parse("5-2") < ids.StreamId.parse("6-0")
    assert a.next() == ids.StreamId(5, 2)
    assert ids.StreamId(5, MAX).next() == ids.StreamId(6, 0)
    assert ids.StreamId(6, 0).previous() == ids.StreamId(5, MAX)
    assert ids.MIN_ID.previous() == ids.MIN_ID
    assert str(ids.StreamId.parse(b"7")) == "7-0"


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0ms"),
        (999, "999ms"),
        (1000, "1s"),
        (192_000, "3m12s"),
        (180_000, "3m"),
        (7_500_000, "2h5m"),
        (3 * 86_400_000 + 4 * 3_600_000, "3d4h"),
    ],
)
def test_format_duration(ms: int, text: str) -> None:
    assert ids.format_duration(ms) == text
    assert ids.format_age(ms) == f"{text} ago"


def test_format_time() -> None:
    assert ids.format_time(1_795_773_600_123) == "2026-11-27T10:00:00.123Z"
    assert ids.time_of_id("1795773600000-5") == "2026-11-27T10:00:00.000Z"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("1795773600000-3", (1795773600000, 3)),
        ("1795773600000", (1795773600000, 0)),
        ("0-0", (0, 0)),
        (f"{MAX}-{MAX}", (MAX, MAX)),
    ],
)
def test_id_key_of_full_and_millisecond_ids(text: str, key: tuple[int, int]) -> None:
    assert ids.id_key(text) == key
    assert ids.StreamId.parse(text) == ids.StreamId(*key)  # the same answer as the parser


@pytest.mark.parametrize(
    "text",
    ["", "-", "1-", "-1", "1-2-3", "1.5", " 1-0", "1-0 ", "abc", "١٢٣-0", "1-٣", f"{MAX + 1}-0"],
)
def test_id_key_rejects_what_is_not_an_id(text: str) -> None:
    assert ids.id_key(text) is None


def test_resolve_minid_forms() -> None:
    assert ids.resolve_minid("1795773600000-3") == "1795773600000-3"
    assert ids.resolve_minid("2026-11-27T10:00:00Z") == f"{NOW}-0"
    assert ids.resolve_minid("0") == "0-0"
    assert ids.resolve_minid("90s", now) == f"{NOW - 90_000}-0"


def test_resolve_minid_asks_the_clock_only_for_a_duration() -> None:
    def no_clock() -> int:
        raise AssertionError("the clock was read")

    assert ids.resolve_minid("5-1", no_clock) == "5-1"


@pytest.mark.parametrize("text", ["+", "$", "(5-0", "soon"])
def test_resolve_minid_refuses_non_positions(text: str) -> None:
    with pytest.raises(BadInput) as info:
        ids.resolve_minid(text, now)
    assert info.value.exit_code == ExitCode.USAGE
    assert "\n" not in info.value.message

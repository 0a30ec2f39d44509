"""count_noun: the one way a count is worded with its noun (and verb) in messages and views."""

from __future__ import annotations

import pytest

from streamctl.wording import count_noun


@pytest.mark.parametrize(
    "n, expected",
    [
        (0, "0 entries"),
        (1, "1 entry"),
        (2, "2 entries"),
        (999, "999 entries"),
        (1234, "1,234 entries"),
        (1_000_001, "1,000,001 entries"),
    ],
)
def test_count_noun_picks_the_noun_and_groups_thousands(n: int, expected: str) -> None:
    assert count_noun(n, "entry", "entries") == expected


def test_the_words_may_carry_the_verb() -> None:
    assert count_noun(1, "entry was", "entries were") == "1 entry was"
    assert count_noun(2, "entry was", "entries were") == "2 entries were"
    assert count_noun(0, "event before it was", "events before it were") == (
        "0 events before it were"
    )


def test_ungrouped_keeps_the_digits_together() -> None:
    assert count_noun(2100, "event", "events", grouped=False) == "2100 events"
    assert count_noun(1, "event", "events", grouped=False) == "1 event"

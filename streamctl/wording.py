"""Counts worded for people: "1 entry", "2 entries", "1,234 entries".

At the package top (beside ids.py and errors.py) and importing nothing, so core, the Client,
render and the CLI all word a count the same way without breaking the layers.
"""

from __future__ import annotations


def count_noun(n: int, singular: str, plural: str, *, grouped: bool = True) -> str:
    """`n`, then `singular` when `n` is 1, else `plural`: "1 entry", "1,234 entries".

    The words may carry the verb too, so it agrees: count_noun(n, "entry was", "entries were").
    `grouped=False` writes the number without thousands separators ("1234 entries"), for
    messages that never had them (scripts may read the number).
    """
    number = f"{n:,}" if grouped else str(n)
    return f"{number} {singular if n == 1 else plural}"

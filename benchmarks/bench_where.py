"""range --where over 500k entries vs plain range, both -o ndjson > /dev/null.

Target (issue 16): --where loses less than half of range's speed (ratio >= 0.5x). The expression
is the SPEC's example and passes almost every entry, so the output cost is the same in both.
Run: python benchmarks/bench_where.py
"""

from __future__ import annotations

import os
import statistics
import subprocess

from _common import STREAMCTL, interleaved, report, server
from bench_range import fill

N = int(os.environ.get("BENCH_N", 500_000))  # a smaller N for a quick check
ROUNDS = 5
WHERE = "fields.status == 'created' && to_number(fields.amount) > `100`"


def main() -> None:
    srv = server()
    try:
        fill(srv.client(), "s", N)

        def range_(*extra: str) -> None:
            subprocess.run(
                [*STREAMCTL, "-u", srv.url, "range", "s", "-o", "ndjson", *extra],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        # interleaved (plain, where, match, plain, ...): a machine shared with others slows
        # the cases of a round alike
        cases = {
            "plain": range_,
            "where": lambda: range_("--where", WHERE),
            "match": lambda: range_("--match", "status=creat*"),
        }
        times = interleaved(ROUNDS, cases)
        plain = N / statistics.median(times["plain"])
        for name in ("where", "match"):
            # each round's ratio is taken in one moment of the machine: the median is reported
            ratio = statistics.median(
                p / t for p, t in zip(times["plain"], times[name], strict=True)
            )
            rate = N / statistics.median(times[name])
            report(
                f"range --{name} {N:,} entries", rate, plain, "entries/s", ">= 0.5x", ratio >= 0.5,
                ratio,
            )  # fmt: skip
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

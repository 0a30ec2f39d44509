"""check --max-lag N over 20,000 streams (a group each; half of the groups hold a pending entry)
among 20,000 other keys vs a plain redis-py script: SCAN TYPE stream, then XINFO STREAM + XINFO
GROUPS pipelined 1000 streams at a time, one JSON line per stream (bench_metrics' script). Also
the cost growth: check over 2,000 streams (+ 2,000 other keys) vs 20,000, per stream.

Targets: <= 1.0x the script's wall time (the median of 7 pairs' ratios); per-stream cost at
20,000 within 1.2x of 2,000 (medians).
Run: python benchmarks/bench_check.py
"""

from __future__ import annotations

import re
import subprocess
import sys

from _common import STREAMCTL, Paired, paired, report, server
from bench_metrics import REFERENCE, fill

ROUNDS = 7


def measure(streams: int) -> Paired:
    """check's wall time and the script's over `streams` streams and as many other keys
    (ROUNDS pairs)."""
    srv = server()
    try:
        fill(srv.client(), streams, streams)
        # the default output to a pipe (JSON), as a CI job reads it; exit 5: lags of 2 breach
        # --max-lag 1 on half of the streams
        check = [*STREAMCTL, "-u", srv.url, "check", "--max-lag", "1"]

        def reference() -> None:
            subprocess.run(
                [sys.executable, "-c", REFERENCE, str(srv.port)],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        def ours() -> None:
            proc = subprocess.run(
                check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
            )
            assert proc.returncode == 5, proc.returncode

        out = subprocess.run(check, capture_output=True, text=True, check=False).stdout
        assert len(re.findall(r'"check": ?"lag"', out)) == streams, out[-300:]
        # one per breached stream, and the report's own status
        assert len(re.findall(r'"status": ?"breached"', out)) == streams // 2 + 1, out[-300:]
        return paired(ROUNDS, ours, reference)
    finally:
        srv.stop()


def main() -> None:
    small = measure(2_000)
    large = measure(20_000)
    report(
        "check --max-lag over 20k streams + 20k other keys (wall time)",
        large.ours,
        large.reference,
        "s",
        "<= 1.0x",
        large.ratio <= 1.0,
        large.ratio,
    )
    per_small, per_large = small.ours / 2_000 * 1e6, large.ours / 20_000 * 1e6
    report(
        "check cost growth, 20k vs 2k streams (per stream, startup included)",
        per_large,
        per_small,
        "us/stream",
        "<= 1.2x",
        per_large <= 1.2 * per_small,
    )


if __name__ == "__main__":
    main()

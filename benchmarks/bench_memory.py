"""Peak RSS of `range -o ndjson` over 1M entries vs the same over 100k entries.

Target: <= 1.3x (memory bounded by the batch, not the stream).
Run: python benchmarks/bench_memory.py
"""

from __future__ import annotations

import os
import subprocess

from _common import STREAMCTL, report, server


def fill(client, stream: str, n: int) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, n, 20_000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(n, start + 20_000)):
            pipe.xadd(stream, {"order_id": str(i), "status": "created", "note": "x" * 40})
        pipe.execute()


def peak_rss_kib(cmd: list[str]) -> int:
    """ru_maxrss of one child process, read from wait4 (Linux: KiB)."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {cmd}")
    return usage.ru_maxrss


def main() -> None:
    srv = server()
    try:
        client = srv.client()
        fill(client, "small", 100_000)
        fill(client, "large", 1_000_000)
        small = peak_rss_kib([*STREAMCTL, "-u", srv.url, "range", "small", "-o", "ndjson"])
        large = peak_rss_kib([*STREAMCTL, "-u", srv.url, "range", "large", "-o", "ndjson"])
        report(
            "peak RSS of range over 1M vs 100k entries",
            large / 1024,
            small / 1024,
            "MiB",
            "<= 1.3x",
            large <= 1.3 * small,
        )
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

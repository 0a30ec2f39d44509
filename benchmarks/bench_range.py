"""range STREAM -o ndjson > /dev/null over 500k entries vs redis-cli XRANGE STREAM - + > /dev/null.

Target: >= 0.8x redis-cli's entries/s. Run: python benchmarks/bench_range.py
"""

from __future__ import annotations

import subprocess

from _common import STREAMCTL, best_of, report, server, tool

N = 500_000


def fill(client, stream: str, n: int) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, n, 10_000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, min(n, start + 10_000)):
            pipe.xadd(stream, {"order_id": str(i), "status": "created", "amount": f"{i * 1.5:.2f}"})
        pipe.execute()


def main() -> None:
    srv = server()
    try:
        client = srv.client()
        fill(client, "s", N)
        cli = tool("redis-cli")

        def reference() -> None:
            subprocess.run(
                [cli, "-p", str(srv.port), "XRANGE", "s", "-", "+"],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        def ours() -> None:
            subprocess.run(
                [*STREAMCTL, "-u", srv.url, "range", "s", "-o", "ndjson"],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        ref = N / best_of(3, reference)
        rate = N / best_of(3, ours)
        report("range -o ndjson 500k entries", rate, ref, "entries/s", ">= 0.8x", rate >= 0.8 * ref)
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

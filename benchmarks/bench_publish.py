"""publish --file of 200k NDJSON events (3 fields) vs redis-benchmark -P 64 -c 1 XADD.

Target: >= 0.6x redis-benchmark's events/s. Run: python benchmarks/bench_publish.py
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

from _common import STREAMCTL, best_of, report, run, server, tool

N = 200_000


def main() -> None:
    srv = server()
    try:
        client = srv.client()
        bench = tool("redis-benchmark")

        def reference() -> float:
            client.delete("ref")
            out = run(
                [
                    bench,
                    "-p",
                    str(srv.port),
                    "-P",
                    "64",
                    "-c",
                    "1",
                    "-n",
                    str(N),
                    "-q",
                    "XADD",
                    "ref",
                    "*",
                    "f1",
                    "v1",
                    "f2",
                    "v2",
                    "f3",
                    "v3",
                ]
            ).stdout.decode()
            m = re.search(r"([\d.]+) requests per second", out.replace(",", ""))
            if not m:
                sys.exit(f"cannot read redis-benchmark output: {out!r}")
            return float(m.group(1))

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "events.ndjson"
            with path.open("w") as fh:
                for i in range(N):
                    fh.write(json.dumps({"f1": f"v{i}", "f2": "created", "f3": str(i * 3)}) + "\n")

            def ours() -> None:
                client.delete("s")
                run([*STREAMCTL, "-u", srv.url, "-q", "publish", "s", "--file", str(path)])
                assert client.xlen("s") == N

            ref_rate = max(reference() for _ in range(3))
            seconds = best_of(3, ours)
        rate = N / seconds
        report(
            "publish --file 200k events",
            rate,
            ref_rate,
            "events/s",
            ">= 0.6x",
            rate >= 0.6 * ref_rate,
        )
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

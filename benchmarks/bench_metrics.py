"""metrics over 20,000 streams (a group each; half of the groups hold a pending entry) among
20,000 other keys vs a plain redis-py script: SCAN TYPE stream, then XINFO STREAM + XINFO GROUPS
pipelined 1000 streams at a time, one JSON line per stream.

Target: <= 1.5x the script's wall time (the median of 7 pairs' ratios).
Run: python benchmarks/bench_metrics.py
"""

from __future__ import annotations

import subprocess
import sys

from _common import STREAMCTL, paired, report, server

STREAMS = 20_000
ROUNDS = 7
OTHER_KEYS = 20_000

REFERENCE = r"""
import json, sys, redis
r = redis.Redis(port=int(sys.argv[1]), protocol=2)
names = list(r.scan_iter(count=1000, _type="stream"))
out = sys.stdout
for i in range(0, len(names), 1000):
    batch = names[i : i + 1000]
    pipe = r.pipeline(transaction=False)
    for n in batch:
        pipe.xinfo_stream(n)
        pipe.xinfo_groups(n)
    replies = pipe.execute()
    for j, n in enumerate(batch):
        info, groups = replies[2 * j], replies[2 * j + 1]
        out.write(json.dumps({
            "stream": n.decode(),
            "length": info["length"],
            "groups": [
                {"name": g["name"].decode(), "pending": g["pending"], "lag": g.get("lag")}
                for g in groups
            ],
        }) + "\n")
"""


def fill(client, streams: int = STREAMS, other_keys: int = OTHER_KEYS) -> None:  # type: ignore[no-untyped-def]
    for start in range(0, streams, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, start + 1000):
            name = f"orders-{i}"
            pipe.xadd(name, {"order_id": str(i), "status": "created"})
            pipe.xadd(name, {"order_id": str(i), "status": "paid"})
            pipe.xgroup_create(name, "billing", "0")
            if i % 2:
                pipe.xreadgroup("billing", "w1", {name: ">"}, count=1)
        pipe.execute()
    for start in range(0, other_keys, 1000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, start + 1000):
            pipe.set(f"cache:{i}", "x" * 20)
        pipe.execute()


def main() -> None:
    srv = server()
    try:
        fill(srv.client())

        def reference() -> None:
            subprocess.run(
                [sys.executable, "-c", REFERENCE, str(srv.port)],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        def ours() -> None:
            subprocess.run(
                [*STREAMCTL, "-u", srv.url, "metrics", "--max-streams", str(STREAMS)],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        out = subprocess.run(
            [*STREAMCTL, "-u", srv.url, "metrics", "--max-streams", str(STREAMS)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert f"streamctl_streams {STREAMS}.0" in out, out[-500:]
        assert "streamctl_streams_truncated 0.0" in out

        got = paired(ROUNDS, ours, reference)
        report(
            "metrics over 20k streams + 20k other keys (wall time)",
            got.ours,
            got.reference,
            "s",
            "<= 1.5x",
            got.ratio <= 1.5,
            got.ratio,
        )
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

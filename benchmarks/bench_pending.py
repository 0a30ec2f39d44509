"""pending -n 0 over a PEL of 1,000,000 entries, as NDJSON to a pipe: entries/s and peak RSS
(bounded memory: the listing is paged and written page by page). Reference: the same PEL read
by redis-cli in one XPENDING - + 1000000 (the server's own speed, everything in memory).

Run: python benchmarks/bench_pending.py [entries]
"""

from __future__ import annotations

import subprocess
import sys

from _common import STREAMCTL, report, server, timed, tool

FILL = """
local n = tonumber(ARGV[1])
for i = 1, n do redis.call('XADD', KEYS[1], '*', 'order_id', i, 'status', 'paid') end
return n
"""
READ = """
local r = redis.call('XREADGROUP', 'GROUP', 'g', 'w1', 'COUNT', ARGV[1], 'STREAMS', KEYS[1], '>')
if not r then return 0 end
return #r[1][2]
"""


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    srv = server()
    try:
        r = srv.client()
        for _ in range(total // 100_000 or 1):
            r.eval(FILL, 1, "big", min(total, 100_000))
        r.xgroup_create("big", "g", id="0")
        while r.eval(READ, 1, "big", 100_000):
            pass
        assert r.xpending("big", "g")["pending"] == total

        cli = tool("redis-cli")
        ref_s = timed(
            lambda: subprocess.run(
                [cli, "-p", str(srv.port), "XPENDING", "big", "g", "-", "+", str(total)],
                stdout=subprocess.DEVNULL,
                check=True,
            )
        )
        cmd = ["/usr/bin/time", "-f", "%M", *STREAMCTL, "-u", srv.url]
        cmd += ["pending", "big", "g", "-n", "0", "-o", "ndjson"]
        holder: dict[str, int] = {}

        def ours() -> None:
            proc = subprocess.run(cmd, capture_output=True, check=True)
            holder["lines"] = proc.stdout.count(b"\n")
            holder["rss_kb"] = int(proc.stderr.decode().strip().splitlines()[-1])

        ours_s = timed(ours)
        assert holder["lines"] == total, holder
        report(
            f"pending -n 0 -o ndjson, PEL of {total:,} (peak RSS {holder['rss_kb'] // 1024} MB)",
            total / ours_s,
            total / ref_s,
            "entries/s",
            "reported",
            True,
        )
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

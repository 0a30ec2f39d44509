"""`pending --claim --min-idle 0` of 100k pending entries vs a plain redis-py XAUTOCLAIM loop
(COUNT 1000) doing the same claim.

Target: <= 1.5x its time. Run: python benchmarks/bench_claim.py
"""

from __future__ import annotations

from _common import STREAMCTL, report, run, server, timed

N = 100_000


def prepare(client) -> None:  # type: ignore[no-untyped-def]
    client.delete("s")
    for start in range(0, N, 20_000):
        pipe = client.pipeline(transaction=False)
        for i in range(start, start + 20_000):
            pipe.xadd("s", {"i": str(i)})
        pipe.execute()
    client.xgroup_create("s", "g", id="0")
    # deliver everything to consumer "dead", never acknowledged
    while client.xreadgroup("g", "dead", {"s": ">"}, count=10_000):
        pass
    assert client.xpending("s", "g")["pending"] == N


def main() -> None:
    srv = server()
    try:
        client = srv.client()

        def reference() -> None:
            cursor = "0-0"
            while True:
                reply = client.xautoclaim("s", "g", "alive", 0, start_id=cursor, count=1000)
                cursor = reply[0]
                if cursor in (b"0-0", "0-0"):
                    break

        def ours() -> None:
            run(
                [
                    *STREAMCTL,
                    "-u",
                    srv.url,
                    "-q",
                    "pending",
                    "s",
                    "g",
                    "--claim",
                    "--to",
                    "alive",
                    "--min-idle",
                    "0",
                    "-o",
                    "json",
                ]
            )

        refs, mine = [], []
        for _ in range(3):
            prepare(client)
            refs.append(timed(reference))
            assert client.xpending("s", "g")["consumers"] == [{"name": b"alive", "pending": N}]
            prepare(client)
            mine.append(timed(ours))
            assert client.xpending("s", "g")["consumers"] == [{"name": b"alive", "pending": N}]
        ref, our = min(refs), min(mine)
        report("pending --claim of 100k entries", our, ref, "s", "<= 1.5x", our <= 1.5 * ref)
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

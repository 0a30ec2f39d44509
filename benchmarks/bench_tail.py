"""tail throughput and live latency (issue 13).

- `tail S --from 0 --no-follow -o ndjson > /dev/null`, 500k entries, vs `redis-cli XRANGE S - +
  > /dev/null`: target >= 0.8x entries/s.
- `tail S --group G --no-follow -o ndjson > /dev/null` (a new group at 0 per run, every entry
  acknowledged after: checked), vs the same redis-cli XRANGE: target >= 0.5x.
- live latency, publish -> the line on tail's stdout, 1000 events at 200/s, alone and in a
  group: target p99 <= 20 ms.
- cost growth: `tail --group --no-follow` of 1M entries vs 100k, per entry (the process's
  start included in both): target within 1.2x. BENCH_GROWTH=0 skips it (it fills 1.1M entries).
Run: python benchmarks/bench_tail.py   (on a quiet machine: it needs a core for each side)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time

from _common import STREAMCTL, interleaved, report, server, tool
from bench_range import fill

N = int(os.environ.get("BENCH_N", 500_000))  # a smaller N for a quick check
ROUNDS = 5
LIVE_EVENTS = 1000
LIVE_RATE = 200


def wait_blocked(client, clients: int = 1) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while int(client.info("clients")["blocked_clients"]) < clients:
        if time.monotonic() > deadline:
            sys.exit("tail never blocked")
        time.sleep(0.01)


def live_p99(srv, client, group: bool) -> float:  # type: ignore[no-untyped-def]
    """Milliseconds from XADD's reply to the line on tail's stdout (the 99th percentile)."""
    stream = "live-group" if group else "live"
    args = [*STREAMCTL, "-u", srv.url, "tail", stream, "-o", "ndjson", "--count", str(LIVE_EVENTS)]
    if group:
        args += ["--group", "g", "--create-group"]
    else:
        client.xadd(stream, {"warm": "1"})  # the stream exists: tail waits at $
    tail = subprocess.Popen(args, stdout=subprocess.PIPE)
    published: dict[str, float] = {}
    latencies: list[float] = []
    try:
        wait_blocked(client)

        def publish() -> None:
            start = time.monotonic()
            for i in range(LIVE_EVENTS):
                time.sleep(max(0.0, start + i / LIVE_RATE - time.monotonic()))
                eid = client.xadd(stream, {"n": str(i)}).decode()
                published[eid] = time.monotonic()

        t = threading.Thread(target=publish, daemon=True)
        t.start()
        assert tail.stdout is not None
        for line in tail.stdout:
            seen = time.monotonic()
            eid = line.split(b'"id":"', 1)[1].split(b'"', 1)[0].decode()
            while eid not in published:  # the reply to XADD can come after the line
                time.sleep(0.0001)
            latencies.append((seen - published[eid]) * 1000)
        t.join()
    finally:
        tail.kill()
        tail.wait()
    latencies.sort()
    return latencies[int(len(latencies) * 0.99) - 1]


def drain_group(srv, client, stream: str, group: str) -> float:  # type: ignore[no-untyped-def]
    """Seconds for `tail STREAM --group G --no-follow` of a new group at 0 (all acked: checked)."""
    client.xgroup_create(stream, group, "0")
    start = time.perf_counter()
    subprocess.run(
        [*STREAMCTL, "-u", srv.url, "tail", stream, "--group", group, "-c", "c",
         "--no-follow", "-o", "ndjson"],
        stdout=subprocess.DEVNULL,
        check=True,
    )  # fmt: skip
    took = time.perf_counter() - start
    info = {g["name"].decode(): g for g in client.xinfo_groups(stream)}[group]
    if info["pending"] != 0 or info["entries-read"] != client.xlen(stream):
        sys.exit(f"group {group} on {stream}: not every entry delivered and acknowledged: {info}")
    client.xgroup_destroy(stream, group)
    return took


def growth(srv, client) -> None:  # type: ignore[no-untyped-def]
    """tail --group's cost per entry at 1M entries against 100k (best of 3 each, interleaved)."""
    fill(client, "small", 100_000)
    fill(client, "large", 1_000_000)
    runs = iter(range(100))
    times = interleaved(
        3,
        {
            "small": lambda: drain_group(srv, client, "small", f"g{next(runs)}"),
            "large": lambda: drain_group(srv, client, "large", f"g{next(runs)}"),
        },
    )
    small = min(times["small"]) / 100_000 * 1e6
    large = min(times["large"]) / 1_000_000 * 1e6
    ratio = large / small
    print(
        f"cost growth, tail --group --no-follow 100k -> 1M: {large:.2f} us/entry at 1M, "
        f"{small:.2f} us/entry at 100k, ratio {ratio:.2f}x (target <= 1.2x) "
        f"{'OK' if ratio <= 1.2 else 'MISSED'}  [cores: {os.cpu_count()}]"
    )
    client.delete("small", "large")


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

        def plain() -> None:
            subprocess.run(
                [
                    *STREAMCTL,
                    "-u",
                    srv.url,
                    "tail",
                    "s",
                    "--from",
                    "0",
                    "--no-follow",
                    "-o",
                    "ndjson",
                ],
                stdout=subprocess.DEVNULL,
                check=True,
            )

        runs = iter(range(100))

        def in_group() -> None:
            group = f"g{next(runs)}"
            client.xgroup_create("s", group, "0")
            subprocess.run(
                [*STREAMCTL, "-u", srv.url, "tail", "s", "--group", group, "-c", "c",
                 "--no-follow", "-o", "ndjson"],
                stdout=subprocess.DEVNULL,
                check=True,
            )  # fmt: skip
            info = {g["name"].decode(): g for g in client.xinfo_groups("s")}[group]
            if (
                info["pending"] != 0
                or info["last-delivered-id"] != client.xinfo_stream("s")["last-generated-id"]
            ):
                sys.exit(f"group {group}: not every entry was delivered and acknowledged: {info}")

        # rounds of (reference, plain, group): each round's ratios are taken in one moment of
        # a shared machine; the medians are reported (rates, and the ratios of the rounds)
        times = interleaved(ROUNDS, {"ref": reference, "plain": plain, "group": in_group})
        ref = N / statistics.median(times["ref"])
        for case, key, target in (
            (f"tail --from 0 --no-follow -o ndjson {N:,}", "plain", 0.8),
            (f"tail --group --no-follow -o ndjson {N:,} (all acked)", "group", 0.5),
        ):
            ratio = statistics.median(r / t for r, t in zip(times["ref"], times[key], strict=True))
            rate = N / statistics.median(times[key])
            report(case, rate, ref, "entries/s", f">= {target}x", ratio >= target, ratio)
        if os.environ.get("BENCH_GROWTH", "1") != "0":
            growth(srv, client)
        for group in (False, True):
            p99 = live_p99(srv, client, group)
            case = f"live latency p99, {LIVE_EVENTS} events at {LIVE_RATE}/s" + (
                ", in a group" if group else ""
            )
            print(f"{case}: {p99:.2f} ms (target <= 20 ms) {'OK' if p99 <= 20 else 'MISSED'}")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

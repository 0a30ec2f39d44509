"""replay --into, export --file and import --keep-ids of 1M entries: throughput against
redis-benchmark -P 64 -c 1 XADD (the pipelined-write ceiling on this machine), and peak RSS
against the same command on 100k entries (bounded memory: ten times the entries, same memory).

Targets against that write-only C ceiling: replay >= 0.35x (it reads every entry back from the
server and writes it again, so the server does twice the reference's work, and the client packs
each entry in Python: a bare hiredis read+write loop measured about 0.38x here), export >= 0.4x
(reads and formats NDJSON), import >= 0.5x (issue 13: at the speed of publish --file); peak RSS
at 1M within 10 MiB of 100k (bounded memory).  Run: python benchmarks/bench_transfer.py
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import report, run, server, tool

N = 1_000_000
SMALL = 100_000

PEAK_PROBE = """
import runpy, sys
sys.argv = ["streamctl", *sys.argv[1:]]
code = 0
try:
    runpy.run_module("streamctl", run_name="__main__")
except SystemExit as exc:
    code = exc.code or 0
status = open("/proc/self/status").read()
sys.stderr.write("PEAK_KB=" + status.split("VmHWM:")[1].split()[0] + "\\n")
sys.exit(code)
"""


def measured(args: list[str]) -> tuple[float, int]:
    """(seconds, peak RSS in KB) of one streamctl run."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", PEAK_PROBE, *args], capture_output=True)
    seconds = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        sys.exit(f"failed: streamctl {' '.join(args)}\n{err}")
    m = re.search(r"PEAK_KB=(\d+)", err)
    if not m:
        sys.exit(f"no peak RSS reported:\n{err}")
    return seconds, int(m.group(1))


def fill(client, stream: str, n: int) -> None:  # type: ignore[no-untyped-def]
    import hiredis

    conn = client.connection_pool.get_connection()
    try:
        for start in range(0, n, 10_000):
            end = min(n, start + 10_000)
            conn.send_packed_command(
                [b"".join(
                    hiredis.pack_command(("XADD", stream, "*", "f1", f"v{i}", "f2", "created",
                                          "f3", str(i * 3)))
                    for i in range(start, end)
                )]
            )  # fmt: skip
            for _ in range(start, end):
                conn.read_response()
    finally:
        client.connection_pool.release(conn)


def main() -> None:
    if not Path("/proc/self/status").exists():
        sys.exit("needs Linux /proc for peak RSS")
    srv = server()
    try:
        client = srv.client()
        bench = tool("redis-benchmark")
        out = run(
            [bench, "-p", str(srv.port), "-P", "64", "-c", "1", "-n", "200000", "-q",
             "XADD", "ref", "*", "f1", "v1", "f2", "v2", "f3", "v3"]
        ).stdout.decode()  # fmt: skip
        m = re.search(r"([\d.]+) requests per second", out.replace(",", ""))
        if not m:
            sys.exit(f"cannot read redis-benchmark output: {out!r}")
        reference = float(m.group(1))
        fill(client, "small", SMALL)
        fill(client, "big", N)
        url = ["-u", srv.url, "-q"]
        with tempfile.TemporaryDirectory() as tmp:
            small_file, big_file = str(Path(tmp) / "small"), str(Path(tmp) / "big")
            cases = {
                "replay": (
                    [*url, "replay", "small", "--from", "-", "--into", "small2"],
                    [*url, "replay", "big", "--from", "-", "--into", "big2"],
                    0.35,
                ),
                "export": (
                    [*url, "export", "small", "--file", small_file],
                    [*url, "export", "big", "--file", big_file],
                    0.4,
                ),
                "import": (
                    [*url, "import", "small3", small_file, "--keep-ids"],
                    [*url, "import", "big3", big_file, "--keep-ids"],
                    0.5,  # issue 13's target (import at the speed of publish --file)
                ),
            }
            for name, (small_args, big_args, target) in cases.items():
                _, small_peak = measured(small_args)
                seconds, big_peak = measured(big_args)
                rate = N / seconds
                report(
                    f"{name} 1M entries",
                    rate,
                    reference,
                    "entries/s",
                    f">= {target}x",
                    rate >= target * reference,
                )
                growth = big_peak - small_peak
                print(
                    f"{name} peak RSS: {small_peak / 1024:.1f} MiB at 100k, "
                    f"{big_peak / 1024:.1f} MiB at 1M (growth {growth / 1024:+.1f} MiB, "
                    f"target < 10 MiB) {'OK' if growth < 10 * 1024 else 'MISSED'}"
                )
        if client.xlen("big2") != N or client.xlen("big3") != N:
            sys.exit("a copy is incomplete")
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

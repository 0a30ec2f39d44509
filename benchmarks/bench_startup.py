"""Wall time of a one-shot `publish STREAM k=v` vs `python -c "import typer, redis"`.

Target: <= 1.25x. Median of 21 runs each, interleaved. Run: python benchmarks/bench_startup.py
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _common import STREAMCTL, report, server

RUNS = 21


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    srv = server()
    try:
        ref_cmd = [sys.executable, "-c", "import typer, redis"]
        our_cmd = [*STREAMCTL, "-u", srv.url, "publish", "s", "k=v"]
        wall(ref_cmd), wall(our_cmd)  # warm the file cache
        refs, ours = [], []
        for _ in range(RUNS):
            refs.append(wall(ref_cmd))
            ours.append(wall(our_cmd))
        ref, our = statistics.median(refs), statistics.median(ours)
        assert srv.client().xlen("s") == RUNS + 1
        report(
            "one-shot publish wall time",
            our * 1000,
            ref * 1000,
            "ms",
            "<= 1.25x",
            our <= 1.25 * ref,
        )
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

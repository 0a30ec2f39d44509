"""Wall time of a one-shot `publish STREAM k=v` vs `python -c "import typer, redis"`.

Target: <= 1.15x. 21 pairs (the reference, then ours): medians, and the median of the pairs'
ratios. Run: python benchmarks/bench_startup.py
Runs the `streamctl` command installed next to this Python (what a user types), or `python -m
streamctl` when there is none.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from _common import STREAMCTL, paired, report, server

RUNS = 21


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    srv = server()
    try:
        ref_cmd = [sys.executable, "-c", "import typer, redis"]
        script = Path(sys.executable).parent / "streamctl"
        command = [str(script)] if script.exists() else STREAMCTL
        our_cmd = [*command, "-u", srv.url, "publish", "s", "k=v"]
        wall(ref_cmd), wall(our_cmd)  # warm the file cache
        got = paired(RUNS, lambda: wall(our_cmd), lambda: wall(ref_cmd))
        assert srv.client().xlen("s") == RUNS + 1
        report(
            "one-shot publish wall time",
            got.ours * 1000,
            got.reference * 1000,
            "ms",
            "<= 1.15x",
            got.ratio <= 1.15,
            got.ratio,
        )
    finally:
        srv.stop()


if __name__ == "__main__":
    main()

"""Shared by the benchmark scripts: a scratch server, timing, and the result line."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.servers import ServerProcess, start_server  # noqa: E402

STREAMCTL = [sys.executable, "-m", "streamctl"]

# Measure what a user runs: an installed package reads compiled bytecode. Some environments set
# PYTHONDONTWRITEBYTECODE, which would recompile streamctl's sources on every run.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
subprocess.run([*STREAMCTL, "--version"], capture_output=True, check=False)


def server(kind: str = "redis8.2") -> ServerProcess:
    return start_server(kind)


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        sys.exit(f"{name} not found: install Debian's redis-tools (apt-get install -y redis-tools)")
    return path


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def best_of(n: int, fn: Callable[[], object]) -> float:
    return min(timed(fn) for _ in range(n))


def interleaved(rounds: int, cases: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """Each case's times over `rounds` rounds of running every case once, in turn: on a shared
    machine, a busy moment then slows all cases, not only the one that happened to run."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    return times


def paired(rounds: int, ours: Callable[[], object], reference: Callable[[], object]) -> Paired:
    """Each round times the reference, then ours: the ratio of a pair is taken in one moment of
    a shared machine, whose speed drifts between moments. The figures reported are the medians
    of ours, of the reference, and of the ratios ours/reference of the pairs."""
    refs, mine = [], []
    for _ in range(rounds):
        refs.append(timed(reference))
        mine.append(timed(ours))
    ratios = [m / r for m, r in zip(mine, refs, strict=True)]
    return Paired(statistics.median(mine), statistics.median(refs), statistics.median(ratios))


class Paired(NamedTuple):
    ours: float  # seconds, median
    reference: float  # seconds, median
    ratio: float  # median of ours/reference, pair by pair (a time ratio: lower is faster)


def median_of(n: int, fn: Callable[[], object]) -> float:
    return statistics.median(timed(fn) for _ in range(n))


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(cmd, capture_output=True, **kw)  # type: ignore[call-overload]
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stderr.decode(errors='replace')}")
    return proc  # type: ignore[no-any-return]


def report(
    case: str,
    figure: float,
    reference: float,
    unit: str,
    target: str,
    ok: bool,
    ratio: float | None = None,
) -> None:
    """One result line. `ratio`: the median of pair-by-pair ratios (see `paired`), when the
    figures are medians; otherwise figure / reference."""
    if ratio is None:
        ratio = figure / reference if reference else float("inf")
        how = ""
    else:
        how = ", median of the pairs' ratios"
    status = "OK" if ok else "MISSED"
    print(
        f"{case}: {figure:,.3f} {unit}, reference {reference:,.3f} {unit}, "
        f"ratio {ratio:.2f}x{how} (target {target}) {status}  [cores: {os.cpu_count()}]"
    )

"""`bench`: publish and consume throughput and end-to-end latency on a scratch stream.

Producers (threads, one connection each) publish pipelined XADD batches; every entry carries the
client's monotonic clock at send time in its field `t`. Consumers (threads, one connection each)
read as members of one consumer group (XREADGROUP COUNT/BLOCK), acknowledge each batch in the same
round trip as the next read, and record receipt time minus `t`: the latency from publish to
receipt, on one clock. The scratch stream is deleted at the end, whatever happens.
"""

from __future__ import annotations

import math
import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from streamctl.core.connection import Client, node_client
from streamctl.core.models_health import BenchResult
from streamctl.core.wire import raw_command, raw_pipeline
from streamctl.errors import BadInput, Interrupted, ServerRefused, StreamctlError
from streamctl.wording import count_noun

BENCH_PREFIX = "streamctl-bench:"
BENCH_GROUP = "bench"
READ_COUNT = 1000
READ_BLOCK_MS = 100
STALL_SECONDS = 30.0  # no progress for this long: give up
PERCENTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99))


def percentile(sorted_values: list[int], q: float) -> int:
    """The nearest-rank percentile of sorted values (q in 0..1)."""
    if not sorted_values:
        raise ValueError("no values")
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_ns: list[int]) -> dict[str, float]:
    if not latencies_ns:
        return {}
    values = sorted(latencies_ns)
    out = {name: percentile(values, q) / 1e6 for name, q in PERCENTILES}
    out["max"] = values[-1] / 1e6
    return out


def scratch_stream_name() -> str:
    return f"{BENCH_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"


def split(total: int, parts: int) -> list[int]:
    """`total` shared as evenly as possible between `parts`."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def validate(events: int, size: int, producers: int, consumers: int, batch: int) -> None:
    for name, value, minimum in (
        ("--events", events, 1),
        ("--size", size, 1),
        ("--producers", producers, 1),
        ("--consumers", consumers, 0),
        ("--batch", batch, 1),
    ):
        if value < minimum:
            raise BadInput(f"bad {name} {value}: give a number of {minimum} or more")
    if producers > events:
        raise BadInput(f"bad --producers {producers}: more producers than --events {events}")


class _Run:
    """Shared state of one bench run."""

    def __init__(self, stream: str, events: int, payload: bytes) -> None:
        self.stream = stream
        self.events = events
        self.payload = payload
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.published = 0
        self.consumed = 0
        self.last_receipt = 0.0
        self.last_publish = 0.0
        self.latencies: list[list[int]] = []
        self.errors: list[BaseException] = []
        self.progress_at = time.monotonic()

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            self.errors.append(exc)
        self.stop.set()


def _produce(run: _Run, client: Client, count: int, batch: int) -> None:
    sent = 0
    while sent < count and not run.stop.is_set():
        n = min(batch, count - sent)
        stamp = str(time.perf_counter_ns()).encode()
        commands = [("XADD", run.stream, "*", "t", stamp, "p", run.payload)] * n
        replies = raw_pipeline(client, commands)
        for reply in replies:
            if isinstance(reply, Exception):
                raise ServerRefused(f"the server refused XADD: {reply}")
        sent += n
        with run.lock:
            run.published += n
            run.last_publish = time.perf_counter()
            run.progress_at = time.monotonic()


def _consume(run: _Run, client: Client, name: str) -> None:
    latencies: list[int] = []
    with run.lock:
        run.latencies.append(latencies)
    read: tuple[Any, ...] = (
        "XREADGROUP", "GROUP", BENCH_GROUP, name, "COUNT", READ_COUNT,
        "BLOCK", READ_BLOCK_MS, "STREAMS", run.stream, ">",
    )  # fmt: skip
    to_ack: list[bytes] = []
    while not run.stop.is_set():
        if to_ack:
            ack_reply, reply = raw_pipeline(
                client, [("XACK", run.stream, BENCH_GROUP, *to_ack), read]
            )
            if isinstance(ack_reply, Exception):
                raise ServerRefused(f"the server refused XACK: {ack_reply}")
        else:
            reply = raw_pipeline(client, [read])[0]
        if isinstance(reply, Exception):
            raise ServerRefused(f"the server refused XREADGROUP: {reply}")
        now = time.perf_counter_ns()
        to_ack = []
        if not reply:
            continue
        entries = reply[0][1]
        for eid, flat in entries:
            to_ack.append(eid)
            latencies.append(now - int(flat[1]))
        with run.lock:
            run.consumed += len(entries)
            run.last_receipt = time.perf_counter()
            run.progress_at = time.monotonic()
            if run.consumed >= run.events:
                run.stop.set()
    if to_ack:
        raw_command(client, "XACK", run.stream, BENCH_GROUP, *to_ack)


def _guarded(run: _Run, target: Callable[..., None], *args: Any) -> None:
    try:
        target(run, *args)
    except BaseException as exc:  # noqa: BLE001 - handed to the main thread
        run.fail(exc)


def run_bench(
    connect: Callable[[], Client],
    *,
    events: int,
    size: int,
    producers: int = 1,
    consumers: int = 1,
    batch: int = 100,
    stream: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    stall_seconds: float = STALL_SECONDS,
) -> BenchResult:
    """Publish `events` entries of `size` bytes with `producers` threads while `consumers`
    threads read them in a group; the scratch stream is deleted before returning or raising."""
    validate(events, size, producers, consumers, batch)
    stream = stream or scratch_stream_name()
    admin = connect()
    clients: list[Client] = []
    run = _Run(stream, events, b"x" * max(0, size))
    try:
        if consumers:
            raw_command(admin, "XGROUP", "CREATE", stream, BENCH_GROUP, "$", "MKSTREAM")
        threads: list[threading.Thread] = []
        for i in range(consumers):
            c = connect()
            clients.append(c)
            threads.append(
                threading.Thread(target=_guarded, args=(run, _consume, c, f"c{i + 1}"), daemon=True)
            )
        producer_threads = []
        for count in split(events, producers):
            c = connect()
            clients.append(c)
            producer_threads.append(
                threading.Thread(
                    target=_guarded, args=(run, _produce, c, count, batch), daemon=True
                )
            )
        for c in clients:
            c.ping()  # connect before the clock starts
        for t in threads:
            t.start()
        started = time.perf_counter()
        run.progress_at = time.monotonic()
        for t in producer_threads:
            t.start()
        while True:
            producing = any(t.is_alive() for t in producer_threads)
            if not producing and not consumers:
                run.stop.set()
            if run.stop.is_set() and not producing:
                break
            if should_stop():
                run.stop.set()
                _join(producer_threads + threads)
                raise Interrupted(
                    f"interrupted after {run.published:,} published and "
                    f"{count_noun(run.consumed, 'consumed event', 'consumed events')}"
                )
            if time.monotonic() - run.progress_at > stall_seconds:
                run.fail(
                    StreamctlError(
                        f"no progress for {stall_seconds:.0f}s ({run.published:,} published, "
                        f"{run.consumed:,} consumed)"
                    )
                )
            time.sleep(0.01)
        _join(producer_threads + threads)
        if run.errors:
            raise run.errors[0]
        latencies = [v for part in run.latencies for v in part]
        return BenchResult(
            stream=stream,
            events=events,
            size=size,
            producers=producers,
            consumers=consumers,
            batch=batch,
            published=run.published,
            publish_seconds=(run.last_publish - started) if run.published else 0.0,
            consumed=run.consumed,
            consume_seconds=(run.last_receipt - started) if run.consumed else 0.0,
            latency_ms=latency_summary(latencies),
        )
    finally:
        run.stop.set()
        try:
            node_client(admin, stream).delete(stream)
        finally:
            for c in [admin, *clients]:
                c.close()


def _join(threads: list[threading.Thread]) -> None:
    for t in threads:
        if t.is_alive():
            t.join(READ_BLOCK_MS / 1000 * 10 + 5)

#!/usr/bin/env python3
"""What an event rule costs a PUT, measured in-process: CPU per PUT, not requests/s.

`bench/events.py` measures the whole pipeline over HTTP, and on a small shared machine
its rates move by tens of percent between runs minutes apart. This script leaves HTTP,
clients and consumers out: it starts Tidings inside this process (`tidings.app.running`,
the server's defaults, a temporary data directory), calls the object service's `put`
directly with 1 KiB bodies from 1 and 8 concurrent tasks, and reads the process's CPU
time (every thread: the event loop and the writer's commit thread) and the event loop's
own. Each round measures a PUT without a rule, then with a rule sending PutObject to a
queue (created with the rule service, as CreateEventRule does), then without again; the
table reports the median of the rounds and the rule's cost as a difference and a ratio
against the no-rule runs of the same rounds.

Usage::

    python bench/event_cost.py [--puts 4000] [--rounds 3]      # about a minute

Compare two versions of the code by running it with ``PYTHONPATH=<checkout>/src``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tidings.app import Tidings, running
from tidings.config import Settings
from tidings.object_models import Bucket
from tidings.services.object_events import Origin
from tidings.services.objects import ObjectAttrs

BODY = os.urandom(1024)
ATTRS = ObjectAttrs(headers={"Content-Type": "application/octet-stream"})
BUCKET = "bench-cost"
QUEUE = "bench-cost-events"
RULE = "bench-cost-rule"
CONCURRENCY = (1, 8)
WARM_UP_PUTS = 200


@dataclass(slots=True)
class Sample:
    """One measured run: PUTs per second and CPU per PUT (µs)."""

    rate: float
    cpu_us: float
    loop_us: float


@dataclass(slots=True)
class Cell:
    """Every sample of one concurrency and one kind (no rule / rule)."""

    samples: list[Sample] = field(default_factory=list)

    def median(self, name: str) -> float:
        return float(statistics.median(getattr(s, name) for s in self.samples))


async def _one_body() -> AsyncIterator[bytes]:
    yield BODY


def _origin() -> Origin:
    return Origin("5F0000000000000000000001", "127.0.0.1", "1111222233334444")


async def _put_many(app: Tidings, bucket: Bucket, prefix: str, tasks: int, each: int) -> None:
    async def worker(n: int) -> None:
        for i in range(each):
            await app.objects.put(
                bucket,
                f"{prefix}/{n}/{i}",
                _one_body(),
                expected_size=len(BODY),
                attrs=ATTRS,
                origin=_origin(),
            )

    await asyncio.gather(*(worker(n) for n in range(tasks)))


async def _measure(app: Tidings, bucket: Bucket, prefix: str, tasks: int, puts: int) -> Sample:
    each = max(1, puts // tasks)
    await _put_many(app, bucket, f"{prefix}-warm", tasks, max(1, WARM_UP_PUTS // tasks))
    started, cpu, loop = time.perf_counter(), time.process_time(), time.thread_time()
    await _put_many(app, bucket, prefix, tasks, each)
    seconds = time.perf_counter() - started
    cpu, loop = time.process_time() - cpu, time.thread_time() - loop
    done = each * tasks
    return Sample(done / seconds, cpu / done * 1e6, loop / done * 1e6)


async def _rule(app: Tidings, settings: Settings, on: bool) -> None:
    if not on:
        await app.rules.delete("oss", RULE)
        return
    resource = f"acs:oss:{settings.region}:{settings.account_id}:{BUCKET}/"
    await app.rules.create(
        {
            "ProductName": "oss",
            "RuleName": RULE,
            "EventTypes": json.dumps(["PutObject"]),
            "MatchRules": json.dumps([[{"Prefix": resource}]]),
            "Endpoint": json.dumps({"EndpointType": "queue", "EndpointValue": QUEUE}),
        }
    )


async def run(puts: int, rounds: int, root: Path) -> dict[tuple[int, str], Cell]:
    """Every round of every concurrency, on one in-process instance."""
    settings = Settings(data_dir=root / "data")
    cells: dict[tuple[int, str], Cell] = {}
    async with running(settings) as app:
        bucket, _ = await app.buckets.create(BUCKET, settings.account_id)
        await app.queues.create_queue(QUEUE)
        for round_ in range(rounds):
            for tasks in CONCURRENCY:
                for kind, rule in (("no rule", False), ("rule", True), ("no rule", False)):
                    if rule:
                        await _rule(app, settings, True)
                    prefix = f"r{round_}-{tasks}-{kind.replace(' ', '')}-{len(cells)}"
                    sample = await _measure(app, bucket, prefix, tasks, puts)
                    cells.setdefault((tasks, kind), Cell()).samples.append(sample)
                    if rule:
                        await _rule(app, settings, False)
                    print(
                        f"  round {round_ + 1}, {tasks} task(s), {kind}: {sample.rate:,.0f} PUT/s,"
                        f" {sample.cpu_us:.0f} µs CPU ({sample.loop_us:.0f} on the loop) per PUT",
                        flush=True,
                    )
    return cells


def _rows(cells: dict[tuple[int, str], Cell]) -> Iterator[str]:
    yield "| tasks | run | PUT/s | CPU µs/PUT | event loop µs/PUT |"
    yield "| ---: | --- | ---: | ---: | ---: |"
    for tasks in CONCURRENCY:
        base, rule = cells[(tasks, "no rule")], cells[(tasks, "rule")]
        for kind, cell in (("no rule", base), ("rule", rule)):
            yield (
                f"| {tasks} | {kind} | {cell.median('rate'):,.0f} | {cell.median('cpu_us'):.0f}"
                f" | {cell.median('loop_us'):.0f} |"
            )
        extra_cpu = rule.median("cpu_us") - base.median("cpu_us")
        extra_loop = rule.median("loop_us") - base.median("loop_us")
        yield (
            f"| {tasks} | the rule's cost | ÷ {rule.median('rate') / base.median('rate'):.2f}"
            f" | +{extra_cpu:.0f} (×{rule.median('cpu_us') / base.median('cpu_us'):.2f})"
            f" | +{extra_loop:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--puts", type=int, default=4000, help="PUTs per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of runs (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tidings-event-cost-") as root:
        cells = asyncio.run(run(args.puts, args.rounds, Path(root)))
    print()
    print(f"Medians of {args.rounds} round(s), {args.puts} PUTs of 1 KiB per run, in-process:")
    for row in _rows(cells):
        print(row)


if __name__ == "__main__":
    main()

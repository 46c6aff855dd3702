"""Prometheus metrics, read from the live objects at scrape time (nothing on hot paths)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Snapshot(Collector):
    """Turns `read()` — {name: (kind, help, value)} — into metric families."""

    def __init__(self, read: Callable[[], dict[str, tuple[str, str, float]]]) -> None:
        self.read = read

    def collect(self) -> Iterator[Metric]:
        for name, (kind, help_text, value) in self.read().items():
            family = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            yield family(name, help_text, value=value)


class Metrics:
    """A registry of this instance's metrics, rendered in the Prometheus text format."""

    def __init__(self, read: Callable[[], dict[str, tuple[str, str, float]]]) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_Snapshot(read))

    def render(self) -> bytes:
        """The current values, ready to serve at /metrics."""
        return generate_latest(self.registry)

"""Prometheus metrics: requests and latencies per route, the served run, decisions by kind.

Counters use a private registry per app (several apps can live in one process, e.g. in tests),
and their labelled children are cached so a request costs two dict gets and two increments.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.schemas import DECISIONS
from api.snapshot import Snapshot

UNMATCHED_ROUTE = "<unmatched>"
"""Route label of requests no route matched; raw paths would make label values unbounded."""

LATENCY_BUCKETS = (
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class _SnapshotCollector(Collector):
    """Gauges read from the served snapshot at scrape time."""

    def __init__(self, current: Callable[[], Snapshot | None]) -> None:
        self._current = current

    def collect(self) -> Iterable[Metric]:
        snapshot = self._current()
        ready = GaugeMetricFamily("sentra_snapshot_loaded", "1 once a snapshot is served")
        ready.add_metric([], 0.0 if snapshot is None else 1.0)
        yield ready
        if snapshot is None:
            return
        info = GaugeMetricFamily(
            "sentra_published_run_info", "The served run (value 1)", labels=["run_id"]
        )
        info.add_metric([snapshot.run_id or ""], 1.0)
        yield info
        if snapshot.published_at is not None:
            age = (dt.datetime.now(dt.UTC) - snapshot.published_at).total_seconds()
            yield GaugeMetricFamily(
                "sentra_published_run_age_seconds", "Seconds since the served run was published",
                value=age,
            )  # fmt: skip
        yield GaugeMetricFamily(
            "sentra_snapshot_loaded_timestamp_seconds",
            "When the served snapshot was loaded (Unix time)",
            value=snapshot.loaded_at.timestamp(),
        )
        served = GaugeMetricFamily(
            "sentra_served_decisions", "Accounts with a served decision, by kind",
            labels=["decision"],
        )  # fmt: skip
        for decision in DECISIONS:
            served.add_metric([decision], float(snapshot.counts.get(decision, 0)))
        yield served
        yield GaugeMetricFamily(
            "sentra_known_accounts", "Accounts the store has seen", value=snapshot.known
        )


class Metrics:
    """The app's metrics; :meth:`render` gives the Prometheus text exposition."""

    def __init__(self, current_snapshot: Callable[[], Snapshot | None]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._requests = Counter(
            "sentra_http_requests",
            "HTTP requests by route, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "sentra_http_request_duration_seconds",
            "HTTP request latency by route and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        lookups = Counter(
            "sentra_lookup_decisions",
            "Decisions answered by lookups and gateway checks, by kind",
            ["decision"],
            registry=self.registry,
        )
        self._decisions = {decision: lookups.labels(decision) for decision in DECISIONS}
        self.refresh_failures = Counter(
            "sentra_snapshot_refresh_failures",
            "Polls of the store that failed",
            registry=self.registry,
        )
        self.registry.register(_SnapshotCollector(current_snapshot))
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count and time one request (about 2 us: one dict get, two locked updates)."""
        children = self._children.get((route, method, status))
        if children is None:
            children = self._children[(route, method, status)] = (
                self._requests.labels(route, method, status),
                self._latency.labels(route, method),
            )
        children[0].inc()
        children[1].observe(seconds)

    def decided(self, decision: str, count: int = 1) -> None:
        self._decisions[decision].inc(count)

    def decided_many(self, counts: Mapping[str, int]) -> None:
        for decision, count in counts.items():
            self._decisions[decision].inc(count)

    def render(self) -> bytes:
        return generate_latest(self.registry)

"""Prometheus metrics of the culler (its own registry, served on request)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class CullerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.passes = Counter(
            "hubext_culler_passes", "Culling passes run.", registry=self.registry
        )
        self.culled = Counter(
            "hubext_culler_servers_culled",
            "Servers stopped (or being stopped) by the culler.",
            ["reason"],
            registry=self.registry,
        )
        self.users_deleted = Counter(
            "hubext_culler_users_deleted",
            "Users deleted by the culler (inactive, no server; cull_users).",
            registry=self.registry,
        )
        self.errors = Counter(
            "hubext_culler_errors", "Failed hub API requests.", registry=self.registry
        )
        self.skipped = Counter(
            "hubext_culler_servers_left_alone",
            "Servers (and users) left alone: pending, not ready or unreadable.",
            registry=self.registry,
        )
        self.duration = Histogram(
            "hubext_culler_pass_duration_seconds",
            "Duration of a culling pass.",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.running = Gauge(
            "hubext_culler_running_servers",
            "Ready servers seen by the last pass.",
            registry=self.registry,
        )

    def record(self, result) -> None:
        self.passes.inc()
        for action in [*result.culled, *result.stopping]:
            self.culled.labels(reason=action.reason).inc()
        self.users_deleted.inc(len(result.users_deleted))
        self.errors.inc(len(result.errors))
        self.skipped.inc(len(result.skipped))
        self.duration.observe(result.seconds)
        self.running.set(result.servers)

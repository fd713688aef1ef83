"""Prometheus metrics of the budget service (its own registry)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class EnforcerMetrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.passes = Counter(
            "hubext_budget_passes", "Passes run.", registry=self.registry
        )
        self.used_ratio = Gauge(
            "hubext_budget_used_ratio",
            "Share of a community's pool budget used in its window (1: spent).",
            ["community", "budget"],
            registry=self.registry,
        )
        self.members_over = Gauge(
            "hubext_budget_members_over_warning",
            "Members past warn_at of their per-member budget (spent included).",
            ["community", "budget"],
            registry=self.registry,
        )
        self.warnings = Counter(
            "hubext_budget_warnings",
            "Warnings given (once per budget and window).",
            ["community", "budget"],
            registry=self.registry,
        )
        self.spent = Counter(
            "hubext_budget_spent",
            "Budgets found spent (each starts a grace period).",
            ["community", "budget"],
            registry=self.registry,
        )
        self.stopped = Counter(
            "hubext_budget_servers_stopped",
            "Servers stopped because their budget was spent.",
            ["community", "budget"],
            registry=self.registry,
        )
        self.errors = Counter(
            "hubext_budget_errors",
            "Failed passes, stops and status writes.",
            registry=self.registry,
        )

    def record(self, lines, decision, warn_at: float) -> None:
        self.passes.inc()
        over: dict[tuple[str, str], int] = {}
        for line in lines:
            if line.member is None:
                self.used_ratio.labels(line.community, line.path).set(
                    min(line.ratio, 1e9)
                )
            else:
                key = (line.community, line.path)
                over[key] = over.get(key, 0) + (line.ratio >= warn_at)
        for (community, path), count in over.items():
            self.members_over.labels(community, path).set(count)
        for line in decision.warn:
            self.warnings.labels(line.community, line.path).inc()
        for line, _ in decision.spent:
            self.spent.labels(line.community, line.path).inc()

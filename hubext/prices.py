"""Prices per unit of usage, per community (pure: no I/O).

A community's prices are a mapping of the four units a report counts; a
missing unit costs nothing::

    {"cpu_hour": 0.05, "gib_hour": 0.01, "gpu_hour": 1.2, "server_hour": 0}

``hubext usage report --prices FILE`` reads ``{community slug: prices}`` (the
hub-wide account is ``_hub``) from a YAML or JSON file; a community's
``usage: {prices: ...}`` key in ``c.Communities.communities`` is validated by
:func:`parse_usage` with the same rules.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._validation import (
    ConfigError,
    KeyPath,
    check_keys,
    collecting,
    expect,
    expect_mapping,
)
from .slugs import HUB_ACCOUNT, community_slug_problem

UNITS = ("cpu_hour", "gib_hour", "gpu_hour", "server_hour")


@dataclass(frozen=True)
class UnitPrices:
    """The price of one hour of a server, a CPU core, a GiB and a GPU."""

    cpu_hour: float = 0.0
    gib_hour: float = 0.0
    gpu_hour: float = 0.0
    server_hour: float = 0.0


def parse_unit_prices(value: Any, path: KeyPath) -> UnitPrices:
    """Validate one community's prices; errors name ``path`` and the unit."""
    expect_mapping(value, path)
    check_keys(value, path, UNITS)
    prices = {}
    with collecting() as errors:
        for unit in UNITS:
            if unit not in value:
                continue
            with errors.check():
                price = expect(value[unit], (int, float), path.attr(unit), "a number")
                if not math.isfinite(price) or price < 0:
                    raise ConfigError(
                        path.attr(unit), f"must be a finite number >= 0, got {price}"
                    )
                prices[unit] = float(price)
    return UnitPrices(**prices)


def parse_usage(value: Any, path: KeyPath, slug: str = "") -> dict:
    """A community's ``usage`` key: ``{"prices": {unit: price}}``.

    Returns ``{"prices": UnitPrices}`` (no prices: every unit costs 0).
    """
    expect_mapping(value, path)
    check_keys(value, path, ("prices",))
    prices = value.get("prices")
    return {
        "prices": UnitPrices()
        if prices is None
        else parse_unit_prices(prices, path.attr("prices"))
    }


def parse_price_table(value: Any, path: KeyPath) -> dict[str, UnitPrices]:
    """``{community slug or "_hub": prices}`` as read from a prices file."""
    expect_mapping(value, path)
    table: dict[str, UnitPrices] = {}
    with collecting() as errors:
        for slug, prices in value.items():
            with errors.check():
                if slug != HUB_ACCOUNT:
                    problem = community_slug_problem(slug)
                    if problem:
                        raise ConfigError(path, f"{problem}: {slug!r}")
                table[slug] = parse_unit_prices(prices, path[slug])
    return table


def cost(prices: Mapping[str, UnitPrices], community: str, usage_hours) -> float:
    """The cost of ``usage_hours`` (server, cpu, gib, gpu hours) for a community."""
    unit = prices.get(community)
    if unit is None:
        return 0.0
    server, cpu, gib, gpu = usage_hours
    return (
        server * unit.server_hour
        + cpu * unit.cpu_hour
        + gib * unit.gib_hour
        + gpu * unit.gpu_hour
    )

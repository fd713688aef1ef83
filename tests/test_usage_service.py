"""The usage page (``python -m hubext.usage``): who reads what, the CSV, refusals.

Pure parts (scopes to access, the query string, buckets, charts, the roles,
``register_page``) are tested offline; the rest against one real hub running
the demo configuration (which registers the page), a ledger written with
:class:`~hubext.usage.ledger.Ledger`, people signed in through the demo
OpenID Connect provider, and headless Chromium with screenshots. Expected
numbers come from the pure :func:`~hubext.usage.report.build_report` over
the sessions each person may see (the page uses the database's
aggregation), and the hub admin's CSV equals ``hubext usage report``'s.
"""

from __future__ import annotations

import logging
import random
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import requests
from traitlets import TraitError
from traitlets.config import Config

from hubext.cli import main as hubext_main
from hubext.communities import Community
from hubext.roles import (
    HUB_ADMIN_ROLE,
    community_admin_role,
    hub_admin_roles,
)
from hubext.service_data import SERVICE_ENV
from hubext.usage import Ledger, Resources, register_page
from hubext.usage.access import USAGE_SCOPE, Access, access_from_scopes
from hubext.usage.charts import bar_chart, buckets, usage_per_bucket
from hubext.usage.model import HUB_ACCOUNT
from hubext.usage.page import BadRequest, parse_query
from hubext.usage.prices import UnitPrices
from hubext.usage.report import Span, Usage, build_report, format_csv
from hubext.usage.service import (
    DB_URL_ENV,
    LedgerUnreadable,
    NoLedger,
    UsageService,
)

from .browser_kit import SCREENSHOTS
from .harness import running_hub

GIB = 2**30
PAGE = "/services/hubext-usage/"


# -- scopes to access (pure) -------------------------------------------------


@pytest.mark.parametrize(
    ("scopes", "access"),
    [
        pytest.param([USAGE_SCOPE], Access(everything=True), id="unfiltered"),
        pytest.param(
            [f"{USAGE_SCOPE}!group=ocean-lab", f"{USAGE_SCOPE}!user=olga"],
            Access(communities=frozenset({"ocean-lab"}), users=frozenset({"olga"})),
            id="community-admin-and-member",
        ),
        pytest.param(
            [f"{USAGE_SCOPE}!user=bob", "read:users!group=ocean-lab"],
            Access(users=frozenset({"bob"})),
            id="other-scopes-grant-nothing",
        ),
        pytest.param(
            [f"{USAGE_SCOPE}!server=bob/x", f"{USAGE_SCOPE}!service=s", "admin:users"],
            Access(),
            id="other-filters-grant-nothing",
        ),
        pytest.param(
            [
                f"{USAGE_SCOPE}:more",
                f"{USAGE_SCOPE}x!user=bob",
                f"{USAGE_SCOPE}!group=",
            ],
            Access(),
            id="look-alike-scopes",
        ),
        pytest.param(
            [f"{USAGE_SCOPE}!group=astro-101", USAGE_SCOPE],
            Access(everything=True),
            id="unfiltered-wins",
        ),
    ],
)
def test_access_from_scopes(scopes, access):
    assert access_from_scopes(scopes) == access


def test_narrowing_to_a_community_never_widens():
    member = Access(users=frozenset({"bob"}))
    only = member.filter("ocean-lab")
    assert only.admits("ocean-lab", "bob")
    assert not only.admits("ocean-lab", "alice")
    assert not only.admits("astro-101", "bob")
    admin = Access(communities=frozenset({"ocean-lab"}), users=frozenset({"olga"}))
    assert admin.filter().admits("ocean-lab", "alice")
    assert admin.filter().admits("astro-101", "olga")
    assert not admin.filter().admits("astro-101", "bob")
    assert not admin.filter("astro-101").admits("astro-101", "bob")
    assert not Access().filter().admits("ocean-lab", "bob")
    assert Access(everything=True).filter().admits(HUB_ACCOUNT, "root")


# -- the query string (pure) -------------------------------------------------

TODAY = date(2026, 11, 29)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"from": "2026-13-01"}, "from: not a date: '2026-13-01'", id="month"
        ),
        pytest.param({"to": "yesterday"}, "to: not a date: 'yesterday'", id="word"),
        pytest.param({"from": "2026-1-1"}, "from: not a date", id="short"),
        pytest.param(
            {"from": "2026-10-02", "to": "2026-10-01"},
            "from 2026-10-02 is after to 2026-10-01",
            id="reversed",
        ),
        pytest.param(
            {"from": "2020-01-01", "to": "2026-01-01"},
            "the page shows at most 731",
            id="too-long",
        ),
        pytest.param(
            {"from": "2026-01-01", "to": "2026-06-30", "step": "day"},
            "step: by day shows at most 92 days, not 181",
            id="too-many-days",
        ),
        pytest.param(
            {"step": "hour"}, "step: 'hour' is not one of day, week", id="step"
        ),
        pytest.param({"by": "group"}, "by: 'group' is not one of", id="by"),
        pytest.param(
            {"community": "Ocean_Lab"}, "community: slug must match", id="community"
        ),
        pytest.param({"user": "alice"}, "unknown parameter 'user'", id="unknown"),
    ],
)
def test_bad_queries(args, message):
    with pytest.raises(BadRequest) as error:
        parse_query(args, TODAY)
    assert message in str(error.value)


def test_query_defaults_and_the_same_report_command():
    query = parse_query({}, TODAY)
    assert (query.first, query.last, query.step, query.by) == (
        date(2026, 10, 31),
        TODAY,
        "day",
        "community",
    )
    long = parse_query({"from": "2026-01-01", "to": "2026-06-30"}, TODAY)
    assert long.step == "week"
    october = parse_query(
        {"from": "2026-10-01", "to": "2026-10-31", "by": "user"}, TODAY
    )
    assert october.end == datetime(2026, 11, 1, tzinfo=UTC)
    assert october.command(priced=False) == (
        "hubext usage report --db-url URL --from 2026-10-01 --to 2026-11-01 "
        "--by user --format csv"
    )
    assert parse_query({"community": HUB_ACCOUNT}, TODAY).community == HUB_ACCOUNT


def test_weeks_are_monday_to_sunday_clipped_to_the_window():
    weeks = buckets(date(2026, 10, 1), date(2026, 10, 14), "week")
    assert [(b.start.isoformat(), b.end.isoformat()) for b in weeks] == [
        ("2026-10-01", "2026-10-05"),
        ("2026-10-05", "2026-10-12"),
        ("2026-10-12", "2026-10-15"),
    ]
    days = buckets(date(2026, 10, 30), date(2026, 11, 1), "day")
    assert [b.label for b in days] == ["2026-10-30", "2026-10-31", "2026-11-01"]


def test_bar_chart_stacks_each_community_and_escapes_names():
    series = {
        "a": [Usage(cpu_seconds=3600), Usage()],
        "b": [Usage(cpu_seconds=7200), Usage(cpu_seconds=1800)],
    }
    svg = bar_chart(
        "CPU-hours",
        "cpu_hours",
        ["2026-10-01", "2026-10-02"],
        series,
        {"a": "#000", "b": "#111"},
        {"a": "<script>"},
    )
    values = re.findall(
        r'data-community="(\w)" data-period="([\d-]+)" data-value="([\d.]+)"', svg
    )
    assert values == [
        ("a", "2026-10-01", "1.000000"),
        ("b", "2026-10-01", "2.000000"),
        ("b", "2026-10-02", "0.500000"),
    ]
    assert "<script>" not in svg and "&lt;script&gt;" in svg


# -- roles and registration (pure) -------------------------------------------


def test_roles_carry_the_usage_scope_only_when_the_hub_defines_it():
    ocean = Community("ocean-lab", "Ocean")
    plain = community_admin_role(ocean)
    assert not any(s.startswith("custom:") for s in plain["scopes"])
    assert hub_admin_roles({}) == []
    custom = {USAGE_SCOPE: {"description": "x"}}
    role = community_admin_role(ocean, custom_scopes=custom)
    assert f"{USAGE_SCOPE}!group=ocean-lab" in role["scopes"]
    assert USAGE_SCOPE not in role["scopes"]
    (admin,) = hub_admin_roles(custom)
    assert admin["name"] == HUB_ADMIN_ROLE and admin["scopes"] == [USAGE_SCOPE]


def _service(c: Config) -> dict:
    (service,) = c.JupyterHub.services.get_value([])
    return service


def test_register_page_hands_the_ledger_url_in_the_environment_only():
    c = Config()
    c.JupyterHub.db_url = "sqlite:////srv/jh/jupyterhub.sqlite"
    register_page(c)
    service = _service(c)
    assert service["environment"][DB_URL_ENV] == "sqlite:////srv/jh/hubext-usage.sqlite"
    assert service["environment"][SERVICE_ENV] == "usage"
    assert service["url"] == "http://127.0.0.1:10101"
    assert service["command"][1:] == ["-m", "hubext.usage"]
    assert service["oauth_client_allowed_scopes"] == [USAGE_SCOPE]
    assert USAGE_SCOPE in c.JupyterHub.custom_scopes.get_value({})
    assert c.JupyterHub.extra_user_scopes.get_value(set()) == {
        f"{USAGE_SCOPE}!user",
        "access:services!service=hubext-usage",
    }

    secret = "pw-Zq81Kx0"
    c = Config()
    c.UsageLedger.db_url = f"postgresql://hubext:{secret}@db.internal/usage"
    register_page(c, url="http://hub:10101", args=["--ip=0.0.0.0"])
    service = _service(c)
    assert secret in service["environment"][DB_URL_ENV]
    assert secret not in repr(service["command"])

    c = Config()
    c.UsageLedger.db_url = "mysql://x@y/z"
    with pytest.raises(TraitError, match=r"UsageLedger\.db_url: unsupported database"):
        register_page(c)


def test_an_unreadable_ledger_shows_no_password(capfd):
    secret = "pw-Vb52Ty9"
    app = UsageService(db_url=f"postgresql://hubext:{secret}@127.0.0.1:9/usage")
    query = parse_query({}, TODAY)
    app.log_level = logging.DEBUG
    with pytest.raises(LedgerUnreadable) as error:
        app.reports(query, Access(everything=True), datetime.now(UTC))
    assert secret not in str(error.value)
    log = capfd.readouterr().err
    assert "cannot read postgresql://hubext:***@127.0.0.1:9/usage" in log
    assert secret not in log


def test_no_ledger_yet_is_not_created_by_the_page(tmp_path):
    path = tmp_path / "hubext-usage.sqlite"
    app = UsageService(db_url=f"sqlite:///{path}")
    with pytest.raises(NoLedger):
        app.reports(parse_query({}, TODAY), Access(everything=True), datetime.now(UTC))
    assert not path.exists()


# -- a real hub ----------------------------------------------------------------

ACCOUNTS = {
    # a hub admin (the demo's admin_users), member of astro-101
    "carol": {"preferred_username": "carol", "name": "Carol", "groups": ["astro-101"]},
    # ocean-lab's community admin
    "olga": {
        "preferred_username": "olga",
        "name": "Olga",
        "groups": ["ocean-lab", "ocean-lab-admins"],
    },
    "alice": {"preferred_username": "alice", "name": "Alice", "groups": ["ocean-lab"]},
    "bob": {"preferred_username": "bob", "name": "Bob", "groups": ["astro-101"]},
}
PRICES = {"cpu_hour": 0.5, "gpu_hour": 2.0, "server_hour": 0.1}
CONFIG = f"""
c.Communities.communities["ocean-lab"]["usage"] = {{"prices": {PRICES!r}}}
"""

T = datetime(2026, 10, 1, tzinfo=UTC)
H = timedelta(hours=1)
D = timedelta(days=1)
#: (user, community, profile, cpu, GiB, GPUs, start, stop)
SESSIONS = [
    ("olga", "ocean-lab", "ocean-model", 2, 4, 0, T + 4 * D + H, T + 4 * D + 4 * H),
    (
        "alice",
        "ocean-lab",
        "ocean-model",
        1,
        2,
        1,
        T + 5 * D + 10 * H,
        T + 5 * D + 12.5 * H,
    ),
    # crosses into the week of the 12th
    ("alice", "ocean-lab", None, 0.5, 1, 0, T + 10 * D + 23 * H, T + 11 * D + H),
    (
        "bob",
        "astro-101",
        "astro-workshop",
        1,
        1,
        0,
        T + 4 * D + 2 * H,
        T + 4 * D + 3 * H,
    ),
    # crosses the window's start: only 2 of its 4 hours count
    ("bob", "astro-101", "astro-workshop", 1, 1, 0, T - 2 * H, T + 2 * H),
    # olga's own session in a community she does not administer
    (
        "olga",
        "astro-101",
        "standard",
        0.5,
        1,
        0,
        T + 6 * D + 8 * H,
        T + 6 * D + 9.5 * H,
    ),
    # the hub-wide account
    ("carol", None, "standard", 1, 1, 0, T + 6 * D + 5 * H, T + 6 * D + 6 * H),
]
WINDOW = {"from": "2026-10-01", "to": "2026-10-31"}
START, END = T, datetime(2026, 11, 1, tzinfo=UTC)

#: who may see which session, as the roles say (the oracle)
SEES = {
    "carol": lambda community, user: True,
    "olga": lambda community, user: community == "ocean-lab" or user == "olga",
    "alice": lambda community, user: user == "alice",
    "bob": lambda community, user: user == "bob",
}


def spans() -> list[Span]:
    return [
        Span(
            user=user,
            community=community or HUB_ACCOUNT,
            profile=profile,
            started_at=start,
            last_seen_at=stop,
            stopped_at=stop,
            cpu_request=cpu,
            mem_request=gib * GIB,
            gpus=gpus,
        )
        for user, community, profile, cpu, gib, gpus, start, stop in SESSIONS
    ]


def expected_csv(who: str, by: str = "community", community: str | None = None) -> str:
    """What ``who`` must get, from the pure report over what they may see."""
    visible = [
        s
        for s in spans()
        if SEES[who](s.community, s.user) and community in (None, s.community)
    ]
    report = build_report(
        visible,
        start=START,
        end=END,
        now=END,
        by=by,
        prices={"ocean-lab": UnitPrices(**PRICES)},
    )
    return format_csv(report) + "\n"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with running_hub(tmp_path_factory, "usage-page", CONFIG, ACCOUNTS) as hub:
        ledger = Ledger(f"sqlite:///{hub.env.data_dir}/hubext-usage.sqlite")
        ledger.start()
        for user, community, profile, cpu, gib, gpus, start, stop in SESSIONS:
            key = ledger.session_started(
                user=user,
                community=community,
                profile=profile,
                resources=Resources(cpu_request=cpu, mem_request=gib * GIB, gpus=gpus),
                at=start,
            )
            ledger.session_ended(key, at=stop, reason="stopped_by_user")
        ledger.close(timeout=20)
        yield hub


@pytest.fixture(scope="module")
def people(hub):
    return {name: hub.signed_in(name) for name in ACCOUNTS}


def csv_of(person, **query) -> requests.Response:
    r = person.get(PAGE + "usage.csv", params={**WINDOW, **query})
    assert r.status_code == 200, r.text[-500:]
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    return r


@pytest.mark.e2e
@pytest.mark.parametrize("who", list(ACCOUNTS))
@pytest.mark.parametrize("by", ["community", "user", "profile"])
def test_each_person_reads_what_their_roles_allow(people, who, by):
    assert csv_of(people[who], by=by).text == expected_csv(who, by)


@pytest.mark.e2e
def test_hub_admin_csv_is_the_report_command(hub, people, tmp_path, capsys):
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"ocean-lab: {PRICES!r}\n".replace("'", '"'))
    for by in ("community", "user"):
        code = hubext_main(
            [
                "usage",
                "report",
                "--db-url",
                f"sqlite:///{hub.env.data_dir}/hubext-usage.sqlite",
                "--from",
                "2026-10-01",
                "--to",
                "2026-11-01",
                "--by",
                by,
                "--format",
                "csv",
                "--prices",
                str(prices),
            ]
        )
        out, _ = capsys.readouterr()
        assert code == 0
        assert csv_of(people["carol"], by=by).text == out


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("who", "query"),
    [
        pytest.param(
            "bob", {"community": "ocean-lab"}, id="member-asks-other-community"
        ),
        pytest.param(
            "bob", {"community": "ocean-lab", "by": "user"}, id="member-asks-its-users"
        ),
        pytest.param("bob", {"community": HUB_ACCOUNT}, id="member-asks-hub-account"),
        pytest.param("alice", {"community": "astro-101", "by": "user"}, id="alice"),
        pytest.param(
            "olga", {"community": "astro-101", "by": "user"}, id="admin-asks-other"
        ),
        pytest.param("olga", {"community": "ocean-lab", "by": "user"}, id="admin-own"),
    ],
)
def test_crafted_queries_never_widen(people, who, query):
    r = csv_of(people[who], **query)
    assert r.text == expected_csv(who, query.get("by", "community"), query["community"])
    page = people[who].get(PAGE, params={**WINDOW, **query})
    assert page.status_code == 200
    others = {u for u, *_ in SESSIONS} - {
        s.user for s in spans() if SEES[who](s.community, s.user)
    }
    for text in (r.text, page.text):
        for user in others:
            assert user not in text


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("query", "message"),
    [
        pytest.param(
            {"from": "2026-13-01"}, "from: not a date: &#x27;2026-13-01&#x27;"
        ),
        pytest.param(
            {"from": "2026-10-31", "to": "2026-10-01"}, "from 2026-10-31 is after to"
        ),
        pytest.param({"community": "x;drop"}, "community: slug must match"),
        pytest.param({"user": "alice"}, "unknown parameter &#x27;user&#x27;"),
    ],
)
def test_bad_queries_are_400_with_the_reason(people, query, message):
    for path in (PAGE, PAGE + "usage.csv"):
        r = people["bob"].get(path, params=query)
        assert r.status_code == 400, (path, r.status_code)
        assert message in r.text
    r = people["bob"].get(PAGE + "?from=2026-10-01&from=2026-10-02")
    assert r.status_code == 400 and "given more than once" in r.text


@pytest.mark.e2e
def test_tokens_without_the_scope_are_refused(hub):
    token = hub.token_for("bob", scopes=["access:services!service=hubext-usage"])
    r = requests.get(
        f"{hub.url}{PAGE}usage.csv",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert r.status_code == 403
    assert "bob may not read usage on this hub" in r.text
    # signed out: sent to the hub's sign-in, nothing shown
    r = requests.get(f"{hub.url}{PAGE}usage.csv", allow_redirects=False, timeout=30)
    assert r.status_code == 302
    assert "/hub/api/oauth2/authorize" in r.headers["Location"]


# -- in a browser ----------------------------------------------------------------


def open_page(browser, hub, account, query: str):
    page = browser.new_context(accept_downloads=True).new_page()
    page.goto(f"{hub.url}/hub/login")
    page.click("a.hubext-provider[data-provider=demo]")
    page.click(f"button[value={account}]")
    page.wait_for_url(f"{hub.url}/hub/**")
    response = page.goto(f"{hub.url}{PAGE}?{query}")
    assert response.status == 200
    return page


@pytest.mark.e2e
@pytest.mark.browser
@pytest.mark.parametrize(
    ("who", "sees"),
    [
        pytest.param("carol", "every community (you are a hub admin)", id="hub-admin"),
        pytest.param(
            "olga",
            "Ocean Modelling Lab (ocean-lab), your own servers",
            id="community-admin",
        ),
        pytest.param("bob", "your own servers", id="member"),
    ],
)
def test_the_page_in_a_browser(hub, browser, who, sees):
    page = open_page(browser, hub, who, "from=2026-10-01&to=2026-10-31&step=week")
    assert f"you see {sees}." in page.inner_text("#who")
    assert page.locator("svg.usage-chart").count() == 4
    # the bars: per community and week, summed from the charts, equal the
    # pure report of each week over what this person may see
    bars = page.eval_on_selector_all(
        "svg.usage-chart[data-unit=cpu_hours] rect",
        "rs => rs.map(r => [r.dataset.community, r.dataset.period, +r.dataset.value])",
    )
    expected = []
    for bucket in buckets(date(2026, 10, 1), date(2026, 10, 31), "week"):
        lo = datetime.combine(bucket.start, datetime.min.time(), UTC)
        hi = datetime.combine(bucket.end, datetime.min.time(), UTC)
        visible = [s for s in spans() if SEES[who](s.community, s.user)]
        week = build_report(visible, start=lo, end=hi, now=END)
        expected += [
            [c, bucket.label, pytest.approx(u.cpu_hours, abs=1e-6)]
            for c, u in week.rows.items()
            if u.cpu_hours > 0
        ]
    assert bars == expected
    rows = page.eval_on_selector_all(
        "#usage-table tbody tr", "trs => trs.map(t => t.dataset.key)"
    )
    visible = build_report(
        [s for s in spans() if SEES[who](s.community, s.user)],
        start=START,
        end=END,
        now=END,
    )
    assert rows == [*visible.rows, "total"]
    page.screenshot(path=SCREENSHOTS / f"usage-page-{who}.png", full_page=True)

    if who != "olga":
        return
    # the date picker: a narrower window, then the CSV link of that window
    page.fill("input[name=from]", "2026-10-05")
    page.fill("input[name=to]", "2026-10-05")
    page.select_option("select[name=by]", "user")
    page.click("form.window button[type=submit]")
    page.wait_for_url("**from=2026-10-05**")
    rows = page.eval_on_selector_all(
        "#usage-table tbody tr", "trs => trs.map(t => t.dataset.key)"
    )
    assert rows == ["olga", "total"]
    with page.expect_download() as download:
        page.click("#csv")
    text = Path(download.value.path()).read_text()
    assert (
        text
        == format_csv(
            build_report(
                [s for s in spans() if SEES["olga"](s.community, s.user)],
                start=datetime(2026, 10, 5, tzinfo=UTC),
                end=datetime(2026, 10, 6, tzinfo=UTC),
                now=END,
                by="user",
                prices={"ocean-lab": UnitPrices(**PRICES)},
            )
        )
        + "\n"
    )
    # a bad date typed in the address bar: a 400 that says why
    response = page.goto(f"{hub.url}{PAGE}?from=2026-02-30")
    assert response.status == 400
    assert "from: not a date: '2026-02-30'" in page.inner_text("#error")
    page.screenshot(path=SCREENSHOTS / "usage-page-bad-date.png", full_page=True)


def test_usage_per_bucket_is_the_report_of_each_bucket():
    rng = random.Random(11)
    now = datetime(2026, 10, 20, 12, tzinfo=UTC)
    many = []
    for i in range(300):
        start = T - 3 * D + timedelta(minutes=rng.randrange(0, 30 * 24 * 60))
        length = timedelta(minutes=rng.choice([0, 5, 90, 600, 3000, 9000]))
        stop = None if i % 17 == 0 else start + length
        many.append(
            Span(
                user=f"u{i % 7}",
                community=rng.choice(["ocean-lab", "astro-101", HUB_ACCOUNT]),
                profile=None,
                started_at=start,
                last_seen_at=start,
                stopped_at=stop,
                cpu_request=rng.choice([None, 0.5, 2]),
                mem_request=GIB,
                gpus=rng.choice([0, 1]),
            )
        )
    for step in ("day", "week"):
        periods = buckets(date(2026, 10, 1), date(2026, 10, 24), step)
        series = usage_per_bucket(many, periods, now)
        for i, bucket in enumerate(periods):
            lo, hi = bucket.window
            report = build_report(many, start=lo, end=hi, now=now)
            got = {c: u[i] for c, u in series.items() if u[i].sessions}
            assert got == report.rows, (step, bucket)

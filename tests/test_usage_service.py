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
from hypothesis import example, given, settings
from hypothesis import strategies as st
from traitlets import TraitError
from traitlets.config import Config

from hubext.cli import main as hubext_main
from hubext.communities import Community
from hubext.prices import UnitPrices
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
from hubext.usage.page import (
    FIRST_DAY,
    LAST_DAY,
    PARAMETERS,
    BadRequest,
    parse_query,
)
from hubext.usage.report import FORMULA_STARTS, Span, Usage, build_report, format_csv
from hubext.usage.service import (
    HUB_TEMPLATES,
    HubLinks,
    LedgerUnreadable,
    NoLedger,
    UsageService,
)
from hubext.usage.signin import held_scopes

from .browser_kit import SCREENSHOTS
from .harness import running_hub
from .hubclient import wait_until

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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            {"to": "0001-01-01"},
            "to: 0001-01-01 is out of range: the page shows the days from "
            "1970-01-01 to 9999-12-30",
            id="to-first-day-of-all",
        ),
        pytest.param(
            {"from": "9999-12-31", "to": "9999-12-31"},
            "to: 9999-12-31 is out of range",
            id="last-day-of-all",
        ),
        pytest.param(
            {"from": "9999-12-31"}, "from: 9999-12-31 is out of range", id="from"
        ),
        pytest.param(
            {"from": "1969-12-31", "to": "1970-01-01"},
            "from: 1969-12-31 is out of range",
            id="before-the-epoch",
        ),
        pytest.param({"from": "2026-W01-1"}, "from: not a date", id="iso-week"),
        pytest.param(
            {"to": "\uff12\uff10\uff12\uff16-01-01"}, "to: not a date", id="wide"
        ),
        pytest.param({"to": "2026-01-01\n"}, "to: not a date", id="newline"),
        pytest.param(
            {"from": "9" * 5000}, f"from: not a date: '{'9' * 40}' (", id="long"
        ),
        pytest.param({"by": "\u00e9"}, "by: '\u00e9' is not one of", id="non-ascii"),
    ],
)
def test_dates_out_of_range_and_odd_values(args, message):
    with pytest.raises(BadRequest) as error:
        parse_query(args, TODAY)
    assert message in str(error.value)


def test_default_window_stays_in_range():
    assert parse_query({"to": "1970-01-05"}, TODAY).first == FIRST_DAY
    early = parse_query({}, date(1, 1, 1))
    assert (early.first, early.last) == (FIRST_DAY, FIRST_DAY)
    late = parse_query({}, date.max)
    assert late.last == LAST_DAY
    assert late.end == datetime(9999, 12, 31, tzinfo=UTC)
    # an empty value is the default (the form's "all you may see")
    assert parse_query({"to": "", "from": "", "community": ""}, TODAY) == parse_query(
        {}, TODAY
    )


_ANY_DAY = st.dates().map(date.isoformat)
_VALUES = st.one_of(
    _ANY_DAY,
    st.sampled_from(["", "day", "week", "community", "user", "profile"]),
    st.sampled_from(["ocean-lab", HUB_ACCOUNT, "Ocean_Lab", "-x"]),
    st.text(max_size=60),
)
_NAMES = st.one_of(st.sampled_from(PARAMETERS), st.text(max_size=12))


@settings(max_examples=400, deadline=None)
@given(args=st.dictionaries(_NAMES, _VALUES, max_size=6), today=st.dates())
@example(args={"to": "0001-01-01"}, today=TODAY)
@example(args={"from": "9999-12-31", "to": "9999-12-31"}, today=TODAY)
@example(args={"from": "9999-12-30", "to": "9999-12-30", "step": "week"}, today=TODAY)
@example(args={}, today=date.min)
@example(args={}, today=date.max)
def test_any_query_is_a_window_or_a_bad_request(args, today):
    """Whatever the strings: a query whose window, buckets and report command
    can all be computed, or a BadRequest (a 400), never another error."""
    try:
        query = parse_query(args, today)
    except BadRequest as error:
        assert str(error)
        return
    assert FIRST_DAY <= query.first <= query.last <= LAST_DAY
    assert query.start < query.end
    periods = buckets(query.first, query.last, query.step)
    assert periods[0].start == query.first
    assert periods[-1].end == query.last + timedelta(days=1)
    assert all(b.window[0] < b.window[1] for b in periods)
    assert query.command(priced=True).startswith("hubext usage report")
    # the page's own links (the CSV, the form) give the same query back
    assert parse_query(query.as_query(), today) == query


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
    # the ledger's URL is handed over by the hub when it starts
    # (test_service_data), never in the configuration's service entry
    assert service["environment"] == {SERVICE_ENV: "usage"}
    assert service["url"] == "http://127.0.0.1:10101"
    assert service["command"][1:] == ["-m", "hubext.usage"]
    assert service["oauth_client_allowed_scopes"] == [USAGE_SCOPE, "admin-ui"]
    assert USAGE_SCOPE in c.JupyterHub.custom_scopes.get_value({})
    # the Services menu's human name: the service's info, shown by a template
    # put before JupyterHub's own
    assert service["info"] == {"display_name": "Usage"}
    assert c.JupyterHub.template_paths.get_value(["/jupyterhub/templates"]) == [
        str(HUB_TEMPLATES),
        "/jupyterhub/templates",
    ]
    assert c.JupyterHub.extra_user_scopes.get_value(set()) == {
        f"{USAGE_SCOPE}!user",
        "access:services!service=hubext-usage",
    }

    secret = "pw-Zq81Kx0"
    c = Config()
    c.UsageLedger.db_url = f"postgresql://hubext:{secret}@db.internal/usage"
    register_page(c, url="http://hub:10101", args=["--ip=0.0.0.0"])
    service = _service(c)
    assert secret not in repr(service)

    # an admin's own templates come first (their page.html wins)
    c = Config()
    c.JupyterHub.template_paths = ["/srv/my-templates"]
    register_page(c, display_name="Usage and costs")
    assert _service(c)["info"] == {"display_name": "Usage and costs"}
    assert c.JupyterHub.template_paths == ["/srv/my-templates", str(HUB_TEMPLATES)]
    c = Config()
    register_page(c, display_name=None)
    assert "info" not in _service(c) and "template_paths" not in c.JupyterHub

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


def test_what_the_hub_said_is_kept_a_minute_at_most(capsys):
    assert UsageService().auth_cache_max_age == 60
    assert UsageService(auth_cache_max_age=0).auth_cache_max_age == 0
    with pytest.raises(TraitError, match=r"UsageService\.auth_cache_max_age: must be"):
        UsageService(auth_cache_max_age=300)
    # on the command line (register_page(args=...)): refused at start-up
    with pytest.raises(SystemExit):
        UsageService().initialize(["--UsageService.auth_cache_max_age=300"])
    assert "UsageService.auth_cache_max_age: must be from 0 to 60 seconds" in (
        capsys.readouterr().err
    )


def test_the_page_links_to_the_hub_under_its_base_url(monkeypatch):
    """Sign-in, the navigation bar and the hub's stylesheet follow
    ``$JUPYTERHUB_BASE_URL``, as the hub hands it to its services."""
    monkeypatch.setenv("JUPYTERHUB_BASE_URL", "/jh/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "t" * 32)
    monkeypatch.setenv("JUPYTERHUB_CLIENT_ID", "service-hubext-usage")
    monkeypatch.setenv(
        "JUPYTERHUB_OAUTH_CALLBACK_URL", "/jh/services/hubext-usage/oauth_callback"
    )
    app = UsageService(auth_cache_max_age=7)
    app.make_app()
    assert app.hub_auth.cache_max_age == 7
    assert app.hub_auth.cache.max_age == 7
    assert app.hub_auth.login_url == (
        "/jh/hub/hubext/usage/sign-in?client_id=service-hubext-usage"
        "&redirect_uri=%2Fjh%2Fservices%2Fhubext-usage%2Foauth_callback"
        "&response_type=code"
    )
    assert app.hub_links == HubLinks(
        home="/jh/hub/home",
        token="/jh/hub/token",
        admin="/jh/hub/admin",
        logout="/jh/hub/logout",
        logo="/jh/hub/logo",
        stylesheet="/jh/hub/static/css/style.min.css",
        favicon="/jh/hub/static/favicon.ico",
    )


@pytest.mark.parametrize(
    ("expanded", "held"),
    [
        pytest.param(
            ["read:users!user=bob", f"{USAGE_SCOPE}!user=bob", "access:servers"],
            [f"{USAGE_SCOPE}!user=bob"],
            id="member",
        ),
        pytest.param(
            [
                f"{USAGE_SCOPE}!user=olga",
                f"{USAGE_SCOPE}!group=ocean-lab",
                "admin-ui",
                "read:users!group=ocean-lab",
            ],
            ["admin-ui", f"{USAGE_SCOPE}!group=ocean-lab", f"{USAGE_SCOPE}!user=olga"],
            id="community-admin",
        ),
        pytest.param(
            [USAGE_SCOPE, "admin-ui", "admin:users", f"{USAGE_SCOPE}x"],
            ["admin-ui", USAGE_SCOPE],
            id="hub-admin",
        ),
        pytest.param(["read:users!user=eve"], [], id="nothing"),
    ],
)
def test_the_sign_in_asks_for_the_scopes_held(expanded, held):
    assert held_scopes(expanded, [USAGE_SCOPE, "admin-ui"]) == held


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
#: ocean-lab's second community admin, who loses the role in a test
LOSES_ROLE = {
    "oscar": {
        "preferred_username": "oscar",
        "name": "Oscar",
        "groups": ["ocean-lab", "ocean-lab-admins"],
    }
}
PRICES = {"cpu_hour": 0.5, "gpu_hour": 2.0, "server_hour": 0.1}
#: what the page keeps of the hub's answers in these tests (seconds): a lost
#: role shows within it, not within the default minute
AUTH_CACHE_MAX_AGE = 1
CONFIG = f"""
c.Communities.communities["ocean-lab"]["usage"] = {{"prices": {PRICES!r}}}
# the demo registered the page (jupyterhub_config.d/40-usage.py): its
# command gets the tests' setting
for _service in c.JupyterHub.services.get_value([]):
    if _service["name"] == "hubext-usage":
        _service["command"].append(
            "--UsageService.auth_cache_max_age={AUTH_CACHE_MAX_AGE}"
        )
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
    # names from an identity provider (and a profile) that a spreadsheet
    # would run as formulas (issue #19)
    ("=2+3@uni", "ocean-lab", "-cmd", 1, 1, 0, T + 7 * D, T + 7 * D + H),
    ("@sum(1+1)@uni", "astro-101", "standard", 1, 1, 0, T + 8 * D, T + 8 * D + H),
]
WINDOW = {"from": "2026-10-01", "to": "2026-10-31"}
START, END = T, datetime(2026, 11, 1, tzinfo=UTC)

#: who may see which session, as the roles say (the oracle)
SEES = {
    "carol": lambda community, user: True,
    "olga": lambda community, user: community == "ocean-lab" or user == "olga",
    "alice": lambda community, user: user == "alice",
    "bob": lambda community, user: user == "bob",
    "oscar": lambda community, user: community == "ocean-lab" or user == "oscar",
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


def expected_csv(
    who: str, by: str = "community", community: str | None = None, sees=None
) -> str:
    """What ``who`` must get, from the pure report over what they may see
    (``sees``: instead of their roles in :data:`SEES`)."""
    sees = sees or SEES[who]
    visible = [
        s
        for s in spans()
        if sees(s.community, s.user) and community in (None, s.community)
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
    with running_hub(
        tmp_path_factory, "usage-page", CONFIG, {**ACCOUNTS, **LOSES_ROLE}
    ) as hub:
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
    """Byte for byte, hostile names included: neither starts a formula."""
    prices = tmp_path / "prices.yaml"
    prices.write_text(f"ocean-lab: {PRICES!r}\n".replace("'", '"'))
    for by in ("community", "user", "profile"):
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
        lines = out.splitlines()
        assert not any(line.startswith(FORMULA_STARTS) for line in lines)
        labels = {line.split(",")[0] for line in lines}
        if by == "user":
            assert {"'=2+3@uni", "'@sum(1+1)@uni"} <= labels
        if by == "profile":
            assert "'-cmd" in labels


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
        # were 500s (OverflowError), issue #19
        pytest.param({"to": "0001-01-01"}, "to: 0001-01-01 is out of range"),
        pytest.param(
            {"from": "9999-12-31", "to": "9999-12-31"},
            "to: 9999-12-31 is out of range",
        ),
        pytest.param(
            {"by": "gr\u00fcppe"}, "by: &#x27;gr\u00fcppe&#x27; is not one of"
        ),
        pytest.param(
            {"from": "2" * 10000}, f"from: not a date: &#x27;{'2' * 40}&#x27;"
        ),
        pytest.param({"step": "%s%d%(x)s"}, "step: &#x27;%s%d%(x)s&#x27; is not"),
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
@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        pytest.param("from=&to=&step=&by=&community=", 200, "", id="empty-is-default"),
        pytest.param(
            "to=%FF%FE", 400, "to: not a date: &#x27;\ufffd\ufffd", id="not-utf8"
        ),
        pytest.param("%C3%A9t%C3%A9=1", 400, "unknown parameter", id="non-ascii-name"),
        pytest.param("by=user&by=user", 400, "given more than once", id="twice"),
    ],
)
def test_odd_query_strings(people, query, status, message):
    for path in (PAGE, PAGE + "usage.csv"):
        r = people["bob"].get(f"{path}?{query}")
        assert r.status_code == status, (path, r.status_code, r.text[-300:])
        assert message in r.text


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
    assert r.headers["Location"].startswith(
        "/hub/hubext/usage/sign-in?client_id=service-hubext-usage&"
    )


@pytest.mark.e2e
def test_private_answers_are_never_cached(hub, people):
    """Usage, and the pages that name a person, say ``private, no-store``."""
    bob = people["bob"]
    token = hub.token_for("bob", scopes=["access:services!service=hubext-usage"])
    answers = {
        "page": bob.get(PAGE, params=WINDOW),
        "csv": bob.get(PAGE + "usage.csv", params=WINDOW),
        "bad query": bob.get(PAGE, params={"to": "0001-01-01"}),
        "bad csv query": bob.get(PAGE + "usage.csv", params={"by": "group"}),
        "no scope": requests.get(
            f"{hub.url}{PAGE}",
            headers={"Authorization": f"token {token}"},
            timeout=30,
        ),
    }
    assert {k: r.status_code for k, r in answers.items()} == {
        "page": 200,
        "csv": 200,
        "bad query": 400,
        "bad csv query": 400,
        "no scope": 403,
    }
    for what, r in answers.items():
        assert r.headers.get("Cache-Control") == "private, no-store", what


@pytest.mark.e2e
def test_signing_in_to_the_page_logs_no_scope_warning(hub):
    """Members, community admins and hub admins get the scopes they hold,
    and the hub logs nothing about scopes it did not grant."""
    for who in ("bob", "olga", "carol", "alice"):
        person = hub.signed_in(who)
        r = person.get(PAGE + "usage.csv", params=WINDOW)
        assert r.status_code == 200 and r.text == expected_csv(who), who
    # the hub's answer to the page's last identity check has been logged
    log = hub.log()
    assert "requested scopes" not in log
    assert "granting only" not in log
    assert "Scope(s) not allowed" not in log


@pytest.mark.e2e
def test_the_page_sign_in_is_only_for_usage_pages(hub, people):
    r = people["bob"].get(
        "/hub/hubext/usage/sign-in",
        params={"client_id": "service-hubext-culler", "response_type": "code"},
        allow_redirects=False,
    )
    assert r.status_code == 400
    assert "is not the OAuth client of a usage page" in r.text
    # signed out: the hub's own sign-in first
    r = requests.get(
        f"{hub.url}/hub/hubext/usage/sign-in?client_id=service-hubext-usage",
        allow_redirects=False,
        timeout=30,
    )
    assert r.status_code == 302 and "/hub/login" in r.headers["Location"]


@pytest.mark.e2e
def test_a_lost_role_stops_showing_the_community(hub):
    """Oscar stops being Ocean Lab's admin: within the page's cache age (the
    tests' AUTH_CACHE_MAX_AGE; a minute at most) his page shows only his own
    sessions."""
    oscar = hub.signed_in("oscar")
    assert csv_of(oscar).text == expected_csv("oscar")
    assert expected_csv("oscar") != expected_csv("oscar", sees=SEES["bob"])
    hub.idp_control(
        "PUT",
        "accounts/oscar",
        json={"preferred_username": "oscar", "groups": ["ocean-lab"]},
    )
    # signing in again (another browser) brings his roles in line
    hub.signed_in("oscar")
    assert "community-admin-ocean-lab" not in hub.api.user("oscar")["roles"]
    own = expected_csv("oscar", sees=lambda community, user: user == "oscar")
    assert wait_until(lambda: csv_of(oscar).text == own, timeout=30)


@pytest.mark.e2e
def test_signing_out_of_the_hub_ends_the_page(hub):
    alice = hub.signed_in("alice")
    assert csv_of(alice).text == expected_csv("alice")
    alice.get("/hub/logout", allow_redirects=False)

    def sent_to_sign_in():
        r = alice.get(PAGE + "usage.csv", params=WINDOW, allow_redirects=False)
        return r.status_code == 302 and "/hub/hubext/usage/sign-in" in r.headers.get(
            "Location", ""
        )

    assert wait_until(sent_to_sign_in, timeout=30)


@pytest.mark.e2e
def test_the_hub_lists_the_page_by_its_name(hub, people):
    home = people["bob"].get("/hub/home")
    assert home.status_code == 200
    assert re.search(
        r'<a class="dropdown-item" href="/services/hubext-usage/">\s*Usage\s*</a>',
        home.text,
    ), home.text


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


#: the links of a navigation bar: JupyterHub's pages and the page's
NAV_LINKS = """() => Object.fromEntries(
    [...document.querySelectorAll("nav a.nav-link:not(.dropdown-toggle), nav a#logout")]
        .map(a => [a.textContent.trim(), a.getAttribute("href")]))"""


def navigation_bars(page, hub) -> tuple[dict, dict]:
    """The links of the hub's home page's bar and of the usage page's."""
    usage = page.evaluate(NAV_LINKS)
    page.goto(f"{hub.url}/hub/home")
    home = page.evaluate(NAV_LINKS)
    page.go_back()
    return home, usage


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
    # the hub's navigation bar, as on the hub's own pages: Home, Token,
    # Admin for those who may open it, Logout
    home, usage = navigation_bars(page, hub)
    assert usage == home
    assert set(usage) == {"Home", "Token", "Logout"} | (
        {"Admin"} if who in ("carol", "olga") else set()
    )
    assert page.inner_text("#nav-user") == who
    # the report command: for hub admins only (who can run it)
    assert page.locator("#command").count() == (1 if who == "carol" else 0)
    assert ("hubext usage report" in page.inner_text("body")) == (who == "carol")
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


@pytest.mark.e2e
@pytest.mark.browser
def test_the_hub_services_menu_leads_to_the_page(hub, browser):
    page = open_page(browser, hub, "bob", "")
    page.goto(f"{hub.url}/hub/home")
    page.click("nav a.dropdown-toggle")
    item = page.locator("nav .dropdown-menu a.dropdown-item")
    assert item.all_inner_texts() == ["Usage"]
    assert item.is_visible()
    page.screenshot(path=SCREENSHOTS / "usage-services-menu.png")
    item.click()
    page.wait_for_url(f"{hub.url}{PAGE}")
    assert page.inner_text("#nav-user") == "bob"
    # and back to the hub
    page.click("#nav-home")
    page.wait_for_url(f"{hub.url}/hub/home")

"""The console's REST API and forms through a real hub (hubext-local), people
signed in through the real OpenID Connect provider (tests/console_kit.py).

A community admin reads and changes their community (the change in the
store and in the audit log, which ``hubext audit verify`` checks); a member
gets 403; an admin of one community gets 404 for every route and method of
another, and for every variant of a slug; forged or missing XSRF tokens and
stale versions change nothing; a hub admin does everything; services act
with their tokens; out-of-bounds values are 400s naming the field.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets

import pytest
import requests

from hubext.console.store import StateStore
from hubext.database import make_engine

from .console_kit import (
    ACCOUNTS,
    console_config,
    envs_root,
    make_broken_environment,
    make_software_environment,
    raw_request,
    state_url,
    verify,
    xsrf_of,
)
from .harness import running_hub

pytestmark = pytest.mark.e2e

API = "/hubext/communities"
TOKENS = {"auditor": secrets.token_hex(32), "gitops": secrets.token_hex(32)}


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    root = tmp_path_factory.mktemp("console-envs")
    with running_hub(
        tmp_path_factory,
        "console-api",
        console_config(envs_root(root), TOKENS),
        ACCOUNTS,
    ) as hub:
        hub.envs = envs_root(root)
        hub.people = {}
        yield hub


def person(hub, name):
    """``name``'s browser session (signed in once for the module)."""
    if name not in hub.people:
        hub.people[name] = hub.signed_in(name)
    return hub.people[name]


def env_dir(hub, community: str, name: str) -> str:
    return make_software_environment(hub.envs, community, name)


@pytest.fixture
def store(hub):
    store = StateStore(make_engine(state_url(hub)))
    yield store
    store.close()


def settings(session, community: str) -> dict:
    r = session.api("GET", f"{API}/{community}/settings")
    assert r.status_code == 200, r.text
    return r.json()


def service_api(hub, name: str, method: str, path: str, **kwargs):
    return requests.request(
        method,
        f"{hub.url}/hub/api{path}",
        headers={"Authorization": f"token {TOKENS[name]}"},
        timeout=30,
        **kwargs,
    )


# -- a community admin ------------------------------------------------------------


def test_a_community_admin_reads_and_changes_their_community(hub, store):
    carol = person(hub, "carol")
    person(hub, "alice")  # a member, so the page lists her
    r = carol.api("GET", API)
    assert r.status_code == 200, r.text
    assert [c["slug"] for c in r.json()["communities"]] == ["ocean-lab"]
    assert r.headers["Cache-Control"] == "private, no-store"

    r = carol.api("GET", f"{API}/ocean-lab")
    assert r.status_code == 200, r.text
    model = r.json()
    assert model["can_change"] is True
    assert model["spawner_kind"] == "local"
    assert model["delegates"] == ["environments", "sizes", "idle_timeout"]
    assert model["bounds"]["idle_timeout"] == {"min": 900, "max": 28800}
    assert model["bounds"]["sizes"]["large"]["cpu_guarantee"] == 8
    assert model["limits"] == {"max_cpu": 16, "max_memory": 64 * 2**30}
    assert model["used"]["servers"] == 0
    members = {m["name"]: m for m in model["members"]}
    assert set(members) == {"carol", "alice"}
    assert members["alice"] == {
        "name": "alice",
        "admin": False,
        "identity_recorded": True,
        "why": [
            {
                "source": "rule",
                "list": "members",
                "index": 0,
                "provider": "demo",
                "rule": {"group": "ocean-lab", "provider": "demo"},
            }
        ],
    }
    assert members["carol"]["admin"] is True
    assert [w["list"] for w in members["carol"]["why"]] == ["members", "admins"]
    assert "token" not in r.text.lower()
    r = carol.api("GET", f"{API}/ocean-lab/members")
    assert r.status_code == 200, r.text
    assert r.json() == {"members": model["members"]}
    version = model["settings"]["version"]

    # add, edit, reorder, default, idle timeout, remove: each one version
    # and one audit row
    py311 = env_dir(hub, "ocean-lab", "py311")
    model_env = env_dir(hub, "ocean-lab", "model-2026")
    before_rows = store.count()
    steps = [
        (
            "POST",
            f"{API}/ocean-lab/environments",
            {
                "environment": {
                    "slug": "py311",
                    "display_name": "Python 3.11",
                    "software_environment": py311,
                    "sizes": ["small"],
                }
            },
            201,
            "environment.add",
        ),
        (
            "POST",
            f"{API}/ocean-lab/environments",
            {
                "environment": {
                    "slug": "model",
                    "software_environment": model_env,
                    "sizes": ["small", "large"],
                    "default_size": "large",
                }
            },
            201,
            "environment.add",
        ),
        (
            "PUT",
            f"{API}/ocean-lab/environments/model",
            {
                "environment": {
                    "slug": "model",
                    "display_name": "Ocean model 2026",
                    "software_environment": model_env,
                    "sizes": ["large"],
                }
            },
            200,
            "environment.edit",
        ),
        (
            "PUT",
            f"{API}/ocean-lab/order",
            {"order": ["model", "py311"]},
            200,
            "environments.reorder",
        ),
        (
            "PUT",
            f"{API}/ocean-lab/default",
            {"default": "model"},
            200,
            "environments.default",
        ),
        (
            "PUT",
            f"{API}/ocean-lab/idle-timeout",
            {"idle_timeout": 3600},
            200,
            "idle_timeout.set",
        ),
    ]
    for method, path, body, status, action in steps:
        r = carol.api(method, path, json={"version": version, **body})
        assert r.status_code == status, (path, r.text)
        answer = r.json()
        assert answer["settings"]["version"] == version + 1
        assert answer["audit"]["action"] == action
        version += 1
    assert store.count() == before_rows + len(steps)
    stored = store.read("ocean-lab")
    assert stored.version == version
    assert [e["slug"] for e in stored.document["environments"]] == ["model", "py311"]
    assert stored.document["environments"][0]["default"] is True
    assert stored.document["idle_timeout"] == 3600
    rows = store.audit("ocean-lab")[-len(steps) :]
    assert [(r.actor, r.actor_kind) for r in rows] == [("carol", "user")] * len(steps)
    assert rows[-1].before["environments"] == rows[-1].after["environments"]
    assert rows[-1].after["idle_timeout"] == 3600

    # the GET shows it applied, with nothing needing attention
    model = carol.api("GET", f"{API}/ocean-lab").json()
    assert model["applied"] == {
        "environments": ["model", "py311"],
        "idle_timeout": 3600,
    }
    assert model["needs_attention"] == []

    # replace the whole document: what GET /settings gave, changed
    current = settings(carol, "ocean-lab")
    current["environments"] = current["environments"][1:]
    r = carol.api("PUT", f"{API}/ocean-lab/settings", json=current)
    assert r.status_code == 200, r.text
    assert r.json()["audit"]["action"] == "settings.replace"
    r = carol.api(
        "DELETE",
        f"{API}/ocean-lab/environments/py311",
        json={"version": version + 1},
    )
    assert r.status_code == 200, r.text
    assert store.read("ocean-lab").document == {
        "environments": [],
        "idle_timeout": 3600,
    }

    done = verify(hub)
    assert done.returncode == 0, done.stderr
    assert "the audit log holds" in done.stdout


def test_the_audit_log_as_json_and_csv(hub, store):
    carol = person(hub, "carol")
    version = settings(carol, "ocean-lab")["version"]
    r = carol.api(
        "PUT",
        f"{API}/ocean-lab/idle-timeout",
        json={"version": version, "idle_timeout": 7200},
    )
    assert r.status_code == 200, r.text
    rows = carol.api("GET", f"{API}/ocean-lab/audit").json()["rows"]
    assert rows == [row.as_json() for row in store.audit("ocean-lab")]
    assert rows[-1]["after"]["idle_timeout"] == 7200
    # paged
    first = carol.api("GET", f"{API}/ocean-lab/audit?limit=1").json()
    assert len(first["rows"]) == 1 and first["next_after"] == first["rows"][0]["seq"]
    more = carol.api(
        "GET", f"{API}/ocean-lab/audit?after={first['next_after']}&limit=1000"
    ).json()
    assert [r["seq"] for r in first["rows"] + more["rows"]] == [r["seq"] for r in rows]
    # as CSV (a link on the page: a navigation, no XSRF token)
    r = carol.get("/hub/api/hubext/communities/ocean-lab/audit?format=csv")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(row["seq"]) for row in table] == [r["seq"] for r in rows]
    assert json.loads(table[-1]["after"])["idle_timeout"] == 7200
    for query, field in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("after=-1", "after"),
        ("since=yesterday", "since"),
        ("format=xml", "format"),
    ]:
        r = carol.api("GET", f"{API}/ocean-lab/audit?{query}")
        assert r.status_code == 400, query
        assert r.json()["errors"][0]["field"] == field


# -- bounds -------------------------------------------------------------------------


OUT_OF_BOUNDS = [
    pytest.param(
        "PUT",
        "idle-timeout",
        {"idle_timeout": 60},
        "settings.idle_timeout",
        "60 s is outside 900 s to 28800 s",
        id="idle-timeout-too-short",
    ),
    pytest.param(
        "PUT",
        "idle-timeout",
        {"idle_timeout": "3600"},
        "settings.idle_timeout",
        "'3600' is not a number of seconds",
        id="idle-timeout-a-string",
    ),
    pytest.param(
        "POST",
        "environments",
        {"environment": {"slug": "etc", "software_environment": "/etc"}},
        "settings.environments[0].software_environment",
        "/etc is not in the directories allowed",
        id="software-environment-outside-its-root",
    ),
    pytest.param(
        "POST",
        "environments",
        {
            "environment": {
                "slug": "dots",
                "software_environment": "{root}/../astro-101/x",
            }
        },
        "settings.environments[0].software_environment",
        "is not a normalized path",
        id="software-environment-escaping-with-dots",
    ),
    pytest.param(
        "POST",
        "environments",
        {"environment": {"slug": "img", "image": "quay.io/ocean-lab/x:v1"}},
        "settings.environments[0].image",
        "this hub runs servers on one machine",
        id="an-image-on-one-machine",
    ),
    pytest.param(
        "POST",
        "environments",
        {
            "environment": {
                "slug": "huge",
                "software_environment": "{root}/x",
                "sizes": ["xl"],
            }
        },
        "settings.environments[0].sizes[0]",
        "'xl' is not a size of this hub (small, large)",
        id="a-size-the-operator-did-not-define",
    ),
    pytest.param(
        "POST",
        "environments",
        {"environment": {"slug": "Bad Slug", "software_environment": "{root}/x"}},
        "settings.environments[0].slug",
        "lowercase letters, digits and single '-'",
        id="a-bad-slug",
    ),
    pytest.param(
        "POST",
        "environments",
        {
            "environment": {
                "slug": "x",
                "software_environment": "{root}/x",
                "cmd": ["sh"],
            }
        },
        "settings.environments[0].cmd",
        "unknown key",
        id="a-key-that-is-not-delegated",
    ),
    pytest.param(
        "PUT",
        "settings",
        {"environments": [], "kubespawner_override": {"image": "evil"}},
        "settings.kubespawner_override",
        "unknown key",
        id="settings-with-the-operators-key",
    ),
]


@pytest.mark.parametrize(("method", "route", "body", "field", "message"), OUT_OF_BOUNDS)
def test_out_of_bounds_values_are_400s_naming_the_field(
    hub, store, method, route, body, field, message
):
    carol = person(hub, "carol")
    root = str(hub.envs / "ocean-lab")
    env_dir(hub, "ocean-lab", "x")  # a real one: only the bound is at fault
    body = json.loads(json.dumps(body).replace("{root}", root))
    before = store.read("ocean-lab")
    rows = store.count()
    version = before.version
    if before.document and before.document.get("environments"):
        # the new environment is the first: start from none
        r = carol.api(
            "PUT",
            f"{API}/ocean-lab/settings",
            json={"version": version, "environments": []},
        )
        assert r.status_code == 200
        before, rows, version = store.read("ocean-lab"), store.count(), version + 1
    r = carol.api(method, f"{API}/ocean-lab/{route}", json={"version": version, **body})
    assert r.status_code == 400, r.text
    answer = r.json()
    assert [e["field"] for e in answer["errors"]] == [field], answer
    assert message in answer["errors"][0]["message"]
    assert answer["message"].startswith(f"{field}: ")
    assert store.read("ocean-lab") == before
    assert store.count() == rows


def test_more_environments_than_the_operator_allows(hub, store):
    carol = person(hub, "carol")
    version = settings(carol, "ocean-lab")["version"]
    envs = [
        {"slug": f"e{i}", "software_environment": env_dir(hub, "ocean-lab", f"e{i}")}
        for i in range(4)
    ]
    r = carol.api(
        "PUT",
        f"{API}/ocean-lab/settings",
        json={"version": version, "environments": envs[:3]},
    )
    assert r.status_code == 200, r.text
    rows = store.count()
    r = carol.api(
        "POST",
        f"{API}/ocean-lab/environments",
        json={"version": version + 1, "environment": envs[3]},
    )
    assert r.status_code == 400
    assert r.json()["errors"] == [
        {"field": "settings.environments", "message": "at most 3 environments, got 4"}
    ]
    r = carol.api(
        "POST",
        f"{API}/ocean-lab/environments",
        json={"version": version + 1, "environment": {**envs[3], "slug": "e0"}},
    )
    assert r.status_code == 400
    assert r.json()["errors"][0]["field"] == "settings.environments[3].slug"
    assert store.count() == rows


def slugs_now(stored) -> list[str]:
    return [e["slug"] for e in (stored.document or {}).get("environments", [])]


def test_a_software_environment_that_cannot_run_a_server_is_refused(hub, store):
    """Within the roots but unusable (its python cannot import jupyterhub):
    the console checks it on the machine as hubext-local would before a
    start, and refuses it naming the field; nothing is stored."""
    carol = person(hub, "carol")
    broken = make_broken_environment(hub.envs, "ocean-lab", "broken")
    before, rows = store.read("ocean-lab"), store.count()
    if len(slugs_now(before)) >= 3:  # max_profiles: make room
        r = carol.api(
            "PUT",
            f"{API}/ocean-lab/settings",
            json={"version": before.version, "environments": []},
        )
        assert r.status_code == 200, r.text
        before, rows = store.read("ocean-lab"), store.count()
    r = carol.api(
        "POST",
        f"{API}/ocean-lab/environments",
        json={
            "version": before.version,
            "environment": {"slug": "broken", "software_environment": broken},
        },
    )
    assert r.status_code == 400, r.text
    errors = r.json()["errors"]
    assert [e["field"] for e in errors] == [
        f"settings.environments[{len(slugs_now(before))}].software_environment"
    ], errors
    assert store.read("ocean-lab") == before
    assert store.count() == rows


def test_structural_mistakes(hub):
    carol = person(hub, "carol")
    version = settings(carol, "ocean-lab")["version"]
    for method, path, body, status, field in [
        (
            "PUT",
            "environments/nope",
            {"environment": {"slug": "nope"}},
            404,
            "environment",
        ),
        ("DELETE", "environments/nope", {}, 404, "environment"),
        ("PUT", "order", {"order": ["nope"]}, 400, "order"),
        ("PUT", "default", {"default": "nope"}, 400, "default"),
        ("PUT", "idle-timeout", {"idle_timeout": 3600, "extra": 1}, 400, "extra"),
        ("PUT", "idle-timeout", {"idle_timeout": 3600, "version": "1"}, 400, "version"),
        (
            "PUT",
            "idle-timeout",
            {"idle_timeout": 3600, "version": None},
            400,
            "version",
        ),
    ]:
        r = carol.api(
            method, f"{API}/ocean-lab/{path}", json={"version": version, **body}
        )
        assert r.status_code == status, (path, r.text)
        assert r.json()["errors"][0]["field"] == field, r.text
    r = carol.api("PUT", f"{API}/ocean-lab/idle-timeout", data=b"{not json")
    assert r.status_code == 400
    r = carol.api("PUT", f"{API}/ocean-lab/idle-timeout", json=[1, 2])
    assert r.status_code == 400


# -- who may do what ----------------------------------------------------------------


def every_route(community: str) -> list[tuple[str, str, dict | None]]:
    """Every route and method of a community, with a body that would be
    accepted from its admin."""
    base = f"{API}/{community}"
    env = {"environment": {"slug": "x", "software_environment": "/nowhere/x"}}
    return [
        ("GET", base, None),
        ("GET", f"{base}/members", None),
        ("GET", f"{base}/settings", None),
        ("PUT", f"{base}/settings", {"environments": []}),
        ("POST", f"{base}/environments", env),
        ("PUT", f"{base}/environments/x", env),
        ("DELETE", f"{base}/environments/x", {}),
        ("PUT", f"{base}/order", {"order": []}),
        ("PUT", f"{base}/default", {"default": None}),
        ("PUT", f"{base}/idle-timeout", {"idle_timeout": 3600}),
        ("GET", f"{base}/audit", None),
        ("GET", f"{base}/audit?format=csv", None),
    ]


@pytest.fixture
def astro_settings(hub, store):
    """astro-101 with an environment of its admin's (erin)."""
    erin = person(hub, "erin")
    current = settings(erin, "astro-101")
    if not current.get("environments"):
        r = erin.api(
            "POST",
            f"{API}/astro-101/environments",
            json={
                "version": current["version"],
                "environment": {
                    "slug": "telescope",
                    "software_environment": env_dir(hub, "astro-101", "telescope"),
                },
            },
        )
        assert r.status_code == 201, r.text
    return store.read("astro-101"), [r.seq for r in store.audit("astro-101")]


def test_an_admin_of_one_community_cannot_read_or_change_another(
    hub, store, astro_settings
):
    carol = person(hub, "carol")  # ocean-lab's admin, an astro-101 member
    stored, rows = astro_settings
    for method, path, body in every_route("astro-101"):
        body = None if body is None else {"version": stored.version, **body}
        r = carol.api(method, path, json=body)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["message"] == "No access to resources or resources not found"
    # a community that does not exist: the same answer
    for method, path, body in every_route("no-such-community"):
        r = carol.api(
            method, path, json=None if body is None else {"version": 0, **body}
        )
        assert r.status_code == 404, (method, path)
        assert r.json()["message"] == "No access to resources or resources not found"
    # the page, and its form
    page = carol.get("/hub/hubext/communities/astro-101/")
    assert page.status_code == 404
    own = carol.get("/hub/hubext/communities/ocean-lab/")
    r = carol.session.post(
        f"{hub.url}/hub/hubext/communities/astro-101/",
        data={
            "_xsrf": xsrf_of(own.text),
            "action": "idle_timeout.set",
            "version": str(stored.version),
            "idle_timeout": "900",
        },
        allow_redirects=False,
    )
    assert r.status_code == 404
    # the whole log is hub admins'
    assert carol.api("GET", "/hubext/audit").status_code == 403
    assert [c["slug"] for c in carol.api("GET", API).json()["communities"]] == [
        "ocean-lab"
    ]
    assert store.read("astro-101") == stored
    assert [r.seq for r in store.audit("astro-101")] == rows


@pytest.mark.parametrize("name", ["alice", "bob"])
def test_members_get_403(hub, store, name, astro_settings):
    member = person(hub, name)
    stored, _ = astro_settings
    rows = store.count()
    for community in ("ocean-lab", "astro-101"):
        for method, path, body in every_route(community):
            body = None if body is None else {"version": stored.version, **body}
            r = member.api(method, path, json=body)
            assert r.status_code == 403, (method, path, r.text)
    assert member.api("GET", API).status_code == 403
    assert member.get("/hub/hubext/communities/").status_code == 403
    assert member.get("/hub/hubext/communities/ocean-lab/").status_code == 403
    assert store.count() == rows
    # and no link to the console in the hub's navigation bar
    assert "hubext-console-link" not in member.get("/hub/home").text


SLUG_VARIANTS = [
    "Ocean-Lab",
    "OCEAN-LAB",
    "ocean-lab/",
    "ocean%2Dlab",
    "ocean%2dlab",
    "%6Fcean-lab",
    "ocean\u2010lab",  # hyphen
    "ocean\u2011lab",  # non-breaking hyphen
    "\u043ecean-lab",  # Cyrillic o
    "ocean-lab\u200b",  # zero-width space
    "\uff4fcean-lab",  # fullwidth o
    "ocean-lab%00",
    "ocean-lab%20",
    "ocean-lab%2F..%2Fastro-101",
    "ocean-lab/../astro-101",
    "./astro-101",
    "..%2Focean-lab",
    "ocean-lab;astro-101",
    "./ocean-lab",
]
#: Variants that name ocean-lab itself once dot segments are resolved (RFC
#: 3986): the proxy resolves them before the hub sees them, the hub alone
#: does not.
SAME_URL = {"./ocean-lab"}


def path_of(slug: str) -> str:
    """``slug`` in a request's path, with what is not printable ASCII
    percent-encoded (as a browser sends it)."""
    return "".join(chr(b) if 0x21 <= b < 0x7F else f"%{b:02X}" for b in slug.encode())


@pytest.mark.parametrize("variant", SLUG_VARIANTS)
def test_slug_variants_are_404(hub, store, variant, astro_settings):
    """Even for carol's own community: a slug matches only as it is, at the
    hub (its own port) and through the proxy."""
    carol = person(hub, "carol")
    stored = {c: store.read(c) for c in ("ocean-lab", "astro-101")}
    rows = store.count()
    xsrf = carol.xsrf_headers()
    hub_itself = f"http://127.0.0.1:{hub.env.hub_port}"
    for base in (hub_itself, hub.url):
        if base == hub.url and variant in SAME_URL:
            continue
        for method, path, body in every_route("SLUG"):
            path = "/hub/api" + path.replace("SLUG", path_of(variant))
            data = None
            headers = dict(xsrf)
            if body is not None:
                data = json.dumps({"version": stored["ocean-lab"].version, **body})
                headers["Content-Type"] = "application/json"
            status, answer = raw_request(
                base,
                method,
                path,
                cookies=carol.session.cookies,
                headers=headers,
                body=None if data is None else data.encode(),
            )
            assert status == 404, (base, method, path, status, answer[:200])
        status, _ = raw_request(
            base,
            "GET",
            f"/hub/hubext/communities/{path_of(variant)}/",
            cookies=carol.session.cookies,
        )
        assert status == 404, (base, variant)
    assert {c: store.read(c) for c in stored} == stored
    assert store.count() == rows


def test_forged_or_missing_xsrf_changes_nothing(hub, store):
    carol = person(hub, "carol")
    alice = person(hub, "alice")
    version = settings(carol, "ocean-lab")["version"]
    rows = store.count()
    body = {"version": version, "idle_timeout": 1800}
    path = f"{hub.url}/hub/api{API}/ocean-lab/idle-timeout"
    for headers in (
        {},
        {"X-XSRFToken": "forged"},
        {"X-XSRFToken": alice.xsrf_headers()["X-XSRFToken"]},
        {"X-XSRFToken": carol.xsrf_headers()["X-XSRFToken"][:-2] + "AA"},
    ):
        r = carol.session.put(path, json=body, headers=headers, timeout=30)
        assert r.status_code == 403, (headers, r.text)
    # a cross-site form post to the API: not JSON, so not authenticated
    r = carol.session.post(
        f"{hub.url}/hub/api{API}/ocean-lab/environments",
        data={"version": str(version)},
        headers={"X-XSRFToken": carol.xsrf_headers()["X-XSRFToken"]},
        timeout=30,
    )
    assert r.status_code == 403
    # the page's form without its token, or another person's
    page = f"{hub.url}/hub/hubext/communities/ocean-lab/"
    form = {
        "action": "idle_timeout.set",
        "version": str(version),
        "idle_timeout": "1800",
    }
    for token in (None, "forged", xsrf_of(alice.get("/hub/home").text)):
        data = form if token is None else {**form, "_xsrf": token}
        r = carol.session.post(page, data=data, allow_redirects=False, timeout=30)
        assert r.status_code == 403, token
    assert store.read("ocean-lab").version == version
    assert store.count() == rows


def test_a_replayed_change_with_an_old_version_is_409(hub, store):
    carol = person(hub, "carol")
    version = settings(carol, "ocean-lab")["version"]
    body = {"version": version, "idle_timeout": 5400}
    first = carol.api("PUT", f"{API}/ocean-lab/idle-timeout", json=body)
    assert first.status_code == 200
    rows = store.count()
    again = carol.api("PUT", f"{API}/ocean-lab/idle-timeout", json=body)
    assert again.status_code == 409
    answer = again.json()
    assert answer["current_version"] == version + 1
    assert f"at version {version + 1}, not {version}" in answer["message"]
    assert store.count() == rows
    # the form says so too, and keeps what was typed
    page = carol.get("/hub/hubext/communities/ocean-lab/")
    r = carol.session.post(
        f"{hub.url}/hub/hubext/communities/ocean-lab/",
        data={
            "_xsrf": xsrf_of(page.text),
            "action": "idle_timeout.set",
            "version": str(version),
            "idle_timeout": "4321",
        },
        allow_redirects=False,
    )
    assert r.status_code == 409
    assert 'value="4321"' in r.text
    assert f"at version {version + 1}, not {version}" in r.text
    assert store.count() == rows


# -- hub admins, services, a community that delegates nothing ------------------------


def test_a_hub_admin_can_do_everything(hub, store, astro_settings):
    hal = person(hub, "hal")
    slugs = [c["slug"] for c in hal.api("GET", API).json()["communities"]]
    assert slugs == ["ocean-lab", "astro-101", "reading-group"]
    for community in ("ocean-lab", "astro-101"):
        version = settings(hal, community)["version"]
        r = hal.api(
            "PUT",
            f"{API}/{community}/idle-timeout",
            json={"version": version, "idle_timeout": 28800},
        )
        assert r.status_code == 200, r.text
        assert store.audit(community)[-1].actor == "hal"
    everything = hal.api("GET", "/hubext/audit").json()["rows"]
    assert [r["seq"] for r in everything] == [r.seq for r in store.audit()]
    csv_text = hal.get("/hub/api/hubext/audit?format=csv").text
    assert len(list(csv.DictReader(io.StringIO(csv_text)))) == len(everything)
    page = hal.get("/hub/hubext/communities/")
    assert page.status_code == 200
    assert "/hub/api/hubext/audit?format=csv" in page.text
    assert hal.get("/hub/hubext/communities/astro-101/").status_code == 200
    assert hal.api("GET", f"{API}/no-such-community").status_code == 404


def test_services_act_with_their_tokens(hub, store, astro_settings):
    # gitops may change astro-101 only; no XSRF token for a token request
    version = store.read("astro-101").version
    r = service_api(
        hub,
        "gitops",
        "PUT",
        f"{API}/astro-101/idle-timeout",
        json={"version": version, "idle_timeout": 1200},
    )
    assert r.status_code == 200, r.text
    row = store.audit("astro-101")[-1]
    assert (row.actor, row.actor_kind, row.action) == (
        "gitops",
        "service",
        "idle_timeout.set",
    )
    r = service_api(hub, "gitops", "GET", f"{API}/ocean-lab")
    assert r.status_code == 404
    # the auditor reads everything, changes nothing
    rows = store.count()
    r = service_api(hub, "auditor", "GET", "/hubext/audit")
    assert r.status_code == 200
    assert len(r.json()["rows"]) == rows
    r = service_api(
        hub,
        "auditor",
        "PUT",
        f"{API}/astro-101/idle-timeout",
        json={"version": version + 1, "idle_timeout": 900},
    )
    assert r.status_code == 403
    assert store.count() == rows
    # a person's token acts as the person
    token = hub.token_for("carol")
    r = requests.get(
        f"{hub.url}/hub/api{API}",
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert [c["slug"] for c in r.json()["communities"]] == ["ocean-lab"]


def test_a_community_that_delegates_nothing_is_read_only(hub, store):
    rita = person(hub, "rita")
    model = rita.api("GET", f"{API}/reading-group").json()
    assert model["delegates"] == [] and model["can_change"] is False
    rows = store.count()
    r = rita.api(
        "PUT",
        f"{API}/reading-group/idle-timeout",
        json={"version": 0, "idle_timeout": 900},
    )
    assert r.status_code == 403
    assert "delegates nothing" in r.json()["message"]
    page = rita.get("/hub/hubext/communities/reading-group/")
    assert page.status_code == 200
    assert "nothing is delegated to its admins" in page.text
    assert "<form" not in page.text.split('id="environments"')[1]
    assert store.count() == rows


# -- the page's forms -----------------------------------------------------------------


def test_the_forms_change_the_settings_and_keep_what_was_typed(hub, store):
    carol = person(hub, "carol")
    url = f"{hub.url}/hub/hubext/communities/ocean-lab/"
    version = settings(carol, "ocean-lab")["version"]
    r = carol.api(
        "PUT",
        f"{API}/ocean-lab/settings",
        json={"version": version, "environments": []},
    )
    assert r.status_code == 200
    page = carol.get("/hub/hubext/communities/ocean-lab/")
    assert page.status_code == 200
    assert 'class="nav-link hubext-console-link"' in page.text  # the hub's navbar
    assert "Logout" in page.text
    token = xsrf_of(page.text)
    version = store.read("ocean-lab").version
    rows = store.count()

    def post(**fields):
        data = {"_xsrf": token, "version": str(store.read("ocean-lab").version)}
        return carol.session.post(url, data={**data, **fields}, allow_redirects=False)

    # out of bounds: the page again, 400, with what was typed and why
    bad = post(
        action="environment.add",
        slug="my-env",
        display_name="My <env>",
        software_environment="/etc/passwd",
        sizes=["small", "large"],
        default_size="large",
    )
    assert bad.status_code == 400
    assert 'value="my-env"' in bad.text
    assert 'value="My &lt;env&gt;"' in bad.text
    assert 'value="/etc/passwd"' in bad.text
    assert re.search(
        r'value="large"\s+id="environment.add--size-large"\s+checked', bad.text
    )
    assert re.search(r'<option value="large"\s+selected>', bad.text)
    assert "/etc/passwd is not in the directories allowed" in bad.text
    assert store.count() == rows

    good = make_software_environment(hub.envs, "ocean-lab", "my-env")
    r = post(
        action="environment.add",
        slug="my-env",
        software_environment=good,
        sizes="small",
    )
    assert r.status_code == 303, r.text
    assert r.headers["Location"].startswith("/hub/hubext/communities/ocean-lab/?saved=")
    other = make_software_environment(hub.envs, "ocean-lab", "other")
    assert (
        post(
            action="environment.add", slug="other", software_environment=other
        ).status_code
        == 303
    )
    assert (
        post(action="environment.move", environment="other", direction="up").status_code
        == 303
    )
    assert post(action="environments.default", environment="my-env").status_code == 303
    r = post(
        action="environment.edit",
        environment="my-env",
        slug="my-env",
        display_name="Mine",
        software_environment=good,
        sizes="large",
        default="on",
    )
    assert r.status_code == 303
    assert post(action="idle_timeout.set", idle_timeout="2700").status_code == 303
    assert post(action="environment.remove", environment="other").status_code == 303
    stored = store.read("ocean-lab")
    assert stored.version == version + 7
    assert stored.document == {
        "environments": [
            {
                "slug": "my-env",
                "display_name": "Mine",
                "software_environment": good,
                "sizes": ["large"],
                "default": True,
            }
        ],
        "idle_timeout": 2700,
    }
    actions = [r.action for r in store.audit("ocean-lab")[-7:]]
    assert actions == [
        "environment.add",
        "environment.add",
        "environments.reorder",
        "environments.default",
        "environment.edit",
        "idle_timeout.set",
        "environment.remove",
    ]
    shown = carol.get("/hub/hubext/communities/ocean-lab/").text
    assert "Mine" in shown and "2700 seconds" in shown
    r = post(action="idle_timeout.set", idle_timeout="ten minutes")
    assert r.status_code == 400
    assert 'value="ten minutes"' in r.text
    assert verify(hub).returncode == 0


def test_a_restart_keeps_every_change(hub, store):
    carol = person(hub, "carol")
    before = {c: store.read(c) for c in ("ocean-lab", "astro-101")}
    rows = [r.as_json() for r in store.audit()]
    hub.restart()
    hub.people.clear()
    carol = person(hub, "carol")
    assert settings(carol, "ocean-lab") == {
        "version": before["ocean-lab"].version,
        **before["ocean-lab"].document,
    }
    assert [r.as_json() for r in store.audit()] == rows
    assert verify(hub).returncode == 0


def test_bounds_tightened_at_restart_need_attention(hub, store):
    """The operator moves ocean-lab's software root and narrows its idle
    timeout: at the next start the stored values are not applied, the hub
    logs each with its key path, and the console shows them as needing
    attention; removing the environment is still accepted."""
    carol = person(hub, "carol")
    kept = env_dir(hub, "ocean-lab", "py311")
    version = settings(carol, "ocean-lab")["version"]
    r = carol.api(
        "PUT",
        f"{API}/ocean-lab/settings",
        json={
            "version": version,
            "environments": [{"slug": "kept", "software_environment": kept}],
            "idle_timeout": 20000,
        },
    )
    assert r.status_code == 200, r.text
    moved = hub.envs / "ocean-lab-moved"
    moved.mkdir(exist_ok=True)
    # the operator's later file: merged key by key into the community
    tight = f"""
from hubext import add_to_community
add_to_community(
    c,
    "ocean-lab",
    self_service={{
        "environments": {{"software_roots": [{str(moved)!r}]}},
        "idle_timeout": {{"max": 7200}},
    }},
)
"""
    try:
        hub.restart(extra_config=tight)
        hub.people.clear()
        carol = person(hub, "carol")
        r = carol.api("GET", f"{API}/ocean-lab")
        assert r.status_code == 200, r.text
        model = r.json()
        attention = {a["field"]: a["message"] for a in model["needs_attention"]}
        path = "settings.environments[0].software_environment"
        assert set(attention) == {path, "settings.idle_timeout"}, attention
        assert str(moved) in attention[path]
        assert "7200" in attention["settings.idle_timeout"]
        assert model["applied"] == {"environments": [], "idle_timeout": None}
        log = hub.log().rpartition("===== hub start")[2]
        assert f"hubext: ocean-lab's {path}: " in log
        assert "hubext: ocean-lab's settings.idle_timeout: " in log
        page = carol.get("/hub/hubext/communities/ocean-lab/").text
        assert "Needs attention" in page and path in page
        # what is outside the bounds does not block taking it out
        r = carol.api(
            "DELETE",
            f"{API}/ocean-lab/environments/kept",
            json={"version": version + 1},
        )
        assert r.status_code == 200, r.text
    finally:
        hub.restart(extra_config="")  # the module's configuration again
        hub.people.clear()

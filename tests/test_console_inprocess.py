"""The console's handlers in a real JupyterHub application in the test's
process (tests/inprocess_hub.py): what the page reads of the audit log,
DELETE with ``?version=``, the ``image`` field on hubext-kube, and the
delegated state in a real PostgreSQL (``c.Console.db_url``)."""

from __future__ import annotations

import re

import pytest
from kubernetes_asyncio.config import kube_config
from sqlalchemy import event

from hubext.console.store import StateStore
from hubext.database import make_engine
from hubext.spawners.kube import CommunityKubeSpawner

from .conftest import DUMMY_KUBECONFIG
from .console_kit import make_software_environment
from .inprocess_hub import InProcessHub, Person, hub_config
from .usage_pg import postgres  # noqa: F401 (fixture)

API = "hubext/communities"
DIGEST = "sha256:" + "a1" * 32
TAG = r"v[0-9]+(\.[0-9]+)*"


def _rules(slug: str) -> dict:
    return {
        "members": [{"provider": "demo", "group": slug}],
        "admins": [{"provider": "demo", "group": f"{slug}-admins"}],
    }


def local_communities(envs) -> dict:
    return {
        "ocean-lab": {
            **_rules("ocean-lab"),
            "self_service": {
                "environments": {"software_roots": [str(envs / "ocean-lab")]},
                "sizes": {"small": {"cpu_guarantee": 1, "mem_guarantee": "1G"}},
                "idle_timeout": {"min": 900, "max": 28800},
            },
        }
    }


def kube_communities() -> dict:
    return {
        "ocean-lab": {
            **_rules("ocean-lab"),
            "self_service": {
                "environments": {
                    "images": ["quay.io/ocean-lab/*"],
                    "tag_pattern": TAG,
                    "allow_digest": False,
                },
                "sizes": {"small": {"cpu_guarantee": 1, "mem_guarantee": "1G"}},
            },
        }
    }


def start(tmp_path, communities: dict, *, kube: bool = False, **extra) -> InProcessHub:
    config = hub_config(tmp_path, communities, [])
    if kube:  # hubext-kube refuses hubext-local's settings
        del config["LocalCommunitySpawner"]
        config.JupyterHub.spawner_class = CommunityKubeSpawner
        config.CommunityKubeSpawner.profile_list = [
            {"display_name": "Default", "slug": "default"}
        ]
    for key, value in extra.items():
        section, trait = key.split("__")
        setattr(config[section], trait, value)
    hub = InProcessHub(tmp_path, config).start()
    hub.admin = hub.add_person(
        Person("oa", ["ocean-lab"], ["ocean-lab"]),
        [["provider", "demo"], ["username", "oa"], ["group", "ocean-lab-admins"]],
    )
    return hub


def request(hub, method: str, path: str, body=None, **kwargs):
    who = hub.admin
    return who.cookie_session.request(
        method,
        f"{hub.url}/hub/{path}",
        json=body,
        headers={"X-XSRFToken": who.xsrf},
        timeout=30,
        **kwargs,
    )


def settings(hub) -> dict:
    r = request(hub, "GET", f"api/{API}/ocean-lab/settings")
    assert r.status_code == 200, r.text
    return r.json()


def console_store(hub) -> StateStore:
    return hub.app.authenticator._console.store


@pytest.fixture
def local_hub(tmp_path):
    envs = tmp_path / "envs"
    hub = start(tmp_path, local_communities(envs))
    hub.env = make_software_environment(envs, "ocean-lab", "py312")
    yield hub
    hub.stop()


# -- the page reads the last rows of the audit log, and counts them -------------------


def test_the_page_reads_only_the_last_rows_of_the_log(local_hub):
    hub = local_hub
    store = console_store(hub)
    for i in range(60):
        document = {"idle_timeout": 900 + 60 * i}
        store.change(
            "ocean-lab",
            i,
            document,
            actor="oa",
            actor_kind="user",
            action="idle_timeout.set",
        )
    store.record(actor="hal", actor_kind="user", action="hub.note", community=None)
    statements = []

    def record(conn, cursor, statement, parameters, context, executemany):
        if "hubext_audit" in statement and statement.lstrip().startswith("SELECT"):
            statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", record)
    try:
        r = request(hub, "GET", f"{API}/ocean-lab")
    finally:
        event.remove(store.engine, "before_cursor_execute", record)
    assert r.status_code == 200, r.text
    assert statements, "the page read no audit row"
    for statement in statements:
        # every read of the log is bounded: the last rows, or a count
        assert "LIMIT" in statement or "count(" in statement, statement
    text = re.sub(r"\s+", " ", r.text)
    assert "(the last 50 of 60)" in text
    # the rows shown, newest first: 60 down to 11 (the hub's row 61 is not
    # the community's)
    shown = re.findall(r"<tr>\s*<td>(\d+)</td>", r.text)
    assert shown == [str(seq) for seq in range(60, 10, -1)]
    rows, count = store.page_audit("ocean-lab", 50)
    assert count == 60
    assert [row.seq for row in rows] == list(range(60, 10, -1))
    assert store.count("ocean-lab") == 60
    assert store.count() == 61


# -- DELETE with ?version= -------------------------------------------------------------


def test_a_delete_may_name_its_version_in_the_query(local_hub):
    hub = local_hub
    path = f"api/{API}/ocean-lab/environments"
    for slug in ("one", "two", "three"):
        version = settings(hub)["version"]
        r = request(
            hub,
            "POST",
            path,
            {
                "version": version,
                "environment": {"slug": slug, "software_environment": hub.env},
            },
        )
        assert r.status_code == 201, r.text
    assert settings(hub)["version"] == 3

    # no body, the version in the query
    r = request(hub, "DELETE", f"{path}/one", params={"version": "3"})
    assert r.status_code == 200, r.text
    assert [e["slug"] for e in settings(hub)["environments"]] == ["two", "three"]
    # both, the same
    r = request(hub, "DELETE", f"{path}/two", {"version": 4}, params={"version": "4"})
    assert r.status_code == 200, r.text

    refused = [
        # both, different
        ({"version": 5}, {"version": "4"}, "body and query differ"),
        ({"version": True}, {"version": "1"}, "body and query differ"),
        # not a whole number, or twice
        (None, {"version": "x"}, "one whole number"),
        (None, {"version": "-1"}, "one whole number"),
        (None, {"version": "\u0665"}, "one whole number"),
        (None, {"version": ["5", "5"]}, "one whole number"),
    ]
    for body, params, message in refused:
        r = request(hub, "DELETE", f"{path}/three", body, params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["errors"] == [{"field": "version", "message": message}]
    # stale, in the query: 409
    r = request(hub, "DELETE", f"{path}/three", params={"version": "4"})
    assert r.status_code == 409, r.text
    # only a DELETE takes it from the query
    r = request(
        hub,
        "PUT",
        f"api/{API}/ocean-lab/idle-timeout",
        {"version": 5, "idle_timeout": 3600},
        params={"version": "5"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["field"] == "version"
    assert [e["slug"] for e in settings(hub)["environments"]] == ["three"]
    assert settings(hub)["version"] == 5
    assert console_store(hub).verify() is None


# -- the image field on hubext-kube ------------------------------------------------------


@pytest.fixture
def kube_hub(tmp_path, monkeypatch):
    # KubeSpawner loads the kubeconfig when it is built (a spawn form)
    monkeypatch.setattr(
        kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(DUMMY_KUBECONFIG)
    )
    hub = start(tmp_path, kube_communities(), kube=True)
    yield hub
    hub.stop()


def test_images_within_the_bounds_on_hubext_kube(kube_hub):
    hub = kube_hub
    path = f"api/{API}/ocean-lab/environments"
    image = "quay.io/ocean-lab/model:v2.1"
    r = request(
        hub,
        "POST",
        path,
        {"version": 0, "environment": {"slug": "model", "image": image}},
    )
    assert r.status_code == 201, r.text
    assert settings(hub)["environments"][0]["image"] == image
    page = request(hub, "GET", f"{API}/ocean-lab")
    assert page.status_code == 200
    assert image in page.text
    # and offered in the next spawn form (KubeSpawner built with a kubeconfig
    # naming no cluster: enough to render its form)
    form = request(hub, "GET", "spawn")
    assert form.status_code == 200, form.text
    assert 'value="ocean-lab--model"' in form.text

    refused = [
        ("quay.io/other-lab/model:v2.1", "quay.io/ocean-lab/*"),
        ("docker.io/ocean-lab/model:v2.1", "quay.io/ocean-lab/*"),
        ("quay.io/ocean-lab/model:latest", f"does not match {TAG!r}"),
        (f"quay.io/ocean-lab/model@{DIGEST}", "digest"),
    ]
    for bad, bound in refused:
        r = request(
            hub,
            "PUT",
            f"{path}/model",
            {"version": 1, "environment": {"slug": "model", "image": bad}},
        )
        assert r.status_code == 400, (bad, r.text)
        errors = r.json()["errors"]
        assert [e["field"] for e in errors] == ["settings.environments[0].image"], (
            errors
        )
        assert bound in errors[0]["message"], errors
    # a software environment is hubext-local's: refused here
    r = request(
        hub,
        "POST",
        path,
        {
            "version": 1,
            "environment": {"slug": "conda", "software_environment": "/opt/conda"},
        },
    )
    assert r.status_code == 400, r.text
    assert "software_environment" in r.json()["message"]
    assert settings(hub)["version"] == 1
    assert console_store(hub).verify() is None


def test_an_image_is_refused_on_hubext_local(local_hub):
    r = request(
        local_hub,
        "POST",
        f"api/{API}/ocean-lab/environments",
        {
            "version": 0,
            "environment": {"slug": "model", "image": "quay.io/ocean-lab/m:v1"},
        },
    )
    assert r.status_code == 400, r.text
    assert "image" in r.json()["message"]
    assert settings(local_hub)["version"] == 0


# -- the delegated state in PostgreSQL ---------------------------------------------------


def test_the_console_on_postgresql(tmp_path, postgres):  # noqa: F811
    name = postgres.create_database()
    url = postgres.url(name)
    envs = tmp_path / "envs"
    hub = start(tmp_path, local_communities(envs), Console__db_url=url)
    try:
        env = make_software_environment(envs, "ocean-lab", "py312")
        assert console_store(hub).engine.dialect.name == "postgresql"
        r = request(
            hub,
            "POST",
            f"api/{API}/ocean-lab/environments",
            {
                "version": 0,
                "environment": {"slug": "py312", "software_environment": env},
            },
        )
        assert r.status_code == 201, r.text
        r = request(
            hub,
            "PUT",
            f"api/{API}/ocean-lab/idle-timeout",
            {"version": 1, "idle_timeout": 3600},
        )
        assert r.status_code == 200, r.text
        read = settings(hub)
        assert read["version"] == 2
        assert read["idle_timeout"] == 3600
        assert read["environments"][0]["software_environment"] == env
        r = request(hub, "GET", f"api/{API}/ocean-lab/audit")
        assert [row["action"] for row in r.json()["rows"]] == [
            "environment.add",
            "idle_timeout.set",
        ]
    finally:
        hub.stop()
    # read back from PostgreSQL by another store, and the chain verifies
    store = StateStore(make_engine(url))
    try:
        stored = store.read("ocean-lab")
        assert stored.version == 2
        assert stored.document["idle_timeout"] == 3600
        assert store.count("ocean-lab") == 2
        assert store.verify() is None
    finally:
        store.close()
        postgres.drop_database(name)

"""A community's stored software environments take effect on hubext-local, end to end.

A real hub (the demo's configuration, where Ocean Modelling Lab's admins may
offer software environments under a root in the test's directory, sizes
and an idle timeout), real single-user servers started with a real
virtualenv's python, the real culler's passes with its clock moved. What a
community admin stores is written through the hub's own store, as the
console's handlers write it (tests/delegated_kit.py).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest

from hubext.culler.app import Culler

from .culler_kit import one_pass
from .delegated_kit import (
    STORE_HANDLER,
    make_environment,
    server_process,
    store_document,
)
from .harness import running_hub
from .hubclient import wait_until
from .test_profiles_local import profiles_on_page
from .test_service_data import probe_service

pytestmark = pytest.mark.e2e

ACCOUNTS = {
    "alice": {"preferred_username": "alice", "groups": ["ocean-lab"]},
    "carol": {
        "preferred_username": "carol",
        "groups": ["ocean-lab", "ocean-lab-admins"],
    },
    "bob": {"preferred_username": "bob", "groups": ["astro-101"]},
}

SLUG = "ocean-lab--model"
GIB = 2**30


def bounds_config(root, idle_min: int = 900) -> str:
    return f"""
c.Communities.communities["ocean-lab"]["self_service"] = {{
    "environments": {{"software_roots": [{str(root)!r}], "max_profiles": 3}},
    "sizes": {{
        "small": {{"display_name": "1 CPU, 2 GiB", "cpu_guarantee": 1, "mem_guarantee": "2G"}},
        "large": {{"display_name": "4 CPUs, 8 GiB", "cpu_guarantee": 4, "cpu_limit": 4,
                   "mem_guarantee": "8G", "mem_limit": "8G"}},
    }},
    "idle_timeout": {{"min": {idle_min}, "max": 28800}},
}}
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    place = tmp_path_factory.mktemp("environments")
    root = place / "envs" / "ocean-lab"
    root.mkdir(parents=True)
    environment = make_environment(root / "model-2026")
    probe, environ = probe_service(tmp_path_factory.mktemp("probe"), "probe", "culler")
    extra = bounds_config(root) + STORE_HANDLER + probe
    with running_hub(tmp_path_factory, "delegated-local", extra, ACCOUNTS) as hub:
        hub.people = {}
        for name in ACCOUNTS:
            person = hub.session()
            assert person.login("demo", name).status_code == 302
            hub.people[name] = person
        hub.root, hub.environment, hub.place = root, environment, place
        hub.extra, hub.probe, hub.environ = extra, probe, environ
        yield hub


def model(environment, **more) -> dict:
    return {
        "slug": "model",
        "display_name": "Ocean model 2026",
        "software_environment": str(environment),
        "sizes": ["small", "large"],
        "default_size": "small",
        **more,
    }


def stop_server(hub, name):
    r = hub.api.request("DELETE", f"/users/{name}/server")
    assert r.status_code in (202, 204), r.text
    hub.api.wait_for_server(name, ready=False, timeout=30)


def test_a_stored_environment_runs_at_the_next_spawn_with_its_python(hub):
    alice = hub.people["alice"]
    store_document(
        hub,
        "ocean-lab",
        {"environments": []},
        actor="carol",
        action="environment.remove",
    )
    assert SLUG not in profiles_on_page(alice.spawn_form().text)

    store_document(
        hub,
        "ocean-lab",
        {"environments": [model(hub.environment, default=True)]},
        actor="carol",
        action="environment.add",
    )

    # the next form offers it, its sizes as the choices of an option, and
    # pre-selects it: the community's admins made it the default
    page = alice.spawn_form().text
    assert profiles_on_page(page) == ["standard", "ocean-model", SLUG]
    assert re.search(rf'value="{SLUG}"\s+checked', page)
    assert f'name="profile-option-{SLUG}--size"' in page
    assert "4 CPUs, 8 GiB" in page and "Ocean model 2026" in page

    r = alice.submit_spawn_form(
        {"profile": SLUG, f"profile-option-{SLUG}--size": "large"}
    )
    assert r.status_code == 302, r.text[:500]
    hub.api.wait_for_server("alice", timeout=60)

    argv, env = server_process(hub, "alice")
    assert argv[:3] == [f"{hub.environment}/bin/python", "-m", "jupyterhub.singleuser"]
    assert env["VIRTUAL_ENV"] == str(hub.environment)
    assert env["PATH"].startswith(f"{hub.environment}/bin:")
    # the server answers her (its OAuth handshake with the hub first)
    assert alice.get("/user/alice/").status_code == 200
    assert alice.get("/user/alice/api/status").status_code == 200
    # the size's resources reached the server and the ledger, charged to
    # the community
    assert env["CPU_GUARANTEE"] == "4.0" and env["MEM_GUARANTEE"] == str(8 * GIB)

    def sessions():
        return [r for r in hub.ledger_rows() if r["profile"] == SLUG]

    assert wait_until(sessions)
    (session,) = sessions()
    assert session["username"] == "alice"
    assert session["community"] == "ocean-lab"
    assert session["profile"] == SLUG
    assert json.loads(session["choices"]) == {"size": "large"}
    assert (session["cpu_request"], session["cpu_limit"]) == (4.0, 4.0)
    assert (session["mem_request"], session["mem_limit"]) == (8 * GIB, 8 * GIB)
    stop_server(hub, "alice")


def test_another_community_neither_sees_nor_starts_it(hub):
    store_document(
        hub,
        "ocean-lab",
        {"environments": [model(hub.environment)]},
        actor="carol",
        action="environment.edit",
    )
    assert SLUG in profiles_on_page(hub.people["alice"].spawn_form().text)
    bob = hub.people["bob"]
    page = bob.spawn_form().text
    assert SLUG not in page and "Ocean model 2026" not in page
    for options in ({"profile": SLUG}, {"profile": SLUG, "size": "small"}):
        # the slug guessed, through the REST API with bob's own cookie
        r = bob.api("POST", "/users/bob/server", json={"user_options": options})
        assert r.status_code == 403, r.text
        assert (
            f"The profile '{SLUG}' is not available to your communities."
            in (r.json()["message"])
        )
    r = bob.submit_spawn_form({"profile": SLUG})
    assert r.status_code == 403
    assert not hub.api.user("bob")["servers"]


def test_a_link_planted_in_the_root_is_refused_at_the_spawn(hub):
    outside = make_environment(hub.place / "outside" / "py311")
    planted = hub.root / "planted"
    planted.symlink_to(outside)
    # stored when it was a directory; a link was put in its place since
    store_document(
        hub,
        "ocean-lab",
        {
            "environments": [
                model(hub.environment),
                {"slug": "planted", "software_environment": str(planted)},
            ]
        },
        actor="carol",
        action="environment.add",
    )
    r = hub.api.request(
        "POST",
        "/users/alice/server",
        json={"user_options": {"profile": "ocean-lab--planted"}},
    )
    assert r.status_code == 409, r.text
    message = r.json()["message"]
    assert message.startswith(
        "The environment 'planted' of Ocean Modelling Lab cannot be used now: "
        f"{planted} is a symbolic link;"
    )
    assert message.endswith("Ask the admins of Ocean Modelling Lab.")
    assert not hub.api.user("alice")["servers"]
    assert "ocean-lab's environment planted needs attention" in hub.log()


async def test_the_admins_idle_timeout_reaches_the_culler_at_its_next_pass(hub):
    # the culler as the hub starts it: the communities and the state's URL
    # handed over; one culler for both passes (no restart)
    culler = Culler(
        url=f"{hub.url}/hub/api",
        api_token=hub.token,
        idle_timeout=3600,
        log=logging.getLogger("hubext.culler.test"),
    )
    culler.policies = culler.load_community_policies(hub.environ())
    culler.load_delegation(hub.environ())
    culler.default = culler.default_policy()
    assert culler.policies["ocean-lab"] == {"idle_timeout": 1800}  # configured
    forty_minutes_on = datetime.now(UTC) + timedelta(minutes=40)
    culler.now = lambda: forty_minutes_on

    r = hub.api.request(
        "POST", "/users/alice/server", json={"user_options": {"profile": "standard"}}
    )
    assert r.status_code in (201, 202), r.text
    hub.api.wait_for_server("alice")

    store_document(
        hub,
        "ocean-lab",
        {"environments": [model(hub.environment)], "idle_timeout": 7200},
        actor="carol",
        action="idle_timeout.set",
    )
    result = await one_pass(culler)
    assert result.errors == [] and result.culled == []
    assert hub.api.user("alice")["servers"]

    store_document(
        hub,
        "ocean-lab",
        {"environments": [model(hub.environment)], "idle_timeout": 900},
        actor="carol",
        action="idle_timeout.set",
    )
    result = await one_pass(culler)
    assert [(c.user, c.reason) for c in result.culled] == [("alice", "idle")]
    hub.api.wait_for_server("alice", ready=False, timeout=30)


def test_a_restart_keeps_it_and_tightened_bounds_are_logged_not_applied(hub):
    version = store_document(
        hub,
        "ocean-lab",
        {"environments": [model(hub.environment)], "idle_timeout": 900},
        actor="carol",
        action="idle_timeout.set",
    )
    try:
        restart_with_tightened_bounds(hub, version)
    finally:
        hub.restart(extra_config=hub.extra)


def start_log(hub) -> str:
    return hub.log().split(f"===== hub start {hub.starts} =====")[1]


def restart_with_tightened_bounds(hub, version: int):
    hub.restart()
    alice = hub.people["alice"]
    assert profiles_on_page(alice.spawn_form().text) == [
        "standard",
        "ocean-model",
        SLUG,
    ]
    assert (
        f"hubext: ocean-lab's stored settings (version {version}) apply: "
        "1 environment, idle timeout 900 s"
    ) in start_log(hub)

    # the operator tightens the bounds: another root, a longer shortest timeout
    elsewhere = hub.place / "envs" / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    tightened = bounds_config(elsewhere, idle_min=1200) + STORE_HANDLER + hub.probe
    hub.restart(extra_config=tightened)
    lines = start_log(hub).splitlines()
    not_applied = [line for line in lines if line.endswith(": not applied")]
    hub_lines = [line for line in not_applied if " JupyterHub " in line]
    assert len(hub_lines) == 2, not_applied
    # the culler the hub runs says so too, at its first pass
    culler_line = (
        "Culler] hubext-culler: ocean-lab's settings.idle_timeout: 900 s is "
        "outside 1200 s to 28800 s: not applied"
    )
    assert wait_until(lambda: culler_line in start_log(hub))
    assert hub_lines[0].endswith(
        "hubext: ocean-lab's settings.environments[0].software_environment: "
        f"{hub.environment} is not in the directories allowed ({elsewhere}): "
        "not applied"
    )
    assert hub_lines[1].endswith(
        "hubext: ocean-lab's settings.idle_timeout: 900 s is outside 1200 s to "
        "28800 s: not applied"
    )
    # the configuration's profiles still offered, the environment not
    assert profiles_on_page(alice.spawn_form().text) == ["standard", "ocean-model"]
    r = hub.api.request(
        "POST", "/users/alice/server", json={"user_options": {"profile": SLUG}}
    )
    assert r.status_code == 400, r.text
    assert f"There is no profile '{SLUG}'" in r.json()["message"]
    # logged once: not again at the spawn form
    assert [
        line
        for line in start_log(hub).splitlines()
        if " JupyterHub " in line and line.endswith(": not applied")
    ] == hub_lines

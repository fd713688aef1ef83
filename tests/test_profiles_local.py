"""Per-community profiles on hubext-local, end to end in a real hub.

The demo's profile list (jupyterhub_config.d/20-spawner.py) plus a community
whose members may use no profile. Submissions go through the spawn form and
the REST API (JupyterHub 6 body and legacy body); bad ones are answered 4xx
before anything starts.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path

import pytest
import requests

from .harness import running_hub

pytestmark = pytest.mark.e2e

ACCOUNTS = {
    "alice": {"preferred_username": "alice", "groups": ["ocean-lab"]},
    "olga": {"preferred_username": "olga", "groups": ["ocean-lab", "ocean-lab-admins"]},
    "bob": {"preferred_username": "bob", "groups": ["astro-101"]},
    "cy": {"preferred_username": "cy", "groups": ["astro-101", "ocean-lab"]},
    "zed": {"preferred_username": "zed", "groups": ["empty-club"]},
    "root": {"preferred_username": "root", "groups": ["astro-101"]},
}

CONFIG = """
c.CommunityAuthenticator.admin_users = {"root"}
c.Communities.communities["empty-club"] = {
    "display_name": "A community without server options",
    "members": [{"provider": "demo", "group": "empty-club"}],
}
# everyone's profile becomes ocean-lab and astro-101 only
c.LocalCommunitySpawner.profile_list[0]["allowed_groups"] = ["ocean-lab", "astro-101"]
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    with running_hub(tmp_path_factory, "profiles", CONFIG, ACCOUNTS) as hub:
        hub.people = {}
        for name in ACCOUNTS:
            person = hub.session()
            assert person.login("demo", name).status_code == 302
            hub.people[name] = person
        yield hub


def profiles_on_page(page: str) -> list[str]:
    return re.findall(r'name="profile"\s+id="profile-item-([^"]+)"', page)


def checked_profile(page: str) -> str | None:
    match = re.search(r'value="([^"]+)"\s+checked', page)
    return match[1] if match else None


@pytest.mark.parametrize(
    ("person", "profiles", "default"),
    [
        pytest.param(
            "alice", ["standard", "ocean-model"], "ocean-model", id="ocean-member"
        ),
        pytest.param(
            "bob", ["standard", "astro-workshop"], "astro-workshop", id="astro-member"
        ),
        # member of both: the first community in c.Communities.communities order
        pytest.param(
            "cy",
            ["standard", "ocean-model", "astro-workshop"],
            "ocean-model",
            id="both",
        ),
        pytest.param(
            "root",
            ["standard", "ocean-model", "astro-workshop"],
            "astro-workshop",
            id="hub-admin",
        ),
    ],
)
def test_each_person_sees_their_communities_profiles(hub, person, profiles, default):
    page = hub.people[person].spawn_form()
    assert page.status_code == 200
    assert profiles_on_page(page.text) == profiles
    assert checked_profile(page.text) == default
    assert "allowed_groups" not in page.text


def test_hidden_choices_are_not_offered(hub):
    alice = hub.people["alice"].spawn_form().text
    bob = hub.people["bob"].spawn_form().text
    assert '<option value="8"' in alice
    assert '<option value="8"' not in bob


def test_no_profile_at_all_is_a_403_page_that_says_why(hub):
    page = hub.people["zed"].spawn_form()
    assert page.status_code == 403
    assert "Your communities (empty-club) have no server options" in page.text
    r = hub.api.request("POST", "/users/zed/server", json={"user_options": {}})
    assert r.status_code == 403
    assert "have no server options" in r.json()["message"]
    assert not hub.api.user("zed")["servers"]


def server_env(hub, name) -> dict:
    state = hub.api.user(name)["servers"][""]["state"]
    raw = Path(f"/proc/{state['pid']}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


REST_REFUSALS = [
    pytest.param(
        {"user_options": {"profile": "astro-workshop"}},
        403,
        "'astro-workshop' is not available",
        id="other-community-profile",
    ),
    pytest.param(
        {"profile": "nope"},
        400,
        "There is no profile 'nope'",
        id="legacy-body-unknown-profile",
    ),
    pytest.param(
        {"user_options": {"profile": "ocean-model", "dataset": "zzz"}},
        400,
        "no choice 'zzz'",
        id="unknown-choice",
    ),
    pytest.param(
        {"user_options": {"dataset--unlisted-choice": "mine"}},
        400,
        "without 'profile'",
        id="option-without-profile",
    ),
    pytest.param(
        {
            "user_options": {
                "profile": "ocean-model",
                "dataset--unlisted-choice": "{username}",
            }
        },
        400,
        "must not contain '{'",
        id="template-injection",
    ),
    pytest.param(
        {
            "user_options": {
                "profile": "ocean-model",
                "dataset--unlisted-choice": "ok-then; rm -rf",
            }
        },
        400,
        "lowercase letters, digits",
        id="regex-full-match",
    ),
    pytest.param(
        {"user_options": {"profile": "ocean-model", "mem_limit": "1T"}},
        400,
        "Unexpected option 'mem_limit'",
        id="unexpected-key",
    ),
    pytest.param(
        {"user_options": {"profile": ["ocean-model"]}},
        400,
        "must be a string",
        id="wrong-type",
    ),
]


@pytest.mark.parametrize(("body", "status", "message"), REST_REFUSALS)
def test_rest_submissions_are_validated_before_start(hub, body, status, message):
    r = hub.api.request("POST", "/users/alice/server", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["message"]
    assert not hub.api.user("alice")["servers"]


def test_valid_rest_spawn_after_refusals_applies_the_choices(hub):
    token = hub.token_for("alice")  # the person herself, through the API
    r = requests.post(
        f"{hub.url}/hub/api/users/alice/server",
        headers={"Authorization": f"token {token}"},
        json={
            "user_options": {
                "profile": "ocean-model",
                "dataset--unlisted-choice": "my-floats",
            }
        },
        timeout=60,
    )
    assert r.status_code in (201, 202), r.text
    hub.api.wait_for_server("alice")
    env = server_env(hub, "alice")
    assert env["HUBEXT_PROFILE"] == "ocean-model"
    assert env["DATASET"] == "my-floats"
    stored = hub.api.user("alice")["servers"][""]["user_options"]
    # explicit options: the charged community too (the only one offering it)
    assert stored == {
        "profile": "ocean-model",
        "dataset--unlisted-choice": "my-floats",
        "community": "ocean-lab",
    }
    assert hub.api.request("DELETE", "/users/alice/server").status_code in (202, 204)
    hub.api.wait_for_server("alice", ready=False)


def test_another_communitys_choice_is_refused(hub):
    r = hub.api.request(
        "POST",
        "/users/bob/server",
        json={"user_options": {"profile": "standard", "threads": "8"}},
    )
    assert r.status_code == 403
    assert "The choice '8' for 'Threads' is not available" in r.json()["message"]
    assert not hub.api.user("bob")["servers"]


def test_form_refusal_is_shown_on_the_form(hub):
    r = hub.people["bob"].submit_spawn_form(
        {"profile": "standard", "profile-option-standard--threads": "8"}
    )
    assert r.status_code == 403
    message = "The choice &#39;8&#39; for &#39;Threads&#39; is not available"
    assert message in r.text
    assert 'id="spawn_form"' in r.text  # the form again, to correct the choice
    assert not hub.api.user("bob")["servers"]


def test_refused_form_keeps_what_was_typed_and_logs_one_line(hub):
    """After a refusal the form shows the submitted choices and free text
    again; the hub logs one warning line, not a traceback."""
    logged_before = len(hub.log())
    r = hub.people["alice"].submit_spawn_form(
        {
            "profile": "ocean-model",
            "profile-option-ocean-model--dataset--unlisted-choice": "Bad Value!",
        }
    )
    assert r.status_code == 400
    assert "lowercase letters, digits" in r.text
    submitted = {"profile": "ocean-model", "dataset--unlisted-choice": "Bad Value!"}
    assert f"const userOptions = {json.dumps(submitted)};" in r.text
    assert not hub.api.user("alice")["servers"]
    log = hub.log()[logged_before:]
    lines = [line for line in log.splitlines() if "Dataset" in line]
    assert len(lines) == 1, lines
    assert lines[0].startswith("[W ")
    assert "refusing server options for alice" in lines[0]
    assert "Failed to spawn single-user server with form" not in log
    assert "Traceback" not in log


def test_free_text_pattern_is_a_browser_regex(hub):
    page = hub.people["alice"].spawn_form().text
    # [a-z0-9-]{1,40} with '-' escaped, as the browser's v flag requires
    assert 'pattern="(?:[a-z0-9\\x2d]){1,40}"' in page


def test_concurrent_spawns_keep_their_own_lists(hub):
    results = {}

    def spawn(name):
        r = hub.api.request("POST", f"/users/{name}/server", json={"user_options": {}})
        results[name] = r.status_code

    threads = [
        threading.Thread(target=spawn, args=(n,)) for n in ("alice", "bob", "cy")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(code in (201, 202) for code in results.values()), results
    try:
        for name, profile in [
            ("alice", "ocean-model"),
            ("bob", "astro-workshop"),
            ("cy", "ocean-model"),
        ]:
            hub.api.wait_for_server(name)
            assert server_env(hub, name)["HUBEXT_PROFILE"] == profile
            assert (
                hub.api.user(name)["servers"][""]["user_options"]["profile"] == profile
            )
    finally:
        for name in ("alice", "bob", "cy"):
            hub.api.request("DELETE", f"/users/{name}/server")
        for name in ("alice", "bob", "cy"):
            hub.api.wait_for_server(name, ready=False)


def test_concurrent_forms_never_mix(hub):
    pages = {}

    def render(name, i):
        pages[(name, i)] = profiles_on_page(hub.people[name].spawn_form().text)

    threads = [
        threading.Thread(target=render, args=(name, i))
        for i in range(5)
        for name in ("alice", "bob")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (name, _), profiles in pages.items():
        expected = "ocean-model" if name == "alice" else "astro-workshop"
        assert profiles == ["standard", expected]

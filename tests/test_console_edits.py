"""The console's pure parts: the edits (hubext/console/edits.py), what it shows
(hubext/console/view.py), its scopes and their registration."""

from __future__ import annotations

import pytest
from traitlets.config import Config

from hubext._validation import KeyPath
from hubext.communities import Community, parse_communities
from hubext.console import register_console
from hubext.console.access import ADMIN_SCOPE, CUSTOM_SCOPES, READ_SCOPE
from hubext.console.edits import (
    Edit,
    EditError,
    add_environment,
    edit_environment,
    field_of,
    problems,
    remove_environment,
    reorder_environments,
    replace,
    set_default,
    set_idle_timeout,
)
from hubext.console.hub import TEMPLATES, spawner_kind
from hubext.console.view import Member, member_json, needs_attention, why, why_words
from hubext.limits import Demand, Limits
from hubext.roles import SERVICE_CUSTOM_SCOPES, community_admin_role, hub_admin_roles
from hubext.self_service import parse_self_service
from hubext.usage.service import HUB_TEMPLATES

ROOT = "/srv/envs/ocean-lab"
BOUNDS = parse_self_service(
    {
        "environments": {"software_roots": [ROOT], "max_profiles": 3},
        "sizes": {"small": {"cpu_limit": 2}, "large": {"cpu_limit": 8}},
        "idle_timeout": {"min": 900, "max": 28800},
    },
    KeyPath("self_service"),
)


def env(slug, **more):
    return {"slug": slug, "software_environment": f"{ROOT}/{slug}", **more}


STORED = {"environments": [env("a", default=True), env("b")], "idle_timeout": 3600}


# -- edits ----------------------------------------------------------------------------


def test_add_appends_and_one_default_stays():
    edit = add_environment(STORED, env("c", default=True))
    assert [e["slug"] for e in edit.document["environments"]] == ["a", "b", "c"]
    assert [e.get("default") for e in edit.document["environments"]] == [
        None,
        None,
        True,
    ]
    assert edit.action == "environment.add"
    assert edit.touched == ("settings.environments[2]", "settings.environments")
    assert STORED["environments"][0]["default"] is True  # not changed in place


def test_add_to_nothing_stored():
    edit = add_environment(None, env("a"))
    assert edit.document == {"environments": [env("a")]}
    assert problems(edit, BOUNDS, "local") == []


@pytest.mark.parametrize(
    ("make", "field", "status"),
    [
        (
            lambda: add_environment(STORED, env("a")),
            "settings.environments[2].slug",
            400,
        ),
        (lambda: add_environment(STORED, "a"), "environment", 400),
        (
            lambda: edit_environment(STORED, "b", env("a")),
            "settings.environments[1].slug",
            400,
        ),
        (lambda: edit_environment(STORED, "zz", env("zz")), "environment", 404),
        (lambda: remove_environment(STORED, "zz"), "environment", 404),
        (lambda: reorder_environments(STORED, ["a"]), "order", 400),
        (lambda: reorder_environments(STORED, "a,b"), "order", 400),
        (lambda: set_default(STORED, "zz"), "default", 400),
        (lambda: set_default(STORED, 3), "default", 400),
        (lambda: replace(STORED, ["a"]), "settings", 400),
    ],
    ids=[
        "add-a-taken-slug",
        "add-not-an-object",
        "rename-to-a-taken-slug",
        "edit-none",
        "remove-none",
        "reorder-missing-one",
        "reorder-not-a-list",
        "default-none",
        "default-not-a-slug",
        "replace-not-an-object",
    ],
)
def test_structural_mistakes(make, field, status):
    with pytest.raises(EditError) as raised:
        make()
    assert (raised.value.field, raised.value.status) == (field, status)


def test_reorder_says_what_is_wrong():
    with pytest.raises(EditError) as raised:
        reorder_environments(STORED, ["b", "b", "c"])
    assert raised.value.message == (
        "must name each environment once: missing 'a'; unknown 'c'; named twice 'b'"
    )


def test_edit_remove_reorder_default_idle():
    edit = edit_environment(STORED, "b", env("b2", display_name="B"))
    assert edit.document["environments"][1] == env("b2", display_name="B")
    assert edit.touched == ("settings.environments[1]",)
    assert remove_environment(STORED, "a").document["environments"] == [env("b")]
    order = reorder_environments(STORED, ["b", "a"]).document["environments"]
    assert [e["slug"] for e in order] == ["b", "a"]
    default = set_default(STORED, "b").document["environments"]
    assert [e.get("default") for e in default] == [None, True]
    none = set_default(STORED, None).document["environments"]
    assert [e.get("default") for e in none] == [None, None]
    assert set_idle_timeout(STORED, None).document == {
        "environments": STORED["environments"]
    }
    assert set_idle_timeout(None, 900).document == {"idle_timeout": 900}


# -- what an edit may leave as it was --------------------------------------------------

#: Stored before the operator tightened the bounds: "old" is outside them now.
TIGHTENED = {
    "environments": [env("a"), {"slug": "old", "software_environment": "/opt/old"}],
    "idle_timeout": 3600,
}


@pytest.mark.parametrize(
    ("edit", "refused"),
    [
        (lambda: remove_environment(TIGHTENED, "a"), []),
        (lambda: reorder_environments(TIGHTENED, ["old", "a"]), []),
        (lambda: set_idle_timeout(TIGHTENED, 1800), []),
        (lambda: edit_environment(TIGHTENED, "a", env("a", sizes=["small"])), []),
        (lambda: edit_environment(TIGHTENED, "old", env("new")), []),
        (lambda: remove_environment(TIGHTENED, "old"), []),
        (
            lambda: set_default(TIGHTENED, "old"),
            ["settings.environments[1].software_environment"],
        ),
        (
            lambda: edit_environment(TIGHTENED, "a", env("a", sizes=["xl"])),
            ["settings.environments[0].sizes[0]"],
        ),
        (
            lambda: replace(TIGHTENED, TIGHTENED),
            ["settings.environments[1].software_environment"],
        ),
        (lambda: set_idle_timeout(TIGHTENED, 60), ["settings.idle_timeout"]),
    ],
    ids=[
        "remove-another",
        "reorder",
        "idle-timeout",
        "edit-another",
        "fix-it",
        "remove-it",
        "make-it-the-default",
        "edit-badly",
        "replace-with-it",
        "idle-timeout-outside",
    ],
)
def test_what_an_edit_leaves_as_it_was_is_not_checked_again(edit, refused):
    assert [e.path for e in problems(edit(), BOUNDS, "local")] == refused


def test_adding_past_max_profiles_is_refused_even_when_already_past_it():
    stored = {"environments": [env(s) for s in "abcd"]}  # max_profiles was 4
    assert [
        e.path for e in problems(remove_environment(stored, "d"), BOUNDS, "local")
    ] == []
    errors = problems(add_environment(stored, env("e")), BOUNDS, "local")
    assert [(e.path, e.reason) for e in errors] == [
        ("settings.environments", "at most 3 environments, got 5")
    ]


def test_concerns_is_by_key_path_not_by_text():
    edit = Edit("environment.edit", {}, ("settings.environments[1]",))
    assert edit.concerns("settings.environments[1].slug")
    assert edit.concerns("settings.environments[1]")
    assert not edit.concerns("settings.environments[10].slug")
    assert not edit.concerns("settings.environments")


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("settings.environments[0].image", "image"),
        ("settings.environments[2].sizes[1]", "sizes"),
        ("settings.idle_timeout", "idle_timeout"),
        ("settings.environments", "environments"),
        ("version", "version"),
    ],
)
def test_field_of(path, field):
    assert field_of(path) == field


# -- what the console shows --------------------------------------------------------------


def community() -> Community:
    return parse_communities(
        {
            "ocean-lab": {
                "members": [
                    {"provider": "demo", "group": "ocean-lab"},
                    {"provider": "uni", "email_domain": "ocean.example.org"},
                ],
                "admins": [{"provider": "demo", "group": "ocean-lab-admins"}],
            }
        }
    )["ocean-lab"]


def test_why_names_each_matching_rule_never_the_identity():
    atoms = {
        ("provider", "demo"),
        ("group", "ocean-lab"),
        ("group", "ocean-lab-admins"),
        ("username", "carol"),
        ("email_domain", "secret.example"),
    }
    reasons = why(community(), atoms)
    assert reasons == [
        {
            "source": "rule",
            "list": "members",
            "index": 0,
            "provider": "demo",
            "rule": {"group": "ocean-lab", "provider": "demo"},
        },
        {
            "source": "rule",
            "list": "admins",
            "index": 0,
            "provider": "demo",
            "rule": {"group": "ocean-lab-admins", "provider": "demo"},
        },
    ]
    assert "secret.example" not in str(reasons) and "carol" not in str(reasons)


def test_why_in_words():
    shown = member_json(community(), Member("ann", False, frozenset()))
    assert why_words(shown) == [
        "no rule matches the identity recorded at their last sign-in: they "
        "leave the community at their next refresh"
    ]
    unknown = member_json(community(), Member("ben", False, None))
    assert unknown["identity_recorded"] is False
    assert "no identity recorded yet" in why_words(unknown)[0]
    by_domain = member_json(
        community(),
        Member(
            "cy",
            False,
            frozenset({("provider", "uni"), ("email_domain", "ocean.example.org")}),
        ),
    )
    assert why_words(by_domain) == ["members[1]: uni: email_domain ocean.example.org"]


def test_needs_attention_and_what_is_applied():
    attention, applied = needs_attention(TIGHTENED, BOUNDS, "local")
    assert [a["field"] for a in attention] == [
        "settings.environments[1].software_environment"
    ]
    assert applied == {"environments": ["a"], "idle_timeout": 3600}
    # a spawner that takes no stored environment: none is offered
    attention, applied = needs_attention(TIGHTENED, BOUNDS, None)
    assert attention[0]["field"] == "settings.environments"
    assert applied == {"environments": [], "idle_timeout": 3600}
    assert needs_attention(None, BOUNDS, "local") == (
        [],
        {"environments": [], "idle_timeout": None},
    )


def test_use_lines():
    from hubext.console.view import use_lines, used_json

    limits = Limits(max_servers=4, max_cpu=16, max_memory=64 * 2**30)
    running = [Demand("ocean-lab", "ann", cpu=2, memory=4 * 2**30)] * 2
    assert use_lines(limits, used_json(running, None)) == [
        "2 servers running of at most 4, for 1 members.",
        "4 CPUs of 16 CPUs requested by running servers (cpu).",
        "8 GiB of 64 GiB requested by running servers (memory).",
    ]
    assert use_lines(Limits(), {}) == ["No limits."]


# -- scopes, roles, registration -------------------------------------------------------


def test_the_admin_scope_implies_read_and_roles_grant_it():
    assert CUSTOM_SCOPES[ADMIN_SCOPE]["subscopes"] == [READ_SCOPE]
    assert ADMIN_SCOPE in SERVICE_CUSTOM_SCOPES
    ocean = Community("ocean-lab", "Ocean Lab")
    assert f"{ADMIN_SCOPE}!group=ocean-lab" not in community_admin_role(ocean)["scopes"]
    role = community_admin_role(ocean, custom_scopes=CUSTOM_SCOPES)
    assert f"{ADMIN_SCOPE}!group=ocean-lab" in role["scopes"]
    assert ADMIN_SCOPE in hub_admin_roles(CUSTOM_SCOPES)[0]["scopes"]


def test_register_console_once_or_twice():
    c = Config()
    register_console(c)
    register_console(c)
    assert set(c.JupyterHub.custom_scopes.to_dict()["update"]) == set(CUSTOM_SCOPES)
    paths = c.JupyterHub.template_paths.to_dict()
    assert paths["prepend"] == [str(HUB_TEMPLATES)]
    assert paths["extend"] == [str(TEMPLATES)]
    mine = Config()
    mine.JupyterHub.template_paths = ["/srv/my-templates"]
    register_console(mine)
    assert mine.JupyterHub.template_paths == [
        "/srv/my-templates",
        str(HUB_TEMPLATES),
        str(TEMPLATES),
    ]


def test_the_spawners_kind_is_read_from_its_class():
    class Kube:
        delegated_kind = "kube"

    class Other:
        delegated_kind = "docker"

    assert spawner_kind(Kube) == "kube"
    assert spawner_kind(Other) is None
    assert spawner_kind(object) is None


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 seconds"),
        (60, "1 minute"),
        (900, "15 minutes"),
        (5400, "1 hour 30 minutes"),
        (28801, "8 hours 1 second"),
    ],
)
def test_duration_words(seconds, words):
    from hubext.console.view import duration_words

    assert duration_words(seconds) == words

"""Pure parts of the authenticator: usernames, roles, sign-in page, outage rules."""

from __future__ import annotations

import io

import pytest
from jinja2 import Template
from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse
from tornado.httputil import HTTPHeaders
from traitlets.config import Config

from hubext.authenticator import (
    CommunityAuthenticator,
    leave_out_unchanged_roles,
    username_problem,
)
from hubext.communities import Community
from hubext.providers.base import classify_failure
from hubext.roles import community_admin_role


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("alice", True),
        ("alice@github", True),
        ("Émilie", True),
        ("a b", True),
        ("a/b", False),
        ("a\\b", False),
        ("..", False),
        (".", False),
        ("", False),
        (" alice", False),
        ("alice ", False),
        ("bell\x07", False),
        ("nul\x00", False),
        ("line\nbreak", False),
        ("x" * 256, False),
        ("x" * 255, True),
    ],
)
def test_username_problem(name, ok):
    assert (username_problem(name) is None) is ok


def test_community_admin_role_is_confined_to_its_group():
    role = community_admin_role(Community("ocean-lab", "Ocean Lab"))
    assert role == {
        "name": "community-admin-ocean-lab",
        "description": "Administer the members of Ocean Lab",
        "scopes": [
            "list:users!group=ocean-lab",
            "read:users!group=ocean-lab",
            "servers!group=ocean-lab",
            "read:groups!group=ocean-lab",
            "list:groups!group=ocean-lab",
            "admin-ui",
        ],
    }
    with_access = community_admin_role(Community("a", "A"), access_servers=True)
    assert "access:servers!group=a" in with_access["scopes"]


def test_sign_in_page_escapes_configured_text():
    config = Config()
    config.CommunityAuthenticator.providers = {
        "uni": {
            "kind": "oidc",
            "display_name": "<script>x</script> {{ 7*7 }} {% raw %}",
            "config": {"client_id": "a", "client_secret": "b"},
        },
        "gh": {"kind": "github", "display_name": "GitHub"},
    }
    page = Template(
        CommunityAuthenticator(config=config).get_custom_html("/hub/")
    ).render(next="%2Fhub%2Fhome")
    assert "<script>" not in page and "49" not in page
    assert "&lt;script&gt;" in page and "&#123;&#123; 7*7 &#125;&#125;" in page
    assert 'href="/hub/uni/oauth_login?next=%2Fhub%2Fhome"' in page
    assert page.count("hubext-provider") == 2


def _error(code, headers=None, body=b""):
    request = HTTPRequest("http://127.0.0.1/x")
    response = HTTPResponse(
        request, code, headers=HTTPHeaders(headers or {}), buffer=io.BytesIO(body)
    )
    return HTTPClientError(code, response=response)


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        pytest.param(_error(500), True, id="500"),
        pytest.param(_error(503), True, id="503"),
        pytest.param(HTTPClientError(599), True, id="timeout"),
        pytest.param(_error(429, {"Retry-After": "30"}), True, id="429"),
        pytest.param(
            _error(403, {"X-RateLimit-Remaining": "0"}), True, id="github-rate-limit"
        ),
        pytest.param(
            _error(
                403, body=b'{"message": "You have exceeded a secondary rate limit"}'
            ),
            True,
            id="github-secondary-rate-limit",
        ),
        pytest.param(
            _error(403, {"X-RateLimit-Remaining": "4999"}), False, id="403-forbidden"
        ),
        pytest.param(_error(401), False, id="401-revoked"),
        pytest.param(_error(404), False, id="404"),
        pytest.param(ConnectionRefusedError(), True, id="connection-refused"),
        pytest.param(ValueError("bug"), False, id="a-bug-is-not-an-outage"),
    ],
)
def test_classify_failure(error, transient):
    assert (classify_failure(error) is not None) is transient


@pytest.mark.parametrize(
    ("role", "slug"),
    [
        ("community-admin-ocean-lab", "ocean-lab"),
        ("community-admin-", None),
        ("community-admins", None),
        ("admin", None),
        ("user", None),
    ],
)
def test_community_admin_role_names_round_trip(role, slug):
    from hubext.roles import community_admin_role_name, community_of_admin_role

    assert community_of_admin_role(role) == slug
    if slug is not None:
        assert community_admin_role_name(slug) == role


class _Role:
    def __init__(self, name):
        self.name = name


class _User:
    """What leave_out_unchanged_roles reads of an account: its roles' names."""

    def __init__(self, *roles):
        self.roles = [_Role(r) for r in roles]


@pytest.mark.parametrize(
    ("held", "admin", "model_roles", "synced"),
    [
        # JupyterHub's auth_to_user gives "user" (and "admin" to admins)
        # before it syncs: a new member holds exactly ["user"] then
        pytest.param(None, False, ["user"], False, id="new-member"),
        pytest.param(None, True, ["user", "admin"], False, id="new-hub-admin"),
        pytest.param(
            None, False, ["user", "community-admin-a"], True, id="new-community-admin"
        ),
        pytest.param(
            None, True, ["user", "admin", "hubext-hub-admin"], True, id="new-admin-more"
        ),
        pytest.param(("user",), False, ["user"], False, id="member-again"),
        pytest.param(
            ("user", "community-admin-a"),
            False,
            ["user", "community-admin-a"],
            False,
            id="community-admin-again",
        ),
        pytest.param(
            ("user", "community-admin-a"), False, ["user"], True, id="admin-of-no-more"
        ),
        pytest.param(
            ("user", "community-admin-a"),
            False,
            ["user", "community-admin-b"],
            True,
            id="admin-of-another",
        ),
        # "admin" follows the model's admin before the sync
        pytest.param(("user", "admin"), False, ["user"], False, id="hub-admin-no-more"),
        pytest.param(("user",), True, ["user", "admin"], False, id="hub-admin-now"),
        pytest.param(("user", "other"), False, ["user"], True, id="a-role-to-strip"),
    ],
)
def test_roles_are_synced_only_when_they_change(held, admin, model_roles, synced):
    roles = [{"name": name, "scopes": []} for name in model_roles]
    model = {"name": "ann", "admin": admin, "roles": roles}
    user = _User(*held) if held is not None else None
    leave_out_unchanged_roles(model, user)
    assert ("roles" in model) is synced
    if synced:
        assert model["roles"] is roles

"""No piece of the culler's token leaves the culler, on any error path.

A hub (or a proxy in front of it) that answers errors with a page echoing the
request's headers puts the token in the body the culler reports. The fake hub
API below echoes the ``Authorization`` header at many offsets, so that every
cut the culler makes (of a body, of a message) lands inside the token at one
of them; no fragment of 8 characters or more of the token may show up in a
log line or an error message. Redirects are never followed with the token.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from hubext.culler import CULLER_SCOPES
from hubext.culler.app import Culler, RedactFilter
from hubext.services.client import HubAPI
from hubext.services.redact import scrub

from .culler_kit import fake_hub_culler, one_pass, service_env
from .fakes.hub_api import FakeHubAPI, HeaderRecorder, echo_headers

TOKEN = "1f1e7227bdd194164430b94654e7c5f453438c105361bb65588cffe64f820798"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
#: Where the echoed ``Authorization`` line starts in the error body: the
#: token then starts 21 characters later, so a cut at 200 (the old message
#: limit) falls inside it for offsets 116-178, and a cut at 500 for 416-478.
OFFSETS = [0, 116, 130, 150, 171, 178, 250, 420, 460]
ERRORS = [400, 403, 404, 429, 500, 502, 503]


def fragments(secret: str, n: int = 8) -> set[str]:
    """Every piece of ``secret`` of ``n`` characters (a longer piece holds one)."""
    return {secret[i : i + n] for i in range(len(secret) - n + 1)}


def assert_no_fragment(text: str, secret: str = TOKEN) -> None:
    found = sorted(f for f in fragments(secret) if f in text)
    assert not found, f"token fragments in the output: {found}"


def ago(minutes: float) -> str:
    return (NOW - timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def idle_server() -> dict:
    return {
        "name": "",
        "ready": True,
        "pending": None,
        "started": ago(500),
        "last_activity": ago(400),
    }


@pytest.fixture
def hub():
    with FakeHubAPI(TOKEN) as fake:
        fake.scopes = [*CULLER_SCOPES, "delete:users"]
        fake.add_user("idle-1", {"": idle_server()})
        fake.add_user("idle-2", {"": idle_server()})
        fake.add_user("gone", {}, last_activity=ago(200 * 24 * 60))
        yield fake


def make_culler(hub, **traits) -> Culler:
    return fake_hub_culler(hub.url, TOKEN, NOW, **traits)


# -- the scrubbing function ------------------------------------------------------------

SECRET = "abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(f"token {SECRET} end", "token [secret] end", id="whole"),
        pytest.param(f"cut: {SECRET[:8]}", "cut: [secret]", id="prefix-8"),
        pytest.param(f"cut: {SECRET[:7]}", f"cut: {SECRET[:7]}", id="prefix-7-kept"),
        pytest.param(f"{SECRET[-12:]} tail", "[secret] tail", id="suffix"),
        pytest.param(f"x{SECRET[5:20]}y", "x[secret]y", id="middle"),
        pytest.param(f"{SECRET}{SECRET}", "[secret]", id="twice-adjacent-one-mark"),
        pytest.param(
            f"{SECRET[:10]} and {SECRET[20:]}", "[secret] and [secret]", id="two"
        ),
        pytest.param("nothing here", "nothing here", id="clean"),
        pytest.param("", "", id="empty"),
    ],
)
def test_scrub(text, expected):
    assert scrub(text, [SECRET]) == expected


def test_scrub_a_short_secret_only_whole():
    assert scrub("a pw1234 b pw12", ["pw1234"]) == "a [secret] b pw12"


def test_scrub_no_secret():
    assert scrub("text", ["", None]) == "text"


# -- every error path, the body echoing the token at every offset ---------------------


async def run_faults(hub, culler, kind, statuses, passes_per_fault=1, times=1):
    errors = []
    for status in statuses:
        for offset in OFFSETS:
            hub.fail(kind, status, body=echo_headers(offset), times=times)
            for _ in range(passes_per_fault):
                errors += (await one_pass(culler)).errors
    return errors


async def test_listing_errors_carry_no_token_fragment(hub, caplog):
    culler = make_culler(hub)
    with caplog.at_level(logging.DEBUG):
        errors = await run_faults(hub, culler, "list", [*ERRORS, 200])
    assert len(errors) == len(OFFSETS) * (len(ERRORS) + 1)
    assert any("response is not JSON" in e for e in errors)
    assert hub.deleted == []
    assert_no_fragment(caplog.text + "\n".join(errors))


async def test_stop_errors_carry_no_token_fragment(hub, caplog):
    culler = make_culler(hub)
    with caplog.at_level(logging.DEBUG):
        errors = await run_faults(hub, culler, "delete", ERRORS, times=2)
    assert len(errors) == 2 * len(OFFSETS) * len(ERRORS)
    assert hub.deleted == []
    assert_no_fragment(caplog.text + "\n".join(errors))


@pytest.mark.parametrize("kind", ["user", "delete_user"])
async def test_user_deletion_errors_carry_no_token_fragment(hub, caplog, kind):
    # Only "gone" is ever deleted (idle-1 and idle-2 have never been active).
    culler = make_culler(hub, cull_users=True)
    statuses = [s for s in ERRORS if not (kind == "user" and s == 404)]
    with caplog.at_level(logging.DEBUG):
        errors = await run_faults(hub, culler, kind, statuses)
    assert len(errors) == len(OFFSETS) * len(statuses)
    assert hub.deleted_users == []
    assert_no_fragment(caplog.text + "\n".join(errors))


def test_a_traceback_is_scrubbed_of_token_fragments():
    """A message or exception cut by someone else still loses its token piece."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactFilter(TOKEN))
    log = logging.getLogger("hubext.culler.test.traceback")
    log.addHandler(handler)
    log.propagate = False
    try:
        for cut in (8, 9, 30, 63, 64):
            echoed = f"Authorization: token {TOKEN}"[: 21 + cut]
            try:
                raise RuntimeError(f"the proxy said: {echoed}")
            except RuntimeError:
                log.exception("request failed: %s", echoed)
    finally:
        log.removeHandler(handler)
    output = stream.getvalue()
    assert output.count("Traceback") == 5 and "[secret]" in output
    assert_no_fragment(output)


def test_the_service_prints_no_token_fragment(hub):
    """The real service, as JupyterHub runs it, on failing listings and stops."""
    env = {
        **os.environ,
        "JUPYTERHUB_API_TOKEN": TOKEN,
        "JUPYTERHUB_API_URL": hub.url,
        **service_env(),
    }
    output = ""
    for offset in (130, 150, 171):
        hub.fail("list", 500, body=echo_headers(offset))
        hub.fail("delete", 502, body=echo_headers(offset + 8), times=2)
        for _ in range(2):  # a failed listing, then failed stops
            result = subprocess.run(
                [sys.executable, "-m", "hubext.culler", "--once", "--log-level=DEBUG"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            output += result.stdout + result.stderr
    assert output.count("listing users failed") == 3
    assert output.count("HTTP 502") == 6
    assert_no_fragment(output)


# -- redirects -------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["list", "delete", "user", "delete_user"])
@pytest.mark.parametrize("target", ["other-origin", "same-origin"])
async def test_redirects_are_not_followed(hub, kind, target):
    """A 3xx is an error; the token goes nowhere but the configured hub URL."""
    with HeaderRecorder() as other:
        location = (
            f"{other.url}/collect" if target == "other-origin" else f"{hub.url}/moved"
        )
        hub.fail(kind, 302, headers={"Location": location}, times=10)
        result = await one_pass(make_culler(hub, cull_users=True))
    assert other.requests == []
    assert not [r for r in hub.requests if "/moved" in r[1]]
    redirects = [e for e in result.errors if "HTTP 302" in e]
    assert redirects and all("redirect" in e for e in redirects)
    if kind in ("list", "delete"):  # no server stopped
        assert hub.deleted == [] and not result.culled
    if kind in ("list", "user", "delete_user"):  # no user deleted
        assert hub.deleted_users == [] and not result.users_deleted


async def test_the_client_sends_the_token_to_the_hub_url_only(hub):
    """A full URL in place of a path is refused, not requested with the token."""
    with HeaderRecorder() as other:
        api = HubAPI(hub.url, TOKEN)
        try:
            with pytest.raises(ValueError, match="under the hub API URL"):
                await api.request("GET", f"{other.url}/users")
        finally:
            api.close()
    assert other.requests == []

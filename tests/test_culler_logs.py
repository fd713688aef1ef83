"""The culler service's log lines: a level and a timestamp on each, as the hub's.

The service runs as JupyterHub runs it (``python -m hubext.culler``, the API
URL and token in the environment), against the fake hub API.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from .culler_kit import service_env
from .fakes.hub_api import FakeHubAPI
from .test_culler_secrets import TOKEN, assert_no_fragment, idle_server

#: JupyterHub's shape: ``[I 2026-11-29 10:00:00.123 JupyterHub app:3300] ...``.
LINE = re.compile(
    r"\[(?P<level>[DIWEC]) (?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) "
    r"(?P<name>[\w.-]+)\] (?P<message>.*)"
)


@pytest.fixture
def hub():
    with FakeHubAPI(TOKEN) as fake:
        fake.add_user("idle-1", {"": idle_server()})
        yield fake


def run_service(hub, *args, code=None):
    env = {
        **os.environ,
        "JUPYTERHUB_API_TOKEN": TOKEN,
        "JUPYTERHUB_API_URL": hub.url,
        "TZ": "UTC",
        **service_env(),
    }
    command = [sys.executable, "-m", "hubext.culler", *args]
    if code is not None:
        command = [sys.executable, "-c", code, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def parsed(lines: list[str]) -> list[re.Match]:
    matches = [LINE.fullmatch(line) for line in lines]
    assert all(matches), [line for line, m in zip(lines, matches, strict=True) if not m]
    return matches


def test_every_line_has_a_level_and_a_timestamp(hub):
    hub.fail("list", 500)
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    failed = run_service(hub, "--once", "--dry-run", "--timeout=60")
    passed = run_service(hub, "--once", "--dry-run", "--timeout=60")
    after = datetime.now(UTC).replace(tzinfo=None)
    lines = (failed.stderr + passed.stderr).splitlines()
    assert failed.stdout == passed.stdout == ""
    matches = parsed(lines)
    for m in matches:
        assert before <= datetime.strptime(m["time"], "%Y-%m-%d %H:%M:%S.%f") <= after
    levels = {m["level"] for m in matches}
    assert {"I", "E"} <= levels
    messages = [m["message"] for m in matches]
    assert any(m.startswith("hubext-culler: listing users failed") for m in messages)
    assert any(m.startswith("hubext-culler: would cull idle-1") for m in messages)


def test_other_libraries_log_in_the_same_format_and_scrubbed(hub):
    """A warning of tornado or asyncio goes through the culler's handler too."""
    code = (
        "import logging, sys\n"
        "from hubext.culler.app import Culler\n"
        "app = Culler.instance()\n"
        "app.initialize(sys.argv[1:])\n"
        "token = app.api_token\n"
        "logging.getLogger('tornado.general').warning('echoed: %s', token[:40])\n"
        "logging.getLogger('asyncio').error('echoed: %s', token[20:])\n"
    )
    result = run_service(hub, "--log-level=DEBUG", code=code)
    assert result.returncode == 0, result.stderr
    matches = parsed(result.stderr.splitlines())
    assert [(m["level"], m["name"]) for m in matches] == [
        ("W", "tornado.general"),
        ("E", "asyncio"),
    ]
    assert all(m["message"] == "echoed: [secret]" for m in matches)
    assert_no_fragment(result.stderr)

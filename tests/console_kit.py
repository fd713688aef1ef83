"""What the console's tests share: the people, the hub's configuration, clients.

The demo's communities (ocean-lab, astro-101) with ``self_service`` bounds
added (hubext-local: software environments under a directory of the test's
own), the console registered, and these people at the demo's provider:

- ``carol``: ocean-lab's admin (``ocean-lab-admins``), an astro-101 member;
- ``alice``: an ocean-lab member;
- ``erin``: astro-101's admin;
- ``bob``: an astro-101 member;
- ``hal``: a hub admin (``admin_users``), in no community;
- ``rita``: the admin of reading-group, a community that delegates nothing.

and two services with tokens of their own: ``auditor`` (reads every
community's console) and ``gitops`` (changes astro-101's settings).
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

from .delegated_kit import make_environment

ACCOUNTS = {
    "carol": {
        "name": "Carol (Ocean Lab admin, Astronomy 101 member)",
        "preferred_username": "carol",
        "email": "carol@ocean.example.org",
        "email_verified": True,
        "groups": ["ocean-lab", "ocean-lab-admins", "astro-101"],
        "idp": "https://idp.ocean.example.org",
    },
    "alice": {
        "name": "Alice (Ocean Lab member)",
        "preferred_username": "alice",
        "email": "alice@ocean.example.org",
        "email_verified": True,
        "groups": ["ocean-lab"],
        "idp": "https://idp.ocean.example.org",
    },
    "erin": {
        "name": "Erin (Astronomy 101 admin)",
        "preferred_username": "erin",
        "email": "erin@astro.example.edu",
        "email_verified": True,
        "groups": ["astro-101", "astro-101-admins"],
        "idp": "https://idp.astro.example.edu",
    },
    "bob": {
        "name": "Bob (Astronomy 101 student)",
        "preferred_username": "bob",
        "email": "bob@astro.example.edu",
        "email_verified": True,
        "groups": ["astro-101"],
        "idp": "https://idp.astro.example.edu",
    },
    "rita": {
        "name": "Rita (Reading group admin)",
        "preferred_username": "rita",
        "email": "rita@ocean.example.org",
        "email_verified": True,
        "groups": ["reading-group", "reading-group-admins"],
        "idp": "https://idp.ocean.example.org",
    },
    "hal": {
        "name": "Hal (hub admin)",
        "preferred_username": "hal",
        "email": "hal@hub.example.org",
        "email_verified": True,
        "groups": [],
        "idp": "https://idp.hub.example.org",
    },
}

#: The sizes the operator defines (within ocean-lab's limits: 16 CPUs, 64G).
SIZES = {
    "small": {
        "display_name": "2 CPUs, 4 GiB",
        "cpu_guarantee": 2,
        "mem_guarantee": "4G",
    },
    "large": {
        "display_name": "8 CPUs, 16 GiB",
        "cpu_guarantee": 8,
        "mem_guarantee": "16G",
    },
}


def envs_root(workdir: Path) -> Path:
    """Where the test's software environments are (one directory per
    community)."""
    return workdir / "envs"


#: Where the browser test's software environments are: a fixed directory
#: that looks like a real hub's, so that the page's screenshots (the how-to's
#: pictures) show paths an operator would use, not pytest's temporary ones.
STABLE_ENVS = Path("/srv/envs")


@contextlib.contextmanager
def stable_envs_root(communities: tuple[str, ...] = ("ocean-lab", "astro-101")):
    """:data:`STABLE_ENVS`, owned by the caller while it runs: a lock file
    keeps another test run out (they wait), and the communities' directories
    are made anew (a virtualenv there points at the site-packages of the
    suite that made it)."""
    STABLE_ENVS.mkdir(parents=True, exist_ok=True)
    with open(STABLE_ENVS / ".hubext-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for community in communities:
                shutil.rmtree(STABLE_ENVS / community, ignore_errors=True)
            yield STABLE_ENVS
        finally:
            for community in communities:
                shutil.rmtree(STABLE_ENVS / community, ignore_errors=True)
            fcntl.flock(lock, fcntl.LOCK_UN)


def make_software_environment(root: Path, community: str, name: str) -> str:
    """A software environment that can run a single-user server (a real
    virtualenv, :func:`tests.delegated_kit.make_environment`), made once:
    the console checks it on the machine as the spawner would."""
    where = root / community / name
    if not (where / "bin" / "python").exists():
        where.parent.mkdir(parents=True, exist_ok=True)
        make_environment(where)
    return str(where)


def make_broken_environment(root: Path, community: str, name: str) -> str:
    """A directory that looks like a software environment (``bin/python``)
    but cannot run a server: its python is a shell script."""
    where = root / community / name
    (where / "bin").mkdir(parents=True, exist_ok=True)
    python = where / "bin" / "python"
    python.write_text("#!/bin/sh\necho 'no module named jupyterhub' >&2\nexit 1\n")
    python.chmod(0o755)
    return str(where)


def console_config(envs: Path, tokens: dict[str, str] | None = None) -> str:
    """The hub's extra configuration for the console's tests (``tokens``:
    the services' API tokens, by name)."""
    tokens = tokens or {}
    bounds = {
        slug: {
            "environments": {
                "software_roots": [str(envs / slug)],
                "max_profiles": 3,
            },
            "sizes": SIZES,
            "idle_timeout": {"min": 900, "max": 28800},
        }
        for slug in ("ocean-lab", "astro-101")
    }
    return textwrap.dedent(
        f"""
        from hubext import add_to_community
        from hubext.console import register_console
        from hubext.spawners.local import LocalCommunitySpawner

        register_console(c)

        c.JupyterHub.spawner_class = LocalCommunitySpawner
        c.CommunityAuthenticator.admin_users = {{"hal"}}
        add_to_community(c, "ocean-lab", self_service={bounds["ocean-lab"]!r})
        add_to_community(
            c,
            "astro-101",
            admins=[{{"provider": "demo", "group": "astro-101-admins"}}],
            self_service={bounds["astro-101"]!r},
        )
        c.Communities.communities["reading-group"] = {{
            "display_name": "Reading group",
            "members": [{{"provider": "demo", "group": "reading-group"}}],
            "admins": [{{"provider": "demo", "group": "reading-group-admins"}}],
        }}
        for name, token, scopes in (
            ("auditor", {tokens.get("auditor", "")!r}, ["custom:hubext-console:read"]),
            ("gitops", {tokens.get("gitops", "")!r}, ["custom:hubext-console:admin!group=astro-101"]),
        ):
            if token:
                c.JupyterHub.services.append({{"name": name, "api_token": token}})
                c.JupyterHub.load_roles.append(
                    {{"name": name, "scopes": scopes, "services": [name]}}
                )
        """
    )


def xsrf_of(page_html: str) -> str:
    """The XSRF token a hub page carries (``window.jhdata``)."""
    match = re.search(r'xsrf_token: "([^"]+)"', page_html)
    assert match, page_html[:400]
    return match[1]


def state_url(hub) -> str:
    """The delegated state's database of a RunningHub (the default file)."""
    return f"sqlite:///{hub.env.data_dir / 'hubext-state.sqlite'}"


def verify(hub) -> subprocess.CompletedProcess:
    """``hubext audit verify`` on the hub's delegated state, as an operator runs it."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "hubext.cli",
            "audit",
            "verify",
            "--db-url",
            state_url(hub),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )


def raw_request(
    hub_url: str,
    method: str,
    path: str,
    *,
    cookies=None,
    headers: dict | None = None,
    body: bytes | None = None,
) -> tuple[int, bytes]:
    """A request with ``path`` sent exactly as given (no client normalizing
    ``..`` or percent-encoding), with a session's cookies."""
    parts = urlsplit(hub_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    sent = dict(headers or {})
    if cookies is not None:
        sent["Cookie"] = "; ".join(f"{c.name}={c.value}" for c in cookies)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in sent.items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()

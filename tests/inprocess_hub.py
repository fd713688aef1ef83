"""A real JupyterHub application in the test's process, for many fast requests.

What is real: JupyterHub's ``JupyterHub`` application, initialized as the
``jupyterhub`` command does (``initialize``: its SQLite database, its ORM,
its roles and scopes, custom scopes from hubext's configuration, the
authenticator ``hubext`` with its start-up work, the tornado application
with every JupyterHub and hubext handler), listening on a free loopback
port with tornado's HTTP server, in a thread with its own event loop; the
delegated state in SQLite beside the hub's database, opened by the hub.
Requests go over HTTP (``requests``), with API tokens made by JupyterHub
or with the hub's own login cookie and XSRF token.

What is not the real thing: no proxy, no single-user servers, no services
running (``JupyterHub.start`` is not called); people are not signed in
through an identity provider: the test creates them in the hub's database
with the groups and roles hubext's sign-in gives (JupyterHub's
``grant_role``), records the identity a sign-in would record
(``User.save_auth_state``), and mints the hub's login cookie for them with
the hub's cookie secret (what JupyterHub's ``set_login_cookie`` writes);
so there is no provider token to refresh their identity with, and
``auth_refresh_age`` is 0 (no refresh).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path

import requests
from jupyterhub import orm, roles
from jupyterhub.app import JupyterHub
from tornado.httpserver import HTTPServer
from tornado.web import create_signed_value
from traitlets.config import Config

from demo.services import free_port


@dataclass
class Person:
    name: str
    groups: list[str] = field(default_factory=list)
    admin_of: list[str] = field(default_factory=list)
    hub_admin: bool = False
    #: filled in when the hub creates them
    token: str = ""
    cookie_session: requests.Session | None = None
    token_session: requests.Session | None = None
    xsrf: str = ""


class InProcessHub:
    """``JupyterHub`` initialized in a thread of this process (see the module)."""

    def __init__(self, workdir: Path, config: Config) -> None:
        self.workdir = workdir
        self.config = config
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.app: JupyterHub | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._initialize())
        except BaseException as e:
            self._failed = e
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        self.server.stop()
        # what JupyterHub does at shutdown: cancel what is left (KubeSpawner's
        # shared client closes itself when its task is cancelled)
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    async def _initialize(self) -> None:
        empty = self.workdir / "jupyterhub_config.py"
        empty.write_text("# everything is in the Config object\n")
        self.app = JupyterHub(config=self.config)
        await self.app.initialize([f"--config={empty}"])
        self.server = HTTPServer(self.app.tornado_application, xheaders=True)
        self.server.listen(self.port, "127.0.0.1")

    def start(self) -> InProcessHub:
        self._thread.start()
        self._ready.wait(120)
        if self._failed is not None:
            raise self._failed
        return self

    def call(self, coroutine_function, *args, timeout: float = 60):
        """Run ``coroutine_function(*args)`` on the hub's event loop; its result."""
        future = asyncio.run_coroutine_threadsafe(coroutine_function(*args), self.loop)
        return future.result(timeout)

    def stop(self) -> None:
        if self.loop is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        if self.app is not None:
            with contextlib.suppress(Exception):
                self.app.db.close()

    # -- people ------------------------------------------------------------------

    async def _add(self, person: Person, atoms: list[list[str]]) -> None:
        db = self.app.db
        orm_user = orm.User(name=person.name)
        db.add(orm_user)
        db.commit()
        orm_user.admin = person.hub_admin
        roles.assign_default_roles(db, orm_user)
        for slug in person.groups:
            group = orm.Group.find(db, slug)
            if group is None:
                group = orm.Group(name=slug)
                db.add(group)
            group.users.append(orm_user)
        for slug in person.admin_of:
            roles.grant_role(db, entity=orm_user, rolename=f"community-admin-{slug}")
        if person.hub_admin:
            roles.grant_role(db, entity=orm_user, rolename="hubext-hub-admin")
        db.commit()
        person.token = orm_user.new_api_token(note="property test")
        user = self.app.users[orm_user]
        await user.save_auth_state(
            {"hubext": {"provider": "demo", "subject": person.name, "atoms": atoms}}
        )

    def add_person(self, person: Person, atoms: list[list[str]]) -> Person:
        """Create ``person`` in the hub with their groups and roles, a token,
        and a browser session with the hub's login cookie and XSRF token."""
        self.call(self._add, person, atoms)
        person.token_session = requests.Session()
        person.token_session.headers["Authorization"] = f"token {person.token}"
        orm_user = orm.User.find(self.app.db, person.name)
        cookies = requests.Session()
        cookies.cookies.set(
            "jupyterhub-hub-login",
            create_signed_value(
                self.app.cookie_secret, "jupyterhub-hub-login", orm_user.cookie_id
            ).decode(),
            path="/hub/",
        )
        cookies.cookies.set("jupyterhub-session-id", secrets.token_hex(16), path="/")
        # a page sets the XSRF cookie, tied to this session (a navigation)
        cookies.get(f"{self.url}/hub/hubext/communities/", timeout=30)
        person.xsrf = cookies.cookies.get("_xsrf", path="/hub/")
        assert person.xsrf, f"no XSRF cookie for {person.name}"
        person.cookie_session = cookies
        return person


def hub_config(workdir: Path, communities: dict, services: list[tuple]) -> Config:
    """hubext's configuration for an in-process hub (no ledger, no proxy)."""
    from hubext.console import register_console
    from hubext.spawners.local import LocalCommunitySpawner

    c = Config()
    c.JupyterHub.authenticator_class = "hubext"
    c.JupyterHub.spawner_class = LocalCommunitySpawner
    c.JupyterHub.db_url = f"sqlite:///{workdir / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret = os.urandom(32)
    c.JupyterHub.bind_url = "http://127.0.0.1:1/"
    c.JupyterHub.pid_file = str(workdir / "jupyterhub.pid")
    c.JupyterHub.log_level = "ERROR"
    c.ConfigurableHTTPProxy.auth_token = secrets.token_hex(16)
    c.LocalCommunitySpawner.home_root = str(workdir / "homes")
    # the communities' environments are offered beside the configured ones
    c.LocalCommunitySpawner.profile_list = [
        {"display_name": "Default", "slug": "default"}
    ]
    c.UsageLedger.enabled = False
    c.CommunityAuthenticator.admin_users = set()
    # nobody signed in through the provider: no provider token to refresh with
    c.CommunityAuthenticator.auth_refresh_age = 0
    c.CommunityAuthenticator.providers = {
        "demo": {
            "kind": "oidc",
            "username_template": "{username}",
            "config": {
                "client_id": "hub",
                "client_secret": "not-used",
                "authorize_url": "http://127.0.0.1:9/auth",
                "token_url": "http://127.0.0.1:9/token",
                "userdata_url": "http://127.0.0.1:9/me",
                "username_claim": "preferred_username",
            },
        }
    }
    c.Communities.communities = communities
    c.JupyterHub.services = []
    c.JupyterHub.load_roles = []
    for name, token, scopes in services:
        c.JupyterHub.services.append({"name": name, "api_token": token})
        c.JupyterHub.load_roles.append(
            {"name": name, "scopes": scopes, "services": [name]}
        )
    register_console(c)
    return c

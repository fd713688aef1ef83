"""What the tests of communities' stored environments share.

- :func:`make_environment`: a real virtualenv that can run a single-user
  server: made by ``python -m venv`` from the suite's Python, with a
  ``.pth`` file adding the suite's own site-packages (where jupyterhub and
  jupyterlab are installed) the way ``site`` adds any site directory, and
  the suite's Jupyter configuration and data where Jupyter looks for them
  (``<prefix>/etc/jupyter``, ``<prefix>/share/jupyter``), as installing
  JupyterLab into it would put them;
- :data:`STORE_HANDLER`: hub configuration adding an API route,
  ``PUT /hub/api/hubext-test/delegated/<community>``, that writes a
  community's document through the hub's own store
  (:func:`hubext.console.config.hub_store`, ``StateStore.change`` with an
  actor and an action), as the console's handlers do in the hub: the
  change invalidates the cache the spawners read, so the next spawn form
  shows it. Only the suite's service token (``admin:users``) may call it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

#: Hub configuration: the test route writing through the hub's store.
STORE_HANDLER = """
import asyncio as _asyncio, json as _json
from jupyterhub.apihandlers.base import APIHandler as _APIHandler
from jupyterhub.scopes import needs_scope as _needs_scope
from hubext.console.config import Console as _Console, hub_store as _hub_store


class _StoredSettingsForTests(_APIHandler):
    def _store(self):
        return _hub_store(
            _Console(config=self.settings["config"]), str(self.db.get_bind().url)
        )

    @_needs_scope("admin:users")
    async def get(self, community):
        stored = await _asyncio.to_thread(self._store().read, community)
        self.write({"document": stored.document, "version": stored.version})

    @_needs_scope("admin:users")
    async def put(self, community):
        body = _json.loads(self.request.body)
        row = await _asyncio.to_thread(
            self._store().change,
            community,
            body["version"],
            body["document"],
            actor=body["actor"],
            actor_kind="user",
            action=body["action"],
        )
        self.write({"version": row.version, "seq": row.seq})


c.JupyterHub.extra_handlers.append(
    (r"/api/hubext-test/delegated/([^/]+)", _StoredSettingsForTests)
)
"""


def store_document(hub, community: str, document: dict, *, actor: str, action: str):
    """Write ``community``'s document through the hub's store; its new version."""
    path = f"/hubext-test/delegated/{community}"
    current = hub.api.get(path)
    current.raise_for_status()
    r = hub.api.request(
        "PUT",
        path,
        json={
            "version": current.json()["version"],
            "document": document,
            "actor": actor,
            "action": action,
        },
    )
    assert r.status_code == 200, r.text
    return r.json()["version"]


def make_environment(path: Path) -> Path:
    """A virtualenv at ``path`` whose python can run a single-user server."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)],
        check=True,
        capture_output=True,
    )
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site = path / "lib" / version / "site-packages"
    suite = sysconfig.get_paths()["purelib"]
    (site / "suite.pth").write_text(f"import site; site.addsitedir({suite!r})\n")
    shutil.copytree(Path(sys.prefix) / "etc" / "jupyter", path / "etc" / "jupyter")
    (path / "share").mkdir()
    (path / "share" / "jupyter").symlink_to(Path(sys.prefix) / "share" / "jupyter")
    return path


def server_process(hub, name: str) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of ``name``'s running server."""
    state = hub.api.user(name)["servers"][""]["state"]
    proc = Path(f"/proc/{state['pid']}")
    argv = proc.joinpath("cmdline").read_bytes().decode().split("\0")[:-1]
    raw = proc.joinpath("environ").read_bytes().decode()
    env = dict(item.split("=", 1) for item in raw.split("\0") if "=" in item)
    return argv, env

"""Install on your hub, as docs/install.md says: from the wheel, with no clone.

The test builds hubext's wheel and runs the commands of the install page:
the ``bash`` blocks marked ``<!-- install-test: run -->``, in order, in one
shell, then the block marked ``<!-- install-test: start -->`` (check the
configuration, start the hub) in the background. Every ``bash`` block of
the page is marked; the ones the test cannot run say why
(``<!-- install-test: skip, <why> -->``). The page's example values are
replaced by the test's (:func:`substitutions`, each of which must occur):
``/opt/hubext`` and ``/srv/hubext`` by directories in a temporary
directory, ``hubext`` on pip's command line by the wheel, the hub's and the
provider's URLs by the test's, the client secret by the test's, and the
hub's start gets free ports on its command line.

The identity provider is the test one (demo/idp.mjs, the only part of the
clone in use), with one person in the example community. Through it, a
person signs in to the hub that runs from the fresh virtual environment,
sees the example community's profile, starts a server and opens it.

pip reuses its cache (and npm its own): the page's ``pip install`` of the
wheel and JupyterLab in a fresh virtual environment is most of the test's
time.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from demo.services import free_port, stop_process, wait_for_http

from .harness import _kill_processes_under
from .hubclient import HubSession, wait_until

REPO = Path(__file__).resolve().parent.parent
PAGE = REPO / "docs" / "install.md"
IDP_SCRIPT = REPO / "demo" / "idp.mjs"

#: The page's client id, which the test provider is given.
CLIENT_ID = "hubext"
PERSON = "ada"
ACCOUNTS = {
    PERSON: {
        "name": "Ada (Example Lab member)",
        "preferred_username": PERSON,
        "email": "ada@example.edu",
        "email_verified": True,
        "groups": ["example-lab"],
    },
}

BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```\n", re.MULTILINE | re.DOTALL)
MARKED_BLOCK = re.compile(
    r"^<!-- install-test: (?P<mark>run|start|skip, (?P<why>.*?)) -->\n"
    r"```bash\n(?P<code>.*?)^```\n",
    re.MULTILINE | re.DOTALL,
)


def page_blocks(text: str) -> list[tuple[str, str]]:
    """``[(mark, code)]`` of the page's bash blocks: ``run``, ``start`` or ``skip``."""
    return [
        (m["mark"].partition(",")[0], m["code"]) for m in MARKED_BLOCK.finditer(text)
    ]


def test_every_bash_block_of_the_install_page_is_run_or_says_why_not():
    text = PAGE.read_text()
    marked = list(MARKED_BLOCK.finditer(text))
    assert len(marked) == len(BASH_BLOCK.findall(text))
    assert all(m["why"].strip() for m in marked if m["mark"].startswith("skip"))
    marks = [mark for mark, _ in page_blocks(text)]
    assert marks.count("start") == 1 and marks[-1] != "run"
    assert marks.count("run") >= 3


def test_the_readme_install_commands_are_the_pages():
    # The README's summary repeats the page's first commands, word for word.
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Install on your hub", 1)[1].split("\n## ", 1)[0]
    [commands] = BASH_BLOCK.findall(section)
    page_lines = {
        line
        for mark, code in page_blocks(PAGE.read_text())
        if mark == "run"
        for line in code.splitlines()
    }
    assert set(commands.splitlines()) <= page_lines


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """hubext's wheel, built from this checkout as a release is."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(out),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    [built] = out.glob("hubext-*.whl")
    return built


def test_the_wheel_ships_the_starting_configurations(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "hubext/starter_files/jupyterhub_config.py.tmpl" in names
    assert "hubext/starter_files/values.yaml.tmpl" in names
    assert not [n for n in names if n.startswith(("tests/", "docs/", "demo/"))]


def substitutions(root: Path, wheel: Path, ports: dict, secret: str):
    """``[(the page's text, the test's)]``, applied in this order."""
    hub_url = f"http://127.0.0.1:{ports['hub']}"
    return [
        ("/opt/hubext", str(root / "opt" / "hubext")),
        ("/srv/hubext", str(root / "srv" / "hubext")),
        ("pip install hubext jupyterlab", f"pip install {wheel} jupyterlab"),
        ("https://hub.example.org", hub_url),
        ("https://login.example.org", f"http://127.0.0.1:{ports['idp']}"),
        ("<the client secret from your provider>", secret),
        (
            "jupyterhub -f jupyterhub_config.py",
            "jupyterhub -f jupyterhub_config.py"
            f" --JupyterHub.bind_url={hub_url}"
            f" --JupyterHub.hub_bind_url=http://127.0.0.1:{ports['hub_api']}"
            f" --ConfigurableHTTPProxy.api_url=http://127.0.0.1:{ports['proxy_api']}",
        ),
    ]


def substituted(code: str, table) -> str:
    for example, value in table:
        code = code.replace(example, value)
    return code


def clean_environment(root: Path) -> dict[str, str]:
    """The environment of a shell on a machine with no clone of hubext.

    Nothing of the test's own virtualenv or of the clone: no PYTHONPATH,
    no virtualenv, no hub variables the other tests set; a private npm
    global prefix on PATH; pip's and npm's caches reused.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        and not k.startswith(("JUPYTERHUB_", "HUBEXT_", "JPY_"))
    }
    path = [p for p in env.get("PATH", "").split(os.pathsep) if str(REPO) not in p]
    npm_prefix = root / "npm-global"
    env.update(
        PATH=os.pathsep.join([str(npm_prefix / "bin"), *path]),
        npm_config_prefix=str(npm_prefix),
        npm_config_prefer_offline="true",
        npm_config_audit="false",
        npm_config_fund="false",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


@pytest.fixture
def provider(tmp_path):
    """The test OpenID Connect provider, with the page's client and one person."""
    ports = {}
    while len(set(ports.values())) < 4:
        ports = {name: free_port() for name in ("hub", "hub_api", "proxy_api", "idp")}
    secret = secrets.token_hex(24)
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps(ACCOUNTS))
    node = shutil.which("node")
    assert node, "node is needed (Node.js 20, as for the demo)"
    hub_url = f"http://127.0.0.1:{ports['hub']}"
    log = open(tmp_path / "idp.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [
            node,
            str(IDP_SCRIPT),
            "--port",
            str(ports["idp"]),
            "--client-id",
            CLIENT_ID,
            "--redirect-uri",
            f"{hub_url}/hub/oidc/oauth_callback",
            "--accounts",
            str(accounts),
        ],
        env={**os.environ, "HUBEXT_IDP_CLIENT_SECRET": secret},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_http(
            f"http://127.0.0.1:{ports['idp']}/.well-known/openid-configuration",
            30,
            process,
        )
        yield ports, secret
    finally:
        stop_process(process, timeout=5)
        log.close()


@pytest.mark.e2e
def test_install_page_from_the_wheel_signs_a_person_in(tmp_path, wheel, provider):
    ports, secret = provider
    root = tmp_path / "machine"  # its opt/ and srv/ stand for /opt and /srv
    root.mkdir()
    table = substitutions(root, wheel, ports, secret)
    blocks = page_blocks(PAGE.read_text())
    page_commands = "".join(code for mark, code in blocks if mark != "skip")
    missing = [example for example, _ in table if example not in page_commands]
    assert not missing, f"the page no longer says {missing}: update the test"
    assert f"--client-id {CLIENT_ID}" in page_commands
    # The skipped `useradd --create-home --home-dir /srv/hubext` makes it.
    srv = root / "srv" / "hubext"
    srv.mkdir(parents=True)
    env = clean_environment(root)
    log_path = tmp_path / "page.log"

    script = "set -euo pipefail\n" + "".join(
        substituted(code, table) for mark, code in blocks if mark == "run"
    )
    with open(log_path, "wb") as log:
        result = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=900,
        )
    assert result.returncode == 0, log_path.read_text()[-4000:]

    # hubext comes from the wheel, in the page's fresh virtual environment.
    venv_python = root / "opt" / "hubext" / "bin" / "python"
    where = subprocess.run(
        [str(venv_python), "-c", "import hubext; print(hubext.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(root / "opt" / "hubext" / "lib")), where
    assert (root / "npm-global" / "bin" / "configurable-http-proxy").exists()
    config = (srv / "jupyterhub_config.py").read_text()
    assert f'"client_id": "{CLIENT_ID}"' in config
    assert secret not in config
    assert secret in (srv / "hubext.env").read_text()
    assert (srv / "hubext.env").stat().st_mode & 0o077 == 0

    [start] = [code for mark, code in blocks if mark == "start"]
    hub_log_path = tmp_path / "hub.log"
    hub_log = open(hub_log_path, "wb")  # noqa: SIM115 (closed below)
    hub = subprocess.Popen(
        ["bash", "-c", "set -euo pipefail\n" + substituted(start, table)],
        cwd=tmp_path,
        env=env,
        stdout=hub_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    hub_url = f"http://127.0.0.1:{ports['hub']}"
    try:
        try:
            wait_for_http(f"{hub_url}/hub/api/", 120, hub)
        except (RuntimeError, TimeoutError):
            pytest.fail(hub_log_path.read_text()[-4000:])
        assert "1 community; configuration is valid." in hub_log_path.read_text()
        sign_in_and_start_a_server(hub_url, srv)
    finally:
        stop_process(hub, timeout=30)
        hub_log.close()
        _kill_processes_under(root)


def sign_in_and_start_a_server(hub_url: str, srv: Path) -> None:
    person = HubSession(hub_url)
    r = person.login("oidc", PERSON)
    assert r.status_code == 302, r.text[:500]

    # The example community's profile is offered, and selected.
    page = person.spawn_form()
    assert page.status_code == 200, page.text[:500]
    assert "Standard" in page.text and "Example Lab analysis" in page.text
    assert re.search(r'value="example-lab"\s+checked', page.text)
    r = person.submit_spawn_form({"profile": "example-lab"})
    assert r.status_code == 302, r.text[:500]

    def ready():
        user = person.api("GET", f"/users/{PERSON}").json()
        return bool((user.get("servers") or {}).get("", {}).get("ready"))

    assert wait_until(ready, timeout=90), "the server did not start"
    # JupyterLab, from the page's pip install, through the hub's OAuth.
    r = person.get(f"/user/{PERSON}/")
    assert r.status_code == 200, (r.url, r.text[:300])
    assert r.url.startswith(f"{hub_url}/user/{PERSON}/lab")
    # The home and the community's shared folder, where the page says.
    r = person.get(f"/user/{PERSON}/api/contents/shared/example-lab")
    assert r.status_code == 200, r.text[:300]
    assert [entry["name"] for entry in r.json()["content"]] == ["data"]
    link = srv / "homes" / PERSON / "shared" / "example-lab" / "data"
    assert link.is_symlink()
    assert link.resolve() == (srv / "shared" / "example-lab" / "data").resolve()

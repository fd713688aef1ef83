"""What pyproject.toml and the docs claim is what CI runs: Python, Node.js, the
lowest dependencies."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions

from ci.lowest_constraints import CONSTRAINTS, REPO, lower_bounds, render
from demo.services import free_port, stop_process, wait_for_http

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def test_lowest_constraints_agree_with_pyproject():
    # `make test-lowest` installs ci/lowest-constraints.txt: it must pin every
    # runtime dependency to the lower bound pyproject.toml claims.
    assert CONSTRAINTS.read_text() == render(lower_bounds()), (
        "regenerate: python ci/lowest_constraints.py > ci/lowest-constraints.txt"
    )
    assert set(lower_bounds()) == {
        "alembic",
        "escapism",
        "jinja2",
        "jupyterhub",
        "jupyterhub-kubespawner",
        "oauthenticator",
        "prometheus-client",
        "python-slugify",
        "pyyaml",
        "requests",
        "sqlalchemy",
        "tornado",
        "traitlets",
    }


def _imported_modules(package=REPO / "hubext"):
    """``{top-level module: [files importing it]}`` of every absolute import."""
    imported = {}
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                imported.setdefault(top, []).append(str(path.relative_to(REPO)))
    return imported


def _normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_third_party_import_of_hubext_is_a_declared_dependency():
    # A module hubext imports (at the top or inside a function) must come from
    # a distribution in [project].dependencies, not from whatever JupyterHub
    # or KubeSpawner happen to install today.
    declared = set(lower_bounds())
    distributions = packages_distributions()
    imported = _imported_modules()
    assert {"traitlets", "jupyterhub", "slugify"} <= set(imported)  # the scan works
    undeclared = {}
    for module, files in sorted(imported.items()):
        if module in sys.stdlib_module_names or module == "hubext":
            continue
        providers = {_normalized(d) for d in distributions.get(module, [])}
        if not providers & declared:
            undeclared[module] = (sorted(providers) or ["not installed"], files[0])
    assert not undeclared, (
        "imported by hubext but not declared in pyproject.toml [project] "
        f"dependencies (module: (distributions, first importer)): {undeclared}"
    )


def test_the_lowest_python_claimed_is_the_one_the_suite_runs_on():
    # Only Python 3.11 can be installed on the project's machines and CI: the
    # package claims no Python the suite does not run on.
    claimed = PYPROJECT["project"]["requires-python"]
    match = re.fullmatch(r">=\s*3\.(\d+)", claimed)
    assert match, claimed
    assert sys.version_info[:2] == (3, int(match.group(1))), (claimed, sys.version)
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py3{match.group(1)}"


def test_pre_commit_runs_the_ruff_of_the_test_extra():
    # `make test` lints with the test extra's ruff, a contributor's commit
    # with .pre-commit-config.yaml's: the same version, so a commit that
    # passes one passes the other.
    import yaml

    pinned = [
        requirement
        for requirement in PYPROJECT["project"]["optional-dependencies"]["test"]
        if re.match(r"ruff\b", requirement)
    ]
    assert len(pinned) == 1 and re.fullmatch(r"ruff==[\d.]+", pinned[0]), pinned
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    ruff_hooks = [
        hook
        for repo in config["repos"]
        for hook in repo["hooks"]
        if hook["id"] in ("ruff-check", "ruff-format")
    ]
    assert sorted(hook["id"] for hook in ruff_hooks) == ["ruff-check", "ruff-format"]
    for hook in ruff_hooks:
        assert hook["additional_dependencies"] == pinned, hook


#: "Python 3.11+", "Python 3.11 or newer": a version a document claims.
VERSION_CLAIMS = {
    "Python": re.compile(r"\bPython (3\.\d+)(?:\+| or (?:newer|later))"),
    "Node.js": re.compile(r"\bNode\.js (\d+)(?:\+| or (?:newer|later))"),
}
#: Where a hub admin or a contributor reads which versions they need.
CLAIMING_FILES = ("README.md", "docs/quickstart.md", "docs/install.md")


def claimed_versions() -> dict[str, dict[str, set[str]]]:
    """``{"Python": {file: versions claimed}, "Node.js": {...}}``."""
    claims = {name: {} for name in VERSION_CLAIMS}
    for name, pattern in VERSION_CLAIMS.items():
        for path in (*CLAIMING_FILES, "demo/services.py"):
            found = set(pattern.findall((REPO / path).read_text()))
            if found or path in CLAIMING_FILES:
                claims[name][path] = found
    return claims


def test_the_docs_claim_the_versions_pyproject_and_ci_use():
    claims = claimed_versions()
    python = re.fullmatch(r">=\s*(3\.\d+)", PYPROJECT["project"]["requires-python"])
    assert claims["Python"] == {f: {python[1]} for f in CLAIMING_FILES}, claims
    # every file names one Node.js version, the same one (demo/services.py
    # says it when node is missing)
    node = claims["Node.js"]
    assert set(node) == {*CLAIMING_FILES, "demo/services.py"}, node
    assert len(set().union(*node.values())) == 1, node
    assert all(len(versions) == 1 for versions in node.values()), node


def test_the_identity_provider_runs_on_the_claimed_node_without_warning(tmp_path):
    # The demo's and the tests' OpenID Connect provider (oidc-provider from
    # npm) warns at every start on a Node.js its release does not support;
    # the release in package.json supports the Node.js the docs claim, which
    # is the one CI runs.
    [claimed] = set(VERSION_CLAIMS["Node.js"].findall((REPO / "README.md").read_text()))
    node = shutil.which("node")
    assert node, "node is needed (Node.js, as for the demo)"
    version = subprocess.run(
        [node, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert int(version.lstrip("v").split(".")[0]) >= int(claimed), version
    port = free_port()
    process = subprocess.Popen(
        [
            node,
            str(REPO / "demo" / "idp.mjs"),
            "--port",
            str(port),
            "--redirect-uri",
            "http://127.0.0.1:8000/hub/demo/oauth_callback",
        ],
        env={**os.environ, "HUBEXT_IDP_CLIENT_SECRET": "not-a-real-secret"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_http(
            f"http://127.0.0.1:{port}/.well-known/openid-configuration", 30, process
        )
    finally:
        stop_process(process, timeout=5)
    output = process.stdout.read().decode()
    assert "listening on" in output, output
    assert "Unsupported runtime" not in output, output

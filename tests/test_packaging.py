"""What pyproject.toml claims is what CI runs: Python and the lowest dependencies."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from ci.lowest_constraints import CONSTRAINTS, REPO, lower_bounds, render

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

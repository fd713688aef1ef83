"""What pyproject.toml claims is what CI runs: Python and the lowest dependencies."""

from __future__ import annotations

import re
import sys
import tomllib

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
        "jupyterhub",
        "jupyterhub-kubespawner",
        "oauthenticator",
        "pyyaml",
        "sqlalchemy",
        "tornado",
        "traitlets",
    }


def test_the_lowest_python_claimed_is_the_one_the_suite_runs_on():
    # Only Python 3.11 can be installed on the project's machines and CI: the
    # package claims no Python the suite does not run on.
    claimed = PYPROJECT["project"]["requires-python"]
    match = re.fullmatch(r">=\s*3\.(\d+)", claimed)
    assert match, claimed
    assert sys.version_info[:2] == (3, int(match.group(1))), (claimed, sys.version)
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py3{match.group(1)}"

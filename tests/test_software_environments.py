"""A community's software environment checked on the machine (hubext.software_environments).

Real directories, links and virtualenvs in the test's own directory; the
import check runs real interpreters (the suite's Python in a real venv) or
small scripts standing in for ``bin/python`` where what matters is how
often and how it is run.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from hubext.software_environments import forget_verdicts, machine_problem

from .delegated_kit import make_environment


@pytest.fixture(autouse=True)
def _fresh_verdicts():
    forget_verdicts()
    yield
    forget_verdicts()


@pytest.fixture
def root(tmp_path) -> Path:
    root = tmp_path / "envs" / "ocean-lab"
    root.mkdir(parents=True)
    return root


def fake_python(environment: Path, body: str) -> Path:
    """An environment whose ``bin/python`` is the shell script ``body``."""
    (environment / "bin").mkdir(parents=True)
    python = environment / "bin" / "python"
    python.write_text(f"#!/bin/sh\n{body}\n")
    python.chmod(0o755)
    return environment


def test_a_virtualenv_that_can_run_a_server(root):
    environment = make_environment(root / "py311")
    assert machine_problem(str(environment), [str(root)]) is None


def test_a_virtualenv_without_jupyterhub_is_refused_with_pythons_words(root):
    environment = make_environment(root / "bare")
    next(environment.rglob("suite.pth")).unlink()
    problem = machine_problem(str(environment), [str(root)])
    assert problem == (
        "its python cannot import jupyterhub.singleuser "
        "(ModuleNotFoundError: No module named 'jupyterhub')"
    )


def test_a_link_planted_in_a_root_pointing_outside_is_refused(root, tmp_path):
    outside = make_environment(tmp_path / "elsewhere" / "py311")
    (root / "planted").symlink_to(outside)
    problem = machine_problem(str(root / "planted"), [str(root)])
    assert problem.startswith(f"{root}/planted is a symbolic link;")
    # the same environment at its own place, allowed, works
    assert machine_problem(str(outside), [str(outside.parent)]) is None


def test_a_link_within_the_root_is_refused_too(root):
    make_environment(root / "py311")
    (root / "current").symlink_to(root / "py311")
    problem = machine_problem(str(root / "current"), [str(root)])
    assert problem.startswith(f"{root}/current is a symbolic link;")


def test_a_link_below_the_environment_on_the_way_is_refused(root, tmp_path):
    (tmp_path / "other").mkdir()
    make_environment(tmp_path / "other" / "py311")
    (root / "group").symlink_to(tmp_path / "other")
    problem = machine_problem(str(root / "group" / "py311"), [str(root)])
    assert problem.startswith(f"{root}/group is a symbolic link;")


def test_the_operators_root_may_be_reached_through_a_link(root, tmp_path):
    environment = fake_python(root / "py311", "exit 0")
    (tmp_path / "envs-link").symlink_to(root.parent)
    linked_root = tmp_path / "envs-link" / "ocean-lab"
    assert machine_problem(f"{linked_root}/py311", [str(linked_root)]) is None
    assert environment.exists()


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/etc", "/etc is not in the directories allowed"),
        ("{root}", "is not in the directories allowed"),
        ("{root}/../ocean-lab/x", "is not a normalized path"),
        ("{root}/missing", "{root}/missing does not exist"),
        ("{root}/file", "{root}/file is not a directory"),
        ("{root}/no-python", "{root}/no-python/bin does not exist"),
        ("{root}/bin-but-no-python", "{root}/bin-but-no-python has no bin/python"),
        ("{root}/python-not-executable", "bin/python is not executable"),
        ("{root}/python-a-directory", "bin/python is not a file"),
    ],
    ids=[
        "outside",
        "the-root-itself",
        "dot-dot",
        "missing",
        "a-file",
        "no-bin",
        "no-python",
        "not-executable",
        "python-a-directory",
    ],
)
def test_what_is_not_an_environment_says_why(root, path, problem):
    (root / "file").write_text("")
    (root / "no-python").mkdir()
    (root / "bin-but-no-python" / "bin").mkdir(parents=True)
    fake_python(root / "python-not-executable", "exit 0")
    (root / "python-not-executable" / "bin" / "python").chmod(0o644)
    (root / "python-a-directory" / "bin" / "python").mkdir(parents=True)
    found = machine_problem(path.format(root=root), [str(root)])
    assert found is not None and problem.format(root=root) in found


@pytest.mark.parametrize("where", ["root", "environment", "bin"])
def test_nothing_on_the_way_may_be_writable_by_everyone(root, where):
    environment = fake_python(root / "py311", "exit 0")
    place = {"root": root, "environment": environment, "bin": environment / "bin"}
    place[where].chmod(0o777)
    problem = machine_problem(str(environment), [str(root)])
    assert problem is not None
    assert f"{place[where]} is writable by everyone" in problem
    # group-writable: fine (the people who install environments)
    place[where].chmod(0o775)
    assert machine_problem(str(environment), [str(root)]) is None


def test_a_sticky_directory_is_fine_for_entries_of_root(root):
    environment = fake_python(root / "py311", "exit 0")
    root.chmod(0o1777)
    assert os.stat(environment).st_uid == os.geteuid() == 0  # the suite runs as root
    assert machine_problem(str(environment), [str(root)]) is None
    os.chown(environment, 65534, 65534)  # an entry of someone else: replaceable
    problem = machine_problem(str(environment), [str(root)])
    assert problem is not None and "is writable by everyone" in problem


def test_the_import_check_runs_once_per_state_of_the_environment(root, tmp_path):
    runs = tmp_path / "runs"
    environment = fake_python(root / "py311", f'echo "$@" >> {runs}\nexit 0')
    for _ in range(3):
        assert machine_problem(str(environment), [str(root)]) is None
    assert runs.read_text().splitlines() == ["-I -c import jupyterhub.singleuser"]
    # a package installed (bin changes): checked again
    bin_dir = environment / "bin"
    stamp = bin_dir.stat().st_mtime_ns
    os.utime(bin_dir, ns=(stamp + 10**9, stamp + 10**9))
    assert machine_problem(str(environment), [str(root)]) is None
    assert len(runs.read_text().splitlines()) == 2


def test_a_failing_check_is_kept_and_says_why(root, tmp_path):
    runs = tmp_path / "runs"
    body = f"echo run >> {runs}\necho 'Traceback ...' >&2\necho 'ImportError: boom' >&2\nexit 1"
    environment = fake_python(root / "py311", body)
    for _ in range(2):
        assert machine_problem(str(environment), [str(root)]) == (
            "its python cannot import jupyterhub.singleuser (ImportError: boom)"
        )
    assert runs.read_text() == "run\n"


def test_the_check_runs_with_nothing_of_the_hubs_environment(
    root, tmp_path, monkeypatch
):
    seen = tmp_path / "seen"
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "a-secret-of-the-hub")
    environment = fake_python(root / "py311", f"env > {seen}\npwd >> {seen}\nexit 0")
    assert machine_problem(str(environment), [str(root)]) is None
    lines = seen.read_text().splitlines()
    assert "a-secret-of-the-hub" not in seen.read_text()
    assert f"PATH={environment}/bin:/usr/local/bin:/usr/bin:/bin" in lines
    assert lines[-1] == "/"


def test_a_check_that_hangs_is_stopped(root):
    environment = fake_python(root / "py311", "sleep 30")
    problem = machine_problem(str(environment), [str(root)], timeout=0.5)
    assert problem == "its python did not import jupyterhub.singleuser within 0.5 s"


def test_the_check_runs_as_the_user_the_servers_run_as(root):
    environment = make_environment(root / "py311")
    assert machine_problem(str(environment), [str(root)], user="root") is None
    # nobody may not enter the suite's directories (pytest's are 0700)
    problem = machine_problem(str(environment), [str(root)], user="nobody")
    assert problem == "its python cannot be run: Permission denied"
    assert machine_problem(str(environment), [str(root)], user="no-such-user-x") == (
        "there is no system user 'no-such-user-x' to check it as"
    )
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o755

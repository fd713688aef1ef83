"""upstream/run.py: what it reads from a patch series, and what it refuses
before downloading anything. (Its run against upstream's suite needs PyPI and
a virtualenv of its own: `python upstream/run.py PROJECT`.)"""

from __future__ import annotations

import subprocess

import pytest

from upstream.run import Patch, Refused, check

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org"]


def git(repo, *args):
    subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def upstream_repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "pkg" / "tests").mkdir(parents=True)
    (repo / "pkg" / "mod.py").write_text("def f():\n    return 1\n")
    (repo / "pkg" / "tests" / "test_mod.py").write_text("def test_old():\n    pass\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    return repo


def format_patch(repo, out, files: dict[str, str], message: str):
    for name, text in files.items():
        with (repo / name).open("a") as f:
            f.write(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    out.mkdir(exist_ok=True)
    git(repo, "format-patch", "-q", "-1", "-o", str(out))
    return sorted(out.glob("*.patch"))[-1]


def test_new_tests_test_files_and_related_selections(upstream_repo, tmp_path):
    path = format_patch(
        upstream_repo,
        tmp_path / "series",
        {
            "pkg/mod.py": "\n\ndef g():\n    return 2\n",
            "pkg/tests/test_mod.py": (
                "\n\ndef test_g():\n    pass\n"
                "\n\nasync def test_g_async():\n    pass\n"
                "\n\nclass TestG:\n    def test_method(self):\n        pass\n"
            ),
        },
        "Add g\n\nUpstream-Related: pkg/tests/test_mod.py -k 'old or g'\n",
    )
    patch = Patch.read(path)
    assert patch.test_files == ["pkg/tests/test_mod.py"]
    # module-level tests only: pytest selects them by FILE::NAME
    assert patch.new_tests == [
        "pkg/tests/test_mod.py::test_g",
        "pkg/tests/test_mod.py::test_g_async",
    ]
    assert patch.related == [["pkg/tests/test_mod.py", "-k", "old or g"]]


def test_a_patch_without_its_own_test_is_refused(upstream_repo, tmp_path):
    series = tmp_path / "series"
    format_patch(
        upstream_repo, series, {"pkg/mod.py": "\n\ndef g():\n    return 2\n"}, "g"
    )
    (series / "UPSTREAM_COMMIT").write_text("pkg==1.0\n")
    with pytest.raises(Refused, match=r"0001-g\.patch adds no test"):
        check(str(series), tmp_path / "work")
    # refused before anything was downloaded or installed
    assert not (tmp_path / "work").exists()


def test_no_series_is_nothing_to_check(tmp_path, capsys):
    (tmp_path / "UPSTREAM_COMMIT").write_text("pkg==1.0\n")
    assert check(str(tmp_path), tmp_path / "work") == 0
    assert "no patch series" in capsys.readouterr().out
    assert not (tmp_path / "work").exists()


def test_a_project_without_upstream_commit_is_refused(tmp_path):
    with pytest.raises(Refused, match="UPSTREAM_COMMIT"):
        check(str(tmp_path), tmp_path / "work")

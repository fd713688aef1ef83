"""Check a patch series for an upstream project against upstream's own tests.

    python upstream/run.py PROJECT [--work DIR]

``upstream/PROJECT/`` holds:

- ``UPSTREAM_COMMIT``: the release the series applies to, as a pip
  requirement (``jupyterhub==6.1.1``). Its sdist is downloaded from PyPI
  (it must carry upstream's tests) and made a git repository.
- ``0001-....patch``, ...: the series, ``git format-patch`` output.
- ``test-requirements.txt`` (optional): what upstream's tests need,
  installed with the release into a virtualenv of their own; without it,
  the release's ``test`` extra.

For each patch, in order: the tests it adds (module-level ``def test_...``
lines added under a ``tests`` folder) are run on the source with only the patch's test
files applied, where they must fail, then with the whole patch applied
(``git am``), where they must pass together with the selection named by
``Upstream-Related:`` lines of its commit message (pytest arguments, e.g.
``jupyterhub/tests/test_app.py -k role``). A table of the results is
printed; the exit status is 1 if any patch does not behave so.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
GIT_ID = ["-c", "user.name=hubext upstream", "-c", "user.email=upstream@hubext.invalid"]
# module-level test functions (pytest selects them as FILE::NAME)
NEW_TEST = re.compile(r"^\+(?:async\s+)?def\s+(test_\w+)\s*\(", re.MULTILINE)
DIFF_FILE = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.MULTILINE)
RELATED = re.compile(r"^Upstream-Related:\s*(.+)$", re.MULTILINE)


class Refused(Exception):
    """Something the maintainer must fix before the check can run."""


@dataclass
class Patch:
    path: Path
    text: str
    test_files: list[str] = field(default_factory=list)
    new_tests: list[str] = field(default_factory=list)
    related: list[list[str]] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Patch:
        text = path.read_text()
        patch = cls(path, text)
        message, _, diff = text.partition("\ndiff --git ")
        patch.related = [shlex.split(m) for m in RELATED.findall(message)]
        for chunk in re.split(r"(?=^diff --git )", "diff --git " + diff, flags=re.M):
            m = DIFF_FILE.match(chunk)
            if not m or "/tests/" not in f"/{m.group(2)}":
                continue
            patch.test_files.append(m.group(2))
            patch.new_tests += [f"{m.group(2)}::{t}" for t in NEW_TEST.findall(chunk)]
        return patch


def run(cmd, cwd=None, check=True, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, check=check, text=True, **kwargs)


def git(src: Path, *args, check=True):
    return run(["git", *GIT_ID, *args], cwd=src, check=check, capture_output=True)


def fetch_source(requirement: str, work: Path) -> Path:
    """The release's sdist, unpacked into a fresh git repository."""
    dist = work / "dist"
    dist.mkdir(parents=True, exist_ok=True)
    name = re.split(r"[=<>!~ ]", requirement, maxsplit=1)[0].lower()
    stem = re.sub(r"[-_.]+", "[-_.]", name)
    found = [p for p in dist.glob("*.tar.gz") if re.match(stem + "-", p.name, re.I)]
    if not found:
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
        run([*pip, "--no-binary", ":all:", "--dest", str(dist), requirement])
        found = [p for p in dist.glob("*.tar.gz") if re.match(stem + "-", p.name, re.I)]
    if len(found) != 1:
        raise Refused(f"expected one sdist for {requirement} in {dist}, found {found}")
    src = work / "src"
    run(["rm", "-rf", str(src), str(work / "unpacked")])
    with tarfile.open(found[0]) as tar:
        tar.extractall(work / "unpacked", filter="data")
        top = tar.getnames()[0].split("/")[0]
    (work / "unpacked" / top).rename(src)
    if not any(src.glob("**/tests/test_*.py")):
        raise Refused(
            f"the sdist of {requirement} carries no tests: upstream's suite "
            "cannot be run from PyPI for this project"
        )
    git(src, "init", "--quiet")
    git(src, "add", "--all", "--force")
    git(src, "commit", "--quiet", "--no-verify", "-m", f"upstream {requirement}")
    return src


def test_venv(project_dir: Path, requirement: str, src: Path, work: Path) -> Path:
    """A virtualenv with the release and what its tests need (made once)."""
    venv = work / "venv"
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    wanted = [requirement]
    requirements = project_dir / "test-requirements.txt"
    if requirements.exists():
        wanted += ["-r", str(requirements)]
        key = requirement + "\n" + requirements.read_text()
    else:
        meta = tomllib.loads((src / "pyproject.toml").read_text())
        test_extra = meta["project"]["optional-dependencies"]["test"]
        wanted += test_extra
        key = requirement + "\n" + "\n".join(test_extra)
    if stamp.exists() and stamp.read_text() == key:
        return python
    run([sys.executable, "-m", "venv", "--clear", str(venv)])
    run([str(python), "-m", "pip", "install", "--quiet", *wanted])
    stamp.write_text(key)
    return python


def pytest(python: Path, src: Path, args: list[str], log: Path) -> int:
    """pytest in the source tree; the tree's package shadows the installed one."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    # the venv's scripts, and configurable-http-proxy from the repository's npm
    # packages (`make install`), for upstream tests that start a proxy
    paths = [python.parent, HERE.parent / "node_modules" / ".bin", env.get("PATH", "")]
    env["PATH"] = os.pathsep.join(map(str, paths))
    cmd = [str(python), "-m", "pytest", "-p", "no:cacheprovider"]
    cmd += ["--import-mode=prepend", "--color=no", "-q", *args]
    with log.open("a") as out:
        out.write(f"\n$ {shlex.join(cmd)}\n")
        out.flush()
        return run(
            cmd, cwd=src, check=False, stdout=out, stderr=out, env=env
        ).returncode


def outcome(code: int) -> str:
    return {0: "pass", 1: "fail", 2: "error", 5: "none collected"}.get(
        code, f"exit {code}"
    )


def check(project: str, work: Path) -> int:
    # a folder of upstream/, or the path of a series kept elsewhere
    project_dir = Path(project) if os.sep in project else HERE / project
    if not (project_dir / "UPSTREAM_COMMIT").is_file():
        raise Refused(f"no {project_dir / 'UPSTREAM_COMMIT'}")
    requirement = (project_dir / "UPSTREAM_COMMIT").read_text().split()[0]
    patches = [
        Patch.read(p) for p in sorted(project_dir.glob("[0-9][0-9][0-9][0-9]-*.patch"))
    ]
    for patch in patches:
        if not patch.new_tests:
            raise Refused(f"{patch.path.name} adds no test under a tests folder")
    if not patches:
        print(f"{project}: {requirement}, no patch series: nothing to check")
        return 0
    work.mkdir(parents=True, exist_ok=True)
    log = work / "pytest.log"
    log.write_text("")
    src = fetch_source(requirement, work)
    python = test_venv(project_dir, requirement, src, work)
    rows = []
    for patch in patches:
        # the patch's tests alone, on the code before it
        include = [f"--include={f}" for f in patch.test_files]
        applied = git(src, "apply", *include, str(patch.path), check=False)
        if applied.returncode:
            raise Refused(f"{patch.path.name}: tests do not apply: {applied.stderr}")
        before = pytest(python, src, patch.new_tests, log)
        git(src, "checkout", "--", ".")
        git(src, "clean", "-fdq")
        am = git(src, "am", "--quiet", str(patch.path), check=False)
        if am.returncode:
            raise Refused(f"{patch.path.name} does not apply: {am.stderr or am.stdout}")
        after = pytest(python, src, patch.new_tests, log)
        related = [pytest(python, src, args, log) for args in patch.related]
        ok = before in (1, 2) and after == 0 and all(r == 0 for r in related)
        rows.append(
            (
                patch.path.name,
                len(patch.new_tests),
                outcome(before),
                outcome(after),
                ", ".join(outcome(r) for r in related) or "-",
                "ok" if ok else "WRONG",
            )
        )
    print(f"{project}: {requirement}, {len(patches)} patch(es); pytest output in {log}")
    header = ("patch", "new tests", "before", "after", "related after", "")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    return 0 if all(r[-1] == "ok" for r in rows) else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", help="a folder under upstream/, e.g. jupyterhub")
    parser.add_argument(
        "--work",
        type=Path,
        help="where the sdist, its git tree and the test virtualenv go "
        "(default: $TMPDIR/hubext-upstream/PROJECT; kept between runs)",
    )
    args = parser.parse_args(argv)
    name = Path(args.project).name
    work = args.work or Path(tempfile.gettempdir()) / "hubext-upstream" / name
    try:
        return check(args.project, work)
    except Refused as e:
        print(f"upstream/run.py {args.project}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The documentation: it builds without warnings, and its examples are valid.

Every zero-to-jupyterhub ``values.yaml`` example in the docs is validated
against the chart's own values schema (tests/data/z2jh, copied from the
chart), merged over the chart's defaults the way helm merges them, and its
``hub.config`` is run through hubext's start-up validation.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from traitlets.config import Config, Configurable

import hubext
from hubext.cli import check_config

REPO = Path(__file__).resolve().parent.parent
Z2JH = Path(__file__).resolve().parent / "data" / "z2jh"
DOC_FILES = sorted([*REPO.glob("docs/**/*.md"), REPO / "README.md"])
YAML_BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def z2jh_examples():
    for path in DOC_FILES:
        for i, match in enumerate(YAML_BLOCK.finditer(path.read_text())):
            values = yaml.safe_load(match.group(1))
            if isinstance(values, dict) and {"hub", "singleuser", "cull"} & set(values):
                yield pytest.param(values, id=f"{path.relative_to(REPO)}-{i}")


def helm_merge(defaults, values):
    """Merge like helm: mappings are merged, everything else is replaced."""
    merged = copy.deepcopy(defaults)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@pytest.fixture(scope="module")
def chart():
    schema = yaml.safe_load((Z2JH / "values.schema.yaml").read_text())
    defaults = yaml.safe_load((Z2JH / "values.yaml").read_text())
    return schema, defaults


EXAMPLES = list(z2jh_examples())


def test_there_are_z2jh_examples():
    assert len(EXAMPLES) >= 2


@pytest.mark.parametrize("values", EXAMPLES)
def test_z2jh_example_is_valid_chart_input(chart, values):
    schema, defaults = chart
    jsonschema.validate(helm_merge(defaults, values), schema)
    hub_config = values.get("hub", {}).get("config")
    if hub_config:
        config = Config(copy.deepcopy(hub_config))
        # z2jh's jupyterhub_config.py turns singleuser.profileList into this
        profile_list = values.get("singleuser", {}).get("profileList")
        if profile_list:
            config.KubeSpawner.profile_list = profile_list
        check_config(config)


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    """The HTML docs, built once for the module (warnings as errors)."""
    html = tmp_path_factory.mktemp("docs") / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(REPO / "docs"),
            str(html),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result, html


def test_docs_build_without_warnings(built_docs):
    result, html = built_docs
    assert result.returncode == 0, result.stderr[-3000:]
    reference = (html / "reference" / "configuration.html").read_text()
    # The reference is generated from the traits.
    for trait in ("communities", "providers", "no_community_message", "home_root"):
        assert trait in reference


def hubext_config_traits():
    """``{class path: its config traits defined by hubext}``, over the package.

    Every module is imported except the ones that run something when
    imported (``__main__``, the ledger's alembic migrations).
    """
    found = {}
    for info in pkgutil.walk_packages(hubext.__path__, "hubext."):
        if info.name.endswith(".__main__") or ".migrations" in info.name:
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, Configurable) or cls.__module__ != info.name:
                continue
            traits = sorted(
                name
                for name, trait in cls.class_traits(config=True).items()
                if trait.this_class.__module__.startswith("hubext.")
            )
            if traits:
                found[f"{cls.__module__}.{cls.__qualname__}"] = traits
    return found


def test_configuration_reference_documents_every_hubext_configurable(built_docs):
    # The reference is generated from the entry points and the package, so a
    # configurable class cannot be left out of it, nor any trait hubext adds.
    result, html = built_docs
    assert result.returncode == 0, result.stderr[-3000:]
    page = (html / "reference" / "configuration.html").read_text()
    documented = {
        prename + name
        for prename, name in re.findall(
            r'sig-prename descclassname"><span class="pre">([\w.]+)</span></span>'
            r'<span class="sig-name descname"><span class="pre">(\w+)<',
            page,
        )
    }
    classes = hubext_config_traits()
    assert {
        "hubext.providers.github.GitHubProvider",
        "hubext.providers.cilogon.CILogonProvider",
        "hubext.spawners.limits.UsageLimits",
        "hubext.usage.service.UsageService",
    } <= set(classes)  # the walk finds them
    assert set(classes) - documented == set()
    undocumented = [
        f"{path}.{trait}"
        for path, traits in classes.items()
        for trait in traits
        if f"c.{path.rpartition('.')[2]}.{trait}<" not in page
    ]
    assert undocumented == []


def _named_in_architecture(module: Path, text: str) -> bool:
    # A row names a module by its path, or by its file name after the first
    # module of the same folder ("`hubext/usage/model.py`, `store.py`").
    path = module.relative_to(REPO).as_posix()
    if f"`{path}`" in text:
        return True
    folder = module.parent.relative_to(REPO).as_posix()
    return any(
        f"`{module.name}`" in line and f"`{folder}/" in line
        for line in text.splitlines()
        if line.startswith("| `")
    )


def test_architecture_names_every_module():
    text = (REPO / "docs" / "architecture.md").read_text()
    modules = [
        path
        for path in sorted((REPO / "hubext").rglob("*.py"))
        if path.name not in ("__init__.py", "__main__.py", "_version.py")
        and "migrations" not in path.parts
    ]
    assert len(modules) > 60
    missing = [
        m.relative_to(REPO).as_posix()
        for m in modules
        if not _named_in_architecture(m, text)
    ]
    assert missing == []


def test_readme_links_are_absolute():
    # The README is hubext's description on PyPI, where a relative link
    # (docs/..., jupyterhub_config.d/) leads nowhere: links into the
    # repository are absolute, on the main branch of its Source URL, and
    # name something that exists.
    text = (REPO / "README.md").read_text()
    # not in code: fenced blocks and inline code spans
    text = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"`[^`\n]*`", "", text)
    targets = [
        *re.findall(r"\]\(([^)\s]+)\)", text),
        *re.findall(r"^\[[^\]]+\]:\s*(\S+)", text, re.MULTILINE),
        *re.findall(r'(?:href|src)="([^"]*)"', text),
    ]
    assert len(targets) >= 5
    assert [t for t in targets if not t.startswith("https://")] == []
    source = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["urls"][
        "Source"
    ]
    into_repo = [t for t in targets if t.startswith(f"{source}/")]
    assert [t for t in into_repo if not t.startswith(f"{source}/blob/main/")] == []
    missing = [
        t
        for t in into_repo
        if not (REPO / t.removeprefix(f"{source}/blob/main/").split("#")[0]).exists()
    ]
    assert missing == []
    assert f"{source}/blob/main/docs/install.md" in into_repo

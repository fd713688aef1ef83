"""The docs' way to add keys to a community from another file works as written.

Every Python example of the docs that calls ``add_to_community`` is run as a
``jupyterhub_config.d/`` file, loaded with ``load_subconfig()`` after the file
that defines the communities, exactly as a hub loads it; the communities
the hub would get hold the keys the example adds. The same keys written in
the same page's zero-to-jupyterhub ``values.yaml`` (merged over the
definitions as helm merges values files) give the same communities.
"""

from __future__ import annotations

import ast
import copy
import re
import textwrap

import pytest
import yaml
from traitlets.config import Config

from hubext.cli import check_config
from hubext.communities import configured_communities, parse_communities
from hubext.config_files import load_config

from .test_docs import DOC_FILES, REPO, helm_merge

PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
YAML_BLOCK = re.compile(r"^```ya?ml\n(.*?)^```", re.MULTILINE | re.DOTALL)

#: What the file defining the communities holds, as in the docs' examples.
DEFINITIONS = {
    "ocean-lab": {
        "display_name": "Ocean Modelling Lab",
        "members": [{"provider": "uni", "group": "ocean-lab"}],
    },
    "astro-101": {
        "display_name": "Astronomy 101 (workshop)",
        "members": [{"provider": "uni", "group": "astro-101"}],
    },
}

#: The top-level file of a hub configured in jupyterhub_config.d/ (the demo's).
TOP = (REPO / "jupyterhub_config.py").read_text()


def doc_snippets() -> dict:
    """``{doc: [Python examples calling add_to_community]}``."""
    found = {}
    for path in DOC_FILES:
        blocks = [
            m.group(1)
            for m in PYTHON_BLOCK.finditer(path.read_text())
            if "add_to_community(" in m.group(1)
        ]
        if blocks:
            found[path.relative_to(REPO).as_posix()] = blocks
    return found


SNIPPETS = doc_snippets()


def additions_in(code: str) -> list[tuple[str, dict]]:
    """``(slug, keys)`` of each ``add_to_community(c, slug, **keys)`` call, as
    written (literal values)."""
    calls = []
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == (
            "add_to_community"
        ):
            slug = ast.literal_eval(node.args[1])
            keys = {k.arg: ast.literal_eval(k.value) for k in node.keywords}
            calls.append((slug, keys))
    return calls


def hub_config_dir(tmp_path, snippets: list[str]):
    """A hub's configuration: the top file, the definitions, then each snippet
    in a file of its own (``c`` as each file gets it: empty)."""
    d = tmp_path / "jupyterhub_config.d"
    d.mkdir()
    (tmp_path / "jupyterhub_config.py").write_text(TOP)
    (d / "00-communities.py").write_text(
        f"c = get_config()\nc.Communities.communities = {DEFINITIONS!r}\n"
    )
    for i, code in enumerate(snippets):
        head = "" if "get_config()" in code else "c = get_config()\n"
        (d / f"50-doc-{i}.py").write_text(head + textwrap.dedent(code))
    return tmp_path / "jupyterhub_config.py"


def test_the_docs_show_the_way():
    assert set(SNIPPETS) >= {
        "docs/how-to/communities.md",
        "docs/how-to/limits.md",
        "docs/how-to/usage.md",
    }


@pytest.mark.parametrize(
    ("doc", "index"),
    [(doc, i) for doc, blocks in SNIPPETS.items() for i in range(len(blocks))],
)
def test_a_documented_snippet_adds_its_keys(tmp_path, doc, index):
    code = SNIPPETS[doc][index]
    expected = additions_in(code)
    assert expected, code
    config = load_config(str(hub_config_dir(tmp_path, [code])))
    raw = configured_communities(config)
    for slug, keys in expected:
        for key, value in keys.items():
            assert raw[slug][key] == value
        # and nothing of the definition is lost
        for key, value in DEFINITIONS[slug].items():
            assert raw[slug][key] == value
    # valid as the hub checks it at start-up
    communities = check_config(config)
    assert set(communities.registry) == set(DEFINITIONS)


@pytest.mark.parametrize("doc", sorted(SNIPPETS))
def test_the_same_keys_in_values_yaml_give_the_same_communities(tmp_path, doc):
    """z2jh: the keys under hub.config in a values file, helm-merged over the
    file that defines the communities, equal what add_to_community gives."""
    config = load_config(str(hub_config_dir(tmp_path, SNIPPETS[doc])))
    from_python = parse_communities(configured_communities(config))
    added_by_python = {
        (slug, key)
        for code in SNIPPETS[doc]
        for slug, keys in additions_in(code)
        for key in keys
    }
    base = {"hub": {"config": {"Communities": {"communities": DEFINITIONS}}}}
    compared = 0
    for match in YAML_BLOCK.finditer((REPO / doc).read_text()):
        values = yaml.safe_load(match.group(1))
        try:
            added = values["hub"]["config"]["Communities"]["communities"]
        except (KeyError, TypeError):
            continue
        merged = helm_merge(copy.deepcopy(base), values)
        hub_config = Config(merged["hub"]["config"])
        from_yaml = parse_communities(configured_communities(hub_config))
        for slug, keys in added.items():
            for key in keys:
                if (slug, key) in added_by_python:
                    assert from_yaml[slug].get(key) == from_python[slug].get(key)
                    compared += 1
    # each page shows the values.yaml way of what its examples add
    assert compared >= 1

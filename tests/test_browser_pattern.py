"""``validation_regex`` to HTML ``pattern``: the browser accepts what the hub accepts.

Each translation is compiled by Node (V8, the engine of Chromium) exactly as
a browser compiles a ``pattern`` attribute, ``new RegExp("^(?:" + p + ")$",
"v")``, and must accept and refuse the same sample strings as Python's
``re.fullmatch`` on the original.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest

from hubext.browser_pattern import browser_pattern

SAMPLES = [
    "",
    "a",
    "abc",
    "my-floats",
    "a-b",
    "ABC",
    "x1",
    "12",
    "١٢",  # Arabic-Indic digits: \d in Python
    "é",
    "日本",
    "_",
    "a b",
    "a\u2003b",  # EM SPACE
    "a\x1cb",  # Python's \s, not JavaScript's
    "a\ufeffb",  # JavaScript's \s, not Python's
    "a\nb",
    "a\rb",
    "x\n",
    "-",
    "(",
    "[x]",
    "{value}",
    "a|b",
    "a/b",
    "a&&b",
    "a--b",
    "😀",
    "v1.2.3",
    "ok-then; rm -rf",
]

TRANSLATABLE = [
    pytest.param("[a-z0-9-]{1,40}", id="demo-dataset"),
    pytest.param(r"[-a-z]+", id="leading-dash"),
    pytest.param(r"[a-z](?:[a-z0-9-]*[a-z0-9])?", id="dns-label"),
    pytest.param(r"[\w.-]+", id="word-dot-dash"),
    pytest.param(r"\d+(\.\d+)*", id="digits-groups"),
    pytest.param(r"v\d+\.\d+\.\d+", id="version"),
    pytest.param(r"[^\W\d]\w*", id="identifier"),
    pytest.param(r"\S+(\s\S+)*", id="spaces"),
    pytest.param(r"[()\[\]{}|/&]+", id="punctuation"),
    pytest.param(r"a|b|[xy]{2,3}?", id="branches"),
    pytest.param(r".*", id="any"),
    pytest.param(r"(?s).*", id="dotall"),
    pytest.param(r"(?a)\w+\s?\d*", id="ascii"),
    pytest.param(r"(?a)\bab\B.*", id="ascii-boundary"),
    pytest.param(r"\Aa.*\Z", id="anchors"),
    pytest.param(r"x$", id="dollar"),
    pytest.param(r"(?!rm)[a-z ;-]+", id="lookahead"),
    pytest.param(r".*(?<!-)", id="lookbehind"),
    pytest.param(r"[^-]+", id="negated"),
    pytest.param(r"\u00e9|\U0001F600|日本", id="non-ascii"),
    pytest.param(r"(?x) [a-z] + # a comment", id="verbose"),
]

UNTRANSLATABLE = [
    pytest.param(r"(?i)[a-z]+", id="ignorecase"),
    pytest.param(r"(?m)^a$", id="multiline"),
    pytest.param(r"(a)\1", id="backreference"),
    pytest.param(r"(?P<x>a)(?P=x)", id="named-backreference"),
    pytest.param(r"(a)?(?(1)b|c)", id="conditional"),
    pytest.param(r"\bword\b", id="unicode-boundary"),
    pytest.param(r"(?>a+)b", id="atomic"),
    pytest.param(r"a++", id="possessive"),
    pytest.param(r"a(?i:b)", id="scoped-flag"),
    pytest.param(r"[", id="invalid"),
]

NODE_CHECK = """
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
const results = cases.map(({ pattern, samples }) => {
  try {
    const re = new RegExp("^(?:" + pattern + ")$", "v");
    return samples.map((s) => re.test(s));
  } catch (e) {
    return e.message;
  }
});
process.stdout.write(JSON.stringify(results));
"""


def browser_results(cases: list[dict]) -> list:
    """What V8 says about each ``{pattern, samples}``: booleans, or its error."""
    node = shutil.which("node")
    assert node, "node is needed (Node 20, as for the demo)"
    out = subprocess.run(
        [node, "-e", NODE_CHECK],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(out.stdout)


def test_a_python_regex_copied_as_it_is_is_not_a_valid_pattern():
    """Why the translation exists: the demo's regex, copied, breaks in browsers."""
    [error] = browser_results([{"pattern": "[a-z0-9-]{1,40}", "samples": ["a"]}])
    assert "Invalid" in error


@pytest.mark.parametrize("regex", TRANSLATABLE)
def test_the_browser_accepts_what_the_hub_accepts(regex):
    pattern = browser_pattern(regex)
    assert pattern is not None
    # only ASCII letters, digits and escapes: nothing the v flag or HTML reads
    assert re.fullmatch(r"[A-Za-z0-9\\{}\[\]^$()?:=!<|,*+.-]*", pattern), pattern
    expected = [re.fullmatch(regex, s) is not None for s in SAMPLES]
    [got] = browser_results([{"pattern": pattern, "samples": SAMPLES}])
    assert got == expected, [
        (s, e) for s, e, g in zip(SAMPLES, expected, got, strict=True) if e != g
    ]


@pytest.mark.parametrize("regex", UNTRANSLATABLE)
def test_what_javascript_cannot_say_gets_no_pattern(regex):
    assert browser_pattern(regex) is None

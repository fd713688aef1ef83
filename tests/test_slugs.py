"""Slugs: community slug rules and collision-free safe slugs of any name."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubext.slugs import community_slug_problem, safe_slug

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


@pytest.mark.parametrize(
    ("slug", "ok"),
    [
        ("ocean-lab", True),
        ("a", True),
        ("0", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("Ocean", False),
        ("ocean_lab", False),
        ("ocean.lab", False),
        ("-a", False),
        ("a-", False),
        ("", False),
        ("a b", False),
        ("é", False),
    ],
)
def test_community_slug(slug, ok):
    assert (community_slug_problem(slug) is None) is ok


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("alice", "alice"),
        ("alice-smith", "alice-smith"),
        ("a1", "a1"),
    ],
)
def test_plain_names_are_kept(name, slug):
    assert safe_slug(name) == slug


@pytest.mark.parametrize(
    "name",
    [
        "Alice",
        "alice@github",
        "a--b",
        "-a",
        "a-",
        "..",
        "../etc",
        "a/b",
        "a\x00b",
        "\u0430lice",  # Cyrillic a
        "x" * 64,
        "",
    ],
)
def test_other_names_are_hashed_and_safe(name):
    slug = safe_slug(name)
    assert "---" in slug
    assert DNS_LABEL.fullmatch(slug), slug
    assert len(slug) <= 63
    assert "/" not in slug and ".." not in slug


def test_stable_across_releases():
    # Homes are stored under these names: this must never change.
    assert safe_slug("alice@github") == "alice-github---326c8a9f4a37aa04"
    assert safe_slug("..") == "x---5ec1f7e700f37c3d"


usernames = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"[a-z0-9-]{1,70}", fullmatch=True),
    st.from_regex(r"[a-zA-Z0-9._-]{1,39}@(github|cilogon|uni)", fullmatch=True),
    st.emails(),
)


@settings(max_examples=500, deadline=None)
@given(st.lists(usernames, min_size=2, max_size=20, unique=True))
def test_collision_free(names):
    slugs = [safe_slug(n) for n in names]
    assert len(set(slugs)) == len(slugs)
    for slug in slugs:
        assert DNS_LABEL.fullmatch(slug) and len(slug) <= 63

"""Slugs: community slug rules and collision-free safe slugs of any name."""

from __future__ import annotations

import re
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hubext.slugs import community_slug_problem, home_sub_path, safe_slug, stable_name

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


# -- 4. names ----------------------------------------------------------------------------


@settings(max_examples=500, deadline=None)
@given(
    st.sampled_from(["", "hx-", "hubext-", "a"]),
    st.text(max_size=200),
    st.integers(min_value=24, max_value=63),
)
def test_stable_name_is_a_short_dns_label(prefix, key, max_length):
    name = stable_name(prefix, key, max_length)
    assert DNS_LABEL.fullmatch(name), name
    assert len(name) <= max_length
    assert name.startswith(prefix)
    assert stable_name(prefix, key, max_length) == name


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=80),
            st.from_regex(r"[a-z0-9-]{1,63}/[a-z0-9-]{1,63}", fullmatch=True),
        ),
        min_size=2,
        max_size=30,
        unique=True,
    ),
    st.sampled_from([("hubext-", 63), ("hx-", 29), ("", 20)]),
)
def test_stable_names_of_distinct_keys_are_distinct(keys, shape):
    prefix, max_length = shape
    names = [stable_name(prefix, k, max_length) for k in keys]
    assert len(set(names)) == len(names)


def test_stable_name_never_exceeds_max_length():
    # Like safe_slug: either the name fits, or the length is refused.
    try:
        name = stable_name("hx-", "ocean-lab/datasets", 18)
    except ValueError:
        return
    assert len(name) <= 18, name


# Usernames as hubext makes them: the provider's name, then the default
# username_template "{username}@{provider}" (or a template without @provider).
github_logins = st.from_regex(
    r"[A-Za-z0-9]([A-Za-z0-9]|-[A-Za-z0-9]){0,19}", fullmatch=True
)
eppns = st.one_of(
    st.emails(),
    st.from_regex(
        r"[a-zA-Z0-9._%+-]{1,30}@[a-z0-9-]{1,20}\.(edu|org|ac\.uk)", fullmatch=True
    ),
)
look_alikes = st.text(
    st.sampled_from(
        "aliceALICE"
        "\uff41\uff4c\uff49\uff43\uff45"  # fullwidth alice
        "\u0430\u0435\u0441"  # Cyrillic a, e, c
        "\u212a\u0131\u0130"  # Kelvin sign, dotless i, dotted I
        "\u00e9e\u0301"  # precomposed and combining e-acute
        "./\\\0 @-_~"
    ),
    min_size=1,
    max_size=40,
)
oidc_names = st.one_of(
    st.text(max_size=300),
    st.text(st.characters(categories=["Cs", "Cc", "Zs", "Lo"]), max_size=20),
    look_alikes,
    st.sampled_from(["..", ".", "../..", "a/../b", "/", "a\0b", "x" * 1000, ""]),
)
providers = st.sampled_from(["github", "cilogon", "uni", "keycloak-2"])
usernames = st.one_of(
    st.tuples(github_logins, st.just("github")).map("{0[0]}@{0[1]}".format),
    st.tuples(eppns, st.just("cilogon")).map("{0[0]}@{0[1]}".format),
    st.tuples(oidc_names, providers).map("{0[0]}@{0[1]}".format),
    github_logins,
    eppns,
    oidc_names,
)


def assert_one_safe_component(sub_path: str) -> None:
    assert "/" not in sub_path and "\\" not in sub_path
    assert sub_path not in ("", ".", "..")
    assert "\0" not in sub_path
    assert sub_path.isascii() and sub_path.isprintable()
    assert len(sub_path) <= 63
    assert DNS_LABEL.fullmatch(sub_path), sub_path


@settings(max_examples=1000, deadline=None)
@given(usernames)
def test_home_sub_path_is_one_safe_component(username):
    sub_path = home_sub_path(username)
    assert_one_safe_component(sub_path)
    assert home_sub_path(username) == sub_path
    assert home_sub_path(username, "homes") == f"homes/{sub_path}"


@settings(max_examples=500, deadline=None)
@given(st.lists(usernames, min_size=2, max_size=30, unique=True))
def test_home_sub_paths_of_distinct_usernames_are_distinct(names):
    sub_paths = [home_sub_path(n) for n in names]
    assert len(set(sub_paths)) == len(sub_paths)


def test_look_alikes_and_case_get_their_own_homes():
    names = [
        "alice@uni",
        "Alice@uni",
        "ALICE@uni",
        "\uff41\uff4c\uff49\uff43\uff45@uni",  # fullwidth
        "\u0430lice@uni",  # Cyrillic a
        unicodedata.normalize("NFC", "ren\u00e9@uni"),
        unicodedata.normalize("NFD", "ren\u00e9@uni"),
        "alice",
        "alice-uni",
    ]
    sub_paths = [home_sub_path(n) for n in names]
    assert len(set(sub_paths)) == len(names)
    for sub_path in sub_paths:
        assert_one_safe_component(sub_path)


#: The storage contract: homes on shared storage live under these names.
#: They must NEVER change (an upgrade would lose people's homes); a change of
#: scheme needs a migration, not an edit of this table.
HOME_SUB_PATHS = {
    "alice": "alice",
    "alice-smith": "alice-smith",
    "alice@github": "alice-github---326c8a9f4a37aa04",
    "Alice-Smith@github": "alice-smith-github---2960e6f9a50a5d11",
    "jdoe@ocean.example.org@cilogon": "jdoe-ocean-example-org-cilogon---29d984b791928ffb",
    "\uff41\uff4c\uff49\uff43\uff45@uni": "uni---965b8eb4522f20da",
    "../../etc@uni": "etc-uni---fd06f22432e69ebd",
}


@pytest.mark.parametrize(("username", "sub_path"), HOME_SUB_PATHS.items())
def test_home_sub_path_golden_values(username, sub_path):
    assert home_sub_path(username) == sub_path


#: The storage contract of shared folders: Kubernetes volume names
#: (``hubext-``, 63) and hubext-local's system groups (``hx-``, 29 before
#: ``-ro``/``-rw``) are made from a folder's key ``<community>/<name>``.
#: They must NEVER change: a group name is on the folders' ACLs.
STABLE_NAMES = {
    ("hubext-", "ocean-lab/datasets", 63): "hubext-ocean-lab-datasets-9efba7f8ac6c1a0c",
    ("hx-", "ocean-lab/datasets", 29): "hx-ocean-lab-9efba7f8ac6c1a0c",
    ("hubext-", "astro-101/scratch", 63): "hubext-astro-101-scratch-5af857426a874ead",
    ("hx-", "astro-101/scratch", 29): "hx-astro-101-5af857426a874ead",
    ("hubext-", "Ocean_Lab/Big Data", 63): "hubext-ocean-lab-big-data-02d643ef11dcc524",
    ("hx-", "lab/--", 29): "hx-lab-236d2f691df4eae8",
    ("hubext-", "a" * 40 + "/" + "b" * 40, 63): (
        "hubext-" + "a" * 39 + "-a5710c34e5369dda"
    ),
}


@pytest.mark.parametrize(("arguments", "name"), STABLE_NAMES.items())
def test_stable_name_golden_values(arguments, name):
    assert stable_name(*arguments) == name

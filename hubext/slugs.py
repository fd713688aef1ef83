"""Naming rules: community slugs and safe slugs of arbitrary names.

Pure functions, no I/O.

Community slugs are chosen by the hub admin and validated strictly: they become
JupyterHub group names, Kubernetes label values and parts of volume names, so
they must be valid in all three without any escaping.

:func:`safe_slug` turns an arbitrary string (a username from any identity
provider) into a name that is safe as a single path component, a Kubernetes
label value and a DNS-1123 label, such that

- a name that is already safe is returned unchanged (readable and stable);
- any other name gets a readable prefix, ``---`` and a hash of the original;
- two different names never give the same slug: safe names never contain
  ``--``, hashed ones always contain ``---``; two hashed slugs differ unless 64
  bits of SHA-256 collide.

This scheme is part of hubext's storage contract: homes are stored under these
slugs, so it never changes without a migration.
"""

from __future__ import annotations

import hashlib
import re

#: Longest community slug: the limit of a Kubernetes label value / DNS-1123 label.
#: The account charged for servers started with a profile of no community
#: (the usage ledger, limits, prices): never a community slug, which has
#: no ``_``.
HUB_ACCOUNT = "_hub"

COMMUNITY_SLUG_MAX_LENGTH = 63

COMMUNITY_SLUG_PATTERN = r"[a-z0-9]([a-z0-9-]*[a-z0-9])?"
_COMMUNITY_SLUG_RE = re.compile(COMMUNITY_SLUG_PATTERN)

# A "plain" name: lowercase alphanumerics separated by single hyphens.
_PLAIN_RE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
_UNSAFE_RUN_RE = re.compile(r"[^a-z0-9]+")
_HASH_LENGTH = 16
_SEPARATOR = "---"


def community_slug_problem(slug: object) -> str | None:
    """Why ``slug`` is not a valid community slug, or None if it is."""
    if not isinstance(slug, str):
        return f"slug must be a string, got {type(slug).__name__}"
    if not slug:
        return "slug must not be empty"
    if len(slug) > COMMUNITY_SLUG_MAX_LENGTH:
        return (
            f"slug is {len(slug)} characters long; at most "
            f"{COMMUNITY_SLUG_MAX_LENGTH} (a Kubernetes label value)"
        )
    if not _COMMUNITY_SLUG_RE.fullmatch(slug):
        return (
            "slug must match "
            f"{COMMUNITY_SLUG_PATTERN!r} (lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)"
        )
    return None


def safe_slug(name: str, max_length: int = 63) -> str:
    """A collision-free slug of ``name``, safe as a path component and DNS label.

    >>> safe_slug("alice")
    'alice'
    >>> safe_slug("Alice@example.org")
    'alice-example-org---0d0f1d3e0b8b4b8e'  # doctest: +SKIP
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be str, not {type(name).__name__}")
    minimum = len(_SEPARATOR) + _HASH_LENGTH + 1
    if max_length < minimum:
        raise ValueError(f"max_length must be at least {minimum}")
    if len(name) <= max_length and _PLAIN_RE.fullmatch(name):
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    prefix = _UNSAFE_RUN_RE.sub("-", name.lower()).strip("-")
    prefix = prefix[: max_length - len(_SEPARATOR) - _HASH_LENGTH].rstrip("-")
    return f"{prefix or 'x'}{_SEPARATOR}{digest[:_HASH_LENGTH]}"


# -- names built on slugs -----------------------------------------------------


def stable_name(prefix: str, key: str, max_length: int) -> str:
    """``prefix`` + a readable part of ``key`` + a hash of ``key``.

    DNS-1123-safe when ``prefix`` is, at most ``max_length`` long, and two
    different keys never give the same name (64 bits of SHA-256).
    """
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    if max_length < len(prefix) + len(digest):
        raise ValueError(f"max_length must be at least {len(prefix) + len(digest)}")
    readable = re.sub(r"[^a-z0-9]+", "-", key.lower()).strip("-")
    room = max_length - len(prefix) - len(digest) - 1
    readable = readable[: max(room, 0)].rstrip("-")
    return f"{prefix}{readable}-{digest}" if readable else f"{prefix}{digest}"


def home_sub_path(username: str, prefix: str = "") -> str:
    """The folder of ``username``'s home on shared storage.

    ``safe_slug(username)``, under ``prefix``: a single path component that
    cannot escape (no ``/``, ``..``, NUL or look-alike characters), is the
    same across hubext upgrades, and differs for different usernames.
    """
    slug = safe_slug(username)
    return f"{prefix}/{slug}" if prefix else slug

"""The changes a community's admins make to its settings, as pure edits.

Each edit takes the stored document (:mod:`hubext.delegated`'s shape; None
when nothing was stored) and what the admin asked for, and returns an
:class:`Edit`: the new document, the audit log's action, and which parts of
the document the edit touches. :func:`problems` then checks the new
document against today's bounds (:func:`hubext.delegated.parse_delegated`)
and keeps the errors of the touched parts, each naming its field:

- what an edit adds or changes must be within today's bounds (an image,
  a software environment, sizes, the idle timeout; adding an environment
  past ``max_profiles``);
- what it leaves as it was is not checked again: when the operator
  tightened the bounds, a stored environment outside them is not applied
  (it "needs attention") and must not block removing it, reordering, or
  changing the idle timeout. Replacing the whole document checks all of it.

Structural mistakes (an environment that does not exist, an order that
does not name each environment once) raise :class:`EditError`. The REST API
and the page's forms make the same edits. Pure: no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .._validation import ConfigError, errors_of, show
from ..delegated import ROOT, SpawnerKind, parse_delegated
from ..self_service import SelfService

#: The audit log's actions, one per kind of change.
ADD = "environment.add"
EDIT = "environment.edit"
REMOVE = "environment.remove"
REORDER = "environments.reorder"
DEFAULT = "environments.default"
IDLE_TIMEOUT = "idle_timeout.set"
REPLACE = "settings.replace"
ACTIONS = (ADD, EDIT, REMOVE, REORDER, DEFAULT, IDLE_TIMEOUT, REPLACE)

ENVIRONMENTS = ROOT.attr("environments")


class EditError(Exception):
    """An edit that cannot be made as asked: ``status`` (400, or 404 for an
    environment that does not exist), the ``field`` and what is wrong."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        self.field = field
        self.message = message
        self.status = status
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Edit:
    """A change to a community's settings, ready to be checked and stored."""

    action: str
    #: the whole new document
    document: dict[str, Any]
    #: key paths (``settings.environments[2]``) whose errors refuse the edit
    touched: tuple[str, ...]

    def concerns(self, path: str) -> bool:
        """Whether an error at ``path`` is about what this edit touches."""
        return any(
            path == t or path.startswith((t + ".", t + "[")) for t in self.touched
        )


def _document(stored: Mapping[str, Any] | None) -> dict[str, Any]:
    return copy.deepcopy(dict(stored)) if isinstance(stored, Mapping) else {}


def _environments(document: dict[str, Any]) -> list[Any]:
    entries = document.get("environments")
    if not isinstance(entries, list):
        entries = []
    document["environments"] = entries
    return entries


def _slug_of(entry: Any) -> Any:
    return entry.get("slug") if isinstance(entry, Mapping) else None


def _index(entries: list[Any], slug: str) -> int:
    for i, entry in enumerate(entries):
        if _slug_of(entry) == slug:
            return i
    raise EditError("environment", f"no environment {show(slug)}", status=404)


def _environment(entry: Any, field: str = "environment") -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise EditError(field, f"expected an object, got {show(entry)}")
    return copy.deepcopy(dict(entry))


def _the_only_default(entries: list[Any], keep: int) -> None:
    """Entry ``keep`` is the default: the others are not."""
    for i, entry in enumerate(entries):
        if i != keep and isinstance(entry, dict):
            entry.pop("default", None)


def _taken(entries: list[Any], slug: Any, index: int) -> None:
    for i, entry in enumerate(entries):
        if i != index and slug is not None and _slug_of(entry) == slug:
            raise EditError(
                str(ENVIRONMENTS[index].attr("slug")),
                f"{show(slug)} is taken by another environment",
            )


def add_environment(stored: Mapping | None, entry: Any) -> Edit:
    """Add an environment at the end of the list (``default: true`` makes it
    the one default)."""
    document = _document(stored)
    entries = _environments(document)
    new = _environment(entry)
    index = len(entries)
    _taken(entries, _slug_of(new), index)
    entries.append(new)
    if new.get("default") is True:
        _the_only_default(entries, index)
    # the count too: adding one may pass max_profiles
    return Edit(ADD, document, (str(ENVIRONMENTS[index]), str(ENVIRONMENTS)))


def edit_environment(stored: Mapping | None, slug: str, entry: Any) -> Edit:
    """Replace the environment ``slug`` (its slug may change) where it is."""
    document = _document(stored)
    entries = _environments(document)
    index = _index(entries, slug)
    new = _environment(entry)
    _taken(entries, _slug_of(new), index)
    entries[index] = new
    if new.get("default") is True:
        _the_only_default(entries, index)
    return Edit(EDIT, document, (str(ENVIRONMENTS[index]),))


def remove_environment(stored: Mapping | None, slug: str) -> Edit:
    """Remove the environment ``slug``."""
    document = _document(stored)
    entries = _environments(document)
    del entries[_index(entries, slug)]
    return Edit(REMOVE, document, ())


def reorder_environments(stored: Mapping | None, order: Any) -> Edit:
    """Put the environments in ``order`` (a list naming each slug once)."""
    document = _document(stored)
    entries = _environments(document)
    if not isinstance(order, list) or not all(isinstance(s, str) for s in order):
        raise EditError("order", f"expected a list of slugs, got {show(order)}")
    slugs = [_slug_of(entry) for entry in entries]
    if sorted(order, key=str) != sorted(slugs, key=str) or len(set(order)) != len(
        order
    ):
        missing = [s for s in slugs if s not in order]
        unknown = [s for s in order if s not in slugs]
        twice = sorted({s for s in order if order.count(s) > 1})
        parts = [
            f"{what} {', '.join(show(s) for s in items)}"
            for what, items in (
                ("missing", missing),
                ("unknown", unknown),
                ("named twice", twice),
            )
            if items
        ]
        raise EditError("order", "must name each environment once: " + "; ".join(parts))
    position = {slug: i for i, slug in enumerate(order)}
    document["environments"] = sorted(entries, key=lambda e: position[_slug_of(e)])
    return Edit(REORDER, document, ())


def set_default(stored: Mapping | None, slug: Any) -> Edit:
    """Make ``slug`` the default environment (None: none is)."""
    document = _document(stored)
    entries = _environments(document)
    if slug is None:
        _the_only_default(entries, -1)
        return Edit(DEFAULT, document, ())
    if not isinstance(slug, str):
        raise EditError("default", f"expected a slug or null, got {show(slug)}")
    try:
        index = _index(entries, slug)
    except EditError:
        raise EditError("default", f"no environment {show(slug)}") from None
    entries[index]["default"] = True
    _the_only_default(entries, index)
    # an environment outside today's bounds may not become the default
    return Edit(DEFAULT, document, (str(ENVIRONMENTS[index]),))


def set_idle_timeout(stored: Mapping | None, seconds: Any) -> Edit:
    """Set the idle timeout in seconds (None: the hub's configuration's)."""
    document = _document(stored)
    if seconds is None:
        document.pop("idle_timeout", None)
    else:
        document["idle_timeout"] = seconds
    return Edit(IDLE_TIMEOUT, document, (str(ROOT.attr("idle_timeout")),))


def replace(stored: Mapping | None, document: Any) -> Edit:
    """Replace the whole document (checked whole)."""
    if not isinstance(document, Mapping):
        raise EditError("settings", f"expected an object, got {show(document)}")
    return Edit(REPLACE, copy.deepcopy(dict(document)), (str(ROOT),))


def problems(edit: Edit, service: SelfService, kind: SpawnerKind) -> list[ConfigError]:
    """The errors of ``edit``'s document that concern what it touches (none:
    it may be stored), each naming its field and the bound it breaks."""
    try:
        parse_delegated(edit.document, service, kind)
    except ConfigError as e:
        return [error for error in errors_of(e) if edit.concerns(error.path)]
    return []


def field_of(path: str) -> str:
    """The field an error's key path ends with (``image`` for
    ``settings.environments[0].image``), for a form."""
    last = path.rpartition(".")[2]
    return last.split("[", 1)[0]

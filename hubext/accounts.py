"""Who owns a hub account: usernames and the identity bound to each. Pure.

One person, one account. A hub username is made from the provider's username
(through the provider's ``username_template``) and normalized once, by
:func:`normalize_username`, before any check looks at it. Different names at
a provider can give the same hub username (``Alice`` and ``alice``; ``K``
and U+212A KELVIN SIGN; fullwidth letters and their ASCII forms), and a provider may hand a
released name to somebody new. So the first sign-in of a hub account binds
it to the provider and the provider's stable subject (OpenID Connect
``sub``, GitHub's numeric account id); every later sign-in or refresh of
that account must come from the same provider and subject, or it is refused.

The binding is kept in the user's ``auth_state`` under ``hubext``, which the
hub stores encrypted (``JUPYTERHUB_CRYPT_KEY``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

#: The key of hubext's own part of a user's auth_state.
AUTH_STATE_KEY = "hubext"


def normalize_username(name: str) -> str:
    """The hub username for ``name``: Unicode NFKC, then lowercase.

    NFKC folds compatibility characters into their plain forms (fullwidth
    letters, ligatures, U+212A KELVIN SIGN into ``K``), and ``lower()`` is
    what JupyterHub's own normalization does, so the result is a fixed point
    of JupyterHub's ``normalize_username``: it is what the hub stores, checks
    ``admin_users``, ``allowed_users`` and ``blocked_users`` against, and
    binds to one identity.
    """
    normalized = unicodedata.normalize("NFKC", name).lower()
    # lower() can leave a string that NFKC changes again (rare); repeat to a
    # fixed point so that normalizing twice gives the same name.
    for _ in range(3):
        again = unicodedata.normalize("NFKC", normalized).lower()
        if again == normalized:
            break
        normalized = again
    return normalized


@dataclass(frozen=True)
class Binding:
    """The identity a hub account belongs to."""

    provider: str
    #: The provider's stable id of the person; None in accounts signed in
    #: before hubext recorded subjects (bound at their next sign-in).
    subject: str | None

    def as_dict(self) -> dict:
        return {"provider": self.provider, "subject": self.subject}


def stored_binding(auth_state: Mapping | None) -> Binding | None:
    """The binding recorded in a user's auth_state, or None if there is none."""
    state = (auth_state or {}).get(AUTH_STATE_KEY)
    if not isinstance(state, Mapping) or not isinstance(state.get("provider"), str):
        return None
    subject = state.get("subject")
    return Binding(state["provider"], subject if isinstance(subject, str) else None)


def binding_conflict(stored: Binding | None, new: Binding) -> str | None:
    """Why a sign-in as ``new`` may not use an account bound to ``stored``.

    None when the account is unbound, or bound to the same identity. An
    account recorded before subjects were kept (``stored.subject is None``)
    accepts the first subject of the same provider.
    """
    if stored is None:
        return None
    if stored.provider != new.provider:
        return "it belongs to a person who signs in through another provider"
    if stored.subject is not None and stored.subject != new.subject:
        return "it belongs to another person at the same provider"
    return None

"""``hubext starter-config``: a complete, commented configuration to start from.

``hubext starter-config one-machine`` writes a ``jupyterhub_config.py`` for
one machine (``hubext-local``), ``hubext starter-config z2jh`` a
``values.yaml`` for zero-to-jupyterhub (``hubext-kube``). Both are rendered
from the templates in ``hubext/starter_files/``, which the wheel ships:
an OpenID Connect provider, one example community with a profile, a shared
folder and an idle policy, the culler, and (one machine) the homes and the
hub's state beside the file. Secrets are never written: the file reads
them from the environment (one machine) or a Kubernetes secret (z2jh).

``--oidc-issuer`` fills in the provider's endpoints from its discovery
document (OpenID Connect Discovery 1.0), ``--hub-url`` the redirect URI to
register there, ``--client-id`` the client; what is not given stays an
example value, and the command says which.

Exit status (as ``hubext check-config``): 0 written; 1 the file exists
(without ``--force``) or cannot be written, or the discovery document cannot
be read or is not valid; 2 bad arguments. Errors are one line on standard
error.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import sys
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from jinja2 import Environment, PackageLoader, StrictUndefined

from ._version import __version__

#: The name of the identity provider in the written configuration: the
#: templates use it in the rules and the redirect URI is built from it.
PROVIDER_NAME = "oidc"

EXAMPLE_HUB_URL = "https://hub.example.org"
EXAMPLE_ISSUER = "https://login.example.org"
EXAMPLE_CLIENT_ID = "hubext"
#: The example endpoints, at ``EXAMPLE_ISSUER``.
EXAMPLE_ENDPOINTS = {
    "authorize_url": f"{EXAMPLE_ISSUER}/auth",
    "token_url": f"{EXAMPLE_ISSUER}/token",
    "userdata_url": f"{EXAMPLE_ISSUER}/userinfo",
    "end_session_url": f"{EXAMPLE_ISSUER}/logout",
}
#: The discovery document's names of the endpoints (OpenID Connect
#: Discovery 1.0, section 3), by the provider's setting they fill.
DISCOVERY_KEYS = {
    "authorize_url": "authorization_endpoint",
    "token_url": "token_endpoint",
    "userdata_url": "userinfo_endpoint",
    "end_session_url": "end_session_endpoint",
}
#: Endpoints the sign-in cannot do without (end-session is optional).
REQUIRED_ENDPOINTS = ("authorize_url", "token_url", "userdata_url")
BASE_SCOPES = ["openid", "email", "profile"]
#: Hosts on which plain http is accepted (a provider or hub for testing).
LOOPBACK_NAMES = ("localhost",)
DISCOVERY_TIMEOUT = 10


@dataclass(frozen=True)
class Target:
    template: str
    default_output: str
    description: str


TARGETS = {
    "one-machine": Target(
        "jupyterhub_config.py.tmpl",
        "jupyterhub_config.py",
        "a jupyterhub_config.py for one machine (hubext-local)",
    ),
    "z2jh": Target(
        "values.yaml.tmpl",
        "values.yaml",
        "a values.yaml for zero-to-jupyterhub (hubext-kube)",
    ),
}


class UsageError(Exception):
    """A bad argument: exit status 2."""


class Failure(Exception):
    """The file could not be made: exit status 1."""


@dataclass
class Settings:
    """What the written file says about this hub and its provider."""

    hub_url: str = EXAMPLE_HUB_URL
    client_id: str = EXAMPLE_CLIENT_ID
    issuer: str | None = None
    endpoints: dict[str, str] = field(default_factory=lambda: dict(EXAMPLE_ENDPOINTS))
    scope: list[str] = field(default_factory=lambda: [*BASE_SCOPES, "groups"])
    #: Which settings still hold example values (for the command's message).
    examples: list[str] = field(default_factory=list)

    @property
    def oauth_callback_url(self) -> str:
        return f"{self.hub_url}/hub/{PROVIDER_NAME}/oauth_callback"


# -- checking the arguments (no I/O) ----------------------------------------


def _is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(value: str, what: str) -> str:
    """``value`` as a base URL (no trailing ``/``), or :class:`UsageError`.

    https, or http on the loopback address only (a provider or hub for
    testing): tokens and secrets go through these URLs.
    """
    if not isinstance(value, str) or not value.isprintable() or " " in value:
        raise UsageError(f"{what}: not a URL: {value!r}")
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UsageError(f"{what}: expected an https:// URL, got {value!r}")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise UsageError(
            f"{what}: {value!r} is plain http; use https (http only on the "
            "loopback address, for testing)"
        )
    if parts.query or parts.fragment:
        raise UsageError(f"{what}: no query or fragment expected, got {value!r}")
    return value.rstrip("/")


def check_client_id(value: str) -> str:
    if not value or len(value) > 200 or not value.isprintable() or " " in value:
        raise UsageError(
            f"--client-id: expected the client's id at the provider (printable, "
            f"no spaces, at most 200 characters), got {value!r}"
        )
    return value


# -- the provider's discovery document ----------------------------------------


def discovery_url(issuer: str) -> str:
    return f"{issuer}/.well-known/openid-configuration"


def settings_from_discovery(issuer: str, document) -> tuple[dict[str, str], list]:
    """``(endpoints, scope)`` from a discovery document, or :class:`Failure`.

    The document must name ``issuer`` as its issuer (OpenID Connect
    Discovery 1.0, 4.3), and the endpoints must be https (or loopback http).
    """
    where = discovery_url(issuer)
    if not isinstance(document, dict):
        raise Failure(f"{where}: not a discovery document (expected a JSON object)")
    said = document.get("issuer")
    if not isinstance(said, str) or said.rstrip("/") != issuer:
        raise Failure(
            f"{where}: the provider's issuer is {said!r}, not {issuer!r}; "
            "give --oidc-issuer exactly as the provider names itself"
        )
    endpoints = {}
    for setting, key in DISCOVERY_KEYS.items():
        value = document.get(key)
        if value is None and setting not in REQUIRED_ENDPOINTS:
            continue
        if value is None:
            raise Failure(f"{where}: no {key}; hubext needs it to sign people in")
        try:
            endpoints[setting] = check_url(value, f"{where}: {key}")
        except UsageError as e:
            raise Failure(str(e)) from None
    supported = document.get("scopes_supported")
    scope = [*BASE_SCOPES]
    if not isinstance(supported, list) or "groups" in supported:
        scope.append("groups")
    return endpoints, scope


def fetch_discovery(issuer: str):
    """The provider's discovery document (parsed JSON), or :class:`Failure`."""
    where = discovery_url(issuer)
    try:
        response = requests.get(where, timeout=DISCOVERY_TIMEOUT)
    except requests.RequestException as e:
        raise Failure(f"cannot read {where}: {type(e).__name__}") from None
    if response.status_code != 200:
        raise Failure(f"cannot read {where}: HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise Failure(f"{where}: not JSON") from None


# -- rendering (no I/O but the package's templates) ---------------------------


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("hubext", "starter_files"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    # A string or list as a literal that Python and YAML read alike.
    env.filters["q"] = json.dumps
    return env


def render(target: str, settings: Settings) -> str:
    """The text of the starting configuration ``target`` for ``settings``."""
    endpoints = {**EXAMPLE_ENDPOINTS, **settings.endpoints}
    return (
        _environment()
        .get_template(TARGETS[target].template)
        .render(
            version=__version__,
            hub_url=settings.hub_url,
            client_id=settings.client_id,
            issuer=settings.issuer,
            oauth_callback_url=settings.oauth_callback_url,
            scope=settings.scope,
            **endpoints,
        )
    )


def make_settings(args: argparse.Namespace) -> Settings:
    """The settings the arguments ask for; the provider's from its discovery."""
    settings = Settings()
    if args.hub_url is not None:
        settings.hub_url = check_url(args.hub_url, "--hub-url")
    else:
        settings.examples.append(f"the hub's URL, {EXAMPLE_HUB_URL} (--hub-url)")
    if args.client_id is not None:
        settings.client_id = check_client_id(args.client_id)
    else:
        settings.examples.append(f"the client id, {EXAMPLE_CLIENT_ID} (--client-id)")
    if args.oidc_issuer is not None:
        issuer = check_url(args.oidc_issuer, "--oidc-issuer")
        endpoints, scope = settings_from_discovery(issuer, fetch_discovery(issuer))
        settings.issuer, settings.endpoints, settings.scope = issuer, endpoints, scope
    else:
        settings.examples.append(
            f"the provider's endpoints, at {EXAMPLE_ISSUER} (--oidc-issuer)"
        )
    return settings


# -- the command ---------------------------------------------------------------


def write(path: str, text: str, force: bool) -> None:
    """Write ``text`` to ``path``; an existing file only with ``force``."""
    try:
        with open(path, "w" if force else "x", encoding="utf-8") as f:
            f.write(text)
    except FileExistsError:
        raise Failure(f"{path} exists; --force replaces it") from None
    except OSError as e:
        raise Failure(f"cannot write {path}: {e.strerror}") from None


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``starter-config`` to the ``hubext`` command's subcommands."""
    parser = commands.add_parser(
        "starter-config",
        help="write a complete, commented configuration to start from",
        description="Write a starting configuration: "
        + "; ".join(f"{name}: {t.description}" for name, t in TARGETS.items())
        + ". Secrets are not written: the file reads them from the environment "
        "(one-machine) or from a Kubernetes secret (z2jh).",
    )
    parser.add_argument("target", choices=list(TARGETS))
    parser.add_argument(
        "-o",
        "--output",
        metavar="PATH",
        help="the file to write (default: jupyterhub_config.py or values.yaml "
        "in the current directory)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace the file if it exists"
    )
    parser.add_argument(
        "--hub-url",
        metavar="URL",
        help="the hub's public URL, e.g. https://hub.example.org: the redirect "
        "URI registered at the provider is built from it",
    )
    parser.add_argument(
        "--oidc-issuer",
        metavar="URL",
        help="the OpenID Connect provider's issuer URL: its endpoints are read "
        "from URL/.well-known/openid-configuration",
    )
    parser.add_argument(
        "--client-id", metavar="ID", help="this hub's client id at the provider"
    )


def run(args: argparse.Namespace) -> int:
    target = TARGETS[args.target]
    path = args.output or target.default_output
    try:
        settings = make_settings(args)
        write(path, render(args.target, settings), args.force)
    except UsageError as e:
        print(f"hubext: {e}", file=sys.stderr)
        return 2
    except Failure as e:
        print(f"hubext: {e}", file=sys.stderr)
        return 1
    print(f"Wrote {path}: {target.description}.")
    print(
        "Register the hub at the identity provider as a confidential client "
        f"with the redirect URI {settings.oauth_callback_url}"
    )
    if settings.examples:
        print(
            "Still example values (edit them in the file, or write it again "
            "with --force and these options):"
        )
        for example in settings.examples:
            print(f"  - {example}")
    if args.target == "one-machine":
        print(
            "Then set JUPYTERHUB_CRYPT_KEY and HUBEXT_OIDC_CLIENT_SECRET, and "
            f"check it: hubext check-config {os.path.relpath(path)}"
        )
    else:
        print(
            "Then build the hub image and create the secret hubext-oidc "
            "(the install page says how)."
        )
    return 0

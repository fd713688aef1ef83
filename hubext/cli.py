"""The ``hubext`` command: ``hubext check-config PATH`` and ``hubext usage report``.

Loads a JupyterHub configuration file the way JupyterHub does (so
``load_subconfig`` of ``jupyterhub_config.d/*.py`` works), runs the same
validation the hub runs at start-up, and prints the communities as a table.
Exit status 0 when the configuration is valid; 1 when it is not, with one
line per error (every error of the configuration, each with its key path);
2 for usage errors.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from jupyterhub.app import JupyterHub
from traitlets.config import Config

from . import starter
from ._validation import ConfigError, errors_of, plural
from ._version import __version__
from .authenticator import CommunityAuthenticator
from .communities import Communities
from .config_files import load_config, load_error
from .config_reading import resolve_class
from .limits import describe
from .startup import check_configuration
from .usage import command as usage_command


def check_config(
    config: Config, environ: Mapping[str, str] | None = None
) -> Communities:
    """Run hubext's start-up validation on ``config``.

    The same checks as the hub's start-up (:func:`hubext.startup.check_configuration`),
    then the authenticator is built as the hub builds it. ``environ``: the
    environment the hub runs in (its ``JUPYTERHUB_CRYPT_KEY`` is checked);
    None leaves it out. Raises :class:`~hubext._validation.ConfigErrors`
    with every error found.
    """
    quiet = logging.getLogger("hubext.check-config")
    quiet.disabled = True
    hub = config.get("JupyterHub", {})
    # JupyterHub's own defaults when they are not set, as the hub would run
    defaults = JupyterHub.class_traits()
    authenticator_class = hub.get(
        "authenticator_class", defaults["authenticator_class"].default_value
    )
    registry = check_configuration(
        config,
        authenticator_class=authenticator_class,
        spawner_class=hub.get("spawner_class", defaults["spawner_class"].default_value),
        environ=environ,
    )
    cls = resolve_class(authenticator_class, "jupyterhub.authenticators")
    if isinstance(cls, type) and issubclass(cls, CommunityAuthenticator):
        cls(config=config, log=quiet)
    return Communities.from_registry(registry, config=config, log=quiet)


def format_table(communities: Communities) -> str:
    headers = (
        "community",
        "display name",
        "member rules",
        "admin rules",
        "default profile",
        "shared folders",
        "limits",
    )
    rows = [
        (
            c.slug,
            c.display_name,
            str(len(c.members)),
            str(len(c.admins)),
            c.default_profile or "-",
            ", ".join(f.name for f in c.shared_data) or "-",
            describe(c.limits),
        )
        for c in communities
    ]
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    ]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in rows
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hubext", description="Tools for hubs configured with hubext."
    )
    parser.add_argument("--version", action="version", version=f"hubext {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check-config",
        help="validate a jupyterhub_config.py and list its communities",
    )
    check.add_argument("path", help="path to jupyterhub_config.py")
    usage_command.add_parser(commands)
    starter.add_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "usage":
        return usage_command.run(args)
    if args.command == "starter-config":
        return starter.run(args)

    if not os.path.isfile(args.path):
        print(f"hubext: no such file: {args.path}", file=sys.stderr)
        return 2
    try:
        config = load_config(args.path)
    except Exception as e:
        for line in load_error(e, args.path):
            print(line, file=sys.stderr)
        return 1
    try:
        communities = check_config(config, os.environ)
    except ConfigError as e:
        errors = errors_of(e)
        for error in errors:
            print(f"hubext: invalid configuration: {error}", file=sys.stderr)
        if len(errors) > 1:
            print(f"hubext: {len(errors)} configuration errors", file=sys.stderr)
        return 1
    print(format_table(communities))
    count = len(communities)
    print(
        f"\n{count} {plural(count, 'community', 'communities')}; "
        "configuration is valid."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

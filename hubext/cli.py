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
import linecache
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence

from jupyterhub.app import JupyterHub
from traitlets.config import Config, PyFileConfigLoader

from . import __version__, starter
from ._validation import SECRET_WORDS, ConfigError, errors_of, plural
from .authenticator import CommunityAuthenticator
from .communities import Communities
from .config_reading import resolve_class
from .limits import describe
from .startup import check_configuration
from .usage import command as usage_command


def load_config(path: str) -> Config:
    directory, filename = os.path.split(os.path.abspath(path))
    return PyFileConfigLoader(filename, path=directory).load_config()


#: An item of a setting read in a file loaded with ``load_subconfig()``:
#: ``c.Section.name[...]``, where ``c`` starts empty.
_INDEXED_SETTING = re.compile(r"\bc\.([A-Z]\w*)\.([a-z_]\w*)\s*\[")
#: ``c.Communities.communities["slug"]["key"]``
_COMMUNITY_KEY = re.compile(
    r"""c\.Communities\.communities\[\s*(['"])(?P<slug>[^'"]+)\1\s*\]"""
    r"""\[\s*(['"])(?P<key>\w+)\3\s*\]"""
)


def load_error(error: BaseException, path: str) -> list[str]:
    """What to say when loading the configuration file ``path`` raised ``error``.

    The first line names the file and line that raised, the innermost
    configuration file's (one of ``jupyterhub_config.d/`` loaded with
    ``load_subconfig()``, not just ``path``), and the error; the second
    shows that line of code (unless it may hold a secret). An item of a
    setting indexed in a file that starts with an empty ``c`` gets a third
    line saying why it failed and what works instead.
    """
    where = code = None
    if isinstance(error, SyntaxError) and error.filename:
        where = (error.filename, error.lineno)
        code = error.text
    else:
        traceback = error.__traceback__
        while traceback is not None:
            # a configuration file runs in a namespace with load_subconfig
            if "load_subconfig" in traceback.tb_frame.f_globals:
                where = (traceback.tb_frame.f_code.co_filename, traceback.tb_lineno)
            traceback = traceback.tb_next
        if where is not None:
            code = linecache.getline(*where)
    reason = (
        (error.msg if isinstance(error, SyntaxError) else str(error).splitlines()[0])
        if str(error)
        else ""
    )
    what = f"{type(error).__name__}: {reason}" if reason else type(error).__name__
    place = f"{where[0]}, line {where[1]}: " if where else ""
    lines = [f"hubext: could not load {path}: {place}{what}"]
    code = (code or "").strip()
    if code:
        if any(word in code.lower() for word in SECRET_WORDS):
            lines.append("    (the line is not shown: it may hold a secret)")
        else:
            lines.append(f"    {code}")
    indexed = _INDEXED_SETTING.search(code)
    if isinstance(error, TypeError) and "LazyConfigValue" in reason and indexed:
        section, name = indexed.groups()
        if (section, name) == ("Communities", "communities"):
            key = _COMMUNITY_KEY.search(code)
            call = (
                f"add_to_community(c, {key['slug']!r}, {key['key']}=...)"
                if key
                else 'add_to_community(c, "<slug>", <key>=...)'
            )
            instead = (
                f"add keys to a community with {call} "
                "(from hubext import add_to_community)"
            )
        else:
            instead = (
                f"set the whole value, or change it with c.{section}.{name}"
                ".append(...) (a list) or .update(...) (a dict), which traitlets "
                "applies to the value the other files set"
            )
        lines.append(
            f"hubext: a file loaded with load_subconfig() starts with an empty c, so "
            f"c.{section}.{name} there is not the value another file set and has no "
            f"items to index; {instead}"
        )
    return lines


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

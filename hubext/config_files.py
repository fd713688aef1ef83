"""Reading a hub's configuration files, as JupyterHub and zero-to-jupyterhub do.

- :func:`load_config`: a ``jupyterhub_config.py`` loaded the way JupyterHub
  loads it (``load_subconfig`` of ``jupyterhub_config.d/*.py`` works), for
  ``hubext check-config`` and ``hubext usage report --hub-config``, run by
  the admin on the admin's machine; :func:`load_error` says where it failed;
- :func:`load_z2jh_values`: the ``hub.config`` of a zero-to-jupyterhub
  values file, read as YAML, never executed.
"""

from __future__ import annotations

import linecache
import os
import re

import yaml
from traitlets.config import Config, PyFileConfigLoader

from ._validation import SECRET_WORDS

#: Where zero-to-jupyterhub mounts the chart's values in the hub pod.
Z2JH_VALUES = "/usr/local/etc/jupyterhub/secret/values.yaml"
#: The spawner zero-to-jupyterhub configures unless hub.config names another.
Z2JH_SPAWNER = "kubespawner.KubeSpawner"


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


def load_z2jh_values(path: str) -> Config:
    """``hub.config`` of a zero-to-jupyterhub values file, as a Config."""
    with open(path) as f:
        values = yaml.safe_load(f) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path} is not a mapping of chart values")
    hub = values.get("hub") or {}
    hub_config = hub.get("config") if isinstance(hub, dict) else None
    if hub_config is not None and not isinstance(hub_config, dict):
        raise ValueError(f"{path}: hub.config is not a mapping")
    config = Config(hub_config or {})
    if "spawner_class" not in config.get("JupyterHub", {}):
        config.JupyterHub.spawner_class = Z2JH_SPAWNER
    return config

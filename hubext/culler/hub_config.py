"""The zero-to-jupyterhub route: the chart's values, read as data.

The culler gets the communities' ``culling`` policies and the spawner's
storage settings from the hub, as data (:mod:`hubext.service_data`), when it
is registered with :func:`hubext.culler.register` and the hub uses hubext's
authenticator. It never executes the hub's configuration: that would need
the hub's environment (its identity providers' secrets included) and run
arbitrary code in a service that only needs policies.

On zero-to-jupyterhub the culler may instead read the chart's values
(:data:`Z2JH_VALUES`, mounted in the hub pod): their ``hub.config`` is the
traitlets configuration the chart gives the hub, read as YAML, without
executing anything.
"""

from __future__ import annotations

import os

import yaml
from traitlets.config import Config

#: Where zero-to-jupyterhub mounts the chart's values in the hub pod.
Z2JH_VALUES = "/usr/local/etc/jupyterhub/secret/values.yaml"
#: The spawner zero-to-jupyterhub configures unless hub.config names another.
Z2JH_SPAWNER = "kubespawner.KubeSpawner"

#: Why a Python configuration file is refused.
NOT_EXECUTED = (
    "the culler does not execute the hub's configuration; it gets the "
    "communities from the hub: register it with "
    "hubext.culler.register(c, ...) (no hub_config) and use hubext's "
    "CommunityAuthenticator, or, on zero-to-jupyterhub, give the chart's "
    f"values file ({Z2JH_VALUES})"
)


def is_values_file(path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


def load_hub_config(path: str) -> Config:
    """``hub.config`` of the z2jh values file ``path``; ValueError for anything
    else (a ``jupyterhub_config.py`` is never executed)."""
    if not is_values_file(path):
        raise ValueError(f"{path}: not a values file (.yaml): {NOT_EXECUTED}")
    return load_z2jh_values(os.path.abspath(path))


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

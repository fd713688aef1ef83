"""The zero-to-jupyterhub route: the chart's values, read as data.

The culler gets the communities' ``culling`` policies and the spawner's
storage settings from the hub, as data (:mod:`hubext.service_data`), when it
is registered with :func:`hubext.culler.register` and the hub uses hubext's
authenticator. It never executes the hub's configuration: that would need
the hub's environment (its identity providers' secrets included) and run
arbitrary code in a service that only needs policies.

On zero-to-jupyterhub the culler may instead read the chart's values
(:data:`hubext.config_files.Z2JH_VALUES`, mounted in the hub pod): their ``hub.config`` is the
traitlets configuration the chart gives the hub, read as YAML, without
executing anything.
"""

from __future__ import annotations

import os

from traitlets.config import Config

from ..config_files import Z2JH_VALUES, load_z2jh_values

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

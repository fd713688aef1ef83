"""Read the hub's configuration: a ``jupyterhub_config.py`` or a z2jh ``values.yaml``.

The culler reads the communities' ``culling`` policies (and, for
``--cull-users``, the spawner's storage settings) from the configuration the
hub itself uses, so a policy is never written twice.

- A Python file is executed as JupyterHub does (``load_subconfig`` works),
  in the culler's own environment: JupyterHub gives a managed service only a
  few variables, so a file that reads others fails here; the culler then
  stops with a clear message.
- On zero-to-jupyterhub, the chart's ``jupyterhub_config.py`` reads the
  Kubernetes service variables of the hub pod, which a service does not
  get. Point the culler at the chart's values instead
  (:data:`Z2JH_VALUES`, mounted in the hub pod): its ``hub.config`` is the
  traitlets configuration the chart gives the hub, read without executing
  anything.
"""

from __future__ import annotations

import os

import yaml
from traitlets.config import Config, PyFileConfigLoader

#: Where zero-to-jupyterhub mounts the chart's values in the hub pod.
Z2JH_VALUES = "/usr/local/etc/jupyterhub/secret/values.yaml"
#: The spawner zero-to-jupyterhub configures unless hub.config names another.
Z2JH_SPAWNER = "kubespawner.KubeSpawner"


def load_hub_config(path: str) -> Config:
    """The hub's traitlets configuration from ``path`` (``.py`` or ``.yaml``)."""
    path = os.path.abspath(path)
    if path.endswith((".yaml", ".yml")):
        return load_z2jh_values(path)
    directory, filename = os.path.split(path)
    return PyFileConfigLoader(filename, path=directory).load_config()


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

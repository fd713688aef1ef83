"""hubext: JupyterHub plugins for hubs shared by many communities."""

from ._version import __version__
from .communities import Communities, Community, add_to_community

__all__ = ["Communities", "Community", "__version__", "add_to_community"]

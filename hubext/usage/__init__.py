"""The usage ledger: who used what, charged to which community.

- :mod:`.config`: ``c.UsageLedger`` (where the ledger is, its queue);
- :mod:`.model`: the sessions table (pure);
- :mod:`.store`: database URLs, engines, migrations;
- :mod:`.ledger`: the recorder the spawners call from the hub's event loop;
- :mod:`.writer`, :mod:`.writer_process`: what writes its events, and the
  process of its own that does it for the hub;
- :mod:`.report`: server-, CPU-, GiB- and GPU-hours per community, user or
  profile over a time window (``hubext usage report``);
- :mod:`.service`: the usage page, a hub service (``python -m hubext.usage``),
  added to a hub by :func:`register_page`.
"""

from .config import UsageLedger
from .ledger import Ledger
from .model import HUB_ACCOUNT, EndReason, Resources


def register_page(c, **kwargs) -> None:
    """Run the usage page as a hub-managed service: see
    :func:`hubext.usage.service.register` (imported only when called)."""
    from .service import register

    register(c, **kwargs)


__all__ = [
    "HUB_ACCOUNT",
    "EndReason",
    "Ledger",
    "Resources",
    "UsageLedger",
    "register_page",
]

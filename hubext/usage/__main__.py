"""``python -m hubext.usage``: the usage page (:mod:`hubext.usage.service`).

The hub lets no one in until every service it manages answers at its URL,
polling with a growing back-off. So the page's port is bound here, before
the page's modules are imported: the hub's first poll connects at once and
is answered as soon as the page is ready, instead of at a later poll.
(Unless ``--ip`` or ``--port`` is given: then the page binds where they say.)
"""

import os
import sys
from urllib.parse import urlsplit

from tornado.netutil import bind_sockets


def _early_sockets(argv):
    where = ("--ip", "--port", "--UsageService.ip", "--UsageService.port")
    if any(a.startswith(where) for a in argv):
        return None
    url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", ""))
    if url.port is None or url.hostname is None:
        return None
    return bind_sockets(url.port, url.hostname)


sockets = _early_sockets(sys.argv[1:])

from .service import main  # noqa: E402 (after binding: see above)

main(sockets=sockets)

# The usage page: a hub-managed service at /services/hubext-usage/ (also in
# the hub's Services menu), signed in through the hub. Hub admins see every
# community, community admins theirs, members their own servers. It reads
# the usage ledger (c.UsageLedger.db_url, set it before this call; by default
# hubext-usage.sqlite beside the hub's database) and gets the communities'
# names and prices from the hub as data.
import os

from hubext.usage import register_page

c = get_config()  # noqa: F821

# On your hub, a fixed loopback port: register_page(c) uses
# http://127.0.0.1:10101. The demo takes a free one (tests run several
# demo hubs at once).
port = os.environ.get("HUBEXT_DEMO_USAGE_PORT")
if not port:
    from demo.services import free_port

    port = free_port()
register_page(c, url=f"http://127.0.0.1:{port}")

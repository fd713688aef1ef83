# The usage page: a hub-managed service at /services/hubext-usage/ (also in
# the hub's Services menu), signed in through the hub. Hub admins see every
# community, community admins theirs, members their own servers. It reads
# the usage ledger (c.UsageLedger.db_url, set it before this call; by default
# hubext-usage.sqlite beside the hub's database) and gets the communities'
# names and prices from the hub as data.
import os

from hubext.usage import register_page

c = get_config()  # noqa: F821

# The page listens on http://127.0.0.1:10101; the demo gives it another
# port when asked (make demo DEMO_ARGS=--free-ports, and the tests, which
# run several demo hubs at once).
port = os.environ.get("HUBEXT_DEMO_USAGE_PORT", "10101")
register_page(c, url=f"http://127.0.0.1:{port}")

# Idle culling: the hubext culler runs as a hub-managed service with a
# least-privilege role. The hub hands it each community's `culling` policy
# (00-communities.py) when it starts, as data: the culler executes nothing
# of this configuration and needs no secret but its own token. Everyone
# else gets the hub-wide default given here.
from hubext.culler import register

c = get_config()  # noqa: F821

register(c, args=["--interval=60", "--timeout=3600"])

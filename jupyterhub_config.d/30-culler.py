# Idle culling: the hubext culler runs as a hub-managed service with a
# least-privilege role, reading each community's `culling` policy from this
# same configuration (00-communities.py). Everyone else gets the hub-wide
# default given here.
import os

from hubext.culler import register

c = get_config()  # noqa: F821

register(
    c,
    # the hub's main configuration file, which loads these snippets
    hub_config=os.path.join(
        os.path.dirname(os.path.dirname(__file__)), "jupyterhub_config.py"
    ),
    args=["--interval=60", "--timeout=3600"],
)

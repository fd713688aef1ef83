# Servers: one local process per user, in a per-user home.
c = get_config()  # noqa: F821

c.JupyterHub.spawner_class = "hubext-local"
c.LocalCommunitySpawner.home_root = "homes"
c.LocalCommunitySpawner.default_url = "/lab"

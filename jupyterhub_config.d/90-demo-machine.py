# Settings for the one-machine demo only: ports, where state lives, and the
# configurable-http-proxy installed by `make demo` (npm, in node_modules).
# A zero-to-jupyterhub deployment sets none of these.
import os

c = get_config()  # noqa: F821

# Real paths (no links): a hub run as root never follows a link to the homes.
repo = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
data_dir = os.path.realpath(
    os.environ.get("HUBEXT_DEMO_DIR", os.path.join(repo, ".hubext-demo"))
)
port = int(os.environ.get("HUBEXT_DEMO_PORT", "8000"))

c.JupyterHub.bind_url = f"http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = (
    f"http://127.0.0.1:{os.environ.get('HUBEXT_DEMO_HUB_PORT', '8081')}"
)
c.ConfigurableHTTPProxy.api_url = (
    f"http://127.0.0.1:{os.environ.get('HUBEXT_DEMO_PROXY_API_PORT', '8001')}"
)
c.ConfigurableHTTPProxy.command = [
    os.path.join(repo, "node_modules", ".bin", "configurable-http-proxy")
]
c.ConfigurableHTTPProxy.pid_file = os.path.join(data_dir, "proxy.pid")
c.JupyterHub.db_url = f"sqlite:///{os.path.join(data_dir, 'jupyterhub.sqlite')}"
c.JupyterHub.cookie_secret_file = os.path.join(data_dir, "jupyterhub_cookie_secret")
c.LocalCommunitySpawner.home_root = os.path.join(data_dir, "homes")

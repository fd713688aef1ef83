# Identity: who can sign in, through which identity providers.
#
# The demo signs in through the local OpenID Connect provider that
# `make demo` starts (demo/idp.mjs, accounts in demo/accounts.json).
import os

c = get_config()  # noqa: F821

idp_url = os.environ.get("HUBEXT_DEMO_IDP_URL", "http://127.0.0.1:8090")

c.JupyterHub.authenticator_class = "hubext"
c.CommunityAuthenticator.providers = {
    "demo": {
        "kind": "oidc",
        "display_name": "the demo identity provider",
        # One provider only, so its usernames are used as they are.
        "username_template": "{username}",
        "config": {
            "client_id": "hubext-demo",
            "client_secret": os.environ.get("HUBEXT_DEMO_CLIENT_SECRET", ""),
            "authorize_url": f"{idp_url}/auth",
            "token_url": f"{idp_url}/token",
            "userdata_url": f"{idp_url}/me",
            "scope": ["openid", "email", "profile", "groups", "idp"],
            "username_claim": "preferred_username",
            # Signing out of the hub signs out of the provider too, so the
            # next sign-in can be another sample account.
            "end_session_url": f"{idp_url}/session/end",
        },
    },
}
# Keep the provider's tokens (encrypted with JUPYTERHUB_CRYPT_KEY) so that
# communities are re-checked with the provider every auth_refresh_age seconds.
c.CommunityAuthenticator.enable_auth_state = True
c.CommunityAuthenticator.auth_refresh_age = 300

# Who may sign in: members of at least one community (00-communities.py),
# and the hub admins.
c.CommunityAuthenticator.admin_users = {"carol"}

# More providers go beside it; each gets its own sign-in button and its
# users their own usernames ({username}@{provider} by default), e.g.:
#
# c.CommunityAuthenticator.providers["github"] = {
#     "kind": "github",
#     "display_name": "GitHub",
#     "config": {
#         "client_id": os.environ["GITHUB_CLIENT_ID"],
#         "client_secret": os.environ["GITHUB_CLIENT_SECRET"],
#     },
# }
# c.CommunityAuthenticator.providers["cilogon"] = {
#     "kind": "cilogon",
#     "display_name": "your institution (CILogon)",
#     "config": {
#         "client_id": os.environ["CILOGON_CLIENT_ID"],
#         "client_secret": os.environ["CILOGON_CLIENT_SECRET"],
#         "allowed_idps": {
#             "https://idp.ocean.example.org/idp/shibboleth": {
#                 "username_derivation": {"username_claim": "eppn"},
#             },
#         },
#     },
# }

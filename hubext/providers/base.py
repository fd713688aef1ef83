"""What every provider adapter shares: its name, URL prefix and handlers."""

from __future__ import annotations

from urllib.parse import urlunsplit

from jupyterhub.utils import url_path_join
from traitlets import HasTraits, Unicode

from .._validation import show
from ..identity import Identity


class ProviderMixin(HasTraits):
    """Mixed into an OAuthenticator subclass to run it as one of several providers.

    The owning :class:`~hubext.authenticator.CommunityAuthenticator` creates
    the adapter with ``parent=`` itself and sets :attr:`provider_name`.
    """

    provider_name = Unicode(
        help="The provider's name: its key in CommunityAuthenticator.providers."
    )

    def identity_from_auth_model(self, auth_model: dict) -> Identity:
        """The normalized identity from this provider's auth model."""
        raise NotImplementedError

    def _claim_warning(self, username: str):
        """A ``warn(message)`` for bad claims, naming provider and user safely."""

        def warn(message: str) -> None:
            self.log.warning(
                "hubext: provider %s, user %s: %s",
                self.provider_name,
                show(username),
                message,
            )

        return warn

    def login_url(self, base_url):
        return url_path_join(base_url, self.provider_name, "oauth_login")

    def get_callback_url(self, handler=None):
        if self.oauth_callback_url:
            return self.oauth_callback_url
        if handler is None:
            raise ValueError(
                f"providers[{self.provider_name!r}]: set oauth_callback_url, "
                "or give a request handler to derive it from"
            )
        path = url_path_join(
            handler.hub.server.base_url, self.provider_name, "oauth_callback"
        )
        request = handler.request
        return urlunsplit((request.protocol, request.host, path, "", ""))

    def provider_handlers(self):
        """``(path, handler)`` pairs under this provider's prefix.

        The login handler talks to the provider, so its ``authenticator`` is
        this adapter; the callback handler goes through the hub's own
        authenticator (whose ``authenticate`` dispatches back to this adapter),
        so that JupyterHub's allow, block, admin and group logic runs once,
        in one place, for every provider.
        """
        adapter = self
        login = type(
            f"{type(self).__name__}LoginHandler",
            (self.login_handler,),
            {"authenticator": property(lambda handler: adapter)},
        )
        callback = type(
            f"{type(self).__name__}CallbackHandler",
            (self.callback_handler,),
            {"hubext_provider": adapter},
        )
        prefix = f"/{self.provider_name}"
        return [
            (f"{prefix}/oauth_login", login),
            (f"{prefix}/oauth_callback", callback),
        ]

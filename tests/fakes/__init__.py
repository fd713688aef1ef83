"""Local stand-ins for the OAuth identity providers the authenticators talk to.

Each fake is a real HTTP server on 127.0.0.1 (a free port) served from a daemon
thread of the test process, speaking the provider's documented wire format, with
a call log, latency and fault injection for tests and benchmarks.
"""

from .browser import pkce_pair, sign_in
from .cilogon import FakeCILogon
from .github import FakeGitHub

__all__ = ["FakeCILogon", "FakeGitHub", "pkce_pair", "sign_in"]

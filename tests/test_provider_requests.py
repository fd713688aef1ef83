"""The providers' HTTP client: a sign-in storm's requests are not queued in the hub.

A real HTTP server stands for the provider; it answers only once a given
number of requests are open at the same time (a barrier), so a client that
holds some of them back in a queue of its own fails, whatever the speed of
the machine.
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from hubext._validation import ConfigError
from hubext.authenticator import CommunityAuthenticator
from hubext.providers import PROVIDER_KINDS

#: More than Tornado's default client runs at once (10).
AT_ONCE = 25


@pytest.fixture
def barrier_server():
    """A server that answers 200 once AT_ONCE requests are open together (503
    if they never are)."""
    barrier = threading.Barrier(AT_ONCE, timeout=30)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            try:
                barrier.wait()
                status, body = 200, b'{"ok": true}'
            except threading.BrokenBarrierError:
                status, body = 503, b"{}"
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 4 * AT_ONCE  # the listen backlog: all at once
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    barrier.abort()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("kind", sorted(PROVIDER_KINDS))
async def test_many_requests_to_the_provider_are_under_way_at_once(
    kind, barrier_server
):
    """25 sign-ins' requests at once all reach the provider: none waits in
    the hub for a slot (and fails after connect_timeout, as if the provider
    were down)."""
    provider = PROVIDER_KINDS[kind](
        provider_name="uni", connect_timeout=5, request_timeout=40
    )
    answers = await asyncio.gather(
        *(
            provider.fetch(HTTPRequest(barrier_server), label="testing")
            for _ in range(AT_ONCE)
        )
    )
    assert answers == [{"ok": True}] * AT_ONCE


async def test_the_provider_has_a_client_of_its_own():
    """Not the hub's shared client, which also carries the calls to the proxy."""
    provider = PROVIDER_KINDS["oidc"](provider_name="uni", max_concurrent_requests=7)
    assert provider.http_client is not AsyncHTTPClient()
    assert provider.http_client.max_clients == 7


def test_max_concurrent_requests_below_one_is_refused_by_its_key_path():
    with pytest.raises(ConfigError) as info:
        CommunityAuthenticator(
            providers={
                "uni": {
                    "kind": "oidc",
                    "config": {"client_id": "x", "max_concurrent_requests": 0},
                }
            },
        )
    assert str(info.value).startswith(
        "CommunityAuthenticator.providers['uni'].config: "
    )
    assert "max_concurrent_requests" in str(info.value)

"""A spawner for benchmarks: servers that cost nothing and stop slowly.

Every "server" is the one tiny HTTP server of the benchmark process
(``target_url``); ``stop()`` takes ``stop_latency`` seconds, like a real
server shutting down, and records when it starts and ends in
``events_file`` so the benchmark can measure how many stops overlapped.
"""

from __future__ import annotations

import asyncio
import time

from jupyterhub.spawner import Spawner
from traitlets import Float, Unicode


class CheapSpawner(Spawner):
    target_url = Unicode(config=True, help="URL every server answers on.")
    stop_latency = Float(0.5, config=True, help="Seconds a stop takes.")
    events_file = Unicode(config=True, help="Where stop start/end times go.")

    _running = False

    def load_state(self, state):
        super().load_state(state)
        self._running = bool(state.get("running"))

    def get_state(self):
        state = super().get_state()
        if self._running:
            state["running"] = True
        return state

    async def start(self):
        self._running = True
        return self.target_url

    async def poll(self):
        return None if self._running else 0

    async def stop(self, now=False):
        start = time.monotonic()
        await asyncio.sleep(self.stop_latency)
        self._running = False
        if self.events_file:
            with open(self.events_file, "a") as f:
                f.write(f"{start} {time.monotonic()}\n")
